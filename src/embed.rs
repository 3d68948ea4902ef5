//! cordon as a library: supervised sandboxes ([`Sandbox`]) and a
//! restriction step for someone else's process spawn ([`prepare`] and
//! [`Prepared::apply`], for `std::process::Command::pre_exec` or a raw fork).
//!
//! # What works where
//!
//! | layer | [`Sandbox::spawn`] | [`Prepared::apply`] / `cordon exec` |
//! |---|---|---|
//! | user namespace, single-id map (written from inside) | yes | yes |
//! | mount, ipc, uts, net, cgroup namespaces | yes | yes |
//! | the policy's mounts and `pivot_root` | yes | yes, except `proc` (needs a pid namespace) |
//! | hostname, loopback, new session, working directory | yes | yes |
//! | rlimits, capability bounding set, no capabilities, `no_new_privs` | yes | yes |
//! | inherited fds above 2 closed at exec | yes | yes |
//! | Landlock, seccomp | yes | yes |
//! | pid namespace with cordon's init | yes | no: needs a supervisor |
//! | cgroup limits | yes | no: needs a supervisor |
//! | wall-clock limit | yes | no: needs a supervisor |
//! | seccomp violation reports | yes | no: needs a supervisor |
//!
//! [`prepare`] refuses a policy that asks for a supervisor-only layer and
//! says which; `policies/exec.json` is the default policy without them.
//!
//! Started by root, [`Prepared::apply`] first becomes the policy's host id,
//! then creates the user namespace as that unprivileged user, so the payload
//! never maps to host root. Before that it makes the idmapped mounts of the
//! writable binds (only host root can), which the new mount namespace then
//! attaches. Unless `identity.host_uid`/`host_gid` name one,
//! [`prepare`] takes a host id of cordon's range for the [`Prepared`] (see
//! [`crate::isolate::hostid`]): every process a `Prepared` restricts runs as
//! that id, so prepare once per sandbox. The id stays taken while the
//! `Prepared` lives and, after, while any process still runs as it.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;

use crate::error::{ChildError, LaunchError, Step};
use crate::isolate::mount;
use crate::launch::sequence::{self, Mode};
use crate::outcome::Outcome;
use crate::plan::Plan;
use crate::policy::{Mount, Namespace, Policy, PolicyError};
use crate::secret::{Secret, SecretEnv, SecretError};
use crate::sys::{self, Errno};

/// Why [`Prepared::apply`] failed: the step, errno and the item (mount,
/// rlimit, rule) index. `Copy`, made without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyError {
    /// The step that failed.
    pub step: Step,
    /// Its errno.
    pub errno: i32,
    /// Which item of the step (mount, rlimit, rule), when it has several.
    pub index: u32,
}

impl From<ChildError> for ApplyError {
    fn from(e: ChildError) -> ApplyError {
        ApplyError {
            step: e.step,
            errno: e.errno.0,
            index: e.index,
        }
    }
}

impl From<ApplyError> for std::io::Error {
    /// The errno as an `io::Error` (no allocation), as `pre_exec` wants.
    fn from(e: ApplyError) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.errno)
    }
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (item {}): {}",
            self.step.name(),
            self.index,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for ApplyError {}

