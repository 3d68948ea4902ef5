//! `cordon exec`: the policy's restrictions applied to cordon's own
//! process, then the command exec'd in place. Checked from inside with
//! `syscall_probe --self` (system calls only: there is no /proc), in the
//! root and rootless modes: same pid as the shell that exec'd cordon, no
//! capabilities, `no_new_privs`, a seccomp filter, the policy's ids and
//! rlimits, Landlock; and the layers that need a supervisor refused before
//! anything runs.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use common::{cordon_bin, modes, probe_bin, Mode, Probe, TempDir, ROOTLESS_ID};

/// A command started in `mode` with a clean environment.
fn command(mode: Mode, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.env_clear();
    c.env("PATH", "/usr/bin:/bin");
    c.env("HOME", "/nonexistent");
    c.stdin(Stdio::null());
    if mode == Mode::Rootless && common::is_root() {
        c.uid(ROOTLESS_ID).gid(ROOTLESS_ID);
    }
    c
}

/// `cordon exec ARGS...` in `mode`.
fn exec(mode: Mode, args: &[&str]) -> Output {
    command(mode, cordon_bin())
        .arg("exec")
        .args(args)
        .output()
        .expect("spawn cordon exec")
}

fn diag(mode: Mode, o: &Output) -> String {
    format!(
        "[{mode:?}] status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `KEY VALUE...` lines of `syscall_probe --self`.
fn fields(out: &str) -> std::collections::HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The restrictions of policies/exec.json (the built-in exec policy), as
/// `syscall_probe --self` reports them.
fn assert_restricted(mode: Mode, o: &Output) {
    let out = String::from_utf8_lossy(&o.stdout);
    let f = fields(&out);
    let d = diag(mode, o);
    assert_eq!(f.get("uid").map(String::as_str), Some("1000"), "{d}");
    assert_eq!(f.get("gid").map(String::as_str), Some("1000"), "{d}");
    assert_eq!(
        f.get("CapEff").map(String::as_str),
        Some("0000000000000000"),
        "{d}"
    );
    assert_eq!(f.get("NoNewPrivs").map(String::as_str), Some("1"), "{d}");
    assert_eq!(f.get("Seccomp").map(String::as_str), Some("2"), "{d}");
    assert_eq!(
        f.get("unshare(0)").map(String::as_str),
        Some("err 1 EPERM"),
        "{d}"
    );
    assert_eq!(
        f.get("RLIMIT_NOFILE").map(String::as_str),
        Some("1024 1024"),
        "{d}"
    );
    assert_eq!(f.get("RLIMIT_CORE").map(String::as_str), Some("0 0"), "{d}");
}

#[test]
fn probe_reports_an_unrestricted_process_as_such() {
    // The control for the assertions below: outside any sandbox the probe
    // sees no filter, no no_new_privs, and unshare(0) succeeds.
    let child = Command::new(probe_bin())
        .arg("--self")
        .stdout(Stdio::piped())
        .spawn()
        .expect("probe");
    let pid = child.id();
    let o = child.wait_with_output().expect("probe output");
    let out = String::from_utf8_lossy(&o.stdout);
    let f = fields(&out);
    assert!(o.status.success(), "{out}");
    assert_eq!(f.get("pid"), Some(&pid.to_string()), "{out}");
    assert_eq!(f.get("NoNewPrivs").map(String::as_str), Some("0"), "{out}");
    assert_eq!(f.get("Seccomp").map(String::as_str), Some("0"), "{out}");
    assert_eq!(f.get("unshare(0)").map(String::as_str), Some("ok 0"), "{out}");
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    assert_eq!(f.get("uid"), Some(&uid.to_string()), "{out}");
}

#[test]
fn exec_keeps_the_pid_and_restricts_the_process() {
    let probe = Probe::new();
    for mode in modes() {
        // The shell prints its pid and execs cordon, which execs the probe:
        // all three are one process.
        let script = format!(
            "echo shell $$; exec {} exec --ro-bind {} -- /probe/probe --self",
            cordon_bin().display(),
            probe.bind()
        );
        let o = command(mode, "/bin/sh")
            .args(["-c", &script])
            .output()
            .expect("spawn sh");
        let d = diag(mode, &o);
        assert!(o.status.success(), "{d}");
        let out = String::from_utf8_lossy(&o.stdout);
        let f = fields(&out);
        let shell = f.get("shell").expect("shell pid");
        assert_eq!(f.get("pid"), Some(shell), "cordon exec must not fork: {d}");
        assert_restricted(mode, &o);
        // Nothing on stderr but, on a kernel with an older Landlock ABI,
        // what the best-effort policy could not enforce, and the memfd
        // sysctl, which needs a pid namespace of the sandbox's own.
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.lines().all(|l| {
                l.starts_with("cordon: warning: not enforced: landlock")
                    || l.starts_with("cordon: warning: not enforced: memfd_noexec")
            }),
            "{d}"
        );
    }
}

#[test]
fn exec_with_the_exec_policy_file_matches_the_built_in_one() {
    let probe = Probe::new();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/exec.json");
    for mode in modes() {
        let b = probe.bind();
        let o = exec(
            mode,
            &[
                "--policy",
                policy,
                "--ro-bind",
                &b,
                "--",
                "/probe/probe",
                "--self",
            ],
        );
        assert!(o.status.success(), "{}", diag(mode, &o));
        assert_restricted(mode, &o);
    }
}

#[test]
fn exec_applies_landlock_namespaces_and_hostname() {
    let probe = Probe::new();
    // Executing a copy of the probe from /tmp (writable, so not executable
    // under Landlock) fails with EACCES (126); without Landlock it runs.
    // /tmp is mounted noexec unless the policy grants exec there: this
    // policy does, so that Landlock is what stands in the way.
    let dir = TempDir::new("exec-tmp");
    let tmp_exec = exec_policy_file(&dir, "tmp-exec.json", |v| {
        for m in v["mounts"].as_array_mut().expect("mounts") {
            if m["tmpfs"] == "/tmp" {
                m["exec"] = serde_json::Value::Bool(true);
            }
        }
    });
    let script = "cp /probe/probe /tmp/p && /tmp/p getpid >/dev/null 2>&1; echo exec_tmp $?; \
                  echo host $(uname -n); \
                  test -e /proc && echo proc yes || echo proc no; \
                  test -e /work && echo work yes || echo work no; \
                  grep -q '^daemon:' /etc/passwd 2>/dev/null && echo passwd yes || echo passwd no";
    for mode in modes() {
        let b = probe.bind();
        let o = exec(
            mode,
            &[
                "--policy",
                &tmp_exec,
                "--ro-bind",
                &b,
                "--",
                "/bin/sh",
                "-c",
                script,
            ],
        );
        let d = diag(mode, &o);
        assert!(o.status.success(), "{d}");
        let out = String::from_utf8_lossy(&o.stdout);
        let f = fields(&out);
        assert_eq!(f.get("exec_tmp").map(String::as_str), Some("126"), "{d}");
        assert_eq!(f.get("host").map(String::as_str), Some("cordon"), "{d}");
        assert_eq!(f.get("proc").map(String::as_str), Some("no"), "{d}");
        assert_eq!(f.get("work").map(String::as_str), Some("no"), "{d}");
        assert_eq!(f.get("passwd").map(String::as_str), Some("no"), "{d}");

        let o = exec(
            mode,
            &[
                "--policy",
                &tmp_exec,
                "--no-landlock",
                "--ro-bind",
                &b,
                "--",
                "/bin/sh",
                "-c",
                script,
            ],
        );
        let d = diag(mode, &o);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(fields(&out).get("exec_tmp").map(String::as_str), Some("0"), "{d}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("landlock: disabled by --no-landlock"),
            "{d}"
        );
    }
}

#[test]
fn exec_exit_codes_for_missing_and_failing_commands() {
    for mode in modes() {
        let o = exec(mode, &["--", "/usr/bin/does-not-exist-cordon"]);
        assert_eq!(o.status.code(), Some(127), "{}", diag(mode, &o));
        let o = exec(mode, &["--", "/bin/sh", "-c", "exit 7"]);
        assert_eq!(o.status.code(), Some(7), "{}", diag(mode, &o));
    }
}

/// A policy file: policies/exec.json changed by `change`.
fn exec_policy_file(dir: &TempDir, name: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/exec.json"))
        .expect("exec policy");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("exec policy is JSON");
    change(&mut v);
    common::write_policy(dir, name, &serde_json::to_string_pretty(&v).expect("json"))
}

#[test]
fn exec_refuses_what_needs_a_supervisor_and_runs_nothing() {
    let dir = TempDir::new("exec-refuse");
    let report = exec_policy_file(&dir, "report.json", |v| {
        v["seccomp"]["report"] = serde_json::Value::Bool(true);
    });
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.json");
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--policy", default], &["namespaces: \"pid\"", "\"proc\" mount"]),
        (&["--time-limit", "5s"], &["limits.wall_time"]),
        (&["--memory", "64M"], &["memory"]),
        (&["--policy", &report], &["seccomp.report"]),
    ];
    for mode in modes() {
        let out = TempDir::new("exec-out");
        let bind = format!("{}:/out", out.str());
        let marker = out.path().join("ran");
        // The control: the same command with nothing refused does run.
        let o = exec(mode, &["--bind", &bind, "--", "/usr/bin/touch", "/out/ran"]);
        assert!(o.status.success(), "{}", diag(mode, &o));
        assert!(marker.exists(), "[{mode:?}] the control did not run");
        std::fs::remove_file(&marker).expect("rm marker");
        for (flags, names) in cases {
            let mut args = flags.to_vec();
            args.extend(["--bind", &bind, "--", "/usr/bin/touch", "/out/ran"]);
            let o = exec(mode, &args);
            let d = format!("{flags:?}: {}", diag(mode, &o));
            assert_eq!(o.status.code(), Some(125), "{d}");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.starts_with("cordon: exec: "), "{d}");
            assert!(err.contains("without a supervisor"), "{d}");
            assert!(err.contains("cordon run"), "{d}");
            for n in names {
                assert!(err.contains(n), "{d}\nexpected {n:?} in the message");
            }
            assert!(o.stdout.is_empty(), "{d}");
            assert!(!marker.exists(), "{d}\nthe command ran");
        }
    }
}

