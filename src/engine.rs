//! The prober's decisions without I/O: when each target's probe is due, which caller shares
//! which probe, which packet answers which probe, when a probe has timed out. The prober
//! thread (`prober.rs`) hands it the time, callers, packets and the outcome of each send, and
//! carries out what it returns: requests to send, and ended probes to store and hand to their
//! callers. It owns no socket, clock or thread, so tests drive it with a fake clock and
//! scripted packets.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{debug, warn};

use crate::config::duration;
use crate::line::{Line, LocalTime, Name, Outcome};
use crate::net::{Arrival, QueuedError, SocketKind};
use crate::packet::icmp::{self, Echo, ErrorKind, Message, Quoted};
use crate::packet::{self, Family, Token};
use crate::schedule::Schedule;
use crate::throttle::Throttle;
use crate::tracker::{Ticket, Tracker, Verdict};

/// How a probe is numbered and recognised: fixed for the life of the process.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// ICMP identifier on raw sockets; datagram sockets have the kernel's.
    pub identifier: u16,
    pub token: Token,
}

/// Where probes to a target go: an IP address, and for a link-local IPv6 address the
/// interface it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub ip: IpAddr,
    pub scope_id: u32,
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Self {
        Address { ip, scope_id: 0 }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope_id {
            0 => self.ip.fmt(f),
            scope => write!(f, "{}%{scope}", self.ip),
        }
    }
}

/// One target as configured: its NAME, and its address once known.
pub struct TargetSettings {
    pub name: Name,
    pub address: Option<Address>,
}

pub struct Settings {
    pub targets: Vec<TargetSettings>,
    pub interval: Duration,
    pub timeout: Duration,
    pub identity: Identity,
}

/// A probe to send now. Encode it with `Engine::request`, send it (if it has an address),
/// and report with `Engine::sent` before asking the engine for anything else.
#[derive(Debug, PartialEq)]
pub struct Probe<W> {
    ticket: Ticket,
    target: usize,
    /// `None`: the target's name has no address (yet); the probe ends as a timeout unsent.
    pub address: Option<Address>,
    waiter: Option<W>,
}

/// A probe that has ended: what it measured, for the results file, the statistics and the
/// callers waiting on it.
#[derive(Debug, PartialEq)]
pub struct Ended<W> {
    pub measurement: Measurement,
    pub waiters: Vec<W>,
}

/// What one probe came to: its results line, the address it went to (none: its target had
/// none), and the ICMP error that ended it, which the line shows as a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// The index of its target in the configured list.
    pub target: usize,
    pub line: Line,
    pub address: Option<Address>,
    pub error: Option<ErrorKind>,
}

/// What a packet read from a socket turned out to be.
#[derive(Debug, PartialEq)]
pub enum Heard<W> {
    /// The reply or the ICMP error that ended a probe.
    Ended(Ended<W>),
    /// Another reply to a probe already answered, from the address of the target at this index.
    Duplicate(usize),
    /// A reply after its probe's timeout, from the address of the target at this index.
    Late(usize),
    /// A packet meant for us that answers nothing: corrupt, foreign payload, wrong source, a
    /// probe never sent, an error about no probe in flight.
    Ignored,
    /// Another program's ICMP traffic, which a raw socket sees too.
    NotOurs,
}

struct Target {
    name: Name,
    address: Option<Address>,
    schedule: Schedule,
}

/// A probe waiting for its reply: to which target and address, when, and who wants its line.
struct Pending<W> {
    target: usize,
    address: Address,
    sent: LocalTime,
    waiters: Vec<W>,
}

/// The prober's state, generic over `W`, whatever stands for a caller waiting for a line.
pub struct Engine<W> {
    targets: Vec<Target>,
    /// Lines carry their target's NAME when there are several targets.
    named: bool,
    timeout: Duration,
    identity: Identity,
    /// One numbering for all targets: the 64-bit counter in each payload names one probe, so
    /// a reply is never credited to another target's probe, whatever its sequence number.
    tracker: Tracker<Pending<W>>,
    /// Each target's next slot, soonest first.
    slots: BinaryHeap<Reverse<(Instant, usize)>>,
    ignored_log: Throttle,
    /// Many targets down at once must not flood the journal with a line per lost probe.
    lost_log: Throttle,
}

