//! A named sandbox's init: instead of forking one payload, pid 1 waits for
//! commands from its supervisor on a SOCK_SEQPACKET socket and runs each
//! in a process of its own (`cordon create` / `cordon run --in`,
//! [`crate::launch::session::Session`]).
//!
//! Child side: no heap allocation, no lock, no panic hook (like the rest
//! of init). The message buffer is mapped once when the loop starts; the
//! command table has a fixed size.
//!
//! The wire (both directions little-endian, one message each):
//! - supervisor → init, run: a [`HEADER`]-byte header (kind 1, id,
//!   timeout in ms or 0, argc, envc, number of PATH candidates, whether a
//!   working directory follows), then NUL-terminated strings: the
//!   candidates, argv, envp, the cwd; with the command's stdin, stdout and
//!   stderr by SCM_RIGHTS, and where the sandbox has a v2 cgroup a fourth
//!   fd: the `cgroup.procs` of the command's own cgroup, which the command
//!   joins before anything else (so that its time limit, enforced by the
//!   supervisor with `cgroup.kill`, ends everything it started).
//! - supervisor → init, kill: the header with kind 2 and the id: the
//!   command's process group is killed (its client went away).
//! - supervisor → init, signal: the header with kind 3, the id and the
//!   signal number in `argc`: one of [`FORWARDABLE`] goes to the command's
//!   process group (what `cordon run --in` forwards from its caller); after
//!   a terminating one the group also gets SIGCONT, so that a stopped
//!   command can act on it.
//! - init → supervisor: a [`REPLY`]-byte reply: ready (once, when the loop
//!   starts), done (id, wait status, timed out, the command's setup error,
//!   rusage) or rejected (id, errno: the message was malformed or the
//!   table full).
//!
//! A command: its own session and process group (a timeout kills the
//! group), the three fds onto 0-2, then [`sequence::restrict_in`] (the
//! same per-process layers as a cold run's payload: rlimits, identity, no
//! capabilities, no_new_privs, seccomp) and the exec search. Landlock is
//! the exception: init enters the policy's domain once, before the first
//! command, and every command inherits it, so that Landlock's scopes
//! (signals, abstract unix sockets) see one sandbox, not one per command.
//! Its setup error comes back on a close-on-exec pipe that init reads
//! once it has reaped the command.
//!
//! init never blocks on its supervisor: replies go out with MSG_DONTWAIT;
//! one that does not fit waits in a fixed queue (`Outbox`) and goes on
//! POLLOUT, and init reads no request while the replies it may owe would
//! not fit that queue. Every signal sent to init is read from its signalfd
//! and all but SIGCHLD discarded, so none stays queued on it.

use std::os::raw::{c_char, c_int};

use crate::error::{ChildError, Step, WIRE_SIZE};
use crate::launch::child::{exec_exit_code, SETUP_FAILED};
use crate::launch::sequence::{self, ExecView, Mode};
use crate::plan::ChildPlan;
use crate::sys::{self, Errno};

/// Bytes of a request's header.
pub const HEADER: usize = 32;
/// Bytes of a reply.
pub const REPLY: usize = 64;
/// The most bytes of strings one command may carry (candidates, argv,
/// envp, cwd together). A SOCK_SEQPACKET message must fit the sender's
/// socket buffer, so this stays below what `SO_SNDBUF` allows unprivileged
/// (twice `net.core.wmem_max`, 416 KiB by default).
pub const MAX_STRINGS_BYTES: usize = 256 * 1024;
/// The most strings one command may carry.
pub const MAX_STRINGS: usize = 16 * 1024;
/// The most commands running at once in one named sandbox.
pub const MAX_COMMANDS: usize = 64;
/// The most replies init keeps while the supervisor does not read them:
/// one per running command plus room for rejections. init reads a request
/// only while every reply it may still owe fits (see `Outbox`), so it
/// never blocks on a reply and never drops one.
pub const MAX_QUEUED_REPLIES: usize = MAX_COMMANDS + 16;

/// The errno of a rejection because [`MAX_COMMANDS`] commands are running
/// (fork's own EAGAIN stays EAGAIN).
pub const TABLE_FULL: i32 = libc::EBUSY;

