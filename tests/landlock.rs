//! Landlock inside the sandbox, each rule both ways: what is outside the
//! rules fails with EACCES (or EPERM for scopes) although the sandbox has
//! it, what is inside works. The same tests run on this kernel and in the
//! VM lane (Debian's 6.1, Landlock ABI 2), where strict policies needing
//! newer rights are refused and best-effort ones report what is missing.

mod common;

use std::io::Read;
use std::net::TcpListener;

use common::{modes, run, Mode, Run, TempDir};

/// The running kernel's Landlock ABI (0: none).
fn abi() -> u32 {
    // SAFETY: a version query: null attr, size 0, flag 1.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if r < 0 {
        0
    } else {
        r as u32
    }
}

fn diag(mode: Mode, r: &Run) -> String {
    format!(
        "[{mode:?}] code {:?}\nstdout: {}\nstderr: {}\noutcome: {:?}",
        r.output.status,
        r.stdout(),
        r.stderr(),
        r.status
    )
}

fn policy(dir: &TempDir, name: &str, landlock: serde_json::Value) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.json"))
        .expect("default policy");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let mounts = v["mounts"].as_array_mut().expect("mounts");
    mounts.push(serde_json::json!({"bind": dir.str(), "to": "/ro", "readonly": true}));
    mounts.push(serde_json::json!({"bind": dir.str(), "to": "/rw", "readonly": false}));
    v["landlock"] = landlock;
    let p = dir.path().join(format!("{name}.json"));
    std::fs::write(&p, v.to_string()).expect("write policy");
    p.to_str().expect("utf-8").to_string()
}

/// `strict` where this kernel can enforce every filesystem right cordon
/// uses (ABI 5), `best_effort` otherwise (the VM lane's ABI 2).
fn fs_compat() -> &'static str {
    if abi() >= 5 {
        "strict"
    } else {
        "best_effort"
    }
}

fn sys_paths() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        vec!["/usr", "/etc/ld.so.cache", "/etc/localtime", "/proc", "/dev"],
        vec!["/usr"],
    )
}

fn require_landlock() -> bool {
    common::required("landlock") || abi() > 0 || {
        eprintln!("SKIPPED: this kernel has no Landlock (landlock)");
        false
    }
}

#[test]
fn reading_outside_read_fails_though_the_mount_exists() {
    if !require_landlock() {
        return;
    }
    let dir = TempDir::new("ll-read");
    std::fs::write(dir.path().join("f"), "secret\n").expect("file");
    common::set_mode(&dir.path().join("f"), 0o644);
    let (read, exec) = sys_paths();
    let without = policy(
        &dir,
        "without",
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp"], "compatibility": fs_compat()}),
    );
    let mut read2 = read.clone();
    read2.push("/ro");
    let with = policy(
        &dir,
        "with",
        serde_json::json!({"read": read2, "execute": exec, "write": ["/tmp"], "compatibility": fs_compat()}),
    );
    for mode in modes() {
        let r = common::sh(
            mode,
            &["--policy", &without],
            "cat /ro/f; ls /ro >/dev/null && echo listed",
        );
        assert!(
            r.stderr().contains("/ro/f: Permission denied"),
            "{}",
            diag(mode, &r)
        );
        assert!(
            !r.stdout().contains("secret") && !r.stdout().contains("listed"),
            "{}",
            diag(mode, &r)
        );
        // The mount is there: stat works (Landlock does not hide names).
        let r = common::sh(mode, &["--policy", &without], "test -f /ro/f && echo exists");
        assert_eq!(r.ok(), "exists\n", "{}", diag(mode, &r));
        let r = common::sh(mode, &["--policy", &with], "cat /ro/f; ls /ro");
        assert!(r.ok().starts_with("secret\n"), "{}", diag(mode, &r));
    }
}

