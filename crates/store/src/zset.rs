//! The sorted-set value type, with Redis 7.2's two encodings and its conversion rules.
//!
//! Elements are ordered by score, then by member bytes (Redis's order: `-0` equals `0`,
//! scores are never NaN).
//!
//! * `listpack` ([`ZPack`]): small sets; elements in order in one exact-size byte buffer,
//!   each `[score][member length varint][member]`. A score that is an integer 0..223 is one
//!   byte; other integers below 2^53 are a length byte and 1-7 bytes of their zigzag form;
//!   short decimals (0.5, 19.99) are a byte for the number of decimals and a varint; any
//!   other score is the byte `0xFF` and the 8 bytes of the double (`-0` is stored as 0, as
//!   Redis's listpack does).
//!   Every operation is a linear walk, as in Redis.
//! * `skiplist` ([`Sorted`]): everything else. A member → score table ([`Table`]`<2>`: one
//!   exact-size allocation per element holding member and score) plus an order-statistics
//!   B+tree over the same elements ([`Tree`]): leaves hold up to 64 `(score, element
//!   address)` pairs of 16 bytes, inner nodes count the elements below each child, so ranks,
//!   rank lookups and range bounds are O(log n). Members are stored once, in the table; the
//!   tree points at the table's allocations (which never move while they live).
//!
//! Conversions follow Redis 7.2: a set is created as a listpack when the command's element
//! count and longest member fit `zset-max-listpack-entries` / `zset-max-listpack-value`; an
//! insert that would exceed either converts it to a skiplist; only the results of the
//! STORE commands convert back ([`ZSet::shrink_to_pack_if_fits`]).
//!
//! Invariants: a pack's entries are strictly ordered and `len` counts them; the tree and
//! the table hold exactly the same elements with the same scores; every tree item points at
//! a live table element; each inner-node child records its subtree's count and greatest item.

use std::cmp::Ordering;
use std::ptr::NonNull;

use crate::hash::{alloc_size, random_below, Blob, BlobRef, Pack, Table};

/// The listpack thresholds (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZSetLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for ZSetLimits {
    fn default() -> Self {
        ZSetLimits { max_listpack_entries: 128, max_listpack_value: 64 }
    }
}

/// Redis's element order: score, then member bytes (memcmp, shorter first on a tie).
pub fn cmp_elem(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2).unwrap_or(Ordering::Equal).then_with(|| m1.cmp(m2))
}

// ---------------------------------------------------------------------------------------------
// Ranges

/// A score interval as ZRANGEBYSCORE takes it (`(` makes a bound exclusive).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    pub fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    pub fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }

    /// Whether no score can lie in the interval (Redis checks this before searching).
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lexicographic interval (`-`, `+`, `[member`, `(member`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexBound<'a> {
    NegInf,
    PosInf,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

impl LexBound<'_> {
    /// Redis's `sdscmplex` of two bounds: the infinities compare equal to themselves.
    fn cmp_bound(&self, other: &LexBound<'_>) -> Ordering {
        use LexBound::*;
        match (self, other) {
            (NegInf, NegInf) | (PosInf, PosInf) => Ordering::Equal,
            (NegInf, _) | (_, PosInf) => Ordering::Less,
            (PosInf, _) | (_, NegInf) => Ordering::Greater,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => a.cmp(b),
        }
    }

    /// `-` and `+` count as exclusive, as in Redis.
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }
}

/// A lexicographic interval as ZRANGEBYLEX takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexRange<'a> {
    pub min: LexBound<'a>,
    pub max: LexBound<'a>,
}

impl LexRange<'_> {
    pub fn gte_min(&self, m: &[u8]) -> bool {
        match self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(b) => m >= b,
            LexBound::Excl(b) => m > b,
        }
    }

    pub fn lte_max(&self, m: &[u8]) -> bool {
        match self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m <= b,
            LexBound::Excl(b) => m < b,
        }
    }

    /// Whether no member can lie in the interval.
    pub fn is_empty(&self) -> bool {
        match self.min.cmp_bound(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            Ordering::Less => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ZPack: the listpack encoding

/// Scores that are integers of magnitude below this are stored as integers.
const INT_SCORE_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
/// First score bytes: below `SMALL_INTS` the byte is the score itself; `INT_LEN + n - 1` is
/// followed by the n-byte little-endian zigzag form of an integer score (n = 1..=8);
/// `DECIMAL + e - 1` by the zigzag varint of an integer m, the score being m / 10^e
/// (e = 1..=14: short decimals such as 0.5 or 19.99 take 2-4 bytes); `RAW_SCORE` by the 8
/// bytes of any other double.
const SMALL_INTS: u8 = 0xE0;
const INT_LEN: u8 = 0xE0;
const DECIMAL: u8 = 0xF0;
const MAX_DECIMALS: i32 = 14;
const RAW_SCORE: u8 = 0xFF;

/// Powers of ten that doubles hold exactly.
const POW10: [f64; 15] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14];

/// (m, e) with `s == m / 10^e` exactly as a double division gives it (which is how the
/// score is rebuilt), for the fewest decimals e, if there is one with |m| < 2^53.
fn as_decimal(s: f64) -> Option<(i64, usize)> {
    if !s.is_finite() {
        return None;
    }
    (1..=MAX_DECIMALS as usize).find_map(|e| {
        let m = (s * POW10[e]).round();
        (m.abs() < INT_SCORE_LIMIT && m / POW10[e] == s).then_some((m as i64, e))
    })
}

fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], mut off: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(off)?;
        off += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some((v, off));
        }
    }
    None
}

