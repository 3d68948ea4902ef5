//! The child side of the launch: pid 1 of the sandbox (cordon's init) and
//! the payload it forks. Everything here runs after clone3 and must not
//! allocate, take a lock or touch thread-local state: it only reads the
//! [`ChildPlan`] built in the parent and makes system calls. The steps it
//! shares with `cordon exec` live in [`super::sequence`].
//!
//! The whole sequence, in order, and why each step is where it is:
//!
//! init (pid 1):
//! 1. mark the process as the child: from here a panic exits 125 at once.
//! 2. block every signal: init takes them with sigwaitinfo (pid 1 ignores
//!    signals it has no handler for), before anything can arrive.
//! 3. parent-death signal, then the caller's stdio onto 0-2 (while the
//!    caller's fds are still open), then close the parent's pipe ends.
//! 4. start the task that makes the network namespace and brings its
//!    loopback up (`NetnsHelper`: on another core while the parent writes
//!    the id maps and init builds the root; init enters it before step 7),
//!    then wait for the id maps (EOF: the parent died: exit).
//! 5. identity switch: a child started by root is host uid 0 until here, so
//!    this comes before touching anything; then the parent-death signal
//!    again (identity changes clear it) and non-dumpable.
//! 6. mounts and pivot_root: needs the namespace's capabilities, and must
//!    precede Landlock (which forbids mounting).
//! 7. hostname, loopback (unless the helper did), setsid
//!    ([`super::sequence::host_and_session`]):
//!    in the namespaces made at clone, still privileged; in mode `proxy`,
//!    the proxy's listeners on 127.0.0.1, sent to the supervisor and
//!    closed ([`crate::net::listen`]); with a pty, init opens it in the
//!    sandbox's devpts and sends its master to the supervisor
//!    ([`super::tty`]).
//! 8. bounding set and securebits: inherited by the payload, dropped once
//!    here, while CAP_SETPCAP is still there.
//! 9. (v1 cgroups) wait for the second byte: the payload starts only once
//!    the parent has attached us.
//! 10. start the payload (sharing init's memory until its exec:
//!     `fork_payload`); init then drops its own privileges and fds and
//!     reaps until the payload ends; then it kills and reaps the rest of
//!     the namespace (`drain`) and reports ([`InitReport`]).
//!
//! the payload (with a pty: a session of its own, the slave its
//! controlling terminal and stdio; then [`super::sequence::restrict`], then
//! [`super::sequence::exec_search`]): signals reset → chdir → rlimits
//! (raising a hard limit needs CAP_SYS_RESOURCE) → identity and the
//! parent-death signal again → capabilities → no_new_privs → fds
//! close-on-exec → Landlock (before seccomp, so the filter need not allow
//! it) → seccomp last (the filter need only allow execve and the error
//! path) → execve, searched as execvp does.

use std::os::raw::c_int;

use crate::error::{ChildError, Step};
use crate::isolate::{creds, mount};
use crate::launch::sequence::{self, Mode};
use crate::launch::tty::{self, TermInit};
use crate::plan::ChildPlan;
use crate::sys::{self, Errno};

/// The pipe ends the child works with.
#[derive(Clone, Copy, Debug)]
pub struct Fds {
    /// Read end of the sync pipe (EOF: the parent died before releasing us).
    pub sync_read: c_int,
    /// Write end of the sync pipe: the parent's, closed at once.
    pub sync_write: c_int,
    /// Read end of the error pipe: the parent's, closed at once.
    pub err_read: c_int,
    /// Write end of the error pipe (close-on-exec).
    pub err_write: c_int,
    /// Read end of the status pipe: the parent's, closed at once.
    pub status_read: c_int,
    /// Write end of the status pipe: init reports the payload's wait status.
    pub status_write: c_int,
    /// The parent's end of the proxy hand-off socket (-1: no proxy),
    /// closed at once.
    pub net_read: c_int,
    /// The child's end of the proxy hand-off socket (-1: no proxy): init
    /// sends the listeners on it, then closes it.
    pub net_write: c_int,
    /// The parent's end of the workspace hand-off socket (-1: no
    /// workspace), closed at once.
    pub ws_read: c_int,
    /// The child's end of the workspace hand-off socket (-1: no
    /// workspace): init sends the upper directories on it, then closes it.
    pub ws_write: c_int,
    /// The parent's end of the pty hand-off socket (-1: no pty), closed
    /// at once.
    pub tty_read: c_int,
    /// The child's end of the pty hand-off socket (-1: no pty): init sends
    /// the pty's master on it, then closes it.
    pub tty_write: c_int,
    /// The supervisor's end of a named sandbox's command socket (-1: not
    /// named), closed at once.
    pub serve_read: c_int,
    /// init's end of a named sandbox's command socket (-1: not named):
    /// init serves commands on it ([`super::serve`]) instead of forking
    /// one payload.
    pub serve_write: c_int,
}

