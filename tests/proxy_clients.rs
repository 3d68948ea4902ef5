//! Real clients through the egress proxy (mode `proxy`): curl and python's
//! `urllib` over HTTPS (CONNECT) with a test CA whose certificate is
//! verified, python `requests`, `git clone` over dumb HTTP, two concurrent
//! sandboxes that cannot reach each other, the uniform denial, and
//! `cordon connect` (ssh's ProxyCommand). The servers run on the host's
//! 127.0.0.1 and are reachable only through explicit address rules. Every
//! case as root and rootless.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PYTHON: &str = "/usr/bin/python3";

/// A host server that serves the files of a directory over HTTP, or over
/// HTTPS with a certificate (python3's `http.server`), on 127.0.0.1. Killed
/// by its pid when dropped.
struct FileServer {
    child: Child,
    port: u16,
}

const FILE_SERVER: &str = r#"
import functools, http.server, ssl, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
if len(sys.argv) == 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

impl FileServer {
    /// Serve `dir`; with `tls` = (certificate chain, key), over HTTPS.
    fn start(dir: &Path, tls: Option<(&Path, &Path)>) -> FileServer {
        let mut c = Command::new(PYTHON);
        c.arg("-c").arg(FILE_SERVER).arg(dir);
        if let Some((cert, key)) = tls {
            c.arg(cert).arg(key);
        }
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the python3 file server");
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the file server did not report its port: {line:?}");
        };
        FileServer { child, port }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate for `localhost`, `svc.test` and
/// 127.0.0.1 that it signed, made with `openssl`. The CA certificate alone
/// is in `ca_dir` (world-readable, bound at /ca in the sandbox).
struct TestPki {
    dir: TempDir,
}

impl TestPki {
    fn new() -> TestPki {
        let dir = TempDir::new("pki");
        let d = dir.path();
        std::fs::create_dir(d.join("ca")).unwrap();
        set_mode(&d.join("ca"), 0o755);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,DNS:svc.test,IP:127.0.0.1\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: [Vec<&str>; 3] = [
            [
                &["req", "-x509"][..],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca/ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=cordon test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ][..],
            ]
            .concat(),
            [
                &["req"][..],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ][..],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca/ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        ];
        for args in steps {
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(d)
                .stdin(Stdio::null())
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        set_mode(&d.join("ca/ca.pem"), 0o644);
        TestPki { dir }
    }
    /// The directory holding only ca.pem.
    fn ca_dir(&self) -> String {
        format!("{}/ca", self.dir.str())
    }
    fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// A directory of files for the file server: `hello.txt` holds `body`.
fn web_root(body: &str) -> TempDir {
    let dir = TempDir::new("www");
    std::fs::write(dir.path().join("hello.txt"), body).unwrap();
    set_mode(&dir.path().join("hello.txt"), 0o644);
    dir
}

/// The effective default policy with `network` replaced, written to a
/// file (a policy file inherits nothing, so it starts from what `cordon
/// check` prints).
fn policy_with_network(mode: Mode, dir: &TempDir, network: serde_json::Value) -> String {
    let out = cordon(mode).args(["check"]).output().expect("cordon check");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut p: serde_json::Value = serde_json::from_slice(&out.stdout).expect("policy JSON");
    p["network"] = network;
    write_policy(
        dir,
        "proxy-policy.json",
        &serde_json::to_string_pretty(&p).unwrap(),
    )
}

fn diag(mode: Mode, r: &Run, log: &[serde_json::Value]) -> String {
    format!(
        "{mode:?}\nexit: {:?}\nstdout:\n{}\nstderr:\n{}\noutcome: {:?}\naudit: {log:#?}",
        r.output.status,
        r.stdout(),
        r.stderr(),
        r.status
    )
}

/// `n` seconds scaled by [`slow_factor`] (the VM lane), for the clients'
/// own timeouts.
fn secs(n: u64) -> u64 {
    n * u64::from(slow_factor())
}

fn have(path: &str) -> bool {
    Path::new(path).exists()
}

fn have_requests() -> bool {
    have(PYTHON)
        && Command::new(PYTHON)
            .args(["-c", "import requests"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// curl inside the sandbox through its proxy (ignoring NO_PROXY, which
/// covers 127.0.0.1), verbose on stderr; prints the body and then
/// `code=N`.
fn curl(args: &str, url: &str) -> String {
    let t = secs(20);
    format!("curl -sS -v --noproxy '' -x http://127.0.0.1:3128 -m {t} {args} {url}; c=$?; echo; echo code=$c")
}

#[test]
fn curl_https_through_connect_verifies_the_test_ca() {
    require!("curl", have("/usr/bin/curl"), "needs /usr/bin/curl");
    require!("openssl", have("/usr/bin/openssl"), "needs /usr/bin/openssl");
    require!("python3", have_python(), "needs /usr/bin/python3");
    let pki = TestPki::new();
    let www = web_root("secure hello");
    let srv = FileServer::start(www.path(), Some((&pki.cert(), &pki.key())));
    let url = format!("https://127.0.0.1:{}/hello.txt", srv.port);
    let ca_bind = format!("{}:/ca", pki.ca_dir());
    for mode in modes() {
        let dir = TempDir::new("tls-allow");
        let log = dir.path().join("audit.log");
        let rule = format!("127.0.0.1/32:{}", srv.port);
        // Verified against the test CA (no -k); without it, curl refuses
        // the certificate.
        let script = format!(
            "{}; curl -sS --noproxy '' -x http://127.0.0.1:3128 -m {} {url} >/dev/null 2>&1; echo unverified=$?",
            curl("--cacert /ca/ca.pem", &url),
            secs(20)
        );
        let r = sh(
            mode,
            &[
                "--allow-net",
                &rule,
                "--ro-bind",
                &ca_bind,
                "--audit-log",
                log.to_str().unwrap(),
            ],
            &script,
        );
        let lines = audit_lines(&log);
        let d = diag(mode, &r, &lines);
        assert_eq!(r.code(), 0, "{d}");
        assert!(r.stdout().contains("secure hello\ncode=0\n"), "{d}");
        assert!(r.stderr().contains("SSL certificate verify ok"), "{d}");
        assert!(!r.stdout().contains("unverified=0"), "{d}");
        let allowed = events(&lines, "network.allowed");
        assert_eq!(allowed.len(), 2, "{d}");
        assert!(allowed.iter().all(|a| a["protocol"] == "http-connect"), "{d}");
        assert!(allowed.iter().all(|a| a["port"] == srv.port), "{d}");

        // The same URL with a rule for another port only: 403 from the proxy.
        let dir = TempDir::new("tls-deny");
        let log = dir.path().join("audit.log");
        let other = format!("127.0.0.1/32:{}", srv.port ^ 1);
        let r = sh(
            mode,
            &[
                "--allow-net",
                &other,
                "--ro-bind",
                &ca_bind,
                "--audit-log",
                log.to_str().unwrap(),
            ],
            &curl("--cacert /ca/ca.pem", &url),
        );
        let lines = audit_lines(&log);
        let d = diag(mode, &r, &lines);
        assert_eq!(r.code(), 0, "{d}");
        assert!(!r.stdout().contains("secure hello"), "{d}");
        assert!(!r.stdout().contains("code=0"), "{d}");
        assert!(r.stderr().contains("< HTTP/1.1 403 Forbidden"), "{d}");
        assert!(
            r.stderr()
                .contains("< X-Cordon-Denied: no network.allow rule matches"),
            "{d}"
        );
        assert_eq!(events(&lines, "network.denied").len(), 1, "{d}");
        assert!(events(&lines, "network.allowed").is_empty(), "{d}");
    }
}

/// A policy that maps `svc.test` to the host's 127.0.0.1 (a name:
/// NO_PROXY covers 127.0.0.1 and localhost, so clients that follow the
/// environment would not use the proxy for them) and allows it on `ports`.
fn svc_policy(mode: Mode, dir: &TempDir, ports: &[u16]) -> String {
    let allow: Vec<String> = ports
        .iter()
        .flat_map(|p| [format!("svc.test:{p}"), format!("127.0.0.1/32:{p}")])
        .collect();
    policy_with_network(
        mode,
        dir,
        serde_json::json!({
            "mode": "proxy",
            "allow": allow,
            "resolve": {"svc.test": "127.0.0.1"}
        }),
    )
}

#[test]
fn python_urllib_https_through_the_environment() {
    require!("openssl", have("/usr/bin/openssl"), "needs /usr/bin/openssl");
    require!("python3", have_python(), "needs /usr/bin/python3");
    let pki = TestPki::new();
    let www = web_root("secure hello");
    let srv = FileServer::start(www.path(), Some((&pki.cert(), &pki.key())));
    let ca_bind = format!("{}:/ca", pki.ca_dir());
    for mode in modes() {
        let dir = TempDir::new("tls-py");
        let log = dir.path().join("audit.log");
        let policy = svc_policy(mode, &dir, &[srv.port]);
        // urllib takes the proxy from HTTPS_PROXY and tunnels with CONNECT;
        // the default context (the system's CAs only) refuses the server.
        let script = format!(
            "import os, ssl, urllib.request\n\
             assert os.environ['HTTPS_PROXY'] == 'http://127.0.0.1:3128', os.environ\n\
             url = 'https://svc.test:{}/hello.txt'\n\
             ctx = ssl.create_default_context(cafile='/ca/ca.pem')\n\
             print(urllib.request.urlopen(url, context=ctx, timeout={t}).read().decode())\n\
             try:\n    urllib.request.urlopen(url, timeout={t})\n    print('unverified')\n\
             except Exception as e:\n    print('refused:', type(e).__name__)\n",
            srv.port,
            t = secs(20)
        );
        let r = py(
            mode,
            &[
                "--policy",
                &policy,
                "--ro-bind",
                &ca_bind,
                "--audit-log",
                log.to_str().unwrap(),
            ],
            &script,
        );
        let lines = audit_lines(&log);
        let d = diag(mode, &r, &lines);
        assert_eq!(r.code(), 0, "{d}");
        assert_eq!(r.stdout(), "secure hello\nrefused: URLError\n", "{d}");
        let allowed = events(&lines, "network.allowed");
        assert_eq!(allowed.len(), 2, "{d}");
        assert_eq!(allowed[0]["protocol"], "http-connect", "{d}");
        assert_eq!(allowed[0]["target"], "svc.test", "{d}");
    }
}

#[test]
fn python_requests_through_the_environment() {
    require!("openssl", have("/usr/bin/openssl"), "needs /usr/bin/openssl");
    require!(
        "python3-requests",
        have_requests(),
        "needs python3 with requests (python3-requests)"
    );
    let pki = TestPki::new();
    let www = web_root("secure hello");
    let tls = FileServer::start(www.path(), Some((&pki.cert(), &pki.key())));
    let plain = FileServer::start(www.path(), None);
    let ca_bind = format!("{}:/ca", pki.ca_dir());
    for mode in modes() {
        let dir = TempDir::new("requests");
        let log = dir.path().join("audit.log");
        let policy = svc_policy(mode, &dir, &[tls.port, plain.port]);
        // requests takes both proxies from the environment: plain HTTP in
        // absolute form, HTTPS through CONNECT.
        let script = format!(
            "import requests\n\
             r = requests.get('http://svc.test:{}/hello.txt', timeout={t})\n\
             print(r.status_code, r.text)\n\
             r = requests.get('https://svc.test:{}/hello.txt', verify='/ca/ca.pem', timeout={t})\n\
             print(r.status_code, r.text)\n",
            plain.port,
            tls.port,
            t = secs(20)
        );
        let r = py(
            mode,
            &[
                "--policy",
                &policy,
                "--ro-bind",
                &ca_bind,
                "--audit-log",
                log.to_str().unwrap(),
            ],
            &script,
        );
        let lines = audit_lines(&log);
        let d = diag(mode, &r, &lines);
        assert_eq!(r.code(), 0, "{d}");
        assert_eq!(r.stdout(), "200 secure hello\n200 secure hello\n", "{d}");
        let allowed = events(&lines, "network.allowed");
        assert_eq!(allowed.len(), 2, "{d}");
        assert_eq!(allowed[0]["protocol"], "http", "{d}");
        assert_eq!(allowed[0]["port"], plain.port, "{d}");
        assert_eq!(allowed[1]["protocol"], "http-connect", "{d}");
        assert_eq!(allowed[1]["port"], tls.port, "{d}");
    }
}

/// Run a host git command (no system or global configuration).
fn host_git(home: &Path, cwd: &Path, args: &[&str]) {
    let out = Command::new("/usr/bin/git")
        .args([
            "-c",
            "user.name=cordon test",
            "-c",
            "user.email=test@cordon.invalid",
        ])
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn git_clone_over_dumb_http() {
    require!("git", have("/usr/bin/git"), "needs /usr/bin/git");
    require!("python3", have_python(), "needs /usr/bin/python3");
    // A bare repository with one commit, served as files (git's dumb HTTP
    // protocol).
    let tmp = TempDir::new("git-src");
    let t = tmp.path();
    let www = t.join("www");
    std::fs::create_dir(&www).unwrap();
    host_git(t, &www, &["init", "-q", "--bare", "-b", "main", "repo.git"]);
    host_git(t, t, &["init", "-q", "-b", "main", "work"]);
    std::fs::write(t.join("work/README"), "cloned through cordon\n").unwrap();
    host_git(t, &t.join("work"), &["add", "README"]);
    host_git(t, &t.join("work"), &["commit", "-q", "-m", "first"]);
    host_git(t, &t.join("work"), &["push", "-q", "../www/repo.git", "main"]);
    host_git(t, &www.join("repo.git"), &["update-server-info"]);
    let srv = FileServer::start(&www, None);
    let url = format!("http://127.0.0.1:{}/repo.git", srv.port);
    for mode in modes() {
        let dir = TempDir::new("git-clone");
        let log = dir.path().join("audit.log");
        let rule = format!("127.0.0.1/32:{}", srv.port);
        // git follows http_proxy once NO_PROXY (which covers 127.0.0.1) is
        // gone; with it, git connects directly and finds nothing.
        let script = format!(
            "cd /tmp; export HOME=/tmp GIT_CONFIG_NOSYSTEM=1; \
             git clone -q {url} /tmp/direct 2>/dev/null; echo direct=$?; \
             env -u NO_PROXY -u no_proxy git clone -q {url} /tmp/x; echo clone=$?; \
             cat /tmp/x/README; git -C /tmp/x log --format=%s"
        );
        let r = sh(
            mode,
            &["--allow-net", &rule, "--audit-log", log.to_str().unwrap()],
            &script,
        );
        let lines = audit_lines(&log);
        let d = diag(mode, &r, &lines);
        assert_eq!(r.code(), 0, "{d}");
        assert!(!r.stdout().contains("direct=0"), "{d}");
        assert!(
            r.stdout().ends_with("clone=0\ncloned through cordon\nfirst\n"),
            "{d}"
        );
        let allowed = events(&lines, "network.allowed");
        assert!(!allowed.is_empty(), "{d}");
        assert!(allowed.iter().all(|a| a["protocol"] == "http"), "{d}");
        assert!(events(&lines, "network.denied").is_empty(), "{d}");
    }
}

/// A port of the host's 127.0.0.1 that nothing listens on (bound, then
/// released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("host listener");
    l.local_addr().unwrap().port()
}

/// Sandbox A of the isolation test: listens on its own 127.0.0.1:PORT,
/// checks its listener and its own proxy (which allows the host's hello
/// server), writes what it saw to /shared/ready, then answers `from-A` to
/// anyone until /shared/stop appears and prints how many it served.
const LISTENER_A: &str = r#"
import os, socket, sys, time
port, hello, T = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.socket()
s.bind(("127.0.0.1", port))
s.listen(16)
c = socket.create_connection(("127.0.0.1", port), timeout=T)
a, _ = s.accept()
a.sendall(b"from-A\n")
a.close()
mine = c.recv(64).decode().strip()
c.close()
p = socket.create_connection(("127.0.0.1", 3128), timeout=T)
p.sendall(f"GET http://127.0.0.1:{hello}/ HTTP/1.1\r\nHost: 127.0.0.1:{hello}\r\n\r\n".encode())
via = b""
while True:
    b = p.recv(4096)
    if not b:
        break
    via += b
with open("/shared/ready.tmp", "w") as f:
    f.write(f"{mine} {via.decode().split(chr(10))[-1]}\n")
os.rename("/shared/ready.tmp", "/shared/ready")
s.settimeout(0.1)
served = 0
end = time.monotonic() + 120
while not os.path.exists("/shared/stop") and time.monotonic() < end:
    try:
        a, _ = s.accept()
    except socket.timeout:
        continue
    a.sendall(b"from-A\n")
    a.close()
    served += 1
print("served", served)
"#;

/// Sandbox B of the isolation test: A's port directly, A's port through
/// B's proxy (which allows it), and the hello server A's proxy allows
/// through B's (which does not).
const PROBE_B: &str = r#"
import socket, sys
port, hello, T = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
try:
    c = socket.create_connection(("127.0.0.1", port), timeout=T)
    print("direct=connected", c.recv(64))
except ConnectionRefusedError:
    print("direct=refused")
def ask(req):
    p = socket.create_connection(("127.0.0.1", 3128), timeout=T)
    p.sendall(req.encode())
    got = b""
    try:
        while True:
            b = p.recv(4096)
            if not b:
                break
            got += b
    except socket.timeout:
        got += b" (timeout)"
    return got.decode(errors="replace")
r = ask(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")
print("proxied=" + r.splitlines()[0], "from-A" in r)
r = ask(f"GET http://127.0.0.1:{hello}/ HTTP/1.1\r\nHost: 127.0.0.1:{hello}\r\n\r\n")
print("hello=" + r.splitlines()[0], "X-Cordon-Denied: no network.allow rule matches" in r)
"#;

#[test]
fn concurrent_sandboxes_cannot_reach_each_other() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let hello = hello_server();
    for mode in modes() {
        let shared = TempDir::new("iso-shared");
        let logs = TempDir::new("iso-logs");
        let (log_a, log_b) = (logs.path().join("a.log"), logs.path().join("b.log"));
        let port = free_port();
        let (p, h, t) = (port.to_string(), hello.to_string(), secs(10).to_string());
        let mut a = cordon(mode);
        // Both may connect to the port on their own loopback (mode proxy's
        // Landlock wall would refuse it first): what is tested is that
        // their network namespaces keep them apart.
        a.args(["run", "--allow-net", &format!("127.0.0.1/32:{hello}")])
            .args(["--landlock-connect", &p])
            .args(["--bind", &format!("{}:/shared", shared.str())])
            .args([
                "--audit-log",
                log_a.to_str().unwrap(),
                "--time-limit",
                &time_limit(120),
            ])
            .args(["--", PYTHON, "-c", LISTENER_A, &p, &h, &t])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut a = a.spawn().expect("start sandbox A");
        let ready = shared.path().join("ready");
        let up = wait_until(30.0 * f64::from(slow_factor()), || ready.exists());
        if !up {
            let _ = a.kill();
            let out = a.wait_with_output().unwrap();
            panic!("{mode:?}: sandbox A is not ready: {out:?}");
        }
        let seen = std::fs::read_to_string(&ready).unwrap();

        // While A runs: B (its own 127.0.0.1 and its own proxy) and the host.
        let b = run(
            mode,
            &[
                "--allow-net",
                &format!("127.0.0.1/32:{port}"),
                "--landlock-connect",
                &p,
                "--audit-log",
                log_b.to_str().unwrap(),
            ],
            &[PYTHON, "-c", PROBE_B, &p, &h, &t],
        );
        let host = TcpStream::connect(("127.0.0.1", port));
        let host_refused = matches!(&host, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);

        std::fs::write(shared.path().join("stop"), "").unwrap();
        let done = wait_until(30.0 * f64::from(slow_factor()), || {
            a.try_wait().unwrap().is_some()
        });
        if !done {
            let _ = a.kill();
        }
        let out_a = a.wait_with_output().unwrap();
        let lines_b = audit_lines(&log_b);
        let lines_a = audit_lines(&log_a);
        let d = format!(
            "{}\nA: {out_a:?}\nA saw: {seen}\nA audit: {lines_a:#?}\nhost: {host:?}",
            diag(mode, &b, &lines_b)
        );
        // A's listener and A's proxy work...
        assert_eq!(seen, "from-A hello\n", "{d}");
        // ...but B reaches neither A's port (its own loopback, then the
        // host's, where nothing listens) nor A's proxy (B's 3128 is B's).
        assert_eq!(b.code(), 0, "{d}");
        assert_eq!(
            b.stdout(),
            "direct=refused\nproxied=HTTP/1.1 502 Bad Gateway False\nhello=HTTP/1.1 403 Forbidden True\n",
            "{d}"
        );
        assert!(host_refused, "{d}");
        // A ended cleanly, having served nobody but itself.
        assert!(done, "{d}");
        assert_eq!(out_a.status.code(), Some(0), "{d}");
        assert_eq!(String::from_utf8_lossy(&out_a.stdout), "served 0\n", "{d}");
        // Each proxy logged only its own sandbox's connections.
        assert_eq!(events(&lines_a, "network.allowed").len(), 1, "{d}");
        assert!(events(&lines_a, "network.denied").is_empty(), "{d}");
        assert_eq!(events(&lines_b, "network.allowed").len(), 1, "{d}");
        assert_eq!(events(&lines_b, "network.denied").len(), 1, "{d}");
        assert_eq!(events(&lines_b, "network.denied")[0]["port"], hello, "{d}");
    }
}

/// Send each request of argv (a JSON list) to the proxy on its own
/// connection; print the answers, read to EOF, as a JSON list.
const RAW_REQUESTS: &str = r#"
import json, socket, sys
out = []
T = int(sys.argv[2])
for req in json.loads(sys.argv[1]):
    p = socket.create_connection(("127.0.0.1", 3128), timeout=T)
    p.sendall(req.encode())
    got = b""
    try:
        while True:
            b = p.recv(4096)
            if not b:
                break
            got += b
    except socket.timeout:
        got += b" (timeout)"
    out.append(got.decode(errors="replace"))
print(json.dumps(out))
"#;

#[test]
fn a_denied_target_is_one_audit_line_and_a_uniform_403() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let hello = hello_server();
    for mode in modes() {
        let dir = TempDir::new("deny-uniform");
        let log = dir.path().join("audit.log");
        // Two ports without a rule, one through CONNECT and one as plain
        // HTTP; the allowed hello server between them.
        let (d1, d2) = (free_port(), free_port());
        let reqs = serde_json::json!([
            format!("CONNECT 127.0.0.1:{d1} HTTP/1.1\r\nHost: 127.0.0.1:{d1}\r\n\r\n"),
            format!("GET http://127.0.0.1:{hello}/ HTTP/1.1\r\nHost: 127.0.0.1:{hello}\r\n\r\n"),
            format!("GET http://127.0.0.1:{d2}/x HTTP/1.1\r\nHost: 127.0.0.1:{d2}\r\n\r\n"),
        ]);
        let r = run(
            mode,
            &[
                "--allow-net",
                &format!("127.0.0.1/32:{hello}"),
                "--audit-log",
                log.to_str().unwrap(),
            ],
            &[
                PYTHON,
                "-c",
                RAW_REQUESTS,
                &reqs.to_string(),
                &secs(10).to_string(),
            ],
        );
        let lines = audit_lines(&log);
        let d = diag(mode, &r, &lines);
        assert_eq!(r.code(), 0, "{d}");
        let answers: Vec<String> = serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("{e}: {d}"));
        assert_eq!(answers.len(), 3, "{d}");
        assert!(answers[1].ends_with("\r\n\r\nhello"), "{d}");
        // The same answer, byte for byte, whatever the protocol and port.
        let body = "cordon: no network.allow rule matches\n";
        let expected = format!(
            "HTTP/1.1 403 Forbidden\r\nX-Cordon-Denied: no network.allow rule matches\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(answers[0], expected, "{d}");
        assert_eq!(answers[2], expected, "{d}");
        // Exactly one audit line per denied target.
        let denied = events(&lines, "network.denied");
        assert_eq!(denied.len(), 2, "{d}");
        assert_eq!(denied[0]["port"], d1, "{d}");
        assert_eq!(denied[0]["protocol"], "http-connect", "{d}");
        assert_eq!(denied[1]["port"], d2, "{d}");
        assert_eq!(denied[1]["protocol"], "http", "{d}");
        for x in &denied {
            assert_eq!(x["target"], "127.0.0.1", "{d}");
            assert_eq!(x["reason"], "no network.allow rule matches", "{d}");
        }
        assert_eq!(events(&lines, "network.allowed").len(), 1, "{d}");
        let net = &r.status.as_ref().expect("outcome")["network"];
        assert_eq!(net["connections_denied"], 2, "{d}");
        assert_eq!(net["connections_allowed"], 1, "{d}");
    }
}

/// A host server on 127.0.0.1 that echoes what it reads, until EOF, then
/// closes.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(120)));
                let mut w = c.try_clone().expect("clone");
                let _ = std::io::copy(&mut c, &mut w);
            });
        }
    });
    port
}

