//! The running daemon: start-up checks in order, the prober and HTTP threads, signals,
//! systemd notifications, and a shutdown that leaves no torn line.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, error, info, warn};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::clock;
use crate::config::{self, Config, Host, duration};
use crate::engine::{self, Address, Identity, TargetSettings};
use crate::http::server::{self, Context, ServerError};
use crate::line::{Form, Line, LocalTime, Name};
use crate::monitor::Monitor;
use crate::net::NetError;
use crate::net::linux::LinuxSocket;
use crate::notify::{self, Liveness, Notifier};
use crate::packet::{Family, Token};
use crate::prober::{Heartbeat, Prober, ProberHandle, Settings};
use crate::resolve::{self, LogEvent, Resolution};
use crate::stats::{self, Refilled, TargetStats, Window};
use crate::store::{Store, StoreError};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// systemd's STATUS= is for people: at most one update a second, whatever the probe rate.
const STATUS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub enum DaemonError {
    Resolve {
        host: String,
        reason: String,
    },
    /// A link-local target's interface does not exist.
    Interface {
        target: String,
        zone: String,
        errno: nix::errno::Errno,
    },
    Store(StoreError),
    Net(NetError),
    Server(ServerError),
    /// An operation on `value` (possibly empty) failed.
    Setup {
        what: &'static str,
        value: String,
        err: io::Error,
    },
    ProberFailed,
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Resolve { host, reason } => {
                write!(f, "target {host}: {reason}; check the name, or give an IP address")
            }
            DaemonError::Interface { target, zone, errno } => write!(
                f,
                "target {target}: no interface {zone} here ({}); name one that `ip link` lists",
                errno.desc()
            ),
            DaemonError::Store(err) => err.fmt(f),
            DaemonError::Net(err) => err.fmt(f),
            DaemonError::Server(err) => err.fmt(f),
            DaemonError::Setup { what, value, err } if value.is_empty() => write!(f, "{what}: {err}"),
            DaemonError::Setup { what, value, err } => write!(f, "{what} {value}: {err}"),
            DaemonError::ProberFailed => f.write_str("the prober thread failed; see the log above"),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<StoreError> for DaemonError {
    fn from(err: StoreError) -> Self {
        DaemonError::Store(err)
    }
}

impl From<NetError> for DaemonError {
    fn from(err: NetError) -> Self {
        DaemonError::Net(err)
    }
}

impl From<ServerError> for DaemonError {
    fn from(err: ServerError) -> Self {
        DaemonError::Server(err)
    }
}

/// What the resolver says of `name`'s addresses.
fn lookup(name: &str) -> resolve::Lookup {
    (name, 0)
        .to_socket_addrs()
        .map(|found| found.map(|address| address.ip()).collect())
        .map_err(|err| err.to_string())
}

/// A target given as a host name: its index among the targets, the name, and what its
/// lookups have given so far.
struct Named {
    index: usize,
    host: String,
    resolution: Resolution,
}

/// How long a start with several targets waits for its host names to be looked up (all at
/// once); a name with no answer by then starts without an address, and the resolver thread
/// asks again at once.
const START_LOOKUPS_WAIT: Duration = Duration::from_secs(5);

/// The targets as the engine takes them, with the addresses they have at start, and the
/// host names among them.
fn resolve_at_start(config: &Config) -> Result<(Vec<TargetSettings>, Vec<Named>), DaemonError> {
    let single = config.targets.len() == 1;
    let mut lookups = lookup_all(config, (!single).then_some(START_LOOKUPS_WAIT))?;
    let mut targets = Vec::new();
    let mut names = Vec::new();
    for (index, target) in config.targets.iter().enumerate() {
        let address = match &target.host {
            Host::Ip(ip) => Some(Address::from(*ip)),
            Host::Scoped { address, zone } => match nix::net::if_::if_nametoindex(zone.as_str()) {
                Ok(scope_id) => Some(Address { ip: IpAddr::V6(*address), scope_id }),
                Err(errno) => {
                    let err =
                        DaemonError::Interface { target: target.host.to_string(), zone: zone.clone(), errno };
                    // Among several, one bad target must not stop the others being watched.
                    if single {
                        return Err(err);
                    }
                    warn!("{err}; its probes are recorded as timeout until the daemon is restarted");
                    None
                }
            },
            Host::Name(name) => {
                let mut resolution = Resolution::default();
                let address = match lookups[index].take() {
                    Some(found) => match resolution.update(name, config.family, found) {
                        // One target that cannot be resolved is a start-up failure, as it
                        // always was.
                        (_, Some(LogEvent::Failed { failure, .. })) if single => {
                            return Err(DaemonError::Resolve {
                                host: name.clone(),
                                reason: failure.to_string(),
                            });
                        }
                        (address, event) => {
                            if let Some(event) = event {
                                log::log!(event.level(), "{event}");
                            }
                            address
                        }
                    },
                    None => {
                        warn!(
                            "{name}: no answer from the resolver within {}; its probes are recorded as timeout \
                             until it resolves",
                            duration::format(START_LOOKUPS_WAIT)
                        );
                        None
                    }
                };
                names.push(Named { index, host: name.clone(), resolution });
                address.map(Address::from)
            }
        };
        targets.push(TargetSettings { name: target.name.clone(), address });
    }
    Ok((targets, names))
}

/// What the resolver said of each target's host name (by target index), each looked up on a
/// thread of its own, so that a resolver that does not answer costs one wait, not one per
/// name. With `within`, a lookup not back by then is `None`, left to finish on its own.
fn lookup_all(
    config: &Config,
    within: Option<Duration>,
) -> Result<Vec<Option<resolve::Lookup>>, DaemonError> {
    let (found, answers) = mpsc::channel();
    for (index, target) in config.targets.iter().enumerate() {
        if let Host::Name(name) = &target.host {
            let (found, host) = (found.clone(), name.clone());
            thread::Builder::new()
                .name("lookup".into())
                .spawn(move || {
                    // The start may have stopped waiting; the answer then goes nowhere.
                    let _ = found.send((index, lookup(&host)));
                })
                .map_err(|err| DaemonError::Setup {
                    what: "start a thread to look up",
                    value: name.clone(),
                    err,
                })?;
        }
    }
    drop(found);
    let deadline = within.map(|within| Instant::now() + within);
    let mut lookups: Vec<Option<resolve::Lookup>> = config.targets.iter().map(|_| None).collect();
    loop {
        let answer = match deadline {
            Some(deadline) => answers.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok(),
            None => answers.recv().ok(),
        };
        let Some((index, lookup)) = answer else { break };
        lookups[index] = Some(lookup);
    }
    Ok(lookups)
}

/// Random identifier and payload token, so that two daemons, or a daemon and `ping`, never
/// take each other's replies.
fn identity() -> Result<Identity, DaemonError> {
    let mut random = [0u8; 10];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut random))
        .map_err(|err| DaemonError::Setup { what: "read", value: "/dev/urandom".into(), err })?;
    let [a, b, token @ ..] = random;
    Ok(Identity { identifier: u16::from_be_bytes([a, b]), token: Token(token) })
}

