//! The network layer: which targets the payload may reach in mode `proxy`,
//! and the proxy that enforces it.
//!
//! Address classification and strict IP literal parsing ([`addr`]), the
//! allow/deny decision ([`rules`]), the listeners the clone child makes in
//! the sandbox's netns and hands to the supervisor ([`listen`]), and the
//! supervisor's HTTP proxy: CONNECT and plain HTTP in absolute form
//! ([`proxy`]). The DNS stub's protocol, fake address map and serving
//! loops ([`dns`]). Not yet built: SOCKS5, the DNS stub's wiring, the
//! transparent relay, `cordon connect`.

pub mod addr;
pub mod dns;
pub mod listen;
pub mod proxy;
pub mod rules;
