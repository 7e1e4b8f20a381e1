//! Time series at decreasing resolution in fixed memory.
//!
//! A [`Series`] keeps one ring of points per [`TIERS`] entry: 10-second points for the last
//! hour, 1-minute points for a day, 10-minute points for a week and hourly points for 30
//! days. Every sample goes into each tier's current bucket; when a sample falls into a later
//! bucket, the finished one is written to the ring (skipped buckets become gaps). Each tier
//! therefore averages (gauges) or sums (counter increases) exactly the samples of its own
//! buckets, with no rounding carried from a finer tier. Points are `f32`: 14 KiB per series.

/// One resolution: bucket width and how many buckets the ring keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    pub step_ms: i64,
    pub len: usize,
}

/// The resolutions every series keeps: 1 h at 10 s, 24 h at 1 min, 7 days at 10 min, 30
/// days at 1 h.
pub const TIERS: [Tier; 4] = [
    Tier { step_ms: 10_000, len: 360 },
    Tier { step_ms: 60_000, len: 1440 },
    Tier { step_ms: 600_000, len: 1008 },
    Tier { step_ms: 3_600_000, len: 720 },
];

/// How a bucket combines its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A level (bytes, keys): the bucket holds the mean of its samples.
    Gauge,
    /// An increase (hits, evictions since the last sample): the bucket holds the sum.
    Delta,
}

#[derive(Clone, Debug)]
struct Ring {
    tier: Tier,
    points: Box<[f32]>,
    /// Bucket number (time / step) of the bucket being filled; `i64::MIN` before the first.
    current: i64,
    sum: f64,
    count: u32,
}

impl Ring {
    fn new(tier: Tier) -> Ring {
        Ring { tier, points: vec![f32::NAN; tier.len].into_boxed_slice(), current: i64::MIN, sum: 0.0, count: 0 }
    }

    fn slot(&self, bucket: i64) -> usize {
        bucket.rem_euclid(self.tier.len as i64) as usize
    }

    fn value(&self, kind: Kind) -> f32 {
        match (self.count, kind) {
            (0, _) => f32::NAN,
            (n, Kind::Gauge) => (self.sum / n as f64) as f32,
            (_, Kind::Delta) => self.sum as f32,
        }
    }

    fn add(&mut self, kind: Kind, at_ms: i64, v: f64) {
        let bucket = at_ms.div_euclid(self.tier.step_ms);
        if bucket < self.current {
            return; // the clock went back: the sample belongs to a finished bucket
        }
        if bucket > self.current {
            if self.current != i64::MIN {
                let slot = self.slot(self.current);
                self.points[slot] = self.value(kind);
                let gap = (bucket - self.current - 1).min(self.tier.len as i64);
                for b in 1..=gap {
                    let slot = self.slot(self.current + b);
                    self.points[slot] = f32::NAN;
                }
            }
            self.current = bucket;
            self.sum = 0.0;
            self.count = 0;
        }
        self.sum += v;
        self.count += 1;
    }

    /// The ring's points oldest first as (bucket start ms, value), the current bucket last;
    /// gaps are left out.
    fn points(&self, kind: Kind, since_ms: i64) -> Vec<(i64, f64)> {
        if self.current == i64::MIN {
            return Vec::new();
        }
        let first = (self.current - self.tier.len as i64 + 1).max(since_ms.div_euclid(self.tier.step_ms));
        let mut out = Vec::with_capacity((self.current - first + 1).max(0) as usize);
        for b in first..self.current {
            let v = self.points[self.slot(b)];
            if !v.is_nan() {
                out.push((b * self.tier.step_ms, v as f64));
            }
        }
        let v = self.value(kind);
        if !v.is_nan() {
            out.push((self.current * self.tier.step_ms, v as f64));
        }
        out
    }
}

/// One metric over time.
#[derive(Clone, Debug)]
pub struct Series {
    kind: Kind,
    rings: Vec<Ring>,
    /// Time of the first sample, to say how much history there is.
    first_ms: Option<i64>,
}