/// The longest the prober loop sleeps when no watchdog asks for less.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Lets the process hold as many connections as its hard limit allows: the soft limit is
/// often 1024, and each HTTP connection takes two descriptors.
fn raise_open_file_limit() {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                warn!("raise the open-file limit from {soft} to {hard}: {err}");
            }
        }
        Ok(_) => {}
        Err(err) => warn!("read the open-file limit: {err}"),
    }
}

/// Starts everything, runs until SIGTERM or SIGINT, and stops within a second.
pub fn run(config: Config) -> Result<(), DaemonError> {
    let (targets, names) = resolve_at_start(&config)?;
    let identity = identity()?;
    let (socket, opened) = LinuxSocket::open(&[Family::V4, Family::V6])?;
    let mut sockets = Vec::new();
    for (family, outcome) in opened {
        match outcome {
            Ok(kind) => sockets.push(format!("{kind} {} socket", family.protocol())),
            // Needed by a target now: a start-up failure. Else only a name that resolves to
            // that family later would miss it, and its sends say so then.
            Err(err) if targets.iter().any(|t| t.address.is_some_and(|a| Family::of(a.ip) == family)) => {
                return Err(err.into());
            }
            Err(err) => debug!("{err}"),
        }
    }
    let http = server::bind(config.listen)?;
    let notify_socket = std::env::var("NOTIFY_SOCKET").unwrap_or_default();
    let notifier = Notifier::from_env()
        .map_err(|err| DaemonError::Setup { what: "use NOTIFY_SOCKET", value: notify_socket, err })?
        .map(Arc::new);
    // Last of the checks, as it is the one that creates something: a start that fails for
    // want of a socket or a port leaves no empty results file or directory behind.
    let form = if targets.len() > 1 { Form::Named } else { Form::Seed };
    let store = Arc::new(Store::open(&config.results, form)?);
    // Installed once start-up can no longer fail, before the threads it must outlive.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|err| DaemonError::Setup {
        what: "install signal handlers",
        value: String::new(),
        err,
    })?;
    raise_open_file_limit();

    let target_text = describe_targets(&config, &targets);
    info!(
        "latency {VERSION} starting: {target_text}, interval {}, timeout {}, {}, listening on http://{}, \
         results in {}",
        duration::format(config.interval),
        duration::format(config.timeout),
        if sockets.is_empty() { "no ICMP socket".to_string() } else { sockets.join(", ") },
        // The bound address: with port 0 the kernel picked the port.
        http.server_addr(),
        store.path().display()
    );

    let watchdog_every = watchdog_interval();
    let heartbeat = Arc::new(Heartbeat::default());
    let target_names: Vec<Name> = targets.iter().map(|target| target.name.clone()).collect();
    let monitor = Arc::new(refilled_monitor(&store, &target_names));
    let (prober, prober_thread) = if targets.is_empty() {
        warn!("no target configured: set LATENCY_TARGET or pass --target; /latency answers 503 until then");
        (None, None)
    } else {
        let settings = Settings {
            engine: engine::Settings {
                targets,
                interval: config.interval,
                timeout: config.timeout,
                identity,
            },
            max_wait: watchdog_every.map_or(MAX_WAIT, |every| (every / 2).min(MAX_WAIT)),
        };
        let status = status_reporter(notifier.clone());
        let (prober, handle) =
            Prober::new(socket, settings, store.clone(), monitor.clone(), heartbeat.clone(), status);
        (Some(handle), Some(spawn_prober(prober)?))
    };
    let resolver = match (&prober, names.is_empty()) {
        (Some(prober), false) => {
            Some(start_resolver(names, config.family, config.resolve_every, prober.clone())?)
        }
        _ => None,
    };
    let context = Context { prober: prober.clone(), targets: target_names, store: store.clone(), monitor };
    let serving = server::start(http, context)?;
    if let Some(notifier) = &notifier {
        notifier.send(&format!(
            "READY=1\nSTATUS=probing {target_text} every {}",
            duration::format(config.interval)
        ));
    }
    let watchdog = match (&notifier, watchdog_every) {
        (Some(notifier), Some(every)) => {
            Some(start_watchdog(notifier.clone(), every, prober_thread.as_ref().map(|_| heartbeat.clone()))?)
        }
        _ => None,
    };

    let mut stop_signal = "end of signal stream";
    for signal in signals.forever() {
        if signal == SIGHUP {
            reload(&store, resolver.as_ref());
            continue;
        }
        stop_signal = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
        break;
    }
    info!("stopping on {stop_signal}");
    if let Some(notifier) = &notifier {
        notifier.send("STOPPING=1");
    }
    if let Some(prober) = &prober {
        prober.stop();
    }
    // The resolver is not waited for: a lookup in progress must not hold up the stop.
    drop(resolver);
    let prober_ended_well = prober_thread.is_none_or(|thread| join_within(thread, PROBER_STOP_WAIT));
    // The callers still waiting for a line are being told the daemon is stopping (unless the
    // prober is stuck with their lines, when nothing will come).
    if prober_ended_well {
        serving.settle(Instant::now() + ANSWERS_STOP_WAIT);
    }
    if let Some(watchdog) = watchdog {
        watchdog.stop();
    }
    if !prober_ended_well {
        return Err(DaemonError::ProberFailed);
    }
    info!("stopped");
    Ok(())
}