#[test]
fn writing_to_a_rw_bind_outside_write_fails() {
    if !require_landlock() {
        return;
    }
    let dir = TempDir::new("ll-write");
    let (read, exec) = sys_paths();
    let without = policy(
        &dir,
        "without",
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp"], "compatibility": fs_compat()}),
    );
    let with = policy(
        &dir,
        "with",
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp", "/rw"], "compatibility": fs_compat()}),
    );
    for mode in modes() {
        let r = common::sh(
            mode,
            &["--policy", &without],
            "echo x > /rw/a && echo wrote; mkdir /rw/d && echo made; echo y > /tmp/ok && echo tmp",
        );
        let out = r.stdout();
        assert!(
            !out.contains("wrote") && !out.contains("made") && out.contains("tmp"),
            "{}",
            diag(mode, &r)
        );
        assert!(r.stderr().contains("Permission denied"), "{}", diag(mode, &r));
        assert!(!dir.path().join("a").exists());
        let r = common::sh(mode, &["--policy", &with], "echo x > /rw/a && echo wrote");
        assert_eq!(r.ok(), "wrote\n", "{}", diag(mode, &r));
        assert!(dir.path().join("a").exists());
        std::fs::remove_file(dir.path().join("a")).expect("clean");
    }
}

#[test]
fn only_execute_paths_can_be_executed() {
    if !require_landlock() {
        return;
    }
    let dir = TempDir::new("ll-exec");
    let (read, _) = sys_paths();
    // sh (dash), its loader and libraries; not ls, not id.
    let exec = [
        "/usr/bin/sh",
        "/usr/bin/dash",
        "/usr/bin/cat",
        "/usr/lib",
        "/usr/lib64",
    ];
    let p = policy(
        &dir,
        "exec",
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp"], "compatibility": fs_compat()}),
    );
    for mode in modes() {
        let r = common::sh(
            mode,
            &["--policy", &p],
            "echo allowed | cat; /usr/bin/id; echo id=$?; /usr/bin/ls /; echo ls=$?",
        );
        let out = r.ok();
        assert!(out.contains("allowed\nid=126\nls=126\n"), "{}", diag(mode, &r));
        assert!(
            r.stderr().contains("/usr/bin/id: Permission denied"),
            "{}",
            diag(mode, &r)
        );
        // The payload itself outside `execute`: exec fails with EACCES (126).
        let r = run(mode, &["--policy", &p], &["/usr/bin/id"]);
        assert_eq!(r.code(), 126, "{}", diag(mode, &r));
        assert!(
            r.stderr().contains("landlock.execute"),
            "the hint names landlock.execute\n{}",
            diag(mode, &r)
        );
    }
}

#[test]
fn the_default_policy_writes_only_its_tmpfs_and_executes_only_usr() {
    if !require_landlock() {
        return;
    }
    let dir = TempDir::new("ll-default");
    for mode in modes() {
        // /tmp is writable, but what is written there cannot be executed.
        let r = common::sh(mode, &[], "cp /usr/bin/true /tmp/t && chmod +x /tmp/t && echo copied; /tmp/t; echo t=$?; /usr/bin/true && echo usr");
        let out = r.ok();
        assert!(out.contains("copied\nt=126\nusr\n"), "{}", diag(mode, &r));
        // A writable bind added by a flag is writable, not executable.
        let bind = format!("{}:/out", dir.str());
        let r = common::sh(
            mode,
            &["--bind", &bind],
            "cp /usr/bin/true /out/t && echo copied; /out/t; echo t=$?",
        );
        assert_eq!(r.ok(), "copied\nt=126\n", "{}", diag(mode, &r));
        let _ = std::fs::remove_file(dir.path().join("t"));
        // Nothing is unenforced on a kernel with every right.
        if abi() >= 6 {
            let r = common::sh(mode, &[], "true");
            assert_eq!(
                common::unenforced_by_policy(&r.status.clone().expect("outcome")),
                serde_json::json!([]),
                "{}",
                diag(mode, &r)
            );
        }
    }
}

