//! The running daemon: start-up checks in order, the prober and HTTP threads, signals,
//! systemd notifications, and a shutdown that leaves no torn line.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{error, info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{Config, duration};
use crate::http::server::{self, Context, ServerError};
use crate::line::Line;
use crate::net::linux::LinuxSocket;
use crate::net::{IcmpSocket, NetError};
use crate::notify::{self, Liveness, Notifier};
use crate::packet::Token;
use crate::prober::{Heartbeat, Identity, Prober, ProberHandle, Settings};
use crate::store::{Repair, Store, StoreError};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// systemd's STATUS= is for people: at most one update a second, whatever the probe rate.
const STATUS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub enum DaemonError {
    Resolve { host: String, reason: String },
    Store(StoreError),
    Net(NetError),
    Server(ServerError),
    Setup { what: &'static str, err: io::Error },
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
            DaemonError::Setup { what, err } => write!(f, "{what}: {err}"),
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
    addresses
        .iter()
        .find_map(|address| match address {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            error(format!("has no IPv4 address (found {addresses:?}); IPv6 targets are not supported yet"))
        })
}

/// Random identifier and payload token, so that two daemons, or a daemon and `ping`, never
/// take each other's replies.
fn identity() -> Result<Identity, DaemonError> {
    let mut random = [0u8; 10];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut random))
        .map_err(|err| DaemonError::Setup { what: "read /dev/urandom", err })?;
    let [a, b, token @ ..] = random;
    Ok(Identity { identifier: u16::from_be_bytes([a, b]), token: Token(token) })
}

fn log_repair(store: &Store, repair: Option<Repair>) {
    if let Some(repair) = repair {
        warn!(
            "{}: cut {} bytes of a torn last line left by an earlier crash",
            store.path().display(),
            repair.cut_bytes
        );
    }
}

/// Starts everything, runs until SIGTERM or SIGINT, and stops within a second.
pub fn run(config: Config) -> Result<(), DaemonError> {
    // Before any thread starts, so that every thread leaves these signals to the iterator.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|err| DaemonError::Setup { what: "install signal handlers", err })?;
    let target = config.target.as_deref().map(resolve).transpose()?;
    let (store, repair) = Store::open(&config.results)?;
    let store = Arc::new(store);
    log_repair(&store, repair);
    let socket = LinuxSocket::open()?;
    let http = server::bind(config.listen)?;
    let notifier = Notifier::from_env()
        .map_err(|err| DaemonError::Setup { what: "connect to $NOTIFY_SOCKET", err })?
        .map(Arc::new);

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
        config.listen,
        store.path().display()
    );

    let heartbeat = Arc::new(Heartbeat::default());
    let (prober, prober_thread) = match target {
        Some(target) => {
            let settings = Settings {
                target,
                interval: config.interval,
                timeout: config.timeout,
                identity: identity()?,
            };
            let status = status_reporter(notifier.clone());
            let (prober, handle) = Prober::new(socket, settings, store.clone(), heartbeat.clone(), status);
            let thread = thread::Builder::new()
                .name("prober".into())
                .spawn(move || prober.run())
                .map_err(|err| DaemonError::Setup { what: "start the prober thread", err })?;
            (Some(handle), Some(thread))
        }
        None => {
            warn!(
                "no target configured: set LATENCY_TARGET or pass --target; /latency answers 503 until then"
            );
            (None, None)
        }
    };
    server::start(http, Context { prober: prober.clone(), store: store.clone() })?;
    if let Some(notifier) = &notifier {
        notifier.send(&format!(
            "READY=1\nSTATUS=probing {target_text} every {}",
            duration::format(config.interval)
        ));
    }
    let watchdog = start_watchdog(notifier.clone(), prober_thread.as_ref().map(|_| heartbeat.clone()))?;

    let mut stop_signal = "end of signal stream";
    for signal in signals.forever() {
        if signal == SIGHUP {
            reload(&config, &store, prober.as_ref());
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
    if let Some(thread) = prober_thread {
        let _ = thread.join();
    }
    if let Some(watchdog) = watchdog {
        watchdog.stop();
    }
    info!("stopped");
    Ok(())
}

/// SIGHUP: reopen the results file (after rotation) and resolve the target name again.
fn reload(config: &Config, store: &Store, prober: Option<&ProberHandle>) {
    match store.reopen() {
        Ok(repair) => {
            info!("SIGHUP: reopened {}", store.path().display());
            log_repair(store, repair);
        }
        Err(err) => error!("SIGHUP: {err}; lines keep going to the file opened before"),
    }
    if let (Some(host), Some(prober)) = (&config.target, prober) {
        match resolve(host) {
            Ok(address) => {
                let _ = prober.retarget(address);
            }
            Err(err) => error!("SIGHUP: {err}; probing the address resolved before"),
        }
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

/// Pings systemd's watchdog at half its timeout, only while the prober loop keeps turning
/// (or always when there is no prober).
fn start_watchdog(
    notifier: Option<Arc<Notifier>>,
    heartbeat: Option<Arc<Heartbeat>>,
) -> Result<Option<Watchdog>, DaemonError> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    let (Some(notifier), Some(every)) =
        (notifier, notify::watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id()))
    else {
        return Ok(None);
    };
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
        .map_err(|err| DaemonError::Setup { what: "start the watchdog thread", err })?;
    Ok(Some(Watchdog { stop, thread }))
}
