//! What happened to a sandboxed run, in machine-readable form.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::LaunchError;

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The payload exited on its own.
    Exited,
    /// The payload died of a signal.
    Signaled,
    /// The wall-clock limit expired and the sandbox was killed.
    TimedOut,
    /// cordon could not start the payload.
    SetupFailed,
    /// The OOM killer ended the payload (its cgroup's memory limit).
    OomKilled,
}

impl Status {
    /// The name used in the outcome JSON.
    pub fn name(self) -> &'static str {
        match self {
            Status::Exited => "exited",
            Status::Signaled => "signaled",
            Status::TimedOut => "timed_out",
            Status::SetupFailed => "setup_failed",
            Status::OomKilled => "oom_killed",
        }
    }
}

/// The outcome of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// cordon's exit code: the payload's code, 128+N for signal N, 124 on
    /// timeout, 125 setup failure, 126 not executable, 127 not found.
    pub exit_code: i32,
    /// The signal that killed the payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Wall-clock time from launch to the end of the sandbox, in ms.
    pub wall_time_ms: u64,
    /// User CPU time of everything in the sandbox, in ms.
    pub user_time_ms: u64,
    /// System CPU time of everything in the sandbox, in ms.
    pub system_time_ms: u64,
    /// Largest resident set size of a process in the sandbox, in KiB.
    pub max_rss_kb: u64,
    /// Peak resident set size of the cordon supervisor itself, in KiB.
    pub supervisor_max_rss_kb: u64,
    /// What the policy asked that was not enforced (best effort only).
    pub unenforced: Vec<String>,
    /// The limits cordon saw the sandbox run into, in this order:
    /// `wall_time` (the run timed out), `memory` (the cgroup's OOM killer
    /// ended a process), `pids` (the cgroup refused a fork), `cpu_time` (the
    /// payload died of SIGXCPU), `file_size` (the payload died of SIGXFSZ).
    /// rlimits that make a call fail (`processes`, `address_space`,
    /// `open_files`) are invisible from outside and never listed.
    pub limits_hit: Vec<&'static str>,
    /// The host uid the payload ran as (absent when setup failed before
    /// it was chosen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_uid: Option<u32>,
    /// The host gid the payload ran as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_gid: Option<u32>,
    /// Refused syscalls, as recorded with `"report": true` (at most 64).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// How many refused syscalls there were in all.
    #[serde(skip_serializing_if = "is_zero")]
    pub violations_total: u64,
    /// The sandbox's cgroup and what it used, when the policy set cgroup limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<CgroupOutcome>,
    /// The network the payload had (absent when cordon failed before it
    /// started the sandbox).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkOutcome>,
    /// What `cordon learn` saw (not part of the JSON).
    #[serde(skip)]
    pub learned: Option<Learned>,
    /// Why setup failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<LaunchError>,
    /// With an audit log: how many events could not be written (a full
    /// pipe or socket; see cordon-policy(5), AUDIT LOG).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_dropped: Option<u64>,
    /// Each workspace: its changes, and what was applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<WorkspaceOutcome>,
}

/// One workspace in the outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkspaceOutcome {
    /// The host directory.
    pub path: String,
    /// Where the sandbox saw it.
    pub to: String,
    /// How many paths changed (created, modified, deleted, new
    /// directories, mode changes, symlinks).
    pub files_changed: u64,
    /// Bytes of new file content in the change set.
    pub bytes: u64,
    /// Bytes in use on the workspace's tmpfs at the end.
    pub upper_bytes: u64,
    /// Every change was applied to the host directory, and nothing was
    /// refused.
    pub applied: bool,
    /// When only part was applied: exactly the paths that were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applied_paths: Vec<String>,
    /// What was not (or will never be) applied, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
    /// Paths applied with their setuid, setgid or sticky bits dropped
    /// (the payload set them; the host never gets them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stripped: Vec<String>,
    /// The export directory, when the changes were written there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
    /// What went wrong (reading, exporting or applying the changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A change that was not applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Path relative to the workspace.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// The sandbox's cgroup, in the outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CgroupOutcome {
    /// "v1" or "v2".
    pub version: String,
    /// The cgroup directories (removed by now).
    pub paths: Vec<String>,
    /// What the cgroup accounted.
    #[serde(flatten)]
    pub usage: Usage,
}

