//! The JSON Schema (2020-12) of the policy format, generated from the serde
//! model with `schemars`. Only with the `schema` feature (and in the unit
//! tests), so that the `cordon` binary does not carry the generator.
//!
//! The checked-in copy is `policies/cordon-policy.schema.json`; regenerate it
//! with `cargo run --features schema --example gen-schema >
//! policies/cordon-policy.schema.json` (a unit test fails when it is stale).

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

use super::network::Pattern;
use super::units::{Cpus, Dur, Size};
use super::Policy;
use crate::seccomp::{ActionSpec, ValueSpec};

/// Where the schema is published, as its `$id`.
pub const SCHEMA_ID: &str = "https://cordon.invalid/cordon-policy.schema.json";

/// The schema as a JSON value.
pub fn generate() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<Policy>().to_value();
    if let Some(root) = schema.as_object_mut() {
        root.insert("$id".into(), SCHEMA_ID.into());
        root.insert(
            "description".into(),
            "A cordon sandbox policy (see cordon-policy(5)). In a policy that \"extends\" another, a list may start with \"!replace\" to replace the inherited list instead of appending to it."
                .into(),
        );
    }
    // A mount entry has exactly one of the kind keys (RawMount's fields are
    // all optional for serde; Mount's try_from checks it).
    if let Some(mount) = schema.pointer_mut("/$defs/Mount").and_then(Value::as_object_mut) {
        let kinds: Vec<Value> = ["bind", "copy", "tmpfs", "proc", "dev", "symlink"]
            .iter()
            .map(|k| serde_json::json!({"required": [k]}))
            .collect();
        mount.insert("oneOf".into(), Value::Array(kinds));
    }
    allow_replace_marker(&mut schema);
    schema
}

/// The schema as the text of the checked-in file.
pub fn generate_text() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// Every list may start with the `"!replace"` marker of `extends`: its first
/// element is the item schema or that string (`prefixItems`).
fn allow_replace_marker(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let is_array = map.get("type").is_some_and(|t| {
                t == "array" || t.as_array().is_some_and(|a| a.iter().any(|x| x == "array"))
            });
            if is_array {
                if let Some(items) = map.get("items").cloned() {
                    map.insert(
                        "prefixItems".into(),
                        serde_json::json!([{"anyOf": [{"const": "!replace"}, items]}]),
                    );
                }
            }
            map.values_mut().for_each(allow_replace_marker);
        }
        Value::Array(a) => a.iter_mut().for_each(allow_replace_marker),
        _ => {}
    }
}

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size in bytes: a number, or a string with a suffix K, M, G or T (powers of 1024), e.g. \"64M\".",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]+([KkMmGgTt]([Ii]?[Bb])?)?$"}
            ]
        })
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: a number with a unit h, m, s, ms, us or ns, e.g. \"500ms\", \"30s\", \"10m\".",
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?(h|m|s|ms|us|ns)$"
        })
    }
}

impl JsonSchema for Cpus {
    fn schema_name() -> Cow<'static, str> {
        "Cpus".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "CPU bandwidth in CPUs, e.g. 0.5 (at most three decimals).",
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 4096
        })
    }
}

impl JsonSchema for Pattern {
    fn schema_name() -> Cow<'static, str> {
        "NetPattern".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A target: HOST[:PORT] where HOST is a name, *.name (subdomains), **.name (the name and its subdomains), an address or a network (10.20.0.0/16, [2001:db8::]/32); PORT a number or *.",
            "type": "string",
            "minLength": 1
        })
    }
}

