//! The prober's decisions without I/O: when a probe is due, which caller shares which probe,
//! which packet answers which probe, when a probe has timed out. The prober thread
//! (`prober.rs`) hands it the time, callers, packets and the outcome of each send, and carries
//! out what it returns: requests to send, and ended probes to store and hand to their callers.
//! It owns no socket, clock or thread, so tests drive it with a fake clock and scripted packets.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::config::duration;
use crate::line::{Line, LocalTime, Outcome};
use crate::net::{Arrival, NetError, QueuedError, SocketKind};
use crate::packet::icmp::{self, Echo, ErrorKind, Message, Quoted};
use crate::packet::{self, Token};
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

pub struct Settings {
    pub target: Ipv4Addr,
    pub interval: Duration,
    pub timeout: Duration,
    pub identity: Identity,
}

/// A probe to send now. Encode it with `Engine::request`, send it, and report with
/// `Engine::sent` before asking the engine for anything else.
#[derive(Debug)]
pub struct Probe<W> {
    ticket: Ticket,
    pub target: Ipv4Addr,
    waiter: Option<W>,
}

/// A probe that has ended: its line, for the results file and for the callers waiting on it.
#[derive(Debug, PartialEq)]
pub struct Ended<W> {
    pub line: Line,
    pub waiters: Vec<W>,
}

/// A probe waiting for its reply: where it went, when, and who wants its line.
struct Pending<W> {
    target: Ipv4Addr,
    sent: LocalTime,
    waiters: Vec<W>,
}

impl<W> Pending<W> {
    fn end(self, outcome: Outcome) -> Ended<W> {
        Ended { line: Line { sent: self.sent, target: None, outcome }, waiters: self.waiters }
    }
}

/// The prober's state, generic over `W`, whatever stands for a caller waiting for a line.
pub struct Engine<W> {
    target: Ipv4Addr,
    timeout: Duration,
    identity: Identity,
    kind: SocketKind,
    tracker: Tracker<Pending<W>>,
    schedule: Schedule,
    ignored_log: Throttle,
}

impl<W> Engine<W> {
    /// The first scheduled probe is due at `now`.
    pub fn new(settings: &Settings, kind: SocketKind, now: Instant) -> Self {
        Engine {
            target: settings.target,
            timeout: settings.timeout,
            identity: settings.identity,
            kind,
            tracker: Tracker::new(settings.timeout),
            schedule: Schedule::new(now, settings.interval),
            ignored_log: Throttle::for_journal(),
        }
    }

    /// The scheduled probe, if one is due at `now`.
    pub fn due(&mut self, now: Instant) -> Option<Probe<W>> {
        let skipped = self.schedule.take_due(now)?;
        if skipped > 0 {
            warn!("the prober fell behind and skipped {skipped} scheduled probes");
        }
        Some(self.probe(None))
    }

    /// A caller wants a line: it shares the newest probe in flight, or gets a probe of its own.
    pub fn caller(&mut self, waiter: W) -> Option<Probe<W>> {
        match self.tracker.newest_mut() {
            Some(pending) => {
                pending.waiters.push(waiter);
                None
            }
            None => Some(self.probe(Some(waiter))),
        }
    }

    /// Probes go to `target` from now on; a probe in flight still expects its reply from the
    /// address it went to.
    pub fn retarget(&mut self, target: Ipv4Addr) {
        if target != self.target {
            info!("target is now {target} (was {})", self.target);
            self.target = target;
        }
    }

    fn probe(&self, waiter: Option<W>) -> Probe<W> {
        Probe { ticket: self.tracker.next_ticket(), target: self.target, waiter }
    }

    /// The echo request for `probe`, appended to `out`.
    pub fn request(&self, probe: &Probe<W>, out: &mut Vec<u8>) {
        let payload = packet::payload(self.identity.token, probe.ticket.counter);
        Echo { identifier: self.identity.identifier, sequence: probe.ticket.sequence, payload: &payload }
            .encode_request(out);
    }

