//! Idmapped writable binds, parent side.
//!
//! Started by root, a writable bind is an idmapped mount: the user namespace
//! attached to it maps the bind's owner `O:G` (the source's owner, or the
//! one the policy names) to the sandbox's host ids `X:Y` (`uid_map` "O X 1",
//! `gid_map` "G Y 1"). The payload, which is `X:Y` on the host, then sees
//! `O`'s files as its own, and what it creates is owned by `O:G` on disk.
//!
//! Only host root can make such a mount (CAP_SYS_ADMIN over the
//! filesystem's user namespace, the init one), and only on a detached
//! tree, so the parent makes it before clone and the child only moves it
//! into place. The user namespace is made here, once per distinct map, by a
//! short-lived child whose maps cordon writes; its `/proc/PID/ns/user` fd
//! outlives it.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::{self, Errno};

/// One idmap: on-disk owner `owner` appears as (and is written by) `host`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Map {
    /// Owner on disk (uid, gid).
    pub owner: (u32, u32),
    /// The sandbox's host ids (uid, gid).
    pub host: (u32, u32),
}

/// User namespaces made for one plan, one per distinct map.
#[derive(Debug, Default)]
pub struct Namespaces {
    made: BTreeMap<Map, OwnedFd>,
}

impl Namespaces {
    /// The user namespace fd for `map`, made on first use.
    pub fn get(&mut self, map: Map) -> Result<std::os::raw::c_int, String> {
        if let Some(fd) = self.made.get(&map) {
            return Ok(fd.as_raw_fd());
        }
        let fd = make_userns(map)?;
        let raw = fd.as_raw_fd();
        self.made.insert(map, fd);
        Ok(raw)
    }
}

fn errno_text(e: Errno) -> String {
    std::io::Error::from_raw_os_error(e.0).to_string()
}

/// Make a user namespace with `uid_map` "O X 1" and `gid_map` "G Y 1" and
/// return an fd of it.
fn make_userns(map: Map) -> Result<OwnedFd, String> {
    let (r, w) = sys::pipe().map_err(|e| format!("pipe: {}", errno_text(e)))?;
    // SAFETY: clone without CLONE_VM is fork into a new user namespace; the
    // child below only makes async-signal-safe system calls (close, read,
    // _exit), so it is sound even in a multi-threaded process.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // The child: wait until the parent closes its end (or dies), then go.
        // SAFETY: `w` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
        unsafe { sys::close(w) };
        let mut b = [0u8; 1];
        let _ = sys::read(r, &mut b);
        // SAFETY: _exit is always sound.
        unsafe { libc::_exit(0) }
    }
    // SAFETY: `r` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(r) };
    if pid < 0 {
        let e = Errno::last();
        // SAFETY: `w` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
        unsafe { sys::close(w) };
        return Err(format!(
            "cannot create a user namespace for the idmap: {}",
            errno_text(e)
        ));
    }
    let pid = pid as libc::pid_t;
    let result = (|| {
        let base = format!("/proc/{pid}");
        let write = |file: &str, content: String| {
            std::fs::write(format!("{base}/{file}"), &content)
                .map_err(|e| format!("{base}/{file} <- {:?}: {e}", content.trim_end()))
        };
        write("uid_map", super::ids::single_map(map.owner.0, map.host.0))?;
        write("gid_map", super::ids::single_map(map.owner.1, map.host.1))?;
        let path = format!("{base}/ns/user\0");
        let path = CStr::from_bytes_with_nul(path.as_bytes()).map_err(|e| e.to_string())?;
        let fd = sys::openat2(libc::AT_FDCWD, path, libc::O_RDONLY | libc::O_CLOEXEC, 0, 0)
            .map_err(|e| format!("{base}/ns/user: {}", errno_text(e)))?;
        // SAFETY: fd is a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })();
    // SAFETY: `w` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(w) };
    let _ = sys::retry(|| {
        let mut status = 0;
        // SAFETY: reaping our own child; status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(r)
        }
    });
    result
}

/// Whether a failure to idmap means the filesystem (or kernel) cannot do it,
/// as opposed to something wrong with this particular source.
pub fn unsupported(e: Errno) -> bool {
    matches!(e.0, libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS | libc::EPERM)
}

/// Try to make the idmapped tree of `path` once and throw it away: the
/// policy is checked before launch, where a refusal can name the field.
pub fn probe(path: &CStr, attrs: u64, userns: std::os::raw::c_int) -> Result<(), Errno> {
    let tree = sys::open_tree(
        libc::AT_FDCWD,
        path,
        sys::OPEN_TREE_CLONE | sys::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32,
    )?;
    let r = sys::mount_setattr_idmap(tree, attrs, userns);
    // SAFETY: `tree` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(tree) };
    r
}