impl<W> Engine<W> {
    /// Each target on its own fixed-rate schedule, the first slots spread evenly over the
    /// first interval from `now`, so N targets never get N echo requests at once.
    pub fn new(settings: Settings, now: Instant) -> Self {
        let count = settings.targets.len().max(1) as u32;
        let named = settings.targets.len() > 1;
        let targets: Vec<Target> = settings
            .targets
            .into_iter()
            .enumerate()
            .map(|(index, target)| Target {
                name: target.name,
                address: target.address,
                schedule: Schedule::new(now + settings.interval * index as u32 / count, settings.interval),
            })
            .collect();
        let slots =
            targets.iter().enumerate().map(|(index, t)| Reverse((t.schedule.next_due(), index))).collect();
        Engine {
            targets,
            named,
            timeout: settings.timeout,
            identity: settings.identity,
            tracker: Tracker::new(settings.timeout),
            slots,
            ignored_log: Throttle::for_journal(),
            lost_log: Throttle::for_journal(),
        }
    }

    /// The next scheduled probe due at `now`, if any; call again until `None`.
    pub fn due(&mut self, now: Instant) -> Option<Probe<W>> {
        let Reverse((at, index)) = *self.slots.peek()?;
        if at > now {
            return None;
        }
        self.slots.pop();
        let schedule = &mut self.targets[index].schedule;
        let skipped = schedule.take_due(now).unwrap_or(0);
        self.slots.push(Reverse((schedule.next_due(), index)));
        if skipped > 0 {
            warn!(
                "the prober fell behind and skipped {skipped} scheduled probes to {}",
                self.targets[index].name
            );
        }
        Some(self.probe(index, None))
    }

    /// A caller wants a line for target `index`: it shares the newest probe to that target in
    /// flight, or gets a probe of its own.
    pub fn caller(&mut self, index: usize, waiter: W) -> Option<Probe<W>> {
        match self.tracker.newest_mut(|pending| pending.target == index) {
            Some(pending) => {
                pending.waiters.push(waiter);
                None
            }
            None => Some(self.probe(index, Some(waiter))),
        }
    }

    /// Probes to target `index` go to `address` from now on (`None`: it has none, and its
    /// probes end as timeouts); a probe in flight still expects its reply from the address it
    /// went to. The resolver logs the change.
    pub fn retarget(&mut self, index: usize, address: Option<Address>) {
        self.targets[index].address = address;
    }

    fn probe(&self, target: usize, waiter: Option<W>) -> Probe<W> {
        Probe { ticket: self.tracker.next_ticket(), target, address: self.targets[target].address, waiter }
    }

    fn line(&self, index: usize, sent: LocalTime, outcome: Outcome) -> Line {
        let target = self.named.then(|| self.targets[index].name.clone());
        Line { sent, target, outcome }
    }

    /// The echo request for `probe`, appended to `out`; nothing for a probe without address.
    pub fn request(&self, probe: &Probe<W>, out: &mut Vec<u8>) {
        let Some(address) = probe.address else { return };
        let payload = packet::payload(self.identity.token, probe.ticket.counter);
        Echo { identifier: self.identity.identifier, sequence: probe.ticket.sequence, payload: &payload }
            .encode_request(Family::of(address.ip), out);
    }

    /// `probe` left at `sent` (its monotonic stamp; `None`: it could not go, and has ended),
    /// at local time `local`.
    pub fn sent(&mut self, probe: Probe<W>, local: LocalTime, sent: Option<Instant>) -> Option<Ended<W>> {
        let waiters = probe.waiter.into_iter().collect();
        match (sent, probe.address) {
            (Some(at), Some(address)) => {
                let pending = Pending { target: probe.target, address, sent: local, waiters };
                self.tracker.sent(probe.ticket, at, pending);
                None
            }
            (_, address) => {
                let line = self.line(probe.target, local, Outcome::Timeout);
                Some(Ended {
                    measurement: Measurement { target: probe.target, line, address, error: None },
                    waiters,
                })
            }
        }
    }

