//! `cordon features --json` checked against what the host really shows:
//! the Landlock ABI, whether this user can create a user namespace, the
//! cgroup layout, seccomp user notification — as root and as an
//! unprivileged user.
//!
//! The report comes from `cordon features --json`. While the binary does not
//! have that subcommand yet (clap answers "unrecognized subcommand"), it
//! comes from the library instead: this test binary runs itself, under the
//! same uid, with `CORDON_FEATURES_HELPER=1`, and the `helper_prints_probe`
//! test prints `cordon::features::probe()` as JSON.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{is_root, Mode, ROOTLESS_ID};
use serde_json::Value;

const HELPER_ENV: &str = "CORDON_FEATURES_HELPER";
const BEGIN: &str = "--- cordon features json ---";
const END: &str = "--- end ---";

/// Not a test of its own: prints the library's report when the other tests
/// run this binary with [`HELPER_ENV`] set.
#[test]
fn helper_prints_probe() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let f = cordon::features::probe();
    let json = serde_json::to_string_pretty(&f).expect("features serialize");
    println!("{BEGIN}\n{json}\n{END}");
}

/// The uid the report is expected to be made as.
fn expected_uid(mode: Mode) -> u32 {
    if mode == Mode::Rootless && is_root() {
        ROOTLESS_ID
    } else {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() }
    }
}

/// The report, as `mode` sees it.
fn features_json(mode: Mode) -> Value {
    let out = common::cordon(mode)
        .args(["features", "--json"])
        .output()
        .expect("spawn cordon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "cordon features --json is not JSON: {e}\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
    }
    assert!(
        stderr.contains("unrecognized subcommand"),
        "cordon features --json failed: {:?}\n{stderr}",
        out.status
    );
    eprintln!("NOTE: cordon has no `features` subcommand yet: checking the library's report instead");
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args([
        "--exact",
        "helper_prints_probe",
        "--nocapture",
        "--test-threads=1",
    ])
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .env(HELPER_ENV, "1")
    .stdin(Stdio::null());
    if mode == Mode::Rootless && is_root() {
        c.uid(ROOTLESS_ID).gid(ROOTLESS_ID);
    }
    let out = c.output().expect("run the helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helper failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(j, _)| j)
        .unwrap_or_else(|| panic!("no report in the helper's output: {stdout}"));
    serde_json::from_str(json).expect("helper prints JSON")
}

/// landlock_create_ruleset(NULL, 0, VERSION): the ABI, or the errno.
fn landlock_abi() -> Result<u64, i32> {
    // SAFETY: a NULL attr with size 0 and the VERSION flag only queries.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as u64)
    }
}

/// Whether a forked child, running as `uid` (dropping to it from root),
/// can unshare(CLONE_NEWUSER): Ok(()) or the errno.
fn userns_works_as(uid: u32) -> Result<(), i32> {
    // SAFETY: geteuid cannot fail.
    let drop_to = if unsafe { libc::geteuid() } == uid {
        None
    } else {
        Some(uid)
    };
    // SAFETY: the child only makes async-signal-safe system calls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain system calls in the forked child; _exit never returns.
        unsafe {
            if let Some(id) = drop_to {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(id, id, id) != 0
                    || libc::setresuid(id, id, id) != 0
                {
                    libc::_exit(255);
                }
            }
            let code = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                0
            } else {
                (*libc::__errno_location()).clamp(1, 254)
            };
            libc::_exit(code);
        }
    }
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid out pointer.
    let w = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(w, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "test child died: {status:#x}");
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        255 => panic!("the test child could not drop to uid {uid}"),
        e => Err(e),
    }
}

