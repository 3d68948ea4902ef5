//! The launch plan: everything the child needs, computed in the parent
//! before clone. After [`Plan::build`] nothing allocates: the child only
//! reads this structure (its copy-on-write image of it) and makes system
//! calls.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

mod cstrings;
pub use cstrings::CStringArray;

use crate::isolate::hostid;
pub use crate::isolate::ids::{resolve_ids, Ids};
use crate::isolate::mount::MountPlan;
use crate::policy::{Namespace, Policy, PolicyError};
use crate::secret::SecretEnv;

/// An rlimit to set in the payload: resource, soft and hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// RLIMIT_* resource.
    pub resource: crate::sys::Resource,
    /// Soft limit.
    pub value: u64,
    /// Hard limit: `value`, except for RLIMIT_CPU, whose hard limit is one
    /// second above, so that a process at the limit gets SIGXCPU (which the
    /// outcome can name) rather than SIGKILL at once.
    pub hard: u64,
    /// Policy field it comes from.
    pub field: &'static str,
}

/// The program to execute: the PATH candidates, argv and envp, each owned
/// with its pointer array by a [`CStringArray`]. The fields are private:
/// once built, an `Exec` cannot be changed, only replaced as a whole.
///
/// ```compile_fail,E0616
/// let policy = cordon::Policy::builtin_default().unwrap();
/// let mut plan = cordon::plan::Plan::build(&policy, "p", &["/bin/true"]).unwrap();
/// plan.child.exec().argv.clear(); // private: execve could get freed memory
/// ```
///
/// ```
/// let policy = cordon::Policy::builtin_default().unwrap();
/// let plan = cordon::plan::Plan::build(&policy, "p", &["/bin/true"]).unwrap();
/// assert_eq!(plan.child.exec().argv().len(), 1);
/// ```
///
/// `Debug` shows the environment's names only (`NAME=<redacted>`): it may
/// hold secrets. Its strings are zeroed when the `Exec` is dropped.
pub struct Exec {
    candidates: CStringArray,
    argv: CStringArray,
    envp: CStringArray,
    search_path: String,
}

impl std::fmt::Debug for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Redacted<'a>(&'a CStringArray);
        impl std::fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|kv| {
                        let kv = kv.to_bytes();
                        let name = kv.split(|&b| b == b'=').next().unwrap_or_default();
                        format!("{}=<redacted>", String::from_utf8_lossy(name))
                    }))
                    .finish()
            }
        }
        f.debug_struct("Exec")
            .field("candidates", &self.candidates)
            .field("argv", &self.argv)
            .field("envp", &Redacted(&self.envp))
            .field("search_path", &self.search_path)
            .finish()
    }
}

impl Exec {
    fn new(candidates: Vec<CString>, argv: Vec<CString>, envp: Vec<CString>, search_path: String) -> Exec {
        Exec {
            candidates: CStringArray::new(candidates),
            argv: CStringArray::new(argv),
            envp: CStringArray::new(envp),
            search_path,
        }
    }

    /// Paths to try in order (the PATH search is done ahead, like execvp).
    pub fn candidates(&self) -> &CStringArray {
        &self.candidates
    }

    /// Arguments.
    pub fn argv(&self) -> &CStringArray {
        &self.argv
    }

    /// Environment as NAME=VALUE.
    pub fn envp(&self) -> &CStringArray {
        &self.envp
    }

    /// The PATH searched, for messages (empty when the command has a '/').
    pub fn search_path(&self) -> &str {
        &self.search_path
    }
}

/// Everything the launch needs: what the child reads, and what only the
/// supervisor keeps.
#[derive(Debug)]
pub struct Plan {
    /// What the clone child (or `Prepared::apply`) reads.
    pub child: ChildPlan,
    /// What only the supervisor uses: cgroups, deadline, notifications,
    /// descriptions.
    pub supervisor: SupervisorPlan,
}

/// What the child reads after clone (or fork): fixed once built. The
/// fields are private and read through accessors, so that nothing can
/// change what the child's C strings and pointer arrays point at; the
/// child's code gets only this, never the supervisor's part.
#[derive(Debug)]
pub struct ChildPlan {
    clone_flags: u64,
    ids: Ids,
    mounts: MountPlan,
    staging: CString,
    hostname: Option<CString>,
    own_net: bool,
    cwd: CString,
    rlimits: Vec<Rlimit>,
    last_cap: u32,
    ignored_signals: u64,
    exec: Exec,
    stdio: [std::os::raw::c_int; 3],
    second_sync: bool,
    /// init's helper task makes the network namespace (see
    /// [`ChildPlan::netns_helper`]).
    netns_helper: bool,
    landlock: Option<crate::landlock::LandlockPlan>,
    seccomp: Option<SeccompPlan>,
    listeners: crate::net::listen::Listeners,
    /// The devpts instance's ptmx inside the sandbox (`<dev>/pts/ptmx`),
    /// when the policy mounts a /dev; `None`: no pty possible.
    ptmx: Option<CString>,
    /// Whether the payload runs on a pty of the sandbox's own devpts.
    tty: bool,
}

