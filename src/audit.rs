//! The audit trail (`--audit-log PATH|fd:N`, the policy's `"audit"`):
//! JSON lines, one per event, each with `ts`, `sandbox` and `event` first.
//!
//! The log is opened before the launch. A path is opened append-only, mode
//! 0600 when created, never through a symbolic link (neither the last
//! component nor the directory part), never blocking on a FIFO, and only if
//! it is a regular file with a single link (the rules of
//! [`crate::output`]). `fd:N` names a descriptor the caller passed: it must
//! be open for writing; cordon writes through its own close-on-exec copy (a
//! FIFO is reopened non-blocking, so the caller's descriptor keeps its
//! flags).
//!
//! Every event is one `write(2)` of one complete line: appends of
//! concurrent sandboxes to one file never interleave. The supervisor never
//! waits on the log for long: an event that does not fit a full pipe or
//! socket is dropped and counted (`audit_dropped` in `sandbox.exited` and in
//! the outcome). The events and their fields are documented in
//! cordon-policy(5) (AUDIT LOG) and are stable.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::output::OutputFile;
use crate::policy::Policy;

/// How long the rest of a line that was partly written to a pipe or a
/// socket may take before it is given up (and counted as dropped).
const REST_OF_LINE: Duration = Duration::from_millis(100);

/// Where the audit log goes, as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditTarget {
    /// A file, appended to.
    Path(std::path::PathBuf),
    /// A descriptor the caller passed (`fd:N`).
    Fd(c_int),
}

impl AuditTarget {
    /// Parse `PATH` or `fd:N`. `fd:` followed by anything but a decimal
    /// number of at most 9 digits is refused (not taken as a path).
    pub fn parse(spec: &str) -> Result<AuditTarget, String> {
        if spec.is_empty() {
            return Err("the audit log path is empty".to_string());
        }
        if let Some(n) = spec.strip_prefix("fd:") {
            if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "{spec:?}: expected fd:N with N a file descriptor number (write ./{spec} for a file of that name)"
                ));
            }
            return n
                .parse()
                .map(AuditTarget::Fd)
                .map_err(|e| format!("{spec:?}: {e}"));
        }
        Ok(AuditTarget::Path(spec.into()))
    }
}

/// What kind of descriptor the log is written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A regular file.
    File,
    /// A character device or anything else: `RWF_NOWAIT` where the
    /// kernel has it for that file, a plain write otherwise.
    Device,
    /// A pipe or FIFO opened non-blocking.
    Pipe,
    /// A pipe cordon may not reopen (another user's): written with
    /// `RWF_NOWAIT`, which the kernel was checked to support for it.
    PipeNowait,
    /// A socket: written with `MSG_DONTWAIT`.
    Socket,
}

#[derive(Debug)]
struct Inner {
    /// Shared by the copies [`AuditLog::for_another_sandbox`] makes.
    fd: Arc<OwnedFd>,
    kind: Kind,
    /// For a path: the file as opened, to see after the run whether the
    /// path was replaced.
    file: Option<OutputFile>,
    shown: String,
    sandbox: String,
    dropped: AtomicU64,
}

/// An open audit log; cloning shares it (and its dropped-event count).
#[derive(Clone, Debug)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

