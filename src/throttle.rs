//! Keeps a flood of like log lines (forged or stray replies, say) from filling the journal:
//! at most a burst of them per window, and a count of those held back.

use std::fmt;
use std::time::{Duration, Instant};

use log::warn;

/// A journal line of one kind (a forged reply, a failed write) at most this often in a burst,
/// per window: a flood of them must not fill the journal.
const JOURNAL_BURST: u32 = 20;
const JOURNAL_WINDOW: Duration = Duration::from_secs(60);

pub struct Throttle {
    window: Duration,
    burst: u32,
    window_start: Option<Instant>,
    admitted: u32,
    held_back: u64,
}

impl Throttle {
    pub fn new(window: Duration, burst: u32) -> Self {
        Throttle { window, burst, window_start: None, admitted: 0, held_back: 0 }
    }

    /// The throttle for one kind of journal line.
    pub fn for_journal() -> Self {
        Throttle::new(JOURNAL_WINDOW, JOURNAL_BURST)
    }

    /// Logs `line` as a warning unless it is held back, first saying how many were held back
    /// before it.
    pub fn warn(&mut self, now: Instant, line: fmt::Arguments) {
        if let Some(held_back) = self.admit(now) {
            if held_back > 0 {
                warn!("{held_back} more lines like the next were not logged, to keep the journal readable");
            }
            warn!("{line}");
        }
    }

    /// Whether a line may be logged at `now`: `Some` with the number of lines held back
    /// since the last one logged, or `None` to hold this one back too.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let window_over = self.window_start.is_none_or(|start| now.duration_since(start) >= self.window);
        if window_over {
            self.window_start = Some(now);
            self.admitted = 0;
        }
        if self.admitted == self.burst {
            self.held_back += 1;
            return None;
        }
        self.admitted += 1;
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_window_passes_and_the_rest_is_counted() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(60), 3);
        let first: Vec<_> = (0..5).map(|_| throttle.admit(start)).collect();
        assert_eq!(first, [Some(0), Some(0), Some(0), None, None]);
        let later = start + Duration::from_secs(59);
        assert_eq!(throttle.admit(later), None, "the window is not over");
        let next_window = start + Duration::from_secs(60);
        assert_eq!(throttle.admit(next_window), Some(3), "three were held back");
        assert_eq!(throttle.admit(next_window), Some(0));
    }
}