/// Exit code of a child that could not set up the sandbox.
pub const SETUP_FAILED: i32 = crate::error::exit::SETUP;

/// [`Step::Unshare`]'s index when init makes the sandbox's network
/// namespace (0 is the embedding API's unshare of every namespace).
pub const NETNS_UNSHARE: u32 = 1;

fn report(fd: c_int, e: ChildError) {
    let _ = sys::write_all(fd, &e.encode());
}

/// Entry point of the clone3 child. Never returns.
/// `premade`: the idmapped trees the parent made (see
/// [`mount::idmapped_trees`]), indexed like the mount ops.
/// `term`: the caller's terminal modes and size for the payload's pty
/// (read only when the plan asks for one).
pub fn main(plan: &ChildPlan, fds: Fds, premade: &[c_int], term: &TermInit) -> ! {
    // First of all: a panic from here on exits at once (the parent
    // installed the guard before clone).
    sequence::mark_child();
    match init(plan, fds, premade, term) {
        Ok(never) => match never {},
        Err(e) => {
            report(fds.err_write, e);
            sys::exit(SETUP_FAILED)
        }
    }
}

fn at(step: Step) -> impl Fn(Errno) -> ChildError {
    move |e| ChildError::new(step, e, 0)
}

enum Never {}

fn init(plan: &ChildPlan, fds: Fds, premade: &[c_int], term: &TermInit) -> Result<Never, ChildError> {
    // Block every signal: init takes them synchronously with sigwaitinfo,
    // so signals from outside are queued rather than ignored (pid 1 ignores
    // signals it has no handler for).
    sys::set_sigmask(&sys::sigset_full()).map_err(at(Step::SignalMask))?;
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)
        .map_err(at(Step::ParentDeathSignal))?;
    // The caller's stdio for the sandbox (library callers capture it), then
    // the parent's pipe ends go.
    stdio(plan)?;
    close_parent_ends(fds);
    // The network namespace is made by a helper task while init goes on
    // ([`NetnsHelper`]), not by clone3: creating one costs about half a
    // millisecond (the kernel registers its sysctl tables), which now
    // overlaps with the parent writing the id maps and with the root's
    // construction. init enters it before it brings up loopback.
    let netns = if plan.netns_helper() {
        Some(NetnsHelper::start()?)
    } else {
        None
    };
    // Wait for the id maps (EOF: the parent died).
    sync_wait(fds.sync_read, 0)?;

    // Leave host uid 0 (when started by root) before touching anything.
    creds::switch_identity(plan.ids())?;
    sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)
        .map_err(at(Step::ParentDeathSignal))?;
    sys::prctl(libc::PR_SET_DUMPABLE, 0, 0).map_err(at(Step::Dumpable))?;

    // The root: all mount work before Landlock, with the namespace's
    // capabilities (kept across the identity switch above).
    if fds.ws_write >= 0 {
        // The workspaces' upper directories go to the supervisor, which
        // reads the changes through them once the sandbox is gone.
        let mut uppers = [-1 as c_int; mount::MAX_WORKSPACES];
        let r = mount::apply_keeping(plan.mounts(), plan.staging(), premade, &mut uppers);
        let n = plan.mounts().workspaces.len().min(mount::MAX_WORKSPACES);
        let sent = r.and_then(|_| {
            sys::send_fds(fds.ws_write, &uppers[..n])
                .map_err(|e| ChildError::new(Step::WorkspaceHandoff, e, 0))
        });
        for &fd in &uppers {
            if fd >= 0 {
                // SAFETY: the upper directories' fds are init's own, sent (or not) and used no more.
                unsafe { sys::close(fd) };
            }
        }
        // SAFETY: `fds.ws_write` is init's end of the hand-off socket, used no more.
        unsafe { sys::close(fds.ws_write) };
        sent?;
    } else {
        mount::apply(plan.mounts(), plan.staging(), premade)?;
    }
    let lo_up = match netns {
        Some(helper) => {
            helper.join()?;
            true
        }
        None => false,
    };
    // Hostname, loopback and a new session, shared with `cordon exec`.
    sequence::host_and_session(plan, Mode::Payload, lo_up)?;
    // The egress proxy's listeners: in the sandbox's netns with lo up,
    // before the payload exists; handed to the supervisor and closed here,
    // so the payload never holds them.
    if !plan.listeners().is_empty() {
        crate::net::listen::make_and_send(plan.listeners(), fds.net_write)?;
    }
    // The payload's pty, in the sandbox's own devpts: its master goes to
    // the supervisor now, its slave to the payload at fork.
    let slave = match (plan.tty(), plan.ptmx()) {
        (true, Some(ptmx)) if fds.tty_write >= 0 => tty::open_in_child(ptmx, term, fds.tty_write)?,
        _ => -1,
    };

    // The bounding set and securebits are inherited by the payload: drop
    // and lock them once, here. Effective capabilities stay until each
    // process's own capset, so the payload can still set its rlimits.
    creds::drop_bounding(plan.last_cap())?;
    creds::lock_securebits()?;

    if plan.second_sync() {
        // While we built the root, the parent put us into the v1 cgroups:
        // the payload starts only once that is done.
        sync_wait(fds.sync_read, 1)?;
    }
    // SAFETY: `fds.sync_read` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fds.sync_read) };
    if fds.serve_write >= 0 {
        // A named sandbox: commands come one by one from the supervisor.
        match super::serve::serve(plan, fds.serve_write, fds.err_write)? {}
    }
    // Fork the payload; init then drops what it does not need and reaps.
    let payload_pid = fork_payload(plan, fds, slave, term)?;
    drop_init_privileges(fds, payload_pid)?;
    reap_loop(payload_pid, fds.status_write)
}

