//! Warnings about seccomp sections that compile but do not mean what they
//! seem to (`cordon check` prints them). Pure: reads the section only.

use super::arch::Arch;
use super::ir::Action;
use super::{groups, names, SeccompPolicy};

/// The warnings for `policy` compiled for `arch`, in rule order. A section
/// that does not compile has none (its error is reported instead).
///
/// The one trap found so far: a syscall allowed only through a `@group`
/// whose rules all refuse. Rules narrow a group (see the module's
/// meaning), so when none of them allows, no call of that syscall is
/// allowed at all: `@terminal` plus a rule refusing TIOCSTI refuses every
/// ioctl, not just TIOCSTI.
pub fn lints(policy: &SeccompPolicy, arch: Arch) -> Vec<String> {
    let mut out = Vec::new();
    if policy.compile_for(arch).is_err() || policy.default_action.0 == Action::Allow {
        return out;
    }
    let mut seen: Vec<u32> = Vec::new();
    for r in &policy.rules {
        let Ok(nr) = names::parse_syscall_for(arch, &r.syscall) else {
            continue;
        };
        if seen.contains(&nr) {
            continue;
        }
        seen.push(nr);
        let named = policy
            .allow
            .iter()
            .any(|a| !a.starts_with('@') && names::parse_syscall_for(arch, a) == Ok(nr));
        if named {
            continue;
        }
        let Some(group) = policy
            .allow
            .iter()
            .filter(|a| a.starts_with('@'))
            .find(|g| groups::expanded(arch, g).is_ok_and(|m| m.contains(&nr)))
        else {
            continue;
        };
        let rules: Vec<usize> = policy
            .rules
            .iter()
            .enumerate()
            .filter(|(_, s)| names::parse_syscall_for(arch, &s.syscall) == Ok(nr))
            .map(|(i, _)| i)
            .collect();
        if rules.iter().any(|&i| policy.rules[i].action.0 == Action::Allow) {
            continue;
        }
        let at: Vec<String> = rules.iter().map(|i| format!("rules[{i}]")).collect();
        out.push(format!(
            "seccomp: {name} is allowed only through {group}, and its rules ({}) only refuse, so every {name} call is refused with the default action ({}), not just the ones they match; add \"{name}\" to allow to allow the others",
            at.join(", "),
            policy.default_action.0.text(),
            name = r.syscall,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(json: &str) -> SeccompPolicy {
        serde_json::from_str(json).expect("section")
    }

    const DENY_TIOCSTI: &str =
        r#"{"syscall": "ioctl", "args": [{"arg": 1, "op": "eq", "value": "TIOCSTI"}], "action": "errno"}"#;

    #[test]
    fn a_group_with_rules_that_only_refuse_is_a_trap() {
        let trap = section(&format!(
            r#"{{"allow": ["@default", "@terminal"], "rules": [{DENY_TIOCSTI}]}}"#
        ));
        let w = lints(&trap, Arch::X86_64);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("seccomp: ioctl is allowed only through @terminal, and its rules (rules[0]) only refuse, so every ioctl call is refused with the default action (errno EPERM)"),
            "{}",
            w[0]
        );
        // Named as well: the rules narrow nothing else.
        let named = section(&format!(
            r#"{{"allow": ["@default", "@terminal", "ioctl"], "rules": [{DENY_TIOCSTI}]}}"#
        ));
        assert!(lints(&named, Arch::X86_64).is_empty());
        // A rule that allows: the group is narrowed on purpose.
        let narrowed = section(
            r#"{"allow": ["@network"], "rules": [{"syscall": "socket", "args": [{"arg": 0, "op": "eq", "value": "AF_UNIX"}], "action": "allow"}]}"#,
        );
        assert!(lints(&narrowed, Arch::X86_64).is_empty());
        // Not allowed at all: the rule picks the refusal, no trap.
        let alone = section(&format!(
            r#"{{"allow": ["@default"], "rules": [{DENY_TIOCSTI}]}}"#
        ));
        assert!(lints(&alone, Arch::X86_64).is_empty());
    }

    #[test]
    fn the_default_policy_has_no_seccomp_warning() {
        let p: serde_json::Value =
            serde_json::from_str(include_str!("../../policies/default.json")).expect("default");
        let sc: SeccompPolicy = serde_json::from_value(p["seccomp"].clone()).expect("seccomp section");
        assert_eq!(lints(&sc, Arch::X86_64), Vec::<String>::new());
    }
}
