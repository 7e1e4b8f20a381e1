//! Point-in-time snapshots without fork: the keyspace's half (the file is written elsewhere).
//!
//! A snapshot has a start instant T, taken with every shard locked. It must write each key as
//! it was at T, exactly once, while clients keep changing the keyspace. Every entry carries a
//! *mark* bit and every database a current mark; an entry is *settled* when the two are equal.
//!
//! * Between snapshots every entry is settled (new entries are stamped with the current mark).
//! * [`Keyspace::begin_snapshot`] flips every database's mark and installs a [`Preserver`], so
//!   at T every entry is unsettled.
//! * The walker ([`Keyspace::snapshot_step`]) visits the tables with the SCAN cursor, hands
//!   each unsettled entry to its callback and settles it.
//! * Before a database changes or removes an unsettled entry (any lookup that returns it
//!   mutably, a replacement, a deletion, expiry, eviction), it hands the entry, still as it
//!   was at T, to the preserver and settles it. Entries stored during the snapshot are
//!   stamped settled: they are not part of T.
//!
//! So every key present at T is written once, with its value at T, and nothing created later
//! is. The SCAN cursor returns every entry present for the whole walk; an entry that left
//! during the walk was preserved on its way out. When a database's walk ends, all its entries
//! are settled and its preserver is removed ([`Keyspace::end_snapshot_db`]).
//!
//! FLUSHALL, FLUSHDB and SWAPDB during a snapshot cannot keep T (a whole table leaves or moves
//! at once), so they call [`Preserver::abandon`]; the walker then finishes marking without
//! writing, which restores the "all settled" invariant.
//!
//! Memory: a preserved entry costs its serialized size until the writer drains it, and the
//! walker holds one chunk at a time; nothing is copied in bulk.

use std::sync::Arc;

use crate::entry::Entry;
use crate::keyspace::Keyspace;

/// Receives entries as they were at the snapshot's start, just before they change.
///
/// Called with the entry's shard locked: implementations must be quick and must not lock
/// the keyspace.
pub trait Preserver: Send + Sync {
    /// `entry` (in database `db`) is about to change or go; this is its value at T.
    fn preserve(&self, db: usize, entry: &Entry);
    /// The running snapshot can no longer be point-in-time (a database was flushed or
    /// swapped); it should be discarded.
    fn abandon(&self);
}

/// A database's link to the running snapshot.
#[derive(Clone)]
pub(crate) struct Hook {
    /// The database's index (the snapshot groups keys by database).
    pub db: usize,
    pub sink: Arc<dyn Preserver>,
}

impl Keyspace {
    /// Starts a snapshot: with every shard locked, flips each database's mark (so every entry
    /// becomes unsettled) and installs `sink`. Panics if a snapshot is already running.
    pub fn begin_snapshot(&self, sink: Arc<dyn Preserver>) {
        self.begin_snapshot_with(sink, || {});
    }

    /// [`Keyspace::begin_snapshot`], running `at_start` while every shard is locked: at the
    /// snapshot's instant (an append-only log switches files there).
    pub fn begin_snapshot_with(&self, sink: Arc<dyn Preserver>, at_start: impl FnOnce()) {
        let mut view = self.lock_all();
        at_start();
        for shard in view.shards_mut() {
            for (i, db) in shard.dbs.iter_mut().enumerate() {
                db.begin_snapshot(Hook { db: i, sink: sink.clone() });
            }
        }
    }

    /// One step of the walk over database `db` of shard `shard`: up to `buckets` SCAN steps
    /// from `cursor`, calling `visit` with each unsettled entry (then settled). Returns the
    /// next cursor, 0 when this database is done.
    pub fn snapshot_step(
        &self,
        shard: usize,
        db: usize,
        mut cursor: u64,
        buckets: usize,
        mut visit: impl FnMut(&Entry),
    ) -> u64 {
        let mut view = self.lock_shard(shard);
        let Some(d) = view.shards_mut().next().map(|s| &mut s.dbs[db]) else { return 0 };
        for _ in 0..buckets {
            cursor = d.settle_step(cursor, &mut visit);
            if cursor == 0 {
                break;
            }
        }
        cursor
    }

    /// Ends the snapshot for database `db` of shard `shard` (its walk has finished): removes
    /// the preserver. Every entry there is settled.
    pub fn end_snapshot_db(&self, shard: usize, db: usize) {
        let mut view = self.lock_shard(shard);
        view.shards_mut().for_each(|s| s.dbs[db].end_snapshot());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};

    use parking_lot::Mutex;