fn errno_text(e: i32) -> String {
    crate::policy::io_error_text(&std::io::Error::from_raw_os_error(e))
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A fresh 128-bit id in hex, from getrandom(2).
pub fn random_id() -> Result<String, String> {
    let mut b = [0u8; 16];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `b`.
        let r = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if r < 0 {
            let e = last_errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(format!("getrandom: {}", errno_text(e)));
        }
        got += r as usize;
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl AuditLog {
    /// Open the log `target` for a new sandbox (with a fresh random id).
    /// `avoid` are descriptors cordon itself uses for something else
    /// (`--status-fd`): `fd:N` naming one of them is refused.
    pub fn open(target: &AuditTarget, avoid: &[c_int]) -> Result<AuditLog, String> {
        let sandbox = random_id()?;
        let (fd, kind, file, shown) = match target {
            AuditTarget::Path(p) => {
                let f = OutputFile::open_append(p, 0o600)?;
                // SAFETY: F_DUPFD_CLOEXEC on the open file's descriptor; the
                // result is checked and owned below.
                let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
                if fd < 0 {
                    return Err(format!("{}: {}", p.display(), errno_text(last_errno())));
                }
                // SAFETY: fd was just made and is owned by nothing else.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                (fd, Kind::File, Some(f), p.display().to_string())
            }
            AuditTarget::Fd(n) => {
                let (fd, kind) = open_fd(*n, avoid)?;
                (fd, kind, None, format!("fd:{n}"))
            }
        };
        Ok(AuditLog {
            inner: Arc::new(Inner {
                fd: Arc::new(fd),
                kind,
                file,
                shown,
                sandbox,
                dropped: AtomicU64::new(0),
            }),
        })
    }

    /// The same log for another sandbox (`cordon serve`'s connections,
    /// `cordon run --rerun`'s runs): the same descriptor, a fresh sandbox
    /// id and a dropped-event count of its own. The copy never checks
    /// whether the path was replaced ([`AuditLog::check_unreplaced`] of
    /// the log opened first does).
    pub fn for_another_sandbox(&self) -> Result<AuditLog, String> {
        Ok(AuditLog {
            inner: Arc::new(Inner {
                fd: Arc::clone(&self.inner.fd),
                kind: self.inner.kind,
                file: None,
                shown: self.inner.shown.clone(),
                sandbox: random_id()?,
                dropped: AtomicU64::new(0),
            }),
        })
    }

    /// Write one line made elsewhere (it must be one JSON object and end
    /// with a newline) as one write; whether it was written whole (if not,
    /// it is counted as dropped).
    pub fn emit_line(&self, line: &str) -> bool {
        let ok = self.write_line(line.as_bytes());
        if !ok {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// The sandbox id every line carries.
    pub fn sandbox(&self) -> &str {
        &self.inner.sandbox
    }

    /// The log's name: the path as given, or `fd:N`.
    pub fn shown(&self) -> &str {
        &self.inner.shown
    }

    /// How many events were dropped (the pipe or socket was full).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Whether the log's path still names the file opened before the run
    /// (always true for `fd:N`); if not, a message saying what happened.
    /// The events were written to the file opened before the run either
    /// way: a replacement is never followed.
    pub fn check_unreplaced(&self) -> Result<(), String> {
        match &self.inner.file {
            Some(f) => f.check_unreplaced().map_err(|e| {
                format!("audit log: {e} (the events went to the file that was there before the run)")
            }),
            None => Ok(()),
        }
    }

    /// The line of one event: `ts`, `sandbox`, `event`, then `fields` in
    /// their order.
    pub fn line(&self, event: &str, fields: &[(&str, Value)]) -> String {
        line_at(SystemTime::now(), &self.inner.sandbox, event, fields)
    }

    /// Write one event as one line; whether it was written whole (if not,
    /// it is counted as dropped).
    pub fn emit(&self, event: &str, fields: &[(&str, Value)]) -> bool {
        let line = self.line(event, fields);
        let ok = self.write_line(line.as_bytes());
        if !ok {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// One write of the whole line; on a pipe or a socket that took only
    /// part of it, the rest within [`REST_OF_LINE`].
    fn write_line(&self, line: &[u8]) -> bool {
        let fd = self.inner.fd.as_raw_fd();
        let mut done = 0;
        let mut give_up: Option<Instant> = None;
        while done < line.len() {
            let rest = &line[done..];
            let r = match self.inner.kind {
                // SAFETY: the pointer and length describe `rest`, which the
                // kernel only reads; fd is the log's own descriptor.
                Kind::Socket => unsafe {
                    libc::send(
                        fd,
                        rest.as_ptr().cast(),
                        rest.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                },
                // SAFETY: as above; a pipe was opened O_NONBLOCK, a regular
                // file does not block on space.
                Kind::File => unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) },
                // SAFETY: as above.
                Kind::Pipe => no_sigpipe(|| unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) }),
                Kind::PipeNowait => no_sigpipe(|| pwrite_nowait(fd, rest)),
                Kind::Device => match pwrite_nowait(fd, rest) {
                    // SAFETY: as above.
                    r if r < 0 && last_errno() == libc::EOPNOTSUPP => unsafe {
                        libc::write(fd, rest.as_ptr().cast(), rest.len())
                    },
                    r => r,
                },
            };
            if r > 0 {
                done += r as usize;
                continue;
            }
            let e = if r == 0 { libc::EIO } else { last_errno() };
            match e {
                libc::EINTR => continue,
                // Nothing written yet: the event is dropped, not waited for.
                libc::EAGAIN if done == 0 => return false,
                libc::EAGAIN => {
                    let end = *give_up.get_or_insert_with(|| Instant::now() + REST_OF_LINE);
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd, a bounded timeout.
                    unsafe { libc::poll(&mut p, 1, left.as_millis().max(1) as c_int) };
                }
                _ => return false,
            }
        }
        true
    }
}

/// Check `fd:N` and make cordon's own copy of it.
fn open_fd(n: c_int, avoid: &[c_int]) -> Result<(OwnedFd, Kind), String> {
    let shown = format!("fd:{n}");
    if avoid.contains(&n) {
        return Err(format!(
            "{shown}: cordon already uses this descriptor for something else (--status-fd); pass the audit log on its own descriptor"
        ));
    }
    // SAFETY: F_GETFL takes no argument; any number may be asked about.
    let fl = unsafe { libc::fcntl(n, libc::F_GETFL) };
    if fl < 0 {
        return Err(format!(
            "{shown}: not an open file descriptor ({}): open it for writing in the shell that starts cordon, e.g. `3>>audit.jsonl`",
            errno_text(last_errno())
        ));
    }
    if fl & libc::O_PATH != 0 || fl & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(format!("{shown}: the descriptor is not open for writing"));
    }
    // SAFETY: an all-zero stat is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: n is open (F_GETFL succeeded), st a valid writable buffer.
    if unsafe { libc::fstat(n, &mut st) } != 0 {
        return Err(format!("{shown}: {}", errno_text(last_errno())));
    }
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFIFO => Kind::Pipe,
        libc::S_IFDIR => return Err(format!("{shown}: the descriptor is a directory")),
        libc::S_IFREG => Kind::File,
        _ => Kind::Device,
    };
    if kind == Kind::Pipe {
        return open_pipe(n, &shown);
    }
    // SAFETY: n is open; F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let fd = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(format!("{shown}: {}", errno_text(last_errno())));
    }
    // SAFETY: fd was just made and is owned by nothing else.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, kind))
}