fn encode_score(out: &mut Vec<u8>, s: f64) {
    // -0 is stored as 0, as Redis's listpacks store it (as the integer 0).
    if s.trunc() != s || s.abs() >= INT_SCORE_LIMIT {
        match as_decimal(s) {
            Some((m, e)) => {
                out.push(DECIMAL + e as u8 - 1);
                put_varint(out, zigzag(m));
            }
            None => {
                out.push(RAW_SCORE);
                out.extend_from_slice(&s.to_bits().to_le_bytes());
            }
        }
        return;
    }
    let i = s as i64;
    if (0..SMALL_INTS as i64).contains(&i) {
        out.push(i as u8);
        return;
    }
    let z = zigzag(i);
    let n = (8 - z.leading_zeros() as usize / 8).max(1);
    out.push(INT_LEN + n as u8 - 1);
    out.extend_from_slice(&z.to_le_bytes()[..n]);
}

fn encoded_len(s: f64, m: &[u8]) -> usize {
    let mut tmp = Vec::with_capacity(20);
    encode_score(&mut tmp, s);
    put_varint(&mut tmp, m.len() as u64);
    tmp.len() + m.len()
}

/// Decodes the entry at `off`: (score, member, offset of the next entry).
fn decode_entry(buf: &[u8], off: usize) -> Option<(f64, &[u8], usize)> {
    let (score, off) = match *buf.get(off)? {
        b if b < SMALL_INTS => (b as f64, off + 1),
        RAW_SCORE => {
            let raw: [u8; 8] = buf.get(off + 1..off + 9)?.try_into().ok()?;
            (f64::from_bits(u64::from_le_bytes(raw)), off + 9)
        }
        b if b >= DECIMAL => {
            let (z, next) = get_varint(buf, off + 1)?;
            let e = (b - DECIMAL) as usize + 1;
            (unzigzag(z) as f64 / POW10.get(e)?, next)
        }
        b => {
            let n = (b - INT_LEN) as usize + 1;
            let mut raw = [0u8; 8];
            raw[..n].copy_from_slice(buf.get(off + 1..off + 1 + n)?);
            (unzigzag(u64::from_le_bytes(raw)) as f64, off + 1 + n)
        }
    };
    let (len, off) = get_varint(buf, off)?;
    let end = off.checked_add(usize::try_from(len).ok()?)?;
    Some((score, buf.get(off..end)?, end))
}

/// A small sorted set: ordered entries in one exact-size buffer. See the module docs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ZPack {
    buf: Box<[u8]>,
    len: u32,
}

/// Iterator over a pack's entries: (offset, score, member).
pub struct ZPackIter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for ZPackIter<'a> {
    type Item = (usize, f64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (s, m, next) = decode_entry(self.buf, self.off)?;
        let at = std::mem::replace(&mut self.off, next);
        Some((at, s, m))
    }
}

impl ZPack {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Encoded bytes.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn heap_size(&self) -> usize {
        alloc_size(self.buf.len())
    }

    pub fn iter(&self) -> ZPackIter<'_> {
        ZPackIter { buf: &self.buf, off: 0 }
    }

    /// (offset, end offset, score) of `member`.
    fn find(&self, member: &[u8]) -> Option<(usize, usize, f64)> {
        let mut off = 0;
        while let Some((s, m, next)) = decode_entry(&self.buf, off) {
            if m == member {
                return Some((off, next, s));
            }
            off = next;
        }
        None
    }

    /// Inserts an element whose member is absent, at its place in the order.
    fn insert(&mut self, score: f64, member: &[u8]) {
        let at = self.iter().find(|&(_, s, m)| cmp_elem(s, m, score, member) == Ordering::Greater);
        let at = at.map_or(self.buf.len(), |(off, _, _)| off);
        let mut enc = Vec::with_capacity(encoded_len(score, member));
        encode_score(&mut enc, score);
        put_varint(&mut enc, member.len() as u64);
        enc.extend_from_slice(member);
        let mut v = std::mem::take(&mut self.buf).into_vec();
        v.reserve_exact(enc.len());
        v.splice(at..at, enc);
        self.buf = v.into_boxed_slice();
        self.len += 1;
    }

    /// Removes the bytes `from..to`, which hold `n` whole entries.
    fn remove_span(&mut self, from: usize, to: usize, n: usize) {
        let mut v = std::mem::take(&mut self.buf).into_vec();
        v.drain(from..to);
        self.buf = v.into_boxed_slice();
        self.len -= n as u32;
    }

    /// Byte offset of entry `rank` (or the end).
    fn offset_of(&self, rank: usize) -> usize {
        self.iter().nth(rank).map_or(self.buf.len(), |(off, _, _)| off)
    }
}

impl std::fmt::Debug for ZPack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|(_, s, m)| (s, m.escape_ascii().to_string()))).finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Tree: the order-statistics B+tree

const LEAF_CAP: usize = 64;
const INNER_CAP: usize = 64;
const MIN_FILL: usize = 16;

/// One element as the tree sees it: its score and the address of its table element.
#[derive(Clone, Copy)]
struct Item {
    score: f64,
    blob: NonNull<u8>,
}

