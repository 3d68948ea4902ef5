//! The audit log (`--audit-log`, the policy's `audit.path`) where the
//! payload can write: planted before the run (a symbolic link to a
//! root-only file, a FIFO, a directory, a hard link) it is refused and
//! nothing runs; replaced during the run it is not followed, and the exit
//! code stays the payload's.

use crate::common::{cordon, have_python, is_root, modes, TempDir};
use crate::outputs::{
    output_within, plant, replaced_check, stderr, target_for, Secret, KINDS, PLANTED, REPLACER,
};
use crate::require;

#[test]
fn audit_log_planted_before_the_run_is_refused_and_nothing_runs() {
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
            for via_policy in [false, true] {
                let what = format!("{mode:?} {kind} policy={via_policy}");
                let out = TempDir::new("out");
                let path = out.path().join("audit.jsonl");
                plant(kind, &path, &secret, &dangling);
                let mut c = cordon(mode);
                c.arg("run").arg("--bind").arg(format!("{}:/out", out.str()));
                let pdir = TempDir::new("policy");
                if via_policy {
                    let text = std::fs::read_to_string(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/policies/default.json"
                    ))
                    .expect("default policy");
                    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
                    v["audit"] = serde_json::json!({ "path": path });
                    let p = pdir.path().join("p.json");
                    std::fs::write(&p, v.to_string()).expect("write policy");
                    c.arg("--policy").arg(&p);
                } else {
                    c.arg("--audit-log").arg(&path);
                }
                c.args([
                    "--status-fd",
                    "1",
                    "--",
                    "/bin/sh",
                    "-c",
                    "echo ran > /out/marker",
                ]);
                let o = output_within(c, 30);
                assert_eq!(o.status.code(), Some(125), "{what}: {}", stderr(&o));
                assert!(
                    !out.path().join("marker").exists(),
                    "{what}: the payload ran although the audit log was refused"
                );
                let e = stderr(&o);
                assert!(
                    e.contains(path.to_str().expect("utf-8")),
                    "{what}: the error does not name the path: {e}"
                );
                if via_policy {
                    assert!(
                        e.contains("audit.path"),
                        "{what}: the error does not name the field: {e}"
                    );
                }
                secret.assert_unchanged(&what);
                assert!(
                    !dangling.exists(),
                    "{what}: the dangling symlink's target was created"
                );
            }
        }
    }
}

#[test]
fn audit_log_replaced_during_the_run_is_not_followed() {
    require!("python3", have_python(), "python3 is not installed");
    let secret = Secret::new();
    let missing = TempDir::new("dangling");
    let dangling = missing.path().join("created-by-cordon");
    for mode in modes() {
        for kind in KINDS {
            let out = TempDir::new("out");
            let log = out.path().join("audit.jsonl");
            let mut c = cordon(mode);
            c.arg("run")
                .arg("--bind")
                .arg(format!("{}:/out", out.str()))
                .arg("--audit-log")
                .arg(&log)
                .args(["--", "/usr/bin/python3", "-c", REPLACER, "audit.jsonl"])
                .arg(if kind == "dangling" { "symlink" } else { kind })
                .arg(target_for(kind, &secret, &dangling));
            let o = output_within(c, 30);
            replaced_check(mode, kind, &o, &out, "audit.jsonl", &secret, &dangling);
        }
    }
}
