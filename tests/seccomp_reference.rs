//! Differential test of cordon's seccomp compiler against `seccompiler`, the
//! reference compiler named in the design (Firecracker's; a dev-dependency
//! only). Random filters of the shape seccompiler can express (one action
//! on a match, another otherwise; per syscall an OR of rules, each an AND of
//! conditions) are built both ways: as a `SeccompFilter` compiled by
//! seccompiler, and as the equivalent policy `seccomp` section compiled by
//! `SeccompPolicy::compile` and `cordon::seccomp::bpf::compile`. Both
//! programs then run in cordon's BPF interpreter on random and edge-case
//! inputs (each condition's constant, ±1, with the high word set or
//! cleared), and must return the same SECCOMP_RET value. A third opinion, a
//! direct evaluation of the filter's meaning, says which side is wrong.
//!
//! Where cordon's meaning differs from seccompiler's by design, inputs stay
//! out of the difference, and it is pinned by a test of its own:
//! - calls of the filter's architecture (x86_64 or aarch64, each compared
//!   on its own) only, with numbers in cordon's table: cordon answers x32
//!   numbers and numbers above its table with ENOSYS (seccompiler with its
//!   mismatch action); a foreign architecture is killed by both;
//! - `clone3` is tested only when the policy names it (cordon answers it
//!   with ENOSYS otherwise);
//! - arguments the kernel reads as 32 bits (cordon's LOW32_ARGS, found by
//!   probing the compiler) are compared on the low word by cordon: here
//!   seccompiler is given `Dword` for them and `Qword` for every other one;
//! - `masked_eq` with a value that has bits outside the mask: seccompiler
//!   masks the value too, cordon never matches (see the last test).
//!
//! Reproduce a failure with the printed seed:
//! `CORDON_REFERENCE_SEED=<seed> CORDON_REFERENCE_CASES=1 cargo test --test seccomp_reference`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::OnceLock;

use cordon::seccomp::arch::Arch;
use cordon::seccomp::bpf::{self, Insn};
use cordon::seccomp::interp;
use cordon::seccomp::ir::{Action, Data};
use cordon::seccomp::{groups, names, SeccompPolicy};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};
use serde_json::{json, Value};

/// xorshift64*, so that every case reproduces from its seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn nr(name: &str) -> u32 {
    nr_on(Arch::X86_64, name)
}

fn nr_on(arch: Arch, name: &str) -> u32 {
    arch.syscall_nr(name)
        .unwrap_or_else(|| panic!("no syscall {name} on {arch}"))
}

/// Arguments cordon compares on their low 32 bits only, found through the
/// compiler's own check (it refuses a value above 32 bits for them), so that
/// this test follows LOW32_ARGS without copying it.
fn low32_args(arch: Arch) -> &'static HashSet<(u32, u8)> {
    static SETS: [OnceLock<HashSet<(u32, u8)>>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = match arch {
        Arch::X86_64 => &SETS[0],
        Arch::Aarch64 => &SETS[1],
    };
    slot.get_or_init(|| {
        let mut set = HashSet::new();
        for (n, name) in arch.syscalls() {
            for arg in 0..6u8 {
                let p: SeccompPolicy = serde_json::from_value(json!({
                    "default_action": "allow",
                    "rules": [{"syscall": name, "args": [{"arg": arg, "op": "eq", "value": 1u64 << 32}],
                               "action": "errno"}]
                }))
                .unwrap();
                if let Err(e) = p.compile_for(arch) {
                    assert!(e.message.contains("32 bits wide"), "{name} {arg}: {e:?}");
                    set.insert((n, arg));
                }
            }
        }
        assert!(
            set.contains(&(nr_on(arch, "ioctl"), 1)),
            "ioctl's request is 32 bits wide"
        );
        set
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq(u64),
}

/// One condition on a 64-bit argument (or its low word when `low32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    arg: u8,
    op: Op,
    value: u64,
    low32: bool,
}

impl Cond {
    fn holds(&self, arg: u64) -> bool {
        let lo = |v: u64| if self.low32 { v & 0xffff_ffff } else { v };
        let (a, v) = (lo(arg), lo(self.value));
        match self.op {
            Op::Eq => a == v,
            Op::Ne => a != v,
            Op::Lt => a < v,
            Op::Le => a <= v,
            Op::Gt => a > v,
            Op::Ge => a >= v,
            Op::MaskedEq(m) => a & lo(m) == v,
        }
    }
}

/// How cordon is told about a syscall that matches unconditionally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// Listed by name in `allow` (only when the match action is allow).
    ByName,
    /// A rule without conditions.
    NoArgRule,
    /// A member of a group in `allow` (only when the match action is allow).
    Group,
}

