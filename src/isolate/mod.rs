//! One module per isolation layer, each with a `prepare` half (parent, may
//! allocate) and an `apply` half (child, must not).

pub mod creds;
pub mod mount;
pub mod hostid;
pub mod memfd;
