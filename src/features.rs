//! `cordon features`: what the running kernel and host offer, and what that
//! means for policies.
//!
//! [`probe`] asks the kernel directly — each probe is independent, none can
//! panic, and a probe that cannot tell says [`Status::Unknown`] and why.
//! Every item has a [`Status`], a `detail` saying what was seen and, when
//! something is missing or limited, an `advice` saying what to do.
//! [`Features`] serializes to JSON (`cordon features --json`) with stable
//! snake_case field names; [`Features::to_text`] is the human report.
//!
//! Nothing here changes the host: the Landlock, seccomp, clone3 and pidfd
//! probes use arguments that only return an error (or, for `pidfd_open`,
//! open a descriptor to cordon itself and close it again); the namespace
//! probe runs in a forked child that exits at once.

use std::fmt::{self, Write as _};
use std::os::raw::{c_int, c_long};
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

use crate::sys::{self, Errno};

// ---- the report --------------------------------------------------------

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
    fn new(status: Status, detail: impl Into<String>, advice: Option<String>) -> Probe {
        Probe {
            status,
            detail: detail.into(),
            advice,
        }
    }
}

/// Everything `cordon features` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Features {
    /// The running kernel (uname).
    pub kernel: Kernel,
    /// Who ran the probe: results such as user namespaces and cgroup
    /// delegation depend on it.
    pub identity: Identity,
    /// Landlock: ABI version, LSM list, rights the ABI offers.
    pub landlock: Landlock,
    /// Seccomp filters, their return actions, and seccomp reports.
    pub seccomp: Seccomp,
    /// The clone3 system call (Linux 5.3), which cordon starts sandboxes with.
    pub clone3: Probe,
    /// The pidfd_open system call (Linux 5.3), probed with an invalid pid.
    pub pidfd_open: Probe,
    /// The pidfd_send_signal system call (Linux 5.1), probed with an invalid pidfd.
    pub pidfd_send_signal: Probe,
    /// Whether pidfds work end to end: pidfd_open on cordon itself, then
    /// pidfd_send_signal(pidfd, 0) through it.
    pub pidfd: Probe,
    /// Namespaces: which kinds exist, and which this user can create.
    pub namespaces: Namespaces,
    /// Cgroups: layout, cordon's own cgroup, controllers and delegation.
    pub cgroups: Cgroups,
}

/// The running kernel, from uname(2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kernel {
    /// Operating system name, `"Linux"`.
    pub sysname: String,
    /// Kernel release, e.g. `"6.18.44"` (what `uname -r` prints).
    pub release: String,
    /// Kernel build version string (what `uname -v` prints).
    pub version: String,
    /// Hardware name, e.g. `"x86_64"`.
    pub machine: String,
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

/// One Landlock access right, scope or flag, and the ABI that introduced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LandlockFeature {
    /// The kernel constant without its `LANDLOCK_` prefix, lower case, e.g.
    /// `"access_fs_refer"`, `"access_net_bind_tcp"`, `"scope_signal"`,
    /// `"restrict_self_log_same_exec_off"`.
    pub name: &'static str,
    /// The first ABI version that offers it.
    pub abi: u32,
    /// The first Linux release with that ABI.
    pub linux: &'static str,
}

/// Landlock support.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Landlock {
    /// `available` when the ABI offers every access right and scope cordon
    /// knows, `limited` when it lacks some (ABI < 6), `missing` when Landlock
    /// is not built in or not enabled, `unknown` when the query says neither.
    pub status: Status,
    /// What the probes saw.
    pub detail: String,
    /// What to do when Landlock is missing.
    pub advice: Option<String>,
    /// The ABI version from `landlock_create_ruleset(NULL, 0,
    /// LANDLOCK_CREATE_RULESET_VERSION)`; `null` when the call failed.
    pub abi: Option<u32>,
    /// The error of that call, e.g. `"EOPNOTSUPP"` (built in but not enabled
    /// at boot) or `"ENOSYS"` (not built in); `null` when it succeeded.
    pub errno: Option<String>,
    /// The active LSMs, in the kernel's order; `null` when no source could be read.
    pub lsm_list: Option<Vec<String>>,
    /// Where `lsm_list` came from (`/sys/kernel/security/lsm`, or
    /// `lsm_list_modules(2)` when that file cannot be read, with why), or
    /// why it is unknown.
    pub lsm_list_source: String,
    /// Whether `landlock` is in the LSM list; `null` when the list is unknown.
    pub in_lsm_list: Option<bool>,
    /// The rights, scopes and flags this ABI offers.
    pub features: Vec<LandlockFeature>,
    /// Those cordon knows of that this ABI lacks. A policy whose landlock
    /// section needs a missing `access_*` right or `scope_*` is refused
    /// unless its compatibility is `best_effort`; policies never ask for the
    /// `restrict_self_*` flags.
    pub unavailable_features: Vec<LandlockFeature>,
}

/// Which seccomp return actions the kernel offers
/// (SECCOMP_GET_ACTION_AVAIL); `null` when the query gave no answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeccompActions {
    /// SECCOMP_RET_KILL_PROCESS (Linux 4.14).
    pub kill_process: Option<bool>,
    /// SECCOMP_RET_KILL_THREAD.
    pub kill_thread: Option<bool>,
    /// SECCOMP_RET_TRAP.
    pub trap: Option<bool>,
    /// SECCOMP_RET_ERRNO.
    pub errno: Option<bool>,
    /// SECCOMP_RET_USER_NOTIF (Linux 5.0); when offered, so is the filter
    /// flag SECCOMP_FILTER_FLAG_NEW_LISTENER that comes with it.
    pub user_notif: Option<bool>,
    /// SECCOMP_RET_TRACE.
    pub trace: Option<bool>,
    /// SECCOMP_RET_LOG (Linux 4.14).
    pub log: Option<bool>,
    /// SECCOMP_RET_ALLOW.
    pub allow: Option<bool>,
}

/// Seccomp support.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Seccomp {
    /// `available` when filters work with every action and reports work,
    /// `limited` when reports (or some actions) do not, `missing` without
    /// seccomp filters.
    pub status: Status,
    /// What the probes saw.
    pub detail: String,
    /// What to do when something is missing.
    pub advice: Option<String>,
    /// The return actions.
    pub actions: SeccompActions,
    /// pidfd_getfd (Linux 5.6), probed with pidfd -1 (EBADF: present,
    /// ENOSYS: absent). Seccomp reports need it.
    pub pidfd_getfd: Probe,
    /// Whether `"report": true` in a policy's seccomp section can work
    /// here: it needs user notification and pidfd_getfd. Without them the
    /// filter still applies but nothing is reported.
    pub reports: Probe,
}

/// One namespace kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace {
    /// `user`, `mount`, `pid`, `net`, `ipc`, `uts`, `cgroup` or `time`.
    pub name: &'static str,
    /// Whether `/proc/self/ns/<entry>` exists (the kernel supports the kind).
    pub present: bool,
    /// Whether a forked child could unshare it (after unsharing a user
    /// namespace when that worked); `null` when the test could not run or
    /// did not get that far.
    pub usable: Option<bool>,
    /// Available, missing, or unknown.
    pub status: Status,
    /// What the probe saw.
    pub detail: String,
    /// What to do when the kind is not usable.
    pub advice: Option<String>,
}

/// Namespaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespaces {
    /// Every kind, in the order user, mount, pid, net, ipc, uts, cgroup, time.
    pub kinds: Vec<Namespace>,
    /// User namespaces in detail: everything else cordon does rests on them.
    pub user: UserNamespaces,
}

/// User namespaces: a real test and the sysctls that can block them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserNamespaces {
    /// `available` when this user can create one (`limited` when root can but
    /// a sysctl blocks unprivileged users), `missing` when it cannot.
    pub status: Status,
    /// What the probes saw.
    pub detail: String,
    /// What to do (the exact sysctl when one blocks them).
    pub advice: Option<String>,
    /// Whether a forked child of this process could `unshare(CLONE_NEWUSER)`;
    /// `null` when the test could not run.
    pub usable: Option<bool>,
    /// The uid the test ran as.
    pub tested_as_uid: u32,
    /// The error of that unshare, e.g. `"EPERM"`; `null` when it worked.
    pub errno: Option<String>,
    /// `/proc/sys/user/max_user_namespaces` (0 disables user namespaces for
    /// everyone); `null` when absent or unreadable.
    pub max_user_namespaces: Option<u64>,
    /// `/proc/sys/kernel/unprivileged_userns_clone` (Debian; 0 disables them
    /// for non-root); `null` when absent.
    pub unprivileged_userns_clone: Option<u64>,
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns` (Ubuntu; 1
    /// restricts them to programs with an AppArmor `userns,` rule); `null`
    /// when absent.
    pub apparmor_restrict_unprivileged_userns: Option<u64>,
    /// The sysctls above whose values block unprivileged users, as
    /// `name=value` (empty when none does).
    pub blocked_for_unprivileged_by: Vec<String>,
}

/// Cgroup version of a hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    /// A cgroup v1 hierarchy (filesystem type `cgroup`).
    V1,
    /// The cgroup v2 unified hierarchy (filesystem type `cgroup2`).
    V2,
}

/// How the host mounts cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupLayout {
    /// Only cgroup v1 hierarchies.
    V1,
    /// Only cgroup v2 (named v1 hierarchies without controllers, such as
    /// `name=systemd`, aside).
    V2,
    /// cgroup2 (usually at `/sys/fs/cgroup/unified`) plus v1 hierarchies
    /// with controllers.
    Hybrid,
    /// No cgroup filesystem is mounted.
    None,
    /// `/proc/self/mountinfo` could not be read.
    Unknown,
}

/// One mounted cgroup hierarchy, from `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CgroupMount {
    /// v1 or v2.
    pub version: CgroupVersion,
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: String,
    /// The cgroup mounted there (`/` unless only a subtree is visible, as in
    /// some containers).
    pub root: String,
    /// v1: the controllers bound to this hierarchy; v2: empty (see
    /// `Cgroups::v2`).
    pub controllers: Vec<String>,
    /// v1 named hierarchy, e.g. `systemd` for `name=systemd`.
    pub name: Option<String>,
    /// Whether the mount is read-only.
    pub read_only: bool,
}

