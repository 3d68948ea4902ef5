//! cgroup limits, on this host's cgroup v1 hierarchies and (in the VM lane)
//! on a pure cgroup v2 kernel: a memory bomb is OOM-killed and reported, a
//! fork bomb stops at the pids limit, a CPU limit holds, sandboxes get
//! separate cgroups, nothing of ours is left behind, and an unprivileged
//! user without delegation is refused.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{cordon, is_root, Mode, Run, TempDir};

fn in_vm() -> bool {
    std::env::var_os("CORDON_VM").is_some()
}

fn diag(r: &Run) -> String {
    format!(
        "code {:?}\nstdout: {}\nstderr: {}\noutcome: {:?}",
        r.output.status,
        r.stdout(),
        r.stderr(),
        r.status
    )
}

fn outcome(r: &Run) -> serde_json::Value {
    r.status
        .clone()
        .unwrap_or_else(|| panic!("no outcome\n{}", diag(r)))
}

fn cgroup_paths(r: &Run) -> Vec<PathBuf> {
    outcome(r)["cgroup"]["paths"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_str()).map(PathBuf::from).collect())
        .unwrap_or_default()
}

/// Every directory named cordon-<pid>-... below the cgroup mounts, for a pid.
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let prefix = format!("cordon-{pid}-");
    fn walk(d: &Path, prefix: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy().starts_with(prefix) {
                found.push(p);
            } else if depth < 4 {
                walk(&p, prefix, depth + 1, found);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), &prefix, 0, &mut found);
    found
}

/// Python that starts up to `n` sleeping children, prints how many started
/// (a fork refused at the pids limit raises), and kills them.
fn spawn_script(n: u32) -> String {
    format!(
        "import subprocess\nkids = []\nfor _ in range({n}):\n    try:\n        kids.append(subprocess.Popen(['/bin/sleep', '5']))\n    except OSError:\n        break\nprint(len(kids))\nfor k in kids:\n    k.kill()\n"
    )
}

/// Whether the cgroup2 hierarchy at /sys/fs/cgroup offers a controller.
fn v2_with(controller: &str) -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|s| s.split_whitespace().any(|c| c == controller))
}

/// The tests of this file run one at a time: a launch removes stale
/// cgroups of killed cordons, which one test leaves on purpose.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Root is needed on this host (cgroup v1 is never delegated) and in the VM.
fn need_root() -> bool {
    if is_root() {
        return true;
    }
    if common::required("root") {
        panic!("required feature root is missing: cgroup tests need root");
    }
    eprintln!("SKIPPED: cgroup tests need root (root)");
    false
}

#[test]
fn a_memory_bomb_is_oom_killed_and_reported_while_cordon_survives() {
    let _serial = serial();
    if !need_root() {
        return;
    }
    let r = common::py(
        Mode::Root,
        &["--memory", "64M"],
        "import sys\nblocks = []\nwhile True:\n    blocks.append(bytearray(8 << 20))\n",
    );
    let st = outcome(&r);
    assert_eq!(r.code(), 137, "{}", diag(&r));
    assert_eq!(st["status"], "oom_killed", "{}", diag(&r));
    assert!(
        st["cgroup"]["oom_kills"].as_u64().unwrap_or(0) >= 1,
        "{}",
        diag(&r)
    );
    let peak = st["cgroup"]["memory_peak_bytes"].as_u64().unwrap_or(0);
    assert!(peak > 32 << 20 && peak <= 64 << 20, "peak {peak}\n{}", diag(&r));
    for p in cgroup_paths(&r) {
        assert!(!p.exists(), "{} left behind", p.display());
    }
    // cgroup v2 where its hierarchy has the memory controller (the VM), v1
    // otherwise (this development host's hybrid layout).
    let want = if v2_with("memory") { "v2" } else { "v1" };
    assert_eq!(st["cgroup"]["version"], want, "{}", diag(&r));
    // Below the limit the same program runs.
    let r = common::py(
        Mode::Root,
        &["--memory", "64M"],
        "print(len(bytearray(16 << 20)))",
    );
    assert_eq!(r.ok().trim(), (16u64 << 20).to_string());
    assert_eq!(outcome(&r)["status"], "exited");
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit_and_the_host_can_still_fork() {
    let _serial = serial();
    if !need_root() {
        return;
    }
    let r = common::py(
        Mode::Root,
        &["--pids", "16", "--time-limit", "20s"],
        &spawn_script(64),
    );
    let st = outcome(&r);
    assert!(
        st["cgroup"]["pids_limit_hits"].as_u64().unwrap_or(0) >= 1,
        "{}",
        diag(&r)
    );
    let running: u64 = r.stdout().trim().parse().unwrap_or(99);
    assert!(
        running < 16,
        "{running} background jobs under a limit of 16\n{}",
        diag(&r)
    );
    // The host is unaffected.
    assert!(std::process::Command::new("/bin/true")
        .status()
        .expect("fork on the host")
        .success());
    // A limit that is not reached is not hit.
    let r = common::sh(
        Mode::Root,
        &["--pids", "64"],
        "for i in 1 2 3; do true & done; wait; echo ok",
    );
    assert_eq!(r.ok(), "ok\n");
    assert_eq!(
        outcome(&r)["cgroup"]["pids_limit_hits"].as_u64().unwrap_or(0),
        0,
        "{}",
        diag(&r)
    );
}

#[test]
fn half_a_cpu_holds_a_busy_loop_to_half_a_cpu() {
    let _serial = serial();
    if !need_root() {
        return;
    }
    // Long enough for many CFS periods; the VM is slow, so give it longer.
    let secs = if in_vm() { 6 } else { 3 };
    let script = format!("import time\nend = time.time() + {secs}\nwhile time.time() < end:\n    pass\n");
    let r = common::py(Mode::Root, &["--cpus", "0.5"], &script);
    assert_eq!(r.code(), 0, "{}", diag(&r));
    let st = outcome(&r);
    let cpu = st["cgroup"]["cpu_usage_ms"].as_u64().expect("cpu usage") as f64;
    let wall = st["wall_time_ms"].as_u64().expect("wall") as f64;
    let ratio = cpu / wall;
    assert!(
        (0.4..=0.6).contains(&ratio),
        "cpu {cpu} ms over {wall} ms = {ratio:.2} CPUs\n{}",
        diag(&r)
    );
}

#[test]
fn concurrent_sandboxes_get_separate_cgroups_and_limits() {
    let _serial = serial();
    if !need_root() {
        return;
    }
    let run = |pids: &'static str| {
        std::thread::spawn(move || {
            common::py(
                Mode::Root,
                &["--pids", pids, "--time-limit", "30s"],
                &spawn_script(12),
            )
        })
    };
    let (a, b) = (run("6"), run("40"));
    let (a, b) = (a.join().expect("a"), b.join().expect("b"));
    let (pa, pb) = (cgroup_paths(&a), cgroup_paths(&b));
    assert!(!pa.is_empty() && !pb.is_empty());
    assert!(pa.iter().all(|p| !pb.contains(p)), "{pa:?} vs {pb:?}");
    let jobs = |r: &Run| r.stdout().trim().parse::<u64>().unwrap_or(0);
    assert!(jobs(&a) < 6, "{}", diag(&a));
    assert_eq!(jobs(&b), 12, "{}", diag(&b));
}

