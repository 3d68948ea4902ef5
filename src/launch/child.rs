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
//! 4. wait for the id maps (EOF: the parent died: exit).
//! 5. identity switch: a child started by root is host uid 0 until here, so
//!    this comes before touching anything; then the parent-death signal
//!    again (identity changes clear it) and non-dumpable.
//! 6. mounts and pivot_root: needs the namespace's capabilities, and must
//!    precede Landlock (which forbids mounting).
//! 7. hostname, loopback, setsid ([`super::sequence::host_and_session`]):
//!    in the namespaces made at clone, still privileged; in mode `proxy`,
//!    the proxy's listeners on 127.0.0.1, sent to the supervisor and
//!    closed ([`crate::net::listen`]); with a pty, init opens it in the
//!    sandbox's devpts and sends its master to the supervisor
//!    ([`super::tty`]).
//! 8. bounding set and securebits: inherited by the payload, dropped once
//!    here, while CAP_SETPCAP is still there.
//! 9. (v1 cgroups) wait for the second byte: the payload starts only once
//!    the parent has attached us.
//! 10. fork the payload; init then drops its own privileges and fds and
//!     reaps until the payload ends.
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
    // Hostname, loopback and a new session, shared with `cordon exec`.
    sequence::host_and_session(plan, Mode::Payload)?;
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

/// Fork the payload and return its pid; the payload itself never returns
/// from here (it execs or exits, reporting its error).
/// `slave`: the pty's slave for the payload (-1: none), attached as `term`
/// says.
fn fork_payload(
    plan: &ChildPlan,
    fds: Fds,
    slave: c_int,
    term: &TermInit,
) -> Result<libc::pid_t, ChildError> {
    let payload_pid = sys::fork_raw().map_err(at(Step::Fork))?;
    if payload_pid == 0 {
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
    Ok(payload_pid)
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

/// pid 1: reap every child, forward signals to the payload, and exit with
/// the payload's status once it is gone (the kernel then kills whatever is
/// left in the namespace).
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
        loop {
            let mut status: c_int = 0;
            // SAFETY: status is a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == payload {
                let _ = sys::write_all(status_fd, &status.to_le_bytes());
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                sys::exit(code);
            }
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
