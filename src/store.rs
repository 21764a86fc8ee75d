//! The results file: append-only, one whole line per `write`, never truncated except to cut a
//! torn last line left by a crash. Readers only ever see complete lines.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use log::warn;

use crate::line::{self, Line};

/// How far back the last line is read to check the file is ours: far longer than any line.
const LONGEST_LINE: u64 = 4096;
const CHUNK: usize = 64 * 1024;

/// What failed on the results file. `Deleted`: the file was deleted while open, and no new
/// one could be made at its path.
#[derive(Debug)]
pub enum StoreError {
    CreateDir { path: PathBuf, err: io::Error },
    Open { path: PathBuf, err: io::Error },
    Read { path: PathBuf, err: io::Error },
    Write { path: PathBuf, err: io::Error },
    Truncate { path: PathBuf, err: io::Error },
    NotResults { path: PathBuf, reason: String },
    Deleted(Box<StoreError>),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::CreateDir { path, err } => {
                write!(
                    f,
                    "create directory {}: {err}; choose another results path (--results, LATENCY_RESULTS)",
                    path.display()
                )
            }
            StoreError::Open { path, err } => {
                write!(
                    f,
                    "open {} for appending: {err}; choose a writable results path (--results, LATENCY_RESULTS)",
                    path.display()
                )
            }
            StoreError::Read { path, err } => write!(f, "read {}: {err}", path.display()),
            StoreError::Write { path, err } => write!(f, "append to {}: {err}", path.display()),
            StoreError::Truncate { path, err } => write!(f, "cut the torn end of {}: {err}", path.display()),
            StoreError::NotResults { path, reason } => write!(
                f,
                "{} is not a latency results file ({reason}); leaving it alone: \
                 choose another results path (--results, LATENCY_RESULTS)",
                path.display()
            ),
            StoreError::Deleted(err) => {
                write!(f, "the results file was deleted, and a new one cannot be made: {err}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Part of the results file for a reader: `file` positioned at the start, `len` bytes of
/// complete lines from there.
pub struct Excerpt {
    pub file: Reader,
    pub len: u64,
}

/// Reads the file the daemon appends to, at a position of its own: readers share the open
/// file with the appender (whose `O_APPEND` writes ignore positions) and with each other.
pub struct Reader {
    file: File,
    position: u64,
    truncations: Arc<AtomicU64>,
    truncations_at_start: u64,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Truncated in place and grown again, the file holds other lines at this position.
        if self.truncations.load(Ordering::Acquire) != self.truncations_at_start {
            return Err(io::Error::other("the results file was truncated in place (copytruncate, say)"));
        }
        let read = self.file.read_at(buf, self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let position = match to {
            SeekFrom::Start(position) => Some(position),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
            SeekFrom::End(delta) => self.file.metadata()?.len().checked_add_signed(delta),
        };
        self.position =
            position.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

pub struct Store {
    path: PathBuf,
    appending: Mutex<Appending>,
    /// How often the file was found truncated in place; readers stop when it changes.
    truncations: Arc<AtomicU64>,
}

/// The open results file, and its end after the last append: a shorter file since then was
/// truncated in place.
struct Appending {
    file: File,
    end: u64,
}

impl Store {
    /// Opens (creating it and its directory) the results file, cutting a torn last line.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let (file, end) = open_for_append(path)?;
        let appending = Mutex::new(Appending { file, end });
        Ok(Store { path: path.to_path_buf(), appending, truncations: Arc::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and its newline in one `write`. A short write (disk full) is undone, so
    /// the file never keeps half a line.
    pub fn append(&self, line: &Line) -> Result<(), StoreError> {
        let text = format!("{line}\n");
        let mut appending = self.lock();
        let len = self.check_before_append(&mut appending)?;
        let written = appending.file.write(text.as_bytes()).map_err(|err| self.write_error(err))?;
        if written == text.len() {
            appending.end = len + written as u64;
            return Ok(());
        }
        // Measured again: a file truncated meanwhile (copytruncate) has nothing of ours to undo.
        let end = appending.file.metadata().map_err(|err| self.write_error(err))?.len();
        if let Some(before) = end.checked_sub(written as u64) {
            appending
                .file
                .set_len(before)
                .map_err(|err| StoreError::Truncate { path: self.path.clone(), err })?;
        }
        Err(self.write_error(io::Error::new(io::ErrorKind::WriteZero, "short write, undone")))
    }

    /// Opens the path again, for log rotation: later lines go to the file now at the path.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let (file, end) = open_for_append(&self.path)?;
        *self.lock() = Appending { file, end };
        Ok(())
    }

    /// The complete lines now in the file the daemon appends to (which after a rotation,
    /// until SIGHUP, is no longer at the path), or only the last `tail` of them. None once
    /// that file is deleted: its lines are in no file any more, and the next line goes to a
    /// new one.
    pub fn excerpt(&self, tail: Option<u64>) -> Result<Excerpt, StoreError> {
        let read_error = |err| StoreError::Read { path: self.path.clone(), err };
        let file = self.lock().file.try_clone().map_err(read_error)?;
        let truncations_at_start = self.truncations.load(Ordering::Acquire);
        let mut reader =
            Reader { file, position: 0, truncations: self.truncations.clone(), truncations_at_start };
        let metadata = reader.file.metadata().map_err(read_error)?;
        if metadata.nlink() == 0 {
            return Ok(Excerpt { file: reader, len: 0 });
        }
        let len = metadata.len();
        let end = complete_len(&mut reader, len).map_err(read_error)?;
        let start = match tail {
            Some(lines) => tail_start(&mut reader, end, lines).map_err(read_error)?,
            None => 0,
        };
        reader.position = start;
        Ok(Excerpt { file: reader, len: end - start })
    }

    /// The file's length before an append. A file deleted while open would swallow every
    /// later line: a new one is made at the path, or the line is not stored. A file truncated
    /// in place stops the downloads under way, which would read other lines at their place.
    fn check_before_append(&self, appending: &mut Appending) -> Result<u64, StoreError> {
        let metadata = appending.file.metadata().map_err(|err| self.write_error(err))?;
        if metadata.nlink() == 0 {
            let (file, end) =
                open_for_append(&self.path).map_err(|err| StoreError::Deleted(Box::new(err)))?;
            warn!("{} was deleted; appending to a new file there", self.path.display());
            *appending = Appending { file, end };
            return Ok(end);
        }
        if metadata.len() < appending.end {
            self.truncations.fetch_add(1, Ordering::AcqRel);
        }
        Ok(metadata.len())
    }

    fn lock(&self) -> MutexGuard<'_, Appending> {
        // The file handle stays valid even if a writer panicked.
        self.appending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_error(&self, err: io::Error) -> StoreError {
        StoreError::Write { path: self.path.clone(), err }
    }
}

/// The file and its length, once a torn last line is cut (and the cut logged).
fn open_for_append(path: &Path) -> Result<(File, u64), StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|err| StoreError::CreateDir { path: dir.to_path_buf(), err })?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| StoreError::Open { path: path.to_path_buf(), err })?;
    let read_error = |err| StoreError::Read { path: path.to_path_buf(), err };
    let len = regular_len(&file, path)?;
    let end = complete_len(&mut file, len).map_err(read_error)?;
    let foreign = |reason| StoreError::NotResults { path: path.to_path_buf(), reason };
    check_last_line(&mut file, end).map_err(|reason| match reason {
        LastLine::Unreadable(err) => read_error(err),
        LastLine::Foreign(reason) => foreign(reason),
    })?;
    if end == len {
        return Ok((file, len));
    }
    check_torn_tail(&mut file, end, len).map_err(|reason| match reason {
        LastLine::Unreadable(err) => read_error(err),
        LastLine::Foreign(reason) => foreign(reason),
    })?;
    file.set_len(end).map_err(|err| StoreError::Truncate { path: path.to_path_buf(), err })?;
    warn!("{}: cut {} bytes of a torn last line left by an earlier crash", path.display(), len - end);
    Ok((file, end))
}

/// The length of `file`, if it is a regular file. A FIFO or a device at the path would block
/// the prober's appends (hence `O_NONBLOCK` on the open, which regular files ignore), or
/// swallow the lines (`/dev/null`).
fn regular_len(file: &File, path: &Path) -> Result<u64, StoreError> {
    let metadata = file.metadata().map_err(|err| StoreError::Read { path: path.to_path_buf(), err })?;
    let kind = metadata.file_type();
    let other = if kind.is_file() {
        return Ok(metadata.len());
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(StoreError::NotResults { path: path.to_path_buf(), reason: format!("it is {other}") })
}

enum LastLine {
    Unreadable(io::Error),
    Foreign(String),
}

/// Refuses to append to a file whose last complete line is not ours, so a mistyped
/// `--results /etc/passwd` damages nothing.
fn check_last_line<R: Read + Seek>(reader: &mut R, end: u64) -> Result<(), LastLine> {
    if end == 0 {
        return Ok(());
    }
    let start = tail_start(reader, end, 1).map_err(LastLine::Unreadable)?;
    if end - start > LONGEST_LINE {
        return Err(LastLine::Foreign(format!("its last line is {} bytes long", end - start)));
    }
    let mut last = vec![0; (end - start - 1) as usize];
    reader.seek(SeekFrom::Start(start)).map_err(LastLine::Unreadable)?;
    reader.read_exact(&mut last).map_err(LastLine::Unreadable)?;
    let text = String::from_utf8_lossy(&last);
    text.parse::<Line>().map(drop).map_err(|err| LastLine::Foreign(format!("last line {text:?}: {err}")))
}

/// Only what a crash mid-append can leave is cut: a short, partial results line. Anything
/// else after the last newline (a file with no newline at all, say) is not ours to cut.
fn check_torn_tail<R: Read + Seek>(reader: &mut R, end: u64, len: u64) -> Result<(), LastLine> {
    if len - end > LONGEST_LINE {
        return Err(LastLine::Foreign(format!("it ends in {} bytes without a newline", len - end)));
    }
    let mut tail = vec![0; (len - end) as usize];
    reader.seek(SeekFrom::Start(end)).map_err(LastLine::Unreadable)?;
    reader.read_exact(&mut tail).map_err(LastLine::Unreadable)?;
    if line::is_cut_short(&tail) {
        Ok(())
    } else {
        Err(LastLine::Foreign(format!("it ends in {:?}", String::from_utf8_lossy(&tail))))
    }
}

/// Offset just past the last newline before `len`: the end of the last complete line.
pub fn complete_len<R: Read + Seek>(reader: &mut R, len: u64) -> io::Result<u64> {
    Ok(nth_newline_back(reader, len, 1)?.map_or(0, |at| at + 1))
}

/// Offset where the last `lines` lines before `end` start; `end` must follow a newline.
pub fn tail_start<R: Read + Seek>(reader: &mut R, end: u64, lines: u64) -> io::Result<u64> {
    Ok(nth_newline_back(reader, end, lines.saturating_add(1))?.map_or(0, |at| at + 1))
}

/// Position of the `n`th newline counting back from `end` (exclusive), reading chunks from
/// the end so that a tail of a year-long file costs a few reads.
fn nth_newline_back<R: Read + Seek>(reader: &mut R, end: u64, n: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; CHUNK];
    let mut chunk_end = end;
    let mut remaining = n;
    while chunk_end > 0 && remaining > 0 {
        let chunk_start = chunk_end.saturating_sub(CHUNK as u64);
        let chunk = &mut buf[..(chunk_end - chunk_start) as usize];
        reader.seek(SeekFrom::Start(chunk_start))?;
        reader.read_exact(chunk)?;
        for (i, byte) in chunk.iter().enumerate().rev() {
            if *byte == b'\n' {
                remaining -= 1;
                if remaining == 0 {
                    return Ok(Some(chunk_start + i as u64));
                }
            }
        }
        chunk_end = chunk_start;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const A: &str = "[2025-08-12 06:56:53] Latency: 0.27 ms\n";
    const B: &str = "[2025-08-12 06:57:53] Latency: timeout\n";

    fn tail(text: &str, lines: u64) -> String {
        let mut cursor = Cursor::new(text.as_bytes());
        let end = complete_len(&mut cursor, text.len() as u64).unwrap();
        let start = tail_start(&mut cursor, end, lines).unwrap();
        text[start as usize..end as usize].to_string()
    }

    #[test]
    fn tail_gives_the_last_complete_lines() {
        let text = format!("{A}{B}{A}");
        assert_eq!(tail(&text, 0), "");
        assert_eq!(tail(&text, 1), A);
        assert_eq!(tail(&text, 2), format!("{B}{A}"));
        assert_eq!(tail(&text, 3), text);
        assert_eq!(tail(&text, u64::MAX), text);
        assert_eq!(tail(&format!("{A}{B}[2025-08"), 1), B, "a torn line is not a line");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn tail_crosses_chunk_boundaries() {
        let text = A.repeat(5_000);
        assert!(text.len() > 2 * CHUNK);
        assert_eq!(tail(&text, 3_000), A.repeat(3_000));
    }

    #[test]
    fn complete_len_stops_after_the_last_newline() {
        let cases = [("", 0), ("torn", 0), (A, A.len()), (&*format!("{A}[2025"), A.len())];
        for (text, len) in cases {
            let mut cursor = Cursor::new(text.as_bytes());
            assert_eq!(complete_len(&mut cursor, text.len() as u64).unwrap(), len as u64, "{text:?}");
        }
    }

    #[test]
    fn only_a_partial_results_line_counts_as_torn() {
        let check = |text: &str| {
            let mut cursor = Cursor::new(text.as_bytes());
            let end = complete_len(&mut cursor, text.len() as u64).unwrap();
            check_torn_tail(&mut cursor, end, text.len() as u64)
        };
        assert!(check(&format!("{A}[2025-08-12 06:5")).is_ok());
        assert!(check("[2025").is_ok());
        assert!(matches!(check("secret-token-without-newline"), Err(LastLine::Foreign(_))));
        assert!(
            matches!(check(&format!("{A}{}", "[".repeat(5_000))), Err(LastLine::Foreign(r)) if r.contains("5000 bytes"))
        );
        assert!(matches!(check(&format!("{A}[2025-08-12 \u{e9}")), Err(LastLine::Foreign(_))));
        assert!(matches!(check("[\"db-password\",\"hunter2\"]"), Err(LastLine::Foreign(_))));
        assert!(matches!(check(&format!("{A}[operator note: moved]")), Err(LastLine::Foreign(_))));
    }

    #[test]
    fn a_download_stops_when_the_file_is_truncated_in_place_and_grows_again() {
        let dir = std::env::temp_dir().join(format!("latency-store-{}", std::process::id()));
        let path = dir.join("results.txt");
        let store = Store::open(&path).unwrap();
        let sent = crate::line::LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };
        let line = Line { sent, target: None, outcome: crate::line::Outcome::Timeout };
        let append = |count| (0..count).for_each(|_| store.append(&line).unwrap());
        append(100);
        let mut download = store.excerpt(None).unwrap().file;
        let mut first = [0u8; 400];
        download.read_exact(&mut first).unwrap();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        append(200);
        // Past the old position now stand other lines: the download must fail, not splice.
        let err = download.read(&mut [0u8; 64]).unwrap_err();
        assert!(err.to_string().contains("truncated in place"), "{err}");
        let mut fresh = String::new();
        store.excerpt(None).unwrap().file.read_to_string(&mut fresh).unwrap();
        assert_eq!(fresh.lines().count(), 200);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_deleted_file_is_served_empty_until_the_next_line_makes_it_again() {
        let dir = std::env::temp_dir().join(format!("latency-store-deleted-{}", std::process::id()));
        let path = dir.join("results.txt");
        let store = Store::open(&path).unwrap();
        let sent = crate::line::LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };
        let line = Line { sent, target: None, outcome: crate::line::Outcome::Timeout };
        let served = |tail| {
            let mut text = String::new();
            let excerpt = store.excerpt(tail).unwrap();
            excerpt.file.take(excerpt.len).read_to_string(&mut text).unwrap();
            text
        };
        store.append(&line).unwrap();
        store.append(&line).unwrap();
        fs::remove_file(&path).unwrap();
        assert_eq!(served(None), "");
        assert_eq!(served(Some(1)), "");
        store.append(&line).unwrap();
        assert_eq!(served(None), format!("{line}\n"));
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{line}\n"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_results_files_are_accepted() {
        let ours = format!("{A}{B}");
        let mut cursor = Cursor::new(ours.as_bytes());
        assert!(check_last_line(&mut cursor, ours.len() as u64).is_ok());
        let foreign = "root:x:0:0:root:/root:/bin/bash\n";
        let mut cursor = Cursor::new(foreign.as_bytes());
        assert!(matches!(check_last_line(&mut cursor, foreign.len() as u64), Err(LastLine::Foreign(_))));
        let long = format!("{}\n", "x".repeat(5_000));
        let mut cursor = Cursor::new(long.as_bytes());
        assert!(
            matches!(check_last_line(&mut cursor, long.len() as u64), Err(LastLine::Foreign(r)) if r.contains("5001 bytes"))
        );
    }
}
