//! `vm.memfd_noexec=2` for the sandbox's pid namespace, so that the payload
//! cannot execute code it wrote into a memfd (`memfd_create` + `execve` of
//! `/proc/self/fd/N`), which neither mount flags nor Landlock cover.
//! Parent side, root only.
//!
//! The sysctl is per pid namespace: a write applies to the writer's active
//! pid namespace (and those below it), and needs a writer whose euid is
//! global root and which has CAP_SYS_ADMIN over that namespace's user
//! namespace. The sandbox's own processes never qualify (their user
//! namespace is owned by the sandbox's host id), so the supervisor makes a
//! helper that does: it enters the sandbox's pid namespace for its children
//! (`setns` on the calling thread only changes where its children are
//! born), clones a helper with `CLONE_VM | CLONE_VFORK` that writes `2`
//! through an fd opened beforehand and exits, and returns to its own pid
//! namespace. The helper also rewinds `kernel.ns_last_pid` so the payload
//! still gets pid 2. It runs while the sandbox's init builds the root; init
//! starts the payload only at the supervisor's second sync byte, which
//! comes after, so nothing of the payload's runs before the sysctl is set.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::{c_int, c_void};

use crate::sys::Errno;

/// The sysctl.
pub const SYSCTL: &str = "/proc/sys/vm/memfd_noexec";
const NS_LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";

/// Whether this kernel has the sysctl (Linux 6.3).
pub fn available() -> bool {
    std::path::Path::new(SYSCTL).exists()
}

fn open(path: &str, flags: c_int) -> Result<OwnedFd, (String, Errno)> {
    let c = std::ffi::CString::new(path).expect("no NUL");
    // SAFETY: c is a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err((path.to_string(), Errno::last()));
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The helper's two fds.
#[repr(C)]
struct HelperArgs {
    sysctl: c_int,
    last_pid: c_int,
}

/// The helper: runs on its own small stack in our memory (CLONE_VM) while
/// the cloning thread waits (CLONE_VFORK). Raw system calls only.
extern "C" fn helper(arg: *mut c_void) -> c_int {
    // SAFETY: arg points to the HelperArgs the parent keeps alive until we
    // are gone (CLONE_VFORK).
    let a = unsafe { &*(arg as *const HelperArgs) };
    // SAFETY: writes of a static one-byte buffer to fds we inherited.
    let r = unsafe {
        libc::syscall(
            libc::SYS_write,
            a.sysctl as libc::c_long,
            b"2".as_ptr(),
            1 as libc::c_long,
        )
    };
    let code = if r == 1 {
        0
    } else {
        // SAFETY: errno of this thread's TLS (the cloning thread's, which
        // waits); read only.
        unsafe { *libc::__errno_location() }.clamp(1, 255)
    };
    if code == 0 && a.last_pid >= 0 {
        // The payload is then pid 2 again (cosmetic: failure is ignored).
        // SAFETY: as above.
        unsafe {
            libc::syscall(
                libc::SYS_write,
                a.last_pid as libc::c_long,
                b"1".as_ptr(),
                1 as libc::c_long,
            )
        };
    }
    // Exit code: 0, or the errno of the failed write.
    code
}

/// Set `vm.memfd_noexec=2` in the pid namespace of the process `pidfd`
/// refers to (a child of ours, not yet running anything of the payload's).
/// Errors name the step and errno.
pub fn set_noexec(pidfd: c_int) -> Result<(), (String, Errno)> {
    let sysctl = open(SYSCTL, libc::O_WRONLY)?;
    let last_pid = open(NS_LAST_PID, libc::O_WRONLY).ok();
    // Our own pid namespace, to return to: a pidfd of this process (setns
    // with it and CLONE_NEWPID picks its active pid namespace) costs less
    // than a lookup in /proc.
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let own = crate::sys::pidfd_open(me)
        .map(|fd| {
            // SAFETY: a new fd we own.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .map_err(|e| ("pidfd_open of cordon itself".to_string(), e))?;
    let args = HelperArgs {
        sysctl: sysctl.as_raw_fd(),
        last_pid: last_pid.as_ref().map_or(-1, |f| f.as_raw_fd()),
    };
    // A mapping with a guard page below it, touched only where the helper
    // runs (a zeroed heap buffer cost 16 page faults and a memset on the
    // launch's busiest stretch, with no guard).
    let stack = crate::sys::Stack::map(64 * 1024).map_err(|e| ("map the helper's stack".to_string(), e))?;
    // SAFETY: setns of this thread's pid_ns_for_children to a pidfd's
    // namespace (a descendant of ours); it changes where our children are
    // born, not this thread.
    if unsafe { libc::setns(pidfd, libc::CLONE_NEWPID) } < 0 {
        return Err((
            "setns into the sandbox's pid namespace".to_string(),
            Errno::last(),
        ));
    }
    let all = crate::sys::sigset_full();
    let old_mask = crate::sys::set_sigmask(&all);
    // SAFETY: the stack is ours and outlives the helper (CLONE_VFORK
    // returns only once it exited); its top is page-aligned; the helper
    // makes raw system calls only, with every signal blocked (its mask is
    // ours), so sharing our memory is sound.
    let pid = unsafe {
        libc::clone(
            helper,
            stack.top(),
            // Sharing what it does not change saves copying it.
            libc::CLONE_VM
                | libc::CLONE_VFORK
                | libc::CLONE_FILES
                | libc::CLONE_FS
                | libc::CLONE_SIGHAND
                | libc::SIGCHLD,
            &args as *const HelperArgs as *mut c_void,
        )
    };
    let clone_err = Errno::last();
    if let Ok(old) = old_mask {
        let _ = crate::sys::set_sigmask(&old);
    }
    // SAFETY: back to our own pid namespace for children (the one we are
    // in: always allowed).
    if unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
        eprintln!(
            "cordon: cannot return to cordon's pid namespace: {}",
            std::io::Error::from_raw_os_error(Errno::last().0)
        );
        std::process::abort();
    }
    if pid < 0 {
        return Err((
            "clone a helper into the sandbox's pid namespace".to_string(),
            clone_err,
        ));
    }
    let mut status: c_int = 0;
    // SAFETY: reaping our own child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(("wait for the memfd_noexec helper".to_string(), Errno::last()));
    }
    drop(stack);
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err((
            format!("write 2 to {SYSCTL} in the sandbox's pid namespace"),
            Errno(libc::WEXITSTATUS(status)),
        ))
    } else {
        Err((format!("the {SYSCTL} helper died"), Errno(libc::EIO)))
    }
}
