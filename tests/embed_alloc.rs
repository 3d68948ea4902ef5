//! `Prepared::apply` and `Prepared::apply_and_exec` make no heap
//! allocation: their own test binary, with a counting global allocator.
//! The test forks (raw `libc::fork`), and the child reads the counters,
//! applies the policy, reads them again and sends the numbers back through
//! a pipe with a raw `write` before `_exit`: nothing in the child's
//! measurement allocates (a control test shows the counter does see an
//! allocation made there).
//!
//! Started as root, the tests run as root (apply drops to the host id
//! itself) and are then run again as the unprivileged uid 4321.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Calls to the allocator that hand out memory (alloc, alloc_zeroed, realloc).
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// Calls that give memory back (dealloc).
static FREES: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counted.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments;
// the counters are atomics and allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        FREES.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Set in the re-run as the unprivileged user.
const CHILD_ENV: &str = "CORDON_EMBED_ALLOC_UNPRIVILEGED";

/// What the forked child reports: allocator calls during the measured
/// step, and its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Report {
    allocs: u64,
    frees: u64,
    /// 1 when the step returned Ok.
    ok: u64,
    /// The error's step (`Step as u64`), errno and index.
    step: u64,
    errno: u64,
    index: u64,
    /// The step's name: address and length of a `&'static str` of this
    /// binary, the same in parent and forked child.
    name_ptr: u64,
    name_len: u64,
}

impl Report {
    /// The failure, for messages.
    fn error(&self) -> String {
        if self.ok == 1 {
            return "no error".to_string();
        }
        // SAFETY: name_ptr/name_len come from `Step::name()` in a forked
        // copy of this process: a `&'static str` in this binary's
        // read-only data, mapped at the same address here.
        let name = unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.name_ptr as usize as *const u8,
                self.name_len as usize,
            ))
        };
        format!(
            "{name} (item {}): {}",
            self.index,
            std::io::Error::from_raw_os_error(self.errno as i32)
        )
    }
}

/// Fork; in the child run `measured` between two reads of the counters
/// and report through a pipe; in the parent return the report (failing if
/// the child does not answer within 60 s, e.g. deadlocked).
fn in_forked_child(measured: impl Fn() -> Result<(), cordon::ApplyError>) -> Report {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds are new and owned here.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child below only loads atomics, runs `measured` (the
    // code under test, which must not allocate or lock), writes to a pipe
    // and calls _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let a0 = ALLOCS.load(Ordering::SeqCst);
        let f0 = FREES.load(Ordering::SeqCst);
        let r = measured();
        let a1 = ALLOCS.load(Ordering::SeqCst);
        let f1 = FREES.load(Ordering::SeqCst);
        let mut rep = Report {
            allocs: a1.wrapping_sub(a0) as u64,
            frees: f1.wrapping_sub(f0) as u64,
            ok: u64::from(r.is_ok()),
            ..Report::default()
        };
        if let Err(e) = r {
            rep.step = e.step as u64;
            rep.errno = e.errno as u64;
            rep.index = u64::from(e.index);
            let name = e.step.name();
            rep.name_ptr = name.as_ptr() as usize as u64;
            rep.name_len = name.len() as u64;
        }
        // SAFETY: writes the report's bytes from this frame, then leaves
        // without running any exit handler of the copied test process.
        unsafe {
            libc::write(
                wr.as_raw_fd(),
                (&rep as *const Report).cast(),
                std::mem::size_of::<Report>(),
            );
            libc::_exit(0);
        }
    }
    drop(wr);
    let mut pfd = libc::pollfd {
        fd: rd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd owned by this frame.
    let n = unsafe { libc::poll(&mut pfd, 1, 60_000) };
    if n != 1 {
        // SAFETY: pid is our unreaped child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        panic!("the forked child did not report within 60 s (poll: {n}): deadlock?");
    }
    let mut rep = Report::default();
    // SAFETY: reads at most size_of::<Report>() bytes into the report,
    // which any bit pattern initialises validly (all u64).
    let got = unsafe {
        libc::read(
            rd.as_raw_fd(),
            (&mut rep as *mut Report).cast(),
            std::mem::size_of::<Report>(),
        )
    };
    let mut status = 0;
    // SAFETY: pid is our child; status is owned here.
    let w = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(w, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert_eq!(
        got,
        std::mem::size_of::<Report>() as isize,
        "short report from the child (status {status:#x})"
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    rep
}

fn exec_policy() -> cordon::Policy {
    cordon::PolicyBuilder::exec_policy().build().expect("exec policy")
}

#[test]
fn the_counter_sees_an_allocation_in_the_forked_child() {
    // The control: the same measurement around code that allocates once.
    let rep = in_forked_child(|| {
        let b = std::hint::black_box(Box::new([7u8; 64]));
        drop(b);
        Ok(())
    });
    assert_eq!((rep.allocs, rep.frees, rep.ok), (1, 1, 1), "{rep:?}");
}

#[test]
fn apply_allocates_nothing() {
    let policy = exec_policy();
    assert!(policy.landlock.is_some() && policy.seccomp.is_some() && !policy.mounts.is_empty());
    let prepared = cordon::prepare(&policy).expect("prepare");
    let rep = in_forked_child(|| prepared.apply());
    assert_eq!(rep.ok, 1, "apply failed: {}: {rep:?}", rep.error());
    assert_eq!(
        (rep.allocs, rep.frees),
        (0, 0),
        "apply used the allocator: {rep:?}"
    );
}

#[test]
fn apply_and_exec_allocates_nothing_up_to_the_exec() {
    // A command that is not there: the whole path runs (apply, then every
    // execve candidate) and returns, so the child can still report.
    let policy = exec_policy();
    let prepared =
        cordon::embed::prepare_for(&policy, "<test>", &["/usr/bin/cordon-no-such-command"]).expect("prepare");
    let rep = in_forked_child(|| Err(prepared.apply_and_exec()));
    assert_eq!(
        (rep.allocs, rep.frees),
        (0, 0),
        "apply_and_exec used the allocator: {rep:?}"
    );
    assert_eq!(rep.ok, 0, "{rep:?}");
    assert_eq!(
        (rep.step, rep.errno as i32),
        (cordon::error::Step::Exec as u64, libc::ENOENT),
        "expected exec to fail with ENOENT after a successful apply: {}: {rep:?}",
        rep.error()
    );
}

#[test]
fn the_same_as_an_unprivileged_user() {
    let start = Instant::now();
    let args = ["--skip", "the_same_as_an_unprivileged_user", "--test-threads=1"];
    if let Some((stdout, stderr)) = common::rerun_unprivileged(CHILD_ENV, &args) {
        assert!(
            stdout.contains("test result: ok. 3 passed"),
            "the unprivileged run did not run the 3 tests\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(start.elapsed() < Duration::from_secs(120) * common::slow_factor());
    }
}
