use super::bpf::{self, Insn};
use super::interp;
use super::ir::{Action, Cmp, Cond, Data, Entry, Filter, Rule, AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64};
use super::*;

fn section(json: &str) -> SeccompPolicy {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn nr(name: &str) -> u32 {
    names::syscall_nr(name).unwrap_or_else(|| panic!("no syscall {name}"))
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Values near the interesting edges of `v`, plus noise.
fn probe_values(rng: &mut Rng, v: u64) -> Vec<u64> {
    let mut out = vec![
        v,
        v.wrapping_add(1),
        v.wrapping_sub(1),
        v ^ (1 << 32),
        v | 0xffff_ffff_0000_0000,
        0,
        u64::MAX,
    ];
    out.push(rng.next());
    out.push(v & 0xffff_ffff);
    out.push((v & 0xffff_ffff_0000_0000) | (rng.next() & 0xffff_ffff));
    out
}

/// Check that the compiled program and the model agree on many inputs
/// built around the filter's own numbers and values.
fn agree(f: &Filter, prog: &[Insn], seed: u64) -> usize {
    let mut rng = Rng(seed | 1);
    let mut values: Vec<u64> = vec![0, 1, 2, u64::MAX];
    for e in f.entries.values() {
        for r in &e.rules {
            for c in &r.conds {
                values.extend(probe_values(&mut rng, c.value));
                if let Cmp::MaskedEq(m) = c.cmp {
                    values.push(m);
                    values.push(!m);
                }
            }
        }
    }
    let mut nrs: Vec<u32> = vec![
        0,
        1,
        f.known_max,
        f.known_max + 1,
        0x3fff_ffff,
        0x4000_0000,
        0x4000_0001,
        u32::MAX,
    ];
    for &n in f.entries.keys() {
        nrs.extend([n, n.wrapping_sub(1), n + 1]);
    }
    let mut max_steps = 0;
    for &n in &nrs {
        for _ in 0..64 {
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = values[rng.below(values.len() as u64) as usize];
            }
            for arch in [AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64, 0x4000_0003 /* i386 */] {
                let d = Data {
                    nr: n,
                    arch,
                    ip: rng.next(),
                    args,
                };
                let run = interp::run(prog, &d).expect("program runs");
                assert_eq!(
                    Action::from_ret(run.ret),
                    Some(f.decide(&d)),
                    "disagree on nr={n} arch={arch:#x} args={args:x?} entry={:x?}\n{}",
                    f.entries.get(&n),
                    bpf::disasm(prog)
                );
                max_steps = max_steps.max(run.steps);
            }
        }
    }
    max_steps
}

const MIN: &str = r#"{"allow": ["execve", "exit_group", "write"]}"#;

#[test]
fn minimal_policy_golden_listing() {
    let f = section(MIN).compile().unwrap();
    let prog = bpf::compile(&f);
    // Reviewed by hand: ranges [0] read EPERM, [1] write ALLOW, [2,0x3b)
    // EPERM, [0x3b] execve ALLOW, [0x3c,0xe7) EPERM, [0xe7] exit_group
    // ALLOW, [0xe8,0x1b3) EPERM, [0x1b3] clone3 ENOSYS, [0x1b4,0x1d6) EPERM,
    // [0x1d6,..) unknown ENOSYS.
    let expected = r"
   0: ld  [4]  ; arch
   1: jeq #0xc000003e, 2, 16
   2: ld  [0]  ; nr
   3: jge #0x40000000, 15, 4
   4: jge #0xe7, 9, 5
   5: jge #0x2, 7, 6
   6: jge #0x1, 13, 14
   7: jge #0x3b, 8, 14
   8: jge #0x3c, 14, 13
   9: jge #0x1b3, 11, 10
  10: jge #0xe8, 14, 13
  11: jge #0x1b4, 12, 15
  12: jge #0x1d6, 15, 14
  13: ret ALLOW
  14: ret ERRNO(1)
  15: ret ERRNO(38)
  16: ret KILL_PROCESS
";
    assert_eq!(bpf::disasm(&prog), &expected[1..]);
    agree(&f, &prog, 1);
}

#[test]
fn always_rules_hold_whatever_the_policy() {
    let f = section(MIN).compile().unwrap();
    let prog = bpf::compile(&f);
    let dec = |d: Data| Action::from_ret(interp::run(&prog, &d).unwrap().ret).unwrap();
    // Foreign architecture (int 0x80): kill.
    let mut d = Data::x86_64(nr("write"), [0; 6]);
    d.arch = 0x4000_0003;
    assert_eq!(dec(d), Action::KillProcess);
    // x32 numbers: ENOSYS, even for an allowed call's x32 alias.
    assert_eq!(
        dec(Data::x86_64(0x4000_0000 | nr("write"), [0; 6])),
        Action::Errno(38)
    );
    // clone3: ENOSYS unless named.
    assert_eq!(dec(Data::x86_64(nr("clone3"), [0; 6])), Action::Errno(38));
    // Above the table: ENOSYS. Inside: the default.
    assert_eq!(dec(Data::x86_64(f.known_max + 1, [0; 6])), Action::Errno(38));
    assert_eq!(dec(Data::x86_64(nr("ptrace"), [0; 6])), Action::Errno(1));
    assert_eq!(dec(Data::x86_64(nr("write"), [0; 6])), Action::Allow);
    let named = section(r#"{"allow": ["execve", "exit_group", "write", "clone3"]}"#)
        .compile()
        .unwrap();
    assert_eq!(named.decide(&Data::x86_64(nr("clone3"), [0; 6])), Action::Allow);
}

#[test]
fn rules_narrow_a_group_and_named_syscalls_fall_back_to_allow() {
    let s = section(
        r#"{"allow": ["@default", "@network"],
            "rules": [{"syscall": "socket", "args": [{"arg": 0, "op": "eq", "value": "AF_UNIX"}], "action": "allow"}]}"#,
    );
    let f = s.compile().unwrap();
    let sock = |fam: u64| f.decide(&Data::x86_64(nr("socket"), [fam, 1, 0, 0, 0, 0]));
    assert_eq!(sock(libc::AF_UNIX as u64), Action::Allow);
    assert_eq!(sock(libc::AF_INET as u64), Action::Errno(1));
    // The same rule with socket named: everything else falls back to allow.
    let mut s2 = s.clone();
    s2.allow.push("socket".into());
    let f2 = s2.compile().unwrap();
    assert_eq!(
        f2.decide(&Data::x86_64(nr("socket"), [libc::AF_INET as u64, 1, 0, 0, 0, 0])),
        Action::Allow
    );
}

#[test]
fn thirty_two_bit_arguments_ignore_the_high_word() {
    let f = section(
        r#"{"allow": ["@default", "ioctl"],
            "rules": [{"syscall": "ioctl", "args": [{"arg": 1, "op": "eq", "value": "TIOCSTI"}], "action": "errno"}]}"#,
    )
    .compile()
    .unwrap();
    let prog = bpf::compile(&f);
    for cmd in [0x5412u64, 0x1_0000_5412, 0xffff_ffff_0000_5412] {
        let d = Data::x86_64(nr("ioctl"), [0, cmd, 0, 0, 0, 0]);
        assert_eq!(f.decide(&d), Action::Errno(1), "{cmd:#x}");
        assert_eq!(
            Action::from_ret(interp::run(&prog, &d).unwrap().ret),
            Some(Action::Errno(1)),
            "{cmd:#x}"
        );
    }
    let ok = Data::x86_64(nr("ioctl"), [0, 0x5401, 0, 0, 0, 0]);
    assert_eq!(f.decide(&ok), Action::Allow);
    agree(&f, &prog, 7);
}