    /// `probe` left at `sent` (its monotonic stamp, or why it could not go), at local time
    /// `local`. A probe that could not be sent has ended.
    pub fn sent(
        &mut self,
        probe: Probe<W>,
        local: LocalTime,
        sent: Result<Instant, NetError>,
    ) -> Option<Ended<W>> {
        let pending =
            Pending { target: probe.target, sent: local, waiters: probe.waiter.into_iter().collect() };
        match sent {
            Ok(at) => {
                self.tracker.sent(probe.ticket, at, pending);
                None
            }
            Err(err) => {
                warn!("{err}");
                Some(pending.end(Outcome::Timeout))
            }
        }
    }

    /// A packet read from the socket at `now`; the probe it ends, if it is a reply or an error
    /// about one in flight.
    pub fn packet(&mut self, data: &[u8], arrival: Arrival, now: Instant) -> Option<Ended<W>> {
        let raw = self.kind == SocketKind::Raw;
        let ours = |identifier: u16| !raw || identifier == self.identity.identifier;
        let source = arrival.source;
        match packet::parse(data, self.kind.framing()) {
            Err(err) => {
                debug!("ignored a packet from {source}: {err}");
                None
            }
            Ok(Message::EchoReply { echo, checksum_valid }) if ours(echo.identifier) => {
                self.reply(echo, checksum_valid, arrival, now)
            }
            Ok(Message::Error { kind, quoted, checksum_valid })
                if checksum_valid && ours(quoted.identifier) =>
            {
                self.fail(kind, quoted, source)
            }
            Ok(_) => None,
        }
    }

    fn reply(
        &mut self,
        echo: Echo,
        checksum_valid: bool,
        arrival: Arrival,
        now: Instant,
    ) -> Option<Ended<W>> {
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
        // Each probe keeps the address it went to, so a SIGHUP that moved the target does not
        // turn the probe in flight into a timeout.
        if let Some(sent_to) = self.tracker.get(counter).map(|pending| pending.target)
            && sent_to != source
        {
            return self.ignored(
                now,
                format_args!("ignored a reply to probe {sequence} from {source}: it went to {sent_to}"),
            );
        }
        match self.tracker.reply(sequence, counter, arrival.at) {
            Verdict::Answered { rtt, tag } => {
                debug!("reply from {source} to probe {sequence}: {} µs", rtt.as_micros());
                Some(tag.end(Outcome::Reply(rtt)))
            }
            Verdict::Duplicate => {
                self.ignored(now, format_args!("ignored a duplicate reply from {source} to probe {sequence}"))
            }
            Verdict::Late => {
                let timeout = duration::format(self.timeout);
                self.ignored(
                    now,
                    format_args!("ignored a reply from {source} to probe {sequence}: it came after the {timeout} timeout"),
                )
            }
            Verdict::Unknown => self.ignored(
                now,
                format_args!("ignored a reply from {source} naming probe {sequence}, which was never sent"),
            ),
        }
    }

    /// Logs why a packet was ignored, unless a flood of them is being held back.
    fn ignored(&mut self, now: Instant, why: fmt::Arguments) -> Option<Ended<W>> {
        self.ignored_log.warn(now, why);
        None
    }

    /// An error the kernel queued about one of our requests (datagram sockets only); `request`
    /// is the request it returns.
    pub fn queued_error(&mut self, request: &[u8], error: QueuedError) -> Option<Ended<W>> {
        match icmp::queued_error(error.icmp_type, error.code, request, error.destination) {
            Some((kind, quoted)) => self.fail(kind, quoted, error.reporter),
            None => {
                debug!("ignored a queued ICMP error of type {} from {}", error.icmp_type, error.reporter);
                None
            }
        }
    }

    /// Ends the probe an ICMP error is about, if it is still waiting.
    fn fail(&mut self, kind: ErrorKind, quoted: Quoted, reporter: Ipv4Addr) -> Option<Ended<W>> {
        let about_probe = |pending: &Pending<W>| pending.target == quoted.destination;
        let pending = self.tracker.fail(quoted.sequence, about_probe)?;
        warn!("probe {} to {}: {kind} (reported by {reporter})", quoted.sequence, quoted.destination);
        Some(pending.end(Outcome::Timeout))
    }