/// One line of `/proc/self/cgroup`: cordon's cgroup in one hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CgroupMembership {
    /// Hierarchy id (0: cgroup v2).
    pub hierarchy_id: u32,
    /// Controllers (and `name=` entries) of the hierarchy; empty for v2.
    pub controllers: Vec<String>,
    /// The cgroup path inside the hierarchy.
    pub path: String,
}

/// cordon's place in the cgroup v2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CgroupV2 {
    /// Where cgroup2 is mounted.
    pub mount_point: String,
    /// cordon's cgroup (the `0::` line of `/proc/self/cgroup`).
    pub path: String,
    /// That cgroup's directory, when it is visible under the mount.
    pub directory: Option<String>,
    /// Controllers of the root cgroup (`cgroup.controllers` at the mount point).
    pub root_controllers: Option<Vec<String>>,
    /// Controllers of the parent of cordon's cgroup; `null` at the root.
    pub parent_controllers: Option<Vec<String>>,
    /// Controllers of cordon's cgroup.
    pub controllers: Option<Vec<String>>,
    /// Controllers cordon's cgroup enables for its children (`cgroup.subtree_control`).
    pub subtree_control: Option<Vec<String>>,
    /// Owner of the directory (a delegated subtree belongs to the user).
    pub owner_uid: Option<u32>,
    /// Whether this user can create cgroups there (write on the directory).
    pub directory_writable: Option<bool>,
    /// Whether this user can move processes there (write on `cgroup.procs`).
    pub procs_writable: Option<bool>,
    /// Whether this user can enable controllers for children (write on
    /// `cgroup.subtree_control`).
    pub subtree_control_writable: Option<bool>,
    /// Whether the cgroup2 mount is read-only (usual inside containers).
    pub read_only: bool,
}

/// Where a controller cordon limits with lives, and whether cordon can use it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CgroupController {
    /// `memory`, `pids` or `cpu`.
    pub name: &'static str,
    /// The hierarchy that has it; `null` when none does.
    pub version: Option<CgroupVersion>,
    /// cordon's cgroup directory in that hierarchy.
    pub directory: Option<String>,
    /// v2: whether cordon's cgroup has the controller (its
    /// `cgroup.controllers` lists it); v1: always `true`.
    pub enabled: Option<bool>,
    /// Whether this user can create a cgroup there and move processes into it.
    pub writable: Option<bool>,
    /// `available` when a limit could be enforced as this user.
    pub status: Status,
    /// What the probe saw.
    pub detail: String,
}

/// Cgroups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cgroups {
    /// `available` when memory and pids limits could be enforced as this
    /// user, `limited` when not all, `missing` without cgroups, `unknown`
    /// when mountinfo is unreadable.
    pub status: Status,
    /// What the probe saw and what it means for cgroup limits in policies.
    pub detail: String,
    /// What to do (delegation, boot parameters, container settings).
    pub advice: Option<String>,
    /// v1, v2, hybrid, none or unknown.
    pub layout: CgroupLayout,
    /// The mounted hierarchies.
    pub mounts: Vec<CgroupMount>,
    /// `/proc/self/cgroup`.
    pub membership: Vec<CgroupMembership>,
    /// cordon's place in cgroup v2; `null` when cgroup2 is not mounted.
    pub v2: Option<CgroupV2>,
    /// memory, pids and cpu.
    pub controllers: Vec<CgroupController>,
}

// ---- probing -----------------------------------------------------------

/// Probe the running kernel and host. Never panics; each probe is
/// independent of the others.
pub fn probe() -> Features {
    let identity = probe_identity();
    Features {
        kernel: probe_kernel(),
        landlock: probe_landlock(&identity),
        seccomp: probe_seccomp(&identity),
        clone3: probe_clone3(&identity),
        pidfd_open: probe_pidfd_open(&identity),
        pidfd_send_signal: probe_pidfd_send_signal(&identity),
        pidfd: probe_pidfd(),
        namespaces: probe_namespaces(&identity),
        cgroups: probe_cgroups(&identity),
        identity,
    }
}

/// A raw system call's result: the value, or the errno.
fn sys_result(ret: c_long) -> Result<c_long, i32> {
    if ret < 0 {
        Err(Errno::last().0)
    } else {
        Ok(ret)
    }
}

/// `ENOSYS (Function not implemented)`.
fn errno_text(e: i32) -> String {
    format!("{} ({})", errno_name(e), Errno(e).describe())
}

/// `ENOSYS`, or `errno 1234` for one without a name.
fn errno_name(e: i32) -> String {
    u16::try_from(e)
        .ok()
        .and_then(crate::seccomp::names::errno_name)
        .map(str::to_string)
        .unwrap_or_else(|| format!("errno {e}"))
}

/// A note for error results when cordon itself runs under a seccomp filter,
/// which may be what refused the call.
fn filter_note(id: &Identity) -> &'static str {
    if id.seccomp_mode == Some(2) {
        " (cordon itself runs under a seccomp filter, e.g. a container's profile, which may be what answered)"
    } else {
        ""
    }
}

/// What an ENOSYS means: `claim` about the kernel, or, under a seccomp
/// filter, that claim or the filter.
fn enosys_means(id: &Identity, claim: &str) -> String {
    if id.seccomp_mode == Some(2) {
        format!("{claim}, or the seccomp filter cordon runs under (a container's profile?) refuses the call")
    } else {
        claim.to_string()
    }
}

/// The advice when probes fail because of the seccomp filter cordon runs under.
const FILTER_ADVICE: &str = "cordon runs under a seccomp filter (a container's profile?) that refuses the probe: run it where that filter allows the call";

fn read_trimmed(path: &str) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path).map(|s| s.trim().to_string())
}

fn read_u64(path: &str) -> Option<u64> {
    read_trimmed(path).ok().and_then(|s| s.parse().ok())
}

fn probe_kernel() -> Kernel {
    // SAFETY: utsname is plain arrays of c_char, for which all zeroes is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given and fails only for a bad pointer.
    let ok = unsafe { libc::uname(&mut u) } == 0;
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    if !ok {
        let read = |p: &str| read_trimmed(p).unwrap_or_else(|_| "unknown".to_string());
        return Kernel {
            sysname: read("/proc/sys/kernel/ostype"),
            release: read("/proc/sys/kernel/osrelease"),
            version: read("/proc/sys/kernel/version"),
            machine: "unknown".to_string(),
        };
    }
    Kernel {
        sysname: field(&u.sysname),
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
    }
}

fn probe_identity() -> Identity {
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
fn is_identity_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
        .collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

/// The value of `Name:` in a /proc status file.
fn status_field(status: &str, name: &str) -> Option<String> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim().to_string())
    })
}

// ---- Landlock ----------------------------------------------------------

/// landlock_create_ruleset's flag asking for the ABI version.
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;

/// The first Linux release of each Landlock ABI (index = ABI).
const LANDLOCK_ABI_LINUX: [&str; 9] = ["", "5.13", "5.19", "6.2", "6.7", "6.10", "6.12", "6.15", "7.0"];

/// Every right, scope and flag, with the ABI that introduced it
/// (Documentation/userspace-api/landlock.rst, include/uapi/linux/landlock.h).
const LANDLOCK_FEATURES: [(&str, u32); 24] = [
    ("access_fs_execute", 1),
    ("access_fs_write_file", 1),
    ("access_fs_read_file", 1),
    ("access_fs_read_dir", 1),
    ("access_fs_remove_dir", 1),
    ("access_fs_remove_file", 1),
    ("access_fs_make_char", 1),
    ("access_fs_make_dir", 1),
    ("access_fs_make_reg", 1),
    ("access_fs_make_sock", 1),
    ("access_fs_make_fifo", 1),
    ("access_fs_make_block", 1),
    ("access_fs_make_sym", 1),
    ("access_fs_refer", 2),
    ("access_fs_truncate", 3),
    ("access_net_bind_tcp", 4),
    ("access_net_connect_tcp", 4),
    ("access_fs_ioctl_dev", 5),
    ("scope_abstract_unix_socket", 6),
    ("scope_signal", 6),
    ("restrict_self_log_same_exec_off", 7),
    ("restrict_self_log_new_exec_on", 7),
    ("restrict_self_log_subdomains_off", 7),
    ("restrict_self_tsync", 8),
];

/// The highest Landlock ABI this table knows.
const LANDLOCK_MAX_KNOWN_ABI: u32 = 8;

fn landlock_feature(name: &'static str, abi: u32) -> LandlockFeature {
    LandlockFeature {
        name,
        abi,
        linux: LANDLOCK_ABI_LINUX.get(abi as usize).copied().unwrap_or("?"),
    }
}

/// The features an ABI offers and those it lacks.
fn landlock_features(abi: u32) -> (Vec<LandlockFeature>, Vec<LandlockFeature>) {
    let mut have = Vec::new();
    let mut lack = Vec::new();
    for (name, since) in LANDLOCK_FEATURES {
        if since <= abi {
            have.push(landlock_feature(name, since));
        } else {
            lack.push(landlock_feature(name, since));
        }
    }
    (have, lack)
}

