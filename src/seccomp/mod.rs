//! Seccomp: the policy section, its compilation to a checked IR
//! ([`ir::Filter`]) and to a tree-shaped BPF program ([`bpf`]), and a BPF
//! interpreter ([`interp`]). Pure: nothing here makes a system call; the
//! filter is installed by the launcher, last, just before exec.
//!
//! Meaning of a policy section:
//! - `allow` lists syscalls by name or `@group`;
//! - `rules` are tried in order for their syscall; the first whose argument
//!   conditions all hold decides;
//! - when no rule matches, a syscall named **by name** in `allow` is allowed;
//!   one that is only in an allowed group, or not allowed at all, gets
//!   `default_action` (so rules narrow a group: `@network` plus rules on
//!   `socket` limits the socket families);
//! - always: a foreign architecture kills the process, x32 numbers get
//!   ENOSYS, numbers above cordon's syscall table get ENOSYS (libc then
//!   falls back as on an older kernel), and `clone3` gets ENOSYS unless the
//!   policy names it (libc falls back to `clone`, whose flags a rule can
//!   check).
//!
//! A filter is compiled for one architecture ([`arch::Arch`]: x86_64 or
//! aarch64), the one cordon is built for unless asked otherwise
//! ([`SeccompPolicy::compile_for`]); group members that the architecture
//! does not have (`open`, `fork`, ... on aarch64) are skipped. Built for an
//! architecture without a table, compiling a policy fails.

pub mod arch;
pub mod bpf;
mod builtin;
pub mod groups;
pub mod import;
pub mod interp;
pub mod ir;
pub mod learn;
pub mod lint;
pub mod names;
pub mod probe;
pub mod tools;

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use arch::Arch;
use ir::{Action, Cmp, Cond, Entry, Filter, Rule};

/// The `seccomp` section of a policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SeccompPolicy {
    /// What a syscall that is not allowed gets (default: errno EPERM).
    #[serde(default = "default_refusal")]
    pub default_action: ActionSpec,
    /// Syscalls and `@groups` that are allowed.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Argument rules, tried in order per syscall.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
    /// Send refused syscalls to the supervisor (seccomp user notification),
    /// which answers with the policy's action and records them in the
    /// outcome's `violations`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report: bool,
}

fn default_refusal() -> ActionSpec {
    ActionSpec(Action::Errno(libc::EPERM as u16))
}

/// An action as written in a policy: `"allow"`, `"errno"` (EPERM),
/// `{"errno": "ENOSYS"}`, `"kill_process"`, `"kill_thread"`, `"trap"`, `"log"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionSpec(pub Action);

impl<'de> Deserialize<'de> for ActionSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        parse_action(&v).map(ActionSpec).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ActionSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Action::Errno(e) if e == libc::EPERM as u16 => s.serialize_str("errno"),
            Action::Errno(e) => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                match names::errno_name(e) {
                    Some(n) => m.serialize_entry("errno", n)?,
                    None => m.serialize_entry("errno", &e)?,
                }
                m.end()
            }
            a => s.serialize_str(action_name(a)),
        }
    }
}

const ACTION_NAMES: [&str; 6] = ["allow", "errno", "kill_process", "kill_thread", "trap", "log"];

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::Errno(_) => "errno",
        Action::KillProcess => "kill_process",
        Action::KillThread => "kill_thread",
        Action::Trap => "trap",
        Action::Log => "log",
        Action::Notify => "notify",
    }
}

