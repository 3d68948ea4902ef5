//! `Prepared::apply` as a `Command::pre_exec` step in a busy
//! multi-threaded program: eight threads churn the allocator and one keeps
//! taking (and sleeping with) stdout's lock while the main thread spawns
//! hundreds of restricted children. A `fork` copies those locks held; if
//! `apply` allocated, printed or took a lock, a child would deadlock (the
//! watchdog aborts the test) or crash. Every child reports, from system
//! calls only (`syscall_probe --self`), that the policy holds: its pid is
//! the spawned one, uid 1000, no capabilities, `no_new_privs`, a seccomp
//! filter refusing `unshare`, the rlimits; some run a shell that checks
//! Landlock (no exec from /tmp) and `ulimit -n`.
//!
//! Run as root, the test does it as root (the payloads map to the host id
//! its Prepared took) and then re-runs itself, with a smaller batch, as the
//! unprivileged uid 4321. `CORDON_VM` (the VM lane, software-emulated)
//! lowers the counts from 500/100 to 100/25 and triples the watchdog's
//! 300 s.

mod common;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{probe_bin, TempDir, ROOTLESS_ID};

/// Set in the re-run as the unprivileged user: how many children to spawn.
const CHILD_ENV: &str = "CORDON_EMBED_STRESS_CHILDREN";
/// This test's name, for the re-run.
const TEST_NAME: &str = "pre_exec_apply_with_allocator_and_stdout_lock_contention";
/// The whole test (both runs) must end within this (on the host; the VM
/// lane, software-emulated, gets three times as long).
const WATCHDOG: Duration = Duration::from_secs(300);
/// Children alive at once.
const IN_FLIGHT: usize = 8;

fn in_vm() -> bool {
    std::env::var_os("CORDON_VM").is_some()
}

fn watchdog_limit() -> Duration {
    if in_vm() {
        WATCHDOG * 3
    } else {
        WATCHDOG
    }
}

/// This process's children (from /proc/*/stat), deadlocked forks that
/// `Command::spawn` is still waiting for included.
fn my_children() -> Vec<libc::pid_t> {
    let me = std::process::id().to_string();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so after the last ')'.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        if rest.split_whitespace().nth(1) == Some(me.as_str()) {
            v.push(pid);
        }
    }
    v
}

/// Kill this process's children and abort (no unwinding: a deadlocked
/// thread would keep a panicking test alive) unless the returned sender is
/// dropped within `limit`.
fn watchdog(what: &'static str, limit: Duration) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            let pids = my_children();
            eprintln!(
                "embed_stress: {what}: still running after {limit:?}: deadlock? killing children {pids:?} and aborting"
            );
            for pid in pids {
                // SAFETY: kill takes no pointers; these are our unreaped
                // children, so the pids cannot have been reused.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::process::abort();
        }
    });
    tx
}

/// A small xorshift generator: allocation sizes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Allocate and free in a tight loop: vectors of varying sizes (some past
/// glibc's mmap threshold), boxes, strings; check the contents so heap
/// corruption shows. Returns the number of rounds.
fn churn(seed: u64, stop: &AtomicBool) -> u64 {
    let mut rng = Rng(seed | 1);
    let mut keep: VecDeque<Vec<u8>> = VecDeque::new();
    let mut rounds = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let r = rng.next();
        let size = match r % 16 {
            0 => 256 * 1024 + (r >> 8) as usize % (512 * 1024),
            1..=4 => 4096 + (r >> 8) as usize % 65536,
            _ => 1 + (r >> 8) as usize % 512,
        };
        let byte = (r >> 32) as u8;
        keep.push_back(vec![byte; size]);
        let b: Box<[u64; 8]> = Box::new([r; 8]);
        let s = format!("{r:x}-{rounds}");
        assert_eq!(b[7], r);
        assert!(s.ends_with(&rounds.to_string()));
        if keep.len() > 64 || r % 3 == 0 {
            let v = keep.pop_front().expect("non-empty");
            assert!(v.iter().all(|&x| x == v[0]), "heap corruption");
        }
        rounds += 1;
    }
    rounds
}

/// What one child was asked to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `/probe/probe --self`.
    Probe,
    /// A shell: `ulimit -n`, `ulimit -c`, exec from /tmp (Landlock).
    Shell,
}

