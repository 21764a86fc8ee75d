//! Probes in flight, keyed by the 16-bit ICMP sequence number and checked against the full
//! probe counter carried in the payload. Decides whether a reply answers a probe, repeats an
//! answer, or comes too late; expires probes whose timeout has passed. Pure: callers pass `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One probe waiting for its reply, with the caller's data `T`.
#[derive(Debug)]
struct InFlight<T> {
    counter: u64,
    sent: Instant,
    deadline: Instant,
    tag: T,
}

/// What a reply turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<T> {
    /// The first valid reply to a probe in flight: the round trip and the probe's data.
    Answered { rtt: Duration, tag: T },
    /// Another reply to a probe already answered.
    Duplicate,
    /// A reply to a probe that had already timed out; it is never credited to another probe.
    Late,
    /// A reply naming a probe this run never sent.
    Unknown,
}

/// A numbered probe ready to go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub counter: u64,
    pub sequence: u16,
}

pub struct Tracker<T> {
    timeout: Duration,
    next_counter: u64,
    /// Ordered by send time; with one timeout for all, also by deadline.
    in_flight: VecDeque<InFlight<T>>,
    /// One bit per sequence number: answered since it was last sent (iputils keeps the same
    /// table to report duplicates).
    answered: Box<[u64; 1024]>,
}

impl<T> Tracker<T> {
    pub fn new(timeout: Duration) -> Self {
        Tracker { timeout, next_counter: 0, in_flight: VecDeque::new(), answered: Box::new([0; 1024]) }
    }

    /// Numbers the next probe.
    pub fn next_ticket(&self) -> Ticket {
        Ticket { counter: self.next_counter, sequence: self.next_counter as u16 }
    }

    /// Records that the probe `ticket` left at `sent`.
    pub fn sent(&mut self, ticket: Ticket, sent: Instant, tag: T) {
        debug_assert_eq!(ticket.counter, self.next_counter);
        self.next_counter += 1;
        self.set_answered(ticket.sequence, false);
        self.in_flight.push_back(InFlight {
            counter: ticket.counter,
            sent,
            deadline: sent + self.timeout,
            tag,
        });
    }

    /// Classifies a reply with `sequence` whose payload names `counter`, received at `received`.
    /// A reply that arrives after the deadline counts as late even if `expire` has not run yet.
    pub fn reply(&mut self, sequence: u16, counter: u64, received: Instant) -> Verdict<T> {
        if counter >= self.next_counter || counter as u16 != sequence {
            return Verdict::Unknown;
        }
        match self.in_flight.iter().position(|p| p.counter == counter) {
            Some(index) if received <= self.in_flight[index].deadline => {
                let probe = self.in_flight.remove(index).expect("index from position");
                self.set_answered(sequence, true);
                Verdict::Answered { rtt: received.saturating_duration_since(probe.sent), tag: probe.tag }
            }
            Some(_) => Verdict::Late,
            None if self.is_answered(sequence) => Verdict::Duplicate,
            None => Verdict::Late,
        }
    }

    /// The data of probe `counter` while it is in flight.
    pub fn get(&self, counter: u64) -> Option<&T> {
        self.in_flight.iter().find(|p| p.counter == counter).map(|p| &p.tag)
    }

    /// Ends the probe with `sequence` early, for an ICMP error that quotes it, if `quotes`
    /// agrees that the error is about that probe.
    pub fn fail(&mut self, sequence: u16, quotes: impl Fn(&T) -> bool) -> Option<T> {
        let index = self.in_flight.iter().position(|p| p.counter as u16 == sequence && quotes(&p.tag))?;
        self.in_flight.remove(index).map(|probe| probe.tag)
    }

