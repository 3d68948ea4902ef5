//! The bombs and limits of the hardening issue (`bombs.rs`, and the pty
//! and inode hogs of `mounts.rs`), run as commands in a NAMED sandbox
//! (`cordon create` under the default policy, `cordon run --in`), as root
//! and rootless. A named sandbox outlives each command, so besides what the
//! cold tests prove (the limit holds, the host can still fork, allocate and
//! open a pty, the outcome names the limit), each test checks that the
//! same sandbox still runs its next command and that `cordon stop` leaves
//! nothing behind.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cordon::policy::{default_tmpfs_inodes, Mount};

use crate::bombs::{
    bomb_poll, bomb_time_limit, count_in, default_limit, default_policy_with, default_size, limits_hit,
    memory_bomb, one_bomb, outcome, pid_ns, FORK_BOMB,
};
use crate::common::{self, have_python, modes, scaled, slow_factor, time_limit, Mode, NamedRuntime, TempDir};
use crate::mounts::PTY_HOG;
use crate::require;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

use crate::common::alive;

static STATUS: AtomicU32 = AtomicU32::new(0);

/// A named sandbox made by `cordon create` in its own runtime directory
/// (whose drop SIGKILLs a supervisor a failed test left running).
struct Named {
    rt: NamedRuntime,
    mode: Mode,
    name: &'static str,
    /// The sandbox's init (pid 1 inside) and its supervisor.
    init: i32,
    sup: i32,
    /// init's pid namespace: every process of the sandbox is in it.
    ns: PathBuf,
}

