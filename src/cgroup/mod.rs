//! cgroup limits: one cgroup per sandbox, made by the parent before the
//! launch and removed after it.
//!
//! - cgroup v2: a leaf `cordon-<pid>-<start>-<n>` under the parent cgroup
//!   (`limits.cgroup_parent`, or next to cordon's own cgroup), with only the
//!   controllers the limits need enabled in the parent. The sandbox is born
//!   in it (clone3 `CLONE_INTO_CGROUP`). Teardown writes `cgroup.kill`
//!   (freezing and killing on kernels without it) and removes the leaf.
//! - cgroup v1 (hybrid hosts): a child of cordon's own cgroup in each
//!   controller hierarchy needed; the parent writes the sandbox's pid into
//!   each before releasing it.
//!
//! A cgroup left behind by a cordon that was killed is recognised by the
//! pid and start time in its name and removed by the next launch that uses
//! the same parent, or by `cordon gc`.

pub mod parse;
pub mod probe;
pub mod stats;

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::policy::{Cpus, Limits};
use parse::{parse_mountinfo_cgroups, parse_proc_cgroup, CgroupMount, CgroupVersion};

pub use stats::Usage;

/// The CFS period cordon uses (the kernel's default): 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The cgroup limits of a policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgLimits {
    /// Bytes of memory.
    pub memory: Option<u64>,
    /// Bytes of swap on top of `memory`.
    pub memory_swap: Option<u64>,
    /// Tasks.
    pub pids: Option<u64>,
    /// CPU bandwidth.
    pub cpus: Option<Cpus>,
}

impl CgLimits {
    /// The limits a policy asks for.
    pub fn from_policy(l: &Limits) -> CgLimits {
        CgLimits {
            memory: l.memory.map(|s| s.0),
            memory_swap: l.memory_swap.map(|s| s.0),
            pids: l.pids,
            cpus: l.cpus,
        }
    }

    /// Whether there is nothing to limit.
    pub fn is_empty(&self) -> bool {
        *self == CgLimits::default()
    }

    /// The policy fields set (`memory`, `memory_swap`, `pids`, `cpus`).
    pub fn fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        if self.memory.is_some() {
            f.push("memory");
        }
        if self.memory_swap.is_some() {
            f.push("memory_swap");
        }
        if self.pids.is_some() {
            f.push("pids");
        }
        if self.cpus.is_some() {
            f.push("cpus");
        }
        f
    }

    /// The controllers needed (v2 names).
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut c = Vec::new();
        if self.memory.is_some() {
            c.push("memory");
        }
        if self.pids.is_some() {
            c.push("pids");
        }
        if self.cpus.is_some() {
            c.push("cpu");
        }
        c
    }
}

/// For `limits.cgroup: "v2_only"`: the reason the limits cannot be had when
/// `/proc/self/cgroup` (the text given) already shows a needed controller
/// bound to a cgroup v1 hierarchy: a controller lives in one hierarchy at a
/// time, so cgroup v2 cannot offer it, and the whole layout (mountinfo)
/// need not be read on every launch. `None`: decide on the full layout.
pub fn v2_only_refused_by_v1(l: &CgLimits, proc_cgroup: &str) -> Option<String> {
    let members = parse::parse_proc_cgroup(proc_cgroup);
    let on_v1: Vec<&str> = l
        .controllers()
        .into_iter()
        .filter(|c| {
            members
                .iter()
                .any(|m| m.hierarchy_id != 0 && m.controllers.iter().any(|x| x == c))
        })
        .collect();
    if on_v1.is_empty() {
        return None;
    }
    Some(format!(
        "{} (cgroup limits): limits.cgroup is \"v2_only\" and this host has the {} controller{} on cgroup v1; cordon does not use cgroup v1 for them (a v1 cgroup slows every launch by milliseconds): set limits.cgroup to \"any\", or give --memory, --pids or --cpus, to use cgroup v1",
        l.fields().iter().map(|f| format!("limits.{f}")).collect::<Vec<_>>().join(", "),
        on_v1.join(", "),
        if on_v1.len() == 1 { "" } else { "s" }
    ))
}

