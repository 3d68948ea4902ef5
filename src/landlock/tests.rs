use super::*;

fn section(json: &str) -> LandlockPolicy {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

const FULL: &str = r#"{"read": ["/usr"], "write": ["/tmp"], "execute": ["/usr/bin/sh"],
                       "tcp_connect": [443], "tcp_bind": [], "scope": ["abstract_unix_socket", "signal"]}"#;

#[test]
fn strict_refuses_what_the_abi_cannot_enforce_and_names_it() {
    let s = section(FULL);
    for (abi, missing) in [
        (
            0,
            vec![
                "filesystem access control",
                "truncate",
                "ioctl_dev",
                "TCP connect",
                "TCP bind",
                "scope signal",
            ],
        ),
        (
            2,
            vec![
                "truncate",
                "ioctl_dev",
                "TCP connect",
                "TCP bind",
                "scope abstract_unix_socket",
            ],
        ),
        (3, vec!["ioctl_dev", "TCP connect", "scope signal"]),
        (4, vec!["ioctl_dev", "scope signal"]),
        (5, vec!["scope abstract_unix_socket", "scope signal"]),
    ] {
        let e = s.prepare(abi, "p.json").unwrap_err();
        assert_eq!(e.path, "landlock");
        for m in missing {
            assert!(
                e.message.contains(m),
                "ABI {abi}: {m} missing from: {}",
                e.message
            );
        }
        assert!(e.message.contains("best_effort"), "{}", e.message);
    }
    let (plan, unenforced) = s.prepare(6, "p.json").unwrap();
    assert!(unenforced.is_empty());
    let plan = plan.unwrap();
    assert_eq!(plan.attr.handled_access_fs, (1 << 16) - 1);
    assert_eq!(plan.attr.handled_access_net, net::BIND_TCP | net::CONNECT_TCP);
    assert_eq!(plan.attr.scoped, scope::ABSTRACT_UNIX_SOCKET | scope::SIGNAL);
    assert_eq!(plan.attr_size, 24);
    assert_eq!(plan.ports, vec![(443, net::CONNECT_TCP)]);
}

#[test]
fn best_effort_keeps_what_the_abi_has_and_lists_the_rest() {
    let mut s = section(FULL);
    s.compatibility = Compatibility::BestEffort;
    let (plan, unenforced) = s.prepare(2, "p.json").unwrap();
    let plan = plan.unwrap();
    // ABI 2: v1 rights and refer; no truncate, no ioctl_dev, no TCP, no scopes.
    assert_eq!(plan.attr.handled_access_fs, (1 << 14) - 1);
    assert_eq!(plan.attr.handled_access_net, 0);
    assert_eq!(plan.attr.scoped, 0);
    assert_eq!(plan.attr_size, 8);
    assert!(plan.ports.is_empty());
    let write = plan
        .paths
        .iter()
        .find(|r| r.field == "landlock.write[0]")
        .unwrap();
    assert_eq!(write.access & fs::TRUNCATE, 0);
    assert_ne!(write.access & fs::REFER, 0);
    let text = unenforced.join("\n");
    for m in [
        "truncate needs Landlock ABI 3",
        "ioctl_dev",
        "TCP connect rules needs Landlock ABI 4",
        "scope signal needs Landlock ABI 6",
    ] {
        assert!(text.contains(m), "{m}: {text}");
    }
    // No Landlock at all: nothing to apply, everything listed.
    let (plan, unenforced) = s.prepare(0, "p.json").unwrap();
    assert!(plan.is_none());
    assert!(unenforced.iter().any(|u| u.contains("filesystem access control")));
}

#[test]
fn kinds_map_to_rights() {
    let s = section(r#"{"read": ["/a"], "write": ["/b"], "execute": ["/c"]}"#);
    let (plan, _) = s.prepare(7, "p.json").unwrap();
    let plan = plan.unwrap();
    let access = |f: &str| plan.paths.iter().find(|r| r.field == f).unwrap().access;
    assert_eq!(access("landlock.read[0]"), fs::READ_FILE | fs::READ_DIR);
    assert_eq!(access("landlock.execute[0]"), fs::EXECUTE | fs::READ_FILE);
    let w = access("landlock.write[0]");
    for bit in [
        fs::WRITE_FILE,
        fs::READ_FILE,
        fs::MAKE_REG,
        fs::REMOVE_FILE,
        fs::TRUNCATE,
        fs::REFER,
        fs::IOCTL_DEV,
    ] {
        assert_ne!(w & bit, 0, "{bit:#x}");
    }
    assert_eq!(w & fs::EXECUTE, 0, "write must not imply execute");
    // No TCP or scope fields: not handled, so the attr is the 8-byte v1 one.
    assert_eq!(plan.attr.handled_access_net, 0);
    assert_eq!(plan.attr_size, 8);
}

#[test]
fn tcp_only_sections_need_no_filesystem_rights() {
    let s = section(r#"{"tcp_connect": [80, 443]}"#);
    assert_eq!(s.needs(), vec![("TCP connect rules".to_string(), 4)]);
    let (plan, _) = s.prepare(4, "p.json").unwrap();
    let plan = plan.unwrap();
    assert_eq!(plan.attr.handled_access_fs, 0);
    assert_eq!(plan.attr.handled_access_net, net::CONNECT_TCP);
    assert_eq!(plan.attr_size, 16);
}

#[test]
fn bad_sections_name_the_field() {
    for (json, path) in [
        (r#"{"read": ["usr"]}"#, "landlock.read[0]"),
        (r#"{"write": ["/tmp/../etc"]}"#, "landlock.write[0]"),
        (r#"{"tcp_connect": [443, 0]}"#, "landlock.tcp_connect[1]"),
    ] {
        let e = section(json).check("p.json").unwrap_err();
        assert_eq!(e.path, path, "{json}");
    }
    for bad in [
        r#"{"read": "/usr"}"#,
        r#"{"scope": ["signals"]}"#,
        r#"{"compatibility": "lenient"}"#,
        r#"{"exec": []}"#,
        r#"{"tcp_connect": [70000]}"#,
    ] {
        assert!(serde_json::from_str::<LandlockPolicy>(bad).is_err(), "{bad}");
    }
}
