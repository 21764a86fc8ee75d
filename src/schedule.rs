//! Fixed-rate scheduling: probe k is due at start + k × interval, however long earlier probes
//! took. Slots missed while the process was stalled are skipped, not fired in a burst.

use std::time::{Duration, Instant};

pub struct Schedule {
    interval: Duration,
    next_due: Instant,
}

impl Schedule {
    /// The first probe is due at `start`.
    pub fn new(start: Instant, interval: Duration) -> Self {
        Schedule { interval, next_due: start }
    }

    pub fn next_due(&self) -> Instant {
        self.next_due
    }

    /// If a probe is due at `now`, moves past it and returns how many slots were skipped.
    pub fn take_due(&mut self, now: Instant) -> Option<u64> {
        let late = now.checked_duration_since(self.next_due)?;
        let skipped = late.as_nanos() / self.interval.as_nanos();
        let advance = self.interval.as_nanos() * (skipped + 1);
        self.next_due += Duration::from_nanos(u64::try_from(advance).unwrap_or(u64::MAX));
        Some(u64::try_from(skipped).unwrap_or(u64::MAX))
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
