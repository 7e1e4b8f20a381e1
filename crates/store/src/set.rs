//! The set value type, with Redis 7.2's three encodings and its exact conversion rules.
//!
//! * `intset` ([`IntSet`]): all members are canonical integers; a sorted array of 16, 32 or
//!   64-bit values (the narrowest width that holds every member, upgraded as Redis does, never
//!   downgraded), at most `set-max-intset-entries` members.
//! * `listpack` ([`Pack`]): small sets with a non-integer member; members in insertion order,
//!   at most `set-max-listpack-entries` members of `set-max-listpack-value` bytes.
//! * `hashtable` ([`Table`]): everything else; one exact-size allocation per member.
//!
//! Conversions only go intset → listpack → hashtable (or intset → hashtable), at the points
//! Redis 7.2's `setTypeAddAux`, `setTypeCreate` and `setTypeMaybeConvert` choose, so OBJECT
//! ENCODING and the iteration order of small sets (which SMEMBERS, SPOP and the set algebra
//! commands expose) match Redis's. The exceptions are explicit constructors for the results
//! of SINTERSTORE and SPOP ([`Set::new_listpack`], [`Set::to_intset_if_possible`],
//! [`Set::split_random`]).
//!
//! Invariants: an intset's array is sorted, without duplicates; a listpack holds no duplicate;
//! a set never holds a member twice whatever its encoding.

use crate::hash::{
    alloc_size, int_len, parse_int, random_below, sample_slots, Blob, Item, Pack, PackIter, Table, TableIter,
};

/// The encoding thresholds (`set-max-intset-entries`, `set-max-listpack-entries`,
/// `set-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLimits {
    pub max_intset_entries: usize,
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        SetLimits { max_intset_entries: 512, max_listpack_entries: 128, max_listpack_value: 64 }
    }
}

impl SetLimits {
    /// Redis's `intsetMaxEntries`: the configured limit, capped at 2^30.
    fn intset_max(&self) -> usize {
        self.max_intset_entries.min(1 << 30)
    }
}

// ---------------------------------------------------------------------------------------------
// IntSet

/// A sorted array of distinct integers at the narrowest of three widths, in one exact-size
/// allocation (Redis's intset, without its 8-byte header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntSet {
    W16(Box<[i16]>),
    W32(Box<[i32]>),
    W64(Box<[i64]>),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::W16(Box::default())
    }
}

/// Width rank of the narrowest encoding holding `v` (Redis's `_intsetValueEncoding`).
fn width_of(v: i64) -> u8 {
    if i16::try_from(v).is_ok() {
        1
    } else if i32::try_from(v).is_ok() {
        2
    } else {
        3
    }
}

/// Inserts `x` in sorted order, reallocating to the exact new size.
fn insert_sorted<T: Ord + Copy>(b: &mut Box<[T]>, x: T) -> bool {
    match b.binary_search(&x) {
        Ok(_) => false,
        Err(pos) => {
            let mut v = std::mem::take(b).into_vec();
            v.reserve_exact(1);
            v.insert(pos, x);
            *b = v.into_boxed_slice();
            true
        }
    }
}

/// Removes `x`, reallocating to the exact new size.
fn remove_sorted<T: Ord + Copy>(b: &mut Box<[T]>, x: T) -> bool {
    match b.binary_search(&x) {
        Ok(pos) => {
            let mut v = std::mem::take(b).into_vec();
            v.remove(pos);
            *b = v.into_boxed_slice();
            true
        }
        Err(_) => false,
    }
}

fn widen<T: Copy + Into<i64>, U: TryFrom<i64> + Default>(v: &[T]) -> Box<[U]> {
    v.iter().map(|&x| U::try_from(x.into()).unwrap_or_default()).collect()
}