/// What one syscall does: no rules means it always matches.
#[derive(Clone, Debug)]
struct Entry {
    rules: Vec<Vec<Cond>>,
    how: How,
}

/// A filter in seccompiler's shape, and how to write it for cordon.
#[derive(Clone, Debug)]
struct Case {
    /// The architecture both compilers build for.
    arch: Arch,
    mismatch: Action,
    matched: Action,
    entries: BTreeMap<u32, Entry>,
    /// Groups in `allow`: with an allow match action their members are
    /// entries; otherwise they change nothing.
    groups: Vec<&'static str>,
    /// Names in `allow` that change nothing (only with an allow default).
    noise: Vec<&'static str>,
}

impl Case {
    /// Whether cordon names clone3 (so it does not answer it with ENOSYS).
    fn names_clone3(&self) -> bool {
        let c3 = nr_on(self.arch, "clone3");
        self.noise.contains(&"clone3")
            || self
                .entries
                .get(&c3)
                .is_some_and(|e| !e.rules.is_empty() || e.how != How::Group)
    }

    /// The decision by the filter's meaning.
    fn model(&self, d: &Data) -> u32 {
        if d.arch != self.arch.audit_arch() {
            return Action::KillProcess.ret();
        }
        let a = match self.entries.get(&d.nr) {
            Some(e) if e.rules.is_empty() => self.matched,
            Some(e)
                if e.rules
                    .iter()
                    .any(|r| r.iter().all(|c| c.holds(d.args[usize::from(c.arg)]))) =>
            {
                self.matched
            }
            _ => self.mismatch,
        };
        a.ret()
    }

