//! Which addresses are public, and which strings are IP literals.
//!
//! Pure functions. An IPv6 address that embeds an IPv4 one (IPv4-mapped
//! `::ffff:0:0/96`, IPv4-compatible `::/96`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`) is judged by the IPv4 address inside it, so that no private
//! address is reachable through an IPv6 spelling.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::policy::network::numeric_part;

/// IPv4 ranges that are not public, with the name a refusal reports.
const V4_NOT_PUBLIC: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "0.0.0.0/8 (this network)"),
    (0x0a00_0000, 8, "10.0.0.0/8 (private, RFC 1918)"),
    (0x6440_0000, 10, "100.64.0.0/10 (carrier-grade NAT)"),
    (0x7f00_0000, 8, "127.0.0.0/8 (loopback)"),
    (0xa9fe_0000, 16, "169.254.0.0/16 (link-local, cloud metadata)"),
    (0xac10_0000, 12, "172.16.0.0/12 (private, RFC 1918)"),
    (0xc000_0000, 24, "192.0.0.0/24 (IETF protocol assignments)"),
    (0xc000_0200, 24, "192.0.2.0/24 (TEST-NET-1)"),
    (0xc058_6300, 24, "192.88.99.0/24 (6to4 relay anycast)"),
    (0xc0a8_0000, 16, "192.168.0.0/16 (private, RFC 1918)"),
    (0xc612_0000, 15, "198.18.0.0/15 (benchmarking)"),
    (0xc633_6400, 24, "198.51.100.0/24 (TEST-NET-2)"),
    (0xcb00_7100, 24, "203.0.113.0/24 (TEST-NET-3)"),
    (0xe000_0000, 4, "224.0.0.0/4 (multicast)"),
    (
        0xf000_0000,
        4,
        "240.0.0.0/4 (reserved, and 255.255.255.255 broadcast)",
    ),
];

/// IPv6 ranges that are not public (after the embedded-IPv4 forms are
/// unwrapped).
const V6_NOT_PUBLIC: &[(u128, u8, &str)] = &[
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "100::/64 (discard-only)",
    ),
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        32,
        "2001::/32 (Teredo)",
    ),
    (
        0x2001_0002_0000_0000_0000_0000_0000_0000,
        48,
        "2001:2::/48 (benchmarking)",
    ),
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "2001:db8::/32 (documentation)",
    ),
    (
        0x2001_0010_0000_0000_0000_0000_0000_0000,
        28,
        "2001:10::/28 (ORCHID)",
    ),
    // The rest of the IETF block. IANA lists a few globally reachable
    // assignments inside it (anycast PCP/TURN, AMT, AS112, ORCHIDv2, drone
    // remote ID); none is a destination a payload needs, so the whole
    // block is refused (an explicit IP/CIDR rule still allows one).
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        23,
        "2001::/23 (IETF protocol assignments)",
    ),
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "3fff::/20 (documentation)",
    ),
    (
        0x5f00_0000_0000_0000_0000_0000_0000_0000,
        16,
        "5f00::/16 (segment routing)",
    ),
    (
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        "fc00::/7 (unique local)",
    ),
    (
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        "fe80::/10 (link-local)",
    ),
    (
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        "fec0::/10 (site-local, deprecated)",
    ),
    (
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        "ff00::/8 (multicast)",
    ),
];

/// The IPv4 address an IPv6 address stands for, where it embeds one:
/// IPv4-mapped `::ffff:a.b.c.d` and IPv4-compatible `::a.b.c.d` (which
/// includes `::` and `::1`, read as 0.0.0.0 and 0.0.0.1: both refused).
pub fn unwrap_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let n = u128::from(a);
    let low = Ipv4Addr::from(n as u32);
    match n >> 32 {
        0xffff | 0 => Some(low),
        _ => None,
    }
}

/// The IPv4 address a translator reaches for `a`: NAT64 `64:ff9b::/96`
/// (its low 32 bits) and 6to4 `2002::/16` (bits 16 to 47).
pub fn translated_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let n = u128::from(a);
    if in_v6(a, 0x0064_ff9b << 96, 96) {
        Some(Ipv4Addr::from(n as u32))
    } else if in_v6(a, 0x2002 << 112, 16) {
        Some(Ipv4Addr::from((n >> 80) as u32))
    } else {
        None
    }
}

