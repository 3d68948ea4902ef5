//! The policy model: what a sandbox may see and do.
//!
//! This layer is pure: it parses and validates JSON, applies command-line
//! overrides, and never makes a system call beyond reading the policy file.
//! Every error names the file, the field path and the line:column it refers to.

pub mod extends;
pub mod landlock;
pub mod locate;
pub mod named;
pub mod network;
pub mod overrides;
#[cfg(any(test, feature = "schema"))]
pub mod schema;
pub mod units;
pub mod workspace;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use landlock::Compatibility;
pub use network::{NetMode, NetworkPolicy};
pub use units::{Cpus, Dur, Size};
pub use workspace::{ApplyWhen, Workspace};

/// The built-in default policy (also shipped as `policies/default.json`).
pub const DEFAULT_POLICY_JSON: &str = include_str!("../../policies/default.json");

/// The built-in policy for `cordon exec` and pre-exec use: the default
/// policy without the layers that need a supervisor (no pid namespace, no
/// `/proc`). Shipped as `policies/exec.json`.
pub const EXEC_POLICY_JSON: &str = include_str!("../../policies/exec.json");

/// Name used for the built-in policy in error messages.
pub const DEFAULT_POLICY_NAME: &str = "<built-in default policy>";

/// The only policy format version this build understands.
pub const POLICY_VERSION: u32 = 1;

/// A complete sandbox description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The JSON Schema an editor checks the file against (`"$schema"`);
    /// accepted and ignored.
    #[serde(rename = "$schema", default, skip_serializing, deserialize_with = "ignore")]
    #[cfg_attr(any(test, feature = "schema"), schemars(with = "Option<String>"))]
    pub schema: (),
    /// One line saying what the policy is for (`cordon policies` shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The policy this one is based on: a name or a path (see
    /// [`extends`]). Merged when the policy is loaded, so a loaded policy
    /// has nothing here.
    #[serde(default, skip_serializing, deserialize_with = "ignore")]
    #[cfg_attr(any(test, feature = "schema"), schemars(with = "Option<String>"))]
    pub extends: (),
    /// Format version; must be 1.
    pub version: u32,
    /// Namespaces to create. `user`, `mount` and `pid` are required.
    #[serde(default = "default_namespaces")]
    pub namespaces: Vec<Namespace>,
    /// The identity the payload runs as.
    #[serde(default)]
    pub identity: Identity,
    /// Hostname inside the sandbox (needs the `uts` namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The sandbox's filesystem, built in this order on an empty root.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Working directory of the payload, as the sandbox sees it.
    #[serde(default = "default_cwd")]
    pub cwd: String,
    /// The payload's environment.
    #[serde(default)]
    pub env: Env,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
    /// Host paths that may be mounted although they are on the sensitive list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_sensitive: Vec<String>,
    /// Landlock rules, applied after pivot_root and before seccomp (none:
    /// no Landlock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock: Option<landlock::LandlockPolicy>,
    /// The seccomp filter, installed last before exec (none: no filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<crate::seccomp::SeccompPolicy>,
    /// The network the payload gets (none: mode `none` with the `net`
    /// namespace, `host` without it; see [`Policy::network_mode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkPolicy>,
    /// The audit trail: where its JSON lines go (`--audit-log` takes its
    /// place). Not part of the policy digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
    /// Writable overlays of host directories whose changes are kept on a
    /// tmpfs of the sandbox, exported and applied only as each says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<Workspace>,
    /// How long a named sandbox (`cordon create`) lives: it is stopped
    /// after `idle` without a command, and after `max` in any case. A
    /// single run (`cordon run`) ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Layers turned off for this run by command-line flags (e.g.
    /// `--no-landlock`), for the outcome.
    #[serde(skip)]
    pub disabled: Vec<String>,
    /// Where each mount came from, parallel to `mounts`: `None` for the
    /// policy file, or the command-line flag that added it (for errors).
    #[serde(skip)]
    pub mount_origins: Vec<Option<String>>,
}

/// The policy's `"lifecycle"` section: the limits of a named sandbox's
/// life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Stop the sandbox after this long with no command running and none
    /// started, e.g. `"10m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Dur>,
    /// Stop the sandbox this long after it was made, whatever runs in
    /// it, e.g. `"2h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Dur>,
}

/// The policy's `"audit"` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// The file the events are appended to (created mode 0600; never
    /// through a symbolic link; a regular file with a single link).
    pub path: String,
}

/// A Linux namespace cordon can create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// User namespace (ids and capabilities).
    User,
    /// Mount namespace.
    Mount,
    /// PID namespace.
    Pid,
    /// Network namespace (only loopback inside).
    Net,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// Hostname and domain name.
    Uts,
    /// cgroup namespace.
    Cgroup,
}

impl Namespace {
    /// All namespaces, in policy order.
    pub const ALL: [Namespace; 7] = [
        Namespace::User,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Net,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Cgroup,
    ];

    /// The policy spelling.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mount",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Cgroup => "cgroup",
        }
    }
}

/// Consumes any value: for `"$schema"`, and for `"extends"` once it is merged.
fn ignore<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(drop)
}

fn default_namespaces() -> Vec<Namespace> {
    Namespace::ALL.to_vec()
}

fn default_cwd() -> String {
    "/".to_string()
}

