//! The manual pages stay true to the code: man/cordon-policy.5 lists every
//! syscall group with exactly its calls, every action, comparison and field
//! of the `seccomp` section, and the arguments compared on 32 bits; every
//! field, scope and compatibility of the `landlock` section, and what needs
//! which Landlock ABI; every field of `limits` and every file cordon writes
//! for the cgroup limits; its examples are valid; and it and man/cordon.1
//! render without warnings.
mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use cordon::cgroup::{v1_writes, v2_writes, CgLimits};
use cordon::landlock::{Compatibility, LandlockPolicy, Scope};
use cordon::policy::Limits;
use cordon::seccomp::groups::GROUPS;
use cordon::seccomp::ir::Action;
use cordon::seccomp::{ActionSpec, OpSpec, SeccompPolicy};

fn page_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man/cordon-policy.5")
}

fn page() -> String {
    std::fs::read_to_string(page_path()).expect("man/cordon-policy.5")
}

/// Text with roff escapes removed: `\-` is `-`, `\(dq` is `"`, font changes
/// and `\&`, `\%`, `\c` vanish.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('-') => out.push('-'),
            Some('e') | Some('\\') => out.push('\\'),
            Some(' ') | Some('~') => out.push(' '),
            Some('&') | Some('%') | Some('c') | Some('/') | Some(',') | Some('|') | Some('^') => {}
            // \fB, \fI, \fR, \fP, or \f(XX
            Some('f') => {
                let font = it.next();
                if font == Some('(') {
                    it.nth(1);
                }
            }
            Some('(') => {
                let name: String = [it.next(), it.next()].into_iter().flatten().collect();
                out.push_str(match name.as_str() {
                    "dq" => "\"",
                    "oq" | "cq" | "aq" => "'",
                    "ga" => "`",
                    "bu" => "*",
                    "->" => "->",
                    "<-" => "<-",
                    "em" | "en" => "-",
                    _ => "",
                });
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Split a macro's arguments, honouring double quotes.
fn macro_args(s: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' | '\t' if !quoted => {
                if any {
                    args.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            _ => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        args.push(cur);
    }
    args
}

/// One source line as plain text: `None` for comments and requests without
/// text; font macros give their arguments (alternating ones joined without
/// spaces, as roff prints them).
fn plain_line(line: &str) -> Option<String> {
    let Some(rest) = line.strip_prefix('.') else {
        return Some(unescape(line));
    };
    if rest.starts_with("\\\"") {
        return None;
    }
    let (name, args) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let args = macro_args(args);
    let text = match name {
        "B" | "I" | "SH" | "SS" => args.join(" "),
        "BR" | "RB" | "BI" | "IB" | "IR" | "RI" => args.concat(),
        _ => return None,
    };
    Some(unescape(&text))
}

/// The source lines of section `.SH NAME` (up to the next `.SH`).
fn section<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = page.lines().skip_while(|l| {
        l.strip_prefix(".SH ")
            .map_or(true, |h| h.trim().trim_matches('"') != name)
    });
    assert!(lines.next().is_some(), "the page has no section {name}");
    lines.take_while(|l| !l.starts_with(".SH ")).collect()
}

/// The source lines of subsection `.SS NAME` (up to the next `.SS`/`.SH`).
fn subsection<'a>(lines: &[&'a str], name: &str) -> Vec<&'a str> {
    let mut it = lines.iter().skip_while(|l| {
        l.strip_prefix(".SS ")
            .map_or(true, |h| h.trim().trim_matches('"') != name)
    });
    assert!(it.next().is_some(), "the page has no subsection {name}");
    it.take_while(|l| !l.starts_with(".SS ") && !l.starts_with(".SH "))
        .copied()
        .collect()
}

