//! The sandbox's filesystem: a tmpfs root assembled from binds, tmpfs, proc,
//! a minimal /dev and symlinks, then pivot_root.
//!
//! `prepare` runs in the parent: it resolves host sources (following
//! symlinks to what will really be mounted), refuses sensitive sources, and
//! turns the policy's entries into primitive [`Op`]s with every string already
//! a C string. `apply` runs in the child and allocates nothing.
//!
//! Nothing is ever created through a symlink: mount points are resolved with
//! `openat2(RESOLVE_IN_ROOT)` against the new root, and a missing mount point
//! is created only on a tmpfs that cordon itself mounted, never in a host
//! directory brought in by a bind.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::path::{Path, PathBuf};

use crate::error::{ChildError, Step};
use crate::isolate::ids::Ids;
use crate::policy::{default_tmpfs_inodes, BindOwner, Mount, Policy, PolicyError, Size};
use crate::sensitive;
use crate::sys::{self, SysResult};

/// Where a bind's source is found.
#[derive(Debug)]
pub enum Source {
    /// A canonical host path, opened without following symlinks.
    Host(CString),
    /// A path inside the new root (relative), e.g. `proc/sys`.
    Sandbox(CString),
}

/// What a mount point must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file (for binds of files and device nodes).
    File,
}

/// One primitive step of building the root.
#[derive(Debug)]
pub enum Op {
    /// Bind a tree (recursively).
    Bind {
        /// Where the tree comes from.
        src: Source,
        /// Mount point, relative to the new root.
        dst: CString,
        /// Whether the mount point is a file or a directory.
        kind: Kind,
        /// Mount attributes to set on the whole tree (MOUNT_ATTR_*).
        attrs: u64,
        /// Skip when the source is missing.
        optional: bool,
        /// A user namespace fd (owned by [`MountPlan::userns`]): the tree
        /// is an idmapped mount made by the parent before clone (see
        /// [`idmapped_trees`]); -1: the child clones the source itself.
        idmap: c_int,
    },
    /// A new filesystem instance (tmpfs, proc, devpts).
    Fs {
        /// Filesystem type.
        fstype: &'static CStr,
        /// Mount point, relative to the new root.
        dst: CString,
        /// Comma-separated options, e.g. `size=67108864,mode=1777`.
        data: CString,
        /// mount(2) flags (MS_NOSUID, MS_NODEV, MS_NOEXEC).
        flags: libc::c_ulong,
        /// Whether files may be created on it (it joins cordon's own mounts).
        ours: bool,
    },
    /// Set attributes on an existing mount (not recursive), e.g. to make
    /// /dev read-only once it is populated.
    Attrs {
        /// The mount, relative to the new root.
        dst: CString,
        /// Mount attributes to set (MOUNT_ATTR_*).
        attrs: u64,
    },
    /// A regular file with fixed contents (mode 0644), made on cordon's own
    /// tmpfs; when the path is in a host bind (a bind of the host's /etc)
    /// or already exists, a file made on the root tmpfs is bound over it.
    File {
        /// Path, relative to the new root.
        dst: CString,
        /// What the file holds: made in the parent, only read by the child.
        contents: Box<[u8]>,
    },
    /// A symlink.
    Symlink {
        /// Link path, relative to the new root.
        dst: CString,
        /// Link target, verbatim.
        target: CString,
    },
    /// A workspace's overlay at `dst`: the lower layer is the bind at
    /// `<stage>/lower`, upper and work dirs are made on the tmpfs at
    /// `<stage>/rw`; both staging mounts are detached once the overlay
    /// holds them, and the upper directory's fd is kept for the supervisor.
    Overlay {
        /// Mount point, relative to the new root.
        dst: CString,
        /// The staging directory on cordon's root tmpfs, relative to it.
        stage: CString,
        /// mount(2) flags of the overlay (MS_NOSUID, MS_NODEV, MS_NOEXEC).
        flags: libc::c_ulong,
        /// Which workspace (its slot in the fds handed to the supervisor).
        slot: usize,
    },
}

/// A workspace as the supervisor needs it after the run.
#[derive(Clone, Debug)]
pub struct WorkspaceSpec {
    /// The canonical host directory.
    pub host: PathBuf,
    /// Where the sandbox saw it.
    pub dst: String,
    /// When its changes are applied.
    pub apply: crate::policy::ApplyWhen,
    /// Where its changes are exported.
    pub export: Option<PathBuf>,
    /// The policy field that names it, for messages.
    pub field: String,
}

/// The prepared filesystem: every op, and a description of each for errors.
#[derive(Debug)]
pub struct MountPlan {
    /// Steps in order.
    pub ops: Vec<Op>,
    /// Human description of each op, e.g. `bind /usr -> /usr (read-only)`.
    pub describe: Vec<String>,
    /// Options of the root tmpfs.
    pub root_data: CString,
    /// The user namespaces of the idmapped binds.
    pub userns: crate::isolate::idmap::Namespaces,
    /// Some writable bind is idmapped: the payload must not be able to make
    /// setuid/setgid files (see [`crate::seccomp::setid_guard`]).
    pub setid_guard: bool,
    /// Idmaps that this host could not make (best effort).
    pub unenforced: Vec<String>,
    /// The workspaces, in slot order (their overlays are the plan's last ops).
    pub workspaces: Vec<WorkspaceSpec>,
}

/// The sandbox's /etc/resolv.conf in mode `proxy`: the DNS stub on the
/// sandbox's loopback, one server, no search list.
pub const RESOLV_CONF: &[u8] = b"# cordon: the DNS stub of the egress proxy (network mode proxy)\nnameserver 127.0.0.1\noptions attempts:2 timeout:2\n";

/// Most entries one bind pattern (`/etc/java-*`) may match.
pub const MAX_PATTERN_MATCHES: usize = 32;

/// Most entries of a directory a bind pattern reads.
const MAX_PATTERN_SCAN: usize = 4096;

/// Whether `name` matches `pattern`, where `*` matches any run of bytes
/// (iterative, with one backtrack point: linear in practice).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The generated /etc/passwd and /etc/group, each unless the policy binds
/// that path (or a directory holding it) itself: root, the payload's own
/// uid and gid (named `sandbox`; `root` or `nobody`/`nogroup` for 0 and
/// 65534), and nobody. The payload's home is the policy's `HOME`, its shell
/// /bin/sh.
fn user_db(policy: &Policy, ids: &Ids) -> Vec<(&'static str, String)> {
    let bound = |p: &str| {
        policy
            .mounts
            .iter()
            .any(|m| matches!(m, Mount::Bind { .. } | Mount::Copy { .. }) && under(p, m.dst()))
    };
    let home = policy
        .env
        .set
        .get("HOME")
        .map(String::as_str)
        .filter(|h| h.starts_with('/') && !h.contains([':', '\n']))
        .unwrap_or("/");
    let mut out = Vec::new();
    if !bound("/etc/passwd") {
        let mut text = String::new();
        if ids.uid != 0 {
            text.push_str("root:x:0:0:root:/root:/bin/sh\n");
        }
        let name = match ids.uid {
            0 => "root",
            NOBODY => "nobody",
            _ => "sandbox",
        };
        text.push_str(&format!(
            "{name}:x:{}:{}:{name}:{home}:/bin/sh\n",
            ids.uid, ids.gid
        ));
        if ids.uid != NOBODY {
            text.push_str(&format!(
                "nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/usr/sbin/nologin\n"
            ));
        }
        out.push(("/etc/passwd", text));
    }
    if !bound("/etc/group") {
        let mut text = String::new();
        if ids.gid != 0 {
            text.push_str("root:x:0:\n");
        }
        let name = match ids.gid {
            0 => "root",
            NOBODY => "nogroup",
            _ => "sandbox",
        };
        text.push_str(&format!("{name}:x:{}:\n", ids.gid));
        if ids.gid != NOBODY {
            text.push_str(&format!("nogroup:x:{NOBODY}:\n"));
        }
        out.push(("/etc/group", text));
    }
    out
}

/// The generated /etc/hosts, unless a bind holds that path: localhost on
/// both loopback addresses, and the policy's hostname on 127.0.1.1 (as
/// Debian writes it), so that programs that resolve their own host name
/// (Java's `InetAddress.getLocalHost`) find it.
fn hosts_file(policy: &Policy) -> Option<String> {
    let bound = policy
        .mounts
        .iter()
        .any(|m| matches!(m, Mount::Bind { .. } | Mount::Copy { .. }) && under("/etc/hosts", m.dst()));
    if bound {
        return None;
    }
    let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(h) = policy.hostname.as_deref().filter(|h| {
        *h != "localhost"
            && !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    }) {
        text.push_str(&format!("127.0.1.1\t{h}\n"));
    }
    Some(text)
}

/// The overflow id: unmapped owners appear as it.
const NOBODY: u32 = 65534;

/// Where the root tmpfs holds a file while it is bound over a path in a
/// host bind (unlinked at once).
const FILE_STAGING: &CStr = c".cordon-file";

const ROOT_TMPFS_SIZE: u64 = 1 << 20;
/// Inodes of cordon's root tmpfs: its mount points and symlinks, at most
/// one per step of the plan, and the root itself.
const ROOT_TMPFS_INODES: usize = MAX_OPS + 16;
const DEV_TMPFS_SIZE: u64 = 1 << 20;
/// Inodes of the /dev tmpfs: the device nodes, symlinks, pts and shm.
const DEV_TMPFS_INODES: u64 = 64;
const SHM_SIZE: Size = Size(64 << 20);
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Parts of proc that are re-bound read-only over a fresh proc.
const PROC_READONLY: [&str; 4] = ["sys", "sysrq-trigger", "irq", "bus"];

fn cstr(s: &str) -> CString {
    // Callers validated that policy strings contain no NUL; a NUL would be
    // replaced here rather than panicking.
    CString::new(s).unwrap_or_else(|_| CString::new(s.replace('\0', "")).unwrap_or_default())
}

fn rel(dst: &str) -> CString {
    cstr(dst.trim_start_matches('/'))
}

