//! The parent side of the launch: clone3 into the namespaces, write the id
//! maps, release the child, then supervise: forward signals, enforce the
//! wall-clock limit, collect the outcome.

use std::os::fd::FromRawFd;
use std::os::raw::c_int;
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::error::{ChildError, LaunchError, Step, WIRE_SIZE};
use crate::isolate::mount::{self, MAX_OPS};
use crate::launch::child::{self, exec_exit_code, Fds, InitReport};
use crate::launch::events;
use crate::launch::notify::{Notifier, NOTIFY_BATCH};
use crate::launch::tty::{Relay, TermInit, RELAY_FDS};
use crate::outcome::{CgroupOutcome, Outcome, Status, EXIT_SETUP, EXIT_TIMEOUT};
use crate::plan::{Plan, Supervise};
use crate::sys::{self, Errno};

/// Options of one supervised run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Block SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 in the
    /// calling thread for the duration of the run and forward them to the
    /// sandbox (what the CLI wants; a library caller may not). After SIGINT,
    /// SIGTERM, SIGHUP or SIGQUIT the sandbox also gets SIGCONT, and it is
    /// killed if it has not ended within [`TERM_GRACE`] (at once on a
    /// second of these signals).
    pub forward_signals: bool,
    /// Print recorded seccomp violations on stderr as they happen, at most
    /// [`VIOLATIONS_SHOWN_PER_SECOND`](crate::launch::notify::VIOLATIONS_SHOWN_PER_SECOND)
    /// a second, then a summary line; never waiting for stderr.
    pub print_violations: bool,
    /// Return as soon as init reports that nothing else of the sandbox is
    /// left, without reaping init: its exit (the namespaces' teardown, a
    /// few hundred microseconds) then overlaps with the caller's own, and
    /// whoever inherits it reaps it. Only for a caller that exits right
    /// after the run (the CLI's single run); otherwise init is reaped
    /// before the run returns. Ignored where a cgroup must be read and
    /// removed after init.
    pub leave_init: bool,
}

/// After forwarding a terminating signal (SIGINT, SIGTERM, SIGHUP,
/// SIGQUIT), how long the payload has to end before cordon kills the whole
/// sandbox.
pub const TERM_GRACE: Duration = Duration::from_secs(3);

/// The supervision loop's fixed poll entries: the pidfd, the error pipe,
/// the signalfd, the notification fd, the pty hand-off and the status pipe.
const FIXED_FDS: usize = 6;

/// The forwarded signals that ask the sandbox to end.
const TERMINATING: [c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// How many terminating signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) the
/// supervisors of this process have forwarded so far.
static TERMINATING_FORWARDED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many terminating signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) runs with
/// [`RunOptions::forward_signals`] have forwarded in this process: a caller
/// that runs again (`cordon run --rerun`) stops when this changed during a
/// run, since the signal was meant for cordon too.
pub fn terminating_signals_forwarded() -> u64 {
    TERMINATING_FORWARDED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The signals forwarded to the sandbox (the same set `cordon run --in`
/// forwards to a named sandbox's command).
const FORWARDED: [c_int; 6] = super::serve::FORWARDABLE;

/// An fd closed on drop.
pub(super) struct Fd(pub(super) c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: an `Fd` owns its number (`take` leaves -1 behind), and
            // it is dropped: nothing uses the number after this close.
            unsafe { sys::close(self.0) };
        }
    }
}

impl Fd {
    pub(super) fn take(&mut self) -> c_int {
        std::mem::replace(&mut self.0, -1)
    }
}

/// Signals blocked in the calling thread and read from a signalfd until
/// drop, which restores the thread's signal mask.
pub struct SignalGuard {
    old: libc::sigset_t,
    fd: Fd,
}

impl SignalGuard {
    /// `forward`: the signals forwarded to the sandbox (SIGINT, SIGTERM,
    /// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2); `winch`: SIGWINCH, for the
    /// pty's window size.
    pub fn new(forward: bool, winch: bool) -> Result<SignalGuard, LaunchError> {
        let mut set = sys::sigset_empty();
        let winch = winch.then_some(libc::SIGWINCH);
        for s in FORWARDED.iter().filter(|_| forward).copied().chain(winch) {
            // SAFETY: set is initialised and s is a valid signal.
            unsafe { libc::sigaddset(&mut set, s) };
        }
        let old = sys::block_signals(&set).map_err(|e| LaunchError::sys("signals", "block", e))?;
        // SAFETY: set is initialised; signalfd returns a new fd or -1.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd < 0 {
            let e = Errno::last();
            let _ = sys::set_sigmask(&old);
            return Err(LaunchError::sys("signals", "signalfd", e));
        }
        Ok(SignalGuard { old, fd: Fd(fd) })
    }

    /// The signalfd (non-blocking, close-on-exec), owned by the guard.
    pub fn fd(&self) -> c_int {
        self.fd.0
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        let _ = sys::set_sigmask(&self.old);
    }
}

fn write_file(path: &str, content: &str) -> Result<(), Errno> {
    std::fs::write(path, content).map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))
}

fn userns_hint() -> String {
    if let Some(advice) = crate::isolate::probe::userns_advice() {
        return advice;
    }
    userns_hint_from_sysctls()
}

fn userns_hint_from_sysctls() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).ok();
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return "user namespaces are disabled: sysctl -w user.max_user_namespaces=15000".to_string();
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "unprivileged user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1"
            .to_string();
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return "AppArmor restricts unprivileged user namespaces: add an AppArmor profile for cordon with `userns,` or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".to_string();
    }
    "check that this kernel supports the namespaces the policy asks for (cordon features lists them)"
        .to_string()
}

/// Started by root: the calling thread (only it: raw system calls, not
/// glibc's process-wide setxid) runs with the sandbox's host ids as its
/// effective ids, so that the user namespace clone3 creates is owned by
/// them, not by host root: the payload's per-user counts (inotify
/// instances and watches, mqueue bytes, pending signals...) are then
/// charged to that id. Real and saved ids stay as they are (0), and
/// SECBIT_NO_SETUID_FIXUP keeps the effective capabilities
/// (CLONE_INTO_CGROUP's permission check on a root-owned cgroup.procs needs
/// them). The euid change also resets the process's dumpable flag and the
/// thread's parent-death signal, which are saved and put back. Dropping it
/// restores everything; a failure to restore aborts the process rather than
/// let it go on with half its identity.
struct CloneAs {
    euid: u32,
    egid: u32,
    securebits: libc::c_ulong,
    dumpable: c_int,
    pdeathsig: c_int,
}

