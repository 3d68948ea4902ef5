//! `cordon seccomp import`: Docker's default profile becomes a policy that
//! runs a real program and refuses, inside the sandbox, what Docker refuses.
mod common;
use common::*;

fn docker_profile() -> String {
    format!(
        "{}/tests/data/docker-default-seccomp.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Import the profile into `dir`; returns the policy path and the stderr.
fn import(dir: &TempDir) -> (String, String) {
    let out_path = dir.path().join("docker.json");
    let out = std::process::Command::new(cordon_bin())
        .args(["seccomp", "import", &docker_profile(), "-o"])
        .arg(&out_path)
        .output()
        .expect("spawn cordon seccomp import");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "import failed: {stderr}");
    assert!(out.stdout.is_empty(), "-o writes the file, not stdout");
    set_mode(&out_path, 0o644);
    (s(&out_path), stderr)
}

/// `syscall(nr, args...)` from python, printing the result and errno.
fn raw_syscall(nr: u64, args: &str) -> String {
    format!(
        "import ctypes; l = ctypes.CDLL(None, use_errno=True); \
         l.syscall.restype = ctypes.c_long; \
         r = l.syscall(ctypes.c_long({nr}), {args}); print(r if r < 0 else 'ok', ctypes.get_errno() if r < 0 else 0)"
    )
}

#[test]
fn import_writes_a_policy_and_lists_what_it_cannot_express() {
    let dir = TempDir::new("import");
    let (policy, stderr) = import(&dir);
    let text = std::fs::read_to_string(&policy).expect("read imported policy");
    let v: serde_json::Value = serde_json::from_str(&text).expect("the import is JSON");
    let sec = &v["seccomp"];
    assert_eq!(sec["default_action"], "errno", "{sec}");
    let allow: Vec<&str> = sec["allow"]
        .as_array()
        .expect("allow list")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(allow.contains(&"read") && allow.contains(&"ptrace"), "{allow:?}");
    assert!(
        !allow.contains(&"mount") && !allow.contains(&"socket"),
        "{allow:?}"
    );
    // Calls newer than Linux 6.10 that the profile allows are kept (the
    // table is the kernel's, current to 6.18), not listed as unknown.
    for new in [
        "setxattrat",
        "getxattrat",
        "listxattrat",
        "removexattrat",
        "uretprobe",
    ] {
        assert!(allow.contains(&new), "{new} dropped: {allow:?}");
        assert!(
            !stderr
                .lines()
                .any(|l| l.contains("not in cordon's") && l.contains(new)),
            "{new} listed as unknown: {stderr}"
        );
    }
    // The rest of the policy is the built-in default's.
    assert_eq!(v["hostname"], "cordon");

    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("cordon: import: not expressed: ")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("needs CAP_SYS_ADMIN") && l.contains("unshare")),
        "{stderr}"
    );
    assert!(lines.iter().any(|l| l.contains("SCMP_ARCH_X32")), "{stderr}");

    // Without -o the policy goes to stdout.
    let out = std::process::Command::new(cordon_bin())
        .args(["seccomp", "import", &docker_profile()])
        .output()
        .expect("spawn cordon seccomp import");
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(printed, v);
}

#[test]
fn import_errors_name_the_position() {
    let dir = TempDir::new("import-bad");
    let bad = write_policy(
        &dir,
        "bad.json",
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n \"syscalls\": [{\"names\": [\"read\"], \"action\": 7}]}",
    );
    let out = std::process::Command::new(cordon_bin())
        .args(["seccomp", "import", &bad])
        .output()
        .expect("spawn cordon seccomp import");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{bad}:2:")) && stderr.contains("syscalls[0].action"),
        "{stderr}"
    );
}

#[test]
fn imported_docker_profile_runs_python_and_refuses_what_docker_refuses() {
    require!("python3", have_python(), "no /usr/bin/python3");
    let dir = TempDir::new("import-run");
    let (policy, _) = import(&dir);
    let p = ["--policy", policy.as_str()];
    let allow_all = write_policy(&dir, "allow-all.json", r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
    let out = std::process::Command::new(cordon_bin())
        .args(["seccomp", "import", &allow_all, "-o"])
        .arg(dir.path().join("control.json"))
        .output()
        .expect("spawn cordon seccomp import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    set_mode(&dir.path().join("control.json"), 0o644);
    let control_policy = s(dir.path().join("control.json"));
    let c = ["--policy", control_policy.as_str()];
    for mode in modes() {
        let r = py(mode, &p, "print(6*7)");
        assert_eq!(r.ok(), "42\n", "{mode:?}: {}", r.stderr());

        // (syscall number, arguments, expected output)
        let cases: &[(&str, u64, &str, &str)] = &[
            // Each refusal is one the kernel would not give by itself: the
            // call would succeed or fail with another errno.
            // mount(NULL, NULL, NULL, 0, NULL): EFAULT from the kernel;
            // the profile allows mount only with CAP_SYS_ADMIN.
            ("mount", 165, "0, 0, 0, 0, 0", "-1 1"),
            // unshare(0): a no-op for the kernel; CAP_SYS_ADMIN only too.
            ("unshare", 272, "0", "-1 1"),
            // personality(ADDR_NO_RANDOMIZE): not among the allowed personas.
            ("personality(ADDR_NO_RANDOMIZE)", 135, "0x0040000", "-1 1"),
            // personality(0xffffffff) (a query): allowed.
            ("personality(query)", 135, "0xffffffff", "ok 0"),
            // socket(AF_VSOCK, SOCK_STREAM, 0): refused (the kernel would
            // create it or say EAFNOSUPPORT).
            ("socket(AF_VSOCK)", 41, "40, 1, 0", "-1 1"),
            // socket(AF_INET, SOCK_STREAM, 0): allowed.
            ("socket(AF_INET)", 41, "2, 1, 0", "ok 0"),
            // clone3(NULL, 0): EINVAL from the kernel; the profile says
            // ENOSYS, so that libc falls back to clone.
            ("clone3", 435, "0, 0", "-1 38"),
        ];
        for (what, nr, args, want) in cases {
            let r = py(mode, &p, &raw_syscall(*nr, args));
            assert_eq!(r.ok(), format!("{want}\n"), "{mode:?} {what}: {}", r.stderr());
        }

        // The control: under an imported allow-everything profile the
        // kernel's own answers differ from each refusal above.
        let control: &[(u64, &str, &str)] = &[
            (165, "0, 0, 0, 0, 0", "-1 14"),
            (272, "0", "ok 0"),
            (135, "0x0040000", "ok 0"),
            (435, "0, 0", "-1 22"),
        ];
        for (nr, args, want) in control {
            let r = py(mode, &c, &raw_syscall(*nr, args));
            assert_eq!(
                r.ok(),
                format!("{want}\n"),
                "{mode:?} control {nr}: {}",
                r.stderr()
            );
        }
        let r = py(mode, &c, &raw_syscall(41, "40, 1, 0"));
        assert_ne!(r.ok(), "-1 1\n", "{mode:?} control socket(AF_VSOCK)");

        // Threads still work (clone3 -> ENOSYS -> clone with thread flags).
        let r = py(
            mode,
            &p,
            "import threading; t = threading.Thread(target=lambda: print('thread')); t.start(); t.join()",
        );
        assert_eq!(r.ok(), "thread\n", "{mode:?}: {}", r.stderr());
    }
}
