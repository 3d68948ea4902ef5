//! The audit trail: every line one JSON object of a documented event
//! (cordon-policy(5), AUDIT LOG), validated against the schema below; the
//! events of a run in order; concurrent sandboxes appending to one file;
//! `fd:N`; nothing from the environment's values.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use common::{cordon, cordon_bin, is_root, modes, run, time_limit, Mode, Probe, TempDir, ROOTLESS_ID};
use serde_json::Value;

/// A field's JSON type.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Str,
    Uint,
    Int,
    Strings,
    Bool,
}

/// Every event and its fields after `ts`, `sandbox` and `event`: name,
/// type, required. A line with another event, a missing required field or
/// a field not listed fails.
/// A field: name, type, required.
type Field = (&'static str, Ty, bool);

const SCHEMA: &[(&str, &[Field])] = &[
    (
        "sandbox.started",
        &[
            ("policy_digest", Ty::Str, true),
            ("policy", Ty::Str, true),
            ("argv", Ty::Strings, true),
            ("host_uid", Ty::Uint, true),
            ("enforced", Ty::Strings, true),
            ("unenforced", Ty::Strings, true),
        ],
    ),
    (
        "seccomp.violation",
        &[
            ("syscall", Ty::Str, true),
            ("nr", Ty::Uint, true),
            ("action", Ty::Str, true),
            ("pid", Ty::Uint, true),
            ("exe", Ty::Str, true),
            ("args", Ty::Strings, true),
            ("suppressed_before", Ty::Uint, true),
        ],
    ),
    (
        "limit.hit",
        &[
            ("limit", Ty::Str, true),
            ("max", Ty::Uint, false),
            ("left_out", Ty::Uint, false),
        ],
    ),
    (
        "network.allowed",
        &[
            ("protocol", Ty::Str, true),
            ("target", Ty::Str, true),
            ("port", Ty::Uint, true),
            ("resolved", Ty::Strings, true),
            ("rule", Ty::Str, true),
        ],
    ),
    (
        "network.denied",
        &[
            ("protocol", Ty::Str, true),
            ("target", Ty::Str, false),
            ("port", Ty::Uint, false),
            ("resolved", Ty::Strings, true),
            ("reason", Ty::Str, true),
            ("left_out", Ty::Uint, false),
        ],
    ),
    (
        "dns.denied",
        &[
            ("protocol", Ty::Str, true),
            ("name", Ty::Str, true),
            ("qtype", Ty::Uint, true),
            ("reason", Ty::Str, true),
            ("left_out", Ty::Uint, false),
        ],
    ),
    (
        "network.closed",
        &[
            ("protocol", Ty::Str, true),
            ("target", Ty::Str, true),
            ("port", Ty::Uint, true),
            ("bytes_up", Ty::Uint, true),
            ("bytes_down", Ty::Uint, true),
            ("duration_ms", Ty::Uint, true),
            ("error", Ty::Str, false),
        ],
    ),
    (
        "workspace.applied",
        &[
            ("path", Ty::Str, true),
            ("to", Ty::Str, true),
            ("files_changed", Ty::Uint, true),
            ("bytes", Ty::Uint, true),
            ("upper_bytes", Ty::Uint, true),
            ("applied", Ty::Bool, true),
            ("applied_count", Ty::Uint, true),
            ("refused", Ty::Uint, true),
            ("export", Ty::Str, false),
            ("error", Ty::Str, false),
        ],
    ),
    (
        "sandbox.exited",
        &[
            ("status", Ty::Str, true),
            ("exit_code", Ty::Int, true),
            ("signal", Ty::Int, false),
            ("wall_time_ms", Ty::Uint, true),
            ("violations_total", Ty::Uint, true),
            ("violations_logged", Ty::Uint, true),
            ("audit_dropped", Ty::Uint, true),
            ("error", Ty::Str, false),
        ],
    ),
];

const LIMITS: &[&str] = &[
    "memory",
    "pids",
    "wall_time",
    "cpu_time",
    "file_size",
    "connections",
];

fn is_ts(s: &str) -> bool {
    // 2026-12-04T13:10:50.123Z
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Validate one line; returns it parsed.
fn validate(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let o = v.as_object().unwrap_or_else(|| panic!("not an object: {line}"));
    assert!(o["ts"].as_str().is_some_and(is_ts), "ts: {line}");
    let sb = o["sandbox"].as_str().unwrap_or_else(|| panic!("sandbox: {line}"));
    assert!(
        sb.len() == 32 && sb.bytes().all(|c| c.is_ascii_hexdigit()),
        "sandbox id: {line}"
    );
    let event = o["event"].as_str().unwrap_or_else(|| panic!("event: {line}"));
    let fields = SCHEMA
        .iter()
        .find(|(e, _)| *e == event)
        .unwrap_or_else(|| panic!("unknown event {event}: {line}"))
        .1;
    for (k, val) in o {
        if ["ts", "sandbox", "event"].contains(&k.as_str()) {
            continue;
        }
        let (_, ty, _) = fields
            .iter()
            .find(|(f, _, _)| f == k)
            .unwrap_or_else(|| panic!("{event}: undocumented field {k}: {line}"));
        let ok = match ty {
            Ty::Str => val.is_string(),
            Ty::Uint => val.is_u64(),
            Ty::Int => val.is_i64(),
            Ty::Strings => val.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Ty::Bool => val.is_boolean(),
        };
        assert!(ok, "{event}.{k} is not {ty:?}: {line}");
    }
    for (f, _, required) in fields {
        assert!(!required || o.contains_key(*f), "{event}: missing {f}: {line}");
    }
    if event == "limit.hit" {
        assert!(LIMITS.contains(&o["limit"].as_str().unwrap()), "{line}");
    }
    if event == "sandbox.started" {
        let d = o["policy_digest"].as_str().unwrap();
        assert!(
            d.len() == 64 && d.bytes().all(|c| c.is_ascii_hexdigit()),
            "{line}"
        );
    }
    v
}

fn read_log(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("audit log");
    assert!(text.ends_with('\n'), "the log ends with a whole line: {text:?}");
    text.lines().map(validate).collect()
}

fn default_policy_with(dir: &TempDir, change: impl FnOnce(&mut Value)) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.json"))
        .expect("default policy");
    let mut v: Value = serde_json::from_str(&text).expect("json");
    change(&mut v);
    let p = dir.path().join("p.json");
    std::fs::write(&p, v.to_string()).expect("write policy");
    p.to_str().expect("utf-8").to_string()
}

fn events(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["event"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_run_with_a_violation_and_a_timeout_logs_its_events_in_order() {
    let probe = Probe::new();
    for mode in modes() {
        let dir = TempDir::new("audit");
        let log = dir.path().join("audit.jsonl");
        // The policy's own audit.path.
        let policy = default_policy_with(&dir, |v| {
            v["seccomp"]["report"] = true.into();
            v["audit"] = serde_json::json!({ "path": log });
        });
        let bind = probe.bind();
        let tl = time_limit(2);
        let r = run(
            mode,
            &[
                "--policy",
                &policy,
                "--ro-bind",
                &bind,
                "--time-limit",
                &tl,
                "--env",
                "AUDIT_SECRET=value-that-must-not-be-logged",
            ],
            &[
                "/bin/sh",
                "-c",
                "/probe/probe keyctl 0 0; echo $AUDIT_SECRET; exec sleep 60",
            ],
        );
        assert_eq!(r.code(), 124, "{mode:?}: {}", r.stderr());
        assert!(
            r.stdout().contains("value-that-must-not-be-logged"),
            "{}",
            r.stdout()
        );
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(
            !text.contains("value-that-must-not-be-logged"),
            "an env value in the log: {text}"
        );
        let lines = read_log(&log);
        assert_eq!(
            events(&lines),
            [
                "sandbox.started",
                "seccomp.violation",
                "limit.hit",
                "sandbox.exited"
            ],
            "{mode:?}: {text}"
        );
        let id = &lines[0]["sandbox"];
        assert!(
            lines.iter().all(|l| &l["sandbox"] == id),
            "one sandbox id per run: {text}"
        );
        let started = &lines[0];
        assert_eq!(started["policy"], policy.as_str());
        assert_eq!(started["argv"][0], "/bin/sh");
        let outcome = r.status.as_ref().expect("outcome");
        assert_eq!(started["host_uid"], outcome["host_uid"]);
        let enforced: Vec<&str> = started["enforced"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        for layer in [
            "namespace.user",
            "namespace.pid",
            "seccomp",
            "seccomp.report",
            "wall_time",
        ] {
            assert!(enforced.contains(&layer), "{layer} not in enforced: {text}");
        }
        assert_eq!(started["unenforced"], outcome["unenforced"], "{text}");
        let v = &lines[1];
        assert_eq!(v["syscall"], "keyctl");
        assert_eq!(v["action"], "errno EPERM");
        assert_eq!(v["exe"], "/probe/probe");
        let rec = &outcome["violations"][0];
        for k in ["syscall", "nr", "action", "pid", "exe", "args"] {
            assert_eq!(v[k], rec[k], "{k}: the log and the outcome differ");
        }
        assert_eq!(lines[2]["limit"], "wall_time");
        let exited = &lines[3];
        assert_eq!(exited["status"], "timed_out");
        assert_eq!(exited["exit_code"], 124);
        assert_eq!(exited["signal"], 9);
        assert_eq!(exited["violations_total"], 1);
        assert_eq!(exited["violations_logged"], 1);
        assert_eq!(exited["audit_dropped"], 0);
        assert_eq!(outcome["audit_dropped"], 0);
        assert!(exited["wall_time_ms"].as_u64().unwrap() >= 1000);
        // The file is private and appended to: a second run adds its lines.
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o777, 0o600);
        let r = run(mode, &["--policy", &policy], &["/bin/true"]);
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let again = read_log(&log);
        assert_eq!(again.len(), 6);
        assert_ne!(again[4]["sandbox"], *id, "a new id per run");
        assert_ne!(
            again[0]["policy_digest"], again[4]["policy_digest"],
            "the command-line flags are part of the effective policy"
        );
    }
}

#[test]
fn the_flag_replaces_the_policy_path_and_a_different_policy_has_another_digest() {
    for mode in modes() {
        let dir = TempDir::new("audit-flag");
        let in_policy = dir.path().join("policy.jsonl");
        let flag = dir.path().join("flag.jsonl");
        let policy = default_policy_with(&dir, |v| v["audit"] = serde_json::json!({ "path": in_policy }));
        let f = flag.to_str().unwrap();
        let r = run(mode, &["--policy", &policy, "--audit-log", f], &["/bin/true"]);
        assert_eq!(r.code(), 0, "{}", r.stderr());
        assert!(
            !in_policy.exists(),
            "the policy's path was opened although --audit-log replaces it"
        );
        let r = run(
            mode,
            &["--policy", &policy, "--audit-log", f, "--hostname", "other"],
            &["/bin/true"],
        );
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let r = run(mode, &["--policy", &policy, "--audit-log", f], &["/bin/false"]);
        assert_eq!(r.code(), 1, "{}", r.stderr());
        let lines = read_log(&flag);
        assert_eq!(lines.len(), 6);
        assert_eq!(
            lines[0]["policy_digest"], lines[4]["policy_digest"],
            "same policy, same digest"
        );
        assert_ne!(lines[0]["sandbox"], lines[4]["sandbox"], "a new id per run");
        assert_eq!(lines[5]["exit_code"], 1);
        assert_eq!(
            events(&lines[..4]),
            [
                "sandbox.started",
                "sandbox.exited",
                "sandbox.started",
                "sandbox.exited"
            ]
        );
        assert_ne!(
            lines[0]["policy_digest"], lines[2]["policy_digest"],
            "the flags are part of the digest"
        );
        assert_eq!(lines[1]["status"], "exited");
        assert!(lines[1].get("signal").is_none());
    }
}

#[test]
fn concurrent_sandboxes_append_whole_lines() {
    let probe = Probe::new();
    for mode in modes() {
        let dir = TempDir::new("audit-conc");
        let log = dir.path().join("audit.jsonl");
        let policy = default_policy_with(&dir, |v| v["seccomp"]["report"] = true.into());
        // Long lines (more than PIPE_BUF) and many of them.
        let long = "x".repeat(6000);
        let script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /probe/probe keyctl 0 0 >/dev/null; done";
        let kids: Vec<_> = (0..4)
            .map(|_| {
                let mut c = cordon(mode);
                c.arg("run")
                    .args(["--policy", &policy, "--ro-bind", &probe.bind(), "--audit-log"])
                    .arg(&log)
                    .args(["--", "/bin/sh", "-c", script, &long])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                c.spawn().expect("spawn")
            })
            .collect();
        for k in kids {
            let o = k.wait_with_output().expect("wait");
            assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let lines = read_log(&log);
        let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in &lines {
            per.entry(l["sandbox"].as_str().unwrap().to_string())
                .or_default()
                .push(l["event"].as_str().unwrap().to_string());
        }
        assert_eq!(per.len(), 4, "{mode:?}: four sandboxes");
        for (id, ev) in per {
            assert_eq!(ev.len(), 22, "{id}: {ev:?}");
            assert_eq!(ev[0], "sandbox.started");
            assert_eq!(ev[21], "sandbox.exited");
            assert!(ev[1..21].iter().all(|e| e == "seccomp.violation"), "{ev:?}");
        }
    }
}

/// cordon run started through /bin/sh with `redirect` applied (`3>>FILE`,
/// `3>&1 1>/dev/null`...), in `mode`.
fn via_shell(mode: Mode, cordon_args: &str, redirect: &str) -> std::process::Output {
    let mut c = Command::new("/bin/sh");
    c.env_clear().env("PATH", "/usr/bin:/bin").stdin(Stdio::null());
    c.arg("-c")
        .arg(format!("exec \"$0\" run {cordon_args} -- /bin/true {redirect}"))
        .arg(cordon_bin());
    if mode == Mode::Rootless && is_root() {
        use std::os::unix::process::CommandExt;
        c.uid(ROOTLESS_ID).gid(ROOTLESS_ID);
    }
    c.output().expect("spawn")
}

#[test]
fn fd_n_takes_an_inherited_file_or_pipe() {
    for mode in modes() {
        let dir = TempDir::new("audit-fd");
        let file = dir.path().join("fd.jsonl");
        let o = via_shell(mode, "--audit-log fd:3", &format!("3>>{}", file.display()));
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(events(&read_log(&file)), ["sandbox.started", "sandbox.exited"]);
        // A pipe the shell makes (its user's: cordon reopens it non-blocking).
        let o = via_shell(mode, "--audit-log fd:3", "3>&1 1>/dev/null | cat");
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).expect("utf-8");
        let lines: Vec<Value> = text.lines().map(validate).collect();
        assert_eq!(events(&lines), ["sandbox.started", "sandbox.exited"]);
        // Not open, open read-only, or --status-fd's: refused, nothing runs.
        for (args, redirect, says) in [
            ("--audit-log fd:7", "", "not an open file descriptor"),
            (
                "--audit-log fd:3",
                &format!("3<{}", file.display()) as &str,
                "not open for writing",
            ),
            (
                "--audit-log fd:3 --status-fd 3",
                &format!("3>>{}", file.display()) as &str,
                "--status-fd",
            ),
            ("--audit-log fd:x", "", "fd:N"),
            // A descriptor cordon opens itself (the status file would be
            // fd 3) is not one it inherited.
            (
                &format!("--audit-log fd:3 --status-json {}/s.json", dir.str()) as &str,
                "",
                "not an open file descriptor",
            ),
        ] {
            let o = via_shell(mode, args, redirect);
            let e = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(125), "{args}: {e}");
            assert!(e.contains("--audit-log") && e.contains(says), "{args}: {e}");
        }
    }
}

#[test]
fn every_event_and_field_is_documented() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/cordon-policy.5"))
        .expect("man/cordon-policy.5");
    let start = page.find(".SH \"AUDIT LOG\"").expect("an AUDIT LOG section");
    let end = page[start + 1..]
        .find("\n.SH ")
        .map_or(page.len(), |e| start + 1 + e);
    let section = page[start..end].replace("\\-", "-");
    for f in ["ts", "sandbox", "event"] {
        assert!(
            section.contains(&format!(".BR {f} \"")),
            "AUDIT LOG does not describe {f}"
        );
    }
    for (event, fields) in SCHEMA {
        let tag = format!(".TP\n.B {event}\n");
        let at = section
            .find(&tag)
            .unwrap_or_else(|| panic!("AUDIT LOG has no item for {event}"));
        // The event's block: up to the next event's item or the example.
        let block = &section[at + tag.len()..];
        let block_end = SCHEMA
            .iter()
            .filter_map(|(e, _)| block.find(&format!(".TP\n.B {e}\n")))
            .chain(block.find("For example"))
            .min()
            .unwrap_or(block.len());
        let block = &block[..block_end];
        for (f, _, _) in *fields {
            assert!(
                block
                    .lines()
                    .any(|l| l.starts_with(".BR ") && l.split([' ', '"']).any(|w| w == *f)),
                "AUDIT LOG: {event} does not describe {f}"
            );
        }
    }
    for l in LIMITS {
        assert!(
            section.contains(&format!(".BR {l}")) || section.contains(&format!(".B {l}")),
            "{l}"
        );
    }
}

#[test]
fn a_full_pipe_drops_events_and_the_outcome_counts_them() {
    for mode in modes() {
        let dir = TempDir::new("audit-full");
        let status = dir.path().join("s.json");
        // A started line of 200 kB into a pipe of 64 kB that nobody reads:
        // the run neither blocks nor fails, and the outcome counts what
        // was dropped.
        let long = "y".repeat(50_000);
        let mut c = Command::new("/bin/sh");
        c.env_clear().env("PATH", "/usr/bin:/bin").stdin(Stdio::null());
        c.arg("-c")
            .arg(
                "{ t0=$(date +%s%N); \"$0\" run --audit-log fd:3 --status-json \"$1\" -- /bin/echo \"$2\" \"$2\" \"$2\" \"$2\" 3>&1 >/dev/null; \
                 echo $(( ($(date +%s%N) - t0) / 1000000 )) > \"$1.ms\"; } | sleep \"$3\"",
            )
            .arg(cordon_bin())
            .arg(&status)
            .arg(&long)
            .arg((3 * common::slow_factor()).to_string());
        if mode == Mode::Rootless && is_root() {
            use std::os::unix::process::CommandExt;
            c.uid(ROOTLESS_ID).gid(ROOTLESS_ID);
        }
        let o = c.output().expect("spawn");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&status).expect("outcome")).expect("json");
        assert_eq!(v["exit_code"], 0, "{v}");
        assert!(v["audit_dropped"].as_u64().unwrap() >= 1, "{v}");
        // cordon ended long before the reader would have read anything.
        let ms: u64 = std::fs::read_to_string(dir.path().join("s.json.ms"))
            .expect("elapsed")
            .trim()
            .parse()
            .expect("ms");
        let bound = 2000 * u64::from(common::slow_factor());
        assert!(ms < bound, "cordon took {ms} ms: it waited for the pipe");
    }
}