impl MountPlan {
    /// Resolve and check the policy's mounts for a payload with `ids`.
    /// `file` names the policy in errors. Started by root, this makes the
    /// idmaps' user namespaces and checks that each idmapped bind's
    /// filesystem takes one.
    pub fn prepare(policy: &Policy, file: &str, ids: &Ids) -> Result<MountPlan, PolicyError> {
        let mut plan = MountPlan {
            ops: Vec::new(),
            describe: Vec::new(),
            root_data: cstr(&format!(
                "size={ROOT_TMPFS_SIZE},nr_inodes={ROOT_TMPFS_INODES},mode=755"
            )),
            userns: Default::default(),
            setid_guard: false,
            unenforced: Vec::new(),
            workspaces: Vec::new(),
        };
        let cx = Entries {
            policy,
            file,
            ids,
            deny: sensitive::DenyList::for_host(),
            exec_granted: exec_grants(policy),
            listings: Default::default(),
        };
        for (i, m) in policy.mounts.iter().enumerate() {
            plan.entry(&cx, i, m)?;
        }
        // After every entry (a tmpfs on /etc would hide them): who the
        // payload is, for whoami, id -un, getpass and ls -l.
        if policy.identity.passwd {
            for (path, contents) in user_db(policy, ids) {
                plan.push(
                    Op::File {
                        dst: rel(path),
                        contents: contents.into_bytes().into_boxed_slice(),
                    },
                    format!("{path} (generated for uid {} gid {})", ids.uid, ids.gid),
                );
            }
        }
        // Loopback names, so that "localhost" (and the sandbox's hostname)
        // resolve without DNS, as on any host.
        if let Some(text) = hosts_file(policy) {
            plan.push(
                Op::File {
                    dst: rel("/etc/hosts"),
                    contents: text.into_bytes().into_boxed_slice(),
                },
                "/etc/hosts (generated: localhost and the hostname)".to_string(),
            );
        }
        // Last, over whatever the policy put there: the sandbox's resolver
        // is the DNS stub on its own loopback.
        if policy
            .network
            .as_ref()
            .is_some_and(|n| n.mode == crate::policy::NetMode::Proxy && n.dns)
        {
            plan.push(
                Op::File {
                    dst: rel("/etc/resolv.conf"),
                    contents: RESOLV_CONF.into(),
                },
                "/etc/resolv.conf (nameserver 127.0.0.1, the DNS stub)".to_string(),
            );
        }
        for (i, w) in policy.workspaces.iter().enumerate() {
            plan.workspace(&cx, i, w)?;
        }
        if plan.ops.len() > MAX_OPS {
            return Err(PolicyError {
                file: file.to_string(),
                path: "mounts".to_string(),
                position: None,
                message: format!("too many mounts: {} steps, at most {MAX_OPS}", plan.ops.len()),
            });
        }
        Ok(plan)
    }

