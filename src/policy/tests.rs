use super::*;

fn parse(json: &str) -> Result<Policy, PolicyError> {
    Policy::from_json("p.json", json)
}

#[test]
fn builtin_default_policy_is_valid_and_confined() {
    let p = Policy::builtin_default().expect("default policy parses");
    for ns in Namespace::ALL {
        assert!(p.has_namespace(ns), "default lacks {}", ns.name());
    }
    for m in &p.mounts {
        if let Mount::Bind { readonly, src, .. } = m {
            assert!(*readonly, "default policy binds {src} writable");
        }
    }
    assert!(p.env.clear);
    assert!(!p.limits.core_dumps);
}

#[test]
fn minimal_policy_gets_safe_defaults() {
    let p = parse(r#"{"version": 1}"#).expect("valid");
    assert_eq!(p.namespaces, Namespace::ALL.to_vec());
    assert_eq!(p.identity.uid, 1000);
    assert_eq!(p.cwd, "/");
    assert!(p.env.clear);
}

#[test]
fn unknown_field_is_refused_with_position_and_path() {
    let e = parse("{\n  \"version\": 1,\n  \"limits\": {\"wall_tim\": \"1s\"}\n}").unwrap_err();
    assert_eq!(e.path, "limits.wall_tim");
    assert_eq!(e.position.map(|p| p.0), Some(3));
    assert!(e.message.contains("unknown field `wall_tim`"), "{}", e.message);
    assert!(
        e.message.contains("wall_time"),
        "expected fields listed: {}",
        e.message
    );
    let shown = e.to_string();
    assert!(shown.starts_with("p.json:3:"), "{shown}");
}

#[test]
fn unknown_top_level_and_mount_fields_are_refused() {
    assert_eq!(
        parse(r#"{"version":1,"colour":"red"}"#).unwrap_err().path,
        "colour"
    );
    let e = parse(r#"{"version":1,"mounts":[{"tmpfs":"/t","sise":"1M"}]}"#).unwrap_err();
    assert_eq!(e.path, "mounts[0].sise");
    assert!(e.message.contains("unknown field `sise`"), "{}", e.message);
}

#[test]
fn bad_size_names_field_and_expected_form() {
    let e = parse("{\"version\":1,\n\"mounts\":[{\"tmpfs\":\"/t\",\"size\":\"64Q\"}]}").unwrap_err();
    assert_eq!(e.path, "mounts[0].size");
    assert_eq!(e.position.map(|p| p.0), Some(2));
    assert!(
        e.message.contains("64Q") && e.message.contains("64M"),
        "{}",
        e.message
    );
}

#[test]
fn bad_duration_names_field() {
    let e = parse(r#"{"version":1,"limits":{"wall_time":"60"}}"#).unwrap_err();
    assert_eq!(e.path, "limits.wall_time");
    assert!(e.message.contains("unit"), "{}", e.message);
}

#[test]
fn semantic_errors_are_located_in_the_source() {
    let src =
        "{\n \"version\": 1,\n \"mounts\": [\n  {\"proc\": \"/proc\"},\n  {\"bind\": \"relative\"}\n ]\n}";
    let e = parse(src).unwrap_err();
    assert_eq!(e.path, "mounts[1].bind");
    assert_eq!(e.position, Some((5, 12)));
}

#[test]
fn version_must_be_one() {
    let e = parse(r#"{"version": 2}"#).unwrap_err();
    assert_eq!(e.path, "version");
    assert!(e.message.contains("version 1"));
    assert_eq!(parse("{}").unwrap_err().message, "missing field `version`");
}

#[test]
fn required_namespaces() {
    // pid is required for supervised runs only (cordon exec runs without).
    let no_pid = parse(r#"{"version":1,"namespaces":["user","mount"]}"#).unwrap();
    let e = no_pid.check_supervised("p.json").unwrap_err();
    assert!(
        e.message.contains("\"pid\"") && e.message.contains("cordon exec"),
        "{}",
        e.message
    );
    for missing in ["user", "mount"] {
        let list: Vec<&str> = ["user", "mount", "pid", "net"]
            .into_iter()
            .filter(|n| *n != missing)
            .collect();
        let json = format!(
            r#"{{"version":1,"namespaces":{}}}"#,
            serde_json::to_string(&list).unwrap()
        );
        let e = parse(&json).unwrap_err();
        assert!(e.message.contains(missing), "{}", e.message);
    }
    assert!(parse(r#"{"version":1,"namespaces":["user","mount","pid","pid"]}"#).is_err());
    assert!(parse(r#"{"version":1,"namespaces":["user","mount","pid","time"]}"#).is_err());
}

#[test]
fn hostname_needs_uts() {
    let e = parse(r#"{"version":1,"namespaces":["user","mount","pid"],"hostname":"x"}"#).unwrap_err();
    assert_eq!(e.path, "hostname");
}

#[test]
fn mount_entries_need_exactly_one_kind_and_only_their_fields() {
    assert!(parse(r#"{"version":1,"mounts":[{}]}"#)
        .unwrap_err()
        .message
        .contains("exactly one"));
    assert!(parse(r#"{"version":1,"mounts":[{"bind":"/a","tmpfs":"/b"}]}"#).is_err());
    let e = parse(r#"{"version":1,"mounts":[{"proc":"/proc","readonly":true}]}"#).unwrap_err();
    assert!(e.message.contains("readonly"), "{}", e.message);
    assert!(parse(r#"{"version":1,"mounts":[{"symlink":"/bin"}]}"#).is_err());
}

#[test]
fn mount_paths_must_be_absolute_and_normalised() {
    for dst in ["work", "/a/../b", "/a/./b", "/a//b", "/a/", "/"] {
        let json = format!(r#"{{"version":1,"mounts":[{{"tmpfs":"{dst}"}}]}}"#);
        assert!(parse(&json).is_err(), "{dst} accepted");
    }
}

#[test]
fn binds_default_to_read_only() {
    let p = parse(r#"{"version":1,"mounts":[{"bind":"/usr"},{"bind":"/srv","to":"/w","readonly":false}]}"#)
        .unwrap();
    assert_eq!(
        p.mounts[0],
        Mount::Bind {
            src: "/usr".into(),
            dst: "/usr".into(),
            readonly: true,
            optional: false,
            exec: true,
            no_symlinks: false,
            owner: None,
            compatibility: Default::default()
        }
    );
    assert_eq!(
        p.mounts[1],
        Mount::Bind {
            src: "/srv".into(),
            dst: "/w".into(),
            readonly: false,
            optional: false,
            exec: false,
            no_symlinks: false,
            owner: None,
            compatibility: Default::default()
        }
    );
}

#[test]
fn tmpfs_defaults_and_mode() {
    let p =
        parse(r#"{"version":1,"mounts":[{"tmpfs":"/t"},{"tmpfs":"/u","size":1024,"mode":"1777"}]}"#).unwrap();
    assert_eq!(
        p.mounts[0],
        Mount::Tmpfs {
            dst: "/t".into(),
            size: DEFAULT_TMPFS_SIZE,
            mode: 0o755,
            exec: false,
            inodes: None
        }
    );
    assert_eq!(
        p.mounts[1],
        Mount::Tmpfs {
            dst: "/u".into(),
            size: Size(1024),
            mode: 0o1777,
            exec: false,
            inodes: None
        }
    );
    assert!(parse(r#"{"version":1,"mounts":[{"tmpfs":"/t","mode":"999"}]}"#).is_err());
    assert!(parse(r#"{"version":1,"mounts":[{"tmpfs":"/t","size":0}]}"#).is_err());
}

#[test]
fn env_names_are_checked() {
    assert_eq!(
        parse(r#"{"version":1,"env":{"keep":["A=B"]}}"#).unwrap_err().path,
        "env.keep[0]"
    );
    assert_eq!(
        parse(r#"{"version":1,"env":{"set":{"":"x"}}}"#).unwrap_err().path,
        "env.set."
    );
}

#[test]
fn limits_parse_and_zero_is_refused() {
    let p = parse(
        r#"{"version":1,"limits":{"wall_time":"60s","cpu_time":"1500ms","file_size":"16M","open_files":256,"processes":64,"address_space":"4G","core_dumps":false}}"#,
    )
    .unwrap();
    assert_eq!(p.limits.file_size, Some(Size(16 << 20)));
    assert_eq!(p.limits.cpu_time.map(|d| d.whole_seconds_ceil()), Some(2));
    for bad in [
        r#""wall_time":"0s""#,
        r#""open_files":0"#,
        r#""processes":0"#,
        r#""open_files":-1"#,
    ] {
        assert!(
            parse(&format!(r#"{{"version":1,"limits":{{{bad}}}}}"#)).is_err(),
            "{bad} accepted"
        );
    }
}

#[test]
fn effective_policy_round_trips_through_json() {
    let p = Policy::builtin_default().unwrap();
    let again = parse(&p.to_json_pretty()).expect("printed policy parses");
    assert_eq!(again, p);
}

#[test]
fn overrides_extend_and_replace() {
    use overrides::*;
    let mut p = Policy::builtin_default().unwrap();
    let o = Overrides {
        mounts: vec![
            (
                "--bind /srv:/w".into(),
                parse_bind("--bind", "/srv:/w", false, false).unwrap(),
            ),
            ("--tmpfs /tmp:8M".into(), parse_tmpfs("/tmp:8M").unwrap()),
        ],
        cwd: Some("/w".into()),
        env: vec!["A=1".into(), "TERM".into()],
        hostname: Some("h".into()),
        wall_time: Some("2s".parse().unwrap()),
        share_net: true,
        uid: Some(5),
        gid: Some(6),
        ..Overrides::default()
    };
    o.apply(&mut p, "x").unwrap();
    assert!(p.mounts.contains(&Mount::Bind {
        src: "/srv".into(),
        dst: "/w".into(),
        readonly: false,
        optional: false,
        exec: false,
        no_symlinks: false,
        owner: None,
        compatibility: Default::default()
    }));
    let tmps: Vec<_> = p.mounts.iter().filter(|m| m.dst() == "/tmp").collect();
    assert_eq!(
        tmps,
        vec![&Mount::Tmpfs {
            dst: "/tmp".into(),
            size: Size(8 << 20),
            mode: 0o1777,
            exec: false,
            inodes: None
        }]
    );
    assert_eq!(p.cwd, "/w");
    assert_eq!(p.mount_origins.len(), p.mounts.len());
    assert_eq!(
        p.mount_origins.last().cloned().flatten().as_deref(),
        Some("--tmpfs /tmp:8M")
    );
    assert_eq!(p.env.set.get("A").map(String::as_str), Some("1"));
    assert!(!p.has_namespace(Namespace::Net));
    assert_eq!((p.identity.uid, p.identity.gid), (5, 6));
    let mut q = Policy::builtin_default().unwrap();
    let bad = Overrides {
        cwd: Some("rel".into()),
        ..Overrides::default()
    };
    let e = bad.apply(&mut q, "x").unwrap_err();
    assert_eq!(e.path, "cwd");
    assert!(parse_tmpfs("/t:9Q").is_err());
}

#[test]
fn arrays_for_objects_and_trailing_text_are_refused_with_positions() {
    let e = Policy::from_json("p.json", "{\"version\": 1,\n \"identity\": [5, 6]}").unwrap_err();
    assert_eq!(e.path, "identity");
    assert_eq!(e.position, Some((2, 14)));
    assert!(e.message.contains("expected an object"), "{e}");
    let e = Policy::from_json("p.json", "{\"version\": 1}\n{\"version\": 1}").unwrap_err();
    assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
    assert!(e.message.contains("trailing"), "{e}");
    // Arrays where the format has them are fine.
    Policy::from_json(
        "p.json",
        r#"{"version": 1, "namespaces": ["user", "mount", "pid"], "landlock": {"read": ["/"]}}"#,
    )
    .unwrap();
}

#[test]
fn an_array_where_the_format_has_an_object_is_named_by_its_concrete_path() {
    let check = |text: &str| check_arrays(text);
    assert_eq!(check(r#"{"identity": [5]}"#), Err("identity".to_string()));
    // Indexes are the concrete ones; the pattern matched against the
    // format's arrays has them as `[]`.
    assert_eq!(
        check(
            r#"{"seccomp": {"allow": ["read"], "rules": [
                {"syscall": "read", "args": [{"arg": 0}]},
                {"syscall": "write", "args": [{"arg": 0}, [1, "eq", 2]]}]}}"#
        ),
        Err("seccomp.rules[1].args[1]".to_string())
    );
    assert_eq!(
        check(r#"{"mounts": [{"bind": "/a"}], "network": {"mode": "none", "proxy": []}}"#),
        Err("network.proxy".to_string())
    );
    // An array nested in an array where neither level is one of the
    // format's arrays of arrays.
    assert_eq!(
        check(r#"{"landlock": {"read": [["/"]]}}"#),
        Err("landlock.read[0]".to_string())
    );
    // Keys after a checked subtree start again from their own base.
    assert_eq!(
        check(r#"{"env": {"keep": ["A"], "set": {"B": "1"}}, "workspaces": [{"x": {"y": []}}]}"#),
        Err("workspaces[0].x.y".to_string())
    );
    assert_eq!(
        check(r#"{"namespaces": ["user"], "landlock": {"read": ["/"]}}"#),
        Ok(())
    );
    // Keys are matched unescaped; the first offender in the text is named.
    assert_eq!(check(r#"{"mo\u0075nts": [{"bind": "/a"}], "z": null}"#), Ok(()));
    assert_eq!(
        check(r#"{"identit\u0079": [1], "env": []}"#),
        Err("identity".to_string())
    );
    assert_eq!(
        check(r#"{"mounts": [{"bind": "/a", "b": [{"c": 1}]}, {"bind": []}]}"#),
        Err("mounts[0].b".to_string())
    );
    assert_eq!(check("[]"), Err(String::new()));
}

#[test]
fn exec_defaults_follow_readonly_and_tmpfs_is_noexec() {
    let p = parse(
        r#"{"version":1,"mounts":[{"bind":"/a"},{"bind":"/b","readonly":false},
            {"bind":"/c","readonly":false,"exec":true},{"bind":"/d","exec":false},
            {"tmpfs":"/t"},{"tmpfs":"/u","exec":true}]}"#,
    )
    .unwrap();
    let exec: Vec<bool> = p
        .mounts
        .iter()
        .map(|m| match m {
            Mount::Bind { exec, .. } | Mount::Tmpfs { exec, .. } => *exec,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(exec, [true, false, true, false, false, true]);
    // The effective policy round-trips.
    let again = parse(&p.to_json_pretty()).unwrap();
    assert_eq!(again.mounts, p.mounts);
}

#[test]
fn inodes_ptys_and_no_symlinks_are_checked_and_scoped() {
    let p = parse(r#"{"version":1,"mounts":[{"tmpfs":"/t","inodes":500},{"dev":"/dev"},{"bind":"/s","no_symlinks":true}]}"#)
        .unwrap();
    assert!(matches!(
        p.mounts[0],
        Mount::Tmpfs {
            inodes: Some(500),
            ..
        }
    ));
    assert!(matches!(
        p.mounts[1],
        Mount::Dev {
            ptys: DEFAULT_PTYS,
            ..
        }
    ));
    assert!(matches!(
        p.mounts[2],
        Mount::Bind {
            no_symlinks: true,
            ..
        }
    ));
    for (json, path) in [
        (r#"{"tmpfs":"/t","inodes":0}"#, "mounts[0].inodes"),
        (r#"{"tmpfs":"/t","inodes":2000000}"#, "mounts[0].inodes"),
        (r#"{"dev":"/dev","ptys":0}"#, "mounts[0].ptys"),
        (r#"{"dev":"/dev","ptys":5000}"#, "mounts[0].ptys"),
    ] {
        let e = parse(&format!(r#"{{"version":1,"mounts":[{json}]}}"#)).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e:?}");
    }
    for json in [
        r#"{"bind":"/a","inodes":5}"#,
        r#"{"tmpfs":"/t","ptys":5}"#,
        r#"{"tmpfs":"/t","no_symlinks":true}"#,
        r#"{"dev":"/dev","exec":true}"#,
        r#"{"proc":"/proc","exec":true}"#,
    ] {
        let e = parse(&format!(r#"{{"version":1,"mounts":[{json}]}}"#)).unwrap_err();
        assert!(e.message.contains("does not apply"), "{json}: {e:?}");
    }
    assert_eq!(default_tmpfs_inodes(DEFAULT_TMPFS_SIZE), 16384);
    assert_eq!(default_tmpfs_inodes(Size(4096)), 64);
    assert_eq!(default_tmpfs_inodes(Size(1 << 40)), MAX_TMPFS_INODES);
}

#[test]
fn limits_cgroup_versions_parse_and_cli_limits_override_them() {
    use super::overrides::Overrides;
    use super::CgroupVersions;
    let p = parse(
        r#"{"version": 1, "limits": {"pids": 8, "cgroup": "v2_only", "compatibility": "best_effort"}}"#,
    )
    .unwrap();
    assert_eq!(p.limits.cgroup, CgroupVersions::V2Only);
    assert!(parse(r#"{"version": 1, "limits": {"cgroup": "v1"}}"#).is_err());
    assert_eq!(
        parse(r#"{"version": 1}"#).unwrap().limits.cgroup,
        CgroupVersions::Any
    );
    // Without cgroup flags the policy's choice stays.
    let mut q = p.clone();
    Overrides::default().apply(&mut q, "t").unwrap();
    assert_eq!(q.limits.cgroup, CgroupVersions::V2Only);
    // A cgroup limit on the command line is enforced (any version) or refused.
    for o in [
        Overrides {
            pids: Some(64),
            ..Overrides::default()
        },
        Overrides {
            memory: Some(Size(64 << 20)),
            ..Overrides::default()
        },
        Overrides {
            cgroup_parent: Some("/sys/fs/cgroup/x".into()),
            ..Overrides::default()
        },
    ] {
        let mut q = p.clone();
        o.apply(&mut q, "t").unwrap();
        assert_eq!(q.limits.cgroup, CgroupVersions::Any, "{o:?}");
        assert_eq!(
            q.limits.compatibility,
            crate::landlock::Compatibility::Strict,
            "{o:?}"
        );
    }
}

#[test]
fn the_default_policy_limits_every_classic_bomb() {
    for (name, text) in [
        ("default", super::DEFAULT_POLICY_JSON),
        ("exec", super::EXEC_POLICY_JSON),
    ] {
        let l = parse(text).unwrap().limits;
        assert!(l.processes.is_some() && l.address_space.is_some(), "{name}");
        assert!(l.file_size.is_some() && l.cpu_time.is_some(), "{name}");
    }
    let l = Policy::builtin_default().unwrap().limits;
    assert!(l.wall_time.is_some() && l.memory.is_some() && l.pids.is_some());
    assert_eq!(l.cgroup, super::CgroupVersions::V2Only);
    // Where the cgroup holds, it refuses a fork before RLIMIT_NPROC does,
    // so the outcome can name it.
    assert!(l.pids < l.processes);
    assert_eq!(l.compatibility, crate::landlock::Compatibility::BestEffort);
}

#[test]
fn bind_owner_parses_and_round_trips() {
    let p = Policy::from_json(
        "t",
        r#"{"version":1,"mounts":[
            {"bind":"/srv","to":"/a","readonly":false,"owner":"1234:5678","compatibility":"best_effort"},
            {"bind":"/srv","to":"/b","owner":"source"},
            {"bind":"/srv","to":"/c","readonly":false,"owner":"sandbox"}]}"#,
    )
    .unwrap();
    let owners: Vec<_> = p
        .mounts
        .iter()
        .map(|m| match m {
            Mount::Bind {
                owner, compatibility, ..
            } => (*owner, *compatibility),
            _ => unreachable!(),
        })
        .collect();
    use crate::landlock::Compatibility::*;
    use crate::policy::BindOwner::*;
    assert_eq!(
        owners,
        vec![
            (Some(Ids(1234, 5678)), BestEffort),
            (Some(Source), Strict),
            (Some(Sandbox), Strict)
        ]
    );
    let again = Policy::from_json("t", &serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(again.mounts, p.mounts);
    for bad in [
        r#""owner":"1234""#,
        r#""owner":"a:b""#,
        r#""owner":"1:4294967295""#,
    ] {
        let e = Policy::from_json(
            "t",
            &format!(r#"{{"version":1,"mounts":[{{"bind":"/srv",{bad}}}]}}"#),
        )
        .unwrap_err();
        assert!(e.message.contains("invalid owner"), "{bad}: {e:?}");
    }
    let e = Policy::from_json("t", r#"{"version":1,"mounts":[{"tmpfs":"/t","owner":"1:1"}]}"#).unwrap_err();
    assert!(e.message.contains("\"owner\" does not apply"), "{e:?}");
}

#[test]
fn network_section_parses_and_defaults() {
    let p = parse(r#"{"version": 1}"#).unwrap();
    assert_eq!(p.network, None);
    assert_eq!(p.network_mode(), NetMode::None);
    let p = parse(r#"{"version": 1, "namespaces": ["user", "mount", "pid"]}"#).unwrap();
    assert_eq!(
        p.network_mode(),
        NetMode::Host,
        "no net namespace, no section: host"
    );
    let p = parse(
        r#"{"version": 1, "network": {"mode": "proxy",
            "allow": ["api.example.com:443", "*.pythonhosted.org:443", "pypi.org", "10.20.0.0/16:8080", "[2001:db8::1]:443"],
            "deny": ["metadata.internal"], "max_connections": 8, "connect_timeout": "2s",
            "idle_timeout": "5m", "dns": false, "resolve": {"pypi.org": "10.0.0.5"}}}"#,
    )
    .unwrap();
    let n = p.network.as_ref().unwrap();
    assert_eq!(n.mode, NetMode::Proxy);
    assert_eq!(n.allow.len(), 5);
    assert_eq!(n.allow[1].to_string(), "*.pythonhosted.org:443");
    assert_eq!(n.max_connections, 8);
    assert!(!n.dns);
    // The effective policy prints and parses back to the same.
    assert_eq!(parse(&p.to_json_pretty()).unwrap(), p);
}

#[test]
fn network_mode_host_drops_the_net_namespace() {
    let p = parse(r#"{"version": 1, "network": {"mode": "host"}}"#).unwrap();
    assert!(!p.has_namespace(Namespace::Net));
    assert_eq!(p.network_mode(), NetMode::Host);
    // none and proxy need it.
    for mode in ["none", "proxy"] {
        let e = parse(&format!(
            "{{\"version\": 1, \"namespaces\": [\"user\", \"mount\", \"pid\"],\n \"network\": {{\"mode\": \"{mode}\"}}}}"
        ))
        .unwrap_err();
        assert_eq!(e.path, "network.mode");
        assert_eq!(e.position, Some((2, 22)));
        assert!(e.message.contains("needs the \"net\" namespace"), "{}", e.message);
    }
    // A policy built by hand and checked says the same.
    let mut p = parse(r#"{"version": 1}"#).unwrap();
    p.network = Some(NetworkPolicy {
        mode: NetMode::Host,
        ..Default::default()
    });
    assert_eq!(p.check("x").unwrap_err().path, "network.mode");
}

#[test]
fn bad_network_patterns_point_at_the_element() {
    let e = parse("{\"version\": 1,\n \"network\": {\"mode\": \"proxy\",\n  \"allow\": [\"a.com\", \"b.com:443\",\n   \"127.1\"]}}")
        .unwrap_err();
    assert_eq!(e.path, "network.allow[2]");
    assert_eq!(e.position.map(|p| p.0), Some(4));
    assert!(e.message.contains("non-standard form"), "{}", e.message);
    assert!(e.to_string().starts_with("p.json:4:"), "{e}");
    let e =
        parse("{\"version\": 1, \"network\": {\"mode\": \"proxy\", \"deny\": [\"x.com:0\"]}}").unwrap_err();
    assert_eq!(e.path, "network.deny[0]");
    assert!(e.message.contains("invalid port"), "{}", e.message);
    let e = parse("{\"version\": 1, \"network\": {\"mode\": \"bridge\"}}").unwrap_err();
    assert_eq!(e.path, "network.mode");
    let e = parse("{\"version\": 1, \"network\": {\"allow\": \"a.com\"}}").unwrap_err();
    assert_eq!(e.path, "network.allow");
    let e =
        parse("{\"version\": 1, \"network\": {\"mode\": \"proxy\", \"allow\": [\"a.com\"], \"proxy\": 1}}")
            .unwrap_err();
    assert!(e.message.contains("unknown field"), "{}", e.message);
    let e =
        parse("{\"version\": 1, \"network\": {\"mode\": \"proxy\", \"resolve\": {\"a.com\": \"127.1\"}}}")
            .unwrap_err();
    assert_eq!(e.path, "network.resolve.a.com");
}

#[test]
fn network_rules_need_mode_proxy() {
    for mode in ["none", "host"] {
        for (field, value) in [
            ("allow", "[\"a.com\"]"),
            ("deny", "[\"a.com\"]"),
            ("resolve", "{\"a.com\": \"1.2.3.4\"}"),
        ] {
            let e = parse(&format!(
                "{{\"version\": 1,\n \"network\": {{\"mode\": \"{mode}\", \"{field}\": {value}}}}}"
            ))
            .unwrap_err();
            assert_eq!(e.path, format!("network.{field}"));
            assert!(
                e.message.contains("rules apply only in mode proxy"),
                "{}",
                e.message
            );
            assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
        }
    }
    // Without a mode the mode is none.
    let e = parse(r#"{"version": 1, "network": {"allow": ["a.com"]}}"#).unwrap_err();
    assert_eq!(e.path, "network.allow");
}

#[test]
fn network_flags() {
    use overrides::Overrides;
    let base = || parse(r#"{"version": 1}"#).unwrap();
    let apply = |o: Overrides| {
        let mut p = base();
        o.apply(&mut p, "p.json").map(|_| p)
    };
    let flag = |f: &str| f.to_string();
    // --net host and --share-net
    for o in [
        Overrides {
            net: Some((flag("--net"), NetMode::Host)),
            ..Default::default()
        },
        Overrides {
            share_net: true,
            ..Default::default()
        },
        Overrides {
            share_net: true,
            net: Some((flag("--net"), NetMode::Host)),
            ..Default::default()
        },
    ] {
        let p = apply(o).unwrap();
        assert_eq!(p.network_mode(), NetMode::Host);
        assert!(!p.has_namespace(Namespace::Net));
    }
    // --net none brings the namespace back.
    let mut p = parse(r#"{"version": 1, "network": {"mode": "host"}}"#).unwrap();
    Overrides {
        net: Some((flag("--net"), NetMode::None)),
        ..Default::default()
    }
    .apply(&mut p, "p.json")
    .unwrap();
    assert!(p.has_namespace(Namespace::Net));
    assert_eq!(p.network_mode(), NetMode::None);
    // --allow-net implies proxy.
    let p = apply(Overrides {
        allow_net: vec![(flag("--allow-net"), "API.example.com:443".into())],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(p.network_mode(), NetMode::Proxy);
    assert_eq!(p.network.unwrap().allow[0].to_string(), "api.example.com:443");
    // A bad pattern names the flag.
    let e = apply(Overrides {
        allow_net: vec![(flag("--allow-net"), "0x7f.1:443".into())],
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.path.as_str()),
        (overrides::CLI_SOURCE, "--allow-net")
    );
    assert!(e.message.contains("non-standard form"), "{}", e.message);
    // --net host (or none, or --share-net) with --allow-net names both.
    for o in [
        Overrides {
            net: Some((flag("--net"), NetMode::Host)),
            allow_net: vec![(flag("--allow-net"), "a.com".into())],
            ..Default::default()
        },
        Overrides {
            net: Some((flag("--net"), NetMode::None)),
            allow_net: vec![(flag("--allow-net"), "a.com".into())],
            ..Default::default()
        },
        Overrides {
            share_net: true,
            allow_net: vec![(flag("--allow-net"), "a.com".into())],
            ..Default::default()
        },
    ] {
        let e = apply(o).unwrap_err();
        assert_eq!(e.path, "--allow-net");
        assert!(
            e.message.contains("--allow-net needs mode proxy"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("--net") || e.message.contains("--share-net"),
            "{}",
            e.message
        );
    }
    let e = apply(Overrides {
        share_net: true,
        net: Some((flag("--net"), NetMode::Proxy)),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.message.contains("--share-net"), "{}", e.message);
    // --net host on a policy with rules names the flag and the field.
    let mut p = parse(r#"{"version": 1, "network": {"mode": "proxy", "allow": ["a.com"]}}"#).unwrap();
    let e = Overrides {
        net: Some((flag("--net"), NetMode::Host)),
        ..Default::default()
    }
    .apply(&mut p, "p.json")
    .unwrap_err();
    assert_eq!(e.path, "--net");
    assert!(e.message.contains("network.allow"), "{}", e.message);
}

#[test]
fn audit_section_is_checked_and_located() {
    let p = parse(r#"{"version": 1, "audit": {"path": "/var/log/cordon.jsonl"}}"#).expect("valid");
    assert_eq!(
        p.audit.as_ref().map(|a| a.path.as_str()),
        Some("/var/log/cordon.jsonl")
    );
    let e = parse("{\n  \"version\": 1,\n  \"audit\": {\"path\": \"a\", \"fd\": 3}\n}").unwrap_err();
    assert_eq!(e.path, "audit.fd");
    assert_eq!(e.position.map(|p| p.0), Some(3));
    let e = parse("{\"version\": 1, \"audit\": {}}").unwrap_err();
    assert!(e.message.contains("path"), "{}", e.message);
    for bad in ["", "dir/", "a/..", "a\\u0000b"] {
        let e = parse(&format!(
            "{{\"version\": 1,\n \"audit\": {{\"path\": \"{bad}\"}}}}"
        ))
        .unwrap_err();
        assert_eq!(e.path, "audit.path", "{bad}: {e}");
        assert_eq!(e.position.map(|p| p.0), Some(2), "{bad}: {e}");
    }
}

#[test]
fn copy_entries_take_to_and_optional_only_and_round_trip() {
    let p = parse(r#"{"version":1,"mounts":[{"copy":"/etc/services","to":"/etc/s","optional":true},{"copy":"/etc/protocols"}]}"#)
        .expect("valid");
    assert_eq!(
        p.mounts,
        vec![
            Mount::Copy {
                src: "/etc/services".into(),
                dst: "/etc/s".into(),
                optional: true
            },
            Mount::Copy {
                src: "/etc/protocols".into(),
                dst: "/etc/protocols".into(),
                optional: false
            },
        ]
    );
    let again = parse(&serde_json::to_string(&p).unwrap()).expect("round trip");
    assert_eq!(again.mounts, p.mounts);
    for (json, why) in [
        (
            r#"{"copy":"/etc/x","readonly":false}"#,
            "\"readonly\" does not apply to a copy mount",
        ),
        (
            r#"{"copy":"/etc/x","exec":true}"#,
            "\"exec\" does not apply to a copy mount",
        ),
        (r#"{"copy":"/etc/x","bind":"/etc/x"}"#, "found bind, copy"),
        (r#"{"copy":"etc/x"}"#, "expected an absolute host path"),
    ] {
        let e = parse(&format!(r#"{{"version":1,"mounts":[{json}]}}"#)).unwrap_err();
        assert!(e.message.contains(why), "{json}: {}", e.message);
        assert!(e.path.starts_with("mounts[0]"), "{json}: {}", e.path);
    }
}

#[test]
fn lifecycle_takes_durations_and_refuses_zero_and_unknown_fields_with_their_place() {
    let p = parse(r#"{"version":1,"lifecycle":{"idle":"10m","max":"2h"}}"#).unwrap();
    let l = p.lifecycle.expect("lifecycle");
    assert_eq!(l.idle.map(|d| d.0.as_secs()), Some(600));
    assert_eq!(l.max.map(|d| d.0.as_secs()), Some(7200));
    let e = parse("{\"version\":1,\n\"lifecycle\":{\"idle\":\"0s\"}}").unwrap_err();
    assert_eq!(e.path, "lifecycle.idle");
    assert_eq!(e.position.map(|p| p.0), Some(2));
    assert!(e.message.contains("more than 0"), "{}", e.message);
    let e = parse(r#"{"version":1,"lifecycle":{"max":"2"}}"#).unwrap_err();
    assert_eq!(e.path, "lifecycle.max");
    let e = parse(r#"{"version":1,"lifecycle":{"idel":"1m"}}"#).unwrap_err();
    assert!(e.path.starts_with("lifecycle"), "{e:?}");
}
