//! `cordon learn` must not hand the payload what every cordon policy keeps
//! from it: calls that create namespaces, reach the kernel keyring or
//! io_uring are refused while learning and left out of the learnt policy
//! (unless `--allow-dangerous` says otherwise).

use std::process::Output;

use crate::common::{cordon, have_python, modes, Mode, TempDir};
use crate::require;

/// Makes the calls by number and prints what each returned (0 or the errno).
const PAYLOAD: &str = r#"
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return ctypes.get_errno() if r < 0 else 0
params = ctypes.create_string_buffer(120)
res = {
    'unshare': call(272, 0x10000000),
    'keyctl': call(250, 0, -3 & 0xffffffff, 0),
    'io_uring_setup': libc.syscall(ctypes.c_long(425), ctypes.c_long(1), params),
}
res['io_uring_setup'] = ctypes.get_errno() if res['io_uring_setup'] < 0 else 0
# clone(CLONE_NEWUSER|SIGCHLD): a raw fork into a new user namespace.
pid = libc.syscall(ctypes.c_long(56), ctypes.c_long(0x10000000 | 17), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
if pid == 0:
    os._exit(0)
res['clone'] = ctypes.get_errno() if pid < 0 else 0
if pid > 0:
    os.waitpid(pid, 0)
print(json.dumps(res))
"#;

const DANGEROUS: [&str; 3] = ["unshare", "keyctl", "io_uring_setup"];

struct Learnt {
    out: Output,
    allow: Vec<String>,
    rules: String,
}

impl Learnt {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn results(&self) -> serde_json::Value {
        let stdout = String::from_utf8_lossy(&self.out.stdout).into_owned();
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("payload output {stdout:?}: {e}\n{}", self.stderr()))
    }
}

fn learn(mode: Mode, dir: &TempDir, extra: &[&str]) -> Learnt {
    let path = dir.path().join(format!("learnt-{mode:?}-{}.json", extra.len()));
    let out = cordon(mode)
        .arg("learn")
        .args(extra)
        .arg("-o")
        .arg(&path)
        .args(["--", "/usr/bin/python3", "-c", PAYLOAD])
        .output()
        .expect("cordon learn");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{mode:?}: learnt policy {text:?}: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let allow = v["seccomp"]["allow"]
        .as_array()
        .expect("allow")
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    let rules = v["seccomp"]["rules"].to_string();
    Learnt { out, allow, rules }
}

#[test]
fn learning_refuses_namespaces_keyrings_and_io_uring_and_leaves_them_out() {
    require!("python3", have_python(), "python3 is not installed");
    let dir = TempDir::new("learn");
    for mode in modes() {
        let l = learn(mode, &dir, &[]);
        let e = l.stderr();
        assert!(l.out.status.success(), "{mode:?}: {e}");
        let res = l.results();
        for name in DANGEROUS.iter().chain(&["clone"]) {
            assert_eq!(
                res[name],
                libc::EPERM,
                "{mode:?}: {name} was not refused while learning: {res}"
            );
        }
        for name in DANGEROUS {
            assert!(
                !l.allow.iter().any(|a| a == name),
                "{mode:?}: {name} is in the learnt policy: {:?}",
                l.allow
            );
            let listed = e
                .lines()
                .any(|line| line.contains("refused") && line.contains(name));
            assert!(listed, "{mode:?}: {name} is not listed as refused: {e}");
        }
        assert!(
            e.contains("not in the policy"),
            "{mode:?}: no note that the refused calls are left out: {e}"
        );
        // clone with namespace flags was refused: clone is not allowed by
        // name (a clone rule, if any, masks the namespace flags).
        assert!(
            !l.allow.iter().any(|a| a == "clone") && e.contains("clone with CLONE_NEWUSER"),
            "{mode:?}: clone with namespace flags: {:?} {}\n{e}",
            l.allow,
            l.rules
        );
        // What the payload needed otherwise is learnt as before.
        for name in ["openat", "execve", "mmap"] {
            assert!(
                l.allow.iter().any(|a| a == name),
                "{mode:?}: {name} missing: {:?}",
                l.allow
            );
        }
    }
}

#[test]
fn allow_dangerous_learns_them_as_before() {
    require!("python3", have_python(), "python3 is not installed");
    let dir = TempDir::new("learn");
    for mode in modes() {
        let l = learn(mode, &dir, &["--allow-dangerous"]);
        let e = l.stderr();
        assert!(l.out.status.success(), "{mode:?}: {e}");
        let res = l.results();
        for name in DANGEROUS {
            assert!(res[name].is_number(), "{mode:?}: {res}");
            assert!(
                l.allow.iter().any(|a| a == name),
                "{mode:?}: {name} is not in the policy learnt with --allow-dangerous: {:?}",
                l.allow
            );
        }
        // clone with namespace flags was seen: clone is allowed by name.
        assert!(l.allow.iter().any(|a| a == "clone"), "{mode:?}: {:?}", l.allow);
    }
}
