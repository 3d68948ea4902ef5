//! The child's sequence, written once: the steps that `cordon run`'s clone
//! child and `cordon exec` / [`crate::Prepared::apply`] share, in their one
//! order. Everything here runs after clone (or fork) and before exec: it
//! must not allocate, take a lock or panic; it only reads the plan and
//! makes system calls.
//!
//! The whole order, and where each part runs:
//!
//! | # | step | `cordon run` | `cordon exec` |
//! |---|---|---|---|
//! | 1 | signal mask, parent-death signal, stdio, wait for the id maps | init ([`super::child`]) | — (writes its own maps after `unshare`) |
//! | 2 | leave host root (identity switch), non-dumpable | init | before `unshare` ([`crate::embed`]) |
//! | 3 | mounts and pivot_root | init | after `unshare` |
//! | 4 | [`host_and_session`]: hostname, loopback, setsid | init | here |
//! | 5 | bounding set, securebits | init (inherited by the payload) | [`restrict`] |
//! | 6 | [`restrict`]: signals, chdir, rlimits, ids, capabilities, no_new_privs, fds, Landlock, seccomp | payload | here |
//! | 7 | [`exec_search`] | payload | here |

use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{ChildError, Step};
use crate::isolate::creds;
use crate::plan::{ChildPlan, Exec};
use crate::sys::{self, Errno};

/// Set in a process that runs the sequence (the clone child, or the
/// process `Prepared::apply` restricts): a panic there must not run any
/// panic hook, which would allocate and lock stderr. A plain static, not a
/// thread-local: the child's memory is its own copy, so setting it there
/// leaves the parent's `false`.
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// Exit code of a child whose setup panicked (the setup-failure code).
const PANIC_EXIT: i32 = crate::error::exit::SETUP;

/// Install, once per process, a panic hook that ends a process marked by
/// [`mark_child`] at once with `_exit(125)` (no allocation, no lock, no
/// unwinding) and otherwise puts back the caller's terminal if the pty
/// relay holds it raw ([`super::tty::restore_on_panic`]) and calls the hook
/// that was installed before.
/// Called in the parent before clone and by `prepare`; a hook the embedder
/// sets later replaces this one.
pub fn install_panic_guard() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CHILD.load(Ordering::Relaxed) {
                sys::exit(PANIC_EXIT);
            }
            // The supervisor: the caller's terminal back from raw mode
            // first (the message goes to it, and the process may abort).
            super::tty::restore_on_panic();
            previous(info)
        }));
    });
}

/// Mark this process as running the child's sequence: from here on a panic
/// exits with 125 through the guard of [`install_panic_guard`]. One atomic
/// store: no allocation.
pub fn mark_child() {
    IN_CHILD.store(true, Ordering::Relaxed);
}

/// Which process runs the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The payload forked by cordon's init (`cordon run`): init already
    /// dropped the bounding set; the payload installs the notifying filter
    /// when the supervisor wants reports.
    Payload,
    /// The calling process itself (`cordon exec`, `Prepared::apply`): it
    /// unshared its own user namespace, whose setgroups is denied.
    InProcess,
}

fn at(step: Step) -> impl Fn(Errno) -> ChildError {
    move |e| ChildError::new(step, e, 0)
}

/// Hostname, loopback and a new session: after the root is built (the
/// hostname and lo belong to namespaces made at clone/unshare), before the
/// rlimits and capabilities go (both calls need CAP_SYS_ADMIN/CAP_NET_ADMIN
/// in the namespace). `lo_up`: the loopback is up already (`cordon run`'s
/// netns helper brought it up in the netns it made).
pub fn host_and_session(plan: &ChildPlan, mode: Mode, lo_up: bool) -> Result<(), ChildError> {
    if let Some(h) = plan.hostname() {
        sys::sethostname(h).map_err(at(Step::Hostname))?;
    }
    if plan.own_net() && !lo_up {
        sys::loopback_up().map_err(at(Step::Loopback))?;
    }
    // A new session: the payload has no controlling terminal and cannot
    // push keystrokes into the caller's (TIOCSTI). In process, this process
    // may already lead one (EPERM; an exec'd shell's child may): seccomp
    // refuses TIOCSTI either way.
    match sys::setsid() {
        Ok(()) => Ok(()),
        Err(Errno(libc::EPERM)) if mode == Mode::InProcess => Ok(()),
        Err(e) => Err(ChildError::new(Step::Setsid, e, 0)),
    }
}