/// Request kinds.
pub const RUN: u32 = 1;
/// Kill a running command's process group.
pub const KILL: u32 = 2;
/// Send a signal to a running command's process group.
pub const SIGNAL: u32 = 3;
/// The signals a [`SIGNAL`] request may carry: those `cordon run` forwards
/// to its payload. The first four ask the command to end.
pub const FORWARDABLE: [c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];
/// Reply kinds.
pub const READY: u32 = 1;
/// A command ended.
pub const DONE: u32 = 2;
/// A request was refused (errno in the reply).
pub const REJECTED: u32 = 3;

/// The size of the message buffer: the request, then room for the three
/// pointer arrays (each string once, plus three nulls).
const DATA_LEN: usize = HEADER + MAX_STRINGS_BYTES;
const PTRS: usize = MAX_STRINGS + 3;
const BUF_LEN: usize = DATA_LEN + PTRS * std::mem::size_of::<usize>();

/// A request's header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// [`RUN`], [`KILL`] or [`SIGNAL`].
    pub kind: u32,
    /// The supervisor's id for the command.
    pub id: u32,
    /// The command's wall-clock limit in ms (0: none).
    pub timeout_ms: u64,
    /// Number of arguments (at least 1); for [`SIGNAL`], the signal.
    pub argc: u32,
    /// Number of environment entries.
    pub envc: u32,
    /// Number of PATH candidates (at least 1).
    pub ncand: u32,
    /// Whether a working directory follows envp.
    pub has_cwd: u32,
}

impl Header {
    /// The wire form.
    pub fn encode(&self) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        b[0..4].copy_from_slice(&self.kind.to_le_bytes());
        b[4..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..16].copy_from_slice(&self.timeout_ms.to_le_bytes());
        b[16..20].copy_from_slice(&self.argc.to_le_bytes());
        b[20..24].copy_from_slice(&self.envc.to_le_bytes());
        b[24..28].copy_from_slice(&self.ncand.to_le_bytes());
        b[28..32].copy_from_slice(&self.has_cwd.to_le_bytes());
        b
    }

    /// Read a header from the first [`HEADER`] bytes of `b`.
    pub fn decode(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[8..16]);
        Some(Header {
            kind: u32_at(0),
            id: u32_at(4),
            timeout_ms: u64::from_le_bytes(t),
            argc: u32_at(16),
            envc: u32_at(20),
            ncand: u32_at(24),
            has_cwd: u32_at(28),
        })
    }
}

/// A reply from init.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// [`READY`], [`DONE`] or [`REJECTED`].
    pub kind: u32,
    /// The command's id.
    pub id: u32,
    /// Its wait status.
    pub status: i32,
    /// Whether its time limit killed it.
    pub timed_out: bool,
    /// Its setup error, when it failed before its program ran.
    pub error: Option<ChildError>,
    /// User CPU time (µs).
    pub utime_us: u64,
    /// System CPU time (µs).
    pub stime_us: u64,
    /// Peak RSS (KiB).
    pub maxrss_kb: u64,
    /// Why a request was rejected.
    pub errno: i32,
}

impl Reply {
    /// The wire form.
    pub fn encode(&self) -> [u8; REPLY] {
        let mut b = [0u8; REPLY];
        b[0..4].copy_from_slice(&self.kind.to_le_bytes());
        b[4..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..12].copy_from_slice(&self.status.to_le_bytes());
        b[12..16].copy_from_slice(&u32::from(self.timed_out).to_le_bytes());
        if let Some(e) = self.error {
            b[16..20].copy_from_slice(&1u32.to_le_bytes());
            b[20..20 + WIRE_SIZE].copy_from_slice(&e.encode());
        }
        b[32..40].copy_from_slice(&self.utime_us.to_le_bytes());
        b[40..48].copy_from_slice(&self.stime_us.to_le_bytes());
        b[48..56].copy_from_slice(&self.maxrss_kb.to_le_bytes());
        b[56..60].copy_from_slice(&self.errno.to_le_bytes());
        b
    }

    /// Read a reply.
    pub fn decode(b: &[u8; REPLY]) -> Reply {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut t = [0u8; 8];
            t.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(t)
        };
        let mut e = [0u8; WIRE_SIZE];
        e.copy_from_slice(&b[20..20 + WIRE_SIZE]);
        Reply {
            kind: u32_at(0),
            id: u32_at(4),
            status: u32_at(8) as i32,
            timed_out: u32_at(12) != 0,
            error: if u32_at(16) != 0 {
                ChildError::decode(&e)
            } else {
                None
            },
            utime_us: u64_at(32),
            stime_us: u64_at(40),
            maxrss_kb: u64_at(48),
            errno: u32_at(56) as i32,
        }
    }
}