impl IntSet {
    pub fn len(&self) -> usize {
        match self {
            IntSet::W16(v) => v.len(),
            IntSet::W32(v) => v.len(),
            IntSet::W64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn width(&self) -> u8 {
        match self {
            IntSet::W16(_) => 1,
            IntSet::W32(_) => 2,
            IntSet::W64(_) => 3,
        }
    }

    /// The name of the element width: 16, 32 or 64 bits.
    pub fn bits(&self) -> u32 {
        8 << self.width()
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        alloc_size(self.len() << self.width())
    }

    /// The member at sorted position `i`.
    pub fn get(&self, i: usize) -> Option<i64> {
        match self {
            IntSet::W16(v) => v.get(i).map(|&x| x as i64),
            IntSet::W32(v) => v.get(i).map(|&x| x as i64),
            IntSet::W64(v) => v.get(i).copied(),
        }
    }

    pub fn min(&self) -> Option<i64> {
        self.get(0)
    }

    pub fn max(&self) -> Option<i64> {
        self.get(self.len().checked_sub(1)?)
    }

    pub fn contains(&self, x: i64) -> bool {
        match self {
            IntSet::W16(v) => i16::try_from(x).is_ok_and(|x| v.binary_search(&x).is_ok()),
            IntSet::W32(v) => i32::try_from(x).is_ok_and(|x| v.binary_search(&x).is_ok()),
            IntSet::W64(v) => v.binary_search(&x).is_ok(),
        }
    }

    /// Adds `x`; returns whether it was new. Widens every member first when `x` needs it.
    pub fn insert(&mut self, x: i64) -> bool {
        if width_of(x) > self.width() {
            self.upgrade(width_of(x));
        }
        match self {
            IntSet::W16(v) => insert_sorted(v, x as i16),
            IntSet::W32(v) => insert_sorted(v, x as i32),
            IntSet::W64(v) => insert_sorted(v, x),
        }
    }

    /// Re-encodes every member at width rank `w` (2 = 32 bits, 3 = 64 bits).
    fn upgrade(&mut self, w: u8) {
        *self = match (&*self, w) {
            (IntSet::W16(v), 2) => IntSet::W32(widen(v)),
            (IntSet::W16(v), _) => IntSet::W64(widen(v)),
            (IntSet::W32(v), _) => IntSet::W64(widen(v)),
            (IntSet::W64(_), _) => return,
        };
    }

    /// Removes `x`; returns whether it was there.
    pub fn remove(&mut self, x: i64) -> bool {
        match self {
            IntSet::W16(v) => i16::try_from(x).is_ok_and(|x| remove_sorted(v, x)),
            IntSet::W32(v) => i32::try_from(x).is_ok_and(|x| remove_sorted(v, x)),
            IntSet::W64(v) => remove_sorted(v, x),
        }
    }

    /// Members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

// ---------------------------------------------------------------------------------------------
// Set

#[derive(Clone, Debug, PartialEq)]
enum SetRepr {
    Ints(IntSet),
    Pack(Pack),
    Table(Box<Table<1>>),
}

/// A Redis set. See the module docs for its encodings.
#[derive(Clone, Debug, PartialEq)]
pub struct Set {
    repr: SetRepr,
}

impl Default for Set {
    fn default() -> Self {
        Set { repr: SetRepr::Ints(IntSet::default()) }
    }
}

/// Iterator over a set's members (intset ascending, listpack in order, table in slot order).
pub enum SetIter<'a> {
    Ints(&'a IntSet, usize),
    Pack(PackIter<'a>),
    Table(TableIter<'a, 1>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        match self {
            SetIter::Ints(s, i) => {
                *i += 1;
                s.get(*i - 1).map(Item::Int)
            }
            SetIter::Pack(it) => it.next().map(|(_, item)| item),
            SetIter::Table(it) => it.next().map(|b| Item::Str(b.key())),
        }
    }
}

impl Set {
    /// An empty intset (Redis's `createIntsetObject`).
    pub fn new() -> Self {
        Set::default()
    }

    /// An empty listpack set (Redis's `createSetListpackObject`).
    pub fn new_listpack() -> Self {
        Set { repr: SetRepr::Pack(Pack::default()) }
    }

    /// Redis's `setTypeCreate`: the encoding for a new set whose first member is `first` and
    /// that is about to receive `size_hint` members.
    pub fn new_for(first: &[u8], size_hint: usize, lim: SetLimits) -> Self {
        if parse_int(first).is_some() && size_hint <= lim.max_intset_entries {
            Set::new()
        } else if size_hint <= lim.max_listpack_entries {
            Set::new_listpack()
        } else {
            Set { repr: SetRepr::Table(Box::new(Table::with_capacity(size_hint))) }
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            SetRepr::Ints(s) => s.len(),
            SetRepr::Pack(p) => p.len(),
            SetRepr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            SetRepr::Ints(s) => s.heap_size(),
            SetRepr::Pack(p) => p.heap_size(),
            SetRepr::Table(t) => t.heap_size(),
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            SetRepr::Ints(_) => "intset",
            SetRepr::Pack(_) => "listpack",
            SetRepr::Table(_) => "hashtable",
        }
    }

    pub fn is_intset(&self) -> bool {
        matches!(self.repr, SetRepr::Ints(_))
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, SetRepr::Pack(_))
    }

    pub fn is_hashtable(&self) -> bool {
        matches!(self.repr, SetRepr::Table(_))
    }

    /// The intset, when that is the encoding (for tests and introspection).
    pub fn as_intset(&self) -> Option<&IntSet> {
        match &self.repr {
            SetRepr::Ints(s) => Some(s),
            _ => None,
        }
    }

    /// Converts to a hashtable sized for `cap` members (no-op if already one).
    pub fn convert_to_table(&mut self, cap: usize) {
        if self.is_hashtable() {
            return;
        }
        let mut t = Table::with_capacity(cap.max(self.len()));
        for item in self.iter() {
            item.with_bytes(|m| t.insert_new(Blob::new([m])));
        }
        self.repr = SetRepr::Table(Box::new(t));
    }

    /// Converts an intset to a listpack (members in ascending order).
    fn intset_to_pack(&mut self) {
        let SetRepr::Ints(s) = &self.repr else { return };
        let mut p = Pack::default();
        s.iter().for_each(|v| p.push_int(v));
        self.repr = SetRepr::Pack(p);
    }

    /// Redis's `setTypeMaybeConvert`: before adding `size_hint` members to an existing set,
    /// convert to a hashtable if that many could not stay in the current encoding.
    pub fn maybe_convert(&mut self, size_hint: usize, lim: SetLimits) {
        let too_many = match self.repr {
            SetRepr::Pack(_) => size_hint > lim.max_listpack_entries,
            SetRepr::Ints(_) => size_hint > lim.max_intset_entries,
            SetRepr::Table(_) => false,
        };
        if too_many {
            self.convert_to_table(size_hint);
        }
    }

    /// Whether `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.repr {
            SetRepr::Ints(s) => parse_int(m).is_some_and(|v| s.contains(v)),
            SetRepr::Pack(p) => p.find(m, 1).is_some(),
            SetRepr::Table(t) => t.contains(m),
        }
    }

