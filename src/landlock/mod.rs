//! Landlock: the policy section, its mapping onto the access rights of the
//! kernel's Landlock ABI, and the ruleset the payload applies to itself
//! after pivot_root and before seccomp.
//!
//! Kinds of access, for paths as the sandbox sees them:
//! - `read`: read files, list directories;
//! - `write`: `read` plus write, truncate, create and remove files,
//!   directories, links, sockets, fifos, device nodes, rename and link within
//!   the `write` set (refer), and ioctl on devices;
//! - `execute`: execute (the kernel reads what it executes, so reading the
//!   file itself is granted too; listing its directory is not).
//!
//! Everything a ruleset handles and a rule does not grant is denied. A
//! policy with any path rule handles every filesystem right cordon knows;
//! `tcp_connect`/`tcp_bind`, when present (even empty), handle TCP; `scope`
//! lists the IPC scopes. With `"compatibility": "strict"` (the default) a
//! right the kernel cannot enforce refuses the run; `"best_effort"` runs
//! and the outcome lists what was not enforced.

pub mod apply;
pub mod probe;

use std::ffi::CString;

pub use crate::policy::landlock::{Compatibility, LandlockPolicy, Scope};
use crate::policy::PolicyError;

/// LANDLOCK_ACCESS_FS_* bits (linux/landlock.h); libc lacks them.
pub mod fs {
    /// Execute a file.
    pub const EXECUTE: u64 = 1 << 0;
    /// Open a file for writing.
    pub const WRITE_FILE: u64 = 1 << 1;
    /// Open a file for reading.
    pub const READ_FILE: u64 = 1 << 2;
    /// List a directory.
    pub const READ_DIR: u64 = 1 << 3;
    /// Remove a directory.
    pub const REMOVE_DIR: u64 = 1 << 4;
    /// Remove a file.
    pub const REMOVE_FILE: u64 = 1 << 5;
    /// Create a character device.
    pub const MAKE_CHAR: u64 = 1 << 6;
    /// Create a directory.
    pub const MAKE_DIR: u64 = 1 << 7;
    /// Create a regular file.
    pub const MAKE_REG: u64 = 1 << 8;
    /// Create a unix socket.
    pub const MAKE_SOCK: u64 = 1 << 9;
    /// Create a fifo.
    pub const MAKE_FIFO: u64 = 1 << 10;
    /// Create a block device.
    pub const MAKE_BLOCK: u64 = 1 << 11;
    /// Create a symlink.
    pub const MAKE_SYM: u64 = 1 << 12;
    /// Link or rename across directories (ABI 2).
    pub const REFER: u64 = 1 << 13;
    /// Truncate a file (ABI 3).
    pub const TRUNCATE: u64 = 1 << 14;
    /// ioctl on a character or block device (ABI 5).
    pub const IOCTL_DEV: u64 = 1 << 15;
}

/// LANDLOCK_ACCESS_NET_* bits (ABI 4); libc lacks them.
pub mod net {
    /// Bind a TCP socket to a port.
    pub const BIND_TCP: u64 = 1 << 0;
    /// Connect a TCP socket to a port.
    pub const CONNECT_TCP: u64 = 1 << 1;
}

/// LANDLOCK_SCOPE_* bits (ABI 6); libc lacks them.
pub mod scope {
    /// Connecting to abstract unix sockets created outside the domain.
    pub const ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
    /// Sending signals to processes outside the domain.
    pub const SIGNAL: u64 = 1 << 1;
}

/// `read`.
pub const READ: u64 = fs::READ_FILE | fs::READ_DIR;
/// `write` (includes `read`).
pub const WRITE: u64 = READ
    | fs::WRITE_FILE
    | fs::REMOVE_DIR
    | fs::REMOVE_FILE
    | fs::MAKE_CHAR
    | fs::MAKE_DIR
    | fs::MAKE_REG
    | fs::MAKE_SOCK
    | fs::MAKE_FIFO
    | fs::MAKE_BLOCK
    | fs::MAKE_SYM
    | fs::REFER
    | fs::TRUNCATE
    | fs::IOCTL_DEV;
/// `execute`.
pub const EXECUTE: u64 = fs::EXECUTE | fs::READ_FILE;

