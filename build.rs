//! Records, for `cordon --version`, the git commit the binary was built
//! from ("unknown" outside a git checkout or without git), and packs the
//! static-pie binary's relocations where the C library can apply them.

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

/// The build host's glibc version (`getconf GNU_LIBC_VERSION`: "glibc 2.36").
fn host_glibc() -> Option<(u32, u32)> {
    let o = Command::new("getconf").arg("GNU_LIBC_VERSION").output().ok()?;
    let s = String::from_utf8(o.stdout).ok()?;
    let (major, minor) = s.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// DT_RELR for the static glibc build: a static-pie binary relocates
/// itself before `main`, and cordon's 5,500 RELA entries (134 KB, read and
/// applied on every launch) pack into a bitmap of about 2 KB; measured,
/// 2-3 % of a cold `cordon run` (bench/launch.sh, two runs). glibc applies
/// RELR in a static-pie only from 2.36 on, and a binary whose relocations
/// are left undone crashes at once: so only for a native static glibc
/// build on a host with glibc 2.36 or later. (GNU ld before 2.38 ignores
/// the flag with a warning.)
fn pack_relative_relocs() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let static_glibc = var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static");
    if static_glibc && var("TARGET") == var("HOST") && host_glibc().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    pack_relative_relocs();
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
