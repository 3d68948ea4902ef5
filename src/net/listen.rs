//! The proxy's listeners, made by the clone child: a socket belongs to the
//! network namespace it was created in, and an unprivileged supervisor
//! cannot enter the sandbox's, so the child binds them (inside its netns,
//! after `lo` is up, before the payload is forked), hands them to the
//! supervisor over a unix socket (SCM_RIGHTS) and closes its copies. The
//! payload never holds them.
//!
//! [`make_and_send`] runs after clone: no allocation, no lock, no panic.

use std::os::raw::c_int;

use crate::error::{ChildError, Step};
use crate::sys::{self, MAX_PASSED_FDS};

/// The HTTP proxy's port on the sandbox's 127.0.0.1 (CONNECT).
pub const HTTP_PORT: u16 = 3128;
/// The SOCKS5 proxy's port on the sandbox's 127.0.0.1.
pub const SOCKS_PORT: u16 = 1080;
/// The DNS stub's port on the sandbox's 127.0.0.1 (UDP and TCP).
pub const DNS_PORT: u16 = 53;

/// The second address of the sandbox's `lo` when the DNS stub runs (see
/// [`make_and_send`]).
pub const ADDRCONFIG_ALIAS: [u8; 4] = [127, 0, 0, 2];

/// Backlog of each listener.
const BACKLOG: c_int = 128;

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// HTTP CONNECT and absolute-form HTTP, on 127.0.0.1:[`HTTP_PORT`].
    Http,
    /// SOCKS5, on 127.0.0.1:[`SOCKS_PORT`].
    Socks,
    /// The DNS stub over UDP, on 127.0.0.1:[`DNS_PORT`].
    DnsUdp,
    /// The DNS stub over TCP, on 127.0.0.1:[`DNS_PORT`].
    DnsTcp,
    /// The transparent relay of one port, on every address of the
    /// sandbox's netns (`lo` only): a connection to a fake address the
    /// DNS stub gave goes to the name it stands for.
    Transparent,
}

/// One listener: what it serves and its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    /// What it serves.
    pub service: Service,
    /// Its port.
    pub port: u16,
}

impl Listener {
    const EMPTY: Listener = Listener {
        service: Service::Http,
        port: 0,
    };

    /// The address it binds: 127.0.0.1, or every address for the
    /// transparent relay (the fake addresses are 127.1.0.0/16, on `lo`).
    fn addr(&self) -> [u8; 4] {
        match self.service {
            Service::Transparent => [0, 0, 0, 0],
            _ => [127, 0, 0, 1],
        }
    }
}

/// Which listeners the child makes: a fixed-size, `Copy` list (the child
/// reads it without allocating), in the order their fds are sent. Empty
/// outside mode `proxy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listeners {
    list: [Listener; MAX_PASSED_FDS],
    len: usize,
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners::NONE
    }
}

use crate::policy::network::MAX_TRANSPARENT_PORTS;

// The hand-off message has room for the four fixed listeners and every
// transparent port the policy check lets through.
const _: () = assert!(4 + MAX_TRANSPARENT_PORTS <= MAX_PASSED_FDS);

impl Listeners {
    /// No listeners (modes `none` and `host`).
    pub const NONE: Listeners = Listeners {
        list: [Listener::EMPTY; MAX_PASSED_FDS],
        len: 0,
    };

    /// The listeners of mode `proxy`: HTTP and SOCKS5; with `dns`, the DNS
    /// stub (UDP and TCP) and a transparent relay on each of
    /// `transparent_ports` (at most [`MAX_TRANSPARENT_PORTS`]; the policy
    /// check refuses more, and duplicates or the fixed ports).
    pub fn proxy(dns: bool, transparent_ports: &[u16]) -> Listeners {
        let mut l = Listeners::NONE;
        l.push(Service::Http, HTTP_PORT);
        l.push(Service::Socks, SOCKS_PORT);
        if dns {
            l.push(Service::DnsUdp, DNS_PORT);
            l.push(Service::DnsTcp, DNS_PORT);
            for &port in transparent_ports.iter().take(MAX_TRANSPARENT_PORTS) {
                l.push(Service::Transparent, port);
            }
        }
        l
    }

