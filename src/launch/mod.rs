//! Launching a plan: the parent (clone3, id maps, supervision) and the
//! child (pid 1 of the sandbox and the payload it forks).

pub mod child;
pub mod events;
pub mod notify;
pub mod parent;
pub mod sequence;
pub mod serve;
pub mod session;
pub mod tty;

pub use parent::{run, RunOptions};
