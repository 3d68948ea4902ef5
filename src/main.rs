//! The `cordon` command: a thin CLI over the library.
//!
//! The process starts at [`main`] below, not at Rust's runtime start-up
//! (`#![no_main]`): see there for what that start-up did and what is kept.
#![cfg_attr(not(test), no_main)]

mod cli;

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use cordon::error::LaunchError;
use cordon::launch::{self, RunOptions};
use cordon::outcome::{Outcome, Status, EXIT_SETUP};
use cordon::output::{OutputFile, WriteError};
use cordon::plan::Plan;
use cordon::policy::overrides::{parse_bind, parse_tmpfs, Overrides};
use cordon::policy::{Dur, Policy, PolicyError, DEFAULT_POLICY_NAME};
use cordon::seccomp::arch::Arch;
use cordon::seccomp::bpf::{self, Insn};
use cordon::seccomp::ir::Filter;
use cordon::seccomp::{tools, SeccompPolicy};
use cordon::secret::{self, Secret, SecretEnv, SecretError, Source};
use cordon::sys::Errno;

#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    about = "Run an untrusted command inside a container-less Linux sandbox"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The command line of `cordon run …`: the same `run` subcommand as
/// [`Cli`]'s, without building the others (building clap's whole command
/// tree is a fifth of a cold launch's own work before the clone).
#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    about = "Run an untrusted command inside a container-less Linux sandbox"
)]
struct RunCli {
    #[command(subcommand)]
    command: RunOnly,
}

#[derive(Subcommand)]
enum RunOnly {
    #[command(about = RUN_ABOUT)]
    Run(RunArgs),
}

/// `run`'s one-line help, shared by [`Command::Run`] and [`RunOnly::Run`].
const RUN_ABOUT: &str = "Run a command in a sandbox: cordon run [OPTIONS] [--] CMD [ARGS...]";