impl ChildPlan {
    /// Whether init's helper task makes the network namespace (on another
    /// core, while init builds the root) instead of clone3. Only where
    /// /proc/sys/kernel/ns_last_pid can be written, so that init can give
    /// the helper's pid back and the payload is still pid 2 (not with a
    /// read-only /proc/sys, as in some containers, nor without
    /// CONFIG_CHECKPOINT_RESTORE).
    pub fn netns_helper(&self) -> bool {
        self.netns_helper
    }
    /// The namespaces to make (clone3 leaves CLONE_NEWNET to init's helper
    /// where [`ChildPlan::netns_helper`]).
    pub fn clone_flags(&self) -> u64 {
        self.clone_flags
    }
    /// Ids and maps.
    pub fn ids(&self) -> &Ids {
        &self.ids
    }
    /// The root filesystem.
    pub fn mounts(&self) -> &MountPlan {
        &self.mounts
    }
    /// Where the new root is mounted before pivot_root (a directory of the
    /// child's private mount namespace; nothing is written there).
    pub fn staging(&self) -> &std::ffi::CStr {
        &self.staging
    }
    /// Hostname, when the policy sets one.
    pub fn hostname(&self) -> Option<&std::ffi::CStr> {
        self.hostname.as_deref()
    }
    /// Whether the sandbox has its own network namespace (bring lo up).
    pub fn own_net(&self) -> bool {
        self.own_net
    }
    /// Working directory inside the sandbox.
    pub fn cwd(&self) -> &std::ffi::CStr {
        &self.cwd
    }
    /// rlimits for the payload.
    pub fn rlimits(&self) -> &[Rlimit] {
        &self.rlimits
    }
    /// Highest capability number this kernel knows.
    pub fn last_cap(&self) -> u32 {
        self.last_cap
    }
    /// Signals ignored in the parent (bit N-1 for signal N); the payload
    /// resets them to the default, since ignored signals survive execve.
    pub fn ignored_signals(&self) -> u64 {
        self.ignored_signals
    }
    /// The program.
    pub fn exec(&self) -> &Exec {
        &self.exec
    }
    /// fds to put on the payload's stdin, stdout and stderr (-1: inherit
    /// cordon's), set by library callers.
    pub fn stdio(&self) -> [std::os::raw::c_int; 3] {
        self.stdio
    }
    /// Set the fd for the payload's stdin (0), stdout (1) or stderr (2);
    /// -1 inherits cordon's. Plain numbers: the caller keeps the fds open
    /// until the child is started.
    pub fn set_stdio(&mut self, target: usize, fd: std::os::raw::c_int) {
        self.stdio[target] = fd;
    }
    /// Whether the child waits for a second byte from the parent before it
    /// forks the payload (the parent sets vm.memfd_noexec and attaches v1
    /// cgroups while the child builds the root).
    pub fn second_sync(&self) -> bool {
        self.second_sync
    }
    /// The Landlock ruleset, applied before seccomp.
    pub fn landlock(&self) -> Option<&crate::landlock::LandlockPlan> {
        self.landlock.as_ref()
    }
    /// The seccomp filter, installed last before exec.
    pub fn seccomp(&self) -> Option<&SeccompPlan> {
        self.seccomp.as_ref()
    }
    /// The egress proxy's listeners, which init makes in the sandbox's
    /// netns and hands to the supervisor before the payload is forked
    /// (empty outside mode `proxy`).
    pub fn listeners(&self) -> &crate::net::listen::Listeners {
        &self.listeners
    }
    /// The ptmx init opens when the payload gets a pty ([`Self::tty`]).
    pub fn ptmx(&self) -> Option<&std::ffi::CStr> {
        self.ptmx.as_deref()
    }
    /// Whether the payload runs on a pty: init allocates it in the
    /// sandbox's own devpts, hands its master to the supervisor (which
    /// relays it to the caller's terminal), and the payload, in a session
    /// of its own, has its slave as controlling terminal and stdio.
    pub fn tty(&self) -> bool {
        self.tty
    }
    /// Ask for a pty ([`Self::tty`]), or for none. `Err` with the reason
    /// when the policy mounts no /dev, whose devpts the pty would come
    /// from.
    pub fn set_tty(&mut self, on: bool) -> Result<(), String> {
        if on && self.ptmx.is_none() {
            return Err(
                "the sandbox has no /dev of its own (a mounts entry of type dev), whose devpts the pty comes from"
                    .to_string(),
            );
        }
        self.tty = on;
        Ok(())
    }
}

/// What only the supervisor uses.
#[derive(Debug)]
pub struct SupervisorPlan {
    /// The host id allocated for this plan (root, when the policy names
    /// none), held until the plan is dropped: one plan, one sandbox.
    pub host_id: Option<hostid::Lease>,
    /// Wall-clock limit.
    pub wall_time: Option<Duration>,
    /// Policy requests that were not enforced (best effort only); the CLI
    /// warns about each.
    pub unenforced: Vec<String>,
    /// Policy requests that were not enforced as the policy itself foresaw
    /// (cgroup limits with `limits.cgroup` `v2_only` on a host without
    /// usable cgroup v2): in the outcome, but no warning.
    pub unenforced_quiet: Vec<String>,
    /// Set `vm.memfd_noexec=2` in the sandbox's pid namespace before the
    /// payload starts (root, with a pid namespace, on Linux 6.3+): the
    /// parent does it before it releases the child.
    pub memfd_noexec: bool,
    /// Where the sandbox's cgroup goes, when the policy has cgroup limits.
    pub cgroup: Option<crate::cgroup::CgroupPlan>,
    /// What the supervisor does with seccomp notifications.
    pub supervise: Supervise,
    /// The network the payload gets (for the outcome).
    pub network: crate::policy::NetMode,
    /// The audit trail, when one was asked for: opened by
    /// [`Plan::build`] for the policy's `audit.path`; the command line
    /// puts `--audit-log`'s here instead.
    pub audit: Option<crate::audit::AuditRun>,
    /// The egress proxy (mode `proxy`): started by the supervisor on the
    /// listeners the child hands over.
    pub proxy: Option<crate::net::proxy::ProxyConfig>,
}

