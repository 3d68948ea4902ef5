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

/// Backlog of each listener.
const BACKLOG: c_int = 128;

/// Which listeners the child makes: a fixed-size, `Copy` list of ports on
/// 127.0.0.1 (the child reads it without allocating). Empty outside mode
/// `proxy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listeners {
    ports: [u16; MAX_PASSED_FDS],
    len: usize,
}

impl Listeners {
    /// No listeners (modes `none` and `host`).
    pub const NONE: Listeners = Listeners {
        ports: [0; MAX_PASSED_FDS],
        len: 0,
    };

    /// The listeners of mode `proxy` in this build: the HTTP proxy only.
    pub fn proxy() -> Listeners {
        let mut ports = [0; MAX_PASSED_FDS];
        ports[0] = HTTP_PORT;
        Listeners { ports, len: 1 }
    }

    /// The ports, in the order the fds are sent.
    pub fn ports(&self) -> &[u16] {
        &self.ports[..self.len.min(MAX_PASSED_FDS)]
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ports().is_empty()
    }
}

/// Close the first `n` of `fds`.
fn close_all(fds: &[c_int]) {
    for &fd in fds {
        // SAFETY: each fd was opened by `make_and_send` and is used no more.
        unsafe { sys::close(fd) };
    }
}

/// In the child: make each listener on 127.0.0.1 of this network namespace,
/// send them all in one message on `sock`, close them and `sock`. On
/// failure the listeners made so far are closed too. Allocation-free.
pub fn make_and_send(l: &Listeners, sock: c_int) -> Result<(), ChildError> {
    let mut fds: [c_int; MAX_PASSED_FDS] = [-1; MAX_PASSED_FDS];
    let ports = l.ports();
    for (i, &port) in ports.iter().enumerate() {
        match sys::tcp_listen_loopback(port, BACKLOG) {
            Ok(fd) => fds[i] = fd,
            Err(e) => {
                close_all(&fds[..i]);
                return Err(ChildError::new(Step::ProxyListen, e, port as u32));
            }
        }
    }
    let sent = sys::send_fds(sock, &fds[..ports.len()]);
    close_all(&fds[..ports.len()]);
    // SAFETY: `sock` is the child's end of the hand-off socket, used no more.
    unsafe { sys::close(sock) };
    sent.map_err(|e| ChildError::new(Step::ProxyHandoff, e, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_listeners_are_the_http_port_only() {
        assert_eq!(Listeners::proxy().ports(), [HTTP_PORT]);
        assert!(Listeners::NONE.is_empty());
        assert!(!Listeners::proxy().is_empty());
    }
}
