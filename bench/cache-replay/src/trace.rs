//! Deterministic, seeded request traces. A trace is a list of key ids: ids `0..keys` are the
//! reused key universe (the "working set"), ids `>= keys` are one-off scan keys.
//!
//! Every generator draws Zipf ranks (rank 0 = most popular) with probability proportional to
//! `1 / (rank + 1)^alpha` and maps ranks to key ids through a seeded random permutation, so
//! popularity is unrelated to the key's name.

use std::fmt;

/// SplitMix64: small, fast, good enough for workload generation and simulation.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Mix the seed once so that seeds 1, 2, 3... give unrelated streams.
        let mut r = Rng(seed ^ 0x5851_F42D_4C95_7F2D);
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0), multiply-shift (bias negligible for n << 2^32).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// SplitMix64's finalizer: a good 64-bit mixing function, also used as the simulated key hash.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Zipf sampler over ranks `0..n` by inverse CDF (binary search over the cumulative weights).
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, alpha: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for r in 0..n {
            sum += 1.0 / ((r + 1) as f64).powf(alpha);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        self.cdf.partition_point(|&c| c <= u).min(self.cdf.len() - 1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Static Zipf with the given exponent.
    Zipf(f64),
    /// Zipf 1.0 with periodic sequential scans of never-reused keys.
    Scan,
    /// Zipf 1.0 whose rank-to-key mapping rotates every `shift_every` requests.
    Shift,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "scan" => Ok(Kind::Scan),
            "shift" => Ok(Kind::Shift),
            _ => {
                let a = s
                    .strip_prefix("zipf-")
                    .and_then(|a| a.parse::<f64>().ok())
                    .filter(|a| *a > 0.0 && *a < 10.0)
                    .ok_or_else(|| format!("unknown trace '{s}' (zipf-A, scan, shift)"))?;
                Ok(Kind::Zipf(a))
            }
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Zipf(a) => write!(f, "zipf-{a:.1}"),
            Kind::Scan => f.write_str("scan"),
            Kind::Shift => f.write_str("shift"),
        }
    }
}

/// The default trace set of the benchmark and the study.
pub const DEFAULT_TRACES: &str = "zipf-0.8,zipf-1.0,zipf-1.2,scan,shift";

/// All parameters of a trace; `resolve` fills the ones derived from `keys`.
#[derive(Clone, Debug)]
pub struct Params {
    pub kind: Kind,
    /// Distinct keys of the reused universe (N).
    pub keys: usize,
    /// Total requests (R).
    pub requests: usize,
    pub seed: u64,
    /// Scan trace: length of one sequential scan (default N/10).
    pub scan_len: usize,
    /// Scan trace: fraction of all requests that are scan requests (default 0.2).
    pub scan_fraction: f64,
    /// Shift trace: requests per phase (default N).
    pub shift_every: usize,
    /// Shift trace: ranks rotated per phase (default N/50).
    pub shift_by: usize,
}

impl Params {
    pub fn new(kind: Kind, keys: usize, requests: usize, seed: u64) -> Params {
        Params { kind, keys, requests, seed, scan_len: 0, scan_fraction: 0.2, shift_every: 0, shift_by: 0 }
    }

    /// Fills the derived defaults (0 means "default").
    pub fn resolve(mut self) -> Params {
        if self.scan_len == 0 {
            self.scan_len = (self.keys / 10).max(1);
        }
        if self.shift_every == 0 {
            self.shift_every = self.keys.max(1);
        }
        if self.shift_by == 0 {
            self.shift_by = (self.keys / 50).max(1);
        }
        self
    }

    pub fn describe(&self) -> String {
        let base = format!("{}: N={} keys, R={} requests, seed {}", self.kind, self.keys, self.requests, self.seed);
        match self.kind {
            Kind::Zipf(a) => format!("{base}; static Zipf(alpha={a}) over N"),
            Kind::Scan => {
                let block = (self.scan_len as f64 / self.scan_fraction).round() as usize;
                format!(
                    "{base}; blocks of {block} requests = {} Zipf(1.0) requests over N then one \
                     sequential scan of {} new keys (never requested again): {:.0}% scan requests",
                    block - self.scan_len,
                    self.scan_len,
                    self.scan_fraction * 100.0
                )
            }
            Kind::Shift => format!(
                "{base}; Zipf(1.0) over N; every {} requests the rank->key mapping rotates by {} \
                 ranks (the {} hottest keys become the coldest, every key moves up {} ranks)",
                self.shift_every, self.shift_by, self.shift_by, self.shift_by
            ),
        }
    }