#[derive(Subcommand)]
enum Command {
    #[command(about = RUN_ABOUT)]
    Run(RunArgs),
    /// Make a named sandbox that stays up for `cordon run --in NAME`:
    /// cordon create [OPTIONS] NAME
    Create(CreateArgs),
    /// List the named sandboxes: name, init's pid, age, commands run,
    /// memory, state.
    Ls {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop a named sandbox: kill its processes, remove its cgroup and
    /// socket.
    Stop {
        /// The sandbox's name.
        name: String,
    },
    /// Validate a policy (with any overrides), print the effective policy,
    /// and warn on standard error about what will not work as meant.
    Check(CheckArgs),
    /// Restrict this process as the policy says, then exec CMD in place (no fork, same pid).
    Exec(ExecArgs),
    /// Seccomp tools: compile, explain, groups, import.
    #[command(subcommand)]
    Seccomp(SeccompCommand),
    /// Run a command with every syscall recorded and write a policy that allows what it used.
    Learn(LearnArgs),
    /// Serve TCP connections, inetd-style: each connection gets a fresh
    /// sandbox running CMD with the connection as its stdin and stdout.
    Serve(cli::service::ServeArgs),
    /// Remove cgroups left by cordon processes that were killed, the named
    /// sandboxes whose supervisor died, and the host-id records they left.
    Gc {
        /// Also look below this cgroup directory.
        #[arg(long = "cgroup-parent", value_name = "DIR")]
        cgroup_parent: Option<PathBuf>,
    },
    /// Open a tunnel through cordon's egress proxy on standard input and
    /// output (for ssh: -o ProxyCommand='cordon connect %h %p').
    ///
    /// Exits with 0 when both directions ended, 1 when the proxy refused the
    /// target, 125 on any other error. The proxy is $CORDON_PROXY
    /// (ADDRESS:PORT) if set, else 127.0.0.1:3128.
    Connect {
        /// The target: a host name, an IPv4 address (dotted decimal) or an
        /// IPv6 address.
        host: String,
        /// The target's port (1 to 65535).
        port: String,
    },
    /// Print a completion script for a shell: bash, zsh or fish
    /// (e.g. `cordon completions bash > /etc/bash_completion.d/cordon`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Install the man pages and the shell completions under a prefix, where
    /// `man` and the shells look for them.
    #[command(name = "install-man")]
    InstallMan {
        /// The prefix: PREFIX/share/man/man1, PREFIX/share/man/man5,
        /// PREFIX/share/bash-completion/completions,
        /// PREFIX/share/zsh/site-functions, PREFIX/share/fish/vendor_completions.d.
        #[arg(long, value_name = "DIR", default_value = "/usr/local")]
        prefix: PathBuf,
    },
    /// List the policies --policy NAME finds: ./NAME.json,
    /// $XDG_CONFIG_HOME/cordon/policies, /etc/cordon/policies, then the
    /// built-in ones; each with where it is from and what it is for.
    Policies,
    /// Report what this kernel and host offer, and what to do about what is missing.
    Features {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Exit with 1 when there is a warning.
    #[arg(long)]
    strict: bool,
}

#[derive(Args)]
struct ExecArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// No warnings on stderr; errors are still printed.
    #[arg(short, long)]
    quiet: bool,
    /// The command and its arguments: after `--`, or after the last option
    /// (every word from the command's name on belongs to the command).
    #[arg(trailing_var_arg = true, required = true, num_args = 1.., value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(Args)]
struct LearnArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Write the learnt policy here (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Let the command make the calls every cordon policy refuses (namespaces,
    /// ptrace, keyrings, io_uring, bpf, mounts, modules...) and put them into
    /// the learnt policy.
    #[arg(long = "allow-dangerous")]
    allow_dangerous: bool,
    /// The command and its arguments: after `--`, or after the last option
    /// (every word from the command's name on belongs to the command).
    #[arg(trailing_var_arg = true, required = true, num_args = 1.., value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(Subcommand)]
enum SeccompCommand {
    /// Compile a policy's seccomp section and export the BPF program.
    Compile {
        /// Policy: a name (`cordon policies` lists them) or a file (default: the built-in default policy).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// raw (struct sock_filter array), c (an initialiser) or disasm.
        #[arg(long, value_name = "FORMAT", default_value = "disasm", value_parser = ["raw", "c", "disasm"])]
        format: String,
        /// The architecture to compile for: x86_64 or aarch64 (default: the one cordon runs on).
        #[arg(long, value_name = "ARCH")]
        arch: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the decision for one call by running the compiled program.
    Explain {
        /// Policy: a name (`cordon policies` lists them) or a file (default: the built-in default policy).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// The call's architecture: x86_64, i386 (an int 0x80 call), x32 or
        /// aarch64 (default: the one cordon runs on). The filter is compiled
        /// for aarch64 with aarch64, for x86_64 otherwise.
        #[arg(long, value_name = "ARCH")]
        arch: Option<String>,
        /// The syscall, by name or number.
        syscall: String,
        /// Arguments: numbers or constants such as AF_INET or "CLONE_NEWUSER|CLONE_NEWNS".
        args: Vec<String>,
    },
    /// List the syscall groups and their members.
    Groups {
        /// One group (with or without its @).
        name: Option<String>,
    },
    /// Convert an OCI/Docker seccomp profile into a cordon policy.
    Import {
        /// The OCI/Docker profile (JSON).
        profile: PathBuf,
        /// The policy whose seccomp section is replaced (default: the built-in one).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Write to this file instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Default)]
struct PolicyArgs {
    /// Policy: a name (`cordon policies` lists them) or a file (default: the built-in default policy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Bind a host path read-only (SRC or SRC:DST).
    #[arg(long = "ro-bind", value_name = "SRC[:DST]")]
    ro_bind: Vec<String>,
    /// Bind a host path read-write (SRC or SRC:DST).
    #[arg(long, value_name = "SRC[:DST]")]
    bind: Vec<String>,
    /// Bind a host path read-write like --bind, refusing a source with a
    /// symlink in any component (SRC or SRC:DST).
    #[arg(long = "bind-nofollow", value_name = "SRC[:DST]")]
    bind_nofollow: Vec<String>,
    /// Mount a tmpfs (DST or DST:SIZE, e.g. /scratch:128M).
    #[arg(long, value_name = "DST[:SIZE]")]
    tmpfs: Vec<String>,
    /// Working directory inside the sandbox.
    #[arg(long, value_name = "DIR")]
    chdir: Option<String>,
    /// Set NAME=VALUE, or keep NAME from cordon's environment.
    #[arg(long, value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Give the payload a secret as NAME, read from FILE (@FILE: a regular
    /// file, with no symbolic link on its path) or from descriptor N (fd:N, read to its
    /// end and closed): in its environment only, never in any output.
    // allow_hyphen_values: a value starting with '-' typed here by mistake
    // is refused by secret::parse_spec without being shown, rather than
    // echoed by clap as an unknown option.
    #[arg(
        long = "secret-env",
        value_name = "NAME=@FILE|NAME=fd:N",
        allow_hyphen_values = true
    )]
    secret_env: Vec<OsString>,
    /// Hostname inside the sandbox.
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// Wall-clock limit, e.g. 500ms, 60s, 5m.
    #[arg(long = "time-limit", value_name = "DURATION")]
    time_limit: Option<Dur>,
    /// Share the host's network namespace (the same as --net host).
    #[arg(long = "share-net")]
    share_net: bool,
    /// The network: none (own namespace, loopback only), host (the host's
    /// network) or proxy (egress by allowlist through cordon's HTTP CONNECT
    /// proxy on the sandbox's 127.0.0.1:3128).
    #[arg(long, value_name = "MODE")]
    net: Option<cordon::policy::NetMode>,
    /// Allow connections to PATTERN (repeatable; implies --net proxy), e.g.
    /// api.example.com:443, *.example.org, 10.20.0.0/16:8080.
    #[arg(long = "allow-net", value_name = "PATTERN")]
    allow_net: Vec<String>,
    /// uid inside the sandbox.
    #[arg(long)]
    uid: Option<u32>,
    /// gid inside the sandbox.
    #[arg(long)]
    gid: Option<u32>,
    /// Allow reading beneath PATH (adds to landlock.read).
    #[arg(long = "landlock-read", value_name = "PATH")]
    landlock_read: Vec<String>,
    /// Allow reading and writing beneath PATH (adds to landlock.write).
    #[arg(long = "landlock-write", value_name = "PATH")]
    landlock_write: Vec<String>,
    /// Allow executing PATH or files beneath it (adds to landlock.execute).
    #[arg(long = "landlock-exec", value_name = "PATH")]
    landlock_exec: Vec<String>,
    /// Allow TCP connections to PORT (adds to landlock.tcp_connect).
    #[arg(long = "landlock-connect", value_name = "PORT")]
    landlock_connect: Vec<u16>,
    /// Run without the policy's Landlock rules (recorded in the outcome).
    #[arg(long = "no-landlock")]
    no_landlock: bool,
    /// cgroup memory limit, e.g. 512M.
    #[arg(long, value_name = "SIZE")]
    memory: Option<cordon::policy::Size>,
    /// cgroup limit on the number of processes and threads.
    #[arg(long, value_name = "N")]
    pids: Option<u64>,
    /// cgroup CPU bandwidth in CPUs, e.g. 0.5.
    #[arg(long, value_name = "CPUS")]
    cpus: Option<cordon::policy::Cpus>,
    /// The cgroup under which the sandbox's cgroup is made (a directory under /sys/fs/cgroup).
    #[arg(long = "cgroup-parent", value_name = "DIR")]
    cgroup_parent: Option<String>,
    /// A writable overlay of host directory SRC at DST (default SRC) whose
    /// changes stay on a tmpfs of SIZE (default 512M) until applied.
    #[arg(long, value_name = "SRC[:DST][:SIZE]")]
    workspace: Vec<String>,
    /// When the workspaces' changes are copied onto the host: never,
    /// on_success (exit 0, no timeout, kill or limit hit) or always.
    #[arg(long, value_name = "WHEN")]
    apply: Option<String>,
    /// Write the workspace's changes (files and manifest.json) to the
    /// directory PATH (created; or empty).
    #[arg(long = "export-changes", value_name = "PATH")]
    export_changes: Option<String>,
    /// Bind a host path read-only if it exists, skip it if it does not
    /// (SRC or SRC:DST; an optional bind).
    #[arg(long = "ro-bind-try", value_name = "SRC[:DST]")]
    ro_bind_try: Vec<String>,
    /// Bind a host path read-write if it exists, skip it if it does not
    /// (SRC or SRC:DST; an optional bind).
    #[arg(long = "bind-try", value_name = "SRC[:DST]")]
    bind_try: Vec<String>,
    /// Allow binding PATH although it is on the sensitive list (adds to
    /// allow_sensitive), e.g. a project under /root.
    #[arg(long = "allow-sensitive", value_name = "PATH")]
    allow_sensitive: Vec<String>,
    /// Run with what this host can enforce of the cgroup limits and of
    /// Landlock (compatibility best_effort); the rest is listed under
    /// unenforced.
    #[arg(long = "best-effort")]
    best_effort: bool,
    /// The host uid the sandbox's uid maps to when cordon runs as root
    /// (identity.host_uid).
    #[arg(long = "host-uid", value_name = "UID")]
    host_uid: Option<u32>,
    /// The host gid the sandbox's gid maps to when cordon runs as root
    /// (identity.host_gid).
    #[arg(long = "host-gid", value_name = "GID")]
    host_gid: Option<u32>,
    /// Record the calls the seccomp filter refuses in the outcome's
    /// violations (seccomp.report).
    #[arg(long = "seccomp-report")]
    seccomp_report: bool,
}

#[derive(Args)]
struct CreateArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Append the audit trail (JSON lines: the sandbox's start and stop,
    /// each command's start and end, the egress proxy's decisions) to
    /// PATH, or write it to the inherited descriptor N (fd:N); replaces the
    /// policy's audit.path.
    #[arg(long = "audit-log", value_name = "PATH|fd:N")]
    audit_log: Option<String>,
    /// Stop the sandbox after DURATION without a command (lifecycle.idle).
    #[arg(long, value_name = "DURATION")]
    idle: Option<Dur>,
    /// Stop the sandbox DURATION after it was made (lifecycle.max).
    #[arg(long = "max-lifetime", value_name = "DURATION")]
    max_lifetime: Option<Dur>,
    /// No warnings on stderr; errors are still printed.
    #[arg(short, long)]
    quiet: bool,
    /// The sandbox's name: 1 to 63 of A-Z a-z 0-9 _ . -, starting with a
    /// letter or digit.
    #[arg(value_name = "NAME")]
    name: String,
}

#[derive(Args, Debug, Default)]
struct RunArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Run the command in the named sandbox NAME (made by cordon create)
    /// instead of a new one; with it only --env NAME=VALUE, --chdir,
    /// --time-limit, --status-json, --status-fd and -q apply.
    #[arg(long = "in", value_name = "NAME")]
    in_name: Option<String>,
    /// Write the outcome as JSON to this file.
    #[arg(long = "status-json", value_name = "PATH")]
    status_json: Option<PathBuf>,
    /// Write the outcome as JSON to this inherited file descriptor.
    #[arg(long = "status-fd", value_name = "N")]
    status_fd: Option<i32>,
    /// Append the audit trail (JSON lines) to PATH, or write it to the inherited descriptor N (fd:N); replaces the policy's audit.path.
    #[arg(long = "audit-log", value_name = "PATH|fd:N")]
    audit_log: Option<String>,
    /// Print a summary of the outcome on stderr.
    #[arg(short, long)]
    verbose: bool,
    /// No warnings and no notices (timeout, out of memory) on stderr; errors
    /// are still printed.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Run the command on a pty of the sandbox's own (default when cordon's
    /// stdin and stdout are terminals): job control, Ctrl-C, window size.
    #[arg(long, conflicts_with = "no_tty")]
    tty: bool,
    /// No pty: the command's stdio are cordon's own, in a session without a
    /// controlling terminal.
    #[arg(long = "no-tty")]
    no_tty: bool,
    /// Run the command again in a fresh sandbox each time it ends: N runs
    /// in all, or forever (until cordon is signalled). The exit code and
    /// the outcome are the last run's.
    #[arg(long, value_name = "N|forever")]
    rerun: Option<cli::service::Rerun>,
    /// With --rerun: stop after the first run that does not exit with 0.
    #[arg(long = "rerun-stop-on-failure", requires = "rerun")]
    rerun_stop_on_failure: bool,
    /// The command and its arguments: after `--`, or after the last option
    /// (every word from the command's name on belongs to the command).
    #[arg(trailing_var_arg = true, required = true, num_args = 1.., value_name = "CMD")]
    command: Vec<OsString>,
}

/// `--tty`, `--no-tty`, or by default a pty when cordon's stdin and
/// stdout are terminals, cordon is in the foreground (a background job
/// would stop on the raw mode) and the sandbox has a /dev for it. `Err`:
/// `--tty` asked for one the sandbox cannot have.
fn choose_tty(a: &RunArgs, plan: &mut Plan) -> Result<(), String> {
    if a.no_tty {
        return Ok(());
    }
    if a.tty {
        return plan.child.set_tty(true).map_err(|e| format!("--tty: {e}"));
    }
    if cordon::sys::isatty(0) && cordon::sys::isatty(1) && cordon::sys::in_foreground(0) {
        // Without a /dev in the sandbox: pipes, as with --no-tty.
        let _ = plan.child.set_tty(true);
    }
    Ok(())
}

/// The mount flags in the order they were given on the command line.
fn mount_flags(a: &PolicyArgs, m: &ArgMatches) -> Result<Vec<(String, cordon::policy::Mount)>, PolicyError> {
    let mut out: Vec<(usize, String, cordon::policy::Mount)> = Vec::new();
    // The matches of `run`'s fast path (`run_fast_path`) know no id, which
    // `indices_of` refuses with a panic in a debug build: asked first.
    let idx = |id: &str| -> Vec<usize> {
        if !m.try_contains_id(id).unwrap_or(false) {
            return Vec::new();
        }
        m.indices_of(id).map(|i| i.collect()).unwrap_or_default()
    };
    for (v, i) in a.ro_bind.iter().zip(idx("ro_bind")) {
        out.push((
            i,
            format!("--ro-bind {v}"),
            parse_bind("--ro-bind", v, true, false)?,
        ));
    }
    for (v, i) in a.bind.iter().zip(idx("bind")) {
        out.push((i, format!("--bind {v}"), parse_bind("--bind", v, false, false)?));
    }
    for (v, i) in a.bind_nofollow.iter().zip(idx("bind_nofollow")) {
        out.push((
            i,
            format!("--bind-nofollow {v}"),
            parse_bind("--bind-nofollow", v, false, true)?,
        ));
    }
    for (v, i) in a.tmpfs.iter().zip(idx("tmpfs")) {
        out.push((i, format!("--tmpfs {v}"), parse_tmpfs(v)?));
    }
    for (flag, id, values, readonly) in [
        ("--ro-bind-try", "ro_bind_try", &a.ro_bind_try, true),
        ("--bind-try", "bind_try", &a.bind_try, false),
    ] {
        for (v, i) in values.iter().zip(idx(id)) {
            let mut m = parse_bind(flag, v, readonly, false)?;
            if let cordon::policy::Mount::Bind { optional, .. } = &mut m {
                *optional = true;
            }
            out.push((i, format!("{flag} {v}"), m));
        }
    }
    out.sort_by_key(|x| x.0);
    out.into_iter()
        .map(|(_, f, m)| Ok((f.clone(), absolute_source(&f, m)?)))
        .collect()
}

/// A bind's relative source (`./job.py`, `data`) resolved against the
/// current directory, lexically (symbolic links are resolved later, as for
/// any source). Without a destination the sandbox path is the resolved one.
fn absolute_source(flag: &str, m: cordon::policy::Mount) -> Result<cordon::policy::Mount, PolicyError> {
    let cordon::policy::Mount::Bind { src, dst, .. } = &m else {
        return Ok(m);
    };
    if src.starts_with('/') {
        return Ok(m);
    }
    let cwd = std::env::current_dir().map_err(|e| PolicyError {
        file: cordon::policy::overrides::CLI_SOURCE.to_string(),
        path: flag.to_string(),
        position: None,
        message: format!("a relative source needs the current directory, which cannot be read: {e}"),
    })?;
    let mut abs = PathBuf::new();
    for c in cwd.join(src).components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                abs.pop();
            }
            c => abs.push(c),
        }
    }
    let abs = abs.to_string_lossy().into_owned();
    let same = dst == src;
    let mut m = m;
    if let cordon::policy::Mount::Bind { src, dst, .. } = &mut m {
        if same {
            *dst = abs.clone();
        }
        *src = abs;
    }
    Ok(m)
}

/// A policy as loaded: the model, its name and its sources (the files it
/// came from, to place errors found later).
struct Loaded {
    policy: Policy,
    name: String,
    sources: cordon::policy::extends::Sources,
}

/// Load a policy by name or path (with what it extends), or the built-in default.
fn load_policy(path: &Option<PathBuf>) -> Result<Loaded, PolicyError> {
    Ok(match path {
        Some(p) => {
            shadow_warning(p);
            let (policy, sources) = Policy::load(p)?;
            Loaded {
                policy,
                name: sources.label().to_string(),
                sources,
            }
        }
        None => Loaded {
            policy: Policy::builtin_default()?,
            name: DEFAULT_POLICY_NAME.to_string(),
            sources: cordon::policy::extends::Sources::single(
                DEFAULT_POLICY_NAME,
                cordon::policy::DEFAULT_POLICY_JSON,
            ),
        },
    })
}

/// `--policy NAME` found in the current directory although the name is
/// also a policy elsewhere (a built-in one, the user's, the system's): say
/// so, since a directory one works in may hold a file one did not write.
fn shadow_warning(spec: &Path) {
    use cordon::policy::named::{is_name, Found, SearchPath};
    let Some(name) = spec.to_str().filter(|s| is_name(s)) else {
        return;
    };
    if let [Found::File(first), shadowed, ..] = SearchPath::from_env().candidates(name).as_slice() {
        if first.parent() == Some(Path::new(".")) {
            eprintln!(
                "cordon: warning: --policy {name} is {} (the current directory), which shadows {}",
                first.display(),
                shadowed.label()
            );
        }
    }
}

/// The overrides the policy flags describe.
fn overrides(a: &PolicyArgs, m: &ArgMatches) -> Result<Overrides, PolicyError> {
    let mut o = Overrides {
        mounts: mount_flags(a, m)?,
        ..Overrides::default()
    };
    o.cwd = a.chdir.clone();
    o.env = a.env.clone();
    o.hostname = a.hostname.clone();
    o.wall_time = a.time_limit;
    o.share_net = a.share_net;
    o.net = a.net.map(|m| ("--net".to_string(), m));
    o.allow_net = a
        .allow_net
        .iter()
        .map(|p| ("--allow-net".to_string(), p.clone()))
        .collect();
    o.uid = a.uid;
    o.gid = a.gid;
    o.landlock_read = a.landlock_read.clone();
    o.landlock_write = a.landlock_write.clone();
    o.landlock_exec = a.landlock_exec.clone();
    o.landlock_connect = a.landlock_connect.clone();
    o.no_landlock = a.no_landlock;
    o.memory = a.memory;
    o.pids = a.pids;
    o.cpus = a.cpus;
    o.cgroup_parent = a.cgroup_parent.clone();
    for w in &a.workspace {
        let ws = cordon::policy::workspace::parse_flag(w).map_err(|message| PolicyError {
            file: cordon::policy::overrides::CLI_SOURCE.to_string(),
            path: "--workspace".to_string(),
            position: None,
            message,
        })?;
        o.workspaces.push((format!("--workspace {w}"), ws));
    }
    o.apply = a
        .apply
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|message| PolicyError {
            file: cordon::policy::overrides::CLI_SOURCE.to_string(),
            path: "--apply".to_string(),
            position: None,
            message,
        })?;
    o.export_changes = a.export_changes.clone();
    o.allow_sensitive = a.allow_sensitive.clone();
    o.best_effort = a.best_effort;
    o.host_uid = a.host_uid;
    o.host_gid = a.host_gid;
    o.seccomp_report = a.seccomp_report;
    Ok(o)
}

