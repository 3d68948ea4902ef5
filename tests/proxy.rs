//! The egress proxy (mode `proxy`, HTTP CONNECT): a server on the host's
//! 127.0.0.1 is reachable from the sandbox only through the proxy and only
//! by an explicit rule; names resolve once and non-public addresses are
//! refused without an address rule; every decision is an audit line and
//! the outcome counts them. Every case as root and rootless.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A host server on 127.0.0.1 that answers every request with `hello`
/// (and keeps a connection that sends nothing open for a while).
fn server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let _ =
                    c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
            });
        }
    });
    port
}

/// The effective default policy with `network` replaced, written to a
/// file (a policy file inherits nothing, so it starts from what `cordon
/// check` prints).
fn policy_with_network(mode: Mode, dir: &TempDir, network: serde_json::Value) -> String {
    let out = cordon(mode).args(["check"]).output().expect("cordon check");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut p: serde_json::Value = serde_json::from_slice(&out.stdout).expect("policy JSON");
    p["network"] = network;
    let path = dir.path().join("proxy-policy.json");
    std::fs::write(&path, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    set_mode(&path, 0o644);
    path.to_str().unwrap().to_string()
}

/// `curl` through the proxy with CONNECT, ignoring NO_PROXY; prints the
/// body, or `code=N` from curl's exit status, and the proxy's answer
/// headers on stderr.
fn curl(url: &str) -> String {
    format!("curl -sS -p --noproxy '' -x http://127.0.0.1:3128 -m 20 {url}; c=$?; echo; echo code=$c")
}

/// The audit log's lines as JSON.
fn audit_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

fn events<'a>(lines: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == name).collect()
}

fn diag(r: &Run, log: &[serde_json::Value]) -> String {
    format!(
        "exit: {:?}\nstdout:\n{}\nstderr:\n{}\noutcome: {:?}\naudit: {log:#?}",
        r.output.status,
        r.stdout(),
        r.stderr(),
        r.status
    )
}

fn have_curl() -> bool {
    std::path::Path::new("/usr/bin/curl").exists()
}

#[test]
fn connect_reaches_an_allowed_address_rule_only() {
    require!("curl", have_curl(), "needs /usr/bin/curl");
    let port = server();
    for mode in modes() {
        let dir = TempDir::new("proxy-allow");
        let log = dir.path().join("audit.log");
        let rule = format!("127.0.0.1/32:{port}");
        let url = format!("http://127.0.0.1:{port}/");
        let r = sh(
            mode,
            &["--allow-net", &rule, "--audit-log", log.to_str().unwrap()],
            &format!(
                "{}; curl -sS --noproxy '' -x http://127.0.0.1:3128 -m 20 {url}; echo; \
                 curl -sS --noproxy '*' -m 5 {url} >/dev/null 2>&1; echo direct=$?",
                curl(&url)
            ),
        );
        let lines = audit_lines(&log);
        let d = format!("{mode:?}\n{}", diag(&r, &lines));
        assert_eq!(r.code(), 0, "{d}");
        let out = r.stdout();
        assert!(out.contains("hello\ncode=0\nhello\n"), "{d}");
        // Without the proxy there is no route to the host.
        assert!(!out.contains("direct=0"), "{d}");
        let allowed = events(&lines, "network.allowed");
        assert_eq!(allowed.len(), 2, "{d}");
        // The second: plain HTTP in absolute form, without CONNECT.
        assert_eq!(allowed[1]["protocol"], "http", "{d}");
        assert_eq!(allowed[1]["target"], "127.0.0.1", "{d}");
        assert_eq!(allowed[0]["protocol"], "http-connect", "{d}");
        assert_eq!(allowed[0]["target"], "127.0.0.1", "{d}");
        assert_eq!(allowed[0]["port"], port, "{d}");
        assert_eq!(allowed[0]["resolved"], serde_json::json!(["127.0.0.1"]), "{d}");
        assert_eq!(allowed[0]["rule"], "network.allow[0]", "{d}");
        let closed = events(&lines, "network.closed");
        assert_eq!(closed.len(), 2, "{d}");
        assert!(closed[0]["bytes_down"].as_u64().unwrap() > 5, "{d}");
        assert!(closed[0]["bytes_up"].as_u64().unwrap() > 0, "{d}");
        let net = &r.status.as_ref().expect("outcome")["network"];
        assert_eq!(net["mode"], "proxy", "{d}");
        assert_eq!(net["connections_allowed"], 2, "{d}");
        assert_eq!(net["connections_denied"], 0, "{d}");
        let down = closed[0]["bytes_down"].as_u64().unwrap() + closed[1]["bytes_down"].as_u64().unwrap();
        assert_eq!(net["bytes_down"], down, "{d}");
        // The events come before sandbox.exited.
        assert_eq!(lines.last().unwrap()["event"], "sandbox.exited", "{d}");
    }
}