    /// Turn entry `i` of the policy's mounts into ops.
    fn entry(&mut self, cx: &Entries, i: usize, m: &Mount) -> Result<(), PolicyError> {
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
            } => {
                if src.contains('*') {
                    return self.bind_pattern(cx, i, m);
                }
                let b = BindEntry {
                    key: "bind",
                    src,
                    dst,
                    readonly: *readonly,
                    optional: *optional,
                    exec: *exec,
                    no_symlinks: *no_symlinks,
                    owner: *owner,
                    best_effort: *compatibility == crate::landlock::Compatibility::BestEffort,
                };
                self.bind(cx, i, &b)?;
            }
            Mount::Tmpfs {
                dst,
                size,
                mode,
                exec,
                inodes,
            } => self.tmpfs(
                dst,
                *size,
                inodes.unwrap_or_else(|| default_tmpfs_inodes(*size)),
                *mode,
                *exec || cx.exec_granted(i),
            ),
            Mount::Proc { dst } => self.proc(dst),
            Mount::Dev { dst, ptys } => self.dev(dst, *ptys),
            Mount::Copy { src, dst, optional } => self.copy(cx, i, src, dst, *optional)?,
            Mount::Symlink { dst, target } => self.push(
                Op::Symlink {
                    dst: rel(dst),
                    target: cstr(target),
                },
                format!("symlink {dst} -> {target}"),
            ),
        }
        Ok(())
    }

    /// A bind whose source's last component is a pattern (`*` matches any
    /// run of characters, not a leading dot), such as `/etc/java-*`: one
    /// bind per match, at the same path inside, in name order. One
    /// directory read at prepare time; at most [`MAX_PATTERN_MATCHES`].
    fn bind_pattern(&mut self, cx: &Entries, i: usize, m: &Mount) -> Result<(), PolicyError> {
        let Mount::Bind {
            src, dst, optional, ..
        } = m
        else {
            return Ok(());
        };
        let (dir, pattern) = src.rsplit_once('/').unwrap_or(("", src));
        if dir.contains('*') || src != dst {
            return Err(cx.err(
                i,
                "bind",
                format!("{src}: a '*' pattern may only be in the last component of a bind source, and the bind then takes no \"to\" (each match is bound at its own path)"),
            ));
        }
        let dir = if dir.is_empty() { "/" } else { dir };
        let names = match cx.pattern_matches(dir, pattern) {
            Ok(n) => n,
            Err(e) if *optional && e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(cx.err(
                    i,
                    "bind",
                    format!("{src}: cannot read {dir}: {}", crate::policy::io_error_text(&e)),
                ))
            }
        };
        if names.len() > MAX_PATTERN_MATCHES {
            return Err(cx.err(
                i,
                "bind",
                format!(
                    "{src} matches {} entries, at most {MAX_PATTERN_MATCHES}: narrow the pattern",
                    names.len()
                ),
            ));
        }
        if names.is_empty() && !*optional {
            return Err(cx.err(
                i,
                "bind",
                format!("{src} matches nothing; set \"optional\": true to allow that"),
            ));
        }
        let Mount::Bind {
            readonly,
            exec,
            no_symlinks,
            owner,
            compatibility,
            ..
        } = m
        else {
            return Ok(());
        };
        for name in names {
            // Bound as found: a name that itself holds a '*' is not
            // expanded again.
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            let b = BindEntry {
                key: "bind",
                src: &path,
                dst: &path,
                readonly: *readonly,
                optional: *optional,
                exec: *exec,
                no_symlinks: *no_symlinks,
                owner: *owner,
                best_effort: *compatibility == crate::landlock::Compatibility::BestEffort,
            };
            self.bind(cx, i, &b)?;
        }
        Ok(())
    }

    /// A host bind: resolved, checked against the deny list, idmapped where
    /// its owner asks for it. A missing optional source adds nothing.
    fn bind(&mut self, cx: &Entries, i: usize, b: &BindEntry) -> Result<(), PolicyError> {
        let Some(real) = resolve_source(cx, i, b)? else {
            return Ok(());
        };
        if let Some(why) = cx.deny.check(&real, &cx.policy.allow_sensitive) {
            return Err(cx.err(i, "bind", why));
        }
        let meta = std::fs::metadata(&real).map_err(|e| {
            cx.err(
                i,
                "bind",
                format!("{}: {}", real.display(), crate::policy::io_error_text(&e)),
            )
        })?;
        let is_dir = meta.is_dir();
        let mut attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV;
        if b.readonly {
            attrs |= sys::MOUNT_ATTR_RDONLY;
        }
        let exec = b.exec || cx.exec_granted(i);
        if !exec {
            attrs |= sys::MOUNT_ATTR_NOEXEC;
        }
        let src = HostSource {
            c: path_cstr(&real),
            real,
            meta,
        };
        // Every writable host bind gets the set-id guard: what the
        // payload leaves there outlives the run, and a setuid file
        // of its host id (or of the idmapped owner) must not.
        self.setid_guard |= !b.readonly;
        let (idmap, how) = match self.idmap_owner(cx, i, b, &src)? {
            None => (-1, String::new()),
            Some(o) => self.idmap(cx, i, b, &src, attrs, o)?,
        };
        self.push(
            Op::Bind {
                src: Source::Host(src.c),
                dst: rel(b.dst),
                kind: if is_dir { Kind::Dir } else { Kind::File },
                attrs,
                optional: false,
                idmap,
            },
            format!(
                "bind {} -> {} ({}{}{how})",
                src.real.display(),
                b.dst,
                if b.readonly { "read-only" } else { "read-write" },
                if exec { "" } else { ", noexec" }
            ),
        );
        Ok(())
    }

    /// A `copy` entry: the host file's bytes, read now, become a file the
    /// child writes on the root tmpfs (read-only once the root is). Only a
    /// regular file everyone on the host may read: a copy must not give the
    /// payload what its host id could not open through a bind. The file is
    /// opened once, without following a symlink, and checked through that
    /// fd, so what is read is what was checked.
    fn copy(
        &mut self,
        cx: &Entries,
        i: usize,
        src: &str,
        dst: &str,
        optional: bool,
    ) -> Result<(), PolicyError> {
        let b = BindEntry {
            key: "copy",
            src,
            dst,
            readonly: true,
            optional,
            exec: false,
            no_symlinks: false,
            owner: None,
            best_effort: false,
        };
        let Some(real) = resolve_source(cx, i, &b)? else {
            return Ok(());
        };
        if let Some(why) = cx.deny.check(&real, &cx.policy.allow_sensitive) {
            return Err(cx.err(i, "copy", why));
        }
        let fail = |why: String| cx.err(i, "copy", format!("{}: {why}", real.display()));
        let fd = sys::openat2(
            libc::AT_FDCWD,
            &path_cstr(&real),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            0,
            sys::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|e| {
            fail(crate::policy::io_error_text(&std::io::Error::from_raw_os_error(
                e.0,
            )))
        })?;
        use std::os::fd::FromRawFd;
        // SAFETY: openat2 returned a new fd that nothing else owns.
        let file = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        let meta = file
            .metadata()
            .map_err(|e| fail(crate::policy::io_error_text(&e)))?;
        if !meta.is_file() {
            return Err(fail(
                "only a regular file can be copied; use a bind for a directory or a device".to_string(),
            ));
        }
        use std::os::unix::fs::MetadataExt;
        if meta.mode() & 0o004 == 0 {
            return Err(fail(format!(
                "not readable by everyone on the host (mode {:04o}): a copy would pass its permissions by; bind it instead",
                meta.mode() & 0o7777
            )));
        }
        let max = crate::policy::MAX_COPY_BYTES;
        let mut contents = Vec::with_capacity(meta.len().min(max) as usize);
        use std::io::Read;
        file.take(max + 1)
            .read_to_end(&mut contents)
            .map_err(|e| fail(crate::policy::io_error_text(&e)))?;
        if contents.len() as u64 > max {
            return Err(fail(format!(
                "larger than {} KiB, the most a copy takes; bind it instead",
                max >> 10
            )));
        }
        let n = contents.len();
        self.push(
            Op::File {
                dst: rel(dst),
                contents: contents.into_boxed_slice(),
            },
            format!("copy {} -> {dst} ({n} bytes, read-only)", real.display()),
        );
        Ok(())
    }

    /// The owner whose files the payload writes as its own in the bind
    /// (None: no idmap). An owner this host cannot have is an error, or,
    /// best effort, a note in [`MountPlan::unenforced`].
    fn idmap_owner(
        &mut self,
        cx: &Entries,
        i: usize,
        b: &BindEntry,
        src: &HostSource,
    ) -> Result<Option<(u32, u32)>, PolicyError> {
        // A root-owned source is not idmapped unless the policy
        // names "owner": "0:0": the payload would own every root
        // file in the tree, and a write through a shared mapping
        // keeps a setuid-root file's mode bits.
        use std::os::unix::fs::MetadataExt;
        let meta = &src.meta;
        let root_source = {
            !b.readonly
                && !cx.ids.rootless
                && matches!(b.owner, None | Some(BindOwner::Source))
                && (meta.uid() == 0 || meta.gid() == 0)
        };
        if root_source {
            if b.owner.is_some() {
                return Err(cx.err(
                    i,
                    "owner",
                    format!(
                        "{}: \"owner\": \"source\" would be host root ({}:{}), and through the idmapped bind the payload would own every root file there (a write through a shared mapping keeps a setuid-root file's mode); write \"owner\": \"0:0\" to accept that, or \"sandbox\"",
                        src.real.display(),
                        meta.uid(),
                        meta.gid()
                    ),
                ));
            }
            // Bound as before idmaps: the payload gets no access
            // it would not have had (documented in cordon-policy(5)).
            return Ok(None);
        }
        match bind_owner(b.owner, b.readonly, meta, cx.ids) {
            Ok(owned) => Ok(owned),
            Err(why) if b.best_effort => {
                self.unenforced
                    .push(format!("{}: {why}", bind_field(cx.policy, i)));
                Ok(None)
            }
            Err(why) => Err(cx.err(i, "owner", why)),
        }
    }

    /// The idmap of a bind to owner `o`: its user namespace (-1 when this
    /// host cannot make it and the owner is not required) and the words it
    /// adds to the bind's description.
    fn idmap(
        &mut self,
        cx: &Entries,
        i: usize,
        b: &BindEntry,
        src: &HostSource,
        attrs: u64,
        o: (u32, u32),
    ) -> Result<(c_int, String), PolicyError> {
        let map = crate::isolate::idmap::Map {
            owner: o,
            host: (cx.ids.host_uid, cx.ids.host_gid),
        };
        match self.idmap_ns(&src.c, attrs, map) {
            Ok(ns) => Ok((ns, format!(", idmapped: owner {}:{}", o.0, o.1))),
            Err(Unmade::Source(text)) => Err(cx.err(
                i,
                "bind",
                format!("{}: cannot make its idmapped mount: {text}", src.real.display()),
            )),
            Err(Unmade::Host(text)) => {
                let why = format!(
                    "{}: {text}, which makes the payload's files belong to {}:{}",
                    src.real.display(),
                    o.0,
                    o.1
                );
                // Only a named owner is a requirement: without one, the
                // bind is as it was before idmaps (no more access).
                if !b.best_effort && b.owner.is_some() {
                    return Err(cx.err(
                        i,
                        "owner",
                        format!(
                            "{why}; set \"owner\": \"sandbox\" to bind it without an idmap (the payload's files then belong to host uid {}), or \"compatibility\": \"best_effort\"",
                            cx.ids.host_uid
                        ),
                    ));
                }
                self.unenforced.push(format!(
                    "{}: {why}; bound without it, the payload's files belong to host uid {}",
                    bind_field(cx.policy, i),
                    cx.ids.host_uid
                ));
                Ok((-1, String::new()))
            }
        }
    }

    /// The user namespace of `map`, checked by making a probe idmapped
    /// mount of `src` with `attrs`.
    fn idmap_ns(&mut self, src: &CStr, attrs: u64, map: crate::isolate::idmap::Map) -> Result<c_int, Unmade> {
        let ns = self.userns.get(map).map_err(Unmade::Host)?;
        match crate::isolate::idmap::probe(src, attrs, ns) {
            Ok(()) => Ok(ns),
            Err(e) => {
                let text = std::io::Error::from_raw_os_error(e.0);
                if !crate::isolate::idmap::unsupported(e) {
                    // Something about this source, not the filesystem.
                    return Err(Unmade::Source(text.to_string()));
                }
                Err(Unmade::Host(format!(
                    "this filesystem (or kernel) cannot make the idmapped mount ({text})"
                )))
            }
        }
    }

    /// A workspace: its host directory bound read-only (idmapped to its
    /// owner when started by root, so the payload may change the owner's
    /// files in the overlay), a tmpfs of its size for the upper layer, and
    /// the overlay.
    fn workspace(&mut self, cx: &Entries, i: usize, w: &crate::policy::Workspace) -> Result<(), PolicyError> {
        use std::os::unix::fs::MetadataExt;
        let err = |field: &str, message: String| PolicyError {
            file: cx.file.to_string(),
            path: format!("workspaces[{i}].{field}"),
            position: None,
            message,
        };
        let real = sys::canonicalize(w.path.as_ref()).map_err(|e| {
            err(
                "path",
                format!(
                    "cannot resolve host path {}: {}",
                    w.path,
                    crate::policy::io_error_text(&e)
                ),
            )
        })?;
        if let Some(why) = cx.deny.check(&real, &cx.policy.allow_sensitive) {
            return Err(err("path", why));
        }
        let meta = std::fs::metadata(&real).map_err(|e| {
            err(
                "path",
                format!("{}: {}", real.display(), crate::policy::io_error_text(&e)),
            )
        })?;
        if !meta.is_dir() {
            return Err(err("path", format!("{}: not a directory", real.display())));
        }
        let noexec = if w.exec { 0 } else { sys::MOUNT_ATTR_NOEXEC };
        let attrs = sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | noexec;
        let c = path_cstr(&real);
        // Started by root, the lower layer is idmapped to its owner (as a
        // writable bind's "owner": "source"), except for a root-owned
        // directory (the payload must not own root's files) and one that
        // already belongs to the sandbox's host ids (identity.host_uid).
        let owner = (meta.uid(), meta.gid());
        let mut how = String::new();
        let mut idmap = -1;
        let own_ids = owner == (cx.ids.host_uid, cx.ids.host_gid);
        if !cx.ids.rootless && owner.0 != 0 && owner.1 != 0 && !own_ids {
            let map = crate::isolate::idmap::Map {
                owner,
                host: (cx.ids.host_uid, cx.ids.host_gid),
            };
            match self.idmap_ns(&c, attrs, map) {
                Ok(ns) => {
                    idmap = ns;
                    how = format!(", idmapped: owner {}:{}", owner.0, owner.1);
                }
                Err(Unmade::Source(t) | Unmade::Host(t)) => {
                    return Err(err(
                        "path",
                        format!("{}: cannot make its idmapped lower layer: {t}", real.display()),
                    ))
                }
            }
        }
        let stage = format!(".cordon-workspace-{i}");
        self.push(
            Op::Bind {
                src: Source::Host(c),
                dst: cstr(&format!("{stage}/lower")),
                kind: Kind::Dir,
                attrs,
                optional: false,
                idmap,
            },
            format!("workspace {} (lower layer{how})", real.display()),
        );
        let inodes = w.inode_limit();
        let ms_noexec = if w.exec { 0 } else { libc::MS_NOEXEC };
        self.push(
            Op::Fs {
                fstype: c"tmpfs",
                dst: cstr(&format!("{stage}/rw")),
                data: cstr(&format!("size={},nr_inodes={inodes},mode=755", w.size.bytes())),
                flags: libc::MS_NOSUID | libc::MS_NODEV | ms_noexec,
                ours: true,
            },
            format!(
                "workspace {} (tmpfs of {}, {inodes} inodes)",
                real.display(),
                w.size
            ),
        );
        self.push(
            Op::Overlay {
                dst: rel(w.dst()),
                stage: cstr(&stage),
                flags: libc::MS_NOSUID | libc::MS_NODEV | ms_noexec,
                slot: i,
            },
            format!(
                "workspace {} -> {} (overlay; needs kernel 5.11 or later)",
                real.display(),
                w.dst()
            ),
        );
        self.workspaces.push(WorkspaceSpec {
            host: real,
            dst: w.dst().to_string(),
            apply: w.apply,
            export: w.export.as_ref().map(PathBuf::from),
            field: format!("workspaces[{i}]"),
        });
        Ok(())
    }

    fn push(&mut self, op: Op, what: String) {
        self.ops.push(op);
        self.describe.push(what);
    }

    fn tmpfs(&mut self, dst: &str, size: Size, inodes: u64, mode: u32, exec: bool) {
        self.push(
            Op::Fs {
                fstype: c"tmpfs",
                dst: rel(dst),
                data: cstr(&format!("size={},nr_inodes={inodes},mode={mode:o}", size.bytes())),
                flags: libc::MS_NOSUID | libc::MS_NODEV | if exec { 0 } else { libc::MS_NOEXEC },
                ours: true,
            },
            format!(
                "tmpfs {dst} (size {size}, {inodes} inodes{})",
                if exec { "" } else { ", noexec" }
            ),
        );
    }

    fn proc(&mut self, dst: &str) {
        self.push(
            Op::Fs {
                fstype: c"proc",
                dst: rel(dst),
                data: CString::default(),
                flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                ours: false,
            },
            format!("proc {dst}"),
        );
        for part in PROC_READONLY {
            let p = format!("{dst}/{part}");
            self.push(
                Op::Bind {
                    src: Source::Sandbox(rel(&p)),
                    dst: rel(&p),
                    kind: if part == "sysrq-trigger" {
                        Kind::File
                    } else {
                        Kind::Dir
                    },
                    attrs: sys::MOUNT_ATTR_RDONLY
                        | sys::MOUNT_ATTR_NOSUID
                        | sys::MOUNT_ATTR_NODEV
                        | sys::MOUNT_ATTR_NOEXEC,
                    optional: true,
                    idmap: -1,
                },
                format!("read-only {p}"),
            );
        }
    }

    fn dev(&mut self, dst: &str, ptys: u32) {
        self.push(
            Op::Fs {
                fstype: c"tmpfs",
                dst: rel(dst),
                data: cstr(&format!(
                    "size={DEV_TMPFS_SIZE},nr_inodes={DEV_TMPFS_INODES},mode=755"
                )),
                flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                ours: true,
            },
            format!("dev {dst} (tmpfs)"),
        );
        for d in DEVICES {
            let p = format!("{dst}/{d}");
            self.push(
                Op::Bind {
                    src: Source::Host(cstr(&format!("/dev/{d}"))),
                    dst: rel(&p),
                    kind: Kind::File,
                    attrs: sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC,
                    optional: false,
                    idmap: -1,
                },
                format!("device {p}"),
            );
        }
        let pts = format!("{dst}/pts");
        self.push(
            Op::Fs {
                fstype: c"devpts",
                dst: rel(&pts),
                // max=: one sandbox cannot take every pty of the host.
                data: cstr(&format!("newinstance,ptmxmode=0666,mode=0620,max={ptys}")),
                flags: libc::MS_NOSUID | libc::MS_NOEXEC,
                ours: false,
            },
            format!("devpts {pts} (at most {ptys} ptys)"),
        );
        for (name, target) in [
            ("ptmx", "pts/ptmx"),
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            let p = format!("{dst}/{name}");
            self.push(
                Op::Symlink {
                    dst: rel(&p),
                    target: cstr(target),
                },
                format!("symlink {p} -> {target}"),
            );
        }
        self.tmpfs(
            &format!("{dst}/shm"),
            SHM_SIZE,
            default_tmpfs_inodes(SHM_SIZE),
            0o1777,
            false,
        );
        // Populated: the payload owns this tmpfs, so freeze it.
        self.push(
            Op::Attrs {
                dst: rel(dst),
                attrs: sys::MOUNT_ATTR_RDONLY,
            },
            format!("read-only {dst}"),
        );
    }
}

