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

/// Counters one worker accumulates between merges.
#[derive(Default, Debug)]
pub struct WorkerStats {
    /// Keyed by (command, subcommand) names (`("client", Some("list"))`).
    pub commands: HashMap<(&'static str, Option<&'static str>), CmdStat, ahash::RandomState>,
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

    pub fn command(&mut self, name: &'static str, sub: Option<&'static str>) -> &mut CmdStat {
        self.commands.entry((name, sub)).or_default()
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
