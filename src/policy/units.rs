//! Human-friendly sizes and durations for the JSON policy file and the command line.
//!
//! [`Size`] accepts `65536`, `"64K"`, `"64MiB"`, `"2G"`…; [`Dur`] accepts `"500ms"`, `"1.5s"`,
//! `"5m"`…. Both serialize to a canonical exact form that parses back to the same value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A byte count.
///
/// In JSON it is a non-negative integer (bytes) or a string: a decimal integer optionally followed
/// by `K`, `M`, `G` or `T` (also written `KB`/`KiB`, `MB`/`MiB`, …). Suffixes are case-insensitive
/// and always binary (1024-based); whitespace is not allowed anywhere, and values past
/// [`u64::MAX`] are rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

/// A duration.
///
/// Written as a non-negative decimal number followed by a unit: `h`, `m`, `s`, `ms`, `us` or `ns`,
/// e.g. `"500ms"`, `"60s"`, `"5m"`, `"1.5s"`. A unit is required. Zero is accepted (callers decide
/// whether it is meaningful); values finer than a nanosecond or too large for
/// [`Duration`] are rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

const NEGATIVE: &str = "must not be negative";
const SIZE_EXPECTED: &str = r#"expected bytes or a number with a K, M, G or T suffix, such as "64M" or "2G""#;
const SIZE_TOO_LARGE: &str = "too large (the maximum is 18446744073709551615 bytes)";
const DUR_EXPECTED: &str = r#"expected a number with a unit (ms, s, m, h), such as "500ms", "60s" or "5m""#;
const DUR_TOO_LARGE: &str = "too large";
const DUR_TOO_PRECISE: &str = "more precise than a nanosecond";

/// Size suffixes used for display, largest first.
const SIZE_UNITS: [(u64, &str); 4] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];

/// Duration units and their length in nanoseconds, largest first.
const DUR_UNITS: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

const NANOS_PER_SEC: u128 = 1_000_000_000;

impl Size {
    /// The number of bytes.
    #[must_use]
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The largest unit that divides the size exactly, as `(count, suffix)`; `None` for zero and
    /// for sizes that are not a multiple of 1024.
    fn scaled(self) -> Option<(u64, &'static str)> {
        let n = self.0;
        SIZE_UNITS
            .iter()
            .find(|&&(per, _)| n != 0 && n % per == 0)
            .map(|&(per, suffix)| (n / per, suffix))
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let err = |why: &str| format!("invalid size {s:?}: {why}");
        if s.strip_prefix('-')
            .is_some_and(|rest| !rest.starts_with('-') && rest.parse::<Self>().is_ok())
        {
            return Err(err(NEGATIVE));
        }
        let (num, suffix) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        if num.is_empty() {
            return Err(err(SIZE_EXPECTED));
        }
        let multiplier: u64 = match suffix.to_ascii_lowercase().as_str() {
            "" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            _ => return Err(err(SIZE_EXPECTED)),
        };
        // `num` is a non-empty run of ASCII digits, so parsing can only fail by overflowing.
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .map(Size)
            .ok_or_else(|| err(SIZE_TOO_LARGE))
    }
}