/// The cgroup layout as /proc/self/mountinfo shows it, worked out here
/// independently of cordon's parser.
fn mountinfo_layout() -> (&'static str, Vec<String>) {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let controllers = [
        "cpuset",
        "cpu",
        "cpuacct",
        "blkio",
        "io",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "perf_event",
        "net_prio",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    ];
    let mut v2 = false;
    let mut v1_controllers = false;
    let mut v1 = false;
    let mut points = Vec::new();
    for l in mi.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let post: Vec<&str> = post.split(' ').collect();
        let point = pre.split(' ').nth(4).unwrap_or("").to_string();
        match post.first() {
            Some(&"cgroup2") => v2 = true,
            Some(&"cgroup") => {
                v1 = true;
                let opts = post.get(2).copied().unwrap_or("");
                if opts.split(',').any(|o| controllers.contains(&o)) {
                    v1_controllers = true;
                }
            }
            _ => continue,
        }
        if !points.contains(&point) {
            points.push(point);
        }
    }
    let layout = match (v2, v1_controllers, v1) {
        (true, true, _) => "hybrid",
        (true, false, _) => "v2",
        (false, _, true) => "v1",
        (false, _, false) => "none",
    };
    points.sort();
    (layout, points)
}

fn check(mode: Mode) {
    let f = features_json(mode);
    let uid = expected_uid(mode);
    let ctx = format!(
        "{mode:?}: {}",
        serde_json::to_string_pretty(&f).unwrap_or_default()
    );

    // The documented, stable top-level fields.
    let keys: Vec<&str> = f
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "cgroups",
        "clone3",
        "identity",
        "kernel",
        "landlock",
        "namespaces",
        "pidfd",
        "pidfd_open",
        "pidfd_send_signal",
        "seccomp",
    ];
    want.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, want, "{ctx}");

    // Who and which kernel.
    assert_eq!(f["identity"]["euid"], uid, "{ctx}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(f["kernel"]["release"], release.trim(), "{ctx}");

    // Landlock: the ABI this test gets from the kernel.
    let ll = &f["landlock"];
    match landlock_abi() {
        Ok(abi) => {
            assert_eq!(ll["abi"], abi, "{ctx}");
            assert_ne!(ll["status"], "missing", "{ctx}");
            for feat in ll["features"].as_array().expect("features") {
                assert!(feat["abi"].as_u64().expect("abi") <= abi, "{feat}");
            }
            for feat in ll["unavailable_features"]
                .as_array()
                .expect("unavailable_features")
            {
                assert!(feat["abi"].as_u64().expect("abi") > abi, "{feat}");
            }
            if abi >= 4 {
                let names: Vec<&str> = ll["features"]
                    .as_array()
                    .expect("features")
                    .iter()
                    .filter_map(|x| x["name"].as_str())
                    .collect();
                assert!(names.contains(&"access_net_connect_tcp"), "{ctx}");
            }
        }
        Err(e) => {
            assert!(ll["abi"].is_null(), "{ctx}");
            assert!(ll["errno"].is_string(), "errno {e}: {ctx}");
            assert!(ll["advice"].is_string(), "{ctx}");
        }
    }
    if ll["in_lsm_list"] == true {
        assert!(ll["lsm_list"]
            .as_array()
            .expect("lsm_list")
            .iter()
            .any(|x| x == "landlock"));
    }

    // User namespaces: usable exactly when this test can create one as the same uid.
    let works = userns_works_as(uid);
    let user = &f["namespaces"]["user"];
    assert_eq!(
        user["usable"],
        works.is_ok(),
        "unshare as uid {uid}: {works:?}; {ctx}"
    );
    assert_eq!(user["tested_as_uid"], uid, "{ctx}");
    let user_kind = f["namespaces"]["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .find(|k| k["name"] == "user")
        .expect("a user kind");
    assert_eq!(user_kind["usable"], works.is_ok(), "{ctx}");
    if works.is_err() {
        assert_eq!(user["status"], "missing", "{ctx}");
        assert!(user["advice"].is_string(), "{ctx}");
    }

    // Cgroups: the layout /proc/self/mountinfo shows.
    let (layout, points) = mountinfo_layout();
    let cg = &f["cgroups"];
    assert_eq!(cg["layout"], layout, "{ctx}");
    let mut reported: Vec<String> = cg["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| m["mount_point"].as_str().expect("mount_point").to_string())
        .collect();
    reported.sort();
    assert_eq!(reported, points, "{ctx}");
    if mode == Mode::Root && is_root() {
        for c in cg["controllers"].as_array().expect("controllers") {
            if c["version"] == "v1" {
                let mount = cg["mounts"]
                    .as_array()
                    .expect("mounts")
                    .iter()
                    .find(|m| {
                        m["version"] == "v1"
                            && m["controllers"]
                                .as_array()
                                .is_some_and(|l| l.contains(&c["name"]))
                    })
                    .expect("the controller's v1 mount");
                let ro = mount["read_only"] == true;
                assert_eq!(c["writable"], !ro, "root writes v1 cgroups unless read-only: {c}");
            }
        }
    }

    // Whatever is missing or limited says what to do.
    for (name, p) in [
        ("landlock", &f["landlock"]),
        ("seccomp", &f["seccomp"]),
        ("seccomp.pidfd_getfd", &f["seccomp"]["pidfd_getfd"]),
        ("seccomp.reports", &f["seccomp"]["reports"]),
        ("clone3", &f["clone3"]),
        ("pidfd_open", &f["pidfd_open"]),
        ("pidfd_send_signal", &f["pidfd_send_signal"]),
        ("pidfd", &f["pidfd"]),
        ("namespaces.user", &f["namespaces"]["user"]),
        ("cgroups", &f["cgroups"]),
    ] {
        let status = p["status"].as_str().expect("a status");
        assert!(
            ["available", "limited", "missing", "unknown"].contains(&status),
            "{name}: {status}"
        );
        assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()), "{name}: {p}");
        if status == "missing" || status == "limited" {
            assert!(
                p["advice"].as_str().is_some_and(|a| !a.is_empty()),
                "{name} has no advice: {p}"
            );
        }
    }

    // Seccomp user notification, as this test sees it.
    let action: u32 = 0x7fc0_0000;
    // SAFETY: the kernel reads one u32 from &action.
    let notif = unsafe { libc::syscall(libc::SYS_seccomp, 2, 0, &action as *const u32) } == 0;
    assert_eq!(f["seccomp"]["actions"]["user_notif"], notif, "{ctx}");
    require!(
        "seccomp_user_notif",
        notif,
        "the kernel lacks seccomp user notification"
    );
    assert_eq!(f["seccomp"]["actions"]["errno"], true, "{ctx}");
    assert_eq!(f["seccomp"]["pidfd_getfd"]["status"], "available", "{ctx}");
    assert_eq!(f["seccomp"]["reports"]["status"], "available", "{ctx}");
}

#[test]
fn features_match_the_host() {
    for mode in common::modes() {
        check(mode);
    }
}

#[test]
fn text_report_names_every_item() {
    // The text is the command line's rendering (`src/cli/features.rs`).
    let out = Command::new(common::cordon_bin())
        .arg("features")
        .output()
        .expect("run cordon features");
    assert!(out.status.success(), "{out:?}");
    let t = String::from_utf8(out.stdout).expect("utf-8");
    for label in [
        "kernel",
        "landlock",
        "seccomp",
        "clone3",
        "pidfd",
        "user namespaces",
        "cgroups",
    ] {
        assert!(t.lines().any(|l| l.starts_with(label)), "no {label} line:\n{t}");
    }
    // One advice line follows each missing or limited top-level item.
    let lines: Vec<&str> = t.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let status = l.get(21..30).map(str::trim);
        if !l.starts_with(' ') && matches!(status, Some("missing") | Some("limited")) {
            assert!(
                lines.get(i + 1).is_some_and(|n| n.contains("what to do: ")),
                "no advice after {l:?}:\n{t}"
            );
        }
    }
}
