//! Per-target figures over the last minute, hour and day: probes sent, replies, timeouts,
//! ICMP errors by kind, duplicates, late replies, loss, RTT min / mean / max / mdev and
//! p50 / p90 / p99, jitter; and the day in 5-minute buckets for the chart. Pure: the caller
//! gives every time, in "local seconds" (`LocalTime::seconds`, the clock the results lines
//! carry), so that lines read back at start and live probes fall in the same slots.
//!
//! # Windows
//! Each window is a ring of fixed slots, aligned to multiples of their width in local
//! seconds: the 1 m window is the current 10-second slot and the 5 before it, the 1 h window
//! the current minute and the 59 before it, the 24 h window the current quarter of an hour
//! and the 95 before it. "Sliding" is thus to a slot: a window covers between its length
//! less one slot and its length (a probe leaves the 1 m window 50 to 60 s after it was sent).
//! A probe counts in the slot of its send time; a lost probe counts as lost, never as an RTT.
//!
//! # Memory
//! Fixed whatever the rate: 6 + 60 + 96 slots and 288 chart buckets per target. A slot keeps
//! counters, exact min / max / sums for mean and mdev, the sum of jitter's differences, and a
//! quantile sketch (`sketch`, DDSketch-style, every quantile within 1 % relative of the exact
//! one) of at most min(replies in the slot, 2220) entries of 4 bytes (one more for each 2^20
//! replies in a single bucket, which 10 probes a second never reach); a slot's sketch is
//! trimmed to its size once time has moved past it. A closed chart bucket keeps only
//! sent / lost / min / median / max (in microseconds); the open one is read from the hour's
//! slots. A day of one probe a second takes 32 KiB (RTTs within ±10 %) to 41 KiB (a LAN
//! with spikes) a target, and 214 KiB if RTTs spread evenly over 10 µs to 1 s on a log
//! scale, the worst case (`tests/stats_memory.rs` counts the bytes allocated).
//!
//! # Jitter
//! The mean absolute difference of consecutive replies' RTTs (timeouts between them do not
//! break the pair), counted in the slot of the later reply: a window's jitter may include
//! the one pair whose earlier reply is just before the window. `smoothed_jitter` is RFC
//! 3550's running estimate over all replies.
//!
//! # Clock steps
//! Times are local seconds, not instants. A probe sent more than 5 minutes before the newest
//! one recorded means the clock went back: the newest time becomes the probe's, and slots
//! whose time comes again are counted anew or, where they still hold the same slot of time,
//! added to (when summer time ends, the repeated hour counts twice in the 1 h and 24 h
//! windows, and the 1 m window starts afresh). When the clock goes forward (an hour
//! skipped), the skipped slots stay empty. A probe less than 5 minutes older than the newest
//! counts where its slot is still in the ring (the 1 m ring drops it after a minute). Slots
//! after `now`'s (a clock set back, a line from the future) are not counted until their time.

mod sketch;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::time::Duration;

use serde::Serialize;

use crate::line::{Line, Name, Outcome};
use sketch::{Merged, Sketch};

/// What one probe came to, as the statistics count it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    Reply(Duration),
    Timeout,
    /// An ICMP error for the probe, or a send that failed: its kind, e.g. "host-unreachable".
    Error(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Minute,
    Hour,
    Day,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Minute, Window::Hour, Window::Day];

    pub fn label(self) -> &'static str {
        match self {
            Window::Minute => "1m",
            Window::Hour => "1h",
            Window::Day => "24h",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
        }
    }

    /// The width of the window's slots.
    fn slot_seconds(self) -> i64 {
        match self {
            Window::Minute => 10,
            Window::Hour => 60,
            Window::Day => 900,
        }
    }
}

/// The chart's buckets: 5 minutes each, 24 hours of them.
pub const BUCKET_SECONDS: i64 = 300;
pub const BUCKETS: usize = 288;
/// A probe sent this long before the newest one recorded means the clock went back: longer
/// than any probe takes to be recorded (a timeout is at most 60 s).
const STEP_BACK: i64 = 300;

/// A window's figures, as /latency-stats shows them; times in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub window: &'static str,
    pub sent: u64,
    pub replies: u64,
    pub timeouts: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub duplicates: u64,
    pub late: u64,
    /// (timeouts + errors) / sent, in percent; None when nothing was sent.
    pub loss_percent: Option<f64>,
    /// None when no reply came.
    pub rtt_ms: Option<Rtt>,
    /// None without two replies.
    pub jitter_ms: Option<f64>,
}

/// Round-trip times in milliseconds. `mdev` as ping gives it: sqrt(E[x²] − E[x]²).
/// Percentiles within 1 % relative of the reply at that rank.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rtt {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub mdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// One 5-minute bucket of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartPoint {
    /// The bucket's start, in local seconds.
    pub start: i64,
    pub sent: u64,
    pub lost: u64,
    /// None when no reply came in the bucket; to the microsecond.
    pub min: Option<Duration>,
    pub median: Option<Duration>,
    pub max: Option<Duration>,
}