    /// Whether `item` (read from another set) is a member.
    pub fn contains_item(&self, item: Item<'_>) -> bool {
        match (item, &self.repr) {
            (Item::Int(v), SetRepr::Ints(s)) => s.contains(v),
            _ => item.with_bytes(|m| self.contains(m)),
        }
    }

    /// Adds `m` (Redis's `setTypeAddAux`); returns whether it was new. May change encoding.
    pub fn add(&mut self, m: &[u8], lim: SetLimits) -> bool {
        match &mut self.repr {
            SetRepr::Table(t) => {
                if t.contains(m) {
                    return false;
                }
                t.insert_new(Blob::new([m]));
                true
            }
            SetRepr::Pack(p) => {
                if p.find(m, 1).is_some() {
                    return false;
                }
                if p.len() < lim.max_listpack_entries && m.len() <= lim.max_listpack_value && p.safe_to_add(m.len()) {
                    p.push(m);
                } else {
                    self.grow_into_table(m);
                }
                true
            }
            SetRepr::Ints(_) => match parse_int(m) {
                Some(v) => self.add_int(v, lim),
                None => {
                    self.add_string_to_intset(m, lim);
                    true
                }
            },
        }
    }

    /// Converts to a hashtable with room for one more member, then adds `m` (absent).
    fn grow_into_table(&mut self, m: &[u8]) {
        self.convert_to_table(self.len() + 1);
        if let SetRepr::Table(t) = &mut self.repr {
            t.insert_new(Blob::new([m]));
        }
    }

