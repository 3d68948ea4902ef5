//! Host paths that must not be bound into a sandbox unless the policy names
//! them in `allow_sensitive`.
//!
//! A source is refused when it *is* a sensitive path, lies *inside* one
//! (e.g. `/proc/1`), or *contains* one that exists (binding `/home/me`
//! would expose `/home/me/.ssh`; binding `/` exposes everything). The check
//! runs on the canonical path, after symlinks are resolved.

use std::path::{Path, PathBuf};

/// Whole trees that are never a bind source by default.
const TREES: [&str; 7] = [
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/etc/sudoers.d",
    "/run/containerd",
];

/// Single files or directories that are sensitive.
const FILES: [&str; 10] = [
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
];

/// Per-user directories under each home.
const HOME_DIRS: [&str; 5] = [".ssh", ".aws", ".gnupg", ".config", ".kube"];

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

/// The deny list for one host.
#[derive(Clone, Debug)]
pub struct DenyList {
    entries: Vec<PathBuf>,
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
        DenyList::new(&homes)
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
            let h = std::fs::canonicalize(h).unwrap_or_else(|_| h.clone());
            if seen.contains(&h) {
                continue;
            }
            for d in HOME_DIRS {
                let p = h.join(d);
                // A symlinked ~/.ssh exposes its target: deny that too.
                if p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                    if let Ok(real) = std::fs::canonicalize(&p) {
                        entries.push(real);
                    }
                }
                entries.push(p);
            }
            seen.push(h);
        }
        DenyList { entries }
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
                "add \"{}\" to \"allow_sensitive\" if the sandbox really needs it",
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
            if src == e || src.starts_with(e) {
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
            if e.starts_with(src) && !is_allowed(e) && e.symlink_metadata().is_ok() {
                return Some(format!(
                    "binding {} would expose the sensitive path {}; bind only what the sandbox needs, or {}",
                    src.display(),
                    e.display(),
                    hint(e)
                ));
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
            "/tmp",
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
}