/// Plain text of some source lines, whitespace collapsed.
fn text(lines: &[&str]) -> String {
    let joined: Vec<String> = lines.iter().filter_map(|l| plain_line(l)).collect();
    joined.join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `.TP` items of some lines: (tag as plain text, body lines).
fn tp_items<'a>(lines: &[&'a str]) -> Vec<(String, Vec<&'a str>)> {
    let mut items: Vec<(String, Vec<&'a str>)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] == ".TP" || lines[i].starts_with(".TP ") {
            // The tag is the next line that gives text.
            let mut j = i + 1;
            while j < lines.len() && plain_line(lines[j]).is_none() {
                j += 1;
            }
            let tag = lines.get(j).and_then(|l| plain_line(l)).unwrap_or_default();
            let mut k = j + 1;
            while k < lines.len() && !(lines[k] == ".TP" || lines[k].starts_with(".TP ") || lines[k] == ".RE")
            {
                k += 1;
            }
            items.push((tag.trim().to_string(), lines[(j + 1).min(k)..k].to_vec()));
            i = k;
        } else {
            i += 1;
        }
    }
    items
}

/// Words: runs of letters, digits, `_`, plus `@` and `-` when `groups`.
fn words(s: &str, groups: bool) -> Vec<String> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || (groups && (c == '@' || c == '-'))))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_group_is_listed_with_exactly_its_calls() {
    let page = page();
    let groups = section(&page, "SYSCALL GROUPS");
    let items = tp_items(&groups);
    let listed: Vec<&str> = items.iter().map(|(tag, _)| tag.as_str()).collect();
    let known: Vec<&str> = GROUPS.iter().map(|g| g.name).collect();
    assert_eq!(
        listed, known,
        "SYSCALL GROUPS must list every group once, in the code's order"
    );

    for g in GROUPS {
        let (_, body) = items.iter().find(|(tag, _)| tag == g.name).expect("listed");
        // The description comes first, the calls after the `.br`.
        let split = body
            .iter()
            .position(|l| *l == ".br")
            .unwrap_or_else(|| panic!("{}: no .br between the description and the calls", g.name));
        let description = text(&body[..split]);
        assert_eq!(description, g.description, "{}: description", g.name);

        let list = text(&body[split + 1..]);
        let mut calls = BTreeSet::new();
        let mut includes = BTreeSet::new();
        for w in words(&list, true) {
            match w.as_str() {
                "and" | "every" | "call" | "of" => {}
                w if w.starts_with('@') => {
                    includes.insert(w.to_string());
                }
                w => {
                    calls.insert(w.to_string());
                }
            }
        }
        let want: BTreeSet<String> = g.syscalls.iter().map(|s| s.to_string()).collect();
        let missing: Vec<_> = want.difference(&calls).collect();
        let extra: Vec<_> = calls.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: calls missing from the page: {missing:?}; listed but not in the group: {extra:?}",
            g.name
        );
        let want_inc: BTreeSet<String> = g.includes.iter().map(|s| s.to_string()).collect();
        assert_eq!(includes, want_inc, "{}: included groups", g.name);
    }
}

/// Policy name of each action; `None` for those a policy cannot write.
/// The match has no wildcard: a new action does not compile until it is
/// named here (and so checked on the page).
fn action_name(a: Action) -> Option<&'static str> {
    match a {
        Action::Allow => Some("allow"),
        Action::Errno(_) => Some("errno"),
        Action::KillProcess => Some("kill_process"),
        Action::KillThread => Some("kill_thread"),
        Action::Trap => Some("trap"),
        Action::Log => Some("log"),
        Action::Notify => None,
    }
}

const ACTIONS: [Action; 7] = [
    Action::Allow,
    Action::Errno(1),
    Action::KillProcess,
    Action::KillThread,
    Action::Trap,
    Action::Log,
    Action::Notify,
];

/// Policy name of each comparison (exhaustive, like [`action_name`]).
fn op_name(o: OpSpec) -> &'static str {
    match o {
        OpSpec::Eq => "eq",
        OpSpec::Ne => "ne",
        OpSpec::Lt => "lt",
        OpSpec::Le => "le",
        OpSpec::Gt => "gt",
        OpSpec::Ge => "ge",
        OpSpec::MaskedEq => "masked_eq",
    }
}

