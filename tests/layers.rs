//! The library's modules depend on each other downward only: no import
//! cycles, and every dependency goes from a higher layer to a lower one (or
//! stays within one layer).
//!
//! The graph is read from the source: every `crate::x` path (in `use`
//! lines, `use crate::{x, y}` groups and inline paths) in `src/x.rs` or
//! `src/x/**.rs` is an edge from the top-level module of the file to `x`.
//! Comments, string literals, files named `tests.rs` and items under
//! `#[cfg(test)]` are not read: a test may reach anywhere. The binary
//! (`src/main.rs`, `src/cli/`) sits above the whole library and is not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The declared layering, lowest first. A module may depend on modules of its
/// own layer or of a lower one. Every library module must be listed.
const LAYERS: &[&[&str]] = &[
    // raw system calls, and a digest
    &["sys", "sha256"],
    // data that every layer reports or fails with
    &["error", "probe", "sensitive", "secret"],
    // the pure policy model, and what a run reports
    &["policy", "outcome", "output"],
    // the audit trail (events of a run, written to a log opened before it)
    &["audit"],
    // the isolation layers (and workspaces: read, export, apply)
    &["landlock", "seccomp", "cgroup", "isolate", "net", "workspace"],
    // the child plan, compiled in the parent
    &["plan"],
    // the clone child and the supervisor
    &["launch"],
    // the library surface
    &["embed"],
    // `cordon features`: the aggregate of the layers' probes
    &["features"],
];