    use super::*;
    use crate::entry::{NewValue, ValueRef};
    use crate::keyspace::SHARDS;

    type Written = BTreeMap<(usize, Vec<u8>), Vec<u8>>;

    /// Records what a snapshot writes; a key written twice is a bug.
    #[derive(Default)]
    struct Collect {
        written: Mutex<Written>,
        abandoned: AtomicBool,
    }

    impl Collect {
        fn take(&self, db: usize, e: &Entry) {
            let ValueRef::Inline(v) = e.value() else { panic!("test values are strings") };
            let old = self.written.lock().insert((db, e.key().to_vec()), v.to_vec());
            assert!(old.is_none(), "{:?} written twice", String::from_utf8_lossy(e.key()));
        }
    }

    impl Preserver for Collect {
        fn preserve(&self, db: usize, entry: &Entry) {
            self.take(db, entry);
        }
        fn abandon(&self) {
            self.abandoned.store(true, Ordering::Relaxed);
        }
    }

    fn set(ks: &Keyspace, db: usize, key: &[u8], val: &[u8]) {
        ks.lock_key(key).db(db, key).insert(Entry::new(key, NewValue::Inline(val), None, 0));
    }

    fn state(ks: &Keyspace) -> Written {
        let mut view = ks.lock_all();
        let mut out = Written::new();
        for shard in view.shards_mut() {
            for (i, db) in shard.dbs.iter().enumerate() {
                for e in db.iter() {
                    let ValueRef::Inline(v) = e.value() else { unreachable!() };
                    out.insert((i, e.key().to_vec()), v.to_vec());
                }
            }
        }
        out
    }

    /// Walks every database of every shard a few buckets at a time, letting `between` change
    /// the keyspace after each step.
    fn walk(ks: &Keyspace, sink: &Arc<Collect>, mut between: impl FnMut(&Keyspace)) {
        for shard in 0..SHARDS {
            for db in 0..ks.databases() {
                let mut cursor = 0;
                loop {
                    cursor = ks.snapshot_step(shard, db, cursor, 3, |e| sink.take(db, e));
                    between(ks);
                    if cursor == 0 {
                        break;
                    }
                }
                ks.end_snapshot_db(shard, db);
            }
        }
    }

    #[test]
    fn a_snapshot_is_the_keyspace_at_its_start_whatever_changes_during_the_walk() {
        let ks = Keyspace::new(2);
        for i in 0..3000u32 {
            set(&ks, (i % 2) as usize, format!("k{i}").as_bytes(), format!("v{i}").as_bytes());
        }
        for round in 0..3u32 {
            let at_start = state(&ks);
            let sink = Arc::new(Collect::default());
            ks.begin_snapshot(sink.clone());
            let mut n = 0u32;
            walk(&ks, &sink, |ks| {
                // Overwrite, delete, create and grow: the table also resizes under the walk.
                n += 1;
                let k = format!("k{}", (n * 7919 + round) % 6000);
                match n % 4 {
                    0 => {
                        ks.lock_key(k.as_bytes()).db(0, k.as_bytes()).remove(k.as_bytes());
                    }
                    1 => set(ks, 1, k.as_bytes(), b"changed"),
                    2 => set(ks, 0, format!("new{round}-{n}").as_bytes(), b"later"),
                    _ => {
                        let key = k.as_bytes();
                        ks.lock_key(key).db(1, key).lookup(key, 0);
                    }
                }
            });
            assert!(!sink.abandoned.load(Ordering::Relaxed));
            assert_eq!(*sink.written.lock(), at_start, "round {round}");
        }
    }

    #[test]
    fn flushing_during_a_snapshot_abandons_it_and_the_next_one_is_whole() {
        let ks = Keyspace::new(1);
        for i in 0..500u32 {
            set(&ks, 0, format!("k{i}").as_bytes(), b"v");
        }
        let sink = Arc::new(Collect::default());
        ks.begin_snapshot(sink.clone());
        let mut flushed = false;
        walk(&ks, &sink, |ks| {
            if !flushed {
                flushed = true;
                let mut view = ks.lock_all();
                view.shards_mut().for_each(|s| drop(s.dbs[0].clear()));
                drop(view);
                set(ks, 0, b"after", b"flush");
            }
        });
        assert!(sink.abandoned.load(Ordering::Relaxed));
        let at_start = state(&ks);
        let next = Arc::new(Collect::default());
        ks.begin_snapshot(next.clone());
        walk(&ks, &next, |_| {});
        assert_eq!(*next.written.lock(), at_start);
    }
}
