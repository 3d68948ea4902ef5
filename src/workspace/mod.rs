//! Workspaces, the supervisor's side: the host directory and the export
//! directory are opened before the run; after it, the change set is read
//! from the overlay's upper directory (whose fd the sandbox's init handed
//! over before the payload existed: the tmpfs lives on through it after the
//! sandbox's mount namespace is gone), exported, and applied when the
//! policy says. The mounts themselves are [`crate::isolate::mount`]'s.

pub mod apply;
pub mod changes;
pub mod export;
mod fs;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::isolate::mount::WorkspaceSpec;
use crate::outcome::{Refusal, WorkspaceOutcome};
use crate::policy::ApplyWhen;

/// One workspace of a run, opened before the launch.
#[derive(Debug)]
struct Opened {
    spec: WorkspaceSpec,
    host: OwnedFd,
    export: Option<export::ExportDir>,
    /// Started by root: applied files get the host directory's owner.
    owner: Option<(u32, u32)>,
}

/// The workspaces of a run.
#[derive(Debug, Default)]
pub struct Session {
    items: Vec<Opened>,
}

/// How the payload ended, as the apply rule needs it.
#[derive(Clone, Copy, Debug)]
pub struct Ending {
    /// Exited with 0, not timed out, not killed.
    pub success: bool,
}

