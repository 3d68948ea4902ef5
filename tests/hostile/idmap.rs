//! Writable binds stay the caller's: started by root, a writable bind is an
//! idmapped mount, so what the payload writes is owned on the host by the
//! bind source's owner (or the owner the policy names), never by the
//! sandbox's host id; and the payload can never leave a setuid or setgid
//! file in such a bind (it would be setuid-owner on the host, where the
//! sandbox's nosuid does not apply).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::common::{self, Mode, TempDir};
use crate::require;

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

/// A directory only its owner may write to (0755), owned by `uid:gid`.
fn owned_dir(tag: &str, uid: u32, gid: u32) -> TempDir {
    let d = TempDir::new(tag);
    chown(d.path(), uid, gid);
    common::set_mode(d.path(), 0o755);
    d
}

/// The default policy with `bind` added to its mounts and `edit` applied.
fn policy_with(dir: &TempDir, bind: serde_json::Value, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut p: serde_json::Value =
        serde_json::from_str(include_str!("../../policies/default.json")).expect("default policy");
    if let Some(w) = p["landlock"]["write"].as_array_mut() {
        w.push(bind["to"].clone());
    }
    p["mounts"].as_array_mut().expect("mounts").push(bind);
    edit(&mut p);
    common::write_policy(dir, "policy.json", &p.to_string())
}

/// Whether this kernel can idmap a directory where the tests make theirs
/// (/tmp; tmpfs only from Linux 6.3): cordon lists the bind under
/// `unenforced` when it cannot.
fn idmap_supported() -> bool {
    let d = owned_dir("idmap-probe", 1234, 1234);
    let r = common::run(
        Mode::Root,
        &["--bind", &format!("{}:/w", d.str())],
        &["/bin/true"],
    );
    r.ok();
    let unenforced = r
        .status
        .as_ref()
        .map(|s| s["unenforced"].to_string())
        .unwrap_or_default();
    !unenforced.contains("idmapped")
}

macro_rules! require_idmap {
    () => {
        require!("root", common::is_root(), "needs root");
        require!(
            "idmap",
            idmap_supported(),
            "the filesystem of /tmp cannot make idmapped mounts on this kernel"
        );
    };
}

const WRITE: &str = "open('/w/new', 'w').write('x'); import os; os.mkdir('/w/newdir'); print('wrote')";

#[test]
fn root_writable_bind_files_belong_to_the_source_owner() {
    require_idmap!();
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    let d = owned_dir("idmap-owner", 1234, 1234);
    let r = common::py(Mode::Root, &["--bind", &format!("{}:/w", d.str())], WRITE);
    assert!(r.ok().contains("wrote"), "{}", r.stderr());
    assert_eq!(owner(&d.path().join("new")), (1234, 1234));
    assert_eq!(owner(&d.path().join("newdir")), (1234, 1234));
}

/// A root-owned source is idmapped only when the policy names "owner":
/// "0:0": otherwise the payload would own every root file in the tree, and
/// a write through a shared mapping keeps a setuid-root file's mode bits.
#[test]
fn root_owned_writable_bind_is_idmapped_only_when_the_policy_names_root() {
    require_idmap!();
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    let d = owned_dir("idmap-root", 0, 0);
    let r = common::py(Mode::Root, &["--bind", &format!("{}:/w", d.str())], WRITE);
    assert_ne!(
        r.code(),
        0,
        "the payload wrote a root-owned 0755 directory: {}",
        r.stdout()
    );
    assert!(!d.path().join("new").exists());
    // "owner": "source" resolving to root is refused before launch.
    let pdir = TempDir::new("idmap-root-policy");
    let bind =
        |owner: &str| serde_json::json!({"bind": d.str(), "to": "/w", "readonly": false, "owner": owner});
    let p = policy_with(&pdir, bind("source"), |_| {});
    let r = common::py(Mode::Root, &["--policy", &p], WRITE);
    assert_eq!(r.code(), 125, "{}", r.stderr());
    assert!(r.stderr().contains("\"owner\": \"0:0\""), "{}", r.stderr());
    // Named explicitly: idmapped, writable, and what it makes stays root's.
    let p = policy_with(&pdir, bind("0:0"), |_| {});
    let r = common::py(Mode::Root, &["--policy", &p], WRITE);
    assert!(r.ok().contains("wrote"), "{}", r.stderr());
    assert_eq!(owner(&d.path().join("new")), (0, 0));
    // Read-only binds are not idmapped: the same directory stays read-only
    // and foreign to the payload.
    let r = common::py(
        Mode::Root,
        &["--ro-bind", &format!("{}:/w", d.str())],
        "import os\ntry:\n  open('/w/other', 'w'); print('wrote')\nexcept OSError as e: print('refused', e.errno)",
    );
    assert!(r.ok().contains("refused"), "{}", r.stdout());
    assert!(!d.path().join("other").exists());
}

