//! Errors of the launch: what failed in the child (a `Copy` record that
//! crosses the error pipe) and what failed in the parent.

use std::fmt;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::sys::Errno;

/// cordon's exit codes, in one place: the payload's own code when it ran,
/// 128+N when signal N ended it, and these when cordon ended the run or
/// never started it (the conventions of `timeout`, `env` and shells).
pub mod exit {
    /// The wall-clock limit ended the run.
    pub const TIMEOUT: i32 = 124;
    /// cordon failed before the payload ran (policy, host, setup), or the
    /// child's setup panicked.
    pub const SETUP: i32 = 125;
    /// The program was found but could not be executed.
    pub const NOT_EXECUTABLE: i32 = 126;
    /// The program was not found.
    pub const NOT_FOUND: i32 = 127;
}

/// A step the child carries out. The numbering is the wire format of the
/// error pipe between child and parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    /// Waiting for the parent to write the id maps.
    SyncWait = 1,
    /// Setting the parent-death signal.
    ParentDeathSignal,
    /// Switching to the sandbox identity.
    Identity,
    /// Making every mount private.
    MountPrivate,
    /// Mounting the root tmpfs.
    RootTmpfs,
    /// Opening a bind source.
    BindSource,
    /// Setting mount attributes (read-only, nosuid, nodev).
    BindAttrs,
    /// Opening or creating a mount point.
    MountPoint,
    /// A mount point that would have to be created in a host directory.
    MountPointOnHost,
    /// Attaching a bind mount.
    Bind,
    /// Mounting a new filesystem (tmpfs, proc, devpts).
    FsMount,
    /// Creating a symlink.
    Symlink,
    /// pivot_root and detaching the old root.
    PivotRoot,
    /// Remounting the new root read-only.
    RootReadonly,
    /// Setting the hostname.
    Hostname,
    /// Bringing up loopback.
    Loopback,
    /// Starting a new session.
    Setsid,
    /// Making the init non-dumpable.
    Dumpable,
    /// Forking the payload from the init.
    Fork,
    /// Changing the working directory.
    Chdir,
    /// Setting an rlimit.
    Rlimit,
    /// Dropping the capability bounding set.
    CapBounding,
    /// Locking the securebits.
    SecureBits,
    /// Dropping capabilities.
    Capset,
    /// Clearing ambient capabilities.
    CapAmbient,
    /// Setting no_new_privs.
    NoNewPrivs,
    /// Marking inherited fds close-on-exec.
    CloseFds,
    /// Restoring the signal mask.
    SignalMask,
    /// Executing the payload.
    Exec,
    /// Installing the seccomp filter.
    Seccomp,
    /// Not an error: the payload's seccomp listener fd is ready (its number
    /// in `index`) to be taken by the supervisor.
    SeccompHandoff,
    /// Making the payload's seccomp listener reachable for the supervisor.
    ReportDumpable,
    /// Creating or applying the Landlock ruleset.
    Landlock,
    /// Adding a Landlock rule (`index` = rule).
    LandlockRule,
    /// Putting the caller's fds on stdin/stdout/stderr (`index` = which).
    Stdio,
    /// unshare(2) of the namespaces (embedded use; `index` 1: init making
    /// the sandbox's network namespace).
    Unshare,
    /// Writing the id maps from inside (embedded use; `index`: 0 setgroups, 1 gid_map, 2 uid_map).
    IdMapSelf,
    /// Making a writable bind's idmapped mount, in the parent (`index` = mount op).
    BindIdmap,
    /// Creating an egress proxy listener in the sandbox's network namespace
    /// (`index` = port).
    ProxyListen,
    /// Handing the proxy listeners to the supervisor (SCM_RIGHTS).
    ProxyHandoff,
    /// Placing the sandbox's /etc/resolv.conf, which names the DNS stub
    /// (`index` = mount op).
    ResolvConf,
    /// Building a workspace's overlay (`index` = mount op).
    Workspace,
    /// Handing the workspaces' upper directories to the supervisor.
    WorkspaceHandoff,
    /// The payload's pty (interactive use): opening the sandbox's ptmx,
    /// unlocking it, opening its slave, setting its modes and size, or
    /// handing the master to the supervisor (`index`: which of these).
    Pty,
    /// Making the pty's slave the payload's controlling terminal and its
    /// stdin, stdout and stderr (`index`: 0 setsid, 1 TIOCSCTTY, 2-4 dup2).
    ControllingTty,
    /// A named sandbox's init setting up its command loop (`index`: 0 the
    /// message buffer, 1 the SIGCHLD signalfd, 2 the ready message) or
    /// starting a command (`index`: 3 its error pipe, 4 the fork, 5 its
    /// stdio, 6 joining its own cgroup).
    Serve,
}