#[test]
fn no_cgroup_remains_after_exit_timeout_oom_or_a_killed_cordon() {
    let _serial = serial();
    if !need_root() {
        return;
    }
    // Normal exit, timeout, OOM.
    for (args, cmd) in [
        (vec!["--memory", "64M", "--pids", "32"], "true"),
        (vec!["--memory", "64M", "--time-limit", "300ms"], "sleep 10"),
        (vec!["--memory", "32M"], "python3 -c 'bytearray(256 << 20)'"),
    ] {
        let r = common::sh(Mode::Root, &args, cmd);
        let paths = cgroup_paths(&r);
        assert!(!paths.is_empty(), "{}", diag(&r));
        for p in paths {
            assert!(!p.exists(), "{} left behind after {cmd}", p.display());
        }
    }
    // cordon SIGKILLed: its cgroup stays until the next run cleans it up.
    let dir = TempDir::new("cg-kill");
    let mut child = cordon(Mode::Root)
        .args(["run", "--memory", "64M", "--pids", "32", "--", "/bin/sleep", "30"])
        .spawn()
        .expect("spawn cordon");
    let pid = child.id();
    let end = Instant::now() + Duration::from_secs(if in_vm() { 60 } else { 10 });
    while cgroups_of(pid).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = cgroups_of(pid);
    assert!(!left.is_empty(), "cordon {pid} made no cgroup");
    child.kill().expect("SIGKILL cordon");
    child.wait().expect("reap cordon");
    // The sandbox dies with cordon (parent-death signal), the cgroup stays.
    assert!(common::wait_until(
        10.0 * f64::from(common::slow_factor()),
        || left
            .iter()
            .all(|p| { std::fs::read_to_string(p.join("cgroup.procs")).is_ok_and(|s| s.trim().is_empty()) })
    ));
    assert!(left.iter().all(|p| p.exists()));
    let r = common::sh(Mode::Root, &["--memory", "64M", "--pids", "32"], "true");
    assert_eq!(r.code(), 0, "{}", diag(&r));
    for p in &left {
        assert!(!p.exists(), "{} survived the next run", p.display());
    }
    // `cordon gc` does the same on demand.
    let mut child = cordon(Mode::Root)
        .args(["run", "--pids", "32", "--", "/bin/sleep", "30"])
        .spawn()
        .expect("spawn");
    let pid = child.id();
    while cgroups_of(pid).is_empty() && Instant::now() < end + Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = cgroups_of(pid);
    assert!(!left.is_empty());
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(common::wait_until(
        10.0 * f64::from(common::slow_factor()),
        || {
            let out = cordon(Mode::Root).arg("gc").output().expect("gc");
            out.status.success() && left.iter().all(|p| !p.exists())
        }
    ));
    drop(dir);
}

