//! A bounded log-bucket histogram of durations, for percentiles of response times,
//! RTTs and idle times per service port without keeping the samples.
//!
//! Values are nanoseconds. Each power of two is split into 32 equal buckets, so a bucket
//! spans at most 1/32 of its lower bound: [`Histogram::quantile`] returns the bucket's
//! midpoint, within ±1.6 % of the true sample (values below 64 ns are exact). Buckets
//! are stored sparsely (only those holding samples), so a histogram costs a few hundred
//! bytes for realistic data and at most 16 KiB for any data. Count, sum, min and max are
//! exact.

use serde::Serialize;

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

/// Durations in nanoseconds, bucketed logarithmically. Serialized as its summary:
/// count, min, mean, p50, p90, p99 and max.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    pub count: u64,
    pub sum_ns: u128,
    pub min_ns: u64,
    pub max_ns: u64,
    /// (bucket index, samples), by index.
    buckets: Vec<(u16, u64)>,
}

fn bucket(v: u64) -> u16 {
    if v < 2 * SUB {
        return v as u16;
    }
    let major = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let sub = (v >> (major - SUB_BITS)) & (SUB - 1);
    ((major - SUB_BITS) as u64 * SUB + SUB + sub) as u16
}

/// Lower bound and width of a bucket.
fn bounds(b: u16) -> (u64, u64) {
    let b = u64::from(b);
    if b < 2 * SUB {
        return (b, 1);
    }
    let major = (b - SUB) / SUB + u64::from(SUB_BITS);
    let sub = b % SUB;
    let width = 1u64 << (major - u64::from(SUB_BITS));
    ((1u64 << major) + sub * width, width)
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Adds a sample; negative durations (clock steps in the capture) count as 0.
    pub fn add(&mut self, ns: i64) {
        self.add_n(ns, 1);
    }

    fn add_n(&mut self, ns: i64, n: u64) {
        let v = ns.max(0) as u64;
        if self.count == 0 || v < self.min_ns {
            self.min_ns = v;
        }
        self.max_ns = self.max_ns.max(v);
        self.count += n;
        self.sum_ns += u128::from(v) * u128::from(n);
        let b = bucket(v);
        match self.buckets.binary_search_by_key(&b, |e| e.0) {
            Ok(i) => self.buckets[i].1 += n,
            Err(i) => self.buckets.insert(i, (b, n)),
        }
    }

    /// Adds all of another histogram's samples.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        let (min, max) = (other.min_ns, other.max_ns);
        if self.count == 0 || min < self.min_ns {
            self.min_ns = min;
        }
        self.max_ns = self.max_ns.max(max);
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        for &(b, n) in &other.buckets {
            match self.buckets.binary_search_by_key(&b, |e| e.0) {
                Ok(i) => self.buckets[i].1 += n,
                Err(i) => self.buckets.insert(i, (b, n)),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `q` quantile (0.5 for the median, 0.99 for p99) by nearest rank: the bucket
    /// holding the ⌈q·count⌉-th smallest sample, as its midpoint clamped to [min, max].
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(b, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let (lo, width) = bounds(b);
                return Some((lo + width / 2).clamp(self.min_ns, self.max_ns));
            }
        }
        Some(self.max_ns)
    }

    /// The mean, exact.
    pub fn mean(&self) -> Option<u64> {
        (self.count > 0).then(|| (self.sum_ns / u128::from(self.count)) as u64)
    }

    /// Samples of at least `ns` (counted by bucket: exact to the bucket's precision).
    pub fn count_at_least(&self, ns: u64) -> u64 {
        self.buckets.iter().filter(|(b, _)| bounds(*b).0 >= ns).map(|(_, n)| n).sum()
    }
}

impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Summary {
            count: u64,
            min_ns: Option<u64>,
            mean_ns: Option<u64>,
            p50_ns: Option<u64>,
            p90_ns: Option<u64>,
            p99_ns: Option<u64>,
            max_ns: Option<u64>,
        }
        let some = |v: u64| (self.count > 0).then_some(v);
        Summary {
            count: self.count,
            min_ns: some(self.min_ns),
            mean_ns: self.mean(),
            p50_ns: self.quantile(0.5),
            p90_ns: self.quantile(0.9),
            p99_ns: self.quantile(0.99),
            max_ns: some(self.max_ns),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range() {
        let mut prev_end = 0;
        for b in 0..bucket(u64::MAX) {
            let (lo, w) = bounds(b);
            assert_eq!(lo, prev_end, "bucket {b}");
            assert_eq!(bucket(lo), b);
            assert_eq!(bucket(lo + w - 1), b);
            prev_end = lo + w;
        }
        assert!(bucket(u64::MAX) < 2100);
    }

    #[test]
    fn quantiles_within_the_documented_precision() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        // 1..=1000 ms.
        for ms in 1..=1000i64 {
            h.add(ms * 1_000_000);
        }
        assert_eq!((h.count, h.min_ns, h.max_ns), (1000, 1_000_000, 1_000_000_000));
        for (q, want) in [(0.5, 500e6), (0.9, 900e6), (0.99, 990e6), (1.0, 1000e6)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - want).abs() / want < 0.016, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.mean(), Some(500_500_000));
        let mut g = Histogram::new();
        g.add(-5);
        g.add(7);
        assert_eq!((g.min_ns, g.quantile(0.0), g.quantile(1.0)), (0, Some(0), Some(7)));
        g.merge(&h);
        assert_eq!((g.count, g.max_ns, g.min_ns), (1002, 1_000_000_000, 0));
        assert!((495..=501).contains(&h.count_at_least(500_000_000)));
    }
}
