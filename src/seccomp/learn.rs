//! Turning what `cordon learn` saw into a minimal seccomp section.

use std::collections::BTreeSet;

use super::{groups, names, ActionSpec, ArgSpec, OpSpec, RuleSpec, SeccompPolicy, ValueSpec, REQUIRED};
use crate::seccomp::ir::Action;

pub use crate::outcome::Learned;

/// The groups whose calls `cordon learn` refuses (EPERM) and leaves out of
/// the learnt policy unless `--allow-dangerous`: what reaches other
/// processes, the kernel or the machine, and what no cordon policy allows
/// by default. Calls that are also in a default-eligible group (such as
/// `mknodat`, which makes FIFOs) are not refused.
pub const REFUSED_WHILE_LEARNING: &[&str] = &[
    "@debug",
    "@mount",
    "@namespace",
    "@module",
    "@reboot",
    "@swap",
    "@keyring",
    "@bpf",
    "@io-uring",
    "@clock",
    "@privileged",
];

/// The syscall numbers refused while learning: the calls of
/// [`REFUSED_WHILE_LEARNING`] that are in no default-eligible group.
/// (clone() with namespace flags is refused too, by its flags.)
pub fn refused_while_learning() -> BTreeSet<u32> {
    let eligible: BTreeSet<u32> = groups::DEFAULT_ELIGIBLE
        .iter()
        .flat_map(|g| groups::expand(g).unwrap_or_default())
        .collect();
    REFUSED_WHILE_LEARNING
        .iter()
        .flat_map(|g| groups::expand(g).unwrap_or_default())
        .filter(|nr| !eligible.contains(nr))
        .collect()
}

/// The namespace flags set in `flags`, by name.
fn ns_flag_names(flags: u64) -> String {
    NS_FLAG_NAMES
        .split('|')
        .filter(|n| names::constant(n).is_some_and(|v| v & flags != 0))
        .collect::<Vec<_>>()
        .join("|")
}

/// Lines for learn's summary: which calls were refused while learning and
/// are not in the policy (none when nothing was refused).
pub fn refused_report(l: &Learned) -> Vec<String> {
    let mut calls: Vec<String> = l
        .refused
        .iter()
        .map(|&nr| names::syscall_name(nr).map_or_else(|| format!("#{nr}"), str::to_string))
        .collect();
    if l.refused_clone_flags != 0 {
        calls.push(format!("clone with {}", ns_flag_names(l.refused_clone_flags)));
    }
    if calls.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!(
        "refused while learning (EPERM), not in the policy: {} call(s) that every cordon policy refuses (--allow-dangerous lets them through and into the policy):",
        calls.len()
    )];
    out.extend(calls.into_iter().map(|c| format!("  refused: {c}")));
    out
}

/// The namespace flags a clone() call can carry.
pub const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWTIME) as u64;

const NS_FLAG_NAMES: &str =
    "CLONE_NEWNS|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS|CLONE_NEWCGROUP|CLONE_NEWTIME";