/// What the supervisor does with seccomp notifications.
#[derive(Clone, Debug)]
pub enum Supervise {
    /// Nothing: no listener.
    None,
    /// Answer refusals as this filter decides and record them.
    Report(crate::seccomp::ir::Filter),
    /// Record every syscall and let it continue (`cordon learn`), except
    /// those every cordon policy refuses
    /// ([`crate::seccomp::learn::refused_while_learning`]) and `clone` with
    /// namespace flags, which get EPERM and are recorded apart, unless
    /// `allow_dangerous`.
    Learn {
        /// Let those continue too (`cordon learn --allow-dangerous`).
        allow_dangerous: bool,
    },
}

/// The seccomp program the child installs.
#[derive(Clone, Debug)]
pub struct SeccompPlan {
    program: Vec<libc::sock_filter>,
    listener: bool,
}

impl SeccompPlan {
    /// The BPF program, as the kernel's `struct sock_filter`s.
    pub fn program(&self) -> &[libc::sock_filter] {
        &self.program
    }
    /// Whether the filter is installed with a notification listener (the
    /// supervisor reports or learns).
    pub fn listener(&self) -> bool {
        self.listener
    }
}

pub use crate::seccomp::probe::user_notif_unavailable;

/// The filter compiled to the kernel's instruction type, or an error when
/// the kernel would refuse it for its length.
fn program_or_error(
    filter: &crate::seccomp::ir::Filter,
    file: &str,
) -> Result<Vec<libc::sock_filter>, PolicyError> {
    let prog = crate::seccomp::bpf::compile(filter);
    if prog.len() > crate::seccomp::MAX_INSNS {
        return Err(PolicyError {
            file: file.to_string(),
            path: "seccomp".to_string(),
            position: None,
            message: format!(
                "the filter compiles to {} instructions; the kernel takes at most {}",
                prog.len(),
                crate::seccomp::MAX_INSNS
            ),
        });
    }
    // `seccomp::bpf::Insn` is `libc::sock_filter`: the program is what the
    // kernel reads.
    Ok(prog)
}

fn cstring(field: &str, file: &str, s: &[u8]) -> Result<CString, PolicyError> {
    CString::new(s).map_err(|_| PolicyError {
        file: file.to_string(),
        path: field.to_string(),
        position: None,
        message: "contains a NUL byte".to_string(),
    })
}

/// Build the environment from the policy and cordon's own environment.
pub fn build_env(
    policy: &Policy,
    host: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut env: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
    for (k, v) in host {
        let keep = !policy.env.clear || policy.env.keep.iter().any(|n| n.as_bytes() == k.as_bytes());
        if keep {
            env.insert(k.as_bytes().to_vec(), v.as_bytes().to_vec());
        }
    }
    for (k, v) in &policy.env.set {
        env.insert(k.as_bytes().to_vec(), v.as_bytes().to_vec());
    }
    env.into_iter().collect()
}

/// PATH used when the sandbox's environment has none (as execvp does).
const DEFAULT_SEARCH_PATH: &[u8] = b"/usr/local/bin:/usr/bin:/bin";

/// execvp-style candidates for `cmd` with the sandbox's PATH.
pub fn exec_candidates(cmd: &[u8], path: Option<&[u8]>) -> Vec<Vec<u8>> {
    if cmd.contains(&b'/') {
        return vec![cmd.to_vec()];
    }
    let path = path.unwrap_or(DEFAULT_SEARCH_PATH);
    path.split(|&b| b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut p = dir.to_vec();
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(cmd);
            p
        })
        .collect()
}

/// The ptmx of the policy's (last) /dev: `<dst>/pts/ptmx`.
fn ptmx_path(policy: &Policy, file: &str) -> Result<Option<CString>, PolicyError> {
    let dev = policy.mounts.iter().rev().find_map(|m| match m {
        crate::policy::Mount::Dev { dst, .. } => Some(dst),
        _ => None,
    });
    dev.map(|d| {
        cstring(
            "mounts",
            file,
            format!("{}/pts/ptmx", d.trim_end_matches('/')).as_bytes(),
        )
    })
    .transpose()
}

fn read_last_cap() -> u32 {
    crate::sys::read_small(c"/proc/sys/kernel/cap_last_cap", |s| s.trim().parse().ok()).unwrap_or(63)
}

/// The command must name a program; in mode `proxy` the proxy variables
/// cordon sets (returned) may not be set by the policy or a secret too.
fn check_command_and_proxy_env(
    policy: &Policy,
    file: &str,
    argv: &[impl AsRef<OsStr>],
    secrets: &[SecretEnv],
) -> Result<&'static [(&'static str, &'static str)], PolicyError> {
    let cli = |msg: &str| PolicyError {
        file: "<command line>".to_string(),
        path: String::new(),
        position: None,
        message: msg.to_string(),
    };
    if argv.is_empty() {
        return Err(cli(
            "no command given: put it after --, e.g. cordon run -- /bin/sh -c 'echo hi'",
        ));
    }
    if argv[0].as_ref().is_empty() {
        return Err(cli("the command is an empty string"));
    }
    check_proxy_env(policy, file, secrets)
}

/// In mode `proxy`, the proxy variables cordon sets (returned), which the
/// policy or a secret may not set too.
fn check_proxy_env(
    policy: &Policy,
    file: &str,
    secrets: &[SecretEnv],
) -> Result<&'static [(&'static str, &'static str)], PolicyError> {
    let proxy_vars = proxy_env(policy, file)?;
    if let Some(s) = secrets
        .iter()
        .find(|s| proxy_vars.iter().any(|(n, _)| s.name() == *n))
    {
        return Err(PolicyError {
            file: "<command line>".to_string(),
            path: format!("--secret-env {}", s.name()),
            position: None,
            message:
                "in network mode proxy cordon sets this variable itself (to its proxy inside the sandbox)"
                    .to_string(),
        });
    }
    Ok(proxy_vars)
}

