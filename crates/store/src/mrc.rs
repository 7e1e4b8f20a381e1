//! Recording reads for the online miss-ratio curves (`guard::mrc`): one curve for the whole
//! keyspace and one per namespace. A read costs a rotation of its hash and a compare unless
//! its key is in the sample (at most 2% of the keys and 4,096 per curve); a sampled read
//! appends its key's hash and size to the curve's buffer. The cron thread drains the buffers
//! into the curves ([`Mrc::drain`]), so the stack distances and the policy simulations run
//! off the serving threads and outside every shard lock.
//!
//! Each curve models its scope's eviction policy ([`Model`]): LRU by its stack distances,
//! LFU, `allkeys-auto` and the random policies by miniature simulations that apply the
//! clock rules of `access`, as eviction does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use guard::minisim::{Now, Policy};
use guard::mrc::Shards;
use parking_lot::Mutex;

use crate::access;

/// Keys each curve samples at most (about 230 KiB per curve, 0.9 MiB with a simulated
/// policy).
pub const SAMPLED_KEYS: usize = 4096;
/// The share of keys each curve samples at most, by default (`guard-mrc-sample-percent`): 2%
/// keeps the cron thread's work on the sampled reads near 1% of the reads' and the curve
/// within 0.011 of the exact one on the benchmark traces (`cache-replay mrc --max-rate 0.02`;
/// at 1% the error reached 0.037). A small keyspace has few keys in 2%, and its curve is
/// coarser: a higher share buys precision with cron-thread time.
pub const MAX_RATE: f64 = 0.02;

const DEFAULT_THRESHOLD: u64 = (MAX_RATE * u64::MAX as f64) as u64;
/// The sampling threshold curves start from ([`set_max_rate`]).
static START_THRESHOLD: AtomicU64 = AtomicU64::new(DEFAULT_THRESHOLD);

fn threshold_of(rate: f64) -> u64 {
    if rate >= 1.0 {
        u64::MAX
    } else {
        (rate.max(0.0) * u64::MAX as f64) as u64
    }
}

/// Sets the share of keys curves sample at most (at startup, before any curve is made).
pub fn set_max_rate(rate: f64) {
    START_THRESHOLD.store(threshold_of(rate), Ordering::Relaxed);
    GLOBAL.threshold.store(threshold_of(rate), Ordering::Relaxed);
}

fn max_rate() -> f64 {
    START_THRESHOLD.load(Ordering::Relaxed) as f64 / u64::MAX as f64
}
/// Sampled reads a curve buffers between two drains (64 KiB, twice: the cron thread
/// works through one half while the readers fill the other). The cron thread drains every
/// `1 / hz` seconds, so at the default `hz` of 10 a curve keeps up with 40,960 sampled reads
/// a second: 2 million reads a second at 2%. Reads beyond that are not sampled, and the
/// curve discounts them rather than counting them as misses.
pub const BUFFER: usize = 4096;

/// The eviction policy a curve models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// `allkeys-lru`, `volatile-ttl` and `noeviction` (what LRU would do), by stack distances.
    Lru,
    /// `volatile-lru`: Redis's sampled LRU over the keys with a TTL, ranking `samples` keys a
    /// round.
    VolatileLru { samples: usize },
    /// Redis's LFU with its counter's log factor and decay, ranking `samples` keys a round;
    /// `volatile`: only keys with a TTL go.
    Lfu { log_factor: u32, decay_minutes: u32, samples: usize, volatile: bool },
    /// `allkeys-auto`, ranking `samples` keys a round.
    Auto { samples: usize },
    /// The random policies; `volatile`: only keys with a TTL go.
    Random { volatile: bool },
}

