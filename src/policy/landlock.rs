//! The `landlock` section of a policy: the model only. The `landlock`
//! layer maps it onto the kernel's access rights (`crate::landlock`).

use serde::{Deserialize, Serialize};

/// An IPC scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Abstract unix sockets created outside the sandbox are unreachable.
    AbstractUnixSocket,
    /// Processes outside the sandbox cannot be signalled.
    Signal,
}

/// What to do when the kernel cannot enforce part of the section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Compatibility {
    /// Refuse to run.
    #[default]
    Strict,
    /// Run with what the kernel can enforce; the outcome lists the rest.
    BestEffort,
}

/// The `landlock` section of a policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LandlockPolicy {
    /// Paths (as the sandbox sees them) that may be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    /// Paths that may be read and written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<String>,
    /// Files or directories whose files may be executed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub execute: Vec<String>,
    /// TCP ports that may be connected to; absent: TCP connect is not restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_connect: Option<Vec<u16>>,
    /// TCP ports that may be bound; absent: bind is not restricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_bind: Option<Vec<u16>>,
    /// IPC scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<Scope>,
    /// `strict` (default) or `best_effort`.
    #[serde(default)]
    pub compatibility: Compatibility,
}
