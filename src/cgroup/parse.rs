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

/// The directory of cgroup `path` under a mount of the hierarchy, or None
/// when the cgroup lies outside the mounted subtree.
pub(crate) fn cgroup_dir(m: &CgroupMount, path: &str) -> Option<String> {
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
pub(crate) fn parent_dir(dir: &str, mount_point: &str) -> Option<String> {
    if dir.trim_end_matches('/') == mount_point.trim_end_matches('/') {
        return None;
    }
    let p = std::path::Path::new(dir).parent()?;
    Some(p.to_string_lossy().into_owned())
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
}
