//! Output files (`--status-json`, `cordon learn -o`, `seccomp ... -o`)
//! that may live where the payload can write.
//!
//! A payload with a writable bind can replace an output path while it runs:
//! by a symbolic link to a file only root may write (cordon, as root, would
//! overwrite it), by a FIFO (cordon would block forever opening it), or by a
//! directory. An earlier sandbox may have planted the same things, or a hard
//! link to another file, before cordon starts. So an output file is opened
//! **before** the launch, never following a symbolic link and never blocking,
//! must be a regular file with a single link, and is truncated then. After
//! the run cordon writes only through that descriptor, and only if the path
//! still names the same file (looked up in the directory opened before the
//! launch, without following anything); otherwise it reports that the file
//! was replaced and writes nothing.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::sys::Errno;

/// An output file opened before the launch.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    dir: OwnedFd,
    name: CString,
    file: File,
    dev: u64,
    ino: u64,
}

/// Why an output could not be written after the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The path no longer names the file opened before the run; nothing was
    /// written. The message says what is there now.
    Replaced(String),
    /// Writing failed.
    Io(String),
}

impl std::error::Error for WriteError {}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Replaced(m) | WriteError::Io(m) => f.write_str(m),
        }
    }
}

fn errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

fn errno_text(e: Errno) -> String {
    crate::policy::io_error_text(&std::io::Error::from_raw_os_error(e.0))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: never follows a link, never
/// opens (so never blocks on) what it finds.
fn lstat_at(dir: &OwnedFd, name: &CString) -> Result<libc::stat, Errno> {
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: dir is an open descriptor, name a NUL-terminated string, st a
    // valid, writable stat buffer that outlives the call.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r == 0 {
        Ok(st)
    } else {
        Err(errno())
    }
}

/// What a file of this mode is, in words.
fn kind(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFDIR => "a directory",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "a file of unknown type",
    }
}

/// Split a path into its directory and its last component, refusing a
/// last component that does not name a file.
fn split(path: &Path) -> Result<(CString, CString), String> {
    let bytes = path.as_os_str().as_bytes();
    let (dir, name): (&[u8], &[u8]) = match bytes.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &bytes[1..]),
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (b".", bytes),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(format!(
            "{}: expected the path of a file, not of a directory",
            path.display()
        ));
    }
    let c =
        |b: &[u8]| CString::new(b).map_err(|_| format!("{}: the path contains a NUL byte", path.display()));
    Ok((c(dir)?, c(name)?))
}

impl AsRawFd for OutputFile {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

impl OutputFile {
    /// Open (creating it, mode 0666 less the umask) the output file `path`
    /// before the launch. Refused, with an error naming the path: a
    /// symbolic link, a FIFO, a directory, a device or a socket at `path`,
    /// and a regular file with more than one link. On success the file is
    /// empty.
    pub fn open(path: &Path) -> Result<OutputFile, String> {
        Self::open_with(path, 0, 0o666, true)
    }

    /// Open `path` as [`OutputFile::open`] does, but for appending
    /// (`O_APPEND`) and without truncating it; `mode` (less the umask) if
    /// it is created. The audit log.
    pub fn open_append(path: &Path, mode: libc::mode_t) -> Result<OutputFile, String> {
        Self::open_with(path, libc::O_APPEND, mode, false)
    }