/// Read every `--secret-env` before cordon opens any file of its own (so
/// that `fd:N` can only name a descriptor cordon inherited). All arguments
/// are parsed before anything is read; a name given twice, a descriptor
/// given twice and `--status-fd`'s descriptor are refused. Each secret's
/// source is described for `cordon check`.
fn read_secrets(a: &PolicyArgs, status_fd: Option<i32>) -> Result<Vec<(SecretEnv, String)>, SecretError> {
    const FLAG: &str = "--secret-env";
    let err = |name: &str, message: String| SecretError {
        origin: FLAG.to_string(),
        name: Some(name.to_string()),
        message,
    };
    let mut specs: Vec<(String, Source)> = Vec::new();
    for spec in &a.secret_env {
        let (name, source) = secret::parse_spec(FLAG, spec)?;
        if specs.iter().any(|(n, _)| *n == name) {
            return Err(err(&name, "given twice".to_string()));
        }
        if let Source::Fd(fd) = source {
            if specs.iter().any(|(_, s)| *s == Source::Fd(fd)) {
                return Err(err(&name, format!("fd:{fd} is given for another secret too")));
            }
            if status_fd == Some(fd) {
                return Err(err(&name, format!("fd:{fd} is also --status-fd")));
            }
        }
        specs.push((name, source));
    }
    if !specs.is_empty() {
        // cordon holds the values in memory until the payload ends: a crash
        // must not write them to a core file. Only the soft limit (inherited
        // by the clone child, which sets the payload's own from the policy).
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit through a valid pointer.
        let got = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut r) };
        if got != 0 || cordon::sys::setrlimit(libc::RLIMIT_CORE, 0, r.rlim_max).is_err() {
            return Err(SecretError {
                origin: FLAG.to_string(),
                name: None,
                message: "cannot turn off core dumps of cordon, which would hold the secret".to_string(),
            });
        }
    }
    let mut out = Vec::with_capacity(specs.len());
    for (name, source) in specs {
        let (value, from) = match &source {
            Source::File(p) => (Secret::read_file(p), format!("@{}", p.display())),
            Source::Fd(fd) => {
                let fd = *fd;
                // Not open: refused before anything takes the number.
                if let Err(e) = cordon::sys::fstat_dev_mode(fd) {
                    return Err(err(&name, format!("fd:{fd}: {}", e.describe())));
                }
                // SAFETY: fd is open and was inherited: cordon has opened no
                // file yet (this runs first), no other secret names it and it
                // is not --status-fd or 0-2 (parse_spec refuses those), so
                // nothing else in this process owns it; the OwnedFd closes it
                // after reading, before the payload starts.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                (Secret::read_fd(owned), format!("fd:{fd}"))
            }
        };
        let value = value.map_err(|m| match &source {
            Source::File(_) => err(&name, m),
            Source::Fd(fd) => err(&name, format!("fd:{fd}: {m}")),
        })?;
        out.push((SecretEnv::new(FLAG, &name, value)?, from));
    }
    Ok(out)
}