const OPS: [OpSpec; 7] = [
    OpSpec::Eq,
    OpSpec::Ne,
    OpSpec::Lt,
    OpSpec::Le,
    OpSpec::Gt,
    OpSpec::Ge,
    OpSpec::MaskedEq,
];

#[test]
fn every_action_and_comparison_is_documented() {
    let page = page();
    let seccomp = section(&page, "SECCOMP");

    let actions = subsection(&seccomp, "Actions");
    let tags: Vec<String> = tp_items(&actions).into_iter().map(|(t, _)| t).collect();
    for a in ACTIONS {
        let Some(name) = action_name(a) else { continue };
        let parsed: ActionSpec = serde_json::from_value(serde_json::json!(name))
            .unwrap_or_else(|e| panic!("\"{name}\" is not an action: {e}"));
        assert_eq!(action_name(parsed.0), Some(name));
        let quoted = format!("\"{name}\"");
        assert!(
            tags.iter().any(|t| t.contains(&quoted)),
            "SECCOMP/Actions has no item for {quoted}: {tags:?}"
        );
    }
    // The errno object and the alias.
    assert!(tags.iter().any(|t| t.starts_with("{\"errno\":")), "{tags:?}");
    let kill: ActionSpec = serde_json::from_value(serde_json::json!("kill")).unwrap();
    assert_eq!(kill.0, Action::KillProcess);
    assert!(tags.iter().any(|t| t.contains("\"kill\"")), "{tags:?}");

    let conditions = subsection(&seccomp, "Argument conditions");
    let tags: Vec<String> = tp_items(&conditions).into_iter().map(|(t, _)| t).collect();
    for o in OPS {
        let name = op_name(o);
        assert_eq!(serde_json::to_value(o).unwrap(), serde_json::json!(name));
        assert!(
            tags.iter().any(|t| t == name),
            "SECCOMP/Argument conditions has no item for {name}: {tags:?}"
        );
    }
}

/// Every key of the seccomp section, of a rule and of a condition, as the
/// code serialises them.
fn field_names() -> BTreeSet<String> {
    let full: SeccompPolicy = serde_json::from_value(serde_json::json!({
        "default_action": "errno",
        "allow": ["@default"],
        "rules": [{"syscall": "clone", "args": [
            {"arg": 0, "op": "masked_eq", "value": 0, "mask": "CLONE_NEWUSER"}], "action": "allow"}],
        "report": true
    }))
    .expect("a full seccomp section");
    let v = serde_json::to_value(&full).unwrap();
    let mut keys = BTreeSet::new();
    let mut add = |o: &serde_json::Value| {
        for k in o.as_object().expect("object").keys() {
            keys.insert(k.clone());
        }
    };
    add(&v);
    add(&v["rules"][0]);
    add(&v["rules"][0]["args"][0]);
    keys
}

#[test]
fn every_field_is_documented() {
    let page = page();
    let seccomp = section(&page, "SECCOMP");
    let tags: Vec<String> = tp_items(&seccomp).into_iter().map(|(t, _)| t).collect();
    for f in field_names() {
        assert!(
            tags.iter()
                .any(|t| t.split_whitespace().next() == Some(f.as_str())),
            "SECCOMP has no item for the field {f}: {tags:?}"
        );
    }
    // The FIELDS section points to it.
    let fields = section(&page, "FIELDS");
    assert!(tp_items(&fields).iter().any(|(t, _)| t.starts_with("seccomp ")));
}

/// Policy name of each scope (exhaustive, like [`action_name`]).
fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::AbstractUnixSocket => "abstract_unix_socket",
        Scope::Signal => "signal",
    }
}

const SCOPES: [Scope; 2] = [Scope::AbstractUnixSocket, Scope::Signal];

