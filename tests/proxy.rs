//! The egress proxy (mode `proxy`, HTTP CONNECT): a server on the host's
//! 127.0.0.1 is reachable from the sandbox only through the proxy and only
//! by an explicit rule; names resolve once and non-public addresses are
//! refused without an address rule; every decision is an audit line and
//! the outcome counts them. Every case as root and rootless.

mod common;
use common::*;

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

fn diag(r: &Run, log: &[serde_json::Value]) -> String {
    format!(
        "exit: {:?}\nstdout:\n{}\nstderr:\n{}\noutcome: {:?}\naudit: {log:#?}",
        r.output.status,
        r.stdout(),
        r.stderr(),
        r.status
    )
}

fn have_node() -> bool {
    std::path::Path::new("/usr/bin/node").exists()
}

fn have_curl() -> bool {
    std::path::Path::new("/usr/bin/curl").exists()
}

#[test]
fn connect_reaches_an_allowed_address_rule_only() {
    require!("curl", have_curl(), "needs /usr/bin/curl");
    let port = hello_server();
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
    let port = hello_server();
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
    let port = hello_server();
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
    let port = hello_server();
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
    let port = hello_server();
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
        // before its own timeout (20 s, scaled: above the bound below).
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n' >&3; \
             read -r line <&3; echo first=$line; start=$SECONDS; timeout {} cat <&3 >/dev/null; echo waited=$((SECONDS - start))",
            20 * slow_factor()
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

/// A policy for a name the test map resolves to the host's 127.0.0.1
/// server: the name rule and the address rule both needed (the address is
/// not public).
fn svc_policy(mode: Mode, dir: &TempDir, port: u16, extra: serde_json::Value) -> String {
    let mut net = serde_json::json!({
        "mode": "proxy",
        "allow": [format!("svc.test:{port}"), format!("127.0.0.1/32:{port}")],
        "deny": ["blocked.svc.test"],
        "resolve": {"svc.test": "127.0.0.1"}
    });
    if let (Some(n), Some(e)) = (net.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            n.insert(k.clone(), v.clone());
        }
    }
    policy_with_network(mode, dir, net)
}

