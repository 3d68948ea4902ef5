//! Named sandboxes on the command line: `cordon create`, `run --in`, `ls`,
//! `stop`, and their part of `gc`.
//!
//! `create` forks a supervisor daemon (before any thread exists) that
//! makes the [`Session`], listens on `NAME.sock` in a 0700 runtime
//! directory, and serves one request per connection: run (argv, env, cwd,
//! time limit as JSON, the client's stdin, stdout and stderr by
//! SCM_RIGHTS), stat (for `ls`) or stop. A connection from any uid but the
//! creator's effective uid (SO_PEERCRED), or from a process in another user
//! namespace (a sandbox's payload), is closed unanswered. The daemon
//! holds `flock(LOCK_EX)` on `NAME.lock` for its whole life: whoever can
//! take the lock knows the supervisor is gone (`ls`, `gc`). It stops on
//! `cordon stop`, SIGTERM/SIGINT/SIGHUP, the policy's `lifecycle.idle` and
//! `lifecycle.max`, or when the sandbox's init ends.

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cordon::launch::parent::{SignalGuard, TERM_GRACE};
use cordon::launch::serve;
use cordon::outcome::EXIT_SETUP;
use cordon::plan::Plan;
use cordon::sys;
use cordon::{CommandSpec, Session};

/// The largest request or reply (a SOCK_SEQPACKET message).
const MAX_MESSAGE: usize = 1 << 20;

/// What the command line gives `create`.
pub struct CreateOptions {
    /// The sandbox's name.
    pub name: String,
    /// The policy's name, for `ls`.
    pub policy_name: String,
    /// Stop after this long without a command.
    pub idle: Option<Duration>,
    /// Stop this long after creation.
    pub max: Option<Duration>,
    /// No warnings.
    pub quiet: bool,
}

/// What the command line gives `run --in`.
pub struct RunInOptions<'a> {
    /// The sandbox's name.
    pub name: &'a str,
    /// The command.
    pub argv: &'a [OsString],
    /// `--env NAME=VALUE` (a bare NAME is refused: the sandbox's
    /// environment was fixed at create).
    pub env: &'a [String],
    /// `--chdir`.
    pub cwd: Option<&'a str>,
    /// `--time-limit`.
    pub time_limit: Option<Duration>,
    /// `--status-json`, opened by the caller before anything ran.
    pub status_json: Option<&'a cordon::output::OutputFile>,
    /// `--status-fd`.
    pub status_fd: Option<i32>,
    /// `-q`.
    pub quiet: bool,
}

/// Whether `name` is a valid sandbox name: `[A-Za-z0-9][A-Za-z0-9_.-]{0,62}`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check_name(name: &str) -> Result<(), String> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a sandbox name: 1 to 63 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
        ))
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The runtime directory: `$XDG_RUNTIME_DIR/cordon`, else
/// `/run/cordon/named` for root (`/run/cordon` itself is 0755: the host id
/// records live there), else `/run/user/$UID/cordon` when `/run/user/$UID` exists.
/// Created 0700; refused unless it is a directory (not a symlink) owned by
/// the effective uid with mode 0700.
pub fn runtime_dir(create: bool) -> Result<PathBuf, String> {
    let uid = euid();
    // The same path the sensitive-path check refuses as a bind source.
    let dir = cordon::sensitive::named_runtime_dir(uid);
    if std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .is_none()
    {
        if uid == 0 {
            if create {
                // /run/cordon as the host id allocator makes it (0755).
                let mut b = std::fs::DirBuilder::new();
                std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o755);
                match b.create("/run/cordon") {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(format!("/run/cordon: {e}")),
                }
            }
        } else {
            let user = PathBuf::from(format!("/run/user/{uid}"));
            if !user.is_dir() {
                return Err(format!(
                    "no runtime directory for named sandboxes: XDG_RUNTIME_DIR is not set and {} does not exist; set XDG_RUNTIME_DIR to a directory only you can write",
                    user.display()
                ));
            }
        }
    }
    if create {
        let mut b = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        match b.create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("runtime directory {}: {e}", dir.display())),
        }
    }
    check_ancestors(&dir, uid)?;
    let md =
        std::fs::symlink_metadata(&dir).map_err(|e| format!("runtime directory {}: {e}", dir.display()))?;
    if !md.file_type().is_dir() || md.uid() != uid || md.mode() & 0o777 != 0o700 {
        return Err(format!(
            "runtime directory {}: must be a directory (not a symbolic link) owned by uid {uid} with mode 0700; it is {}owned by uid {} with mode {:o}",
            dir.display(),
            if md.file_type().is_symlink() {
                "a symbolic link "
            } else if md.file_type().is_dir() {
                ""
            } else {
                "not a directory, "
            },
            md.uid(),
            md.mode() & 0o7777
        ));
    }
    Ok(dir)
}

/// Refuse a runtime directory that another uid could rename or replace:
/// every directory above it (as named, and as resolved) must be owned by
/// root or `uid`, and writable by group or others only with the sticky
/// bit (`/tmp`). Otherwise its owner could swap the directory after
/// cordon's checks and make cordon act on a forged state or socket.
fn check_ancestors(dir: &Path, uid: u32) -> Result<(), String> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let resolved = std::fs::canonicalize(parent)
        .map_err(|e| format!("runtime directory {}: {}: {e}", dir.display(), parent.display()))?;
    for chain in [parent, resolved.as_path()] {
        for a in chain.ancestors() {
            let Ok(md) = std::fs::symlink_metadata(a) else {
                return Err(format!(
                    "runtime directory {}: cannot inspect {}",
                    dir.display(),
                    a.display()
                ));
            };
            // A symbolic link's own bits do not matter: the directory
            // holding it is checked, and so is the resolved chain.
            if md.file_type().is_symlink() {
                continue;
            }
            let mode = md.mode();
            let owner_ok = md.uid() == 0 || md.uid() == uid;
            let write_ok = mode & 0o022 == 0 || mode & libc::S_ISVTX != 0;
            if !owner_ok || !write_ok {
                return Err(format!(
                    "runtime directory {}: {} is owned by uid {} with mode {:o}: another user could replace the runtime directory; set XDG_RUNTIME_DIR to a directory whose every parent is owned by root or uid {uid} (and not writable by others, or sticky)",
                    dir.display(),
                    a.display(),
                    md.uid(),
                    mode & 0o7777
                ));
            }
        }
    }
    Ok(())
}

/// The files of sandbox `name` in `dir`.
struct Paths {
    sock: PathBuf,
    state: PathBuf,
    lock: PathBuf,
    log: PathBuf,
}

fn paths(dir: &Path, name: &str) -> Paths {
    Paths {
        sock: dir.join(format!("{name}.sock")),
        state: dir.join(format!("{name}.json")),
        lock: dir.join(format!("{name}.lock")),
        log: dir.join(format!("{name}.log")),
    }
}

/// What taking an opened lock file gave.
enum Taken {
    /// Locked, and still the file at its path.
    Locked,
    /// A live supervisor holds it.
    Busy,
    /// Locked, but the file was unlinked or replaced since it was opened
    /// (a supervisor that ended removed it while holding it): a lock on
    /// that inode guards nothing.
    Stale,
}

