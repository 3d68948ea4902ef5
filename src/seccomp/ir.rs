//! The checked intermediate form of a seccomp filter, and its meaning.
//!
//! A [`Filter`] says, for every syscall number, an ordered list of rules
//! (argument conditions and an action) and the action when none matches.
//! [`Filter::decide`] evaluates it directly; the compiled BPF program must
//! agree with it for every input (tests and the fuzzer check this through
//! the interpreter).

use std::collections::BTreeMap;

pub use super::arch::{Arch, AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};

/// What the kernel does with a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Let it run.
    Allow,
    /// Fail it with this errno.
    Errno(u16),
    /// Kill the whole process (SIGSYS).
    KillProcess,
    /// Kill the calling thread.
    KillThread,
    /// Send SIGSYS to the thread.
    Trap,
    /// Let it run and log it.
    Log,
    /// Ask the supervisor (user notification).
    Notify,
}

impl Action {
    /// How reports and warnings name it: `errno EPERM`, `kill_process`, ...
    pub fn text(self) -> String {
        match self {
            Action::Errno(e) => match super::names::errno_name(e) {
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

    /// The SECCOMP_RET_* value.
    pub fn ret(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e & 0xfff),
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
        }
    }

    /// The action for a SECCOMP_RET_* value.
    pub fn from_ret(r: u32) -> Option<Action> {
        Some(match r & libc::SECCOMP_RET_ACTION_FULL {
            libc::SECCOMP_RET_ALLOW => Action::Allow,
            libc::SECCOMP_RET_ERRNO => Action::Errno((r & 0xfff) as u16),
            libc::SECCOMP_RET_KILL_PROCESS => Action::KillProcess,
            libc::SECCOMP_RET_KILL_THREAD => Action::KillThread,
            libc::SECCOMP_RET_TRAP => Action::Trap,
            libc::SECCOMP_RET_LOG => Action::Log,
            libc::SECCOMP_RET_USER_NOTIF => Action::Notify,
            _ => return None,
        })
    }
}

/// An unsigned comparison of one 64-bit argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cmp {
    /// `arg == value`
    Eq,
    /// `arg != value`
    Ne,
    /// `arg < value`
    Lt,
    /// `arg <= value`
    Le,
    /// `arg > value`
    Gt,
    /// `arg >= value`
    Ge,
    /// `arg & mask == value`
    MaskedEq(u64),
}

/// One argument condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cond {
    /// Argument index, 0..=5.
    pub arg: u8,
    /// The comparison.
    pub cmp: Cmp,
    /// The value compared with.
    pub value: u64,
    /// The kernel reads this argument as 32 bits (an `int` or `unsigned
    /// int`): only the low word is compared, since the kernel ignores the
    /// high one (ioctl(fd, 0x1_0000_5412) is TIOCSTI).
    pub low32: bool,
}

impl Cond {
    /// Whether the argument satisfies the condition.
    pub fn holds(&self, arg: u64) -> bool {
        let (a, v) = if self.low32 {
            (arg & 0xffff_ffff, self.value & 0xffff_ffff)
        } else {
            (arg, self.value)
        };
        match self.cmp {
            Cmp::Eq => a == v,
            Cmp::Ne => a != v,
            Cmp::Lt => a < v,
            Cmp::Le => a <= v,
            Cmp::Gt => a > v,
            Cmp::Ge => a >= v,
            Cmp::MaskedEq(m) => {
                let m = if self.low32 { m & 0xffff_ffff } else { m };
                a & m == v
            }
        }
    }
}

/// A rule: when every condition holds, the action applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// All must hold (an empty list always matches).
    pub conds: Vec<Cond>,
    /// What happens then.
    pub action: Action,
}

/// What one syscall number does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Tried in order; the first that matches decides.
    pub rules: Vec<Rule>,
    /// When no rule matches.
    pub fallback: Action,
}

/// A complete filter for x86_64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The architecture whose calls the filter decides (its audit
    /// architecture and numbers).
    pub arch: Arch,
    /// For any other architecture (e.g. `int 0x80` i386 calls).
    pub foreign_arch: Action,
    /// For x32 numbers (>= 0x40000000) and anything above, on an
    /// architecture with x32 ([`Arch::x32_bit`]); unused elsewhere.
    pub x32: Action,
    /// For numbers with no entry up to `known_max`.
    pub default: Action,
    /// For numbers above `known_max` (syscalls newer than cordon's table),
    /// so that libc falls back as it does on older kernels.
    pub unknown: Action,
    /// The highest syscall number cordon knows.
    pub known_max: u32,
    /// Syscalls that differ from `default`.
    pub entries: BTreeMap<u32, Entry>,
}

/// The input the kernel gives a filter (struct seccomp_data), as the
/// interpreter models it. Not `libc::seccomp_data`: the interpreter takes
/// `nr` as the unsigned word a BPF load sees (libc's is a c_int), needs
/// `Default` (libc's has none), and describes any architecture's call
/// (`to_bytes` writes the layout explicitly), not only the host's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Data {
    /// Syscall number.
    pub nr: u32,
    /// AUDIT_ARCH_* value.
    pub arch: u32,
    /// Instruction pointer.
    pub ip: u64,
    /// Arguments.
    pub args: [u64; 6],
}

impl Data {
    /// An x86_64 call.
    pub fn x86_64(nr: u32, args: [u64; 6]) -> Data {
        Data::of(Arch::X86_64, nr, args)
    }

    /// A call of the given architecture.
    pub fn of(arch: Arch, nr: u32, args: [u64; 6]) -> Data {
        Data {
            nr,
            arch: arch.audit_arch(),
            ip: 0,
            args,
        }
    }

    /// The 64-byte layout the kernel passes.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        b[8..16].copy_from_slice(&self.ip.to_le_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        b
    }
}

impl Filter {
    /// The decision for one call, computed from the model.
    pub fn decide(&self, d: &Data) -> Action {
        if d.arch != self.arch.audit_arch() {
            return self.foreign_arch;
        }
        if self.arch.x32_bit().is_some_and(|bit| d.nr >= bit) {
            return self.x32;
        }
        match self.entries.get(&d.nr) {
            Some(e) => e
                .rules
                .iter()
                .find(|r| r.conds.iter().all(|c| c.holds(d.args[usize::from(c.arg)])))
                .map_or(e.fallback, |r| r.action),
            None if d.nr > self.known_max => self.unknown,
            None => self.default,
        }
    }
}
