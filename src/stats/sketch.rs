//! A quantile sketch in the manner of DDSketch (Masson, Rim, Lee, VLDB 2019): values fall in
//! logarithmic buckets `(γ^(i-1), γ^i]` with `γ = (1 + α) / (1 - α)`, and a bucket stands for
//! `2γ^i / (γ + 1)`, which is within `α` relative of every value in it. With `α` = 1 %, every
//! quantile read from the sketch is within 1 % relative of the sample at that rank.
//!
//! Only buckets that hold a value are kept, each in 4 bytes (index and count packed in a
//! `u32`), sorted by index. Nanoseconds from 1 to `u64::MAX` span `MAX_INDEX` buckets, so a
//! sketch holds at most min(values, `MAX_INDEX` + 1) entries, and one more for each
//! `MAX_COUNT` values that land in a single bucket.

/// The relative accuracy.
const ALPHA: f64 = 0.01;
const GAMMA: f64 = (1.0 + ALPHA) / (1.0 - ALPHA);
const COUNT_BITS: u32 = 20;
/// The most values one entry counts; more in its bucket take another entry.
const MAX_COUNT: u32 = (1 << COUNT_BITS) - 1;
/// The bucket of `u64::MAX` nanoseconds (584 years); 0 holds exactly 0 ns.
#[cfg(test)]
pub const MAX_INDEX: u32 = 2219;

/// A sketch of nanosecond values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    /// `index << COUNT_BITS | count`, sorted.
    entries: Vec<u32>,
}

/// The bucket holding `nanos`: 0 for 0, else 1 + ⌈log_γ nanos⌉ (1 ns is bucket 1).
fn index(nanos: u64) -> u32 {
    if nanos == 0 {
        return 0;
    }
    1 + ((nanos as f64).ln() / GAMMA.ln()).ceil() as u32
}

/// What bucket `index` stands for, in nanoseconds.
fn value(index: u32) -> f64 {
    if index == 0 { 0.0 } else { 2.0 * GAMMA.powi(index as i32 - 1) / (GAMMA + 1.0) }
}

impl Sketch {
    pub fn add(&mut self, nanos: u64) {
        let index = index(nanos);
        let at = self.entries.partition_point(|&entry| entry >> COUNT_BITS < index);
        match self.entries.get_mut(at) {
            Some(entry) if *entry >> COUNT_BITS == index && *entry & MAX_COUNT < MAX_COUNT => *entry += 1,
            _ => self.entries.insert(at, index << COUNT_BITS | 1),
        }
    }

    /// Entries kept: the sketch's memory is 4 bytes each.
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// Gives back the room grown for values that will not come (the slot is full).
    pub fn shrink(&mut self) {
        self.entries.shrink_to_fit();
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Several sketches counted together, to read quantiles from.
#[derive(Debug, Default)]
pub struct Merged {
    /// Values per bucket index, up to the highest seen.
    counts: Vec<u64>,
    total: u64,
}

impl Merged {
    pub fn add(&mut self, sketch: &Sketch) {
        for entry in &sketch.entries {
            let (index, count) = ((entry >> COUNT_BITS) as usize, u64::from(entry & MAX_COUNT));
            if self.counts.len() <= index {
                self.counts.resize(index + 1, 0);
            }
            self.counts[index] += count;
            self.total += count;
        }
    }

    /// The value at rank ⌊q (n − 1)⌋ of the n values sorted (0 the smallest), within `ALPHA`
    /// relative; None when there is none.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total.checked_sub(1)?;
        let rank = (q.clamp(0.0, 1.0) * total as f64).floor() as u64;
        let mut below = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            below += count;
            if below > rank {
                return Some(value(index as u32));
            }
        }
        None
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*): the tests need no crate for it.
    pub struct Random(u64);

    impl Random {
        pub fn new(seed: u64) -> Self {
            Random(seed | 1)
        }

        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// Uniform in [0, 1).
        pub fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// The largest relative error over many quantiles, against the sorted values.
    fn worst_error(values: &[u64]) -> f64 {
        let mut sketch = Sketch::default();
        values.iter().for_each(|&v| sketch.add(v));
        let mut merged = Merged::default();
        merged.add(&sketch);
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let mut worst: f64 = 0.0;
        for q in (0..=1000).map(|k| k as f64 / 1000.0).chain([0.5, 0.9, 0.99, 0.999]) {
            let exact = sorted[(q * (sorted.len() - 1) as f64).floor() as usize] as f64;
            let estimate = merged.quantile(q).unwrap();
            let error = if exact == 0.0 { estimate } else { (estimate - exact).abs() / exact };
            worst = worst.max(error);
        }
        worst
    }

    #[test]
    fn every_quantile_is_within_one_percent_of_the_exact_one() {
        let mut random = Random::new(7);
        let uniform: Vec<u64> = (0..100_000).map(|_| 100_000 + random.next() % 900_000).collect();
        // Skewed: log-uniform over 1 µs .. 10 s, and a heavy tail over a narrow body.
        let log_uniform: Vec<u64> = (0..100_000).map(|_| (1e3 * 1e7f64.powf(random.unit())) as u64).collect();
        let tailed: Vec<u64> = (0..100_000)
            .map(|i| {
                if i % 50 == 0 {
                    50_000_000 + random.next() % 1_000_000_000
                } else {
                    250_000 + random.next() % 20_000
                }
            })
            .collect();
        let file_precision: Vec<u64> = (0..10_000).map(|_| (random.next() % 2_000) * 10_000).collect();
        let cases = [
            ("uniform 0.1..1 ms", uniform),
            ("log-uniform 1 µs..10 s", log_uniform),
            ("2% tail up to 1 s", tailed),
            ("0..20 ms in 10 µs steps, zeros too", file_precision),
            ("one value", vec![270_000]),
            ("extremes", vec![0, 1, u64::MAX]),
        ];
        for (name, values) in cases {
            let worst = worst_error(&values);
            // α itself at a bucket's edge, give or take float rounding.
            assert!(worst <= ALPHA + 1e-9, "{name}: worst relative error {worst}");
        }
    }

    #[test]
    fn a_million_distinct_values_keep_at_most_a_bucket_each() {
        let mut random = Random::new(11);
        let mut sketch = Sketch::default();
        for _ in 0..1_000_000 {
            sketch.add(random.next() >> (random.next() % 64));
        }
        assert!(sketch.entries() <= MAX_INDEX as usize + 1, "{}", sketch.entries());
        assert_eq!(index(u64::MAX), MAX_INDEX, "MAX_INDEX is the bucket of the largest value");
        // Values in 0.2 .. 0.4 ms: log_γ 2 ≈ 35 buckets, whatever their number.
        let mut narrow = Sketch::default();
        (0..1_000_000u64).for_each(|i| narrow.add(200_000 + i % 200_000));
        assert!(narrow.entries() <= 36, "{}", narrow.entries());
    }

    #[test]
    fn a_bucket_over_its_count_takes_another_entry_and_counts_stay_exact() {
        let mut sketch = Sketch::default();
        let n = u64::from(MAX_COUNT) + 10;
        (0..n).for_each(|_| sketch.add(1_000));
        sketch.add(5);
        assert_eq!(sketch.entries(), 3);
        let mut merged = Merged::default();
        merged.add(&sketch);
        assert_eq!(merged.total, n + 1);
        assert!((merged.quantile(1.0).unwrap() - 1_000.0).abs() <= 10.0);
        assert!((merged.quantile(0.0).unwrap() - 5.0).abs() <= 0.05);
        assert_eq!(Merged::default().quantile(0.5), None);
    }
}