impl Named {
    /// `cordon create [args] NAME`, which must succeed.
    fn create(mode: Mode, name: &'static str, args: &[&str]) -> Named {
        let rt = NamedRuntime::new(mode);
        let mut a = vec!["create"];
        a.extend_from_slice(args);
        a.push(name);
        let o = rt.cordon(mode, &a);
        assert!(o.status.success(), "{mode:?}: create {name}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), format!("{name}\n"), "{mode:?}");
        let rows = rt.ls(mode);
        let row = rows
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{mode:?}: {name} not in ls: {rows:?}"));
        let pid = |k: &str| row[k].as_i64().unwrap_or_else(|| panic!("{k} in {row}")) as i32;
        let (init, sup) = (pid("pid"), pid("supervisor_pid"));
        let ns = pid_ns(init as u32).unwrap_or_else(|| panic!("{mode:?}: init {init} has no pid namespace"));
        assert_ne!(Some(&ns), pid_ns(std::process::id()).as_ref(), "{mode:?}");
        Named {
            rt,
            mode,
            name,
            init,
            sup,
            ns,
        }
    }

    /// `cordon run --in NAME [args] --status-json PATH -- cmd`, not started;
    /// PATH is fresh.
    fn command(&self, args: &[&str], cmd: &[&str]) -> (Command, PathBuf) {
        let n = STATUS.fetch_add(1, Ordering::SeqCst);
        let status = self.rt.0.path().join(format!("outcome-{n}.json"));
        let mut c = common::cordon(self.mode);
        c.env("XDG_RUNTIME_DIR", self.rt.0.path())
            .args(["run", "--in", self.name])
            .args(args)
            .arg("--status-json")
            .arg(&status)
            .arg("--")
            .args(cmd);
        (c, status)
    }

    /// Run a command to its end: cordon's output and the outcome.
    fn run(&self, args: &[&str], cmd: &[&str]) -> (Output, serde_json::Value) {
        let (mut c, status) = self.command(args, cmd);
        let out = c.output().expect("spawn cordon run --in");
        let o = outcome(&status);
        (out, o)
    }

    /// `sh -c script` to its end; asserts exit 0 and returns stdout.
    fn sh_ok(&self, script: &str) -> String {
        let (out, o) = self.run(&[], &["/bin/sh", "-c", script]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?}: {script}: {o}\n{}",
            self.mode,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Start a command with its stdout piped.
    fn spawn(&self, args: &[&str], cmd: &[&str], stdin: Stdio) -> (Child, PathBuf) {
        let (mut c, status) = self.command(args, cmd);
        c.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        (c.spawn().expect("spawn cordon run --in"), status)
    }

    /// The sandbox's processes (init included).
    fn processes(&self) -> usize {
        count_in(&self.ns)
    }

    /// The cgroups the supervisor's state names (none without a cgroup).
    fn cgroups(&self) -> Vec<PathBuf> {
        let state = std::fs::read(self.rt.dir().join(format!("{}.json", self.name))).expect("state file");
        let v: serde_json::Value = serde_json::from_slice(&state).expect("state is JSON");
        v["cgroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(PathBuf::from))
            .collect()
    }

    /// `key` of the cgroup file `file` (`pids.events`, `memory.events`)
    /// of the sandbox's cgroup, when it has one with that file.
    fn cgroup_counter(&self, file: &str, key: &str) -> Option<u64> {
        self.cgroups().iter().find_map(|c| {
            let t = std::fs::read_to_string(c.join(file)).ok()?;
            t.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
        })
    }

    /// The same sandbox still runs a command once the bomb's processes
    /// are gone.
    fn runs_its_next_command(&self) {
        let gone = common::wait_until(5.0 * f64::from(slow_factor()), || self.processes() <= 1);
        assert!(
            gone,
            "{:?}: the command's processes outlived it: {} in the sandbox",
            self.mode,
            self.processes()
        );
        let (out, o) = self.run(&[], &["/bin/true"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?}: the next command failed: {o}\n{}",
            self.mode,
            text(&out.stderr)
        );
        assert_eq!(o["status"], "exited", "{:?}: {o}", self.mode);
    }

    /// `cordon stop NAME` succeeds and leaves no process and no file; how
    /// long `cordon stop` took.
    fn stop(self) -> Duration {
        let start = Instant::now();
        let o = self.rt.cordon(self.mode, &["stop", self.name]);
        let took = start.elapsed();
        assert!(o.status.success(), "{:?}: stop: {}", self.mode, text(&o.stderr));
        assert!(
            took < scaled(Duration::from_secs(10)),
            "{:?}: stop took {took:?}",
            self.mode
        );
        let gone = common::wait_until(5.0 * f64::from(slow_factor()), || {
            !alive(self.init) && !alive(self.sup) && self.processes() == 0
        });
        assert!(
            gone,
            "{:?}: left after stop: init {}, supervisor {}, {} processes",
            self.mode,
            alive(self.init),
            alive(self.sup),
            self.processes()
        );
        assert_eq!(self.rt.files(), Vec::<String>::new(), "{:?}", self.mode);
        took
    }
}

/// The host can still fork (and exec) a process.
fn host_forks(mode: Mode, when: &str) {
    let st = Command::new("/bin/true")
        .status()
        .unwrap_or_else(|e| panic!("{mode:?}: the host cannot fork /bin/true {when}: {e}"));
    assert!(st.success(), "{mode:?}: /bin/true failed on the host {when}");
}

/// The fork bomb of `bombs.rs` as a command in a named sandbox. Which limit
/// holds: where the sandbox has a cgroup (root on a cgroup v2 host: the
/// default policy's `cgroup` is `v2_only`) its pids limit (512) refuses
/// the forks; without one (rootless without a delegated cgroup, or a
/// cgroup v1 host) RLIMIT_NPROC (`limits.processes`, 1024) does. Neither
/// ends the bomb (it retries forever), so the command's `--time-limit`
/// (3 s; the default is `limits.wall_time`, an hour) kills its process
/// group: the outcome is `timed_out` with `wall_time` hit.
#[test]
fn a_fork_bomb_in_a_named_sandbox_is_contained_and_the_sandbox_goes_on() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let limit = default_limit("processes")
        .and_then(|v| v.as_u64())
        .expect("the default policy sets limits.processes");
    // init is in the pid namespace too.
    let bound = limit as usize + 1;
    let _one = one_bomb();
    for mode in modes() {
        let time = bomb_time_limit(mode);
        let sb = Named::create(mode, "forkbomb", &[]);
        let (mut child, status) = sb.spawn(
            &["--time-limit", &time],
            &["/usr/bin/python3", "-c", FORK_BOMB],
            Stdio::null(),
        );
        let (mut max, mut forks, mut escaped) = (0, 0, false);
        while child.try_wait().expect("wait").is_none() {
            let n = sb.processes();
            max = max.max(n);
            if n > bound {
                escaped = true;
                // SAFETY: kill has no memory arguments; `init` is this
                // test's sandbox's init (its pid namespace dies with it).
                unsafe { libc::kill(sb.init, libc::SIGKILL) };
                break;
            }
            if n >= 50 {
                host_forks(mode, "during the bomb");
                forks += 1;
            }
            std::thread::sleep(bomb_poll());
        }
        let out = child.wait_with_output().expect("wait cordon");
        assert!(
            !escaped,
            "{mode:?}: the sandbox had more than {bound} processes at once (killed by the test)"
        );
        assert!(
            max >= 50,
            "{mode:?}: the bomb never ran ({max} processes)\n{}",
            text(&out.stderr)
        );
        assert!(forks > 0, "{mode:?}: the host never forked during the bomb");
        assert_eq!(out.status.code(), Some(124), "{mode:?}: {}", text(&out.stderr));
        let o = outcome(&status);
        assert_eq!(o["status"], "timed_out", "{mode:?}: {o}");
        assert!(limits_hit(&o).contains(&"wall_time".to_string()), "{mode:?}: {o}");
        let pids_hits = sb.cgroup_counter("pids.events", "max");
        if mode == Mode::Root && common::is_root() && common::cgroup2_with("pids") {
            assert!(
                pids_hits.is_some(),
                "{mode:?}: no pids cgroup: {:?}",
                sb.cgroups()
            );
        }
        if let Some(hits) = pids_hits {
            // With a cgroup, its pids limit is what refused the forks.
            assert!(
                hits > 0,
                "{mode:?}: the pids limit was never hit ({max} processes)"
            );
        }
        eprintln!("{mode:?}: at most {max} processes (bound {bound}), pids.events max {pids_hits:?}");
        host_forks(mode, "after the bomb");
        sb.runs_its_next_command();
        sb.stop();
    }
}

/// The memory bomb of `bombs.rs` as a command in a named sandbox: where
/// the sandbox has a memory cgroup (root on cgroup v2) its `limits.memory`
/// (2G) has the OOM killer end the bomb; otherwise RLIMIT_AS
/// (`limits.address_space`, 4G) fails its allocations (the payload says
/// so: the outcome cannot see it). The host can allocate meanwhile.
#[test]
fn a_memory_bomb_in_a_named_sandbox_is_stopped_and_the_sandbox_goes_on() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let address_space = default_size("address_space").expect("the default policy sets limits.address_space");
    let bomb = memory_bomb();
    let _one = one_bomb();
    for mode in modes() {
        let sb = Named::create(mode, "membomb", &[]);
        let (mut child, status) = sb.spawn(
            &["--time-limit", &time_limit(60)],
            &["/usr/bin/python3", "-c", &bomb],
            Stdio::null(),
        );
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the bomb's report");
        // While the bomb holds what it got, the host allocates and touches
        // 256 MiB.
        crate::bombs::host_allocates_256_mib();
        let out = child.wait_with_output().expect("wait cordon");
        let o = outcome(&status);
        let err = text(&out.stderr);
        assert!(
            !line.starts_with("escaped"),
            "{mode:?}: the bomb allocated {} MiB without being stopped\n{err}",
            line.trim()
        );
        let oom_kills = sb.cgroup_counter("memory.events", "oom_kill");
        if mode == Mode::Root && common::is_root() && common::cgroup2_with("memory") {
            assert!(
                oom_kills.is_some(),
                "{mode:?}: no memory cgroup: {:?}",
                sb.cgroups()
            );
        }
        match oom_kills {
            Some(kills) => {
                // The cgroup's limit (below the address-space limit) is what
                // stopped the bomb: the OOM killer's SIGKILL. (That the
                // outcome does not call it oom_killed/memory is
                // the_outcome_of_a_named_command_names_the_cgroup_limit_it_hit.)
                assert!(
                    kills > 0,
                    "{mode:?}: no OOM kill in the sandbox's cgroup: {o}\n{err}"
                );
                assert_eq!(o["signal"], libc::SIGKILL, "{mode:?}: {o}\n{err}");
            }
            None => {
                // RLIMIT_AS: the allocation failed inside the payload.
                let got: u64 = line
                    .trim()
                    .strip_prefix("stopped ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{mode:?}: unexpected report {line:?}\n{o}\n{err}"));
                assert_eq!(o["status"], "exited", "{mode:?}: {o}");
                assert_eq!(o["exit_code"], 3, "{mode:?}: {o}");
                assert_eq!(out.status.code(), Some(3), "{mode:?}: {err}");
                assert!(
                    got * (1 << 20) <= address_space,
                    "{mode:?}: {got} MiB above {address_space}"
                );
                assert!(got >= 1024, "{mode:?}: stopped at only {got} MiB");
                assert_eq!(limits_hit(&o), Vec::<String>::new(), "{mode:?}: {o}");
            }
        }
        eprintln!(
            "{mode:?}: {} -> {} oom_kill {oom_kills:?}",
            line.trim(),
            o["status"]
        );
        sb.runs_its_next_command();
        sb.stop();
    }
}

