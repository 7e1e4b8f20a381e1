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
//! Switching policies at runtime reinterprets the bits, as Redis does; the values adjust
//! after a while.

/// How a key's clock is maintained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Lru,
    Lfu { log_factor: u32, decay_minutes: u32 },
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
    }
}

/// The clock after an access at `now_ms`. `coin` is a uniform random number in [0, 1).
pub fn touched(mode: Mode, clock: u32, now_ms: i64, coin: f64) -> u32 {
    match mode {
        Mode::Lru => crate::entry::lru_clock(now_ms),
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
    fn lru_idle_time() {
        let now = 1_700_000_000_000;
        let c = fresh(Mode::Lru, now);
        assert_eq!(idle_ms(c, now + 5_500), 5_000);
        assert_eq!(touched(Mode::Lru, c, now + 9_000, 0.0), fresh(Mode::Lru, now + 9_000));
    }
}
