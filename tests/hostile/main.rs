//! Hostile payloads: every hole a payload written by an attacker found, kept
//! as a regression test. Each module takes one class of abuse; every test
//! runs as root and, where it applies, again rootless (`common::modes()`).
//!
//! Payloads are small C or Python programs written the way an attacker
//! would write them; each test states what the host must still be able to
//! do afterwards, not only what cordon printed.

mod audit;
mod bombs;
#[path = "../common/mod.rs"]
mod common;
mod identity;
mod idmap;
mod learn;
mod mounts;
mod named;
mod named_bombs;
mod named_walls;
mod network;
mod outputs;
mod proxy;
mod serve;
mod supervisor;
mod workspace;