/// A file-size bomb in the named sandbox's /tmp: the file stops at the
/// default `limits.file_size` (256M, RLIMIT_FSIZE). /tmp is a 64M tmpfs, so
/// the bombs write sparsely (1 MiB of data just below the limit, then
/// past it): what stops them is RLIMIT_FSIZE, not the tmpfs being full.
#[test]
fn a_file_size_bomb_in_a_named_sandbox_fails_at_the_default_limit() {
    let limit = default_size("file_size").expect("the default policy sets limits.file_size");
    let mib = limit >> 20;
    for mode in modes() {
        let sb = Named::create(mode, "fsize", &[]);
        // dd dies of SIGXFSZ writing its second MiB at the limit.
        let dd = format!(
            "exec dd if=/dev/zero of=/tmp/big bs=1M seek={} count=2 status=none",
            mib - 1
        );
        let (out, o) = sb.run(&["--time-limit", &time_limit(30)], &["/bin/sh", "-c", &dd]);
        assert_eq!(o["status"], "signaled", "{mode:?}: {o}\n{}", text(&out.stderr));
        assert_eq!(o["signal"], libc::SIGXFSZ, "{mode:?}: {o}");
        assert_eq!(limits_hit(&o), ["file_size"], "{mode:?}: {o}");
        assert_eq!(out.status.code(), Some(128 + libc::SIGXFSZ), "{mode:?}");
        // python3 ignores SIGXFSZ: its write past the limit fails with EFBIG.
        if have_python() {
            let py = format!(
                "import errno\nf = open('/tmp/small', 'wb')\nf.seek({limit} - (1 << 20))\nf.write(b'x' * (1 << 20))\nf.flush()\ntry:\n    f.write(b'y')\n    f.flush()\n    print('wrote past the limit')\nexcept OSError as e:\n    print('EFBIG' if e.errno == errno.EFBIG else e)\n"
            );
            let (out, o) = sb.run(&[], &["/usr/bin/python3", "-c", &py]);
            assert_eq!(
                text(&out.stdout).trim(),
                "EFBIG",
                "{mode:?}: {o}\n{}",
                text(&out.stderr)
            );
        }
        // The next command sees both files (the shared /tmp) stopped
        // exactly at the limit, and removes them.
        let sizes = sb.sh_ok(
            "stat -c %s /tmp/big; [ ! -e /tmp/small ] || stat -c %s /tmp/small; rm -f /tmp/big /tmp/small",
        );
        for s in sizes.lines() {
            assert_eq!(s.parse::<u64>().ok(), Some(limit), "{mode:?}: sizes {sizes:?}");
        }
        sb.runs_its_next_command();
        sb.stop();
    }
}

