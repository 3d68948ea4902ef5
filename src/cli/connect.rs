//! `cordon connect HOST PORT`: a tunnel through cordon's egress proxy on
//! standard input and output, for programs that take a command to carry
//! their connection (ssh's `ProxyCommand='cordon connect %h %p'`).
//!
//! It connects to the proxy (`$CORDON_PROXY` as `ADDRESS:PORT`, by default
//! 127.0.0.1:3128, where a sandbox in network mode `proxy` has it), asks
//! for `CONNECT HOST:PORT`, and on `200` relays standard input to the
//! tunnel and the tunnel to standard output until both directions have
//! ended: the end of input half-closes the tunnel, and the end of the
//! tunnel ends standard output (its reader, such as ssh, waits for that
//! before it ends our input). The proxy's answer is read with bounds
//! ([`MAX_HEAD`], [`HEAD_TIMEOUT`]): the proxy is trusted no more than the
//! network behind it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The proxy's address when `CORDON_PROXY` is unset or empty.
pub const DEFAULT_PROXY: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3128);

/// The largest answer head (status line, headers and the blank line) read
/// from the proxy.
pub const MAX_HEAD: usize = 8 * 1024;

/// How long connecting to the proxy, and then its answer, may take.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit status: the proxy refused the target (any answer but 200).
pub const EXIT_REFUSED: i32 = 1;

/// Exit status: anything else went wrong (arguments, `CORDON_PROXY`, the
/// proxy cannot be reached or answers what is not HTTP, the relay fails).
pub const EXIT_ERROR: i32 = 125;

/// The longest host name (RFC 1035: 253 characters without a final dot).
const MAX_NAME: usize = 253;

/// Where to connect: the `HOST:PORT` of a CONNECT request, an IPv6
/// address in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    authority: String,
}

impl Target {
    /// Check `host` (a host name, an IPv4 address in dotted-decimal form,
    /// or an IPv6 address with or without brackets) and `port` (decimal,
    /// 1 to 65535).
    pub fn parse(host: &str, port: &str) -> Result<Target, String> {
        let host = parse_host(host)?;
        let port = parse_port(port)?;
        let authority = match host {
            Host::V6(a) => format!("[{a}]:{port}"),
            Host::V4(a) => format!("{a}:{port}"),
            Host::Name(n) => format!("{n}:{port}"),
        };
        Ok(Target { authority })
    }

    /// `HOST:PORT` as sent to the proxy.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The request that asks the proxy for a tunnel.
    fn request(&self) -> String {
        let a = &self.authority;
        format!("CONNECT {a} HTTP/1.1\r\nHost: {a}\r\n\r\n")
    }
}

enum Host {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Name(String),
}

fn parse_port(port: &str) -> Result<u16, String> {
    let valid = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(p) if valid && p != 0 => Ok(p),
        _ => Err(format!(
            "invalid port {}: a decimal number from 1 to 65535",
            quoted(port)
        )),
    }
}

fn parse_host(host: &str) -> Result<Host, String> {
    let bad = |why: &str| Err(format!("invalid host {}: {why}", quoted(host)));
    if host.is_empty() {
        return bad("empty");
    }
    let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Some(v6) = inner.or(host.contains(':').then_some(host)) {
        return match v6.parse::<Ipv6Addr>() {
            Ok(a) => Ok(Host::V6(a)),
            Err(_) => bad("not an IPv6 address (zone ids such as %eth0 are not accepted)"),
        };
    }
    // Only the dotted-decimal form of IPv4, four parts: the proxy refuses
    // the forms an address can hide in (0x7f.1, 2130706433, 127.1, 0177.0.0.1).
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match host.parse::<Ipv4Addr>() {
            Ok(a) => Ok(Host::V4(a)),
            Err(_) => bad("not an IPv4 address in dotted-decimal form (four numbers 0 to 255)"),
        };
    }
    if host.len() > MAX_NAME {
        return bad("longer than 253 characters");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return bad("an empty label (two dots, or a dot at the start or end)");
        }
        if label.len() > 63 {
            return bad("a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("a host name has only letters, digits, '-', '_' and dots");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
    }
    if host
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("a name whose last label is a number looks like an IPv4 address");
    }
    Ok(Host::Name(host.to_string()))
}

/// `s` in quotes, with control characters escaped and at most 80
/// characters shown (arguments are echoed into a single line).
fn quoted(s: &str) -> String {
    let shown: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    let more = if s.chars().count() > 80 { "..." } else { "" };
    format!("\"{shown}{more}\"")
}

/// The proxy's address: `value` (`CORDON_PROXY`) as `ADDRESS:PORT` with an
/// IP address (IPv6 in brackets), or [`DEFAULT_PROXY`] when unset or empty.
pub fn proxy_address(value: Option<&str>) -> Result<SocketAddr, String> {
    match value {
        None | Some("") => Ok(DEFAULT_PROXY),
        Some(v) => v.parse::<SocketAddr>().map_err(|_| {
            format!(
                "CORDON_PROXY={}: not ADDRESS:PORT with an IP address (such as 127.0.0.1:3128 or [::1]:3128)",
                quoted(v)
            )
        }),
    }
}