    /// The probes whose timeout has passed at `now`, oldest first.
    pub fn expire(&mut self, now: Instant) -> Vec<Ended<W>> {
        let timeout = duration::format(self.timeout);
        let expired = self.tracker.expire(now);
        expired
            .into_iter()
            .map(|pending| {
                warn!("no reply from {} within {timeout}", pending.target);
                pending.end(Outcome::Timeout)
            })
            .collect()
    }

    /// When the engine next has something to do unprompted: a probe due, or one timing out.
    pub fn next_wake(&self) -> Instant {
        let next_due = self.schedule.next_due();
        self.tracker.next_deadline().map_or(next_due, |deadline| deadline.min(next_due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum;
    use crate::packet::icmp::tests::reply_to;
    use crate::packet::ipv4::tests::wrap;
    use nix::errno::Errno;

    const US: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const TARGET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
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
        fn new(kind: SocketKind) -> Self {
            let t0 = Instant::now();
            let settings =
                Settings { target: TARGET, interval: INTERVAL, timeout: TIMEOUT, identity: IDENTITY };
            Lab { engine: Engine::new(&settings, kind, t0), kind, t0 }
        }

        fn at(&self, millis: u64) -> Instant {
            self.t0 + ms(millis)
        }

        /// Sends `probe` at `millis`; its request as it went on the wire.
        fn send(&mut self, probe: Probe<u32>, millis: u64) -> Vec<u8> {
            let mut request = Vec::new();
            self.engine.request(&probe, &mut request);
            assert!(self.engine.sent(probe, LOCAL, Ok(self.at(millis))).is_none());
            request
        }

        /// The scheduled probe due at `millis`, sent then.
        fn send_due(&mut self, millis: u64) -> Vec<u8> {
            let probe = self.engine.due(self.at(millis)).expect("a probe is due");
            self.send(probe, millis)
        }

        /// `icmp` from `source` arriving at `millis`, framed as this socket kind delivers it.
        fn deliver(&mut self, icmp: &[u8], source: Ipv4Addr, millis: u64) -> Option<Ended<u32>> {
            let data = match self.kind {
                SocketKind::Raw => wrap(source, US, 0, icmp),
                SocketKind::Datagram => icmp.to_vec(),
            };
            let arrival = Arrival { len: data.len(), source, at: self.at(millis) };
            self.engine.packet(&data, arrival, self.at(millis))
        }

        fn answer(&mut self, request: &[u8], millis: u64) -> Option<Ended<u32>> {
            self.deliver(&reply_to(request), TARGET, millis)
        }
    }

    fn reply(rtt: Duration, waiters: Vec<u32>) -> Option<Ended<u32>> {
        Some(Ended { line: Line { sent: LOCAL, target: None, outcome: Outcome::Reply(rtt) }, waiters })
    }

    fn timeout(waiters: Vec<u32>) -> Ended<u32> {
        Ended { line: Line { sent: LOCAL, target: None, outcome: Outcome::Timeout }, waiters }
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
        assert_eq!(lab.engine.next_wake(), lab.at(1000), "the probe's deadline comes first");
        assert_eq!(lab.answer(&request, 5), reply(ms(5), vec![]));
        assert_eq!(lab.engine.next_wake(), lab.at(10_000), "then the next slot");
        assert!(lab.engine.due(lab.at(9_999)).is_none());
        // A slow loop does not shift the grid.
        lab.send_due(10_300);
        assert_eq!(lab.engine.expire(lab.at(11_300)), vec![timeout(vec![])]);
        assert_eq!(lab.engine.next_wake(), lab.at(20_000));
    }

    #[test]
    fn callers_share_the_probe_in_flight_and_a_later_caller_gets_a_new_one() {
        let mut lab = Lab::new(SocketKind::Raw);
        let probe = lab.engine.caller(1).expect("nothing in flight: a probe of its own");
        let request = lab.send(probe, 0);
        assert!(lab.engine.caller(2).is_none());
        assert!(lab.engine.caller(3).is_none());
        assert_eq!(lab.answer(&request, 2), reply(ms(2), vec![1, 2, 3]));
        let probe = lab.engine.caller(4).expect("the shared probe has ended");
        let request = lab.send(probe, 3);
        assert_eq!(lab.answer(&request, 4), reply(ms(1), vec![4]));
    }

    #[test]
    fn duplicates_and_late_replies_end_nothing_and_are_never_credited_to_another_probe() {
        let mut lab = Lab::new(SocketKind::Raw);
        let first = lab.send_due(0);
        assert_eq!(lab.answer(&first, 3), reply(ms(3), vec![]));
        assert_eq!(lab.answer(&first, 4), None, "a duplicate");

        let probe = lab.engine.caller(1).expect("a probe");
        let slow = lab.send(probe, 100);
        assert_eq!(lab.engine.expire(lab.at(1099)), vec![]);
        assert_eq!(lab.engine.expire(lab.at(1100)), vec![timeout(vec![1])], "lost, never 0 ms");
        let probe = lab.engine.caller(2).expect("a probe");
        let next = lab.send(probe, 1200);
        assert_eq!(lab.answer(&slow, 1250), None, "the late reply is not the next probe's");
        assert_eq!(lab.answer(&next, 1260), reply(ms(60), vec![2]));
    }

    #[test]
    fn a_reply_that_is_not_exactly_the_echo_sent_is_ignored() {
        let mut lab = Lab::new(SocketKind::Raw);
        let request = lab.send_due(0);
        let good = reply_to(&request);
        let mut corrupt = good.clone();
        corrupt[20] ^= 1;
        assert_eq!(lab.deliver(&corrupt, TARGET, 1), None, "bad checksum");
        let mut foreign_payload = good.clone();
        foreign_payload[8] ^= 1;
        assert_eq!(lab.deliver(&resum(foreign_payload), TARGET, 1), None, "not our token");
        assert_eq!(lab.deliver(&good, ELSEWHERE, 1), None, "from an address it did not go to");
        let mut other_identifier = good.clone();
        other_identifier[4] ^= 1;
        assert_eq!(lab.deliver(&resum(other_identifier), TARGET, 1), None, "someone else's");
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
        let probe = lab.engine.caller(1).expect("a probe");
        let request = lab.send(probe, 0);
        let error_about = |destination: Ipv4Addr| {
            let quoted = wrap(US, destination, 0, &request);
            let mut error = vec![icmp::DESTINATION_UNREACHABLE, 1, 0, 0, 0, 0, 0, 0];
            error.extend_from_slice(&quoted[..28]);
            resum(error)
        };
        assert_eq!(lab.deliver(&error_about(ELSEWHERE), ELSEWHERE, 1), None, "about another destination");
        assert_eq!(lab.deliver(&error_about(TARGET), ELSEWHERE, 2), Some(timeout(vec![1])));
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
            destination,
            reporter: TARGET,
        };
        assert_eq!(lab.engine.queued_error(&request, error(ELSEWHERE)), None);
        assert_eq!(lab.engine.queued_error(&request, error(TARGET)), Some(timeout(vec![])));
    }

    #[test]
    fn a_probe_that_cannot_be_sent_ends_as_a_timeout_for_its_caller() {
        let mut lab = Lab::new(SocketKind::Raw);
        let probe = lab.engine.caller(7).expect("a probe");
        let failed = Err(NetError::SendTo { target: TARGET, errno: Errno::ENETUNREACH });
        assert_eq!(lab.engine.sent(probe, LOCAL, failed), Some(timeout(vec![7])));
        let probe = lab.engine.caller(8).expect("nothing in flight to share");
        let request = lab.send(probe, 1);
        assert_eq!(lab.answer(&request, 2), reply(ms(1), vec![8]));
    }

    #[test]
    fn retargeting_leaves_the_probe_in_flight_expecting_its_old_address() {
        let mut lab = Lab::new(SocketKind::Raw);
        let request = lab.send_due(0);
        lab.engine.retarget(ELSEWHERE);
        assert_eq!(lab.answer(&request, 4), reply(ms(4), vec![]));
        let probe = lab.engine.due(lab.at(10_000)).expect("due");
        assert_eq!(probe.target, ELSEWHERE);
    }
}
