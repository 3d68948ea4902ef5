//! What the layers' probes report (`cordon features`): a [`Status`] per
//! item, a [`Probe`] for a simple check, the [`Identity`] the probes ran as,
//! and the small helpers every layer's `probe()` shares.
//!
//! Each layer probes itself (`landlock::probe`, `seccomp::probe`,
//! `isolate::probe`, `cgroup::probe`); `features` gathers them.

use std::fmt;

use serde::Serialize;

/// How far a feature is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Present and usable as cordon uses it.
    Available,
    /// Present, but only partly usable (see `detail` and `advice`).
    Limited,
    /// Absent or unusable (see `advice`).
    Missing,
    /// The probe could not tell (see `detail` for why).
    Unknown,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Available => "available",
            Status::Limited => "limited",
            Status::Missing => "missing",
            Status::Unknown => "unknown",
        })
    }
}

/// The result of one simple probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Whether the feature is usable.
    pub status: Status,
    /// What the probe saw, e.g. `"clone3(NULL, 0) fails with EINVAL: the call exists"`.
    pub detail: String,
    /// What to do about it; `null` when nothing needs doing.
    pub advice: Option<String>,
}

impl Probe {
    pub(crate) fn new(status: Status, detail: impl Into<String>, advice: Option<String>) -> Probe {
        Probe {
            status,
            detail: detail.into(),
            advice,
        }
    }
}

/// The identity the probes ran as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Real group id.
    pub gid: u32,
    /// Whether the effective uid is 0.
    pub root: bool,
    /// Whether cordon runs in the initial user namespace (its
    /// `/proc/self/uid_map` is the identity map `0 0 4294967295`); `false`
    /// inside a container's user namespace, `null` when the map is unreadable.
    pub initial_user_namespace: Option<bool>,
    /// The seccomp mode cordon itself runs under (`Seccomp:` in
    /// `/proc/self/status`): 0 none, 1 strict, 2 filter (e.g. a container's
    /// profile, which can make calls fail with ENOSYS or EPERM); `null` when
    /// unreadable.
    pub seccomp_mode: Option<u32>,
}

/// A note for error results when cordon itself runs under a seccomp filter,
/// which may be what refused the call.
pub(crate) fn filter_note(id: &Identity) -> &'static str {
    if id.seccomp_mode == Some(2) {
        " (cordon itself runs under a seccomp filter, e.g. a container's profile, which may be what answered)"
    } else {
        ""
    }
}

/// What an ENOSYS means: `claim` about the kernel, or, under a seccomp
/// filter, that claim or the filter.
pub(crate) fn enosys_means(id: &Identity, claim: &str) -> String {
    if id.seccomp_mode == Some(2) {
        format!("{claim}, or the seccomp filter cordon runs under (a container's profile?) refuses the call")
    } else {
        claim.to_string()
    }
}

/// The advice when probes fail because of the seccomp filter cordon runs under.
pub(crate) const FILTER_ADVICE: &str = "cordon runs under a seccomp filter (a container's profile?) that refuses the probe: run it where that filter allows the call";

pub(crate) fn read_trimmed(path: &str) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string())
}

pub(crate) fn read_u64(path: &str) -> Option<u64> {
    read_trimmed(path).ok().and_then(|s| s.parse().ok())
}

pub(crate) fn probe_identity() -> Identity {
    // SAFETY: getuid, geteuid and getgid cannot fail.
    let (uid, euid, gid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) };
    let initial_user_namespace = std::fs::read_to_string("/proc/self/uid_map")
        .ok()
        .map(|s| is_identity_map(&s));
    let seccomp_mode = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_field(&s, "Seccomp"))
        .and_then(|v| v.parse().ok());
    Identity {
        uid,
        euid,
        gid,
        root: euid == 0,
        initial_user_namespace,
        seccomp_mode,
    }
}

/// Whether a uid_map is the initial namespace's identity map.
pub(crate) fn is_identity_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
        .collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

/// The value of `Name:` in a /proc status file.
pub(crate) fn status_field(status: &str, name: &str) -> Option<String> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim().to_string())
    })
}

pub(crate) fn list_or_none(v: &[&str]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_map_and_status() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("0 1000 1\n"));
        assert!(!is_identity_map(""));
        let st = "Name:\tcordon\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        assert_eq!(status_field(st, "Seccomp").as_deref(), Some("2"));
        assert_eq!(status_field(st, "Nope"), None);
    }
}
