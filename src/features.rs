//! `cordon features`: what the running kernel and host offer, and what that
//! means for policies.
//!
//! [`probe`] gathers the layers' own probes — `landlock::probe`,
//! `seccomp::probe`, `isolate::probe` (namespaces, clone3, pidfds) and
//! `cgroup::probe` — with the kernel and the [`Identity`] they ran as. Each
//! probe is independent, none can panic, and a probe that cannot tell says
//! [`Status::Unknown`] and why. Every item has a [`Status`], a `detail`
//! saying what was seen and, when something is missing or limited, an
//! `advice` saying what to do. [`Features`] serializes to JSON
//! (`cordon features --json`) with stable snake_case field names; the text
//! report is the command line's (`src/cli/features.rs`).
//!
//! Nothing here changes the host: the Landlock, seccomp, clone3 and pidfd
//! probes use arguments that only return an error (or, for `pidfd_open`,
//! open a descriptor to cordon itself and close it again); the namespace
//! probe runs in a forked child that exits at once.

use serde::Serialize;

pub use crate::cgroup::parse::{CgroupLayout, CgroupMembership, CgroupMount, CgroupVersion};
pub use crate::cgroup::probe::{cgroup_advice, CgroupController, CgroupV2, Cgroups};
pub use crate::isolate::probe::{userns_advice, Namespace, Namespaces, UserNamespaces};
pub use crate::landlock::probe::{landlock_advice, Landlock, LandlockFeature};
pub use crate::probe::{Identity, Probe, Status};
pub use crate::seccomp::probe::{Seccomp, SeccompActions};

use crate::cgroup::probe::probe_cgroups;
use crate::isolate::probe::{
    probe_clone3, probe_namespaces, probe_pidfd, probe_pidfd_open, probe_pidfd_send_signal,
};
use crate::landlock::probe::probe_landlock;
use crate::probe::{probe_identity, read_trimmed};
use crate::seccomp::probe::probe_seccomp;

/// Everything `cordon features` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Features {
    /// The running kernel (uname).
    pub kernel: Kernel,
    /// Who ran the probe: results such as user namespaces and cgroup
    /// delegation depend on it.
    pub identity: Identity,
    /// Landlock: ABI version, LSM list, rights the ABI offers.
    pub landlock: Landlock,
    /// Seccomp filters, their return actions, and seccomp reports.
    pub seccomp: Seccomp,
    /// The clone3 system call (Linux 5.3), which cordon starts sandboxes with.
    pub clone3: Probe,
    /// The pidfd_open system call (Linux 5.3), probed with an invalid pid.
    pub pidfd_open: Probe,
    /// The pidfd_send_signal system call (Linux 5.1), probed with an invalid pidfd.
    pub pidfd_send_signal: Probe,
    /// Whether pidfds work end to end: pidfd_open on cordon itself, then
    /// pidfd_send_signal(pidfd, 0) through it.
    pub pidfd: Probe,
    /// Namespaces: which kinds exist, and which this user can create.
    pub namespaces: Namespaces,
    /// Cgroups: layout, cordon's own cgroup, controllers and delegation.
    pub cgroups: Cgroups,
}

/// The running kernel, from uname(2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kernel {
    /// Operating system name, `"Linux"`.
    pub sysname: String,
    /// Kernel release, e.g. `"6.18.44"` (what `uname -r` prints).
    pub release: String,
    /// Kernel build version string (what `uname -v` prints).
    pub version: String,
    /// Hardware name, e.g. `"x86_64"`.
    pub machine: String,
}

/// Probe the running kernel and host. Never panics; each probe is
/// independent of the others.
pub fn probe() -> Features {
    let identity = probe_identity();
    Features {
        kernel: probe_kernel(),
        landlock: probe_landlock(&identity),
        seccomp: probe_seccomp(&identity),
        clone3: probe_clone3(&identity),
        pidfd_open: probe_pidfd_open(&identity),
        pidfd_send_signal: probe_pidfd_send_signal(&identity),
        pidfd: probe_pidfd(),
        namespaces: probe_namespaces(&identity),
        cgroups: probe_cgroups(&identity),
        identity,
    }
}

fn probe_kernel() -> Kernel {
    // SAFETY: utsname is plain arrays of c_char, for which all zeroes is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given and fails only for a bad pointer.
    let ok = unsafe { libc::uname(&mut u) } == 0;
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    if !ok {
        let read = |p: &str| read_trimmed(p).unwrap_or_else(|_| "unknown".to_string());
        return Kernel {
            sysname: read("/proc/sys/kernel/ostype"),
            release: read("/proc/sys/kernel/osrelease"),
            version: read("/proc/sys/kernel/version"),
            machine: "unknown".to_string(),
        };
    }
    Kernel {
        sysname: field(&u.sysname),
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
    }
}
