//! What the store reads of a file's end, on any file: where the last complete line ends
//! (`complete_len`), where the last N lines start (`tail_start`), whether the last line is a
//! results line (`check_last_line`) and whether what follows it is a torn line that may be cut
//! (`check_torn_tail`, `line::is_cut_short`): the checks `Store::open` makes before it appends
//! to or cuts anything. Then the lines of one target, read backwards (`tail_naming`, for
//! `?target=&tail=`) and forwards (`Lines`, for `?target=`), against a plain line-by-line
//! reading. A flag in the input puts the bytes just past the 64 KiB reading chunk.
#![no_main]

use std::io::{Cursor, Read};

use latency::line::{self, Line};
use latency::store::{self, LastLine, Lines};
use libfuzzer_sys::fuzz_target;

const TARGETS: [&str; 4] =
    ["a", "db-2", "fe80::1%eth0", "n234567890123456789012345678901234567890123456789012345678901234"];
const CHUNK: usize = 64 * 1024;
const LONGEST_LINE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&[shape, wanted], rest)) = data.split_first_chunk::<2>() else { return };
    let target = TARGETS[usize::from(shape & 3)];
    let lines = if shape & 4 != 0 { u64::MAX } else { u64::from(wanted) };
    let mut file = Vec::new();
    if shape & 8 != 0 {
        // A first line that ends a few bytes before or after the chunk boundary.
        let filler = CHUNK - 64 + usize::from(shape >> 4) * 8;
        file.resize(filler - 1, b'p');
        file.push(b'\n');
    }
    file.extend_from_slice(rest);
    check(&file, target, lines);
});

fn check(file: &[u8], target: &str, lines: u64) {
    let len = file.len() as u64;
    let mut reader = Cursor::new(file);
    let end = store::complete_len(&mut reader, len).unwrap();
    let (complete, torn) = file.split_at(end as usize);
    assert!(complete.is_empty() || complete.ends_with(b"\n"));
    assert!(!torn.contains(&b'\n'));

    // Every complete line, each with its newline.
    let all: Vec<&[u8]> = complete.split_inclusive(|&byte| byte == b'\n').collect();
    let start = store::tail_start(&mut reader, end, lines).unwrap();
    let from = all.len().saturating_sub(usize::try_from(lines).unwrap_or(usize::MAX));
    assert_eq!(&complete[start as usize..], all[from..].concat(), "the last {lines} lines");

    match store::check_last_line(&mut reader, end) {
        Ok(None) => assert_eq!(end, 0),
        Ok(Some(form)) => {
            let last = all.last().expect("a last line");
            assert!(last.len() <= LONGEST_LINE);
            let text = std::str::from_utf8(&last[..last.len() - 1]).expect("a results line is text");
            let parsed: Line = text.parse().expect("a results line");
            assert_eq!(parsed.form(), form);
        }
        Err(LastLine::Foreign(_)) => {
            let last = all.last().expect("an empty file is no one's");
            let text = String::from_utf8_lossy(&last[..last.len() - 1]);
            assert!(last.len() > LONGEST_LINE || text.parse::<Line>().is_err(), "{text:?} refused");
        }
        Err(LastLine::Unreadable(err)) => panic!("reading a slice failed: {err}"),
    }
    if end < len {
        match store::check_torn_tail(&mut reader, end, len) {
            Ok(()) => assert!(torn.len() <= LONGEST_LINE && line::is_cut_short(torn)),
            Err(LastLine::Foreign(_)) => assert!(torn.len() > LONGEST_LINE || !line::is_cut_short(torn)),
            Err(LastLine::Unreadable(err)) => panic!("reading a slice failed: {err}"),
        }
    }

    // The lines naming `target`, forwards and backwards, as a plain reading finds them.
    let named: Vec<&[u8]> = all.iter().copied().filter(|line| line::line_names(line, target)).collect();
    let mut forwards = Vec::new();
    Lines::new(Cursor::new(complete), end, Some(target)).read_to_end(&mut forwards).unwrap();
    assert_eq!(forwards, named.concat(), "forwards, lines naming {target}");
    let (tail_from, tail_len) = store::tail_naming(&mut reader, end, target, lines).unwrap();
    let from = named.len().saturating_sub(usize::try_from(lines).unwrap_or(usize::MAX));
    let tail = named[from..].concat();
    assert_eq!(tail_len, tail.len() as u64, "backwards, the last {lines} lines naming {target}");
    if let Some(first) = named[from..].first() {
        assert!(complete[tail_from as usize..].starts_with(first));
    }
    let mut whole = Vec::new();
    Lines::new(Cursor::new(complete), end, None).read_to_end(&mut whole).unwrap();
    assert_eq!(whole, complete);
}
