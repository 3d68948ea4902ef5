//! One module per isolation layer, each with a `prepare` half (parent, may
//! allocate) and an `apply` half (child, must not).

pub mod creds;
pub mod hostid;
pub mod idmap;
pub mod ids;
pub mod memfd;
pub mod mount;
pub mod probe;
