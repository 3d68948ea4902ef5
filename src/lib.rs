//! cordon: run an untrusted command inside a container-less Linux sandbox.
//!
//! The public surface is what an embedder needs: a [`Policy`] (parsed from
//! JSON or built with [`PolicyBuilder`]), a [`Sandbox`] to spawn and
//! supervise a [`Child`] to its [`Outcome`], [`prepare`] and
//! [`Prepared::apply`] to restrict a process in someone else's spawn
//! (`Command::pre_exec`), the [`features`] report, and one [`Error`]. A
//! [`Secret`] (a credential for one run, given with
//! [`Sandbox::secret_env`]) is per-run input, never part of a policy.
//!
//! ```no_run
//! let policy = cordon::Policy::builtin_default()?;
//! let outcome = cordon::Sandbox::new(policy).spawn(&["/bin/echo", "hello"])?.wait()?;
//! assert_eq!(outcome.exit_code, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Inside, the crate is layered (`ARCHITECTURE.md`): the pure policy model;
//! one module per isolation layer (`isolate`, `landlock`, `seccomp`,
//! `cgroup`), each with a `prepare` half in the parent and an `apply` half
//! in the child; `plan` (what the child reads, what the supervisor keeps);
//! `launch` (the clone child's one sequence and the supervisor); `sys` (raw
//! calls). Those modules are public only for cordon's own command line,
//! tests and fuzz targets, hidden from the documentation, and not a stable
//! API.

#![deny(missing_docs)]

#[doc(hidden)]
pub mod audit;
#[doc(hidden)]
pub mod cgroup;
pub mod embed;
pub mod error;
pub mod features;
#[doc(hidden)]
pub mod isolate;
#[doc(hidden)]
pub mod landlock;
#[doc(hidden)]
pub mod launch;
#[doc(hidden)]
pub mod net;
pub mod outcome;
#[doc(hidden)]
pub mod output;
#[doc(hidden)]
pub mod plan;
pub mod policy;
#[doc(hidden)]
pub mod probe;
#[doc(hidden)]
pub mod seccomp;
pub mod secret;
#[doc(hidden)]
pub mod sensitive;
#[doc(hidden)]
pub mod sha256;
#[doc(hidden)]
pub mod sys;
#[doc(hidden)]
pub mod workspace;

pub use cgroup::CgroupError;
pub use embed::{prepare, ApplyError, Child, Error, PolicyBuilder, Prepared, Sandbox, SpawnError};
pub use error::LaunchError;
pub use launch::session::{CommandSpec, Session, Stopped};
pub use outcome::Outcome;
pub use output::WriteError;
pub use policy::{Policy, PolicyError};
pub use seccomp::SeccompError;
pub use secret::{Secret, SecretError};
