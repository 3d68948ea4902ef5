//! Seccomp sections built from fuzz input compile to BPF programs that the
//! kernel would load and that agree with the model ([`Filter::decide`]).
//!
//! The input is turned into a seccomp section of the right shape: syscall
//! names from cordon's table, `@groups`, the policy actions, every operator,
//! argument values at the edges (0, 2^32-1, 2^32, 2^64-1, high word set,
//! named constants), argument indexes 0 to 5 (sometimes 6, an error), masks
//! (sometimes missing or misplaced, an error). For every section:
//!
//! - `compile` never panics; an error names a field of the section, and the
//!   same error comes back through a whole policy (`Policy::from_json`) with
//!   the path prefixed by `seccomp.` and, where the field is in the text, a
//!   line:column;
//! - the section serializes to JSON and parses back to the same section,
//!   which compiles to the same filter (or the same error);
//! - for a filter: `bpf::compile` of it and of `with_notify()` gives a
//!   program that passes the kernel's static checks (known opcodes, loads
//!   inside seccomp_data, forward in-range jumps, ends in a return) when it
//!   has at most `MAX_INSNS` instructions (longer ones are refused by the
//!   caller, and by the interpreter), and `interp::run` on it agrees with
//!   `Filter::decide` for arbitrary calls (x86_64 mostly, i386, random
//!   architectures; numbers from the filter, the table, x32, above the
//!   table, random; arguments near the filter's own values) plus calls
//!   derived from the filter's own rules.

#![no_main]

use std::sync::Once;

