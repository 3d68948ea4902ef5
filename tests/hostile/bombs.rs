//! The classic bombs under the DEFAULT policy: a fork bomb, a memory bomb
//! and a file-size bomb must be contained without any limit flag (only a
//! short `--time-limit` bounds each test), as root and rootless; a rootless
//! cordon without a delegated cgroup relies on rlimits alone. The defaults
//! must still let real programs (python3, node, java, gcc) run.
//!
//! Each bomb is written so that it cannot hurt the machine when the defaults
//! fail to contain it: the test kills a sandbox whose processes exceed the
//! limit, and the memory and file bombs stop by themselves a little above it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    cgroup2_with, cordon, have_python, modes, scaled, slow_factor, time_limit, Mode, TempDir,
};
use crate::require;

/// A field of the built-in default policy's `limits`.
pub(crate) fn default_limit(field: &str) -> Option<serde_json::Value> {
    let text = include_str!("../../policies/default.json");
    let v: serde_json::Value = serde_json::from_str(text).expect("default policy is JSON");
    v["limits"].get(field).cloned()
}

/// A size field of the default policy in bytes (`"256M"` style).
pub(crate) fn default_size(field: &str) -> Option<u64> {
    let s = default_limit(field)?;
    let s = s.as_str().expect("a size string");
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().expect("a number");
    Some(
        n * match unit {
            "" => 1,
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            other => panic!("unit {other:?} of limits.{field}"),
        },
    )
}

/// `cordon run` in `mode` with the default policy, the outcome going to
/// `status`, started but not waited for.
fn spawn(mode: Mode, status: &Path, args: &[&str], cmd: &[&str], stdout: Stdio) -> Child {
    let mut c = cordon(mode);
    c.arg("run")
        .args(args)
        .arg("--status-json")
        .arg(status)
        .arg("--")
        .args(cmd)
        .stdout(stdout)
        .stderr(Stdio::piped());
    c.spawn().expect("spawn cordon")
}

pub(crate) fn outcome(status: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(status).unwrap_or_else(|e| panic!("no outcome at {}: {e}", status.display()));
    serde_json::from_str(&text).expect("outcome is JSON")
}