fn raw_setres(nr: libc::c_long, effective: u32) -> Result<(), Errno> {
    let keep = libc::uid_t::MAX as libc::c_long;
    // SAFETY: setresuid/setresgid with integer arguments; -1 keeps the
    // real and saved ids. Raw, so it changes only the calling thread.
    let r = unsafe { libc::syscall(nr, keep, effective as libc::c_long, keep) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

impl CloneAs {
    fn enter(uid: u32, gid: u32) -> Result<CloneAs, LaunchError> {
        let fail =
            |what: &str, e: Errno| LaunchError::sys("identity", format!("clone as host id {uid}: {what}"), e);
        let get = |opt: c_int| sys::prctl(opt, 0, 0).map_err(|e| fail("prctl", e));
        let securebits = get(libc::PR_GET_SECUREBITS)? as libc::c_ulong;
        let dumpable = get(libc::PR_GET_DUMPABLE)?;
        let mut pdeathsig: c_int = 0;
        // SAFETY: PR_GET_PDEATHSIG writes an int through the pointer.
        if unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut pdeathsig as *mut c_int) } < 0 {
            return Err(fail("PR_GET_PDEATHSIG", Errno::last()));
        }
        sys::prctl(
            libc::PR_SET_SECUREBITS,
            securebits | libc::SECBIT_NO_SETUID_FIXUP as libc::c_ulong,
            0,
        )
        .map_err(|e| fail("securebits", e))?;
        // SAFETY: geteuid/getegid cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let guard = CloneAs {
            euid,
            egid,
            securebits,
            dumpable,
            pdeathsig,
        };
        // From here on, dropping the guard restores what was changed.
        raw_setres(libc::SYS_setresgid, gid).map_err(|e| fail("setresgid", e))?;
        raw_setres(libc::SYS_setresuid, uid).map_err(|e| fail("setresuid", e))?;
        Ok(guard)
    }
}

impl Drop for CloneAs {
    fn drop(&mut self) {
        let restored = raw_setres(libc::SYS_setresuid, self.euid)
            .and_then(|_| raw_setres(libc::SYS_setresgid, self.egid))
            .and_then(|_| sys::prctl(libc::PR_SET_SECUREBITS, self.securebits, 0).map(drop))
            .and_then(|_| sys::prctl(libc::PR_SET_DUMPABLE, self.dumpable as libc::c_ulong, 0).map(drop))
            .and_then(|_| sys::prctl(libc::PR_SET_PDEATHSIG, self.pdeathsig as libc::c_ulong, 0).map(drop));
        if let Err(e) = restored {
            eprintln!(
                "cordon: cannot restore the supervisor's identity after clone3: {}",
                std::io::Error::from_raw_os_error(e.0)
            );
            std::process::abort();
        }
    }
}

fn clone_child(
    plan: &Plan,
    fds: Fds,
    cgroup: Option<&std::os::fd::OwnedFd>,
    premade: &[c_int],
    term: &TermInit,
) -> Result<(libc::pid_t, c_int), LaunchError> {
    let ids = &plan.child.ids();
    let _as_host_id = if !ids.rootless && ids.host_uid != 0 && ids.host_gid != 0 {
        Some(CloneAs::enter(ids.host_uid, ids.host_gid)?)
    } else {
        None
    };
    // Before clone: the child's panics must end it without a hook.
    super::sequence::install_panic_guard();
    let mut pidfd: c_int = -1;
    let mut c = clone3::Clone3::default();
    c.flag_pidfd(&mut pidfd);
    if let Some(fd) = cgroup {
        // Born inside the sandbox's cgroup v2 leaf: no window outside it.
        c.flag_into_cgroup(fd);
    }
    c.exit_signal(libc::SIGCHLD as u64);
    let f = plan.child.clone_flags();
    let has = |flag: c_int| f & flag as u64 != 0;
    if has(libc::CLONE_NEWUSER) {
        c.flag_newuser();
    }
    if has(libc::CLONE_NEWNS) {
        c.flag_newns();
    }
    if has(libc::CLONE_NEWPID) {
        c.flag_newpid();
    }
    // CLONE_NEWNET is left to init's helper task where the plan says so
    // (the half millisecond it costs then runs on another core while init
    // builds the root).
    if has(libc::CLONE_NEWNET) && !plan.child.netns_helper() {
        c.flag_newnet();
    }
    if has(libc::CLONE_NEWIPC) {
        c.flag_newipc();
    }
    if has(libc::CLONE_NEWUTS) {
        c.flag_newuts();
    }
    if has(libc::CLONE_NEWCGROUP) {
        c.flag_newcgroup();
    }
    // SAFETY: clone3 without CLONE_VM gives the child a copy of our memory.
    // The child runs only `child::main`, which never returns, does not
    // allocate and takes no locks, so it is sound even if other threads of
    // this process held locks at the time of the clone.
    match unsafe { c.call() } {
        Ok(0) => child::main(&plan.child, fds, premade, term),
        Ok(pid) => Ok((pid, pidfd)),
        Err(e) => Err(LaunchError::sys("clone3", "create namespaces", Errno(e.0)).with_hint(userns_hint())),
    }
}

fn write_maps(plan: &Plan, pid: libc::pid_t) -> Result<(), LaunchError> {
    let ids = &plan.child.ids();
    let base = format!("/proc/{pid}");
    if ids.rootless {
        // Required before gid_map for an unprivileged writer; it also stops
        // the payload from dropping supplementary groups to escape a
        // group-based deny.
        write_file(&format!("{base}/setgroups"), "deny")
            .map_err(|e| LaunchError::sys("setgroups", format!("{base}/setgroups"), e))?;
    }
    write_file(&format!("{base}/gid_map"), &ids.gid_map()).map_err(|e| {
        LaunchError::sys("gid_map", format!("{} -> host {}", ids.gid, ids.host_gid), e)
            .with_hint(userns_hint())
    })?;
    write_file(&format!("{base}/uid_map"), &ids.uid_map()).map_err(|e| {
        LaunchError::sys("uid_map", format!("{} -> host {}", ids.uid, ids.host_uid), e)
            .with_hint(userns_hint())
    })
}

pub(super) fn timeval_ms(t: libc::timeval) -> u64 {
    (t.tv_sec as u64) * 1000 + (t.tv_usec as u64) / 1000
}