impl Item {
    /// The member. The lifetime is the caller's to pick: the set guarantees the element
    /// outlives every borrow it hands out (the set itself is borrowed meanwhile).
    fn member<'a>(self) -> &'a [u8] {
        // SAFETY: tree items always point at live `Blob<2>`s owned by the set's table, which
        // removes an element from the tree before freeing it.
        unsafe { BlobRef::<'a, 2>::from_addr(self.blob) }.key()
    }

    fn cmp_key(self, score: f64, member: &[u8]) -> Ordering {
        cmp_elem(self.score, self.member(), score, member)
    }
}

struct Child {
    count: usize,
    max: Item,
    node: Node,
}

enum Node {
    Leaf(Vec<Item>),
    Inner(Vec<Child>),
}

impl Node {
    fn width(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(v) => v.len(),
        }
    }

    /// (element count, greatest item) of a non-empty node.
    fn summary(&self) -> (usize, Option<Item>) {
        match self {
            Node::Leaf(v) => (v.len(), v.last().copied()),
            Node::Inner(v) => (v.iter().map(|c| c.count).sum(), v.last().map(|c| c.max)),
        }
    }
}

fn child_of(node: Node) -> Option<Child> {
    let (count, max) = node.summary();
    Some(Child { count, max: max?, node })
}

fn refresh(c: &mut Child) {
    let (count, max) = c.node.summary();
    c.count = count;
    if let Some(m) = max {
        c.max = m;
    }
}

/// Node counts, for memory accounting.
#[derive(Default, Clone, Copy)]
struct NodeCounts {
    leaves: usize,
    inners: usize,
}

/// The order-statistics B+tree. See the module docs.
struct Tree {
    root: Node,
    counts: NodeCounts,
}

impl Tree {
    fn new() -> Self {
        Tree { root: Node::Leaf(Vec::with_capacity(LEAF_CAP)), counts: NodeCounts { leaves: 1, inners: 0 } }
    }

    fn heap_size(&self) -> usize {
        self.counts.leaves * alloc_size(LEAF_CAP * size_of::<Item>())
            + self.counts.inners * alloc_size((INNER_CAP + 1) * size_of::<Child>())
    }

    /// How many items satisfy `before`, which must hold for a prefix of the order.
    fn count_while(&self, before: impl Fn(Item) -> bool) -> usize {
        let (mut node, mut acc) = (&self.root, 0);
        loop {
            match node {
                Node::Leaf(items) => return acc + items.partition_point(|&it| before(it)),
                Node::Inner(children) => {
                    let mut next = None;
                    for c in children {
                        if before(c.max) {
                            acc += c.count;
                        } else {
                            next = Some(&c.node);
                            break;
                        }
                    }
                    match next {
                        Some(n) => node = n,
                        None => return acc,
                    }
                }
            }
        }
    }

