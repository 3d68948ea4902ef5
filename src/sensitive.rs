//! Host paths that must not be bound into a sandbox unless the policy names
//! them in `allow_sensitive`.
//!
//! A source is refused when it *is* a sensitive path, lies *inside* one
//! (e.g. `/proc/1`), or *contains* one that exists (binding `/home/me`
//! would expose `/home/me/.ssh`; binding `/` exposes everything). The check
//! runs on the canonical path, after symlinks are resolved.
//!
//! A source is also refused when it is, or contains, the path of a unix
//! socket that listens in cordon's own network namespace (an agent, a bus,
//! a runtime): whoever can connect to it acts with its server's authority.
//!
//! The runtime directory of named sandboxes ([`named_runtime_dir`]) is
//! sensitive whether or not it exists yet: its control sockets (made later)
//! run commands in other sandboxes.

use std::path::{Path, PathBuf};

/// The runtime directory of named sandboxes for the effective uid `uid`:
/// `$XDG_RUNTIME_DIR/cordon`, else `/run/cordon/named` for root, else
/// `/run/user/UID/cordon`. Only the path: nothing is checked or made.
pub fn named_runtime_dir(uid: u32) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x).join("cordon"),
        None if uid == 0 => PathBuf::from("/run/cordon/named"),
        None => PathBuf::from(format!("/run/user/{uid}/cordon")),
    }
}