    /// Removes and returns the probes whose deadline is at or before `now`, oldest first.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let mut expired = Vec::new();
        while self.in_flight.front().is_some_and(|p| p.deadline <= now) {
            expired.extend(self.in_flight.pop_front().map(|p| p.tag));
        }
        expired
    }

    /// When the oldest probe in flight times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.front().map(|p| p.deadline)
    }

    /// The data of the most recent probe in flight that is `wanted`, so a new caller can wait
    /// for it.
    pub fn newest_mut(&mut self, wanted: impl Fn(&T) -> bool) -> Option<&mut T> {
        self.in_flight.iter_mut().rev().map(|p| &mut p.tag).find(|tag| wanted(tag))
    }

    fn is_answered(&self, sequence: u16) -> bool {
        self.answered[usize::from(sequence / 64)] & (1 << (sequence % 64)) != 0
    }

    fn set_answered(&mut self, sequence: u16, answered: bool) {
        let word = &mut self.answered[usize::from(sequence / 64)];
        let bit = 1u64 << (sequence % 64);
        if answered { *word |= bit } else { *word &= !bit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn send(tracker: &mut Tracker<&'static str>, at: Instant, tag: &'static str) -> Ticket {
        let ticket = tracker.next_ticket();
        tracker.sent(ticket, at, tag);
        ticket
    }

    #[test]
    fn a_reply_answers_its_probe_once_then_counts_as_duplicate() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(TIMEOUT);
        let a = send(&mut tracker, t0, "a");
        assert_eq!(
            tracker.reply(a.sequence, a.counter, t0 + ms(3)),
            Verdict::Answered { rtt: ms(3), tag: "a" }
        );
        assert_eq!(tracker.reply(a.sequence, a.counter, t0 + ms(4)), Verdict::Duplicate);
        assert_eq!(tracker.next_deadline(), None);
    }

    #[test]
    fn a_reply_after_the_timeout_is_late_and_never_credited_to_a_later_probe() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(TIMEOUT);
        let a = send(&mut tracker, t0, "a");
        assert_eq!(tracker.reply(a.sequence, a.counter, t0 + TIMEOUT + ms(1)), Verdict::Late);
        assert_eq!(tracker.expire(t0 + TIMEOUT), vec!["a"]);
        let b = send(&mut tracker, t0 + TIMEOUT + ms(10), "b");
        assert_eq!(tracker.reply(a.sequence, a.counter, t0 + TIMEOUT + ms(11)), Verdict::Late);
        assert_eq!(tracker.next_deadline(), Some(t0 + TIMEOUT + ms(10) + TIMEOUT));
        assert!(matches!(
            tracker.reply(b.sequence, b.counter, t0 + TIMEOUT + ms(12)),
            Verdict::Answered { tag: "b", .. }
        ));
    }

    #[test]
    fn a_wrapped_sequence_number_does_not_match_an_older_counter() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(TIMEOUT);
        for _ in 0..65_536 {
            let ticket = send(&mut tracker, t0, "old");
            tracker.reply(ticket.sequence, ticket.counter, t0);
        }
        let new = send(&mut tracker, t0, "new");
        assert_eq!(new.sequence, 0);
        assert_eq!(tracker.reply(0, 0, t0), Verdict::Late, "counter 0 was answered long ago");
        assert!(matches!(tracker.reply(0, 65_536, t0), Verdict::Answered { tag: "new", .. }));
    }

    #[test]
    fn unknown_counters_and_mismatched_sequences_are_unknown() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(TIMEOUT);
        let a = send(&mut tracker, t0, "a");
        assert_eq!(tracker.reply(a.sequence, 99, t0), Verdict::Unknown);
        assert_eq!(tracker.reply(a.sequence + 1, a.counter, t0), Verdict::Unknown);
        assert_eq!(tracker.next_deadline(), Some(t0 + TIMEOUT), "still waiting for the real reply");
    }

    #[test]
    fn expiry_takes_only_probes_past_their_deadline_in_order() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(TIMEOUT);
        send(&mut tracker, t0, "a");
        send(&mut tracker, t0 + ms(500), "b");
        send(&mut tracker, t0 + ms(1000), "c");
        assert_eq!(tracker.expire(t0 + TIMEOUT - ms(1)), Vec::<&str>::new());
        assert_eq!(tracker.expire(t0 + TIMEOUT + ms(600)), vec!["a", "b"]);
        assert_eq!(tracker.newest_mut(|_| true), Some(&mut "c"));
    }

    #[test]
    fn the_newest_probe_wanted_is_found_among_others() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(TIMEOUT);
        for (at, tag) in [(0, "a1"), (1, "b1"), (2, "a2"), (3, "b2")] {
            send(&mut tracker, t0 + ms(at), tag);
        }
        assert_eq!(tracker.newest_mut(|tag| tag.starts_with('a')), Some(&mut "a2"));
        assert_eq!(tracker.newest_mut(|tag| tag.starts_with('c')), None);
    }

    #[test]
    fn an_error_ends_the_probe_it_quotes() {
        let t0 = Instant::now();
        let mut tracker = Tracker::new(TIMEOUT);
        let a = send(&mut tracker, t0, "a");
        assert_eq!(tracker.get(a.counter), Some(&"a"));
        assert_eq!(tracker.fail(a.sequence.wrapping_add(1), |_| true), None);
        assert_eq!(tracker.fail(a.sequence, |tag| *tag == "b"), None, "an error about another probe");
        assert_eq!(tracker.fail(a.sequence, |tag| *tag == "a"), Some("a"));
        assert_eq!(tracker.get(a.counter), None);
        assert_eq!(tracker.reply(a.sequence, a.counter, t0 + ms(1)), Verdict::Late);
    }
}