    /// The leaf holding rank `r` and the index of `r` in it.
    fn leaf_at(&self, mut r: usize) -> Option<(&[Item], usize)> {
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(items) => return (r < items.len()).then_some((items.as_slice(), r)),
                Node::Inner(children) => {
                    let mut next = None;
                    for c in children {
                        if r < c.count {
                            next = Some(&c.node);
                            break;
                        }
                        r -= c.count;
                    }
                    node = next?;
                }
            }
        }
    }

    /// Visits ranks `lo..hi` in order (`rev`: from `hi - 1` down to `lo`).
    fn visit(&self, lo: usize, hi: usize, rev: bool, f: &mut dyn FnMut(Item)) {
        self.visit_while(lo, hi, rev, &mut |it| {
            f(it);
            true
        });
    }

    /// Like [`Tree::visit`], stopping at the first item for which `f` returns false;
    /// returns how many items `f` accepted.
    fn visit_while(&self, lo: usize, hi: usize, rev: bool, f: &mut dyn FnMut(Item) -> bool) -> usize {
        let mut accepted = 0;
        if rev {
            let mut r = hi;
            while r > lo {
                let Some((items, i)) = self.leaf_at(r - 1) else { break };
                let take = (i + 1).min(r - lo);
                for &it in items[i + 1 - take..=i].iter().rev() {
                    if !f(it) {
                        return accepted;
                    }
                    accepted += 1;
                }
                r -= take;
            }
        } else {
            let mut r = lo;
            while r < hi {
                let Some((items, i)) = self.leaf_at(r) else { break };
                let take = (items.len() - i).min(hi - r);
                for &it in &items[i..i + take] {
                    if !f(it) {
                        return accepted;
                    }
                    accepted += 1;
                }
                r += take;
            }
        }
        accepted
    }

    fn insert(&mut self, item: Item) {
        if let Some(right) = Self::insert_into(&mut self.root, item, &mut self.counts) {
            let left = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let mut children = Vec::with_capacity(INNER_CAP + 1);
            children.extend(child_of(left));
            children.extend(child_of(right));
            self.root = Node::Inner(children);
            self.counts.inners += 1;
        }
    }

    /// Inserts into the subtree; returns a new right sibling if the node split.
    fn insert_into(node: &mut Node, item: Item, counts: &mut NodeCounts) -> Option<Node> {
        match node {
            Node::Leaf(items) => {
                let pos = items.partition_point(|it| it.cmp_key(item.score, item.member()) == Ordering::Less);
                if items.len() < LEAF_CAP {
                    items.insert(pos, item);
                    return None;
                }
                counts.leaves += 1;
                let mut right = Vec::with_capacity(LEAF_CAP);
                if pos == items.len() {
                    // Appending (ascending inserts): keep the left leaf full.
                    right.push(item);
                } else if pos == 0 {
                    // Prepending (descending inserts): the new item alone on the left.
                    right.append(items);
                    items.push(item);
                } else {
                    right.extend(items.drain(LEAF_CAP / 2..));
                    if pos <= LEAF_CAP / 2 {
                        items.insert(pos, item);
                    } else {
                        right.insert(pos - LEAF_CAP / 2, item);
                    }
                }
                Some(Node::Leaf(right))
            }
            Node::Inner(children) => {
                let last = children.len() - 1;
                let i = children
                    .iter()
                    .position(|c| c.max.cmp_key(item.score, item.member()) != Ordering::Less)
                    .unwrap_or(last);
                let split = Self::insert_into(&mut children[i].node, item, counts);
                refresh(&mut children[i]);
                if let Some(c) = split.and_then(child_of) {
                    children.insert(i + 1, c);
                }
                if children.len() <= INNER_CAP {
                    return None;
                }
                counts.inners += 1;
                let mut right = Vec::with_capacity(INNER_CAP + 1);
                right.extend(children.drain(children.len() / 2..));
                Some(Node::Inner(right))
            }
        }
    }

    /// Removes the item ordered at (score, member); false if absent.
    fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        if !Self::remove_from(&mut self.root, score, member, &mut self.counts) {
            return false;
        }
        while let Node::Inner(children) = &mut self.root {
            if children.len() != 1 {
                break;
            }
            let only = children.pop().map(|c| c.node);
            if let Some(n) = only {
                self.root = n;
                self.counts.inners -= 1;
            }
        }
        true
    }

    fn remove_from(node: &mut Node, score: f64, member: &[u8], counts: &mut NodeCounts) -> bool {
        match node {
            Node::Leaf(items) => {
                let pos = items.partition_point(|it| it.cmp_key(score, member) == Ordering::Less);
                if pos < items.len() && items[pos].cmp_key(score, member) == Ordering::Equal {
                    items.remove(pos);
                    return true;
                }
                false
            }
            Node::Inner(children) => {
                let Some(i) = children.iter().position(|c| c.max.cmp_key(score, member) != Ordering::Less) else {
                    return false;
                };
                if !Self::remove_from(&mut children[i].node, score, member, counts) {
                    return false;
                }
                refresh(&mut children[i]);
                if children[i].node.width() < MIN_FILL && children.len() > 1 {
                    Self::rebalance(children, i, counts);
                }
                true
            }
        }
    }

    /// Merges child `i` with a neighbour, or evens them out if both do not fit in one node.
    fn rebalance(children: &mut Vec<Child>, i: usize, counts: &mut NodeCounts) {
        let a = if i + 1 < children.len() { i } else { i - 1 };
        let (left, right) = children.split_at_mut(a + 1);
        let (l, r) = (&mut left[a], &mut right[0]);
        let merged = match (&mut l.node, &mut r.node) {
            (Node::Leaf(x), Node::Leaf(y)) => even_out(x, y, LEAF_CAP),
            (Node::Inner(x), Node::Inner(y)) => even_out(x, y, INNER_CAP),
            _ => unreachable!("siblings are at the same depth"),
        };
        if merged {
            match l.node {
                Node::Leaf(_) => counts.leaves -= 1,
                Node::Inner(_) => counts.inners -= 1,
            }
            refresh(l);
            children.remove(a + 1);
        } else {
            refresh(l);
            refresh(r);
        }
    }
}

/// Moves everything into `x` if it fits in `cap` (returns true: `y` is now empty), else
/// splits the items evenly between them.
fn even_out<T>(x: &mut Vec<T>, y: &mut Vec<T>, cap: usize) -> bool {
    let total = x.len() + y.len();
    if total <= cap {
        x.append(y);
        return true;
    }
    let want = total / 2;
    if x.len() < want {
        let k = want - x.len();
        x.extend(y.drain(..k));
    } else {
        let moved: Vec<T> = x.drain(want..).collect();
        y.splice(0..0, moved);
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Sorted: the skiplist encoding

/// A large sorted set: member → score table plus the order tree. See the module docs.
pub struct Sorted {
    dict: Table<2>,
    tree: Tree,
}

// SAFETY: the tree's raw pointers refer to allocations the same value owns (through `dict`);
// they are only dereferenced through `&self`/`&mut self`, like any owned data.
unsafe impl Send for Sorted {}
// SAFETY: shared access only reads.
unsafe impl Sync for Sorted {}

fn score_of(blob: BlobRef<'_, 2>) -> f64 {
    let raw: [u8; 8] = blob.part(1).try_into().unwrap_or([0; 8]);
    f64::from_bits(u64::from_le_bytes(raw))
}

impl Sorted {
    fn with_capacity(n: usize) -> Self {
        Sorted { dict: Table::with_capacity(n), tree: Tree::new() }
    }

    fn len(&self) -> usize {
        self.dict.len()
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        self.dict.get(m).map(score_of)
    }

    fn insert_new(&mut self, m: &[u8], score: f64) {
        let blob = Blob::new([m, &score.to_bits().to_le_bytes()]);
        let addr = blob.as_ref().addr();
        self.dict.insert_new(blob);
        self.tree.insert(Item { score, blob: addr });
    }

    fn set_score(&mut self, m: &[u8], old: f64, new: f64) {
        let Some(blob) = self.dict.get(m) else { return };
        let addr = blob.addr();
        self.tree.remove(old, m);
        self.dict.overwrite_part(m, 1, &new.to_bits().to_le_bytes());
        self.tree.insert(Item { score: new, blob: addr });
    }

    fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let score = self.score(m)?;
        self.tree.remove(score, m);
        self.dict.remove(m);
        Some(score)
    }

    fn heap_size(&self) -> usize {
        alloc_size(size_of::<Sorted>()) + self.dict.heap_size() + self.tree.heap_size()
    }
}

// ---------------------------------------------------------------------------------------------
// ZSet

enum Repr {
    Pack(ZPack),
    Tree(Box<Sorted>),
}

/// A Redis sorted set. See the module docs for its encodings.
pub struct ZSet {
    repr: Repr,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet { repr: Repr::Pack(ZPack::default()) }
    }
}

