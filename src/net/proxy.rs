//! The egress proxy, in the supervisor (the parent process, which has the
//! host's network): HTTP `CONNECT`, and plain HTTP requests in absolute
//! form (sent on in origin form), on the listener the child made in the
//! sandbox's netns (see [`super::listen`]). Nothing here runs unless the
//! plan's mode is `proxy`.
//!
//! One accept thread, one thread per connection (at most
//! `max_connections` at once; beyond that a 503). Per connection: the
//! request head is read with a size bound ([`MAX_HEAD`]) and a deadline
//! (`connect_timeout`); the target is parsed strictly
//! ([`Target::parse`]: ambiguous IPv4 literals refused); a name no rule
//! allows is never resolved; an allowed name is resolved once (the
//! policy's test-only `resolve` map first, else getaddrinfo), every
//! address goes through [`Rules::decide`] — the only place decisions are
//! made — and the connection goes to exactly the first checked address,
//! never re-resolved. Every decision is one audit line
//! (`network.allowed` / `network.denied`), every relayed connection one
//! more (`network.closed`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rules::{Decision, DenyReason, Host, Rules, Target};
use crate::audit::AuditLog;
use crate::policy::network::NetworkPolicy;
use crate::sys;

/// The longest request head the proxy reads (request line and headers);
/// a longer one gets 431 and the connection is closed.
pub const MAX_HEAD: usize = 8192;

/// How long stopping the proxy waits for its threads before it leaves
/// them to end on their own (each ends at its next wake-up).
const JOIN_BOUND: Duration = Duration::from_secs(2);

/// The protocol name in audit lines.
const PROTOCOL: &str = "http-connect";

/// What the proxy enforces, from the policy's `network` section.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// allow/deny.
    pub rules: Rules,
    /// Connections open at once.
    pub max_connections: u32,
    /// Bound on reading the request head, resolving and connecting.
    pub connect_timeout: Duration,
    /// A relayed connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// The test-only name map (`network.resolve`), consulted first.
    pub resolve: BTreeMap<String, IpAddr>,
}

impl ProxyConfig {
    /// The proxy's part of a `network` section.
    pub fn from_policy(n: &NetworkPolicy) -> ProxyConfig {
        ProxyConfig {
            rules: Rules::from_policy(n),
            max_connections: n.max_connections,
            connect_timeout: n.connect_timeout.as_duration(),
            idle_timeout: n.idle_timeout.as_duration(),
            resolve: n.resolve.clone(),
        }
    }
}

/// What the proxy did, for the outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections let through.
    pub connections_allowed: u64,
    /// Requests refused (rules, checks, malformed requests, the
    /// connection limit).
    pub connections_denied: u64,
    /// Bytes from the payload to its targets.
    pub bytes_up: u64,
    /// Bytes from the targets to the payload.
    pub bytes_down: u64,
}

#[derive(Default)]
struct Counters {
    allowed: AtomicU64,
    denied: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
}

struct Shared {
    cfg: ProxyConfig,
    audit: Option<AuditLog>,
    counters: Counters,
    active: AtomicUsize,
    /// Read end of the stop pipe: hung up when the proxy stops.
    stop: OwnedFd,
}

impl Shared {
    fn emit(&self, event: &str, fields: &[(&str, Value)]) {
        if let Some(a) = &self.audit {
            a.emit(event, fields);
        }
    }
}

/// The running proxy. [`Proxy::stop`] ends it and returns its counts;
/// dropping it stops it without waiting.
pub struct Proxy {
    stop_w: Option<OwnedFd>,
    main: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("stats", &self.stats()).finish()
    }
}

/// Take ownership of `fd`.
///
/// # Safety
///
/// `fd` is open and owned by the caller, who never uses or closes it
/// again.
unsafe fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller hands over an fd it owns (see the contract above).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

