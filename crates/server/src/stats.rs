//! Server statistics: per-command calls and time (commandstats), error counts by code
//! (errorstats), traffic and throughput samples.
//!
//! Each worker counts into its own [`WorkerStats`] without synchronisation and merges it into
//! the shared totals once per event-loop iteration (and before INFO runs), so the hot path
//! never touches a shared cache line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Counters for one command (or subcommand), as INFO commandstats shows them.
#[derive(Default, Clone, Copy, Debug)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// Identifies a command (and subcommand) in the statistics maps by the addresses of its
/// static names, so hashing and comparing a key costs two words, not two strings.
#[derive(Clone, Copy, Debug)]
pub struct CmdKey {
    pub cmd: &'static str,
    pub sub: Option<&'static str>,
}

impl CmdKey {
    fn addrs(&self) -> (usize, usize) {
        (self.cmd.as_ptr() as usize, self.sub.map_or(0, |s| s.as_ptr() as usize))
    }

    /// `get` or `client|list`, as INFO prints it.
    pub fn full_name(&self) -> String {
        match self.sub {
            Some(sub) => format!("{}|{}", self.cmd, sub),
            None => self.cmd.to_string(),
        }
    }
}

impl PartialEq for CmdKey {
    fn eq(&self, other: &Self) -> bool {
        self.addrs() == other.addrs()
    }
}

impl Eq for CmdKey {}

impl std::hash::Hash for CmdKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (a, b) = self.addrs();
        state.write_usize(a ^ b.rotate_left(17));
    }
}

/// A multiplicative hasher for keys that are already well-spread words (addresses).
#[derive(Default)]
pub struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by command.
pub type CmdMap<V> = HashMap<CmdKey, V, std::hash::BuildHasherDefault<WordHasher>>;

/// Number of histogram buckets: values below 16 µs get one bucket each, then 16 buckets per
/// power of two (about 6% resolution) up to 2^40 µs.
const HIST_BUCKETS: usize = 16 + 37 * 16;

/// A log-linear latency histogram in microseconds (for INFO latencystats).
#[derive(Clone, Debug)]
pub struct Hist {
    counts: Box<[u32; HIST_BUCKETS]>,
    total: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist { counts: Box::new([0; HIST_BUCKETS]), total: 0 }
    }
}

impl Hist {
    fn bucket(us: u64) -> usize {
        if us < 16 {
            return us as usize;
        }
        let exp = 63 - us.leading_zeros() as usize; // >= 4
        let sub = ((us >> (exp - 4)) & 15) as usize;
        (16 + (exp - 4) * 16 + sub).min(HIST_BUCKETS - 1)
    }

    /// The largest value that falls in bucket `b`.
    fn bucket_top(b: usize) -> u64 {
        if b < 16 {
            return b as u64;
        }
        let exp = (b - 16) / 16 + 4;
        let sub = ((b - 16) % 16) as u64;
        ((16 + sub + 1) << (exp - 4)) - 1
    }

    pub fn record(&mut self, us: u64) {
        self.counts[Self::bucket(us)] += 1;
        self.total += 1;
    }

    fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The value at percentile `p` (0..=100), in microseconds (a bucket's upper edge).
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, &n) in self.counts.iter().enumerate() {
            seen += n as u64;
            if seen >= rank {
                return Self::bucket_top(b);
            }
        }
        Self::bucket_top(HIST_BUCKETS - 1)
    }
}

/// Counters one worker accumulates between merges.
#[derive(Default, Debug)]
pub struct WorkerStats {
    /// Per command (and subcommand).
    pub commands: CmdMap<CmdStat>,
    /// Latency histograms per command (when `latency-tracking` is on).
    pub latency: CmdMap<Hist>,
    /// Keyspace changes (the `dirty` counter).
    pub dirty: u64,
    pub errors: HashMap<String, u64>,
    pub total_commands: u64,
    pub net_in: u64,
    pub net_out: u64,
    pub error_replies: u64,
    pub rejected_connections: u64,
}

impl WorkerStats {
    fn is_empty(&self) -> bool {
        self.total_commands == 0
            && self.dirty == 0
            && self.net_in == 0
            && self.net_out == 0
            && self.error_replies == 0
            && self.rejected_connections == 0
            && self.commands.is_empty()
            && self.latency.is_empty()
    }