#[test]
fn socks5_reaches_allowed_targets_by_name_and_address_only() {
    require!("curl", have_curl(), "needs /usr/bin/curl");
    require!("python3", have_python(), "needs python3");
    let port = hello_server();
    for mode in modes() {
        let dir = TempDir::new("proxy-socks");
        let log = dir.path().join("audit.log");
        let policy = svc_policy(mode, &dir, port, serde_json::json!({}));
        // By name (socks5h: the proxy resolves), by IPv4 address, a port no
        // rule allows, a denied name; and an IPv6 target (address type 4)
        // with a raw client: reply code 2, not allowed by ruleset.
        let raw_v6 = format!(
            "import socket,struct\n\
             s=socket.create_connection(('127.0.0.1',1080),5)\n\
             s.sendall(bytes([5,1,0])); assert s.recv(2)==bytes([5,0])\n\
             s.sendall(bytes([5,1,0,4])+socket.inet_pton(socket.AF_INET6,'::1')+struct.pack('>H',{port}))\n\
             print('v6reply', s.recv(10)[1])\n"
        );
        let script = format!(
            "curl -sS --noproxy '' -m 10 -x socks5h://127.0.0.1:1080 http://svc.test:{port}/; echo; \
             curl -sS --noproxy '' -m 10 -x socks5://127.0.0.1:1080 http://127.0.0.1:{port}/; echo; \
             curl -sS --noproxy '' -m 10 -x socks5h://127.0.0.1:1080 http://svc.test:{other}/; echo code=$?; \
             curl -sS --noproxy '' -m 10 -x socks5h://127.0.0.1:1080 http://blocked.svc.test:{port}/; echo code=$?; \
             python3 -c \"$V6\"",
            other = port.wrapping_add(1).max(1)
        );
        let r = run(
            mode,
            &[
                "--policy",
                &policy,
                "--audit-log",
                log.to_str().unwrap(),
                "--env",
                &format!("V6={raw_v6}"),
            ],
            &["/usr/bin/bash", "-c", &script],
        );
        let lines = audit_lines(&log);
        let d = format!("{mode:?}\n{}", diag(&r, &lines));
        assert_eq!(r.code(), 0, "{d}");
        assert!(r.stdout().starts_with("hello\nhello\n"), "{d}");
        // curl: 97 = the SOCKS5 proxy refused the request.
        assert_eq!(r.stdout().matches("code=97").count(), 2, "{d}");
        assert!(r.stdout().contains("v6reply 2"), "{d}");
        let allowed = events(&lines, "network.allowed");
        assert_eq!(allowed.len(), 2, "{d}");
        assert_eq!(allowed[0]["protocol"], "socks5", "{d}");
        assert_eq!(allowed[0]["target"], "svc.test", "{d}");
        assert_eq!(allowed[0]["resolved"], serde_json::json!(["127.0.0.1"]), "{d}");
        assert_eq!(allowed[1]["target"], "127.0.0.1", "{d}");
        let denied = events(&lines, "network.denied");
        assert_eq!(denied.len(), 3, "{d}");
        assert!(denied.iter().all(|l| l["protocol"] == "socks5"), "{d}");
        assert_eq!(denied[0]["reason"], "no network.allow rule matches", "{d}");
        assert_eq!(denied[1]["reason"], "denied by network.deny[0]", "{d}");
        assert_eq!(denied[2]["target"], "::1", "{d}");
        let net = &r.status.as_ref().expect("outcome")["network"];
        assert_eq!(net["connections_allowed"], 2, "{d}");
        assert_eq!(net["connections_denied"], 3, "{d}");
    }
}

#[test]
fn the_dns_stub_answers_allowed_names_with_fake_addresses_and_nxdomain_otherwise() {
    require!("python3", have_python(), "needs python3");
    for mode in modes() {
        let dir = TempDir::new("proxy-dns");
        let log = dir.path().join("audit.log");
        let policy = svc_policy(mode, &dir, 8080, serde_json::json!({}));
        // glibc's resolver, through /etc/resolv.conf: allowed names get a
        // stable address in 127.1.0.0/16, no IPv6 address; other names and
        // denied ones do not resolve; localhost is 127.0.0.1.
        let script = "import socket\n\
             def a(n, fam=socket.AF_INET):\n\
             \x20   try: return sorted({x[4][0] for x in socket.getaddrinfo(n, 80, fam, socket.SOCK_STREAM)})\n\
             \x20   except socket.gaierror as e: return 'error'\n\
             print('svc', a('svc.test'), a('svc.test'))\n\
             print('svc6', a('svc.test', socket.AF_INET6))\n\
             print('other', a('other.test'))\n\
             print('denied', a('blocked.svc.test'))\n\
             print('localhost', a('localhost'))\n\
             print('resolv', open('/etc/resolv.conf').read().split('\\n')[1])\n";
        let r = run(
            mode,
            &["--policy", &policy, "--audit-log", log.to_str().unwrap()],
            &["/usr/bin/python3", "-c", script],
        );
        let lines = audit_lines(&log);
        let d = format!("{mode:?}\n{}", diag(&r, &lines));
        assert_eq!(r.code(), 0, "{d}");
        let out = r.stdout();
        assert!(out.contains("svc ['127.1.0.1'] ['127.1.0.1']\n"), "{d}");
        assert!(out.contains("svc6 error\n"), "{d}");
        assert!(out.contains("other error\n"), "{d}");
        assert!(out.contains("denied error\n"), "{d}");
        assert!(out.contains("localhost ['127.0.0.1']\n"), "{d}");
        assert!(out.contains("resolv nameserver 127.0.0.1\n"), "{d}");
        // Each refused name is audited (glibc may ask more than once).
        let denied = events(&lines, "dns.denied");
        assert!(denied.iter().any(|l| l["name"] == "other.test"), "{d}");
        assert!(
            denied
                .iter()
                .any(|l| l["name"] == "blocked.svc.test" && l["reason"] == "denied by network.deny[0]"),
            "{d}"
        );
        assert!(!denied.iter().any(|l| l["name"] == "svc.test"), "{d}");
        let net = &r.status.as_ref().expect("outcome")["network"];
        assert!(net["dns_denied"].as_u64().unwrap() >= 2, "{d}");
        // Nothing was connected.
        assert_eq!(net["connections_allowed"], 0, "{d}");
    }
}

