//! The sandbox's ids: which host ids the payload's ids map to
//! ([`resolve_ids`], parent side), the id-map text, and the namespaces'
//! clone flags. Written once here for `cordon run` (which writes the maps
//! of its child), `cordon exec` (which writes its own) and the idmapped
//! mounts' user namespaces.

use crate::policy::{Namespace, Policy, PolicyError};

/// The text of a one-line id map (`uid_map`/`gid_map`): `inner` maps to
/// `host`, one id.
pub fn single_map(inner: u32, host: u32) -> String {
    format!("{inner} {host} 1\n")
}

/// Whether this process can open /proc/sys/kernel/ns_last_pid for writing
/// (mode 0666; read-only where /proc/sys is mounted so, absent without
/// CONFIG_CHECKPOINT_RESTORE). The write itself is checked later, in the
/// sandbox's init, against its capabilities there.
pub fn ns_last_pid_writable() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/kernel/ns_last_pid")
        .is_ok()
}

/// The clone/unshare flag of each namespace in `namespaces`, or-ed.
pub fn clone_flags(namespaces: &[Namespace]) -> u64 {
    namespaces.iter().fold(0u64, |flags, ns| {
        flags
            | match ns {
                Namespace::User => libc::CLONE_NEWUSER,
                Namespace::Mount => libc::CLONE_NEWNS,
                Namespace::Pid => libc::CLONE_NEWPID,
                Namespace::Net => libc::CLONE_NEWNET,
                Namespace::Ipc => libc::CLONE_NEWIPC,
                Namespace::Uts => libc::CLONE_NEWUTS,
                Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            } as u64
    })
}

/// The ids the payload runs with, and how they are mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// uid inside the sandbox.
    pub uid: u32,
    /// gid inside the sandbox.
    pub gid: u32,
    /// Host uid the inner uid maps to.
    pub host_uid: u32,
    /// Host gid the inner gid maps to.
    pub host_gid: u32,
    /// cordon runs without privileges: setgroups must be denied and only
    /// the caller's own ids can be mapped.
    pub rootless: bool,
}

impl Ids {
    /// Content of `/proc/PID/uid_map`.
    pub fn uid_map(&self) -> String {
        single_map(self.uid, self.host_uid)
    }

    /// Content of `/proc/PID/gid_map`.
    pub fn gid_map(&self) -> String {
        single_map(self.gid, self.host_gid)
    }
}

/// Decide the ids for a caller with effective ids `euid`/`egid`. Started
/// by root, a host id the policy does not name comes from `allocate` (one
/// id of cordon's range, used for both uid and gid; see
/// [`crate::isolate::hostid`]).
pub fn resolve_ids(
    policy: &Policy,
    euid: u32,
    egid: u32,
    file: &str,
    allocate: &mut dyn FnMut() -> Result<u32, String>,
) -> Result<Ids, PolicyError> {
    let id = &policy.identity;
    let rootless = euid != 0;
    let err = |field: &str, message: String| PolicyError {
        file: file.to_string(),
        path: format!("identity.{field}"),
        position: None,
        message,
    };
    let (host_uid, host_gid) = if rootless {
        for (field, want, have) in [("host_uid", id.host_uid, euid), ("host_gid", id.host_gid, egid)] {
            if let Some(w) = want {
                if w != have {
                    return Err(err(
                        field,
                        format!("cordon runs without privileges as {have} and can map only that id, not {w}; run as root to choose the host id"),
                    ));
                }
            }
        }
        (euid, egid)
    } else {
        match (id.host_uid, id.host_gid) {
            (Some(u), Some(g)) => (u, g),
            (u, g) => {
                let fresh = allocate().map_err(|e| {
                    err(
                        if u.is_none() { "host_uid" } else { "host_gid" },
                        format!("cannot allocate a host id for the sandbox: {e}"),
                    )
                })?;
                (u.unwrap_or(fresh), g.unwrap_or(fresh))
            }
        }
    };
    if (host_uid == 0 || host_gid == 0) && !id.allow_host_root {
        return Err(err(
            if host_uid == 0 { "host_uid" } else { "host_gid" },
            "the payload would run as host root (you run cordon rootless as uid 0?); set \"allow_host_root\": true to really do that".to_string(),
        ));
    }
    Ok(Ids {
        uid: id.uid,
        gid: id.gid,
        host_uid,
        host_gid,
        rootless,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(extra: &str) -> Policy {
        Policy::from_json("t.json", &format!(r#"{{"version": 1 {extra}}}"#)).expect("valid policy")
    }

    fn no_alloc() -> Result<u32, String> {
        panic!("allocated a host id")
    }

    #[test]
    fn root_gets_an_allocated_host_id_by_default() {
        let mut calls = 0;
        let ids = resolve_ids(&policy(""), 0, 0, "t", &mut || {
            calls += 1;
            Ok(0x7000_0005)
        })
        .expect("ids");
        assert_eq!(calls, 1);
        assert_eq!(
            (ids.uid, ids.host_uid, ids.gid, ids.host_gid),
            (1000, 0x7000_0005, 1000, 0x7000_0005)
        );
        assert!(!ids.rootless);
        assert_eq!(ids.uid_map(), "1000 1879048197 1\n");
        let e = resolve_ids(&policy(""), 0, 0, "t", &mut || Err("full".into())).unwrap_err();
        assert_eq!(e.path, "identity.host_uid");
        assert!(e.message.contains("full"), "{}", e.message);
    }

    #[test]
    fn explicit_host_ids_win() {
        let p = policy(r#","identity":{"host_uid":5000,"host_gid":5001}"#);
        let ids = resolve_ids(&p, 0, 0, "t", &mut no_alloc).expect("ids");
        assert_eq!((ids.host_uid, ids.host_gid), (5000, 5001));
        let p = policy(r#","identity":{"host_uid":5000}"#);
        let ids = resolve_ids(&p, 0, 0, "t", &mut || Ok(77777)).expect("ids");
        assert_eq!((ids.host_uid, ids.host_gid), (5000, 77777));
    }

    #[test]
    fn rootless_maps_to_caller_and_refuses_other_host_ids() {
        let ids = resolve_ids(&policy(""), 1234, 1234, "t", &mut no_alloc).expect("ids");
        assert_eq!((ids.host_uid, ids.host_gid, ids.rootless), (1234, 1234, true));
        let e = resolve_ids(
            &policy(r#","identity":{"host_uid":99}"#),
            1234,
            1234,
            "t",
            &mut no_alloc,
        )
        .unwrap_err();
        assert_eq!(e.path, "identity.host_uid");
    }

    #[test]
    fn host_root_needs_explicit_consent() {
        let e = Policy::from_json("t", r#"{"version":1,"identity":{"host_uid":0}}"#).unwrap_err();
        assert_eq!(e.path, "identity.host_uid");
        let p = policy(r#","identity":{"host_uid":0,"host_gid":0,"allow_host_root":true}"#);
        let ids = resolve_ids(&p, 0, 0, "t", &mut no_alloc).expect("ids");
        assert_eq!(ids.host_uid, 0);
    }

    #[test]
    fn clone_flags_cover_each_namespace() {
        let all = clone_flags(&[Namespace::User, Namespace::Pid, Namespace::Net]);
        assert_eq!(
            all,
            (libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNET) as u64
        );
        assert_eq!(single_map(1000, 4321), "1000 4321 1\n");
    }
}