    fn push(&mut self, service: Service, port: u16) {
        if self.len < MAX_PASSED_FDS {
            self.list[self.len] = Listener { service, port };
            self.len += 1;
        }
    }

    /// The listeners, in the order the fds are sent.
    pub fn list(&self) -> &[Listener] {
        &self.list[..self.len.min(MAX_PASSED_FDS)]
    }

    /// The TCP ports the payload connects to on the sandbox's loopback to
    /// reach cordon (for the Landlock `tcp_connect` wall).
    pub fn tcp_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.list()
            .iter()
            .filter(|l| l.service != Service::DnsUdp)
            .map(|l| l.port)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }
}

/// Close the first `n` of `fds`.
fn close_all(fds: &[c_int]) {
    for &fd in fds {
        // SAFETY: each fd was opened by `make_and_send` and is used no more.
        unsafe { sys::close(fd) };
    }
}

/// In the child: make each listener in this network namespace,
/// send them all in one message on `sock`, close them and `sock`. On
/// failure the listeners made so far are closed too. Allocation-free.
pub fn make_and_send(l: &Listeners, sock: c_int) -> Result<(), ChildError> {
    let mut fds: [c_int; MAX_PASSED_FDS] = [-1; MAX_PASSED_FDS];
    let list = l.list();
    if list.iter().any(|one| one.service == Service::DnsUdp) {
        // glibc's getaddrinfo with AI_ADDRCONFIG (Node's default, and
        // getaddrinfo's with no hints) asks for IPv4 addresses only when
        // the host has an IPv4 address other than 127.0.0.1: give the
        // sandbox one, or such clients never ask the DNS stub.
        sys::loopback_alias(ADDRCONFIG_ALIAS).map_err(|e| ChildError::new(Step::ProxyListen, e, 0))?;
    }
    for (i, one) in list.iter().enumerate() {
        let udp = one.service == Service::DnsUdp;
        match sys::inet_bind(udp, one.addr(), one.port, BACKLOG) {
            Ok(fd) => fds[i] = fd,
            Err(e) => {
                close_all(&fds[..i]);
                return Err(ChildError::new(Step::ProxyListen, e, one.port as u32));
            }
        }
    }
    let sent = sys::send_fds(sock, &fds[..list.len()]);
    close_all(&fds[..list.len()]);
    // SAFETY: `sock` is the child's end of the hand-off socket, used no more.
    unsafe { sys::close(sock) };
    sent.map_err(|e| ChildError::new(Step::ProxyHandoff, e, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_listeners() {
        let ports = |l: Listeners| l.list().iter().map(|x| (x.service, x.port)).collect::<Vec<_>>();
        assert_eq!(
            ports(Listeners::proxy(false, &[80])),
            [(Service::Http, HTTP_PORT), (Service::Socks, SOCKS_PORT)]
        );
        assert_eq!(
            ports(Listeners::proxy(true, &[80, 443])),
            [
                (Service::Http, HTTP_PORT),
                (Service::Socks, SOCKS_PORT),
                (Service::DnsUdp, DNS_PORT),
                (Service::DnsTcp, DNS_PORT),
                (Service::Transparent, 80),
                (Service::Transparent, 443),
            ]
        );
        let many: Vec<u16> = (1000..1100).collect();
        assert_eq!(Listeners::proxy(true, &many).list().len(), MAX_PASSED_FDS);
        assert_eq!(
            Listeners::proxy(true, &[80]).tcp_ports().collect::<Vec<_>>(),
            [HTTP_PORT, SOCKS_PORT, DNS_PORT, 80]
        );
        assert!(Listeners::NONE.is_empty());
    }
}