impl Model {
    /// The policy's name as INFO, `/metrics` and MEMORY MRC show it.
    pub fn name(self) -> &'static str {
        match self {
            Model::Lru => "lru",
            Model::VolatileLru { .. } => "volatile-lru",
            Model::Lfu { volatile: false, .. } => "lfu",
            Model::Lfu { volatile: true, .. } => "volatile-lfu",
            Model::Auto { .. } => "auto",
            Model::Random { volatile: false } => "random",
            Model::Random { volatile: true } => "volatile-random",
        }
    }

    /// The rules simulated (`None` for LRU, which the stack distances answer).
    pub fn policy(self) -> Option<Box<dyn Policy>> {
        match self {
            Model::Lru => None,
            Model::VolatileLru { samples } => Some(Box::new(LruRules { samples })),
            Model::Lfu { log_factor, decay_minutes, samples, volatile } => Some(Box::new(LfuRules {
                mode: access::Mode::Lfu { log_factor, decay_minutes },
                samples,
                volatile,
                coin: 1,
            })),
            Model::Auto { samples } => Some(Box::new(AutoRules { samples })),
            Model::Random { volatile } => Some(Box::new(RandomRules { volatile })),
        }
    }
}

/// Redis's LRU clock (seconds) and idle time, over the keys with a TTL (`volatile-lru`).
struct LruRules {
    samples: usize,
}

impl Policy for LruRules {
    fn samples(&self) -> usize {
        self.samples
    }
    fn volatile_only(&self) -> bool {
        true
    }
    fn enter(&mut self, _left: u32, now: Now) -> u32 {
        access::fresh(access::Mode::Lru, now.ms)
    }
    fn touch(&mut self, _clock: u32, now: Now) -> u32 {
        access::fresh(access::Mode::Lru, now.ms)
    }
    fn score(&self, clock: u32, now: Now) -> u64 {
        access::idle_ms(clock, now.ms)
    }
    fn leave(&self, _clock: u32, _now: Now) -> u32 {
        0
    }
}

/// Redis's LFU counter (`access::touched`): a returning key starts afresh.
struct LfuRules {
    mode: access::Mode,
    samples: usize,
    volatile: bool,
    coin: u64,
}

impl Policy for LfuRules {
    fn samples(&self) -> usize {
        self.samples
    }
    fn volatile_only(&self) -> bool {
        self.volatile
    }
    fn enter(&mut self, _left: u32, now: Now) -> u32 {
        access::fresh(self.mode, now.ms)
    }
    fn touch(&mut self, clock: u32, now: Now) -> u32 {
        self.coin = guard::mrc::remix(self.coin);
        access::touched(self.mode, clock, now.ms, (self.coin >> 11) as f64 / (1u64 << 53) as f64)
    }
    fn score(&self, clock: u32, now: Now) -> u64 {
        let access::Mode::Lfu { decay_minutes, .. } = self.mode else { return 0 };
        255 - u64::from(access::lfu_counter(clock, now.ms, decay_minutes))
    }
    fn leave(&self, _clock: u32, _now: Now) -> u32 {
        0
    }
}

/// `allkeys-auto`: counts and ticks, and an evicted key's count kept for its return (the
/// database's ghost table).
struct AutoRules {
    samples: usize,
}

impl Policy for AutoRules {
    fn samples(&self) -> usize {
        self.samples
    }
    fn window_per_key(&self) -> u64 {
        crate::db::AUTO_WINDOW
    }
    fn enter(&mut self, left: u32, now: Now) -> u32 {
        let kept = if left == 0 { 0 } else { access::auto_state(left, now.tick).0 };
        access::auto_clock(kept + 1, now.tick)
    }
    fn touch(&mut self, clock: u32, now: Now) -> u32 {
        access::auto_clock(access::auto_state(clock, now.tick).0 + 1, now.tick)
    }
    fn score(&self, clock: u32, now: Now) -> u64 {
        u64::MAX - (access::auto_score(clock, now.tick) * 1e12) as u64
    }
    fn leave(&self, clock: u32, _now: Now) -> u32 {
        clock
    }
}

/// `allkeys-random` and `volatile-random`.
struct RandomRules {
    volatile: bool,
}

