//! The supervisor's audit events (`sandbox.started`, `limit.hit`,
//! `workspace.applied`, `sandbox.exited`; `seccomp.violation` is written by
//! [`crate::launch::notify`]). Only called when the plan has an audit log.

use serde_json::Value;

use crate::audit::AuditRun;
use crate::error::LaunchError;
use crate::outcome::{Outcome, Status};
use crate::plan::{Plan, Supervise};

/// The layers this plan turns on, by their names in `sandbox.started`'s
/// `enforced` (documented in cordon-policy(5)).
pub fn enforced(plan: &Plan) -> Vec<&'static str> {
    let f = plan.child.clone_flags();
    let mut on = Vec::new();
    for (flag, name) in [
        (libc::CLONE_NEWUSER, "namespace.user"),
        (libc::CLONE_NEWNS, "namespace.mount"),
        (libc::CLONE_NEWPID, "namespace.pid"),
        (libc::CLONE_NEWNET, "namespace.net"),
        (libc::CLONE_NEWIPC, "namespace.ipc"),
        (libc::CLONE_NEWUTS, "namespace.uts"),
        (libc::CLONE_NEWCGROUP, "namespace.cgroup"),
    ] {
        if f & flag as u64 != 0 {
            on.push(name);
        }
    }
    if plan.child.landlock().is_some() {
        on.push("landlock");
    }
    if plan.child.seccomp().is_some() {
        on.push("seccomp");
        if matches!(plan.supervisor.supervise, Supervise::Report(_)) {
            on.push("seccomp.report");
        }
    }
    if plan.supervisor.cgroup.is_some() {
        on.push("cgroup");
    }
    if !plan.child.rlimits().is_empty() {
        on.push("rlimits");
    }
    if plan.supervisor.wall_time.is_some() {
        on.push("wall_time");
    }
    if plan.supervisor.memfd_noexec {
        on.push("memfd_noexec");
    }
    on
}

/// `sandbox.started`, before the sandbox is created.
pub fn started(a: &AuditRun, plan: &Plan) {
    let argv: Vec<Value> = plan
        .child
        .exec()
        .argv()
        .iter()
        .map(|c| Value::from(c.to_string_lossy().into_owned()))
        .collect();
    let mut fields = started_fields(a, plan);
    fields.insert(2, ("argv", Value::Array(argv)));
    a.log.emit("sandbox.started", &fields);
}

/// `sandbox.started` for a named sandbox (`named: true`, no argv: its
/// commands come later, each with `command.started`), before it is made.
pub fn named_started(a: &AuditRun, plan: &Plan) {
    let mut fields = started_fields(a, plan);
    fields.insert(2, ("named", Value::from(true)));
    a.log.emit("sandbox.started", &fields);
}

fn started_fields(a: &AuditRun, plan: &Plan) -> Vec<(&'static str, Value)> {
    let unenforced: Vec<Value> = plan
        .supervisor
        .unenforced
        .iter()
        .chain(&plan.supervisor.unenforced_quiet)
        .map(|s| Value::from(s.as_str()))
        .collect();
    vec![
        ("policy_digest", Value::from(a.policy_digest.as_str())),
        ("policy", Value::from(a.policy.as_str())),
        ("host_uid", Value::from(plan.child.ids().host_uid)),
        ("enforced", Value::from(enforced(plan))),
        ("unenforced", Value::Array(unenforced)),
    ]
}

/// `command.started`: a named sandbox's command `id` was handed to its
/// init.
pub fn command_started(a: &AuditRun, id: u32, argv: &[&std::ffi::OsStr]) {
    let argv: Vec<Value> = argv
        .iter()
        .map(|c| Value::from(c.to_string_lossy().into_owned()))
        .collect();
    a.log.emit(
        "command.started",
        &[("command", Value::from(id)), ("argv", Value::Array(argv))],
    );
}

