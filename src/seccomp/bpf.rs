//! Classic BPF code generation for a [`Filter`]: a balanced binary search
//! over syscall-number ranges (runs of numbers with the same simple action
//! merged into one range), shared return instructions, and per-syscall
//! blocks for argument rules.
//!
//! Layout:
//! ```text
//!   ld arch; jeq AUDIT_ARCH_<filter's arch> else -> ret(foreign)
//!   ld nr;   jge 0x40000000 -> ret(x32)       (x86_64 only)
//!   search tree (jge K), leaves jump to a shared ret or a rule block
//!   rule blocks (argument checks, 32-bit halves of 64-bit arguments)
//!   shared rets, one per distinct action
//! ```
//! Code is built with symbolic labels and assembled in a second step;
//! a conditional jump whose target is more than 255 instructions ahead gets
//! a `ja` trampoline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::ir::{Action, Cmp, Cond, Entry, Filter};

/// One classic BPF instruction (`struct sock_filter`).
pub type Insn = libc::sock_filter;

/// An opcode built from libc's `BPF_*` parts (each fits in the 16-bit
/// `code` field).
const fn op(parts: u32) -> u16 {
    parts as u16
}

/// BPF_LD | BPF_W | BPF_ABS
pub const LD_W_ABS: u16 = op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS);
/// BPF_ALU | BPF_AND | BPF_K
pub const ALU_AND_K: u16 = op(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K);
/// BPF_JMP | BPF_JA
pub const JMP_JA: u16 = op(libc::BPF_JMP | libc::BPF_JA);
/// BPF_JMP | BPF_JEQ | BPF_K
pub const JMP_JEQ_K: u16 = op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K);
/// BPF_JMP | BPF_JGT | BPF_K
pub const JMP_JGT_K: u16 = op(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K);
/// BPF_JMP | BPF_JGE | BPF_K
pub const JMP_JGE_K: u16 = op(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K);
/// BPF_JMP | BPF_JSET | BPF_K
pub const JMP_JSET_K: u16 = op(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K);
/// BPF_RET | BPF_K
pub const RET_K: u16 = op(libc::BPF_RET | libc::BPF_K);

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

fn off_arg_lo(arg: u8) -> u32 {
    16 + 8 * u32::from(arg)
}

fn off_arg_hi(arg: u8) -> u32 {
    off_arg_lo(arg) + 4
}

/// A jump target before assembly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tgt {
    Next,
    L(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Ld(u32),
    And(u32),
    Jmp { code: u16, k: u32, jt: Tgt, jf: Tgt },
    Ja(usize),
    Ret(u32),
    Label(usize),
}

struct Gen {
    ops: Vec<Op>,
    labels: usize,
    rets: BTreeMap<Action, usize>,
}

impl Gen {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    fn ret(&mut self, a: Action) -> usize {
        if let Some(&l) = self.rets.get(&a) {
            return l;
        }
        let l = self.label();
        self.rets.insert(a, l);
        l
    }

    fn jmp(&mut self, code: u16, k: u32, jt: Tgt, jf: Tgt) {
        self.ops.push(Op::Jmp { code, k, jt, jf });
    }
}

/// A leaf of the search tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    /// Every number in the range gets this action.
    Simple(Action),
    /// One number with argument rules.
    Rules(u32),
}

/// Ranges `(start, leaf)` covering every number below the x32 bit (all
/// numbers on an architecture without x32), in order; runs of numbers with
/// the same simple action are one range.
fn ranges(f: &Filter) -> Vec<(u32, Leaf)> {
    // The last range reaches to u32::MAX in the search tree anyway.
    let end = f.arch.x32_bit().unwrap_or(u32::MAX);
    let mut out: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u32, leaf: Leaf| match out.last() {
        Some(&(_, last)) if last == leaf && matches!(leaf, Leaf::Simple(_)) => {}
        _ => out.push((start, leaf)),
    };
    // The gap [from, to): `default` up to known_max, `unknown` above.
    let gap = |push: &mut dyn FnMut(u32, Leaf), from: u32, to: u32| {
        if from < to && from <= f.known_max {
            push(from, Leaf::Simple(f.default));
        }
        let u = from.max(f.known_max.saturating_add(1));
        if u < to {
            push(u, Leaf::Simple(f.unknown));
        }
    };
    let mut cur = 0u32;
    for (&nr, e) in f.entries.range(..end) {
        gap(&mut push, cur, nr);
        push(nr, leaf_of(nr, e));
        cur = nr + 1;
    }
    gap(&mut push, cur, end);
    out
}