/// The name of a constant with this value among names starting with one
/// of `prefixes`, if there is exactly one.
fn constant_named(value: u64, prefixes: &[&str]) -> Option<&'static str> {
    // Aliases of better-known names.
    const ALIASES: [&str; 3] = ["AF_LOCAL", "AF_FILE", "AF_ROUTE"];
    let mut found = names::constant_names().into_iter().filter(|n| {
        prefixes.iter().any(|p| n.starts_with(p)) && !ALIASES.contains(n) && names::constant(n) == Some(value)
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

fn value(v: u64, prefixes: &[&str]) -> ValueSpec {
    ValueSpec {
        value: v,
        text: constant_named(v, prefixes).map(str::to_string),
    }
}

fn eq(arg: u8, v: ValueSpec) -> ArgSpec {
    ArgSpec {
        arg,
        op: OpSpec::Eq,
        value: v,
        mask: None,
    }
}

fn allow_rule(syscall: &str, args: Vec<ArgSpec>) -> RuleSpec {
    RuleSpec {
        syscall: syscall.to_string(),
        args,
        action: ActionSpec(Action::Allow),
    }
}

/// A minimal section allowing what was seen: syscalls by name, ordered by
/// group (cordon's default-eligible groups first) and by name within one;
/// socket limited to the families seen, ioctl to the requests seen, clone
/// to no namespace flags unless some were used. `report` is on, so that
/// what the learning run missed shows up in the outcome.
pub fn section(l: &Learned) -> SeccompPolicy {
    let mut seen: BTreeSet<&'static str> = l
        .syscalls
        .iter()
        .filter_map(|&nr| names::syscall_name(nr))
        .collect();
    seen.extend(REQUIRED);
    let mut rules = Vec::new();
    if seen.remove("socket") {
        for &(family, proto) in &l.socket_families {
            let mut args = vec![eq(0, value(u64::from(family), &["AF_"]))];
            if let Some(p) = proto {
                args.push(eq(2, value(u64::from(p), &["NETLINK_"])));
            }
            rules.push(allow_rule("socket", args));
        }
    }
    if seen.remove("ioctl") {
        for &r in &l.ioctl_requests {
            rules.push(allow_rule(
                "ioctl",
                vec![eq(1, value(u64::from(r), &["TIOC", "TC", "FIO", "TIOCG"]))],
            ));
        }
    }
    if l.clone_namespace_flags == 0 && seen.remove("clone") {
        rules.push(allow_rule(
            "clone",
            vec![ArgSpec {
                arg: 0,
                op: OpSpec::MaskedEq,
                value: ValueSpec { value: 0, text: None },
                mask: Some(ValueSpec {
                    value: CLONE_NS_FLAGS,
                    text: Some(NS_FLAG_NAMES.to_string()),
                }),
            }],
        ));
    }
    let mut allow: Vec<String> = Vec::new();
    let order = groups::DEFAULT_ELIGIBLE
        .iter()
        .filter_map(|n| groups::group(n))
        .chain(groups::GROUPS.iter());
    for g in order {
        let mut members: Vec<&str> = g.syscalls.iter().copied().filter(|s| seen.contains(s)).collect();
        members.sort_unstable();
        for m in members {
            seen.remove(m);
            allow.push(m.to_string());
        }
    }
    allow.extend(seen.into_iter().map(str::to_string));
    SeccompPolicy {
        default_action: ActionSpec(Action::Errno(libc::EPERM as u16)),
        allow,
        rules,
        report: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::ir::Data;

    fn nr(n: &str) -> u32 {
        names::syscall_nr(n).unwrap()
    }

    #[test]
    fn the_section_allows_exactly_what_was_seen() {
        let mut l = Learned::default();
        for n in ["read", "openat", "mmap", "socket", "ioctl", "clone", "getrandom"] {
            l.syscalls.insert(nr(n));
        }
        l.socket_families.insert((libc::AF_UNIX as u32, None));
        l.socket_families.insert((libc::AF_NETLINK as u32, Some(0)));
        l.ioctl_requests.insert(libc::TCGETS as u32);
        let s = section(&l);
        let f = s.compile().unwrap();
        let d = |n: &str, args: [u64; 6]| f.decide(&Data::x86_64(nr(n), args));
        for n in [
            "read",
            "openat",
            "mmap",
            "getrandom",
            "execve",
            "exit_group",
            "write",
        ] {
            assert_eq!(d(n, [0; 6]), Action::Allow, "{n}");
        }
        assert_eq!(d("ptrace", [0; 6]), Action::Errno(1));
        assert_eq!(d("socket", [1, 1, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(d("socket", [2, 1, 0, 0, 0, 0]), Action::Errno(1));
        assert_eq!(d("socket", [16, 3, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(d("socket", [16, 3, 9, 0, 0, 0]), Action::Errno(1));
        assert_eq!(
            d("ioctl", [0, names::ioctl_request(libc::TCGETS), 0, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(
            d("ioctl", [0, names::ioctl_request(libc::TIOCSTI), 0, 0, 0, 0]),
            Action::Errno(1)
        );
        assert_eq!(d("clone", [0x1200011, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(
            d("clone", [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
            Action::Errno(1)
        );
        // Named constants where they are unambiguous; grouped order.
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains("\"AF_UNIX\"") && json.contains("\"TCGETS\""),
            "{json}"
        );
        let pos = |n: &str| s.allow.iter().position(|a| a == n).unwrap();
        assert!(
            pos("execve") < pos("openat") || pos("exit_group") < pos("openat"),
            "{:?}",
            s.allow
        );
        // And it survives a JSON round trip.
        let back: SeccompPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back.compile().unwrap(), f);
    }

    #[test]
    fn what_learning_refuses() {
        let r = refused_while_learning();
        for n in [
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "io_uring_setup",
            "io_uring_enter",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "bpf",
            "init_module",
            "finit_module",
            "kexec_load",
            "mount",
            "umount2",
            "pivot_root",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "reboot",
            "swapon",
            "swapoff",
            "perf_event_open",
            "userfaultfd",
        ] {
            assert!(r.contains(&nr(n)), "{n}");
        }
        // What ordinary programs need is learnt.
        for n in [
            "mknodat",
            "openat",
            "clone",
            "execve",
            "write",
            "seccomp",
            "landlock_create_ruleset",
        ] {
            assert!(!r.contains(&nr(n)), "{n}");
        }
        let mut l = Learned::default();
        assert!(refused_report(&l).is_empty());
        l.refused.insert(nr("keyctl"));
        l.refused_clone_flags = libc::CLONE_NEWUSER as u64 | libc::CLONE_NEWNS as u64;
        let text = refused_report(&l).join("\n");
        assert!(text.contains("refused: keyctl"), "{text}");
        assert!(text.contains("clone with CLONE_NEWNS|CLONE_NEWUSER"), "{text}");
        assert!(text.contains("not in the policy"), "{text}");
        // Refused calls never make it into the section.
        let s = section(&l);
        assert!(
            !s.allow.iter().any(|a| a == "keyctl" || a == "clone"),
            "{:?}",
            s.allow
        );
    }

    #[test]
    fn clone_with_namespaces_seen_is_allowed_by_name() {
        let mut l = Learned::default();
        l.syscalls.insert(nr("clone"));
        l.clone_namespace_flags = libc::CLONE_NEWNET as u64;
        let s = section(&l);
        assert!(s.allow.iter().any(|a| a == "clone"));
        assert!(s.rules.is_empty());
    }
}
