//! examples/tool_runner.rs, run as an agent framework would: one JSON tool
//! call on stdin, one JSON result on stdout. Real commands in real
//! sandboxes, as root and rootless (root-only parts print SKIPPED).
mod common;
use common::*;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The example binary, built by `cargo test` next to the test binaries.
fn runner_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join("examples/tool_runner");
    assert!(
        p.exists(),
        "{} is missing: build it with cargo test or cargo build --examples",
        p.display()
    );
    p
}

/// What one tool call gave.
struct Call {
    code: i32,
    result: Value,
    stderr: String,
    elapsed: Duration,
}

/// Send `input` (raw text) to the tool runner in `mode`.
fn call_raw(mode: Mode, input: &str) -> Call {
    let mut c = Command::new(runner_bin());
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if mode == Mode::Rootless && is_root() {
        c.uid(ROOTLESS_ID).gid(ROOTLESS_ID);
    }
    let start = Instant::now();
    let mut child = c.spawn().expect("spawn tool_runner");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    // From a thread: a large call must not block against unread output.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for tool_runner");
    writer.join().expect("writer");
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stdout.lines().count(),
        1,
        "{mode:?}: one line of JSON expected\nstdout: {stdout}\nstderr: {stderr}"
    );
    let result: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{mode:?}: result is not JSON ({e}): {stdout}\nstderr: {stderr}"));
    Call {
        code: out.status.code().expect("tool_runner exited"),
        result,
        stderr,
        elapsed,
    }
}

/// Send a tool call.
fn call(mode: Mode, tool_call: &Value) -> Call {
    call_raw(mode, &tool_call.to_string())
}

fn policy(name: &str) -> String {
    format!("{}/policies/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn python_computes_and_the_result_has_every_field() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    for mode in modes() {
        let c = call(
            mode,
            &json!({"command": "python3", "args": ["-c", "import sys; print(6*7); print('warn', file=sys.stderr)"]}),
        );
        let r = &c.result;
        assert_eq!(c.code, 0, "{mode:?}: {r} {}", c.stderr);
        assert_eq!(r["status"], "exited", "{mode:?}: {r}");
        assert_eq!(r["exit_code"], 0, "{mode:?}: {r}");
        assert_eq!(r["signal"], Value::Null, "{mode:?}: {r}");
        assert_eq!(r["timed_out"], false, "{mode:?}: {r}");
        assert_eq!(r["stdout"], "42\n", "{mode:?}: {r}");
        assert_eq!(r["stderr"], "warn\n", "{mode:?}: {r}");
        assert_eq!(r["stdout_truncated"], false, "{mode:?}: {r}");
        assert_eq!(r["stderr_truncated"], false, "{mode:?}: {r}");
        for k in ["wall_time_ms", "user_time_ms", "system_time_ms", "max_rss_kb"] {
            assert!(r[k].is_u64(), "{mode:?}: {k} in {r}");
        }
        assert!(r["max_rss_kb"].as_u64() > Some(0), "{mode:?}: {r}");
        // Set only when there is something to say.
        for k in ["error", "cgroup", "violations"] {
            assert!(r.get(k).is_none(), "{mode:?}: {k} in {r}");
        }
    }
}

#[test]
fn stdin_is_passed_through() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    for mode in modes() {
        let c = call(
            mode,
            &json!({"command": "python3",
                    "args": ["-c", "import sys; print(sys.stdin.read().upper())"],
                    "stdin": "hello, sandbox", "policy": "default"}),
        );
        assert_eq!(c.code, 0, "{mode:?}: {} {}", c.result, c.stderr);
        assert_eq!(c.result["stdout"], "HELLO, SANDBOX\n", "{mode:?}: {}", c.result);
        // Without "stdin" the command reads end-of-file at once.
        let c = call(
            mode,
            &json!({"command": "sh", "args": ["-c", "wc -c"], "policy": null}),
        );
        assert_eq!(
            c.result["stdout"].as_str().map(str::trim),
            Some("0"),
            "{mode:?}: {}",
            c.result
        );
    }
}

