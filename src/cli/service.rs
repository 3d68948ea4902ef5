//! nsjail's service modes: `cordon serve` (a fresh sandbox per TCP
//! connection, inetd-style, nsjail's `-Ml`) and `cordon run --rerun` (the
//! same command again in a fresh sandbox, nsjail's `-Mr`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use clap::{ArgMatches, Args};
use serde_json::Value;

use cordon::audit::{AuditLog, AuditTarget};
use cordon::error::LaunchError;
use cordon::launch::{self, RunOptions};
use cordon::outcome::{Outcome, Status, EXIT_SETUP};
use cordon::output::OutputFile;
use cordon::plan::Plan;
use cordon::policy::Policy;
use cordon::secret::{Secret, SecretEnv};

// ---- cordon run --rerun ----------------------------------------------------

/// How many runs `--rerun` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rerun {
    /// This many runs in all (at least 1).
    Times(u64),
    /// Until a run fails (with `--rerun-stop-on-failure`), cordon is
    /// signalled, or a run cannot be set up.
    Forever,
}

impl std::str::FromStr for Rerun {
    type Err = String;
    fn from_str(s: &str) -> Result<Rerun, String> {
        if s == "forever" {
            return Ok(Rerun::Forever);
        }
        match s.parse::<u64>() {
            Ok(0) => Err("0 runs: give at least 1, or forever".to_string()),
            Ok(n) => Ok(Rerun::Times(n)),
            Err(_) => Err(format!(
                "{s:?}: expected the number of runs (1 or more) or forever"
            )),
        }
    }
}

/// Whether a run succeeded, for `--rerun-stop-on-failure`: the payload
/// exited with 0 (no signal, timeout, out-of-memory kill or setup failure).
fn succeeded(out: &Outcome) -> bool {
    out.status == Status::Exited && out.exit_code == 0
}

/// Run `plan` once, or as `rerun` says: each run a fresh sandbox (a new
/// clone of init: new namespaces, new mounts and tmpfs, a new cgroup), the
/// plan's audit log with a fresh sandbox id from the second run on. Stops
/// after the runs asked for, after the first failed run with
/// `stop_on_failure`, after a run that could not be set up, and after a
/// run during which cordon was sent SIGINT, SIGTERM, SIGHUP or SIGQUIT
/// (forwarded to the sandbox: meant for cordon too). Returns the last
/// run's outcome (or its setup error) and the number of runs.
pub(crate) fn run_repeatedly(
    plan: &mut Plan,
    rerun: Option<Rerun>,
    stop_on_failure: bool,
    opts: RunOptions,
    verbose: bool,
) -> (Result<Outcome, LaunchError>, u64) {
    let mut runs: u64 = 0;
    loop {
        if runs > 0 {
            if let Some(a) = plan.supervisor.audit.as_mut() {
                match a.log.for_another_sandbox() {
                    Ok(log) => a.log = log,
                    Err(e) => return (Err(LaunchError::other("audit-log", e)), runs),
                }
            }
        }
        let signals_before = launch::parent::terminating_signals_forwarded();
        // A rerun reaps each sandbox's init before the next.
        let out = launch::run(
            plan,
            RunOptions {
                leave_init: opts.leave_init && rerun.is_none(),
                ..opts
            },
        );
        runs += 1;
        let Some(rerun) = rerun else {
            return (out, runs);
        };
        let out = match out {
            Ok(o) => o,
            Err(e) => return (Err(e), runs),
        };
        let why_stop = if out.status == Status::SetupFailed {
            Some("the run could not be set up")
        } else if launch::parent::terminating_signals_forwarded() != signals_before {
            Some("cordon was signalled")
        } else if stop_on_failure && !succeeded(&out) {
            Some("the run failed (--rerun-stop-on-failure)")
        } else if rerun == Rerun::Times(runs) {
            Some("all runs done")
        } else {
            None
        };
        if verbose {
            eprintln!(
                "cordon: rerun: run {runs}{}: {} exit_code={} wall={}ms",
                match rerun {
                    Rerun::Times(n) => format!(" of {n}"),
                    Rerun::Forever => String::new(),
                },
                out.status.name(),
                out.exit_code,
                out.wall_time_ms
            );
            if let Some(why) = why_stop {
                eprintln!("cordon: rerun: stopped after {runs} run(s): {why}");
            }
        }
        if why_stop.is_some() {
            return (Ok(out), runs);
        }
    }
}

// ---- cordon serve ----------------------------------------------------------