/// What the preparation of every entry needs from [`MountPlan::prepare`].
struct Entries<'a> {
    policy: &'a Policy,
    /// Names the policy in errors.
    file: &'a str,
    ids: &'a Ids,
    deny: sensitive::DenyList,
    /// Per entry: whether a Landlock rule grants exec on it ([`exec_grants`]).
    exec_granted: Vec<bool>,
    /// The directories bind patterns read, each read once per prepare
    /// (the default policy's `/etc/java-*` and `/etc/python3*` share /etc):
    /// the directory and its entries' names, each followed by a NUL.
    listings: std::cell::RefCell<Vec<(String, Vec<u8>)>>,
}

impl Entries<'_> {
    /// An error in `field` of entry `i`: named by the command-line flag
    /// that made the entry, or by its place in the policy file.
    fn err(&self, i: usize, field: &str, message: String) -> PolicyError {
        match self.policy.mount_origins.get(i) {
            Some(Some(flag)) => PolicyError {
                file: crate::policy::overrides::CLI_SOURCE.to_string(),
                path: flag.clone(),
                position: None,
                message,
            },
            _ => PolicyError {
                file: self.file.to_string(),
                path: format!("mounts[{i}].{field}"),
                position: None,
                message,
            },
        }
    }

    /// The names in `dir` that `pattern` matches, sorted (see
    /// [`glob_match`]; a leading dot only by a pattern that starts with
    /// one). Reads `dir` at most once per prepare, at most
    /// [`MAX_PATTERN_SCAN`] entries.
    fn pattern_matches(&self, dir: &str, pattern: &str) -> std::io::Result<Vec<String>> {
        let mut listings = self.listings.borrow_mut();
        let names = match listings.iter().position(|(d, _)| d == dir) {
            Some(i) => &listings[i].1,
            None => {
                let path = CString::new(dir).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
                let mut names = Vec::with_capacity(4096);
                sys::list_dir(&path, MAX_PATTERN_SCAN, |n| {
                    names.extend_from_slice(n);
                    names.push(0);
                })?;
                listings.push((dir.to_string(), names));
                &listings[listings.len() - 1].1
            }
        };
        // Names that are not UTF-8 are never matched.
        let mut out: Vec<String> = names
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .filter(|n| !n.starts_with(b".") || pattern.starts_with('.'))
            .filter(|n| glob_match(pattern.as_bytes(), n))
            .filter_map(|n| std::str::from_utf8(n).ok())
            .map(str::to_string)
            .collect();
        out.sort();
        Ok(out)
    }

    fn exec_granted(&self, i: usize) -> bool {
        self.exec_granted.get(i).copied().unwrap_or(false)
    }
}

/// Per entry of the policy's mounts: whether the payload may execute there.
/// A Landlock rule that lets the payload execute at or below a mount's
/// destination is a grant of exec for that mount: for the entry the path
/// lands on, the last one whose destination holds it (a `--ro-bind` at
/// /tmp/x adds an execute rule for /tmp/x, which lands on that bind, not on
/// /tmp).
fn exec_grants(policy: &Policy) -> Vec<bool> {
    let mut exec_granted = vec![false; policy.mounts.len()];
    for p in policy.landlock.iter().flat_map(|ll| ll.execute.iter()) {
        if let Some(i) = policy.mounts.iter().rposition(|m| under(p, m.dst())) {
            exec_granted[i] = true;
        }
    }
    exec_granted
}

/// The fields of a [`Mount::Bind`] entry.
struct BindEntry<'a> {
    /// The policy key of the entry: "bind" or "copy" (errors name it).
    key: &'static str,
    src: &'a str,
    dst: &'a str,
    readonly: bool,
    optional: bool,
    exec: bool,
    no_symlinks: bool,
    owner: Option<BindOwner>,
    /// "compatibility": "best_effort".
    best_effort: bool,
}

/// A bind's host source, resolved.
struct HostSource {
    /// The canonical path.
    real: PathBuf,
    /// The same, as a C string.
    c: CString,
    meta: std::fs::Metadata,
}

/// The canonical host path of bind `i`'s source, or None for a missing
/// optional one. With "no_symlinks", a symlink in any component is an
/// error.
fn resolve_source(cx: &Entries, i: usize, b: &BindEntry) -> Result<Option<PathBuf>, PolicyError> {
    let src = b.src;
    if b.no_symlinks {
        match no_symlink_in(src) {
            Ok(()) => {}
            Err(e) if b.optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                let why = if e.raw_os_error() == Some(libc::ELOOP) {
                    "has a symlink in a component, and \"no_symlinks\" (--bind-nofollow) refuses to follow it"
                        .to_string()
                } else {
                    crate::policy::io_error_text(&e)
                };
                return Err(cx.err(i, "bind", format!("bind source {src} {why}")));
            }
        }
    }
    let real = match sys::canonicalize(src.as_ref()) {
        Ok(p) => p,
        Err(e) if b.optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(cx.err(
                i,
                b.key,
                format!(
                    "cannot resolve host path {src}: {}",
                    crate::policy::io_error_text(&e)
                ),
            ))
        }
    };
    // A symlink swapped in between the check above and the
    // resolution: the canonical path is not the one given.
    if b.no_symlinks && real != lexical(src) {
        return Err(cx.err(
            i,
            "bind",
            format!("bind source {src} resolves to {}: it has a symlink in a component, and \"no_symlinks\" (--bind-nofollow) refuses to follow it", real.display()),
        ));
    }
    Ok(Some(real))
}