/// cordon's own peak RSS. VmHWM belongs to this process image; getrusage's
/// ru_maxrss would also carry the high-water mark of whatever process
/// exec'd cordon.
pub(super) fn self_max_rss_kb() -> u64 {
    sys::proc_self_status("VmHWM:", |v| v.trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

/// Describe a child error with the plan's names for its items.
pub fn describe_child_error(plan: &Plan, e: ChildError) -> LaunchError {
    let idx = e.index as usize;
    let detail = match e.step {
        Step::BindSource
        | Step::BindAttrs
        | Step::BindIdmap
        | Step::MountPoint
        | Step::Bind
        | Step::FsMount
        | Step::Symlink => {
            plan.child.mounts().describe.get(idx).cloned().unwrap_or_default()
        }
        Step::MountPointOnHost => format!(
            "{}: it would have to be created inside a host directory, and cordon creates mount points and symlinks only on its own tmpfs mounts; create it on the host, or mount a tmpfs above it",
            plan.child.mounts().describe.get(idx).cloned().unwrap_or_default()
        ),
        Step::ResolvConf => format!(
            "{}: a host bind holds it as a symlink to a path that is not in the sandbox, or as something other than a file; do not bind it, or turn the file off (network.dns false for resolv.conf, identity.passwd false for passwd and group; for a copy, copy it elsewhere or bind it instead)",
            plan.child.mounts().describe.get(idx).cloned().unwrap_or_default()
        ),
        Step::Rlimit => plan.child.rlimits().get(idx).map(|r| r.field.to_string()).unwrap_or_default(),
        Step::Exec => {
            let cmd = plan.child.exec().argv().get(0).map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
            match plan.child.exec().candidates().get(idx) {
                Some(c) => c.to_string_lossy().into_owned(),
                None if plan.child.exec().search_path().is_empty() => cmd,
                None => format!("{cmd} (searched PATH={})", plan.child.exec().search_path()),
            }
        }
        Step::Chdir => plan.child.cwd().to_string_lossy().into_owned(),
        Step::ProxyListen => format!("127.0.0.1:{idx}"),
        Step::Unshare if e.index == super::child::NETNS_UNSHARE => "the network namespace".to_string(),
        Step::LandlockRule => plan
            .child
            .landlock()
            .and_then(|l| match l.paths.get(idx) {
                Some(r) => Some(format!("{}: {}", r.field, r.path.to_string_lossy())),
                None => idx
                    .checked_sub(l.paths.len())
                    .and_then(|j| l.ports.get(j))
                    .map(|(port, _)| format!("TCP port {port}")),
            })
            .unwrap_or_default(),
        Step::Hostname => plan.child.hostname().as_ref().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        Step::Identity => format!("uid {} gid {}", plan.child.ids().uid, plan.child.ids().gid),
        Step::RootTmpfs => plan.child.staging().to_string_lossy().into_owned(),
        Step::Workspace => plan.child.mounts().describe.get(idx & 0xffff).cloned().unwrap_or_default(),
        Step::Pty => {
            let ptmx = plan.child.ptmx().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            match idx {
                0 => format!("open {ptmx}"),
                1 => format!("unlock {ptmx} and open its slave (TIOCGPTPEER)"),
                2 => "the caller's terminal modes onto the slave".to_string(),
                3 => "the caller's window size onto the pty".to_string(),
                _ => "send the master to cordon".to_string(),
            }
        }
        Step::ControllingTty => match idx {
            0 => "setsid".to_string(),
            1 => "TIOCSCTTY".to_string(),
            i => format!("the pty's slave onto fd {}", i - 2),
        },
        _ => String::new(),
    };
    let hint = match (e.step, e.errno.0) {
        (Step::Exec, libc::ENOENT) => Some("the program is not inside the sandbox: bind the directory that holds it (and its libraries), or give its full path".to_string()),
        (Step::Exec, libc::EACCES) if plan.child.landlock().is_some() => Some("the file is not executable, sits on a mount without exec permission, or is not under a landlock.execute path".to_string()),
        (Step::Exec, libc::EACCES) => Some("the file is not executable, or it sits on a mount without exec permission".to_string()),
        (Step::Landlock, libc::EOPNOTSUPP) | (Step::Landlock, libc::ENOSYS) => Some(crate::landlock::probe::landlock_advice().unwrap_or_else(|| "Landlock is not enabled in this kernel: boot with lsm=...,landlock (cordon features shows the LSM list), or set landlock.compatibility to best_effort (--best-effort)".to_string())),
        (Step::BindSource, libc::EACCES) => Some(format!(
            "the sandbox's host identity (uid {}) cannot reach the source; make it readable for that uid or choose identity.host_uid (--host-uid)",
            plan.child.ids().host_uid
        )),
        (Step::FsMount, libc::EPERM) if plan.child.mounts().describe.get(idx).is_some_and(|d| d.starts_with("proc")) => Some(
            "a fresh proc needs a fully visible /proc on the host (no overmounts below /proc, as some container runtimes add)".to_string(),
        ),
        (Step::Workspace, _) if e.index >> 16 == 3 => Some(
            "the kernel refused the workspace's overlay (overlayfs in a user namespace needs Linux 5.11 or later, tmpfs user xattrs 6.6 or later, and a lower filesystem overlayfs accepts); cordon does not fall back to a copy".to_string(),
        ),
        _ => None,
    };
    LaunchError {
        step: e.step.name().to_string(),
        detail,
        errno: Some(e.errno.0),
        hint,
    }
}

/// Run the plan to completion and report what happened.
pub fn run(plan: &Plan, opts: RunOptions) -> Result<Outcome, LaunchError> {
    run_reporting(plan, opts, &mut |_, _| {})
}

/// [`run`], calling `started(pid, pidfd)` once the sandbox's init exists
/// (the pidfd stays cordon's; duplicate it to keep it). With an audit log
/// in the plan, `sandbox.started` is written before the sandbox is created
/// and `sandbox.exited` after it ended, or failed to start.
pub fn run_reporting(
    plan: &Plan,
    opts: RunOptions,
    started: &mut dyn FnMut(libc::pid_t, c_int),
) -> Result<Outcome, LaunchError> {
    let Some(audit) = &plan.supervisor.audit else {
        return supervise_plan(plan, opts, started);
    };
    events::started(audit, plan);
    let start = Instant::now();
    supervise_plan(plan, opts, started).inspect_err(|e| {
        events::failed(audit, e, start.elapsed().as_millis() as u64);
    })
}

fn supervise_plan(
    plan: &Plan,
    opts: RunOptions,
    started: &mut dyn FnMut(libc::pid_t, c_int),
) -> Result<Outcome, LaunchError> {
    if plan.child.clone_flags() & libc::CLONE_NEWPID as u64 == 0 {
        return Err(LaunchError::sys(
            "plan",
            "a supervised run needs the pid namespace",
            Errno(libc::EINVAL),
        ));
    }
    let notifying = plan.child.seccomp().as_ref().is_some_and(|s| s.listener());
    let tty = plan.child.tty();
    let mut ch = Channels::open(notifying, plan.supervisor.proxy.is_some(), tty, false)?;
    let workspaces = open_workspaces(plan, &mut ch)?;
    let mut notifier = Notifier::new(plan.supervisor.supervise.clone(), opts.print_violations);
    notifier.audit = plan.supervisor.audit.as_ref().map(|a| a.log.clone());
    let signals = if opts.forward_signals || tty {
        Some(SignalGuard::new(opts.forward_signals, tty)?)
    } else {
        None
    };
    let cgroup = match &plan.supervisor.cgroup {
        Some(cp) => Some(CgGuard(Some(Cgroup::create(cp).map_err(cgroup_error)?))),
        None => None,
    };
    let start = Instant::now();
    let (pid, pidfd) = start_child(plan, &mut ch, cgroup.as_ref().and_then(|g| g.0.as_ref()))?;
    started(pid, pidfd.0);
    // The egress proxy waits for the listeners the child makes in the
    // sandbox's netns (EOF: the child failed first); it stops with the
    // sandbox, or when this function returns early (drop).
    let proxy = start_proxy(plan, &mut ch, pid, pidfd.0)?;
    let kill_and_reap = |e: LaunchError| {
        let _ = sys::pidfd_send_signal(pidfd.0, libc::SIGKILL);
        // SAFETY: reaping our own child; null status is allowed.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        e
    };
    release_child(
        plan,
        &mut ch,
        pid,
        pidfd.0,
        cgroup.as_ref().and_then(|g| g.0.as_ref()),
    )
    .map_err(kill_and_reap)?;

    notifier.sandbox_pidfd = pidfd.0;
    let mut errors = ErrorChannel::new(ch.err_r.0, notifying);
    let mut sup = Supervision {
        pidfd: pidfd.0,
        deadline: plan.supervisor.wall_time.map(|d| start + d),
        timed_out: false,
        grace_end: None,
        grace_killed: false,
        tty_sock: Fd(ch.tty_r.take()),
        relay: None,
        status_fd: ch.status_r.0,
        report: None,
        end_at_report: cgroup.is_none(),
    };
    let supervised = sup.run(signals.as_ref(), &mut notifier, &mut errors);
    // The caller's terminal back as it was before anything is printed:
    // what the pty still holds first (bounded), then the modes.
    if let Some(mut relay) = sup.relay.take() {
        if supervised.is_ok() {
            relay.drain();
        }
    }
    supervised.map_err(kill_and_reap)?;

    // Ended at init's drained report: nothing of the sandbox runs any more
    // but init, which only exits; its wait4 would give what the report says.
    let reported = sup
        .report
        .filter(|r| r.drained && sup.end_at_report && !sup.timed_out);
    let (status, ru) = match reported {
        Some(r) => (r.exit_status(), r.rusage()),
        None => reap(pid)?,
    };
    let wall = start.elapsed();
    let proxy_counts = proxy.map(proxy_outcome);
    notifier.finish();
    errors.drain();
    if sup.status_fd >= 0 {
        sup.read_report();
    }
    let payload_status = sup.report.map(|r| r.status);
    drop(signals);
    // Every process of the sandbox is gone (the pid namespace died with its
    // init): read what the cgroup accounted, then remove it.
    let cgroup_out = cgroup.and_then(|mut g| g.0.take()).map(cgroup_outcome);
    let ended = Ended {
        wall,
        ru,
        init_status: status,
        payload_status,
        timed_out: sup.timed_out,
        child_error: errors.error,
    };
    let mut out = outcome(plan, ended, &mut notifier, cgroup_out);
    if let Some(n) = out.network.as_mut() {
        n.proxy = proxy_counts;
    }
    if !workspaces.is_empty() {
        // on_success: the payload exited 0, and nothing timed out, was
        // killed or ran into a limit.
        let success = out.status == Status::Exited && out.exit_code == 0 && out.limits_hit.is_empty();
        out.workspaces = workspaces.finish(ch.ws_r.0, crate::workspace::Ending { success });
    }
    if let Some(a) = &plan.supervisor.audit {
        events::ended(a, &mut out, notifier.audit_logged);
    }
    if reported.is_some() && !opts.leave_init {
        let _ = reap(pid);
    }
    Ok(out)
}

/// The workspaces: their host and export directories opened before the
/// launch, and the socket the child hands the upper directories over on.
fn open_workspaces(plan: &Plan, ch: &mut Channels) -> Result<crate::workspace::Session, LaunchError> {
    let workspaces = crate::workspace::Session::open(&plan.child.mounts().workspaces)
        .map_err(|e| LaunchError::other("workspace", e))?;
    if !workspaces.is_empty() {
        let pair =
            sys::seqpacket_pair().map_err(|e| LaunchError::sys("socketpair", "workspace hand-off", e))?;
        ch.ws_r = Fd(pair.0);
        ch.ws_w = Fd(pair.1);
    }
    Ok(workspaces)
}

/// What the cgroup accounted, read once every process of the sandbox is
/// gone; then the cgroup is removed.
pub(super) fn cgroup_outcome(cg: Cgroup) -> CgroupOutcome {
    let out = CgroupOutcome {
        version: cg.version().to_string(),
        paths: cg.paths().iter().map(|p| p.display().to_string()).collect(),
        usage: cg.usage(),
    };
    for e in cg.destroy() {
        eprintln!("cordon: warning: {e}");
    }
    out
}

/// Stop the egress proxy (the sandbox has ended) and take its counts.
pub(super) fn proxy_outcome(p: crate::net::proxy::Proxy) -> crate::outcome::ProxyCounts {
    let s = p.stop();
    crate::outcome::ProxyCounts {
        connections_allowed: s.connections_allowed,
        connections_denied: s.connections_denied,
        bytes_up: s.bytes_up,
        bytes_down: s.bytes_down,
        dns_denied: s.dns_denied,
    }
}

/// The egress proxy of mode `proxy`, started on the hand-off socket the
/// child sends its listeners over; on failure the child is killed and
/// reaped. `None` outside mode `proxy`.
pub(super) fn start_proxy(
    plan: &Plan,
    ch: &mut Channels,
    pid: libc::pid_t,
    pidfd: c_int,
) -> Result<Option<crate::net::proxy::Proxy>, LaunchError> {
    let Some(cfg) = &plan.supervisor.proxy else {
        return Ok(None);
    };
    let handoff = ch.net_r.take();
    // SAFETY: `handoff` was just taken out of its `Fd`, so this
    // `OwnedFd` is its only owner.
    let handoff = unsafe { std::os::fd::OwnedFd::from_raw_fd(handoff) };
    let audit = plan.supervisor.audit.as_ref().map(|a| a.log.clone());
    match crate::net::proxy::Proxy::start(cfg.clone(), handoff, audit) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
            // SAFETY: reaping our own child; null status is allowed.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            Err(LaunchError::sys(
                "proxy",
                "start the egress proxy",
                Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            ))
        }
    }
}

