//! `cordon completions`, `cordon install-man` and the text of `--version`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap_complete::Shell;
use cordon::landlock::probe::{LANDLOCK_ABI_LINUX, LANDLOCK_MAX_KNOWN_ABI};
use cordon::seccomp::arch::{Arch, SYSCALL_TABLE_LINUX};

/// The man pages, as shipped in `man/`.
const MAN_PAGES: [(&str, &str, &str); 2] = [
    ("man1", "cordon.1", include_str!("../../man/cordon.1")),
    (
        "man5",
        "cordon-policy.5",
        include_str!("../../man/cordon-policy.5"),
    ),
];

/// The C library cordon is linked with (both builds are static): name
/// resolution and error texts come from it.
const LIBC: &str = if cfg!(target_env = "musl") { "musl" } else { "gnu" };

/// `--version`: the release, the git commit it was built from, and what of
/// the kernel this binary knows (target and C library, syscall tables,
/// Landlock ABI).
pub fn version() -> String {
    let tables = Arch::ALL
        .iter()
        .map(|a| format!("{} (up to nr {})", a.name(), a.known_max()))
        .collect::<Vec<_>>()
        .join(", ");
    let ll = LANDLOCK_MAX_KNOWN_ABI;
    let ll_linux = LANDLOCK_ABI_LINUX.get(ll as usize).copied().unwrap_or("?");
    format!(
        "{} (git {})\ntarget: {}-{}-{LIBC}\nsyscall tables: Linux {SYSCALL_TABLE_LINUX}: {tables}\nLandlock: ABI 1 to {ll} (Linux {ll_linux})",
        env!("CARGO_PKG_VERSION"),
        env!("CORDON_GIT_COMMIT"),
        std::env::consts::ARCH,
        std::env::consts::OS,
    )
}

/// The completion script for `shell`.
pub fn completion(cmd: &mut clap::Command, shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, "cordon", &mut out);
    out
}

/// Where a shell looks for completions below a prefix, and the file name.
fn completion_path(prefix: &Path, shell: Shell) -> Option<PathBuf> {
    let share = prefix.join("share");
    Some(match shell {
        Shell::Bash => share.join("bash-completion/completions/cordon"),
        Shell::Zsh => share.join("zsh/site-functions/_cordon"),
        Shell::Fish => share.join("fish/vendor_completions.d/cordon.fish"),
        _ => return None,
    })
}

/// Write `bytes` to `path` through a new file renamed into place: a file
/// (or a symbolic link) already there is replaced, never written through.
fn install_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{}: no parent directory", path.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.cordon-install.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

/// `cordon install-man --prefix DIR`: the man pages and the completion
/// scripts; prints each file written. Returns the exit code.
pub fn install_man(cmd: &mut clap::Command, prefix: &Path) -> i32 {
    let mut files: Vec<(PathBuf, Vec<u8>)> = MAN_PAGES
        .iter()
        .map(|(section, name, text)| {
            (
                prefix.join("share/man").join(section).join(name),
                text.as_bytes().to_vec(),
            )
        })
        .collect();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        if let Some(p) = completion_path(prefix, shell) {
            files.push((p, completion(cmd, shell)));
        }
    }
    for (path, bytes) in &files {
        if let Err(e) = install_file(path, bytes) {
            eprintln!("cordon: install-man: {e}");
            return cordon::outcome::EXIT_SETUP;
        }
        println!("installed {}", path.display());
    }
    0
}
