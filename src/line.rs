//! The results line, both ways. With one target, exactly as the seed wrote it:
//! `[2025-08-12 06:56:53] Latency: 0.27 ms` or `[2025-08-12 06:56:53] Latency: timeout`.
//! With several, the target's name follows the timestamp:
//! `[2025-08-12 06:56:53] db-2 Latency: 0.27 ms`.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
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

impl LocalTime {
    /// The calendar time counted in seconds as if it were UTC ("local seconds"): pure
    /// arithmetic (days from the civil date, proleptic Gregorian), no timezone lookup. The
    /// statistics slot probes by these, the clock the results lines carry, so that lines read
    /// back and live probes agree. They are not an instant: when the clock goes back an hour
    /// (the end of summer time), an hour of local seconds comes twice; when it goes forward,
    /// an hour of them never comes.
    pub fn seconds(&self) -> i64 {
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        // Howard Hinnant's days_from_civil: years start in March, so February's length
        // matters only at a year's end.
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        days * 86_400 + i64::from(self.hour) * 3_600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }

    /// The calendar time `seconds` local seconds stand for (see `seconds`); outside the
    /// years 0 to 9999, which a line cannot carry, the nearest end of that range.
    pub fn from_seconds(seconds: i64) -> LocalTime {
        let first = LocalTime { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
        let last = LocalTime { year: 9999, month: 12, day: 31, hour: 23, minute: 59, second: 59 };
        let seconds = seconds.clamp(first.seconds(), last.seconds());
        let (days, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days.
        let days = days + 719_468;
        let era = days.div_euclid(146_097);
        let day_of_era = days - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        LocalTime {
            year: year as i32,
            month: month as u8,
            day: day as u8,
            hour: (time / 3_600) as u8,
            minute: (time / 60 % 60) as u8,
            second: (time % 60) as u8,
        }
    }

    /// Whether the day exists in its month (the line parser checks only that it is 1 to 31).
    pub fn is_valid_date(&self) -> bool {
        LocalTime::from_seconds(self.seconds()) == *self
    }
}

/// What one probe measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Reply(Duration),
    /// No valid reply in time, an ICMP error for the probe, or a send that failed.
    Timeout,
}

/// The longest target name, so that a line stays short and `TARGET_WITHIN` bytes tell its target.
pub const NAME_MAX: usize = 64;

/// The word after the timestamp (seed form) or after the name: a name is never this word, so
/// the two forms never read alike.
const LATENCY: &[u8] = b"Latency:";

/// The shape of a line's start up to its target's name, digit by digit.
const STAMP: &[u8] = b"[0000-00-00 00:00:00] ";

/// The first bytes of a line that tell which target it names (see `line_names`).
pub const TARGET_WITHIN: usize = STAMP.len() + NAME_MAX + b" Latency: ".len();

/// A target's name as lines carry it: 1 to 64 letters, digits, '.', '_', '-', ':' or '%',
/// and never `Latency:`, so it holds no space and a named line never reads as a seed line.
/// Cheap to clone: a line carrying it goes to every caller waiting for that probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(Arc<str>);

/// Why a text is not a target name.
#[derive(Debug, PartialEq, Eq)]
pub struct NameError {
    name: String,
    reason: BadName,
}

#[derive(Debug, PartialEq, Eq)]
enum BadName {
    Empty,
    TooLong(usize),
    Holds(u8),
    IsTheWord,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a target name (", self.name)?;
        match self.reason {
            BadName::Empty => f.write_str("it is empty")?,
            BadName::TooLong(len) => write!(f, "it is {len} characters long")?,
            BadName::Holds(byte) if byte.is_ascii_graphic() || byte == b' ' => {
                write!(f, "it holds {:?}", byte as char)?
            }
            BadName::Holds(byte) => write!(f, "it holds byte 0x{byte:02x}")?,
            BadName::IsTheWord => f.write_str("it is the word that follows every name")?,
        }
        write!(f, "): use 1 to {NAME_MAX} letters, digits, '.', '_', '-', ':' or '%'")
    }
}

impl std::error::Error for NameError {}

impl std::str::FromStr for Name {
    type Err = NameError;

