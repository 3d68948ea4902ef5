//! Inputs found by the fuzz targets in `fuzz/` (see fuzz/README.md), kept
//! as plain tests that need neither nightly nor cargo-fuzz.

use cordon::policy::Policy;

const FILE: &str = "fuzz.json";

/// policy_parse, crash-abffeabacb9f6721184040925fba2a5f1264beb7 (input
/// `" [\t\t\t1]"`): serde takes a JSON array for a struct, its fields in
/// order, so `[1]` was accepted as `{"version": 1}` (and `"identity": [5, 6]`
/// as uid 5, gid 6, a mount `["/usr"]` as a bind mount); fields of such a
/// policy cannot be located, and the format is objects only. Fixed in
/// b2191bb.
#[test]
fn a_policy_is_an_object_not_an_array() {
    for text in [
        " [\t\t\t1]",
        r#"{"version": 1, "identity": [5, 6]}"#,
        r#"{"version": 1, "mounts": [["/usr"]]}"#,
        r#"{"version": 1, "seccomp": [{"errno": "ENOSYS"}, ["@default"]]}"#,
    ] {
        assert!(Policy::from_json(FILE, text).is_err(), "accepted {text:?}");
    }
}

/// Text after the policy's JSON value was ignored (`from_json` did not call
/// `Deserializer::end`), so a second object (two policies pasted into one
/// file) or a stray bracket went unnoticed. Fixed in b2191bb.
#[test]
fn text_after_the_policy_is_an_error() {
    for text in [
        r#"{"version": 1} trailing"#,
        r#"{"version": 1}{"version": 2}"#,
        r#"{"version": 1}]"#,
    ] {
        let e = Policy::from_json(FILE, text).expect_err(text);
        assert!(e.message.contains("trailing"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(1), "{e}");
    }
}

/// Columns of serde errors counted bytes (serde_json's position), columns
/// of validation errors characters (the locator): the same place got two
/// different columns after a non-ASCII character. Fixed in b2191bb.
#[test]
fn columns_count_characters_for_every_error() {
    // The `x`/`2` is the 32nd character and the 35th byte of the line.
    let parse = Policy::from_json(FILE, r#"{"hostname": "ééé", "version": x}"#).unwrap_err();
    let check = Policy::from_json(FILE, r#"{"hostname": "ééé", "version": 2}"#).unwrap_err();
    assert_eq!(check.position, Some((1, 32)), "{check}");
    assert_eq!(parse.position, Some((1, 32)), "{parse}");
}

/// The well-formedness the fuzz target demands, on the inputs above and a
/// few neighbours: never a panic; an error names the file, has a message,
/// and a line:column inside the text (columns count characters from 1).
#[test]
fn errors_are_well_formed_on_fuzz_findings() {
    for text in [
        "",
        "{\n",
        " [\t\t\t1]",
        "[1, [\"user\"]]",
        r#"{"version": 1} trailing"#,
        r#"{"hostname": "ééé", "version": x}"#,
        r#"{"hostname": "ééé", "version": 2}"#,
        "{\"env\": {\"set\": {\"a.b\": \"\\u0000\"}}, \"version\": 1}",
    ] {
        let Err(e) = Policy::from_json(FILE, text) else {
            continue;
        };
        assert!(e.to_string().starts_with(FILE), "{e}");
        assert!(!e.message.is_empty(), "{e:?}");
        if let Some((l, c)) = e.position {
            let line = text.split('\n').nth(l - 1).unwrap_or_else(|| panic!("{e}"));
            assert!(c >= 1 && c <= line.chars().count() + 1, "{e}");
        }
        let again = e.clone().located_in(FILE, text);
        assert!(e.position.is_none() || again.position == e.position);
    }
}
