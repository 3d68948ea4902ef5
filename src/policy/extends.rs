//! `"extends"`: a policy built on another one.
//!
//! The chain (a policy, the one it extends, the one that extends...) is read
//! first, then merged at the JSON level from the base up, before the typed
//! parse, so the strict unknown-field errors stay. The merge:
//!
//! - objects merge key by key (so do maps such as `env.set`);
//! - lists append, the inherited elements first; a string or number equal
//!   to an inherited one is not added twice; a list whose first element is
//!   `"!replace"` replaces the inherited list instead;
//! - anything else (numbers, strings, booleans, `null`, and a value of
//!   another type than the inherited one) replaces the inherited value;
//!   `null` thus removes an optional setting or section.
//!
//! A name in `extends` is looked up as for `--policy` (see [`super::named`]),
//! skipping the file that names it, so a policy may extend the one it
//! shadows; a built-in policy extends only built-in ones. A path is relative
//! to the directory of the file that names it. A cycle is refused with the
//! chain; so is a chain of more than [`MAX_EXTENDS_DEPTH`] policies. Every
//! error names the file, line and column the faulty value comes from.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::locate::{self, Seg};
use super::named::{self, Found, SearchPath};
use super::{char_position, check_arrays, read_bounded, strip_position, Policy, PolicyError};

/// The most policies one chain may hold (the policy and those it extends).
pub const MAX_EXTENDS_DEPTH: usize = 8;

/// The list marker that replaces an inherited list.
pub const REPLACE: &str = "!replace";

/// One policy of a chain.
struct Doc {
    /// How errors name it: a path or `<built-in NAME policy>`.
    label: String,
    text: String,
    value: Value,
    /// What identifies it for cycles: a canonical path or `builtin:NAME`.
    key: String,
    /// Its canonical path, for a file.
    canonical: Option<PathBuf>,
    /// The directory relative paths in its `extends` start from.
    dir: Option<PathBuf>,
    /// A built-in policy extends only built-in ones.
    builtin: bool,
}

/// A policy and the policies it extends, read but not yet merged.
pub struct Chain {
    docs: Vec<Doc>,
    /// The text is not a JSON object with `extends`: parsed as before.
    single: bool,
}

impl Chain {
    /// Read the policy file `path` and those it extends.
    pub fn from_file(path: &Path, search: &SearchPath) -> Result<Chain, PolicyError> {
        let label = path.display().to_string();
        let text = read_bounded(path).map_err(|message| PolicyError {
            file: label.clone(),
            path: String::new(),
            position: None,
            message,
        })?;
        let canonical = std::fs::canonicalize(path).ok();
        let doc = Doc {
            key: canonical
                .as_ref()
                .map_or_else(|| label.clone(), |c| c.display().to_string()),
            dir: Some(path.parent().unwrap_or(Path::new(".")).to_path_buf()),
            canonical,
            label,
            text,
            value: Value::Null,
            builtin: false,
        };
        Chain::follow(doc, search)
    }

    /// Read the policy text `text` (named `label` in errors; `builtin`: the
    /// built-in policy of that name) and those it extends; without a file,
    /// `extends` may only name policies `search` finds by name.
    pub fn from_text(
        label: &str,
        text: &str,
        builtin: Option<&str>,
        search: &SearchPath,
    ) -> Result<Chain, PolicyError> {
        let doc = Doc {
            label: label.to_string(),
            text: text.to_string(),
            value: Value::Null,
            key: builtin.map_or_else(|| label.to_string(), |n| format!("builtin:{n}")),
            canonical: None,
            dir: None,
            builtin: builtin.is_some(),
        };
        Chain::follow(doc, search)
    }

