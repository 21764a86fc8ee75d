//! The standard `process_*` metrics, read from `/proc/self` alone. The unit's `ProcSubset=pid`
//! hides the rest of `/proc`, `/proc/stat` with it, where the usual collectors (the
//! `prometheus` crate's among them) read the boot time that `process_start_time_seconds`
//! needs; here it comes from `CLOCK_BOOTTIME` instead. CPU time is given to the tick, not
//! rounded down to whole seconds.

use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::resource::{Resource, getrlimit};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::{SysconfVar, sysconf};
use prometheus::core::{Collector, Desc};
use prometheus::{Counter, Gauge, IntGauge, Opts, proto};

/// The fields of `/proc/self/stat` the metrics need.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    /// User and system CPU time, in clock ticks.
    cpu_ticks: u64,
    threads: i64,
    /// When the process started, in clock ticks after boot.
    start_ticks: u64,
    virtual_bytes: i64,
    resident_pages: i64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may hold spaces
/// and parentheses itself, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // Field N of proc(5) is fields[N - 3].
    let field = |n: usize| fields.get(n - 3).copied();
    let number = |n: usize| field(n)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: number(14)? + number(15)?,
        threads: field(20)?.parse().ok()?,
        start_ticks: number(22)?,
        virtual_bytes: field(23)?.parse().ok()?,
        resident_pages: field(24)?.parse().ok()?,
    })
}

pub struct ProcessMetrics {
    descs: Vec<Desc>,
    cpu: Counter,
    open_fds: IntGauge,
    max_fds: IntGauge,
    virtual_bytes: IntGauge,
    resident_bytes: IntGauge,
    start_time: Gauge,
    threads: IntGauge,
    ticks_per_second: f64,
    page_size: i64,
}

impl ProcessMetrics {
    pub fn new() -> ProcessMetrics {
        let gauge =
            |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help)).expect("valid gauge options");
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ))
        .expect("valid counter options");
        let start_time = Gauge::with_opts(Opts::new(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        ))
        .expect("valid gauge options");
        let metrics = ProcessMetrics {
            descs: Vec::new(),
            cpu,
            open_fds: gauge("process_open_fds", "Number of open file descriptors."),
            max_fds: gauge("process_max_fds", "Maximum number of open file descriptors."),
            virtual_bytes: gauge("process_virtual_memory_bytes", "Virtual memory size in bytes."),
            resident_bytes: gauge("process_resident_memory_bytes", "Resident memory size in bytes."),
            start_time,
            threads: gauge("process_threads", "Number of OS threads in the process."),
            ticks_per_second: sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64,
            page_size: sysconf(SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096) as i64,
        };
        let descs = metrics.collectors().iter().flat_map(|c| c.desc()).cloned().collect();
        metrics.set_start_time();
        ProcessMetrics { descs, ..metrics }
    }

    fn collectors(&self) -> [&dyn Collector; 7] {
        [
            &self.cpu,
            &self.open_fds,
            &self.max_fds,
            &self.virtual_bytes,
            &self.resident_bytes,
            &self.start_time,
            &self.threads,
        ]
    }

    /// Boot time is now less the time since boot; the start is that plus the start's ticks.
    fn set_start_time(&self) {
        let (Ok(since_boot), Some(stat)) = (clock_gettime(ClockId::CLOCK_BOOTTIME), read_stat()) else {
            return;
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64());
        let since_boot = since_boot.tv_sec() as f64 + since_boot.tv_nsec() as f64 * 1e-9;
        let start = now - since_boot + stat.start_ticks as f64 / self.ticks_per_second;
        // To the second, as other exporters give it: the two clocks are read a moment apart.
        self.start_time.set(start.round());
    }
}

fn read_stat() -> Option<Stat> {
    parse_stat(&fs::read_to_string("/proc/self/stat").ok()?)
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    /// Reads the process's figures now; one that cannot be read keeps its last value.
    fn collect(&self) -> Vec<proto::MetricFamily> {
        if let Some(stat) = read_stat() {
            let cpu = stat.cpu_ticks as f64 / self.ticks_per_second;
            // Two scrapes at once may both add: never let the counter go back.
            self.cpu.inc_by((cpu - self.cpu.get()).max(0.0));
            self.threads.set(stat.threads);
            self.virtual_bytes.set(stat.virtual_bytes);
            self.resident_bytes.set(stat.resident_pages * self.page_size);
        }
        if let Ok(fds) = fs::read_dir("/proc/self/fd") {
            // One of them is the directory being read.
            self.open_fds.set(fds.count() as i64 - 1);
        }
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            self.max_fds.set(i64::try_from(soft).unwrap_or(i64::MAX));
        }
        self.collectors().iter().flat_map(|c| c.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let text = "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 300 0 0 0 150 75 0 0 20 0 7 0 \
                    123456 9175040 840 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                cpu_ticks: 225,
                threads: 7,
                start_ticks: 123_456,
                virtual_bytes: 9_175_040,
                resident_pages: 840
            })
        );
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn the_process_is_described_as_it_runs() {
        let metrics = ProcessMetrics::new();
        let families = metrics.collect();
        let value = |name: &str| {
            let family = families.iter().find(|f| f.name() == name).unwrap_or_else(|| panic!("{name}"));
            let metric = &family.get_metric()[0];
            metric.get_gauge().get_value().max(metric.get_counter().get_value())
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(now - started < 3600.0 && started <= now + 1.0, "started {started}, now {now}");
        assert!(value("process_resident_memory_bytes") > 100_000.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_threads") >= 1.0);
        assert_eq!(metrics.desc().len(), 7);
    }
}
