//! The HTTP front of the egress proxy: the request head (`CONNECT
//! host:port`, or a plain request in absolute form, sent on in origin
//! form) and the proxy's own short answers. Pure but for [`respond`].

use std::io::Write;
use std::net::{Shutdown, TcpStream};

/// The longest request head the proxy reads (request line and headers);
/// a longer one gets 431 and the connection is closed.
pub const MAX_HEAD: usize = 8192;

/// The protocol name of CONNECT in audit lines.
pub const CONNECT: &str = "http-connect";

/// Write a short response with `X-Cordon-Denied: <reason>` (for 4xx/5xx).
pub fn respond(mut conn: &TcpStream, code: u16, text: &str, reason: &str) {
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

/// Where the head ends (after `\r\n\r\n`), if it does.
pub fn find_head_end(b: &[u8]) -> Option<usize> {
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
pub struct Request {
    /// The target host as sent.
    pub host: String,
    /// The target port.
    pub port: u16,
    /// `None` for CONNECT; for a plain HTTP request in absolute form, the
    /// head to send to the target: the request line in origin form and
    /// the client's headers without the hop-by-hop ones, with
    /// `Connection: close`.
    pub forward: Option<Vec<u8>>,
}

impl Request {
    /// The protocol name in audit lines.
    pub fn protocol(&self) -> &'static str {
        if self.forward.is_some() {
            "http"
        } else {
            CONNECT
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
pub fn parse_request(head: &[u8]) -> Result<Request, &'static str> {
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