/// The figures of one target.
pub struct TargetStats {
    /// In the order of `Window::ALL`.
    rings: [Ring; 3],
    /// Closed chart buckets, at their index modulo `BUCKETS`.
    chart: Box<[Bucket]>,
    /// The latest send time recorded (see "Clock steps"); its bucket is the chart's open one.
    newest: Option<i64>,
    last_reply: Option<u64>,
    smoothed: Option<f64>,
}

impl Default for TargetStats {
    fn default() -> Self {
        TargetStats::new()
    }
}

impl TargetStats {
    pub fn new() -> Self {
        TargetStats {
            rings: Window::ALL.map(Ring::new),
            chart: vec![Bucket::EMPTY; BUCKETS].into_boxed_slice(),
            newest: None,
            last_reply: None,
            smoothed: None,
        }
    }

    /// `at`: seconds of the probe's send time on the local clock (see `LocalTime::seconds`).
    pub fn record(&mut self, at: i64, sample: Sample) {
        let newest = self.advance(at);
        let jitter = match sample {
            Sample::Reply(rtt) => {
                let nanos = nanos(rtt);
                let difference = self.last_reply.replace(nanos).map(|last| last.abs_diff(nanos) as f64);
                if let Some(difference) = difference {
                    let smoothed = self.smoothed.unwrap_or(0.0);
                    self.smoothed = Some(smoothed + (difference - smoothed) / 16.0);
                }
                difference
            }
            Sample::Timeout | Sample::Error(_) => None,
        };
        for ring in &mut self.rings {
            if let Some(slot) = ring.slot(at, newest) {
                slot.record(sample, jitter);
            }
        }
        let bucket = at.div_euclid(BUCKET_SECONDS);
        if bucket != newest.div_euclid(BUCKET_SECONDS) {
            self.chart[position(bucket, BUCKETS)].record_late(bucket, sample);
        }
    }

    /// A reply came again for a probe sent at `at`.
    pub fn duplicate(&mut self, at: i64) {
        let newest = self.advance(at);
        self.rings
            .iter_mut()
            .filter_map(|ring| ring.slot(at, newest))
            .for_each(|slot| slot.rare().duplicates += 1);
    }

    /// A reply came after its probe, sent at `at`, had timed out.
    pub fn late(&mut self, at: i64) {
        let newest = self.advance(at);
        self.rings.iter_mut().filter_map(|ring| ring.slot(at, newest)).for_each(|slot| slot.rare().late += 1);
    }

    /// The figures of `window` ending in the slot `now` falls in.
    pub fn summary(&self, now: i64, window: Window) -> Summary {
        let mut summary = Summary {
            window: window.label(),
            sent: 0,
            replies: 0,
            timeouts: 0,
            errors: BTreeMap::new(),
            duplicates: 0,
            late: 0,
            loss_percent: None,
            rtt_ms: None,
            jitter_ms: None,
        };
        let mut replies = Replies::default();
        let (mut jitter, mut pairs) = (0.0, 0u64);
        for slot in self.ring(window).window(now) {
            summary.timeouts += u64::from(slot.timeouts);
            if let Some(rare) = &slot.rare {
                summary.duplicates += u64::from(rare.duplicates);
                summary.late += u64::from(rare.late);
                for &(kind, count) in &rare.errors {
                    *summary.errors.entry(kind).or_default() += u64::from(count);
                }
            }
            replies.add(slot);
            jitter += slot.jitter;
            pairs += u64::from(slot.pairs);
        }
        summary.replies = replies.count;
        let lost = summary.timeouts + summary.errors.values().sum::<u64>();
        summary.sent = summary.replies + lost;
        summary.loss_percent = (summary.sent > 0).then(|| 100.0 * lost as f64 / summary.sent as f64);
        summary.rtt_ms = replies.rtt();
        summary.jitter_ms = (pairs > 0).then(|| jitter / pairs as f64 / 1e6);
        summary
    }

    /// RFC 3550's smoothed jitter (J += (|D| - J)/16 over consecutive replies), now.
    pub fn smoothed_jitter(&self) -> Option<Duration> {
        self.smoothed.map(|nanos| Duration::from_nanos(nanos.round() as u64))
    }

    /// The last 24 h in 5-minute buckets, oldest first, only buckets that hold a probe.
    pub fn chart(&self, now: i64) -> Vec<ChartPoint> {
        let current = now.div_euclid(BUCKET_SECONDS);
        let open = self.newest.map(|newest| newest.div_euclid(BUCKET_SECONDS));
        (current - BUCKETS as i64 + 1..=current)
            .filter_map(|index| {
                let bucket = if Some(index) == open {
                    self.bucket_from_slots(index)
                } else {
                    self.chart[position(index, BUCKETS)]
                };
                (bucket.index == index && bucket.sent > 0).then(|| bucket.point())
            })
            .collect()
    }

    fn ring(&self, window: Window) -> &Ring {
        &self.rings[Window::ALL.iter().position(|w| *w == window).unwrap_or(0)]
    }