/// Load the policy and apply the flags.
fn effective_policy(a: &PolicyArgs, m: &ArgMatches) -> Result<Loaded, PolicyError> {
    let Loaded {
        mut policy,
        name,
        sources,
    } = load_policy(&a.policy)?;
    let o = overrides(a, m)?;
    o.apply(&mut policy, &name)?;
    Ok(Loaded {
        policy,
        name,
        sources,
    })
}

fn failed_outcome(err: LaunchError) -> Outcome {
    Outcome {
        status: Status::SetupFailed,
        exit_code: EXIT_SETUP,
        signal: None,
        wall_time_ms: 0,
        user_time_ms: 0,
        system_time_ms: 0,
        max_rss_kb: 0,
        supervisor_max_rss_kb: 0,
        unenforced: Vec::new(),
        limits_hit: Vec::new(),
        host_uid: None,
        host_gid: None,
        network: None,
        violations: Vec::new(),
        violations_total: 0,
        cgroup: None,
        learned: None,
        error: Some(err),
        audit_dropped: None,
        workspaces: Vec::new(),
    }
}

/// Write the outcome to `--status-json` (opened before the launch) and
/// `--status-fd`. A status file the payload replaced is reported, not
/// followed; the exit code stays the payload's.
fn write_status(a: &RunArgs, status_json: Option<&OutputFile>, out: &Outcome) {
    let json = out.to_json() + "\n";
    if let Some(f) = status_json {
        if let Err(e) = f.write(json.as_bytes()) {
            eprintln!("cordon: status-json: {e}");
        }
    }
    if let Some(fd) = a.status_fd {
        // SAFETY: the caller handed us this fd for the outcome; ManuallyDrop
        // leaves it open for the caller.
        let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
        if let Err(e) = f.write_all(json.as_bytes()) {
            eprintln!("cordon: status-fd {fd}: {e}");
        }
    }
}

/// The `run` flags that apply with `--in`.
const RUN_IN_FLAGS: [&str; 8] = [
    "in_name",
    "command",
    "env",
    "chdir",
    "time_limit",
    "status_json",
    "status_fd",
    "quiet",
];

/// `cordon run --in NAME`: no policy is read; the named sandbox has one.
fn run_in(a: &RunArgs, name: &str, m: &ArgMatches) -> i32 {
    let given: Vec<String> = m
        .ids()
        .filter(|id| m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
        .map(|id| id.to_string())
        // The flattened structs' groups carry their type's name.
        .filter(|id| !id.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|id| !RUN_IN_FLAGS.contains(&id.as_str()))
        .collect();
    // Nothing runs on these errors; --status-fd still gets the outcome, as
    // from a cold run.
    if !given.is_empty() {
        let msg = format!(
            "{} do(es) not apply to a named sandbox (its policy was fixed by cordon create); with --in only --env NAME=VALUE, --chdir, --time-limit, --status-json, --status-fd and -q apply",
            given.iter().map(|g| format!("--{}", g.replace('_', "-"))).collect::<Vec<_>>().join(", ")
        );
        eprintln!("cordon: run --in: {msg}");
        write_status(a, None, &failed_outcome(LaunchError::other("run --in", msg)));
        return EXIT_SETUP;
    }
    let status_json = match a.status_json.as_deref().map(OutputFile::open).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cordon: status-json: {e}");
            write_status(a, None, &failed_outcome(LaunchError::other("status-json", e)));
            return EXIT_SETUP;
        }
    };
    cli::named::run_in(cli::named::RunInOptions {
        name,
        argv: &a.command,
        env: &a.policy.env,
        cwd: a.policy.chdir.as_deref(),
        time_limit: a.policy.time_limit.map(|d| d.0),
        status_json: status_json.as_ref(),
        status_fd: a.status_fd,
        quiet: a.quiet,
    })
}

/// `cordon create NAME`.
fn create(a: CreateArgs, m: &ArgMatches) -> i32 {
    // As for run: secrets' and --audit-log's fd:N first, before cordon
    // opens anything of its own.
    let secrets = match read_secrets(&a.policy, None) {
        Ok(s) => s.into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("cordon: create: {e}");
            return EXIT_SETUP;
        }
    };
    let audit_log = match a
        .audit_log
        .as_deref()
        .map(|spec| {
            cordon::audit::AuditTarget::parse(spec).and_then(|t| cordon::audit::AuditLog::open(&t, &[]))
        })
        .transpose()
    {
        Ok(log) => log,
        Err(e) => {
            eprintln!("cordon: create: --audit-log: {e}");
            return EXIT_SETUP;
        }
    };
    let built = effective_policy(&a.policy, m).and_then(|mut l| {
        if audit_log.is_some() {
            l.policy.audit = None;
        }
        let mut life = l.policy.lifecycle.unwrap_or_default();
        life.idle = a.idle.or(life.idle);
        life.max = a.max_lifetime.or(life.max);
        for (flag, d) in [("--idle", a.idle), ("--max-lifetime", a.max_lifetime)] {
            if d.is_some_and(|d| d.0.is_zero()) {
                return Err(PolicyError {
                    file: cordon::policy::overrides::CLI_SOURCE.to_string(),
                    path: flag.to_string(),
                    position: None,
                    message: "must be more than 0 (leave it out for no limit)".to_string(),
                });
            }
        }
        l.policy.lifecycle = Some(life);
        l.policy
            .check_supervised(&l.name)
            .and_then(|_| Plan::build_serving(&l.policy, &l.name, &secrets))
            .map(|mut plan| {
                if let Some(log) = audit_log {
                    plan.supervisor.audit = Some(cordon::audit::AuditRun::new(log, &l.policy, &l.name));
                }
                (plan, life, l.name.clone())
            })
            .map_err(|e| l.sources.locate(e))
    });
    drop(secrets);
    let (plan, life, name) = match built {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cordon: create: {e}");
            return EXIT_SETUP;
        }
    };
    cli::named::create(
        cli::named::CreateOptions {
            name: a.name,
            policy_name: name,
            idle: life.idle.map(|d| d.0),
            max: life.max.map(|d| d.0),
            quiet: a.quiet,
        },
        plan,
    )
}