#[test]
fn every_operator_compiles_to_what_the_model_says() {
    let ops = ["eq", "ne", "lt", "le", "gt", "ge"];
    for (i, op) in ops.iter().enumerate() {
        for value in [
            "0",
            "1",
            "0xffffffff",
            "0x100000000",
            "0x1234567800000010",
            "18446744073709551615",
        ] {
            let json = format!(
                r#"{{"allow": ["@default"], "rules": [
                    {{"syscall": "mmap", "args": [{{"arg": 2, "op": "{op}", "value": {value}}}], "action": "allow"}},
                    {{"syscall": "mmap", "args": [{{"arg": 3, "op": "masked_eq", "mask": "0xff00000000ff", "value": "0x1200000034"}}], "action": {{"errno": "EACCES"}}}}]}}"#,
                value = if value.starts_with("0x") {
                    format!("\"{value}\"")
                } else {
                    value.to_string()
                }
            );
            let f = section(&json).compile().unwrap();
            let prog = bpf::compile(&f);
            agree(&f, &prog, 100 + i as u64);
        }
    }
}

#[test]
fn many_rules_need_far_jumps_and_still_agree() {
    // Hundreds of rules push shared returns beyond 255 instructions.
    let mut rules = Vec::new();
    for k in 0..200 {
        rules.push(format!(
            r#"{{"syscall": "ioctl", "args": [{{"arg": 1, "op": "eq", "value": {k}}}], "action": {{"errno": {e}}}}}"#,
            e = 1 + k % 7
        ));
    }
    let json = format!(r#"{{"allow": ["@default"], "rules": [{}]}}"#, rules.join(","));
    let f = section(&json).compile().unwrap();
    let prog = bpf::compile(&f);
    assert!(prog.len() > 256, "{}", prog.len());
    assert!(prog.iter().any(|i| i.code == bpf::JMP_JA), "expected trampolines");
    agree(&f, &prog, 3);
}

#[test]
fn random_filters_agree_with_the_model() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let actions = [
        Action::Allow,
        Action::Errno(1),
        Action::Errno(13),
        Action::KillProcess,
        Action::Trap,
        Action::Log,
    ];
    for round in 0..200 {
        let mut entries = std::collections::BTreeMap::new();
        for _ in 0..rng.below(40) {
            let n = rng.below(470) as u32;
            let mut rules = Vec::new();
            for _ in 0..rng.below(4) {
                let mut conds = Vec::new();
                for _ in 0..rng.below(3) {
                    let cmp = match rng.below(7) {
                        0 => Cmp::Eq,
                        1 => Cmp::Ne,
                        2 => Cmp::Lt,
                        3 => Cmp::Le,
                        4 => Cmp::Gt,
                        5 => Cmp::Ge,
                        _ => Cmp::MaskedEq(match rng.below(5) {
                            0 => rng.next() & 0xffff_ffff,
                            1 => rng.next() & 0xffff_ffff_0000_0000,
                            2 => 0,
                            3 => u64::MAX,
                            _ => rng.next(),
                        }),
                    };
                    let low32 = rng.below(3) == 0;
                    let mut value = match rng.below(3) {
                        0 => rng.below(10),
                        1 => rng.next() & 0xffff_ffff,
                        _ => rng.next(),
                    };
                    if low32 {
                        value &= 0xffff_ffff;
                    }
                    conds.push(Cond {
                        arg: rng.below(6) as u8,
                        cmp,
                        value,
                        low32,
                    });
                }
                rules.push(Rule {
                    conds,
                    action: actions[rng.below(6) as usize],
                });
            }
            entries.insert(
                n,
                Entry {
                    rules,
                    fallback: actions[rng.below(6) as usize],
                },
            );
        }
        let arch = if round % 2 == 0 {
            Arch::X86_64
        } else {
            Arch::Aarch64
        };
        let f = Filter {
            arch,
            foreign_arch: Action::KillProcess,
            x32: Action::Errno(38),
            default: actions[rng.below(6) as usize],
            unknown: Action::Errno(38),
            known_max: arch.known_max(),
            entries,
        };
        agree(&f, &bpf::compile(&f), round);
    }
}