/// The task that makes the sandbox's network namespace while init builds
/// the root: it shares init's memory and fd table (CLONE_VM, CLONE_FILES)
/// on a stack of its own, unshares CLONE_NEWNET (it has every capability
/// in the new user namespace from the clone, which then owns the netns),
/// opens the netns into the shared fd table, brings the netns's loopback
/// up (IPv6 address configuration makes that the other costly part) and
/// exits; init waits for it and enters the netns ([`NetnsHelper::join`]).
/// It makes its system calls
/// without libc, so it never writes init's errno. It is a process of the
/// sandbox's pid namespace: once it is reaped, init sets the namespace's
/// last pid back, so that the payload is still pid 2.
struct NetnsHelper {
    pid: libc::pid_t,
    /// /proc/sys/kernel/ns_last_pid, opened while the host's /proc is still
    /// in reach (-1: the kernel has none, without CONFIG_CHECKPOINT_RESTORE).
    last_pid: c_int,
    /// The host's /proc, which the helper opens its netns through.
    proc_dir: c_int,
    /// Unmapped after the helper has been reaped (field order: `pid`'s
    /// wait in `drop` comes first).
    _stack: sys::Stack,
}

/// The host's /proc for the helper (an O_PATH fd in the shared table):
/// init may pivot away from the root the helper started in before the
/// helper gets to open its netns, and the new root may have no /proc.
static NETNS_PROC: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
/// The helper's result: the netns fd, or -errno; [`NETNS_PENDING`] until
/// it is done.
static NETNS_RESULT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(NETNS_PENDING);
const NETNS_PENDING: i32 = i32::MIN;
/// The helper's result for the loopback: 0 once `lo` is up in the new
/// netns, or -errno; [`NETNS_PENDING`] until then (or when the netns
/// could not be made).
static NETNS_LO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(NETNS_PENDING);
/// The helper's stack: it makes six system calls, with one `ifreq` on it.
const NETNS_STACK: usize = 16 * 1024;