/// Whether `p` is `dir` or below it (sandbox paths, normalised).
fn under(p: &str, dir: &str) -> bool {
    dir == "/" || p == dir || p.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// An absolute path with `.`, `..` and repeated `/` resolved by name, as
/// the kernel resolves it when no component is a symlink.
fn lexical(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Ok when the host path `src` resolves without following any symlink
/// (ELOOP when one of its components is a symlink).
fn no_symlink_in(src: &str) -> std::io::Result<()> {
    let c = CString::new(src).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let fd = sys::openat2(
        libc::AT_FDCWD,
        &c,
        libc::O_PATH | libc::O_CLOEXEC,
        0,
        sys::RESOLVE_NO_SYMLINKS,
    )
    .map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
    // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fd) };
    Ok(())
}

/// Why a bind's idmapped mount could not be made.
enum Unmade {
    /// This host (filesystem, kernel, privileges) cannot make one.
    Host(String),
    /// The source itself failed (e.g. EACCES): an error like any other.
    Source(String),
}

/// Where a bind's owner is set: the policy field, or the flag that made it.
fn bind_field(policy: &Policy, i: usize) -> String {
    match policy.mount_origins.get(i) {
        Some(Some(flag)) => flag.clone(),
        _ => format!("mounts[{i}].owner"),
    }
}

/// The on-disk owner whose files the payload writes as its own in this
/// bind, or None for no idmap. Rootless, nothing is idmapped: the payload
/// already is the caller, and an owner other than the caller cannot be had.
fn bind_owner(
    owner: Option<BindOwner>,
    readonly: bool,
    meta: &std::fs::Metadata,
    ids: &Ids,
) -> Result<Option<(u32, u32)>, String> {
    use std::os::unix::fs::MetadataExt;
    let wanted = match owner {
        None if readonly => return Ok(None),
        None | Some(BindOwner::Source) => (meta.uid(), meta.gid()),
        Some(BindOwner::Ids(u, g)) => (u, g),
        Some(BindOwner::Sandbox) => return Ok(None),
    };
    if !ids.rootless {
        return Ok(Some(wanted));
    }
    if owner.is_some() && wanted != (ids.host_uid, ids.host_gid) {
        return Err(format!(
            "cordon runs without privileges as {}:{}, and the payload's files can belong only to that id, not {}:{}; run cordon as root, or drop \"owner\"",
            ids.host_uid, ids.host_gid, wanted.0, wanted.1
        ));
    }
    Ok(None)
}

fn path_cstr(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// Canonical form of a host path for messages and tests.
pub fn canonical(p: &str) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(p)
}

// ---- child side: no allocation below this line -----------------------------

/// Device numbers of the filesystems cordon mounted itself (where mount
/// points may be created). A fixed array: the child must not allocate.
struct Ours {
    devs: [u64; 64],
    len: usize,
}

impl Ours {
    fn add(&mut self, dev: u64) {
        if self.len < self.devs.len() {
            self.devs[self.len] = dev;
            self.len += 1;
        }
    }
    fn contains(&self, dev: u64) -> bool {
        self.devs[..self.len].contains(&dev)
    }
}

/// A NUL-terminated path buffer on the stack.
struct PathBuf4k {
    buf: [u8; 4096],
}

impl PathBuf4k {
    /// The prefix of `path` up to byte `end`, NUL-terminated.
    fn prefix(&mut self, path: &[u8], end: usize) -> &CStr {
        let n = end.min(self.buf.len() - 1);
        self.buf[..n].copy_from_slice(&path[..n]);
        self.buf[n] = 0;
        // The policy layer rejected NUL bytes, so the first NUL is ours.
        CStr::from_bytes_until_nul(&self.buf[..=n]).unwrap_or(c"")
    }
}

fn open_in_root(root: c_int, path: &CStr, flags: c_int) -> SysResult<c_int> {
    sys::openat2(
        root,
        path,
        flags | libc::O_CLOEXEC,
        0,
        sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
    )
}

/// A directory fd from [`ensure_dir`] or [`mount_point`]: the new root's
/// own fd (the caller's, never closed here, and on cordon's root tmpfs by
/// construction) or one opened for the caller.
struct Dir {
    fd: c_int,
    owned: bool,
}

impl Dir {
    /// Whether the directory is on one of cordon's own filesystems, where
    /// mount points and files may be made (the root tmpfs needs no fstat).
    fn is_ours(&self, ours: &Ours) -> SysResult<bool> {
        if !self.owned {
            return Ok(true);
        }
        sys::fstat_dev_mode(self.fd).map(|(dev, _)| ours.contains(dev))
    }

    /// The fd, for the caller to close, when it was opened for the caller
    /// (None for the root, which is not the caller's).
    fn into_owned_fd(self) -> Option<c_int> {
        let d = std::mem::ManuallyDrop::new(self);
        d.owned.then_some(d.fd)
    }
}

impl Drop for Dir {
    /// Closes the fd if it was opened for the holder: on every path out,
    /// early returns included.
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: an owned `Dir` holds an fd opened for its holder, closed once, here.
            unsafe { sys::close(self.fd) };
        }
    }
}

/// Open the directory `path` (relative to `root`, resolved inside it),
/// creating missing components on cordon's own tmpfs. Finds the longest
/// existing prefix first, trying the first `known` bytes of `path` (all
/// of it, or less when the caller just saw it missing; usually the
/// parent, one or two lookups) and creates forward from there. The root
/// itself (an empty prefix) is used as it is, not opened again.
fn ensure_dir(root: c_int, path: &[u8], known: usize, ours: &Ours) -> Result<Dir, (sys::Errno, u32)> {
    let dir = libc::O_PATH | libc::O_DIRECTORY;
    let mut buf = PathBuf4k { buf: [0; 4096] };
    let mut end = known.min(path.len());
    let mut fd = loop {
        if end == 0 {
            break Dir {
                fd: root,
                owned: false,
            };
        }
        match open_in_root(root, buf.prefix(path, end), dir) {
            Ok(fd) => break Dir { fd, owned: true },
            Err(sys::Errno(libc::ENOENT)) => end = path[..end].iter().rposition(|&b| b == b'/').unwrap_or(0),
            Err(e) => return Err((e, 5)),
        }
    };
    if end < path.len() {
        match fd.is_ours(ours) {
            Ok(true) => {}
            // Refuse to create anything in a host directory.
            Ok(false) => return Err((sys::Errno(libc::ENOENT), 2)),
            Err(e) => return Err((e, 1)),
        }
    }
    while end < path.len() {
        let start = if end == 0 { 0 } else { end + 1 };
        let next = path[start..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(path.len(), |p| start + p);
        let name = buf.prefix(&path[start..], next - start);
        // The directory is new and on our tmpfs: open it relative to its
        // parent, refusing symlinks.
        let r = sys::mkdirat(fd.fd, name, 0o755)
            .and_then(|_| sys::openat2(fd.fd, name, dir | libc::O_CLOEXEC, 0, sys::RESOLVE_NO_SYMLINKS));
        // The parent goes (dropped) when the new directory replaces it, or
        // on the error return.
        fd = Dir {
            fd: r.map_err(|e| (e, 3))?,
            owned: true,
        };
        end = next;
    }
    Ok(fd)
}

/// Open (creating where allowed) the mount point `dst` under `root`.
/// With `kind` None (a symlink or file is to be made), returns the parent
/// directory, which may be the root itself.
fn mount_point(root: c_int, dst: &CStr, kind: Option<Kind>, ours: &Ours) -> Result<Dir, (sys::Errno, u32)> {
    let bytes = dst.to_bytes();
    let split = bytes.iter().rposition(|&b| b == b'/');
    let parent_path = &bytes[..split.unwrap_or(0)];
    let Some(kind) = kind else {
        return ensure_dir(root, parent_path, parent_path.len(), ours);
    };
    let flags = libc::O_PATH | if kind == Kind::Dir { libc::O_DIRECTORY } else { 0 };
    match open_in_root(root, dst, flags) {
        Ok(fd) => return Ok(Dir { fd, owned: true }),
        Err(sys::Errno(libc::ENOENT)) => {}
        Err(e) => return Err((e, 5)),
    }
    if kind == Kind::Dir {
        // `dst` itself was just missing: start the search at its parent.
        return ensure_dir(root, bytes, parent_path.len(), ours);
    }
    let parent = ensure_dir(root, parent_path, parent_path.len(), ours)?;
    let r = match parent.is_ours(ours) {
        Ok(true) => {
            let mut buf = PathBuf4k { buf: [0; 4096] };
            let leaf = leaf_name(dst, &mut buf);
            sys::openat(
                parent.fd,
                leaf,
                libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
            .map(|fd| Dir { fd, owned: true })
            .map_err(|e| (e, 3))
        }
        Ok(false) => Err((sys::Errno(libc::ENOENT), 2)),
        Err(e) => Err((e, 1)),
    };
    drop(parent);
    r
}

/// Code 2 from [`mount_point`] means the missing mount point would have to
/// be created in a host directory.
fn point_error(e: sys::Errno, code: u32, idx: u32) -> ChildError {
    if code == 2 {
        ChildError::new(Step::MountPointOnHost, e, idx)
    } else {
        ChildError::new(Step::MountPoint, e, idx)
    }
}

fn leaf_name<'a>(dst: &CStr, buf: &'a mut PathBuf4k) -> &'a CStr {
    let bytes = dst.to_bytes();
    let start = bytes.iter().rposition(|&b| b == b'/').map_or(0, |p| p + 1);
    buf.prefix(&bytes[start..], bytes.len() - start)
}

/// Most primitive ops a plan may hold (the child keeps one fd slot each).
pub const MAX_OPS: usize = 256;

/// Mount the empty root tmpfs on `staging` and return an fd of it.
fn make_root(plan: &MountPlan, staging: &CStr, ours: &mut Ours) -> Result<c_int, ChildError> {
    sys::mount(
        Some(c"tmpfs"),
        staging,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some(&plan.root_data),
    )
    .map_err(|e| ChildError::new(Step::RootTmpfs, e, 0))?;
    let root = sys::openat2(
        libc::AT_FDCWD,
        staging,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        0,
    )
    .map_err(|e| ChildError::new(Step::RootTmpfs, e, 2))?;
    let (dev, _) = sys::fstat_dev_mode(root).map_err(|e| ChildError::new(Step::RootTmpfs, e, 3))?;
    ours.add(dev);
    Ok(root)
}

/// Clone the tree at `src_fd` into a detached mount with `attrs` set.
fn clone_fd(src_fd: c_int, attrs: u64, idx: u32) -> Result<c_int, ChildError> {
    let tree = sys::open_tree(
        src_fd,
        sys::EMPTY,
        sys::OPEN_TREE_CLONE
            | sys::OPEN_TREE_CLOEXEC
            | libc::AT_EMPTY_PATH as u32
            | libc::AT_RECURSIVE as u32,
    )
    .map_err(|e| ChildError::new(Step::BindSource, e, idx))?;
    if let Err(e) = sys::mount_setattr(
        tree,
        sys::EMPTY,
        (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as u32,
        attrs,
    ) {
        // SAFETY: `tree` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
        unsafe { sys::close(tree) };
        return Err(ChildError::new(Step::BindAttrs, e, idx));
    }
    Ok(tree)
}

/// Clone a host bind source (canonical path, opened refusing any symlink
/// that appeared since the parent resolved it). -1 for a missing optional.
fn clone_host(path: &CStr, attrs: u64, optional: bool, idx: u32) -> Result<c_int, ChildError> {
    let src_fd = match sys::openat2(
        libc::AT_FDCWD,
        path,
        libc::O_PATH | libc::O_CLOEXEC,
        0,
        sys::RESOLVE_NO_SYMLINKS,
    ) {
        Ok(fd) => fd,
        Err(sys::Errno(libc::ENOENT)) if optional => return Ok(-1),
        Err(e) => return Err(ChildError::new(Step::BindSource, e, idx)),
    };
    let r = clone_fd(src_fd, attrs, idx);
    // SAFETY: `src_fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(src_fd) };
    r
}

/// Attach a detached mount at `dst` under `root`.
fn attach(
    root: c_int,
    mnt: c_int,
    dst: &CStr,
    kind: Kind,
    ours: &Ours,
    step: Step,
    idx: u32,
) -> Result<(), ChildError> {
    let target = mount_point(root, dst, Some(kind), ours).map_err(|(e, c)| point_error(e, c, idx))?;
    let r = sys::move_mount(
        mnt,
        sys::EMPTY,
        target.fd,
        sys::EMPTY,
        sys::MOVE_MOUNT_F_EMPTY_PATH | sys::MOVE_MOUNT_T_EMPTY_PATH,
    );
    drop(target);
    r.map_err(|e| ChildError::new(step, e, idx))
}

/// Where an op is applied: the new root, the filesystems cordon mounted in
/// it, and the op's index (for errors).
struct At<'a> {
    root: c_int,
    ours: &'a mut Ours,
    idx: u32,
}