/// Who the payload is, inside and (when cordon runs as root) outside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// uid inside the sandbox.
    #[serde(default = "default_inner_id")]
    pub uid: u32,
    /// gid inside the sandbox.
    #[serde(default = "default_inner_id")]
    pub gid: u32,
    /// Host uid the inner uid maps to when cordon runs as root (default: an
    /// id of cordon's range, of its own for each sandbox; see
    /// [`crate::isolate::hostid`]). A rootless cordon always maps to the
    /// caller's own uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_uid: Option<u32>,
    /// Host gid the inner gid maps to when cordon runs as root (default: the
    /// sandbox's allocated id, the same number as its uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_gid: Option<u32>,
    /// Must be true for `host_uid` or `host_gid` 0: the payload would be host root.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_host_root: bool,
    /// Generate a minimal /etc/passwd and /etc/group naming the payload's
    /// uid and gid (default true), unless a bind holds them: `whoami` then
    /// works. False: no such files unless the policy binds them.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub passwd: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn default_inner_id() -> u32 {
    1000
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            uid: default_inner_id(),
            gid: default_inner_id(),
            host_uid: None,
            host_gid: None,
            allow_host_root: false,
            passwd: true,
        }
    }
}

/// One entry of the sandbox's filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(try_from = "RawMount", into = "RawMount")]
pub enum Mount {
    /// A host path bound into the sandbox.
    Bind {
        /// Host path (symlinks are resolved before launch).
        src: String,
        /// Path inside the sandbox (defaults to `src`).
        dst: String,
        /// Read-only (the default) or writable.
        readonly: bool,
        /// Skip silently when the source does not exist.
        optional: bool,
        /// Files on it may be executed (and mapped executable). Defaults to
        /// true for a read-only bind and false for a writable one: nothing
        /// the payload writes can be run unless the policy says so.
        exec: bool,
        /// Refuse a source with a symbolic link in any component instead of
        /// following it.
        no_symlinks: bool,
        /// Who owns, on the host, what the payload writes here (cordon
        /// started by root; see [`BindOwner`]). `None`: the source's owner
        /// for a writable bind, no idmap for a read-only one.
        owner: Option<BindOwner>,
        /// `strict` (default): a filesystem that cannot be idmapped refuses
        /// the run; `best_effort`: bind it without the idmap (writes then
        /// belong to the sandbox's host id) and list it under `unenforced`.
        compatibility: Compatibility,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Path inside the sandbox.
        dst: String,
        /// Size limit.
        size: Size,
        /// Permission bits of its root directory.
        mode: u32,
        /// Files on it may be executed (default false: mounted noexec).
        exec: bool,
        /// Most files, directories and links it may hold (None: derived
        /// from the size, see [`default_tmpfs_inodes`]).
        inodes: Option<u64>,
    },
    /// A fresh proc filesystem for the sandbox's pid namespace.
    Proc {
        /// Path inside the sandbox.
        dst: String,
    },
    /// A minimal /dev: null, zero, full, random, urandom, tty, pts, ptmx, shm.
    Dev {
        /// Path inside the sandbox.
        dst: String,
        /// Most pseudo-terminals the sandbox's private devpts hands out.
        ptys: u32,
    },
    /// A snapshot of a small host file, written into the sandbox's root at
    /// launch: no mount (cheaper than a bind), read-only like the root,
    /// and later changes on the host are not seen. Only a regular file
    /// readable by everyone on the host, at most [`MAX_COPY_BYTES`].
    Copy {
        /// Host path (symlinks are resolved before launch).
        src: String,
        /// Path inside the sandbox (defaults to `src`).
        dst: String,
        /// Skip silently when the source does not exist.
        optional: bool,
    },
    /// A symbolic link created inside the sandbox.
    Symlink {
        /// Path of the link inside the sandbox.
        dst: String,
        /// What it points to.
        target: String,
    },
}

/// Who owns, on the host, the files the payload creates in a bind (and
/// whose files the payload may change there as if they were its own). Applies
/// when cordon is started by root: the bind is then an idmapped mount that
/// maps this owner to the sandbox's host id. Rootless, the payload already
/// is the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindOwner {
    /// `"source"`: the owner (uid and gid) of the bind source.
    Source,
    /// `"sandbox"`: no idmap; writes belong to the sandbox's host id.
    Sandbox,
    /// `"UID:GID"`: this host uid and gid.
    Ids(u32, u32),
}

impl std::str::FromStr for BindOwner {
    type Err = String;

    fn from_str(s: &str) -> Result<BindOwner, String> {
        let bad = || {
            format!("invalid owner {s:?}: expected \"source\", \"sandbox\" or \"UID:GID\" with numeric host ids such as \"1000:1000\"")
        };
        match s {
            "source" => Ok(BindOwner::Source),
            "sandbox" => Ok(BindOwner::Sandbox),
            _ => {
                let (u, g) = s.split_once(':').ok_or_else(bad)?;
                let id = |x: &str| match x.parse::<u32>() {
                    Ok(v) if v != u32::MAX && !x.starts_with('+') => Ok(v),
                    _ => Err(bad()),
                };
                Ok(BindOwner::Ids(id(u)?, id(g)?))
            }
        }
    }
}

impl std::fmt::Display for BindOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindOwner::Source => f.write_str("source"),
            BindOwner::Sandbox => f.write_str("sandbox"),
            BindOwner::Ids(u, g) => write!(f, "{u}:{g}"),
        }
    }
}

/// Default size of a tmpfs that names none.
pub const DEFAULT_TMPFS_SIZE: Size = Size(64 << 20);

/// Default number of pseudo-terminals of a `dev` mount.
pub const DEFAULT_PTYS: u32 = 32;

/// Most pseudo-terminals a `dev` mount may ask for.
pub const MAX_PTYS: u32 = 1024;

