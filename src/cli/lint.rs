//! `cordon check`'s warnings: policies that check but will not do what
//! their author meant. Each is one line; none stops a run.

use std::path::{Path, PathBuf};

use cordon::policy::{Mount, NetMode, Policy};

/// The warnings for `policy`, in a fixed order: seccomp traps, the working
/// directory, the network, the user database.
pub fn lints(policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(sc), Some(arch)) = (&policy.seccomp, cordon::seccomp::arch::Arch::native()) {
        out.extend(cordon::seccomp::lint::lints(sc, arch));
    }
    if let Some(why) = missing_cwd(policy) {
        out.push(format!(
            "cwd {}: {why}, so the payload cannot start there; mount a directory at it, or choose another with --chdir",
            policy.cwd
        ));
    }
    let host_net = policy.network.as_ref().is_some_and(|n| n.mode == NetMode::Host);
    if host_net {
        let missing: Vec<&str> = ["/etc/resolv.conf", "/etc/hosts"]
            .into_iter()
            .filter(|p| !bound(policy, p))
            .collect();
        if !missing.is_empty() {
            let binds: Vec<String> = missing.iter().map(|p| format!("--ro-bind {p}")).collect();
            out.push(format!(
                "network mode host without {}: host names will not resolve as they do on the host; bind {} ({})",
                missing.join(" and "),
                if missing.len() == 1 { "it" } else { "them" },
                binds.join(" ")
            ));
        }
    }
    if !policy.identity.passwd && !bound(policy, "/etc/passwd") {
        out.push(format!(
            "identity.passwd is false and no bind holds /etc/passwd: uid {} has no name, so whoami, id -un, getpass and ssh fail; drop \"passwd\": false, or bind a passwd file",
            policy.identity.uid
        ));
    }
    out
}

/// Whether a bind holds the sandbox path `p` (binds it, or a directory
/// above it).
fn bound(policy: &Policy, p: &str) -> bool {
    policy
        .mounts
        .iter()
        .any(|m| matches!(m, Mount::Bind { .. } | Mount::Copy { .. }) && under(p, m.dst()))
}

/// Whether `p` is `dir` or below it.
fn under(p: &str, dir: &str) -> bool {
    dir == "/" || p == dir || p.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Why the policy's `cwd` will not be a directory in the sandbox, as far
/// as the policy and the host tell (None: it will be, or cannot be told).
fn missing_cwd(policy: &Policy) -> Option<String> {
    let cwd = policy.cwd.as_str();
    // A mount point below it: cordon creates the directories on the way.
    let above_a_mount = policy
        .mounts
        .iter()
        .any(|m| m.dst() != cwd && under(m.dst(), cwd));
    if cwd == "/" || above_a_mount || (cwd == "/etc" && policy.identity.passwd) {
        return None;
    }
    // The deepest mount holding it; the last of equals (it is on top).
    let holder = policy
        .mounts
        .iter()
        .filter(|m| under(cwd, m.dst()))
        .max_by_key(|m| m.dst().len());
    match holder {
        None => Some("no mount holds it (the root is cordon's own empty tmpfs)".to_string()),
        Some(Mount::Bind { src, dst, .. }) if !src.contains('*') => {
            let rest = &cwd[dst.len()..];
            let host = PathBuf::from(format!("{src}{rest}"));
            (!Path::new(&host).is_dir())
                .then(|| format!("it would be host {}, which is not a directory", host.display()))
        }
        Some(Mount::Tmpfs { dst, .. }) if dst != cwd => {
            Some(format!("it is inside the tmpfs at {dst}, which starts empty"))
        }
        _ => None,
    }
}
