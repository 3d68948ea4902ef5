//! The change set of a workspace, read from its overlay's upper directory
//! (through the fd the sandbox's init handed over) against the host
//! directory (an fd opened before the run). Everything in the upper
//! directory is the payload's and hostile: it is read only through fds,
//! never following a symbolic link, with bounded depth, entry count and
//! symlink length.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::fs;

/// Most entries of an upper directory that are looked at.
pub const MAX_ENTRIES: usize = 100_000;
/// Deepest directory nesting followed.
pub const MAX_DEPTH: usize = 128;

/// What happened to one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A new regular file.
    Created,
    /// A regular file whose content changed (its mode may have, too).
    Modified,
    /// Only the permission bits changed (a file or a directory).
    Mode,
    /// Removed (a whiteout, or the old contents of an opaque directory).
    Deleted,
    /// A new directory.
    Dir,
    /// A new or changed symbolic link, with its target.
    Symlink(Vec<u8>),
}

impl Kind {
    /// The manifest's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Modified => "modified",
            Kind::Mode => "mode",
            Kind::Deleted => "deleted",
            Kind::Dir => "dir",
            Kind::Symlink(_) => "symlink",
        }
    }
}

/// One change.
#[derive(Clone, Debug)]
pub struct Change {
    /// Relative path, `/`-separated components from `readdir`.
    pub path: Vec<u8>,
    /// What changed.
    pub kind: Kind,
    /// Size of a file's new content.
    pub size: u64,
    /// Permission bits (with setuid, setgid and sticky as the payload left
    /// them; apply drops those).
    pub mode: u32,
    /// The path existed on the host (a deleted or replaced one is
    /// removed before the new one is made).
    pub replaces: bool,
}

/// An entry that is never applied, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Relative path.
    pub path: Vec<u8>,
    /// Why.
    pub reason: String,
}

/// A workspace's changes.
#[derive(Debug, Default)]
pub struct ChangeSet {
    /// In walk order: a directory before what it holds, a removal before
    /// what replaces it.
    pub changes: Vec<Change>,
    /// What the payload left that cordon refuses to apply.
    pub refused: Vec<Refused>,
    /// The walk stopped early (a bound was hit): the change set is incomplete
    /// and must not be applied.
    pub truncated: Option<String>,
    entries: usize,
}