/// The three channels between cordon and its child: the sync pipe (the
/// child waits for the id maps), the error channel (a `ChildError`, or the
/// seccomp hand-off; a unix socket when notifying, so that the hand-off
/// carries the payload's pid) and the status pipe (init reports the
/// payload's wait status).
pub(super) struct Channels {
    sync_r: Fd,
    sync_w: Fd,
    err_w: Fd,
    status_r: Fd,
    status_w: Fd,
    /// The proxy hand-off socket (parent's end, child's end); -1 without
    /// a proxy.
    net_r: Fd,
    net_w: Fd,
    /// The workspace hand-off socket (parent's end, child's end); -1
    /// without a workspace.
    ws_r: Fd,
    ws_w: Fd,
    /// The pty hand-off socket (parent's end, child's end); -1 without a
    /// pty.
    tty_r: Fd,
    tty_w: Fd,
    /// A named sandbox's command socket (supervisor's end, init's end);
    /// -1 otherwise.
    pub(super) serve_r: Fd,
    serve_w: Fd,
    /// Read end of the error channel.
    pub(super) err_r: Fd,
}

impl Channels {
    pub(super) fn open(
        notifying: bool,
        proxy: bool,
        tty: bool,
        serve: bool,
    ) -> Result<Channels, LaunchError> {
        let pipe = |what: &str| {
            sys::pipe()
                .map(|(r, w)| (Fd(r), Fd(w)))
                .map_err(|e| LaunchError::sys("pipe", what.to_string(), e))
        };
        let (sync_r, sync_w) = pipe("sync")?;
        let (err_r, err_w) = if notifying {
            let pair = sys::seqpacket_pair().map_err(|e| LaunchError::sys("socketpair", "error", e))?;
            let pair = (Fd(pair.0), Fd(pair.1));
            sys::set_passcred(pair.0 .0).map_err(|e| LaunchError::sys("setsockopt", "SO_PASSCRED", e))?;
            pair
        } else {
            pipe("error")?
        };
        let (status_r, status_w) = pipe("status")?;
        let (net_r, net_w) = if proxy {
            let pair =
                sys::seqpacket_pair().map_err(|e| LaunchError::sys("socketpair", "proxy hand-off", e))?;
            (Fd(pair.0), Fd(pair.1))
        } else {
            (Fd(-1), Fd(-1))
        };
        let (tty_r, tty_w) = if tty {
            let pair =
                sys::seqpacket_pair().map_err(|e| LaunchError::sys("socketpair", "pty hand-off", e))?;
            (Fd(pair.0), Fd(pair.1))
        } else {
            (Fd(-1), Fd(-1))
        };
        let (serve_r, serve_w) = if serve {
            let pair =
                sys::seqpacket_pair().map_err(|e| LaunchError::sys("socketpair", "command socket", e))?;
            (Fd(pair.0), Fd(pair.1))
        } else {
            (Fd(-1), Fd(-1))
        };
        Ok(Channels {
            serve_r,
            serve_w,
            sync_r,
            sync_w,
            err_r,
            err_w,
            status_r,
            status_w,
            net_r,
            net_w,
            ws_r: Fd(-1),
            ws_w: Fd(-1),
            tty_r,
            tty_w,
        })
    }