/// `p` resolved as far as it exists: the canonical path of its longest
/// existing ancestor, with the rest appended. (A path that does not exist
/// yet is compared with canonical sources.)
fn resolve_partly(p: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = p;
    loop {
        if let Ok(c) = crate::sys::canonicalize(cur) {
            return rest.iter().rev().fold(c, |acc: PathBuf, n| acc.join(n));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// Whole trees that are never a bind source by default. `/run` holds the
/// system and session buses (`/run/user/UID/bus` reaches `systemd-run
/// --user`) and every daemon's control socket.
const TREES: [&str; 10] = [
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/run",
    "/etc/sudoers.d",
    "/tmp/.X11-unix",
    "/tmp/.ICE-unix",
    "/var/lib/sss",
];

/// Single files or directories that are sensitive (`/etc/ssh`: the host's
/// private keys; `/etc/ssl/private`: TLS keys).
const FILES: [&str; 12] = [
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
    "/var/lib/docker",
    "/run/docker",
    "/var/run/docker",
    "/etc/ssh",
    "/etc/ssl/private",
];

/// Per-user secrets (directories or files) under each home.
const HOME_DIRS: [&str; 15] = [
    ".ssh",
    ".aws",
    ".gnupg",
    ".config",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    ".local/share/keyrings",
];

/// Names in a shared directory that belong to a user's agent or tickets
/// (directory, name prefix): ssh-agent sockets, Kerberos credential caches.
const PREFIXES: [(&str, &str); 2] = [("/tmp", "ssh-"), ("/tmp", "krb5cc_")];

/// Most entries of a shared directory read to find a [`PREFIXES`] match
/// below a source that contains it; past that the source is refused.
const MAX_DIR_SCAN: usize = 4096;

/// Most bytes of /proc/net/unix read; past that every bind is refused (a
/// host with that many sockets cannot be checked at a bounded cost).
const MAX_UNIX_TABLE: u64 = 16 << 20;

/// Most listening socket paths resolved (symlinks in their directories).
const MAX_SOCKETS: usize = 4096;

/// Socket names that are container-runtime control sockets wherever they are.
const SOCKET_NAMES: [&str; 4] = ["docker.sock", "containerd.sock", "podman.sock", "crio.sock"];

/// The home directory of a passwd line whose uid belongs to a person
/// (1000 up to, not including, nobody's 65534).
fn person_home(line: &str) -> Option<PathBuf> {
    let mut f = line.split(':');
    let uid: u32 = f.nth(2)?.parse().ok()?;
    let home = f.nth(2)?;
    (1000..65534).contains(&uid).then(|| PathBuf::from(home))
}

/// Whether `p` is `dir` or lies below it. Both are absolute paths without
/// `.`, `..`, repeated or trailing `/` (canonical sources, and entries built
/// from constants and canonical homes), for which comparing bytes at a `/`
/// boundary is what `Path::starts_with` decides, without parsing
/// components: this runs for every entry and every source of a launch.
fn within(p: &Path, dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (p, d) = (p.as_os_str().as_bytes(), dir.as_os_str().as_bytes());
    p.starts_with(d) && (p.len() == d.len() || d == b"/" || p[d.len()] == b'/')
}

/// The deny list for one host.
#[derive(Clone, Debug)]
pub struct DenyList {
    entries: Vec<PathBuf>,
    /// Paths of listening unix sockets (canonical where they resolve), or
    /// why they could not be listed.
    sockets: Result<Vec<PathBuf>, String>,
    /// Sensitive paths refused even when they do not exist yet (a source
    /// that is one, lies inside one or contains one): the runtime
    /// directory of named sandboxes.
    always: Vec<PathBuf>,
}

/// `__SO_ACCEPTCON` in /proc/net/unix's Flags column: the socket listens.
const SO_ACCEPTCON: u32 = 1 << 16;

/// The paths of listening, path-bound unix sockets in a /proc/net/unix
/// table (`Num RefCount Protocol Flags Type St Inode Path`). Abstract
/// (`@...`) and relative paths are skipped: only an absolute path names a
/// file a bind could expose.
pub fn listening_socket_paths(table: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        // Seven fields, then the path (which may hold spaces).
        let mut rest = line;
        let mut fields = [""; 7];
        for f in fields.iter_mut() {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            *f = &rest[..end];
            rest = &rest[end..];
        }
        let path = rest.strip_prefix(' ').unwrap_or(rest);
        let listening = u32::from_str_radix(fields[3], 16).is_ok_and(|fl| fl & SO_ACCEPTCON != 0);
        if listening && path.starts_with('/') {
            out.push(PathBuf::from(path));
        }
    }
    out
}

/// The listening socket paths in /proc/net/unix (bounded by
/// [`MAX_UNIX_TABLE`]).
fn proc_listening_sockets() -> Result<Vec<PathBuf>, String> {
    use std::io::Read;
    let f = std::fs::File::open("/proc/net/unix").map_err(|e| format!("cannot read /proc/net/unix: {e}"))?;
    // procfs reports no size: start with room for a small host's table.
    let mut text = String::with_capacity(16 << 10);
    f.take(MAX_UNIX_TABLE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read /proc/net/unix: {e}"))?;
    if text.len() as u64 > MAX_UNIX_TABLE {
        return Err(format!(
            "/proc/net/unix is larger than {MAX_UNIX_TABLE} bytes: too many sockets to check"
        ));
    }
    Ok(listening_socket_paths(&text))
}

/// The listening unix sockets of cordon's network namespace, each as bound
/// and, when different, as its canonical path. Read by sock_diag, where the
/// kernel picks the listening ones; from /proc/net/unix (every socket, as
/// text: slow on a host with thousands) where sock_diag for unix sockets is
/// not available.
fn host_listening_sockets() -> Result<Vec<PathBuf>, String> {
    use std::os::unix::ffi::OsStrExt;
    let mut paths = match crate::sys::unix_listening_names(MAX_UNIX_TABLE as usize, MAX_SOCKETS) {
        Ok(names) => names
            .iter()
            .filter(|n| n.starts_with(b"/"))
            .map(|n| PathBuf::from(std::ffi::OsStr::from_bytes(n)))
            .collect(),
        Err(crate::sys::DiagError::TooMany) => {
            return Err(format!(
                "more than {MAX_SOCKETS} listening unix sockets: too many to check"
            ))
        }
        Err(_) => proc_listening_sockets()?,
    };
    paths.sort();
    paths.dedup();
    if paths.len() > MAX_SOCKETS {
        return Err(format!(
            "more than {MAX_SOCKETS} listening unix sockets: too many to check"
        ));
    }
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        // The socket file itself is not a symlink; its directory may be.
        if let Some(real) = p
            .parent()
            .and_then(|d| crate::sys::canonicalize(d).ok())
            .zip(p.file_name())
            .map(|(d, n)| d.join(n))
        {
            if real != p {
                out.push(real);
            }
        }
        out.push(p);
    }
    Ok(out)
}

/// The names in directory `dir` that are symbolic links, by one listing
/// (None: it cannot be listed, or holds more than [`MAX_DIR_SCAN`]
/// entries; then every name is checked by itself).
fn symlinked_names(dir: &Path) -> Option<Vec<std::ffi::OsString>> {
    let mut out = Vec::new();
    for (n, e) in std::fs::read_dir(dir).ok()?.enumerate() {
        if n >= MAX_DIR_SCAN {
            return None;
        }
        let e = e.ok()?;
        if e.file_type().ok()?.is_symlink() {
            out.push(e.file_name());
        }
    }
    Some(out)
}

impl DenyList {
    /// Build the list for this host: the fixed paths plus the sensitive
    /// directories of every person's home (users with uid 1000 and above in
    /// /etc/passwd, every directory in /home, and $HOME). System accounts'
    /// homes (/bin, /var/www, ...) are left out: they hold no such secrets,
    /// and resolving them all would slow every launch.
    pub fn for_host() -> DenyList {
        let mut homes: Vec<PathBuf> = Vec::new();
        if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
            homes.extend(passwd.lines().filter_map(person_home));
        }
        if let Ok(rd) = std::fs::read_dir("/home") {
            homes.extend(rd.flatten().map(|e| e.path()));
        }
        if let Some(h) = std::env::var_os("HOME") {
            homes.push(PathBuf::from(h));
        }
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        DenyList::new(&homes)
            .with_sockets(host_listening_sockets())
            .with_always(vec![named_runtime_dir(uid)])
    }

    /// The same list with these paths refused even before they exist
    /// (resolved as far as they exist).
    pub fn with_always(mut self, paths: Vec<PathBuf>) -> DenyList {
        self.always = paths.iter().map(|p| resolve_partly(p)).collect();
        self
    }

    /// The same list with these listening unix socket paths (or why they
    /// could not be listed: then every bind is refused unless allowed).
    pub fn with_sockets(mut self, sockets: Result<Vec<PathBuf>, String>) -> DenyList {
        self.sockets = sockets;
        self
    }

    /// Build the list with the given home directories.
    pub fn new(homes: &[PathBuf]) -> DenyList {
        let mut entries: Vec<PathBuf> = TREES.iter().chain(FILES.iter()).map(PathBuf::from).collect();
        let mut seen: Vec<PathBuf> = Vec::new();
        for h in homes {
            // A home of "/" would deny everything; a relative one is bogus.
            if h.as_os_str().len() <= 1 || !h.is_absolute() {
                continue;
            }
            // Match what a bind would really expose: the resolved home.
            let h = crate::sys::canonicalize(h).unwrap_or_else(|_| h.clone());
            if seen.contains(&h) {
                continue;
            }
            // One listing of the home instead of a stat per secret: only
            // a name that is there as a symlink needs resolving.
            let links = symlinked_names(&h);
            for d in HOME_DIRS {
                let p = h.join(d);
                let first = d.split('/').next().unwrap_or(d);
                let maybe_link = match &links {
                    Some(l) => d.contains('/') || l.iter().any(|n| n == first),
                    None => true,
                };
                // A symlinked ~/.ssh exposes its target: deny that too.
                if maybe_link && p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                    if let Ok(real) = crate::sys::canonicalize(&p) {
                        entries.push(real);
                    }
                }
                entries.push(p);
            }
            seen.push(h);
        }
        DenyList {
            entries,
            sockets: Ok(Vec::new()),
            always: Vec::new(),
        }
    }

    /// Why `src` (canonical) may not be bound, or None when it may.
    /// `allowed` is the policy's `allow_sensitive` list; naming either the
    /// source or the sensitive path it touches allows it.
    pub fn check(&self, src: &Path, allowed: &[String]) -> Option<String> {
        // Compare resolved paths: "/var/run/docker.sock" allows "/run/docker.sock".
        let allowed: Vec<PathBuf> = allowed
            .iter()
            .map(|a| std::fs::canonicalize(a).unwrap_or_else(|_| PathBuf::from(a)))
            .collect();
        let is_allowed = |p: &Path| allowed.iter().any(|a| a == p);
        if is_allowed(src) {
            return None;
        }
        let hint = |what: &Path| {
            format!(
                "add \"{0}\" to \"allow_sensitive\" (on the command line: --allow-sensitive {0}) if the sandbox really needs it",
                what.display()
            )
        };
        if let Some(name) = src.file_name().and_then(|n| n.to_str()) {
            if SOCKET_NAMES.contains(&name) {
                return Some(format!(
                    "{} is a container runtime socket: whoever reaches it controls the host; {}",
                    src.display(),
                    hint(src)
                ));
            }
        }
        for e in &self.entries {
            if within(src, e) {
                if is_allowed(e) {
                    return None;
                }
                return Some(format!(
                    "{} is a sensitive host path; {}",
                    src.display(),
                    hint(src)
                ));
            }
        }
        for e in &self.entries {
            if within(e, src) && !is_allowed(e) && e.symlink_metadata().is_ok() {
                return Some(format!(
                    "binding {} would expose the sensitive path {}; bind only what the sandbox needs, or {}",
                    src.display(),
                    e.display(),
                    hint(e)
                ));
            }
        }
        for e in &self.always {
            if (within(src, e) || within(e, src)) && !is_allowed(e) {
                return Some(format!(
                    "binding {} would expose {}, the runtime directory of named sandboxes (their control sockets run commands in them); bind only what the sandbox needs, or {}",
                    src.display(),
                    e.display(),
                    hint(e)
                ));
            }
        }
        for (dir, prefix) in PREFIXES {
            let dir = Path::new(dir);
            // Inside a user's agent directory or ticket.
            if let Ok(rest) = src.strip_prefix(dir) {
                let first = rest.components().next().and_then(|c| c.as_os_str().to_str());
                if let Some(name) = first.filter(|n| n.starts_with(prefix)) {
                    let entry = dir.join(name);
                    if !is_allowed(&entry) {
                        return Some(format!(
                            "{} is a user's agent socket or credential cache ({}/{prefix}*); {}",
                            src.display(),
                            dir.display(),
                            hint(src)
                        ));
                    }
                }
            }
            // Containing one (binding /tmp itself).
            if dir.starts_with(src) {
                let Ok(rd) = std::fs::read_dir(dir) else { continue };
                for (n, e) in rd.enumerate() {
                    if n >= MAX_DIR_SCAN {
                        return Some(format!(
                            "binding {} would expose {}, which has more than {MAX_DIR_SCAN} entries to check for {prefix}*; bind only what the sandbox needs, or {}",
                            src.display(),
                            dir.display(),
                            hint(src)
                        ));
                    }
                    let Ok(e) = e else { continue };
                    let p = e.path();
                    let hit = e.file_name().to_str().is_some_and(|n| n.starts_with(prefix));
                    if hit && !is_allowed(&p) {
                        return Some(format!(
                            "binding {} would expose {}, a user's agent socket or credential cache; bind only what the sandbox needs, or {}",
                            src.display(),
                            p.display(),
                            hint(&p)
                        ));
                    }
                }
            }
        }
        match &self.sockets {
            Err(why) => {
                return Some(format!(
                    "cannot check {} for listening unix sockets: {why}; {}",
                    src.display(),
                    hint(src)
                ))
            }
            Ok(sockets) => {
                for s in sockets {
                    if within(s, src) && !is_allowed(s) {
                        return Some(format!(
                            "binding {} would expose the listening unix socket {}: whoever connects acts with its server's authority; bind only what the sandbox needs, or {}",
                            src.display(),
                            s.display(),
                            hint(s)
                        ));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> DenyList {
        DenyList::new(&[PathBuf::from("/home/alice")])
    }

    /// sock_diag and the /proc/net/unix fallback both find a listening
    /// socket (through a symlinked directory: as bound and as resolved),
    /// and neither lists a bound socket that does not listen.
    #[test]
    fn both_socket_sources_find_a_listening_socket() {
        let d = std::env::temp_dir().join(format!("cordon-socks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("real")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        let d = crate::sys::canonicalize(&d).unwrap();
        let via_link = d.join("link/agent.sock");
        let _l = std::os::unix::net::UnixListener::bind(&via_link).unwrap();
        let quiet = d.join("real/quiet.sock");
        let _q = std::os::unix::net::UnixDatagram::bind(&quiet).unwrap();
        let proc = proc_listening_sockets().unwrap();
        let host = host_listening_sockets().unwrap();
        let _ = std::fs::remove_dir_all(&d);
        assert!(proc.contains(&via_link), "{proc:?}");
        assert!(!proc.contains(&quiet), "{proc:?}");
        assert!(host.contains(&via_link), "{host:?}");
        assert!(host.contains(&d.join("real/agent.sock")), "{host:?}");
        assert!(
            !host
                .iter()
                .any(|p| p.ends_with("quiet.sock") && p.starts_with(&d)),
            "{host:?}"
        );
    }

    #[test]
    fn within_is_starts_with_for_normal_absolute_paths() {
        for (p, d) in [
            ("/etc/shadow", "/etc/shadow"),
            ("/etc/shadow", "/etc"),
            ("/etc/shadowx", "/etc/shadow"),
            ("/etc", "/etc/shadow"),
            ("/", "/"),
            ("/etc", "/"),
            ("/home/al", "/home/alice"),
            ("/home/alice/.ssh/id", "/home/alice/.ssh"),
        ] {
            assert_eq!(
                within(Path::new(p), Path::new(d)),
                Path::new(p).starts_with(d),
                "{p} within {d}"
            );
        }
    }

    #[test]
    fn refuses_fixed_sensitive_paths_and_below() {
        let l = list();
        for p in [
            "/proc",
            "/proc/1/root",
            "/sys",
            "/dev",
            "/boot",
            "/etc/shadow",
            "/etc/sudoers",
            "/root",
        ] {
            assert!(l.check(Path::new(p), &[]).is_some(), "{p} should be refused");
        }
    }

    #[test]
    fn refuses_home_secrets_and_runtime_sockets_anywhere() {
        let l = list();
        assert!(l.check(Path::new("/home/alice/.ssh"), &[]).is_some());
        assert!(l.check(Path::new("/home/alice/.aws/credentials"), &[]).is_some());
        assert!(l.check(Path::new("/srv/x/docker.sock"), &[]).is_some());
    }

    #[test]
    fn refuses_ancestors_of_existing_sensitive_paths() {
        let l = list();
        // /etc/shadow exists on any Linux host.
        let why = l
            .check(Path::new("/etc"), &[])
            .expect("/etc contains /etc/shadow");
        assert!(why.contains("/etc/shadow"), "{why}");
        assert!(l.check(Path::new("/"), &[]).is_some());
    }

    #[test]
    fn only_people_count_as_home_owners() {
        assert_eq!(
            person_home("alice:x:1000:1000::/home/alice:/bin/sh"),
            Some(PathBuf::from("/home/alice"))
        );
        assert_eq!(
            person_home("www-data:x:33:33:www:/var/www:/usr/sbin/nologin"),
            None
        );
        assert_eq!(person_home("nobody:x:65534:65534::/nonexistent:/bin/false"), None);
        assert_eq!(person_home("broken"), None);
    }

    #[test]
    fn ordinary_paths_pass() {
        let l = list();
        for p in [
            "/usr",
            "/usr/bin/python3",
            "/etc/ld.so.cache",
            "/home/alice/project",
            "/tmp/work",
        ] {
            assert_eq!(l.check(Path::new(p), &[]), None, "{p}");
        }
    }

    #[test]
    fn symlinked_home_secrets_deny_their_target_and_allow_entries_resolve() {
        let base = std::env::temp_dir().join(format!("cordon-sens-{}", std::process::id()));
        let home = base.join("home");
        let vault = base.join("vault");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&vault).unwrap();
        std::os::unix::fs::symlink(&vault, home.join(".ssh")).unwrap();
        let l = DenyList::new(std::slice::from_ref(&home));
        let vault_real = std::fs::canonicalize(&vault).unwrap();
        assert!(
            l.check(&vault_real, &[]).is_some(),
            "target of ~/.ssh must be denied"
        );
        assert_eq!(
            l.check(&vault_real, &[home.join(".ssh").to_string_lossy().into()]),
            None
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn allow_sensitive_names_source_or_sensitive_path() {
        let l = list();
        assert_eq!(l.check(Path::new("/etc/shadow"), &["/etc/shadow".into()]), None);
        assert_eq!(l.check(Path::new("/proc/1"), &["/proc".into()]), None);
        assert!(l.check(Path::new("/etc/shadow"), &["/etc".into()]).is_some());
    }

    #[test]
    fn refuses_buses_host_keys_and_x11() {
        let l = list();
        for p in [
            "/run",
            "/run/user/1000/bus",
            "/run/dbus/system_bus_socket",
            "/etc/ssh",
            "/etc/ssh/ssh_host_ed25519_key",
            "/tmp/.X11-unix",
            "/tmp/.X11-unix/X0",
            "/tmp/.ICE-unix",
        ] {
            let why = l
                .check(Path::new(p), &[])
                .unwrap_or_else(|| panic!("{p} accepted"));
            assert!(why.contains(p) && why.contains("allow_sensitive"), "{why}");
        }
        assert_eq!(l.check(Path::new("/run/user/1000/bus"), &["/run".into()]), None);
    }

    #[test]
    fn refuses_new_home_secrets() {
        let l = list();
        for n in [
            ".netrc",
            ".git-credentials",
            ".docker",
            ".docker/config.json",
            ".pgpass",
            ".bash_history",
            ".zsh_history",
            ".local/share/keyrings",
            ".local/share/keyrings/login.keyring",
        ] {
            let p = format!("/home/alice/{n}");
            assert!(l.check(Path::new(&p), &[]).is_some(), "{p} accepted");
        }
        // Other parts of ~/.local stay bindable.
        assert_eq!(l.check(Path::new("/home/alice/.local/bin"), &[]), None);
    }

    #[test]
    fn refuses_agent_sockets_and_tickets_in_tmp() {
        let l = list();
        for p in [
            "/tmp/ssh-XXXXabc",
            "/tmp/ssh-XXXXabc/agent.123",
            "/tmp/krb5cc_1000",
        ] {
            let why = l
                .check(Path::new(p), &[])
                .unwrap_or_else(|| panic!("{p} accepted"));
            assert!(why.contains("agent socket or credential cache"), "{why}");
        }
        assert_eq!(
            l.check(Path::new("/tmp/krb5cc_1000"), &["/tmp/krb5cc_1000".into()]),
            None
        );
        // Only the prefix directly in /tmp counts.
        assert_eq!(l.check(Path::new("/tmp/work/ssh-keys"), &[]), None);
        assert_eq!(l.check(Path::new("/srv/ssh-x"), &[]), None);
    }

    #[test]
    fn parses_listening_paths_from_proc_net_unix() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01  1256 /run/dbus/system_bus_socket
0000000000000000: 00000002 00000000 00010000 0001 01 73895 /srv/a dir/s.sock
0000000000000000: 00000003 00000000 00000000 0001 03 73896 /srv/connected.sock
0000000000000000: 00000002 00000000 00010000 0001 01 73897 @abstract
0000000000000000: 00000002 00000000 00010000 0001 01 73898 relative.sock
0000000000000000: 00000002 00000000 00010000 0001 01 73899
";
        assert_eq!(
            listening_socket_paths(table),
            vec![
                PathBuf::from("/run/dbus/system_bus_socket"),
                PathBuf::from("/srv/a dir/s.sock")
            ]
        );
    }

    #[test]
    fn refuses_a_tree_holding_a_listening_socket() {
        let l = list().with_sockets(Ok(vec![PathBuf::from("/srv/app/run/app.sock")]));
        for p in ["/srv", "/srv/app", "/srv/app/run/app.sock"] {
            let why = l
                .check(Path::new(p), &[])
                .unwrap_or_else(|| panic!("{p} accepted"));
            assert!(why.contains("/srv/app/run/app.sock"), "{why}");
        }
        assert_eq!(l.check(Path::new("/srv/other"), &[]), None);
        assert_eq!(
            l.check(Path::new("/srv/app"), &["/srv/app/run/app.sock".into()]),
            None
        );
        assert_eq!(l.check(Path::new("/srv/app"), &["/srv/app".into()]), None);
        // Sockets that cannot be listed: fail closed.
        let l = list().with_sockets(Err("unreadable".into()));
        assert!(l.check(Path::new("/usr"), &[]).unwrap().contains("unreadable"));
        assert_eq!(l.check(Path::new("/usr"), &["/usr".into()]), None);
    }

    #[test]
    fn refuses_the_named_runtime_dir_before_it_exists() {
        let base = std::env::temp_dir().join(format!("cordon-sens-rt-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let base = std::fs::canonicalize(&base).unwrap();
        let rt = base.join("cordon");
        let l = list().with_sockets(Ok(Vec::new())).with_always(vec![rt.clone()]);
        // Not made yet: the directory, an ancestor and a path inside are refused.
        for p in [&base, &rt, &rt.join("x.sock")] {
            let why = l
                .check(p, &[])
                .unwrap_or_else(|| panic!("{} should be refused", p.display()));
            assert!(why.contains("runtime directory of named sandboxes"), "{why}");
        }
        // A sibling is not; allow_sensitive naming it allows it.
        assert_eq!(l.check(&base.join("cordonx"), &[]), None);
        assert_eq!(l.check(&base, &[rt.to_str().unwrap().to_string()]), None);
        std::fs::remove_dir(&base).unwrap();
    }
}