#[test]
fn cordon_connect_relays_and_reports_a_refusal() {
    let echo = echo_server();
    let denied = free_port();
    // A copy of cordon (statically linked) every test identity can run.
    let bin = TempDir::new("connect-bin");
    std::fs::copy(cordon_bin(), bin.path().join("cordon")).expect("copy cordon");
    set_mode(&bin.path().join("cordon"), 0o755);
    let bind = format!("{}:/opt/cordon", bin.str());
    for mode in modes() {
        let dir = TempDir::new("connect");
        let log = dir.path().join("audit.log");
        // Through the tunnel and back, half-closed at the end of input (the
        // echo server ends only then, long after `timeout`); a
        // port without a rule; a host given as IPv6 (the proxy refuses ::1,
        // which is not public and has no rule); an invalid host.
        let script = format!(
            "printf 'ping\\n' | timeout {t} /opt/cordon/cordon connect 127.0.0.1 {echo}; echo code=$?; \
             /opt/cordon/cordon connect 127.0.0.1 {denied} </dev/null; echo code=$?; \
             /opt/cordon/cordon connect ::1 {echo} </dev/null; echo code=$?; \
             /opt/cordon/cordon connect 2130706433 {echo} </dev/null; echo code=$?",
            t = 10 * slow_factor()
        );
        let r = sh(
            mode,
            &[
                "--allow-net",
                &format!("127.0.0.1/32:{echo}"),
                "--ro-bind",
                &bind,
                "--audit-log",
                log.to_str().unwrap(),
            ],
            &script,
        );
        let lines = audit_lines(&log);
        let d = diag(mode, &r, &lines);
        assert_eq!(r.code(), 0, "{d}");
        assert_eq!(r.stdout(), "ping\ncode=0\ncode=1\ncode=1\ncode=125\n", "{d}");
        let err = without_landlock_warnings(&r.stderr());
        let err: Vec<&str> = err.lines().collect();
        assert_eq!(err.len(), 3, "{d}");
        assert_eq!(
            err[0],
            format!("cordon connect: 127.0.0.1:{denied} refused by the proxy: no network.allow rule matches"),
            "{d}"
        );
        assert!(
            err[1].starts_with(&format!("cordon connect: [::1]:{echo} refused by the proxy: ")),
            "{d}"
        );
        assert!(
            err[2].starts_with("cordon connect: invalid host \"2130706433\": not an IPv4 address"),
            "{d}"
        );
        // The invalid host never reached the proxy.
        let allowed = events(&lines, "network.allowed");
        assert_eq!(allowed.len(), 1, "{d}");
        assert_eq!(allowed[0]["protocol"], "http-connect", "{d}");
        assert_eq!(events(&lines, "network.closed")[0]["bytes_up"], 5, "{d}");
        assert_eq!(events(&lines, "network.denied").len(), 2, "{d}");
    }
}