    fn seccompiler(&self) -> Result<Vec<Insn>, String> {
        let act = |a: Action| match a {
            Action::Allow => SeccompAction::Allow,
            Action::Errno(e) => SeccompAction::Errno(u32::from(e)),
            Action::KillProcess => SeccompAction::KillProcess,
            Action::KillThread => SeccompAction::KillThread,
            Action::Trap => SeccompAction::Trap,
            Action::Log => SeccompAction::Log,
            Action::Notify => unreachable!("not a policy action"),
        };
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for (&n, e) in &self.entries {
            let mut list = Vec::new();
            for r in &e.rules {
                let conds = r
                    .iter()
                    .map(|c| {
                        let len = if c.low32 {
                            SeccompCmpArgLen::Dword
                        } else {
                            SeccompCmpArgLen::Qword
                        };
                        let op = match c.op {
                            Op::Eq => SeccompCmpOp::Eq,
                            Op::Ne => SeccompCmpOp::Ne,
                            Op::Lt => SeccompCmpOp::Lt,
                            Op::Le => SeccompCmpOp::Le,
                            Op::Gt => SeccompCmpOp::Gt,
                            Op::Ge => SeccompCmpOp::Ge,
                            Op::MaskedEq(m) => SeccompCmpOp::MaskedEq(m),
                        };
                        SeccompCondition::new(c.arg, len, op, c.value).map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                list.push(SeccompRule::new(conds).map_err(|e| e.to_string())?);
            }
            rules.insert(i64::from(n), list);
        }
        let target = match self.arch {
            Arch::X86_64 => TargetArch::x86_64,
            Arch::Aarch64 => TargetArch::aarch64,
        };
        let filter = SeccompFilter::new(rules, act(self.mismatch), act(self.matched), target)
            .map_err(|e| e.to_string())?;
        let prog: BpfProgram = filter
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        Ok(prog
            .iter()
            .map(|i| Insn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect())
    }

    /// The policy's `seccomp` section; `spell` varies how actions and values
    /// are written (all spellings mean the same).
    fn policy_json(&self, spell: u64) -> Value {
        let mut rng = Rng::new(spell);
        let mut allow: Vec<String> = self.groups.iter().map(|g| g.to_string()).collect();
        allow.extend(self.noise.iter().map(|n| n.to_string()));
        let mut rules = Vec::new();
        for (&n, e) in &self.entries {
            let name = self.arch.syscall_name(n).expect("a known syscall");
            if e.rules.is_empty() {
                match e.how {
                    How::ByName => allow.push(name.to_string()),
                    How::NoArgRule => {
                        rules.push(json!({"syscall": name, "action": action_json(self.matched, &mut rng)}))
                    }
                    How::Group => {}
                }
            }
            for r in &e.rules {
                let args: Vec<Value> = r.iter().map(|c| cond_json(c, &mut rng)).collect();
                rules.push(
                    json!({"syscall": name, "args": args, "action": action_json(self.matched, &mut rng)}),
                );
            }
            // A trailing rule with the fallback's own action changes nothing.
            if !e.rules.is_empty() && e.how != How::ByName && rng.chance(10) {
                let c = e.rules[0][0];
                rules.push(json!({"syscall": name, "args": [cond_json(&c, &mut rng)],
                                  "action": action_json(self.mismatch, &mut rng)}));
            }
        }
        // Rules of different syscalls may interleave; per syscall the order stays.
        for i in (1..rules.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            if rules[i]["syscall"] != rules[j]["syscall"] && !same_syscall_between(&rules, j, i) {
                rules.swap(i, j);
            }
        }
        let mut section = json!({"default_action": action_json(self.mismatch, &mut rng), "allow": allow});
        if !rules.is_empty() {
            section["rules"] = Value::Array(rules);
        }
        section
    }

    fn cordon(&self, spell: u64) -> Result<(Value, Vec<Insn>), String> {
        let json = self.policy_json(spell);
        let policy: SeccompPolicy =
            serde_json::from_value(json.clone()).map_err(|e| format!("{e}: {json}"))?;
        let filter = policy
            .compile_for(self.arch)
            .map_err(|e| format!("{}: {}: {json}", e.path, e.message))?;
        Ok((json, bpf::compile(&filter)))
    }
}

/// Whether rules `j+1..i` (swapped over) name the syscall of `i` or `j`.
fn same_syscall_between(rules: &[Value], j: usize, i: usize) -> bool {
    rules[j + 1..i]
        .iter()
        .any(|r| r["syscall"] == rules[i]["syscall"] || r["syscall"] == rules[j]["syscall"])
}

fn action_json(a: Action, rng: &mut Rng) -> Value {
    match a {
        Action::Allow => json!("allow"),
        Action::Errno(1) if rng.chance(50) => json!("errno"),
        Action::Errno(e) => match names::errno_name(e) {
            Some(n) if rng.chance(50) => json!({"errno": n}),
            _ => json!({"errno": e}),
        },
        Action::KillProcess if rng.chance(30) => json!("kill"),
        Action::KillProcess => json!("kill_process"),
        Action::KillThread => json!("kill_thread"),
        Action::Trap => json!("trap"),
        Action::Log => json!("log"),
        Action::Notify => unreachable!("not a policy action"),
    }
}

/// A value as a number, a decimal or hex string, or two hex parts joined by `|`.
fn value_json(v: u64, rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => json!(v),
        1 => json!(v.to_string()),
        2 => json!(format!("{v:#x}")),
        _ => {
            let part = v & rng.next();
            json!(format!("{part:#x} | {:#X}", v & !part).replace("0X", "0x"))
        }
    }
}

fn cond_json(c: &Cond, rng: &mut Rng) -> Value {
    let op = match c.op {
        Op::Eq => "eq",
        Op::Ne => "ne",
        Op::Lt => "lt",
        Op::Le => "le",
        Op::Gt => "gt",
        Op::Ge => "ge",
        Op::MaskedEq(_) => "masked_eq",
    };
    let mut v = json!({"arg": c.arg, "op": op, "value": value_json(c.value, rng)});
    if let Op::MaskedEq(m) = c.op {
        v["mask"] = value_json(m, rng);
    }
    v
}

/// A value worth comparing with.
fn some_value(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 => rng.below(8),
        1 => rng.next() & 0xffff_ffff,
        2 => rng.next(),
        3 => (rng.below(4) << 32) | rng.below(4),
        4 => u64::MAX - rng.below(3),
        5 => u64::from(u32::MAX) + rng.below(3) - 1,
        6 => 1 << rng.below(64),
        _ => rng.below(0x1_0000),
    }
}

fn some_mask(rng: &mut Rng) -> u64 {
    match rng.below(5) {
        0 => u64::MAX,
        1 => 0xffff_ffff,
        2 => 1 << rng.below(64),
        3 => rng.next() & rng.next(),
        _ => rng.next(),
    }
}

fn some_cond(rng: &mut Rng, arch: Arch, n: u32) -> Cond {
    let arg = rng.below(6) as u8;
    let low32 = low32_args(arch).contains(&(n, arg));
    let op = match rng.below(7) {
        0 => Op::Eq,
        1 => Op::Ne,
        2 => Op::Lt,
        3 => Op::Le,
        4 => Op::Gt,
        5 => Op::Ge,
        _ => Op::MaskedEq(some_mask(rng)),
    };
    let mut value = some_value(rng);
    if let Op::MaskedEq(m) = op {
        // Bits outside the mask are where the two compilers differ by design.
        value &= m;
    }
    if low32 {
        // cordon refuses a wider value for a 32-bit argument.
        value &= 0xffff_ffff;
    }
    Cond {
        arg,
        op,
        value,
        low32,
    }
}

const REQUIRED: [&str; 3] = ["execve", "exit_group", "write"];

fn random_action(rng: &mut Rng) -> Action {
    match rng.below(6) {
        0 => Action::KillProcess,
        1 => Action::KillThread,
        2 => Action::Trap,
        3 => Action::Log,
        4 => Action::Errno(1 + rng.below(4095) as u16),
        _ => Action::Errno(*rng.pick(&[1u16, 13, 38, 95])),
    }
}

fn random_case(rng: &mut Rng, arch: Arch) -> Case {
    let table: Vec<(u32, &str)> = arch.syscalls().collect();
    // cordon needs execve, exit_group and write allowed: one of the two
    // actions is allow.
    let allow_on_match = rng.chance(50);
    let other = random_action(rng);
    let (matched, mismatch) = if allow_on_match {
        (Action::Allow, other)
    } else {
        (other, Action::Allow)
    };
    let big = rng.chance(10);
    let syscalls = if big { 20 + rng.below(40) } else { rng.below(16) };
    let mut case = Case {
        arch,
        mismatch,
        matched,
        entries: BTreeMap::new(),
        groups: Vec::new(),
        noise: Vec::new(),
    };
    for _ in 0..syscalls {
        let n = rng.pick(&table).0;
        let rules = if rng.chance(25) {
            Vec::new()
        } else {
            (0..1 + rng.below(if big { 3 } else { 4 }))
                .map(|_| (0..1 + rng.below(3)).map(|_| some_cond(rng, arch, n)).collect())
                .collect()
        };
        let how = if allow_on_match && rng.chance(50) {
            How::ByName
        } else {
            How::NoArgRule
        };
        case.entries.insert(n, Entry { rules, how });
    }
    if allow_on_match {
        // A syscall with rules must not be listed by name (its fallback
        // would be allow rather than the mismatch action).
        for e in case.entries.values_mut() {
            if !e.rules.is_empty() && e.how == How::ByName {
                e.how = How::NoArgRule;
            }
        }
        for _ in 0..rng.below(3) {
            let g = rng.pick(groups::GROUPS).name;
            if !case.groups.contains(&g) {
                case.groups.push(g);
            }
        }
        for g in case.groups.clone() {
            for n in groups::expand_for(arch, g).unwrap() {
                let e = case.entries.entry(n).or_insert(Entry {
                    rules: Vec::new(),
                    how: How::Group,
                });
                if e.rules.is_empty() {
                    e.how = How::Group;
                }
            }
        }
        // clone3 in a group alone is not named: name it as well.
        if let Some(e) = case.entries.get_mut(&nr_on(arch, "clone3")) {
            if e.rules.is_empty() && e.how == How::Group {
                e.how = How::ByName;
            }
        }
        for r in REQUIRED {
            case.entries.entry(nr_on(arch, r)).or_insert(Entry {
                rules: Vec::new(),
                how: How::ByName,
            });
        }
    } else {
        // Required calls must not always get the (non-allow) match action.
        case.entries
            .retain(|&n, e| !(e.rules.is_empty() && REQUIRED.iter().any(|r| nr_on(arch, r) == n)));
        // With an allow default, names and groups in `allow` change nothing.
        for _ in 0..rng.below(3) {
            case.groups.push(rng.pick(groups::GROUPS).name);
        }
        for _ in 0..rng.below(4) {
            case.noise.push(rng.pick(&table).1);
        }
    }
    case
}

/// Inputs around the case's syscalls and constants.
fn inputs(case: &Case, rng: &mut Rng, count: usize) -> Vec<Data> {
    let arch = case.arch;
    let c3 = nr_on(arch, "clone3");
    let skip_clone3 = !case.names_clone3();
    let keys: Vec<u32> = case.entries.keys().copied().collect();
    let mut out = Vec::with_capacity(count + 2);
    while out.len() < count {
        let n = if !keys.is_empty() && rng.chance(75) {
            *rng.pick(&keys)
        } else {
            rng.below(u64::from(arch.known_max()) + 1) as u32
        };
        if n == c3 && skip_clone3 {
            continue;
        }
        let mut args = [0u64; 6];
        for a in args.iter_mut() {
            *a = some_value(rng);
        }
        if let Some(e) = case.entries.get(&n).filter(|e| !e.rules.is_empty()) {
            // Aim at one rule: each of its conditions on an edge.
            let rule = rng.pick(&e.rules).clone();
            for c in rule {
                if rng.chance(10) {
                    continue;
                }
                args[usize::from(c.arg)] = near(c, rng);
            }
        }
        out.push(Data::of(arch, n, args));
    }
    // A foreign architecture (i386, or the other one of the two) is killed by both.
    let write = nr_on(arch, "write");
    for foreign in [0x4000_0003, Arch::X86_64.audit_arch(), Arch::Aarch64.audit_arch()] {
        if foreign != arch.audit_arch() {
            out.push(Data {
                arch: foreign,
                ..Data::of(arch, write, [0; 6])
            });
        }
    }
    out
}

/// A value at an edge of condition `c`.
fn near(c: Cond, rng: &mut Rng) -> u64 {
    let v = c.value;
    let mut choices = vec![
        v,
        v,
        v.wrapping_add(1),
        v.wrapping_sub(1),
        v ^ (1 << 32),
        v | (1 << 32),
        v | 0xffff_ffff_0000_0000,
        v & 0xffff_ffff,
        (v & 0xffff_ffff_0000_0000) | (rng.next() & 0xffff_ffff),
        (v & 0xffff_ffff) | (rng.next() << 32),
    ];
    if let Op::MaskedEq(m) = c.op {
        choices.push(v | (rng.next() & !m));
        choices.push(v | (rng.next() & !m));
        choices.push(v ^ (m & m.wrapping_neg()));
        choices.push(v ^ (rng.next() & m));
    }
    *rng.pick(&choices)
}

fn run(prog: &[Insn], d: &Data) -> u32 {
    interp::run(prog, d)
        .unwrap_or_else(|e| panic!("the program failed to run: {e:?} on {d:?}"))
        .ret
}

/// The decisions (cordon, seccompiler, model), or `None` when the case
/// cannot be built.
fn decisions(case: &Case, spell: u64, d: &Data) -> Option<(u32, u32, u32)> {
    let sc = case.seccompiler().ok()?;
    let (_, co) = case.cordon(spell).ok()?;
    Some((run(&co, d), run(&sc, d), case.model(d)))
}

fn disagree(case: &Case, spell: u64, d: &Data) -> bool {
    decisions(case, spell, d).is_some_and(|(c, s, _)| c != s)
}

/// Make a disagreement as small as it stays.
fn minimise(mut case: Case, spell: u64, mut d: Data) -> (Case, Data) {
    loop {
        let mut changed = false;
        let try_case = |cand: Case, case: &mut Case, d: &Data| {
            if disagree(&cand, spell, d) {
                *case = cand;
                true
            } else {
                false
            }
        };
        // Groups become their members, listed by name.
        for i in 0..case.groups.len() {
            let mut c = case.clone();
            let g = c.groups.remove(i);
            if case.matched == Action::Allow {
                for n in groups::expand_for(case.arch, g).unwrap() {
                    if let Some(e) = c.entries.get_mut(&n) {
                        if e.how == How::Group {
                            e.how = if e.rules.is_empty() {
                                How::ByName
                            } else {
                                How::NoArgRule
                            };
                        }
                    }
                }
            }
            if try_case(c, &mut case, &d) {
                changed = true;
                break;
            }
        }
        for i in 0..case.noise.len() {
            let mut c = case.clone();
            c.noise.remove(i);
            if try_case(c, &mut case, &d) {
                changed = true;
                break;
            }
        }
        let keys: Vec<u32> = case.entries.keys().copied().collect();
        for n in keys {
            if n == d.nr || case.entries[&n].how == How::Group {
                continue;
            }
            let mut c = case.clone();
            c.entries.remove(&n);
            if try_case(c, &mut case, &d) {
                changed = true;
            }
        }
        let keys: Vec<u32> = case.entries.keys().copied().collect();
        for n in keys {
            let mut i = 0;
            while i < case.entries[&n].rules.len() {
                let mut c = case.clone();
                c.entries.get_mut(&n).unwrap().rules.remove(i);
                if try_case(c, &mut case, &d) {
                    changed = true;
                    continue;
                }
                let mut j = 0;
                while j < case.entries[&n].rules[i].len() {
                    if case.entries[&n].rules[i].len() > 1 {
                        let mut c = case.clone();
                        c.entries.get_mut(&n).unwrap().rules[i].remove(j);
                        if try_case(c, &mut case, &d) {
                            changed = true;
                            continue;
                        }
                    }
                    j += 1;
                }
                i += 1;
            }
        }
        for a in 0..6 {
            if d.args[a] != 0 {
                let mut d2 = d;
                d2.args[a] = 0;
                if disagree(&case, spell, &d2) {
                    d = d2;
                    changed = true;
                }
            }
        }
        if !changed {
            return (case, d);
        }
    }
}

fn report(case: Case, spell: u64, d: Data, seed: u64) -> ! {
    let (case, d) = minimise(case, spell, d);
    let (json, co) = case.cordon(spell).expect("builds");
    let sc = case.seccompiler().expect("builds");
    let (c, s, m) = decisions(&case, spell, &d).expect("builds");
    panic!(
        "cordon and seccompiler disagree (case seed {seed}, minimised)\n\
         policy: {json}\n\
         seccompiler filter: mismatch {:?}, match {:?}, rules {:#?}\n\
         input: nr {} ({}), args {:#x?}\n\
         cordon: {} / seccompiler: {} / the filter's meaning: {}\n\
         cordon's program:\n{}\nseccompiler's program:\n{}",
        case.mismatch,
        case.matched,
        case.entries,
        d.nr,
        case.arch.syscall_name(d.nr).unwrap_or("?"),
        d.args,
        bpf::ret_name(c),
        bpf::ret_name(s),
        bpf::ret_name(m),
        bpf::disasm(&co),
        bpf::disasm(&sc),
    );
}

#[test]
fn cordon_and_seccompiler_agree_on_random_filters() {
    agree_on_random_filters(Arch::X86_64, 1000);
}

/// The same for filters compiled for aarch64 (its numbers, its audit
/// architecture, no x32 range), from this host.
#[test]
fn cordon_and_seccompiler_agree_on_random_aarch64_filters() {
    agree_on_random_filters(Arch::Aarch64, 500);
}

fn agree_on_random_filters(arch: Arch, default_cases: u64) {
    let base = env_u64("CORDON_REFERENCE_SEED").unwrap_or(0x5ecc_0a1e);
    let cases = env_u64("CORDON_REFERENCE_CASES").unwrap_or(default_cases);
    let (mut built, mut compared, mut too_big) = (0u64, 0u64, 0u64);
    let (mut rule_matched, mut rule_missed) = (0u64, 0u64);
    let (mut longest_cordon, mut longest_seccompiler) = (0usize, 0usize);
    let mut outcomes: BTreeSet<u32> = BTreeSet::new();
    for i in 0..cases {
        let seed = base.wrapping_add(i);
        let mut rng = Rng::new(seed);
        let case = random_case(&mut rng, arch);
        let spell = rng.next();
        let sc = match case.seccompiler() {
            Ok(p) => p,
            Err(e) if e.contains("too many") => {
                too_big += 1;
                continue;
            }
            Err(e) => panic!("seccompiler refused case seed {seed}: {e}\n{case:#?}"),
        };
        let (json, co) = case
            .cordon(spell)
            .unwrap_or_else(|e| panic!("cordon refused case seed {seed}: {e}"));
        assert!(
            co.len() <= cordon::seccomp::MAX_INSNS,
            "seed {seed}: {} instructions",
            co.len()
        );
        built += 1;
        longest_cordon = longest_cordon.max(co.len());
        longest_seccompiler = longest_seccompiler.max(sc.len());
        for d in inputs(&case, &mut rng, 250) {
            let (c, s, m) = (run(&co, &d), run(&sc, &d), case.model(&d));
            if c != s {
                eprintln!("seed {seed}: disagreement on {d:?}; minimising");
                report(case, spell, d, seed);
            }
            assert_eq!(
                c,
                m,
                "seed {seed}: both compilers say {} but the filter means {}: {d:?}\n{json}",
                bpf::ret_name(c),
                bpf::ret_name(m)
            );
            outcomes.insert(c);
            compared += 1;
            if case.entries.get(&d.nr).is_some_and(|e| !e.rules.is_empty()) {
                if m == case.matched.ret() {
                    rule_matched += 1;
                } else {
                    rule_missed += 1;
                }
            }
        }
        // cordon's built-in answer for an unnamed clone3.
        if !case.names_clone3() {
            let d = Data::of(arch, nr_on(arch, "clone3"), [0; 6]);
            assert_eq!(
                run(&co, &d),
                Action::Errno(libc::ENOSYS as u16).ret(),
                "seed {seed}"
            );
        }
    }
    eprintln!(
        "seccomp reference ({arch}): {built} filters built both ways ({too_big} too big for seccompiler), \
         {compared} inputs compared ({rule_matched} matched a syscall's rules, {rule_missed} matched none \
         of them), {} distinct decisions; longest programs: cordon {longest_cordon} instructions, \
         seccompiler {longest_seccompiler}",
        outcomes.len()
    );
    // Over many cases, the inputs must exercise both sides of the rules.
    if cases >= 100 {
        assert!(
            rule_matched * 10 > compared && rule_missed * 10 > compared,
            "the inputs should often satisfy and often miss the rules"
        );
        assert!(too_big * 10 <= cases, "too many cases were too big: {too_big}");
        assert!(
            outcomes.len() >= 6,
            "the inputs reach too few decisions: {outcomes:?}"
        );
    }
}

/// The two compilers on a large allowlist: the same decision for every
/// syscall number, with cordon's search tree executing far fewer
/// instructions than seccompiler's linear chain.
#[test]
fn large_allowlist_agrees_and_cordon_runs_fewer_instructions() {
    for arch in Arch::ALL {
        large_allowlist(arch);
    }
}

fn large_allowlist(arch: Arch) {
    let allow = ["@default", "@file-read", "@file-write", "@process"];
    let policy: SeccompPolicy =
        serde_json::from_value(json!({"default_action": "errno", "allow": allow})).unwrap();
    let co = bpf::compile(&policy.compile_for(arch).unwrap());
    let mut members: BTreeSet<u32> = BTreeSet::new();
    for g in allow {
        members.extend(groups::expand_for(arch, g).unwrap());
    }
    assert!(!members.contains(&nr_on(arch, "clone3")));
    let case = Case {
        arch,
        mismatch: Action::Errno(libc::EPERM as u16),
        matched: Action::Allow,
        entries: members
            .iter()
            .map(|&n| {
                (
                    n,
                    Entry {
                        rules: Vec::new(),
                        how: How::Group,
                    },
                )
            })
            .collect(),
        groups: Vec::new(),
        noise: Vec::new(),
    };
    let sc = case.seccompiler().unwrap();
    let clone3 = nr_on(arch, "clone3");
    let (mut co_max, mut sc_max, mut co_sum, mut sc_sum, mut n) = (0, 0, 0, 0, 0);
    for number in 0..=arch.known_max() {
        if number == clone3 {
            continue;
        }
        let d = Data::of(arch, number, [0; 6]);
        let c = interp::run(&co, &d).unwrap();
        let s = interp::run(&sc, &d).unwrap();
        assert_eq!(c.ret, s.ret, "syscall {number}");
        assert_eq!(c.ret, case.model(&d), "syscall {number}");
        co_max = co_max.max(c.steps);
        sc_max = sc_max.max(s.steps);
        co_sum += c.steps;
        sc_sum += s.steps;
        n += 1;
    }
    eprintln!(
        "{arch}: {} ({} syscalls): cordon {} instructions, {} executed at most, {:.1} on average; \
         seccompiler {} instructions, {} executed at most, {:.1} on average",
        allow.join("+"),
        members.len(),
        co.len(),
        co_max,
        co_sum as f64 / f64::from(n),
        sc.len(),
        sc_max,
        sc_sum as f64 / f64::from(n),
    );
    assert!(
        co_max * 4 < sc_max,
        "cordon's tree: {co_max} steps at most, seccompiler's chain {sc_max}"
    );
}

/// The one comparison where the two differ by design: `masked_eq` with a
/// value that has bits outside the mask. cordon keeps the meaning it
/// documents, `(arg & mask) == value`, which then never holds; seccompiler
/// masks the value as well, so `arg & mask == value & mask`.
#[test]
fn masked_eq_with_bits_outside_the_mask_differs_by_design() {
    let cond = Cond {
        arg: 0,
        op: Op::MaskedEq(0xff),
        value: 0x1_01,
        low32: false,
    };
    let case = Case {
        arch: Arch::X86_64,
        mismatch: Action::Errno(libc::EPERM as u16),
        matched: Action::Allow,
        entries: [
            (
                nr("read"),
                Entry {
                    rules: vec![vec![cond]],
                    how: How::NoArgRule,
                },
            ),
            (
                nr("execve"),
                Entry {
                    rules: Vec::new(),
                    how: How::ByName,
                },
            ),
            (
                nr("exit_group"),
                Entry {
                    rules: Vec::new(),
                    how: How::ByName,
                },
            ),
            (
                nr("write"),
                Entry {
                    rules: Vec::new(),
                    how: How::ByName,
                },
            ),
        ]
        .into_iter()
        .collect(),
        groups: Vec::new(),
        noise: Vec::new(),
    };
    let (_, co) = case.cordon(0).unwrap();
    let sc = case.seccompiler().unwrap();
    let allow = Action::Allow.ret();
    let eperm = Action::Errno(libc::EPERM as u16).ret();
    for arg in [0x01u64, 0x101, 0x1_0001, 0xff01] {
        let d = Data::x86_64(nr("read"), [arg, 0, 0, 0, 0, 0]);
        assert_eq!(run(&co, &d), eperm, "cordon: {arg:#x} & 0xff never equals 0x101");
        assert_eq!(
            run(&sc, &d),
            allow,
            "seccompiler: {arg:#x} & 0xff == 0x101 & 0xff"
        );
    }
    // Within the mask they agree.
    for arg in [0x00u64, 0x02, 0x1_00] {
        let d = Data::x86_64(nr("read"), [arg, 0, 0, 0, 0, 0]);
        assert_eq!(run(&co, &d), eperm);
        assert_eq!(run(&sc, &d), eperm);
    }
}

/// The calls added after Linux 6.10 (the end of cordon's old hand-written
/// table) are in the table on both architectures, and filters naming them
/// agree with seccompiler on every number of the table.
#[test]
fn calls_newer_than_6_10_are_known_and_agree() {
    let newer = [
        "setxattrat",
        "getxattrat",
        "listxattrat",
        "removexattrat",
        "open_tree_attr",
        "file_getattr",
        "file_setattr",
    ];
    for arch in Arch::ALL {
        let mut calls: Vec<&str> = newer.to_vec();
        if arch == Arch::X86_64 {
            calls.push("uretprobe");
        }
        assert!(
            arch.known_max() >= 469,
            "{arch}: table ends at {}",
            arch.known_max()
        );
        let mut entries: BTreeMap<u32, Entry> = BTreeMap::new();
        for (i, c) in calls.iter().enumerate() {
            let n = arch
                .syscall_nr(c)
                .unwrap_or_else(|| panic!("{c} is not in cordon's {arch} table"));
            assert!(n > 462 || *c == "uretprobe", "{arch} {c}: {n}");
            // Every other call only with argument 0 equal to its index.
            let rules = if i % 2 == 0 {
                Vec::new()
            } else {
                vec![vec![Cond {
                    arg: 0,
                    op: Op::Eq,
                    value: i as u64,
                    low32: false,
                }]]
            };
            let how = if rules.is_empty() {
                How::ByName
            } else {
                How::NoArgRule
            };
            entries.insert(n, Entry { rules, how });
        }
        for r in REQUIRED {
            entries.insert(
                nr_on(arch, r),
                Entry {
                    rules: Vec::new(),
                    how: How::ByName,
                },
            );
        }
        let case = Case {
            arch,
            mismatch: Action::Errno(libc::EPERM as u16),
            matched: Action::Allow,
            entries,
            groups: Vec::new(),
            noise: Vec::new(),
        };
        let (json, co) = case.cordon(0).unwrap();
        let sc = case.seccompiler().unwrap();
        let clone3 = nr_on(arch, "clone3");
        let mut allowed = 0;
        for number in (0..=arch.known_max()).filter(|&n| n != clone3) {
            for arg0 in [0u64, 1, 2, 3, 5, 7] {
                let d = Data::of(arch, number, [arg0, 0, 0, 0, 0, 0]);
                let (c, s, m) = (run(&co, &d), run(&sc, &d), case.model(&d));
                assert_eq!(c, s, "{arch}: nr {number} arg0 {arg0}: {json}");
                assert_eq!(c, m, "{arch}: nr {number} arg0 {arg0}: {json}");
                if c == Action::Allow.ret() {
                    allowed += 1;
                }
            }
        }
        // The named calls (half of them only with their argument) and the
        // required ones, on every argument tried.
        assert!(
            allowed >= 6 * (calls.len() / 2 + REQUIRED.len()),
            "{arch}: {allowed}"
        );
    }
}