    fn follow(mut first: Doc, search: &SearchPath) -> Result<Chain, PolicyError> {
        // Without the key anywhere in it (and no \u escape, which could
        // spell it), a policy has no `extends`: the extra parse is for those
        // that may.
        let may_extend = first.text.contains("\"extends\"") || first.text.contains("\\u");
        match serde_json::from_str::<Value>(if may_extend { &first.text } else { "null" }) {
            Ok(v) if v.get("extends").is_some() => first.value = v,
            // Errors, and policies without extends, are parsed as before.
            _ => {
                return Ok(Chain {
                    docs: vec![first],
                    single: true,
                })
            }
        }
        let mut docs = vec![first];
        loop {
            let cur = docs.last().expect("the chain is never empty");
            let Some(spec) = cur.value.get("extends") else {
                break;
            };
            let fail = |message: String| PolicyError {
                file: cur.label.clone(),
                path: "extends".to_string(),
                position: locate::locate(&cur.text, &[Seg::Key("extends".into())]),
                message,
            };
            let Value::String(spec) = spec else {
                return Err(fail(
                    "expected the name or path of the policy this one extends".to_string(),
                ));
            };
            let next = resolve(cur, spec, search).map_err(fail)?;
            if let Some(at) = docs.iter().position(|d| d.key == next.key) {
                let chain: Vec<&str> = docs[at..]
                    .iter()
                    .map(|d| d.label.as_str())
                    .chain([next.label.as_str()])
                    .collect();
                return Err(fail(format!("\"extends\" makes a cycle: {}", chain.join(" -> "))));
            }
            if docs.len() >= MAX_EXTENDS_DEPTH {
                let chain: Vec<&str> = docs.iter().map(|d| d.label.as_str()).collect();
                return Err(fail(format!(
                    "more than {MAX_EXTENDS_DEPTH} policies extend one another: {} -> {} -> ...",
                    chain.join(" -> "),
                    next.label
                )));
            }
            docs.push(parsed(next)?);
        }
        Ok(Chain { docs, single: false })
    }

    /// Merge the chain and parse it: the policy and where its values came from.
    pub fn into_policy(self) -> Result<(Policy, Sources), PolicyError> {
        let files: Vec<(String, String)> = self.docs.into_iter().map(|d| (d.label, d.text)).collect();
        if self.single {
            let (label, text) = &files[0];
            let policy = Policy::from_json_single(label, text)?;
            return Ok((policy, Sources { files, tree: None }));
        }
        let mut merged: Option<(Value, Prov)> = None;
        for (i, (_, text)) in files.iter().enumerate().rev() {
            // Parsed once already, in `follow`.
            let value: Value = serde_json::from_str(text).unwrap_or_default();
            let prov = track(&value, i, 0);
            merged = Some(merge(merged, value, prov));
        }
        let (mut value, mut tree) = merged.expect("a chain has a policy");
        if let (Value::Object(m), Prov::Obj(_, p)) = (&mut value, &mut tree) {
            m.remove("extends");
            p.remove("extends");
        }
        let sources = Sources {
            files,
            tree: Some(tree),
        };
        // Read from text, as a single file is: deserializing from a Value
        // would compile the whole model's deserializers a second time.
        let merged_text = value.to_string();
        let mut de = serde_json::Deserializer::from_str(&merged_text);
        let mut policy: Policy = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let message = strip_position(&e.into_inner().to_string());
            sources.place(&path, message)
        })?;
        check_arrays(&merged_text)
            .map_err(|path| sources.place(&path, "expected an object, found an array".to_string()))?;
        policy.settle_network();
        policy.validate().map_err(|f| sources.place(&f.path, f.message))?;
        Ok((policy, sources))
    }
}

