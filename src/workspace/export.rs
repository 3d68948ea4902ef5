//! Export a workspace's changes for review: a directory (created mode
//! 0700, or an existing empty one, opened before the run without following
//! a symbolic link) that receives `manifest.json` and, under `files/`, the
//! new content of each created or modified file as `files/N` (N: the
//! change's index in the manifest). Names from the payload never become
//! paths here.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use super::changes::{shown, ChangeSet, Kind};
use super::fs;
use crate::sha256::Sha256;

/// An export directory opened before the run.
#[derive(Debug)]
pub struct ExportDir {
    fd: OwnedFd,
}

impl ExportDir {
    /// Create `path` (mode 0700) or take it when it is an existing empty
    /// directory; a symbolic link at `path` or in its directory part is
    /// refused, as for every output file.
    pub fn open(path: &Path) -> Result<ExportDir, String> {
        let shown = path.display();
        let c =
            CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("{shown}: path contains NUL"))?;
        // SAFETY: `c` is NUL-terminated.
        if unsafe { libc::mkdir(c.as_ptr(), 0o700) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(format!("{shown}: cannot create the export directory: {e}"));
            }
        }
        let fd = crate::sys::openat2(
            libc::AT_FDCWD,
            &c,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            crate::sys::RESOLVE_NO_SYMLINKS | crate::sys::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(|e| {
            if e.0 == libc::ELOOP {
                format!("{shown}: a symbolic link is on its path, which cordon does not follow for output; give the path without links")
            } else {
                format!("{shown}: cannot open the export directory: {}", io::Error::from_raw_os_error(e.0))
            }
        })?;
        // SAFETY: `fd` was just opened and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        match fs::list(fd.as_raw_fd(), 1) {
            Ok(v) if v.is_empty() => Ok(ExportDir { fd }),
            Ok(_) | Err(_) => Err(format!(
                "{shown}: the export directory is not empty; cordon exports only into a new or empty directory"
            )),
        }
    }
}

#[derive(Serialize)]
struct Entry {
    path: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

#[derive(Serialize)]
struct RefusedEntry {
    path: String,
    reason: String,
}

#[derive(Serialize)]
struct Manifest<'a> {
    workspace: &'a str,
    changes: Vec<Entry>,
    refused: Vec<RefusedEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<&'a str>,
}

/// Write the change set's files and manifest into `dir`.
pub fn export(dir: &ExportDir, workspace: &str, set: &ChangeSet, upper: i32) -> io::Result<()> {
    let d = dir.fd.as_raw_fd();
    fs::mkdir_at(d, c"files", 0o700)?;
    let files = fs::open_at(d, c"files", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let mut entries = Vec::with_capacity(set.changes.len());
    for (i, ch) in set.changes.iter().enumerate() {
        let mut e = Entry {
            path: shown(&ch.path),
            kind: ch.kind.name(),
            size: None,
            sha256: None,
            mode: None,
            target: None,
            file: None,
        };
        match &ch.kind {
            Kind::Created | Kind::Modified => {
                let name = format!("{i}");
                let src = fs::open_beneath(upper, &ch.path, libc::O_RDONLY | libc::O_NONBLOCK)?;
                let dst = fs::open_at(
                    files.as_raw_fd(),
                    &fs::c(name.as_bytes())?,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                    0o600,
                )?;
                let (size, digest) = copy_hashing(src, dst)?;
                e.size = Some(size);
                e.sha256 = Some(digest);
                e.mode = Some(format!("{:04o}", ch.mode));
                e.file = Some(format!("files/{name}"));
            }
            Kind::Mode | Kind::Dir => e.mode = Some(format!("{:04o}", ch.mode)),
            Kind::Symlink(t) => e.target = Some(shown(t)),
            Kind::Deleted => {}
        }
        entries.push(e);
    }
    let m = Manifest {
        workspace,
        changes: entries,
        refused: set
            .refused
            .iter()
            .map(|r| RefusedEntry {
                path: shown(&r.path),
                reason: r.reason.clone(),
            })
            .collect(),
        truncated: set.truncated.as_deref(),
    };
    let mut text = serde_json::to_vec_pretty(&m).map_err(io::Error::other)?;
    text.push(b'\n');
    let f = fs::open_at(
        d,
        c"manifest.json",
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o600,
    )?;
    let mut f = std::fs::File::from(f);
    f.write_all(&text)?;
    f.flush()
}

/// Copy `src` to `dst`; its size and SHA-256 (hex).
fn copy_hashing(src: OwnedFd, dst: OwnedFd) -> io::Result<(u64, String)> {
    let mut r = std::fs::File::from(src);
    let mut w = std::fs::File::from(dst);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        size += n as u64;
    }
    w.flush()?;
    Ok((size, h.hex()))
}