/// `cordon serve`'s own options (the policy options are `cordon run`'s).
#[derive(Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) policy: crate::PolicyArgs,
    /// Listen for TCP connections on [ADDR:]PORT: ADDR is 127.0.0.1 unless
    /// given (0.0.0.0 or [::] for every address), an IPv6 address in
    /// brackets; port 0 takes a free port. The address listened on is
    /// printed on standard error.
    #[arg(long, value_name = "[ADDR:]PORT")]
    listen: String,
    /// At most N sandboxes at once; a connection beyond is closed at once,
    /// with nothing written, and counted.
    #[arg(long = "max-conns", value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_conns: u32,
    /// At most N sandboxes at once for one source address; a connection
    /// beyond is closed at once, with nothing written, and counted.
    #[arg(long = "max-conns-per-ip", value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_conns_per_ip: u32,
    /// Append the audit trail (JSON lines) to PATH, or write it to the
    /// inherited descriptor N (fd:N): every sandbox's events, each
    /// connection's serve.connection line and the serve.refused lines;
    /// replaces the policy's audit.path.
    #[arg(long = "audit-log", value_name = "PATH|fd:N")]
    audit_log: Option<String>,
    /// Write each connection's outcome as one JSON line (serve.connection)
    /// and the refused connections (serve.refused, at most 50 lines a
    /// second) to PATH (appended) or to the inherited descriptor N (fd:N).
    #[arg(long, value_name = "PATH|fd:N")]
    outcomes: Option<String>,
    /// Append the sandboxes' standard error to PATH, each line prefixed
    /// with `[conn N] ` (default: cordon's own standard error, as is).
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
    /// One line on standard error per connection that ended.
    #[arg(short, long)]
    verbose: bool,
    /// No warnings on standard error; errors are still printed.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// The command and its arguments: after `--`, or after the last option
    /// (every word from the command's name on belongs to the command).
    #[arg(trailing_var_arg = true, required = true, num_args = 1.., value_name = "CMD")]
    pub(crate) command: Vec<OsString>,
}

/// At most this many `serve.refused` lines a second (each sink), so that a
/// flood of connections over the caps costs a bounded amount of logging;
/// the next line written says how many were left out.
const REFUSALS_LOGGED_PER_SECOND: u64 = 50;

/// How long a stop (SIGINT, SIGTERM, SIGHUP) waits for the killed sandboxes
/// to be reaped and their outcomes written.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Parse `--listen`: `PORT`, `ADDR:PORT` or `[V6ADDR]:PORT`.
pub(crate) fn parse_listen(spec: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| {
        format!("--listen {spec:?}: {why}; expected [ADDR:]PORT, e.g. 8080, 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080")
    };
    let (addr, port) = if let Some(rest) = spec.strip_prefix('[') {
        let (a, p) = rest
            .split_once("]:")
            .ok_or_else(|| bad("an IPv6 address in brackets must be followed by :PORT"))?;
        let a: std::net::Ipv6Addr = a.parse().map_err(|_| bad("not an IPv6 address"))?;
        (IpAddr::V6(a), p)
    } else if let Some((a, p)) = spec.rsplit_once(':') {
        if a.contains(':') {
            return Err(bad("an IPv6 address goes in brackets"));
        }
        let a: Ipv4Addr = a
            .parse()
            .map_err(|_| bad("not an IPv4 address (host names are not looked up)"))?;
        (IpAddr::V4(a), p)
    } else {
        (IpAddr::V4(Ipv4Addr::LOCALHOST), spec)
    };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the port is not a number from 0 to 65535"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    Ok(SocketAddr::new(addr, port))
}

/// The write end of the stop pipe, for the signal handler (-1: none).
static STOP_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    let fd = STOP_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; one byte from a live
        // local to the pipe's non-blocking write end (a full pipe already
        // says "stop"); errno is saved and restored around it.
        unsafe {
            let e = *libc::__errno_location();
            libc::write(fd, (&b as *const u8).cast(), 1);
            *libc::__errno_location() = e;
        }
    }
}

/// A pipe whose read end becomes readable on SIGINT, SIGTERM or SIGHUP.
fn stop_pipe() -> Result<OwnedFd, String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into a valid array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both were just made and are owned by nothing else; the write
    // end is kept open for the life of the process (the handler uses it).
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    STOP_FD.store(fds[1], Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only calls
        // async-signal-safe functions; sa_mask is emptied before use.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
            }
        }
    }
    Ok(r)
}

