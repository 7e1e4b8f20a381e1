//! Miniature simulations (Waldspurger et al., USENIX ATC 2017): the hit ratio of an eviction
//! policy other than LRU, at several cache sizes, from the spatially sampled stream SHARDS
//! already sees.
//!
//! A cache of C bytes serving the whole stream behaves like a cache of C × rate bytes
//! serving the sample at `rate`: a sampled key sees every one of its accesses, and the keys
//! it competes with for room are sampled in the same proportion. So each size of the curve is
//! one small cache, run with the policy's own rules (its clocks, its sampled victims and
//! candidate pool, its memory of evicted keys) on the sampled keys only. The policy is
//! supplied by the caller ([`Policy`]), so the rules simulated are the ones the server runs.
//!
//! Memory: one record per sampled key (at most the SHARDS sample), holding its clock and
//! place in each simulated cache, plus each cache's member list: about 110 bytes per sampled
//! key at 8 sizes.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::mrc::Identity;

/// What a policy's clock functions see.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Unix milliseconds.
    pub ms: i64,
    /// The simulated cache's access tick (for policies that count time in accesses).
    pub tick: u32,
}

/// An eviction policy's rules, applied to a key's 32-bit clock.
pub trait Policy: Send {
    /// Keys sampled per eviction round; 0 evicts a random key.
    fn samples(&self) -> usize;
    /// Only keys with a TTL may be evicted (the `volatile-*` policies): with none in the
    /// cache, a key that does not fit is refused, as the server refuses the write.
    fn volatile_only(&self) -> bool {
        false
    }
    /// Accesses per key held that make one window of 256 ticks (0: no ticks).
    fn window_per_key(&self) -> u64 {
        0
    }
    /// The clock of a key entering the cache; `left` is what [`Policy::leave`] returned when
    /// it was last evicted from this cache (0 if never).
    fn enter(&mut self, left: u32, now: Now) -> u32;
    /// The clock after a hit.
    fn touch(&mut self, clock: u32, now: Now) -> u32;
    /// How eager the key is to go: higher is evicted first.
    fn score(&self, clock: u32, now: Now) -> u64;
    /// What an evicted key leaves behind for its return.
    fn leave(&self, clock: u32, now: Now) -> u32;
}

type Index = HashMap<u64, u32, BuildHasherDefault<Identity>>;

/// Not a member of that cache.
const OUT: u32 = u32::MAX;
/// Redis's eviction pool size.
const POOL: usize = 16;

/// A sampled key: its size and, per simulated cache, its place in the member list and what
/// it left there when last evicted.
struct Rec {
    hash: u64,
    size: f32,
    /// The key has a TTL.
    volatile: bool,
    left: [u32; MAX_SIZES],
    pos: [u32; MAX_SIZES],
}

/// A key in a cache, with its clock there: eviction ranks members without reading records.
#[derive(Clone, Copy)]
struct Member {
    rec: u32,
    clock: u32,
}

/// Cache sizes one simulation runs at most.
pub const MAX_SIZES: usize = 8;

/// One simulated cache.
#[derive(Default)]
struct Cache {
    cap: f64,
    used: f64,
    members: Vec<Member>,
    /// Members with a TTL.
    volatile: usize,
    hits: f64,
    /// Accesses since the tick moved, accesses per tick, the tick.
    acc: u64,
    per_tick: u64,
    tick: u32,
    /// The best eviction candidates seen (score, record), ascending.
    pool: Vec<(u64, u32)>,
}

/// Several caches of different sizes fed the same sampled stream.
pub struct MiniSim {
    policy: Box<dyn Policy>,
    factors: Vec<f64>,
    recs: Vec<Rec>,
    index: Index,
    caches: Vec<Cache>,
    total: f64,
    rng: u64,
    /// The time of the last access.
    ms: i64,
}

impl std::fmt::Debug for MiniSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniSim").field("keys", &self.recs.len()).field("factors", &self.factors).finish()
    }
}

impl MiniSim {
    /// Caches at `factors` × the base size set by [`MiniSim::set_scale`].
    pub fn new(policy: Box<dyn Policy>, factors: &[f64]) -> MiniSim {
        let factors = &factors[..factors.len().min(MAX_SIZES)];
        MiniSim {
            policy,
            factors: factors.to_vec(),
            recs: Vec::new(),
            index: Index::default(),
            caches: factors.iter().map(|_| Cache::default()).collect(),
            total: 0.0,
            rng: 0x853c_49e6_748f_ea9b,
            ms: 0,
        }
    }

