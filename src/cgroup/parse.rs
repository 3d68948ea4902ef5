//! Parsers for the cgroup layout: the cgroup mounts in
//! `/proc/self/mountinfo` and the membership lines of `/proc/self/cgroup`.
//! Used by the cgroup layer at launch and by its probe.

use serde::Serialize;

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

/// cgroup v1 controllers (anything else in a v1 mount's options is a flag).
pub(crate) const V1_CONTROLLERS: [&str; 15] = [
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

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
pub(crate) fn unescape_mountinfo(s: &str) -> String {
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
pub(crate) fn cgroup_layout(mounts: &[CgroupMount]) -> CgroupLayout {
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
pub(crate) fn parse_controllers(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}
