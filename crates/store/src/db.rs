//! One logical database (the `SELECT n` namespace) inside one shard.
//!
//! Invariants: `expires` counts the entries that carry a TTL; a key whose TTL has passed is
//! never returned by a lookup (it is deleted on access, "lazy expiry", and counted in
//! `expired`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::entry::{Entry, NewValue};

/// Whether expired keys are recorded: for `expired` keyspace events (set from the
/// `notify-keyspace-events` configuration), for clients blocked in XREADGROUP, which an
/// expired stream unblocks, or for the append-only log, which records expiries as DEL. Off
/// by default so expiry costs nothing extra.
static RECORD_EXPIRED: AtomicBool = AtomicBool::new(false);
/// Who wants expired keys recorded, one bit each ([`RECORD_FOR_EVENTS`], ...).
static RECORD_REASONS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
const RECORD_FOR_EVENTS: u8 = 1;
const RECORD_FOR_READERS: u8 = 2;
const RECORD_FOR_LOG: u8 = 4;

fn record_for(reason: u8, on: bool) {
    let reasons = if on {
        RECORD_REASONS.fetch_or(reason, Ordering::Relaxed) | reason
    } else {
        RECORD_REASONS.fetch_and(!reason, Ordering::Relaxed) & !reason
    };
    RECORD_EXPIRED.store(reasons != 0, Ordering::Relaxed);
}

/// Turns recording of expired keys for keyspace events on or off.
pub fn record_expired(on: bool) {
    record_for(RECORD_FOR_EVENTS, on);
}

/// Turns recording of expired keys for blocked XREADGROUP clients on or off.
pub fn record_expired_for_readers(on: bool) {
    record_for(RECORD_FOR_READERS, on);
}

/// Turns recording of expired keys for the append-only log on or off.
pub fn record_expired_for_log(on: bool) {
    record_for(RECORD_FOR_LOG, on);
}

/// Whether expired keys are being recorded (see [`Db::take_expired_keys`]).
pub fn recording_expired() -> bool {
    RECORD_EXPIRED.load(Ordering::Relaxed)
}

/// Keys recorded as expired and not yet taken, in every database: while it is 0, nobody
/// needs to look through the databases for them.
static EXPIRED_PENDING: AtomicUsize = AtomicUsize::new(0);

/// Whether any database holds keys recorded as expired (see [`Db::take_expired_keys`]).
pub fn expired_pending() -> bool {
    EXPIRED_PENDING.load(Ordering::Relaxed) > 0
}
use crate::hash_key;
use crate::snapshot::Hook;
use crate::table::Table;

/// A database's slice of the keyspace held by one shard.
#[derive(Default)]
pub struct Db {
    table: Table,
    expires: usize,
    /// Position of the active expiry cycle in this table.
    pub expire_cursor: u64,
    /// Keys removed because their TTL passed (lazily or actively).
    pub expired: u64,
    /// Read lookups that found / did not find their key.
    pub hits: u64,
    pub misses: u64,
    /// Running estimate of the remaining TTL of volatile keys, in ms (INFO's `avg_ttl`),
    /// updated by the active expiry cycle as Redis does.
    pub avg_ttl: i64,
    /// Keys removed by expiry since the last [`Db::take_expired_keys`] (only recorded when
    /// [`record_expired`] is on).
    expired_keys: Vec<Vec<u8>>,
    /// Bytes held by entries and their objects (not the table itself).
    used: usize,
    /// The `allkeys-auto` bookkeeping (idle while another policy is in force).
    auto: AutoState,
    /// The running snapshot's preserver (see [`crate::snapshot`]).
    snap: Option<Hook>,
    /// The mark of settled entries: every entry has it between snapshots.
    mark: bool,
}

/// Hands `e` to the running snapshot if it is still unsettled, and settles it: called before
/// `e` changes or leaves.
#[inline]
fn preserve(snap: &Option<Hook>, mark: bool, e: &mut Entry) {
    if let Some(h) = snap {
        if e.snap_mark() != mark {
            h.sink.preserve(h.db, e);
            e.set_snap_mark(mark);
        }
    }
}

/// Per-database state of the `allkeys-auto` policy (see `access`): the access tick and the
/// ghost of evicted keys' counts.
#[derive(Default)]
struct AutoState {
    /// Accesses since the tick last advanced.
    acc: u64,
    /// Accesses per tick: a 256th of a window of 40 × the keys held.
    per_tick: u64,
    tick: u32,
    /// Windows elapsed (the ghost's epochs).
    epoch: u32,
    /// Direct-mapped slots `fingerprint:16 | count:6 | epoch:10` (0 = empty).
    ghost: Vec<u32>,
}