/// A running command.
#[derive(Clone, Copy)]
struct Slot {
    /// 0: free.
    pid: libc::pid_t,
    id: u32,
    /// CLOCK_MONOTONIC ms (0: none, or already killed).
    deadline: u64,
    timed_out: bool,
    /// Read end of its error pipe.
    err: c_int,
}

const FREE: Slot = Slot {
    pid: 0,
    id: 0,
    deadline: 0,
    timed_out: false,
    err: -1,
};

/// The parsed command: its pointer arrays in the message buffer.
struct Parsed {
    candidates: *const *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// The working directory (null: the plan's).
    cwd: *const c_char,
}

fn at(idx: u32) -> impl Fn(Errno) -> ChildError {
    move |e| ChildError::new(Step::Serve, e, idx)
}

/// init's command loop. `sock`: its end of the supervisor's socket;
/// `err_write`: the setup error pipe, closed once the loop is ready.
/// Never returns: init exits when the supervisor's end closes.
pub fn serve(
    plan: &ChildPlan,
    sock: c_int,
    err_write: c_int,
) -> Result<std::convert::Infallible, ChildError> {
    // Nothing but these two stays open in init (stdio 0-2 stay: they are
    // never given to a command, which gets its own).
    let (a, b) = (sock.min(err_write) as u32, sock.max(err_write) as u32);
    super::child::close_except(a, b).map_err(|e| ChildError::new(Step::CloseFds, e, 0))?;
    // One Landlock domain for the whole sandbox, entered here by init and
    // inherited by every command: its scopes (signals, abstract unix
    // sockets) then let a command reach what an earlier one started, as
    // in one container, and nothing outside. (A domain per command would
    // cut commands off from each other's processes.) Landlock does not
    // restrict what init does from here on (sockets, fork, signals to its
    // own domain), and needs no no_new_privs while init holds the
    // namespace's CAP_SYS_ADMIN.
    if let Some(ll) = plan.landlock() {
        crate::landlock::apply::apply(ll)?;
    }
    let buf = sys::mmap_anon(BUF_LEN).map_err(at(0))?;
    // Every signal stays blocked and is read from here: SIGCHLD reaps;
    // the others are discarded, so that what a command sends to init does
    // not stay queued for the sandbox's life (queued signals count against
    // the uid's RLIMIT_SIGPENDING).
    let sfd = sys::signalfd(&sys::sigset_full()).map_err(at(1))?;
    let ready = Reply {
        kind: READY,
        ..Reply::default()
    };
    sys::send_msg_fds(sock, &ready.encode(), &[]).map_err(at(2))?;
    // SAFETY: the error pipe is init's own; from here on errors go back
    // per command.
    unsafe { sys::close(err_write) };
    let mut table = [FREE; MAX_COMMANDS];
    let mut out = Outbox::new();
    loop {
        let now = sys::monotonic_ms();
        enforce_deadlines(&mut table, now);
        let timeout = table
            .iter()
            .filter(|s| s.pid != 0 && s.deadline != 0)
            .map(|s| s.deadline.saturating_sub(now).min(i32::MAX as u64) as c_int)
            .min()
            .unwrap_or(-1);
        // A request may cost one reply (its rejection, or its command's
        // end): read one only while all replies owed fit the queue.
        let running = table.iter().filter(|s| s.pid != 0).count();
        let mut events = 0;
        if out.len + running < MAX_QUEUED_REPLIES {
            events |= libc::POLLIN;
        }
        if out.len > 0 {
            events |= libc::POLLOUT;
        }
        let mut pfds = [
            libc::pollfd {
                fd: sock,
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if sys::poll(&mut pfds, timeout).is_err() {
            continue;
        }
        if pfds[1].revents != 0 {
            reap(sfd, &mut table, &mut out);
        }
        if pfds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 && pfds[0].revents & libc::POLLIN == 0 {
            // The supervisor is gone: so is the sandbox.
            sys::exit(0);
        }
        out.flush(sock);
        if pfds[0].revents & libc::POLLIN != 0 {
            on_request(plan, sock, buf, &mut table, &mut out);
            out.flush(sock);
        }
    }
}

/// Replies not sent yet, oldest first (a fixed ring: no allocation).
/// [`serve`] keeps `len` + running commands <= [`MAX_QUEUED_REPLIES`], so
/// [`Outbox::push`] always has room.
struct Outbox {
    q: [[u8; REPLY]; MAX_QUEUED_REPLIES],
    head: usize,
    len: usize,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            q: [[0; REPLY]; MAX_QUEUED_REPLIES],
            head: 0,
            len: 0,
        }
    }

    /// Queue a reply. Should the queue be full all the same, the oldest
    /// rejection goes (a command's end never does).
    fn push(&mut self, r: &Reply) {
        if self.len == MAX_QUEUED_REPLIES {
            let Some(k) = (0..self.len).find(|&k| {
                let e = &self.q[(self.head + k) % MAX_QUEUED_REPLIES];
                Reply::decode(e).kind == REJECTED
            }) else {
                return;
            };
            // Close the gap: move the later entries one back.
            for j in k..self.len - 1 {
                let (to, from) = (
                    (self.head + j) % MAX_QUEUED_REPLIES,
                    (self.head + j + 1) % MAX_QUEUED_REPLIES,
                );
                self.q[to] = self.q[from];
            }
            self.len -= 1;
        }
        self.q[(self.head + self.len) % MAX_QUEUED_REPLIES] = r.encode();
        self.len += 1;
    }

    /// Send what the socket takes now; the rest waits for POLLOUT. If the
    /// supervisor is gone, so is the sandbox.
    fn flush(&mut self, sock: c_int) {
        while self.len > 0 {
            match sys::send_msg_fds_flags(sock, &self.q[self.head], &[], libc::MSG_DONTWAIT) {
                Ok(()) => {
                    self.head = (self.head + 1) % MAX_QUEUED_REPLIES;
                    self.len -= 1;
                }
                Err(Errno(libc::EAGAIN)) => return,
                Err(Errno(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN)) => sys::exit(0),
                // Anything else (ENOBUFS): try again on the next turn.
                Err(_) => return,
            }
        }
    }
}

