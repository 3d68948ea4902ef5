//! The isolation probes for `cordon features`: which namespaces exist and
//! which this user can create (in a forked child that exits at once), and
//! the process calls cordon starts and supervises sandboxes with (clone3,
//! pidfds).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::{c_int, c_long};

use serde::Serialize;

use crate::probe::{filter_note, probe_identity, read_u64, Identity, Probe, Status};
use crate::seccomp::probe::{errno_name, errno_text, syscall_probe};
use crate::sys::{self, Errno};

/// One namespace kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace {
    /// `user`, `mount`, `pid`, `net`, `ipc`, `uts`, `cgroup` or `time`.
    pub name: &'static str,
    /// Whether `/proc/self/ns/<entry>` exists (the kernel supports the kind).
    pub present: bool,
    /// Whether a forked child could unshare it (after unsharing a user
    /// namespace when that worked); `null` when the test could not run or
    /// did not get that far.
    pub usable: Option<bool>,
    /// Available, missing, or unknown.
    pub status: Status,
    /// What the probe saw.
    pub detail: String,
    /// What to do when the kind is not usable.
    pub advice: Option<String>,
}

/// Namespaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespaces {
    /// Every kind, in the order user, mount, pid, net, ipc, uts, cgroup, time.
    pub kinds: Vec<Namespace>,
    /// User namespaces in detail: everything else cordon does rests on them.
    pub user: UserNamespaces,
}

