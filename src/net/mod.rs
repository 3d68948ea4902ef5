//! The network layer: which targets the payload may reach in mode `proxy`,
//! and the proxy that enforces it.
//!
//! Address classification and strict IP literal parsing ([`addr`]), the
//! allow/deny decision ([`rules`]), the listeners the clone child makes in
//! the sandbox's netns and hands to the supervisor ([`listen`]), and the
//! supervisor's proxy ([`proxy`]) with its fronts: HTTP CONNECT and plain
//! HTTP in absolute form ([`http`]), SOCKS5 ([`socks`]), the DNS stub's
//! wire protocol and fake addresses ([`dns`]), and the transparent relay.

pub mod addr;
pub mod dns;
pub mod http;
pub mod listen;
pub mod proxy;
pub mod rules;
pub mod socks;