/// A one-shot host "proxy" on 127.0.0.1 that reads a request head, hands
/// it back through the returned receiver and answers `reply`.
fn fake_proxy(reply: &'static [u8]) -> (u16, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = l.accept() else { return };
        let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
        let mut buf = Vec::new();
        let mut b = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&b[..n]),
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        let _ = c.write_all(reply);
    });
    (port, rx)
}

#[test]
fn cordon_connect_on_the_host_follows_cordon_proxy() {
    let connect = |proxy: &str, args: &[&str]| {
        Command::new(cordon_bin())
            .arg("connect")
            .args(args)
            .env_clear()
            .env("CORDON_PROXY", proxy)
            .stdin(Stdio::null())
            .output()
            .expect("run cordon connect")
    };
    // The request names the target in the request line and in Host, an
    // IPv6 address in brackets; an answer other than 200 without
    // X-Cordon-Denied is reported by its status line.
    let (port, rx) = fake_proxy(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    let out = connect(&format!("127.0.0.1:{port}"), &["2001:db8::1", "22"]);
    let req = rx.recv_timeout(Duration::from_secs(20)).expect("the request");
    assert_eq!(
        req,
        "CONNECT [2001:db8::1]:22 HTTP/1.1\r\nHost: [2001:db8::1]:22\r\n\r\n"
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cordon connect: [2001:db8::1]:22 refused by the proxy: HTTP/1.1 407 Proxy Authentication Required\n"
    );
    // The bytes after the 200 head are the tunnel's first bytes.
    let (port, rx) = fake_proxy(b"HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-test\r\n");
    let out = connect(&format!("127.0.0.1:{port}"), &["git.example", "22"]);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        "CONNECT git.example:22 HTTP/1.1\r\nHost: git.example:22\r\n\r\n"
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"SSH-2.0-test\r\n");
    // Not HTTP; nobody listening; bad arguments.
    let (port, _rx) = fake_proxy(b"SSH-2.0-not-a-proxy\r\n\r\n");
    let out = connect(&format!("127.0.0.1:{port}"), &["git.example", "22"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not HTTP"),
        "{out:?}"
    );
    let out = connect(&format!("127.0.0.1:{}", free_port()), &["git.example", "22"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect to the proxy"),
        "{out:?}"
    );
    for (proxy, host, port, why) in [
        ("127.0.0.1:1", "git.example", "0", "invalid port \"0\""),
        ("127.0.0.1:1", "a b", "22", "invalid host \"a b\""),
        (
            "localhost:3128",
            "git.example",
            "22",
            "CORDON_PROXY=\"localhost:3128\"",
        ),
    ] {
        let out = connect(proxy, &[host, port]);
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(&format!("cordon connect: {why}")), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn ssh_proxy_command_through_cordon_connect() {
    require!("ssh", have("/usr/bin/ssh"), "needs /usr/bin/ssh (openssh-client)");
    // A host "ssh server" that sends its banner, reports the client's and
    // closes: the client's banner crossed the tunnel, and ssh must then
    // see the end (cordon connect ends its standard output) and exit.
    let l = TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(60)));
            let _ = c.write_all(b"SSH-2.0-cordon-test\r\n");
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while line.len() < 255 && !line.ends_with(b"\n") {
                match c.read(&mut b) {
                    Ok(1) => line.push(b[0]),
                    _ => break,
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
        }
    });
    let bin = TempDir::new("ssh-bin");
    std::fs::copy(cordon_bin(), bin.path().join("cordon")).expect("copy cordon");
    set_mode(&bin.path().join("cordon"), 0o755);
    // ssh refuses to run for a uid without a passwd entry.
    std::fs::write(
        bin.path().join("passwd"),
        "root:x:0:0::/root:/bin/sh\nsandbox:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    set_mode(&bin.path().join("passwd"), 0o644);
    for mode in modes() {
        let script = format!(
            "id -u; timeout {t} ssh -F /dev/null -o ProxyCommand='/opt/cordon/cordon connect %h %p' \
             -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -p {port} sandbox@127.0.0.1 true; echo ssh=$?",
            t = secs(20)
        );
        let r = sh(
            mode,
            &[
                "--allow-net",
                &format!("127.0.0.1/32:{port}"),
                "--ro-bind",
                &format!("{}/cordon:/opt/cordon/cordon", bin.str()),
                "--ro-bind",
                &format!("{}/passwd:/etc/passwd", bin.str()),
            ],
            &script,
        );
        let d = diag(mode, &r, &[]);
        let banner = rx.recv_timeout(Duration::from_secs(u64::from(slow_factor()) * 30));
        assert_eq!(r.code(), 0, "{d}");
        assert!(
            banner.as_deref().is_ok_and(|b| b.starts_with("SSH-2.0-OpenSSH")),
            "{banner:?}\n{d}"
        );
        // 255: ssh's own error (the server closed), not timeout's 124.
        assert_eq!(r.stdout(), "1000\nssh=255\n", "{d}");
        assert!(r.stderr().contains("Connection closed"), "{d}");
    }
}
