//! The running daemon: start-up checks in order, the prober and HTTP threads, signals,
//! systemd notifications, and a shutdown that leaves no torn line.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{self, Config, duration};
use crate::engine::{self, Identity};
use crate::http::server::{self, Context, ServerError};
use crate::line::Line;
use crate::net::linux::LinuxSocket;
use crate::net::{IcmpSocket, NetError};
use crate::notify::{self, Liveness, Notifier};
use crate::packet::Token;
use crate::prober::{Heartbeat, Prober, ProberHandle, Settings};
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
                write!(f, "target {host}: {reason}; check the name, or give an IPv4 address")
            }
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

/// The IPv4 address `host` stands for.
pub fn resolve(host: &str) -> Result<Ipv4Addr, DaemonError> {
    let error = |reason: String| DaemonError::Resolve { host: host.to_string(), reason };
    if let Ok(address) = host.parse::<Ipv4Addr>() {
        return Ok(address);
    }
    let addresses: Vec<IpAddr> = (host, 0)
        .to_socket_addrs()
        .map_err(|err| error(format!("cannot resolve: {err}")))?
        .map(|address| address.ip())
        .collect();
    let address = addresses
        .iter()
        .find_map(|address| match address {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            error(format!("has no IPv4 address (found {addresses:?}); IPv6 targets are not supported yet"))
        })?;
    match config::unprobeable(address) {
        Some(problem) => Err(error(format!("resolves to {address}, which {problem}"))),
        None => Ok(address),
    }
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
    let target = config.target.as_deref().map(resolve).transpose()?;
    let identity = identity()?;
    let socket = LinuxSocket::open()?;
    let http = server::bind(config.listen)?;
    let notify_socket = std::env::var("NOTIFY_SOCKET").unwrap_or_default();
    let notifier = Notifier::from_env()
        .map_err(|err| DaemonError::Setup { what: "use NOTIFY_SOCKET", value: notify_socket, err })?
        .map(Arc::new);
    // Last of the checks, as it is the one that creates something: a start that fails for
    // want of a socket or a port leaves no empty results file or directory behind.
    let store = Arc::new(Store::open(&config.results)?);
    // Installed once start-up can no longer fail, before the threads it must outlive.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|err| DaemonError::Setup {
        what: "install signal handlers",
        value: String::new(),
        err,
    })?;
    raise_open_file_limit();

    let target_text = match (&config.target, target) {
        (Some(host), Some(address)) if host != &address.to_string() => format!("{host} ({address})"),
        (_, Some(address)) => address.to_string(),
        _ => "none".into(),
    };
    info!(
        "latency {VERSION} starting: target {target_text}, interval {}, timeout {}, {} ICMP socket, \
         listening on http://{}, results in {}",
        duration::format(config.interval),
        duration::format(config.timeout),
        socket.kind(),
        // The bound address: with port 0 the kernel picked the port.
        http.server_addr(),
        store.path().display()
    );

    let watchdog_every = watchdog_interval();
    let heartbeat = Arc::new(Heartbeat::default());
    let (prober, prober_thread) = match target {
        Some(target) => {
            let settings = Settings {
                engine: engine::Settings {
                    target,
                    interval: config.interval,
                    timeout: config.timeout,
                    identity,
                },
                max_wait: watchdog_every.map_or(MAX_WAIT, |every| (every / 2).min(MAX_WAIT)),
            };
            let status = status_reporter(notifier.clone());
            let (prober, handle) = Prober::new(socket, settings, store.clone(), heartbeat.clone(), status);
            (Some(handle), Some(spawn_prober(prober)?))
        }
        None => {
            warn!(
                "no target configured: set LATENCY_TARGET or pass --target; /latency answers 503 until then"
            );
            (None, None)
        }
    };
    let serving = server::start(http, Context { prober: prober.clone(), store: store.clone() })?;
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

    let resolving = Arc::new(AtomicBool::new(false));
    let mut stop_signal = "end of signal stream";
    for signal in signals.forever() {
        if signal == SIGHUP {
            reload(&config, &store, prober.as_ref(), &resolving);
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

/// SIGHUP: reopen the results file (after rotation) and resolve the target name again. The
/// lookup runs on a thread of its own, so that a slow resolver cannot hold up a SIGTERM.
fn reload(config: &Config, store: &Store, prober: Option<&ProberHandle>, resolving: &Arc<AtomicBool>) {
    match store.reopen() {
        Ok(()) => info!("SIGHUP: reopened {}", store.path().display()),
        Err(err) => error!("SIGHUP: {err}; lines keep going to the file opened before"),
    }
    let (Some(host), Some(prober)) = (config.target.clone(), prober.cloned()) else { return };
    if resolving.swap(true, Ordering::AcqRel) {
        return warn!("SIGHUP: the previous lookup of {host} is still running; not starting another");
    }
    let done = resolving.clone();
    let lookup = thread::Builder::new().name("resolve".into()).spawn(move || {
        match resolve(&host) {
            Ok(address) => {
                if prober.retarget(address).is_err() {
                    debug!("the prober stopped before {host} was resolved");
                }
            }
            Err(err) => error!("SIGHUP: {err}; probing the address resolved before"),
        }
        done.store(false, Ordering::Release);
    });
    if let Err(err) = lookup {
        resolving.store(false, Ordering::Release);
        error!("SIGHUP: start a thread to resolve the target: {err}");
    }
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