impl ZSet {
    /// Redis's `zsetTypeCreate`: the encoding for a new set about to receive `size_hint`
    /// elements whose longest member is `max_len` bytes.
    pub fn new_for(size_hint: usize, max_len: usize, lim: ZSetLimits) -> Self {
        if size_hint <= lim.max_listpack_entries && max_len <= lim.max_listpack_value {
            ZSet::default()
        } else {
            ZSet { repr: Repr::Tree(Box::new(Sorted::with_capacity(size_hint))) }
        }
    }

    /// An empty skiplist-encoded set (the STORE commands build their results in one).
    pub fn new_tree(size_hint: usize) -> Self {
        ZSet { repr: Repr::Tree(Box::new(Sorted::with_capacity(size_hint))) }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len(),
            Repr::Tree(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (for memory accounting); O(1).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.heap_size(),
            Repr::Tree(t) => t.heap_size(),
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Tree(_) => "skiplist",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Pack(_))
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Pack(p) => p.find(member).map(|(_, _, s)| s),
            Repr::Tree(t) => t.score(member),
        }
    }

    /// Redis 7.2's `zsetTypeMaybeConvert`: a listpack about to receive more than
    /// `zset-max-listpack-entries` elements becomes a skiplist first.
    pub fn maybe_convert(&mut self, size_hint: usize, lim: ZSetLimits) {
        if size_hint > lim.max_listpack_entries {
            self.convert_to_tree();
        }
    }

    /// Converts to the skiplist encoding.
    pub fn convert_to_tree(&mut self) {
        let Repr::Pack(p) = &self.repr else { return };
        let mut t = Sorted::with_capacity(p.len());
        for (_, s, m) in p.iter() {
            t.insert_new(m, s);
        }
        self.repr = Repr::Tree(Box::new(t));
    }

    /// Redis's `zsetConvertToListpackIfNeeded` for a STORE result: back to a listpack if it
    /// fits the limits.
    pub fn shrink_to_pack_if_fits(&mut self, lim: ZSetLimits) {
        let Repr::Tree(t) = &self.repr else { return };
        if t.len() > lim.max_listpack_entries {
            return;
        }
        let mut p = ZPack::default();
        let mut fits = true;
        let mut bytes = 0usize;
        self.for_range(0, t.len(), false, |m, s| {
            fits &= m.len() <= lim.max_listpack_value;
            bytes += encoded_len(s, m);
        });
        if !fits || bytes > crate::hash::PACK_SAFETY_SIZE {
            return;
        }
        let mut buf = Vec::with_capacity(bytes);
        let mut n = 0u32;
        self.for_range(0, t.len(), false, |m, s| {
            encode_score(&mut buf, s);
            put_varint(&mut buf, m.len() as u64);
            buf.extend_from_slice(m);
            n += 1;
        });
        p.buf = buf.into_boxed_slice();
        p.len = n;
        self.repr = Repr::Pack(p);
    }

    /// Adds a member that is absent (the caller checked), converting to a skiplist first if
    /// the listpack would exceed its limits.
    pub fn insert_new(&mut self, member: &[u8], score: f64, lim: ZSetLimits) {
        if let Repr::Pack(p) = &self.repr {
            let too_big = p.len() + 1 > lim.max_listpack_entries
                || member.len() > lim.max_listpack_value
                || !Pack::default().safe_to_add(p.bytes() + encoded_len(score, member));
            if too_big {
                self.convert_to_tree();
            }
        }
        match &mut self.repr {
            Repr::Pack(p) => p.insert(score, member),
            Repr::Tree(t) => t.insert_new(member, score),
        }
    }

    /// Changes the score of a present member from `old` to `new`.
    pub fn set_score(&mut self, member: &[u8], old: f64, new: f64) {
        match &mut self.repr {
            Repr::Pack(p) => {
                if let Some((from, to, _)) = p.find(member) {
                    p.remove_span(from, to, 1);
                    p.insert(new, member);
                }
            }
            Repr::Tree(t) => t.set_score(member, old, new),
        }
    }

    /// Removes `member`; its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Pack(p) => {
                let (from, to, s) = p.find(member)?;
                p.remove_span(from, to, 1);
                Some(s)
            }
            Repr::Tree(t) => t.remove(member),
        }
    }

    /// The 0-based rank of `member` (ascending) and its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.repr {
            Repr::Pack(p) => p.iter().enumerate().find(|(_, (_, _, m))| *m == member).map(|(i, (_, s, _))| (i, s)),
            Repr::Tree(t) => {
                let s = t.score(member)?;
                Some((t.tree.count_while(|it| it.cmp_key(s, member) == Ordering::Less), s))
            }
        }
    }

    /// The element at 0-based ascending rank `r`.
    pub fn get(&self, r: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Pack(p) => p.iter().nth(r).map(|(_, s, m)| (m, s)),
            Repr::Tree(t) => t.tree.leaf_at(r).map(|(items, i)| (items[i].member(), items[i].score)),
        }
    }

    /// Visits the elements of ranks `lo..hi` in ascending order, or descending with `rev`.
    pub fn for_range<'a>(&'a self, lo: usize, hi: usize, rev: bool, mut f: impl FnMut(&'a [u8], f64)) {
        let hi = hi.min(self.len());
        if lo >= hi {
            return;
        }
        match &self.repr {
            Repr::Pack(p) => {
                if rev {
                    let all: Vec<(f64, &[u8])> = p.iter().skip(lo).take(hi - lo).map(|(_, s, m)| (s, m)).collect();
                    all.into_iter().rev().for_each(|(s, m)| f(m, s));
                } else {
                    p.iter().skip(lo).take(hi - lo).for_each(|(_, s, m)| f(m, s));
                }
            }
            Repr::Tree(t) => t.tree.visit(lo, hi, rev, &mut |it| f(it.member(), it.score)),
        }
    }

    /// The ranks `lo..hi` of the elements whose scores lie in `range`.
    pub fn score_range(&self, range: &ScoreRange) -> (usize, usize) {
        if range.is_empty() {
            return (0, 0);
        }
        match &self.repr {
            Repr::Pack(p) => {
                let lo = p.iter().take_while(|&(_, s, _)| !range.gte_min(s)).count();
                let hi = lo + p.iter().skip(lo).take_while(|&(_, s, _)| range.lte_max(s)).count();
                (lo, hi)
            }
            Repr::Tree(t) => {
                let lo = t.tree.count_while(|it| !range.gte_min(it.score));
                let hi = t.tree.count_while(|it| range.lte_max(it.score));
                (lo, hi.max(lo))
            }
        }
    }

    /// The ranks `lo..hi` of the members in `range`, found as Redis does: Redis assumes all
    /// scores are equal; when they are not, it answers nothing unless the last member is
    /// `>= min` and the first `<= max`, then walks a listpack linearly (forward from the
    /// first member `>= min`, or backward from the last `<= max` when `rev`), exactly like
    /// Redis's listpack code; a skiplist is searched for the start as if ordered, then
    /// walked the same way (Redis's own search result then depends on its random node
    /// levels, so only the walk is exactly Redis's).
    pub fn lex_range(&self, range: &LexRange<'_>, rev: bool) -> (usize, usize) {
        // Redis first checks the last member is >= min and the first <= max.
        let ends = |r: usize| self.get(r).map(|(m, _)| m);
        let last = self.len().checked_sub(1).and_then(ends);
        if range.is_empty() || !last.is_some_and(|m| range.gte_min(m)) || !ends(0).is_some_and(|m| range.lte_max(m)) {
            return (0, 0);
        }
        match &self.repr {
            Repr::Pack(p) => {
                let members: Vec<&[u8]> = p.iter().map(|(_, _, m)| m).collect();
                if rev {
                    let Some(last) = members.iter().rposition(|m| range.lte_max(m)) else { return (0, 0) };
                    let run = members[..=last].iter().rev().take_while(|m| range.gte_min(m)).count();
                    (last + 1 - run, last + 1)
                } else {
                    let Some(first) = members.iter().position(|m| range.gte_min(m)) else { return (0, 0) };
                    let run = members[first..].iter().take_while(|m| range.lte_max(m)).count();
                    (first, first + run)
                }
            }
            // Redis searches its skiplist for the first member >= min (the last <= max when
            // `rev`), then walks on while the other bound holds.
            Repr::Tree(t) => {
                let len = t.len();
                if rev {
                    let hi = t.tree.count_while(|it| range.lte_max(it.member()));
                    let run = t.tree.visit_while(0, hi, true, &mut |it| range.gte_min(it.member()));
                    (hi - run, hi)
                } else {
                    let lo = t.tree.count_while(|it| !range.gte_min(it.member()));
                    let run = t.tree.visit_while(lo, len, false, &mut |it| range.lte_max(it.member()));
                    (lo, lo + run)
                }
            }
        }
    }

    /// Removes the elements of ranks `lo..hi`; returns how many were removed.
    pub fn remove_ranks(&mut self, lo: usize, hi: usize) -> usize {
        let hi = hi.min(self.len());
        if lo >= hi {
            return 0;
        }
        match &mut self.repr {
            Repr::Pack(p) => {
                let from = p.offset_of(lo);
                let to = p.offset_of(hi);
                p.remove_span(from, to, hi - lo);
            }
            Repr::Tree(t) => {
                let mut doomed: Vec<Vec<u8>> = Vec::with_capacity(hi - lo);
                t.tree.visit(lo, hi, false, &mut |it| doomed.push(it.member().to_vec()));
                for m in doomed {
                    t.remove(&m);
                }
            }
        }
        hi - lo
    }

    /// Removes and returns the lowest (or, with `max`, the highest) element.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let r = if max { self.len().checked_sub(1)? } else { 0 };
        let (m, s) = self.get(r).map(|(m, s)| (m.to_vec(), s))?;
        self.remove(&m);
        Some((m, s))
    }

    /// A uniformly random element.
    pub fn random(&self) -> Option<(&[u8], f64)> {
        self.get(random_below(self.len()))
    }

    /// `count` distinct random ranks (at most the size), ascending: a selection walk when
    /// `count` is a large share of the set, else random picks (O(count), as Redis's case 4).
    pub fn sample_ranks(&self, count: usize) -> Vec<usize> {
        let n = self.len();
        if count.saturating_mul(3) > n {
            return Pack::sample_indexes(n, count);
        }
        let mut picked = std::collections::HashSet::with_capacity(count);
        while picked.len() < count {
            picked.insert(random_below(n));
        }
        let mut ranks: Vec<usize> = picked.into_iter().collect();
        ranks.sort_unstable();
        ranks
    }

    /// One ZSCAN step. A listpack is returned whole (cursor 0 next); a skiplist walks its
    /// table with Redis's reverse-binary cursor.
    pub fn scan<'a>(&'a self, cursor: u64, mut visit: impl FnMut(&'a [u8], f64)) -> u64 {
        match &self.repr {
            Repr::Pack(p) => {
                p.iter().for_each(|(_, s, m)| visit(m, s));
                0
            }
            Repr::Tree(t) => t.dict.scan_step(cursor, |b| visit(b.key(), score_of(b))),
        }
    }
}