#[test]
fn cli_flags_extend_and_no_landlock_is_recorded() {
    if !require_landlock() {
        return;
    }
    let dir = TempDir::new("ll-cli");
    std::fs::write(dir.path().join("f"), "data\n").expect("file");
    common::set_mode(&dir.path().join("f"), 0o644);
    let (read, exec) = sys_paths();
    let p = policy(
        &dir,
        "base",
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp"], "compatibility": fs_compat()}),
    );
    for mode in modes() {
        let r = common::sh(mode, &["--policy", &p], "cat /ro/f");
        assert_ne!(r.code(), 0, "{}", diag(mode, &r));
        let r = common::sh(mode, &["--policy", &p, "--landlock-read", "/ro"], "cat /ro/f");
        assert_eq!(r.ok(), "data\n", "{}", diag(mode, &r));
        let r = common::sh(
            mode,
            &["--policy", &p, "--landlock-write", "/rw"],
            "echo w > /rw/g && echo ok",
        );
        assert_eq!(r.ok(), "ok\n", "{}", diag(mode, &r));
        std::fs::remove_file(dir.path().join("g")).expect("clean");
        let r = common::sh(
            mode,
            &["--policy", &p, "--no-landlock"],
            "cat /ro/f; echo w > /rw/g && echo ok",
        );
        assert_eq!(r.ok(), "data\nok\n", "{}", diag(mode, &r));
        std::fs::remove_file(dir.path().join("g")).expect("clean");
        let st = r.status.clone().expect("outcome");
        assert!(
            st["unenforced"]
                .as_array()
                .is_some_and(|u| u.iter().any(|x| x == "landlock: disabled by --no-landlock")),
            "{}",
            diag(mode, &r)
        );
        let r = common::sh(
            mode,
            &["--policy", &p, "--no-landlock", "--landlock-read", "/ro"],
            "true",
        );
        assert_eq!(r.code(), 125, "{}", diag(mode, &r));
    }
}

/// A listener on the host's loopback that accepts and answers "hi".
fn tcp_server() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        for mut s in l.incoming().take(16).flatten() {
            use std::io::Write;
            let _ = s.write_all(b"hi");
        }
    });
    (port, h)
}

const CONNECT: &str = "import socket, sys
for port in sys.argv[1:]:
    s = socket.socket()
    try:
        s.connect(('127.0.0.1', int(port))); print(port, s.recv(2).decode())
    except OSError as e:
        print(port, e.errno)
";

#[test]
fn tcp_connect_is_limited_to_the_listed_ports() {
    if !require_landlock() {
        return;
    }
    let (allowed, _a) = tcp_server();
    let (other, _b) = tcp_server();
    let dir = TempDir::new("ll-tcp");
    let (read, exec) = sys_paths();
    let compat = if abi() >= 5 { "strict" } else { "best_effort" };
    let p = policy(
        &dir,
        "tcp",
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp"], "tcp_connect": [allowed], "compatibility": compat}),
    );
    let (a, o) = (allowed.to_string(), other.to_string());
    for mode in modes() {
        let r = run(
            mode,
            &["--policy", &p, "--share-net"],
            &["/usr/bin/python3", "-c", CONNECT, &a, &o],
        );
        let out = r.ok();
        if abi() >= 4 {
            assert_eq!(out, format!("{a} hi\n{o} 13\n"), "{}", diag(mode, &r));
        } else {
            // Best effort on an old kernel: not enforced, and said so.
            assert_eq!(out, format!("{a} hi\n{o} hi\n"), "{}", diag(mode, &r));
            let st = r.status.clone().expect("outcome");
            assert!(
                st["unenforced"]
                    .to_string()
                    .contains("TCP connect rules needs Landlock ABI 4"),
                "{}",
                diag(mode, &r)
            );
            assert!(
                r.stderr()
                    .contains("warning: not enforced: landlock: TCP connect"),
                "{}",
                diag(mode, &r)
            );
        }
    }
}

