//! Isolation properties of the sandbox, each proven both ways: what the
//! policy forbids fails, and what it allows works.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Everything needed to diagnose a run.
fn diag(mode: Mode, r: &Run) -> String {
    format!(
        "mode: {mode:?}\nexit: {:?}\nstdout:\n{}\nstderr:\n{}",
        r.output.status,
        r.stdout(),
        r.stderr()
    )
}

/// Assert a zero exit and return stdout, with diagnostics.
fn ok(mode: Mode, r: &Run) -> String {
    assert_eq!(r.code(), 0, "cordon failed\n{}", diag(mode, r));
    r.stdout()
}

/// The value of `key=` lines of the form `key value...` in `out`.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

/// Interface names in a /proc/net/dev text.
fn net_dev_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .collect()
}

/// `Name: value` fields of a /proc/<pid>/status text.
fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim())
    })
}

const CAP_FIELDS: [&str; 5] = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];

/// The built-in default policy as JSON, to extend in tests.
fn default_policy() -> serde_json::Value {
    serde_json::from_str(include_str!("../policies/default.json")).expect("default policy is JSON")
}

#[test]
fn pid_namespace_shows_only_the_sandbox() {
    require!("python3", have_python(), "python3 is not installed");
    let me = std::process::id();
    let my_cmdline = std::fs::read(format!("/proc/{me}/cmdline")).expect("own cmdline");
    // The host side, to show the listing below is not trivially small.
    let host_pids = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|s| s.parse::<u32>().is_ok()))
        .count();
    assert!(host_pids > 3, "the host shows only {host_pids} processes");
    let script = r#"
import os, subprocess, sys
child = subprocess.Popen(["/usr/bin/sleep", "30"])
pids = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
print("pids", " ".join(map(str, pids)))
print("me", os.getpid())
print("child", child.pid)
print("comm1", open("/proc/1/comm").read().strip())
try:
    print("hostcmd", open("/proc/%s/cmdline" % sys.argv[1], "rb").read().hex())
except OSError as e:
    print("hostcmd absent", e.errno)
child.kill()
child.wait()
"#;
    for mode in modes() {
        let r = run(mode, &[], &["/usr/bin/python3", "-c", script, &me.to_string()]);
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert_eq!(field(&out, "me"), Some("2"), "the payload is not pid 2\n{d}");
        let child = field(&out, "child").expect("child pid");
        assert_eq!(
            field(&out, "pids"),
            Some(format!("1 2 {child}").as_str()),
            "/proc inside must list exactly the init, the payload and its child\n{d}"
        );
        assert_eq!(
            field(&out, "comm1"),
            Some("cordon"),
            "pid 1 is not cordon's init\n{d}"
        );
        let hostcmd = field(&out, "hostcmd").expect("hostcmd line");
        let mine: String = my_cmdline.iter().map(|b| format!("{b:02x}")).collect();
        assert_ne!(
            hostcmd, mine,
            "the test process (host pid {me}) is visible inside\n{d}"
        );
    }
}