/// The policy `spec` names, from the policy `cur`.
fn resolve(cur: &Doc, spec: &str, search: &SearchPath) -> Result<Doc, String> {
    let path = if named::is_name(spec) {
        let builtin_only = SearchPath::builtin_only();
        let search = if cur.builtin { &builtin_only } else { search };
        match search.find(spec, cur.canonical.as_deref())? {
            Found::BuiltIn(name) => {
                return Ok(Doc {
                    label: named::builtin_label(name),
                    text: named::builtin(name).unwrap_or_default().to_string(),
                    value: Value::Null,
                    key: format!("builtin:{name}"),
                    canonical: None,
                    dir: None,
                    builtin: true,
                })
            }
            Found::File(p) => p,
        }
    } else if cur.builtin {
        return Err(format!(
            "{spec:?}: a built-in policy extends only built-in policies, by name"
        ));
    } else {
        match &cur.dir {
            Some(dir) => dir.join(spec),
            None => {
                return Err(format!(
                    "{spec:?} is a path, but this policy is not a file: it may only extend a built-in policy, by name"
                ))
            }
        }
    };
    let label = path.display().to_string();
    let text = read_bounded(&path).map_err(|e| format!("{label}: {e}"))?;
    let canonical = std::fs::canonicalize(&path).ok();
    Ok(Doc {
        key: canonical
            .as_ref()
            .map_or_else(|| label.clone(), |c| c.display().to_string()),
        dir: Some(path.parent().unwrap_or(Path::new(".")).to_path_buf()),
        canonical,
        label,
        text,
        value: Value::Null,
        builtin: false,
    })
}

/// `doc` with its text parsed: a JSON object, or an error in that file.
fn parsed(mut doc: Doc) -> Result<Doc, PolicyError> {
    match serde_json::from_str::<Value>(&doc.text) {
        Ok(v @ Value::Object(_)) => {
            doc.value = v;
            Ok(doc)
        }
        Ok(_) => Err(PolicyError {
            file: doc.label,
            path: String::new(),
            position: Some((1, 1)),
            message: "expected a policy object".to_string(),
        }),
        Err(e) => Err(PolicyError {
            position: char_position(&doc.text, e.line(), e.column()),
            file: doc.label,
            path: String::new(),
            message: strip_position(&e.to_string()),
        }),
    }
}

/// Where a value of the merged policy came from: the file (its index in the
/// chain) and, for a list element, its index in that file's list. Objects
/// merge only with objects at the same keys and list elements never merge,
/// so the value's path in its file is the merged path with each list index
/// replaced by the element's own.
#[derive(Clone, Copy, Debug)]
struct Origin {
    file: usize,
    index: usize,
}

/// The merged policy's shape, with the origin of every value.
#[derive(Clone, Debug)]
enum Prov {
    Leaf(Origin),
    Arr(Origin, Vec<Prov>),
    Obj(Origin, BTreeMap<String, Prov>),
}

impl Prov {
    fn origin(&self) -> Origin {
        match self {
            Prov::Leaf(o) | Prov::Arr(o, _) | Prov::Obj(o, _) => *o,
        }
    }

    /// The file of the value at `path` of the merged policy, and its path there.
    fn find(&self, path: &[Seg]) -> Option<(usize, Vec<Seg>)> {
        let mut node = self;
        let mut there = Vec::with_capacity(path.len());
        for seg in path {
            node = match (node, seg) {
                (Prov::Obj(_, m), Seg::Key(k)) => {
                    there.push(Seg::Key(k.clone()));
                    m.get(k)?
                }
                (Prov::Arr(_, v), Seg::Index(i)) => {
                    let n = v.get(*i)?;
                    there.push(Seg::Index(n.origin().index));
                    n
                }
                _ => return None,
            };
        }
        Some((node.origin().file, there))
    }
}

fn track(v: &Value, file: usize, index: usize) -> Prov {
    let origin = Origin { file, index };
    match v {
        Value::Object(m) => Prov::Obj(
            origin,
            m.iter().map(|(k, x)| (k.clone(), track(x, file, 0))).collect(),
        ),
        Value::Array(a) => Prov::Arr(
            origin,
            a.iter().enumerate().map(|(i, x)| track(x, file, i)).collect(),
        ),
        _ => Prov::Leaf(origin),
    }
}