impl Clone for ZSet {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Pack(p) => ZSet { repr: Repr::Pack(p.clone()) },
            Repr::Tree(t) => {
                let mut copy = Sorted::with_capacity(t.len());
                self.for_range(0, t.len(), false, |m, s| copy.insert_new(m, s));
                ZSet { repr: Repr::Tree(Box::new(copy)) }
            }
        }
    }
}

impl PartialEq for ZSet {
    /// Same elements with the same scores, whatever the encoding.
    fn eq(&self, other: &Self) -> bool {
        if self.len() != other.len() {
            return false;
        }
        let mut mine = Vec::with_capacity(self.len());
        self.for_range(0, self.len(), false, |m, s| mine.push((m, s)));
        let mut i = 0;
        let mut same = true;
        other.for_range(0, other.len(), false, |m, s| {
            same &= mine.get(i).is_some_and(|&(m2, s2)| m2 == m && s2.to_bits() == s.to_bits());
            i += 1;
        });
        same
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        self.for_range(0, self.len(), false, |m, s| {
            l.entry(&(s, m.escape_ascii().to_string()));
        });
        l.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn lim() -> ZSetLimits {
        ZSetLimits::default()
    }

    /// A model: member → score, plus the sorted order computed on demand.
    fn model_order(m: &HashMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = m.iter().map(|(k, s)| (k.clone(), *s)).collect();
        v.sort_by(|a, b| cmp_elem(a.1, &a.0, b.1, &b.0));
        v
    }

    fn contents(z: &ZSet) -> Vec<(Vec<u8>, f64)> {
        let mut v = Vec::new();
        z.for_range(0, z.len(), false, |m, s| v.push((m.to_vec(), s)));
        v
    }

    #[test]
    fn scores_round_trip_through_the_pack() {
        for s in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            63.0,
            64.0,
            -64.0,
            1e15,
            -1e15,
            2f64.powi(53),
            0.5,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
            -(2f64.powi(53) - 1.0),
        ] {
            let mut p = ZPack::default();
            p.insert(s, b"m");
            let (_, got, m) = p.iter().next().unwrap();
            let want = if s == 0.0 { 0.0 } else { s };
            assert_eq!(got.to_bits(), want.to_bits(), "{s}");
            assert_eq!(m, b"m");
        }
        let mut p = ZPack::default();
        p.insert(5.0, b"member:12");
        assert_eq!(p.bytes(), 11, "small integer score: 1 byte + 1 length byte + member");
        let mut p = ZPack::default();
        p.insert(-1.0, b"m");
        p.insert(300.0, b"m2");
        assert_eq!(p.bytes(), (2 + 2) + (3 + 3));
        let mut p = ZPack::default();
        p.insert(12.5, b"m");
        assert_eq!(p.bytes(), 3 + 2, "a short decimal: 1 byte + varint 250 (2 bytes)");
    }