    fn child_fds(&self) -> Fds {
        Fds {
            sync_read: self.sync_r.0,
            sync_write: self.sync_w.0,
            err_read: self.err_r.0,
            err_write: self.err_w.0,
            status_read: self.status_r.0,
            status_write: self.status_w.0,
            net_read: self.net_r.0,
            net_write: self.net_w.0,
            ws_read: self.ws_r.0,
            ws_write: self.ws_w.0,
            tty_read: self.tty_r.0,
            tty_write: self.tty_w.0,
            serve_read: self.serve_r.0,
            serve_write: self.serve_w.0,
        }
    }
}

/// Make the idmapped trees, clone the child and close the child's ends of
/// the channels. Returns its pid and pidfd.
pub(super) fn start_child(
    plan: &Plan,
    ch: &mut Channels,
    cgroup: Option<&Cgroup>,
) -> Result<(libc::pid_t, Fd), LaunchError> {
    // The idmapped binds: only host root can make them, so here, before
    // clone; the child moves them into place and closes its copies.
    let mut trees = Trees([-1; MAX_OPS]);
    mount::idmapped_trees(plan.child.mounts(), &mut trees.0).map_err(|e| {
        let d = describe_child_error(plan, e);
        LaunchError::sys(&d.step, d.detail, e.errno)
    })?;
    // The caller's terminal modes and size, for the payload's pty.
    let term = if plan.child.tty() {
        TermInit::capture()
    } else {
        TermInit::NONE
    };
    let cloned = clone_child(
        plan,
        ch.child_fds(),
        cgroup.and_then(Cgroup::clone_fd),
        &trees.0[..plan.child.mounts().ops.len().min(MAX_OPS)],
        &term,
    );
    drop(trees);
    let (pid, pidfd) = cloned?;
    // The child's ends (dropping an `Fd` closes it).
    drop(Fd(ch.sync_r.take()));
    drop(Fd(ch.err_w.take()));
    drop(Fd(ch.status_w.take()));
    drop(Fd(ch.net_w.take()));
    drop(Fd(ch.ws_w.take()));
    drop(Fd(ch.tty_w.take()));
    drop(Fd(ch.serve_w.take()));
    Ok((pid, Fd(pidfd)))
}