fn run(a: RunArgs, m: &ArgMatches) -> i32 {
    if let Some(name) = &a.in_name {
        return run_in(&a, name, m);
    }
    // Before cordon opens anything of its own: the `fd:N` of --secret-env
    // and of --audit-log must be descriptors cordon inherited. Secrets first
    // (each fd:N is read to its end and closed); --audit-log replaces the
    // policy's audit.path, which is then never opened (see cordon::audit).
    let secrets = read_secrets(&a.policy, a.status_fd);
    let audit_log = a
        .audit_log
        .as_deref()
        .map(|spec| {
            cordon::audit::AuditTarget::parse(spec)
                .and_then(|t| cordon::audit::AuditLog::open(&t, a.status_fd.as_slice()))
        })
        .transpose();
    // Opened before anything runs: the payload may be able to replace the
    // path while it runs (see cordon::output).
    let status_json = match a.status_json.as_deref().map(OutputFile::open).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cordon: status-json: {e}");
            // Nothing runs; --status-fd still gets the outcome.
            write_status(&a, None, &failed_outcome(LaunchError::other("status-json", e)));
            return EXIT_SETUP;
        }
    };
    let status_json = status_json.as_ref();
    let secrets = match secrets {
        Ok(s) => s.into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("cordon: {e}");
            write_status(
                &a,
                status_json,
                &failed_outcome(LaunchError::other("secret-env", e.to_string())),
            );
            return EXIT_SETUP;
        }
    };
    let audit_log = match audit_log {
        Ok(log) => log,
        Err(e) => {
            eprintln!("cordon: --audit-log: {e}");
            write_status(
                &a,
                status_json,
                &failed_outcome(LaunchError::other("audit-log", e)),
            );
            return EXIT_SETUP;
        }
    };
    let prepared = effective_policy(&a.policy, m).and_then(|mut l| {
        if audit_log.is_some() {
            l.policy.audit = None;
        }
        l.policy
            .check_supervised(&l.name)
            .and_then(|_| Plan::build_with_secrets(&l.policy, &l.name, &a.command, &secrets))
            .map(|mut plan| {
                if let Some(log) = audit_log {
                    plan.supervisor.audit = Some(cordon::audit::AuditRun::new(log, &l.policy, &l.name));
                }
                plan
            })
            .map_err(|e| l.sources.locate(e))
    });
    // The plan holds its own copy (zeroed when it is dropped).
    drop(secrets);
    let mut plan = match prepared {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("cordon: {e}");
            write_status(
                &a,
                status_json,
                &failed_outcome(LaunchError::other("policy", e.to_string())),
            );
            return EXIT_SETUP;
        }
    };
    if let Err(e) = choose_tty(&a, &mut plan) {
        eprintln!("cordon: {e}");
        write_status(&a, status_json, &failed_outcome(LaunchError::other("tty", e)));
        return EXIT_SETUP;
    }
    if !a.quiet {
        for item in &plan.supervisor.unenforced {
            eprintln!("cordon: warning: not enforced: {item}");
        }
    }
    let (out, _runs) = cli::service::run_repeatedly(
        &mut plan,
        a.rerun,
        a.rerun_stop_on_failure,
        RunOptions {
            forward_signals: true,
            print_violations: a.verbose,
            leave_init: true,
        },
        a.verbose,
    );
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cordon: {e}");
            if let Some(h) = &e.hint {
                eprintln!("cordon: hint: {h}");
            }
            let mut failed = failed_outcome(e.clone());
            failed.audit_dropped = plan.supervisor.audit.as_ref().map(|l| l.log.dropped());
            write_status(&a, status_json, &failed);
            return EXIT_SETUP;
        }
    };
    // The run is over: keep what the supervisor still needs (the audit log),
    // release the host id and zero the plan's copy of any secret now; the
    // rest of the plan is left to the exit (see Plan::end_at_exit).
    let audit = plan.supervisor.audit.take();
    plan.end_at_exit();
    // The outcome first: the payload may have filled our stderr (a pipe the
    // caller may read only after we exit), and the lines below may block.
    write_status(&a, status_json, &out);
    if let Some(Err(e)) = audit.as_ref().map(|l| l.log.check_unreplaced()) {
        if !a.quiet {
            eprintln!("cordon: warning: {e}");
        }
    }
    if !a.quiet {
        if let Some(line) = ending_notice(&out) {
            eprintln!("cordon: {line}");
        }
    }
    if let Some(err) = &out.error {
        eprintln!("cordon: {err}");
        if let Some(h) = &err.hint {
            eprintln!("cordon: hint: {h}");
        }
        if matches!(out.exit_code, 126 | 127) {
            if let Some(h) = bwrap_pair_hint(&a.command) {
                eprintln!("cordon: hint: {h}");
            }
        }
    }
    for w in &out.workspaces {
        if let Some(e) = &w.error {
            eprintln!("cordon: workspace {}: {e}", w.path);
        }
        if !w.refused.is_empty() {
            let shown: Vec<String> = w
                .refused
                .iter()
                .take(5)
                .map(|r| format!("{} ({})", r.path, r.reason))
                .collect();
            let more = w.refused.len().saturating_sub(shown.len());
            eprintln!(
                "cordon: warning: workspace {}: not applied: {}{}",
                w.path,
                shown.join("; "),
                if more > 0 {
                    format!("; and {more} more (see the outcome)")
                } else {
                    String::new()
                }
            );
        }
        if a.verbose {
            eprintln!(
                "cordon: workspace {} -> {}: {} changed, {} bytes, {} bytes on its tmpfs, {}",
                w.path,
                w.to,
                w.files_changed,
                w.bytes,
                w.upper_bytes,
                if w.applied {
                    "applied"
                } else if w.applied_paths.is_empty() {
                    "not applied"
                } else {
                    "partly applied"
                }
            );
        }
    }
    if a.verbose {
        eprintln!(
            "cordon: {} exit_code={} wall={}ms user={}ms sys={}ms max_rss={}KiB",
            out.status.name(),
            out.exit_code,
            out.wall_time_ms,
            out.user_time_ms,
            out.system_time_ms,
            out.max_rss_kb
        );
    }
    out.exit_code
}

/// Whether `command` is what follows the first `--` of cordon's own
/// command line.
fn after_double_dash(command: &[OsString]) -> bool {
    let args = args_os();
    args.iter()
        .position(|a| a == "--")
        .is_some_and(|i| args[i + 1..] == *command)
}

/// When the command that was not found (or not executable) is the word
/// after a one-argument bind (`--ro-bind SRC /dst CMD` without `--`): the
/// bwrap form was meant. None otherwise.
fn bwrap_pair_hint(command: &[OsString]) -> Option<String> {
    let args = args_os();
    if args.iter().any(|a| a == "--") {
        return None;
    }
    let first = command.first()?;
    let p = args.iter().position(|a| a == first)?;
    let flag = args.get(p.checked_sub(2)?)?.to_str()?;
    let src = args.get(p - 1)?.to_str()?;
    if !BIND_FLAGS.contains(&flag) || src.contains(':') || !first.to_str()?.starts_with('/') {
        return None;
    }
    let dst = first.to_string_lossy();
    Some(format!(
        "{dst} was taken as the command: for bubblewrap's two-argument form put -- before the command ({flag} {src} {dst} -- CMD), or write {flag} {src}:{dst}"
    ))
}

/// The one line a run that cordon ended prints even without `-v`: the
/// wall-clock limit (exit code 124) or the out-of-memory kill (137).
fn ending_notice(out: &Outcome) -> Option<String> {
    match out.status {
        Status::TimedOut => Some(format!(
            "timed out: the wall-clock limit expired after {} ms and the sandbox was killed (exit code {})",
            out.wall_time_ms, out.exit_code
        )),
        Status::OomKilled => Some(format!(
            "out of memory: the payload was killed at the sandbox's memory limit (exit code {})",
            out.exit_code
        )),
        _ => None,
    }
}

