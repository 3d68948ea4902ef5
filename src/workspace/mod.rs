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
pub mod sha256;

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
