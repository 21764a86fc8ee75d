//! The probing thread. It owns the socket and the tracker: sends scheduled probes at a fixed
//! rate, sends one on demand for HTTP callers (who share a probe already in flight), matches
//! replies, expires probes, and writes each outcome to the results file.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use crate::clock;
use crate::config::duration;
use crate::line::{Line, LocalTime, Outcome};
use crate::net::{Arrival, IcmpSocket, NetError, QueuedError, Received, SocketKind, Wake};
use crate::packet::icmp::{self, Echo, ErrorKind, Message, Quoted};
use crate::packet::{self, Token};
use crate::schedule::Schedule;
use crate::store::Store;
use crate::throttle::Throttle;
use crate::tracker::{Tracker, Verdict};

/// At most this many lines of one kind per window: a flood of forged replies, or of callers
/// while the disk is full, must not fill the journal.
const LOG_BURST: u32 = 20;
const LOG_WINDOW: Duration = Duration::from_secs(60);

/// Large enough for any echo reply on a jumbo-frame link.
const RECEIVE_BUFFER: usize = 9216;

/// How a probe is numbered and recognised: fixed for the life of the process.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// ICMP identifier on raw sockets; datagram sockets have the kernel's.
    pub identifier: u16,
    pub token: Token,
}

pub struct Settings {
    pub target: Ipv4Addr,
    pub interval: Duration,
    pub timeout: Duration,
    pub identity: Identity,
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

/// Where the prober sends a caller its line, once the line is stored.
type Waiter = SyncSender<Result<Line, Unavailable>>;

enum Command {
    Probe(Waiter),
    Retarget(Ipv4Addr),
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
    /// A line for a probe sent now, or for the one already in flight.
    pub fn probe(&self) -> Result<Line, Unavailable> {
        let (reply, line) = mpsc::sync_channel(1);
        self.send(Command::Probe(reply))?;
        line.recv_timeout(self.wait_limit).map_err(|err| match err {
            mpsc::RecvTimeoutError::Timeout => Unavailable::NoLineWithin(self.wait_limit),
            mpsc::RecvTimeoutError::Disconnected => Unavailable::Stopped,
        })?
    }

