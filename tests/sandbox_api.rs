//! The library's supervised sandboxes (`cordon::Sandbox`): several at once
//! from one process, each with its own wall-clock limit; `Child::kill`;
//! stdin/stdout/stderr through pipes; and afterwards no fd and no child
//! process left in the calling process.
//!
//! The tests share one lock: they count this process's fds and children
//! before and after. Started as root they run as root (the payloads map to
//! a host id of their own), then again as the unprivileged uid 4321.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cordon::outcome::Status;
use cordon::{PolicyBuilder, Sandbox};

/// Serialises the tests of this binary (fd and child counts are per process).
static LOCK: Mutex<()> = Mutex::new(());

/// Set in the re-run as the unprivileged user.
const CHILD_ENV: &str = "CORDON_SANDBOX_API_UNPRIVILEGED";

fn in_vm() -> bool {
    std::env::var_os("CORDON_VM").is_some()
}

/// The shortest wall-clock limit of the timed-out sandboxes: well above
/// what a quick payload takes (the VM lane runs under software emulation).
fn base_limit() -> Duration {
    if in_vm() {
        // Ten cold sandboxes start at once under emulation: every sleeper
        // must be up, and the quick ones done, well before the first limit.
        // Below the marker sleeps' 29 s (`marker_sleep`), which must
        // outlast every limit.
        Duration::from_secs(20)
    } else {
        Duration::from_secs(2)
    }
}

/// Slack for timings.
fn slack() -> Duration {
    if in_vm() {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(3)
    }
}

use common::cloexec_pipe as pipe;

/// A thread reading `f` to its end.
fn reader(mut f: std::fs::File) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        f.read_to_string(&mut s).expect("read pipe");
        s
    })
}

/// This process's open fds.
fn fds() -> Vec<String> {
    // An fd closed between the listing and its readlink (another thread's,
    // such as the test harness's) is not open: it is left out, rather than
    // listed with an empty target that the next listing would not have.
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter_map(|e| {
            let link = std::fs::read_link(e.path()).ok()?;
            Some(format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                link.display()
            ))
        })
        .collect();
    // The directory read_dir itself had open.
    v.retain(|l| !l.ends_with(&format!("/proc/{}/fd", std::process::id())));
    v.sort();
    v
}

/// This process's children, zombies included: (pid, state, command).
fn children() -> Vec<(u32, String)> {
    let me = std::process::id().to_string();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let state = it.next().unwrap_or("?");
        if it.next() == Some(me.as_str()) {
            v.push((pid, format!("{state} {head})")));
        }
    }
    v
}

/// Runs `f` under the lock and checks that it leaves no fd and no child.
fn leak_checked(f: impl FnOnce()) {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let before = fds();
    assert_eq!(children(), vec![], "children before the test");
    f();
    // A supervisor thread drops its ends as it returns, before join. (The
    // one flake this check had, 1 run in ~16, was fds() itself: an fd of
    // another thread, closed before its readlink, listed with an empty
    // target.)
    assert_eq!(fds(), before, "fds leaked");
    assert_eq!(children(), vec![], "children left (zombies?)");
}

/// A host-unique marker for this process's payloads, as a sleep duration
/// (`sleep 29.NNN`), to find them from the host.
fn marker_sleep() -> String {
    format!("29.{:03}", std::process::id() % 1000 + 1)
}

/// Host processes running exactly `sleep DUR` (not the shells that start them).
fn sleepers(dur: &str) -> Vec<u32> {
    let want = format!("sleep\0{dur}\0");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .collect()
}

