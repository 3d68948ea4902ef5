//! The egress proxy, in the supervisor (the parent process, which has the
//! host's network), on the listeners the child made in the sandbox's
//! netns (see [`super::listen`]): HTTP `CONNECT` and plain HTTP in
//! absolute form ([`super::http`]), SOCKS5 ([`super::socks`]), the DNS stub
//! ([`super::dns`]) and the transparent relay of connections to the stub's
//! fake addresses. Nothing here runs unless the plan's mode is `proxy`.
//!
//! One accept thread for the TCP listeners, one thread for DNS over UDP,
//! one thread per connection (at most `max_connections` at once; beyond
//! that a refusal). Per connection: the request is read with a size bound
//! and a deadline (`connect_timeout`); the target is parsed strictly
//! ([`Target::parse`]: ambiguous IPv4 literals refused); a fake address
//! from the DNS stub stands for its name; a name no rule allows is never
//! resolved; an allowed name is resolved once (the policy's test-only
//! `resolve` map first, else getaddrinfo), every address goes through
//! [`Rules::decide`] — the only place decisions are made — and the
//! connection goes to exactly the first checked address, never
//! re-resolved. Every decision is one audit line (`network.allowed` /
//! `network.denied`, `dns.denied`), every relayed connection one more
//! (`network.closed`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dns::{self, Answer, FakeMap, Query};
use super::http::{self, Request};
use super::listen::{Listener, Listeners, Service};
use super::rules::{Decision, DenyReason, Host, Rules, Target};
use super::socks;
use crate::audit::AuditLog;
use crate::policy::network::NetworkPolicy;
use crate::sys;

/// How long stopping the proxy waits for its threads before it leaves
/// them to end on their own (each ends at its next wake-up).
const JOIN_BOUND: Duration = Duration::from_secs(2);

/// At most this many `dns.denied` audit lines a second (a payload can send
/// queries far faster than anyone reads them); the next line after a gap
/// says how many were left out.
const DNS_AUDIT_PER_SECOND: u64 = 50;

/// What the proxy enforces, from the policy's `network` section.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// allow/deny.
    pub rules: Rules,
    /// The listeners the child makes, in the order their fds arrive.
    pub listeners: Listeners,
    /// Connections open at once.
    pub max_connections: u32,
    /// Bound on reading the request, resolving and connecting.
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
            listeners: Listeners::proxy(n.dns, &n.transparent_ports),
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
    /// DNS queries answered NXDOMAIN (names no rule allows).
    pub dns_denied: u64,
}

#[derive(Default)]
struct Counters {
    allowed: AtomicU64,
    denied: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
    dns_denied: AtomicU64,
}

/// The `dns.denied` line budget: the second it counts in, lines written in
/// it, lines left out since the last one written.
#[derive(Default)]
struct DnsAudit {
    second: u64,
    written: u64,
    left_out: u64,
}