    /// Probes go to `target` from now on (after SIGHUP re-resolved the host name).
    pub fn retarget(&self, target: Ipv4Addr) -> Result<(), Unavailable> {
        self.send(Command::Retarget(target))
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

/// A probe waiting for its reply: where it went, when, and who wants its line.
struct Pending {
    target: Ipv4Addr,
    sent: LocalTime,
    waiters: Vec<Waiter>,
}

pub struct Prober<S> {
    socket: S,
    settings: Settings,
    tracker: Tracker<Pending>,
    schedule: Schedule,
    store: Arc<Store>,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
    heartbeat: Arc<Heartbeat>,
    on_line: Box<dyn FnMut(&Line) + Send>,
    request: Vec<u8>,
    ignored_log: Throttle,
    store_error_log: Throttle,
}

impl<S: IcmpSocket> Prober<S> {
    /// `on_line` sees every line after it is written (for systemd's STATUS).
    pub fn new(
        socket: S,
        settings: Settings,
        store: Arc<Store>,
        heartbeat: Arc<Heartbeat>,
        on_line: Box<dyn FnMut(&Line) + Send>,
    ) -> (Self, ProberHandle) {
        let (commands_tx, commands) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = ProberHandle {
            commands: commands_tx,
            waker: socket.waker(),
            stop: stop.clone(),
            wait_limit: settings.timeout + Duration::from_secs(1),
        };
        let prober = Prober {
            tracker: Tracker::new(settings.timeout),
            schedule: Schedule::new(Instant::now(), settings.interval),
            socket,
            settings,
            store,
            commands,
            stop,
            heartbeat,
            on_line,
            request: Vec::with_capacity(packet::icmp::HEADER_LEN + packet::PAYLOAD_LEN),
            ignored_log: Throttle::new(LOG_WINDOW, LOG_BURST),
            store_error_log: Throttle::new(LOG_WINDOW, LOG_BURST),
        };
        (prober, handle)
    }

    /// Runs until `ProberHandle::stop`. Callers still waiting then get `Unavailable`.
    pub fn run(mut self) {
        let mut buf = vec![0u8; RECEIVE_BUFFER];
        while !self.stop.load(Ordering::Acquire) {
            self.heartbeat.0.fetch_add(1, Ordering::Relaxed);
            if let Some(skipped) = self.schedule.take_due(Instant::now()) {
                if skipped > 0 {
                    warn!("the prober fell behind and skipped {skipped} scheduled probes");
                }
                self.start_probe(None);
            }
            // No wake-up is lost: `wait` at the end of the loop is the only place one is
            // consumed, and the queue is read after it, here. A handle queues its command
            // before it wakes, so a command whose wake-up `wait` consumed is in the queue now;
            // one queued after this read leaves its wake-up for the next `wait`, which then
            // returns at once. The same holds for `stop`, checked after `wait` too.
            while let Ok(command) = self.commands.try_recv() {
                self.obey(command);
            }
            // Replies already queued are judged by their kernel arrival time before expiry
            // runs, so a loop that ran late does not turn an answered probe into a timeout.
            while self.receive_one(&mut buf) {}
            for pending in self.tracker.expire(Instant::now()) {
                warn!("no reply from {} within {}", pending.target, duration::format(self.settings.timeout));
                self.finish(pending, Outcome::Timeout);
            }
            let next_due = self.schedule.next_due();
            let wake_at = self.tracker.next_deadline().map_or(next_due, |deadline| deadline.min(next_due));
            let wait = wake_at.saturating_duration_since(Instant::now()).min(self.settings.max_wait);
            if let Err(err) = self.socket.wait(wait) {
                self.socket_failed(err);
            }
        }
        debug!("prober stopped");
    }

    /// Handles one packet already waiting; false when there was none.
    fn receive_one(&mut self, buf: &mut [u8]) -> bool {
        match self.socket.try_recv(buf) {
            Ok(Some(Received::Packet(arrival))) => {
                self.receive(&buf[..arrival.len], arrival);
                true
            }
            Ok(Some(Received::QueuedError(error))) => {
                self.receive_queued_error(&buf[..error.len], error);
                true
            }
            Ok(None) => false,
            Err(err) => {
                self.socket_failed(err);
                false
            }
        }
    }

    fn socket_failed(&self, err: NetError) {
        warn!("{err}");
        // Keep a persistent socket error from spinning the loop.
        std::thread::sleep(Duration::from_millis(100));
    }

    fn obey(&mut self, command: Command) {
        match command {
            Command::Probe(waiter) => match self.tracker.newest_mut() {
                Some(pending) => pending.waiters.push(waiter),
                None => self.start_probe(Some(waiter)),
            },
            Command::Retarget(target) if target != self.settings.target => {
                info!("target is now {target} (was {})", self.settings.target);
                self.settings.target = target;
            }
            Command::Retarget(_) => {}
        }
    }

    fn start_probe(&mut self, waiter: Option<Waiter>) {
        let ticket = self.tracker.next_ticket();
        let payload = packet::payload(self.settings.identity.token, ticket.counter);
        self.request.clear();
        Echo { identifier: self.settings.identity.identifier, sequence: ticket.sequence, payload: &payload }
            .encode_request(&mut self.request);
        let target = self.settings.target;
        let sent = clock::local(SystemTime::now());
        let pending = Pending { target, sent, waiters: waiter.into_iter().collect() };
        match self.socket.send_to(&self.request, target) {
            Ok(sent) => self.tracker.sent(ticket, sent, pending),
            Err(err) => {
                warn!("{err}");
                self.finish(pending, Outcome::Timeout);
            }
        }
    }

    fn receive(&mut self, data: &[u8], arrival: Arrival) {
        let raw = self.socket.kind() == SocketKind::Raw;
        let ours = |identifier: u16| !raw || identifier == self.settings.identity.identifier;
        let source = arrival.source;
        match packet::parse(data, self.socket.kind().framing()) {
            Err(err) => debug!("ignored a packet from {source}: {err}"),
            Ok(Message::EchoReply { echo, checksum_valid }) if ours(echo.identifier) => {
                let sequence = echo.sequence;
                if !checksum_valid {
                    return self.ignored(format_args!(
                        "ignored a reply from {source} to probe {sequence}: bad ICMP checksum"
                    ));
                }
                let Some(counter) = packet::payload_counter(self.settings.identity.token, echo.payload)
                else {
                    return self.ignored(format_args!(
                        "ignored a reply from {source} to probe {sequence}: its payload is not the one sent"
                    ));
                };
                // Each probe keeps the address it went to, so a SIGHUP that moved the target
                // does not turn the probe in flight into a timeout.
                if let Some(sent_to) = self.tracker.get(counter).map(|pending| pending.target)
                    && sent_to != source
                {
                    return self.ignored(format_args!(
                        "ignored a reply to probe {sequence} from {source}: it went to {sent_to}"
                    ));
                }
                match self.tracker.reply(sequence, counter, arrival.at) {
                    Verdict::Answered { rtt, tag } => {
                        debug!("reply from {source} to probe {sequence}: {} µs", rtt.as_micros());
                        self.finish(tag, Outcome::Reply(rtt));
                    }
                    Verdict::Duplicate => self
                        .ignored(format_args!("ignored a duplicate reply from {source} to probe {sequence}")),
                    Verdict::Late => {
                        let timeout = duration::format(self.settings.timeout);
                        self.ignored(format_args!(
                            "ignored a reply from {source} to probe {sequence}: it came after the {timeout} timeout"
                        ))
                    }
                    Verdict::Unknown => self.ignored(format_args!(
                        "ignored a reply from {source} naming probe {sequence}, which was never sent"
                    )),
                }
            }
            Ok(Message::Error { kind, quoted, checksum_valid })
                if checksum_valid && ours(quoted.identifier) =>
            {
                self.fail(kind, quoted, source)
            }
            Ok(_) => {}
        }
    }

    /// Logs why a packet was ignored, unless a flood of them is being held back.
    fn ignored(&mut self, why: fmt::Arguments) {
        warn_throttled(&mut self.ignored_log, why);
    }

    /// The kernel delivered only errors about this socket's own requests to its queue.
    fn receive_queued_error(&mut self, request: &[u8], error: QueuedError) {
        match icmp::queued_error(error.icmp_type, error.code, request, error.destination) {
            Some((kind, quoted)) => self.fail(kind, quoted, error.reporter),
            None => debug!("ignored a queued ICMP error of type {} from {}", error.icmp_type, error.reporter),
        }
    }

    /// Ends the probe an ICMP error is about, if it is still waiting.
    fn fail(&mut self, kind: ErrorKind, quoted: Quoted, reporter: Ipv4Addr) {
        let about_probe = |pending: &Pending| pending.target == quoted.destination;
        if let Some(pending) = self.tracker.fail(quoted.sequence, about_probe) {
            warn!("probe {} to {}: {kind} (reported by {reporter})", quoted.sequence, quoted.destination);
            self.finish(pending, Outcome::Timeout);
        }
    }

    fn finish(&mut self, pending: Pending, outcome: Outcome) {
        let line = Line { sent: pending.sent, outcome };
        // A caller is told when its line is not in the file, rather than handed a line that
        // the results will never show.
        let stored = self.store.append(&line).map(|()| line).map_err(|err| {
            warn_throttled(&mut self.store_error_log, format_args!("{err}; the line was: {line}"));
            Unavailable::NotStored { line, reason: err.to_string() }
        });
        for waiter in pending.waiters {
            // A caller that gave up has dropped its receiver; nothing to tell it.
            let _ = waiter.try_send(stored.clone());
        }
        (self.on_line)(&line);
    }
}

/// Logs `line` unless `throttle` holds it back, first saying how many it held back before.
fn warn_throttled(throttle: &mut Throttle, line: fmt::Arguments) {
    if let Some(held_back) = throttle.admit(Instant::now()) {
        if held_back > 0 {
            warn!("{held_back} more lines like the next were not logged, to keep the journal readable");
        }
        warn!("{line}");
    }
}