impl NetnsHelper {
    fn start() -> Result<NetnsHelper, ChildError> {
        let fail = |e| ChildError::new(Step::Unshare, e, NETNS_UNSHARE);
        let stack = sys::Stack::map(NETNS_STACK).map_err(fail)?;
        let proc_dir = sys::open_path(c"/proc").map_err(fail)?;
        NETNS_PROC.store(proc_dir, std::sync::atomic::Ordering::Relaxed);
        // Checked at write time against init's capabilities in the pid
        // namespace's owner, which init has (the file is mode 0666).
        let last_pid = sys::openat(
            libc::AT_FDCWD,
            c"/proc/sys/kernel/ns_last_pid",
            libc::O_WRONLY | libc::O_CLOEXEC,
            0,
        )
        .unwrap_or(-1);
        NETNS_RESULT.store(NETNS_PENDING, std::sync::atomic::Ordering::Relaxed);
        NETNS_LO.store(NETNS_PENDING, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `netns_entry` runs on `stack`, a mapping of its own with
        // a guard page that outlives the helper (this struct unmaps it
        // only after reaping it, on every path). It touches no memory of
        // init's but three atomics (it reads NETNS_PROC, set above, and
        // writes NETNS_LO and NETNS_RESULT) and its own stack, and takes
        // no argument; its
        // system calls go around libc, so it writes no errno and no TLS;
        // the clone wrapper's child path calls it and then SYS_exit, with
        // no TLS access either. What it changes besides memory (its netns,
        // the fd it opens in the shared table) is what init asked for.
        let pid = unsafe {
            libc::clone(
                netns_entry,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_FILES | libc::SIGCHLD,
                std::ptr::null_mut(),
            )
        };
        if pid < 0 {
            let e = Errno::last();
            // SAFETY: the fd opened above, used no more.
            unsafe { sys::close(proc_dir) };
            if last_pid >= 0 {
                // SAFETY: the fd opened above, used no more.
                unsafe { sys::close(last_pid) };
            }
            return Err(fail(e));
        }
        Ok(NetnsHelper {
            pid,
            last_pid,
            proc_dir,
            _stack: stack,
        })
    }

    /// Wait for the helper and enter the netns it made.
    fn join(mut self) -> Result<(), ChildError> {
        let fail = |e| ChildError::new(Step::Unshare, e, NETNS_UNSHARE);
        let waited = sys::waitpid_all(self.pid);
        self.pid = -1;
        waited.map_err(fail)?;
        if self.last_pid >= 0 {
            // The helper took one of the first pids (and the supervisor's
            // memfd_noexec helper, which the supervisor reaps before the
            // second byte, may take another, and rewinds the same way):
            // the next is 2 again.
            let _ = sys::write(self.last_pid, b"1");
        }
        let fd = NETNS_RESULT.load(std::sync::atomic::Ordering::Acquire);
        if fd == NETNS_PENDING {
            return Err(fail(Errno(libc::EIO)));
        }
        if fd < 0 {
            return Err(fail(Errno(-fd)));
        }
        let entered = sys::setns(fd, libc::CLONE_NEWNET);
        // SAFETY: the fd the helper opened for init in the shared table;
        // used no more.
        unsafe { sys::close(fd) };
        entered.map_err(fail)?;
        match NETNS_LO.load(std::sync::atomic::Ordering::Acquire) {
            0 => Ok(()),
            NETNS_PENDING => Err(ChildError::new(Step::Loopback, Errno(libc::EIO), 0)),
            e => Err(ChildError::new(Step::Loopback, Errno(-e), 0)),
        }
    }
}

impl Drop for NetnsHelper {
    fn drop(&mut self) {
        if self.last_pid >= 0 {
            // SAFETY: the fd `start` opened, closed once (here).
            unsafe { sys::close(self.last_pid) };
        }
        if self.pid > 0 {
            // An error before `join`: the stack goes only once the helper
            // is gone. Its fd, if any, goes with init.
            let _ = sys::waitpid_all(self.pid);
        }
        // SAFETY: the fd `start` opened; the helper, which used it, is gone.
        unsafe { sys::close(self.proc_dir) };
    }
}

extern "C" fn netns_entry(_: *mut libc::c_void) -> c_int {
    const PATH: &[u8] = b"thread-self/ns/net\0";
    let proc_dir = NETNS_PROC.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: unshare takes an integer; openat a directory fd init keeps
    // open until the helper is reaped and a NUL-terminated path that lives
    // in the binary; neither touches memory of init's.
    let r = unsafe {
        let r = sys::raw_syscall4(libc::SYS_unshare, libc::CLONE_NEWNET as usize, 0, 0, 0);
        if r < 0 {
            r
        } else {
            sys::raw_syscall4(
                libc::SYS_openat,
                proc_dir as isize as usize,
                PATH.as_ptr() as usize,
                (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
                0,
            )
        }
    };
    if r >= 0 {
        NETNS_LO.store(loopback_up_raw(), std::sync::atomic::Ordering::Relaxed);
    }
    // Release: init reads NETNS_LO after it has seen this.
    NETNS_RESULT.store(r as i32, std::sync::atomic::Ordering::Release);
    0
}

/// `sys::loopback_up` for the netns helper: raw system calls, the
/// request on the helper's own stack. 0 or -errno.
fn loopback_up_raw() -> i32 {
    let req = sys::loopback_request();
    // SAFETY: socket takes integers; ioctl reads the ifreq on this stack,
    // valid for the call; close takes the fd socket returned. The fd
    // table is shared, but init closes only fds it opened itself, and
    // none by range before it has reaped this helper.
    unsafe {
        let fd = sys::raw_syscall4(
            libc::SYS_socket,
            libc::AF_INET as usize,
            (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC) as usize,
            0,
            0,
        );
        if fd < 0 {
            return fd as i32;
        }
        let r = sys::raw_syscall4(
            libc::SYS_ioctl,
            fd as usize,
            libc::SIOCSIFFLAGS as usize,
            &req as *const libc::ifreq as usize,
            0,
        );
        sys::raw_syscall4(libc::SYS_close, fd as usize, 0, 0, 0);
        if r < 0 {
            r as i32
        } else {
            0
        }
    }
}

/// The caller's stdio onto fds 0-2. A source that is itself one of fds
/// 0-2 is first copied above them, so that an earlier dup2 cannot
/// overwrite it ([5, 0, 6]).
fn stdio(plan: &ChildPlan) -> Result<(), ChildError> {
    stdio_onto(plan.stdio())
}

/// `src` onto fds 0-2 (-1: leave that one), as [`stdio`] explains.
pub(super) fn stdio_onto(src: [c_int; 3]) -> Result<(), ChildError> {
    let mut src = src;
    for (target, fd) in src.iter_mut().enumerate() {
        if (0..3).contains(fd) && *fd != target as c_int {
            *fd = sys::dup_above(*fd, 3).map_err(|e| ChildError::new(Step::Stdio, e, target as u32))?;
        }
    }
    for (target, &fd) in src.iter().enumerate() {
        if fd == target as c_int {
            // Already in place, but possibly close-on-exec (a pipe made by a
            // caller that had closed that fd): dup2 would be a no-op.
            sys::clear_cloexec(fd).map_err(|e| ChildError::new(Step::Stdio, e, target as u32))?;
        } else if fd >= 0 {
            // SAFETY: `target` is 0, 1 or 2, the payload's stdio, which the
            // caller asked to replace with `fd`; nothing else in this child
            // uses those numbers.
            unsafe { sys::dup2(fd, target as c_int) }
                .map_err(|e| ChildError::new(Step::Stdio, e, target as u32))?;
        }
    }
    Ok(())
}

/// Close the parent's ends of the three pipes.
fn close_parent_ends(fds: Fds) {
    // SAFETY: `fds.sync_write` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fds.sync_write) };
    // SAFETY: `fds.err_read` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fds.err_read) };
    // SAFETY: `fds.status_read` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fds.status_read) };
    if fds.net_read >= 0 {
        // SAFETY: `fds.net_read` is the parent's end of the hand-off socket, this child's copy; nothing uses it after this close.
        unsafe { sys::close(fds.net_read) };
    }
    if fds.ws_read >= 0 {
        // SAFETY: `fds.ws_read` is the parent's end of the workspace hand-off socket, this child's copy; nothing uses it after this close.
        unsafe { sys::close(fds.ws_read) };
    }
    if fds.serve_read >= 0 {
        // SAFETY: `fds.serve_read` is the supervisor's end of the command socket, this child's copy; nothing uses it after this close.
        unsafe { sys::close(fds.serve_read) };
    }
    if fds.tty_read >= 0 {
        // SAFETY: `fds.tty_read` is the parent's end of the pty hand-off socket, this child's copy; nothing uses it after this close.
        unsafe { sys::close(fds.tty_read) };
    }
}

/// Wait for the parent's byte on the sync pipe (`idx` 0: the id maps are
/// written; 1: we are in the v1 cgroups). EOF: the parent died: exit.
fn sync_wait(sync_read: c_int, idx: u32) -> Result<(), ChildError> {
    let mut byte = [0u8; 1];
    match sys::read(sync_read, &mut byte) {
        Ok(1) => Ok(()),
        // EOF: the parent died before releasing us.
        Ok(_) => sys::exit(SETUP_FAILED),
        Err(e) => Err(ChildError::new(Step::SyncWait, e, idx)),
    }
}

/// Start the payload and return its pid; the payload itself never
/// returns from here (it execs or exits, reporting its error).
/// `slave`: the pty's slave for the payload (-1: none), attached as `term`
/// says.
///
/// The payload shares init's memory until its exec (CLONE_VM, with init
/// suspended until then: CLONE_VFORK), as posix_spawn does: no copy of
/// init's page tables and no copy-on-write faults for a process that is
/// about to exec. It has its own fd table, signal handlers, credentials,
/// rlimits and working directory, so its restrictions are its own. In
/// report mode the payload makes itself dumpable for the supervisor, and
/// dumpability belongs to the memory: that payload gets a copy (fork).
fn fork_payload(
    plan: &ChildPlan,
    fds: Fds,
    slave: c_int,
    term: &TermInit,
) -> Result<libc::pid_t, ChildError> {
    if plan.seccomp().is_some_and(|s| s.listener()) {
        let payload_pid = sys::fork_raw().map_err(at(Step::Fork))?;
        if payload_pid == 0 {
            run_payload(plan, fds, slave, term);
        }
        return Ok(payload_pid);
    }
    let args = PayloadArgs {
        plan,
        fds,
        slave,
        term,
    };
    let stack = sys::Stack::map(PAYLOAD_STACK).map_err(at(Step::Fork))?;
    // SAFETY: `payload_entry` gets a pointer to `args`, which lives on this
    // frame until clone returns, and with CLONE_VFORK clone returns only
    // once the payload has exec'd or exited: nothing it borrows goes away
    // while it runs. It runs on `stack`, a mapping of its own (with a guard
    // page) that this frame unmaps only after that, so the two never share
    // a stack. Without CLONE_FILES, CLONE_FS, CLONE_SIGHAND or
    // CLONE_THREAD it is a process of its own: what it changes besides
    // memory (fds, signal dispositions, credentials, rlimits, cwd, seccomp,
    // Landlock) is not init's. In memory it writes only its own stack and
    // errno, which init does not read across this call; it allocates
    // nothing and takes no lock, like all of the child's code.
    let pid = unsafe {
        libc::clone(
            payload_entry,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&args as *const PayloadArgs).cast_mut().cast(),
        )
    };
    if pid < 0 {
        return Err(ChildError::new(Step::Fork, Errno::last(), 0));
    }
    Ok(pid)
}

/// The payload's stack while it shares init's memory (it execs soon).
const PAYLOAD_STACK: usize = 256 * 1024;

/// What [`payload_entry`] needs, borrowed from `fork_payload`'s frame.
struct PayloadArgs<'a> {
    plan: &'a ChildPlan,
    fds: Fds,
    slave: c_int,
    term: &'a TermInit,
}