/// Policy name of each compatibility (exhaustive).
fn compatibility_name(c: Compatibility) -> &'static str {
    match c {
        Compatibility::Strict => "strict",
        Compatibility::BestEffort => "best_effort",
    }
}

const COMPATIBILITIES: [Compatibility; 2] = [Compatibility::Strict, Compatibility::BestEffort];

/// A `landlock` section with every field set.
fn full_landlock() -> LandlockPolicy {
    serde_json::from_value(serde_json::json!({
        "read": ["/"], "write": ["/tmp"], "execute": ["/usr"],
        "tcp_connect": [443], "tcp_bind": [8080],
        "scope": SCOPES.map(scope_name),
        "compatibility": "best_effort"
    }))
    .expect("a full landlock section")
}

#[test]
fn every_landlock_field_scope_and_compatibility_is_documented() {
    let page = page();
    let landlock = section(&page, "LANDLOCK");
    let tags: Vec<String> = tp_items(&landlock).into_iter().map(|(t, _)| t).collect();

    let v = serde_json::to_value(full_landlock()).unwrap();
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(
        keys.len(),
        7,
        "a field was added: document it and set it here: {keys:?}"
    );
    for f in keys {
        assert!(
            tags.iter()
                .any(|t| t.split_whitespace().next() == Some(f.as_str())),
            "LANDLOCK has no item for the field {f}: {tags:?}"
        );
    }
    for s in SCOPES {
        let name = scope_name(s);
        assert_eq!(s.name(), name);
        assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(name));
        let quoted = format!("\"{name}\"");
        assert!(
            tags.contains(&quoted),
            "LANDLOCK has no item for the scope {quoted}: {tags:?}"
        );
    }
    for c in COMPATIBILITIES {
        let name = compatibility_name(c);
        assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(name));
        let quoted = format!("\"{name}\"");
        assert!(
            tags.contains(&quoted),
            "LANDLOCK has no item for the compatibility {quoted}: {tags:?}"
        );
    }
    assert_eq!(Compatibility::default(), Compatibility::Strict);

    // Every part of a section the kernel may lack is listed with its ABI,
    // as the outcome's `unenforced` says it, and in the ABI list.
    let all = text(&landlock);
    let abis = subsection(&landlock, "Landlock ABI");
    let abi_tags: Vec<String> = tp_items(&abis).into_iter().map(|(t, _)| t).collect();
    let needs = full_landlock().needs();
    assert!(!needs.is_empty());
    for (what, abi) in needs {
        let entry = format!("landlock: {what} needs Landlock ABI {abi}");
        assert!(all.contains(&entry), "LANDLOCK does not list \"{entry}\"");
        let tag = format!("ABI {abi} ");
        assert!(
            abi_tags.iter().any(|t| t.starts_with(&tag)),
            "Landlock ABI has no item for ABI {abi}: {abi_tags:?}"
        );
    }

    // The FIELDS section points to it.
    let fields = section(&page, "FIELDS");
    assert!(tp_items(&fields).iter().any(|(t, _)| t.starts_with("landlock ")));
}

/// The source lines of the `.RS` ... `.RE` block under the `.TP` item of
/// `lines` whose tag starts with `tag` (nested blocks included).
fn item_block<'a>(lines: &[&'a str], tag: &str) -> Vec<&'a str> {
    // The tag line: the first line giving text after a `.TP`.
    let at = (0..lines.len())
        .filter(|&i| lines[i] == ".TP" || lines[i].starts_with(".TP "))
        .filter_map(|i| (i + 1..lines.len()).find(|&j| plain_line(lines[j]).is_some()))
        .find(|&j| plain_line(lines[j]).is_some_and(|t| t.trim().starts_with(tag)))
        .unwrap_or_else(|| panic!("no item {tag:?}"));
    let open = at
        + lines[at..]
            .iter()
            .position(|l| *l == ".RS" || l.starts_with(".RS "))
            .expect("the item has an .RS block");
    let mut depth = 0;
    for (i, l) in lines.iter().enumerate().skip(open) {
        if *l == ".RS" || l.starts_with(".RS ") {
            depth += 1;
        } else if *l == ".RE" || l.starts_with(".RE ") {
            depth -= 1;
            if depth == 0 {
                return lines[open + 1..i].to_vec();
            }
        }
    }
    panic!("the .RS block of {tag:?} is not closed");
}