impl Series {
    pub fn new(kind: Kind) -> Series {
        Series { kind, rings: TIERS.iter().map(|&t| Ring::new(t)).collect(), first_ms: None }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Adds a sample taken at `at_ms`.
    pub fn add(&mut self, at_ms: i64, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.first_ms.get_or_insert(at_ms);
        let kind = self.kind;
        self.rings.iter_mut().for_each(|r| r.add(kind, at_ms, v));
    }

    /// When the first sample was taken.
    pub fn first_ms(&self) -> Option<i64> {
        self.first_ms
    }

    /// The points of tier `tier` from `since_ms` on, oldest first, as (ms, value).
    pub fn points(&self, tier: usize, since_ms: i64) -> Vec<(i64, f64)> {
        self.rings[tier].points(self.kind, since_ms)
    }

    /// The finest tier whose ring reaches back to `since_ms`, and its points.
    pub fn window(&self, now_ms: i64, since_ms: i64) -> (usize, Vec<(i64, f64)>) {
        let tier =
            TIERS.iter().position(|t| now_ms - t.step_ms * (t.len as i64 - 1) <= since_ms).unwrap_or(TIERS.len() - 1);
        (tier, self.points(tier, since_ms))
    }

    /// The sum of a delta series over the last `ms` before `now_ms` (at the finest tier that
    /// covers the window; buckets that started before the window count whole).
    pub fn sum_since(&self, now_ms: i64, ms: i64) -> f64 {
        self.window(now_ms, now_ms - ms).1.iter().map(|p| p.1).sum()
    }

    /// The latest value (the current bucket of the finest tier).
    pub fn last(&self) -> Option<f64> {
        self.rings[0].points(self.kind, i64::MIN).last().map(|p| p.1)
    }

    /// Bytes this series holds.
    pub fn footprint() -> usize {
        TIERS.iter().map(|t| t.len * std::mem::size_of::<f32>() + std::mem::size_of::<Ring>()).sum::<usize>()
            + std::mem::size_of::<Series>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_average_and_deltas_sum_per_bucket() {
        let mut g = Series::new(Kind::Gauge);
        let mut d = Series::new(Kind::Delta);
        for i in 0..12 {
            // two samples per 10 s bucket, 5 s apart
            g.add(i * 5_000, i as f64);
            d.add(i * 5_000, 1.0);
        }
        let pts = g.points(0, 0);
        assert_eq!(pts.len(), 6);
        assert_eq!(pts[0], (0, 0.5));
        assert_eq!(pts[5], (50_000, 10.5));
        assert!(d.points(0, 0).iter().all(|p| p.1 == 2.0));
        // the minute tier holds one bucket of 12 samples
        assert_eq!(d.points(1, 0), vec![(0, 12.0)]);
        assert_eq!(g.points(1, 0), vec![(0, 5.5)]);
        assert_eq!(d.sum_since(55_000, 30_000), 8.0, "buckets at 20 s..50 s");
    }

    #[test]
    fn old_points_fall_off_and_gaps_stay_empty() {
        let mut g = Series::new(Kind::Gauge);
        for i in 0..1000 {
            g.add(i * 10_000, i as f64);
        }
        let pts = g.points(0, 0);
        assert_eq!(pts.len(), 360, "an hour of 10 s points");
        assert_eq!(pts[0].1, 640.0);
        // a jump of 3 hours leaves no stale points in the 10 s ring
        g.add(1000 * 10_000 + 3 * 3_600_000, 7.0);
        assert_eq!(g.points(0, 0), vec![(1000 * 10_000 + 3 * 3_600_000, 7.0)]);
        assert_eq!(g.last(), Some(7.0));
        // the hourly ring still has the earlier hours
        assert_eq!(g.points(3, 0).len(), 4);
    }

    #[test]
    fn a_week_of_samples_stays_in_fixed_memory() {
        let mut g = Series::new(Kind::Gauge);
        let week = 7 * 24 * 3_600_000i64;
        let mut t = 0;
        while t <= week {
            g.add(t, (t / 1000) as f64);
            t += 5_000;
        }
        let (tier, pts) = g.window(week, 600_000);
        assert_eq!(tier, 2, "a week is the 10-minute ring");
        assert_eq!(pts.len(), 1008);
        assert!(Series::footprint() < 16 * 1024);
    }
}
