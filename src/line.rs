//! The results line, exactly as the seed wrote it:
//! `[2025-08-12 06:56:53] Latency: 0.27 ms` or `[2025-08-12 06:56:53] Latency: timeout`.

use std::fmt;
use std::time::Duration;

/// A calendar date and time of day, to the second, in the local timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// What one probe measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Reply(Duration),
    /// No valid reply in time, an ICMP error for the probe, or a send that failed.
    Timeout,
}

/// One line of the results file: when the probe was sent (local time) and its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub sent: LocalTime,
    pub outcome: Outcome,
}

impl fmt::Display for Line {
    /// Formats without the trailing newline. Milliseconds are rounded half up to two decimals
    /// in integer arithmetic, so 0.005 ms shows as 0.01 and never as 0.00 by float error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.sent;
        write!(
            f,
            "[{:04}-{:02}-{:02} {:02}:{:02}:{:02}] Latency: ",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )?;
        match self.outcome {
            Outcome::Reply(rtt) => {
                let hundredths = (rtt.as_nanos() + 5_000) / 10_000;
                write!(f, "{}.{:02} ms", hundredths / 100, hundredths % 100)
            }
            Outcome::Timeout => f.write_str("timeout"),
        }
    }
}

/// Why a text is not a results line.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::str::FromStr for Line {
    type Err = ParseError;

    /// Parses one line without its newline. The latency is read back at the file's precision
    /// (hundredths of a millisecond).
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let rest = text.strip_prefix('[').ok_or(ParseError("does not start with '['"))?;
        let (stamp, rest) = rest.split_at_checked(19).ok_or(ParseError("timestamp too short"))?;
        let sent = parse_stamp(stamp)?;
        let value = rest.strip_prefix("] Latency: ").ok_or(ParseError("missing '] Latency: '"))?;
        let outcome = if value == "timeout" {
            Outcome::Timeout
        } else {
            let millis = value.strip_suffix(" ms").ok_or(ParseError("latency must end in ' ms'"))?;
            let (whole, fraction) = millis.split_once('.').ok_or(ParseError("latency needs two decimals"))?;
            if fraction.len() != 2 || !is_digits(whole) || !is_digits(fraction) {
                return Err(ParseError("latency must look like 0.27"));
            }
            let whole: u64 = whole.parse().map_err(|_| ParseError("latency too large"))?;
            let fraction: u64 = fraction.parse().map_err(|_| ParseError("bad decimals"))?;
            let micros = whole
                .checked_mul(1_000)
                .and_then(|m| m.checked_add(fraction * 10))
                .ok_or(ParseError("latency too large"))?;
            Outcome::Reply(Duration::from_micros(micros))
        };
        Ok(Line { sent, outcome })
    }
}

/// Whether `bytes` could be a results line cut short, as a crash in the middle of its
/// `write` leaves it: the start of the format, character class by character class. Only
/// that may be cut from a file's end; anything else is someone else's data.
pub fn is_cut_short(bytes: &[u8]) -> bool {
    const STAMP: &[u8] = b"[0000-00-00 00:00:00] Latency: ";
    let (head, outcome) = bytes.split_at(bytes.len().min(STAMP.len()));
    let stamp_fits = head.iter().zip(STAMP).all(|(&byte, &want)| match want {
        b'0' => byte.is_ascii_digit(),
        _ => byte == want,
    });
    !bytes.is_empty() && stamp_fits && (b"timeout".starts_with(outcome) || is_rtt_cut_short(outcome))
}

