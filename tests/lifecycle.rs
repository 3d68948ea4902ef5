//! The lifecycle of a sandbox: exit codes, time limits, signals, the death
//! of cordon, refused policies, leaks over many runs, the outcome report,
//! `cordon check` and rlimits.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Every test holds this shared; the leak test holds it exclusively, so that
/// no other test of this file has children, fds or cordon processes while it
/// takes its before/after snapshots.
static LOCK: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    LOCK.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    LOCK.write().unwrap_or_else(|e| e.into_inner())
}

/// Everything needed to diagnose a run.
fn diag(mode: Mode, r: &Run) -> String {
    format!(
        "mode: {mode:?}\nexit: {:?}\noutcome: {}\nstdout:\n{}\nstderr:\n{}",
        r.output.status,
        r.status
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "<none>".to_string()),
        r.stdout(),
        r.stderr()
    )
}

/// A number unique to this test process, test and mode, for `sleep N`
/// payloads that the test looks for on the host.
fn uniq(base: u32, mode: Mode) -> String {
    let m = match mode {
        Mode::Root => 1,
        Mode::Rootless => 2,
    };
    format!("{base}{m}{}", std::process::id() % 100_000)
}

/// Host processes that are exactly `sleep N` (not a shell whose script
/// mentions it).
fn sleepers(n: &str) -> Vec<u32> {
    let want = format!("sleep\0{n}\0");
    host_processes_with(&format!("sleep {n}"))
        .into_iter()
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .collect()
}

/// A spawned cordon, killed and reaped if the test ends before it does.
struct Spawned(Child);