extern "C" fn payload_entry(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the `PayloadArgs` that `fork_payload` passed to
    // clone; init is suspended (CLONE_VFORK) until this process execs or
    // exits, so it is alive and unchanged for as long as this runs.
    let a = unsafe { &*(arg as *const PayloadArgs) };
    run_payload(a.plan, a.fds, a.slave, a.term)
}

/// The payload: restrict and exec; on failure report and exit.
fn run_payload(plan: &ChildPlan, fds: Fds, slave: c_int, term: &TermInit) -> ! {
    let e = match payload(plan, fds, slave, term) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report(fds.err_write, e);
    sys::exit(if e.step == Step::Exec {
        exec_exit_code(e.errno)
    } else {
        SETUP_FAILED
    });
}

/// init needs nothing: drop every privilege and every inherited fd but
/// the status pipe; a failure still reaches the parent through the error
/// pipe, which goes last. On failure the payload is killed.
fn drop_init_privileges(fds: Fds, payload_pid: libc::pid_t) -> Result<(), ChildError> {
    let (keep_a, keep_b) = (
        fds.status_write.min(fds.err_write) as u32,
        fds.status_write.max(fds.err_write) as u32,
    );
    let dropped = creds::drop_caps()
        .and_then(|_| creds::no_new_privs())
        .and_then(|_| close_except(keep_a, keep_b).map_err(at(Step::CloseFds)));
    if let Err(e) = dropped {
        let _ = sys::kill(payload_pid, libc::SIGKILL);
        return Err(e);
    }
    // SAFETY: `fds.err_write` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fds.err_write) };
    Ok(())
}