#[test]
fn network_namespace_has_only_loopback_and_it_is_up() {
    require!("python3", have_python(), "python3 is not installed");
    // A server on the host's loopback: unreachable from the sandbox's own
    // network namespace, reachable with --share-net.
    let host_server = std::net::TcpListener::bind("127.0.0.1:0").expect("host listener");
    let host_port = host_server.local_addr().unwrap().port().to_string();
    let script = r#"
import errno, socket, sys
print("ifaces", " ".join(sorted(n for _, n in socket.if_nameindex())))
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
c = socket.create_connection(srv.getsockname(), timeout=5)
conn, _ = srv.accept()
c.sendall(b"ping")
print("inner", conn.recv(4).decode())
s = socket.socket()
s.settimeout(5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("host connected")
except OSError as e:
    print("host", errno.errorcode.get(e.errno, str(e)))
"#;
    let host_ifaces = net_dev_names(&std::fs::read_to_string("/proc/net/dev").unwrap());
    for mode in modes() {
        let r = run(mode, &[], &["/usr/bin/python3", "-c", script, &host_port]);
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert_eq!(field(&out, "ifaces"), Some("lo"), "interfaces other than lo\n{d}");
        assert_eq!(
            field(&out, "inner"),
            Some("ping"),
            "loopback does not carry TCP\n{d}"
        );
        assert_eq!(
            field(&out, "host"),
            Some("ECONNREFUSED"),
            "the host's loopback server must be unreachable\n{d}"
        );

        let r = run(
            mode,
            &["--share-net"],
            &["/usr/bin/python3", "-c", script, &host_port],
        );
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert_eq!(
            field(&out, "host"),
            Some("connected"),
            "--share-net: host server unreachable\n{d}"
        );
        if host_ifaces.len() > 1 {
            let inner: BTreeSet<String> = field(&out, "ifaces")
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect();
            assert_eq!(inner, host_ifaces, "--share-net: not the host's interfaces\n{d}");
        }
    }
}

#[test]
fn no_capabilities_and_no_new_privs() {
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    for f in CAP_FIELDS {
        assert!(status_field(&host, f).is_some(), "host status lacks {f}:\n{host}");
    }
    if is_root() {
        assert_ne!(
            status_field(&host, "CapEff"),
            Some("0000000000000000"),
            "the root test process should have capabilities:\n{host}"
        );
    }
    for mode in modes() {
        let r = run(mode, &[], &["/usr/bin/cat", "/proc/self/status"]);
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        for f in CAP_FIELDS {
            assert_eq!(
                status_field(&out, f),
                Some("0000000000000000"),
                "{f} is not empty\n{d}"
            );
        }
        assert_eq!(
            status_field(&out, "NoNewPrivs"),
            Some("1"),
            "no_new_privs is not set\n{d}"
        );
        // Even as uid 0 of its namespace, the payload gets no capabilities.
        let r = run(
            mode,
            &["--uid", "0", "--gid", "0"],
            &["/usr/bin/cat", "/proc/self/status"],
        );
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert_eq!(
            status_field(&out, "Uid").map(|u| u.split_whitespace().next()),
            Some(Some("0")),
            "{d}"
        );
        for f in CAP_FIELDS {
            assert_eq!(
                status_field(&out, f),
                Some("0000000000000000"),
                "uid 0: {f} is not empty\n{d}"
            );
        }
    }
}

#[test]
fn identity_is_the_policys_and_files_belong_to_the_binds_owner() {
    for mode in modes() {
        let d = TempDir::new("ident");
        // Started by root, a writable bind is idmapped: files belong to
        // the source's owner (here 2222), never to the sandbox's host id.
        let owner = match mode {
            Mode::Root => {
                std::os::unix::fs::chown(d.path(), Some(2222), Some(2222)).expect("chown");
                2222
            }
            Mode::Rootless => common::ROOTLESS_ID,
        };
        // A root-owned 0755 directory bound read-write: writable for the
        // payload only when cordon runs as root (it is then root's to the
        // payload, and what the payload makes there stays root's).
        let locked = TempDir::new("ident-locked");
        set_mode(locked.path(), 0o755);
        let r = sh(
            mode,
            &[
                "--uid",
                "1234",
                "--gid",
                "4321",
                "--bind",
                &format!("{}:/work", d.str()),
                "--bind",
                &format!("{}:/locked", locked.str()),
            ],
            "echo uid $(id -u); echo gid $(id -g); echo data > /work/f && echo created; \
             if echo x > /locked/f 2>/dev/null; then echo locked writable; else echo locked denied; fi",
        );
        let out = ok(mode, &r);
        let dg = diag(mode, &r);
        assert_eq!(field(&out, "uid"), Some("1234"), "{dg}");
        assert_eq!(field(&out, "gid"), Some("4321"), "{dg}");
        assert!(out.contains("created\n"), "could not write the rw bind\n{dg}");
        // A kernel that cannot idmap /tmp's filesystem (tmpfs before 6.3)
        // binds as before and says so.
        let idmapped = mode == Mode::Root
            && !r.status.as_ref().is_some_and(|s| {
                s["unenforced"]
                    .to_string()
                    .contains("cannot make the idmapped mount")
            });
        let owner = if mode == Mode::Root && !idmapped {
            mode.payload_host_uid(&r)
        } else {
            owner
        };
        let meta = std::fs::metadata(d.path().join("f")).expect("file created inside is on the host");
        assert_eq!(meta.uid(), owner, "host owner of a sandbox file\n{dg}");
        assert_eq!(meta.gid(), owner, "host group of a sandbox file\n{dg}");
        // A root-owned source is not idmapped unless the policy names
        // "owner": "0:0" (tests/hostile/idmap.rs): the payload cannot write
        // the root-owned 0755 directory in either mode.
        assert_eq!(
            field(&out, "locked"),
            Some("denied"),
            "payload wrote a root-owned 0755 dir\n{dg}"
        );
        assert!(!locked.path().join("f").exists(), "{dg}");
    }
}

#[test]
fn host_files_outside_the_mounts_are_absent() {
    let forbidden = ["/root", "/home", "/var", "/boot", "/etc/shadow"];
    // These exist on the host, so their absence inside means something.
    for p in ["/etc/passwd", "/root", "/var"] {
        assert!(std::path::Path::new(p).exists(), "host lacks {p}");
    }
    // /etc/passwd inside is cordon's generated one, never the host's
    // (which has a daemon account on Debian; the generated one does not).
    let host_passwd = std::fs::read_to_string("/etc/passwd").expect("host /etc/passwd");
    assert!(
        host_passwd.lines().any(|l| l.starts_with("daemon:")),
        "host passwd lacks daemon"
    );
    let script = format!(
        "for p in {}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then echo \"present $p\"; fi; done; \
         grep -q '^daemon:' /etc/passwd 2>/dev/null && echo 'present host /etc/passwd'; \
         [ -x /usr/bin/env ] && echo env ok; /usr/bin/env true && echo env runs",
        forbidden.join(" ")
    );
    for mode in modes() {
        let r = sh(mode, &[], &script);
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert!(!out.contains("present"), "host files visible inside\n{d}");
        assert!(
            out.contains("env ok\n") && out.contains("env runs\n"),
            "/usr/bin/env missing\n{d}"
        );
    }
}

#[test]
fn readonly_bind_refuses_writes_with_erofs_and_rw_bind_accepts() {
    require!("python3", have_python(), "python3 is not installed");
    let script = r#"
import errno
def tryw(p, data="x"):
    try:
        with open(p, "w") as f:
            f.write(data)
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
print("roread", open("/ro/present").read())
print("ro", tryw("/ro/new"))
print("rooverwrite", tryw("/ro/present"))
print("rw", tryw("/rw/new", "from-sandbox"))
print("root", tryw("/newfile"))
print("usr", tryw("/usr/newfile"))
"#;
    for mode in modes() {
        let ro = TempDir::new("ro");
        let rw = TempDir::new("rw");
        let present = ro.path().join("present");
        std::fs::write(&present, "hostdata").unwrap();
        set_mode(&present, 0o666);
        let r = py(
            mode,
            &[
                "--ro-bind",
                &format!("{}:/ro", ro.str()),
                "--bind",
                &format!("{}:/rw", rw.str()),
            ],
            script,
        );
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert_eq!(
            field(&out, "roread"),
            Some("hostdata"),
            "ro bind not readable\n{d}"
        );
        assert_eq!(
            field(&out, "ro"),
            Some("EROFS"),
            "ro bind accepted a new file\n{d}"
        );
        assert_eq!(
            field(&out, "rooverwrite"),
            Some("EROFS"),
            "ro bind accepted a write\n{d}"
        );
        assert_eq!(field(&out, "rw"), Some("OK"), "rw bind refused a write\n{d}");
        assert_eq!(field(&out, "root"), Some("EROFS"), "the root is writable\n{d}");
        assert_eq!(field(&out, "usr"), Some("EROFS"), "/usr is writable\n{d}");
        assert!(!ro.path().join("new").exists(), "{d}");
        assert_eq!(std::fs::read_to_string(&present).unwrap(), "hostdata", "{d}");
        assert_eq!(
            std::fs::read_to_string(rw.path().join("new")).ok().as_deref(),
            Some("from-sandbox"),
            "rw write not visible on the host\n{d}"
        );
    }
}

#[test]
fn copy_snapshots_a_world_readable_file_and_refuses_what_only_a_bind_may_carry() {
    for mode in modes() {
        let tmp = TempDir::new("copy");
        let conf = tmp.path().join("conf");
        std::fs::write(&conf, "hello copy\n").unwrap();
        set_mode(&conf, 0o644);
        let mut p = default_policy();
        let mounts = p["mounts"].as_array_mut().unwrap();
        mounts.push(serde_json::json!({"copy": conf.to_str().unwrap(), "to": "/etc/conf"}));
        mounts.push(serde_json::json!({"copy": "/nonexistent/cordon-copy", "optional": true}));
        let pol = write_policy(&tmp, "copy.json", &p.to_string());
        // Read, not a mount point, read-only; and the host file changed
        // after the launch is not seen (a snapshot).
        let r = sh(
            mode,
            &["--policy", &pol],
            "cat /etc/conf; grep -c ' /etc/conf ' /proc/self/mountinfo; \
             echo x > /etc/conf 2>/dev/null && echo WROTE || echo REFUSED; \
             test -e /nonexistent && echo OPTIONAL-MADE; true",
        );
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert!(out.starts_with("hello copy\n0\nREFUSED\n"), "{d}");
        assert!(!out.contains("OPTIONAL-MADE"), "{d}");
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), "hello copy\n");

        // What a copy refuses, each before anything runs, naming the entry.
        let dir = tmp.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        let private = tmp.path().join("private");
        std::fs::write(&private, "secret\n").unwrap();
        set_mode(&private, 0o640);
        let big = tmp.path().join("big");
        std::fs::write(&big, vec![b'x'; (1 << 20) + 1]).unwrap();
        set_mode(&big, 0o644);
        for (src, why) in [
            (&dir, "only a regular file can be copied"),
            // Rootless, the caller itself cannot open it.
            (
                &private,
                if mode == Mode::Root {
                    "not readable by everyone on the host (mode 0640)"
                } else {
                    "Permission denied"
                },
            ),
            (&big, "larger than 1024 KiB"),
            (&tmp.path().join("missing"), "cannot resolve host path"),
        ] {
            let mut p = default_policy();
            let mounts = p["mounts"].as_array_mut().unwrap();
            mounts.push(serde_json::json!({"copy": src.to_str().unwrap(), "to": "/etc/x"}));
            let n = mounts.len() - 1;
            let pol = write_policy(&tmp, "bad.json", &p.to_string());
            let r = sh(mode, &["--policy", &pol], "echo RAN");
            let d = diag(mode, &r);
            assert_ne!(r.code(), 0, "{d}");
            assert!(!r.stdout().contains("RAN"), "{d}");
            assert!(r.stderr().contains(&format!("mounts[{n}].copy")), "{d}");
            assert!(r.stderr().contains(why), "{why}\n{d}");
        }
    }
}

