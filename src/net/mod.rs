//! The network layer: which targets the payload may reach in mode `proxy`.
//!
//! This round holds the pure half: address classification and strict IP
//! literal parsing ([`addr`]) and the allow/deny decision ([`rules`]). The
//! proxy that uses them (listeners made in the child, the supervisor's
//! CONNECT/SOCKS5 relay and DNS stub) is not in this build: a policy with
//! mode `proxy` is refused when its plan is built.

pub mod addr;
pub mod rules;