    /// Sizes the caches for a full-size cache of `base` bytes sampled at `rate`.
    pub fn set_scale(&mut self, base: f64, rate: f64) {
        for (c, f) in self.caches.iter_mut().zip(&self.factors) {
            c.cap = f * base * rate;
        }
    }

    fn random(&mut self) -> u64 {
        self.rng = crate::mrc::remix(self.rng);
        self.rng
    }

    /// One access of the key `hash` of `size` bytes (`volatile`: it has a TTL), counting
    /// `weight` accesses of the whole stream, at `ms`. A miss brings the key in, as a
    /// cache-aside client does.
    pub fn access(&mut self, hash: u64, size: f64, volatile: bool, weight: f64, ms: i64) {
        self.total += weight;
        self.ms = ms;
        let n = self.caches.len();
        let r = match self.index.get(&hash) {
            Some(&r) => r,
            None => {
                let r = self.recs.len() as u32;
                self.recs.push(Rec { hash, size: size as f32, volatile, left: [0; MAX_SIZES], pos: [OUT; MAX_SIZES] });
                self.index.insert(hash, r);
                r
            }
        };
        self.set_volatile(r, volatile);
        let old = f64::from(std::mem::replace(&mut self.recs[r as usize].size, size as f32));
        let window = self.policy.window_per_key();
        for i in 0..n {
            let now = {
                let c = &mut self.caches[i];
                if window > 0 {
                    c.acc += 1;
                    if c.per_tick == 0 || c.acc >= c.per_tick {
                        c.acc = 0;
                        c.tick = (c.tick + 1) & 0xFFFF;
                        if c.tick & 0xFF == 0 || c.per_tick == 0 {
                            c.per_tick = (window * c.members.len() as u64 / 256).max(1);
                        }
                    }
                }
                Now { ms, tick: c.tick }
            };
            let rec = &mut self.recs[r as usize];
            let c = &mut self.caches[i];
            let entered = rec.pos[i] == OUT;
            if !entered {
                let m = &mut c.members[rec.pos[i] as usize];
                m.clock = self.policy.touch(m.clock, now);
                c.hits += weight;
                c.used += size - old;
            } else {
                let clock = self.policy.enter(rec.left[i], now);
                rec.pos[i] = c.members.len() as u32;
                c.members.push(Member { rec: r, clock });
                c.used += size;
                c.volatile += usize::from(rec.volatile);
            }
            self.make_room(i, now, entered.then_some(r));
        }
    }

    /// Evicts from cache `i` until it fits. When nothing may go, the key `refused` (one the
    /// access or write just brought in) is taken out again: the server refuses that write.
    fn make_room(&mut self, i: usize, now: Now, refused: Option<u32>) {
        while self.caches[i].used > self.caches[i].cap && !self.caches[i].members.is_empty() {
            if !self.evict(i, now) {
                if let Some(r) = refused.filter(|&r| self.recs[r as usize].pos[i] != OUT) {
                    self.caches[i].used -= f64::from(self.recs[r as usize].size);
                    self.unlink(i, r);
                }
                break;
            }
        }
    }

    /// Marks record `r` as having a TTL or not, in every cache that holds it.
    fn set_volatile(&mut self, r: u32, volatile: bool) {
        let rec = &mut self.recs[r as usize];
        if rec.volatile == volatile {
            return;
        }
        rec.volatile = volatile;
        for (c, &at) in self.caches.iter_mut().zip(&rec.pos) {
            if at != OUT {
                if volatile {
                    c.volatile += 1;
                } else {
                    c.volatile -= 1;
                }
            }
        }
    }

    /// A random member of cache `i` that may be evicted (`None` if none may).
    fn pick(&mut self, i: usize) -> Option<usize> {
        let len = self.caches[i].members.len() as u64;
        if !self.policy.volatile_only() {
            return (len > 0).then(|| (self.random() % len) as usize);
        }
        if self.caches[i].volatile == 0 {
            return None;
        }
        for _ in 0..64 {
            let at = (self.random() % len) as usize;
            if self.recs[self.caches[i].members[at].rec as usize].volatile {
                return Some(at);
            }
        }
        // few members have a TTL: find one in order from a random place
        let start = (self.random() % len) as usize;
        (0..len as usize)
            .map(|k| (start + k) % len as usize)
            .find(|&at| self.recs[self.caches[i].members[at].rec as usize].volatile)
    }