    /// Moves the newest time to `at` if it is later, or much earlier (the clock went back),
    /// closing the chart's open bucket and trimming the slots time has left; the newest time.
    fn advance(&mut self, at: i64) -> i64 {
        let old = match self.newest {
            Some(newest) if (newest - STEP_BACK..=newest).contains(&at) => return newest,
            old => old,
        };
        self.newest = Some(at);
        let Some(old) = old else { return at };
        for ring in &mut self.rings {
            ring.close(old, at);
        }
        let bucket = old.div_euclid(BUCKET_SECONDS);
        if bucket != at.div_euclid(BUCKET_SECONDS) {
            self.chart[position(bucket, BUCKETS)] = self.bucket_from_slots(bucket);
        }
        at
    }

    /// Chart bucket `index`, from the hour's minute slots (which hold the last 5 minutes).
    fn bucket_from_slots(&self, index: i64) -> Bucket {
        let minutes = index * (BUCKET_SECONDS / 60)..(index + 1) * (BUCKET_SECONDS / 60);
        let mut replies = Replies::default();
        let mut lost = 0;
        for slot in self.ring(Window::Hour).slots.iter().filter(|slot| minutes.contains(&slot.index)) {
            replies.add(slot);
            lost += slot.lost();
        }
        let micros = |nanos: f64| (nanos / 1e3).round().min(f64::from(u32::MAX)) as u32;
        Bucket {
            index,
            sent: replies.count as u32 + lost,
            lost,
            min: micros(replies.min as f64),
            median: replies.quantile(0.5).map_or(0, micros),
            max: micros(replies.max as f64),
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Where slot `index` sits in a ring of `len`.
fn position(index: i64, len: usize) -> usize {
    index.rem_euclid(len as i64) as usize
}

/// The slots of one window.
struct Ring {
    width: i64,
    slots: Box<[Slot]>,
}

impl Ring {
    fn new(window: Window) -> Ring {
        let len = (window.seconds() / window.slot_seconds()) as usize;
        Ring { width: window.slot_seconds(), slots: vec![Slot::default(); len].into_boxed_slice() }
    }

    /// The slot `at` falls in, started afresh if its place held another slot of time; None
    /// when `at` is older than the ring reaches back from `newest`.
    fn slot(&mut self, at: i64, newest: i64) -> Option<&mut Slot> {
        let index = at.div_euclid(self.width);
        if index <= newest.div_euclid(self.width) - self.slots.len() as i64 {
            return None;
        }
        let slot = &mut self.slots[position(index, self.slots.len())];
        if slot.index != index {
            slot.reset(index);
        }
        Some(slot)
    }

    /// Trims the slot of `old` once the newest time, now `new`, is in another slot.
    fn close(&mut self, old: i64, new: i64) {
        let index = old.div_euclid(self.width);
        if index != new.div_euclid(self.width) {
            let slot = &mut self.slots[position(index, self.slots.len())];
            if slot.index == index {
                slot.sketch.shrink();
            }
        }
    }

    /// The slots of the window that ends with the slot `now` falls in.
    fn window(&self, now: i64) -> impl Iterator<Item = &Slot> {
        let current = now.div_euclid(self.width);
        let oldest = current - self.slots.len() as i64 + 1;
        self.slots.iter().filter(move |slot| (oldest..=current).contains(&slot.index))
    }
}

/// What a slot of time holds. Times in nanoseconds.
#[derive(Debug, Clone)]
struct Slot {
    /// Which slot of time: the send time divided by the ring's width; `i64::MIN` when unused.
    index: i64,
    replies: u32,
    timeouts: u32,
    min: u64,
    max: u64,
    sum: f64,
    squares: f64,
    /// The sum of the absolute differences of `pairs` consecutive replies.
    jitter: f64,
    pairs: u32,
    sketch: Sketch,
    /// Errors, duplicates and late replies, rare enough to be kept apart: 8 bytes a slot
    /// without them.
    rare: Option<Box<Rare>>,
}

#[derive(Debug, Clone, Default)]
struct Rare {
    duplicates: u32,
    late: u32,
    errors: Vec<(&'static str, u32)>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            index: i64::MIN,
            replies: 0,
            timeouts: 0,
            min: u64::MAX,
            max: 0,
            sum: 0.0,
            squares: 0.0,
            jitter: 0.0,
            pairs: 0,
            sketch: Sketch::default(),
            rare: None,
        }
    }
}

impl Slot {
    /// Empties the slot for slot of time `index`, keeping its sketch's room for the new one.
    fn reset(&mut self, index: i64) {
        let mut sketch = std::mem::take(&mut self.sketch);
        sketch.clear();
        *self = Slot { index, sketch, ..Slot::default() };
    }

    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_default()
    }

    /// Timeouts and errors.
    fn lost(&self) -> u32 {
        let errors = self.rare.as_ref().map_or(0, |rare| rare.errors.iter().map(|&(_, count)| count).sum());
        self.timeouts + errors
    }

    fn record(&mut self, sample: Sample, jitter: Option<f64>) {
        match sample {
            Sample::Reply(rtt) => {
                let nanos = nanos(rtt);
                self.replies += 1;
                self.min = self.min.min(nanos);
                self.max = self.max.max(nanos);
                self.sum += nanos as f64;
                self.squares += (nanos as f64).powi(2);
                self.sketch.add(nanos);
                if let Some(difference) = jitter {
                    self.jitter += difference;
                    self.pairs += 1;
                }
            }
            Sample::Timeout => self.timeouts += 1,
            Sample::Error(kind) => {
                let errors = &mut self.rare().errors;
                match errors.iter_mut().find(|(known, _)| *known == kind) {
                    Some((_, count)) => *count += 1,
                    None => errors.push((kind, 1)),
                }
            }
        }
    }
}

/// The replies of several slots together.
struct Replies {
    count: u64,
    min: u64,
    max: u64,
    sum: f64,
    squares: f64,
    sketches: Merged,
}

impl Default for Replies {
    fn default() -> Self {
        Replies { count: 0, min: u64::MAX, max: 0, sum: 0.0, squares: 0.0, sketches: Merged::default() }
    }
}

impl Replies {
    fn add(&mut self, slot: &Slot) {
        self.count += u64::from(slot.replies);
        self.min = self.min.min(slot.min);
        self.max = self.max.max(slot.max);
        self.sum += slot.sum;
        self.squares += slot.squares;
        self.sketches.add(&slot.sketch);
    }