const SHELL_SCRIPT: &str = "echo nofile $(ulimit -n); echo core $(ulimit -c); \
     cp /probe/probe /tmp/p && /tmp/p getpid >/dev/null 2>&1; echo exec_tmp $?";

fn fields(out: &str) -> HashMap<&str, &str> {
    out.lines().filter_map(|l| l.split_once(' ')).collect()
}

/// Check one child's result; returns a description of what is wrong.
fn verify(kind: Kind, pid: u32, out: &std::process::Output) -> Result<(), String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let bad = |why: &str| {
        Err(format!(
            "{kind:?} child {pid}: {why}\nstatus {:?}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        ))
    };
    if !out.status.success() {
        return bad("did not exit 0");
    }
    if !out.stderr.is_empty() {
        return bad("wrote to stderr");
    }
    let f = fields(&stdout);
    let pid_s = pid.to_string();
    let want: &[(&str, &str)] = match kind {
        Kind::Probe => &[
            ("pid", &pid_s),
            ("uid", "1000"),
            ("gid", "1000"),
            ("CapEff", "0000000000000000"),
            ("NoNewPrivs", "1"),
            ("Seccomp", "2"),
            ("unshare(0)", "err 1 EPERM"),
            ("RLIMIT_NOFILE", "1024 1024"),
            ("RLIMIT_CORE", "0 0"),
        ],
        Kind::Shell => &[("nofile", "1024"), ("core", "0"), ("exec_tmp", "126")],
    };
    for (k, v) in want {
        if f.get(k) != Some(v) {
            return bad(&format!("expected `{k} {v}`"));
        }
    }
    Ok(())
}

/// What a batch measured.
struct Batch {
    children: usize,
    shells: usize,
    elapsed: Duration,
    /// Children forked while the stdout thread held the lock (sampled at spawn).
    spawned_under_stdout_lock: usize,
    alloc_rounds: Vec<u64>,
    stdout_locks: u64,
}

impl Batch {
    fn summary(&self) -> String {
        format!(
            "{} children ({} shells) in {:.1?} ({:.1?} each, {IN_FLIGHT} at a time); \
             {} forked while stdout's lock was held ({} times in all); allocator rounds per thread {:?}",
            self.children,
            self.shells,
            self.elapsed,
            self.elapsed / self.children.max(1) as u32,
            self.spawned_under_stdout_lock,
            self.stdout_locks,
            self.alloc_rounds
        )
    }
}

/// Spawn `n` restricted children under contention and verify each.
fn batch(n: usize) -> Batch {
    let dir = TempDir::new("embed-stress");
    let probe = dir.path().join("probe");
    std::fs::copy(probe_bin(), &probe).expect("copy probe");
    common::set_mode(&probe, 0o755);
    let policy = cordon::PolicyBuilder::exec_policy()
        .ro_bind(dir.str(), "/probe")
        .build()
        .expect("policy");
    assert!(policy.landlock.is_some() && policy.seccomp.is_some());
    assert!(policy.limits.open_files.is_some());
    let prepared = Arc::new(cordon::prepare(&policy).expect("prepare"));

    let stop = Arc::new(AtomicBool::new(false));
    let holding = Arc::new(AtomicBool::new(false));
    let locks = Arc::new(AtomicU64::new(0));
    let churners: Vec<_> = (0..8u64)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || churn(0x9e37_79b9_7f4a_7c15 ^ ((i + 1) * 0x1234_5678_9abc), &stop))
        })
        .collect();
    let locker = {
        let (stop, holding, locks) = (stop.clone(), holding.clone(), locks.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut out = std::io::stdout().lock();
                holding.store(true, Ordering::SeqCst);
                // Nothing visible: an empty write still goes through the
                // locked buffer, and the flush through the fd.
                out.write_all(b"").expect("write stdout");
                out.flush().expect("flush stdout");
                locks.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(300));
                holding.store(false, Ordering::SeqCst);
                drop(out);
                std::thread::yield_now();
            }
        })
    };

    let start = Instant::now();
    let mut running: VecDeque<(Kind, Child)> = VecDeque::new();
    let mut failures = Vec::new();
    let mut under_lock = 0;
    let mut shells = 0;
    let finish = |(kind, child): (Kind, Child), failures: &mut Vec<String>| {
        let pid = child.id();
        match child.wait_with_output() {
            Ok(out) => {
                if let Err(e) = verify(kind, pid, &out) {
                    failures.push(e);
                }
            }
            Err(e) => failures.push(format!("child {pid}: wait: {e}")),
        }
    };
    for i in 0..n {
        let kind = if i % 10 == 9 { Kind::Shell } else { Kind::Probe };
        let mut cmd = match kind {
            Kind::Probe => {
                let mut c = Command::new("/probe/probe");
                c.arg("--self");
                c
            }
            Kind::Shell => {
                shells += 1;
                let mut c = Command::new("/bin/sh");
                c.args(["-c", SHELL_SCRIPT]);
                c
            }
        };
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let p = prepared.clone();
        // SAFETY: `apply` allocates nothing, takes no lock and only makes
        // system calls (what this test checks), so it may run between fork
        // and exec of a multi-threaded process; the error conversion makes
        // an `io::Error` from the errno without allocating.
        unsafe {
            cmd.pre_exec(move || p.apply().map_err(Into::into));
        }
        if holding.load(Ordering::SeqCst) {
            under_lock += 1;
        }
        match cmd.spawn() {
            Ok(child) => running.push_back((kind, child)),
            Err(e) => failures.push(format!("spawn {i}: {e}")),
        }
        if running.len() >= IN_FLIGHT {
            finish(running.pop_front().expect("running"), &mut failures);
        }
    }
    while let Some(c) = running.pop_front() {
        finish(c, &mut failures);
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let alloc_rounds: Vec<u64> = churners
        .into_iter()
        .map(|t| t.join().expect("allocating thread panicked"))
        .collect();
    locker.join().expect("stdout thread panicked");
    assert!(
        failures.is_empty(),
        "{} of {n} children failed; first ones:\n{}",
        failures.len(),
        failures.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    let b = Batch {
        children: n,
        shells,
        elapsed,
        spawned_under_stdout_lock: under_lock,
        alloc_rounds,
        stdout_locks: locks.load(Ordering::Relaxed),
    };
    // The contention really happened while the children were spawned.
    assert!(b.alloc_rounds.iter().all(|&r| r > 0), "{}", b.summary());
    assert!(b.stdout_locks > 0, "{}", b.summary());
    b
}

#[test]
fn pre_exec_apply_with_allocator_and_stdout_lock_contention() {
    if let Ok(n) = std::env::var(CHILD_ENV) {
        // The re-run as the unprivileged user (below).
        let n: usize = n.parse().expect("child count");
        let _dog = watchdog("unprivileged batch", watchdog_limit());
        let b = batch(n);
        eprintln!("embed_stress: uid {}: {}", getuid(), b.summary());
        return;
    }
    let dog = watchdog("test", watchdog_limit());
    let (n, n_unpriv) = if in_vm() { (100, 25) } else { (500, 100) };
    let b = batch(n);
    eprintln!("embed_stress: uid {}: {}", getuid(), b.summary());

    if common::is_root() {
        let start = Instant::now();
        let out = Command::new(std::env::current_exe().expect("current exe"))
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, n_unpriv.to_string())
            .uid(ROOTLESS_ID)
            .gid(ROOTLESS_ID)
            .stdin(Stdio::null())
            .output()
            .expect("re-run the test as the unprivileged user");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("test result: ok. 1 passed"),
            "the unprivileged run failed: {:?}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        let tag = format!("embed_stress: uid {ROOTLESS_ID}: ");
        let line = stderr.lines().find(|l| l.starts_with(&tag));
        let line = line.unwrap_or_else(|| panic!("no summary from the unprivileged run:\n{stderr}"));
        eprintln!("{line}");
        eprintln!(
            "embed_stress: the unprivileged re-run took {:.1?}",
            start.elapsed()
        );
    } else {
        // The batch above ran unprivileged; the root one needs root.
        if common::required("root") {
            panic!("required feature root is missing: tests run as uid != 0");
        }
        eprintln!("SKIPPED: the batch as root needs root (root)");
    }
    drop(dog);
}

fn getuid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}