/// A policy compiled for in-process use: everything [`Prepared::apply`]
/// needs, computed up front.
#[derive(Debug)]
pub struct Prepared {
    plan: Plan,
    /// Namespaces to unshare (CLONE_NEW*).
    unshare: c_int,
    /// Started by root: become these host ids before unsharing.
    drop_to: Option<(u32, u32)>,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

/// The layers of `policy` that need cordon's supervisor, as field names.
pub fn supervisor_only(policy: &Policy) -> Vec<String> {
    let mut v = Vec::new();
    if policy.has_namespace(Namespace::Pid) {
        v.push("namespaces: \"pid\" (needs cordon's init as pid 1)".to_string());
    }
    if policy.mounts.iter().any(|m| matches!(m, Mount::Proc { .. })) {
        v.push("mounts: a \"proc\" mount (needs the pid namespace)".to_string());
    }
    if !crate::cgroup::CgLimits::from_policy(&policy.limits).is_empty() {
        v.push(
            "limits: memory/memory_swap/pids/cpus (cgroups need a supervisor to create and remove them)"
                .to_string(),
        );
    }
    if policy.limits.cgroup_parent.is_some() {
        v.push("limits.cgroup_parent (cgroups need a supervisor)".to_string());
    }
    if policy.limits.wall_time.is_some() {
        v.push("limits.wall_time (needs a supervisor to kill the sandbox)".to_string());
    }
    if policy.seccomp.as_ref().is_some_and(|s| s.report) {
        v.push("seccomp.report (needs a supervisor to answer notifications)".to_string());
    }
    if policy.audit.is_some() {
        v.push("audit (needs a supervisor to write the events)".to_string());
    }
    if !policy.workspaces.is_empty() {
        v.push("workspaces (need a supervisor to read, export and apply the changes)".to_string());
    }
    v
}

/// Compile `policy` for [`Prepared::apply`]. Fails on an invalid policy,
/// on host checks (bind sources, the sensitive list), and on layers that
/// need a supervisor (see the module documentation).
///
/// ```no_run
/// use std::os::unix::process::CommandExt;
/// let policy = cordon::Policy::from_json("exec.json", cordon::policy::EXEC_POLICY_JSON)?;
/// let prepared = std::sync::Arc::new(cordon::prepare(&policy)?);
/// let mut cmd = std::process::Command::new("/usr/bin/id");
/// let p = prepared.clone();
/// // SAFETY: `apply` allocates nothing, takes no lock and only makes
/// // system calls, so it is sound between fork and exec.
/// unsafe { cmd.pre_exec(move || p.apply().map_err(Into::into)) };
/// let status = cmd.status()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn prepare(policy: &Policy) -> Result<Prepared, PolicyError> {
    prepare_for(policy, "<policy>", &["/bin/true"])
}

/// [`prepare`] with the command that `cordon exec` runs after applying.
pub fn prepare_for(policy: &Policy, file: &str, argv: &[impl AsRef<OsStr>]) -> Result<Prepared, PolicyError> {
    prepare_with_secrets(policy, file, argv, &[])
}

/// [`prepare_for`] with secrets for the command's environment (`cordon
/// exec --secret-env`): in its `envp` only, winning over a policy variable
/// of the same name, zeroed when the [`Prepared`] is dropped.
pub fn prepare_with_secrets(
    policy: &Policy,
    file: &str,
    argv: &[impl AsRef<OsStr>],
    secrets: &[SecretEnv],
) -> Result<Prepared, PolicyError> {
    if policy.network_mode() == crate::policy::NetMode::Proxy {
        return Err(PolicyError {
            file: file.to_string(),
            path: "network.mode".to_string(),
            position: None,
            message: "mode \"proxy\" needs cordon's supervisor, which runs the egress proxy: cordon exec and the library's pre-exec step have none; use cordon run (or Sandbox), or mode \"none\" or \"host\"".to_string(),
        });
    }
    let refused = supervisor_only(policy);
    if !refused.is_empty() {
        return Err(PolicyError {
            file: file.to_string(),
            path: String::new(),
            position: None,
            message: format!(
                "without a supervisor (cordon exec, or the library's pre-exec step) these cannot be enforced: {}; use cordon run, or a policy without them such as policies/exec.json",
                refused.join("; ")
            ),
        });
    }
    if !policy.has_namespace(Namespace::User) {
        return Err(PolicyError {
            file: file.to_string(),
            path: "namespaces".into(),
            position: None,
            message: "the user namespace is required".into(),
        });
    }
    let mut plan = Plan::build_with_secrets(policy, file, argv, secrets)?;
    // apply() runs after fork: its panics must not reach a hook.
    sequence::install_panic_guard();
    // vm.memfd_noexec is per pid namespace, and without one of its own the
    // payload shares its caller's.
    plan.supervisor.unenforced.push(
        "memfd_noexec: without a pid namespace of its own (cordon exec, the pre-exec API) vm.memfd_noexec cannot be set for the payload alone, so it may execute code it writes into a memfd; use cordon run".to_string(),
    );
    if let Some(lease) = plan.supervisor.host_id.as_mut() {
        // Processes restricted by this Prepared may outlive it.
        lease.set_release(crate::isolate::hostid::Release::Linger);
    }
    // Everything but the pid namespace, which needs cordon's init.
    let unshare =
        (crate::isolate::ids::clone_flags(&policy.namespaces) & !(libc::CLONE_NEWPID as u64)) as c_int;
    let ids = &plan.child.ids();
    let drop_to = (!ids.rootless).then_some((ids.host_uid, ids.host_gid));
    Ok(Prepared {
        uid_map: ids.uid_map().into_bytes(),
        gid_map: ids.gid_map().into_bytes(),
        plan,
        unshare,
        drop_to,
    })
}

