//! Shared helpers for cordon's integration tests.
//!
//! Tests that need root or a kernel feature call [`require!`]. Without the
//! feature they print `SKIPPED: <reason>` and return, unless the variable
//! `CORDON_TEST_REQUIRE` lists the feature (CI sets `CORDON_TEST_REQUIRE=all`),
//! in which case a missing feature fails the test instead of skipping it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The cordon binary under test.
pub fn cordon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cordon"))
}

/// Host uid/gid used for the rootless runs (any unprivileged id works for
/// user namespaces; it need not exist in /etc/passwd).
pub const ROOTLESS_ID: u32 = 4321;

/// Whether this process is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether a missing feature must fail rather than skip.
/// `all` requires every feature; `-name` exempts one (CI's host run
/// exempts `cgroup2`, which only the VM lane's kernel offers here).
pub fn required(feature: &str) -> bool {
    std::env::var("CORDON_TEST_REQUIRE")
        .map(|v| {
            let items: Vec<&str> = v.split(',').map(str::trim).collect();
            let excluded = items.iter().any(|f| f.strip_prefix('-') == Some(feature));
            !excluded && items.iter().any(|f| *f == feature || *f == "all")
        })
        .unwrap_or(false)
}

/// Skip (or fail under CORDON_TEST_REQUIRE) when `cond` is false.
#[macro_export]
macro_rules! require {
    ($feature:expr, $cond:expr, $why:expr) => {
        if !$cond {
            if $crate::common::required($feature) {
                panic!("required feature {} is missing: {}", $feature, $why);
            }
            eprintln!("SKIPPED: {} ({})", $why, $feature);
            return;
        }
    };
}

/// How cordon is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As root (the payload still maps to an unprivileged host id).
    Root,
    /// As an unprivileged user ([`ROOTLESS_ID`]), dropped to by the test.
    Rootless,
}

impl Mode {
    /// The host uid the payload of `run` ran as: rootless, the caller's
    /// own; started by root, the id cordon allocated for that sandbox (the
    /// outcome's `host_uid`), never root and never the host's nobody.
    pub fn payload_host_uid(self, run: &Run) -> u32 {
        match self {
            Mode::Root => {
                let id = run
                    .status
                    .as_ref()
                    .and_then(|s| s["host_uid"].as_u64())
                    .unwrap_or_else(|| panic!("the outcome has no host_uid: {:?}", run.status))
                    as u32;
                assert!(id != 0 && id != 65534, "payload ran as host uid {id}");
                id
            }
            Mode::Rootless => ROOTLESS_ID,
        }
    }
}

/// The modes this test process can exercise: both when root, otherwise
/// only rootless as the current user (root mode is reported as skipped).
pub fn modes() -> Vec<Mode> {
    if is_root() {
        vec![Mode::Root, Mode::Rootless]
    } else {
        if required("root") {
            panic!("required feature root is missing: tests run as uid != 0");
        }
        eprintln!("SKIPPED: root mode needs root (root)");
        vec![Mode::Rootless]
    }
}

/// A `cordon` command started in `mode`, with a clean, known environment.
pub fn cordon(mode: Mode) -> Command {
    let mut c = Command::new(cordon_bin());
    c.env_clear();
    c.env("PATH", "/usr/bin:/bin");
    c.env("HOME", "/nonexistent");
    c.stdin(Stdio::null());
    if mode == Mode::Rootless && is_root() {
        c.uid(ROOTLESS_ID).gid(ROOTLESS_ID);
    }
    c
}

/// The result of one cordon run.
#[derive(Debug)]
pub struct Run {
    /// Raw output.
    pub output: Output,
    /// Parsed `--status-json`, when the run wrote it.
    pub status: Option<serde_json::Value>,
}

