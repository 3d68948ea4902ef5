//! The clone child of `cordon run` (cordon's init and the payload it forks,
//! up to execve) makes no heap allocation, and a panic there ends it with
//! 125 without running a panic hook that would allocate.
//!
//! This test binary has its own global allocator: any allocation made in a
//! process other than the test process itself (the clone child, which is a
//! copy of it, or a forked child) ends that process at once with
//! `_exit(ALLOCATED)`. The payload's exit code therefore tells whether its
//! setup allocated: a payload that exits with its own code ran after an
//! allocation-free setup. Control tests show that an allocation in a child
//! is caught.
//!
//! Started as root, the tests run again as the unprivileged uid 4321.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use common::ROOTLESS_ID;

/// Exit code of a child process that called the allocator.
const ALLOCATED: i32 = 99;

/// pid of the test process; 0 until a test arms the check.
static PARENT: AtomicI32 = AtomicI32::new(0);

/// The system allocator, refusing to serve any process but the test's.
struct ChildRefusing;

impl ChildRefusing {
    fn check() {
        let parent = PARENT.load(Ordering::SeqCst);
        // SAFETY: getpid has no preconditions and cannot fail.
        if parent != 0 && unsafe { libc::getpid() } != parent {
            // SAFETY: _exit leaves at once, running nothing of this process.
            unsafe { libc::_exit(ALLOCATED) }
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// after `check`, which only reads an atomic, makes getpid and may _exit.
unsafe impl GlobalAlloc for ChildRefusing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::check();
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: ChildRefusing = ChildRefusing;

/// Set in the re-run as the unprivileged user.
const CHILD_ENV: &str = "CORDON_CHILD_ALLOC_UNPRIVILEGED";

fn arm() {
    // SAFETY: getpid has no preconditions.
    PARENT.store(unsafe { libc::getpid() }, Ordering::SeqCst);
}

/// Fork, run `f` in the child, and return the child's exit code.
fn forked(f: impl FnOnce()) -> i32 {
    arm();
    // SAFETY: the child runs only `f` (code under test) and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        f();
        // SAFETY: leaves without running the test process's exit handlers.
        unsafe { libc::_exit(0) }
    }
    let mut status = 0;
    // SAFETY: pid is our child; status is owned here.
    let w = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(w, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
fn the_allocator_ends_a_child_that_allocates() {
    // The control for both tests below.
    let code = forked(|| drop(std::hint::black_box(Box::new([7u8; 64]))));
    assert_eq!(code, ALLOCATED);
    assert_eq!(forked(|| {}), 0);
}

#[test]
fn a_panic_in_the_child_exits_125_without_allocating() {
    cordon::launch::sequence::install_panic_guard();
    let code = forked(|| {
        cordon::launch::sequence::mark_child();
        panic!("a panic in the child");
    });
    assert_eq!(
        code, 125,
        "the panic ran a hook that allocated ({ALLOCATED}) or went on"
    );
    // The control: unmarked, the same panic reaches the usual hook, which
    // allocates (and is caught here).
    let code = forked(|| panic!("a panic outside the child"));
    assert_eq!(code, ALLOCATED);
}

fn run_default(cmd: &[&str]) -> Result<cordon::Outcome, cordon::error::LaunchError> {
    let policy = cordon::Policy::builtin_default().expect("default policy");
    let plan = cordon::plan::Plan::build(&policy, "default", cmd).expect("plan");
    arm();
    cordon::launch::run(&plan, cordon::launch::RunOptions::default())
}

#[test]
fn the_clone_child_of_run_allocates_nothing() {
    // Init and the payload both ran their setup without allocating: the
    // payload's own exit code comes back.
    let outcome = run_default(&["/bin/sh", "-c", "exit 42"]).expect("run");
    assert_eq!(outcome.exit_code, 42, "{outcome:?}");
    // Mode proxy: init also makes the proxy's listener and sends it to
    // the supervisor (SCM_RIGHTS), without allocating.
    let policy = cordon::PolicyBuilder::default_policy()
        .allow_net("127.0.0.1/32:9")
        .build()
        .expect("proxy policy");
    let plan = cordon::plan::Plan::build(&policy, "proxy", &["/bin/sh", "-c", "exit 43"]).expect("plan");
    arm();
    let outcome = cordon::launch::run(&plan, cordon::launch::RunOptions::default()).expect("run");
    assert_eq!(outcome.exit_code, 43, "{outcome:?}");
    assert_eq!(outcome.network.map(|n| n.mode), Some("proxy"));
    // A workspace: init mounts its overlay and sends the upper directory
    // to the supervisor (SCM_RIGHTS), without allocating; the payload
    // writes there.
    let dir = std::env::temp_dir().join(format!("cordon-child-alloc-ws-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("workspace dir");
    let mut policy = cordon::Policy::builtin_default().expect("default policy");
    let mut ws = cordon::policy::Workspace::new(dir.to_str().expect("utf-8"));
    ws.to = Some("/tmp/ws".to_string());
    policy.workspaces.push(ws);
    let plan = cordon::plan::Plan::build(
        &policy,
        "workspace",
        &["/bin/sh", "-c", "echo x > /tmp/ws/f; exit 44"],
    )
    .expect("plan");
    arm();
    let outcome = cordon::launch::run(&plan, cordon::launch::RunOptions::default()).expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(outcome.exit_code, 44, "{outcome:?}");
    assert_eq!(outcome.workspaces.len(), 1, "{outcome:?}");
    assert_eq!(outcome.workspaces[0].error, None, "{outcome:?}");

    // A pty: init opens it in the sandbox's devpts and sends the master to
    // the supervisor, the payload makes the slave its controlling terminal
    // and stdio, all without allocating.
    let policy = cordon::Policy::builtin_default().expect("default policy");
    let mut plan = cordon::plan::Plan::build(&policy, "tty", &["/bin/sh", "-c", "exit 44"]).expect("plan");
    plan.child.set_tty(true).expect("the default policy has a /dev");
    arm();
    let outcome = cordon::launch::run(&plan, cordon::launch::RunOptions::default()).expect("run");
    assert_eq!(outcome.exit_code, 44, "{outcome:?}");
    // The error path: every PATH candidate fails, the payload reports
    // through the error pipe, still without allocating (127, not 99).
    let r = run_default(&["cordon-no-such-command"]);
    match r {
        Ok(o) => assert_eq!(o.exit_code, 127, "{o:?}"),
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("cordon-no-such-command"), "{text}");
        }
    }
}

#[test]
fn a_named_sandbox_s_init_and_its_commands_allocate_nothing() {
    // init's serve loop (the message buffer is mapped, not allocated) and
    // each command's fork, stdio, layers and exec search: the commands'
    // own exit codes come back, not 99, and init lives on between them.
    let policy = cordon::Policy::builtin_default().expect("default policy");
    let plan = cordon::plan::Plan::build_serving(&policy, "default", &[]).expect("plan");
    arm();
    let mut s = cordon::Session::create(plan).expect("create");
    for code in [42, 43] {
        let o = s.run(&["/bin/sh", "-c", &format!("exit {code}")]).expect("run");
        assert_eq!(o.exit_code, code, "{o:?}");
    }
    // The error path: the command reports on its pipe, init reads it.
    let o = s.run(&["cordon-no-such-command"]).expect("run");
    assert_eq!(o.exit_code, 127, "{o:?}");
    // A time limit: init kills the group and replies.
    let o = s
        .command(&["/bin/sleep", "30"])
        .time_limit(std::time::Duration::from_millis(200))
        .run()
        .expect("run");
    assert_eq!(o.exit_code, 124, "{o:?}");
    // Signals init reads and discards, and 200 commands submitted before
    // any is waited for (replies queued, a full table's rejections): init
    // still answers, so it allocated nothing on those paths either.
    let o = s
        .run(&["/bin/sh", "-c", "kill -s USR1 1; kill -s RTMIN+1 1; exit 44"])
        .expect("run");
    assert_eq!(o.exit_code, 44, "{o:?}");
    let ids: Vec<u32> = (0..200)
        .map(|_| {
            s.submit(&cordon::CommandSpec::new(&["/bin/true"]), [0, 1, 2])
                .expect("submit")
        })
        .collect();
    for id in ids {
        s.wait(id).expect("wait");
    }
    let o = s.run(&["/bin/sh", "-c", "exit 45"]).expect("run");
    assert_eq!(o.exit_code, 45, "{o:?}");
    s.stop();
}

#[test]
fn the_same_as_an_unprivileged_user() {
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
    let start = Instant::now();
    let out = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .args(["--skip", "the_same_as_an_unprivileged_user", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .uid(ROOTLESS_ID)
        .gid(ROOTLESS_ID)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("re-run as the unprivileged user");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 4 passed"),
        "the unprivileged run failed: {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(start.elapsed() < Duration::from_secs(120) * common::slow_factor());
}