impl Prepared {
    /// Restrict the calling process as the policy says. Safe between fork
    /// and exec in a multi-threaded program: it allocates nothing, takes
    /// no lock and uses no thread-local state besides errno; it only reads
    /// `self` and makes system calls. Afterwards the process has no
    /// capabilities, `no_new_privs`, Landlock and seccomp in force, and
    /// every fd above 2 is close-on-exec: only `execve` is left to do.
    ///
    /// Call it once per process; on error the process is half-restricted
    /// and must not go on (exit or let `pre_exec` fail the spawn).
    pub fn apply(&self) -> Result<(), ApplyError> {
        self.apply_inner().map_err(ApplyError::from)
    }

    fn apply_inner(&self) -> Result<(), ChildError> {
        // A panic in the restricted process exits at once (the guard was
        // installed by `prepare_for`).
        sequence::mark_child();
        let plan = &self.plan;
        // Idmapped binds need host root: make them before dropping it.
        let mut trees = [-1 as c_int; mount::MAX_OPS];
        if self.unshare & libc::CLONE_NEWNS != 0 {
            mount::idmapped_trees(plan.child.mounts(), &mut trees)?;
        }
        if let Err(e) = self.enter() {
            for &t in &trees {
                if t >= 0 {
                    // SAFETY: `t` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
                    unsafe { sys::close(t) };
                }
            }
            return Err(e);
        }
        if self.unshare & libc::CLONE_NEWNS != 0 {
            // Takes over the trees.
            let n = plan.child.mounts().ops.len().min(mount::MAX_OPS);
            mount::apply(plan.child.mounts(), plan.child.staging(), &trees[..n])?;
        }
        self.restrict()
    }

    /// Become the host id and enter the namespaces.
    fn enter(&self) -> Result<(), ChildError> {
        let at = |step: Step| move |e: Errno| ChildError::new(step, e, 0);
        if let Some((uid, gid)) = self.drop_to {
            // Root: become the unprivileged host id first, so the user
            // namespace is created by (and maps to) that id, never root.
            sys::clear_groups().map_err(|e| ChildError::new(Step::Identity, e, 0))?;
            sys::setresgid(gid).map_err(|e| ChildError::new(Step::Identity, e, 1))?;
            sys::setresuid(uid).map_err(|e| ChildError::new(Step::Identity, e, 2))?;
        }
        // An identity change made us non-dumpable, which hides
        // /proc/self/*_map from ourselves; exec resets this anyway.
        sys::prctl(libc::PR_SET_DUMPABLE, 1, 0).map_err(at(Step::Dumpable))?;
        sys::unshare(self.unshare).map_err(at(Step::Unshare))?;
        sys::write_file(c"/proc/self/setgroups", b"deny")
            .map_err(|e| ChildError::new(Step::IdMapSelf, e, 0))?;
        sys::write_file(c"/proc/self/gid_map", &self.gid_map)
            .map_err(|e| ChildError::new(Step::IdMapSelf, e, 1))?;
        sys::write_file(c"/proc/self/uid_map", &self.uid_map)
            .map_err(|e| ChildError::new(Step::IdMapSelf, e, 2))?;
        Ok(())
    }

    /// Everything after the root is built: the steps `cordon run`'s
    /// payload takes too, from the one sequence.
    fn restrict(&self) -> Result<(), ChildError> {
        sequence::host_and_session(&self.plan.child, Mode::InProcess, false)?;
        sequence::restrict(&self.plan.child, Mode::InProcess, -1)
    }

    /// [`Prepared::apply`], then exec the command given to [`prepare_for`]
    /// (searched on the sandbox's `PATH` as execvp does, with the policy's
    /// environment). Returns only on failure.
    pub fn apply_and_exec(&self) -> ApplyError {
        if let Err(e) = self.apply() {
            return e;
        }
        sequence::exec_search(self.plan.child.exec()).into()
    }