/// Mode `proxy`'s second wall: the payload may connect over TCP only to
/// cordon's listeners on its loopback (and the ports the policy's own
/// `landlock.tcp_connect` lists), where the kernel has Landlock network
/// rules (ABI 4). The policy's Landlock section with the wall added, or
/// `None` when it stays as it is (not mode proxy, or no ABI 4: then a quiet
/// note says the wall is missing; the netns, which has only `lo`, is the
/// first wall).
fn proxy_wall(
    ll: Option<&crate::landlock::LandlockPolicy>,
    listeners: &crate::net::listen::Listeners,
    abi: u32,
    quiet: &mut Vec<String>,
) -> Option<crate::landlock::LandlockPolicy> {
    if listeners.is_empty() {
        return None;
    }
    if abi < 4 {
        quiet.push(format!(
            "network: the Landlock tcp_connect wall around the proxy ports needs Landlock ABI 4 (this kernel: {abi}); the sandbox's own network namespace still has no route out"
        ));
        return None;
    }
    let mut out = ll.cloned().unwrap_or_else(|| crate::landlock::LandlockPolicy {
        // Only the wall: nothing else in the section needs more than ABI 4.
        compatibility: crate::landlock::Compatibility::BestEffort,
        ..Default::default()
    });
    let ports = out.tcp_connect.get_or_insert_with(Vec::new);
    for p in listeners.tcp_ports() {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    Some(out)
}

/// The proxy address the payload's environment names (the HTTP proxy's
/// listener on the sandbox's loopback).
pub const PROXY_URL: &str = "http://127.0.0.1:3128";

/// The variables cordon sets in the payload's environment in mode `proxy`
/// (a policy's `env.set` of one of them is refused: see [`proxy_env`]).
pub const PROXY_ENV: &[(&str, &str)] = &[
    ("HTTP_PROXY", PROXY_URL),
    ("HTTPS_PROXY", PROXY_URL),
    ("http_proxy", PROXY_URL),
    ("https_proxy", PROXY_URL),
    ("NO_PROXY", "localhost,127.0.0.1,::1"),
    ("no_proxy", "localhost,127.0.0.1,::1"),
    ("ALL_PROXY", SOCKS_URL),
    ("all_proxy", SOCKS_URL),
    ("NODE_USE_ENV_PROXY", "1"),
    ("PIP_PROXY", PROXY_URL),
    ("npm_config_proxy", PROXY_URL),
    ("npm_config_https_proxy", PROXY_URL),
];

/// The SOCKS5 proxy the payload's `ALL_PROXY` names (`socks5h`: the proxy
/// resolves names).
pub const SOCKS_URL: &str = "socks5h://127.0.0.1:1080";

/// In mode `proxy`, the proxy variables for the payload, refusing a policy
/// that sets one of them itself (cordon's value is the only one that
/// reaches its proxy; fail closed rather than pick one).
pub fn proxy_env(
    policy: &Policy,
    file: &str,
) -> Result<&'static [(&'static str, &'static str)], PolicyError> {
    if policy.network_mode() != crate::policy::NetMode::Proxy {
        return Ok(&[]);
    }
    if let Some((name, _)) = PROXY_ENV.iter().find(|(n, _)| policy.env.set.contains_key(*n)) {
        return Err(PolicyError {
            file: file.to_string(),
            path: format!("env.set.{name}"),
            position: None,
            message: format!(
                "in network mode proxy cordon sets {name} itself (to its proxy inside the sandbox): remove it from env.set"
            ),
        });
    }
    Ok(PROXY_ENV)
}

impl Plan {
    /// End the plan in a process that exits right after its run (`cordon
    /// run`): what dropping it must do now is done (the host id's record is
    /// released, the environment's strings, secrets among them, are zeroed)
    /// and the rest of its memory is left to the exit, with any descriptor
    /// it holds. Freeing it would write the allocator's bookkeeping into
    /// pages that the sandbox's init, which may still be exiting, shares
    /// copy-on-write with this process: each first write copies a page
    /// (seven of them after `cordon run -- /bin/true`, measured with
    /// `perf trace --pf=all`).
    pub fn end_at_exit(mut self) {
        drop(self.supervisor.host_id.take());
        self.child.exec.envp.zeroize_and_leak();
        std::mem::forget(self);
    }

    /// Compile a policy and a command into a plan. `file` names the policy
    /// in errors.
    pub fn build(policy: &Policy, file: &str, argv: &[impl AsRef<OsStr>]) -> Result<Plan, PolicyError> {
        Plan::build_with_secrets(policy, file, argv, &[])
    }

    /// [`Plan::build`] with secrets for the payload's environment: each
    /// goes into `envp` only (a secret wins over a policy or host variable
    /// of the same name; of two secrets of one name, the later), and is
    /// zeroed with the plan. The plan's `Debug` shows their names only.
    pub fn build_with_secrets(
        policy: &Policy,
        file: &str,
        argv: &[impl AsRef<OsStr>],
        secrets: &[SecretEnv],
    ) -> Result<Plan, PolicyError> {
        let argv: Vec<&OsStr> = argv.iter().map(AsRef::as_ref).collect();
        Plan::build_inner(policy, file, &argv, secrets, false)
    }

    /// The plan of a named sandbox (`cordon create`, `Sandbox::create`):
    /// no command (each comes later, with its own argv), the policy's
    /// environment in the plan's `envp` (each command's starts from it),
    /// and the seccomp filter without a notification listener (a named
    /// sandbox has no one to answer it: `seccomp.report` is listed as
    /// unenforced, the refusals apply).
    pub fn build_serving(policy: &Policy, file: &str, secrets: &[SecretEnv]) -> Result<Plan, PolicyError> {
        Plan::build_inner(policy, file, &[], secrets, true)
    }

