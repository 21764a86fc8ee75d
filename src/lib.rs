//! `latency`: measures ICMP round-trip time to one target or several, keeps every measurement
//! in a text file and serves them, their statistics and Prometheus metrics over HTTP. Pure
//! logic lives in small modules with their tests; the operating system is reached only through
//! `net`, `clock`, `privilege`, `store`, `notify`, `http::server`, `monitor::process` and
//! `doctor::system`.
#![deny(unsafe_code)]

/// Local time as calendar fields, and the timezone's offset at a local time (the one
/// `localtime_r` call and the one `mktime` call).
pub mod clock;
/// Flags and environment → validated `Config`.
pub mod config;
/// Threads, signals and shutdown: the running daemon.
pub mod daemon;
/// `latency doctor`: each check's verdict and fix, and the I/O that gathers the facts.
pub mod doctor;
/// The prober's decisions without I/O: schedule, shared probes, matching, expiry.
pub mod engine;
/// HTTP routing decisions, and the tiny_http server around them.
pub mod http;
/// The results line, in the seed form or naming its target, formatted and parsed; target names.
pub mod line;
/// Log format for a terminal or for journald.
pub mod logging;
/// What the prober saw, for the operator: Prometheus metrics and each target's statistics
/// windows, shared by the prober and HTTP.
pub mod monitor;
/// The ICMP socket behind a trait, with the Linux implementation.
pub mod net;
/// systemd notifications: READY, WATCHDOG, STATUS, STOPPING.
pub mod notify;
/// ICMP and ICMPv6 echo packets: encode, parse, checksum, the IPv4 and IPv6 headers.
pub mod packet;
/// What an operator reads: statistics as text or JSON, and the page with a chart per target.
pub mod page;
/// Giving up every capability once the sockets are open.
pub mod privilege;
/// The probing thread: a thin loop that carries out the engine's decisions on a real socket.
pub mod prober;
/// A results line as a JSON record, and NDJSON read from the file.
pub mod record;
/// Which of a host name's addresses to probe, and what each new lookup is worth logging.
pub mod resolve;
/// When the next scheduled probe is due (fixed rate); never sleeps.
pub mod schedule;
/// Per-target figures over 1 m, 1 h and 24 h, and the day's chart: bounded memory, pure.
pub mod stats;
/// The append-only results file: repair, append, reopen, snapshots and tails, of one target or all.
pub mod store;
/// At most a burst of like log lines per window, and a count of the rest.
pub mod throttle;
/// Probes in flight keyed by sequence: replies, duplicates, late replies, expiry.
pub mod tracker;