impl Run {
    /// Payload stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    /// cordon's stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// cordon's exit code (panics if it died of a signal).
    pub fn code(&self) -> i32 {
        self.output
            .status
            .code()
            .unwrap_or_else(|| panic!("cordon died of a signal: {:?}", self.output.status))
    }
    /// The outcome's `status` field.
    pub fn outcome_status(&self) -> String {
        self.status
            .as_ref()
            .and_then(|s| s["status"].as_str())
            .unwrap_or("<none>")
            .to_string()
    }
    /// Assert a zero exit and return stdout.
    pub fn ok(&self) -> String {
        assert_eq!(
            self.code(),
            0,
            "cordon failed\nstdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }
}

/// The outcome's `unenforced` list without what depends on the host rather
/// than on the test's policy: the `memfd_noexec` entry every rootless run
/// carries (tests/hostile/identity.rs checks it) and the default policy's
/// cgroup limits where cgroup v2 is unavailable (`limits: ...`, checked in
/// tests/hostile/bombs.rs).
pub fn unenforced_by_policy(outcome: &serde_json::Value) -> serde_json::Value {
    let items = outcome["unenforced"].as_array().cloned().unwrap_or_default();
    serde_json::Value::Array(
        items
            .into_iter()
            .filter(|v| {
                !v.as_str()
                    .is_some_and(|s| s.starts_with("memfd_noexec:") || s.starts_with("limits: "))
            })
            .collect(),
    )
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under /tmp, world-accessible (mode 0777) so that
/// both the root mode's allocated host id and the rootless uid can use it. Removed on
/// drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Create one; `tag` helps when reading leftovers.
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = PathBuf::from(format!("/tmp/cordon-test-{}-{}-{tag}", std::process::id(), n));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        set_mode(&p, 0o777);
        TempDir(p)
    }
    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The path as a string.
    pub fn str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// chmod.
pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Run cordon in `mode` with `args` (everything before `--`) and the
/// command `cmd`, capturing the outcome JSON.
pub fn run(mode: Mode, args: &[&str], cmd: &[&str]) -> Run {
    run_with(cordon(mode), args, cmd)
}

/// Like [`run`] with a prepared command (extra env, fds...).
pub fn run_with(mut c: Command, args: &[&str], cmd: &[&str]) -> Run {
    let status = TempDir::new("status");
    let sfile = status.path().join("outcome.json");
    c.arg("run")
        .args(args)
        .arg("--status-json")
        .arg(&sfile)
        .arg("--")
        .args(cmd);
    let output = c.output().expect("spawn cordon");
    let status = std::fs::read_to_string(&sfile)
        .ok()
        .map(|s| serde_json::from_str(&s).expect("outcome is JSON"));
    Run { output, status }
}

/// Run a shell snippet in the default sandbox.
pub fn sh(mode: Mode, args: &[&str], script: &str) -> Run {
    run(mode, args, &["/bin/sh", "-c", script])
}

/// Run a python3 snippet in the default sandbox.
pub fn py(mode: Mode, args: &[&str], script: &str) -> Run {
    run(mode, args, &["/usr/bin/python3", "-c", script])
}

/// Whether python3 is installed at /usr/bin/python3.
pub fn have_python() -> bool {
    Path::new("/usr/bin/python3").exists()
}

/// Host processes whose command line contains `needle`.
pub fn host_processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let me = std::process::id();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

/// Wait up to `secs` seconds for `f` to hold.
pub fn wait_until(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

/// Write a policy file into `dir` and return its path.
pub fn write_policy(dir: &TempDir, name: &str, json: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, json).expect("write policy");
    set_mode(&p, 0o644);
    p.to_str().expect("utf-8").to_string()
}

/// Convert anything path-like to a string argument.
pub fn s(p: impl AsRef<OsStr>) -> String {
    p.as_ref().to_string_lossy().into_owned()
}

/// The syscall_probe example (examples/syscall_probe.rs), which `cargo test`
/// builds next to the test binaries.
pub fn probe_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join("examples/syscall_probe");
    assert!(
        p.exists(),
        "{} is missing: build it with cargo test or cargo build --examples",
        p.display()
    );
    p
}

/// A directory holding a copy of the probe, readable by every test identity.
pub struct Probe {
    /// The directory (bound at /probe).
    pub dir: TempDir,
}

impl Probe {
    /// Copy the probe into a fresh directory.
    pub fn new() -> Probe {
        let dir = TempDir::new("probe");
        let dst = dir.path().join("probe");
        std::fs::copy(probe_bin(), &dst).expect("copy probe");
        set_mode(&dst, 0o755);
        Probe { dir }
    }
    /// `--ro-bind` argument for the probe at /probe/probe.
    pub fn bind(&self) -> String {
        format!("{}:/probe", self.dir.str())
    }
}

/// Whether the tests run in the VM lane (tests/vm/run.sh sets `CORDON_VM`),
/// where everything is software-emulated and several times slower.
pub fn in_vm() -> bool {
    std::env::var_os("CORDON_VM").is_some()
}

/// How much longer time windows must be than on the host: 10 in the VM lane
/// (TCG emulation runs programs 5 to 60 times slower), 1 elsewhere. Tests
/// scale waits, time limits and upper bounds with it, never what they
/// assert about the order of events.
pub fn slow_factor() -> u32 {
    if in_vm() {
        10
    } else {
        1
    }
}

/// `d` scaled by [`slow_factor`].
pub fn scaled(d: std::time::Duration) -> std::time::Duration {
    d * slow_factor()
}

/// A `--time-limit` argument of `secs` seconds scaled by [`slow_factor`].
pub fn time_limit(secs: u64) -> String {
    format!("{}s", secs * u64::from(slow_factor()))
}

/// cordon's stderr without the `not enforced: landlock: ...` warnings that a
/// kernel with an older Landlock ABI than the default policy asks for prints
/// on every run (the VM lane's 6.1 has ABI 2), for tests that are not about
/// Landlock.
pub fn without_landlock_warnings(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("cordon: warning: not enforced: landlock: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Whether /sys/fs/cgroup is a cgroup v2 hierarchy offering `controller`.
pub fn cgroup2_with(controller: &str) -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|s| s.split_whitespace().any(|c| c == controller))
}

/// Flags for a workspace test in `mode` whose host directories belong to
/// [`ROOTLESS_ID`]. Started by root, cordon idmaps a workspace's lower
/// layer to the directory's owner; where /tmp cannot make idmapped mounts
/// (tmpfs before Linux 6.3: the VM lane), the payload instead runs as host
/// id [`ROOTLESS_ID`] itself (`identity.host_uid`/`host_gid` in a policy
/// written into `dir`), which needs no idmap. Empty otherwise.
pub fn workspace_mode_args(mode: Mode, dir: &TempDir) -> Vec<String> {
    static IDMAP: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if mode == Mode::Rootless {
        return Vec::new();
    }
    let idmap = *IDMAP.get_or_init(|| {
        let probe = TempDir::new("ws-idmap-probe");
        std::os::unix::fs::chown(probe.path(), Some(ROOTLESS_ID), Some(ROOTLESS_ID)).expect("chown");
        let r = run(Mode::Root, &["--workspace", probe.str()], &["/bin/true"]);
        !r.stderr().contains("idmapped lower layer")
    });
    if idmap {
        return Vec::new();
    }
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.json"))
        .expect("default policy");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("default policy is JSON");
    v["identity"]["host_uid"] = ROOTLESS_ID.into();
    v["identity"]["host_gid"] = ROOTLESS_ID.into();
    vec![
        "--policy".to_string(),
        write_policy(dir, "ws-identity.json", &v.to_string()),
    ]
}

/// A host server on 127.0.0.1 that answers every request with `hello`
/// (a thread of this test process), for the egress proxy's tests.
pub fn hello_server() -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(20)));
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let _ =
                    c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
            });
        }
    });
    port
}