/// The pipe `n`: a new open file description of it, non-blocking (the
/// caller's descriptor keeps its flags, and a full pipe never blocks the
/// supervisor); or, for another user's pipe, which cordon may not reopen, a
/// copy written with `RWF_NOWAIT` if this kernel has it for pipes.
fn open_pipe(n: c_int, shown: &str) -> Result<(OwnedFd, Kind), String> {
    let proc = CString::new(format!("/proc/self/fd/{n}")).expect("no NUL in a number");
    // SAFETY: proc is NUL-terminated; the result is checked.
    let fd = unsafe { libc::open(proc.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if fd >= 0 {
        // SAFETY: fd was just opened and is owned by nothing else.
        return Ok((unsafe { OwnedFd::from_raw_fd(fd) }, Kind::Pipe));
    }
    let e = last_errno();
    if e == libc::ENXIO {
        return Err(format!("{shown}: the pipe has no reader"));
    }
    // SAFETY: n is open; F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let fd = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(format!("{shown}: {}", errno_text(last_errno())));
    }
    // SAFETY: fd was just made and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // An empty write: the kernel refuses RWF_NOWAIT before looking at the
    // length when the file does not support it.
    if pwrite_nowait(fd.as_raw_fd(), &[]) < 0 {
        return Err(format!(
            "{shown}: cannot reopen the pipe non-blocking ({}), and this kernel cannot write to it without blocking (RWF_NOWAIT: {}): pass a file, or a pipe of cordon's own user",
            errno_text(e),
            errno_text(last_errno())
        ));
    }
    Ok((fd, Kind::PipeNowait))
}

/// Run `write` (a write to a pipe) with SIGPIPE blocked in this thread,
/// and discard the SIGPIPE a reader that went away raised: the write fails
/// with EPIPE instead of killing the process whatever SIGPIPE's disposition
/// is (a library caller may not ignore it, as Rust programs do).
fn no_sigpipe(write: impl FnOnce() -> isize) -> isize {
    // SAFETY: an all-zero sigset_t is valid storage; sigemptyset and
    // sigaddset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is valid storage; SIGPIPE is a valid signal.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
    }
    // SAFETY: set is initialised; old is valid storage for the old mask.
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) } != 0 {
        return write();
    }
    let r = write();
    let e = last_errno();
    // SAFETY: old was filled by pthread_sigmask.
    let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
    if r < 0 && e == libc::EPIPE && !was_blocked {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: set is initialised, a null siginfo is allowed, zero is
        // a valid timeout: takes the pending SIGPIPE without waiting.
        unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
    }
    // SAFETY: old is the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if r < 0 {
        // The caller reads errno: put the write's back.
        // SAFETY: __errno_location returns this thread's errno.
        unsafe { *libc::__errno_location() = e };
    }
    r
}