/// Largest host file a `copy` entry takes (1 MiB): a copy is for the small
/// files a program reads at start, not a way to fill the sandbox's root.
pub const MAX_COPY_BYTES: u64 = 1 << 20;

/// Most inodes a tmpfs may ask for (an inode costs about 1 KiB of kernel
/// memory that no cgroup limit of the sandbox accounts for).
pub const MAX_TMPFS_INODES: u64 = 1 << 20;

/// The inode limit of a tmpfs that names none: one per 4 KiB of its size,
/// at least 64 and at most [`MAX_TMPFS_INODES`] (16384 for 64M).
pub fn default_tmpfs_inodes(size: Size) -> u64 {
    (size.bytes() / 4096).clamp(64, MAX_TMPFS_INODES)
}

/// The on-disk shape of a mount entry: exactly one of the kind keys is set.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct RawMount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tmpfs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    symlink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    copy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    readonly: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    optional: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compatibility: Option<Compatibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exec: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    no_symlinks: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inodes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ptys: Option<u32>,
}

impl TryFrom<RawMount> for Mount {
    type Error = String;

    fn try_from(r: RawMount) -> Result<Self, String> {
        let kinds = [
            ("bind", r.bind.is_some()),
            ("tmpfs", r.tmpfs.is_some()),
            ("proc", r.proc.is_some()),
            ("dev", r.dev.is_some()),
            ("symlink", r.symlink.is_some()),
            ("copy", r.copy.is_some()),
        ];
        let set: Vec<&str> = kinds.iter().filter(|k| k.1).map(|k| k.0).collect();
        if set.len() != 1 {
            return Err(format!(
                "a mount entry needs exactly one of \"bind\", \"copy\", \"tmpfs\", \"proc\", \"dev\" or \"symlink\"; found {}",
                if set.is_empty() { "none".to_string() } else { set.join(", ") }
            ));
        }
        let kind = set[0];
        let refuse = |field: &str, present: bool| -> Result<(), String> {
            if present {
                Err(format!("\"{field}\" does not apply to a {kind} mount"))
            } else {
                Ok(())
            }
        };
        if kind != "bind" && kind != "copy" {
            refuse("to", r.to.is_some())?;
            refuse("optional", r.optional.is_some())?;
        }
        if kind != "bind" {
            refuse("readonly", r.readonly.is_some())?;
            refuse("no_symlinks", r.no_symlinks.is_some())?;
            refuse("owner", r.owner.is_some())?;
            refuse("compatibility", r.compatibility.is_some())?;
        }
        if kind != "tmpfs" {
            refuse("size", r.size.is_some())?;
            refuse("mode", r.mode.is_some())?;
            refuse("inodes", r.inodes.is_some())?;
        }
        if kind != "bind" && kind != "tmpfs" {
            refuse("exec", r.exec.is_some())?;
        }
        if kind != "dev" {
            refuse("ptys", r.ptys.is_some())?;
        }
        if kind != "symlink" {
            refuse("target", r.target.is_some())?;
        }
        if let Some(src) = r.copy {
            return Ok(Mount::Copy {
                dst: r.to.unwrap_or_else(|| src.clone()),
                src,
                optional: r.optional.unwrap_or(false),
            });
        }
        Ok(match (r.bind, r.tmpfs, r.proc, r.dev, r.symlink) {
            (Some(src), ..) => {
                let readonly = r.readonly.unwrap_or(true);
                Mount::Bind {
                    dst: r.to.unwrap_or_else(|| src.clone()),
                    src,
                    readonly,
                    optional: r.optional.unwrap_or(false),
                    exec: r.exec.unwrap_or(readonly),
                    no_symlinks: r.no_symlinks.unwrap_or(false),
                    owner: r.owner.as_deref().map(str::parse).transpose()?,
                    compatibility: r.compatibility.unwrap_or_default(),
                }
            }
            (_, Some(dst), ..) => Mount::Tmpfs {
                dst,
                size: r.size.unwrap_or(DEFAULT_TMPFS_SIZE),
                mode: match r.mode {
                    Some(m) => parse_mode(&m)?,
                    None => 0o755,
                },
                exec: r.exec.unwrap_or(false),
                inodes: r.inodes,
            },
            (_, _, Some(dst), ..) => Mount::Proc { dst },
            (_, _, _, Some(dst), _) => Mount::Dev {
                dst,
                ptys: r.ptys.unwrap_or(DEFAULT_PTYS),
            },
            (_, _, _, _, Some(dst)) => {
                let target = r
                    .target
                    .ok_or_else(|| "a symlink mount needs a \"target\"".to_string())?;
                Mount::Symlink { dst, target }
            }
            _ => return Err("a mount entry needs a kind".to_string()),
        })
    }
}

impl From<Mount> for RawMount {
    fn from(m: Mount) -> RawMount {
        match m {
            Mount::Bind {
                src,
                dst,
                readonly,
                optional,
                exec,
                no_symlinks,
                owner,
                compatibility,
            } => RawMount {
                to: (dst != src).then_some(dst),
                bind: Some(src),
                readonly: Some(readonly),
                optional: optional.then_some(true),
                exec: Some(exec),
                no_symlinks: no_symlinks.then_some(true),
                owner: owner.map(|o| o.to_string()),
                compatibility: (!is_strict(&compatibility)).then_some(compatibility),
                ..RawMount::default()
            },
            Mount::Tmpfs {
                dst,
                size,
                mode,
                exec,
                inodes,
            } => RawMount {
                tmpfs: Some(dst),
                size: Some(size),
                mode: Some(format!("{mode:04o}")),
                exec: Some(exec),
                inodes,
                ..RawMount::default()
            },
            Mount::Proc { dst } => RawMount {
                proc: Some(dst),
                ..RawMount::default()
            },
            Mount::Dev { dst, ptys } => RawMount {
                dev: Some(dst),
                ptys: Some(ptys),
                ..RawMount::default()
            },
            Mount::Copy { src, dst, optional } => RawMount {
                to: (dst != src).then_some(dst),
                copy: Some(src),
                optional: optional.then_some(true),
                ..RawMount::default()
            },
            Mount::Symlink { dst, target } => RawMount {
                symlink: Some(dst),
                target: Some(target),
                ..RawMount::default()
            },
        }
    }
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(m),
        _ => Err(format!(
            "invalid mode {s:?}: expected octal permission bits such as \"0755\" or \"1777\""
        )),
    }
}