#[test]
fn git_works_in_a_bound_repository() {
    require_idmap!();
    require!("git", Path::new("/usr/bin/git").exists(), "needs /usr/bin/git");
    let d = owned_dir("idmap-git", 1234, 1234);
    let st = std::process::Command::new("/usr/bin/git")
        .args(["init", "-q", d.str()])
        .env("HOME", d.str())
        .status()
        .expect("git init");
    assert!(st.success());
    // The repository is 1234's, as a user's checkout is theirs.
    let st = std::process::Command::new("chown")
        .args(["-R", "1234:1234", d.str()])
        .status()
        .expect("chown");
    assert!(st.success());
    let r = common::run(
        Mode::Root,
        &["--bind", &format!("{}:/repo", d.str())],
        &[
            "/usr/bin/git",
            "-C",
            "/repo",
            "status",
            "--porcelain=v1",
            "--branch",
        ],
    );
    assert!(!r.stderr().contains("dubious ownership"), "{}", r.stderr());
    assert!(r.ok().starts_with("## "), "{}", r.stdout());
}

#[test]
fn an_owner_named_in_the_policy_is_honoured() {
    require_idmap!();
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    // The bind's root belongs to 2345, its subdirectory to 1234.
    let d = owned_dir("idmap-named", 2345, 3456);
    let sub = d.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir sub");
    chown(&sub, 1234, 1234);
    let try_both = "for p in ('/w/new', '/w/sub/new'):\n  try:\n    open(p, 'w'); print(p, 'wrote')\n  except OSError as e: print(p, 'refused', e.errno)";
    let pdir = TempDir::new("idmap-named-policy");
    // Named owner 1234: the payload writes as 1234, only where 1234 owns.
    let policy = policy_with(
        &pdir,
        serde_json::json!({"bind": d.str(), "to": "/w", "readonly": false, "owner": "1234:1234"}),
        |_| {},
    );
    let out = common::py(Mode::Root, &["--policy", &policy], try_both).ok();
    assert_eq!(out, "/w/new refused 13\n/w/sub/new wrote\n");
    assert_eq!(owner(&sub.join("new")), (1234, 1234));
    assert!(!d.path().join("new").exists());
    // The default (the source's owner, 2345:3456): the other way round.
    std::fs::remove_file(sub.join("new")).expect("rm");
    let out = common::py(Mode::Root, &["--bind", &format!("{}:/w", d.str())], try_both).ok();
    assert_eq!(out, "/w/new wrote\n/w/sub/new refused 13\n");
    assert_eq!(owner(&d.path().join("new")), (2345, 3456));
}

/// Every way to make a setuid/setgid file, tried in /w; prints one line each.
const SETID: &str = r#"
import os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
def t(name, f):
    try:
        f(); print(name, 'ok')
    except OSError as e:
        print(name, 'refused', e.errno)
def sc(nr, *args):
    r = libc.syscall(nr, *args)
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
open('/w/f', 'w').close()
t('chmod4755', lambda: os.chmod('/w/f', 0o4755))
t('chmod2755', lambda: os.chmod('/w/f', 0o2755))
fd = os.open('/w/f', os.O_RDONLY)
t('fchmod6755', lambda: os.fchmod(fd, 0o6755))
t('fchmodat2', lambda: sc(452, -100, b'/w/f', 0o4755, 0))
t('open_creat', lambda: os.close(os.open('/w/g', os.O_CREAT | os.O_WRONLY, 0o4755)))
t('mknod', lambda: os.mknod('/w/h', 0o100000 | 0o4755))
t('mkdir_setgid', lambda: os.mkdir('/w/d', 0o2755))
t('openat2', lambda: sc(437, -100, b'/w/i', ctypes.c_char_p(bytes(24)), 24))
t('chmod755', lambda: os.chmod('/w/f', 0o755))
t('open_plain', lambda: os.close(os.open('/w/j', os.O_CREAT | os.O_WRONLY, 0o644)))
"#;