/// A rate-limited kind of line: at most [`REFUSALS_LOGGED_PER_SECOND`] a
/// second.
#[derive(Default)]
struct Budget {
    second: u64,
    written: u64,
    left_out: u64,
}

/// What the connections share.
struct Shared {
    /// This server's id: the `sandbox` of its serve.refused lines.
    serve_id: String,
    policy: Policy,
    name: String,
    argv: Vec<OsString>,
    secrets: Vec<SecretEnv>,
    audit: Option<AuditLog>,
    outcomes: Option<AuditLog>,
    log: Option<OutputFile>,
    verbose: bool,
    quiet: bool,
    started: Instant,
    state: Mutex<State>,
    ended: Condvar,
}

#[derive(Default)]
struct State {
    /// Connections with a sandbox (starting, running): the caps count these.
    active: u32,
    /// Connections whose outcome line is not written yet (a stop waits for
    /// these).
    pending: u32,
    per_ip: HashMap<IpAddr, u32>,
    /// The running sandboxes' pidfds, by connection number.
    pidfds: HashMap<u64, OwnedFd>,
    stopping: bool,
    refused: u64,
    budget: Budget,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write `line` to the outcomes and the audit log.
    fn emit(&self, line: &str) {
        for sink in [&self.outcomes, &self.audit].into_iter().flatten() {
            sink.emit_line(line);
        }
    }
}

/// Ends a connection's accounting however its thread ends.
struct Slot<'a> {
    shared: &'a Shared,
    ip: IpAddr,
    conn: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.active -= 1;
        if let Some(n) = st.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.per_ip.remove(&self.ip);
            }
        }
        st.pidfds.remove(&self.conn);
        self.shared.ended.notify_all();
    }
}

/// One line on standard error, never waiting for it: the sandboxes share
/// it (without `--log`) and may fill a pipe behind it, and a client's
/// refused connections must not stop the server. A line that does not fit
/// at once is lost.
fn note(line: &str) {
    cordon::launch::notify::write_stderr_nowait(format!("{line}\n").as_bytes());
}

fn json_line(sandbox: &str, event: &str, fields: &[(&str, Value)]) -> String {
    cordon::audit::line_at(std::time::SystemTime::now(), sandbox, event, fields)
}

/// Counts a connection as pending until its outcome line is written.
struct Pending<'a>(&'a Shared);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.pending -= 1;
        self.0.ended.notify_all();
    }
}

/// One connection: its sandbox, started with the connection as stdin and
/// stdout, waited for, and its outcome written.
fn connection(shared: &Shared, stream: TcpStream, peer: SocketAddr, conn: u64) {
    let _pending = Pending(shared);
    let slot = Slot {
        shared,
        ip: peer.ip().to_canonical(),
        conn,
    };
    // The sandbox id: its audit log's, so that the serve.connection line
    // and the sandbox's own events match.
    let audit = shared
        .audit
        .as_ref()
        .map(AuditLog::for_another_sandbox)
        .transpose();
    let (audit, id) = match audit {
        Ok(Some(log)) => {
            let id = log.sandbox().to_string();
            (Ok(Some(log)), id)
        }
        Ok(None) => (
            Ok(None),
            cordon::audit::random_id().unwrap_or_else(|_| format!("{}-{conn}", shared.serve_id)),
        ),
        Err(e) => (Err(e), format!("{}-{conn}", shared.serve_id)),
    };
    let started = Instant::now();
    let result = audit
        .map_err(|e| LaunchError::other("audit-log", e))
        .and_then(|audit| spawn(shared, stream, audit, conn));
    let outcome = match result {
        Ok(child) => {
            {
                let mut st = shared.lock();
                if let Ok(fd) = child.pidfd().try_clone_to_owned() {
                    st.pidfds.insert(conn, fd);
                }
                if st.stopping {
                    let _ = child.kill();
                }
            }
            child
                .wait()
                .unwrap_or_else(|e| crate::failed_outcome(launch_error(e)))
        }
        Err(e) => {
            let mut out = crate::failed_outcome(e);
            out.wall_time_ms = started.elapsed().as_millis() as u64;
            out
        }
    };
    // The sandbox is gone: its place is free before its outcome is written
    // (a client that saw the line may connect again at once).
    drop(slot);
    if let Some(e) = &outcome.error {
        if !shared.quiet {
            note(&format!("cordon: serve: connection {conn} from {peer}: {e}"));
        }
    }
    if shared.verbose {
        note(&format!(
            "cordon: serve: connection {conn} from {peer}: {} exit_code={} wall={}ms",
            outcome.status.name(),
            outcome.exit_code,
            outcome.wall_time_ms
        ));
    }
    let outcome_json: Value = serde_json::from_str(&outcome.to_json()).unwrap_or(Value::Null);
    let line = json_line(
        &id,
        "serve.connection",
        &[
            ("conn", Value::from(conn)),
            ("peer", Value::from(peer.to_string())),
            ("outcome", outcome_json),
        ],
    );
    shared.emit(&line);
}