#[test]
fn concurrent_sandboxes_each_with_its_own_timeout() {
    leak_checked(|| {
        let sleep = marker_sleep();
        // The marker sleeps must outlast the longest limit (base + 0.8 s).
        assert!(base_limit() + Duration::from_secs(1) < Duration::from_secs(29));
        let mut running = Vec::new();
        let start = Instant::now();
        for i in 0..10u32 {
            // Even: a payload (with a background child) that outlives its
            // limit of 2.0, 2.2, ... 2.8 s (20 s, ... in the VM). Odd: one
            // that exits with code i well before its limit of 60 s.
            let (limit, script) = if i % 2 == 0 {
                (
                    base_limit() + Duration::from_millis(100 * u64::from(i)),
                    format!("echo sandbox {i} pid $$ host $(uname -n); sleep {sleep} & sleep {sleep}; echo not killed"),
                )
            } else {
                (
                    Duration::from_secs(60),
                    format!("echo sandbox {i} pid $$ host $(uname -n); exit {i}"),
                )
            };
            let policy = PolicyBuilder::default_policy()
                .wall_time(limit)
                .build()
                .expect("policy");
            let (out_r, out_w) = pipe();
            let child = Sandbox::new(policy)
                .named(&format!("sandbox {i}"))
                .stdio(None, Some(out_w), None)
                .spawn(&["/bin/sh", "-c", &script])
                .expect("spawn");
            assert!(child.pid() > 0);
            running.push((i, limit, child, reader(out_r)));
        }
        let spawned = start.elapsed();
        // The five long payloads (two sleeps each) all run at once.
        let all_up = common::wait_until(base_limit().as_secs_f64() * 0.8, || sleepers(&sleep).len() == 10);
        let up = sleepers(&sleep).len();
        for (i, limit, child, out) in running {
            let o = child.wait().expect("wait");
            let out = out.join().expect("reader");
            let d = format!("sandbox {i}: {o:?}\nstdout: {out}");
            // pid 1 is cordon's init: the payload is pid 2 of its namespace.
            assert_eq!(
                out.lines().next(),
                Some(format!("sandbox {i} pid 2 host cordon").as_str()),
                "{d}"
            );
            if i % 2 == 0 {
                assert_eq!(o.status, Status::TimedOut, "{d}");
                assert_eq!(o.exit_code, 124, "{d}");
                let wall = Duration::from_millis(o.wall_time_ms);
                assert!(
                    wall >= limit && wall < limit + slack(),
                    "{d}: wall time vs limit {limit:?}"
                );
                assert!(!out.contains("not killed"), "{d}");
            } else {
                assert_eq!(o.status, Status::Exited, "{d}");
                assert_eq!(o.exit_code, i as i32, "{d}");
                // Not held up by the others (nor by their inherited fds).
                assert!(
                    Duration::from_millis(o.wall_time_ms) < base_limit() * 9 / 10,
                    "{d}: took as long as a timed-out neighbour"
                );
            }
        }
        assert!(
            all_up,
            "only {up} of the 10 background and foreground sleeps ran at once"
        );
        // They ran side by side: one after the other would take the sum
        // of the limits (5 x 2.4 s).
        let longest = base_limit() + Duration::from_millis(800);
        assert!(
            start.elapsed() < spawned + longest + slack(),
            "took {:?}: the sandboxes did not run concurrently",
            start.elapsed()
        );
        // Every process of the timed-out sandboxes is gone, the background sleeps too.
        assert!(
            common::wait_until(5.0 * f64::from(common::slow_factor()), || sleepers(&sleep)
                .is_empty()),
            "payload processes survived: {:?}",
            sleepers(&sleep)
        );
        eprintln!(
            "sandbox_api: 10 sandboxes spawned in {spawned:.1?}, all done in {:.1?}",
            start.elapsed()
        );
    });
}

