//! The few file-system calls the supervisor's workspace code makes, all
//! relative to a directory fd, never following a symbolic link.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys;

fn err(e: sys::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.0)
}

fn last() -> io::Error {
    io::Error::last_os_error()
}

/// A C string of `bytes` (components from `readdir` hold no NUL; a path
/// that does is refused with EINVAL).
pub fn c(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Open `path` (relative, `/`-separated; empty: `dir` itself) beneath
/// `dir`, refusing any symbolic link on the way and any escape.
pub fn open_beneath(dir: RawFd, path: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    let p = if path.is_empty() { c(b".")? } else { c(path)? };
    // openat2 refuses any flag but O_DIRECTORY/O_NOFOLLOW/O_CLOEXEC with O_PATH.
    let extra = if flags & libc::O_PATH != 0 {
        0
    } else {
        libc::O_NOCTTY
    };
    let fd = sys::openat2(
        dir,
        &p,
        flags | libc::O_CLOEXEC | extra,
        0,
        sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(err)?;
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`.
pub fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; the result is checked.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn lstat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `st` a valid out-buffer.
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(last());
    }
    Ok(st)
}

/// `fstat(fd)`.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(last());
    }
    Ok(st)
}

/// The entries of the directory `dir` (without `.` and `..`), sorted, at
/// most `max` (more: E2BIG).
pub fn list(dir: RawFd, max: usize) -> io::Result<Vec<CString>> {
    let own = open_at(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    // SAFETY: fdopendir takes over the fd (released from its OwnedFd here
    // and closed by closedir below).
    let d = unsafe { libc::fdopendir(own.as_raw_fd()) };
    if d.is_null() {
        return Err(last());
    }
    std::mem::forget(own);
    let mut out = Vec::new();
    let r = loop {
        // SAFETY: `d` is an open DIR stream, used by this thread only.
        let e = unsafe { libc::readdir(d) };
        if e.is_null() {
            break Ok(());
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*e).d_name.as_ptr()) };
        if name == c"." || name == c".." {
            continue;
        }
        if out.len() >= max {
            break Err(io::Error::from_raw_os_error(libc::E2BIG));
        }
        out.push(name.to_owned());
    };
    // SAFETY: `d` is open and is used no more.
    unsafe { libc::closedir(d) };
    r?;
    out.sort();
    Ok(out)
}

/// The target of the symbolic link `name` in `dir` (at most 4095 bytes).
pub fn read_link_at(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `buf` has room for `buf.len()` bytes; readlinkat writes no more.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(last());
    }
    let n = n as usize;
    if n >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

/// Whether the open file `fd` has the extended attribute `name`.
pub fn has_xattr(fd: RawFd, name: &CStr) -> bool {
    // SAFETY: a zero-size query writes nothing.
    unsafe { libc::fgetxattr(fd, name.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

/// The value of the extended attribute `name` of `fd` (at most 64 bytes).
pub fn xattr(fd: RawFd, name: &CStr) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` has room for `buf.len()` bytes.
    let n = unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// `unlinkat(dir, name, flags)`.
pub fn unlink_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    if unsafe { libc::unlinkat(dir, name.as_ptr(), flags) } != 0 {
        return Err(last());
    }
    Ok(())
}

/// `renameat(dir, from, dir, to)`.
pub fn rename_in(dir: RawFd, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated.
    if unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) } != 0 {
        return Err(last());
    }
    Ok(())
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdir_at(dir: RawFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    sys::mkdirat(dir, name, mode).map_err(err)
}

/// `symlinkat(target, dir, name)`.
pub fn symlink_at(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    sys::symlinkat(target, dir, name).map_err(err)
}

/// `fchmod(fd, mode)`.
pub fn fchmod(fd: RawFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    if unsafe { libc::fchmod(fd, mode) } != 0 {
        return Err(last());
    }
    Ok(())
}

/// `fchown(fd, uid, gid)`.
pub fn fchown(fd: RawFd, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    if unsafe { libc::fchown(fd, uid, gid) } != 0 {
        return Err(last());
    }
    Ok(())
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`: a symlink's own owner.
pub fn lchown_at(dir: RawFd, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    if unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(last());
    }
    Ok(())
}

/// Bytes in use on the file system of `fd`.
pub fn used_bytes(fd: RawFd) -> u64 {
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `s` is a valid out-buffer.
    if unsafe { libc::fstatfs(fd, &mut s) } != 0 {
        return 0;
    }
    (s.f_blocks.saturating_sub(s.f_bfree)).saturating_mul(s.f_bsize as u64)
}