/// `pwritev2(fd, buf, -1, RWF_NOWAIT)`: a write at the current position
/// that never waits for room.
fn pwrite_nowait(fd: c_int, buf: &[u8]) -> isize {
    let iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: one iovec over a live slice, which the kernel only reads;
    // offset -1 writes at the current position like write(2).
    unsafe { libc::pwritev2(fd, &iov, 1, -1, libc::RWF_NOWAIT) }
}

/// The line of one event at time `t`.
pub fn line_at(t: SystemTime, sandbox: &str, event: &str, fields: &[(&str, Value)]) -> String {
    let mut s = String::with_capacity(128);
    s.push_str("{\"ts\":\"");
    s.push_str(&rfc3339_ms(t));
    s.push_str("\",\"sandbox\":");
    s.push_str(&Value::from(sandbox).to_string());
    s.push_str(",\"event\":");
    s.push_str(&Value::from(event).to_string());
    for (k, v) in fields {
        s.push(',');
        s.push_str(&Value::from(*k).to_string());
        s.push(':');
        // serde_json escapes every control character: a value the payload
        // chose (argv, an executable's path) cannot end the line.
        s.push_str(&v.to_string());
    }
    s.push_str("}\n");
    s
}

/// `t` as RFC 3339 in UTC with milliseconds: `2026-12-04T13:10:50.123Z`.
pub fn rfc3339_ms(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The policy digest in `sandbox.started`: SHA-256, in hex, of the
/// effective policy (after the command-line flags) as compact JSON, without
/// its `audit` section (where the log goes is not part of what is
/// enforced) and with every `env.set` value emptied (the names stay): a
/// digest of a value is a way to test guesses of it, and a value may be a
/// credential.
pub fn policy_digest(policy: &Policy) -> String {
    let mut p = policy.clone();
    p.audit = None;
    for v in p.env.set.values_mut() {
        v.clear();
    }
    let json = serde_json::to_string(&p).unwrap_or_default();
    sha256_hex(json.as_bytes())
}

/// What `sandbox.started` says about the policy.
#[derive(Clone, Debug)]
pub struct AuditRun {
    /// The open log.
    pub log: AuditLog,
    /// [`policy_digest`] of the effective policy.
    pub policy_digest: String,
    /// The policy's name: its file as given, or the built-in's name.
    pub policy: String,
}

impl AuditRun {
    /// The run's audit state for `log` and the effective `policy` named
    /// `name`.
    pub fn new(log: AuditLog, policy: &Policy, name: &str) -> AuditRun {
        AuditRun {
            log,
            policy_digest: policy_digest(policy),
            policy: name.to_string(),
        }
    }
}

/// Open the policy's own `audit.path` (the command line's `--audit-log`
/// takes its place when given).
pub fn open_for_policy(policy: &Policy, file: &str) -> Result<Option<AuditRun>, crate::policy::PolicyError> {
    let Some(a) = &policy.audit else { return Ok(None) };
    let log = AuditLog::open(&AuditTarget::Path(a.path.clone().into()), &[]).map_err(|m| {
        crate::policy::PolicyError {
            file: file.to_string(),
            path: "audit.path".to_string(),
            position: None,
            message: m,
        }
    })?;
    Ok(Some(AuditRun::new(log, policy, file)))
}

// ---- SHA-256 (FIPS 180-4) ------------------------------------------------

/// SHA-256 of `data`, in lower-case hex (the policy digest).
pub fn sha256_hex(data: &[u8]) -> String {
    let mut h = crate::sha256::Sha256::new();
    h.update(data);
    h.hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_fips_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            sha256_hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn the_digest_ignores_env_values_and_the_audit_path_but_not_the_rest() {
        let base = Policy::from_json("p", r#"{"version": 1, "env": {"set": {"TOKEN": "a"}}}"#).unwrap();
        let d = policy_digest(&base);
        assert_eq!(d.len(), 64);
        let mut other = base.clone();
        other.env.set.insert("TOKEN".into(), "guess".into());
        other.audit = Some(crate::policy::Audit { path: "/x".into() });
        assert_eq!(policy_digest(&other), d);
        let mut renamed = base.clone();
        renamed.env.set = [("OTHER".to_string(), "a".to_string())].into();
        assert_ne!(policy_digest(&renamed), d);
        let mut cwd = base.clone();
        cwd.cwd = "/tmp".into();
        assert_ne!(policy_digest(&cwd), d);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_ms() {
        let t = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(rfc3339_ms(t(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(t(951_782_400, 7)), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339_ms(t(1_796_303_450, 123)), "2026-12-03T13:10:50.123Z");
        assert_eq!(rfc3339_ms(t(4_102_444_799, 999)), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn targets_parse() {
        assert_eq!(AuditTarget::parse("fd:3"), Ok(AuditTarget::Fd(3)));
        assert_eq!(AuditTarget::parse("a/b"), Ok(AuditTarget::Path("a/b".into())));
        for bad in ["", "fd:", "fd:-1", "fd:x", "fd:1234567890", "fd: 3"] {
            assert!(AuditTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_one_json_object_each_with_the_common_fields_first() {
        let l = line_at(
            UNIX_EPOCH,
            "ab",
            "x.y",
            &[
                ("argv", serde_json::json!(["a\nb", "\u{0}"])),
                ("n", Value::from(3)),
            ],
        );
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "{l:?}");
        assert!(l.starts_with("{\"ts\":\"1970-01-01T00:00:00.000Z\",\"sandbox\":\"ab\",\"event\":\"x.y\","));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["argv"][0], "a\nb");
        assert_eq!(v["n"], 3);
    }

    #[test]
    fn ids_are_128_bit_hex_and_differ() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_reader_gone_is_a_dropped_event_not_a_sigpipe() {
        let mut p = [0; 2];
        // SAFETY: p has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let log = AuditLog::open(&AuditTarget::Fd(p[1]), &[]).unwrap();
        // SAFETY: closing the test's own descriptors; the log has its own.
        unsafe {
            libc::close(p[0]);
            libc::close(p[1]);
        }
        // With SIGPIPE's default action a raised SIGPIPE would end this
        // test process.
        // SAFETY: setting a standard disposition, restored below.
        let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let written = log.emit("test", &[]);
        // SAFETY: restoring the disposition saved above.
        unsafe { libc::signal(libc::SIGPIPE, old) };
        assert!(!written);
        assert_eq!(log.dropped(), 1);
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null").unwrap();
        let log = AuditLog::open(&AuditTarget::Fd(null.as_raw_fd()), &[]).unwrap();
        assert!(log.emit("test", &[]), "a character device");
    }

    #[test]
    fn a_full_pipe_drops_and_counts_instead_of_blocking() {
        let mut p = [0; 2];
        // SAFETY: p has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let log = AuditLog::open(&AuditTarget::Fd(p[1]), &[]).unwrap();
        let big = "x".repeat(1000);
        let mut written = 0;
        let start = Instant::now();
        for _ in 0..200 {
            if log.emit("test", &[("pad", Value::from(big.as_str()))]) {
                written += 1;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(written > 0 && log.dropped() > 0, "{written} {}", log.dropped());
        assert_eq!(written + log.dropped(), 200);
        // Every line in the pipe is whole.
        let mut buf = vec![0u8; 1 << 20];
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(p[0], buf.as_mut_ptr().cast(), buf.len()) };
        let text = std::str::from_utf8(&buf[..n as usize]).unwrap();
        assert_eq!(text.lines().count() as u64, written);
        for l in text.lines() {
            serde_json::from_str::<Value>(l).unwrap();
        }
        assert!(
            AuditLog::open(&AuditTarget::Fd(p[1]), &[p[1]]).is_err(),
            "cordon's own fd"
        );
        assert!(AuditLog::open(&AuditTarget::Fd(p[0]), &[]).is_err(), "read end");
        // SAFETY: closing the test's own pipe.
        unsafe {
            libc::close(p[0]);
            libc::close(p[1]);
        }
    }
}
