//! A payload with network mode `none` (the default, or `--net none`) that
//! tries every way out to the host it can think of: the host's loopback in
//! IPv4 and IPv6, each of the host's own addresses, an abstract unix socket
//! (they belong to the network namespace), and UDP to the host's loopback.
//! None may reach the host; with `--net host` the same probe does (so the
//! probe itself works).

use std::net::{IpAddr, TcpListener, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::time::Duration;

use crate::common::{have_python, modes, Mode};
use crate::require;

const PROBE: &str = r#"
import socket, sys
port, uport, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def tcp(host):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "open"
    except OSError:
        return "closed"
for host in sys.argv[4:]:
    print("tcp", host, tcp(host))
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    u.connect("\0" + name)
    print("abstract open")
except OSError:
    print("abstract closed")
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    d.sendto(b"escaped", ("127.0.0.1", uport))
except OSError:
    pass
print("done")
"#;

/// The host's own addresses (every interface), from getifaddrs.
fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr of the family it names.
            let fam = unsafe { (*ifa.ifa_addr).sa_family } as i32;
            if fam == libc::AF_INET {
                // SAFETY: the family is AF_INET, so it is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes()));
            } else if fam == libc::AF_INET6 {
                // SAFETY: the family is AF_INET6, so it is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                if sin6.sin6_scope_id == 0 {
                    out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                }
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out.sort();
    out.dedup();
    out
}

#[test]
fn net_none_reaches_nothing_on_the_host() {
    require!("python3", have_python(), "python3 is not installed");
    // One port on every host address, IPv4 and IPv6.
    // Dual-stack where the host has IPv6 (Linux's default bindv6only=0).
    let (listener, v6) = match TcpListener::bind("[::]:0") {
        Ok(l) => (l, true),
        Err(_) => (TcpListener::bind("0.0.0.0:0").expect("listener"), false),
    };
    let port = listener.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let uport = udp.local_addr().unwrap().port();
    let name = format!("cordon-test-abstract-{}", std::process::id());
    let _abs = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
        .expect("abstract listener");
    let mut targets: Vec<String> = vec!["127.0.0.1".into(), "127.1.2.3".into()];
    if v6 {
        targets.push("::1".into());
    }
    for a in host_addresses() {
        if a.is_ipv4() || v6 {
            targets.push(a.to_string());
        }
    }
    targets.sort();
    targets.dedup();
    let mut args = vec![port.to_string(), uport.to_string(), name.clone()];
    args.extend(targets.iter().cloned());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    for mode in modes() {
        // --no-landlock: the namespace alone must hold (the default
        // policy's Landlock scope also refuses abstract sockets).
        for flags in [&[][..], &["--net", "none"][..], &["--no-landlock"][..]] {
            let r = py_args(mode, flags, &argv);
            let out = r.stdout();
            assert!(
                out.contains("done"),
                "{mode:?} {flags:?}: the probe did not finish\n{out}\n{}",
                r.stderr()
            );
            assert!(
                !out.contains("open"),
                "{mode:?} {flags:?}: reached the host\n{out}"
            );
            assert_eq!(out.matches(" closed").count(), targets.len() + 1, "{out}");
            let mut buf = [0u8; 16];
            assert!(
                udp.recv_from(&mut buf).is_err(),
                "{mode:?} {flags:?}: a datagram reached the host"
            );
        }
        // The probe works: with the host's network it reaches all three.
        let r = py_args(mode, &["--net", "host", "--no-landlock"], &argv);
        let out = r.stdout();
        assert!(
            out.contains("tcp 127.0.0.1 open"),
            "{mode:?}: --net host\n{out}\n{}",
            r.stderr()
        );
        assert!(out.contains("abstract open"), "{mode:?}: --net host\n{out}");
        // Every target is a real way to the host.
        assert_eq!(
            out.matches(" open").count(),
            targets.len() + 1,
            "{mode:?}: --net host\n{out}"
        );
        let mut buf = [0u8; 16];
        let got = udp.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec());
        assert_eq!(
            got.ok().as_deref(),
            Some(&b"escaped"[..]),
            "{mode:?}: --net host, no datagram"
        );
    }
}

