//! The sharded keyspace and its locking rule.
//!
//! The keyspace is split into [`SHARDS`] shards by the top bits of each key's hash; each shard
//! holds its slice of every database behind its own mutex. A command locks exactly the shards
//! of the keys it names, always in ascending shard order (so two commands can never deadlock),
//! and holds them until it has finished: single-key commands on different shards run in
//! parallel, while a multi-key command, a transaction or a script is atomic because it holds
//! every shard it touches (all of them when its keys are not known in advance).

use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::db::Db;
use crate::hash_key;

/// Number of shards. A power of two; 64 keeps lock contention negligible on the machines we
/// target while keeping a full lock (transactions, FLUSHALL) cheap.
pub const SHARDS: usize = 64;
const SHARD_SHIFT: u32 = 64 - SHARDS.trailing_zeros();

/// One shard: its slice of every database.
pub struct Shard {
    pub dbs: Vec<Db>,
}

/// The whole keyspace.
pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    databases: usize,
}

/// The shard that owns `key`.
#[inline]
pub fn shard_of(key: &[u8]) -> usize {
    (hash_key(key) >> SHARD_SHIFT) as usize
}

/// Locked shards, through which a command reads and writes the keys it declared.
pub struct View<'a> {
    guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
    /// When every shard is locked: the shards, whose locks this view holds without guards
    /// (taking and releasing them is then 64 plain lock operations, with no guard list to
    /// build and drop: a script takes them all for every call).
    all: Option<&'a [Mutex<Shard>]>,
    databases: usize,
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        if let Some(shards) = self.all {
            for m in shards {
                // SAFETY: this view locked every shard (`Keyspace::hold_all`) and leaked the
                // guards; nothing else unlocks them.
                unsafe { m.force_unlock() };
            }
        }
    }
}

impl Keyspace {
    /// A keyspace with `databases` logical databases (the `databases` setting).
    pub fn new(databases: usize) -> Self {
        let shards =
            (0..SHARDS).map(|_| Mutex::new(Shard { dbs: (0..databases).map(|_| Db::default()).collect() })).collect();
        Keyspace { shards, databases }
    }

    /// Number of logical databases.
    pub fn databases(&self) -> usize {
        self.databases
    }

    /// Locks the shard of one key.
    pub fn lock_key(&self, key: &[u8]) -> View<'_> {
        self.lock_shard(shard_of(key))
    }

    /// Locks one shard by index.
    pub fn lock_shard(&self, shard: usize) -> View<'_> {
        let mut guards = SmallVec::new();
        guards.push((shard, self.shards[shard].lock()));
        View { guards, all: None, databases: self.databases }
    }

    /// Locks the shards of all the given keys, in ascending order.
    pub fn lock_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> View<'_> {
        let mut ids: SmallVec<[usize; 8]> = keys.into_iter().map(shard_of).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() == SHARDS {
            return self.lock_all();
        }
        let guards = ids.into_iter().map(|i| (i, self.shards[i].lock())).collect();
        View { guards, all: None, databases: self.databases }
    }

    /// Like [`Keyspace::lock_keys`] (or [`Keyspace::lock_all`] when `keys` is `None`), but
    /// while a shard is held by someone else, asks `give_up` every few milliseconds and
    /// returns `None` (holding nothing) when it says so. For commands that must not wait
    /// forever behind a long script.
    pub fn lock_patiently(
        &self,
        keys: Option<&mut dyn Iterator<Item = &[u8]>>,
        give_up: &dyn Fn() -> bool,
    ) -> Option<View<'_>> {
        let (ids, all): (SmallVec<[usize; 8]>, bool) = match keys {
            Some(keys) => {
                let mut ids: SmallVec<[usize; 8]> = keys.map(shard_of).collect();
                ids.sort_unstable();
                ids.dedup();
                let all = ids.len() == SHARDS;
                (ids, all)
            }
            None => ((0..SHARDS).collect(), true),
        };
        let mut guards = SmallVec::new();
        for i in ids {
            loop {
                if let Some(g) = self.shards[i].try_lock_for(std::time::Duration::from_millis(5)) {
                    guards.push((i, g));
                    break;
                }
                if give_up() {
                    return None;
                }
            }
        }
        if all {
            return Some(self.hold_all(guards.into_iter().map(|(_, g)| g)));
        }
        Some(View { guards, all: None, databases: self.databases })
    }

    /// Locks every shard, in ascending order.
    pub fn lock_all(&self) -> View<'_> {
        self.hold_all(self.shards.iter().map(|m| m.lock()))
    }

    /// A view over every shard from a guard of each.
    fn hold_all<'a>(&'a self, guards: impl Iterator<Item = MutexGuard<'a, Shard>>) -> View<'a> {
        for g in guards {
            MutexGuard::leak(g);
        }
        View { guards: SmallVec::new(), all: Some(&self.shards), databases: self.databases }
    }
}

