//! Run one tool call of an AI agent under cordon and report the result as
//! JSON: the shape an agent framework needs for a "run this command" tool.
//!
//! ```text
//! cargo run --example tool_runner < call.json
//! echo '{"command": "python3", "args": ["-c", "print(6*7)"]}' | cargo run --example tool_runner
//! ```
//!
//! It reads ONE JSON object from standard input:
//!
//! ```json
//! {"command": "python3", "args": ["-c", "print(6*7)"],
//!  "stdin": "optional text for the command's standard input",
//!  "policy": "default",
//!  "time_limit": "5s", "memory": "256M"}
//! ```
//!
//! - `command` (required): the program, looked up on the sandbox's `PATH`
//!   unless it contains a slash; `args`: its arguments (default none);
//! - `stdin`: text written to the command's standard input (default: none,
//!   the command reads end-of-file at once);
//! - `policy`: `"default"` or `null` for cordon's built-in default policy,
//!   or the path of a policy file (such as `policies/tool-python.json`);
//! - `time_limit` (`"500ms"`, `"5s"`, `"2m"`) and `memory` (`"256M"`,
//!   `"1G"`) override the policy's `limits.wall_time` and `limits.memory`.
//!   The wall-clock limit kills every process of the sandbox; the memory
//!   limit is a cgroup limit (see `cordon features` for whether this host
//!   can enforce one).
//!
//! Unknown fields are errors, so a misspelt `"time_limt"` does not silently
//! run without a limit.
//!
//! It prints ONE JSON object on standard output, on one line:
//!
//! ```json
//! {"status":"exited","exit_code":0,"signal":null,"timed_out":false,
//!  "stdout":"42\n","stderr":"","stdout_truncated":false,"stderr_truncated":false,
//!  "wall_time_ms":24,"user_time_ms":14,"system_time_ms":6,"max_rss_kb":9420}
//! ```
//!
//! - `status`: `exited`, `signaled`, `timed_out`, `oom_killed` and
//!   `setup_failed` as in cordon's outcome, or `invalid_call` when the tool
//!   call itself is wrong (bad JSON, unknown field, unreadable or invalid
//!   policy, bad limit);
//! - `exit_code`: as `cordon run` exits (the command's code, 128+N for
//!   signal N, 124 on timeout, 125 setup failure, 126 not executable, 127
//!   not found); `null` for `invalid_call`;
//! - `stdout`, `stderr`: what the command wrote, as UTF-8 (invalid bytes
//!   replaced), at most 1 MiB each; `stdout_truncated`/`stderr_truncated`
//!   say the rest was read and dropped;
//! - times and `max_rss_kb` from cordon's outcome; `cgroup` when the policy
//!   set cgroup limits; `violations` and `violations_total` when the
//!   policy's seccomp section has `"report": true` and something was
//!   refused; `unenforced` when the kernel could not enforce part of a
//!   best-effort policy;
//! - `error`: why nothing ran, as an object `{"step", "detail", "message",
//!   "errno"?, "hint"?}` (cordon's `LaunchError` as the outcome records it,
//!   or a mistake in the call).
//!
//! Exit status: 0 when the command ran (whatever it did: read `status`), 1
//! when the sandbox could not be set up or the command not started, 2 for an
//! invalid tool call.
//!
//! Who chooses the policy matters: `policy`, `time_limit` and `memory`
//! are meant to be set by the framework (the operator), not by the model.
//! If the model writes the whole call, fix those fields before passing it
//! on, or a model could name a looser policy file.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use cordon::error::LaunchError;
use cordon::outcome::{CgroupOutcome, Outcome, Status, Violation};
use cordon::policy::{Dur, Size};
use cordon::{Policy, Sandbox};

/// At most this much of stdout and of stderr is kept.
const OUTPUT_CAP: usize = 1 << 20;

/// Exit status: the sandbox could not be set up.
const EXIT_SETUP_FAILED: u8 = 1;
/// Exit status: the tool call is invalid.
const EXIT_INVALID_CALL: u8 = 2;

/// The tool call, as the agent framework sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCall {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    time_limit: Option<String>,
    #[serde(default)]
    memory: Option<String>,
}