/// `over` (with its origins `op`) merged onto `base`; see the module doc.
fn merge(base: Option<(Value, Prov)>, over: Value, op: Prov) -> (Value, Prov) {
    match (over, op) {
        (Value::Object(om), Prov::Obj(origin, mut opm)) => {
            let (mut bm, mut bp) = match base {
                Some((Value::Object(bm), Prov::Obj(_, bp))) => (bm, bp),
                _ => (Map::new(), BTreeMap::new()),
            };
            for (k, v) in om {
                let Some(p) = opm.remove(&k) else { continue };
                let b = bm.remove(&k).zip(bp.remove(&k));
                let (mv, mp) = merge(b, v, p);
                bm.insert(k.clone(), mv);
                bp.insert(k, mp);
            }
            (Value::Object(bm), Prov::Obj(origin, bp))
        }
        (Value::Array(items), Prov::Arr(origin, provs)) => {
            let replace = items.first().is_some_and(|x| x == REPLACE);
            let (mut vals, mut ps) = match base {
                Some((Value::Array(v), Prov::Arr(_, p))) if !replace => (v, p),
                _ => (Vec::new(), Vec::new()),
            };
            let key = |v: &Value| match v {
                Value::String(_) | Value::Number(_) => Some(v.to_string()),
                _ => None,
            };
            let mut seen: HashSet<String> = vals.iter().filter_map(key).collect();
            for (v, p) in items.into_iter().zip(provs).skip(usize::from(replace)) {
                if let Some(k) = key(&v) {
                    if !seen.insert(k) {
                        continue;
                    }
                }
                let (v, p) = merge(None, v, p);
                vals.push(v);
                ps.push(p);
            }
            (Value::Array(vals), Prov::Arr(origin, ps))
        }
        (over, op) => (over, op),
    }
}

/// The files a policy was read from, and where each of its values came
/// from, to place errors found later (when host paths are resolved).
#[derive(Clone, Debug)]
pub struct Sources {
    /// Label and text of each file of the chain, the policy itself first.
    files: Vec<(String, String)>,
    /// None: a single file, whose paths are those of the policy.
    tree: Option<Prov>,
}

impl Sources {
    /// A policy read from one text.
    pub fn single(label: &str, text: &str) -> Sources {
        Sources {
            files: vec![(label.to_string(), text.to_string())],
            tree: None,
        }
    }

    /// The name of the policy (its first file).
    pub fn label(&self) -> &str {
        &self.files[0].0
    }

    /// The text of the policy's own file.
    pub fn text(&self) -> &str {
        &self.files[0].1
    }

    /// The files of the chain: the policy first, then those it extends.
    pub fn chain(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.0.as_str()).collect()
    }

    /// Place an error about the loaded policy (found after parsing) in the
    /// file its value came from: file, path there, line and column.
    pub fn locate(&self, e: PolicyError) -> PolicyError {
        if e.position.is_some() || e.file != self.label() || e.path.is_empty() {
            return e;
        }
        match &self.tree {
            None => e.located_in(self.label(), self.text()),
            Some(_) => {
                let placed = self.place(&e.path, e.message.clone());
                if placed.position.is_some() {
                    placed
                } else {
                    e
                }
            }
        }
    }

    /// An error at `path` of the merged policy, in the file its value came from.
    fn place(&self, path: &str, message: String) -> PolicyError {
        let path = if path == "." || path == "?" { "" } else { path };
        let mut segs = locate::parse_path(path);
        // An unknown field is reported at its object: point at the field.
        if let Some(key) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(key, _)| key.to_string())
        {
            segs.push(Seg::Key(key));
            if self.tree.as_ref().and_then(|t| t.find(&segs)).is_none() {
                segs.pop();
            }
        }
        match self.tree.as_ref().and_then(|t| t.find(&segs)) {
            Some((f, there)) => {
                let (file, text) = &self.files[f];
                PolicyError {
                    file: file.clone(),
                    path: render(&there),
                    position: locate::locate(text, &there),
                    message,
                }
            }
            None => PolicyError {
                file: self.label().to_string(),
                path: path.to_string(),
                position: None,
                message,
            },
        }
    }
}