/// Write the id maps, release the child, then (while it builds the root)
/// set vm.memfd_noexec and attach it to v1 cgroups, and let the payload
/// start. On error the caller kills it.
pub(super) fn release_child(
    plan: &Plan,
    ch: &mut Channels,
    pid: libc::pid_t,
    pidfd: c_int,
    cgroup: Option<&Cgroup>,
) -> Result<(), LaunchError> {
    if plan.supervisor.memfd_noexec && !plan.child.second_sync() {
        // Without the second byte the payload could start before the sysctl.
        return Err(LaunchError::sys(
            "memfd_noexec",
            "the plan sets it without the second sync byte",
            Errno(libc::EINVAL),
        ));
    }
    write_maps(plan, pid)?;
    // Release the child: it builds the sandbox's root meanwhile.
    sys::write_all(ch.sync_w.0, b"1").map_err(|e| LaunchError::sys("sync", "release child", e))?;
    if plan.supervisor.memfd_noexec {
        // While the child builds the root, which runs nothing of the
        // payload's: the payload starts only at the second byte, once the
        // sysctl holds (the plan asks for that byte whenever this is set).
        if let Err((what, e)) = crate::isolate::memfd::set_noexec(pidfd) {
            if child_reported(ch) {
                // The child failed on its own (and its namespace went with
                // it, which is what failed here): its error, already on the
                // error pipe, is the one to report, and no payload starts
                // without the second byte.
                drop(Fd(ch.sync_w.take()));
                return Ok(());
            }
            return Err(LaunchError::sys("memfd_noexec", what, e));
        }
    }
    if let Some(cg) = cgroup {
        if plan.child.second_sync() {
            // v1: moving a process between cgroups waits for an RCU grace
            // period (milliseconds); the child builds its root meanwhile, so
            // nothing it runs is ever outside the cgroups.
            cg.attach(pid).map_err(cgroup_error)?;
        }
    }
    if plan.child.second_sync() {
        sys::write_all(ch.sync_w.0, b"2").map_err(|e| LaunchError::sys("sync", "payload may start", e))?;
    }
    drop(Fd(ch.sync_w.take()));
    Ok(())
}

/// Whether the child already wrote its setup error, or closed the error
/// pipe by dying (before the second byte it can have done neither else).
fn child_reported(ch: &Channels) -> bool {
    let mut p = [libc::pollfd {
        fd: ch.err_r.0,
        events: libc::POLLIN,
        revents: 0,
    }];
    sys::poll(&mut p, 0).is_ok_and(|n| n > 0)
}

/// The parent's end of the error channel and what came through it.
struct ErrorChannel {
    fd: c_int,
    open: bool,
    notifying: bool,
    buf: [u8; WIRE_SIZE],
    len: usize,
    /// The child's setup error, the first one.
    error: Option<ChildError>,
}

impl ErrorChannel {
    fn new(fd: c_int, notifying: bool) -> ErrorChannel {
        ErrorChannel {
            fd,
            open: true,
            notifying,
            buf: [0; WIRE_SIZE],
            len: 0,
            error: None,
        }
    }