    fn from_str(text: &str) -> Result<Name, NameError> {
        check_name(text.as_bytes()).map_err(|reason| NameError { name: text.into(), reason })?;
        Ok(Name(text.into()))
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_name_byte(byte: &u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._-:%".contains(byte)
}

fn check_name(name: &[u8]) -> Result<(), BadName> {
    if let Some(&byte) = name.iter().find(|byte| !is_name_byte(byte)) {
        Err(BadName::Holds(byte))
    } else if name.is_empty() {
        Err(BadName::Empty)
    } else if name.len() > NAME_MAX {
        Err(BadName::TooLong(name.len()))
    } else if name == LATENCY {
        Err(BadName::IsTheWord)
    } else {
        Ok(())
    }
}

/// Which form lines take: the seed's when the daemon has one target, or naming their target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Seed,
    Named,
}

/// One line of the results file: when the probe was sent (local time), to which target
/// (named only when there are several), and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sent: LocalTime,
    /// None: the seed form, written when the daemon has a single target.
    pub target: Option<Name>,
    pub outcome: Outcome,
}

impl Line {
    pub fn form(&self) -> Form {
        if self.target.is_some() { Form::Named } else { Form::Seed }
    }
}

impl fmt::Display for Line {
    /// Formats without the trailing newline. Milliseconds are rounded half up to two decimals
    /// in integer arithmetic, so 0.005 ms shows as 0.01 and never as 0.00 by float error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.sent;
        write!(
            f,
            "[{:04}-{:02}-{:02} {:02}:{:02}:{:02}] ",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )?;
        if let Some(target) = &self.target {
            write!(f, "{target} ")?;
        }
        f.write_str("Latency: ")?;
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

    /// Parses one line, of either form, without its newline. The latency is read back at the
    /// file's precision (hundredths of a millisecond).
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let rest = text.strip_prefix('[').ok_or(ParseError("does not start with '['"))?;
        let (stamp, rest) = rest.split_at_checked(19).ok_or(ParseError("timestamp too short"))?;
        let sent = parse_stamp(stamp)?;
        let rest = rest.strip_prefix("] ").ok_or(ParseError("missing '] ' after the timestamp"))?;
        let (target, value) = match rest.strip_prefix("Latency: ") {
            Some(value) => (None, value),
            None => {
                let (name, value) = rest.split_once(' ').ok_or(ParseError("missing 'Latency: '"))?;
                check_name(name.as_bytes())
                    .map_err(|_| ParseError("neither 'Latency: ' nor a target name"))?;
                let value = value
                    .strip_prefix("Latency: ")
                    .ok_or(ParseError("missing 'Latency: ' after the name"))?;
                (Some(Name(name.into())), value)
            }
        };
        Ok(Line { sent, target, outcome: parse_outcome(value)? })
    }
}

fn parse_outcome(value: &str) -> Result<Outcome, ParseError> {
    if value == "timeout" {
        return Ok(Outcome::Timeout);
    }
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
    Ok(Outcome::Reply(Duration::from_micros(micros)))
}

/// Whether a line names `target`, told from its first `TARGET_WITHIN` bytes (more do no
/// harm). A seed-form line names none, nor does anything that is no results line. Only the
/// timestamp's shape is checked, and the name compared first: a filtered download runs this
/// on every line of the file.
pub fn line_names(start: &[u8], target: &str) -> bool {
    let Some((stamp, rest)) = start.split_at_checked(STAMP.len()) else { return false };
    let Some(after) = rest.strip_prefix(target.as_bytes()) else { return false };
    after.starts_with(b" Latency: ") && fits_stamp(stamp) && check_name(target.as_bytes()).is_ok()
}

/// Whether `bytes` is `STAMP`'s start, character class by character class.
fn fits_stamp(bytes: &[u8]) -> bool {
    bytes.iter().zip(STAMP).all(|(&byte, &want)| match want {
        b'0' => byte.is_ascii_digit(),
        _ => byte == want,
    })
}