/// What to write, for cgroup v2: (file, value).
pub fn v2_writes(l: &CgLimits) -> Vec<(&'static str, String)> {
    let mut w = Vec::new();
    if let Some(m) = l.memory {
        w.push(("memory.max", m.to_string()));
        w.push((
            "memory.swap.max",
            l.memory_swap.map_or("max".to_string(), |s| s.to_string()),
        ));
    }
    if let Some(p) = l.pids {
        w.push(("pids.max", p.to_string()));
    }
    if let Some(c) = l.cpus {
        w.push((
            "cpu.max",
            format!("{} {CPU_PERIOD_US}", c.quota_us(CPU_PERIOD_US)),
        ));
    }
    w
}

/// What to write, for cgroup v1: (controller, file, value). `memsw`: the
/// memory hierarchy has memory.memsw.* (swap accounting is on).
pub fn v1_writes(l: &CgLimits, memsw: bool) -> Vec<(&'static str, &'static str, String)> {
    let mut w = Vec::new();
    if let Some(m) = l.memory {
        w.push(("memory", "memory.limit_in_bytes", m.to_string()));
        if memsw {
            // memsw counts memory plus swap, and must not be set below
            // limit_in_bytes: write it after.
            let total = m.saturating_add(l.memory_swap.unwrap_or(0));
            if l.memory_swap.is_some() {
                w.push(("memory", "memory.memsw.limit_in_bytes", total.to_string()));
            }
        }
    }
    if let Some(p) = l.pids {
        w.push(("pids", "pids.max", p.to_string()));
    }
    if let Some(c) = l.cpus {
        w.push(("cpu", "cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
        w.push(("cpu", "cpu.cfs_quota_us", c.quota_us(CPU_PERIOD_US).to_string()));
    }
    w
}

/// A cgroup operation that failed: which file, what was written, errno.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupError {
    /// What cordon was doing.
    pub what: String,
    /// The file or directory.
    pub path: PathBuf,
    /// The value written, if any.
    pub value: Option<String>,
    /// errno.
    pub errno: i32,
}

impl std::fmt::Display for CgroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.path.display())?;
        if let Some(v) = &self.value {
            write!(f, " <- {v:?}")?;
        }
        write!(f, ": {}", std::io::Error::from_raw_os_error(self.errno))
    }
}

impl std::error::Error for CgroupError {}

fn io_err(what: &str, path: &Path, value: Option<&str>, e: &std::io::Error) -> CgroupError {
    CgroupError {
        what: what.to_string(),
        path: path.to_path_buf(),
        value: value.map(str::to_string),
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// Write `value` to `dir/file`.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(|e| io_err("write", &p, Some(value), &e))
}

/// The cgroup hierarchies of this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// The cgroup2 mount point and cordon's cgroup in it.
    pub v2: Option<(PathBuf, String)>,
    /// v1 hierarchies: (controllers, mount point, cordon's cgroup in it).
    pub v1: Vec<(Vec<String>, PathBuf, String)>,
}

