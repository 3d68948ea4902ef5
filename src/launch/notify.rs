//! The supervisor's side of seccomp user notification: taking the
//! payload's listener, answering refusals as the policy says while
//! recording them (`"report": true`), and recording every syscall for
//! `cordon learn`.

use std::collections::BTreeSet;
use std::os::raw::c_int;

use crate::error::LaunchError;
use crate::outcome::Violation;
use crate::plan::Supervise;
use crate::seccomp::ir::{Action, Data, AUDIT_ARCH_X86_64};
use crate::seccomp::learn::{Learned, CLONE_NS_FLAGS};
use crate::seccomp::{names, HANDOFF_MAGIC, HANDOFF_NR};
use crate::sys::{self, Errno, SeccompNotifResp};

/// At most this many violations are kept (the count is kept for all).
pub const MAX_VIOLATIONS: usize = 64;

/// State of the notification side of one run.
pub struct Notifier {
    /// The listener, once taken.
    pub fd: Option<c_int>,
    mode: Supervise,
    handed_off: bool,
    payload_pid: u32,
    /// Recorded violations (report mode), at most [`MAX_VIOLATIONS`].
    pub violations: Vec<Violation>,
    /// All violations, including those not kept.
    pub violations_total: u64,
    /// What learning saw.
    pub learned: Learned,
    /// Print each violation on stderr as it happens.
    pub print: bool,
    /// Learning: the calls refused (EPERM) and recorded apart, see
    /// [`crate::seccomp::learn::refused_while_learning`]; empty with
    /// `--allow-dangerous`.
    refuse: BTreeSet<u32>,
    /// Learning: refuse clone() with namespace flags.
    refuse_clone_ns: bool,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            sys::close(fd);
        }
    }
}

fn hint_ptrace() -> String {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    if scope.trim() == "2" || scope.trim() == "3" {
        "Yama's ptrace_scope is 2 or 3, which stops cordon from taking the payload's notification fd (pidfd_getfd needs ptrace access): run as root, set kernel.yama.ptrace_scope=1, or turn \"report\" off".to_string()
    } else {
        "pidfd_getfd needs ptrace access to the payload (an LSM may refuse it); turn \"report\" off to run without violation reports".to_string()
    }
}

impl Notifier {
    /// A notifier for `mode` (not yet holding the listener).
    pub fn new(mode: Supervise, print: bool) -> Notifier {
        let refuse_clone_ns = matches!(
            mode,
            Supervise::Learn {
                allow_dangerous: false
            }
        );
        let refuse = if refuse_clone_ns {
            crate::seccomp::learn::refused_while_learning()
        } else {
            BTreeSet::new()
        };
        Notifier {
            refuse,
            refuse_clone_ns,
            fd: None,
            mode,
            handed_off: false,
            payload_pid: 0,
            violations: Vec::new(),
            violations_total: 0,
            learned: Learned::default(),
            print,
        }
    }

    /// Take the payload's listener: `pid` is the payload (in our pid
    /// namespace, from the hand-off message's credentials), `fd` the
    /// listener's number in it.
    pub fn take(&mut self, pid: libc::pid_t, fd: c_int) -> Result<(), LaunchError> {
        let pidfd = sys::pidfd_open(pid)
            .map_err(|e| LaunchError::sys("seccomp hand-off", format!("pidfd_open({pid})"), e))?;
        let got = sys::pidfd_getfd(pidfd, fd);
        sys::close(pidfd);
        let listener = got.map_err(|e| {
            LaunchError::sys(
                "seccomp hand-off",
                format!("pidfd_getfd(payload {pid}, fd {fd})"),
                e,
            )
            .with_hint(hint_ptrace())
        })?;
        self.fd = Some(listener);
        self.payload_pid = pid as u32;
        Ok(())
    }