/// Edges that break the layering today and are removed by work in progress
/// elsewhere. Each one must still exist: when it is gone, this test fails
/// so the entry is deleted (and the rule tightens by itself).
const TEMPORARY_EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "policy",
        "seccomp",
        "Policy holds seccomp::SeccompPolicy, whose actions are seccomp::ir::Action and whose errno \
         names come from seccomp::names: the section's model moves into policy/ after the syscall-table rewrite",
    ),
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `text` without comments, string and char literals (each replaced by a
/// space, so tokens stay apart).
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                out.push(' ');
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // raw string r"…" or r#"…"#
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'"'
                        && b[j + 1..].iter().take(hashes).filter(|&&c| c == b'#').count() == hashes
                    {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                out.push(' ');
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push(' ');
            }
            b'\'' => {
                // a char literal ('x', '\n', '\u{..}'), or a lifetime
                if b.get(i + 1) == Some(&b'\\') {
                    // skip the escaped character itself: '\'' is one literal
                    let mut j = i + 3;
                    while j < b.len() && b[j] != b'\'' {
                        j += 1;
                    }
                    i = j + 1;
                    out.push(' ');
                } else if let Some(c) = text[i + 1..].chars().next() {
                    let after = i + 1 + c.len_utf8();
                    if b.get(after) == Some(&b'\'') {
                        i = after + 1;
                        out.push(' ');
                    } else {
                        out.push('\'');
                        i += 1;
                    }
                } else {
                    i += 1;
                }
            }
            _ => {
                let c = text[i..].chars().next().expect("char boundary");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// `code` without the items under `#[cfg(test)]` (through the end of the
/// item: its `;` or its matching `}`).
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        let b = item.as_bytes();
        let mut i = 0;
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                b';' if depth == 0 => {
                    i += 1;
                    break;
                }
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        rest = &item[i..];
    }
    out.push_str(rest);
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first identifiers after each `crate::` in `code` (each item of a
/// `crate::{…}` group counts).
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(p) = code[at..].find("crate::") {
        let start = at + p;
        at = start + "crate::".len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::`, `my_crate::`
        }
        let rest = code[at..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // top-level items of the group
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        if depth == 0 {
                            found.push(ident_at(&group[i..]).to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident_at(rest).to_string());
        }
    }
    found
}

/// Names re-exported at the crate root (`pub use module::{a, b}`), to the
/// module they come from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let stmt = stmt.trim();
        let Some(path) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let module = ident_at(path).to_string();
        let rest = &path[module.len()..];
        let names = rest.trim_start_matches("::");
        let names = names.trim_start_matches('{').trim_end_matches('}');
        for n in names.split(',') {
            let n = n.trim();
            let last = n.rsplit("::").next().unwrap_or(n);
            let name = last.rsplit(" as ").next().unwrap_or(last).trim();
            if !name.is_empty() {
                map.insert(name.to_string(), module.clone());
            }
        }
    }
    map
}

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// module → module it uses → the files that use it.
fn module_graph() -> (BTreeSet<String>, Graph) {
    let src = src_dir();
    let lib = strip(&fs::read_to_string(src.join("lib.rs")).expect("read lib.rs"));
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_string)
        })
        .collect();
    assert!(modules.len() > 5, "lib.rs declares too few modules: {modules:?}");
    let reexports = root_reexports(&lib);

    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("component");
        let first = first.as_os_str().to_str().expect("utf-8 path");
        let module = first.strip_suffix(".rs").unwrap_or(first);
        if !modules.contains(module) || file.file_name().is_some_and(|n| n == "tests.rs") {
            continue; // lib.rs, main.rs, the binary's modules, unit tests
        }
        let text = fs::read_to_string(&file).expect("read source");
        let code = without_tests(&strip(&text));
        for name in crate_paths(&code) {
            let target = if modules.contains(&name) {
                name
            } else if let Some(m) = reexports.get(&name) {
                m.clone()
            } else {
                panic!(
                    "{}: crate::{name} is neither a module nor a root re-export",
                    rel.display()
                );
            };
            if target != module {
                graph
                    .entry(module.to_string())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    (modules, graph)
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(modules: &BTreeSet<String>, edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        out: Vec<Vec<String>>,
    }
    fn visit(s: &mut State, v: &str) {
        let n = s.index.len();
        s.index.insert(v.to_string(), n);
        s.low.insert(v.to_string(), n);
        s.stack.push(v.to_string());
        s.on_stack.insert(v.to_string());
        let next: Vec<String> = s.edges.get(v).into_iter().flatten().cloned().collect();
        for w in next {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let lw = s.low[&w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(&w) {
                let iw = s.index[&w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().expect("on stack");
                s.on_stack.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for m in modules {
        if !s.index.contains_key(m) {
            visit(&mut s, m);
        }
    }
    s.out
}

/// One cycle through `comp`'s modules, as `a -> b -> … -> a`.
fn one_cycle(comp: &[String], edges: &BTreeMap<String, BTreeSet<String>>) -> String {
    let inside: BTreeSet<&String> = comp.iter().collect();
    let start = &comp[0];
    // breadth-first from start's successors back to start
    let mut prev: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::new();
    queue.push_back(start.clone());
    while let Some(v) = queue.pop_front() {
        for w in edges.get(&v).into_iter().flatten() {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start.clone()];
                let mut at = v.clone();
                while at != *start {
                    path.push(at.clone());
                    at = prev[&at].clone();
                }
                path.push(start.clone());
                path.reverse();
                return path.join(" -> ");
            }
            if !prev.contains_key(w) {
                prev.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    comp.join(", ")
}

fn describe(graph: &Graph, from: &str, to: &str) -> String {
    let files: Vec<&str> = graph[from][to].iter().map(String::as_str).collect();
    format!("{from} -> {to} (in {})", files.join(", "))
}

#[test]
fn parser_reads_use_lines_groups_and_inline_paths() {
    let code = strip(
        "use crate::a::B;\nuse crate::{c, d::{E, F}, g::h as i};\n// crate::comment\n\
         let s = \"crate::string\"; let c = '{'; let q = '\\''; let d = '\"'; let x = crate::j::k();\n\
         #[cfg(test)]\nmod tests { use crate::t; fn f() { if x { crate::u(); } } }\n\
         fn y<'a>(_: &'a str) { $crate::m; other_crate::n; crate::z::w }",
    );
    let found = crate_paths(&without_tests(&code));
    assert_eq!(found, ["a", "c", "d", "g", "j", "z"]);
}

#[test]
fn cycle_finder_finds_a_cycle_and_only_a_cycle() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (f, t) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        edges.entry(f.into()).or_default().insert(t.into());
    }
    let found = cycles(&modules, &edges);
    assert_eq!(found, [vec!["a".to_string(), "b".into(), "c".into()]]);
    assert_eq!(one_cycle(&found[0], &edges), "a -> b -> c -> a");
    edges.get_mut("c").expect("c").remove("a");
    assert!(cycles(&modules, &edges).is_empty());
}

#[test]
fn modules_have_no_import_cycles_and_depend_downward() {
    let (modules, graph) = module_graph();

    let mut rank = BTreeMap::new();
    for (i, layer) in LAYERS.iter().enumerate() {
        for m in *layer {
            assert!(rank.insert(*m, i).is_none(), "{m} is listed twice in LAYERS");
        }
    }
    let unplaced: Vec<&String> = modules
        .iter()
        .filter(|m| !rank.contains_key(m.as_str()))
        .collect();
    assert!(unplaced.is_empty(), "modules missing from LAYERS: {unplaced:?}");
    let gone: Vec<&&str> = rank.keys().filter(|m| !modules.contains(**m)).collect();
    assert!(
        gone.is_empty(),
        "LAYERS names modules lib.rs does not declare: {gone:?}"
    );

    let mut problems = Vec::new();
    for (from, to, why) in TEMPORARY_EXCEPTIONS {
        if !graph.get(*from).is_some_and(|t| t.contains_key(*to)) {
            problems.push(format!(
                "TEMPORARY_EXCEPTIONS: {from} -> {to} ({why}) is gone: delete the entry"
            ));
        }
    }

    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in &graph {
        for to in targets.keys() {
            if TEMPORARY_EXCEPTIONS.iter().any(|(f, t, _)| f == from && t == to) {
                continue;
            }
            edges.entry(from.clone()).or_default().insert(to.clone());
            if rank[from.as_str()] < rank[to.as_str()] {
                problems.push(format!("upward dependency: {}", describe(&graph, from, to)));
            }
        }
    }
    for comp in cycles(&modules, &edges) {
        let cycle = one_cycle(&comp, &edges);
        let hops: Vec<String> = cycle
            .split(" -> ")
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| describe(&graph, w[0], w[1]))
            .collect();
        problems.push(format!("import cycle: {cycle}\n    {}", hops.join("\n    ")));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}
