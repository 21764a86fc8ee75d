//! What the store reads of a file's end, on any file: where the last complete line ends
//! (`complete_len`), where the last N lines start (`tail_start`), and `check_ours`, the check
//! `Store::open` and `latency doctor` make before appending to or cutting anything: the last
//! line must be a results line, and what follows it a torn one (`line::is_cut_short`). Then the lines of one target, read backwards (`tail_naming`, for
//! `?target=&tail=`) and forwards (`Lines`, for `?target=`), against a plain line-by-line
//! reading. A flag in the input puts the bytes just past the 64 KiB reading chunk.
#![no_main]

use std::io::{Cursor, Read};
use std::path::Path;

use latency::line::{self, Line};
use latency::store::{self, Lines, StoreError};
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
    let start = store::tail_start(&mut reader, 0, end, lines).unwrap();
    let from = all.len().saturating_sub(usize::try_from(lines).unwrap_or(usize::MAX));
    assert_eq!(&complete[start as usize..], all[from..].concat(), "the last {lines} lines");

    // What `Store::open` (and `latency doctor`) accept: a last complete line that is a
    // results line, and after it nothing or a torn results line, which open then cuts.
    let last = all.last();
    let last_ok = last.is_none_or(|last| {
        last.len() <= LONGEST_LINE && String::from_utf8_lossy(&last[..last.len() - 1]).parse::<Line>().is_ok()
    });
    let torn_ok = torn.is_empty() || (torn.len() <= LONGEST_LINE && line::is_cut_short(torn));
    match store::check_ours(&mut reader, Path::new("results.txt"), len) {
        Ok((ours_end, form)) => {
            assert!(last_ok && torn_ok, "accepted: last {last:?}, torn {torn:?}");
            assert_eq!(ours_end, end);
            let parsed = last.map(|last| {
                let text = std::str::from_utf8(&last[..last.len() - 1]).expect("a results line is text");
                text.parse::<Line>().expect("a results line").form()
            });
            assert_eq!(form, parsed);
        }
        Err(StoreError::NotResults { .. }) => {
            assert!(!(last_ok && torn_ok), "refused: last {last:?}, torn {torn:?}");
        }
        Err(err) => panic!("reading a slice failed: {err}"),
    }

    // The lines naming `target`, forwards and backwards, as a plain reading finds them.
    let named: Vec<&[u8]> = all.iter().copied().filter(|line| line::line_names(line, target)).collect();
    let mut forwards = Vec::new();
    Lines::new(Cursor::new(complete), end, Some(target)).read_to_end(&mut forwards).unwrap();
    assert_eq!(forwards, named.concat(), "forwards, lines naming {target}");
    let (tail_from, tail_len) = store::tail_naming(&mut reader, 0, end, target, lines).unwrap();
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
