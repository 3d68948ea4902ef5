//! nsjail's service modes (issue 15): `cordon serve` gives every TCP
//! connection a fresh sandbox with the connection as its stdin and stdout,
//! holds the caps on concurrent sandboxes and per source address (refusals
//! closed at once and logged at a bounded rate), writes one outcome line
//! per connection, and leaves no sandbox behind when it is killed;
//! `cordon run --rerun` runs the command again in a fresh sandbox, N times
//! or until a failure.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cordon, host_processes_with, modes, run, scaled, sh, wait_until, Mode, TempDir};

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

// ---- --rerun ---------------------------------------------------------------

#[test]
fn rerun_runs_the_command_n_times_each_in_a_fresh_sandbox() {
    for mode in modes() {
        // Each run sees a /tmp of its own (a fresh tmpfs): the marker the
        // run before left is not there.
        let r = sh(
            mode,
            &["--rerun", "3"],
            "if [ -e /tmp/marker ]; then echo seen; else echo fresh; fi; touch /tmp/marker; echo pid=$$",
        );
        assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        assert_eq!(
            r.stdout(),
            "fresh\npid=2\nfresh\npid=2\nfresh\npid=2\n",
            "{mode:?}: {}",
            r.stderr()
        );
        // Without --rerun: one run.
        let r = sh(mode, &[], "echo once");
        assert_eq!(r.stdout(), "once\n", "{mode:?}");
    }
}

/// A script that counts its runs in /out/n and exits as `exit_expr` says
/// (with `$n` the run's number).
fn counting(exit_expr: &str) -> String {
    format!("n=$(cat /out/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /out/n; echo run $n; exit $(({exit_expr}))")
}

#[test]
fn rerun_exits_with_the_last_runs_code_and_stop_on_failure_stops_at_the_first_failure() {
    for mode in modes() {
        // Run 2 fails, run 3 succeeds: without --rerun-stop-on-failure all
        // three run and the exit code is the last's.
        let d = TempDir::new("rerun");
        let bind = format!("{}:/out", d.str());
        let r = sh(
            mode,
            &["--bind", &bind, "--rerun", "3"],
            &counting("n == 2 ? 7 : 0"),
        );
        assert_eq!(r.stdout(), "run 1\nrun 2\nrun 3\n", "{mode:?}: {}", r.stderr());
        assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        assert_eq!(r.status.as_ref().unwrap()["exit_code"], 0, "{mode:?}");

        // With it: runs 1 and 2, then stops; the exit code and the outcome
        // (--status-json) are run 2's.
        let d = TempDir::new("rerun-stop");
        let bind = format!("{}:/out", d.str());
        let r = sh(
            mode,
            &["--bind", &bind, "--rerun", "10", "--rerun-stop-on-failure", "-v"],
            &counting("n == 2 ? 7 : 0"),
        );
        assert_eq!(r.stdout(), "run 1\nrun 2\n", "{mode:?}: {}", r.stderr());
        assert_eq!(r.code(), 7, "{mode:?}: {}", r.stderr());
        let st = r.status.as_ref().expect("status json");
        assert_eq!(st["exit_code"], 7, "{mode:?}");
        assert_eq!(st["status"], "exited", "{mode:?}");
        assert!(
            r.stderr().contains("stopped after 2 run(s): the run failed"),
            "{mode:?}: {}",
            r.stderr()
        );

        // forever with stop-on-failure: until the first failure.
        let d = TempDir::new("rerun-forever");
        let bind = format!("{}:/out", d.str());
        let r = sh(
            mode,
            &["--bind", &bind, "--rerun", "forever", "--rerun-stop-on-failure"],
            &counting("n >= 5 ? 3 : 0"),
        );
        assert_eq!(
            r.stdout(),
            "run 1\nrun 2\nrun 3\nrun 4\nrun 5\n",
            "{mode:?}: {}",
            r.stderr()
        );
        assert_eq!(r.code(), 3, "{mode:?}");
    }
}

