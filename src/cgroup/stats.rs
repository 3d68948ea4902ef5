//! Reading what a sandbox's cgroup used, for the outcome.

use std::path::Path;

pub use crate::outcome::Usage;

/// The value of `key` in a flat-keyed file (`key value` lines).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

/// A file holding one number.
pub fn single(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// Usage of a v2 cgroup.
pub fn v2(dir: &Path) -> Usage {
    Usage {
        memory_peak_bytes: read(dir, "memory.peak").and_then(|t| single(&t)),
        oom_kills: read(dir, "memory.events").and_then(|t| keyed(&t, "oom_kill")),
        pids_peak: read(dir, "pids.peak").and_then(|t| single(&t)),
        pids_limit_hits: read(dir, "pids.events").and_then(|t| keyed(&t, "max")),
        cpu_usage_ms: read(dir, "cpu.stat")
            .and_then(|t| keyed(&t, "usage_usec"))
            .map(|us| us / 1000),
    }
}

/// The limit counters of a v2 cgroup alone (OOM kills, forks refused at
/// the pids limit): two small reads, cheap enough for every command of a
/// named sandbox.
pub fn v2_limit_events(dir: &Path) -> (Option<u64>, Option<u64>) {
    (
        read(dir, "memory.events").and_then(|t| keyed(&t, "oom_kill")),
        read(dir, "pids.events").and_then(|t| keyed(&t, "max")),
    )
}

/// [`v2_limit_events`] for v1 cgroups.
pub fn v1_limit_events<'a>(dir: impl Fn(&str) -> Option<&'a Path>) -> (Option<u64>, Option<u64>) {
    let r = |c: &str, f: &str| dir(c).and_then(|d| read(d, f));
    (
        r("memory", "memory.oom_control").and_then(|t| keyed(&t, "oom_kill")),
        r("pids", "pids.events").and_then(|t| keyed(&t, "max")),
    )
}

/// Usage of v1 cgroups; `dir(controller)` gives each hierarchy's directory.
pub fn v1<'a>(dir: impl Fn(&str) -> Option<&'a Path>) -> Usage {
    let r = |c: &str, f: &str| dir(c).and_then(|d| read(d, f));
    Usage {
        memory_peak_bytes: r("memory", "memory.max_usage_in_bytes").and_then(|t| single(&t)),
        oom_kills: r("memory", "memory.oom_control").and_then(|t| keyed(&t, "oom_kill")),
        pids_peak: None,
        pids_limit_hits: r("pids", "pids.events").and_then(|t| keyed(&t, "max")),
        cpu_usage_ms: r("cpuacct", "cpuacct.usage")
            .or_else(|| r("cpu", "cpuacct.usage"))
            .and_then(|t| single(&t))
            .map(|ns| ns / 1_000_000),
    }
}