    /// A packet read from a socket at `now`: the probe it ends, if it is a reply or an error
    /// about one in flight, or what else it was.
    pub fn packet(&mut self, data: &[u8], arrival: Arrival, now: Instant) -> Heard<W> {
        // Raw sockets see every echo reply on the host; the kernel sets our identifier on
        // ping sockets and delivers only their own.
        let raw = arrival.kind == SocketKind::Raw;
        let ours = |identifier: u16| !raw || identifier == self.identity.identifier;
        let source = arrival.source;
        match packet::parse(data, arrival.kind.framing(Family::of(source))) {
            Err(err) => {
                debug!("ignored a packet from {source}: {err}");
                Heard::Ignored
            }
            Ok(Message::EchoReply { echo, checksum_valid }) if ours(echo.identifier) => {
                self.reply(echo, checksum_valid, arrival, now)
            }
            Ok(Message::Error { kind, quoted, checksum_valid }) if ours(quoted.identifier) => {
                if !checksum_valid {
                    debug!("ignored an ICMP error from {source}: bad checksum");
                    return Heard::Ignored;
                }
                self.fail(kind, quoted, source, now).map_or(Heard::Ignored, Heard::Ended)
            }
            Ok(_) => Heard::NotOurs,
        }
    }

    fn reply(&mut self, echo: Echo, checksum_valid: bool, arrival: Arrival, now: Instant) -> Heard<W> {
        let (source, sequence) = (arrival.source, echo.sequence);
        if !checksum_valid {
            return self.ignored(
                now,
                format_args!("ignored a reply from {source} to probe {sequence}: bad ICMP checksum"),
            );
        }
        let Some(counter) = packet::payload_counter(self.identity.token, echo.payload) else {
            return self.ignored(
                now,
                format_args!(
                    "ignored a reply from {source} to probe {sequence}: its payload is not the one sent"
                ),
            );
        };
        // Each probe keeps the address it went to, so a new address for its target does not
        // turn the probe in flight into a timeout.
        if let Some(sent_to) = self.tracker.get(counter).map(|pending| pending.address.ip)
            && sent_to != source
        {
            return self.ignored(
                now,
                format_args!("ignored a reply to probe {sequence} from {source}: it went to {sent_to}"),
            );
        }
        let verdict = self.tracker.reply(sequence, counter, arrival.at);
        // A duplicate or late reply's probe has left the tracker: the target whose address it
        // comes from is the one it is counted against.
        let target_at_source = || self.targets.iter().position(|t| t.address.is_some_and(|a| a.ip == source));
        match verdict {
            Verdict::Answered { rtt, tag } => {
                debug!("reply from {source} to probe {sequence}: {} µs", rtt.as_micros());
                Heard::Ended(self.end(tag, Outcome::Reply(rtt), None))
            }
            Verdict::Duplicate => {
                let target = target_at_source();
                self.ignored_log
                    .warn(now, format_args!("ignored a duplicate reply from {source} to probe {sequence}"));
                target.map_or(Heard::Ignored, Heard::Duplicate)
            }
            Verdict::Late => {
                let target = target_at_source();
                let timeout = duration::format(self.timeout);
                self.ignored_log.warn(
                    now,
                    format_args!("ignored a reply from {source} to probe {sequence}: it came after the {timeout} timeout"),
                );
                target.map_or(Heard::Ignored, Heard::Late)
            }
            Verdict::Unknown => self.ignored(
                now,
                format_args!("ignored a reply from {source} naming probe {sequence}, which was never sent"),
            ),
        }
    }

    /// Logs why a packet was ignored, unless a flood of them is being held back.
    fn ignored(&mut self, now: Instant, why: fmt::Arguments) -> Heard<W> {
        self.ignored_log.warn(now, why);
        Heard::Ignored
    }