impl JsonSchema for ActionSpec {
    fn schema_name() -> Cow<'static, str> {
        "SeccompAction".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "What a call gets: \"allow\", \"errno\" (EPERM), {\"errno\": NAME or number}, \"kill_process\", \"kill_thread\", \"trap\" or \"log\".",
            "anyOf": [
                {"enum": ["allow", "errno", "kill_process", "kill", "kill_thread", "trap", "log"]},
                {
                    "type": "object",
                    "properties": {"errno": {"anyOf": [
                        {"type": "string"},
                        {"type": "integer", "minimum": 1, "maximum": 4095}
                    ]}},
                    "required": ["errno"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl JsonSchema for ValueSpec {
    fn schema_name() -> Cow<'static, str> {
        "SeccompValue".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An argument value: an unsigned number, or constant names joined with |, e.g. \"AF_UNIX\", \"CLONE_NEWNS|CLONE_NEWUSER\".",
            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = env!("CARGO_MANIFEST_DIR");

    fn checked_in() -> String {
        std::fs::read_to_string(format!("{ROOT}/policies/cordon-policy.schema.json")).unwrap_or_default()
    }

    #[test]
    fn checked_in_schema_is_current() {
        let generated = generate_text();
        if std::env::var_os("CORDON_UPDATE_SCHEMA").is_some() {
            std::fs::write(format!("{ROOT}/policies/cordon-policy.schema.json"), &generated)
                .expect("write the schema");
        }
        assert!(
            checked_in() == generated,
            "policies/cordon-policy.schema.json is stale: regenerate it with\n  \
             cargo run --features schema --example gen-schema > policies/cordon-policy.schema.json\n\
             (or CORDON_UPDATE_SCHEMA=1 cargo test --lib policy::schema)"
        );
    }

    /// The policies shipped in policies/ (not the schema itself).
    fn shipped() -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = std::fs::read_dir(format!("{ROOT}/policies"))
            .expect("policies/")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.to_string_lossy();
                name.ends_with(".json") && !name.ends_with(".schema.json")
            })
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("read");
                let v = serde_json::from_str(&text).expect("JSON");
                (p.display().to_string(), v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn validator() -> (boon::Schemas, boon::SchemaIndex) {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource(SCHEMA_ID, generate())
            .expect("add the schema");
        let index = compiler
            .compile(SCHEMA_ID, &mut schemas)
            .expect("the schema compiles");
        (schemas, index)
    }

    #[test]
    fn every_shipped_policy_validates() {
        let (schemas, index) = validator();
        let files = shipped();
        assert!(files.len() >= 10, "{} policies", files.len());
        for (name, v) in &files {
            if let Err(e) = schemas.validate(v, index) {
                panic!("{name} does not validate against the schema: {e:#}");
            }
        }
    }

    #[test]
    fn the_schema_refuses_what_cordon_refuses() {
        let (schemas, index) = validator();
        let ok = serde_json::json!({
            "$schema": "./cordon-policy.schema.json",
            "version": 1,
            "extends": "default",
            "description": "x",
            "mounts": ["!replace", {"bind": "/usr"}, {"tmpfs": "/tmp", "size": "64M"}],
            "limits": {"memory": "1G", "wall_time": "30s", "cpus": 0.5},
            "seccomp": {"default_action": {"errno": "ENOSYS"},
                        "rules": [{"syscall": "socket", "args": [{"arg": 0, "op": "eq", "value": "AF_UNIX"}], "action": "allow"}]},
            "network": {"mode": "proxy", "allow": ["example.com:443"]}
        });
        assert!(schemas.validate(&ok, index).is_ok(), "{ok}");
        for bad in [
            serde_json::json!({"version": 1, "mountz": []}),
            serde_json::json!({"version": 1, "limits": {"memroy": "1G"}}),
            serde_json::json!({"version": 1, "mounts": [{"bind": "/usr", "readonly": "yes"}]}),
            serde_json::json!({"version": 1, "mounts": [{"bind": "/usr"}, "!replace"]}),
            serde_json::json!({"version": 1, "namespaces": ["user", "nett"]}),
            serde_json::json!({"version": 1, "network": {"mode": "proxi"}}),
            serde_json::json!({"version": 1, "limits": {"memory": "lots"}}),
            serde_json::json!({"description": "no version"}),
            serde_json::json!({"version": 1, "mounts": [{"bind": "/usr", "tmpfs": "/tmp"}]}),
            serde_json::json!({"version": 1, "mounts": [{"readonly": true}]}),
        ] {
            assert!(schemas.validate(&bad, index).is_err(), "accepted {bad}");
        }
    }
}
