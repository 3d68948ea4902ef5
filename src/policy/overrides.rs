//! Command-line overrides applied on top of a policy for one run, in the
//! style bubblewrap and nsjail users know. Pure: no system calls.

use super::network::{NetMode, Pattern};
use super::{Dur, Mount, Namespace, Policy, PolicyError, Size, DEFAULT_TMPFS_SIZE};

/// Name used for command-line flags in error messages.
pub const CLI_SOURCE: &str = "<command line>";

/// One run's changes to a policy, in the order the flags were given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// Extra mounts in command-line order, each with the flag that gave it;
    /// appended after the policy's own. One for a destination the policy
    /// already mounts replaces that entry.
    pub mounts: Vec<(String, Mount)>,
    /// New working directory.
    pub cwd: Option<String>,
    /// `NAME=VALUE` sets a variable, `NAME` keeps it from cordon's environment.
    pub env: Vec<String>,
    /// New hostname.
    pub hostname: Option<String>,
    /// New wall-clock limit.
    pub wall_time: Option<Dur>,
    /// Share the host's network namespace (`--share-net`: the same as
    /// `--net host`).
    pub share_net: bool,
    /// The network mode, with the flag (or builder method) that set it.
    pub net: Option<(String, NetMode)>,
    /// Patterns added to `network.allow` (each with its flag), in order;
    /// they imply mode `proxy` unless `net` says otherwise (an error).
    pub allow_net: Vec<(String, String)>,
    /// New inner uid.
    pub uid: Option<u32>,
    /// New inner gid.
    pub gid: Option<u32>,
    /// Paths added to `landlock.read`.
    pub landlock_read: Vec<String>,
    /// Paths added to `landlock.write`.
    pub landlock_write: Vec<String>,
    /// Paths added to `landlock.execute`.
    pub landlock_exec: Vec<String>,
    /// Ports added to `landlock.tcp_connect`.
    pub landlock_connect: Vec<u16>,
    /// Drop the policy's Landlock section (recorded in the outcome).
    pub no_landlock: bool,
    /// New cgroup memory limit.
    pub memory: Option<Size>,
    /// New cgroup pids limit.
    pub pids: Option<u64>,
    /// New cgroup CPU limit.
    pub cpus: Option<super::Cpus>,
    /// New parent cgroup.
    pub cgroup_parent: Option<String>,
    /// Workspaces added by `--workspace` (each with its flag), after the
    /// policy's own; one at a destination the policy already has replaces it.
    pub workspaces: Vec<(String, super::Workspace)>,
    /// `--apply`: when every workspace's changes are applied.
    pub apply: Option<super::ApplyWhen>,
    /// `--export-changes`: where the (single) workspace's changes go.
    pub export_changes: Option<String>,
    /// Host paths added to `allow_sensitive` (`--allow-sensitive`).
    pub allow_sensitive: Vec<String>,
    /// `--best-effort`: the cgroup limits and the Landlock section run with
    /// what the host can enforce (`compatibility: best_effort`), the rest
    /// listed under `unenforced`.
    pub best_effort: bool,
    /// New `identity.host_uid` (`--host-uid`).
    pub host_uid: Option<u32>,
    /// New `identity.host_gid` (`--host-gid`).
    pub host_gid: Option<u32>,
    /// `--seccomp-report`: set `seccomp.report` (refusals recorded in the
    /// outcome's `violations`).
    pub seccomp_report: bool,
}

fn cli_error(flag: &str, message: String) -> PolicyError {
    PolicyError {
        file: CLI_SOURCE.to_string(),
        path: flag.to_string(),
        position: None,
        message,
    }
}

/// Parse `SRC[:DST]` for `--bind`/`--ro-bind`/`--bind-nofollow`. A
/// read-only bind may execute, a writable one may not; `no_symlinks`
/// refuses a source with a symlink in any component.
pub fn parse_bind(flag: &str, arg: &str, readonly: bool, no_symlinks: bool) -> Result<Mount, PolicyError> {
    let (src, dst) = match arg.split_once(':') {
        Some((s, d)) => (s, d),
        None => (arg, arg),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(cli_error(
            flag,
            format!("{arg:?}: expected SRC or SRC:DST with absolute paths"),
        ));
    }
    Ok(Mount::Bind {
        src: src.to_string(),
        dst: dst.to_string(),
        readonly,
        optional: false,
        exec: readonly,
        no_symlinks,
        owner: None,
        compatibility: Default::default(),
    })
}