impl Proxy {
    /// Start the accept thread: it waits for the child's listeners on
    /// `handoff` (the parent's end of the hand-off socket; EOF: the child
    /// failed before sending them, and the proxy has nothing to do), then
    /// serves the first.
    pub fn start(cfg: ProxyConfig, handoff: OwnedFd, audit: Option<AuditLog>) -> std::io::Result<Proxy> {
        let (r, w) = sys::pipe().map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
        // SAFETY: pipe2 just made both fds; nothing else holds them.
        let (r, w) = unsafe { (own(r), own(w)) };
        let shared = Arc::new(Shared {
            cfg,
            audit,
            counters: Counters::default(),
            active: AtomicUsize::new(0),
            stop: r,
        });
        let sh = shared.clone();
        let main = std::thread::Builder::new()
            .name("cordon-proxy".to_string())
            .spawn(move || accept_main(&sh, handoff))?;
        Ok(Proxy {
            stop_w: Some(w),
            main: Some(main),
            shared,
        })
    }

    /// The counts so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            connections_allowed: c.allowed.load(Ordering::Relaxed),
            connections_denied: c.denied.load(Ordering::Relaxed),
            bytes_up: c.up.load(Ordering::Relaxed),
            bytes_down: c.down.load(Ordering::Relaxed),
        }
    }

    /// Stop: close the listener, wake every thread, and wait for them (at
    /// most [`JOIN_BOUND`]); then the counts.
    pub fn stop(mut self) -> ProxyStats {
        self.stop_w = None;
        if let Some(main) = self.main.take() {
            let end = Instant::now() + JOIN_BOUND;
            let mut pause = Duration::from_micros(50);
            while !main.is_finished() && Instant::now() < end {
                // Short pauses first: with no connection open the thread
                // ends within microseconds, and this wait is part of every
                // proxy-mode run.
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            if main.is_finished() {
                let _ = main.join();
            }
        }
        self.stats()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Closing the write end wakes every thread, which then ends.
        self.stop_w = None;
    }
}

#[derive(PartialEq, Eq, Debug)]
enum Wait {
    Ready,
    Stop,
    Timeout,
}

/// Wait until `fd` is readable (or hung up), the proxy stops, or `timeout`.
fn wait(fd: RawFd, stop: RawFd, timeout: Option<Duration>) -> Wait {
    let ms = timeout.map_or(-1, |t| t.as_millis().clamp(1, i32::MAX as u128) as i32);
    let mut p = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    match sys::poll(&mut p, ms) {
        Ok(0) => Wait::Timeout,
        Ok(_) if p[1].revents != 0 => Wait::Stop,
        Ok(_) => Wait::Ready,
        Err(_) => Wait::Stop,
    }
}