/// The filesystem rights an ABI version can handle.
pub fn fs_rights(abi: u32) -> u64 {
    match abi {
        0 => 0,
        1 => (1 << 13) - 1,
        2 => (1 << 14) - 1,
        3 | 4 => (1 << 15) - 1,
        _ => (1 << 16) - 1,
    }
}

/// The network rights an ABI version can handle.
pub fn net_rights(abi: u32) -> u64 {
    if abi >= 4 {
        net::BIND_TCP | net::CONNECT_TCP
    } else {
        0
    }
}

/// The scopes an ABI version can handle.
pub fn scopes(abi: u32) -> u64 {
    if abi >= 6 {
        scope::ABSTRACT_UNIX_SOCKET | scope::SIGNAL
    } else {
        0
    }
}

/// Rights that, if the kernel cannot handle them, leave something the policy
/// denies open; with their ABI and a name. (Refer, ABI 2, is not here: on
/// ABI 1 cross-directory links and renames are always denied, which is
/// stricter, not looser.)
const FS_GAPS: [(u64, u32, &str); 3] = [
    (
        fs::EXECUTE | fs::WRITE_FILE | fs::READ_FILE | fs::READ_DIR,
        1,
        "filesystem access control",
    ),
    (fs::TRUNCATE, 3, "truncate"),
    (fs::IOCTL_DEV, 5, "ioctl on devices (ioctl_dev)"),
];

impl Scope {
    fn bit(self) -> u64 {
        match self {
            Scope::AbstractUnixSocket => scope::ABSTRACT_UNIX_SOCKET,
            Scope::Signal => scope::SIGNAL,
        }
    }

    /// The policy spelling.
    pub fn name(self) -> &'static str {
        match self {
            Scope::AbstractUnixSocket => "abstract_unix_socket",
            Scope::Signal => "signal",
        }
    }
}

/// Most path rules a plan carries (the child keeps them in the plan; this
/// only bounds the work).
pub const MAX_RULES: usize = 256;

/// One path rule: a path inside the sandbox and the rights granted beneath it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// The path, as the sandbox sees it.
    pub path: CString,
    /// LANDLOCK_ACCESS_FS_* granted (already limited to what is handled).
    pub access: u64,
    /// Where it came from, e.g. `landlock.read[2]`, for errors.
    pub field: String,
}

/// struct landlock_ruleset_attr (defined in `sys`, which depends on no
/// crate module).
pub use crate::sys::LandlockRulesetAttr as RulesetAttr;

/// Everything the payload needs to restrict itself, computed in the parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LandlockPlan {
    /// The ruleset's handled rights.
    pub attr: RulesetAttr,
    /// Bytes of `attr` to pass: the smallest size that holds every non-zero
    /// field, so that older kernels accept it.
    pub attr_size: usize,
    /// Path rules.
    pub paths: Vec<PathRule>,
    /// (port, rights) rules.
    pub ports: Vec<(u64, u64)>,
}

fn err(file: &str, path: String, message: String) -> PolicyError {
    PolicyError {
        file: file.to_string(),
        path,
        position: None,
        message,
    }
}

fn check_path(file: &str, field: &str, p: &str) -> Result<(), PolicyError> {
    crate::policy::check_sandbox_path(p).map_err(|m| err(file, field.to_string(), m))
}