fn parse_action(v: &serde_json::Value) -> Result<Action, String> {
    let expected = "expected \"allow\", \"errno\", {\"errno\": \"ENOSYS\"}, \"kill_process\", \"kill_thread\", \"trap\" or \"log\"";
    match v {
        serde_json::Value::String(s) => Ok(match s.as_str() {
            "allow" => Action::Allow,
            "errno" => Action::Errno(libc::EPERM as u16),
            "kill_process" | "kill" => Action::KillProcess,
            "kill_thread" => Action::KillThread,
            "trap" => Action::Trap,
            "log" => Action::Log,
            other => {
                let hint = names::suggest(other, ACTION_NAMES)
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_default();
                return Err(format!("unknown action \"{other}\"{hint}: {expected}"));
            }
        }),
        serde_json::Value::Object(m) if m.len() == 1 && m.contains_key("errno") => match &m["errno"] {
            serde_json::Value::String(e) => names::parse_errno(e).map(Action::Errno),
            serde_json::Value::Number(n) => n
                .as_u64()
                .filter(|n| (1..=4095).contains(n))
                .map(|n| Action::Errno(n as u16))
                .ok_or_else(|| {
                    format!("errno {n} is out of range: expected 1 to 4095 or a name such as \"EPERM\"")
                }),
            _ => Err("\"errno\" takes a name such as \"ENOSYS\" or a number".to_string()),
        },
        _ => Err(format!("invalid action: {expected}")),
    }
}

/// One argument rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The syscall's name.
    pub syscall: String,
    /// Conditions that must all hold (none: always).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgSpec>,
    /// What happens when they hold.
    pub action: ActionSpec,
}

/// A condition on one argument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    /// Argument index, 0 to 5.
    pub arg: u8,
    /// Comparison (unsigned).
    pub op: OpSpec,
    /// A number or named constant(s), e.g. `"AF_UNIX"`, `"CLONE_NEWNS|CLONE_NEWUSER"`.
    pub value: ValueSpec,
    /// For `masked_eq`: the mask applied before comparing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<ValueSpec>,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "schema"), derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OpSpec {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// less than
    Lt,
    /// less or equal
    Le,
    /// greater than
    Gt,
    /// greater or equal
    Ge,
    /// `(arg & mask) == value`
    MaskedEq,
}

/// An argument value: a number or constant names joined with `|`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueSpec {
    /// The value.
    pub value: u64,
    /// As written, when it was a string.
    pub text: Option<String>,
}

impl<'de> Deserialize<'de> for ValueSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(|value| ValueSpec { value, text: None })
                .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an unsigned 64-bit value"))),
            serde_json::Value::String(s) => names::parse_value(s)
                .map(|value| ValueSpec {
                    value,
                    text: Some(s.clone()),
                })
                .map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "expected a number or a constant such as \"AF_UNIX\" or \"CLONE_NEWNS|CLONE_NEWUSER\"",
            )),
        }
    }
}

impl Serialize for ValueSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.text {
            Some(t) => s.serialize_str(t),
            None => s.serialize_u64(self.value),
        }
    }
}

/// A compile error: the field path inside the seccomp section and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompError {
    /// e.g. `allow[3]`, `rules[0].args[1].mask`.
    pub path: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for SeccompError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seccomp.{}: {}", self.path, self.message)
    }
}

impl std::error::Error for SeccompError {}

fn err(path: impl Into<String>, message: impl Into<String>) -> SeccompError {
    SeccompError {
        path: path.into(),
        message: message.into(),
    }
}

/// Arguments the kernel reads as 32-bit `int`/`unsigned int`: only their
/// low word is compared (the kernel ignores the high word, so comparing it
/// would let `ioctl(fd, 0x1_0000_5412)` pass as something other than
/// TIOCSTI).
const LOW32_ARGS: &[(&str, u8)] = &[
    ("ioctl", 1),
    ("socket", 0),
    ("socket", 1),
    ("socket", 2),
    ("socketpair", 0),
    ("socketpair", 1),
    ("socketpair", 2),
    ("personality", 0),
    ("prctl", 0),
    ("fcntl", 1),
    ("setsockopt", 1),
    ("setsockopt", 2),
    ("getsockopt", 1),
    ("getsockopt", 2),
    ("kill", 1),
    ("tkill", 1),
    ("tgkill", 2),
    ("open", 1),
    ("openat", 2),
    ("setns", 1),
];

/// Whether argument `arg` of syscall `nr` is one of [`LOW32_ARGS`]. One
/// lookup by number, then string compares: each number has one name in
/// the table (checked by `low32_lookup_by_number_is_by_name`), so this is
/// `syscall_nr(name) == Some(nr)` for some entry without a binary search
/// by name per entry (up to ten per rule argument).
fn is_low32(arch: Arch, nr: u32, arg: u8) -> bool {
    let Some(name) = arch.syscall_name(nr) else {
        return false;
    };
    LOW32_ARGS.iter().any(|&(n, a)| a == arg && n == name)
}