impl Step {
    const ALL: [Step; 46] = [
        Step::SyncWait,
        Step::ParentDeathSignal,
        Step::Identity,
        Step::MountPrivate,
        Step::RootTmpfs,
        Step::BindSource,
        Step::BindAttrs,
        Step::MountPoint,
        Step::MountPointOnHost,
        Step::Bind,
        Step::FsMount,
        Step::Symlink,
        Step::PivotRoot,
        Step::RootReadonly,
        Step::Hostname,
        Step::Loopback,
        Step::Setsid,
        Step::Dumpable,
        Step::Fork,
        Step::Chdir,
        Step::Rlimit,
        Step::CapBounding,
        Step::SecureBits,
        Step::Capset,
        Step::CapAmbient,
        Step::NoNewPrivs,
        Step::CloseFds,
        Step::SignalMask,
        Step::Exec,
        Step::Seccomp,
        Step::SeccompHandoff,
        Step::ReportDumpable,
        Step::Landlock,
        Step::LandlockRule,
        Step::Stdio,
        Step::Unshare,
        Step::IdMapSelf,
        Step::BindIdmap,
        Step::ProxyListen,
        Step::ProxyHandoff,
        Step::ResolvConf,
        Step::Workspace,
        Step::WorkspaceHandoff,
        Step::Pty,
        Step::ControllingTty,
        Step::Serve,
    ];

    /// The step's name as printed and written to the outcome.
    pub fn name(self) -> &'static str {
        match self {
            Step::SyncWait => "sync",
            Step::ParentDeathSignal => "parent-death signal",
            Step::Identity => "identity",
            Step::MountPrivate => "mount private",
            Step::RootTmpfs => "root tmpfs",
            Step::BindSource => "bind source",
            Step::BindAttrs => "mount attributes",
            Step::BindIdmap => "idmapped bind",
            Step::MountPoint => "mount point",
            Step::MountPointOnHost => "mount point",
            Step::Bind => "bind",
            Step::FsMount => "mount",
            Step::Symlink => "symlink",
            Step::PivotRoot => "pivot_root",
            Step::RootReadonly => "read-only root",
            Step::Hostname => "hostname",
            Step::Loopback => "loopback",
            Step::Setsid => "setsid",
            Step::Dumpable => "dumpable",
            Step::Fork => "fork",
            Step::Chdir => "chdir",
            Step::Rlimit => "rlimit",
            Step::CapBounding => "capability bounding set",
            Step::SecureBits => "securebits",
            Step::Capset => "capabilities",
            Step::CapAmbient => "ambient capabilities",
            Step::NoNewPrivs => "no_new_privs",
            Step::CloseFds => "close fds",
            Step::SignalMask => "signal mask",
            Step::Exec => "exec",
            Step::Seccomp => "seccomp",
            Step::SeccompHandoff => "seccomp hand-off",
            Step::ReportDumpable => "seccomp report (dumpable)",
            Step::Landlock => "landlock",
            Step::LandlockRule => "landlock rule",
            Step::Stdio => "stdio",
            Step::Unshare => "unshare",
            Step::IdMapSelf => "id maps",
            Step::ProxyListen => "proxy listener",
            Step::ProxyHandoff => "proxy hand-off",
            Step::ResolvConf => "a file cordon writes into the sandbox (a copy, or the generated resolv.conf, passwd, group, hosts)",
            Step::Workspace => "workspace",
            Step::WorkspaceHandoff => "workspace hand-off",
            Step::Pty => "pty",
            Step::ControllingTty => "controlling terminal",
            Step::Serve => "named sandbox command loop",
        }
    }

    fn from_u32(v: u32) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s as u32 == v)
    }
}

/// A failure in the child: which step, which errno, and an index that names
/// the item (mount entry, rlimit, exec candidate) the step was working on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildError {
    /// The failing step.
    pub step: Step,
    /// The errno it failed with.
    pub errno: Errno,
    /// Which item of the step.
    pub index: u32,
}