    fn build_inner(
        policy: &Policy,
        file: &str,
        argv: &[&OsStr],
        secrets: &[SecretEnv],
        serving: bool,
    ) -> Result<Plan, PolicyError> {
        let proxy_vars = if serving {
            check_proxy_env(policy, file, secrets)?
        } else {
            check_command_and_proxy_env(policy, file, argv, secrets)?
        };
        // SAFETY: geteuid/getegid cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mut host_id = None;
        let ids = resolve_ids(policy, euid, egid, file, &mut || {
            let lease = hostid::IdRange::from_env().and_then(hostid::allocate)?;
            let id = lease.id();
            host_id = Some(lease);
            Ok(id)
        })?;

        let flags = crate::isolate::ids::clone_flags(&policy.namespaces);

        let mounts = MountPlan::prepare(policy, file, &ids)?;

        let exec = build_exec(policy, file, argv, secrets, proxy_vars)?;
        let rlimits = rlimits(&policy.limits);
        let l = &policy.limits;
        let mut plan = Plan {
            child: ChildPlan {
                clone_flags: flags,
                ids,
                mounts,
                staging: CString::from(c"/tmp"),
                hostname: policy
                    .hostname
                    .as_deref()
                    .map(|h| cstring("hostname", file, h.as_bytes()))
                    .transpose()?,
                own_net: policy.has_namespace(Namespace::Net),
                cwd: cstring("cwd", file, policy.cwd.as_bytes())?,
                rlimits,
                last_cap: read_last_cap(),
                ignored_signals: crate::sys::ignored_signals(),
                exec,
                stdio: [-1; 3],
                second_sync: false,
                netns_helper: flags & libc::CLONE_NEWNET as u64 != 0
                    && crate::isolate::ids::ns_last_pid_writable(),
                landlock: None,
                seccomp: None,
                listeners: crate::net::listen::Listeners::NONE,
                ptmx: ptmx_path(policy, file)?,
                tty: false,
            },
            supervisor: SupervisorPlan {
                host_id,
                wall_time: l.wall_time.map(|d| d.as_duration()),
                unenforced: Vec::new(),
                unenforced_quiet: Vec::new(),
                memfd_noexec: false,
                cgroup: None,
                supervise: Supervise::None,
                network: policy.network_mode(),
                audit: None,
                proxy: None,
            },
        };
        plan.network_proxy(policy);
        plan.decide_cgroup(policy, file)?;
        plan.memfd_hardening(policy);
        let sup = &mut plan.supervisor;
        sup.unenforced.extend(policy.disabled.iter().cloned());
        sup.unenforced
            .extend(plan.child.mounts.unenforced.iter().cloned());
        let abi = crate::landlock::abi_version();
        let walled = proxy_wall(
            policy.landlock.as_ref(),
            &plan.child.listeners,
            abi,
            &mut sup.unenforced_quiet,
        );
        let mut tcp_wall = false;
        if let Some(ll) = walled.as_ref().or(policy.landlock.as_ref()) {
            let (prepared, missing) = ll.prepare(abi, file)?;
            plan.child.landlock = prepared;
            sup.unenforced.extend(missing);
            // Landlock's TCP rules miss MPTCP and SMC sockets: seccomp
            // refuses them wherever TCP ports are limited.
            tcp_wall = ll.tcp_connect.is_some() || ll.tcp_bind.is_some();
        }
        let guards = Guards {
            setid: plan.child.mounts.setid_guard,
            tcp_wall,
        };
        if let Some((seccomp, supervise)) = seccomp_plan(policy, file, guards, serving, &mut sup.unenforced)?
        {
            plan.child.seccomp = Some(seccomp);
            sup.supervise = supervise;
        }
        // Last: nothing is created on the host for a plan that fails.
        plan.supervisor.audit = crate::audit::open_for_policy(policy, file)?;
        Ok(plan)
    }

    /// Mode `proxy`: the listeners the child makes and the proxy the
    /// supervisor runs on them.
    fn network_proxy(&mut self, policy: &Policy) {
        let Some(n) = policy
            .network
            .as_ref()
            .filter(|n| n.mode == crate::policy::NetMode::Proxy)
        else {
            return;
        };
        self.child.listeners = crate::net::listen::Listeners::proxy(n.dns, &n.transparent_ports);
        self.supervisor.proxy = Some(crate::net::proxy::ProxyConfig::from_policy(n));
    }

    /// Decide the cgroup plan, or record why the limits go unenforced
    /// (best effort), or refuse.
    fn decide_cgroup(&mut self, policy: &Policy, file: &str) -> Result<(), PolicyError> {
        let cg = crate::cgroup::CgLimits::from_policy(&policy.limits);
        if !cg.is_empty() {
            let v2_only = policy.limits.cgroup == crate::policy::CgroupVersions::V2Only;
            // The default policy's case on a host with v1 controllers: known
            // from /proc/self/cgroup alone, without reading mountinfo.
            let early = v2_only
                .then(|| {
                    crate::sys::read_small(c"/proc/self/cgroup", |text| {
                        crate::cgroup::v2_only_refused_by_v1(&cg, text)
                    })
                })
                .flatten();
            let decided = match early {
                Some(why) => Err(why),
                None => crate::cgroup::CgroupPlan::decide(
                    &cg,
                    &crate::cgroup::Layout::detect(),
                    policy.limits.cgroup_parent.as_deref(),
                    v2_only,
                ),
            };
            match decided {
                Ok(p) => {
                    self.child.second_sync |= matches!(p, crate::cgroup::CgroupPlan::V1 { .. });
                    self.supervisor.cgroup = Some(p);
                }
                Err(why) if policy.limits.compatibility == crate::landlock::Compatibility::BestEffort => {
                    // Every item names the limits it leaves unenforced.
                    let item = if why.contains("(cgroup limits)") {
                        format!("limits: {why}")
                    } else {
                        let names: Vec<String> = cg.fields().iter().map(|f| format!("limits.{f}")).collect();
                        format!("limits: {} (cgroup limits): {why}", names.join(", "))
                    };
                    if v2_only {
                        // The policy chose cgroup limits only where they are
                        // cheap: the outcome lists them, without a warning.
                        self.supervisor.unenforced_quiet.push(item);
                    } else {
                        self.supervisor.unenforced.push(item);
                    }
                }
                Err(why) => {
                    return Err(PolicyError {
                        file: file.to_string(),
                        path: "limits".to_string(),
                        position: None,
                        message: format!(
                            "{why}; or set limits.compatibility to best_effort (--best-effort) to run without these limits"
                        ),
                    })
                }
            }
        }
        Ok(())
    }