/// A path as errors print it: `mounts[2].bind`.
fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("cordon-extends-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn load(p: &Path, search: &SearchPath) -> Result<(Policy, Sources), PolicyError> {
        Chain::from_file(p, search).and_then(Chain::into_policy)
    }

    fn none() -> SearchPath {
        SearchPath::builtin_only()
    }

    #[test]
    fn lists_append_maps_merge_scalars_override() {
        let d = Dir::new("merge");
        d.write(
            "base.json",
            r#"{"version": 1, "description": "base", "hostname": "base",
                "mounts": [{"bind": "/usr"}, {"tmpfs": "/tmp"}],
                "env": {"keep": ["TERM"], "set": {"A": "1", "B": "2"}},
                "limits": {"memory": "1G", "pids": 10},
                "landlock": {"read": ["/usr"], "write": ["/tmp"]}}"#,
        );
        let top = d.write(
            "top.json",
            r#"{"version": 1, "extends": "base.json", "hostname": "top",
                "mounts": [{"tmpfs": "/work"}],
                "env": {"keep": ["TERM", "LANG"], "set": {"B": "3"}},
                "limits": {"memory": null, "pids": 20},
                "landlock": {"read": ["!replace", "/"]}}"#,
        );
        let (p, sources) = load(&top, &none()).unwrap();
        assert_eq!(p.hostname.as_deref(), Some("top"));
        assert_eq!(p.description.as_deref(), Some("base"));
        let dsts: Vec<&str> = p.mounts.iter().map(|m| m.dst()).collect();
        assert_eq!(dsts, ["/usr", "/tmp", "/work"]);
        assert_eq!(p.env.keep, ["TERM", "LANG"]);
        assert_eq!(p.env.set["A"], "1");
        assert_eq!(p.env.set["B"], "3");
        assert_eq!(p.limits.memory, None);
        assert_eq!(p.limits.pids, Some(20));
        let ll = p.landlock.as_ref().unwrap();
        assert_eq!(ll.read, ["/"]);
        assert_eq!(ll.write, ["/tmp"]);
        assert_eq!(sources.chain().len(), 2);
    }

    #[test]
    fn errors_point_into_the_file_the_value_came_from() {
        let d = Dir::new("errors");
        d.write(
            "base.json",
            "{\"version\": 1,\n \"mounts\": [{\"bind\": \"/usr\"},\n  {\"tmpfs\": \"/tmp\", \"size\": \"lots\"}]}",
        );
        let top = d.write(
            "top.json",
            "{\"version\": 1, \"extends\": \"base.json\",\n \"mounts\": [{\"bind\": \"/opt\"}]}",
        );
        let e = load(&top, &none()).unwrap_err();
        assert_eq!(e.file, d.0.join("base.json").display().to_string());
        assert_eq!(e.path, "mounts[1].size");
        assert_eq!(e.position, Some((3, 29)), "{e}");

        // Unknown fields stay refused, in the file that has them.
        d.write("base.json", "{\"version\": 1}");
        let top = d.write(
            "top.json",
            "{\"version\": 1, \"extends\": \"base.json\",\n \"limits\": {\"memroy\": \"1G\"}}",
        );
        let e = load(&top, &none()).unwrap_err();
        assert_eq!(e.file, top.display().to_string());
        assert!(e.message.contains("unknown field `memroy`"), "{e}");
        assert_eq!(e.path, "limits.memroy", "{e}");
        assert_eq!(e.position, Some((2, 23)), "{e}");

        // Validation findings too, and later errors through Sources.
        d.write(
            "base.json",
            "{\"version\": 1,\n\n \"mounts\": [{\"bind\": \"/nonexistent-src\", \"to\": \"/x\"}]}",
        );
        let top = d.write("top.json", "{\"version\": 1, \"extends\": \"base.json\"}");
        let (_, sources) = load(&top, &none()).unwrap();
        let later = PolicyError {
            file: top.display().to_string(),
            path: "mounts[0].bind".to_string(),
            position: None,
            message: "no such file".to_string(),
        };
        let placed = sources.locate(later);
        assert_eq!(placed.file, d.0.join("base.json").display().to_string());
        assert_eq!(placed.position, Some((3, 22)), "{placed}");
    }

    #[test]
    fn cycles_are_refused_with_the_chain() {
        let d = Dir::new("cycle");
        let a = d.write("a.json", r#"{"version": 1, "extends": "b.json"}"#);
        d.write("b.json", r#"{"version": 1, "extends": "./a.json"}"#);
        let e = load(&a, &none()).unwrap_err();
        let (a_s, b_s) = (
            d.0.join("a.json").display().to_string(),
            d.0.join("b.json").display().to_string(),
        );
        assert_eq!(e.file, b_s);
        assert_eq!(e.path, "extends");
        assert_eq!(e.position, Some((1, 27)));
        assert_eq!(
            e.message,
            format!(
                "\"extends\" makes a cycle: {a_s} -> {b_s} -> {}",
                d.0.join("./a.json").display()
            )
        );
        let selfish = d.write("s.json", r#"{"version": 1, "extends": "s.json"}"#);
        let e = load(&selfish, &none()).unwrap_err();
        assert!(e.message.contains("makes a cycle"), "{e}");
    }

    #[test]
    fn depth_is_bounded() {
        let d = Dir::new("depth");
        for i in 0..20 {
            d.write(
                &format!("p{i}.json"),
                &format!(r#"{{"version": 1, "extends": "p{}.json"}}"#, i + 1),
            );
        }
        d.write("p20.json", r#"{"version": 1}"#);
        let e = load(&d.0.join("p0.json"), &none()).unwrap_err();
        assert!(
            e.message.starts_with("more than 8 policies extend one another: "),
            "{e}"
        );
        let ok = load(&d.0.join("p13.json"), &none()).unwrap();
        assert_eq!(ok.1.chain().len(), 8);
    }

    #[test]
    fn names_and_builtins() {
        let d = Dir::new("names");
        // A policy that shadows a built-in one may extend it by its own name.
        let shell = d.write(
            "shell.json",
            r#"{"version": 1, "extends": "shell", "hostname": "mine"}"#,
        );
        let search = SearchPath {
            dirs: vec![d.0.clone()],
        };
        let (p, sources) = load(&shell, &search).unwrap();
        assert_eq!(p.hostname.as_deref(), Some("mine"));
        assert!(
            sources.chain().contains(&"<built-in shell policy>"),
            "{:?}",
            sources.chain()
        );

        let e = load(
            &d.write("x.json", r#"{"version": 1, "extends": "pythn"}"#),
            &search,
        )
        .unwrap_err();
        assert!(e.message.contains("did you mean \"python\""), "{e}");
        let e = load(&d.write("y.json", r#"{"version": 1, "extends": 3}"#), &search).unwrap_err();
        assert_eq!(e.path, "extends");
        let e = load(
            &d.write("z.json", r#"{"version": 1, "extends": "missing.json"}"#),
            &search,
        )
        .unwrap_err();
        assert!(e.message.contains("cannot read policy file"), "{e}");

        // Policy text that is not a file extends built-in policies only.
        let p = Policy::from_json("t", r#"{"version": 1, "extends": "default", "hostname": "t"}"#).unwrap();
        assert_eq!(p.hostname.as_deref(), Some("t"));
        assert!(!p.mounts.is_empty());
        let e = Policy::from_json("t", r#"{"version": 1, "extends": "/etc/passwd"}"#).unwrap_err();
        assert!(e.message.contains("not a file"), "{e}");
        // The merged policy serializes without extends and parses back equal.
        let again = Policy::from_json("u", &p.to_json_pretty()).unwrap();
        assert_eq!(again, p);
    }
}