    /// The channel is readable: take a message; the seccomp hand-off gives
    /// the notifier its listener.
    fn on_readable(&mut self, notifier: &mut Notifier) -> Result<(), LaunchError> {
        let got = if self.notifying {
            sys::recv_with_pid(self.fd, &mut self.buf).map(|(k, pid)| {
                self.len = 0;
                (k, pid)
            })
        } else {
            sys::read(self.fd, &mut self.buf[self.len..]).map(|k| (k, None))
        };
        let (k, sender) = match got {
            Ok((0, _)) | Err(_) => {
                self.open = false;
                return Ok(());
            }
            Ok(got) => got,
        };
        self.len += k;
        if self.len < WIRE_SIZE {
            return Ok(());
        }
        self.len = 0;
        match ChildError::decode(&self.buf) {
            Some(h) if h.step == Step::SeccompHandoff && self.notifying && notifier.fd.is_none() => {
                match sender {
                    Some(pid) => notifier.take(pid, h.index as c_int),
                    None => Err(LaunchError::sys(
                        "seccomp hand-off",
                        "the message carried no sender",
                        Errno(libc::EPROTO),
                    )),
                }
            }
            Some(e) if self.error.is_none() && e.step != Step::SeccompHandoff => {
                self.error = Some(e);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Read what is left once every writer is gone.
    fn drain(&mut self) {
        while self.open && self.error.is_none() {
            match sys::read(self.fd, &mut self.buf[self.len..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    self.len += k;
                    if self.len == WIRE_SIZE {
                        self.error = ChildError::decode(&self.buf).filter(|e| e.step != Step::SeccompHandoff);
                        self.len = 0;
                    }
                }
            }
        }
    }
}

/// The supervision loop's state: the wall-clock deadline and the grace
/// period after a forwarded terminating signal.
struct Supervision {
    pidfd: c_int,
    deadline: Option<Instant>,
    timed_out: bool,
    /// After a forwarded terminating signal: when the grace period ends.
    grace_end: Option<Instant>,
    grace_killed: bool,
    /// The pty hand-off socket, until init sent the master (-1: no pty).
    tty_sock: Fd,
    /// The relay between the caller's terminal and the pty, once the
    /// master arrived.
    relay: Option<Relay>,
    /// The status pipe, until init's report came (or EOF: -1).
    status_fd: c_int,
    /// init's report, once it came.
    report: Option<InitReport>,
    /// Whether supervision may end at a drained report, before init's own
    /// exit (the namespaces' teardown): nothing waits for init to be gone
    /// (no cgroup to read and remove).
    end_at_report: bool,
}

impl Supervision {
    /// Supervise until init exits, or until it reports that nothing else of
    /// the sandbox is left (with `end_at_report`): deadlines,
    /// notifications, the error channel and forwarded signals.
    fn run(
        &mut self,
        signals: Option<&SignalGuard>,
        notifier: &mut Notifier,
        errors: &mut ErrorChannel,
    ) -> Result<(), LaunchError> {
        loop {
            // Checked on every pass, whatever woke us: a payload that keeps
            // the notification fd or the signalfd busy cannot outrun its
            // limits.
            let now = Instant::now();
            self.enforce_deadlines(now);
            let fixed = [
                (self.pidfd, libc::POLLIN),
                (if errors.open { errors.fd } else { -1 }, libc::POLLIN),
                (signals.map_or(-1, |s| s.fd.0), libc::POLLIN),
                (notifier.fd.unwrap_or(-1), libc::POLLIN),
                (self.tty_sock.0, libc::POLLIN),
                (self.status_fd, libc::POLLIN),
            ]
            .map(|(fd, events)| libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            let idle = libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            };
            let relay_fds = self.relay.as_ref().map_or([idle; RELAY_FDS], Relay::poll_fds);
            let mut pfds = [idle; FIXED_FDS + RELAY_FDS];
            pfds[..FIXED_FDS].copy_from_slice(&fixed);
            pfds[FIXED_FDS..].copy_from_slice(&relay_fds);
            // SAFETY: pfds is a valid array of pollfd.
            let n = unsafe {
                libc::poll(
                    pfds.as_mut_ptr(),
                    pfds.len() as libc::nfds_t,
                    self.timeout_ms(now),
                )
            };
            if n < 0 {
                let e = Errno::last();
                if e.0 == libc::EINTR {
                    continue;
                }
                return Err(LaunchError::sys("poll", "supervise", e));
            }
            if n == 0 {
                continue;
            }
            if pfds[3].revents & libc::POLLIN != 0 {
                // A bounded batch: then the deadline, signals and the pidfd
                // are looked at again.
                notifier
                    .handle_batch(NOTIFY_BATCH)
                    .map_err(|e| LaunchError::sys("seccomp notification", "receive or answer", e))?;
            } else if pfds[3].revents != 0 {
                // Every task that used the filter is gone.
                if let Some(fd) = notifier.fd.take() {
                    // SAFETY: the notifier owned the listener and gave it up
                    // with `take`: nothing uses it after this close.
                    unsafe { sys::close(fd) };
                }
            }
            if pfds[1].revents != 0 {
                errors.on_readable(notifier)?;
            }
            if pfds[2].revents != 0 {
                if let Some(s) = signals {
                    self.forward_signal(s);
                }
            }
            if pfds[4].revents != 0 {
                self.take_master();
            }
            if let Some(r) = self.relay.as_mut() {
                r.on_events(&pfds[FIXED_FDS..]);
            }
            if pfds[0].revents != 0 {
                return Ok(());
            }
            if pfds[5].revents != 0 {
                self.read_report();
                if self.end_at_report && self.report.is_some_and(|r| r.drained) && !self.timed_out {
                    return Ok(());
                }
            }
        }
    }

    /// The status pipe is readable: init's report, or EOF (init ended
    /// without one: it failed, or was killed). Either way it is read once.
    fn read_report(&mut self) {
        let mut b = [0u8; InitReport::LEN];
        if let Ok(InitReport::LEN) = sys::read(self.status_fd, &mut b) {
            self.report = Some(InitReport::decode(&b));
        }
        self.status_fd = -1;
    }

    /// The pty hand-off socket is readable: init sent the master (the
    /// relay starts), or it ended without (EOF: it failed first).
    fn take_master(&mut self) {
        let mut got = [-1; sys::MAX_PASSED_FDS];
        let n = sys::recv_fds(self.tty_sock.0, &mut got).unwrap_or(0);
        drop(Fd(self.tty_sock.take()));
        for (i, &fd) in got.iter().enumerate().take(n) {
            if i == 0 && self.relay.is_none() {
                // SAFETY: `fd` was just received, close-on-exec, and
                // nothing else owns it.
                let master = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
                self.relay = Some(Relay::start(master));
            } else {
                // SAFETY: a received fd nothing else owns; closed once.
                unsafe { sys::close(fd) };
            }
        }
    }

    fn enforce_deadlines(&mut self, now: Instant) {
        if !self.timed_out && self.deadline.is_some_and(|d| now >= d) {
            // SIGKILL to the namespace's init tears down every process in
            // it, double-forked daemons included.
            self.timed_out = true;
            let _ = sys::pidfd_send_signal(self.pidfd, libc::SIGKILL);
        }
        if !self.grace_killed && self.grace_end.is_some_and(|g| now >= g) {
            self.grace_killed = true;
            let _ = sys::pidfd_send_signal(self.pidfd, libc::SIGKILL);
        }
    }

    /// poll's timeout: until the next deadline, rounded up to a whole
    /// millisecond; -1 without one.
    fn timeout_ms(&self, now: Instant) -> c_int {
        let wake = [
            self.deadline.filter(|_| !self.timed_out),
            self.grace_end.filter(|_| !self.grace_killed),
        ]
        .into_iter()
        .flatten()
        .min();
        match wake {
            Some(d) => {
                let left = d.saturating_duration_since(now);
                left.as_millis().min(i32::MAX as u128) as c_int + i32::from(left.subsec_micros() % 1000 != 0)
            }
            None => -1,
        }
    }

    /// Forward one signal from the signalfd to the sandbox.
    fn forward_signal(&mut self, s: &SignalGuard) {
        // SAFETY: a zeroed signalfd_siginfo is a valid buffer.
        let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        // SAFETY: si is valid for its size.
        let k = unsafe {
            libc::read(
                s.fd.0,
                (&mut si as *mut libc::signalfd_siginfo).cast(),
                std::mem::size_of_val(&si),
            )
        };
        if k != std::mem::size_of_val(&si) as isize {
            return;
        }
        let sig = si.ssi_signo as c_int;
        if sig == libc::SIGWINCH {
            // The caller's terminal changed size: the pty follows (not
            // forwarded: the kernel signals the pty's foreground group).
            if let Some(r) = &self.relay {
                r.resize();
            }
            return;
        }
        let _ = sys::pidfd_send_signal(self.pidfd, sig);
        if TERMINATING.contains(&sig) {
            TERMINATING_FORWARDED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // A stopped payload keeps the signal pending forever: continue
            // it (init forwards SIGCONT to the payload), and end the whole
            // sandbox if it has not ended by the end of the grace period,
            // or at once on a second terminating signal.
            let _ = sys::pidfd_send_signal(self.pidfd, libc::SIGCONT);
            match self.grace_end {
                None => self.grace_end = Some(Instant::now() + TERM_GRACE),
                Some(_) if !self.grace_killed => {
                    self.grace_killed = true;
                    let _ = sys::pidfd_send_signal(self.pidfd, libc::SIGKILL);
                }
                Some(_) => {}
            }
        }
    }
}

/// wait4 for init: its status and resource usage.
pub(super) fn reap(pid: libc::pid_t) -> Result<(c_int, libc::rusage), LaunchError> {
    let mut status: c_int = 0;
    // SAFETY: a zeroed rusage is a valid out-buffer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    sys::retry(|| {
        // SAFETY: status and ru are valid out-pointers; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(r)
        }
    })
    .map_err(|e| LaunchError::sys("wait4", format!("pid {pid}"), e))?;
    Ok((status, ru))
}