/// The result, printed as one line of JSON.
#[derive(Debug, Serialize)]
struct ToolResult {
    status: &'static str,
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    stdout_truncated: bool,
    stderr_truncated: bool,
    wall_time_ms: u64,
    user_time_ms: u64,
    system_time_ms: u64,
    max_rss_kb: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<CgroupOutcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    violations: Vec<Violation>,
    #[serde(skip_serializing_if = "is_zero")]
    violations_total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unenforced: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<SetupError>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ToolResult {
    /// A result for a run that never started.
    fn failed(status: &'static str, exit_code: Option<i32>, error: SetupError) -> ToolResult {
        ToolResult {
            status,
            exit_code,
            signal: None,
            timed_out: false,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            wall_time_ms: 0,
            user_time_ms: 0,
            system_time_ms: 0,
            max_rss_kb: 0,
            cgroup: None,
            violations: Vec::new(),
            violations_total: 0,
            unenforced: Vec::new(),
            error: Some(error),
        }
    }

    /// The tool call is wrong: nothing ran.
    fn invalid(step: &str, detail: &str, message: String) -> ToolResult {
        ToolResult::failed("invalid_call", None, invalid(step, detail, message))
    }

    /// The process's exit status for this result.
    fn exit_status(&self) -> u8 {
        match self.status {
            "invalid_call" => EXIT_INVALID_CALL,
            "setup_failed" => EXIT_SETUP_FAILED,
            _ => 0,
        }
    }
}

/// What a reader thread captured from one pipe.
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

/// A pipe whose ends are both close-on-exec: `(read, write)`.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both are new fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Read `fd` to end-of-file, keeping the first [`OUTPUT_CAP`] bytes and
/// draining the rest, so a chatty command never blocks on a full pipe.
fn capture(fd: OwnedFd) -> JoinHandle<Captured> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        let mut out = Captured {
            bytes: Vec::new(),
            truncated: false,
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP - out.bytes.len();
                    out.bytes.extend_from_slice(&buf[..n.min(room)]);
                    out.truncated |= n > room;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        out
    })
}

/// Write `text` to the command's stdin from a thread, then close it (the
/// command sees end-of-file). A command that exits without reading makes
/// the write fail with EPIPE, which is fine: Rust programs ignore SIGPIPE.
fn feed(fd: OwnedFd, text: Option<String>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        if let Some(t) = text {
            let _ = f.write_all(t.as_bytes());
        }
    })
}

