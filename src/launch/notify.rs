//! The supervisor's side of seccomp user notification: taking the
//! payload's listener, answering refusals as the policy says while
//! recording them (`"report": true`), and recording every syscall for
//! `cordon learn`.

use std::collections::BTreeSet;
use std::os::raw::c_int;
use std::time::{Duration, Instant};

use crate::error::LaunchError;
use crate::outcome::Violation;
use crate::plan::Supervise;
use crate::seccomp::arch::Arch;
use crate::seccomp::ir::{Action, Data};
use crate::seccomp::learn::{Learned, CLONE_NS_FLAGS};
use crate::seccomp::{names, HANDOFF_MAGIC, HANDOFF_NR};
use crate::sys::{self, Errno, SeccompNotifResp};

/// At most this many violations are kept (the count is kept for all).
pub const MAX_VIOLATIONS: usize = 64;

/// At most this many violations a second get the detailed treatment
/// (the caller's executable, the formatted record, the `-v` line).
pub const VIOLATIONS_SHOWN_PER_SECOND: u64 = 50;

/// At most this many notifications are answered per wake-up of the
/// supervisor; it then checks the wall-clock limit, signals and the
/// sandbox's end again, so a flood of notifications cannot starve them.
pub const NOTIFY_BATCH: usize = 64;

/// A `-v` line longer than this is cut (the executable's path is the
/// payload's to choose).
const MAX_LINE: usize = 1024;

/// SECCOMP_USER_NOTIF_FLAG_CONTINUE (1) as struct seccomp_notif_resp's
/// `flags` (a u32) carries it: let the call run.
const CONTINUE: u32 = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;

/// learn: at most this many distinct ioctl requests and socket families
/// are recorded (the payload chooses them: without a bound, memory and the
/// learnt policy would grow with every new value).
pub const MAX_LEARNED_VALUES: usize = 256;

/// The rate limit on the per-violation work beyond the recorded ones.
#[derive(Default)]
struct RateLimit {
    /// Start of the current one-second window.
    window: Option<Instant>,
    /// Violations shown in it.
    shown: u64,
    /// Violations not shown since the last summary line.
    suppressed: u64,
}

/// State of the notification side of one run.
pub struct Notifier {
    /// The listener, once taken.
    pub fd: Option<c_int>,
    mode: Supervise,
    handed_off: bool,
    payload_pid: u32,
    /// Recorded violations (report mode), at most [`MAX_VIOLATIONS`].
    pub violations: Vec<Violation>,
    /// All violations, including those not kept.
    pub violations_total: u64,
    /// What learning saw.
    pub learned: Learned,
    /// Print each violation on stderr as it happens (at most
    /// [`VIOLATIONS_SHOWN_PER_SECOND`], then a summary line).
    pub print: bool,
    /// Learning: the calls refused (EPERM) and recorded apart, see
    /// [`crate::seccomp::learn::refused_while_learning`]; empty with
    /// `--allow-dangerous`.
    refuse: BTreeSet<u32>,
    /// Learning: refuse clone() with namespace flags.
    refuse_clone_ns: bool,
    rate: RateLimit,
    /// The sandbox's init (borrowed, not closed here): killed when a
    /// `kill_process` refusal cannot be carried out on the caller alone.
    pub sandbox_pidfd: c_int,
    /// learn: more distinct values were seen than [`MAX_LEARNED_VALUES`].
    learn_overflow: bool,
    /// The audit log: each violation is a `seccomp.violation` line, at
    /// most [`VIOLATIONS_SHOWN_PER_SECOND`] a second.
    pub audit: Option<crate::audit::AuditLog>,
    /// Violations written to the audit log.
    pub audit_logged: u64,
    audit_rate: RateLimit,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
            unsafe { sys::close(fd) };
        }
    }
}

fn hint_ptrace() -> String {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    if scope.trim() == "2" || scope.trim() == "3" {
        "Yama's ptrace_scope is 2 or 3, which stops cordon from taking the payload's notification fd (pidfd_getfd needs ptrace access): run as root, set kernel.yama.ptrace_scope=1, or turn \"report\" off".to_string()
    } else {
        "pidfd_getfd needs ptrace access to the payload (an LSM may refuse it); turn \"report\" off to run without violation reports".to_string()
    }
}

