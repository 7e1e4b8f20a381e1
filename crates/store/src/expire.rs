//! The active expiry cycle: finds keys whose TTL has passed without waiting for a client to
//! touch them.
//!
//! Like Redis's slow cycle it is bounded in CPU: each call walks bucket chains shard by shard,
//! holding one shard lock for at most a small batch of buckets, and stops when its time budget
//! is spent or when a full pass found few expired keys. A cursor per database keeps the walk
//! going where it stopped, so every key with a TTL is examined within a bounded number of
//! cycles.

use std::time::{Duration, Instant};

use crate::keyspace::{Keyspace, SHARDS};

/// Buckets examined per shard lock acquisition (bounds the time a shard is held).
const BUCKETS_PER_LOCK: usize = 32;

/// State carried between cycles.
#[derive(Default, Debug)]
pub struct ExpireCycle {
    next_shard: usize,
}

/// What one cycle did.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleReport {
    pub examined: usize,
    pub expired: usize,
    pub shards_visited: usize,
}

impl ExpireCycle {
    /// Runs until `budget` is used or every shard was visited once. `now` is unix ms.
    pub fn run(&mut self, ks: &Keyspace, now: i64, budget: Duration) -> CycleReport {
        self.run_with(ks, now, budget, &mut |_| {})
    }

    /// [`ExpireCycle::run`], calling `after` with each shard's view before its lock is
    /// released (the append-only log records the expired keys there, in order).
    pub fn run_with(
        &mut self,
        ks: &Keyspace,
        now: i64,
        budget: Duration,
        after: &mut dyn FnMut(&mut crate::View<'_>),
    ) -> CycleReport {
        let start = Instant::now();
        let mut report = CycleReport::default();
        for _ in 0..SHARDS {
            let shard = self.next_shard;
            self.next_shard = (self.next_shard + 1) % SHARDS;
            report.shards_visited += 1;
            let mut view = ks.lock_shard(shard);
            for s in view.shards_mut() {
                for db in s.dbs.iter_mut().filter(|d| d.expires() > 0) {
                    for _ in 0..BUCKETS_PER_LOCK {
                        let (checked, gone) = db.expire_step(now);
                        report.examined += checked;
                        report.expired += gone;
                        if db.expire_cursor == 0 {
                            break;
                        }
                    }
                }
            }
            after(&mut view);
            drop(view);
            if start.elapsed() >= budget {
                break;
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::NewValue;

    #[test]
    fn cycle_eventually_removes_all_expired() {
        let ks = Keyspace::new(2);
        for i in 0..5000 {
            let k = format!("k{i}");
            let mut v = ks.lock_key(k.as_bytes());
            v.db(i % 2, k.as_bytes()).insert_new_value(k.as_bytes(), NewValue::Inline(b"v"), Some(5));
        }
        let mut cycle = ExpireCycle::default();
        let mut total = 0;
        for _ in 0..1000 {
            total += cycle.run(&ks, 10, Duration::from_secs(1)).expired;
            if total == 5000 {
                break;
            }
        }
        assert_eq!(total, 5000);
        assert_eq!(ks.lock_all().db_len(0), 0);
    }
}