impl Mount {
    /// The path inside the sandbox this entry creates.
    pub fn dst(&self) -> &str {
        match self {
            Mount::Bind { dst, .. }
            | Mount::Tmpfs { dst, .. }
            | Mount::Proc { dst }
            | Mount::Dev { dst, .. }
            | Mount::Copy { dst, .. }
            | Mount::Symlink { dst, .. } => dst,
        }
    }

    /// The policy key naming this kind of entry.
    pub fn kind(&self) -> &'static str {
        match self {
            Mount::Bind { .. } => "bind",
            Mount::Tmpfs { .. } => "tmpfs",
            Mount::Proc { .. } => "proc",
            Mount::Dev { .. } => "dev",
            Mount::Symlink { .. } => "symlink",
            Mount::Copy { .. } => "copy",
        }
    }
}

/// The payload's environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Env {
    /// Start from an empty environment (the default) instead of cordon's own.
    #[serde(default = "default_true")]
    pub clear: bool,
    /// Variables copied from cordon's environment when present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// Variables set to fixed values (applied last).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
}

impl Default for Env {
    fn default() -> Self {
        Env {
            clear: true,
            keep: Vec::new(),
            set: BTreeMap::new(),
        }
    }
}

/// Resource limits. rlimits are set as both soft and hard limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock limit; on expiry every process of the sandbox is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_time: Option<Dur>,
    /// RLIMIT_CPU, rounded up to whole seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_time: Option<Dur>,
    /// RLIMIT_FSIZE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<Size>,
    /// RLIMIT_NOFILE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
    /// RLIMIT_NPROC, counted per user namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
    /// RLIMIT_AS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_space: Option<Size>,
    /// RLIMIT_STACK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Size>,
    /// Allow core dumps (RLIMIT_CORE unlimited); false sets it to 0.
    #[serde(default)]
    pub core_dumps: bool,
    /// cgroup memory limit (memory.max / memory.limit_in_bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    /// cgroup swap limit on top of `memory` (memory.swap.max /
    /// memory.memsw.limit_in_bytes); "0": no swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<Size>,
    /// cgroup process (task) limit (pids.max).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// cgroup CPU bandwidth in CPUs, e.g. 0.5 (cpu.max / cfs_quota_us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<units::Cpus>,
    /// The cgroup (v2: a directory of the cgroup2 mount) under which the
    /// sandbox's cgroup is made; default: next to cordon's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// Which cgroup versions may enforce the cgroup limits: `any` (default)
    /// or `v2_only` (cgroup v1 is treated as unavailable: a v1 attach makes
    /// every launch about twice as slow).
    #[serde(default, skip_serializing_if = "CgroupVersions::is_any")]
    pub cgroup: CgroupVersions,
    /// `strict` (default): a cgroup limit this host cannot enforce refuses
    /// the run; `best_effort`: run, and list it under `unenforced`.
    #[serde(default, skip_serializing_if = "is_strict")]
    pub compatibility: Compatibility,
}

/// The cgroup versions that may enforce a policy's cgroup limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersions {
    /// cgroup v2 where it offers the controllers, else cgroup v1.
    #[default]
    Any,
    /// cgroup v2 only, where the sandbox is born in its cgroup at no cost;
    /// on a host that offers the controllers only on v1 the limits count as
    /// not enforceable (refused, or listed under `unenforced` with
    /// `best_effort`).
    V2Only,
}

impl CgroupVersions {
    /// Whether this is the default, `any`.
    pub fn is_any(&self) -> bool {
        *self == CgroupVersions::Any
    }

    /// The policy spelling.
    pub fn name(self) -> &'static str {
        match self {
            CgroupVersions::Any => "any",
            CgroupVersions::V2Only => "v2_only",
        }
    }
}

fn is_strict(c: &Compatibility) -> bool {
    *c == Compatibility::Strict
}

/// A policy error, pointing into the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// File name (or `<built-in default policy>`, `<command line>`).
    pub file: String,
    /// Field path, e.g. `mounts[2].size`; empty for the whole document.
    pub path: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((l, c)) = self.position {
            write!(f, ":{l}:{c}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    /// Fill in the line:column of this error's field from the policy's
    /// text, for errors found after parsing (when resolving host paths).
    pub fn located_in(mut self, file: &str, text: &str) -> PolicyError {
        if self.position.is_none() && self.file == file && !self.path.is_empty() {
            self.position = locate::locate(text, &locate::parse_path(&self.path));
        }
        self
    }
}

/// A validation finding before it is placed in a file.
#[derive(Debug)]
struct Finding {
    path: String,
    message: String,
}

fn finding(path: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        path: path.into(),
        message: message.into(),
    }
}

impl Policy {
    /// The built-in default policy.
    pub fn builtin_default() -> Result<Policy, PolicyError> {
        Policy::from_json(DEFAULT_POLICY_NAME, DEFAULT_POLICY_JSON)
    }

