//! In-process cache simulator: capacity in objects, the cache-aside rule of the replay (every
//! request looks the key up; a miss inserts it), eviction before the insert (as Redis evicts
//! before running a command), so a key is never the victim of its own insertion.
//!
//! Time: the trace position `t` (request index) is the clock. Wall-clock features are mapped
//! through `rate` (requests per second of the modelled server): seconds = t / rate,
//! milliseconds = t * 1000 / rate, minutes = t / (60 * rate).
//!
//! Policies (see `Policy::parse` for the names and bench/EVICTION-STUDY.md for the details):
//! - `redis-lru`, `redis-lfu`: Redis 7's `evict.c` as faithfully as a simulator can: eviction
//!   pool of 16 with *stale* scores (an entry keeps the score it had when sampled), 5 keys
//!   sampled per eviction, LRU clock of 1-second resolution, LFU 8-bit log counter (factor 10,
//!   init 5) with decay of 1 per `lfu-decay-time` (1) minute since the last access;
//! - `lru-exact`: true LRU (a linked list; reference only, not a candidate);
//! - sampled candidates: one random sample of `k` keys per eviction plus a pool of `p` earlier
//!   candidates, all re-scored when an eviction happens; the lowest score is evicted.

use crate::trace::{mix64, Rng};

/// Resident keys: dense arrays (for uniform sampling) plus key id -> slot index.
struct Store<M> {
    keys: Vec<u32>,
    meta: Vec<M>,
    index: Vec<u32>, // key id -> slot + 1 (0 = absent)
}

impl<M: Copy> Store<M> {
    fn new(ids: usize, cap: usize) -> Self {
        Store { keys: Vec::with_capacity(cap), meta: Vec::with_capacity(cap), index: vec![0; ids] }
    }
    fn find(&self, key: u32) -> Option<usize> {
        match self.index[key as usize] {
            0 => None,
            s => Some(s as usize - 1),
        }
    }
    fn insert(&mut self, key: u32, m: M) {
        self.keys.push(key);
        self.meta.push(m);
        self.index[key as usize] = self.keys.len() as u32;
    }
    fn remove(&mut self, slot: usize) -> (u32, M) {
        let key = self.keys.swap_remove(slot);
        let m = self.meta.swap_remove(slot);
        self.index[key as usize] = 0;
        if slot < self.keys.len() {
            self.index[self.keys[slot] as usize] = slot as u32 + 1;
        }
        (key, m)
    }
    fn len(&self) -> usize {
        self.keys.len()
    }
}

pub trait Cache {
    /// One request at time `t`: true on a hit; on a miss the key is inserted.
    fn access(&mut self, key: u32, t: u64) -> bool;
}

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub rate: f64,
}

impl Clock {
    fn secs(&self, t: u64) -> u64 {
        (t as f64 / self.rate) as u64
    }
    fn mins(&self, t: u64) -> u64 {
        (t as f64 / (60.0 * self.rate)) as u64
    }
    fn ms(&self, t: u64) -> u64 {
        (t as f64 * 1000.0 / self.rate) as u64
    }
}

// ---------------------------------------------------------------------------------------------
// Redis 7 (evict.c) models.

const EVPOOL_SIZE: usize = 16;

/// Redis's eviction pool: sorted by ascending idle; best victim at the right end. Entries keep
/// the idle value computed when they were sampled.
struct RedisPool {
    e: [(u64, Option<u32>); EVPOOL_SIZE],
}

impl RedisPool {
    fn new() -> Self {
        RedisPool { e: [(0, None); EVPOOL_SIZE] }
    }

    /// evictionPoolPopulate's insertion of one sampled (idle, key).
    fn offer(&mut self, idle: u64, key: u32) {
        let pool = &mut self.e;
        let mut k = 0;
        while k < EVPOOL_SIZE && pool[k].1.is_some() && pool[k].0 < idle {
            k += 1;
        }
        if k == 0 && pool[EVPOOL_SIZE - 1].1.is_some() {
            return; // worse than everything in a full pool
        } else if k < EVPOOL_SIZE && pool[k].1.is_none() {
            // empty slot: insert here
        } else if pool[EVPOOL_SIZE - 1].1.is_none() {
            // free space on the right: shift k.. right
            pool.copy_within(k..EVPOOL_SIZE - 1, k + 1);
        } else {
            // no free space: insert at k-1, dropping the leftmost (smallest idle)
            k -= 1;
            pool.copy_within(1..=k, 0);
        }
        pool[k] = (idle, Some(key));
    }

    /// Pops entries from the right until one is still resident; returns its slot.
    fn pop<M: Copy>(&mut self, store: &Store<M>) -> Option<usize> {
        for k in (0..EVPOOL_SIZE).rev() {
            if let Some(key) = self.e[k].1.take() {
                self.e[k].0 = 0;
                if let Some(slot) = store.find(key) {
                    return Some(slot);
                }
            }
        }
        None
    }
}

/// Distinct random slots (Redis's dictGetSomeKeys returns distinct keys; we sample uniformly).
fn sample_slots(rng: &mut Rng, len: usize, k: usize, out: &mut Vec<usize>) {
    out.clear();
    let k = k.min(len);
    while out.len() < k {
        let s = rng.below(len);
        if !out.contains(&s) {
            out.push(s);
        }
    }
}

