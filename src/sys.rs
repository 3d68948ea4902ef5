//! Thin wrappers over the raw system calls cordon needs.
//!
//! This is the one module that calls libc directly. Every function here is
//! safe to call between clone and exec: none allocates, takes a lock or
//! touches thread-local state, and errors are returned as a plain errno.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_long, c_uint, c_ulong};

/// An errno value from a failed system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's current errno.
    pub fn last() -> Errno {
        // SAFETY: __errno_location returns a valid pointer to this thread's errno.
        Errno(unsafe { *libc::__errno_location() })
    }

    /// The system's description, e.g. "Permission denied".
    pub fn describe(self) -> String {
        let s = std::io::Error::from_raw_os_error(self.0).to_string();
        match s.rfind(" (os error ") {
            Some(i) => s[..i].to_string(),
            None => s,
        }
    }
}

/// Result of a system call.
pub type SysResult<T> = Result<T, Errno>;

fn check(ret: c_long) -> SysResult<c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn check_int(ret: c_int) -> SysResult<c_int> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Restart a call on EINTR.
pub fn retry<T>(mut f: impl FnMut() -> SysResult<T>) -> SysResult<T> {
    loop {
        match f() {
            Err(Errno(libc::EINTR)) => continue,
            other => return other,
        }
    }
}

/// The empty path, for the `*_EMPTY_PATH` flags.
pub const EMPTY: &CStr = c"";

// ---- kernel ABI constants, from the libc crate --------------------------
//
// Re-exported so that callers keep naming them through `sys`; each has the
// kernel's value and the type the local copies had.

pub use libc::{
    CLOSE_RANGE_CLOEXEC, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_RDONLY, MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE,
    RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
};

// The kernel's sizes for the structs taken from libc (a build on a libc
// whose layout differs fails here rather than at run time).
const _: () = {
    assert!(std::mem::size_of::<libc::open_how>() == 24); // OPEN_HOW_SIZE_VER0
    assert!(std::mem::size_of::<libc::mount_attr>() == 32); // MOUNT_ATTR_SIZE_VER0
    assert!(std::mem::size_of::<libc::seccomp_data>() == 64);
    assert!(std::mem::size_of::<libc::seccomp_notif>() == 80);
    assert!(std::mem::size_of::<libc::seccomp_notif_resp>() == 24);
};

// ---- files -----------------------------------------------------------------

/// openat2(2).
pub fn openat2(dirfd: c_int, path: &CStr, flags: c_int, mode: u32, resolve: u64) -> SysResult<c_int> {
    // open_how is #[non_exhaustive] in libc, so it is built from zeroes.
    // SAFETY: open_how is plain integers, for which all-zero is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.mode = u64::from(mode);
    how.resolve = resolve;
    // SAFETY: path is NUL-terminated and `how` is a valid open_how of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    check(r).map(|fd| fd as c_int)
}

/// openat(2).
pub fn openat(dirfd: c_int, path: &CStr, flags: c_int, mode: u32) -> SysResult<c_int> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::openat(dirfd, path.as_ptr(), flags, mode as libc::c_uint) })
}

/// mkdirat(2).
pub fn mkdirat(dirfd: c_int, path: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::mkdirat(dirfd, path.as_ptr(), mode) }).map(drop)
}

/// unlinkat(2) of a file (`flags` 0) or an empty directory (`AT_REMOVEDIR`).
pub fn unlinkat(dirfd: c_int, path: &CStr, flags: c_int) -> SysResult<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::unlinkat(dirfd, path.as_ptr(), flags) }).map(drop)
}

/// symlinkat(2).
pub fn symlinkat(target: &CStr, dirfd: c_int, path: &CStr) -> SysResult<()> {
    // SAFETY: both strings are NUL-terminated.
    check_int(unsafe { libc::symlinkat(target.as_ptr(), dirfd, path.as_ptr()) }).map(drop)
}

/// fstat(2), returning the device and mode.
pub fn fstat_dev_mode(fd: c_int) -> SysResult<(u64, u32)> {
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check_int(unsafe { libc::fstat(fd, &mut st) })?;
    Ok((st.st_dev, st.st_mode))
}

/// close(2); errors are ignored (the fd is gone either way).
///
/// # Safety
///
/// `fd` must be owned by the caller: no `OwnedFd`, `File` or other code
/// may use or close that fd number afterwards (it may be reused at once
/// for another file). Closing a number that is not open is harmless.
pub unsafe fn close(fd: c_int) {
    // SAFETY: the caller owns `fd` (see the contract above); close itself
    // touches no memory of ours.
    unsafe { libc::close(fd) };
}

/// write(2) of a whole small buffer (retries on EINTR and short writes).
pub fn write_all(fd: c_int, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = retry(|| check(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) } as c_long))?;
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// read(2) into a buffer, retrying on EINTR.
pub fn read(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is valid for buf.len() bytes.
    retry(|| check(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } as c_long))
        .map(|n| n as usize)
}

/// pipe2(2) with O_CLOEXEC: (read end, write end).
pub fn pipe() -> SysResult<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for two descriptors.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// A connected pair of SOCK_SEQPACKET unix sockets, close-on-exec.
pub fn seqpacket_pair() -> SysResult<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for two descriptors.
    check_int(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((fds[0], fds[1]))
}

/// Ask for the sender's credentials with every message on `fd` (SO_PASSCRED).
pub fn set_passcred(fd: c_int) -> SysResult<()> {
    let one: c_int = 1;
    // SAFETY: the kernel reads one int.
    check_int(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&one as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Receive one message and the sender's pid (SCM_CREDENTIALS, translated
/// into our pid namespace by the kernel) if it came with one.
pub fn recv_with_pid(fd: c_int, buf: &mut [u8]) -> SysResult<(usize, Option<libc::pid_t>)> {
    // Room for one struct ucred control message, 8-byte aligned.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid; the pointers set below stay alive
    // for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg describes valid buffers.
    let n = retry(|| check(unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) } as c_long))?;
    let mut pid = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within
    // msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                pid = Some(cred.pid);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, pid))
}