#[test]
fn without_delegation_an_unprivileged_user_is_refused_with_a_hint() {
    let _serial = serial();
    if !need_root() {
        return;
    }
    let r = common::sh(Mode::Rootless, &["--memory", "64M"], "echo ran");
    assert_eq!(r.code(), 125, "{}", diag(&r));
    assert!(!r.stdout().contains("ran"));
    let err = r.stderr();
    assert!(err.contains("limits") && err.contains("not writable"), "{err}");
    assert!(
        err.contains("delegat") || err.contains("as root"),
        "the error says what to do: {err}"
    );
    // best_effort runs, and says what was not enforced.
    let dir = TempDir::new("cg-best");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.json"))
        .expect("policy");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["limits"]["memory"] = "64M".into();
    v["limits"]["compatibility"] = "best_effort".into();
    // The default's cgroup limits are v2_only (unenforced without a
    // warning); this is the case of a policy that wants them anywhere.
    v["limits"]["cgroup"] = "any".into();
    let p = dir.path().join("best.json");
    std::fs::write(&p, v.to_string()).expect("write");
    let r = common::sh(
        Mode::Rootless,
        &["--policy", p.to_str().expect("utf-8")],
        "echo ran",
    );
    assert_eq!(r.ok(), "ran\n", "{}", diag(&r));
    assert!(
        // It names the limits left unenforced, then why.
        outcome(&r)["unenforced"]
            .to_string()
            .contains("limits: limits.memory")
            && outcome(&r)["unenforced"].to_string().contains("not writable"),
        "{}",
        diag(&r)
    );
    assert!(
        r.stderr().contains("warning: not enforced: limits"),
        "{}",
        diag(&r)
    );
}

/// Rootless with a delegated cgroup v2 subtree (what systemd's Delegate=yes
/// gives a user): cordon, started inside it, moves itself into a leaf of
/// its own (the no-internal-processes rule), enables the controllers and
/// makes the sandbox's leaf there. Needs a pure cgroup v2 kernel: the VM.
#[test]
fn rootless_in_a_delegated_subtree_gets_limits() {
    let _serial = serial();
    if !need_root() {
        return;
    }
    if !v2_with("memory") {
        if common::required("cgroup2") {
            panic!("required feature cgroup2 is missing: no cgroup v2 memory controller at /sys/fs/cgroup");
        }
        eprintln!("SKIPPED: needs cgroup v2 with the memory controller at /sys/fs/cgroup (cgroup2)");
        return;
    }
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let root = Path::new("/sys/fs/cgroup");
    let enabled = std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
    for c in ["memory", "pids"] {
        if !enabled.split_whitespace().any(|e| e == c) {
            std::fs::write(root.join("cgroup.subtree_control"), format!("+{c}"))
                .expect("enable controller at the root");
        }
    }
    let deleg = root.join(format!("cordon-test-deleg-{}", std::process::id()));
    std::fs::create_dir(&deleg).expect("make the delegated cgroup");
    let id = common::ROOTLESS_ID;
    for f in ["", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
        let p = if f.is_empty() {
            deleg.clone()
        } else {
            deleg.join(f)
        };
        std::os::unix::fs::chown(&p, Some(id), Some(id)).expect("delegate");
    }
    // Start a shell as the user, move it into the subtree (as root, the
    // common ancestor's owner), then let it exec cordon there.
    let tmp = TempDir::new("cg-deleg");
    let status = tmp.path().join("outcome.json");
    let mut sh = std::process::Command::new("/bin/sh")
        .args(["-c", "read go; exec \"$0\" run --memory 64M --pids 32 --status-json \"$1\" -- /bin/sh -c 'cat /proc/self/cgroup'"])
        .arg(common::cordon_bin())
        .arg(&status)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .uid(id)
        .gid(id)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::fs::write(deleg.join("cgroup.procs"), sh.id().to_string()).expect("move into the delegated cgroup");
    sh.stdin.take().expect("stdin").write_all(b"go\n").expect("go");
    let out = sh.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let text =
        std::fs::read_to_string(&status).unwrap_or_else(|e| panic!("no outcome ({e}): {stdout}\n{stderr}"));
    let st: serde_json::Value = serde_json::from_str(&text).expect("outcome");
    assert_eq!(st["cgroup"]["version"], "v2", "{st}");
    let leaf = st["cgroup"]["paths"][0].as_str().expect("path").to_string();
    assert!(
        leaf.starts_with(deleg.to_str().expect("utf-8")),
        "{leaf} is not in {}",
        deleg.display()
    );
    assert!(!Path::new(&leaf).exists(), "{leaf} left behind");
    // cordon moved itself into a leaf, now empty and stale: gc removes it.
    let supervisor: Vec<PathBuf> = std::fs::read_dir(&deleg)
        .expect("read")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("cordon-supervisor-"))
        })
        .collect();
    assert_eq!(supervisor.len(), 1, "{supervisor:?}");
    let gc = cordon(Mode::Rootless)
        .args(["gc", "--cgroup-parent"])
        .arg(&deleg)
        .output()
        .expect("gc");
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    assert!(!supervisor[0].exists(), "gc left {}", supervisor[0].display());
    std::fs::remove_dir(&deleg).expect("remove the delegated cgroup");
}
