//! Import of OCI/Docker seccomp profiles (`cordon seccomp import`).
//!
//! [`import_profile`] turns a profile in the format of Docker's
//! `default.json` (the OCI runtime spec's `linux.seccomp` plus Moby's
//! `archMap`, `includes`/`excludes` and `comment`) into cordon's seccomp
//! section, deciding every x86_64 call as runc + libseccomp would for a
//! process that holds **no capabilities** (cordon drops them all). What
//! cannot be carried over is returned in [`Imported::not_expressed`], one
//! human-readable line per item; nothing is dropped silently except entries
//! that do not apply to x86_64 at all and entries whose action equals the
//! default (which runc itself skips).
//!
//! Actions (`defaultAction` and each entry's `action`):
//! - `SCMP_ACT_ALLOW`, `SCMP_ACT_TRAP`, `SCMP_ACT_LOG`, `SCMP_ACT_KILL_PROCESS`
//!   and `SCMP_ACT_KILL_THREAD` map to the same cordon action; `SCMP_ACT_KILL`
//!   is libseccomp's old name for `SCMP_ACT_KILL_THREAD` and maps to
//!   `kill_thread`;
//! - `SCMP_ACT_ERRNO` takes `errnoRet` (`defaultErrnoRet` for the default),
//!   EPERM when absent, as runc does; an errno must be 1 to 4095;
//! - `SCMP_ACT_TRACE` and `SCMP_ACT_NOTIFY` need a tracer or a seccomp agent
//!   that cordon does not provide: they become errno ENOSYS, which is what the
//!   kernel answers when no tracer or listener is attached, and are listed.
//!
//! Which entries apply (as Moby filters them for `amd64`):
//! - `excludes.arches` naming amd64, or `includes.arches` not naming it: the
//!   entry is skipped without comment (it is for another architecture);
//! - `includes.caps`: skipped and listed, since a process without
//!   capabilities never gets it; `excludes.caps`: applies, for the same reason;
//! - `includes.minKernel`: applied and listed, i.e. the import assumes a
//!   kernel at least that new (cordon targets current kernels, and the policy
//!   may run elsewhere than where it is imported); `excludes.minKernel` is
//!   skipped and listed, by the same assumption.
//!
//! Syscalls: names not in cordon's x86_64 table (other architectures' calls
//! such as `_llseek` or `socketcall`, or calls newer than the table, which
//! is the kernel's, current to Linux 6.18) are ignored, as libseccomp
//! ignores names it cannot resolve, and listed on one line. `name` and
//! `names` are both accepted (their union). The import is for x86_64 on any
//! host (names and numbers are x86_64's).
//!
//! Conditions: an entry's `args` all have to hold (AND); separate entries
//! are separate rules (OR). runc adds an entry with two conditions on the
//! same argument as one rule per condition (libseccomp cannot AND them), so
//! the import does the same. Operators are `SCMP_CMP_EQ`, `NE`, `LT`, `LE`,
//! `GT`, `GE` and `MASKED_EQ`; for `MASKED_EQ` the OCI `value` is the mask and
//! `valueTwo` the expected value, which libseccomp masks too, so the imported
//! value is `valueTwo & value`; a `MASKED_EQ` with mask 0 always holds and is
//! dropped, as libseccomp drops it (which can leave the rule unconditional).
//!
//! Precedence, per syscall, following libseccomp's `db_rule_add` (src/db.c):
//! 1. entries whose action equals the default action are skipped first (runc
//!    skips them, libseccomp would reject them);
//! 2. if any unconditional rule remains, the **first** one decides the call
//!    outright: libseccomp clears a syscall's argument rules when an
//!    unconditional rule is added, and ignores every rule added after one,
//!    whatever their actions. An unconditional allow becomes a name in
//!    `allow` (its argument rules are redundant and dropped); any other
//!    action becomes an argument-less rule;
//! 3. otherwise the conditional rules are kept, in profile order, and the
//!    default applies when none matches (the name is not put in `allow`).
//!    When they have the same action, order does not matter. When they have
//!    different actions and their conditions overlap, libseccomp decides by
//!    the shape of its decision tree (argument, operator, value) rather than
//!    by order, while cordon takes the first match: that syscall is listed.
//!
//! The output is explicit: sorted, deduplicated names in `allow` (no
//! `@groups`), rules sorted by syscall name (profile order within one
//! syscall), values as plain numbers.
//!
//! cordon's own rules that differ from runc's and are listed or documented:
//! - architectures: calls from any architecture other than x86_64 kill the
//!   process and x32 calls get ENOSYS, whatever `architectures`/`archMap` say
//!   (a profile that adds `SCMP_ARCH_X86`/`SCMP_ARCH_X32` gets a listed line);
//! - 32-bit arguments (socket's family, personality's persona, ...): cordon
//!   compares only the low 32 bits, which is all the kernel reads, while
//!   libseccomp compares 64 bits (so under runc `socket(0x1_0000_0028, ..)`
//!   passes an "arg0 > 40" rule and the kernel creates an AF_VSOCK socket);
//!   listed when the import has such conditions;
//! - `clone3`: cordon answers ENOSYS when a policy does not name it; the
//!   import names it whenever the profile's answer would differ (the
//!   profile's default action), so the import stays faithful;
//! - numbers beyond cordon's table get ENOSYS (runc does the same for numbers
//!   newer than its libseccomp knows).
//!
//! `flags`, `listenerPath` and `listenerMetadata` are listed; other unknown
//! fields (e.g. `comment`) are ignored. Malformed JSON and values of the
//! wrong type are errors naming the file, line and column, the field path,
//! and what was expected.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer};

