//! Records, for `cordon --version`, the git commit the binary was built
//! from ("unknown" outside a git checkout or without git).

use std::path::Path;
use std::process::Command;

/// `git ARGS` in the package directory, its trimmed output if it succeeded.
fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok()?;
    if !o.status.success() {
        return None;
    }
    let s = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short", "HEAD"])
        .filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CORDON_GIT_COMMIT={commit}");
    // Built again when HEAD moves: HEAD itself (a checkout of another
    // branch), the branch's ref and packed-refs (a commit). In a worktree
    // HEAD is in its own git directory and the refs in the common one.
    let mut watch = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(format!("{dir}/HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        watch.push(format!("{common}/packed-refs"));
        if let Some(r) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
            watch.push(format!("{common}/{r}"));
        }
    }
    for p in watch {
        if Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