impl<'a> View<'a> {
    /// Number of logical databases.
    pub fn databases(&self) -> usize {
        self.databases
    }

    /// Whether every shard is locked.
    pub fn is_all(&self) -> bool {
        self.all.is_some()
    }

    /// The shard guard for shard index `i`, if this view holds it.
    fn shard(&mut self, i: usize) -> Option<&mut Shard> {
        if let Some(shards) = self.all {
            // SAFETY: this view holds every shard's lock, and `&mut self` makes the borrow
            // exclusive.
            return Some(unsafe { &mut *shards[i].data_ptr() });
        }
        self.guards.iter_mut().find(|(idx, _)| *idx == i).map(|(_, g)| &mut **g)
    }

    /// Database `db` of the shard that owns `key`.
    ///
    /// Panics if the key's shard is not locked by this view: that is a bug in the caller's
    /// key declaration, caught by the connection's panic guard.
    pub fn db(&mut self, db: usize, key: &[u8]) -> &mut Db {
        let i = shard_of(key);
        let shard = self.shard(i).expect("key's shard is not locked: command key spec is wrong");
        crate::journal::note_db(db);
        &mut shard.dbs[db]
    }

    /// Every locked shard.
    pub fn shards_mut(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        self.indexed_shards_mut().map(|(_, s)| s)
    }

    /// Every locked shard, with its index.
    pub fn indexed_shards_mut(&mut self) -> impl Iterator<Item = (usize, &mut Shard)> + use<'_, 'a> {
        let all = self.all.unwrap_or(&[]);
        // SAFETY: as in `shard`; each shard is yielded once.
        let held = all.iter().enumerate().map(|(i, m)| (i, unsafe { &mut *m.data_ptr() }));
        held.chain(self.guards.iter_mut().map(|(i, g)| (*i, &mut **g)))
    }

    /// Total keys in database `db` across the locked shards.
    pub fn db_len(&self, db: usize) -> usize {
        // SAFETY: as in `shard`, reading only.
        let held: usize = self.all.unwrap_or(&[]).iter().map(|m| unsafe { (&*m.data_ptr()).dbs[db].len() }).sum();
        held + self.guards.iter().map(|(_, g)| g.dbs[db].len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::NewValue;

    #[test]
    fn views_reach_their_keys() {
        let ks = Keyspace::new(16);
        {
            let keys: Vec<&[u8]> = vec![b"a", b"b", b"c", b"a"];
            let mut v = ks.lock_keys(keys.iter().copied());
            for k in &keys {
                v.db(3, k).insert_new_value(k, NewValue::Inline(b"x"), None);
            }
        }
        let v = ks.lock_all();
        assert_eq!(v.db_len(3), 3);
        assert_eq!(v.db_len(0), 0);
    }

    #[test]
    fn shards_lock_independently() {
        let ks = std::sync::Arc::new(Keyspace::new(1));
        let (a, b) = (0..1000u32).map(|i| i.to_string().into_bytes()).fold((None, None), |(a, b), k| match (a, b) {
            (None, b) => (Some(k), b),
            (Some(a), None) if shard_of(&a) != shard_of(&k) => (Some(a), Some(k)),
            other => other,
        });
        let (a, b) = (a.unwrap(), b.unwrap());
        let _held = ks.lock_key(&a);
        let ks2 = ks.clone();
        // Another thread can lock a different shard while this one is held.
        std::thread::spawn(move || {
            ks2.lock_key(&b);
        })
        .join()
        .unwrap();
    }
}
