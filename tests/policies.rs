//! Every policy shipped with cordon (policies/*.json, and the benchmark's
//! bwrap-equivalent policy) loads, checks, and runs a real program.
mod common;
use common::*;

fn shipped() -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut v: Vec<String> = std::fs::read_dir(format!("{root}/policies"))
        .expect("policies/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.to_string_lossy().ends_with(".schema.json"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.push(format!("{root}/bench/bwrap-equivalent.json"));
    v.sort();
    v
}

#[test]
fn every_shipped_policy_checks_and_runs_a_shell() {
    let files = shipped();
    assert!(
        files.iter().any(|f| f.ends_with("policies/default.json")),
        "{files:?}"
    );
    for mode in modes() {
        for f in &files {
            let check = cordon(mode)
                .args(["check", "--policy", f])
                .output()
                .expect("cordon check");
            assert!(
                check.status.success(),
                "{mode:?} check {f}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            // The exec policy is for cordon exec (no pid namespace, no /proc).
            let r = if f.ends_with("policies/exec.json") {
                let out = cordon(mode)
                    .args(["exec", "--policy", f, "--", "/bin/sh", "-c", "echo ran; exit 7"])
                    .output()
                    .expect("cordon exec");
                Run {
                    output: out,
                    status: None,
                }
            } else {
                run(mode, &["--policy", f], &["/bin/sh", "-c", "echo ran; exit 7"])
            };
            assert_eq!(r.code(), 7, "{mode:?} {f}: {}", r.stderr());
            assert_eq!(r.stdout(), "ran\n", "{mode:?} {f}");
        }
    }
}

#[test]
fn check_without_a_policy_prints_the_built_in_default() {
    let out = std::process::Command::new(cordon_bin())
        .arg("check")
        .output()
        .unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check prints JSON");
    assert_eq!(printed["hostname"], "cordon");
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/policies/default.json", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        printed["mounts"].as_array().map(Vec::len),
        file["mounts"].as_array().map(Vec::len)
    );
}

/// The ready policies and the tiers, by name.
const READY: &[&str] = &[
    "shell",
    "python",
    "node",
    "build",
    "http-client",
    "readonly-inspect",
    "untrusted",
    "sandboxed",
    "limited",
    "standard",
];

/// cordon in `mode` with a known config directory, in `cwd`.
fn cordon_in(mode: Mode, cwd: &TempDir, config: &TempDir) -> std::process::Command {
    let mut c = cordon(mode);
    c.current_dir(cwd.path()).env("XDG_CONFIG_HOME", config.path());
    c
}

#[test]
fn cordon_policies_lists_the_ready_policies_and_tiers_and_what_shadows_them() {
    let cwd = TempDir::new("pol-cwd");
    let config = TempDir::new("pol-config");
    let dir = config.path().join("cordon/policies");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("python.json"),
        r#"{"version": 1, "extends": "python", "description": "my python"}"#,
    )
    .unwrap();
    std::fs::write(
        cwd.path().join("mine.json"),
        r#"{"version": 1, "extends": "default"}"#,
    )
    .unwrap();
    // Not a policy: not listed from the working directory.
    std::fs::write(cwd.path().join("package.json"), r#"{"name": "x"}"#).unwrap();
    for p in [dir.parent().unwrap(), &dir, config.path()] {
        set_mode(p, 0o755);
    }
    for mode in modes() {
        let out = cordon_in(mode, &cwd, &config).arg("policies").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.starts_with("NAME "), "{text}");
        for name in READY.iter().chain(&["default", "exec"]) {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{name} ")) && l.contains("built-in")),
                "{mode:?}: {name} missing:\n{text}"
            );
        }
        let py: Vec<&str> = text.lines().filter(|l| l.starts_with("python ")).collect();
        assert_eq!(py.len(), 2, "{text}");
        assert!(
            py[0].contains("/cordon/policies/python.json") && py[0].ends_with("my python"),
            "{text}"
        );
        assert!(
            py[1].contains("built-in") && py[1].contains("(shadowed by "),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("mine ")
                && l.contains("./mine.json")
                && l.ends_with("(extends default)")),
            "{text}"
        );
        assert!(!text.contains("package"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("untrusted ") && l.contains("Tier untrusted: no network")),
            "{text}"
        );

        // By name: the working directory first, then the config directory.
        let r = run_with(
            cordon_in(mode, &cwd, &config),
            &["--policy", "mine"],
            &["/bin/sh", "-c", "echo ran"],
        );
        assert_eq!(r.stdout(), "ran\n", "{mode:?}: {}", r.stderr());
        let r = run_with(
            cordon_in(mode, &cwd, &config),
            &["--policy", "python"],
            &["/bin/sh", "-c", "echo $PYTHONUNBUFFERED"],
        );
        assert_eq!(r.stdout(), "1\n", "{mode:?}: {}", r.stderr());

        let r = run_with(
            cordon_in(mode, &cwd, &config),
            &["--policy", "pyhton"],
            &["/bin/true"],
        );
        assert_ne!(r.code(), 0);
        let err = r.stderr();
        assert!(
            err.contains(
                "--policy: no policy named \"pyhton\" (did you mean \"python\"?): looked for ./pyhton.json, "
            ) && err.contains(
                "/cordon/policies/pyhton.json, /etc/cordon/policies/pyhton.json, the built-in policies"
            ),
            "{mode:?}: {err}"
        );
    }
}

