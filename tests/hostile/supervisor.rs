//! Payloads that attack the supervisor itself: floods of seccomp
//! notifications that would keep it from enforcing the wall-clock limit or
//! burn its (uncounted) CPU, refused calls made from a thread other than the
//! main one, and payloads that stop themselves or ignore SIGTERM so that
//! cordon would never end.

use crate::common::*;
use crate::require;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The grace period cordon gives a payload after a terminating signal
/// before it kills the whole sandbox (`cordon::launch::parent::TERM_GRACE`).
const GRACE: Duration = cordon::launch::parent::TERM_GRACE;

/// The hostile payload: `flood N` (N threads are started, then they and the
/// main one call a refused syscall in a loop, forever), `thread CALL` (a second thread makes the
/// call; the process then prints "survived"), `count N` (N refused calls
/// from the main thread, then prints "done"), `fill MARKER` (fills stderr,
/// then refused calls forever).
const PAYLOAD_C: &str = r#"
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t go;

static void *flood(void *arg) {
    if (arg)
        pthread_barrier_wait(&go);
    for (;;)
        syscall(SYS_ptrace, 0, 0, 0, 0);
    return NULL;
}

static long thread_ret;
static void *one_ptrace(void *arg) {
    (void)arg;
    thread_ret = syscall(SYS_ptrace, 0, 0, 0, 0);
    return NULL;
}
static void *one_getpid(void *arg) {
    (void)arg;
    thread_ret = syscall(SYS_getpid);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    if (!strcmp(argv[1], "flood")) {
        /* Every thread is created before the flood starts, so that a slow
           machine does not spend the time limit creating them. */
        int n = atoi(argv[2]), started = 0;
        pthread_t *ts = calloc(n, sizeof *ts);
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 64 * 1024);
        pthread_barrier_init(&go, NULL, n + 1);
        for (int i = 0; i < n; i++)
            if (pthread_create(&ts[i], &a, flood, &go) != 0)
                break;
            else
                started++;
        if (started < n) {
            printf("only %d threads\n", started);
            return 4;
        }
        printf("started %d\n", started);
        fflush(stdout);
        pthread_barrier_wait(&go);
        flood(NULL);
    }
    if (!strcmp(argv[1], "thread")) {
        pthread_t t;
        if (pthread_create(&t, NULL, !strcmp(argv[2], "ptrace") ? one_ptrace : one_getpid, NULL))
            return 3;
        pthread_join(t, NULL);
        printf("survived %ld\n", thread_ret);
        return 0;
    }
    if (!strcmp(argv[1], "fill")) {
        /* A child fills stderr (a pipe nobody reads) and blocks there; the
           parent then makes refused calls forever. */
        static char buf[4096];
        memset(buf, 'x', sizeof buf);
        if (fork() == 0)
            for (;;)
                write(2, buf, sizeof buf);
        usleep(300000);
        printf("filled\n");
        fflush(stdout);
        for (;;)
            syscall(SYS_ptrace, 0, 0, 0, 0);
    }
    if (!strcmp(argv[1], "count")) {
        long n = atol(argv[2]), refused = 0;
        for (long i = 0; i < n; i++)
            refused += syscall(SYS_ptrace, 0, 0, 0, 0) < 0;
        printf("done %ld\n", refused);
        return 0;
    }
    return 2;
}
"#;

/// The payload compiled into a directory every test identity can read.
struct Payload {
    dir: TempDir,
}

impl Payload {
    fn new() -> Option<Payload> {
        let dir = TempDir::new("supervisor-payload");
        let src = dir.path().join("payload.c");
        std::fs::write(&src, PAYLOAD_C).expect("write payload source");
        let bin = dir.path().join("payload");
        let st = Command::new("gcc")
            .args(["-O2", "-pthread", "-o"])
            .arg(&bin)
            .arg(&src)
            .status()
            .ok()?;
        if !st.success() {
            return None;
        }
        set_mode(&bin, 0o755);
        Some(Payload { dir })
    }

    fn bind(&self) -> String {
        format!("{}:/probe", self.dir.str())
    }
}