/// `ip` with an IPv4-mapped or IPv4-compatible IPv6 address replaced by the
/// IPv4 address it stands for (how rules compare addresses).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => unwrap_v4(a).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `net/len` contains `ip` (both of the same family). Bits of
/// `net` after the prefix are ignored (the pattern parser refuses them, but
/// a [`crate::policy::network::HostPattern`] can be built with them).
pub fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    use crate::policy::network::mask;
    match (net, ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => mask(ip, len) == mask(net, len),
        _ => false,
    }
}

fn in_v4(a: Ipv4Addr, net: u32, len: u8) -> bool {
    let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(a) & m == net
}

fn in_v6(a: Ipv6Addr, net: u128, len: u8) -> bool {
    let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(a) & m == net
}

/// Why `ip` is not a public address (the range it is in), or None when it
/// is public.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => V4_NOT_PUBLIC
            .iter()
            .find(|(net, len, _)| in_v4(a, *net, *len))
            .map(|r| r.2),
        IpAddr::V6(a) => {
            if a == Ipv6Addr::LOCALHOST {
                return Some("::1 (loopback)");
            }
            if a == Ipv6Addr::UNSPECIFIED {
                return Some(":: (unspecified)");
            }
            if let Some(v4) = unwrap_v4(a) {
                return non_public_range(IpAddr::V4(v4))
                    .map(|_| "an IPv4-mapped or IPv4-compatible address of a non-public IPv4 address");
            }
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4
            // address they embed.
            if let Some(v4) = translated_v4(a) {
                return non_public_range(IpAddr::V4(v4)).map(|_| {
                    if in_v6(a, 0x2002 << 112, 16) {
                        "a 6to4 address (2002::/16) of a non-public IPv4 address"
                    } else {
                        "a NAT64 address (64:ff9b::/96) of a non-public IPv4 address"
                    }
                });
            }
            if in_v6(a, 0x0064_ff9b_0001 << 80, 48) {
                return Some("64:ff9b:1::/48 (local-use NAT64)");
            }
            V6_NOT_PUBLIC
                .iter()
                .find(|(net, len, _)| in_v6(a, *net, *len))
                .map(|r| r.2)
                .or_else(|| (!in_v6(a, 0x2000 << 112, 3)).then_some("outside 2000::/3 (not global unicast)"))
        }
    }
}

/// Whether `ip` is a public unicast address: not loopback, private,
/// link-local, CGNAT, multicast, broadcast, reserved, documentation or
/// benchmarking space, in either family or in an IPv6 form embedding IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    non_public_range(ip).is_none()
}

/// Why a target string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The target as given.
    pub literal: String,
    /// Why.
    pub reason: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.literal, self.reason)
    }
}

impl std::error::Error for Refusal {}

