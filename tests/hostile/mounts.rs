//! The sandbox's mounts, attacked: running payload-written files (directly
//! and through the dynamic loader), taking every pty of the host, filling
//! the kernel with empty files, binding sockets and secrets the deny list
//! missed, and symlinks planted in a bind source.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::process::Stdio;

use crate::common::{self, modes, py, run, sh, write_policy, Mode, TempDir};

pub(crate) const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

/// policies/default.json changed by `change`, written into `dir`.
pub(crate) fn default_with(dir: &TempDir, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.json"))
        .expect("default policy");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("default policy is JSON");
    change(&mut v);
    write_policy(dir, "policy.json", &v.to_string())
}

/// The mount entry of the default policy for `dst`.
pub(crate) fn mount_entry<'a>(
    v: &'a mut serde_json::Value,
    key: &str,
    dst: &str,
) -> &'a mut serde_json::Value {
    v["mounts"]
        .as_array_mut()
        .expect("mounts")
        .iter_mut()
        .find(|m| m[key] == dst)
        .expect("mount entry")
}

/// Copy echo to `dir` (inside the sandbox), then run it directly and through
/// the dynamic loader. Prints `direct=RAN`/`loader=RAN` for what ran and the
/// exit codes.
fn exec_script(dir: &str) -> String {
    format!(
        "cp /usr/bin/echo {dir}/e && chmod 755 {dir}/e && echo copied; \
         {dir}/e direct=RAN; echo direct_rc=$?; \
         {LOADER} {dir}/e loader=RAN; echo loader_rc=$?"
    )
}

pub(crate) fn code_of(out: &str, key: &str) -> i32 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

#[test]
fn payload_written_files_in_tmp_do_not_run() {
    for mode in modes() {
        // Without Landlock: only the mount's noexec stands in the way.
        let r = sh(mode, &["--no-landlock"], &exec_script("/tmp"));
        let out = r.ok();
        let d = format!("{mode:?}\n{out}\n{}", r.stderr());
        assert!(out.contains("copied"), "{d}");
        assert!(!out.contains("direct=RAN"), "a file written to /tmp ran\n{d}");
        assert_eq!(code_of(&out, "direct_rc"), 126, "exec must fail with EACCES\n{d}");
        assert!(
            !out.contains("loader=RAN"),
            "ld.so ran a file written to /tmp\n{d}"
        );
        assert_ne!(code_of(&out, "loader_rc"), 0, "{d}");
        // With the default policy (Landlock on): the loader route is what
        // Landlock alone does not stop.
        let r = sh(mode, &[], &exec_script("/tmp"));
        let out = r.ok();
        let d = format!("{mode:?}\n{out}\n{}", r.stderr());
        assert!(out.contains("copied"), "{d}");
        assert!(
            !out.contains("loader=RAN"),
            "ld.so ran a file written to /tmp\n{d}"
        );
        // A read-only bind below /tmp (whose Landlock execute rule lands on
        // that bind) does not make /tmp executable.
        let ro = TempDir::new("exec-ro");
        let r = sh(
            mode,
            &["--ro-bind", &format!("{}:/tmp/ro", ro.str())],
            &exec_script("/tmp"),
        );
        let out = r.ok();
        let d = format!("{mode:?}\n{out}\n{}", r.stderr());
        assert!(out.contains("copied"), "{d}");
        assert!(!out.contains("=RAN"), "a file written to /tmp ran\n{d}");
        // /dev/shm is no way around it.
        let r = sh(mode, &["--no-landlock"], &exec_script("/dev/shm"));
        let out = r.ok();
        let d = format!("{mode:?}\n{out}\n{}", r.stderr());
        assert!(out.contains("copied"), "{d}");
        assert!(!out.contains("=RAN"), "a file written to /dev/shm ran\n{d}");
    }
}