/// Run the probe with its arguments.
fn py_args(mode: Mode, flags: &[&str], argv: &[&str]) -> crate::common::Run {
    let mut cmd = vec!["/usr/bin/python3", "-c", PROBE];
    cmd.extend_from_slice(argv);
    crate::common::run(mode, flags, &cmd)
}

const WALL_PROBE: &str = r#"
import socket, sys
port = int(sys.argv[1])
if sys.argv[2] == "own":
    # A server of the payload's own, on its sandbox's loopback.
    srv = socket.create_server(("127.0.0.1", port))
for name, fam, proto, host in (("tcp", socket.AF_INET, 0, "127.0.0.1"),
                               ("mptcp", socket.AF_INET, 262, "127.0.0.1"),
                               ("mptcp6", socket.AF_INET6, 262, "::ffff:127.0.0.1"),
                               ("smc", socket.AF_INET, 256, "127.0.0.1")):
    try:
        s = socket.socket(fam, socket.SOCK_STREAM, proto)
        s.settimeout(3)
        s.connect((host, port))
        print(name, "open")
    except OSError as e:
        print(name, "closed", e.errno)
"#;

/// The running kernel's Landlock ABI (0: none).
fn landlock_abi() -> u32 {
    // SAFETY: a version query: null attr, size 0, flag 1.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    r.max(0) as u32
}

/// Landlock's TCP rules cover TCP sockets only: an MPTCP socket
/// (`IPPROTO_MPTCP`, which falls back to plain TCP with a peer that does
/// not speak it) or an SMC one connects to any port. Wherever cordon's
/// Landlock section limits TCP ports (`landlock.tcp_connect`, and the
/// wall around the proxy's ports in mode proxy), such sockets are refused.
/// (An MPTCP socket reached a host server on a port `--net host
/// --landlock-connect 1` walled off, and the payload's own server past
/// the proxy's wall.)
#[test]
fn no_socket_protocol_steps_around_the_landlock_tcp_wall() {
    require!("python3", have_python(), "python3 is not installed");
    if landlock_abi() < 4 {
        // No Landlock TCP rules on this kernel (the VM lane's 6.1): there is
        // no wall to step around, and mode proxy says its wall is missing.
        for mode in modes() {
            let r = crate::common::run(mode, &["--net", "proxy"], &["/bin/true"]);
            let unenforced = r.status.as_ref().expect("outcome")["unenforced"].to_string();
            assert!(unenforced.contains("tcp_connect wall"), "{mode:?}: {unenforced}");
        }
        return;
    }
    let host = TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = host.local_addr().unwrap().port().to_string();
    for mode in modes() {
        for (flags, which) in [
            (&["--net", "host", "--landlock-connect", "1"][..], "host"),
            (&["--net", "proxy"][..], "own"),
        ] {
            let r = crate::common::run(mode, flags, &["/usr/bin/python3", "-c", WALL_PROBE, &port, which]);
            let out = r.stdout();
            let d = format!("{mode:?} {flags:?}\n{out}\n{}", r.stderr());
            assert_eq!(r.code(), 0, "{d}");
            assert!(out.contains(&format!("tcp closed {}\n", libc::EACCES)), "{d}");
            assert_eq!(out.matches(" closed ").count(), 4, "{d}");
        }
        // The probe works: without the wall MPTCP reaches the host (where
        // the kernel has it), and TCP does.
        let r = crate::common::run(
            mode,
            &["--net", "host"],
            &["/usr/bin/python3", "-c", WALL_PROBE, &port, "host"],
        );
        let out = r.stdout();
        assert!(out.contains("tcp open\n"), "{mode:?}\n{out}\n{}", r.stderr());
        if !out.contains("mptcp open\n") {
            eprintln!("SKIPPED (part): this kernel has no MPTCP: {out}");
        }
    }
}