#[test]
fn rerun_forever_ends_when_cordon_is_signalled() {
    for mode in modes() {
        let mut child = cordon(mode)
            .args(["run", "--rerun", "forever", "--", "/bin/sh", "-c", "sleep 0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cordon");
        std::thread::sleep(scaled(Duration::from_millis(800)));
        assert!(child.try_wait().unwrap().is_none(), "{mode:?}: ended by itself");
        // SAFETY: kill(2) on the child's pid, which it still is (not reaped).
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let ended = wait_until(scaled(Duration::from_secs(10)).as_secs_f64(), || {
            child.try_wait().unwrap().is_some()
        });
        if !ended {
            let _ = child.kill();
        }
        assert!(ended, "{mode:?}: --rerun forever went on after SIGTERM");
    }
}

#[test]
fn rerun_flags_are_checked() {
    let o = cordon(Mode::Rootless)
        .args(["run", "--rerun", "0", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        text(&o.stderr).contains("0 runs: give at least 1, or forever"),
        "{}",
        text(&o.stderr)
    );
    let o = cordon(Mode::Rootless)
        .args(["run", "--rerun", "often", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        text(&o.stderr).contains("expected the number of runs"),
        "{}",
        text(&o.stderr)
    );
    let o = cordon(Mode::Rootless)
        .args(["run", "--rerun-stop-on-failure", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        text(&o.stderr).contains("--rerun <N|forever>"),
        "{}",
        text(&o.stderr)
    );
    // And a plain run is unchanged by the flags' existence.
    let r = run(Mode::Rootless, &[], &["/bin/true"]);
    assert_eq!(r.code(), 0);
}

// ---- serve -----------------------------------------------------------------

/// A running `cordon serve`, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    dir: TempDir,
}

impl Server {
    /// `cordon serve --listen 127.0.0.1:0 --outcomes DIR/outcomes.jsonl
    /// --audit-log DIR/audit.jsonl ARGS -- CMD`.
    fn start(mode: Mode, args: &[&str], cmd: &[&str]) -> Server {
        let dir = TempDir::new("serve");
        let audit = dir.path().join("audit.jsonl");
        Server::start_in(
            dir,
            mode,
            &[&["--audit-log", &audit.to_string_lossy()], args].concat(),
            cmd,
        )
    }

    /// As [`Server::start`], without `--audit-log` unless in `args`.
    fn start_in(dir: TempDir, mode: Mode, args: &[&str], cmd: &[&str]) -> Server {
        let mut child = cordon(mode)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--outcomes"])
            .arg(dir.path().join("outcomes.jsonl"))
            .args(args)
            .arg("--")
            .args(cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cordon serve");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        let mut seen = String::new();
        let addr = loop {
            first.clear();
            if err.read_line(&mut first).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{mode:?}: cordon serve did not listen: {seen}");
            }
            seen.push_str(&first);
            if let Some(rest) = first.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        let stderr = Arc::new(Mutex::new(seen));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Server {
            child,
            addr,
            stderr,
            dir,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The JSON lines of `file` in the server's directory.
    fn lines(&self, file: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join(file))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}: {e}: {l}")))
            .collect()
    }

    fn events(&self, file: &str, event: &str) -> Vec<serde_json::Value> {
        self.lines(file)
            .into_iter()
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// A connection from 127.0.0.1.
    fn connect(&self) -> Conn {
        self.connect_from(Ipv4Addr::LOCALHOST)
    }

    /// A connection from `src` (any 127.x address reaches the loopback).
    fn connect_from(&self, src: Ipv4Addr) -> Conn {
        let s = connect_from(src, self.addr);
        s.set_read_timeout(Some(scaled(Duration::from_secs(20)))).unwrap();
        Conn {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// SIGTERM, and its exit status within a bounded time.
    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our unreaped child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut status = None;
        wait_until(scaled(Duration::from_secs(20)).as_secs_f64(), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap_or_else(|| panic!("cordon serve did not stop on SIGTERM: {}", self.stderr()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to `to` from the source address `src`.
fn connect_from(src: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 expected")
    };
    let sin = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor made here, with valid
    // sockaddr_in values that outlive the calls; the descriptor is owned by
    // the TcpStream made from it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let s = TcpStream::from_raw_fd(fd);
        let a = sin(src, 0);
        assert_eq!(
            libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), len),
            0,
            "bind {src}: {}",
            std::io::Error::last_os_error()
        );
        let b = sin(*to.ip(), to.port());
        assert_eq!(
            libc::connect(fd, (&b as *const libc::sockaddr_in).cast(), len),
            0,
            "connect: {}",
            std::io::Error::last_os_error()
        );
        s
    }
}

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("read a line from the sandbox");
        l.trim_end().to_string()
    }
    fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).expect("write to the sandbox");
    }
    /// Everything until the server closes the connection.
    fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.r.read_to_string(&mut s);
        s
    }
}

/// The service the tests connect to: says which pid namespace and pid it
/// has and whether another connection's marker is in its /tmp, then echoes
/// one line.
const GREETER: &str = "readlink /proc/self/ns/pid; echo pid=$$; \
    if [ -e /tmp/marker ]; then echo seen; else echo fresh; fi; touch /tmp/marker; \
    read line; echo \"echo:$line\"";

#[test]
fn fifty_concurrent_connections_each_get_a_sandbox_of_their_own() {
    for mode in modes() {
        let mut srv = Server::start(mode, &["--max-conns-per-ip", "64"], &["/bin/sh", "-c", GREETER]);
        let mut conns: Vec<Conn> = (0..50).map(|_| srv.connect()).collect();
        let mut namespaces = std::collections::BTreeSet::new();
        // All 50 at once: each greets while every other one is alive.
        for (i, c) in conns.iter_mut().enumerate() {
            let ns = c.line();
            assert!(
                ns.starts_with("pid:["),
                "{mode:?}: connection {i}: {ns:?}\n{}",
                srv.stderr()
            );
            namespaces.insert(ns);
            assert_eq!(c.line(), "pid=2", "{mode:?}: connection {i}");
            assert_eq!(c.line(), "fresh", "{mode:?}: connection {i} saw another's /tmp");
        }
        assert_eq!(namespaces.len(), 50, "{mode:?}: pid namespaces shared");
        for (i, c) in conns.iter_mut().enumerate() {
            c.send(&format!("hello {i}\n"));
        }
        for (i, c) in conns.iter_mut().enumerate() {
            assert_eq!(c.rest(), format!("echo:hello {i}\n"), "{mode:?}");
        }
        // One outcome line per connection, each with its sandbox's audit
        // events under the same sandbox id.
        assert!(
            wait_until(scaled(Duration::from_secs(20)).as_secs_f64(), || {
                srv.events("outcomes.jsonl", "serve.connection").len() == 50
            }),
            "{mode:?}: {:?}\n{}",
            srv.lines("outcomes.jsonl"),
            srv.stderr()
        );
        let outcomes = srv.events("outcomes.jsonl", "serve.connection");
        let exited: Vec<String> = srv
            .events("audit.jsonl", "sandbox.exited")
            .iter()
            .map(|v| v["sandbox"].as_str().unwrap().to_string())
            .collect();
        let mut ids = std::collections::BTreeSet::new();
        for o in &outcomes {
            assert_eq!(o["outcome"]["status"], "exited", "{mode:?}: {o}");
            assert_eq!(o["outcome"]["exit_code"], 0, "{mode:?}: {o}");
            assert!(o["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{o}");
            let id = o["sandbox"].as_str().unwrap().to_string();
            assert!(exited.contains(&id), "{mode:?}: no sandbox.exited for {id}");
            ids.insert(id);
        }
        assert_eq!(ids.len(), 50, "{mode:?}: sandbox ids shared");
        assert_eq!(
            srv.events("audit.jsonl", "serve.connection").len(),
            50,
            "{mode:?}"
        );
        let st = srv.terminate();
        assert_eq!(st.code(), Some(0), "{mode:?}");
    }
}

#[test]
fn without_audit_log_the_policys_audit_path_gets_the_serve_lines_too() {
    for mode in modes() {
        let dir = TempDir::new("serve-policy-audit");
        let mut policy: serde_json::Value =
            serde_json::from_str(cordon::policy::DEFAULT_POLICY_JSON).unwrap();
        policy["audit"] = serde_json::json!({ "path": dir.path().join("audit.jsonl") });
        let file = dir.path().join("policy.json");
        std::fs::write(&file, policy.to_string()).unwrap();
        common::set_mode(&file, 0o644);
        let file = file.to_string_lossy().into_owned();
        let mut srv = Server::start_in(dir, mode, &["--policy", &file], &["/bin/echo", "hi"]);
        for _ in 0..2 {
            assert_eq!(srv.connect().rest(), "hi\n", "{mode:?}: {}", srv.stderr());
        }
        assert!(
            wait_until(scaled(Duration::from_secs(10)).as_secs_f64(), || {
                srv.events("audit.jsonl", "serve.connection").len() == 2
            }),
            "{mode:?}: {:?}",
            srv.lines("audit.jsonl")
        );
        let exited: Vec<serde_json::Value> = srv.events("audit.jsonl", "sandbox.exited");
        for c in srv.events("audit.jsonl", "serve.connection") {
            assert!(
                exited.iter().any(|e| e["sandbox"] == c["sandbox"]),
                "{mode:?}: {c}"
            );
        }
        assert_eq!(srv.events("outcomes.jsonl", "serve.connection").len(), 2);
        assert_eq!(srv.terminate().code(), Some(0));
    }
}

#[test]
fn a_secret_reaches_every_connections_sandbox() {
    for mode in modes() {
        let dir = TempDir::new("serve-secret");
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "s3cret").unwrap();
        common::set_mode(&tok, 0o644);
        let spec = format!("TOKEN=@{}", tok.display());
        let mut srv = Server::start(
            mode,
            &["--secret-env", &spec],
            // The value in hex: the command line (in the audit log) must not
            // hold it either.
            &[
                "/bin/sh",
                "-c",
                "test \"$(printf %s \"$TOKEN\" | od -An -tx1 | tr -d ' \\n')\" = 733363726574 && echo has it",
            ],
        );
        for _ in 0..3 {
            assert_eq!(srv.connect().rest(), "has it\n", "{mode:?}: {}", srv.stderr());
        }
        assert_eq!(srv.terminate().code(), Some(0));
        // Never in any output.
        assert!(!srv.stderr().contains("s3cret"));
        for f in ["outcomes.jsonl", "audit.jsonl"] {
            let text = std::fs::read_to_string(srv.dir.path().join(f)).unwrap();
            assert!(
                text.contains("serve.connection") && !text.contains("s3cret"),
                "{f}: {text}"
            );
        }
    }
}

#[test]
fn an_ipv6_address_in_brackets_listens_there() {
    require!(
        "ipv6",
        std::net::TcpListener::bind("[::1]:0").is_ok(),
        "no IPv6 loopback here"
    );
    let mut child = cordon(Mode::Rootless)
        .args(["serve", "--listen", "[::1]:0", "--", "/bin/echo", "over ipv6"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // Warnings (what this host cannot enforce) may come first.
    while !line.contains("listening on ") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no listening line");
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let addr: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback() && addr.is_ipv6(), "{addr}");
    let mut s = TcpStream::connect(addr).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out, "over ipv6\n");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_caps_on_sandboxes_and_per_address_hold() {
    for mode in modes() {
        let mut srv = Server::start(
            mode,
            &["--max-conns", "3", "--max-conns-per-ip", "2"],
            &["/bin/sh", "-c", "echo hi; read line; echo bye"],
        );
        let mut a1 = srv.connect();
        let mut a2 = srv.connect();
        assert_eq!(a1.line(), "hi", "{mode:?}: {}", srv.stderr());
        assert_eq!(a2.line(), "hi", "{mode:?}");
        // A third from 127.0.0.1: over the per-address cap, closed at once
        // with nothing written.
        let mut a3 = srv.connect();
        assert_eq!(a3.rest(), "", "{mode:?}");
        // From another address: a sandbox (3 in all).
        let mut b1 = srv.connect_from(Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(b1.line(), "hi", "{mode:?}");
        // A fourth, from a third address: over the total cap.
        let mut c1 = srv.connect_from(Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(c1.rest(), "", "{mode:?}");
        // One ends: room again for 127.0.0.1.
        a1.send("x\n");
        assert_eq!(a1.rest(), "bye\n", "{mode:?}");
        assert!(
            wait_until(scaled(Duration::from_secs(10)).as_secs_f64(), || {
                srv.events("outcomes.jsonl", "serve.connection").len() == 1
            }),
            "{mode:?}"
        );
        let mut a4 = srv.connect();
        assert_eq!(a4.line(), "hi", "{mode:?}: {}", srv.stderr());
        let refused = srv.events("outcomes.jsonl", "serve.refused");
        let reasons: Vec<&str> = refused.iter().map(|v| v["reason"].as_str().unwrap()).collect();
        assert_eq!(
            reasons,
            ["max_conns_per_ip", "max_conns"],
            "{mode:?}: {refused:?}"
        );
        assert_eq!(refused[0]["limit"], 2);
        assert_eq!(refused[1]["limit"], 3);
        assert!(refused[1]["peer"].as_str().unwrap().starts_with("127.0.0.3:"));
        assert_eq!(srv.events("audit.jsonl", "serve.refused").len(), 2, "{mode:?}");
        assert!(srv.stderr().contains("refused a connection"), "{}", srv.stderr());
        srv.lines("outcomes.jsonl").iter().for_each(check_serve_line);
        for c in [&mut a2, &mut b1, &mut a4] {
            c.send("x\n");
            assert_eq!(c.rest(), "bye\n", "{mode:?}");
        }
        assert_eq!(srv.terminate().code(), Some(0));
    }
}

#[test]
fn a_flood_over_the_caps_is_logged_at_a_bounded_rate() {
    let mut srv = Server::start(
        Mode::Rootless,
        &["--max-conns", "1", "-q"],
        &["/bin/sh", "-c", "echo hi; read line"],
    );
    let mut held = srv.connect();
    assert_eq!(held.line(), "hi", "{}", srv.stderr());
    // 400 connections over the cap, as fast as they can be made.
    let start = std::time::Instant::now();
    for _ in 0..400 {
        let mut c = srv.connect();
        assert_eq!(c.rest(), "");
    }
    // The refusals fall into at most this many of the server's seconds.
    let seconds = start.elapsed().as_secs() + 2;
    let refused = srv.events("outcomes.jsonl", "serve.refused");
    // At most 50 lines a second; the lines left out are counted in the
    // next line written.
    assert!(
        (refused.len() as u64) <= 50 * seconds,
        "{} lines in {seconds} s",
        refused.len()
    );
    let counted: u64 = refused.len() as u64
        + refused
            .iter()
            .map(|v| v["left_out"].as_u64().unwrap_or(0))
            .sum::<u64>();
    let last_total = refused.last().unwrap()["refused_total"].as_u64().unwrap();
    assert_eq!(
        counted, last_total,
        "every refusal up to the last line is accounted for"
    );
    assert!(last_total <= 400);
    // -q: no line on stderr per refusal.
    assert!(!srv.stderr().contains("refused a connection"), "{}", srv.stderr());
    held.send("\n");
    drop(held);
    assert_eq!(srv.terminate().code(), Some(0));
}

#[test]
fn killing_cordon_ends_every_sandbox() {
    for mode in modes() {
        // A needle only this test's processes carry: the sandboxes' inits
        // (clones of cordon) and payloads all have it on their command line.
        let needle = format!("sleep 98{}{}", std::process::id(), mode as u8);
        let script = format!("echo up; {needle}");
        let mut srv = Server::start(mode, &[], &["/bin/sh", "-c", &script]);
        let mut conns: Vec<Conn> = (0..5).map(|_| srv.connect()).collect();
        for c in conns.iter_mut() {
            assert_eq!(c.line(), "up", "{mode:?}: {}", srv.stderr());
        }
        let cordon_pid = srv.child.id();
        let sandboxes: Vec<u32> = host_processes_with(&needle)
            .into_iter()
            .filter(|p| *p != cordon_pid)
            .collect();
        // Each sandbox: init, sh, sleep (sh may exec the last command).
        assert!(sandboxes.len() >= 10, "{mode:?}: {sandboxes:?}");
        let namespaces: std::collections::BTreeSet<String> = sandboxes
            .iter()
            .filter_map(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .collect();
        assert!(namespaces.len() >= 5, "{mode:?}: {namespaces:?}");
        srv.child.kill().unwrap();
        srv.child.wait().unwrap();
        let gone = wait_until(scaled(Duration::from_secs(10)).as_secs_f64(), || {
            sandboxes
                .iter()
                .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        });
        assert!(gone, "{mode:?}: left behind: {:?}", host_processes_with(&needle));
        // And the connections were closed.
        for c in conns.iter_mut() {
            assert_eq!(c.rest(), "", "{mode:?}");
        }
    }
}

#[test]
fn sigterm_kills_every_sandbox_and_writes_their_outcomes_first() {
    for mode in modes() {
        let mut srv = Server::start(mode, &[], &["/bin/sh", "-c", "echo up; read line"]);
        let mut conns: Vec<Conn> = (0..3).map(|_| srv.connect()).collect();
        for c in conns.iter_mut() {
            assert_eq!(c.line(), "up", "{mode:?}: {}", srv.stderr());
        }
        let st = srv.terminate();
        assert_eq!(st.code(), Some(0), "{mode:?}");
        // Every outcome line was written before cordon exited.
        let outcomes = srv.events("outcomes.jsonl", "serve.connection");
        assert_eq!(outcomes.len(), 3, "{mode:?}: {outcomes:?}");
        for o in &outcomes {
            assert_eq!(o["outcome"]["status"], "signaled", "{mode:?}: {o}");
        }
        for c in conns.iter_mut() {
            assert_eq!(c.rest(), "", "{mode:?}");
        }
        assert!(
            wait_until(scaled(Duration::from_secs(5)).as_secs_f64(), || srv
                .stderr()
                .contains("stopped after 3 connection(s), 0 refused\n")),
            "{mode:?}: {}",
            srv.stderr()
        );
    }
}

#[test]
fn bad_serve_flags_give_clear_errors() {
    let serve = |args: &[&str]| {
        let o = cordon(Mode::Rootless)
            .arg("serve")
            .args(args)
            .args(["--", "/bin/true"])
            .output()
            .unwrap();
        (o.status.code(), text(&o.stderr))
    };
    for bad in ["localhost:80", "1.2.3.4:99999", "::1:80", "x"] {
        let (code, err) = serve(&["--listen", bad]);
        assert_eq!(code, Some(125), "{bad}: {err}");
        assert!(
            err.contains("--listen") && err.contains("expected [ADDR:]PORT"),
            "{bad}: {err}"
        );
    }
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = serve(&["--listen", &port]);
    assert_eq!(code, Some(125), "{err}");
    assert!(
        err.contains(&format!("--listen 127.0.0.1:{port}")) && err.contains("another program listens there"),
        "{err}"
    );
    let (code, err) = serve(&["--listen", "0", "--max-conns", "0"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("--max-conns"), "{err}");
    let (code, err) = serve(&[]);
    assert_eq!(code, Some(125));
    assert!(err.contains("--listen"), "{err}");
    // A policy that cannot run is refused before anything listens.
    let (code, err) = serve(&["--listen", "0", "--ro-bind", "/nonexistent-cordon-test"]);
    assert_eq!(code, Some(125));
    assert!(
        err.contains("/nonexistent-cordon-test") && !err.contains("listening"),
        "{err}"
    );
}

/// What `/proc/self/fd/N` points to, if N is open.
fn fd_target(n: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{n}")).ok()
}

#[test]
fn the_library_closes_its_copies_of_the_stdio_once_the_sandbox_has_them() {
    use std::os::fd::{AsRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into a valid array; each is
    // owned once, below.
    let (r, w) = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    let n = w.as_raw_fd();
    let pipe = fd_target(n).expect("the write end is open");
    let child = cordon::Sandbox::new(cordon::Policy::builtin_default().unwrap())
        .stdio(None, Some(w), None)
        .spawn(&["/bin/sh", "-c", "echo from the sandbox; sleep 1"])
        .expect("spawn");
    // The sandbox runs, and this process no longer holds the write end
    // (the number may have been reused by another test's thread, but not
    // for this pipe: only its read end is left here, under another number).
    assert!(fd_target(n) != Some(pipe), "{n} still open");
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    assert_eq!(out, "from the sandbox\n");
    assert_eq!(child.wait().unwrap().exit_code, 0);
}

/// Every field of the serve events, as cordon-policy(5) must describe them
/// (checked on every line the tests' servers write, too).
const SERVE_EVENTS: &[(&str, &[(&str, bool)])] = &[
    (
        "serve.connection",
        &[("conn", true), ("peer", true), ("outcome", true)],
    ),
    (
        "serve.refused",
        &[
            ("peer", true),
            ("reason", true),
            ("limit", true),
            ("refused_total", true),
            ("left_out", false),
        ],
    ),
];

/// A serve line has `ts`, `sandbox`, `event` and exactly the fields
/// [`SERVE_EVENTS`] lists for it.
fn check_serve_line(v: &serde_json::Value) {
    let obj = v.as_object().expect("an object");
    let event = obj["event"].as_str().expect("event");
    let (_, fields) = SERVE_EVENTS
        .iter()
        .find(|(e, _)| *e == event)
        .unwrap_or_else(|| panic!("undocumented serve event {event}"));
    for (f, required) in *fields {
        assert!(!required || obj.contains_key(*f), "{event} without {f}: {v}");
    }
    for k in obj.keys() {
        assert!(
            ["ts", "sandbox", "event"].contains(&k.as_str()) || fields.iter().any(|(f, _)| f == k),
            "{event}: undocumented field {k}: {v}"
        );
    }
}

#[test]
fn the_serve_events_are_documented_and_written_as_documented() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/cordon-policy.5")).unwrap();
    let start = page.find(".SH \"AUDIT LOG\"").expect("an AUDIT LOG section");
    let section = &page[start..];
    let section = &section[..section[1..].find("\n.SH ").map_or(section.len(), |e| e + 1)];
    for (event, fields) in SERVE_EVENTS {
        let tag = format!(".TP\n.B {event}\n");
        let at = section
            .find(&tag)
            .unwrap_or_else(|| panic!("AUDIT LOG has no item for {event}"));
        let block = &section[at + tag.len()..];
        let block = &block[..block.find("\n.RE\n").unwrap_or(block.len())];
        for (f, _) in *fields {
            assert!(
                block
                    .lines()
                    .any(|l| l.starts_with(".BR ") && l.split([' ', '"']).any(|w| w == *f)),
                "AUDIT LOG: {event} does not describe {f}"
            );
        }
    }
    // And a server writes them so: a connection and a refusal.
    let srv = Server::start(
        Mode::Rootless,
        &["--max-conns", "1"],
        &["/bin/sh", "-c", "echo hi; read line"],
    );
    let mut held = srv.connect();
    assert_eq!(held.line(), "hi");
    assert_eq!(srv.connect().rest(), "");
    held.send("\n");
    assert_eq!(held.rest(), "");
    assert!(wait_until(scaled(Duration::from_secs(10)).as_secs_f64(), || {
        srv.events("outcomes.jsonl", "serve.connection").len() == 1
    }));
    for file in ["outcomes.jsonl", "audit.jsonl"] {
        let lines: Vec<serde_json::Value> = srv
            .lines(file)
            .into_iter()
            .filter(|v| v["event"].as_str().is_some_and(|e| e.starts_with("serve.")))
            .collect();
        assert_eq!(lines.len(), 2, "{file}: {lines:?}");
        lines.iter().for_each(check_serve_line);
    }
}