/// Size of a [`ChildError`] on the error pipe.
pub const WIRE_SIZE: usize = 12;

impl ChildError {
    /// A new record.
    pub fn new(step: Step, errno: Errno, index: u32) -> ChildError {
        ChildError { step, errno, index }
    }

    /// Encode for the error pipe (no allocation).
    pub fn encode(self) -> [u8; WIRE_SIZE] {
        let mut b = [0u8; WIRE_SIZE];
        b[0..4].copy_from_slice(&(self.step as u32).to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.0.to_le_bytes());
        b[8..12].copy_from_slice(&self.index.to_le_bytes());
        b
    }

    /// Decode a record read from the error pipe.
    pub fn decode(b: &[u8; WIRE_SIZE]) -> Option<ChildError> {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Some(ChildError {
            step: Step::from_u32(u32::from_le_bytes(word(0)))?,
            errno: Errno(i32::from_le_bytes(word(4))),
            index: u32::from_le_bytes(word(8)),
        })
    }
}

/// Why a launch could not start or complete, as printed by the CLI:
/// `cordon: <step>: <detail>: <errno text>`, plus a hint where one helps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchError {
    /// The step, e.g. `clone3`, `uid_map`, `bind`.
    pub step: String,
    /// Path or other detail.
    pub detail: String,
    /// errno, when a system call failed.
    pub errno: Option<i32>,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl LaunchError {
    /// An error from a failed system call in the parent.
    pub fn sys(step: &str, detail: impl Into<String>, errno: Errno) -> LaunchError {
        LaunchError {
            step: step.to_string(),
            detail: detail.into(),
            errno: Some(errno.0),
            hint: None,
        }
    }

    /// An error with no errno.
    pub fn other(step: &str, detail: impl Into<String>) -> LaunchError {
        LaunchError {
            step: step.to_string(),
            detail: detail.into(),
            errno: None,
            hint: None,
        }
    }

    /// Attach a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> LaunchError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.step)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        if let Some(e) = self.errno {
            write!(f, ": {}", Errno(e).describe())?;
        }
        Ok(())
    }
}

impl std::error::Error for LaunchError {}

/// The outcome's `error` record: `step`, `detail`, `errno` (when a call
/// failed), `message` (the whole line as printed) and `hint`.
impl Serialize for LaunchError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut r = s.serialize_struct("LaunchError", 5)?;
        r.serialize_field("step", &self.step)?;
        r.serialize_field("detail", &self.detail)?;
        if let Some(e) = self.errno {
            r.serialize_field("errno", &e)?;
        }
        r.serialize_field("message", &self.to_string())?;
        if let Some(h) = &self.hint {
            r.serialize_field("hint", h)?;
        }
        r.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_for_every_step() {
        for (i, s) in Step::ALL.iter().enumerate() {
            let e = ChildError::new(*s, Errno(i as i32 + 1), 7 * i as u32);
            assert_eq!(ChildError::decode(&e.encode()), Some(e));
        }
    }

    #[test]
    fn unknown_step_does_not_decode() {
        let mut b = ChildError::new(Step::Exec, Errno(2), 0).encode();
        b[0] = 200;
        assert_eq!(ChildError::decode(&b), None);
    }

    #[test]
    fn outcome_record_has_the_printed_message_and_skips_absent_fields() {
        let e = LaunchError::sys("bind", "/nope", Errno(libc::ENOENT)).with_hint("bind it");
        let v = serde_json::to_value(&e).expect("serializes");
        assert_eq!(
            v,
            serde_json::json!({"step": "bind", "detail": "/nope", "errno": libc::ENOENT,
                "message": "bind: /nope: No such file or directory", "hint": "bind it"})
        );
        let v = serde_json::to_value(LaunchError::other("init", "exited")).expect("serializes");
        assert_eq!(
            v,
            serde_json::json!({"step": "init", "detail": "exited", "message": "init: exited"})
        );
    }

    #[test]
    fn display_has_step_detail_and_errno_text() {
        let e = LaunchError::sys("bind", "/nope", Errno(libc::ENOENT));
        assert_eq!(e.to_string(), "bind: /nope: No such file or directory");
    }
}
