//! Find where a value sits in the JSON source, so that errors found after parsing (semantic
//! validation) can point at the right line and column of the user's file.
//!
//! This is a small scanner that walks the text to the requested path without building a tree.

/// One step of a path into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A member of an object, by (unescaped) key.
    Key(String),
    /// An element of an array, by zero-based position.
    Index(usize),
}

/// Containers nested deeper than this are not followed.
const MAX_DEPTH: usize = 256;

/// Line and column (1-based) where the value at `path` starts in `src`, or None if the path is not
/// present or the text is not valid JSON up to that point. The empty path is the top-level value.
///
/// Columns count characters, not bytes. When an object repeats a key, the first occurrence is
/// used. The value itself must be complete and well-formed; text after it is not examined.
#[must_use]
pub fn locate(src: &str, path: &[Seg]) -> Option<(usize, usize)> {
    if path.len() > MAX_DEPTH {
        return None;
    }
    let mut scan = Scanner { src, pos: 0 };
    for (depth, seg) in path.iter().enumerate() {
        match seg {
            Seg::Key(key) => scan.enter_member(key, depth)?,
            Seg::Index(index) => scan.enter_element(*index, depth)?,
        }
    }
    scan.skip_ws();
    let start = scan.pos;
    scan.value(path.len())?;
    line_col(src, start)
}

/// Parse a dotted path as printed by `serde_path_to_error`, e.g. `mounts[2].bind`, `env.set.PATH`,
/// `limits.wall_time`, `.` or empty string for the root.
///
/// Keys containing dots are not supported. A component whose brackets do not hold plain indices,
/// such as `a[x]`, is taken as a key.
pub fn parse_path(s: &str) -> Vec<Seg> {
    let mut path = Vec::new();
    for part in s.split('.').filter(|part| !part.is_empty()) {
        let (key, brackets) = part.split_at(part.find('[').unwrap_or(part.len()));
        match indices(brackets) {
            Some(indices) => {
                if !key.is_empty() {
                    path.push(Seg::Key(key.to_owned()));
                }
                path.extend(indices.into_iter().map(Seg::Index));
            }
            None => path.push(Seg::Key(part.to_owned())),
        }
    }
    path
}

/// The indices in a run like `[2][0]`, or None if it is anything else.
fn indices(mut brackets: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    while !brackets.is_empty() {
        let (index, rest) = brackets.strip_prefix('[')?.split_once(']')?;
        if !index.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out.push(index.parse().ok()?);
        brackets = rest;
    }
    Some(out)
}

/// 1-based line and character column of byte offset `at`.
fn line_col(src: &str, at: usize) -> Option<(usize, usize)> {
    let before = src.get(..at)?;
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// A cursor over JSON text. Every method returns None on malformed input; none of them panic.
/// Token methods skip leading whitespace themselves.
struct Scanner<'a> {
    src: &'a str,
    /// Byte offset; only ever advanced over ASCII bytes or whole runs, so it stays on a char
    /// boundary.
    pos: usize,
}