pub(crate) const AUTO_WINDOW: u64 = 40;

impl AutoState {
    fn access(&mut self, keys: usize) {
        self.acc += 1;
        if self.per_tick == 0 || self.acc >= self.per_tick {
            self.acc = 0;
            self.tick = (self.tick + 1) & 0xFFFF;
            if self.tick & 0xFF == 0 || self.per_tick == 0 {
                self.epoch = self.epoch.wrapping_add(1);
                self.per_tick = (AUTO_WINDOW * keys as u64 / 256).max(1);
                let want = keys.next_power_of_two().max(64);
                if self.ghost.len() < want {
                    self.ghost = vec![0; want];
                }
            }
        }
        crate::access::set_current_tick(self.tick);
    }

    fn slot(&self, hash: u64) -> (usize, u32) {
        let fp = ((hash >> 40) & 0xFFFF) as u32;
        ((hash as usize) & (self.ghost.len() - 1), fp.max(1))
    }

    /// The count an evicted key left, decayed by the windows since (and forgets it).
    fn recall(&mut self, hash: u64) -> u32 {
        if self.ghost.is_empty() {
            return 0;
        }
        let (i, fp) = self.slot(hash);
        let g = self.ghost[i];
        if g >> 16 != fp {
            return 0;
        }
        self.ghost[i] = 0;
        let windows = self.epoch.wrapping_sub(g) & 0x3FF;
        ((g >> 10) & 63) >> windows.min(6)
    }

    fn remember(&mut self, hash: u64, count: u32) {
        if self.ghost.is_empty() {
            return;
        }
        let (i, fp) = self.slot(hash);
        self.ghost[i] = (fp << 16) | (count.min(63) << 10) | (self.epoch & 0x3FF);
    }
}

/// Bytes counted for an entry: its allocation and its value's.
pub fn entry_bytes(e: &Entry) -> usize {
    let obj = match e.value() {
        crate::entry::ValueRef::Object(o) => o.heap_size(),
        crate::entry::ValueRef::Inline(_) => 0,
    };
    e.alloc_bytes() + obj
}

impl Db {
    /// Number of keys (including ones whose TTL has passed but were not yet removed).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Number of keys with a TTL.
    pub fn expires(&self) -> usize {
        self.expires
    }

    /// Bytes of the table's buckets.
    pub fn table_bytes(&self) -> usize {
        self.table.overhead_bytes()
    }

    /// Bytes used by entries, objects and the table.
    pub fn used_bytes(&self) -> usize {
        self.used + self.table.overhead_bytes()
    }

    /// The live entry for `key`: a key whose TTL is at or before `now` is deleted and `None`
    /// returned.
    pub fn lookup(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        self.lookup_hashed(hash_key(key), key, now)
    }

    /// [`Db::lookup`] with the key's table hash already computed.
    fn lookup_hashed(&mut self, hash: u64, key: &[u8], now: i64) -> Option<&mut Entry> {
        if crate::access::auto() {
            let keys = self.table.len();
            self.auto.access(keys);
        }
        let expired = match self.table.get(hash, key)?.expire_at() {
            Some(at) => at <= now,
            None => false,
        };
        if expired {
            self.delete_hashed(hash, key);
            self.expired += 1;
            if RECORD_EXPIRED.load(Ordering::Relaxed) {
                self.expired_keys.push(key.to_vec());
                EXPIRED_PENDING.fetch_add(1, Ordering::Relaxed);
            }
            return None;
        }
        let e = self.table.get_mut(hash, key)?;
        preserve(&self.snap, self.mark, e);
        Some(e)
    }

    /// Like [`Db::lookup`], and counts a keyspace hit or miss (Redis counts these for reads).
    pub fn lookup_read(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        let hash = hash_key(key);
        // the entry's size matters only to the miss-ratio curves, for a key in their sample
        let sample = crate::mrc::sample_of(hash);
        let mut ttl = false;
        let found = self.lookup_hashed(hash, key, now).map(|e| match sample {
            Some(_) => {
                ttl = e.expire_at().is_some();
                entry_bytes(e)
            }
            None => 0,
        });
        if let Some(h) = sample {
            crate::mrc::GLOBAL.record(h, found, ttl);
        }
        crate::namespace::count_read(key, found, sample.map(|h| (h, ttl)));
        if found.is_some() {
            self.hits += 1;
            self.table.get_mut(hash, key)
        } else {
            self.misses += 1;
            crate::journal::key_missed(key);
            None
        }
    }