fn have_gcc() -> bool {
    Command::new("gcc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The default policy with `"report": true` and `extra_rules` appended.
fn report_policy(dir: &TempDir, extra_rules: serde_json::Value) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(cordon::policy::DEFAULT_POLICY_JSON).expect("default policy is JSON");
    v["seccomp"]["report"] = true.into();
    let rules = v["seccomp"]["rules"].as_array_mut().expect("rules");
    for r in extra_rules.as_array().expect("rules array") {
        rules.push(r.clone());
    }
    write_policy(
        dir,
        "report.json",
        &serde_json::to_string_pretty(&v).expect("json"),
    )
}

fn diag(mode: Mode, r: &Run) -> String {
    format!(
        "mode: {mode:?}\nexit: {:?}\noutcome: {}\nstdout:\n{}\nstderr (first 2000 bytes):\n{}",
        r.output.status,
        r.status
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "<none>".to_string()),
        r.stdout(),
        r.stderr().chars().take(2000).collect::<String>()
    )
}

// ---------------------------------------------------------------------------
// 1. A notification flood cannot outrun the wall-clock limit.

#[test]
fn notification_flood_cannot_outrun_the_time_limit() {
    require!("gcc", have_gcc(), "gcc is not installed");
    let payload = Payload::new().expect("compile the payload");
    let dir = TempDir::new("flood");
    let policy = report_policy(&dir, serde_json::json!([]));
    for mode in modes() {
        let bind = payload.bind();
        // One second on the host, ten in the VM lane; there, a tenth of the
        // threads (still 25 flooding threads per CPU): starting 500 threads
        // alone took more than ten seconds on a busy host.
        let threads = 500 / slow_factor();
        let limit = time_limit(1);
        let limit_ms = 1000 * u64::from(slow_factor());
        let t0 = Instant::now();
        let r = run(
            mode,
            &["--policy", &policy, "--ro-bind", &bind, "--time-limit", &limit],
            &["/probe/payload", "flood", &threads.to_string()],
        );
        let took = t0.elapsed();
        let d = diag(mode, &r);
        assert!(r.stdout().starts_with("started "), "the flood never started\n{d}");
        assert_eq!(r.outcome_status(), "timed_out", "{d}");
        assert_eq!(r.code(), cordon::outcome::EXIT_TIMEOUT, "{d}");
        let wall = r
            .status
            .as_ref()
            .and_then(|s| s["wall_time_ms"].as_u64())
            .expect("wall_time_ms");
        assert!(wall >= limit_ms, "killed before the limit: {wall} ms\n{d}");
        // The flood runs until it is killed: an outrun limit would show as
        // a wall time far beyond it, not as twice the limit.
        assert!(wall <= 2 * limit_ms, "the limit was outrun: {wall} ms\n{d}");
        assert!(took < scaled(Duration::from_secs(3)), "cordon took {took:?}\n{d}");
        assert!(
            r.status
                .as_ref()
                .and_then(|s| s["violations_total"].as_u64())
                .unwrap_or(0)
                > 0,
            "the flood made no reported violations: the test proves nothing\n{d}"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. kill_process kills the process whichever thread made the call.

#[test]
fn kill_process_from_a_second_thread_kills_the_process() {
    require!("gcc", have_gcc(), "gcc is not installed");
    let payload = Payload::new().expect("compile the payload");
    let dir = TempDir::new("tkill");
    let policy = report_policy(
        &dir,
        serde_json::json!([{"syscall": "ptrace", "action": "kill_process"}]),
    );
    for mode in modes() {
        let bind = payload.bind();
        let r = run(
            mode,
            &[
                "--policy",
                &policy,
                "--ro-bind",
                &bind,
                "--time-limit",
                &time_limit(20),
            ],
            &["/probe/payload", "thread", "ptrace"],
        );
        let d = diag(mode, &r);
        assert!(!r.stdout().contains("survived"), "the process went on\n{d}");
        let st = r.status.clone().expect("outcome");
        assert_eq!(st["status"], "signaled", "{d}");
        assert_eq!(st["signal"], libc::SIGKILL, "{d}");
        assert_eq!(r.code(), 128 + libc::SIGKILL, "{d}");
        assert_eq!(st["violations"][0]["syscall"], "ptrace", "{d}");
        assert_eq!(st["violations"][0]["action"], "kill_process", "{d}");

        // A second thread making an allowed call is left alone.
        let r = run(
            mode,
            &[
                "--policy",
                &policy,
                "--ro-bind",
                &bind,
                "--time-limit",
                &time_limit(20),
            ],
            &["/probe/payload", "thread", "getpid"],
        );
        let d = diag(mode, &r);
        assert!(r.ok().starts_with("survived "), "{d}");
        assert_eq!(r.outcome_status(), "exited", "{d}");
    }
}

// ---------------------------------------------------------------------------
// 3. cordon stays responsive to SIGTERM whatever the payload does.

/// A spawned cordon, killed and reaped if the test ends before it does.
struct Spawned(Child);

impl Spawned {
    fn spawn(mode: Mode, args: &[&str], cmd: &[&str], outcome: &Path) -> Spawned {
        let mut c = cordon(mode);
        c.arg("run")
            .args(args)
            .arg("--status-json")
            .arg(outcome)
            .arg("--")
            .args(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if mode == Mode::Root {
            // Not in the test's process group: a stray signal stays here.
            c.process_group(0);
        }
        Spawned(c.spawn().expect("spawn cordon"))
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        let r = unsafe { libc::kill(self.0.id() as i32, sig) };
        assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
    }

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

    /// The first line of stdout (blocks until it comes or stdout closes).
    fn first_line(&mut self) -> String {
        let out = self.0.stdout.take().expect("stdout");
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        line
    }

    /// Wait up to `secs`, kill cordon if it is still running, and return
    /// how it ended (None: it had to be killed) with its stderr.
    fn finish(&mut self, secs: f64) -> (Option<ExitStatus>, String) {
        let st = self.wait(secs);
        if st.is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        (st, self.stderr_rest())
    }

    fn stderr_rest(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.0.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
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

fn outcome(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Host processes whose command line contains `needle` and whose state is
/// "stopped".
fn stopped_with(needle: &str) -> bool {
    host_processes_with(needle).into_iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("State:") && l.contains("T (stopped)"))
        })
    })
}

/// Start `script` under sh, wait for it to print "ready", and return the
/// run with the time that was.
fn start_script(mode: Mode, script: &str, outcome: &Path) -> Spawned {
    let mut c = Spawned::spawn(
        mode,
        &["--time-limit", &time_limit(60)],
        &["/bin/sh", "-c", script],
        outcome,
    );
    let first = c.first_line();
    assert_eq!(
        first,
        "ready\n",
        "{mode:?}: the payload never got ready: {}",
        c.stderr_rest()
    );
    c
}

#[test]
fn a_stopped_payload_does_not_make_cordon_deaf_to_sigterm() {
    for mode in modes() {
        let dir = TempDir::new("stopped");
        let out = dir.path().join(format!("outcome-{mode:?}.json"));
        let marker = format!("stopme{}{}", std::process::id(), mode as u8);
        let script = format!("echo ready; : {marker}; kill -STOP $$; echo continued");
        let mut c = start_script(mode, &script, &out);
        assert!(
            wait_until(10.0 * f64::from(slow_factor()), || stopped_with(&marker)),
            "{mode:?}: the payload never stopped"
        );
        let t0 = Instant::now();
        c.signal(libc::SIGTERM);
        let (st, err) = c.finish(GRACE.as_secs_f64() + 15.0 * f64::from(slow_factor()));
        let st = st.unwrap_or_else(|| panic!("{mode:?}: cordon ignored SIGTERM\nstderr: {err}"));
        let took = t0.elapsed();
        let o = outcome(&out);
        let d = format!("{mode:?}: exit {st:?} after {took:?}\noutcome: {o}\nstderr: {err}");
        assert_eq!(o["status"], "signaled", "{d}");
        // SIGCONT let the forwarded SIGTERM land: no need for the grace kill.
        assert_eq!(o["signal"], libc::SIGTERM, "{d}");
        assert_eq!(st.code(), Some(128 + libc::SIGTERM), "{d}");
        // A grace kill would have reported SIGKILL (above); this bound only
        // catches a cordon that took far longer to react.
        assert!(took < GRACE + scaled(Duration::from_secs(10)), "{d}");
    }
}

#[test]
fn a_payload_ignoring_sigterm_is_killed_after_the_grace_period() {
    for mode in modes() {
        let dir = TempDir::new("ignore");
        let out = dir.path().join(format!("outcome-{mode:?}.json"));
        let mut c = start_script(
            mode,
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
            &out,
        );
        let t0 = Instant::now();
        c.signal(libc::SIGTERM);
        let (st, err) = c.finish(GRACE.as_secs_f64() + 15.0 * f64::from(slow_factor()));
        let took = t0.elapsed();
        let st = st.unwrap_or_else(|| panic!("{mode:?}: cordon ignored SIGTERM\nstderr: {err}"));
        let o = outcome(&out);
        let d = format!("{mode:?}: exit {st:?} after {took:?}\noutcome: {o}\nstderr: {err}");
        assert!(took >= GRACE, "killed before the grace period ended: {d}");
        // Not the 60 s time limit (the bound is loose: the host may be busy;
        // both scale in the VM lane).
        assert!(took < GRACE + scaled(Duration::from_secs(10)), "{d}");
        assert_eq!(o["status"], "signaled", "{d}");
        assert_eq!(o["signal"], libc::SIGKILL, "{d}");
        assert_eq!(st.code(), Some(128 + libc::SIGKILL), "{d}");
    }
}

#[test]
fn a_second_terminating_signal_kills_at_once() {
    for mode in modes() {
        let dir = TempDir::new("second");
        let out = dir.path().join(format!("outcome-{mode:?}.json"));
        let mut c = start_script(
            mode,
            "trap '' TERM INT; echo ready; while :; do sleep 0.1; done",
            &out,
        );
        let t0 = Instant::now();
        c.signal(libc::SIGTERM);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            c.wait(0.0).is_none(),
            "{mode:?}: ended on the first, ignored, SIGTERM"
        );
        c.signal(libc::SIGINT);
        let (st, err) = c.finish(GRACE.as_secs_f64() + 15.0 * f64::from(slow_factor()));
        let took = t0.elapsed();
        let st = st.unwrap_or_else(|| panic!("{mode:?}: cordon ignored SIGINT\nstderr: {err}"));
        let o = outcome(&out);
        let d = format!("{mode:?}: exit {st:?} after {took:?}\noutcome: {o}\nstderr: {err}");
        // Before the grace period of the first signal could have ended it
        // (t0 is before that signal was sent).
        assert!(took < GRACE, "{d}");
        assert_eq!(o["status"], "signaled", "{d}");
        assert_eq!(o["signal"], libc::SIGKILL, "{d}");
    }
}

#[test]
fn a_payload_exiting_on_sigterm_reports_its_own_exit() {
    for mode in modes() {
        let dir = TempDir::new("ownexit");
        let out = dir.path().join(format!("outcome-{mode:?}.json"));
        let mut c = start_script(
            mode,
            "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done",
            &out,
        );
        c.signal(libc::SIGTERM);
        let (st, err) = c.finish(GRACE.as_secs_f64() + 15.0 * f64::from(slow_factor()));
        let st = st.unwrap_or_else(|| panic!("{mode:?}: cordon ignored SIGTERM\nstderr: {err}"));
        let o = outcome(&out);
        let d = format!("{mode:?}: exit {st:?}\noutcome: {o}\nstderr: {err}");
        assert_eq!(o["status"], "exited", "{d}");
        assert_eq!(o["exit_code"], 7, "{d}");
        assert_eq!(st.code(), Some(7), "{d}");
    }
}

// ---------------------------------------------------------------------------
// 4. The supervisor's per-violation work is rate-limited.

#[test]
fn violation_reports_are_rate_limited_but_all_counted() {
    require!("gcc", have_gcc(), "gcc is not installed");
    let payload = Payload::new().expect("compile the payload");
    let dir = TempDir::new("rate");
    let policy = report_policy(&dir, serde_json::json!([]));
    // A tenth in the VM lane, where each notification costs ten times as
    // much: still two hundred times what may be shown per second.
    let calls: u64 = 100_000 / u64::from(slow_factor());
    for mode in modes() {
        let bind = payload.bind();
        let t0 = Instant::now();
        let r = run(
            mode,
            &[
                "--policy",
                &policy,
                "--ro-bind",
                &bind,
                "-v",
                "--time-limit",
                &time_limit(60),
            ],
            &["/probe/payload", "count", &calls.to_string()],
        );
        let took = t0.elapsed();
        let d = diag(mode, &r);
        assert_eq!(r.ok().trim(), format!("done {calls}"), "{d}");
        let st = r.status.clone().expect("outcome");
        assert_eq!(st["violations_total"].as_u64(), Some(calls), "{d}");
        let err = r.stderr();
        let shown = err
            .lines()
            .filter(|l| l.starts_with("cordon: violation:"))
            .count() as u64;
        let summaries: Vec<u64> = err
            .lines()
            .filter_map(|l| l.strip_prefix("cordon: "))
            .filter_map(|l| l.split_once(" more violations not shown"))
            .map(|(n, _)| n.parse().expect("a count"))
            .collect();
        let secs = took.as_secs() + 1;
        let rate = cordon::launch::notify::VIOLATIONS_SHOWN_PER_SECOND;
        assert!(shown >= 1, "nothing was shown\n{d}");
        assert!(
            shown <= rate * secs + 1,
            "{shown} lines in {took:?}: not rate-limited\n{d}"
        );
        assert!(summaries.len() as u64 <= secs + 1, "{summaries:?}\n{d}");
        assert_eq!(
            shown + summaries.iter().sum::<u64>(),
            calls,
            "the shown and summarised violations do not add up\n{d}"
        );
        assert!(took < scaled(Duration::from_secs(30)), "took {took:?}\n{d}");
    }
}

#[test]
fn a_full_stderr_does_not_stop_the_supervisor() {
    require!("gcc", have_gcc(), "gcc is not installed");
    let payload = Payload::new().expect("compile the payload");
    let dir = TempDir::new("fullerr");
    let policy = report_policy(&dir, serde_json::json!([]));
    for mode in modes() {
        let bind = payload.bind();
        let marker = format!("fullerr{}x{}", std::process::id(), mode as u8);
        let out = dir.path().join(format!("outcome-{mode:?}.json"));
        let mut c = Spawned::spawn(
            mode,
            &[
                "--policy",
                &policy,
                "--ro-bind",
                &bind,
                "-v",
                "--time-limit",
                &time_limit(1),
            ],
            &["/probe/payload", "fill", &marker],
            &out,
        );
        // stderr is a pipe this test does not read until the sandbox is gone.
        let first = c.first_line();
        assert_eq!(first, "filled\n", "{mode:?}: the payload never filled stderr");
        let payload_procs = || {
            host_processes_with(&marker)
                .into_iter()
                .filter(|p| {
                    std::fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.starts_with(b"/probe/payload\0"))
                })
                .count()
        };
        assert!(payload_procs() > 0, "{mode:?}: no payload process found");
        let gone = wait_until(5.0 * f64::from(slow_factor()), || payload_procs() == 0);
        // Drain stderr: cordon's own last line may wait for room.
        let err = if gone { c.stderr_rest() } else { String::new() };
        let (st, _) = c.finish(10.0 * f64::from(slow_factor()));
        let d = format!(
            "{mode:?}: exit {st:?}\noutcome: {}\nstderr: {} bytes, {} violation lines",
            outcome(&out),
            err.len(),
            err.lines()
                .filter(|l| l.starts_with("cordon: violation:"))
                .count()
        );
        assert!(
            gone,
            "the sandbox outlived its time limit: cordon blocked on stderr\n{d}"
        );
        assert_eq!(
            st.and_then(|s| s.code()),
            Some(cordon::outcome::EXIT_TIMEOUT),
            "{d}"
        );
        assert_eq!(outcome(&out)["status"], "timed_out", "{d}");
    }
}

