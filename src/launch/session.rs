//! A named sandbox, the supervisor's side: the sandbox is built once (the
//! cold launch's steps, shared with [`super::parent`]), then its init runs
//! commands one message each ([`super::serve`]) until the session stops.
//! May allocate: this is the supervisor.
//!
//! Commands in one session share its uid, its files and its processes'
//! namespaces, as `docker exec` does in a container; each runs in its own
//! process group with its own stdio, environment, working directory and
//! time limit, under the same per-process layers as a cold run's payload.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::raw::c_int;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::error::{ChildError, LaunchError, Step};
use crate::launch::child::exec_exit_code;
use crate::launch::parent::{self, CgGuard, Channels, Fd};
use crate::launch::serve::{self, Header, Reply};
use crate::outcome::{CgroupOutcome, Outcome, Status, EXIT_SETUP, EXIT_TIMEOUT};
use crate::plan::Plan;
use crate::sys::{self, Errno};

/// One command for a session: argv, environment overrides, working
/// directory and time limit.
#[derive(Clone, Debug, Default)]
pub struct CommandSpec {
    /// The command and its arguments (searched on the sandbox's `PATH`).
    pub argv: Vec<OsString>,
    /// Variables set (or replaced) on top of the sandbox's environment.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory inside the sandbox (`None`: the policy's `cwd`).
    pub cwd: Option<OsString>,
    /// Wall-clock limit for this command alone (`None`: the policy's
    /// `limits.wall_time`, if any). Its end kills the command's process
    /// group, not the sandbox.
    pub time_limit: Option<Duration>,
}

impl CommandSpec {
    /// A command with no overrides.
    pub fn new<S: AsRef<OsStr>>(argv: &[S]) -> CommandSpec {
        CommandSpec {
            argv: argv.iter().map(|a| a.as_ref().to_os_string()).collect(),
            ..CommandSpec::default()
        }
    }
}

/// A command being built ([`Session::command`]); [`Command::run`] runs it
/// and waits for its outcome.
pub struct Command<'a> {
    session: &'a mut Session,
    spec: CommandSpec,
    stdio: [Option<std::os::fd::OwnedFd>; 3],
}