    /// Like [`Db::lookup_read`] without the `keymiss` event (OBJECT's lookups).
    pub fn lookup_read_silent(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        if self.lookup(key, now).is_some() {
            self.hits += 1;
            self.table.get_mut(hash_key(key), key)
        } else {
            self.misses += 1;
            None
        }
    }

    /// The entry of `key` as stored, expired or not, with no side effect (no lazy expiry, no
    /// counting): for observers such as the growth finder.
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.table.get(hash_key(key), key)
    }

    /// Whether `key` exists and is live (no hit/miss counting).
    pub fn contains(&mut self, key: &[u8], now: i64) -> bool {
        self.lookup(key, now).is_some()
    }

    /// Stores `entry`, replacing any previous value of the key; returns the previous entry.
    pub fn insert(&mut self, mut entry: Entry) -> Option<Entry> {
        let hash = hash_key(entry.key());
        self.auto_fresh(hash, &mut entry);
        entry.set_snap_mark(self.mark);
        let bytes = entry_bytes(&entry);
        self.used += bytes;
        crate::namespace::charge(entry.key(), bytes as i64, 1);
        crate::mrc::record_write(hash, bytes, entry.expire_at().is_some(), entry.key());
        if entry.expire_at().is_some() {
            self.expires += 1;
        }
        match self.table.get_mut(hash, entry.key()) {
            Some(slot) => {
                let mut old = std::mem::replace(slot, entry);
                preserve(&self.snap, self.mark, &mut old);
                self.forget(&old);
                Some(old)
            }
            None => {
                crate::journal::key_added(entry.key());
                self.table.insert_new(hash, entry);
                None
            }
        }
    }

    /// Stores `entry` with a single table probe, replacing any previous value; a previous
    /// value whose TTL had passed counts as expired (as a lookup would have found it).
    /// Returns whether a live value was replaced.
    pub fn upsert(&mut self, mut entry: Entry, now: i64) -> bool {
        let hash = hash_key(entry.key());
        self.auto_fresh(hash, &mut entry);
        entry.set_snap_mark(self.mark);
        let bytes = entry_bytes(&entry);
        self.used += bytes;
        crate::namespace::charge(entry.key(), bytes as i64, 1);
        crate::mrc::record_write(hash, bytes, entry.expire_at().is_some(), entry.key());
        if entry.expire_at().is_some() {
            self.expires += 1;
        }
        let Some(slot) = self.table.get_mut(hash, entry.key()) else {
            crate::journal::key_added(entry.key());
            self.table.insert_new(hash, entry);
            return false;
        };
        let expired = slot.expire_at().is_some_and(|at| at <= now);
        if expired {
            crate::journal::key_added(entry.key());
        }
        let mut old = std::mem::replace(slot, entry);
        preserve(&self.snap, self.mark, &mut old);
        self.forget(&old);
        if expired {
            self.expired += 1;
            if RECORD_EXPIRED.load(Ordering::Relaxed) {
                EXPIRED_PENDING.fetch_add(1, Ordering::Relaxed);
                self.expired_keys.push(old.key().to_vec());
            }
        }
        !expired
    }

    /// Under `allkeys-auto`, a key about to be stored starts from the count it left in the
    /// ghost when it was evicted (a key already present keeps its own clock via its access).
    fn auto_fresh(&mut self, hash: u64, entry: &mut Entry) {
        if !crate::access::auto() {
            return;
        }
        let keys = self.table.len();
        self.auto.access(keys);
        if self.table.get(hash, entry.key()).is_some() {
            return;
        }
        let c0 = self.auto.recall(hash);
        entry.set_clock(crate::access::auto_clock(c0 + 1, self.auto.tick));
    }

    /// The current `allkeys-auto` tick of this database.
    pub fn auto_tick(&self) -> u32 {
        self.auto.tick
    }

    /// Removes a key chosen by eviction; under `allkeys-auto` its count goes to the ghost.
    pub fn evict(&mut self, key: &[u8]) -> Option<Entry> {
        let hash = hash_key(key);
        let e = self.table.get(hash, key)?;
        if crate::access::auto() {
            let (count, _) = crate::access::auto_state(e.clock(), self.auto.tick);
            self.auto.remember(hash, count);
        }
        self.delete_hashed(hash, key)
    }

    /// Builds and stores a new entry for `key`.
    pub fn insert_new_value(&mut self, key: &[u8], value: NewValue<'_>, expire_at: Option<i64>) {
        self.insert(Entry::new(key, value, expire_at, 0));
    }

    fn forget(&mut self, old: &Entry) {
        let bytes = entry_bytes(old);
        crate::namespace::charge(old.key(), -(bytes as i64), -1);
        self.used -= bytes.min(self.used);
        if old.expire_at().is_some() {
            self.expires -= 1;
        }
    }

    /// Removes `key` (live or not) and returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.delete_hashed(hash_key(key), key)
    }

    fn delete_hashed(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let mut old = self.table.remove(hash, key)?;
        preserve(&self.snap, self.mark, &mut old);
        self.forget(&old);
        Some(old)
    }

    /// Sets or clears the TTL of an existing key. Returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<i64>) -> bool {
        self.replace_with(key, |old| old.with_expire(expire_at))
    }

    /// Replaces the entry of an existing key with the one `rebuild` makes from it (the new
    /// entry must have the same key). Returns false if the key is absent.
    pub fn replace_with(&mut self, key: &[u8], rebuild: impl FnOnce(Entry) -> Entry) -> bool {
        let mut old_bytes = 0;
        let mut old_ttl = false;
        let mut new_bytes = 0;
        let mut new_ttl = false;
        let (snap, mark) = (&self.snap, self.mark);
        let found = self.table.update(hash_key(key), key, |mut old| {
            preserve(snap, mark, &mut old);
            old_bytes = entry_bytes(&old);
            old_ttl = old.expire_at().is_some();
            let mut new = rebuild(old);
            new.set_snap_mark(mark);
            debug_assert_eq!(new.key(), key);
            new_bytes = entry_bytes(&new);
            new_ttl = new.expire_at().is_some();
            new
        });
        if found {
            crate::namespace::charge(key, new_bytes as i64 - old_bytes as i64, 0);
            self.used = (self.used + new_bytes).saturating_sub(old_bytes);
            self.expires = self.expires + new_ttl as usize - old_ttl as usize;
        }
        found
    }

    /// Recomputes the byte count for `key` after its object was edited in place.
    pub fn account_edit(&mut self, key: &[u8], before: usize, after: usize) {
        crate::namespace::charge(key, after as i64 - before as i64, 0);
        self.used = (self.used + after).saturating_sub(before);
    }

    /// Removes every key, returning the old table (so a large one can be freed elsewhere).
    pub fn clear(&mut self) -> Table {
        self.abandon_snapshot();
        if crate::namespace::enabled() {
            for e in self.table.iter() {
                crate::namespace::charge(e.key(), -(entry_bytes(e) as i64), -1);
            }
        }
        self.expires = 0;
        self.avg_ttl = 0;
        self.used = 0;
        self.expire_cursor = 0;
        self.table.drain()
    }

    /// One SCAN step over this database's table.
    pub fn scan_step(&self, cursor: u64, visit: impl FnMut(&Entry)) -> u64 {
        self.table.scan_step(cursor, visit)
    }

    /// Active expiry: examines one bucket chain at `expire_cursor`, deleting expired entries.
    /// Returns (entries examined that had a TTL, entries deleted).
    pub fn expire_step(&mut self, now: i64) -> (usize, usize) {
        let mut checked = 0;
        let mut ttl_sum = 0i64;
        let mut deleted = Vec::new();
        let cursor = self.expire_cursor;
        self.expire_cursor = self.table.scan_step_remove(
            cursor,
            |e| match e.expire_at() {
                Some(at) => {
                    checked += 1;
                    ttl_sum = ttl_sum.saturating_add((at - now).max(0));
                    at <= now
                }
                None => false,
            },
            |e| deleted.push(e),
        );
        let live = checked - deleted.len();
        if live > 0 {
            // Redis's smoothing: each sample moves the estimate 2% of the way.
            let sample = ttl_sum / live as i64;
            self.avg_ttl = if self.avg_ttl == 0 { sample } else { self.avg_ttl / 50 * 49 + sample / 50 };
        }
        let n = deleted.len();
        let record = RECORD_EXPIRED.load(Ordering::Relaxed);
        for e in &mut deleted {
            preserve(&self.snap, self.mark, e);
            self.forget(e);
            if record {
                EXPIRED_PENDING.fetch_add(1, Ordering::Relaxed);
                self.expired_keys.push(e.key().to_vec());
            }
        }
        self.expired += n as u64;
        (checked, n)
    }

    /// A random key's entry (may have an expired TTL; callers check).
    pub fn random_entry(&self) -> Option<&Entry> {
        self.table.random(crate::random_u64)
    }

    /// Every entry, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter()
    }

    /// Takes the keys recorded as expired (for keyspace events).
    pub fn take_expired_keys(&mut self) -> Vec<Vec<u8>> {
        if !self.expired_keys.is_empty() {
            EXPIRED_PENDING.fetch_sub(self.expired_keys.len(), Ordering::Relaxed);
        }
        std::mem::take(&mut self.expired_keys)
    }

    /// Swaps the whole contents with another database (SWAPDB).
    pub fn swap_contents(&mut self, other: &mut Db) {
        self.abandon_snapshot();
        std::mem::swap(&mut self.table, &mut other.table);
        std::mem::swap(&mut self.expires, &mut other.expires);
        std::mem::swap(&mut self.used, &mut other.used);
        self.expire_cursor = 0;
        other.expire_cursor = 0;
    }
}

