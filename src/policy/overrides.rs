//! Command-line overrides applied on top of a policy for one run, in the
//! style bubblewrap and nsjail users know. Pure: no system calls.

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
    /// Share the host's network namespace.
    pub share_net: bool,
    /// New inner uid.
    pub uid: Option<u32>,
    /// New inner gid.
    pub gid: Option<u32>,
}

fn cli_error(flag: &str, message: String) -> PolicyError {
    PolicyError {
        file: CLI_SOURCE.to_string(),
        path: flag.to_string(),
        position: None,
        message,
    }
}

/// Parse `SRC[:DST]` for `--bind`/`--ro-bind`.
pub fn parse_bind(flag: &str, arg: &str, readonly: bool) -> Result<Mount, PolicyError> {
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
    })
}

impl Overrides {
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
        if self.share_net {
            policy.namespaces.retain(|n| *n != Namespace::Net);
        }
        if let Some(u) = self.uid {
            policy.identity.uid = u;
        }
        if let Some(g) = self.gid {
            policy.identity.gid = g;
        }
        policy.check(&format!("{file} (with command-line flags)"))
    }
}