fn launch_error(e: cordon::Error) -> LaunchError {
    match e {
        cordon::Error::Launch(e) => e,
        e => LaunchError::other("sandbox", e.to_string()),
    }
}

/// Start the connection's sandbox: the socket as its stdin and stdout
/// (cordon's copies close once the sandbox's init has its own), stderr to
/// cordon's own or, with `--log`, a pipe relayed into the log.
fn spawn(
    shared: &Shared,
    stream: TcpStream,
    audit: Option<AuditLog>,
    conn: u64,
) -> Result<cordon::Child, LaunchError> {
    let out: OwnedFd = stream.into();
    let dup = |fd: &dyn AsFd, what: &str| {
        fd.as_fd()
            .try_clone_to_owned()
            .map_err(|e| LaunchError::other(what, e.to_string()))
    };
    let input = dup(&out, "dup the connection")?;
    let err = match &shared.log {
        Some(f) => {
            // SAFETY: the log file stays open as long as `shared`; the
            // borrow ends before this function returns.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(f.as_raw_fd()) };
            let log = std::fs::File::from(dup(&fd, "dup the log")?);
            let (r, w) = cordon::sys::pipe().map_err(|e| LaunchError::sys("pipe", "the log relay", e))?;
            // SAFETY: pipe() just made both descriptors; each is owned
            // once, here.
            let (r, w) = unsafe { (std::fs::File::from_raw_fd(r), OwnedFd::from_raw_fd(w)) };
            std::thread::Builder::new()
                .name(format!("log-{conn}"))
                .spawn(move || relay_log(r, log, conn))
                .map_err(|e| LaunchError::other("log relay thread", e.to_string()))?;
            Some(w)
        }
        None => None,
    };
    let mut sb = cordon::Sandbox::new(shared.policy.clone())
        .named(&shared.name)
        .stdio(Some(input), Some(out), err);
    for s in &shared.secrets {
        sb = sb.secret_env(s.name(), Secret::new(s.value().expose().to_vec()));
    }
    if let Some(log) = audit {
        sb = sb.audit_log(log);
    }
    sb.spawn(&shared.argv).map_err(launch_error)
}

/// The longest line of a sandbox's standard error written to `--log` as
/// one line; a longer one is cut into lines of this length.
const LOG_LINE_MAX: usize = 4096;

/// Copy a sandbox's standard error (the read end of its pipe) into the
/// `--log` file, each line prefixed with `[conn N] ` and written with one
/// `write(2)` (the file is `O_APPEND`: lines of concurrent sandboxes never
/// interleave). The sandbox never holds the log file itself: it can neither
/// truncate nor rewrite what others logged. Ends at EOF, when every process
/// of the sandbox is gone.
fn relay_log(r: std::fs::File, mut log: std::fs::File, conn: u64) {
    use std::io::{Read, Write};
    let mut r = r;
    let prefix = format!("[conn {conn}] ");
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut buf = [0u8; 8192];
    let mut emit = |line: &mut Vec<u8>| {
        let mut out = Vec::with_capacity(prefix.len() + line.len() + 1);
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(line);
        out.push(b'\n');
        line.clear();
        // A full disk or a failing file loses the line, never the relay.
        let _ = log.write_all(&out);
    };
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                emit(&mut line);
            } else {
                line.push(b);
                if line.len() >= LOG_LINE_MAX {
                    emit(&mut line);
                }
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line);
    }
}

