//! The command line forgives what a new user types (issue 14): a command
//! without `--`, a misspelt option, bubblewrap's two-argument binds,
//! relative bind sources, errors that name the flag, the flags for the
//! fields errors mention, the timeout and out-of-memory lines, `-q`, the
//! status file checked before anything runs; and `completions`,
//! `install-man` and `--version`. Every test checks the text a user sees.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{cordon, cordon_bin, is_root, modes, set_mode, Mode, TempDir};

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn diag(o: &Output) -> String {
    format!(
        "code {:?}\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// `cordon ARGS...` in `mode`, exactly as given (no `--` added).
fn cordon_args(mode: Mode, args: &[&str]) -> Output {
    cordon(mode).args(args).output().expect("spawn cordon")
}

/// A directory with a file `f` holding `content`, readable by every test
/// identity.
fn dir_with_file(tag: &str, content: &str) -> TempDir {
    let d = TempDir::new(tag);
    let f = d.path().join("f");
    std::fs::write(&f, content).expect("write");
    set_mode(&f, 0o644);
    d
}

#[test]
fn a_command_without_double_dash_runs_and_keeps_its_own_options() {
    for mode in modes() {
        let o = cordon_args(mode, &["run", "true"]);
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        // Everything from the command's name on is the command's, even
        // words that look like cordon's options.
        let o = cordon_args(
            mode,
            &[
                "run",
                "--hostname",
                "box",
                "/bin/sh",
                "-c",
                "echo \"$@\"; hostname",
                "x",
                "-v",
                "--ro-bind",
                "/nope",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        assert_eq!(text(&o.stdout), "-v --ro-bind /nope\nbox\n", "{mode:?}");
    }
    // exec too.
    let o = cordon_args(Mode::Rootless, &["exec", "/bin/echo", "in", "place"]);
    assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
    assert_eq!(text(&o.stdout), "in place\n");
}

#[test]
fn with_secret_env_the_command_must_follow_double_dash() {
    let d = dir_with_file("secretcmd", "s3cret");
    let tok = format!("TOKEN=@{}/f", d.str());
    // A stray word after the spec would be taken as the command, and a
    // command is shown in errors: refused without showing it.
    let o = cordon_args(
        Mode::Rootless,
        &["run", "--secret-env", &tok, "hunter2", "--", "true"],
    );
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    assert_eq!(
        text(&o.stderr),
        "cordon: with --secret-env, put -- before the command (a word taken as the command is shown in errors, and it may be a secret's value typed by mistake)\n"
    );
    let o = cordon_args(
        Mode::Rootless,
        &[
            "run",
            "--secret-env",
            &tok,
            "--",
            "/bin/sh",
            "-c",
            "echo ${#TOKEN}",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
    assert_eq!(text(&o.stdout), "6\n");
}

#[test]
fn a_misspelt_option_gets_the_nearest_one() {
    let o = cordon_args(Mode::Rootless, &["run", "--ro-bnd", "/usr", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    let err = text(&o.stderr);
    assert!(err.contains("unexpected argument '--ro-bnd'"), "{err}");
    assert!(err.contains("a similar argument exists: '--ro-bind'"), "{err}");
    let o = cordon_args(Mode::Rootless, &["chekc"]);
    assert!(
        text(&o.stderr).contains("similar subcommand exists: 'check'"),
        "{}",
        diag(&o)
    );
}

#[test]
fn bubblewraps_two_argument_binds_are_accepted_before_double_dash() {
    let d = dir_with_file("bwrap2", "two\n");
    for mode in modes() {
        for flag in [
            "--ro-bind",
            "--bind",
            "--ro-bind-try",
            "--bind-try",
            "--bind-nofollow",
        ] {
            let o = cordon_args(mode, &["run", flag, d.str(), "/w", "--", "/bin/cat", "/w/f"]);
            assert_eq!(o.status.code(), Some(0), "{mode:?} {flag}: {}", diag(&o));
            assert_eq!(text(&o.stdout), "two\n", "{mode:?} {flag}");
        }
        // After an option that takes a value, still an option.
        let o = cordon_args(
            mode,
            &[
                "run",
                "--chdir",
                "/w",
                "--ro-bind",
                d.str(),
                "/w",
                "--",
                "/bin/cat",
                "f",
            ],
        );
        assert_eq!(text(&o.stdout), "two\n", "{mode:?}: {}", diag(&o));
        // The command's own words are never rewritten, even with a `--` among them.
        let o = cordon_args(
            mode,
            &[
                "run",
                "/bin/sh",
                "-c",
                "echo \"$@\"",
                "x",
                "--bind",
                "/a",
                "/b",
                "--",
                "z",
            ],
        );
        assert_eq!(text(&o.stdout), "--bind /a /b -- z\n", "{mode:?}: {}", diag(&o));
        // Without `--`, a bwrap-style DST taken as the command is explained.
        let o = cordon_args(mode, &["run", "--ro-bind", d.str(), "/w", "/bin/cat", "/w/f"]);
        assert_eq!(o.status.code(), Some(127), "{mode:?}: {}", diag(&o));
        assert!(
            text(&o.stderr).contains(&format!(
                "cordon: hint: /w was taken as the command: for bubblewrap's two-argument form put -- before the command (--ro-bind {0} /w -- CMD), or write --ro-bind {0}:/w",
                d.str()
            )),
            "{mode:?}: {}",
            diag(&o)
        );
        // Without `--` the word after SRC is the command, as documented.
        let o = cordon_args(
            mode,
            &["run", "--ro-bind", d.str(), "/bin/cat", &format!("{}/f", d.str())],
        );
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        assert_eq!(text(&o.stdout), "two\n", "{mode:?}");
    }
}

#[test]
fn relative_bind_sources_resolve_against_the_current_directory() {
    let d = dir_with_file("relative", "print('job')\n");
    for mode in modes() {
        let o = cordon(mode)
            .current_dir(d.path())
            .args([
                "run",
                "--ro-bind",
                "./f:/w/job.txt",
                "--",
                "/bin/cat",
                "/w/job.txt",
            ])
            .output()
            .expect("spawn");
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        assert_eq!(text(&o.stdout), "print('job')\n", "{mode:?}");
        // Without DST: the absolute path of the source.
        let o = cordon(mode)
            .current_dir(d.path())
            .args([
                "run",
                "--ro-bind",
                "f",
                "--",
                "/bin/cat",
                &format!("{}/f", d.str()),
            ])
            .output()
            .expect("spawn");
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        // `.` as the source.
        let o = cordon(mode)
            .current_dir(d.path())
            .args(["run", "--ro-bind", ".:/work", "--", "/bin/cat", "/work/f"])
            .output()
            .expect("spawn");
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
    }
}

#[test]
fn errors_from_flags_name_the_flag_not_a_mount_index() {
    let d = TempDir::new("flagerr");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--ro-bind", "./missing.py:/w/job.py"],
            "<command line>: --ro-bind ./missing.py:/w/job.py: cannot resolve host path",
        ),
        (
            &["--ro-bind", "/usr:relative"],
            "<command line>: --ro-bind /usr:relative: \"relative\" is not absolute",
        ),
        (
            &["--tmpfs", "scratch"],
            "<command line>: --tmpfs scratch: \"scratch\" is not absolute",
        ),
        (
            &["--bind", "/usr:/w/.."],
            "<command line>: --bind /usr:/w/..: \"/w/..\" contains '.' or '..'",
        ),
    ];
    for (flags, want) in cases {
        let o = cordon(Mode::Rootless)
            .current_dir(d.path())
            .arg("run")
            .args(flags)
            .args(["--", "true"])
            .output()
            .expect("spawn");
        assert_eq!(o.status.code(), Some(125), "{flags:?}: {}", diag(&o));
        let err = text(&o.stderr);
        assert!(err.contains(want), "{flags:?}: want {want:?}\n{err}");
        assert!(!err.contains("mounts["), "{flags:?}: {err}");
    }
}

#[test]
fn try_binds_skip_a_missing_source() {
    for mode in modes() {
        let o = cordon_args(
            mode,
            &[
                "run",
                "--ro-bind-try",
                "/nonexistent-cordon:/w",
                "--",
                "/bin/sh",
                "-c",
                "test ! -e /w",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        let o = cordon_args(mode, &["run", "--bind-try", "/nonexistent-cordon", "--", "true"]);
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        let o = cordon_args(
            mode,
            &["run", "--ro-bind", "/nonexistent-cordon:/w", "--", "true"],
        );
        assert_eq!(o.status.code(), Some(125), "{mode:?}: {}", diag(&o));
        assert!(
            text(&o.stderr)
                .contains("--ro-bind /nonexistent-cordon:/w: cannot resolve host path /nonexistent-cordon"),
            "{mode:?}: {}",
            diag(&o)
        );
    }
}

#[test]
fn allow_sensitive_lets_a_sensitive_source_be_bound_and_the_refusal_names_it() {
    // /etc/ssh is on the sensitive list and world-readable.
    require!(
        "etc-ssh",
        Path::new("/etc/ssh").is_dir(),
        "no /etc/ssh on this host"
    );
    for mode in modes() {
        let o = cordon_args(mode, &["run", "--ro-bind", "/etc/ssh:/x", "--", "true"]);
        assert_eq!(o.status.code(), Some(125), "{mode:?}: {}", diag(&o));
        let err = text(&o.stderr);
        assert!(
            err.contains("<command line>: --ro-bind /etc/ssh:/x: /etc/ssh is a sensitive host path"),
            "{err}"
        );
        assert!(err.contains("--allow-sensitive /etc/ssh"), "{err}");
        let o = cordon_args(
            mode,
            &[
                "run",
                "--allow-sensitive",
                "/etc/ssh",
                "--ro-bind",
                "/etc/ssh:/x",
                "--",
                "/bin/ls",
                "/x",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
    }
    let o = cordon_args(Mode::Rootless, &["check", "--allow-sensitive", "etc/ssh"]);
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    assert!(
        text(&o.stderr).contains("<command line>: --allow-sensitive etc/ssh: expected an absolute host path"),
        "{}",
        diag(&o)
    );
}

/// `cordon check FLAGS` as JSON.
fn checked(flags: &[&str]) -> serde_json::Value {
    let o = cordon(Mode::Rootless)
        .arg("check")
        .args(flags)
        .output()
        .expect("spawn");
    assert_eq!(o.status.code(), Some(0), "{flags:?}: {}", diag(&o));
    serde_json::from_slice(&o.stdout).expect("check prints JSON")
}

#[test]
fn best_effort_host_uid_and_seccomp_report_set_their_fields() {
    let p = checked(&["--memory", "64M", "--best-effort"]);
    assert_eq!(p["limits"]["compatibility"], "best_effort", "{p}");
    assert_eq!(p["landlock"]["compatibility"], "best_effort", "{p}");
    // Without it a cgroup flag asks for strict limits (the field is omitted).
    let p = checked(&["--memory", "64M"]);
    assert!(p["limits"].get("compatibility").is_none(), "{p}");
    // Rootless, only the caller's own id can be mapped: refused with why.
    let o = cordon_args(Mode::Rootless, &["check", "--host-uid", "123456"]);
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    assert!(
        text(&o.stderr).contains(
            "identity.host_uid: cordon runs without privileges as 4321 and can map only that id, not 123456"
        ),
        "{}",
        diag(&o)
    );
    if is_root() {
        let o = cordon(Mode::Root)
            .args(["check", "--host-uid", "123456", "--host-gid", "123457"])
            .output()
            .expect("spawn");
        assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        assert_eq!(p["identity"]["host_uid"], 123456, "{p}");
        assert_eq!(p["identity"]["host_gid"], 123457, "{p}");
    }
    let p = checked(&["--seccomp-report"]);
    assert_eq!(p["seccomp"]["report"], true, "{p}");

    let o = cordon_args(Mode::Rootless, &["check", "--host-uid", "0"]);
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    assert!(
        text(&o.stderr).contains("identity.host_uid: mapping the payload to host id 0"),
        "{}",
        diag(&o)
    );

    let d = TempDir::new("noseccomp");
    let policy = common::write_policy(&d, "p.json", r#"{"version": 1}"#);
    let o = cordon_args(
        Mode::Rootless,
        &["check", "--policy", &policy, "--seccomp-report"],
    );
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    assert!(
        text(&o.stderr).contains("<command line>: --seccomp-report: the policy has no \"seccomp\" section"),
        "{}",
        diag(&o)
    );
}

#[test]
fn host_uid_maps_a_root_started_sandbox_to_that_id() {
    require!("root", is_root(), "--host-uid is used when cordon runs as root");
    let r = common::run(
        Mode::Root,
        &["--host-uid", "234567", "--host-gid", "234567"],
        &["true"],
    );
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let st = r.status.as_ref().expect("outcome");
    assert_eq!(st["host_uid"], 234567, "{st}");
}

#[test]
fn seccomp_report_records_a_refused_call() {
    for mode in modes() {
        // unshare(CLONE_NEWUSER) is refused by the default policy.
        let r = common::run(
            mode,
            &["--seccomp-report"],
            &["/usr/bin/unshare", "--user", "true"],
        );
        let st = r.status.as_ref().expect("outcome");
        assert!(
            st["violations_total"].as_u64().unwrap_or(0) >= 1,
            "{mode:?}: {st}\n{}",
            r.stderr()
        );
    }
}

#[test]
fn a_timeout_prints_one_line_without_v_and_q_silences_it() {
    for mode in modes() {
        let o = cordon_args(mode, &["run", "--time-limit", "300ms", "--", "/bin/sleep", "10"]);
        assert_eq!(o.status.code(), Some(124), "{mode:?}: {}", diag(&o));
        let err = text(&o.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("timed out")).collect();
        assert_eq!(lines.len(), 1, "{mode:?}: {err}");
        assert!(
            lines[0].starts_with("cordon: timed out: the wall-clock limit expired after ")
                && lines[0].ends_with("ms and the sandbox was killed (exit code 124)"),
            "{mode:?}: {err}"
        );
        let o = cordon_args(
            mode,
            &["run", "-q", "--time-limit", "300ms", "--", "/bin/sleep", "10"],
        );
        assert_eq!(o.status.code(), Some(124), "{mode:?}: {}", diag(&o));
        assert_eq!(text(&o.stderr), "", "{mode:?}");
    }
}

#[test]
fn an_oom_kill_prints_one_line_without_v() {
    require!("root", is_root(), "cgroup limits need root on this host");
    require!("python3", common::have_python(), "no python3");
    let o = cordon_args(
        Mode::Root,
        &[
            "run",
            "--memory",
            "64M",
            "--",
            "/usr/bin/python3",
            "-c",
            "blocks = []\nwhile True:\n    blocks.append(bytearray(8 << 20))\n",
        ],
    );
    assert_eq!(o.status.code(), Some(137), "{}", diag(&o));
    assert!(
        text(&o.stderr).contains(
            "cordon: out of memory: the payload was killed at the sandbox's memory limit (exit code 137)"
        ),
        "{}",
        diag(&o)
    );
}

#[test]
fn q_silences_warnings_but_not_errors() {
    // A warning every host gives: the payload replaces the audit log.
    let d = TempDir::new("quiet");
    for mode in modes() {
        let log = d.path().join(format!("audit-{mode:?}.jsonl"));
        let run = |quiet: bool| {
            let _ = std::fs::remove_file(&log);
            let mut c = cordon(mode);
            c.arg("run");
            if quiet {
                c.arg("-q");
            }
            c.arg("--audit-log")
                .arg(&log)
                .arg("--bind")
                .arg(format!("{}:/w", d.str()))
                .args(["--", "/bin/sh", "-c"])
                .arg(format!(
                    "rm /w/audit-{mode:?}.jsonl && echo x > /w/audit-{mode:?}.jsonl"
                ));
            c.output().expect("spawn")
        };
        let o = run(false);
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        assert!(
            text(&o.stderr).contains("cordon: warning: audit log: ")
                && text(&o.stderr).contains("was replaced during the run"),
            "{mode:?}: {}",
            diag(&o)
        );
        let o = run(true);
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        assert_eq!(text(&o.stderr), "", "{mode:?}: {}", diag(&o));
    }
    // Rootless on a host without a delegated cgroup v2 subtree, a memory
    // limit cannot be enforced: refused, the refusal naming --best-effort,
    // and with --best-effort a warning, which -q silences.
    let o = cordon_args(Mode::Rootless, &["run", "--memory", "64M", "--", "true"]);
    if o.status.code() == Some(125) {
        assert!(
            text(&o.stderr).contains(
                "or set limits.compatibility to best_effort (--best-effort) to run without these limits"
            ),
            "{}",
            diag(&o)
        );
        let o = cordon_args(
            Mode::Rootless,
            &["run", "--memory", "64M", "--best-effort", "--", "true"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
        assert!(
            text(&o.stderr).contains("cordon: warning: not enforced: limits:"),
            "{}",
            diag(&o)
        );
        let o = cordon_args(
            Mode::Rootless,
            &["run", "-q", "--memory", "64M", "--best-effort", "--", "true"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
        assert_eq!(text(&o.stderr), "", "{}", diag(&o));
    }
    let o = cordon_args(Mode::Rootless, &["run", "-q", "--", "/nonexistent-program"]);
    assert_eq!(o.status.code(), Some(127), "{}", diag(&o));
    assert!(text(&o.stderr).contains("cordon: "), "{}", diag(&o));
    // -q and -v contradict each other.
    let o = cordon_args(Mode::Rootless, &["run", "-q", "-v", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    assert!(text(&o.stderr).contains("cannot be used with"), "{}", diag(&o));
}

#[test]
fn the_status_file_is_checked_before_anything_runs() {
    let d = TempDir::new("statusjson");
    for mode in modes() {
        let marker = d.path().join(format!("ran-{mode:?}"));
        let o = cordon(mode)
            .args([
                "run",
                "--status-json",
                "/nonexistent-cordon-dir/outcome.json",
                "--bind",
            ])
            .arg(format!("{}:/out", d.str()))
            .args(["--", "/bin/sh", "-c"])
            .arg(format!("touch /out/ran-{mode:?}"))
            .output()
            .expect("spawn");
        assert_eq!(o.status.code(), Some(125), "{mode:?}: {}", diag(&o));
        assert!(
            text(&o.stderr).contains("cordon: status-json: /nonexistent-cordon-dir/outcome.json"),
            "{mode:?}: {}",
            diag(&o)
        );
        assert!(!marker.exists(), "{mode:?}: the payload ran");
    }
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _cordon"),
        ("zsh", "#compdef cordon"),
        ("fish", "complete -c cordon"),
    ] {
        let o = cordon_args(Mode::Rootless, &["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", diag(&o));
        let s = text(&o.stdout);
        assert!(s.contains(marker), "{shell}: no {marker:?}");
        for flag in ["ro-bind", "allow-sensitive", "seccomp-report", "status-json"] {
            assert!(s.contains(flag), "{shell}: no {flag}");
        }
    }
    let o = cordon_args(Mode::Rootless, &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    assert!(text(&o.stderr).contains("invalid value 'tcsh'"), "{}", diag(&o));
    // bash reads the script without a syntax error.
    let o = cordon_args(Mode::Rootless, &["completions", "bash"]);
    let st = Command::new("bash")
        .args(["-n", "-c"])
        .arg(text(&o.stdout))
        .status()
        .expect("bash");
    assert!(st.success());
}

#[test]
fn version_names_the_commit_and_the_kernel_tables() {
    let o = cordon_args(Mode::Rootless, &["--version"]);
    assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
    let v = text(&o.stdout);
    let first = v.lines().next().unwrap_or("");
    assert!(
        first.starts_with(&format!("cordon {} (git ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let commit = first.rsplit("(git ").next().unwrap_or("").trim_end_matches(')');
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{v}"
    );
    // The test is built for the target cordon is: the C library matches.
    let libc = if cfg!(target_env = "musl") { "musl" } else { "gnu" };
    assert!(
        v.contains(&format!("target: {}-linux-{libc}\n", std::env::consts::ARCH)),
        "{v}"
    );
    assert!(v.contains("syscall tables: Linux 6.18: x86_64 (up to nr "), "{v}");
    assert!(v.contains("Landlock: ABI 1 to "), "{v}");
}

#[test]
fn install_man_puts_pages_and_completions_where_man_and_shells_look() {
    let d = TempDir::new("prefix");
    let prefix = d.path().join("usr");
    let o = Command::new(cordon_bin())
        .args(["install-man", "--prefix"])
        .arg(&prefix)
        .output()
        .expect("spawn");
    assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
    let out = text(&o.stdout);
    for rel in [
        "share/man/man1/cordon.1",
        "share/man/man5/cordon-policy.5",
        "share/bash-completion/completions/cordon",
        "share/zsh/site-functions/_cordon",
        "share/fish/vendor_completions.d/cordon.fish",
    ] {
        let p = prefix.join(rel);
        assert!(p.is_file(), "{} missing", p.display());
        assert!(out.contains(&format!("installed {}", p.display())), "{out}");
    }
    assert_eq!(
        std::fs::read_to_string(prefix.join("share/man/man1/cordon.1")).unwrap(),
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/cordon.1")).unwrap()
    );
    require!("man", Path::new("/usr/bin/man").exists(), "man is not installed");
    let man = prefix.join("share/man");
    for (page, want) in [
        (&["cordon"][..], "man1/cordon.1"),
        (&["5", "cordon-policy"][..], "man5/cordon-policy.5"),
    ] {
        let o = Command::new("man")
            .arg("-M")
            .arg(&man)
            .arg("-w")
            .args(page)
            .output()
            .expect("man");
        assert_eq!(o.status.code(), Some(0), "{page:?}: {}", diag(&o));
        assert_eq!(text(&o.stdout).trim(), man.join(want).display().to_string());
    }
    // And renders: the NAME section of cordon(1).
    let o = Command::new("man")
        .arg("-M")
        .arg(&man)
        .arg("cordon")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man");
    assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
    assert!(text(&o.stdout).contains("cordon - "), "{}", diag(&o));
    // A second install replaces the files (and a symlink is not followed).
    let victim = d.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let bash = prefix.join("share/bash-completion/completions/cordon");
    std::fs::remove_file(&bash).unwrap();
    std::os::unix::fs::symlink(&victim, &bash).unwrap();
    let o = Command::new(cordon_bin())
        .args(["install-man", "--prefix"])
        .arg(&prefix)
        .output()
        .expect("spawn");
    assert_eq!(o.status.code(), Some(0), "{}", diag(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert!(!bash.is_symlink());
    // An unwritable prefix: an error naming the path.
    let o = Command::new(cordon_bin())
        .args(["install-man", "--prefix", "/proc/cordon-nope"])
        .output()
        .expect("spawn");
    assert_eq!(o.status.code(), Some(125), "{}", diag(&o));
    assert!(
        text(&o.stderr).starts_with("cordon: install-man: /proc/cordon-nope/share/man/man1"),
        "{}",
        diag(&o)
    );
}

/// The long options `cordon SUB --help` lists.
fn help_options(sub: &[&str]) -> Vec<String> {
    let o = Command::new(cordon_bin())
        .args(sub)
        .arg("--help")
        .output()
        .expect("spawn");
    assert_eq!(o.status.code(), Some(0), "{sub:?}: {}", diag(&o));
    let mut found = Vec::new();
    for word in text(&o.stdout).split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
        if let Some(name) = word.strip_prefix("--") {
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() && name != "help" && !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn every_option_and_command_of_the_help_is_in_the_manual_page() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/cordon.1"))
        .expect("man/cordon.1")
        .replace("\\-", "-")
        .replace("\\%", "");
    let mut missing = Vec::new();
    for sub in [
        &["run"][..],
        &["exec"],
        &["check"],
        &["learn"],
        &["serve"],
        &["gc"],
        &["create"],
        &["ls"],
        &["features"],
        &["install-man"],
        &["seccomp", "compile"],
        &["seccomp", "explain"],
        &["seccomp", "import"],
    ] {
        for name in help_options(sub) {
            if !page.contains(&format!("--{name}")) {
                missing.push(format!("{sub:?}: --{name}"));
            }
        }
    }
    for name in ["completions", "install-man"] {
        if !page.contains(&format!(".B {name}"))
            && !page.contains(&format!(".BI {name}"))
            && !page.contains(&format!(".BR {name}"))
        {
            missing.push(format!("command {name}"));
        }
    }
    assert!(missing.is_empty(), "not in man/cordon.1: {missing:?}");
    assert!(help_options(&["run"]).contains(&"seccomp-report".to_string()));
}

#[test]
fn the_package_metadata_is_complete_for_cargo_install_and_packaging() {
    let toml = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("Cargo.toml");
    let package = toml.split("\n[").next().unwrap_or("");
    for key in [
        "description",
        "license",
        "repository",
        "readme",
        "keywords",
        "categories",
    ] {
        assert!(
            package.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "[package] has no {key}"
        );
    }
    let release = toml
        .split("\n[profile.release]\n")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("[profile.release]");
    // Not stripped at link time: lld lays out the code a launch runs
    // (bench/link-order.txt) only while it keeps the symbol table.
    assert!(
        release.lines().any(|l| l.trim() == "strip = false"),
        "the release profile strips at link time, which undoes the link order"
    );
    // The cargo-deb recipe ships the binary, both pages and the three completions.
    let deb = toml
        .split("\n[package.metadata.deb]\n")
        .nth(1)
        .expect("[package.metadata.deb]");
    for asset in [
        "target/release/cordon",
        "man/man1/cordon.1",
        "man/man5/cordon-policy.5",
        "bash-completion/completions/cordon",
        "site-functions/_cordon",
        "vendor_completions.d/cordon.fish",
    ] {
        assert!(deb.contains(asset), "the deb recipe lacks {asset}");
    }
}

#[test]
fn a_policy_name_found_in_the_current_directory_says_what_it_shadows() {
    // A directory one works in may hold a file one did not write: using
    // ./default.json for `--policy default` is said on stderr.
    let d = TempDir::new("shadow");
    let out = cordon(Mode::Root).args(["check"]).output().expect("spawn");
    std::fs::write(d.path().join("default.json"), &out.stdout).unwrap();
    std::fs::write(d.path().join("mine-only.json"), &out.stdout).unwrap();
    for f in ["default.json", "mine-only.json"] {
        set_mode(&d.path().join(f), 0o644);
    }
    for mode in modes() {
        let o = cordon(mode)
            .current_dir(d.path())
            .args(["check", "--policy", "default"])
            .output()
            .expect("spawn");
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        assert!(
            text(&o.stderr).contains(
                "cordon: warning: --policy default is ./default.json (the current directory), which shadows <built-in default policy>"
            ),
            "{mode:?}: {}",
            diag(&o)
        );
        // A name only the current directory has shadows nothing.
        let o = cordon(mode)
            .current_dir(d.path())
            .args(["check", "--policy", "mine-only"])
            .output()
            .expect("spawn");
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", diag(&o));
        assert!(!text(&o.stderr).contains("shadows"), "{mode:?}: {}", diag(&o));
    }
}

/// cordon started with its standard input and output closed (a service
/// manager, a careless parent) opens /dev/null on them first, as a
/// process's start-up must: otherwise the first files cordon opens (its
/// runtime directory, its id record, the host paths it resolves) would
/// take fds 0 and 1, and the payload's output, which cordon relays to
/// its own fd 1, would be written into one of them. Checked on the
/// running cordon's own fds once the payload has started. The entry
/// point does this itself since cordon skips Rust's start-up
/// (src/main.rs), so this guards that code.
#[test]
fn closed_standard_descriptors_become_dev_null_not_a_file_cordon_opened() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    for mode in modes() {
        let mut c = cordon(mode);
        c.args(["run", "--", "/bin/sh", "-c", "echo started >&2; exec sleep 60"])
            .stderr(Stdio::piped());
        // SAFETY: between fork and exec only close(2), which is
        // async-signal-safe, runs.
        unsafe {
            c.pre_exec(|| {
                libc::close(0);
                libc::close(1);
                Ok(())
            })
        };
        let mut child = c.spawn().expect("spawn cordon");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        err.read_line(&mut line).expect("read cordon's stderr");
        assert_eq!(line, "started\n", "{mode:?}: the payload did not start");
        let fds: Vec<String> = [0, 1]
            .iter()
            .map(|fd| {
                std::fs::read_link(format!("/proc/{}/fd/{fd}", child.id()))
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|e| format!("<{e}>"))
            })
            .collect();
        // cordon forwards SIGTERM to the payload and ends as usual
        // (releasing its host id). SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().expect("wait for cordon");
        assert!(
            status.code().is_some(),
            "{mode:?}: cordon died of a signal: {status:?}"
        );
        assert_eq!(fds, ["/dev/null", "/dev/null"], "{mode:?}: cordon's fds 0 and 1");
    }
}
