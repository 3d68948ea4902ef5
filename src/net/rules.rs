//! The egress decision: a target (a name or an address, and a port) and
//! the addresses a name resolved to, against the policy's `allow` and
//! `deny` rules. Pure.
//!
//! - `deny` wins over `allow`. A deny rule without a port denies every port.
//!   A name deny rule matches the target's name; an IP/CIDR deny rule
//!   matches an IP target and every address a name resolved to.
//! - A name target is allowed only by a name rule, an IP target only by an
//!   IP/CIDR rule. An allow rule without a port allows 80 and 443.
//! - After resolution EVERY address, and an IP target itself, must be
//!   public ([`super::addr::is_public`]) unless an explicit IP/CIDR allow
//!   rule (for the target's port) covers it on purpose: the rule's whole
//!   network lies in one non-public range. A wide rule that merely contains
//!   the address (`0.0.0.0/0:443`) allows public addresses only. A name
//!   that resolved to nothing is refused.
//! - Addresses are compared in canonical form: an IPv4-mapped or
//!   IPv4-compatible IPv6 address is its IPv4 address. A deny rule also
//!   matches an address as written (an IPv6 network shorter than /96 holds
//!   mapped and compatible addresses), and a NAT64 (`64:ff9b::/96`) or
//!   6to4 (`2002::/16`) address by the IPv4 address it reaches.

use std::fmt;
use std::net::IpAddr;

use super::addr::{canonical, contains, non_public_range, parse_ip_literal, translated_v4, Refusal};
use crate::policy::network::{parse_name, HostPattern, NetworkPolicy, Pattern};

/// The host of a connection target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, normalised (lower case, no trailing dot).
    Name(String),
    /// An IP address.
    Ip(IpAddr),
}

/// What the payload asked to connect to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The host.
    pub host: Host,
    /// The port.
    pub port: u16,
}

impl Target {
    /// A target from the host a client sent (a name, an IPv4 literal in
    /// canonical form, an IPv6 literal with or without brackets), refusing
    /// ambiguous IPv4 spellings ([`parse_ip_literal`]), names that are not
    /// DNS names, and port 0.
    pub fn parse(host: &str, port: u16) -> Result<Target, Refusal> {
        if port == 0 {
            return Err(Refusal {
                literal: host.to_string(),
                reason: "port 0",
            });
        }
        let host = match parse_ip_literal(host)? {
            Some(ip) => Host::Ip(ip),
            None => Host::Name(parse_name(host).map_err(|_| Refusal {
                literal: host.to_string(),
                reason: "not a valid DNS name (letters, digits, '-' and '_' in ASCII labels; IDNA is not supported)",
            })?),
        };
        Ok(Target { host, port })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Name(n) => write!(f, "{n}:{}", self.port),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}:{}", self.port),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Why a target was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// `deny[rule]` matched the target or one of its addresses.
    DenyRule {
        /// Index into `deny`.
        rule: usize,
    },
    /// No `allow` rule matches the target.
    NoAllowRule,
    /// The name resolved to an address that is not public, and no IP/CIDR
    /// allow rule covers it.
    NotPublic {
        /// The address.
        addr: IpAddr,
        /// The range it is in.
        range: &'static str,
    },
    /// The name resolved to no address.
    NoAddress,
}

/// The decision on one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `allow[rule]` matched and every check passed.
    Allow {
        /// Index into `allow`.
        rule: usize,
    },
    /// Refused.
    Deny {
        /// Which rule or which check refused.
        reason: DenyReason,
    },
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow { rule } => write!(f, "allowed by network.allow[{rule}]"),
            Decision::Deny { reason } => match reason {
                DenyReason::DenyRule { rule } => write!(f, "denied by network.deny[{rule}]"),
                DenyReason::NoAllowRule => f.write_str("no network.allow rule matches"),
                DenyReason::NotPublic { addr, range } => write!(
                    f,
                    "resolves to {addr}, not a public address ({range}), and no IP/CIDR allow rule covers it"
                ),
                DenyReason::NoAddress => f.write_str("the name resolved to no address"),
            },
        }
    }
}

