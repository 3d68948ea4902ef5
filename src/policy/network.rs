//! The `"network"` section: which network the payload gets, and (mode
//! `proxy`) the egress rules. Pure: patterns are parsed once, here, into
//! typed [`Pattern`]s; matching lives in `crate::net::rules`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::units::Dur;

/// Which network the payload gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// Its own network namespace with only loopback (the default).
    #[default]
    None,
    /// The host's network: no network namespace.
    Host,
    /// Its own network namespace; the outside only through cordon's proxy
    /// (not in this build: refused when a plan is built).
    Proxy,
}

impl NetMode {
    /// The policy spelling.
    pub fn name(self) -> &'static str {
        match self {
            NetMode::None => "none",
            NetMode::Host => "host",
            NetMode::Proxy => "proxy",
        }
    }
}

impl FromStr for NetMode {
    type Err = String;
    fn from_str(s: &str) -> Result<NetMode, String> {
        match s {
            "none" => Ok(NetMode::None),
            "host" => Ok(NetMode::Host),
            "proxy" => Ok(NetMode::Proxy),
            _ => Err(format!(
                "invalid network mode {s:?}: expected \"none\", \"host\" or \"proxy\""
            )),
        }
    }
}

/// Default of `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 64;
/// Largest `max_connections`.
pub const MAX_MAX_CONNECTIONS: u32 = 65536;

fn default_max_connections() -> u32 {
    DEFAULT_MAX_CONNECTIONS
}

fn default_connect_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(10))
}

fn default_idle_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(60))
}

/// The ports of the transparent relay by default: HTTP and HTTPS.
pub fn default_transparent_ports() -> Vec<u16> {
    vec![80, 443]
}

/// The most transparent ports (the listeners' hand-off has room for this
/// many besides the fixed four).
pub const MAX_TRANSPARENT_PORTS: usize = 8;

/// Ports of cordon's own listeners in the sandbox (HTTP proxy, SOCKS5,
/// DNS): no transparent port may be one of them.
pub const RESERVED_PORTS: [u16; 3] = [3128, 1080, 53];

fn default_true() -> bool {
    true
}

/// The `"network"` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    /// `none` (default), `host` or `proxy`.
    #[serde(default)]
    pub mode: NetMode,
    /// Targets the payload may reach (mode `proxy` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<Pattern>,
    /// Targets refused even when an `allow` rule matches (mode `proxy` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<Pattern>,
    /// Most concurrent connections through the proxy.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long the proxy waits for a connection to the target.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// How long a relayed connection may stay silent in both directions.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Dur,
    /// Serve the DNS stub on the sandbox's 127.0.0.1:53 (allowed names get
    /// fake addresses from 127.1.0.0/16, every other name NXDOMAIN; nothing
    /// is forwarded) and the transparent relay on `transparent_ports`.
    #[serde(default = "default_true")]
    pub dns: bool,
    /// Ports on which a connection to a fake address from the DNS stub is
    /// relayed to the name it stands for (for clients that ignore the proxy
    /// variables). The relay listens on every address of the sandbox's
    /// loopback at these ports, so the payload cannot serve on them itself.
    #[serde(default = "default_transparent_ports")]
    pub transparent_ports: Vec<u16>,
    /// FOR TESTING ONLY: names the proxy resolves to these addresses instead
    /// of asking the host's resolver.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolve: BTreeMap<String, IpAddr>,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            mode: NetMode::None,
            allow: Vec::new(),
            deny: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: default_connect_timeout(),
            idle_timeout: default_idle_timeout(),
            dns: true,
            transparent_ports: default_transparent_ports(),
            resolve: BTreeMap::new(),
        }
    }
}

