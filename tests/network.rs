//! The network section and its flags: `--net none` has no route out,
//! `--net host` and `--share-net` reach the host's network and say so in the
//! outcome, bad patterns are refused with their position (policy file) or
//! their flag, and mode proxy has no direct route out (and is refused by
//! `cordon exec`, which has no supervisor). Every case as root and
//! rootless.

mod common;
use common::*;

use std::net::TcpListener;

/// Everything needed to diagnose a run.
fn diag(mode: Mode, r: &Run) -> String {
    format!(
        "mode: {mode:?}\nexit: {:?}\nstdout:\n{}\nstderr:\n{}\noutcome: {:?}",
        r.output.status,
        r.stdout(),
        r.stderr(),
        r.status
    )
}

/// A bash script that connects to 127.0.0.1:PORT and prints `connected` or
/// `failed`.
const CONNECT: &str = "if exec 3<>/dev/tcp/127.0.0.1/$1; then echo connected; else echo failed; fi";

/// Run the connect script in `mode` with `args` against a listener on the
/// host's loopback.
fn connect(mode: Mode, args: &[&str], port: u16) -> Run {
    run(
        mode,
        args,
        &["/usr/bin/bash", "-c", CONNECT, "connect", &port.to_string()],
    )
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("host listener");
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn network_mode(r: &Run) -> Option<String> {
    r.status
        .as_ref()
        .and_then(|s| s["network"]["mode"].as_str())
        .map(String::from)
}

#[test]
fn net_none_has_no_route_to_the_host() {
    let (_l, port) = listener();
    for mode in modes() {
        for args in [&[][..], &["--net", "none"][..]] {
            let r = connect(mode, args, port);
            let d = diag(mode, &r);
            assert_eq!(r.code(), 0, "{d}");
            assert_eq!(
                r.stdout().trim(),
                "failed",
                "{args:?}: reached the host's listener\n{d}"
            );
            assert_eq!(network_mode(&r).as_deref(), Some("none"), "{d}");
        }
    }
}

#[test]
fn net_host_and_share_net_reach_the_host() {
    let (_l, port) = listener();
    for mode in modes() {
        for args in [
            &["--net", "host"][..],
            &["--share-net"][..],
            &["--share-net", "--net", "host"][..],
        ] {
            let r = connect(mode, args, port);
            let d = diag(mode, &r);
            assert_eq!(r.code(), 0, "{d}");
            assert_eq!(r.stdout().trim(), "connected", "{args:?}\n{d}");
            assert_eq!(network_mode(&r).as_deref(), Some("host"), "{args:?}\n{d}");
        }
    }
}

#[test]
fn policy_network_section_decides_the_mode() {
    let (_l, port) = listener();
    let dir = TempDir::new("netpolicy");
    let host = write_policy(
        &dir,
        "host.json",
        r#"{"version": 1, "mounts": [{"bind": "/usr"}, {"symlink": "/bin", "target": "usr/bin"},
            {"symlink": "/lib", "target": "usr/lib"}, {"symlink": "/lib64", "target": "usr/lib64"},
            {"tmpfs": "/tmp"}, {"proc": "/proc"}, {"dev": "/dev"}],
            "network": {"mode": "host"}}"#,
    );
    // No section and no net namespace: the host's network, recorded.
    let no_net = write_policy(
        &dir,
        "nonet.json",
        r#"{"version": 1, "namespaces": ["user", "mount", "pid", "ipc", "uts", "cgroup"],
            "mounts": [{"bind": "/usr"}, {"symlink": "/bin", "target": "usr/bin"},
            {"symlink": "/lib", "target": "usr/lib"}, {"symlink": "/lib64", "target": "usr/lib64"},
            {"tmpfs": "/tmp"}, {"proc": "/proc"}, {"dev": "/dev"}]}"#,
    );
    for mode in modes() {
        let r = connect(mode, &["--policy", &no_net], port);
        let d = diag(mode, &r);
        assert_eq!(r.stdout().trim(), "connected", "{d}");
        assert_eq!(network_mode(&r).as_deref(), Some("host"), "{d}");
    }
    for mode in modes() {
        let r = connect(mode, &["--policy", &host], port);
        let d = diag(mode, &r);
        assert_eq!(r.stdout().trim(), "connected", "{d}");
        assert_eq!(network_mode(&r).as_deref(), Some("host"), "{d}");
        // --net none on top of it wins: own namespace again.
        let r = connect(mode, &["--policy", &host, "--net", "none"], port);
        let d = diag(mode, &r);
        assert_eq!(r.stdout().trim(), "failed", "{d}");
        assert_eq!(network_mode(&r).as_deref(), Some("none"), "{d}");
    }
}

#[test]
fn bad_pattern_in_a_policy_file_has_its_position() {
    let dir = TempDir::new("netbad");
    let p = write_policy(
        &dir,
        "bad.json",
        "{\"version\": 1,\n \"network\": {\n  \"mode\": \"proxy\",\n  \"allow\": [\"pypi.org\",\n    \"0177.0.0.1:443\"]}}",
    );
    for mode in modes() {
        let r = run(mode, &["--policy", &p], &["/bin/true"]);
        let d = diag(mode, &r);
        assert_eq!(r.code(), 125, "{d}");
        let err = r.stderr();
        assert!(
            err.contains(&format!(
                "{p}:5:20: network.allow[1]: invalid pattern \"0177.0.0.1:443\""
            )),
            "{d}"
        );
        assert!(err.contains("non-standard form"), "{d}");
        // cordon check says the same.
        let out = cordon(mode).args(["check", "--policy", &p]).output().unwrap();
        assert_eq!(out.status.code(), Some(125));
        assert!(String::from_utf8_lossy(&out.stderr).contains(":5:20: network.allow[1]"));
    }
}

