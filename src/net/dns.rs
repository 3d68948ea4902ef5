//! The DNS stub's protocol (mode `proxy`): the sandbox's resolver is a stub
//! on 127.0.0.1:53 (UDP and TCP) served by the supervisor. It answers the
//! names the egress rules allow with stable fake addresses from
//! 127.1.0.0/16 (the proxy maps a fake address back to its name when the
//! payload connects to it) and NXDOMAIN for everything else; it never
//! forwards a query anywhere.
//!
//! This module is the pure part and the serving loops: the query parser
//! ([`parse_query`]), the replies ([`reply`], [`error_reply`]), the fake
//! address map ([`FakeMap`]) and the loops ([`serve_udp`], [`serve_tcp`]),
//! which know nothing of the rules: a callback decides each [`Answer`].
//!
//! Every query is hostile input. The parser takes one question of plain
//! labels (`[A-Za-z0-9_-]`, 1..=63 bytes each, at most 253 characters in
//! text form): a name with any other byte matches no egress rule, and is
//! refused before it can reach a log. Compression pointers are refused in
//! the question (no client sends them there). Every reply is built from
//! the query's own question bytes plus at most one 16-byte answer, so it
//! is never over 512 bytes ([`MAX_MESSAGE`], checked at compile time).
//!
//! Checked by hand against glibc 2.36 (`getent hosts`/`ahosts`, Python's
//! `getaddrinfo`) in a network namespace with only `lo`, over UDP and over
//! TCP (`options use-vc`). One trap for the wiring: glibc's
//! `AI_ADDRCONFIG` does not count 127.0.0.1, so with only that address an
//! `AF_INET` lookup with `AI_ADDRCONFIG` (`getent ahostsv4`) fails without
//! asking the stub; one more IPv4 address on `lo` (e.g. 127.1.255.255/16,
//! inside the fake range) makes it ask.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sys;

/// The largest DNS message the stub reads or writes (the classic UDP
/// limit; no EDNS buffer size is honoured: our replies are tiny).
pub const MAX_MESSAGE: usize = 512;

/// The longest name in text form (without the trailing dot).
pub const MAX_NAME: usize = 253;

/// The longest label.
pub const MAX_LABEL: usize = 63;

/// TYPE A.
pub const TYPE_A: u16 = 1;
/// TYPE AAAA.
pub const TYPE_AAAA: u16 = 28;
/// CLASS IN.
pub const CLASS_IN: u16 = 1;

/// The TTL of an answer, in seconds. The fake addresses never change
/// during a run, so any TTL is correct; a short one keeps caches small.
pub const TTL: u32 = 60;

/// RCODE NOERROR.
pub const RCODE_NOERROR: u8 = 0;
/// RCODE FORMERR.
pub const RCODE_FORMERR: u8 = 1;
/// RCODE SERVFAIL.
pub const RCODE_SERVFAIL: u8 = 2;
/// RCODE NXDOMAIN.
pub const RCODE_NXDOMAIN: u8 = 3;
/// RCODE NOTIMP.
pub const RCODE_NOTIMP: u8 = 4;
/// RCODE REFUSED.
pub const RCODE_REFUSED: u8 = 5;

const HEADER: usize = 12;
/// A question's wire form: a name of at most 255 bytes (253 characters,
/// one more length byte than dots, the root's 0), QTYPE and QCLASS.
const MAX_QUESTION: usize = MAX_NAME + 2 + 4;
/// One A record: pointer to the question's name, TYPE, CLASS, TTL,
/// RDLENGTH, 4 bytes of address.
const ANSWER_A: usize = 2 + 2 + 2 + 4 + 2 + 4;

// Every reply is a header, the query's question and at most one A record.
const _: () = assert!(HEADER + MAX_QUESTION + ANSWER_A <= MAX_MESSAGE);

// Header flag bits (in the 16-bit flags word).
const QR: u16 = 0x8000;
const OPCODE_MASK: u16 = 0x7800;
const AA: u16 = 0x0400;
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;

/// One query, as [`parse_query`] read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The message id, echoed in the reply.
    pub id: u16,
    /// The name asked for, lowercase, without the trailing dot: only
    /// `[a-z0-9_-]` labels joined by dots, at most [`MAX_NAME`] long.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Recursion desired (echoed in the reply).
    pub rd: bool,
    /// The question section exactly as received (name, QTYPE, QCLASS),
    /// echoed in the reply.
    question: Vec<u8>,
}

impl Query {
    /// The question section exactly as received (at most 259 bytes).
    pub fn question_wire(&self) -> &[u8] {
        &self.question
    }
}

/// Why a query is refused, and so what its reply is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// No reply at all: shorter than a header, or not a query (QR = 1: a
    /// response; answering responses could make two servers bounce
    /// messages between them forever).
    Drop,
    /// The header is readable but the message is malformed or not what a
    /// normal client sends: FORMERR with the same id.
    FormErr,
    /// An opcode other than QUERY: NOTIMP with the same id.
    NotImp,
}