/// Parse `/sys/kernel/security/lsm` (`lockdown,capability,landlock,...`).
fn parse_lsm_list(s: &str) -> Vec<String> {
    s.trim()
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The LSM name of an `LSM_ID_*` value (include/uapi/linux/lsm.h).
fn lsm_id_name(id: u64) -> String {
    match id {
        100 => "capability",
        101 => "selinux",
        102 => "smack",
        103 => "tomoyo",
        104 => "apparmor",
        105 => "yama",
        106 => "loadpin",
        107 => "safesetid",
        108 => "lockdown",
        109 => "bpf",
        110 => "landlock",
        111 => "ima",
        112 => "evm",
        113 => "ipe",
        _ => return format!("lsm_id_{id}"),
    }
    .to_string()
}

/// lsm_list_modules(2) (Linux 6.8): the active LSMs.
fn lsm_list_modules() -> Result<Vec<String>, i32> {
    const SYS_LSM_LIST_MODULES: c_long = 461;
    let mut ids = [0u64; 64];
    let mut size: u32 = (ids.len() * std::mem::size_of::<u64>()) as u32;
    // SAFETY: ids has room for `size` bytes and size is a valid u32 the
    // kernel updates; flags must be 0.
    let n = sys_result(unsafe {
        libc::syscall(
            SYS_LSM_LIST_MODULES,
            ids.as_mut_ptr(),
            &mut size as *mut u32,
            0u32,
        )
    })?;
    let n = usize::try_from(n).unwrap_or(0).min(ids.len());
    Ok(ids[..n].iter().map(|&id| lsm_id_name(id)).collect())
}

/// The active LSM list and where it came from.
fn lsm_list() -> (Option<Vec<String>>, String) {
    const PATH: &str = "/sys/kernel/security/lsm";
    let why = match std::fs::read_to_string(PATH) {
        Ok(s) => return (Some(parse_lsm_list(&s)), PATH.to_string()),
        Err(e) => match e.kind() {
            std::io::ErrorKind::NotFound => "securityfs is not mounted at /sys/kernel/security".to_string(),
            std::io::ErrorKind::PermissionDenied => "this user may not read it".to_string(),
            _ => e.to_string(),
        },
    };
    match lsm_list_modules() {
        Ok(list) => (
            Some(list),
            format!("lsm_list_modules(2), as {PATH} cannot be read: {why}"),
        ),
        Err(e) => (
            None,
            format!(
                "unknown: {PATH} cannot be read ({why}) and lsm_list_modules(2) fails with {}",
                errno_text(e)
            ),
        ),
    }
}

fn probe_landlock(id: &Identity) -> Landlock {
    // SAFETY: a NULL attr with size 0 and the VERSION flag only returns the
    // ABI version (or an error); nothing is created.
    let r = sys_result(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    });
    let (lsm_list, lsm_list_source) = lsm_list();
    let in_lsm_list = lsm_list.as_ref().map(|l| l.iter().any(|x| x == "landlock"));
    let lsm_note = match (&lsm_list, in_lsm_list) {
        (Some(l), Some(true)) => format!(
            "landlock is in the LSM list [{}] (from {lsm_list_source})",
            l.join(",")
        ),
        (Some(l), _) => format!(
            "landlock is not in the LSM list [{}] (from {lsm_list_source})",
            l.join(",")
        ),
        (None, _) => format!("the LSM list is {lsm_list_source}"),
    };
    // The `lsm=` boot parameter that adds Landlock to what runs now.
    let boot_lsm = match &lsm_list {
        Some(l) => {
            let mut v: Vec<&str> = l
                .iter()
                .map(String::as_str)
                .filter(|x| *x != "capability" && *x != "landlock")
                .collect();
            v.push("landlock");
            format!("lsm={}", v.join(","))
        }
        None => "lsm=...,landlock (the current list followed by landlock)".to_string(),
    };
    let policy_note =
        "meanwhile a policy's landlock section runs only with \"compatibility\": \"best_effort\"";
    match r {
        Ok(v) => {
            let abi = u32::try_from(v).unwrap_or(0);
            let (features, unavailable_features) = landlock_features(abi);
            let linux = LANDLOCK_ABI_LINUX.get(abi as usize).copied().unwrap_or("");
            let mut detail = format!("ABI {abi}");
            if !linux.is_empty() {
                let _ = write!(detail, " (Linux {linux}+)");
            }
            if abi > LANDLOCK_MAX_KNOWN_ABI {
                let _ = write!(
                    detail,
                    ", newer than the ABI {LANDLOCK_MAX_KNOWN_ABI} cordon knows: its newer features are not listed"
                );
            }
            let _ = write!(detail, "; {lsm_note}");
            // Rights and scopes a policy can ask for (the restrict_self
            // flags are cordon's business, not the policy's).
            let policy_gaps: Vec<&LandlockFeature> = unavailable_features
                .iter()
                .filter(|f| f.name.starts_with("access_") || f.name.starts_with("scope_"))
                .collect();
            let (status, advice) = match policy_gaps.iter().map(|f| f.abi).max() {
                None => (Status::Available, None),
                Some(need) => {
                    let names: Vec<&str> = policy_gaps.iter().map(|f| f.name).collect();
                    let linux = LANDLOCK_ABI_LINUX.get(need as usize).copied().unwrap_or("?");
                    (
                        Status::Limited,
                        Some(format!(
                            "a policy whose landlock section needs {} is refused unless it sets \"compatibility\": \"best_effort\" (which runs without them); Linux {linux} or later offers them all",
                            names.join(", ")
                        )),
                    )
                }
            };
            Landlock {
                status,
                detail,
                advice,
                abi: Some(abi),
                errno: None,
                lsm_list,
                lsm_list_source,
                in_lsm_list,
                features,
                unavailable_features,
            }
        }
        Err(e) => {
            let (status, detail, advice) = match e {
                libc::ENOSYS => (
                    Status::Missing,
                    format!(
                        "landlock_create_ruleset fails with ENOSYS: {}",
                        enosys_means(id, "the kernel is built without Landlock")
                    ),
                    format!(
                        "use a kernel built with CONFIG_SECURITY_LANDLOCK=y (Linux 5.13+) and boot it with {boot_lsm}; {policy_note}"
                    ),
                ),
                libc::EOPNOTSUPP => (
                    Status::Missing,
                    "landlock_create_ruleset fails with EOPNOTSUPP: Landlock is built in but not enabled at boot"
                        .to_string(),
                    format!("boot with {boot_lsm} (kernel command line); {policy_note}"),
                ),
                other => (
                    Status::Unknown,
                    format!(
                        "landlock_create_ruleset fails with {}, which does not say whether Landlock exists{}",
                        errno_text(other),
                        filter_note(id)
                    ),
                    if id.seccomp_mode == Some(2) {
                        FILTER_ADVICE.to_string()
                    } else {
                        format!("check the kernel log (dmesg | grep landlock); if Landlock is off, boot with {boot_lsm}")
                    },
                ),
            };
            let (_, unavailable_features) = landlock_features(0);
            Landlock {
                status,
                detail: format!("{detail}; {lsm_note}"),
                advice: Some(advice),
                abi: None,
                errno: Some(errno_name(e)),
                lsm_list,
                lsm_list_source,
                in_lsm_list,
                features: Vec::new(),
                unavailable_features,
            }
        }
    }
}

// ---- seccomp -----------------------------------------------------------

/// seccomp(2) operation SECCOMP_GET_ACTION_AVAIL.
const SECCOMP_GET_ACTION_AVAIL: c_long = 2;

/// The seccomp actions, by name and SECCOMP_RET_* value.
const SECCOMP_ACTIONS: [(&str, u32); 8] = [
    ("kill_process", 0x8000_0000),
    ("kill_thread", 0),
    ("trap", 0x0003_0000),
    ("errno", 0x0005_0000),
    ("user_notif", 0x7fc0_0000),
    ("trace", 0x7ff0_0000),
    ("log", 0x7ffc_0000),
    ("allow", 0x7fff_0000),
];

/// SECCOMP_GET_ACTION_AVAIL for one action.
fn seccomp_action(action: u32) -> Result<(), i32> {
    // SAFETY: the kernel reads one u32 from &action.
    sys_result(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    })
    .map(drop)
}

fn probe_seccomp(id: &Identity) -> Seccomp {
    let mut answers: Vec<(&str, Option<bool>, Option<i32>)> = Vec::new();
    for (name, value) in SECCOMP_ACTIONS {
        let (avail, err) = match seccomp_action(value) {
            Ok(()) => (Some(true), None),
            Err(libc::EOPNOTSUPP) => (Some(false), None),
            Err(libc::ENOSYS) => (Some(false), Some(libc::ENOSYS)),
            Err(e) => (None, Some(e)),
        };
        answers.push((name, avail, err));
    }
    let get = |n: &str| answers.iter().find(|a| a.0 == n).and_then(|a| a.1);
    let actions = SeccompActions {
        kill_process: get("kill_process"),
        kill_thread: get("kill_thread"),
        trap: get("trap"),
        errno: get("errno"),
        user_notif: get("user_notif"),
        trace: get("trace"),
        log: get("log"),
        allow: get("allow"),
    };
    let pidfd_getfd = probe_pidfd_getfd(id);
    let reports = match crate::plan::user_notif_unavailable() {
        _ if actions.user_notif.is_none() || pidfd_getfd.status == Status::Unknown => Probe::new(
            Status::Unknown,
            "cannot tell: the user notification or pidfd_getfd probe gave no answer",
            (id.seccomp_mode == Some(2)).then(|| FILTER_ADVICE.to_string()),
        ),
        None => Probe::new(
            Status::Available,
            "seccomp user notification and pidfd_getfd work: \"report\": true records refused calls",
            None,
        ),
        Some(why) => Probe::new(
            Status::Missing,
            format!("{why}; policies with \"report\": true run, but refusals are not reported"),
            Some("seccomp reports need Linux 5.6 or later".to_string()),
        ),
    };
    let offered: Vec<&str> = answers
        .iter()
        .filter(|a| a.1 == Some(true))
        .map(|a| a.0)
        .collect();
    let lacking: Vec<&str> = answers
        .iter()
        .filter(|a| a.1 == Some(false))
        .map(|a| a.0)
        .collect();
    let unknown: Vec<String> = answers
        .iter()
        .filter(|a| a.1.is_none())
        .map(|a| format!("{} ({})", a.0, a.2.map(errno_name).unwrap_or_default()))
        .collect();
    let no_seccomp = answers.iter().all(|a| a.2 == Some(libc::ENOSYS));
    let has_status_line = id.seccomp_mode.is_some();
    let needed = [actions.allow, actions.errno, actions.kill_process];
    let needed_missing = needed.contains(&Some(false));
    let needed_unknown = needed.contains(&None);
    let mut detail = String::new();
    if no_seccomp {
        let _ = write!(
            detail,
            "seccomp(2) fails with ENOSYS: {}",
            enosys_means(
                id,
                if has_status_line {
                    "the kernel has seccomp but not the seccomp system call (Linux 3.17)"
                } else {
                    "the kernel is built without seccomp"
                }
            )
        );
    } else {
        let _ = write!(detail, "actions offered: {}", list_or_none(&offered));
        if !lacking.is_empty() {
            let _ = write!(detail, "; not offered: {}", lacking.join(", "));
        }
        if !unknown.is_empty() {
            let _ = write!(detail, "; no answer for: {}", unknown.join(", "));
        }
    }
    if id.seccomp_mode == Some(2) {
        detail.push_str("; cordon itself runs under a seccomp filter (its filters stack on top of it)");
    }
    let (status, advice) = if no_seccomp {
        (
            Status::Missing,
            Some(
                "cordon needs seccomp filters: use a kernel built with CONFIG_SECCOMP_FILTER=y (Linux 4.14 or later)"
                    .to_string(),
            ),
        )
    } else if needed_missing {
        (
            Status::Missing,
            Some(
                "cordon's filters need the allow, errno and kill_process actions (Linux 4.14 or later)"
                    .to_string(),
            ),
        )
    } else if needed_unknown {
        (
            Status::Unknown,
            Some(if id.seccomp_mode == Some(2) {
                FILTER_ADVICE.to_string()
            } else {
                "SECCOMP_GET_ACTION_AVAIL (Linux 4.14) gives no answer: the kernel is probably too old for cordon"
                    .to_string()
            }),
        )
    } else if !lacking.is_empty() || !unknown.is_empty() || reports.status != Status::Available {
        let mut a = Vec::new();
        match reports.status {
            Status::Missing => a.push(
                "seccomp reports need Linux 5.6 or later (user notification and pidfd_getfd)".to_string(),
            ),
            Status::Unknown => {
                a.push("whether seccomp reports work is unknown (see seccomp reports)".to_string())
            }
            Status::Available | Status::Limited => {}
        }
        let policy_actions: Vec<&str> = lacking
            .iter()
            .copied()
            .filter(|n| ["kill_thread", "trap", "log"].contains(n))
            .collect();
        if !policy_actions.is_empty() {
            a.push(format!(
                "a policy whose seccomp section uses {} does not work as written on this kernel",
                policy_actions.join(" or ")
            ));
        }
        if a.is_empty() {
            a.push("a newer kernel offers every action".to_string());
        }
        (Status::Limited, Some(a.join("; ")))
    } else {
        (Status::Available, None)
    };
    Seccomp {
        status,
        detail,
        advice,
        actions,
        pidfd_getfd,
        reports,
    }
}