/// Kill the commands whose time is up (their process group, and the
/// command itself should it not have made its group yet).
fn enforce_deadlines(table: &mut [Slot; MAX_COMMANDS], now: u64) {
    for s in table.iter_mut().filter(|s| s.pid != 0 && s.deadline != 0) {
        if now >= s.deadline {
            let _ = sys::kill(-s.pid, libc::SIGKILL);
            let _ = sys::kill(s.pid, libc::SIGKILL);
            s.timed_out = true;
            s.deadline = 0;
        }
    }
}

/// SIGCHLD: reap every child that ended; a command's end is replied,
/// anything else (an orphan reparented to init) is reaped silently.
fn reap(sfd: c_int, table: &mut [Slot; MAX_COMMANDS], out: &mut Outbox) {
    // Take the queued signals (16 siginfos a read); at most 64 reads a
    // turn, so that a flood of signals cannot starve the requests: the
    // rest is read on the next turns.
    let mut info = [0u8; 16 * 128];
    for _ in 0..64 {
        match sys::read(sfd, &mut info) {
            Ok(n) if n == info.len() => {}
            _ => break,
        }
    }
    while let Ok(Some((pid, status, ru))) = sys::wait_any_nohang() {
        let Some(s) = table.iter_mut().find(|s| s.pid == pid) else {
            continue;
        };
        let mut e = [0u8; WIRE_SIZE];
        let error = match sys::read(s.err, &mut e) {
            Ok(WIRE_SIZE) => ChildError::decode(&e),
            _ => None,
        };
        // SAFETY: the command's error pipe is init's own, read above and
        // used no more.
        unsafe { sys::close(s.err) };
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        let reply = Reply {
            kind: DONE,
            id: s.id,
            status,
            timed_out: s.timed_out,
            error,
            utime_us: us(ru.ru_utime),
            stime_us: us(ru.ru_stime),
            maxrss_kb: ru.ru_maxrss as u64,
            errno: 0,
        };
        *s = FREE;
        out.push(&reply);
    }
}

fn close_all(fds: &[c_int]) {
    for &fd in fds {
        // SAFETY: fds received with the message are init's own, handed
        // on (dup'd) to a command or refused; closed once here.
        unsafe { sys::close(fd) };
    }
}