/// Parse `DST[:SIZE]` for `--tmpfs`.
pub fn parse_tmpfs(arg: &str) -> Result<Mount, PolicyError> {
    let (dst, size) = match arg.split_once(':') {
        Some((d, s)) => (d, s.parse::<Size>().map_err(|e| cli_error("--tmpfs", e))?),
        None => (arg, DEFAULT_TMPFS_SIZE),
    };
    Ok(Mount::Tmpfs {
        dst: dst.to_string(),
        size,
        mode: 0o1777,
        exec: false,
        inodes: None,
    })
}

impl Overrides {
    /// `--net`, `--share-net` and `--allow-net`: the mode, the namespace
    /// that goes with it, and the added rules. Errors name the flags.
    fn apply_network(&self, policy: &mut Policy) -> Result<(), PolicyError> {
        let mut mode = self.net.clone();
        if self.share_net {
            match &mode {
                Some((flag, m)) if *m != NetMode::Host => {
                    return Err(cli_error(
                        flag,
                        format!(
                            "{flag} {} contradicts --share-net (the same as --net host)",
                            m.name()
                        ),
                    ))
                }
                Some(_) => {}
                None => mode = Some(("--share-net".to_string(), NetMode::Host)),
            }
        }
        let mut added = Vec::with_capacity(self.allow_net.len());
        for (flag, text) in &self.allow_net {
            added.push(text.parse::<Pattern>().map_err(|e| cli_error(flag, e))?);
        }
        if let Some((allow_flag, _)) = self.allow_net.first() {
            match &mode {
                Some((flag, m)) if *m != NetMode::Proxy => {
                    return Err(cli_error(
                        allow_flag,
                        format!(
                            "{allow_flag} needs mode proxy, but {flag} asks for mode {}: network rules apply only in mode proxy",
                            m.name()
                        ),
                    ))
                }
                Some(_) => {}
                None => mode = Some((allow_flag.clone(), NetMode::Proxy)),
            }
        }
        let Some((flag, m)) = mode else {
            return Ok(());
        };
        let net = policy.network.get_or_insert_with(Default::default);
        if m != NetMode::Proxy {
            for (field, present) in [
                ("allow", !net.allow.is_empty()),
                ("deny", !net.deny.is_empty()),
                ("resolve", !net.resolve.is_empty()),
            ] {
                if present {
                    return Err(cli_error(
                        &flag,
                        format!(
                            "{flag} asks for mode {}, but the policy has network.{field} rules, which apply only in mode proxy",
                            m.name()
                        ),
                    ));
                }
            }
        }
        net.mode = m;
        net.allow.extend(added);
        if m == NetMode::Host {
            policy.namespaces.retain(|n| *n != Namespace::Net);
        } else if !policy.namespaces.contains(&Namespace::Net) {
            policy.namespaces.push(Namespace::Net);
        }
        Ok(())
    }

