//! The probing thread: a thin loop around the engine (`engine.rs`). It owns the socket, the
//! clock and the command queue: waits, turns what happened into calls on the engine, sends the
//! requests the engine asks for, and stores each ended probe's line before handing it to the
//! callers waiting for it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, warn};

use crate::clock;
use crate::config::duration;
use crate::engine::{self, Address, Ended, Engine, Heard, Measurement, Probe};
use crate::line::Line;
use crate::monitor::Monitor;
use crate::net::{IcmpSocket, NetError, Received, Wake};
use crate::packet;
use crate::store::Store;
use crate::throttle::Throttle;

/// Large enough for any echo reply on a jumbo-frame link.
const RECEIVE_BUFFER: usize = 9216;

pub struct Settings {
    pub engine: engine::Settings,
    /// The longest the loop sleeps, so that the watchdog sees it turn.
    pub max_wait: Duration,
}

/// Why an HTTP caller got no line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The prober thread has ended: the daemon is stopping.
    Stopped,
    /// The prober did not finish the probe in time (stalled, on a slow disk say).
    NoLineWithin(Duration),
    /// The probe ended but its line is not in the results file (disk full, say).
    NotStored { line: Line, reason: String },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Stopped => {
                f.write_str("the prober is not running (the daemon is stopping); retry shortly")
            }
            Unavailable::NoLineWithin(wait) => {
                write!(
                    f,
                    "no line within {}: the prober is stalled; see the daemon's log",
                    duration::format(*wait)
                )
            }
            Unavailable::NotStored { line, reason } => {
                write!(f, "measured '{line}' but could not store it: {reason}")
            }
        }
    }
}

/// Where the prober sends a caller its measurement, once its line is stored.
type Waiter = SyncSender<Result<Measurement, Unavailable>>;

enum Command {
    /// A line for the target with this index.
    Probe(usize, Waiter),
    Retarget(usize, Option<Address>),
}

/// Counts loop turns; the watchdog only pings while it moves.
#[derive(Default)]
pub struct Heartbeat(AtomicU64);