fn list_or_none(v: &[&str]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// A probe for a system call called with arguments that can only fail:
/// `present` is the errno that proves it exists.
fn syscall_probe(
    id: &Identity,
    call: &str,
    r: Result<c_long, i32>,
    present: i32,
    since: &str,
    need: &str,
) -> Probe {
    match r {
        Err(e) if e == present => Probe::new(
            Status::Available,
            format!("{call} fails with {} as expected: the call exists", errno_name(e)),
            None,
        ),
        Err(libc::ENOSYS) => Probe::new(
            Status::Missing,
            format!(
                "{call} fails with ENOSYS: {}",
                enosys_means(id, "the kernel lacks it")
            ),
            Some(if id.seccomp_mode == Some(2) {
                format!("{need}: use Linux {since} or later, or a container seccomp profile that allows it")
            } else {
                format!("{need}: use Linux {since} or later")
            }),
        ),
        Err(e) => Probe::new(
            Status::Unknown,
            format!(
                "{call} fails with {}, which does not say{}",
                errno_text(e),
                filter_note(id)
            ),
            (id.seccomp_mode == Some(2)).then(|| FILTER_ADVICE.to_string()),
        ),
        Ok(v) => Probe::new(Status::Unknown, format!("{call} unexpectedly returned {v}"), None),
    }
}

fn probe_clone3(id: &Identity) -> Probe {
    // SAFETY: a size of 0 is below CLONE_ARGS_SIZE_VER0, so the kernel
    // rejects the call with EINVAL before it reads the (NULL) arguments;
    // nothing is cloned.
    let r = sys_result(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) });
    syscall_probe(
        id,
        "clone3(NULL, 0)",
        r,
        libc::EINVAL,
        "5.3",
        "cordon starts every sandbox with clone3",
    )
}

fn probe_pidfd_open(id: &Identity) -> Probe {
    // SAFETY: plain integers; pid -1 is invalid, so nothing is opened.
    let r = sys_result(unsafe { libc::syscall(libc::SYS_pidfd_open, -1 as libc::pid_t, 0u32) });
    syscall_probe(
        id,
        "pidfd_open(-1, 0)",
        r,
        libc::EINVAL,
        "5.3",
        "cordon supervises the sandbox through a pidfd",
    )
}

fn probe_pidfd_send_signal(id: &Identity) -> Probe {
    // SAFETY: plain integers and a null siginfo; fd -1 is invalid, so no
    // signal is sent.
    let r = sys_result(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            -1 as c_int,
            0 as c_int,
            std::ptr::null::<u8>(),
            0u32,
        )
    });
    syscall_probe(
        id,
        "pidfd_send_signal(-1, 0, NULL, 0)",
        r,
        libc::EBADF,
        "5.1",
        "cordon signals the sandbox through its pidfd",
    )
}

fn probe_pidfd_getfd(id: &Identity) -> Probe {
    // SAFETY: plain integers; pidfd -1 is invalid, so nothing is duplicated.
    let r = sys_result(unsafe { libc::syscall(libc::SYS_pidfd_getfd, -1 as c_int, 0 as c_int, 0u32) });
    syscall_probe(
        id,
        "pidfd_getfd(-1, 0, 0)",
        r,
        libc::EBADF,
        "5.6",
        "seccomp reports take the notification fd with pidfd_getfd",
    )
}

fn probe_pidfd() -> Probe {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    // SAFETY: plain integers.
    let fd = match sys_result(unsafe { libc::syscall(libc::SYS_pidfd_open, me, 0u32) }) {
        Ok(fd) => fd as c_int,
        Err(e) => {
            let advice = (e == libc::ENOSYS)
                .then(|| "cordon supervises the sandbox through a pidfd: use Linux 5.3 or later".to_string());
            let status = if e == libc::ENOSYS {
                Status::Missing
            } else {
                Status::Unknown
            };
            return Probe::new(
                status,
                format!("pidfd_open on cordon itself fails with {}", errno_text(e)),
                advice,
            );
        }
    };
    // SAFETY: fd is the pidfd just opened; signal 0 only checks that the
    // process exists and may be signalled.
    let sent = sys_result(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd,
            0 as c_int,
            std::ptr::null::<u8>(),
            0u32,
        )
    });
    // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fd) };
    match sent {
        Ok(_) => Probe::new(
            Status::Available,
            "pidfd_open on cordon itself and pidfd_send_signal(pidfd, 0) work",
            None,
        ),
        Err(e) => Probe::new(
            Status::Limited,
            format!(
                "pidfd_open works, but pidfd_send_signal through it fails with {}",
                errno_text(e)
            ),
            Some("cordon signals the sandbox through its pidfd: use Linux 5.3 or later".to_string()),
        ),
    }
}

// ---- namespaces --------------------------------------------------------

/// CLONE_NEWTIME (Linux 5.6; not in the libc crate).
const CLONE_NEWTIME: c_int = 0x80;

/// name, /proc/self/ns entry, unshare flag, kernel option, whether cordon uses it.
const NAMESPACES: [(&str, &str, c_int, &str, bool); 8] = [
    ("user", "user", libc::CLONE_NEWUSER, "CONFIG_USER_NS", true),
    ("mount", "mnt", libc::CLONE_NEWNS, "(always built in)", true),
    ("pid", "pid", libc::CLONE_NEWPID, "CONFIG_PID_NS", true),
    ("net", "net", libc::CLONE_NEWNET, "CONFIG_NET_NS", true),
    ("ipc", "ipc", libc::CLONE_NEWIPC, "CONFIG_IPC_NS", true),
    ("uts", "uts", libc::CLONE_NEWUTS, "CONFIG_UTS_NS", true),
    ("cgroup", "cgroup", libc::CLONE_NEWCGROUP, "CONFIG_CGROUPS", true),
    ("time", "time", CLONE_NEWTIME, "CONFIG_TIME_NS", false),
];

/// The advice for a kind cordon does not use.
const UNUSED_NS: &str = "nothing: cordon does not use this kind";

/// The result slot of a kind the child did not try.
const NOT_TRIED: i32 = -1;