impl Layout {
    /// Read /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Layout {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Layout::from_texts(&mountinfo, &cgroup)
    }

    /// The layout from the texts of /proc/self/mountinfo and /proc/self/cgroup.
    pub fn from_texts(mountinfo: &str, cgroup: &str) -> Layout {
        let mounts: Vec<CgroupMount> = parse_mountinfo_cgroups(mountinfo);
        let members = parse_proc_cgroup(cgroup);
        // The path inside a mount whose root is a subtree (containers).
        let inside = |m: &CgroupMount, path: &str| -> String {
            match path.strip_prefix(m.root.trim_end_matches('/')) {
                Some(rest) if m.root != "/" => {
                    if rest.is_empty() {
                        "/".to_string()
                    } else {
                        rest.to_string()
                    }
                }
                _ => path.to_string(),
            }
        };
        let mut l = Layout::default();
        for m in &mounts {
            match m.version {
                CgroupVersion::V2 => {
                    if let Some(me) = members.iter().find(|c| c.hierarchy_id == 0) {
                        l.v2 = Some((PathBuf::from(&m.mount_point), inside(m, &me.path)));
                    }
                }
                CgroupVersion::V1 if !m.controllers.is_empty() => {
                    if let Some(me) = members
                        .iter()
                        .find(|c| m.controllers.iter().all(|x| c.controllers.contains(x)))
                    {
                        l.v1.push((
                            m.controllers.clone(),
                            PathBuf::from(&m.mount_point),
                            inside(m, &me.path),
                        ));
                    }
                }
                CgroupVersion::V1 => {}
            }
        }
        l
    }

    /// Controllers available in the cgroup2 hierarchy (its root's
    /// cgroup.controllers).
    pub fn v2_controllers(&self) -> Vec<String> {
        self.v2
            .as_ref()
            .and_then(|(mnt, _)| std::fs::read_to_string(mnt.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The v1 hierarchy holding `controller`: (mount point, cordon's cgroup).
    pub fn v1_for(&self, controller: &str) -> Option<(&Path, &str)> {
        self.v1
            .iter()
            .find(|(c, _, _)| c.iter().any(|x| x == controller))
            .map(|(_, m, p)| (m.as_path(), p.as_str()))
    }
}

/// This process's start time (field 22 of /proc/self/stat), which with the
/// pid names a cordon process uniquely.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh cgroup name for this process: `cordon-<pid>-<start>-<n>`.
pub fn fresh_name() -> String {
    let pid = std::process::id();
    let start = start_time(pid).unwrap_or(0);
    format!("cordon-{pid}-{start}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Whether a cgroup directory name is one of cordon's whose process is gone.
pub fn is_stale(name: &str) -> bool {
    let rest = name
        .strip_prefix("cordon-supervisor-")
        .or_else(|| name.strip_prefix("cordon-"));
    let Some(rest) = rest else { return false };
    let mut it = rest.split('-');
    let (Some(pid), Some(start)) = (
        it.next().and_then(|p| p.parse::<u32>().ok()),
        it.next().and_then(|s| s.parse::<u64>().ok()),
    ) else {
        return false;
    };
    start_time(pid) != Some(start)
}

/// The controller whose files a v1 write goes to.
fn v1_dir_for<'a>(dirs: &'a [(String, PathBuf)], controller: &str) -> Option<&'a Path> {
    dirs.iter()
        .find(|(c, _)| c == controller)
        .map(|(_, d)| d.as_path())
}

/// Where the sandbox's cgroup is to be made, decided in the parent before
/// anything is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupPlan {
    /// A v2 leaf under `parent`; `move_self`: cordon's own cgroup is the
    /// parent and has processes, so cordon first moves itself into a leaf.
    V2 {
        /// The parent directory.
        parent: PathBuf,
        /// Controllers to enable in the parent's subtree_control.
        controllers: Vec<String>,
        /// Move cordon into its own leaf first.
        move_self: bool,
        /// The writes.
        writes: Vec<(&'static str, String)>,
    },
    /// v1: a child of cordon's cgroup in each hierarchy, (controller, parent).
    V1 {
        /// (controller, parent directory).
        parents: Vec<(String, PathBuf)>,
        /// The writes.
        writes: Vec<(&'static str, &'static str, String)>,
    },
}

fn writable(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: c is NUL-terminated; faccessat only reads it.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) == 0 }
}

fn has_procs(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|s| !s.trim().is_empty())
}