use super::arch::Arch;
use super::ir::Action;
use super::{ActionSpec, ArgSpec, OpSpec, RuleSpec, SeccompPolicy, ValueSpec};

/// The result of an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The seccomp section.
    pub section: SeccompPolicy,
    /// What the section does not express, one line each.
    pub not_expressed: Vec<String>,
}

/// An OCI/Docker profile, as far as it matters here.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: OciAction,
    #[serde(default)]
    default_errno_ret: Option<ErrnoRet>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    action: OciAction,
    #[serde(default)]
    errno_ret: Option<ErrnoRet>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: ArgIndex,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: OciOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
enum OciAction {
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
enum OciOp {
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

/// An argument index, checked to be 0 to 5 while parsing (so that the error
/// has a position).
struct ArgIndex(u8);

impl<'de> Deserialize<'de> for ArgIndex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        u8::try_from(n)
            .ok()
            .filter(|&n| n <= 5)
            .map(ArgIndex)
            .ok_or_else(|| de::Error::custom(format!("argument index {n} does not exist: expected 0 to 5")))
    }
}

/// An errno value, checked to be 1 to 4095 while parsing.
#[derive(Clone, Copy)]
struct ErrnoRet(u16);

impl<'de> Deserialize<'de> for ErrnoRet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        u16::try_from(n)
            .ok()
            .filter(|n| (1..=4095).contains(n))
            .map(ErrnoRet)
            .ok_or_else(|| de::Error::custom(format!("errno {n} is out of range: expected 1 to 4095")))
    }
}

/// The action as runc hands it to libseccomp: what "equal to the default"
/// is decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LibAction {
    Allow,
    Errno(u16),
    KillThread,
    KillProcess,
    Trap,
    Trace(u16),
    Log,
    Notify,
}

impl LibAction {
    fn new(a: OciAction, ret: Option<ErrnoRet>) -> LibAction {
        let ret = ret.map_or(libc::EPERM as u16, |r| r.0);
        match a {
            OciAction::Allow => LibAction::Allow,
            OciAction::Errno => LibAction::Errno(ret),
            OciAction::Kill | OciAction::KillThread => LibAction::KillThread,
            OciAction::KillProcess => LibAction::KillProcess,
            OciAction::Trap => LibAction::Trap,
            OciAction::Trace => LibAction::Trace(ret),
            OciAction::Log => LibAction::Log,
            OciAction::Notify => LibAction::Notify,
        }
    }

    /// cordon's action, and a note when it is not the same thing.
    fn to_cordon(self) -> (Action, Option<&'static str>) {
        let enosys = Action::Errno(libc::ENOSYS as u16);
        match self {
            LibAction::Allow => (Action::Allow, None),
            LibAction::Errno(e) => (Action::Errno(e), None),
            LibAction::KillThread => (Action::KillThread, None),
            LibAction::KillProcess => (Action::KillProcess, None),
            LibAction::Trap => (Action::Trap, None),
            LibAction::Log => (Action::Log, None),
            LibAction::Trace(_) => (
                enosys,
                Some("SCMP_ACT_TRACE: cordon attaches no tracer; imported as errno ENOSYS, the kernel's answer when no tracer is attached"),
            ),
            LibAction::Notify => (
                enosys,
                Some("SCMP_ACT_NOTIFY: cordon runs no seccomp agent for it; imported as errno ENOSYS, the kernel's answer when no listener exists"),
            ),
        }
    }
}

/// Whether an architecture name (Go's, Moby's or libseccomp's) is x86_64.
fn is_amd64(arch: &str) -> bool {
    matches!(arch, "amd64" | "x86_64" | "SCMP_ARCH_X86_64")
}

/// One rule before precedence is applied.
struct Candidate {
    action: Action,
    args: Vec<ArgSpec>,
}