pub struct RedisLru {
    store: Store<u64>, // lru clock (seconds)
    pool: RedisPool,
    cap: usize,
    samples: usize,
    clock: Clock,
    rng: Rng,
    buf: Vec<usize>,
}

impl RedisLru {
    pub fn new(ids: usize, cap: usize, samples: usize, clock: Clock, seed: u64) -> Self {
        RedisLru {
            store: Store::new(ids, cap + 1),
            pool: RedisPool::new(),
            cap,
            samples,
            clock,
            rng: Rng::new(seed),
            buf: Vec::new(),
        }
    }
}

impl Cache for RedisLru {
    fn access(&mut self, key: u32, t: u64) -> bool {
        let now = self.clock.secs(t);
        if let Some(s) = self.store.find(key) {
            self.store.meta[s] = now;
            return true;
        }
        while self.store.len() >= self.cap {
            loop {
                sample_slots(&mut self.rng, self.store.len(), self.samples, &mut self.buf);
                for &s in &self.buf {
                    let idle = now.saturating_sub(self.store.meta[s]) * 1000;
                    self.pool.offer(idle, self.store.keys[s]);
                }
                if let Some(s) = self.pool.pop(&self.store) {
                    self.store.remove(s);
                    break;
                }
            }
        }
        self.store.insert(key, now);
        false
    }
}

const LFU_INIT_VAL: u8 = 5;

#[derive(Clone, Copy)]
struct LfuMeta {
    ldt: u64, // minutes of the last decrement/access
    counter: u8,
}

pub struct RedisLfu {
    store: Store<LfuMeta>,
    pool: RedisPool,
    cap: usize,
    samples: usize,
    log_factor: f64,
    decay_time: u64,
    clock: Clock,
    rng: Rng,
    buf: Vec<usize>,
}

impl RedisLfu {
    pub fn new(ids: usize, cap: usize, samples: usize, clock: Clock, seed: u64) -> Self {
        RedisLfu {
            store: Store::new(ids, cap + 1),
            pool: RedisPool::new(),
            cap,
            samples,
            log_factor: 10.0,
            decay_time: 1,
            clock,
            rng: Rng::new(seed),
            buf: Vec::new(),
        }
    }

    fn decr_and_return(&self, m: LfuMeta, now_min: u64) -> u8 {
        let periods = now_min.saturating_sub(m.ldt).checked_div(self.decay_time).unwrap_or(0);
        if periods > m.counter as u64 {
            0
        } else {
            m.counter - periods as u8
        }
    }

    fn log_incr(&mut self, counter: u8) -> u8 {
        if counter == 255 {
            return 255;
        }
        let r = self.rng.next_f64();
        let base = (counter as f64 - LFU_INIT_VAL as f64).max(0.0);
        let p = 1.0 / (base * self.log_factor + 1.0);
        if r < p {
            counter + 1
        } else {
            counter
        }
    }
}