    /// Takes one key out of cache `i`; false when no member may go.
    fn evict(&mut self, i: usize, now: Now) -> bool {
        let samples = self.policy.samples();
        let at = if samples == 0 {
            match self.pick(i) {
                Some(at) => at,
                None => return false,
            }
        } else {
            loop {
                for _ in 0..samples {
                    let Some(pick) = self.pick(i) else { return false };
                    let c = &mut self.caches[i];
                    let m = c.members[pick];
                    let score = self.policy.score(m.clock, now);
                    let pool = &mut c.pool;
                    if pool.iter().any(|&(_, r)| r == m.rec) {
                        continue;
                    }
                    if pool.len() == POOL {
                        if pool[0].0 >= score {
                            continue;
                        }
                        pool.remove(0);
                    }
                    let at = pool.partition_point(|&(s, _)| s < score);
                    pool.insert(at, (score, m.rec));
                }
                // the best candidate still in this cache, and still evictable (the pool may
                // hold keys gone since, or whose TTL went)
                let volatile_only = self.policy.volatile_only();
                let found = loop {
                    let Some((_, r)) = self.caches[i].pool.pop() else { break None };
                    let rec = &self.recs[r as usize];
                    if rec.pos[i] != OUT && (rec.volatile || !volatile_only) {
                        break Some(rec.pos[i] as usize);
                    }
                };
                if let Some(at) = found {
                    break at;
                }
            }
        };
        let m = self.caches[i].members[at];
        let rec = &mut self.recs[m.rec as usize];
        rec.left[i] = self.policy.leave(m.clock, now);
        let size = f64::from(rec.size);
        self.unlink(i, m.rec);
        self.caches[i].used -= size;
        true
    }

    /// Removes record `r` from cache `i`'s member list.
    fn unlink(&mut self, i: usize, r: u32) {
        let at = std::mem::replace(&mut self.recs[r as usize].pos[i], OUT) as usize;
        let c = &mut self.caches[i];
        c.volatile -= usize::from(self.recs[r as usize].volatile);
        c.members.swap_remove(at);
        if let Some(moved) = c.members.get(at) {
            self.recs[moved.rec as usize].pos[i] = at as u32;
        }
    }

    /// A write changed a sampled key's size, and whether it has a TTL. The caches holding it
    /// make room at once; where nothing may go, the write is refused and the key leaves.
    pub fn resize(&mut self, hash: u64, size: f64, volatile: bool) {
        let Some(&r) = self.index.get(&hash) else { return };
        self.set_volatile(r, volatile);
        let rec = &mut self.recs[r as usize];
        let old = f64::from(std::mem::replace(&mut rec.size, size as f32));
        for i in 0..self.caches.len() {
            if self.recs[r as usize].pos[i] != OUT {
                self.caches[i].used += size - old;
                let now = Now { ms: self.ms, tick: self.caches[i].tick };
                self.make_room(i, now, Some(r));
            }
        }
    }

    /// Drops a key the sample no longer tracks.
    pub fn forget(&mut self, hash: u64) {
        let Some(r) = self.index.remove(&hash) else { return };
        for i in 0..self.caches.len() {
            if self.recs[r as usize].pos[i] != OUT {
                self.caches[i].used -= f64::from(self.recs[r as usize].size);
                self.unlink(i, r);
            }
        }
        let last = self.recs.len() as u32 - 1;
        self.recs.swap_remove(r as usize);
        // the pools name records by index: the removed one goes, the last one moved to `r`
        for c in &mut self.caches {
            c.pool.retain(|&(_, p)| p != r);
            c.pool.iter_mut().filter(|(_, p)| *p == last).for_each(|(_, p)| *p = r);
        }
        if let Some(moved) = self.recs.get(r as usize) {
            self.index.insert(moved.hash, r);
            for i in 0..self.caches.len() {
                let at = moved.pos[i];
                if at != OUT {
                    self.caches[i].members[at as usize].rec = r;
                }
            }
        }
    }

