//! The results file: append-only, one whole line per `write`, never truncated except to cut a
//! torn last line left by a crash. Readers only ever see complete lines.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use log::{info, warn};

use crate::config::SyncPolicy;
use crate::line::{self, Form, Line, LocalTime, TARGET_WITHIN};

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
    Sync { path: PathBuf, err: io::Error },
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
            StoreError::Sync { path, err } => {
                write!(f, "fdatasync {} (--sync line): {err}; the line may not be on disk", path.display())
            }
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

/// Part of the results file for a reader: `file` yields its `len` bytes of complete lines.
pub struct Excerpt {
    pub file: Lines,
    pub len: u64,
}

/// The lines of a stretch of the file, read as they are sent: all of them, or only those
/// naming one target. Memory stays one buffer of `CHUNK` bytes however big the file.
pub struct Lines<R = Reader> {
    reader: R,
    /// Bytes of the stretch not yet read from `reader`.
    unread: u64,
    filter: Option<Filter>,
}

struct Filter {
    target: Box<str>,
    buf: Vec<u8>,
    /// `buf[start..filled]` is read from the file and not yet given out or passed over.
    start: usize,
    filled: usize,
    /// Whether the current line, up to its newline, is given out; None until enough of its
    /// start is in `buf` to tell its target.
    keep: Option<bool>,
}

impl<R: Read> Lines<R> {
    /// The `len` bytes of `reader` from its position, or only the lines naming `target`.
    pub fn new(reader: R, len: u64, target: Option<&str>) -> Self {
        let filter = target.map(|target| Filter {
            target: target.into(),
            buf: vec![0; CHUNK],
            start: 0,
            filled: 0,
            keep: None,
        });
        Lines { reader, unread: len, filter }
    }

    /// The buffer's size: what reading a stretch of any length holds in memory.
    #[cfg(test)]
    fn buffer_capacity(&self) -> usize {
        self.filter.as_ref().map_or(0, |filter| filter.buf.capacity())
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(filter) = &mut self.filter {
            return filter.read(&mut self.reader, &mut self.unread, out);
        }
        let room = out.len().min(usize::try_from(self.unread).unwrap_or(usize::MAX));
        let read = self.reader.read(&mut out[..room])?;
        self.unread -= read as u64;
        Ok(read)
    }
}

impl Filter {
    /// Fills as much of `out` as the lines allow, so that a download sends large pieces.
    fn read<R: Read>(&mut self, reader: &mut R, unread: &mut u64, out: &mut [u8]) -> io::Result<usize> {
        let mut given = 0;
        while given < out.len() {
            let pending = &self.buf[self.start..self.filled];
            let newline = find_newline(pending);
            let line_rest = newline.map_or(pending.len(), |at| at + 1);
            let keep = match self.keep {
                Some(keep) if !pending.is_empty() => keep,
                None if newline.is_some()
                    || line_rest >= TARGET_WITHIN
                    || (*unread == 0 && line_rest > 0) =>
                {
                    self.keep = Some(line::line_names(pending, &self.target));
                    continue;
                }
                _ => match self.refill(reader, unread) {
                    Ok(true) => continue,
                    Ok(false) => break,
                    // Bytes already given are not lost; the error comes again on the next read.
                    Err(_) if given > 0 => break,
                    Err(err) => return Err(err),
                },
            };
            let taken = if keep { line_rest.min(out.len() - given) } else { line_rest };
            if keep {
                out[given..given + taken].copy_from_slice(&pending[..taken]);
                given += taken;
            }
            self.start += taken;
            if newline.is_some_and(|at| taken == at + 1) {
                self.keep = None;
            }
        }
        Ok(given)
    }

    /// Reads more of the stretch after what is left in the buffer; false at its end.
    fn refill<R: Read>(&mut self, reader: &mut R, unread: &mut u64) -> io::Result<bool> {
        self.buf.copy_within(self.start..self.filled, 0);
        self.filled -= self.start;
        self.start = 0;
        let room = (self.buf.len() - self.filled).min(usize::try_from(*unread).unwrap_or(usize::MAX));
        let read = reader.read(&mut self.buf[self.filled..self.filled + room])?;
        // A file cut shorter than the stretch ends it here; the download sees it come up short.
        *unread = if read == 0 { 0 } else { *unread - read as u64 };
        self.filled += read;
        Ok(read > 0)
    }
}

