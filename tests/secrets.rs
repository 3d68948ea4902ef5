//! Secrets for one run (`--secret-env NAME=@FILE`, `NAME=fd:N`,
//! `Sandbox::secret_env`): the value reaches the payload's environment and
//! no output of cordon's: not its standard error, not the `--status-json`
//! outcome, not `cordon check`, not an error message. Sources that could
//! trick cordon (a symbolic link, a FIFO, an oversized file) are refused
//! without hanging, and an `fd:N` source is not left open for the payload.
//! Every case runs as root and rootless.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{cordon, modes, run_with, set_mode, Mode, TempDir};

/// The secret's value: distinctive enough that finding it anywhere means it
/// leaked.
const VALUE: &str = "s3cret-Zq7vK2pX9-token";

/// A secret file readable by every test identity, in a fresh directory.
struct SecretFile {
    dir: TempDir,
    path: PathBuf,
}

impl SecretFile {
    fn new(content: &[u8]) -> SecretFile {
        let dir = TempDir::new("secret");
        let path = dir.path().join("token");
        std::fs::write(&path, content).expect("write secret");
        set_mode(&path, 0o644);
        SecretFile { dir, path }
    }
    fn arg(&self, name: &str) -> String {
        format!("{name}=@{}", self.path.display())
    }
}

