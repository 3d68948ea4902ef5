//! Named, long-lived sandboxes (`cordon::Sandbox::create`, `cordon
//! create` / `run --in` / `ls` / `stop` / `gc`): files persist between
//! commands; a command's time limit kills that command and its process
//! group, not the sandbox; stopping (or losing the supervisor) leaves no
//! process, fd, mount, cgroup or socket behind.
//!
//! The library tests count this process's fds and children, so they share
//! one lock. Started as root they run as root, then again as the
//! unprivileged uid 4321 (`the_library_tests_as_an_unprivileged_user`).

mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cordon::outcome::Status;
use cordon::{Policy, Sandbox};

use common::ROOTLESS_ID;

static LOCK: Mutex<()> = Mutex::new(());

/// Set in the re-run as the unprivileged user.
const CHILD_ENV: &str = "CORDON_LIFECYCLE_NAMED_UNPRIVILEGED";

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn who() -> &'static str {
    if common::is_root() {
        "root"
    } else {
        "rootless"
    }
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> (std::fs::File, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds are new and owned here.
    unsafe { (std::fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Run `script` with `sh -c` in the session; its stdout and outcome.
fn sh(s: &mut cordon::Session, script: &str) -> (String, cordon::Outcome) {
    let (mut r, w) = pipe();
    let o = s
        .command(&["/bin/sh", "-c", script])
        .stdio(None, Some(w), None)
        .run()
        .unwrap_or_else(|e| panic!("{}: run {script:?}: {e}", who()));
    let mut out = String::new();
    r.read_to_string(&mut out).expect("read stdout");
    (out, o)
}

fn create() -> cordon::Session {
    let policy = Policy::builtin_default().expect("default policy");
    Sandbox::new(policy)
        .create()
        .unwrap_or_else(|e| panic!("{}: create: {e}", who()))
}

/// This process's fds, children (of every thread) and mounts.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    fds: usize,
    children: Vec<String>,
    mountinfo_lines: usize,
}

fn snapshot() -> Snapshot {
    let mut children = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").expect("tasks").flatten() {
        let c = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        children.extend(c.split_whitespace().map(str::to_string));
    }
    Snapshot {
        fds: std::fs::read_dir("/proc/self/fd").expect("fds").count(),
        children,
        mountinfo_lines: std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .count(),
    }
}

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0): look at its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').map_or(0, |i| i + 1)..]
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[test]
fn files_written_by_one_command_are_seen_by_the_next() {
    let _g = lock();
    let mut s = create();
    let (_, o) = sh(&mut s, "echo persisted > /tmp/f; mkdir /tmp/d; echo x > /tmp/d/g");
    assert_eq!(
        (o.status, o.exit_code),
        (Status::Exited, 0),
        "{}: {}",
        who(),
        o.to_json()
    );
    let (out, o) = sh(&mut s, "cat /tmp/f /tmp/d/g; echo $$");
    assert_eq!(o.exit_code, 0, "{}: {}", who(), o.to_json());
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("persisted"), "{}: {out}", who());
    assert_eq!(lines.next(), Some("x"), "{}: {out}", who());
    // Each command is a new process of the same pid namespace: small pids,
    // not 1 (init's).
    let pid: u32 = lines.next().and_then(|p| p.parse().ok()).expect("pid");
    assert!(pid > 1 && pid < 1000, "{}: pid {pid}", who());
    // The per-command environment and working directory.
    let (out, o) = sh(&mut s, "echo \"$A:$HOME:$(pwd)\"");
    assert_eq!(o.exit_code, 0);
    assert_eq!(out, ":/tmp:/tmp\n", "{}", who());
    let (mut r, w) = pipe();
    let o = s
        .command(&["sh", "-c", "echo \"$A:$(pwd)\""])
        .env("A", "set")
        .cwd("/tmp/d")
        .stdio(None, Some(w), None)
        .run()
        .expect("run");
    let mut out = String::new();
    r.read_to_string(&mut out).expect("read");
    assert_eq!((o.exit_code, out.as_str()), (0, "set:/tmp/d\n"), "{}", who());
    // A command that is not there: 127 and the path searched, and the
    // sandbox goes on.
    let o = s.run(&["no-such-command"]).expect("run");
    assert_eq!((o.status, o.exit_code), (Status::SetupFailed, 127), "{}", who());
    let e = o.error.as_ref().expect("error");
    assert!(
        e.detail.contains("no-such-command") && e.detail.contains("PATH="),
        "{e:?}"
    );
    let o = s.run(&["/bin/sh", "-c", "exit 3"]).expect("run");
    assert_eq!((o.status, o.exit_code), (Status::Exited, 3), "{}", who());
    let o = s.run(&["/bin/sh", "-c", "kill -TERM $$"]).expect("run");
    assert_eq!(
        (o.status, o.signal),
        (Status::Signaled, Some(libc::SIGTERM)),
        "{}",
        who()
    );
    assert_eq!(s.commands_run(), 7);
    s.stop();
}