impl Session {
    /// Open each workspace's host directory (no symbolic link on its
    /// canonical path) and export directory, before the launch.
    pub fn open(specs: &[WorkspaceSpec]) -> Result<Session, String> {
        let mut items = Vec::with_capacity(specs.len());
        for spec in specs {
            let c = fs::c(spec.host.as_os_str().as_bytes()).map_err(|e| format!("{}: {e}", spec.field))?;
            let fd = crate::sys::openat2(
                libc::AT_FDCWD,
                &c,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
                crate::sys::RESOLVE_NO_SYMLINKS | crate::sys::RESOLVE_NO_MAGICLINKS,
            )
            .map_err(|e| {
                format!(
                    "{}: {}: {}",
                    spec.field,
                    spec.host.display(),
                    std::io::Error::from_raw_os_error(e.0)
                )
            })?;
            // SAFETY: `fd` was just opened and nothing else owns it.
            let host = unsafe { OwnedFd::from_raw_fd(fd) };
            let st = fs::fstat(host.as_raw_fd()).map_err(|e| format!("{}: {e}", spec.field))?;
            // SAFETY: geteuid cannot fail.
            let root = unsafe { libc::geteuid() } == 0;
            let export = match &spec.export {
                Some(p) => {
                    Some(export::ExportDir::open(p).map_err(|e| format!("{}.export: {e}", spec.field))?)
                }
                None => None,
            };
            items.push(Opened {
                spec: spec.clone(),
                host,
                export,
                owner: root.then_some((st.st_uid, st.st_gid)),
            });
        }
        Ok(Session { items })
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// After the sandbox is gone: take the upper directories from the
    /// hand-off socket `sock` (nothing there: the sandbox failed before
    /// its mounts were made), read, export and apply each workspace's
    /// changes.
    pub fn finish(&self, sock: i32, end: Ending) -> Vec<WorkspaceOutcome> {
        let mut fds = [-1; crate::sys::MAX_PASSED_FDS];
        let got = if sock >= 0 {
            // Never wait: the message is there, or the sandbox failed first.
            // SAFETY: fcntl on an fd the caller owns, integer arguments only.
            unsafe { libc::fcntl(sock, libc::F_SETFL, libc::O_NONBLOCK) };
            crate::sys::recv_fds(sock, &mut fds).unwrap_or(0)
        } else {
            0
        };
        let uppers: Vec<OwnedFd> = fds[..got.min(fds.len())]
            .iter()
            .filter(|&&fd| fd >= 0)
            // SAFETY: each fd was just received and nothing else owns it.
            .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        self.items
            .iter()
            .enumerate()
            .map(|(i, w)| match uppers.get(i) {
                Some(up) if uppers.len() == self.items.len() => one(w, up, end),
                _ => WorkspaceOutcome {
                    path: w.spec.host.display().to_string(),
                    to: w.spec.dst.clone(),
                    error: Some(
                        "the sandbox ended before its workspace existed: nothing changed".to_string(),
                    ),
                    ..WorkspaceOutcome::default()
                },
            })
            .collect()
    }
}

fn one(w: &Opened, upper: &OwnedFd, end: Ending) -> WorkspaceOutcome {
    let set = changes::read(upper.as_raw_fd(), w.host.as_raw_fd());
    let mut out = WorkspaceOutcome {
        path: w.spec.host.display().to_string(),
        to: w.spec.dst.clone(),
        files_changed: set.changes.len() as u64,
        bytes: set
            .changes
            .iter()
            .filter(|c| matches!(c.kind, changes::Kind::Created | changes::Kind::Modified))
            .map(|c| c.size)
            .sum(),
        upper_bytes: fs::used_bytes(upper.as_raw_fd()),
        refused: set
            .refused
            .iter()
            .map(|r| Refusal {
                path: changes::shown(&r.path),
                reason: r.reason.clone(),
            })
            .collect(),
        ..WorkspaceOutcome::default()
    };
    let mut errors = Vec::new();
    if let Some(t) = &set.truncated {
        errors.push(format!("the change set is incomplete ({t}): nothing is applied"));
    }
    if let (Some(dir), Some(p)) = (&w.export, &w.spec.export) {
        match export::export(dir, &out.path, &set, upper.as_raw_fd()) {
            Ok(()) => out.export = Some(p.display().to_string()),
            Err(e) => errors.push(format!("export to {}: {e}", p.display())),
        }
    }
    let wanted = match w.spec.apply {
        ApplyWhen::Never => false,
        ApplyWhen::OnSuccess => end.success,
        ApplyWhen::Always => true,
    };
    if wanted && set.truncated.is_none() {
        let done = apply::apply(&set, upper.as_raw_fd(), w.host.as_raw_fd(), w.owner);
        let complete = done.refused.is_empty() && set.refused.is_empty();
        out.applied = complete && done.done.len() == set.changes.len();
        if !out.applied {
            out.applied_paths = done.done.iter().map(|p| changes::shown(p)).collect();
        }
        out.stripped = set
            .changes
            .iter()
            .filter(|c| {
                c.mode & 0o7000 != 0 && !matches!(c.kind, changes::Kind::Deleted | changes::Kind::Symlink(_))
            })
            .filter(|c| done.done.contains(&c.path))
            .map(|c| changes::shown(&c.path))
            .collect();
        out.refused.extend(done.refused.iter().map(|r| Refusal {
            path: changes::shown(&r.path),
            reason: r.reason.clone(),
        }));
    }
    if !errors.is_empty() {
        out.error = Some(errors.join("; "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("cordon-ws-unit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("upper")).unwrap();
        std::fs::create_dir_all(p.join("lower")).unwrap();
        Tmp(p)
    }
    fn dirfd(p: &Path) -> OwnedFd {
        OwnedFd::from(std::fs::File::open(p).unwrap())
    }

    #[test]
    fn names_of_any_bytes_are_read_and_applied_by_component() {
        let t = tmp("names");
        let (up, low) = (t.0.join("upper"), t.0.join("lower"));
        // A name with a newline, one with bytes that are not UTF-8, one that
        // looks like a path, and a subdirectory named like a parent.
        let weird = [&b"new\nline"[..], b"\xff\xfe", b"..x", b"-rf"];
        for n in weird {
            std::fs::write(up.join(OsStr::from_bytes(n)), n).unwrap();
        }
        std::fs::create_dir(up.join("...")).unwrap();
        std::fs::write(up.join(".../f"), "f").unwrap();
        let set = changes::read(dirfd(&up).as_raw_fd(), dirfd(&low).as_raw_fd());
        assert!(set.refused.is_empty() && set.truncated.is_none(), "{set:?}");
        assert_eq!(set.changes.len(), weird.len() + 2, "{set:?}");
        let done = apply::apply(&set, dirfd(&up).as_raw_fd(), dirfd(&low).as_raw_fd(), None);
        assert!(done.refused.is_empty(), "{done:?}");
        for n in weird {
            assert_eq!(std::fs::read(low.join(OsStr::from_bytes(n))).unwrap(), n);
        }
        assert_eq!(std::fs::read_to_string(low.join(".../f")).unwrap(), "f");
        // Nothing left behind: no temporary names, nothing outside.
        let mut names: Vec<_> = std::fs::read_dir(&low)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        assert_eq!(names.len(), weird.len() + 1, "{names:?}");
        assert!(!t.0.join("f").exists());
    }

    #[test]
    fn an_unchanged_copy_is_no_change_and_a_mode_only_copy_is_a_mode_change() {
        use std::os::unix::fs::PermissionsExt;
        let t = tmp("copyup");
        let (up, low) = (t.0.join("upper"), t.0.join("lower"));
        for d in [&up, &low] {
            std::fs::write(d.join("same"), "x").unwrap();
            std::fs::write(d.join("chmod"), "y").unwrap();
            std::fs::set_permissions(d.join("same"), std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::set_permissions(d.join("chmod"), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(up.join("chmod"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        let set = changes::read(dirfd(&up).as_raw_fd(), dirfd(&low).as_raw_fd());
        assert_eq!(set.changes.len(), 1, "{set:?}");
        assert_eq!(
            (set.changes[0].path.as_slice(), &set.changes[0].kind),
            (&b"chmod"[..], &changes::Kind::Mode)
        );
        let done = apply::apply(&set, dirfd(&up).as_raw_fd(), dirfd(&low).as_raw_fd(), None);
        assert!(done.refused.is_empty(), "{done:?}");
        // setuid dropped.
        assert_eq!(
            std::fs::metadata(low.join("chmod")).unwrap().permissions().mode() & 0o7777,
            0o755
        );
    }
}