fn accept_main(sh: &Arc<Shared>, handoff: OwnedFd) {
    let stop = sh.stop.as_raw_fd();
    if wait(handoff.as_raw_fd(), stop, None) != Wait::Ready {
        return;
    }
    let mut fds = [-1; sys::MAX_PASSED_FDS];
    let n = match sys::recv_fds(handoff.as_raw_fd(), &mut fds) {
        Ok(n) => n,
        Err(_) => return,
    };
    drop(handoff);
    // SAFETY: recv_fds just installed these fds in this process (the
    // first `n` of `fds`); nothing else holds them.
    let mut owned: Vec<OwnedFd> = fds[..n].iter().map(|&fd| unsafe { own(fd) }).collect();
    if owned.is_empty() {
        return;
    }
    // This build serves one listener (HTTP); any other is closed.
    let listener = TcpListener::from(owned.remove(0));
    drop(owned);
    // Never block in accept (a client gone between poll and accept).
    let _ = listener.set_nonblocking(true);
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    loop {
        match wait(listener.as_raw_fd(), stop, None) {
            Wait::Stop => break,
            Wait::Timeout => continue,
            Wait::Ready => {}
        }
        workers.retain(|w| !w.is_finished());
        let conn = match listener.accept() {
            Ok((c, _)) => c,
            Err(_) => {
                // EMFILE and the like: do not spin.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let max = sh.cfg.max_connections as usize;
        if sh.active.load(Ordering::Acquire) >= max {
            sh.counters.denied.fetch_add(1, Ordering::Relaxed);
            sh.emit(
                "limit.hit",
                &[
                    ("limit", Value::from("connections")),
                    ("max", Value::from(max as u64)),
                ],
            );
            let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
            respond(
                &conn,
                503,
                "Service Unavailable",
                &format!("too many connections (network.max_connections = {max})"),
            );
            continue;
        }
        sh.active.fetch_add(1, Ordering::AcqRel);
        let worker_sh = sh.clone();
        let spawned = std::thread::Builder::new()
            .name("cordon-proxy-conn".to_string())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve(&worker_sh, conn);
                worker_sh.active.fetch_sub(1, Ordering::AcqRel);
            });
        match spawned {
            Ok(h) => workers.push(h),
            Err(_) => {
                sh.active.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
    drop(listener);
    let end = Instant::now() + JOIN_BOUND;
    let mut pause = Duration::from_micros(50);
    while workers.iter().any(|w| !w.is_finished()) && Instant::now() < end {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
    for w in workers.into_iter().filter(|w| w.is_finished()) {
        let _ = w.join();
    }
}

/// Write a short response with `X-Cordon-Denied: <reason>` (for 4xx/5xx).
fn respond(mut conn: &TcpStream, code: u16, text: &str, reason: &str) {
    // One line: no CR or LF from a target the client sent.
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let body = format!("cordon: {reason}\n");
    let msg = format!(
        "HTTP/1.1 {code} {text}\r\nX-Cordon-Denied: {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(msg.as_bytes());
    let _ = conn.shutdown(Shutdown::Write);
}

/// Read the request head (through the blank line) into `buf`: its length
/// and how much was read in all, or why not.
fn read_head(
    sh: &Shared,
    conn: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(usize, usize), (u16, &'static str, &'static str)> {
    let mut n = 0;
    loop {
        if let Some(end) = find_head_end(&buf[..n]) {
            return Ok((end, n));
        }
        if n == buf.len() {
            return Err((431, "Request Header Fields Too Large", "request head over 8 KiB"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match wait(conn.as_raw_fd(), sh.stop.as_raw_fd(), Some(left)) {
            Wait::Ready => {}
            Wait::Timeout => {
                return Err((
                    408,
                    "Request Timeout",
                    "no complete request head within network.connect_timeout",
                ))
            }
            Wait::Stop => return Err((503, "Service Unavailable", "the sandbox is ending")),
        }
        match conn.read(&mut buf[n..]) {
            Ok(0) | Err(_) => {
                return Err((
                    400,
                    "Bad Request",
                    "connection closed before the request head ended",
                ))
            }
            Ok(k) => n += k,
        }
    }
}

/// Where the head ends (after `\r\n\r\n`), if it does.
fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// `host:port` of a CONNECT request (IPv6 in brackets).
fn split_authority(a: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (h, p) = rest.split_once(']')?;
        (h, p.strip_prefix(':')?)
    } else {
        a.rsplit_once(':')?
    };
    if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// What the client asked for.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    host: String,
    port: u16,
    /// `None` for CONNECT; for a plain HTTP request in absolute form, the
    /// head to send to the target: the request line in origin form and
    /// the client's headers without the hop-by-hop ones, with
    /// `Connection: close`.
    forward: Option<Vec<u8>>,
}

impl Request {
    fn protocol(&self) -> &'static str {
        if self.forward.is_some() {
            "http"
        } else {
            PROTOCOL
        }
    }
}

/// Headers that concern the hop to the proxy, not the target.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
];

/// Parse a request head: `CONNECT host:port HTTP/1.x`, or a plain HTTP
/// request in absolute form (`GET http://host[:port]/path HTTP/1.x`).
fn parse_request(head: &[u8]) -> Result<Request, &'static str> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or("malformed request line")?;
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| "request line is not UTF-8")?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err("not an HTTP/1 request");
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("malformed method");
    }
    if method == "CONNECT" {
        let (host, port) = split_authority(target).ok_or("CONNECT target is not host:port")?;
        return Ok(Request {
            host: host.to_string(),
            port,
            forward: None,
        });
    }
    let Some(rest) = target.strip_prefix("http://") else {
        return Err("only CONNECT and absolute http:// requests are proxied (https:// goes through CONNECT)");
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err("user information in the URL is refused");
    }
    let (host, port) = match split_authority(authority) {
        Some(hp) => hp,
        None if !authority.contains(':') || (authority.starts_with('[') && authority.ends_with(']')) => {
            (authority.trim_start_matches('[').trim_end_matches(']'), 80)
        }
        None => return Err("malformed host in the URL"),
    };
    if host.is_empty() {
        return Err("no host in the URL");
    }
    let path = path.split('#').next().unwrap_or_default();
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut fwd = format!("{method} {path} {version}\r\n").into_bytes();
    let headers = &head[line_end + 2..];
    for h in headers.split(|&b| b == b'\n') {
        let h = h.strip_suffix(b"\r").unwrap_or(h);
        if h.is_empty() {
            continue;
        }
        let name = h.split(|&b| b == b':').next().unwrap_or_default();
        if HOP_BY_HOP.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes())) {
            continue;
        }
        fwd.extend_from_slice(h);
        fwd.extend_from_slice(b"\r\n");
    }
    fwd.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Request {
        host: host.to_string(),
        port,
        forward: Some(fwd),
    })
}