/// flock `f` (opened from `path`) and check that it is still the file at
/// `path` (fstat against lstat: device and inode).
fn take(f: &std::fs::File, path: &Path) -> Result<Taken, String> {
    // SAFETY: flock on an fd owned by `f`.
    let busy = if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(format!("{}: flock: {e}", path.display()));
        }
        true
    } else {
        false
    };
    let held = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(match std::fs::symlink_metadata(path) {
        Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
            if busy {
                Taken::Busy
            } else {
                Taken::Locked
            }
        }
        _ => Taken::Stale,
    })
}

/// Open `NAME.lock` (never through a symlink) and try to take it: `Ok(Some)`
/// with the lock held, `Ok(None)` when a live supervisor holds it. A lock
/// taken on a file that was unlinked meanwhile is dropped and taken again.
fn try_lock(path: &Path, create: bool) -> Result<Option<std::fs::File>, String> {
    for _ in 0..8 {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        match take(&f, path)? {
            Taken::Locked => return Ok(Some(f)),
            Taken::Busy => return Ok(None),
            Taken::Stale => continue,
        }
    }
    Err(format!(
        "{}: the lock file keeps being replaced while it is taken",
        path.display()
    ))
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `cordon create NAME`: fork the supervisor, wait for "ready" or its error.
pub fn create(opts: CreateOptions, plan: Plan) -> i32 {
    match create_inner(opts, plan) {
        Ok(name) => {
            println!("{name}");
            0
        }
        Err(e) => {
            eprintln!("cordon: create: {e}");
            EXIT_SETUP
        }
    }
}

fn create_inner(opts: CreateOptions, plan: Plan) -> Result<String, String> {
    check_name(&opts.name)?;
    let dir = runtime_dir(true)?;
    let p = paths(&dir, &opts.name);
    let Some(lock) = try_lock(&p.lock, true)? else {
        return Err(format!(
            "a sandbox named {} is running (cordon stop {} ends it)",
            opts.name, opts.name
        ));
    };
    if !opts.quiet {
        for item in &plan.supervisor.unenforced {
            eprintln!("cordon: warning: not enforced: {item}");
        }
    }
    // Left by a supervisor that died: the lock was free.
    let _ = std::fs::remove_file(&p.sock);
    let _ = std::fs::remove_file(&p.state);
    let (rd, wr) = sys::pipe().map_err(|e| format!("pipe: {}", e.describe()))?;
    // SAFETY: cordon has started no thread (the command line is parsed and
    // the plan built on the main thread only), so the child is a complete
    // copy that may allocate; it never returns from `daemon`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: the read end is the parent's; this copy is closed.
        unsafe { sys::close(rd) };
        daemon(opts, plan, p, lock, wr);
    }
    drop(lock);
    // The host id lease is the daemon's now (the same open record, whose
    // flock it keeps): dropping this copy would empty the record it holds.
    // This process exits soon; its fd closes then, the lock stays.
    let mut plan = plan;
    if let Some(lease) = plan.supervisor.host_id.take() {
        std::mem::forget(lease);
    }
    drop(plan);
    // SAFETY: the write end is the daemon's; this copy is closed.
    unsafe { sys::close(wr) };
    // SAFETY: `rd` is the read end made above, owned here alone.
    let mut f = unsafe { std::fs::File::from_raw_fd(rd) };
    let mut msg = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::Read::take(&mut f, 64 * 1024), &mut msg);
    // The intermediate process is gone once it exits (the daemon double
    // forks): reap it.
    let _ = sys::waitpid(pid);
    match msg.strip_prefix("ok\n") {
        Some(_) => Ok(opts.name),
        None if msg.is_empty() => Err("the supervisor ended before the sandbox was ready".to_string()),
        None => Err(msg.trim_end().to_string()),
    }
}

/// The daemon: detach, make the session, listen, serve. Never returns.
fn daemon(opts: CreateOptions, plan: Plan, p: Paths, lock: std::fs::File, ready: RawFd) -> ! {
    // SAFETY: setsid and fork in a single-threaded process.
    unsafe {
        libc::setsid();
        // A second fork: the daemon is no session leader (it can never get
        // a controlling terminal), and `create` reaps the first.
        match libc::fork() {
            0 => {}
            -1 => libc::_exit(EXIT_SETUP),
            _ => libc::_exit(0),
        }
    }
    let report = |msg: &str| {
        // SAFETY: `ready` is the daemon's end of the pipe, written once.
        let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(ready) });
        let _ = f.write_all(msg.as_bytes());
    };
    // stdio: /dev/null in, the log out.
    let log = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&p.log);
    let null = std::fs::File::open("/dev/null");
    if let (Ok(log), Ok(null)) = (&log, &null) {
        // SAFETY: 0-2 are replaced by fds this process owns; nothing else
        // uses the old ones.
        unsafe {
            let _ = sys::dup2(null.as_raw_fd(), 0);
            let _ = sys::dup2(log.as_raw_fd(), 1);
            let _ = sys::dup2(log.as_raw_fd(), 2);
        }
    }
    drop(log);
    drop(null);
    close_inherited(ready);
    let fail = |msg: String| -> ! {
        report(&msg);
        let _ = std::fs::remove_file(&p.sock);
        let _ = std::fs::remove_file(&p.state);
        let _ = std::fs::remove_file(&p.log);
        let _ = std::fs::remove_file(&p.lock);
        std::process::exit(EXIT_SETUP);
    };
    let session = match Session::create(plan) {
        Ok(s) => s,
        Err(e) => {
            let mut m = e.to_string();
            if let Some(h) = &e.hint {
                m.push_str(&format!("\ncordon: hint: {h}"));
            }
            fail(m)
        }
    };
    let listener = match listen(&p.sock) {
        Ok(fd) => fd,
        Err(e) => fail(e),
    };
    let state = serde_json::json!({
        "name": opts.name,
        "supervisor_pid": std::process::id(),
        "supervisor_start": cordon::cgroup::start_time(std::process::id()),
        "init_pid": session.pid(),
        "init_start": cordon::cgroup::start_time(session.pid() as u32),
        "created": now_unix(),
        "cgroups": session.cgroup_paths(),
        "policy": opts.policy_name,
        "uid": euid(),
        "idle_s": opts.idle.map(|d| d.as_secs_f64()),
        "max_s": opts.max.map(|d| d.as_secs_f64()),
    });
    if let Err(e) = write_state(&p.state, &state) {
        fail(e);
    }
    report(&format!("ok\n{}\n", opts.name));
    // SAFETY: the daemon's end of the pipe, used no more.
    unsafe { sys::close(ready) };
    let mut d = Daemon {
        session,
        listener,
        clients: Vec::new(),
        idle: opts.idle,
        max: opts.max,
        last_activity: Instant::now(),
        buf: vec![0u8; MAX_MESSAGE],
        name: opts.name,
        stopping: false,
        last_log: None,
        unlogged: 0,
    };
    let code = d.serve();
    drop(d);
    let _ = std::fs::remove_file(&p.sock);
    let _ = std::fs::remove_file(&p.state);
    let _ = std::fs::remove_file(&p.log);
    let _ = std::fs::remove_file(&p.lock);
    drop(lock);
    std::process::exit(code);
}