#[test]
fn rules_outside_proxy_mode_are_refused_with_the_field() {
    let dir = TempDir::new("netrules");
    let p = write_policy(
        &dir,
        "rules.json",
        "{\"version\": 1,\n \"network\": {\"mode\": \"host\",\n  \"allow\": [\"pypi.org\"]}}",
    );
    for mode in modes() {
        let r = run(mode, &["--policy", &p], &["/bin/true"]);
        let d = diag(mode, &r);
        assert_eq!(r.code(), 125, "{d}");
        assert!(
            r.stderr().contains(&format!(
                "{p}:3:12: network.allow: rules apply only in mode proxy"
            )),
            "{d}"
        );
    }
}

#[test]
fn bad_allow_net_names_the_flag() {
    for mode in modes() {
        for (args, want) in [
            (
                &["--allow-net", "127.1"][..],
                "--allow-net: invalid pattern \"127.1\"",
            ),
            (
                &["--allow-net", "example.com:99999"][..],
                "--allow-net: invalid pattern",
            ),
            (&["--allow-net", "bücher.example"][..], "IDNA"),
            (
                &["--net", "host", "--allow-net", "a.com"][..],
                "--allow-net needs mode proxy, but --net asks for mode host",
            ),
            (
                &["--share-net", "--allow-net", "a.com"][..],
                "but --share-net asks for mode host",
            ),
            (
                &["--share-net", "--net", "none"][..],
                "--net none contradicts --share-net",
            ),
        ] {
            let r = run(mode, args, &["/bin/true"]);
            let d = diag(mode, &r);
            assert_eq!(r.code(), 125, "{args:?}\n{d}");
            assert!(r.stderr().contains(want), "{args:?}: want {want:?}\n{d}");
            assert!(r.stderr().contains("<command line>"), "{d}");
        }
        // A mode clap does not know names the flag too.
        let r = run(mode, &["--net", "bridge"], &["/bin/true"]);
        assert_ne!(r.code(), 0);
        assert!(r.stderr().contains("--net"), "{}", r.stderr());
        assert!(
            r.stderr().contains("\"none\", \"host\" or \"proxy\""),
            "{}",
            r.stderr()
        );
    }
}

#[test]
fn proxy_mode_runs_without_a_direct_route() {
    // Mode proxy is built (tests/proxy.rs tests the proxy itself): it
    // keeps the sandbox's own netns, so the host's listener is out of
    // reach without the proxy, and the outcome says so.
    let (_l, port) = listener();
    for mode in modes() {
        for args in [&["--net", "proxy"][..], &["--allow-net", "example.com:443"][..]] {
            let r = connect(mode, args, port);
            let d = diag(mode, &r);
            assert_eq!(r.code(), 0, "{args:?}\n{d}");
            assert_eq!(
                r.stdout().trim(),
                "failed",
                "{args:?}: reached the host directly\n{d}"
            );
            assert_eq!(network_mode(&r).as_deref(), Some("proxy"), "{d}");
        }
        // cordon check accepts it.
        let out = cordon(mode).args(["check", "--net", "proxy"]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // cordon exec has no supervisor to run the proxy: refused, naming
        // the field.
        let out = cordon(mode)
            .args(["exec", "--net", "proxy", "--", "/bin/true"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(
            err.contains("network.mode") && err.contains("supervisor"),
            "{err}"
        );
    }
}

#[test]
fn check_prints_the_effective_network() {
    for mode in modes() {
        let out = cordon(mode).args(["check", "--net", "host"]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["network"]["mode"], "host");
        assert!(!v["namespaces"].as_array().unwrap().iter().any(|n| n == "net"));
        let out = cordon(mode).args(["check", "--net", "none"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["network"]["mode"], "none");
        assert!(v["namespaces"].as_array().unwrap().iter().any(|n| n == "net"));
    }
}

#[test]
fn library_builder_sets_the_network() {
    use cordon::policy::NetMode;
    use cordon::{PolicyBuilder, Sandbox};
    let p = PolicyBuilder::default_policy()
        .network_mode(NetMode::Host)
        .build()
        .unwrap();
    assert_eq!(p.network_mode(), NetMode::Host);
    assert!(!p.has_namespace(cordon::policy::Namespace::Net));
    let p = PolicyBuilder::default_policy().share_net().build().unwrap();
    assert_eq!(p.network_mode(), NetMode::Host);
    // allow_net implies proxy, which needs the supervisor.
    let p = PolicyBuilder::default_policy()
        .allow_net("api.example.com:443")
        .build()
        .unwrap();
    assert_eq!(p.network_mode(), NetMode::Proxy);
    // A sandbox runs it.
    let child = Sandbox::new(p)
        .spawn(&["/bin/true"])
        .expect("a proxy-mode sandbox");
    let out = child.wait().expect("wait");
    assert_eq!(out.network.as_ref().map(|n| n.mode), Some("proxy"));
    assert_eq!(
        out.network.and_then(|n| n.proxy),
        Some(cordon::outcome::ProxyCounts::default())
    );
    // The pre-exec API has no supervisor: refused, naming the field.
    let p = PolicyBuilder::exec_policy()
        .allow_net("a.example")
        .build()
        .unwrap();
    assert_eq!(
        cordon::prepare(&p).err().map(|e| e.path),
        Some("network.mode".to_string())
    );
    // Contradictions and bad patterns name the builder method.
    let e = PolicyBuilder::default_policy()
        .network_mode(NetMode::Host)
        .allow_net("a.example")
        .build()
        .unwrap_err();
    assert!(e.message.contains("network_mode()"), "{e}");
    let e = PolicyBuilder::default_policy()
        .allow_net("127.1")
        .build()
        .unwrap_err();
    assert_eq!(e.path, "allow_net(\"127.1\")");
}