    /// Read and validate a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        Policy::from_file_with_text(path).map(|(p, _)| p)
    }

    /// Read and validate a policy file; also return its text, so that later
    /// errors can be located in it ([`PolicyError::located_in`]). The
    /// policies it `extends` are looked up as [`named::SearchPath::from_env`]
    /// says (for errors in those, see [`Policy::load`]).
    pub fn from_file_with_text(path: &Path) -> Result<(Policy, String), PolicyError> {
        let (policy, sources) = extends::Chain::from_file(path, &named::SearchPath::from_env())
            .and_then(extends::Chain::into_policy)?;
        Ok((policy, sources.text().to_string()))
    }

    /// Load the policy `spec` names: a policy name (`shell`, see
    /// [`named`]) or a path, with what it `extends`. The sources place
    /// errors found later in the file they come from.
    pub fn load(spec: &Path) -> Result<(Policy, extends::Sources), PolicyError> {
        named::load(spec, &named::SearchPath::from_env())
    }

    /// Parse and validate policy JSON; `file` names it in errors. Its
    /// `extends` may name built-in policies only (no file is read).
    pub fn from_json(file: &str, text: &str) -> Result<Policy, PolicyError> {
        extends::Chain::from_text(file, text, None, &named::SearchPath::builtin_only())
            .and_then(extends::Chain::into_policy)
            .map(|(p, _)| p)
    }

    /// [`Policy::from_json`] for a policy without `extends`.
    fn from_json_single(file: &str, text: &str) -> Result<Policy, PolicyError> {
        // The plain parse first: it is the common case, and much cheaper
        // than tracking the path; only a policy it refuses is parsed again
        // with the path, for the error (the same refusal, located).
        let policy = match serde_json::from_str::<Policy>(text) {
            Ok(p) => p,
            Err(_) => Policy::parse_tracked(file, text)?,
        };
        Policy::finish_parse(file, text, policy)
    }

    /// The typed parse with the path of what it refuses; nothing may follow
    /// the policy object.
    fn parse_tracked(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let policy: Policy = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let position = char_position(text, inner.line(), inner.column());
            PolicyError {
                file: file.to_string(),
                path: if path == "." || path == "?" {
                    String::new()
                } else {
                    path
                },
                position,
                message: strip_position(&inner.to_string()),
            }
        })?;
        // Nothing may follow the policy (two policies pasted into one file).
        de.end().map_err(|e| PolicyError {
            file: file.to_string(),
            path: String::new(),
            position: char_position(text, e.line(), e.column()),
            message: format!(
                "{}: expected the end of the file after the policy object",
                strip_position(&e.to_string())
            ),
        })?;
        Ok(policy)
    }

    /// What the types alone do not refuse: arrays for objects, then
    /// [`Policy::validate`].
    fn finish_parse(file: &str, text: &str, policy: Policy) -> Result<Policy, PolicyError> {
        // serde accepts an array for a struct (its fields in order); the
        // format is objects only, so arrays are refused where there are none.
        if let Err(path) = check_arrays(text) {
            let segs = locate::parse_path(&path);
            return Err(PolicyError {
                file: file.to_string(),
                position: locate::locate(text, &segs),
                path,
                message: "expected an object, found an array".to_string(),
            });
        }
        let mut policy = policy;
        policy.settle_network();
        policy.validate().map_err(|f| {
            let segs = locate::parse_path(&f.path);
            PolicyError {
                file: file.to_string(),
                position: locate::locate(text, &segs),
                path: f.path,
                message: f.message,
            }
        })?;
        Ok(policy)
    }

    /// What a supervised run (`cordon run`, [`crate::Sandbox`]) needs on top
    /// of [`Policy::check`]: the pid namespace, for cordon's init and the
    /// wall-clock kill. (`cordon exec` and pre-exec use run without one.)
    pub fn check_supervised(&self, file: &str) -> Result<(), PolicyError> {
        if self.has_namespace(Namespace::Pid) {
            return Ok(());
        }
        Err(PolicyError {
            file: file.to_string(),
            path: "namespaces".to_string(),
            position: None,
            message: "the \"pid\" namespace is required (the sandbox's init and the wall-clock kill depend on it); only cordon exec runs without it".to_string(),
        })
    }

    /// Check the rules that the types alone do not express; `file` names
    /// the policy in errors.
    pub fn check(&self, file: &str) -> Result<(), PolicyError> {
        self.validate().map_err(|f| match self.mount_origin(&f.path) {
            // An entry a command-line flag made is named by that flag
            // (`--ro-bind ./job.py:/w/job.py`), not by its index.
            Some(flag) => PolicyError {
                file: overrides::CLI_SOURCE.to_string(),
                path: flag.to_string(),
                position: None,
                message: f.message,
            },
            None => PolicyError {
                file: file.to_string(),
                path: f.path,
                position: None,
                message: f.message,
            },
        })
    }

    /// The command-line flag that made the mount a finding's `mounts[i]…`
    /// path points at, if a flag made it.
    fn mount_origin(&self, path: &str) -> Option<&str> {
        let rest = path.strip_prefix("mounts[")?;
        let i: usize = rest.split(']').next()?.parse().ok()?;
        self.mount_origins.get(i)?.as_deref()
    }

    fn validate(&self) -> Result<(), Finding> {
        if self.version != POLICY_VERSION {
            return Err(finding(
                "version",
                format!(
                    "unsupported policy version {}: this cordon understands version {POLICY_VERSION}",
                    self.version
                ),
            ));
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            if self.namespaces[..i].contains(ns) {
                return Err(finding(
                    format!("namespaces[{i}]"),
                    format!("namespace \"{}\" is listed twice", ns.name()),
                ));
            }
        }
        for (ns, why) in [
            (Namespace::User, "the payload never runs with host privileges"),
            (Namespace::Mount, "the sandbox gets its own root filesystem"),
        ] {
            if !self.namespaces.contains(&ns) {
                return Err(finding(
                    "namespaces",
                    format!("the \"{}\" namespace is required ({why})", ns.name()),
                ));
            }
        }
        if let Some(h) = &self.hostname {
            if !self.namespaces.contains(&Namespace::Uts) {
                return Err(finding("hostname", "a hostname needs the \"uts\" namespace"));
            }
            if h.is_empty() || h.len() > 64 || h.bytes().any(|b| b == 0 || b == b'/') {
                return Err(finding("hostname", "expected 1 to 64 bytes without '/' or NUL"));
            }
        }
        let id = &self.identity;
        for (field, v) in [("host_uid", id.host_uid), ("host_gid", id.host_gid)] {
            if v == Some(0) && !id.allow_host_root {
                return Err(finding(
                    format!("identity.{field}"),
                    "mapping the payload to host id 0 makes it host root; set \"allow_host_root\": true to really do that",
                ));
            }
        }
        for (field, v) in [("uid", id.uid), ("gid", id.gid)] {
            if v == u32::MAX {
                return Err(finding(
                    format!("identity.{field}"),
                    "4294967295 is not a valid id",
                ));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, m) in self.mounts.iter().enumerate() {
            let key = m.kind();
            if let Mount::Bind { src, .. } | Mount::Copy { src, .. } = m {
                if !src.starts_with('/') {
                    return Err(finding(
                        format!("mounts[{i}].{key}"),
                        "expected an absolute host path",
                    ));
                }
                if src.contains('\0') {
                    return Err(finding(format!("mounts[{i}].{key}"), "path contains NUL"));
                }
            }
            check_sandbox_path(m.dst()).map_err(|e| finding(format!("mounts[{i}].{}", dst_key(m)), e))?;
            if m.dst() == "/" {
                return Err(finding(
                    format!("mounts[{i}].{}", dst_key(m)),
                    "the root is cordon's own empty tmpfs; mount below it",
                ));
            }
            match m {
                Mount::Tmpfs { size, .. } if size.bytes() == 0 => {
                    return Err(finding(
                        format!("mounts[{i}].size"),
                        "a tmpfs needs a size above 0",
                    ));
                }
                Mount::Tmpfs { inodes: Some(n), .. } if !(1..=MAX_TMPFS_INODES).contains(n) => {
                    return Err(finding(
                        format!("mounts[{i}].inodes"),
                        format!("expected 1 to {MAX_TMPFS_INODES} inodes"),
                    ));
                }
                Mount::Dev { ptys, .. } if !(1..=MAX_PTYS).contains(ptys) => {
                    return Err(finding(
                        format!("mounts[{i}].ptys"),
                        format!("expected 1 to {MAX_PTYS} pseudo-terminals"),
                    ));
                }
                Mount::Symlink { target, .. } if target.is_empty() || target.contains('\0') => {
                    return Err(finding(
                        format!("mounts[{i}].target"),
                        "expected a non-empty link target without NUL",
                    ));
                }
                _ => {}
            }
            if seen.contains(&m.dst()) && key != "bind" {
                return Err(finding(
                    format!("mounts[{i}].{}", dst_key(m)),
                    format!("{} is already a mount point of an earlier entry", m.dst()),
                ));
            }
            seen.push(m.dst());
        }
        self.validate_workspaces()?;
        if let Some(l) = &self.lifecycle {
            for (field, d) in [("idle", l.idle), ("max", l.max)] {
                if d.is_some_and(|d| d.0.is_zero()) {
                    return Err(finding(
                        format!("lifecycle.{field}"),
                        "must be more than 0 (leave it out for no limit)".to_string(),
                    ));
                }
            }
        }
        check_sandbox_path(&self.cwd).map_err(|e| finding("cwd", e))?;
        for (i, k) in self.env.keep.iter().enumerate() {
            check_env_name(k).map_err(|e| finding(format!("env.keep[{i}]"), e))?;
        }
        for (k, v) in &self.env.set {
            check_env_name(k).map_err(|e| finding(format!("env.set.{k}"), e))?;
            if v.contains('\0') {
                return Err(finding(format!("env.set.{k}"), "value contains NUL"));
            }
        }
        let l = &self.limits;
        if l.wall_time.is_some_and(|d| d.as_duration().is_zero()) {
            return Err(finding("limits.wall_time", "expected a duration above 0"));
        }
        if l.cpu_time.is_some_and(|d| d.as_duration().is_zero()) {
            return Err(finding("limits.cpu_time", "expected a duration above 0"));
        }
        if l.open_files == Some(0) {
            return Err(finding(
                "limits.open_files",
                "expected at least 1 (the payload needs its standard streams)",
            ));
        }
        if l.processes == Some(0) {
            return Err(finding("limits.processes", "expected at least 1"));
        }
        if l.pids == Some(0) {
            return Err(finding(
                "limits.pids",
                "expected at least 1 (the sandbox's init counts)",
            ));
        }
        if l.memory.is_some_and(|m| m.0 < 1 << 20) {
            return Err(finding(
                "limits.memory",
                "expected at least 1M: nothing starts in less",
            ));
        }
        if l.memory_swap.is_some() && l.memory.is_none() {
            return Err(finding(
                "limits.memory_swap",
                "needs limits.memory: swap is limited on top of memory",
            ));
        }
        if let Some(p) = &l.cgroup_parent {
            if !p.starts_with("/sys/fs/cgroup") {
                return Err(finding(
                    "limits.cgroup_parent",
                    format!("{p:?}: expected a directory under /sys/fs/cgroup"),
                ));
            }
        }
        if let Some(a) = &self.audit {
            let p = &a.path;
            if p.is_empty() {
                return Err(finding("audit.path", "the audit log path is empty"));
            }
            if p.contains('\0') {
                return Err(finding("audit.path", "the audit log path contains a NUL byte"));
            }
            if p.ends_with('/') || std::path::Path::new(p).file_name().is_none() {
                return Err(finding(
                    "audit.path",
                    format!("{p:?}: expected the path of a file, not of a directory"),
                ));
            }
        }
        if let Some(ll) = &self.landlock {
            ll.check("").map_err(|e| finding(e.path, e.message))?;
            // Every path must lie inside the sandbox's filesystem.
            for (kind, list) in [("read", &ll.read), ("write", &ll.write), ("execute", &ll.execute)] {
                for (i, p) in list.iter().enumerate() {
                    if !self.mounts.iter().any(|m| under(p, m.dst()))
                        && !self.workspaces.iter().any(|w| under(p, w.dst()))
                        && p != "/"
                    {
                        return Err(finding(
                            format!("landlock.{kind}[{i}]"),
                            format!("{p} is not inside any mount of the sandbox: a Landlock rule can only grant access to what the sandbox has"),
                        ));
                    }
                }
            }
        }
        if let Some(sc) = &self.seccomp {
            sc.check()
                .map_err(|e| finding(format!("seccomp.{}", e.path), e.message))?;
        }
        self.validate_network()?;
        for (i, p) in self.allow_sensitive.iter().enumerate() {
            if !p.starts_with('/') {
                return Err(finding(
                    format!("allow_sensitive[{i}]"),
                    "expected an absolute host path",
                ));
            }
        }
        Ok(())
    }

    /// The network the payload gets: the section's mode, or without a
    /// section `none` with the `net` namespace and `host` without it.
    pub fn network_mode(&self) -> NetMode {
        match &self.network {
            Some(n) => n.mode,
            None if self.has_namespace(Namespace::Net) => NetMode::None,
            None => NetMode::Host,
        }
    }

    /// Make the namespaces agree with an explicit `"network"` mode `host`:
    /// the host's network means no `net` namespace. (Modes `none` and
    /// `proxy` need it; [`Policy::check`] refuses them without it.)
    pub fn settle_network(&mut self) {
        if self.network.as_ref().is_some_and(|n| n.mode == NetMode::Host) {
            self.namespaces.retain(|n| *n != Namespace::Net);
        }
    }

    fn validate_workspaces(&self) -> Result<(), Finding> {
        if self.workspaces.len() > workspace::MAX_WORKSPACES {
            return Err(finding(
                format!("workspaces[{}]", workspace::MAX_WORKSPACES),
                format!("at most {} workspaces", workspace::MAX_WORKSPACES),
            ));
        }
        for (i, w) in self.workspaces.iter().enumerate() {
            w.check()
                .map_err(|(field, m)| finding(format!("workspaces[{i}].{field}"), m))?;
            let key = if w.to.is_some() { "to" } else { "path" };
            let clash = self
                .mounts
                .iter()
                .map(|m| m.dst())
                .chain(self.workspaces[..i].iter().map(|o| o.dst()));
            for d in clash {
                // A mount at or below the workspace would be hidden by it.
                if under(d, w.dst()) {
                    return Err(finding(
                        format!("workspaces[{i}].{key}"),
                        format!(
                            "{d} is mounted at or below {}, which the workspace would hide",
                            w.dst()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_network(&self) -> Result<(), Finding> {
        let Some(n) = &self.network else {
            return Ok(());
        };
        n.check().map_err(|(path, message)| finding(path, message))?;
        let own = self.has_namespace(Namespace::Net);
        match n.mode {
            NetMode::Host if own => Err(finding(
                "network.mode",
                "mode host is the host's network: remove \"net\" from namespaces",
            )),
            NetMode::None | NetMode::Proxy if !own => Err(finding(
                "network.mode",
                format!(
                    "mode {} needs the \"net\" namespace (add it to namespaces, or use mode host)",
                    n.mode.name()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the policy creates namespace `ns`.
    pub fn has_namespace(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }

    /// Pretty JSON of the effective policy (what `cordon check` prints).
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain data structures to a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn dst_key(m: &Mount) -> &'static str {
    match m {
        Mount::Bind { src, dst, .. } | Mount::Copy { src, dst, .. } if src != dst => "to",
        other => other.kind(),
    }
}

/// serde_json's (line, column) counts bytes in the column; the locator
/// and editors count characters. Convert, so every error agrees.
fn char_position(text: &str, line: usize, byte_col: usize) -> Option<(usize, usize)> {
    if line == 0 {
        return None;
    }
    let l = text.split('\n').nth(line - 1)?;
    let upto = byte_col.saturating_sub(1).min(l.len());
    // A column inside a multi-byte character counts that character.
    let chars = l.char_indices().take_while(|(i, _)| *i < upto).count();
    Some((line, chars + 1))
}

/// Where the policy format has arrays (`[]`: any element).
const ARRAY_FIELDS: [&str; 17] = [
    "namespaces",
    "mounts",
    "workspaces",
    "env.keep",
    "allow_sensitive",
    "seccomp.allow",
    "seccomp.rules",
    "seccomp.rules[].args",
    "landlock.read",
    "landlock.write",
    "landlock.execute",
    "landlock.tcp_connect",
    "landlock.tcp_bind",
    "landlock.scope",
    "network.allow",
    "network.deny",
    "network.transparent_ports",
];

/// The path of the first array, in document order, where the format has
/// none (`mounts[2].args` style), if there is one. `text` is JSON that has
/// already been parsed once; an error in it (there should be none) is
/// reported as at the top.
pub(crate) fn check_arrays(text: &str) -> Result<(), String> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let mut pattern = String::new();
    match (ArrayWalk {
        pattern: &mut pattern,
    })
    .deserialize(&mut de)
    {
        Ok(result) => result,
        Err(_) => Err(String::new()),
    }
}

/// One JSON value of [`check_arrays`]'s walk. Every policy is checked on
/// every launch, so the walk builds no tree and allocates nothing but the
/// pattern (the field path with indexes as `[]`, matched against
/// [`ARRAY_FIELDS`]); the concrete path, with indexes, is put together only
/// for the error, on the way back up.
struct ArrayWalk<'p> {
    pattern: &'p mut String,
}

impl<'de> serde::de::DeserializeSeed<'de> for ArrayWalk<'_> {
    type Value = Result<(), String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A map key of [`ArrayWalk`], appended to the pattern (borrowed or
/// unescaped, without a copy of its own).
struct PushKey<'p> {
    pattern: &'p mut String,
}

impl<'de> serde::de::DeserializeSeed<'de> for PushKey<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PushKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<(), E> {
        self.pattern.push_str(k);
        Ok(())
    }
}

impl<'de> serde::de::Visitor<'de> for ArrayWalk<'_> {
    type Value = Result<(), String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if !ARRAY_FIELDS.contains(&self.pattern.as_str()) {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            return Ok(Err(String::new()));
        }
        let base = self.pattern.len();
        self.pattern.push_str("[]");
        let mut result = Ok(());
        let mut i = 0usize;
        while let Some(r) = seq.next_element_seed(ArrayWalk {
            pattern: &mut *self.pattern,
        })? {
            if let (Ok(()), Err(rest)) = (&result, r) {
                result = Err(format!("[{i}]{rest}"));
            }
            i += 1;
        }
        self.pattern.truncate(base);
        Ok(result)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let base = self.pattern.len();
        let mut result = Ok(());
        loop {
            self.pattern.truncate(base);
            if base > 0 {
                self.pattern.push('.');
            }
            let key_at = self.pattern.len();
            if map
                .next_key_seed(PushKey {
                    pattern: &mut *self.pattern,
                })?
                .is_none()
            {
                break;
            }
            let r = map.next_value_seed(ArrayWalk {
                pattern: &mut *self.pattern,
            })?;
            if let (Ok(()), Err(rest)) = (&result, r) {
                let sep = if base > 0 { "." } else { "" };
                result = Err(format!("{sep}{}{rest}", &self.pattern[key_at..]));
            }
        }
        self.pattern.truncate(base);
        Ok(result)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Ok(()))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Ok(()))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Ok(()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Ok(()))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Ok(()))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Ok(()))
    }
}

/// Whether `p` is `dir` or below it.
fn under(p: &str, dir: &str) -> bool {
    dir == "/" || p == dir || p.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// A path inside the sandbox: absolute, normalised, no `..`, no NUL.
pub fn check_sandbox_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!(
            "{p:?} is not absolute: expected a path inside the sandbox such as \"/work\""
        ));
    }
    if p.contains('\0') {
        return Err("path contains NUL".to_string());
    }
    if p.len() >= 4096 {
        return Err("path is too long".to_string());
    }
    if p.split('/').any(|c| c == "." || c == "..") {
        return Err(format!("{p:?} contains '.' or '..': write the normalised path"));
    }
    if p.len() > 1 && (p.ends_with('/') || p.contains("//")) {
        return Err(format!(
            "{p:?} is not normalised: remove repeated or trailing '/'"
        ));
    }
    Ok(())
}

fn check_env_name(k: &str) -> Result<(), String> {
    if k.is_empty() || k.contains('=') || k.contains('\0') {
        Err(format!(
            "invalid variable name {k:?}: expected a non-empty name without '=' or NUL"
        ))
    } else {
        Ok(())
    }
}

/// The largest policy file cordon reads (16 MiB): real policies are a few
/// KiB, and parsing costs memory in proportion to the text.
pub const MAX_POLICY_BYTES: u64 = 16 << 20;

/// Read a policy file (or another JSON input, such as an OCI profile) as
/// UTF-8, refusing one larger than [`MAX_POLICY_BYTES`]: by its size (fstat
/// of the opened file) before reading, and by reading at most one byte more
/// than the bound (files whose size is not known in advance). The error is
/// the message without the file's name.
pub fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read policy file: {}", io_error_text(&e));
    let too_big = |size: String| {
        format!("the file is {size}, larger than the 16 MiB cordon reads; refusing to parse it")
    };
    let f = std::fs::File::open(path).map_err(cannot)?;
    let len = f.metadata().map_err(cannot)?.len();
    if len > MAX_POLICY_BYTES {
        return Err(too_big(format!("{len} bytes")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(MAX_POLICY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(too_big("more than 16 MiB".to_string()));
    }
    String::from_utf8(bytes)
        .map_err(|_| "cannot read policy file: stream did not contain valid UTF-8".to_string())
}

/// An I/O error's text without Rust's " (os error N)" suffix.
pub fn io_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// serde_json appends " at line L column C" to its messages; the position is
/// reported separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests;