/// One message from the supervisor.
/// `buf`: the mapping of BUF_LEN bytes made by [`serve`], used by this
/// loop only.
fn on_request(
    plan: &ChildPlan,
    sock: c_int,
    buf: *mut u8,
    table: &mut [Slot; MAX_COMMANDS],
    out: &mut Outbox,
) {
    let mut fds = [-1 as c_int; sys::MAX_PASSED_FDS];
    // SAFETY: `buf` is a private mapping of BUF_LEN >= DATA_LEN bytes,
    // used by this loop only; this slice is its only reference until the
    // header is copied out below.
    let data = unsafe { std::slice::from_raw_parts_mut(buf, DATA_LEN) };
    let got = match sys::recv_msg_fds(sock, data, &mut fds, libc::MSG_DONTWAIT) {
        Ok(r) => r,
        Err(Errno(libc::EAGAIN)) => return,
        // The supervisor is gone: so is the sandbox (the kernel kills
        // every process of the pid namespace when init exits).
        Err(_) => sys::exit(0),
    };
    if got.len == 0 {
        sys::exit(0);
    }
    let received = &fds[..got.fds];
    let header = Header::decode(&data[..got.len]).unwrap_or_default();
    let mut reject = |errno: i32| {
        close_all(received);
        out.push(&Reply {
            kind: REJECTED,
            id: header.id,
            errno,
            ..Reply::default()
        });
    };
    if got.truncated || got.len < HEADER {
        return reject(libc::EMSGSIZE);
    }
    match header.kind {
        KILL => {
            close_all(received);
            if let Some(s) = table.iter().find(|s| s.pid != 0 && s.id == header.id) {
                let _ = sys::kill(-s.pid, libc::SIGKILL);
                let _ = sys::kill(s.pid, libc::SIGKILL);
            }
        }
        SIGNAL => {
            close_all(received);
            let sig = header.argc as c_int;
            if !FORWARDABLE.contains(&sig) {
                return;
            }
            if let Some(s) = table.iter().find(|s| s.pid != 0 && s.id == header.id) {
                // Before its setsid the command has no group of its own:
                // then it alone gets the signal.
                if sys::kill(-s.pid, sig).is_err() {
                    let _ = sys::kill(s.pid, sig);
                }
                if FORWARDABLE[..4].contains(&sig) && sys::kill(-s.pid, libc::SIGCONT).is_err() {
                    let _ = sys::kill(s.pid, libc::SIGCONT);
                }
            }
        }
        RUN => {
            // stdin, stdout, stderr, and with a v2 cgroup the command's
            // own cgroup.procs (opened by the supervisor).
            if received.len() != 3 && received.len() != 4 {
                return reject(libc::EBADF);
            }
            let cgroup_procs = received.get(3).copied().unwrap_or(-1);
            let Some(slot) = table.iter().position(|s| s.pid == 0) else {
                return reject(TABLE_FULL);
            };
            let Some(parsed) = parse(&header, buf, got.len) else {
                return reject(libc::EINVAL);
            };
            match start(
                plan,
                &parsed,
                [received[0], received[1], received[2]],
                cgroup_procs,
            ) {
                Ok((pid, err)) => {
                    close_all(received);
                    let now = sys::monotonic_ms();
                    table[slot] = Slot {
                        pid,
                        id: header.id,
                        deadline: if header.timeout_ms == 0 {
                            0
                        } else {
                            now.saturating_add(header.timeout_ms).max(1)
                        },
                        timed_out: false,
                        err,
                    };
                }
                Err(e) => reject(e.0),
            }
        }
        _ => reject(libc::EINVAL),
    }
}

