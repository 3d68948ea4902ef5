//! Identity abuse: sandboxes sharing a host uid (with each other and with
//! the host's `nobody`), a payload charged to host root's per-user quotas,
//! and payload-written code executed from a memfd.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};

use crate::common::{self, cordon, host_processes_with, is_root, modes, py, run_with, Mode, TempDir};
use crate::require;

/// Where cordon records the host ids it hands out (root only).
pub(crate) const ID_DIR: &str = "/run/cordon/ids";

/// A unique marker for this test process and call.
pub(crate) fn marker(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{tag}{}x{n}", std::process::id())
}

/// Compile `src` into `dir/name` (a payload, bound at /probe).
pub(crate) fn compile(dir: &TempDir, name: &str, src: &str) -> bool {
    let c = dir.path().join(format!("{name}.c"));
    std::fs::write(&c, src).expect("write source");
    let out = dir.path().join(name);
    let ok = Command::new("gcc")
        .arg("-O1")
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        common::set_mode(&out, 0o755);
    }
    ok
}

/// Kills and reaps a spawned cordon on drop.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cordon run -- /bin/sleep <secs>.<marker digits>` in root mode
/// (the odd duration makes the payload findable among host processes).
/// Start the inotify hog with `c` and, while it holds every instance it
/// could get, check that host root still gets one.
pub(crate) fn host_root_gets_an_inotify_instance_while(mut c: Command, mode: Mode) {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut hog = Running(c.spawn().expect("spawn"));
    let mut line = String::new();
    BufReader::new(hog.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert!(line.starts_with("held "), "[{mode:?}] payload said {line:?}");
    // SAFETY: inotify_init1 returns a new fd or -1.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    let err = std::io::Error::last_os_error();
    if fd >= 0 {
        // SAFETY: our own fd.
        unsafe { libc::close(fd) };
    }
    assert!(
        fd >= 0,
        "[{mode:?}] host root's inotify_init1 failed ({err}) while the payload {line:?}"
    );
}

pub(crate) fn start_sleeper(secs: u32, mark: &str) -> (Running, String) {
    let arg = format!(
        "{secs}.{}",
        mark.chars().filter(char::is_ascii_digit).collect::<String>()
    );
    let mut c = cordon(Mode::Root);
    c.args(["run", "--", "/bin/sleep", &arg]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    (
        Running(c.spawn().expect("spawn cordon")),
        format!("/bin/sleep {arg}"),
    )
}

/// The host pid and real host uid of the payload whose command line is `cmd`.
pub(crate) fn payload_of(cmd: &str) -> Option<(u32, u32, u32)> {
    for pid in host_processes_with(cmd) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let id = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u32>().ok())
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        // cordon's own command line also holds the payload's: skip it.
        if !cmdline.starts_with(b"/bin/sleep\0") {
            continue;
        }
        if let (Some(uid), Some(gid)) = (id("Uid:"), id("Gid:")) {
            return Some((pid, uid, gid));
        }
    }
    None
}

pub(crate) fn wait_payload(cmd: &str) -> (u32, u32, u32) {
    let mut found = None;
    common::wait_until(10.0 * f64::from(common::slow_factor()), || {
        found = payload_of(cmd);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("payload `{cmd}` never showed up on the host"))
}

#[test]
fn concurrent_root_sandboxes_get_distinct_host_ids() {
    require!("root", is_root(), "host id allocation needs root");
    let (_a, cmd_a) = start_sleeper(60, &marker("a"));
    let (_b, cmd_b) = start_sleeper(61, &marker("b"));
    let (pa, uid_a, gid_a) = wait_payload(&cmd_a);
    let (pb, uid_b, gid_b) = wait_payload(&cmd_b);
    for (pid, uid, gid) in [(pa, uid_a, gid_a), (pb, uid_b, gid_b)] {
        assert_ne!(uid, 0, "payload {pid} runs as host root");
        assert_ne!(uid, 65534, "payload {pid} runs as the host's nobody");
        assert_eq!(uid, gid, "payload {pid}: host uid and gid differ");
    }
    assert_ne!(uid_a, uid_b, "two concurrent sandboxes share host uid {uid_a}");
}

#[test]
fn host_nobody_cannot_signal_the_payload() {
    require!("root", is_root(), "host id allocation needs root");
    let have_setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    require!("setpriv", have_setpriv, "setpriv is not installed");
    let (_a, cmd) = start_sleeper(62, &marker("n"));
    let (pid, _, _) = wait_payload(&cmd);
    let st = |sig: &str| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "kill", sig])
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .expect("run setpriv")
    };
    assert!(!st("-STOP").success(), "host nobody stopped payload {pid}");
    assert!(!st("-0").success(), "host nobody may signal payload {pid}");
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state.rsplit(')').next().unwrap_or("").trim_start();
    assert!(!state.starts_with('T'), "payload {pid} was stopped: {state}");
    // The allowed side: host root still signals it.
    // SAFETY: signal 0 only checks permission.
    let r = unsafe { libc::kill(pid as i32, 0) };
    assert_eq!(r, 0, "host root cannot signal payload {pid}");
}