    /// Apply to `policy` (read from `file`) and re-validate the result.
    pub fn apply(&self, policy: &mut Policy, file: &str) -> Result<(), PolicyError> {
        policy.mount_origins.resize(policy.mounts.len(), None);
        for (flag, m) in &self.mounts {
            if let Some(i) = policy.mounts.iter().position(|old| old.dst() == m.dst()) {
                policy.mounts.remove(i);
                policy.mount_origins.remove(i);
            }
            policy.mounts.push(m.clone());
            policy.mount_origins.push(Some(flag.clone()));
            // A mount given on the command line is meant to be used: with
            // Landlock on, a read-only bind can be read and executed, a
            // writable bind or tmpfs written (not executed).
            if let Some(ll) = policy.landlock.as_mut() {
                match m {
                    Mount::Bind {
                        dst, readonly: true, ..
                    } => {
                        ll.read.push(dst.clone());
                        ll.execute.push(dst.clone());
                    }
                    Mount::Bind {
                        dst, readonly: false, ..
                    }
                    | Mount::Tmpfs { dst, .. } => ll.write.push(dst.clone()),
                    _ => {}
                }
            }
        }
        if let Some(c) = &self.cwd {
            policy.cwd = c.clone();
        }
        for e in &self.env {
            match e.split_once('=') {
                Some((k, v)) => {
                    policy.env.keep.retain(|x| x != k);
                    policy.env.set.insert(k.to_string(), v.to_string());
                }
                None => {
                    policy.env.set.remove(e);
                    if !policy.env.keep.contains(e) {
                        policy.env.keep.push(e.clone());
                    }
                }
            }
        }
        if let Some(h) = &self.hostname {
            policy.hostname = Some(h.clone());
        }
        if let Some(w) = self.wall_time {
            policy.limits.wall_time = Some(w);
        }
        self.apply_network(policy)?;
        if let Some(m) = self.memory {
            policy.limits.memory = Some(m);
        }
        if let Some(p) = self.pids {
            policy.limits.pids = Some(p);
        }
        if let Some(c) = self.cpus {
            policy.limits.cpus = Some(c);
        }
        if let Some(p) = &self.cgroup_parent {
            policy.limits.cgroup_parent = Some(p.clone());
        }
        if self.memory.is_some() || self.pids.is_some() || self.cpus.is_some() || self.cgroup_parent.is_some()
        {
            // A cgroup limit asked for on the command line is meant to hold:
            // enforced with whatever cgroup version the host has, or refused.
            policy.limits.cgroup = super::CgroupVersions::Any;
            policy.limits.compatibility = super::Compatibility::Strict;
        }
        if let Some(u) = self.uid {
            policy.identity.uid = u;
        }
        if let Some(g) = self.gid {
            policy.identity.gid = g;
        }
        let adds = !(self.landlock_read.is_empty()
            && self.landlock_write.is_empty()
            && self.landlock_exec.is_empty()
            && self.landlock_connect.is_empty());
        if self.no_landlock {
            if adds {
                return Err(cli_error(
                    "--no-landlock",
                    "cannot be combined with --landlock-read, --landlock-write, --landlock-exec or --landlock-connect".to_string(),
                ));
            }
            if policy.landlock.take().is_some() {
                policy
                    .disabled
                    .push("landlock: disabled by --no-landlock".to_string());
            }
        } else if adds {
            let ll = policy.landlock.get_or_insert_with(Default::default);
            ll.read.extend(self.landlock_read.iter().cloned());
            ll.write.extend(self.landlock_write.iter().cloned());
            ll.execute.extend(self.landlock_exec.iter().cloned());
            if !self.landlock_connect.is_empty() {
                ll.tcp_connect
                    .get_or_insert_with(Vec::new)
                    .extend(self.landlock_connect.iter().copied());
            }
        }
        self.apply_workspaces(policy)?;
        self.apply_forgiving(policy)?;
        policy.check(&format!("{file} (with command-line flags)"))
    }