/// An audit log's lines as JSON.
pub fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// The lines of one event.
pub fn events<'a>(lines: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == name).collect()
}

/// A close-on-exec pipe: (read end, write end).
pub fn cloexec_pipe() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds are new and owned here.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// "root" or "rootless": who this test process is, for messages.
pub fn who() -> &'static str {
    if is_root() {
        "root"
    } else {
        "rootless"
    }
}

/// Run this test binary again as the unprivileged uid [`ROOTLESS_ID`] with
/// the libtest arguments `args` (filters, `--skip` of the calling test)
/// and `child_env` set, and assert that it passed and ran tests; its
/// stdout and stderr. None when there is nothing to do: this process is
/// that re-run (`child_env` set), or it is not root (the tests already ran
/// unprivileged; SKIPPED, or a failure when root is required).
pub fn rerun_unprivileged(child_env: &str, args: &[&str]) -> Option<(String, String)> {
    if std::env::var_os(child_env).is_some() {
        return None;
    }
    if !is_root() {
        if required("root") {
            panic!("required feature root is missing: tests run as uid != 0");
        }
        eprintln!("SKIPPED: the tests above already ran unprivileged; the root run needs root (root)");
        return None;
    }
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .args(args)
        .env(child_env, "1")
        .uid(ROOTLESS_ID)
        .gid(ROOTLESS_ID)
        .stdin(Stdio::null())
        .output()
        .expect("re-run as the unprivileged user");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("test result: ok.") && !stdout.contains(" 0 passed"),
        "the unprivileged run failed: {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    Some((stdout, stderr))
}

/// A runtime directory for named sandboxes (`XDG_RUNTIME_DIR`) for
/// `mode`: owned by the uid cordon runs as, 0700. Removed on drop, after
/// SIGKILLing every supervisor its state files name.
pub struct NamedRuntime(pub TempDir);

impl Drop for NamedRuntime {
    /// A test that failed half-way leaves no supervisor running: each
    /// state file names one (its init dies with it).
    fn drop(&mut self) {
        for e in std::fs::read_dir(self.dir()).into_iter().flatten().flatten() {
            let Ok(b) = std::fs::read(e.path()) else { continue };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) else {
                continue;
            };
            if let Some(pid) = v["supervisor_pid"].as_i64() {
                // SAFETY: kill has no memory arguments; the pid is a
                // supervisor this test started (its state file says so).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

impl NamedRuntime {
    pub fn new(mode: Mode) -> NamedRuntime {
        let t = TempDir::new("xdg");
        set_mode(t.path(), 0o700);
        if mode == Mode::Rootless && is_root() {
            let p = std::ffi::CString::new(t.str()).expect("path");
            // SAFETY: chown of a directory this test made.
            let r = unsafe { libc::chown(p.as_ptr(), ROOTLESS_ID, ROOTLESS_ID) };
            assert_eq!(r, 0, "chown: {}", std::io::Error::last_os_error());
        }
        NamedRuntime(t)
    }

    pub fn dir(&self) -> std::path::PathBuf {
        self.0.path().join("cordon")
    }

    pub fn cordon(&self, mode: Mode, args: &[&str]) -> std::process::Output {
        let mut c = cordon(mode);
        c.env("XDG_RUNTIME_DIR", self.0.path()).args(args);
        c.output().expect("spawn cordon")
    }

    pub fn ls(&self, mode: Mode) -> Vec<serde_json::Value> {
        let o = self.cordon(mode, &["ls", "--json"]);
        assert!(o.status.success(), "ls: {o:?}");
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .expect("ls --json")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The files left in the runtime directory.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Whether `pid` is a live process: a zombie still answers kill(0), so its
/// state is read instead.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').map_or(0, |i| i + 1)..]
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}
