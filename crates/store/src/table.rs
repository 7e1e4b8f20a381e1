//! A hash table of packed entries with Redis's SCAN guarantee.
//!
//! Buckets are one cache line: six one-byte hash tags, six entry slots and a pointer to an
//! overflow bucket. An entry always lives in the chain of its home bucket (`hash & mask`), so
//! the table supports Redis's reverse-binary SCAN cursor: an element present for the whole
//! scan is returned at least once, even when the table grows or shrinks between calls.
//!
//! Invariants: `len` is the number of occupied slots; the bucket count is a power of two; an
//! overflow bucket is never empty (it is freed when its last slot empties).

const SLOTS: usize = 6;
/// Grow when the average bucket holds more than this many entries (of SLOTS).
const GROW_FILL_NUM: usize = 21; // 5.25 of 6 (87.5%)
const GROW_FILL_DEN: usize = 4;
/// Shrink when fewer than this many entries per bucket on average (1/8 of one).
const SHRINK_DIV: usize = 8;
const MIN_BUCKETS: usize = 4;

use crate::entry::Entry;

#[repr(C, align(64))]
#[derive(Default)]
struct Bucket {
    tags: [u8; SLOTS],
    slots: [Option<Entry>; SLOTS],
    next: Option<Box<Bucket>>,
}

/// Hash table of entries keyed by their key bytes. The caller supplies each key's 64-bit hash.
#[derive(Default)]
pub struct Table {
    buckets: Vec<Bucket>,
    len: usize,
    /// Overflow buckets currently allocated (for memory accounting).
    overflow: usize,
}

fn tag_of(hash: u64) -> u8 {
    (hash >> 48) as u8
}

/// Advances a reverse-binary cursor over a table with `mask + 1` buckets.
fn next_cursor(cursor: u64, mask: u64) -> u64 {
    let v = cursor | !mask;
    (v.reverse_bits().wrapping_add(1)).reverse_bits()
}

/// Where an entry sits: bucket index, depth in the overflow chain, slot.
#[derive(Clone, Copy, Debug)]
struct Pos {
    bucket: usize,
    depth: usize,
    slot: usize,
}