/// Everything from the payload's signals to seccomp, in this order:
pub fn restrict(plan: &ChildPlan, mode: Mode, err_fd: std::os::raw::c_int) -> Result<(), ChildError> {
    restrict_in(plan, mode, err_fd, plan.cwd(), true)
}

/// [`restrict`] with the working directory `cwd` instead of the plan's (a
/// named sandbox's command may name its own), and without Landlock when
/// `landlock` is false (a named sandbox's init entered the policy's one
/// Landlock domain already, which every command shares: see
/// [`super::serve`]).
pub fn restrict_in(
    plan: &ChildPlan,
    mode: Mode,
    err_fd: std::os::raw::c_int,
    cwd: &std::ffi::CStr,
    landlock: bool,
) -> Result<(), ChildError> {
    // 1. Signals: handlers reset at exec by themselves, ignored signals do
    //    not; the payload starts with none blocked (init blocked all, and
    //    `cordon exec` inherits its caller's mask).
    sys::unignore_signals(plan.ignored_signals());
    sys::set_sigmask(&sys::sigset_empty()).map_err(at(Step::SignalMask))?;
    // 2. chdir inside the new root, while still privileged in the
    //    namespace (a directory only the namespace's root may enter).
    sys::chdir(cwd).map_err(at(Step::Chdir))?;
    // 3. rlimits before dropping capabilities: raising a hard limit needs
    //    CAP_SYS_RESOURCE.
    for (i, r) in plan.rlimits().iter().enumerate() {
        sys::setrlimit(r.resource, r.value, r.hard)
            .map_err(|e| ChildError::new(Step::Rlimit, e, i as u32))?;
    }
    match mode {
        Mode::Payload => {
            // 4. The payload's identity (init did the bounding set, which
            //    the payload inherits). Identity changes clear the
            //    parent-death signal: set it again at once.
            creds::switch_identity(plan.ids())?;
            sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0)
                .map_err(at(Step::ParentDeathSignal))?;
        }
        Mode::InProcess => {
            // 4. The bounding set needs CAP_SETPCAP, which the namespace's
            //    root has until the identity changes; then the ids
            //    (setgroups is denied in a namespace this process made, so
            //    no group change).
            creds::drop_bounding(plan.last_cap())?;
            creds::lock_securebits()?;
            sys::setresgid(plan.ids().gid).map_err(|e| ChildError::new(Step::Identity, e, 1))?;
            sys::setresuid(plan.ids().uid).map_err(|e| ChildError::new(Step::Identity, e, 2))?;
        }
    }
    // 5. No capabilities, and no way to gain any (setuid files, file caps).
    creds::drop_caps()?;
    creds::no_new_privs()?;
    // 6. Every inherited fd above 2 is closed at exec; the error pipe is
    //    close-on-exec too, so its EOF tells the parent that exec succeeded.
    sys::close_range(3, u32::MAX, sys::CLOSE_RANGE_CLOEXEC).map_err(at(Step::CloseFds))?;
    // 7. Landlock before seccomp, so that the filter need not allow the
    //    Landlock calls; after every mount (Landlock forbids mounting).
    if let Some(ll) = plan.landlock().filter(|_| landlock) {
        crate::landlock::apply::apply(ll)?;
    }
    // 8. Seccomp last: the filter need not allow anything of cordon's own
    //    setup, only execve and the error path.
    if let Some(sc) = plan.seccomp() {
        if mode == Mode::InProcess || !sc.listener() {
            sys::seccomp_install(sc.program(), false).map_err(at(Step::Seccomp))?;
        } else {
            // The supervisor takes the listener with pidfd_getfd, which
            // needs ptrace access; rootless, that means being dumpable
            // (init made the process undumpable). Exec sets it anew.
            if plan.ids().rootless {
                sys::prctl(libc::PR_SET_DUMPABLE, 1, 0).map_err(at(Step::ReportDumpable))?;
            }
            let listener = sys::seccomp_install(sc.program(), true).map_err(at(Step::Seccomp))?;
            // From here on every syscall passes the filter: `write` is
            // allowed outright (checked when the policy is compiled) and the
            // hand-off call is notified, so nothing waits for a supervisor
            // that does not hold the listener yet. The listener is
            // close-on-exec: the payload never sees it.
            let note = ChildError::new(Step::SeccompHandoff, Errno(0), listener as u32);
            let _ = sys::write_all(err_fd, &note.encode());
            sys::seccomp_handoff(
                crate::seccomp::HANDOFF_NR,
                crate::seccomp::HANDOFF_MAGIC,
                listener,
            )
            .map_err(at(Step::SeccompHandoff))?;
        }
    }
    Ok(())
}