/// Where the first newline in `bytes` is. Through `skip_until`, which searches a slice with
/// the C library's `memchr`: a filtered download finds every line's end, and a byte loop
/// made that the bulk of its time.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    let mut rest = bytes;
    // Reading a slice cannot fail.
    let skipped = rest.skip_until(b'\n').unwrap_or(0);
    (skipped > 0 && bytes[skipped - 1] == b'\n').then(|| skipped - 1)
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
    /// The form of the lines this run appends, so that a file in the other form is noticed.
    form: Form,
    sync: SyncPolicy,
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
    /// `form` is the form of the lines this run appends: a file whose lines are in the other
    /// one (the targets changed since) is logged and appended to. `sync`: whether each
    /// line is forced to disk.
    pub fn open(path: &Path, form: Form, sync: SyncPolicy) -> Result<Store, StoreError> {
        let (file, end) = open_for_append(path, form, sync)?;
        let appending = Mutex::new(Appending { file, end });
        Ok(Store { path: path.to_path_buf(), form, sync, appending, truncations: Arc::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and its newline in one `write`, and with `--sync line` waits until it
    /// is on disk. A short write (disk full) is undone, so the file never keeps half a line.
    pub fn append(&self, line: &Line) -> Result<(), StoreError> {
        let text = format!("{line}\n");
        let mut appending = self.lock();
        let len = self.check_before_append(&mut appending)?;
        let written = appending.file.write(text.as_bytes()).map_err(|err| self.write_error(err))?;
        if written == text.len() {
            appending.end = len + written as u64;
            if self.sync == SyncPolicy::Line {
                // The data and the file's new length; not its times, which no reader needs.
                appending
                    .file
                    .sync_data()
                    .map_err(|err| StoreError::Sync { path: self.path.clone(), err })?;
            }
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
    /// Under the lock: when the path is still the file being appended to (a SIGHUP to resolve
    /// the names again), an append under way could look like a torn last line, and be cut.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut appending = self.lock();
        let (file, end) = open_for_append(&self.path, self.form, self.sync)?;
        *appending = Appending { file, end };
        Ok(())
    }

    /// The complete lines now in the file the daemon appends to (which after a rotation,
    /// until SIGHUP, is no longer at the path), or only those naming `target`; of these,
    /// all or only the last `tail`. None once that file is deleted: its lines are in no file
    /// any more, and the next line goes to a new one. Seed-form lines name no target.
    ///
    /// The length is known before the first byte is sent: a tail's from reading back to its
    /// start; a whole file's lines of one target from reading it through once beforehand.
    pub fn excerpt(&self, target: Option<&str>, tail: Option<u64>) -> Result<Excerpt, StoreError> {
        self.excerpt_since(None, target, tail)
    }

    /// The complete lines from the first sent at or after `from` (see `first_at_or_after`) to
    /// the end, found without reading the file through: for a refill at start.
    pub fn since(&self, from: LocalTime) -> Result<Excerpt, StoreError> {
        self.excerpt_since(Some(from), None, None)
    }

    /// `excerpt` of the lines from the first sent at or after `since`, when given: of those,
    /// the ones naming `target`, and of these the last `tail`.
    pub fn excerpt_since(
        &self,
        since: Option<LocalTime>,
        target: Option<&str>,
        tail: Option<u64>,
    ) -> Result<Excerpt, StoreError> {
        let read_error = |err| StoreError::Read { path: self.path.clone(), err };
        let file = self.lock().file.try_clone().map_err(read_error)?;
        let truncations_at_start = self.truncations.load(Ordering::Acquire);
        let mut reader =
            Reader { file, position: 0, truncations: self.truncations.clone(), truncations_at_start };
        let metadata = reader.file.metadata().map_err(read_error)?;
        if metadata.nlink() == 0 {
            return Ok(Excerpt { file: Lines::new(reader, 0, None), len: 0 });
        }
        let end = complete_len(&mut reader, metadata.len()).map_err(read_error)?;
        let from = match since {
            Some(since) => first_at_or_after(&mut reader, end, since.seconds()).map_err(read_error)?,
            None => 0,
        };
        let (start, len) = match (target, tail) {
            (None, None) => (from, end - from),
            (None, Some(lines)) => {
                let start = tail_start(&mut reader, from, end, lines).map_err(read_error)?;
                (start, end - start)
            }
            (Some(target), Some(lines)) => {
                tail_naming(&mut reader, from, end, target, lines).map_err(read_error)?
            }
            (Some(target), None) => {
                reader.position = from;
                let counted =
                    io::copy(&mut Lines::new(&mut reader, end - from, Some(target)), &mut io::sink());
                (from, counted.map_err(read_error)?)
            }
        };
        reader.position = start;
        Ok(Excerpt { file: Lines::new(reader, end - start, target), len })
    }

    /// The file's length before an append. A file deleted while open would swallow every
    /// later line: a new one is made at the path, or the line is not stored. A file truncated
    /// in place stops the downloads under way, which would read other lines at their place.
    fn check_before_append(&self, appending: &mut Appending) -> Result<u64, StoreError> {
        let metadata = appending.file.metadata().map_err(|err| self.write_error(err))?;
        if metadata.nlink() == 0 {
            let (file, end) = open_for_append(&self.path, self.form, self.sync)
                .map_err(|err| StoreError::Deleted(Box::new(err)))?;
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

/// Whether the file at `path` is one the daemon would append to, changing nothing (for
/// `latency doctor`): its length, or `None` when there is no file yet. A torn last line, which
/// the daemon would cut, is accepted.
pub fn check_existing(path: &Path) -> Result<Option<u64>, StoreError> {
    let mut file = match OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StoreError::Open { path: path.to_path_buf(), err }),
    };
    let len = regular_len(&file, path)?;
    check_ours(&mut file, path, len)?;
    Ok(Some(len))
}

/// The end of the last complete line of a file of `len` bytes, and its form, once its last
/// line and anything after it are found to be ours. `path` only names the file in an error.
pub fn check_ours<R: Read + Seek>(
    file: &mut R,
    path: &Path,
    len: u64,
) -> Result<(u64, Option<Form>), StoreError> {
    let read_error = |err| StoreError::Read { path: path.to_path_buf(), err };
    let end = complete_len(file, len).map_err(read_error)?;
    let refused = |reason| match reason {
        LastLine::Unreadable(err) => StoreError::Read { path: path.to_path_buf(), err },
        LastLine::Foreign(reason) => StoreError::NotResults { path: path.to_path_buf(), reason },
    };
    let last = check_last_line(file, end).map_err(refused)?;
    if end != len {
        check_torn_tail(file, end, len).map_err(refused)?;
    }
    Ok((end, last))
}

/// The file and its length, once a torn last line is cut (and the cut logged). A last line
/// in the other form than `form` is logged: the lines change form from here on. With
/// `--sync line` the directory is synced too, so that a file just made is found after a power
/// loss with the lines synced into it.
fn open_for_append(path: &Path, form: Form, sync: SyncPolicy) -> Result<(File, u64), StoreError> {
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
    let len = regular_len(&file, path)?;
    if sync == SyncPolicy::Line {
        let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|err| StoreError::Sync { path: dir.to_path_buf(), err })?;
    }
    let (end, last) = check_ours(&mut file, path, len)?;
    if let Some(change) = last.and_then(|last| form_change(last, form)) {
        info!("results file {}: {change}", path.display());
    }
    if end == len {
        return Ok((file, len));
    }
    file.set_len(end).map_err(|err| StoreError::Truncate { path: path.to_path_buf(), err })?;
    warn!("{}: cut {} bytes of a torn last line left by an earlier crash", path.display(), len - end);
    Ok((file, end))
}

/// What to say when the lines appended from now on take another form than the file's last.
fn form_change(last: Form, form: Form) -> Option<&'static str> {
    match (last, form) {
        (Form::Seed, Form::Named) => Some("its lines had no target name; from now on they name their target"),
        (Form::Named, Form::Seed) => {
            Some("its lines named their target; from now on they name none, as there is one target")
        }
        _ => None,
    }
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
/// `--results /etc/passwd` damages nothing. The form of that line, if there is one.
fn check_last_line<R: Read + Seek>(reader: &mut R, end: u64) -> Result<Option<Form>, LastLine> {
    if end == 0 {
        return Ok(None);
    }
    let start = tail_start(reader, 0, end, 1).map_err(LastLine::Unreadable)?;
    if end - start > LONGEST_LINE {
        return Err(LastLine::Foreign(format!("its last line is {} bytes long", end - start)));
    }
    let mut last = vec![0; (end - start - 1) as usize];
    reader.seek(SeekFrom::Start(start)).map_err(LastLine::Unreadable)?;
    reader.read_exact(&mut last).map_err(LastLine::Unreadable)?;
    let text = String::from_utf8_lossy(&last);
    let line = text.parse::<Line>().map_err(|err| LastLine::Foreign(format!("last line {text:?}: {err}")))?;
    Ok(Some(line.form()))
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
    Ok(nth_newline_back(reader, 0, len, 1)?.map_or(0, |at| at + 1))
}

/// Offset where the last `lines` lines between `from` and `end` start; both must be where a
/// line starts (or the file's end).
pub fn tail_start<R: Read + Seek>(reader: &mut R, from: u64, end: u64, lines: u64) -> io::Result<u64> {
    Ok(nth_newline_back(reader, from, end, lines.saturating_add(1))?.map_or(from, |at| at + 1))
}

/// Where the last `lines` lines naming `target` between `from` and `end` start, and how many
/// bytes they hold; both must be where a line starts. Read back from `end` in chunks, each
/// with the first bytes after it, so that every line starting in a chunk shows there which
/// target it names.
pub fn tail_naming<R: Read + Seek>(
    reader: &mut R,
    from: u64,
    end: u64,
    target: &str,
    lines: u64,
) -> io::Result<(u64, u64)> {
    let mut buf = vec![0u8; CHUNK + TARGET_WITHIN];
    let (mut found, mut len, mut start) = (0, 0, end);
    // The end of the line whose start is looked for next.
    let mut line_end = end;
    let mut chunk_end = end;
    while chunk_end > from && found < lines {
        let chunk_start = chunk_end.saturating_sub(CHUNK as u64).max(from);
        let read_end = end.min(chunk_end + TARGET_WITHIN as u64);
        let chunk = &mut buf[..(read_end - chunk_start) as usize];
        reader.seek(SeekFrom::Start(chunk_start))?;
        reader.read_exact(chunk)?;
        let newlines = (0..chunk_end - chunk_start).rev().filter(|&at| chunk[at as usize] == b'\n');
        // A line starts after each newline but the one that ends the last line, and at `from`.
        let starts = newlines.map(|at| chunk_start + at + 1).filter(|&at| at < end);
        for line_start in starts.chain((chunk_start == from).then_some(from)) {
            let shown = &chunk[(line_start - chunk_start) as usize
                ..(line_end.min(line_start + TARGET_WITHIN as u64) - chunk_start) as usize];
            if line::line_names(shown, target) {
                found += 1;
                len += line_end - line_start;
                start = line_start;
                if found == lines {
                    break;
                }
            }
            line_end = line_start;
        }
        chunk_end = chunk_start;
    }
    Ok((start, len))
}

/// Where the first line sent at or after `from` (local seconds) starts, or `end` when none
/// is; `end` must follow a newline. Found by bisecting the lines on their timestamps, so that
/// a year-long file costs a few dozen small reads. A line without a timestamp (someone
/// else's) goes with the next line that has one.
///
/// When the file's times go back somewhere (the clock was stepped back), the answer is still
/// a line at or after `from` whose previous line is earlier (or the start, or `end`), but not
/// necessarily the first such: lines after it may be earlier than `from`, lines before it
/// later.
pub fn first_at_or_after<R: Read + Seek>(reader: &mut R, end: u64, from: i64) -> io::Result<u64> {
    let mut stamp = [0u8; STAMPED];
    // The first line with a timestamp from `line` on, before `limit`, and whether it is at or
    // after `from`; None when there is none.
    let mut stamped = |reader: &mut R, mut line: u64, limit: u64| -> io::Result<Option<(u64, bool)>> {
        while line < limit {
            let stamp = &mut stamp[..(limit - line).min(STAMPED as u64) as usize];
            reader.seek(SeekFrom::Start(line))?;
            reader.read_exact(stamp)?;
            if let Some(time) = line::line_time(stamp) {
                return Ok(Some((line, time.seconds() >= from)));
            }
            line = next_line(reader, line, limit)?.unwrap_or(limit);
        }
        Ok(None)
    };
    // Every stamped line up to the one at `lo` is earlier; from `hi` on, the first stamped line
    // is at or after `from`, or there is none.
    let (mut lo, mut hi) = match stamped(reader, 0, end)? {
        Some((line, false)) => (line, end),
        Some((_, true)) | None => return Ok(0),
    };
    loop {
        let middle = lo + (hi - lo) / 2;
        // A line starting in (lo, hi): after `middle`, or else the one `middle` is in (a
        // long line, passed in one step rather than line by line from `lo`).
        let probe = match next_line(reader, middle, hi)? {
            Some(after) => after,
            None => nth_newline_back(reader, lo, middle, 1)?.map_or(lo, |at| at + 1),
        };
        if probe == lo {
            return Ok(hi);
        }
        match stamped(reader, probe, hi)? {
            Some((line, false)) => lo = line,
            Some((_, true)) | None => hi = probe,
        }
    }
}

/// The bytes of a line's start that hold its timestamp: `[2025-08-12 06:56:53]`.
const STAMPED: usize = 21;

/// Where the first line starting after `position` starts, if before `limit`.
fn next_line<R: Read + Seek>(reader: &mut R, position: u64, limit: u64) -> io::Result<Option<u64>> {
    let mut buf = [0u8; 4096];
    let mut at = position;
    while at + 1 < limit {
        let chunk = &mut buf[..(limit - 1 - at).min(4096) as usize];
        reader.seek(SeekFrom::Start(at))?;
        reader.read_exact(chunk)?;
        if let Some(newline) = find_newline(chunk) {
            return Ok(Some(at + newline as u64 + 1));
        }
        at += chunk.len() as u64;
    }
    Ok(None)
}

/// Position of the `n`th newline counting back from `end` (exclusive) to `from`, reading
/// chunks from the end so that a tail of a year-long file costs a few reads.
fn nth_newline_back<R: Read + Seek>(reader: &mut R, from: u64, end: u64, n: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; CHUNK];
    let mut chunk_end = end;
    let mut remaining = n;
    while chunk_end > from && remaining > 0 {
        let chunk_start = chunk_end.saturating_sub(CHUNK as u64).max(from);
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
    const N: &str = "[2025-08-12 06:58:53] db-2 Latency: 0.31 ms\n";
    const LONGEST_NAME: &str = "n234567890123456789012345678901234567890123456789012345678901234";

    /// A fresh directory for one test's files.
    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("latency-store-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// What an excerpt yields, checked against the length it announced.
    fn served(store: &Store, target: Option<&str>, tail: Option<u64>) -> String {
        let mut excerpt = store.excerpt(target, tail).unwrap();
        let mut text = String::new();
        excerpt.file.read_to_string(&mut text).unwrap();
        assert_eq!(text.len() as u64, excerpt.len, "announced length of {target:?} tail {tail:?}");
        text
    }

    /// A line naming `target` (or none), its length varying with `i`.
    fn named(target: Option<&str>, i: usize) -> String {
        let sent = crate::line::LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };
        let target = target.map(|name| name.parse().unwrap());
        let outcome = match i % 5 {
            0 => crate::line::Outcome::Timeout,
            k => crate::line::Outcome::Reply(std::time::Duration::from_micros(
                (i as u64) * 10u64.pow(k as u32),
            )),
        };
        format!("{}\n", Line { sent, target, outcome })
    }

    fn tail(text: &str, lines: u64) -> String {
        let mut cursor = Cursor::new(text.as_bytes());
        let end = complete_len(&mut cursor, text.len() as u64).unwrap();
        let start = tail_start(&mut cursor, 0, end, lines).unwrap();
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
        assert!(check(&format!("{A}[2025-08-12 06:56:53] db-2 Lat")).is_ok());
        assert!(check(&format!("{N}[2025-08-12 06:56:53] db-2 Latency: 0.3")).is_ok());
        assert!(matches!(
            check(&format!("{N}[2025-08-12 06:56:53] db 2 Latency")),
            Err(LastLine::Foreign(_))
        ));
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
        let store = Store::open(&path, Form::Seed, SyncPolicy::None).unwrap();
        let sent = crate::line::LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };
        let line = Line { sent, target: None, outcome: crate::line::Outcome::Timeout };
        let append = |count| (0..count).for_each(|_| store.append(&line).unwrap());
        append(100);
        let mut download = store.excerpt(None, None).unwrap().file;
        let mut first = [0u8; 400];
        download.read_exact(&mut first).unwrap();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        append(200);
        // Past the old position now stand other lines: the download must fail, not splice.
        let err = download.read(&mut [0u8; 64]).unwrap_err();
        assert!(err.to_string().contains("truncated in place"), "{err}");
        let mut fresh = String::new();
        store.excerpt(None, None).unwrap().file.read_to_string(&mut fresh).unwrap();
        assert_eq!(fresh.lines().count(), 200);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_deleted_file_is_served_empty_until_the_next_line_makes_it_again() {
        let dir = std::env::temp_dir().join(format!("latency-store-deleted-{}", std::process::id()));
        let path = dir.join("results.txt");
        let store = Store::open(&path, Form::Seed, SyncPolicy::None).unwrap();
        let sent = crate::line::LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };
        let line = Line { sent, target: None, outcome: crate::line::Outcome::Timeout };
        let served = |tail| {
            let mut text = String::new();
            let excerpt = store.excerpt(None, tail).unwrap();
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
        let form = |text: &str| check_last_line(&mut Cursor::new(text.as_bytes()), text.len() as u64).ok();
        assert_eq!(form(""), Some(None));
        assert_eq!(form(&format!("{N}{A}{B}")), Some(Some(Form::Seed)));
        assert_eq!(form(&format!("{A}{B}{N}")), Some(Some(Form::Named)));
        let foreign = "root:x:0:0:root:/root:/bin/bash\n";
        let mut cursor = Cursor::new(foreign.as_bytes());
        assert!(matches!(check_last_line(&mut cursor, foreign.len() as u64), Err(LastLine::Foreign(_))));
        let long = format!("{}\n", "x".repeat(5_000));
        let mut cursor = Cursor::new(long.as_bytes());
        assert!(
            matches!(check_last_line(&mut cursor, long.len() as u64), Err(LastLine::Foreign(r)) if r.contains("5001 bytes"))
        );
    }

    #[test]
    fn torn_last_lines_of_either_form_are_cut_at_open() {
        let dir = temp_dir("torn");
        let path = dir.join("results.txt");
        for torn in
            ["[2025-08-12 06:5", "[2025-08-12 06:56:53] db-2 Lat", "[2025-08-12 06:56:53] db-2 Latency: 0.3"]
        {
            for form in [Form::Seed, Form::Named] {
                fs::write(&path, format!("{A}{N}{torn}")).unwrap();
                let store = Store::open(&path, form, SyncPolicy::None).unwrap();
                assert_eq!(fs::read_to_string(&path).unwrap(), format!("{A}{N}"), "{torn:?}");
                assert_eq!(served(&store, Some("db-2"), None), N);
                assert_eq!(served(&store, Some("db-2"), Some(1)), N);
            }
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_may_switch_form_and_each_line_keeps_its_own() {
        assert_eq!(form_change(Form::Seed, Form::Seed), None);
        assert_eq!(form_change(Form::Named, Form::Named), None);
        assert!(form_change(Form::Seed, Form::Named).is_some_and(|note| note.contains("had no target name")));
        assert!(form_change(Form::Named, Form::Seed).is_some_and(|note| note.contains("named their target")));
        let dir = temp_dir("switch");
        let path = dir.join("results.txt");
        let (seed, db2, other) = (named(None, 1), named(Some("db-2"), 2), named(Some("db-22"), 3));
        let store = Store::open(&path, Form::Seed, SyncPolicy::None).unwrap();
        store.append(&seed.trim_end().parse().unwrap()).unwrap();
        drop(store);
        // The targets changed: the next run names them, and the one after has one again.
        let store = Store::open(&path, Form::Named, SyncPolicy::None).unwrap();
        store.append(&db2.trim_end().parse().unwrap()).unwrap();
        store.append(&other.trim_end().parse().unwrap()).unwrap();
        drop(store);
        let store = Store::open(&path, Form::Seed, SyncPolicy::None).unwrap();
        store.append(&seed.trim_end().parse().unwrap()).unwrap();
        assert_eq!(served(&store, None, None), format!("{seed}{db2}{other}{seed}"));
        assert_eq!(served(&store, Some("db-2"), None), db2);
        assert_eq!(served(&store, Some("db-22"), Some(5)), other);
        assert_eq!(served(&store, Some("Latency:"), None), "", "seed lines name no target");
        assert_eq!(served(&store, Some(""), None), "");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn filtered_excerpts_and_tails_give_exactly_the_lines_of_their_target() {
        let names =
            [None, Some("a"), Some("ab"), Some("b"), Some("fe80::1%eth0"), Some(LONGEST_NAME), Some("a")];
        let mut lines: Vec<(Option<&str>, String)> =
            (0..6_000).map(|i| (names[i % 7], named(names[i % 7], i))).collect();
        // Someone else's lines in the middle: one longer than a chunk, one a near miss.
        lines.insert(2_000, (None, format!("{}\n", "x".repeat(3 * CHUNK))));
        lines.insert(4_000, (None, "[2025-08-12 06:56:53] a  Latency: 0.27 ms\n".into()));
        let text: String = lines.iter().map(|(_, line)| line.as_str()).collect();
        let dir = temp_dir("filtered");
        let path = dir.join("results.txt");
        fs::write(&path, &text).unwrap();
        let store = Store::open(&path, Form::Named, SyncPolicy::None).unwrap();
        let tails = [None, Some(0), Some(1), Some(2), Some(5), Some(333), Some(1_500), Some(u64::MAX)];
        for target in
            [Some("a"), Some("ab"), Some("b"), Some("fe80::1%eth0"), Some(LONGEST_NAME), Some("c"), None]
        {
            let of_target: Vec<&str> = lines
                .iter()
                .filter(|(named, _)| target.is_none() || *named == target)
                .map(|(_, line)| line.as_str())
                .collect();
            for tail in tails {
                let from = of_target
                    .len()
                    .saturating_sub(tail.map_or(usize::MAX, |n| n.min(usize::MAX as u64) as usize));
                assert_eq!(
                    served(&store, target, tail),
                    of_target[from..].concat(),
                    "{target:?} tail {tail:?}"
                );
            }
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_line_whose_start_straddles_a_chunk_boundary_shows_its_target() {
        let line = named(Some(LONGEST_NAME), 3);
        for shift in 0..=TARGET_WITHIN + 1 {
            // Read forwards, the buffer ends `shift` bytes into the line.
            let text = format!("{}\n{line}{B}", "p".repeat(CHUNK - shift - 1));
            let mut lines = Lines::new(Cursor::new(text.as_bytes()), text.len() as u64, Some(LONGEST_NAME));
            let mut forwards = String::new();
            lines.read_to_string(&mut forwards).unwrap();
            assert_eq!(forwards, line, "forwards, {shift} bytes of it in the first chunk");
            // Read backwards, the chunk starts `shift` bytes into the line.
            let text = format!("{B}{line}{}\n", "f".repeat(CHUNK + shift - line.len() - 1));
            let (start, len) =
                tail_naming(&mut Cursor::new(text.as_bytes()), 0, text.len() as u64, LONGEST_NAME, 1)
                    .unwrap();
            assert_eq!(
                &text[start as usize..][..len as usize],
                line,
                "backwards, {shift} bytes of it in the earlier chunk"
            );
        }
    }

    #[test]
    fn a_filtered_read_of_a_large_file_holds_one_chunk() {
        let names = [Some("db-1"), Some("db-2"), Some("db-3"), None];
        let text: String = (0..100_000).map(|i| named(names[i % 4], i)).collect();
        assert!(text.len() > 50 * CHUNK);
        let dir = temp_dir("large");
        let path = dir.join("results.txt");
        fs::write(&path, &text).unwrap();
        let store = Store::open(&path, Form::Named, SyncPolicy::None).unwrap();
        let mut excerpt = store.excerpt(Some("db-2"), None).unwrap();
        let mut out = [0u8; 1000];
        let (mut lines, mut bytes) = (0, 0);
        loop {
            let read = excerpt.file.read(&mut out).unwrap();
            if read == 0 {
                break;
            }
            lines += out[..read].iter().filter(|&&byte| byte == b'\n').count();
            bytes += read as u64;
            assert!(excerpt.file.buffer_capacity() <= CHUNK, "{}", excerpt.file.buffer_capacity());
        }
        assert_eq!((lines, bytes), (25_000, excerpt.len));
        let last: String = (99_990..100_000).filter(|i| i % 4 == 1).map(|i| named(Some("db-2"), i)).collect();
        assert_eq!(served(&store, Some("db-2"), Some(2)), last);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_read_error_after_some_lines_keeps_them_and_comes_next() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("truncated in place"))
            }
        }
        let text = format!("{N}{A}{N}");
        let reader = Cursor::new(text.clone().into_bytes()).chain(Failing);
        let mut lines = Lines::new(reader, text.len() as u64 + 100, Some("db-2"));
        let mut out = [0u8; 4096];
        assert_eq!(lines.read(&mut out).unwrap(), 2 * N.len());
        assert_eq!(&out[..2 * N.len()], format!("{N}{N}").as_bytes());
        assert_eq!(lines.read(&mut out).unwrap_err().to_string(), "truncated in place");
    }

    /// A line naming `target` (or none), sent `second` seconds after 2025-08-12 00:00:00.
    fn sent_at(target: Option<&str>, second: i64) -> String {
        let sent = LocalTime::from_seconds(seconds(second));
        let target = target.map(|name| name.parse().unwrap());
        format!(
            "{}\n",
            Line {
                sent,
                target,
                outcome: crate::line::Outcome::Reply(std::time::Duration::from_micros(270))
            }
        )
    }

    /// `second` seconds after 2025-08-12 00:00:00, in local seconds.
    fn seconds(second: i64) -> i64 {
        LocalTime { year: 2025, month: 8, day: 12, hour: 0, minute: 0, second: 0 }.seconds() + second
    }

    /// A reader that counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let read = self.inner.read(buf)?;
            self.read += read as u64;
            Ok(read)
        }
    }

    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.inner.seek(to)
        }
    }

    #[test]
    fn bisection_finds_the_first_line_at_or_after_a_time_in_a_few_reads() {
        // 200,000 lines, three a second, with someone else's lines here and there (one
        // longer than a chunk) and seconds without lines.
        let mut lines = Vec::new();
        for i in 0..200_000i64 {
            let second = i / 3 + i / 30_000 * 100;
            lines.push((Some(second), sent_at(Some("db-2"), second)));
            if i % 49_999 == 7 {
                lines.push((None, "operator note: moved the disk\n".into()));
            }
        }
        lines.insert(100_003, (None, format!("{}\n", "x".repeat(3 * CHUNK))));
        let text: String = lines.iter().map(|(_, line)| line.as_str()).collect();
        let starts: Vec<u64> = lines
            .iter()
            .scan(0u64, |at, (_, line)| {
                let start = *at;
                *at += line.len() as u64;
                Some(start)
            })
            .collect();
        let last = lines.iter().filter_map(|(second, _)| *second).max().unwrap();
        for from in
            [-5, 0, 1, 2, 1_000, 10_000, 10_001, 10_050, 10_100, 33_333, 66_666, last - 1, last, last + 1]
        {
            let want = lines
                .iter()
                .position(|(second, _)| second.is_some_and(|second| second >= from))
                .map_or(text.len() as u64, |index| starts[index]);
            let mut reader = Counting { inner: Cursor::new(text.as_bytes()), read: 0 };
            let got = first_at_or_after(&mut reader, text.len() as u64, seconds(from)).unwrap();
            assert_eq!(got, want, "from second {from}");
            // A few dozen small reads, and the long line at most three times over.
            assert!(
                reader.read < 40 * 4096 + 3 * 3 * CHUNK as u64,
                "from second {from}: {} bytes read",
                reader.read
            );
        }
        assert_eq!(first_at_or_after(&mut Cursor::new(b""), 0, 0).unwrap(), 0);
    }

    #[test]
    fn bisection_over_a_clock_step_back_finds_a_boundary() {
        // Seconds 0..1000, then the clock back to 500 and on to 1500.
        let seconds_sent: Vec<i64> = (0..1_000).chain(500..1_500).collect();
        let text: String = seconds_sent.iter().map(|&second| sent_at(None, second)).collect();
        let line_len = sent_at(None, 0).len() as u64;
        for from in [0, 10, 499, 500, 700, 999, 1_000, 1_200, 1_499, 1_500] {
            let got = first_at_or_after(&mut Cursor::new(text.as_bytes()), text.len() as u64, seconds(from))
                .unwrap();
            assert_eq!(got % line_len, 0);
            let index = (got / line_len) as usize;
            // The line there is at or after `from` (or the end), the one before it earlier.
            assert!(index == seconds_sent.len() || seconds_sent[index] >= from, "from {from}: line {index}");
            assert!(index == 0 || seconds_sent[index - 1] < from, "from {from}: line {index}");
        }
    }

    #[test]
    fn since_combines_with_target_and_tail() {
        let names = [Some("a"), Some("b"), None];
        let lines: Vec<(i64, Option<&str>, String)> = (0..3_000)
            .map(|i| (i / 2, names[i as usize % 3], sent_at(names[i as usize % 3], i / 2)))
            .collect();
        let text: String = lines.iter().map(|(_, _, line)| line.as_str()).collect();
        let dir = temp_dir("since");
        let path = dir.join("results.txt");
        fs::write(&path, &text).unwrap();
        let store = Store::open(&path, Form::Named, SyncPolicy::None).unwrap();
        for from in [-1, 0, 1, 700, 1_499, 1_500] {
            let since = LocalTime::from_seconds(seconds(from));
            for target in [None, Some("a"), Some("b"), Some("c")] {
                for tail in [None, Some(0), Some(1), Some(7), Some(100_000)] {
                    let kept: Vec<&str> = lines
                        .iter()
                        .filter(|(second, name, _)| *second >= from && (target.is_none() || *name == target))
                        .map(|(_, _, line)| line.as_str())
                        .collect();
                    let skip = kept.len().saturating_sub(tail.map_or(usize::MAX, |n| n as usize));
                    let mut excerpt = store.excerpt_since(Some(since), target, tail).unwrap();
                    let mut got = String::new();
                    excerpt.file.read_to_string(&mut got).unwrap();
                    let want = kept[skip..].concat();
                    assert!(
                        got == want,
                        "since {from} target {target:?} tail {tail:?}: {} lines, want {}",
                        got.lines().count(),
                        want.lines().count()
                    );
                    assert_eq!(got.len() as u64, excerpt.len);
                }
            }
            let mut all = String::new();
            store.since(since).unwrap().file.read_to_string(&mut all).unwrap();
            let want = lines
                .iter()
                .filter(|(second, _, _)| *second >= from)
                .map(|(_, _, line)| line.as_str())
                .collect::<String>();
            assert!(
                all == want,
                "since {from}: {} lines, want {}",
                all.lines().count(),
                want.lines().count()
            );
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_sighup_while_lines_are_appended_loses_none() {
        // SIGHUP also asks for the names to be resolved again: the path is then still the file
        // being appended to. Reopened beside an append, it could see a line half written (one
        // that straddles a page: long lines make them frequent), take it for a torn one and
        // cut it, with every line appended since.
        let dir = temp_dir("reopen");
        let path = dir.join("results.txt");
        let store = Arc::new(Store::open(&path, Form::Named, SyncPolicy::None).unwrap());
        let text = named(Some(LONGEST_NAME), 1);
        let appended = 200_000;
        let appender = {
            let (store, line) = (store.clone(), text.trim_end().parse::<Line>().unwrap());
            std::thread::spawn(move || (0..appended).for_each(|_| store.append(&line).unwrap()))
        };
        let mut reopens = 0;
        while !appender.is_finished() {
            store.reopen().unwrap();
            reopens += 1;
            // A moment with the lock free: the mutex is not fair, and a loop that takes it
            // again at once can starve the appender for minutes.
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
        appender.join().unwrap();
        let stored = fs::read_to_string(&path).unwrap();
        let kept = stored.lines().count();
        assert!(stored == text.repeat(appended), "{kept} lines of {appended} kept, after {reopens} reopens");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn find_newline_gives_the_first() {
        let cases = [
            ("", None),
            ("ab", None),
            ("\n", Some(0)),
            ("ab\n", Some(2)),
            ("a\nb\n", Some(1)),
            ("\n\n", Some(0)),
        ];
        for (text, at) in cases {
            assert_eq!(find_newline(text.as_bytes()), at, "{text:?}");
        }
    }
}
