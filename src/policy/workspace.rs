//! The policy's `"workspaces"`: a host directory the payload sees writable
//! through an overlay whose changes stay on a size-limited tmpfs of the
//! sandbox, reviewed (exported) and applied to the host only as the policy
//! says. Pure model and validation; the mounts are made by
//! [`crate::isolate::mount`], the change set read by [`crate::workspace`].

use serde::{Deserialize, Serialize};

use super::{check_sandbox_path, default_tmpfs_inodes, Size, MAX_TMPFS_INODES};

/// Most workspaces a policy may have (their upper directories travel to
/// the supervisor in one SCM_RIGHTS message).
pub const MAX_WORKSPACES: usize = 4;

/// The size of a workspace's tmpfs that names none.
pub const DEFAULT_WORKSPACE_SIZE: Size = Size(512 << 20);

/// When a workspace's changes are copied onto the host directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApplyWhen {
    /// Never (the default): the changes are only reported and exported.
    #[default]
    Never,
    /// When the payload exited 0 and nothing timed out, was killed or ran
    /// into a limit (the outcome's `limits_hit` is empty).
    OnSuccess,
    /// Whatever the payload's end.
    Always,
}

impl ApplyWhen {
    /// The policy spelling.
    pub fn name(self) -> &'static str {
        match self {
            ApplyWhen::Never => "never",
            ApplyWhen::OnSuccess => "on_success",
            ApplyWhen::Always => "always",
        }
    }
}

impl std::str::FromStr for ApplyWhen {
    type Err = String;

    fn from_str(s: &str) -> Result<ApplyWhen, String> {
        match s {
            "never" => Ok(ApplyWhen::Never),
            "on_success" => Ok(ApplyWhen::OnSuccess),
            "always" => Ok(ApplyWhen::Always),
            _ => Err(format!(
                "invalid apply {s:?}: expected \"never\", \"on_success\" or \"always\""
            )),
        }
    }
}

/// One workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    /// The host directory (the overlay's read-only lower layer; never
    /// written during the run).
    pub path: String,
    /// Where the sandbox sees it (default: `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Most bytes the payload may write there (the tmpfs under the
    /// overlay's upper layer; default 512M).
    #[serde(default = "default_size")]
    pub size: Size,
    /// Most files, directories and links it may hold (default: one per 4
    /// KiB of `size`, see [`default_tmpfs_inodes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inodes: Option<u64>,
    /// When the changes are copied onto `path` (default `never`).
    #[serde(default)]
    pub apply: ApplyWhen,
    /// A directory (created, or empty) that receives the changed files and
    /// `manifest.json` after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
    /// Files there may be executed (default false: mounted noexec).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
}

fn default_size() -> Size {
    DEFAULT_WORKSPACE_SIZE
}

impl Workspace {
    /// A workspace of `path` with every default.
    pub fn new(path: &str) -> Workspace {
        Workspace {
            path: path.to_string(),
            to: None,
            size: DEFAULT_WORKSPACE_SIZE,
            inodes: None,
            apply: ApplyWhen::Never,
            export: None,
            exec: false,
        }
    }

    /// Where the sandbox sees it.
    pub fn dst(&self) -> &str {
        self.to.as_deref().unwrap_or(&self.path)
    }

    /// The inode limit of its tmpfs.
    pub fn inode_limit(&self) -> u64 {
        self.inodes.unwrap_or_else(|| default_tmpfs_inodes(self.size))
    }

    /// Check one entry: `(field, message)` on error.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let p = &self.path;
        if !p.starts_with('/') {
            return Err(("path", format!("{p:?}: expected an absolute host path")));
        }
        if p.contains('\0') {
            return Err(("path", "path contains NUL".to_string()));
        }
        let to_key = if self.to.is_some() { "to" } else { "path" };
        check_sandbox_path(self.dst()).map_err(|e| (to_key, e))?;
        if self.dst() == "/" {
            return Err((
                to_key,
                "the root is cordon's own empty tmpfs; a workspace goes below it".to_string(),
            ));
        }
        if self.size.bytes() < 1 << 20 {
            return Err(("size", "expected at least 1M".to_string()));
        }
        if let Some(n) = self.inodes {
            if !(16..=MAX_TMPFS_INODES).contains(&n) {
                return Err(("inodes", format!("expected 16 to {MAX_TMPFS_INODES} inodes")));
            }
        }
        if let Some(e) = &self.export {
            if e.is_empty() || e.contains('\0') {
                return Err(("export", "expected a non-empty path without NUL".to_string()));
            }
            if e.trim_end_matches('/').is_empty() {
                return Err(("export", "expected the path of a directory below /".to_string()));
            }
        }
        Ok(())
    }
}