#[test]
fn denied_targets_get_403_and_one_audit_line_each() {
    require!("curl", have_curl(), "needs /usr/bin/curl");
    let port = server();
    for mode in modes() {
        let dir = TempDir::new("proxy-deny");
        let log = dir.path().join("audit.log");
        // localhost is allowed by name and resolves (test map) to
        // 127.0.0.1: not public, and no address rule covers it.
        let policy = policy_with_network(
            mode,
            &dir,
            serde_json::json!({
                "mode": "proxy",
                "allow": [format!("localhost:{port}"), format!("svc.test:{port}"), format!("127.0.0.2/32:{port}")],
                "deny": ["svc.test"],
                "resolve": {"localhost": "127.0.0.1"}
            }),
        );
        let script = [
            curl(&format!("http://localhost:{port}/")),
            curl(&format!("http://other.test:{port}/")),
            curl(&format!("http://svc.test:{port}/")),
            // curl would normalise the literal: a raw CONNECT.
            format!(
                "exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT 2130706433:{port} HTTP/1.1\\r\\n\\r\\n' >&3; head -1 <&3; exec 3<&-"
            ),
            format!("curl -sSi -p --noproxy '' -x http://127.0.0.1:3128 http://other.test:{port}/ 2>/dev/null | head -3"),
        ]
        .join("; ");
        let r = run(
            mode,
            &["--policy", &policy, "--audit-log", log.to_str().unwrap()],
            &["/usr/bin/bash", "-c", &script],
        );
        let lines = audit_lines(&log);
        let d = format!("{mode:?}\n{}", diag(&r, &lines));
        assert_eq!(r.code(), 0, "{d}");
        assert!(!r.stdout().contains("hello"), "{d}");
        assert_eq!(
            r.stderr().matches("CONNECT tunnel failed, response 403").count(),
            3,
            "{d}"
        );
        assert_eq!(r.stdout().matches("HTTP/1.1 403 Forbidden").count(), 2, "{d}");
        assert!(
            r.stdout()
                .contains("X-Cordon-Denied: no network.allow rule matches"),
            "{d}"
        );
        let denied = events(&lines, "network.denied");
        assert_eq!(denied.len(), 5, "{d}");
        assert!(events(&lines, "network.allowed").is_empty(), "{d}");
        // localhost: resolved once, refused as non-public.
        assert_eq!(denied[0]["target"], "localhost", "{d}");
        assert_eq!(denied[0]["resolved"], serde_json::json!(["127.0.0.1"]), "{d}");
        let why = denied[0]["reason"].as_str().unwrap();
        assert!(
            why.contains("127.0.0.1") && why.contains("not a public address"),
            "{d}"
        );
        // A name no rule allows is refused without being resolved.
        assert_eq!(denied[1]["target"], "other.test", "{d}");
        assert_eq!(denied[1]["resolved"], serde_json::json!([]), "{d}");
        assert_eq!(denied[1]["reason"], "no network.allow rule matches", "{d}");
        // deny wins over allow.
        assert_eq!(denied[2]["reason"], "denied by network.deny[0]", "{d}");
        // An ambiguous IPv4 literal is refused as such.
        assert_eq!(denied[3]["target"], "2130706433", "{d}");
        assert!(denied[3]["reason"].as_str().unwrap().contains("refused"), "{d}");
        let net = &r.status.as_ref().expect("outcome")["network"];
        assert_eq!(net["connections_allowed"], 0, "{d}");
        assert_eq!(net["connections_denied"], 5, "{d}");
    }
}

#[test]
fn max_connections_is_enforced() {
    require!("curl", have_curl(), "needs /usr/bin/curl");
    let port = server();
    for mode in modes() {
        let dir = TempDir::new("proxy-max");
        let log = dir.path().join("audit.log");
        let policy = policy_with_network(
            mode,
            &dir,
            serde_json::json!({
                "mode": "proxy",
                "allow": [format!("127.0.0.1/32:{port}")],
                "max_connections": 1
            }),
        );
        // One tunnel held open (the server waits for a request on it), then
        // a second connection: 503.
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n' >&3; \
             read -r line <&3; echo first=$line; \
             curl -sS -p --noproxy '' -x http://127.0.0.1:3128 -m 10 http://127.0.0.1:{port}/; echo code=$?"
        );
        let r = run(
            mode,
            &["--policy", &policy, "--audit-log", log.to_str().unwrap()],
            &["/usr/bin/bash", "-c", &script],
        );
        let lines = audit_lines(&log);
        let d = format!("{mode:?}\n{}", diag(&r, &lines));
        assert_eq!(r.code(), 0, "{d}");
        assert!(
            r.stdout().contains("first=HTTP/1.1 200 Connection established"),
            "{d}"
        );
        assert!(r.stderr().contains("CONNECT tunnel failed, response 503"), "{d}");
        let hits = events(&lines, "limit.hit");
        assert_eq!(hits.len(), 1, "{d}");
        assert_eq!(hits[0]["limit"], "connections", "{d}");
        assert_eq!(hits[0]["max"], 1, "{d}");
    }
}