struct Shared {
    cfg: ProxyConfig,
    audit: Option<AuditLog>,
    counters: Counters,
    active: AtomicUsize,
    /// Names the DNS stub answered, and their fake addresses.
    fake: Mutex<FakeMap>,
    dns_audit: Mutex<DnsAudit>,
    started: Instant,
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
    /// serves them.
    pub fn start(cfg: ProxyConfig, handoff: OwnedFd, audit: Option<AuditLog>) -> std::io::Result<Proxy> {
        let (r, w) = sys::pipe().map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
        // SAFETY: pipe2 just made both fds; nothing else holds them.
        let (r, w) = unsafe { (own(r), own(w)) };
        let shared = Arc::new(Shared {
            cfg,
            audit,
            counters: Counters::default(),
            active: AtomicUsize::new(0),
            fake: Mutex::new(FakeMap::new()),
            dns_audit: Mutex::new(DnsAudit::default()),
            started: Instant::now(),
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
            dns_denied: c.dns_denied.load(Ordering::Relaxed),
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
    let owned: Vec<OwnedFd> = fds[..n].iter().map(|&fd| unsafe { own(fd) }).collect();
    let expected = sh.cfg.listeners.list();
    if owned.len() != expected.len() {
        // Not what the plan made: serve nothing (the fds close here).
        return;
    }
    let mut tcp: Vec<(Listener, TcpListener)> = Vec::new();
    let mut udp_thread = None;
    for (l, fd) in expected.iter().zip(owned) {
        if l.service == Service::DnsUdp {
            let sock = UdpSocket::from(fd);
            let dsh = sh.clone();
            udp_thread = std::thread::Builder::new()
                .name("cordon-dns".to_string())
                .stack_size(256 * 1024)
                .spawn(move || {
                    dns::serve_udp(&sock, dsh.stop.as_raw_fd(), &|q: &Query| {
                        dns_answer(&dsh, q, "udp")
                    })
                })
                .ok();
            continue;
        }
        let listener = TcpListener::from(fd);
        // Never block in accept (a client gone between poll and accept).
        let _ = listener.set_nonblocking(true);
        tcp.push((*l, listener));
    }
    let workers = accept_loop(sh, &tcp);
    drop(tcp);
    let end = Instant::now() + JOIN_BOUND;
    let mut pause = Duration::from_micros(50);
    let busy = |w: &Vec<JoinHandle<()>>, u: &Option<JoinHandle<()>>| {
        w.iter().any(|w| !w.is_finished()) || u.as_ref().is_some_and(|u| !u.is_finished())
    };
    while busy(&workers, &udp_thread) && Instant::now() < end {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
    for w in workers.into_iter().chain(udp_thread).filter(|w| w.is_finished()) {
        let _ = w.join();
    }
}

/// Accept on every TCP listener until the proxy stops; one thread per
/// connection, at most `max_connections` at once. Returns the workers.
fn accept_loop(sh: &Arc<Shared>, tcp: &[(Listener, TcpListener)]) -> Vec<JoinHandle<()>> {
    let stop = sh.stop.as_raw_fd();
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut polls: Vec<libc::pollfd> = tcp
        .iter()
        .map(|(_, l)| l.as_raw_fd())
        .chain([stop])
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        for p in polls.iter_mut() {
            p.revents = 0;
        }
        match sys::poll(&mut polls, -1) {
            Ok(_) => {}
            Err(e) if e.0 == libc::EINTR => continue,
            Err(_) => break,
        }
        if polls.last().is_some_and(|p| p.revents != 0) {
            break;
        }
        workers.retain(|w| !w.is_finished());
        for (i, (l, listener)) in tcp.iter().enumerate() {
            if polls[i].revents == 0 {
                continue;
            }
            let conn = match listener.accept() {
                Ok((c, _)) => c,
                Err(_) => {
                    // EMFILE and the like: do not spin.
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            if let Some(w) = dispatch(sh, *l, conn) {
                workers.push(w);
            }
        }
    }
    workers
}

/// Start a worker for `conn`, or refuse it when `max_connections` are open.
fn dispatch(sh: &Arc<Shared>, l: Listener, conn: TcpStream) -> Option<JoinHandle<()>> {
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
        let _ = conn.set_nonblocking(true);
        let why = format!("too many connections (network.max_connections = {max})");
        // Other fronts see the close (a SOCKS greeting is not read yet).
        if l.service == Service::Http {
            http::respond(&conn, 503, "Service Unavailable", &why);
        }
        return None;
    }
    sh.active.fetch_add(1, Ordering::AcqRel);
    let worker_sh = sh.clone();
    let spawned = std::thread::Builder::new()
        .name("cordon-proxy-conn".to_string())
        .stack_size(256 * 1024)
        .spawn(move || {
            match l.service {
                Service::Http => serve_http(&worker_sh, conn),
                Service::Socks => serve_socks(&worker_sh, conn),
                Service::Transparent => serve_transparent(&worker_sh, conn, l.port),
                Service::DnsTcp => dns::serve_tcp(
                    conn,
                    worker_sh.stop.as_raw_fd(),
                    worker_sh.cfg.connect_timeout,
                    &|q: &Query| dns_answer(&worker_sh, q, "tcp"),
                ),
                Service::DnsUdp => {}
            }
            worker_sh.active.fetch_sub(1, Ordering::AcqRel);
        });
    match spawned {
        Ok(h) => Some(h),
        Err(_) => {
            sh.active.fetch_sub(1, Ordering::AcqRel);
            None
        }
    }
}

/// The DNS stub's answer: an allowed name gets its fake address (A) or no
/// data (other types; AAAA too, so clients use the IPv4 fake address);
/// `localhost` is 127.0.0.1; every other name NXDOMAIN and one audit line
/// (at most [`DNS_AUDIT_PER_SECOND`] a second). Nothing is forwarded.
fn dns_answer(sh: &Shared, q: &Query, transport: &str) -> Answer {
    const A: u16 = 1;
    if q.name == "localhost" {
        return if q.qtype == A {
            Answer::A(Ipv4Addr::LOCALHOST)
        } else {
            Answer::NoData
        };
    }
    match sh.cfg.rules.decide_name(&q.name) {
        Decision::Allow { .. } if q.qtype == A => {
            let mut fake = sh.fake.lock().unwrap_or_else(|p| p.into_inner());
            match fake.addr_for(&q.name) {
                Some(ip) => Answer::A(ip),
                None => Answer::ServFail,
            }
        }
        Decision::Allow { .. } => Answer::NoData,
        d @ Decision::Deny { .. } => {
            sh.counters.dns_denied.fetch_add(1, Ordering::Relaxed);
            dns_denied_line(sh, q, transport, &d);
            Answer::NxDomain
        }
    }
}

fn dns_denied_line(sh: &Shared, q: &Query, transport: &str, d: &Decision) {
    if sh.audit.is_none() {
        return;
    }
    let now = sh.started.elapsed().as_secs();
    let left_out = {
        let mut b = sh.dns_audit.lock().unwrap_or_else(|p| p.into_inner());
        if b.second != now {
            b.second = now;
            b.written = 0;
        }
        if b.written >= DNS_AUDIT_PER_SECOND {
            b.left_out += 1;
            return;
        }
        b.written += 1;
        std::mem::take(&mut b.left_out)
    };
    let mut fields = vec![
        ("protocol", Value::from(format!("dns-{transport}"))),
        ("name", Value::from(q.name.as_str())),
        ("qtype", Value::from(q.qtype)),
        ("reason", Value::from(d.to_string())),
    ];
    if left_out > 0 {
        fields.push(("left_out", Value::from(left_out)));
    }
    sh.emit("dns.denied", &fields);
}

/// How a front answers: the refusal it sends, and what it sends once the
/// target is connected.
enum Front {
    /// HTTP: CONNECT (`None`) or a plain request with this head to send on.
    Http(Option<Vec<u8>>),
    /// SOCKS5: reply codes.
    Socks,
    /// The transparent relay: nothing to say either way.
    Transparent,
}

/// Why a request was refused, for the front's answer.
#[derive(Clone, Copy)]
enum Refusal {
    /// A malformed request.
    Bad,
    /// The rules or a check.
    Forbidden,
    /// Connecting to the target failed.
    Unreachable,
}

impl Front {
    fn protocol(&self) -> &'static str {
        match self {
            Front::Http(None) => http::CONNECT,
            Front::Http(Some(_)) => "http",
            Front::Socks => socks::PROTOCOL,
            Front::Transparent => "transparent",
        }
    }

    fn refuse(&self, client: &TcpStream, how: Refusal, reason: &str) {
        match (self, how) {
            (Front::Http(_), Refusal::Bad) => http::respond(client, 400, "Bad Request", reason),
            (Front::Http(_), Refusal::Forbidden) => http::respond(client, 403, "Forbidden", reason),
            (Front::Http(_), Refusal::Unreachable) => http::respond(client, 502, "Bad Gateway", reason),
            (Front::Socks, how) => {
                let code = match how {
                    Refusal::Bad => socks::reply::GENERAL_FAILURE,
                    Refusal::Forbidden => socks::reply::NOT_ALLOWED,
                    Refusal::Unreachable => socks::reply::HOST_UNREACHABLE,
                };
                let mut c = client;
                let _ = c.write_all(&socks::reply_bytes(code));
                let _ = client.shutdown(Shutdown::Both);
            }
            (Front::Transparent, _) => {
                let _ = client.shutdown(Shutdown::Both);
            }
        }
    }

    /// Tell the client the tunnel is open (CONNECT, SOCKS5), or send the
    /// request on (plain HTTP): bytes sent upstream.
    fn established(&self, client: &mut TcpStream, upstream: &mut TcpStream) -> std::io::Result<u64> {
        match self {
            Front::Http(None) => client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .map(|_| 0),
            Front::Http(Some(head)) => upstream.write_all(head).map(|_| head.len() as u64),
            Front::Socks => client
                .write_all(&socks::reply_bytes(socks::reply::SUCCEEDED))
                .map(|_| 0),
            Front::Transparent => Ok(0),
        }
    }
}

/// Count, log and answer a refusal. `target`: the host and port, when the
/// request named them.
fn deny(
    sh: &Shared,
    client: &TcpStream,
    front: &Front,
    target: Option<(&str, u16)>,
    resolved: &[IpAddr],
    how: Refusal,
    reason: &str,
) {
    sh.counters.denied.fetch_add(1, Ordering::Relaxed);
    let mut fields = vec![("protocol", Value::from(front.protocol()))];
    if let Some((host, port)) = target {
        fields.push(("target", Value::from(host)));
        fields.push(("port", Value::from(port)));
    }
    fields.push(("resolved", ips_value(resolved)));
    fields.push(("reason", Value::from(reason)));
    sh.emit("network.denied", &fields);
    front.refuse(client, how, reason);
}

fn serve_http(sh: &Shared, mut client: TcpStream) {
    let started = Instant::now();
    let deadline = started + sh.cfg.connect_timeout;
    let _ = client.set_write_timeout(Some(sh.cfg.idle_timeout.max(Duration::from_millis(100))));
    let mut buf = vec![0u8; http::MAX_HEAD];
    let (head_len, read) = match read_head(sh, &mut client, &mut buf, deadline) {
        Ok(x) => x,
        Err((code, text, reason)) => {
            sh.counters.denied.fetch_add(1, Ordering::Relaxed);
            sh.emit(
                "network.denied",
                &[
                    ("protocol", Value::from(http::CONNECT)),
                    ("resolved", Value::Array(Vec::new())),
                    ("reason", Value::from(reason)),
                ],
            );
            http::respond(&client, code, text, reason);
            return;
        }
    };
    let Request { host, port, forward } = match http::parse_request(&buf[..head_len]) {
        Ok(r) => r,
        Err(why) => return deny(sh, &client, &Front::Http(None), None, &[], Refusal::Bad, why),
    };
    let early = buf[head_len..read].to_vec();
    drop(buf);
    connect_checked(sh, client, Front::Http(forward), &host, port, &early, started);
}

fn serve_socks(sh: &Shared, mut client: TcpStream) {
    let started = Instant::now();
    let deadline = started + sh.cfg.connect_timeout;
    let _ = client.set_write_timeout(Some(sh.cfg.idle_timeout.max(Duration::from_millis(100))));
    let req = {
        let mut d = Deadlined {
            conn: &mut client,
            deadline,
        };
        socks::handshake(&mut d)
    };
    let _ = client.set_read_timeout(None);
    match req {
        Ok(r) => connect_checked(sh, client, Front::Socks, &r.host, r.port, &[], started),
        Err(e) => {
            sh.counters.denied.fetch_add(1, Ordering::Relaxed);
            sh.emit(
                "network.denied",
                &[
                    ("protocol", Value::from(socks::PROTOCOL)),
                    ("resolved", Value::Array(Vec::new())),
                    ("reason", Value::from(e.reason)),
                ],
            );
            if let Some(code) = e.code {
                let _ = client.write_all(&socks::reply_bytes(code));
            }
        }
    }
}

/// A connection to `port` on the sandbox's loopback: to a fake address
/// from the DNS stub it goes to the name the address stands for;
/// anything else is closed.
fn serve_transparent(sh: &Shared, client: TcpStream, port: u16) {
    let started = Instant::now();
    let _ = client.set_write_timeout(Some(sh.cfg.idle_timeout.max(Duration::from_millis(100))));
    let local = match client.local_addr() {
        Ok(a) => a.ip(),
        Err(_) => return,
    };
    let host = local.to_string();
    connect_checked(sh, client, Front::Transparent, &host, port, &[], started);
}

/// A reader whose every read ends by `deadline` (SO_RCVTIMEO set to what
/// is left before each read).
struct Deadlined<'a> {
    conn: &'a mut TcpStream,
    deadline: Instant,
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.conn.set_read_timeout(Some(left))?;
        self.conn.read(buf)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.conn.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.conn.flush()
    }
}

/// The target the payload named: a fake address from the DNS stub stands
/// for its name. `Err`: the reason for the refusal.
fn target_of(sh: &Shared, host: &str, port: u16) -> Result<Target, String> {
    let mut target =
        Target::parse(host, port).map_err(|r| format!("target {:?} refused: {}", r.literal, r.reason))?;
    if let Host::Ip(ip) = target.host {
        if dns::is_fake(ip) {
            let v4 = match ip {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(a) => a.to_ipv4_mapped(),
            };
            let fake = sh.fake.lock().unwrap_or_else(|p| p.into_inner());
            match v4.and_then(|a| fake.name_for(a)) {
                Some(name) => target.host = Host::Name(name.to_string()),
                None => {
                    return Err(format!(
                    "{ip} is in cordon's fake address range 127.1.0.0/16 but the DNS stub gave it to no name"
                ))
                }
            }
        }
    }
    Ok(target)
}

/// Decide on the target, connect to exactly the checked address and relay:
/// the part every front shares. `early`: bytes the client sent after its
/// request, passed on first.
fn connect_checked(
    sh: &Shared,
    mut client: TcpStream,
    front: Front,
    host: &str,
    port: u16,
    early: &[u8],
    started: Instant,
) {
    let deadline = started + sh.cfg.connect_timeout;
    let target = match target_of(sh, host, port) {
        Ok(t) => t,
        Err(why) => {
            return deny(
                sh,
                &client,
                &front,
                Some((host, port)),
                &[],
                Refusal::Forbidden,
                &why,
            )
        }
    };
    let host_text = match &target.host {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => ip.to_string(),
    };
    let named = Some((host_text.as_str(), port));
    // A name no rule allows (or a rule denies) is never resolved.
    let early_decision = sh.cfg.rules.decide(&target, &[]);
    if let Decision::Deny {
        reason: DenyReason::NoAllowRule | DenyReason::DenyRule { .. },
    } = early_decision
    {
        return deny(
            sh,
            &client,
            &front,
            named,
            &[],
            Refusal::Forbidden,
            &early_decision.to_string(),
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
            return deny(
                sh,
                &client,
                &front,
                named,
                &resolved,
                Refusal::Forbidden,
                &decision.to_string(),
            )
        }
    };
    allowed(sh, front.protocol(), &host_text, port, &resolved, rule);
    // Exactly the first checked address, never resolved again.
    let addr = SocketAddr::new(resolved[0], port);
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let (up, down, error) = connect_and_relay(sh, &mut client, &front, addr, left, early);
    sh.counters.up.fetch_add(up, Ordering::Relaxed);
    sh.counters.down.fetch_add(down, Ordering::Relaxed);
    let mut fields = vec![
        ("protocol", Value::from(front.protocol())),
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

/// Connect to exactly `addr` (within `left`), tell the client (or send the
/// request on), pass on `early`, and relay both ways: (bytes up, bytes
/// down, the connect error).
fn connect_and_relay(
    sh: &Shared,
    client: &mut TcpStream,
    front: &Front,
    addr: SocketAddr,
    left: Duration,
    early: &[u8],
) -> (u64, u64, Option<String>) {
    match TcpStream::connect_timeout(&addr, left) {
        Err(e) => {
            let why = format!("connecting to {addr}: {e}");
            front.refuse(client, Refusal::Unreachable, &why);
            (0, 0, Some(why))
        }
        Ok(mut upstream) => {
            let _ = upstream.set_nodelay(true);
            let _ = upstream.set_write_timeout(Some(sh.cfg.idle_timeout.max(Duration::from_millis(100))));
            match front
                .established(client, &mut upstream)
                .and_then(|pre| upstream.write_all(early).map(|_| pre))
            {
                Err(_) => (0, 0, None),
                Ok(pre) => {
                    let (u, d) = relay(sh, client, &mut upstream);
                    (u + pre + early.len() as u64, d, None)
                }
            }
        }
    }
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
        if let Some(end) = http::find_head_end(&buf[..n]) {
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