#[test]
fn extends_merges_and_errors_name_the_file_they_come_from() {
    let d = TempDir::new("pol-extends");
    let base = write_policy(
        &d,
        "base.json",
        "{\"version\": 1, \"extends\": \"default\",\n \"env\": {\"set\": {\"FROM_BASE\": \"b\", \"X\": \"base\"}}}",
    );
    let top = write_policy(
        &d,
        "top.json",
        "{\"version\": 1, \"extends\": \"base.json\",\n \"env\": {\"set\": {\"X\": \"top\"}, \"keep\": [\"!replace\"]}}",
    );
    for mode in modes() {
        let r = run(
            mode,
            &["--policy", &top],
            &["/bin/sh", "-c", "echo $FROM_BASE $X ${TERM:-none}"],
        );
        assert_eq!(r.stdout(), "b top none\n", "{mode:?}: {}", r.stderr());
    }
    // An error in the base is reported in the base, with its line and column.
    std::fs::write(
        &base,
        "{\"version\": 1, \"extends\": \"default\",\n  \"limits\": {\"memroy\": \"1G\"}}",
    )
    .unwrap();
    let out = cordon(Mode::Rootless)
        .args(["check", "--policy", &top])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("{base}:2:")) && err.contains("unknown field `memroy`"),
        "{err}"
    );

    // A cycle is refused with the chain.
    let a = write_policy(&d, "a.json", r#"{"version": 1, "extends": "b.json"}"#);
    let b = write_policy(&d, "b.json", r#"{"version": 1, "extends": "a.json"}"#);
    let out = cordon(Mode::Rootless)
        .args(["check", "--policy", &a])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "{b}:1:27: extends: \"extends\" makes a cycle: {a} -> {b} -> {a}"
        )),
        "{err}"
    );
}

/// `cordon run --policy NAME` with stdin from `input`.
fn run_input(mode: Mode, args: &[&str], cmd: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut c = cordon(mode);
    c.arg("run").args(args).arg("--").args(cmd);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn cordon");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn ready_policy_shell_runs_an_interactive_bash_with_a_writable_home() {
    require!(
        "bash",
        std::path::Path::new("/usr/bin/bash").exists(),
        "needs /usr/bin/bash"
    );
    for mode in modes() {
        let out = run_input(
            mode,
            &["--policy", "shell"],
            &["/bin/bash", "-i"],
            "echo home=$HOME pwd=$PWD; echo hi > ~/f && cat ~/f; [[ $- == *i* ]] && echo interactive; exit 3\n",
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text, "home=/home/sandbox pwd=/home/sandbox\nhi\ninteractive\n",
            "{mode:?}"
        );
    }
}