impl Heartbeat {
    pub fn beats(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The other threads' side of the prober.
#[derive(Clone)]
pub struct ProberHandle {
    commands: Sender<Command>,
    waker: Arc<dyn Wake>,
    stop: Arc<AtomicBool>,
    /// How long a caller waits: the timeout plus room for the line to be written.
    wait_limit: Duration,
}

impl ProberHandle {
    /// One measurement for each target in `targets` (indices in the configured list), in
    /// that order: from a probe sent now, or from the one to that target already in flight.
    pub fn probe(&self, targets: &[usize]) -> Result<Vec<Measurement>, Unavailable> {
        // Every probe is asked for before any line is awaited, so they run side by side.
        let mut lines = Vec::with_capacity(targets.len());
        for &target in targets {
            let (reply, line) = mpsc::sync_channel(1);
            self.send(Command::Probe(target, reply))?;
            lines.push(line);
        }
        let deadline = Instant::now() + self.wait_limit;
        lines
            .into_iter()
            .map(|line| {
                line.recv_timeout(deadline.saturating_duration_since(Instant::now())).map_err(
                    |err| match err {
                        mpsc::RecvTimeoutError::Timeout => Unavailable::NoLineWithin(self.wait_limit),
                        mpsc::RecvTimeoutError::Disconnected => Unavailable::Stopped,
                    },
                )?
            })
            .collect()
    }

    /// Probes to target `target` go to `address` from now on (a name resolved again).
    pub fn retarget(&self, target: usize, address: Option<Address>) -> Result<(), Unavailable> {
        self.send(Command::Retarget(target, address))
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn send(&self, command: Command) -> Result<(), Unavailable> {
        self.commands.send(command).map_err(|_| Unavailable::Stopped)?;
        self.waker.wake();
        Ok(())
    }
}

pub struct Prober<S> {
    socket: S,
    engine: Engine<Waiter>,
    max_wait: Duration,
    store: Arc<Store>,
    monitor: Arc<Monitor>,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
    heartbeat: Arc<Heartbeat>,
    on_line: Box<dyn FnMut(&Line) + Send>,
    request: Vec<u8>,
    store_error_log: Throttle,
    send_error_log: Throttle,
}

impl<S: IcmpSocket> Prober<S> {
    /// `on_line` sees every line after it is written (for systemd's STATUS); `monitor`
    /// counts every probe and packet.
    pub fn new(
        socket: S,
        settings: Settings,
        store: Arc<Store>,
        monitor: Arc<Monitor>,
        heartbeat: Arc<Heartbeat>,
        on_line: Box<dyn FnMut(&Line) + Send>,
    ) -> (Self, ProberHandle) {
        let (commands_tx, commands) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = ProberHandle {
            commands: commands_tx,
            waker: socket.waker(),
            stop: stop.clone(),
            wait_limit: settings.engine.timeout + Duration::from_secs(1),
        };
        let prober = Prober {
            engine: Engine::new(settings.engine, Instant::now()),
            max_wait: settings.max_wait,
            socket,
            store,
            monitor,
            commands,
            stop,
            heartbeat,
            on_line,
            request: Vec::with_capacity(packet::icmp::HEADER_LEN + packet::PAYLOAD_LEN),
            store_error_log: Throttle::for_journal(),
            send_error_log: Throttle::for_journal(),
        };
        (prober, handle)
    }

    /// Runs until `ProberHandle::stop`. Callers still waiting then get `Unavailable`.
    pub fn run(mut self) {
        let mut buf = vec![0u8; RECEIVE_BUFFER];
        while !self.stop.load(Ordering::Acquire) {
            self.heartbeat.0.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            while let Some(probe) = self.engine.due(now) {
                self.send(probe);
            }
            // No wake-up is lost: `wait` at the end of the loop is the only place one is
            // consumed, and the queue is read after it, here. A handle queues its command
            // before it wakes, so a command whose wake-up `wait` consumed is in the queue now;
            // one queued after this read leaves its wake-up for the next `wait`, which then
            // returns at once. The same holds for `stop`, checked after `wait` too.
            while let Ok(command) = self.commands.try_recv() {
                match command {
                    Command::Probe(target, waiter) => {
                        if let Some(probe) = self.engine.caller(target, waiter) {
                            self.send(probe);
                        }
                    }
                    Command::Retarget(target, address) => self.engine.retarget(target, address),
                }
            }
            // Replies already queued are judged by their kernel arrival time before expiry
            // runs, so a loop that ran late does not turn an answered probe into a timeout.
            while self.receive_one(&mut buf) {}
            for ended in self.engine.expire(Instant::now()) {
                self.finish(ended);
            }
            let now = Instant::now();
            let wait = self.engine.next_wake().map_or(self.max_wait, |at| at.saturating_duration_since(now));
            let wait = wait.min(self.max_wait);
            if let Err(err) = self.socket.wait(wait) {
                self.socket_failed(err);
            }
        }
        debug!("prober stopped");
    }

    fn send(&mut self, probe: Probe<Waiter>) {
        self.request.clear();
        self.engine.request(&probe, &mut self.request);
        let local = clock::local(SystemTime::now());
        let sent = probe.address.and_then(|address| {
            self.socket.send_to(&self.request, address.ip, address.scope_id).map_or_else(
                |err| {
                    self.send_error_log.warn(Instant::now(), format_args!("{err}"));
                    None
                },
                Some,
            )
        });
        if let Some(ended) = self.engine.sent(probe, local, sent) {
            self.finish(ended);
        }
    }

    /// Hands the engine one packet already waiting; false when there was none.
    fn receive_one(&mut self, buf: &mut [u8]) -> bool {
        let heard = match self.socket.try_recv(buf) {
            Ok(Some(Received::Packet(arrival))) => {
                self.engine.packet(&buf[..arrival.len], arrival, Instant::now())
            }
            Ok(Some(Received::QueuedError(error))) => {
                self.engine.queued_error(&buf[..error.len], error, Instant::now())
            }
            Ok(None) => return false,
            Err(err) => {
                self.socket_failed(err);
                return false;
            }
        };
        match heard {
            Heard::Ended(ended) => self.finish(ended),
            Heard::Duplicate(target) => {
                self.monitor.duplicate(target, clock::local(SystemTime::now()).seconds())
            }
            Heard::Late(target) => self.monitor.late(target, clock::local(SystemTime::now()).seconds()),
            Heard::Ignored => self.monitor.ignored(),
            Heard::NotOurs => {}
        }
        true
    }

    fn socket_failed(&self, err: NetError) {
        warn!("{err}");
        // Keep a persistent socket error from spinning the loop.
        std::thread::sleep(Duration::from_millis(100));
    }

    fn finish(&mut self, ended: Ended<Waiter>) {
        let measurement = ended.measurement;
        let appended = self.store.append(&measurement.line);
        self.monitor.ended(&measurement, SystemTime::now());
        (self.on_line)(&measurement.line);
        // A caller is told when its line is not in the file, rather than handed a line that
        // the results will never show.
        let stored = match appended {
            Ok(()) => Ok(measurement),
            Err(err) => {
                self.monitor.write_error();
                let line = measurement.line;
                self.store_error_log.warn(Instant::now(), format_args!("{err}; the line was: {line}"));
                Err(Unavailable::NotStored { line, reason: err.to_string() })
            }
        };
        for waiter in ended.waiters {
            // A caller that gave up has dropped its receiver; nothing to tell it.
            let _ = waiter.try_send(stored.clone());
        }
    }
}