fn deny_reason(d: &Decision) -> String {
    d.to_string()
}

/// Resolve a name once: the test map first, else getaddrinfo (the
/// parent's network). Duplicates removed, order kept.
fn resolve(cfg: &ProxyConfig, name: &str, port: u16) -> Vec<IpAddr> {
    if let Some(ip) = cfg.resolve.get(name) {
        return vec![*ip];
    }
    let mut out: Vec<IpAddr> = Vec::new();
    // Fully qualified (a trailing dot): the resolver's search domains must
    // not turn an allowed name into another one (`api.example.com` into
    // `api.example.com.corp.internal`).
    let absolute = format!("{}.", name.trim_end_matches('.'));
    if let Ok(addrs) = (absolute.as_str(), port).to_socket_addrs() {
        for a in addrs {
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
    }
    out
}

fn serve(sh: &Shared, mut client: TcpStream) {
    let started = Instant::now();
    let deadline = started + sh.cfg.connect_timeout;
    let _ = client.set_write_timeout(Some(sh.cfg.idle_timeout.max(Duration::from_millis(100))));
    let mut buf = vec![0u8; MAX_HEAD];
    let Some((head_len, read)) = head_or_refusal(sh, &mut client, &mut buf, deadline) else {
        return;
    };
    let request = parse_request(&buf[..head_len]);
    let protocol = request.as_ref().map_or(PROTOCOL, Request::protocol);
    // `target`: the host and port, when the request named them.
    let denied = |target: Option<(&str, u16)>, resolved: &[IpAddr], code: u16, text: &str, reason: &str| {
        sh.counters.denied.fetch_add(1, Ordering::Relaxed);
        let mut fields = vec![("protocol", Value::from(protocol))];
        if let Some((host, port)) = target {
            fields.push(("target", Value::from(host)));
            fields.push(("port", Value::from(port)));
        }
        fields.push(("resolved", ips_value(resolved)));
        fields.push(("reason", Value::from(reason)));
        sh.emit("network.denied", &fields);
        respond(&client, code, text, reason);
    };
    let Request { host, port, forward } = match request {
        Ok(r) => r,
        Err(why) => return denied(None, &[], 400, "Bad Request", why),
    };
    let target = match Target::parse(&host, port) {
        Ok(t) => t,
        Err(r) => {
            let why = format!("target {:?} refused: {}", r.literal, r.reason);
            return denied(Some((&host, port)), &[], 403, "Forbidden", &why);
        }
    };
    let host_text = match &target.host {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => ip.to_string(),
    };
    // A name no rule allows (or a rule denies) is never resolved.
    let early = sh.cfg.rules.decide(&target, &[]);
    if let Decision::Deny {
        reason: DenyReason::NoAllowRule | DenyReason::DenyRule { .. },
    } = early
    {
        return denied(
            Some((&host_text, port)),
            &[],
            403,
            "Forbidden",
            &deny_reason(&early),
        );
    }
    let resolved = match &target.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(n) => resolve(&sh.cfg, n, port),
    };
    let decision = sh.cfg.rules.decide(&target, &resolved);
    let rule = match decision {
        Decision::Allow { rule } => rule,
        Decision::Deny { .. } => {
            return denied(
                Some((&host_text, port)),
                &resolved,
                403,
                "Forbidden",
                &deny_reason(&decision),
            )
        }
    };
    allowed(sh, protocol, &host_text, port, &resolved, rule);
    // Exactly the first checked address, never resolved again.
    let addr = SocketAddr::new(resolved[0], port);
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let (up, down, error) = connect_and_relay(
        sh,
        &mut client,
        addr,
        left,
        forward.as_deref(),
        &buf[head_len..read],
    );
    sh.counters.up.fetch_add(up, Ordering::Relaxed);
    sh.counters.down.fetch_add(down, Ordering::Relaxed);
    let mut fields = vec![
        ("protocol", Value::from(protocol)),
        ("target", Value::from(host_text)),
        ("port", Value::from(port)),
        ("bytes_up", Value::from(up)),
        ("bytes_down", Value::from(down)),
        ("duration_ms", Value::from(started.elapsed().as_millis() as u64)),
    ];
    if let Some(e) = error {
        fields.push(("error", Value::from(e)));
    }
    sh.emit("network.closed", &fields);
}