#[test]
fn ready_policy_python_runs_python() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    for mode in modes() {
        let r = run(
            mode,
            &["--policy", "python"],
            &["/usr/bin/python3", "-c", "import json, sys, os; print(json.dumps({'n': sum(range(10)), 'bytecode': sys.dont_write_bytecode}))"],
        );
        assert_eq!(
            r.stdout(),
            "{\"n\": 45, \"bytecode\": true}\n",
            "{mode:?}: {}",
            r.stderr()
        );
    }
}

#[test]
fn ready_policy_node_runs_node() {
    require!(
        "node",
        std::path::Path::new("/usr/bin/node").exists(),
        "needs /usr/bin/node"
    );
    for mode in modes() {
        let r = run(
            mode,
            &["--policy", "node"],
            &[
                "/usr/bin/node",
                "-e",
                "console.log(JSON.stringify([1,2,3].map(x => x * 2)))",
            ],
        );
        assert_eq!(r.stdout(), "[2,4,6]\n", "{mode:?}: {}", r.stderr());
    }
}

#[test]
fn ready_policy_build_compiles_and_runs_in_the_workspace() {
    require!(
        "cc",
        std::path::Path::new("/usr/bin/cc").exists(),
        "needs /usr/bin/cc"
    );
    require!(
        "make",
        std::path::Path::new("/usr/bin/make").exists(),
        "needs /usr/bin/make"
    );
    for mode in modes() {
        let ws = TempDir::new("pol-build");
        std::fs::write(
            ws.path().join("hello.c"),
            "#include <stdio.h>\nint main(void){puts(\"built\");return 0;}\n",
        )
        .unwrap();
        std::fs::write(
            ws.path().join("Makefile"),
            "hello: hello.c\n\tcc -O1 -o hello hello.c\nrun: hello\n\t./hello\n",
        )
        .unwrap();
        for f in ["hello.c", "Makefile"] {
            set_mode(&ws.path().join(f), 0o666);
        }
        let bind = format!("{}:/work", ws.str());
        let r = run(
            mode,
            &["--policy", "build", "--bind", &bind],
            &["/usr/bin/make", "-s", "run"],
        );
        assert_eq!(r.code(), 0, "{mode:?}: {}", r.stderr());
        assert_eq!(r.stdout(), "built\n", "{mode:?}");
        assert!(
            ws.path().join("hello").is_file(),
            "{mode:?}: the build's output is in the workspace"
        );
        // Without a workspace, /work is a scratch tmpfs where programs may run too.
        let r = sh(
            mode,
            &["--policy", "build"],
            "printf 'int main(void){return 9;}' > t.c && cc -o t t.c && ./t",
        );
        assert_eq!(r.code(), 9, "{mode:?}: {}", r.stderr());
    }
}

#[test]
fn ready_policy_http_client_reaches_only_allowlisted_targets() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(20)));
            let mut buf = Vec::new();
            let mut b = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&b[..n]),
                }
            }
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        }
    });
    let script = [
        "import os, urllib.request",
        "print(os.environ['http_proxy'])",
        &format!("print(urllib.request.urlopen('http://svc.test:{port}/', timeout=20).read().decode())"),
        &format!("for url in ('http://other.test:{port}/', 'http://127.0.0.1:{port}/'):"),
        "    try:",
        "        urllib.request.urlopen(url, timeout=20)",
        "        print('reached', url)",
        "    except Exception as e:",
        "        print('refused')",
    ]
    .join("\n");
    for mode in modes() {
        // A policy that extends http-client: its allowlist is added to the
        // placeholder (svc.test stands for the host's 127.0.0.1).
        let dir = TempDir::new("pol-http");
        let policy = write_policy(
            &dir,
            "client.json",
            &serde_json::json!({
                "version": 1,
                "extends": "http-client",
                "network": {
                    "allow": [format!("svc.test:{port}"), format!("127.0.0.1/32:{port}")],
                    "resolve": {"svc.test": "127.0.0.1"}
                }
            })
            .to_string(),
        );
        let r = run(mode, &["--policy", &policy], &["/usr/bin/python3", "-c", &script]);
        let out = r.stdout();
        assert_eq!(r.code(), 0, "{mode:?}: {out}{}", r.stderr());
        assert_eq!(
            out,
            "http://127.0.0.1:3128\nhello\nrefused\nrefused\n",
            "{mode:?}: {}",
            r.stderr()
        );
        // The placeholder is all the policy itself allows.
        let check = cordon(mode)
            .args(["check", "--policy", "http-client"])
            .output()
            .unwrap();
        let p: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
        assert_eq!(p["network"]["mode"], "proxy");
        assert_eq!(
            p["network"]["allow"],
            serde_json::json!(["api.example.invalid:443"])
        );
    }
}