/// Two PATH directories with a command of the same name: in the first it
/// cannot be executed (ENOEXEC: executable bits, no ELF header, no `#!`),
/// in the second it is a script that would print `ran-later`.
fn enoexec_then_script() -> TempDir {
    let dir = TempDir::new("path-enoexec");
    for (sub, body, mode) in [
        ("a", "\x01\x02 not a program\n", 0o755),
        ("b", "#!/bin/sh\necho ran-later\n", 0o755),
    ] {
        let d = dir.path().join(sub);
        std::fs::create_dir(&d).expect("mkdir");
        common::set_mode(&d, 0o755);
        let f = d.join("cordon-pathcmd");
        std::fs::write(&f, body).expect("write command");
        common::set_mode(&f, mode);
    }
    dir
}

#[test]
fn an_enoexec_file_earlier_on_path_ends_the_search_in_run_and_exec() {
    let dir = enoexec_then_script();
    let (a, b) = (format!("{}/a:/pa", dir.str()), format!("{}/b:/pb", dir.str()));
    let binds = ["--ro-bind", &a, "--ro-bind", &b, "--env", "PATH=/pa:/pb"];
    for mode in modes() {
        // The control: with only the script's directory on PATH it runs,
        // so the binds and the script are fine.
        let mut args = binds.to_vec();
        args.extend(["--env", "PATH=/pb", "--", "cordon-pathcmd"]);
        let o = exec(mode, &args);
        let d = diag(mode, &o);
        assert!(o.status.success(), "{d}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), "ran-later\n", "{d}");
        let r = common::run(
            mode,
            &binds[..4],
            &["/bin/sh", "-c", "PATH=/pb exec cordon-pathcmd"],
        );
        assert_eq!(
            r.stdout(),
            "ran-later\n",
            "[{mode:?}] run control: {}",
            r.stderr()
        );

        // execvp stops at the ENOEXEC file: 126, and the later entry
        // never runs, under `cordon exec`...
        let mut args = binds.to_vec();
        args.extend(["--", "cordon-pathcmd"]);
        let o = exec(mode, &args);
        let d = diag(mode, &o);
        assert_eq!(o.status.code(), Some(126), "{d}");
        assert!(o.stdout.is_empty(), "{d}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("/pa/cordon-pathcmd"),
            "{d}"
        );
        // ... and under `cordon run`, which shares the search.
        let r = common::run(mode, &binds, &["cordon-pathcmd"]);
        assert_eq!(r.code(), 126, "[{mode:?}] run: {}", r.stderr());
        assert_eq!(r.stdout(), "", "[{mode:?}] run: {}", r.stderr());
        assert!(
            r.stderr().contains("/pa/cordon-pathcmd"),
            "[{mode:?}] run: {}",
            r.stderr()
        );
    }
}
