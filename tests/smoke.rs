mod common;
use common::*;

#[test]
fn default_policy_runs_a_shell_in_every_mode() {
    for mode in modes() {
        let r = sh(mode, &[], "echo hello; id -u");
        assert_eq!(r.ok(), "hello\n1000\n", "{mode:?}");
        assert_eq!(r.outcome_status(), "exited");
    }
}

/// The static glibc binary relocates itself before `main`; build.rs packs
/// those relocations (DT_RELR) where glibc can apply them (2.36 on). The
/// section is there, and the binary runs (every other test).
#[test]
fn the_static_glibc_binary_packs_its_relocations() {
    const SHT_RELR: u32 = 19;
    let glibc = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            let (major, minor) = s.trim().strip_prefix("glibc ")?.split_once('.')?;
            Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
        });
    require!(
        "relr",
        cfg!(target_env = "gnu") && glibc.is_some_and(|v| v >= (2, 36)),
        "DT_RELR needs a glibc build on glibc 2.36 or later"
    );
    let elf = std::fs::read(cordon_bin()).expect("read the binary");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let shoff = u64::from_le_bytes(elf[0x28..0x30].try_into().unwrap()) as usize;
    let (shentsize, shnum) = (u16_at(0x3a), u16_at(0x3c));
    let types: Vec<u32> = (0..shnum)
        .map(|i| {
            let o = shoff + i * shentsize + 4;
            u32::from_le_bytes(elf[o..o + 4].try_into().unwrap())
        })
        .collect();
    assert!(types.contains(&SHT_RELR), "no SHT_RELR section among {types:?}");
}