impl Spawned {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Wait up to `secs` for cordon to exit.
    fn wait(&mut self, secs: f64) -> Option<ExitStatus> {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        loop {
            if let Some(st) = self.0.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stdout_rest(&mut self) -> String {
        let mut s = String::new();
        if let Some(o) = self.0.stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    }

    fn stderr_rest(&mut self) -> String {
        let mut s = String::new();
        if let Some(o) = self.0.stderr.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Start `cordon run ARGS -- CMD` in `mode` without waiting for it.
fn spawn(mode: Mode, args: &[&str], cmd: &[&str], stdout: Stdio, stderr: Stdio) -> Spawned {
    let mut c = cordon(mode);
    c.arg("run")
        .args(args)
        .arg("--")
        .args(cmd)
        .stdout(stdout)
        .stderr(stderr);
    Spawned(c.spawn().expect("spawn cordon"))
}

/// The built-in default policy text with `from` replaced by `to` (which
/// must occur exactly once).
fn default_policy_with(from: &str, to: &str) -> String {
    let text = cordon::policy::DEFAULT_POLICY_JSON;
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in the default policy"
    );
    text.replacen(from, to, 1)
}

/// The built-in default policy with its `limits` replaced.
fn default_policy_with_limits(limits: serde_json::Value) -> String {
    let mut p: serde_json::Value =
        serde_json::from_str(cordon::policy::DEFAULT_POLICY_JSON).expect("default policy is JSON");
    p["limits"] = limits;
    serde_json::to_string_pretty(&p).expect("policy JSON")
}

/// 1-based line and the 1-based column range (in characters) of `needle`
/// in `text`.
fn position_of(text: &str, needle: &str) -> (usize, usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in policy"));
    let line = text[..at].matches('\n').count() + 1;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let first = text[line_start..at].chars().count() + 1;
    let last = first + needle.chars().count() - 1;
    (line, first, last)
}

/// The `LINE:COL` cordon printed right after `file:` in `stderr`.
fn reported_position(stderr: &str, file: &str) -> Option<(usize, usize)> {
    let rest = &stderr[stderr.find(&format!("{file}:"))? + file.len() + 1..];
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let col = parts.next()?.parse().ok()?;
    Some((line, col))
}

// ---------------------------------------------------------------------------
// 1. The exit-code table.

#[test]
fn exit_code_is_the_payloads() {
    let _g = shared();
    for mode in modes() {
        let r = sh(mode, &[], "exit 3");
        assert_eq!(r.code(), 3, "exit 3\n{}", diag(mode, &r));
        assert_eq!(r.outcome_status(), "exited", "exit 3\n{}", diag(mode, &r));
        let code = r.status.as_ref().map(|s| s["exit_code"].clone());
        assert_eq!(code, Some(serde_json::json!(3)), "exit 3\n{}", diag(mode, &r));

        let r = sh(mode, &[], "exit 0");
        assert_eq!(r.code(), 0, "exit 0\n{}", diag(mode, &r));
        assert_eq!(r.outcome_status(), "exited", "exit 0\n{}", diag(mode, &r));
    }
}

#[test]
fn signal_death_is_128_plus_n() {
    let _g = shared();
    for mode in modes() {
        for (sig, name) in [(15, "TERM"), (9, "KILL")] {
            let r = sh(mode, &[], &format!("kill -{name} $$; sleep 5"));
            let d = diag(mode, &r);
            assert_eq!(r.code(), 128 + sig, "kill -{name}\n{d}");
            assert_eq!(r.outcome_status(), "signaled", "kill -{name}\n{d}");
            let st = r.status.as_ref().unwrap_or_else(|| panic!("no outcome\n{d}"));
            assert_eq!(st["signal"], sig, "kill -{name}\n{d}");
            assert_eq!(st["exit_code"], 128 + sig, "kill -{name}\n{d}");
        }
    }
}

#[test]
fn timeout_is_124() {
    let _g = shared();
    for mode in modes() {
        let t = Instant::now();
        let r = run(mode, &["--time-limit", "300ms"], &["sleep", "10"]);
        let took = t.elapsed();
        let d = diag(mode, &r);
        assert_eq!(r.code(), 124, "sleep 10 with a 300ms limit\n{d}");
        assert_eq!(r.outcome_status(), "timed_out", "{d}");
        assert!(
            took < Duration::from_secs(5),
            "took {took:?}: the limit was not enforced promptly\n{d}"
        );
        assert!(
            took >= Duration::from_millis(250),
            "took only {took:?}: killed before the limit\n{d}"
        );

        // Finishing inside the limit is a normal exit.
        let r = run(mode, &["--time-limit", "5s"], &["sleep", "0.1"]);
        let d = diag(mode, &r);
        assert_eq!(r.code(), 0, "sleep 0.1 with a 5s limit\n{d}");
        assert_eq!(r.outcome_status(), "exited", "{d}");
    }
}

#[test]
fn setup_failure_is_125() {
    let _g = shared();
    for mode in modes() {
        let dir = TempDir::new("setup125");
        let missing = format!("{}/does-not-exist", dir.str());
        let pol = default_policy_with(
            "{\"bind\": \"/usr\", \"readonly\": true},",
            &format!("{{\"bind\": \"/usr\", \"readonly\": true}},\n    {{\"bind\": \"{missing}\"}},"),
        );
        let file = write_policy(&dir, "missing.json", &pol);
        let r = run(mode, &["--policy", &file], &["/bin/true"]);
        let d = diag(mode, &r);
        assert_eq!(r.code(), 125, "bind of a missing source\n{d}");
        assert!(
            r.stderr().contains("mounts[1].bind") || r.stderr().contains(&missing),
            "stderr should name mounts[1].bind or {missing}\n{d}"
        );
        assert_eq!(r.outcome_status(), "setup_failed", "{d}");

        let r = run(mode, &["--ro-bind", "/etc/shadow"], &["/bin/true"]);
        let d = diag(mode, &r);
        assert_eq!(r.code(), 125, "--ro-bind /etc/shadow\n{d}");
        assert!(
            r.stderr().contains("sensitive"),
            "stderr should say the path is sensitive\n{d}"
        );
        assert!(
            r.stderr().contains("/etc/shadow"),
            "stderr should name /etc/shadow\n{d}"
        );
        assert_eq!(r.outcome_status(), "setup_failed", "{d}");
    }
}

#[test]
fn not_executable_is_126() {
    let _g = shared();
    for mode in modes() {
        // Bound by the default policy, readable, not executable.
        let r = run(mode, &[], &["/etc/ld.so.cache"]);
        assert_eq!(r.code(), 126, "/etc/ld.so.cache\n{}", diag(mode, &r));

        let dir = TempDir::new("noexec");
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 7\n").expect("write script");
        let bind = format!("{}:/w", dir.str());
        set_mode(&script, 0o644);
        // Read-only: the default policy's Landlock rules let a read-only
        // bind be executed (a writable one is not).
        let r = run(mode, &["--ro-bind", &bind], &["/w/s.sh"]);
        assert_eq!(r.code(), 126, "script without x bit\n{}", diag(mode, &r));

        // The same script with its x bit runs: the 126 was about the mode.
        set_mode(&script, 0o755);
        let r = run(mode, &["--ro-bind", &bind], &["/w/s.sh"]);
        assert_eq!(r.code(), 7, "script with x bit\n{}", diag(mode, &r));
    }
}

#[test]
fn not_found_is_127() {
    let _g = shared();
    for mode in modes() {
        let r = run(mode, &[], &["nosuchprogram-xyz"]);
        assert_eq!(r.code(), 127, "nosuchprogram-xyz\n{}", diag(mode, &r));
        assert!(
            r.stderr().contains("nosuchprogram-xyz"),
            "stderr should name the command\n{}",
            diag(mode, &r)
        );

        let r = run(mode, &[], &["/usr/bin/nosuch"]);
        assert_eq!(r.code(), 127, "/usr/bin/nosuch\n{}", diag(mode, &r));

        // A program that exists is found the same way.
        let r = run(mode, &[], &["true"]);
        assert_eq!(r.code(), 0, "true\n{}", diag(mode, &r));
    }
}

// ---------------------------------------------------------------------------
// 2. Daemons do not outlive the sandbox.

#[test]
fn time_limit_kills_double_forked_setsid_daemons() {
    let _g = shared();
    for mode in modes() {
        let n = uniq(987001, mode);
        let script = format!("setsid sh -c \"sleep {n} & exit\" ; sleep 1000");
        let mut c = spawn(
            mode,
            &["--time-limit", "1s"],
            &["sh", "-c", &script],
            Stdio::piped(),
            Stdio::piped(),
        );
        let seen = wait_until(5.0, || !sleepers(&n).is_empty());
        let started = Instant::now();
        let st = c.wait(30.0);
        let (out, err) = (c.stdout_rest(), c.stderr_rest());
        let d = format!("mode: {mode:?}\nexit: {st:?}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(seen, "the daemon `sleep {n}` never showed up on the host\n{d}");
        let st = st.unwrap_or_else(|| panic!("cordon did not exit within 30 s of a 1 s limit\n{d}"));
        assert_eq!(st.code(), Some(124), "{d}");
        assert!(started.elapsed() < Duration::from_secs(5), "{d}");
        let gone = wait_until(1.0, || sleepers(&n).is_empty());
        assert!(
            gone,
            "daemon `sleep {n}` survived the timeout: pids {:?}\n{d}",
            sleepers(&n)
        );
        // Nor does the payload shell (whose script mentions the number).
        let all_gone = wait_until(1.0, || host_processes_with(&n).is_empty());
        assert!(
            all_gone,
            "sandbox processes survived the timeout: {:?}\n{d}",
            host_processes_with(&n)
        );
    }
}

#[test]
fn daemons_die_when_the_payload_exits() {
    let _g = shared();
    for mode in modes() {
        let n = uniq(987002, mode);
        // The payload waits for a line on stdin, so the test can first see
        // the daemon running.
        let script = format!("setsid sh -c \"sleep {n} & exit\"; read line; exit 0");
        let mut c = cordon(mode);
        c.arg("run")
            .args(["--time-limit", "30s", "--", "sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut c = Spawned(c.spawn().expect("spawn cordon"));
        let seen = wait_until(5.0, || !sleepers(&n).is_empty());
        {
            use std::io::Write;
            let mut stdin = c.0.stdin.take().expect("stdin");
            let _ = stdin.write_all(b"go\n");
        }
        let st = c.wait(10.0);
        let left = sleepers(&n);
        let (out, err) = (c.stdout_rest(), c.stderr_rest());
        let d = format!("mode: {mode:?}\nexit: {st:?}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(seen, "the daemon `sleep {n}` never showed up on the host\n{d}");
        let st = st.unwrap_or_else(|| panic!("cordon did not exit after the payload did\n{d}"));
        assert_eq!(st.code(), Some(0), "{d}");
        assert!(
            left.is_empty(),
            "daemon `sleep {n}` outlived the payload: pids {left:?}\n{d}"
        );
    }
}

// ---------------------------------------------------------------------------
// 3. Signals sent to cordon reach the payload.

const SIGNAL_SCRIPT: &str = r#"
import os, signal, sys, time
def handler(signum, frame):
    # os.write: the signal may arrive while sys.stdout is still flushing "ready".
    os.write(1, ("got " + signal.Signals(signum).name + "\n").encode())
    os._exit(40 + signum)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, handler)
sys.stdout.write("ready\n")
sys.stdout.flush()
# Short sleeps: a signal that lands between Python's last check and the
# start of a long sleep would otherwise wait for the whole sleep.
for _ in range(600):
    time.sleep(0.05)
os._exit(3)
"#;

#[test]
fn signals_to_cordon_reach_the_payload() {
    require!("python3", have_python(), "python3 is not installed");
    let _g = shared();
    for mode in modes() {
        for (sig, name) in [
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGHUP, "SIGHUP"),
        ] {
            let mut c = spawn(
                mode,
                &["--time-limit", "20s"],
                &["/usr/bin/python3", "-c", SIGNAL_SCRIPT],
                Stdio::piped(),
                Stdio::piped(),
            );
            let mut reader = BufReader::new(c.0.stdout.take().expect("stdout"));
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            if first == "ready\n" {
                // SAFETY: plain kill(2) on our own child's pid.
                let r = unsafe { libc::kill(c.pid(), sig) };
                assert_eq!(r, 0, "{mode:?}: kill {name}: {}", std::io::Error::last_os_error());
            }
            let st = c.wait(15.0);
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            let err = c.stderr_rest();
            let d = format!(
                "mode: {mode:?} signal: {name}\nexit: {st:?}\nstdout:\n{first}{rest}\nstderr:\n{err}"
            );
            assert_eq!(first, "ready\n", "the payload never got ready\n{d}");
            let st = st.unwrap_or_else(|| panic!("cordon did not exit after {name}\n{d}"));
            assert_eq!(st.code(), Some(40 + sig), "{d}");
            assert_eq!(rest, format!("got {name}\n"), "{d}");
        }
    }
}

/// The payload for [`a_signal_sent_to_init_from_outside_reaches_the_payload`]:
/// it takes signal 34 (glibc's SIGRTMIN, musl's SIGSYNCCALL).
const RT_SIGNAL_SCRIPT: &str = r#"
import os, signal, sys, time
def handler(signum, frame):
    os.write(1, ("got " + str(signum) + "\n").encode())
    os._exit(40 + signum)
signal.signal(34, handler)
sys.stdout.write("ready\n")
sys.stdout.flush()
for _ in range(600):
    time.sleep(0.05)
os._exit(3)
"#;

/// The sandbox's init as the host sees it: the child of cordon's process.
fn init_of(cordon: i32) -> Option<i32> {
    let tasks = std::fs::read_dir(format!("/proc/{cordon}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .next()
}

/// init blocks every signal and forwards what it gets to the payload,
/// including those the C library cordon is built with keeps for itself
/// and leaves out of sigfillset (glibc 32 and 33, musl 32 to 34): under
/// musl those have no handler in init, so the kernel dropped a signal 34
/// from outside (a pid namespace's init gets no signal it has no handler
/// for) instead of init forwarding it.
#[test]
fn a_signal_sent_to_init_from_outside_reaches_the_payload() {
    require!("python3", have_python(), "python3 is not installed");
    let _g = shared();
    for mode in modes() {
        let mut c = spawn(
            mode,
            &["--time-limit", "20s"],
            &["/usr/bin/python3", "-c", RT_SIGNAL_SCRIPT],
            Stdio::piped(),
            Stdio::piped(),
        );
        let mut reader = BufReader::new(c.0.stdout.take().expect("stdout"));
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let init = init_of(c.pid());
        if let (true, Some(init)) = (first == "ready\n", init) {
            // SAFETY: plain kill(2) on the init of our own child.
            let r = unsafe { libc::kill(init, 34) };
            assert_eq!(r, 0, "{mode:?}: kill 34: {}", std::io::Error::last_os_error());
        }
        let st = c.wait(15.0);
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        let err = c.stderr_rest();
        let d =
            format!("mode: {mode:?} init: {init:?}\nexit: {st:?}\nstdout:\n{first}{rest}\nstderr:\n{err}");
        assert_eq!(first, "ready\n", "the payload never got ready\n{d}");
        assert!(init.is_some(), "no child of cordon found in /proc\n{d}");
        let st = st.unwrap_or_else(|| panic!("cordon did not exit after signal 34\n{d}"));
        assert_eq!(rest, "got 34\n", "{d}");
        assert_eq!(st.code(), Some(40 + 34), "{d}");
    }
}

// ---------------------------------------------------------------------------
// 4. The sandbox does not outlive cordon.

#[test]
fn sandbox_dies_with_cordon() {
    let _g = shared();
    for mode in modes() {
        let n = uniq(987003, mode);
        let mut c = spawn(mode, &[], &["sleep", &n], Stdio::null(), Stdio::piped());
        let seen = wait_until(5.0, || !sleepers(&n).is_empty());
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(c.pid(), libc::SIGKILL) };
        let st = c.wait(5.0);
        let gone = wait_until(2.0, || sleepers(&n).is_empty());
        let err = c.stderr_rest();
        let d = format!("mode: {mode:?}\nexit: {st:?}\nstdout: <not captured>\nstderr:\n{err}");
        assert!(seen, "`sleep {n}` never showed up on the host\n{d}");
        let st = st.unwrap_or_else(|| panic!("SIGKILLed cordon was not reaped\n{d}"));
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{d}");
        assert!(
            gone,
            "`sleep {n}` outlived cordon by 2 s: pids {:?}\n{d}",
            sleepers(&n)
        );
    }
}

// ---------------------------------------------------------------------------
// 5. Bad policies are refused before anything runs.

#[test]
fn bad_policies_are_refused_and_nothing_runs() {
    let _g = shared();
    let mounts_before = |text: &str, needle: &str| -> usize {
        let start = text.find("\"mounts\": [").expect("mounts");
        let at = text.find(needle).expect("needle");
        text[start..=at].matches("\n    {").count() - 1
    };
    // (name, policy text, the text holding the bad field, field path)
    let mut cases: Vec<(&str, String, String, String)> = Vec::new();
    let pol = default_policy_with("\"hostname\": \"cordon\"", "\"hostnmae\": \"cordon\"");
    cases.push((
        "unknown field",
        pol,
        "\"hostnmae\": \"cordon\"".into(),
        "hostnmae".into(),
    ));
    let pol = default_policy_with("\"size\": \"64M\"", "\"size\": \"64Q\"");
    let i = mounts_before(&pol, "\"size\": \"64Q\"");
    cases.push((
        "bad size",
        pol,
        "\"size\": \"64Q\"".into(),
        format!("mounts[{i}].size"),
    ));
    let pol = default_policy_with(
        "{\"proc\": \"/proc\"},",
        "{\"bind\": \"/root\"},\n    {\"proc\": \"/proc\"},",
    );
    let i = mounts_before(&pol, "{\"bind\": \"/root\"}");
    cases.push((
        "sensitive source",
        pol,
        "{\"bind\": \"/root\"}".into(),
        format!("mounts[{i}].bind"),
    ));
    let pol = default_policy_with("\"limits\": {", "\"limits\": {\n    \"wall_time\": \"5\",\n   ");
    cases.push((
        "duration without unit",
        pol,
        "\"wall_time\": \"5\"".into(),
        "limits.wall_time".into(),
    ));

    let mut failures = Vec::new();
    for mode in modes() {
        let dir = TempDir::new("badpol");
        let work = TempDir::new("badpol-w");
        let bind = format!("{}:/w", work.str());
        let marker = work.path().join("ran");

        // Control: with a good policy the payload does leave the marker.
        let good = write_policy(&dir, "good.json", cordon::policy::DEFAULT_POLICY_JSON);
        let r = run(mode, &["--policy", &good, "--bind", &bind], &["touch", "/w/ran"]);
        assert_eq!(r.code(), 0, "good policy\n{}", diag(mode, &r));
        assert!(marker.exists(), "good policy: no marker\n{}", diag(mode, &r));
        std::fs::remove_file(&marker).expect("remove marker");

        for (k, (name, text, needle, field)) in cases.iter().enumerate() {
            let file = write_policy(&dir, &format!("bad{k}.json"), text);
            let (line, first, last) = position_of(text, needle);
            let r = run(mode, &["--policy", &file, "--bind", &bind], &["touch", "/w/ran"]);
            let err = r.stderr();
            let pos = reported_position(&err, &file);
            let mut wrong = Vec::new();
            if r.code() != 125 {
                wrong.push(format!("exit code {} instead of 125", r.code()));
            }
            if marker.exists() {
                wrong.push("the payload ran despite the bad policy".to_string());
                let _ = std::fs::remove_file(&marker);
            }
            if r.outcome_status() != "setup_failed" {
                wrong.push(format!(
                    "outcome status {} instead of setup_failed",
                    r.outcome_status()
                ));
            }
            if !err.contains(&file) {
                wrong.push(format!("stderr does not name {file}"));
            }
            if !err.contains(&format!(": {field}: ")) {
                wrong.push(format!("stderr does not name the field {field}"));
            }
            if !pos.is_some_and(|(l, c)| l == line && (first..=last).contains(&c)) {
                wrong.push(format!(
                    "stderr should point at line {line}, columns {first}..={last}; got {pos:?}"
                ));
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "case: {name} ({mode:?})\n  {}\npolicy:\n{text}\n{}",
                    wrong.join("\n  "),
                    diag(mode, &r)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// 6. Nothing leaks over many runs.

#[derive(Debug, PartialEq)]
struct Snapshot {
    mountinfo_lines: usize,
    fds: usize,
    children: Vec<String>,
    zombies: Vec<u32>,
    cordon_procs: Vec<String>,
}

fn comm_of(pid: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

fn snapshot() -> Snapshot {
    let me = std::process::id();
    // A sandbox init forked from this test carries the comm of the thread
    // that launched it (the test's name); the payload execs and gets its own.
    let my_comms = [
        comm_of("self").expect("own comm"),
        comm_of("thread-self").expect("thread comm"),
    ];
    let mountinfo_lines = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .count();
    let fds = std::fs::read_dir("/proc/self/fd").expect("fds").count();
    let mut children = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").expect("tasks").flatten() {
        let c = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        children.extend(c.split_whitespace().map(str::to_string));
    }
    // pid -> (comm, state, ppid)
    let mut procs = std::collections::BTreeMap::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let after = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
        let mut f = after.split_whitespace();
        let state = f.next().unwrap_or("").to_string();
        let ppid: u32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let comm = comm_of(&pid.to_string()).unwrap_or_default();
        procs.insert(pid, (comm, state, ppid));
    }
    let descends_from_me = |mut pid: u32| {
        for _ in 0..64 {
            match procs.get(&pid) {
                Some((_, _, ppid)) if *ppid == me => return true,
                Some((_, _, ppid)) if *ppid > 1 => pid = *ppid,
                _ => return false,
            }
        }
        false
    };
    let mut zombies = Vec::new();
    let mut cordon_procs = Vec::new();
    for (&pid, (comm, state, ppid)) in &procs {
        if pid == me {
            continue;
        }
        if state == "Z" && *ppid == me {
            zombies.push(pid);
        }
        // cordon processes started from here (host-wide ones may belong to
        // other test runs), and anything carrying this test's comm.
        if (comm.contains("cordon") && descends_from_me(pid)) || my_comms.contains(comm) {
            cordon_procs.push(format!("{pid}:{comm}"));
        }
    }
    Snapshot {
        mountinfo_lines,
        fds,
        children,
        zombies,
        cordon_procs,
    }
}

#[test]
fn no_leaks_after_200_sandboxes() {
    require!("root", is_root(), "in-process launches need root");
    let _g = exclusive();
    let policy = cordon::policy::Policy::builtin_default().expect("default policy");
    let plan = cordon::plan::Plan::build(&policy, "default", &["/bin/true"]).expect("plan");
    let before = snapshot();
    for i in 0..200 {
        let o = cordon::launch::run(&plan, cordon::launch::RunOptions::default())
            .unwrap_or_else(|e| panic!("in-process (root) run {i}: launch failed: {e}"));
        assert_eq!(
            (o.status, o.exit_code),
            (cordon::outcome::Status::Exited, 0),
            "in-process (root) run {i}: outcome {}",
            o.to_json()
        );
    }
    let after = snapshot();
    let d = format!("mode: in-process (root)\nbefore: {before:?}\nafter: {after:?}");
    assert_eq!(
        after.mountinfo_lines, before.mountinfo_lines,
        "host mounts changed\n{d}"
    );
    assert!(after.fds <= before.fds, "fds leaked\n{d}");
    assert!(after.children.is_empty(), "children left\n{d}");
    assert!(after.zombies.is_empty(), "zombies left\n{d}");
    assert!(
        after.cordon_procs.len() <= before.cordon_procs.len(),
        "processes left\n{d}"
    );
}

// ---------------------------------------------------------------------------
// 7. The outcome report.

const USAGE_SCRIPT: &str = r#"
import time
t = time.process_time()
while time.process_time() - t < 0.3:
    pass
b = bytearray(50 * 1024 * 1024)
for i in range(0, len(b), 4096):
    b[i] = 1
print("done", len(b))
"#;

#[test]
fn outcome_json_reports_usage() {
    require!("python3", have_python(), "python3 is not installed");
    let _g = shared();
    for mode in modes() {
        let r = py(mode, &[], USAGE_SCRIPT);
        let d = diag(mode, &r);
        assert_eq!(r.code(), 0, "{d}");
        assert_eq!(r.stdout(), format!("done {}\n", 50 * 1024 * 1024), "{d}");
        let st = r.status.as_ref().unwrap_or_else(|| panic!("no outcome\n{d}"));
        assert_eq!(st["status"], "exited", "{d}");
        assert_eq!(st["exit_code"], 0, "{d}");
        let num = |k: &str| {
            st[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{k} is not a number\n{d}"))
        };
        let (wall, user, sys) = (num("wall_time_ms"), num("user_time_ms"), num("system_time_ms"));
        let (rss, srss) = (num("max_rss_kb"), num("supervisor_max_rss_kb"));
        assert!(
            user + sys >= 100,
            "cpu time {user}+{sys} ms for a 300 ms busy loop\n{d}"
        );
        assert!(wall + 50 >= user, "wall {wall} ms < user {user} ms\n{d}");
        assert!(wall >= 300, "wall {wall} ms for a 300 ms busy loop\n{d}");
        assert!(rss >= 40_000, "max_rss_kb {rss} after touching 50 MiB\n{d}");
        assert!(srss > 0, "supervisor_max_rss_kb is 0\n{d}");
        assert!(
            srss < rss,
            "the supervisor ({srss} KiB) should be far smaller than the payload\n{d}"
        );
        assert_eq!(common::unenforced_by_policy(st), serde_json::json!([]), "{d}");
    }
}

#[test]
fn status_fd_writes_the_outcome() {
    let _g = shared();
    for mode in modes() {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
        let (rd, wr) = (fds[0], fds[1]);
        let mut c = cordon(mode);
        // SAFETY: the closure only makes async-signal-safe system calls.
        unsafe {
            c.pre_exec(move || {
                let r = if wr == 7 {
                    libc::fcntl(7, libc::F_SETFD, 0)
                } else {
                    libc::dup2(wr, 7)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let run = run_with(c, &["--status-fd", "7"], &["sh", "-c", "exit 0"]);
        // SAFETY: wr is our write end; closing it lets the read see EOF.
        unsafe { libc::close(wr) };
        // SAFETY: rd is a pipe fd we own from here on.
        let mut reader = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(rd) };
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        let d = format!("status-fd text: {text:?}\n{}", diag(mode, &run));
        assert_eq!(run.code(), 0, "{d}");
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("status-fd output is not JSON: {e}\n{d}"));
        assert_eq!(v["status"], "exited", "{d}");
        assert_eq!(v["exit_code"], 0, "{d}");
        assert_eq!(
            Some(&v),
            run.status.as_ref(),
            "status-fd and status-json differ\n{d}"
        );
    }
}

// ---------------------------------------------------------------------------
// 8. cordon check.

#[test]
fn check_prints_the_effective_policy() {
    let _g = shared();
    for mode in modes() {
        let out = cordon(mode)
            .args(["check", "--hostname", "h1", "--tmpfs", "/scratch:8M"])
            .output()
            .expect("spawn cordon");
        let (so, se) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let d = format!(
            "mode: {mode:?}\nexit: {:?}\nstdout:\n{so}\nstderr:\n{se}",
            out.status
        );
        assert_eq!(out.status.code(), Some(0), "{d}");
        let v: serde_json::Value =
            serde_json::from_str(&so).unwrap_or_else(|e| panic!("check output is not JSON: {e}\n{d}"));
        assert_eq!(v["hostname"], "h1", "{d}");
        let mounts = v["mounts"].as_array().unwrap_or_else(|| panic!("no mounts\n{d}"));
        let scratch: Vec<_> = mounts.iter().filter(|m| m["tmpfs"] == "/scratch").collect();
        assert_eq!(scratch.len(), 1, "one tmpfs /scratch expected\n{d}");
        assert_eq!(scratch[0]["size"], "8M", "{d}");
        // The default policy's own entries are still there.
        assert!(mounts.iter().any(|m| m["tmpfs"] == "/tmp"), "{d}");

        let dir = TempDir::new("checkbad");
        let text = default_policy_with("\"hostname\": \"cordon\"", "\"hostnmae\": \"cordon\"");
        let file = write_policy(&dir, "bad.json", &text);
        let (line, first, last) = position_of(&text, "\"hostnmae\": \"cordon\"");
        let out = cordon(mode)
            .args(["check", "--policy", &file])
            .output()
            .expect("spawn cordon");
        let (so, se) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let d = format!(
            "mode: {mode:?}\nexit: {:?}\nstdout:\n{so}\nstderr:\n{se}",
            out.status
        );
        assert_eq!(out.status.code(), Some(125), "{d}");
        assert!(so.is_empty(), "nothing should be printed on stdout\n{d}");
        let pos = reported_position(&se, &file);
        assert!(
            pos.is_some_and(|(l, c)| l == line && (first..=last).contains(&c)),
            "stderr should point at line {line}, columns {first}..={last}; got {pos:?}\n{d}"
        );
        assert!(se.contains(": hostnmae: "), "{d}");
    }
}

// ---------------------------------------------------------------------------
// 9. rlimits.

#[test]
fn rlimits_are_applied() {
    let _g = shared();
    let text = default_policy_with_limits(
        serde_json::json!({"open_files": 64, "file_size": "1M", "cpu_time": "1s", "core_dumps": false}),
    );
    for mode in modes() {
        let dir = TempDir::new("rlimits");
        let file = write_policy(&dir, "limits.json", &text);
        let pol = ["--policy", file.as_str(), "--time-limit", "20s"];

        let r = sh(mode, &pol, "ulimit -n; ulimit -c");
        assert_eq!(r.code(), 0, "{}", diag(mode, &r));
        assert_eq!(r.stdout(), "64\n0\n", "ulimit -n / -c\n{}", diag(mode, &r));

        let r = sh(
            mode,
            &pol,
            "head -c 2000000 /dev/zero > /tmp/f; echo big=$?; wc -c < /tmp/f; \
             head -c 500000 /dev/zero > /tmp/g; echo small=$?; wc -c < /tmp/g",
        );
        let d = diag(mode, &r);
        assert_eq!(r.code(), 0, "{d}");
        let out = r.stdout();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{d}");
        assert_ne!(lines[0], "big=0", "a 2 MB write passed a 1M file_size limit\n{d}");
        let big: u64 = lines[1].trim().parse().unwrap_or(u64::MAX);
        assert!(big <= 1 << 20, "/tmp/f grew to {big} bytes\n{d}");
        assert_eq!(lines[2], "small=0", "a 500 KB write failed\n{d}");
        assert_eq!(lines[3].trim(), "500000", "{d}");

        let t = Instant::now();
        let r = sh(mode, &pol, "while :; do :; done");
        let took = t.elapsed();
        let d = format!("took {took:?}\n{}", diag(mode, &r));
        assert!(
            r.code() == 128 + libc::SIGXCPU || r.code() == 128 + libc::SIGKILL,
            "a busy loop should die of SIGXCPU/SIGKILL under a 1s cpu_time limit\n{d}"
        );
        assert_eq!(r.outcome_status(), "signaled", "{d}");
        assert!(took < Duration::from_secs(4), "{d}");
    }
}

const FORK_SCRIPT: &str = r#"
import os, time
n = 0
err = None
for i in range(50):
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
print(n, err)
"#;

#[test]
fn process_limit_stops_a_fork_loop() {
    require!("python3", have_python(), "python3 is not installed");
    let _g = shared();
    let text = default_policy_with_limits(serde_json::json!({"processes": 20, "core_dumps": false}));
    for mode in modes() {
        let dir = TempDir::new("nproc");
        let file = write_policy(&dir, "nproc.json", &text);
        let r = py(mode, &["--policy", &file, "--time-limit", "20s"], FORK_SCRIPT);
        let d = diag(mode, &r);
        assert_eq!(r.code(), 0, "{d}");
        let out = r.stdout();
        let mut f = out.split_whitespace();
        let n: u32 = f
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count\n{d}"));
        assert!(n < 50, "all 50 forks succeeded under a 20-process limit\n{d}");
        assert!(
            n >= 10,
            "only {n} forks succeeded: the limit is far tighter than 20\n{d}"
        );
        assert_eq!(
            f.next(),
            Some(libc::EAGAIN.to_string().as_str()),
            "fork should fail with EAGAIN\n{d}"
        );
        // The host is not affected.
        let st = std::process::Command::new("/bin/true")
            .status()
            .expect("host fork");
        assert!(st.success(), "{d}");
    }
}