#[test]
fn a_big_allowlist_is_small_and_shallow() {
    let f = section(
        r#"{"allow": ["@default", "@file-read", "@file-write", "@process", "@signal", "@network", "@ipc",
                      "@time", "@memory", "@io-event", "@system-info", "@credentials", "@resources", "@aio"]}"#,
    )
    .compile()
    .unwrap();
    let prog = bpf::compile(&f);
    let steps = agree(&f, &prog, 11);
    assert!(
        prog.len() <= 96,
        "{} instructions\n{}",
        prog.len(),
        bpf::disasm(&prog)
    );
    assert!(steps <= 20, "{steps} steps");
}

#[test]
fn required_syscalls_are_checked() {
    let e = section(r#"{"allow": ["read"]}"#).compile().unwrap_err();
    assert_eq!(e.path, "allow");
    assert!(
        e.message.contains("execve") && e.message.contains("@default"),
        "{}",
        e.message
    );
    // Allowed through a rule counts.
    section(r#"{"allow": ["exit_group", "write"], "rules": [{"syscall": "execve", "action": "allow"}]}"#)
        .compile()
        .unwrap();
}

#[test]
fn bad_sections_name_the_field() {
    let cases = [
        (r#"{"allow": ["@default", "opnat"]}"#, "allow[1]", "openat"),
        (
            r#"{"allow": ["@default", "@fle-read"]}"#,
            "allow[1]",
            "@file-read",
        ),
        (
            r#"{"allow": ["@default"], "rules": [{"syscall": "ioctl", "args": [{"arg": 6, "op": "eq", "value": 1}], "action": "allow"}]}"#,
            "rules[0].args[0].arg",
            "0 to 5",
        ),
        (
            r#"{"allow": ["@default"], "rules": [{"syscall": "clone", "args": [{"arg": 0, "op": "masked_eq", "value": 0}], "action": "allow"}]}"#,
            "rules[0].args[0].mask",
            "mask",
        ),
        (
            r#"{"allow": ["@default"], "rules": [{"syscall": "ioctl", "args": [{"arg": 1, "op": "eq", "value": "0x100005412"}], "action": "allow"}]}"#,
            "rules[0].args[0].value",
            "32 bits",
        ),
    ];
    for (json, path, hint) in cases {
        let e = section(json).compile().unwrap_err();
        assert_eq!(e.path, path, "{json}");
        assert!(e.message.contains(hint), "{json}: {}", e.message);
    }
    for bad in [
        r#"{"allow": [], "default_action": "deny"}"#,
        r#"{"allow": [], "default_action": {"errno": "EPERMM"}}"#,
        r#"{"allow": [], "rules": [{"syscall": "read", "args": [{"arg": 0, "op": "eq", "value": "AF_UNXI"}], "action": "allow"}]}"#,
        r#"{"allow": [], "colour": 1}"#,
    ] {
        assert!(serde_json::from_str::<SeccompPolicy>(bad).is_err(), "{bad}");
    }
    let e = serde_json::from_str::<SeccompPolicy>(r#"{"default_action": "kill_proces"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("kill_process"), "{e}");
}

#[test]
fn actions_round_trip_through_json() {
    for a in [
        "\"allow\"",
        "\"errno\"",
        "{\"errno\":\"ENOSYS\"}",
        "\"kill_process\"",
        "\"kill_thread\"",
        "\"trap\"",
        "\"log\"",
    ] {
        let spec: ActionSpec = serde_json::from_str(a).unwrap();
        assert_eq!(serde_json::to_string(&spec).unwrap(), a);
    }
}

#[test]
fn argument_rule_golden_listing() {
    let f = section(
        r#"{"allow": ["execve", "exit_group", "write"],
            "rules": [{"syscall": "socket", "args": [{"arg": 0, "op": "eq", "value": "AF_UNIX"}], "action": "allow"},
                      {"syscall": "mmap", "args": [{"arg": 2, "op": "lt", "value": "0x100000002"}], "action": "allow"}]}"#,
    )
    .compile()
    .unwrap();
    let prog = bpf::compile(&f);
    // Reviewed by hand: mmap (9) compares the high word of arg2 first
    // (above 1: refused; equal: the low word decides), socket (0x29)
    // compares only the low word of its 32-bit family argument.
    let expected = r"
   0: ld  [4]  ; arch
   1: jeq #0xc000003e, 2, 27
   2: ld  [0]  ; nr
   3: jge #0x40000000, 26, 4
   4: jge #0x3b, 11, 5
   5: jge #0x9, 8, 6
   6: jge #0x1, 7, 25
   7: jge #0x2, 25, 24
   8: jge #0x29, 10, 9
   9: jge #0xa, 25, 17
  10: jge #0x2a, 25, 22
  11: jge #0xe8, 14, 12
  12: jge #0x3c, 13, 24
  13: jge #0xe7, 24, 25
  14: jge #0x1b4, 16, 15
  15: jge #0x1b3, 26, 25
  16: jge #0x1d6, 26, 25
  17: ld  [36]  ; arg2 hi
  18: jgt #0x1, 25, 19
  19: jeq #0x1, 20, 24
  20: ld  [32]  ; arg2 lo
  21: jge #0x2, 25, 24
  22: ld  [16]  ; arg0 lo
  23: jeq #0x1, 24, 25
  24: ret ALLOW
  25: ret ERRNO(1)
  26: ret ERRNO(38)
  27: ret KILL_PROCESS
";
    assert_eq!(bpf::disasm(&prog), &expected[1..]);
    agree(&f, &prog, 5);
}

#[test]
fn docker_default_profile_meets_the_size_and_depth_targets() {
    let text = include_str!("../../tests/data/docker-default-seccomp.json");
    let imported = super::import::import_profile(text, "docker-default-seccomp.json").unwrap();
    let f = imported.section.compile().unwrap();
    let prog = bpf::compile(&f);
    let depth = super::tools::longest_path(&prog).unwrap();
    // kafel's size is 96; libseccomp's default output is 327 instructions
    // and ~307 executed on an argument-checked call.
    assert!(
        prog.len() <= 96,
        "{} instructions\n{}",
        prog.len(),
        bpf::disasm(&prog)
    );
    assert!(
        depth <= 20,
        "{depth} instructions on the longest path\n{}",
        bpf::disasm(&prog)
    );
    let steps = agree(&f, &prog, 21);
    assert!(steps <= depth);
}

#[test]
fn repeated_loads_are_dropped_and_zero_mask_halves_need_no_code() {
    let f = section(
        r#"{"allow": ["execve", "exit_group", "write"],
            "rules": [{"syscall": "personality", "args": [{"arg": 0, "op": "eq", "value": 0}], "action": "allow"},
                      {"syscall": "personality", "args": [{"arg": 0, "op": "eq", "value": 8}], "action": "allow"},
                      {"syscall": "clone", "args": [{"arg": 0, "op": "masked_eq", "mask": "0x7e020000", "value": 0}], "action": "allow"},
                      {"syscall": "mmap", "args": [{"arg": 3, "op": "masked_eq", "mask": "0x100000000", "value": "0x100000000"}], "action": "allow"},
                      {"syscall": "clone3", "action": {"errno": "ENOSYS"}},
                      {"syscall": "clone3", "args": [{"arg": 0, "op": "eq", "value": 1}], "action": "allow"}]}"#,
    )
    .compile()
    .unwrap();
    let prog = bpf::compile(&f);
    let listing = bpf::disasm(&prog);
    // personality loads arg0 once for both rules; clone checks only the low
    // word (the mask's high half is zero); mmap only the high word.
    assert_eq!(listing.matches("ld  [16]").count(), 2, "{listing}");
    assert_eq!(listing.matches("ld  [20]").count(), 0, "{listing}");
    assert_eq!(listing.matches("ld  [40]").count(), 0, "{listing}");
    assert_eq!(listing.matches("ld  [44]").count(), 1, "{listing}");
    // clone3's first rule always matches: no block for it, no ja.
    assert!(!listing.contains("ja "), "{listing}");
    agree(&f, &prog, 33);
}

#[test]
fn setid_guard_refuses_set_id_modes_and_keeps_the_rest() {
    let policy = crate::policy::Policy::builtin_default().expect("default");
    let base = policy
        .seccomp
        .as_ref()
        .expect("seccomp")
        .compile()
        .expect("compiles");
    for f in [base.clone(), crate::seccomp::learn_filter_for(Arch::X86_64)] {
        let guarded = crate::seccomp::setid_guard(&f);
        let prog = crate::seccomp::bpf::compile(&guarded);
        let nr = |n: &str| names::syscall_nr(n).expect(n);
        let both = |d: Data| {
            let model = guarded.decide(&d);
            let bpf = Action::from_ret(interp::run(&prog, &d).expect("runs").ret).expect("action");
            assert_eq!(model, bpf, "{d:?}");
            model
        };
        let eperm = Action::Errno(libc::EPERM as u16);
        let enosys = Action::Errno(libc::ENOSYS as u16);
        let creat = libc::O_CREAT as u64 | libc::O_WRONLY as u64;
        let tmpfile = libc::O_TMPFILE as u64 | libc::O_RDWR as u64;
        for (call, args) in [
            ("chmod", [0, 0o4755, 0, 0, 0, 0]),
            ("chmod", [0, 0o2755 | 1 << 40, 0, 0, 0, 0]),
            ("fchmod", [3, 0o6755, 0, 0, 0, 0]),
            ("fchmodat", [3, 0, 0o4000, 0, 0, 0]),
            ("fchmodat2", [3, 0, 0o4000, 0, 0, 0]),
            ("creat", [0, 0o4755, 0, 0, 0, 0]),
            ("open", [0, creat, 0o4755, 0, 0, 0]),
            ("openat", [3, 0, creat, 0o2755, 0, 0]),
            ("openat", [3, 0, tmpfile, 0o4755, 0, 0]),
            ("mknod", [0, 0o104755, 0, 0, 0, 0]),
            ("mknodat", [3, 0, 0o104755, 0, 0, 0]),
            ("mkdir", [0, 0o2755, 0, 0, 0, 0]),
            ("mkdirat", [3, 0, 0o2755, 0, 0, 0]),
        ] {
            assert_eq!(both(Data::x86_64(nr(call), args)), eperm, "{call} {args:?}");
        }
        assert_eq!(both(Data::x86_64(nr("openat2"), [3, 0, 0, 24, 0, 0])), enosys);
        assert_eq!(
            both(Data::x86_64(nr("io_uring_setup"), [8, 0, 0, 0, 0, 0])),
            enosys
        );
        // What the guard does not concern is decided as before.
        for (call, args) in [
            ("chmod", [0, 0o755, 0, 0, 0, 0]),
            ("open", [0, libc::O_RDONLY as u64, 0o4755, 0, 0, 0]),
            ("openat", [3, 0, creat, 0o644, 0, 0]),
            ("mkdir", [0, 0o1777, 0, 0, 0, 0]),
            ("read", [0, 0, 0, 0, 0, 0]),
        ] {
            let d = Data::x86_64(nr(call), args);
            assert_eq!(both(d), f.decide(&d), "{call} {args:?}");
        }
    }
    // Without a seccomp section: only the guard, and the bypasses closed.
    let g = crate::seccomp::guard_only_filter_for(Arch::X86_64);
    let nr = |n: &str| names::syscall_nr(n).expect(n);
    assert_eq!(
        g.decide(&Data::x86_64(nr("chmod"), [0, 0o4755, 0, 0, 0, 0])),
        Action::Errno(libc::EPERM as u16)
    );
    assert_eq!(
        g.decide(&Data::x86_64(nr("chmod"), [0, 0o755, 0, 0, 0, 0])),
        Action::Allow
    );
    assert_eq!(g.decide(&Data::x86_64(nr("mount"), [0; 6])), Action::Allow);
    assert_eq!(
        g.decide(&Data {
            arch: 0x4000_0003,
            ..Data::x86_64(15, [0; 6])
        }),
        Action::KillProcess
    );
    assert_eq!(
        g.decide(&Data::x86_64(nr("chmod") | ir::X32_SYSCALL_BIT, [0; 6])),
        Action::Errno(libc::ENOSYS as u16)
    );
}

#[test]
fn default_policy_compiles_for_aarch64_and_decides_with_aarch64_numbers() {
    let policy = crate::policy::Policy::builtin_default().expect("default");
    let sc = policy.seccomp.as_ref().expect("seccomp");
    let a = Arch::Aarch64;
    let f = sc.compile_for(a).expect("compiles for aarch64");
    assert_eq!(f.arch, a);
    assert_eq!(f.known_max, a.known_max());
    let prog = bpf::compile(&f);
    assert!(prog.len() <= MAX_INSNS);
    let listing = bpf::disasm(&prog);
    assert!(listing.contains("jeq #0xc00000b7"), "{listing}");
    assert!(
        !listing.contains("#0x40000000"),
        "no x32 check on aarch64:\n{listing}"
    );
    let run = |nr: &str, args: [u64; 6]| {
        let n = a.syscall_nr(nr).unwrap_or_else(|| panic!("no aarch64 {nr}"));
        let d = Data::of(a, n, args);
        let r = interp::run(&prog, &d).expect("runs");
        let got = Action::from_ret(r.ret).expect("known action");
        assert_eq!(got, f.decide(&d), "{nr}");
        got
    };
    let eperm = Action::Errno(libc::EPERM as u16);
    let enosys = Action::Errno(libc::ENOSYS as u16);
    // aarch64 numbers, not x86_64 ones: openat is 56 there (x86_64's
    // umask is 95, aarch64's 166; mount is 40 on aarch64, 165 on x86_64).
    assert_eq!(a.syscall_nr("openat"), Some(56));
    assert_eq!(run("openat", [0; 6]), Action::Allow);
    assert_eq!(run("execve", [0; 6]), Action::Allow);
    assert_eq!(run("exit_group", [0; 6]), Action::Allow);
    assert_eq!(run("write", [0; 6]), Action::Allow);
    assert_eq!(run("getxattrat", [0; 6]), Action::Allow);
    assert_eq!(run("setxattrat", [0; 6]), Action::Allow);
    assert_eq!(run("mount", [0; 6]), eperm);
    assert_eq!(run("ptrace", [0; 6]), eperm);
    assert_eq!(run("clone3", [0; 6]), enosys);
    let newuser = libc::CLONE_NEWUSER as u64;
    assert_eq!(run("clone", [0x11, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(run("clone", [newuser, 0, 0, 0, 0, 0]), eperm);
    assert_eq!(
        run("socket", [libc::AF_UNIX as u64, 1, 0, 0, 0, 0]),
        Action::Allow
    );
    assert_eq!(run("socket", [libc::AF_PACKET as u64, 3, 0, 0, 0, 0]), eperm);
    assert_eq!(
        run("ioctl", [0, names::ioctl_request(libc::TIOCSTI), 0, 0, 0, 0]),
        eperm
    );
    // x86_64 calls are a foreign architecture for this filter, and the
    // numbers above the table get ENOSYS (no x32 range on aarch64).
    let x86 = Data::x86_64(Arch::X86_64.syscall_nr("read").unwrap(), [0; 6]);
    assert_eq!(
        Action::from_ret(interp::run(&prog, &x86).unwrap().ret),
        Some(Action::KillProcess)
    );
    for nr in [a.known_max() + 1, 0x4000_0000, u32::MAX] {
        let d = Data::of(a, nr, [0; 6]);
        assert_eq!(
            Action::from_ret(interp::run(&prog, &d).unwrap().ret),
            Some(enosys),
            "{nr:#x}"
        );
    }
    agree(&f, &prog, 77);
    // And the native filter does not accept aarch64 calls.
    let native = bpf::compile(&sc.compile_for(Arch::X86_64).unwrap());
    let d = Data::of(a, 56, [0; 6]);
    assert_eq!(
        Action::from_ret(interp::run(&native, &d).unwrap().ret),
        Some(Action::KillProcess)
    );
}

#[test]
fn learn_and_guard_filters_exist_for_every_arch() {
    for a in Arch::ALL {
        let l = crate::seccomp::learn_filter_for(a);
        let g = crate::seccomp::guard_only_filter_for(a);
        for f in [&l, &g] {
            assert_eq!(f.arch, a);
            agree(f, &bpf::compile(f), 3);
        }
        let chmodat = a.syscall_nr("fchmodat").unwrap();
        assert_eq!(
            g.decide(&Data::of(a, chmodat, [0, 0, 0o4755, 0, 0, 0])),
            Action::Errno(libc::EPERM as u16)
        );
        assert_eq!(
            g.decide(&Data::of(a, chmodat, [0, 0, 0o755, 0, 0, 0])),
            Action::Allow
        );
    }
}

#[test]
fn tcp_wall_guard_refuses_mptcp_and_smc_sockets_and_keeps_the_rest() {
    let policy = crate::policy::Policy::builtin_default().expect("default");
    let base = policy
        .seccomp
        .as_ref()
        .expect("seccomp")
        .compile()
        .expect("compiles");
    let alone = crate::seccomp::tcp_wall_only_filter().expect("native");
    let nr = |n: &str| names::syscall_nr(n).expect(n);
    let refused = Action::Errno(libc::EPROTONOSUPPORT as u16);
    let (inet, inet6, stream) = (
        libc::AF_INET as u64,
        libc::AF_INET6 as u64,
        libc::SOCK_STREAM as u64,
    );
    for (f, guarded) in [
        (base.clone(), crate::seccomp::tcp_wall_guard(&base)),
        (
            crate::seccomp::learn_filter_for(Arch::X86_64),
            crate::seccomp::tcp_wall_guard(&crate::seccomp::learn_filter_for(Arch::X86_64)),
        ),
        (crate::seccomp::guard_only_filter_for(Arch::X86_64), alone.clone()),
    ] {
        let prog = crate::seccomp::bpf::compile(&guarded);
        let both = |d: Data| {
            let model = guarded.decide(&d);
            let bpf = Action::from_ret(interp::run(&prog, &d).expect("runs").ret).expect("action");
            assert_eq!(model, bpf, "{d:?}");
            model
        };
        for (fam, proto) in [
            (inet, 262),
            (inet6, 262),
            (inet, 256),
            (inet6, 256),
            (inet, 262 | 1 << 40),
        ] {
            assert_eq!(
                both(Data::x86_64(nr("socket"), [fam, stream, proto, 0, 0, 0])),
                refused,
                "{fam} {proto}"
            );
        }
        // TCP and everything else are decided as before.
        for args in [
            [inet, stream, 0, 0, 0, 0],
            [inet6, stream, 6, 0, 0, 0],
            [inet, libc::SOCK_DGRAM as u64, 0, 0, 0, 0],
        ] {
            let d = Data::x86_64(nr("socket"), args);
            assert_eq!(both(d), f.decide(&d), "{args:?}");
        }
        let d = Data::x86_64(nr("connect"), [3, 0, 16, 0, 0, 0]);
        assert_eq!(both(d), f.decide(&d));
        assert_eq!(
            both(Data::x86_64(nr("io_uring_setup"), [8, 0, 0, 0, 0, 0])),
            Action::Errno(libc::ENOSYS as u16)
        );
    }
    assert_eq!(
        alone.decide(&Data::x86_64(nr("socket"), [inet, stream, 0, 0, 0, 0])),
        Action::Allow
    );
}

#[test]
fn low32_lookup_by_number_is_by_name() {
    for arch in Arch::ALL {
        // One name per number: the numbers are strictly increasing.
        let nrs: Vec<u32> = arch.syscalls().map(|(nr, _)| nr).collect();
        assert!(nrs.windows(2).all(|w| w[0] < w[1]), "{arch:?}");
        for &(name, arg) in LOW32_ARGS {
            if let Some(nr) = arch.syscall_nr(name) {
                assert_eq!(arch.syscall_name(nr), Some(name), "{arch:?} {name}");
                assert!(is_low32(arch, nr, arg), "{arch:?} {name} {arg}");
                assert!(!is_low32(arch, nr, 5), "{arch:?} {name} arg 5");
            }
        }
        // The lookup the function replaced, for every number and argument.
        for (nr, _) in arch.syscalls() {
            for arg in 0..6u8 {
                let by_name = LOW32_ARGS
                    .iter()
                    .any(|&(n, a)| a == arg && arch.syscall_nr(n) == Some(nr));
                assert_eq!(is_low32(arch, nr, arg), by_name, "{arch:?} {nr} {arg}");
            }
        }
        assert!(!is_low32(arch, u32::MAX, 1));
    }
    // The TIOCSTI case the list exists for.
    assert!(is_low32(Arch::X86_64, 16, 1), "ioctl's request");
}

/// The generated part of `builtin.rs` for the default policy's section.
fn render_builtin(section: &SeccompPolicy) -> String {
    use std::fmt::Write;
    // Every struct taken apart whole, as builtin::is does: a new field
    // does not compile here until it is written.
    let val = |v: &ValueSpec| {
        let ValueSpec { value, text } = v;
        match text {
            Some(t) => format!("({value:#x}, Some({t:?}))"),
            None => format!("({value:#x}, None)"),
        }
    };
    let SeccompPolicy {
        default_action,
        allow,
        rules,
        report,
    } = section;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "const DEFAULT_ACTION: Action = Action::{:?};",
        default_action.0
    );
    let _ = writeln!(s, "const REPORT: bool = {report};");
    let _ = writeln!(s, "const ALLOW: [&str; {}] = [", allow.len());
    for a in allow {
        let _ = writeln!(s, "    {a:?},");
    }
    let _ = writeln!(s, "];");
    let _ = writeln!(s, "const RULES: [(&str, &[Arg], Action); {}] = [", rules.len());
    for r in rules {
        let RuleSpec {
            syscall,
            args,
            action,
        } = r;
        let _ = writeln!(s, "    (\n        {syscall:?},\n        &[");
        for a in args {
            let ArgSpec { arg, op, value, mask } = a;
            let mask = mask
                .as_ref()
                .map_or("None".to_string(), |m| format!("Some({})", val(m)));
            let _ = writeln!(s, "            ({arg}, OpSpec::{op:?}, {}, {mask}),", val(value));
        }
        let _ = writeln!(s, "        ],\n        Action::{:?},\n    ),", action.0);
    }
    let _ = writeln!(s, "];");
    for (name, arch) in [("X86_64", Arch::X86_64), ("AARCH64", Arch::Aarch64)] {
        let _ = writeln!(s, "const {name}: [&[Insn]; 4] = [");
        for (setid, tcp_wall) in [(false, false), (false, true), (true, false), (true, true)] {
            let filter = with_guards(section.compile_for(arch).unwrap(), setid, tcp_wall);
            let _ = writeln!(s, "    // setid guard: {setid}, TCP wall: {tcp_wall}\n    &[");
            for i in bpf::compile(&filter) {
                let _ = writeln!(
                    s,
                    "        insn({:#06x}, {}, {}, {:#x}),",
                    i.code, i.jt, i.jf, i.k
                );
            }
            let _ = writeln!(s, "    ],");
        }
        let _ = writeln!(s, "];");
    }
    s
}

#[test]
fn builtin_filters_are_current() {
    let policy = crate::policy::Policy::builtin_default().unwrap();
    let section = policy.seccomp.expect("the default policy has a seccomp section");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/seccomp/builtin.rs");
    let text = std::fs::read_to_string(path).unwrap();
    let marker = "// ---- generated below: do not edit ----\n";
    let at = text.find(marker).expect("marker") + marker.len();
    let want = render_builtin(&section);
    if text[at..] != want {
        if std::env::var_os("CORDON_REGENERATE").is_some() {
            std::fs::write(path, format!("{}{want}", &text[..at])).unwrap();
            panic!("{path} regenerated: build and run the tests again");
        }
        panic!("{path} is stale: the default policy's seccomp section or its compiled filters changed; run CORDON_REGENERATE=1 cargo test --lib builtin_filters_are_current");
    }
    // What the tables give is what compiling gives, for every guard.
    assert!(section.is_builtin());
    assert!(section.check().is_ok());
    for arch in Arch::ALL {
        for (setid, tcp_wall) in [(false, false), (false, true), (true, false), (true, true)] {
            let compiled = bpf::compile(&with_guards(section.compile_for(arch).unwrap(), setid, tcp_wall));
            let table = section.builtin_program(arch, setid, tcp_wall).expect("builtin");
            assert_eq!(compiled.len(), table.len());
            assert!(compiled
                .iter()
                .zip(table)
                .all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k)));
        }
    }
}

#[test]
fn only_the_default_section_itself_gets_the_builtin_filter() {
    let policy = crate::policy::Policy::builtin_default().unwrap();
    let section = policy.seccomp.unwrap();
    let native = Arch::native().unwrap();
    assert!(section.builtin_program(native, false, false).is_some());
    // Each change, however small, is compiled instead.
    let mut changed: Vec<SeccompPolicy> = Vec::new();
    let mut p = section.clone();
    p.report = true;
    changed.push(p);
    let mut p = section.clone();
    p.default_action = ActionSpec(Action::KillProcess);
    changed.push(p);
    let mut p = section.clone();
    p.allow.pop();
    changed.push(p);
    let mut p = section.clone();
    p.allow.push("ptrace".to_string());
    changed.push(p);
    let mut p = section.clone();
    p.allow[0] = "@file-read".to_string();
    changed.push(p);
    let mut p = section.clone();
    p.rules.pop();
    changed.push(p);
    let mut p = section.clone();
    p.rules[0].action = ActionSpec(Action::Errno(1));
    changed.push(p);
    let mut p = section.clone();
    p.rules[0].syscall = "clone3".to_string();
    changed.push(p);
    let mut p = section.clone();
    p.rules[0].args[0].arg = 1;
    changed.push(p);
    let mut p = section.clone();
    p.rules[0].args[0].op = OpSpec::Ne;
    changed.push(p);
    let mut p = section.clone();
    p.rules[0].args[0].mask = None;
    changed.push(p);
    let mut p = section.clone();
    // The same text with another value (a section built in code) is not
    // the default's either.
    if let Some(m) = p.rules[0].args[0].mask.as_mut() {
        m.value ^= 1;
    }
    changed.push(p);
    let mut p = section.clone();
    p.rules[1].args[0].value.text = None;
    changed.push(p);
    let mut p = section.clone();
    p.rules[1].args.clear();
    changed.push(p);
    for (i, p) in changed.iter().enumerate() {
        assert!(p.builtin_program(native, false, false).is_none(), "change {i}");
        assert!(!p.is_builtin(), "change {i}");
    }
}