impl Notifier {
    /// A notifier for `mode` (not yet holding the listener).
    pub fn new(mode: Supervise, print: bool) -> Notifier {
        let refuse_clone_ns = matches!(
            mode,
            Supervise::Learn {
                allow_dangerous: false
            }
        );
        let refuse = if refuse_clone_ns {
            crate::seccomp::learn::refused_while_learning()
        } else {
            BTreeSet::new()
        };
        Notifier {
            refuse,
            refuse_clone_ns,
            fd: None,
            mode,
            handed_off: false,
            payload_pid: 0,
            violations: Vec::new(),
            violations_total: 0,
            learned: Learned::default(),
            print,
            rate: RateLimit::default(),
            sandbox_pidfd: -1,
            learn_overflow: false,
            audit: None,
            audit_logged: 0,
            audit_rate: RateLimit::default(),
        }
    }

    /// Answer up to `max` pending notifications (the caller saw the
    /// listener readable): each further one only if the listener is still
    /// readable, so this never blocks.
    pub fn handle_batch(&mut self, max: usize) -> Result<(), Errno> {
        for i in 0..max {
            match self.fd {
                Some(fd) if i == 0 || readable(fd) => self.handle_one()?,
                _ => break,
            }
        }
        Ok(())
    }

    /// At the end of the run: the summary line for violations not shown.
    pub fn finish(&mut self) {
        if self.print && self.rate.suppressed > 0 {
            let line = format!("cordon: {} more violations not shown\n", self.rate.suppressed);
            if write_stderr_nowait(line.as_bytes()) {
                self.rate.suppressed = 0;
            }
        }
    }

    /// Take the payload's listener: `pid` is the payload (in our pid
    /// namespace, from the hand-off message's credentials), `fd` the
    /// listener's number in it.
    pub fn take(&mut self, pid: libc::pid_t, fd: c_int) -> Result<(), LaunchError> {
        let pidfd = sys::pidfd_open(pid)
            .map_err(|e| LaunchError::sys("seccomp hand-off", format!("pidfd_open({pid})"), e))?;
        let got = sys::pidfd_getfd(pidfd, fd);
        // SAFETY: `pidfd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
        unsafe { sys::close(pidfd) };
        let listener = got.map_err(|e| {
            LaunchError::sys(
                "seccomp hand-off",
                format!("pidfd_getfd(payload {pid}, fd {fd})"),
                e,
            )
            .with_hint(hint_ptrace())
        })?;
        self.fd = Some(listener);
        self.payload_pid = pid as u32;
        Ok(())
    }

