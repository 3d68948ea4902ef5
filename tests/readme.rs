//! The README, as written, works: every command of every ```sh block of
//! README.md is run — as root and again as an unprivileged user, each block
//! in a fresh directory with `cordon` (the binary under test) on PATH and
//! HOME inside that directory — and must exit with 0 and print what the
//! README says it prints.
//!
//! What the README's comments tell this test (the comment lines just before
//! a command belong to it):
//! - `# fixture: dir NAME with FILE[, FILE...]` and `# fixture: file NAME`:
//!   files the example expects in the current directory ([`fixture`] has
//!   their contents);
//! - `# readme-test: root (WHY)`: run as root only;
//! - `# readme-test: not run (WHY)`: not run (a reason is required);
//! - `(prints: TEXT)` or `...; prints: TEXT)`: the output contains TEXT;
//! - lines `#   TEXT` after a command: the output has a line TEXT;
//! - `$ COMMAND` lines followed by output lines: the output, with every
//!   number replaced (times and sizes vary), is exactly those lines.
//!
//! A command continues on the next line after a trailing `\`. The README's
//! `cargo run --release --` (its first command) is run as the built
//! `cordon`, and `cargo run -q --example NAME` as the example `cargo test`
//! built, so no cargo runs inside the test.
mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{cordon_bin, is_root, modes, Mode, TempDir, ROOTLESS_ID};

/// One command of a README block.
#[derive(Debug, Default, Clone)]
struct Example {
    /// README line of the command's first line.
    line: usize,
    /// The shell command (continuation lines joined).
    command: String,
    /// `(dir, files)` to create first.
    fixtures: Vec<(Option<String>, Vec<String>)>,
    /// Directories to create owned by a user other than root.
    user_dirs: Vec<String>,
    root_only: bool,
    not_run: Option<String>,
    /// Text the output must contain.
    prints: Vec<String>,
    /// Lines the output must have (`#   TEXT` after the command).
    lines: Vec<String>,
    /// The exact output (numbers replaced), for `$ ` examples.
    exact: Option<Vec<String>>,
}

/// A ```sh block: its commands, run in order in one directory.
#[derive(Debug, Default)]
struct Block {
    line: usize,
    examples: Vec<Example>,
}

/// The text after `prints: ` up to the parenthesis that closes the one it
/// is in (nested parentheses kept: `prints: curl: (56) ... 403)`).
fn prints_of(comment: &str) -> Option<String> {
    let start = comment.find("prints: ")? + "prints: ".len();
    let mut depth = 1;
    for (i, c) in comment[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(comment[start..start + i].to_string());
                }
            }
            _ => {}
        }
    }
    Some(comment[start..].to_string())
}

/// What a comment line says, added to the example it precedes.
fn directive(ex: &mut Example, comment: &str, line: usize) {
    if let Some(p) = prints_of(comment) {
        ex.prints.push(p);
    }
    if let Some(rest) = comment.strip_prefix("fixture: ") {
        if let Some(files) = rest.strip_prefix("file ") {
            ex.fixtures
                .push((None, files.split(',').map(|f| f.trim().to_string()).collect()));
        } else if let Some((d, _)) = rest
            .strip_prefix("dir ")
            .and_then(|d| d.split_once(" owned by a user"))
        {
            ex.user_dirs.push(d.trim().to_string());
        } else if let Some(d) = rest.strip_prefix("dir ") {
            let (dir, files) = d.split_once(" with ").unwrap_or_else(|| {
                panic!("README.md:{line}: expected `fixture: dir NAME with FILE[, FILE...]`")
            });
            ex.fixtures.push((
                Some(dir.trim().to_string()),
                files.split(',').map(|f| f.trim().to_string()).collect(),
            ));
        } else {
            panic!("README.md:{line}: unknown fixture {rest:?}");
        }
    }
    if let Some(rest) = comment.strip_prefix("readme-test: ") {
        if rest.starts_with("root") {
            ex.root_only = true;
        } else if let Some(why) = rest.strip_prefix("not run") {
            let why = why.trim().trim_start_matches('(').trim_end_matches(')').trim();
            assert!(
                !why.is_empty(),
                "README.md:{line}: `readme-test: not run` needs a reason"
            );
            ex.not_run = Some(why.to_string());
        } else {
            panic!("README.md:{line}: unknown readme-test directive {rest:?}");
        }
    }
}