/// An equivalent entry with fewer rules: nothing after a rule without
/// conditions is reachable (it becomes the fallback), and trailing rules
/// whose action is the fallback change nothing.
fn simplified(e: &Entry) -> Entry {
    let mut e = e.clone();
    if let Some(i) = e.rules.iter().position(|r| r.conds.is_empty()) {
        e.fallback = e.rules[i].action;
        e.rules.truncate(i);
    }
    while e.rules.last().is_some_and(|r| r.action == e.fallback) {
        e.rules.pop();
    }
    e
}

fn leaf_of(nr: u32, e: &Entry) -> Leaf {
    let e = simplified(e);
    if e.rules.is_empty() {
        Leaf::Simple(e.fallback)
    } else {
        Leaf::Rules(nr)
    }
}

/// Compile a filter to BPF.
pub fn compile(f: &Filter) -> Vec<Insn> {
    let mut g = Gen {
        ops: Vec::new(),
        labels: 0,
        rets: BTreeMap::new(),
    };
    let foreign = g.ret(f.foreign_arch);
    g.ops.push(Op::Ld(OFF_ARCH));
    g.jmp(JMP_JEQ_K, f.arch.audit_arch(), Tgt::Next, Tgt::L(foreign));
    g.ops.push(Op::Ld(OFF_NR));
    if let Some(bit) = f.arch.x32_bit() {
        let x32 = g.ret(f.x32);
        g.jmp(JMP_JGE_K, bit, Tgt::L(x32), Tgt::Next);
    }

    let rs = ranges(f);
    let mut blocks: Vec<(usize, u32)> = Vec::new();
    let targets: Vec<usize> = rs
        .iter()
        .map(|&(_, leaf)| match leaf {
            Leaf::Simple(a) => g.ret(a),
            Leaf::Rules(nr) => {
                let l = g.label();
                blocks.push((l, nr));
                l
            }
        })
        .collect();
    tree(&mut g, &rs, &targets);

    for (label, nr) in blocks {
        g.ops.push(Op::Label(label));
        if let Some(e) = f.entries.get(&nr) {
            rule_block(&mut g, &simplified(e));
        }
    }
    let rets: Vec<(Action, usize)> = g.rets.iter().map(|(a, l)| (*a, *l)).collect();
    for (a, l) in rets {
        g.ops.push(Op::Label(l));
        g.ops.push(Op::Ret(a.ret()));
    }
    assemble(g.ops)
}

/// Emit a binary search over the ranges `rs` whose leaves jump to
/// `targets`; the accumulator holds the syscall number.
fn tree(g: &mut Gen, rs: &[(u32, Leaf)], targets: &[usize]) {
    if rs.len() <= 1 {
        if let Some(&t) = targets.first() {
            g.ops.push(Op::Ja(t));
        }
        return;
    }
    let mid = rs.len() / 2;
    let split = rs[mid].0;
    let (left, right) = (&rs[..mid], &rs[mid..]);
    let (lt, rt) = (&targets[..mid], &targets[mid..]);
    // A child that is a single range needs no code: jump straight to its target.
    let jt = if right.len() == 1 {
        Tgt::L(rt[0])
    } else {
        Tgt::L(g.label())
    };
    let jf = if left.len() == 1 { Tgt::L(lt[0]) } else { Tgt::Next };
    g.jmp(JMP_JGE_K, split, jt, jf);
    if left.len() > 1 {
        tree(g, left, lt);
    }
    if let (Tgt::L(l), true) = (jt, right.len() > 1) {
        g.ops.push(Op::Label(l));
        tree(g, right, rt);
    }
}