impl Policy for RandomRules {
    fn samples(&self) -> usize {
        0
    }
    fn volatile_only(&self) -> bool {
        self.volatile
    }
    fn enter(&mut self, _left: u32, _now: Now) -> u32 {
        0
    }
    fn touch(&mut self, clock: u32, _now: Now) -> u32 {
        clock
    }
    fn score(&self, _clock: u32, _now: Now) -> u64 {
        0
    }
    fn leave(&self, _clock: u32, _now: Now) -> u32 {
        0
    }
}

/// A curve and the policy it models.
struct Curve {
    shards: Shards,
    model: Model,
    /// The buffer's other half: a drain swaps it with the full one, so no drain allocates.
    spare: Buffer,
}

impl Curve {
    fn new() -> Curve {
        Curve { shards: Shards::with_rate(SAMPLED_KEYS, max_rate()), model: Model::Lru, spare: Vec::new() }
    }

    /// Models `model` from now on; a change starts the policy's simulations afresh.
    fn apply(&mut self, model: Model) {
        if self.model != model || self.shards.simulates() != (model != Model::Lru) {
            self.model = model;
            self.shards.set_policy(model.policy());
        }
    }
}

/// Sampled reads and writes waiting for the cron thread: (sampling hash, size or `MISS`, with
/// `WRITE` set for a write and `TTL` for a key with a TTL).
type Buffer = Vec<(u64, u32)>;
const WRITE: u32 = 1 << 31;
const TTL: u32 = 1 << 30;
const MISS: u32 = TTL - 1;

/// Whether a sampling hash may be in any curve's sample (thresholds only fall from here).
#[inline]
fn may_sample(h: u64) -> bool {
    h < START_THRESHOLD.load(Ordering::Relaxed)
}

/// The sampling hash of a key with table hash `hash` when the curves are on and may sample
/// it (one in 50 keys at the default share): the callers skip the rest of the work,
/// such as the entry's size, for every other key.
///
/// The table hash is already uniform; rotated, the bits compared with the thresholds are
/// bits 42..47, which neither the shard (the top 6 bits), the bucket tag (bits 48..55) nor
/// a bucket index below 2^42 buckets uses, so the sample is spread over every shard.
#[inline]
pub fn sample_of(hash: u64) -> Option<u64> {
    if !enabled() {
        return None;
    }
    let h = hash.rotate_left(16);
    may_sample(h).then_some(h)
}

/// A write stored `bytes` for the key `key` (table hash `hash`), with a TTL or not: a
/// sampled key's size and TTL are updated in the curves, so a key a cache-aside client
/// brings in after a miss takes its real room in them, not just the room of the keys that
/// are read again (and the `volatile-*` simulations know whether it may be evicted).
#[inline]
pub fn record_write(hash: u64, bytes: usize, ttl: bool, key: &[u8]) {
    let Some(h) = sample_of(hash) else { return };
    let tag = if ttl { WRITE | TTL } else { WRITE };
    GLOBAL.offer(h, bytes, tag);
    crate::namespace::with_table(|t| {
        let i = t.index_of(key);
        if i < 64 {
            t.counters[i].mrc.offer(h, bytes, tag);
        }
    });
}

/// One curve, its buffer and its sampling threshold (mirrored outside the locks for the
/// fast path).
pub struct Mrc {
    threshold: AtomicU64,
    buffer: Mutex<Buffer>,
    /// Sampled reads that found the buffer full or busy since the last settle.
    dropped: AtomicU64,
    /// Made on the first sampled read, so a curve nobody reads costs nothing.
    curve: Mutex<Option<Curve>>,
    /// The scope's read count at the last [`Mrc::settle`].
    last_reads: AtomicU64,
}

impl std::fmt::Debug for Mrc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mrc").field("threshold", &self.threshold.load(Ordering::Relaxed)).finish()
    }
}

impl Default for Mrc {
    fn default() -> Mrc {
        Mrc::new(START_THRESHOLD.load(Ordering::Relaxed))
    }
}