/// Close every fd from 3 up except `a` and `b` (a < b).
pub(super) fn close_except(a: u32, b: u32) -> sys::SysResult<()> {
    for (lo, hi) in [(3, a.wrapping_sub(1)), (a + 1, b - 1), (b + 1, u32::MAX)] {
        if lo <= hi && hi >= 3 {
            sys::close_range(lo.max(3), hi, 0)?;
        }
    }
    Ok(())
}

/// 127 when the program was not found, 126 when it could not be executed.
pub fn exec_exit_code(e: Errno) -> i32 {
    match e.0 {
        libc::ENOENT | libc::ENOTDIR => crate::error::exit::NOT_FOUND,
        _ => crate::error::exit::NOT_EXECUTABLE,
    }
}

/// pid 1: reap every child, forward signals to the payload, and once the
/// payload is gone end everything else in the namespace (`drain`),
/// report ([`InitReport`]) and exit with the payload's status.
fn reap_loop(payload: libc::pid_t, status_fd: c_int) -> ! {
    let set = sys::sigset_full();
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-buffer; set is initialised.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(&set, &mut info)
        };
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            let _ = sys::kill(payload, sig);
            continue;
        }
        while let Ok(Some((pid, status))) = sys::reap_any_nohang() {
            if pid == payload {
                let report = InitReport::now(status, drain());
                let _ = sys::write_all(status_fd, &report.encode());
                sys::exit(report.exit_status() >> 8);
            }
        }
    }
}