    /// `--workspace`, `--apply` and `--export-changes`.
    fn apply_workspaces(&self, policy: &mut Policy) -> Result<(), PolicyError> {
        for (flag, w) in &self.workspaces {
            policy.workspaces.retain(|old| old.dst() != w.dst());
            policy.workspaces.push(w.clone());
            // Meant to be used: with Landlock on, it can be written.
            if let Some(ll) = policy.landlock.as_mut() {
                ll.write.push(w.dst().to_string());
            }
            if policy.workspaces.len() > super::workspace::MAX_WORKSPACES {
                return Err(cli_error(
                    flag,
                    format!("at most {} workspaces", super::workspace::MAX_WORKSPACES),
                ));
            }
        }
        if let Some(a) = self.apply {
            if policy.workspaces.is_empty() {
                return Err(cli_error(
                    "--apply",
                    "there is no workspace to apply (add --workspace)".to_string(),
                ));
            }
            for w in &mut policy.workspaces {
                w.apply = a;
            }
        }
        if let Some(e) = &self.export_changes {
            match policy.workspaces.as_mut_slice() {
                [w] => w.export = Some(e.clone()),
                [] => {
                    return Err(cli_error(
                        "--export-changes",
                        "there is no workspace to export (add --workspace)".to_string(),
                    ))
                }
                _ => {
                    return Err(cli_error(
                        "--export-changes",
                        "the run has several workspaces: give each its \"export\" in the policy".to_string(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The flags for the fields cordon's errors tell people to set:
    /// `--allow-sensitive`, `--best-effort`, `--host-uid`/`--host-gid`,
    /// `--seccomp-report`.
    fn apply_forgiving(&self, policy: &mut Policy) -> Result<(), PolicyError> {
        for p in &self.allow_sensitive {
            if !p.starts_with('/') {
                return Err(cli_error(
                    &format!("--allow-sensitive {p}"),
                    "expected an absolute host path".to_string(),
                ));
            }
            if !policy.allow_sensitive.contains(p) {
                policy.allow_sensitive.push(p.clone());
            }
        }
        if self.best_effort {
            // After the cgroup flags, which ask for strict limits: the
            // explicit --best-effort wins.
            policy.limits.compatibility = super::Compatibility::BestEffort;
            if let Some(ll) = policy.landlock.as_mut() {
                ll.compatibility = super::Compatibility::BestEffort;
            }
        }
        if let Some(u) = self.host_uid {
            policy.identity.host_uid = Some(u);
        }
        if let Some(g) = self.host_gid {
            policy.identity.host_gid = Some(g);
        }
        if self.seccomp_report {
            match policy.seccomp.as_mut() {
                Some(sc) => sc.report = true,
                None => {
                    return Err(cli_error(
                        "--seccomp-report",
                        "the policy has no \"seccomp\" section: there is no filter whose refusals could be reported".to_string(),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod forgiving_tests {
    use super::*;

    fn default_policy() -> Policy {
        Policy::builtin_default().expect("built-in policy")
    }

    #[test]
    fn a_flag_made_mount_that_fails_validation_is_named_by_the_flag() {
        let mut p = default_policy();
        let o = Overrides {
            mounts: vec![(
                "--ro-bind job.py:/w/job.py".into(),
                parse_bind("--ro-bind", "job.py:/w/job.py", true, false).unwrap(),
            )],
            ..Overrides::default()
        };
        let e = o.apply(&mut p, "p.json").unwrap_err();
        assert_eq!(e.file, CLI_SOURCE);
        assert_eq!(e.path, "--ro-bind job.py:/w/job.py");
        assert_eq!(e.message, "expected an absolute host path");
        assert_eq!(
            e.to_string(),
            "<command line>: --ro-bind job.py:/w/job.py: expected an absolute host path"
        );
        // The policy's own entries keep their index.
        let mut p = default_policy();
        p.mounts.push(parse_tmpfs("rel").unwrap());
        let e = Overrides::default().apply(&mut p, "p.json").unwrap_err();
        assert_eq!(e.file, "p.json (with command-line flags)");
        assert!(e.path.starts_with("mounts["), "{}", e.path);
    }

    #[test]
    fn the_flags_for_the_fields_errors_mention_set_those_fields() {
        let mut p = default_policy();
        Overrides {
            allow_sensitive: vec!["/root".into(), "/root".into()],
            best_effort: true,
            memory: Some("64M".parse().unwrap()),
            host_uid: Some(123_456),
            host_gid: Some(123_457),
            seccomp_report: true,
            ..Overrides::default()
        }
        .apply(&mut p, "p.json")
        .unwrap();
        assert_eq!(p.allow_sensitive, ["/root"]);
        assert_eq!(p.limits.compatibility, super::super::Compatibility::BestEffort);
        assert_eq!(
            p.landlock.as_ref().map(|l| l.compatibility),
            Some(super::super::Compatibility::BestEffort)
        );
        assert_eq!(
            (p.identity.host_uid, p.identity.host_gid),
            (Some(123_456), Some(123_457))
        );
        assert!(p.seccomp.as_ref().is_some_and(|s| s.report));

        let e = Overrides {
            allow_sensitive: vec!["root".into()],
            ..Overrides::default()
        }
        .apply(&mut default_policy(), "p.json")
        .unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("--allow-sensitive root", "expected an absolute host path")
        );

        let mut bare = Policy::from_json("p.json", r#"{"version": 1}"#).unwrap();
        let e = Overrides {
            seccomp_report: true,
            ..Overrides::default()
        }
        .apply(&mut bare, "p.json")
        .unwrap_err();
        assert_eq!(e.path, "--seccomp-report");
        assert!(e.message.contains("no \"seccomp\" section"), "{}", e.message);

        // host id 0 still needs allow_host_root.
        let e = Overrides {
            host_uid: Some(0),
            ..Overrides::default()
        }
        .apply(&mut default_policy(), "p.json")
        .unwrap_err();
        assert_eq!(e.path, "identity.host_uid");
    }
}
