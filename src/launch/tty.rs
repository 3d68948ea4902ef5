//! Interactive use: the payload on a pty of the sandbox's own devpts, and
//! the supervisor's relay between it and the caller's terminal.
//!
//! - init opens `<dev>/pts/ptmx` of the sandbox's devpts instance, unlocks
//!   it, opens the slave through the master (TIOCGPTPEER), gives the slave
//!   the caller's terminal modes and window size ([`TermInit`], captured by
//!   the parent before clone), and sends the master to the supervisor
//!   (SCM_RIGHTS) before the payload exists ([`open_in_child`]).
//! - the payload, in a session of its own, makes the slave its controlling
//!   terminal and its stdin, stdout and stderr ([`attach_in_payload`]):
//!   its process group is the terminal's foreground group, so Ctrl-C and
//!   Ctrl-Z, which travel as bytes, become SIGINT and SIGTSTP in the
//!   sandbox's line discipline, and job control works. TIOCSTI inside can
//!   only push into this pty, never into the caller's terminal.
//! - the supervisor puts the caller's terminal in raw mode ([`RawMode`],
//!   restored on drop, whatever ends the run) and relays bytes both ways
//!   ([`Relay`]): bounded buffers, never blocking on either side (the
//!   caller's fds are non-blocking for the run, the master always), so the
//!   wall-clock limit and the signals are looked at on every pass.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::c_int;
use std::time::{Duration, Instant};

use crate::error::{ChildError, Step};
use crate::sys::{self, Errno};

/// What the pty's slave starts with: the caller's terminal modes and
/// window size when cordon's stdin (or else stdout) is a terminal.
/// Captured by the parent before clone; the child reads its copy.
#[derive(Clone, Copy)]
pub struct TermInit {
    termios: Option<libc::termios>,
    winsize: Option<libc::winsize>,
    /// cordon's stderr is a terminal: the payload's goes to the pty too;
    /// otherwise (redirected to a file or pipe) it stays cordon's, as on
    /// the host.
    stderr_to_pty: bool,
}

impl TermInit {
    /// Nothing to copy (no pty, or no terminal on cordon's side).
    pub const NONE: TermInit = TermInit {
        termios: None,
        winsize: None,
        stderr_to_pty: true,
    };

    /// The modes and size of cordon's stdin, else of its stdout.
    pub fn capture() -> TermInit {
        let termios = sys::tcgetattr(0).or_else(|_| sys::tcgetattr(1)).ok();
        let winsize = caller_winsize();
        TermInit {
            termios,
            winsize,
            stderr_to_pty: sys::isatty(2),
        }
    }
}

/// The window size of the caller's terminal (stdin, else stdout).
fn caller_winsize() -> Option<libc::winsize> {
    sys::get_winsize(0).or_else(|_| sys::get_winsize(1)).ok()
}

/// init, after pivot_root: allocate the payload's pty in the sandbox's
/// devpts, send its master on `sock` and return the slave (close-on-exec,
/// not yet anyone's controlling terminal). No allocation.
pub fn open_in_child(ptmx: &std::ffi::CStr, init: &TermInit, sock: c_int) -> Result<c_int, ChildError> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let err = |i: u32| move |e: Errno| ChildError::new(Step::Pty, e, i);
    let master = sys::openat(libc::AT_FDCWD, ptmx, flags, 0).map_err(err(0))?;
    let slave = sys::pty_unlock(master)
        .and_then(|_| sys::pty_peer(master, flags))
        .map_err(err(1));
    let slave = match slave {
        Ok(s) => s,
        Err(e) => {
            // SAFETY: `master` was opened above and is used by nothing else.
            unsafe { sys::close(master) };
            return Err(e);
        }
    };
    let set = (|| {
        if let Some(t) = &init.termios {
            sys::tcsetattr(slave, t).map_err(err(2))?;
        }
        if let Some(w) = &init.winsize {
            sys::set_winsize(master, w).map_err(err(3))?;
        }
        sys::send_fds(sock, &[master]).map_err(err(4))
    })();
    // The supervisor has its own copy (or the launch fails): init keeps
    // only the slave, for the payload.
    // SAFETY: `master` was opened above and is used by nothing after this.
    unsafe { sys::close(master) };
    // SAFETY: `sock` is init's end of the pty hand-off socket; nothing
    // uses it after this close.
    unsafe { sys::close(sock) };
    match set {
        Ok(()) => Ok(slave),
        Err(e) => {
            // SAFETY: `slave` was opened above and is used by nothing else.
            unsafe { sys::close(slave) };
            Err(e)
        }
    }
}