    /// An error the kernel queued about one of our requests (datagram sockets only), read at
    /// `now`; `request` is the request it returns.
    pub fn queued_error(&mut self, request: &[u8], error: QueuedError, now: Instant) -> Heard<W> {
        match icmp::queued_error(error.icmp_type, error.code, error.info, request, error.destination) {
            Some((kind, quoted)) => {
                self.fail(kind, quoted, error.reporter, now).map_or(Heard::Ignored, Heard::Ended)
            }
            None => {
                debug!("ignored a queued ICMP error of type {} from {}", error.icmp_type, error.reporter);
                Heard::Ignored
            }
        }
    }

    /// Ends the probe an ICMP error is about, if it is still waiting.
    fn fail(&mut self, kind: ErrorKind, quoted: Quoted, reporter: IpAddr, now: Instant) -> Option<Ended<W>> {
        let about_probe = |pending: &Pending<W>| pending.address.ip == quoted.destination;
        let pending = self.tracker.fail(quoted.sequence, about_probe)?;
        let target = self.describe(&pending);
        self.lost_log.warn(
            now,
            format_args!("probe {} to {target}: {kind} (reported by {reporter})", quoted.sequence),
        );
        Some(self.end(pending, Outcome::Timeout, Some(kind)))
    }

    /// The probes whose timeout has passed at `now`, oldest first.
    pub fn expire(&mut self, now: Instant) -> Vec<Ended<W>> {
        let timeout = duration::format(self.timeout);
        let expired = self.tracker.expire(now);
        expired
            .into_iter()
            .map(|pending| {
                let target = self.describe(&pending);
                self.lost_log.warn(now, format_args!("no reply from {target} within {timeout}"));
                self.end(pending, Outcome::Timeout, None)
            })
            .collect()
    }

    /// The probe's target for a log line: its address, after its NAME when that differs.
    fn describe(&self, pending: &Pending<W>) -> String {
        let (name, address) = (&self.targets[pending.target].name, pending.address.to_string());
        if **name == *address { address } else { format!("{name} ({address})") }
    }

    fn end(&self, pending: Pending<W>, outcome: Outcome, error: Option<ErrorKind>) -> Ended<W> {
        let line = self.line(pending.target, pending.sent, outcome);
        let measurement = Measurement { target: pending.target, line, address: Some(pending.address), error };
        Ended { measurement, waiters: pending.waiters }
    }