impl NetworkPolicy {
    /// The rules that contradict the section's mode (field path, message),
    /// or the first bad limit.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.mode != NetMode::Proxy {
            for (field, present) in [
                ("allow", !self.allow.is_empty()),
                ("deny", !self.deny.is_empty()),
                ("resolve", !self.resolve.is_empty()),
            ] {
                if present {
                    return Err((
                        format!("network.{field}"),
                        format!(
                            "rules apply only in mode proxy (the mode is {})",
                            self.mode.name()
                        ),
                    ));
                }
            }
        }
        if !(1..=MAX_MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err((
                "network.max_connections".into(),
                format!("expected 1 to {MAX_MAX_CONNECTIONS}"),
            ));
        }
        for (field, d) in [
            ("connect_timeout", self.connect_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if d.as_duration().is_zero() {
                return Err((format!("network.{field}"), "expected a duration above 0".into()));
            }
        }
        if self.transparent_ports.len() > MAX_TRANSPARENT_PORTS {
            return Err((
                "network.transparent_ports".into(),
                format!(
                    "{} ports; at most {MAX_TRANSPARENT_PORTS}",
                    self.transparent_ports.len()
                ),
            ));
        }
        for (i, port) in self.transparent_ports.iter().enumerate() {
            let why = if *port == 0 {
                Some("port 0 is not a port: expected 1 to 65535".to_string())
            } else if RESERVED_PORTS.contains(port) {
                Some(format!(
                    "port {port} is one of cordon's own listeners in the sandbox (3128 HTTP proxy, 1080 SOCKS5, 53 DNS)"
                ))
            } else if self.transparent_ports[..i].contains(port) {
                Some(format!("port {port} is listed twice"))
            } else {
                None
            };
            if let Some(why) = why {
                return Err((format!("network.transparent_ports[{i}]"), why));
            }
        }
        for name in self.resolve.keys() {
            // Keys hold dots, which field paths cannot; the error names the
            // map and the entry.
            match parse_name(name) {
                Ok(n) if n == *name => {}
                Ok(n) => {
                    return Err((
                        "network.resolve".into(),
                        format!("{name:?}: write the name as {n:?} (lower case, no trailing dot)"),
                    ))
                }
                Err(e) => return Err(("network.resolve".into(), format!("{name:?}: {e}"))),
            }
        }
        Ok(())
    }
}

/// The host part of a [`Pattern`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `api.example.com`: this name only.
    Exact(String),
    /// `*.example.com`: its subdomains, not the name itself.
    Subdomains(String),
    /// `**.example.com`: the name and its subdomains.
    Domain(String),
    /// An IP address, or an IP network (`10.20.0.0/16`, `[2001:db8::]/32`):
    /// the address and the prefix length (32 or 128 for one address).
    Net(IpAddr, u8),
}

/// One `allow` or `deny` rule: a host pattern and a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// What the target's host must be.
    pub host: HostPattern,
    /// The port; `None`: 80 and 443 (in `allow`), every port (in `deny`).
    pub port: Option<u16>,
}

/// The longest DNS name.
const MAX_NAME: usize = 253;

/// Normalise and check a DNS name: lower case, one trailing dot stripped,
/// labels of letters, digits, `-` and `_` (1 to 63 bytes, no `-` at either
/// end), not readable as an IPv4 address in any of the forms `inet_aton`
/// accepts. Non-ASCII names are refused (IDNA is not supported).
pub fn parse_name(s: &str) -> Result<String, String> {
    if !s.is_ascii() {
        return Err(
            "non-ASCII names are not supported (no IDNA): write the name in its ASCII form (xn--...)".into(),
        );
    }
    let n = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    if n.is_empty() {
        return Err("empty name".into());
    }
    if n.len() > MAX_NAME {
        return Err(format!("a name has at most {MAX_NAME} characters"));
    }
    for label in n.split('.') {
        if label.is_empty() {
            return Err("empty label (\"..\" or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err("a label has at most 63 characters".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "{c:?} is not allowed in a name (letters, digits, '-' and '_')"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    // The last label decides whether inet_aton would read the whole string
    // as a number: all digits, or 0x and hex digits.
    let last = n.rsplit('.').next().unwrap_or_default();
    if numeric_part(last) {
        return Err(
            "reads as an IPv4 address in a non-standard form: write an address as four decimal numbers such as 127.0.0.1"
                .into(),
        );
    }
    Ok(n)
}

/// Whether `inet_aton` reads `part` as a number (decimal, octal or hex).
pub fn numeric_part(part: &str) -> bool {
    let lower = part.to_ascii_lowercase();
    match lower.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    let bad = || format!("invalid port {s:?}: expected a number from 1 to 65535");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return Err(bad());
    }
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad()),
    }
}

/// A prefix length after `/`, and the network with it (host bits must be 0).
fn parse_net(addr: IpAddr, len: &str) -> Result<HostPattern, String> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bad = || format!("invalid prefix length {len:?}: expected 0 to {max}");
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || (len.len() > 1 && len.starts_with('0')) {
        return Err(bad());
    }
    let n: u8 = len.parse().map_err(|_| bad())?;
    if n > max {
        return Err(bad());
    }
    let masked = mask(addr, n);
    if masked != addr {
        return Err(format!(
            "{addr}/{n} has bits set after the prefix: write the network as {}",
            fmt_net(masked, n)
        ));
    }
    Ok(HostPattern::Net(addr, n))
}