    /// Multiplies the history by `f` (0..1).
    pub fn decay(&mut self, f: f64) {
        self.total *= f;
        self.caches.iter_mut().for_each(|c| c.hits *= f);
    }

    /// Accesses counted.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The hit ratio of each cache, with `extra` accesses of the whole stream that the sample
    /// missed (positive) or over-counted (negative) credited as hits, as SHARDS-adj does.
    pub fn hit_ratios(&self, extra: f64) -> Vec<f64> {
        let all = self.total + extra;
        self.caches
            .iter()
            .map(|c| if self.total <= 0.0 || all <= 0.0 { f64::NAN } else { ((c.hits + extra) / all).clamp(0.0, 1.0) })
            .collect()
    }

    /// Bytes held.
    pub fn footprint(&self) -> usize {
        self.recs.capacity() * std::mem::size_of::<Rec>()
            + self.index.capacity() * 13
            + self.caches.iter().map(|c| c.members.capacity() * 8 + POOL * 16).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Least recently used, by access order: enough to check the machinery against the
    /// exact LRU curve.
    struct Lru(u32);
    impl Policy for Lru {
        fn samples(&self) -> usize {
            16
        }
        fn enter(&mut self, _left: u32, _now: Now) -> u32 {
            self.0 += 1;
            self.0
        }
        fn touch(&mut self, _clock: u32, _now: Now) -> u32 {
            self.0 += 1;
            self.0
        }
        fn score(&self, clock: u32, _now: Now) -> u64 {
            u64::from(self.0 - clock)
        }
        fn leave(&self, _clock: u32, _now: Now) -> u32 {
            0
        }
    }

    #[test]
    fn caches_stay_within_their_sizes_and_forget_keys() {
        let mut m = MiniSim::new(Box::new(Lru(0)), &[0.5, 1.0, 2.0]);
        m.set_scale(400.0, 1.0);
        for i in 0..10_000u64 {
            let k = crate::mrc::remix(i) % 37;
            m.access(crate::mrc::remix(k), 10.0 + (k % 7) as f64, false, 1.0, 0);
            for c in &m.caches {
                assert!(c.used <= c.cap + 1e-6, "{} > {}", c.used, c.cap);
                assert_eq!(c.members.iter().map(|k| f64::from(m.recs[k.rec as usize].size)).sum::<f64>(), c.used);
            }
        }
        let ratios = m.hit_ratios(0.0);
        assert!(ratios[0] < ratios[1] && ratios[1] < ratios[2], "{ratios:?}");
        assert!(ratios[2] > 0.99, "37 keys of at most 16 bytes fit in 800: {ratios:?}");
        for i in 0..37u64 {
            m.forget(crate::mrc::remix(i));
        }
        assert!(m.recs.is_empty() && m.index.is_empty());
        assert!(m.caches.iter().all(|c| c.members.is_empty() && c.used.abs() < 1e-6));
    }

    #[test]
    fn sampled_lru_matches_the_exact_curve() {
        // 20,000 keys of 100 bytes, Zipf-like by a cubed uniform; caches of 10..40% of them
        let mut seed = 0x1234_5678u64;
        let trace: Vec<u64> = (0..400_000)
            .map(|_| {
                seed = crate::mrc::remix(seed);
                let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
                (20_000.0 * u * u * u) as u64
            })
            .collect();
        let base = 20_000.0 * 100.0 * 0.2;
        let factors = [0.5, 1.0, 2.0];
        let cache: Vec<f64> = factors.iter().map(|f| f * base).collect();
        let exact = crate::mrc::exact_curve(&trace, |_| 100.0, &cache);
        let rate = 0.1;
        let mut m = MiniSim::new(Box::new(Lru(0)), &factors);
        m.set_scale(base, rate);
        let threshold = (rate * u64::MAX as f64) as u64;
        for &k in &trace {
            let h = crate::mrc::remix(k);
            if h < threshold {
                m.access(h, 100.0, false, 1.0 / rate, 0);
            }
        }
        let got = m.hit_ratios(trace.len() as f64 - m.total());
        for (e, g) in exact.iter().zip(&got) {
            assert!((e - g).abs() < 0.03, "exact {exact:?}, sampled {got:?}");
        }
    }
}
