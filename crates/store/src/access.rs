//! The 24-bit access clock every entry carries, read by eviction and OBJECT IDLETIME/FREQ.
//!
//! As in Redis, the same 24 bits mean one of two things depending on `maxmemory-policy`:
//!
//! * **LRU** (every policy but the LFU ones): the time of the last access in seconds, modulo
//!   2^24 (194 days), from which the idle time is computed.
//! * **LFU**: 16 bits of "last decrement time" in minutes (modulo 2^16) and an 8-bit
//!   logarithmic access counter. A new key starts at 5; each access first applies the decay
//!   (one step per `lfu-decay-time` minutes since the last decrement), then increments with
//!   probability 1 / ((counter − 5) × `lfu-log-factor` + 1), so the counter saturates at 255
//!   after about a million accesses with the default factor of 10.
//!
//! * **Auto** (Redoubt's `allkeys-auto`, see `bench/EVICTION-STUDY.md`): a 6-bit access count
//!   and the 16-bit *tick* of the last access. Ticks count accesses per database of a shard
//!   (one tick per 1/256 of a window of 40 × the keys it holds), so they measure idleness in
//!   requests, not seconds; the count is halved once per window without access. Eviction
//!   scores x·exp(−x·(idle + ½)/516.1) (x the decayed count): a key idle for many of its own
//!   average gaps between requests scores near zero. Evicted keys leave their count in a
//!   small ghost table, so a key that comes back resumes where it was.
//!
//! Switching policies at runtime reinterprets the bits, as Redis does; the values adjust
//! after a while.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

/// How a key's clock is maintained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Lru,
    Lfu { log_factor: u32, decay_minutes: u32 },
    Auto,
}

/// Whether the keyspace keeps Auto ticks (set from `maxmemory-policy`).
static AUTO: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// The tick of the database of the key looked up last on this thread.
    static TICK: Cell<u32> = const { Cell::new(0) };
}

/// Turns the Auto bookkeeping on or off.
pub fn set_auto(on: bool) {
    AUTO.store(on as u8, Ordering::Relaxed);
}

#[inline]
pub fn auto() -> bool {
    AUTO.load(Ordering::Relaxed) != 0
}

pub(crate) fn set_current_tick(t: u32) {
    TICK.with(|c| c.set(t));
}

/// The tick of the database of the last key looked up on this thread.
pub fn current_tick() -> u32 {
    TICK.with(Cell::get)
}

const AUTO_MAX: u32 = 63;
/// 1.44 × 256 × 1.4: see the study.
const AUTO_KAPPA: f64 = 516.1;

/// An Auto clock: count and tick.
pub fn auto_clock(count: u32, tick: u32) -> u32 {
    (count.min(AUTO_MAX) << 16) | (tick & 0xFFFF)
}

/// (decayed count, idle ticks) of an Auto clock at tick `now`.
pub fn auto_state(clock: u32, now: u32) -> (u32, u32) {
    let count = (clock >> 16) & AUTO_MAX;
    let last = clock & 0xFFFF;
    let idle = now.wrapping_sub(last) & 0xFFFF;
    let windows = (((now & 0xFFFF) >> 8).wrapping_sub(last >> 8)) & 0xFF;
    (count >> windows.min(6), idle)
}

/// The Auto eviction score: lower is evicted first.
pub fn auto_score(clock: u32, now: u32) -> f64 {
    let (x, idle) = auto_state(clock, now);
    let x = x as f64;
    x * (-x * (idle as f64 + 0.5) / AUTO_KAPPA).exp()
}

/// Redis's `LFU_INIT_VAL`: new keys start here so they are not evicted at once.
pub const LFU_INIT: u32 = 5;
const CLOCK_MASK: u32 = (1 << 24) - 1;

fn minutes(now_ms: i64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xFFFF
}

/// The clock of a key created now.
pub fn fresh(mode: Mode, now_ms: i64) -> u32 {
    match mode {
        Mode::Lru => crate::entry::lru_clock(now_ms),
        Mode::Lfu { .. } => (minutes(now_ms) << 8) | LFU_INIT,
        // The database replaces it with the ghost's memory when it stores the key.
        Mode::Auto => auto_clock(1, current_tick()),
    }
}