#[test]
fn cordon_exec_refuses_a_policy_with_an_audit_log() {
    for mode in modes() {
        let dir = TempDir::new("audit-exec");
        let log = dir.path().join("a.jsonl");
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/exec.json"))
            .expect("exec policy");
        let mut v: Value = serde_json::from_str(&text).expect("json");
        v["audit"] = serde_json::json!({ "path": log });
        let p = dir.path().join("p.json");
        std::fs::write(&p, v.to_string()).expect("write");
        let o = cordon(mode)
            .arg("exec")
            .arg("--policy")
            .arg(&p)
            .args(["--", "/bin/true"])
            .output()
            .expect("spawn");
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{e}");
        assert!(e.contains("audit"), "{e}");
        assert!(!log.exists(), "the log was created although nothing ran");
    }
}

#[test]
fn the_library_writes_the_policy_audit_log() {
    let dir = TempDir::new("audit-lib");
    let log = dir.path().join("lib.jsonl");
    let mut v: Value = serde_json::from_str(cordon::policy::DEFAULT_POLICY_JSON).expect("json");
    v["audit"] = serde_json::json!({ "path": log });
    let policy = cordon::Policy::from_json("lib.json", &v.to_string()).expect("policy");
    let out = cordon::Sandbox::new(policy)
        .spawn(&["/bin/sh", "-c", "exit 3"])
        .expect("spawn")
        .wait()
        .expect("wait");
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.audit_dropped, Some(0));
    let lines = read_log(&log);
    assert_eq!(events(&lines), ["sandbox.started", "sandbox.exited"]);
    assert_eq!(lines[1]["exit_code"], 3);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn violations_are_logged_at_most_fifty_a_second_and_the_rest_counted() {
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    for mode in modes() {
        let dir = TempDir::new("audit-rate");
        let log = dir.path().join("a.jsonl");
        let policy = default_policy_with(&dir, |v| v["seccomp"]["report"] = true.into());
        // 500 refused keyctl calls (250 on x86_64), in well under a second.
        let r = run(
            mode,
            &["--policy", &policy, "--audit-log", log.to_str().unwrap()],
            &[
                "/usr/bin/python3",
                "-c",
                "import ctypes\nc = ctypes.CDLL(None)\nfor i in range(500): c.syscall(250, 0, 0)",
            ],
        );
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let lines = read_log(&log);
        let exited = lines.last().unwrap();
        assert_eq!(exited["event"], "sandbox.exited");
        assert_eq!(exited["violations_total"], 500, "{exited}");
        let logged: Vec<&Value> = lines
            .iter()
            .filter(|l| l["event"] == "seccomp.violation")
            .collect();
        assert_eq!(exited["violations_logged"], logged.len() as u64);
        let wall = exited["wall_time_ms"].as_u64().unwrap();
        let windows = wall / 1000 + 1;
        assert!(
            logged.len() as u64 >= 50 && logged.len() as u64 <= 50 * windows,
            "{} lines in {wall} ms",
            logged.len()
        );
        let suppressed: u64 = logged
            .iter()
            .map(|l| l["suppressed_before"].as_u64().unwrap())
            .sum();
        assert!(suppressed + logged.len() as u64 <= 500, "{suppressed}");
        assert!(logged.iter().all(|l| l["syscall"] == "keyctl"));
    }
}