impl Scanner<'_> {
    fn rest(&self) -> &[u8] {
        self.src.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// Consumes the next byte if it satisfies `pred`.
    fn accept(&mut self, pred: impl Fn(u8) -> bool) -> bool {
        let hit = self.peek().is_some_and(pred);
        self.pos += usize::from(hit);
        hit
    }

    /// Consumes a run of ASCII digits and returns its length.
    fn digits(&mut self) -> usize {
        let n = self.rest().iter().take_while(|b| b.is_ascii_digit()).count();
        self.pos += n;
        n
    }

    fn skip_ws(&mut self) {
        let n = self
            .rest()
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
        self.pos += n;
    }

    /// Skips whitespace, then consumes `byte`.
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.bump()? == byte).then_some(())
    }

    /// Moves into the object at the cursor, just past the `:` of the first member named `key`.
    fn enter_member(&mut self, key: &str, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        loop {
            if self.string()? == key {
                return self.eat(b':');
            }
            self.eat(b':')?;
            self.value(depth + 1)?;
            self.eat(b',')?;
        }
    }

    /// Moves into the array at the cursor, just before element `index`.
    fn enter_element(&mut self, index: usize, depth: usize) -> Option<()> {
        self.eat(b'[')?;
        for _ in 0..index {
            self.value(depth + 1)?;
            self.eat(b',')?;
        }
        Some(())
    }

    /// Skips one value nested inside `depth` containers.
    fn value(&mut self, depth: usize) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' if depth >= MAX_DEPTH => None,
            b'{' => self.items(b'}', |s| {
                s.string()?;
                s.eat(b':')?;
                s.value(depth + 1)
            }),
            b'[' => self.items(b']', |s| s.value(depth + 1)),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    /// Skips the opening bracket at the cursor, then `item`s separated by commas up to `close`.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.pos += 1;
        self.skip_ws();
        if self.accept(|b| b == close) {
            return Some(());
        }
        loop {
            item(self)?;
            self.skip_ws();
            match self.bump()? {
                b',' => {}
                b if b == close => return Some(()),
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.rest()
            .starts_with(word.as_bytes())
            .then(|| self.pos += word.len())
    }

    /// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        self.accept(|b| b == b'-');
        if !self.accept(|b| b == b'0') && self.digits() == 0 {
            return None;
        }
        if self.accept(|b| b == b'.') && self.digits() == 0 {
            return None;
        }
        if self.accept(|b| b == b'e' || b == b'E') {
            self.accept(|b| b == b'+' || b == b'-');
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Skips whitespace, then consumes a string and returns its unescaped contents.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            let plain = self
                .rest()
                .iter()
                .take_while(|&&b| b != b'"' && b != b'\\' && b >= 0x20);
            self.pos += plain.count();
            out.push_str(self.src.get(start..self.pos)?);
            match self.bump()? {
                b'"' => return Some(out),
                b'\\' => out.push(self.escape()?),
                _ => return None, // Unescaped control character.
            }
        }
    }

    /// The character written by the escape sequence after a backslash.
    fn escape(&mut self) -> Option<char> {
        Some(match self.bump()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                if !(0xD800..0xDC00).contains(&high) {
                    // Lone low surrogates are rejected by `from_u32`.
                    return char::from_u32(high);
                }
                if !self.rest().starts_with(b"\\u") {
                    return None;
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..0xE000).contains(&low) {
                    return None;
                }
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
            }
            _ => return None,
        })
    }

    /// Consumes four hex digits.
    fn hex4(&mut self) -> Option<u32> {
        let hex = self.rest().get(..4)?;
        let value = hex
            .iter()
            .try_fold(0, |acc, &b| Some((acc << 4) | char::from(b).to_digit(16)?))?;
        self.pos += 4;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    fn key(k: &str) -> Seg {
        Seg::Key(k.to_owned())
    }

    /// `locate` with a path written as by `serde_path_to_error`.
    fn at(src: &str, path: &str) -> Option<(usize, usize)> {
        locate(src, &parse_path(path))
    }

    #[test]
    fn parses_paths() {
        use Seg::Index;
        assert_eq!(
            parse_path("mounts[2].bind"),
            [key("mounts"), Index(2), key("bind")]
        );
        assert_eq!(parse_path("env.set.PATH"), [key("env"), key("set"), key("PATH")]);
        assert_eq!(parse_path("limits.wall_time"), [key("limits"), key("wall_time")]);
        assert_eq!(parse_path("[0][1].a"), [Index(0), Index(1), key("a")]);
        assert_eq!(parse_path("a[10][3]"), [key("a"), Index(10), Index(3)]);
        assert_eq!(parse_path("a[x]"), [key("a[x]")]);
        assert_eq!(parse_path("a[1]b"), [key("a[1]b")]);
        assert_eq!(parse_path("a[+1]"), [key("a[+1]")]);
        assert_eq!(
            parse_path("a[99999999999999999999999]"),
            [key("a[99999999999999999999999]")]
        );
        assert_eq!(parse_path("é.ü"), [key("é"), key("ü")]);
        assert_eq!(parse_path("."), []);
        assert_eq!(parse_path(""), []);
    }

    #[test]
    fn nested_objects_and_arrays() {
        let src = r#"{"a": {"b": [10, {"c": [true, null]}, "x"]}, "d": -1.5e3}"#;
        assert_eq!(at(src, "a"), Some((1, 7)));
        assert_eq!(at(src, "a.b"), Some((1, 13)));
        assert_eq!(at(src, "a.b[0]"), Some((1, 14)));
        assert_eq!(at(src, "a.b[1]"), Some((1, 18)));
        assert_eq!(at(src, "a.b[1].c"), Some((1, 24)));
        assert_eq!(at(src, "a.b[1].c[1]"), Some((1, 31)));
        assert_eq!(at(src, "a.b[2]"), Some((1, 39)));
        assert_eq!(at(src, "d"), Some((1, 51)));
    }

    #[test]
    fn keys_with_escapes() {
        let src = r#"{"a\"b": 1, "\u00e9\n": 2, "\ud83d\ude00": 3, "x\/y\\": 4, "A": 5}"#;
        assert_eq!(locate(src, &[key("a\"b")]), Some((1, 10)));
        assert_eq!(locate(src, &[key("é\n")]), Some((1, 25)));
        assert_eq!(locate(src, &[key("😀")]), Some((1, 44)));
        assert_eq!(locate(src, &[key("x/y\\")]), Some((1, 57)));
        assert_eq!(locate(src, &[key("\\u0041")]), None);
        assert_eq!(locate(r#"{"\u0041": 5}"#, &[key("A")]), Some((1, 12)));
    }

    #[test]
    fn duplicate_keys_use_the_first() {
        assert_eq!(at(r#"{"a": 1, "a": 2}"#, "a"), Some((1, 7)));
    }

    #[test]
    fn multi_line_crlf_and_tabs() {
        let src = "{\r\n\t\"mounts\": [\r\n\t\t{\"bind\": \"/usr\"},\r\n\t\t{\"tmpfs\":\t\"/tmp\",\r\n\t\t \"size\": \"64Q\"}\r\n\t]\r\n}\r\n";
        assert_eq!(at(src, "."), Some((1, 1)));
        assert_eq!(at(src, "mounts"), Some((2, 12)));
        assert_eq!(at(src, "mounts[0]"), Some((3, 3)));
        assert_eq!(at(src, "mounts[0].bind"), Some((3, 12)));
        assert_eq!(at(src, "mounts[1].tmpfs"), Some((4, 13)));
        assert_eq!(at(src, "mounts[1].size"), Some((5, 12)));
    }

    #[test]
    fn columns_count_characters() {
        let src = "{\"naïve\": \"日本語\", \"😀\": [\"é\", 7]}";
        assert_eq!(at(src, "naïve"), Some((1, 11)));
        assert_eq!(at(src, "😀"), Some((1, 23)));
        assert_eq!(at(src, "😀[1]"), Some((1, 29)));
    }

    #[test]
    fn root_path() {
        assert_eq!(at("42", ""), Some((1, 1)));
        assert_eq!(at(" \r\n\t {}", "."), Some((2, 3)));
        assert_eq!(at("[1, 2]", "[1]"), Some((1, 5)));
        assert_eq!(at("", ""), None);
        assert_eq!(at("   ", ""), None);
    }

    #[test]
    fn missing_paths() {
        let src = r#"{"a": [1, 2], "b": {"c": 3}, "e": {}}"#;
        for path in [
            "x", "a[2]", "a[99]", "b.d", "b.c.d", "b[0]", "a.c", "a[0][0]", "e.x", "b.c[0]",
        ] {
            assert_eq!(at(src, path), None, "{path}");
        }
        assert_eq!(at("[]", "[0]"), None);
        assert_eq!(at("{}", "a"), None);
    }

    #[test]
    fn invalid_json() {
        let cases = [
            (r#"{"a" 1}"#, "a"),
            (r#"{"a": 1 "b": 2}"#, "b"),
            (r#"{"a": 1,, "b": 2}"#, "b"),
            (r#"{"a": 1, "b": }"#, "b"),
            (r#"{"a": tru, "b": 2}"#, "b"),
            (r#"{"a": 01, "b": 2}"#, "b"),
            (r#"{"a": 1., "b": 2}"#, "b"),
            (r#"{"a": -, "b": 2}"#, "b"),
            (r#"{"a": 1e, "b": 2}"#, "b"),
            (r#"{"a": .5, "b": 2}"#, "b"),
            (r#"{"a": [1,], "b": 2}"#, "b"),
            (r#"{"a": "x\qy", "b": 2}"#, "b"),
            (r#"{"a": "\u12", "b": 2}"#, "b"),
            (r#"{"a": "\ud800", "b": 2}"#, "b"),
            (r#"{"a": "\udc00", "b": 2}"#, "b"),
            (r#"{"a": "\ud800\u0041", "b": 2}"#, "b"),
            (r#"{"a": "\u+123", "b": 2}"#, "b"),
            ("{\"a\": \"tab\there\", \"b\": 2}", "b"),
            (r#"{"a": "unterminated, "b": 2}"#, "b"),
            (r#"{"a": 1, "b": 2"#, "c"),
            (r#"{"a": {"b": 2}"#, "c"),
            (r#"{"b": tru}"#, "b"),
            (r#"{"b": "open}"#, "b"),
            (r#"{"b": [1, 2}"#, "b"),
            ("[1 2]", "[1]"),
            ("{'a': 1}", "a"),
            ("{a: 1}", "a"),
        ];
        for (src, path) in cases {
            assert_eq!(at(src, path), None, "{src} at {path}");
        }
        // Only the text up to the end of the value matters.
        assert_eq!(at(r#"{"a": 1, "b": 2 garbage"#, "b"), Some((1, 15)));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(at(&nested(MAX_DEPTH), ""), Some((1, 1)));
        assert_eq!(
            locate(&nested(MAX_DEPTH), &vec![Seg::Index(0); MAX_DEPTH]),
            Some((1, 257))
        );
        assert_eq!(at(&nested(MAX_DEPTH + 1), ""), None);
        assert_eq!(
            locate(&nested(MAX_DEPTH + 1), &vec![Seg::Index(0); MAX_DEPTH + 1]),
            None
        );
        assert_eq!(at(&"[".repeat(1_000_000), ""), None);
        assert_eq!(at(&"{\"a\":".repeat(1_000_000), "a.a.a"), None);
        assert_eq!(locate("1", &vec![Seg::Index(0); 1_000_000]), None);
    }

    /// xorshift64*, enough for generated documents.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// Appends a random value to `out`, recording the path and byte offset of it and of every
    /// value inside it.
    fn generate(rng: &mut Rng, path: &mut Vec<Seg>, out: &mut String, spots: &mut Vec<(Vec<Seg>, usize)>) {
        const WS: &[&str] = &["", "", " ", "  ", "\t", "\n", "\r\n", "\n\t  "];
        // (as written, unescaped); unique within an object once a digit is appended.
        const KEYS: &[(&str, &str)] = &[
            ("k", "k"),
            ("naïve", "naïve"),
            (r"\u00e9t\u00E9", "été"),
            (r#"q\"\\\/"#, "q\"\\/"),
            (r"tab\t\r\n", "tab\t\r\n"),
            (r"\ud83d\ude00", "😀"),
            ("日本", "日本"),
        ];
        const SCALARS: &[&str] = &[
            "true",
            "false",
            "null",
            "0",
            "-0",
            "42",
            "-12.5e+3",
            "3.25",
            "1E9",
            "2e-7",
            r#""""#,
            r#""plain""#,
            r#""日本語 😀""#,
            r#""esc \" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00""#,
            r#""{[,:]}""#,
        ];
        out.push_str(rng.pick(WS));
        spots.push((path.clone(), out.len()));
        let kind = if path.len() >= 4 { 0 } else { rng.below(4) };
        let (open, close) = match kind {
            0 | 1 => {
                out.push_str(rng.pick(SCALARS));
                return;
            }
            2 => ('{', '}'),
            _ => ('[', ']'),
        };
        out.push(open);
        for i in 0..rng.below(5) {
            if i > 0 {
                out.push_str(rng.pick(WS));
                out.push(',');
            }
            if open == '{' {
                let (raw, text) = KEYS[rng.below(KEYS.len())];
                out.push_str(rng.pick(WS));
                write!(out, "\"{raw}{i}\"").unwrap();
                out.push_str(rng.pick(WS));
                out.push(':');
                path.push(Seg::Key(format!("{text}{i}")));
            } else {
                path.push(Seg::Index(i));
            }
            generate(rng, path, out, spots);
            path.pop();
        }
        out.push_str(rng.pick(WS));
        out.push(close);
    }

    /// Line and column of byte offset `at`, counted independently of `line_col`.
    fn expected_position(src: &str, at: usize) -> (usize, usize) {
        src[..at].chars().fold(
            (1, 1),
            |(line, col), c| {
                if c == '\n' {
                    (line + 1, 1)
                } else {
                    (line, col + 1)
                }
            },
        )
    }

    /// Follows `path` through a parsed document.
    fn lookup<'v>(value: &'v serde_json::Value, path: &[Seg]) -> Option<&'v serde_json::Value> {
        path.iter().try_fold(value, |v, seg| match seg {
            Seg::Key(k) => v.get(k),
            Seg::Index(i) => v.get(*i),
        })
    }

    #[test]
    fn generated_documents() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for _ in 0..300 {
            let (mut out, mut spots) = (String::new(), Vec::new());
            generate(&mut rng, &mut Vec::new(), &mut out, &mut spots);
            out.push_str(rng.pick(&["", "\n", "\r\n"]));
            let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();

            for (path, offset) in &spots {
                assert!(lookup(&parsed, path).is_some(), "{path:?} not in {out}");
                assert_eq!(
                    locate(&out, path),
                    Some(expected_position(&out, *offset)),
                    "{path:?} in {out:?}"
                );
                checked += 1;

                // A path one step past a scalar, or an index beyond an array, is absent.
                let mut beyond = path.clone();
                beyond.push(Seg::Index(5));
                assert_eq!(locate(&out, &beyond), None);
            }

            // Damaged documents: any result is fine, as long as nothing panics.
            for cut in (0..=out.len()).filter(|&i| out.is_char_boundary(i)) {
                for (path, _) in spots.iter().take(8) {
                    let _ = locate(&out[..cut], path);
                }
            }
            let mut bytes = out.clone().into_bytes();
            for _ in 0..8 {
                let i = rng.below(bytes.len());
                bytes[i] = b"{}[]\",:\\u0e-. \n\xff\x80"[rng.below(17)];
                let damaged = String::from_utf8_lossy(&bytes);
                for (path, _) in &spots {
                    let _ = locate(&damaged, path);
                }
            }
        }
        assert!(checked > 1000, "only {checked} positions checked");
    }
}