impl CgroupPlan {
    /// Decide where the limits `l` go on this host, or say why they cannot
    /// be enforced here (with what to do). `v2_only`: cgroup v1 does not
    /// count (the policy's `limits.cgroup` is `v2_only`).
    pub fn decide(
        l: &CgLimits,
        layout: &Layout,
        parent: Option<&str>,
        v2_only: bool,
    ) -> Result<CgroupPlan, String> {
        let needed = l.controllers();
        let v2_has = layout.v2_controllers();
        if let Some((mnt, own)) = &layout.v2 {
            if needed.iter().all(|c| v2_has.iter().any(|h| h == c)) {
                let own_dir = mnt.join(own.trim_start_matches('/'));
                let (parent, move_self) = match parent {
                    Some(p) => (PathBuf::from(p), false),
                    None if own == "/" => (own_dir, false),
                    None => {
                        // Next to cordon's own cgroup when its parent lets us;
                        // else below it, after moving cordon into a leaf.
                        let up = own_dir
                            .parent()
                            .map(Path::to_path_buf)
                            .unwrap_or_else(|| own_dir.clone());
                        if up != *mnt && writable(&up) && writable(&up.join("cgroup.subtree_control")) {
                            (up, false)
                        } else {
                            let busy = has_procs(&own_dir);
                            (own_dir, busy)
                        }
                    }
                };
                if !writable(&parent) {
                    // Named like the v2_only refusal below: the outcome's
                    // `unenforced` item must say which limits are missing.
                    return Err(format!(
                        "{} (cgroup limits): cgroup v2: {} is not writable for this user, so cordon cannot make the sandbox's cgroup: run cordon in a delegated subtree (systemd-run --user --scope -p Delegate=yes cordon run ...), choose one with limits.cgroup_parent, or run as root",
                        l.fields().iter().map(|f| format!("limits.{f}")).collect::<Vec<_>>().join(", "),
                        parent.display()
                    ));
                }
                return Ok(CgroupPlan::V2 {
                    parent,
                    controllers: needed.iter().map(|c| c.to_string()).collect(),
                    move_self,
                    writes: v2_writes(l),
                });
            }
        }
        // v1 for every controller, or nothing.
        if v2_only {
            let v2 = match &layout.v2 {
                Some((m, _)) => format!(
                    "the cgroup v2 hierarchy at {} offers {}",
                    m.display(),
                    if v2_has.is_empty() {
                        "no controller".to_string()
                    } else {
                        v2_has.join(" ")
                    }
                ),
                None => "this host has no cgroup v2 hierarchy".to_string(),
            };
            return Err(format!(
                "{} (cgroup limits): limits.cgroup is \"v2_only\" and {v2}, not {}; cordon does not use cgroup v1 for them (a v1 cgroup slows every launch by milliseconds): set limits.cgroup to \"any\", or give --memory, --pids or --cpus, to use cgroup v1",
                l.fields().iter().map(|f| format!("limits.{f}")).collect::<Vec<_>>().join(", "),
                needed.join(", ")
            ));
        }
        if let Some(p) = parent {
            return Err(format!(
                "limits.cgroup_parent ({p}) applies to cgroup v2, but this host offers {} only on cgroup v1: remove cgroup_parent to use cordon's own v1 cgroups",
                needed.join(", ")
            ));
        }
        let mut parents = Vec::new();
        let mut want: Vec<&str> = needed.clone();
        if l.cpus.is_some() {
            // CPU usage is accounted by cpuacct (often its own hierarchy).
            want.push("cpuacct");
        }
        for c in want {
            let Some((mnt, own)) = layout.v1_for(c) else {
                if c == "cpuacct" {
                    continue;
                }
                let v2_note = match &layout.v2 {
                    Some((m, _)) => format!(
                        " (the cgroup v2 hierarchy at {} offers: {})",
                        m.display(),
                        if v2_has.is_empty() {
                            "none".to_string()
                        } else {
                            v2_has.join(" ")
                        }
                    ),
                    None => String::new(),
                };
                return Err(format!("the {c} controller is not available in any cgroup hierarchy{v2_note}: enable it (boot with cgroup_enable={c}, or systemd.unified_cgroup_hierarchy=1 for cgroup v2)"));
            };
            let dir = mnt.join(own.trim_start_matches('/'));
            if parents.iter().any(|(_, d): &(String, PathBuf)| *d == dir) {
                // cpu and cpuacct mounted together: one directory serves both.
                parents.push((c.to_string(), dir));
                continue;
            }
            if !writable(&dir) {
                return Err(format!(
                    "cgroup v1: {} is not writable for this user (cgroup v1 is never delegated to unprivileged users): run cordon as root, or use a host with cgroup v2 and a delegated subtree",
                    dir.display()
                ));
            }
            parents.push((c.to_string(), dir));
        }
        let memsw = layout.v1_for("memory").is_some_and(|(m, own)| {
            m.join(own.trim_start_matches('/'))
                .join("memory.memsw.limit_in_bytes")
                .exists()
        });
        if l.memory_swap.is_some() && !memsw && swap_in_use() {
            return Err("limits.memory_swap: this host swaps but has no swap accounting (memory.memsw.*), so swap cannot be limited: boot with swapaccount=1, or use cgroup v2".to_string());
        }
        Ok(CgroupPlan::V1 {
            parents,
            writes: v1_writes(l, memsw),
        })
    }
}