fn check_setid(d: &TempDir, out: &str) {
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_string()
    };
    for name in [
        "chmod4755",
        "chmod2755",
        "fchmod6755",
        "fchmodat2",
        "open_creat",
        "mknod",
        "mkdir_setgid",
    ] {
        assert_eq!(line(name), format!("{name} refused 1"), "{out}");
    }
    assert_eq!(line("openat2"), "openat2 refused 38", "{out}");
    assert_eq!(line("chmod755"), "chmod755 ok", "{out}");
    assert_eq!(line("open_plain"), "open_plain ok", "{out}");
    for entry in std::fs::read_dir(d.path()).expect("read bind") {
        let entry = entry.expect("entry");
        let mode = entry.metadata().expect("stat").permissions().mode();
        assert_eq!(mode & 0o6000, 0, "{} has mode {mode:o}", entry.path().display());
    }
    assert_eq!(
        std::fs::metadata(d.path().join("f"))
            .expect("f")
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
}

#[test]
fn no_setuid_or_setgid_file_can_be_made_in_an_idmapped_bind() {
    require_idmap!();
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    let d = owned_dir("idmap-setid", 1234, 1234);
    common::set_mode(d.path(), 0o777);
    let r = common::py(Mode::Root, &["--bind", &format!("{}:/w", d.str())], SETID);
    check_setid(&d, &r.ok());
}

/// The guard is not tied to the idmap: a setuid file of the sandbox's own
/// host id (a bind with "owner": "sandbox", or any rootless bind) outlives
/// the run as well, and that id may go to a later sandbox.
#[test]
fn no_setuid_file_in_a_writable_bind_that_is_not_idmapped() {
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    for mode in common::modes() {
        let d = TempDir::new("setid-plain");
        let pdir = TempDir::new("setid-plain-policy");
        let p = policy_with(
            &pdir,
            serde_json::json!({"bind": d.str(), "to": "/w", "readonly": false, "owner": "sandbox"}),
            |_| {},
        );
        let r = common::py(mode, &["--policy", &p], SETID);
        check_setid(&d, &r.ok());
    }
}

#[test]
fn no_setuid_file_either_when_the_policy_has_no_seccomp_section() {
    require_idmap!();
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    let d = owned_dir("idmap-setid-noseccomp", 1234, 1234);
    common::set_mode(d.path(), 0o777);
    let pdir = TempDir::new("idmap-noseccomp-policy");
    let policy = policy_with(
        &pdir,
        serde_json::json!({"bind": d.str(), "to": "/w", "readonly": false}),
        |p| {
            p.as_object_mut().expect("object").remove("seccomp");
        },
    );
    let r = common::py(Mode::Root, &["--policy", &policy], SETID);
    check_setid(&d, &r.ok());
}

#[test]
fn rootless_writable_binds_keep_the_callers_id() {
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    if !common::is_root() {
        // Run as ourselves: the files are ours.
        let d = TempDir::new("idmap-rootless");
        let r = common::py(Mode::Rootless, &["--bind", &format!("{}:/w", d.str())], WRITE);
        assert!(r.ok().contains("wrote"), "{}", r.stderr());
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(owner(&d.path().join("new")).0, me);
        return;
    }
    let id = common::ROOTLESS_ID;
    let d = owned_dir("idmap-rootless", id, id);
    let r = common::py(Mode::Rootless, &["--bind", &format!("{}:/w", d.str())], WRITE);
    assert!(r.ok().contains("wrote"), "{}", r.stderr());
    assert_eq!(owner(&d.path().join("new")), (id, id));
    // Rootless, nothing is idmapped: a directory of someone else stays
    // theirs, and the payload cannot write there.
    let other = owned_dir("idmap-rootless-other", 1234, 1234);
    let r = common::py(
        Mode::Rootless,
        &["--bind", &format!("{}:/w", other.str())],
        "try:\n  open('/w/new', 'w'); print('wrote')\nexcept OSError as e: print('refused', e.errno)",
    );
    assert!(r.ok().contains("refused 13"), "{}", r.stdout());
}

/// Run `sh -c script` as root in a private mount namespace with a ramfs
/// (which cannot be idmapped) mounted on `dir`; the mount dies with it.
fn with_ramfs(dir: &TempDir, script: &str) -> std::process::Output {
    std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t ramfs none '{}' && chmod 755 '{}' && {script}",
            dir.str(),
            dir.str()
        ))
        .env("CORDON", common::cordon_bin())
        .output()
        .expect("unshare")
}

