//! Durations as operators write them: `250ms`, `1s`, `5m`, `1h`.

use std::fmt;
use std::time::Duration;

/// Why a text is not a duration. Which values to suggest instead depends on the setting,
/// so the caller words the hint for the first two.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// Does not start with a number.
    NoNumber,
    /// A number alone, which could mean seconds or milliseconds.
    MissingUnit(u64),
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoNumber => f.write_str("expected a whole number followed by ms, s, m or h"),
            Error::MissingUnit(number) => write!(f, "missing unit after {number}: use ms, s, m or h"),
            Error::Invalid(reason) => f.write_str(reason),
        }
    }
}

/// Parses a number followed by a unit (`ms`, `s`, `m`, `h`). Whole numbers only, so that the
/// value written in `/etc/default/latency` is exactly the value used.
pub fn parse(text: &str) -> Result<Duration, Error> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(Error::NoNumber);
    }
    let value: u64 = number.parse().map_err(|_| Error::Invalid(format!("{number} is too large")))?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err(Error::MissingUnit(value)),
        other => {
            return Err(Error::Invalid(format!(
                "unknown unit '{}': use ms, s, m or h",
                other.escape_debug()
            )));
        }
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| Error::Invalid(format!("{text} is too large")))
}

/// Formats a duration the way `parse` reads it, choosing the largest exact unit.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    let units = [(3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    for (size, unit) in units {
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        let cases = [("250ms", 250), ("1s", 1_000), ("5m", 300_000), ("2h", 7_200_000), ("0s", 0)];
        for (text, millis) in cases {
            assert_eq!(parse(text), Ok(Duration::from_millis(millis)), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_values_with_a_reason() {
        let cases = [
            ("", "whole number"),
            ("s", "whole number"),
            ("1.5s", "unknown unit '.5s'"),
            ("10", "missing unit after 10"),
            ("10 s", "unknown unit ' s'"),
            ("-1s", "whole number"),
            ("3d", "unknown unit 'd'"),
            ("99999999999999999999s", "too large"),
            ("9999999999999999h", "too large"),
        ];
        for (text, reason) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn format_round_trips_through_parse() {
        for text in ["250ms", "1s", "90s", "5m", "1h", "1500ms"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