/// The targets' metrics, with their windows as the results file's last 24 hours left them,
/// so that a restart does not blank them. A file that cannot be read leaves them empty.
fn refilled_monitor(store: &Store, names: &[Name]) -> Monitor {
    let mut stats: Vec<TargetStats> = names.iter().map(|_| TargetStats::new()).collect();
    let now = clock::local(SystemTime::now()).seconds();
    let from = LocalTime::from_seconds(now - Window::Day.seconds());
    let read = store.since(from).and_then(|excerpt| {
        stats::refill_from(&mut stats, names, excerpt.file.take(excerpt.len))
            .map_err(|err| StoreError::Read { path: store.path().to_path_buf(), err })
    });
    let refilled = match read {
        Ok(refilled) => {
            if refilled.used + refilled.skipped > 0 {
                info!(
                    "statistics refilled from the last 24 hours of {}: {} lines, {} skipped (another form or target)",
                    store.path().display(),
                    refilled.used,
                    refilled.skipped
                );
            }
            refilled
        }
        Err(err) => {
            warn!("{err}; the statistics start empty");
            stats.iter_mut().for_each(|target| *target = TargetStats::new());
            Refilled::default()
        }
    };
    Monitor::new(names, stats, refilled)
}

/// At most this many targets are named in the start line and systemd's status: a
/// notification of 4096 bytes or more is dropped by systemd whole, READY=1 with it.
const TARGETS_DESCRIBED: usize = 8;