    #[test]
    fn pack_orders_by_score_then_member() {
        let mut z = ZSet::default();
        for (m, s) in [(&b"b"[..], 1.0), (b"a", 1.0), (b"c", 0.0), (b"", 1.0), (b"z", -0.0)] {
            z.insert_new(m, s, lim());
        }
        let order: Vec<Vec<u8>> = contents(&z).into_iter().map(|(m, _)| m).collect();
        assert_eq!(order, vec![b"c".to_vec(), b"z".to_vec(), b"".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(z.rank(b"a"), Some((3, 1.0)));
        assert_eq!(z.score(b"z").map(f64::is_sign_negative), Some(false), "a listpack stores -0 as 0");
    }

    #[test]
    fn converts_at_the_limits() {
        let mut z = ZSet::new_for(1, 1, lim());
        for i in 0..128 {
            z.insert_new(format!("m{i}").as_bytes(), i as f64, lim());
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(b"one-more", 0.5, lim());
        assert_eq!(z.encoding(), "skiplist");
        let mut z = ZSet::default();
        z.insert_new(&[b'x'; 64], 1.0, lim());
        assert_eq!(z.encoding(), "listpack");
        z.insert_new(&[b'y'; 65], 1.0, lim());
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(ZSet::new_for(129, 1, lim()).encoding(), "skiplist");
        assert_eq!(ZSet::new_for(10, 65, lim()).encoding(), "skiplist");
        let mut t = ZSet::new_tree(3);
        t.insert_new(b"a", 1.0, lim());
        t.shrink_to_pack_if_fits(lim());
        assert_eq!(t.encoding(), "listpack");
        assert_eq!(contents(&t), vec![(b"a".to_vec(), 1.0)]);
    }

    /// Random operations on both encodings against a model, through splits, merges and root
    /// changes of the tree (20,000 elements make it three levels deep).
    #[test]
    fn random_operations_match_a_model() {
        for (limit, n, ops) in [(128usize, 300usize, 4000usize), (0, 20_000, 60_000)] {
            let lim = ZSetLimits { max_listpack_entries: limit, max_listpack_value: 64 };
            let mut z = ZSet::default();
            let mut model: HashMap<Vec<u8>, f64> = HashMap::new();
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            for step in 0..ops {
                let r = next();
                let m = format!("m{}", r % n as u64).into_bytes();
                let s = ((r >> 20) % 50) as f64 - 25.0;
                match (r >> 40) % 4 {
                    0 | 1 => match z.score(&m) {
                        None => {
                            z.insert_new(&m, s, lim);
                            model.insert(m, s);
                        }
                        Some(old) => {
                            z.set_score(&m, old, s);
                            model.insert(m, s);
                        }
                    },
                    2 => assert_eq!(z.remove(&m), model.remove(&m)),
                    _ => {
                        if let Some((m, s)) = z.pop((r >> 50) % 2 == 0) {
                            assert_eq!(model.remove(&m), Some(s));
                        }
                    }
                }
                if step % 997 == 0 || step == ops - 1 {
                    let want = model_order(&model);
                    assert_eq!(contents(&z), want);
                    assert_eq!(z.len(), want.len());
                    for (i, (m, s)) in want.iter().enumerate().step_by(7) {
                        assert_eq!(z.rank(m), Some((i, *s)));
                        assert_eq!(z.get(i), Some((&m[..], *s)));
                    }
                    let range = ScoreRange { min: -3.0, max: 7.0, minex: true, maxex: false };
                    let (lo, hi) = z.score_range(&range);
                    let expect: Vec<usize> =
                        (0..want.len()).filter(|&i| range.gte_min(want[i].1) && range.lte_max(want[i].1)).collect();
                    assert_eq!((lo..hi).collect::<Vec<_>>(), expect);
                    let mut rev = Vec::new();
                    z.for_range(lo, hi, true, |m, _| rev.push(m.to_vec()));
                    let fwd: Vec<Vec<u8>> = expect.iter().rev().map(|&i| want[i].0.clone()).collect();
                    assert_eq!(rev, fwd);
                }
            }
            if limit == 0 {
                assert_eq!(z.encoding(), "skiplist");
                let copy = z.clone();
                assert_eq!(copy, z);
            }
        }
    }

    #[test]
    fn remove_ranks_and_lex_ranges() {
        for limit in [128, 0] {
            let lim = ZSetLimits { max_listpack_entries: limit, max_listpack_value: 64 };
            let mut z = ZSet::default();
            let names: Vec<String> = (0..100).map(|i| format!("{i:03}")).collect();
            for n in &names {
                z.insert_new(n.as_bytes(), 0.0, lim);
            }
            let r = LexRange { min: LexBound::Excl(b"010"), max: LexBound::Incl(b"020") };
            assert_eq!(z.lex_range(&r, false), (11, 21));
            assert_eq!(z.lex_range(&r, true), (11, 21));
            let all = LexRange { min: LexBound::NegInf, max: LexBound::PosInf };
            assert_eq!(z.lex_range(&all, false), (0, 100));
            assert!(LexRange { min: LexBound::PosInf, max: LexBound::PosInf }.is_empty());
            assert!(LexRange { min: LexBound::Incl(b"a"), max: LexBound::Excl(b"a") }.is_empty());
            assert!(!LexRange { min: LexBound::Incl(b"a"), max: LexBound::Incl(b"a") }.is_empty());
            assert_eq!(z.remove_ranks(10, 90), 80);
            let left: Vec<Vec<u8>> = contents(&z).into_iter().map(|(m, _)| m).collect();
            let want: Vec<Vec<u8>> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 10 || *i >= 90)
                .map(|(_, n)| n.as_bytes().to_vec())
                .collect();
            assert_eq!(left, want);
        }
    }

    #[test]
    fn memory_is_counted_and_small() {
        let mut z = ZSet::new_tree(0);
        for i in 0..100_000 {
            z.insert_new(format!("member:{i}").as_bytes(), i as f64, lim());
        }
        let per = z.heap_size() / 100_000;
        assert!(per < 80, "{per} bytes per element");
        let ranks = z.sample_ranks(10);
        assert!(ranks.len() == 10 && ranks.windows(2).all(|w| w[0] < w[1]) && ranks[9] < 100_000);
        let mut seen = BTreeMap::new();
        let mut cursor = 0;
        loop {
            cursor = z.scan(cursor, |m, s| {
                seen.insert(m.to_vec(), s);
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 100_000);
    }
}