/// Every ```sh block of the README, parsed.
fn blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```sh" {
            i += 1;
            continue;
        }
        let mut block = Block {
            line: i + 1,
            ..Block::default()
        };
        i += 1;
        let mut pending = Example::default();
        // Whether the line before was a command: `root` and `not run` hold
        // for the commands that follow one another without a comment or a
        // blank line between them.
        let mut after_command = false;
        while i < lines.len() && lines[i].trim_end() != "```" {
            let raw = lines[i];
            let t = raw.trim();
            let line = i + 1;
            i += 1;
            if t.is_empty() {
                pending = Example::default();
                after_command = false;
                continue;
            }
            if let Some(text) = t.strip_prefix("#   ") {
                // Expected output of the previous command.
                let last = block
                    .examples
                    .last_mut()
                    .unwrap_or_else(|| panic!("README.md:{line}: output line before any command"));
                last.lines.push(text.trim().to_string());
                continue;
            }
            if let Some(c) = t.strip_prefix('#') {
                if after_command {
                    pending = Example::default();
                    after_command = false;
                }
                directive(&mut pending, c.trim(), line);
                continue;
            }
            // A command, with its continuation lines; after a `$ ` prompt,
            // the lines up to a blank one are its output.
            let (prompt, first) = match t.strip_prefix("$ ") {
                Some(c) => (true, c),
                None => (false, t),
            };
            let mut command = first.to_string();
            while command.ends_with('\\') && i < lines.len() {
                command.pop();
                command.push(' ');
                command.push_str(lines[i].trim());
                i += 1;
            }
            let mut ex = std::mem::take(&mut pending);
            pending = Example {
                root_only: ex.root_only,
                not_run: ex.not_run.clone(),
                ..Example::default()
            };
            after_command = true;
            ex.line = line;
            ex.command = command;
            if prompt {
                let mut exact = Vec::new();
                while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim_end() != "```" {
                    exact.push(lines[i].trim().to_string());
                    i += 1;
                }
                ex.exact = Some(exact);
            }
            block.examples.push(ex);
        }
        i += 1;
        out.push(block);
    }
    out
}

/// The contents of a fixture file, by name.
fn fixture(name: &str) -> &'static str {
    match name {
        // `python3 build.py --out DIR`: writes DIR/result.txt.
        "build.py" => {
            "import os, sys\nout = sys.argv[sys.argv.index('--out') + 1]\nwith open(os.path.join(out, 'result.txt'), 'w') as f:\n    f.write('ok\\n')\nprint('built into', out)\n"
        }
        "job.py" => "import os\nprint('job ran as', os.getuid())\n",
        "Makefile" => "all:\n\t@echo made\n",
        _ => "fixture\n",
    }
}

/// The README's cargo invocations as the binaries this test run built.
fn translate(command: &str) -> String {
    let cordon = cordon_bin();
    let mut c = command.replace("cargo run --release -- ", &format!("{} ", cordon.display()));
    while let Some(at) = c.find("cargo run -q --example ") {
        let rest = &c[at + "cargo run -q --example ".len()..];
        let name: String = rest.chars().take_while(|ch| !ch.is_whitespace()).collect();
        let exe = std::env::current_exe().expect("current exe");
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .join("examples")
            .join(&name);
        assert!(
            bin.exists(),
            "{} is missing: build it with cargo test or cargo build --examples",
            bin.display()
        );
        c = format!("{}{}{}", &c[..at], bin.display(), &rest[name.len()..]);
    }
    assert!(!c.contains("cargo "), "a cargo command left in {command:?}");
    c
}

fn chown_tree(p: &Path, id: u32) {
    std::os::unix::fs::chown(p, Some(id), Some(id)).expect("chown");
    if p.is_dir() {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            chown_tree(&e.path(), id);
        }
    }
}