/// Close every descriptor above 2 that `cordon create`'s caller passed
/// down (those without close-on-exec: cordon opens all of its own with
/// it), but `keep`: a supervisor that lives on must not hold the caller's
/// pipes open (`cordon create x 5>&1 | cat` would never end).
fn close_inherited(keep: RawFd) {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd <= 2 || fd == keep {
            continue;
        }
        // SAFETY: fcntl(F_GETFD) reads the flags of a descriptor number;
        // one that closed meanwhile (the directory's own) answers EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            // SAFETY: an inherited descriptor nothing in this process owns
            // (every fd cordon opened has close-on-exec).
            unsafe { sys::close(fd) };
        }
    }
}

fn write_state(path: &Path, state: &serde_json::Value) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(format!("{state}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn sockaddr(path: &Path) -> Result<(libc::sockaddr_un, libc::socklen_t), String> {
    // SAFETY: a zeroed sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = path.as_os_str().as_bytes();
    if b.len() >= addr.sun_path.len() {
        return Err(format!(
            "{}: the path is too long for a unix socket",
            path.display()
        ));
    }
    for (d, &s) in addr.sun_path.iter_mut().zip(b) {
        *d = s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + b.len() + 1) as libc::socklen_t;
    Ok((addr, len))
}

fn seqpacket_socket() -> Result<OwnedFd, String> {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a new fd owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The listener on `NAME.sock`, mode 0600 (umask 0177 while binding).
fn listen(path: &Path) -> Result<OwnedFd, String> {
    let fd = seqpacket_socket()?;
    let (addr, len) = sockaddr(path)?;
    // SAFETY: umask has no memory arguments; restored below.
    let old = unsafe { libc::umask(0o177) };
    // SAFETY: addr is a valid sockaddr_un of `len` bytes.
    let r = unsafe { libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) };
    let e = std::io::Error::last_os_error();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    if r < 0 {
        return Err(format!("bind {}: {e}", path.display()));
    }
    // SAFETY: listen on our socket.
    if unsafe { libc::listen(fd.as_raw_fd(), 64) } < 0 {
        return Err(format!(
            "listen {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    // Non-blocking: the daemon accepts until the backlog is empty, and a
    // client that went away between poll and accept must not block it.
    sys::get_fl(fd.as_raw_fd())
        .and_then(|fl| sys::set_fl(fd.as_raw_fd(), fl | libc::O_NONBLOCK))
        .map_err(|e| format!("{}: O_NONBLOCK: {}", path.display(), e.describe()))?;
    Ok(fd)
}

/// Connect to sandbox `name`'s socket.
fn connect(name: &str) -> Result<OwnedFd, String> {
    check_name(name)?;
    let dir = runtime_dir(false).map_err(|e| format!("{name}: {e}"))?;
    let p = paths(&dir, name);
    let fd = seqpacket_socket()?;
    let (addr, len) = sockaddr(&p.sock)?;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes.
    let r = unsafe { libc::connect(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOENT | libc::ECONNREFUSED) => {
                format!("no sandbox named {name} is running (cordon ls lists them)")
            }
            _ => format!("{name}: connect {}: {e}", p.sock.display()),
        });
    }
    // The server must be this user's supervisor: nothing is sent (the
    // command, its stdio) to a socket another uid made.
    match peer_cred(fd.as_raw_fd()) {
        Some((_, uid)) if uid == euid() => Ok(fd),
        other => Err(format!(
            "{name}: {} is served by uid {}, not by uid {}: refused",
            p.sock.display(),
            other.map_or("?".to_string(), |(_, u)| u.to_string()),
            euid()
        )),
    }
}

/// How long `ls` and `stop` wait for a supervisor's answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(3);

/// Send one request and wait for its reply (at most `wait`, if given).
fn request(
    fd: &OwnedFd,
    req: &serde_json::Value,
    fds: &[RawFd],
    wait: Option<Duration>,
) -> Result<serde_json::Value, String> {
    if let Some(w) = wait {
        let tv = libc::timeval {
            tv_sec: w.as_secs() as _,
            tv_usec: w.subsec_micros() as _,
        };
        // SAFETY: the kernel reads one timeval.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
    }
    send_request(fd, req, fds)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = [-1; sys::MAX_PASSED_FDS];
    let r = sys::recv_msg_fds(fd.as_raw_fd(), &mut buf, &mut got, 0)
        .map_err(|e| format!("receive: {}", e.describe()))?;
    for &f in &got[..r.fds] {
        // SAFETY: the supervisor sends no fds; any received are ours.
        unsafe { sys::close(f) };
    }
    if r.len == 0 {
        return Err("the supervisor closed the connection without an answer".to_string());
    }
    serde_json::from_slice(&buf[..r.len]).map_err(|e| format!("the supervisor's answer: {e}"))
}

/// Most bytes a relay buffers from one side before it waits for the other.
const RELAY_BUFFER: usize = 64 * 1024;

/// Most bytes read from each of the command's stdout and stderr pipes once
/// its outcome arrived (what it wrote before it ended is in the pipe; a
/// process it left behind may write on forever).
const RELAY_DRAIN: usize = 1 << 20;

/// The caller's fds are written at most this much at once after POLLOUT:
/// a pipe takes that much without blocking (they are not made nonblocking:
/// their file descriptions are shared with other processes).
const RELAY_CHUNK: usize = 4096;

/// A close-on-exec pipe whose end kept here (`ours_read`: the read end) is
/// nonblocking: (our end, the command's end).
fn relay_pipe(ours_read: bool) -> Result<(OwnedFd, OwnedFd), String> {
    let (r, w) = sys::pipe().map_err(|e| format!("pipe: {}", e.describe()))?;
    // SAFETY: both fds are new and owned here alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w)) };
    let ours = if ours_read { r.as_raw_fd() } else { w.as_raw_fd() };
    // SAFETY: fcntl on an fd owned here.
    unsafe {
        let fl = libc::fcntl(ours, libc::F_GETFL);
        libc::fcntl(ours, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    Ok(if ours_read { (r, w) } else { (w, r) })
}

/// read(2) into the spare room of `buf` (at most `room` bytes): bytes
/// read, 0 at end of file, or the errno.
fn read_into(fd: RawFd, buf: &mut Vec<u8>, room: usize) -> Result<usize, i32> {
    buf.reserve(room);
    let spare = buf.spare_capacity_mut();
    let room = room.min(spare.len());
    // SAFETY: the kernel writes at most `room` bytes into the spare
    // capacity of `buf` (uninitialised memory the Vec owns).
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), room) };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: the kernel initialised the first `n` (<= room) spare bytes.
    unsafe { buf.set_len(buf.len() + n as usize) };
    Ok(n as usize)
}

/// write(2) of the start of `buf` (at most `max` bytes); what was written
/// leaves `buf`.
fn write_from(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> Result<(), i32> {
    let len = buf.len().min(max);
    // SAFETY: the kernel reads `len` bytes of `buf`.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), len) };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    buf.drain(..n as usize);
    Ok(())
}

/// One of the command's output pipes and the caller's fd it goes to.
struct Out {
    pipe: Option<OwnedFd>,
    buf: Vec<u8>,
    dst: RawFd,
    /// Cleared when writing to `dst` failed: the rest is discarded.
    dst_ok: bool,
}

impl Out {
    fn read(&mut self) {
        let Some(p) = &self.pipe else { return };
        let room = RELAY_BUFFER.saturating_sub(self.buf.len()).max(1);
        match read_into(p.as_raw_fd(), &mut self.buf, room) {
            Ok(0) => self.pipe = None,
            Ok(_) | Err(libc::EAGAIN | libc::EINTR) => {}
            Err(_) => self.pipe = None,
        }
        if !self.dst_ok {
            self.buf.clear();
        }
    }

    /// Write all of `buf` to the caller (waiting for it: the caller's own fd).
    fn flush(&mut self) {
        while !self.buf.is_empty() && self.dst_ok {
            let mut w = [libc::pollfd {
                fd: self.dst,
                events: libc::POLLOUT,
                revents: 0,
            }];
            let _ = sys::poll(&mut w, -1);
            self.write();
        }
    }

    fn write(&mut self) {
        match write_from(self.dst, &mut self.buf, RELAY_CHUNK) {
            Ok(()) | Err(libc::EAGAIN | libc::EINTR) => {}
            // The caller's reader went away (`| head -1`): close the
            // command's pipe too, so that it gets EPIPE (SIGPIPE) as it
            // would writing there itself, instead of running on.
            Err(_) => {
                self.dst_ok = false;
                self.buf.clear();
                self.pipe = None;
            }
        }
    }
}

/// Run `req` with stdio relayed: the command gets pipes made here, never
/// the caller's fds (a process it leaves behind keeps only pipe ends that
/// nothing reads or feeds once this returns). Copies the caller's stdin to
/// the command while it runs, its stdout and stderr to the caller's, until
/// the outcome arrives; then what the command wrote before it ended.
///
/// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to this
/// process go to the command's process group, as `cordon run` forwards
/// them to its payload: after a terminating one (the first four) the
/// command has [`TERM_GRACE`] to end before it is killed, at once on a
/// second one. The outcome still comes back.
fn run_relayed(sock: &OwnedFd, req: &serde_json::Value) -> Result<serde_json::Value, String> {
    let signals = SignalGuard::new(true, false).map_err(|e| e.to_string())?;
    let mut grace_end: Option<Instant> = None;
    let mut killed = false;
    let (in_w, in_r) = relay_pipe(false)?;
    let (out_r, out_w) = relay_pipe(true)?;
    let (err_r, err_w) = relay_pipe(true)?;
    send_request(
        sock,
        req,
        &[in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
    )?;
    drop((in_r, out_w, err_w));
    let mut in_w = Some(in_w);
    let mut in_buf: Vec<u8> = Vec::new();
    let mut in_open = true;
    let mut outs = [
        Out {
            pipe: Some(out_r),
            buf: Vec::new(),
            dst: 1,
            dst_ok: true,
        },
        Out {
            pipe: Some(err_r),
            buf: Vec::new(),
            dst: 2,
            dst_ok: true,
        },
    ];
    let mut reply = vec![0u8; 256 * 1024];
    let len = loop {
        const NONE: libc::pollfd = libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        };
        let pfd = |fd: RawFd, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let mut p = [NONE; 8];
        p[0] = pfd(sock.as_raw_fd(), libc::POLLIN);
        p[7] = pfd(signals.fd(), libc::POLLIN);
        if in_open && in_w.is_some() && in_buf.len() < RELAY_BUFFER {
            p[1] = pfd(0, libc::POLLIN);
        }
        if let Some(w) = in_w.as_ref().filter(|_| !in_buf.is_empty()) {
            p[2] = pfd(w.as_raw_fd(), libc::POLLOUT);
        }
        for (k, o) in outs.iter().enumerate() {
            if let Some(r) = o.pipe.as_ref().filter(|_| o.buf.len() < RELAY_BUFFER) {
                p[3 + 2 * k] = pfd(r.as_raw_fd(), libc::POLLIN);
            }
            if !o.buf.is_empty() {
                p[4 + 2 * k] = pfd(o.dst, libc::POLLOUT);
            }
        }
        let timeout = grace_end.map_or(-1, |g| {
            g.saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32
        });
        if sys::poll(&mut p, timeout).is_err() {
            continue;
        }
        let mut kill = grace_end.is_some_and(|g| Instant::now() >= g);
        if p[7].revents != 0 {
            let mut info = [0u8; 128 * 8];
            while let Ok(n) = sys::read(signals.fd(), &mut info) {
                if n < 128 {
                    break;
                }
                for si in info[..n].chunks_exact(128) {
                    let sig = u32::from_ne_bytes([si[0], si[1], si[2], si[3]]) as i32;
                    if serve::FORWARDABLE[..4].contains(&sig) {
                        if grace_end.is_some() {
                            kill = true;
                            continue;
                        }
                        grace_end = Some(Instant::now() + TERM_GRACE);
                    }
                    let _ = send_request(sock, &serde_json::json!({"op": "signal", "signal": sig}), &[]);
                }
            }
        }
        if kill && !killed {
            killed = true;
            grace_end = None;
            let _ = send_request(sock, &serde_json::json!({"op": "kill"}), &[]);
        }
        if p[0].revents != 0 {
            let mut none = [-1; sys::MAX_PASSED_FDS];
            match sys::recv_msg_fds(sock.as_raw_fd(), &mut reply, &mut none, libc::MSG_DONTWAIT) {
                Err(sys::Errno(libc::EAGAIN | libc::EINTR)) => {}
                Err(e) => return Err(format!("receive: {}", e.describe())),
                Ok(r) => {
                    for &f in &none[..r.fds] {
                        // SAFETY: the supervisor sends no fds; any received are ours.
                        unsafe { sys::close(f) };
                    }
                    if r.len == 0 {
                        return Err("the supervisor closed the connection without an answer".to_string());
                    }
                    break r.len;
                }
            }
        }
        if p[1].revents != 0 {
            let room = RELAY_BUFFER - in_buf.len();
            match read_into(0, &mut in_buf, room) {
                Ok(0) => in_open = false,
                Ok(_) | Err(libc::EAGAIN | libc::EINTR) => {}
                Err(_) => in_open = false,
            }
        }
        if p[2].revents != 0 {
            if let Some(w) = &in_w {
                match write_from(w.as_raw_fd(), &mut in_buf, RELAY_BUFFER) {
                    Ok(()) | Err(libc::EAGAIN | libc::EINTR) => {}
                    // The command closed its stdin: read no more of the caller's.
                    Err(_) => {
                        in_w = None;
                        in_open = false;
                        in_buf.clear();
                    }
                }
            }
        }
        if !in_open && in_buf.is_empty() {
            // The caller's stdin ended: so does the command's.
            in_w = None;
        }
        for (k, o) in outs.iter_mut().enumerate() {
            if p[3 + 2 * k].revents != 0 {
                o.read();
            }
            if p[4 + 2 * k].revents != 0 {
                o.write();
            }
        }
    };
    drop(in_w);
    // The command ended before its outcome was sent: what it wrote is in
    // the pipes. Read that much (bounded), never waiting for an end of
    // file a leftover process could withhold.
    for o in &mut outs {
        let mut drained = 0;
        loop {
            o.flush();
            let Some(fd) = o.pipe.as_ref().map(AsRawFd::as_raw_fd) else {
                break;
            };
            if drained >= RELAY_DRAIN {
                break;
            }
            match read_into(fd, &mut o.buf, RELAY_BUFFER) {
                Ok(n) if n > 0 => drained += n,
                _ => break,
            }
            if !o.dst_ok {
                o.buf.clear();
            }
        }
        o.pipe = None;
    }
    serde_json::from_slice(&reply[..len]).map_err(|e| format!("the supervisor's answer: {e}"))
}

/// Send one request (with `fds`).
fn send_request(fd: &OwnedFd, req: &serde_json::Value, fds: &[RawFd]) -> Result<(), String> {
    let text = req.to_string();
    sys::send_msg_fds(fd.as_raw_fd(), text.as_bytes(), fds).map_err(|e| match e.0 {
        libc::EMSGSIZE => format!(
            "the request takes {} bytes, more than the socket carries in one message",
            text.len()
        ),
        _ => format!("send: {}", e.describe()),
    })
}

/// `cordon run --in NAME -- CMD...`: the outcome's exit code.
pub fn run_in(o: RunInOptions<'_>) -> i32 {
    let write_status = |json: &str| {
        if let Some(f) = o.status_json {
            if let Err(e) = f.write(format!("{json}\n").as_bytes()) {
                eprintln!("cordon: status-json: {e}");
            }
        }
        if let Some(fd) = o.status_fd {
            // SAFETY: the caller handed us this fd for the outcome;
            // ManuallyDrop leaves it open.
            let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
            let _ = f.write_all(format!("{json}\n").as_bytes());
        }
    };
    let fail = |m: String| {
        eprintln!("cordon: run --in: {m}");
        let e = cordon::LaunchError::other("run --in", m);
        write_status(
            &serde_json::json!({"status": "setup_failed", "exit_code": EXIT_SETUP, "error": e}).to_string(),
        );
        EXIT_SETUP
    };
    let mut argv = Vec::with_capacity(o.argv.len());
    for a in o.argv {
        match a.to_str() {
            Some(s) => argv.push(s),
            None => return fail(format!("{a:?}: a named sandbox's command takes UTF-8 arguments")),
        }
    }
    let mut env = Vec::new();
    for e in o.env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push([k, v]),
            _ => {
                return fail(format!(
                    "--env {e}: give NAME=VALUE (a named sandbox's environment was fixed by create)"
                ))
            }
        }
    }
    let req = serde_json::json!({
        "op": "run",
        "argv": argv,
        "env": env,
        "cwd": o.cwd,
        "time_limit_ms": o.time_limit.map(|d| d.as_millis() as u64),
    });
    let fd = match connect(o.name) {
        Ok(fd) => fd,
        Err(e) => return fail(e),
    };
    let out = match run_relayed(&fd, &req) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    drop(fd);
    if let Some(e) = out.get("refused").and_then(|v| v.as_str()) {
        return fail(e.to_string());
    }
    write_status(&out.to_string());
    let code = out["exit_code"].as_i64().unwrap_or(EXIT_SETUP as i64) as i32;
    if !o.quiet && out["status"] == "timed_out" {
        eprintln!(
            "cordon: timed out: the command's wall-clock limit expired after {} ms and its process group was killed (exit code {code})",
            out["wall_time_ms"]
        );
    }
    if !o.quiet && out["status"] == "oom_killed" {
        eprintln!(
            "cordon: out of memory: the command was killed at the sandbox's memory limit (exit code {code})"
        );
    }
    if let Some(msg) = out["error"]["message"].as_str() {
        eprintln!("cordon: {msg}");
        if let Some(h) = out["error"]["hint"].as_str() {
            eprintln!("cordon: hint: {h}");
        }
    }
    code
}