#[test]
fn sandboxes_spawned_from_many_threads_at_once_report_their_own_violations() {
    leak_checked(|| {
        // The default policy with seccomp reports: sandbox i makes i refused
        // unshare calls, each to be counted in its own outcome only.
        let mut v: serde_json::Value =
            serde_json::from_str(cordon::policy::DEFAULT_POLICY_JSON).expect("default policy");
        v["seccomp"]["report"] = serde_json::Value::Bool(true);
        let text = v.to_string();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(10));
        let start = Instant::now();
        let threads: Vec<_> = (1..=10u32)
            .map(|i| {
                let (text, barrier) = (text.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let policy = cordon::Policy::from_json("report.json", &text).expect("policy");
                    let (out_r, out_w) = pipe();
                    let script = format!(
                        "echo sandbox {i}; for n in $(seq {i}); do unshare -U true 2>/dev/null; done; exit {i}"
                    );
                    barrier.wait();
                    let child = Sandbox::new(policy)
                        .stdio(None, Some(out_w), None)
                        .spawn(&["/bin/sh", "-c", &script])
                        .expect("spawn");
                    let out = reader(out_r);
                    (i, child.wait().expect("wait"), out.join().expect("reader"))
                })
            })
            .collect();
        for t in threads {
            let (i, o, out) = t.join().expect("thread");
            let d = format!("sandbox {i}: {o:?}\nstdout: {out}");
            assert_eq!(out, format!("sandbox {i}\n"), "{d}");
            assert_eq!((o.status, o.exit_code), (Status::Exited, i as i32), "{d}");
            assert_eq!(o.violations_total, u64::from(i), "{d}");
            assert_eq!(o.violations.len(), i as usize, "{d}");
            for v in &o.violations {
                assert_eq!(
                    (v.syscall.as_str(), v.exe.as_str()),
                    ("unshare", "/usr/bin/unshare"),
                    "{d}"
                );
            }
        }
        eprintln!(
            "sandbox_api: 10 sandboxes with reports from 10 threads in {:.1?}",
            start.elapsed()
        );
    });
}

#[test]
fn kill_ends_the_sandbox_and_everything_in_it() {
    leak_checked(|| {
        let sleep = marker_sleep();
        let policy = PolicyBuilder::default_policy()
            .wall_time(Duration::from_secs(120))
            .build()
            .expect("policy");
        let script = format!("sleep {sleep} & sleep {sleep}");
        let child = Sandbox::new(policy)
            .spawn(&["/bin/sh", "-c", &script])
            .expect("spawn");
        if !common::wait_until(10.0 + slack().as_secs_f64(), || sleepers(&sleep).len() == 2) {
            let _ = child.kill();
            panic!("the payload did not start: {:?}", child.wait());
        }
        let t = Instant::now();
        child.kill().expect("kill");
        // A second kill is harmless (the pidfd stays valid until wait).
        let _ = child.kill();
        let o = child.wait().expect("wait");
        assert!(t.elapsed() < slack(), "wait took {:?} after kill", t.elapsed());
        assert_eq!(o.status, Status::Signaled, "{o:?}");
        assert_eq!(o.signal, Some(libc::SIGKILL), "{o:?}");
        assert_eq!(o.exit_code, 128 + libc::SIGKILL, "{o:?}");
        assert!(o.wall_time_ms < 60_000, "{o:?}");
        assert!(
            common::wait_until(5.0 * f64::from(common::slow_factor()), || sleepers(&sleep)
                .is_empty()),
            "payload processes survived the kill: {:?}",
            sleepers(&sleep)
        );
    });
}

#[test]
fn stdio_through_pipes() {
    leak_checked(|| {
        let policy = PolicyBuilder::default_policy()
            .wall_time(Duration::from_secs(60))
            .build()
            .expect("policy");
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        let (err_r, err_w) = pipe();
        let in_r = OwnedFd::from(in_r);
        let child = Sandbox::new(policy)
            .stdio(Some(in_r), Some(out_w), Some(err_w))
            .spawn(&[
                "/bin/sh",
                "-c",
                "tr a-z A-Z; echo to-stderr >&2; ls -l /proc/self/fd/ | grep -c . >&2; exit 3",
            ])
            .expect("spawn");
        let (out, err) = (reader(out_r), reader(err_r));
        // More than a pipe buffer, so the payload must run while we write.
        let payload: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let mut w = std::fs::File::from(in_w);
        w.write_all(payload.as_bytes()).expect("write stdin");
        drop(w);
        let o = child.wait().expect("wait");
        let (out, err) = (out.join().expect("stdout"), err.join().expect("stderr"));
        assert_eq!(
            (o.status, o.exit_code),
            (Status::Exited, 3),
            "{o:?}\nstderr: {err}"
        );
        assert_eq!(
            out,
            payload.to_uppercase(),
            "stdout differs ({} bytes)",
            out.len()
        );
        let mut lines = err.lines();
        assert_eq!(lines.next(), Some("to-stderr"), "{err}");
        // `ls` sees 0, 1, 2 and the directory it reads: nothing else inherited
        // (the "total" line counts too).
        assert_eq!(lines.next(), Some("5"), "{err}");
    });
}