/// Whether any swap device is active.
fn swap_in_use() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() > 1)
}

/// A sandbox's cgroup, made for one run.
#[derive(Debug)]
pub enum Cgroup {
    /// v2: the leaf and an fd on it (for CLONE_INTO_CGROUP).
    V2 {
        /// The leaf.
        dir: PathBuf,
        /// O_PATH|O_DIRECTORY fd on it.
        fd: OwnedFd,
    },
    /// v1: (controller, directory) for each hierarchy.
    V1 {
        /// The directories.
        dirs: Vec<(String, PathBuf)>,
    },
}

fn mkdir(p: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir(p).map_err(|e| io_err("create cgroup", p, None, &e))
}

/// Whether this kernel checks a write to `cgroup.procs` against the
/// credentials of the open (Linux 5.16, "cgroup: Use open-time
/// credentials for process migraton perm checks").
fn migration_checks_open_creds() -> bool {
    static AT_LEAST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AT_LEAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease").is_ok_and(|r| release_at_least(&r, (5, 16)))
    })
}

/// Whether a kernel release string ("6.1.0-27-amd64") is `want` or later.
fn release_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|m| m.parse::<u32>().ok());
    let minor = it.next().and_then(|m| m.parse::<u32>().ok());
    matches!((major, minor), (Some(a), Some(b)) if (a, b) >= want)
}

/// Whether the cgroup `dir` (v2) still holds a process.
pub fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|t| stats::keyed(&t, "populated") != Some(0))
        .unwrap_or(false)
}

/// Kill every process in the cgroup `dir` (v2 `cgroup.kill`) and remove
/// it once empty, waiting at most `patience`.
pub fn kill_and_remove(dir: &Path, patience: Duration) -> Result<(), CgroupError> {
    destroy_dir(dir, patience)
}

/// Remove stale cordon cgroups (of processes that are gone) directly below
/// `parent`; returns how many were removed.
pub fn gc_dir(parent: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_stale(name) && destroy_dir(&e.path(), Duration::from_secs(2)).is_ok() {
            n += 1;
        }
    }
    n
}

/// Remove stale cordon cgroups wherever cordon would make them from this
/// process (next to and below its own cgroups, in v2 and every v1
/// hierarchy), and below `extra`. Returns what was removed.
pub fn gc(extra: Option<&Path>) -> Vec<PathBuf> {
    let layout = Layout::detect();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut add = |mnt: &Path, own: &str| {
        let d = mnt.join(own.trim_start_matches('/'));
        if let Some(up) = d.parent().filter(|u| u.starts_with(mnt)) {
            dirs.push(up.to_path_buf());
        }
        dirs.push(d);
    };
    if let Some((mnt, own)) = &layout.v2 {
        add(mnt, own);
    }
    for (_, mnt, own) in &layout.v1 {
        add(mnt, own);
    }
    dirs.extend(extra.map(Path::to_path_buf));
    dirs.sort();
    dirs.dedup();
    let mut removed = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name();
            if name.to_str().is_some_and(is_stale) && destroy_dir(&e.path(), Duration::from_secs(2)).is_ok() {
                removed.push(e.path());
            }
        }
    }
    removed
}