/// A busy loop dies of SIGXCPU at `limits.cpu_time` (the default's 10
/// minutes, shortened to 1 s for the test; 10 s in the VM lane) and the
/// outcome says cpu_time. RLIMIT_CPU counts each command's own CPU time: a
/// second busy command gets a fresh budget, not what the first left.
#[test]
fn a_busy_command_dies_of_sigxcpu_and_the_next_gets_its_own_cpu_budget() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    assert!(
        default_limit("cpu_time").is_some(),
        "the default policy sets no limits.cpu_time"
    );
    let budget_ms = 1000 * u64::from(slow_factor());
    let dir = TempDir::new("named-cpu");
    let policy = default_policy_with(&dir, serde_json::json!({"cpu_time": time_limit(1)}));
    for mode in modes() {
        let sb = Named::create(mode, "busy", &["--policy", &policy]);
        for round in ["first", "second"] {
            let (out, o) = sb.run(
                &["--time-limit", &time_limit(30)],
                &["/usr/bin/python3", "-c", "while True:\n    pass\n"],
            );
            let d = format!("{mode:?}: {round} busy command: {o}\n{}", text(&out.stderr));
            assert_eq!(o["status"], "signaled", "{d}");
            assert_eq!(o["signal"], libc::SIGXCPU, "{d}");
            assert_eq!(limits_hit(&o), ["cpu_time"], "{d}");
            assert_eq!(out.status.code(), Some(128 + libc::SIGXCPU), "{d}");
            // It had its own budget, not what an earlier command left of it
            // (that would end the second one at once). The outcome's CPU
            // time (rusage, tick-sampled) reads as low as 85 % of the limit
            // on a busy host: half is the bound.
            let cpu = o["user_time_ms"].as_u64().unwrap_or(0) + o["system_time_ms"].as_u64().unwrap_or(0);
            assert!(cpu >= budget_ms / 2, "{d}: only {cpu} ms of CPU");
        }
        // Under the limit a program runs to its end.
        let (out, o) = sb.run(&[], &["/usr/bin/python3", "-c", "print(sum(range(100000)))"]);
        assert_eq!(text(&out.stdout).trim(), "4999950000", "{mode:?}: {o}");
        assert_eq!(limits_hit(&o), Vec::<String>::new(), "{mode:?}: {o}");
        sb.stop();
    }
}