/// `cordon stop NAME`.
pub fn stop(name: &str) -> i32 {
    match stop_inner(name) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cordon: stop: {e}");
            EXIT_SETUP
        }
    }
}

fn stop_inner(name: &str) -> Result<(), String> {
    check_name(name)?;
    let dir = runtime_dir(false)?;
    let p = paths(&dir, name);
    if !p.lock.exists() {
        return Err(format!("no sandbox named {name} (cordon ls lists them)"));
    }
    // The supervisor answers, then stops; wait for its lock.
    let answered = connect(name)
        .and_then(|fd| {
            request(
                &fd,
                &serde_json::json!({"op": "stop"}),
                &[],
                Some(CONTROL_TIMEOUT),
            )
        })
        .is_ok();
    // One that does not answer (or does not stop) gets SIGTERM, then
    // SIGKILL (its init dies with it), if the state names it: the pid
    // checked by its start time.
    let mut next = Instant::now()
        + if answered {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        };
    let mut signals = [libc::SIGTERM, libc::SIGKILL].into_iter();
    loop {
        match try_lock(&p.lock, false) {
            Ok(Some(lock)) => {
                clean(&dir, name, lock);
                return Ok(());
            }
            // Gone already: the supervisor removed its files.
            Err(_) if !p.lock.exists() => return Ok(()),
            Err(e) => return Err(e),
            Ok(None) if Instant::now() < next => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => match signals.next() {
                Some(sig) => {
                    if !signal_supervisor(&p.state, sig) {
                        return Err(format!(
                            "{name}: the supervisor does not answer and its state does not name it"
                        ));
                    }
                    next = Instant::now() + Duration::from_secs(3);
                }
                None => return Err(format!("{name}: the supervisor did not stop")),
            },
        }
    }
}