/// Kill everything in a cgroup directory and remove it.
fn destroy_dir(dir: &Path, patience: Duration) -> Result<(), CgroupError> {
    // Child cgroups first (a named sandbox's per-command ones): a cgroup
    // with children cannot be removed.
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            destroy_dir(&e.path(), patience)?;
        }
    }
    // v2: cgroup.kill (5.14+); else freeze, kill each process, thaw.
    if write(dir, "cgroup.kill", "1").is_err() {
        let frozen = write(dir, "cgroup.freeze", "1").is_ok();
        kill_procs(dir);
        if frozen {
            let _ = write(dir, "cgroup.freeze", "0");
        }
    }
    let end = Instant::now() + patience;
    loop {
        kill_procs(dir);
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io_err("remove cgroup", dir, None, &e)),
        }
    }
}

fn kill_procs(dir: &Path) {
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in s.split_whitespace().filter_map(|p| p.parse::<libc::pid_t>().ok()) {
            // SAFETY: kill has no memory arguments.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Cgroup {
    /// Make the cgroup the plan describes (after removing stale ones of
    /// killed cordons next to it) and write the limits.
    pub fn create(plan: &CgroupPlan) -> Result<Cgroup, CgroupError> {
        let name = fresh_name();
        match plan {
            CgroupPlan::V2 {
                parent,
                controllers,
                move_self,
                writes,
            } => {
                gc_dir(parent);
                if *move_self {
                    let me = parent.join(format!(
                        "cordon-supervisor-{}-{}",
                        std::process::id(),
                        start_time(std::process::id()).unwrap_or(0)
                    ));
                    if !me.exists() {
                        mkdir(&me)?;
                    }
                    write(&me, "cgroup.procs", &std::process::id().to_string())?;
                }
                let enabled =
                    std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
                let missing: Vec<String> = controllers
                    .iter()
                    .filter(|c| !enabled.split_whitespace().any(|e| e == c.as_str()))
                    .map(|c| format!("+{c}"))
                    .collect();
                if !missing.is_empty() {
                    write(parent, "cgroup.subtree_control", &missing.join(" "))?;
                }
                let dir = parent.join(&name);
                mkdir(&dir)?;
                let made = Cgroup::open_v2(&dir);
                let cg = match made {
                    Ok(cg) => cg,
                    Err(e) => {
                        let _ = std::fs::remove_dir(&dir);
                        return Err(e);
                    }
                };
                for (file, value) in writes {
                    if let Err(e) = write(&dir, file, value) {
                        cg.destroy();
                        return Err(e);
                    }
                }
                Ok(cg)
            }
            CgroupPlan::V1 { parents, writes } => {
                let mut dirs: Vec<(String, PathBuf)> = Vec::new();
                for (c, parent) in parents {
                    let dir = parent.join(&name);
                    if !dirs.iter().any(|(_, d)| *d == dir) {
                        gc_dir(parent);
                        if let Err(e) = mkdir(&dir) {
                            Cgroup::V1 { dirs }.destroy();
                            return Err(e);
                        }
                    }
                    dirs.push((c.clone(), dir));
                }
                let cg = Cgroup::V1 { dirs };
                if let Cgroup::V1 { dirs } = &cg {
                    for (c, file, value) in writes {
                        // decide() made a directory for every controller a
                        // write needs; a missing one must not drop a limit.
                        let Some(d) = v1_dir_for(dirs, c) else {
                            let e = CgroupError {
                                what: format!("no {c} hierarchy for {file}"),
                                path: PathBuf::from(file),
                                value: Some(value.clone()),
                                errno: libc::ENOENT,
                            };
                            cg.destroy();
                            return Err(e);
                        };
                        if let Err(e) = write(d, file, value) {
                            cg.destroy();
                            return Err(e);
                        }
                    }
                }
                Ok(cg)
            }
        }
    }

    fn open_v2(dir: &Path) -> Result<Cgroup, CgroupError> {
        let c = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| CgroupError {
            what: "open cgroup".into(),
            path: dir.to_path_buf(),
            value: None,
            errno: libc::EINVAL,
        })?;
        // SAFETY: c is NUL-terminated.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io_err("open cgroup", dir, None, &std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Cgroup::V2 {
            dir: dir.to_path_buf(),
            fd,
        })
    }

    /// The fd for CLONE_INTO_CGROUP (v2 only).
    pub fn clone_fd(&self) -> Option<&OwnedFd> {
        match self {
            Cgroup::V2 { fd, .. } => Some(fd),
            Cgroup::V1 { .. } => None,
        }
    }

    /// v1: put `pid` into every hierarchy (v2 needs nothing: the child was
    /// born inside).
    pub fn attach(&self, pid: libc::pid_t) -> Result<(), CgroupError> {
        if let Cgroup::V1 { dirs } = self {
            let mut done: Vec<&Path> = Vec::new();
            for (_, d) in dirs {
                if !done.contains(&d.as_path()) {
                    write(d, "cgroup.procs", &pid.to_string())?;
                    done.push(d);
                }
            }
        }
        Ok(())
    }

    /// What the sandbox used.
    pub fn usage(&self) -> Usage {
        match self {
            Cgroup::V2 { dir, .. } => stats::v2(dir),
            Cgroup::V1 { dirs } => stats::v1(|c| v1_dir_for(dirs, c)),
        }
    }

    /// Its OOM kills and forks refused at the pids limit so far (as in
    /// [`Cgroup::usage`], without the other reads).
    pub fn limit_events(&self) -> (Option<u64>, Option<u64>) {
        match self {
            Cgroup::V2 { dir, .. } => stats::v2_limit_events(dir),
            Cgroup::V1 { dirs } => stats::v1_limit_events(|c| v1_dir_for(dirs, c)),
        }
    }

    /// For command `id` of a named sandbox: a cgroup of its own below
    /// this (v2) one, with no controllers (the sandbox's limits stay on
    /// this one, which keeps its processes), and its `cgroup.procs` opened
    /// for writing. A process that writes `0` there moves itself in: the
    /// kernel checks the permission with the credentials of the open
    /// (5.16+), so the sandbox's init may hand the fd to a command it
    /// forks without being allowed to open the file itself. `None` for v1,
    /// which has no `cgroup.kill`.
    /// `None` too on a kernel before 5.16, which checks the write against
    /// the writer's credentials.
    pub fn command_cgroup(&self, id: u32) -> Result<Option<(PathBuf, OwnedFd)>, CgroupError> {
        let Cgroup::V2 { dir, .. } = self else {
            return Ok(None);
        };
        if !migration_checks_open_creds() {
            return Ok(None);
        }
        let sub = dir.join(format!("cmd-{id}"));
        if let Err(e) = std::fs::create_dir(&sub) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(io_err("create cgroup", &sub, None, &e));
            }
        }
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(sub.join("cgroup.procs"))
            .map_err(|e| io_err("open cgroup.procs", &sub, None, &e))?;
        Ok(Some((sub, procs.into())))
    }

    /// The directory of a v2 cgroup (`None` for v1).
    pub fn v2_dir(&self) -> Option<&Path> {
        match self {
            Cgroup::V2 { dir, .. } => Some(dir),
            Cgroup::V1 { .. } => None,
        }
    }

    /// Paths, for the outcome and errors.
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V2 { dir, .. } => vec![dir.clone()],
            Cgroup::V1 { dirs } => {
                let mut v: Vec<PathBuf> = dirs.iter().map(|(_, d)| d.clone()).collect();
                v.dedup();
                v
            }
        }
    }

    /// "v1" or "v2".
    pub fn version(&self) -> &'static str {
        match self {
            Cgroup::V2 { .. } => "v2",
            Cgroup::V1 { .. } => "v1",
        }
    }

    /// Kill whatever is left and remove the cgroup(s).
    pub fn destroy(&self) -> Vec<CgroupError> {
        let mut errs = Vec::new();
        for d in self.paths() {
            if let Err(e) = destroy_dir(&d, Duration::from_secs(5)) {
                errs.push(e);
            }
        }
        errs
    }

    /// The raw fd (for clone3).
    pub fn raw_clone_fd(&self) -> Option<i32> {
        self.clone_fd().map(AsRawFd::as_raw_fd)
    }
}

#[cfg(test)]
mod tests;