#[test]
fn stdio_source_already_at_its_target_number() {
    // A program that runs with fd 0 closed (a daemon) gets fd 0 from its
    // next pipe(): given as the sandbox's stdin, the payload must see it.
    leak_checked(|| {
        // SAFETY: keeps a copy of this process's stdin to put back below;
        // the lock keeps the other tests from opening fds meanwhile.
        let saved = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
        assert!(saved >= 3, "dup stdin: {}", std::io::Error::last_os_error());
        // SAFETY: fd 0 is ours to close; `saved` restores it.
        unsafe { libc::close(0) };
        let (in_r, in_w) = pipe();
        let at_zero = std::os::fd::AsRawFd::as_raw_fd(&in_r) == 0;
        let (out_r, out_w) = pipe();
        let policy = PolicyBuilder::default_policy().build().expect("policy");
        let spawned = Sandbox::new(policy)
            .stdio(Some(OwnedFd::from(in_r)), Some(out_w), None)
            .spawn(&["/bin/sh", "-c", "cat; echo cat=$?"]);
        // SAFETY: fd 0 (the pipe's read end) now belongs to the sandbox's
        // supervisor thread, which keeps it until the sandbox ends: put
        // this process's stdin back only after that, at the end.
        let restore = move || unsafe {
            libc::dup2(saved, 0);
            libc::close(saved);
        };
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                restore();
                panic!("spawn: {e}");
            }
        };
        let out = reader(out_r);
        let mut w = std::fs::File::from(in_w);
        let wrote = w.write_all(b"hello\n");
        drop(w);
        let o = child.wait();
        restore();
        let out = out.join().expect("reader");
        assert!(at_zero, "the test needs the pipe at fd 0");
        wrote.expect("write stdin");
        let o = o.expect("wait");
        assert_eq!(out, "hello\ncat=0\n", "{o:?}");
    });
}

#[test]
fn spawn_refuses_a_policy_without_a_supervisor_layer_and_a_missing_command() {
    leak_checked(|| {
        let exec_policy = PolicyBuilder::exec_policy().build().expect("exec policy");
        match Sandbox::new(exec_policy).named("exec.json").spawn(&["/bin/true"]) {
            Err(cordon::SpawnError::Policy(e)) => {
                let m = e.to_string();
                assert!(m.contains("exec.json") && m.contains("\"pid\" namespace"), "{m}");
            }
            other => panic!("expected a policy error, got {other:?}"),
        }
        let policy = PolicyBuilder::default_policy().build().expect("policy");
        let o = Sandbox::new(policy)
            .spawn(&["/usr/bin/cordon-no-such-command"])
            .expect("spawn")
            .wait()
            .expect("wait");
        assert_eq!((o.status, o.exit_code), (Status::SetupFailed, 127), "{o:?}");
        let bad = PolicyBuilder::default_policy()
            .ro_bind("/nonexistent/cordon-test", "/x")
            .build()
            .expect("policy");
        assert!(
            matches!(
                Sandbox::new(bad).spawn(&["/bin/true"]),
                Err(cordon::SpawnError::Policy(_))
            ),
            "a missing bind source must be refused"
        );
    });
}

#[test]
fn the_same_as_an_unprivileged_user() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let start = Instant::now();
    let args = ["--skip", "the_same_as_an_unprivileged_user", "--nocapture"];
    if let Some((stdout, stderr)) = common::rerun_unprivileged(CHILD_ENV, &args) {
        assert!(
            stdout.contains("test result: ok. 6 passed"),
            "the unprivileged run did not run the 6 tests\nstdout: {stdout}\nstderr: {stderr}"
        );
        eprintln!(
            "sandbox_api: the unprivileged re-run took {:.1?}",
            start.elapsed()
        );
    }
}