#[test]
fn tmpfs_size_is_enforced() {
    require!("python3", have_python(), "python3 is not installed");
    let script = r#"
import errno, os, sys
def w(p, n):
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        chunk = b"\xa5" * 65536
        done = 0
        while done < n:
            done += os.write(fd, chunk[: n - done])
        os.fsync(fd)
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
    finally:
        os.close(fd)
d = sys.argv[1]
print("small", w(d + "/small", 100 * 1024))
print("big", w(d + "/big", 2 * 1024 * 1024))
"#;
    for mode in modes() {
        let r = run(
            mode,
            &["--tmpfs", "/small:1M"],
            &["/usr/bin/python3", "-c", script, "/small"],
        );
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert_eq!(
            field(&out, "small"),
            Some("OK"),
            "100 KiB did not fit a 1M tmpfs\n{d}"
        );
        assert_eq!(
            field(&out, "big"),
            Some("ENOSPC"),
            "2 MiB fit into a 1M tmpfs\n{d}"
        );
        // The same write fits the default 64M /tmp: the limit is the size.
        let r = run(
            mode,
            &["--tmpfs", "/small:1M"],
            &["/usr/bin/python3", "-c", script, "/tmp"],
        );
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert_eq!(
            field(&out, "big"),
            Some("OK"),
            "2 MiB did not fit the 64M /tmp\n{d}"
        );
    }
}