/// `cordon exec`: everything that needs no supervisor, applied to this
/// process, then exec in place.
fn exec(a: ExecArgs, m: &ArgMatches) -> i32 {
    // Before cordon opens anything (fd:N must be an inherited descriptor).
    let secrets = match read_secrets(&a.policy, None) {
        Ok(s) => s.into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("cordon: exec: {e}");
            return EXIT_SETUP;
        }
    };
    // Without --policy: the built-in policy for in-place use, the default
    // without the layers that need a supervisor.
    let loaded = if a.policy.policy.is_none() {
        Policy::from_json("<built-in exec policy>", cordon::policy::EXEC_POLICY_JSON).and_then(|mut p| {
            let o = overrides(&a.policy, m)?;
            o.apply(&mut p, "<built-in exec policy>")?;
            Ok(Loaded {
                policy: p,
                name: "<built-in exec policy>".to_string(),
                sources: cordon::policy::extends::Sources::single(
                    "<built-in exec policy>",
                    cordon::policy::EXEC_POLICY_JSON,
                ),
            })
        })
    } else {
        effective_policy(&a.policy, m)
    };
    let prepared = loaded.and_then(|l| {
        cordon::embed::prepare_with_secrets(&l.policy, &l.name, &a.command, &secrets)
            .map_err(|e| l.sources.locate(e))
    });
    // The Prepared holds its own copy.
    drop(secrets);
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cordon: exec: {e}");
            return EXIT_SETUP;
        }
    };
    if !a.quiet {
        for item in prepared.unenforced() {
            eprintln!("cordon: warning: not enforced: {item}");
        }
    }
    let e = prepared.apply_and_exec();
    let d = prepared.describe(e);
    eprintln!("cordon: {d}");
    if let Some(h) = &d.hint {
        eprintln!("cordon: hint: {h}");
    }
    if e.step == cordon::error::Step::Exec {
        cordon::launch::child::exec_exit_code(Errno(e.errno))
    } else {
        EXIT_SETUP
    }
}

fn learn(a: LearnArgs, m: &ArgMatches) -> i32 {
    // Before cordon opens anything (fd:N must be an inherited descriptor).
    let secrets = match read_secrets(&a.policy, None) {
        Ok(s) => s.into_iter().map(|(s, _)| s).collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("cordon: learn: {e}");
            return EXIT_SETUP;
        }
    };
    // Opened before anything runs (see cordon::output).
    let output = match a.output.as_deref().map(OutputFile::open).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cordon: learn: {e}");
            return EXIT_SETUP;
        }
    };
    let prepared = effective_policy(&a.policy, m).and_then(|l| {
        l.policy
            .check_supervised(&l.name)
            .and_then(|_| Plan::build_with_secrets(&l.policy, &l.name, &a.command, &secrets))
            .map_err(|e| l.sources.locate(e))
            .map(|p| (l, p))
    });
    drop(secrets);
    let (mut loaded, plan) = match prepared {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cordon: {e}");
            return EXIT_SETUP;
        }
    };
    let plan = match plan.learning(a.allow_dangerous) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cordon: {e}");
            return EXIT_SETUP;
        }
    };
    let out = match launch::run(
        &plan,
        RunOptions {
            forward_signals: true,
            print_violations: false,
            leave_init: true,
        },
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cordon: {e}");
            if let Some(h) = &e.hint {
                eprintln!("cordon: hint: {h}");
            }
            return EXIT_SETUP;
        }
    };
    if let Some(err) = &out.error {
        eprintln!("cordon: {err}");
        return out.exit_code;
    }
    let learned = out.learned.clone().unwrap_or_default();
    let section = cordon::seccomp::learn::section(&learned);
    eprintln!(
        "cordon: learn: the command {} ({}); {} syscalls allowed, {} argument rules",
        out.status.name(),
        out.exit_code,
        section.allow.len(),
        section.rules.len()
    );
    if out.exit_code != 0 {
        eprintln!(
            "cordon: learn: the command did not succeed: the policy holds only what it used until then"
        );
    }
    if a.allow_dangerous {
        eprintln!(
            "cordon: learn: warning: --allow-dangerous: calls every cordon policy refuses were allowed while learning and are in the policy if the command made them"
        );
    } else {
        for line in cordon::seccomp::learn::refused_report(&learned) {
            eprintln!("cordon: learn: {line}");
        }
    }
    loaded.policy.seccomp = Some(section);
    if let Err(e) = loaded.policy.check(&loaded.name) {
        eprintln!("cordon: learn: the learnt policy does not check: {e}");
        return EXIT_SETUP;
    }
    let text = loaded.policy.to_json_pretty() + "\n";
    match &output {
        Some(f) => match f.write(text.as_bytes()) {
            Ok(()) => out.exit_code,
            // The payload replaced the output file: say so, keep its exit code.
            Err(WriteError::Replaced(e)) => {
                eprintln!("cordon: learn: {e}");
                out.exit_code
            }
            Err(e) => {
                eprintln!("cordon: learn: {e}");
                EXIT_SETUP
            }
        },
        None => match std::io::stdout().write_all(text.as_bytes()) {
            Ok(()) => out.exit_code,
            Err(e) => {
                eprintln!("cordon: standard output: {e}");
                EXIT_SETUP
            }
        },
    }
}

/// Everything `run` checks before launching, without launching.
fn check_host(l: &Loaded) -> Result<(), PolicyError> {
    // SAFETY: geteuid/getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // The host id range is checked; no id is taken.
    let ids = cordon::plan::resolve_ids(&l.policy, euid, egid, &l.name, &mut || {
        cordon::isolate::hostid::IdRange::from_env().map(|r| r.start)
    })?;
    cordon::isolate::mount::MountPlan::prepare(&l.policy, &l.name, &ids)?;
    cordon::plan::proxy_env(&l.policy, &l.name)?;
    Ok(())
}

fn check(c: CheckArgs, m: &ArgMatches) -> i32 {
    let a = c.policy;
    // Read and checked as run reads them; only their names are shown, on
    // standard error (standard output is the policy, which never holds
    // them), and the values are zeroed at once.
    let secrets = match read_secrets(&a, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cordon: {e}");
            return EXIT_SETUP;
        }
    };
    for (s, from) in &secrets {
        eprintln!(
            "cordon: check: secret {}=<redacted> (from {from}; given to the payload's environment only)",
            s.name()
        );
    }
    drop(secrets);
    let checked =
        effective_policy(&a, m).and_then(|l| check_host(&l).map_err(|e| l.sources.locate(e)).map(|_| l));
    match checked {
        Ok(l) => {
            println!("{}", l.policy.to_json_pretty());
            let warnings = cli::lint::lints(&l.policy);
            for w in &warnings {
                eprintln!("cordon: check: warning: {w}");
            }
            i32::from(c.strict && !warnings.is_empty())
        }
        Err(e) => {
            eprintln!("cordon: {e}");
            EXIT_SETUP
        }
    }
}

/// The policy's seccomp section, checked and compiled for `arch` (default:
/// the architecture cordon runs on).
fn compiled_seccomp(
    path: &Option<PathBuf>,
    arch: Option<Arch>,
) -> Result<(SeccompPolicy, Filter, Vec<Insn>), String> {
    let arch = match arch {
        Some(a) => a,
        None => Arch::native_or_err()?,
    };
    let l = load_policy(path).map_err(|e| e.to_string())?;
    let Some(section) = l.policy.seccomp.clone() else {
        return Err(format!("{}: the policy has no \"seccomp\" section", l.name));
    };
    let filter = section.compile_for(arch).map_err(|e| {
        let e = PolicyError {
            file: l.name.clone(),
            path: format!("seccomp.{}", e.path),
            position: None,
            message: e.message,
        };
        l.sources.locate(e).to_string()
    })?;
    let prog = bpf::compile(&filter);
    Ok((section, filter, prog))
}

/// Write `bytes` to `output` (a regular file, never through a link: see
/// cordon::output) or to standard output.
fn write_output(output: &Option<PathBuf>, bytes: &[u8]) -> Result<(), String> {
    match output {
        Some(p) => OutputFile::open(p)?.write(bytes).map_err(|e| e.to_string()),
        None => std::io::stdout()
            .write_all(bytes)
            .map_err(|e| format!("standard output: {e}")),
    }
}

fn seccomp_command(c: SeccompCommand) -> i32 {
    let result = match c {
        SeccompCommand::Compile {
            policy,
            format,
            arch,
            output,
        } => arch
            .as_deref()
            .map(Arch::parse)
            .transpose()
            .and_then(|arch| compiled_seccomp(&policy, arch))
            .and_then(|(_, _, prog)| {
                eprintln!("cordon: {}", tools::stats_line(&prog));
                let bytes = match format.as_str() {
                    "raw" => bpf::to_raw(&prog),
                    "c" => bpf::to_c(&prog).into_bytes(),
                    _ => bpf::disasm(&prog).into_bytes(),
                };
                write_output(&output, &bytes)
            }),
        SeccompCommand::Explain {
            policy,
            arch,
            syscall,
            args,
        } => arch
            .map_or_else(|| Arch::native_or_err().map(|a| a.name().to_string()), Ok)
            .and_then(|arch| {
                let (filter_arch, _, _) = tools::parse_arch(&arch)?;
                let (section, filter, prog) = compiled_seccomp(&policy, Some(filter_arch))?;
                let text = tools::explain(&section, &filter, &prog, &syscall, &args, &arch)?;
                print!("{text}");
                Ok(())
            }),
        SeccompCommand::Groups { name } => tools::groups_listing(name.as_deref()).map(|t| print!("{t}")),
        SeccompCommand::Import {
            profile,
            policy,
            output,
        } => import(&profile, &policy, &output),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cordon: {e}");
            EXIT_SETUP
        }
    }
}