/// The shortest exact form: `"64M"`, `"2G"`, `"1536K"`, or plain bytes (`1000`) when the size is
/// not a multiple of 1024.
impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scaled() {
            Some((count, suffix)) => write!(f, "{count}{suffix}"),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Serializes as a string with a suffix (`"64M"`) when the size is a non-zero multiple of 1024,
/// and as a plain JSON integer otherwise.
impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.scaled() {
            Some(_) => serializer.collect_str(self),
            None => serializer.serialize_u64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = Size;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a size in bytes or a string such as "64M" or "2G""#)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("invalid size {v}: {NEGATIVE}")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Size, E> {
                // serde_json hands integers that overflow u64 over as floats.
                let why = if v >= 18_446_744_073_709_551_616.0 {
                    SIZE_TOO_LARGE
                } else {
                    r#"expected a whole number of bytes or a string such as "64M" or "2G""#
                };
                Err(E::custom(format!("invalid size {v}: {why}")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

impl Dur {
    /// The duration as a [`Duration`].
    #[must_use]
    pub fn as_duration(self) -> Duration {
        self.0
    }

    /// The duration in whole seconds, rounded up (`1500ms` → 2, `0s` → 0), saturating at
    /// [`u64::MAX`].
    #[must_use]
    pub fn whole_seconds_ceil(self) -> u64 {
        self.0
            .as_secs()
            .saturating_add(u64::from(self.0.subsec_nanos() > 0))
    }
}

/// The value of a run of ASCII digits, or `None` if it overflows.
fn decimal(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl FromStr for Dur {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let err = |why: &str| format!("invalid duration {s:?}: {why}");
        if s.strip_prefix('-')
            .is_some_and(|rest| !rest.starts_with('-') && rest.parse::<Self>().is_ok())
        {
            return Err(err(NEGATIVE));
        }
        let (num, unit) = s.split_at(
            s.find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(s.len()),
        );
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let well_formed = is_digits(int) && (int.len() == num.len() || is_digits(frac));
        let per_unit = match DUR_UNITS.iter().find(|&&(name, _)| name == unit) {
            Some(&(_, per_unit)) if well_formed => per_unit,
            _ => return Err(err(DUR_EXPECTED)),
        };

        let int_ns = decimal(int)
            .and_then(|n| n.checked_mul(per_unit))
            .ok_or_else(|| err(DUR_TOO_LARGE))?;
        // The fraction contributes `digits * per_unit / 10^len` nanoseconds, which must be whole.
        // Overflow needs more than 25 significant digits, which can never give whole nanoseconds.
        let frac = frac.trim_end_matches('0');
        let frac_ns = u32::try_from(frac.len())
            .ok()
            .and_then(|len| 10u128.checked_pow(len))
            .zip(decimal(frac).and_then(|n| n.checked_mul(per_unit)))
            .and_then(|(scale, ns)| (ns % scale == 0).then_some(ns / scale))
            .ok_or_else(|| err(DUR_TOO_PRECISE))?;

        let total = int_ns.checked_add(frac_ns).ok_or_else(|| err(DUR_TOO_LARGE))?;
        let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| err(DUR_TOO_LARGE))?;
        // Always below 10^9, so the cast is lossless.
        let nanos = (total % NANOS_PER_SEC) as u32;
        Ok(Dur(Duration::new(secs, nanos)))
    }
}

/// The exact form in the largest unit that divides the duration: `"1h"`, `"5m"`, `"60s"` is
/// `"1m"`, `"1500ms"`, `"250us"`, `"10ns"`; zero is `"0s"`.
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns == 0 {
            return f.write_str("0s");
        }
        // Nanoseconds divide everything, so the fallback is never used.
        let &(unit, per_unit) = DUR_UNITS
            .iter()
            .find(|&&(_, per_unit)| ns % per_unit == 0)
            .unwrap_or(&("ns", 1));
        write!(f, "{}{unit}", ns / per_unit)
    }
}

/// Serializes as the [`Display`](fmt::Display) string.
impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurVisitor;

        impl Visitor<'_> for DurVisitor {
            type Value = Dur;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration string such as "500ms", "60s" or "5m""#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(DurVisitor)
    }
}

/// A CPU bandwidth in CPUs (`1.5` = one and a half CPUs), kept in
/// thousandths so that it compares exactly. JSON: a number above 0, at most
/// 4096, with at most three decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cpus(pub u64);

impl Cpus {
    /// The cgroup quota for `period_us`: microseconds of CPU per period.
    pub fn quota_us(self, period_us: u64) -> u64 {
        (self.0.saturating_mul(period_us) / 1000).max(1000)
    }
}

