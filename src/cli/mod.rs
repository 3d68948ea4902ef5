//! The command line's presentation of the library's reports.

pub mod connect;
pub mod features;
pub mod install;
pub mod lint;
pub mod named;
pub mod service;

use cordon::features::{Features, Status};