/// Refuse a connection over a cap: closed at once, nothing written; one
/// line at most [`REFUSALS_LOGGED_PER_SECOND`] a second.
fn refuse(shared: &Shared, st: &mut State, stream: TcpStream, peer: SocketAddr, reason: &str, limit: u32) {
    drop(stream);
    st.refused += 1;
    let now = shared.started.elapsed().as_secs();
    let b = &mut st.budget;
    if b.second != now {
        b.second = now;
        b.written = 0;
    }
    if b.written >= REFUSALS_LOGGED_PER_SECOND {
        b.left_out += 1;
        return;
    }
    b.written += 1;
    let left_out = std::mem::take(&mut b.left_out);
    if !shared.quiet {
        note(&format!(
            "cordon: serve: refused a connection from {peer}: {reason} ({limit}){}",
            if left_out > 0 {
                format!("; {left_out} more refusals not shown")
            } else {
                String::new()
            }
        ));
    }
    if shared.outcomes.is_none() && shared.audit.is_none() {
        return;
    }
    let mut fields = vec![
        ("peer", Value::from(peer.to_string())),
        ("reason", Value::from(reason)),
        ("limit", Value::from(limit)),
        ("refused_total", Value::from(st.refused)),
    ];
    if left_out > 0 {
        fields.push(("left_out", Value::from(left_out)));
    }
    shared.emit(&json_line(&shared.serve_id, "serve.refused", &fields));
}

/// Open `--audit-log` or `--outcomes` (before anything runs).
fn open_sink(flag: &str, spec: Option<&str>, avoid: &[libc::c_int]) -> Result<Option<AuditLog>, String> {
    spec.map(|spec| {
        AuditTarget::parse(spec)
            .and_then(|t| AuditLog::open(&t, avoid))
            .map_err(|e| format!("{flag}: {e}"))
    })
    .transpose()
}

/// The descriptor `fd:N` names, if it does.
fn fd_of(spec: Option<&str>) -> Option<libc::c_int> {
    match AuditTarget::parse(spec?) {
        Ok(AuditTarget::Fd(n)) => Some(n),
        _ => None,
    }
}

/// `cordon serve`.
pub(crate) fn serve(a: ServeArgs, m: &ArgMatches) -> i32 {
    match serve_inner(a, m) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cordon: serve: {e}");
            EXIT_SETUP
        }
    }
}

