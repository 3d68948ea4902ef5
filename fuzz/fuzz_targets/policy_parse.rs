//! Policy parsing must never panic, and every error it reports must be
//! well-formed: it names the file, says something, and a line:column it
//! gives lies inside the text.
//!
//! Checked for any UTF-8 input:
//! - `Policy::from_json` returns (no panic, no hang);
//! - on success: the text is one JSON object (nothing after it, no array in
//!   place of an object), `check` agrees, fields that must be in the text
//!   can be located (`PolicyError::located_in`) at a value of the right
//!   kind, and the effective policy (`to_json_pretty`, what `cordon check`
//!   prints) parses back to the same policy;
//! - on failure: the error's Display is `FILE[:L:C][: path]: message`, the
//!   message is not empty, the position is inside the text with columns
//!   counting characters from 1; when the text is a well-typed policy that
//!   fails validation, `check` reports the same field and message and the
//!   position is where that field's value starts (for one refused for its
//!   shape, where the offending array starts); `located_in` keeps a known
//!   position and places an unknown one at the start of a value.

#![no_main]

use cordon::policy::locate;
use cordon::policy::{Policy, PolicyError};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.json";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_json(FILE, text) {
        Ok(policy) => accepted(text, &policy),
        Err(e) => refused(text, &e),
    }
});

fn accepted(text: &str, policy: &Policy) {
    if let Err(e) = policy.check(FILE) {
        panic!("from_json accepted the policy but check refuses it: {e}");
    }
    // The whole text is one JSON object: nothing after it, and no array
    // where the format has an object (serde would take one, fields in order).
    assert!(
        serde_json::from_str::<serde_json::Value>(text).is_ok(),
        "accepted text that is not one JSON value"
    );
    assert_eq!(
        value_start(text, ""),
        Some('{'),
        "accepted a policy that is not an object"
    );
    // Fields that the text must contain (serde rejects duplicate struct
    // fields, so the first occurrence is the one that was used).
    let version = synthetic("version").located_in(FILE, text);
    expect_value_at(text, &version, |c| c.is_ascii_digit());
    for (i, m) in policy.mounts.iter().enumerate() {
        let e = synthetic(&format!("mounts[{i}].{}", m.kind())).located_in(FILE, text);
        expect_value_at(text, &e, |c| c == '"');
    }
    if let Some(sc) = &policy.seccomp {
        let e = synthetic("seccomp").located_in(FILE, text);
        expect_value_at(text, &e, |c| c == '{');
        for i in 0..sc.rules.len() {
            let e = synthetic(&format!("seccomp.rules[{i}].syscall")).located_in(FILE, text);
            expect_value_at(text, &e, |c| c == '"');
        }
    }
    // An error for another file is left alone.
    let other = synthetic("version").located_in("other.json", text);
    assert_eq!(other.position, None);

    // What `cordon check` prints must read back as the same policy.
    let pretty = policy.to_json_pretty();
    match Policy::from_json(FILE, &pretty) {
        Ok(back) => assert_eq!(&back, policy, "round trip changed the policy:\n{pretty}"),
        Err(e) => panic!("the effective policy does not parse back: {e}\n{pretty}"),
    }
}

fn refused(text: &str, e: &PolicyError) {
    assert_eq!(e.file, FILE);
    assert!(!e.message.is_empty(), "empty message: {e:?}");
    let shown = e.to_string();
    let mut expected = FILE.to_string();
    if let Some((l, c)) = e.position {
        expected.push_str(&format!(":{l}:{c}"));
    }
    if !e.path.is_empty() {
        expected.push_str(&format!(": {}", e.path));
    }
    expected.push_str(&format!(": {}", e.message));
    assert_eq!(shown, expected);
    assert!(shown.starts_with(FILE));

    // Positions count characters (as editors do) from 1, for every error.
    if let Some((l, c)) = e.position {
        let line = line_text(text, l).unwrap_or_else(|| panic!("line {l} is not in the text: {e}"));
        assert!(
            c >= 1 && c <= line.chars().count() + 1,
            "column {c} outside line {l} ({line:?}): {e}"
        );
    }

    // A well-typed policy (for serde, which also takes an array for a
    // struct) is refused for its shape or by validation.
    if let Ok(p) = serde_json::from_str::<Policy>(text) {
        // An array where the format has an object: the position, if any,
        // is that array.
        let shape = || {
            if e.position.is_some() {
                expect_value_at(text, e, |c| c == '[');
            }
        };
        match p.check(FILE) {
            Ok(()) => shape(),
            Err(c) if (&c.path, &c.message) == (&e.path, &e.message) => {
                // A validation error: check reports it without a
                // position; from_json adds where the field's value starts
                // (when the locator finds it), and so does located_in.
                assert_eq!(c.position, None);
                assert!(!e.path.is_empty(), "validation error without a field: {e:?}");
                let found = locate::locate(text, &locate::parse_path(&e.path));
                assert_eq!(e.position, found);
                if e.position.is_some() {
                    expect_value_at(text, e, |_| true);
                }
                assert_eq!(c.located_in(FILE, text).position, found);
            }
            Err(_) => shape(),
        }
    }

    // located_in never moves a known position, and a position it finds is
    // the start of a value.
    let again = e.clone().located_in(FILE, text);
    if e.position.is_some() {
        assert_eq!(again.position, e.position);
    } else if again.position.is_some() {
        expect_value_at(text, &again, |_| true);
    }
    let mut unplaced = e.clone();
    unplaced.position = None;
    let placed = unplaced.located_in(FILE, text);
    if placed.position.is_some() {
        expect_value_at(text, &placed, |_| true);
    }
}

/// The first character of the value at `path`, if the locator finds it.
fn value_start(text: &str, path: &str) -> Option<char> {
    let (l, c) = locate::locate(text, &locate::parse_path(path))?;
    line_text(text, l)?.chars().nth(c.checked_sub(1)?)
}

fn synthetic(path: &str) -> PolicyError {
    PolicyError {
        file: FILE.to_string(),
        path: path.to_string(),
        position: None,
        message: "synthetic".to_string(),
    }
}

/// Line `l` (1-based) of the text, without its `\n`.
fn line_text(text: &str, l: usize) -> Option<&str> {
    text.split('\n').nth(l.checked_sub(1)?)
}

/// The error has a position (1-based line, character column) at the start
/// of a JSON value whose first character satisfies `first`.
fn expect_value_at(text: &str, e: &PolicyError, first: impl Fn(char) -> bool) {
    let Some((l, c)) = e.position else {
        panic!("cannot locate {:?} in a policy that has it", e.path);
    };
    let line = line_text(text, l).unwrap_or_else(|| panic!("line {l} is not in the text: {e}"));
    assert!(c >= 1, "column 0: {e}");
    let ch = line
        .chars()
        .nth(c - 1)
        .unwrap_or_else(|| panic!("column {c} beyond line {l} ({line:?}): {e}"));
    assert!(
        matches!(ch, '"' | '{' | '[' | 't' | 'f' | 'n' | '-' | '0'..='9'),
        "{:?} at {l}:{c} does not start a JSON value: {e}",
        ch
    );
    assert!(
        first(ch),
        "{:?} at {l}:{c} is not the expected kind of value: {e}",
        ch
    );
}
