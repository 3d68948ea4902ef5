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

use serde::Serialize;

pub use crate::cgroup::parse::{CgroupLayout, CgroupMembership, CgroupMount, CgroupVersion};
pub use crate::cgroup::probe::{cgroup_advice, CgroupController, CgroupV2, Cgroups};
pub use crate::isolate::probe::{userns_advice, Namespace, Namespaces, UserNamespaces};
pub use crate::landlock::probe::{landlock_advice, Landlock, LandlockFeature};
pub use crate::probe::{Identity, Probe, Status};
pub use crate::seccomp::probe::{Seccomp, SeccompActions};

use crate::cgroup::probe::probe_cgroups;
use crate::isolate::probe::{
    probe_clone3, probe_namespaces, probe_pidfd, probe_pidfd_open, probe_pidfd_send_signal,
};
use crate::landlock::probe::probe_landlock;
use crate::probe::{probe_identity, read_trimmed};
use crate::seccomp::probe::probe_seccomp;

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

/// The text rendering is the command line's (`src/cli/features.rs`); the
/// library includes the same file for [`Features::to_text`].
#[path = "cli/features.rs"]
mod text;

impl Features {
    /// The human report (what `cordon features` prints): one line per item
    /// and, for anything missing or limited, one line saying what to do.
    pub fn to_text(&self) -> String {
        text::render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::parse::*;
    use crate::cgroup::probe::*;
    use crate::isolate::probe::*;
    use crate::landlock::probe::*;
    use crate::probe::*;

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
