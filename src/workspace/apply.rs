//! Copy a workspace's change set onto the host directory. Every host path
//! is reached from the directory fd opened before the run, each step by
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: a symbolic link
//! anywhere on the way (planted before, or swapped in during the apply)
//! refuses that change instead of being followed. Files are written to a
//! temporary name in their directory and renamed over the target; modes
//! lose setuid, setgid and sticky; no device node, FIFO or socket is ever
//! made; a symbolic link must stay inside the workspace.

use std::ffi::CStr;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::changes::{shown, Change, ChangeSet, Kind, Refused};
use super::fs;

/// What an apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The changes applied, in order.
    pub done: Vec<Vec<u8>>,
    /// The changes refused during the apply (on top of the change set's).
    pub refused: Vec<Refused>,
}

/// The parent part and the last component of a relative path.
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    }
}

/// Whether the symlink at `path` with `target` stays inside the workspace:
/// relative, and its `..` never climb above the workspace's root.
pub fn target_inside(path: &[u8], target: &[u8]) -> bool {
    if target.is_empty() || target.starts_with(b"/") {
        return false;
    }
    let (parent, _) = split(path);
    let mut depth: i64 = parent.split(|&b| b == b'/').filter(|c| !c.is_empty()).count() as i64;
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// Apply `set` from `upper` onto `host`; `owner`: the ids applied files
/// get (root-started runs: the host directory's owner).
pub fn apply(set: &ChangeSet, upper: RawFd, host: RawFd, owner: Option<(u32, u32)>) -> Applied {
    let mut out = Applied::default();
    // A directory that could not be made: what is below it is skipped.
    let mut failed_dirs: Vec<Vec<u8>> = Vec::new();
    for (n, ch) in set.changes.iter().enumerate() {
        if failed_dirs
            .iter()
            .any(|d| ch.path.starts_with(d) && ch.path.get(d.len()) == Some(&b'/'))
        {
            out.refused.push(Refused {
                path: ch.path.clone(),
                reason: "its directory was not applied".to_string(),
            });
            continue;
        }
        match one(ch, n, upper, host, owner) {
            Ok(()) => out.done.push(ch.path.clone()),
            Err(reason) => {
                if matches!(ch.kind, Kind::Dir) {
                    failed_dirs.push(ch.path.clone());
                }
                out.refused.push(Refused {
                    path: ch.path.clone(),
                    reason,
                });
            }
        }
    }
    out
}

fn text(what: &str, e: io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::EXDEV) {
        return format!("{what}: a symbolic link (or a path leaving the workspace) is in the way on the host; not followed");
    }
    format!("{what}: {e}")
}