/// Argument rules of one syscall: each rule's conditions in turn; a failed
/// condition moves on to the next rule, the last falls back.
fn rule_block(g: &mut Gen, e: &Entry) {
    for (i, r) in e.rules.iter().enumerate() {
        let last = i + 1 == e.rules.len();
        let fail = if last { g.ret(e.fallback) } else { g.label() };
        let pass = g.ret(r.action);
        for (j, c) in r.conds.iter().enumerate() {
            let ok = if j + 1 == r.conds.len() {
                Tgt::L(pass)
            } else {
                Tgt::Next
            };
            cond(g, c, ok, Tgt::L(fail));
        }
        if r.conds.is_empty() {
            g.ops.push(Op::Ja(pass));
        }
        if !last {
            g.ops.push(Op::Label(fail));
        }
    }
    if e.rules.is_empty() {
        let fb = g.ret(e.fallback);
        g.ops.push(Op::Ja(fb));
    }
}

/// Check one 64-bit (or low 32-bit) unsigned condition.
fn cond(g: &mut Gen, c: &Cond, ok: Tgt, fail: Tgt) {
    // `Next` means "after this condition"; inside it, the next instruction
    // is another half of the comparison, so name the end explicitly.
    let end = (ok == Tgt::Next || fail == Tgt::Next).then(|| g.label());
    let fix = |t: Tgt| match (t, end) {
        (Tgt::Next, Some(l)) => Tgt::L(l),
        _ => t,
    };
    let (ok, fail) = (fix(ok), fix(fail));
    cond_body(g, c, ok, fail);
    if let Some(l) = end {
        g.ops.push(Op::Label(l));
    }
}

fn cond_body(g: &mut Gen, c: &Cond, ok: Tgt, fail: Tgt) {
    let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
    let lo = off_arg_lo(c.arg);
    let hi = off_arg_hi(c.arg);
    // Where to go when the high words decide nothing (they are equal).
    let compare_low = |g: &mut Gen, code: u16, k: u32, jt: Tgt, jf: Tgt| {
        g.ops.push(Op::Ld(lo));
        g.jmp(code, k, jt, jf);
    };
    match c.cmp {
        Cmp::Eq => {
            if !c.low32 {
                g.ops.push(Op::Ld(hi));
                g.jmp(JMP_JEQ_K, vhi, Tgt::Next, fail);
            }
            compare_low(g, JMP_JEQ_K, vlo, ok, fail);
        }
        Cmp::Ne => {
            if c.low32 {
                compare_low(g, JMP_JEQ_K, vlo, fail, ok);
            } else {
                g.ops.push(Op::Ld(hi));
                g.jmp(JMP_JEQ_K, vhi, Tgt::Next, ok);
                compare_low(g, JMP_JEQ_K, vlo, fail, ok);
            }
        }
        Cmp::MaskedEq(m) => {
            let (mhi, mlo) = ((m >> 32) as u32, m as u32);
            // A half with a zero mask is 0 whatever the argument: it matches
            // exactly when that half of the value is 0, and needs no code.
            let impossible = (!c.low32 && mhi == 0 && vhi != 0) || (mlo == 0 && vlo != 0);
            if impossible {
                if let Tgt::L(l) = fail {
                    g.ops.push(Op::Ja(l));
                }
                return;
            }
            let check_hi = !c.low32 && mhi != 0;
            if check_hi {
                g.ops.push(Op::Ld(hi));
                if mhi != u32::MAX {
                    g.ops.push(Op::And(mhi));
                }
                g.jmp(JMP_JEQ_K, vhi, if mlo == 0 { ok } else { Tgt::Next }, fail);
            }
            if mlo != 0 {
                g.ops.push(Op::Ld(lo));
                if mlo != u32::MAX {
                    g.ops.push(Op::And(mlo));
                }
                g.jmp(JMP_JEQ_K, vlo, ok, fail);
            } else if let (false, Tgt::L(l)) = (check_hi, ok) {
                // A zero mask: always true.
                g.ops.push(Op::Ja(l));
            }
        }
        Cmp::Gt | Cmp::Ge | Cmp::Lt | Cmp::Le => {
            // greater: true when arg > v (Gt) or arg >= v (Ge); less
            // conditions are the negation of the opposite greater one.
            let (code_lo, swap) = match c.cmp {
                Cmp::Gt => (JMP_JGT_K, false),
                Cmp::Ge => (JMP_JGE_K, false),
                Cmp::Lt => (JMP_JGE_K, true),
                _ => (JMP_JGT_K, true),
            };
            let (yes, no) = if swap { (fail, ok) } else { (ok, fail) };
            if !c.low32 {
                let eq_hi = g.label();
                g.ops.push(Op::Ld(hi));
                g.jmp(JMP_JGT_K, vhi, yes, Tgt::L(eq_hi));
                g.ops.push(Op::Label(eq_hi));
                g.jmp(JMP_JEQ_K, vhi, Tgt::Next, no);
            }
            compare_low(g, code_lo, vlo, yes, no);
        }
    }
}

