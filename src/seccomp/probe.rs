//! The seccomp layer's probe for `cordon features`: filter mode, the return
//! actions the kernel offers, user notification and what the supervisor
//! needs for it. The probes use arguments that only return an error.

use std::fmt::Write as _;
use std::os::raw::c_long;

use serde::Serialize;

use crate::probe::{enosys_means, filter_note, list_or_none, Identity, Probe, Status, FILTER_ADVICE};
use crate::sys::{self, Errno};

/// Which seccomp return actions the kernel offers
/// (SECCOMP_GET_ACTION_AVAIL); `null` when the query gave no answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeccompActions {
    /// SECCOMP_RET_KILL_PROCESS (Linux 4.14).
    pub kill_process: Option<bool>,
    /// SECCOMP_RET_KILL_THREAD.
    pub kill_thread: Option<bool>,
    /// SECCOMP_RET_TRAP.
    pub trap: Option<bool>,
    /// SECCOMP_RET_ERRNO.
    pub errno: Option<bool>,
    /// SECCOMP_RET_USER_NOTIF (Linux 5.0); when offered, so is the filter
    /// flag SECCOMP_FILTER_FLAG_NEW_LISTENER that comes with it.
    pub user_notif: Option<bool>,
    /// SECCOMP_RET_TRACE.
    pub trace: Option<bool>,
    /// SECCOMP_RET_LOG (Linux 4.14).
    pub log: Option<bool>,
    /// SECCOMP_RET_ALLOW.
    pub allow: Option<bool>,
}

/// Seccomp support.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Seccomp {
    /// `available` when filters work with every action and reports work,
    /// `limited` when reports (or some actions) do not, `missing` without
    /// seccomp filters.
    pub status: Status,
    /// What the probes saw.
    pub detail: String,
    /// What to do when something is missing.
    pub advice: Option<String>,
    /// The return actions.
    pub actions: SeccompActions,
    /// pidfd_getfd (Linux 5.6), probed with pidfd -1 (EBADF: present,
    /// ENOSYS: absent). Seccomp reports need it.
    pub pidfd_getfd: Probe,
    /// Whether `"report": true` in a policy's seccomp section can work
    /// here: it needs user notification and pidfd_getfd. Without them the
    /// filter still applies but nothing is reported.
    pub reports: Probe,
}

/// `ENOSYS (Function not implemented)`.
pub(crate) fn errno_text(e: i32) -> String {
    format!("{} ({})", errno_name(e), Errno(e).describe())
}

/// `ENOSYS`, or `errno 1234` for one without a name.
pub(crate) fn errno_name(e: i32) -> String {
    u16::try_from(e)
        .ok()
        .and_then(crate::seccomp::names::errno_name)
        .map(str::to_string)
        .unwrap_or_else(|| format!("errno {e}"))
}

/// The seccomp actions, by name and SECCOMP_RET_* value.
pub(crate) const SECCOMP_ACTIONS: [(&str, u32); 8] = [
    ("kill_process", 0x8000_0000),
    ("kill_thread", 0),
    ("trap", 0x0003_0000),
    ("errno", 0x0005_0000),
    ("user_notif", 0x7fc0_0000),
    ("trace", 0x7ff0_0000),
    ("log", 0x7ffc_0000),
    ("allow", 0x7fff_0000),
];

/// The seccomp layer's report for `cordon features`.
pub fn probe() -> Seccomp {
    probe_seccomp(&crate::probe::probe_identity())
}