/// BPF_MAXINSNS: the longest program the kernel loads.
pub const MAX_INSNS: usize = 4096;

/// Syscalls the payload needs to be started and to report a failed exec.
pub const REQUIRED: [&str; 3] = ["execve", "exit_group", "write"];

/// `f` with cordon's guards, in the order a plan adds them:
/// [`setid_guard`] (a writable bind is idmapped), then [`tcp_wall_guard`]
/// (Landlock limits TCP ports).
pub fn with_guards(mut f: Filter, setid: bool, tcp_wall: bool) -> Filter {
    if setid {
        f = setid_guard(&f);
    }
    if tcp_wall {
        f = tcp_wall_guard(&f);
    }
    f
}

impl SeccompPolicy {
    /// Whether this is the built-in default policy's section, whose
    /// filters were compiled ahead of time (see [`builtin`]).
    fn is_builtin(&self) -> bool {
        builtin::is(self)
    }

    /// The BPF program of this section for `arch` with cordon's guards
    /// ([`with_guards`]), without compiling, when the section is the
    /// built-in default policy's and reports nothing: compiling it took
    /// 75-100 us of every launch (the section to the IR 38-47 us, the IR
    /// to BPF 33-56 us). `None` for any other section: compile it.
    pub fn builtin_program(&self, arch: Arch, setid: bool, tcp_wall: bool) -> Option<&'static [bpf::Insn]> {
        if self.report || !self.is_builtin() {
            return None;
        }
        Some(builtin::program(arch, setid, tcp_wall))
    }

    /// Check the section and compile it to a filter for the architecture
    /// cordon is built for; on an architecture without a syscall table,
    /// an error.
    pub fn compile(&self) -> Result<Filter, SeccompError> {
        let arch = Arch::native_or_err().map_err(|m| err("", m))?;
        self.compile_for(arch)
    }

    /// Check the section and compile it to a filter for `arch`.
    pub fn compile_for(&self, arch: Arch) -> Result<Filter, SeccompError> {
        self.with_compiled(arch, Clone::clone)
    }

    /// Check the section as [`SeccompPolicy::compile`] does, without a
    /// copy of the filter for the caller.
    pub fn check(&self) -> Result<(), SeccompError> {
        let arch = Arch::native_or_err().map_err(|m| err("", m))?;
        // Compiled without error when the tables were made, by this
        // compiler (`builtin_filters_are_current`).
        if self.is_builtin() {
            return Ok(());
        }
        self.with_compiled(arch, |r| r.as_ref().map(|_| ()).map_err(Clone::clone))
    }

    /// `f` of the section compiled for `arch`. A launch compiles its
    /// section three times (the policy's check when it is read, again
    /// after the command line's overrides, and the plan); the same section
    /// gives the same filter, so the last result is kept and compared by
    /// value. Nothing in the child compiles (the lock is never taken after
    /// a fork).
    fn with_compiled<T>(&self, arch: Arch, f: impl FnOnce(&Result<Filter, SeccompError>) -> T) -> T {
        type Last = Option<(Arch, SeccompPolicy, Result<Filter, SeccompError>)>;
        static LAST: Mutex<Last> = Mutex::new(None);
        let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
        match &*last {
            Some((a, p, result)) if *a == arch && p == self => f(result),
            _ => {
                let (_, _, result) = last.insert((arch, self.clone(), self.compile_uncached(arch)));
                f(result)
            }
        }
    }

    fn compile_uncached(&self, arch: Arch) -> Result<Filter, SeccompError> {
        let mut allowed: Vec<u32> = Vec::new();
        let mut by_name: Vec<u32> = Vec::new();
        for (i, a) in self.allow.iter().enumerate() {
            if a.starts_with('@') {
                allowed
                    .extend_from_slice(groups::expanded(arch, a).map_err(|m| err(format!("allow[{i}]"), m))?);
            } else {
                let nr = names::parse_syscall_for(arch, a).map_err(|m| err(format!("allow[{i}]"), m))?;
                allowed.push(nr);
                by_name.push(nr);
            }
        }
        allowed.sort_unstable();
        allowed.dedup();
        by_name.sort_unstable();
        by_name.dedup();
        let named = |nr: u32| by_name.binary_search(&nr).is_ok();
        let default = self.default_action.0;
        let mut rules: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
        for (i, r) in self.rules.iter().enumerate() {
            let nr = names::parse_syscall_for(arch, &r.syscall)
                .map_err(|m| err(format!("rules[{i}].syscall"), m))?;
            let mut conds = Vec::with_capacity(r.args.len());
            for (j, a) in r.args.iter().enumerate() {
                let at = |f: &str| format!("rules[{i}].args[{j}].{f}");
                if a.arg > 5 {
                    return Err(err(
                        at("arg"),
                        format!("argument {} does not exist: expected 0 to 5", a.arg),
                    ));
                }
                let cmp = match (a.op, &a.mask) {
                    (OpSpec::MaskedEq, Some(m)) => Cmp::MaskedEq(m.value),
                    (OpSpec::MaskedEq, None) => return Err(err(at("mask"), "masked_eq needs a \"mask\"")),
                    (_, Some(_)) => {
                        return Err(err(at("mask"), "\"mask\" goes only with \"op\": \"masked_eq\""))
                    }
                    (OpSpec::Eq, None) => Cmp::Eq,
                    (OpSpec::Ne, None) => Cmp::Ne,
                    (OpSpec::Lt, None) => Cmp::Lt,
                    (OpSpec::Le, None) => Cmp::Le,
                    (OpSpec::Gt, None) => Cmp::Gt,
                    (OpSpec::Ge, None) => Cmp::Ge,
                };
                let low32 = is_low32(arch, nr, a.arg);
                if low32 && a.value.value > u64::from(u32::MAX) {
                    return Err(err(
                        at("value"),
                        format!(
                            "argument {} of {} is 32 bits wide; {:#x} does not fit",
                            a.arg, r.syscall, a.value.value
                        ),
                    ));
                }
                conds.push(Cond {
                    arg: a.arg,
                    cmp,
                    value: a.value.value,
                    low32,
                });
            }
            rules.entry(nr).or_default().push(Rule {
                conds,
                action: r.action.0,
            });
        }
        if rules.len() > 512 || self.rules.len() > 4096 {
            return Err(err("rules", "too many rules"));
        }

        // Built from sorted numbers in one go.
        let mut entries: BTreeMap<u32, Entry> = if default == Action::Allow {
            BTreeMap::new()
        } else {
            allowed
                .iter()
                .map(|&nr| {
                    (
                        nr,
                        Entry {
                            rules: Vec::new(),
                            fallback: Action::Allow,
                        },
                    )
                })
                .collect()
        };
        for (nr, rs) in rules {
            // A rule narrows a group: the fallback is `allow` only for a
            // syscall allowed by name.
            let fallback = if named(nr) { Action::Allow } else { default };
            entries.insert(nr, Entry { rules: rs, fallback });
        }
        if let Some(clone3) = arch.syscall_nr("clone3") {
            if !named(clone3) && !self.rules.iter().any(|r| r.syscall == "clone3") {
                entries.insert(
                    clone3,
                    Entry {
                        rules: Vec::new(),
                        fallback: Action::Errno(libc::ENOSYS as u16),
                    },
                );
            }
        }
        // Entries equal to the default are noise.
        entries.retain(|_, e| !(e.rules.is_empty() && e.fallback == default));

        let filter = Filter {
            arch,
            foreign_arch: Action::KillProcess,
            x32: Action::Errno(libc::ENOSYS as u16),
            default,
            unknown: Action::Errno(libc::ENOSYS as u16),
            known_max: arch.known_max(),
            entries,
        };
        let mut missing = Vec::new();
        for name in REQUIRED {
            let Some(nr) = arch.syscall_nr(name) else {
                continue;
            };
            let allowed_somehow = match filter.entries.get(&nr) {
                Some(e) => e.fallback == Action::Allow || e.rules.iter().any(|r| r.action == Action::Allow),
                None => filter.default == Action::Allow,
            };
            if !allowed_somehow {
                missing.push(name);
            }
        }
        if self.report {
            // The payload hands the notification listener over with a
            // write after the filter is in place; a refused write would wait
            // for a supervisor that has no listener yet.
            if let Some(nr) = arch.syscall_nr("write") {
                let always = match filter.entries.get(&nr) {
                    Some(e) => {
                        e.fallback == Action::Allow && e.rules.iter().all(|r| r.action == Action::Allow)
                    }
                    None => filter.default == Action::Allow,
                };
                if !always {
                    return Err(err(
                        "report",
                        "\"report\" needs write allowed without conditions: the payload hands the notification fd to cordon with a write once the filter is in place",
                    ));
                }
            }
        }
        if !missing.is_empty() {
            return Err(err(
                "allow",
                format!(
                    "the payload cannot start without {}: add them to \"allow\" (they are in @default)",
                    missing.join(", ")
                ),
            ));
        }
        Ok(filter)
    }
}