#[test]
fn an_exec_grant_lets_files_in_a_tmpfs_run() {
    let dir = TempDir::new("exec-tmpfs");
    let granted = default_with(&dir, |v| {
        mount_entry(v, "tmpfs", "/tmp")["exec"] = true.into();
    });
    let dir2 = TempDir::new("exec-ll");
    let by_landlock = default_with(&dir2, |v| {
        v["landlock"]["execute"]
            .as_array_mut()
            .expect("execute")
            .push("/tmp".into());
    });
    for mode in modes() {
        let r = sh(
            mode,
            &["--policy", &granted, "--no-landlock"],
            &exec_script("/tmp"),
        );
        let out = r.ok();
        let d = format!("{mode:?}\n{out}\n{}", r.stderr());
        assert!(out.contains("direct=RAN"), "{d}");
        assert!(out.contains("loader=RAN"), "{d}");
        // A Landlock execute rule for /tmp is a grant too.
        let r = sh(mode, &["--policy", &by_landlock], &exec_script("/tmp"));
        let out = r.ok();
        let d = format!("{mode:?}\n{out}\n{}", r.stderr());
        assert!(out.contains("direct=RAN"), "{d}");
        assert!(out.contains("loader=RAN"), "{d}");
    }
}

#[test]
fn payload_written_files_in_a_writable_bind_do_not_run_unless_granted() {
    for mode in modes() {
        let w = TempDir::new("exec-bind");
        let bind = format!("{}:/w", w.str());
        let r = sh(mode, &["--no-landlock", "--bind", &bind], &exec_script("/w"));
        let out = r.ok();
        let d = format!("{mode:?}\n{out}\n{}", r.stderr());
        assert!(out.contains("copied"), "{d}");
        assert!(
            !out.contains("direct=RAN"),
            "a file written to a writable bind ran\n{d}"
        );
        assert_eq!(code_of(&out, "direct_rc"), 126, "{d}");
        assert!(!out.contains("loader=RAN"), "{d}");
        // The same directory read-only still runs what is in it.
        let r = sh(
            mode,
            &["--no-landlock", "--ro-bind", &format!("{}:/r", w.str())],
            "/r/e ro=RAN",
        );
        assert!(r.ok().contains("ro=RAN"), "{mode:?} {}", r.stderr());
        // With "exec": true on the bind.
        let pdir = TempDir::new("exec-bind-pol");
        let src = w.str().to_string();
        let policy = default_with(&pdir, |v| {
            v["mounts"]
                .as_array_mut()
                .expect("mounts")
                .push(serde_json::json!({"bind": src, "to": "/w", "readonly": false, "exec": true}));
        });
        let r = sh(mode, &["--policy", &policy, "--no-landlock"], &exec_script("/w"));
        let out = r.ok();
        let d = format!("{mode:?}\n{out}\n{}", r.stderr());
        assert!(out.contains("direct=RAN") && out.contains("loader=RAN"), "{d}");
    }
}

/// Opens ptys until the first failure; prints `count errno`, then waits
/// for its stdin to close while holding them.
pub(crate) const PTY_HOG: &str = "import os, sys
n = 0
err = 0
while n < 200:
    try:
        os.openpty()
        n += 1
    except OSError as e:
        err = e.errno
        break
print(n, err, flush=True)
sys.stdin.read()
";

