//! Fixed-rate scheduling: probe k is due at start + k × interval, however long earlier probes
//! took. Slots missed while the process was stalled are skipped, not fired in a burst.

use std::time::{Duration, Instant};

pub struct Schedule {
    start: Instant,
    interval: Duration,
    next: u64,
}

impl Schedule {
    /// The first probe is due at `start`.
    pub fn new(start: Instant, interval: Duration) -> Self {
        Schedule { start, interval, next: 0 }
    }

    pub fn next_due(&self) -> Instant {
        self.start + self.interval * self.next as u32
    }

    /// If a probe is due at `now`, moves past it and returns how many slots were skipped.
    pub fn take_due(&mut self, now: Instant) -> Option<u64> {
        if now < self.next_due() {
            return None;
        }
        let elapsed = now.duration_since(self.start).as_nanos() / self.interval.as_nanos();
        let current = elapsed as u64;
        let skipped = current - self.next;
        self.next = current + 1;
        Some(skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stay_on_the_grid_when_probes_run_late() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut schedule = Schedule::new(t0, second);
        assert_eq!(schedule.take_due(t0), Some(0));
        assert_eq!(schedule.next_due(), t0 + second);
        assert_eq!(schedule.take_due(t0 + Duration::from_millis(999)), None);
        assert_eq!(schedule.take_due(t0 + Duration::from_millis(1_300)), Some(0));
        assert_eq!(schedule.next_due(), t0 + 2 * second, "a late probe does not shift the next");
    }

    #[test]
    fn a_stall_skips_missed_slots_instead_of_bursting() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(t0, Duration::from_secs(1));
        schedule.take_due(t0);
        assert_eq!(schedule.take_due(t0 + Duration::from_millis(4_500)), Some(3));
        assert_eq!(schedule.next_due(), t0 + Duration::from_secs(5));
        assert_eq!(schedule.take_due(t0 + Duration::from_millis(4_600)), None);
    }
}