impl FromStr for Cpus {
    type Err = String;
    fn from_str(s: &str) -> Result<Cpus, String> {
        let v: f64 = s
            .parse()
            .map_err(|_| format!("invalid CPU count {s:?}: expected a number such as 0.5 or 2"))?;
        Cpus::from_f64(v)
    }
}

impl Cpus {
    fn from_f64(v: f64) -> Result<Cpus, String> {
        if !v.is_finite() || v <= 0.0 || v > 4096.0 {
            return Err(format!(
                "{v} CPUs: expected a number above 0 and at most 4096, such as 0.5 or 2"
            ));
        }
        let millis = (v * 1000.0).round();
        if (millis / 1000.0 - v).abs() > 1e-9 || millis < 1.0 {
            return Err(format!("{v} CPUs: at most three decimals (0.001 CPU)"));
        }
        Ok(Cpus(millis as u64))
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0 as f64 / 1000.0)
    }
}

impl Serialize for Cpus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / 1000.0)
    }
}

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Cpus::from_f64(v).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;
    const G: u64 = 1 << 30;
    const T: u64 = 1 << 40;

    fn size(s: &str) -> Result<u64, String> {
        s.parse::<Size>().map(Size::bytes)
    }

    fn dur(s: &str) -> Result<Duration, String> {
        s.parse::<Dur>().map(Dur::as_duration)
    }

    /// xorshift64*, enough to spread test values around.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn size_accepted_forms() {
        let cases = [
            ("0", 0),
            ("65536", 65536),
            ("007", 7),
            ("64K", 64 * K),
            ("64k", 64 * K),
            ("64KB", 64 * K),
            ("64kb", 64 * K),
            ("64KiB", 64 * K),
            ("64kib", 64 * K),
            ("64M", 64 * M),
            ("64MiB", 64 * M),
            ("64MB", 64 * M),
            ("2G", 2 * G),
            ("2gib", 2 * G),
            ("1T", T),
            ("1Tb", T),
            ("0K", 0),
            ("16777215T", 16_777_215 * T),
            ("18446744073709551615", u64::MAX),
        ];
        for (text, bytes) in cases {
            assert_eq!(size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn size_errors() {
        assert_eq!(
            size("64Q").unwrap_err(),
            r#"invalid size "64Q": expected bytes or a number with a K, M, G or T suffix, such as "64M" or "2G""#
        );
        for bad in [
            "", "K", "64Q", "64B", "64iB", "64KiBs", "64 M", " 64M", "64M ", "\t1", "1.5G", "+5", "0x10",
            "1e3", "64K\n", "6_4K", "NaN", "∞", "64Ｍ",
        ] {
            let msg = size(bad).unwrap_err();
            assert!(msg.contains("expected bytes or a number"), "{bad:?}: {msg}");
        }
        assert_eq!(
            size("-5M").unwrap_err(),
            r#"invalid size "-5M": must not be negative"#
        );
        assert!(size("--5M").unwrap_err().contains("expected bytes"));
        assert!(size(&"-".repeat(100_000)).is_err());
    }

    #[test]
    fn size_overflow() {
        for big in [
            "99999999999T",
            "16777216T",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let msg = size(big).unwrap_err();
            assert!(msg.contains("too large"), "{big}: {msg}");
        }
    }

    #[test]
    fn size_display() {
        let cases = [
            (0, "0"),
            (1, "1"),
            (1000, "1000"),
            (1023, "1023"),
            (1024, "1K"),
            (1025, "1025"),
            (1536 * K, "1536K"),
            (64 * M, "64M"),
            (2 * G, "2G"),
            (3 * G + 512 * M, "3584M"),
            (T, "1T"),
            (1024 * T, "1024T"),
            (u64::MAX, "18446744073709551615"),
            (u64::MAX - 1023, "18014398509481983K"),
            (u64::MAX - (T - 1), "16777215T"),
        ];
        for (bytes, text) in cases {
            assert_eq!(Size(bytes).to_string(), text);
        }
    }

    fn size_samples() -> Vec<u64> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut samples = vec![0, 1, u64::MAX, u64::MAX - 1023, u64::MAX - 1024];
        for shift in 0..64 {
            let p = 1u64 << shift;
            samples.extend([p, p - 1, p + 1, p.wrapping_mul(3), p.wrapping_mul(1000)]);
        }
        for _ in 0..2000 {
            let r = rng.next();
            samples.extend([r, r >> (r % 64), (r >> 40) << (r % 41)]);
        }
        samples
    }

    #[test]
    fn size_round_trips() {
        for n in size_samples() {
            let s = Size(n);
            assert_eq!(s.to_string().parse::<Size>(), Ok(s), "{n}");
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Size>(&json).unwrap(), s, "{json}");
            assert_eq!(json.trim_matches('"'), s.to_string());
        }
    }

    #[test]
    fn size_serde() {
        let from = |json: &str| serde_json::from_str::<Size>(json).map_err(|e| e.to_string());
        assert_eq!(from(r#""64M""#), Ok(Size(64 * M)));
        assert_eq!(from("65536"), Ok(Size(65536)));
        assert_eq!(from("18446744073709551615"), Ok(Size(u64::MAX)));
        assert_eq!(
            from("-1").unwrap_err(),
            "invalid size -1: must not be negative at line 1 column 2"
        );
        assert!(from("1.5")
            .unwrap_err()
            .contains("expected a whole number of bytes"));
        assert!(from("1e3")
            .unwrap_err()
            .contains("expected a whole number of bytes"));
        assert!(from("18446744073709551616").unwrap_err().contains("too large"));
        assert!(from(r#""99999999999T""#).unwrap_err().contains("too large"));
        assert_eq!(
            from("true").unwrap_err(),
            r#"invalid type: boolean `true`, expected a size in bytes or a string such as "64M" or "2G" at line 1 column 4"#
        );
        // Errors from strings carry the position of the offending value.
        let err = serde_json::from_str::<Vec<Size>>("[\n  1,\n  \"64Q\"\n]").unwrap_err();
        assert_eq!((err.line(), err.column()), (3, 7));
        assert!(err
            .to_string()
            .starts_with(r#"invalid size "64Q": expected bytes"#));

        assert_eq!(serde_json::to_string(&Size(64 * M)).unwrap(), r#""64M""#);
        assert_eq!(serde_json::to_string(&Size(1000)).unwrap(), "1000");
        assert_eq!(serde_json::to_string(&Size(0)).unwrap(), "0");
    }

    #[test]
    fn dur_accepted_forms() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("60s", Duration::from_secs(60)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("1.50s", Duration::from_millis(1500)),
            ("0.5ms", Duration::from_micros(500)),
            ("1.25h", Duration::from_secs(4500)),
            ("0.000001s", Duration::from_micros(1)),
            ("250us", Duration::from_micros(250)),
            ("10ns", Duration::from_nanos(10)),
            ("0s", Duration::ZERO),
            ("0.0ms", Duration::ZERO),
            ("007s", Duration::from_secs(7)),
            ("0.000000000005h", Duration::from_nanos(18)),
            ("18446744073709551615s", Duration::new(u64::MAX, 0)),
            ("18446744073709551615.999999999s", Duration::MAX),
            (
                "5124095576030431h",
                Duration::from_secs(5_124_095_576_030_431 * 3600),
            ),
        ];
        for (text, d) in cases {
            assert_eq!(dur(text), Ok(d), "{text}");
        }
    }

    #[test]
    fn dur_errors() {
        assert_eq!(
            dur("60").unwrap_err(),
            r#"invalid duration "60": expected a number with a unit (ms, s, m, h), such as "500ms", "60s" or "5m""#
        );
        for bad in [
            "", "s", "5", "1.5", "5d", "5S", "5H", "5 s", " 5s", "5s ", "5sec", "1.s", ".5s", "1..5s",
            "1.2.3s", "1e3s", "NaN", "nan", "NaNs", "inf", "infs", "+5s", "5µs", "--5s", "-s",
        ] {
            let msg = dur(bad).unwrap_err();
            assert!(msg.contains("expected a number with a unit"), "{bad:?}: {msg}");
        }
        assert_eq!(
            dur("-5s").unwrap_err(),
            r#"invalid duration "-5s": must not be negative"#
        );
        assert!(dur("-0.5ms").unwrap_err().contains("must not be negative"));
        assert!(dur(&format!("{}5s", "-".repeat(100_000))).is_err());
    }

    #[test]
    fn dur_precision_and_overflow() {
        for fine in [
            "0.5ns",
            "1.0000000001s",
            "0.0000000000001h",
            "18446744073709551615.9999999991s",
            "0.000000000000000000000000000000000000000000001s",
        ] {
            let msg = dur(fine).unwrap_err();
            assert!(msg.contains("more precise than a nanosecond"), "{fine}: {msg}");
        }
        for big in [
            "18446744073709551616s",
            "5124095576030432h",
            "99999999999999999999999h",
            "999999999999999999999999999999999999999999999ns",
        ] {
            let msg = dur(big).unwrap_err();
            assert!(msg.contains("too large"), "{big}: {msg}");
        }
    }

    #[test]
    fn dur_display() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(5400), "90m"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(250), "250us"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::MAX, "18446744073709551615999999999ns"),
        ];
        for (d, text) in cases {
            assert_eq!(Dur(d).to_string(), text);
        }
    }

    #[test]
    fn dur_round_trips() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let mut samples = vec![Duration::ZERO, Duration::MAX, Duration::new(u64::MAX, 0)];
        for _ in 0..2000 {
            let r = rng.next();
            let small = r % 1_000_000;
            samples.extend([
                Duration::new(r, (r % 1_000_000_000) as u32),
                Duration::from_secs(small),
                Duration::from_secs(small * 60),
                Duration::from_secs(small * 3600),
                Duration::from_millis(small),
                Duration::from_micros(small),
                Duration::from_nanos(small),
                Duration::from_nanos(r),
            ]);
        }
        for d in samples {
            let text = Dur(d).to_string();
            assert_eq!(dur(&text), Ok(d), "{text}");
            let json = serde_json::to_string(&Dur(d)).unwrap();
            assert_eq!(json, format!("{text:?}"));
            assert_eq!(serde_json::from_str::<Dur>(&json).unwrap(), Dur(d));
        }
    }

    #[test]
    fn dur_serde() {
        let from = |json: &str| serde_json::from_str::<Dur>(json).map_err(|e| e.to_string());
        assert_eq!(from(r#""5m""#), Ok(Dur(Duration::from_secs(300))));
        assert_eq!(
            from("60").unwrap_err(),
            r#"invalid type: integer `60`, expected a duration string such as "500ms", "60s" or "5m" at line 1 column 2"#
        );
        assert!(from(r#""60""#)
            .unwrap_err()
            .contains("expected a number with a unit"));
        assert!(from(r#""-1s""#).unwrap_err().contains("must not be negative"));
        assert_eq!(
            serde_json::to_string(&Dur(Duration::from_millis(1500))).unwrap(),
            r#""1500ms""#
        );
    }

    #[test]
    fn whole_seconds_ceil() {
        let ceil = |d| Dur(d).whole_seconds_ceil();
        assert_eq!(ceil(Duration::ZERO), 0);
        assert_eq!(ceil(Duration::from_nanos(1)), 1);
        assert_eq!(ceil(Duration::from_millis(1500)), 2);
        assert_eq!(ceil(Duration::from_secs(2)), 2);
        assert_eq!(ceil(Duration::new(u64::MAX, 0)), u64::MAX);
        assert_eq!(ceil(Duration::MAX), u64::MAX);
    }
}