impl ParseError {
    /// The rcode of the reply ([`error_reply`]), `None` for no reply.
    pub fn rcode(self) -> Option<u8> {
        match self {
            ParseError::Drop => None,
            ParseError::FormErr => Some(RCODE_FORMERR),
            ParseError::NotImp => Some(RCODE_NOTIMP),
        }
    }
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

/// Parse one query: a header (QR 0, opcode QUERY, QDCOUNT 1, ANCOUNT and
/// NSCOUNT 0, ARCOUNT at most 1 — an EDNS OPT record, which is ignored,
/// as is anything after the question) and one question whose name is
/// plain labels (see the module's documentation).
pub fn parse_query(msg: &[u8]) -> Result<Query, ParseError> {
    if msg.len() < HEADER {
        return Err(ParseError::Drop);
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & QR != 0 {
        return Err(ParseError::Drop);
    }
    if flags & OPCODE_MASK != 0 {
        return Err(ParseError::NotImp);
    }
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]);
    if count(0) != 1 || count(1) != 0 || count(2) != 0 || count(3) > 1 {
        return Err(ParseError::FormErr);
    }
    let mut name = String::new();
    let mut at = HEADER;
    loop {
        let len = *msg.get(at).ok_or(ParseError::FormErr)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        // 0xC0: a compression pointer; 0x40 and 0x80: extended label
        // types (obsolete). Refused, all of them: a label is 1..=63 bytes.
        if len > MAX_LABEL {
            return Err(ParseError::FormErr);
        }
        let label = msg.get(at..at + len).ok_or(ParseError::FormErr)?;
        at += len;
        let dot = usize::from(!name.is_empty());
        if name.len() + dot + len > MAX_NAME {
            return Err(ParseError::FormErr);
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ParseError::FormErr);
        }
        if dot == 1 {
            name.push('.');
        }
        name.extend(label.iter().map(|&b| char::from(b.to_ascii_lowercase())));
    }
    if name.is_empty() {
        return Err(ParseError::FormErr);
    }
    let qtype = be16(msg, at).ok_or(ParseError::FormErr)?;
    let qclass = be16(msg, at + 2).ok_or(ParseError::FormErr)?;
    at += 4;
    Ok(Query {
        id,
        name,
        qtype,
        qclass,
        rd: flags & RD != 0,
        question: msg[HEADER..at].to_vec(),
    })
}

/// What the stub answers to one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// NOERROR with one A record (only for QTYPE A, QCLASS IN: for any
    /// other question [`reply`] sends [`Answer::NoData`] instead).
    A(Ipv4Addr),
    /// NOERROR, no answer: the name exists but has no record of this
    /// type (AAAA and every other type of an allowed name).
    NoData,
    /// NXDOMAIN: no such name (a name no rule allows).
    NxDomain,
    /// REFUSED.
    Refused,
    /// SERVFAIL (e.g. the fake address range is full).
    ServFail,
}

fn header(id: u16, flags: u16, qd: u16, an: u16) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..2].copy_from_slice(&id.to_be_bytes());
    h[2..4].copy_from_slice(&flags.to_be_bytes());
    h[4..6].copy_from_slice(&qd.to_be_bytes());
    h[6..8].copy_from_slice(&an.to_be_bytes());
    h
}