/// The number of cordon's hand-off call: after installing a filter with a
/// notification listener, the payload makes this call (with [`HANDOFF_MAGIC`]
/// in its first argument) and waits until the supervisor has taken the
/// listener and answers. It is far above any real syscall number and below
/// the x32 range; made by anyone else later, it only gets ENOSYS.
pub const HANDOFF_NR: u32 = 0x3ffe_c0de;
/// First argument of the hand-off call.
pub const HANDOFF_MAGIC: u64 = 0x636f_7264_6f6e_2121;

/// Whether a refusal is a violation worth reporting. cordon's built-in
/// ENOSYS answers (clone3, numbers above its table, x32) are compatibility
/// replies, not violations, and are not passed through here.
fn reportable(a: Action) -> bool {
    matches!(a, Action::Errno(_) | Action::KillProcess)
}

impl Filter {
    /// The filter for `"report": true`: every refusal with an errno or
    /// `kill_process` goes to the supervisor instead (which answers with
    /// [`Filter::decide`] of `self`), and the hand-off call is notified.
    /// `kill_thread`, `trap` and `log` stay with the kernel, as do the
    /// built-in answers (foreign architecture, x32, unknown numbers, clone3).
    pub fn with_notify(&self) -> Filter {
        let mut f = self.clone();
        let clone3 = self.arch.syscall_nr("clone3");
        let builtin_clone3 = |nr: u32, e: &Entry| {
            Some(nr) == clone3 && e.rules.is_empty() && e.fallback == Action::Errno(libc::ENOSYS as u16)
        };
        let swap = |a: Action| if reportable(a) { Action::Notify } else { a };
        // Numbers with no entry take `default`; give them explicit entries
        // only if `default` itself changes, by changing `default`.
        f.default = swap(f.default);
        for (nr, e) in f.entries.iter_mut() {
            if builtin_clone3(*nr, e) {
                continue;
            }
            e.fallback = swap(e.fallback);
            for r in &mut e.rules {
                r.action = swap(r.action);
            }
        }
        f.entries.insert(HANDOFF_NR, handoff_entry(f.unknown));
        f
    }
}