impl Table {
    pub fn new() -> Self {
        Table::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes used by the bucket array and overflow buckets.
    pub fn overhead_bytes(&self) -> usize {
        (self.buckets.capacity() + self.overflow) * std::mem::size_of::<Bucket>()
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    fn bucket_at(&self, pos: Pos) -> &Bucket {
        let mut b = &self.buckets[pos.bucket];
        for _ in 0..pos.depth {
            b = b.next.as_deref().expect("position within chain");
        }
        b
    }

    fn bucket_at_mut(&mut self, pos: Pos) -> &mut Bucket {
        let mut b = &mut self.buckets[pos.bucket];
        for _ in 0..pos.depth {
            b = b.next.as_deref_mut().expect("position within chain");
        }
        b
    }

    fn find_pos(&self, hash: u64, key: &[u8]) -> Option<Pos> {
        if self.buckets.is_empty() {
            return None;
        }
        let tag = tag_of(hash);
        let bucket = hash as usize & self.mask();
        let mut b = &self.buckets[bucket];
        let mut depth = 0;
        loop {
            for slot in 0..SLOTS {
                if b.tags[slot] == tag {
                    if let Some(e) = &b.slots[slot] {
                        if e.key() == key {
                            return Some(Pos { bucket, depth, slot });
                        }
                    }
                }
            }
            b = b.next.as_deref()?;
            depth += 1;
        }
    }

    /// The entry for `key`, if present.
    pub fn get(&self, hash: u64, key: &[u8]) -> Option<&Entry> {
        let pos = self.find_pos(hash, key)?;
        self.bucket_at(pos).slots[pos.slot].as_ref()
    }

    /// The slot holding `key`'s entry, for in-place edits or replacement.
    pub fn get_mut(&mut self, hash: u64, key: &[u8]) -> Option<&mut Entry> {
        let pos = self.find_pos(hash, key)?;
        self.bucket_at_mut(pos).slots[pos.slot].as_mut()
    }

    /// Replaces `key`'s entry with `f(old entry)`; returns false if the key is absent.
    /// `f` must return an entry with the same key.
    pub fn update(&mut self, hash: u64, key: &[u8], f: impl FnOnce(Entry) -> Entry) -> bool {
        let Some(pos) = self.find_pos(hash, key) else {
            return false;
        };
        let slot = &mut self.bucket_at_mut(pos).slots[pos.slot];
        let old = slot.take().expect("occupied");
        *slot = Some(f(old));
        true
    }

    /// Inserts an entry whose key is not in the table (the caller checked).
    pub fn insert_new(&mut self, hash: u64, entry: Entry) {
        debug_assert!(self.find_pos(hash, entry.key()).is_none());
        if (self.len + 1) * GROW_FILL_DEN > self.buckets.len() * GROW_FILL_NUM {
            self.resize((self.buckets.len() * 2).max(MIN_BUCKETS));
        }
        let bucket = hash as usize & self.mask();
        if Self::place(&mut self.buckets[bucket], tag_of(hash), entry) {
            self.overflow += 1;
        }
        self.len += 1;
    }

    /// Puts `entry` in the first free slot of the chain; returns true if a bucket was added.
    fn place(head: &mut Bucket, tag: u8, entry: Entry) -> bool {
        let mut b = head;
        loop {
            if let Some(slot) = b.slots.iter().position(Option::is_none) {
                b.tags[slot] = tag;
                b.slots[slot] = Some(entry);
                return false;
            }
            if b.next.is_none() {
                let mut fresh = Box::<Bucket>::default();
                fresh.tags[0] = tag;
                fresh.slots[0] = Some(entry);
                b.next = Some(fresh);
                return true;
            }
            b = b.next.as_deref_mut().expect("checked above");
        }
    }

    /// Removes and returns `key`'s entry.
    pub fn remove(&mut self, hash: u64, key: &[u8]) -> Option<Entry> {
        let pos = self.find_pos(hash, key)?;
        let entry = self.take(pos);
        self.maybe_shrink();
        Some(entry)
    }

    /// Takes the entry at `pos`, freeing an overflow bucket that becomes empty.
    fn take(&mut self, pos: Pos) -> Entry {
        let entry = self.bucket_at_mut(pos).slots[pos.slot].take().expect("occupied");
        self.len -= 1;
        if pos.depth > 0 && self.bucket_at(pos).slots.iter().all(Option::is_none) {
            let parent = self.bucket_at_mut(Pos { depth: pos.depth - 1, ..pos });
            let mut emptied = parent.next.take().expect("child exists");
            parent.next = emptied.next.take();
            self.overflow -= 1;
        }
        entry
    }

    fn maybe_shrink(&mut self) {
        let n = self.buckets.len();
        if n > MIN_BUCKETS && self.len * SHRINK_DIV < n {
            let want = (self.len * GROW_FILL_DEN / GROW_FILL_NUM + 1).next_power_of_two();
            self.resize(want.max(MIN_BUCKETS));
        }
        if self.len == 0 && n > 0 {
            self.buckets = Vec::new();
            self.overflow = 0;
        }
    }

    /// Rehashes every entry into `new_len` buckets. Hashes are recomputed by `rehash_fn`.
    fn resize(&mut self, new_len: usize) {
        let old = std::mem::take(&mut self.buckets);
        let mut fresh = Vec::with_capacity(new_len);
        fresh.resize_with(new_len, Bucket::default);
        self.buckets = fresh;
        self.overflow = 0;
        let mask = new_len - 1;
        for head in old {
            let mut cur = Some(Box::new(head));
            while let Some(mut b) = cur {
                for slot in 0..SLOTS {
                    if let Some(e) = b.slots[slot].take() {
                        let hash = crate::hash_key(e.key());
                        if Self::place(&mut self.buckets[hash as usize & mask], tag_of(hash), e) {
                            self.overflow += 1;
                        }
                    }
                }
                cur = b.next.take();
            }
        }
    }

    /// Visits the bucket chain at `cursor` and returns the next cursor (0 when done).
    ///
    /// The callback sees every entry of one home bucket. Any entry present from the first call
    /// (cursor 0) until the call that returns 0 is visited at least once.
    pub fn scan_step(&self, cursor: u64, mut visit: impl FnMut(&Entry)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        let mut b = Some(&self.buckets[(cursor & mask) as usize]);
        while let Some(bucket) = b {
            bucket.slots.iter().flatten().for_each(&mut visit);
            b = bucket.next.as_deref();
        }
        next_cursor(cursor, mask)
    }

    /// Like [`Table::scan_step`] but lets the callback remove entries: it returns `true` to
    /// remove (the removed entries are handed to `removed`).
    pub fn scan_step_remove(
        &mut self,
        cursor: u64,
        mut remove: impl FnMut(&mut Entry) -> bool,
        mut removed: impl FnMut(Entry),
    ) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = self.mask() as u64;
        let bucket = (cursor & mask) as usize;
        let mut hits = Vec::new();
        let mut depth = 0;
        let mut b = Some(&mut self.buckets[bucket]);
        while let Some(cur) = b {
            for (slot, e) in cur.slots.iter_mut().enumerate() {
                if let Some(e) = e {
                    if remove(e) {
                        hits.push(Pos { bucket, depth, slot });
                    }
                }
            }
            b = cur.next.as_deref_mut();
            depth += 1;
        }
        // Take deepest first so freeing an emptied overflow bucket never shifts a pending Pos.
        for pos in hits.into_iter().rev() {
            removed(self.take(pos));
        }
        let next = next_cursor(cursor, mask);
        self.maybe_shrink();
        next
    }

    /// A random entry (roughly uniform), using `rand` as a source of random u64s.
    pub fn random(&self, mut rand: impl FnMut() -> u64) -> Option<&Entry> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut bucket = rand() as usize & mask;
        // Occupied buckets are at least 1/8 of all (shrink rule), so this ends quickly.
        let head = loop {
            let b = &self.buckets[bucket];
            if b.slots.iter().any(Option::is_some) || b.next.is_some() {
                break b;
            }
            bucket = (bucket + 1) & mask;
        };
        // Count the chain's entries, then walk to the chosen one (no allocation: eviction
        // samples many keys per eviction).
        let chain = || std::iter::successors(Some(head), |b| b.next.as_deref()).flat_map(|b| b.slots.iter().flatten());
        let n = chain().count();
        chain().nth(rand() as usize % n)
    }