/// A policy's `allow` and `deny` lists, ready to decide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

/// Whether `p` matches the port: its own, or (none given) 80 and 443 for
/// allow, every port for deny.
fn port_matches(p: &Pattern, port: u16, deny: bool) -> bool {
    match p.port {
        Some(q) => q == port,
        None => deny || port == 80 || port == 443,
    }
}

fn name_matches(h: &HostPattern, name: &str) -> bool {
    let below = |d: &str| {
        name.len() > d.len() + 1 && name.ends_with(d) && name.as_bytes()[name.len() - d.len() - 1] == b'.'
    };
    match h {
        HostPattern::Exact(n) => name == n,
        HostPattern::Subdomains(d) => below(d),
        HostPattern::Domain(d) => name == d || below(d),
        HostPattern::Net(..) => false,
    }
}

fn ip_matches(h: &HostPattern, ip: IpAddr) -> bool {
    match h {
        HostPattern::Net(net, len) => {
            // The rule's own address in canonical form too: a rule written
            // as [::ffff:10.0.0.0]/104 means 10.0.0.0/8.
            let (net, len) = match (net, canonical(*net)) {
                (IpAddr::V6(_), IpAddr::V4(v4)) if *len >= 96 => (IpAddr::V4(v4), len - 96),
                _ => (*net, *len),
            };
            contains(net, len, canonical(ip))
        }
        _ => false,
    }
}