fn handoff_entry(otherwise: Action) -> Entry {
    Entry {
        rules: vec![Rule {
            conds: vec![Cond {
                arg: 0,
                cmp: Cmp::Eq,
                value: HANDOFF_MAGIC,
                low32: false,
            }],
            action: Action::Notify,
        }],
        fallback: otherwise,
    }
}

/// The filter `cordon learn` runs a command under: every syscall goes to
/// the supervisor, which records it and lets it continue; `write` is
/// allowed outright (the payload needs it for the hand-off, and every
/// policy must allow it anyway); clone3 gets ENOSYS so that libc uses
/// clone, whose flags the learnt rules can check; foreign architectures
/// and x32 numbers are refused as always. Built for an architecture
/// without a syscall table, an error.
pub fn learn_filter() -> Result<Filter, String> {
    Ok(learn_filter_for(Arch::native_or_err()?))
}

/// [`learn_filter`] for the given architecture.
pub fn learn_filter_for(arch: Arch) -> Filter {
    let mut entries = BTreeMap::new();
    for (nr, action) in [
        ("write", Action::Allow),
        ("clone3", Action::Errno(libc::ENOSYS as u16)),
    ] {
        if let Some(nr) = arch.syscall_nr(nr) {
            entries.insert(
                nr,
                Entry {
                    rules: Vec::new(),
                    fallback: action,
                },
            );
        }
    }
    let unknown = Action::Errno(libc::ENOSYS as u16);
    entries.insert(HANDOFF_NR, handoff_entry(unknown));
    Filter {
        arch,
        foreign_arch: Action::KillProcess,
        x32: Action::Errno(libc::ENOSYS as u16),
        default: Action::Notify,
        unknown,
        known_max: arch.known_max(),
        entries,
    }
}