// ---------------------------------------------------------------------------
// 5. What `cordon learn` records is bounded.

#[test]
fn learn_records_a_bounded_number_of_ioctl_requests() {
    require!("python3", have_python(), "python3 is not installed");
    let dir = TempDir::new("learncap");
    let script = dir.path().join("s.py");
    std::fs::write(
        &script,
        "import ctypes\nl = ctypes.CDLL(None)\n\
         for i in range(1000): l.syscall(16, 0, 0x7a000 + i, 0)\n\
         for i in range(1000): l.syscall(100000 + i, 0)\n\
         print('done')\n",
    )
    .expect("script");
    set_mode(&script, 0o644);
    let bind = format!("{}:/w", dir.str());
    let cap = cordon::launch::notify::MAX_LEARNED_VALUES;
    for mode in modes() {
        let learnt = dir.path().join(format!("learnt-{mode:?}.json"));
        let out = cordon(mode)
            .args(["learn", "--ro-bind", &bind, "-o"])
            .arg(&learnt)
            .args(["--", "/usr/bin/python3", "/w/s.py"])
            .output()
            .expect("cordon learn");
        let err = String::from_utf8_lossy(&out.stderr);
        let d = format!(
            "{mode:?}: {:?}\nstdout: {}\nstderr: {err}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(out.status.success(), "{d}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done", "{d}");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&learnt).expect("learnt policy")).expect("JSON");
        let ioctls = v["seccomp"]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter(|r| r["syscall"] == "ioctl")
            .count();
        assert!(ioctls <= cap, "{ioctls} ioctl rules\n{d}");
        assert!(
            ioctls >= cap / 2,
            "the payload's requests were not learnt: {ioctls}\n{d}"
        );
        assert!(err.contains(&format!("more than {cap} distinct")), "{d}");
    }
}

/// When the payload ends, init kills and reaps everything else in the
/// sandbox before it reports, and `cordon run` returns on that report
/// without waiting for init's own exit. Whatever the payload left behind
/// (a daemon in a session of its own, a process that ignores every signal
/// it can, a stopped one, one made by clone without an exit signal) must
/// therefore be gone at the moment cordon returns. Each leftover holds 256
/// MiB it touched, so that its death (unmapping that) takes long enough to
/// be seen if cordon returned before it; each names itself (comm) with a
/// marker nothing else uses. The policy is the default one without cgroup
/// limits: with a cgroup to read afterwards cordon waits for init's exit
/// anyway, and the report path would not be tested.
#[test]
fn nothing_the_payload_left_runs_once_cordon_returns() {
    require!("python3", have_python(), "python3 is not installed");
    let script = r#"
import ctypes, os, signal, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def linger(k):
    libc.prctl(15, ctypes.c_char_p((sys.argv[1] + str(k)).encode()), 0, 0, 0)
    hold = bytearray(256 << 20)
    for i in range(0, len(hold), 4096):
        hold[i] = 1
    os.write(w, b"x")
    while True:
        time.sleep(1)
r, w = os.pipe()
# A daemon in its own session.
if os.fork() == 0:
    os.setsid()
    linger(1)
# A process that ignores every signal it may.
if os.fork() == 0:
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(s, signal.SIG_IGN)
    linger(2)
# One that will be stopped.
stopped = os.fork()
if stopped == 0:
    linger(3)
# A child without an exit signal: clone(flags=0) returns 0 in it.
if libc.syscall(56, 0, 0, 0, 0, 0) == 0:
    linger(4)
got = 0
while got < 4:
    got += len(os.read(r, 4))
os.kill(stopped, signal.SIGSTOP)
print("left 4", flush=True)
os._exit(7)
"#;
    let comms = |marker: &str| -> Vec<String> {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
            .map(|c| c.trim().to_string())
            .filter(|c| c.starts_with(marker))
            .collect()
    };
    let dir = TempDir::new("left");
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../policies/default.json")).expect("default policy");
    let limits = v["limits"].as_object_mut().expect("limits");
    limits.remove("memory");
    limits.remove("pids");
    let policy = write_policy(&dir, "no-cgroup.json", &v.to_string());
    for mode in modes() {
        // comm holds 15 bytes: the marker and a digit fit.
        let marker = format!("lo{}x{}", std::process::id() % 100_000, mode as u32);
        let r = run(
            mode,
            &["--policy", &policy, "--time-limit", &time_limit(60)],
            &["/usr/bin/python3", "-c", script, &marker],
        );
        // At once: no waiting, no retry.
        let left = comms(&marker);
        assert_eq!(r.code(), 7, "{mode:?}: {}", r.stderr());
        assert!(r.stdout().contains("left 4"), "{mode:?}: {}", r.stdout());
        assert!(
            left.is_empty(),
            "{mode:?}: still there when cordon returned: {left:?}"
        );
    }
}