/// The reply to `q`: its id and RD echoed, QR = 1, opcode QUERY, AA = 1,
/// RA = 1, the rcode of `ans`, the question section exactly as received
/// and, for [`Answer::A`], one answer record (its name a compression
/// pointer to the question's, TYPE A, CLASS IN, TTL [`TTL`]).
///
/// AA = 1 and RA = 1: the stub is the final word on every name, and to
/// the payload's resolver it is a recursive server. glibc's `res_send`
/// (and Go's resolver, which copies it) treats a NOERROR reply with no
/// answer, AA = 0 and RA = 0 as a lame referral and tries the next server,
/// so a NoData would turn into a failure; AA = 1 alone avoids that, and
/// RA = 1 keeps tools like `dig` from warning that recursion was refused.
///
/// At most `12 + 259 + 16` bytes, never over [`MAX_MESSAGE`].
pub fn reply(q: &Query, ans: Answer) -> Vec<u8> {
    let ans = match ans {
        Answer::A(_) if q.qtype != TYPE_A || q.qclass != CLASS_IN => Answer::NoData,
        other => other,
    };
    let rcode = match ans {
        Answer::A(_) | Answer::NoData => RCODE_NOERROR,
        Answer::NxDomain => RCODE_NXDOMAIN,
        Answer::Refused => RCODE_REFUSED,
        Answer::ServFail => RCODE_SERVFAIL,
    };
    let rd = if q.rd { RD } else { 0 };
    let an = u16::from(matches!(ans, Answer::A(_)));
    let mut out = Vec::with_capacity(HEADER + q.question.len() + ANSWER_A);
    out.extend_from_slice(&header(q.id, QR | AA | rd | RA | u16::from(rcode), 1, an));
    out.extend_from_slice(&q.question);
    if let Answer::A(ip) = ans {
        out.extend_from_slice(&[0xC0, HEADER as u8]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    debug_assert!(out.len() <= MAX_MESSAGE);
    out
}

/// The reply to a malformed query whose header is readable: its id, opcode
/// and RD echoed, QR = 1, RA = 1, `rcode`, no section at all (QDCOUNT 0:
/// the question is what was malformed). `None` when there is nothing to
/// answer: shorter than a header, or a response (QR = 1).
pub fn error_reply(msg: &[u8], rcode: u8) -> Option<Vec<u8>> {
    if msg.len() < HEADER {
        return None;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & QR != 0 {
        return None;
    }
    let keep = flags & (OPCODE_MASK | RD);
    Some(header(id, QR | keep | RA | u16::from(rcode & 0x0F), 0, 0).to_vec())
}

/// The fake address range: 127.1.0.0/16 ([`FAKE_PREFIX`]).
pub const FAKE_NET: Ipv4Addr = Ipv4Addr::new(127, 1, 0, 0);
/// The fake range's prefix length.
pub const FAKE_PREFIX: u8 = 16;
/// How many names the fake range holds: 127.1.0.1 ..= 127.1.255.254.
pub const FAKE_CAPACITY: usize = 65534;

/// Whether `ip` is in the fake range (127.1.0.0/16, or the same as an
/// IPv4-mapped IPv6 address), handed out or not.
pub fn is_fake(ip: IpAddr) -> bool {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => return false,
        },
    };
    v4.octets()[..2] == FAKE_NET.octets()[..2]
}

/// Names and their fake addresses, both ways: the stub hands out
/// 127.1.0.1, 127.1.0.2, … in order, one per new name, and the same name
/// always gets the same address, for the whole run.
///
/// Memory is bounded by the range: at most [`FAKE_CAPACITY`] names (or the
/// lower limit given to [`FakeMap::with_limit`]) of at most [`MAX_NAME`]
/// bytes each, every name stored once (shared by both directions), so
/// about 20 MB at the very worst (a payload asking for 65534 distinct
/// 253-character names a wildcard rule allows). Once full, a new name
/// gets no address ([`FakeMap::addr_for`] is `None`: answer SERVFAIL)
/// while the names already mapped keep theirs.
#[derive(Debug)]
pub struct FakeMap {
    by_name: HashMap<Arc<str>, u16>,
    /// `by_index[i]` has the address `FAKE_NET + i + 1`.
    by_index: Vec<Arc<str>>,
    limit: usize,
}

impl Default for FakeMap {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeMap {
    /// An empty map for the whole range.
    pub fn new() -> Self {
        Self::with_limit(FAKE_CAPACITY)
    }

    /// An empty map that holds at most `limit` names (at most
    /// [`FAKE_CAPACITY`]).
    pub fn with_limit(limit: usize) -> Self {
        FakeMap {
            by_name: HashMap::new(),
            by_index: Vec::new(),
            limit: limit.min(FAKE_CAPACITY),
        }
    }

    /// How many names are mapped.
    pub fn len(&self) -> usize {
        self.by_index.len()
    }

    /// Whether no name is mapped.
    pub fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    /// The fake address of `name` (as [`parse_query`] returns names:
    /// lowercase, no trailing dot), a new one for a name not seen before;
    /// `None` when the map is full.
    pub fn addr_for(&mut self, name: &str) -> Option<Ipv4Addr> {
        if let Some(&i) = self.by_name.get(name) {
            return Some(Self::addr(i));
        }
        if self.by_index.len() >= self.limit {
            return None;
        }
        let i = u16::try_from(self.by_index.len()).ok()?;
        let name: Arc<str> = Arc::from(name);
        self.by_index.push(Arc::clone(&name));
        self.by_name.insert(name, i);
        Some(Self::addr(i))
    }

    /// The name `ip` was handed out for, if it was.
    pub fn name_for(&self, ip: Ipv4Addr) -> Option<&str> {
        if !is_fake(IpAddr::V4(ip)) {
            return None;
        }
        let [_, _, hi, lo] = ip.octets();
        let offset = usize::from(u16::from_be_bytes([hi, lo]));
        self.by_index.get(offset.checked_sub(1)?).map(|n| &**n)
    }

    fn addr(i: u16) -> Ipv4Addr {
        // i < FAKE_CAPACITY = 65534, so i + 1 <= 65534: never .255.255.
        let [hi, lo] = (i + 1).to_be_bytes();
        let [a, b, _, _] = FAKE_NET.octets();
        Ipv4Addr::new(a, b, hi, lo)
    }
}

/// How many queries one TCP connection may send; then it is closed.
pub const TCP_MAX_QUERIES: usize = 16;

/// The longest a TCP connection may last, whatever deadline is given.
const TCP_MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// The reply to one message (a query or not), built with `handle`'s
/// answer; `None` when it gets none (see [`ParseError::Drop`]).
pub fn answer_message(msg: &[u8], handle: &dyn Fn(&Query) -> Answer) -> Option<Vec<u8>> {
    match parse_query(msg) {
        Ok(q) => Some(reply(&q, handle(&q))),
        Err(e) => error_reply(msg, e.rcode()?),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Ready,
    Timeout,
    Stop,
}

/// Wait until `fd` is readable (or has an error or hang-up to report),
/// `stop` is readable or hung up (`Stop`), or `timeout` passes. A poll
/// failure or an invalid fd is `Stop`.
fn wait(fd: RawFd, stop: RawFd, timeout: Option<Duration>) -> Wait {
    // Rounded up: poll never wakes before the deadline (a caller that
    // checks the time afterwards would otherwise loop once more, or not
    // at all).
    let ms = timeout.map_or(-1, |t| {
        let up = t.as_micros().div_ceil(1000);
        up.clamp(1, i32::MAX as u128) as i32
    });
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
        Ok(_) if p[1].revents != 0 || p[0].revents & libc::POLLNVAL != 0 => Wait::Stop,
        Ok(_) => Wait::Ready,
        Err(_) => Wait::Stop,
    }
}

/// Serve DNS over UDP on `sock` until `stop` is readable or hung up (the
/// write end of a pipe closed), or the socket fails.
///
/// One datagram at a time: it is read into a buffer one byte larger than
/// [`MAX_MESSAGE`] (a longer datagram, which the kernel truncates, gets
/// FORMERR), answered through [`answer_message`] (`handle` decides every
/// well-formed query) and the reply is sent to the sender. The socket is
/// made nonblocking: the loop blocks only in poll(2), and a reply that
/// cannot be sent at once is dropped (the client asks again).
pub fn serve_udp(sock: &UdpSocket, stop: RawFd, handle: &dyn Fn(&Query) -> Answer) {
    if sock.set_nonblocking(true).is_err() {
        return;
    }
    let mut buf = [0u8; MAX_MESSAGE + 1];
    loop {
        if wait(sock.as_raw_fd(), stop, None) != Wait::Ready {
            return;
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) => match e.kind() {
                ErrorKind::WouldBlock
                | ErrorKind::Interrupted
                | ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset => continue,
                _ => return,
            },
        };
        let msg = &buf[..n];
        let out = if n > MAX_MESSAGE {
            error_reply(msg, RCODE_FORMERR)
        } else {
            answer_message(msg, handle)
        };
        if let Some(out) = out {
            // Nonblocking: a full socket buffer drops the reply.
            let _ = sock.send_to(&out, from);
        }
    }
}

/// Serve one DNS-over-TCP connection (RFC 7766 framing: each message
/// preceded by its length, 2 bytes big-endian), then close it.
///
/// Bounded in every way: at most [`TCP_MAX_QUERIES`] queries; a message
/// longer than [`MAX_MESSAGE`] (or empty) closes the connection, as does
/// one that gets no reply ([`ParseError::Drop`]); `deadline` bounds the
/// whole connection (every read waits at most until it passes, and every
/// write is bounded by a write timeout of the time left), at most an
/// hour; `stop` readable or hung up ends it at once. Reads happen only
/// after poll(2) said the socket is readable.
pub fn serve_tcp(conn: TcpStream, stop: RawFd, deadline: Duration, handle: &dyn Fn(&Query) -> Answer) {
    let end = Instant::now() + deadline.min(TCP_MAX_LIFETIME);
    // Blocking, so that the write timeout applies.
    if conn.set_nonblocking(false).is_err() {
        return;
    }
    let _ = conn.set_nodelay(true);
    let mut buf = [0u8; MAX_MESSAGE];
    for _ in 0..TCP_MAX_QUERIES {
        let mut len = [0u8; 2];
        if !read_until(&conn, &mut len, stop, end) {
            return;
        }
        let n = usize::from(u16::from_be_bytes(len));
        if n == 0 || n > MAX_MESSAGE {
            return;
        }
        if !read_until(&conn, &mut buf[..n], stop, end) {
            return;
        }
        let Some(out) = answer_message(&buf[..n], handle) else {
            return;
        };
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_write_timeout(Some(left)).is_err() {
            return;
        }
        let mut framed = Vec::with_capacity(2 + out.len());
        // out.len() <= MAX_MESSAGE: fits in the 2-byte length.
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        if (&conn).write_all(&framed).is_err() {
            return;
        }
    }
}

/// Fill `buf` from `conn`, reading only when poll(2) says it is readable;
/// false on EOF, an error, `stop`, or `end` passing first.
fn read_until(conn: &TcpStream, buf: &mut [u8], stop: RawFd, end: Instant) -> bool {
    let mut got = 0;
    while got < buf.len() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || wait(conn.as_raw_fd(), stop, Some(left)) != Wait::Ready {
            return false;
        }
        // A backstop: the read cannot block past the deadline even if
        // the readiness poll(2) saw went away.
        if conn.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        let mut r: &TcpStream = conn;
        match r.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// A reply as [`check_reply`] read it.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedReply {
    pub id: u16,
    pub flags: u16,
    pub rcode: u8,
    /// The question section's bytes (empty when QDCOUNT is 0).
    pub question: Vec<u8>,
    /// The addresses of the A records.
    pub answers: Vec<Ipv4Addr>,
}

/// Read a reply this module built, strictly: a response header, at most
/// one question of plain labels, only A records whose name points at the
/// question's, nothing after them, at most [`MAX_MESSAGE`] bytes. For
/// tests and the fuzz target.
#[doc(hidden)]
pub fn check_reply(msg: &[u8]) -> Result<CheckedReply, &'static str> {
    if msg.len() > MAX_MESSAGE {
        return Err("longer than 512 bytes");
    }
    if msg.len() < HEADER {
        return Err("shorter than a header");
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]);
    if flags & QR == 0 {
        return Err("QR is 0");
    }
    if count(0) > 1 || count(2) != 0 || count(3) != 0 {
        return Err("unexpected section counts");
    }
    let mut at = HEADER;
    let mut question = Vec::new();
    if count(0) == 1 {
        // The question must parse as a query's would.
        let mut as_query = msg.to_vec();
        as_query[2..4].copy_from_slice(&0u16.to_be_bytes());
        as_query[6..12].fill(0);
        let q = parse_query(&as_query).map_err(|_| "the question does not parse")?;
        question = q.question;
        at += question.len();
    } else if count(1) != 0 {
        return Err("answers without a question");
    }
    let mut answers = Vec::new();
    for _ in 0..count(1) {
        let rr = msg.get(at..at + ANSWER_A).ok_or("truncated answer")?;
        if rr[0..2] != [0xC0, HEADER as u8] {
            return Err("answer name is not a pointer to the question");
        }
        if rr[2..4] != TYPE_A.to_be_bytes() || rr[4..6] != CLASS_IN.to_be_bytes() {
            return Err("answer is not IN A");
        }
        if rr[10..12] != 4u16.to_be_bytes() {
            return Err("RDLENGTH is not 4");
        }
        answers.push(Ipv4Addr::new(rr[12], rr[13], rr[14], rr[15]));
        at += ANSWER_A;
    }
    if at != msg.len() {
        return Err("bytes after the last section");
    }
    Ok(CheckedReply {
        id,
        flags,
        rcode: (flags & 0x0F) as u8,
        question,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query: id 0x1234, RD, one question, `ar` additional records
    /// (an EDNS OPT each), the name given as labels.
    fn query(labels: &[&[u8]], qtype: u16, ar: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&ar.to_be_bytes());
        for l in labels {
            m.push(l.len() as u8);
            m.extend_from_slice(l);
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        for _ in 0..ar {
            // OPT: root name, TYPE 41, UDP size 1232, no extended rcode,
            // DO=0, RDLENGTH 0.
            m.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
        }
        m
    }

    #[test]
    fn round_trips() {
        let m = query(&[b"Example", b"COM"], TYPE_A, 0);
        let q = parse_query(&m).unwrap();
        assert_eq!(
            (q.id, q.name.as_str(), q.qtype, q.qclass, q.rd),
            (0x1234, "example.com", TYPE_A, CLASS_IN, true)
        );
        assert_eq!(q.question_wire(), &m[12..]);

        let ip = Ipv4Addr::new(127, 1, 0, 7);
        let r = check_reply(&reply(&q, Answer::A(ip))).unwrap();
        assert_eq!(
            (r.id, r.rcode, r.answers.as_slice()),
            (0x1234, RCODE_NOERROR, &[ip][..])
        );
        assert_eq!(r.question, &m[12..]);

        let m = query(&[b"a-b_c", b"example", b"com"], TYPE_AAAA, 0);
        let q = parse_query(&m).unwrap();
        assert_eq!((q.name.as_str(), q.qtype), ("a-b_c.example.com", TYPE_AAAA));
        // An address for an AAAA question is NoData.
        let r = check_reply(&reply(&q, Answer::A(ip))).unwrap();
        assert_eq!((r.rcode, r.answers.len()), (RCODE_NOERROR, 0));

        let m = query(&[b"txt", b"example"], 16, 1);
        let q = parse_query(&m).unwrap();
        assert_eq!((q.name.as_str(), q.qtype), ("txt.example", 16));
        // The OPT record is not part of the question.
        assert_eq!(q.question_wire().len(), 1 + 3 + 1 + 7 + 1 + 4);
        let r = check_reply(&reply(&q, Answer::NxDomain)).unwrap();
        assert_eq!(
            (r.rcode, r.answers.len(), r.question.as_slice()),
            (RCODE_NXDOMAIN, 0, q.question_wire())
        );

        for (ans, rcode) in [
            (Answer::NoData, RCODE_NOERROR),
            (Answer::Refused, RCODE_REFUSED),
            (Answer::ServFail, RCODE_SERVFAIL),
        ] {
            assert_eq!(check_reply(&reply(&q, ans)).unwrap().rcode, rcode);
        }

        // A class other than IN never gets an A record.
        let mut m = query(&[b"x"], TYPE_A, 0);
        let n = m.len();
        m[n - 2..].copy_from_slice(&3u16.to_be_bytes());
        let q = parse_query(&m).unwrap();
        assert_eq!(q.qclass, 3);
        assert!(check_reply(&reply(&q, Answer::A(ip))).unwrap().answers.is_empty());
    }

    #[test]
    fn reply_bytes() {
        let m = query(&[b"ab", b"c"], TYPE_A, 1);
        let q = parse_query(&m).unwrap();
        let r = reply(&q, Answer::A(Ipv4Addr::new(127, 1, 2, 3)));
        #[rustfmt::skip]
        let want: &[u8] = &[
            0x12, 0x34, // id
            0x85, 0x80, // QR, opcode 0, AA, RD; RA, rcode 0
            0, 1, 0, 1, 0, 0, 0, 0, // QD 1, AN 1, NS 0, AR 0
            2, b'a', b'b', 1, b'c', 0, 0, 1, 0, 1, // the question as received
            0xC0, 0x0C, 0, 1, 0, 1, // pointer to offset 12, A, IN
            0, 0, 0, 60, 0, 4, 127, 1, 2, 3, // TTL 60, RDLENGTH 4, the address
        ];
        assert_eq!(r, want);

        // No RD asked: none echoed. NXDOMAIN, no answer.
        let mut m = query(&[b"ab", b"c"], TYPE_A, 0);
        m[2] = 0;
        let q = parse_query(&m).unwrap();
        assert!(!q.rd);
        let r = reply(&q, Answer::NxDomain);
        assert_eq!(&r[..12], &[0x12, 0x34, 0x84, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&r[12..], &m[12..]);

        // The error reply: same id, opcode and RD, no section.
        assert_eq!(
            error_reply(&m, RCODE_FORMERR).unwrap(),
            [0x12, 0x34, 0x80, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let mut m = query(&[b"x"], TYPE_A, 0);
        m[2] = 0x29; // opcode 5 (UPDATE), RD
        assert_eq!(parse_query(&m), Err(ParseError::NotImp));
        assert_eq!(
            error_reply(&m, RCODE_NOTIMP).unwrap(),
            [0x12, 0x34, 0xA9, 0x84, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(error_reply(&m[..11], RCODE_FORMERR), None);
        m[2] |= 0x80;
        assert_eq!(error_reply(&m, RCODE_FORMERR), None);
    }

    #[test]
    fn malformed() {
        let good = query(&[b"a", b"example"], TYPE_A, 0);
        assert!(parse_query(&good).is_ok());
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut m = good.clone();
            f(&mut m);
            parse_query(&m)
        };
        // Short header.
        assert_eq!(parse_query(&good[..11]), Err(ParseError::Drop));
        assert_eq!(parse_query(&[]), Err(ParseError::Drop));
        // A response.
        assert_eq!(with(&|m| m[2] |= 0x80), Err(ParseError::Drop));
        // Opcode.
        assert_eq!(with(&|m| m[2] |= 0x10), Err(ParseError::NotImp));
        // QDCOUNT 0 and 2, ANCOUNT, NSCOUNT, ARCOUNT 2.
        assert_eq!(with(&|m| m[5] = 0), Err(ParseError::FormErr));
        assert_eq!(with(&|m| m[5] = 2), Err(ParseError::FormErr));
        assert_eq!(with(&|m| m[7] = 1), Err(ParseError::FormErr));
        assert_eq!(with(&|m| m[9] = 1), Err(ParseError::FormErr));
        assert_eq!(with(&|m| m[10] = 1), Err(ParseError::FormErr));
        assert_eq!(parse_query(&query(&[b"a"], TYPE_A, 2)), Err(ParseError::FormErr));
        // Labels: 63 is fine, 64 is not.
        let l63 = [b'a'; 63];
        let l64 = [b'a'; 64];
        assert!(parse_query(&query(&[&l63], TYPE_A, 0)).is_ok());
        assert_eq!(parse_query(&query(&[&l64], TYPE_A, 0)), Err(ParseError::FormErr));
        // Names: 253 characters are fine, 254 are not.
        let n253: [&[u8]; 4] = [&l63, &l63, &l63, &l63[..61]];
        let q = parse_query(&query(&n253, TYPE_A, 0)).unwrap();
        assert_eq!(q.name.len(), 253);
        assert!(
            check_reply(&reply(&q, Answer::A(Ipv4Addr::LOCALHOST)))
                .unwrap()
                .answers
                .len()
                == 1
        );
        let n254: [&[u8]; 4] = [&l63, &l63, &l63, &l63[..62]];
        assert_eq!(parse_query(&query(&n254, TYPE_A, 0)), Err(ParseError::FormErr));
        // The root name.
        assert_eq!(parse_query(&query(&[], TYPE_A, 0)), Err(ParseError::FormErr));
        // A compression pointer (to the header), and the other label types.
        for b in [0xC0, 0x40, 0x80] {
            assert_eq!(with(&|m| m[12] = b), Err(ParseError::FormErr));
        }
        let mut m = good[..14].to_vec(); // header, "a"
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_query(&m), Err(ParseError::FormErr));
        // Bad label bytes.
        for b in [b'.', b' ', 0, 0x7F, 0xC3, b'*', b'\\', b'/', b'\n'] {
            assert_eq!(with(&|m| m[13] = b), Err(ParseError::FormErr), "byte {b:#x}");
        }
        // Truncated anywhere in the question.
        for n in 12..good.len() {
            assert_eq!(parse_query(&good[..n]), Err(ParseError::FormErr), "length {n}");
        }
        // Trailing bytes (an additional record) are ignored.
        let mut m = good.clone();
        m.extend_from_slice(&[1, 2, 3]);
        assert_eq!(parse_query(&m).unwrap().question_wire(), &good[12..]);
    }

    #[test]
    fn reply_checker_refuses() {
        let q = parse_query(&query(&[b"a"], TYPE_A, 0)).unwrap();
        let good = reply(&q, Answer::A(Ipv4Addr::new(1, 2, 3, 4)));
        assert!(check_reply(&good).is_ok());
        let bad = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut m = good.clone();
            f(&mut m);
            check_reply(&m).is_err()
        };
        assert!(bad(&|m| m[2] &= 0x7F));
        assert!(bad(&|m| m.push(0)));
        assert!(bad(&|m| m.truncate(m.len() - 1)));
        assert!(bad(&|m| m[7] = 2));
        assert!(bad(&|m| m[20] = 13));
        assert!(bad(&|m| m[22] = 28));
        assert!(bad(&|m| m[30] = 16));
        assert!(bad(&|m| m.resize(600, 0)));
    }

    #[test]
    fn fake_map() {
        let mut m = FakeMap::new();
        assert!(m.is_empty());
        let a = m.addr_for("a.example").unwrap();
        let b = m.addr_for("b.example").unwrap();
        assert_eq!((a, b), (Ipv4Addr::new(127, 1, 0, 1), Ipv4Addr::new(127, 1, 0, 2)));
        assert_eq!(m.addr_for("a.example"), Some(a));
        assert_eq!(m.len(), 2);
        assert_eq!(m.name_for(a), Some("a.example"));
        assert_eq!(m.name_for(b), Some("b.example"));
        for ip in [
            [127, 1, 0, 0],
            [127, 1, 0, 3],
            [127, 1, 255, 255],
            [127, 0, 0, 1],
            [10, 1, 0, 1],
        ] {
            assert_eq!(m.name_for(Ipv4Addr::from(ip)), None, "{ip:?}");
        }

        assert!(is_fake(IpAddr::V4(Ipv4Addr::new(127, 1, 0, 0))));
        assert!(is_fake(IpAddr::V4(Ipv4Addr::new(127, 1, 255, 255))));
        assert!(!is_fake(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))));
        assert!(!is_fake(IpAddr::V4(Ipv4Addr::new(127, 2, 0, 1))));
        assert!(!is_fake(IpAddr::V4(Ipv4Addr::new(128, 1, 0, 1))));
        assert!(is_fake(IpAddr::V6("::ffff:127.1.3.4".parse().unwrap())));
        assert!(!is_fake(IpAddr::V6("::127.1.3.4".parse().unwrap())));
        assert!(!is_fake(IpAddr::V6("::1".parse().unwrap())));
    }

    #[test]
    fn fake_map_full() {
        let mut m = FakeMap::new();
        for i in 0..FAKE_CAPACITY {
            m.addr_for(&format!("n{i}")).unwrap();
        }
        assert_eq!(m.addr_for("n0"), Some(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(m.addr_for("n65533"), Some(Ipv4Addr::new(127, 1, 255, 254)));
        assert_eq!(m.name_for(Ipv4Addr::new(127, 1, 255, 254)), Some("n65533"));
        assert_eq!(m.name_for(Ipv4Addr::new(127, 1, 1, 0)), Some("n255"));
        assert_eq!(m.addr_for("one-more"), None);
        assert_eq!(m.len(), FAKE_CAPACITY);

        let mut m = FakeMap::with_limit(2);
        assert!(m.addr_for("a").is_some() && m.addr_for("b").is_some());
        assert_eq!(m.addr_for("c"), None);
        assert_eq!(m.addr_for("b"), Some(Ipv4Addr::new(127, 1, 0, 2)));
        assert_eq!(FakeMap::with_limit(usize::MAX).limit, FAKE_CAPACITY);
    }

    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::mpsc;

    fn stop_pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = sys::pipe().unwrap();
        // SAFETY: pipe() just made both fds; nothing else owns them.
        unsafe { (OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w)) }
    }

    fn decide(q: &Query) -> Answer {
        match q.name.as_str() {
            "allowed.test" => Answer::A(Ipv4Addr::new(127, 1, 0, 1)),
            _ => Answer::NxDomain,
        }
    }

    /// Runs `serve` in a thread; the receiver gets a message when it returns.
    fn spawn(serve: impl FnOnce() + Send + 'static) -> (mpsc::Receiver<()>, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            serve();
            let _ = tx.send(());
        });
        (rx, t)
    }

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn udp_loop() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let (stop_r, stop_w) = stop_pipe();
        let (done, t) = spawn(move || serve_udp(&server, stop_r.as_raw_fd(), &decide));

        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(addr).unwrap();
        client.set_read_timeout(Some(LONG)).unwrap();
        let mut buf = [0u8; 1024];
        let mut ask = |m: &[u8]| {
            client.send(m).unwrap();
            let n = client.recv(&mut buf).unwrap();
            check_reply(&buf[..n]).unwrap()
        };
        let r = ask(&query(&[b"Allowed", b"TEST"], TYPE_A, 1));
        assert_eq!(
            (r.id, r.rcode, r.answers.as_slice()),
            (0x1234, RCODE_NOERROR, &[Ipv4Addr::new(127, 1, 0, 1)][..])
        );
        let r = ask(&query(&[b"denied", b"test"], TYPE_A, 0));
        assert_eq!((r.rcode, r.answers.len()), (RCODE_NXDOMAIN, 0));
        // Malformed: FORMERR, no question.
        let mut m = query(&[b"x"], TYPE_A, 0);
        m[5] = 2;
        let r = ask(&m);
        assert_eq!((r.rcode, r.question.len()), (RCODE_FORMERR, 0));
        // Longer than 512 bytes: FORMERR.
        let mut m = query(&[b"allowed", b"test"], TYPE_A, 0);
        m.resize(600, 0);
        assert_eq!(ask(&m).rcode, RCODE_FORMERR);
        // Too short for a header: no reply, and the loop goes on.
        client.send(&[1, 2, 3]).unwrap();
        let r = ask(&query(&[b"allowed", b"test"], TYPE_AAAA, 0));
        assert_eq!((r.rcode, r.answers.len()), (RCODE_NOERROR, 0));

        assert!(done.try_recv().is_err());
        drop(stop_w);
        done.recv_timeout(LONG)
            .expect("serve_udp ends when the stop pipe closes");
        t.join().unwrap();
    }

    fn framed(m: &[u8]) -> Vec<u8> {
        let mut f = (m.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(m);
        f
    }

    /// Reads framed replies until EOF (or the read timeout).
    fn read_replies(mut c: &TcpStream) -> (Vec<CheckedReply>, bool) {
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        let mut out = Vec::new();
        let mut rest = &all[..];
        while rest.len() >= 2 {
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            out.push(check_reply(&rest[2..2 + n]).unwrap());
            rest = &rest[2 + n..];
        }
        (out, rest.is_empty())
    }

    /// A served TCP connection: the client's end, and when the loop ends.
    fn tcp(
        deadline: Duration,
    ) -> (
        TcpStream,
        OwnedFd,
        mpsc::Receiver<()>,
        std::thread::JoinHandle<()>,
    ) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        c.set_read_timeout(Some(LONG)).unwrap();
        let (conn, _) = l.accept().unwrap();
        let (stop_r, stop_w) = stop_pipe();
        let (done, t) = spawn(move || serve_tcp(conn, stop_r.as_raw_fd(), deadline, &decide));
        (c, stop_w, done, t)
    }

    #[test]
    fn tcp_loop() {
        // Two queries in one write, one split across writes, then EOF.
        let (mut c, _stop, done, t) = tcp(LONG);
        let mut two = framed(&query(&[b"allowed", b"test"], TYPE_A, 0));
        two.extend(framed(&query(&[b"other", b"test"], TYPE_A, 0)));
        c.write_all(&two).unwrap();
        let third = framed(&query(&[b"allowed", b"test"], TYPE_AAAA, 0));
        c.write_all(&third[..1]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        c.write_all(&third[1..]).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let (r, whole) = read_replies(&c);
        assert!(whole);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].answers, [Ipv4Addr::new(127, 1, 0, 1)]);
        assert_eq!(r[1].rcode, RCODE_NXDOMAIN);
        assert_eq!((r[2].rcode, r[2].answers.len()), (RCODE_NOERROR, 0));
        done.recv_timeout(LONG).unwrap();
        t.join().unwrap();

        // At most 16 queries, then the connection is closed.
        let (mut c, _stop, done, t) = tcp(LONG);
        let q = framed(&query(&[b"allowed", b"test"], TYPE_A, 0));
        c.write_all(&q.repeat(TCP_MAX_QUERIES + 1)).unwrap();
        let (r, whole) = read_replies(&c);
        assert!(whole);
        assert_eq!(r.len(), TCP_MAX_QUERIES);
        done.recv_timeout(LONG).unwrap();
        t.join().unwrap();

        // A message over 512 bytes: closed without a reply.
        let (mut c, _stop, done, t) = tcp(LONG);
        c.write_all(&[0x02, 0x01]).unwrap();
        c.write_all(&[0; 513]).unwrap();
        assert!(read_replies(&c).0.is_empty());
        done.recv_timeout(LONG).unwrap();
        t.join().unwrap();

        // Silence: closed when the deadline passes.
        let start = Instant::now();
        let (mut c, _stop, done, t) = tcp(Duration::from_millis(200));
        c.write_all(&[0]).unwrap(); // half a length prefix, then nothing
        assert!(read_replies(&c).0.is_empty());
        done.recv_timeout(LONG).unwrap();
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(5),
            "{took:?}"
        );
        t.join().unwrap();

        // The stop pipe closing ends a connection at once.
        let (_c, stop, done, t) = tcp(LONG);
        assert!(done.recv_timeout(Duration::from_millis(100)).is_err());
        drop(stop);
        done.recv_timeout(LONG)
            .expect("serve_tcp ends when the stop pipe closes");
        t.join().unwrap();
    }
}