/// "target HOST (ADDRESS)" for one target, "N targets: a (ADDRESS), b (...), … and M more"
/// for several.
fn describe_targets(config: &Config, targets: &[TargetSettings]) -> String {
    let describe = |(target, settings): (&config::Target, &TargetSettings)| {
        let host = target.host.to_string();
        let named = if targets.len() > 1 && *target.name != *host {
            format!("{}=", target.name)
        } else {
            String::new()
        };
        match settings.address {
            Some(address) if address.to_string() != host => format!("{named}{host} ({address})"),
            Some(_) => format!("{named}{host}"),
            None => format!("{named}{host} (unresolved)"),
        }
    };
    let described: Vec<String> =
        config.targets.iter().zip(targets).take(TARGETS_DESCRIBED).map(describe).collect();
    match targets.len() {
        0 => "target none".into(),
        1 => format!("target {}", described[0]),
        count if count <= TARGETS_DESCRIBED => format!("{count} targets: {}", described.join(", ")),
        count => {
            format!("{count} targets: {}, … and {} more", described.join(", "), count - TARGETS_DESCRIBED)
        }
    }
}

/// Asks the resolver thread to look the names up again now.
struct Resolver(mpsc::SyncSender<()>);

/// Resolves the targets' host names every `every`, and when asked (SIGHUP), on a thread of its
/// own so that a slow resolver never holds up the prober or a stop; a changed address goes to
/// the prober. It ends when the daemon drops its `Resolver`.
fn start_resolver(
    mut names: Vec<Named>,
    family: config::Family,
    every: Duration,
    prober: ProberHandle,
) -> Result<Resolver, DaemonError> {
    let unresolved = names.iter().any(|named| named.resolution.address().is_none());
    // One request waits at most: SIGHUPs during a lookup ask for one more, not one each.
    let (again, asked) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name("resolver".into())
        .spawn(move || {
            // A name the start could not resolve is asked for again at once.
            let mut wait = if unresolved { Duration::ZERO } else { every };
            while let Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) = asked.recv_timeout(wait) {
                wait = every;
                for Named { index, host, resolution } in &mut names {
                    let before = resolution.clone();
                    let (address, event) = resolution.update(host, family, lookup(host));
                    if let Some(event) = event {
                        log::log!(event.level(), "{event}");
                    }
                    if *resolution != before && prober.retarget(*index, address.map(Address::from)).is_err() {
                        return debug!("the prober stopped; the resolver ends");
                    }
                }
            }
        })
        .map_err(|err| DaemonError::Setup { what: "start the resolver thread", value: String::new(), err })?;
    Ok(Resolver(again))
}