#[test]
fn proc_sys_is_not_writable() {
    require!("python3", have_python(), "python3 is not installed");
    let script = r#"
import errno, os
def tryw(p):
    try:
        fd = os.open(p, os.O_WRONLY)
    except OSError as e:
        return "open " + errno.errorcode.get(e.errno, str(e))
    try:
        os.write(fd, b"x\n")
        return "WROTE"
    except OSError as e:
        return "write " + errno.errorcode.get(e.errno, str(e))
    finally:
        os.close(fd)
print("hostname", tryw("/proc/sys/kernel/hostname"))
print("drop_caches", tryw("/proc/sys/vm/drop_caches"))
print("sysrq", tryw("/proc/sysrq-trigger"))
print("status", "Pid:" in open("/proc/self/status").read())
print("readsys", open("/proc/sys/kernel/hostname").read().strip())
for line in open("/proc/self/mountinfo"):
    f = line.split()
    if f[4] in ("/proc/sys", "/proc/sysrq-trigger"):
        print("mnt", f[4], f[5].split(",")[0])
"#;
    // Without CONFIG_MAGIC_SYSRQ there is no /proc/sysrq-trigger at all.
    let host_sysrq = std::path::Path::new("/proc/sysrq-trigger").exists();
    for mode in modes() {
        let r = py(mode, &[], script);
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        for key in ["hostname", "drop_caches", "sysrq"] {
            let v = field(&out, key).unwrap_or("<missing>");
            let absent_ok = key == "sysrq" && !host_sysrq && v == "open ENOENT";
            assert!(
                v.ends_with("EROFS") || v.ends_with("EACCES") || absent_ok,
                "{key}: expected EROFS or EACCES, got {v}\n{d}"
            );
            eprintln!("{mode:?}: {key}: {v}");
        }
        assert_eq!(
            field(&out, "status"),
            Some("True"),
            "/proc/self/status unreadable\n{d}"
        );
        assert_eq!(
            field(&out, "readsys"),
            Some("cordon"),
            "/proc/sys unreadable\n{d}"
        );
        // The read-only mounts themselves, so that the test does not rest
        // on file permissions alone.
        let mnts: Vec<&str> = out.lines().filter(|l| l.starts_with("mnt ")).collect();
        assert!(
            mnts.contains(&"mnt /proc/sys ro"),
            "/proc/sys is not a read-only mount\n{d}"
        );
        if host_sysrq {
            assert!(
                mnts.contains(&"mnt /proc/sysrq-trigger ro"),
                "/proc/sysrq-trigger is not a read-only mount\n{d}"
            );
        }
        assert!(
            !mnts.iter().any(|m| m.ends_with(" rw")),
            "a writable /proc/sys mount\n{d}"
        );
    }
}