    /// When the engine next has something to do unprompted: a probe due, or one timing out.
    pub fn next_wake(&self) -> Option<Instant> {
        let next_due = self.slots.peek().map(|Reverse((at, _))| *at);
        match (next_due, self.tracker.next_deadline()) {
            (Some(due), Some(deadline)) => Some(due.min(deadline)),
            (due, deadline) => due.or(deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum;
    use crate::packet::icmp::tests::reply_to;
    use crate::packet::icmpv6;
    use crate::packet::ipv4::tests::wrap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const US: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const TARGET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const OTHER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
    const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
    const INTERVAL: Duration = Duration::from_secs(10);
    const TIMEOUT: Duration = Duration::from_secs(1);
    const IDENTITY: Identity = Identity { identifier: 0x1234, token: Token(*b"12345678") };
    const LOCAL: LocalTime = LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// An engine on a fake clock: `t0` plus milliseconds.
    struct Lab {
        engine: Engine<u32>,
        kind: SocketKind,
        t0: Instant,
    }

    impl Lab {
        /// One target, TARGET.
        fn new(kind: SocketKind) -> Self {
            Lab::with_targets(kind, &[("target", Some(TARGET))])
        }

        fn with_targets(kind: SocketKind, targets: &[(&str, Option<Ipv4Addr>)]) -> Self {
            let targets: Vec<_> =
                targets.iter().map(|(name, address)| (*name, address.map(IpAddr::V4))).collect();
            Lab::with_addresses(kind, &targets)
        }

        fn with_addresses(kind: SocketKind, targets: &[(&str, Option<IpAddr>)]) -> Self {
            let t0 = Instant::now();
            let targets = targets
                .iter()
                .map(|(name, address)| TargetSettings {
                    name: name.parse().expect("a valid name"),
                    address: address.map(Address::from),
                })
                .collect();
            let settings = Settings { targets, interval: INTERVAL, timeout: TIMEOUT, identity: IDENTITY };
            Lab { engine: Engine::new(settings, t0), kind, t0 }
        }

        fn at(&self, millis: u64) -> Instant {
            self.t0 + ms(millis)
        }

        /// Sends `probe` at `millis`; its request as it went on the wire.
        fn send(&mut self, probe: Probe<u32>, millis: u64) -> Vec<u8> {
            assert!(probe.address.is_some(), "a probe with an address");
            let mut request = Vec::new();
            self.engine.request(&probe, &mut request);
            assert!(self.engine.sent(probe, LOCAL, Some(self.at(millis))).is_none());
            request
        }

        /// The scheduled probe due at `millis`, sent then.
        fn send_due(&mut self, millis: u64) -> Vec<u8> {
            let probe = self.engine.due(self.at(millis)).expect("a probe is due");
            self.send(probe, millis)
        }

        /// `icmp` from `source` arriving at `millis`, framed as this socket kind delivers it.
        fn deliver(&mut self, icmp: &[u8], source: Ipv4Addr, millis: u64) -> Heard<u32> {
            let data = match self.kind {
                SocketKind::Raw => wrap(source, US, 0, icmp),
                SocketKind::Datagram => icmp.to_vec(),
            };
            let arrival =
                Arrival { len: data.len(), source: IpAddr::V4(source), at: self.at(millis), kind: self.kind };
            self.engine.packet(&data, arrival, self.at(millis))
        }

        fn answer(&mut self, request: &[u8], millis: u64) -> Heard<u32> {
            self.deliver(&reply_to(request), TARGET, millis)
        }

        /// An ICMPv6 message from `source` arriving at `millis`: both socket kinds hand it over
        /// without its IPv6 header, the kernel having checked its checksum.
        fn deliver6(&mut self, icmp: &[u8], source: Ipv6Addr, millis: u64) -> Heard<u32> {
            let arrival =
                Arrival { len: icmp.len(), source: IpAddr::V6(source), at: self.at(millis), kind: self.kind };
            self.engine.packet(icmp, arrival, self.at(millis))
        }
    }

    /// Target `index` of several, named `target`, at `address`.
    fn named(
        (index, target): (usize, &str),
        address: Option<IpAddr>,
        outcome: Outcome,
        error: Option<ErrorKind>,
        waiters: Vec<u32>,
    ) -> Ended<u32> {
        let line = Line { sent: LOCAL, target: Some(target.parse().expect("a valid name")), outcome };
        Ended {
            measurement: Measurement { target: index, line, address: address.map(Address::from), error },
            waiters,
        }
    }

    /// The only target's probe to TARGET, answered after `rtt`.
    fn reply(rtt: Duration, waiters: Vec<u32>) -> Heard<u32> {
        Heard::Ended(ended(Some(TARGET), Outcome::Reply(rtt), None, waiters))
    }

    fn ended(
        address: Option<Ipv4Addr>,
        outcome: Outcome,
        error: Option<ErrorKind>,
        waiters: Vec<u32>,
    ) -> Ended<u32> {
        let line = Line { sent: LOCAL, target: None, outcome };
        let address = address.map(|ip| Address::from(IpAddr::V4(ip)));
        Ended { measurement: Measurement { target: 0, line, address, error }, waiters }
    }

    /// The only target's probe to TARGET, lost.
    fn timeout(waiters: Vec<u32>) -> Ended<u32> {
        ended(Some(TARGET), Outcome::Timeout, None, waiters)
    }

    /// `icmp` with its checksum made right again after an edit.
    fn resum(mut icmp: Vec<u8>) -> Vec<u8> {
        icmp[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum::internet(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        icmp
    }

    #[test]
    fn scheduled_probes_keep_a_fixed_rate_and_the_engine_wakes_for_each_deadline() {
        let mut lab = Lab::new(SocketKind::Raw);
        let request = lab.send_due(0);
        assert!(lab.engine.due(lab.at(1)).is_none());
        assert_eq!(lab.engine.next_wake(), Some(lab.at(1000)), "the probe's deadline comes first");
        assert_eq!(lab.answer(&request, 5), reply(ms(5), vec![]));
        assert_eq!(lab.engine.next_wake(), Some(lab.at(10_000)), "then the next slot");
        assert!(lab.engine.due(lab.at(9_999)).is_none());
        // A slow loop does not shift the grid.
        lab.send_due(10_300);
        assert_eq!(lab.engine.expire(lab.at(11_300)), vec![timeout(vec![])]);
        assert_eq!(lab.engine.next_wake(), Some(lab.at(20_000)));
    }

    #[test]
    fn callers_share_the_probe_in_flight_and_a_later_caller_gets_a_new_one() {
        let mut lab = Lab::new(SocketKind::Raw);
        let probe = lab.engine.caller(0, 1).expect("nothing in flight: a probe of its own");
        let request = lab.send(probe, 0);
        assert!(lab.engine.caller(0, 2).is_none());
        assert!(lab.engine.caller(0, 3).is_none());
        assert_eq!(lab.answer(&request, 2), reply(ms(2), vec![1, 2, 3]));
        let probe = lab.engine.caller(0, 4).expect("the shared probe has ended");
        let request = lab.send(probe, 3);
        assert_eq!(lab.answer(&request, 4), reply(ms(1), vec![4]));
    }

    #[test]
    fn duplicates_and_late_replies_end_nothing_and_are_never_credited_to_another_probe() {
        let mut lab = Lab::new(SocketKind::Raw);
        let first = lab.send_due(0);
        assert_eq!(lab.answer(&first, 3), reply(ms(3), vec![]));
        assert_eq!(lab.answer(&first, 4), Heard::Duplicate(0), "a duplicate");

        let probe = lab.engine.caller(0, 1).expect("a probe");
        let slow = lab.send(probe, 100);
        assert_eq!(lab.engine.expire(lab.at(1099)), vec![]);
        assert_eq!(lab.engine.expire(lab.at(1100)), vec![timeout(vec![1])], "lost, never 0 ms");
        let probe = lab.engine.caller(0, 2).expect("a probe");
        let next = lab.send(probe, 1200);
        assert_eq!(lab.answer(&slow, 1250), Heard::Late(0), "the late reply is not the next probe's");
        assert_eq!(lab.answer(&next, 1260), reply(ms(60), vec![2]));
    }

    #[test]
    fn a_reply_that_is_not_exactly_the_echo_sent_is_ignored() {
        let mut lab = Lab::new(SocketKind::Raw);
        let request = lab.send_due(0);
        let good = reply_to(&request);
        let mut corrupt = good.clone();
        corrupt[20] ^= 1;
        assert_eq!(lab.deliver(&corrupt, TARGET, 1), Heard::Ignored, "bad checksum");
        let mut foreign_payload = good.clone();
        foreign_payload[8] ^= 1;
        assert_eq!(lab.deliver(&resum(foreign_payload), TARGET, 1), Heard::Ignored, "not our token");
        assert_eq!(lab.deliver(&good, ELSEWHERE, 1), Heard::Ignored, "from an address it did not go to");
        let mut other_identifier = good.clone();
        other_identifier[4] ^= 1;
        assert_eq!(lab.deliver(&resum(other_identifier), TARGET, 1), Heard::NotOurs, "someone else's");
        assert_eq!(lab.answer(&request, 2), reply(ms(2), vec![]), "the probe still waits for its reply");
    }

    #[test]
    fn datagram_sockets_take_the_kernels_identifier() {
        let mut lab = Lab::new(SocketKind::Datagram);
        let request = lab.send_due(0);
        let mut rewritten = reply_to(&request);
        rewritten[4..6].copy_from_slice(&[0xab, 0xcd]);
        assert_eq!(lab.deliver(&resum(rewritten), TARGET, 7), reply(ms(7), vec![]));
    }

    #[test]
    fn an_icmp_error_quoting_the_probe_ends_it_at_once() {
        let mut lab = Lab::new(SocketKind::Raw);
        let probe = lab.engine.caller(0, 1).expect("a probe");
        let request = lab.send(probe, 0);
        let error_about = |destination: Ipv4Addr| {
            let quoted = wrap(US, destination, 0, &request);
            let mut error = vec![icmp::DESTINATION_UNREACHABLE, 1, 0, 0, 0, 0, 0, 0];
            error.extend_from_slice(&quoted[..28]);
            resum(error)
        };
        assert_eq!(
            lab.deliver(&error_about(ELSEWHERE), ELSEWHERE, 1),
            Heard::Ignored,
            "about another destination"
        );
        let unreachable = Some(ErrorKind::Unreachable(1));
        assert_eq!(
            lab.deliver(&error_about(TARGET), ELSEWHERE, 2),
            Heard::Ended(ended(Some(TARGET), Outcome::Timeout, unreachable, vec![1])),
            "a lost probe, and which error lost it"
        );
        assert_eq!(lab.deliver(&error_about(TARGET), ELSEWHERE, 3), Heard::Ignored, "about a probe ended");
        assert_eq!(lab.engine.expire(lab.at(5000)), vec![], "ended once");
    }

    #[test]
    fn a_queued_error_ends_the_probe_on_a_datagram_socket() {
        let mut lab = Lab::new(SocketKind::Datagram);
        let request = lab.send_due(0);
        let error = |destination| QueuedError {
            len: request.len(),
            icmp_type: icmp::DESTINATION_UNREACHABLE,
            code: 1,
            info: 0,
            destination: IpAddr::V4(destination),
            reporter: IpAddr::V4(TARGET),
        };
        assert_eq!(lab.engine.queued_error(&request, error(ELSEWHERE), lab.at(1)), Heard::Ignored);
        assert_eq!(
            lab.engine.queued_error(&request, error(TARGET), lab.at(1)),
            Heard::Ended(ended(Some(TARGET), Outcome::Timeout, Some(ErrorKind::Unreachable(1)), vec![]))
        );
    }

    #[test]
    fn a_probe_that_cannot_be_sent_ends_as_a_timeout_for_its_caller() {
        let mut lab = Lab::new(SocketKind::Raw);
        let probe = lab.engine.caller(0, 7).expect("a probe");
        assert_eq!(lab.engine.sent(probe, LOCAL, None), Some(timeout(vec![7])), "not sent");
        let probe = lab.engine.caller(0, 8).expect("nothing in flight to share");
        let request = lab.send(probe, 1);
        assert_eq!(lab.answer(&request, 2), reply(ms(1), vec![8]));
    }

    #[test]
    fn retargeting_leaves_the_probe_in_flight_expecting_its_old_address() {
        let mut lab = Lab::new(SocketKind::Raw);
        let request = lab.send_due(0);
        lab.engine.retarget(0, Some(IpAddr::V4(ELSEWHERE).into()));
        assert_eq!(lab.answer(&request, 4), reply(ms(4), vec![]));
        let probe = lab.engine.due(lab.at(10_000)).expect("due");
        assert_eq!(probe.address, Some(IpAddr::V4(ELSEWHERE).into()));
    }

    #[test]
    fn several_targets_are_spread_over_the_interval_and_their_lines_are_named() {
        let targets = [("a", Some(TARGET)), ("b", Some(OTHER)), ("c", Some(TARGET)), ("d", Some(OTHER))];
        let mut lab = Lab::with_targets(SocketKind::Raw, &targets);
        let mut due_at = Vec::new();
        for millis in (0..20_000).step_by(100) {
            while let Some(probe) = lab.engine.due(lab.at(millis)) {
                due_at.push((millis, probe.target));
                lab.engine.sent(probe, LOCAL, None);
            }
        }
        let expected = [0, 2500, 5000, 7500, 10_000, 12_500, 15_000, 17_500];
        assert_eq!(due_at, expected.iter().enumerate().map(|(i, &at)| (at, i % 4)).collect::<Vec<_>>());
        let probe = lab.engine.caller(1, 9).expect("a probe");
        let unsent = named((1, "b"), Some(IpAddr::V4(OTHER)), Outcome::Timeout, None, vec![9]);
        assert_eq!(lab.engine.sent(probe, LOCAL, None), Some(unsent));
    }

    #[test]
    fn a_reply_is_credited_only_to_its_own_targets_probe() {
        let mut lab = Lab::with_targets(SocketKind::Raw, &[("a", Some(TARGET)), ("b", Some(OTHER))]);
        let probe = lab.engine.caller(0, 1).expect("a probe to a");
        let to_a = lab.send(probe, 0);
        let probe = lab.engine.caller(1, 2).expect("b does not share a's probe");
        let to_b = lab.send(probe, 1);
        assert!(lab.engine.caller(0, 3).is_none(), "a's probe is shared");
        assert_eq!(lab.deliver(&reply_to(&to_a), OTHER, 2), Heard::Ignored, "b answering a's probe");
        assert_eq!(lab.deliver(&reply_to(&to_b), TARGET, 2), Heard::Ignored, "a answering b's probe");
        let b = named((1, "b"), Some(IpAddr::V4(OTHER)), Outcome::Reply(ms(2)), None, vec![2]);
        assert_eq!(lab.deliver(&reply_to(&to_b), OTHER, 3), Heard::Ended(b));
        let a = named((0, "a"), Some(IpAddr::V4(TARGET)), Outcome::Reply(ms(4)), None, vec![1, 3]);
        assert_eq!(lab.deliver(&reply_to(&to_a), TARGET, 4), Heard::Ended(a));
        assert_eq!(lab.deliver(&reply_to(&to_a), TARGET, 5), Heard::Duplicate(0), "counted against a");
        assert_eq!(lab.deliver(&reply_to(&to_b), OTHER, 5), Heard::Duplicate(1), "counted against b");
    }

    #[test]
    fn a_target_without_an_address_gets_timeouts_unsent_until_it_has_one() {
        let mut lab = Lab::with_targets(SocketKind::Raw, &[("a", None)]);
        let probe = lab.engine.due(lab.at(0)).expect("due");
        assert_eq!(probe.address, None);
        let mut request = Vec::new();
        lab.engine.request(&probe, &mut request);
        assert!(request.is_empty(), "nothing to send");
        assert_eq!(lab.engine.sent(probe, LOCAL, None), Some(ended(None, Outcome::Timeout, None, vec![])));
        lab.engine.retarget(0, Some(IpAddr::V4(TARGET).into()));
        let request = lab.send_due(10_000);
        assert_eq!(lab.answer(&request, 10_003), reply(ms(3), vec![]));
    }

    #[test]
    fn ipv6_targets_are_probed_with_icmpv6_beside_ipv4_ones() {
        const TARGET6: Ipv6Addr = icmpv6::tests::TARGET;
        let targets = [("v4", Some(IpAddr::V4(TARGET))), ("v6", Some(IpAddr::V6(TARGET6)))];
        for kind in [SocketKind::Raw, SocketKind::Datagram] {
            let mut lab = Lab::with_addresses(kind, &targets);
            let probe = lab.engine.caller(1, 6).expect("a probe to v6");
            let request = lab.send(probe, 0);
            assert_eq!(request[0], icmpv6::ECHO_REQUEST);
            let mut reply = request.clone();
            reply[0] = icmpv6::ECHO_REPLY;
            assert_eq!(lab.deliver6(&reply, icmpv6::tests::US, 1), Heard::Ignored, "not from where it went");
            assert_eq!(lab.deliver(&reply_to(&request), TARGET, 1), Heard::Ignored, "ICMP is not ICMPv6");
            let v6 = |outcome, error, waiters| {
                named((1, "v6"), Some(IpAddr::V6(TARGET6)), outcome, error, waiters)
            };
            assert_eq!(
                lab.deliver6(&reply, TARGET6, 2),
                Heard::Ended(v6(Outcome::Reply(ms(2)), None, vec![6]))
            );

            let probe = lab.engine.caller(1, 7).expect("another probe to v6");
            let request = lab.send(probe, 10);
            let original = crate::packet::ipv6::tests::wrap(icmpv6::tests::US, TARGET6, &request);
            let error = icmpv6::tests::error(icmpv6::DESTINATION_UNREACHABLE, 3, 0, &original);
            let no_port = Some(ErrorKind::Unreachable6(3));
            assert_eq!(
                lab.deliver6(&error, TARGET6, 11),
                Heard::Ended(v6(Outcome::Timeout, no_port, vec![7]))
            );
        }
    }
}