    /// What the policy asked that this kernel cannot enforce (best effort).
    pub fn unenforced(&self) -> &[String] {
        &self.plan.supervisor.unenforced
    }

    /// A failed step described with the plan's names for its items
    /// (mount, rlimit, rule, command), with a hint where one helps.
    pub fn describe(&self, e: ApplyError) -> LaunchError {
        crate::launch::parent::describe_child_error(
            &self.plan,
            ChildError::new(e.step, Errno(e.errno), e.index),
        )
    }
}

/// A supervised sandbox, as `cordon run` makes: spawn any number of them
/// from one process, each with its own pid namespace, cgroup and timeout.
///
/// ```no_run
/// let policy = cordon::Policy::builtin_default()?;
/// let child = cordon::Sandbox::new(policy).spawn(&["/usr/bin/python3", "-c", "print(6 * 7)"])?;
/// let outcome = child.wait()?;
/// assert_eq!(outcome.exit_code, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Sandbox {
    policy: Policy,
    name: String,
    stdio: [Option<OwnedFd>; 3],
    secrets: Vec<SecretEnv>,
    secret_error: Option<SecretError>,
    audit: Option<crate::audit::AuditLog>,
}

/// cordon's one error type: each variant carries the typed error of the
/// layer that failed, with what that layer knows (file, JSON path and
/// line:column for the policy; step, path and errno for the launch; the
/// file, the value written and errno for a cgroup; the child's
/// `{step, errno, index}`). Every layer error converts into it with `?`.
#[derive(Debug)]
pub enum Error {
    /// The policy (or the command) is invalid, or asks for what this host
    /// cannot enforce.
    Policy(PolicyError),
    /// The seccomp section does not compile.
    Seccomp(crate::seccomp::SeccompError),
    /// A cgroup file could not be made, written or read.
    Cgroup(crate::cgroup::CgroupError),
    /// Setting the sandbox up failed in the parent, or the child reported
    /// the step it failed at.
    Launch(LaunchError),
    /// [`Prepared::apply`] failed (the child's record, made without
    /// allocating).
    Apply(ApplyError),
    /// An output file (`--status-json`, `learn -o`) could not be written.
    Output(crate::output::WriteError),
    /// A secret was refused (its name, its source, its value); the error
    /// never holds the value.
    Secret(SecretError),
}

/// What [`Sandbox::spawn`] fails with: the crate's [`Error`].
pub type SpawnError = Error;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Policy(e) => write!(f, "{e}"),
            Error::Seccomp(e) => write!(f, "{e}"),
            Error::Cgroup(e) => write!(f, "{e}"),
            Error::Launch(e) => write!(f, "{e}"),
            Error::Apply(e) => write!(f, "{e}"),
            Error::Output(e) => write!(f, "{e}"),
            Error::Secret(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(match self {
            Error::Policy(e) => e,
            Error::Seccomp(e) => e,
            Error::Cgroup(e) => e,
            Error::Launch(e) => e,
            Error::Apply(e) => e,
            Error::Output(e) => e,
            Error::Secret(e) => e,
        })
    }
}

macro_rules! from_layer {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Error {
                Error::$variant(e)
            }
        }
    )*};
}

from_layer!(
    Policy(PolicyError),
    Seccomp(crate::seccomp::SeccompError),
    Cgroup(crate::cgroup::CgroupError),
    Launch(LaunchError),
    Apply(ApplyError),
    Output(crate::output::WriteError),
    Secret(SecretError)
);

/// A running sandbox.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    thread: std::thread::JoinHandle<Result<Outcome, LaunchError>>,
}

impl Sandbox {
    /// A sandbox for `policy`.
    pub fn new(policy: Policy) -> Sandbox {
        Sandbox {
            policy,
            name: "<policy>".to_string(),
            stdio: [None, None, None],
            secrets: Vec::new(),
            secret_error: None,
            audit: None,
        }
    }