/// Check the strings of a run request (`len` bytes in the buffer) and
/// build the candidates', argv's and envp's pointer arrays after them.
fn parse(h: &Header, buf: *mut u8, len: usize) -> Option<Parsed> {
    let (ncand, argc, envc) = (h.ncand as usize, h.argc as usize, h.envc as usize);
    let cwd = usize::from(h.has_cwd != 0);
    let total = ncand.checked_add(argc)?.checked_add(envc)?.checked_add(cwd)?;
    if ncand == 0 || argc == 0 || total > MAX_STRINGS || len > DATA_LEN {
        return None;
    }
    // SAFETY: the pointer area starts at DATA_LEN (a multiple of 8, so
    // aligned for pointers) inside the BUF_LEN-byte mapping and holds
    // PTRS entries; total + 3 <= PTRS.
    let ptrs = unsafe { buf.add(DATA_LEN).cast::<*const c_char>() };
    // The arrays: candidates at 0, argv after its null, envp after argv's.
    let starts = [0, ncand + 1, ncand + 1 + argc + 1];
    let counts = [ncand, argc, envc];
    let mut pos = HEADER;
    let mut cwd_ptr: *const c_char = std::ptr::null();
    for (&start, &count) in starts.iter().zip(&counts) {
        for i in 0..count {
            let s = next_string(buf, &mut pos, len)?;
            // SAFETY: start + i < start + count, which is within the
            // pointer area (see above).
            unsafe { *ptrs.add(start + i) = s };
        }
        // SAFETY: start + count is this array's null slot, in the area.
        unsafe { *ptrs.add(start + count) = std::ptr::null() };
    }
    if cwd == 1 {
        cwd_ptr = next_string(buf, &mut pos, len)?;
    }
    if pos != len {
        return None;
    }
    // SAFETY: the three offsets are inside the pointer area (see above).
    unsafe {
        Some(Parsed {
            candidates: ptrs.add(starts[0]),
            argv: ptrs.add(starts[1]),
            envp: ptrs.add(starts[2]),
            cwd: cwd_ptr,
        })
    }
}

/// The string at `*pos` (NUL-terminated before `len`); `*pos` moves past it.
fn next_string(buf: *mut u8, pos: &mut usize, len: usize) -> Option<*const c_char> {
    let start = *pos;
    // SAFETY: `len` <= DATA_LEN, inside the mapping; only bytes below it
    // are read.
    let bytes = unsafe { std::slice::from_raw_parts(buf.add(start), len.checked_sub(start)?) };
    let nul = bytes.iter().position(|&b| b == 0)?;
    *pos = start + nul + 1;
    // SAFETY: `start` < len, inside the mapping.
    Some(unsafe { buf.add(start) } as *const c_char)
}

/// Fork a command: its pid and the read end of its error pipe.
/// `cgroup_procs`: the command's own cgroup's `cgroup.procs` (-1: none),
/// which it joins first, before anything else it does.
fn start(
    plan: &ChildPlan,
    p: &Parsed,
    stdio: [c_int; 3],
    cgroup_procs: c_int,
) -> Result<(libc::pid_t, c_int), Errno> {
    let (err_r, err_w) = sys::pipe_nonblock()?;
    let pid = match sys::fork_raw() {
        Ok(pid) => pid,
        Err(e) => {
            // SAFETY: both ends were made above and are used no more.
            unsafe {
                sys::close(err_r);
                sys::close(err_w);
            }
            return Err(e);
        }
    };
    if pid == 0 {
        let e = match command(plan, p, stdio, cgroup_procs, err_w) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        let _ = sys::write_all(err_w, &e.encode());
        sys::exit(if e.step == Step::Exec {
            exec_exit_code(e.errno)
        } else {
            SETUP_FAILED
        });
    }
    // SAFETY: the write end is the command's; init's copy goes.
    unsafe { sys::close(err_w) };
    Ok((pid, err_r))
}

/// The command's process: its own session and group, its stdio, the
/// per-process layers, exec.
fn command(
    plan: &ChildPlan,
    p: &Parsed,
    stdio: [c_int; 3],
    cgroup_procs: c_int,
    err_w: c_int,
) -> Result<std::convert::Infallible, ChildError> {
    // Into its own cgroup before it can fork: everything it starts is
    // then there, whatever session it makes. The kernel checks the write
    // against the credentials of the open (the supervisor's); "0" is the
    // writer. The fd is close-on-exec.
    if cgroup_procs >= 0 {
        sys::write_all(cgroup_procs, b"0").map_err(|e| ChildError::new(Step::Serve, e, 6))?;
    }
    sys::setsid().map_err(|e| ChildError::new(Step::Setsid, e, 0))?;
    super::child::stdio_onto(stdio)?;
    let cwd = if p.cwd.is_null() {
        plan.cwd()
    } else {
        // SAFETY: a non-null cwd points at a NUL-terminated string in this
        // process's copy of the message buffer (checked by `parse`).
        unsafe { std::ffi::CStr::from_ptr(p.cwd) }
    };
    sequence::restrict_in(plan, Mode::Payload, err_w, cwd, false)?;
    // SAFETY: `parse` built the three null-terminated arrays of pointers
    // to NUL-terminated strings in this process's copy of the buffer,
    // which nothing changes before exec.
    let view = unsafe { ExecView::from_raw(p.candidates, p.argv, p.envp) };
    Err(sequence::exec_search_view(view))
}