/// Syscalls that can set S_ISUID/S_ISGID, with the argument holding the
/// mode and, for the open family, the argument holding the flags (the mode
/// counts only with O_CREAT or O_TMPFILE).
const SETID_CALLS: [(&str, u8, Option<u8>); 11] = [
    ("chmod", 1, None),
    ("fchmod", 1, None),
    ("fchmodat", 2, None),
    ("fchmodat2", 2, None),
    ("creat", 1, None),
    ("open", 2, Some(1)),
    ("openat", 3, Some(2)),
    ("mknod", 1, None),
    ("mknodat", 2, None),
    ("mkdir", 1, None),
    ("mkdirat", 2, None),
];

/// `__O_TMPFILE` (O_TMPFILE without O_DIRECTORY).
const O_TMPFILE_BIT: u64 = 0o20_000_000;

/// The filter with cordon's set-id guard, which the plan adds whenever a
/// writable bind is idmapped (a setuid file made there would be setuid to
/// the bind's owner on the host, where the sandbox's nosuid does not
/// apply): chmod, fchmod, fchmodat, fchmodat2, creat, mknod, mknodat, mkdir,
/// mkdirat, and open/openat with O_CREAT or O_TMPFILE, fail with EPERM when
/// the mode has S_ISUID or S_ISGID; openat2 (whose mode sits in a struct
/// the filter cannot read) and io_uring_setup (io_uring bypasses seccomp)
/// get ENOSYS. The guard's rules go before the filter's own; a syscall the
/// filter never lets through is left alone.
pub fn setid_guard(f: &Filter) -> Filter {
    let mut f = f.clone();
    let permits = |a: Action| matches!(a, Action::Allow | Action::Log | Action::Notify);
    let eperm = Action::Errno(libc::EPERM as u16);
    let enosys = Action::Errno(libc::ENOSYS as u16);
    let arch = f.arch;
    for (name, mode_arg, flags_arg) in SETID_CALLS {
        let Some(nr) = arch.syscall_nr(name) else {
            continue;
        };
        let mut e = f.entries.get(&nr).cloned().unwrap_or(Entry {
            rules: Vec::new(),
            fallback: if nr > f.known_max { f.unknown } else { f.default },
        });
        if !permits(e.fallback) && !e.rules.iter().any(|r| permits(r.action)) {
            continue;
        }
        let bit = |arg: u8, b: u64| Cond {
            arg,
            cmp: Cmp::MaskedEq(b),
            value: b,
            low32: is_low32(arch, nr, arg),
        };
        let mut guard = Vec::new();
        for b in [u64::from(libc::S_ISUID), u64::from(libc::S_ISGID)] {
            match flags_arg {
                None => guard.push(Rule {
                    conds: vec![bit(mode_arg, b)],
                    action: eperm,
                }),
                Some(fa) => {
                    for create in [libc::O_CREAT as u64, O_TMPFILE_BIT] {
                        guard.push(Rule {
                            conds: vec![bit(fa, create), bit(mode_arg, b)],
                            action: eperm,
                        });
                    }
                }
            }
        }
        guard.append(&mut e.rules);
        e.rules = guard;
        f.entries.insert(nr, e);
    }
    for name in ["openat2", "io_uring_setup"] {
        if let Some(nr) = arch.syscall_nr(name) {
            f.entries.insert(
                nr,
                Entry {
                    rules: Vec::new(),
                    fallback: enosys,
                },
            );
        }
    }
    f
}