    /// Give the payload the secret `value` as the environment variable
    /// `name`, for this sandbox only. A secret is per-run input, not policy:
    /// it never enters the [`Policy`] (nor its JSON), only the payload's
    /// environment, where it wins over a policy variable of the same name
    /// (a second secret of the same name replaces the first). The value is
    /// zeroed in this process once the sandbox's plan is dropped, and no
    /// `Debug` output or error shows it.
    ///
    /// `name` must be a portable shell name and not `PATH`; the value must
    /// not hold a NUL byte. Otherwise [`Sandbox::spawn`] fails with
    /// [`Error::Secret`].
    ///
    /// ```no_run
    /// let token = cordon::Secret::read_file(std::path::Path::new("/run/token"))?;
    /// let child = cordon::Sandbox::new(cordon::Policy::builtin_default()?)
    ///     .secret_env("TOKEN", token)
    ///     .spawn(&["/bin/sh", "-c", "test -n \"$TOKEN\""])?;
    /// assert_eq!(child.wait()?.exit_code, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn secret_env(mut self, name: &str, value: impl Into<Secret>) -> Sandbox {
        match SecretEnv::new("Sandbox::secret_env", name, value.into()) {
            Ok(s) => self.secrets.push(s),
            Err(e) => {
                self.secret_error.get_or_insert(e);
            }
        }
        self
    }

    /// Write this sandbox's audit events to `log` (one already open, e.g.
    /// [`AuditLog::for_another_sandbox`](crate::audit::AuditLog::for_another_sandbox)
    /// of `cordon serve`'s `--audit-log`) instead of the policy's
    /// `audit.path`, which is then not opened.
    #[doc(hidden)]
    pub fn audit_log(mut self, log: crate::audit::AuditLog) -> Sandbox {
        self.audit = Some(log);
        self
    }

    /// Name the policy in errors (e.g. its file name).
    pub fn named(mut self, name: &str) -> Sandbox {
        self.name = name.to_string();
        self
    }

    /// Give the payload these as stdin, stdout and stderr (`None`: the
    /// calling process's own). Typically pipe ends, to capture output, or
    /// a connection (`cordon serve`). They are closed in this process as
    /// soon as the sandbox's init exists (it has its own copies): by the
    /// time [`Sandbox::spawn`] returns.
    pub fn stdio(
        mut self,
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> Sandbox {
        self.stdio = [stdin, stdout, stderr];
        self
    }

    /// Start `argv` in the sandbox. The sandbox is supervised by a thread
    /// of this process (which also keeps the parent-death signal tied to a
    /// thread that lives as long as the sandbox); [`Child::wait`] joins it.
    pub fn spawn<S: AsRef<OsStr>>(mut self, argv: &[S]) -> Result<Child, SpawnError> {
        if let Some(e) = self.secret_error {
            return Err(SpawnError::Secret(e));
        }
        if self.audit.is_some() {
            // The given log replaces the policy's own.
            self.policy.audit = None;
        }
        self.policy
            .check_supervised(&self.name)
            .map_err(SpawnError::Policy)?;
        let mut plan = Plan::build_with_secrets(&self.policy, &self.name, argv, &self.secrets)
            .map_err(SpawnError::Policy)?;
        // The plan holds its own copies (zeroed with it); these are zeroed now.
        drop(self.secrets);
        if let Some(log) = self.audit {
            plan.supervisor.audit = Some(crate::audit::AuditRun::new(log, &self.policy, &self.name));
        }
        let stdio = self.stdio;
        for (i, fd) in stdio.iter().enumerate() {
            plan.child
                .set_stdio(i, fd.as_ref().map_or(-1, AsRawFd::as_raw_fd));
        }
        let (tx, rx) = std::sync::mpsc::channel::<(libc::pid_t, Result<OwnedFd, Errno>)>();
        let thread = std::thread::spawn(move || {
            let mut stdio = Some(stdio);
            let mut report = |pid: libc::pid_t, pidfd: c_int| {
                // The sandbox's init has its own copies of the stdio fds
                // from the clone: ours close now, so that the payload
                // closing its own (a socket, a pipe) is seen at once by the
                // other end, not only when the sandbox ends.
                drop(stdio.take());
                // The errno is read here, on the thread whose call failed.
                let owned = sys::dup_above(pidfd, 3).map(|dup| {
                    // SAFETY: dup_above returned a new fd that nothing else
                    // owns; the Child takes it.
                    unsafe { OwnedFd::from_raw_fd(dup) }
                });
                let _ = tx.send((pid, owned));
            };
            let out = crate::launch::parent::run_reporting(
                &plan,
                crate::launch::RunOptions {
                    forward_signals: false,
                    print_violations: false,
                    leave_init: false,
                },
                &mut report,
            );
            // Not started: ours close here.
            drop(stdio);
            out
        });
        match rx.recv() {
            Ok((pid, Ok(pidfd))) => Ok(Child { pid, pidfd, thread }),
            Ok((_, Err(errno))) => {
                let _ = thread.join();
                Err(SpawnError::Launch(LaunchError::sys("pidfd", "dup", errno)))
            }
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(SpawnError::Launch(e)),
                _ => Err(SpawnError::Launch(LaunchError::sys(
                    "supervisor",
                    "thread",
                    Errno(libc::EIO),
                ))),
            },
        }
    }
}