/// SIGHUP: reopen the results file (after rotation) and resolve the host names again.
fn reload(store: &Store, resolver: Option<&Resolver>) {
    match store.reopen() {
        Ok(()) => info!("SIGHUP: reopened {}", store.path().display()),
        Err(err) => error!("SIGHUP: {err}; lines keep going to the file opened before"),
    }
    if let Some(Resolver(again)) = resolver {
        // Full: a lookup is already asked for, which this one joins.
        let _ = again.try_send(());
    }
}

/// How long a stop waits for the prober to finish: a write blocked on a hung filesystem must
/// not hold the process past the second that users and systemd are promised.
const PROBER_STOP_WAIT: Duration = Duration::from_millis(800);
/// How long a stop then waits for `/latency` callers to be answered; with the prober's wait,
/// still within the second.
const ANSWERS_STOP_WAIT: Duration = Duration::from_millis(150);

/// Whether the prober thread ended well within `wait`.
fn join_within(thread: JoinHandle<bool>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            error!(
                "the prober did not stop within {} (blocked writing the results file?); exiting without it",
                duration::format(wait)
            );
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
    thread.join().unwrap_or(false)
}

/// Runs the prober on its own thread. If it panics, the daemon stops (and, under systemd,
/// `Restart=on-failure` starts a fresh one) instead of serving 503 with nothing probing.
fn spawn_prober(prober: Prober<LinuxSocket>) -> Result<JoinHandle<bool>, DaemonError> {
    thread::Builder::new()
        .name("prober".into())
        .spawn(move || {
            let ended_well = panic::catch_unwind(AssertUnwindSafe(|| prober.run())).is_ok();
            if !ended_well {
                error!("the prober thread panicked; stopping");
                if let Err(err) = signal_hook::low_level::raise(SIGTERM) {
                    error!("raise SIGTERM: {err}");
                }
            }
            ended_well
        })
        .map_err(|err| DaemonError::Setup { what: "start the prober thread", value: String::new(), err })
}

fn status_reporter(notifier: Option<Arc<Notifier>>) -> Box<dyn FnMut(&Line) + Send> {
    let mut last_sent: Option<Instant> = None;
    Box::new(move |line| {
        let Some(notifier) = &notifier else { return };
        if last_sent.is_some_and(|at| at.elapsed() < STATUS_EVERY) {
            return;
        }
        last_sent = Some(Instant::now());
        notifier.send(&format!("STATUS=last: {line}"));
    })
}

/// The thread that pings systemd's watchdog.
struct Watchdog {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Watchdog {
    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// How often systemd wants a watchdog ping, if it does.
fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    notify::watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// Pings systemd's watchdog `every` so often, only while the prober loop keeps turning (or
/// always when there is no prober).
fn start_watchdog(
    notifier: Arc<Notifier>,
    every: Duration,
    heartbeat: Option<Arc<Heartbeat>>,
) -> Result<Watchdog, DaemonError> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let mut liveness = Liveness::default();
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if liveness.turned(heartbeat.as_ref().map(|h| h.beats())) {
                    notifier.send("WATCHDOG=1");
                } else {
                    error!(
                        "the prober has not run for {}; withholding the watchdog ping",
                        duration::format(every)
                    );
                }
            }
        })
        .map_err(|err| DaemonError::Setup { what: "start the watchdog thread", value: String::new(), err })?;
    Ok(Watchdog { stop, thread })
}