/// The default policy's /tmp: its inode limit.
fn default_tmp_inodes() -> u64 {
    let p = cordon::Policy::builtin_default().expect("default policy");
    p.mounts
        .iter()
        .find_map(|m| match m {
            Mount::Tmpfs {
                dst, size, inodes, ..
            } if dst == "/tmp" => Some(inodes.unwrap_or_else(|| default_tmpfs_inodes(*size))),
            _ => None,
        })
        .expect("the default policy mounts a tmpfs at /tmp")
}

/// A command filling the named sandbox's /tmp with empty files stops at
/// the default inode limit (ENOSPC). /tmp is shared by the sandbox's
/// commands (as `docker exec`), so the next command finds it full: it can
/// delete and then create again, and once /tmp is emptied a second filler
/// gets as far as the first (the limit is the tmpfs's, not used up). The
/// host's /tmp is not the sandbox's.
#[test]
fn empty_files_in_a_named_sandbox_stop_at_the_default_inode_limit() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let limit = default_tmp_inodes();
    let fill = |sb: &Named, what: &str| -> u64 {
        let (out, o) = sb.run(
            &[],
            &["/usr/bin/python3", "-c", &crate::mounts::fill_inodes(1_100_000)],
        );
        let s = text(&out.stdout);
        let mut f = s.split_whitespace().map(|x| x.parse::<i64>().unwrap_or(-1));
        let (n, e) = (f.next().unwrap_or(-1), f.next().unwrap_or(-1));
        let d = format!("{:?}: {what}: {s:?} {o}\n{}", sb.mode, text(&out.stderr));
        assert_eq!(o["exit_code"], 0, "{d}");
        assert_eq!(e, i64::from(libc::ENOSPC), "{d}");
        // The tmpfs's root directory takes an inode too.
        assert!(
            n >= 0 && (limit.saturating_sub(10)..=limit).contains(&(n as u64)),
            "{d}: {n} files with a limit of {limit}"
        );
        n as u64
    };
    for mode in modes() {
        let sb = Named::create(mode, "inodes", &[]);
        let info = sb.sh_ok("grep ' /tmp ' /proc/self/mountinfo");
        assert!(
            info.contains(&format!("nr_inodes={limit}")),
            "{mode:?}: /tmp is not the default's tmpfs: {info}"
        );
        let first = fill(&sb, "first filler");
        // The next command: /tmp is full, deleting frees an inode.
        let out = sb.sh_ok(
            "touch /tmp/new 2>/dev/null && echo created-while-full; \
             rm /tmp/f0 && touch /tmp/new && echo created-after-rm",
        );
        assert_eq!(out, "created-after-rm\n", "{mode:?}");
        // The host's /tmp is not the sandbox's.
        let host = TempDir::new("named-inodes-host");
        std::fs::write(host.path().join("f"), "host").expect("the host cannot create a file in /tmp");
        sb.sh_ok("find /tmp -mindepth 1 -delete");
        let second = fill(&sb, "second filler");
        assert_eq!(first, second, "{mode:?}");
        sb.sh_ok("find /tmp -mindepth 1 -delete");
        sb.runs_its_next_command();
        sb.stop();
    }
}