#[test]
fn the_per_command_layers_apply_to_every_command() {
    let _g = lock();
    let mut s = create();
    // seccomp (namespaces refused), no capabilities, no_new_privs, the
    // policy's uid, Landlock (no write outside /tmp and /dev).
    let (out, o) = sh(
        &mut s,
        "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t ' ' '; \
         unshare -U true 2>/dev/null && echo unshare-ok; touch /usr/x 2>/dev/null && echo wrote-usr; \
         ps -o pid= -p 1 >/dev/null 2>&1; cat /proc/1/environ 2>/dev/null | head -c1 | wc -c",
    );
    assert_eq!(o.exit_code, 0, "{}: {}", who(), o.to_json());
    assert!(out.starts_with("1000\n"), "{}: {out}", who());
    assert!(out.contains("CapEff: 0000000000000000"), "{}: {out}", who());
    assert!(out.contains("NoNewPrivs: 1"), "{}: {out}", who());
    assert!(out.contains("Seccomp: 2"), "{}: {out}", who());
    assert!(
        !out.contains("unshare-ok") && !out.contains("wrote-usr"),
        "{}: {out}",
        who()
    );
    // init's environment (and fds) are not readable by the commands.
    assert!(out.ends_with("0\n"), "{}: {out}", who());
    s.stop();
}

#[test]
fn a_time_limit_kills_only_that_command_and_its_process_group() {
    let _g = lock();
    let mut s = create();
    // A background process in the command's group, and one that left it
    // (its own session): the limit kills the group, not the sandbox.
    let (mut r, w) = pipe();
    let start = Instant::now();
    let o = s
        .command(&[
            "/bin/sh",
            "-c",
            "sleep 300 >/dev/null & echo $! > /tmp/grouped; \
             setsid sh -c 'echo $$ > /tmp/away.new; mv /tmp/away.new /tmp/away; exec sleep 300' >/dev/null 2>&1 & \
             while [ ! -e /tmp/away ]; do sleep 0.05; done; echo started; sleep 300",
        ])
        .time_limit(Duration::from_millis(1500))
        .stdio(None, Some(w), None)
        .run()
        .expect("run");
    let elapsed = start.elapsed();
    let mut out = String::new();
    r.read_to_string(&mut out).expect("read");
    assert_eq!(out, "started\n", "{}", who());
    assert_eq!(
        (o.status, o.exit_code, o.signal),
        (Status::TimedOut, 124, Some(libc::SIGKILL)),
        "{}: {}",
        who(),
        o.to_json()
    );
    assert_eq!(o.limits_hit, vec!["wall_time"], "{}", who());
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(10),
        "{}: {elapsed:?}",
        who()
    );
    // The sandbox lives on: its files, the process that left the group.
    let (out, o) = sh(
        &mut s,
        "kill -0 $(cat /tmp/grouped) 2>/dev/null && echo grouped-alive; \
         kill -0 $(cat /tmp/away) && echo away-alive",
    );
    assert_eq!(o.exit_code, 0, "{}: {}", who(), o.to_json());
    assert_eq!(out, "away-alive\n", "{}", who());
    // Two commands at once, each with its own limit.
    let quick = s
        .submit(
            &cordon::CommandSpec {
                time_limit: Some(Duration::from_secs(30)),
                ..cordon::CommandSpec::new(&["/bin/sleep", "0.3"])
            },
            [0, 1, 2],
        )
        .expect("submit");
    let slow = s
        .submit(
            &cordon::CommandSpec {
                time_limit: Some(Duration::from_millis(500)),
                ..cordon::CommandSpec::new(&["/bin/sleep", "30"])
            },
            [0, 1, 2],
        )
        .expect("submit");
    let so = s.wait(slow).expect("wait slow");
    let qo = s.wait(quick).expect("wait quick");
    assert_eq!(so.status, Status::TimedOut, "{}", who());
    assert_eq!((qo.status, qo.exit_code), (Status::Exited, 0), "{}", who());
    s.stop();
}

