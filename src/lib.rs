//! cordon: run an untrusted command inside a container-less Linux sandbox.
//!
//! The crate is layered:
//!
//! 1. [`policy`] — the pure policy model: parse, validate, defaults. No
//!    system calls.
//! 2. [`plan`] — the launch plan, compiled in the parent: mount list,
//!    argv/envp, ids and limits, all as C strings and plain values.
//! 3. [`launch`] — the parent (clone3, id maps, supervision, outcome) and
//!    the child, which only carries the plan out and never allocates.
//!
//! 4. [`embed`] — the library surface: [`Sandbox`] to spawn and supervise
//!    sandboxes, [`prepare`] and [`Prepared::apply`] to restrict a process
//!    in someone else's spawn (`Command::pre_exec`).
//!
//! ```no_run
//! let policy = cordon::Policy::builtin_default()?;
//! let outcome = cordon::Sandbox::new(policy).spawn(&["/bin/echo", "hello"])?.wait()?;
//! assert_eq!(outcome.exit_code, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same, one layer down:
//!
//! ```no_run
//! use cordon::{launch, plan::Plan, policy::Policy};
//! let policy = Policy::builtin_default()?;
//! let plan = Plan::build(&policy, "default", &["/bin/echo", "hello"])?;
//! let outcome = launch::run(&plan, launch::RunOptions::default())?;
//! assert_eq!(outcome.exit_code, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod cgroup;
pub mod embed;
pub mod error;
pub mod features;
pub mod isolate;
pub mod landlock;
pub mod launch;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod policy;
pub mod probe;
pub mod seccomp;
pub mod sensitive;
pub mod sys;

pub use embed::{prepare, ApplyError, Child, Error, PolicyBuilder, Prepared, Sandbox, SpawnError};
pub use outcome::Outcome;
pub use policy::{Policy, PolicyError};