#[test]
fn large_stdin_and_output_at_once_do_not_deadlock() {
    // cat writes while it reads: a runner that wrote all of stdin before
    // reading stdout would block on both pipes.
    let input: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    assert!(input.len() > 200_000);
    for mode in modes() {
        let c = call(
            mode,
            &json!({"command": "/bin/sh", "args": ["-c", "cat; cat /usr/bin/sh >&2"],
                    "stdin": input, "time_limit": "30s"}),
        );
        assert_eq!(c.result["status"], "exited", "{mode:?}: {}", c.stderr);
        assert_eq!(c.result["stdout"].as_str(), Some(input.as_str()), "{mode:?}");
        assert_eq!(c.result["stdout_truncated"], false, "{mode:?}");
    }
}

#[test]
fn the_time_limit_kills_the_command_and_the_call_returns_fast() {
    for mode in modes() {
        let marker = format!("tool-runner-timeout-{}-{mode:?}", std::process::id());
        let c = call(
            mode,
            &json!({"command": "/bin/sh", "args": ["-c", format!("sleep 30; : {marker}")],
                    "time_limit": "1s"}),
        );
        let r = &c.result;
        assert_eq!(c.code, 0, "{mode:?}: {r} {}", c.stderr);
        assert_eq!(r["status"], "timed_out", "{mode:?}: {r}");
        assert_eq!(r["timed_out"], true, "{mode:?}: {r}");
        assert_eq!(r["exit_code"], 124, "{mode:?}: {r}");
        assert!(
            c.elapsed < Duration::from_secs(10),
            "{mode:?}: took {:?}",
            c.elapsed
        );
        let wall = r["wall_time_ms"].as_u64().unwrap_or(0);
        assert!((900..10_000).contains(&wall), "{mode:?}: {r}");
        assert!(
            wait_until(2.0, || host_processes_with(&marker).is_empty()),
            "{mode:?}: the sandbox's shell outlived the call"
        );
    }
}

#[test]
fn output_beyond_the_cap_is_truncated_and_drained() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    for mode in modes() {
        // 3 MiB on stdout, 2 MiB of two-byte characters on stderr: both over
        // the 1 MiB cap; the command must still finish (the rest is drained).
        let c = call(
            mode,
            &json!({"command": "python3", "args": ["-c",
                "import sys\nsys.stdout.write('x' * (3 << 20))\nsys.stderr.write('\u{e9}' * (1 << 20))\nprint('done', file=sys.stderr)"],
                "time_limit": "30s"}),
        );
        let r = &c.result;
        assert_eq!(c.code, 0, "{mode:?}: {} {}", r["status"], c.stderr);
        assert_eq!(r["status"], "exited", "{mode:?}: {}", r["error"]);
        assert_eq!(r["exit_code"], 0, "{mode:?}");
        assert_eq!(r["stdout_truncated"], true, "{mode:?}");
        assert_eq!(r["stderr_truncated"], true, "{mode:?}");
        let out = r["stdout"].as_str().expect("stdout");
        assert_eq!(out.len(), 1 << 20, "{mode:?}");
        assert!(out.bytes().all(|b| b == b'x'), "{mode:?}");
        // Cut at a character boundary: no replacement character at the end.
        let err = r["stderr"].as_str().expect("stderr");
        assert!(err.len() <= 1 << 20, "{mode:?}: {}", err.len());
        assert!(err.chars().all(|ch| ch == '\u{e9}'), "{mode:?}");
    }
}

