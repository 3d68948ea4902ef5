//! Identity and capabilities. Child side only; nothing here allocates.

use crate::error::{ChildError, Step};
use crate::isolate::ids::Ids;
use crate::sys;

use libc::{
    SECBIT_KEEP_CAPS_LOCKED, SECBIT_NOROOT, SECBIT_NOROOT_LOCKED, SECBIT_NO_CAP_AMBIENT_RAISE,
    SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
};

/// Switch to the sandbox identity. Started by root, the child has real and
/// saved uid 0 and, as effective ids, the sandbox's host ids (the parent
/// cloned it so, to make the user namespace theirs) until this call. It
/// keeps its namespace capabilities across the switch: host uid 0 is not
/// mapped inside, and when the inner uid is 0 the switch goes from the
/// namespace's root to the namespace's root, so the kernel's setuid fixup
/// never clears them.
pub fn switch_identity(ids: &Ids) -> Result<(), ChildError> {
    if !ids.rootless {
        // Drop root's supplementary groups (host gid 0 among them).
        sys::clear_groups().map_err(|e| ChildError::new(Step::Identity, e, 0))?;
    }
    sys::setresgid(ids.gid).map_err(|e| ChildError::new(Step::Identity, e, 1))?;
    sys::setresuid(ids.uid).map_err(|e| ChildError::new(Step::Identity, e, 2))?;
    Ok(())
}

/// Empty the capability bounding set (needs CAP_SETPCAP, so before capset).
pub fn drop_bounding(last_cap: u32) -> Result<(), ChildError> {
    for cap in 0..=last_cap {
        sys::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0)
            .map_err(|e| ChildError::new(Step::CapBounding, e, cap))?;
    }
    Ok(())
}

/// Lock the securebits so that uid 0 inside never regains capabilities at
/// execve and ambient capabilities can never be raised.
pub fn lock_securebits() -> Result<(), ChildError> {
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    // The bits are small positive c_ints (bits 0, 1, 5, 6 and 7).
    sys::prctl(libc::PR_SET_SECUREBITS, bits as libc::c_ulong, 0)
        .map(drop)
        .map_err(|e| ChildError::new(Step::SecureBits, e, 0))
}

/// Clear the ambient, effective, permitted and inheritable sets.
pub fn drop_caps() -> Result<(), ChildError> {
    sys::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    )
    .map_err(|e| ChildError::new(Step::CapAmbient, e, 0))?;
    sys::capset_zero().map_err(|e| ChildError::new(Step::Capset, e, 0))
}

/// Set no_new_privs: execve can never grant privileges again.
pub fn no_new_privs() -> Result<(), ChildError> {
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
        .map(drop)
        .map_err(|e| ChildError::new(Step::NoNewPrivs, e, 0))
}