    /// vm.memfd_noexec for the sandbox's pid namespace, where it can be had.
    fn memfd_hardening(&mut self, policy: &Policy) {
        // cordon's own hardening, not a request of the policy: listed in the
        // outcome where it cannot be had, without a warning on every run.
        if policy.has_namespace(Namespace::Pid) {
            if self.child.ids.rootless {
                self.supervisor.unenforced_quiet.push(
                    "memfd_noexec: without privileges cordon cannot set vm.memfd_noexec in the sandbox's pid namespace, so the payload may execute code it writes into a memfd; run cordon as root to forbid that".to_string(),
                );
            } else if !crate::isolate::memfd::available() {
                self.supervisor.unenforced_quiet.push(
                    "memfd_noexec: this kernel lacks vm.memfd_noexec (Linux 6.3), so the payload may execute code it writes into a memfd".to_string(),
                );
            } else {
                self.supervisor.memfd_noexec = true;
                // The supervisor sets it while the child builds the root;
                // the payload starts only after (the second byte).
                self.child.second_sync = true;
            }
        }
    }

    /// Replace the seccomp filter with the learning one: every syscall is
    /// recorded by the supervisor and continues, except what every cordon
    /// policy refuses (namespaces, ptrace, keyrings, io_uring, bpf, mounts,
    /// modules...), which gets EPERM and is recorded apart unless
    /// `allow_dangerous`.
    pub fn learning(mut self, allow_dangerous: bool) -> Result<Plan, String> {
        if let Some(why) = user_notif_unavailable() {
            return Err(format!("cordon learn needs seccomp user notification: {why}"));
        }
        let mut filter = crate::seccomp::learn_filter()?;
        if self.child.mounts.setid_guard {
            filter = crate::seccomp::setid_guard(&filter);
        }
        let program = program_or_error(&filter, "<learning filter>").map_err(|e| e.to_string())?;
        self.child.seccomp = Some(SeccompPlan {
            program,
            listener: true,
        });
        self.supervisor.supervise = Supervise::Learn { allow_dangerous };
        Ok(self)
    }
}