pub(crate) fn probe_seccomp(id: &Identity) -> Seccomp {
    let mut answers: Vec<(&str, Option<bool>, Option<i32>)> = Vec::new();
    for (name, value) in SECCOMP_ACTIONS {
        let (avail, err) = match sys::seccomp_get_action_avail(value).map_err(|e| e.0) {
            Ok(()) => (Some(true), None),
            Err(libc::EOPNOTSUPP) => (Some(false), None),
            Err(libc::ENOSYS) => (Some(false), Some(libc::ENOSYS)),
            Err(e) => (None, Some(e)),
        };
        answers.push((name, avail, err));
    }
    let get = |n: &str| answers.iter().find(|a| a.0 == n).and_then(|a| a.1);
    let actions = SeccompActions {
        kill_process: get("kill_process"),
        kill_thread: get("kill_thread"),
        trap: get("trap"),
        errno: get("errno"),
        user_notif: get("user_notif"),
        trace: get("trace"),
        log: get("log"),
        allow: get("allow"),
    };
    let pidfd_getfd = probe_pidfd_getfd(id);
    let reports = match user_notif_unavailable() {
        _ if actions.user_notif.is_none() || pidfd_getfd.status == Status::Unknown => Probe::new(
            Status::Unknown,
            "cannot tell: the user notification or pidfd_getfd probe gave no answer",
            (id.seccomp_mode == Some(2)).then(|| FILTER_ADVICE.to_string()),
        ),
        None => Probe::new(
            Status::Available,
            "seccomp user notification and pidfd_getfd work: \"report\": true records refused calls",
            None,
        ),
        Some(why) => Probe::new(
            Status::Missing,
            format!("{why}; policies with \"report\": true run, but refusals are not reported"),
            Some("seccomp reports need Linux 5.6 or later".to_string()),
        ),
    };
    let offered: Vec<&str> = answers
        .iter()
        .filter(|a| a.1 == Some(true))
        .map(|a| a.0)
        .collect();
    let lacking: Vec<&str> = answers
        .iter()
        .filter(|a| a.1 == Some(false))
        .map(|a| a.0)
        .collect();
    let unknown: Vec<String> = answers
        .iter()
        .filter(|a| a.1.is_none())
        .map(|a| format!("{} ({})", a.0, a.2.map(errno_name).unwrap_or_default()))
        .collect();
    let no_seccomp = answers.iter().all(|a| a.2 == Some(libc::ENOSYS));
    let has_status_line = id.seccomp_mode.is_some();
    let needed = [actions.allow, actions.errno, actions.kill_process];
    let needed_missing = needed.contains(&Some(false));
    let needed_unknown = needed.contains(&None);
    let mut detail = String::new();
    if no_seccomp {
        let _ = write!(
            detail,
            "seccomp(2) fails with ENOSYS: {}",
            enosys_means(
                id,
                if has_status_line {
                    "the kernel has seccomp but not the seccomp system call (Linux 3.17)"
                } else {
                    "the kernel is built without seccomp"
                }
            )
        );
    } else {
        let _ = write!(detail, "actions offered: {}", list_or_none(&offered));
        if !lacking.is_empty() {
            let _ = write!(detail, "; not offered: {}", lacking.join(", "));
        }
        if !unknown.is_empty() {
            let _ = write!(detail, "; no answer for: {}", unknown.join(", "));
        }
    }
    if id.seccomp_mode == Some(2) {
        detail.push_str("; cordon itself runs under a seccomp filter (its filters stack on top of it)");
    }
    let (status, advice) = if no_seccomp {
        (
            Status::Missing,
            Some(
                "cordon needs seccomp filters: use a kernel built with CONFIG_SECCOMP_FILTER=y (Linux 4.14 or later)"
                    .to_string(),
            ),
        )
    } else if needed_missing {
        (
            Status::Missing,
            Some(
                "cordon's filters need the allow, errno and kill_process actions (Linux 4.14 or later)"
                    .to_string(),
            ),
        )
    } else if needed_unknown {
        (
            Status::Unknown,
            Some(if id.seccomp_mode == Some(2) {
                FILTER_ADVICE.to_string()
            } else {
                "SECCOMP_GET_ACTION_AVAIL (Linux 4.14) gives no answer: the kernel is probably too old for cordon"
                    .to_string()
            }),
        )
    } else if !lacking.is_empty() || !unknown.is_empty() || reports.status != Status::Available {
        let mut a = Vec::new();
        match reports.status {
            Status::Missing => a.push(
                "seccomp reports need Linux 5.6 or later (user notification and pidfd_getfd)".to_string(),
            ),
            Status::Unknown => {
                a.push("whether seccomp reports work is unknown (see seccomp reports)".to_string())
            }
            Status::Available | Status::Limited => {}
        }
        let policy_actions: Vec<&str> = lacking
            .iter()
            .copied()
            .filter(|n| ["kill_thread", "trap", "log"].contains(n))
            .collect();
        if !policy_actions.is_empty() {
            a.push(format!(
                "a policy whose seccomp section uses {} does not work as written on this kernel",
                policy_actions.join(" or ")
            ));
        }
        if a.is_empty() {
            a.push("a newer kernel offers every action".to_string());
        }
        (Status::Limited, Some(a.join("; ")))
    } else {
        (Status::Available, None)
    };
    Seccomp {
        status,
        detail,
        advice,
        actions,
        pidfd_getfd,
        reports,
    }
}

/// A probe for a system call called with arguments that can only fail:
/// `present` is the errno that proves it exists.
pub(crate) fn syscall_probe(
    id: &Identity,
    call: &str,
    r: Result<c_long, i32>,
    present: i32,
    since: &str,
    need: &str,
) -> Probe {
    match r {
        Err(e) if e == present => Probe::new(
            Status::Available,
            format!("{call} fails with {} as expected: the call exists", errno_name(e)),
            None,
        ),
        Err(libc::ENOSYS) => Probe::new(
            Status::Missing,
            format!(
                "{call} fails with ENOSYS: {}",
                enosys_means(id, "the kernel lacks it")
            ),
            Some(if id.seccomp_mode == Some(2) {
                format!("{need}: use Linux {since} or later, or a container seccomp profile that allows it")
            } else {
                format!("{need}: use Linux {since} or later")
            }),
        ),
        Err(e) => Probe::new(
            Status::Unknown,
            format!(
                "{call} fails with {}, which does not say{}",
                errno_text(e),
                filter_note(id)
            ),
            (id.seccomp_mode == Some(2)).then(|| FILTER_ADVICE.to_string()),
        ),
        Ok(v) => Probe::new(Status::Unknown, format!("{call} unexpectedly returned {v}"), None),
    }
}

pub(crate) fn probe_pidfd_getfd(id: &Identity) -> Probe {
    // pidfd -1 is invalid, so nothing is duplicated.
    let r = sys::pidfd_getfd(-1, 0).map(c_long::from).map_err(|e| e.0);
    syscall_probe(
        id,
        "pidfd_getfd(-1, 0, 0)",
        r,
        libc::EBADF,
        "5.6",
        "seccomp reports take the notification fd with pidfd_getfd",
    )
}

/// Why seccomp user notification cannot be used here, if it cannot.
pub fn user_notif_unavailable() -> Option<String> {
    if !sys::seccomp_action_available(0x7fc0_0000) {
        return Some(
            "the kernel does not offer seccomp user notification (SECCOMP_RET_USER_NOTIF, Linux 5.0)"
                .to_string(),
        );
    }
    if !sys::pidfd_getfd_available() {
        return Some(
            "the kernel lacks pidfd_getfd (Linux 5.6), which cordon uses to take the notification fd"
                .to_string(),
        );
    }
    None
}