fn serve_inner(a: ServeArgs, m: &ArgMatches) -> Result<i32, String> {
    // Before cordon opens anything of its own (fd:N must be inherited).
    let secrets = crate::read_secrets(&a.policy, None).map_err(|e| e.to_string())?;
    let secrets: Vec<SecretEnv> = secrets.into_iter().map(|(s, _)| s).collect();
    let (audit_fd, outcomes_fd) = (fd_of(a.audit_log.as_deref()), fd_of(a.outcomes.as_deref()));
    if audit_fd.is_some() && audit_fd == outcomes_fd {
        return Err("--audit-log and --outcomes name the same descriptor: give each its own".to_string());
    }
    let audit = open_sink("--audit-log", a.audit_log.as_deref(), outcomes_fd.as_slice())?;
    let outcomes = open_sink("--outcomes", a.outcomes.as_deref(), audit_fd.as_slice())?;
    let log = a
        .log
        .as_deref()
        .map(|p| OutputFile::open_append(p, 0o600))
        .transpose()
        .map_err(|e| format!("--log: {e}"))?;
    let addr = parse_listen(&a.listen)?;
    let mut loaded = crate::effective_policy(&a.policy, m).map_err(|e| e.to_string())?;
    // The policy's audit.path, unless --audit-log replaces it, is opened
    // once here like --audit-log: the serve lines go there too, and each
    // sandbox writes through a copy (never opening the path itself).
    let audit = match audit {
        Some(log) => Some(log),
        None => cordon::audit::open_for_policy(&loaded.policy, &loaded.name)
            .map_err(|e| loaded.sources.locate(e).to_string())?
            .map(|run| run.log),
    };
    loaded.policy.audit = None;
    // Everything a connection's sandbox checks, checked once now, so that a
    // policy that cannot run is refused before anything listens.
    let trial = loaded
        .policy
        .check_supervised(&loaded.name)
        .and_then(|_| Plan::build_with_secrets(&loaded.policy, &loaded.name, &a.command, &secrets))
        .map_err(|e| loaded.sources.locate(e).to_string())?;
    if !a.quiet {
        for item in &trial.supervisor.unenforced {
            eprintln!("cordon: warning: not enforced: {item}");
        }
    }
    drop(trial);
    let listener = TcpListener::bind(addr).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EADDRINUSE) => ": another program listens there; choose another port",
            Some(libc::EACCES) => ": ports below 1024 need CAP_NET_BIND_SERVICE",
            Some(libc::EADDRNOTAVAIL) => ": no interface of this host has that address",
            _ => "",
        };
        format!("--listen {addr}: {}{hint}", cordon::policy::io_error_text(&e))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("--listen: {e}"))?;
    let local = listener.local_addr().map_err(|e| format!("--listen: {e}"))?;
    let stop = stop_pipe()?;
    eprintln!(
        "cordon: serve: listening on {local} (at most {} sandboxes, {} per address)",
        a.max_conns, a.max_conns_per_ip
    );
    let shared = Arc::new(Shared {
        serve_id: cordon::audit::random_id()?,
        policy: loaded.policy,
        name: loaded.name,
        argv: a.command,
        secrets,
        audit,
        outcomes,
        log,
        verbose: a.verbose,
        quiet: a.quiet,
        started: Instant::now(),
        state: Mutex::new(State::default()),
        ended: Condvar::new(),
    });
    let mut conn: u64 = 0;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds, no timeout.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        if fds[1].revents != 0 {
            break;
        }
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR | libc::ECONNABORTED | libc::EPROTO) => continue,
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    // Out of descriptors or memory: the connection waits in
                    // the backlog; do not spin.
                    if !a.quiet {
                        note(&format!("cordon: serve: accept: {e}"));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                _ => return Err(format!("accept: {e}")),
            },
        };
        let ip = peer.ip().to_canonical();
        {
            let mut st = shared.lock();
            if st.active >= a.max_conns {
                refuse(&shared, &mut st, stream, peer, "max_conns", a.max_conns);
                continue;
            }
            if st.per_ip.get(&ip).copied().unwrap_or(0) >= a.max_conns_per_ip {
                refuse(
                    &shared,
                    &mut st,
                    stream,
                    peer,
                    "max_conns_per_ip",
                    a.max_conns_per_ip,
                );
                continue;
            }
            st.active += 1;
            st.pending += 1;
            *st.per_ip.entry(ip).or_insert(0) += 1;
        }
        conn += 1;
        let s = Arc::clone(&shared);
        let n = conn;
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{n}"))
            .spawn(move || connection(&s, stream, peer, n));
        if let Err(e) = spawned {
            // The closure (and the stream) is gone; undo the accounting.
            let mut st = shared.lock();
            st.active -= 1;
            st.pending -= 1;
            if let Some(c) = st.per_ip.get_mut(&ip) {
                *c -= 1;
                if *c == 0 {
                    st.per_ip.remove(&ip);
                }
            }
            if !a.quiet {
                note(&format!("cordon: serve: connection {n} from {peer}: thread: {e}"));
            }
        }
    }
    // SIGINT, SIGTERM or SIGHUP: stop listening, kill every sandbox, wait
    // (bounded) for their outcomes to be written.
    drop(listener);
    let mut st = shared.lock();
    st.stopping = true;
    for fd in st.pidfds.values() {
        let _ = cordon::sys::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
    }
    let deadline = Instant::now() + STOP_WAIT;
    while st.pending > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        st = shared
            .ended
            .wait_timeout(st, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    let (left, refused) = (st.pending, st.refused);
    drop(st);
    if !a.quiet {
        // Sandboxes not yet reaped may still hold stderr: never wait on it.
        note(&format!(
            "cordon: serve: stopped after {conn} connection(s), {refused} refused{}",
            if left > 0 {
                format!("; {left} outcome(s) not written")
            } else {
                String::new()
            }
        ));
    }
    if let Some(Err(e)) = shared.log.as_ref().map(OutputFile::check_unreplaced) {
        if !a.quiet {
            note(&format!("cordon: warning: --log: {e}"));
        }
    }
    if let Some(Err(e)) = shared.audit.as_ref().map(AuditLog::check_unreplaced) {
        if !a.quiet {
            note(&format!("cordon: warning: {e}"));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse_and_default_to_loopback() {
        assert_eq!(parse_listen("8080").unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse_listen("0").unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(parse_listen("0.0.0.0:80").unwrap(), "0.0.0.0:80".parse().unwrap());
        assert_eq!(parse_listen("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        for bad in [
            "",
            "x",
            "65536",
            "-1",
            "1.2.3:80",
            "localhost:80",
            "::1:80",
            "[::1]",
            "[x]:1",
            "1.2.3.4:",
            "1.2.3.4:+80",
        ] {
            let e = parse_listen(bad).expect_err(bad);
            assert!(e.contains("--listen"), "{e}");
        }
    }

    #[test]
    fn rerun_counts_parse() {
        assert_eq!("3".parse::<Rerun>(), Ok(Rerun::Times(3)));
        assert_eq!("forever".parse::<Rerun>(), Ok(Rerun::Forever));
        assert!("0".parse::<Rerun>().is_err());
        assert!("-1".parse::<Rerun>().is_err());
        assert!("lots".parse::<Rerun>().is_err());
    }
}
