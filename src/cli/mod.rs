//! The command line's presentation of the library's reports.

pub mod connect;
pub mod features;

use cordon::features::{Features, Status};