/// A `limits` object with every field set.
fn full_limits() -> Limits {
    serde_json::from_value(serde_json::json!({
        "wall_time": "1m", "cpu_time": "30s", "file_size": "1G", "open_files": 64,
        "processes": 32, "address_space": "4G", "stack": "8M", "core_dumps": true,
        "memory": "512M", "memory_swap": "0", "pids": 64, "cpus": 1.5,
        "cgroup_parent": "/sys/fs/cgroup/cordon", "cgroup": "v2_only", "compatibility": "best_effort"
    }))
    .expect("a full limits object")
}

#[test]
fn every_limits_field_and_cgroup_file_is_documented() {
    let page = page();
    let fields = section(&page, "FIELDS");
    let limits = item_block(&fields, "limits ");
    let tags: Vec<String> = tp_items(&limits).into_iter().map(|(t, _)| t).collect();

    let v = serde_json::to_value(full_limits()).unwrap();
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(
        keys.len(),
        15,
        "a field was added: document it and set it here: {keys:?}"
    );
    for f in keys {
        assert!(
            tags.iter()
                .any(|t| t.split_whitespace().next() == Some(f.as_str())),
            "FIELDS/limits has no item for the field {f}: {tags:?}"
        );
    }
    for c in COMPATIBILITIES {
        let quoted = format!("\"{}\"", compatibility_name(c));
        assert!(
            tags.contains(&quoted),
            "FIELDS/limits has no item for the compatibility {quoted}: {tags:?}"
        );
    }

    // CGROUP LIMITS names every file cordon writes, on v2 and on v1 (with
    // and without swap accounting).
    let cgroup = text(&section(&page, "CGROUP LIMITS"));
    let l = CgLimits::from_policy(&full_limits());
    let mut files: BTreeSet<&str> = v2_writes(&l).into_iter().map(|(f, _)| f).collect();
    for memsw in [false, true] {
        files.extend(v1_writes(&l, memsw).into_iter().map(|(_, f, _)| f));
    }
    for f in files {
        assert!(
            cgroup.contains(&format!("{f} <-")),
            "CGROUP LIMITS does not say what cordon writes to {f}"
        );
    }

    // Its example writes what the code writes.
    let start = cgroup.find("For example, ").expect("an example of the writes") + 13;
    let end = start
        + cgroup[start..]
            .find(" writes, on cgroup v2,")
            .expect("the example's writes");
    let example: Limits = serde_json::from_str(&format!("{{{}}}", &cgroup[start..end]))
        .unwrap_or_else(|e| panic!("the example {:?} is not limits: {e}", &cgroup[start..end]));
    for (file, value) in v2_writes(&CgLimits::from_policy(&example)) {
        assert!(
            cgroup.contains(&format!("{file} <- {value}"))
                || cgroup.contains(&format!("{file} <- \"{value}\"")),
            "the example does not write {value:?} to {file}"
        );
    }
}

/// Whether cordon compares argument `arg` of `syscall` on its low 32 bits
/// only: it then refuses a value above 32 bits.
fn is_low32(syscall: &str, arg: u8) -> bool {
    let p: SeccompPolicy = serde_json::from_value(serde_json::json!({
        "default_action": "allow",
        "rules": [{"syscall": syscall, "args": [{"arg": arg, "op": "eq", "value": 1u64 << 32}],
                   "action": "errno"}]
    }))
    .unwrap();
    match p.compile() {
        Ok(_) => false,
        Err(e) => {
            assert!(e.message.contains("32 bits wide"), "{syscall} {arg}: {e:?}");
            true
        }
    }
}