#[test]
fn a_client_that_ignores_the_proxy_is_relayed_through_the_fake_address() {
    require!("curl", have_curl(), "needs /usr/bin/curl");
    let port = hello_server();
    for mode in modes() {
        let dir = TempDir::new("proxy-transparent");
        let log = dir.path().join("audit.log");
        let policy = svc_policy(mode, &dir, port, serde_json::json!({"transparent_ports": [port]}));
        // No proxy at all: curl resolves through the stub and connects to
        // the fake address. An address the stub never gave is closed.
        // Node (before 24) ignores the proxy variables, and asks the
        // resolver with AI_ADDRCONFIG.
        let node = if have_node() {
            format!(
                "node -e \"require('http').get('http://svc.test:{port}/', r => {{ r.on('data', d => process.stdout.write('node:' + d + '\\\\n')) }}).on('error', e => console.log('node-error', e.code))\""
            )
        } else {
            assert!(
                !required("node"),
                "required feature node is missing: /usr/bin/node"
            );
            eprintln!("SKIPPED (part): node is not installed (node)");
            String::new()
        };
        let script = format!(
            "unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy; \
             curl -sS -m 10 http://svc.test:{port}/; echo; \
             curl -sS -m 10 http://127.1.0.77:{port}/; echo code=$?; {node}"
        );
        let r = run(
            mode,
            &["--policy", &policy, "--audit-log", log.to_str().unwrap()],
            &["/usr/bin/bash", "-c", &script],
        );
        let lines = audit_lines(&log);
        let d = format!("{mode:?}\n{}", diag(&r, &lines));
        assert_eq!(r.code(), 0, "{d}");
        assert!(r.stdout().starts_with("hello\n"), "{d}");
        assert!(!r.stdout().contains("code=0"), "{d}");
        if have_node() {
            assert!(r.stdout().contains("node:hello\n"), "{d}");
        }
        let allowed = events(&lines, "network.allowed");
        assert_eq!(allowed.len(), 1 + usize::from(have_node()), "{d}");
        assert_eq!(allowed[0]["protocol"], "transparent", "{d}");
        assert_eq!(allowed[0]["target"], "svc.test", "{d}");
        let denied = events(&lines, "network.denied");
        assert_eq!(denied.len(), 1, "{d}");
        assert!(
            denied[0]["reason"]
                .as_str()
                .unwrap()
                .contains("gave it to no name"),
            "{d}"
        );
    }
}

