//! What the prober saw, kept for the operator: the Prometheus metrics of every target and of
//! the process, and each target's statistics windows. The prober thread records; HTTP threads
//! read. Counters and histograms are the `prometheus` crate's atomics, so a scrape never holds
//! up the prober; each target's windows have a lock of their own, held by a reader only while
//! it sums that one target.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

mod process;

use process::ProcessMetrics;

use crate::engine::{Address, Measurement};
use crate::line::{Name, Outcome};
use crate::page::{Overview, TargetView};
use crate::stats::{Refilled, Sample, TargetStats, Window};

/// Round trips from 50 µs (two hosts on one switch) to 10 s (past any sane timeout), in
/// steps of 1-2.5-5 so that every decade has three buckets.
const RTT_BUCKETS: [f64; 17] = [
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0, 2.5,
    5.0, 10.0,
];

/// The content type of the text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One target's counters and histogram, looked up once. Its gauges are looked up by label
/// for each probe, as their `address` label follows the target's address.
struct Watched {
    name: Name,
    rtt: Histogram,
    replies: IntCounter,
    timeouts: IntCounter,
    errors: IntCounter,
    duplicates: IntCounter,
    late: IntCounter,
    /// The address the target's gauges are labelled with, once it has been probed.
    address: Mutex<Option<String>>,
    windows: Mutex<Windows>,
}

/// What the statistics record of a target.
#[derive(Debug, Clone, Copy)]
enum Event {
    Probe(Sample),
    Duplicate,
    Late,
}

impl Event {
    fn apply(self, stats: &mut TargetStats, at: i64) {
        match self {
            Event::Probe(sample) => stats.record(at, sample),
            Event::Duplicate => stats.duplicate(at),
            Event::Late => stats.late(at),
        }
    }
}

/// The most events kept for a target while the file is read back: at 10 probes a second,
/// an hour and more. Past it the target keeps only what it saw live.
const KEPT_MAX: usize = 40_000;

/// A target's windows. While the results file is read back at start (`meanwhile` is some),
/// what is recorded live is kept as well, to be recorded again, in order, into the windows
/// read back: the read delays neither the start nor the probes, and the windows still take
/// every probe in the order it was sent, which their rule for a clock going back needs.
struct Windows {
    stats: TargetStats,
    meanwhile: Option<Vec<(i64, Event)>>,
}

impl Windows {
    fn record(&mut self, at: i64, event: Event) {
        event.apply(&mut self.stats, at);
        if let Some(kept) = &mut self.meanwhile {
            if kept.len() < KEPT_MAX {
                kept.push((at, event));
            } else {
                self.meanwhile = None;
            }
        }
    }
}

pub struct Monitor {
    registry: Registry,
    targets: Vec<Watched>,
    up: IntGaugeVec,
    last_rtt: GaugeVec,
    last_reply: GaugeVec,
    ignored: IntCounter,
    write_errors: IntCounter,
    /// What the read-back of the results file found; none while it runs.
    refilled: Mutex<Option<Refilled>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere mid-update leaves counts that are still counts.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn register<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("each metric is registered once, under a name of its own");
    collector
}