#[test]
fn a_bad_tool_call_is_an_error_result_and_a_nonzero_exit() {
    for mode in modes() {
        let cases: Vec<(&str, String)> = vec![
            ("not JSON", "{\"command\": ".to_string()),
            (
                "two calls",
                r#"{"command": "true"} {"command": "true"}"#.to_string(),
            ),
            ("no command", r#"{"args": ["x"]}"#.to_string()),
            (
                "a misspelt field",
                r#"{"command": "true", "time_limt": "1s"}"#.to_string(),
            ),
            (
                "args not strings",
                r#"{"command": "true", "args": [1, 2]}"#.to_string(),
            ),
            (
                "a bad duration",
                r#"{"command": "true", "time_limit": "5"}"#.to_string(),
            ),
            (
                "a bad size",
                r#"{"command": "true", "memory": "lots"}"#.to_string(),
            ),
            (
                "a missing policy file",
                r#"{"command": "true", "policy": "/nonexistent/policy.json"}"#.to_string(),
            ),
        ];
        for (what, input) in &cases {
            let c = call_raw(mode, input);
            let r = &c.result;
            assert_eq!(c.code, 2, "{mode:?} {what}: {r}");
            assert_eq!(r["status"], "invalid_call", "{mode:?} {what}: {r}");
            assert_eq!(r["exit_code"], Value::Null, "{mode:?} {what}: {r}");
            let msg = r["error"]["message"].as_str().unwrap_or("");
            assert!(!msg.is_empty(), "{mode:?} {what}: {r}");
        }
        // A policy file that is not a policy: the error says where.
        let dir = TempDir::new("tool-runner");
        let bad = write_policy(
            &dir,
            "bad.json",
            r#"{"version": 1, "mounts": [{"tmpfs": "/tmp", "size": "64Q"}]}"#,
        );
        let c = call(mode, &json!({"command": "true", "policy": bad}));
        assert_eq!(c.code, 2, "{mode:?}: {}", c.result);
        let msg = c.result["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("bad.json:1:") && msg.contains("mounts[0].size"),
            "{mode:?}: {msg}"
        );
    }
}

#[test]
fn a_command_that_cannot_start_is_a_setup_failure() {
    for mode in modes() {
        let c = call(mode, &json!({"command": "no-such-tool-xyz"}));
        let r = &c.result;
        assert_eq!(c.code, 1, "{mode:?}: {r}");
        assert_eq!(r["status"], "setup_failed", "{mode:?}: {r}");
        assert_eq!(r["exit_code"], 127, "{mode:?}: {r}");
        assert_eq!(r["error"]["step"], "exec", "{mode:?}: {r}");
        // A policy that needs a bind source the host lacks.
        let dir = TempDir::new("tool-runner");
        let p = write_policy(
            &dir,
            "missing-bind.json",
            r#"{"version": 1, "namespaces": ["user", "mount", "pid"],
                "mounts": [{"bind": "/nonexistent-tool-runner-dir"}]}"#,
        );
        let c = call(mode, &json!({"command": "/bin/true", "policy": p}));
        assert_eq!(c.code, 1, "{mode:?}: {}", c.result);
        assert_eq!(c.result["status"], "setup_failed", "{mode:?}: {}", c.result);
        assert_eq!(c.result["exit_code"], 125, "{mode:?}: {}", c.result);
    }
}

#[test]
fn tool_python_policy_reports_violations_and_cgroup_usage() {
    require!(
        "root",
        is_root(),
        "cgroup limits on this host and seccomp reports need root"
    );
    require!("python3", have_python(), "needs /usr/bin/python3");
    let c = call(
        Mode::Root,
        &json!({"command": "python3", "args": ["-c",
            "import socket\ntry:\n    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\nexcept OSError as e:\n    print(e.errno)"],
            "policy": policy("tool-python.json"), "memory": "256M"}),
    );
    let r = &c.result;
    assert_eq!(c.code, 0, "{r} {}", c.stderr);
    assert_eq!(r["stdout"], "1\n", "{r}");
    let v = r["violations"].as_array().expect("violations");
    assert!(v.iter().any(|x| x["syscall"] == "socket"), "{r}");
    assert!(r["violations_total"].as_u64() >= Some(1), "{r}");
    if r["unenforced"].as_array().is_some_and(|u| {
        u.iter()
            .any(|x| x.as_str().is_some_and(|s| s.starts_with("limits")))
    }) {
        require!("cgroups", false, "this host cannot enforce cgroup limits");
    }
    assert!(r["cgroup"]["paths"].is_array(), "{r}");
}