/// What the proxy answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200: the tunnel is open; the bytes read after the head belong to it.
    Open(Vec<u8>),
    /// Any other status: the `X-Cordon-Denied` value, or the status line.
    Refused(String),
}

/// Read the proxy's answer head from `r` (at most [`MAX_HEAD`] bytes with
/// its blank line, by `deadline`) and judge it.
pub fn read_answer(r: &mut impl ReadWithDeadline, deadline: Instant) -> Result<Answer, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() >= MAX_HEAD {
            return Err(format!("the proxy's answer head is longer than {MAX_HEAD} bytes"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the proxy did not answer within {} s",
                HEAD_TIMEOUT.as_secs()
            ));
        }
        // Never read past the bound (want > 0: buf is shorter than it).
        let want = chunk.len().min(MAX_HEAD - buf.len());
        match r.read_by(&mut chunk[..want], left) {
            Ok(0) => return Err("the proxy closed the connection without an answer".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("reading the proxy's answer: {e}")),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("the proxy answered what is not HTTP: {}", quoted(status)));
    }
    if code == "200" {
        return Ok(Answer::Open(buf[end + 4..].to_vec()));
    }
    let denied = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("x-cordon-denied")
            .then(|| value.trim().to_string())
    });
    let why = denied
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| status.to_string());
    Ok(Answer::Refused(one_line(&why)))
}