impl Db {
    /// The snapshot starts (every shard is locked): every entry becomes unsettled.
    pub(crate) fn begin_snapshot(&mut self, hook: Hook) {
        assert!(self.snap.is_none(), "a snapshot is already running");
        self.mark = !self.mark;
        self.snap = Some(hook);
    }

    /// This database's walk is over: every entry is settled.
    pub(crate) fn end_snapshot(&mut self) {
        self.snap = None;
    }

    /// The whole table is about to leave or move: the snapshot cannot stay point-in-time.
    fn abandon_snapshot(&mut self) {
        if let Some(h) = &self.snap {
            h.sink.abandon();
        }
    }

    /// One walker step: SCAN step at `cursor`, handing each unsettled entry to `visit` and
    /// settling it. Returns the next cursor.
    pub(crate) fn settle_step(&mut self, cursor: u64, visit: &mut impl FnMut(&Entry)) -> u64 {
        let mark = self.mark;
        self.table.scan_step_remove(
            cursor,
            |e| {
                if e.snap_mark() != mark {
                    visit(e);
                    e.set_snap_mark(mark);
                }
                false
            },
            |_| {},
        )
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Keys recorded and never taken no longer count as pending.
        if !self.expired_keys.is_empty() {
            EXPIRED_PENDING.fetch_sub(self.expired_keys.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_expiry() {
        let mut db = Db::default();
        db.insert_new_value(b"a", NewValue::Inline(b"1"), Some(100));
        db.insert_new_value(b"b", NewValue::Inline(b"2"), None);
        assert_eq!(db.expires(), 1);
        assert!(db.lookup(b"a", 99).is_some());
        assert!(db.lookup(b"a", 100).is_none());
        assert_eq!(db.len(), 1);
        assert_eq!(db.expires(), 0);
        assert_eq!(db.expired, 1);
    }

    #[test]
    fn expire_bookkeeping() {
        let mut db = Db::default();
        db.insert_new_value(b"a", NewValue::Inline(b"1"), None);
        assert!(db.set_expire(b"a", Some(5)));
        assert_eq!(db.expires(), 1);
        assert!(db.set_expire(b"a", Some(6)));
        assert_eq!(db.expires(), 1);
        assert_eq!(db.lookup(b"a", 0).unwrap().expire_at(), Some(6));
        assert!(db.set_expire(b"a", None));
        assert_eq!(db.expires(), 0);
        db.insert_new_value(b"a", NewValue::Inline(b"2"), Some(9));
        assert_eq!(db.expires(), 1);
        db.replace_with(b"a", |old| Entry::new(old.key(), NewValue::Inline(b"3"), old.expire_at(), 0));
        assert_eq!(db.expires(), 1);
        db.replace_with(b"a", |old| Entry::new(old.key(), NewValue::Inline(b"3"), None, 0));
        assert_eq!(db.expires(), 0);
        db.remove(b"a");
        assert_eq!(db.used, 0);
    }

    #[test]
    fn active_expiry_removes_only_expired() {
        let mut db = Db::default();
        for i in 0..1000 {
            let at = if i % 2 == 0 { Some(10) } else { None };
            db.insert_new_value(format!("k{i}").as_bytes(), NewValue::Inline(b"v"), at);
        }
        let mut total = 0;
        loop {
            total += db.expire_step(11).1;
            if db.expire_cursor == 0 {
                break;
            }
        }
        assert_eq!(total, 500);
        assert_eq!(db.len(), 500);
        assert_eq!(db.expires(), 0);
    }
}