    fn open_with(
        path: &Path,
        extra: libc::c_int,
        mode: libc::mode_t,
        truncate: bool,
    ) -> Result<OutputFile, String> {
        let shown = path.display();
        let (dir_c, name) = split(path)?;
        // The directory part is resolved without following any symbolic
        // link: a link planted by an earlier sandbox in a directory it
        // could write (`out/sub -> /etc`) would otherwise turn
        // `out/sub/passwd` into a host file that cordon, as root, empties.
        let dfd = match crate::sys::openat2(
            libc::AT_FDCWD,
            &dir_c,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            crate::sys::RESOLVE_NO_SYMLINKS | crate::sys::RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(Errno(libc::ELOOP)) => {
                let real = std::fs::canonicalize(std::ffi::OsStr::from_bytes(dir_c.as_bytes()))
                    .map(|p| format!("; its real directory is {}", p.display()))
                    .unwrap_or_default();
                return Err(format!(
                    "{shown}: its directory path goes through a symbolic link, which cordon does not follow for output files (a link planted where a sandbox could write would redirect the write){real}: give the path without links"
                ));
            }
            Err(e) => return Err(format!("{shown}: cannot open its directory: {}", errno_text(e))),
        };
        // SAFETY: dfd was just opened and is owned by nothing else.
        let dir = unsafe { OwnedFd::from_raw_fd(dfd) };
        let refuse = |what: &str| {
            format!(
                "{shown} is {what}: cordon writes its output only to a regular file (which it creates if missing), never through a link, a FIFO or a device; remove it or choose another path"
            )
        };
        // Look before opening, so that a device or a FIFO is never opened.
        match lstat_at(&dir, &name) {
            Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFREG => return Err(refuse(kind(st.st_mode))),
            Ok(_) | Err(Errno(libc::ENOENT)) => {}
            Err(e) => return Err(format!("{shown}: {}", errno_text(e))),
        }
        // SAFETY: dir is open, name NUL-terminated; the result is checked.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_WRONLY
                    | extra
                    | libc::O_CREAT
                    | libc::O_NOFOLLOW
                    | libc::O_NONBLOCK
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            let e = errno();
            // Replaced between the look and the open: say by what.
            return Err(match lstat_at(&dir, &name) {
                Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFREG => refuse(kind(st.st_mode)),
                _ => format!("{shown}: {}", errno_text(e)),
            });
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        // SAFETY: an all-zero stat is a valid value of this plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: file is open, st a valid writable buffer.
        if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 {
            return Err(format!("{shown}: {}", errno_text(errno())));
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(refuse(kind(st.st_mode)));
        }
        if st.st_nlink > 1 {
            return Err(format!(
                "{shown} has {} hard links (one may have been planted to make cordon overwrite another file): cordon writes its output only to a file with a single link; remove it or choose another path",
                st.st_nlink
            ));
        }
        if truncate {
            file.set_len(0)
                .map_err(|e| format!("{shown}: cannot truncate: {}", crate::policy::io_error_text(&e)))?;
        }
        Ok(OutputFile {
            path: path.to_path_buf(),
            dir,
            name,
            file,
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path still names the file opened before the run; if
    /// not, [`WriteError::Replaced`] says what it names now.
    pub fn check_unreplaced(&self) -> Result<(), WriteError> {
        self.still_there()
    }

    /// Whether the path still names the file opened before the run; if not,
    /// what it names now.
    fn still_there(&self) -> Result<(), WriteError> {
        let now = match lstat_at(&self.dir, &self.name) {
            Ok(st) if st.st_dev == self.dev && st.st_ino == self.ino => return Ok(()),
            Ok(st) => kind(st.st_mode).to_string(),
            Err(Errno(libc::ENOENT)) => "missing".to_string(),
            Err(e) => format!("not readable ({})", errno_text(e)),
        };
        let now = if now == "missing" {
            "it is gone".to_string()
        } else {
            format!("it is now {now}")
        };
        Err(WriteError::Replaced(format!(
            "{} was replaced during the run ({now}); cordon did not follow or write the replacement, and the output is not at that path",
            self.path.display()
        )))
    }

    /// Write `bytes` as the whole content, through the descriptor opened
    /// before the run, if the path still names that file.
    pub fn write(&self, bytes: &[u8]) -> Result<(), WriteError> {
        self.still_there()?;
        let io = |e: std::io::Error| {
            WriteError::Io(format!(
                "{}: {}",
                self.path.display(),
                crate::policy::io_error_text(&e)
            ))
        };
        // Whatever was written to it meanwhile goes.
        self.file.set_len(0).map_err(io)?;
        self.file.write_all_at(bytes, 0).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cordon-output-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn split_refuses_directory_names() {
        for bad in ["/", "a/", ".", "..", "a/..", "a/."] {
            assert!(split(Path::new(bad)).is_err(), "{bad}");
        }
        let (d, n) = split(Path::new("/x")).unwrap();
        assert_eq!((d.as_bytes(), n.as_bytes()), (&b"/"[..], &b"x"[..]));
        let (d, n) = split(Path::new("x")).unwrap();
        assert_eq!((d.as_bytes(), n.as_bytes()), (&b"."[..], &b"x"[..]));
        let (d, n) = split(Path::new("a/b/c")).unwrap();
        assert_eq!((d.as_bytes(), n.as_bytes()), (&b"a/b"[..], &b"c"[..]));
    }

    #[test]
    fn writes_a_regular_file_and_refuses_links_and_fifos() {
        let d = tmp("unit");
        let f = d.join("out");
        std::fs::write(&f, "old content, longer than the new").unwrap();
        let o = OutputFile::open(&f).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"", "truncated on open");
        o.write(b"new").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new");

        let target = d.join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = OutputFile::open(&link).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        let hard = d.join("hard");
        std::fs::hard_link(&target, &hard).unwrap();
        let e = OutputFile::open(&hard).unwrap_err();
        assert!(e.contains("hard links"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");

        // Replaced after opening: nothing is written through the link.
        let o = OutputFile::open(&f).unwrap();
        std::fs::remove_file(&f).unwrap();
        std::os::unix::fs::symlink(&target, &f).unwrap();
        match o.write(b"x") {
            Err(WriteError::Replaced(m)) => assert!(m.contains("symbolic link"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