/// Send `sig` to the supervisor that the state at `path` names (this
/// user's state; the pid checked by its start time). Whether it was sent.
fn signal_supervisor(path: &Path, sig: i32) -> bool {
    let state = read_own_state(path);
    let (Some(pid), Some(start)) = (
        state["supervisor_pid"].as_u64(),
        state["supervisor_start"].as_u64(),
    ) else {
        return false;
    };
    if pid <= 1 || pid > i32::MAX as u64 || cordon::cgroup::start_time(pid as u32) != Some(start) {
        return false;
    }
    // SAFETY: kill has no memory arguments; the pid is the supervisor the
    // user's own state names, checked by its start time.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

/// Clean what a dead supervisor left of `name` (its lock is held here):
/// kill its init if it is still the same process, remove the cgroups it
/// made (only cordon's: `cordon-*` directories under /sys/fs/cgroup), the
/// socket, the state, the log and the lock. Returns what was done.
fn clean(dir: &Path, name: &str, lock: std::fs::File) -> Vec<String> {
    let p = paths(dir, name);
    let mut done = Vec::new();
    let state = read_own_state(&p.state);
    if let (Some(pid), Some(start)) = (state["init_pid"].as_u64(), state["init_start"].as_u64()) {
        if cordon::cgroup::start_time(pid as u32) == Some(start) {
            // SAFETY: kill has no memory arguments; the pid is the init the
            // state names, checked by its start time.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            done.push(format!("killed init {pid}"));
        }
    }
    for cg in state["cgroups"].as_array().into_iter().flatten() {
        let Some(cg) = cg.as_str().map(PathBuf::from) else {
            continue;
        };
        let ours = cg.starts_with("/sys/fs/cgroup")
            && cg
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cordon-"))
            && !cg
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir));
        if ours && cg.exists() {
            let _ = std::fs::write(cg.join("cgroup.kill"), "1");
            let end = Instant::now() + Duration::from_secs(2);
            while std::fs::remove_dir(&cg).is_err() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(5));
            }
            done.push(format!("removed cgroup {}", cg.display()));
        }
    }
    for f in [&p.sock, &p.state, &p.log, &p.lock] {
        if std::fs::remove_file(f).is_ok() {
            done.push(format!("removed {}", f.display()));
        }
    }
    drop(lock);
    done
}

