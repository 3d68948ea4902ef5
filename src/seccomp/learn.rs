//! Turning what `cordon learn` saw into a minimal seccomp section.

use std::collections::BTreeSet;

use super::{groups, names, ActionSpec, ArgSpec, OpSpec, RuleSpec, SeccompPolicy, ValueSpec, REQUIRED};
use crate::seccomp::ir::Action;

/// What a learning run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// Syscall numbers made.
    pub syscalls: BTreeSet<u32>,
    /// socket(): (family, protocol when the family is AF_NETLINK).
    pub socket_families: BTreeSet<(u32, Option<u32>)>,
    /// ioctl() requests (the low 32 bits the kernel reads).
    pub ioctl_requests: BTreeSet<u32>,
    /// Namespace flags seen in clone() calls.
    pub clone_namespace_flags: u64,
}

/// The namespace flags a clone() call can carry (CLONE_NEWTIME is 0x80).
pub const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64
    | 0x80;

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
        assert_eq!(d("ioctl", [0, libc::TCGETS, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(d("ioctl", [0, libc::TIOCSTI, 0, 0, 0, 0]), Action::Errno(1));
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
    fn clone_with_namespaces_seen_is_allowed_by_name() {
        let mut l = Learned::default();
        l.syscalls.insert(nr("clone"));
        l.clone_namespace_flags = libc::CLONE_NEWNET as u64;
        let s = section(&l);
        assert!(s.allow.iter().any(|a| a == "clone"));
        assert!(s.rules.is_empty());
    }
}