impl Sandbox {
    /// Make a named, long-lived sandbox: its init builds the root, the
    /// cgroup and the namespaces once, then runs any number of commands
    /// ([`Session::run`](crate::launch::session::Session::run), or
    /// [`Session::command`](crate::launch::session::Session::command) for
    /// env, cwd, stdio and a time limit) until the session is stopped or
    /// dropped. Files written by one command are seen by the next; the
    /// commands share the sandbox's uid, files and processes, as
    /// `docker exec` does. Each gets the per-process layers of a cold run
    /// (rlimits, no capabilities, no_new_privs, Landlock, seccomp) and its
    /// own process group, which its time limit kills. The policy's
    /// `limits.wall_time` is each command's default time limit.
    ///
    /// The sandbox is made from a thread of the session's own, which
    /// lives until the session stops (init's parent-death signal follows
    /// the thread that made it): the session may outlive the thread that
    /// calls `create`. The session dies with this process.
    ///
    /// Not (yet) in a named sandbox, refused with the field named:
    /// workspaces, audit; `seccomp.report` is listed as unenforced (the
    /// refusals apply without reports).
    ///
    /// ```no_run
    /// let policy = cordon::Policy::builtin_default()?;
    /// let mut s = cordon::Sandbox::new(policy).create()?;
    /// s.run(&["/bin/sh", "-c", "echo hi > /tmp/f"])?;
    /// assert_eq!(s.run(&["/bin/cat", "/tmp/f"])?.exit_code, 0);
    /// s.stop();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(self) -> Result<crate::launch::session::Session, Error> {
        if let Some(e) = self.secret_error {
            return Err(Error::Secret(e));
        }
        self.policy.check_supervised(&self.name)?;
        let plan = Plan::build_serving(&self.policy, &self.name, &self.secrets)?;
        drop(self.secrets);
        Ok(crate::launch::session::Session::create(plan)?)
    }
}

impl Child {
    /// The sandbox's init, in this process's pid namespace.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// A pidfd for the sandbox's init.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.pidfd.as_fd()
    }

    /// Kill every process of the sandbox (SIGKILL to its init).
    pub fn kill(&self) -> std::io::Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc::SIGKILL)
            .map_err(|e| std::io::Error::from_raw_os_error(e.0))
    }

    /// Wait for the sandbox to end and return its outcome.
    pub fn wait(self) -> Result<Outcome, Error> {
        match self.thread.join() {
            Ok(r) => Ok(r?),
            Err(_) => Err(LaunchError::sys("supervisor", "thread panicked", Errno(libc::EIO)).into()),
        }
    }
}

/// Build a [`Policy`] in code, starting from cordon's default policy.
///
/// ```
/// let policy = cordon::PolicyBuilder::default_policy()
///     .ro_bind("/srv/models", "/models")
///     .env("LANG", "C.UTF-8")
///     .build()?;
/// assert!(policy.mounts.iter().any(|m| m.dst() == "/models"));
/// # Ok::<(), cordon::PolicyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PolicyBuilder {
    policy: Result<Policy, PolicyError>,
    ov: crate::policy::overrides::Overrides,
}

impl PolicyBuilder {
    /// Start from the built-in default policy.
    pub fn default_policy() -> PolicyBuilder {
        PolicyBuilder::from(Policy::builtin_default())
    }

    /// Start from the built-in policy for `cordon exec` and pre-exec use.
    pub fn exec_policy() -> PolicyBuilder {
        PolicyBuilder::from(Policy::from_json(
            "<exec policy>",
            crate::policy::EXEC_POLICY_JSON,
        ))
    }

