//! Workspaces: a host directory the payload sees writable through an
//! overlay whose upper layer is a size-limited tmpfs of the sandbox. Writes
//! past the quota get ENOSPC and never reach the host; the change set is
//! exported (manifest checked) and applied only as the policy says. Every
//! test runs as root and rootless.
mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{modes, sh, Mode, TempDir, ROOTLESS_ID};

/// [`sh`] with the flags [`common::workspace_mode_args`] gives `mode`.
fn ws_sh(mode: Mode, tmp: &TempDir, args: &[&str], script: &str) -> common::Run {
    let mut all = common::workspace_mode_args(mode, tmp);
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    sh(mode, &all, script)
}

/// The host directory of a workspace: owned by [`ROOTLESS_ID`] (the
/// rootless caller; started by root, an ordinary user whose files the
/// payload may change through the idmapped lower layer), holding
/// `a.txt`, `gone.txt` and `sub/b.txt`.
fn project(tmp: &TempDir) -> std::path::PathBuf {
    let p = tmp.path().join("proj");
    std::fs::create_dir_all(p.join("sub")).unwrap();
    std::fs::write(p.join("a.txt"), "hello\n").unwrap();
    std::fs::write(p.join("gone.txt"), "delete me\n").unwrap();
    std::fs::write(p.join("sub/b.txt"), "keep\n").unwrap();
    for f in ["a.txt", "gone.txt", "sub/b.txt"] {
        std::fs::set_permissions(p.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    chown_tree(&p);
    p
}

fn chown_tree(p: &Path) {
    if !common::is_root() {
        return;
    }
    let st = std::process::Command::new("chown")
        .args(["-R", &format!("{ROOTLESS_ID}:{ROOTLESS_ID}")])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Every path below `p` with its type, mode, size and content (files).
fn tree(p: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = std::fs::read_dir(p).unwrap().flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let path = e.path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let v = if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if m.is_dir() {
                format!("dir {:o}", m.mode() & 0o7777)
            } else {
                format!(
                    "file {:o} {}",
                    m.mode() & 0o7777,
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap())
                )
            };
            out.insert(rel, v);
            if m.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    walk(p, p, &mut out);
    out
}

fn free_bytes(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: an all-zero statvfs is a valid out-buffer; `c` is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail * s.f_frsize
}

fn workspace_outcome(r: &common::Run) -> serde_json::Value {
    let st = r
        .status
        .as_ref()
        .unwrap_or_else(|| panic!("no outcome\n{}", r.stderr()));
    st["workspaces"][0].clone()
}

/// The payload's edits: a changed file, a new file, a deleted file, a new
/// directory with a file, a chmod, a symlink inside.
const EDITS: &str = "cd /work && printf 'changed\\n' > a.txt && printf 'new\\n' > n.txt && rm gone.txt \
    && mkdir nd && printf 'x\\n' > nd/f && chmod 600 sub/b.txt && ln -s a.txt lnk && echo EDITED";

#[test]
fn writes_past_the_quota_get_enospc_and_never_reach_the_host() {
    for mode in modes() {
        let tmp = TempDir::new("ws-quota");
        let proj = project(&tmp);
        let before = tree(&proj);
        let free = free_bytes(&proj);
        let arg = format!("{}:/work:64M", proj.display());
        let r = ws_sh(
            mode,
            &tmp,
            &["--workspace", &arg],
            "head -c 200M /dev/zero > /work/big; echo rc=$?; stat -c size=%s /work/big",
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert_eq!(r.code(), 0, "cordon exits normally\n{d}");
        assert!(r.stderr().contains("No space left on device"), "{d}");
        assert!(r.stdout().contains("rc=1"), "{d}");
        let size: u64 = r
            .stdout()
            .lines()
            .find_map(|l| l.strip_prefix("size="))
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no size\n{d}"));
        assert!(size > 60 << 20 && size <= 64 << 20, "{size}\n{d}");
        let w = workspace_outcome(&r);
        assert!(w["upper_bytes"].as_u64().unwrap() > 60 << 20, "{w}");
        assert_eq!(w["files_changed"], 1, "{w}");
        // The host directory is as it was, and the host disk lost nothing
        // (a margin for other writers on this machine, below the 60M+ the
        // payload wrote).
        assert_eq!(tree(&proj), before, "{d}");
        let used = free.saturating_sub(free_bytes(&proj));
        assert!(used < 48 << 20, "host disk lost {used} bytes\n{d}");
    }
}

#[test]
fn during_the_run_the_host_directory_is_not_written() {
    for mode in modes() {
        let tmp = TempDir::new("ws-ro");
        let proj = project(&tmp);
        let before = tree(&proj);
        let arg = format!("{}:/work", proj.display());
        let script =
            format!("{EDITS}; cat /proc/self/mountinfo | grep -c cordon-workspace; ls -a / | grep -c cordon");
        let r = ws_sh(mode, &tmp, &["--workspace", &arg], &script);
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert!(r.stdout().contains("EDITED"), "{d}");
        // The staging mounts are gone: only the overlay reaches the upper dir.
        assert!(r.stdout().lines().filter(|l| l.trim() == "0").count() == 2, "{d}");
        assert_eq!(tree(&proj), before, "apply never: the host is unchanged\n{d}");
        let w = workspace_outcome(&r);
        assert_eq!(w["applied"], false, "{w}");
        assert_eq!(w["files_changed"], 7, "{w}");
        assert_eq!(w["to"], "/work", "{w}");
    }
}

fn manifest_kinds(m: &serde_json::Value) -> BTreeMap<String, String> {
    m["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn changes_are_exported_and_applied_on_success() {
    for mode in modes() {
        let tmp = TempDir::new("ws-apply");
        let proj = project(&tmp);
        let export = tmp.path().join("export");
        let arg = format!("{}:/work", proj.display());
        let r = ws_sh(
            mode,
            &tmp,
            &[
                "--workspace",
                &arg,
                "--apply",
                "on_success",
                "--export-changes",
                export.to_str().unwrap(),
            ],
            EDITS,
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert_eq!(r.code(), 0, "{d}");
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(export.join("manifest.json")).unwrap()).unwrap();
        let kinds = manifest_kinds(&m);
        let want: BTreeMap<String, String> = [
            ("a.txt", "modified"),
            ("gone.txt", "deleted"),
            ("lnk", "symlink"),
            ("n.txt", "created"),
            ("nd", "dir"),
            ("nd/f", "created"),
            ("sub/b.txt", "mode"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(kinds, want, "{m}");
        let a = m["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == "a.txt")
            .unwrap();
        // sha256("changed\n")
        assert_eq!(
            a["sha256"], "7f8b1dfc466b6249f06cbe55c9174df2578e7754da793fded244ef5cba2a38f1",
            "{m}"
        );
        assert_eq!(a["size"], 8);
        assert_eq!(
            std::fs::read_to_string(export.join(a["file"].as_str().unwrap())).unwrap(),
            "changed\n"
        );
        let b = m["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == "sub/b.txt")
            .unwrap();
        assert_eq!(b["mode"], "0600", "{m}");
        // Applied: the host has exactly the payload's tree.
        let t = tree(&proj);
        assert_eq!(t["a.txt"], "file 644 changed\n", "{t:?}");
        assert_eq!(t["n.txt"], "file 644 new\n", "{t:?}");
        assert_eq!(t["nd"], "dir 755", "{t:?}");
        assert_eq!(t["nd/f"], "file 644 x\n", "{t:?}");
        assert_eq!(t["sub/b.txt"], "file 600 keep\n", "{t:?}");
        assert_eq!(t["lnk"], "link a.txt", "{t:?}");
        assert!(!t.contains_key("gone.txt"), "{t:?}");
        assert_eq!(t.len(), 7, "{t:?}");
        let w = workspace_outcome(&r);
        assert_eq!(w["applied"], true, "{w}");
        assert_eq!(w["files_changed"], 7, "{w}");
        assert_eq!(w["bytes"], 8 + 4 + 2, "{w}");
        assert!(w.get("refused").is_none(), "{w}");
        // Applied files belong to the host directory's owner (root-started:
        // not to the sandbox's host id).
        let owner = std::fs::metadata(&proj).unwrap().uid();
        for f in ["a.txt", "n.txt", "nd", "nd/f"] {
            assert_eq!(std::fs::metadata(proj.join(f)).unwrap().uid(), owner, "{f}");
        }
        if mode == Mode::Root {
            assert_eq!(owner, ROOTLESS_ID);
        }
    }
}

#[test]
fn on_success_and_a_failing_payload_change_nothing() {
    for mode in modes() {
        let tmp = TempDir::new("ws-fail");
        let proj = project(&tmp);
        let before = tree(&proj);
        let export = tmp.path().join("export");
        let arg = format!("{}:/work", proj.display());
        let r = ws_sh(
            mode,
            &tmp,
            &[
                "--workspace",
                &arg,
                "--apply",
                "on_success",
                "--export-changes",
                export.to_str().unwrap(),
            ],
            &format!("{EDITS}; exit 1"),
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert_eq!(r.code(), 1, "{d}");
        assert_eq!(tree(&proj), before, "{d}");
        let w = workspace_outcome(&r);
        assert_eq!(w["applied"], false, "{w}");
        assert!(w.get("applied_paths").is_none(), "{w}");
        // Still exported for review.
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(export.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest_kinds(&m).len(), 7, "{m}");
    }
}

#[test]
fn a_non_empty_export_directory_or_a_missing_workspace_refuses_the_run() {
    for mode in modes() {
        let tmp = TempDir::new("ws-refuse");
        let proj = project(&tmp);
        let export = tmp.path().join("export");
        std::fs::create_dir(&export).unwrap();
        std::fs::write(export.join("old"), "x").unwrap();
        chown_tree(&export);
        let arg = format!("{}:/work", proj.display());
        let r = ws_sh(
            mode,
            &tmp,
            &["--workspace", &arg, "--export-changes", export.to_str().unwrap()],
            "echo RAN",
        );
        assert_eq!(r.code(), 125, "{mode:?} {}", r.stderr());
        assert!(!r.stdout().contains("RAN"));
        assert!(r.stderr().contains("not empty"), "{}", r.stderr());
        let missing = format!("{}/nope:/work", tmp.path().display());
        let r = ws_sh(mode, &tmp, &["--workspace", &missing], "echo RAN");
        assert_eq!(r.code(), 125, "{mode:?} {}", r.stderr());
        assert!(r.stderr().contains("workspaces[0].path"), "{}", r.stderr());
    }
}

/// Whether the kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = r.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

#[test]
fn renames_and_a_directory_made_again_apply_as_deletions_and_creations() {
    for mode in modes() {
        let tmp = TempDir::new("ws-rename");
        let proj = project(&tmp);
        std::fs::create_dir(proj.join("old")).unwrap();
        std::fs::write(proj.join("old/x"), "x\n").unwrap();
        std::fs::write(proj.join("old/y"), "y\n").unwrap();
        chown_tree(&proj);
        let arg = format!("{}:/work", proj.display());
        // A file renamed and, with tmpfs xattrs (6.6; before, removing a
        // host directory fails with EIO inside), a host directory renamed
        // (overlayfs refuses with EXDEV, mv copies and removes) and a
        // directory removed and made again (opaque in the upper layer).
        let again = kernel_at_least(6, 6);
        let script = format!(
            "cd /work && mv a.txt moved.txt && {} echo DONE",
            if again {
                "mv sub sub2 && rm -r old && mkdir old && echo z > old/z &&"
            } else {
                ""
            }
        );
        let r = ws_sh(
            mode,
            &tmp,
            &["--workspace", &arg, "--apply", "on_success"],
            &script,
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert!(r.stdout().contains("DONE"), "{d}");
        let w = workspace_outcome(&r);
        assert_eq!(w["applied"], true, "{w}");
        let t = tree(&proj);
        assert!(!t.contains_key("a.txt"), "{t:?}");
        assert_eq!(t["moved.txt"], "file 644 hello\n", "{t:?}");
        if again {
            assert!(!t.contains_key("sub"), "{t:?}");
            assert_eq!(t["sub2/b.txt"], "file 644 keep\n", "{t:?}");
            let old: Vec<_> = t.keys().filter(|k| k.starts_with("old/")).collect();
            assert_eq!(old, ["old/z"], "the old contents are gone: {t:?}");
        } else {
            assert!(t.contains_key("old/x") && t.contains_key("old/y"), "{t:?}");
            assert_eq!(t["sub/b.txt"], "file 644 keep\n", "{t:?}");
        }
    }
}

#[test]
fn on_success_and_a_timed_out_payload_change_nothing() {
    for mode in modes() {
        let tmp = TempDir::new("ws-timeout");
        let proj = project(&tmp);
        let before = tree(&proj);
        let arg = format!("{}:/work", proj.display());
        let limit = common::time_limit(1);
        let r = ws_sh(
            mode,
            &tmp,
            &[
                "--workspace",
                &arg,
                "--apply",
                "on_success",
                "--time-limit",
                &limit,
            ],
            &format!("{EDITS}; exec sleep 60"),
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert_eq!(r.outcome_status(), "timed_out", "{d}");
        assert_eq!(tree(&proj), before, "{d}");
        let w = workspace_outcome(&r);
        assert_eq!(
            (w["applied"].as_bool(), w["files_changed"].as_u64()),
            (Some(false), Some(7)),
            "{w}"
        );
    }
}