/// User namespaces: a real test and the sysctls that can block them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserNamespaces {
    /// `available` when this user can create one (`limited` when root can but
    /// a sysctl blocks unprivileged users), `missing` when it cannot.
    pub status: Status,
    /// What the probes saw.
    pub detail: String,
    /// What to do (the exact sysctl when one blocks them).
    pub advice: Option<String>,
    /// Whether a forked child of this process could `unshare(CLONE_NEWUSER)`;
    /// `null` when the test could not run.
    pub usable: Option<bool>,
    /// The uid the test ran as.
    pub tested_as_uid: u32,
    /// The error of that unshare, e.g. `"EPERM"`; `null` when it worked.
    pub errno: Option<String>,
    /// `/proc/sys/user/max_user_namespaces` (0 disables user namespaces for
    /// everyone); `null` when absent or unreadable.
    pub max_user_namespaces: Option<u64>,
    /// `/proc/sys/kernel/unprivileged_userns_clone` (Debian; 0 disables them
    /// for non-root); `null` when absent.
    pub unprivileged_userns_clone: Option<u64>,
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns` (Ubuntu; 1
    /// restricts them to programs with an AppArmor `userns,` rule); `null`
    /// when absent.
    pub apparmor_restrict_unprivileged_userns: Option<u64>,
    /// The sysctls above whose values block unprivileged users, as
    /// `name=value` (empty when none does).
    pub blocked_for_unprivileged_by: Vec<String>,
}

pub(crate) fn probe_clone3(id: &Identity) -> Probe {
    let r = sys::clone3_probe().map(|()| 0).map_err(|e| e.0);
    syscall_probe(
        id,
        "clone3(NULL, 0)",
        r,
        libc::EINVAL,
        "5.3",
        "cordon starts every sandbox with clone3",
    )
}

pub(crate) fn probe_pidfd_open(id: &Identity) -> Probe {
    // pid -1 is invalid, so nothing is opened.
    let r = sys::pidfd_open(-1).map(c_long::from).map_err(|e| e.0);
    syscall_probe(
        id,
        "pidfd_open(-1, 0)",
        r,
        libc::EINVAL,
        "5.3",
        "cordon supervises the sandbox through a pidfd",
    )
}

pub(crate) fn probe_pidfd_send_signal(id: &Identity) -> Probe {
    // fd -1 is invalid, so no signal is sent.
    let r = sys::pidfd_send_signal(-1, 0).map(|()| 0).map_err(|e| e.0);
    syscall_probe(
        id,
        "pidfd_send_signal(-1, 0, NULL, 0)",
        r,
        libc::EBADF,
        "5.1",
        "cordon signals the sandbox through its pidfd",
    )
}

pub(crate) fn probe_pidfd() -> Probe {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let fd = match sys::pidfd_open(me) {
        // SAFETY: pidfd_open just returned this descriptor, which nothing
        // else owns: the OwnedFd closes it when dropped.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(Errno(e)) => {
            let advice = (e == libc::ENOSYS)
                .then(|| "cordon supervises the sandbox through a pidfd: use Linux 5.3 or later".to_string());
            let status = if e == libc::ENOSYS {
                Status::Missing
            } else {
                Status::Unknown
            };
            return Probe::new(
                status,
                format!("pidfd_open on cordon itself fails with {}", errno_text(e)),
                advice,
            );
        }
    };
    // Signal 0 only checks that the process exists and may be signalled.
    let sent = sys::pidfd_send_signal(fd.as_raw_fd(), 0).map_err(|e| e.0);
    drop(fd);
    match sent {
        Ok(_) => Probe::new(
            Status::Available,
            "pidfd_open on cordon itself and pidfd_send_signal(pidfd, 0) work",
            None,
        ),
        Err(e) => Probe::new(
            Status::Limited,
            format!(
                "pidfd_open works, but pidfd_send_signal through it fails with {}",
                errno_text(e)
            ),
            Some("cordon signals the sandbox through its pidfd: use Linux 5.3 or later".to_string()),
        ),
    }
}

/// name, /proc/self/ns entry, unshare flag, kernel option, whether cordon uses it.
pub(crate) const NAMESPACES: [(&str, &str, c_int, &str, bool); 8] = [
    ("user", "user", libc::CLONE_NEWUSER, "CONFIG_USER_NS", true),
    ("mount", "mnt", libc::CLONE_NEWNS, "(always built in)", true),
    ("pid", "pid", libc::CLONE_NEWPID, "CONFIG_PID_NS", true),
    ("net", "net", libc::CLONE_NEWNET, "CONFIG_NET_NS", true),
    ("ipc", "ipc", libc::CLONE_NEWIPC, "CONFIG_IPC_NS", true),
    ("uts", "uts", libc::CLONE_NEWUTS, "CONFIG_UTS_NS", true),
    ("cgroup", "cgroup", libc::CLONE_NEWCGROUP, "CONFIG_CGROUPS", true),
    ("time", "time", libc::CLONE_NEWTIME, "CONFIG_TIME_NS", false),
];

/// The advice for a kind cordon does not use.
pub(crate) const UNUSED_NS: &str = "nothing: cordon does not use this kind";

/// The result slot of a kind the child did not try.
pub(crate) const NOT_TRIED: i32 = -1;

/// In a forked child: unshare a user namespace, then (inside it, or
/// directly when it failed) each other kind on its own. Returns, per kind
/// of [`NAMESPACES`], 0 (worked), an errno, or [`NOT_TRIED`].
pub(crate) fn unshare_test() -> Result<[i32; 8], String> {
    let (rd, wr) = sys::pipe().map_err(|e| format!("pipe: {}", errno_text(e.0)))?;
    // SAFETY: pipe just returned both descriptors, which nothing else owns:
    // the OwnedFds close them when dropped.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(rd), OwnedFd::from_raw_fd(wr)) };
    let flags: [c_int; 8] = NAMESPACES.map(|n| n.2);
    // On error both ends are dropped (closed).
    let pid = sys::fork_raw().map_err(|e| format!("fork: {}", errno_text(e.0)))?;
    if pid == 0 {
        // Child: only system calls from here to _exit (no allocation: the
        // parent may have other threads, whose locks this copy inherited).
        // Dropping an OwnedFd only calls close(2).
        drop(rd);
        let mut res = [NOT_TRIED; 8];
        for (i, flag) in flags.iter().enumerate() {
            // unshare only changes this short-lived child's namespaces.
            res[i] = match sys::unshare(*flag) {
                Ok(()) => 0,
                Err(e) => e.0,
            };
        }
        let mut buf = [0u8; 32];
        for (chunk, v) in buf.chunks_exact_mut(4).zip(res.iter()) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        let code = if sys::write_all(wr.as_raw_fd(), &buf).is_ok() {
            0
        } else {
            1
        };
        sys::exit(code);
    }
    drop(wr);
    let mut buf = [0u8; 32];
    let mut got = 0;
    while got < buf.len() {
        match sys::retry(|| sys::read(rd.as_raw_fd(), &mut buf[got..])) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    drop(rd);
    let Ok(status) = sys::waitpid(pid) else {
        return Err("waitpid on the test child failed".to_string());
    };
    if libc::WIFSIGNALED(status) {
        return Err(format!(
            "the test child was killed by signal {}{}",
            libc::WTERMSIG(status),
            if libc::WTERMSIG(status) == libc::SIGSYS {
                " (a seccomp filter on cordon)"
            } else {
                ""
            }
        ));
    }
    if got < buf.len() {
        return Err("the test child reported nothing".to_string());
    }
    let mut res = [NOT_TRIED; 8];
    for (v, chunk) in res.iter_mut().zip(buf.chunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(chunk);
        *v = i32::from_ne_bytes(b);
    }
    Ok(res)
}

/// The sysctl advice for user namespaces, worded as cordon's launch hints.
pub(crate) fn userns_sysctl_advice(
    max: Option<u64>,
    clone: Option<u64>,
    apparmor: Option<u64>,
) -> Vec<String> {
    let mut v = Vec::new();
    if max == Some(0) {
        v.push("user namespaces are disabled: sysctl -w user.max_user_namespaces=15000".to_string());
    }
    if clone == Some(0) {
        v.push(
            "unprivileged user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1"
                .to_string(),
        );
    }
    if apparmor == Some(1) {
        v.push("AppArmor restricts unprivileged user namespaces: add an AppArmor profile for cordon with `userns,` or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".to_string());
    }
    v
}

/// The namespaces' report for `cordon features`, as the current user.
pub fn probe() -> Namespaces {
    probe_namespaces(&probe_identity())
}

/// What to do about user namespaces, when they do not work for this user
/// (the check behind cordon's hint when clone3 or the id maps fail).
pub fn userns_advice() -> Option<String> {
    probe().user.advice
}

pub(crate) fn probe_namespaces(id: &Identity) -> Namespaces {
    let test = unshare_test();
    let user_result = test.as_ref().ok().map(|r| r[0]);
    let via_userns = user_result == Some(0);
    let mut kinds = Vec::new();
    for (i, &(name, entry, _, config, used)) in NAMESPACES.iter().enumerate() {
        let present = std::fs::symlink_metadata(format!("/proc/self/ns/{entry}")).is_ok();
        let result = test.as_ref().ok().and_then(|r| r.get(i).copied());
        let usable = match result {
            Some(0) => Some(true),
            Some(NOT_TRIED) | None => None,
            Some(_) => Some(false),
        };
        let how = if i == 0 {
            format!("unshare(CLONE_NEW{}) as uid {}", name.to_uppercase(), id.euid)
        } else if via_userns {
            "unshare inside a new user namespace".to_string()
        } else {
            format!("unshare without a user namespace, as uid {}", id.euid)
        };
        let unused = if used { "" } else { " (cordon does not use it)" };
        let (status, detail, advice) = match (present, result) {
            (_, Some(0)) => (Status::Available, format!("{how} works{unused}"), None),
            (false, _) => (
                Status::Missing,
                format!("/proc/self/ns/{entry} does not exist: the kernel lacks {name} namespaces{unused}"),
                Some(if used {
                    format!("use a kernel built with {config}=y")
                } else {
                    UNUSED_NS.to_string()
                }),
            ),
            (true, Some(e)) if e > 0 => {
                (
                    Status::Missing,
                    format!("{how} fails with {}{}{unused}", errno_text(e), filter_note(id)),
                    Some(if !used {
                        UNUSED_NS.to_string()
                    } else if i == 0 {
                        "see the user namespaces line".to_string()
                    } else if !via_userns {
                        "cordon creates it inside a user namespace: make user namespaces usable".to_string()
                    } else {
                        format!("check the kernel configuration ({config}) and any seccomp or LSM policy on cordon")
                    }),
                )
            }
            (true, _) => (
                Status::Unknown,
                match &test {
                    Err(why) => {
                        format!("/proc/self/ns/{entry} exists; the unshare test could not run: {why}")
                    }
                    Ok(_) => format!("/proc/self/ns/{entry} exists; the unshare test did not get to it"),
                },
                None,
            ),
        };
        kinds.push(Namespace {
            name,
            present,
            usable,
            status,
            detail,
            advice,
        });
    }
    let max = read_u64("/proc/sys/user/max_user_namespaces");
    let clone = read_u64("/proc/sys/kernel/unprivileged_userns_clone");
    let apparmor = read_u64("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let mut blocked = Vec::new();
    if max == Some(0) {
        blocked.push("user.max_user_namespaces=0".to_string());
    }
    if clone == Some(0) {
        blocked.push("kernel.unprivileged_userns_clone=0".to_string());
    }
    if apparmor == Some(1) {
        blocked.push("kernel.apparmor_restrict_unprivileged_userns=1".to_string());
    }
    let sysctl_advice = userns_sysctl_advice(max, clone, apparmor);
    let mut sysctls = Vec::new();
    for (name, v) in [
        ("user.max_user_namespaces", max),
        ("kernel.unprivileged_userns_clone", clone),
        ("kernel.apparmor_restrict_unprivileged_userns", apparmor),
    ] {
        if let Some(v) = v {
            sysctls.push(format!("{name}={v}"));
        }
    }
    let sysctl_note = if sysctls.is_empty() {
        String::new()
    } else {
        format!("; sysctls: {}", sysctls.join(", "))
    };
    let usable = user_result.map(|r| r == 0);
    let errno = user_result.filter(|&r| r > 0).map(errno_name);
    let (status, detail, advice) = match (&test, user_result) {
        (Err(why), _) => (
            Status::Unknown,
            format!("the unshare test could not run: {why}{sysctl_note}"),
            None,
        ),
        (Ok(_), Some(0)) => {
            if id.root && !blocked.is_empty() {
                (
                    Status::Limited,
                    format!(
                        "unshare(CLONE_NEWUSER) works for uid {}, but {} blocks unprivileged users{sysctl_note}",
                        id.euid,
                        blocked.join(", ")
                    ),
                    Some(format!("for rootless use: {}", sysctl_advice.join("; "))),
                )
            } else {
                (
                    Status::Available,
                    format!("unshare(CLONE_NEWUSER) works for uid {}{sysctl_note}", id.euid),
                    None,
                )
            }
        }
        (Ok(_), r) => {
            let e = r.unwrap_or(0);
            // Root is held back only by max_user_namespaces=0; others by any blocker.
            let sysctl_applies = if id.root {
                max == Some(0)
            } else {
                !sysctl_advice.is_empty()
            };
            let advice = if sysctl_applies {
                sysctl_advice.join("; ")
            } else {
                match e {
                    libc::ENOSPC => "the user namespace limit is reached: sysctl -w user.max_user_namespaces=15000 (or fewer nested namespaces: at most 32 levels)".to_string(),
                    libc::EINVAL => "the kernel lacks user namespaces: use a kernel built with CONFIG_USER_NS=y".to_string(),
                    _ if id.seccomp_mode == Some(2) => "cordon runs under a seccomp filter (a container?) that may refuse unshare: run it with a profile that allows user namespaces".to_string(),
                    _ => "check that this kernel supports the namespaces the policy asks for, and any LSM policy (AppArmor, SELinux) that applies to cordon".to_string(),
                }
            };
            (
                Status::Missing,
                format!(
                    "unshare(CLONE_NEWUSER) fails with {} for uid {}{}{sysctl_note}",
                    errno_text(e),
                    id.euid,
                    filter_note(id)
                ),
                Some(advice),
            )
        }
    };
    Namespaces {
        kinds,
        user: UserNamespaces {
            status,
            detail,
            advice,
            usable,
            tested_as_uid: id.euid,
            errno,
            max_user_namespaces: max,
            unprivileged_userns_clone: clone,
            apparmor_restrict_unprivileged_userns: apparmor,
            blocked_for_unprivileged_by: blocked,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userns_advice_wording() {
        assert!(userns_sysctl_advice(Some(15000), None, None).is_empty());
        let a = userns_sysctl_advice(Some(0), Some(0), Some(1));
        assert_eq!(a.len(), 3);
        assert!(a[0].contains("sysctl -w user.max_user_namespaces=15000"));
        assert!(a[1].contains("sysctl -w kernel.unprivileged_userns_clone=1"));
        assert!(a[2].contains("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"));
    }
}