use cordon::policy::Policy;
use cordon::seccomp::arch::Arch;
use cordon::seccomp::bpf::{self, Insn};
use cordon::seccomp::ir::{Action, Cmp, Data, Filter, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use cordon::seccomp::{
    groups::GROUPS, interp, names, ActionSpec, ArgSpec, OpSpec, RuleSpec, SeccompPolicy, ValueSpec,
    HANDOFF_MAGIC, HANDOFF_NR, MAX_INSNS, REQUIRED,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// x86_64's (number, name) table, sorted by number.
fn x86_64_syscalls() -> &'static [(u32, &'static str)] {
    static TABLE: std::sync::OnceLock<Vec<(u32, &'static str)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| Arch::X86_64.syscalls().collect())
}

/// Syscalls with arguments the kernel reads as 32 bits (cordon compares only
/// their low word): picked more often, they exercise that path.
const LOW32_SYSCALLS: &[&str] = &[
    "ioctl",
    "socket",
    "socketpair",
    "personality",
    "prctl",
    "fcntl",
    "setsockopt",
    "getsockopt",
    "kill",
    "tkill",
    "tgkill",
    "open",
    "openat",
    "setns",
];

#[derive(Debug, Arbitrary)]
struct Input {
    /// What `allow` starts with (the payload needs execve, exit_group, write).
    base: u8,
    default_action: ActionIn,
    allow: Vec<NameIn>,
    rules: Vec<RuleIn>,
    /// Repeat the rules (with perturbed values) to grow the program past
    /// the 255-instruction reach of a conditional jump, and past MAX_INSNS.
    repeat: u8,
    report: bool,
    probes: Vec<ProbeIn>,
}

#[derive(Debug, Arbitrary)]
struct ActionIn {
    sel: u8,
    errno: u16,
}

#[derive(Debug, Arbitrary)]
struct NameIn {
    sel: u8,
    idx: u16,
}

#[derive(Debug, Arbitrary)]
struct RuleIn {
    syscall: NameIn,
    args: Vec<ArgIn>,
    action: ActionIn,
}

#[derive(Debug, Arbitrary)]
struct ArgIn {
    arg: u8,
    op: u8,
    value: ValueIn,
    mask: ValueIn,
    /// 255: a mask where it does not belong, or none where it is needed.
    mask_shape: u8,
}

#[derive(Debug, Arbitrary)]
struct ValueIn {
    sel: u8,
    raw: u64,
    /// How the value is written: a number, or a hex/decimal string.
    text: u8,
}

#[derive(Debug, Arbitrary)]
struct ProbeIn {
    arch: u8,
    arch_raw: u32,
    nr: u8,
    nr_raw: u32,
    args: [ArgProbe; 6],
    ip: u64,
}

#[derive(Debug, Arbitrary)]
struct ArgProbe {
    sel: u8,
    raw: u64,
}

fn action(a: &ActionIn) -> Action {
    match a.sel % 10 {
        0..=2 => Action::Allow,
        3 => Action::Errno(1), // EPERM, written "errno"
        // Numbers with a name (1..=133) and any valid errno.
        4 => Action::Errno(1 + a.errno % 133),
        5 => Action::Errno(1 + a.errno % 4095),
        6 => Action::KillProcess,
        7 => Action::KillThread,
        8 => Action::Trap,
        _ => Action::Log,
    }
}

fn syscall_name(n: &NameIn) -> String {
    if n.sel.is_multiple_of(3) {
        LOW32_SYSCALLS[usize::from(n.idx) % LOW32_SYSCALLS.len()].to_string()
    } else {
        x86_64_syscalls()[usize::from(n.idx) % x86_64_syscalls().len()]
            .1
            .to_string()
    }
}

fn allow_name(n: &NameIn) -> String {
    match n.sel {
        // A misspelt name or group: an error.
        255 => format!(
            "{}x",
            x86_64_syscalls()[usize::from(n.idx) % x86_64_syscalls().len()].1
        ),
        254 => format!("@{}x", &GROUPS[usize::from(n.idx) % GROUPS.len()].name[1..]),
        s if s % 4 == 0 => GROUPS[usize::from(n.idx) % GROUPS.len()].name.to_string(),
        _ => syscall_name(n),
    }
}

fn value(v: &ValueIn) -> ValueSpec {
    let raw = v.raw;
    let constants = names::constant_names();
    let named = |i: u64| constants[(i % constants.len() as u64) as usize];
    let number = match v.sel % 13 {
        0 => 0,
        1 => u64::from(u32::MAX),
        2 => 1 << 32,
        3 => u64::MAX,
        4 => raw | (1 << 32),
        5 => raw & 0xffff_ffff,
        6 => raw % 16,
        7 => (raw & 0xffff_ffff) | 0xffff_ffff_0000_0000,
        8 => 1 << 63,
        9 => (1 << 32) + (raw % 3) - 1,
        10 => {
            let name = named(raw);
            let value = names::constant(name).expect("listed constant");
            return ValueSpec {
                value,
                text: Some(name.to_string()),
            };
        }
        11 => {
            let (a, b) = (named(raw), named(raw >> 32));
            let value =
                names::constant(a).expect("listed constant") | names::constant(b).expect("listed constant");
            return ValueSpec {
                value,
                text: Some(format!("{a}|{b}")),
            };
        }
        _ => raw,
    };
    let text = match v.text % 4 {
        0 => Some(format!("{number:#x}")),
        1 => Some(number.to_string()),
        _ => None,
    };
    ValueSpec { value: number, text }
}

fn arg_spec(a: &ArgIn) -> ArgSpec {
    let op = match a.op % 7 {
        0 => OpSpec::Eq,
        1 => OpSpec::Ne,
        2 => OpSpec::Lt,
        3 => OpSpec::Le,
        4 => OpSpec::Gt,
        5 => OpSpec::Ge,
        _ => OpSpec::MaskedEq,
    };
    let wants_mask = op == OpSpec::MaskedEq;
    let mask = (wants_mask != (a.mask_shape == 255)).then(|| value(&a.mask));
    ArgSpec {
        arg: match a.arg {
            255 => 6,
            254 => 200,
            n => n % 6,
        },
        op,
        value: value(&a.value),
        mask,
    }
}

fn section(input: &Input) -> SeccompPolicy {
    let mut allow: Vec<String> = match input.base % 4 {
        0 => Vec::new(),
        1 => REQUIRED.iter().map(|s| s.to_string()).collect(),
        2 => vec!["@default".to_string()],
        _ => vec!["@default".to_string(), "@file-read".to_string()],
    };
    allow.extend(input.allow.iter().map(allow_name));
    let mut rules: Vec<RuleSpec> = input
        .rules
        .iter()
        .map(|r| RuleSpec {
            syscall: syscall_name(&r.syscall),
            args: r.args.iter().map(arg_spec).collect(),
            action: ActionSpec(action(&r.action)),
        })
        .collect();
    // Mostly a few copies; rarely many, past MAX_INSNS and the 4096-rule
    // limit (rarely: assembling a program of thousands of instructions
    // takes a while under ASan).
    let copies = match input.repeat {
        r @ 0..=251 => usize::from(r % 8),
        r => 16 << (r - 252),
    };
    if copies > 1 && !rules.is_empty() {
        let original = rules.clone();
        for k in 1..copies as u64 {
            for r in &original {
                let mut r = r.clone();
                for a in &mut r.args {
                    // Flip the low byte only: a 32-bit value stays 32-bit.
                    a.value = ValueSpec {
                        value: a.value.value ^ k,
                        text: None,
                    };
                }
                rules.push(r);
            }
        }
    }
    SeccompPolicy {
        default_action: ActionSpec(action(&input.default_action)),
        allow,
        rules,
        report: input.report,
    }
}

fuzz_target!(|input: Input| {
    static LEARN: Once = Once::new();
    LEARN.call_once(|| {
        let f = cordon::seccomp::learn_filter_for(Arch::X86_64);
        check_program(&f, &[]);
    });

    let sec = section(&input);
    // Values written as text must mean what they say.
    for r in &sec.rules {
        for a in &r.args {
            for v in std::iter::once(&a.value).chain(a.mask.as_ref()) {
                if let Some(t) = &v.text {
                    assert_eq!(names::parse_value(t), Ok(v.value), "{t:?}");
                }
            }
        }
    }
    let compiled = sec.compile();

    // JSON round trip: same section, same result.
    let json = serde_json::to_string(&sec).expect("a section serializes");
    let back: SeccompPolicy = match serde_json::from_str(&json) {
        Ok(b) => b,
        Err(e) => panic!("the section does not parse back: {e}\n{json}"),
    };
    assert_eq!(back, sec, "round trip changed the section:\n{json}");
    assert_eq!(back.compile(), compiled, "round trip changed the filter:\n{json}");

    // The same section inside a policy file.
    let text = format!("{{\n  \"version\": 1,\n  \"seccomp\": {json}\n}}\n");
    let policy = Policy::from_json("fuzz.json", &text);
    match (&compiled, &policy) {
        (Ok(_), Ok(p)) => assert_eq!(p.seccomp.as_ref(), Some(&sec)),
        (Err(se), Err(pe)) => {
            assert_eq!(pe.path, format!("seccomp.{}", se.path), "{pe}");
            assert_eq!(pe.message, se.message);
            assert!(!se.message.is_empty());
            let absent_mask = se.path.ends_with(".mask");
            if !absent_mask {
                assert!(pe.position.is_some(), "no position for {pe}\n{text}");
            }
            check_error_path(&sec, &se.path);
        }
        (c, p) => panic!("section compiles to {c:?} but the policy gives {p:?}\n{text}"),
    }

    let Ok(filter) = compiled else {
        return;
    };
    let pool = value_pool(&filter);
    let mut probes: Vec<Data> = input.probes.iter().map(|p| probe(p, &filter, &pool)).collect();
    probes.extend(rule_probes(&filter));
    check_program(&filter, &probes);
    // With "report": refusals go to the supervisor; the handoff call is
    // notified.
    let notify = filter.with_notify();
    let mut handoff = Data::x86_64(HANDOFF_NR, [HANDOFF_MAGIC, 0, 0, 0, 0, 0]);
    probes.push(handoff);
    handoff.args[0] ^= 1 << 32;
    probes.push(handoff);
    check_program(&notify, &probes);
});

/// An error's path names a field that exists in the section.
fn check_error_path(sec: &SeccompPolicy, path: &str) {
    let index = |s: &str, prefix: &str| -> Option<(usize, String)> {
        let rest = s.strip_prefix(prefix)?.strip_prefix('[')?;
        let (n, rest) = rest.split_once(']')?;
        Some((n.parse().ok()?, rest.to_string()))
    };
    if path == "allow" || path == "rules" || path == "report" {
        return;
    }
    if let Some((i, rest)) = index(path, "allow") {
        assert!(i < sec.allow.len() && rest.is_empty(), "{path}");
        return;
    }
    let Some((i, rest)) = index(path, "rules") else {
        panic!("unexpected error path {path:?}");
    };
    assert!(i < sec.rules.len(), "{path}");
    if rest == ".syscall" {
        return;
    }
    let Some((j, field)) = index(&rest, ".args") else {
        panic!("unexpected error path {path:?}");
    };
    assert!(j < sec.rules[i].args.len(), "{path}");
    assert!([".arg", ".mask", ".value"].contains(&field.as_str()), "{path}");
}

/// Values worth probing arguments with: the filter's own, and extremes.
fn value_pool(f: &Filter) -> Vec<u64> {
    let mut pool = vec![0, 1, u64::from(u32::MAX), 1 << 32, u64::MAX];
    for e in f.entries.values() {
        for r in &e.rules {
            for c in &r.conds {
                pool.push(c.value);
                if let Cmp::MaskedEq(m) = c.cmp {
                    pool.push(m);
                    pool.push(!m);
                    pool.push(c.value | !m);
                }
            }
        }
    }
    pool
}

fn probe(p: &ProbeIn, f: &Filter, pool: &[u64]) -> Data {
    let arch = match p.arch {
        0..=219 => AUDIT_ARCH_X86_64,
        220..=239 => AUDIT_ARCH_I386,
        _ => p.arch_raw,
    };
    let keys: Vec<u32> = f.entries.keys().copied().collect();
    let raw = p.nr_raw;
    let nr = match p.nr % 10 {
        0..=3 if !keys.is_empty() => {
            let k = keys[raw as usize % keys.len()];
            match raw >> 30 {
                0 => k.wrapping_sub(1),
                1 => k.wrapping_add(1),
                _ => k,
            }
        }
        0..=6 => x86_64_syscalls()[raw as usize % x86_64_syscalls().len()].0,
        7 => X32_SYSCALL_BIT | (raw & 0x3fff_ffff),
        8 => match raw % 4 {
            0 => HANDOFF_NR,
            1 => X32_SYSCALL_BIT - 1,
            _ => f.known_max + 1 + raw % 16,
        },
        _ => raw,
    };
    let mut args = [0u64; 6];
    for (a, ap) in args.iter_mut().zip(&p.args) {
        let v = pool[(ap.raw % pool.len() as u64) as usize];
        *a = match ap.sel % 9 {
            0 => ap.raw,
            1 | 2 => v,
            3 => v.wrapping_add(1),
            4 => v.wrapping_sub(1),
            5 => v ^ (1 << 32),
            6 => v | 0xffff_ffff_0000_0000,
            7 => (v & 0xffff_ffff) | (ap.raw << 32),
            _ => 0,
        };
    }
    Data {
        nr,
        arch,
        ip: p.ip,
        args,
    }
}

/// Calls around each rule's own values, for every syscall with rules.
fn rule_probes(f: &Filter) -> Vec<Data> {
    let mut out = Vec::new();
    for (&nr, e) in &f.entries {
        for r in &e.rules {
            for c in &r.conds {
                let v = c.value;
                for a in [
                    v,
                    v.wrapping_add(1),
                    v.wrapping_sub(1),
                    v ^ (1 << 32),
                    v & 0xffff_ffff,
                    0,
                    u64::MAX,
                ] {
                    // Every argument this value: conditions on other
                    // arguments of the rule see it too.
                    out.push(Data::x86_64(nr, [a; 6]));
                    let mut one = [0u64; 6];
                    one[usize::from(c.arg)] = a;
                    out.push(Data::x86_64(nr, one));
                }
                if out.len() > 1024 {
                    return out;
                }
            }
        }
    }
    out
}

/// Compile `f`, check the program statically and run it on `probes`.
fn check_program(f: &Filter, probes: &[Data]) {
    let prog = bpf::compile(f);
    if prog.len() > MAX_INSNS {
        // The caller (plan::program_or_error) refuses such a filter; the
        // interpreter, like the kernel, does too.
        let d = Data::x86_64(0, [0; 6]);
        assert!(interp::run(&prog, &d).is_err(), "{} instructions ran", prog.len());
        return;
    }
    static_check(&prog);
    for d in probes {
        let run = match interp::run(&prog, d) {
            Ok(r) => r,
            Err(e) => panic!("{e:?} on {d:x?}\n{}", bpf::disasm(&prog)),
        };
        assert!(run.steps <= prog.len());
        assert_eq!(
            Action::from_ret(run.ret),
            Some(f.decide(d)),
            "program and model disagree on {d:x?}, entry {:x?}\n{}",
            f.entries.get(&d.nr),
            bpf::disasm(&prog)
        );
    }
}

/// What the kernel's classic BPF checker and seccomp's own check demand.
fn static_check(prog: &[Insn]) {
    let n = prog.len();
    assert!(n >= 1, "empty program");
    for (pc, i) in prog.iter().enumerate() {
        let reach = n - pc - 1; // instructions after this one
        match i.code {
            bpf::LD_W_ABS => assert!(
                i.k % 4 == 0 && i.k < 64,
                "load outside seccomp_data at {pc}: {i:?}"
            ),
            bpf::ALU_AND_K => {}
            bpf::JMP_JA => assert!(
                (i.k as usize) < reach,
                "ja out of range at {pc}: {i:?}\n{}",
                bpf::disasm(prog)
            ),
            bpf::JMP_JEQ_K | bpf::JMP_JGT_K | bpf::JMP_JGE_K | bpf::JMP_JSET_K => assert!(
                usize::from(i.jt) < reach && usize::from(i.jf) < reach,
                "jump out of range at {pc}: {i:?}\n{}",
                bpf::disasm(prog)
            ),
            bpf::RET_K => assert!(
                Action::from_ret(i.k).is_some(),
                "unknown return value at {pc}: {i:?}"
            ),
            _ => panic!("unexpected opcode at {pc}: {i:?}"),
        }
    }
    assert_eq!(prog[n - 1].code, bpf::RET_K, "does not end in a return");
}