/// How long init waits, after the payload, for the rest of the namespace
/// to die of SIGKILL before it leaves that to the kernel.
const DRAIN_LIMIT_MS: u64 = 1000;

/// The payload is gone: SIGKILL every other process of the pid namespace
/// and reap them all (any kind of child: `__WALL`). True when none is
/// left, so that nothing of the sandbox runs once the report is out; false
/// if one could not be killed or took longer than [`DRAIN_LIMIT_MS`] to
/// die (stuck in the kernel): then the kernel's own teardown at init's
/// exit ends it, and the supervisor waits for that.
fn drain() -> bool {
    // kill(-1) reaches every process of the namespace but init, nested
    // pid namespaces included; all run as init's uid, with no capability
    // to become another.
    match sys::kill(-1, libc::SIGKILL) {
        // ESRCH: nobody else is left (but maybe unreaped).
        Ok(()) => {}
        Err(e) if e.0 == libc::ESRCH => {}
        Err(_) => return false,
    }
    let end = sys::monotonic_ms() + DRAIN_LIMIT_MS;
    // SIGCHLD only: the others stay pending (blocked), unread.
    let mut chld = sys::sigset_empty();
    // SAFETY: chld is an initialised sigset; SIGCHLD is a valid signal.
    unsafe { libc::sigaddset(&mut chld, libc::SIGCHLD) };
    loop {
        match sys::reap_any_nohang() {
            Ok(Some(_)) => continue,
            Err(e) => return e.0 == libc::ECHILD,
            Ok(None) => {
                let now = sys::monotonic_ms();
                if now >= end {
                    return false;
                }
                // A child made without an exit signal sends no SIGCHLD:
                // look again at least every millisecond.
                sys::sigwait_ms(&chld, (end - now).min(1));
            }
        }
    }
}

