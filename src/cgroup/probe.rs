//! The cgroup layer's probe for `cordon features`: the layout, cordon's own
//! cgroup, each limit controller and whether this user can use it.

use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

use super::parse::{
    cgroup_dir, cgroup_layout, parent_dir, parse_controllers, parse_mountinfo_cgroups, parse_proc_cgroup,
    CgroupLayout, CgroupMembership, CgroupMount, CgroupVersion,
};
use crate::probe::{probe_identity, Identity, Status};
use crate::sys::Errno;

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

/// The cgroup layer's report for `cordon features`, as the current user.
pub fn probe() -> Cgroups {
    probe_cgroups(&probe_identity())
}

/// What to do about cgroups, when limits cannot be enforced from here.
pub fn cgroup_advice() -> Option<String> {
    probe().advice
}

/// The controllers cordon limits with.
pub(crate) const LIMIT_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// Whether this user may write `path`: `Some(true)`, `Some(false)` (with
/// the errno), or `None` when that cannot be told (e.g. no such file).
pub(crate) fn writable(path: &str) -> (Option<bool>, Option<i32>) {
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

pub(crate) fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

pub(crate) fn read_controllers(path: &str) -> Option<Vec<String>> {
    std::fs::read_to_string(path).ok().map(|s| parse_controllers(&s))
}

pub(crate) fn probe_cgroup_v2(mounts: &[CgroupMount], membership: &[CgroupMembership]) -> Option<CgroupV2> {
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
pub(crate) enum CgroupHint {
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
pub(crate) fn probe_controller(
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

pub(crate) fn probe_cgroups(id: &Identity) -> Cgroups {
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