/// `IPPROTO_SMC`: SMC over an AF_INET/AF_INET6 socket (Linux 6.11).
const IPPROTO_SMC: u64 = 256;

/// The filter with cordon's TCP-wall guard, which the plan adds whenever
/// Landlock limits TCP ports (`landlock.tcp_connect` or `tcp_bind`, or the
/// wall around the proxy's ports): Landlock's TCP rules cover TCP sockets
/// only, while an MPTCP socket (which falls back to plain TCP with a peer
/// that does not speak it) or an SMC one makes a TCP connection to any
/// port. socket(2) with `IPPROTO_MPTCP` or `IPPROTO_SMC` fails with
/// EPROTONOSUPPORT, as on a kernel without them (clients fall back to
/// TCP), and io_uring_setup gets ENOSYS (io_uring makes sockets without
/// socket(2), past seccomp). The guard's rules go before the filter's own;
/// a filter that never lets socket(2) through is left alone.
pub fn tcp_wall_guard(f: &Filter) -> Filter {
    let mut f = f.clone();
    let permits = |a: Action| matches!(a, Action::Allow | Action::Log | Action::Notify);
    let arch = f.arch;
    if let Some(nr) = arch.syscall_nr("io_uring_setup") {
        f.entries.insert(
            nr,
            Entry {
                rules: Vec::new(),
                fallback: Action::Errno(libc::ENOSYS as u16),
            },
        );
    }
    let Some(nr) = arch.syscall_nr("socket") else {
        return f;
    };
    let mut e = f.entries.get(&nr).cloned().unwrap_or(Entry {
        rules: Vec::new(),
        fallback: if nr > f.known_max { f.unknown } else { f.default },
    });
    if !permits(e.fallback) && !e.rules.iter().any(|r| permits(r.action)) {
        return f;
    }
    let mut guard: Vec<Rule> = [libc::IPPROTO_MPTCP as u64, IPPROTO_SMC]
        .into_iter()
        .map(|proto| Rule {
            conds: vec![Cond {
                arg: 2,
                cmp: Cmp::Eq,
                value: proto,
                low32: is_low32(arch, nr, 2),
            }],
            action: Action::Errno(libc::EPROTONOSUPPORT as u16),
        })
        .collect();
    guard.append(&mut e.rules);
    e.rules = guard;
    f.entries.insert(nr, e);
    f
}

/// A filter that allows everything, for a plan without a seccomp section
/// that needs only [`tcp_wall_guard`]: foreign architectures kill the
/// process, x32 numbers and numbers above cordon's table get ENOSYS (as in
/// [`guard_only_filter`]). Built for an architecture without a syscall
/// table, an error.
pub fn tcp_wall_only_filter() -> Result<Filter, String> {
    Ok(tcp_wall_guard(&allow_all_for(Arch::native_or_err()?)))
}

fn allow_all_for(arch: Arch) -> Filter {
    Filter {
        arch,
        foreign_arch: Action::KillProcess,
        x32: Action::Errno(libc::ENOSYS as u16),
        default: Action::Allow,
        unknown: Action::Errno(libc::ENOSYS as u16),
        known_max: arch.known_max(),
        entries: BTreeMap::new(),
    }
}

/// The filter a plan without a seccomp section installs when it needs the
/// set-id guard: everything allowed but what the guard refuses; foreign
/// architectures kill the process, x32 numbers and numbers above cordon's
/// table get ENOSYS (they would bypass the guard). Built for an
/// architecture without a syscall table, an error.
pub fn guard_only_filter() -> Result<Filter, String> {
    Ok(guard_only_filter_for(Arch::native_or_err()?))
}

/// [`guard_only_filter`] for the given architecture.
pub fn guard_only_filter_for(arch: Arch) -> Filter {
    setid_guard(&allow_all_for(arch))
}

#[cfg(test)]
mod tests;
