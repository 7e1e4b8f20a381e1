//! Recording reads for the online miss-ratio curves (`guard::mrc`): one curve for the whole
//! keyspace and one per namespace. A read costs a hash remix and one relaxed load unless
//! its key is in the sample (at most 2% of the keys and 4,096 per curve), which then takes
//! the curve's lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::LazyLock;

use guard::mrc::Shards;
use parking_lot::Mutex;

/// Keys each curve samples at most (about 230 KiB per curve).
pub const SAMPLED_KEYS: usize = 4096;
/// The share of keys each curve samples at most: 2% keeps the sampled reads' cost near 1%
/// of a GET's and the curve within 0.011 of the exact one on the benchmark traces
/// (`cache-replay mrc --max-rate 0.02`; at 1% the error reached 0.037).
pub const MAX_RATE: f64 = 0.02;

/// One curve and its sampling threshold (mirrored outside the lock for the fast path).
pub struct Mrc {
    threshold: AtomicU64,
    /// Made on the first sampled read, so a curve nobody reads costs nothing.
    shards: Mutex<Option<Shards>>,
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
        Mrc {
            threshold: AtomicU64::new((MAX_RATE * u64::MAX as f64) as u64),
            shards: Mutex::new(None),
            last_reads: AtomicU64::new(0),
        }
    }
}

impl Mrc {
    /// One read of a key whose table hash is `hash`; `size` is its bytes when it exists.
    ///
    /// The caller holds a shard lock, so a sampled read that finds the curve busy (another
    /// worker's sampled read, or the cron thread settling it) is dropped rather than waited
    /// for: the curve loses a sample, the read loses no time.
    #[inline]
    pub fn record(&self, hash: u64, size: Option<usize>) {
        let h = guard::mrc::remix(hash);
        if h >= self.threshold.load(Ordering::Relaxed) {
            return;
        }
        let Some(mut slot) = self.shards.try_lock() else { return };
        let s = slot.get_or_insert_with(|| Shards::with_rate(SAMPLED_KEYS, MAX_RATE));
        s.access(h, size.map(|b| b as f64));
        self.threshold.store(s.threshold(), Ordering::Relaxed);
    }

    /// Makes the curve now (the keyspace's, at startup), so its memory is part of the
    /// server's baseline rather than a jump at the first sampled read.
    pub fn prepare(&self) {
        self.shards.lock().get_or_insert_with(|| Shards::with_rate(SAMPLED_KEYS, MAX_RATE));
    }

    /// Remembers the scope's read count while curves are off, so turning them back on
    /// does not count every read since as unsampled.
    pub fn note_reads(&self, reads: u64) {
        self.last_reads.store(reads, Ordering::Relaxed);
    }

    /// Takes over `other`'s curve (a namespace carried into a new configuration).
    pub fn take_from(&self, other: &Mrc) {
        let taken = other.shards.lock().take();
        let mut mine = self.shards.lock();
        *mine = taken;
        self.threshold
            .store(mine.as_ref().map_or(other.threshold.load(Ordering::Relaxed), Shards::threshold), Ordering::Relaxed);
        self.last_reads.store(other.last_reads.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Called at each guardrail sample with the scope's read count so far: counts the reads
    /// since the last call (for the SHARDS-adj correction), ages the history by `decay`, and
    /// returns the hit ratio at each of [`guard::mrc::FACTORS`] × `base_bytes` (NaN before
    /// any sampled read).
    pub fn settle(&self, reads: u64, decay: f64, base_bytes: f64) -> Vec<f64> {
        let last = self.last_reads.swap(reads, Ordering::Relaxed);
        let mut slot = self.shards.lock();
        let Some(s) = slot.as_mut() else { return vec![f64::NAN; guard::mrc::FACTORS.len()] };
        s.count_all(reads.saturating_sub(last) as f64);
        s.decay(decay);
        guard::mrc::FACTORS.iter().map(|f| s.hit_ratio(f * base_bytes.max(1.0))).collect()
    }
}

static ON: AtomicBool = AtomicBool::new(true);

/// The curve of the whole keyspace.
pub static GLOBAL: LazyLock<Mrc> = LazyLock::new(Mrc::default);

/// Switches recording on or off (`guard-mrc`).
pub fn set_enabled(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}