    /// The reply at rank ⌊q (n − 1)⌋, in nanoseconds, kept within the exact min and max (so
    /// that one reply is its own median).
    fn quantile(&self, q: f64) -> Option<f64> {
        let value = self.sketches.quantile(q)?;
        Some(value.clamp(self.min as f64, self.max as f64))
    }

    fn rtt(&self) -> Option<Rtt> {
        let ms = |nanos: f64| nanos / 1e6;
        let n = self.count as f64;
        let mean = self.sum / n;
        Some(Rtt {
            p50: ms(self.quantile(0.5)?),
            p90: ms(self.quantile(0.9)?),
            p99: ms(self.quantile(0.99)?),
            min: ms(self.min as f64),
            mean: ms(mean),
            max: ms(self.max as f64),
            // Rounding can take the difference a hair below zero when every RTT is the same.
            mdev: ms((self.squares / n - mean * mean).max(0.0).sqrt()),
        })
    }
}

/// A closed chart bucket: 24 bytes. Times in microseconds, meaningless when `sent == lost`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: i64,
    sent: u32,
    lost: u32,
    min: u32,
    median: u32,
    max: u32,
}

impl Bucket {
    const EMPTY: Bucket = Bucket { index: i64::MIN, sent: 0, lost: 0, min: 0, median: 0, max: 0 };

    /// A probe of this bucket recorded after it closed: it counts, but the median stays.
    fn record_late(&mut self, index: i64, sample: Sample) {
        if self.index != index {
            return;
        }
        let replied = self.sent > self.lost;
        self.sent += 1;
        match sample {
            Sample::Reply(rtt) => {
                let micros = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
                if !replied {
                    (self.min, self.median, self.max) = (micros, micros, micros);
                }
                self.min = self.min.min(micros);
                self.max = self.max.max(micros);
            }
            Sample::Timeout | Sample::Error(_) => self.lost += 1,
        }
    }

    fn point(&self) -> ChartPoint {
        let replied = self.sent > self.lost;
        let time = |micros: u32| replied.then(|| Duration::from_micros(u64::from(micros)));
        ChartPoint {
            start: self.index * BUCKET_SECONDS,
            sent: u64::from(self.sent),
            lost: u64::from(self.lost),
            min: time(self.min),
            median: time(self.median),
            max: time(self.max),
        }
    }
}

/// What a refill from the results file came to: lines counted, and lines passed over
/// (another form than this run's, an unknown target, not a results line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refilled {
    pub used: u64,
    pub skipped: u64,
}

/// Counts results lines (each without its newline) into the targets' figures, `stats[i]`
/// being `names[i]`'s. With one target, seed-form lines are its own; with several, named lines
/// count for the target they name. A `timeout` line counts as `Sample::Timeout`: the file does
/// not tell an ICMP error from a timeout.
pub fn refill<'a>(
    stats: &mut [TargetStats],
    names: &[Name],
    lines: impl Iterator<Item = &'a [u8]>,
    until: i64,
) -> Refilled {
    refill_by(stats, &Targets::new(names, until), lines)
}

/// Which target a line's NAME is, looked up by hash: a day of a hundred targets is millions
/// of lines, and comparing each with every name took most of the time of reading them back.
struct Targets<'n> {
    single: bool,
    by_name: HashMap<&'n str, usize>,
    /// Lines sent later than this (local seconds) are skipped: a line from the future (a
    /// clock that ran ahead and was set right) would hold the windows' newest time ahead of
    /// every live probe, and the live minute would stay empty until it came.
    until: i64,
}

impl<'n> Targets<'n> {
    fn new(names: &'n [Name], until: i64) -> Self {
        let by_name = names.iter().enumerate().map(|(index, name)| (&**name, index)).collect();
        Targets { single: names.len() == 1, by_name, until }
    }

    fn of(&self, line: &Line) -> Option<usize> {
        if line.sent.seconds() > self.until {
            return None;
        }
        match (&line.target, self.single) {
            (None, true) => Some(0),
            (Some(name), false) => self.by_name.get(&**name).copied(),
            _ => None,
        }
    }
}