    /// Generates the trace. Also returns the number of distinct key ids used (max id + 1).
    pub fn generate(&self) -> (Vec<u32>, usize) {
        let n = self.keys;
        let alpha = match self.kind {
            Kind::Zipf(a) => a,
            Kind::Scan | Kind::Shift => 1.0,
        };
        let zipf = Zipf::new(n, alpha);
        let mut rng = Rng::new(self.seed);
        // Rank -> key permutation (Fisher-Yates), from its own stream so that it is the same
        // for every trace kind with the same seed.
        let mut perm: Vec<u32> = (0..n as u32).collect();
        let mut prng = Rng::new(self.seed.wrapping_mul(0x9E37_79B9).wrapping_add(7));
        for i in (1..n).rev() {
            let j = prng.below(i + 1);
            perm.swap(i, j);
        }
        let mut out = Vec::with_capacity(self.requests);
        match self.kind {
            Kind::Zipf(_) => {
                for _ in 0..self.requests {
                    out.push(perm[zipf.sample(&mut rng)]);
                }
                (out, n)
            }
            Kind::Scan => {
                let block = ((self.scan_len as f64 / self.scan_fraction).round() as usize).max(self.scan_len + 1);
                let zipf_part = block - self.scan_len;
                let mut next_scan = n as u32;
                let mut i = 0;
                while out.len() < self.requests {
                    if i % block < zipf_part {
                        out.push(perm[zipf.sample(&mut rng)]);
                    } else {
                        out.push(next_scan);
                        next_scan += 1;
                    }
                    i += 1;
                }
                (out, next_scan as usize)
            }
            Kind::Shift => {
                for i in 0..self.requests {
                    let phase = i / self.shift_every;
                    let off = (phase as u64 * self.shift_by as u64 % n as u64) as usize;
                    let r = zipf.sample(&mut rng);
                    out.push(perm[(r + off) % n]);
                }
                (out, n)
            }
        }
    }
}

/// The key's name on the wire: "key:" + 10 digits (14 bytes), the same length for every id.
pub fn key_name(id: u32, buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"key:");
    let mut digits = [b'0'; 10];
    let mut v = id;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&digits);
}

pub const KEY_LEN: usize = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        for t in DEFAULT_TRACES.split(',') {
            let p = Params::new(Kind::parse(t).unwrap(), 1000, 20000, 3).resolve();
            let (a, ids) = p.generate();
            let (b, _) = p.generate();
            assert_eq!(a, b);
            assert_eq!(a.len(), 20000);
            assert!(a.iter().all(|&k| (k as usize) < ids));
        }
    }

    #[test]
    fn scan_fraction_and_shift() {
        let p = Params::new(Kind::Scan, 1000, 10000, 1).resolve();
        let (t, _) = p.generate();
        let scans = t.iter().filter(|&&k| k >= 1000).count();
        assert_eq!(scans, 2000);
        let p = Params::new(Kind::Shift, 1000, 4000, 1).resolve();
        let (t, _) = p.generate();
        // The hottest key of phase 0 is rare in phase 3.
        let mut cnt = vec![0usize; 1000];
        for &k in &t[..1000] {
            cnt[k as usize] += 1;
        }
        let hot = (0..1000).max_by_key(|&k| cnt[k]).unwrap() as u32;
        let later = t[3000..].iter().filter(|&&k| k == hot).count();
        assert!(cnt[hot as usize] > 50 && later < 5, "{} {}", cnt[hot as usize], later);
    }

    #[test]
    fn key_names() {
        let mut b = Vec::new();
        key_name(42, &mut b);
        assert_eq!(b, b"key:0000000042");
        assert_eq!(b.len(), KEY_LEN);
    }
}