    /// An intset receiving a non-integer: becomes a listpack if everything fits one (judged
    /// by the longest integer's digits, as Redis does), else a hashtable.
    fn add_string_to_intset(&mut self, m: &[u8], lim: SetLimits) {
        let SetRepr::Ints(s) = &self.repr else { return };
        let longest = s.min().into_iter().chain(s.max()).map(int_len).max().unwrap_or(0);
        let fits = s.len() < lim.max_listpack_entries
            && m.len() <= lim.max_listpack_value
            && longest <= lim.max_listpack_value
            && (s.len() * 11).saturating_add(m.len()) <= crate::hash::PACK_SAFETY_SIZE;
        if fits {
            self.intset_to_pack();
            if let SetRepr::Pack(p) = &mut self.repr {
                p.push(m);
            }
        } else {
            self.grow_into_table(m);
        }
    }

    /// Adds an integer member; returns whether it was new.
    pub fn add_int(&mut self, v: i64, lim: SetLimits) -> bool {
        match &mut self.repr {
            SetRepr::Ints(s) => {
                let added = s.insert(v);
                let len = s.len();
                if added && len > lim.intset_max() {
                    self.convert_to_table(len);
                }
                added
            }
            _ => Item::Int(v).with_bytes(|m| self.add(m, lim)),
        }
    }

    /// Adds a member read from another set.
    pub fn add_item(&mut self, item: Item<'_>, lim: SetLimits) -> bool {
        match item {
            Item::Int(v) => self.add_int(v, lim),
            Item::Str(s) => self.add(s, lim),
        }
    }