/// Apply op `i`. `tree`: its detached tree (a host bind's; -1 otherwise
/// or when an optional source is missing), owned and closed here.
fn apply_op(
    root: c_int,
    i: usize,
    op: &Op,
    tree: c_int,
    ours: &mut Ours,
    uppers: &mut [c_int; MAX_WORKSPACES],
) -> Result<(), ChildError> {
    let mut at = At {
        root,
        ours,
        idx: i as u32,
    };
    match op {
        Op::Bind {
            src,
            dst,
            kind,
            attrs,
            optional,
            ..
        } => match src {
            Source::Host(_) if tree < 0 => Ok(()), // optional and missing
            Source::Host(_) => bind_tree(&at, tree, dst, *kind),
            Source::Sandbox(p) => bind_sandbox(&at, p, dst, *kind, *attrs, *optional),
        },
        Op::Fs {
            fstype,
            dst,
            data,
            flags,
            ours: is_ours,
        } => mount_fs(&mut at, fstype, dst, data, *flags, *is_ours),
        Op::Attrs { dst, attrs } => set_attrs(&at, dst, *attrs),
        Op::Symlink { dst, target } => symlink(&at, dst, target),
        Op::Overlay {
            dst,
            stage,
            flags,
            slot,
        } => {
            let upper = overlay(&at, dst, stage, *flags)?;
            match uppers.get_mut(*slot) {
                Some(u) => {
                    *u = upper;
                    Ok(())
                }
                None => {
                    // SAFETY: `upper` was just opened by `overlay` and is used no more.
                    unsafe { sys::close(upper) };
                    Err(ChildError::new(Step::Workspace, sys::Errno(libc::E2BIG), at.idx))
                }
            }
        }
        Op::File { dst, contents } => file(&at, dst, contents),
    }
}

/// Most workspaces (slots for their upper directories' fds).
pub const MAX_WORKSPACES: usize = crate::policy::workspace::MAX_WORKSPACES;

/// Write `parts` one after the other into `buf`, NUL-terminated; `None`
/// when they do not fit.
fn join_into<'a>(buf: &'a mut [u8], parts: &[&[u8]]) -> Option<&'a CStr> {
    let mut n = 0;
    for p in parts {
        buf.get_mut(n..n + p.len())?.copy_from_slice(p);
        n += p.len();
    }
    *buf.get_mut(n)? = 0;
    CStr::from_bytes_with_nul(&buf[..=n]).ok()
}

/// The fd's `/proc/self/fd/N` path without its NUL.
fn fd_bytes(fd: c_int, buf: &mut [u8; 32]) -> &[u8] {
    sys::fd_path(fd, buf).to_bytes()
}

/// Remove the empty directory `name` under `dir` (best effort: a leftover
/// empty directory on the read-only root is harmless).
fn rmdir_at(dir: c_int, name: &CStr) {
    // SAFETY: unlinkat with a valid NUL-terminated name and a dir fd owned
    // by the caller; no memory is passed back.
    unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) };
}

/// Close each of `fds` that is open.
fn close_each(fds: &[c_int]) {
    for &fd in fds {
        if fd >= 0 {
            // SAFETY: each fd was opened by `overlay` and is used no more.
            unsafe { sys::close(fd) };
        }
    }
}

/// Mount a workspace's overlay at `dst` from the staging mounts under
/// `stage` (see [`Op::Overlay`]), detach them, and return an fd of the
/// upper directory (O_RDONLY, close-on-exec). Allocation-free.
fn overlay(at: &At, dst: &CStr, stage: &CStr, flags: libc::c_ulong) -> Result<c_int, ChildError> {
    let idx = at.idx;
    let fail = |code: u32| move |e: sys::Errno| ChildError::new(Step::Workspace, e, idx | code << 16);
    let dir = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let beneath = sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_BENEATH;
    let stage_fd = open_in_root(at.root, stage, libc::O_PATH | libc::O_DIRECTORY).map_err(fail(0))?;
    // [lower, rw, upper, work, target]
    let mut fds: [c_int; 5] = [-1; 5];
    let r = (|| {
        fds[0] = sys::openat2(stage_fd, c"lower", dir, 0, beneath).map_err(fail(1))?;
        fds[1] = sys::openat2(stage_fd, c"rw", dir, 0, beneath).map_err(fail(1))?;
        sys::mkdirat(fds[1], c"upper", 0o755).map_err(fail(2))?;
        sys::mkdirat(fds[1], c"work", 0o700).map_err(fail(2))?;
        fds[2] = sys::openat2(
            fds[1],
            c"upper",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            beneath,
        )
        .map_err(fail(2))?;
        fds[3] = sys::openat2(fds[1], c"work", dir, 0, beneath).map_err(fail(2))?;
        let (mut b0, mut b1, mut b2) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        let mut data = [0u8; 160];
        let data = join_into(
            &mut data,
            &[
                b"lowerdir=",
                fd_bytes(fds[0], &mut b0),
                b",upperdir=",
                fd_bytes(fds[2], &mut b1),
                b",workdir=",
                fd_bytes(fds[3], &mut b2),
                b",userxattr",
            ],
        )
        .ok_or_else(|| fail(3)(sys::Errno(libc::ENAMETOOLONG)))?;
        let target =
            mount_point(at.root, dst, Some(Kind::Dir), at.ours).map_err(|(e, c)| point_error(e, c, idx))?;
        // Closed below with the others: an fd of its own even for the root.
        fds[4] = match target.into_owned_fd() {
            Some(fd) => fd,
            None => sys::openat2(at.root, c".", dir, 0, 0).map_err(|e| point_error(e, 0, idx))?,
        };
        let mut tb = [0u8; 32];
        sys::mount(
            Some(c"overlay"),
            sys::fd_path(fds[4], &mut tb),
            Some(c"overlay"),
            flags,
            Some(data),
        )
        .map_err(fail(3))?;
        // The overlay holds its own references to its layers: the staging
        // mounts go, so that nothing but the overlay reaches the upper dir.
        let mut lb = [0u8; 32];
        sys::umount2(sys::fd_path(fds[0], &mut lb), libc::MNT_DETACH).map_err(fail(4))?;
        sys::umount2(sys::fd_path(fds[1], &mut lb), libc::MNT_DETACH).map_err(fail(4))?;
        Ok(())
    })();
    let upper = fds[2];
    fds[2] = -1;
    close_each(&fds);
    if r.is_ok() {
        rmdir_at(stage_fd, c"lower");
        rmdir_at(stage_fd, c"rw");
    }
    // SAFETY: `stage_fd` was opened above and is used no more.
    unsafe { sys::close(stage_fd) };
    if r.is_ok() {
        rmdir_at(at.root, stage);
    }
    match r {
        Ok(()) => Ok(upper),
        Err(e) => {
            close_each(&[upper]);
            Err(e)
        }
    }
}

/// Create `name` under `dir` (no symlink followed, nothing replaced) with
/// `contents`.
fn write_new(dir: c_int, name: &CStr, contents: &[u8]) -> SysResult<()> {
    let fd = sys::openat(
        dir,
        name,
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0o644,
    )?;
    let r = sys::write_all(fd, contents);
    // SAFETY: `fd` was opened above and is not used after this close.
    unsafe { sys::close(fd) };
    r
}

/// Make the file `dst` with `contents`: directly when its directory is on
/// one of cordon's own filesystems and nothing is there yet; otherwise a
/// file made on the root tmpfs is bound over what is there (resolved in
/// the new root; a host symlink pointing outside it fails) and unlinked
/// from the root at once.
fn file(at: &At, dst: &CStr, contents: &[u8]) -> Result<(), ChildError> {
    let idx = at.idx;
    let err = |e| ChildError::new(Step::ResolvConf, e, idx);
    let parent = mount_point(at.root, dst, None, at.ours).map_err(|(e, c)| point_error(e, c, idx))?;
    let direct = match parent.is_ours(at.ours) {
        Ok(true) => {
            let mut b = PathBuf4k { buf: [0; 4096] };
            match write_new(parent.fd, leaf_name(dst, &mut b), contents) {
                Ok(()) => Ok(true),
                Err(sys::Errno(libc::EEXIST)) => Ok(false),
                Err(e) => Err(err(e)),
            }
        }
        Ok(false) => Ok(false),
        Err(e) => Err(err(e)),
    };
    drop(parent);
    if direct? {
        return Ok(());
    }
    write_new(at.root, FILE_STAGING, contents).map_err(err)?;
    let r = sys::open_tree(
        at.root,
        FILE_STAGING,
        sys::OPEN_TREE_CLONE | sys::OPEN_TREE_CLOEXEC,
    )
    .map_err(err)
    .and_then(|tree| {
        // Every failure here is this step's: a dangling host symlink at
        // `dst` is no mount point to create (the parent is a host bind).
        let r = mount_point(at.root, dst, Some(Kind::File), at.ours)
            .map_err(|(e, _)| err(e))
            .and_then(|target| {
                let r = sys::move_mount(
                    tree,
                    sys::EMPTY,
                    target.fd,
                    sys::EMPTY,
                    sys::MOVE_MOUNT_F_EMPTY_PATH | sys::MOVE_MOUNT_T_EMPTY_PATH,
                );
                drop(target);
                r.map_err(err)
            });
        // SAFETY: `tree` was opened above and is not used after this close.
        unsafe { sys::close(tree) };
        r
    });
    // The bind holds the file; its name on the root goes either way.
    let _ = sys::unlinkat(at.root, FILE_STAGING, 0);
    r
}

/// Attach a host bind's detached `tree` at `dst`, and close it.
fn bind_tree(at: &At, tree: c_int, dst: &CStr, kind: Kind) -> Result<(), ChildError> {
    let r = attach(at.root, tree, dst, kind, at.ours, Step::Bind, at.idx);
    // SAFETY: `tree` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(tree) };
    r
}

