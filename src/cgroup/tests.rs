use super::*;
use std::path::PathBuf;

fn limits(json: &str) -> CgLimits {
    let l: Limits = serde_json::from_str(json).unwrap();
    CgLimits::from_policy(&l)
}

/// A temp dir standing in for a cgroup directory: the files a kernel would
/// offer exist, empty.
struct Fixture(PathBuf);
impl Fixture {
    fn new(tag: &str, files: &[&str]) -> Fixture {
        let p = std::env::temp_dir().join(format!("cordon-cg-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        for f in files {
            std::fs::write(p.join(f), "").unwrap();
        }
        Fixture(p)
    }
    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.0.join(f)).unwrap()
    }
}
impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn v2_writers_write_what_the_kernel_expects() {
    let l = limits(r#"{"memory": "512M", "memory_swap": "0", "pids": 64, "cpus": 1.5}"#);
    let fx = Fixture::new("v2", &["memory.max", "memory.swap.max", "pids.max", "cpu.max"]);
    for (f, v) in v2_writes(&l) {
        write(&fx.0, f, &v).unwrap();
    }
    assert_eq!(fx.read("memory.max"), "536870912");
    assert_eq!(fx.read("memory.swap.max"), "0");
    assert_eq!(fx.read("pids.max"), "64");
    assert_eq!(fx.read("cpu.max"), "150000 100000");
    // No swap limit: swap is left to the parent ("max").
    let l = limits(r#"{"memory": "64M"}"#);
    assert!(v2_writes(&l).contains(&("memory.swap.max", "max".to_string())));
    assert_eq!(limits(r#"{"cpus": 0.5}"#).controllers(), vec!["cpu"]);
}

#[test]
fn v1_writers_order_memsw_after_memory() {
    let l = limits(r#"{"memory": "512M", "memory_swap": "128M", "pids": 10, "cpus": 0.25}"#);
    let w = v1_writes(&l, true);
    let files: Vec<&str> = w.iter().map(|(_, f, _)| *f).collect();
    assert_eq!(
        files,
        [
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "pids.max",
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us"
        ]
    );
    assert_eq!(w[1].2, (640u64 << 20).to_string());
    assert_eq!(w[4].2, "25000");
    // Without swap accounting there is no memsw file to write.
    assert!(!v1_writes(&l, false).iter().any(|(_, f, _)| f.contains("memsw")));
}

#[test]
fn write_errors_carry_path_value_and_errno() {
    let e = write(std::path::Path::new("/nonexistent-cordon"), "pids.max", "5").unwrap_err();
    assert_eq!(e.errno, libc::ENOENT);
    let text = e.to_string();
    assert!(
        text.contains("/nonexistent-cordon/pids.max") && text.contains("\"5\""),
        "{text}"
    );
}

#[test]
fn usage_is_read_from_v2_and_v1_files() {
    let fx = Fixture::new("usage2", &[]);
    std::fs::write(fx.0.join("memory.peak"), "1048576\n").unwrap();
    std::fs::write(
        fx.0.join("memory.events"),
        "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    std::fs::write(fx.0.join("pids.events"), "max 3\n").unwrap();
    std::fs::write(
        fx.0.join("cpu.stat"),
        "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
    )
    .unwrap();
    let u = stats::v2(&fx.0);
    assert_eq!(
        u,
        Usage {
            memory_peak_bytes: Some(1 << 20),
            oom_kills: Some(1),
            pids_peak: None,
            pids_limit_hits: Some(3),
            cpu_usage_ms: Some(2500)
        }
    );
    let mem = Fixture::new("usage1m", &[]);
    std::fs::write(mem.0.join("memory.max_usage_in_bytes"), "2097152\n").unwrap();
    std::fs::write(
        mem.0.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    .unwrap();
    let acct = Fixture::new("usage1c", &[]);
    std::fs::write(acct.0.join("cpuacct.usage"), "1500000000\n").unwrap();
    let u = stats::v1(|c| match c {
        "memory" => Some(mem.0.as_path()),
        "cpuacct" => Some(acct.0.as_path()),
        _ => None,
    });
    assert_eq!(u.memory_peak_bytes, Some(2 << 20));
    assert_eq!(u.oom_kills, Some(2));
    assert_eq!(u.cpu_usage_ms, Some(1500));
    assert_eq!(u.pids_limit_hits, None);
}

const HYBRID_MOUNTINFO: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CGROUP: &str = "8:pids:/\n4:memory:/api/x\n2:cpuacct:/\n1:cpu:/\n0::/\n";

#[test]
fn layout_finds_each_hierarchy_and_our_place_in_it() {
    let l = Layout::from_texts(HYBRID_MOUNTINFO, HYBRID_CGROUP);
    assert_eq!(
        l.v2,
        Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_string()))
    );
    assert_eq!(
        l.v1_for("memory"),
        Some((std::path::Path::new("/sys/fs/cgroup/memory"), "/api/x"))
    );
    assert_eq!(
        l.v1_for("cpuacct").map(|x| x.0),
        Some(std::path::Path::new("/sys/fs/cgroup/cpuacct"))
    );
    let v2 = Layout::from_texts(
        "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/user.slice/a.scope\n",
    );
    assert_eq!(
        v2.v2,
        Some((PathBuf::from("/sys/fs/cgroup"), "/user.slice/a.scope".to_string()))
    );
    assert!(v2.v1.is_empty());
    // A container that sees only its own subtree.
    let c = Layout::from_texts(
        "30 1 0:26 /kube/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/kube/pod1/app\n",
    );
    assert_eq!(c.v2.map(|x| x.1), Some("/app".to_string()));
}

#[test]
fn stale_names_are_recognised_by_pid_and_start_time() {
    let me = std::process::id();
    let start = start_time(me).unwrap();
    assert!(!is_stale(&format!("cordon-{me}-{start}-0")));
    assert!(is_stale(&format!("cordon-{me}-{}-0", start + 1)));
    assert!(is_stale("cordon-999999999-1-0"));
    assert!(is_stale(&format!("cordon-supervisor-{me}-{}", start + 7)));
    assert!(!is_stale("user.slice"));
    assert!(!is_stale("cordon-notapid-1-0"));
    assert!(fresh_name().starts_with(&format!("cordon-{me}-{start}-")));
}

#[test]
fn cpus_parse_to_thousandths() {
    for (json, millis) in [("1.5", 1500), ("0.001", 1), ("2", 2000)] {
        let c: Cpus = serde_json::from_str(json).unwrap();
        assert_eq!(c.0, millis, "{json}");
    }
    for bad in ["0", "-1", "0.0005", "5000", "\"1\""] {
        assert!(serde_json::from_str::<Cpus>(bad).is_err(), "{bad}");
    }
    assert_eq!(Cpus(500).quota_us(100_000), 50_000);
    // The kernel's minimum quota is 1 ms.
    assert_eq!(Cpus(1).quota_us(100_000), 1000);
}

#[test]
fn v2_only_never_falls_back_to_cgroup_v1() {
    // memory and pids only on v1; the v2 hierarchy offers none.
    let mountinfo = HYBRID_MOUNTINFO.replace("/sys/fs/cgroup/unified", "/nonexistent/cordon-cg2");
    let layout = Layout::from_texts(&mountinfo, HYBRID_CGROUP);
    let l = limits(r#"{"memory": "2G", "pids": 512}"#);
    let why = CgroupPlan::decide(&l, &layout, None, true).unwrap_err();
    assert!(
        why.starts_with("limits.memory, limits.pids (cgroup limits): limits.cgroup is \"v2_only\""),
        "{why}"
    );
    assert!(why.contains("offers no controller, not memory, pids"), "{why}");
    // Without v2_only the same limits go to v1 (refused here only because
    // the fake hierarchy is not writable).
    let why = CgroupPlan::decide(&l, &layout, None, false).unwrap_err();
    assert!(why.starts_with("cgroup v1: "), "{why}");
    // No cgroup v2 at all.
    let v1_only = HYBRID_MOUNTINFO
        .lines()
        .filter(|l| !l.contains("cgroup2"))
        .collect::<Vec<_>>()
        .join("\n");
    let layout = Layout::from_texts(&v1_only, HYBRID_CGROUP);
    let why = CgroupPlan::decide(&l, &layout, None, true).unwrap_err();
    assert!(why.contains("this host has no cgroup v2 hierarchy"), "{why}");
}

#[test]
fn an_unwritable_v2_parent_names_the_limits_it_leaves_unenforced() {
    // A cgroup v2 hierarchy offering memory and pids, with cordon's own
    // cgroup (and so every candidate parent) missing: not writable, even
    // for root.
    let dir = std::env::temp_dir().join(format!("cordon-cg2-unwritable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    let mountinfo = format!(
        "41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
        dir.display()
    );
    let layout = Layout::from_texts(&mountinfo, "0::/gone/leaf\n");
    let l = limits(r#"{"memory": "2G", "pids": 512}"#);
    for v2_only in [true, false] {
        let why = CgroupPlan::decide(&l, &layout, None, v2_only).unwrap_err();
        assert!(
            why.starts_with("limits.memory, limits.pids (cgroup limits): cgroup v2: "),
            "{why}"
        );
        assert!(why.contains("is not writable for this user"), "{why}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn v2_only_is_refused_from_proc_cgroup_when_a_controller_is_on_v1() {
    let l = CgLimits {
        memory: Some(1 << 30),
        pids: Some(512),
        ..CgLimits::default()
    };
    let hybrid = "9:name=systemd:/\n8:pids:/\n4:memory:/x\n1:cpu,cpuacct:/\n0::/\n";
    let why = v2_only_refused_by_v1(&l, hybrid).expect("refused");
    assert!(
        why.starts_with("limits.memory, limits.pids (cgroup limits): limits.cgroup is \"v2_only\""),
        "{why}"
    );
    assert!(why.contains("memory, pids controllers on cgroup v1"), "{why}");
    // Pure v2, or v1 hierarchies without these controllers: the full
    // layout decides.
    assert_eq!(v2_only_refused_by_v1(&l, "0::/user.slice\n"), None);
    assert_eq!(v2_only_refused_by_v1(&l, "3:cpu:/\n0::/\n"), None);
}

#[test]
fn kernel_releases_compare_by_major_and_minor() {
    assert!(release_at_least("5.16.0", (5, 16)));
    assert!(release_at_least("6.1.0-27-amd64\n", (5, 16)));
    assert!(release_at_least("6.18.2", (5, 16)));
    assert!(!release_at_least("5.15.167-generic", (5, 16)));
    assert!(!release_at_least("4.19.0", (5, 16)));
    assert!(!release_at_least("garbage", (5, 16)));
    assert!(!release_at_least("6", (5, 16)));
}