impl Monitor {
    /// Series for `targets` (their NAMEs, in configured order), at zero, and their windows,
    /// empty. With `refilling`, the windows read back from the results file are to come
    /// (`refilled`).
    pub fn new(targets: &[Name], refilling: bool) -> Monitor {
        let registry = Registry::new();
        let rtt = register(
            &registry,
            prometheus::HistogramVec::new(
                HistogramOpts::new("latency_rtt_seconds", "Round-trip time of answered probes.")
                    .buckets(RTT_BUCKETS.to_vec()),
                &["target"],
            )
            .expect("valid histogram options"),
        );
        let probes = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "latency_probes_total",
                    "Probes ended, by result: reply, timeout, or an ICMP error.",
                ),
                &["target", "result"],
            )
            .expect("valid counter options"),
        );
        let duplicates = register(
            &registry,
            IntCounterVec::new(
                Opts::new("latency_duplicate_replies_total", "Replies to a probe already answered."),
                &["target"],
            )
            .expect("valid counter options"),
        );
        let late = register(
            &registry,
            IntCounterVec::new(
                Opts::new("latency_late_replies_total", "Replies that came after their probe's timeout."),
                &["target"],
            )
            .expect("valid counter options"),
        );
        let targets = targets
            .iter()
            .map(|name| {
                let label = [&**name];
                let result = |result: &str| probes.with_label_values(&[&**name, result]);
                Watched {
                    name: name.clone(),
                    rtt: rtt.with_label_values(&label),
                    replies: result("reply"),
                    timeouts: result("timeout"),
                    errors: result("error"),
                    duplicates: duplicates.with_label_values(&label),
                    late: late.with_label_values(&label),
                    address: Mutex::new(None),
                    windows: Mutex::new(Windows {
                        stats: TargetStats::new(),
                        meanwhile: refilling.then(Vec::new),
                    }),
                }
            })
            .collect();
        let gauge = |name: &str, help: &str| {
            register(
                &registry,
                GaugeVec::new(Opts::new(name, help), &["target", "address"]).expect("valid gauge options"),
            )
        };
        let last_rtt =
            gauge("latency_last_rtt_seconds", "Round-trip time of the target's last answered probe.");
        let last_reply = gauge(
            "latency_last_reply_timestamp_seconds",
            "When the target's last answered probe was answered, in seconds since 1970.",
        );
        let up = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("latency_target_up", "1 when the target's last probe was answered, else 0."),
                &["target", "address"],
            )
            .expect("valid gauge options"),
        );
        let ignored = register(
            &registry,
            IntCounter::with_opts(Opts::new(
                "latency_ignored_packets_total",
                "ICMP packets addressed to this prober that answered no probe: corrupt, foreign payload, wrong source.",
            ))
            .expect("valid counter options"),
        );
        let write_errors = register(
            &registry,
            IntCounter::with_opts(Opts::new(
                "latency_results_write_errors_total",
                "Lines that could not be appended to the results file.",
            ))
            .expect("valid counter options"),
        );
        let build = register(
            &registry,
            IntGaugeVec::new(Opts::new("latency_build_info", "The running build; always 1."), &["version"])
                .expect("valid gauge options"),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(ProcessMetrics::new())).expect("the process metrics are registered once");
        let refilled = Mutex::new((!refilling).then(Refilled::default));
        Monitor { registry, targets, up, last_rtt, last_reply, ignored, write_errors, refilled }
    }

    /// The windows read back from the results file (`read`, in the targets' order), with
    /// what was recorded live meanwhile recorded into them again; or, when the file could not
    /// be read (`read` is none), the live windows alone from now on.
    pub fn refilled(&self, read: Option<(Vec<TargetStats>, Refilled)>) {
        let (mut read, refilled) = match read {
            Some((read, refilled)) => (read.into_iter(), refilled),
            None => (Vec::new().into_iter(), Refilled::default()),
        };
        for target in &self.targets {
            let mut windows = lock(&target.windows);
            // Too much came meanwhile, or nothing was read: the live windows stand.
            if let (Some(kept), Some(mut stats)) = (windows.meanwhile.take(), read.next()) {
                for (at, event) in kept {
                    event.apply(&mut stats, at);
                }
                windows.stats = stats;
            }
        }
        *lock(&self.refilled) = Some(refilled);
    }

    /// Counts an ended probe, answered at `now` if it was.
    pub fn ended(&self, measurement: &Measurement, now: SystemTime) {
        let Some(target) = self.targets.get(measurement.target) else { return };
        let sample = match (measurement.line.outcome, measurement.error) {
            (Outcome::Reply(rtt), _) => Sample::Reply(rtt),
            (Outcome::Timeout, Some(error)) => Sample::Error(error.label()),
            (Outcome::Timeout, None) => Sample::Timeout,
        };
        lock(&target.windows).record(measurement.line.sent.seconds(), Event::Probe(sample));
        let address = measurement.address.map_or_else(String::new, |address: Address| address.to_string());
        self.relabel(target, &address);
        let labels = [&*target.name, address.as_str()];
        match (measurement.line.outcome, measurement.error) {
            (Outcome::Reply(rtt), _) => {
                let seconds = rtt.as_secs_f64();
                target.replies.inc();
                target.rtt.observe(seconds);
                self.last_rtt.with_label_values(&labels).set(seconds);
                let since_epoch = now.duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64());
                self.last_reply.with_label_values(&labels).set(since_epoch);
            }
            (Outcome::Timeout, Some(_)) => target.errors.inc(),
            (Outcome::Timeout, None) => target.timeouts.inc(),
        }
        let answered = matches!(measurement.line.outcome, Outcome::Reply(_));
        self.up.with_label_values(&labels).set(answered.into());
    }

    /// A target's gauges follow its address: those of the address it had are removed, so a
    /// re-resolved target does not leave a stale series behind.
    fn relabel(&self, target: &Watched, address: &str) {
        let mut labelled = lock(&target.address);
        if labelled.as_deref() == Some(address) {
            return;
        }
        if let Some(old) = labelled.replace(address.to_string()) {
            let labels = [&*target.name, old.as_str()];
            // A gauge not yet set for the old address has no series to remove.
            let _ = self.up.remove_label_values(&labels);
            let _ = self.last_rtt.remove_label_values(&labels);
            let _ = self.last_reply.remove_label_values(&labels);
        }
    }

    /// A duplicate reply from target `target`, heard at `at` (local seconds).
    pub fn duplicate(&self, target: usize, at: i64) {
        if let Some(target) = self.targets.get(target) {
            target.duplicates.inc();
            lock(&target.windows).record(at, Event::Duplicate);
        }
    }

    /// A reply from target `target` after its probe's timeout, heard at `at` (local seconds).
    pub fn late(&self, target: usize, at: i64) {
        if let Some(target) = self.targets.get(target) {
            target.late.inc();
            lock(&target.windows).record(at, Event::Late);
        }
    }

    pub fn ignored(&self) {
        self.ignored.inc();
    }

    pub fn write_error(&self) {
        self.write_errors.inc();
    }

    /// The windows and chart of each target, or of the one named `only`, at `now` (local
    /// seconds).
    pub fn overview(&self, only: Option<&str>, now: i64) -> Overview {
        let targets = self
            .targets
            .iter()
            .filter(|target| only.is_none_or(|name| *target.name == *name))
            .map(|target| {
                let address = lock(&target.address).clone().filter(|address| !address.is_empty());
                let windows = lock(&target.windows);
                let stats = &windows.stats;
                TargetView {
                    name: target.name.clone(),
                    address,
                    windows: Window::ALL.iter().map(|&window| stats.summary(now, window)).collect(),
                    jitter: stats.smoothed_jitter(),
                    chart: stats.chart(now),
                }
            })
            .collect();
        Overview { targets, refill: *lock(&self.refilled) }
    }

    /// Every metric in the text exposition format (`CONTENT_TYPE`).
    pub fn exposition(&self) -> Vec<u8> {
        let mut text = Vec::with_capacity(4096 + 2048 * self.targets.len());
        // Writing into a Vec cannot fail, and the families gathered are well formed.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut text);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::{Line, LocalTime};
    use crate::packet::icmp::ErrorKind;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    const SENT: LocalTime = LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };

    fn monitor(names: &[&str]) -> Monitor {
        let names: Vec<Name> = names.iter().map(|name| name.parse().expect("a valid name")).collect();
        Monitor::new(&names, false)
    }

    fn measured(
        target: usize,
        outcome: Outcome,
        address: Option<[u8; 4]>,
        error: Option<ErrorKind>,
    ) -> Measurement {
        let address = address.map(|ip| Address::from(IpAddr::V4(Ipv4Addr::from(ip))));
        Measurement { target, line: Line { sent: SENT, target: None, outcome }, address, error }
    }

    fn text(monitor: &Monitor) -> String {
        String::from_utf8(monitor.exposition()).expect("UTF-8")
    }

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn each_result_is_counted_once_under_its_target_and_lost_probes_stay_out_of_the_histogram() {
        let monitor = monitor(&["a", "b"]);
        let at = UNIX_EPOCH + Duration::from_secs(1_754_981_813);
        monitor.ended(
            &measured(0, Outcome::Reply(Duration::from_micros(270)), Some([198, 51, 100, 2]), None),
            at,
        );
        monitor.ended(&measured(0, Outcome::Timeout, Some([198, 51, 100, 2]), None), at);
        monitor.ended(
            &measured(1, Outcome::Timeout, Some([198, 51, 100, 3]), Some(ErrorKind::Unreachable(1))),
            at,
        );
        monitor.duplicate(0, 0);
        monitor.late(1, 0);
        monitor.ignored();
        let text = text(&monitor);
        for (series, value) in [
            (r#"latency_probes_total{result="reply",target="a"}"#, "1"),
            (r#"latency_probes_total{result="timeout",target="a"}"#, "1"),
            (r#"latency_probes_total{result="error",target="a"}"#, "0"),
            (r#"latency_probes_total{result="error",target="b"}"#, "1"),
            (r#"latency_rtt_seconds_count{target="a"}"#, "1"),
            (r#"latency_rtt_seconds_bucket{target="a",le="0.00025"}"#, "0"),
            (r#"latency_rtt_seconds_bucket{target="a",le="0.0005"}"#, "1"),
            (r#"latency_rtt_seconds_count{target="b"}"#, "0"),
            (r#"latency_last_rtt_seconds{address="198.51.100.2",target="a"}"#, "0.00027"),
            (r#"latency_last_reply_timestamp_seconds{address="198.51.100.2",target="a"}"#, "1754981813"),
            (r#"latency_target_up{address="198.51.100.2",target="a"}"#, "0"),
            (r#"latency_target_up{address="198.51.100.3",target="b"}"#, "0"),
            (r#"latency_duplicate_replies_total{target="a"}"#, "1"),
            (r#"latency_late_replies_total{target="b"}"#, "1"),
            ("latency_ignored_packets_total", "1"),
            ("latency_results_write_errors_total", "0"),
            (r#"latency_build_info{version=""#, env!("CARGO_PKG_VERSION")),
        ] {
            let found = if series.ends_with('"') {
                text.lines()
                    .find(|line| line.starts_with(series))
                    .map(|line| &line[series.len()..series.len() + value.len()])
            } else {
                sample(&text, series)
            };
            assert_eq!(found, Some(value), "{series} in\n{text}");
        }
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(!text.contains("latency_last_rtt_seconds{address=\"198.51.100.3\""), "b was never answered");
    }

    #[test]
    fn a_new_address_replaces_the_old_ones_gauges() {
        let monitor = monitor(&["a"]);
        let now = SystemTime::now();
        monitor.ended(
            &measured(0, Outcome::Reply(Duration::from_millis(1)), Some([198, 51, 100, 2]), None),
            now,
        );
        monitor.ended(
            &measured(0, Outcome::Reply(Duration::from_millis(2)), Some([198, 51, 100, 9]), None),
            now,
        );
        let text = text(&monitor);
        assert!(!text.contains("198.51.100.2"), "{text}");
        assert_eq!(sample(&text, r#"latency_target_up{address="198.51.100.9",target="a"}"#), Some("1"));
        assert_eq!(
            sample(&text, r#"latency_last_rtt_seconds{address="198.51.100.9",target="a"}"#),
            Some("0.002")
        );
        monitor.ended(&measured(0, Outcome::Timeout, None, None), now);
        let text = super::tests::text(&monitor);
        assert_eq!(sample(&text, r#"latency_target_up{address="",target="a"}"#), Some("0"), "{text}");
        assert_eq!(sample(&text, r#"latency_probes_total{result="reply",target="a"}"#), Some("2"));
    }

    #[test]
    fn probes_made_while_the_file_is_read_back_are_kept_and_counted_after_it() {
        let names: Vec<Name> = vec!["a".parse().expect("a name"), "b".parse().expect("a name")];
        let monitor = Monitor::new(&names, true);
        let now = SystemTime::now();
        let sent = |minute: u8| LocalTime { minute, ..SENT };
        let live = |target, minute, outcome| Measurement {
            target,
            line: Line { sent: sent(minute), target: None, outcome },
            address: None,
            error: None,
        };
        monitor.ended(&live(0, 56, Outcome::Reply(Duration::from_millis(2))), now);
        monitor.ended(&live(1, 56, Outcome::Timeout), now);
        let at = sent(56).seconds();
        assert_eq!(monitor.overview(None, at).refill, None, "still reading");
        assert_eq!(monitor.overview(None, at).targets[0].windows[0].sent, 1, "live probes show at once");

        // The file held two older probes of a; b's read-back is missing (none came back).
        let mut a = TargetStats::new();
        a.record(sent(50).seconds(), Sample::Reply(Duration::from_millis(1)));
        a.record(sent(55).seconds(), Sample::Timeout);
        monitor.refilled(Some((vec![a], Refilled { used: 2, skipped: 0 })));
        let overview = monitor.overview(None, at);
        assert_eq!(overview.refill, Some(Refilled { used: 2, skipped: 0 }));
        let hour = &overview.targets[0].windows[1];
        assert_eq!((hour.sent, hour.replies, hour.timeouts), (3, 2, 1), "read back, then live: {hour:?}");
        let b = &overview.targets[1].windows[1];
        assert_eq!((b.sent, b.timeouts), (1, 1), "nothing read for b: its live windows stand");

        monitor.ended(&live(0, 57, Outcome::Reply(Duration::from_millis(3))), now);
        assert_eq!(monitor.overview(None, sent(57).seconds()).targets[0].windows[1].sent, 4, "recorded once");
    }

    #[test]
    fn a_file_that_cannot_be_read_back_leaves_the_live_windows() {
        let names: Vec<Name> = vec!["a".parse().expect("a name")];
        let monitor = Monitor::new(&names, true);
        monitor.ended(&measured(0, Outcome::Timeout, None, None), SystemTime::now());
        monitor.refilled(None);
        let overview = monitor.overview(None, SENT.seconds());
        assert_eq!(overview.refill, Some(Refilled::default()));
        assert_eq!(overview.targets[0].windows[0].timeouts, 1);
    }
}