/// Whether `bytes` could be a results line of either form cut short, as a crash in the
/// middle of its `write` leaves it: the start of the format, character class by character
/// class. Only that may be cut from a file's end; anything else is someone else's data.
pub fn is_cut_short(bytes: &[u8]) -> bool {
    let (head, rest) = bytes.split_at(bytes.len().min(STAMP.len()));
    !bytes.is_empty() && fits_stamp(head) && (is_value_cut_short(rest) || is_named_cut_short(rest))
}

/// Whether `text` is the start of `Latency: <outcome>`.
fn is_value_cut_short(text: &[u8]) -> bool {
    const WORD: &[u8] = b"Latency: ";
    let (head, outcome) = text.split_at(text.len().min(WORD.len()));
    WORD.starts_with(head) && (b"timeout".starts_with(outcome) || is_rtt_cut_short(outcome))
}

/// Whether `text` is the start of `<name> Latency: <outcome>`.
fn is_named_cut_short(text: &[u8]) -> bool {
    let name = text.iter().take_while(|byte| is_name_byte(byte)).count();
    if name == text.len() {
        return name <= NAME_MAX;
    }
    text[name] == b' ' && check_name(&text[..name]).is_ok() && is_value_cut_short(&text[name + 1..])
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

/// When the line starting `start` was sent: its timestamp, if it starts with one.
pub fn line_time(start: &[u8]) -> Option<LocalTime> {
    let stamp = start.strip_prefix(b"[")?.get(..19).filter(|_| start.get(20) == Some(&b']'))?;
    parse_stamp(std::str::from_utf8(stamp).ok()?).ok()
}

/// `2025-08-12 06:56:53`, exactly 19 characters.
pub fn parse_stamp(stamp: &str) -> Result<LocalTime, ParseError> {
    let bytes = stamp.as_bytes();
    if bytes.len() != 19 {
        return Err(ParseError("timestamp must look like 2025-08-12 06:56:53"));
    }
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
    const LONGEST_NAME: &str = "n234567890123456789012345678901234567890123456789012345678901234";

    fn name(text: &str) -> Option<Name> {
        Some(text.parse().unwrap())
    }

    fn reply(target: Option<Name>, micros: u64) -> Line {
        Line { sent: SENT, target, outcome: Outcome::Reply(Duration::from_micros(micros)) }
    }

    fn timeout(target: Option<Name>) -> Line {
        Line { sent: SENT, target, outcome: Outcome::Timeout }
    }

    /// Lines of both forms, with names at the edges of what a name may be.
    fn samples() -> Vec<Line> {
        let names =
            [None, name("db-2"), name("fe80::1%eth0"), name("a"), name(LONGEST_NAME), name("Latency")];
        let names =
            names.into_iter().chain([name("latency:"), name("::1"), name("198.51.100.7"), name("_.-%")]);
        names
            .flat_map(|target| [reply(target.clone(), 123_450), reply(target.clone(), 0), timeout(target)])
            .collect()
    }

    #[test]
    fn formats_exactly_like_the_seed_and_names_a_target_after_the_timestamp() {
        let cases = [
            (reply(None, 270), "[2025-08-12 06:56:53] Latency: 0.27 ms"),
            (timeout(None), "[2025-08-12 06:56:53] Latency: timeout"),
            (reply(name("db-2"), 270), "[2025-08-12 06:56:53] db-2 Latency: 0.27 ms"),
            (timeout(name("db-2")), "[2025-08-12 06:56:53] db-2 Latency: timeout"),
        ];
        for (line, text) in cases {
            assert_eq!(line.to_string(), text);
        }
        assert_eq!(reply(None, 270).form(), Form::Seed);
        assert_eq!(timeout(name("db-2")).form(), Form::Named);
    }

    fn at(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> LocalTime {
        LocalTime { year, month, day, hour, minute, second }
    }

    #[test]
    fn local_seconds_count_the_calendar_as_if_it_were_utc() {
        let cases = [
            (at(1970, 1, 1, 0, 0, 0), 0),
            (SENT, 1_754_981_813),
            (at(2000, 2, 29, 12, 0, 0), 951_825_600),
            (at(1969, 12, 31, 23, 59, 59), -1),
            (at(0, 1, 1, 0, 0, 0), -62_167_219_200),
            (at(9999, 12, 31, 23, 59, 59), 253_402_300_799),
        ];
        for (time, seconds) in cases {
            assert_eq!(time.seconds(), seconds, "{time:?}");
            assert_eq!(LocalTime::from_seconds(seconds), time, "{seconds}");
        }
        // Every day of four centuries, leap days and century years included, both ways.
        let mut day = at(1900, 1, 1, 0, 0, 0).seconds();
        while day < at(2300, 1, 1, 0, 0, 0).seconds() {
            let time = LocalTime::from_seconds(day + 86_399);
            assert_eq!((time.hour, time.minute, time.second), (23, 59, 59));
            assert_eq!(time.seconds(), day + 86_399);
            assert!(time.is_valid_date());
            day += 86_400;
        }
        assert_eq!(LocalTime::from_seconds(i64::MIN), at(0, 1, 1, 0, 0, 0));
        assert_eq!(LocalTime::from_seconds(i64::MAX), at(9999, 12, 31, 23, 59, 59));
        for (time, valid) in [
            (at(2024, 2, 29, 0, 0, 0), true),
            (at(2025, 2, 29, 0, 0, 0), false),
            (at(1900, 2, 29, 0, 0, 0), false),
            (at(2000, 2, 29, 0, 0, 0), true),
            (at(2025, 4, 31, 0, 0, 0), false),
            (at(2025, 12, 31, 0, 0, 0), true),
        ] {
            assert_eq!(time.is_valid_date(), valid, "{time:?}");
        }
    }

    #[test]
    fn line_time_reads_the_timestamp_a_line_starts_with() {
        let cases: [(&[u8], Option<LocalTime>); 6] = [
            (b"[2025-08-12 06:56:53] Latency: 0.27 ms", Some(SENT)),
            (b"[2025-08-12 06:56:53] db-2 Lat", Some(SENT)),
            (b"[2025-08-12 06:56:53]", Some(SENT)),
            (b"[2025-08-12 06:56:53", None),
            (b"[2025-08-12T06:56:53] Latency: 0.27 ms", None),
            (b"root:x:0:0:root:/root:/bin/bash", None),
        ];
        for (start, time) in cases {
            assert_eq!(line_time(start), time, "{}", String::from_utf8_lossy(start));
        }
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
            let line = Line { sent: SENT, target: None, outcome: Outcome::Reply(rtt) };
            assert_eq!(line.to_string(), format!("[2025-08-12 06:56:53] Latency: {text} ms"));
        }
    }

    #[test]
    fn round_trips_both_forms_at_file_precision() {
        for line in samples() {
            let text = line.to_string();
            assert_eq!(text.parse::<Line>().as_ref(), Ok(&line), "{text}");
            assert_eq!(text.parse::<Line>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn names_follow_the_rules_and_errors_say_which_one_failed() {
        for good in
            ["a", "db-2", "fe80::1%eth0", "198.51.100.7", "2001:db8::1", "Latency", "latency:", LONGEST_NAME]
        {
            assert_eq!(good.parse::<Name>().map(|name| name.to_string()), Ok(good.to_string()));
        }
        let rule = "use 1 to 64 letters, digits, '.', '_', '-', ':' or '%'";
        let too_long = format!("{LONGEST_NAME}5");
        let bad = [
            ("", "\"\" is not a target name (it is empty)"),
            ("db 2", "\"db 2\" is not a target name (it holds ' ')"),
            ("a/b", "\"a/b\" is not a target name (it holds '/')"),
            ("a\nb", "\"a\\nb\" is not a target name (it holds byte 0x0a)"),
            ("caf\u{e9}", "\"caf\u{e9}\" is not a target name (it holds byte 0xc3)"),
            ("Latency:", "\"Latency:\" is not a target name (it is the word that follows every name)"),
            (&too_long, &format!("{too_long:?} is not a target name (it is 65 characters long)")),
        ];
        for (text, message) in bad {
            let err = text.parse::<Name>().unwrap_err();
            assert_eq!(err.to_string(), format!("{message}: {rule}"));
        }
    }

    #[test]
    fn every_start_of_a_line_of_either_form_is_cut_short_and_nothing_else() {
        for line in samples().iter().map(Line::to_string) {
            for end in 1..=line.len() {
                assert!(is_cut_short(&line.as_bytes()[..end]), "{:?}", &line[..end]);
            }
        }
        let too_long = format!("[2025-08-12 06:56:53] {LONGEST_NAME}5");
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
            "[2025-08-12 06:56:53]  Latency",
            "[2025-08-12 06:56:53] db-2  Latency",
            "[2025-08-12 06:56:53] db-2 latency",
            "[2025-08-12 06:56:53] db 2 Latency",
            "[2025-08-12 06:56:53] db-2 Latency: 0.2 ms",
            "[2025-08-12 06:56:53] db-2 Latency: timeouts",
            "[2025-08-12 06:56:53] Latency: Latency: 0",
            &too_long,
            "[2025/08",
        ];
        for text in foreign {
            assert!(!is_cut_short(text.as_bytes()), "{text:?}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_results_line() {
        let too_long = format!("[2025-08-12 06:56:53] {LONGEST_NAME}5 Latency: 0.27 ms");
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
            "[2025-08-12 06:56:53]Latency: 0.27 ms",
            "[2025-08-12 06:56:53]  Latency: 0.27 ms",
            "[2025-08-12 06:56:53] db 2 Latency: 0.27 ms",
            "[2025-08-12 06:56:53] db/2 Latency: 0.27 ms",
            "[2025-08-12 06:56:53] Latency: Latency: 0.27 ms",
            "[2025-08-12 06:56:53] db-2 Latency:0.27 ms",
            "[2025-08-12 06:56:53] db-2 Latency: 0.2 ms",
            "[2025-08-12 06:56:53] db-2 Latency: timeout trailing",
            "[2025-08-12 06:56:53] db-2 0.27 ms",
            &too_long,
        ];
        for text in cases {
            assert!(text.parse::<Line>().is_err(), "{text}");
        }
    }

    #[test]
    fn tells_whether_a_line_names_a_target_from_its_start() {
        let others = ["db", "db-22", "b-2", "Latency", "Latency:", "", "fe80::1", LONGEST_NAME];
        for line in samples() {
            let text = line.to_string();
            let start = &text.as_bytes()[..text.len().min(TARGET_WITHIN)];
            for candidate in line.target.as_deref().into_iter().chain(others) {
                let names = line.target.as_deref() == Some(candidate);
                assert_eq!(line_names(text.as_bytes(), candidate), names, "{text} names {candidate:?}");
                assert_eq!(line_names(format!("{text}\n").as_bytes(), candidate), names, "{text}");
                assert_eq!(line_names(start, candidate), names, "first {TARGET_WITHIN} bytes of {text}");
            }
        }
        let cases = [
            ("", "db-2"),
            ("root:x:0:0:root:/root:/bin/bash", "root:x:0:0:root:/root:/bin/bash"),
            ("[2025-08-12 06:56:53] db-2", "db-2"),
            ("[2025-08-12 06:56:53] db-2 Latency:", "db-2"),
            ("[2025-08-12 06:56:53] db 2 Latency: 0.27 ms", "db 2"),
            ("[2025-08-12 06:56:53] db 2 Latency: 0.27 ms", "2"),
            ("[2025-08-12 06:56:53] Latency: Latency: 0.27 ms", "Latency:"),
            ("[2025-08-12T06:56:53] db-2 Latency: 0.27 ms", "db-2"),
            ("[2025-08-12 06:56:53]  db-2 Latency: 0.27 ms", "db-2"),
            (&format!("[2025-08-12 06:56:53] {LONGEST_NAME}5 Latency: 0.27 ms"), &format!("{LONGEST_NAME}5")),
        ];
        for (text, target) in cases {
            assert!(!line_names(text.as_bytes(), target), "{text} names {target:?}");
        }
    }
}