#[test]
fn resolv_conf_is_placed_over_a_bound_etc_and_the_host_file_is_untouched() {
    for mode in modes() {
        let dir = TempDir::new("proxy-resolv");
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), "nameserver 192.0.2.1\n").unwrap();
        std::fs::write(etc.join("hostname"), "h\n").unwrap();
        for f in ["resolv.conf", "hostname"] {
            set_mode(&etc.join(f), 0o644);
        }
        set_mode(&etc, 0o755);
        let bind = format!("{}:/etc", etc.display());
        let r = run(
            mode,
            &["--net", "proxy", "--ro-bind", &bind],
            &["/bin/sh", "-c", "cat /etc/resolv.conf; cat /etc/hostname"],
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert_eq!(r.code(), 0, "{d}");
        assert!(r.stdout().contains("nameserver 127.0.0.1\n"), "{d}");
        assert!(!r.stdout().contains("192.0.2.1"), "{d}");
        assert!(r.stdout().ends_with("h\n"), "{d}");
        assert_eq!(
            std::fs::read_to_string(etc.join("resolv.conf")).unwrap(),
            "nameserver 192.0.2.1\n"
        );
        // A host resolv.conf that is a symlink to nowhere in the sandbox
        // (systemd-resolved's layout): a clear refusal, nothing runs.
        std::fs::remove_file(etc.join("resolv.conf")).unwrap();
        std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", etc.join("resolv.conf"))
            .unwrap();
        let r = run(
            mode,
            &["--net", "proxy", "--ro-bind", &bind],
            &["/bin/sh", "-c", "echo ran"],
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert_eq!(r.code(), 125, "{d}");
        assert!(!r.stdout().contains("ran"), "{d}");
        assert!(r.stderr().contains("/etc/resolv.conf"), "{d}");
        assert!(r.stderr().contains("network.dns"), "{d}");
        // Without the stub, the host's file stays as it is.
        let r = run(
            mode,
            &[
                "--policy",
                &policy_with_network(mode, &dir, serde_json::json!({"mode": "proxy", "dns": false})),
                "--ro-bind",
                &bind,
            ],
            &["/bin/sh", "-c", "ls /etc; echo ran"],
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert_eq!(r.code(), 0, "{d}");
        assert!(r.stdout().contains("resolv.conf"), "{d}");
    }
}

/// The running kernel's Landlock ABI (0: none).
fn landlock_abi() -> u32 {
    // SAFETY: a version query: null attr, size 0, flag 1.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    r.max(0) as u32
}

#[test]
fn landlock_walls_tcp_connect_to_the_proxy_ports() {
    require!("python3", have_python(), "needs python3");
    let walled = landlock_abi() >= 4;
    for mode in modes() {
        // A server on the sandbox's own loopback at 8000: connecting to it
        // is refused by Landlock (EACCES) in mode proxy, unless the policy
        // lists the port itself; the proxy's port stays reachable. Without
        // Landlock network rules (ABI < 4) the outcome says the wall is
        // missing.
        let script = "import socket,threading\n\
             srv=socket.create_server(('127.0.0.1',8000))\n\
             def probe(p):\n\
             \x20   try: socket.create_connection(('127.0.0.1',p),5).close(); return 'ok'\n\
             \x20   except OSError as e: return e.errno\n\
             print('local', probe(8000), 'proxy', probe(3128))\n";
        let r = run(mode, &["--net", "proxy"], &["/usr/bin/python3", "-c", script]);
        let d = format!("{mode:?}\n{}\n{}\n{:?}", r.stdout(), r.stderr(), r.status);
        assert_eq!(r.code(), 0, "{d}");
        let unenforced = r.status.as_ref().expect("outcome")["unenforced"].to_string();
        if walled {
            assert!(
                r.stdout().contains(&format!("local {} proxy ok", libc::EACCES)),
                "{d}"
            );
            assert!(!unenforced.contains("tcp_connect wall"), "{d}");
        } else {
            assert!(r.stdout().contains("local ok proxy ok"), "{d}");
            assert!(unenforced.contains("tcp_connect wall"), "{d}");
        }
        let r = run(
            mode,
            &["--net", "proxy", "--landlock-connect", "8000"],
            &["/usr/bin/python3", "-c", script],
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        if walled {
            assert_eq!(r.code(), 0, "{d}");
            assert!(r.stdout().contains("local ok proxy ok"), "{d}");
        }
        // Mode none: no wall.
        let r = run(mode, &[], &["/usr/bin/python3", "-c", script]);
        assert!(r.stdout().contains("local ok"), "{mode:?} {}", r.stderr());
    }
}