/// Drop loads of a word the accumulator already holds on every path that
/// reaches them (argument rules tried one after another reload the same
/// argument). Jumps only go forward, so one pass sees every jump into a
/// label before the label.
fn drop_redundant_loads(ops: Vec<Op>) -> Vec<Op> {
    // What A holds: Some(k) = the word at offset k; None = unknown.
    let mut at_label: BTreeMap<usize, Option<Option<u32>>> = BTreeMap::new();
    let merge = |m: &mut BTreeMap<usize, Option<Option<u32>>>, l: usize, st: Option<u32>| {
        let e = m.entry(l).or_insert(Some(st));
        if *e != Some(st) {
            *e = Some(None);
        }
    };
    let mut out = Vec::with_capacity(ops.len());
    // None: unreachable by falling through (after ret/ja).
    let mut state: Option<Option<u32>> = Some(None);
    for op in ops {
        match op {
            Op::Label(l) => {
                let incoming = at_label.get(&l).copied().flatten();
                state = match (state, incoming) {
                    (None, x) => Some(x.unwrap_or(None)),
                    (Some(a), Some(b)) if a == b => Some(a),
                    (Some(a), None) if !at_label.contains_key(&l) => Some(a),
                    _ => Some(None),
                };
                out.push(op);
            }
            Op::Ld(k) => {
                if state != Some(Some(k)) {
                    out.push(op);
                }
                state = Some(Some(k));
            }
            Op::And(_) => {
                out.push(op);
                state = Some(None);
            }
            Op::Jmp { jt, jf, .. } => {
                let cur = state.flatten();
                for t in [jt, jf] {
                    if let Tgt::L(l) = t {
                        merge(&mut at_label, l, cur);
                    }
                }
                out.push(op);
            }
            Op::Ja(l) => {
                merge(&mut at_label, l, state.flatten());
                out.push(op);
                state = None;
            }
            Op::Ret(_) => {
                out.push(op);
                state = None;
            }
        }
    }
    out
}

/// Resolve labels; give far conditional jumps a trampoline.
fn assemble(ops: Vec<Op>) -> Vec<Insn> {
    let mut ops = drop_redundant_loads(ops);
    let mut labels = ops
        .iter()
        .filter_map(|o| if let Op::Label(l) = o { Some(*l) } else { None })
        .max()
        .map_or(0, |m| m + 1);
    loop {
        // Positions: labels take no space.
        let mut pos = vec![0usize; labels.max(1)];
        let mut at = Vec::with_capacity(ops.len());
        let mut n = 0usize;
        for o in &ops {
            at.push(n);
            match o {
                Op::Label(l) => {
                    if *l >= pos.len() {
                        pos.resize(l + 1, 0);
                    }
                    pos[*l] = n;
                }
                _ => n += 1,
            }
        }
        let off = |from: usize, t: Tgt| -> usize {
            match t {
                Tgt::Next => 0,
                Tgt::L(l) => pos[l] - from - 1,
            }
        };
        let far = ops.iter().enumerate().find_map(|(i, o)| match o {
            Op::Jmp { jt, jf, .. } if off(at[i], *jt) > 255 || off(at[i], *jf) > 255 => Some(i),
            _ => None,
        });
        let Some(i) = far else {
            return ops
                .iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    let p = at[i];
                    Some(match *o {
                        Op::Label(_) => return None,
                        Op::Ld(k) => Insn {
                            code: LD_W_ABS,
                            jt: 0,
                            jf: 0,
                            k,
                        },
                        Op::And(k) => Insn {
                            code: ALU_AND_K,
                            jt: 0,
                            jf: 0,
                            k,
                        },
                        Op::Ret(k) => Insn {
                            code: RET_K,
                            jt: 0,
                            jf: 0,
                            k,
                        },
                        Op::Ja(l) => Insn {
                            code: JMP_JA,
                            jt: 0,
                            jf: 0,
                            k: off(p, Tgt::L(l)) as u32,
                        },
                        Op::Jmp { code, k, jt, jf } => Insn {
                            code,
                            jt: off(p, jt) as u8,
                            jf: off(p, jf) as u8,
                            k,
                        },
                    })
                })
                .collect();
        };
        // Rewrite `jmp jt, jf` with a far target as a jump to a `ja` placed
        // right after it.
        let Op::Jmp { code, k, jt, jf } = ops[i] else {
            unreachable!()
        };
        let (tramp, after) = (labels, labels + 1);
        labels += 2;
        let is_far = |t: Tgt| off(at[i], t) > 255;
        let (new_jt, new_jf, target) = if is_far(jt) {
            (
                Tgt::L(tramp),
                if jf == Tgt::Next { Tgt::L(after) } else { jf },
                jt,
            )
        } else {
            (
                if jt == Tgt::Next { Tgt::L(after) } else { jt },
                Tgt::L(tramp),
                jf,
            )
        };
        let Tgt::L(far_label) = target else { unreachable!() };
        ops.splice(
            i..=i,
            [
                Op::Jmp {
                    code,
                    k,
                    jt: new_jt,
                    jf: new_jf,
                },
                Op::Label(tramp),
                Op::Ja(far_label),
                Op::Label(after),
            ],
        );
    }
}