/// (syscall, argument) pairs named on the page as `NAME (argument N)` or
/// `NAME (arguments A, B and C)`.
fn low32_on_page(text: &str) -> BTreeSet<(String, u8)> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(" (argument") {
        let name = rest[..at].split_whitespace().last().unwrap_or("").to_string();
        let after = &rest[at + 2..];
        let close = after.find(')').expect("closing parenthesis");
        for w in words(&after[..close], false) {
            if let Ok(n) = w.parse::<u8>() {
                out.insert((name.clone(), n));
            }
        }
        rest = &after[close..];
    }
    out
}

#[test]
fn the_32_bit_arguments_are_listed() {
    let page = page();
    let seccomp = section(&page, "SECCOMP");
    let conditions = subsection(&seccomp, "Argument conditions");
    let all = text(&conditions);
    let start = all
        .find("32-bit arguments.")
        .expect("a paragraph on 32-bit arguments");
    let end = all[start..]
        .find("Every other argument")
        .map_or(all.len(), |e| start + e);
    let listed = low32_on_page(&all[start..end]);
    assert!(
        !listed.is_empty(),
        "no `NAME (argument N)` found in: {}",
        &all[start..end]
    );

    let mut actual = BTreeSet::new();
    for (nr, name) in cordon::seccomp::arch::Arch::X86_64.syscalls() {
        let _ = nr;
        for arg in 0..6u8 {
            if is_low32(name, arg) {
                actual.insert((name.to_string(), arg));
            }
        }
    }
    assert_eq!(listed, actual, "the page's 32-bit arguments against the code's");
}

/// The lines of each `.EX` ... `.EE` block of a section, as plain text.
fn examples(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for l in lines {
        match (*l, cur.as_mut()) {
            (".EX", _) => cur = Some(Vec::new()),
            (".EE", Some(_)) => out.push(cur.take().unwrap_or_default().join("\n")),
            (l, Some(block)) if !l.starts_with('.') => block.push(unescape(l)),
            _ => {}
        }
    }
    out
}