/// A command that inherits `secret` on fds 5..=9 without close-on-exec.
fn with_secret_fds(mut c: Command, secret: i32) -> Command {
    // SAFETY: dup2 is async-signal-safe; the closure allocates nothing.
    unsafe {
        c.pre_exec(move || {
            for n in 5..=9 {
                if libc::dup2(secret, n) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    c
}

/// Targets of the fds of host process `pid` (None if unreadable).
fn fd_targets(pid: u32) -> Option<Vec<String>> {
    let rd = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        rd.flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
    )
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[test]
fn inherited_fds_are_closed() {
    require!("python3", have_python(), "python3 is not installed");
    let dir = TempDir::new("fds");
    let secret_path = dir.path().join("secret");
    let marker = "cordon-secret-marker-7f3a";
    std::fs::write(&secret_path, marker).unwrap();
    let secret_str = secret_path.to_str().unwrap().to_string();
    set_mode(&secret_path, 0o644);
    let file = std::fs::File::open(&secret_path).unwrap();
    // A high fd (close-on-exec) so that dup2 onto 5..=9 never hits it.
    use std::os::fd::AsRawFd;
    // SAFETY: plain fcntl on an fd we own.
    let secret = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
    assert!(secret >= 100, "F_DUPFD_CLOEXEC failed");

    // Without cordon the fds really are inherited.
    let plain = with_secret_fds(Command::new("/bin/sh"), secret)
        .args([
            "-c",
            "cat <&5; echo; for n in 5 6 7 8 9; do readlink /proc/self/fd/$n; done",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("spawn sh");
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        format!("{marker}\n{}", format!("{secret_str}\n").repeat(5)),
        "control: fds 5..=9 were not passed (stderr: {})",
        String::from_utf8_lossy(&plain.stderr)
    );

    let script = r#"
import errno, os
for n in range(5, 10):
    try:
        os.fstat(n)
        print("fd", n, "open", os.readlink("/proc/self/fd/%d" % n))
    except OSError as e:
        print("fd", n, errno.errorcode.get(e.errno, str(e)))
print("listing", " ".join(sorted(os.listdir("/proc/self/fd"), key=int)))
"#;
    for mode in modes() {
        let r = run_with(
            with_secret_fds(cordon(mode), secret),
            &[],
            &["/usr/bin/python3", "-c", script],
        );
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        for n in 5..=9 {
            assert_eq!(
                out.lines().find(|l| l.starts_with(&format!("fd {n} "))),
                Some(format!("fd {n} EBADF").as_str()),
                "fd {n} reached the payload\n{d}"
            );
        }
        let listing: Vec<u32> = field(&out, "listing")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        let extra: Vec<u32> = listing.iter().copied().filter(|n| *n > 2).collect();
        assert!(
            listing.starts_with(&[0, 1, 2]) && extra.len() <= 1,
            "the payload holds more than 0, 1, 2 and listdir's own fd\n{d}"
        );

        // The init, seen from the host, holds none of them either.
        let mut child = with_secret_fds(cordon(mode), secret)
            .args(["run", "--", "/usr/bin/sleep", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cordon");
        let cpid = child.id();
        let mut init = 0;
        let mut payload = 0;
        let started = wait_until(5.0, || {
            if let Some(&i) = children(cpid).first() {
                init = i;
                if let Some(&p) = children(i).first() {
                    payload = p;
                    return std::fs::read_to_string(format!("/proc/{p}/comm"))
                        .is_ok_and(|c| c.trim() == "sleep");
                }
            }
            false
        });
        let result = (|| {
            if !started {
                return Err(format!(
                    "the payload did not start (init {init}, payload {payload})"
                ));
            }
            // The control: cordon itself inherited them.
            let own = fd_targets(cpid).unwrap_or_default();
            if !own.contains(&secret_str) {
                return Err(format!("cordon did not inherit the secret: {own:?}"));
            }
            if !is_root() && fd_targets(init).is_none() {
                // The init is not dumpable: only root may list its fds.
                eprintln!("SKIPPED: listing the init's fds needs root (root)");
                return Ok(());
            }
            let mut last = Vec::new();
            let clean = wait_until(2.0, || match fd_targets(init) {
                Some(t) => {
                    last = t;
                    !last.contains(&secret_str)
                }
                None => false,
            });
            if !clean {
                return Err(format!(
                    "init {init} holds the secret (or its fds are unreadable): {last:?}"
                ));
            }
            match fd_targets(payload) {
                Some(t) if !t.contains(&secret_str) => Ok(()),
                t => Err(format!("payload {payload} fds: {t:?}")),
            }
        })();
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait cordon");
        if let Err(e) = result {
            panic!(
                "mode {mode:?}: {e}\ncordon stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // SAFETY: closing our own duplicate.
    unsafe { libc::close(secret) };
}

#[test]
fn environment_is_exactly_kept_plus_set() {
    let expected: BTreeSet<String> = [
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "HOME=/tmp",
        "FOO=bar",
        "KEEPME=k",
        "TERM=xterm",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for mode in modes() {
        let mut c = cordon(mode);
        c.env("KEEPME", "k").env("DROPME", "d").env("TERM", "xterm");
        let r = run_with(c, &["--env", "FOO=bar", "--env", "KEEPME"], &["/usr/bin/env"]);
        let out = ok(mode, &r);
        let got: BTreeSet<String> = out.lines().map(String::from).collect();
        assert_eq!(got, expected, "payload environment\n{}", diag(mode, &r));
        assert_eq!(
            out.lines().count(),
            expected.len(),
            "duplicate variables\n{}",
            diag(mode, &r)
        );
    }
}

#[test]
fn hostname_is_the_policys() {
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host_before.trim(), "box7", "pick another test hostname");
    for mode in modes() {
        let r = sh(mode, &[], "cat /proc/sys/kernel/hostname; uname -n");
        assert_eq!(
            ok(mode, &r),
            "cordon\ncordon\n",
            "default hostname\n{}",
            diag(mode, &r)
        );
        let r = sh(
            mode,
            &["--hostname", "box7"],
            "cat /proc/sys/kernel/hostname; uname -n",
        );
        assert_eq!(
            ok(mode, &r),
            "box7\nbox7\n",
            "--hostname box7\n{}",
            diag(mode, &r)
        );
        let host_after = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(
            host_after,
            host_before,
            "the host's hostname changed\n{}",
            diag(mode, &r)
        );
    }
}

#[test]
fn dev_is_minimal_and_works() {
    require!("python3", have_python(), "python3 is not installed");
    use std::os::unix::fs::FileTypeExt;
    // Devices that must not appear: every host block device, plus the
    // classic dangerous ones whether or not this host has them.
    let mut absent: BTreeSet<String> = ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/sda", "/dev/kmsg"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for e in std::fs::read_dir("/dev").unwrap().flatten() {
        if e.file_type().is_ok_and(|t| t.is_block_device()) {
            absent.insert(s(e.path()));
        }
    }
    let script = r#"
import errno, os, pty, sys
with open("/dev/null", "wb") as f:
    f.write(b"x" * 4096)
print("null ok")
with open("/dev/zero", "rb") as f:
    print("zero", f.read(4096) == b"\0" * 4096)
with open("/dev/urandom", "rb") as f:
    a, b = f.read(16), f.read(16)
print("urandom", len(a), a != b)
try:
    with open("/dev/full", "wb", buffering=0) as f:
        f.write(b"x")
    print("full wrote")
except OSError as e:
    print("full", errno.errorcode.get(e.errno, str(e)))
m, s = pty.openpty()
os.write(m, b"ping\n")
print("pty", os.ttyname(s).startswith("/dev/pts/"), os.read(s, 5) == b"ping\n")
with open("/dev/shm/x", "w") as f:
    f.write("shm")
print("shm", open("/dev/shm/x").read())
print("listing", " ".join(sorted(os.listdir("/dev"))))
for p in sys.argv[1:]:
    if os.path.lexists(p):
        print("present", p)
"#;
    let mut cmd = vec!["/usr/bin/python3", "-c", script];
    cmd.extend(absent.iter().map(String::as_str));
    let expected = "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero";
    for mode in modes() {
        let r = run(mode, &[], &cmd);
        let out = ok(mode, &r);
        let d = diag(mode, &r);
        assert!(out.contains("null ok\n"), "{d}");
        assert_eq!(field(&out, "zero"), Some("True"), "/dev/zero\n{d}");
        assert_eq!(field(&out, "urandom"), Some("16 True"), "/dev/urandom\n{d}");
        assert_eq!(field(&out, "full"), Some("ENOSPC"), "/dev/full\n{d}");
        assert_eq!(field(&out, "pty"), Some("True True"), "pty.openpty\n{d}");
        assert_eq!(field(&out, "shm"), Some("shm"), "/dev/shm\n{d}");
        assert!(!out.contains("present "), "host devices visible inside\n{d}");
        assert_eq!(field(&out, "listing"), Some(expected), "/dev is not minimal\n{d}");
    }
}

#[test]
fn mount_points_are_never_created_on_the_host() {
    let escape = format!("/tmp/cordon-escape-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&escape);
    let policies = TempDir::new("mp-policies");
    for mode in modes() {
        let d = TempDir::new("mp");
        std::os::unix::fs::symlink(&escape, d.path().join("esc")).unwrap();
        std::fs::create_dir(d.path().join("existing")).unwrap();
        set_mode(&d.path().join("existing"), 0o777);
        let policy_with = |name: &str, tmpfs_dst: &str| {
            let mut p = default_policy();
            let mounts = p["mounts"].as_array_mut().unwrap();
            mounts.push(serde_json::json!({"bind": d.str(), "to": "/data", "readonly": false}));
            mounts.push(serde_json::json!({"tmpfs": tmpfs_dst, "size": "1M"}));
            // The default policy's Landlock rules let only its own writable
            // mounts be written: add the new ones.
            let write = p["landlock"]["write"].as_array_mut().unwrap();
            write.push("/data".into());
            write.push(tmpfs_dst.into());
            write_policy(&policies, &format!("{mode:?}-{name}.json"), &p.to_string())
        };

        for (name, dst) in [("escape", "/data/esc/sub"), ("newdir", "/data/newdir")] {
            let pf = policy_with(name, dst);
            let r = sh(mode, &["--policy", &pf], "echo payload ran");
            let dg = diag(mode, &r);
            assert_eq!(r.code(), 125, "tmpfs at {dst} must be a setup failure\n{dg}");
            assert!(
                r.stderr().contains("mount point"),
                "stderr does not name the mount point\n{dg}"
            );
            assert_eq!(r.outcome_status(), "setup_failed", "{dg}");
            assert!(!r.stdout().contains("payload ran"), "{dg}");
            assert!(
                std::fs::symlink_metadata(&escape).is_err(),
                "{escape} was created on the host\n{dg}"
            );
            assert!(
                !d.path().join("newdir").exists(),
                "D/newdir was created on the host\n{dg}"
            );
        }

        // Allowed: an existing directory of the bind is a fine mount point.
        let pf = policy_with("existing", "/data/existing");
        let r = sh(
            mode,
            &["--policy", &pf],
            "echo inside > /data/existing/written && cat /data/existing/written && \
             grep -c ' /data/existing ' /proc/self/mountinfo",
        );
        let out = ok(mode, &r);
        let dg = diag(mode, &r);
        assert_eq!(out, "inside\n1\n", "{dg}");
        assert!(
            !d.path().join("existing/written").exists(),
            "the write went to the host dir, not the tmpfs\n{dg}"
        );
        assert!(
            std::fs::symlink_metadata(&escape).is_err(),
            "{escape} exists\n{dg}"
        );
    }
}

#[test]
fn cwd_is_the_policys() {
    for mode in modes() {
        let r = run(mode, &["--chdir", "/usr"], &["/bin/pwd"]);
        assert_eq!(ok(mode, &r), "/usr\n", "--chdir /usr\n{}", diag(mode, &r));
        let r = run(mode, &[], &["/bin/pwd"]);
        assert_eq!(ok(mode, &r), "/tmp\n", "default cwd\n{}", diag(mode, &r));
        let r = run(mode, &["--chdir", "/nope"], &["/bin/pwd"]);
        let d = diag(mode, &r);
        assert_eq!(r.code(), 125, "--chdir /nope must be a setup failure\n{d}");
        assert!(r.stderr().contains("chdir"), "stderr does not mention chdir\n{d}");
        assert!(r.stdout().is_empty(), "the payload ran\n{d}");
    }
}

#[test]
fn binds_of_symlinks_mount_the_real_target() {
    for mode in modes() {
        let d = TempDir::new("symlink-bind");
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        set_mode(&real, 0o755);
        std::fs::write(real.join("file.txt"), "real content").unwrap();
        set_mode(&real.join("file.txt"), 0o644);
        std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
        let r = sh(
            mode,
            &["--ro-bind", &format!("{}/link:/x", d.str())],
            &format!(
                "cat /x/file.txt; echo; [ -L /x ] && echo x is a link; [ -d /x ] && echo x is a dir; \
                 [ -e {0} ] && echo host path visible; echo y > /x/new 2>/dev/null && echo wrote; true",
                d.str()
            ),
        );
        let out = ok(mode, &r);
        assert_eq!(
            out,
            "real content\nx is a dir\n",
            "bind of a symlink\n{}",
            diag(mode, &r)
        );
        assert!(!real.join("new").exists(), "{}", diag(mode, &r));
    }
}

/// Ignored signals survive execve and blocked ones stay blocked: neither
/// may leak from cordon's caller into the payload.
#[test]
fn payload_signal_state_is_clean() {
    for mode in modes() {
        let mut c = cordon(mode);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR1);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        let r = run_with(
            c,
            &[],
            &["/bin/sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"],
        );
        let out = r.ok();
        // The shell itself ignores nothing at start; SigIgn/SigBlk must be 0.
        assert!(
            out.contains("SigBlk:\t0000000000000000") && out.contains("SigIgn:\t0000000000000000"),
            "{mode:?}: {out}\n{}",
            r.stderr()
        );
        // The allowed side: the same setup without cordon does leak, which
        // shows the pre_exec above takes effect.
        let mut plain = std::process::Command::new("/bin/sh");
        // SAFETY: as above.
        unsafe {
            plain.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            });
        }
        let o = plain
            .args(["-c", "grep '^SigIgn' /proc/self/status"])
            .output()
            .expect("sh");
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("0000000000000000"),
            "control run did not ignore SIGINT"
        );
    }
}