/// `addr` with every bit after the first `len` cleared.
pub fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

fn fmt_net(addr: IpAddr, len: u8) -> String {
    match addr {
        IpAddr::V4(a) if len == 32 => a.to_string(),
        IpAddr::V4(a) => format!("{a}/{len}"),
        IpAddr::V6(a) if len == 128 => format!("[{a}]"),
        IpAddr::V6(a) => format!("[{a}]/{len}"),
    }
}

impl FromStr for Pattern {
    type Err = String;

    /// `NAME`, `*.NAME`, `**.NAME`, `A.B.C.D`, `A.B.C.D/N`, `[V6]`,
    /// `[V6]/N`, each optionally followed by `:PORT`; or an IPv6 address or
    /// network without brackets and without a port.
    fn from_str(s: &str) -> Result<Pattern, String> {
        let whole = |e: String| format!("invalid pattern {s:?}: {e}");
        if s.is_empty() {
            return Err(whole("empty pattern".into()));
        }
        // Bracketed IPv6.
        if let Some(rest) = s.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| whole("'[' without ']'".into()))?;
            let (inside, inner_len) = match inside.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (inside, None),
            };
            let addr: Ipv6Addr = inside
                .parse()
                .map_err(|_| whole(format!("{inside:?} is not an IPv6 address")))?;
            let (outer_len, port) = match after.split_once(':') {
                Some((l, p)) => (l, Some(parse_port(p).map_err(whole)?)),
                None => (after, None),
            };
            let len = match (inner_len, outer_len.strip_prefix('/')) {
                (Some(l), None) if outer_len.is_empty() => Some(l),
                (None, Some(l)) => Some(l),
                (None, None) if outer_len.is_empty() => None,
                _ => return Err(whole("expected [V6], [V6]/N, [V6]:PORT or [V6]/N:PORT".into())),
            };
            let host = match len {
                Some(l) => parse_net(IpAddr::V6(addr), l).map_err(whole)?,
                None => HostPattern::Net(IpAddr::V6(addr), 128),
            };
            return Ok(Pattern { host, port });
        }
        // Unbracketed IPv6 (two colons or more): no port.
        if s.matches(':').count() > 1 {
            let (a, len) = match s.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (s, None),
            };
            let addr: Ipv6Addr = a.parse().map_err(|_| {
                whole("not an IPv6 address (write an IPv6 address with a port as [2001:db8::1]:443)".into())
            })?;
            let host = match len {
                Some(l) => parse_net(IpAddr::V6(addr), l).map_err(whole)?,
                None => HostPattern::Net(IpAddr::V6(addr), 128),
            };
            return Ok(Pattern { host, port: None });
        }
        let (h, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(parse_port(p).map_err(whole)?)),
            None => (s, None),
        };
        let (h, len) = match h.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (h, None),
        };
        if let Ok(a) = h.parse::<Ipv4Addr>() {
            let host = match len {
                Some(l) => parse_net(IpAddr::V4(a), l).map_err(whole)?,
                None => HostPattern::Net(IpAddr::V4(a), 32),
            };
            return Ok(Pattern { host, port });
        }
        if len.is_some() {
            return Err(whole(
                "a prefix length follows an address: expected A.B.C.D/N with a standard dotted-quad address"
                    .into(),
            ));
        }
        let (kind, name): (fn(String) -> HostPattern, &str) = if let Some(n) = h.strip_prefix("**.") {
            (HostPattern::Domain, n)
        } else if let Some(n) = h.strip_prefix("*.") {
            (HostPattern::Subdomains, n)
        } else {
            (HostPattern::Exact, h)
        };
        if name.contains('*') {
            return Err(whole(
                "a wildcard is only allowed as the whole first label: *.example.com or **.example.com".into(),
            ));
        }
        let name = parse_name(name).map_err(whole)?;
        Ok(Pattern {
            host: kind(name),
            port,
        })
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Exact(n) => f.write_str(n)?,
            HostPattern::Subdomains(n) => write!(f, "*.{n}")?,
            HostPattern::Domain(n) => write!(f, "**.{n}")?,
            HostPattern::Net(a, l) => f.write_str(&fmt_net(*a, *l))?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Serializes as the canonical pattern string.
impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Pattern;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a pattern string such as "api.example.com:443", "*.example.org" or "10.20.0.0/16:8080""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Pattern, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Pattern, String> {
        s.parse()
    }

    fn net(a: &str, l: u8) -> HostPattern {
        HostPattern::Net(a.parse().unwrap(), l)
    }

    #[test]
    fn patterns_parse() {
        let ex = |n: &str| HostPattern::Exact(n.into());
        let cases: Vec<(&str, HostPattern, Option<u16>, &str)> = vec![
            (
                "api.example.com:443",
                ex("api.example.com"),
                Some(443),
                "api.example.com:443",
            ),
            ("API.Example.COM.", ex("api.example.com"), None, "api.example.com"),
            ("pypi.org", ex("pypi.org"), None, "pypi.org"),
            (
                "*.pythonhosted.org:443",
                HostPattern::Subdomains("pythonhosted.org".into()),
                Some(443),
                "*.pythonhosted.org:443",
            ),
            (
                "**.example.com",
                HostPattern::Domain("example.com".into()),
                None,
                "**.example.com",
            ),
            ("localhost:1", ex("localhost"), Some(1), "localhost:1"),
            (
                "x_y.example:65535",
                ex("x_y.example"),
                Some(65535),
                "x_y.example:65535",
            ),
            (
                "10.20.0.0/16:8080",
                net("10.20.0.0", 16),
                Some(8080),
                "10.20.0.0/16:8080",
            ),
            ("1.2.3.4", net("1.2.3.4", 32), None, "1.2.3.4"),
            ("1.2.3.4:80", net("1.2.3.4", 32), Some(80), "1.2.3.4:80"),
            ("0.0.0.0/0", net("0.0.0.0", 0), None, "0.0.0.0/0"),
            (
                "[2001:db8::1]:443",
                net("2001:db8::1", 128),
                Some(443),
                "[2001:db8::1]:443",
            ),
            ("[2001:db8::1]", net("2001:db8::1", 128), None, "[2001:db8::1]"),
            ("2001:db8::1", net("2001:db8::1", 128), None, "[2001:db8::1]"),
            ("2001:db8::/32", net("2001:db8::", 32), None, "[2001:db8::]/32"),
            (
                "[2001:db8::]/32:443",
                net("2001:db8::", 32),
                Some(443),
                "[2001:db8::]/32:443",
            ),
            (
                "[2001:db8::/32]:443",
                net("2001:db8::", 32),
                Some(443),
                "[2001:db8::]/32:443",
            ),
            (
                "[::ffff:10.0.0.1]",
                net("::ffff:10.0.0.1", 128),
                None,
                "[::ffff:10.0.0.1]",
            ),
        ];
        for (text, host, port, shown) in cases {
            let got = p(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, Pattern { host, port }, "{text}");
            assert_eq!(got.to_string(), shown, "{text}");
            // The canonical form parses back to the same pattern.
            assert_eq!(p(shown).unwrap(), got, "{shown}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        let cases = [
            ("", "empty pattern"),
            ("example.com:0", "invalid port"),
            ("example.com:65536", "invalid port"),
            ("example.com:080", "invalid port"),
            ("example.com:", "invalid port"),
            ("example.com:+1", "invalid port"),
            ("example.com:http", "invalid port"),
            ("bücher.example", "non-ASCII"),
            ("*", "wildcard"),
            ("**", "wildcard"),
            ("*.", "empty name"),
            ("a.*.com", "wildcard"),
            ("*foo.com", "wildcard"),
            ("*.*.com", "wildcard"),
            ("***.com", "wildcard"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("-a.com", "starts or ends with '-'"),
            ("a b.com", "not allowed in a name"),
            ("a/b.com", "prefix length"),
            ("2130706433", "non-standard form"),
            ("0x7f.1", "non-standard form"),
            ("0177.0.0.1", "non-standard form"),
            ("127.1", "non-standard form"),
            ("127.0.0.01", "non-standard form"),
            ("0x7f000001", "non-standard form"),
            ("1.2.3.4.5", "non-standard form"),
            ("10.0.0.1/8", "bits set after the prefix"),
            ("10.0.0.0/33", "invalid prefix length"),
            ("10.0.0.0/", "invalid prefix length"),
            ("10.0.0.0/08", "invalid prefix length"),
            ("[2001:db8::1]/32", "bits set after the prefix"),
            ("[2001:db8::]/129", "invalid prefix length"),
            ("[2001:db8::1", "without ']'"),
            ("[1.2.3.4]", "not an IPv6 address"),
            ("[::1]x", "expected [V6]"),
            ("[::1%eth0]", "not an IPv6 address"),
            ("2001:db8::1:443x", "not an IPv6 address"),
            (&"a".repeat(64), "at most 63"),
        ];
        for (text, want) in cases {
            let e = p(text).expect_err(text);
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.starts_with("invalid pattern"), "{text:?}: {e}");
        }
        let long = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert!(p(&long).unwrap_err().contains("at most 253"));
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("Example.COM.").unwrap(), "example.com");
        assert_eq!(parse_name("1.example").unwrap(), "1.example");
        assert_eq!(parse_name("0x.example").unwrap(), "0x.example");
        assert!(parse_name("example.0x").is_err());
        assert!(parse_name("example.123").is_err());
        assert!(parse_name("example.0xff").is_err());
        assert!(parse_name("example.0xfg").is_ok());
        assert!(parse_name("..").is_err());
        assert!(parse_name(".").is_err());
        assert!(parse_name("пример.рф").unwrap_err().contains("IDNA"));
    }

    #[test]
    fn section_defaults_and_checks() {
        let n: NetworkPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(n, NetworkPolicy::default());
        assert_eq!(n.mode, NetMode::None);
        assert_eq!(n.max_connections, 64);
        assert_eq!(n.connect_timeout.to_string(), "10s");
        assert_eq!(n.idle_timeout.to_string(), "1m");
        assert!(n.dns);
        assert!(n.check().is_ok());
        for mode in [NetMode::None, NetMode::Host] {
            for (field, n) in [
                (
                    "network.allow",
                    NetworkPolicy {
                        mode,
                        allow: vec![p("a.com").unwrap()],
                        ..Default::default()
                    },
                ),
                (
                    "network.deny",
                    NetworkPolicy {
                        mode,
                        deny: vec![p("a.com").unwrap()],
                        ..Default::default()
                    },
                ),
                (
                    "network.resolve",
                    NetworkPolicy {
                        mode,
                        resolve: [("a.com".to_string(), "1.2.3.4".parse().unwrap())].into(),
                        ..Default::default()
                    },
                ),
            ] {
                let (path, msg) = n.check().unwrap_err();
                assert_eq!(path, field);
                assert!(msg.contains("rules apply only in mode proxy"), "{msg}");
            }
        }
        let ok = NetworkPolicy {
            mode: NetMode::Proxy,
            allow: vec![p("a.com").unwrap()],
            deny: vec![p("b.com").unwrap()],
            resolve: [("a.com".to_string(), "10.0.0.1".parse().unwrap())].into(),
            ..Default::default()
        };
        assert!(ok.check().is_ok());
        let bad = |n: NetworkPolicy| n.check().unwrap_err().0;
        assert_eq!(
            bad(NetworkPolicy {
                max_connections: 0,
                ..Default::default()
            }),
            "network.max_connections"
        );
        assert_eq!(
            bad(NetworkPolicy {
                idle_timeout: Dur(std::time::Duration::ZERO),
                ..Default::default()
            }),
            "network.idle_timeout"
        );
        assert_eq!(
            bad(NetworkPolicy {
                connect_timeout: Dur(std::time::Duration::ZERO),
                ..Default::default()
            }),
            "network.connect_timeout"
        );
        for name in ["A.com", "a.com.", "127.1", "a..b"] {
            let n = NetworkPolicy {
                mode: NetMode::Proxy,
                resolve: [(name.to_string(), "10.0.0.1".parse().unwrap())].into(),
                ..Default::default()
            };
            let (path, msg) = n.check().unwrap_err();
            assert_eq!(path, "network.resolve");
            assert!(msg.contains(name), "{msg}");
        }
    }

    #[test]
    fn modes() {
        for m in [NetMode::None, NetMode::Host, NetMode::Proxy] {
            assert_eq!(m.name().parse::<NetMode>(), Ok(m));
        }
        assert!("bridge"
            .parse::<NetMode>()
            .unwrap_err()
            .contains("\"none\", \"host\" or \"proxy\""));
    }
}
