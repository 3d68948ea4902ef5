//! Records, for `cordon --version`, the git commit the binary was built
//! from ("unknown" outside a git checkout or without git), packs the
//! static-pie binary's relocations where the C library can apply them, and
//! lays out the code a launch runs together where the linker can.

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

/// The functions a launch runs, in the order it first runs them
/// (bench/link-order.txt, made by bench/link-order.sh), placed first and
/// together in the binary's text. The kernel maps a file's pages 64 KiB
/// around each page fault, and the code a launch runs was spread over most
/// of the 3.3 MB text: in `cordon run -- /bin/true` the supervisor took
/// 41-47 faults on it, which mapped 2.9 MB (its peak resident memory:
/// 3.6-3.8 MB, of which 0.36 MB is its own data). Laid out in that order:
/// 14 faults, 0.9 MB mapped, 1.7 MB peak.
///
/// Only lld takes `--symbol-ordering-file` (the default linker of this
/// target from Rust 1.90; GNU ld refuses the flag), so a test link with it
/// decides; a name the file has and the build does not (another compiler
/// or dependency version mangles names differently) is skipped quietly,
/// and the binary is only laid out as before.
fn link_order() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let file = Path::new(&dir).join("bench/link-order.txt");
    println!("cargo:rerun-if-changed={}", file.display());
    // CORDON_NO_LINK_ORDER=1: the layout without it, to measure against.
    println!("cargo:rerun-if-env-changed=CORDON_NO_LINK_ORDER");
    if !file.exists() || std::env::var_os("CORDON_NO_LINK_ORDER").is_some() {
        return;
    }
    // -Xlinker passes each argument as it is (-Wl, would split a path at
    // its commas).
    let args = [
        "-Xlinker".to_string(),
        format!("--symbol-ordering-file={}", file.display()),
        "-Xlinker".to_string(),
        "--no-warn-symbol-ordering".to_string(),
    ];
    if links_with(&args) {
        for a in args {
            println!("cargo:rustc-link-arg-bins={a}");
        }
    } else {
        println!(
            "cargo:warning=the linker does not take --symbol-ordering-file (lld does): cordon's code is laid out as the compiler left it, and the supervisor keeps more of the binary resident (see bench/README.md, Memory)"
        );
    }
}

/// Whether an empty program for the target links with these linker
/// arguments added, with the flags cargo gives rustc for the target.
fn links_with(link_args: &[String]) -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return false;
    };
    let out = Path::new(&out);
    let src = out.join("link_probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.arg("--target")
        .arg(var("TARGET"))
        // The flags may deny lints the empty program has (missing docs).
        .arg("--cap-lints=allow")
        .arg("-o")
        .arg(out.join("link_probe"))
        .arg(&src);
    // The configured linker first and the flags after it, as cargo passes
    // them (a `-C linker` in the flags wins). Flags given to cordon's own
    // crate alone (`cargo rustc -- ...`) are not seen here.
    if let Some(linker) = std::env::var_os("RUSTC_LINKER") {
        cmd.arg("-C").arg(format!("linker={}", linker.to_string_lossy()));
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    cmd.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    for a in link_args {
        cmd.arg("-C").arg(format!("link-arg={a}"));
    }
    let linked = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // The probe's program (5 MB, static) is needed no more.
    let _ = std::fs::remove_file(out.join("link_probe"));
    let _ = std::fs::remove_file(&src);
    linked
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    pack_relative_relocs();
    link_order();
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
