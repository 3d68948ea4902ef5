//! Applying a [`LandlockPlan`] in the payload. Runs after fork: no
//! allocation, no locks; only the plan's prepared data and system calls.

use crate::error::{ChildError, Step};
use crate::sys::{self, Errno};

use super::{fs, LandlockPlan};

/// Rights that apply to a file (not only to a directory).
const FILE_RIGHTS: u64 = fs::EXECUTE | fs::WRITE_FILE | fs::READ_FILE | fs::TRUNCATE | fs::IOCTL_DEV;

/// Create the ruleset, add every rule, restrict the calling thread.
/// A rule path that does not exist in the sandbox grants nothing and is
/// skipped (the plan checked it lies inside a mount).
pub fn apply(plan: &LandlockPlan) -> Result<(), ChildError> {
    let ruleset = sys::landlock_create_ruleset(&plan.attr, plan.attr_size)
        .map_err(|e| ChildError::new(Step::Landlock, e, 0))?;
    let result = add_rules(ruleset, plan).and_then(|_| {
        sys::landlock_restrict_self(ruleset).map_err(|e| ChildError::new(Step::Landlock, e, 1))
    });
    // SAFETY: `ruleset` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
    unsafe { sys::close(ruleset) };
    result
}

fn add_rules(ruleset: i32, plan: &LandlockPlan) -> Result<(), ChildError> {
    for (i, r) in plan.paths.iter().enumerate() {
        if r.access == 0 {
            continue;
        }
        let fd = match sys::open_path(&r.path) {
            Ok(fd) => fd,
            Err(Errno(libc::ENOENT)) => continue,
            Err(e) => return Err(ChildError::new(Step::LandlockRule, e, i as u32)),
        };
        // Directory-only rights (listing, creating, removing) cannot be
        // granted on a file.
        let access = match sys::is_dir(fd) {
            Ok(true) => r.access,
            Ok(false) => r.access & FILE_RIGHTS,
            Err(e) => {
                // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
                unsafe { sys::close(fd) };
                return Err(ChildError::new(Step::LandlockRule, e, i as u32));
            }
        };
        let added = if access == 0 {
            Ok(())
        } else {
            sys::landlock_add_path_rule(ruleset, fd, access)
        };
        // SAFETY: `fd` is this code's own fd (opened here or handed over to it) and nothing uses it after this close.
        unsafe { sys::close(fd) };
        added.map_err(|e| ChildError::new(Step::LandlockRule, e, i as u32))?;
    }
    for (j, &(port, access)) in plan.ports.iter().enumerate() {
        sys::landlock_add_port_rule(ruleset, port, access)
            .map_err(|e| ChildError::new(Step::LandlockRule, e, (plan.paths.len() + j) as u32))?;
    }
    Ok(())
}