/// A command that stops itself (SIGSTOP) is killed at its time limit
/// (exit 124), and a sandbox holding stopped processes still answers
/// (`ls`, the next `run --in`) and stops promptly (hardening defect 6:
/// SIGSTOPped processes must not make cordon deaf).
#[test]
fn a_stopped_command_is_killed_in_time_and_does_not_keep_the_sandbox_from_stopping() {
    for mode in modes() {
        let sb = Named::create(mode, "stopped", &[]);
        let start = Instant::now();
        let (out, o) = sb.run(
            &["--time-limit", "2s"],
            &["/bin/sh", "-c", "kill -STOP $$; echo resumed"],
        );
        let took = start.elapsed();
        assert_eq!(
            out.status.code(),
            Some(124),
            "{mode:?}: {o}\n{}",
            text(&out.stderr)
        );
        assert_eq!(o["status"], "timed_out", "{mode:?}: {o}");
        assert_eq!(text(&out.stdout), "", "{mode:?}: the stopped command went on");
        assert!(
            took >= Duration::from_millis(1900)
                && took < Duration::from_secs(2) + scaled(Duration::from_secs(5)),
            "{mode:?}: a 2 s limit ended the stopped command after {took:?}"
        );
        sb.runs_its_next_command();
        // A command without a time limit (the default: an hour) that stops
        // itself and a background job: cordon still answers.
        let (mut child, _status) = sb.spawn(
            &[],
            &[
                "/bin/sh",
                "-c",
                "sleep 1000 & kill -STOP $!; kill -STOP $$; echo resumed",
            ],
            Stdio::null(),
        );
        let stopped = common::wait_until(5.0 * f64::from(slow_factor()), || {
            std::fs::read_dir("/proc").expect("/proc").flatten().any(|e| {
                let p = e.path();
                std::fs::read_link(p.join("ns/pid")).ok().as_deref() == Some(&sb.ns)
                    && std::fs::read_to_string(p.join("stat")).is_ok_and(|s| {
                        s[s.rfind(')').map_or(0, |i| i + 1)..]
                            .trim_start()
                            .starts_with('T')
                    })
                    && std::fs::read(p.join("cmdline")).is_ok_and(|c| c.starts_with(b"/bin/sh"))
            })
        });
        assert!(stopped, "{mode:?}: the command never stopped itself");
        let rows = sb.rt.ls(mode);
        assert_eq!(rows.len(), 1, "{mode:?}: {rows:?}");
        assert_eq!(rows[0]["state"], "running", "{mode:?}: {rows:?}");
        let (out, o) = sb.run(&[], &["/bin/true"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{mode:?}: beside a stopped command: {o}"
        );
        let took = sb.stop();
        // The supervisor answered the stop request: `cordon stop` gives a
        // supervisor 3 s to answer before it signals it instead (which
        // would hide a deaf one). Under the VM lane's emulation only the
        // scaled bound of Named::stop holds.
        if !common::in_vm() {
            assert!(took < Duration::from_secs(3), "{mode:?}: stop took {took:?}");
        }
        // The stopped command's run --in ends with the sandbox (125).
        let deadline = Instant::now() + scaled(Duration::from_secs(5));
        let code = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break st.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{mode:?}: run --in of the stopped command outlived stop");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .expect("read");
        assert_eq!(code, Some(125), "{mode:?}");
        assert_eq!(stdout, "", "{mode:?}: the stopped command went on");
        eprintln!("{mode:?}: stop with a stopped command took {took:?}");
    }
}

/// The default policy's devpts maximum.
fn default_ptys() -> u32 {
    let p = cordon::Policy::builtin_default().expect("default policy");
    p.mounts
        .iter()
        .find_map(|m| match m {
            Mount::Dev { ptys, .. } => Some(*ptys),
            _ => None,
        })
        .expect("the default policy mounts a /dev")
}

/// Whether a python3 in a sandbox (`cordon run` or `run --in`) opens a
/// pty: "ok" or the errno.
const ONE_PTY: &str =
    "import os\ntry:\n    os.openpty()\n    print('ok')\nexcept OSError as e:\n    print(e.errno)\n";

/// A command opening ptys until it fails stops at the policy's devpts
/// maximum (ENOSPC); while it holds them, the host and a cold `cordon run`
/// can still open one (their devpts is not the sandbox's), and another
/// command of the same sandbox cannot (it is). Once it ends, the sandbox's
/// next command can.
#[test]
fn ptys_in_a_named_sandbox_stop_at_the_devpts_maximum() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let max = default_ptys();
    for mode in modes() {
        let sb = Named::create(mode, "ptys", &[]);
        let (mut child, status) = sb.spawn(&[], &["/usr/bin/python3", "-c", PTY_HOG], Stdio::piped());
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the hog's report");
        // SAFETY: posix_openpt takes flags only; the fd is closed below.
        let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        let host_err = std::io::Error::last_os_error();
        let cold = common::py(mode, &[], ONE_PTY);
        let (beside, _) = sb.run(&[], &["/usr/bin/python3", "-c", ONE_PTY]);
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("wait cordon");
        assert!(fd >= 0, "{mode:?}: the host could not open a pty: {host_err}");
        // SAFETY: fd is ours, opened above.
        unsafe { libc::close(fd) };
        assert_eq!(
            cold.stdout().trim(),
            "ok",
            "{mode:?}: a cold run: {}",
            cold.stderr()
        );
        assert_eq!(
            text(&beside.stdout).trim(),
            libc::ENOSPC.to_string(),
            "{mode:?}: a second command while the hog holds every pty"
        );
        let o = outcome(&status);
        assert_eq!(o["exit_code"], 0, "{mode:?}: {o}\n{}", text(&out.stderr));
        let f: Vec<i64> = line.split_whitespace().map(|x| x.parse().unwrap_or(-1)).collect();
        assert_eq!(
            f,
            [i64::from(max), i64::from(libc::ENOSPC)],
            "{mode:?}: ptys opened and errno: {line:?}"
        );
        // The hog's ptys went with it.
        let (after, o) = sb.run(&[], &["/usr/bin/python3", "-c", ONE_PTY]);
        assert_eq!(text(&after.stdout).trim(), "ok", "{mode:?}: after the hog: {o}");
        sb.runs_its_next_command();
        sb.stop();
    }
}

