//! Every policy shipped with cordon (policies/*.json, and the benchmark's
//! bwrap-equivalent policy) loads, checks, and runs a real program.
mod common;
use common::*;

fn shipped() -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut v: Vec<String> = std::fs::read_dir(format!("{root}/policies"))
        .expect("policies/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.push(format!("{root}/bench/bwrap-equivalent.json"));
    v.sort();
    v
}

#[test]
fn every_shipped_policy_checks_and_runs_a_shell() {
    let files = shipped();
    assert!(
        files.iter().any(|f| f.ends_with("policies/default.json")),
        "{files:?}"
    );
    for mode in modes() {
        for f in &files {
            let check = cordon(mode)
                .args(["check", "--policy", f])
                .output()
                .expect("cordon check");
            assert!(
                check.status.success(),
                "{mode:?} check {f}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            // The exec policy is for cordon exec (no pid namespace, no /proc).
            let r = if f.ends_with("policies/exec.json") {
                let out = cordon(mode)
                    .args(["exec", "--policy", f, "--", "/bin/sh", "-c", "echo ran; exit 7"])
                    .output()
                    .expect("cordon exec");
                Run {
                    output: out,
                    status: None,
                }
            } else {
                run(mode, &["--policy", f], &["/bin/sh", "-c", "echo ran; exit 7"])
            };
            assert_eq!(r.code(), 7, "{mode:?} {f}: {}", r.stderr());
            assert_eq!(r.stdout(), "ran\n", "{mode:?} {f}");
        }
    }
}

#[test]
fn check_without_a_policy_prints_the_built_in_default() {
    let out = std::process::Command::new(cordon_bin())
        .arg("check")
        .output()
        .unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check prints JSON");
    assert_eq!(printed["hostname"], "cordon");
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/policies/default.json", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        printed["mounts"].as_array().map(Vec::len),
        file["mounts"].as_array().map(Vec::len)
    );
}
