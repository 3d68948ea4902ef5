//! The text of `cordon features`: the report the library's probes make
//! ([`Features`]), laid out for people.
//!
//! The library reports; the command line renders (`cordon features`).

use std::fmt::Write as _;

use super::{Features, Status};

/// Width of the label column.
const LABEL: usize = 20;

fn line(out: &mut String, label: &str, status: Status, detail: &str, advice: Option<&str>) {
    let _ = writeln!(out, "{label:<LABEL$} {status:<9} {detail}");
    if let Some(a) = advice {
        let _ = writeln!(out, "{:<LABEL$} {:<9} what to do: {a}", "", "");
    }
}

/// The human report of `cordon features`: one line per item and, for
/// anything missing or limited, one line saying what to do.
pub fn render(f: &Features) -> String {
    let mut o = String::new();
    let k = &f.kernel;
    let _ = writeln!(
        o,
        "{:<LABEL$} {} {} {} ({})",
        "kernel", k.sysname, k.release, k.machine, k.version
    );
    let i = &f.identity;
    let _ = writeln!(
        o,
        "{:<LABEL$} uid {} euid {} gid {}{}{}{}",
        "running as",
        i.uid,
        i.euid,
        i.gid,
        if i.root { " (root)" } else { "" },
        match i.initial_user_namespace {
            Some(true) => ", initial user namespace",
            Some(false) => ", inside a user namespace (a container?)",
            None => "",
        },
        match i.seccomp_mode {
            Some(2) => ", under a seccomp filter",
            Some(1) => ", in seccomp strict mode",
            _ => "",
        }
    );

    let l = &f.landlock;
    line(&mut o, "landlock", l.status, &l.detail, l.advice.as_deref());
    let mut by_abi: Vec<(u32, Vec<&str>)> = Vec::new();
    for f in &l.features {
        match by_abi.last_mut() {
            Some((abi, names)) if *abi == f.abi => names.push(f.name),
            _ => by_abi.push((f.abi, vec![f.name])),
        }
    }
    for (i, (abi, names)) in by_abi.iter().enumerate() {
        let label = if i == 0 { "  landlock offers" } else { "" };
        let _ = writeln!(o, "{label:<LABEL$} {:<9} ABI {abi}: {}", "", names.join(", "));
    }
    if !l.unavailable_features.is_empty() && l.abi.is_some() {
        let lack: Vec<String> = l
            .unavailable_features
            .iter()
            .map(|f| format!("{} (ABI {}, Linux {})", f.name, f.abi, f.linux))
            .collect();
        let _ = writeln!(o, "{:<LABEL$} {:<9} {}", "  not in this ABI", "", lack.join(", "));
    }

    let s = &f.seccomp;
    line(&mut o, "seccomp", s.status, &s.detail, s.advice.as_deref());
    line(
        &mut o,
        "  pidfd_getfd",
        s.pidfd_getfd.status,
        &s.pidfd_getfd.detail,
        s.pidfd_getfd.advice.as_deref(),
    );
    line(
        &mut o,
        "  seccomp reports",
        s.reports.status,
        &s.reports.detail,
        s.reports.advice.as_deref(),
    );

    for (label, p) in [
        ("clone3", &f.clone3),
        ("pidfd_open", &f.pidfd_open),
        ("pidfd_send_signal", &f.pidfd_send_signal),
        ("pidfd", &f.pidfd),
    ] {
        line(&mut o, label, p.status, &p.detail, p.advice.as_deref());
    }

    let u = &f.namespaces.user;
    line(
        &mut o,
        "user namespaces",
        u.status,
        &u.detail,
        u.advice.as_deref(),
    );
    for n in &f.namespaces.kinds {
        line(
            &mut o,
            &format!("  {} namespace", n.name),
            n.status,
            &n.detail,
            n.advice.as_deref(),
        );
    }

    let c = &f.cgroups;
    line(&mut o, "cgroups", c.status, &c.detail, c.advice.as_deref());
    for ctl in &c.controllers {
        line(&mut o, &format!("  {}", ctl.name), ctl.status, &ctl.detail, None);
    }
    if let Some(v2) = &c.v2 {
        let list = |l: &Option<Vec<String>>| match l {
            Some(v) if v.is_empty() => "none".to_string(),
            Some(v) => v.join(" "),
            None => "unknown".to_string(),
        };
        let _ = writeln!(
            o,
            "{:<LABEL$} {:<9} {} (cordon's cgroup {}): root controllers {}; cordon's cgroup has {}, enables for children {}{}",
            "  cgroup v2",
            "",
            v2.mount_point,
            v2.path,
            list(&v2.root_controllers),
            list(&v2.controllers),
            list(&v2.subtree_control),
            if v2.read_only { "; read-only mount" } else { "" }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon::features::{probe, Probe};

    #[test]
    fn text_has_a_line_per_item_and_advice_for_missing() {
        let mut f = probe();
        let t = render(&f);
        for label in [
            "kernel",
            "running as",
            "landlock",
            "seccomp",
            "pidfd_getfd",
            "seccomp reports",
            "clone3",
            "pidfd_open",
            "pidfd_send_signal",
            "pidfd ",
            "user namespaces",
            "user namespace",
            "time namespace",
            "cgroups",
            "memory",
            "pids",
        ] {
            assert!(
                t.lines().any(|l| l.trim_start().starts_with(label)),
                "no {label:?} line in\n{t}"
            );
        }
        f.clone3 = Probe {
            status: Status::Missing,
            detail: "test".to_string(),
            advice: Some("upgrade the kernel".to_string()),
        };
        let t = render(&f);
        let i = t
            .lines()
            .position(|l| l.starts_with("clone3"))
            .expect("clone3 line");
        let next = t.lines().nth(i + 1).expect("advice line");
        assert!(next.contains("what to do: upgrade the kernel"), "{next}");
    }
}