    /// Counts an error reply with its code (the first word).
    pub fn error(&mut self, code: &str) {
        self.error_replies += 1;
        match self.errors.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(code.to_string(), 1);
            }
        }
    }

    /// The latency histogram of a command.
    pub fn latency(&mut self, name: &'static str, sub: Option<&'static str>) -> &mut Hist {
        self.latency.entry(CmdKey { cmd: name, sub }).or_default()
    }

    pub fn command(&mut self, name: &'static str, sub: Option<&'static str>) -> &mut CmdStat {
        self.commands.entry(CmdKey { cmd: name, sub }).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Hist;

    #[test]
    fn histogram_percentiles() {
        let mut h = Hist::default();
        for us in 1..=1000 {
            h.record(us);
        }
        let p50 = h.percentile(50.0);
        assert!((480..=540).contains(&p50), "p50 {p50}");
        let p99 = h.percentile(99.0);
        assert!((960..=1060).contains(&p99), "p99 {p99}");
        assert_eq!(Hist::default().percentile(50.0), 0);
        for b in 0..super::HIST_BUCKETS - 1 {
            assert_eq!(Hist::bucket(Hist::bucket_top(b)), b);
            assert_eq!(Hist::bucket(Hist::bucket_top(b) + 1), b + 1);
        }
    }
}

/// Totals across workers.
#[derive(Default)]
pub struct GlobalStats {
    pub totals: Mutex<WorkerStats>,
    /// Recent samples of (unix ms, total commands, net in, net out) for instantaneous rates.
    pub samples: Mutex<Vec<(i64, u64, u64, u64)>>,
    pub expired_stale_perc: AtomicU64,
    pub peak_memory: AtomicU64,
    pub startup_memory: AtomicU64,
    pub expire_cycle_cpu_ms: AtomicU64,
    /// Keys removed to stay under `maxmemory`.
    pub evicted_keys: AtomicU64,
}

impl GlobalStats {
    /// Adds a worker's counters to the totals and clears them.
    pub fn merge(&self, local: &mut WorkerStats) {
        if local.is_empty() {
            return;
        }
        let mut t = self.totals.lock();
        for (name, s) in local.commands.drain() {
            let e = t.commands.entry(name).or_default();
            e.calls += s.calls;
            e.usec += s.usec;
            e.rejected += s.rejected;
            e.failed += s.failed;
        }
        for (name, h) in local.latency.drain() {
            t.latency.entry(name).or_default().merge(&h);
        }
        for (code, n) in local.errors.drain() {
            *t.errors.entry(code).or_default() += n;
        }
        t.total_commands += std::mem::take(&mut local.total_commands);
        t.dirty += std::mem::take(&mut local.dirty);
        t.net_in += std::mem::take(&mut local.net_in);
        t.net_out += std::mem::take(&mut local.net_out);
        t.error_replies += std::mem::take(&mut local.error_replies);
        t.rejected_connections += std::mem::take(&mut local.rejected_connections);
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        *self.totals.lock() = WorkerStats::default();
        self.samples.lock().clear();
        self.expired_stale_perc.store(0, Ordering::Relaxed);
        self.evicted_keys.store(0, Ordering::Relaxed);
    }

    /// Records a throughput sample (called by cron), keeping the last 16.
    pub fn sample(&self, now_ms: i64) {
        let t = self.totals.lock();
        let s = (now_ms, t.total_commands, t.net_in, t.net_out);
        drop(t);
        let mut samples = self.samples.lock();
        samples.push(s);
        if samples.len() > 16 {
            samples.remove(0);
        }
    }

    /// (ops/sec, input KB/sec, output KB/sec) over the recent samples.
    pub fn instantaneous(&self) -> (u64, f64, f64) {
        let samples = self.samples.lock();
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return (0, 0.0, 0.0);
        };
        let ms = (last.0 - first.0).max(1) as f64;
        let ops = (last.1 - first.1) as f64 * 1000.0 / ms;
        let kin = (last.2 - first.2) as f64 * 1000.0 / ms / 1024.0;
        let kout = (last.3 - first.3) as f64 * 1000.0 / ms / 1024.0;
        (ops.round() as u64, kin, kout)
    }
}
