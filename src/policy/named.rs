//! Policies by name: `--policy NAME` and `"extends": "NAME"`.
//!
//! A name is looked up, in this order, as `./NAME.json`,
//! `$XDG_CONFIG_HOME/cordon/policies/NAME.json` (default
//! `~/.config/cordon/policies`), `/etc/cordon/policies/NAME.json`, then among
//! the built-in policies (compiled in from `policies/`). The first found
//! wins; the others are *shadowed*. Anything that is not a name (it holds a
//! `/` or ends in `.json`) is a path, as before.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::extends::{Chain, Sources};
use super::{read_bounded, Policy, PolicyError, DEFAULT_POLICY_JSON, EXEC_POLICY_JSON};

/// What the built-in policies without a `description` of their own are for
/// (their files are quoted elsewhere, e.g. in cordon-policy(5)).
const BUILTIN_DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "default",
        "The policy used without --policy: no network, /usr read-only, a 64M /tmp, seccomp and Landlock",
    ),
    (
        "exec",
        "The default for cordon exec: the default policy without a pid namespace or /proc",
    ),
    (
        "tool-python",
        "A short-lived tool run by a supervisor: 30s, 512M, refused calls reported",
    ),
];

/// The built-in policies: name and text, sorted by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("build", include_str!("../../policies/build.json")),
    ("default", DEFAULT_POLICY_JSON),
    ("exec", EXEC_POLICY_JSON),
    ("http-client", include_str!("../../policies/http-client.json")),
    ("limited", include_str!("../../policies/limited.json")),
    ("node", include_str!("../../policies/node.json")),
    ("python", include_str!("../../policies/python.json")),
    (
        "readonly-inspect",
        include_str!("../../policies/readonly-inspect.json"),
    ),
    ("sandboxed", include_str!("../../policies/sandboxed.json")),
    ("shell", include_str!("../../policies/shell.json")),
    ("standard", include_str!("../../policies/standard.json")),
    ("tool-python", include_str!("../../policies/tool-python.json")),
    ("untrusted", include_str!("../../policies/untrusted.json")),
];

/// The text of the built-in policy `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// How a built-in policy is named in errors: `<built-in NAME policy>`.
pub fn builtin_label(name: &str) -> String {
    format!("<built-in {name} policy>")
}

/// Longest policy name.
const MAX_NAME: usize = 64;

/// The largest file the listing reads for its description (1 MiB).
const MAX_DESCRIBED: u64 = 1 << 20;

/// Most entries read from one directory when listing.
const MAX_LISTED: usize = 1000;

