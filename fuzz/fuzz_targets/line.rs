//! The results line, both forms. Any text: parsing never panics, and what parses formats to a
//! line that parses to the same value (format → parse → equal). Any line the daemon can write
//! (fields drawn from the input): it parses back to itself at the file's precision, every cut
//! of it short of its end is a torn line the store may cut (and the cut-short check never
//! panics on any bytes), and it names its own target and no other.
#![no_main]

use std::time::Duration;

use latency::line::{self, Line, LocalTime, NAME_MAX, Name, Outcome};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = line::is_cut_short(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(parsed) = text.parse::<Line>()
    {
        let again: Line = parsed.to_string().parse().expect("a formatted line parses");
        assert_eq!(again, parsed);
        assert!(!text.contains('\n'));
    }
    if let Ok(line) = written(&mut Unstructured::new(data)) {
        check_written(&line);
    }
});

/// A line as the daemon writes it: a calendar time, a valid name or none, an RTT below the
/// longest timeout or a timeout.
fn written(u: &mut Unstructured) -> Result<Line> {
    let sent = LocalTime {
        year: u.int_in_range(0..=9999)?,
        month: u.int_in_range(1..=12)?,
        day: u.int_in_range(1..=31)?,
        hour: u.int_in_range(0..=23)?,
        minute: u.int_in_range(0..=59)?,
        second: u.int_in_range(0..=59)?,
    };
    let target = if u.arbitrary()? {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:%";
        let len = u.int_in_range(1..=NAME_MAX)?;
        let name: String =
            u.bytes(len)?.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
        // Only `Latency:` itself is refused, which the parse below would then not read back.
        name.parse::<Name>().ok()
    } else {
        None
    };
    let outcome = if u.arbitrary()? {
        Outcome::Timeout
    } else {
        Outcome::Reply(Duration::from_nanos(u.int_in_range(0..=60_000_000_000)?))
    };
    Ok(Line { sent, target, outcome })
}

fn check_written(line: &Line) {
    let text = line.to_string();
    let parsed: Line = text.parse().unwrap_or_else(|err| panic!("{text:?} does not parse: {err}"));
    assert_eq!(parsed.sent, line.sent);
    assert_eq!(parsed.target, line.target);
    match (parsed.outcome, line.outcome) {
        (Outcome::Timeout, Outcome::Timeout) => {}
        (Outcome::Reply(read), Outcome::Reply(rtt)) => {
            // Hundredths of a millisecond, rounded half up.
            assert_eq!(read.as_nanos(), (rtt.as_nanos() + 5_000) / 10_000 * 10_000, "{text:?}");
        }
        _ => panic!("{text:?}: outcome {:?} read as {:?}", line.outcome, parsed.outcome),
    }
    for end in 1..=text.len() {
        assert!(line::is_cut_short(&text.as_bytes()[..end]), "{:?} is not a torn line", &text[..end]);
    }
    let with_newline = format!("{text}\n");
    assert!(!line::is_cut_short(with_newline.as_bytes()));
    match &line.target {
        Some(name) => {
            assert!(line::line_names(text.as_bytes(), name));
            assert!(!line::line_names(text.as_bytes(), &format!("{name}x")));
        }
        None => assert!(!line::line_names(text.as_bytes(), "Latency:")),
    }
}
