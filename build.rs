//! Records, for `cordon --version`, the git commit the binary was built
//! from ("unknown" outside a git checkout or without git).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CORDON_GIT_COMMIT={commit}");
    // Rebuilt when HEAD moves (a worktree's .git is a file naming the real
    // directory; both are watched when they exist).
    for p in [".git/HEAD", ".git"] {
        if std::path::Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Ok(o) = Command::new("git").args(["rev-parse", "--git-dir"]).output() {
        if let Ok(dir) = String::from_utf8(o.stdout) {
            let head = format!("{}/HEAD", dir.trim());
            if std::path::Path::new(&head).exists() {
                println!("cargo:rerun-if-changed={head}");
            }
            let refs = format!("{}/refs", dir.trim());
            if std::path::Path::new(&refs).exists() {
                println!("cargo:rerun-if-changed={refs}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