/// Convert an OCI/Docker seccomp profile (`text`, read from `file`) into
/// cordon's seccomp section. See the module documentation for the meaning.
pub fn import_profile(text: &str, file: &str) -> Result<Imported, String> {
    let profile: Profile = parse(text, file)?;
    let mut notes: Vec<String> = Vec::new();

    let default_lib = LibAction::new(profile.default_action, profile.default_errno_ret);
    let (default, why) = default_lib.to_cordon();
    if let Some(why) = why {
        notes.push(format!("defaultAction {why}"));
    }

    // Architectures: only x86_64 is cordon's; the rest is its own rule.
    let mut arches: Vec<String> = Vec::new();
    for a in profile.architectures.iter().flatten() {
        if !is_amd64(a) && !arches.contains(a) {
            arches.push(a.clone());
        }
    }
    for m in profile.arch_map.iter().flatten() {
        if is_amd64(&m.architecture) {
            for a in m.sub_architectures.iter().flatten() {
                if !is_amd64(a) && !arches.contains(a) {
                    arches.push(a.clone());
                }
            }
        }
    }
    if !arches.is_empty() {
        notes.push(format!(
            "architectures {}: cordon's own architecture rules apply instead (calls from another architecture kill the process, x32 calls get ENOSYS)",
            arches.join(", ")
        ));
    }
    if let Some(flags) = profile.flags.as_ref().filter(|f| !f.is_empty()) {
        notes.push(format!("flags {}: ignored", flags.join(", ")));
    }
    if profile.listener_path.as_ref().is_some_and(|p| !p.is_empty()) {
        notes.push("listenerPath: cordon runs no seccomp agent; ignored".to_string());
    }
    if profile.listener_metadata.as_ref().is_some_and(|p| !p.is_empty()) {
        notes.push("listenerMetadata: ignored".to_string());
    }

    // Per syscall, in profile order.
    let mut per: BTreeMap<&'static str, Vec<Candidate>> = BTreeMap::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let none = Filter::default();
    for (i, sc) in profile.syscalls.iter().flatten().enumerate() {
        let mut sc_names: Vec<&str> = sc.name.iter().map(String::as_str).collect();
        for n in sc.names.iter().flatten() {
            if !sc_names.contains(&n.as_str()) {
                sc_names.push(n);
            }
        }
        let label = format!("syscalls[{i}] ({})", sc_names.join(", "));
        let inc = sc.includes.as_ref().unwrap_or(&none);
        let exc = sc.excludes.as_ref().unwrap_or(&none);

        if exc.arches.iter().flatten().any(|a| is_amd64(a)) {
            continue;
        }
        if let Some(a) = inc.arches.as_ref().filter(|a| !a.is_empty()) {
            if !a.iter().any(|a| is_amd64(a)) {
                continue;
            }
        }
        if let Some(caps) = inc.caps.as_ref().filter(|c| !c.is_empty()) {
            notes.push(format!(
                "{label} needs {}: skipped, since cordon drops every capability",
                caps.join(", ")
            ));
            continue;
        }
        if let Some(k) = &exc.min_kernel {
            notes.push(format!(
                "{label} applies only before Linux {k}: skipped, assuming a newer kernel"
            ));
            continue;
        }
        if let Some(k) = &inc.min_kernel {
            notes.push(format!(
                "{label} applies only from Linux {k}: applied, assuming at least that kernel"
            ));
        }

        let lib = LibAction::new(sc.action, sc.errno_ret);
        if lib == default_lib {
            // runc skips these (libseccomp rejects a rule equal to the default).
            continue;
        }
        let (action, why) = lib.to_cordon();
        if let Some(why) = why {
            notes.push(format!("{label} {why}"));
        }

        let rules = condition_sets(sc.args.as_deref().unwrap_or(&[]));
        for name in &sc_names {
            let Some(nr) = Arch::X86_64.syscall_nr(name) else {
                unknown.insert((*name).to_string());
                continue;
            };
            let Some(name) = Arch::X86_64.syscall_name(nr) else {
                continue;
            };
            let list = per.entry(name).or_default();
            for args in &rules {
                list.push(Candidate {
                    action,
                    args: args.clone(),
                });
            }
        }
    }

    // Precedence (module documentation).
    let mut allow: BTreeSet<&'static str> = BTreeSet::new();
    let mut rules: Vec<RuleSpec> = Vec::new();
    for (name, cands) in &per {
        if let Some(first) = cands.iter().find(|c| c.args.is_empty()) {
            if first.action == Action::Allow {
                allow.insert(name);
            } else {
                rules.push(RuleSpec {
                    syscall: (*name).to_string(),
                    args: Vec::new(),
                    action: ActionSpec(first.action),
                });
            }
            continue;
        }
        let actions: BTreeSet<Action> = cands.iter().map(|c| c.action).collect();
        if actions.len() > 1 {
            notes.push(format!(
                "{name}: argument rules with different actions; cordon tries them in profile order, libseccomp in its own tree order, so where their conditions overlap the decision may differ"
            ));
        }
        let start = rules.len();
        for c in cands {
            let r = RuleSpec {
                syscall: (*name).to_string(),
                args: c.args.clone(),
                action: ActionSpec(c.action),
            };
            if !rules[start..].contains(&r) {
                rules.push(r);
            }
        }
    }

    // clone3: cordon answers ENOSYS for an unnamed clone3; name it when the
    // profile's answer (its default) differs.
    if !allow.contains("clone3")
        && !rules.iter().any(|r| r.syscall == "clone3")
        && default != Action::Errno(libc::ENOSYS as u16)
    {
        rules.push(RuleSpec {
            syscall: "clone3".to_string(),
            args: Vec::new(),
            action: ActionSpec(default),
        });
        rules.sort_by(|a, b| a.syscall.cmp(&b.syscall));
    }

    if !unknown.is_empty() {
        notes.push(format!(
            "{} syscall names not in cordon's x86_64 table (other architectures' calls, or x86_64 calls newer than the table), ignored, so cordon gives such calls its answer for unknown numbers (the default action, ENOSYS above its table): {}",
            unknown.len(),
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }

    let section = SeccompPolicy {
        default_action: ActionSpec(default),
        allow: allow.into_iter().map(str::to_string).collect(),
        rules,
        report: false,
    };
    let filter = section.compile_for(Arch::X86_64).map_err(|e| {
        format!(
            "{file}: the imported seccomp section does not compile: {}: {}",
            e.path, e.message
        )
    })?;

    let mut narrow: BTreeSet<String> = BTreeSet::new();
    for (nr, e) in &filter.entries {
        for r in &e.rules {
            for c in r.conds.iter().filter(|c| c.low32) {
                let name = Arch::X86_64.syscall_name(*nr).unwrap_or("?");
                narrow.insert(format!("{name} argument {}", c.arg));
            }
        }
    }
    if !narrow.is_empty() {
        notes.push(format!(
            "32-bit arguments ({}): cordon compares only their low 32 bits, which is all the kernel reads; libseccomp compares 64 bits, so a call with high bits set can match differently (cordon's answer is the one for the value the kernel uses)",
            narrow.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }

    Ok(Imported {
        section,
        not_expressed: notes,
    })
}

/// The rules one entry's `args` make: one rule with all conditions, or,
/// when two conditions name the same argument, one rule per condition (as
/// runc adds them). A `MASKED_EQ` with mask 0 always holds and is left out.
fn condition_sets(args: &[Arg]) -> Vec<Vec<ArgSpec>> {
    let mut seen = [0usize; 6];
    for a in args {
        seen[usize::from(a.index.0)] += 1;
    }
    let specs: Vec<Option<ArgSpec>> = args.iter().map(arg_spec).collect();
    if seen.iter().any(|&n| n > 1) {
        // Each condition alone; a trivially true one makes an unconditional rule.
        specs.into_iter().map(|s| s.into_iter().collect()).collect()
    } else {
        vec![specs.into_iter().flatten().collect()]
    }
}

/// One OCI condition as cordon's; `None` when it always holds.
fn arg_spec(a: &Arg) -> Option<ArgSpec> {
    let num = |value| ValueSpec { value, text: None };
    let op = match a.op {
        OciOp::Eq => OpSpec::Eq,
        OciOp::Ne => OpSpec::Ne,
        OciOp::Lt => OpSpec::Lt,
        OciOp::Le => OpSpec::Le,
        OciOp::Gt => OpSpec::Gt,
        OciOp::Ge => OpSpec::Ge,
        OciOp::MaskedEq => {
            if a.value == 0 {
                return None;
            }
            return Some(ArgSpec {
                arg: a.index.0,
                op: OpSpec::MaskedEq,
                value: num(a.value_two & a.value),
                mask: Some(num(a.value)),
            });
        }
    };
    Some(ArgSpec {
        arg: a.index.0,
        op,
        value: num(a.value),
        mask: None,
    })
}

/// Parse JSON into `T`; errors read `FILE:LINE:COLUMN: PATH: MESSAGE`.
fn parse<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        format!(
            "{file}:{}:{}: {at}{}",
            inner.line(),
            inner.column(),
            message(&inner)
        )
    })?;
    de.end().map_err(|e| {
        format!(
            "{file}:{}:{}: {} (after the profile)",
            e.line(),
            e.column(),
            message(&e)
        )
    })?;
    Ok(value)
}

/// serde_json's message without its " at line L column C" suffix.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::super::ir::{Data, Filter};
    use super::super::{bpf, interp};
    use super::*;

    const DOCKER: &str = include_str!("../../tests/data/docker-default-seccomp.json");

    fn nr(name: &str) -> u32 {
        Arch::X86_64
            .syscall_nr(name)
            .unwrap_or_else(|| panic!("no syscall {name}"))
    }

    fn decide(f: &Filter, name: &str, args: &[u64]) -> Action {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        f.decide(&Data::x86_64(nr(name), a))
    }

    fn import(json: &str) -> Imported {
        import_profile(json, "test.json").unwrap_or_else(|e| panic!("{e}\n{json}"))
    }

    fn compiled(i: &Imported) -> Filter {
        i.section
            .compile_for(Arch::X86_64)
            .unwrap_or_else(|e| panic!("{}: {}", e.path, e.message))
    }

    const EPERM: Action = Action::Errno(libc::EPERM as u16);
    const ENOSYS: Action = Action::Errno(libc::ENOSYS as u16);

    /// A profile allowing what every policy needs, plus `extra` entries.
    fn profile(default: &str, extra: &str) -> String {
        let comma = if extra.is_empty() { "" } else { "," };
        format!(
            r#"{{"defaultAction": {default}, "syscalls": [
                {{"names": ["execve", "exit_group", "write", "read"], "action": "SCMP_ACT_ALLOW"}}{comma}
                {extra}
            ]}}"#
        )
    }

    #[test]
    fn docker_default_imports_and_decides_like_docker() {
        let i = import(DOCKER);
        let f = compiled(&i);
        for name in [
            "read",
            "write",
            "openat",
            "execve",
            "getppid",
            "mmap",
            "arch_prctl",
            "modify_ldt",
        ] {
            assert_eq!(decide(&f, name, &[]), Action::Allow, "{name}");
        }
        // The profile allows ptrace & co. from Linux 4.8 on, without a capability.
        for name in ["ptrace", "process_vm_readv", "process_vm_writev"] {
            assert_eq!(decide(&f, name, &[]), Action::Allow, "{name}");
        }
        // Only with capabilities (skipped) or not at all.
        for name in [
            "mount",
            "umount2",
            "reboot",
            "kexec_load",
            "bpf",
            "unshare",
            "setns",
            "init_module",
            "open_by_handle_at",
            "perf_event_open",
            "chroot",
            "syslog",
            "acct",
            "vhangup",
        ] {
            assert_eq!(decide(&f, name, &[]), EPERM, "{name}");
        }
        // personality: only the listed personas.
        for p in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(
                decide(&f, "personality", &[p]),
                Action::Allow,
                "personality({p:#x})"
            );
        }
        for p in [0x0040000, 1, 0x20001] {
            assert_eq!(decide(&f, "personality", &[p]), EPERM, "personality({p:#x})");
        }
        // socket: everything but AF_VSOCK (40) and 38.
        for fam in [1, 2, 10, 16, 17, 37, 39, 41, 45] {
            assert_eq!(decide(&f, "socket", &[fam, 1, 0]), Action::Allow, "socket({fam})");
        }
        for fam in [38, 40] {
            assert_eq!(decide(&f, "socket", &[fam, 1, 0]), EPERM, "socket({fam})");
        }
        // clone: threads and forks, but no new namespaces.
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(decide(&f, "clone", &[thread]), Action::Allow);
        assert_eq!(decide(&f, "clone", &[libc::SIGCHLD as u64]), Action::Allow);
        for ns in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWPID,
        ] {
            assert_eq!(decide(&f, "clone", &[ns as u64 | libc::SIGCHLD as u64]), EPERM);
        }
        assert_eq!(decide(&f, "clone3", &[]), ENOSYS);

        let s = &i.section;
        assert_eq!(s.default_action, ActionSpec(EPERM));
        let mut sorted = s.allow.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(s.allow, sorted, "allow is sorted and deduplicated");
        assert!(s.allow.iter().all(|n| !n.starts_with('@')));
        assert!(!s.allow.contains(&"socket".to_string()));
        assert!(!s.allow.contains(&"personality".to_string()));
        let per = |n: &str| s.rules.iter().filter(|r| r.syscall == n).count();
        assert_eq!(per("socket"), 3);
        assert_eq!(per("personality"), 5);
        assert_eq!(per("clone"), 1);
        assert_eq!(per("clone3"), 1);
        assert_eq!(s.rules.len(), 10, "{:#?}", s.rules);

        let ne = &i.not_expressed;
        let has = |a: &str, b: &str| ne.iter().any(|l| l.contains(a) && l.contains(b));
        assert!(has("CAP_SYS_ADMIN", "mount"), "{ne:#?}");
        assert!(has("CAP_DAC_READ_SEARCH", "open_by_handle_at"), "{ne:#?}");
        assert!(has("CAP_SYS_BOOT", "reboot"), "{ne:#?}");
        assert!(has("4.8", "ptrace"), "{ne:#?}");
        assert!(has("SCMP_ARCH_X86", "SCMP_ARCH_X32"), "{ne:#?}");
        assert!(has("_llseek", "socketcall"), "{ne:#?}");
        assert!(has("socket argument 0", "personality argument 0"), "{ne:#?}");
        // Arch-only entries for other architectures are silent.
        assert!(
            !ne.iter()
                .any(|l| l.contains("riscv_flush_icache") || l.contains("s390")),
            "{ne:#?}"
        );
        // Every includes.caps entry is listed.
        let caps_entries = ne.iter().filter(|l| l.contains(" needs CAP_")).count();
        assert_eq!(caps_entries, 14, "{ne:#?}");

        // The BPF program fits and agrees with the model.
        let prog = bpf::compile(&f);
        assert!(
            prog.len() <= crate::seccomp::MAX_INSNS,
            "{} instructions",
            prog.len()
        );
        let probes: [[u64; 6]; 5] = [
            [0; 6],
            [2, 1, 0, 0, 0, 0],
            [40, 1, 0, 0, 0, 0],
            [0x2_0000, 0, 0, 0, 0, 0],
            [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0],
        ];
        for n in 0..=f.known_max + 1 {
            for args in probes {
                let d = Data::x86_64(n, args);
                let ret = interp::run(&prog, &d)
                    .unwrap_or_else(|e| panic!("{n}: {e:?}"))
                    .ret;
                assert_eq!(Action::from_ret(ret), Some(f.decide(&d)), "nr {n} {args:?}");
            }
        }
    }

    #[test]
    fn docker_default_round_trips_through_json() {
        let s = import(DOCKER).section;
        let text = serde_json::to_string(&s).unwrap();
        let back: SeccompPolicy = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        let pretty = serde_json::to_string_pretty(&s).unwrap();
        assert_eq!(serde_json::from_str::<SeccompPolicy>(&pretty).unwrap(), s);
    }

    #[test]
    fn each_operator() {
        let i = import(&profile(
            r#""SCMP_ACT_ERRNO""#,
            r#"{"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
               {"names": ["tgkill"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
               {"names": ["lseek"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 2, "op": "SCMP_CMP_LT"}]},
               {"names": ["dup2"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_LE"}]},
               {"names": ["close"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_GT"}]},
               {"names": ["fsync"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_GE"}]}"#,
        ));
        let f = compiled(&i);
        let cases: &[(&str, &[u64], Action)] = &[
            ("kill", &[1, 15], Action::Allow),
            ("kill", &[1, 9], EPERM),
            ("tgkill", &[1, 2, 15], Action::Allow),
            ("tgkill", &[1, 2, 9], EPERM),
            ("lseek", &[3, 0, 1], Action::Allow),
            ("lseek", &[3, 0, 2], EPERM),
            ("dup2", &[3, 10], Action::Allow),
            ("dup2", &[3, 11], EPERM),
            ("close", &[3], Action::Allow),
            ("close", &[2], EPERM),
            ("fsync", &[3], Action::Allow),
            ("fsync", &[2], EPERM),
        ];
        for (name, args, want) in cases {
            assert_eq!(decide(&f, name, args), *want, "{name}{args:?}");
        }
        let ops: Vec<OpSpec> = i
            .section
            .rules
            .iter()
            .flat_map(|r| r.args.iter().map(|a| a.op))
            .collect();
        for op in [
            OpSpec::Eq,
            OpSpec::Ne,
            OpSpec::Lt,
            OpSpec::Le,
            OpSpec::Gt,
            OpSpec::Ge,
        ] {
            assert!(ops.contains(&op), "{op:?} in {ops:?}");
        }
        assert!(i
            .section
            .rules
            .iter()
            .all(|r| r.args.iter().all(|a| a.value.text.is_none())));
    }

    #[test]
    fn masked_eq_takes_the_mask_from_value_and_the_datum_from_value_two() {
        let i = import(&profile(
            r#""SCMP_ACT_ERRNO""#,
            r#"{"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 2, "value": 4, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
               {"names": ["mprotect"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 2, "value": 3, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}]},
               {"names": ["munmap"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 0, "valueTwo": 5, "op": "SCMP_CMP_MASKED_EQ"}]}"#,
        ));
        let f = compiled(&i);
        // mmap without PROT_EXEC only.
        assert_eq!(decide(&f, "mmap", &[0, 4096, 3]), Action::Allow);
        assert_eq!(decide(&f, "mmap", &[0, 4096, 7]), EPERM);
        let r = i.section.rules.iter().find(|r| r.syscall == "mmap").unwrap();
        assert_eq!(r.args[0].mask.as_ref().map(|m| m.value), Some(4));
        assert_eq!(r.args[0].value.value, 0);
        // libseccomp masks the datum too: 7 & 3 == 3.
        assert_eq!(decide(&f, "mprotect", &[0, 0, 3]), Action::Allow);
        assert_eq!(decide(&f, "mprotect", &[0, 0, 7]), Action::Allow);
        assert_eq!(decide(&f, "mprotect", &[0, 0, 1]), EPERM);
        // Mask 0 always holds: libseccomp drops it, leaving an unconditional allow.
        assert!(i.section.allow.contains(&"munmap".to_string()));
        assert_eq!(decide(&f, "munmap", &[1]), Action::Allow);
    }

    #[test]
    fn errno_ret_and_actions() {
        let i = import(&profile(
            r#""SCMP_ACT_ERRNO", "defaultErrnoRet": 38"#,
            r#"{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
               {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
               {"names": ["umount2"], "action": "SCMP_ACT_ERRNO"},
               {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
               {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
               {"names": ["swapon"], "action": "SCMP_ACT_KILL_THREAD"},
               {"names": ["swapoff"], "action": "SCMP_ACT_TRAP"},
               {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
               {"names": ["acct"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
               {"names": ["chroot"], "action": "SCMP_ACT_NOTIFY"},
               {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}"#,
        ));
        let f = compiled(&i);
        assert_eq!(i.section.default_action, ActionSpec(ENOSYS));
        assert_eq!(decide(&f, "clone3", &[]), EPERM);
        assert_eq!(decide(&f, "mount", &[]), Action::Errno(13));
        // errnoRet defaults to EPERM for an entry (not to defaultErrnoRet).
        assert_eq!(decide(&f, "umount2", &[]), EPERM);
        assert_eq!(decide(&f, "reboot", &[]), Action::KillThread);
        assert_eq!(decide(&f, "kexec_load", &[]), Action::KillProcess);
        assert_eq!(decide(&f, "swapon", &[]), Action::KillThread);
        assert_eq!(decide(&f, "swapoff", &[]), Action::Trap);
        assert_eq!(decide(&f, "getpid", &[]), Action::Log);
        assert_eq!(decide(&f, "acct", &[]), ENOSYS);
        assert_eq!(decide(&f, "chroot", &[]), ENOSYS);
        assert_eq!(decide(&f, "getppid", &[]), ENOSYS);
        // Equal to the default: skipped, as runc does.
        assert!(!i.section.rules.iter().any(|r| r.syscall == "sethostname"));
        let ne = &i.not_expressed;
        assert!(
            ne.iter()
                .any(|l| l.contains("acct") && l.contains("SCMP_ACT_TRACE")),
            "{ne:#?}"
        );
        assert!(
            ne.iter()
                .any(|l| l.contains("chroot") && l.contains("SCMP_ACT_NOTIFY")),
            "{ne:#?}"
        );

        // A default that cannot be expressed.
        let i = import(&profile(r#""SCMP_ACT_TRACE""#, ""));
        assert_eq!(i.section.default_action, ActionSpec(ENOSYS));
        assert!(i
            .not_expressed
            .iter()
            .any(|l| l.starts_with("defaultAction SCMP_ACT_TRACE")));
    }

    #[test]
    fn precedence_follows_libseccomp() {
        let i = import(&profile(
            r#""SCMP_ACT_ERRNO""#,
            // socket: conditional allow, then unconditional allow: the
            // conditions are redundant. personality: an unconditional errno
            // after conditional allows still wins. prctl: the first
            // unconditional rule wins over a later one.
            r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
               {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
               {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
               {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22},
               {"names": ["prctl"], "action": "SCMP_ACT_LOG"},
               {"names": ["prctl"], "action": "SCMP_ACT_ALLOW"},
               {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 21505, "op": "SCMP_CMP_EQ"}]},
               {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 25, "args": [{"index": 1, "value": 21522, "op": "SCMP_CMP_EQ"}]}"#,
        ));
        let f = compiled(&i);
        assert!(i.section.allow.contains(&"socket".to_string()));
        assert!(!i.section.rules.iter().any(|r| r.syscall == "socket"));
        assert_eq!(decide(&f, "socket", &[2]), Action::Allow);
        assert_eq!(decide(&f, "personality", &[0]), Action::Errno(22));
        assert_eq!(decide(&f, "prctl", &[1]), Action::Log);
        assert!(!i.section.allow.contains(&"prctl".to_string()));
        assert_eq!(decide(&f, "ioctl", &[0, 21505]), Action::Allow);
        assert_eq!(decide(&f, "ioctl", &[0, 21522]), Action::Errno(25));
        assert_eq!(decide(&f, "ioctl", &[0, 1]), EPERM);
        assert!(i
            .not_expressed
            .iter()
            .any(|l| l.starts_with("ioctl: argument rules with different actions")));
    }

    #[test]
    fn conditions_and_within_an_entry_or_across_entries() {
        let i = import(&profile(
            r#""SCMP_ACT_ERRNO""#,
            r#"{"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
               {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
               {"names": ["close"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 4, "op": "SCMP_CMP_EQ"}]}"#,
        ));
        let f = compiled(&i);
        assert_eq!(decide(&f, "kill", &[0, 0]), Action::Allow);
        assert_eq!(decide(&f, "kill", &[0, 9]), EPERM);
        assert_eq!(decide(&f, "kill", &[7, 0]), EPERM);
        assert_eq!(decide(&f, "kill", &[7, 15]), Action::Allow);
        // Two conditions on one argument: runc adds one rule each (OR).
        assert_eq!(decide(&f, "close", &[3]), Action::Allow);
        assert_eq!(decide(&f, "close", &[4]), Action::Allow);
        assert_eq!(decide(&f, "close", &[5]), EPERM);
    }

    #[test]
    fn unknown_names_arches_caps_and_kernels() {
        let i = import(&profile(
            r#""SCMP_ACT_ERRNO""#,
            r#"{"names": ["_llseek", "getpid", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
               {"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
               {"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
               {"names": ["gettid"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
               {"names": ["getuid"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x86"]}},
               {"names": ["getgid"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
               {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
               {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
               {"names": ["getegid"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "4.8"}}"#,
        ));
        let f = compiled(&i);
        assert_eq!(decide(&f, "getpid", &[]), Action::Allow);
        assert_eq!(decide(&f, "getppid", &[]), EPERM);
        assert_eq!(decide(&f, "gettid", &[]), EPERM);
        assert_eq!(decide(&f, "getuid", &[]), Action::Allow);
        assert_eq!(decide(&f, "getgid", &[]), Action::Allow);
        assert_eq!(decide(&f, "mount", &[]), EPERM);
        assert_eq!(decide(&f, "ptrace", &[]), Action::Allow);
        assert_eq!(decide(&f, "getegid", &[]), EPERM);
        let ne = &i.not_expressed;
        assert!(
            ne.iter()
                .any(|l| l.contains("2 syscall names") && l.contains("_llseek, no_such_call")),
            "{ne:#?}"
        );
        assert!(
            !ne.iter()
                .any(|l| l.contains("cacheflush") || l.contains("getppid")),
            "{ne:#?}"
        );
        assert!(
            ne.iter().any(|l| l.contains("(mount) needs CAP_SYS_ADMIN")),
            "{ne:#?}"
        );
        assert!(
            ne.iter()
                .any(|l| l.contains("(ptrace) applies only from Linux 4.8")),
            "{ne:#?}"
        );
        assert!(
            ne.iter()
                .any(|l| l.contains("(getegid) applies only before Linux 4.8")),
            "{ne:#?}"
        );
        assert_eq!(ne.len(), 4, "{ne:#?}");
    }

    #[test]
    fn architectures_and_other_fields() {
        let text = r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/agent.sock",
            "comment": "ignored",
            "syscalls": [{"names": ["execve", "exit_group", "write"], "action": "SCMP_ACT_ALLOW", "comment": "x"}]}"#;
        let i = import(text);
        let ne = &i.not_expressed;
        assert!(
            ne.iter()
                .any(|l| l.starts_with("architectures SCMP_ARCH_X86, SCMP_ARCH_X32:")),
            "{ne:#?}"
        );
        assert!(!ne.iter().any(|l| l.contains("ARM")), "{ne:#?}");
        assert!(
            ne.iter().any(|l| l.contains("SECCOMP_FILTER_FLAG_LOG")),
            "{ne:#?}"
        );
        assert!(ne.iter().any(|l| l.starts_with("listenerPath")), "{ne:#?}");
    }

    #[test]
    fn clone3_keeps_the_profiles_answer() {
        // Not named: the profile's default, not cordon's ENOSYS.
        let i = import(&profile(r#""SCMP_ACT_ERRNO""#, ""));
        assert_eq!(decide(&compiled(&i), "clone3", &[]), EPERM);
        let i = import(&profile(r#""SCMP_ACT_ALLOW""#, ""));
        assert_eq!(decide(&compiled(&i), "clone3", &[]), Action::Allow);
        let i = import(&profile(r#""SCMP_ACT_ERRNO", "defaultErrnoRet": 38"#, ""));
        assert!(i.section.rules.is_empty());
        assert_eq!(decide(&compiled(&i), "clone3", &[]), ENOSYS);
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let e = import_profile(
            "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n}",
            "p.json",
        )
        .unwrap_err();
        assert!(e.starts_with("p.json:4:1: "), "{e}");

        let bad_action = "{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n\"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALOW\"}]}";
        let e = import_profile(bad_action, "p.json").unwrap_err();
        assert!(e.starts_with("p.json:2:"), "{e}");
        assert!(e.contains("syscalls[0].action"), "{e}");
        assert!(e.contains("SCMP_ACT_ALLOW"), "expected values named: {e}");

        let bad_type = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [\n {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n  \"args\": [{\"index\": 0, \"value\": \"3\", \"op\": \"SCMP_CMP_EQ\"}]}]}";
        let e = import_profile(bad_type, "p.json").unwrap_err();
        assert!(e.starts_with("p.json:3:"), "{e}");
        assert!(
            e.contains("syscalls[0].args[0].value") && e.contains("expected u64"),
            "{e}"
        );

        let bad_index = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [\n {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n  \"args\": [{\"index\": 6, \"value\": 3, \"op\": \"SCMP_CMP_EQ\"}]}]}";
        let e = import_profile(bad_index, "p.json").unwrap_err();
        assert!(e.starts_with("p.json:3:") && e.contains("expected 0 to 5"), "{e}");

        let bad_errno = "{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n \"defaultErrnoRet\": 0}";
        let e = import_profile(bad_errno, "p.json").unwrap_err();
        assert!(
            e.starts_with("p.json:2:") && e.contains("expected 1 to 4095"),
            "{e}"
        );

        let missing = "{\"syscalls\": []}";
        let e = import_profile(missing, "p.json").unwrap_err();
        assert!(e.starts_with("p.json:1:") && e.contains("defaultAction"), "{e}");

        let trailing = "{\"defaultAction\": \"SCMP_ACT_ALLOW\"} x";
        let e = import_profile(trailing, "p.json").unwrap_err();
        assert!(e.starts_with("p.json:1:"), "{e}");

        // A profile cordon cannot start a payload under.
        let e = import_profile(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#, "p.json").unwrap_err();
        assert!(
            e.starts_with("p.json: the imported seccomp section does not compile"),
            "{e}"
        );
    }
}