/// The clock of a key restored with RESTORE's IDLETIME or FREQ (Redis's `objectSetLRUOrLFU`):
/// FREQ sets the counter under LFU, IDLETIME backdates the access under LRU; each is ignored
/// under the other policies, which start the key fresh.
pub fn restored(mode: Mode, now_ms: i64, idle_secs: Option<u64>, freq: Option<u8>) -> u32 {
    match (mode, idle_secs, freq) {
        (Mode::Lfu { .. }, _, Some(f)) => (minutes(now_ms) << 8) | u32::from(f),
        (Mode::Lru, Some(idle), _) => {
            // Redis's rule: an idle time reaching past the clock's start lands half-way round
            // the 24-bit clock, so the key stays very idle.
            let now = crate::entry::lru_clock(now_ms);
            let max = CLOCK_MASK;
            match u32::try_from(idle).ok().and_then(|i| now.checked_sub(i)) {
                Some(at) => at,
                None => (now + max / 2) % max,
            }
        }
        _ => fresh(mode, now_ms),
    }
}

/// The clock after an access at `now_ms`. `coin` is a uniform random number in [0, 1).
pub fn touched(mode: Mode, clock: u32, now_ms: i64, coin: f64) -> u32 {
    match mode {
        Mode::Lru => crate::entry::lru_clock(now_ms),
        Mode::Auto => {
            let now = current_tick();
            let (count, _) = auto_state(clock, now);
            auto_clock(count + 1, now)
        }
        Mode::Lfu { log_factor, decay_minutes } => {
            let mut counter = lfu_counter(clock, now_ms, decay_minutes);
            if counter < 255 {
                let base = counter.saturating_sub(LFU_INIT) as f64;
                if coin < 1.0 / (base * log_factor as f64 + 1.0) {
                    counter += 1;
                }
            }
            ((minutes(now_ms) << 8) | counter) & CLOCK_MASK
        }
    }
}

/// The LFU counter after decay (Redis's `LFUDecrAndReturn`; OBJECT FREQ reports it).
pub fn lfu_counter(clock: u32, now_ms: i64, decay_minutes: u32) -> u32 {
    let last = clock >> 8;
    let counter = clock & 0xFF;
    let now = minutes(now_ms);
    let elapsed = if now >= last { now - last } else { 0xFFFF - last + now };
    let periods = elapsed.checked_div(decay_minutes).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Milliseconds since the last access of an LRU clock (1-second resolution).
pub fn idle_ms(clock: u32, now_ms: i64) -> u64 {
    crate::entry::lru_idle_secs(crate::entry::lru_clock(now_ms), clock) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    const LFU: Mode = Mode::Lfu { log_factor: 10, decay_minutes: 1 };

    #[test]
    fn lfu_counts_logarithmically_and_decays() {
        let now = 1_700_000_000_000;
        let mut c = fresh(LFU, now);
        assert_eq!(lfu_counter(c, now, 1), LFU_INIT);
        // With a coin of 0 every access counts.
        for _ in 0..10 {
            c = touched(LFU, c, now, 0.0);
        }
        assert_eq!(lfu_counter(c, now, 1), 15);
        // Above the initial value the odds fall: a coin of 0.5 no longer counts at 15.
        assert_eq!(lfu_counter(touched(LFU, c, now, 0.5), now, 1), 15);
        // Three minutes later, three decay steps.
        assert_eq!(lfu_counter(c, now + 3 * 60_000, 1), 12);
        assert_eq!(lfu_counter(c, now + 3 * 60_000, 0), 15, "decay time 0 disables decay");
        assert_eq!(lfu_counter(c, now + 600 * 60_000, 1), 0);
    }

    #[test]
    fn auto_counts_decay_by_window_and_dead_keys_score_low() {
        let c = auto_clock(10, 100);
        assert_eq!(auto_state(c, 100), (10, 0));
        assert_eq!(auto_state(c, 100 + 256), (5, 256), "halved after one window");
        assert_eq!(auto_state(c, 100 + 6 * 256).0, 0);
        assert_eq!(auto_state(auto_clock(99, 0), 0).0, 63, "saturates");
        // A frequent key idle for long scores below a rare key seen just now.
        assert!(auto_score(auto_clock(40, 0), 200) < auto_score(auto_clock(2, 200), 200));
        // Among keys seen just now, the frequent one scores higher.
        assert!(auto_score(auto_clock(40, 200), 200) > auto_score(auto_clock(2, 200), 200));
        assert_eq!(auto_score(auto_clock(0, 0), 0), 0.0);
    }

    #[test]
    fn lru_idle_time() {
        let now = 1_700_000_000_000;
        let c = fresh(Mode::Lru, now);
        assert_eq!(idle_ms(c, now + 5_500), 5_000);
        assert_eq!(touched(Mode::Lru, c, now + 9_000, 0.0), fresh(Mode::Lru, now + 9_000));
    }
}