    /// Removes `m`; returns whether it was a member. Never changes the encoding.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            SetRepr::Ints(s) => parse_int(m).is_some_and(|v| s.remove(v)),
            SetRepr::Pack(p) => match p.find(m, 1) {
                Some(off) => {
                    p.remove_at(off, 1);
                    true
                }
                None => false,
            },
            SetRepr::Table(t) => t.remove(m).is_some(),
        }
    }

    /// Removes a member read from another set.
    pub fn remove_item(&mut self, item: Item<'_>) -> bool {
        match (item, &mut self.repr) {
            (Item::Int(v), SetRepr::Ints(s)) => s.remove(v),
            _ => item.with_bytes(|m| self.remove(m)),
        }
    }

    /// Every member: intset ascending, listpack in order, hashtable in slot order.
    pub fn iter(&self) -> SetIter<'_> {
        match &self.repr {
            SetRepr::Ints(s) => SetIter::Ints(s, 0),
            SetRepr::Pack(p) => SetIter::Pack(p.iter()),
            SetRepr::Table(t) => SetIter::Table(t.iter()),
        }
    }

    /// Whether every member is a canonical integer.
    pub fn all_ints(&self) -> bool {
        self.is_intset() || self.iter().all(|i| i.as_int().is_some())
    }

    /// Redis's `maybeConvertToIntset`: re-encodes an all-integer set as an intset when it is
    /// small enough for one.
    pub fn to_intset_if_possible(&mut self, lim: SetLimits) {
        if self.is_intset() || self.len() > lim.intset_max() || !self.all_ints() {
            return;
        }
        let mut s = IntSet::default();
        for v in self.iter().filter_map(|i| i.as_int()) {
            s.insert(v);
        }
        self.repr = SetRepr::Ints(s);
    }

    /// One SSCAN step. Intsets and listpacks return every member and cursor 0, as Redis does.
    pub fn scan<'a>(&'a self, cursor: u64, mut visit: impl FnMut(Item<'a>)) -> u64 {
        match &self.repr {
            SetRepr::Table(t) => t.scan_step(cursor, |b| visit(Item::Str(b.key()))),
            _ => {
                self.iter().for_each(visit);
                0
            }
        }
    }

    /// A uniformly random member.
    pub fn random(&self) -> Option<Item<'_>> {
        match &self.repr {
            SetRepr::Ints(s) => s.get(random_below(s.len())).map(Item::Int),
            SetRepr::Pack(p) => p.iter().nth(random_below(p.len())).map(|(_, i)| i),
            SetRepr::Table(t) => t.random().map(|b| Item::Str(b.key())),
        }
    }

    /// Calls `f` on `count` random members, with repetition.
    pub fn random_members(&self, count: usize, mut f: impl FnMut(Item<'_>)) {
        match &self.repr {
            SetRepr::Pack(p) => {
                let items: Vec<Item<'_>> = p.iter().map(|(_, i)| i).collect();
                if items.is_empty() {
                    return;
                }
                (0..count).for_each(|_| f(items[random_below(items.len())]));
            }
            _ => (0..count).filter_map(|_| self.random()).for_each(f),
        }
    }

    /// Calls `f` on `count` distinct random members (`count < len`): a listpack gives them in
    /// its order (Redis's `lpNextRandom`), the other encodings in random order.
    pub fn sample_unique(&self, count: usize, mut f: impl FnMut(Item<'_>)) {
        match &self.repr {
            SetRepr::Pack(p) => {
                let pick = Pack::sample_indexes(p.len(), count);
                let mut next = pick.iter().peekable();
                for (i, (_, item)) in p.iter().enumerate() {
                    if next.peek() == Some(&&i) {
                        next.next();
                        f(item);
                    }
                }
            }
            SetRepr::Ints(s) => {
                let mut idx: Vec<usize> = (0..s.len()).collect();
                for i in 0..count.min(idx.len()) {
                    let j = i + random_below(idx.len() - i);
                    idx.swap(i, j);
                    s.get(idx[i]).map(Item::Int).into_iter().for_each(&mut f);
                }
            }
            SetRepr::Table(t) => {
                sample_slots(t, count).into_iter().filter_map(|i| t.slot(i)).for_each(|b| f(Item::Str(b.key())));
            }
        }
    }

    /// Removes and returns a random member (Redis's `setTypePopRandom`).
    pub fn pop_random(&mut self) -> Option<Vec<u8>> {
        match &mut self.repr {
            SetRepr::Table(t) => {
                let slot = t.random_slot()?;
                t.remove_slot(slot).map(|b| b.key().to_vec())
            }
            _ => {
                let m = self.random()?.to_vec();
                self.remove(&m);
                Some(m)
            }
        }
    }

    /// Removes `count` distinct random members (`count < len`) and returns them. A listpack
    /// gives them in its order and removes them in one pass (Redis's SPOP case 2).
    pub fn pop_many(&mut self, count: usize) -> Vec<Vec<u8>> {
        let SetRepr::Pack(p) = &mut self.repr else {
            return (0..count).filter_map(|_| self.pop_random()).collect();
        };
        let pick = Pack::sample_indexes(p.len(), count);
        let mut next = pick.iter().peekable();
        let (mut out, mut offsets) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for (i, (off, item)) in p.iter().enumerate() {
            if next.peek() == Some(&&i) {
                next.next();
                out.push(item.to_vec());
                offsets.push(off);
            }
        }
        p.remove_many(&offsets);
        out
    }

    /// SPOP's case 3: moves `keep` random members out of `self` into a new set, which Redis
    /// builds as a listpack when the source holds strings (listpack or hashtable) and as an
    /// intset otherwise, converting as members are added. `self` keeps the popped members.
    pub fn split_random(&mut self, keep: usize, lim: SetLimits) -> Set {
        let mut kept = if self.is_intset() { Set::new() } else { Set::new_listpack() };
        if let SetRepr::Pack(p) = &mut self.repr {
            let pick = Pack::sample_indexes(p.len(), keep);
            let mut next = pick.iter().peekable();
            let mut offsets = Vec::with_capacity(keep);
            for (i, (off, item)) in p.iter().enumerate() {
                if next.peek() == Some(&&i) {
                    next.next();
                    kept.add_item(item, lim);
                    offsets.push(off);
                }
            }
            p.remove_many(&offsets);
            return kept;
        }
        for _ in 0..keep {
            let Some(m) = self.pop_random() else { break };
            kept.add(&m, lim);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn member(&mut self, ints_only: bool) -> Vec<u8> {
            match self.below(if ints_only { 3 } else { 6 }) {
                0 => (self.below(200) as i64 - 100).to_string().into_bytes(),
                1 => (self.next() as i64 >> self.below(64)).to_string().into_bytes(),
                2 => (self.below(70000) as i64 - 35000).to_string().into_bytes(),
                3 => vec![b'y'; self.below(80) as usize],
                4 => b"01".to_vec(),
                _ => format!("m{}", self.below(300)).into_bytes(),
            }
        }
    }

    fn members(s: &Set) -> Vec<Vec<u8>> {
        s.iter().map(|i| i.to_vec()).collect()
    }

    #[test]
    fn intset_widths_and_order() {
        let mut s = IntSet::default();
        for v in [5, -3, 100] {
            assert!(s.insert(v));
        }
        assert!(!s.insert(5));
        assert_eq!(s.bits(), 16);
        assert!(s.insert(70000));
        assert_eq!(s.bits(), 32);
        assert!(s.insert(i64::MIN));
        assert_eq!(s.bits(), 64);
        assert!(s.insert(i64::MAX));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![i64::MIN, -3, 5, 100, 70000, i64::MAX]);
        assert!(s.remove(i64::MIN) && s.remove(i64::MAX) && s.remove(70000));
        assert_eq!(s.bits(), 64, "intsets never narrow");
        assert!(!s.contains(1) && s.contains(-3));
        assert!(!s.remove(1));
    }

    #[test]
    fn set_matches_a_model() {
        let mut rng = Rng(0xdead_beef);
        let lim = SetLimits { max_intset_entries: 40, max_listpack_entries: 20, max_listpack_value: 30 };
        for round in 0..60 {
            let ints_only = round % 3 == 0;
            let mut s = Set::new();
            let mut model: HashSet<Vec<u8>> = HashSet::new();
            let mut rank = 0;
            for _ in 0..500 {
                let m = rng.member(ints_only);
                match rng.below(5) {
                    0..=2 => assert_eq!(s.add(&m, lim), model.insert(m.clone())),
                    3 => assert_eq!(s.remove(&m), model.remove(&m)),
                    _ => assert_eq!(s.contains(&m), model.contains(&m)),
                }
                let r = match s.encoding() {
                    "intset" => 0,
                    "listpack" => 1,
                    _ => 2,
                };
                assert!(r >= rank, "encodings only move forward");
                rank = r;
                match r {
                    0 => assert!(s.len() <= lim.max_intset_entries && s.all_ints()),
                    1 => assert!(s.len() <= lim.max_listpack_entries),
                    _ => {}
                }
                assert_eq!(s.len(), model.len());
            }
            let got: HashSet<Vec<u8>> = members(&s).into_iter().collect();
            assert_eq!(got, model);
            assert_eq!(members(&s).len(), model.len(), "no duplicates");
        }
    }

    #[test]
    fn creation_follows_size_hints() {
        let lim = SetLimits::default();
        assert_eq!(Set::new_for(b"1", 1, lim).encoding(), "intset");
        assert_eq!(Set::new_for(b"1", 513, lim).encoding(), "hashtable");
        assert_eq!(Set::new_for(b"a", 128, lim).encoding(), "listpack");
        assert_eq!(Set::new_for(b"a", 129, lim).encoding(), "hashtable");
        let mut s = Set::new_for(b"1", 1, lim);
        s.add(b"1", lim);
        s.maybe_convert(512, lim);
        assert_eq!(s.encoding(), "intset");
        s.maybe_convert(513, lim);
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn conversions_at_redis_thresholds() {
        let lim = SetLimits::default();
        let mut s = Set::new();
        for i in 0..512 {
            s.add(i.to_string().as_bytes(), lim);
        }
        assert_eq!(s.encoding(), "intset");
        s.add(b"512", lim);
        assert_eq!(s.encoding(), "hashtable");

        let mut s = Set::new();
        for i in 0..127 {
            s.add(i.to_string().as_bytes(), lim);
        }
        s.add(b"a", lim);
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(members(&s).last().map(|m| m.as_slice()), Some(&b"a"[..]));
        assert_eq!(members(&s)[0], b"0");
        s.add(b"b", lim);
        assert_eq!(s.encoding(), "hashtable");

        let mut s = Set::new();
        for i in 0..128 {
            s.add(i.to_string().as_bytes(), lim);
        }
        s.add(b"a", lim);
        assert_eq!(s.encoding(), "hashtable", "an intset of 128 cannot become a listpack");

        let mut s = Set::new_listpack();
        s.add(&[b'x'; 64], lim);
        assert_eq!(s.encoding(), "listpack");
        s.add(&[b'x'; 65], lim);
        assert_eq!(s.encoding(), "hashtable");
    }

    #[test]
    fn intset_to_listpack_keeps_sorted_then_appended_order() {
        let lim = SetLimits::default();
        let mut s = Set::new();
        for m in [&b"3"[..], b"-1", b"2"] {
            s.add(m, lim);
        }
        s.add(b"z", lim);
        s.add(b"0", lim);
        assert_eq!(members(&s), vec![b"-1".to_vec(), b"2".to_vec(), b"3".to_vec(), b"z".to_vec(), b"0".to_vec()]);
    }

    #[test]
    fn to_intset_and_heap_size() {
        let lim = SetLimits::default();
        let mut s = Set::new_listpack();
        for m in [&b"10"[..], b"-5", b"7"] {
            s.add(m, lim);
        }
        s.to_intset_if_possible(lim);
        assert_eq!(s.encoding(), "intset");
        assert_eq!(members(&s), vec![b"-5".to_vec(), b"7".to_vec(), b"10".to_vec()]);

        let mut big = Set::new();
        for i in 0..10_000 {
            big.add(format!("member:{i}").as_bytes(), lim);
        }
        let per = big.heap_size() as f64 / 10_000.0;
        assert!(per > 16.0 && per < 40.0, "{per} bytes per member");
    }

    #[test]
    fn pops_and_samples() {
        let lim = SetLimits::default();
        for enc in 0..3 {
            let mut s = Set::new();
            for i in 0..(if enc == 2 { 300 } else { 100 }) {
                let m = if enc == 0 { i.to_string() } else { format!("m{i}") };
                s.add(m.as_bytes(), lim);
            }
            let n = s.len();
            let mut seen = HashSet::new();
            s.sample_unique(30, |i| assert!(seen.insert(i.to_vec())));
            assert_eq!(seen.len(), 30);
            let popped = s.pop_many(10);
            assert_eq!(popped.iter().collect::<HashSet<_>>().len(), 10);
            assert!(popped.iter().all(|m| !s.contains(m)));
            assert_eq!(s.len(), n - 10);
            let kept = s.split_random(5, lim);
            assert_eq!(kept.len(), 5);
            assert_eq!(s.len(), n - 15);
            assert!(kept.iter().all(|m| !s.contains_item(m)));
            let mut count = 0;
            s.random_members(50, |_| count += 1);
            assert_eq!(count, 50);
        }
    }

    #[test]
    fn scan_small_sets_returns_everything() {
        let lim = SetLimits::default();
        let mut s = Set::new();
        for i in 0..10 {
            s.add(i.to_string().as_bytes(), lim);
        }
        let mut n = 0;
        assert_eq!(s.scan(12345, |_| n += 1), 0);
        assert_eq!(n, 10);
    }
}
#[cfg(test)]
mod size_tests {
    /// The values stay small enough that a collection's object box is 32 bytes.
    #[test]
    fn value_types_are_compact() {
        assert!(std::mem::size_of::<crate::hash::Hash>() <= 16);
        assert!(std::mem::size_of::<super::Set>() <= 24);
        assert!(std::mem::size_of::<super::IntSet>() <= 24);
    }
}