#[test]
fn stop_after_1000_commands_leaves_nothing() {
    let _g = lock();
    let before = snapshot();
    let mut s = create();
    let init = s.pid();
    let cgroups = s.cgroup_paths();
    let null = std::fs::File::options()
        .write(true)
        .open("/dev/null")
        .expect("null");
    let mut times = Vec::with_capacity(1000);
    for i in 0..1000 {
        let t = Instant::now();
        let o = s
            .run(&["/bin/true"])
            .unwrap_or_else(|e| panic!("{}: run {i}: {e}", who()));
        times.push(t.elapsed());
        assert_eq!((o.status, o.exit_code), (Status::Exited, 0), "{}: run {i}", who());
    }
    drop(null);
    times.sort();
    eprintln!(
        "lifecycle_named ({}): 1000 x /bin/true in a named sandbox: p50 {:?}, p90 {:?}, total {:?} (shared machine)",
        who(),
        times[500],
        times[900],
        times.iter().sum::<Duration>()
    );
    // A command still running when the sandbox stops dies with it.
    let id = s
        .submit(&cordon::CommandSpec::new(&["/bin/sleep", "300"]), [0, 1, 2])
        .expect("submit");
    assert!(id > 0);
    let stopped = s.stop();
    assert_eq!(stopped.commands_run, 1001);
    assert!(!alive(init), "{}: init {init} is still there", who());
    for c in &cgroups {
        assert!(!c.exists(), "{}: cgroup {} left", who(), c.display());
    }
    let after = snapshot();
    assert_eq!(after, before, "{}: something was left", who());
}

#[test]
fn dropping_a_session_stops_it() {
    let _g = lock();
    let before = snapshot();
    let s = create();
    let init = s.pid();
    drop(s);
    assert!(!alive(init), "{}", who());
    assert_eq!(snapshot(), before, "{}", who());
}

#[test]
fn what_a_named_sandbox_cannot_do_is_refused() {
    let _g = lock();
    let p = Policy::from_json(
        "ws.json",
        r#"{"version": 1, "extends": "default", "workspaces": [{"path": "/tmp", "dst": "/w"}]}"#,
    );
    if let Ok(p) = p {
        let e = Sandbox::new(p).create().expect_err("workspaces refused");
        assert!(e.to_string().contains("workspaces"), "{e}");
    }
    let p = Policy::from_json("nopid.json", r#"{"version": 1, "namespaces": ["user", "mount"]}"#)
        .expect("policy");
    let e = Sandbox::new(p).create().expect_err("no pid namespace");
    assert!(e.to_string().contains("pid"), "{e}");
}

#[test]
fn the_library_tests_as_an_unprivileged_user() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if !common::is_root() {
        if common::required("root") {
            panic!("required feature root is missing: tests run as uid != 0");
        }
        eprintln!("SKIPPED: the tests above already ran unprivileged; the root run needs root (root)");
        return;
    }
    let _g = lock();
    let out = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "--skip",
            "the_library_tests_as_an_unprivileged_user",
            "--skip",
            "cli_",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .uid(ROOTLESS_ID)
        .gid(ROOTLESS_ID)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("re-run as the unprivileged user");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok.") && !stdout.contains(" 0 passed"),
        "the unprivileged run failed: {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    eprintln!("{stderr}");
}