/// Run `c`, failing the test (after killing it by its pid) if it takes
/// longer than `secs`: a cordon blocked opening a FIFO never ends.
fn output_within(mut c: Command, secs: u64) -> Output {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn cordon");
    let end = Instant::now() + common::scaled(Duration::from_secs(secs));
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            child
                .stdout
                .take()
                .expect("stdout")
                .read_to_end(&mut stdout)
                .expect("read");
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_end(&mut stderr)
                .expect("read");
            return Output {
                status,
                stdout,
                stderr,
            };
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cordon did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_absent(what: &str, haystack: &str) {
    assert!(
        !haystack.contains(VALUE),
        "the secret appears in {what}:\n{haystack}"
    );
}

#[test]
fn the_payload_sees_the_secret_and_no_output_of_cordon_does() {
    let secret = SecretFile::new(format!("{VALUE}\n").as_bytes());
    for mode in modes() {
        // The audit log sees the run too (argv, the policy digest, the
        // outcome): never the secret.
        let dir = TempDir::new("secret-audit");
        let log = dir.path().join("audit.jsonl");
        let log_arg = log.to_str().expect("utf-8 path");
        // A policy variable of the same name loses to the secret.
        let args = [
            "--secret-env",
            &secret.arg("TOKEN"),
            "--env",
            "TOKEN=policy-value",
            "-v",
            "--audit-log",
            log_arg,
        ];
        let r = run_with(
            cordon(mode),
            &args,
            &["/bin/sh", "-c", "printf '[%s]\\n' \"$TOKEN\"; exit 3"],
        );
        assert_eq!(r.code(), 3, "{mode:?}: {}", r.stderr());
        // One trailing newline stripped.
        assert_eq!(r.stdout(), format!("[{VALUE}]\n"), "{mode:?}");
        assert_absent("cordon's stderr", &r.stderr());
        let status = r.status.as_ref().expect("outcome written");
        assert_absent("the --status-json outcome", &status.to_string());
        let audit = std::fs::read_to_string(&log).expect("the audit log was written");
        assert!(audit.contains("sandbox.exited"), "{mode:?}: {audit}");
        assert_absent("the audit log", &audit);

        // A launch that fails (command not found) prints an error and an
        // outcome with it: neither holds the secret.
        let r = run_with(
            cordon(mode),
            &["--secret-env", &secret.arg("TOKEN")],
            &["/nonexistent/cmd"],
        );
        assert_eq!(r.code(), 127, "{mode:?}: {}", r.stderr());
        assert!(!r.stderr().is_empty());
        assert_absent("cordon's stderr", &r.stderr());
        assert_absent("the outcome", &r.status.expect("outcome").to_string());

        // cordon check: the policy on stdout (never holding a secret), the
        // secret's name redacted on stderr.
        let out = cordon(mode)
            .args(["check", "--secret-env", &secret.arg("TOKEN")])
            .output()
            .expect("check");
        assert!(out.status.success(), "{mode:?}: {}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("check prints a policy");
        assert_absent("cordon check's stdout", &text(&out.stdout));
        assert_absent("cordon check's stderr", &text(&out.stderr));
        assert!(
            text(&out.stderr).contains("TOKEN=<redacted>"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn cordon_exec_gives_the_secret_to_the_command() {
    let secret = SecretFile::new(VALUE.as_bytes());
    for mode in modes() {
        let out = cordon(mode)
            .args(["exec", "--secret-env", &secret.arg("TOKEN"), "--"])
            .args(["/bin/sh", "-c", "printf '[%s]' \"$TOKEN\""])
            .output()
            .expect("exec");
        assert!(out.status.success(), "{mode:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("[{VALUE}]"));
        assert_absent("cordon exec's stderr", &text(&out.stderr));
    }
}

/// `cordon` in `mode` with `file` open as descriptor `fd` (not
/// close-on-exec).
fn with_fd(mode: Mode, file: std::fs::File, fd: i32) -> Command {
    use std::os::fd::AsRawFd;
    let mut c = cordon(mode);
    // SAFETY: dup2 and fcntl are async-signal-safe and touch no memory of
    // ours; the closure owns `file`, so its descriptor is open when the
    // closure runs.
    unsafe {
        c.pre_exec(move || {
            // When `file` already is `fd`, dup2 would leave it close-on-exec.
            let r = if file.as_raw_fd() == fd {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(file.as_raw_fd(), fd)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    c
}

#[test]
fn fd_sources_work_and_the_descriptor_does_not_reach_the_payload() {
    let secret = SecretFile::new(format!("{VALUE}\n").as_bytes());
    for mode in modes() {
        let file = std::fs::File::open(&secret.path).expect("open");
        let r = run_with(
            with_fd(mode, file, 7),
            &["--secret-env", "TOKEN=fd:7"],
            &[
                "/bin/sh",
                "-c",
                "printf '[%s]\\n' \"$TOKEN\"; if [ -e /proc/self/fd/7 ]; then echo fd7-open; fi",
            ],
        );
        assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        assert_eq!(r.stdout(), format!("[{VALUE}]\n"), "{mode:?}");
        assert_absent("cordon's stderr", &r.stderr());
        assert_absent("the outcome", &r.status.expect("outcome").to_string());

        // A descriptor that is not open is refused (by number), and so is
        // one of the standard three.
        let r = run_with(cordon(mode), &["--secret-env", "TOKEN=fd:9"], &["/bin/true"]);
        assert_eq!(r.code(), 125, "{mode:?}");
        assert!(r.stderr().contains("--secret-env TOKEN: fd:9"), "{}", r.stderr());
        let r = run_with(cordon(mode), &["--secret-env", "TOKEN=fd:0"], &["/bin/true"]);
        assert_eq!(r.code(), 125, "{mode:?}");
    }
}

#[test]
fn a_symlinked_fifo_or_oversized_source_is_refused_without_hanging() {
    let secret = SecretFile::new(VALUE.as_bytes());
    let link = secret.dir.path().join("link");
    std::os::unix::fs::symlink(&secret.path, &link).expect("symlink");
    let fifo = secret.dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("c path");
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    let big = secret.dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 64 * 1024 + 1]).expect("write");
    set_mode(&big, 0o644);
    let cases: [(&Path, &str); 3] = [
        (&link, "symbolic link"),
        (&fifo, "FIFO"),
        (&big, "larger than the 64 KiB"),
    ];
    for mode in modes() {
        for (path, why) in cases {
            let mut c = cordon(mode);
            c.args(["run", "--secret-env"])
                .arg(format!("TOKEN=@{}", path.display()))
                .args(["--", "/bin/echo", "ran"]);
            let out = output_within(c, 20);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(125), "{mode:?} {why}: {err}");
            assert!(text(&out.stdout).is_empty(), "the payload ran: {why}");
            assert!(err.contains("--secret-env TOKEN: "), "{err}");
            assert!(err.contains(why), "{mode:?}: expected {why:?}: {err}");
            assert_absent("the error", &err);
        }
    }
}

#[test]
fn bad_arguments_name_the_flag_and_never_the_value() {
    let secret = SecretFile::new(VALUE.as_bytes());
    let nul = SecretFile::new(format!("a\0{VALUE}").as_bytes());
    for mode in modes() {
        let twice = [
            "--secret-env".to_string(),
            secret.arg("T"),
            "--secret-env".to_string(),
            secret.arg("T"),
        ];
        let cases: Vec<(Vec<String>, &str)> = vec![
            // The value typed on the command line by mistake.
            (
                vec!["--secret-env".into(), format!("TOKEN={VALUE}")],
                "--secret-env TOKEN: expected",
            ),
            (vec!["--secret-env".into(), VALUE.to_string()], "--secret-env: "),
            (
                vec!["--secret-env".into(), secret.arg("BAD-NAME")],
                "\"BAD-NAME\"",
            ),
            (vec!["--secret-env".into(), secret.arg("PATH")], "PATH"),
            (vec!["--secret-env".into(), nul.arg("T")], "NUL"),
            (twice.to_vec(), "given twice"),
            // The outcome's descriptor is not read as a secret.
            (
                vec![
                    "--status-fd".into(),
                    "7".into(),
                    "--secret-env".into(),
                    "T=fd:7".into(),
                ],
                "also --status-fd",
            ),
        ];
        for (args, expect) in cases {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = run_with(cordon(mode), &args, &["/bin/echo", "ran"]);
            assert_eq!(r.code(), 125, "{mode:?} {args:?}: {}", r.stderr());
            assert!(r.stdout().is_empty(), "the payload ran: {args:?}");
            assert!(r.stderr().contains("--secret-env"), "{}", r.stderr());
            assert!(r.stderr().contains(expect), "{args:?}: {}", r.stderr());
            assert_absent("the error", &r.stderr());
            // Nothing ran, and the outcome says why without the value.
            let status = r.status.expect("outcome written").to_string();
            assert!(status.contains("setup_failed"), "{status}");
            assert_absent("the outcome", &status);
        }
    }
}

/// The library (as whoever runs the test): `Sandbox::secret_env` reaches
/// the payload; a bad name is refused at spawn with `Error::Secret`, naming
/// the variable only.
#[test]
fn the_library_gives_the_secret_to_the_payload_only() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are new and owned here.
    let (mut rd, wr) = unsafe { (std::fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let policy = cordon::PolicyBuilder::default_policy()
        .env("TOKEN", "policy-value")
        .build()
        .expect("policy");
    let sandbox = cordon::Sandbox::new(policy)
        .stdio(None, Some(wr), None)
        .secret_env("TOKEN", VALUE.to_string());
    assert!(!format!("{sandbox:?}").contains(VALUE), "{sandbox:?}");
    let child = sandbox
        .spawn(&["/bin/sh", "-c", "printf '[%s]' \"$TOKEN\""])
        .expect("spawn");
    let outcome = child.wait().expect("wait");
    assert_eq!(outcome.exit_code, 0);
    let mut got = String::new();
    rd.read_to_string(&mut got).expect("read");
    assert_eq!(got, format!("[{VALUE}]"));
    assert_absent("the outcome", &outcome.to_json());

    let err = cordon::Sandbox::new(cordon::Policy::builtin_default().expect("policy"))
        .secret_env("BAD NAME", format!("x{VALUE}"))
        .spawn(&["/bin/true"])
        .expect_err("bad name");
    assert!(matches!(err, cordon::Error::Secret(_)), "{err:?}");
    assert!(err.to_string().contains("\"BAD NAME\""), "{err}");
    assert_absent("the error", &err.to_string());
    assert_absent("the error's Debug", &format!("{err:?}"));
}

/// A value that starts with '-' (URL-safe base64 can), typed by mistake in
/// place of NAME=@FILE, is taken as the flag's argument and refused without
/// being shown, not reported by the argument parser as an unknown option
/// (which would print it); a value typed after the flag's argument is not
/// shown by the parser's error either.
#[test]
fn a_value_starting_with_a_dash_is_not_echoed_by_the_argument_parser() {
    for mode in modes() {
        for value in [format!("-{VALUE}"), format!("--{VALUE}")] {
            let r = run_with(cordon(mode), &["--secret-env", &value], &["/bin/echo", "ran"]);
            assert_eq!(r.code(), 125, "{mode:?} {value}: {}", r.stderr());
            assert!(r.stdout().is_empty(), "the payload ran");
            assert!(r.stderr().contains("--secret-env"), "{}", r.stderr());
            assert_absent("the error", &r.stderr());
            if let Some(status) = &r.status {
                assert_absent("the outcome", &status.to_string());
            }
        }
        // NAME VALUE with a space: the value is a stray argument, which the
        // parser's error must not show either.
        let r = run_with(
            cordon(mode),
            &["--secret-env", "TOKEN", VALUE],
            &["/bin/echo", "ran"],
        );
        assert_eq!(r.code(), 125, "{mode:?}: {}", r.stderr());
        assert!(r.stdout().is_empty(), "the payload ran");
        assert!(r.stderr().contains("--secret-env"), "{}", r.stderr());
        assert_absent("the error", &r.stderr());
        let mut c = cordon(mode);
        c.args(["check", "--secret-env", &format!("--{VALUE}")]);
        let out = c.output().expect("spawn cordon");
        assert_eq!(out.status.code(), Some(125));
        assert_absent("check's error", &String::from_utf8_lossy(&out.stderr));
    }
}

/// The soft core size limit of process `pid`, from /proc.
fn core_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core line")
        .to_string();
    line.split_whitespace().nth(4).expect("soft").to_string()
}

/// `c` with core dumps on (soft core limit at the hard one), as on a host
/// that collects cores.
fn with_cores(mut c: Command) -> Command {
    // SAFETY: getrlimit and setrlimit are async-signal-safe and touch only
    // the struct on this stack frame.
    unsafe {
        c.pre_exec(|| {
            let mut r = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_CORE, &mut r);
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_CORE, &r);
            Ok(())
        });
    }
    c
}

/// cordon holds a secret in memory while the payload runs: a crash of the
/// supervisor must not write it to a core file, so its own core limit is 0
/// then. The payload's core limit is the policy's, as without a secret.
#[test]
fn the_supervisor_holding_a_secret_dumps_no_core() {
    let secret = SecretFile::new(VALUE.as_bytes());
    for mode in modes() {
        let mut c = cordon(mode);
        c.args([
            "run",
            "--secret-env",
            &secret.arg("TOKEN"),
            "--",
            "/bin/sleep",
            "3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let mut c = with_cores(c);
        let mut child = c.spawn().expect("spawn cordon");
        std::thread::sleep(common::scaled(Duration::from_millis(500)));
        let during = core_limit(child.id());
        // SIGTERM, which cordon forwards to the payload, so that it ends
        // and cleans up as usual.
        // SAFETY: kill has no memory effects; the pid is our child, not yet
        // waited for.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = child.wait();
        assert_eq!(
            during, "0",
            "{mode:?}: the supervisor's core limit while it holds a secret"
        );
        let payload = |args: &[&str]| {
            run_with(with_cores(cordon(mode)), args, &["/bin/sh", "-c", "ulimit -c"])
                .stdout()
                .to_string()
        };
        assert_eq!(
            payload(&["--secret-env", &secret.arg("TOKEN")]),
            payload(&[]),
            "{mode:?}: the payload's core limit"
        );
    }
}
