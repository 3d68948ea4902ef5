//! Ordinary programs run under the default policy as they run on the host:
//! a JVM (whose configuration is symlinked from /usr into /etc), node,
//! python, TLS clients with the system CA store (also in network mode
//! proxy), and the user-name lookups of the generated /etc/passwd.

mod common;

use common::*;
use std::path::Path;

/// The default sandbox, and the default sandbox in network mode proxy.
const NETS: [&[&str]; 2] = [&[], &["--net", "proxy"]];

fn have(path: &str) -> bool {
    Path::new(path).exists()
}

fn check(mode: Mode, net: &[&str], r: &Run, want: &str) {
    let d = format!(
        "{mode:?} {net:?}: exit {:?}\nstdout: {}\nstderr: {}",
        r.output.status,
        r.stdout(),
        r.stderr()
    );
    assert_eq!(r.output.status.code(), Some(0), "{d}");
    assert!(r.stdout().contains(want), "{d}");
}

#[test]
fn a_jvm_runs_a_single_file_source_program() {
    require!("java", have("/usr/bin/java"), "java is not installed");
    let dir = TempDir::new("java");
    std::fs::write(
        dir.path().join("H.java"),
        "public class H { public static void main(String[] a) { \
         System.out.println(\"hello from \" + System.getProperty(\"java.version\")); } }\n",
    )
    .expect("write H.java");
    let bind = format!("{}:/w", dir.str());
    for mode in modes() {
        for net in NETS {
            let mut args = vec!["--ro-bind", &bind];
            args.extend_from_slice(net);
            let r = run(mode, &args, &["java", "/w/H.java"]);
            check(mode, net, &r, "hello from ");
        }
    }
}

#[test]
fn node_runs() {
    require!("node", have("/usr/bin/node"), "node is not installed");
    for mode in modes() {
        for net in NETS {
            let r = run(
                mode,
                net,
                &[
                    "node",
                    "-e",
                    "console.log('node ' + require('os').userInfo().username)",
                ],
            );
            check(mode, net, &r, "node sandbox");
        }
    }
}

#[test]
fn python_runs_with_its_standard_library() {
    require!("python3", have_python(), "python3 is not installed");
    let script = "import json, sqlite3, ssl, hashlib, locale, mimetypes, socket; \
                  db = sqlite3.connect(':memory:'); \
                  print('python', json.dumps(db.execute('select 1+1').fetchone()), \
                  mimetypes.guess_type('a.json')[0], socket.getservbyname('https'))";
    for mode in modes() {
        for net in NETS {
            let r = py(mode, net, script);
            check(mode, net, &r, "python [2] application/json 443");
        }
    }
}

#[test]
fn tls_clients_find_the_system_ca_store() {
    require!(
        "ca-certificates",
        have("/etc/ssl/certs/ca-certificates.crt"),
        "/etc/ssl/certs/ca-certificates.crt is missing (package ca-certificates)"
    );
    require!("openssl", have("/usr/bin/openssl"), "openssl is not installed");
    require!("python3", have_python(), "python3 is not installed");
    // A system root (a symlink into /usr/share/ca-certificates on Debian):
    // `openssl verify` finds its issuer, itself, only in the system store.
    let root = std::fs::read_dir("/etc/ssl/certs")
        .expect("read /etc/ssl/certs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .min()
        .expect("a root certificate in /etc/ssl/certs");
    let root = root.to_str().expect("utf-8 path");
    let script = format!(
        "test -r /etc/ssl/certs/ca-certificates.crt && echo bundle readable; \
         openssl verify {root}; \
         python3 -c 'import ssl; n = len(ssl.create_default_context().get_ca_certs()); print(\"python roots\", n > 50)'"
    );
    for mode in modes() {
        for net in NETS {
            let r = sh(mode, net, &script);
            check(mode, net, &r, "bundle readable\n");
            check(mode, net, &r, &format!("{root}: OK\n"));
            check(mode, net, &r, "python roots True\n");
        }
    }
}

#[test]
fn whoami_names_the_sandbox_identity() {
    require!("python3", have_python(), "python3 is not installed");
    let script = "whoami; id -un; id -gn; python3 -c 'import getpass, os; print(getpass.getuser(), os.path.expanduser(\"~\"))'";
    for mode in modes() {
        let r = sh(mode, &[], script);
        let d = diag(mode, &r);
        assert_eq!(r.stdout(), "sandbox\nsandbox\nsandbox\nsandbox /tmp\n", "{d}");
    }
}

#[test]
fn a_policy_that_binds_passwd_or_turns_it_off_gets_no_generated_one() {
    let dir = TempDir::new("passwd");
    let own = dir.path().join("passwd");
    std::fs::write(&own, "builder:x:1000:1000::/tmp:/bin/sh\n").expect("write passwd");
    set_mode(&own, 0o644);
    let bind = format!("{}:/etc/passwd", own.display());
    let off = write_policy(
        &dir,
        "off.json",
        r#"{"version": 1, "identity": {"passwd": false},
            "mounts": [{"bind": "/usr"}, {"symlink": "/bin", "target": "usr/bin"},
                       {"symlink": "/lib", "target": "usr/lib"}, {"symlink": "/lib64", "target": "usr/lib64"}]}"#,
    );
    for mode in modes() {
        let r = run(mode, &["--ro-bind", &bind], &["whoami"]);
        let d = diag(mode, &r);
        assert_eq!(r.stdout(), "builder\n", "{d}");
        let r = sh(
            mode,
            &["--policy", &off],
            "test -e /etc/passwd && echo present; whoami",
        );
        let d = diag(mode, &r);
        assert!(!r.stdout().contains("present"), "{d}");
        assert_ne!(r.output.status.code(), Some(0), "{d}");
        assert!(r.stderr().contains("cannot find name for user ID 1000"), "{d}");
    }
}

fn diag(mode: Mode, r: &Run) -> String {
    format!(
        "{mode:?}: exit {:?}\nstdout: {}\nstderr: {}",
        r.output.status,
        r.stdout(),
        r.stderr()
    )
}

#[test]
fn the_host_tls_keys_are_not_bound_with_the_store() {
    require!(
        "ssl-private",
        have("/etc/ssl/private"),
        "/etc/ssl/private is missing"
    );
    for mode in modes() {
        let r = sh(mode, &[], "test -e /etc/ssl/private && echo present; echo done");
        assert_eq!(r.stdout(), "done\n", "{}", diag(mode, &r));
        let r = run(mode, &["--ro-bind", "/etc/ssl"], &["true"]);
        let d = diag(mode, &r);
        assert_eq!(r.output.status.code(), Some(125), "{d}");
        assert!(
            r.stderr()
                .contains("binding /etc/ssl would expose the sensitive path /etc/ssl/private"),
            "{d}"
        );
    }
}

#[test]
fn localhost_and_the_hostname_resolve_without_dns() {
    require!("python3", have_python(), "python3 is not installed");
    let script = "import socket; print(socket.getaddrinfo('localhost', 80, socket.AF_INET)[0][4][0], \
                  socket.gethostname(), socket.gethostbyname(socket.gethostname()))";
    for mode in modes() {
        for net in NETS {
            let r = py(mode, net, script);
            check(mode, net, &r, "127.0.0.1 cordon 127.0.1.1\n");
        }
    }
}
