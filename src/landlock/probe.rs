//! The Landlock layer's probe for `cordon features`: the ABI version, the
//! LSM list, and the rights, scopes and flags the ABI offers.

use std::fmt::Write as _;

use serde::Serialize;

use crate::probe::{enosys_means, filter_note, probe_identity, Identity, Status, FILTER_ADVICE};
use crate::seccomp::probe::{errno_name, errno_text};
use crate::sys;

/// One Landlock access right, scope or flag, and the ABI that introduced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LandlockFeature {
    /// The kernel constant without its `LANDLOCK_` prefix, lower case, e.g.
    /// `"access_fs_refer"`, `"access_net_bind_tcp"`, `"scope_signal"`,
    /// `"restrict_self_log_same_exec_off"`.
    pub name: &'static str,
    /// The first ABI version that offers it.
    pub abi: u32,
    /// The first Linux release with that ABI.
    pub linux: &'static str,
}

/// Landlock support.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Landlock {
    /// `available` when the ABI offers every access right and scope cordon
    /// knows, `limited` when it lacks some (ABI < 6), `missing` when Landlock
    /// is not built in or not enabled, `unknown` when the query says neither.
    pub status: Status,
    /// What the probes saw.
    pub detail: String,
    /// What to do when Landlock is missing.
    pub advice: Option<String>,
    /// The ABI version from `landlock_create_ruleset(NULL, 0,
    /// LANDLOCK_CREATE_RULESET_VERSION)`; `null` when the call failed.
    pub abi: Option<u32>,
    /// The error of that call, e.g. `"EOPNOTSUPP"` (built in but not enabled
    /// at boot) or `"ENOSYS"` (not built in); `null` when it succeeded.
    pub errno: Option<String>,
    /// The active LSMs, in the kernel's order; `null` when no source could be read.
    pub lsm_list: Option<Vec<String>>,
    /// Where `lsm_list` came from (`/sys/kernel/security/lsm`, or
    /// `lsm_list_modules(2)` when that file cannot be read, with why), or
    /// why it is unknown.
    pub lsm_list_source: String,
    /// Whether `landlock` is in the LSM list; `null` when the list is unknown.
    pub in_lsm_list: Option<bool>,
    /// The rights, scopes and flags this ABI offers.
    pub features: Vec<LandlockFeature>,
    /// Those cordon knows of that this ABI lacks. A policy whose landlock
    /// section needs a missing `access_*` right or `scope_*` is refused
    /// unless its compatibility is `best_effort`; policies never ask for the
    /// `restrict_self_*` flags.
    pub unavailable_features: Vec<LandlockFeature>,
}

/// The first Linux release of each Landlock ABI (index = ABI).
pub const LANDLOCK_ABI_LINUX: [&str; 9] = ["", "5.13", "5.19", "6.2", "6.7", "6.10", "6.12", "6.15", "7.0"];

/// Every right, scope and flag, with the ABI that introduced it
/// (Documentation/userspace-api/landlock.rst, include/uapi/linux/landlock.h).
pub(crate) const LANDLOCK_FEATURES: [(&str, u32); 24] = [
    ("access_fs_execute", 1),
    ("access_fs_write_file", 1),
    ("access_fs_read_file", 1),
    ("access_fs_read_dir", 1),
    ("access_fs_remove_dir", 1),
    ("access_fs_remove_file", 1),
    ("access_fs_make_char", 1),
    ("access_fs_make_dir", 1),
    ("access_fs_make_reg", 1),
    ("access_fs_make_sock", 1),
    ("access_fs_make_fifo", 1),
    ("access_fs_make_block", 1),
    ("access_fs_make_sym", 1),
    ("access_fs_refer", 2),
    ("access_fs_truncate", 3),
    ("access_net_bind_tcp", 4),
    ("access_net_connect_tcp", 4),
    ("access_fs_ioctl_dev", 5),
    ("scope_abstract_unix_socket", 6),
    ("scope_signal", 6),
    ("restrict_self_log_same_exec_off", 7),
    ("restrict_self_log_new_exec_on", 7),
    ("restrict_self_log_subdomains_off", 7),
    ("restrict_self_tsync", 8),
];

/// The highest Landlock ABI this table knows.
pub const LANDLOCK_MAX_KNOWN_ABI: u32 = 8;

pub(crate) fn landlock_feature(name: &'static str, abi: u32) -> LandlockFeature {
    LandlockFeature {
        name,
        abi,
        linux: LANDLOCK_ABI_LINUX.get(abi as usize).copied().unwrap_or("?"),
    }
}