/// Bind the path `p` inside the new root at `dst` with `attrs` (nothing
/// when `optional` and missing).
fn bind_sandbox(
    at: &At,
    p: &CStr,
    dst: &CStr,
    kind: Kind,
    attrs: u64,
    optional: bool,
) -> Result<(), ChildError> {
    let idx = at.idx;
    let src_fd = match open_in_root(at.root, p, libc::O_PATH) {
        Ok(fd) => fd,
        Err(sys::Errno(libc::ENOENT)) if optional => return Ok(()),
        Err(e) => return Err(ChildError::new(Step::BindSource, e, idx)),
    };
    let r = clone_fd(src_fd, attrs, idx).and_then(|tree| {
        // Re-binding a path onto itself (proc/sys read-only):
        // the source fd is the mount point.
        let r = if p == dst {
            sys::move_mount(
                tree,
                sys::EMPTY,
                src_fd,
                sys::EMPTY,
                sys::MOVE_MOUNT_F_EMPTY_PATH | sys::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(|e| ChildError::new(Step::Bind, e, idx))
        } else {
            attach(at.root, tree, dst, kind, at.ours, Step::Bind, idx)
        };
        // SAFETY: `tree` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
        unsafe { sys::close(tree) };
        r
    });
    // SAFETY: `src_fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(src_fd) };
    r
}

/// Mount a new `fstype` instance at `dst`; with `is_ours`, record it as
/// one of cordon's own filesystems.
fn mount_fs(
    at: &mut At,
    fstype: &CStr,
    dst: &CStr,
    data: &CStr,
    flags: libc::c_ulong,
    is_ours: bool,
) -> Result<(), ChildError> {
    let idx = at.idx;
    let target =
        mount_point(at.root, dst, Some(Kind::Dir), at.ours).map_err(|(e, c)| point_error(e, c, idx))?;
    // One mount(2) onto the fd's magic link: the target was resolved
    // safely inside the root, and the link pins exactly that place.
    let mut buf = [0u8; 32];
    let path = sys::fd_path(target.fd, &mut buf);
    let r = sys::mount(Some(fstype), path, Some(fstype), flags, Some(data))
        .map_err(|e| ChildError::new(Step::FsMount, e, idx))
        .and_then(|_| {
            if is_ours {
                // Record the new filesystem: mount points may be made
                // on it. (The fd's magic link still names the
                // directory below the new mount: look the path up.)
                let fd = open_in_root(at.root, dst, libc::O_PATH | libc::O_DIRECTORY)
                    .map_err(|e| ChildError::new(Step::FsMount, e, idx))?;
                let st = sys::fstat_dev_mode(fd);
                // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
                unsafe { sys::close(fd) };
                at.ours
                    .add(st.map_err(|e| ChildError::new(Step::FsMount, e, idx))?.0);
            }
            Ok(())
        });
    drop(target);
    r
}

/// Set `attrs` on the existing mount at `dst` (not recursive).
fn set_attrs(at: &At, dst: &CStr, attrs: u64) -> Result<(), ChildError> {
    let fd = open_in_root(at.root, dst, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| ChildError::new(Step::MountPoint, e, at.idx))?;
    let r = sys::mount_setattr(fd, sys::EMPTY, libc::AT_EMPTY_PATH as u32, attrs);
    // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(fd) };
    r.map_err(|e| ChildError::new(Step::BindAttrs, e, at.idx))
}

/// Make the symlink `dst` -> `target`, only on one of cordon's own
/// filesystems.
fn symlink(at: &At, dst: &CStr, target: &CStr) -> Result<(), ChildError> {
    let idx = at.idx;
    let parent = mount_point(at.root, dst, None, at.ours).map_err(|(e, c)| point_error(e, c, idx))?;
    let r = match parent.is_ours(at.ours) {
        Ok(true) => {
            let mut b = PathBuf4k { buf: [0; 4096] };
            sys::symlinkat(target, parent.fd, leaf_name(dst, &mut b))
                .map_err(|e| ChildError::new(Step::Symlink, e, idx))
        }
        Ok(false) => Err(ChildError::new(
            Step::MountPointOnHost,
            sys::Errno(libc::EPERM),
            idx,
        )),
        Err(e) => Err(ChildError::new(Step::Symlink, e, idx)),
    };
    drop(parent);
    r
}

fn close_trees(trees: &[c_int]) {
    for &t in trees {
        if t >= 0 {
            // SAFETY: `t` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
            unsafe { sys::close(t) };
        }
    }
}

/// Make the idmapped trees of `plan` into `trees` (indexed like the ops;
/// -1 elsewhere). Runs as host root before the sandbox's user namespace
/// exists: in the parent before clone, or in [`crate::embed`]'s apply
/// before it drops root. Allocates nothing. The trees are close-on-exec;
/// [`apply`] takes them over.
pub fn idmapped_trees(plan: &MountPlan, trees: &mut [c_int; MAX_OPS]) -> Result<(), ChildError> {
    let n = plan.ops.len().min(MAX_OPS);
    for (i, op) in plan.ops[..n].iter().enumerate() {
        let Op::Bind {
            src: Source::Host(path),
            attrs,
            idmap,
            ..
        } = op
        else {
            continue;
        };
        if *idmap < 0 {
            continue;
        }
        let idx = i as u32;
        // The canonical path, refusing any symlink that appeared since the
        // plan resolved it.
        let made = sys::openat2(
            libc::AT_FDCWD,
            path,
            libc::O_PATH | libc::O_CLOEXEC,
            0,
            sys::RESOLVE_NO_SYMLINKS,
        )
        .and_then(|src_fd| {
            let tree = sys::open_tree(
                src_fd,
                sys::EMPTY,
                sys::OPEN_TREE_CLONE
                    | sys::OPEN_TREE_CLOEXEC
                    | libc::AT_EMPTY_PATH as u32
                    | libc::AT_RECURSIVE as u32,
            );
            // SAFETY: `src_fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
            unsafe { sys::close(src_fd) };
            let tree = tree?;
            match sys::mount_setattr_idmap(tree, *attrs, *idmap) {
                Ok(()) => Ok(tree),
                Err(e) => {
                    // SAFETY: `tree` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
                    unsafe { sys::close(tree) };
                    Err(e)
                }
            }
        });
        match made {
            Ok(t) => trees[i] = t,
            Err(e) => {
                close_trees(&trees[..i]);
                trees[..i].fill(-1);
                return Err(ChildError::new(Step::BindIdmap, e, idx));
            }
        }
    }
    Ok(())
}

/// Build the new root and pivot into it. `premade` holds the trees made
/// by [`idmapped_trees`] (empty when the plan has none); `apply` owns and
/// closes them. Child side: allocates nothing.
pub fn apply(plan: &MountPlan, staging: &CStr, premade: &[c_int]) -> Result<(), ChildError> {
    let mut uppers = [-1 as c_int; MAX_WORKSPACES];
    let r = apply_keeping(plan, staging, premade, &mut uppers);
    close_each(&uppers);
    r
}

/// [`apply`], keeping in `uppers` (by workspace slot) an fd of each
/// workspace's upper directory for the supervisor; they are the caller's
/// to close, also on error. Allocation-free.
pub fn apply_keeping(
    plan: &MountPlan,
    staging: &CStr,
    premade: &[c_int],
    uppers: &mut [c_int; MAX_WORKSPACES],
) -> Result<(), ChildError> {
    let n = plan.ops.len().min(MAX_OPS);
    let mut trees = [-1 as c_int; MAX_OPS];
    for (t, &p) in trees[..n].iter_mut().zip(premade) {
        *t = p;
    }
    if let Err(e) = sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None) {
        close_trees(&trees[..n]);
        return Err(ChildError::new(Step::MountPrivate, e, 0));
    }
    // Clone every other host tree first: staging the root may hide host paths.
    for (i, op) in plan.ops[..n].iter().enumerate() {
        if let Op::Bind {
            src: Source::Host(path),
            attrs,
            optional,
            idmap,
            ..
        } = op
        {
            if trees[i] >= 0 {
                continue;
            }
            if *idmap >= 0 {
                // Fail closed: never bind an idmapped source as it is.
                close_trees(&trees[..n]);
                return Err(ChildError::new(
                    Step::BindIdmap,
                    sys::Errno(libc::EBADF),
                    i as u32,
                ));
            }
            match clone_host(path, *attrs, *optional, i as u32) {
                Ok(t) => trees[i] = t,
                Err(e) => {
                    close_trees(&trees[..n]);
                    return Err(e);
                }
            }
        }
    }
    let mut ours = Ours {
        devs: [0; 64],
        len: 0,
    };
    let root = match make_root(plan, staging, &mut ours) {
        Ok(r) => r,
        Err(e) => {
            close_trees(&trees[..n]);
            return Err(e);
        }
    };
    for (i, op) in plan.ops[..n].iter().enumerate() {
        let tree = trees[i];
        trees[i] = -1; // apply_op takes ownership
        if let Err(e) = apply_op(root, i, op, tree, &mut ours, uppers) {
            close_trees(&trees[i + 1..n]);
            // SAFETY: `root` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
            unsafe { sys::close(root) };
            return Err(e);
        }
    }
    // pivot_root(".", ".") stacks the old root on the new one; detaching
    // "." then removes it, with no directory needed for the old root.
    let r = sys::fchdir(root)
        .and_then(|_| sys::pivot_root(c".", c"."))
        .map_err(|e| ChildError::new(Step::PivotRoot, e, 0))
        .and_then(|_| {
            sys::umount2(c".", libc::MNT_DETACH).map_err(|e| ChildError::new(Step::PivotRoot, e, 1))
        })
        .and_then(|_| sys::chdir(c"/").map_err(|e| ChildError::new(Step::PivotRoot, e, 2)))
        .and_then(|_| {
            sys::mount_setattr(libc::AT_FDCWD, c"/", 0, sys::MOUNT_ATTR_RDONLY)
                .map_err(|e| ChildError::new(Step::RootReadonly, e, 0))
        });
    // SAFETY: `root` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(root) };
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rootless ids: no idmap is made, so the unit tests need no root.
    fn rootless_ids() -> Ids {
        Ids {
            uid: 1000,
            gid: 1000,
            host_uid: 4321,
            host_gid: 4321,
            rootless: true,
        }
    }

    fn plan(json: &str) -> MountPlan {
        let p = Policy::from_json("t.json", json).expect("policy");
        MountPlan::prepare(&p, "t.json", &rootless_ids()).expect("plan")
    }

    fn fs_of<'a>(plan: &'a MountPlan, dst: &str) -> (&'a CStr, libc::c_ulong) {
        plan.ops
            .iter()
            .find_map(|op| match op {
                Op::Fs {
                    dst: d, data, flags, ..
                } if d.to_bytes() == dst.as_bytes() => Some((data.as_c_str(), *flags)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no fs at {dst}"))
    }

    fn bind_attrs(plan: &MountPlan, dst: &str) -> u64 {
        plan.ops
            .iter()
            .find_map(|op| match op {
                Op::Bind { dst: d, attrs, .. } if d.to_bytes() == dst.as_bytes() => Some(*attrs),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no bind at {dst}"))
    }

    #[test]
    fn writable_mounts_are_noexec_unless_granted() {
        let p = plan(
            r#"{"version":1,"mounts":[{"bind":"/usr"},{"bind":"/usr","to":"/w","readonly":false},
                {"bind":"/usr","to":"/x","readonly":false,"exec":true},
                {"tmpfs":"/tmp"},{"tmpfs":"/work"},{"tmpfs":"/e","exec":true},
                {"bind":"/usr","to":"/tmp/ro"},{"dev":"/dev"}],
                "landlock":{"execute":["/usr","/work/bin","/tmp/ro"]}}"#,
        );
        assert_eq!(bind_attrs(&p, "usr") & sys::MOUNT_ATTR_NOEXEC, 0);
        assert_ne!(bind_attrs(&p, "w") & sys::MOUNT_ATTR_NOEXEC, 0);
        assert_eq!(bind_attrs(&p, "x") & sys::MOUNT_ATTR_NOEXEC, 0);
        // /tmp/ro's rule lands on that bind, not on /tmp.
        assert_ne!(fs_of(&p, "tmp").1 & libc::MS_NOEXEC, 0);
        assert_eq!(fs_of(&p, "work").1 & libc::MS_NOEXEC, 0);
        assert_eq!(fs_of(&p, "e").1 & libc::MS_NOEXEC, 0);
        assert_ne!(fs_of(&p, "dev/shm").1 & libc::MS_NOEXEC, 0);
    }

    #[test]
    fn every_tmpfs_has_an_inode_limit_and_devpts_a_pty_limit() {
        let p = plan(
            r#"{"version":1,"mounts":[{"tmpfs":"/tmp"},{"tmpfs":"/s","inodes":500},{"dev":"/dev","ptys":7}]}"#,
        );
        let has = |data: &CStr, opt: &str| data.to_str().unwrap().split(',').any(|o| o == opt);
        assert!(has(&p.root_data, &format!("nr_inodes={ROOT_TMPFS_INODES}")));
        assert!(has(fs_of(&p, "tmp").0, "nr_inodes=16384"));
        assert!(has(fs_of(&p, "s").0, "nr_inodes=500"));
        assert!(has(fs_of(&p, "dev").0, &format!("nr_inodes={DEV_TMPFS_INODES}")));
        assert!(has(fs_of(&p, "dev/shm").0, "nr_inodes=16384"));
        assert!(has(fs_of(&p, "dev/pts").0, "max=7"));
    }

    /// Of several errors, the first in entry order is reported; within one
    /// entry, the deny list's refusal comes before what else is wrong.
    #[test]
    fn the_first_refusal_in_entry_order_is_reported() {
        let ids = rootless_ids();
        let err = |json: &str| {
            let p = Policy::from_json("t.json", json).expect("policy");
            MountPlan::prepare(&p, "t.json", &ids).expect_err(json)
        };
        let e = err(
            r#"{"version":1,"mounts":[{"bind":"/usr"},{"bind":"/etc/ssl/private","optional":true},{"tmpfs":"/tmp"}]}"#,
        );
        assert_eq!(e.path, "mounts[1].bind", "{e}");
        assert!(e.message.contains("/etc/ssl/private"), "{e}");
        let e = err(
            r#"{"version":1,"mounts":[{"copy":"/etc/shadow","to":"/etc/x","optional":true},{"bind":"/no/such/path"}]}"#,
        );
        assert_eq!(e.path, "mounts[0].copy", "{e}");
        assert!(e.message.contains("sensitive host path"), "{e}");
        // /etc/shadow is refused as sensitive before its mode (not
        // readable by everyone) would refuse the copy.
        let e = err(r#"{"version":1,"mounts":[{"copy":"/etc/shadow","to":"/etc/x"}]}"#);
        assert!(e.message.contains("sensitive host path"), "{e}");
        let e = err(
            r#"{"version":1,"mounts":[{"bind":"/no/such/path"},{"bind":"/etc/ssl/private","optional":true}]}"#,
        );
        assert_eq!(e.path, "mounts[0].bind", "{e}");
        assert!(e.message.contains("/no/such/path"), "{e}");
        let e = err(
            r#"{"version":1,"mounts":[{"bind":"/boot","optional":true},{"bind":"/etc/ssl/private","optional":true}]}"#,
        );
        assert_eq!(e.path, "mounts[0].bind", "{e}");
        // Workspaces come after every mount.
        let e = err(
            r#"{"version":1,"mounts":[{"bind":"/etc/ssl/private","optional":true}],"workspaces":[{"path":"/root","to":"/w"}]}"#,
        );
        assert_eq!(e.path, "mounts[0].bind", "{e}");
        let e = err(r#"{"version":1,"mounts":[{"bind":"/usr"}],"workspaces":[{"path":"/root","to":"/w"}]}"#);
        assert_eq!(e.path, "workspaces[0].path", "{e}");
        // Allowed by the policy: no refusal.
        let p = Policy::from_json(
            "t.json",
            r#"{"version":1,"mounts":[{"bind":"/etc/ssl/private","optional":true}],"allow_sensitive":["/etc/ssl/private"]}"#,
        )
        .unwrap();
        assert!(MountPlan::prepare(&p, "t.json", &ids).is_ok());
    }

    #[test]
    fn bind_patterns_match_names_and_expand_to_one_bind_each() {
        assert!(glob_match(b"java-*", b"java-17-openjdk"));
        assert!(glob_match(b"python3*", b"python3"));
        assert!(glob_match(b"*a*b", b"xaab"));
        assert!(!glob_match(b"java-*", b"javax"));
        assert!(!glob_match(b"a*c", b"abcd"));
        let d = std::env::temp_dir().join(format!("cordon-pattern-{}", std::process::id()));
        for n in ["java-11", "java-17", "javax", ".java-hidden", "java-*x"] {
            std::fs::create_dir_all(d.join(n)).unwrap();
        }
        let root = d.display().to_string();
        let p = plan(&format!(
            r#"{{"version":1,"mounts":[{{"bind":"{root}/java-*","optional":true}},{{"bind":"{root}/none-*","optional":true}}]}}"#
        ));
        let binds: Vec<String> = p
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Bind { dst, .. } => Some(dst.to_str().unwrap().to_string()),
                _ => None,
            })
            .collect();
        let r = root.trim_start_matches('/');
        assert_eq!(
            binds,
            [
                format!("{r}/java-*x"),
                format!("{r}/java-11"),
                format!("{r}/java-17")
            ]
        );
        let strict = Policy::from_json(
            "t.json",
            &format!(r#"{{"version":1,"mounts":[{{"bind":"{root}/none-*"}}]}}"#),
        )
        .unwrap();
        let ids = Ids {
            uid: 1000,
            gid: 1000,
            host_uid: 1,
            host_gid: 1,
            rootless: true,
        };
        let e = MountPlan::prepare(&strict, "t.json", &ids).unwrap_err();
        assert!(e.message.contains("matches nothing"), "{e}");
        let to = Policy::from_json(
            "t.json",
            &format!(r#"{{"version":1,"mounts":[{{"bind":"{root}/java-*","to":"/j"}}]}}"#),
        )
        .unwrap();
        let e = MountPlan::prepare(&to, "t.json", &ids).unwrap_err();
        assert!(e.message.contains("no \"to\""), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn file_text(plan: &MountPlan, dst: &str) -> Option<String> {
        plan.ops.iter().find_map(|op| match op {
            Op::File { dst: d, contents } if d.to_bytes() == dst.as_bytes() => {
                Some(String::from_utf8(contents.to_vec()).unwrap())
            }
            _ => None,
        })
    }

    #[test]
    fn passwd_and_group_name_the_payload_unless_bound_or_turned_off() {
        let p = plan(r#"{"version":1,"mounts":[{"tmpfs":"/tmp"}],"env":{"set":{"HOME":"/home/me"}}}"#);
        let passwd = file_text(&p, "etc/passwd").expect("passwd");
        assert!(
            passwd.contains("\nsandbox:x:1000:1000:sandbox:/home/me:/bin/sh\n"),
            "{passwd}"
        );
        assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
        let group = file_text(&p, "etc/group").expect("group");
        assert!(group.contains("\nsandbox:x:1000:\n"), "{group}");
        let bound = plan(r#"{"version":1,"mounts":[{"bind":"/etc/passwd"}]}"#);
        assert!(file_text(&bound, "etc/passwd").is_none());
        assert!(file_text(&bound, "etc/group").is_some());
        let off = plan(r#"{"version":1,"identity":{"passwd":false}}"#);
        assert!(file_text(&off, "etc/passwd").is_none());
        assert!(file_text(&off, "etc/group").is_none());
    }

    #[test]
    fn hosts_names_loopback_and_the_hostname_unless_bound() {
        let p = plan(r#"{"version":1,"hostname":"box"}"#);
        assert_eq!(
            file_text(&p, "etc/hosts").expect("hosts"),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbox\n"
        );
        let bound = plan(r#"{"version":1,"mounts":[{"bind":"/etc/hosts"}]}"#);
        assert!(file_text(&bound, "etc/hosts").is_none());
    }

    #[test]
    fn lexical_paths_resolve_dots_by_name() {
        assert_eq!(lexical("/a//b/./c/"), PathBuf::from("/a/b/c"));
        assert_eq!(lexical("/a/b/../c"), PathBuf::from("/a/c"));
        assert_eq!(lexical("/../a"), PathBuf::from("/a"));
        assert_eq!(lexical("/"), PathBuf::from("/"));
    }
}