fn one(ch: &Change, n: usize, upper: RawFd, host: RawFd, owner: Option<(u32, u32)>) -> Result<(), String> {
    let (parent, name) = split(&ch.path);
    let cname = fs::c(name).map_err(|e| text("name", e))?;
    let dir = fs::open_beneath(host, parent, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| text("host directory", e))?;
    let d = dir.as_raw_fd();
    let mode = (ch.mode & 0o777) as libc::mode_t;
    match &ch.kind {
        Kind::Deleted => remove(d, &cname, 0).map_err(|e| text("delete", e)),
        Kind::Mode => {
            // Look before opening: a device node is never opened.
            let st = fs::lstat_at(d, &cname).map_err(|e| text("stat", e))?;
            let t = st.st_mode & libc::S_IFMT;
            if t != libc::S_IFREG && t != libc::S_IFDIR {
                return Err("the host's entry is not a file or directory".to_string());
            }
            let f =
                fs::open_beneath(d, name, libc::O_RDONLY | libc::O_NONBLOCK).map_err(|e| text("open", e))?;
            let st = fs::fstat(f.as_raw_fd()).map_err(|e| text("stat", e))?;
            let t = st.st_mode & libc::S_IFMT;
            if t != libc::S_IFREG && t != libc::S_IFDIR {
                return Err("the host's entry is not a file or directory".to_string());
            }
            // A host file with another name elsewhere (a hard link) may be
            // any file of its owner: its mode is not changed through here.
            if t == libc::S_IFREG && st.st_nlink > 1 {
                return Err(format!(
                    "the host file has {} hard links: its mode is not changed",
                    st.st_nlink
                ));
            }
            fs::fchmod(f.as_raw_fd(), mode).map_err(|e| text("chmod", e))
        }
        Kind::Dir => {
            if ch.replaces {
                remove(d, &cname, 0).map_err(|e| text("replace", e))?;
            }
            match fs::mkdir_at(d, &cname, 0o700) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    // Made on the host meanwhile: used as it is (never
                    // through a link), its owner and mode left alone.
                    return fs::open_beneath(d, name, libc::O_PATH | libc::O_DIRECTORY)
                        .map(drop)
                        .map_err(|e| text("open", e));
                }
                Err(e) => return Err(text("mkdir", e)),
            }
            let f =
                fs::open_beneath(d, name, libc::O_RDONLY | libc::O_DIRECTORY).map_err(|e| text("open", e))?;
            if let Some((u, g)) = owner {
                fs::fchown(f.as_raw_fd(), u, g).map_err(|e| text("chown", e))?;
            }
            fs::fchmod(f.as_raw_fd(), mode).map_err(|e| text("chmod", e))
        }
        Kind::Symlink(target) => {
            if !target_inside(&ch.path, target) {
                return Err(format!(
                    "a symbolic link to {:?}, outside the workspace: not applied",
                    shown(target)
                ));
            }
            let t = fs::c(target).map_err(|e| text("target", e))?;
            let tmp = tmp_name(n);
            fs::symlink_at(&t, d, &tmp).map_err(|e| text("symlink", e))?;
            if let Some((u, g)) = owner {
                let _ = fs::lchown_at(d, &tmp, u, g);
            }
            finish(d, &tmp, &cname, ch.replaces)
        }
        Kind::Created | Kind::Modified => {
            let src = fs::open_beneath(upper, &ch.path, libc::O_RDONLY | libc::O_NONBLOCK)
                .map_err(|e| text("read the new content", e))?;
            let st = fs::fstat(src.as_raw_fd()).map_err(|e| text("stat", e))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_nlink > 1 {
                return Err("no longer a regular file with a single link".to_string());
            }
            let tmp = tmp_name(n);
            let dst = fs::open_at(d, &tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
                .map_err(|e| text("create", e))?;
            let written = copy(&src, &dst)
                .and_then(|_| match owner {
                    Some((u, g)) => fs::fchown(dst.as_raw_fd(), u, g),
                    None => Ok(()),
                })
                .and_then(|_| fs::fchmod(dst.as_raw_fd(), mode));
            if let Err(e) = written {
                let _ = fs::unlink_at(d, &tmp, 0);
                return Err(text("write", e));
            }
            finish(d, &tmp, &cname, ch.replaces)
        }
    }
}

/// Rename `tmp` over `name` in `d` (removing a directory that is in the
/// way when the host's entry is replaced); the temporary goes on failure.
fn finish(d: RawFd, tmp: &CStr, name: &CStr, replaces: bool) -> Result<(), String> {
    let mut r = fs::rename_in(d, tmp, name);
    if replaces
        && r.as_ref().is_err_and(|e| {
            matches!(
                e.raw_os_error(),
                Some(libc::EISDIR) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST)
            )
        })
    {
        r = remove(d, name, 0).and_then(|_| fs::rename_in(d, tmp, name));
    }
    r.map_err(|e| {
        let _ = fs::unlink_at(d, tmp, 0);
        text("rename", e)
    })
}

fn tmp_name(n: usize) -> std::ffi::CString {
    // Components from the change set hold no NUL; neither does this.
    fs::c(format!(".cordon-apply-{}-{n}", std::process::id()).as_bytes()).unwrap_or_default()
}

/// Remove `name` in `d`: a file or link, or a directory tree, never
/// following a symbolic link (bounded depth).
fn remove(d: RawFd, name: &CStr, depth: usize) -> io::Result<()> {
    match fs::unlink_at(d, name, 0) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EISDIR) | Some(libc::EPERM)) => {}
        Err(e) => return Err(e),
    }
    if depth > super::changes::MAX_DEPTH {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let sub: OwnedFd = fs::open_at(d, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    for entry in fs::list(sub.as_raw_fd(), super::changes::MAX_ENTRIES)? {
        remove(sub.as_raw_fd(), &entry, depth + 1)?;
    }
    fs::unlink_at(d, name, libc::AT_REMOVEDIR)
}

/// Copy all of `src` to `dst`.
fn copy(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let mut r = std::fs::File::from(src.try_clone()?);
    let mut w = std::fs::File::from(dst.try_clone()?);
    io::copy(&mut r, &mut w)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_must_stay_inside() {
        for (path, target, ok) in [
            (&b"a"[..], &b"b"[..], true),
            (b"d/a", b"../b", true),
            (b"d/a", b"../../b", false),
            (b"a", b"../x", false),
            (b"a", b"/etc", false),
            (b"a", b"", false),
            (b"d/e/a", b"./../../f/./g", true),
            (b"d/a", b"x/../../..", false),
        ] {
            assert_eq!(target_inside(path, target), ok, "{path:?} -> {target:?}");
        }
    }
}
