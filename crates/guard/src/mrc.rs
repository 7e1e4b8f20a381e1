//! Online miss-ratio curves: SHARDS (Waldspurger et al., FAST 2015) with a fixed sample size.
//!
//! Reads are sampled spatially: a key is in the sample when its hash is below a threshold,
//! so a sampled key's every access is seen and reuse distances among sampled keys scale to
//! the whole stream by 1 / rate. For each sampled access the LRU stack distance in bytes
//! (the bytes of the distinct keys read since this key's previous read, plus its own) is
//! found with a Fenwick tree over access times and filed in a histogram with 16 buckets per
//! doubling. The hit ratio of an LRU cache of C bytes is the share of accesses with distance
//! ≤ C; first accesses are misses at every size.
//!
//! Fixed size: at most `max_keys` keys are tracked; when one more arrives, the key with the
//! largest hash leaves and the threshold drops to it (SHARDS-adj), so memory is bounded
//! whatever the keyspace. Each later access counts 1 / rate, so the histogram keeps
//! estimating the whole stream. [`Shards::decay`] ages the histogram so the curve follows
//! recent behaviour.
//!
//! Stack distances answer for LRU only. For another policy ([`Shards::set_policy`]) the same
//! sampled accesses also feed miniature simulations of that policy (`minisim`), one small
//! cache per size of the curve, and [`Shards::curve`] reports those.

use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasherDefault;

use crate::minisim::{MiniSim, Policy};