/// How the sandbox ended, as the supervisor saw it.
struct Ended {
    wall: Duration,
    ru: libc::rusage,
    /// init's wait status.
    init_status: c_int,
    /// The payload's wait status, as init reported it.
    payload_status: Option<c_int>,
    timed_out: bool,
    child_error: Option<ChildError>,
}

/// The outcome of a run that ended.
fn outcome(plan: &Plan, ended: Ended, notifier: &mut Notifier, cgroup_out: Option<CgroupOutcome>) -> Outcome {
    let mut out = Outcome {
        status: Status::Exited,
        exit_code: 0,
        signal: None,
        wall_time_ms: ended.wall.as_millis() as u64,
        user_time_ms: timeval_ms(ended.ru.ru_utime),
        system_time_ms: timeval_ms(ended.ru.ru_stime),
        max_rss_kb: ended.ru.ru_maxrss as u64,
        supervisor_max_rss_kb: self_max_rss_kb(),
        unenforced: plan
            .supervisor
            .unenforced
            .iter()
            .chain(&plan.supervisor.unenforced_quiet)
            .cloned()
            .collect(),
        limits_hit: Vec::new(),
        host_uid: Some(plan.child.ids().host_uid),
        host_gid: Some(plan.child.ids().host_gid),
        cgroup: None,
        network: Some(crate::outcome::NetworkOutcome {
            mode: plan.supervisor.network.name(),
            proxy: None,
        }),
        violations: std::mem::take(&mut notifier.violations),
        violations_total: notifier.violations_total,
        learned: matches!(plan.supervisor.supervise, Supervise::Learn { .. })
            .then(|| std::mem::take(&mut notifier.learned)),
        error: None,
        audit_dropped: None,
        workspaces: Vec::new(),
    };
    set_status(plan, &mut out, &ended);
    let oom = cgroup_out.as_ref().and_then(|c| c.usage.oom_kills).unwrap_or(0) > 0;
    if oom && out.status == Status::Signaled && out.signal == Some(libc::SIGKILL) {
        out.status = Status::OomKilled;
    }
    let payload_signal = ended
        .payload_status
        .filter(|&st| libc::WIFSIGNALED(st))
        .map(|st| libc::WTERMSIG(st));
    out.limits_hit = crate::outcome::limits_hit(
        ended.timed_out,
        payload_signal,
        cgroup_out.as_ref().map(|c| &c.usage),
    );
    out.cgroup = cgroup_out;
    out
}

/// Status, exit code, signal and error: the timeout first, then a setup
/// error, then the payload's own status, then init's.
fn set_status(plan: &Plan, out: &mut Outcome, ended: &Ended) {
    let status = ended.init_status;
    if ended.timed_out {
        out.status = Status::TimedOut;
        out.exit_code = EXIT_TIMEOUT;
        out.signal = Some(libc::SIGKILL);
    } else if let Some(e) = ended.child_error {
        out.status = Status::SetupFailed;
        out.exit_code = if e.step == Step::Exec {
            exec_exit_code(e.errno)
        } else {
            EXIT_SETUP
        };
        out.error = Some(describe_child_error(plan, e));
    } else if let Some(st) = ended.payload_status {
        if libc::WIFEXITED(st) {
            out.exit_code = libc::WEXITSTATUS(st);
        } else {
            out.status = Status::Signaled;
            out.signal = Some(libc::WTERMSIG(st));
            out.exit_code = 128 + libc::WTERMSIG(st);
        }
    } else if libc::WIFSIGNALED(status) {
        // init itself was killed (e.g. SIGKILL forwarded from outside).
        out.status = Status::Signaled;
        out.signal = Some(libc::WTERMSIG(status));
        out.exit_code = 128 + libc::WTERMSIG(status);
    } else {
        out.status = Status::SetupFailed;
        out.exit_code = EXIT_SETUP;
        out.error = Some(LaunchError::other(
            "init",
            format!(
                "exited with status {} before the payload ran",
                libc::WEXITSTATUS(status)
            ),
        ));
    }
}

/// The parent's copies of the idmapped trees, closed once the child has its own.
struct Trees([c_int; MAX_OPS]);

impl Drop for Trees {
    fn drop(&mut self) {
        for &t in &self.0 {
            if t >= 0 {
                // SAFETY: `t` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
                unsafe { sys::close(t) };
            }
        }
    }
}

/// Removes the sandbox's cgroup on every early return.
pub(super) struct CgGuard(pub(super) Option<Cgroup>);

impl Drop for CgGuard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            cg.destroy();
        }
    }
}

pub(super) fn cgroup_error(e: crate::cgroup::CgroupError) -> LaunchError {
    let hint = match e.errno {
        libc::EACCES | libc::EPERM | libc::EROFS => Some(
            crate::cgroup::probe::cgroup_advice()
                .unwrap_or_else(|| "cordon cannot write this cgroup: run it as root or in a delegated cgroup v2 subtree".to_string()),
        ),
        libc::EBUSY => Some("the parent cgroup has processes of its own, so controllers cannot be enabled for its children (cgroup v2's no-internal-processes rule): choose limits.cgroup_parent, or start cordon in a cgroup of its own".to_string()),
        _ => None,
    };
    let err = LaunchError::sys(
        "cgroup",
        format!(
            "{}{}",
            e.path.display(),
            e.value.map(|v| format!(" <- {v:?}")).unwrap_or_default()
        ),
        Errno(e.errno),
    );
    match hint {
        Some(h) => err.with_hint(h),
        None => err,
    }
}

/// How long a run may take at most, for callers that need a bound.
pub fn effective_timeout(plan: &Plan) -> Option<Duration> {
    plan.supervisor.wall_time
}