/// The network section of the outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetworkOutcome {
    /// `none` (own namespace, loopback only), `host` (the host's network)
    /// or `proxy`.
    pub mode: &'static str,
    /// What the egress proxy did (mode `proxy` only).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyCounts>,
}

/// The egress proxy's counts, in the outcome's network section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProxyCounts {
    /// Connections let through.
    pub connections_allowed: u64,
    /// Requests refused: by the rules or checks, malformed, or over
    /// `network.max_connections`.
    pub connections_denied: u64,
    /// Bytes from the payload to its targets.
    pub bytes_up: u64,
    /// Bytes from the targets to the payload.
    pub bytes_down: u64,
    /// DNS queries the stub answered NXDOMAIN (names no rule allows).
    pub dns_denied: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A refused syscall, recorded by the supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The caller, in cordon's pid namespace.
    pub pid: u32,
    /// The caller's executable, when it could be read.
    pub exe: String,
    /// The syscall's name (`?` for a number cordon does not know).
    pub syscall: String,
    /// Its number.
    pub nr: u32,
    /// Its six arguments, in hex.
    pub args: Vec<String>,
    /// For `ioctl`: the name of the request (argument 1), such as `TCGETS`,
    /// when cordon knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'static str>,
    /// What the policy answered: `errno EPERM`, `kill_process`, ...
    pub action: String,
}

/// Exit code on timeout ([`crate::error::exit::TIMEOUT`]).
pub const EXIT_TIMEOUT: i32 = crate::error::exit::TIMEOUT;
/// Exit code when cordon failed before the payload ran
/// ([`crate::error::exit::SETUP`]).
pub const EXIT_SETUP: i32 = crate::error::exit::SETUP;

impl Outcome {
    /// The outcome as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The limits a run ran into, as far as cordon can see them: `timed_out`,
/// the payload's terminating signal, and the cgroup's counters.
pub fn limits_hit(timed_out: bool, payload_signal: Option<i32>, usage: Option<&Usage>) -> Vec<&'static str> {
    let mut hit = Vec::new();
    if timed_out {
        hit.push("wall_time");
    }
    if usage.and_then(|u| u.oom_kills).unwrap_or(0) > 0 {
        hit.push("memory");
    }
    if usage.and_then(|u| u.pids_limit_hits).unwrap_or(0) > 0 {
        hit.push("pids");
    }
    match payload_signal {
        Some(libc::SIGXCPU) => hit.push("cpu_time"),
        Some(libc::SIGXFSZ) => hit.push("file_size"),
        _ => {}
    }
    hit
}

// ---- what the layers report into the outcome ----------------------------

/// What the sandbox used, as far as its cgroup tells.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Peak memory (v2 memory.peak, Linux 5.19+; v1 memory.max_usage_in_bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
    /// Processes the OOM killer ended (memory.events / memory.oom_control oom_kill).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// Peak number of tasks (v2 pids.peak, Linux 6.1+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_peak: Option<u64>,
    /// How often a fork failed at the pids limit (pids.events max).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit_hits: Option<u64>,
    /// CPU time of the whole sandbox (cpu.stat usage_usec / cpuacct.usage), in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_usage_ms: Option<u64>,
}

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
    /// Syscall numbers refused while learning (EPERM), not in `syscalls`:
    /// see [`crate::seccomp::learn::refused_while_learning`].
    pub refused: BTreeSet<u32>,
    /// Namespace flags of clone() calls refused while learning.
    pub refused_clone_flags: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hit_names_what_was_observed() {
        assert!(limits_hit(false, None, None).is_empty());
        assert!(limits_hit(false, Some(libc::SIGKILL), None).is_empty());
        assert_eq!(limits_hit(true, None, None), ["wall_time"]);
        assert_eq!(limits_hit(false, Some(libc::SIGXCPU), None), ["cpu_time"]);
        assert_eq!(limits_hit(false, Some(libc::SIGXFSZ), None), ["file_size"]);
        let u = Usage {
            oom_kills: Some(1),
            pids_limit_hits: Some(3),
            ..Default::default()
        };
        assert_eq!(
            limits_hit(true, Some(libc::SIGKILL), Some(&u)),
            ["wall_time", "memory", "pids"]
        );
        let quiet = Usage {
            oom_kills: Some(0),
            pids_limit_hits: Some(0),
            ..Default::default()
        };
        assert!(limits_hit(false, None, Some(&quiet)).is_empty());
    }
}