#[test]
fn scopes_cut_off_abstract_sockets_and_signals_outside() {
    if !require_landlock() {
        return;
    }
    use std::os::linux::net::SocketAddrExt;
    let name = format!("cordon-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).expect("bind abstract");
    std::thread::spawn(move || {
        for mut s in listener.incoming().take(16).flatten() {
            let mut b = [0u8; 1];
            let _ = s.read(&mut b);
        }
    });
    let dir = TempDir::new("ll-scope");
    let (read, exec) = sys_paths();
    let compat = if abi() >= 6 { "strict" } else { "best_effort" };
    let scoped = policy(
        &dir,
        "scoped",
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp"], "scope": ["abstract_unix_socket", "signal"], "compatibility": compat}),
    );
    let open = policy(
        &dir,
        "open",
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp"], "compatibility": compat}),
    );
    let script = format!(
        "import os, socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('\\0{name}'); print('connected')
except OSError as e:
    print('connect', e.errno)
try:
    os.kill(1, 0); print('signalled init')
except OSError as e:
    print('kill', e.errno)
"
    );
    for mode in modes() {
        let r = run(
            mode,
            &["--policy", &open, "--share-net"],
            &["/usr/bin/python3", "-c", &script],
        );
        assert_eq!(r.ok(), "connected\nsignalled init\n", "{}", diag(mode, &r));
        let r = run(
            mode,
            &["--policy", &scoped, "--share-net"],
            &["/usr/bin/python3", "-c", &script],
        );
        if abi() >= 6 {
            // init (pid 1) is cordon's, outside the payload's Landlock domain.
            assert_eq!(r.ok(), "connect 1\nkill 1\n", "{}", diag(mode, &r));
        } else {
            assert_eq!(r.ok(), "connected\nsignalled init\n", "{}", diag(mode, &r));
            assert!(r.status.clone().expect("outcome")["unenforced"]
                .to_string()
                .contains("scope signal needs Landlock ABI 6"));
        }
    }
}

#[test]
fn strict_and_best_effort_follow_the_kernels_abi() {
    if !require_landlock() {
        return;
    }
    let dir = TempDir::new("ll-compat");
    let (read, exec) = sys_paths();
    let body = |compat: &str| {
        serde_json::json!({"read": read, "execute": exec, "write": ["/tmp"], "tcp_connect": [443],
                           "scope": ["abstract_unix_socket", "signal"], "compatibility": compat})
    };
    let strict = policy(&dir, "strict", body("strict"));
    let best = policy(&dir, "best", body("best_effort"));
    let abi = abi();
    // What this section needs, by minimum ABI.
    let needs = [
        ("truncate", 3),
        ("ioctl_dev", 5),
        ("TCP connect", 4),
        ("scope abstract_unix_socket", 6),
        ("scope signal", 6),
    ];
    for mode in modes() {
        let r = common::sh(mode, &["--policy", &strict], "echo ran");
        let rb = common::sh(mode, &["--policy", &best], "echo ran");
        assert_eq!(rb.ok(), "ran\n", "{}", diag(mode, &rb));
        let unenforced = common::unenforced_by_policy(&rb.status.clone().expect("outcome")).to_string();
        if abi >= 6 {
            assert_eq!(r.ok(), "ran\n", "{}", diag(mode, &r));
            assert_eq!(unenforced, "[]");
        } else {
            assert_eq!(
                r.code(),
                125,
                "strict must refuse on ABI {abi}\n{}",
                diag(mode, &r)
            );
            assert!(!r.stdout().contains("ran"));
            assert!(
                r.stderr().contains(&format!("Landlock ABI {abi}")),
                "{}",
                diag(mode, &r)
            );
            for (what, min) in needs {
                assert_eq!(
                    r.stderr().contains(what),
                    abi < min,
                    "{what} on ABI {abi}\n{}",
                    diag(mode, &r)
                );
                assert_eq!(
                    unenforced.contains(what),
                    abi < min,
                    "{what} on ABI {abi}: {unenforced}"
                );
            }
        }
    }
}