/// A socket bound to `addr`:`port` (IPv4, network byte order from the
/// array) in this process's network namespace, close-on-exec: a listening
/// TCP socket (`udp` false, with `backlog`) or a UDP socket. Allocation-free
/// (the clone child calls it).
pub fn inet_bind(udp: bool, addr: [u8; 4], port: u16, backlog: c_int) -> SysResult<c_int> {
    let ty = if udp { libc::SOCK_DGRAM } else { libc::SOCK_STREAM };
    // SAFETY: socket(2) takes integers only.
    let fd = check_int(unsafe { libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, 0) })?;
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sa` is a valid sockaddr_in that lives for the call, and its
    // size is passed with it.
    let mut bound = check_int(unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    });
    if !udp {
        // SAFETY: listen(2) takes integers only.
        bound = bound.and_then(|_| check_int(unsafe { libc::listen(fd, backlog) }));
    }
    if let Err(e) = bound {
        // SAFETY: `fd` was opened above and is not used after this close.
        unsafe { close(fd) };
        return Err(e);
    }
    Ok(fd)
}

/// A TCP socket listening on 127.0.0.1:`port` in this process's network
/// namespace, close-on-exec. Allocation-free (the clone child calls it).
pub fn tcp_listen_loopback(port: u16, backlog: c_int) -> SysResult<c_int> {
    inet_bind(false, [127, 0, 0, 1], port, backlog)
}

/// The most fds [`send_fds`] and [`recv_fds`] carry in one message.
pub const MAX_PASSED_FDS: usize = 12;

/// Room for one SCM_RIGHTS message of [`MAX_PASSED_FDS`] ints: a u64 array,
/// so that the buffer is aligned for `cmsghdr`.
type FdControl = [u64; 10];

// The control buffer holds one SCM_RIGHTS message of MAX_PASSED_FDS ints:
// CMSG_SPACE(n) = CMSG_ALIGN(sizeof(cmsghdr)) + CMSG_ALIGN(n) = 16 + n on
// 64-bit Linux.
const _: () = assert!(std::mem::size_of::<FdControl>() >= 16 + ((4 * MAX_PASSED_FDS + 7) & !7));

/// Send `fds` (at most [`MAX_PASSED_FDS`]) over the unix socket `sock` in
/// one message with SCM_RIGHTS and a one-byte payload. Allocation-free:
/// the message and control buffers are on the stack.
pub fn send_fds(sock: c_int, fds: &[c_int]) -> SysResult<()> {
    if fds.is_empty() || fds.len() > MAX_PASSED_FDS {
        return Err(Errno(libc::EINVAL));
    }
    let bytes = std::mem::size_of_val(fds) as u32;
    let mut control: FdControl = [0; 10];
    let mut byte = [b'L'; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: a zeroed msghdr is a valid value (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(bytes) } as usize;
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer is 80 bytes, aligned for cmsghdr, and at
    // least CMSG_SPACE(4 * MAX_PASSED_FDS) = 64 bytes long (see the
    // assertion below `FdControl`; `fds.len()` is checked above),
    // so the first header and its data fit; `fds` is `bytes` long.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() {
            return Err(Errno(libc::EINVAL));
        }
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(bytes) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(c), bytes as usize);
    }
    // SAFETY: msg points at the iovec and control buffer above, both alive
    // for the call.
    retry(|| check(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } as c_long)).map(drop)
}

/// Receive one message from the unix socket `sock` and the fds it carries
/// (SCM_RIGHTS, close-on-exec) into `out`; returns how many. `Ok(0)` at EOF
/// or for a message without fds. Fds beyond `out`'s room are closed.
pub fn recv_fds(sock: c_int, out: &mut [c_int; MAX_PASSED_FDS]) -> SysResult<usize> {
    let mut control: FdControl = [0; 10];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: a zeroed msghdr is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg describes the buffers above, alive for the call.
    retry(|| check(unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) } as c_long))?;
    // SAFETY: recvmsg returned, so the kernel filled msg's control buffer
    // (still alive here) within msg_controllen.
    Ok(unsafe { take_rights(&msg, out) })
}

/// The fds of the SCM_RIGHTS messages in `msg`'s control data, into `out`
/// (those that do not fit are closed); how many were kept. No allocation.
///
/// # Safety
/// `msg` was filled by a successful `recvmsg`: its control pointer and
/// length describe a live buffer the kernel wrote, and every fd in it is
/// the caller's own (kept in `out` or closed here).
unsafe fn take_rights(msg: &libc::msghdr, out: &mut [c_int]) -> usize {
    let mut n = 0;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within
    // msg_controllen (the caller's contract); each SCM_RIGHTS header holds
    // (cmsg_len - CMSG_LEN(0)) bytes of ints, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let count = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<c_int>();
                for i in 0..count {
                    let fd: c_int = std::ptr::read_unaligned(data.cast::<c_int>().add(i));
                    if n < out.len() {
                        out[n] = fd;
                        n += 1;
                    } else {
                        close(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    n
}

/// poll(2) on `fds` for at most `timeout_ms` (-1: no limit), restarted on
/// EINTR; returns how many fds have events.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> SysResult<usize> {
    // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the call.
    retry(|| check_int(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) }))
        .map(|n| n as usize)
}

/// dup2(2).
///
/// # Safety
///
/// `new` is closed and replaced: the caller must own it (or know that
/// nothing in this process uses that number), as for [`close`].
pub unsafe fn dup2(old: c_int, new: c_int) -> SysResult<()> {
    // SAFETY: the caller owns `new` (see the contract above); dup2 takes
    // two integers and touches no memory of ours.
    retry(|| check_int(unsafe { libc::dup2(old, new) }).map(drop))
}

/// fcntl(F_DUPFD_CLOEXEC): a copy of `fd` numbered `min` or above.
pub fn dup_above(fd: c_int, min: c_int) -> SysResult<c_int> {
    // SAFETY: plain integers.
    check_int(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// Clear FD_CLOEXEC on `fd`.
pub fn clear_cloexec(fd: c_int) -> SysResult<()> {
    // SAFETY: plain integers.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// unshare(2).
pub fn unshare(flags: c_int) -> SysResult<()> {
    // SAFETY: plain integers.
    check_int(unsafe { libc::unshare(flags) }).map(drop)
}

/// Write `data` to the existing file `path` (open, write, close).
pub fn write_file(path: &CStr, data: &[u8]) -> SysResult<()> {
    // SAFETY: path is NUL-terminated.
    let fd = check_int(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) })?;
    let r = write_all(fd, data);
    // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { close(fd) };
    r
}

/// close_range(2).
pub fn close_range(first: c_uint, last: c_uint, flags: c_uint) -> SysResult<()> {
    // SAFETY: close_range takes plain integers.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) }).map(drop)
}

// ---- mounts ----------------------------------------------------------------

/// mount(2) for propagation changes and new filesystems; `data` is the
/// comma-separated option string.
pub fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> SysResult<()> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a NUL-terminated string.
    check_int(unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast()) }).map(drop)
}

/// `/proc/self/fd/N` as a C string in `buf`, to name what an fd refers to
/// in path-taking calls. No allocation.
pub fn fd_path(fd: c_int, buf: &mut [u8; 32]) -> &CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = fd.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"")
}

/// open_tree(2).
pub fn open_tree(dirfd: c_int, path: &CStr, flags: c_uint) -> SysResult<c_int> {
    // SAFETY: path is NUL-terminated.
    check(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) }).map(|f| f as c_int)
}

/// move_mount(2).
pub fn move_mount(from_fd: c_int, from: &CStr, to_fd: c_int, to: &CStr, flags: c_uint) -> SysResult<()> {
    // SAFETY: both paths are NUL-terminated.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from_fd,
            from.as_ptr(),
            to_fd,
            to.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// mount_setattr(2): set the given attributes.
pub fn mount_setattr(dirfd: c_int, path: &CStr, flags: c_uint, set: u64) -> SysResult<()> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: path is NUL-terminated; attr is a valid mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map(drop)
}

/// mount_setattr(2) on a detached tree: `set` plus MOUNT_ATTR_IDMAP with the
/// user namespace `userns_fd`, recursively.
pub fn mount_setattr_idmap(tree: c_int, set: u64, userns_fd: c_int) -> SysResult<()> {
    let attr = libc::mount_attr {
        attr_set: set | MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns_fd as u64,
    };
    // SAFETY: the path is NUL-terminated; attr is a valid mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            EMPTY.as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map(drop)
}

/// pivot_root(2).
pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult<()> {
    // SAFETY: both paths are NUL-terminated.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) }).map(drop)
}

/// umount2(2).
pub fn umount2(target: &CStr, flags: c_int) -> SysResult<()> {
    // SAFETY: target is NUL-terminated.
    check_int(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// fchdir(2).
pub fn fchdir(fd: c_int) -> SysResult<()> {
    // SAFETY: plain integer.
    check_int(unsafe { libc::fchdir(fd) }).map(drop)
}

/// chdir(2).
pub fn chdir(path: &CStr) -> SysResult<()> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

// ---- processes and credentials --------------------------------------------

/// prctl(2) with integer arguments.
pub fn prctl(option: c_int, a2: libc::c_ulong, a3: libc::c_ulong) -> SysResult<c_int> {
    // SAFETY: every option cordon uses takes integer arguments only.
    check_int(unsafe { libc::prctl(option, a2, a3, 0 as libc::c_ulong, 0 as libc::c_ulong) })
}

/// setresuid(2), as a raw system call so it affects only this thread's
/// process (the child is single-threaded) without glibc's setxid broadcast.
pub fn setresuid(uid: u32) -> SysResult<()> {
    // SAFETY: plain integers.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

/// setresgid(2), raw (see [`setresuid`]).
pub fn setresgid(gid: u32) -> SysResult<()> {
    // SAFETY: plain integers.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

/// setgroups(2) to the empty list, raw.
pub fn clear_groups() -> SysResult<()> {
    // SAFETY: a zero-length list with a null pointer.
    check(unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) }).map(drop)
}

/// sethostname(2).
pub fn sethostname(name: &CStr) -> SysResult<()> {
    let b = name.to_bytes();
    // SAFETY: b is valid for b.len() bytes.
    check_int(unsafe { libc::sethostname(b.as_ptr().cast(), b.len()) }).map(drop)
}

/// setsid(2).
pub fn setsid() -> SysResult<()> {
    // SAFETY: no arguments.
    check_int(unsafe { libc::setsid() }).map(drop)
}

/// An `RLIMIT_*` resource as libc types it: `unsigned int` in glibc's
/// `__rlimit_resource_t`, `int` in musl's.
#[cfg(target_env = "musl")]
pub type Resource = c_int;
/// An `RLIMIT_*` resource as libc types it: `unsigned int` in glibc's
/// `__rlimit_resource_t`, `int` in musl's.
#[cfg(not(target_env = "musl"))]
pub type Resource = libc::__rlimit_resource_t;

/// setrlimit(2), made as the system call both glibc's and musl's
/// setrlimit make: prlimit64 on this process. Raw, because musl's falls
/// back on ENOSYS (an outer seccomp filter) to `__synccall`, which takes
/// its thread-list lock and signals every thread it knows of: neither is
/// sound in the clone child, a copy of a multi-threaded supervisor.
pub fn setrlimit(resource: Resource, soft: u64, hard: u64) -> SysResult<()> {
    // Two 64-bit limits: the kernel's struct rlimit64 (rlim_t is u64 in
    // both libcs).
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    let this_process: libc::pid_t = 0;
    // SAFETY: prlimit64 reads one rlimit64 through a valid pointer and,
    // with a null old-limit pointer, writes nothing.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            this_process,
            resource as c_long,
            &lim as *const libc::rlimit,
            std::ptr::null_mut::<libc::rlimit>(),
        )
    })
    .map(drop)
}

/// Drop every capability from the effective, permitted and inheritable sets.
pub fn capset_zero() -> SysResult<()> {
    // struct __user_cap_header_struct and __user_cap_data_struct, and
    // _LINUX_CAPABILITY_VERSION_3: libc lacks them.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: hdr and data are the v3 structures capset expects (two data words).
    check(unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) }).map(drop)
}

/// A raw fork (clone with SIGCHLD): unlike glibc's fork it runs no atfork
/// handlers and takes no malloc lock, so it is safe in the clone3 child.
pub fn fork_raw() -> SysResult<libc::pid_t> {
    // SAFETY: clone without CLONE_VM gives the child its own copy of memory,
    // like fork; null stack and tid pointers are allowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check(r).map(|p| p as libc::pid_t)
}

/// Install a seccomp filter (SECCOMP_SET_MODE_FILTER) on this thread.
/// Needs no_new_privs (or CAP_SYS_ADMIN). With `listener`, the filter gets
/// a user-notification fd (close-on-exec), which is returned; otherwise 0.
/// A program longer than the kernel's `struct sock_fprog` can describe
/// (65,535 instructions) fails with EINVAL instead of being cut short.
pub fn seccomp_install(prog: &[libc::sock_filter], listener: bool) -> SysResult<c_int> {
    let Ok(len) = u16::try_from(prog.len()) else {
        return Err(Errno(libc::EINVAL));
    };
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    let flags: c_ulong = if listener {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        0
    };
    // SAFETY: fprog describes exactly `len` instructions of `prog`, which
    // outlives the call; the kernel only reads through the pointer.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    })
    .map(|fd| fd as c_int)
}

/// LANDLOCK_CREATE_RULESET_VERSION (linux/landlock.h); libc lacks it.
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1 << 0;
/// LANDLOCK_RULE_PATH_BENEATH (enum landlock_rule_type); libc lacks it.
const LANDLOCK_RULE_PATH_BENEATH: u32 = 1;
/// LANDLOCK_RULE_NET_PORT (enum landlock_rule_type); libc lacks it.
const LANDLOCK_RULE_NET_PORT: u32 = 2;

/// The Landlock ABI version (landlock_create_ruleset with
/// LANDLOCK_CREATE_RULESET_VERSION).
pub fn landlock_abi() -> SysResult<u32> {
    // SAFETY: a null attr with size 0 and the version flag only queries.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    })
    .map(|v| v as u32)
}

/// struct landlock_ruleset_attr; libc lacks it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LandlockRulesetAttr {
    /// Handled filesystem rights.
    pub handled_access_fs: u64,
    /// Handled network rights.
    pub handled_access_net: u64,
    /// Scopes.
    pub scoped: u64,
}

/// landlock_create_ruleset(2) with the first `size` bytes of `attr`.
pub fn landlock_create_ruleset(attr: &LandlockRulesetAttr, size: usize) -> SysResult<c_int> {
    let size = size.min(std::mem::size_of::<LandlockRulesetAttr>());
    // SAFETY: attr is a valid struct landlock_ruleset_attr of at least `size` bytes.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            attr as *const LandlockRulesetAttr,
            size,
            0u32,
        )
    })
    .map(|fd| fd as c_int)
}

/// landlock_add_rule(2) with LANDLOCK_RULE_PATH_BENEATH.
pub fn landlock_add_path_rule(ruleset: c_int, parent: c_int, access: u64) -> SysResult<()> {
    // struct landlock_path_beneath_attr (libc lacks it) is packed: 12 bytes.
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    let attr = PathBeneath {
        allowed_access: access,
        parent_fd: parent,
    };
    // SAFETY: attr is a valid packed struct landlock_path_beneath_attr.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneath,
            0u32,
        )
    })
    .map(drop)
}

/// landlock_add_rule(2) with LANDLOCK_RULE_NET_PORT.
pub fn landlock_add_port_rule(ruleset: c_int, port: u64, access: u64) -> SysResult<()> {
    // struct landlock_net_port_attr; libc lacks it.
    #[repr(C)]
    struct NetPort {
        allowed_access: u64,
        port: u64,
    }
    let attr = NetPort {
        allowed_access: access,
        port,
    };
    // SAFETY: attr is a valid struct landlock_net_port_attr.
    check(unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            LANDLOCK_RULE_NET_PORT,
            &attr as *const NetPort,
            0u32,
        )
    })
    .map(drop)
}

/// landlock_restrict_self(2).
pub fn landlock_restrict_self(ruleset: c_int) -> SysResult<()> {
    // SAFETY: plain integers.
    check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) }).map(drop)
}

/// open(path, O_PATH | O_CLOEXEC).
pub fn open_path(path: &CStr) -> SysResult<c_int> {
    // SAFETY: path is NUL-terminated.
    check_int(unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })
}

/// Whether `fd` refers to a directory.
pub fn is_dir(fd: c_int) -> SysResult<bool> {
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is valid for writing.
    check_int(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Whether the kernel offers a seccomp return action (SECCOMP_GET_ACTION_AVAIL).
pub fn seccomp_action_available(action: u32) -> bool {
    seccomp_get_action_avail(action).is_ok()
}

/// seccomp(SECCOMP_GET_ACTION_AVAIL): Ok when the kernel offers the return
/// action, else the errno (EOPNOTSUPP: not offered; EINVAL or ENOSYS: no
/// such operation or no seccomp).
pub fn seccomp_get_action_avail(action: u32) -> SysResult<()> {
    // SAFETY: the kernel reads one u32 from &action, which outlives the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0u32,
            &action as *const u32,
        )
    })
    .map(drop)
}

/// clone3(NULL, 0): a probe for the call, which fails with EINVAL where it
/// exists (ENOSYS where not) and clones nothing.
pub fn clone3_probe() -> SysResult<()> {
    // SAFETY: a size of 0 is below CLONE_ARGS_SIZE_VER0, so the kernel
    // rejects the call with EINVAL before it reads the (NULL) arguments;
    // nothing is cloned.
    check(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) }).map(drop)
}

/// lsm_list_modules(2) (Linux 6.8): fills `ids` with the ids of the active
/// LSMs and returns how many it wrote.
pub fn lsm_list_modules(ids: &mut [u64]) -> SysResult<usize> {
    // libc lacks it for x86_64 and aarch64 (the number is 461 on both).
    const SYS_LSM_LIST_MODULES: c_long = 461;
    let mut size = u32::try_from(std::mem::size_of_val(ids)).unwrap_or(u32::MAX - 7);
    // SAFETY: ids has room for `size` bytes (size never exceeds its length
    // in bytes); the kernel writes at most that many and updates `size`,
    // a valid u32; flags must be 0.
    let n = check(unsafe {
        libc::syscall(
            SYS_LSM_LIST_MODULES,
            ids.as_mut_ptr(),
            &mut size as *mut u32,
            0u32,
        )
    })?;
    Ok(usize::try_from(n).unwrap_or(0).min(ids.len()))
}

/// waitpid(2) for a child of this process, retried on EINTR: its wait status.
pub fn waitpid(pid: libc::pid_t) -> SysResult<c_int> {
    let mut status: c_int = 0;
    // SAFETY: status is a valid out pointer for the duration of the call.
    retry(|| check_int(unsafe { libc::waitpid(pid, &mut status, 0) }))?;
    Ok(status)
}

/// Whether pidfd_getfd exists (probed with an invalid pidfd: EBADF if so).
pub fn pidfd_getfd_available() -> bool {
    // SAFETY: an invalid fd only produces an error.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, -1, 0, 0) };
    !(r < 0 && Errno::last().0 == libc::ENOSYS)
}

/// pidfd_open(2).
pub fn pidfd_open(pid: libc::pid_t) -> SysResult<c_int> {
    // SAFETY: plain integers.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }).map(|fd| fd as c_int)
}

/// pidfd_send_signal(2) with no siginfo.
pub fn pidfd_send_signal(pidfd: c_int, sig: c_int) -> SysResult<()> {
    // SAFETY: plain integers and a null siginfo.
    check(unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig, std::ptr::null::<u8>(), 0) })
        .map(drop)
}

/// pidfd_getfd(2): a duplicate (close-on-exec) of another process's fd.
pub fn pidfd_getfd(pidfd: c_int, fd: c_int) -> SysResult<c_int> {
    // SAFETY: plain integers.
    check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) }).map(|fd| fd as c_int)
}

/// The hand-off call: syscall `nr` (cordon's `seccomp::HANDOFF_NR`, a
/// number no kernel implements) with `magic` and the listener fd; it blocks
/// until the supervisor answers through the listener.
pub fn seccomp_handoff(nr: u32, magic: u64, listener: c_int) -> SysResult<()> {
    // SAFETY: the call takes two integers and touches no memory of ours;
    // a kernel that does not implement `nr` (no kernel does) returns ENOSYS
    // when no filter answers it.
    check(unsafe { libc::syscall(nr as c_long, magic, listener as c_long) }).map(drop)
}

/// struct seccomp_notif (libc's): the call's number, architecture,
/// instruction pointer and arguments are in its `data` (struct seccomp_data).
pub type SeccompNotif = libc::seccomp_notif;

/// struct seccomp_notif_resp (libc's).
pub type SeccompNotifResp = libc::seccomp_notif_resp;

/// Receive one notification (SECCOMP_IOCTL_NOTIF_RECV).
pub fn notif_recv(fd: c_int) -> SysResult<SeccompNotif> {
    // SAFETY: struct seccomp_notif is plain integers, for which all-zero is
    // valid (and the kernel wants it zeroed).
    let mut n: SeccompNotif = unsafe { std::mem::zeroed() };
    // SAFETY: n is a zeroed struct seccomp_notif (80 bytes, the size encoded
    // in the request) the kernel fills.
    check(unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n as *mut SeccompNotif) } as c_long)?;
    Ok(n)
}

/// Answer a notification (SECCOMP_IOCTL_NOTIF_SEND).
pub fn notif_send(fd: c_int, resp: &SeccompNotifResp) -> SysResult<()> {
    let mut r = *resp;
    // SAFETY: r is a struct seccomp_notif_resp (24 bytes) the kernel reads.
    check(unsafe {
        libc::ioctl(
            fd,
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut r as *mut SeccompNotifResp,
        )
    } as c_long)
    .map(drop)
}

/// Whether the notification is still pending (its caller alive and waiting).
pub fn notif_id_valid(fd: c_int, id: u64) -> bool {
    let mut id = id;
    // SAFETY: the kernel reads one u64.
    unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id as *mut u64) == 0 }
}

/// _exit(2): leave at once, without running atexit handlers.
pub fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// kill(2).
pub fn kill(pid: libc::pid_t, sig: c_int) -> SysResult<()> {
    // SAFETY: plain integers.
    check_int(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// execve(2); returns only on failure.
///
/// # Safety
/// `argv` and `envp` must be null-terminated arrays of pointers to
/// NUL-terminated strings that stay valid for the call.
pub unsafe fn execve(path: &CStr, argv: *const *const c_char, envp: *const *const c_char) -> Errno {
    // SAFETY: path is NUL-terminated; argv and envp are null-terminated
    // arrays of NUL-terminated strings kept alive by the launch plan.
    unsafe { libc::execve(path.as_ptr(), argv, envp) };
    Errno::last()
}

/// A full signal set: every signal 1 to 64, whichever libc cordon is built
/// with. sigfillset leaves out the signals the C library keeps for itself
/// (glibc 32 and 33, musl 32 to 34); init blocks and takes every signal
/// (`sigwaitinfo`, a signalfd), and under musl those three have no
/// handler, so the kernel dropped them (a pid namespace's init gets no
/// signal it has no handler for): a signal 34 sent to init from outside
/// was lost instead of forwarded to the payload. glibc's pthread_sigmask
/// still leaves its 32 and 33 unblocked (it has handlers for them).
pub fn sigset_full() -> libc::sigset_t {
    let mut s = sigset_empty();
    // SAFETY: sigset_t is at least 8 bytes (asserted below) and this writes
    // its first 8, which the kernel reads as the mask of signals 1 to 64
    // (bit N-1 for signal N; the system calls pass _NSIG/8 = 8 bytes), the
    // layout of both glibc's and musl's sigset_t.
    unsafe {
        (&mut s as *mut libc::sigset_t)
            .cast::<u64>()
            .write_unaligned(u64::MAX)
    };
    s
}
const _: () = assert!(std::mem::size_of::<libc::sigset_t>() >= 8);

/// An empty signal set.
pub fn sigset_empty() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        s
    }
}

/// sigprocmask(SIG_SETMASK), returning the old mask.
pub fn set_sigmask(set: &libc::sigset_t) -> SysResult<libc::sigset_t> {
    let mut old = sigset_empty();
    // SAFETY: set and old are valid sigsets.
    match unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, set, &mut old) } {
        0 => Ok(old),
        r => Err(Errno(r)),
    }
}

/// sigprocmask(SIG_BLOCK): add `set` to the mask, returning the old mask.
pub fn block_signals(set: &libc::sigset_t) -> SysResult<libc::sigset_t> {
    let mut old = sigset_empty();
    // SAFETY: set and old are valid sigsets.
    match unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, &mut old) } {
        0 => Ok(old),
        r => Err(Errno(r)),
    }
}

/// Reset to the default the signals set in `mask` (bit N-1 for signal N),
/// e.g. the ignored ones, which stay ignored across execve.
pub fn unignore_signals(mask: u64) {
    for sig in 1..=64 {
        if mask & (1 << (sig - 1)) == 0 || sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // The kernel's struct sigaction: handler, flags, restorer, mask.
        // The raw call, because glibc's wrappers refuse its internal
        // real-time signals (32, 33), which may be ignored all the same.
        let act: [u64; 4] = [libc::SIG_DFL as u64, 0, 0, 0];
        // SAFETY: act is a valid kernel sigaction for SIG_DFL; the old
        // action is not wanted (null); the mask size is 8 bytes.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                act.as_ptr(),
                std::ptr::null::<u64>(),
                8usize,
            )
        };
    }
}

/// `std::fs::canonicalize` without a readlink of every component when
/// none is a symlink (parent side: allocates). For an absolute path, one
/// `openat2` with `RESOLVE_NO_SYMLINKS` tells: when it succeeds, every
/// component is a real directory entry, so resolving `.`, `..` and
/// repeated `/` by name gives what the kernel resolved. Anything else (a
/// symlink on the way, a missing file, a relative path) takes
/// `canonicalize`, so its result and its errors are unchanged.
pub fn canonicalize(p: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = p.as_os_str().as_bytes();
    if bytes.first() == Some(&b'/') {
        if let Ok(c) = std::ffi::CString::new(bytes) {
            if let Ok(fd) = openat2(
                libc::AT_FDCWD,
                &c,
                libc::O_PATH | libc::O_CLOEXEC,
                0,
                RESOLVE_NO_SYMLINKS,
            ) {
                // SAFETY: `fd` was opened just above and is used no more.
                unsafe { close(fd) };
                let mut out = std::path::PathBuf::from("/");
                for c in bytes.split(|&b| b == b'/') {
                    match c {
                        b"" | b"." => {}
                        b".." => {
                            out.pop();
                        }
                        c => out.push(std::ffi::OsStr::from_bytes(c)),
                    }
                }
                return Ok(out);
            }
        }
    }
    std::fs::canonicalize(p)
}

/// The text of a small procfs file (parent side: allocates). procfs
/// reports a size of 0, so `std::fs::read_to_string` would start with
/// 32-byte reads and double up (eight reads for /proc/self/status); this
/// starts with `hint` bytes, and two reads usually do.
pub fn read_proc(path: &str, hint: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(hint);
    std::fs::File::open(path)?.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|_| std::io::Error::from_raw_os_error(libc::EILSEQ))
}

/// Call `f` with the name of each entry of the directory `path` (its
/// symlinks followed, as `std::fs::read_dir` does), but `.` and `..`, in
/// the order the filesystem gives them, at most `max` of them. Parent
/// side. The names are read with getdents64 into a stack buffer and lent
/// to `f`, with no allocation per entry: `read_dir` made two (the entry
/// and its name), which for the default policy's /etc patterns (146
/// entries) cost as much as the kernel's listing.
pub fn list_dir(path: &CStr, max: usize, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    let fd = openat(
        libc::AT_FDCWD,
        path,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
    let mut buf = [0u8; 16384];
    let mut seen = 0;
    let result = 'read: loop {
        // SAFETY: the kernel writes at most buf.len() bytes into buf.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        let n = match n {
            n if n < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(e);
            }
            0 => break Ok(()),
            n => (n as usize).min(buf.len()),
        };
        // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2),
        // d_type (1), d_name (NUL-terminated, padded to d_reclen).
        let mut at = 0;
        while at + 19 < n {
            let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
            if reclen < 20 || at + reclen > n {
                break 'read Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            let field = &buf[at + 19..at + reclen];
            let name = &field[..field.iter().position(|&b| b == 0).unwrap_or(field.len())];
            at += reclen;
            if name == b"." || name == b".." {
                continue;
            }
            if seen == max {
                break 'read Ok(());
            }
            seen += 1;
            f(name);
        }
    };
    // SAFETY: an fd opened above, closed once.
    unsafe { close(fd) };
    result
}

/// `parse` of the text of a small procfs file, read into a stack buffer
/// with open, read and close only: `read_proc` costs a statx, an lseek
/// and a heap block (4 KiB for /proc/self/status, whose allocation after a
/// launch's frees made malloc consolidate its free lists: most of the
/// cost of reading the supervisor's peak RSS at the end of every launch
/// and every command of a named sandbox). A file that does not fit (the
/// status of a process in thousands of groups) is read with `read_proc`.
/// `None` when it cannot be read or is not UTF-8. Parent side.
pub fn read_small<T>(path: &CStr, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    let mut buf = [0u8; 8192];
    let fd = openat(libc::AT_FDCWD, path, libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    let mut len = 0;
    let complete = loop {
        match read(fd, &mut buf[len..]) {
            Ok(0) => break true,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    break false;
                }
            }
            Err(_) => break false,
        }
    };
    // SAFETY: an fd opened above, closed once.
    unsafe { close(fd) };
    if complete {
        parse(std::str::from_utf8(&buf[..len]).ok()?)
    } else {
        parse(&read_proc(path.to_str().ok()?, 65536).ok()?)
    }
}

/// The value of the line `key` (e.g. `"VmHWM:"`) of /proc/self/status,
/// trimmed, given to `parse` ([`read_small`]).
pub fn proc_self_status<T>(key: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    read_small(c"/proc/self/status", |text| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .and_then(parse)
    })
}

/// The signals this process ignores (SigIgn in /proc/self/status), as a
/// mask with bit N-1 for signal N. Parent side.
pub fn ignored_signals() -> u64 {
    proc_self_status("SigIgn:", |v| u64::from_str_radix(v, 16).ok())
        // Unknown: reset them all.
        .unwrap_or(u64::MAX)
}

/// `SOCK_DIAG_BY_FAMILY`, the sock_diag request type (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `UDIAG_SHOW_NAME` (linux/unix_diag.h): attach each socket's address.
const UDIAG_SHOW_NAME: u32 = 1;
/// `UNIX_DIAG_NAME`, the attribute that carries it.
const UNIX_DIAG_NAME: u16 = 0;
/// `TCP_LISTEN`, the state a listening unix socket is in.
const TCP_LISTEN: u32 = 10;

/// Why a sock_diag dump could not be read to its end.
#[derive(Debug, PartialEq, Eq)]
pub enum DiagError {
    /// A system call failed (no sock_diag for unix sockets here, say).
    Sys(Errno),
    /// The kernel's answer was not what was asked for.
    Malformed(&'static str),
    /// More than the caller's bound of bytes or names.
    TooMany,
}

/// The addresses of the unix sockets of this network namespace that
/// listen and are bound to a name (not to an abstract or no address), as
/// the kernel holds them (`sun_path` up to its first NUL), from one
/// sock_diag dump (`NETLINK_SOCK_DIAG`, what `ss -xl` reads). The kernel
/// picks the listening sockets and formats nothing: /proc/net/unix prints
/// every socket of the namespace as text, which costs a launch
/// milliseconds on a host with thousands of them. At most `max_bytes` of
/// answer and `max_names` names are read. Parent side: allocates.
pub fn unix_listening_names(max_bytes: usize, max_names: usize) -> Result<Vec<Vec<u8>>, DiagError> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: socket takes integers.
    let fd = check_int(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    })
    .map_err(DiagError::Sys)?;
    // SAFETY: fd was just opened here and is owned by nothing else.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let seq: u32 = 1;
    // nlmsghdr (16 bytes), then unix_diag_req (24 bytes).
    let mut req = [0u8; 40];
    req[0..4].copy_from_slice(&40u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    req[16] = libc::AF_UNIX as u8;
    req[20..24].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    req[28..32].copy_from_slice(&UDIAG_SHOW_NAME.to_ne_bytes());
    req[32..40].copy_from_slice(&[0xff; 8]);
    // SAFETY: sockaddr_nl is integers; a zeroed one is the kernel (pid 0).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    let sent = retry(|| {
        // SAFETY: req and kernel are valid for the lengths given.
        check(unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        } as c_long)
    })
    .map_err(DiagError::Sys)?;
    if sent as usize != req.len() {
        return Err(DiagError::Malformed("short send"));
    }
    let mut names = Vec::new();
    // Not zeroed: the kernel writes what is read. Zeroing it cost 33,000
    // of the 1.2 million instructions cordon ran before its clone, and
    // touched 8 pages, for an answer that is usually one short datagram.
    let mut buf: Vec<u8> = Vec::with_capacity(32 << 10);
    let mut total = 0usize;
    loop {
        let cap = buf.capacity();
        let n = retry(|| {
            // SAFETY: buf's allocation is valid for writes of `cap` bytes
            // (its capacity; what it held is not needed again). With
            // MSG_TRUNC netlink returns the datagram's real length.
            check(
                unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), cap, libc::MSG_TRUNC) }
                    as c_long,
            )
        })
        .map_err(DiagError::Sys)? as usize;
        if n > cap {
            return Err(DiagError::Malformed("a datagram larger than the buffer"));
        }
        // SAFETY: n <= capacity (checked above), and recv wrote the
        // datagram's n bytes (it was not truncated), so they are
        // initialised.
        unsafe { buf.set_len(n) };
        if n == 0 {
            return Err(DiagError::Malformed("the answer ended before NLMSG_DONE"));
        }
        total += n;
        if total > max_bytes {
            return Err(DiagError::TooMany);
        }
        if parse_unix_diag(&buf, seq, &mut names, max_names)? {
            return Ok(names);
        }
    }
}

/// Read one datagram of a unix sock_diag dump into `names` (see
/// [`unix_listening_names`]); true at its end (NLMSG_DONE). A safe parser
/// of untrusted bytes: every length is checked against what is there.
pub fn parse_unix_diag(
    mut buf: &[u8],
    seq: u32,
    names: &mut Vec<Vec<u8>>,
    max_names: usize,
) -> Result<bool, DiagError> {
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    while !buf.is_empty() {
        if buf.len() < 16 {
            return Err(DiagError::Malformed("a truncated message header"));
        }
        let len = u32_at(buf, 0) as usize;
        let kind = u16_at(buf, 4);
        if len < 16 || len > buf.len() {
            return Err(DiagError::Malformed("a message length out of bounds"));
        }
        if u32_at(buf, 8) != seq {
            return Err(DiagError::Malformed("an answer to another request"));
        }
        let body = &buf[16..len];
        match kind as c_int {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => {
                let code = if body.len() >= 4 {
                    u32_at(body, 0) as i32
                } else {
                    0
                };
                return Err(if code < 0 {
                    DiagError::Sys(Errno(-code))
                } else {
                    DiagError::Malformed("an error message without an error")
                });
            }
            _ if kind == SOCK_DIAG_BY_FAMILY => {
                // unix_diag_msg (16 bytes), then attributes.
                if body.len() < 16 {
                    return Err(DiagError::Malformed("a truncated unix_diag_msg"));
                }
                let mut attrs = &body[16..];
                while attrs.len() >= 4 {
                    let alen = u16_at(attrs, 0) as usize;
                    if alen < 4 || alen > attrs.len() {
                        return Err(DiagError::Malformed("an attribute length out of bounds"));
                    }
                    if u16_at(attrs, 2) == UNIX_DIAG_NAME {
                        let path = &attrs[4..alen];
                        let path = &path[..path.iter().position(|&b| b == 0).unwrap_or(path.len())];
                        // Abstract names start with NUL: nothing on disk.
                        if !path.is_empty() {
                            if names.len() >= max_names {
                                return Err(DiagError::TooMany);
                            }
                            names.push(path.to_vec());
                        }
                    }
                    attrs = &attrs[((alen + 3) & !3).min(attrs.len())..];
                }
            }
            _ => {}
        }
        buf = &buf[((len + 3) & !3).min(buf.len())..];
    }
    Ok(false)
}

/// The SIOCSIFFLAGS request that brings `lo` up. Builds a value only (no
/// call into libc but a possible memset): the netns helper uses it too.
pub fn loopback_request() -> libc::ifreq {
    // SAFETY: a zeroed ifreq is valid (integers and arrays).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    req
}

/// Bring the loopback interface up in the current network namespace.
pub fn loopback_up() -> SysResult<()> {
    // SAFETY: socket takes integers.
    let fd = check_int(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    let req = loopback_request();
    // SAFETY: req is a valid ifreq naming "lo".
    let r = check_int(unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req) });
    // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { close(fd) };
    r.map(drop)
}

/// Give `lo` a second IPv4 address, `addr` (labelled `lo:1`, the class A
/// netmask of 127/8). Allocation-free (the clone child calls it).
pub fn loopback_alias(addr: [u8; 4]) -> SysResult<()> {
    // SAFETY: socket takes integers.
    let fd = check_int(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: a zeroed ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo:1\0") {
        *d = *s as c_char;
    }
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: ifru_addr is a sockaddr (16 bytes), as large as sockaddr_in;
    // the write fills it with a valid sockaddr_in.
    unsafe {
        std::ptr::write_unaligned(
            (&mut req.ifr_ifru.ifru_addr as *mut libc::sockaddr).cast::<libc::sockaddr_in>(),
            sin,
        )
    };
    // SAFETY: req is a valid ifreq naming "lo:1" with an AF_INET address.
    let r = check_int(unsafe { libc::ioctl(fd, libc::SIOCSIFADDR as _, &req) });
    // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { close(fd) };
    r.map(drop)
}

// ---- terminals: the sandbox's pty (interactive use) ----

/// write(2) once, retrying on EINTR: how many bytes were written.
pub fn write(fd: c_int, buf: &[u8]) -> SysResult<usize> {
    // SAFETY: buf is valid for buf.len() bytes.
    retry(|| check(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) } as c_long)).map(|n| n as usize)
}

/// Whether `fd` is a terminal (TCGETS succeeds).
pub fn isatty(fd: c_int) -> bool {
    tcgetattr(fd).is_ok()
}

/// Whether this process's group is the foreground group of the terminal
/// `fd` (a background job that changed the terminal's modes or read from
/// it would be stopped).
pub fn in_foreground(fd: c_int) -> bool {
    let mut pgrp: libc::pid_t = 0;
    // SAFETY: TIOCGPGRP writes one pid_t through the pointer, valid for it.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGPGRP, &mut pgrp as *mut libc::pid_t) };
    // SAFETY: getpgrp cannot fail.
    r == 0 && pgrp == unsafe { libc::getpgrp() }
}

/// The terminal attributes of `fd` (TCGETS).
pub fn tcgetattr(fd: c_int) -> SysResult<libc::termios> {
    // SAFETY: termios is plain integers, for which all-zero is valid.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: TCGETS writes one termios through the pointer, valid for it.
    check_int(unsafe { libc::ioctl(fd, libc::TCGETS, &mut t as *mut libc::termios) })?;
    Ok(t)
}

/// Set the terminal attributes of `fd` at once (TCSETS, tcsetattr's TCSANOW).
pub fn tcsetattr(fd: c_int, t: &libc::termios) -> SysResult<()> {
    // SAFETY: TCSETS reads one termios through the pointer.
    retry(|| check_int(unsafe { libc::ioctl(fd, libc::TCSETS, t as *const libc::termios) })).map(drop)
}

/// The window size of the terminal `fd` (TIOCGWINSZ).
pub fn get_winsize(fd: c_int) -> SysResult<libc::winsize> {
    let mut w = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, valid for it.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut w as *mut libc::winsize) })?;
    Ok(w)
}

/// Set the window size of the terminal `fd` (TIOCSWINSZ; the kernel sends
/// SIGWINCH to its foreground group when it changes).
pub fn set_winsize(fd: c_int, w: &libc::winsize) -> SysResult<()> {
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, w as *const libc::winsize) }).map(drop)
}

/// Unlock the slave of the pty master `fd` (TIOCSPTLCK 0: unlockpt).
pub fn pty_unlock(fd: c_int) -> SysResult<()> {
    let zero: c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCSPTLCK, &zero as *const c_int) }).map(drop)
}

/// Open the slave of the pty master `fd` through the master itself
/// (TIOCGPTPEER, Linux 4.13): no path lookup, no race with whoever could
/// change /dev/pts. `flags` as for open (O_RDWR | O_NOCTTY | O_CLOEXEC).
pub fn pty_peer(fd: c_int, flags: c_int) -> SysResult<c_int> {
    // SAFETY: TIOCGPTPEER takes its open flags by value and returns a new fd.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCGPTPEER, flags as libc::c_ulong) })
}

/// Make the terminal `fd` the calling session leader's controlling
/// terminal (TIOCSCTTY 0: never steal one from another session).
pub fn set_controlling_tty(fd: c_int) -> SysResult<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0 as libc::c_ulong) }).map(drop)
}

/// The file status flags of `fd` (F_GETFL).
pub fn get_fl(fd: c_int) -> SysResult<c_int> {
    // SAFETY: F_GETFL takes no argument.
    check_int(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

/// Set the file status flags of `fd` (F_SETFL).
pub fn set_fl(fd: c_int, flags: c_int) -> SysResult<()> {
    // SAFETY: F_SETFL takes an int argument.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_dir_lists_what_read_dir_does() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let listed = |dir: &std::path::Path, max: usize| {
            let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
            let mut names = Vec::new();
            list_dir(&c, max, |n| names.push(std::ffi::OsString::from_vec(n.to_vec()))).map(|_| names)
        };
        let std_names = |dir: &std::path::Path| {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        // Enough long names for several getdents64 calls (16 KiB each),
        // one that is not UTF-8, one with a newline.
        let d = std::env::temp_dir().join(format!("cordon-list-dir-{}", std::process::id()));
        std::fs::create_dir(&d).unwrap();
        for i in 0..600 {
            std::fs::write(d.join(format!("entry-{i:04}-{}", "x".repeat(40))), b"").unwrap();
        }
        std::fs::write(d.join(std::ffi::OsStr::from_bytes(b"bad-\xff-name")), b"").unwrap();
        std::fs::write(d.join("two\nlines"), b"").unwrap();
        std::os::unix::fs::symlink("/nonexistent", d.join("link")).unwrap();
        for dir in [
            d.as_path(),
            std::path::Path::new("/etc"),
            std::path::Path::new("/"),
        ] {
            let mut got = listed(dir, usize::MAX).unwrap();
            got.sort();
            assert_eq!(got, std_names(dir), "{}", dir.display());
        }
        // At most `max`, in the filesystem's order: a prefix of the whole.
        let all = listed(&d, usize::MAX).unwrap();
        assert_eq!(all.len(), 603);
        assert_eq!(listed(&d, 10).unwrap(), all[..10]);
        assert_eq!(listed(&d, 0).unwrap(), Vec::<std::ffi::OsString>::new());
        // Errors as std's: a missing directory, a file.
        let missing = listed(&d.join("none"), 10).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            listed(&d.join("link"), 10).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        assert_eq!(
            listed(&d.join("two\nlines"), 10).unwrap_err().raw_os_error(),
            Some(libc::ENOTDIR)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn read_small_reads_whole_files_small_or_not() {
        assert_eq!(
            read_small(c"/proc/sys/kernel/cap_last_cap", |s| Some(s.to_string())),
            read_proc("/proc/sys/kernel/cap_last_cap", 16).ok()
        );
        assert_eq!(
            read_small(c"/proc/self/cgroup", |s| Some(s.to_string())),
            read_proc("/proc/self/cgroup", 1024).ok()
        );
        // Past the stack buffer (8 KiB), exactly at it, and empty.
        let d = std::env::temp_dir().join(format!("cordon-read-small-{}", std::process::id()));
        std::fs::create_dir(&d).unwrap();
        for len in [0usize, 1, 8191, 8192, 8193, 20000] {
            let text: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let f = d.join(format!("f{len}"));
            std::fs::write(&f, &text).unwrap();
            let c = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
            assert_eq!(
                read_small(&c, |s| Some(s.to_string())).as_deref(),
                Some(text.as_str()),
                "{len}"
            );
        }
        std::fs::write(d.join("bad"), b"\xff\xfe").unwrap();
        let bad = std::ffi::CString::new(d.join("bad").to_str().unwrap()).unwrap();
        assert_eq!(read_small(&bad, |s| Some(s.len())), None, "not UTF-8");
        assert_eq!(read_small(c"/nonexistent/file", |s| Some(s.len())), None);
        assert_eq!(read_small(c"/proc/self/status", |_| None::<u8>), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn proc_self_status_reads_fields_as_read_proc_does() {
        let text = read_proc("/proc/self/status", 4096).unwrap();
        let line = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        // Fields that do not change between the two reads.
        for key in ["Name:", "Tgid:", "SigIgn:", "CapBnd:", "Seccomp:"] {
            assert_eq!(proc_self_status(key, |v| Some(v.to_string())), line(key), "{key}");
        }
        assert_eq!(
            proc_self_status("SigIgn:", |v| u64::from_str_radix(v, 16).ok()),
            line("SigIgn:").and_then(|v| u64::from_str_radix(&v, 16).ok())
        );
        let hwm = proc_self_status("VmHWM:", |v| v.trim_end_matches("kB").trim().parse::<u64>().ok());
        assert!(hwm.is_some_and(|kb| kb > 0), "{hwm:?}");
        // A missing line, and a value the parser refuses: None.
        assert_eq!(proc_self_status("NoSuchField:", |v| Some(v.to_string())), None);
        assert_eq!(proc_self_status("Name:", |v| v.parse::<u64>().ok()), None);
        assert_eq!(
            ignored_signals(),
            line("SigIgn:").map_or(u64::MAX, |v| u64::from_str_radix(&v, 16).unwrap())
        );
    }

    /// One netlink message: header (`kind`, `seq`) and `body`, padded.
    fn nlmsg(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    /// A unix_diag_msg with a UNIX_DIAG_NAME attribute holding `name`.
    fn diag_body(name: &[u8]) -> Vec<u8> {
        let mut b = vec![libc::AF_UNIX as u8, libc::SOCK_STREAM as u8, 10, 0];
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&((4 + name.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&UNIX_DIAG_NAME.to_ne_bytes());
        b.extend_from_slice(name);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    #[test]
    fn unix_diag_answers_are_parsed_and_malformed_ones_refused() {
        let mut names = Vec::new();
        // Two sockets (a path with its NUL, an abstract name), then done.
        let mut buf = nlmsg(SOCK_DIAG_BY_FAMILY, 7, &diag_body(b"/run/a.sock\0"));
        buf.extend(nlmsg(SOCK_DIAG_BY_FAMILY, 7, &diag_body(b"\0abstract")));
        assert_eq!(parse_unix_diag(&buf, 7, &mut names, 10), Ok(false));
        assert_eq!(names, vec![b"/run/a.sock".to_vec()]);
        let done = nlmsg(libc::NLMSG_DONE as u16, 7, &[0; 4]);
        assert_eq!(parse_unix_diag(&done, 7, &mut names, 10), Ok(true));
        // More names than allowed.
        let one = nlmsg(SOCK_DIAG_BY_FAMILY, 7, &diag_body(b"/b"));
        assert_eq!(parse_unix_diag(&one, 7, &mut names, 1), Err(DiagError::TooMany));
        // The kernel's error.
        let err = nlmsg(libc::NLMSG_ERROR as u16, 7, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            parse_unix_diag(&err, 7, &mut names, 10),
            Err(DiagError::Sys(Errno(libc::EPERM)))
        );
        // Another request's answer.
        assert!(matches!(
            parse_unix_diag(&one, 8, &mut names, 10),
            Err(DiagError::Malformed(_))
        ));
        // Every truncation of a valid answer is refused or read as far as
        // it is whole, never read past its end.
        for cut in 1..buf.len() {
            let mut n = Vec::new();
            let _ = parse_unix_diag(&buf[..cut], 7, &mut n, 10);
            assert!(n.len() <= 1);
        }
        // A message or attribute that claims more than there is.
        let mut long = one.clone();
        long[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(matches!(
            parse_unix_diag(&long, 7, &mut names, 10),
            Err(DiagError::Malformed(_))
        ));
        let mut attr = one.clone();
        attr[32..34].copy_from_slice(&200u16.to_ne_bytes());
        assert!(matches!(
            parse_unix_diag(&attr, 7, &mut names, 10),
            Err(DiagError::Malformed(_))
        ));
        let mut short = one;
        short[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(matches!(
            parse_unix_diag(&short, 7, &mut names, 10),
            Err(DiagError::Malformed(_))
        ));
    }

    #[test]
    fn unix_diag_lists_the_listening_named_sockets_and_no_others() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};
        let d = std::env::temp_dir().join(format!("cordon-diag-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let listening = d.join("listening.sock");
        let bound = d.join("bound.sock");
        let _l = UnixListener::bind(&listening).unwrap();
        let _b = UnixDatagram::bind(&bound).unwrap();
        let abs = format!("cordon-diag-{}", std::process::id());
        let _a = UnixListener::bind_addr(&SocketAddr::from_abstract_name(abs.as_bytes()).unwrap()).unwrap();
        let names = match unix_listening_names(16 << 20, 1 << 20) {
            Ok(n) => n,
            Err(DiagError::Sys(e)) if std::env::var_os("CORDON_TEST_REQUIRE").is_none() => {
                println!("SKIPPED: no sock_diag for unix sockets here: {}", e.describe());
                return;
            }
            Err(e) => panic!("sock_diag: {e:?}"),
        };
        let _ = std::fs::remove_dir_all(&d);
        let has = |p: &[u8]| names.iter().any(|n| n == p);
        assert!(has(listening.as_os_str().as_bytes()), "{names:?}");
        assert!(!has(bound.as_os_str().as_bytes()), "not listening: {names:?}");
        assert!(
            !names.iter().any(|n| n.ends_with(abs.as_bytes())),
            "abstract: {names:?}"
        );
        assert!(
            names.iter().all(|n| !n.is_empty() && !n.contains(&0)),
            "{names:?}"
        );
    }

    #[test]
    fn canonicalize_agrees_with_std_with_and_without_symlinks() {
        let d = std::env::temp_dir().join(format!("cordon-canon-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/f"), b"x").unwrap();
        std::os::unix::fs::symlink("a/b", d.join("link")).unwrap();
        let base = d.to_str().unwrap().to_string();
        let cases = [
            "/".to_string(),
            "/usr/bin".to_string(),
            "//usr/./bin/".to_string(),
            format!("{base}/a/b/../f"),
            format!("{base}/a/./b//"),
            // A symlink on the way: the slow path, and ".." after it is
            // resolved from the link's target, not by name.
            format!("{base}/link"),
            format!("{base}/link/../f"),
            format!("{base}/a/f/.."),
            format!("{base}/missing"),
            format!("{base}/a/f/x"),
            "relative/path".to_string(),
            "".to_string(),
            "/..".to_string(),
            "//".to_string(),
            // Magic links (the slow path) and ".." out of /proc's mounts.
            "/proc/self".to_string(),
            "/proc/self/fd/..".to_string(),
            "/dev/fd".to_string(),
            "/proc/sys/..".to_string(),
        ];
        // A name that is not UTF-8.
        let odd = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xff\xfe");
        std::fs::create_dir(d.join("a").join(odd)).unwrap();
        let mut paths: Vec<std::path::PathBuf> = cases.iter().map(std::path::PathBuf::from).collect();
        paths.push(d.join("a").join(odd).join(".."));
        paths.push(d.join("link").join(odd));
        for p in &paths {
            let c = p.display();
            match (canonicalize(p), std::fs::canonicalize(p)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{c}"),
                (Err(a), Err(b)) => assert_eq!(a.raw_os_error(), b.raw_os_error(), "{c}"),
                (a, b) => panic!("{c}: {a:?} against std's {b:?}"),
            }
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_full_signal_set_blocks_every_signal_but_the_libcs_own() {
        let full = sigset_full();
        for sig in 1..=64 {
            // SAFETY: full is an initialised sigset.
            assert_eq!(unsafe { libc::sigismember(&full, sig) }, 1, "{sig}");
        }
        // In a thread of its own (the mask is per thread): what the kernel
        // then blocks, from /proc. Signal 34 is musl's SIGSYNCCALL, which
        // its sigfillset leaves out; glibc's pthread_sigmask still leaves
        // out its 32 and 33.
        let blocked = std::thread::spawn(|| {
            let old = set_sigmask(&sigset_full()).expect("sigmask");
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
            set_sigmask(&old).expect("sigmask back");
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .expect("SigBlk");
            u64::from_str_radix(line.trim(), 16).expect("hex")
        })
        .join()
        .expect("thread");
        let kept: u64 = if cfg!(target_env = "musl") { 0 } else { 0b11 << 31 };
        let unblockable = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));
        assert_eq!(blocked, !(kept | unblockable), "{blocked:#x}");
    }

    #[test]
    fn a_filter_longer_than_sock_fprog_can_say_is_refused() {
        // Refused before the system call: nothing is installed on this
        // test thread (the kernel itself takes at most 4096).
        let ret_allow = libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        };
        let long = vec![ret_allow; usize::from(u16::MAX) + 1];
        assert_eq!(seccomp_install(&long, false), Err(Errno(libc::EINVAL)));
    }

    #[test]
    fn the_kernel_abi_values_taken_from_libc_are_the_kernels() {
        // The values of the local copies libc's definitions replaced
        // (linux/mount.h, openat2.h, close_range.h, seccomp.h, pidfd.h).
        assert_eq!(
            [
                MOUNT_ATTR_RDONLY,
                MOUNT_ATTR_NOSUID,
                MOUNT_ATTR_NODEV,
                MOUNT_ATTR_NOEXEC,
                MOUNT_ATTR_IDMAP
            ],
            [0x1, 0x2, 0x4, 0x8, 0x0010_0000]
        );
        assert_eq!(
            [
                OPEN_TREE_CLONE,
                OPEN_TREE_CLOEXEC,
                MOVE_MOUNT_F_EMPTY_PATH,
                MOVE_MOUNT_T_EMPTY_PATH
            ],
            [1, libc::O_CLOEXEC as c_uint, 0x4, 0x40]
        );
        assert_eq!(
            [RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_IN_ROOT],
            [0x02, 0x04, 0x10]
        );
        assert_eq!(CLOSE_RANGE_CLOEXEC, 1 << 2);
        // The kernel reads an ioctl request as 32 bits (libc's musl binding
        // types them `c_int`, so the _IOWR ones are negative there).
        assert_eq!(
            [
                libc::SECCOMP_IOCTL_NOTIF_RECV as u32,
                libc::SECCOMP_IOCTL_NOTIF_SEND as u32,
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID as u32,
            ],
            [0xc050_2100, 0xc018_2101, 0x4008_2102]
        );
        assert_eq!(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER, 1 << 3);
        assert_eq!(
            [libc::SECCOMP_SET_MODE_FILTER, libc::SECCOMP_GET_ACTION_AVAIL],
            [1, 2]
        );
        assert_eq!(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE, 1);
        assert_eq!(libc::PIDFD_THREAD, libc::O_EXCL as c_uint);
        assert_eq!(libc::CLONE_NEWTIME, 0x80);
        assert_eq!(
            [
                libc::SECBIT_NOROOT,
                libc::SECBIT_NOROOT_LOCKED,
                libc::SECBIT_NO_SETUID_FIXUP,
                libc::SECBIT_KEEP_CAPS_LOCKED,
                libc::SECBIT_NO_CAP_AMBIENT_RAISE,
                libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
            ],
            [1 << 0, 1 << 1, 1 << 2, 1 << 5, 1 << 6, 1 << 7]
        );
    }

    #[test]
    fn fd_path_formats_without_allocating() {
        let mut b = [0u8; 32];
        assert_eq!(fd_path(0, &mut b).to_bytes(), b"/proc/self/fd/0");
        assert_eq!(
            fd_path(1234567890, &mut b).to_bytes(),
            b"/proc/self/fd/1234567890"
        );
        assert_eq!(fd_path(i32::MAX, &mut b).to_bytes(), b"/proc/self/fd/2147483647");
    }
}

/// Send `data` as one message on the unix socket `sock`, with `fds` (at
/// most [`MAX_PASSED_FDS`]; none: a plain message) by SCM_RIGHTS.
/// Allocation-free.
pub fn send_msg_fds(sock: c_int, data: &[u8], fds: &[c_int]) -> SysResult<()> {
    send_msg_fds_flags(sock, data, fds, 0)
}

/// [`send_msg_fds`] with extra sendmsg flags (MSG_DONTWAIT: EAGAIN instead
/// of blocking while the peer's queue is full). Allocation-free.
pub fn send_msg_fds_flags(sock: c_int, data: &[u8], fds: &[c_int], flags: c_int) -> SysResult<()> {
    if fds.len() > MAX_PASSED_FDS || data.is_empty() {
        return Err(Errno(libc::EINVAL));
    }
    let bytes = std::mem::size_of_val(fds) as u32;
    let mut control: FdControl = [0; 10];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr is a valid value (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(bytes) } as _;
        // SAFETY: as in `send_fds`: the control buffer is aligned for
        // cmsghdr and holds CMSG_SPACE(4 * MAX_PASSED_FDS) bytes; `fds`
        // is `bytes` long.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            if c.is_null() {
                return Err(Errno(libc::EINVAL));
            }
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(c), bytes as usize);
        }
    }
    // SAFETY: msg points at the iovec (which the kernel only reads for
    // sendmsg) and the control buffer above, both alive for the call.
    retry(|| check(unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL | flags) } as c_long)).map(drop)
}

/// One message received by [`recv_msg_fds`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes of data (0: EOF).
    pub len: usize,
    /// Fds received into the caller's array.
    pub fds: usize,
    /// The message (or its fds) did not fit and was cut short.
    pub truncated: bool,
}

/// Receive one message from the unix socket `sock` into `buf`, and the
/// fds it carries (close-on-exec) into `out`. Fds beyond `out`'s room are
/// closed. Allocation-free. `flags`: extra recvmsg flags (MSG_DONTWAIT).
pub fn recv_msg_fds(
    sock: c_int,
    buf: &mut [u8],
    out: &mut [c_int; MAX_PASSED_FDS],
    flags: c_int,
) -> SysResult<Received> {
    let mut control: FdControl = [0; 10];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let len = retry(|| {
        // SAFETY: msg describes the buffers above, alive for the call.
        check(unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC | flags) } as c_long)
    })? as usize;
    // SAFETY: recvmsg returned, so the kernel filled msg's control buffer
    // (still alive here) within msg_controllen.
    let n = unsafe { take_rights(&msg, out) };
    Ok(Received {
        len,
        fds: n,
        truncated: msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0,
    })
}

/// pipe2(2) with O_CLOEXEC and O_NONBLOCK on both ends: (read end, write end).
pub fn pipe_nonblock() -> SysResult<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for two descriptors.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    Ok((fds[0], fds[1]))
}

/// A signalfd (close-on-exec, non-blocking) for `set`; the signals must
/// be blocked by the caller.
pub fn signalfd(set: &libc::sigset_t) -> SysResult<c_int> {
    // SAFETY: set is an initialised sigset.
    check_int(unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })
}

/// A sigset holding `sig` only.
pub fn sigset_of(sig: c_int) -> libc::sigset_t {
    let mut set = sigset_empty();
    // SAFETY: set is initialised and sig a valid signal number.
    unsafe { libc::sigaddset(&mut set, sig) };
    set
}

/// An anonymous private mapping of `len` bytes, readable and writable,
/// with no swap reserved: pages cost memory only once touched.
pub fn mmap_anon(len: usize) -> SysResult<*mut u8> {
    // SAFETY: an anonymous mapping at an address the kernel chooses
    // touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(Errno::last())
    } else {
        Ok(p.cast())
    }
}

/// wait4(2) without blocking for any child: `Ok(None)` when none has
/// ended; else its pid, wait status and resource usage.
pub fn wait_any_nohang() -> SysResult<Option<(libc::pid_t, c_int, libc::rusage)>> {
    let mut status: c_int = 0;
    // SAFETY: a zeroed rusage is a valid out-buffer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: status and ru are valid out-pointers for the call.
    let pid = retry(|| check_int(unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut ru) }))?;
    Ok((pid > 0).then_some((pid, status, ru)))
}

/// waitpid(-1, WNOHANG | __WALL): a child of any kind that ended (its pid
/// and wait status), `Ok(None)` while children remain but none has ended,
/// `Err(ECHILD)` once there are none.
pub fn reap_any_nohang() -> SysResult<Option<(libc::pid_t, c_int)>> {
    let mut status: c_int = 0;
    // SAFETY: status is a valid out-pointer for the call.
    let pid = retry(|| check_int(unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) }))?;
    Ok((pid > 0).then_some((pid, status)))
}

/// Wait up to `ms` milliseconds for a signal of `set` (blocked in the
/// caller) and take it; false on timeout or interruption.
pub fn sigwait_ms(set: &libc::sigset_t, ms: u64) -> bool {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: set and ts are valid for the call; a null siginfo is allowed.
    unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) > 0 }
}

/// getrusage(2) of `who` (RUSAGE_SELF or RUSAGE_CHILDREN).
pub fn getrusage(who: c_int) -> libc::rusage {
    // SAFETY: a zeroed rusage is a valid out-buffer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer; `who` is checked by the kernel.
    unsafe { libc::getrusage(who, &mut ru) };
    ru
}

/// An anonymous mapping used as a stack, with a guard page below it;
/// unmapped on drop.
pub struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    /// Map `size` bytes of stack (rounded up to whole pages) and one guard
    /// page below them.
    pub fn map(size: usize) -> SysResult<Stack> {
        // SAFETY: getauxval reads the auxiliary vector (no lock, no
        // allocation); 0 when absent.
        let page = match unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize {
            0 => 4096,
            p => p,
        };
        let len = size.div_ceil(page) * page + page;
        // SAFETY: a new private anonymous mapping: it overlaps nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let stack = Stack { base, len };
        // SAFETY: the lowest page of the mapping just made.
        check_int(unsafe { libc::mprotect(base, page, libc::PROT_NONE) })?;
        Ok(stack)
    }

    /// The top of the stack (it grows down), 16-byte aligned.
    pub fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.len)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping `map` made, unmapped once. The raw call: musl's
        // munmap waits on a lock another thread of the supervisor may have
        // held at the clone.
        unsafe { libc::syscall(libc::SYS_munmap, self.base, self.len) };
    }
}

/// Make sure descriptors 0, 1 and 2 are open, as a process's start-up
/// should: each closed one is opened on /dev/null (read-write, inherited
/// by children), so that the next file the process opens cannot become
/// its standard output or error. Aborts when that cannot be done: a
/// process that would write its output into whatever it opens next must
/// not go on. For the `cordon` binary's entry point, which replaces
/// Rust's start-up (that did the same).
pub fn sanitize_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    let open_null = || {
        // SAFETY: a NUL-terminated literal path; the new fd is not
        // close-on-exec on purpose (it stands for a standard descriptor).
        if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } < 0 {
            std::process::abort();
        }
    };
    loop {
        // SAFETY: `fds` is an array of three pollfds, valid for the call.
        if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0 {
            break;
        }
        match Errno::last().0 {
            libc::EINTR => continue,
            // poll itself cannot run (RLIMIT_NOFILE below 3, no memory):
            // ask about each descriptor instead.
            libc::EINVAL | libc::EAGAIN | libc::ENOMEM => {
                for fd in 0..3 {
                    // SAFETY: F_GETFD on an integer fd reads no memory.
                    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 && Errno::last().0 == libc::EBADF {
                        open_null();
                    }
                }
                return;
            }
            _ => std::process::abort(),
        }
    }
    // In order: /dev/null takes the lowest free number, the first closed one.
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            open_null();
        }
    }
}

/// setns(2).
pub fn setns(fd: c_int, nstype: c_int) -> SysResult<()> {
    // SAFETY: plain integers; the kernel checks the fd.
    check_int(unsafe { libc::setns(fd, nstype) }).map(drop)
}

/// waitpid(pid, __WALL), retried on EINTR: for a child made without an
/// exit signal too.
pub fn waitpid_all(pid: libc::pid_t) -> SysResult<c_int> {
    let mut status: c_int = 0;
    // SAFETY: status is a valid out-pointer for the call.
    retry(|| check_int(unsafe { libc::waitpid(pid, &mut status, libc::__WALL) }))?;
    Ok(status)
}

/// A system call made without libc: no errno is written, so that a task
/// sharing memory with its parent (CLONE_VM, no TLS of its own) can make
/// it while the parent runs. Returns the raw result (-errno on failure).
///
/// # Safety
/// As for the system call `nr` with these arguments: pointers must be
/// valid for what the call does with them.
#[cfg(target_arch = "x86_64")]
pub unsafe fn raw_syscall4(nr: c_long, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 syscall convention: number in rax, arguments in
    // rdi, rsi, rdx, r10; the kernel clobbers rcx and r11; memory is
    // whatever the caller's contract allows.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// See the x86_64 version.
///
/// # Safety
/// As for the system call `nr` with these arguments.
#[cfg(target_arch = "aarch64")]
pub unsafe fn raw_syscall4(nr: c_long, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 syscall convention: number in x8, arguments in
    // x0-x3, result in x0.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2,
            in("x2") a3,
            in("x3") a4,
            options(nostack),
        );
    }
    ret
}

/// CLOCK_MONOTONIC in milliseconds (vDSO: no allocation, no lock).
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}