fn make_fixtures(dir: &Path, ex: &Example, mode: Mode) {
    for (sub, files) in &ex.fixtures {
        let base = match sub {
            Some(s) => dir.join(s),
            None => dir.to_path_buf(),
        };
        std::fs::create_dir_all(&base).expect("fixture dir");
        common::set_mode(&base, 0o755);
        for f in files {
            let p = base.join(f);
            std::fs::write(&p, fixture(f)).expect("fixture file");
            common::set_mode(&p, 0o644);
        }
    }
    for d in &ex.user_dirs {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).expect("fixture dir");
        common::set_mode(&p, 0o755);
        // The host's nobody: any id but root's (rootless, the caller's own
        // below; run by a user, the directory is that user's already).
        if mode == Mode::Root {
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).expect("chown");
        }
    }
    if mode == Mode::Rootless && is_root() {
        chown_tree(dir, ROOTLESS_ID);
    }
}

/// The tools an example needs from the host, when it names them.
const TOOLS: [&str; 4] = ["make", "curl", "python3", "man"];

fn missing_tool(command: &str) -> Option<&'static str> {
    TOOLS.into_iter().find(|t| {
        command
            .split(|c: char| c.is_whitespace() || c == ';' || c == '|' || c == '&')
            .any(|w| w == *t)
            && !["/usr/bin", "/bin"].iter().any(|d| Path::new(d).join(t).exists())
    })
}

/// Every number replaced by `N`.
fn numbers_out(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_num = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

fn run_one(dir: &Path, bin: &Path, command: &str, mode: Mode) -> Output {
    let home = dir.join("home");
    let mut c = Command::new("timeout");
    c.args(["-k", "5", "180", "/bin/bash", "-c", command])
        .current_dir(dir)
        .env_clear()
        .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()))
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null());
    if mode == Mode::Rootless && is_root() {
        c.uid(ROOTLESS_ID).gid(ROOTLESS_ID);
    }
    c.output().expect("spawn bash")
}

/// What is wrong with one example's run, if anything.
fn check(ex: &Example, out: &Output) -> Result<(), String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}{stderr}");
    let shown = || {
        format!(
            "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status.code()
        )
    };
    if out.status.code() != Some(0) {
        return Err(format!("failed: {}", shown()));
    }
    for p in &ex.prints {
        if !all.contains(p.as_str()) {
            return Err(format!("does not print {p:?}: {}", shown()));
        }
    }
    for l in &ex.lines {
        if !all.lines().any(|x| x.trim() == l) {
            return Err(format!("has no line {l:?}: {}", shown()));
        }
    }
    if let Some(exact) = &ex.exact {
        let got: Vec<&str> = stdout.lines().map(str::trim).collect();
        let same = got.len() == exact.len() && exact.iter().zip(&got).all(|(w, g)| same_line(w, g));
        if !same {
            return Err(format!(
                "prints, numbers aside,\n{got:#?}\nnot\n{exact:#?}\n{}",
                shown()
            ));
        }
    }
    Ok(())
}

/// Keys an outcome may hold on one host and not on another: what this
/// host cannot enforce (`unenforced`, e.g. cgroup v1 or a rootless run).
const HOST_DEPENDENT: [&str; 1] = ["unenforced"];

/// One output line as the README shows it: the same once every number is
/// replaced; for a JSON object, the same members (in any order), apart
/// from [`HOST_DEPENDENT`] ones.
fn same_line(want: &str, got: &str) -> bool {
    let strip = |line: &str| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let mut o = v.as_object()?.clone();
        for k in HOST_DEPENDENT {
            o.remove(k);
        }
        serde_json::to_string(&o).ok()
    };
    match (strip(want), strip(got)) {
        (Some(w), Some(g)) => numbers_out(&w) == numbers_out(&g),
        _ => numbers_out(want) == numbers_out(got),
    }
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md")
}

