//! What the `cordon seccomp` subcommands print: listings of groups, the
//! decision for one call (run through the interpreter), program statistics.

use std::fmt::Write as _;

use super::arch::Arch;
use super::bpf::{self, Insn};
use super::ir::{Action, Data, Filter, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::{groups, interp, names, SeccompPolicy};

/// The most instructions any input can execute, the final `ret` included.
/// Programs only jump forward, so this is the longest path in a DAG.
/// Returns `None` for a program that is not well formed (a jump out of
/// range, or falling off the end).
pub fn longest_path(prog: &[Insn]) -> Option<usize> {
    let n = prog.len();
    let mut best = vec![0usize; n];
    for i in (0..n).rev() {
        let x = prog[i];
        let at = |off: usize| best.get(i + 1 + off).copied().filter(|&v| v > 0);
        best[i] = 1 + match x.code & 0x07 {
            0x06 => 0,
            0x05 if x.code == bpf::JMP_JA => at(x.k as usize)?,
            0x05 => at(usize::from(x.jt))?.max(at(usize::from(x.jf))?),
            _ => at(0)?,
        };
    }
    best.first().copied()
}

/// Size and depth of a compiled program, one line.
pub fn stats_line(prog: &[Insn]) -> String {
    match longest_path(prog) {
        Some(d) => format!("{} instructions, at most {} executed on any path", prog.len(), d),
        None => format!("{} instructions (malformed program)", prog.len()),
    }
}

/// AUDIT_ARCH_I386 (linux/audit.h): an `int 0x80` call on x86_64.
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// Parse the `--arch` of `cordon seccomp explain`: `x86_64`, `i386` (an
/// `int 0x80` call), `x32` or `aarch64`. Returns the architecture whose
/// filter decides such a call (x86_64 for the first three), the call's
/// AUDIT_ARCH value and the bits added to its number.
pub fn parse_arch(s: &str) -> Result<(Arch, u32, u32), String> {
    match s {
        "x32" => Ok((Arch::X86_64, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT)),
        "i386" | "x86" => Ok((Arch::X86_64, AUDIT_ARCH_I386, 0)),
        _ => match Arch::parse(s) {
            Ok(a) => Ok((a, a.audit_arch(), 0)),
            Err(_) => Err(format!(
                "unknown architecture \"{s}\": expected x86_64, i386, x32 or aarch64"
            )),
        },
    }
}

/// The decision for one call: the policy model's reasoning and the
/// compiled program's answer, which must agree.
pub fn explain(
    policy: &SeccompPolicy,
    filter: &Filter,
    prog: &[Insn],
    syscall: &str,
    args: &[String],
    arch: &str,
) -> Result<String, String> {
    let (call_arch, arch_value, nr_bits) = parse_arch(arch)?;
    let nr = match syscall.parse::<u32>() {
        Ok(n) => n,
        Err(_) => names::parse_syscall_for(call_arch, syscall)?,
    } | nr_bits;
    if args.len() > 6 {
        return Err(format!("{} arguments given; a syscall has at most 6", args.len()));
    }
    let mut a = [0u64; 6];
    for (i, s) in args.iter().enumerate() {
        a[i] = names::parse_value(s).map_err(|e| format!("argument {i}: {e}"))?;
    }
    let data = Data {
        nr,
        arch: arch_value,
        ip: 0,
        args: a,
    };
    let run = interp::run(prog, &data).map_err(|e| format!("the program failed to run: {e:?}"))?;
    let decided = filter.decide(&data);
    let program = Action::from_ret(run.ret);
    let mut s = String::new();
    let name = call_arch.syscall_name(nr & !nr_bits).unwrap_or("?");
    let shown: Vec<String> = a[..args.len()].iter().map(|v| format!("{v:#x}")).collect();
    let _ = writeln!(s, "call:     {name}({}) nr={nr:#x} arch={arch}", shown.join(", "));
    let _ = writeln!(
        s,
        "decision: {} ({} instructions executed)",
        bpf::ret_name(run.ret),
        run.steps
    );
    let _ = writeln!(s, "because:  {}", reason(policy, filter, &data));
    if program != Some(decided) {
        let _ = writeln!(
            s,
            "MISMATCH: the policy model says {decided:?}; this is a compiler bug"
        );
    }
    Ok(s)
}

fn reason(policy: &SeccompPolicy, filter: &Filter, d: &Data) -> String {
    let arch = filter.arch;
    if d.arch != arch.audit_arch() {
        return format!(
            "the filter is for {arch}: calls from a foreign architecture (e.g. int 0x80, i386) always kill the process"
        );
    }
    if arch.x32_bit().is_some_and(|bit| d.nr >= bit) {
        return "x32 system call numbers are always refused with ENOSYS".to_string();
    }
    let Some(name) = arch.syscall_name(d.nr) else {
        return if d.nr > filter.known_max {
            "numbers above cordon's syscall table get ENOSYS (libc falls back as on an older kernel)"
                .to_string()
        } else {
            format!("not a system call on {arch}: default_action")
        };
    };
    // The filter keeps a syscall's rules in policy order.
    let compiled = filter
        .entries
        .get(&d.nr)
        .map(|e| e.rules.as_slice())
        .unwrap_or_default();
    let written = policy.rules.iter().enumerate().filter(|(_, r)| r.syscall == name);
    for ((i, r), c) in written.zip(compiled) {
        if c.conds.iter().all(|c| c.holds(d.args[usize::from(c.arg)])) {
            return format!(
                "rules[{i}] matches ({} with {} condition(s))",
                r.syscall,
                r.args.len()
            );
        }
    }
    let groups_holding: Vec<&str> = policy
        .allow
        .iter()
        .filter(|a| a.starts_with('@') && groups::expand_for(arch, a).is_ok_and(|v| v.contains(&d.nr)))
        .map(String::as_str)
        .collect();
    let has_rules = policy.rules.iter().any(|r| r.syscall == name);
    if policy.allow.iter().any(|a| a == name) {
        if has_rules {
            return format!("no rule for {name} matches; {name} is named in \"allow\", so it is allowed");
        }
        return format!("{name} is named in \"allow\"");
    }
    if name == "clone3" && !has_rules {
        return "clone3 gets ENOSYS unless the policy names it (libc falls back to clone, whose flags rules can check)".to_string();
    }
    match (groups_holding.first(), has_rules) {
        (Some(g), true) => format!("{name} is in {g} but has rules and none matches: rules narrow a group, so default_action applies"),
        (Some(g), false) => format!("{name} is in {g}"),
        (None, true) => format!("no rule for {name} matches and it is not in \"allow\": default_action"),
        (None, false) => format!("{name} is not allowed: default_action"),
    }
}

/// `cordon seccomp groups [NAME]`: every group with its description and
/// members, or one group.
pub fn groups_listing(name: Option<&str>) -> Result<String, String> {
    let mut s = String::new();
    let chosen: Vec<&groups::Group> = match name {
        Some(n) => {
            let n = if n.starts_with('@') {
                n.to_string()
            } else {
                format!("@{n}")
            };
            // expand_for() gives the error with a suggestion.
            groups::expand_for(Arch::X86_64, &n)?;
            groups::group(&n).into_iter().collect()
        }
        None => groups::GROUPS.iter().collect(),
    };
    for g in chosen {
        let eligible = if groups::DEFAULT_ELIGIBLE.contains(&g.name) {
            ""
        } else {
            " [not in any default]"
        };
        let _ = writeln!(s, "{}{eligible}\n  {}", g.name, g.description);
        if !g.includes.is_empty() {
            let _ = writeln!(s, "  includes: {}", g.includes.join(" "));
        }
        let mut line = String::from("  ");
        for (i, c) in g.syscalls.iter().enumerate() {
            if line.len() + c.len() > 78 {
                let _ = writeln!(s, "{}", line.trim_end());
                line = String::from("  ");
            }
            line.push_str(c);
            if i + 1 < g.syscalls.len() {
                line.push(' ');
            }
        }
        let _ = writeln!(s, "{}\n", line.trim_end());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_path_follows_the_deepest_branch() {
        let ret = Insn {
            code: bpf::RET_K,
            jt: 0,
            jf: 0,
            k: 0,
        };
        let jeq = |jt, jf| Insn {
            code: bpf::JMP_JEQ_K,
            jt,
            jf,
            k: 1,
        };
        // 0: jeq -> 1 or 3; 1: jeq -> 2 or 3; 2: ret; 3: ret
        assert_eq!(longest_path(&[jeq(0, 2), jeq(0, 1), ret, ret]), Some(3));
        assert_eq!(longest_path(&[ret]), Some(1));
        // Falling off the end, or jumping past it, is malformed.
        assert_eq!(longest_path(&[jeq(0, 5), ret]), None);
        assert_eq!(
            longest_path(&[Insn {
                code: bpf::LD_W_ABS,
                jt: 0,
                jf: 0,
                k: 0
            }]),
            None
        );
    }

    #[test]
    fn explain_names_the_reason() {
        let p: SeccompPolicy = serde_json::from_str(
            r#"{"allow": ["@default", "@network"],
                "rules": [{"syscall": "socket", "args": [{"arg": 0, "op": "eq", "value": "AF_UNIX"}], "action": "allow"}]}"#,
        )
        .unwrap();
        let f = p.compile().unwrap();
        let prog = bpf::compile(&f);
        let e = |call: &str, args: &[&str], arch: &str| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            explain(&p, &f, &prog, call, &args, arch).unwrap()
        };
        let unix = e("socket", &["AF_UNIX", "SOCK_STREAM"], "x86_64");
        assert!(
            unix.contains("decision: ALLOW") && unix.contains("rules[0] matches"),
            "{unix}"
        );
        let inet = e("socket", &["AF_INET"], "x86_64");
        assert!(
            inet.contains("decision: ERRNO(1)") && inet.contains("rules narrow a group"),
            "{inet}"
        );
        assert!(e("write", &[], "i386").contains("KILL_PROCESS"));
        assert!(e("write", &[], "x32").contains("ERRNO(38)"));
        assert!(e("clone3", &[], "x86_64").contains("ERRNO(38)"));
        assert!(e("ptrace", &[], "x86_64").contains("not allowed"));
        for out in [unix, inet] {
            assert!(!out.contains("MISMATCH"), "{out}");
        }
        assert!(explain(&p, &f, &prog, "sockett", &[], "x86_64")
            .unwrap_err()
            .contains("socket"));
        // An aarch64 call against the x86_64 filter is foreign.
        assert!(e("write", &[], "aarch64").contains("KILL_PROCESS"));
        assert!(e("setxattrat", &[], "x86_64").contains("not allowed"));
    }

    #[test]
    fn explain_on_an_aarch64_filter() {
        let p: SeccompPolicy = serde_json::from_str(r#"{"allow": ["@default", "@file-read"]}"#).unwrap();
        let f = p.compile_for(Arch::Aarch64).unwrap();
        let prog = bpf::compile(&f);
        let e = |call: &str, arch: &str| explain(&p, &f, &prog, call, &[], arch).unwrap();
        let openat = e("openat", "aarch64");
        assert!(
            openat.contains("nr=0x38") && openat.contains("decision: ALLOW") && openat.contains("@default"),
            "{openat}"
        );
        assert!(e("getxattrat", "aarch64").contains("in @file-read"));
        assert!(e("read", "x86_64").contains("KILL_PROCESS"));
        assert!(e("mount", "aarch64").contains("not allowed"));
        assert!(explain(&p, &f, &prog, "open", &[], "aarch64")
            .unwrap_err()
            .contains("does not exist on aarch64"));
        assert!(parse_arch("riscv64").unwrap_err().contains("aarch64"));
    }

    #[test]
    fn groups_listing_lists_members() {
        let all = groups_listing(None).unwrap();
        for g in groups::GROUPS {
            assert!(all.contains(g.name), "{}", g.name);
        }
        let one = groups_listing(Some("network")).unwrap();
        assert!(one.starts_with("@network\n") && one.contains("socket"), "{one}");
        assert!(groups_listing(Some("@netwrk")).unwrap_err().contains("@network"));
    }
}