/// The state file at `path` if this user's supervisor wrote it (a regular
/// file, not a symbolic link, owned by the effective uid, naming it as
/// `uid`), else Null: only such a state names processes and cgroups to act
/// on.
fn read_own_state(path: &Path) -> serde_json::Value {
    let me = euid();
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    else {
        return serde_json::Value::Null;
    };
    match f.metadata() {
        Ok(md) if md.is_file() && md.uid() == me => {}
        _ => return serde_json::Value::Null,
    }
    let mut b = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_MESSAGE as u64), &mut b);
    let state: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
    if state["uid"].as_u64() == Some(u64::from(me)) {
        state
    } else {
        serde_json::Value::Null
    }
}

/// The names of the sandboxes in the runtime directory (from their locks).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".lock").map(str::to_string))
        .filter(|n| valid_name(n))
        .collect();
    v.sort();
    v
}

/// `cordon gc`'s part: every named sandbox whose supervisor is gone.
pub fn gc() -> Vec<String> {
    let Ok(dir) = runtime_dir(false) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names(&dir) {
        if let Ok(Some(lock)) = try_lock(&dir.join(format!("{name}.lock")), false) {
            for d in clean(&dir, &name, lock) {
                out.push(format!("{name}: {d}"));
            }
        }
    }
    out
}