    fn from(p: Result<Policy, PolicyError>) -> PolicyBuilder {
        PolicyBuilder {
            policy: p,
            ov: Default::default(),
        }
    }

    /// Bind a host path read-only.
    pub fn ro_bind(mut self, src: &str, dst: &str) -> Self {
        self.ov.mounts.push((
            format!("ro_bind({src})"),
            Mount::Bind {
                src: src.into(),
                dst: dst.into(),
                readonly: true,
                optional: false,
                exec: true,
                no_symlinks: false,
                owner: None,
                compatibility: Default::default(),
            },
        ));
        self
    }

    /// Bind a host path read-write.
    pub fn bind(mut self, src: &str, dst: &str) -> Self {
        self.ov.mounts.push((
            format!("bind({src})"),
            Mount::Bind {
                src: src.into(),
                dst: dst.into(),
                readonly: false,
                optional: false,
                exec: false,
                no_symlinks: false,
                owner: None,
                compatibility: Default::default(),
            },
        ));
        self
    }

    /// Set an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.ov.env.push(format!("{name}={value}"));
        self
    }

    /// Working directory inside the sandbox.
    pub fn cwd(mut self, dir: &str) -> Self {
        self.ov.cwd = Some(dir.into());
        self
    }

    /// Wall-clock limit (supervised sandboxes only).
    pub fn wall_time(mut self, d: std::time::Duration) -> Self {
        self.ov.wall_time = Some(crate::policy::Dur(d));
        self
    }

    /// cgroup memory limit in bytes (supervised sandboxes only).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.ov.memory = Some(crate::policy::Size(bytes));
        self
    }

    /// cgroup pids limit (supervised sandboxes only).
    pub fn pids(mut self, n: u64) -> Self {
        self.ov.pids = Some(n);
        self
    }

    /// Share the host's network (the same as
    /// `.network_mode(NetMode::Host)`).
    pub fn share_net(mut self) -> Self {
        self.ov.share_net = true;
        self
    }

    /// The network the payload gets: [`NetMode::None`](crate::policy::NetMode)
    /// (own namespace, loopback only), `Host` (the host's network) or
    /// `Proxy` (egress through cordon's proxy; needs a supervisor, so
    /// [`prepare`] refuses it).
    pub fn network_mode(mut self, mode: crate::policy::NetMode) -> Self {
        self.ov.net = Some(("network_mode()".into(), mode));
        self
    }

    /// Add a `network.allow` pattern such as `"api.example.com:443"`
    /// (implies mode proxy; with another mode, [`PolicyBuilder::build`]
    /// fails).
    pub fn allow_net(mut self, pattern: &str) -> Self {
        self.ov
            .allow_net
            .push((format!("allow_net({pattern:?})"), pattern.into()));
        self
    }

    /// Validate and return the policy.
    pub fn build(self) -> Result<Policy, PolicyError> {
        let mut p = self.policy?;
        self.ov.apply(&mut p, "<builder>")?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn every_layer_error_converts_and_keeps_its_content() {
        let launch: Error = LaunchError::sys("bind", "/nope", Errno(libc::ENOENT)).into();
        assert!(matches!(&launch, Error::Launch(e) if e.detail == "/nope"));
        assert_eq!(launch.to_string(), "bind: /nope: No such file or directory");
        assert!(launch.source().is_some());

        let seccomp: Error = crate::seccomp::SeccompError {
            path: "allow[3]".to_string(),
            message: "unknown system call".to_string(),
        }
        .into();
        assert_eq!(seccomp.to_string(), "seccomp.allow[3]: unknown system call");

        let apply: Error = ApplyError::from(ChildError::new(Step::Exec, Errno(libc::ENOENT), 2)).into();
        assert!(matches!(
            apply,
            Error::Apply(ApplyError {
                step: Step::Exec,
                index: 2,
                ..
            })
        ));

        // A policy error keeps file, path and position.
        let bad = Policy::from_json("p.json", "{\"mounts\": 3}").expect_err("invalid");
        let policy: Error = bad.clone().into();
        assert!(matches!(&policy, Error::Policy(e) if e.file == "p.json" && e.path == bad.path));
    }
}