/// In a forked child: unshare a user namespace, then (inside it, or
/// directly when it failed) each other kind on its own. Returns, per kind
/// of [`NAMESPACES`], 0 (worked), an errno, or [`NOT_TRIED`].
fn unshare_test() -> Result<[i32; 8], String> {
    let (rd, wr) = sys::pipe().map_err(|e| format!("pipe: {}", errno_text(e.0)))?;
    let flags: [c_int; 8] = NAMESPACES.map(|n| n.2);
    let pid = match sys::fork_raw() {
        Ok(p) => p,
        Err(e) => {
            // SAFETY: `rd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
            unsafe { sys::close(rd) };
            // SAFETY: `wr` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
            unsafe { sys::close(wr) };
            return Err(format!("fork: {}", errno_text(e.0)));
        }
    };
    if pid == 0 {
        // Child: only system calls from here to _exit (no allocation: the
        // parent may have other threads, whose locks this copy inherited).
        // SAFETY: `rd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
        unsafe { sys::close(rd) };
        let mut res = [NOT_TRIED; 8];
        for (i, flag) in flags.iter().enumerate() {
            // SAFETY: unshare only changes this short-lived child's namespaces.
            let r = unsafe { libc::unshare(*flag) };
            res[i] = if r == 0 { 0 } else { Errno::last().0 };
        }
        let mut buf = [0u8; 32];
        for (chunk, v) in buf.chunks_exact_mut(4).zip(res.iter()) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        let code = if sys::write_all(wr, &buf).is_ok() { 0 } else { 1 };
        sys::exit(code);
    }
    // SAFETY: `wr` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(wr) };
    let mut buf = [0u8; 32];
    let mut got = 0;
    while got < buf.len() {
        match sys::retry(|| sys::read(rd, &mut buf[got..])) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    // SAFETY: `rd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(rd) };
    let mut status: c_int = 0;
    // SAFETY: pid is our child; status is a valid out pointer.
    let w = sys::retry(|| sys_result(unsafe { libc::waitpid(pid, &mut status, 0) } as c_long).map_err(Errno));
    if w.is_err() {
        return Err("waitpid on the test child failed".to_string());
    }
    if libc::WIFSIGNALED(status) {
        return Err(format!(
            "the test child was killed by signal {}{}",
            libc::WTERMSIG(status),
            if libc::WTERMSIG(status) == libc::SIGSYS {
                " (a seccomp filter on cordon)"
            } else {
                ""
            }
        ));
    }
    if got < buf.len() {
        return Err("the test child reported nothing".to_string());
    }
    let mut res = [NOT_TRIED; 8];
    for (v, chunk) in res.iter_mut().zip(buf.chunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(chunk);
        *v = i32::from_ne_bytes(b);
    }
    Ok(res)
}

/// The sysctl advice for user namespaces, worded as cordon's launch hints.
fn userns_sysctl_advice(max: Option<u64>, clone: Option<u64>, apparmor: Option<u64>) -> Vec<String> {
    let mut v = Vec::new();
    if max == Some(0) {
        v.push("user namespaces are disabled: sysctl -w user.max_user_namespaces=15000".to_string());
    }
    if clone == Some(0) {
        v.push(
            "unprivileged user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1"
                .to_string(),
        );
    }
    if apparmor == Some(1) {
        v.push("AppArmor restricts unprivileged user namespaces: add an AppArmor profile for cordon with `userns,` or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".to_string());
    }
    v
}

/// What to do about user namespaces, when they do not work for this user
/// (the check behind cordon's hint when clone3 or the id maps fail).
pub fn userns_advice() -> Option<String> {
    probe_namespaces(&probe_identity()).user.advice
}

/// What to do about cgroups, when limits cannot be enforced from here.
pub fn cgroup_advice() -> Option<String> {
    probe_cgroups(&probe_identity()).advice
}

/// What to do about Landlock, when it is missing or limited.
pub fn landlock_advice() -> Option<String> {
    probe_landlock(&probe_identity()).advice
}

fn probe_namespaces(id: &Identity) -> Namespaces {
    let test = unshare_test();
    let user_result = test.as_ref().ok().map(|r| r[0]);
    let via_userns = user_result == Some(0);
    let mut kinds = Vec::new();
    for (i, &(name, entry, _, config, used)) in NAMESPACES.iter().enumerate() {
        let present = std::fs::symlink_metadata(format!("/proc/self/ns/{entry}")).is_ok();
        let result = test.as_ref().ok().and_then(|r| r.get(i).copied());
        let usable = match result {
            Some(0) => Some(true),
            Some(NOT_TRIED) | None => None,
            Some(_) => Some(false),
        };
        let how = if i == 0 {
            format!("unshare(CLONE_NEW{}) as uid {}", name.to_uppercase(), id.euid)
        } else if via_userns {
            "unshare inside a new user namespace".to_string()
        } else {
            format!("unshare without a user namespace, as uid {}", id.euid)
        };
        let unused = if used { "" } else { " (cordon does not use it)" };
        let (status, detail, advice) = match (present, result) {
            (_, Some(0)) => (Status::Available, format!("{how} works{unused}"), None),
            (false, _) => (
                Status::Missing,
                format!("/proc/self/ns/{entry} does not exist: the kernel lacks {name} namespaces{unused}"),
                Some(if used {
                    format!("use a kernel built with {config}=y")
                } else {
                    UNUSED_NS.to_string()
                }),
            ),
            (true, Some(e)) if e > 0 => {
                (
                    Status::Missing,
                    format!("{how} fails with {}{}{unused}", errno_text(e), filter_note(id)),
                    Some(if !used {
                        UNUSED_NS.to_string()
                    } else if i == 0 {
                        "see the user namespaces line".to_string()
                    } else if !via_userns {
                        "cordon creates it inside a user namespace: make user namespaces usable".to_string()
                    } else {
                        format!("check the kernel configuration ({config}) and any seccomp or LSM policy on cordon")
                    }),
                )
            }
            (true, _) => (
                Status::Unknown,
                match &test {
                    Err(why) => {
                        format!("/proc/self/ns/{entry} exists; the unshare test could not run: {why}")
                    }
                    Ok(_) => format!("/proc/self/ns/{entry} exists; the unshare test did not get to it"),
                },
                None,
            ),
        };
        kinds.push(Namespace {
            name,
            present,
            usable,
            status,
            detail,
            advice,
        });
    }
    let max = read_u64("/proc/sys/user/max_user_namespaces");
    let clone = read_u64("/proc/sys/kernel/unprivileged_userns_clone");
    let apparmor = read_u64("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let mut blocked = Vec::new();
    if max == Some(0) {
        blocked.push("user.max_user_namespaces=0".to_string());
    }
    if clone == Some(0) {
        blocked.push("kernel.unprivileged_userns_clone=0".to_string());
    }
    if apparmor == Some(1) {
        blocked.push("kernel.apparmor_restrict_unprivileged_userns=1".to_string());
    }
    let sysctl_advice = userns_sysctl_advice(max, clone, apparmor);
    let mut sysctls = Vec::new();
    for (name, v) in [
        ("user.max_user_namespaces", max),
        ("kernel.unprivileged_userns_clone", clone),
        ("kernel.apparmor_restrict_unprivileged_userns", apparmor),
    ] {
        if let Some(v) = v {
            sysctls.push(format!("{name}={v}"));
        }
    }
    let sysctl_note = if sysctls.is_empty() {
        String::new()
    } else {
        format!("; sysctls: {}", sysctls.join(", "))
    };
    let usable = user_result.map(|r| r == 0);
    let errno = user_result.filter(|&r| r > 0).map(errno_name);
    let (status, detail, advice) = match (&test, user_result) {
        (Err(why), _) => (
            Status::Unknown,
            format!("the unshare test could not run: {why}{sysctl_note}"),
            None,
        ),
        (Ok(_), Some(0)) => {
            if id.root && !blocked.is_empty() {
                (
                    Status::Limited,
                    format!(
                        "unshare(CLONE_NEWUSER) works for uid {}, but {} blocks unprivileged users{sysctl_note}",
                        id.euid,
                        blocked.join(", ")
                    ),
                    Some(format!("for rootless use: {}", sysctl_advice.join("; "))),
                )
            } else {
                (
                    Status::Available,
                    format!("unshare(CLONE_NEWUSER) works for uid {}{sysctl_note}", id.euid),
                    None,
                )
            }
        }
        (Ok(_), r) => {
            let e = r.unwrap_or(0);
            // Root is held back only by max_user_namespaces=0; others by any blocker.
            let sysctl_applies = if id.root {
                max == Some(0)
            } else {
                !sysctl_advice.is_empty()
            };
            let advice = if sysctl_applies {
                sysctl_advice.join("; ")
            } else {
                match e {
                    libc::ENOSPC => "the user namespace limit is reached: sysctl -w user.max_user_namespaces=15000 (or fewer nested namespaces: at most 32 levels)".to_string(),
                    libc::EINVAL => "the kernel lacks user namespaces: use a kernel built with CONFIG_USER_NS=y".to_string(),
                    _ if id.seccomp_mode == Some(2) => "cordon runs under a seccomp filter (a container?) that may refuse unshare: run it with a profile that allows user namespaces".to_string(),
                    _ => "check that this kernel supports the namespaces the policy asks for, and any LSM policy (AppArmor, SELinux) that applies to cordon".to_string(),
                }
            };
            (
                Status::Missing,
                format!(
                    "unshare(CLONE_NEWUSER) fails with {} for uid {}{}{sysctl_note}",
                    errno_text(e),
                    id.euid,
                    filter_note(id)
                ),
                Some(advice),
            )
        }
    };
    Namespaces {
        kinds,
        user: UserNamespaces {
            status,
            detail,
            advice,
            usable,
            tested_as_uid: id.euid,
            errno,
            max_user_namespaces: max,
            unprivileged_userns_clone: clone,
            apparmor_restrict_unprivileged_userns: apparmor,
            blocked_for_unprivileged_by: blocked,
        },
    }
}

// ---- cgroups -----------------------------------------------------------

/// cgroup v1 controllers (anything else in a v1 mount's options is a flag).
const V1_CONTROLLERS: [&str; 15] = [
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "io",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The controllers cordon limits with.
const LIMIT_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mounts of a `/proc/self/mountinfo`, in mount order; a later
/// mount on the same mount point replaces an earlier one.
pub(crate) fn parse_mountinfo_cgroups(mountinfo: &str) -> Vec<CgroupMount> {
    let mut out: Vec<CgroupMount> = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 3 {
            continue;
        }
        let version = match fields[sep + 1] {
            "cgroup2" => CgroupVersion::V2,
            "cgroup" => CgroupVersion::V1,
            _ => continue,
        };
        let root = unescape_mountinfo(fields[3]);
        let mount_point = unescape_mountinfo(fields[4]);
        let mount_opts: Vec<&str> = fields[5].split(',').collect();
        let super_opts: Vec<&str> = fields
            .get(sep + 3)
            .map(|s| s.split(',').collect())
            .unwrap_or_default();
        let read_only = mount_opts.contains(&"ro") || super_opts.contains(&"ro");
        let (controllers, name) = match version {
            CgroupVersion::V2 => (Vec::new(), None),
            CgroupVersion::V1 => (
                super_opts
                    .iter()
                    .filter(|o| V1_CONTROLLERS.contains(o))
                    .map(|o| o.to_string())
                    .collect(),
                super_opts
                    .iter()
                    .find_map(|o| o.strip_prefix("name="))
                    .map(str::to_string),
            ),
        };
        let m = CgroupMount {
            version,
            mount_point,
            root,
            controllers,
            name,
            read_only,
        };
        out.retain(|o| o.mount_point != m.mount_point);
        out.push(m);
    }
    out
}

/// The layout the mounts make.
fn cgroup_layout(mounts: &[CgroupMount]) -> CgroupLayout {
    let v2 = mounts.iter().any(|m| m.version == CgroupVersion::V2);
    let v1_controllers = mounts
        .iter()
        .any(|m| m.version == CgroupVersion::V1 && !m.controllers.is_empty());
    let v1_any = mounts.iter().any(|m| m.version == CgroupVersion::V1);
    match (v2, v1_controllers, v1_any) {
        (true, true, _) => CgroupLayout::Hybrid,
        (true, false, _) => CgroupLayout::V2,
        (false, _, true) => CgroupLayout::V1,
        (false, _, false) => CgroupLayout::None,
    }
}

/// Parse `/proc/self/cgroup` (`id:controllers:path` lines).
pub(crate) fn parse_proc_cgroup(s: &str) -> Vec<CgroupMembership> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let hierarchy_id = it.next()?.trim().parse().ok()?;
            let controllers = it
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            let path = it.next()?.to_string();
            Some(CgroupMembership {
                hierarchy_id,
                controllers,
                path,
            })
        })
        .collect()
}

