//! `cordon check`'s warnings: each lint's text, standard error only, exit
//! 0 (1 with `--strict`), and none for the default policy.

mod common;

use common::{cordon, Mode, TempDir};

struct Checked {
    code: i32,
    stdout: String,
    warnings: Vec<String>,
    stderr: String,
}

fn check(args: &[&str]) -> Checked {
    let o = cordon(Mode::Root)
        .arg("check")
        .args(args)
        .output()
        .expect("spawn cordon");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    Checked {
        code: o.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        warnings: stderr
            .lines()
            .filter_map(|l| l.strip_prefix("cordon: check: warning: "))
            .map(str::to_string)
            .collect(),
        stderr,
    }
}

/// The default policy with `change` applied, written to `dir`.
fn policy(dir: &TempDir, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.json"))
        .expect("default policy");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    change(&mut v);
    let p = dir.path().join("p.json");
    std::fs::write(&p, v.to_string()).expect("write policy");
    p.to_str().expect("utf-8").to_string()
}

fn only_warning(c: &Checked) -> &str {
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stdout.contains("\"version\": 1"),
        "the policy is still printed: {}",
        c.stdout
    );
    assert_eq!(c.warnings.len(), 1, "{}", c.stderr);
    &c.warnings[0]
}

#[test]
fn the_default_policy_has_no_warning() {
    let c = check(&[]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.warnings.is_empty(), "{}", c.stderr);
    assert_eq!(check(&["--strict"]).code, 0);
}

#[test]
fn a_group_with_rules_that_only_refuse_refuses_every_call() {
    let dir = TempDir::new("lint-seccomp");
    // The trap: ioctl through @terminal, not by name, and rules that only
    // refuse TIOCSTI and TIOCLINUX: every ioctl is refused.
    let p = policy(&dir, |v| {
        let allow = v["seccomp"]["allow"].as_array_mut().expect("allow");
        allow.retain(|a| a != "ioctl");
        allow.push("@terminal".into());
    });
    let c = check(&["--policy", &p]);
    assert_eq!(
        only_warning(&c),
        "seccomp: ioctl is allowed only through @terminal, and its rules (rules[6], rules[7]) only refuse, \
         so every ioctl call is refused with the default action (errno EPERM), not just the ones they match; \
         add \"ioctl\" to allow to allow the others"
    );
    let strict = check(&["--policy", &p, "--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert_eq!(strict.warnings, c.warnings);
}

#[test]
fn a_cwd_that_will_not_exist_is_named_with_the_reason() {
    let dir = TempDir::new("lint-cwd");
    let c = check(&["--chdir", "/work"]);
    assert_eq!(
        only_warning(&c),
        "cwd /work: no mount holds it (the root is cordon's own empty tmpfs), so the payload cannot start there; \
         mount a directory at it, or choose another with --chdir"
    );
    let c = check(&["--chdir", "/tmp/build"]);
    assert!(
        only_warning(&c).starts_with("cwd /tmp/build: it is inside the tmpfs at /tmp, which starts empty,"),
        "{}",
        c.stderr
    );
    let bind = format!("{}:/w", dir.str());
    let c = check(&["--ro-bind", &bind, "--chdir", "/w/missing"]);
    assert!(
        only_warning(&c).starts_with(&format!(
            "cwd /w/missing: it would be host {}/missing, which is not a directory,",
            dir.str()
        )),
        "{}",
        c.stderr
    );
    // What exists raises nothing: the bind itself, a directory in it, a
    // directory cordon makes on the way to a mount point.
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    for cwd in ["/w", "/w/sub", "/usr/bin", "/dev"] {
        let c = check(&["--ro-bind", &bind, "--chdir", cwd]);
        assert!(c.warnings.is_empty(), "{cwd}: {}", c.stderr);
    }
}

#[test]
fn host_networking_without_the_resolver_files_is_named() {
    let c = check(&["--net", "host"]);
    assert_eq!(
        only_warning(&c),
        "network mode host without /etc/resolv.conf and /etc/hosts: host names will not resolve as they do on \
         the host; bind them (--ro-bind /etc/resolv.conf --ro-bind /etc/hosts)"
    );
    let c = check(&["--net", "host", "--ro-bind", "/etc/hosts"]);
    assert_eq!(
        only_warning(&c),
        "network mode host without /etc/resolv.conf: host names will not resolve as they do on the host; \
         bind it (--ro-bind /etc/resolv.conf)"
    );
}

#[test]
fn no_passwd_at_all_is_named() {
    let dir = TempDir::new("lint-passwd");
    let p = policy(&dir, |v| v["identity"]["passwd"] = false.into());
    let c = check(&["--policy", &p]);
    assert_eq!(
        only_warning(&c),
        "identity.passwd is false and no bind holds /etc/passwd: uid 1000 has no name, so whoami, id -un, \
         getpass and ssh fail; drop \"passwd\": false, or bind a passwd file"
    );
    let c = check(&["--policy", &p, "--ro-bind", "/etc/passwd"]);
    assert!(c.warnings.is_empty(), "{}", c.stderr);
}