/// Count and log an allowed connection.
fn allowed(sh: &Shared, protocol: &str, host: &str, port: u16, resolved: &[IpAddr], rule: usize) {
    sh.counters.allowed.fetch_add(1, Ordering::Relaxed);
    sh.emit(
        "network.allowed",
        &[
            ("protocol", Value::from(protocol)),
            ("target", Value::from(host)),
            ("port", Value::from(port)),
            ("resolved", ips_value(resolved)),
            ("rule", Value::from(format!("network.allow[{rule}]"))),
        ],
    );
}

/// Read the request head; on a refusal (too long, too slow, closed) answer
/// it, count it, log it, and return `None`.
fn head_or_refusal(
    sh: &Shared,
    client: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Option<(usize, usize)> {
    match read_head(sh, client, buf, deadline) {
        Ok(x) => Some(x),
        Err((code, text, reason)) => {
            sh.counters.denied.fetch_add(1, Ordering::Relaxed);
            sh.emit(
                "network.denied",
                &[
                    ("protocol", Value::from(PROTOCOL)),
                    ("resolved", Value::Array(Vec::new())),
                    ("reason", Value::from(reason)),
                ],
            );
            respond(client, code, text, reason);
            None
        }
    }
}

/// Connect to exactly `addr` (within `left`), open the tunnel (CONNECT:
/// `forward` is `None`) or send the request on in origin form, pass on
/// what the client sent after its head (`early`), and relay both ways:
/// (bytes up, bytes down, the connect error).
fn connect_and_relay(
    sh: &Shared,
    client: &mut TcpStream,
    addr: SocketAddr,
    left: Duration,
    forward: Option<&[u8]>,
    early: &[u8],
) -> (u64, u64, Option<String>) {
    let mut upstream = match TcpStream::connect_timeout(&addr, left) {
        Ok(u) => u,
        Err(e) => {
            let why = format!("connecting to {addr}: {e}");
            respond(client, 502, "Bad Gateway", &why);
            return (0, 0, Some(why));
        }
    };
    let _ = upstream.set_nodelay(true);
    let _ = upstream.set_write_timeout(Some(sh.cfg.idle_timeout.max(Duration::from_millis(100))));
    let (ok, pre) = match forward {
        None => (
            client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            0,
        ),
        Some(head) => (upstream.write_all(head), head.len() as u64),
    };
    if ok.and_then(|_| upstream.write_all(early)).is_err() {
        return (0, 0, None);
    }
    let (u, d) = relay(sh, client, &mut upstream);
    (u + pre + early.len() as u64, d, None)
}

fn ips_value(ips: &[IpAddr]) -> Value {
    Value::Array(ips.iter().map(|ip| Value::from(ip.to_string())).collect())
}

/// Copy both ways until both sides are done, the connection is idle for
/// `idle_timeout`, an error, or the proxy stops. Returns (up, down).
fn relay(sh: &Shared, client: &mut TcpStream, upstream: &mut TcpStream) -> (u64, u64) {
    let mut buf = vec![0u8; 16 * 1024];
    let (mut up, mut down) = (0u64, 0u64);
    let (mut client_open, mut upstream_open) = (true, true);
    let idle = sh.cfg.idle_timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    while client_open || upstream_open {
        let mut p = [
            libc::pollfd {
                fd: if client_open { client.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if upstream_open { upstream.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sh.stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        match sys::poll(&mut p, idle) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if p[2].revents != 0 {
            break;
        }
        if p[0].revents != 0 {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => {
                    client_open = false;
                    let _ = upstream.shutdown(Shutdown::Write);
                }
                Ok(n) => {
                    if upstream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    up += n as u64;
                }
            }
        }
        if p[1].revents != 0 {
            match upstream.read(&mut buf) {
                Ok(0) | Err(_) => {
                    upstream_open = false;
                    let _ = client.shutdown(Shutdown::Write);
                }
                Ok(n) => {
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    down += n as u64;
                }
            }
        }
    }
    (up, down)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_forms() {
        assert_eq!(split_authority("example.com:443"), Some(("example.com", 443)));
        assert_eq!(split_authority("[2001:db8::1]:443"), Some(("2001:db8::1", 443)));
        assert_eq!(split_authority("example.com"), None);
        assert_eq!(split_authority("example.com:"), None);
        assert_eq!(split_authority("example.com:+1"), None);
        assert_eq!(split_authority("example.com:99999"), None);
        assert_eq!(split_authority("[::1]443"), None);
        assert_eq!(split_authority(":443"), None);
    }

    #[test]
    fn request_heads() {
        let c = |h: &[u8]| {
            parse_request(h).map(|r| (r.host, r.port, r.forward.map(|f| String::from_utf8(f).unwrap())))
        };
        assert_eq!(
            c(b"CONNECT a.example:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(("a.example".to_string(), 443, None))
        );
        assert!(c(b"CONNECT a:1 HTTP/2\r\n\r\n").is_err());
        assert!(c(b"CONNECT a:1  HTTP/1.1\r\n\r\n").is_err());
        assert!(c(b"CONNECT a:1 HTTP/1.1").is_err());
        assert!(c(b"connect a:1 HTTP/1.1\r\n\r\n").is_err());
        assert_eq!(
            c(b"GET http://a.example/x?y=1#frag HTTP/1.1\r\nHost: a.example\r\nProxy-Connection: keep-alive\r\nconnection: keep-alive\r\nAccept: */*\r\n\r\n"),
            Ok((
                "a.example".to_string(),
                80,
                Some("GET /x?y=1 HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nConnection: close\r\n\r\n".to_string())
            ))
        );
        assert_eq!(
            c(b"GET http://[::1]:8080 HTTP/1.0\r\n\r\n"),
            Ok((
                "::1".to_string(),
                8080,
                Some("GET / HTTP/1.0\r\nConnection: close\r\n\r\n".to_string())
            ))
        );
        assert_eq!(c(b"GET http://h?q HTTP/1.1\r\n\r\n").unwrap().1, 80);
        assert!(c(b"GET http://u:p@h/ HTTP/1.1\r\n\r\n").is_err());
        assert!(c(b"GET https://h/ HTTP/1.1\r\n\r\n").is_err());
        assert!(c(b"GET /relative HTTP/1.1\r\n\r\n").is_err());
        assert!(c(b"GET http://h:x/ HTTP/1.1\r\n\r\n").is_err());
        assert!(c(b"GET http:///x HTTP/1.1\r\n\r\n").is_err());
    }

    #[test]
    fn head_end() {
        assert_eq!(find_head_end(b"a\r\n\r\nxyz"), Some(5));
        assert_eq!(find_head_end(b"a\r\n\r"), None);
    }
}