/// Parse `SRC[:DST][:SIZE]` for `--workspace`: a second part starting with
/// '/' is the destination, otherwise the size.
pub fn parse_flag(arg: &str) -> Result<Workspace, String> {
    let parts: Vec<&str> = arg.split(':').collect();
    let bad = || format!("{arg:?}: expected SRC, SRC:DST, SRC:SIZE or SRC:DST:SIZE with absolute paths");
    let mut w = match parts.as_slice() {
        [src] => Workspace::new(src),
        [src, x] if x.starts_with('/') => Workspace {
            to: Some(x.to_string()),
            ..Workspace::new(src)
        },
        [src, size] => Workspace {
            size: size.parse().map_err(|e| format!("{arg:?}: {e}"))?,
            ..Workspace::new(src)
        },
        [src, dst, size] => Workspace {
            to: Some(dst.to_string()),
            size: size.parse().map_err(|e| format!("{arg:?}: {e}"))?,
            ..Workspace::new(src)
        },
        _ => return Err(bad()),
    };
    if w.path.is_empty() || w.to.as_deref() == Some("") {
        return Err(bad());
    }
    if w.to.as_deref() == Some(w.path.as_str()) {
        w.to = None;
    }
    w.check().map_err(|(_, m)| m)?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_destination_and_size() {
        let w = parse_flag("/src/p").unwrap();
        assert_eq!((w.dst(), w.size), ("/src/p", DEFAULT_WORKSPACE_SIZE));
        let w = parse_flag("/src/p:/work").unwrap();
        assert_eq!(w.dst(), "/work");
        let w = parse_flag("/src/p:64M").unwrap();
        assert_eq!((w.dst(), w.size), ("/src/p", Size(64 << 20)));
        let w = parse_flag("/src/p:/work:2G").unwrap();
        assert_eq!((w.dst(), w.size), ("/work", Size(2 << 30)));
        assert_eq!(w.inode_limit(), MAX_TMPFS_INODES.min((2u64 << 30) / 4096));
        for bad in [
            "",
            "rel",
            "/a:/b:1M:x",
            "/a:work",
            "/a:/b:lots",
            "/a::1M",
            "/a:/",
            "/a:/b/../c",
            "/a:1K",
        ] {
            assert!(parse_flag(bad).is_err(), "{bad} accepted");
        }
    }

    fn parse(json: &str) -> Result<crate::policy::Policy, crate::policy::PolicyError> {
        crate::policy::Policy::from_json("p.json", json)
    }

    #[test]
    fn policy_entries_get_defaults_and_errors_point_at_the_field() {
        let p = parse(r#"{"version": 1, "workspaces": [{"path": "/src/p"}]}"#).unwrap();
        assert_eq!(p.workspaces, vec![Workspace::new("/src/p")]);
        let p = parse(r#"{"version": 1, "workspaces": [{"path": "/src/p", "to": "/work", "size": "64M", "inodes": 1000, "apply": "on_success", "export": "/out", "exec": true}]}"#).unwrap();
        let w = &p.workspaces[0];
        assert_eq!(
            (w.dst(), w.size, w.inode_limit(), w.apply),
            ("/work", Size(64 << 20), 1000, ApplyWhen::OnSuccess)
        );
        let json = p.to_json_pretty();
        assert_eq!(parse(&json).unwrap(), p, "round trip");
        for (text, path, line) in [
            ("{\"version\": 1,\n\"workspaces\": [\n{\"path\": \"rel\"}]}", "workspaces[0].path", 3),
            ("{\"version\": 1,\n\"workspaces\": [{\"path\": \"/a\",\n\"to\": \"/w/../x\"}]}", "workspaces[0].to", 3),
            ("{\"version\": 1,\n\"workspaces\": [{\"path\": \"/a\",\n\"size\": \"4K\"}]}", "workspaces[0].size", 3),
            ("{\"version\": 1,\n\"workspaces\": [{\"path\": \"/a\",\n\"inodes\": 2}]}", "workspaces[0].inodes", 3),
            ("{\"version\": 1,\n\"workspaces\": [{\"path\": \"/a\",\n\"apply\": \"yes\"}]}", "workspaces[0].apply", 3),
            ("{\"version\": 1,\n\"workspaces\": [{\"path\": \"/a\",\n\"colour\": 1}]}", "workspaces[0].colour", 3),
            ("{\"version\": 1, \"mounts\": [{\"tmpfs\": \"/w/t\"}],\n\"workspaces\": [{\"path\": \"/a\", \"to\": \"/w\"}]}", "workspaces[0].to", 2),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.path, path, "{text}: {e}");
            assert_eq!(e.position.map(|p| p.0), Some(line), "{text}: {e}");
        }
        let five = r#"{"version": 1, "workspaces": [{"path": "/a", "to": "/1"}, {"path": "/a", "to": "/2"}, {"path": "/a", "to": "/3"}, {"path": "/a", "to": "/4"}, {"path": "/a", "to": "/5"}]}"#;
        assert_eq!(parse(five).unwrap_err().path, "workspaces[4]");
        // A workspace below a tmpfs is fine, and Landlock may name it.
        parse(r#"{"version": 1, "mounts": [{"tmpfs": "/w"}], "workspaces": [{"path": "/a", "to": "/w/p"}], "landlock": {"write": ["/w/p/x"]}}"#).unwrap();
    }

    #[test]
    fn flags_add_workspaces_set_apply_and_export_and_open_landlock() {
        use crate::policy::overrides::Overrides;
        let base = || crate::policy::Policy::builtin_default().unwrap();
        let ws = |arg: &str| (format!("--workspace {arg}"), parse_flag(arg).unwrap());
        let mut p = base();
        let o = Overrides {
            workspaces: vec![ws("/src/p:/work:64M")],
            apply: Some(ApplyWhen::OnSuccess),
            export_changes: Some("/out".to_string()),
            ..Overrides::default()
        };
        o.apply(&mut p, "p.json").unwrap();
        assert_eq!(p.workspaces.len(), 1);
        let w = &p.workspaces[0];
        assert_eq!(
            (w.dst(), w.apply, w.export.as_deref()),
            ("/work", ApplyWhen::OnSuccess, Some("/out"))
        );
        assert!(p.landlock.as_ref().unwrap().write.contains(&"/work".to_string()));
        // --apply and --export-changes need a workspace; --export-changes
        // exactly one.
        for (o, flag) in [
            (
                Overrides {
                    apply: Some(ApplyWhen::Always),
                    ..Overrides::default()
                },
                "--apply",
            ),
            (
                Overrides {
                    export_changes: Some("/out".to_string()),
                    ..Overrides::default()
                },
                "--export-changes",
            ),
            (
                Overrides {
                    workspaces: vec![ws("/a:/1"), ws("/a:/2")],
                    export_changes: Some("/out".to_string()),
                    ..Overrides::default()
                },
                "--export-changes",
            ),
            (
                Overrides {
                    workspaces: vec![ws("/a:/1"), ws("/a:/2"), ws("/a:/3"), ws("/a:/4"), ws("/a:/5")],
                    ..Overrides::default()
                },
                "--workspace /a:/5",
            ),
            (
                Overrides {
                    workspaces: vec![ws("/a:/tmp")],
                    ..Overrides::default()
                },
                "workspaces[0].to",
            ),
        ] {
            let e = o.apply(&mut base(), "p.json").unwrap_err();
            assert_eq!(e.path, flag, "{e}");
        }
    }

    #[test]
    fn apply_spellings_round_trip() {
        for a in [ApplyWhen::Never, ApplyWhen::OnSuccess, ApplyWhen::Always] {
            assert_eq!(a.name().parse::<ApplyWhen>(), Ok(a));
        }
        assert!("yes".parse::<ApplyWhen>().is_err());
    }
}