/// Whether `spec` is a policy name rather than a path: letters, digits, `-`,
/// `_` and `.`, not starting with `.`, not ending in `.json`, at most 64
/// characters.
pub fn is_name(spec: &str) -> bool {
    !spec.is_empty()
        && spec.len() <= MAX_NAME
        && !spec.starts_with('.')
        && !spec.ends_with(".json")
        && spec
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Where a named policy was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A file of one of the search directories.
    File(PathBuf),
    /// A built-in policy, by name.
    BuiltIn(&'static str),
}

impl Found {
    /// How the listing and errors show it.
    pub fn label(&self) -> String {
        match self {
            Found::File(p) => p.display().to_string(),
            Found::BuiltIn(n) => builtin_label(n),
        }
    }
}

/// The directories searched for a policy by name, before the built-in ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPath {
    /// In order of precedence.
    pub dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// `.`, `$XDG_CONFIG_HOME/cordon/policies` (an absolute
    /// `$XDG_CONFIG_HOME`, else `$HOME/.config`) and `/etc/cordon/policies`.
    pub fn from_env() -> SearchPath {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|h| h.join(".config"))
            });
        let mut dirs = vec![PathBuf::from(".")];
        dirs.extend(config.map(|c| c.join("cordon/policies")));
        dirs.push(PathBuf::from("/etc/cordon/policies"));
        SearchPath { dirs }
    }

    /// Only the built-in policies (for built-in policies and policy text
    /// that is not a file).
    pub fn builtin_only() -> SearchPath {
        SearchPath { dirs: Vec::new() }
    }

    /// Every place `name` is found, in order of precedence.
    pub fn candidates(&self, name: &str) -> Vec<Found> {
        let mut out: Vec<Found> = self
            .dirs
            .iter()
            .map(|d| d.join(format!("{name}.json")))
            .filter(|p| p.is_file())
            .map(Found::File)
            .collect();
        if let Some((n, _)) = BUILTIN.iter().find(|(n, _)| *n == name) {
            out.push(Found::BuiltIn(n));
        }
        out
    }

    /// The policy `name` stands for: the first candidate that is not
    /// `skip` (the policy that names it in `extends`, so that a policy may
    /// extend the one it shadows).
    pub fn find(&self, name: &str, skip: Option<&Path>) -> Result<Found, String> {
        let same = |p: &Path| skip.is_some_and(|s| std::fs::canonicalize(p).is_ok_and(|c| c == s));
        self.candidates(name)
            .into_iter()
            .find(|f| !matches!(f, Found::File(p) if same(p)))
            .ok_or_else(|| self.not_found(name))
    }

    fn not_found(&self, name: &str) -> String {
        let mut looked: Vec<String> = self
            .dirs
            .iter()
            .map(|d| d.join(format!("{name}.json")).display().to_string())
            .collect();
        looked.push("the built-in policies".to_string());
        let hint = suggest(name, self.list().iter().map(|l| l.name.as_str()))
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        format!(
            "no policy named \"{name}\"{hint}: looked for {}; `cordon policies` lists them",
            looked.join(", ")
        )
    }

    /// Every policy that can be named: the winners sorted by name, each
    /// followed by those it shadows.
    pub fn list(&self) -> Vec<Listed> {
        let mut all: Vec<(String, usize, Listed)> = Vec::new();
        for (rank, dir) in self.dirs.iter().enumerate() {
            let cwd = dir.as_path() == Path::new(".");
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten().take(MAX_LISTED) {
                let path = e.path();
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".json"))
                    .filter(|n| is_name(n))
                else {
                    continue;
                };
                if !path.is_file() {
                    continue;
                }
                let description = describe_file(&path);
                // In the working directory only files that look like
                // policies count (package.json is not one).
                if cwd && description.is_err() {
                    continue;
                }
                let description = description.unwrap_or_else(|e| format!("(unusable: {e})"));
                all.push((
                    name.to_string(),
                    rank,
                    Listed {
                        name: name.to_string(),
                        from: Found::File(path).label(),
                        description,
                        shadowed_by: None,
                    },
                ));
            }
        }
        for (name, text) in BUILTIN {
            all.push((
                name.to_string(),
                self.dirs.len(),
                Listed {
                    name: name.to_string(),
                    from: "built-in".to_string(),
                    description: builtin_description(name, text),
                    shadowed_by: None,
                },
            ));
        }
        all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let mut out: Vec<Listed> = Vec::with_capacity(all.len());
        let mut winner: Option<(String, String)> = None;
        for (name, _, mut l) in all {
            match &winner {
                Some((n, from)) if *n == name => l.shadowed_by = Some(from.clone()),
                _ => winner = Some((name, l.from.clone())),
            }
            out.push(l);
        }
        out
    }
}

/// One line of `cordon policies`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The name (`--policy NAME`).
    pub name: String,
    /// The file, or `built-in`.
    pub from: String,
    /// Its `description` (or what it extends).
    pub description: String,
    /// The place that wins over this one, if any.
    pub shadowed_by: Option<String>,
}

/// The listing as text: a header, then one line per policy.
pub fn listing_text(list: &[Listed]) -> String {
    let name_w = list.iter().map(|l| l.name.len()).max().unwrap_or(4).max(4);
    let from_w = list.iter().map(|l| l.from.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:name_w$}  {:from_w$}  DESCRIPTION\n", "NAME", "FROM");
    for l in list {
        let desc = match &l.shadowed_by {
            Some(by) => format!("(shadowed by {by}) {}", l.description),
            None => l.description.clone(),
        };
        out.push_str(format!("{:name_w$}  {:from_w$}  {desc}", l.name, l.from).trim_end());
        out.push('\n');
    }
    out
}

/// The description of a built-in policy.
fn builtin_description(name: &str, text: &str) -> String {
    let own = serde_json::from_str(text)
        .ok()
        .and_then(|v| describe(&v).ok())
        .filter(|d| !d.is_empty() && !d.starts_with("(extends "));
    own.or_else(|| {
        BUILTIN_DESCRIPTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.to_string())
    })
    .unwrap_or_default()
}

/// The description of a policy file: its `description`, or what it extends.
fn describe_file(path: &Path) -> Result<String, String> {
    // Listing reads every file of the directories: real policies are a few KiB.
    let len = std::fs::metadata(path)
        .map_err(|e| super::io_error_text(&e))?
        .len();
    if len > MAX_DESCRIBED {
        return Err(format!("{len} bytes, more than the listing reads"));
    }
    let text = read_bounded(path)?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    describe(&v)
}

fn describe(v: &Value) -> Result<String, String> {
    let obj = v.as_object().ok_or("not a JSON object")?;
    if !obj.get("version").is_some_and(Value::is_u64) {
        return Err("no \"version\"".to_string());
    }
    Ok(match (obj.get("description"), obj.get("extends")) {
        (Some(Value::String(d)), _) => first_line(d),
        (_, Some(Value::String(e))) => format!("(extends {e})"),
        _ => String::new(),
    })
}