/// What init sends on the status pipe once the payload has ended: its
/// wait status, whether the rest of the namespace is reaped (`drain`),
/// and the resource usage of init and everything it reaped (what wait4
/// on init would give).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitReport {
    /// The payload's wait status.
    pub status: c_int,
    /// Nothing of the sandbox but init itself is left.
    pub drained: bool,
    /// User CPU time, microseconds.
    pub utime_us: u64,
    /// System CPU time, microseconds.
    pub stime_us: u64,
    /// The largest resident set, KiB.
    pub maxrss_kb: u64,
}

impl InitReport {
    /// Its size on the pipe (one write, below PIPE_BUF: atomic).
    pub const LEN: usize = 32;

    fn now(status: c_int, drained: bool) -> InitReport {
        let (me, reaped) = (
            sys::getrusage(libc::RUSAGE_SELF),
            sys::getrusage(libc::RUSAGE_CHILDREN),
        );
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        InitReport {
            status,
            drained,
            utime_us: us(me.ru_utime) + us(reaped.ru_utime),
            stime_us: us(me.ru_stime) + us(reaped.ru_stime),
            maxrss_kb: me.ru_maxrss.max(reaped.ru_maxrss) as u64,
        }
    }

    /// The wait status init's wait4 would give: it exits with the
    /// payload's exit code, or 128 + the payload's signal.
    pub fn exit_status(&self) -> c_int {
        let code = if libc::WIFEXITED(self.status) {
            libc::WEXITSTATUS(self.status)
        } else {
            128 + libc::WTERMSIG(self.status)
        };
        (code & 0xff) << 8
    }

    /// The usage as a `rusage` (times and peak RSS; the rest zero).
    pub fn rusage(&self) -> libc::rusage {
        // SAFETY: rusage is plain integers: all zeroes is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let tv = |us: u64| libc::timeval {
            tv_sec: (us / 1_000_000) as libc::time_t,
            tv_usec: (us % 1_000_000) as libc::suseconds_t,
        };
        ru.ru_utime = tv(self.utime_us);
        ru.ru_stime = tv(self.stime_us);
        ru.ru_maxrss = self.maxrss_kb as libc::c_long;
        ru
    }

    /// The bytes sent.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.status.to_le_bytes());
        b[4..8].copy_from_slice(&u32::from(self.drained).to_le_bytes());
        b[8..16].copy_from_slice(&self.utime_us.to_le_bytes());
        b[16..24].copy_from_slice(&self.stime_us.to_le_bytes());
        b[24..32].copy_from_slice(&self.maxrss_kb.to_le_bytes());
        b
    }

    /// Read back from the bytes [`InitReport::encode`] made.
    pub fn decode(b: &[u8; Self::LEN]) -> InitReport {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        InitReport {
            status: c_int::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            drained: b[4..8] == 1u32.to_le_bytes(),
            utime_us: u64_at(8),
            stime_us: u64_at(16),
            maxrss_kb: u64_at(24),
        }
    }
}

fn payload(plan: &ChildPlan, fds: Fds, slave: c_int, term: &TermInit) -> Result<Never, ChildError> {
    // SAFETY: `fds.status_write` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fds.status_write) };
    if slave >= 0 {
        tty::attach_in_payload(slave, term)?;
    }
    sequence::restrict(plan, Mode::Payload, fds.err_write)?;
    Err(sequence::exec_search(plan.exec()))
}