/// Whether `text` is the start of `<digits>.<two digits> ms`.
fn is_rtt_cut_short(text: &[u8]) -> bool {
    let digits = |text: &[u8]| text.iter().take_while(|b| b.is_ascii_digit()).count();
    let whole = digits(text);
    let Some(rest) = text[whole..].strip_prefix(b".") else { return whole == text.len() };
    let decimals = digits(rest).min(2);
    whole > 0 && (decimals == rest.len() || (decimals == 2 && b" ms".starts_with(&rest[2..])))
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn parse_stamp(stamp: &str) -> Result<LocalTime, ParseError> {
    let bytes = stamp.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, sep)| bytes[at] != sep) {
        return Err(ParseError("timestamp must look like 2025-08-12 06:56:53"));
    }
    let field = |range: std::ops::Range<usize>, max: u32| -> Result<u32, ParseError> {
        let text = &stamp[range];
        let value = if is_digits(text) { text.parse().ok() } else { None };
        value.filter(|v| *v <= max).ok_or(ParseError("timestamp field out of range"))
    };
    let time = LocalTime {
        year: field(0..4, 9999)? as i32,
        month: field(5..7, 12)? as u8,
        day: field(8..10, 31)? as u8,
        hour: field(11..13, 23)? as u8,
        minute: field(14..16, 59)? as u8,
        second: field(17..19, 59)? as u8,
    };
    if time.month == 0 || time.day == 0 {
        return Err(ParseError("timestamp field out of range"));
    }
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: LocalTime = LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };

    fn reply(micros: u64) -> Line {
        Line { sent: SENT, outcome: Outcome::Reply(Duration::from_micros(micros)) }
    }

    #[test]
    fn formats_exactly_like_the_seed() {
        assert_eq!(reply(270).to_string(), "[2025-08-12 06:56:53] Latency: 0.27 ms");
        let timeout = Line { sent: SENT, outcome: Outcome::Timeout };
        assert_eq!(timeout.to_string(), "[2025-08-12 06:56:53] Latency: timeout");
    }

    #[test]
    fn rounds_half_up_to_hundredths_of_a_millisecond() {
        let cases = [
            (Duration::from_nanos(4_999), "0.00"),
            (Duration::from_nanos(5_000), "0.01"),
            (Duration::from_micros(1_234), "1.23"),
            (Duration::from_micros(1_235), "1.24"),
            (Duration::from_nanos(999_995_000), "1000.00"),
            (Duration::from_secs(12), "12000.00"),
        ];
        for (rtt, text) in cases {
            let line = Line { sent: SENT, outcome: Outcome::Reply(rtt) };
            assert_eq!(line.to_string(), format!("[2025-08-12 06:56:53] Latency: {text} ms"));
        }
    }

    #[test]
    fn round_trips_at_file_precision() {
        for line in [reply(270), reply(0), reply(123_450), Line { sent: SENT, outcome: Outcome::Timeout }] {
            assert_eq!(line.to_string().parse::<Line>(), Ok(line));
        }
    }

    #[test]
    fn every_start_of_a_line_is_cut_short_and_nothing_else() {
        for line in [reply(123_450).to_string(), Line { sent: SENT, outcome: Outcome::Timeout }.to_string()] {
            for end in 1..=line.len() {
                assert!(is_cut_short(&line.as_bytes()[..end]), "{:?}", &line[..end]);
            }
        }
        let foreign = [
            "",
            "[\"db-password\",\"hunter2\"]",
            "[operator note: migrated]",
            "[2025-08-12 06:56:53] Latency: 0.27 msx",
            "[2025-08-12 06:56:53] Latency: 0.271",
            "[2025-08-12 06:56:53] Latency: .27",
            "[2025-08-12 06:56:53] Latency: 0.2 ms",
            "[2025-08-12 06:56:53] Latency: timeouts",
            "[2025-08-12 06:56:53] Latency:  0.27 ms",
            "[2025/08",
        ];
        for text in foreign {
            assert!(!is_cut_short(text.as_bytes()), "{text:?}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_results_line() {
        let cases = [
            "",
            "root:x:0:0:root:/root:/bin/bash",
            "[2025-08-12 06:56:53] Latency: 0.27",
            "[2025-08-12 06:56:53] Latency: 0.2 ms",
            "[2025-08-12 06:56:53] Latency: -0.27 ms",
            "[2025-08-12 06:56:53] Latency: lost",
            "[2025-13-12 06:56:53] Latency: 0.27 ms",
            "[2025-08-12T06:56:53] Latency: 0.27 ms",
            "[2025-08-12 06:56:5] Latency: 0.27 ms",
            "[2025-08-12 06:56:53] Latency: 0.27 ms trailing",
        ];
        for text in cases {
            assert!(text.parse::<Line>().is_err(), "{text}");
        }
    }
}