fn import(profile: &std::path::Path, base: &Option<PathBuf>, output: &Option<PathBuf>) -> Result<(), String> {
    let name = profile.display().to_string();
    let text = cordon::policy::read_bounded(profile).map_err(|e| format!("{name}: {e}"))?;
    let imported = cordon::seccomp::import::import_profile(&text, &name)?;
    for item in &imported.not_expressed {
        eprintln!("cordon: import: not expressed: {item}");
    }
    let mut l = load_policy(base).map_err(|e| e.to_string())?;
    l.policy.seccomp = Some(imported.section);
    l.policy
        .check(&l.name)
        .map_err(|e| format!("the imported policy does not check: {e}"))?;
    write_output(output, (l.policy.to_json_pretty() + "\n").as_bytes())
}

/// The flags that take bwrap's two-argument form `FLAG SRC DST`.
const BIND_FLAGS: [&str; 5] = [
    "--ro-bind",
    "--bind",
    "--bind-nofollow",
    "--ro-bind-try",
    "--bind-try",
];

/// bwrap's `--ro-bind SRC DST` (and `--bind`...) as cordon's
/// `--ro-bind SRC:DST`, among the options of a subcommand only: the walk
/// follows clap's own model (which options take a value) and stops at the
/// first word that is not an option, where the command begins, or at `--`.
/// And only when a `--` follows: without it, the word after SRC may be the
/// command (`cordon run --ro-bind /data /bin/ls`), and is left to be one.
/// SRC must hold no ':' nor start with '-', DST must be an absolute path.
fn bwrap_pairs(cmd: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    let Some(end) = args.iter().position(|a| a == "--") else {
        return args;
    };
    // The subcommand: the first word after the program's name (cordon has
    // no options before it but --help and --version).
    let Some(sub) = args
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(|name| cmd.find_subcommand(name))
    else {
        return args;
    };
    let takes_value = |word: &str| -> bool {
        let arg = if let Some(long) = word.strip_prefix("--") {
            if long.contains('=') {
                return false;
            }
            sub.get_arguments().find(|a| a.get_long() == Some(long))
        } else {
            let mut chars = word.chars().skip(1);
            match (chars.next(), chars.next()) {
                // -o FILE; -oFILE and grouped flags carry their value.
                (Some(c), None) => sub.get_arguments().find(|a| a.get_short() == Some(c)),
                _ => None,
            }
        };
        arg.is_some_and(|a| a.get_action().takes_values())
    };
    let mut out: Vec<OsString> = args[..2].to_vec();
    let mut i = 2;
    while i < end {
        let Some(word) = args[i].to_str().filter(|w| w.starts_with('-')) else {
            // The command begins: the rest is its own.
            break;
        };
        let pair = i + 2 < end
            && BIND_FLAGS.contains(&word)
            && args[i + 1]
                .to_str()
                .is_some_and(|s| !s.contains(':') && !s.starts_with('-'))
            && args[i + 2]
                .to_str()
                .is_some_and(|d| d.starts_with('/') && !d.contains(':'));
        if pair {
            let mut joined = args[i + 1].clone();
            joined.push(":");
            joined.push(&args[i + 2]);
            out.push(args[i].clone());
            out.push(joined);
            i += 3;
        } else if takes_value(word) && i + 1 < end {
            out.extend_from_slice(&args[i..i + 2]);
            i += 2;
        } else {
            out.push(args[i].clone());
            i += 1;
        }
    }
    out.extend_from_slice(&args[i..]);
    out
}