/// Parse a `cgroup.controllers` or `cgroup.subtree_control` file.
fn parse_controllers(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// The directory of cgroup `path` under a mount of the hierarchy, or None
/// when the cgroup lies outside the mounted subtree.
fn cgroup_dir(m: &CgroupMount, path: &str) -> Option<String> {
    let rel = if m.root == "/" {
        path
    } else if path == m.root {
        ""
    } else {
        path.strip_prefix(m.root.as_str())
            .filter(|r| r.starts_with('/'))?
    };
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    let rel = rel.trim_end_matches('/');
    Some(format!("{}{}", m.mount_point.trim_end_matches('/'), rel))
}

/// The parent of a cgroup directory, unless it is the mount point itself.
fn parent_dir(dir: &str, mount_point: &str) -> Option<String> {
    if dir.trim_end_matches('/') == mount_point.trim_end_matches('/') {
        return None;
    }
    let p = std::path::Path::new(dir).parent()?;
    Some(p.to_string_lossy().into_owned())
}

/// Whether this user may write `path`: `Some(true)`, `Some(false)` (with
/// the errno), or `None` when that cannot be told (e.g. no such file).
fn writable(path: &str) -> (Option<bool>, Option<i32>) {
    let Ok(c) = std::ffi::CString::new(path) else {
        return (None, None);
    };
    // SAFETY: c is a valid NUL-terminated path; faccessat only checks.
    let r = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) };
    if r == 0 {
        return (Some(true), None);
    }
    let e = Errno::last().0;
    match e {
        libc::EACCES | libc::EPERM | libc::EROFS => (Some(false), Some(e)),
        _ => (None, Some(e)),
    }
}

fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn read_controllers(path: &str) -> Option<Vec<String>> {
    std::fs::read_to_string(path).ok().map(|s| parse_controllers(&s))
}

fn probe_cgroup_v2(mounts: &[CgroupMount], membership: &[CgroupMembership]) -> Option<CgroupV2> {
    let v2s: Vec<&CgroupMount> = mounts.iter().filter(|m| m.version == CgroupVersion::V2).collect();
    let m = v2s
        .iter()
        .find(|m| m.mount_point == "/sys/fs/cgroup")
        .or_else(|| v2s.iter().find(|m| m.mount_point == "/sys/fs/cgroup/unified"))
        .or_else(|| v2s.first())?;
    let path = membership
        .iter()
        .find(|c| c.hierarchy_id == 0 && c.controllers.is_empty())
        .map(|c| c.path.clone())
        .unwrap_or_else(|| "/".to_string());
    let directory = cgroup_dir(m, &path);
    let root_controllers = read_controllers(&format!("{}/cgroup.controllers", m.mount_point));
    let parent = directory.as_deref().and_then(|d| parent_dir(d, &m.mount_point));
    let parent_controllers = parent
        .as_deref()
        .and_then(|p| read_controllers(&format!("{p}/cgroup.controllers")));
    let (controllers, subtree_control, owner_uid, dw, pw, sw) = match &directory {
        Some(d) => (
            read_controllers(&format!("{d}/cgroup.controllers")),
            read_controllers(&format!("{d}/cgroup.subtree_control")),
            std::fs::metadata(d).ok().map(|md| md.uid()),
            writable(d).0,
            writable(&format!("{d}/cgroup.procs")).0,
            writable(&format!("{d}/cgroup.subtree_control")).0,
        ),
        None => (None, None, None, None, None, None),
    };
    Some(CgroupV2 {
        mount_point: m.mount_point.clone(),
        path,
        directory,
        root_controllers,
        parent_controllers,
        controllers,
        subtree_control,
        owner_uid,
        directory_writable: dw,
        procs_writable: pw,
        subtree_control_writable: sw,
        read_only: m.read_only,
    })
}

/// Why a controller cannot be used, and so what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CgroupHint {
    /// The hierarchy at this mount point is read-only.
    ReadOnly(String),
    /// On cgroup v1, not writable by a non-root user.
    V1NotDelegated,
    /// No mounted hierarchy has it.
    NoHierarchy,
    /// cgroup v2 (mounted here) does not offer it and no v1 hierarchy has it.
    NotInV2(String),
    /// cgroup v2 does not enable it for cordon's cgroup (parent directory).
    V2NotEnabled(String),
    /// cordon's v2 cgroup (this one) is not writable by this uid.
    V2NotDelegated(String, u32),
}

impl CgroupHint {
    /// The advice for the controllers `names` that share this hint.
    fn advice(&self, names: &[&str]) -> String {
        let list = names.join(", ");
        let is = if names.len() == 1 { "is" } else { "are" };
        const DELEGATE: &str = "systemd-run --user --scope -p Delegate=yes cordon run ...";
        match self {
            CgroupHint::ReadOnly(mp) => format!("the cgroup filesystem at {mp} is mounted read-only, as in most containers: give the container a writable, delegated cgroup (cgroup v2 with its own cgroup namespace) or run cordon on the host"),
            CgroupHint::V1NotDelegated => format!("{list} {is} on cgroup v1 here, which is not delegated to unprivileged users: run cordon as root, or boot with systemd.unified_cgroup_hierarchy=1 and run cordon in a delegated cgroup v2 subtree ({DELEGATE})"),
            CgroupHint::NoHierarchy => format!("no mounted cgroup hierarchy has {list}: mount cgroup2 at /sys/fs/cgroup (boot with systemd.unified_cgroup_hierarchy=1)"),
            CgroupHint::NotInV2(mp) => format!("{list} {is} in neither a mounted v1 hierarchy nor cgroup v2 at {mp}: boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2 only), or mount the v1 hierarchy"),
            CgroupHint::V2NotEnabled(parent) => {
                let plus: Vec<String> = names.iter().map(|n| format!("+{n}")).collect();
                format!("enable {list} for cordon's cgroup: echo '{}' > {parent}/cgroup.subtree_control (as root), or start cordon with {DELEGATE}", plus.join(" "))
            }
            CgroupHint::V2NotDelegated(dir, uid) => format!("cordon's cgroup {dir} is not delegated to uid {uid}: start cordon in a delegated subtree: {DELEGATE}"),
        }
    }
}

/// Where `name` lives and whether cordon can use it.
fn probe_controller(
    name: &'static str,
    mounts: &[CgroupMount],
    membership: &[CgroupMembership],
    v2: Option<&CgroupV2>,
    id: &Identity,
) -> (CgroupController, Vec<CgroupHint>) {
    let mut advice = Vec::new();
    let who = format!("uid {}", id.euid);
    if let Some(m) = mounts
        .iter()
        .find(|m| m.version == CgroupVersion::V1 && m.controllers.iter().any(|c| c == name))
    {
        let path = membership
            .iter()
            .find(|c| c.hierarchy_id != 0 && c.controllers.iter().any(|c| c == name))
            .map(|c| c.path.clone());
        let directory = path.as_deref().and_then(|p| cgroup_dir(m, p));
        let (w, detail, status) = match &directory {
            None => (
                None,
                format!(
                    "cgroup v1 at {}; cordon's cgroup {} is not visible under it",
                    m.mount_point,
                    path.as_deref().unwrap_or("(not in /proc/self/cgroup)")
                ),
                Status::Unknown,
            ),
            Some(d) => {
                let (dw, de) = writable(d);
                let (pw, _) = writable(&format!("{d}/cgroup.procs"));
                let w = and(dw, pw);
                let how = match w {
                    Some(true) => format!("writable by {who}"),
                    Some(false) if de == Some(libc::EROFS) || m.read_only => "read-only mount".to_string(),
                    Some(false) => format!("not writable by {who}"),
                    None => "writability unknown".to_string(),
                };
                let status = match w {
                    Some(true) => Status::Available,
                    Some(false) => Status::Missing,
                    None => Status::Unknown,
                };
                (w, format!("cgroup v1, cordon's cgroup {d}: {how}"), status)
            }
        };
        if w == Some(false) {
            if m.read_only {
                advice.push(CgroupHint::ReadOnly(m.mount_point.clone()));
            } else if !id.root {
                advice.push(CgroupHint::V1NotDelegated);
            }
        }
        return (
            CgroupController {
                name,
                version: Some(CgroupVersion::V1),
                directory,
                enabled: Some(true),
                writable: w,
                status,
                detail,
            },
            advice,
        );
    }
    let Some(v2) = v2 else {
        advice.push(CgroupHint::NoHierarchy);
        return (
            CgroupController {
                name,
                version: None,
                directory: None,
                enabled: None,
                writable: None,
                status: Status::Missing,
                detail: "no mounted hierarchy has it".to_string(),
            },
            advice,
        );
    };
    let in_root = v2.root_controllers.as_ref().map(|c| c.iter().any(|x| x == name));
    if in_root == Some(false) {
        advice.push(CgroupHint::NotInV2(v2.mount_point.clone()));
        return (
            CgroupController {
                name,
                version: None,
                directory: None,
                enabled: Some(false),
                writable: None,
                status: Status::Missing,
                detail: format!(
                    "not offered by cgroup v2 at {} (its root has: {}) nor mounted as v1",
                    v2.mount_point,
                    v2.root_controllers
                        .as_ref()
                        .map(|c| c.join(" "))
                        .unwrap_or_default()
                ),
            },
            advice,
        );
    }
    let at_root = v2.path == "/";
    let enabled = if at_root {
        in_root
    } else {
        v2.controllers.as_ref().map(|c| c.iter().any(|x| x == name))
    };
    let w = and(v2.directory_writable, v2.procs_writable);
    let w = if at_root {
        w
    } else {
        and(w, v2.subtree_control_writable)
    };
    let dir = v2.directory.clone();
    let shown = dir.clone().unwrap_or_else(|| v2.path.clone());
    let status = match (enabled, w) {
        (Some(true), Some(true)) => Status::Available,
        (Some(false), _) | (_, Some(false)) => Status::Missing,
        _ => Status::Unknown,
    };
    let mut detail = format!("cgroup v2, cordon's cgroup {shown}");
    match enabled {
        Some(true) => {}
        Some(false) => detail.push_str(": not enabled for it"),
        None => detail.push_str(": enabled controllers unknown"),
    }
    let _ = write!(
        detail,
        "{}",
        match w {
            Some(true) => format!(", writable by {who}"),
            Some(false) if v2.read_only => ", read-only mount".to_string(),
            Some(false) => format!(", not writable by {who}"),
            None => ", writability unknown".to_string(),
        }
    );
    if enabled == Some(false) {
        let parent = dir
            .as_deref()
            .and_then(|d| parent_dir(d, &v2.mount_point))
            .unwrap_or_else(|| "the parent cgroup".to_string());
        advice.push(CgroupHint::V2NotEnabled(parent));
    }
    if w == Some(false) {
        if v2.read_only {
            advice.push(CgroupHint::ReadOnly(v2.mount_point.clone()));
        } else {
            advice.push(CgroupHint::V2NotDelegated(shown.clone(), id.euid));
        }
    }
    (
        CgroupController {
            name,
            version: Some(CgroupVersion::V2),
            directory: dir,
            enabled,
            writable: w,
            status,
            detail,
        },
        advice,
    )
}

