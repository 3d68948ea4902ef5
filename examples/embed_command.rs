//! Restrict a command started with `std::process::Command`: cordon as a
//! pre-exec step in someone else's spawn, with no supervisor.
//!
//! ```text
//! cargo run --example embed_command                       # runs /usr/bin/id
//! cargo run --example embed_command -- /bin/sh -c 'echo $$; hostname; ls /'
//! cargo run --example embed_command -- --policy policies/exec.json /usr/bin/id
//! ```
//!
//! The policy is compiled once ([`cordon::prepare`]); the result, a
//! [`cordon::Prepared`], is `Send + Sync` and can be shared (here in an
//! `Arc`) by every spawn of the program, from any thread. Each spawn calls
//! [`cordon::Prepared::apply`] in the forked child, just before `execve`.
//!
//! # Why `apply` may run between fork and exec
//!
//! After `fork` in a multi-threaded program only the forking thread exists
//! in the child; a lock another thread held (the allocator's, stdio's) stays
//! locked forever, so the child may only make async-signal-safe calls.
//! `apply` is written for that: everything that needs memory or a lock
//! (parsing, path resolution, the host checks, compiling the seccomp filter
//! to BPF, building C strings) happened in `prepare`, in the parent; `apply`
//! only reads the prepared plan and makes system calls, and an error is a
//! `Copy` value turned into an `io::Error` without allocating. Being the
//! only thread also matters for `unshare(CLONE_NEWUSER)`, which the kernel
//! refuses to a multi-threaded process.
//!
//! # What is enforced, and what is not
//!
//! From the table in `src/embed.rs` (the rustdoc of `cordon::embed`):
//!
//! | layer | `Sandbox::spawn` | `Prepared::apply` (this example) |
//! |---|---|---|
//! | user namespace, single-id map | yes | yes |
//! | mount, ipc, uts, net, cgroup namespaces | yes | yes |
//! | the policy's mounts and `pivot_root` | yes | yes, except `proc` |
//! | hostname, loopback, new session, working directory | yes | yes |
//! | rlimits, bounding set, no capabilities, `no_new_privs` | yes | yes |
//! | inherited fds above 2 closed at exec | yes | yes |
//! | Landlock, seccomp | yes | yes |
//! | pid namespace with cordon's init | yes | no |
//! | cgroup limits | yes | no |
//! | wall-clock limit | yes | no |
//! | seccomp violation reports | yes | no |
//!
//! The last four need a supervisor process; `prepare` refuses a policy that
//! asks for one of them and names it. `policies/exec.json` (built in as
//! [`cordon::PolicyBuilder::exec_policy`]) is the default policy without
//! them: no pid namespace and no `/proc`. Without a pid namespace the
//! command is a plain child of this program, in the host's pid namespace
//! (Landlock's signal scope, where the kernel has it, keeps it from
//! signalling processes outside its Landlock domain), and what it leaves
//! running in the background is not killed when it exits. For a time
//! limit, kill it yourself; for all of that, use [`cordon::Sandbox`] (see
//! `examples/tool_runner.rs`).
//!
//! `Command`'s own settings still apply, in its order: stdio, then
//! `uid`/`gid` and `current_dir`, then the pre-exec closures, then the
//! environment and `execve`. So:
//!
//! - the environment is `Command`'s, not the policy's `env` section (which
//!   only `cordon exec` and `Sandbox` apply): set it with `env_clear`/`env`;
//! - the program is looked up after `apply`, inside the sandbox's root: give
//!   a path that the policy's mounts provide (`/usr/bin/...`);
//! - the policy's `cwd` replaces `current_dir`; do not set `uid`/`gid` on
//!   the `Command` (started by root, `apply` itself becomes the policy's
//!   unprivileged host id before it creates the user namespace);
//! - stdin, stdout and stderr are whatever `Command` sets up; every other
//!   fd is closed at exec.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use cordon::{Policy, PolicyBuilder};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let policy_file = if args.first().map(String::as_str) == Some("--policy") {
        if args.len() < 2 {
            eprintln!("usage: embed_command [--policy FILE] [COMMAND [ARG...]]");
            return ExitCode::from(2);
        }
        args.remove(0);
        Some(args.remove(0))
    } else {
        None
    };
    if args.is_empty() {
        args.push("/usr/bin/id".to_string());
    }

    // 1. The policy: a file, or the built-in exec policy (policies/exec.json).
    let policy = match &policy_file {
        Some(f) => Policy::from_file(std::path::Path::new(f)),
        None => PolicyBuilder::exec_policy().build(),
    };
    let policy = match policy {
        Ok(p) => p,
        Err(e) => {
            eprintln!("embed_command: {e}");
            return ExitCode::from(cordon::error::exit::SETUP as u8);
        }
    };

    // 2. Prepare once, in the parent: everything that allocates happens here,
    //    and so do the host checks (bind sources exist, the sensitive list).
    //    A policy that needs a supervisor is refused here, with the reason.
    let prepared = match cordon::prepare(&policy) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("embed_command: {e}");
            return ExitCode::from(cordon::error::exit::SETUP as u8);
        }
    };
    for item in prepared.unenforced() {
        eprintln!("embed_command: warning: not enforced: {item}");
    }

    // 3. Spawn with std, restricting the child just before exec.
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..])
        // apply() does not set the environment: give the command a clean one.
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/tmp");
    let p = Arc::clone(&prepared);
    // SAFETY: the closure runs in the forked child, where only
    // async-signal-safe work is allowed: `apply` allocates nothing, takes no
    // lock and only reads `p` (prepared before the fork) and makes system
    // calls; the error conversion does not allocate either.
    unsafe {
        cmd.pre_exec(move || p.apply().map_err(std::io::Error::from));
    }

    // A failure in apply() or exec comes back from spawn/status as the
    // errno only (e.g. "No such file or directory" when the program is not
    // inside the sandbox). `cordon exec` reports the step too.
    match cmd.status() {
        Ok(status) => {
            if let Some(code) = status.code() {
                println!("embed_command: {} exited with {code}", args[0]);
                ExitCode::from(code.clamp(0, 255) as u8)
            } else {
                let sig = status.signal().unwrap_or(0);
                println!("embed_command: {} died of signal {sig}", args[0]);
                ExitCode::from((128 + sig).clamp(0, 255) as u8)
            }
        }
        Err(e) => {
            eprintln!("embed_command: {}: {e}", args[0]);
            ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            })
        }
    }
}