/// The payload, first thing: a session of its own with the slave as its
/// controlling terminal (its process group is then the foreground one),
/// and the slave as stdin, stdout and (when cordon's is a terminal, see
/// [`TermInit`]) stderr. No allocation.
pub fn attach_in_payload(slave: c_int, init: &TermInit) -> Result<(), ChildError> {
    let err = |i: u32| move |e: Errno| ChildError::new(Step::ControllingTty, e, i);
    // init leads the session made at clone; the payload, a member of
    // init's process group, is no group leader, so setsid succeeds.
    sys::setsid().map_err(err(0))?;
    sys::set_controlling_tty(slave).map_err(err(1))?;
    let last = if init.stderr_to_pty { 2 } else { 1 };
    for target in 0..=last {
        if slave != target {
            // SAFETY: `target` is 0, 1 or 2, the payload's stdio, which the
            // pty replaces; nothing else in this process uses those numbers.
            unsafe { sys::dup2(slave, target) }.map_err(err(2 + target as u32))?;
        }
    }
    if slave > 2 {
        // SAFETY: the slave lives on as fds 0-2; this number is unused now.
        unsafe { sys::close(slave) };
    }
    Ok(())
}

/// The caller's terminal in raw mode and its stdin and stdout
/// non-blocking, for the duration of the relay; dropping it puts back
/// what was there (termios at once, without waiting for output to drain,
/// and the file status flags). A panic of the supervisor puts it back too
/// ([`restore_on_panic`], from cordon's panic hook), even where panics
/// abort rather than unwind.
pub struct RawMode {
    saved: Saved,
}

/// What [`RawMode`] changed, as it was before.
#[derive(Clone, Copy)]
struct Saved {
    termios: Option<libc::termios>,
    /// The file status flags of fds 0 and 1 before (None: left alone).
    flags: [Option<c_int>; 2],
}

impl Saved {
    fn restore(&self) {
        for (fd, fl) in self.flags.iter().enumerate().rev() {
            if let Some(fl) = fl {
                let _ = sys::set_fl(fd as c_int, *fl);
            }
        }
        if let Some(t) = &self.termios {
            let _ = sys::tcsetattr(0, t);
        }
    }
}

/// The terminal state to put back if the supervisor panics while a
/// [`RawMode`] lives (the first one's: the caller's own).
static ACTIVE: std::sync::Mutex<Option<Saved>> = std::sync::Mutex::new(None);

/// Called by cordon's panic hook in the supervisor: put the caller's
/// terminal back if a [`RawMode`] holds it. Never blocks (try_lock).
pub fn restore_on_panic() {
    if let Ok(mut active) = ACTIVE.try_lock() {
        if let Some(saved) = active.take() {
            saved.restore();
        }
    }
}

impl RawMode {
    /// cfmakeraw on stdin when it is a terminal, O_NONBLOCK on stdin and
    /// stdout. Best effort: what cannot be changed is left as it is.
    pub fn enter() -> RawMode {
        let mut saved = Saved {
            termios: None,
            flags: [None, None],
        };
        if let Ok(t) = sys::tcgetattr(0) {
            let mut r = t;
            // SAFETY: `r` is a valid termios; cfmakeraw only changes its fields.
            unsafe { libc::cfmakeraw(&mut r) };
            if sys::tcsetattr(0, &r).is_ok() {
                saved.termios = Some(t);
            }
        }
        // Both read before either is set: stdin and stdout are often one
        // open file (a login terminal), whose flags setting one changes.
        let before = [sys::get_fl(0).ok(), sys::get_fl(1).ok()];
        for (fd, fl) in before.into_iter().enumerate() {
            if let Some(fl) = fl {
                if fl & libc::O_NONBLOCK != 0 || sys::set_fl(fd as c_int, fl | libc::O_NONBLOCK).is_ok() {
                    saved.flags[fd] = Some(fl);
                }
            }
        }
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        active.get_or_insert(saved);
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.saved.restore();
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Size of each direction's buffer: what one pass moves at most.
pub const RELAY_BUF: usize = 16 * 1024;

/// After the sandbox ended, how long the relay may still take to copy
/// what the pty holds to the caller's terminal.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Bytes on their way from one fd to another.
struct Buf {
    data: Box<[u8; RELAY_BUF]>,
    start: usize,
    end: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            data: Box::new([0; RELAY_BUF]),
            start: 0,
            end: 0,
        }
    }
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
    fn has_room(&self) -> bool {
        self.end < RELAY_BUF || self.start > 0
    }
    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
    /// Read from `fd` into the free space: Ok(0) at EOF; EAGAIN is Ok with
    /// nothing read (as `Err(EAGAIN)`, for the caller to tell apart).
    fn fill(&mut self, fd: c_int) -> sys::SysResult<usize> {
        if self.is_empty() {
            self.clear();
        } else if self.end == RELAY_BUF {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = sys::read(fd, &mut self.data[self.end..])?;
        self.end += n;
        Ok(n)
    }
    /// Write what is held to `fd`, as much as it takes.
    fn flush(&mut self, fd: c_int) -> sys::SysResult<usize> {
        let n = sys::write(fd, &self.data[self.start..self.end])?;
        self.start += n;
        if self.is_empty() {
            self.clear();
        }
        Ok(n)
    }
}

/// The poll entries the relay needs: the caller's stdin, the master, the
/// caller's stdout (fd -1: not now).
pub const RELAY_FDS: usize = 3;

/// The supervisor's relay between the caller's terminal (fds 0 and 1) and
/// the pty's master. Holds the terminal in raw mode while it lives.
pub struct Relay {
    master: OwnedFd,
    up: Buf,
    down: Buf,
    stdin_open: bool,
    master_open: bool,
    stdout_ok: bool,
    /// Stdin ended: send the pty's end-of-file character once `up` is out.
    send_eof: bool,
    eof_char: u8,
    _raw: RawMode,
}

impl Relay {
    /// Start relaying: the master non-blocking, the caller's terminal raw,
    /// the pty's window size the caller's.
    pub fn start(master: OwnedFd) -> Relay {
        let fd = master.as_raw_fd();
        if let Ok(fl) = sys::get_fl(fd) {
            let _ = sys::set_fl(fd, fl | libc::O_NONBLOCK);
        }
        let eof_char = sys::tcgetattr(fd).map_or(4, |t| t.c_cc[libc::VEOF]);
        let relay = Relay {
            master,
            up: Buf::new(),
            down: Buf::new(),
            stdin_open: true,
            master_open: true,
            stdout_ok: true,
            send_eof: false,
            eof_char,
            _raw: RawMode::enter(),
        };
        relay.resize();
        relay
    }