impl Mrc {
    const fn new(threshold: u64) -> Mrc {
        Mrc {
            threshold: AtomicU64::new(threshold),
            buffer: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            curve: Mutex::new(None),
            last_reads: AtomicU64::new(0),
        }
    }

    /// One read of a key whose sampling hash ([`sample_of`]) is `h`; `size` is its bytes when
    /// it exists, `ttl` whether it has a TTL.
    ///
    /// The caller holds a shard lock, so a sampled read that finds the buffer busy (another
    /// worker's sampled read, or the cron thread taking it) or full is dropped rather than
    /// waited for: the curve loses a sample, the read loses no time.
    #[inline]
    pub fn record(&self, h: u64, size: Option<usize>, ttl: bool) {
        self.offer(h, size.unwrap_or(MISS as usize), if ttl { TTL } else { 0 });
    }

    /// Buffers a read or write (`tag` 0 or `WRITE`) of the key with sampling hash `h` if the
    /// key is in the sample.
    #[inline]
    fn offer(&self, h: u64, bytes: usize, tag: u32) {
        if h < self.threshold.load(Ordering::Relaxed) {
            self.push(h, bytes, tag);
        }
    }

    /// The sampled path (a few percent of the reads at most), kept out of the readers' code.
    #[cold]
    #[inline(never)]
    fn push(&self, h: u64, bytes: usize, tag: u32) {
        let size = bytes.min(MISS as usize) as u32 | tag;
        match self.buffer.try_lock() {
            Some(mut buf) if buf.len() < BUFFER => {
                if buf.capacity() == 0 {
                    buf.reserve_exact(BUFFER);
                }
                buf.push((h, size));
            }
            // a lost write only leaves the key's size as last read
            _ if tag & WRITE != 0 => {}
            _ => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Makes the curve now (the keyspace's, at startup), so its memory is part of the
    /// server's baseline rather than a jump at the first sampled read.
    pub fn prepare(&self) {
        let mut slot = self.curve.lock();
        let c = slot.get_or_insert_with(Curve::new);
        if c.spare.capacity() == 0 {
            c.spare.reserve_exact(BUFFER);
        }
        let mut buf = self.buffer.lock();
        if buf.capacity() == 0 {
            buf.reserve_exact(BUFFER);
        }
    }

    /// Bytes this curve holds: its sample, simulations and buffers.
    pub fn footprint(&self) -> usize {
        let buffered = self.buffer.lock().capacity();
        let curve = self.curve.lock();
        let held = curve.as_ref().map_or(0, |c| c.shards.footprint() + c.spare.capacity() * 16);
        held + buffered * 16
    }

    /// Feeds the buffered reads to the curve modelling `model`, at `now_ms` for policies that
    /// age by time, with the scope's memory now when known (`base_bytes`: the simulations'
    /// sizes are factors of it, and they wait for it). Called by the cron thread every tick.
    pub fn drain(&self, now_ms: i64, model: Model, base_bytes: Option<f64>) {
        if self.buffer.lock().is_empty() {
            return;
        }
        // the curve's lock first: readers only ever take the buffer's
        let mut slot = self.curve.lock();
        let c = slot.get_or_insert_with(Curve::new);
        c.apply(model);
        if let Some(b) = base_bytes {
            c.shards.set_base(b.max(1.0));
        }
        {
            let mut buf = self.buffer.lock();
            if c.spare.capacity() == 0 {
                c.spare.reserve_exact(BUFFER);
            }
            std::mem::swap(&mut *buf, &mut c.spare);
        }
        c.shards.set_now(now_ms);
        for (h, tagged) in c.spare.drain(..) {
            let (bytes, ttl) = (tagged & MISS, tagged & TTL != 0);
            if tagged & WRITE != 0 {
                c.shards.resize(h, f64::from(bytes), ttl);
            } else {
                c.shards.access_with(h, (bytes != MISS).then_some(f64::from(bytes)), ttl);
            }
        }
        self.threshold.store(c.shards.threshold(), Ordering::Relaxed);
    }

    /// Remembers the scope's read count while curves are off, so turning them back on
    /// does not count every read since as unsampled.
    pub fn note_reads(&self, reads: u64) {
        self.last_reads.store(reads, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        self.buffer.lock().clear();
    }

    /// Takes over `other`'s curve (a namespace carried into a new configuration).
    pub fn take_from(&self, other: &Mrc) {
        let taken = other.curve.lock().take();
        let pending = std::mem::take(&mut *other.buffer.lock());
        let mut mine = self.curve.lock();
        *mine = taken;
        *self.buffer.lock() = pending;
        self.threshold.store(
            mine.as_ref().map_or(other.threshold.load(Ordering::Relaxed), |c| c.shards.threshold()),
            Ordering::Relaxed,
        );
        self.last_reads.store(other.last_reads.load(Ordering::Relaxed), Ordering::Relaxed);
        self.dropped.store(other.dropped.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Called at each guardrail sample with the scope's read count so far and its policy:
    /// drains the buffer, counts the reads since the last call (for the SHARDS-adj
    /// correction, less the sampled reads dropped), ages the history by `decay`, and returns
    /// the hit ratio at each of [`guard::mrc::FACTORS`] × `base_bytes` (NaN before any
    /// sampled read). A change of model starts the policy's simulations afresh.
    pub fn settle(&self, reads: u64, decay: f64, base_bytes: f64, model: Model, now_ms: i64) -> Vec<f64> {
        self.drain(now_ms, model, Some(base_bytes));
        let last = self.last_reads.swap(reads, Ordering::Relaxed);
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        let mut slot = self.curve.lock();
        let Some(c) = slot.as_mut() else { return vec![f64::NAN; guard::mrc::FACTORS.len()] };
        c.apply(model);
        let unsampled = dropped as f64 / c.shards.rate();
        c.shards.count_all((reads.saturating_sub(last) as f64 - unsampled).max(0.0));
        c.shards.decay(decay);
        c.shards.set_base(base_bytes.max(1.0));
        c.shards.curve()
    }
}

static ON: AtomicBool = AtomicBool::new(true);

/// The curve of the whole keyspace.
pub static GLOBAL: Mrc = Mrc::new(DEFAULT_THRESHOLD);

/// Bytes every curve holds: the keyspace's and the namespaces'. A caller holding shard locks
/// (INFO inside EXEC) already keeps the namespace table in place, and must not wait for its
/// guard.
pub fn footprint(holding_shards: bool) -> usize {
    let _read = (!holding_shards).then(|| crate::namespace::GUARD.read_recursive());
    GLOBAL.footprint()
        + crate::namespace::with_table(|t| t.counters.iter().map(|c| c.mrc.footprint()).sum::<usize>()).unwrap_or(0)
}

/// Switches recording on or off (`guard-mrc`).
pub fn set_enabled(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table hashes this curve samples.
    fn sampled(m: &Mrc, n: usize) -> Vec<u64> {
        let t = m.threshold.load(Ordering::Relaxed);
        (0u64..).filter(|&h| guard::mrc::remix(h) < t).take(n).collect()
    }

    #[test]
    fn a_write_after_a_miss_gives_the_key_its_size() {
        // two rounds over 50 keys of 1,000 bytes: each key missed and then written, then each
        // read again at a distance of the 50 keys (50,000 bytes)
        let curve = |writes: bool| {
            let m = Mrc::default();
            let keys = sampled(&m, 50);
            for &h in &keys {
                m.record(guard::mrc::remix(h), None, false);
                if writes {
                    m.offer(guard::mrc::remix(h), 1000, WRITE);
                }
            }
            for &h in &keys {
                m.record(guard::mrc::remix(h), Some(1000), false);
            }
            // the reads are all sampled ones: 100 of them at the curve's rate
            let reads = (100.0 / max_rate()) as u64;
            m.settle(reads, 1.0, 25_000.0 / max_rate(), Model::Lru, 0)
        };
        let sized = curve(true);
        // at 1x (25,000 bytes) nothing is reused within reach; at 4x every second read hits
        assert!(sized[3] < 0.01, "{sized:?}");
        assert!((sized[7] - 0.5).abs() < 0.01, "{sized:?}");
        // without the writes the missed keys count one byte, and half the reuses look near
        let unsized_ = curve(false);
        assert!(unsized_[3] > 0.1, "{unsized_:?}");
    }

    #[test]
    fn lfu_keeps_the_frequent_keys_that_lru_loses_to_a_scan() {
        let model = Model::Lfu { log_factor: 10, decay_minutes: 1, samples: 5, volatile: false };
        let keys = sampled(&Mrc::default(), 1_000);
        let (hot, scan) = keys.split_at(20);
        // 20 hot keys read 24 times each, interleaved with 960 keys read once, 40 a round
        let run = |model: Model| {
            let m = Mrc::default();
            let mut count = 0u64;
            for round in 0..24 {
                for &h in hot {
                    m.record(guard::mrc::remix(h), Some(100), false);
                    count += 1;
                }
                for &h in &scan[round * 40..round * 40 + 40] {
                    m.record(guard::mrc::remix(h), None, false);
                    m.offer(guard::mrc::remix(h), 100, WRITE);
                    count += 1;
                }
                m.drain(0, model, Some(4_000.0 / max_rate()));
            }
            let curve = m.settle((count as f64 / max_rate()) as u64, 1.0, 4_000.0 / max_rate(), model, 0);
            (curve, count)
        };
        let (lfu, reads) = run(model);
        let (lru, _) = run(Model::Lru);
        // a cache of 40 keys' room at 1x: LFU keeps the hot keys (a third of the reads, all
        // hits after the first rounds), LRU's room goes to the keys read once
        assert!(lfu[3] > 0.18, "LFU {lfu:?}, {reads} reads");
        assert!(lru[3] < 0.05, "LRU {lru:?}");
    }

    #[test]
    fn volatile_lru_never_evicts_keys_without_a_ttl() {
        // 30 keys without a TTL read every round, and 40 keys with one read once a round;
        // 100 bytes each, cache-aside (a miss, then the write)
        let run = |model: Model| {
            let m = Mrc::default();
            let keys = sampled(&m, 30 + 40 * 20);
            let (kept, passing) = keys.split_at(30);
            let mut count = 0u64;
            let mut seen = std::collections::HashSet::new();
            let mut read = |h: u64, ttl: bool| {
                let h = guard::mrc::remix(h);
                if seen.insert(h) {
                    m.record(h, None, ttl);
                    m.offer(h, 100, WRITE | if ttl { TTL } else { 0 });
                } else {
                    m.record(h, Some(100), ttl);
                }
                count += 1;
            };
            for round in 0..20 {
                kept.iter().for_each(|&h| read(h, false));
                passing[round * 40..round * 40 + 40].iter().for_each(|&h| read(h, true));
                m.drain(0, model, Some(4_000.0 / max_rate()));
            }
            m.settle((count as f64 / max_rate()) as u64, 1.0, 4_000.0 / max_rate(), model, 0)
        };
        // 1x holds 40 keys: the 30 without a TTL stay and hit in every round after the first
        // (570 of 1,400 reads); at 0.25x (10 keys) the first 10 get in and stay, and the
        // others' writes are refused (190 hits)
        let volatile = run(Model::VolatileLru { samples: 5 });
        assert!((volatile[3] - 570.0 / 1400.0).abs() < 0.01, "{volatile:?}");
        assert!((volatile[0] - 190.0 / 1400.0).abs() < 0.01, "{volatile:?}");
        // LRU evicts them too: a reuse 70 keys apart misses in room for 40
        let lru = run(Model::Lru);
        assert!(lru[3] < 0.01, "{lru:?}");
    }
}