#[test]
fn a_filesystem_that_cannot_be_idmapped_refuses_a_named_owner_and_is_listed_otherwise() {
    require!("root", common::is_root(), "needs root");
    require!(
        "unshare",
        std::process::Command::new("unshare")
            .arg("--version")
            .output()
            .is_ok(),
        "needs unshare(1)"
    );
    let d = TempDir::new("idmap-ramfs");
    let pdir = TempDir::new("idmap-ramfs-policy");
    let run = "\"$CORDON\" run --policy \"$P\" -- /bin/sh -c 'echo x > /w/f && echo wrote'; echo rc=$?";
    let policy = |extra: serde_json::Value| {
        let mut bind = serde_json::json!({"bind": d.str(), "to": "/w", "readonly": false});
        for (k, v) in extra.as_object().expect("object") {
            bind[k] = v.clone();
        }
        policy_with(&pdir, bind, |_| {})
    };
    // A named owner is strict (the default): refused before launch,
    // naming the field.
    let p = policy(serde_json::json!({"owner": "1234:1234"}));
    let out = with_ramfs(&d, &format!("P='{p}'; {run}"));
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(so.contains("rc=125") && !so.contains("wrote"), "{so}\n{se}");
    assert!(
        se.contains(".owner") && se.contains("cannot make the idmapped mount"),
        "{se}"
    );
    let status = pdir.path().join("status.json");
    // Runs /bin/true under policy `p` and returns the outcome's unenforced list.
    let unenforced_with = |p: &str| {
        let out = with_ramfs(
            &d,
            &format!(
                "P='{p}'; \"$CORDON\" run --policy \"$P\" --status-json '{}' -- /bin/true; echo rc=$?",
                status.display()
            ),
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("rc=0"), "{out:?}");
        let outcome: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&status).expect("status")).expect("json");
        outcome["unenforced"].to_string()
    };
    // No owner named, and the ramfs root is root's: not idmapped at all
    // (a root-owned source needs "owner": "0:0"), bound as before.
    let u = unenforced_with(&policy(serde_json::json!({})));
    assert!(!u.contains("cannot make the idmapped mount"), "{u}");
    // best_effort with a named owner: the same.
    let p = policy(serde_json::json!({"owner": "1234:1234", "compatibility": "best_effort"}));
    let out = with_ramfs(
        &d,
        &format!(
            "P='{p}'; \"$CORDON\" run --policy \"$P\" --status-json '{}' -- /bin/sh -c 'echo x > /w/f && echo wrote'; echo rc=$?",
            status.display()
        ),
    );
    let so = String::from_utf8_lossy(&out.stdout);
    // The ramfs root is root's 0755, and without the idmap the payload is
    // not its owner: writing fails, but the run happens.
    assert!(
        !so.contains("wrote") && !so.contains("rc=0") && !so.contains("rc=125"),
        "{so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&status).expect("status")).expect("json");
    let unenforced = outcome["unenforced"].to_string();
    assert!(
        unenforced.contains("owner") && unenforced.contains("idmapped"),
        "{unenforced}"
    );
    // "owner": "sandbox": no idmap asked, nothing unenforced.
    let u = unenforced_with(&policy(serde_json::json!({"owner": "sandbox"})));
    assert!(!u.contains("owner"), "{u}");
}

#[test]
fn cordon_exec_binds_are_idmapped_and_guarded_too() {
    require_idmap!();
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    let d = owned_dir("idmap-exec", 1234, 1234);
    let out = common::cordon(Mode::Root)
        .args([
            "exec",
            "--bind",
            &format!("{}:/w", d.str()),
            "--",
            "/usr/bin/python3",
            "-c",
            SETID,
        ])
        .output()
        .expect("cordon exec");
    assert!(out.status.success(), "{out:?}");
    check_setid(&d, &String::from_utf8_lossy(&out.stdout));
    assert_eq!(owner(&d.path().join("f")), (1234, 1234));
}

#[test]
fn cordon_learn_keeps_the_set_id_guard() {
    require_idmap!();
    require!("python3", common::have_python(), "needs /usr/bin/python3");
    // The learning filter lets every call through to be recorded, except
    // what the guard refuses.
    let d = owned_dir("idmap-learn", 1234, 1234);
    common::set_mode(d.path(), 0o777);
    let out_dir = TempDir::new("idmap-learn-out");
    let out = common::cordon(Mode::Root)
        .args(["learn", "--bind", &format!("{}:/w", d.str()), "-o"])
        .arg(out_dir.path().join("learnt.json"))
        .args(["--", "/usr/bin/python3", "-c", SETID])
        .output()
        .expect("cordon learn");
    assert!(out.status.success(), "{out:?}");
    check_setid(&d, &String::from_utf8_lossy(&out.stdout));
}