fn refill_by<'a>(
    stats: &mut [TargetStats],
    targets: &Targets,
    lines: impl Iterator<Item = &'a [u8]>,
) -> Refilled {
    let mut refilled = Refilled::default();
    for text in lines {
        let line = std::str::from_utf8(text).ok().and_then(|text| text.parse::<Line>().ok());
        let target = line.as_ref().and_then(|line| targets.of(line));
        match (line, target.and_then(|target| stats.get_mut(target))) {
            (Some(line), Some(stats)) => {
                let sample = match line.outcome {
                    Outcome::Reply(rtt) => Sample::Reply(rtt),
                    Outcome::Timeout => Sample::Timeout,
                };
                stats.record(line.sent.seconds(), sample);
                refilled.used += 1;
            }
            _ => refilled.skipped += 1,
        }
    }
    refilled
}

/// `refill` from everything `reader` yields (an excerpt of the results file), read in chunks
/// of 64 KiB: a line longer than that is no results line, and is skipped.
pub fn refill_from<R: Read>(
    stats: &mut [TargetStats],
    names: &[Name],
    mut reader: R,
    until: i64,
) -> io::Result<Refilled> {
    let targets = Targets::new(names, until);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut filled, mut total) = (0, Refilled::default());
    let mut add = |refilled: Refilled| {
        total.used += refilled.used;
        total.skipped += refilled.skipped;
    };
    // In a line too long for the buffer, already counted: its rest is passed over.
    let mut skipping = false;
    loop {
        let read = match reader.read(&mut buf[filled..]) {
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        filled += read;
        match buf[..filled].iter().rposition(|&byte| byte == b'\n') {
            Some(last) => {
                let mut lines = buf[..last].split(|&byte| byte == b'\n');
                if std::mem::take(&mut skipping) {
                    lines.next();
                }
                add(refill_by(stats, &targets, lines));
                buf.copy_within(last + 1..filled, 0);
                filled -= last + 1;
            }
            None if filled == buf.len() => {
                if !std::mem::replace(&mut skipping, true) {
                    add(Refilled { used: 0, skipped: 1 });
                }
                filled = 0;
            }
            None => {}
        }
        if read == 0 {
            if filled > 0 && !skipping {
                add(refill_by(stats, &targets, std::iter::once(&buf[..filled])));
            }
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sketch::tests::Random;

    const MS: Duration = Duration::from_millis(1);
    /// 2025-08-12 06:00:00 in local seconds: a day's, an hour's and a minute's start.
    const T: i64 = 1_754_978_400;

    fn reply(micros: u64) -> Sample {
        Sample::Reply(Duration::from_micros(micros))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn windows_have_their_labels_and_lengths() {
        let got: Vec<_> =
            Window::ALL.iter().map(|w| (w.label(), w.seconds(), w.seconds() % w.slot_seconds())).collect();
        assert_eq!(got, [("1m", 60, 0), ("1h", 3_600, 0), ("24h", 86_400, 0)]);
    }

    #[test]
    fn a_probe_leaves_each_window_when_its_slot_does() {
        // (window, seconds after the probe it still counts, first second it no longer does)
        let cases = [(Window::Minute, 59, 60), (Window::Hour, 3_599, 3_600), (Window::Day, 86_399, 86_400)];
        for (window, last_in, first_out) in cases {
            let mut stats = TargetStats::new();
            stats.record(T, reply(500));
            assert_eq!(stats.summary(T, window).sent, 1, "{window:?} at once");
            assert_eq!(stats.summary(T + last_in, window).sent, 1, "{window:?} {last_in} s later");
            assert_eq!(stats.summary(T + first_out, window).sent, 0, "{window:?} {first_out} s later");
            assert_eq!(stats.summary(T - 1, window).sent, 0, "{window:?} before it was sent");
        }
        // A probe late in its slot leaves sooner: the window moves a slot at a time.
        let mut stats = TargetStats::new();
        stats.record(T + 9, reply(500));
        assert_eq!(stats.summary(T + 59, Window::Minute).sent, 1);
        assert_eq!(stats.summary(T + 60, Window::Minute).sent, 0);
    }

    #[test]
    fn counts_every_outcome_and_loss_is_timeouts_and_errors_over_sent() {
        let mut stats = TargetStats::new();
        let samples = [
            reply(1_000),
            Sample::Timeout,
            Sample::Error("host-unreachable"),
            reply(3_000),
            Sample::Error("host-unreachable"),
            Sample::Error("port-unreachable"),
            Sample::Timeout,
            reply(2_000),
        ];
        for (i, sample) in samples.into_iter().enumerate() {
            stats.record(T + i as i64, sample);
        }
        stats.duplicate(T + 1);
        stats.late(T + 2);
        stats.late(T + 3);
        let summary = stats.summary(T + 8, Window::Minute);
        let errors = BTreeMap::from([("host-unreachable", 2), ("port-unreachable", 1)]);
        assert_eq!(
            (
                summary.sent,
                summary.replies,
                summary.timeouts,
                &summary.errors,
                summary.duplicates,
                summary.late
            ),
            (8, 3, 2, &errors, 1, 2)
        );
        assert_eq!(summary.loss_percent, Some(62.5));
        assert_eq!(stats.summary(T + 8, Window::Hour), Summary { window: "1h", ..summary.clone() });
        let empty = TargetStats::new().summary(T, Window::Day);
        assert_eq!((empty.sent, empty.loss_percent, empty.rtt_ms, empty.jitter_ms), (0, None, None, None));
    }

    #[test]
    fn a_lost_probe_never_counts_as_zero_milliseconds() {
        let mut stats = TargetStats::new();
        stats.record(T, reply(5_000));
        for i in 1..100 {
            stats.record(T + i, if i % 2 == 0 { Sample::Timeout } else { Sample::Error("net-unreachable") });
        }
        stats.record(T + 100, reply(7_000));
        let rtt = stats.summary(T + 100, Window::Hour).rtt_ms.unwrap();
        assert_eq!((rtt.min, rtt.max, rtt.mean), (5.0, 7.0, 6.0));
        assert!(rtt.p50 >= 5.0 && rtt.p99 <= 7.0, "{rtt:?}");
        let lost_only = {
            let mut stats = TargetStats::new();
            stats.record(T, Sample::Timeout);
            stats
        };
        assert_eq!(lost_only.summary(T, Window::Minute).rtt_ms, None);
        assert_eq!(lost_only.chart(T)[0].min, None);
    }

    #[test]
    fn mean_and_mdev_are_pings() {
        // RTTs 1, 2, 4, 5 ms: mean 3, E[x²] = (1 + 4 + 16 + 25) / 4 = 11.5, mdev = sqrt(11.5 - 9).
        let mut stats = TargetStats::new();
        for (i, ms) in [1, 2, 4, 5].into_iter().enumerate() {
            stats.record(T + i as i64, Sample::Reply(ms * MS));
        }
        let rtt = stats.summary(T + 3, Window::Minute).rtt_ms.unwrap();
        assert_eq!((rtt.min, rtt.mean, rtt.max), (1.0, 3.0, 5.0));
        assert!(close(rtt.mdev, 2.5f64.sqrt()), "{}", rtt.mdev);
        // Every RTT alike: no deviation, and the percentiles are that RTT exactly.
        let mut same = TargetStats::new();
        (0..50).for_each(|i| same.record(T + i, reply(270)));
        let rtt = same.summary(T + 49, Window::Hour).rtt_ms.unwrap();
        assert_eq!((rtt.mdev, rtt.p50, rtt.p90, rtt.p99), (0.0, 0.27, 0.27, 0.27));
    }

    #[test]
    fn jitter_is_the_mean_difference_of_consecutive_replies() {
        let mut stats = TargetStats::new();
        // 10, 12, (lost), 9, 9 ms: differences 2, 3, 0; a timeout does not break the pair.
        let samples = [
            Sample::Reply(10 * MS),
            Sample::Reply(12 * MS),
            Sample::Timeout,
            Sample::Reply(9 * MS),
            Sample::Reply(9 * MS),
        ];
        for (i, sample) in samples.into_iter().enumerate() {
            stats.record(T + i as i64, sample);
        }
        assert_eq!(stats.summary(T + 4, Window::Minute).jitter_ms, Some(5.0 / 3.0));
        // RFC 3550 from J = 0: 2/16, then + (3 - J)/16, then + (0 - J)/16.
        let j = 2.0 / 16.0;
        let j = j + (3.0 - j) / 16.0;
        let j: f64 = j + (0.0 - j) / 16.0;
        assert_eq!(stats.smoothed_jitter(), Some(Duration::from_nanos((j * 1e6).round() as u64)));
        let mut one = TargetStats::new();
        one.record(T, Sample::Reply(MS));
        assert_eq!((one.summary(T, Window::Minute).jitter_ms, one.smoothed_jitter()), (None, None));
    }

    /// The exact reply at rank ⌊q (n − 1)⌋, in ms.
    fn exact(sorted: &[u64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize] as f64 / 1e6
    }

    #[test]
    fn percentiles_over_many_slots_are_within_one_percent_of_the_exact_ones() {
        let mut random = Random::new(3);
        type Shape = Box<dyn Fn(&mut Random) -> u64>;
        let shapes: [(&str, Shape); 3] = [
            ("uniform 0.2..0.4 ms", Box::new(|r| 200_000 + r.next() % 200_000)),
            ("log-uniform 10 µs..1 s", Box::new(|r| (1e4 * 1e5f64.powf(r.unit())) as u64)),
            (
                "3% spikes to 2 s",
                Box::new(|r| {
                    if r.next() % 100 < 3 {
                        2_000_000_000 - r.next() % 1_000_000_000
                    } else {
                        20_000_000 + r.next() % 2_000_000
                    }
                }),
            ),
        ];
        for (name, shape) in shapes {
            let mut stats = TargetStats::new();
            let mut values = Vec::new();
            // Two probes a second for a day: every slot of every ring is used.
            for half in 0..2 * 86_400 {
                let nanos = shape(&mut random);
                values.push(nanos);
                stats.record(T + half / 2, Sample::Reply(Duration::from_nanos(nanos)));
            }
            let now = T + 86_399;
            for window in Window::ALL {
                let from =
                    (now.div_euclid(window.slot_seconds()) + 1) * window.slot_seconds() - window.seconds();
                let mut sorted: Vec<u64> = values[2 * (from - T) as usize..].to_vec();
                sorted.sort_unstable();
                let rtt = stats.summary(now, window).rtt_ms.unwrap();
                for (q, got) in [(0.5, rtt.p50), (0.9, rtt.p90), (0.99, rtt.p99)] {
                    let want = exact(&sorted, q);
                    assert!(
                        (got - want).abs() <= 0.01 * want + 1e-12,
                        "{name} {window:?} p{q}: {got} vs {want}"
                    );
                }
                assert_eq!(rtt.min, sorted[0] as f64 / 1e6, "{name} {window:?}");
                assert_eq!(rtt.max, sorted[sorted.len() - 1] as f64 / 1e6, "{name} {window:?}");
            }
        }
    }

    #[test]
    fn a_million_distinct_rtts_in_one_slot_keep_a_bounded_sketch() {
        let mut stats = TargetStats::new();
        let mut random = Random::new(5);
        for _ in 0..1_000_000 {
            stats.record(T, Sample::Reply(Duration::from_nanos(random.next() >> (random.next() % 64))));
        }
        for ring in &stats.rings {
            let entries: usize = ring.slots.iter().map(|slot| slot.sketch.entries()).sum();
            assert!(entries <= sketch::MAX_INDEX as usize + 1, "{entries}");
        }
        assert_eq!(stats.summary(T, Window::Minute).replies, 1_000_000);
    }

    #[test]
    fn the_chart_has_a_point_per_five_minutes_with_probes_oldest_first() {
        let mut stats = TargetStats::new();
        // A day and a bit at one probe a minute, every third bucket lost, every tenth probe
        // lost, one bucket (the 7th) without any probe.
        for minute in 0..(24 * 60 + 7) {
            let bucket = minute / 5;
            if bucket == 7 {
                continue;
            }
            let sample = if bucket % 3 == 0 || minute % 10 == 9 {
                Sample::Timeout
            } else {
                reply(1_000 + 10 * (minute % 5) as u64)
            };
            stats.record(T + 60 * minute, sample);
        }
        let now = T + 60 * (24 * 60 + 6);
        let chart = stats.chart(now);
        // Buckets 2..=289 are the last 24 h; bucket 7 has nothing.
        assert_eq!(chart.len(), 287);
        assert_eq!(chart.first().unwrap().start, T + 2 * 300);
        assert_eq!(chart.last().unwrap().start, T + 289 * 300, "the open bucket");
        assert!(chart.windows(2).all(|pair| pair[0].start < pair[1].start));
        assert!(chart.iter().all(|point| point.start != T + 7 * 300));
        for point in &chart {
            let bucket = (point.start - T) / 300;
            let minutes = if bucket == 289 { 2 } else { 5 };
            assert_eq!(point.sent, minutes, "{point:?}");
            if bucket % 3 == 0 {
                assert_eq!((point.lost, point.min, point.median, point.max), (minutes, None, None, None));
            } else {
                let lost = (bucket * 5..bucket * 5 + minutes as i64).filter(|m| m % 10 == 9).count() as u64;
                assert_eq!(point.lost, lost, "{point:?}");
                assert_eq!(point.min, Some(Duration::from_micros(1_000)), "{point:?}");
                assert!(
                    point.median.unwrap() >= Duration::from_micros(1_000) && point.median <= point.max,
                    "{point:?}"
                );
            }
        }
        let median = chart.iter().find(|point| (point.start - T) / 300 == 4).unwrap().median.unwrap();
        // Bucket 4 holds 1.00, 1.01, 1.02, 1.03 ms and one lost: median (rank 1) 1.01 ms ± 1 %.
        assert!(median.abs_diff(Duration::from_micros(1_010)) <= Duration::from_micros(11), "{median:?}");
        assert!(TargetStats::new().chart(now).is_empty());
    }

    #[test]
    fn a_probe_recorded_after_its_chart_bucket_closed_still_counts() {
        let mut stats = TargetStats::new();
        stats.record(T + 290, reply(2_000));
        stats.record(T + 301, reply(3_000));
        stats.record(T + 299, Sample::Timeout);
        stats.record(T + 298, reply(1_000));
        let chart = stats.chart(T + 301);
        assert_eq!(
            (chart[0].sent, chart[0].lost, chart[0].min, chart[0].median),
            (3, 1, Some(MS), Some(2 * MS))
        );
        assert_eq!(stats.summary(T + 301, Window::Minute).sent, 4);
    }

    #[test]
    fn old_and_future_probes_are_handled() {
        let mut stats = TargetStats::new();
        stats.record(T, reply(1_000));
        // A minute and more before the newest: too old for the 1 m ring, kept by the others.
        stats.record(T - 70, reply(2_000));
        assert_eq!(stats.summary(T, Window::Minute).sent, 1);
        assert_eq!(stats.summary(T, Window::Hour).sent, 2);
        // From the future: slotted, counted once its time comes, and the present goes on.
        stats.record(T + 7_300, reply(3_000));
        assert_eq!(stats.summary(T, Window::Hour).sent, 2);
        assert_eq!(stats.summary(T + 7_300, Window::Minute).sent, 1);
        // Older than a day: slotted where its slot is, which `now` never shows; then the
        // present again, as after a clock that was set ahead is put right.
        stats.record(T - 86_400 - 3_010, Sample::Timeout);
        stats.record(T + 1, reply(1_000));
        for window in Window::ALL {
            assert_eq!(stats.summary(T + 1, window).timeouts, 0, "{window:?}");
        }
        let sent = Window::ALL.map(|window| stats.summary(T + 1, window).sent);
        assert_eq!(sent, [2, 3, 3], "T, T + 1 and T - 70 where the window reaches it");
    }

    #[test]
    fn a_repeated_hour_counts_from_the_clock_going_back() {
        // Summer time ends: 02:00 to 02:59:59 twice, a probe every 10 s.
        let mut stats = TargetStats::new();
        for second in (0..3_600).step_by(10) {
            stats.record(T + second, reply(1_000));
        }
        for second in (0..600).step_by(10) {
            stats.record(T + second, reply(2_000));
        }
        let now = T + 590;
        let minute = stats.summary(now, Window::Minute);
        assert_eq!(
            (minute.sent, minute.rtt_ms.unwrap().max),
            (6, 2.0),
            "the 1 m window holds the second pass"
        );
        // The 1 h window: the 10 minutes repeated, each probe counted twice.
        assert_eq!(stats.summary(now, Window::Hour).sent, 120);
        // And later slots of the first pass count again only when their time comes again.
        assert_eq!(stats.summary(T + 3_599, Window::Hour).sent, 360 + 60);
    }

    fn names(list: &[&str]) -> Vec<Name> {
        list.iter().map(|name| name.parse().unwrap()).collect()
    }

    #[test]
    fn refill_counts_the_lines_of_the_configured_targets_and_skips_the_rest() {
        let text: &[u8] = b"[2025-08-12 06:00:00] Latency: 0.27 ms\n\
                    [2025-08-12 06:00:01] db-2 Latency: 1.50 ms\n\
                    [2025-08-12 06:00:02] db-2 Latency: timeout\n\
                    [2025-08-12 06:00:03] web Latency: 2.00 ms\n\
                    [2025-08-12 06:00:04] other Latency: 2.00 ms\n\
                    root:x:0:0:root:/root:/bin/bash\n\
                    \n\
                    [2025-08-12 06:00:05] Latency: timeout\n\
                    [2025-08-12 06:00:0\xff] Latency: timeout";
        let lines = || text.split(|&byte| byte == b'\n');
        // (targets, used, skipped, sent per target)
        let cases: [(&[&str], u64, u64, &[u64]); 4] = [
            (&["db-2"], 2, 7, &[2]),
            (&["db-2", "web"], 3, 6, &[2, 1]),
            (&["web", "db-2", "nothing"], 3, 6, &[1, 2, 0]),
            (&[], 0, 9, &[]),
        ];
        for (targets, used, skipped, sent) in cases {
            let names = names(targets);
            let mut stats: Vec<TargetStats> = names.iter().map(|_| TargetStats::new()).collect();
            assert_eq!(refill(&mut stats, &names, lines(), T + 5), Refilled { used, skipped }, "{targets:?}");
            let got: Vec<u64> = stats.iter().map(|s| s.summary(T + 5, Window::Minute).sent).collect();
            assert_eq!(got, sent, "{targets:?}");
        }
        let names = names(&["db-2", "web"]);
        let mut stats = vec![TargetStats::new(), TargetStats::new()];
        refill(&mut stats, &names, lines(), T + 5);
        let db2 = stats[0].summary(T + 5, Window::Minute);
        assert_eq!((db2.replies, db2.timeouts, db2.rtt_ms.unwrap().min), (1, 1, 1.5));
        let mut stats = vec![TargetStats::new(), TargetStats::new()];
        assert_eq!(
            refill(&mut stats, &names, lines(), T + 1),
            Refilled { used: 1, skipped: 8 },
            "lines sent after the read began are the future's"
        );
    }

    #[test]
    fn refill_from_reads_lines_across_chunks_and_skips_overlong_ones() {
        let line = "[2025-08-12 06:00:00] Latency: 0.27 ms\n";
        let overlong = format!("[2025-08-12 06:00:00] Latency: 0.27 ms{}\n", " ".repeat(200_000));
        let cases = [
            (line.repeat(10_000), 10_000, 0),
            (format!("{}{overlong}{}", line.repeat(3_000), line.repeat(3_000)), 6_000, 1),
            (format!("{overlong}{overlong}"), 0, 2),
            (format!("{}{}", line.repeat(2), line.trim_end()), 3, 0),
            (String::new(), 0, 0),
        ];
        let names = names(&["db-2"]);
        for (text, used, skipped) in cases {
            let mut stats = [TargetStats::new()];
            let reader = io::Cursor::new(text.as_bytes());
            let refilled = refill_from(&mut stats, &names, reader, T).unwrap();
            assert_eq!(refilled, Refilled { used, skipped }, "{} bytes", text.len());
            assert_eq!(stats[0].summary(T, Window::Day).sent, used);
        }
    }
}