fn probe_cgroups(id: &Identity) -> Cgroups {
    let mountinfo = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(s) => s,
        Err(e) => {
            return Cgroups {
                status: Status::Unknown,
                detail: format!("/proc/self/mountinfo cannot be read: {e}"),
                advice: Some("mount /proc".to_string()),
                layout: CgroupLayout::Unknown,
                mounts: Vec::new(),
                membership: Vec::new(),
                v2: None,
                controllers: Vec::new(),
            }
        }
    };
    let mounts = parse_mountinfo_cgroups(&mountinfo);
    let layout = cgroup_layout(&mounts);
    let membership = std::fs::read_to_string("/proc/self/cgroup")
        .map(|s| parse_proc_cgroup(&s))
        .unwrap_or_default();
    if layout == CgroupLayout::None {
        return Cgroups {
            status: Status::Missing,
            detail: "no cgroup filesystem is mounted: policies cannot limit memory, pids or cpu".to_string(),
            advice: Some(
                "mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)".to_string(),
            ),
            layout,
            mounts,
            membership,
            v2: None,
            controllers: Vec::new(),
        };
    }
    let v2 = probe_cgroup_v2(&mounts, &membership);
    let mut controllers = Vec::new();
    // Each hint once, with the controllers it concerns.
    let mut hints: Vec<(CgroupHint, Vec<&str>)> = Vec::new();
    for name in LIMIT_CONTROLLERS {
        let (c, found) = probe_controller(name, &mounts, &membership, v2.as_ref(), id);
        controllers.push(c);
        for h in found {
            match hints.iter_mut().find(|(x, _)| *x == h) {
                Some((_, names)) => names.push(name),
                None => hints.push((h, vec![name])),
            }
        }
    }
    let advice: Vec<String> = hints.iter().map(|(h, names)| h.advice(names)).collect();
    let usable = |n: &str| {
        controllers
            .iter()
            .any(|c| c.name == n && c.status == Status::Available)
    };
    let usable_names: Vec<&str> = controllers
        .iter()
        .filter(|c| c.status == Status::Available)
        .map(|c| c.name)
        .collect();
    let layout_text = match layout {
        CgroupLayout::V1 => "cgroup v1 only".to_string(),
        CgroupLayout::V2 => format!(
            "cgroup v2 at {}",
            v2.as_ref().map(|v| v.mount_point.as_str()).unwrap_or("?")
        ),
        CgroupLayout::Hybrid => format!(
            "hybrid: cgroup v1 controllers plus cgroup v2 at {}",
            v2.as_ref().map(|v| v.mount_point.as_str()).unwrap_or("?")
        ),
        CgroupLayout::None | CgroupLayout::Unknown => "unknown".to_string(),
    };
    let status = if usable("memory") && usable("pids") {
        Status::Available
    } else if controllers.iter().any(|c| c.status == Status::Unknown) && advice.is_empty() {
        Status::Unknown
    } else {
        Status::Limited
    };
    let meaning = if usable_names.is_empty() {
        format!("policies cannot have cgroup limits enforced as uid {}", id.euid)
    } else {
        format!(
            "cgroup limits for {} can be enforced as uid {}",
            usable_names.join(", "),
            id.euid
        )
    };
    Cgroups {
        status,
        detail: format!("{layout_text}; {meaning}"),
        advice: (!advice.is_empty()).then(|| advice.join("; ")),
        layout,
        mounts,
        membership,
        v2,
        controllers,
    }
}

// ---- text --------------------------------------------------------------

/// Width of the label column.
const LABEL: usize = 20;

fn line(out: &mut String, label: &str, status: Status, detail: &str, advice: Option<&str>) {
    let _ = writeln!(out, "{label:<LABEL$} {status:<9} {detail}");
    if let Some(a) = advice {
        let _ = writeln!(out, "{:<LABEL$} {:<9} what to do: {a}", "", "");
    }
}

impl Features {
    /// The human report: one line per item and, for anything missing or
    /// limited, one line saying what to do.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let k = &self.kernel;
        let _ = writeln!(
            o,
            "{:<LABEL$} {} {} {} ({})",
            "kernel", k.sysname, k.release, k.machine, k.version
        );
        let i = &self.identity;
        let _ = writeln!(
            o,
            "{:<LABEL$} uid {} euid {} gid {}{}{}{}",
            "running as",
            i.uid,
            i.euid,
            i.gid,
            if i.root { " (root)" } else { "" },
            match i.initial_user_namespace {
                Some(true) => ", initial user namespace",
                Some(false) => ", inside a user namespace (a container?)",
                None => "",
            },
            match i.seccomp_mode {
                Some(2) => ", under a seccomp filter",
                Some(1) => ", in seccomp strict mode",
                _ => "",
            }
        );

        let l = &self.landlock;
        line(&mut o, "landlock", l.status, &l.detail, l.advice.as_deref());
        let mut by_abi: Vec<(u32, Vec<&str>)> = Vec::new();
        for f in &l.features {
            match by_abi.last_mut() {
                Some((abi, names)) if *abi == f.abi => names.push(f.name),
                _ => by_abi.push((f.abi, vec![f.name])),
            }
        }
        for (i, (abi, names)) in by_abi.iter().enumerate() {
            let label = if i == 0 { "  landlock offers" } else { "" };
            let _ = writeln!(o, "{label:<LABEL$} {:<9} ABI {abi}: {}", "", names.join(", "));
        }
        if !l.unavailable_features.is_empty() && l.abi.is_some() {
            let lack: Vec<String> = l
                .unavailable_features
                .iter()
                .map(|f| format!("{} (ABI {}, Linux {})", f.name, f.abi, f.linux))
                .collect();
            let _ = writeln!(o, "{:<LABEL$} {:<9} {}", "  not in this ABI", "", lack.join(", "));
        }

        let s = &self.seccomp;
        line(&mut o, "seccomp", s.status, &s.detail, s.advice.as_deref());
        line(
            &mut o,
            "  pidfd_getfd",
            s.pidfd_getfd.status,
            &s.pidfd_getfd.detail,
            s.pidfd_getfd.advice.as_deref(),
        );
        line(
            &mut o,
            "  seccomp reports",
            s.reports.status,
            &s.reports.detail,
            s.reports.advice.as_deref(),
        );

        for (label, p) in [
            ("clone3", &self.clone3),
            ("pidfd_open", &self.pidfd_open),
            ("pidfd_send_signal", &self.pidfd_send_signal),
            ("pidfd", &self.pidfd),
        ] {
            line(&mut o, label, p.status, &p.detail, p.advice.as_deref());
        }

        let u = &self.namespaces.user;
        line(
            &mut o,
            "user namespaces",
            u.status,
            &u.detail,
            u.advice.as_deref(),
        );
        for n in &self.namespaces.kinds {
            line(
                &mut o,
                &format!("  {} namespace", n.name),
                n.status,
                &n.detail,
                n.advice.as_deref(),
            );
        }