/// `cordon ls [--json]`.
pub fn ls(json: bool) -> i32 {
    let dir = match runtime_dir(false) {
        Ok(d) => d,
        Err(_) if !json => {
            println!("NAME PID AGE COMMANDS MEMORY STATE");
            return 0;
        }
        Err(_) => {
            println!("[]");
            return 0;
        }
    };
    let mut rows = Vec::new();
    for name in names(&dir) {
        let p = paths(&dir, &name);
        let state: serde_json::Value = std::fs::read(&p.state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let alive = matches!(try_lock(&p.lock, false), Ok(None));
        let stat = if alive {
            connect(&name)
                .and_then(|fd| {
                    request(
                        &fd,
                        &serde_json::json!({"op": "stat"}),
                        &[],
                        Some(CONTROL_TIMEOUT),
                    )
                })
                .ok()
        } else {
            None
        };
        let age = state["created"].as_u64().map(|c| now_unix().saturating_sub(c));
        let row = serde_json::json!({
            "name": name,
            "pid": state["init_pid"],
            "supervisor_pid": state["supervisor_pid"],
            "age_s": age,
            "commands_run": stat.as_ref().map(|s| s["commands_run"].clone()),
            "running": stat.as_ref().map(|s| s["running"].clone()),
            "memory_kb": stat.as_ref().map(|s| s["memory_kb"].clone()),
            "policy": state["policy"],
            "state": if !alive { "dead" } else if stat.is_none() { "unresponsive" } else if stat.as_ref().is_some_and(|s| s["running"].as_u64().unwrap_or(0) > 0) { "running" } else { "idle" },
        });
        rows.push(row);
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
    } else {
        println!("NAME PID AGE COMMANDS MEMORY STATE");
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "-".to_string(),
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        for r in &rows {
            println!(
                "{} {} {} {} {} {}",
                show(&r["name"]),
                show(&r["pid"]),
                r["age_s"].as_u64().map_or("-".to_string(), |a| format!("{a}s")),
                show(&r["commands_run"]),
                r["memory_kb"]
                    .as_u64()
                    .map_or("-".to_string(), |m| format!("{m}K")),
                show(&r["state"])
            );
        }
    }
    0
}

/// Most connections a supervisor keeps; past that the oldest one that has
/// sent no request yet is closed for the new one (or the new one is).
const MAX_CLIENTS: usize = 256;

/// Most connections accepted in one round of the daemon's loop.
const ACCEPT_ROUND: usize = 64;

/// How long a connection may take to send its request.
const FIRST_REQUEST: Duration = Duration::from_secs(2);

/// At most one refusal line a second in NAME.log (the rest are counted).
const LOG_EVERY: Duration = Duration::from_secs(1);

/// A client connection of the daemon.
struct Client {
    fd: OwnedFd,
    /// The command it runs (none yet: its request is awaited).
    running: Option<u32>,
    /// When it was accepted (its request is due within FIRST_REQUEST).
    since: Instant,
}

struct Daemon {
    session: Session,
    listener: OwnedFd,
    clients: Vec<Client>,
    idle: Option<Duration>,
    max: Option<Duration>,
    last_activity: Instant,
    buf: Vec<u8>,
    name: String,
    stopping: bool,
    /// When a refusal was last logged, and how many were not since.
    last_log: Option<Instant>,
    unlogged: u64,
}

/// The credentials (pid, uid) at the other end of a unix socket.
fn peer_cred(fd: RawFd) -> Option<(libc::pid_t, u32)> {
    // SAFETY: a zeroed ucred is valid.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the kernel writes one ucred and its length.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some((cred.pid, cred.uid))
}

/// Whether process `pid` is in this process's user namespace (false when
/// either link cannot be read). A payload whose sandbox maps its uid to the
/// creator's passes the uid check; it is in a user namespace of its own.
fn same_user_ns(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return false;
    }
    match (
        std::fs::read_link(format!("/proc/{pid}/ns/user")),
        std::fs::read_link("/proc/self/ns/user"),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl Daemon {
    /// Serve until stopped; the exit code.
    fn serve(&mut self) -> i32 {
        let mut set = sys::sigset_empty();
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
            // SAFETY: set is initialised; s a valid signal.
            unsafe { libc::sigaddset(&mut set, s) };
        }
        let _ = sys::block_signals(&set);
        let sfd = match sys::signalfd(&set) {
            // SAFETY: a new fd owned here.
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
            Err(e) => {
                eprintln!("cordon: {}: signalfd: {}", self.name, e.describe());
                return EXIT_SETUP;
            }
        };
        let created = self.session.created();
        loop {
            let now = Instant::now();
            if self.max.is_some_and(|m| now >= created + m) {
                eprintln!("cordon: {}: lifecycle.max reached: stopping", self.name);
                return 0;
            }
            let idle_end = self
                .idle
                .filter(|_| self.session.running() == 0)
                .map(|i| self.last_activity + i);
            if idle_end.is_some_and(|e| now >= e) {
                eprintln!("cordon: {}: idle for lifecycle.idle: stopping", self.name);
                return 0;
            }
            if self.stopping && self.clients.is_empty() {
                return 0;
            }
            // Connections that sent no request in time are closed.
            self.clients
                .retain(|c| c.running.is_some() || now < c.since + FIRST_REQUEST);
            let first_due = self
                .clients
                .iter()
                .filter(|c| c.running.is_none())
                .map(|c| c.since + FIRST_REQUEST)
                .min();
            self.session.enforce_deadlines();
            let wake = [
                self.max.map(|m| created + m),
                idle_end,
                first_due,
                self.session.next_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = wake.map_or(-1, |w| {
                let left = w.saturating_duration_since(now);
                (left.as_millis().min(i32::MAX as u128) as i32).saturating_add(1)
            });
            let mut pfds = vec![
                libc::pollfd {
                    fd: self.listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.session.reply_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.session.pidfd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            for c in &self.clients {
                pfds.push(libc::pollfd {
                    fd: c.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            if sys::poll(&mut pfds, timeout).is_err() {
                continue;
            }
            if pfds[1].revents != 0 {
                eprintln!("cordon: {}: signal: stopping", self.name);
                return 0;
            }
            if pfds[2].revents != 0 {
                if let Err(code) = self.drain_replies() {
                    return code;
                }
            } else if pfds[3].revents != 0 {
                eprintln!("cordon: {}: the sandbox's init ended: stopping", self.name);
                return EXIT_SETUP;
            }
            // Clients, from the last (removal keeps earlier indexes).
            for i in (0..self.clients.len()).rev() {
                let ev = pfds[4 + i].revents;
                if ev != 0 {
                    self.on_client(i, ev);
                }
            }
            if pfds[0].revents != 0 {
                // Take what the backlog holds (bounded: clients' requests
                // and init's replies are served between rounds), so that
                // a burst of connections does not fill the backlog while
                // each poll round takes one.
                for _ in 0..ACCEPT_ROUND {
                    if !self.accept() {
                        break;
                    }
                }
            }
            // submit and kill_command read replies themselves when init's
            // reply queue may be full: hand those over now, not only when
            // the next reply makes the socket readable.
            if let Err(code) = self.drain_replies() {
                return code;
            }
        }
    }

    /// Accept one connection; false when there was none to accept.
    fn accept(&mut self) -> bool {
        // SAFETY: accept4 on our listener; no address wanted.
        let fd = unsafe {
            libc::accept4(
                self.listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd < 0 {
            return false;
        }
        // SAFETY: a new fd owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let me = euid();
        match peer_cred(fd.as_raw_fd()) {
            Some((pid, uid)) if uid == me && same_user_ns(pid) => {}
            Some((pid, uid)) if uid == me => {
                self.log_refusal(&format!(
                    "refused a connection from pid {pid}, in another user namespace (a sandbox's payload?)"
                ));
                return true;
            }
            other => {
                self.log_refusal(&format!(
                    "refused a connection from uid {} (only uid {me} may use this sandbox)",
                    other.map_or("?".to_string(), |(_, u)| u.to_string())
                ));
                return true;
            }
        }
        if self.clients.len() >= MAX_CLIENTS {
            // Make room by closing the oldest connection that has sent no
            // request; when every one runs a command, refuse this one.
            let oldest = (0..self.clients.len())
                .filter(|&i| self.clients[i].running.is_none())
                .min_by_key(|&i| self.clients[i].since);
            match oldest {
                Some(i) => {
                    self.clients.swap_remove(i);
                    self.log_refusal("too many connections: closed the oldest idle one");
                }
                None => {
                    self.log_refusal(&format!(
                        "too many connections ({MAX_CLIENTS} commands running): refused one"
                    ));
                    return true;
                }
            }
        }
        self.clients.push(Client {
            fd,
            running: None,
            since: Instant::now(),
        });
        true
    }

    /// Log a refusal, at most one line per LOG_EVERY (NAME.log is on a
    /// tmpfs anyone with the uid can flood through the socket).
    fn log_refusal(&mut self, msg: &str) {
        let now = Instant::now();
        if self.last_log.is_some_and(|t| now < t + LOG_EVERY) {
            self.unlogged += 1;
            return;
        }
        if self.unlogged > 0 {
            eprintln!(
                "cordon: {}: {msg} (and {} more refusals not logged)",
                self.name, self.unlogged
            );
        } else {
            eprintln!("cordon: {}: {msg}", self.name);
        }
        self.last_log = Some(now);
        self.unlogged = 0;
    }

    /// Reply to the client that ran `id` and drop it.
    fn finish(&mut self, id: u32, json: &str) {
        self.last_activity = Instant::now();
        if let Some(i) = self.clients.iter().position(|c| c.running == Some(id)) {
            let c = self.clients.swap_remove(i);
            let _ = sys::send_msg_fds(c.fd.as_raw_fd(), json.as_bytes(), &[]);
        }
    }

    /// Every reply the session has (read now or kept by submit): each
    /// goes to its client. Err: init is gone (the exit code).
    fn drain_replies(&mut self) -> Result<(), i32> {
        loop {
            match self.session.poll_reply() {
                Ok(Some((id, out))) => self.finish(id, &out.to_json()),
                Ok(None) => return Ok(()),
                Err(e) => {
                    eprintln!("cordon: {}: {e}", self.name);
                    return Err(EXIT_SETUP);
                }
            }
        }
    }

    fn on_client(&mut self, i: usize, ev: i16) {
        let fd = self.clients[i].fd.as_raw_fd();
        if let Some(id) = self.clients[i].running {
            // A client waiting for its command sends only a signal to
            // forward or a kill (its caller's second SIGINT, or the grace
            // after the first ran out). Anything else, or a hang-up, means
            // it went away: its command goes with it.
            if ev & libc::POLLIN != 0 {
                match self.command_request(fd) {
                    FromWaiting::Signal(sig) => {
                        let _ = self.session.signal_command(id, sig);
                        return;
                    }
                    FromWaiting::Kill => {
                        self.session.kill_command(id);
                        return;
                    }
                    FromWaiting::Nothing => return,
                    FromWaiting::Gone => {}
                }
            } else if ev & (libc::POLLHUP | libc::POLLERR) == 0 {
                return;
            }
            self.session.kill_command(id);
            self.clients[i].running = None;
            self.clients.swap_remove(i);
            return;
        }
        let mut fds = [-1; sys::MAX_PASSED_FDS];
        let got = sys::recv_msg_fds(fd, &mut self.buf, &mut fds, libc::MSG_DONTWAIT);
        let owned: Vec<OwnedFd> = match &got {
            Ok(r) => fds[..r.fds]
                .iter()
                // SAFETY: the fds just received are ours alone; each is owned once.
                .map(|&f| unsafe { OwnedFd::from_raw_fd(f) })
                .collect(),
            Err(_) => Vec::new(),
        };
        let r = match got {
            Ok(r) if r.len > 0 && !r.truncated => r,
            Ok(r) if r.truncated => {
                self.refuse(i, "the request is too large");
                return;
            }
            Err(sys::Errno(libc::EAGAIN)) => return,
            _ => {
                self.clients.swap_remove(i);
                return;
            }
        };
        let req: serde_json::Value = match serde_json::from_slice(&self.buf[..r.len]) {
            Ok(v) => v,
            Err(e) => {
                self.refuse(i, &format!("not a request: {e}"));
                return;
            }
        };
        match req["op"].as_str() {
            Some("stat") => {
                let s = self.stat();
                let c = self.clients.swap_remove(i);
                let _ = sys::send_msg_fds(c.fd.as_raw_fd(), s.to_string().as_bytes(), &[]);
            }
            Some("stop") => {
                let c = self.clients.swap_remove(i);
                let _ = sys::send_msg_fds(c.fd.as_raw_fd(), b"{\"stopping\":true}", &[]);
                eprintln!("cordon: {}: stop requested", self.name);
                self.stopping = true;
                // Running commands end with the sandbox: their clients
                // get no outcome (their connection closes).
                self.clients.clear();
            }
            Some("run") => match parse_run(&req) {
                Ok(spec) if owned.len() == 3 => {
                    let stdio = [0, 1, 2].map(|k| owned[k].as_raw_fd());
                    match self.session.submit(&spec, stdio) {
                        Ok(id) => {
                            self.last_activity = Instant::now();
                            self.clients[i].running = Some(id);
                        }
                        Err(e) => self.refuse(i, &e.to_string()),
                    }
                }
                Ok(_) => self.refuse(i, "a run request carries the command's stdin, stdout and stderr"),
                Err(e) => self.refuse(i, &e),
            },
            _ => self.refuse(i, "unknown request"),
        }
    }

    /// A message from a client whose command runs.
    fn command_request(&mut self, fd: RawFd) -> FromWaiting {
        let mut fds = [-1; sys::MAX_PASSED_FDS];
        let r = match sys::recv_msg_fds(fd, &mut self.buf, &mut fds, libc::MSG_DONTWAIT) {
            Ok(r) => r,
            Err(sys::Errno(libc::EAGAIN | libc::EINTR)) => return FromWaiting::Nothing,
            Err(_) => return FromWaiting::Gone,
        };
        for &f in &fds[..r.fds] {
            // SAFETY: fds just received are ours alone; none is expected.
            unsafe { sys::close(f) };
        }
        if r.len == 0 || r.truncated {
            return FromWaiting::Gone;
        }
        let Ok(req) = serde_json::from_slice::<serde_json::Value>(&self.buf[..r.len]) else {
            return FromWaiting::Gone;
        };
        match req["op"].as_str() {
            Some("kill") => FromWaiting::Kill,
            Some("signal") => match req["signal"].as_i64().and_then(|s| i32::try_from(s).ok()) {
                Some(sig) if serve::FORWARDABLE.contains(&sig) => FromWaiting::Signal(sig),
                _ => FromWaiting::Gone,
            },
            _ => FromWaiting::Gone,
        }
    }

    fn refuse(&mut self, i: usize, why: &str) {
        let c = self.clients.swap_remove(i);
        let _ = sys::send_msg_fds(
            c.fd.as_raw_fd(),
            serde_json::json!({ "refused": why }).to_string().as_bytes(),
            &[],
        );
    }

    fn stat(&self) -> serde_json::Value {
        let memory_kb = self
            .session
            .cgroup_paths()
            .first()
            .and_then(|d| std::fs::read_to_string(d.join("memory.current")).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|b| b / 1024)
            .or_else(|| {
                pss_kb(std::process::id())
                    .zip(pss_kb(self.session.pid() as u32))
                    .map(|(a, b)| a + b)
            });
        serde_json::json!({
            "name": self.name,
            "pid": self.session.pid(),
            "age_s": self.session.created().elapsed().as_secs(),
            "commands_run": self.session.commands_run(),
            "running": self.session.running(),
            "memory_kb": memory_kb,
        })
    }
}

/// What a client whose command runs may send.
enum FromWaiting {
    /// Forward this signal to the command.
    Signal(i32),
    /// Kill the command; the client still waits for its outcome.
    Kill,
    /// No message after all.
    Nothing,
    /// The client went away, or sent something else: it goes, and its
    /// command with it.
    Gone,
}

/// A process's proportional set size (KiB), from smaps_rollup.
fn pss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn parse_run(req: &serde_json::Value) -> Result<CommandSpec, String> {
    let strs = |v: &serde_json::Value| -> Option<Vec<OsString>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(OsString::from))
            .collect()
    };
    let argv = strs(&req["argv"])
        .filter(|a| !a.is_empty())
        .ok_or("no command given")?;
    let mut env = Vec::new();
    for kv in req["env"].as_array().into_iter().flatten() {
        let pair = strs(kv).filter(|p| p.len() == 2).ok_or("env: pairs of strings")?;
        env.push((pair[0].clone(), pair[1].clone()));
    }
    let cwd = req["cwd"].as_str().map(|c| {
        // Checked for NUL bytes by the session.
        let _ = CString::new(c);
        OsString::from(c)
    });
    let time_limit = match &req["time_limit_ms"] {
        serde_json::Value::Null => None,
        v => match v.as_u64() {
            Some(ms) if ms > 0 => Some(Duration::from_millis(ms)),
            _ => {
                return Err(format!(
                    "time_limit_ms: expected a whole number of milliseconds above 0, got {v}"
                ))
            }
        },
    };
    Ok(CommandSpec {
        argv,
        env,
        cwd,
        time_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock taken on a file that was unlinked after it was opened (a
    /// supervisor ending) is stale; try_lock then takes the new file.
    #[test]
    fn a_request_time_limit_is_whole_positive_milliseconds() {
        let req = |t: serde_json::Value| serde_json::json!({"argv": ["/bin/true"], "time_limit_ms": t});
        assert_eq!(
            parse_run(&req(serde_json::json!(1500))).unwrap().time_limit,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_run(&req(serde_json::Value::Null)).unwrap().time_limit, None);
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-5),
            serde_json::json!(1.5),
            serde_json::json!("1s"),
        ] {
            let e = parse_run(&req(bad.clone())).unwrap_err();
            assert!(e.contains("time_limit_ms"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_lock_on_an_unlinked_lock_file_is_stale() {
        let dir = std::env::temp_dir().join(format!("cordon-lock-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        let opened = std::fs::File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(take(&opened, &path), Ok(Taken::Stale)));
        // Replaced by another file: stale too.
        let opened = std::fs::File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::File::create(&path).unwrap();
        assert!(matches!(take(&opened, &path), Ok(Taken::Stale)));
        // try_lock takes the file at the path; a second taker finds it busy.
        let held = try_lock(&path, true).unwrap().expect("free");
        let ino = std::fs::symlink_metadata(&path).unwrap().ino();
        assert_eq!(held.metadata().unwrap().ino(), ino);
        assert!(try_lock(&path, false).unwrap().is_none());
        drop(held);
        drop(opened);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