/// Try to take the lock cordon holds on `id` while it uses it (a record
/// that is gone is not held either).
pub(crate) fn lock_is_free(id: u32) -> bool {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .open(format!("{ID_DIR}/{id}"))
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        Err(e) => panic!("{ID_DIR}/{id}: {e}"),
    };
    // SAFETY: flock on an fd we own; it is released when `f` closes.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn host_uid_of(r: &common::Run) -> u32 {
    r.status
        .as_ref()
        .and_then(|s| s["host_uid"].as_u64())
        .unwrap_or_else(|| panic!("the outcome has no host_uid: {:?}\n{}", r.status, r.stderr())) as u32
}

#[test]
fn host_id_is_held_for_the_run_and_released_after() {
    require!("root", is_root(), "host id allocation needs root");
    // A one-id range of our own, far from the default one.
    let id = 0x7200_0000 + (std::process::id() % 0x10000);
    let range = format!("{id}:1");
    let with_range = || {
        let mut c = cordon(Mode::Root);
        c.env("CORDON_ID_RANGE", &range);
        c
    };
    let r = run_with(with_range(), &[], &["/bin/true"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(host_uid_of(&r), id, "the only id of the range");
    assert!(lock_is_free(id), "host id {id} still held after the run");
    let record = std::fs::read(format!("{ID_DIR}/{id}")).unwrap_or_default();
    assert!(
        record.iter().all(u8::is_ascii_whitespace),
        "the record of host id {id} outlived its run: {record:?}"
    );

    // While one sandbox holds it, another with the same range is refused.
    let mut c = with_range();
    c.args([
        "run",
        "--",
        "/usr/bin/python3",
        "-c",
        "import time; print('up', flush=True); time.sleep(30)",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut holder = Running(c.spawn().expect("spawn"));
    let mut line = String::new();
    BufReader::new(holder.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "up\n");
    assert!(!lock_is_free(id), "host id {id} not held during the run");
    let r = run_with(with_range(), &[], &["/bin/true"]);
    assert_ne!(r.code(), 0, "a second sandbox got the held host id {id}");
    assert!(r.stderr().contains("CORDON_ID_RANGE"), "{}", r.stderr());
    // cordon killed outright: the lock goes with it, and the id is free
    // again once nothing runs as it any more.
    drop(holder);
    assert!(lock_is_free(id), "host id {id} still locked after cordon died");
    let gone = common::wait_until(10.0, || !runs_as(id));
    assert!(gone, "the sandbox's processes outlived cordon");
    let r = run_with(with_range(), &[], &["/bin/true"]);
    assert_eq!(r.code(), 0, "host id {id} not released: {}", r.stderr());
    assert_eq!(host_uid_of(&r), id);
}

/// A record left by a cordon killed outright (pid gone, lock free): its id
/// is reused only when no host process runs as it, also one that gave
/// itself a name that is not UTF-8 (which hid it from the pass over /proc
/// cordon used to make); `cordon gc` clears it once nothing runs as it.
#[test]
fn a_left_record_is_reused_only_when_nothing_runs_as_its_id_and_gc_clears_it() {
    require!("root", is_root(), "host id allocation needs root");
    // A one-id range of our own, away from the other tests' ranges.
    let a = 0x7300_0000 + (std::process::id() % 0x8000) * 2;
    let record = |id: u32| std::fs::read_to_string(format!("{ID_DIR}/{id}")).unwrap_or_default();
    // pid_max is at most 2^22: no process has this pid.
    let left = "999999999 0\n";
    let plant = || {
        std::fs::create_dir_all(ID_DIR).expect("id dir");
        std::fs::write(format!("{ID_DIR}/{a}"), left).expect("plant the record");
    };
    let launch = || {
        let mut c = cordon(Mode::Root);
        c.env("CORDON_ID_RANGE", format!("{a}:1"));
        run_with(c, &[], &["/bin/true"])
    };
    let gc = || {
        let o = cordon(Mode::Root).arg("gc").output().expect("spawn cordon gc");
        assert!(o.status.success(), "gc: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(!runs_as(a), "something already runs as {a}");
    plant();

    // Something runs as a, under a name that is not UTF-8.
    let mut sleeper = std::process::Command::new("setpriv");
    sleeper
        .args([
            &format!("--reuid={a}"),
            &format!("--regid={a}"),
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            "import ctypes, time\n\
             ctypes.CDLL(None).prctl(15, b'\\xff\\xfehidden', 0, 0, 0)\n\
             print('up', flush=True)\n\
             time.sleep(30)",
        ])
        .stdout(Stdio::piped());
    let mut sleeper = Running(sleeper.spawn().expect("spawn setpriv"));
    let mut line = String::new();
    BufReader::new(sleeper.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "up\n");
    let comm = std::fs::read(format!("/proc/{}/comm", sleeper.0.id())).unwrap_or_default();
    assert!(comm.starts_with(b"\xff\xfe"), "the sleeper's name: {comm:?}");
    assert!(runs_as(a), "the sleeper does not run as {a}");
    let r = launch();
    assert_ne!(r.code(), 0, "a launch took host id {a}, which a process runs as");
    assert!(r.stderr().contains("in use"), "{}", r.stderr());
    let out = gc();
    assert!(
        !out.contains(&format!("host id {a}:")),
        "gc cleared an id in use: {out}"
    );
    assert_eq!(record(a), left);
    drop(sleeper);
    assert!(
        common::wait_until(5.0, || !runs_as(a)),
        "the sleeper outlived its kill"
    );

    // Nothing runs as a any more: gc clears it, and says so.
    let out = gc();
    assert!(
        out.contains(&format!(
            "host id {a}: cleared the record its owner left (999999999 0)"
        )),
        "{out}"
    );
    assert!(record(a).trim().is_empty(), "{:?}", record(a));
    // Left again: the next launch checks and takes it.
    plant();
    let r = launch();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(host_uid_of(&r), a);
    assert!(record(a).trim().is_empty(), "{:?}", record(a));
    if lock_is_free(a) {
        let _ = std::fs::remove_file(format!("{ID_DIR}/{a}"));
    }
}

/// Whether a host process runs with uid `id`.
pub(crate) fn runs_as(id: u32) -> bool {
    // As bytes: a process may give itself a name that is not UTF-8.
    let id = id.to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("status")).ok())
        .any(|st| {
            String::from_utf8_lossy(&st)
                .lines()
                .filter_map(|l| l.strip_prefix("Uid:"))
                .any(|v| v.split_whitespace().any(|u| u == id))
        })
}

#[test]
fn explicit_host_uid_still_wins() {
    require!("root", is_root(), "host id allocation needs root");
    let dir = TempDir::new("explicit");
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../policies/default.json")).expect("json");
    v["identity"]["host_uid"] = 54321.into();
    v["identity"]["host_gid"] = 54322.into();
    let p = common::write_policy(&dir, "p.json", &v.to_string());
    let r = run_with(
        cordon(Mode::Root),
        &["--policy", &p],
        &["/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"],
    );
    let out = r.ok();
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields, ["1000", "54321", "1", "1000", "54322", "1"], "{out}");
    assert_eq!(host_uid_of(&r), 54321);
}

pub(crate) const INOTIFY_HOG: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>
int main(void) {
    int n = 0;
    while (n < 100000) {
        if (inotify_init1(IN_CLOEXEC) < 0) {
            printf("held %d errno %d\n", n, errno);
            fflush(stdout);
            break;
        }
        n++;
    }
    sleep(5);
    return 0;
}
"#;

#[test]
fn payload_inotify_instances_are_not_charged_to_host_root() {
    require!(
        "root",
        is_root(),
        "only a root-started sandbox could be charged to host root"
    );
    let dir = TempDir::new("inotify");
    require!(
        "gcc",
        compile(&dir, "hog", INOTIFY_HOG),
        "gcc cannot build the payload"
    );
    for mode in modes() {
        let mut c = cordon(mode);
        c.args([
            "run",
            "--ro-bind",
            &format!("{}:/probe", dir.str()),
            "--landlock-exec",
            "/probe",
            "--",
            "/probe/hog",
        ]);
        host_root_gets_an_inotify_instance_while(c, mode);
    }
}

const MEMFD_EXEC: &str = r#"
import os, sys
body = open("/bin/true", "rb").read()
fd = os.memfd_create("x", 0)
os.write(fd, body)
try:
    fd2 = os.memfd_create("y", 0x10)  # MFD_EXEC
    print("mfd_exec allowed", flush=True)
except OSError as e:
    print("mfd_exec errno", e.errno, flush=True)
try:
    os.execv("/proc/self/fd/%d" % fd, ["x"])
except OSError as e:
    print("exec errno", e.errno, flush=True)
    sys.exit(3)
"#;

#[test]
fn payload_written_code_cannot_be_executed_from_a_memfd() {
    require!("python3", common::have_python(), "python3 is missing");
    for mode in modes() {
        // The allowed thing: memfds for data still work.
        let r = py(
            mode,
            &[],
            "import os; fd = os.memfd_create('d'); os.write(fd, b'abc'); os.lseek(fd, 0, 0); print(os.read(fd, 3).decode())",
        );
        assert_eq!(r.ok(), "abc\n", "[{mode:?}] {}", r.stderr());
        let r = py(mode, &[], MEMFD_EXEC);
        let unenforced: Vec<String> = r
            .status
            .as_ref()
            .and_then(|s| s["unenforced"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let listed = unenforced.iter().any(|u| u.starts_with("memfd_noexec"));
        match mode {
            Mode::Root => {
                assert_eq!(
                    r.code(),
                    3,
                    "[{mode:?}] the memfd's code ran: {}{}",
                    r.stdout(),
                    r.stderr()
                );
                assert!(
                    r.stdout().contains(&format!("exec errno {}", libc::EACCES)),
                    "{}",
                    r.stdout()
                );
                assert!(
                    r.stdout().contains(&format!("mfd_exec errno {}", libc::EACCES)),
                    "{}",
                    r.stdout()
                );
                assert!(!listed, "enforced, yet listed as unenforced: {unenforced:?}");
            }
            Mode::Rootless => {
                // Cannot be set without privileges: said so, not hidden.
                if r.code() != 3 {
                    assert!(
                        listed,
                        "[{mode:?}] memfd exec ran and unenforced is {unenforced:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn cordon_exec_holds_its_host_id_while_its_payload_lives() {
    require!("root", is_root(), "host id allocation needs root");
    let id = 0x7300_0000 + (std::process::id() % 0x10000);
    let range = format!("{id}:1");
    let mark = marker("e");
    let arg = format!(
        "63.{}",
        mark.chars().filter(char::is_ascii_digit).collect::<String>()
    );
    let mut c = cordon(Mode::Root);
    c.env("CORDON_ID_RANGE", &range);
    c.args(["exec", "--", "/bin/sleep", &arg]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let payload = Running(c.spawn().expect("spawn cordon exec"));
    let (pid, uid, gid) = wait_payload(&format!("/bin/sleep {arg}"));
    assert_eq!(pid, payload.0.id(), "cordon exec replaces itself");
    assert_eq!((uid, gid), (id, id), "the exec'd payload's host ids");
    // The lock went with exec; the record still names the payload.
    assert!(lock_is_free(id));
    let mut c = cordon(Mode::Root);
    c.env("CORDON_ID_RANGE", &range);
    let r = run_with(c, &[], &["/bin/true"]);
    assert_ne!(r.code(), 0, "a sandbox got the id of a live cordon exec payload");
    drop(payload);
    let mut c = cordon(Mode::Root);
    c.env("CORDON_ID_RANGE", &range);
    let r = run_with(c, &[], &["/bin/true"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(host_uid_of(&r), id);
}

#[test]
fn the_launching_thread_gets_its_identity_back() {
    require!("root", is_root(), "only a root launch changes the thread's ids");
    let policy = cordon::Policy::builtin_default().expect("default policy");
    let plan = cordon::plan::Plan::build(&policy, "default", &["/bin/true"]).expect("plan");
    let state = || {
        // SAFETY: getters without side effects.
        unsafe {
            let mut pdeath: libc::c_int = 0;
            libc::prctl(libc::PR_GET_PDEATHSIG, &mut pdeath as *mut libc::c_int);
            (
                libc::geteuid(),
                libc::getegid(),
                libc::prctl(libc::PR_GET_SECUREBITS),
                libc::prctl(libc::PR_GET_DUMPABLE),
                pdeath,
            )
        }
    };
    // SAFETY: sets this thread's parent-death signal, to see it kept.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2 as libc::c_ulong) };
    let before = state();
    let out = cordon::launch::run(&plan, cordon::launch::RunOptions::default()).expect("run");
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert_ne!(plan.child.ids().host_uid, 0);
    assert_eq!(out.host_uid, Some(plan.child.ids().host_uid));
    assert_eq!(
        state(),
        before,
        "(euid, egid, securebits, dumpable, pdeathsig) changed"
    );
    // SAFETY: clears what we set.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0 as libc::c_ulong) };
}