/// The process's entry point, called by the C library's start-up in
/// place of Rust's (`lang_start`).
///
/// Rust's start-up costs every cordon process (a cold launch, and the
/// client of `run --in`, whose whole run is a few hundred microseconds)
/// a dozen system calls and the kernel's formatting of
/// `/proc/self/maps`: it reads the main thread's stack bounds from there
/// to install a SIGSEGV/SIGBUS handler, on an alternate signal stack,
/// that turns a stack overflow into a message (`perf stat -r 400 cordon
/// --version`: 0.68 ms of CPU with it, 0.59 without). Kept here, in
/// the same order: standard descriptors 0-2 that are closed are opened
/// on /dev/null (so that no file cordon opens can become its stdout),
/// and SIGPIPE is ignored (a write to a closed pipe fails with EPIPE
/// and is reported). Left out: the overflow message (a stack overflow
/// still hits the guard page and ends cordon with SIGSEGV) and the
/// main thread's name in panic messages (cordon aborts on panic).
/// The arguments are taken from `argc`/`argv` here ([`args_os`]): the
/// standard library's own copy is only filled without its start-up on
/// glibc (from an `.init_array` function), not on musl.
///
/// # Safety
/// Called once, by the C start-up only: `argv` holds `argc` pointers to
/// NUL-terminated strings that live as long as the process.
#[cfg(not(test))]
#[no_mangle]
unsafe extern "C" fn main(
    argc: std::os::raw::c_int,
    argv: *const *const std::os::raw::c_char,
) -> std::os::raw::c_int {
    let args = (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            use std::os::unix::ffi::OsStrExt;
            // SAFETY: by this function's contract (only the C start-up
            // calls it) `argv` holds `argc` pointers to NUL-terminated
            // strings that live as long as the process; i < argc, and
            // each string is copied here.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect();
    let _ = ARGS.set(args);
    cordon::sys::sanitize_standard_fds();
    // SAFETY: setting a signal's disposition to SIG_IGN passes no handler
    // and touches no memory; nothing else runs yet in this process.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // `std::process::exit` flushes stdout (what Rust's runtime does after
    // main) and exits with the code.
    std::process::exit(cordon_main().into())
}

/// cordon's command line, as the entry point received it.
static ARGS: std::sync::OnceLock<Vec<OsString>> = std::sync::OnceLock::new();

/// cordon's command line: what [`main`] received (`std::env::args_os`
/// where it did not run: under `cargo test`).
fn args_os() -> Vec<OsString> {
    match ARGS.get() {
        Some(a) => a.clone(),
        None => std::env::args_os().collect(),
    }
}

/// Under `cargo test` the test harness makes the entry point; this keeps
/// the command's code reachable (and linted) there as before.
#[cfg(test)]
fn main() {
    std::process::exit(cordon_main().into())
}

/// `cordon run [--in NAME] [--] CMD [ARGS...]` with no other option, the
/// common command line, read without clap: building clap's model of
/// `run`'s 70 options and parsing with it took 90-120 us, a tenth of
/// cordon's start-up before the sandbox is cloned. `None` for anything
/// else (clap then reads it, errors and `--help` included). The result is
/// what clap makes of the same words (`run_fast_path_is_what_clap_reads`):
/// no option given, so nothing but `in_name` and `command` is set, and
/// the matches are empty as clap's are for options not given.
fn run_fast_path(argv: &[OsString]) -> Option<RunArgs> {
    let mut rest = argv.get(1..)?;
    if rest.first()? != "run" {
        return None;
    }
    rest = &rest[1..];
    let mut in_name = None;
    if rest.first().is_some_and(|a| a == "--in") {
        let name = rest.get(1)?.to_str()?;
        // A value that looks like an option is clap's to judge.
        if name.is_empty() || name.starts_with('-') {
            return None;
        }
        in_name = Some(name.to_string());
        rest = &rest[2..];
    }
    match rest.first() {
        Some(a) if a == "--" => rest = &rest[1..],
        // An option, or `-` (clap's to read).
        Some(a) if a.as_encoded_bytes().starts_with(b"-") => return None,
        _ => {}
    }
    if rest.is_empty() {
        return None;
    }
    Some(RunArgs {
        in_name,
        command: rest.to_vec(),
        ..RunArgs::default()
    })
}

fn cordon_main() -> u8 {
    let argv = args_os();
    if let Some(a) = run_fast_path(&argv) {
        // The same path as below, with the matches of no option given.
        return run(a, &ArgMatches::default()).clamp(0, 255) as u8;
    }
    // Made once, kept for the life of the process (clap takes a &'static str).
    let version: &'static str = Box::leak(cli::install::version().into_boxed_str());
    // One clap command for both passes (building it is most of what a
    // short command like `run --in` costs cordon itself).
    let parsed = if argv.get(1).is_some_and(|a| a == "run") {
        let cmd = RunCli::command().version(version);
        let args = bwrap_pairs(&cmd, argv);
        cmd.try_get_matches_from(args).and_then(|m| {
            RunCli::from_arg_matches(&m).map(|c| {
                let RunOnly::Run(a) = c.command;
                (
                    Cli {
                        command: Command::Run(a),
                    },
                    m,
                )
            })
        })
    } else {
        let cmd = Cli::command().version(version);
        let args = bwrap_pairs(&cmd, argv);
        cmd.try_get_matches_from(args)
            .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)))
    };
    let (cli, matches) = match parsed {
        Ok(x) => x,
        Err(e) => {
            // clap's errors quote the argument they stumbled on. With
            // --secret-env on the command line that may be a secret's value
            // typed by mistake (`--secret-env TOKEN VALUE`): only the kind
            // of error is shown then.
            let secret_env = args_os()
                .iter()
                .any(|a| a.as_encoded_bytes().starts_with(b"--secret-env"));
            if e.use_stderr() && secret_env {
                eprintln!(
                    "error: {} (the argument is not shown: the command line has --secret-env, and a value typed there by mistake must not be echoed)\n\nFor more information, try '--help'.",
                    e.kind().as_str().unwrap_or("invalid command line")
                );
            } else {
                let _ = e.print();
            }
            return if e.use_stderr() { EXIT_SETUP as u8 } else { 0 };
        }
    };
    let none = ArgMatches::default();
    let sub = |name: &str| matches.subcommand_matches(name).unwrap_or(&none);
    let command = match &cli.command {
        Command::Run(a) => Some((&a.policy, &a.command)),
        Command::Exec(a) => Some((&a.policy, &a.command)),
        Command::Learn(a) => Some((&a.policy, &a.command)),
        Command::Serve(a) => Some((&a.policy, &a.command)),
        _ => None,
    };
    if let Some((policy, command)) = command {
        if !policy.secret_env.is_empty() && !after_double_dash(command) {
            // A command shows in errors ("exec: NAME: not found"); after
            // `--secret-env NAME=@FILE` a stray word may be a value typed
            // by mistake.
            eprintln!("cordon: with --secret-env, put -- before the command (a word taken as the command is shown in errors, and it may be a secret's value typed by mistake)");
            return EXIT_SETUP as u8;
        }
    }
    let code = match cli.command {
        Command::Run(a) => run(a, sub("run")),
        Command::Create(a) => create(a, sub("create")),
        Command::Ls { json } => cli::named::ls(json),
        Command::Stop { name } => cli::named::stop(&name),
        Command::Check(a) => check(a, sub("check")),
        Command::Exec(a) => exec(a, sub("exec")),
        Command::Seccomp(c) => seccomp_command(c),
        Command::Learn(a) => learn(a, sub("learn")),
        Command::Serve(a) => cli::service::serve(a, sub("serve")),
        Command::Gc { cgroup_parent } => {
            for line in cli::named::gc() {
                println!("{line}");
            }
            for line in cordon::isolate::hostid::clear_left_records() {
                println!("{line}");
            }
            let removed = cordon::cgroup::gc(cgroup_parent.as_deref());
            for p in &removed {
                println!("removed {}", p.display());
            }
            eprintln!("cordon: gc: removed {} stale cgroup(s)", removed.len());
            0
        }
        Command::Connect { host, port } => cli::connect::main(&host, &port),
        Command::Completions { shell } => {
            let script = cli::install::completion(&mut Cli::command(), shell);
            match std::io::stdout().write_all(&script) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("cordon: standard output: {e}");
                    EXIT_SETUP
                }
            }
        }
        Command::InstallMan { prefix } => cli::install::install_man(&mut Cli::command(), &prefix),
        Command::Policies => {
            let list = cordon::policy::named::SearchPath::from_env().list();
            print!("{}", cordon::policy::named::listing_text(&list));
            0
        }
        Command::Features { json } => {
            let f = cordon::features::probe();
            if json {
                match serde_json::to_string_pretty(&f) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("cordon: features: {e}"),
                }
            } else {
                print!("{}", cli::features::render(&f));
            }
            0
        }
    };
    code.clamp(0, 255) as u8
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    /// What clap makes of `argv`, as cordon_main reads a `run` line.
    fn clap_reads(argv: &[OsString]) -> Result<(RunArgs, ArgMatches), clap::Error> {
        let cmd = RunCli::command();
        let args = bwrap_pairs(&cmd, argv.to_vec());
        let m = cmd.try_get_matches_from(args)?;
        let RunOnly::Run(a) = RunCli::from_arg_matches(&m)?.command;
        let sub = m.subcommand_matches("run").cloned().unwrap_or_default();
        Ok((a, sub))
    }

    #[test]
    fn run_fast_path_is_what_clap_reads() {
        let taken: &[&[&str]] = &[
            &["cordon", "run", "--", "/bin/true"],
            &["cordon", "run", "/bin/true"],
            &["cordon", "run", "echo", "-n", "--policy", "x", "--"],
            &["cordon", "run", "--", "-x", "--in", "y"],
            &["cordon", "run", "--", "--", "x"],
            &["cordon", "run", "--in", "box", "--", "/bin/true", "a b"],
            &["cordon", "run", "--in", "box", "sh", "-c", "exit 3"],
            &["cordon", "run", "--in", "b.x-1", "--", "--help"],
        ];
        for line in taken {
            let argv = words(line);
            let fast = run_fast_path(&argv).unwrap_or_else(|| panic!("not taken: {line:?}"));
            let (slow, m) = clap_reads(&argv).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{line:?}");
            // What the run path asks the matches, asked of the fast path's
            // (no id known: clap's debug build panics where it is not
            // asked right) and of clap's.
            let none = ArgMatches::default();
            for matches in [&none, &m] {
                let flags = mount_flags(&fast.policy, matches).unwrap();
                assert!(flags.is_empty(), "{line:?}");
                let o = overrides(&fast.policy, matches).unwrap();
                assert_eq!(
                    format!("{o:?}"),
                    format!("{:?}", overrides(&slow.policy, &m).unwrap()),
                    "{line:?}"
                );
            }
            // For every id the run path asks the matches about,
            // ArgMatches::default() answers as these do: the ids whose order
            // it reads (mount_flags) have no values, and no option but --in
            // was given (the run path reads the command and --in from
            // RunArgs, and run_in leaves both out of its check).
            for id in ["ro_bind", "bind", "bind_nofollow", "tmpfs"] {
                assert!(
                    m.indices_of(id).is_none_or(|mut i| i.next().is_none()),
                    "{line:?}: {id}"
                );
            }
            for id in m.ids() {
                let given = m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine);
                assert!(
                    !given || ["command", "in_name"].contains(&id.as_str()),
                    "{line:?}: {id}"
                );
            }
        }
        // Left to clap: options, errors, help, anything but run.
        let left: &[&[&str]] = &[
            &["cordon"],
            &["cordon", "run"],
            &["cordon", "run", "--"],
            &["cordon", "run", "--help"],
            &["cordon", "run", "-q", "--", "/bin/true"],
            &["cordon", "run", "--policy", "p.json", "--", "/bin/true"],
            &["cordon", "run", "--in"],
            &["cordon", "run", "--in", "box"],
            &["cordon", "run", "--in", "box", "--"],
            &["cordon", "run", "--in", "-q", "--", "x"],
            &["cordon", "run", "--in=box", "--", "x"],
            &["cordon", "run", "--in", "box", "-q", "--", "x"],
            &["cordon", "run", "-", "x"],
            &["cordon", "exec", "--", "/bin/true"],
            &["cordon", "create", "box"],
        ];
        for line in left {
            assert!(run_fast_path(&words(line)).is_none(), "{line:?}");
        }
        // A name that is not UTF-8 is clap's to refuse.
        use std::os::unix::ffi::OsStringExt;
        let mut argv = words(&["cordon", "run", "--in"]);
        argv.push(OsString::from_vec(vec![0xff, b'x']));
        argv.extend(words(&["--", "x"]));
        assert!(run_fast_path(&argv).is_none());
        // A command word that is not UTF-8 is passed on as it is.
        let mut argv = words(&["cordon", "run", "--"]);
        argv.push(OsString::from_vec(vec![b'/', 0xff]));
        let fast = run_fast_path(&argv).unwrap();
        let (slow, _) = clap_reads(&argv).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
    }
}