    /// The caller's window size onto the pty (SIGWINCH): the kernel tells
    /// the payload's foreground group when it changed.
    pub fn resize(&self) {
        if let Some(w) = caller_winsize() {
            let _ = sys::set_winsize(self.master.as_raw_fd(), &w);
        }
    }

    /// Whether the relay still has work: the master is open, or output
    /// waits for the caller's stdout.
    pub fn active(&self) -> bool {
        self.master_open || (self.stdout_ok && !self.down.is_empty())
    }

    /// The poll entries for this pass.
    pub fn poll_fds(&self) -> [libc::pollfd; RELAY_FDS] {
        let pfd = |fd: c_int, events: i16, on: bool| libc::pollfd {
            fd: if on && events != 0 { fd } else { -1 },
            events,
            revents: 0,
        };
        let mut master_events = 0;
        if self.down.has_room() {
            master_events |= libc::POLLIN;
        }
        if !self.up.is_empty() || self.send_eof {
            master_events |= libc::POLLOUT;
        }
        [
            pfd(
                0,
                libc::POLLIN,
                self.stdin_open && self.up.has_room() && self.master_open,
            ),
            pfd(self.master.as_raw_fd(), master_events, self.master_open),
            pfd(1, libc::POLLOUT, self.stdout_ok && !self.down.is_empty()),
        ]
    }

    /// Move what poll said can move: at most one read and one write per
    /// direction (the supervisor looks at its deadlines between passes).
    pub fn on_events(&mut self, pfds: &[libc::pollfd]) {
        let master = self.master.as_raw_fd();
        if pfds[0].revents != 0 {
            match self.up.fill(0) {
                Ok(0) => self.end_stdin(),
                Ok(_) | Err(Errno(libc::EAGAIN)) => {}
                Err(_) => self.end_stdin(),
            }
        }
        if pfds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && self.down.has_room() {
            match self.down.fill(master) {
                Ok(0) => self.master_open = false,
                Ok(_) | Err(Errno(libc::EAGAIN)) => {}
                // EIO: every slave fd is closed (the payload and all it
                // started are gone).
                Err(_) => self.master_open = false,
            }
        }
        if pfds[1].revents & libc::POLLOUT != 0 {
            self.write_up();
        }
        if pfds[2].revents != 0 {
            self.write_down();
        }
    }

    fn end_stdin(&mut self) {
        self.stdin_open = false;
        self.send_eof = true;
    }

    fn write_up(&mut self) {
        let master = self.master.as_raw_fd();
        if !self.up.is_empty() {
            match self.up.flush(master) {
                Ok(_) | Err(Errno(libc::EAGAIN)) => {}
                Err(_) => {
                    self.up.clear();
                    self.send_eof = false;
                }
            }
        } else if self.send_eof {
            // The pty's own end-of-file character: a payload reading in
            // canonical mode sees the end of its input.
            match sys::write(master, &[self.eof_char]) {
                Err(Errno(libc::EAGAIN)) => {}
                _ => self.send_eof = false,
            }
        }
    }

    fn write_down(&mut self) {
        match self.down.flush(1) {
            Ok(_) | Err(Errno(libc::EAGAIN)) => {}
            Err(_) => {
                // The caller's terminal is gone: drop the output, so the
                // payload is not held up by it.
                self.stdout_ok = false;
                self.down.clear();
            }
        }
    }

    /// After the sandbox ended: copy what the pty still holds to the
    /// caller's stdout, for at most [`DRAIN_TIME`].
    pub fn drain(&mut self) {
        self.stdin_open = false;
        self.send_eof = false;
        self.up.clear();
        let end = Instant::now() + DRAIN_TIME;
        while self.active() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            let mut pfds = self.poll_fds();
            let left = end
                .saturating_duration_since(now)
                .as_millis()
                .min(i32::MAX as u128) as c_int;
            // SAFETY: pfds is a valid array of pollfd.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, left.max(1)) };
            if n < 0 && Errno::last().0 != libc::EINTR {
                break;
            }
            if n > 0 {
                self.on_events(&pfds);
            }
        }
    }
}