/// Whether the network `net/len` (in canonical form) lies wholly inside one
/// non-public range: its first and last addresses are non-public for the
/// same reason.
fn within_one_non_public_range(net: IpAddr, len: u8) -> bool {
    let (net, len) = match (net, canonical(net)) {
        (IpAddr::V6(_), IpAddr::V4(v4)) if len >= 96 => (IpAddr::V4(v4), len - 96),
        _ => (net, len),
    };
    let first = crate::policy::network::mask(net, len);
    let last = match first {
        IpAddr::V4(a) => {
            let host = u32::MAX.checked_shr(u32::from(len.min(32))).unwrap_or(0);
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(a) | host))
        }
        IpAddr::V6(a) => {
            let host = u128::MAX.checked_shr(u32::from(len.min(128))).unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a) | host))
        }
    };
    match (non_public_range(first), non_public_range(last)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

impl Rules {
    /// Rules from the lists, in their order (indexes in decisions refer to
    /// them).
    pub fn new(allow: Vec<Pattern>, deny: Vec<Pattern>) -> Rules {
        Rules { allow, deny }
    }

    /// The rules of a `"network"` section.
    pub fn from_policy(n: &NetworkPolicy) -> Rules {
        Rules::new(n.allow.clone(), n.deny.clone())
    }

    /// The first deny rule for `port` that matches `ip` in canonical form,
    /// as written (an IPv6 network shorter than /96 holds IPv4-mapped and
    /// -compatible addresses), or by the IPv4 address a NAT64 or 6to4
    /// spelling reaches: deny wins over every spelling of a denied address.
    fn deny_ip(&self, ip: IpAddr, port: u16) -> Option<usize> {
        let via = match ip {
            IpAddr::V6(a) => translated_v4(a).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.deny.iter().position(|p| {
            port_matches(p, port, true)
                && (ip_matches(&p.host, ip)
                    || matches!(p.host, HostPattern::Net(net, len) if contains(net, len, ip))
                    || via.is_some_and(|v4| ip_matches(&p.host, v4)))
        })
    }

    /// The first allow rule for `port` that covers the non-public address
    /// `ip` on purpose: an IP/CIDR rule whose whole network lies in one
    /// non-public range (`10.20.0.0/16`, `169.254.169.254`, `[fd00::]/8`).
    /// A wide rule that merely contains it (`0.0.0.0/0:443`, `::/0`,
    /// `172.0.0.0/8`) allows public addresses only: a name resolving to a
    /// private or metadata address is not reached through it.
    fn allow_non_public(&self, ip: IpAddr, port: u16) -> Option<usize> {
        self.allow.iter().position(|p| {
            port_matches(p, port, false)
                && ip_matches(&p.host, ip)
                && matches!(p.host, HostPattern::Net(net, len) if within_one_non_public_range(net, len))
        })
    }

    fn allow_ip(&self, ip: IpAddr, port: u16) -> Option<usize> {
        self.allow
            .iter()
            .position(|p| port_matches(p, port, false) && ip_matches(&p.host, ip))
    }

    /// The DNS stub's decision on a name, for any port: refused by a deny
    /// rule for every port (a name rule without a port), allowed by any
    /// name allow rule (whatever its port; the proxy decides on the port
    /// and the addresses when the payload connects). Nothing is resolved.
    pub fn decide_name(&self, name: &str) -> Decision {
        if let Some(rule) = self
            .deny
            .iter()
            .position(|p| p.port.is_none() && name_matches(&p.host, name))
        {
            return Decision::Deny {
                reason: DenyReason::DenyRule { rule },
            };
        }
        match self.allow.iter().position(|p| name_matches(&p.host, name)) {
            Some(rule) => Decision::Allow { rule },
            None => Decision::Deny {
                reason: DenyReason::NoAllowRule,
            },
        }
    }

    /// Decide on `target`, whose name resolved to `resolved` (for an IP
    /// target: the address itself, or nothing; any other address listed is
    /// checked like a resolved one).
    pub fn decide(&self, target: &Target, resolved: &[IpAddr]) -> Decision {
        let deny = |rule| Decision::Deny {
            reason: DenyReason::DenyRule { rule },
        };
        let port = target.port;
        // deny first, on the target and on every address.
        let denied = match &target.host {
            Host::Name(n) => self
                .deny
                .iter()
                .position(|p| port_matches(p, port, true) && name_matches(&p.host, n)),
            Host::Ip(ip) => self.deny_ip(*ip, port),
        };
        if let Some(rule) = denied.or_else(|| resolved.iter().find_map(|a| self.deny_ip(*a, port))) {
            return deny(rule);
        }
        let allowed = match &target.host {
            Host::Name(n) => self
                .allow
                .iter()
                .position(|p| port_matches(p, port, false) && name_matches(&p.host, n)),
            Host::Ip(ip) => self.allow_ip(*ip, port),
        };
        let Some(rule) = allowed else {
            return Decision::Deny {
                reason: DenyReason::NoAllowRule,
            };
        };
        if matches!(target.host, Host::Name(_)) && resolved.is_empty() {
            return Decision::Deny {
                reason: DenyReason::NoAddress,
            };
        }
        // An IP target is checked like a resolved address, whether or not
        // the caller listed it.
        let own = match target.host {
            Host::Ip(ip) => Some(ip),
            Host::Name(_) => None,
        };
        for a in own.into_iter().chain(resolved.iter().copied()) {
            if let Some(range) = non_public_range(a) {
                if self.allow_non_public(a, port).is_none() {
                    return Decision::Deny {
                        reason: DenyReason::NotPublic { addr: a, range },
                    };
                }
            }
        }
        Decision::Allow { rule }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_for_the_dns_stub() {
        let r = Rules::new(
            pats(&[
                "api.example.com:8443",
                "**.pypi.org",
                "*.hosted.net",
                "10.0.0.0/8:80",
            ]),
            pats(&["bad.pypi.org", "x.hosted.net:9999"]),
        );
        assert_eq!(r.decide_name("api.example.com"), allow(0));
        assert_eq!(r.decide_name("pypi.org"), allow(1));
        assert_eq!(r.decide_name("files.pypi.org"), allow(1));
        assert_eq!(r.decide_name("bad.pypi.org"), by_deny(0));
        assert_eq!(r.decide_name("a.bad.pypi.org"), allow(1));
        assert_eq!(
            r.decide_name("hosted.net"),
            Decision::Deny {
                reason: DenyReason::NoAllowRule
            }
        );
        // A deny rule for one port leaves the name resolvable.
        assert_eq!(r.decide_name("x.hosted.net"), allow(2));
        assert_eq!(
            r.decide_name("example.com"),
            Decision::Deny {
                reason: DenyReason::NoAllowRule
            }
        );
        assert_eq!(
            r.decide_name("10.0.0.1"),
            Decision::Deny {
                reason: DenyReason::NoAllowRule
            }
        );
    }

    fn pats(list: &[&str]) -> Vec<Pattern> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn t(host: &str, port: u16) -> Target {
        Target::parse(host, port).unwrap()
    }

    fn allow(rule: usize) -> Decision {
        Decision::Allow { rule }
    }

    fn by_deny(rule: usize) -> Decision {
        Decision::Deny {
            reason: DenyReason::DenyRule { rule },
        }
    }

    fn no_rule() -> Decision {
        Decision::Deny {
            reason: DenyReason::NoAllowRule,
        }
    }

    fn not_public(a: &str) -> Decision {
        let addr: IpAddr = a.parse().unwrap();
        Decision::Deny {
            reason: DenyReason::NotPublic {
                addr,
                range: non_public_range(addr).unwrap(),
            },
        }
    }

    /// The issue's example rules.
    fn issue_rules() -> Rules {
        Rules::new(
            pats(&[
                "api.example.com:443",
                "*.pythonhosted.org:443",
                "pypi.org",
                "10.20.0.0/16:8080",
                "[2001:db8::1]:443",
                "**.example.net",
            ]),
            pats(&["metadata.internal", "evil.example.net", "198.51.100.0/24"]),
        )
    }

    #[test]
    fn table() {
        let r = issue_rules();
        let public = ["93.184.216.34"];
        let cases: Vec<(Target, Vec<IpAddr>, Decision)> = vec![
            // exact name, port given
            (t("api.example.com", 443), ips(&public), allow(0)),
            (t("API.example.com.", 443), ips(&public), allow(0)),
            (t("api.example.com", 80), ips(&public), no_rule()),
            (t("x.api.example.com", 443), ips(&public), no_rule()),
            (t("example.com", 443), ips(&public), no_rule()),
            // *.x: subdomains only
            (t("files.pythonhosted.org", 443), ips(&public), allow(1)),
            (t("a.b.pythonhosted.org", 443), ips(&public), allow(1)),
            (t("pythonhosted.org", 443), ips(&public), no_rule()),
            (t("evilpythonhosted.org", 443), ips(&public), no_rule()),
            (t("files.pythonhosted.org", 80), ips(&public), no_rule()),
            // no port: 80 and 443
            (t("pypi.org", 443), ips(&public), allow(2)),
            (t("pypi.org", 80), ips(&public), allow(2)),
            (t("pypi.org", 8080), ips(&public), no_rule()),
            // **.x: the name and subdomains
            (t("example.net", 80), ips(&public), allow(5)),
            (t("www.example.net", 443), ips(&public), allow(5)),
            (t("notexample.net", 443), ips(&public), no_rule()),
            // deny wins, on every port for a deny rule without one
            (t("evil.example.net", 443), ips(&public), by_deny(1)),
            (t("metadata.internal", 80), ips(&["169.254.169.254"]), by_deny(0)),
            (t("metadata.internal", 9999), vec![], by_deny(0)),
            // deny CIDR covers resolved addresses of an allowed name
            (
                t("pypi.org", 443),
                ips(&["93.184.216.34", "198.51.100.7"]),
                by_deny(2),
            ),
            // CIDR rules for IP targets
            (t("10.20.3.4", 8080), vec![], allow(3)),
            (t("10.20.3.4", 443), vec![], no_rule()),
            (t("10.21.0.1", 8080), vec![], no_rule()),
            (t("[::ffff:10.20.0.9]", 8080), vec![], allow(3)),
            (t("::10.20.0.9", 8080), vec![], allow(3)),
            (t("2001:db8::1", 443), vec![], allow(4)),
            (t("[2001:db8::1]", 443), vec![], allow(4)),
            (t("2001:db8::2", 443), vec![], no_rule()),
            // an IP target is matched by IP rules only
            (t("93.184.216.34", 443), vec![], no_rule()),
            (t("198.51.100.7", 8080), vec![], by_deny(2)),
            (t("::ffff:198.51.100.7", 443), vec![], by_deny(2)),
            // names resolving to non-public addresses
            (t("pypi.org", 443), ips(&["127.0.0.1"]), not_public("127.0.0.1")),
            (t("pypi.org", 443), ips(&["10.0.0.5"]), not_public("10.0.0.5")),
            (
                t("pypi.org", 443),
                ips(&["169.254.169.254"]),
                not_public("169.254.169.254"),
            ),
            (
                t("pypi.org", 443),
                ips(&["93.184.216.34", "192.168.0.1"]),
                not_public("192.168.0.1"),
            ),
            (
                t("pypi.org", 443),
                ips(&["::ffff:127.0.0.1"]),
                not_public("::ffff:127.0.0.1"),
            ),
            (t("pypi.org", 443), ips(&["fd00::1"]), not_public("fd00::1")),
            (t("pypi.org", 443), ips(&["2606:4700::1111", "8.8.8.8"]), allow(2)),
            // nothing resolved
            (
                t("pypi.org", 443),
                vec![],
                Decision::Deny {
                    reason: DenyReason::NoAddress,
                },
            ),
            // a name rule never allows a target given by address
            (t("127.0.0.1", 443), vec![], no_rule()),
        ];
        for (target, resolved, want) in cases {
            assert_eq!(r.decide(&target, &resolved), want, "{target} {resolved:?}");
        }
    }

    #[test]
    fn a_wide_cidr_allows_public_addresses_only() {
        let r = Rules::new(pats(&["0.0.0.0/0:443", "[::]/0:443", "172.0.0.0/8:443"]), vec![]);
        // Public addresses: through the wide rules.
        assert_eq!(r.decide(&t("93.184.216.34", 443), &[]), allow(0));
        assert_eq!(r.decide(&t("[2606:4700::1]", 443), &[]), allow(1));
        assert_eq!(r.decide(&t("172.1.2.3", 443), &[]), allow(0));
        // Non-public ones: not through a rule that merely contains them.
        for a in [
            "169.254.169.254",
            "10.0.0.5",
            "127.0.0.1",
            "172.16.0.1",
            "[fd00::1]",
            "[::1]",
        ] {
            let ip = a.trim_matches(|c| c == '[' || c == ']');
            assert_eq!(r.decide(&t(a, 443), &[]), not_public(ip), "{a}");
        }
        // A rule inside one non-public range covers it on purpose.
        let r = Rules::new(
            pats(&[
                "169.254.169.254:80",
                "10.20.0.0/16:8080",
                "[fd00::]/8:443",
                "[::ffff:10.0.0.0]/104:22",
            ]),
            vec![],
        );
        assert_eq!(r.decide(&t("169.254.169.254", 80), &[]), allow(0));
        assert_eq!(r.decide(&t("10.20.3.4", 8080), &[]), allow(1));
        assert_eq!(r.decide(&t("[fd00::5]", 443), &[]), allow(2));
        assert_eq!(r.decide(&t("10.1.1.1", 22), &[]), allow(3));
        // 10.0.0.0/7 spans 10/8 and the public 11/8: not one range.
        let r = Rules::new(pats(&["10.0.0.0/7:443"]), vec![]);
        assert_eq!(r.decide(&t("10.0.0.1", 443), &[]), not_public("10.0.0.1"));
        assert_eq!(r.decide(&t("11.0.0.1", 443), &[]), allow(0));
    }

    #[test]
    fn cidr_allow_covers_private_resolution() {
        let r = Rules::new(
            pats(&["internal.corp:8080", "10.20.0.0/16:8080", "127.0.0.1:8080"]),
            vec![],
        );
        // covered: allowed by the name rule
        assert_eq!(
            r.decide(&t("internal.corp", 8080), &ips(&["10.20.1.1"])),
            allow(0)
        );
        assert_eq!(
            r.decide(&t("internal.corp", 8080), &ips(&["127.0.0.1"])),
            allow(0)
        );
        assert_eq!(
            r.decide(&t("internal.corp", 8080), &ips(&["::ffff:10.20.1.1"])),
            allow(0)
        );
        // not covered: another private address, or the CIDR rule's port differs
        assert_eq!(
            r.decide(&t("internal.corp", 8080), &ips(&["10.20.1.1", "10.30.0.1"])),
            not_public("10.30.0.1")
        );
        assert_eq!(
            r.decide(&t("internal.corp", 8080), &ips(&["127.0.0.2"])),
            not_public("127.0.0.2")
        );
        let r2 = Rules::new(pats(&["internal.corp", "10.20.0.0/16:8080"]), vec![]);
        assert_eq!(
            r2.decide(&t("internal.corp", 443), &ips(&["10.20.1.1"])),
            not_public("10.20.1.1")
        );
        // an IP target allowed by its CIDR rule is covered by it
        assert_eq!(r.decide(&t("127.0.0.1", 8080), &[]), allow(2));
        assert_eq!(r.decide(&t("127.0.0.1", 8080), &ips(&["127.0.0.1"])), allow(2));
    }

    #[test]
    fn empty_rules_deny_everything() {
        let r = Rules::default();
        assert_eq!(
            r.decide(&t("example.com", 443), &ips(&["93.184.216.34"])),
            no_rule()
        );
        assert_eq!(r.decide(&t("1.1.1.1", 443), &[]), no_rule());
    }

    #[test]
    fn mapped_rule_spelling() {
        let r = Rules::new(
            pats(&["[::ffff:10.0.0.0]/104:22"]),
            pats(&["[::ffff:10.9.0.0]/112"]),
        );
        assert_eq!(r.decide(&t("10.1.2.3", 22), &[]), allow(0));
        assert_eq!(r.decide(&t("10.9.0.1", 22), &[]), by_deny(0));
    }

    /// A deny rule written for an IPv4 network also denies the IPv6
    /// spellings that reach it through a translator: NAT64 (what DNS64
    /// synthesises for every IPv4-only name on an IPv6-only network) and
    /// 6to4, as `is_public` already reads them.
    #[test]
    fn ipv4_deny_covers_nat64_and_6to4_spellings() {
        let r = Rules::new(
            pats(&["pypi.org", "[64:ff9b::]/96:443", "[2002::]/16:443"]),
            pats(&["93.184.216.0/24"]),
        );
        for a in [
            "64:ff9b::5db8:d822",
            "64:ff9b::93.184.216.34",
            "2002:5db8:d822::1",
        ] {
            assert_eq!(r.decide(&t("pypi.org", 443), &ips(&[a])), by_deny(0), "{a}");
            assert_eq!(r.decide(&t(a, 443), &[]), by_deny(0), "{a}");
        }
        // Other addresses in the translator prefixes are not denied.
        assert_eq!(
            r.decide(&t("pypi.org", 443), &ips(&["64:ff9b::808:808"])),
            allow(0)
        );
        assert_eq!(r.decide(&t("64:ff9b::808:808", 443), &[]), allow(1));
    }

    /// An IPv6 deny network shorter than /96 covers the IPv4-mapped and
    /// IPv4-compatible addresses inside it as written, although rules
    /// compare those as IPv4: deny wins over every spelling.
    #[test]
    fn an_ipv6_deny_network_covers_its_mapped_addresses() {
        let r = Rules::new(pats(&["1.2.3.0/24:443", "pypi.org"]), pats(&["[::]/0"]));
        assert_eq!(r.decide(&t("1.2.3.4", 443), &[]), allow(0));
        assert_eq!(r.decide(&t("::ffff:1.2.3.4", 443), &[]), by_deny(0));
        assert_eq!(r.decide(&t("::1.2.3.4", 443), &[]), by_deny(0));
        assert_eq!(r.decide(&t("pypi.org", 443), &ips(&["8.8.8.8"])), allow(1));
        assert_eq!(
            r.decide(&t("pypi.org", 443), &ips(&["::ffff:8.8.8.8"])),
            by_deny(0)
        );
    }

    /// A network built through the library (the fields are public) with
    /// bits set after its prefix still denies its whole network.
    #[test]
    fn a_network_with_host_bits_set_still_matches() {
        let sloppy = |a: &str, l: u8| Pattern {
            host: HostPattern::Net(a.parse().unwrap(), l),
            port: None,
        };
        let r = Rules::new(
            vec![sloppy("10.0.0.0", 8), sloppy("2001:db8::", 32)],
            vec![sloppy("10.9.9.9", 16), sloppy("2001:db8:1::5", 48)],
        );
        assert_eq!(r.decide(&t("10.9.0.1", 443), &[]), by_deny(0));
        assert_eq!(r.decide(&t("10.8.0.1", 443), &[]), allow(0));
        assert_eq!(r.decide(&t("2001:db8:1::1", 443), &[]), by_deny(1));
        assert_eq!(r.decide(&t("2001:db8:2::1", 443), &[]), allow(1));
    }

    #[test]
    fn targets() {
        assert_eq!(t("Example.COM.", 1).host, Host::Name("example.com".into()));
        assert_eq!(t("[::1]", 1).host, Host::Ip("::1".parse().unwrap()));
        for bad in [
            "2130706433",
            "0x7f.1",
            "0177.0.0.1",
            "127.1",
            "bücher.de",
            "a b",
            "",
            "a..b",
        ] {
            assert!(Target::parse(bad, 443).is_err(), "{bad}");
        }
        assert!(Target::parse("example.com", 0).is_err());
        assert_eq!(t("[2001:db8::1]", 443).to_string(), "[2001:db8::1]:443");
        assert_eq!(
            issue_rules().decide(&t("pypi.org", 1), &[]).to_string(),
            "no network.allow rule matches"
        );
    }

    /// What the C library reads `s` as, with no DNS: inet_aton's IPv4
    /// forms, or getaddrinfo with AI_NUMERICHOST (IPv6 too).
    fn libc_numeric(s: &str) -> Option<IpAddr> {
        let c = std::ffi::CString::new(s).ok()?;
        extern "C" {
            fn inet_aton(cp: *const libc::c_char, inp: *mut libc::in_addr) -> libc::c_int;
        }
        let mut a = libc::in_addr { s_addr: 0 };
        // SAFETY: c is NUL-terminated and a is a valid in_addr to write.
        if unsafe { inet_aton(c.as_ptr(), &mut a) } != 0 {
            return Some(IpAddr::V4(u32::from_be(a.s_addr).into()));
        }
        // SAFETY: an all-zero addrinfo is a valid hints value.
        let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
        hints.ai_flags = libc::AI_NUMERICHOST;
        let mut res = std::ptr::null_mut();
        // SAFETY: c is NUL-terminated, hints is initialised, res receives a
        // list freed below.
        if unsafe { libc::getaddrinfo(c.as_ptr(), std::ptr::null(), &hints, &mut res) } != 0 {
            return None;
        }
        // SAFETY: getaddrinfo succeeded: res is a non-empty list whose
        // ai_addr matches ai_family; it is freed once, here.
        unsafe {
            let ai = &*res;
            let ip = match ai.ai_family {
                libc::AF_INET => {
                    let sa = &*(ai.ai_addr as *const libc::sockaddr_in);
                    Some(IpAddr::V4(u32::from_be(sa.sin_addr.s_addr).into()))
                }
                libc::AF_INET6 => {
                    let sa = &*(ai.ai_addr as *const libc::sockaddr_in6);
                    Some(IpAddr::V6(sa.sin6_addr.s6_addr.into()))
                }
                _ => None,
            };
            libc::freeaddrinfo(res);
            ip
        }
    }

    /// A target the parser takes for a name is never an address to the C
    /// library (so resolving it cannot reach an address that skipped the
    /// literal checks), and an address it accepts is the one the C
    /// library reads.
    #[test]
    fn targets_agree_with_the_c_library() {
        const PIECES: &[&str] = &[
            "0",
            "1",
            "7",
            "8",
            "00",
            "0x",
            "0X",
            "f",
            "e",
            "ff",
            "255",
            "256",
            "127",
            "4294967295",
            ".",
            ".",
            ".",
            ":",
            "::",
            "[",
            "]",
            "%",
            " ",
            "\t",
            "\n",
            "a",
            "x",
            "ffff",
            "10",
            "-",
            "+",
            "_",
        ];
        let mut rng = Rng(0x0dd_ba11_c0ff_ee00);
        let (mut names, mut addrs) = (0, 0);
        for _ in 0..40_000 {
            let n = 1 + (rng.next() % 9) as usize;
            let s: String = (0..n)
                .map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize])
                .collect();
            match Target::parse(&s, 443).map(|t| t.host) {
                Ok(Host::Name(name)) => {
                    names += 1;
                    assert_eq!(libc_numeric(&s), None, "{s:?} is a name to cordon");
                    assert_eq!(libc_numeric(&name), None, "{s:?} -> {name:?}");
                }
                Ok(Host::Ip(ip)) => {
                    addrs += 1;
                    let bare = s.trim_start_matches('[').trim_end_matches(']');
                    assert_eq!(libc_numeric(bare), Some(ip), "{s:?}");
                }
                Err(_) => {}
            }
        }
        assert!(
            names > 2000 && addrs > 150,
            "{names} names, {addrs} addresses: the generator is too narrow"
        );
    }

    /// xorshift64*, to spread inputs around.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Strings built from the pieces patterns and literals are made of: the
    /// parsers never panic; an accepted pattern prints in a form that parses
    /// back to it; a name the pattern grammar accepts is never an IP literal
    /// nor a refused one for the target parser, and the reverse.
    #[test]
    fn parsers_agree_and_never_panic() {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            "1",
            "7",
            "9",
            "00",
            "0x",
            "0X",
            "f",
            "ff",
            "255",
            "256",
            "127",
            "4294967295",
            ".",
            ".",
            ":",
            "::",
            "[",
            "]",
            "/",
            "*",
            "**",
            "-",
            "_",
            "%",
            "ü",
            " ",
            "\0",
            "example",
            "com",
            "ffff",
            "10",
            "64",
            "443",
            "65536",
            "xn--",
            "\u{ff0e}",
        ];
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut accepted = 0;
        for _ in 0..60_000 {
            let n = 1 + (rng.next() % 8) as usize;
            let s: String = (0..n)
                .map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize])
                .collect();
            if let Ok(p) = s.parse::<Pattern>() {
                accepted += 1;
                let shown = p.to_string();
                assert_eq!(shown.parse::<Pattern>().as_ref(), Ok(&p), "{s:?} -> {shown:?}");
                if let HostPattern::Exact(name) = &p.host {
                    assert_eq!(parse_ip_literal(name), Ok(None), "{s:?}: name {name:?}");
                }
            }
            let literal = parse_ip_literal(&s);
            if parse_name(&s).is_ok() {
                assert_eq!(literal, Ok(None), "{s:?} is a name and {literal:?}");
            }
            if let Ok(t) = Target::parse(&s, 443) {
                // A target is decided without panicking, with any addresses.
                let r = Rules::new(
                    pats(&["**.example:443", "0.0.0.0/0", "[::]/0"]),
                    pats(&["10.0.0.0/8"]),
                );
                let _ = r.decide(&t, &ips(&["10.1.1.1", "::1", "8.8.8.8"]));
            }
        }
        assert!(
            accepted > 1000,
            "only {accepted} random patterns parsed: the generator is too narrow"
        );
    }
}