    /// Handle one pending notification. Errors other than a vanished caller
    /// are returned; the run goes on either way.
    pub fn handle_one(&mut self) -> Result<(), Errno> {
        let Some(fd) = self.fd else { return Ok(()) };
        let n = match sys::notif_recv(fd) {
            Ok(n) => n,
            // The caller died before we read it.
            Err(Errno(libc::ENOENT)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let data = Data {
            nr: n.data.nr as u32,
            arch: n.data.arch,
            ip: n.data.instruction_pointer,
            args: n.data.args,
        };
        let mut resp = SeccompNotifResp {
            id: n.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        if data.nr == HANDOFF_NR && data.args[0] == HANDOFF_MAGIC {
            if !self.handed_off && n.pid == self.payload_pid {
                self.handed_off = true;
            } else {
                resp.error = -libc::ENOSYS;
            }
            return answer(fd, &resp);
        }
        match &self.mode {
            Supervise::None => resp.error = -libc::ENOSYS,
            Supervise::Learn { .. } => {
                if self.refused_while_learning(&data) {
                    resp.error = -libc::EPERM;
                } else {
                    self.learn(&data);
                    resp.flags = CONTINUE;
                }
            }
            Supervise::Report(filter) => {
                let action = filter.decide(&data);
                self.record(fd, &n, &data, action);
                match action {
                    Action::Errno(e) => resp.error = -i32::from(e),
                    Action::KillProcess => {
                        // The kernel cannot both notify and kill: kill the
                        // caller's whole process from here, whichever of
                        // its threads made the call. If that cannot be done
                        // safely, the whole sandbox goes rather than let
                        // the process go on.
                        if !kill_caller(fd, &n) && self.sandbox_pidfd >= 0 {
                            let _ = sys::pidfd_send_signal(self.sandbox_pidfd, libc::SIGKILL);
                        }
                        resp.error = -libc::EPERM;
                    }
                    // Not reached: only refusals are notified.
                    _ => resp.flags = CONTINUE,
                }
            }
        }
        answer(fd, &resp)
    }

    /// Whether learning refuses this call (and records it as refused).
    fn refused_while_learning(&mut self, d: &Data) -> bool {
        if Some(d.arch) != Arch::native().map(Arch::audit_arch) {
            return false;
        }
        if self.refuse.contains(&d.nr) {
            self.learned.refused.insert(d.nr);
            return true;
        }
        if self.refuse_clone_ns
            && names::syscall_name(d.nr) == Some("clone")
            && d.args[0] & CLONE_NS_FLAGS != 0
        {
            self.learned.refused_clone_flags |= d.args[0] & CLONE_NS_FLAGS;
            return true;
        }
        false
    }

    fn learn(&mut self, d: &Data) {
        if Some(d.arch) != Arch::native().map(Arch::audit_arch) {
            return;
        }
        let name = names::syscall_name(d.nr);
        // Only numbers of the syscall table: the payload chooses the
        // number, and a set of every one it tried would grow without bound
        // (the learnt policy names syscalls, so others would be dropped
        // there anyway).
        if name.is_some() {
            self.learned.syscalls.insert(d.nr);
        }
        match name {
            Some("socket") => {
                let family = d.args[0] as u32;
                let proto = (family == libc::AF_NETLINK as u32).then_some(d.args[2] as u32);
                let set = &mut self.learned.socket_families;
                if set.len() < MAX_LEARNED_VALUES || set.contains(&(family, proto)) {
                    set.insert((family, proto));
                } else {
                    self.learn_overflowed();
                }
            }
            Some("ioctl") => {
                let set = &mut self.learned.ioctl_requests;
                let r = d.args[1] as u32;
                if set.len() < MAX_LEARNED_VALUES || set.contains(&r) {
                    set.insert(r);
                } else {
                    self.learn_overflowed();
                }
            }
            Some("clone") => self.learned.clone_namespace_flags |= d.args[0] & CLONE_NS_FLAGS,
            _ => {}
        }
    }

    fn learn_overflowed(&mut self) {
        if !self.learn_overflow {
            self.learn_overflow = true;
            write_stderr_nowait(
                format!(
                    "cordon: warning: learn: more than {MAX_LEARNED_VALUES} distinct ioctl requests or socket families; the rest are not in the learnt policy\n"
                )
                .as_bytes(),
            );
        }
    }

    /// Whether this violation may be shown: at most
    /// [`VIOLATIONS_SHOWN_PER_SECOND`] a second. A new window first prints
    /// the summary of the previous one's suppressed violations.
    fn may_show(&mut self) -> bool {
        let now = Instant::now();
        let r = &mut self.rate;
        if r.window
            .map_or(true, |w| now.duration_since(w) >= Duration::from_secs(1))
        {
            r.window = Some(now);
            r.shown = 0;
            if r.suppressed > 0 {
                let line = format!("cordon: {} more violations not shown\n", r.suppressed);
                if write_stderr_nowait(line.as_bytes()) {
                    r.suppressed = 0;
                }
            }
        }
        if r.shown < VIOLATIONS_SHOWN_PER_SECOND {
            r.shown += 1;
            true
        } else {
            false
        }
    }

    /// Count a violation; record the first [`MAX_VIOLATIONS`] and, with
    /// `print`, show a rate-limited number of them. Every other one costs
    /// a counter and a clock read: the supervisor's CPU is not the
    /// sandbox's cgroup's.
    fn record(&mut self, fd: c_int, n: &sys::SeccompNotif, d: &Data, action: Action) {
        self.violations_total += 1;
        let keep = self.violations.len() < MAX_VIOLATIONS;
        let show = self.print && self.may_show();
        if self.print && !show {
            self.rate.suppressed += 1;
        }
        let log = self.audit.is_some() && audit_may_log(&mut self.audit_rate);
        if !keep && !show && !log {
            return;
        }
        let exe = std::fs::read_link(format!("/proc/{}/exe", n.pid))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The pid may have been recycled between the notification and the
        // readlink: only keep the path if the caller is still waiting.
        let exe = if sys::notif_id_valid(fd, n.id) {
            exe
        } else {
            String::new()
        };
        let v = Violation {
            pid: n.pid,
            exe,
            syscall: names::syscall_name(d.nr).unwrap_or("?").to_string(),
            nr: d.nr,
            args: d.args.iter().map(|a| format!("{a:#x}")).collect(),
            request: ioctl_request(d),
            action: action.text(),
        };
        if show {
            // ioctl's request by name: ioctl(0x1, TCGETS, ...).
            let mut args = v.args.clone();
            if let (Some(name), Some(a)) = (v.request, args.get_mut(1)) {
                *a = name.to_string();
            }
            let mut line = format!(
                "cordon: violation: pid {} ({}) {}({}) -> {}",
                v.pid,
                if v.exe.is_empty() { "?" } else { &v.exe },
                v.syscall,
                args.join(", "),
                v.action
            );
            if line.len() > MAX_LINE {
                let mut cut = MAX_LINE;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
                line.push_str("...");
            }
            line.push('\n');
            if !write_stderr_nowait(line.as_bytes()) {
                self.rate.suppressed += 1;
            }
        }
        if log {
            self.log_violation(&v);
        }
        if keep {
            self.violations.push(v);
        }
    }

    /// The `seccomp.violation` line: the outcome's record, and how many
    /// violations were not logged since the previous line (the rate limit).
    fn log_violation(&mut self, v: &Violation) {
        let Some(log) = &self.audit else { return };
        use serde_json::Value;
        let mut fields = vec![
            ("syscall", Value::from(v.syscall.as_str())),
            ("nr", Value::from(v.nr)),
            ("action", Value::from(v.action.as_str())),
            ("pid", Value::from(v.pid)),
            ("exe", Value::from(v.exe.as_str())),
            ("args", Value::from(v.args.clone())),
        ];
        if let Some(r) = v.request {
            fields.push(("request", Value::from(r)));
        }
        fields.push(("suppressed_before", Value::from(self.audit_rate.suppressed)));
        let written = log.emit("seccomp.violation", &fields);
        if written {
            self.audit_logged += 1;
            self.audit_rate.suppressed = 0;
        } else {
            self.audit_rate.suppressed += 1;
        }
    }
}

/// The name of an `ioctl`'s request (argument 1), when cordon knows it.
fn ioctl_request(d: &Data) -> Option<&'static str> {
    if names::syscall_name(d.nr) == Some("ioctl") {
        names::ioctl_name(d.args[1])
    } else {
        None
    }
}

/// Whether one more violation may go to the audit log in this one-second
/// window (at most [`VIOLATIONS_SHOWN_PER_SECOND`]); if not, it is counted
/// as suppressed.
fn audit_may_log(r: &mut RateLimit) -> bool {
    let now = Instant::now();
    if r.window
        .map_or(true, |w| now.duration_since(w) >= Duration::from_secs(1))
    {
        r.window = Some(now);
        r.shown = 0;
    }
    if r.shown < VIOLATIONS_SHOWN_PER_SECOND {
        r.shown += 1;
        true
    } else {
        r.suppressed += 1;
        false
    }
}

/// Whether `fd` is readable now.
fn readable(fd: c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd and a zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & libc::POLLIN != 0
}

/// Write `line` to stderr without ever blocking: stderr is shared with the
/// payload, which can fill a pipe behind it; a supervisor blocked in a
/// write would enforce nothing. Whether the whole line was written.
pub fn write_stderr_nowait(line: &[u8]) -> bool {
    // A terminal in raw mode (cordon's pty relay holds the caller's so)
    // does not turn "\n" into "\r\n" itself.
    if let Some(body) = line.strip_suffix(b"\n") {
        if crate::sys::tcgetattr(2).is_ok_and(|t| t.c_oflag & libc::OPOST == 0) {
            return write_stderr_nowait_as_is(&[body, b"\r\n"].concat());
        }
    }
    write_stderr_nowait_as_is(line)
}

fn write_stderr_nowait_as_is(line: &[u8]) -> bool {
    let iov = libc::iovec {
        iov_base: line.as_ptr() as *mut libc::c_void,
        iov_len: line.len(),
    };
    // SAFETY: one iovec over a live slice, which the kernel only reads;
    // offset -1 writes at the current position like write(2).
    let r = unsafe { libc::pwritev2(2, &iov, 1, -1, libc::RWF_NOWAIT) };
    if r >= 0 {
        return r as usize == line.len();
    }
    if Errno::last().0 != libc::EOPNOTSUPP {
        // EAGAIN: full; anything else: nowhere to write.
        return false;
    }
    // A file or terminal without non-blocking writes: only when it has
    // room now (a regular file always has).
    let mut p = libc::pollfd {
        fd: 2,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd and a zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n != 1 || p.revents & libc::POLLOUT == 0 {
        return false;
    }
    // SAFETY: writing a live slice to fd 2.
    let w = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    w >= 0 && w as usize == line.len()
}

fn pidfd_open_flags(pid: libc::pid_t, flags: u32) -> Result<c_int, Errno> {
    // SAFETY: plain integers.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as c_int)
    }
}

/// SIGKILL the process of the thread that made notification `n`, still
/// blocked in its call. `n.pid` is a thread id, which a plain pidfd_open
/// refuses unless it is the thread group's leader: open the thread itself
/// (SIGKILL to any thread kills its whole process), or on kernels without
/// PIDFD_THREAD its thread group from /proc. The notification id is
/// checked after the pidfd is open: valid, the thread is still waiting in
/// its call, so neither its tid nor its tgid was recycled. Whether the
/// kill was sent.
fn kill_caller(fd: c_int, n: &sys::SeccompNotif) -> bool {
    let tid = n.pid as libc::pid_t;
    // 0: the caller is outside our pid namespace.
    if tid <= 0 {
        return false;
    }
    let pidfd = match pidfd_open_flags(tid, libc::PIDFD_THREAD) {
        Ok(p) => p,
        Err(Errno(libc::EINVAL)) => match tgid_of(tid).map(sys::pidfd_open) {
            Some(Ok(p)) => p,
            _ => return false,
        },
        Err(_) => return false,
    };
    let killed = sys::notif_id_valid(fd, n.id) && sys::pidfd_send_signal(pidfd, libc::SIGKILL).is_ok();
    // SAFETY: `pidfd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(pidfd) };
    killed
}

/// The thread group of thread `tid`, from /proc/TID/status: only when
/// /proc is the one of our pid namespace (its `self` is our pid).
fn tgid_of(tid: libc::pid_t) -> Option<libc::pid_t> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let me = std::fs::read_link("/proc/self").ok()?;
    // SAFETY: getpid cannot fail.
    if me.to_str()?.parse::<libc::pid_t>().ok()? != unsafe { libc::getpid() } {
        return None;
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(format!("/proc/{tid}/status"))
        .ok()?;
    // Name (escaped by the kernel: no newline of the payload's), Umask,
    // State, Tgid come first.
    let mut buf = [0u8; 1024];
    let mut len = 0;
    let mut f = f;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(k) => len += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_tgid(&buf[..len])
}

/// The `Tgid:` field of a /proc/PID/status text.
fn parse_tgid(status: &[u8]) -> Option<libc::pid_t> {
    let text = std::str::from_utf8(status).ok().or_else(|| {
        // Cut at the last valid boundary (the read may end mid-line).
        std::str::from_utf8(&status[..status.iter().rposition(|&b| b == b'\n')?]).ok()
    })?;
    let v = text.lines().find_map(|l| l.strip_prefix("Tgid:"))?.trim();
    let t: libc::pid_t = v.parse().ok()?;
    (t > 0).then_some(t)
}

fn answer(fd: c_int, resp: &SeccompNotifResp) -> Result<(), Errno> {
    match sys::notif_send(fd, resp) {
        // The caller was killed meanwhile.
        Err(Errno(libc::ENOENT)) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tgid_of_a_thread_is_its_process() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid cannot fail.
            tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        // SAFETY: getpid cannot fail.
        let pid = unsafe { libc::getpid() };
        assert_ne!(tid, pid);
        assert_eq!(tgid_of(tid), Some(pid));
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn parse_tgid_reads_the_field_only() {
        let s = b"Name:\tTgid:\\t1\nUmask:\t0022\nState:\tR (running)\nTgid:\t4242\nNgid:\t0\nPid:\t4243\n";
        assert_eq!(parse_tgid(s), Some(4242));
        assert_eq!(parse_tgid(b"Name:\tx\nTgid:\t0\n"), None);
        assert_eq!(parse_tgid(b"Name:\tx\n"), None);
        let mut cut = b"Name:\tx\nTgid:\t17\nState:\t\xc3".to_vec();
        assert_eq!(parse_tgid(&cut), Some(17));
        cut.clear();
        assert_eq!(parse_tgid(&cut), None);
    }

    #[test]
    fn the_rate_limit_shows_at_most_the_rate_per_window() {
        let mut n = Notifier::new(Supervise::None, true);
        let shown = (0..1000).filter(|_| n.may_show()).count() as u64;
        assert_eq!(shown, VIOLATIONS_SHOWN_PER_SECOND);
    }
}