/// Classify a connection target's host: `Ok(Some(ip))` for a canonical
/// dotted-quad IPv4 address or a standard IPv6 address (bracketed or not),
/// `Ok(None)` for anything that is not an IP literal (a name, checked
/// elsewhere), and a refusal for a string some resolver would read as an
/// address although it is not written as one: a single number
/// (`2130706433`), hex (`0x7f.1`), octal or leading zeros (`0177.0.0.1`,
/// `127.0.0.01`), fewer than four parts (`127.1`), an IPv6 zone (`%eth0`).
pub fn parse_ip_literal(host: &str) -> Result<Option<IpAddr>, Refusal> {
    let refuse = |reason| {
        Err(Refusal {
            literal: host.to_string(),
            reason,
        })
    };
    if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return refuse("'[' without a closing ']'");
        };
        return match inner.parse::<Ipv6Addr>() {
            Ok(a) => Ok(Some(IpAddr::V6(a))),
            Err(_) if inner.contains('%') => refuse("IPv6 zone identifiers are not accepted"),
            Err(_) => refuse("not a standard IPv6 address"),
        };
    }
    if host.contains(':') {
        return match host.parse::<Ipv6Addr>() {
            Ok(a) => Ok(Some(IpAddr::V6(a))),
            Err(_) if host.contains('%') => refuse("IPv6 zone identifiers are not accepted"),
            Err(_) => refuse("not a standard IPv6 address"),
        };
    }
    // The standard library accepts exactly four decimal parts of 0 to 255
    // without leading zeros.
    if let Ok(a) = host.parse::<Ipv4Addr>() {
        return Ok(Some(IpAddr::V4(a)));
    }
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    let last = trimmed.rsplit('.').next().unwrap_or_default();
    if numeric_part(last) {
        return refuse(
            "an IPv4 address in a non-standard form (a single number, hex, octal, leading zeros or fewer than four parts); write four decimal numbers such as 93.184.216.34",
        );
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn not_public() {
        let refused = [
            // IPv4
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "2001::1",
            "2001:0:4136:e378::1",
            "2001:2::1",
            "2001:10::1",
            "100::1",
            "3fff::1",
            "5f00::1",
            "64:ff9b:1::1",
            // the rest of 2001::/23 (IETF protocol assignments, not
            // globally reachable unless IANA says otherwise)
            "2001:5::1",
            "2001:100::1",
            "2001:1ff:ffff::1",
            "fe00::1",
            "4000::1",
            "1::1",
            "::2:0:0:1",
            // IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms of private IPv4
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.1.2.3",
            "::169.254.169.254",
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:0a00:0001::1",
            "2002:7f00:0001::",
            "2002:a9fe:a9fe::1",
        ];
        for s in refused {
            assert!(!is_public(ip(s)), "{s} counted as public");
            assert!(non_public_range(ip(s)).is_some(), "{s}");
        }
        assert_eq!(
            non_public_range(ip("169.254.169.254")),
            Some("169.254.0.0/16 (link-local, cloud metadata)")
        );
        assert_eq!(non_public_range(ip("::1")), Some("::1 (loopback)"));
        assert_eq!(non_public_range(ip("::")), Some(":: (unspecified)"));
        assert!(non_public_range(ip("::ffff:127.0.0.1"))
            .unwrap()
            .contains("IPv4-mapped"));
    }

    #[test]
    fn public() {
        let allowed = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.255",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "203.0.112.255",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860:4860::8888",
            "2001:db9::1",
            "2001:200::1",
            "3ffe:ffff::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
        ];
        for s in allowed {
            assert!(is_public(ip(s)), "{s} refused: {:?}", non_public_range(ip(s)));
        }
    }

    #[test]
    fn embedded_v4_is_unwrapped() {
        assert_eq!(canonical(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonical(ip("::1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonical(ip("::1")), ip("0.0.0.1"));
        assert_eq!(canonical(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(canonical(ip("1.2.3.4")), ip("1.2.3.4"));
        assert!(contains(ip("10.0.0.0"), 8, ip("10.9.9.9")));
        assert!(!contains(ip("10.0.0.0"), 8, ip("11.0.0.0")));
        assert!(!contains(ip("10.0.0.0"), 8, ip("::ffff:10.0.0.1")));
        assert!(contains(ip("0.0.0.0"), 0, ip("255.1.1.1")));
        assert!(contains(ip("2001:db8::"), 32, ip("2001:db8:1::1")));
    }

    #[test]
    fn literals() {
        let accepted = [
            ("1.2.3.4", "1.2.3.4"),
            ("127.0.0.1", "127.0.0.1"),
            ("0.0.0.0", "0.0.0.0"),
            ("255.255.255.255", "255.255.255.255"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:DB8::1", "2001:db8::1"),
            ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ];
        for (s, want) in accepted {
            assert_eq!(parse_ip_literal(s), Ok(Some(ip(want))), "{s}");
        }
        for name in [
            "example.com",
            "localhost",
            "1.example",
            "a.b.c.d",
            "0x.example",
            "xn--bcher-kva.example",
        ] {
            assert_eq!(parse_ip_literal(name), Ok(None), "{name}");
        }
        let refused = [
            "2130706433",
            "0x7f.1",
            "0177.0.0.1",
            "127.1",
            "127.0.1",
            "127.0.0.01",
            "0x7f000001",
            "0x7F.0.0.1",
            "017700000001",
            "1.2.3.4.5",
            "256.0.0.1",
            "127.0.0.1.",
            "0",
            "0x",
            "1.2.3.0x4",
            "example.0x10",
            "[::1",
            "[1.2.3.4]",
            "[::1%eth0]",
            "fe80::1%eth0",
            "1:2",
            "::ffff:127.1",
            "[::ffff:0x7f.0.0.1]",
        ];
        for s in refused {
            let r = parse_ip_literal(s).expect_err(s);
            assert_eq!(r.literal, s);
            assert!(!r.to_string().is_empty());
        }
    }
}