/// Keys here are already uniform 64-bit hashes: hash them as themselves.
#[derive(Default)]
pub struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, n: u64) {
        // sampled hashes are small (below the rate's share of the range): move their
        // random low bits to the top, where the table takes its probe tags from
        self.0 = n.rotate_left(32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Map = HashMap<u64, Tracked, BuildHasherDefault<Identity>>;

/// Buckets per doubling of the distance.
const PER_DOUBLING: f64 = 16.0;
const BUCKETS: usize = 64 * 16;

/// A hash remixed so sampling does not correlate with the bits tables and shards use.
pub fn remix(h: u64) -> u64 {
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Tracked {
    time: usize,
    size: f64,
}

/// One stream's miss-ratio curve.
pub struct Shards {
    /// Sample when `remix(hash) < threshold`.
    threshold: u64,
    max_keys: usize,
    keys: Map,
    heap: BinaryHeap<u64>,
    /// Fenwick tree of the sizes at each access time (a key's size sits at its last time).
    tree: Vec<f64>,
    next_time: usize,
    hist: Vec<f64>,
    cold: f64,
    total: f64,
    /// Every access, sampled or not (for the SHARDS-adj correction).
    all: f64,
    /// Miniature simulations of a policy other than LRU (`None`: the LRU stack distances).
    mini: Option<MiniSim>,
    /// The full-size cache the simulations' sizes are factors of, in bytes.
    base: f64,
    /// The time given to the simulated policy, in Unix milliseconds.
    now_ms: i64,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards").field("rate", &self.rate()).field("keys", &self.keys.len()).finish()
    }
}

impl Shards {
    pub fn new(max_keys: usize) -> Shards {
        Shards::with_rate(max_keys, 1.0)
    }

    /// A curve that samples at most `max_rate` of the keys (and at most `max_keys` of them):
    /// a cap on what sampled reads cost, whatever the keyspace's size.
    pub fn with_rate(max_keys: usize, max_rate: f64) -> Shards {
        let cap = max_keys * 2 + 16;
        let threshold = if max_rate >= 1.0 { u64::MAX } else { (max_rate.max(0.0) * u64::MAX as f64) as u64 };
        Shards {
            threshold,
            max_keys,
            keys: Map::with_capacity_and_hasher(max_keys + 1, BuildHasherDefault::default()),
            heap: BinaryHeap::with_capacity(max_keys + 1),
            tree: vec![0.0; cap + 1],
            next_time: 0,
            hist: vec![0.0; BUCKETS],
            cold: 0.0,
            total: 0.0,
            all: 0.0,
            mini: None,
            base: 0.0,
            now_ms: 0,
        }
    }

    /// Simulates `policy` at [`FACTORS`] × the base size from now on (`None`: LRU, from the
    /// stack distances). The simulations start empty and learn from the next accesses.
    pub fn set_policy(&mut self, policy: Option<Box<dyn Policy>>) {
        self.mini = policy.map(|p| {
            let mut m = MiniSim::new(p, &FACTORS);
            m.set_scale(self.base, self.rate());
            m
        });
    }

    /// Whether a policy other than LRU is simulated.
    pub fn simulates(&self) -> bool {
        self.mini.is_some()
    }

    /// The full-size cache, in bytes, that the simulated sizes are factors of.
    pub fn set_base(&mut self, bytes: f64) {
        self.base = bytes;
        let rate = self.rate();
        if let Some(m) = &mut self.mini {
            m.set_scale(bytes, rate);
        }
    }

    /// The time the next accesses happen at (for policies that age by time).
    pub fn set_now(&mut self, ms: i64) {
        self.now_ms = ms;
    }

    /// The hit ratio at each of [`FACTORS`] × the base size (NaN before any access).
    pub fn curve(&self) -> Vec<f64> {
        match &self.mini {
            Some(m) => {
                // the simulations may have started after the sample (a change of policy): they
                // answer for their share of the stream, corrected as the whole sample is
                let all = if self.all > 0.0 { self.all } else { self.total };
                let share = if self.total > 0.0 { (m.total() / self.total).min(1.0) } else { 1.0 };
                m.hit_ratios(all * share - m.total())
            }
            None => FACTORS.iter().map(|f| self.hit_ratio(f * self.base.max(1.0))).collect(),
        }
    }

    /// The current sampling threshold (callers skip keys at or above it without locking).
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// The share of keys sampled.
    pub fn rate(&self) -> f64 {
        if self.threshold == u64::MAX {
            1.0
        } else {
            self.threshold as f64 / u64::MAX as f64
        }
    }

    /// Accesses counted (estimated for the whole stream).
    pub fn total(&self) -> f64 {
        self.total
    }

    fn add(&mut self, time: usize, v: f64) {
        let mut i = time + 1;
        while i < self.tree.len() {
            self.tree[i] += v;
            i += i & i.wrapping_neg();
        }
    }

    /// Sum of sizes at times < `time`.
    fn prefix(&self, time: usize) -> f64 {
        let mut i = time;
        let mut s = 0.0;
        while i > 0 {
            s += self.tree[i];
            i &= i - 1;
        }
        s
    }

    /// Renumbers the tracked keys' times 0..n (when the time axis is full).
    fn compact(&mut self) {
        let mut order: Vec<(usize, u64)> = self.keys.iter().map(|(h, t)| (t.time, *h)).collect();
        order.sort_unstable();
        self.tree.iter_mut().for_each(|v| *v = 0.0);
        for (new_time, (_, h)) in order.iter().enumerate() {
            let size = {
                let t = self.keys.get_mut(h).expect("tracked");
                t.time = new_time;
                t.size
            };
            self.add(new_time, size);
        }
        self.next_time = order.len();
    }

    /// One read of the key with hash `hash` (already remixed) and `size` bytes (`None`
    /// when unknown: a miss of a key never seen).
    pub fn access(&mut self, hash: u64, size: Option<f64>) {
        self.access_with(hash, size, false);
    }

    /// [`Shards::access`] of a key that has a TTL (`volatile`), which matters to the
    /// simulations of the `volatile-*` policies.
    pub fn access_with(&mut self, hash: u64, size: Option<f64>, volatile: bool) {
        if hash >= self.threshold {
            return;
        }
        let rate = self.rate();
        let weight = 1.0 / rate;
        self.total += weight;
        if self.next_time + 1 >= self.tree.len() {
            self.compact();
        }
        let now = self.next_time;
        self.next_time += 1;
        match self.keys.get(&hash).map(|t| (t.time, t.size)) {
            Some((then, old)) => {
                let size = size.unwrap_or(old).max(1.0);
                let between = self.prefix(now) - self.prefix(then + 1);
                let distance = (between + size) / rate;
                let b = ((distance.log2() * PER_DOUBLING).max(0.0) as usize).min(BUCKETS - 1);
                self.hist[b] += weight;
                self.add(then, -old);
                self.add(now, size);
                let t = self.keys.get_mut(&hash).expect("tracked");
                (t.time, t.size) = (now, size);
                self.simulate(hash, size, volatile, weight);
            }
            None => {
                self.cold += weight;
                // a key read before it exists (a miss) takes the sample's mean size until a write
                // says what it holds: if that write is refused, it was still a key that needed
                // room
                let size = size.unwrap_or_else(|| self.mean_size()).max(1.0);
                self.keys.insert(hash, Tracked { time: now, size });
                self.heap.push(hash);
                self.add(now, size);
                self.simulate(hash, size, volatile, weight);
                let mut fell = false;
                while self.keys.len() > self.max_keys {
                    let Some(top) = self.heap.pop() else { break };
                    if let Some(t) = self.keys.remove(&top) {
                        self.add(t.time, -t.size);
                    }
                    if let Some(m) = &mut self.mini {
                        m.forget(top);
                    }
                    self.threshold = top;
                    fell = true;
                }
                if fell {
                    // the simulated caches shrink with the rate
                    self.set_base(self.base);
                }
            }
        }
    }

    /// Feeds one sampled access to the simulations, once they know the size they are
    /// factors of.
    fn simulate(&mut self, hash: u64, size: f64, volatile: bool, weight: f64) {
        if let Some(m) = self.mini.as_mut().filter(|_| self.base > 0.0) {
            m.access(hash, size, volatile, weight, self.now_ms);
        }
    }

    /// The mean size of the keys in the sample (1 byte when it is empty).
    fn mean_size(&self) -> f64 {
        if self.keys.is_empty() {
            return 1.0;
        }
        self.prefix(self.tree.len() - 1) / self.keys.len() as f64
    }

    /// A write changed the size of the key with hash `hash` (already remixed) to `size`
    /// bytes, with a TTL or not (`volatile`). Only a key already in the sample is updated:
    /// writes are not accesses.
    pub fn resize(&mut self, hash: u64, size: f64, volatile: bool) {
        if hash >= self.threshold {
            return;
        }
        let size = size.max(1.0);
        let Some((time, old)) = self.keys.get(&hash).map(|t| (t.time, t.size)) else { return };
        self.add(time, size - old);
        self.keys.get_mut(&hash).expect("tracked").size = size;
        if let Some(m) = &mut self.mini {
            m.resize(hash, size, volatile);
        }
    }

    /// Counts `n` accesses of the whole stream, sampled or not. The difference between
    /// them and the sampled accesses' estimate is the sample's error on the hottest keys
    /// (whether one of them happens to be sampled moves the estimate most); SHARDS-adj
    /// credits it to the smallest distances, which is where those keys' reuses fall.
    pub fn count_all(&mut self, n: f64) {
        self.all += n;
    }

    /// Multiplies the history by `f` (0..1) so older accesses weigh less.
    pub fn decay(&mut self, f: f64) {
        self.hist.iter_mut().for_each(|v| *v *= f);
        if let Some(m) = &mut self.mini {
            m.decay(f);
        }
        self.cold *= f;
        self.total *= f;
        self.all *= f;
    }

    /// The LRU hit ratio at a cache of `bytes` (NaN before any access).
    pub fn hit_ratio(&self, bytes: f64) -> f64 {
        if self.total <= 0.0 {
            return f64::NAN;
        }
        let all = if self.all > 0.0 { self.all } else { self.total };
        // bucket b holds distances in [2^(b/16), 2^((b+1)/16)); count the buckets below
        // `bytes`, and the one it falls in pro rata (log-linear)
        let pos = if bytes >= 1.0 { bytes.log2() * PER_DOUBLING } else { 0.0 };
        let whole = (pos as usize).min(BUCKETS);
        let mut hits: f64 = self.hist[..whole].iter().sum();
        if whole < BUCKETS {
            hits += self.hist[whole] * (pos - whole as f64);
        }
        ((hits + (all - self.total)) / all).clamp(0.0, 1.0)
    }

    /// Bytes this structure holds.
    pub fn footprint(&self) -> usize {
        self.tree.len() * 8
            + self.hist.len() * 8
            + self.max_keys * 48
            + self.mini.as_ref().map_or(0, MiniSim::footprint)
    }
}

/// The exact byte-weighted LRU hit ratios of a whole trace at each cache size (the offline
/// reference the sampled curve is measured against). `size` gives each key's bytes.
pub fn exact_curve(trace: &[u64], size: impl Fn(u64) -> f64, cache: &[f64]) -> Vec<f64> {
    let mut fen = Shards::new(0);
    fen.tree = vec![0.0; trace.len() + 2];
    let mut last: HashMap<u64, usize> = HashMap::new();
    let mut dists = Vec::new();
    for (t, &k) in trace.iter().enumerate() {
        let sz = size(k).max(1.0);
        if let Some(&then) = last.get(&k) {
            dists.push(fen.prefix(t) - fen.prefix(then + 1) + sz);
            fen.add(then, -sz);
        }
        fen.add(t, sz);
        last.insert(k, t);
    }
    dists.sort_by(|a, b| a.total_cmp(b));
    cache.iter().map(|&c| dists.partition_point(|&d| d <= c) as f64 / trace.len().max(1) as f64).collect()
}

/// The sizes a curve reports, as multiples of the current memory.
pub const FACTORS: [f64; 8] = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0];

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = remix(self.0);
            self.0
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Zipf(s) over n ids by inverse transform on the cumulative weights.
    fn zipf_trace(n: usize, len: usize, s: f64, seed: u64) -> Vec<usize> {
        let mut cum = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 0..n {
            acc += 1.0 / ((i + 1) as f64).powf(s);
            cum.push(acc);
        }
        let mut rng = Rng(seed);
        (0..len).map(|_| cum.partition_point(|&c| c < rng.unit() * acc).min(n - 1)).collect()
    }

    fn mae(trace: &[usize], sizes: &[f64], max_keys: usize) -> (f64, f64) {
        let total_bytes: f64 = {
            let mut seen = vec![false; sizes.len()];
            trace.iter().filter(|&&k| !std::mem::replace(&mut seen[k], true)).map(|&k| sizes[k]).sum()
        };
        // a cache at a tenth of the bytes touched, and 0.25x..4x of it
        let cache: Vec<f64> = FACTORS.iter().map(|f| f * total_bytes / 10.0).collect();
        let keys: Vec<u64> = trace.iter().map(|&k| k as u64).collect();
        let want = exact_curve(&keys, |k| sizes[k as usize], &cache);
        let mut s = Shards::new(max_keys);
        for &k in trace {
            s.access(remix(k as u64 ^ 0x5eed), Some(sizes[k]));
            s.count_all(1.0);
        }
        let got: Vec<f64> = cache.iter().map(|&c| s.hit_ratio(c)).collect();
        let err = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).sum::<f64>() / want.len() as f64;
        (err, s.rate())
    }

    #[test]
    fn sampled_curves_match_exact_lru_on_zipf_traces() {
        let mut rng = Rng(7);
        let n = 100_000;
        let sizes: Vec<f64> = (0..n).map(|_| 50.0 + (rng.unit() * 1000.0).floor()).collect();
        for (s, seed) in [(0.8, 1), (1.0, 2), (1.2, 3)] {
            let trace = zipf_trace(n, 1_000_000, s, seed);
            let (err, rate) = mae(&trace, &sizes, 4096);
            eprintln!("zipf {s}: mean absolute error {err:.4} at sampling rate {rate:.4}");
            assert!(err <= 0.02, "zipf {s}: mean absolute error {err:.4} at rate {rate:.4}");
            assert!(rate < 1.0, "fixed size: the rate should have fallen, it is {rate}");
        }
    }

    #[test]
    fn memory_is_bounded_and_decay_keeps_the_shape() {
        let mut s = Shards::new(256);
        for i in 0..1_000_000u64 {
            s.access(remix(i % 50_000), Some(100.0));
        }
        assert!(s.keys.len() <= 256 && s.heap.len() <= 257);
        let before = s.hit_ratio(2_500_000.0);
        s.decay(0.5);
        assert!((s.hit_ratio(2_500_000.0) - before).abs() < 1e-9);
        assert!(s.footprint() < 64 * 1024);
        assert!(Shards::new(4).hit_ratio(1.0).is_nan());
    }
}