#[test]
fn ready_policy_readonly_inspect_reads_and_writes_nothing() {
    for mode in modes() {
        let tree = TempDir::new("pol-inspect");
        std::fs::create_dir_all(tree.path().join("sub")).unwrap();
        std::fs::write(tree.path().join("sub/a.txt"), "content\n").unwrap();
        set_mode(&tree.path().join("sub"), 0o777);
        set_mode(&tree.path().join("sub/a.txt"), 0o666);
        let bind = format!("{}:/inspect", tree.str());
        let r = sh(
            mode,
            &["--policy", "readonly-inspect", "--ro-bind", &bind],
            "cat /inspect/sub/a.txt; find /inspect -type f | wc -l; \
             for t in /inspect/new /inspect/sub/a.txt /tmp/x /x /dev/shm/x /proc/x; do \
               (echo data > $t) 2>/dev/null && echo wrote $t; done; \
             mkdir /inspect/d 2>/dev/null && echo made dir; rm -f /inspect/sub/a.txt 2>/dev/null; \
             echo ok > /dev/null && echo devnull",
        );
        assert_eq!(r.stdout(), "content\n1\ndevnull\n", "{mode:?}: {}", r.stderr());
        assert_eq!(
            std::fs::read_to_string(tree.path().join("sub/a.txt")).unwrap(),
            "content\n"
        );
        assert_eq!(std::fs::read_dir(tree.path()).unwrap().count(), 1, "{mode:?}");
    }
}

/// What the untrusted tier refuses: sockets, writes, reads, processes.
const UNTRUSTED_PROBE: &[&str] = &[
    "import os, socket, subprocess",
    "for fam in (socket.AF_INET, socket.AF_INET6):",
    "    try:",
    "        socket.socket(fam, socket.SOCK_STREAM); print('socket')",
    "    except OSError as e: print('no socket', e.errno)",
    "for p in ('/tmp/ok', '/home/x', '/usr/x', '/x'):",
    "    try:",
    "        open(p, 'w').write('x'); print('wrote', p)",
    "    except OSError as e: print('no write', p)",
    "for d in ('/', '/etc', '/usr/bin'):",
    "    try:",
    "        os.listdir(d); print('listed', d)",
    "    except OSError: print('no list', d)",
    // Python itself sets LC_CTYPE when the locale is C (PEP 538).
    "print(sorted(k for k in os.environ if k != 'LC_CTYPE'))",
    "n = 0",
    "ps = []",
    "for i in range(40):",
    "    try:",
    "        ps.append(subprocess.Popen(['/usr/bin/sleep', '5'])); n += 1",
    "    except OSError: break",
    "for p in ps: p.kill()",
    "print('spawned', n)",
];

#[test]
fn tier_untrusted_no_network_no_writes_outside_tmp_few_processes_empty_environment() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    for mode in modes() {
        let mut c = cordon(mode);
        c.env("SECRET_TOKEN", "x").env("TERM", "xterm");
        let r = run_with(
            c,
            &["--policy", "untrusted"],
            &["/usr/bin/python3", "-c", &UNTRUSTED_PROBE.join("\n")],
        );
        let out = r.stdout();
        assert_eq!(r.code(), 0, "{mode:?}: {out}{}", r.stderr());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "no socket 1", "{mode:?}: {out}");
        assert_eq!(lines[1], "no socket 1", "{mode:?}: {out}");
        assert_eq!(
            &lines[2..6],
            [
                "wrote /tmp/ok",
                "no write /home/x",
                "no write /usr/x",
                "no write /x"
            ],
            "{mode:?}"
        );
        // Reading stops at /usr (and the loader's cache, /tmp, /dev, /proc).
        assert_eq!(
            &lines[6..9],
            ["no list /", "no list /etc", "listed /usr/bin"],
            "{mode:?}"
        );
        assert_eq!(lines[9], "['HOME', 'PATH']", "{mode:?}");
        let n: u32 = lines[10].strip_prefix("spawned ").unwrap().parse().unwrap();
        assert!(n < 16, "{mode:?}: {n} processes");
    }
}