/// Display form of a relative path.
pub fn shown(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn join(base: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = base.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

fn ftype(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// Read the change set of `upper` against `lower` (both directory fds).
pub fn read(upper: RawFd, lower: RawFd) -> ChangeSet {
    let mut set = ChangeSet::default();
    walk(&mut set, upper, Some(lower), b"", 0);
    set
}

impl ChangeSet {
    fn refuse(&mut self, path: &[u8], reason: impl Into<String>) {
        self.refused.push(Refused {
            path: path.to_vec(),
            reason: reason.into(),
        });
    }

    fn stop(&mut self, why: String) {
        if self.truncated.is_none() {
            self.truncated = Some(why);
        }
    }
}

/// Walk the upper directory `up` (the host's `low`, when it has one).
fn walk(set: &mut ChangeSet, up: RawFd, low: Option<RawFd>, base: &[u8], depth: usize) {
    if depth > MAX_DEPTH {
        set.stop(format!("{}: deeper than {MAX_DEPTH} directories", shown(base)));
        return;
    }
    let names = match fs::list(up, MAX_ENTRIES) {
        Ok(n) => n,
        Err(e) => {
            set.stop(format!("{}: cannot list: {e}", shown(base)));
            return;
        }
    };
    for name in names {
        set.entries += 1;
        if set.entries > MAX_ENTRIES {
            set.stop(format!("more than {MAX_ENTRIES} entries"));
            return;
        }
        if set.truncated.is_some() {
            return;
        }
        entry(set, up, low, base, &name, depth);
    }
}

fn entry(set: &mut ChangeSet, up: RawFd, low: Option<RawFd>, base: &[u8], name: &CString, depth: usize) {
    let path = join(base, name.as_bytes());
    let st = match fs::lstat_at(up, name) {
        Ok(st) => st,
        Err(e) => return set.refuse(&path, format!("cannot stat: {e}")),
    };
    let lst = low.and_then(|l| fs::lstat_at(l, name).ok());
    let replaces = lst.is_some();
    match ftype(&st) {
        libc::S_IFCHR if st.st_rdev == 0 => {
            // A whiteout: the host's entry is deleted.
            if replaces {
                set.changes.push(Change {
                    path,
                    kind: Kind::Deleted,
                    size: 0,
                    mode: 0,
                    replaces,
                });
            }
        }
        libc::S_IFDIR => dir(set, up, low, name, path, &st, lst.as_ref(), depth),
        libc::S_IFREG => file(set, up, low, name, path, &st, lst.as_ref()),
        libc::S_IFLNK => match fs::read_link_at(up, name) {
            Ok(t) => {
                if lst.is_some_and(|l| ftype(&l) == libc::S_IFLNK)
                    && low.and_then(|l| fs::read_link_at(l, name).ok()).as_deref() == Some(&t[..])
                {
                    return;
                }
                set.changes.push(Change {
                    path,
                    kind: Kind::Symlink(t),
                    size: 0,
                    mode: 0o777,
                    replaces,
                });
            }
            Err(e) => set.refuse(&path, format!("cannot read the link: {e}")),
        },
        libc::S_IFIFO => set.refuse(&path, "a FIFO: cordon never creates one on the host"),
        libc::S_IFSOCK => set.refuse(&path, "a socket: cordon never creates one on the host"),
        _ => set.refuse(&path, "a device node: cordon never creates one on the host"),
    }
}

#[allow(clippy::too_many_arguments)]
fn dir(
    set: &mut ChangeSet,
    up: RawFd,
    low: Option<RawFd>,
    name: &CString,
    path: Vec<u8>,
    st: &libc::stat,
    lst: Option<&libc::stat>,
    depth: usize,
) {
    let fd = match fs::open_at(up, name, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
        Ok(fd) => fd,
        Err(e) => return set.refuse(&path, format!("cannot open: {e}")),
    };
    if fs::has_xattr(fd.as_raw_fd(), c"user.overlay.redirect") {
        return set.refuse(&path, "a renamed directory (overlay redirect): not applied");
    }
    let opaque = fs::xattr(fd.as_raw_fd(), c"user.overlay.opaque").is_some_and(|v| v == b"y");
    let low_dir = lst.is_some_and(|l| ftype(l) == libc::S_IFDIR);
    if !opaque && lst.is_some() && !low_dir {
        // The overlay makes a directory over a host non-directory only
        // opaque (after a whiteout): the host's entry changed since (a
        // symlink swapped in?). Refused with everything below it.
        return set.refuse(
            &path,
            "the host's entry is no longer the directory the sandbox saw (changed during the run): not applied",
        );
    }
    let mode = st.st_mode & 0o7777;
    let mut low_fd: Option<OwnedFd> = None;
    if low_dir && !opaque {
        if lst.is_some_and(|l| l.st_mode & 0o7777 != mode) {
            set.changes.push(Change {
                path: path.clone(),
                kind: Kind::Mode,
                size: 0,
                mode,
                replaces: true,
            });
        }
        low_fd = low.and_then(|l| fs::open_at(l, name, libc::O_RDONLY | libc::O_DIRECTORY, 0).ok());
    } else {
        // New, or replacing the host's entry (an opaque directory: the
        // old contents are gone).
        set.changes.push(Change {
            path: path.clone(),
            kind: Kind::Dir,
            size: 0,
            mode,
            replaces: lst.is_some(),
        });
    }
    walk(
        set,
        fd.as_raw_fd(),
        low_fd.as_ref().map(|f| f.as_raw_fd()),
        &path,
        depth + 1,
    );
}

fn file(
    set: &mut ChangeSet,
    up: RawFd,
    low: Option<RawFd>,
    name: &CString,
    path: Vec<u8>,
    st: &libc::stat,
    lst: Option<&libc::stat>,
) {
    if st.st_nlink > 1 {
        return set.refuse(&path, format!("a hard link ({} links): not applied", st.st_nlink));
    }
    let fd = match fs::open_at(up, name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
        Ok(fd) => fd,
        Err(e) => return set.refuse(&path, format!("cannot open: {e}")),
    };
    if fs::has_xattr(fd.as_raw_fd(), c"user.overlay.metacopy") {
        return set.refuse(&path, "a metadata-only copy (overlay metacopy): not applied");
    }
    let mode = st.st_mode & 0o7777;
    let size = st.st_size as u64;
    let kind = match lst {
        Some(l) if ftype(l) == libc::S_IFREG => {
            let same = l.st_size == st.st_size
                && low
                    .and_then(|lw| fs::open_at(lw, name, libc::O_RDONLY | libc::O_NONBLOCK, 0).ok())
                    .is_some_and(|lf| same_content(&fd, &lf));
            match (same, l.st_mode & 0o7777 == mode) {
                (true, true) => return,
                (true, false) => Kind::Mode,
                _ => Kind::Modified,
            }
        }
        _ => Kind::Created,
    };
    set.changes.push(Change {
        path,
        kind,
        size,
        mode,
        replaces: lst.is_some(),
    });
}

/// Whether two open files have the same bytes.
fn same_content(a: &OwnedFd, b: &OwnedFd) -> bool {
    let (Ok(a), Ok(b)) = (a.try_clone(), b.try_clone()) else {
        // Out of fds: counted as modified, which is safe.
        return false;
    };
    let (mut fa, mut fb) = (std::fs::File::from(a), std::fs::File::from(b));
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = match read_full(&mut fa, &mut ba) {
            Ok(n) => n,
            Err(_) => return false,
        };
        let nb = match read_full(&mut fb, &mut bb) {
            Ok(n) => n,
            Err(_) => return false,
        };
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