        let c = &self.cgroups;
        line(&mut o, "cgroups", c.status, &c.detail, c.advice.as_deref());
        for ctl in &c.controllers {
            line(&mut o, &format!("  {}", ctl.name), ctl.status, &ctl.detail, None);
        }
        if let Some(v2) = &c.v2 {
            let list = |l: &Option<Vec<String>>| match l {
                Some(v) if v.is_empty() => "none".to_string(),
                Some(v) => v.join(" "),
                None => "unknown".to_string(),
            };
            let _ = writeln!(
                o,
                "{:<LABEL$} {:<9} {} (cordon's cgroup {}): root controllers {}; cordon's cgroup has {}, enables for children {}{}",
                "  cgroup v2",
                "",
                v2.mount_point,
                v2.path,
                list(&v2.root_controllers),
                list(&v2.controllers),
                list(&v2.subtree_control),
                if v2.read_only { "; read-only mount" } else { "" }
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's shape: cgroup v1 controllers under a tmpfs at
    /// /sys/fs/cgroup, cgroup2 at /sys/fs/cgroup/unified.
    const HYBRID: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
23 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd machine on cgroup v2 only.
    const V2: &str = "\
24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
25 24 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    /// An older systemd machine on cgroup v1 only (cpu,cpuacct co-mounted).
    const V1: &str = "\
25 24 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 26 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
29 26 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
30 26 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
";

    /// A Docker container: cgroup2 read-only, only its own subtree visible.
    const CONTAINER: &str = "\
600 500 0:50 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
605 600 0:55 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
606 605 0:30 /docker/abc /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup ro,nsdelegate
";

    #[test]
    fn layout_hybrid() {
        let m = parse_mountinfo_cgroups(HYBRID);
        assert_eq!(cgroup_layout(&m), CgroupLayout::Hybrid);
        assert_eq!(m.len(), 10);
        let mem = m
            .iter()
            .find(|x| x.mount_point == "/sys/fs/cgroup/memory")
            .expect("memory");
        assert_eq!(mem.version, CgroupVersion::V1);
        assert_eq!(mem.controllers, ["memory"]);
        assert_eq!(mem.root, "/");
        assert!(!mem.read_only);
        let sd = m
            .iter()
            .find(|x| x.mount_point == "/sys/fs/cgroup/systemd")
            .expect("systemd");
        assert!(sd.controllers.is_empty());
        assert_eq!(sd.name.as_deref(), Some("systemd"));
        let v2 = m
            .iter()
            .find(|x| x.version == CgroupVersion::V2)
            .expect("cgroup2");
        assert_eq!(v2.mount_point, "/sys/fs/cgroup/unified");
    }

    #[test]
    fn layout_v2() {
        let m = parse_mountinfo_cgroups(V2);
        assert_eq!(cgroup_layout(&m), CgroupLayout::V2);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mount_point, "/sys/fs/cgroup");
        assert!(m[0].controllers.is_empty());
    }

    #[test]
    fn layout_v1() {
        let m = parse_mountinfo_cgroups(V1);
        assert_eq!(cgroup_layout(&m), CgroupLayout::V1);
        let cpu = m
            .iter()
            .find(|x| x.mount_point == "/sys/fs/cgroup/cpu,cpuacct")
            .expect("cpu");
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        let sd = m.iter().find(|x| x.name.is_some()).expect("named");
        assert_eq!(sd.name.as_deref(), Some("systemd"));
        assert!(
            sd.controllers.is_empty(),
            "xattr and release_agent are not controllers"
        );
    }

    #[test]
    fn layout_v2_with_named_v1_is_v2() {
        let s =
            format!("{V2}40 25 0:40 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n");
        assert_eq!(cgroup_layout(&parse_mountinfo_cgroups(&s)), CgroupLayout::V2);
    }

    #[test]
    fn layout_none_and_container() {
        assert_eq!(
            cgroup_layout(&parse_mountinfo_cgroups("22 1 0:21 / / rw - ext4 /dev/vda rw\n")),
            CgroupLayout::None
        );
        let m = parse_mountinfo_cgroups(CONTAINER);
        assert_eq!(cgroup_layout(&m), CgroupLayout::V2);
        assert!(m[0].read_only);
        assert_eq!(m[0].root, "/docker/abc");
        assert_eq!(
            cgroup_dir(&m[0], "/docker/abc/sub").as_deref(),
            Some("/sys/fs/cgroup/sub")
        );
        assert_eq!(
            cgroup_dir(&m[0], "/docker/abc").as_deref(),
            Some("/sys/fs/cgroup")
        );
        assert_eq!(cgroup_dir(&m[0], "/other"), None);
        assert_eq!(cgroup_dir(&m[0], "/docker/abcdef"), None);
    }

    #[test]
    fn mountinfo_escapes_and_overmounts() {
        let s = "\
1 0 0:1 / /sys/fs/cgroup/my\\040dir rw - cgroup2 cgroup2 rw
2 0 0:2 / /sys/fs/cgroup/x rw - cgroup cgroup rw,memory
3 0 0:3 / /sys/fs/cgroup/x ro - cgroup cgroup ro,pids
bad line
4 0 0:4 / /short - cgroup2
";
        let m = parse_mountinfo_cgroups(s);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].mount_point, "/sys/fs/cgroup/my dir");
        assert_eq!(m[1].controllers, ["pids"]);
        assert!(m[1].read_only);
        assert_eq!(unescape_mountinfo("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape_mountinfo("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn cgroup_dirs() {
        let m = parse_mountinfo_cgroups(HYBRID);
        let mem = m
            .iter()
            .find(|x| x.mount_point == "/sys/fs/cgroup/memory")
            .expect("memory");
        assert_eq!(
            cgroup_dir(mem, "/process_api/05e0").as_deref(),
            Some("/sys/fs/cgroup/memory/process_api/05e0")
        );
        assert_eq!(cgroup_dir(mem, "/").as_deref(), Some("/sys/fs/cgroup/memory"));
        assert_eq!(cgroup_dir(mem, "/../x"), None);
        assert_eq!(
            parent_dir("/sys/fs/cgroup/memory/a/b", "/sys/fs/cgroup/memory").as_deref(),
            Some("/sys/fs/cgroup/memory/a")
        );
        assert_eq!(parent_dir("/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory"), None);
    }

    #[test]
    fn proc_cgroup() {
        let s = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/05e0141ab8be6d35fd22353e1427e880
2:cpu,cpuacct:/user.slice
0::/user.slice/user-1000.slice/session-2.scope
junk
";
        let c = parse_proc_cgroup(s);
        assert_eq!(c.len(), 5);
        assert_eq!(c[0].controllers, ["name=systemd"]);
        assert_eq!(c[2].hierarchy_id, 4);
        assert_eq!(c[2].path, "/process_api/05e0141ab8be6d35fd22353e1427e880");
        assert_eq!(c[3].controllers, ["cpu", "cpuacct"]);
        assert_eq!(c[4].hierarchy_id, 0);
        assert!(c[4].controllers.is_empty());
        assert_eq!(c[4].path, "/user.slice/user-1000.slice/session-2.scope");
        // A path with a colon stays whole.
        assert_eq!(parse_proc_cgroup("0::/a:b\n")[0].path, "/a:b");
        assert_eq!(
            parse_controllers("cpuset cpu io memory pids\n"),
            ["cpuset", "cpu", "io", "memory", "pids"]
        );
        assert!(parse_controllers("\n").is_empty());
    }

    #[test]
    fn lsm_lists() {
        assert_eq!(
            parse_lsm_list("lockdown,capability,landlock,yama,apparmor,bpf"),
            ["lockdown", "capability", "landlock", "yama", "apparmor", "bpf"]
        );
        assert_eq!(parse_lsm_list("capability,selinux\n"), ["capability", "selinux"]);
        assert!(parse_lsm_list("").is_empty());
        assert_eq!(lsm_id_name(110), "landlock");
        assert_eq!(lsm_id_name(999), "lsm_id_999");
    }

    #[test]
    fn landlock_abi_tables() {
        let (have, lack) = landlock_features(1);
        assert_eq!(have.len(), 13);
        assert!(have
            .iter()
            .all(|f| f.abi == 1 && f.name.starts_with("access_fs_")));
        assert_eq!(lack.first().map(|f| f.name), Some("access_fs_refer"));
        let (have, lack) = landlock_features(7);
        assert!(have
            .iter()
            .any(|f| f.name == "access_net_connect_tcp" && f.abi == 4));
        assert!(have.iter().any(|f| f.name == "scope_signal" && f.abi == 6));
        assert!(have
            .iter()
            .any(|f| f.name == "restrict_self_log_subdomains_off" && f.linux == "6.15"));
        assert_eq!(
            lack.iter().map(|f| f.name).collect::<Vec<_>>(),
            ["restrict_self_tsync"]
        );
        let (have, lack) = landlock_features(LANDLOCK_MAX_KNOWN_ABI);
        assert_eq!(have.len(), 24);
        assert!(lack.is_empty());
        let (have, lack) = landlock_features(0);
        assert!(have.is_empty());
        assert_eq!(lack.len(), 24);
    }

    #[test]
    fn identity_map_and_status() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("0 1000 1\n"));
        assert!(!is_identity_map(""));
        let st = "Name:\tcordon\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        assert_eq!(status_field(st, "Seccomp").as_deref(), Some("2"));
        assert_eq!(status_field(st, "Nope"), None);
    }

    #[test]
    fn userns_advice_wording() {
        assert!(userns_sysctl_advice(Some(15000), None, None).is_empty());
        let a = userns_sysctl_advice(Some(0), Some(0), Some(1));
        assert_eq!(a.len(), 3);
        assert!(a[0].contains("sysctl -w user.max_user_namespaces=15000"));
        assert!(a[1].contains("sysctl -w kernel.unprivileged_userns_clone=1"));
        assert!(a[2].contains("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"));
    }

    #[test]
    fn text_has_a_line_per_item_and_advice_for_missing() {
        let mut f = probe();
        let t = f.to_text();
        for label in [
            "kernel",
            "running as",
            "landlock",
            "seccomp",
            "pidfd_getfd",
            "seccomp reports",
            "clone3",
            "pidfd_open",
            "pidfd_send_signal",
            "pidfd ",
            "user namespaces",
            "user namespace",
            "time namespace",
            "cgroups",
            "memory",
            "pids",
        ] {
            assert!(
                t.lines().any(|l| l.trim_start().starts_with(label)),
                "no {label:?} line in\n{t}"
            );
        }
        f.clone3 = Probe::new(Status::Missing, "test", Some("upgrade the kernel".to_string()));
        let t = f.to_text();
        let i = t
            .lines()
            .position(|l| l.starts_with("clone3"))
            .expect("clone3 line");
        let next = t.lines().nth(i + 1).expect("advice line");
        assert!(next.contains("what to do: upgrade the kernel"), "{next}");
    }
}