/// `limit.hit` for each limit command `id` ran into, then
/// `command.exited`; the outcome gets `audit_dropped`.
pub fn command_exited(a: &AuditRun, id: u32, out: &mut Outcome) {
    for limit in &out.limits_hit {
        a.log.emit(
            "limit.hit",
            &[("command", Value::from(id)), ("limit", Value::from(*limit))],
        );
    }
    let mut fields = vec![
        ("command", Value::from(id)),
        ("status", Value::from(out.status.name())),
        ("exit_code", Value::from(out.exit_code)),
    ];
    if let Some(s) = out.signal {
        fields.push(("signal", Value::from(s)));
    }
    fields.push(("wall_time_ms", Value::from(out.wall_time_ms)));
    if let Some(e) = &out.error {
        fields.push(("error", Value::from(e.to_string())));
    }
    a.log.emit("command.exited", &fields);
    out.audit_dropped = Some(a.log.dropped());
}

/// `sandbox.stopped`: a named sandbox ended, after `lifetime_ms` and
/// `commands` commands.
pub fn named_stopped(a: &AuditRun, lifetime_ms: u64, commands: u64) {
    a.log.emit(
        "sandbox.stopped",
        &[
            ("lifetime_ms", Value::from(lifetime_ms)),
            ("commands", Value::from(commands)),
            // Counted before this line: this one cannot count itself.
            ("audit_dropped", Value::from(a.log.dropped())),
        ],
    );
}

/// `limit.hit` for each limit the run ran into, then `sandbox.exited`; the
/// outcome gets `audit_dropped`.
pub fn ended(a: &AuditRun, out: &mut Outcome, violations_logged: u64) {
    for limit in &out.limits_hit {
        a.log.emit("limit.hit", &[("limit", Value::from(*limit))]);
    }
    for w in &out.workspaces {
        workspace(a, w);
    }
    let error = out.error.as_ref().map(|e| e.to_string());
    exited(
        a,
        (out.status, out.exit_code, out.signal),
        out.wall_time_ms,
        (out.violations_total, violations_logged),
        error,
    );
    out.audit_dropped = Some(a.log.dropped());
}

/// `workspace.applied`: one workspace's change set and what of it reached
/// the host (`applied` false: nothing, or only `applied_count` changes).
fn workspace(a: &AuditRun, w: &crate::outcome::WorkspaceOutcome) {
    let mut fields = vec![
        ("path", Value::from(w.path.as_str())),
        ("to", Value::from(w.to.as_str())),
        ("files_changed", Value::from(w.files_changed)),
        ("bytes", Value::from(w.bytes)),
        ("upper_bytes", Value::from(w.upper_bytes)),
        ("applied", Value::from(w.applied)),
        (
            "applied_count",
            Value::from(if w.applied {
                w.files_changed
            } else {
                w.applied_paths.len() as u64
            }),
        ),
        ("refused", Value::from(w.refused.len() as u64)),
    ];
    if let Some(e) = &w.export {
        fields.push(("export", Value::from(e.as_str())));
    }
    if let Some(e) = &w.error {
        fields.push(("error", Value::from(e.as_str())));
    }
    a.log.emit("workspace.applied", &fields);
}

/// `sandbox.exited` for a run the supervisor could not carry through.
pub fn failed(a: &AuditRun, e: &LaunchError, wall_time_ms: u64) {
    exited(
        a,
        (Status::SetupFailed, crate::error::exit::SETUP, None),
        wall_time_ms,
        (0, 0),
        Some(e.to_string()),
    );
}

fn exited(
    a: &AuditRun,
    (status, exit_code, signal): (Status, i32, Option<i32>),
    wall_time_ms: u64,
    (violations_total, violations_logged): (u64, u64),
    error: Option<String>,
) {
    let mut fields = vec![
        ("status", Value::from(status.name())),
        ("exit_code", Value::from(exit_code)),
    ];
    if let Some(s) = signal {
        fields.push(("signal", Value::from(s)));
    }
    fields.extend([
        ("wall_time_ms", Value::from(wall_time_ms)),
        ("violations_total", Value::from(violations_total)),
        ("violations_logged", Value::from(violations_logged)),
        // Counted before this line: this one cannot count itself.
        ("audit_dropped", Value::from(a.log.dropped())),
    ]);
    if let Some(e) = error {
        fields.push(("error", Value::from(e)));
    }
    a.log.emit("sandbox.exited", &fields);
}