/// The program: PATH candidates, argv and envp as C strings.
fn build_exec(
    policy: &Policy,
    file: &str,
    argv: &[&OsStr],
    secrets: &[SecretEnv],
    proxy_vars: &[(&str, &str)],
) -> Result<Exec, PolicyError> {
    let mut env = build_env(policy, std::env::vars_os());
    // cordon's proxy variables win over the host's (a policy's were
    // refused by `proxy_env`).
    for (k, v) in proxy_vars {
        env.retain(|(name, _)| name.as_slice() != k.as_bytes());
        env.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
    }
    // A secret wins over a variable of the same name (and cannot be PATH,
    // which is read below and shown in messages: see secret::check_name).
    env.retain(|(k, _)| !secrets.iter().any(|s| s.name().as_bytes() == k.as_slice()));
    let path = env.iter().find(|(k, _)| k == b"PATH").map(|(_, v)| v.as_slice());
    let cmd = argv.first().map_or(&b""[..], |c| c.as_bytes());
    let search_path = if cmd.contains(&b'/') {
        String::new()
    } else {
        String::from_utf8_lossy(path.unwrap_or(DEFAULT_SEARCH_PATH)).into_owned()
    };
    // No command (a named sandbox's plan): no candidates.
    let candidates = argv
        .first()
        .map(|_| exec_candidates(cmd, path))
        .unwrap_or_default()
        .into_iter()
        .map(|c| cstring("command", "<command line>", &c))
        .collect::<Result<Vec<_>, _>>()?;
    let argv = argv
        .iter()
        .map(|a| cstring("command", "<command line>", a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.clone();
            kv.push(b'=');
            kv.extend_from_slice(v);
            cstring("env", file, &kv)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut envp = envp;
    for (i, s) in secrets.iter().enumerate() {
        if secrets[i + 1..].iter().any(|later| later.name() == s.name()) {
            continue;
        }
        envp.push(secret_cstring(s)?);
    }

    Ok(Exec::new(candidates, argv, envp, search_path))
}

/// `NAME=VALUE` for a secret, built in one buffer of the exact size (with
/// room for the NUL), so that making the C string does not reallocate and
/// leave a copy of the value in freed memory.
fn secret_cstring(s: &SecretEnv) -> Result<CString, PolicyError> {
    let (name, value) = (s.name().as_bytes(), s.value().expose());
    let mut kv = Vec::with_capacity(name.len() + 1 + value.len() + 1);
    kv.extend_from_slice(name);
    kv.push(b'=');
    kv.extend_from_slice(value);
    CString::new(kv).map_err(|e| {
        // SecretEnv::new refused NUL bytes already; zero the copy anyway.
        let mut v = e.into_vec();
        crate::secret::zeroize_vec(&mut v);
        PolicyError {
            file: "<command line>".to_string(),
            path: format!("--secret-env {}", s.name()),
            position: None,
            message: "the value contains a NUL byte".to_string(),
        }
    })
}

/// The payload's rlimits: core dumps always, the others when the policy
/// sets them.
fn rlimits(l: &crate::policy::Limits) -> Vec<Rlimit> {
    let core = if l.core_dumps { libc::RLIM_INFINITY } else { 0 };
    let mut rlimits = vec![Rlimit {
        resource: libc::RLIMIT_CORE,
        value: core,
        hard: core,
        field: "limits.core_dumps",
    }];
    let mut add = |resource: crate::sys::Resource, value: Option<u64>, field: &'static str| {
        if let Some(value) = value {
            let hard = if resource == libc::RLIMIT_CPU {
                value.saturating_add(1)
            } else {
                value
            };
            rlimits.push(Rlimit {
                resource,
                value,
                hard,
                field,
            });
        }
    };
    add(
        libc::RLIMIT_CPU,
        l.cpu_time.map(|d| d.whole_seconds_ceil()),
        "limits.cpu_time",
    );
    add(
        libc::RLIMIT_FSIZE,
        l.file_size.map(|s| s.bytes()),
        "limits.file_size",
    );
    add(libc::RLIMIT_NOFILE, l.open_files, "limits.open_files");
    add(libc::RLIMIT_NPROC, l.processes, "limits.processes");
    add(
        libc::RLIMIT_AS,
        l.address_space.map(|s| s.bytes()),
        "limits.address_space",
    );
    add(libc::RLIMIT_STACK, l.stack.map(|s| s.bytes()), "limits.stack");

    rlimits
}

/// The guards cordon adds to the seccomp filter (or installs alone).
#[derive(Clone, Copy)]
struct Guards {
    /// [`crate::seccomp::setid_guard`]: a writable bind is idmapped.
    setid: bool,
    /// [`crate::seccomp::tcp_wall_guard`]: Landlock limits TCP ports.
    tcp_wall: bool,
}

impl Guards {
    fn apply(self, filter: crate::seccomp::ir::Filter) -> crate::seccomp::ir::Filter {
        crate::seccomp::with_guards(filter, self.setid, self.tcp_wall)
    }
}

/// The seccomp filter, compiled (with the guards the plan needs), and
/// whether the supervisor watches it.
fn seccomp_plan(
    policy: &Policy,
    file: &str,
    guards: Guards,
    serving: bool,
    unenforced: &mut Vec<String>,
) -> Result<Option<(SeccompPlan, Supervise)>, PolicyError> {
    if let Some(sc) = &policy.seccomp {
        // The built-in default policy's section: compiled ahead of time,
        // with the same guards (taken apart whole: a new guard does not
        // compile here until it is passed on).
        let Guards { setid, tcp_wall } = guards;
        let native = crate::seccomp::arch::Arch::native();
        if let Some(program) = native.and_then(|a| sc.builtin_program(a, setid, tcp_wall)) {
            return Ok(Some((
                SeccompPlan {
                    program: program.to_vec(),
                    listener: false,
                },
                Supervise::None,
            )));
        }
        let filter = sc.compile().map_err(|e| PolicyError {
            file: file.to_string(),
            path: format!("seccomp.{}", e.path),
            position: None,
            message: e.message,
        })?;
        let filter = guards.apply(filter);
        let mut supervise = Supervise::None;
        let mut program = None;
        if sc.report {
            let why = if serving {
                Some(
                    "a named sandbox has no supervisor per command to answer seccomp notifications"
                        .to_string(),
                )
            } else {
                user_notif_unavailable()
            };
            match why {
                None => {
                    program = Some(program_or_error(&filter.with_notify(), file)?);
                    supervise = Supervise::Report(filter.clone());
                }
                Some(why) => {
                    unenforced.push(format!("seccomp.report: {why}; refusals apply without reports"))
                }
            }
        }
        let program = match program {
            Some(p) => p,
            None => program_or_error(&filter, file)?,
        };
        let listener = !matches!(supervise, Supervise::None);
        Ok(Some((SeccompPlan { program, listener }, supervise)))
    } else if guards.setid || guards.tcp_wall {
        // Each alone is an allow-all filter with its guard.
        let guard = if guards.setid {
            crate::seccomp::guard_only_filter().map(|f| {
                Guards {
                    setid: false,
                    ..guards
                }
                .apply(f)
            })
        } else {
            crate::seccomp::tcp_wall_only_filter()
        };
        let guard = guard.map_err(|message| PolicyError {
            file: file.to_string(),
            path: "seccomp".to_string(),
            position: None,
            message,
        })?;
        let program = program_or_error(&guard, file)?;
        Ok(Some((
            SeccompPlan {
                program,
                listener: false,
            },
            Supervise::None,
        )))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(extra: &str) -> Policy {
        Policy::from_json("t.json", &format!(r#"{{"version": 1 {extra}}}"#)).expect("valid policy")
    }

    #[test]
    fn exec_candidates_follow_path_like_execvp() {
        let c = exec_candidates(b"sh", Some(b"/a:/b/:"));
        assert_eq!(c, vec![b"/a/sh".to_vec(), b"/b/sh".to_vec(), b"./sh".to_vec()]);
        assert_eq!(exec_candidates(b"./x", Some(b"/a")), vec![b"./x".to_vec()]);
    }

    #[test]
    fn env_is_exactly_kept_plus_set() {
        let p = policy(r#","env":{"keep":["KEEP","ABSENT"],"set":{"A":"1","KEEP":"override"}}"#);
        let host = [("KEEP", "k"), ("DROP", "d"), ("OTHER", "o")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()));
        let env = build_env(&p, host);
        assert_eq!(
            env,
            vec![
                (b"A".to_vec(), b"1".to_vec()),
                (b"KEEP".to_vec(), b"override".to_vec())
            ]
        );
    }

    /// The payload may start only after the supervisor set vm.memfd_noexec
    /// (the second sync byte), and init's netns helper only where it can
    /// give its pid back; whatever the host, with and without cgroup limits.
    #[test]
    fn memfd_noexec_waits_for_the_second_byte_and_the_netns_helper_needs_ns_last_pid() {
        for limits in [
            "",
            r#","limits":{"memory":"64M","pids":32,"cgroup":"any","compatibility":"best_effort"}"#,
        ] {
            let p = policy(&format!(r#","namespaces":["user","mount","pid","net"]{limits}"#));
            let plan = Plan::build(&p, "t", &["/bin/true"]).expect("plan");
            if plan.supervisor.memfd_noexec {
                assert!(
                    plan.child.second_sync(),
                    "memfd_noexec without the second byte ({limits})"
                );
            }
            assert_eq!(
                plan.child.netns_helper(),
                crate::isolate::ids::ns_last_pid_writable(),
                "{limits}"
            );
        }
        let p = policy(r#","namespaces":["user","mount","pid"]"#);
        let plan = Plan::build(&p, "t", &["/bin/true"]).expect("plan");
        assert!(!plan.child.netns_helper(), "a helper without a netns to make");
    }

    #[test]
    fn cpu_time_gets_a_hard_limit_one_second_above() {
        let p = policy(r#","limits":{"cpu_time":"1500ms","file_size":"1M"}"#);
        let plan = Plan::build(&p, "t", &["/bin/true"]).expect("plan");
        let cpu = plan
            .child
            .rlimits()
            .iter()
            .find(|r| r.resource == libc::RLIMIT_CPU)
            .expect("cpu");
        assert_eq!((cpu.value, cpu.hard), (2, 3));
        let fsize = plan
            .child
            .rlimits()
            .iter()
            .find(|r| r.resource == libc::RLIMIT_FSIZE)
            .expect("fsize");
        assert_eq!((fsize.value, fsize.hard), (1 << 20, 1 << 20));
    }

    #[test]
    fn proxy_mode_sets_the_proxy_variables_and_refuses_overrides() {
        use crate::secret::{Secret, SecretEnv};
        let net = r#","namespaces":["user","mount","pid","net"],"network":{"mode":"proxy","dns":false}"#;
        let p = policy(&format!(r#"{net},"env":{{"clear":true,"set":{{"A":"1"}}}}"#));
        let plan = Plan::build(&p, "t", &["/bin/true"]).expect("plan");
        let envp: Vec<String> = plan
            .child
            .exec()
            .envp()
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        for (k, v) in PROXY_ENV {
            assert!(envp.contains(&format!("{k}={v}")), "{k}: {envp:?}");
        }
        assert!(envp.contains(&"A=1".to_string()));
        // "dns": false: no stub, no transparent relay.
        assert_eq!(
            plan.child.listeners().tcp_ports().collect::<Vec<_>>(),
            [3128, 1080]
        );
        assert!(plan.supervisor.proxy.is_some());
        // A policy value for one of them is an error naming it.
        let p = policy(&format!(
            r#"{net},"env":{{"set":{{"https_proxy":"http://x:1"}}}}"#
        ));
        let e = Plan::build(&p, "t", &["/bin/true"]).unwrap_err();
        assert_eq!(e.path, "env.set.https_proxy");
        // So is a secret of one of these names.
        let p = policy(net);
        let secrets =
            [SecretEnv::new("t", "HTTP_PROXY", Secret::from("http://x:1".to_string())).expect("ok")];
        let e = Plan::build_with_secrets(&p, "t", &["/bin/true"], &secrets).unwrap_err();
        assert_eq!(e.path, "--secret-env HTTP_PROXY");
        // Other modes: nothing of the proxy.
        let p = policy(r#","namespaces":["user","mount","pid","net"],"env":{"clear":true}"#);
        let plan = Plan::build(&p, "t", &["/bin/true"]).expect("plan");
        assert_eq!(plan.child.exec().envp().iter().count(), 0);
        assert!(plan.child.listeners().is_empty());
        assert!(plan.supervisor.proxy.is_none());
    }

    #[test]
    fn secrets_go_into_envp_only_win_over_env_and_never_show_in_debug() {
        use crate::secret::{Secret, SecretEnv};
        let p = policy(r#","env":{"clear":true,"set":{"TOKEN":"policy-value","A":"1"}}"#);
        let secrets = [
            SecretEnv::new("t", "TOKEN", Secret::from("first-hunter2".to_string())).expect("ok"),
            SecretEnv::new("t", "OTHER", Secret::from("other-hunter2".to_string())).expect("ok"),
            SecretEnv::new("t", "TOKEN", Secret::from("last-hunter2".to_string())).expect("ok"),
        ];
        let plan = Plan::build_with_secrets(&p, "t", &["/bin/true"], &secrets).expect("plan");
        let mut envp: Vec<String> = plan
            .child
            .exec()
            .envp()
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        envp.sort();
        assert_eq!(envp, ["A=1", "OTHER=other-hunter2", "TOKEN=last-hunter2"]);
        let debug = format!("{plan:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("\"TOKEN=<redacted>\""), "{debug}");
        assert!(debug.contains("\"A=<redacted>\""), "{debug}");
    }

    #[test]
    fn argv_and_envp_arrays_are_null_terminated() {
        let p = policy("");
        let plan = Plan::build(&p, "t", &["/bin/echo", "hi"]).expect("plan");
        assert_eq!(plan.child.exec().argv().len(), 2);
        // SAFETY: the array has argv.len() + 1 entries.
        unsafe {
            assert!(!(*plan.child.exec().argv().as_ptr().add(1)).is_null());
            assert!((*plan.child.exec().argv().as_ptr().add(2)).is_null());
        }
        assert!(plan.child.clone_flags() & libc::CLONE_NEWUSER as u64 != 0);
    }
}