/// What execve takes, borrowed: the PATH candidates, argv and envp, each a
/// null-terminated array of pointers to NUL-terminated strings. Made from
/// an [`Exec`] ([`ExecView::of`]) or, in a named sandbox's init, from
/// arrays built in its message buffer ([`ExecView::from_raw`]).
#[derive(Clone, Copy, Debug)]
pub struct ExecView<'a> {
    candidates: *const *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    _borrow: std::marker::PhantomData<&'a ()>,
}

impl<'a> ExecView<'a> {
    /// The arrays of an [`Exec`], valid while it is borrowed.
    pub fn of(exec: &'a Exec) -> ExecView<'a> {
        ExecView {
            candidates: exec.candidates().as_ptr(),
            argv: exec.argv().as_ptr(),
            envp: exec.envp().as_ptr(),
            _borrow: std::marker::PhantomData,
        }
    }

    /// A view of raw arrays.
    ///
    /// # Safety
    ///
    /// Each of the three must be a null-terminated array of pointers to
    /// NUL-terminated strings, all of which stay valid and unchanged for
    /// `'a`.
    pub unsafe fn from_raw(
        candidates: *const *const c_char,
        argv: *const *const c_char,
        envp: *const *const c_char,
    ) -> ExecView<'a> {
        ExecView {
            candidates,
            argv,
            envp,
            _borrow: std::marker::PhantomData,
        }
    }
}

/// Run the plan's program, searching the candidates as execvp does: go on
/// past "not here" errors (ENOENT, ENOTDIR, ESTALE, ENODEV, ETIMEDOUT) and
/// past EACCES, remembering the first EACCES; stop at any other error (an
/// ENOEXEC file, say, ends the search). Returns only on failure, with the
/// index of the candidate the error belongs to (u32::MAX: nothing found).
pub fn exec_search(exec: &Exec) -> ChildError {
    exec_search_view(ExecView::of(exec))
}

/// [`exec_search`] over a borrowed view.
pub fn exec_search_view(exec: ExecView<'_>) -> ChildError {
    let mut first = Errno(libc::ENOENT);
    let mut index = u32::MAX;
    let mut i = 0usize;
    loop {
        // SAFETY: `exec.candidates` is a null-terminated array (the view's
        // contract), and the loop stops at its null entry.
        let p = unsafe { *exec.candidates.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: a non-null entry points at a NUL-terminated string that
        // lives as long as the view (its contract).
        let path = unsafe { std::ffi::CStr::from_ptr(p) };
        // SAFETY: argv and envp are null-terminated arrays of pointers into
        // NUL-terminated strings that live, unchanged, as long as the view.
        let e = unsafe { sys::execve(path, exec.argv, exec.envp) };
        match e.0 {
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            libc::EACCES => {
                if index == u32::MAX {
                    first = e;
                    index = i as u32;
                }
            }
            _ => return ChildError::new(Step::Exec, e, i as u32),
        }
        i += 1;
    }
    ChildError::new(Step::Exec, first, index)
}