/// Control characters replaced by spaces: the reason is printed as one line.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A reader whose reads can be bounded in time (a socket; a slice in tests).
pub trait ReadWithDeadline {
    /// Read into `buf`, waiting at most `timeout`.
    fn read_by(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
}

impl ReadWithDeadline for TcpStream {
    fn read_by(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // A zero timeout is refused by set_read_timeout; read_answer never
        // passes one.
        self.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        self.read(buf)
    }
}

impl ReadWithDeadline for &[u8] {
    fn read_by(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        self.read(buf)
    }
}

/// Copy the tunnel to standard output, flushing every chunk (an
/// interactive protocol waits for each).
fn downstream(mut sock: &TcpStream, first: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(first)?;
    out.flush()?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
}

/// End standard output for its reader while fd 1 stays open (on
/// /dev/null), so that nothing else can come to be fd 1.
fn end_stdout() -> io::Result<()> {
    io::stdout().lock().flush()?;
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // SAFETY: dup2 changes only the fd table: `null` is an open fd we own
    // and keep until after the call, and fd 1 is standard output, which no
    // Rust object owns (the global Stdout borrows it and goes on writing to
    // fd 1, now /dev/null; it was flushed above). Nothing is freed or
    // aliased in memory.
    let r = unsafe { libc::dup2(null.as_raw_fd(), 1) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Copy standard input into the tunnel; at its end, half-close the tunnel
/// (the other side sees EOF and may still answer).
fn upstream(mut sock: &TcpStream) -> io::Result<()> {
    let copied = io::copy(&mut io::stdin().lock(), &mut sock);
    let shut = sock.shutdown(Shutdown::Write);
    copied.and(shut)
}

/// `cordon connect HOST PORT`: the exit status (0 when both directions
/// ended, [`EXIT_REFUSED`], [`EXIT_ERROR`]); messages go to standard error.
pub fn main(host: &str, port: &str) -> i32 {
    let target = match Target::parse(host, port) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let env = std::env::var_os("CORDON_PROXY");
    let env = match env.as_deref().map(|v| v.to_str()) {
        None => None,
        Some(Some(v)) => Some(v),
        Some(None) => return fail("CORDON_PROXY is not valid UTF-8"),
    };
    let proxy = match proxy_address(env) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let mut sock = match TcpStream::connect_timeout(&proxy, HEAD_TIMEOUT) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot connect to the proxy at {proxy}: {e}")),
    };
    let _ = sock.set_nodelay(true);
    if let Err(e) = sock.write_all(target.request().as_bytes()) {
        return fail(&format!("sending the request to the proxy at {proxy}: {e}"));
    }
    let first = match read_answer(&mut sock, deadline) {
        Ok(Answer::Open(first)) => first,
        Ok(Answer::Refused(why)) => {
            eprintln!(
                "cordon connect: {} refused by the proxy: {why}",
                target.authority()
            );
            return EXIT_REFUSED;
        }
        Err(e) => return fail(&e),
    };
    // The tunnel is open: no time limit any more (an ssh session may idle).
    if let Err(e) = sock.set_read_timeout(None) {
        return fail(&format!("the tunnel: {e}"));
    }
    let up = match sock.try_clone() {
        Ok(w) => std::thread::spawn(move || upstream(&w)),
        Err(e) => return fail(&format!("the tunnel: {e}")),
    };
    // The tunnel's end towards us ends the run once standard input has
    // ended too; a failure to deliver ends it at once (returning does not
    // wait for the input thread, which may be blocked reading).
    if let Err(e) = downstream(&sock, &first) {
        return fail(&format!("{}: receiving: {e}", target.authority()));
    }
    // The reader of standard output (ssh) waits for its end before it ends
    // our input: end it now. Where that fails, returning ends it.
    if let Err(e) = end_stdout() {
        return fail(&format!("ending standard output: {e}"));
    }
    match up.join() {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => fail(&format!("{}: sending: {e}", target.authority())),
        Err(_) => fail("the input thread panicked"),
    }
}

fn fail(msg: &str) -> i32 {
    eprintln!("cordon connect: {msg}");
    EXIT_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(h: &str, p: &str) -> Result<String, String> {
        Target::parse(h, p).map(|t| t.authority().to_string())
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(auth("example.com", "22").unwrap(), "example.com:22");
        assert_eq!(
            auth("git_host-1.internal", "65535").unwrap(),
            "git_host-1.internal:65535"
        );
        assert_eq!(auth("127.0.0.1", "1").unwrap(), "127.0.0.1:1");
        assert_eq!(auth("::1", "22").unwrap(), "[::1]:22");
        assert_eq!(auth("[2001:db8::1]", "443").unwrap(), "[2001:db8::1]:443");
        for (h, p) in [
            ("example.com", "0"),
            ("example.com", "65536"),
            ("example.com", "+22"),
            ("example.com", " 22"),
            ("example.com", "022222"),
            ("example.com", ""),
            ("", "22"),
            ("a..b", "22"),
            ("example.com.", "22"),
            (".example.com", "22"),
            ("-a.example", "22"),
            ("a-.example", "22"),
            ("a b", "22"),
            ("a\r\nHost: x", "22"),
            ("a/b", "22"),
            ("user@host", "22"),
            ("2130706433", "22"),
            ("127.1", "22"),
            ("0x7f.0.0.1", "22"),
            ("1.2.3.256", "22"),
            ("1.2.3.4.5", "22"),
            ("fe80::1%eth0", "22"),
            ("[::1", "22"),
            ("::1]", "22"),
            ("1.2.3.4:80", "22"),
        ] {
            assert!(auth(h, p).is_err(), "{h:?} {p:?} accepted");
        }
        assert!(auth(&"a".repeat(64), "22").is_err());
        assert!(auth(&["a"; 128].join("."), "22").is_err());
        assert!(auth(&["a"; 127].join("."), "22").is_ok());
        let e = auth("a\nb", "22").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(auth(&"x".repeat(1000), "22").unwrap_err().len() < 200);
    }

    #[test]
    fn the_proxy_address() {
        assert_eq!(proxy_address(None).unwrap(), DEFAULT_PROXY);
        assert_eq!(proxy_address(Some("")).unwrap(), DEFAULT_PROXY);
        assert_eq!(
            proxy_address(Some("10.0.0.1:8080")).unwrap(),
            "10.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            proxy_address(Some("[::1]:3128")).unwrap(),
            "[::1]:3128".parse().unwrap()
        );
        for bad in [
            "localhost:3128",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "::1:3128",
        ] {
            assert!(proxy_address(Some(bad)).is_err(), "{bad}");
        }
    }

    fn answer(bytes: &[u8]) -> Result<Answer, String> {
        let mut r = bytes;
        read_answer(&mut r, Instant::now() + HEAD_TIMEOUT)
    }

    #[test]
    fn answers() {
        assert_eq!(
            answer(b"HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0"),
            Ok(Answer::Open(b"SSH-2.0".to_vec()))
        );
        assert_eq!(
            answer(b"HTTP/1.0 200 OK\r\nX: y\r\n\r\n"),
            Ok(Answer::Open(Vec::new()))
        );
        assert_eq!(
            answer(b"HTTP/1.1 403 Forbidden\r\nx-cordon-denied:  no rule \r\n\r\nbody"),
            Ok(Answer::Refused("no rule".into()))
        );
        assert_eq!(
            answer(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
            Ok(Answer::Refused(
                "HTTP/1.1 407 Proxy Authentication Required".into()
            ))
        );
        assert_eq!(
            answer(b"HTTP/1.1 403 Forbidden\r\nX-Cordon-Denied: a\x1bb\r\n\r\n"),
            Ok(Answer::Refused("a b".into()))
        );
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"",
        ] {
            assert!(answer(bad).is_err(), "{bad:?}");
        }
        // A head of exactly the bound is read; one byte more is refused,
        // and an endless one is not read past the bound.
        let head = |n: usize| {
            let mut h = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
            h.resize(n - 4, b'a');
            h.extend_from_slice(b"\r\n\r\n");
            h
        };
        assert!(matches!(answer(&head(MAX_HEAD)), Ok(Answer::Open(_))));
        assert!(answer(&head(MAX_HEAD + 1)).is_err());
        let endless = vec![b'a'; 10 * MAX_HEAD];
        let mut r = &endless[..];
        assert!(read_answer(&mut r, Instant::now() + HEAD_TIMEOUT).is_err());
        assert_eq!(r.len(), 9 * MAX_HEAD);
    }
}