/// A readable listing, one instruction a line.
pub fn disasm(prog: &[Insn]) -> String {
    let mut s = String::new();
    for (i, x) in prog.iter().enumerate() {
        let line = match x.code {
            LD_W_ABS => format!("ld  [{}]{}", x.k, field_name(x.k)),
            ALU_AND_K => format!("and #{:#x}", x.k),
            JMP_JA => format!("ja  {}", i + 1 + x.k as usize),
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K | JMP_JSET_K => {
                let op = match x.code {
                    JMP_JEQ_K => "jeq",
                    JMP_JGT_K => "jgt",
                    JMP_JGE_K => "jge",
                    _ => "jset",
                };
                format!(
                    "{op} #{:#x}, {}, {}",
                    x.k,
                    i + 1 + x.jt as usize,
                    i + 1 + x.jf as usize
                )
            }
            RET_K => format!("ret {}", ret_name(x.k)),
            _ => format!("code={:#06x} jt={} jf={} k={:#x}", x.code, x.jt, x.jf, x.k),
        };
        let _ = writeln!(s, "{i:4}: {line}");
    }
    s
}

fn field_name(k: u32) -> String {
    match k {
        0 => "  ; nr".to_string(),
        4 => "  ; arch".to_string(),
        8 | 12 => "  ; ip".to_string(),
        16..=63 => format!(
            "  ; arg{} {}",
            (k - 16) / 8,
            if (k - 16) % 8 == 0 { "lo" } else { "hi" }
        ),
        _ => String::new(),
    }
}

/// Name of a SECCOMP_RET_* value, e.g. `ERRNO(1)`.
pub fn ret_name(k: u32) -> String {
    match Action::from_ret(k) {
        Some(Action::Allow) => "ALLOW".to_string(),
        Some(Action::Errno(e)) => format!("ERRNO({e})"),
        Some(Action::KillProcess) => "KILL_PROCESS".to_string(),
        Some(Action::KillThread) => "KILL_THREAD".to_string(),
        Some(Action::Trap) => "TRAP".to_string(),
        Some(Action::Log) => "LOG".to_string(),
        Some(Action::Notify) => "USER_NOTIF".to_string(),
        None => format!("{k:#x}"),
    }
}

/// The program as a C array initialiser.
pub fn to_c(prog: &[Insn]) -> String {
    let mut s = format!(
        "/* {} instructions, generated by cordon */\nstruct sock_filter filter[] = {{\n",
        prog.len()
    );
    for x in prog {
        let _ = writeln!(s, "\t{{ {:#06x}, {}, {}, {:#010x} }},", x.code, x.jt, x.jf, x.k);
    }
    s.push_str("};\n");
    s
}

/// The program as raw bytes (struct sock_filter array, little-endian).
pub fn to_raw(prog: &[Insn]) -> Vec<u8> {
    let mut b = Vec::with_capacity(prog.len() * 8);
    for x in prog {
        b.extend_from_slice(&x.code.to_le_bytes());
        b.push(x.jt);
        b.push(x.jf);
        b.extend_from_slice(&x.k.to_le_bytes());
    }
    b
}
