//! The SOCKS5 front of the egress proxy (RFC 1928): no authentication,
//! `CONNECT` only, with a domain name, IPv4 or IPv6 target. Reads exactly
//! the bytes of the greeting and the request (nothing the client sends
//! after them is consumed), each read bounded by the caller's deadline.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The protocol name in audit lines.
pub const PROTOCOL: &str = "socks5";

/// Reply codes (RFC 1928 §6).
pub mod reply {
    /// Succeeded.
    pub const SUCCEEDED: u8 = 0x00;
    /// General SOCKS server failure.
    pub const GENERAL_FAILURE: u8 = 0x01;
    /// Connection not allowed by ruleset.
    pub const NOT_ALLOWED: u8 = 0x02;
    /// Host unreachable.
    pub const HOST_UNREACHABLE: u8 = 0x04;
    /// Connection refused.
    pub const CONNECTION_REFUSED: u8 = 0x05;
    /// TTL expired (used for a connect timeout).
    pub const TTL_EXPIRED: u8 = 0x06;
    /// Command not supported.
    pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    /// Address type not supported.
    pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
}

/// What the client asked to connect to: the host as text (a name as
/// sent, or an address) and the port.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The host: a name, or an IPv4/IPv6 address in canonical text.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// Why the handshake failed: the reply code to send (none when the
/// connection is unusable or the greeting already answered), and a reason
/// for the audit line.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    /// The reply code for the request, if one is to be sent.
    pub code: Option<u8>,
    /// Why.
    pub reason: &'static str,
}

fn refused(code: Option<u8>, reason: &'static str) -> Refused {
    Refused { code, reason }
}

/// Read exactly `buf.len()` bytes.
fn read_exact(s: &mut impl Read, buf: &mut [u8]) -> Result<(), Refused> {
    s.read_exact(buf)
        .map_err(|_| refused(None, "the client closed or stalled during the SOCKS5 handshake"))
}

/// The greeting (version 5, a list of methods; "no authentication" must be
/// among them) and the request. On success the caller connects and then
/// sends [`reply_bytes`] with [`reply::SUCCEEDED`].
pub fn handshake<S: Read + Write>(s: &mut S) -> Result<Request, Refused> {
    let mut head = [0u8; 2];
    read_exact(s, &mut head)?;
    if head[0] != 5 {
        return Err(refused(None, "not SOCKS version 5"));
    }
    let mut methods = [0u8; 255];
    let methods = &mut methods[..head[1] as usize];
    read_exact(s, methods)?;
    if !methods.contains(&0) {
        let _ = s.write_all(&[5, 0xff]);
        return Err(refused(
            None,
            "the client offers no SOCKS5 method without authentication",
        ));
    }
    s.write_all(&[5, 0])
        .map_err(|_| refused(None, "the client closed during the SOCKS5 handshake"))?;
    let mut req = [0u8; 4];
    read_exact(s, &mut req)?;
    if req[0] != 5 || req[2] != 0 {
        return Err(refused(Some(reply::GENERAL_FAILURE), "malformed SOCKS5 request"));
    }
    if req[1] != 1 {
        return Err(refused(
            Some(reply::COMMAND_NOT_SUPPORTED),
            "only the SOCKS5 CONNECT command is supported",
        ));
    }
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            read_exact(s, &mut a)?;
            Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            read_exact(s, &mut a)?;
            Ipv6Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            read_exact(s, &mut len)?;
            let mut name = [0u8; 255];
            let name = &mut name[..len[0] as usize];
            read_exact(s, name)?;
            if name.is_empty() || !name.is_ascii() {
                return Err(refused(
                    Some(reply::NOT_ALLOWED),
                    "the SOCKS5 domain name is empty or not ASCII",
                ));
            }
            // ASCII, so UTF-8; the caller checks it is a DNS name.
            String::from_utf8_lossy(name).into_owned()
        }
        _ => {
            return Err(refused(
                Some(reply::ADDRESS_TYPE_NOT_SUPPORTED),
                "unknown SOCKS5 address type",
            ))
        }
    };
    let mut port = [0u8; 2];
    read_exact(s, &mut port)?;
    Ok(Request {
        host,
        port: u16::from_be_bytes(port),
    })
}

/// A reply with `code` and the bound address 0.0.0.0:0 (clients ignore it
/// for CONNECT; the real one is the proxy's own, not worth telling).
pub fn reply_bytes(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A client script as input, what the server wrote as output.
    struct Pipe {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn run(bytes: &[u8]) -> (Result<Request, Refused>, Vec<u8>, u64) {
        let mut p = Pipe {
            input: Cursor::new(bytes.to_vec()),
            output: Vec::new(),
        };
        let r = handshake(&mut p);
        (r, p.output, p.input.position())
    }

    #[test]
    fn connect_by_name_ipv4_and_ipv6() {
        let mut b = vec![5, 2, 2, 0, 5, 1, 0, 3, 11];
        b.extend_from_slice(b"example.com");
        b.extend_from_slice(&443u16.to_be_bytes());
        b.extend_from_slice(b"early data stays unread");
        let (r, out, used) = run(&b);
        assert_eq!(
            r,
            Ok(Request {
                host: "example.com".into(),
                port: 443
            })
        );
        assert_eq!(out, [5, 0]);
        assert_eq!(used as usize, b.len() - "early data stays unread".len());

        let (r, _, _) = run(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]);
        assert_eq!(
            r,
            Ok(Request {
                host: "127.0.0.1".into(),
                port: 8080
            })
        );
        let mut b = vec![5, 1, 0, 5, 1, 0, 4];
        b.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&[0, 80]);
        assert_eq!(
            run(&b).0,
            Ok(Request {
                host: "2001:db8::1".into(),
                port: 80
            })
        );
    }

    #[test]
    fn refusals() {
        let code = |b: &[u8]| run(b).0.unwrap_err().code;
        // Not version 5, no acceptable method (answered 0xff), truncated.
        assert_eq!(code(&[4, 1, 0]), None);
        let (r, out, _) = run(&[5, 1, 2]);
        assert!(r.is_err());
        assert_eq!(out, [5, 0xff]);
        assert_eq!(code(&[5, 1, 0, 5, 1, 0, 1, 127]), None);
        assert_eq!(code(&[5, 1]), None);
        // BIND and UDP ASSOCIATE, an unknown address type, a bad header.
        assert_eq!(
            code(&[5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80]),
            Some(reply::COMMAND_NOT_SUPPORTED)
        );
        assert_eq!(
            code(&[5, 1, 0, 5, 3, 0, 1, 1, 2, 3, 4, 0, 80]),
            Some(reply::COMMAND_NOT_SUPPORTED)
        );
        assert_eq!(
            code(&[5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80]),
            Some(reply::ADDRESS_TYPE_NOT_SUPPORTED)
        );
        assert_eq!(
            code(&[5, 1, 0, 5, 1, 1, 1, 1, 2, 3, 4, 0, 80]),
            Some(reply::GENERAL_FAILURE)
        );
        // Empty and non-ASCII names.
        assert_eq!(code(&[5, 1, 0, 5, 1, 0, 3, 0, 0, 80]), Some(reply::NOT_ALLOWED));
        assert_eq!(
            code(&[5, 1, 0, 5, 1, 0, 3, 2, 0xc3, 0xa9, 0, 80]),
            Some(reply::NOT_ALLOWED)
        );
    }

    #[test]
    fn reply_layout() {
        assert_eq!(reply_bytes(reply::NOT_ALLOWED), [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