#[test]
fn python_urllib_uses_the_environment() {
    if !have_python() {
        eprintln!("SKIPPED: python3 is not installed (python3)");
        return;
    }
    let port = server();
    for mode in modes() {
        let dir = TempDir::new("proxy-py");
        // A name (NO_PROXY covers 127.0.0.1 itself), mapped to the host's
        // loopback, which an address rule allows.
        let policy = policy_with_network(
            mode,
            &dir,
            serde_json::json!({
                "mode": "proxy",
                "allow": [format!("svc.test:{port}"), format!("127.0.0.1/32:{port}")],
                "resolve": {"svc.test": "127.0.0.1"}
            }),
        );
        // urllib.request takes the proxy from HTTP_PROXY and sends the
        // plain-HTTP request in absolute form.
        let script = format!(
            "import urllib.request\n\
             print(urllib.request.urlopen('http://svc.test:{port}/', timeout=20).read().decode())\n"
        );
        let r = py(mode, &["--policy", &policy], &script);
        let d = format!("{mode:?}\n{}", diag(&r, &[]));
        assert_eq!(r.code(), 0, "{d}");
        assert_eq!(r.stdout().trim(), "hello", "{d}");
    }
}

#[test]
fn a_policy_cannot_set_the_proxy_variables() {
    for mode in modes() {
        let dir = TempDir::new("proxy-env");
        let out = cordon(mode).args(["check"]).output().expect("cordon check");
        let mut p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        p["network"] = serde_json::json!({"mode": "proxy"});
        p["env"]["set"]["HTTP_PROXY"] = "http://elsewhere:1".into();
        let path = write_policy(&dir, "p.json", &serde_json::to_string(&p).unwrap());
        let r = run(mode, &["--policy", &path], &["/bin/true"]);
        assert_eq!(r.code(), 125, "{}", r.stderr());
        assert!(r.stderr().contains("env.set.HTTP_PROXY"), "{}", r.stderr());
    }
}

#[test]
fn the_listener_never_reaches_the_payload() {
    for mode in modes() {
        // Every fd of the payload: only its stdio and the listing itself.
        let r = sh(
            mode,
            &["--net", "proxy"],
            "ls -l /proc/self/fd/ | grep -c socket; true",
        );
        assert_eq!(r.code(), 0, "{}", r.stderr());
        assert_eq!(r.stdout().trim(), "0", "{mode:?}: the payload holds a socket");
    }
}

#[test]
fn a_silent_tunnel_is_closed_after_idle_timeout() {
    let port = server();
    for mode in modes() {
        let dir = TempDir::new("proxy-idle");
        let log = dir.path().join("audit.log");
        let policy = policy_with_network(
            mode,
            &dir,
            serde_json::json!({
                "mode": "proxy",
                "allow": [format!("127.0.0.1/32:{port}")],
                "idle_timeout": "1s"
            }),
        );
        // The tunnel opens, then nothing moves (the server waits for a
        // request): the proxy closes it, and the payload reads EOF long
        // before its own 20 s timeout.
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n' >&3; \
             read -r line <&3; echo first=$line; start=$SECONDS; timeout 20 cat <&3 >/dev/null; echo waited=$((SECONDS - start))"
        );
        let r = run(
            mode,
            &["--policy", &policy, "--audit-log", log.to_str().unwrap()],
            &["/usr/bin/bash", "-c", &script],
        );
        let lines = audit_lines(&log);
        let d = format!("{mode:?}\n{}", diag(&r, &lines));
        assert_eq!(r.code(), 0, "{d}");
        assert!(
            r.stdout().contains("first=HTTP/1.1 200 Connection established"),
            "{d}"
        );
        let waited: u64 = r
            .stdout()
            .lines()
            .find_map(|l| l.strip_prefix("waited="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{d}"));
        assert!(waited <= 5 * u64::from(slow_factor()), "{d}");
        let closed = events(&lines, "network.closed");
        assert_eq!(closed.len(), 1, "{d}");
        assert!(closed[0]["duration_ms"].as_u64().unwrap() >= 1000, "{d}");
    }
}