/// `bytes` without a character cut in half at the end (by the cap).
fn without_partial_char(bytes: &[u8]) -> &[u8] {
    for back in 1..=bytes.len().min(4) {
        let i = bytes.len() - back;
        let b = bytes[i];
        if b & 0xC0 != 0x80 {
            // The last character starts at i: is it complete?
            let len = match b {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if len > back { &bytes[..i] } else { bytes };
        }
    }
    bytes
}

fn text(c: &Captured) -> String {
    let bytes = if c.truncated {
        without_partial_char(&c.bytes)
    } else {
        &c.bytes
    };
    String::from_utf8_lossy(bytes).into_owned()
}

/// A mistake in the tool call: nothing runs.
/// Why nothing ran: the record of cordon's outcome (`LaunchError`), or a
/// mistake in the tool call, whose message is not `step: detail`.
#[derive(Debug, Serialize)]
struct SetupError {
    step: String,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno: Option<i32>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

impl From<&LaunchError> for SetupError {
    fn from(e: &LaunchError) -> SetupError {
        SetupError {
            step: e.step.clone(),
            detail: e.detail.clone(),
            errno: e.errno,
            message: e.to_string(),
            hint: e.hint.clone(),
        }
    }
}

impl From<&cordon::Error> for SetupError {
    fn from(e: &cordon::Error) -> SetupError {
        match e {
            cordon::Error::Launch(e) => SetupError::from(e),
            // Found when checking the policy against the host (a missing
            // bind source, a sensitive path); a command that cannot be
            // found is reported by the sandbox itself.
            cordon::Error::Policy(e) => invalid("policy", &e.path, e.to_string()),
            other => invalid("setup", "", other.to_string()),
        }
    }
}

fn invalid(step: &str, detail: &str, message: String) -> SetupError {
    SetupError {
        step: step.to_string(),
        detail: detail.to_string(),
        errno: None,
        message,
        hint: None,
    }
}

/// The policy the call names, with its limits applied.
fn policy_for(call: &ToolCall) -> Result<(Policy, String), SetupError> {
    let (mut policy, name) = match call.policy.as_deref() {
        None | Some("default") => (
            Policy::builtin_default().map_err(|e| invalid("policy", "default", e.to_string()))?,
            "default".to_string(),
        ),
        Some(path) => (
            Policy::from_file(std::path::Path::new(path))
                .map_err(|e| invalid("policy", path, e.to_string()))?,
            path.to_string(),
        ),
    };
    if let Some(t) = &call.time_limit {
        let d: Dur = t.parse().map_err(|e| invalid("tool_call", "time_limit", e))?;
        policy.limits.wall_time = Some(d);
    }
    if let Some(m) = &call.memory {
        let s: Size = m.parse().map_err(|e| invalid("tool_call", "memory", e))?;
        policy.limits.memory = Some(s);
    }
    // The overrides may break a rule of the format (memory_swap without
    // memory, a zero limit): check the result as a whole.
    policy
        .check(&name)
        .map_err(|e| invalid("policy", &e.path, e.to_string()))?;
    Ok((policy, name))
}

fn setup_failed(e: SetupError, exit_code: i32) -> ToolResult {
    ToolResult::failed("setup_failed", Some(exit_code), e)
}

/// Run the call and describe what happened.
fn run(call: ToolCall) -> ToolResult {
    let (policy, name) = match policy_for(&call) {
        Ok(p) => p,
        Err(e) => return ToolResult::failed("invalid_call", None, e),
    };
    let pipes = (|| Ok::<_, std::io::Error>((pipe()?, pipe()?, pipe()?)))();
    let ((in_r, in_w), (out_r, out_w), (err_r, err_w)) = match pipes {
        Ok(p) => p,
        Err(e) => {
            return setup_failed(
                SetupError {
                    step: "pipe".to_string(),
                    detail: String::new(),
                    errno: e.raw_os_error(),
                    message: format!("pipe: {e}"),
                    hint: None,
                },
                cordon::error::exit::SETUP,
            )
        }
    };
    let mut argv = vec![call.command.clone()];
    argv.extend(call.args.iter().cloned());

    // The sandbox takes the child's ends: its payload gets them as fds 0, 1
    // and 2, and the supervisor closes its copies when the sandbox ends, so
    // the readers below see end-of-file once every process of the sandbox
    // is gone. Our ends are close-on-exec and never reach the payload.
    let child = Sandbox::new(policy)
        .named(&name)
        .stdio(Some(in_r), Some(out_w), Some(err_w))
        .spawn(&argv);
    let child = match child {
        Ok(c) => c,
        Err(e) => return setup_failed(SetupError::from(&e), cordon::error::exit::SETUP),
    };

    // Write stdin and read stdout and stderr at the same time: done one
    // after the other, a command that fills one pipe while we wait on
    // another would hang both sides.
    let writer = feed(in_w, call.stdin);
    let out_reader = capture(out_r);
    let err_reader = capture(err_r);

    let outcome = child.wait();
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or(Captured {
        bytes: Vec::new(),
        truncated: false,
    });
    let stderr = err_reader.join().unwrap_or(Captured {
        bytes: Vec::new(),
        truncated: false,
    });

    let o: Outcome = match outcome {
        Ok(o) => o,
        Err(e) => return setup_failed(SetupError::from(&e), cordon::error::exit::SETUP),
    };
    ToolResult {
        status: o.status.name(),
        exit_code: Some(o.exit_code),
        signal: o.signal,
        timed_out: o.status == Status::TimedOut,
        stdout: text(&stdout),
        stderr: text(&stderr),
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        wall_time_ms: o.wall_time_ms,
        user_time_ms: o.user_time_ms,
        system_time_ms: o.system_time_ms,
        max_rss_kb: o.max_rss_kb,
        cgroup: o.cgroup,
        violations: o.violations,
        violations_total: o.violations_total,
        unenforced: o.unenforced,
        error: o.error.as_ref().map(SetupError::from),
    }
}

fn main() -> ExitCode {
    let mut input = String::new();
    let result = match std::io::stdin().read_to_string(&mut input) {
        Err(e) => ToolResult::invalid("tool_call", "", format!("cannot read the tool call: {e}")),
        // One JSON object and nothing after it.
        Ok(_) => match serde_json::from_str::<ToolCall>(&input) {
            Err(e) => ToolResult::invalid("tool_call", "", format!("invalid tool call: {e}")),
            Ok(call) => run(call),
        },
    };
    let line = serde_json::to_string(&result).expect("the result serializes");
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
    ExitCode::from(result.exit_status())
}
