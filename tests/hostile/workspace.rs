//! Workspaces, attacked: what the payload leaves in the overlay's upper
//! directory is hostile, and applying it must never write outside the host
//! directory, follow a link, make a special file or keep a set-id bit; and
//! a symlink swapped into the host tree while cordon applies must not
//! redirect a single write.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::common::{self, modes, sh, TempDir, ROOTLESS_ID};

fn project(tmp: &TempDir) -> PathBuf {
    let p = tmp.path().join("proj");
    std::fs::create_dir_all(p.join("sub")).unwrap();
    std::fs::write(p.join("a.txt"), "hello\n").unwrap();
    if common::is_root() {
        let st = std::process::Command::new("chown")
            .args(["-R", &format!("{ROOTLESS_ID}:{ROOTLESS_ID}")])
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success());
    }
    p
}

fn refused(w: &serde_json::Value) -> BTreeSet<String> {
    w["refused"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["path"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn links_out_special_files_set_id_bits_and_hard_links_are_refused_or_stripped() {
    for mode in modes() {
        let tmp = TempDir::new("ws-hostile");
        let proj = project(&tmp);
        let arg = format!("{}:/work", proj.display());
        let script = "cd /work && ln -s /etc/passwd abs && ln -s ../../../../etc up && ln -s sub/../a.txt ok \
            && mkfifo fifo && printf 'x\\n' > suid && chmod 6755 suid && printf 'y\\n' > sticky && chmod 1644 sticky \
            && ln a.txt hard && mkdir sub/deep && ln -s ../../.. sub/deep/esc && echo PLANTED";
        let mut args = common::workspace_mode_args(mode, &tmp);
        args.extend(["--workspace", &arg, "--apply", "always"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sh(mode, &args, script);
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert!(r.stdout().contains("PLANTED"), "{d}");
        let w = r.status.as_ref().expect("outcome")["workspaces"][0].clone();
        let got = refused(&w);
        for p in ["abs", "up", "fifo", "hard", "a.txt", "sub/deep/esc"] {
            assert!(got.contains(p), "{p} not refused: {w}\n{d}");
        }
        let reason = |p: &str| {
            w["refused"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["path"] == p)
                .unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert!(reason("abs").contains("outside the workspace"), "{w}");
        assert!(reason("fifo").contains("FIFO"), "{w}");
        assert!(reason("hard").contains("hard link"), "{w}");
        assert_eq!(w["applied"], false, "partial: {w}");
        let applied: BTreeSet<String> = w["applied_paths"]
            .as_array()
            .expect("a partial apply lists what it applied")
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = ["ok", "suid", "sticky", "sub/deep"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(applied, want, "{w}");
        // The set-id and sticky files are applied without those bits, and
        // listed.
        assert_eq!(w["stripped"], serde_json::json!(["sticky", "suid"]), "{w}");
        // On the host: nothing refused exists, a.txt is untouched, the set-id
        // and sticky bits are gone.
        for p in ["abs", "up", "fifo", "hard", "sub/deep/esc"] {
            assert!(
                std::fs::symlink_metadata(proj.join(p)).is_err(),
                "{p} exists on the host"
            );
        }
        assert_eq!(std::fs::read_to_string(proj.join("a.txt")).unwrap(), "hello\n");
        assert_eq!(
            std::fs::metadata(proj.join("suid")).unwrap().mode() & 0o7777,
            0o755
        );
        assert_eq!(
            std::fs::metadata(proj.join("sticky")).unwrap().mode() & 0o7777,
            0o644
        );
        assert_eq!(
            std::fs::read_link(proj.join("ok")).unwrap(),
            Path::new("sub/../a.txt")
        );
    }
}

/// Replace `sub` by a symlink to `decoy` and back, as fast as possible,
/// until `stop`.
fn swap_loop(proj: &Path, decoy: &Path, stop: &AtomicBool) -> u64 {
    let sub = proj.join("sub");
    let real = proj.join("sub.real");
    let link = proj.join("sub.link");
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let _ = std::fs::remove_file(&link);
        if std::os::unix::fs::symlink(decoy, &link).is_err() {
            continue;
        }
        if std::fs::rename(&sub, &real).is_ok() {
            // `sub` is now the symlink to the decoy...
            if std::fs::rename(&link, &sub).is_ok() {
                std::thread::yield_now();
                let _ = std::fs::remove_file(&sub);
            }
            // ...and then the real directory again, for a while (so that
            // the change set is mostly read against it, and the apply runs
            // into the link).
            let _ = std::fs::rename(&real, &sub);
            n += 1;
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }
    n
}

#[test]
fn a_symlink_swapped_into_the_host_tree_during_apply_redirects_nothing() {
    for mode in modes() {
        let tmp = TempDir::new("ws-race");
        let proj = project(&tmp);
        let decoy = tmp.path().join("decoy");
        std::fs::create_dir(&decoy).unwrap();
        std::fs::set_permissions(&decoy, std::fs::Permissions::from_mode(0o777)).unwrap();
        let arg = format!("{}:/work", proj.display());
        let status = tmp.path().join("status.json");
        // 2000 new files in the host's existing sub/; "ready" once written:
        // the apply starts when the payload ends.
        let mut child = common::cordon(mode)
            .arg("run")
            .args(common::workspace_mode_args(mode, &tmp))
            .args(["--workspace", &arg, "--apply", "always", "--status-json"])
            .arg(&status)
            .args([
                "--",
                "/bin/sh",
                "-c",
                "i=0; while [ $i -lt 2000 ]; do echo $i > /work/sub/f$i; i=$((i+1)); done; echo ready",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "{mode:?}");
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (p, dcy, s) = (proj.clone(), decoy.clone(), stop.clone());
            std::thread::spawn(move || swap_loop(&p, &dcy, &s))
        };
        let out = child.wait_with_output().unwrap();
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        let _ = std::fs::rename(proj.join("sub.real"), proj.join("sub"));
        let d = format!("{mode:?} swaps={swaps}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{d}");
        assert!(swaps > 0, "the swapper never ran\n{d}");
        let left: Vec<_> = std::fs::read_dir(&decoy)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "written into the decoy through the symlink: {left:?}\n{d}"
        );
        let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&status).unwrap()).unwrap();
        let w = &st["workspaces"][0];
        let applied: Vec<String> = w["applied_paths"]
            .as_array()
            .map(|a| a.iter().map(|p| p.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        eprintln!(
            "{mode:?}: {swaps} swaps, {} applied, {} refused",
            applied.len(),
            w["refused"].as_array().map_or(0, |a| a.len())
        );
        if w["applied"] == true {
            assert_eq!(w["files_changed"], 2000, "{w}");
            assert_eq!(std::fs::read_dir(proj.join("sub")).unwrap().count(), 2000, "{d}");
        } else {
            // Partial: every refusal is the swapped link (or the moment
            // `sub` was away), and what was applied is in the real sub/.
            for r in w["refused"].as_array().unwrap() {
                let why = r["reason"].as_str().unwrap();
                assert!(
                    why.contains("symbolic link")
                        || why.contains("No such file")
                        || why.contains("changed during the run")
                        || why.contains("its directory was not applied"),
                    "{r}"
                );
            }
            // When the change set was read while `sub` was away, `sub` is
            // in it as a new directory: the apply may make a `sub` of its
            // own, which the swapper's next rename replaces or is refused
            // by (the host tree changing under the apply, the same as any
            // concurrent writer). Files applied into such a directory are
            // not in the real sub/; nothing followed a link (the decoy is
            // empty, above). Otherwise what was applied is in the real sub/.
            let sub_was_new = applied.iter().any(|p| p == "sub")
                || w["refused"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["path"] == "sub");
            if !sub_was_new {
                for p in &applied {
                    assert!(
                        proj.join(p).is_file(),
                        "{p} applied but not in the host's sub/\n{d}"
                    );
                }
            }
        }
    }
}

#[test]
fn host_files_hard_linked_outside_the_workspace_are_never_written_through() {
    for mode in modes() {
        let tmp = TempDir::new("ws-hostlinks");
        let proj = project(&tmp);
        // Two files outside the workspace, each with a second name inside
        // it (planted by whoever could write the host directory).
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        for n in ["m", "c"] {
            let f = outside.join(n);
            std::fs::write(&f, "outside\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::hard_link(&f, proj.join(format!("link-{n}"))).unwrap();
            if common::is_root() {
                std::os::unix::fs::chown(&f, Some(ROOTLESS_ID), Some(ROOTLESS_ID)).unwrap();
            }
        }
        let arg = format!("{}:/work", proj.display());
        let mut args = common::workspace_mode_args(mode, &tmp);
        args.extend(["--workspace", &arg, "--apply", "always"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sh(
            mode,
            &args,
            "cd /work && chmod 777 link-m && echo changed > link-c && echo EDITED",
        );
        let d = format!("{mode:?}\n{}\n{}", r.stdout(), r.stderr());
        assert!(r.stdout().contains("EDITED"), "{d}");
        let w = r.status.as_ref().expect("outcome")["workspaces"][0].clone();
        // The mode change is refused (the host file has two links); the new
        // content replaces the name, not the file behind it.
        assert_eq!(refused(&w), BTreeSet::from(["link-m".to_string()]), "{w}");
        for n in ["m", "c"] {
            let f = outside.join(n);
            assert_eq!(std::fs::read_to_string(&f).unwrap(), "outside\n", "{n}\n{d}");
            assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o7777, 0o644, "{n}\n{d}");
        }
        let c = std::fs::metadata(proj.join("link-c")).unwrap();
        assert_eq!(c.nlink(), 1, "{d}");
        assert_eq!(std::fs::read_to_string(proj.join("link-c")).unwrap(), "changed\n");
    }
}