impl LandlockPolicy {
    /// Check what needs no kernel: paths are absolute and clean, ports are
    /// not 0, no duplicates that disagree.
    pub fn check(&self, file: &str) -> Result<(), PolicyError> {
        for (kind, list) in [
            ("read", &self.read),
            ("write", &self.write),
            ("execute", &self.execute),
        ] {
            for (i, p) in list.iter().enumerate() {
                check_path(file, &format!("landlock.{kind}[{i}]"), p)?;
            }
        }
        let rules = self.read.len() + self.write.len() + self.execute.len();
        if rules > MAX_RULES {
            return Err(err(
                file,
                "landlock".into(),
                format!("{rules} path rules; at most {MAX_RULES}"),
            ));
        }
        for (kind, list) in [("tcp_connect", &self.tcp_connect), ("tcp_bind", &self.tcp_bind)] {
            for (i, port) in list.iter().flatten().enumerate() {
                if *port == 0 {
                    return Err(err(
                        file,
                        format!("landlock.{kind}[{i}]"),
                        "port 0 is not a port: expected 1 to 65535".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// What the section needs from the kernel, as (what, minimum ABI).
    pub fn needs(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        if !(self.read.is_empty() && self.write.is_empty() && self.execute.is_empty()) {
            for (_, abi, name) in FS_GAPS {
                out.push((name.to_string(), abi));
            }
        }
        if self.tcp_connect.is_some() {
            out.push(("TCP connect rules".to_string(), 4));
        }
        if self.tcp_bind.is_some() {
            out.push(("TCP bind rules".to_string(), 4));
        }
        for s in &self.scope {
            out.push((format!("scope {}", s.name()), 6));
        }
        out
    }

    /// Map the section onto Landlock ABI `abi` (0: no Landlock). Returns the
    /// plan and what could not be enforced; with `strict`, anything not
    /// enforceable is an error instead. `None` when nothing is left to apply.
    pub fn prepare(&self, abi: u32, file: &str) -> Result<(Option<LandlockPlan>, Vec<String>), PolicyError> {
        self.check(file)?;
        let missing: Vec<String> = self
            .needs()
            .into_iter()
            .filter(|(_, need)| abi < *need)
            .map(|(what, need)| format!("landlock: {what} needs Landlock ABI {need}"))
            .collect();
        if !missing.is_empty() && self.compatibility == Compatibility::Strict {
            let have = match abi {
                0 => "this kernel has no usable Landlock".to_string(),
                n => format!("this kernel offers Landlock ABI {n}"),
            };
            return Err(err(
                file,
                "landlock".into(),
                format!(
                    "{have}, which cannot enforce: {}; set \"compatibility\": \"best_effort\" (--best-effort) to run anyway with those parts listed as unenforced, or use a newer kernel",
                    missing.iter().map(|m| m.trim_start_matches("landlock: ")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let has_paths = !(self.read.is_empty() && self.write.is_empty() && self.execute.is_empty());
        let handled_fs = if has_paths { fs_rights(abi) } else { 0 };
        let mut handled_net = 0;
        if self.tcp_connect.is_some() {
            handled_net |= net::CONNECT_TCP & net_rights(abi);
        }
        if self.tcp_bind.is_some() {
            handled_net |= net::BIND_TCP & net_rights(abi);
        }
        let scoped = self.scope.iter().fold(0, |a, s| a | s.bit()) & scopes(abi);
        let mut paths = Vec::new();
        for (kind, list, access) in [
            ("read", &self.read, READ),
            ("write", &self.write, WRITE),
            ("execute", &self.execute, EXECUTE),
        ] {
            for (i, p) in list.iter().enumerate() {
                let field = format!("landlock.{kind}[{i}]");
                let path = CString::new(p.as_bytes())
                    .map_err(|_| err(file, field.clone(), "contains a NUL byte".into()))?;
                paths.push(PathRule {
                    path,
                    access: access & handled_fs,
                    field,
                });
            }
        }
        let mut ports = Vec::new();
        for (list, right) in [
            (&self.tcp_connect, net::CONNECT_TCP),
            (&self.tcp_bind, net::BIND_TCP),
        ] {
            if handled_net & right != 0 {
                for &port in list.iter().flatten() {
                    ports.push((u64::from(port), right));
                }
            }
        }
        if handled_fs == 0 && handled_net == 0 && scoped == 0 {
            return Ok((None, missing));
        }
        let attr = RulesetAttr {
            handled_access_fs: handled_fs,
            handled_access_net: handled_net,
            scoped,
        };
        let attr_size = if scoped != 0 {
            24
        } else if handled_net != 0 {
            16
        } else {
            8
        };
        Ok((
            Some(LandlockPlan {
                attr,
                attr_size,
                paths,
                ports,
            }),
            missing,
        ))
    }
}

/// The kernel's Landlock ABI version: 0 when Landlock is missing or disabled.
pub fn abi_version() -> u32 {
    crate::sys::landlock_abi().unwrap_or(0)
}

#[cfg(test)]
mod tests;