impl Cache for RedisLfu {
    fn access(&mut self, key: u32, t: u64) -> bool {
        let now_min = self.clock.mins(t);
        if let Some(s) = self.store.find(key) {
            let c = self.decr_and_return(self.store.meta[s], now_min);
            let c = self.log_incr(c);
            self.store.meta[s] = LfuMeta { ldt: now_min, counter: c };
            return true;
        }
        while self.store.len() >= self.cap {
            loop {
                sample_slots(&mut self.rng, self.store.len(), self.samples, &mut self.buf);
                for i in 0..self.buf.len() {
                    let s = self.buf[i];
                    let idle = 255 - self.decr_and_return(self.store.meta[s], now_min) as u64;
                    self.pool.offer(idle, self.store.keys[s]);
                }
                if let Some(s) = self.pool.pop(&self.store) {
                    self.store.remove(s);
                    break;
                }
            }
        }
        self.store.insert(key, LfuMeta { ldt: now_min, counter: LFU_INIT_VAL });
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Exact LRU (reference).

pub struct ExactLru {
    prev: Vec<u32>,
    next: Vec<u32>,
    resident: Vec<bool>,
    len: usize,
    cap: usize,
    head: u32, // sentinel index = ids
}

impl ExactLru {
    pub fn new(ids: usize, cap: usize) -> Self {
        let h = ids as u32;
        let mut prev = vec![0; ids + 1];
        let mut next = vec![0; ids + 1];
        prev[ids] = h;
        next[ids] = h;
        ExactLru { prev, next, resident: vec![false; ids], len: 0, cap, head: h }
    }
    fn unlink(&mut self, k: u32) {
        let (p, n) = (self.prev[k as usize], self.next[k as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }
    fn push_front(&mut self, k: u32) {
        let h = self.head;
        let first = self.next[h as usize];
        self.next[k as usize] = first;
        self.prev[k as usize] = h;
        self.prev[first as usize] = k;
        self.next[h as usize] = k;
    }
}

impl Cache for ExactLru {
    fn access(&mut self, key: u32, _t: u64) -> bool {
        if self.resident[key as usize] {
            self.unlink(key);
            self.push_front(key);
            return true;
        }
        if self.len >= self.cap {
            let victim = self.prev[self.head as usize];
            self.unlink(victim);
            self.resident[victim as usize] = false;
            self.len -= 1;
        }
        self.push_front(key);
        self.resident[key as usize] = true;
        self.len += 1;
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Side structures for the candidates.

/// Count-min sketch of 4-bit counters, depth 4, conservative update, halved ("aged") every
/// `reset_every` increments (TinyLFU's reset). Memory: 4 * width / 2 bytes.
pub struct Cms {
    rows: [Vec<u64>; 4], // 16 counters per word
    mask: u64,
    adds: u64,
    reset_every: u64,
}

impl Cms {
    pub fn new(width: usize, reset_every: u64) -> Self {
        let width = width.next_power_of_two().max(64);
        let words = width / 16;
        Cms {
            rows: [vec![0; words], vec![0; words], vec![0; words], vec![0; words]],
            mask: width as u64 - 1,
            adds: 0,
            reset_every: reset_every.max(1),
        }
    }
    fn idx(&self, key: u32, row: usize) -> (usize, u32) {
        let h = mix64((key as u64) ^ (0xA076_1D64_78BD_642F_u64.wrapping_mul(row as u64 + 1))) & self.mask;
        ((h / 16) as usize, ((h % 16) * 4) as u32)
    }
    pub fn estimate(&self, key: u32) -> u32 {
        (0..4)
            .map(|r| {
                let (w, sh) = self.idx(key, r);
                ((self.rows[r][w] >> sh) & 15) as u32
            })
            .min()
            .unwrap_or(0)
    }
    pub fn increment(&mut self, key: u32) {
        let est = self.estimate(key);
        if est < 15 {
            for r in 0..4 {
                let (w, sh) = self.idx(key, r);
                if ((self.rows[r][w] >> sh) & 15) as u32 == est {
                    self.rows[r][w] += 1 << sh;
                }
            }
        }
        self.adds += 1;
        if self.adds >= self.reset_every {
            for row in &mut self.rows {
                for w in row.iter_mut() {
                    *w = (*w >> 1) & 0x7777_7777_7777_7777;
                }
            }
            self.adds /= 2;
        }
    }
}

/// Ghost: a direct-mapped table of fingerprints of recently evicted keys, each with a small
/// payload (e.g. the time or counter it had). Memory: 8 bytes per slot. Lookups may miss (the
/// slot was overwritten) or, rarely, hit a different key with the same 32-bit fingerprint.
pub struct Ghost {
    slots: Vec<(u32, u32)>,
    mask: usize,
}

impl Ghost {
    pub fn new(slots: usize) -> Self {
        let n = slots.next_power_of_two().max(16);
        Ghost { slots: vec![(0, 0); n], mask: n - 1 }
    }
    fn hf(key: u32) -> (usize, u32) {
        let h = mix64(key as u64 ^ 0x2545_F491_4F6C_DD1D);
        ((h >> 32) as usize, (h as u32) | 1)
    }
    pub fn put(&mut self, key: u32, payload: u32) {
        let (i, fp) = Self::hf(key);
        self.slots[i & self.mask] = (fp, payload);
    }
    /// Returns and clears the payload if the key's fingerprint is present.
    pub fn take(&mut self, key: u32) -> Option<u32> {
        let (i, fp) = Self::hf(key);
        let s = &mut self.slots[i & self.mask];
        if s.0 == fp {
            s.0 = 0;
            Some(s.1)
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generic sampled policy: `k` fresh samples + a pool of `p` earlier candidates, all re-scored at
// each eviction; the lowest score is evicted.

pub trait Scorer {
    type Meta: Copy;
    /// Every request (hit or miss), before the lookup.
    fn on_request(&mut self, _key: u32, _t: u64) {}
    fn on_insert(&mut self, key: u32, t: u64) -> Self::Meta;
    fn on_hit(&mut self, m: &mut Self::Meta, key: u32, t: u64);
    /// Lower = evicted first. May update the metadata (e.g. a second-chance bit).
    fn score(&mut self, m: &mut Self::Meta, key: u32, t: u64) -> u64;
    fn on_evict(&mut self, _m: &Self::Meta, _key: u32, _t: u64) {}
}

pub struct Sampled<S: Scorer> {
    store: Store<S::Meta>,
    scorer: S,
    cap: usize,
    k: usize,
    p: usize,
    pool: Vec<u32>,
    rng: Rng,
    slots: Vec<usize>,
    cand: Vec<(u64, u32, usize)>,
}

impl<S: Scorer> Sampled<S> {
    pub fn new(ids: usize, cap: usize, k: usize, p: usize, scorer: S, seed: u64) -> Self {
        Sampled {
            store: Store::new(ids, cap + 1),
            scorer,
            cap,
            k,
            p,
            pool: Vec::new(),
            rng: Rng::new(seed),
            slots: Vec::new(),
            cand: Vec::new(),
        }
    }

    fn evict(&mut self, t: u64) {
        self.cand.clear();
        for &key in &self.pool {
            if let Some(s) = self.store.find(key) {
                let sc = self.scorer.score(&mut self.store.meta[s], key, t);
                self.cand.push((sc, key, s));
            }
        }
        sample_slots(&mut self.rng, self.store.len(), self.k, &mut self.slots);
        for &s in &self.slots {
            let key = self.store.keys[s];
            if self.cand.iter().any(|c| c.1 == key) {
                continue;
            }
            let sc = self.scorer.score(&mut self.store.meta[s], key, t);
            self.cand.push((sc, key, s));
        }
        self.cand.sort_unstable_by_key(|c| (c.0, c.1));
        let (_, key, slot) = self.cand[0];
        self.pool.clear();
        self.pool.extend(self.cand.iter().skip(1).take(self.p).map(|c| c.1));
        let m = self.store.meta[slot];
        self.scorer.on_evict(&m, key, t);
        self.store.remove(slot);
    }
}

impl<S: Scorer> Cache for Sampled<S> {
    fn access(&mut self, key: u32, t: u64) -> bool {
        self.scorer.on_request(key, t);
        if let Some(s) = self.store.find(key) {
            self.scorer.on_hit(&mut self.store.meta[s], key, t);
            return true;
        }
        while self.store.len() >= self.cap {
            self.evict(t);
        }
        let m = self.scorer.on_insert(key, t);
        self.store.insert(key, m);
        false
    }
}

/// Sampled LRU with a millisecond clock (what Redis's LRU would be with a finer clock and
/// fresh pool scores).
pub struct LruMs {
    pub clock: Clock,
}

impl Scorer for LruMs {
    type Meta = u64;
    fn on_insert(&mut self, _k: u32, t: u64) -> u64 {
        self.clock.ms(t)
    }
    fn on_hit(&mut self, m: &mut u64, _k: u32, t: u64) {
        *m = self.clock.ms(t);
    }
    fn score(&mut self, m: &mut u64, _k: u32, _t: u64) -> u64 {
        *m
    }
}

/// Sampled TinyLFU victim choice: a count-min sketch counts every request (hits and misses);
/// the sampled key with the lowest estimate is evicted, ties broken by the oldest access
/// (per-key metadata: a millisecond access clock).
pub struct TinyLfu {
    pub clock: Clock,
    pub cms: Cms,
}

impl Scorer for TinyLfu {
    type Meta = u64;
    fn on_request(&mut self, key: u32, _t: u64) {
        self.cms.increment(key);
    }
    fn on_insert(&mut self, _k: u32, t: u64) -> u64 {
        self.clock.ms(t)
    }
    fn on_hit(&mut self, m: &mut u64, _k: u32, t: u64) {
        *m = self.clock.ms(t);
    }
    fn score(&mut self, m: &mut u64, key: u32, _t: u64) -> u64 {
        ((self.cms.estimate(key) as u64) << 40) | (*m & ((1 << 40) - 1))
    }
}

/// LRU-2 (sampled): evict the key whose second-to-last access is oldest; keys seen once are
/// evicted first (oldest last access first). With `ghost`, an evicted key's last access time
/// is remembered by fingerprint, so a key that comes back has a history.
pub struct Lru2 {
    pub clock: Clock,
    pub ghost: Option<Ghost>,
    /// `lru2v`: a key seen once is scored as if its previous access was `virt` ms before its
    /// last one (None: strict LRU-2, seen-once keys always go first).
    pub virt: Option<u64>,
}

const NONE: u64 = u64::MAX;

impl Scorer for Lru2 {
    type Meta = (u64, u64); // (last, previous) in ms; previous = NONE if seen once
    fn on_insert(&mut self, key: u32, t: u64) -> (u64, u64) {
        let now = self.clock.ms(t);
        let prev = self.ghost.as_mut().and_then(|g| g.take(key)).map(|v| v as u64).unwrap_or(NONE);
        (now, prev)
    }
    fn on_hit(&mut self, m: &mut (u64, u64), _k: u32, t: u64) {
        *m = (self.clock.ms(t), m.0);
    }
    fn score(&mut self, m: &mut (u64, u64), _k: u32, _t: u64) -> u64 {
        match (m.1, self.virt) {
            (NONE, None) => m.0,
            (NONE, Some(v)) => (1 << 62) + m.0.saturating_sub(v),
            (t2, _) => (1 << 62) + t2,
        }
    }
    fn on_evict(&mut self, m: &(u64, u64), key: u32, _t: u64) {
        if let Some(g) = self.ghost.as_mut() {
            g.put(key, m.0 as u32);
        }
    }
}

/// Sampled LFU with aging by cache turnover and recency tie-break: Redis's 8-bit log counter
/// (factor 10, init 5), but the counter decays by 1 per `period` insertions since the key's
/// last access (instead of per minute), and ties go to the oldest access. With `ghost`, an
/// evicted key's counter is remembered and restored when it returns.
pub struct LfuAged {
    pub clock: Clock,
    pub rng: Rng,
    pub inserts: u64,
    pub period: u64,
    pub ghost: Option<Ghost>,
}

#[derive(Clone, Copy)]
pub struct LfuAgedMeta {
    counter: u8,
    epoch: u64, // insert-epoch of the last access
    last_ms: u64,
}

impl LfuAged {
    fn epoch(&self) -> u64 {
        self.inserts / self.period
    }
    fn decayed(&self, m: &LfuAgedMeta) -> u8 {
        let d = self.epoch().saturating_sub(m.epoch);
        (m.counter as u64).saturating_sub(d) as u8
    }
}

impl Scorer for LfuAged {
    type Meta = LfuAgedMeta;
    fn on_insert(&mut self, key: u32, t: u64) -> LfuAgedMeta {
        self.inserts += 1;
        let c =
            self.ghost.as_mut().and_then(|g| g.take(key)).map(|v| (v as u8).max(LFU_INIT_VAL)).unwrap_or(LFU_INIT_VAL);
        LfuAgedMeta { counter: c, epoch: self.epoch(), last_ms: self.clock.ms(t) }
    }
    fn on_hit(&mut self, m: &mut LfuAgedMeta, _k: u32, t: u64) {
        let mut c = self.decayed(m);
        if c < 255 {
            let base = (c as f64 - LFU_INIT_VAL as f64).max(0.0);
            if self.rng.next_f64() < 1.0 / (base * 10.0 + 1.0) {
                c += 1;
            }
        }
        *m = LfuAgedMeta { counter: c, epoch: self.epoch(), last_ms: self.clock.ms(t) };
    }
    fn score(&mut self, m: &mut LfuAgedMeta, _k: u32, _t: u64) -> u64 {
        ((self.decayed(m) as u64) << 48) | m.last_ms
    }
    fn on_evict(&mut self, m: &LfuAgedMeta, key: u32, _t: u64) {
        let c = self.decayed(m);
        if let Some(g) = self.ghost.as_mut() {
            g.put(key, c as u32);
        }
    }
}

/// Hyperbolic caching (Blankstein et al., 2017): priority = accesses / time in cache; evict
/// the lowest. Per key: a hit counter and the insertion time.
pub struct Hyperbolic;

impl Scorer for Hyperbolic {
    type Meta = (u32, u64); // (count, insert t)
    fn on_insert(&mut self, _k: u32, t: u64) -> (u32, u64) {
        (1, t)
    }
    fn on_hit(&mut self, m: &mut (u32, u64), _k: u32, _t: u64) {
        m.0 = m.0.saturating_add(1);
    }
    fn score(&mut self, m: &mut (u32, u64), _k: u32, t: u64) -> u64 {
        let age = (t - m.1 + 1) as f64;
        ((m.0 as f64 / age) * (1u64 << 40) as f64) as u64
    }
}

/// Decayed LFU: a linear access counter per key, halved once per `window` requests that
/// passed since the key's last update (lazy exponential decay with a half-life of `window`
/// requests); the lowest decayed count is evicted, ties to the oldest access. New keys start at
/// 1, or, with `ghost`, at the decayed count they had when evicted (fingerprint table).
pub struct LfuDecay {
    pub clock: Clock,
    pub window: u64,
    pub max: u32,
    pub ghost: Option<Ghost>,
    /// `lfu-rec`: the rate estimate is min(count / (1.44 * window), kappa / idle) (idle = requests
    /// since the last access), so a key that stopped being requested loses its frequency
    /// credit after about kappa of its old inter-arrival times.
    pub kappa: Option<f64>,
    /// `lfu-pois`: score = rate * exp(-rate * idle / kappa), rate = count / (1.44 * window): a
    /// key idle for many of its own inter-arrival times is presumed dead.
    pub pois: bool,
    /// Quantized clock (the server's 16-bit access clock): requests per tick; the halving epoch
    /// is then tick / ticks_per_window. None: exact request clock.
    pub tick: Option<(u64, u64)>, // (requests per tick, ticks per window)
}

#[derive(Clone, Copy)]
pub struct DecayMeta {
    count: u32,
    epoch: u64,
    last_ms: u64, // last access: ms (tie-break) or, with `tick`, the tick number
}

impl LfuDecay {
    fn epoch_of(&self, t: u64) -> u64 {
        match self.tick {
            Some((rpt, tpw)) => t / rpt / tpw,
            None => t / self.window,
        }
    }
    fn stamp(&self, t: u64) -> u64 {
        match self.tick {
            Some((rpt, _)) => t / rpt,
            None => self.clock.ms(t),
        }
    }
    /// Requests since the last access, as the stored stamp allows.
    fn idle(&self, m: &DecayMeta, t: u64) -> f64 {
        match self.tick {
            Some((rpt, _)) => ((t / rpt).saturating_sub(m.last_ms) as f64 + 0.5) * rpt as f64,
            None => (self.clock.ms(t).saturating_sub(m.last_ms) as f64 + 1.0) * self.clock.rate / 1000.0,
        }
    }
    fn decayed(&self, m: &DecayMeta, t: u64) -> u32 {
        let e = self.epoch_of(t);
        let d = e.saturating_sub(m.epoch);
        if d >= 32 {
            0
        } else {
            m.count >> d
        }
    }
}

impl Scorer for LfuDecay {
    type Meta = DecayMeta;
    fn on_insert(&mut self, key: u32, t: u64) -> DecayMeta {
        let e = self.epoch_of(t);
        let restored = self.ghost.as_mut().and_then(|g| g.take(key)).map(|v| {
            // payload: count (16 bits) | epoch low 16 bits
            let (c, ep) = (v >> 16, (v & 0xFFFF) as u64);
            let d = (e & 0xFFFF).wrapping_sub(ep) & 0xFFFF;
            if d >= 32 {
                0
            } else {
                c >> d
            }
        });
        DecayMeta { count: restored.unwrap_or(0).saturating_add(1).min(self.max), epoch: e, last_ms: self.stamp(t) }
    }
    fn on_hit(&mut self, m: &mut DecayMeta, _k: u32, t: u64) {
        let c = self.decayed(m, t);
        *m = DecayMeta { count: (c + 1).min(self.max), epoch: self.epoch_of(t), last_ms: self.stamp(t) };
    }
    fn score(&mut self, m: &mut DecayMeta, _k: u32, t: u64) -> u64 {
        let c = self.decayed(m, t);
        match self.kappa {
            None => ((c as u64) << 40) | (m.last_ms & ((1 << 40) - 1)),
            Some(kappa) => {
                let idle = self.idle(m, t);
                let rate = c as f64 / (1.44 * self.window as f64);
                let est = if self.pois { rate * (-rate * idle / kappa).exp() } else { rate.min(kappa / idle) };
                (est * 1e15) as u64
            }
        }
    }
    fn on_evict(&mut self, m: &DecayMeta, key: u32, t: u64) {
        let c = self.decayed(m, t).min(0xFFFF);
        let e = self.epoch_of(t);
        if let Some(g) = self.ghost.as_mut() {
            g.put(key, (c << 16) | (e & 0xFFFF) as u32);
        }
    }
}

/// Reference (not implementable by sampling): perfect LFU with full history: exact request
/// counts of every key since the start (resident or not); evicts the resident key with the
/// globally lowest count (ties: oldest access).
pub struct LfuExact {
    counts: Vec<u32>,
    last: Vec<u64>,
    resident: Vec<bool>,
    set: std::collections::BTreeSet<(u32, u64, u32)>,
    cap: usize,
}

impl LfuExact {
    pub fn new(ids: usize, cap: usize) -> Self {
        LfuExact { counts: vec![0; ids], last: vec![0; ids], resident: vec![false; ids], set: Default::default(), cap }
    }
}

impl Cache for LfuExact {
    fn access(&mut self, key: u32, t: u64) -> bool {
        let k = key as usize;
        let hit = self.resident[k];
        if hit {
            self.set.remove(&(self.counts[k], self.last[k], key));
        } else if self.set.len() >= self.cap {
            if let Some(v) = self.set.pop_first() {
                self.resident[v.2 as usize] = false;
            }
        }
        self.counts[k] += 1;
        self.last[k] = t;
        self.resident[k] = true;
        self.set.insert((self.counts[k], t, key));
        hit
    }
}

// ---------------------------------------------------------------------------------------------
// S3-FIFO adapted to sampling.

#[derive(Clone, Copy)]
struct S3Meta {
    small: bool,
    freq: u8,   // 0..=3, accesses since insertion / last second chance
    stamp: u64, // ms: insertion (small) or (re)insertion into main
}

/// S3-FIFO (Yang et al., SOSP 2023) with sampling instead of queues:
/// - a per-key "small" bit; new keys go to small unless their fingerprint is in the ghost;
/// - eviction samples `k` keys; while small holds more than 10% of the keys, the sampled small
///   keys are handled first: those accessed at least `promote` times since insertion move to
///   main (bit cleared, freq 0, stamp = now); of the others, the oldest is evicted and its
///   fingerprint goes to the ghost;
/// - otherwise (or if the sample held no evictable small key) the sampled main keys with
///   freq > 0 get a second chance (freq -= 1, stamp = now) and the oldest main key with freq 0
///   is evicted; if none, resample (after 8 rounds: evict the oldest of the lowest freq).
pub struct S3Fifo {
    store: Store<S3Meta>,
    cap: usize,
    k: usize,
    small_count: usize,
    small_ratio: f64,
    promote: u8,
    max_freq: u8,
    ghost: Ghost,
    clock: Clock,
    rng: Rng,
    slots: Vec<usize>,
}

impl S3Fifo {
    pub fn new(
        ids: usize,
        cap: usize,
        k: usize,
        promote: u8,
        small_ratio: f64,
        max_freq: u8,
        clock: Clock,
        seed: u64,
    ) -> Self {
        S3Fifo {
            store: Store::new(ids, cap + 1),
            cap,
            k,
            small_count: 0,
            small_ratio,
            promote,
            max_freq,
            ghost: Ghost::new(cap),
            clock,
            rng: Rng::new(seed),
            slots: Vec::new(),
        }
    }

    fn evict(&mut self, t: u64) {
        let now = self.clock.ms(t);
        for round in 0.. {
            sample_slots(&mut self.rng, self.store.len(), self.k, &mut self.slots);
            if self.small_count as f64 > self.small_ratio * self.store.len() as f64 {
                let mut best: Option<(u64, usize)> = None;
                for &s in &self.slots {
                    let m = &mut self.store.meta[s];
                    if !m.small {
                        continue;
                    }
                    if m.freq >= self.promote {
                        *m = S3Meta { small: false, freq: 0, stamp: now };
                        self.small_count -= 1;
                    } else if best.is_none_or(|b| m.stamp < b.0) {
                        best = Some((m.stamp, s));
                    }
                }
                if let Some((_, s)) = best {
                    let (key, _) = self.store.remove(s);
                    self.small_count -= 1;
                    self.ghost.put(key, 1);
                    return;
                }
            }
            let mut best: Option<(u64, usize)> = None;
            let mut fallback: Option<(u8, u64, usize)> = None;
            for &s in &self.slots {
                let m = &mut self.store.meta[s];
                if m.small {
                    continue;
                }
                if fallback.is_none_or(|f| (m.freq, m.stamp) < (f.0, f.1)) {
                    fallback = Some((m.freq, m.stamp, s));
                }
                if m.freq > 0 {
                    m.freq -= 1;
                    m.stamp = now;
                } else if best.is_none_or(|b| m.stamp < b.0) {
                    best = Some((m.stamp, s));
                }
            }
            let pick = best.map(|b| b.1).or(if round >= 8 { fallback.map(|f| f.2) } else { None });
            if let Some(s) = pick {
                self.store.remove(s);
                return;
            }
            if round >= 8 && fallback.is_none() {
                // Only small keys sampled for 8 rounds: evict the oldest small key.
                let s = *self.slots.iter().min_by_key(|&&s| self.store.meta[s].stamp).unwrap_or(&0);
                if self.store.meta[s].small {
                    self.small_count -= 1;
                }
                self.store.remove(s);
                return;
            }
        }
    }
}

impl Cache for S3Fifo {
    fn access(&mut self, key: u32, t: u64) -> bool {
        if let Some(s) = self.store.find(key) {
            let m = &mut self.store.meta[s];
            m.freq = (m.freq + 1).min(self.max_freq);
            return true;
        }
        while self.store.len() >= self.cap {
            self.evict(t);
        }
        let small = self.ghost.take(key).is_none();
        if small {
            self.small_count += 1;
        }
        self.store.insert(key, S3Meta { small, freq: 0, stamp: self.clock.ms(t) });
        false
    }
}

// ---------------------------------------------------------------------------------------------

/// A policy name as given on the command line: `base` followed by `/<letter><number>` options:
/// `k` samples per eviction (5), `p` pool size (16), and per policy: `w` window / aging period
/// as a multiple of the capacity, `c` counter cap, `x` kappa, `g` ghost slots as a multiple of
/// the capacity, `s` small-queue share (S3-FIFO), `t` clock ticks per window (quantized clock).
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub base: String,
    opts: Vec<(char, f64)>,
}

pub const BASES: &[&str] = &[
    "redis-lru",
    "redis-lfu",
    "lru-exact",
    "lfu-exact",
    "lru-ms",
    "hyperbolic",
    "lfu-aged",
    "lfu-aged-ghost",
    "lfu-decay",
    "lfu-decay-ghost",
    "lfu-rec",
    "lfu-rec-ghost",
    "lfu-pois",
    "lfu-pois-ghost",
    "tinylfu",
    "lru2",
    "lru2-ghost",
    "lru2v",
    "lru2v-ghost",
    "s3fifo",
    "s3fifo2",
];

/// The recommended policy (bench/EVICTION-STUDY.md): `auto` is this parameterization.
pub const AUTO: &str = "lfu-pois-ghost/k16/p16/w40/x1.4/c63/t256/g1";

impl Policy {
    pub fn parse(s: &str) -> Result<Policy, String> {
        if let Some(rest) = s.strip_prefix("auto") {
            let mut p = Policy::parse(&format!("{AUTO}{rest}"))?;
            p.name = s.to_string();
            return Ok(p);
        }
        let mut parts = s.split('/');
        let base = parts.next().unwrap_or_default().to_string();
        if !BASES.contains(&base.as_str()) {
            return Err(format!("unknown policy '{base}' (known: {})", BASES.join(", ")));
        }
        let mut opts = Vec::new();
        for part in parts {
            let bad = || format!("bad policy option '{part}' in '{s}' (k, p, w, c, x, g, s + number)");
            let mut ch = part.chars();
            let c = ch.next().filter(|c| "kpwcxgst".contains(*c)).ok_or_else(bad)?;
            let v: f64 = ch.as_str().parse().ok().filter(|v: &f64| *v >= 0.0).ok_or_else(bad)?;
            if c == 'k' && v < 1.0 {
                return Err(bad());
            }
            opts.push((c, v));
        }
        Ok(Policy { name: s.to_string(), base, opts })
    }

    fn opt(&self, c: char, default: f64) -> f64 {
        self.opts.iter().rev().find(|o| o.0 == c).map(|o| o.1).unwrap_or(default)
    }

    pub fn build(&self, ids: usize, cap: usize, clock: Clock, seed: u64) -> Box<dyn Cache> {
        let k = self.opt('k', 5.0) as usize;
        let p = self.opt('p', 16.0) as usize;
        let capf = cap as f64;
        let ghost =
            |default: f64| self.base.ends_with("-ghost").then(|| Ghost::new((self.opt('g', default) * capf) as usize));
        let window = |default: f64| ((self.opt('w', default) * capf) as u64).max(1);
        match self.base.as_str() {
            "redis-lru" => Box::new(RedisLru::new(ids, cap, k, clock, seed)),
            "redis-lfu" => Box::new(RedisLfu::new(ids, cap, k, clock, seed)),
            "lru-exact" => Box::new(ExactLru::new(ids, cap)),
            "lfu-exact" => Box::new(LfuExact::new(ids, cap)),
            "lru-ms" => Box::new(Sampled::new(ids, cap, k, p, LruMs { clock }, seed)),
            "hyperbolic" => Box::new(Sampled::new(ids, cap, k, p, Hyperbolic, seed)),
            "tinylfu" => {
                let cms = Cms::new((self.opt('g', 4.0) * capf) as usize, window(10.0));
                Box::new(Sampled::new(ids, cap, k, p, TinyLfu { clock, cms }, seed))
            }
            "lru2" | "lru2-ghost" | "lru2v" | "lru2v-ghost" => {
                let virt = self.base.starts_with("lru2v").then(|| clock.ms(window(1.0)));
                Box::new(Sampled::new(ids, cap, k, p, Lru2 { clock, ghost: ghost(2.0), virt }, seed))
            }
            "lfu-aged" | "lfu-aged-ghost" => {
                let sc =
                    LfuAged { clock, rng: Rng::new(seed ^ 77), inserts: 0, period: window(1.0), ghost: ghost(2.0) };
                Box::new(Sampled::new(ids, cap, k, p, sc, seed))
            }
            "lfu-decay" | "lfu-decay-ghost" | "lfu-rec" | "lfu-rec-ghost" | "lfu-pois" | "lfu-pois-ghost" => {
                let decay_only = self.base.starts_with("lfu-decay");
                let pois = self.base.starts_with("lfu-pois");
                let win = window(if decay_only { 10.0 } else { 50.0 });
                let tpw = self.opt('t', 0.0) as u64;
                let sc = LfuDecay {
                    tick: (tpw > 0).then(|| ((win / tpw).max(1), tpw)),
                    clock,
                    window: win,
                    max: self.opt('c', 4095.0) as u32,
                    ghost: ghost(2.0),
                    kappa: (!decay_only).then(|| self.opt('x', if pois { 1.0 } else { 0.5 })),
                    pois,
                };
                Box::new(Sampled::new(ids, cap, k, p, sc, seed))
            }
            "s3fifo" | "s3fifo2" => {
                let promote = if self.base == "s3fifo2" { 2 } else { 1 };
                let small = self.opt('s', 0.1);
                let maxf = self.opt('c', 3.0).min(255.0) as u8;
                Box::new(S3Fifo::new(ids, cap, k, promote, small, maxf, clock, seed))
            }
            _ => unreachable!("checked in parse"),
        }
    }
}

/// Runs one policy over a trace; returns (hits, misses) counted from `warmup` on.
pub fn run(cache: &mut dyn Cache, trace: &[u32], warmup: usize) -> (usize, usize) {
    let (mut hits, mut misses) = (0, 0);
    for (t, &k) in trace.iter().enumerate() {
        let hit = cache.access(k, t as u64);
        if t >= warmup {
            if hit {
                hits += 1;
            } else {
                misses += 1;
            }
        }
    }
    (hits, misses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_pool_keeps_best() {
        let mut p = RedisPool::new();
        for i in 0..40u32 {
            p.offer((i as u64 * 7919) % 101, i);
        }
        let idles: Vec<u64> = p.e.iter().map(|e| e.0).collect();
        assert!(idles.windows(2).all(|w| w[0] <= w[1]), "{idles:?}");
        assert!(p.e.iter().all(|e| e.1.is_some()));
        assert_eq!(idles[15], 100);
    }

    #[test]
    fn all_policies_respect_capacity_and_hit_repeats() {
        let clock = Clock { rate: 1000.0 };
        for b in BASES {
            let pol = Policy::parse(b).unwrap();
            let mut c = pol.build(1000, 10, clock, 1);
            let mut hits = 0;
            for t in 0..5000u64 {
                let key = if t % 2 == 0 { 0 } else { (t % 997) as u32 + 1 };
                if c.access(key, t) && key == 0 {
                    hits += 1;
                }
            }
            assert!(hits > 2000, "{b}: hot key hit {hits} times of 2500");
        }
    }

    #[test]
    fn cms_counts_and_ages() {
        let mut c = Cms::new(1024, 1000);
        for _ in 0..10 {
            c.increment(5);
        }
        assert_eq!(c.estimate(5), 10);
        for i in 0..990 {
            c.increment(1000 + i);
        }
        assert!(c.estimate(5) <= 5);
    }
}