impl Command<'_> {
    /// Set a variable for this command.
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.spec
            .env
            .push((name.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Its working directory inside the sandbox.
    pub fn cwd(mut self, dir: impl AsRef<OsStr>) -> Self {
        self.spec.cwd = Some(dir.as_ref().to_os_string());
        self
    }

    /// Its wall-clock limit.
    pub fn time_limit(mut self, d: Duration) -> Self {
        self.spec.time_limit = Some(d);
        self
    }

    /// Its stdin, stdout and stderr (`None`: this process's own).
    pub fn stdio(
        mut self,
        stdin: Option<std::os::fd::OwnedFd>,
        stdout: Option<std::os::fd::OwnedFd>,
        stderr: Option<std::os::fd::OwnedFd>,
    ) -> Self {
        self.stdio = [stdin, stdout, stderr];
        self
    }

    /// Run it and wait for its outcome.
    pub fn run(self) -> Result<Outcome, LaunchError> {
        use std::os::fd::AsRawFd;
        let fds = [0, 1, 2].map(|i| self.stdio[i].as_ref().map_or(i as c_int, AsRawFd::as_raw_fd));
        let id = self.session.submit(&self.spec, fds)?;
        // The sandbox holds its own copies now.
        drop(self.stdio);
        self.session.wait(id)
    }
}

/// In the outcome of a command with a time limit but no cgroup of its own.
const UNBOUND_LEFTOVERS: &str = "wall_time: this command's time limit killed its process group only; what it started in another session or left running lives until the sandbox stops (a command's own cgroup needs the sandbox's cgroup v2 and Linux 5.16)";

/// What [`Session::submit`] remembers of a running command.
struct Pending {
    start: Instant,
    /// The sandbox cgroup's OOM kills and pids-limit refusals when the
    /// command started ([`Cgroup::limit_events`]).
    limit_events: (Option<u64>, Option<u64>),
    /// When its time limit ends (`None`: it has none).
    deadline: Option<Instant>,
    /// Its own cgroup, below the sandbox's v2 one ([`Cgroup::command_cgroup`]).
    cgroup: Option<std::path::PathBuf>,
    /// For messages: argv[0], its candidates and the PATH searched.
    argv0: String,
    candidates: Vec<String>,
    search_path: String,
}

/// The most requests sent without their reply read: each request init has
/// not read yet holds its three stdio fds in flight, which the kernel counts
/// against an unprivileged sender's RLIMIT_NOFILE. Above the command table
/// and init's reply queue together, so a full sandbox still gets its
/// rejections back.
pub const MAX_UNANSWERED: usize = serve::MAX_COMMANDS + serve::MAX_QUEUED_REPLIES;

/// A named sandbox: built once, then any number of commands run in it.
/// Dropping it stops it ([`Session::stop`]).
///
/// With a cgroup v2, each command runs in a cgroup of its own below the
/// sandbox's, and its time limit ends everything it started
/// (`cgroup.kill`), what it left in another session (`setsid`) included,
/// also when the command itself ended before: at the same deadline, on
/// the next call of the session that sends or takes a command, or of
/// [`Session::enforce_deadlines`] (at [`Session::next_deadline`]).
/// Without one, a command's time limit kills its process group, and only
/// while the command runs: a process that leaves the group or that the
/// command leaves behind when it exits (a background job) lives until the
/// session stops. Commands see each other's processes, as with `docker
/// exec`: an environment value given to one command
/// ([`Command::env`], [`CommandSpec::env`]) can be read from
/// `/proc/PID/environ` by anything an earlier command left running.
///
/// The session may be moved to, and used from, any thread: the sandbox
/// is made from a thread of its own that lives until the session stops.
pub struct Session {
    plan: Plan,
    pid: libc::pid_t,
    pidfd: Fd,
    sock: Fd,
    cgroup: Option<Cgroup>,
    proxy: Option<crate::net::proxy::Proxy>,
    created: Instant,
    next_id: u32,
    pending: HashMap<u32, Pending>,
    finished: HashMap<u32, Outcome>,
    commands_run: u64,
    /// The sandbox's environment (`NAME=VALUE`), each command's start.
    base_env: Vec<Vec<u8>>,
    /// The thread that made the sandbox (init's parent-death signal
    /// follows it): it waits until the session stops.
    anchor: Option<Anchor>,
    /// The most bytes of strings one command may carry.
    max_strings: usize,
    stopped: bool,
    /// Commands' cgroups that ended with processes still in them (or not
    /// yet removed): killed at the command's deadline, removed once empty.
    lingering: Vec<Lingering>,
}

/// A command's cgroup after the command ended.
struct Lingering {
    dir: std::path::PathBuf,
    /// When what is left in it is killed (`None`: never, until stop).
    deadline: Option<Instant>,
    killed: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pid", &self.pid)
            .field("commands_run", &self.commands_run)
            .field("running", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// The thread that created the sandbox, kept alive until the session
/// stops: init's PR_SET_PDEATHSIG fires when its creating *thread* ends,
/// so a session must not depend on its caller's thread.
struct Anchor {
    /// Dropped: the thread ends.
    release: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// What a stopped session leaves: what its cgroup accounted.
#[derive(Debug)]
pub struct Stopped {
    /// The cgroup's usage and paths (removed now), when it had one.
    pub cgroup: Option<CgroupOutcome>,
    /// How long the sandbox lived.
    pub lifetime: Duration,
    /// How many commands ran in it.
    pub commands_run: u64,
}

/// Refuse what a named sandbox cannot do yet, naming the policy field.
fn check_plan(plan: &Plan) -> Result<(), LaunchError> {
    let refuse = |what: &str| Err(LaunchError::other("named sandbox", what.to_string()));
    if plan.child.clone_flags() & libc::CLONE_NEWPID as u64 == 0 {
        return refuse(
            "namespaces: a named sandbox needs the \"pid\" namespace (its init runs the commands)",
        );
    }
    if !plan.child.mounts().workspaces.is_empty() {
        return refuse("workspaces: not supported in a named sandbox yet; use cordon run");
    }
    if plan.child.tty() {
        return refuse("--tty: not supported in a named sandbox yet; use cordon run --tty");
    }
    if plan.child.seccomp().is_some_and(|s| s.listener()) {
        return refuse("seccomp: a notifying filter (report or learn) needs a supervisor per command; build the plan with Plan::build_serving");
    }
    Ok(())
}

impl Session {
    /// Build the sandbox of `plan` (made by [`Plan::build_serving`]) and
    /// wait until its init is ready for commands.
    ///
    /// The sandbox is made from a thread of its own that lives until the
    /// session stops (its init's parent-death signal follows that
    /// thread), so the session may outlive the thread that calls `create`
    /// and be moved to another.
    pub fn create(plan: Plan) -> Result<Session, LaunchError> {
        check_plan(&plan)?;
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (release, wait_release) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cordon-session".to_string())
            .spawn(move || {
                let made = Session::create_here(plan);
                let ok = made.is_ok();
                if done_tx.send(made).is_ok() && ok {
                    // Until the session stops (its sender is dropped).
                    let _ = wait_release.recv();
                }
            })
            .map_err(|e| {
                LaunchError::sys(
                    "named sandbox",
                    "start its thread",
                    Errno(e.raw_os_error().unwrap_or(libc::EAGAIN)),
                )
            })?;
        match done_rx.recv() {
            Ok(Ok(mut s)) => {
                s.anchor = Some(Anchor { release, thread });
                Ok(s)
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            // The thread panicked before it answered: so does this one.
            Err(_) => match thread.join() {
                Err(p) => std::panic::resume_unwind(p),
                Ok(()) => Err(LaunchError::other("named sandbox", "its thread ended early")),
            },
        }
    }

    /// [`Session::create`] on the calling thread, which must outlive the
    /// session.
    ///
    /// With an audit log in the plan, `sandbox.started` (`named: true`) is
    /// written before the sandbox is made, and `sandbox.exited` if it
    /// could not be made.
    fn create_here(plan: Plan) -> Result<Session, LaunchError> {
        let Some(audit) = plan.supervisor.audit.clone() else {
            return Self::make(plan);
        };
        super::events::named_started(&audit, &plan);
        let start = Instant::now();
        Self::make(plan).inspect_err(|e| {
            super::events::failed(&audit, e, start.elapsed().as_millis() as u64);
        })
    }

    fn make(plan: Plan) -> Result<Session, LaunchError> {
        let mut plan = plan;
        // init never gives its own stdio to a command (each brings its
        // own): /dev/null, so that it holds none of the caller's pipes or
        // terminal open for the sandbox's life.
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| {
                LaunchError::sys(
                    "named sandbox",
                    "/dev/null",
                    Errno(e.raw_os_error().unwrap_or(libc::EIO)),
                )
            })?;
        if plan.child.stdio() == [-1; 3] {
            use std::os::fd::AsRawFd;
            for i in 0..3 {
                plan.child.set_stdio(i, null.as_raw_fd());
            }
        }
        let mut ch = Channels::open(false, plan.supervisor.proxy.is_some(), false, true)?;
        let cgroup = match &plan.supervisor.cgroup {
            Some(cp) => Some(CgGuard(Some(Cgroup::create(cp).map_err(parent::cgroup_error)?))),
            None => None,
        };
        let created = Instant::now();
        let (pid, pidfd) = parent::start_child(&plan, &mut ch, cgroup.as_ref().and_then(|g| g.0.as_ref()))?;
        let proxy = parent::start_proxy(&plan, &mut ch, pid, pidfd.0)?;
        let kill_and_reap = |e: LaunchError| {
            let _ = sys::pidfd_send_signal(pidfd.0, libc::SIGKILL);
            let _ = sys::waitpid(pid);
            e
        };
        parent::release_child(
            &plan,
            &mut ch,
            pid,
            pidfd.0,
            cgroup.as_ref().and_then(|g| g.0.as_ref()),
        )
        .map_err(kill_and_reap)?;
        // init has its copies.
        drop(null);
        let sock = Fd(ch.serve_r.take());
        wait_ready(&plan, sock.0, ch.err_r.0, pidfd.0).map_err(kill_and_reap)?;
        // Room for big environments: a SOCK_SEQPACKET message must fit the
        // send buffer (the kernel caps the request at its wmem_max).
        let want: c_int = 2 * serve::MAX_STRINGS_BYTES as c_int;
        // SAFETY: the kernel reads one int.
        unsafe {
            libc::setsockopt(
                sock.0,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&want as *const c_int).cast(),
                std::mem::size_of::<c_int>() as libc::socklen_t,
            )
        };
        let mut have: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: the kernel writes one int and its length.
        unsafe {
            libc::getsockopt(
                sock.0,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut have as *mut c_int).cast(),
                &mut len,
            )
        };
        let max_strings = (have.max(0) as usize)
            .saturating_sub(serve::HEADER + 512)
            .min(serve::MAX_STRINGS_BYTES);
        let base_env = plan
            .child
            .exec()
            .envp()
            .iter()
            .map(|c| c.to_bytes().to_vec())
            .collect();
        let cgroup = cgroup.and_then(|mut g| g.0.take());
        Ok(Session {
            plan,
            pid,
            pidfd,
            sock,
            cgroup,
            proxy,
            created,
            next_id: 1,
            pending: HashMap::new(),
            finished: HashMap::new(),
            commands_run: 0,
            base_env,
            max_strings,
            anchor: None,
            stopped: false,
            lingering: Vec::new(),
        })
    }

    /// The sandbox's init, in this process's pid namespace.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// A pidfd for the sandbox's init (readable once it ended).
    pub fn pidfd(&self) -> c_int {
        self.pidfd.0
    }

    /// The socket replies come on (readable: call [`Session::poll_reply`]).
    pub fn reply_fd(&self) -> c_int {
        self.sock.0
    }

    /// When the sandbox was made.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// How many commands were started.
    pub fn commands_run(&self) -> u64 {
        self.commands_run
    }

    /// How many commands are running.
    pub fn running(&self) -> usize {
        self.pending.len()
    }

    /// The sandbox's cgroup directories (empty: none).
    pub fn cgroup_paths(&self) -> Vec<std::path::PathBuf> {
        self.cgroup.as_ref().map(Cgroup::paths).unwrap_or_default()
    }

    /// What the policy asked that is not enforced.
    pub fn unenforced(&self) -> Vec<String> {
        self.plan
            .supervisor
            .unenforced
            .iter()
            .chain(&self.plan.supervisor.unenforced_quiet)
            .cloned()
            .collect()
    }

    /// Start a command with `stdio` (fds of this process, which keeps
    /// them: init gets copies) and return its id.
    pub fn submit(&mut self, spec: &CommandSpec, stdio: [c_int; 3]) -> Result<u32, LaunchError> {
        if self.stopped {
            return Err(LaunchError::other("named sandbox", "it was stopped"));
        }
        self.enforce_deadlines();
        let (msg, mut pending) = self.encode(spec)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let mut msg = msg;
        let mut header = Header::decode(&msg).unwrap_or_default();
        header.id = id;
        msg[..serve::HEADER].copy_from_slice(&header.encode());
        // With a v2 cgroup the command joins a cgroup of its own (its
        // fourth fd), so that its time limit ends everything it started.
        let cg = match self.cgroup.as_ref().map(|c| c.command_cgroup(id)).transpose() {
            Ok(cg) => cg.flatten(),
            Err(e) => {
                return Err(LaunchError::other(
                    "named sandbox",
                    format!("the command's cgroup: {e}"),
                ))
            }
        };
        let mut fds = stdio.to_vec();
        if let Some((_, procs)) = &cg {
            use std::os::fd::AsRawFd;
            fds.push(procs.as_raw_fd());
        }
        if let Err(e) = self.send_request(&msg, &fds) {
            if let Some((dir, _)) = &cg {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
        pending.cgroup = cg.map(|(dir, _)| dir);
        if let Some(a) = &self.plan.supervisor.audit {
            let argv: Vec<&OsStr> = spec.argv.iter().map(|a| a.as_os_str()).collect();
            super::events::command_started(a, id, &argv);
        }
        self.pending.insert(id, pending);
        self.commands_run += 1;
        Ok(id)
    }

    /// Send one request without deadlocking against init: init reads no
    /// request while the replies it may owe would not fit its queue, so
    /// while that can be (as many commands without a reply read as the
    /// queue holds), read its replies (kept for [`Session::wait`] and
    /// [`Session::poll_reply`]) until the socket takes the request.
    /// Below that, init goes on reading: just wait until it has.
    ///
    /// Every request init has not read yet holds its three fds in flight,
    /// and an unprivileged sender may have no more in flight than its
    /// RLIMIT_NOFILE (ETOOMANYREFS): so no more than [`MAX_UNANSWERED`]
    /// requests go out without a reply read, and an ETOOMANYREFS waits
    /// for replies too (init answers every request, running ones when
    /// they end, the rest at once when its table is full).
    fn send_request(&mut self, msg: &[u8], fds: &[c_int]) -> Result<(), LaunchError> {
        let ended = || LaunchError::other("named sandbox", "its init has ended");
        loop {
            let mut must_read = self.pending.len() >= MAX_UNANSWERED;
            if !must_read {
                match sys::send_msg_fds_flags(self.sock.0, msg, fds, libc::MSG_DONTWAIT) {
                    Ok(()) => return Ok(()),
                    Err(Errno(libc::EAGAIN | libc::ENOBUFS)) => {}
                    Err(Errno(libc::ETOOMANYREFS)) if !self.pending.is_empty() => must_read = true,
                    Err(Errno(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN)) => return Err(ended()),
                    Err(e) => return Err(LaunchError::sys("named sandbox", "send the command", e)),
                }
            }
            let read = must_read || self.pending.len() >= serve::MAX_QUEUED_REPLIES;
            let mut pfds = [
                libc::pollfd {
                    fd: self.sock.0,
                    events: (if must_read { 0 } else { libc::POLLOUT })
                        | (if read { libc::POLLIN } else { 0 }),
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.pidfd.0,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            sys::poll(&mut pfds, -1).map_err(|e| LaunchError::sys("poll", "named sandbox", e))?;
            if read && pfds[0].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                while let Some((id, o)) = self.recv_reply()? {
                    self.finished.insert(id, o);
                }
            } else if pfds[1].revents != 0 && pfds[0].revents & libc::POLLOUT == 0 {
                return Err(ended());
            }
        }
    }

    /// The request for `spec` (its id still 0) and what to remember of it.
    fn encode(&self, spec: &CommandSpec) -> Result<(Vec<u8>, Pending), LaunchError> {
        let bad = |m: String| LaunchError::other("command", m);
        let Some(cmd) = spec.argv.first() else {
            return Err(bad("no command given".to_string()));
        };
        if cmd.is_empty() {
            return Err(bad("the command is an empty string".to_string()));
        }
        let mut env = self.base_env.clone();
        for (k, v) in &spec.env {
            let k = k.as_bytes();
            if k.is_empty() || k.contains(&b'=') {
                return Err(bad(format!(
                    "--env {}: not a variable name",
                    String::from_utf8_lossy(k)
                )));
            }
            env.retain(|kv| !(kv.starts_with(k) && kv.get(k.len()) == Some(&b'=')));
            let mut kv = k.to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            env.push(kv);
        }
        let path = env.iter().find_map(|kv| kv.strip_prefix(b"PATH="));
        let cand = crate::plan::exec_candidates(cmd.as_bytes(), path);
        let search_path = if cmd.as_bytes().contains(&b'/') {
            String::new()
        } else {
            String::from_utf8_lossy(path.unwrap_or(b"/usr/local/bin:/usr/bin:/bin")).into_owned()
        };
        if spec.time_limit == Some(Duration::ZERO) {
            return Err(bad(
                "time limit 0: give a positive duration, or none for the policy's limits.wall_time"
                    .to_string(),
            ));
        }
        let timeout = spec.time_limit.or(self.plan.supervisor.wall_time);
        let header = Header {
            kind: serve::RUN,
            id: 0,
            timeout_ms: timeout.map_or(0, |d| (d.as_millis() as u64).max(1)),
            argc: spec.argv.len() as u32,
            envc: env.len() as u32,
            ncand: cand.len() as u32,
            has_cwd: u32::from(spec.cwd.is_some()),
        };
        let mut msg = header.encode().to_vec();
        let strings = cand
            .iter()
            .map(Vec::as_slice)
            .chain(spec.argv.iter().map(|a| a.as_bytes()))
            .chain(env.iter().map(Vec::as_slice))
            .chain(spec.cwd.iter().map(|c| c.as_bytes()));
        let mut count = 0usize;
        for s in strings {
            if s.contains(&0) {
                return Err(bad(
                    "an argument, variable or the working directory holds a NUL byte".to_string(),
                ));
            }
            msg.extend_from_slice(s);
            msg.push(0);
            count += 1;
        }
        let size = msg.len() - serve::HEADER;
        if size > self.max_strings || count > serve::MAX_STRINGS {
            return Err(bad(format!(
                "the command's arguments and environment take {size} bytes in {count} strings; a named sandbox takes at most {} bytes and {} strings per command",
                self.max_strings,
                serve::MAX_STRINGS
            )));
        }
        let pending = Pending {
            start: Instant::now(),
            limit_events: self.cgroup.as_ref().map_or((None, None), Cgroup::limit_events),
            deadline: timeout.map(|t| Instant::now() + t),
            cgroup: None,
            argv0: cmd.to_string_lossy().into_owned(),
            candidates: cand
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect(),
            search_path,
        };
        Ok((msg, pending))
    }

    /// Kill a running command's process group (its caller went away), and
    /// with a v2 cgroup everything the command started.
    pub fn kill_command(&mut self, id: u32) {
        if let Some(dir) = self.pending.get(&id).and_then(|p| p.cgroup.as_ref()) {
            let _ = crate::cgroup::write(dir, "cgroup.kill", "1");
        }
        let h = Header {
            kind: serve::KILL,
            id,
            ..Header::default()
        };
        let _ = self.send_request(&h.encode(), &[]);
    }

    /// End what commands left behind whose time limit is over (their
    /// cgroups' `cgroup.kill`), and remove the cgroups of ended commands
    /// that are empty. Run by every call that sends or takes a command;
    /// a caller that holds a session without using it calls this at
    /// [`Session::next_deadline`].
    pub fn enforce_deadlines(&mut self) {
        let now = Instant::now();
        self.lingering.retain_mut(|l| {
            if !crate::cgroup::populated(&l.dir) {
                return std::fs::remove_dir(&l.dir).is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY));
            }
            if !l.killed && l.deadline.is_some_and(|d| d <= now) {
                let _ = crate::cgroup::write(&l.dir, "cgroup.kill", "1");
                l.killed = true;
            }
            true
        });
    }

    /// When [`Session::enforce_deadlines`] has work next: the earliest
    /// time limit of what a command left behind, or soon after a kill (to
    /// remove the emptied cgroup).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lingering
            .iter()
            .filter_map(|l| {
                if l.killed {
                    Some(Instant::now() + Duration::from_millis(50))
                } else {
                    l.deadline
                }
            })
            .min()
    }

    /// Send `sig` to a running command's process group, as `cordon run`
    /// forwards a signal to its payload: SIGINT, SIGTERM, SIGHUP, SIGQUIT
    /// (each followed by SIGCONT, so that a stopped command can act on
    /// it), SIGUSR1 or SIGUSR2 ([`serve::FORWARDABLE`]). Another signal is
    /// refused here; a command that has ended is not an error (init
    /// ignores the request).
    pub fn signal_command(&mut self, id: u32, sig: i32) -> Result<(), LaunchError> {
        if !serve::FORWARDABLE.contains(&sig) {
            return Err(LaunchError::other(
                "signal_command",
                format!("signal {sig}: only SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to a command"),
            ));
        }
        let h = Header {
            kind: serve::SIGNAL,
            id,
            argc: sig as u32,
            ..Header::default()
        };
        self.send_request(&h.encode(), &[])
    }

    /// Take one reply without blocking: `Ok(None)` when none is there.
    /// `Err` when the sandbox's init has ended.
    ///
    /// With as many commands submitted and their replies not read as
    /// init's reply queue holds ([`serve::MAX_QUEUED_REPLIES`]),
    /// [`Session::submit`] and [`Session::kill_command`] may read replies
    /// themselves; those are returned here first. A caller that has that
    /// many outstanding calls `poll_reply` until `Ok(None)` after either,
    /// rather than wait for [`Session::reply_fd`] to be readable.
    pub fn poll_reply(&mut self) -> Result<Option<(u32, Outcome)>, LaunchError> {
        self.enforce_deadlines();
        if let Some(&id) = self.finished.keys().next() {
            if let Some(o) = self.finished.remove(&id) {
                return Ok(Some((id, o)));
            }
        }
        self.recv_reply()
    }

    /// One reply from the socket, without blocking.
    fn recv_reply(&mut self) -> Result<Option<(u32, Outcome)>, LaunchError> {
        let mut buf = [0u8; serve::REPLY];
        let mut fds = [-1; sys::MAX_PASSED_FDS];
        let got = match sys::recv_msg_fds(self.sock.0, &mut buf, &mut fds, libc::MSG_DONTWAIT) {
            Ok(r) => r,
            Err(Errno(libc::EAGAIN)) => return Ok(None),
            Err(e) => return Err(LaunchError::sys("named sandbox", "receive a reply", e)),
        };
        for &fd in &fds[..got.fds] {
            // SAFETY: init sends no fds; any received are ours alone.
            unsafe { sys::close(fd) };
        }
        if got.len == 0 {
            return Err(LaunchError::other("named sandbox", "its init has ended"));
        }
        if got.len != serve::REPLY {
            return Ok(None);
        }
        let reply = Reply::decode(&buf);
        let Some(p) = self.pending.remove(&reply.id) else {
            return Ok(None);
        };
        let mut out = self.outcome(&reply, &p);
        if let Some(a) = &self.plan.supervisor.audit {
            super::events::command_exited(a, reply.id, &mut out);
        }
        if let Some(dir) = p.cgroup {
            // A command that timed out takes what it left along now;
            // otherwise that lives until its deadline.
            let deadline = if reply.timed_out {
                Some(Instant::now())
            } else {
                p.deadline
            };
            self.lingering.push(Lingering {
                dir,
                deadline,
                killed: false,
            });
            self.enforce_deadlines();
        }
        Ok(Some((reply.id, out)))
    }

    /// Wait for command `id` to end (other commands' outcomes are kept for
    /// their own `wait`).
    pub fn wait(&mut self, id: u32) -> Result<Outcome, LaunchError> {
        loop {
            if let Some(o) = self.finished.remove(&id) {
                return Ok(o);
            }
            if !self.pending.contains_key(&id) {
                return Err(LaunchError::other("named sandbox", format!("no command {id}")));
            }
            let mut pfds = [
                libc::pollfd {
                    fd: self.sock.0,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.pidfd.0,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let timeout = self.next_deadline().map_or(-1, |d| {
                d.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as c_int
            });
            sys::poll(&mut pfds, timeout).map_err(|e| LaunchError::sys("poll", "named sandbox", e))?;
            self.enforce_deadlines();
            match self.recv_reply()? {
                Some((got, o)) if got == id => return Ok(o),
                Some((got, o)) => {
                    self.finished.insert(got, o);
                }
                None if pfds[1].revents != 0 && pfds[0].revents == 0 => {
                    return Err(LaunchError::other("named sandbox", "its init has ended"));
                }
                None => {}
            }
        }
    }

    /// Run `argv` with this process's stdio and wait for its outcome.
    pub fn run<S: AsRef<OsStr>>(&mut self, argv: &[S]) -> Result<Outcome, LaunchError> {
        let id = self.submit(&CommandSpec::new(argv), [0, 1, 2])?;
        self.wait(id)
    }

    /// A command to configure, then [`Command::run`].
    pub fn command<S: AsRef<OsStr>>(&mut self, argv: &[S]) -> Command<'_> {
        Command {
            session: self,
            spec: CommandSpec::new(argv),
            stdio: [None, None, None],
        }
    }

    /// The outcome of a command from init's reply.
    fn outcome(&self, r: &Reply, p: &Pending) -> Outcome {
        let mut out = Outcome {
            status: Status::Exited,
            exit_code: 0,
            signal: None,
            wall_time_ms: p.start.elapsed().as_millis() as u64,
            user_time_ms: r.utime_us / 1000,
            system_time_ms: r.stime_us / 1000,
            max_rss_kb: r.maxrss_kb,
            supervisor_max_rss_kb: parent::self_max_rss_kb(),
            unenforced: self.unenforced(),
            limits_hit: Vec::new(),
            host_uid: Some(self.plan.child.ids().host_uid),
            host_gid: Some(self.plan.child.ids().host_gid),
            cgroup: None,
            network: Some(crate::outcome::NetworkOutcome {
                mode: self.plan.supervisor.network.name(),
                proxy: None,
            }),
            violations: Vec::new(),
            violations_total: 0,
            learned: None,
            error: None,
            audit_dropped: None,
            workspaces: Vec::new(),
        };
        let st = r.status;
        if r.kind == serve::REJECTED {
            out.status = Status::SetupFailed;
            out.exit_code = EXIT_SETUP;
            out.error = Some(if r.errno == serve::TABLE_FULL {
                LaunchError::other(
                    "named sandbox",
                    format!(
                        "{} commands already running in this sandbox; wait for one to end",
                        serve::MAX_COMMANDS
                    ),
                )
            } else {
                LaunchError::sys("named sandbox", "init refused the command", Errno(r.errno))
            });
        } else if r.timed_out {
            out.status = Status::TimedOut;
            out.exit_code = EXIT_TIMEOUT;
            out.signal = Some(libc::SIGKILL);
        } else if let Some(e) = r.error {
            out.status = Status::SetupFailed;
            out.exit_code = if e.step == Step::Exec {
                exec_exit_code(e.errno)
            } else {
                EXIT_SETUP
            };
            out.error = Some(self.describe(e, p));
        } else if libc::WIFEXITED(st) {
            out.exit_code = libc::WEXITSTATUS(st);
        } else {
            out.status = Status::Signaled;
            out.signal = Some(libc::WTERMSIG(st));
            out.exit_code = 128 + libc::WTERMSIG(st);
        }
        let payload_signal = (r.kind == serve::DONE && libc::WIFSIGNALED(st)).then(|| libc::WTERMSIG(st));
        // The cgroup is the sandbox's, shared by its commands: what its
        // counters gained while this command ran. An OOM kill then and a
        // SIGKILL of the command make it oom_killed, as in a cold run.
        let usage = self.cgroup.as_ref().map(|c| {
            let (oom, pids) = c.limit_events();
            let gained =
                |now: Option<u64>, then: Option<u64>| now.map(|n| n.saturating_sub(then.unwrap_or(0)));
            crate::outcome::Usage {
                oom_kills: gained(oom, p.limit_events.0),
                pids_limit_hits: gained(pids, p.limit_events.1),
                ..Default::default()
            }
        });
        if usage.as_ref().and_then(|u| u.oom_kills).unwrap_or(0) > 0
            && out.status == Status::Signaled
            && out.signal == Some(libc::SIGKILL)
        {
            out.status = Status::OomKilled;
        }
        out.limits_hit = crate::outcome::limits_hit(r.timed_out, payload_signal, usage.as_ref());
        if p.deadline.is_some() && p.cgroup.is_none() && r.kind == serve::DONE {
            out.unenforced.push(UNBOUND_LEFTOVERS.to_string());
        }
        out
    }

    /// A command's setup error, with this command's names for exec.
    fn describe(&self, e: ChildError, p: &Pending) -> LaunchError {
        let mut d = parent::describe_child_error(&self.plan, e);
        if e.step == Step::Exec {
            d.detail = match p.candidates.get(e.index as usize) {
                Some(c) => c.clone(),
                None if p.search_path.is_empty() => p.argv0.clone(),
                None => format!("{} (searched PATH={})", p.argv0, p.search_path),
            };
        }
        d
    }

    /// Stop the sandbox: kill its init (every process in it dies with the
    /// pid namespace), reap it, stop the proxy, read and remove the cgroup.
    pub fn stop(mut self) -> Stopped {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Stopped {
        let mut cg_out = None;
        if !self.stopped {
            self.stopped = true;
            let _ = sys::pidfd_send_signal(self.pidfd.0, libc::SIGKILL);
            let _ = sys::waitpid(self.pid);
            if let Some(p) = self.proxy.take() {
                let _ = parent::proxy_outcome(p);
            }
            // Removing the sandbox's cgroup removes the commands' below it.
            self.lingering.clear();
            cg_out = self.cgroup.take().map(parent::cgroup_outcome);
            if let Some(a) = &self.plan.supervisor.audit {
                super::events::named_stopped(a, self.created.elapsed().as_millis() as u64, self.commands_run);
            }
            drop(Fd(self.sock.take()));
            drop(Fd(self.pidfd.take()));
            // init is reaped: its creating thread may end now.
            if let Some(a) = self.anchor.take() {
                drop(a.release);
                let _ = a.thread.join();
            }
        }
        Stopped {
            cgroup: cg_out,
            lifetime: self.created.elapsed(),
            commands_run: self.commands_run,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Wait for init's "ready", or its setup error (the error pipe) once it
/// ended.
fn wait_ready(plan: &Plan, sock: c_int, err_r: c_int, pidfd: c_int) -> Result<(), LaunchError> {
    loop {
        let mut pfds = [sock, pidfd].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        sys::poll(&mut pfds, -1).map_err(|e| LaunchError::sys("poll", "named sandbox", e))?;
        if pfds[0].revents & libc::POLLIN != 0 {
            let mut buf = [0u8; serve::REPLY];
            let mut fds = [-1; sys::MAX_PASSED_FDS];
            if let Ok(r) = sys::recv_msg_fds(sock, &mut buf, &mut fds, libc::MSG_DONTWAIT) {
                for &fd in &fds[..r.fds] {
                    // SAFETY: init sends no fds; any received are ours.
                    unsafe { sys::close(fd) };
                }
                if r.len == serve::REPLY && Reply::decode(&buf).kind == serve::READY {
                    return Ok(());
                }
            }
        }
        if pfds[1].revents != 0 || pfds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            let mut e = [0u8; crate::error::WIRE_SIZE];
            let err = match sys::read(err_r, &mut e) {
                Ok(crate::error::WIRE_SIZE) => ChildError::decode(&e),
                _ => None,
            };
            return Err(match err {
                Some(e) => parent::describe_child_error(plan, e),
                None => LaunchError::other("init", "ended before the named sandbox was ready"),
            });
        }
    }
}