#[test]
fn tier_sandboxed_loopback_only_tmp_only() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    for mode in modes() {
        let r = py(
            mode,
            &["--policy", "sandboxed"],
            &format!("import socket\n\
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); c = socket.create_connection(s.getsockname()); print('loopback')\n\
try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5); print('host reached')\n\
except OSError: print('host unreachable')\n\
open('/tmp/x', 'w').write('x'); print('tmp')\n\
try:\n    open('/usr/x', 'w'); print('usr')\n\
except OSError: print('no usr')\n"),
        );
        assert_eq!(
            r.stdout(),
            "loopback\nhost unreachable\ntmp\nno usr\n",
            "{mode:?}: {}",
            r.stderr()
        );
        let check = cordon(mode)
            .args(["check", "--policy", "sandboxed"])
            .output()
            .unwrap();
        let p: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
        assert_eq!(p["limits"]["pids"], 64);
    }
}

#[test]
fn tier_limited_egress_only_through_the_proxy() {
    for mode in modes() {
        let r = sh(
            mode,
            &["--policy", "limited"],
            "echo proxy=$http_proxy; echo home=$HOME; touch ~/f && echo home-writable",
        );
        assert_eq!(
            r.stdout(),
            "proxy=http://127.0.0.1:3128\nhome=/home/sandbox\nhome-writable\n",
            "{mode:?}: {}",
            r.stderr()
        );
        let check = cordon(mode)
            .args(["check", "--policy", "limited"])
            .output()
            .unwrap();
        let p: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
        assert_eq!(p["network"]["mode"], "proxy");
        assert!(
            p["network"]["allow"].is_null(),
            "no target until --allow-net: {}",
            p["network"]
        );
        assert_eq!(p["limits"]["pids"], 256);
    }
}

#[test]
fn tier_standard_shares_the_host_network() {
    require!("python3", have_python(), "needs /usr/bin/python3");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            use std::io::Write;
            let mut c = c;
            let _ = c.write_all(b"from-host");
        }
    });
    for mode in modes() {
        let mut c = cordon(mode);
        c.env("TZ", "UTC").env("SECRET_TOKEN", "x");
        let r = run_with(
            c,
            &["--policy", "standard"],
            &[
                "/usr/bin/python3",
                "-c",
                &format!(
                    "import socket, os\n\
print(socket.create_connection(('127.0.0.1', {port}), timeout=10).recv(100).decode())\n\
print(os.environ.get('TZ'), os.environ.get('SECRET_TOKEN'))\n\
open(os.environ['HOME'] + '/f', 'w').write('x'); print('home')\n"
                ),
            ],
        );
        assert_eq!(
            r.stdout(),
            "from-host\nUTC None\nhome\n",
            "{mode:?}: {}",
            r.stderr()
        );
    }
}

#[test]
fn every_built_in_policy_is_in_the_manual_and_a_file() {
    let root = env!("CARGO_MANIFEST_DIR");
    let page = std::fs::read_to_string(format!("{root}/man/cordon-policy.5")).unwrap();
    let named = &page[page.find(".SH \"NAMED POLICIES\"").expect("NAMED POLICIES")..];
    let tiers = &page[page.find(".SH TIERS").expect("TIERS")..];
    for (name, text) in cordon::policy::named::BUILTIN {
        let roff = name.replace('-', "\\-");
        assert!(
            named.contains(&format!(".B {roff}\n")) || named.contains(&format!(".BR {roff} ")),
            "NAMED POLICIES does not describe {name}"
        );
        let file = std::fs::read_to_string(format!("{root}/policies/{name}.json")).unwrap();
        assert_eq!(&file, text, "{name}: the built-in text is policies/{name}.json");
    }
    for tier in ["untrusted", "sandboxed", "limited", "standard"] {
        assert!(
            tiers.contains(&format!(".TP\n.B {tier}\n")),
            "TIERS has no {tier}"
        );
    }
}