#[test]
fn proxy_decisions_validate_against_the_schema() {
    require!(
        "curl",
        std::path::Path::new("/usr/bin/curl").exists(),
        "needs /usr/bin/curl"
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut c in l.incoming().flatten() {
            let mut b = [0u8; 1024];
            let _ = c.read(&mut b);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    for mode in modes() {
        let dir = TempDir::new("audit-proxy");
        let log = dir.path().join("a.log");
        let curl = |url: String| format!("curl -sS -p --noproxy '' -x http://127.0.0.1:3128 -m 10 {url}");
        let script = format!(
            "{}; {}; printf 'GET / HTTP/1.1\\r\\n\\r\\n' | curl -sS -m 5 telnet://127.0.0.1:3128; getent ahostsv4 nope.example; true",
            curl(format!("http://127.0.0.1:{port}/")),
            curl(format!("http://denied.example:{port}/")),
        );
        let rule = format!("127.0.0.1/32:{port}");
        let r = run(
            mode,
            &["--allow-net", &rule, "--audit-log", log.to_str().unwrap()],
            &["/bin/sh", "-c", &script],
        );
        assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        let text = std::fs::read_to_string(&log).unwrap();
        let mut events: Vec<String> = text
            .lines()
            .map(|l| validate(l)["event"].as_str().unwrap().to_string())
            .collect();
        // The resolver may ask the DNS stub more than once.
        let dns = events.iter().filter(|e| *e == "dns.denied").count();
        assert!(dns >= 1, "{mode:?}: {text}");
        events.retain(|e| e != "dns.denied");
        assert_eq!(
            events,
            [
                "sandbox.started",
                "network.allowed",
                "network.closed",
                "network.denied",
                "network.denied",
                "sandbox.exited"
            ],
            "{mode:?}: {text}"
        );
    }
}

#[test]
fn a_workspace_logs_what_it_applied() {
    for mode in modes() {
        let tmp = TempDir::new("audit-ws");
        let proj = tmp.path().join("proj");
        std::fs::create_dir(&proj).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&proj, Some(ROOTLESS_ID), Some(ROOTLESS_ID)).unwrap();
        }
        let log = tmp.path().join("audit.log");
        let arg = format!("{}:/work", proj.display());
        let mut args = common::workspace_mode_args(mode, &tmp);
        args.extend(
            [
                "--workspace",
                &arg,
                "--apply",
                "on_success",
                "--audit-log",
                log.to_str().unwrap(),
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(
            mode,
            &args,
            &["/bin/sh", "-c", "echo x > /work/a && mkfifo /work/p"],
        );
        assert_eq!(r.code(), 0, "{mode:?} {}", r.stderr());
        let lines = read_log(&log);
        assert_eq!(
            events(&lines),
            ["sandbox.started", "workspace.applied", "sandbox.exited"],
            "{mode:?}"
        );
        let w = &lines[1];
        assert_eq!(w["path"], proj.to_str().unwrap(), "{w}");
        assert_eq!(w["to"], "/work");
        assert_eq!(
            (w["files_changed"].as_u64(), w["applied_count"].as_u64()),
            (Some(1), Some(1)),
            "{w}"
        );
        // The FIFO was refused: not everything was applied.
        assert_eq!(
            (w["applied"].as_bool(), w["refused"].as_u64()),
            (Some(false), Some(1)),
            "{w}"
        );
        assert_eq!(std::fs::read_to_string(proj.join("a")).unwrap(), "x\n");
    }
}
