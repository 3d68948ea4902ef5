//! Interactive use: cordon run on a real terminal (a pty made by
//! tests/data/pty_driver.py) gives the payload a pty of the sandbox's own:
//! `tty` names it, `stty size` is the caller's, Ctrl-C interrupts, job
//! control works, the caller's terminal modes come back, and TIOCSTI inside
//! cannot reach the caller's terminal; `--no-tty` keeps pipes.

mod common;
use common::*;

use serde_json::{json, Value};

/// One session on a fresh pty: cordon run ARGS -- CMD, with these
/// keystrokes (wait-for text, bytes to send, delay).
fn drive(mode: Mode, args: &[&str], cmd: &[&str], steps: Value, limit_s: u64) -> Value {
    drive_with(mode, &[], args, cmd, steps, limit_s, json!({}))
}

/// [`drive`] with a command line before cordon's (`wrap`: cordon and its
/// arguments follow as "$0" "$@") and more of the driver's settings.
fn drive_with(
    mode: Mode,
    wrap: &[&str],
    args: &[&str],
    cmd: &[&str],
    steps: Value,
    limit_s: u64,
    extra: Value,
) -> Value {
    let mut argv: Vec<String> = wrap.iter().map(|a| a.to_string()).collect();
    argv.extend([s(cordon_bin()), "run".to_string()]);
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.push("--".to_string());
    argv.extend(cmd.iter().map(|a| a.to_string()));
    let mut spec = json!({
        "argv": argv,
        "env": {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "TERM": "dumb"},
        "uid": if mode == Mode::Rootless && is_root() { Some(ROOTLESS_ID) } else { None },
        "rows": 37,
        "cols": 101,
        "steps": steps,
        "limit": limit_s * u64::from(slow_factor()),
        "step_wait": 10 * slow_factor(),
        "slow": slow_factor(),
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_driver.py");
    let o = std::process::Command::new("/usr/bin/python3")
        .arg(driver)
        .arg(spec.to_string())
        .output()
        .expect("run the pty driver");
    assert!(
        o.status.success(),
        "pty driver failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&o.stdout).expect("driver report is JSON");
    assert_eq!(r["killed"], false, "{mode:?}: cordon had to be killed: {r}");
    r
}

fn out(r: &Value) -> String {
    r["out"].as_str().unwrap_or_default().to_string()
}

macro_rules! need_python {
    () => {
        require!("python3", have_python(), "needs /usr/bin/python3");
    };
}

#[test]
fn tty_names_a_pty_of_the_sandbox_and_stty_size_is_the_callers() {
    need_python!();
    for mode in modes() {
        let r = drive(
            mode,
            &[],
            &["/bin/sh", "-c", "tty; stty size; echo end"],
            json!([]),
            30,
        );
        let o = out(&r);
        assert_eq!(r["code"], 0, "{mode:?}: {r}");
        assert!(o.contains("/dev/pts/0\r\n"), "{mode:?}: tty: {o:?}");
        assert!(o.contains("37 101\r\n"), "{mode:?}: stty size: {o:?}");
        assert!(o.contains("end"), "{mode:?}: {o:?}");
        assert_eq!(
            r["modes_same"], true,
            "{mode:?}: the caller's terminal modes changed: {r}"
        );
        assert_eq!(r["pending"], 0, "{mode:?}: {r}");
    }
}

#[test]
fn no_tty_keeps_pipes_and_no_controlling_terminal() {
    need_python!();
    for mode in modes() {
        let r = drive(
            mode,
            &["--no-tty"],
            &["/bin/sh", "-c", "tty; echo end"],
            json!([]),
            30,
        );
        let o = out(&r);
        assert!(o.contains("not a tty"), "{mode:?}: {o:?}");
        assert!(o.contains("end"), "{mode:?}: {o:?}");
        assert_eq!(r["modes_same"], true, "{mode:?}: {r}");
    }
}

#[test]
fn tty_flag_without_a_terminal_still_gives_a_pty() {
    for mode in modes() {
        let r = run(mode, &["--tty"], &["/bin/sh", "-c", "tty; echo end"]);
        assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        // Output through the pty: the line discipline's CR LF.
        assert_eq!(r.stdout(), "/dev/pts/0\r\nend\r\n", "{mode:?}: {}", r.stderr());
        let r = run(mode, &[], &["/bin/sh", "-c", "tty"]);
        assert_eq!(r.stdout(), "not a tty\n", "{mode:?}: without a terminal: pipes");
    }
}

#[test]
fn tty_and_no_tty_conflict_and_tty_needs_a_dev() {
    let r = run(Mode::Rootless, &["--tty", "--no-tty"], &["/bin/true"]);
    assert_eq!(r.code(), 125, "{}", r.stderr());
    assert!(
        r.stderr().contains("'--tty' cannot be used with '--no-tty'"),
        "{}",
        r.stderr()
    );
    let dir = TempDir::new("pty-nodev");
    let mut p: Value = serde_json::from_str(include_str!("../policies/default.json")).unwrap();
    p["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m.get("dev").is_none());
    p.as_object_mut().unwrap().remove("landlock");
    let policy = write_policy(&dir, "nodev.json", &p.to_string());
    let r = run(Mode::Rootless, &["--policy", &policy, "--tty"], &["/bin/true"]);
    assert_eq!(r.code(), 125, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("--tty: the sandbox has no /dev of its own (a mounts entry of type dev)"),
        "{}",
        r.stderr()
    );
}

#[test]
fn ctrl_c_interrupts_sleep_at_once() {
    need_python!();
    for mode in modes() {
        let r = drive(
            mode,
            &[],
            &["/bin/sh", "-c", "echo READY; exec sleep 20"],
            json!([{"wait": "READY", "send": "\u{3}", "delay": 0.3}]),
            30,
        );
        let sent = r["sent_at"][0].as_f64().expect("Ctrl-C was sent");
        let took = r["exited_at"].as_f64().unwrap() - sent;
        assert!(
            took < 2.0 * f64::from(slow_factor()),
            "{mode:?}: cordon ended {took:.2}s after Ctrl-C: {r}"
        );
        // sleep died of SIGINT: 128 + 2.
        assert_eq!(r["code"], 130, "{mode:?}: {r}");
        assert_eq!(r["modes_same"], true, "{mode:?}: {r}");
    }
}

#[test]
fn job_control_works_in_an_interactive_shell() {
    need_python!();
    require!(
        "bash",
        std::path::Path::new("/bin/bash").exists(),
        "needs /bin/bash"
    );
    for mode in modes() {
        let r = drive(
            mode,
            &[],
            &["/bin/bash", "--norc", "--noprofile", "-i"],
            json!([
                {"wait": "$ ", "send": "sleep 30 &\n"},
                {"wait": "[1] ", "send": "jobs; echo J-$((6*7))\n", "delay": 0.3},
                {"wait": "J-42", "send": "kill %1; sleep 0.3; jobs; echo K-$((6*7))\n"},
                {"wait": "K-42", "send": "sleep 40\n", "delay": 0.3},
                {"wait": null, "send": "\u{1a}", "delay": 0.5},
                {"wait": "Stopped", "send": "jobs; echo S-$((6*7))\n", "delay": 0.2},
                {"wait": "S-42", "send": "fg\n"},
                {"wait": null, "send": "\u{3}", "delay": 0.5},
                {"wait": null, "send": "echo F-$((6*7))\n", "delay": 0.3},
                {"wait": "F-42", "send": "exit 7\n"},
            ]),
            40,
        );
        let o = out(&r);
        assert!(!o.contains("no job control"), "{mode:?}: {o}");
        assert!(!o.contains("cannot set terminal process group"), "{mode:?}: {o}");
        assert!(
            o.contains("Running                 sleep 30 &"),
            "{mode:?}: jobs: {o}"
        );
        let after_kill = &o[o.find("K-42").map_or(0, |i| i.saturating_sub(200))..];
        assert!(after_kill.contains("Terminated"), "{mode:?}: kill %1: {o}");
        assert!(
            o.contains("Stopped"),
            "{mode:?}: Ctrl-Z did not stop sleep 40: {o}"
        );
        // fg resumed it in the foreground, and Ctrl-C ended it there.
        let fg = o.rfind("S-42").unwrap();
        assert!(o[fg..].contains("fg\r\nsleep 40"), "{mode:?}: fg: {o}");
        assert!(o[fg..].contains("F-42"), "{mode:?}: {o}");
        assert_eq!(r["code"], 7, "{mode:?}: {r}");
        assert_eq!(r["modes_same"], true, "{mode:?}: {r}");
        assert!(
            r["exited_at"].as_f64().unwrap() < 20.0 * f64::from(slow_factor()),
            "{mode:?}: {r}"
        );
    }
}

/// The payload's TIOCSTI: `ioctl(fd, TIOCSTI, b)` for each byte of a
/// command line on each of its stdio fds, then the outcome of each.
const TIOCSTI_SCRIPT: &str = r#"
import fcntl, termios, sys
res = []
for fd in (0, 1, 2):
    try:
        for b in b"echo INJECTED-$((40+2))\n":
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([b]))
        res.append("ok")
    except OSError as e:
        res.append("errno%d" % e.errno)
print("TIOCSTI", " ".join(res), flush=True)
"#;

#[test]
fn tiocsti_inside_cannot_reach_the_callers_terminal() {
    need_python!();
    // The default policy refuses TIOCSTI; a policy without seccomp lets it
    // through to the pty the payload is on: either way the caller's
    // terminal (the driver's pty) gets nothing.
    let dir = TempDir::new("pty-tiocsti");
    let mut p: Value = serde_json::from_str(include_str!("../policies/default.json")).unwrap();
    p.as_object_mut().unwrap().remove("seccomp");
    let open = write_policy(&dir, "noseccomp.json", &p.to_string());
    for mode in modes() {
        for (args, expect) in [
            (vec![], "TIOCSTI errno1 errno1 errno1"),
            (vec!["--policy", open.as_str()], "TIOCSTI ok ok ok"),
            (
                vec!["--policy", open.as_str(), "--no-tty"],
                "TIOCSTI errno1 errno1 errno1",
            ),
        ] {
            let r = drive(
                mode,
                &args,
                &["/usr/bin/python3", "-c", TIOCSTI_SCRIPT],
                json!([]),
                30,
            );
            let o = out(&r);
            assert!(o.contains(expect), "{mode:?} {args:?}: {o}");
            // Nothing was pushed into the caller's terminal's input, and
            // no shell ran the injected line (its output would be
            // INJECTED-42).
            assert_eq!(r["pending"], 0, "{mode:?} {args:?}: {r}");
            assert!(!o.contains("INJECTED-42"), "{mode:?} {args:?}: {o}");
            assert_eq!(r["modes_same"], true, "{mode:?} {args:?}: {r}");
        }
    }
}

#[test]
fn window_size_follows_the_callers_terminal() {
    need_python!();
    for mode in modes() {
        // The driver's pty is 37x101; a payload that asks twice sees the
        // same, and a payload's own stty change stays inside.
        let r = drive(
            mode,
            &[],
            &[
                "/bin/sh",
                "-c",
                "stty size; stty rows 10 cols 20; stty size; stty -echo",
            ],
            json!([]),
            30,
        );
        let o = out(&r);
        assert!(o.contains("37 101\r\n10 20\r\n"), "{mode:?}: {o:?}");
        assert_eq!(
            r["modes_same"], true,
            "{mode:?}: the payload's stty leaked out: {r}"
        );
    }
}

#[test]
fn sigwinch_carries_a_new_size_into_the_sandbox() {
    need_python!();
    for mode in modes() {
        let r = drive(
            mode,
            &[],
            &[
                "/bin/sh",
                "-c",
                "trap 'stty size; exit 0' WINCH; echo READY; while :; do sleep 0.1; done",
            ],
            json!([{"wait": "READY", "resize": [24, 66], "delay": 0.3}]),
            30,
        );
        assert!(out(&r).contains("24 66\r\n"), "{mode:?}: {r}");
        assert_eq!(r["code"], 0, "{mode:?}: {r}");
    }
}

#[test]
fn the_terminal_is_restored_when_cordon_is_killed_by_sigterm_and_on_a_timeout() {
    need_python!();
    for mode in modes() {
        let r = drive(
            mode,
            &["--time-limit", "1s"],
            &["/bin/sh", "-c", "echo READY; exec sleep 20"],
            json!([]),
            30,
        );
        assert_eq!(r["code"], 124, "{mode:?}: {r}");
        assert_eq!(r["modes_same"], true, "{mode:?}: {r}");
        // SIGTERM to cordon itself: forwarded, the payload dies of it,
        // and cordon puts the terminal back before it exits.
        let r = drive(
            mode,
            &[],
            &["/bin/sh", "-c", "echo READY; exec sleep 20"],
            json!([{"wait": "READY", "signal": libc::SIGTERM, "delay": 0.3}]),
            30,
        );
        assert_eq!(r["code"], 143, "{mode:?}: {r}");
        assert_eq!(r["modes_same"], true, "{mode:?}: {r}");
    }
}

#[test]
fn verbose_lines_keep_their_carriage_return_on_the_raw_terminal() {
    need_python!();
    // Violations shown live (-v with seccomp.report) go to the caller's
    // terminal while it is raw: each line still starts at column 0.
    let dir = TempDir::new("pty-verbose");
    let mut p: Value = serde_json::from_str(include_str!("../policies/default.json")).unwrap();
    p["seccomp"]["report"] = json!(true);
    let policy = write_policy(&dir, "report.json", &p.to_string());
    for mode in modes() {
        let r = drive(
            mode,
            &["-v", "--policy", &policy],
            &[
                "/usr/bin/python3",
                "-c",
                "import ctypes\nprint('unshare', ctypes.CDLL(None).unshare(0x10000000), flush=True)",
            ],
            json!([]),
            30,
        );
        let o = out(&r);
        assert!(o.contains("unshare -1\r\n"), "{mode:?}: {o:?}");
        assert!(o.contains("unshare(0x10000000"), "{mode:?}: {o:?}");
        for line in o.split('\n').filter(|l| l.contains("cordon: ")) {
            assert!(
                line.ends_with('\r'),
                "{mode:?}: a bare LF after {line:?} in {o:?}"
            );
        }
        assert_eq!(r["modes_same"], true, "{mode:?}: {r}");
    }
}

#[test]
fn a_redirected_stderr_stays_the_callers() {
    need_python!();
    let dir = TempDir::new("pty-stderr");
    for mode in modes() {
        let log = dir.path().join(format!("{mode:?}.log"));
        let r = drive_with(
            mode,
            &[],
            &[],
            &[
                "/bin/sh",
                "-c",
                "tty; echo to-stderr >&2; tty <&2 || echo stderr-not-a-tty",
            ],
            json!([]),
            30,
            json!({"stderr_file": s(&log)}),
        );
        let o = out(&r);
        assert!(o.contains("/dev/pts/0\r\n"), "{mode:?}: {o:?}");
        assert!(o.contains("stderr-not-a-tty"), "{mode:?}: {o:?}");
        assert!(!o.contains("to-stderr"), "{mode:?}: {o:?}");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert_eq!(without_landlock_warnings(&logged), "to-stderr\n", "{mode:?}");
    }
}

#[test]
fn a_background_cordon_keeps_pipes_rather_than_stop() {
    need_python!();
    for mode in modes() {
        // A job-control shell starts cordon as a background job of the
        // terminal: raw mode would stop it (SIGTTOU), so no pty.
        let r = drive_with(
            mode,
            &["/bin/sh", "-c", "set -m; \"$0\" \"$@\" & wait $!"],
            &[],
            &["/bin/sh", "-c", "tty; echo end"],
            json!([]),
            30,
            json!({}),
        );
        let o = out(&r);
        assert!(o.contains("not a tty"), "{mode:?}: {o:?}");
        assert!(o.contains("end"), "{mode:?}: {o:?}");
        assert_eq!(r["code"], 0, "{mode:?}: {r}");
        assert_eq!(r["modes_same"], true, "{mode:?}: {r}");
    }
}