/// Where the named sandbox has a cgroup, its commands' outcomes name the
/// cgroup limit they hit as a cold run's do (bombs.rs): a memory bomb is
/// `oom_killed` with `memory` hit, a fork bomb has `pids` hit. Root only:
/// the limits are given as flags (`--memory`, `--pids`), which root can
/// enforce with whatever cgroup version the host has.
#[test]
fn the_outcome_of_a_named_command_names_the_cgroup_limit_it_hit() {
    require!("root", common::is_root(), "cgroup limits by flag need root here");
    require!("python3", have_python(), "needs /usr/bin/python3");
    let _one = one_bomb();
    let mode = Mode::Root;
    let sb = Named::create(mode, "cglimits", &["--memory", "256M", "--pids", "64"]);
    assert!(!sb.cgroups().is_empty(), "no cgroup for --memory/--pids");
    let (out, o) = sb.run(
        &["--time-limit", &time_limit(60)],
        &["/usr/bin/python3", "-c", &memory_bomb()],
    );
    let err = text(&out.stderr);
    let oom = sb.cgroup_counter("memory.events", "oom_kill").or_else(|| {
        // cgroup v1: memory.oom_control's oom_kill.
        sb.cgroup_counter("memory.oom_control", "oom_kill")
    });
    assert!(
        oom.unwrap_or(0) > 0,
        "the cgroup's OOM killer did not end the bomb: {o}\n{err}"
    );
    assert_eq!(o["status"], "oom_killed", "{o}\n{err}");
    assert!(limits_hit(&o).contains(&"memory".to_string()), "{o}");
    // The bomb must reach --pids 64 before the limit: python's start alone
    // takes about a second in the VM lane, so the limit is scaled there.
    let (_, o) = sb.run(
        &["--time-limit", &time_limit(2)],
        &["/usr/bin/python3", "-c", FORK_BOMB],
    );
    assert_eq!(o["status"], "timed_out", "{o}");
    assert!(limits_hit(&o).contains(&"pids".to_string()), "{o}");
    sb.runs_its_next_command();
    sb.stop();
}