#[test]
fn the_examples_are_valid() {
    let page = page();
    let blocks = examples(&section(&page, "EXAMPLE"));

    // The first quotes the built-in default policy.
    let shown: serde_json::Value = serde_json::from_str(&blocks[0]).expect("the first example is JSON");
    let file: serde_json::Value = serde_json::from_str(cordon::policy::DEFAULT_POLICY_JSON).unwrap();
    assert_eq!(shown, file, "EXAMPLE must quote policies/default.json");

    // The seccomp example is a valid section.
    let fragment = blocks
        .iter()
        .find(|b| b.trim_start().starts_with("\"seccomp\":"))
        .expect("an example of a seccomp section");
    let wrapped: serde_json::Value =
        serde_json::from_str(&format!("{{{fragment}}}")).expect("the seccomp example is JSON");
    let section: SeccompPolicy =
        serde_json::from_value(wrapped["seccomp"].clone()).expect("the seccomp example parses");
    section.compile().expect("the seccomp example compiles");

    // The landlock example is a valid section of the build policy.
    let fragment = blocks
        .iter()
        .find(|b| b.trim_start().starts_with("\"landlock\":"))
        .expect("an example of a landlock section");
    let wrapped: serde_json::Value =
        serde_json::from_str(&format!("{{{fragment}}}")).expect("the landlock example is JSON");
    let build = blocks
        .iter()
        .find(|b| b.contains("\"hostname\": \"build\""))
        .expect("the build policy example");
    let mut with: serde_json::Value = serde_json::from_str(build).expect("the build example is JSON");
    with["landlock"] = wrapped["landlock"].clone();
    let policy = cordon::policy::Policy::from_json("example", &with.to_string())
        .unwrap_or_else(|e| panic!("the build example with the landlock example does not load: {e}"));
    let landlock = policy.landlock.expect("a landlock section");
    let (plan, unenforced) = landlock
        .prepare(6, "example")
        .expect("the landlock example prepares on ABI 6");
    assert!(plan.is_some() && unenforced.is_empty());

    // And so is every JSON example, as a whole policy.
    for b in &blocks {
        if b.trim_start().starts_with('{') {
            cordon::policy::Policy::from_json("example", b)
                .unwrap_or_else(|e| panic!("example does not load: {e}\n{b}"));
        }
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_pages_render_without_warnings() {
    let have_man = have("man");
    let have_groff = have("groff");
    require!(
        "man",
        have_man || have_groff,
        "neither man nor groff is installed to render the page"
    );
    let mut checks: Vec<(&str, Vec<&str>)> = Vec::new();
    if have_man {
        checks.push(("man", vec!["--warnings", "-E", "UTF-8", "-l", "-Tutf8"]));
    }
    if have_groff {
        checks.push(("groff", vec!["-man", "-ww", "-z", "-Tutf8"]));
    }
    let pages = [
        page_path(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man/cordon.1"),
    ];
    for page in &pages {
        for (program, args) in &checks {
            let out = Command::new(program)
                .args(args)
                .arg(page)
                .env("MANWIDTH", "80")
                .env("LC_ALL", "C.UTF-8")
                .output()
                .unwrap_or_else(|e| panic!("{program}: {e}"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "{program} {args:?} {}: {}\n{stderr}",
                page.display(),
                out.status
            );
        }
    }
}

#[test]
fn every_network_field_and_mode_is_documented() {
    use cordon::policy::network::{NetMode, NetworkPolicy};
    let page = page();
    let network = section(&page, "NETWORK");
    let tags: Vec<String> = tp_items(&network).into_iter().map(|(t, _)| t).collect();
    // A section with every field set, serialized: its keys are the fields.
    let full: NetworkPolicy = serde_json::from_value(serde_json::json!({
        "mode": "proxy", "allow": ["a.example"], "deny": ["b.example"],
        "max_connections": 1, "connect_timeout": "1s", "idle_timeout": "1s",
        "dns": false, "transparent_ports": [8080], "resolve": {"a.example": "10.0.0.1"}
    }))
    .expect("a full network section");
    let value = serde_json::to_value(&full).unwrap();
    let fields: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), 9, "{fields:?}");
    for f in fields {
        assert!(
            tags.iter()
                .any(|t| t.split_whitespace().next() == Some(f.as_str())),
            "NETWORK has no item for the field {f}: {tags:?}"
        );
    }
    let body = text(&network);
    for m in [NetMode::None, NetMode::Host, NetMode::Proxy] {
        assert!(
            body.contains(&format!("\"{}\"", m.name())),
            "NETWORK does not describe mode {}",
            m.name()
        );
    }
    // Every listener of mode proxy is described, and nothing is left as
    // "not built".
    for listener in [
        "127.0.0.1:3128",
        "127.0.0.1:1080",
        "127.0.0.1:53",
        "transparent relay",
    ] {
        assert!(body.contains(listener), "NETWORK does not describe {listener}");
    }
    assert!(
        !body.contains("Not in this build"),
        "NETWORK still says a part is not built"
    );
    // The FIELDS section points to it, and the example in it is a valid section.
    let fields = section(&page, "FIELDS");
    assert!(tp_items(&fields).iter().any(|(t, _)| t.starts_with("network ")));
    let block = examples(&network)
        .into_iter()
        .find(|b| b.trim_start().starts_with("\"network\":"))
        .expect("an example of a network section");
    let wrapped = format!("{{\"version\": 1, {block}}}");
    let p = cordon::policy::Policy::from_json("example", &wrapped)
        .unwrap_or_else(|e| panic!("the network example does not load: {e}"));
    assert_eq!(p.network_mode(), NetMode::Proxy);
}