    /// Handle one pending notification. Errors other than a vanished caller
    /// are returned; the run goes on either way.
    pub fn handle_one(&mut self) -> Result<(), Errno> {
        let Some(fd) = self.fd else { return Ok(()) };
        let n = match sys::notif_recv(fd) {
            Ok(n) => n,
            // The caller died before we read it.
            Err(Errno(libc::ENOENT)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let data = Data {
            nr: n.nr as u32,
            arch: n.arch,
            ip: n.ip,
            args: n.args,
        };
        let mut resp = SeccompNotifResp {
            id: n.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        if data.nr == HANDOFF_NR && data.args[0] == HANDOFF_MAGIC {
            if !self.handed_off && n.pid == self.payload_pid {
                self.handed_off = true;
            } else {
                resp.error = -libc::ENOSYS;
            }
            return answer(fd, &resp);
        }
        match &self.mode {
            Supervise::None => resp.error = -libc::ENOSYS,
            Supervise::Learn { .. } => {
                if self.refused_while_learning(&data) {
                    resp.error = -libc::EPERM;
                } else {
                    self.learn(&data);
                    resp.flags = 1; // SECCOMP_USER_NOTIF_FLAG_CONTINUE
                }
            }
            Supervise::Report(filter) => {
                let action = filter.decide(&data);
                self.record(fd, &n, &data, action);
                match action {
                    Action::Errno(e) => resp.error = -i32::from(e),
                    Action::KillProcess => {
                        // The kernel cannot both notify and kill: kill the
                        // caller's whole process from here. Check the id
                        // after opening the pidfd so a recycled pid is
                        // never hit.
                        if let Ok(pidfd) = sys::pidfd_open(n.pid as libc::pid_t) {
                            if sys::notif_id_valid(fd, n.id) {
                                let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
                            }
                            sys::close(pidfd);
                        }
                        resp.error = -libc::EPERM;
                    }
                    // Not reached: only refusals are notified.
                    _ => resp.flags = 1,
                }
            }
        }
        answer(fd, &resp)
    }

    /// Whether learning refuses this call (and records it as refused).
    fn refused_while_learning(&mut self, d: &Data) -> bool {
        if d.arch != AUDIT_ARCH_X86_64 {
            return false;
        }
        if self.refuse.contains(&d.nr) {
            self.learned.refused.insert(d.nr);
            return true;
        }
        if self.refuse_clone_ns
            && names::syscall_name(d.nr) == Some("clone")
            && d.args[0] & CLONE_NS_FLAGS != 0
        {
            self.learned.refused_clone_flags |= d.args[0] & CLONE_NS_FLAGS;
            return true;
        }
        false
    }

    fn learn(&mut self, d: &Data) {
        if d.arch != AUDIT_ARCH_X86_64 {
            return;
        }
        self.learned.syscalls.insert(d.nr);
        match names::syscall_name(d.nr) {
            Some("socket") => {
                let family = d.args[0] as u32;
                let proto = (family == libc::AF_NETLINK as u32).then_some(d.args[2] as u32);
                self.learned.socket_families.insert((family, proto));
            }
            Some("ioctl") => {
                self.learned.ioctl_requests.insert(d.args[1] as u32);
            }
            Some("clone") => self.learned.clone_namespace_flags |= d.args[0] & CLONE_NS_FLAGS,
            _ => {}
        }
    }

    fn record(&mut self, fd: c_int, n: &sys::SeccompNotif, d: &Data, action: Action) {
        self.violations_total += 1;
        if self.violations.len() >= MAX_VIOLATIONS && !self.print {
            return;
        }
        let exe = std::fs::read_link(format!("/proc/{}/exe", n.pid))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The pid may have been recycled between the notification and the
        // readlink: only keep the path if the caller is still waiting.
        let exe = if sys::notif_id_valid(fd, n.id) {
            exe
        } else {
            String::new()
        };
        let v = Violation {
            pid: n.pid,
            exe,
            syscall: names::syscall_name(d.nr).unwrap_or("?").to_string(),
            nr: d.nr,
            args: d.args.iter().map(|a| format!("{a:#x}")).collect(),
            action: action_text(action),
        };
        if self.print {
            eprintln!(
                "cordon: violation: pid {} ({}) {}({}) -> {}",
                v.pid,
                if v.exe.is_empty() { "?" } else { &v.exe },
                v.syscall,
                v.args.join(", "),
                v.action
            );
        }
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(v);
        }
    }
}

fn answer(fd: c_int, resp: &SeccompNotifResp) -> Result<(), Errno> {
    match sys::notif_send(fd, resp) {
        // The caller was killed meanwhile.
        Err(Errno(libc::ENOENT)) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

fn action_text(a: Action) -> String {
    match a {
        Action::Errno(e) => match names::errno_name(e) {
            Some(n) => format!("errno {n}"),
            None => format!("errno {e}"),
        },
        Action::KillProcess => "kill_process".to_string(),
        Action::KillThread => "kill_thread".to_string(),
        Action::Trap => "trap".to_string(),
        Action::Log => "log".to_string(),
        Action::Allow => "allow".to_string(),
        Action::Notify => "notify".to_string(),
    }
}