pub(crate) fn limits_hit(o: &serde_json::Value) -> Vec<String> {
    o["limits_hit"]
        .as_array()
        .unwrap_or_else(|| panic!("the outcome has no limits_hit array: {o}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

pub(crate) fn pid_ns(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Host processes in the pid namespace `ns`.
pub(crate) fn count_in(ns: &Path) -> usize {
    pids()
        .into_iter()
        .filter(|&p| pid_ns(p).as_deref() == Some(ns))
        .count()
}

/// The bombs of this file run one at a time: each saturates the machine,
/// and what it proves (the pids limit reached before the time limit, the
/// host still able to allocate) must not depend on the other one.
static ONE_BOMB: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn one_bomb() -> std::sync::MutexGuard<'static, ()> {
    ONE_BOMB.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fork bombs' --time-limit: 3 s on the host. In the VM lane 60 s,
/// and 120 s as root, where the bomb must reach the cgroup's pids limit
/// (512) before it: forking python3 is slow under emulation (it took 50 s
/// for 504 processes on a busy host).
pub(crate) fn bomb_time_limit(mode: Mode) -> String {
    match (crate::common::in_vm(), mode) {
        (false, _) => time_limit(3),
        (true, Mode::Root) => time_limit(12),
        (true, _) => time_limit(6),
    }
}

/// How often a bomb test counts the sandbox's processes (a walk of /proc,
/// which the bomb fills): less often in the VM lane, where the walk itself
/// takes the bomb's CPU.
pub(crate) fn bomb_poll() -> Duration {
    if crate::common::in_vm() {
        Duration::from_millis(200)
    } else {
        Duration::from_millis(20)
    }
}

pub(crate) const FORK_BOMB: &str =
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";

#[test]
fn fork_bomb_is_contained_by_the_default_policy() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let limit = default_limit("processes").and_then(|v| v.as_u64());
    // Without a default limit the test still must not bomb the host: it
    // kills the sandbox once it exceeds this bound.
    let bound = limit.unwrap_or(512) as usize;
    let _one = one_bomb();
    for mode in modes() {
        let time = bomb_time_limit(mode);
        let dir = TempDir::new("forkbomb");
        let status = dir.path().join("outcome.json");
        let mut child = spawn(
            mode,
            &status,
            &["--time-limit", &time],
            &["/usr/bin/python3", "-c", FORK_BOMB],
            Stdio::null(),
        );
        let me = child.id();
        // The sandbox's init is cordon's child; its pid namespace holds
        // every process of the sandbox.
        let start = Instant::now();
        let ns = loop {
            if let Some(init) = pids().into_iter().find(|&p| ppid(p) == Some(me)) {
                if let Some(ns) = pid_ns(init).filter(|ns| Some(ns.clone()) != pid_ns(std::process::id())) {
                    break ns;
                }
            }
            assert!(
                start.elapsed() < scaled(Duration::from_secs(5)),
                "{mode:?}: no sandbox init appeared"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut max = 0;
        let mut host_forks = 0;
        let mut escaped = false;
        while child.try_wait().expect("wait").is_none() {
            let n = count_in(&ns);
            max = max.max(n);
            if n > bound {
                escaped = true;
                let _ = child.kill();
                break;
            }
            if n >= 50 {
                // The host can still fork while the bomb runs.
                let st = Command::new("/bin/true")
                    .status()
                    .expect("the host cannot fork /bin/true");
                assert!(
                    st.success(),
                    "{mode:?}: /bin/true failed on the host during the bomb"
                );
                host_forks += 1;
            }
            std::thread::sleep(bomb_poll());
        }
        let out = child.wait_with_output().expect("wait cordon");
        let gone = crate::common::wait_until(5.0 * f64::from(slow_factor()), || count_in(&ns) == 0);
        assert!(
            !escaped,
            "{mode:?}: the sandbox had more than {bound} processes at once (killed by the test)"
        );
        assert!(
            gone,
            "{mode:?}: processes of the sandbox outlived it: {}",
            count_in(&ns)
        );
        assert!(limit.is_some(), "the default policy sets no limits.processes");
        assert!(
            max >= 50,
            "{mode:?}: the bomb never ran ({max} processes)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(host_forks > 0, "{mode:?}: the host never forked during the bomb");
        let o = outcome(&status);
        assert_eq!(o["status"], "timed_out", "{mode:?}: {o}");
        let hit = limits_hit(&o);
        assert!(hit.contains(&"wall_time".to_string()), "{mode:?}: {o}");
        if mode == Mode::Root && crate::common::is_root() && cgroup2_with("pids") {
            // Root on a cgroup v2 host: the default policy's cgroup exists.
            assert!(o.get("cgroup").is_some(), "{mode:?}: no cgroup: {o}");
        }
        if o.get("cgroup").is_some() {
            // With a cgroup, the pids limit is what refused the forks.
            assert!(hit.contains(&"pids".to_string()), "{mode:?}: {o}");
        }
        eprintln!("{mode:?}: at most {max} processes (limit {bound}), limits_hit {hit:?}");
    }
}

/// A python3 memory bomb: allocates and touches 64 MiB chunks; on
/// MemoryError prints `stopped MIB`, holds what it got for a second and
/// exits with 3; gives up by itself 1 GiB above the default address-space
/// limit (printing `escaped MIB`). Its first line is its report.
pub(crate) fn memory_bomb() -> String {
    let cap_mib = default_size("address_space").unwrap_or(4 << 30) / (1 << 20) + 1024;
    format!(
        "import sys, time\nchunks = []\ntry:\n    while len(chunks) * 64 < {cap_mib}:\n        chunks.append(b'\\x01' * (64 << 20))\nexcept MemoryError:\n    print('stopped', len(chunks) * 64, flush=True)\n    time.sleep(1)\n    sys.exit(3)\nprint('escaped', len(chunks) * 64, flush=True)\ntime.sleep(1)\n"
    )
}

/// The host allocates 256 MiB and touches every page of it.
pub(crate) fn host_allocates_256_mib() {
    let host = vec![1u8; 256 << 20];
    assert_eq!(
        host.iter().step_by(4096).map(|&b| b as usize).sum::<usize>(),
        256 << 8
    );
}

#[test]
fn memory_bomb_is_stopped_by_the_default_policy() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let address_space = default_size("address_space");
    let memory = default_size("memory");
    let bomb = memory_bomb();
    let _one = one_bomb();
    for mode in modes() {
        let dir = TempDir::new("membomb");
        let status = dir.path().join("outcome.json");
        let mut child = spawn(
            mode,
            &status,
            &["--time-limit", &time_limit(60)],
            &["/usr/bin/python3", "-c", &bomb],
            Stdio::piped(),
        );
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the bomb's report");
        // While the bomb holds what it got, the host can still allocate and
        // touch 256 MiB.
        host_allocates_256_mib();
        let out = child.wait_with_output().expect("wait cordon");
        let o = outcome(&status);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !line.starts_with("escaped"),
            "{mode:?}: the bomb allocated {} MiB without being stopped\n{err}",
            line.trim()
        );
        let hit = limits_hit(&o);
        if mode == Mode::Root && crate::common::is_root() && cgroup2_with("memory") {
            // Root on a cgroup v2 host: the cgroup's memory limit (below
            // the address-space limit) is what stops the bomb.
            assert!(o.get("cgroup").is_some(), "{mode:?}: no cgroup: {o}");
            assert_eq!(o["status"], "oom_killed", "{mode:?}: {o}\n{err}");
        }
        if o["status"] == "oom_killed" {
            // A cgroup enforced limits.memory.
            assert!(hit.contains(&"memory".to_string()), "{mode:?}: {o}");
        } else {
            // RLIMIT_AS: the allocation failed inside the payload, which the
            // outcome cannot see; the payload said so.
            let got: u64 = line
                .trim()
                .strip_prefix("stopped ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{mode:?}: unexpected report {line:?}\n{o}\n{err}"));
            assert_eq!(o["exit_code"], 3, "{mode:?}: {o}");
            let limit = address_space.expect("the default policy sets limits.address_space");
            assert!(got * (1 << 20) <= limit, "{mode:?}: {got} MiB above {limit}");
            assert!(hit.is_empty(), "{mode:?}: nothing observable was hit: {o}");
        }
        assert!(
            memory.is_some(),
            "the default policy sets no limits.memory for hosts with cgroup v2"
        );
        eprintln!("{mode:?}: {} -> {} {hit:?}", line.trim(), o["status"]);
    }
}

#[test]
fn file_size_bomb_fails_at_the_default_limit() {
    let limit = default_size("file_size");
    let bytes = limit.unwrap_or(256 << 20) + (1 << 20);
    for mode in modes() {
        let out_dir = TempDir::new("fsize");
        let bind = format!("{}:/out", out_dir.str());
        let dir = TempDir::new("fsize-status");
        let status = dir.path().join("outcome.json");
        // The payload itself writes (exec), so its death is what the outcome
        // reports.
        let script = format!("exec head -c {bytes} /dev/zero > /out/big");
        let child = spawn(
            mode,
            &status,
            &["--time-limit", &time_limit(60), "--bind", &bind],
            &["/bin/sh", "-c", &script],
            Stdio::null(),
        );
        let out = child.wait_with_output().expect("wait cordon");
        let o = outcome(&status);
        let size = std::fs::metadata(out_dir.path().join("big"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            size < bytes,
            "{mode:?}: wrote {size} bytes, more than any file-size limit allows\n{o}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let limit = limit.expect("the default policy sets limits.file_size");
        assert_eq!(size, limit, "{mode:?}: the file stops exactly at the limit");
        assert_eq!(o["status"], "signaled", "{mode:?}: {o}");
        assert_eq!(o["signal"], libc::SIGXFSZ, "{mode:?}: {o}");
        assert_eq!(limits_hit(&o), ["file_size"], "{mode:?}: {o}");

        // Below the limit, writing works; python (which ignores SIGXFSZ)
        // gets EFBIG past it.
        if have_python() {
            let py = format!(
                "import errno\nf = open('/out/small', 'wb')\nf.write(b'x' * (1 << 20))\nf.flush()\nf.seek({limit})\ntry:\n    f.write(b'y')\n    f.flush()\n    print('wrote past the limit')\nexcept OSError as e:\n    print('EFBIG' if e.errno == errno.EFBIG else e)\n"
            );
            let r = crate::common::run(mode, &["--bind", &bind], &["/usr/bin/python3", "-c", &py]);
            assert_eq!(r.stdout().trim(), "EFBIG", "{mode:?}: {}", r.stderr());
            let small = std::fs::metadata(out_dir.path().join("small"))
                .expect("small file")
                .len();
            assert!(small >= 1 << 20 && small <= limit, "{mode:?}: {small}");
        }
    }
}

/// A tiny Java program for the source launcher.
const HELLO_JAVA: &str = "public class Hello { public static void main(String[] a) { System.out.println(\"java \" + (6 * 7)); } }\n";

#[test]
fn real_programs_run_under_the_default_limits() {
    let node = Path::new("/usr/bin/node").exists();
    let java = Path::new("/usr/bin/java").exists();
    let gcc = Path::new("/usr/bin/gcc").exists();
    let src = TempDir::new("progs");
    std::fs::write(src.path().join("Hello.java"), HELLO_JAVA).expect("write Hello.java");
    std::fs::write(
        src.path().join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"c 42\"); return 0; }\n",
    )
    .expect("write hello.c");
    let bind = format!("{}:/src", src.str());
    for mode in modes() {
        if have_python() {
            let r = crate::common::py(mode, &[], "import json, hashlib; print('python', 6 * 7)");
            assert_eq!(r.ok().trim(), "python 42", "{mode:?}");
        }
        if node {
            let r = crate::common::run(mode, &[], &["/usr/bin/node", "-e", "console.log('node', 6 * 7)"]);
            assert_eq!(r.ok().trim(), "node 42", "{mode:?}: {}", r.stderr());
        }
        if java {
            let r = crate::common::run(mode, &[], &["/usr/bin/java", "-version"]);
            assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
            // Debian's JDK keeps its security configuration under /etc,
            // which the default policy does not bind.
            let mut args: Vec<String> = vec![
                "--time-limit".into(),
                time_limit(120),
                "--ro-bind".into(),
                bind.clone(),
            ];
            for e in std::fs::read_dir("/etc").expect("read /etc").flatten() {
                if e.file_name().to_string_lossy().starts_with("java-") {
                    args.push("--ro-bind".into());
                    args.push(e.path().to_string_lossy().into_owned());
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = crate::common::run(mode, &args, &["/usr/bin/java", "/src/Hello.java"]);
            assert_eq!(r.ok().trim(), "java 42", "{mode:?}: {}", r.stderr());
        }
        if gcc {
            let r = crate::common::run(
                mode,
                &["--ro-bind", &bind],
                &["/usr/bin/gcc", "-O1", "-o", "/tmp/hello", "/src/hello.c"],
            );
            assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        }
    }
    // Programs, not kernel features: checked where installed, reported
    // (not failed) where not.
    for (name, there) in [
        ("python3", have_python()),
        ("node", node),
        ("java", java),
        ("gcc", gcc),
    ] {
        if !there {
            eprintln!("SKIPPED: {name} is not installed, not checked under the default limits");
        }
    }
}

#[test]
fn default_policy_says_which_cgroup_limits_it_does_not_enforce() {
    for mode in modes() {
        let r = crate::common::run(mode, &[], &["/bin/true"]);
        r.ok();
        let o = r.status.clone().expect("outcome");
        let unenforced: Vec<&str> = o["unenforced"]
            .as_array()
            .expect("unenforced")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        match o.get("cgroup") {
            // Where the sandbox has a cgroup, it is a v2 one (born inside
            // it), and nothing of the limits is missing.
            Some(cg) => {
                assert_eq!(cg["version"], "v2", "{mode:?}: {o}");
                assert!(
                    !unenforced.iter().any(|u| u.starts_with("limits")),
                    "{mode:?}: {o}"
                );
            }
            // Otherwise the outcome says so, naming the fields.
            None => assert!(
                unenforced
                    .iter()
                    .any(|u| u.starts_with("limits: limits.memory, limits.pids (cgroup limits): ")),
                "{mode:?}: {o}"
            ),
        }
        // The policy chose this: no warning on every run (a kernel older
        // than the policy's Landlock ABI warns about that, which is not
        // this test's subject).
        let err = crate::common::without_landlock_warnings(&r.stderr());
        assert!(!err.contains("not enforced"), "{mode:?}: {}", r.stderr());
        if mode == Mode::Root && crate::common::is_root() {
            // A cgroup limit given on the command line is enforced with
            // whatever cgroup version the host has (or refused).
            let r = crate::common::run(mode, &["--pids", "64"], &["/bin/true"]);
            r.ok();
            let o = r.status.expect("outcome");
            assert!(o.get("cgroup").is_some(), "{mode:?}: --pids made no cgroup: {o}");
        }
    }
}

/// The default policy with `limits` changed as given.
pub(crate) fn default_policy_with(dir: &TempDir, limits: serde_json::Value) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../policies/default.json")).expect("default policy is JSON");
    for (k, val) in limits.as_object().expect("object") {
        v["limits"][k] = val.clone();
    }
    crate::common::write_policy(dir, "policy.json", &v.to_string())
}

#[test]
fn a_busy_loop_dies_of_sigxcpu_and_the_outcome_says_cpu_time() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    // The default's 10 minutes, shortened to one second for the test (ten
    // in the VM lane, where starting python3 alone takes about a second).
    assert!(
        default_limit("cpu_time").is_some(),
        "the default policy sets no limits.cpu_time"
    );
    let dir = TempDir::new("cpu");
    let policy = default_policy_with(&dir, serde_json::json!({"cpu_time": time_limit(1)}));
    for mode in modes() {
        let r = crate::common::py(
            mode,
            &["--policy", &policy, "--time-limit", &time_limit(30)],
            "while True:\n    pass\n",
        );
        let o = r.status.clone().expect("outcome");
        assert_eq!(o["status"], "signaled", "{mode:?}: {o}\n{}", r.stderr());
        assert_eq!(o["signal"], libc::SIGXCPU, "{mode:?}: {o}");
        assert_eq!(limits_hit(&o), ["cpu_time"], "{mode:?}: {o}");
        // Under the limit a program runs to its end.
        let r = crate::common::py(mode, &["--policy", &policy], "print(sum(range(100000)))");
        assert_eq!(r.ok().trim(), "4999950000", "{mode:?}");
        assert_eq!(
            limits_hit(&r.status.clone().expect("outcome")),
            Vec::<String>::new()
        );
    }
}