/// The first line of `s`, at most 100 characters, without control characters.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    let mut out: String = line.chars().filter(|c| !c.is_control()).take(100).collect();
    if line.chars().count() > 100 {
        out.push('…');
    }
    out
}

/// The closest of `names` to `name`, when it is close enough to be a typo.
fn suggest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    names
        .map(|n| (distance(name, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min()
        .map(|(_, n)| n.to_string())
}

/// Levenshtein distance (names are at most 64 characters).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Load the policy `spec` names: a policy name (see [`is_name`]) looked up
/// in `search`, or a path. A name found nowhere that is an existing file
/// is read as a path (as before names existed). Returns the policy, the
/// name errors give it, and its sources (to place later errors).
pub fn load(spec: &Path, search: &SearchPath) -> Result<(Policy, Sources), PolicyError> {
    let as_name = spec.to_str().filter(|s| is_name(s));
    let found = match as_name {
        Some(name) => match search.find(name, None) {
            Ok(f) => f,
            Err(_) if spec.is_file() => Found::File(spec.to_path_buf()),
            Err(message) => {
                return Err(PolicyError {
                    file: "--policy".to_string(),
                    path: String::new(),
                    position: None,
                    message,
                })
            }
        },
        None => Found::File(spec.to_path_buf()),
    };
    match found {
        Found::File(p) => Chain::from_file(&p, search).and_then(Chain::into_policy),
        Found::BuiltIn(name) => {
            let text = builtin(name).unwrap_or_default();
            let label = if name == "default" {
                super::DEFAULT_POLICY_NAME.to_string()
            } else {
                builtin_label(name)
            };
            Chain::from_text(&label, text, Some(name), &SearchPath::builtin_only())
                .and_then(Chain::into_policy)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        for n in ["shell", "http-client", "my_policy", "v1.2", "a"] {
            assert!(is_name(n), "{n}");
        }
        for p in [
            "",
            "./shell",
            "shell.json",
            "a/b",
            "/etc/x",
            ".hidden",
            "..",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(!is_name(p), "{p}");
        }
    }

    #[test]
    fn every_builtin_policy_loads() {
        for (name, text) in BUILTIN {
            load(Path::new(name), &SearchPath::builtin_only()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!builtin_description(name, text).is_empty(), "{name}");
        }
    }

    #[test]
    fn search_order_and_shadowing() {
        let base = std::env::temp_dir().join(format!("cordon-named-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let pol = |desc: &str| format!(r#"{{"version": 1, "description": "{desc}", "hostname": "{desc}"}}"#);
        std::fs::write(a.join("shell.json"), pol("from-a")).unwrap();
        std::fs::write(b.join("shell.json"), pol("from-b")).unwrap();
        std::fs::write(b.join("mine.json"), pol("mine")).unwrap();
        std::fs::write(b.join("junk.json"), "[").unwrap();
        let search = SearchPath {
            dirs: vec![a.clone(), b.clone()],
        };
        assert_eq!(search.find("shell", None), Ok(Found::File(a.join("shell.json"))));
        let skip = std::fs::canonicalize(a.join("shell.json")).unwrap();
        assert_eq!(
            search.find("shell", Some(&skip)),
            Ok(Found::File(b.join("shell.json")))
        );
        assert_eq!(search.find("python", None), Ok(Found::BuiltIn("python")));
        let (p, _) = load(Path::new("shell"), &search).unwrap();
        assert_eq!(p.hostname.as_deref(), Some("from-a"));

        let e = search.find("pyhton", None).unwrap_err();
        assert!(
            e.contains("no policy named \"pyhton\" (did you mean \"python\"?)"),
            "{e}"
        );
        assert!(e.contains(&format!("{}", a.join("pyhton.json").display())), "{e}");

        let list = search.list();
        let shells: Vec<_> = list.iter().filter(|l| l.name == "shell").collect();
        assert_eq!(shells.len(), 3, "{list:?}");
        assert_eq!(shells[0].description, "from-a");
        assert_eq!(shells[0].shadowed_by, None);
        assert_eq!(shells[1].shadowed_by.as_deref(), Some(shells[0].from.as_str()));
        assert_eq!(shells[2].from, "built-in");
        let junk = list.iter().find(|l| l.name == "junk").expect("junk listed");
        assert!(junk.description.starts_with("(unusable: "), "{junk:?}");
        let text = listing_text(&list);
        assert!(text.starts_with("NAME "), "{text}");
        assert!(text.contains("(shadowed by "), "{text}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