/// The features an ABI offers and those it lacks.
pub(crate) fn landlock_features(abi: u32) -> (Vec<LandlockFeature>, Vec<LandlockFeature>) {
    let mut have = Vec::new();
    let mut lack = Vec::new();
    for (name, since) in LANDLOCK_FEATURES {
        if since <= abi {
            have.push(landlock_feature(name, since));
        } else {
            lack.push(landlock_feature(name, since));
        }
    }
    (have, lack)
}

/// Parse `/sys/kernel/security/lsm` (`lockdown,capability,landlock,...`).
pub(crate) fn parse_lsm_list(s: &str) -> Vec<String> {
    s.trim()
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The LSM name of an `LSM_ID_*` value (include/uapi/linux/lsm.h).
pub(crate) fn lsm_id_name(id: u64) -> String {
    match id {
        100 => "capability",
        101 => "selinux",
        102 => "smack",
        103 => "tomoyo",
        104 => "apparmor",
        105 => "yama",
        106 => "loadpin",
        107 => "safesetid",
        108 => "lockdown",
        109 => "bpf",
        110 => "landlock",
        111 => "ima",
        112 => "evm",
        113 => "ipe",
        _ => return format!("lsm_id_{id}"),
    }
    .to_string()
}

/// lsm_list_modules(2) (Linux 6.8): the active LSMs.
pub(crate) fn lsm_list_modules() -> Result<Vec<String>, i32> {
    let mut ids = [0u64; 64];
    let n = sys::lsm_list_modules(&mut ids).map_err(|e| e.0)?;
    Ok(ids[..n].iter().map(|&id| lsm_id_name(id)).collect())
}

/// The active LSM list and where it came from.
pub(crate) fn lsm_list() -> (Option<Vec<String>>, String) {
    const PATH: &str = "/sys/kernel/security/lsm";
    let why = match std::fs::read_to_string(PATH) {
        Ok(s) => return (Some(parse_lsm_list(&s)), PATH.to_string()),
        Err(e) => match e.kind() {
            std::io::ErrorKind::NotFound => "securityfs is not mounted at /sys/kernel/security".to_string(),
            std::io::ErrorKind::PermissionDenied => "this user may not read it".to_string(),
            _ => e.to_string(),
        },
    };
    match lsm_list_modules() {
        Ok(list) => (
            Some(list),
            format!("lsm_list_modules(2), as {PATH} cannot be read: {why}"),
        ),
        Err(e) => (
            None,
            format!(
                "unknown: {PATH} cannot be read ({why}) and lsm_list_modules(2) fails with {}",
                errno_text(e)
            ),
        ),
    }
}

pub(crate) fn probe_landlock(id: &Identity) -> Landlock {
    let r = sys::landlock_abi().map_err(|e| e.0);
    let (lsm_list, lsm_list_source) = lsm_list();
    let in_lsm_list = lsm_list.as_ref().map(|l| l.iter().any(|x| x == "landlock"));
    let lsm_note = match (&lsm_list, in_lsm_list) {
        (Some(l), Some(true)) => format!(
            "landlock is in the LSM list [{}] (from {lsm_list_source})",
            l.join(",")
        ),
        (Some(l), _) => format!(
            "landlock is not in the LSM list [{}] (from {lsm_list_source})",
            l.join(",")
        ),
        (None, _) => format!("the LSM list is {lsm_list_source}"),
    };
    // The `lsm=` boot parameter that adds Landlock to what runs now.
    let boot_lsm = match &lsm_list {
        Some(l) => {
            let mut v: Vec<&str> = l
                .iter()
                .map(String::as_str)
                .filter(|x| *x != "capability" && *x != "landlock")
                .collect();
            v.push("landlock");
            format!("lsm={}", v.join(","))
        }
        None => "lsm=...,landlock (the current list followed by landlock)".to_string(),
    };
    let policy_note =
        "meanwhile a policy's landlock section runs only with \"compatibility\": \"best_effort\"";
    match r {
        Ok(v) => {
            let abi = v;
            let (features, unavailable_features) = landlock_features(abi);
            let linux = LANDLOCK_ABI_LINUX.get(abi as usize).copied().unwrap_or("");
            let mut detail = format!("ABI {abi}");
            if !linux.is_empty() {
                let _ = write!(detail, " (Linux {linux}+)");
            }
            if abi > LANDLOCK_MAX_KNOWN_ABI {
                let _ = write!(
                    detail,
                    ", newer than the ABI {LANDLOCK_MAX_KNOWN_ABI} cordon knows: its newer features are not listed"
                );
            }
            let _ = write!(detail, "; {lsm_note}");
            // Rights and scopes a policy can ask for (the restrict_self
            // flags are cordon's business, not the policy's).
            let policy_gaps: Vec<&LandlockFeature> = unavailable_features
                .iter()
                .filter(|f| f.name.starts_with("access_") || f.name.starts_with("scope_"))
                .collect();
            let (status, advice) = match policy_gaps.iter().map(|f| f.abi).max() {
                None => (Status::Available, None),
                Some(need) => {
                    let names: Vec<&str> = policy_gaps.iter().map(|f| f.name).collect();
                    let linux = LANDLOCK_ABI_LINUX.get(need as usize).copied().unwrap_or("?");
                    (
                        Status::Limited,
                        Some(format!(
                            "a policy whose landlock section needs {} is refused unless it sets \"compatibility\": \"best_effort\" (which runs without them); Linux {linux} or later offers them all",
                            names.join(", ")
                        )),
                    )
                }
            };
            Landlock {
                status,
                detail,
                advice,
                abi: Some(abi),
                errno: None,
                lsm_list,
                lsm_list_source,
                in_lsm_list,
                features,
                unavailable_features,
            }
        }
        Err(e) => {
            let (status, detail, advice) = match e {
                libc::ENOSYS => (
                    Status::Missing,
                    format!(
                        "landlock_create_ruleset fails with ENOSYS: {}",
                        enosys_means(id, "the kernel is built without Landlock")
                    ),
                    format!(
                        "use a kernel built with CONFIG_SECURITY_LANDLOCK=y (Linux 5.13+) and boot it with {boot_lsm}; {policy_note}"
                    ),
                ),
                libc::EOPNOTSUPP => (
                    Status::Missing,
                    "landlock_create_ruleset fails with EOPNOTSUPP: Landlock is built in but not enabled at boot"
                        .to_string(),
                    format!("boot with {boot_lsm} (kernel command line); {policy_note}"),
                ),
                other => (
                    Status::Unknown,
                    format!(
                        "landlock_create_ruleset fails with {}, which does not say whether Landlock exists{}",
                        errno_text(other),
                        filter_note(id)
                    ),
                    if id.seccomp_mode == Some(2) {
                        FILTER_ADVICE.to_string()
                    } else {
                        format!("check the kernel log (dmesg | grep landlock); if Landlock is off, boot with {boot_lsm}")
                    },
                ),
            };
            let (_, unavailable_features) = landlock_features(0);
            Landlock {
                status,
                detail: format!("{detail}; {lsm_note}"),
                advice: Some(advice),
                abi: None,
                errno: Some(errno_name(e)),
                lsm_list,
                lsm_list_source,
                in_lsm_list,
                features: Vec::new(),
                unavailable_features,
            }
        }
    }
}

/// The Landlock layer's report for `cordon features`.
pub fn probe() -> Landlock {
    probe_landlock(&probe_identity())
}

/// What to do about Landlock, when it is missing or limited.
pub fn landlock_advice() -> Option<String> {
    probe().advice
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsm_lists() {
        assert_eq!(
            parse_lsm_list("lockdown,capability,landlock,yama,apparmor,bpf"),
            ["lockdown", "capability", "landlock", "yama", "apparmor", "bpf"]
        );
        assert_eq!(parse_lsm_list("capability,selinux\n"), ["capability", "selinux"]);
        assert!(parse_lsm_list("").is_empty());
        assert_eq!(lsm_id_name(110), "landlock");
        assert_eq!(lsm_id_name(999), "lsm_id_999");
    }

    #[test]
    fn landlock_abi_tables() {
        let (have, lack) = landlock_features(1);
        assert_eq!(have.len(), 13);
        assert!(have
            .iter()
            .all(|f| f.abi == 1 && f.name.starts_with("access_fs_")));
        assert_eq!(lack.first().map(|f| f.name), Some("access_fs_refer"));
        let (have, lack) = landlock_features(7);
        assert!(have
            .iter()
            .any(|f| f.name == "access_net_connect_tcp" && f.abi == 4));
        assert!(have.iter().any(|f| f.name == "scope_signal" && f.abi == 6));
        assert!(have
            .iter()
            .any(|f| f.name == "restrict_self_log_subdomains_off" && f.linux == "6.15"));
        assert_eq!(
            lack.iter().map(|f| f.name).collect::<Vec<_>>(),
            ["restrict_self_tsync"]
        );
        let (have, lack) = landlock_features(LANDLOCK_MAX_KNOWN_ABI);
        assert_eq!(have.len(), 24);
        assert!(lack.is_empty());
        let (have, lack) = landlock_features(0);
        assert!(have.is_empty());
        assert_eq!(lack.len(), 24);
    }
}
