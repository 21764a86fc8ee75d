//! `?since=TIME` on any file: `first_at_or_after`, the bisection on the lines' timestamps that
//! finds where to start without reading the file through. Against a plain line-by-line
//! reading: the answer is where a line starts; on a file whose times never go back it is the
//! first line at or after TIME (lines without a timestamp going with the next stamped line, or
//! with the end after the last); on any file it is a line at or after TIME whose previous
//! stamped line is earlier (or no stamped line follows), or the end. A flag in the input
//! makes the lines long, so that the bisection's steps pass long lines whole.
#![no_main]

use std::io::Cursor;

use latency::line;
use latency::store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[shape, offset], rest)) = data.split_first_chunk::<2>() else { return };
    let mut file = Vec::new();
    for piece in rest.split_inclusive(|&byte| byte == b'\n') {
        file.extend_from_slice(piece);
        if shape & 1 != 0 && piece.ends_with(b"\n") {
            // Padding inside the line, before its newline.
            file.pop();
            file.resize(file.len() + 5000, b' ');
            file.push(b'\n');
        }
    }
    let mut reader = Cursor::new(&file[..]);
    let end = store::complete_len(&mut reader, file.len() as u64).unwrap();
    let complete = &file[..end as usize];
    let mut starts = Vec::new();
    let mut at = 0;
    for line in complete.split_inclusive(|&byte| byte == b'\n') {
        starts.push((at, line::line_time(line).map(|time| time.seconds())));
        at += line.len() as u64;
    }
    // TIME: one of the file's own times moved by a few seconds, or any time at all.
    let times: Vec<i64> = starts.iter().filter_map(|&(_, time)| time).collect();
    let from = match times.get(usize::from(shape >> 1) % times.len().max(1)) {
        Some(time) => time + i64::from(offset as i8 % 3),
        None => i64::from(offset) * 86_400,
    };

    let found = store::first_at_or_after(&mut reader, end, from).unwrap();
    assert!(found == end || starts.iter().any(|&(start, _)| start == found), "{found} starts no line");
    if times.is_sorted() {
        // Lines without a timestamp go with the next stamped one, and those after the last
        // stamped one with the end: they count as at or after any time.
        let first = starts.iter().position(|&(_, time)| time.is_some_and(|time| time >= from));
        let last_before =
            starts[..first.unwrap_or(starts.len())].iter().rposition(|(_, time)| time.is_some());
        let expected = match last_before {
            Some(index) => starts.get(index + 1).map_or(end, |&(start, _)| start),
            None => 0,
        };
        assert_eq!(found, expected, "from {from}");
    } else if found < end {
        let index = starts.iter().position(|&(start, _)| start == found).unwrap();
        let next = starts[index..].iter().find_map(|&(_, time)| time);
        assert!(next.is_none_or(|time| time >= from), "the line at {found} is before {from}");
        let previous = starts[..index].iter().rev().find_map(|&(_, time)| time);
        assert!(previous.is_none_or(|time| time < from), "a line before {found} is already at {from}");
    }
});