fn hog_ptys(mode: Mode, args: &[&str]) -> (u32, i32) {
    let status = TempDir::new("pty-status");
    let mut c = common::cordon(mode);
    c.arg("run")
        .args(args)
        .arg("--status-json")
        .arg(status.path().join("o.json"))
        .args(["--", "/usr/bin/python3", "-c", PTY_HOG])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn cordon");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    // While the sandbox holds all it could get, the host still gets one.
    // SAFETY: posix_openpt takes flags only; the fd is closed below.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    let host_err = std::io::Error::last_os_error();
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    assert!(fd >= 0, "{mode:?}: the host could not open a pty: {host_err}");
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    let mut f = line.split_whitespace().map(|x| x.parse::<i64>().unwrap_or(-1));
    let (n, e) = (f.next(), f.next());
    assert!(
        out.status.success(),
        "{mode:?}: {line} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (n.unwrap_or(-1) as u32, e.unwrap_or(-1) as i32)
}

#[test]
fn the_sandbox_cannot_take_every_pty() {
    crate::require!("python3", common::have_python(), "no /usr/bin/python3");
    let dir = TempDir::new("ptys");
    let policy = default_with(&dir, |v| {
        mount_entry(v, "dev", "/dev")["ptys"] = 5.into();
    });
    for mode in modes() {
        let (n, e) = hog_ptys(mode, &[]);
        assert_eq!(e, libc::ENOSPC, "{mode:?}: {n} ptys, then errno {e}");
        assert!((1..=64).contains(&n), "{mode:?}: {n} ptys");
        let (n, e) = hog_ptys(mode, &["--policy", &policy]);
        assert_eq!((n, e), (5, libc::ENOSPC), "{mode:?}");
    }
}

/// A Python payload that creates empty files in /tmp until it fails or
/// made `max`; it prints how many and the errno (0: none).
pub(crate) fn fill_inodes(max: u32) -> String {
    format!(
        "import os
n = 0
err = 0
while n < {max}:
    try:
        os.close(os.open('/tmp/f%d' % n, os.O_CREAT | os.O_WRONLY, 0o644))
        n += 1
    except OSError as e:
        err = e.errno
        break
print(n, err)
"
    )
}

#[test]
fn empty_files_stop_at_the_inode_limit() {
    crate::require!("python3", common::have_python(), "no /usr/bin/python3");
    let dir = TempDir::new("inodes");
    let policy = default_with(&dir, |v| {
        mount_entry(v, "tmpfs", "/tmp")["inodes"] = 500.into();
    });
    for mode in modes() {
        let r = py(mode, &["--policy", &policy], &fill_inodes(5000));
        let out = r.ok();
        let mut f = out.split_whitespace().map(|x| x.parse::<i64>().unwrap_or(-1));
        let (n, e) = (f.next().unwrap_or(-1), f.next().unwrap_or(-1));
        assert_eq!(e, libc::ENOSPC as i64, "{mode:?}: {out}");
        assert!(
            (490..=500).contains(&n),
            "{mode:?}: {n} files with a limit of 500"
        );
        // Every tmpfs of the default policy has a finite inode limit.
        let r = run(mode, &[], &["/bin/cat", "/proc/self/mountinfo"]);
        let info = r.ok();
        let tmpfs: Vec<&str> = info.lines().filter(|l| l.contains(" - tmpfs ")).collect();
        for dst in ["/", "/tmp", "/dev", "/dev/shm"] {
            let line = tmpfs
                .iter()
                .find(|l| l.split(' ').nth(4) == Some(dst))
                .unwrap_or_else(|| panic!("{mode:?}: no tmpfs at {dst}\n{info}"));
            let limit = line
                .split([',', ' '])
                .find_map(|o| o.strip_prefix("nr_inodes="))
                .unwrap_or_else(|| panic!("{mode:?}: {dst} has no inode limit: {line}"));
            let limit: u64 = limit.parse().expect("number");
            assert!(limit > 0 && limit <= 1 << 20, "{mode:?}: {dst} nr_inodes={limit}");
        }
    }
}

fn refused(r: &common::Run, needle: &str, d: &str) {
    assert_ne!(r.code(), 0, "{d}: accepted\n{}", r.stdout());
    assert!(
        r.stderr().contains(needle),
        "{d}: error does not name {needle}: {}",
        r.stderr()
    );
}

#[test]
fn run_and_etc_ssh_are_not_bind_sources() {
    for mode in modes() {
        for src in ["/run", "/etc/ssh"] {
            if !std::path::Path::new(src).exists() {
                continue;
            }
            let r = sh(mode, &["--ro-bind", &format!("{src}:/x")], "echo bound");
            refused(&r, src, &format!("{mode:?} {src}"));
            assert!(r.stderr().contains("allow_sensitive"), "{}", r.stderr());
        }
    }
}

#[test]
fn agent_and_ticket_paths_in_tmp_are_not_bind_sources() {
    let tag = format!("cordontest{}", std::process::id());
    let agent = std::path::PathBuf::from(format!("/tmp/ssh-{tag}"));
    let ticket = std::path::PathBuf::from(format!("/tmp/krb5cc_{tag}"));
    /// Removes the planted paths even when an assertion fails.
    struct Cleanup(Vec<std::path::PathBuf>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_dir_all(p);
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let _cleanup = Cleanup(vec![agent.clone(), ticket.clone()]);
    std::fs::create_dir_all(&agent).expect("agent dir");
    std::fs::write(&ticket, "ticket").expect("ticket");
    for mode in modes() {
        for p in [&agent, &ticket] {
            let src = p.to_str().expect("utf-8");
            let r = sh(mode, &["--ro-bind", &format!("{src}:/x")], "echo bound");
            refused(&r, src, &format!("{mode:?} {src}"));
        }
    }
}

#[test]
fn home_secrets_are_not_bind_sources() {
    let home = TempDir::new("home");
    let names = [
        ".netrc",
        ".git-credentials",
        ".docker",
        ".pgpass",
        ".bash_history",
        ".local/share/keyrings",
    ];
    for n in names {
        let p = home.path().join(n);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, "secret").expect("write");
    }
    for mode in modes() {
        for n in names {
            let src = home.path().join(n);
            let src = src.to_str().expect("utf-8");
            let mut c = common::cordon(mode);
            c.env("HOME", home.str());
            let r = common::run_with(c, &["--ro-bind", &format!("{src}:/x")], &["/bin/true"]);
            refused(&r, src, &format!("{mode:?} {n}"));
        }
    }
}

#[test]
fn a_tree_with_a_listening_unix_socket_is_not_a_bind_source() {
    let dir = TempDir::new("sock");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    let sock = dir.path().join("sub/agent.sock");
    let _listener = UnixListener::bind(&sock).expect("listen");
    let sock_s = sock.to_str().expect("utf-8").to_string();
    let pdir = TempDir::new("sock-pol");
    let src = dir.str().to_string();
    let allowed = default_with(&pdir, |v| {
        v["allow_sensitive"] = serde_json::json!([sock_s.clone()]);
    });
    for mode in modes() {
        let bind = format!("{}:/w", dir.str());
        let r = sh(mode, &["--ro-bind", &bind], "echo bound");
        refused(&r, &sock_s, &format!("{mode:?}"));
        // The socket itself, too.
        let r = sh(mode, &["--ro-bind", &format!("{sock_s}:/s")], "echo bound");
        refused(&r, &sock_s, &format!("{mode:?}"));
        // Allowed by name: the bind goes ahead.
        let r = sh(
            mode,
            &["--policy", &allowed, "--ro-bind", &bind],
            "ls /w/sub; echo bound",
        );
        let out = r.ok();
        assert!(
            out.contains("agent.sock") && out.contains("bound"),
            "{mode:?} {out} {}",
            r.stderr()
        );
    }
    drop(src);
}

#[test]
fn a_symlinked_bind_source_is_refused_with_no_symlinks() {
    let dir = TempDir::new("nofollow");
    let real = dir.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    common::set_mode(&real, 0o777);
    std::fs::write(real.join("f"), "data").expect("write");
    std::os::unix::fs::symlink(&real, dir.path().join("link")).expect("symlink");
    std::os::unix::fs::symlink(dir.path(), dir.path().join("up")).expect("symlink");
    let link = format!("{}/link", dir.str());
    let inner = format!("{}/up/real", dir.str());
    let pdir = TempDir::new("nofollow-pol");
    let l2 = link.clone();
    let policy = default_with(&pdir, |v| {
        v["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(serde_json::json!({"bind": l2, "to": "/w", "readonly": false, "no_symlinks": true}));
    });
    for mode in modes() {
        for src in [&link, &inner] {
            let r = sh(mode, &["--bind-nofollow", &format!("{src}:/w")], "cat /w/f");
            refused(&r, src, &format!("{mode:?} {src}"));
            assert!(r.stderr().contains("symlink"), "{}", r.stderr());
            // Without the switch the symlink is followed as before.
            let r = sh(mode, &["--bind", &format!("{src}:/w")], "cat /w/f");
            assert_eq!(r.ok(), "data", "{mode:?}");
        }
        let r = sh(mode, &["--policy", &policy], "cat /w/f");
        refused(&r, "no_symlinks", &format!("{mode:?} policy"));
        // The real path itself is fine with the switch.
        let script = format!("cat /w/f; echo x > /w/g-{mode:?} && echo wrote");
        let r = sh(
            mode,
            &["--bind-nofollow", &format!("{}:/w", real.display())],
            &script,
        );
        assert_eq!(r.ok(), "datawrote\n", "{mode:?} {}", r.stderr());
    }
}