#[test]
fn every_shell_example_of_the_readme_runs_as_written() {
    let blocks = blocks(&readme());
    let bin = TempDir::new("readme-bin");
    std::os::unix::fs::symlink(cordon_bin(), bin.path().join("cordon")).expect("symlink cordon");
    let mut failures = Vec::new();
    let mut ran = 0;
    for mode in modes() {
        for block in &blocks {
            let dir = TempDir::new("readme");
            let home = dir.path().join("home");
            std::fs::create_dir_all(&home).expect("home");
            if mode == Mode::Rootless && is_root() {
                chown_tree(dir.path(), ROOTLESS_ID);
            }
            for ex in &block.examples {
                if ex.not_run.is_some() || (ex.root_only && mode == Mode::Rootless) {
                    continue;
                }
                if let Some(t) = missing_tool(&ex.command) {
                    require!("readme-tools", false, format!("README.md:{}: needs {t}", ex.line));
                }
                make_fixtures(dir.path(), ex, mode);
                let command = translate(&ex.command);
                let out = run_one(dir.path(), bin.path(), &command, mode);
                ran += 1;
                if let Err(e) = check(ex, &out) {
                    failures.push(format!("README.md:{} ({mode:?}): {}\n{e}", ex.line, ex.command));
                    // The rest of the block may depend on this one.
                    break;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} README example(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("{ran} README commands ran");
    assert!(ran >= 10, "only {ran} README commands ran");
}

#[test]
fn the_readme_keeps_its_first_two_commands_and_says_why_one_is_not_run() {
    let blocks = blocks(&readme());
    let first = &blocks[0];
    assert!(first.line < 10, "the README starts with its build-and-run block");
    assert!(
        first.examples[0]
            .command
            .starts_with("cargo run --release -- run -- python3"),
        "{:?}",
        first.examples[0]
    );
    assert_eq!(first.examples[0].prints, ["uid 1000 pid 2 hostname cordon"]);
    assert_eq!(first.examples[1].command, "cargo test");
    let mut not_run = 0;
    for b in &blocks {
        for ex in &b.examples {
            if let Some(why) = &ex.not_run {
                not_run += 1;
                assert!(why.len() > 10, "README.md:{}: say why it is not run", ex.line);
            }
        }
    }
    // cargo test, cargo install, cargo deb, ssh build1, tests/vm/run.sh (two).
    assert!(not_run <= 6, "{not_run} README commands are not run");
}

#[test]
fn the_parser_reads_directives_output_lines_and_prompts() {
    let md = "text\n```sh\n# A (prints: curl: (56) refused)\n# fixture: dir p with a.py, b.py\n# readme-test: root (cgroups)\ncordon run \\\n    -- true\n#   decision: X\n\n$ echo 1 \\\n  | cat\n{\"n\":12}\n```\n```text\nnot sh\n```\n";
    let b = blocks(md);
    assert_eq!(b.len(), 1);
    let e = &b[0].examples;
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].command, "cordon run  -- true");
    assert_eq!(e[0].prints, ["curl: (56) refused"]);
    assert_eq!(
        e[0].fixtures,
        [(
            Some("p".to_string()),
            vec!["a.py".to_string(), "b.py".to_string()]
        )]
    );
    assert!(e[0].root_only);
    assert_eq!(e[0].lines, ["decision: X"]);
    assert_eq!(e[1].command, "echo 1  | cat");
    assert_eq!(e[1].exact, Some(vec!["{\"n\":12}".to_string()]));
    assert_eq!(numbers_out("{\"n\":12,\"t\":3}"), "{\"n\":N,\"t\":N}");
    let out = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(0),
        stdout: b"{\"n\":7}\n".to_vec(),
        stderr: Vec::new(),
    };
    assert!(check(&e[1], &out).is_ok());
    assert!(same_line(
        "{\"a\":1,\"b\":\"x\"}",
        "{\"a\":22,\"b\":\"x\",\"unenforced\":[\"y\"]}"
    ));
    assert!(!same_line("{\"a\":1,\"b\":\"x\"}", "{\"a\":22,\"b\":\"z\"}"));
    assert!(!same_line("{\"a\":1}", "{\"a\":1,\"c\":2}"));
    let bad = Output {
        stdout: b"{\"m\":7}\n".to_vec(),
        ..out.clone()
    };
    assert!(check(&e[1], &bad).is_err());
    let failed = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(1 << 8),
        ..out
    };
    assert!(check(&e[1], &failed).is_err());
}