    /// Iterates over every entry (no particular order).
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|head| {
            std::iter::successors(Some(head), |b| b.next.as_deref()).flat_map(|b| b.slots.iter().flatten())
        })
    }

    /// Removes every entry, returning them so the caller can drop them where it likes.
    pub fn drain(&mut self) -> Table {
        std::mem::take(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::NewValue;
    use crate::hash_key;
    use std::collections::HashSet;

    fn entry(k: &str) -> Entry {
        Entry::new(k.as_bytes(), NewValue::Inline(b"v"), None, 0)
    }

    fn insert(t: &mut Table, k: &str) {
        t.insert_new(hash_key(k.as_bytes()), entry(k));
    }

    #[test]
    fn insert_get_remove_many() {
        let mut t = Table::new();
        for i in 0..10_000 {
            insert(&mut t, &format!("k{i}"));
        }
        assert_eq!(t.len(), 10_000);
        for i in 0..10_000 {
            let k = format!("k{i}");
            assert_eq!(t.get(hash_key(k.as_bytes()), k.as_bytes()).unwrap().key(), k.as_bytes());
        }
        assert!(t.get(hash_key(b"nope"), b"nope").is_none());
        for i in (0..10_000).step_by(2) {
            let k = format!("k{i}");
            assert!(t.remove(hash_key(k.as_bytes()), k.as_bytes()).is_some());
        }
        assert_eq!(t.len(), 5_000);
        assert_eq!(t.iter().count(), 5_000);
        for i in 0..10_000 {
            let k = format!("k{i}");
            assert_eq!(t.get(hash_key(k.as_bytes()), k.as_bytes()).is_some(), i % 2 == 1);
        }
        for i in (1..10_000).step_by(2) {
            let k = format!("k{i}");
            assert!(t.remove(hash_key(k.as_bytes()), k.as_bytes()).is_some());
        }
        assert!(t.is_empty());
        assert_eq!(t.overhead_bytes(), 0);
    }

    /// SCAN contract: keys present for the whole scan are seen even if the table grows or
    /// shrinks between steps.
    #[test]
    fn scan_survives_resizes() {
        let mut t = Table::new();
        for i in 0..1000 {
            insert(&mut t, &format!("stable{i}"));
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            cursor = t.scan_step(cursor, |e| {
                seen.insert(e.key().to_vec());
            });
            step += 1;
            if step % 7 == 0 && step < 200 {
                for j in 0..300 {
                    insert(&mut t, &format!("churn{step}-{j}"));
                }
            }
            if step % 11 == 0 {
                let doomed: Vec<Vec<u8>> =
                    t.iter().filter(|e| e.key().starts_with(b"churn")).map(|e| e.key().to_vec()).collect();
                for k in doomed {
                    t.remove(hash_key(&k), &k);
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert!(seen.contains(format!("stable{i}").as_bytes()), "missed stable{i}");
        }
    }

    #[test]
    fn scan_remove_and_random() {
        let mut t = Table::new();
        for i in 0..500 {
            insert(&mut t, &format!("k{i}"));
        }
        let mut seed = 42u64;
        let mut rand = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        assert!(t.random(&mut rand).is_some());
        let mut cursor = 0;
        let mut gone = 0;
        loop {
            cursor = t.scan_step_remove(cursor, |e| e.key().ends_with(b"7"), |_| gone += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(gone, 50);
        assert_eq!(t.len(), 450);
        assert!(t.iter().all(|e| !e.key().ends_with(b"7")));
    }

    #[test]
    fn bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
    }
}
