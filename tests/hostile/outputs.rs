//! Files cordon writes after the payload ran (`--status-json`, `learn -o`)
//! and files it reads before (policies): the payload may own the directory
//! the output goes to, and may have replaced the output path by a symlink,
//! a FIFO or a directory; an earlier sandbox may have planted one there.

use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{cordon, have_python, is_root, modes, set_mode, slow_factor, Mode, TempDir};
use crate::require;

/// Run `c`, killing it (by its pid) and failing the test if it takes longer
/// than `secs` (scaled by [`slow_factor`]: the VM lane emulates): a cordon
/// blocked on a FIFO never ends on its own.
pub(crate) fn output_within(mut c: Command, secs: u64) -> Output {
    let secs = secs * u64::from(slow_factor());
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn cordon");
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            child
                .stdout
                .take()
                .expect("stdout")
                .read_to_end(&mut stdout)
                .expect("read");
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_end(&mut stderr)
                .expect("read");
            return Output {
                status,
                stdout,
                stderr,
            };
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cordon did not finish within {secs} s (blocked on an output file?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A root-only file (mode 0600) with known content, outside every bind.
pub(crate) struct Secret {
    _dir: TempDir,
    pub(crate) path: PathBuf,
}

pub(crate) const SECRET: &str = "root-only content\n";

impl Secret {
    pub(crate) fn new() -> Secret {
        let dir = TempDir::new("secret");
        let path = dir.path().join("secret");
        std::fs::write(&path, SECRET).expect("write secret");
        set_mode(&path, 0o600);
        Secret { _dir: dir, path }
    }
    pub(crate) fn assert_unchanged(&self, what: &str) {
        let now = std::fs::read_to_string(&self.path).expect("read secret");
        assert_eq!(now, SECRET, "{what}: cordon wrote through to the root-only file");
    }
}

/// The payload: replace /out/NAME by KIND (pointing at TARGET), then exit 7.
pub(crate) const REPLACER: &str = r#"
import os, sys
name, kind, target = sys.argv[1], sys.argv[2], sys.argv[3]
p = '/out/' + name
if os.path.lexists(p):
    os.unlink(p)
if kind == 'symlink':
    os.symlink(target, p)
elif kind == 'fifo':
    os.mkfifo(p, 0o666)
elif kind == 'dir':
    os.mkdir(p)
sys.exit(7)
"#;

/// What the payload replaces the output with.
pub(crate) const KINDS: [&str; 4] = ["symlink", "fifo", "dir", "dangling"];

pub(crate) fn replaced_check(
    mode: Mode,
    kind: &str,
    o: &Output,
    out: &TempDir,
    name: &str,
    secret: &Secret,
    dangling: &Path,
) {
    let what = format!("{mode:?} {kind}");
    secret.assert_unchanged(&what);
    assert!(
        !dangling.exists(),
        "{what}: cordon created the dangling symlink's target"
    );
    assert_eq!(
        o.status.code(),
        Some(7),
        "{what}: the exit code must stay the payload's\n{}",
        stderr(o)
    );
    let e = stderr(o);
    assert!(
        e.contains("replaced") && e.contains(name),
        "{what}: no clear error about the replaced file: {e}"
    );
    // The replacement is still there, untouched.
    let meta = std::fs::symlink_metadata(out.path().join(name)).expect("replacement");
    match kind {
        "symlink" | "dangling" => assert!(meta.file_type().is_symlink(), "{what}"),
        "fifo" => assert!(meta.file_type().is_fifo(), "{what}"),
        _ => {
            assert!(meta.is_dir(), "{what}");
            assert_eq!(
                std::fs::read_dir(out.path().join(name)).expect("dir").count(),
                0,
                "{what}"
            );
        }
    }
}

pub(crate) fn target_for<'a>(kind: &str, secret: &'a Secret, dangling: &'a Path) -> &'a Path {
    if kind == "dangling" {
        dangling
    } else {
        &secret.path
    }
}

#[test]
fn status_json_replaced_during_the_run_is_not_followed() {
    require!("python3", have_python(), "python3 is not installed");
    let secret = Secret::new();
    let missing = TempDir::new("dangling");
    let dangling = missing.path().join("created-by-cordon");
    for mode in modes() {
        for kind in KINDS {
            let out = TempDir::new("out");
            let status = out.path().join("status.json");
            let mut c = cordon(mode);
            c.arg("run")
                .arg("--bind")
                .arg(format!("{}:/out", out.str()))
                .arg("--status-json")
                .arg(&status)
                .args(["--", "/usr/bin/python3", "-c", REPLACER, "status.json"])
                .arg(if kind == "dangling" { "symlink" } else { kind })
                .arg(target_for(kind, &secret, &dangling));
            let o = output_within(c, 30);
            replaced_check(mode, kind, &o, &out, "status.json", &secret, &dangling);
        }
    }
}

#[test]
fn learn_output_replaced_during_the_run_is_not_followed() {
    require!("python3", have_python(), "python3 is not installed");
    let secret = Secret::new();
    let missing = TempDir::new("dangling");
    let dangling = missing.path().join("created-by-cordon");
    for mode in modes() {
        for kind in KINDS {
            let out = TempDir::new("out");
            let learnt = out.path().join("learnt.json");
            let mut c = cordon(mode);
            c.arg("learn")
                .arg("--bind")
                .arg(format!("{}:/out", out.str()))
                .arg("-o")
                .arg(&learnt)
                .args(["--", "/usr/bin/python3", "-c", REPLACER, "learnt.json"])
                .arg(if kind == "dangling" { "symlink" } else { kind })
                .arg(target_for(kind, &secret, &dangling));
            let o = output_within(c, 60);
            replaced_check(mode, kind, &o, &out, "learnt.json", &secret, &dangling);
        }
    }
}

/// What is planted at the output path before cordon starts.
pub(crate) const PLANTED: [&str; 5] = ["symlink", "fifo", "dir", "dangling", "hardlink"];

pub(crate) fn plant(kind: &str, at: &Path, secret: &Secret, dangling: &Path) {
    match kind {
        "symlink" => std::os::unix::fs::symlink(&secret.path, at).expect("symlink"),
        "dangling" => std::os::unix::fs::symlink(dangling, at).expect("symlink"),
        "fifo" => {
            let c = std::ffi::CString::new(at.to_str().expect("utf-8")).expect("path");
            // SAFETY: c is a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0, "mkfifo");
        }
        "dir" => std::fs::create_dir(at).expect("mkdir"),
        _ => std::fs::hard_link(&secret.path, at).expect("hard link"),
    }
}

/// `args` are cordon's arguments up to the output path's flag; the payload
/// would create /out/marker.
fn planted_output_refused(sub: &str, flag: &str) {
    require!(
        "root",
        is_root(),
        "planting a hard link to a root-only file needs root"
    );
    let secret = Secret::new();
    let missing = TempDir::new("dangling");
    let dangling = missing.path().join("created-by-cordon");
    for mode in modes() {
        for kind in PLANTED {
            let what = format!("{sub} {mode:?} {kind}");
            let out = TempDir::new("out");
            let path = out.path().join("output.json");
            plant(kind, &path, &secret, &dangling);
            let mut c = cordon(mode);
            c.arg(sub)
                .arg("--bind")
                .arg(format!("{}:/out", out.str()))
                .arg(flag)
                .arg(&path);
            if sub == "run" {
                // The outcome still goes to --status-fd.
                c.args(["--status-fd", "1"]);
            }
            c.args(["--", "/bin/sh", "-c", "echo ran > /out/marker"]);
            let o = output_within(c, 30);
            assert_eq!(o.status.code(), Some(125), "{what}: {}", stderr(&o));
            if sub == "run" {
                let v: serde_json::Value =
                    serde_json::from_slice(&o.stdout).expect("the outcome on --status-fd");
                assert_eq!(v["status"], "setup_failed", "{what}: {v}");
            }
            assert!(
                !out.path().join("marker").exists(),
                "{what}: the payload ran although the output path was refused"
            );
            let e = stderr(&o);
            assert!(
                e.contains(path.to_str().expect("utf-8")),
                "{what}: the error does not name the path: {e}"
            );
            secret.assert_unchanged(&what);
            assert!(
                !dangling.exists(),
                "{what}: the dangling symlink's target was created"
            );
        }
        // A fresh path still works (and nothing was left behind).
        let out = TempDir::new("out");
        let path = out.path().join("output.json");
        let mut c = cordon(mode);
        c.arg(sub)
            .arg("--bind")
            .arg(format!("{}:/out", out.str()))
            .arg(flag)
            .arg(&path)
            .args(["--", "/bin/sh", "-c", "echo ran > /out/marker"]);
        let o = output_within(c, 30);
        assert_eq!(o.status.code(), Some(0), "{sub} {mode:?}: {}", stderr(&o));
        assert!(out.path().join("marker").exists(), "{sub} {mode:?}");
        let text = std::fs::read_to_string(&path).expect("output written");
        serde_json::from_str::<serde_json::Value>(&text).expect("output is JSON");
    }
}

#[test]
fn status_json_planted_before_the_run_is_refused_and_nothing_runs() {
    planted_output_refused("run", "--status-json");
}

#[test]
fn learn_output_planted_before_the_run_is_refused_and_nothing_runs() {
    planted_output_refused("learn", "-o");
}

#[test]
fn status_json_overwrites_an_existing_regular_file_completely() {
    for mode in modes() {
        let out = TempDir::new("out");
        let path = out.path().join("status.json");
        std::fs::write(&path, "x".repeat(100_000)).expect("write");
        set_mode(&path, 0o666);
        let mut c = cordon(mode);
        c.arg("run")
            .arg("--status-json")
            .arg(&path)
            .args(["--", "/bin/sh", "-c", "exit 3"]);
        let o = output_within(c, 30);
        assert_eq!(o.status.code(), Some(3), "{mode:?}: {}", stderr(&o));
        let text = std::fs::read_to_string(&path).expect("status");
        let v: serde_json::Value = serde_json::from_str(&text).expect("the outcome alone, as JSON");
        assert_eq!(v["exit_code"], 3, "{mode:?}: {text}");
    }
}

#[test]
fn a_huge_policy_file_is_refused_before_parsing() {
    let dir = TempDir::new("huge");
    let out = TempDir::new("out");
    // Valid JSON: the default policy followed by 17 MiB of white space.
    let default = include_str!("../../policies/default.json");
    let path = dir.path().join("huge.json");
    let mut text = String::from(default);
    text.push_str(&" ".repeat(17 << 20));
    std::fs::write(&path, text).expect("write policy");
    set_mode(&path, 0o644);
    for mode in modes() {
        let started = Instant::now();
        let mut c = cordon(mode);
        c.arg("run")
            .arg("--policy")
            .arg(&path)
            .arg("--bind")
            .arg(format!("{}:/out", out.str()))
            .args(["--", "/bin/sh", "-c", "echo ran > /out/marker"]);
        let o = output_within(c, 30);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{mode:?}: {e}");
        assert!(!out.path().join("marker").exists(), "{mode:?}: the payload ran");
        assert!(
            e.contains(path.to_str().expect("utf-8")) && e.contains("16 MiB"),
            "{mode:?}: the error must name the file and the bound: {e}"
        );
        assert!(
            started.elapsed() < crate::common::scaled(Duration::from_secs(5)),
            "{mode:?}: took {:?}",
            started.elapsed()
        );
    }
    // A policy just under the bound still loads.
    let small = dir.path().join("small.json");
    let mut text = String::from(default);
    text.push_str(&" ".repeat(1 << 20));
    std::fs::write(&small, text).expect("write policy");
    set_mode(&small, 0o644);
    for mode in modes() {
        let mut c = cordon(mode);
        c.arg("run")
            .arg("--policy")
            .arg(&small)
            .arg("--bind")
            .arg(format!("{}:/out", out.str()))
            .args(["--", "/bin/sh", "-c", "echo ran > /out/marker"]);
        let o = output_within(c, 30);
        assert_eq!(o.status.code(), Some(0), "{mode:?}: {}", stderr(&o));
        assert!(out.path().join("marker").exists(), "{mode:?}");
        std::fs::remove_file(out.path().join("marker")).expect("rm marker");
    }
}

/// A directory symlink planted by an earlier sandbox (`out/sub -> the
/// secret's directory`) must not redirect `--status-json out/sub/secret`
/// onto the root-only file: the directory part is never followed.
#[test]
fn status_json_through_a_planted_directory_symlink_is_refused() {
    require!("root", is_root(), "the root-only file needs root");
    let secret = Secret::new();
    for mode in modes() {
        let out = TempDir::new("out");
        let sub = out.path().join("sub");
        std::os::unix::fs::symlink(secret.path.parent().expect("dir"), &sub).expect("symlink");
        let path = sub.join("secret");
        let mut c = cordon(mode);
        c.arg("run")
            .arg("--status-json")
            .arg(&path)
            .args(["--", "/bin/sh", "-c", "exit 0"]);
        let o = output_within(c, 30);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{mode:?}: {e}");
        assert!(e.contains("symbolic link"), "{mode:?}: {e}");
        secret.assert_unchanged(&format!("{mode:?} directory symlink"));
    }
}
