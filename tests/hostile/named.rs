//! Named sandboxes (the library's `Session`), abused from inside and by
//! their own caller: signals a command sends to init, thousands of commands
//! submitted before any is waited for, a session whose creating thread
//! ended. Started as root, the tests run again as the unprivileged uid
//! 4321 (`named_tests_as_an_unprivileged_user`).

use std::io::Read;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cordon::{CommandSpec, Policy, Sandbox};

use crate::common;

static LOCK: Mutex<()> = Mutex::new(());

/// Set in the re-run as the unprivileged user.
const CHILD_ENV: &str = "CORDON_HOSTILE_NAMED_UNPRIVILEGED";

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

use crate::common::{cloexec_pipe as pipe, who};

fn create() -> cordon::Session {
    let policy = Policy::builtin_default().expect("default policy");
    Sandbox::new(policy)
        .create()
        .unwrap_or_else(|e| panic!("{}: create: {e}", who()))
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

/// Kills `pid` (SIGKILL) unless [`Watchdog::disarm`] is called within
/// `secs`: a deadlock then fails the test instead of hanging it.
struct Watchdog {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn arm(pid: libc::pid_t, secs: u64) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + common::scaled(Duration::from_secs(secs));
            while Instant::now() < end && !d.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let hung = !d.load(Ordering::SeqCst);
            if hung {
                // SAFETY: kill has no memory arguments; `pid` is this
                // test's sandbox's init.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            hung
        });
        Watchdog { done, thread }
    }

    /// Whether it had to kill.
    fn disarm(self) -> bool {
        self.done.store(true, Ordering::SeqCst);
        self.thread.join().expect("watchdog")
    }
}

/// Real-time signals a command sends to init are not left queued on init
/// for the sandbox's life (they would use up the uid's RLIMIT_SIGPENDING
/// for every later command: no more queued signals, no POSIX timers).
#[test]
fn signals_sent_to_init_do_not_pile_up() {
    let _g = lock();
    let mut s = create();
    let (_, o) = sh(
        &mut s,
        "i=0; while [ $i -lt 3000 ]; do kill -s RTMIN+1 1 || exit 9; i=$((i+1)); done",
    );
    assert_eq!(o.exit_code, 0, "{}: {}", who(), o.to_json());
    // init reads its signals in turns: give it a moment.
    let mut queued = u64::MAX;
    for _ in 0..50 {
        let (out, _) = sh(
            &mut s,
            "awk '/^SigQ/ {split($2, a, \"/\"); print a[1]}' /proc/self/status",
        );
        queued = out.trim().parse().expect("SigQ");
        if queued < 100 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(queued < 100, "{}: {queued} signals still queued on init", who());
    // init still runs commands and reaps them.
    assert_eq!(s.run(&["/bin/true"]).expect("run").exit_code, 0);
    s.stop();
}

/// Submitting thousands of commands before waiting for any must not
/// deadlock init (blocked sending replies nobody reads) against the caller
/// (blocked sending requests init no longer reads). Every command either
/// ran or was refused because 64 were running, with that said.
#[test]
fn submitting_3000_commands_before_waiting_does_not_deadlock() {
    let _g = lock();
    let mut s = create();
    let dog = Watchdog::arm(s.pid(), 60);
    let mut ids = Vec::new();
    let mut err = None;
    for _ in 0..3000 {
        match s.submit(&CommandSpec::new(&["/bin/true"]), [0, 1, 2]) {
            Ok(id) => ids.push(id),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let (mut ran, mut full, mut other) = (0, 0, Vec::new());
    for id in ids {
        match s.wait(id) {
            Ok(o) if o.exit_code == 0 => ran += 1,
            Ok(o)
                if o.error
                    .as_ref()
                    .is_some_and(|e| e.to_string().contains("64 commands already running")) =>
            {
                full += 1
            }
            Ok(o) => other.push(o.to_json().to_string()),
            Err(e) => other.push(e.to_string()),
        }
    }
    let hung = dog.disarm();
    assert!(
        !hung && err.is_none(),
        "{}: submit/wait deadlocked: {err:?}",
        who()
    );
    assert!(
        other.is_empty() && ran > 0 && ran + full == 3000,
        "{}: ran {ran}, refused (table full) {full}, else: {:?}",
        who(),
        other.iter().take(3).collect::<Vec<_>>()
    );
    // The sandbox is still usable.
    assert_eq!(s.run(&["/bin/true"]).expect("run").exit_code, 0);
    s.stop();
}

/// With 64 commands running, one more is refused at once with a clear
/// error (not a bare errno), and runs once a slot is free. A time limit of
/// 0 is refused, not taken as "kill at once".
#[test]
fn a_full_command_table_and_a_zero_time_limit_are_refused_clearly() {
    let _g = lock();
    let mut s = create();
    let dog = Watchdog::arm(s.pid(), 60);
    let mut sleeping = Vec::new();
    for _ in 0..64 {
        let id = s
            .submit(&CommandSpec::new(&["/bin/sleep", "30"]), [0, 1, 2])
            .expect("submit");
        sleeping.push(id);
    }
    let extra = s
        .submit(&CommandSpec::new(&["/bin/true"]), [0, 1, 2])
        .expect("submit");
    let o = s.wait(extra).expect("wait");
    let msg = o.error.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(
        o.exit_code != 0 && msg.contains("64 commands already running in this sandbox"),
        "{}: {}",
        who(),
        o.to_json()
    );
    s.kill_command(sleeping[0]);
    let first = s.wait(sleeping[0]).expect("wait");
    assert_eq!(first.signal, Some(libc::SIGKILL), "{}", first.to_json());
    assert_eq!(
        s.run(&["/bin/true"]).expect("run").exit_code,
        0,
        "a slot is free again"
    );
    let mut zero = CommandSpec::new(&["/bin/true"]);
    zero.time_limit = Some(Duration::ZERO);
    let e = s.submit(&zero, [0, 1, 2]).expect_err("time limit 0");
    assert!(e.to_string().contains("time limit 0"), "{e}");
    assert!(!dog.disarm(), "{}: hung", who());
    s.stop();
}

/// A session created on a thread that then ends keeps working (init's
/// PR_SET_PDEATHSIG fires when the creating *thread* exits), and stopping
/// it from another thread leaves no process behind.
#[test]
fn a_session_outlives_the_thread_that_created_it() {
    let _g = lock();
    let mut s = std::thread::spawn(create).join().expect("create thread");
    std::thread::sleep(Duration::from_millis(300));
    let init = s.pid();
    let o = s.run(&["/bin/true"]).unwrap_or_else(|e| panic!("{}: {e}", who()));
    assert_eq!(o.exit_code, 0, "{}", who());
    std::thread::spawn(move || s.stop()).join().expect("stop thread");
    // SAFETY: kill with signal 0 only checks; init was reaped by stop.
    let gone = unsafe { libc::kill(init, 0) } != 0;
    assert!(gone, "{}: init {init} outlived stop", who());
}

#[test]
fn named_tests_as_an_unprivileged_user() {
    let _g = lock();
    let args = [
        "named::",
        "--skip",
        "named_tests_as_an_unprivileged_user",
        "--nocapture",
        "--test-threads=1",
    ];
    if let Some((_, stderr)) = common::rerun_unprivileged(CHILD_ENV, &args) {
        eprintln!("{stderr}");
    }
}
