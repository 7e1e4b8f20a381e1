//! The list value type, stored the way Redis 7.2 stores it.
//!
//! A small list is one *pack* (OBJECT ENCODING `listpack`); a large one is a deque of packs
//! (`quicklist`). A pack is Redis's listpack entry format, entry for entry: each element is
//! an encoding byte (strings that are canonical integers become 1-9 byte integers), its data,
//! and a 1-5 byte back-length so the pack can be walked from either end. Instead of Redis's
//! 6-byte header and 1-byte terminator a pack keeps a 4-byte element count; [`Pack::lp_bytes`]
//! still reports Redis's `lpBytes` (entries + 7), because every size rule below compares that
//! figure, and matching it makes the encoding switches happen exactly where Redis's do.
//!
//! Encoding rules (Redis 7.2 `t_list.c`, `quicklist.c`), with `fill` = `list-max-listpack-size`
//! (negative: a node byte limit of 4/8/16/32/64 KiB; positive: an entry limit, with an 8 KiB
//! safety cap on bytes):
//! * before adding elements (push, LINSERT, LSET, LMOVE's push), [`List::prepare_add`] turns a
//!   listpack into a quicklist when its bytes plus the new elements' lengths exceed the limit;
//! * after removing elements, [`List::after_remove`] turns a quicklist back into a listpack when
//!   it has one node and is within *half* the limits (so a list does not flip on every change);
//! * inside a quicklist a push goes into the end node if it stays within the limit (estimating
//!   8 bytes of overhead), otherwise into a new node; LINSERT splits full nodes and merges
//!   neighbours like `_quicklistInsert`; deletions drop empty nodes and never merge.
//!
//! End operations touch one node of at most a few KiB; indexing walks node counts from the
//! nearer end. Buffers grow and shrink to jemalloc's size classes ([`alloc_size`]), which is
//! what the allocator hands out anyway, so [`List::heap_size`] is what the allocator holds.

use std::collections::VecDeque;

/// An end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// One element as stored: bytes, or an integer (a string that was a canonical integer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The element as the bytes a client sent (integers in decimal).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(i) => i.to_string().into_bytes(),
        }
    }

    /// Whether the element equals the searched value (Redis's `lpCompare`).
    pub fn matches(self, needle: &Needle<'_>) -> bool {
        match self {
            Elem::Str(s) => s == needle.bytes,
            Elem::Int(i) => needle.int == Some(i),
        }
    }

    /// Whether the element is stored as an integer.
    pub fn is_int(self) -> bool {
        matches!(self, Elem::Int(_))
    }
}

/// A value searched for (LPOS, LREM, LINSERT's pivot), with its integer form parsed once.
#[derive(Clone, Copy, Debug)]
pub struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Needle { bytes, int: parse_int(bytes) }
    }
}

/// Redis's `lpStringToInt64`: a canonical decimal `i64` (no sign but `-`, no leading zeros,
/// no `-0`, at most 20 characters).
pub(crate) fn parse_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    match (neg, v) {
        (true, v) if v == 1 << 63 => Some(i64::MIN),
        (true, v) => i64::try_from(v).ok().map(|x| -x),
        (false, v) => i64::try_from(v).ok(),
    }
}

// ------------------------------------------------------------------------------------------
// Allocation sizes and Redis's node limits
// ------------------------------------------------------------------------------------------

/// The bytes jemalloc allocates for a request of `n` (its size classes: 8, 16, then steps of 16
/// up to 128, then four classes per power of two). 0 for 0.
pub fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            let k = usize::BITS - 1 - (n - 1).leading_zeros();
            let spacing = 1usize << (k - 2);
            n.div_ceil(spacing).saturating_mul(spacing)
        }
    }
}

/// Node byte limits for `fill` -1 ... -5 (`optimization_level`).
const SIZE_LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// The byte cap of a node whose limit is an entry count (`SIZE_SAFETY_LIMIT`).
const SIZE_SAFETY_LIMIT: usize = 8192;
/// What a push is assumed to add besides the element's length (`SIZE_ESTIMATE_OVERHEAD`).
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// Redis's listpack header (6 bytes) and terminator (1 byte), counted by [`Pack::lp_bytes`].
const LP_OVERHEAD: usize = 7;
/// Elements this large get a node of their own (Redis's "plain" nodes, `packed_threshold`).
/// Unit tests lower it so the plain-node paths run with small values.
const PACKED_THRESHOLD: usize = if cfg!(test) { 300 } else { 1 << 30 };

fn is_large(len: usize) -> bool {
    len >= PACKED_THRESHOLD
}

/// `quicklistNodeLimit`: (byte limit, entry limit), `usize::MAX` / `u32::MAX` meaning none.
fn node_limit(fill: i64) -> (usize, u64) {
    let no_count = u64::from(u32::MAX);
    if fill >= 0 {
        let count = if fill == 0 { 1 } else { (fill as u64).min(no_count) };
        return (usize::MAX, count);
    }
    let level = (fill.saturating_add(1).unsigned_abs()).min(4) as usize;
    (SIZE_LEVELS[level], no_count)
}

/// `quicklistNodeExceedsLimit`: whether a node of `bytes` and `count` entries is too big.
fn exceeds_limit(fill: i64, bytes: usize, count: u64) -> bool {
    let (size, max_count) = node_limit(fill);
    if size != usize::MAX {
        return bytes > size;
    }
    bytes > SIZE_SAFETY_LIMIT || count > max_count
}

// ------------------------------------------------------------------------------------------
// Entry encoding (listpack)
// ------------------------------------------------------------------------------------------

/// A value to store, classified as listpack does (`lpEncodeGetType`).
#[derive(Clone, Copy)]
enum Payload<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl<'a> Payload<'a> {
    fn of(v: &'a [u8]) -> Self {
        match parse_int(v) {
            Some(i) => Payload::Int(i),
            None => Payload::Str(v),
        }
    }

    /// Bytes of the encoding byte(s) and data, without the back-length.
    fn enc_len(self) -> usize {
        match self {
            Payload::Int(v) => match v {
                0..=127 => 1,
                -4096..=4095 => 2,
                -32768..=32767 => 3,
                -8_388_608..=8_388_607 => 4,
                -2_147_483_648..=2_147_483_647 => 5,
                _ => 9,
            },
            Payload::Str(s) => str_header_len(s.len()) + s.len(),
        }
    }

    /// Bytes of the whole entry.
    fn total(self) -> usize {
        let e = self.enc_len();
        e + backlen_len(e)
    }

    /// Writes the entry (encoding, data, back-length) into `dst`, which is `total()` long.
    fn write(self, dst: &mut [u8]) {
        let e = self.enc_len();
        match self {
            Payload::Int(v) => write_int(v, &mut dst[..e]),
            Payload::Str(s) => write_str(s, &mut dst[..e]),
        }
        write_backlen(e, &mut dst[e..]);
    }
}

fn str_header_len(len: usize) -> usize {
    match len {
        0..=63 => 1,
        64..=4095 => 2,
        _ if u32::try_from(len).is_ok() => 5,
        // Beyond listpack's 32-bit lengths (only possible in a plain node): 8-byte length.
        _ => 9,
    }
}

fn write_int(v: i64, dst: &mut [u8]) {
    match dst.len() {
        1 => dst[0] = v as u8,
        2 => {
            let u = (v & 0x1fff) as u16;
            dst[0] = 0xc0 | (u >> 8) as u8;
            dst[1] = u as u8;
        }
        3 => {
            dst[0] = 0xf1;
            dst[1..].copy_from_slice(&(v as i16).to_le_bytes());
        }
        4 => {
            dst[0] = 0xf2;
            dst[1..].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        5 => {
            dst[0] = 0xf3;
            dst[1..].copy_from_slice(&(v as i32).to_le_bytes());
        }
        _ => {
            dst[0] = 0xf4;
            dst[1..].copy_from_slice(&v.to_le_bytes());
        }
    }
}

fn write_str(s: &[u8], dst: &mut [u8]) {
    let len = s.len();
    let h = str_header_len(len);
    match h {
        1 => dst[0] = 0x80 | len as u8,
        2 => {
            dst[0] = 0xe0 | (len >> 8) as u8;
            dst[1] = len as u8;
        }
        5 => {
            dst[0] = 0xf0;
            dst[1..5].copy_from_slice(&(len as u32).to_le_bytes());
        }
        _ => {
            dst[0] = 0xf5;
            dst[1..9].copy_from_slice(&(len as u64).to_le_bytes());
        }
    }
    dst[h..h + len].copy_from_slice(s);
}

/// Bytes of the back-length of an entry whose encoding and data take `l` bytes.
fn backlen_len(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// `lpEncodeBacklen`: big-endian 7-bit groups, every byte but the first flagged with 0x80.
fn write_backlen(l: usize, dst: &mut [u8]) {
    let n = dst.len();
    for (i, b) in dst.iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        let group = ((l >> shift) & 127) as u8;
        *b = if i == 0 { group } else { group | 128 };
    }
}

/// Appends `v` to a listpack body as Redis's `lpAppend` encodes it (canonical integers as
/// integers); returns the bytes added.
pub(crate) fn lp_append(buf: &mut Vec<u8>, v: &[u8]) -> usize {
    lp_append_payload(buf, Payload::of(v))
}

/// Appends an integer element (`lpAppendInteger`); returns the bytes added.
pub(crate) fn lp_append_int(buf: &mut Vec<u8>, v: i64) -> usize {
    lp_append_payload(buf, Payload::Int(v))
}

/// Bytes `lp_append(v)` adds.
pub(crate) fn lp_len(v: &[u8]) -> usize {
    Payload::of(v).total()
}

/// Bytes `lp_append_int(v)` adds.
pub(crate) fn lp_int_len(v: i64) -> usize {
    Payload::Int(v).total()
}

fn lp_append_payload(buf: &mut Vec<u8>, p: Payload<'_>) -> usize {
    let n = p.total();
    let at = buf.len();
    buf.resize(at + n, 0);
    p.write(&mut buf[at..]);
    n
}

/// Bytes of the encoding and data of the entry at `pos`.
fn enc_len_at(buf: &[u8], pos: usize) -> usize {
    let b = buf[pos];
    match b {
        0x00..=0x7f => 1,
        0x80..=0xbf => 1 + (b & 0x3f) as usize,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 2 + (((b & 0x0f) as usize) << 8 | buf[pos + 1] as usize),
        0xf0 => 5 + le_u64(&buf[pos + 1..pos + 5]) as usize,
        0xf1 => 3,
        0xf2 => 4,
        0xf3 => 5,
        0xf4 => 9,
        _ => 9 + le_u64(&buf[pos + 1..pos + 9]) as usize,
    }
}

/// Bytes of the whole entry at `pos`.
pub(crate) fn entry_len_at(buf: &[u8], pos: usize) -> usize {
    let e = enc_len_at(buf, pos);
    e + backlen_len(e)
}

/// Start of the entry that ends just before `end`, read from its back-length.
pub(crate) fn prev_start(buf: &[u8], end: usize) -> usize {
    let (mut val, mut shift, mut n) = (0usize, 0u32, 0usize);
    loop {
        let b = buf[end - 1 - n];
        val |= ((b & 127) as usize) << shift;
        n += 1;
        if b & 128 == 0 || n == 5 {
            return end - n - val;
        }
        shift += 7;
    }
}

fn le_u64(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x))
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// The element at `pos`.
pub(crate) fn elem_at(buf: &[u8], pos: usize) -> Elem<'_> {
    let b = buf[pos];
    let str_at = |start: usize, len: usize| Elem::Str(&buf[start..start + len]);
    match b {
        0x00..=0x7f => Elem::Int(i64::from(b)),
        0x80..=0xbf => str_at(pos + 1, (b & 0x3f) as usize),
        0xc0..=0xdf => Elem::Int(sign_extend(u64::from(b & 0x1f) << 8 | u64::from(buf[pos + 1]), 13)),
        0xe0..=0xef => str_at(pos + 2, ((b & 0x0f) as usize) << 8 | buf[pos + 1] as usize),
        0xf0 => str_at(pos + 5, le_u64(&buf[pos + 1..pos + 5]) as usize),
        0xf1 => Elem::Int(sign_extend(le_u64(&buf[pos + 1..pos + 3]), 16)),
        0xf2 => Elem::Int(sign_extend(le_u64(&buf[pos + 1..pos + 4]), 24)),
        0xf3 => Elem::Int(sign_extend(le_u64(&buf[pos + 1..pos + 5]), 32)),
        0xf4 => Elem::Int(le_u64(&buf[pos + 1..pos + 9]) as i64),
        _ => str_at(pos + 9, le_u64(&buf[pos + 1..pos + 9]) as usize),
    }
}

// ------------------------------------------------------------------------------------------
// Pack: one listpack
// ------------------------------------------------------------------------------------------

/// Bytes before the first entry: the element count (bit 31: a plain node).
const HDR: usize = 4;
const PLAIN_BIT: u32 = 1 << 31;

/// One listpack: `[count: u32 LE][entries...]`, or no allocation at all when empty and new.
/// Positions are byte offsets of entries in `buf`.
#[derive(Clone, Debug, Default)]
struct Pack {
    buf: Vec<u8>,
}

impl Pack {
    /// A pack holding one element; `plain` marks Redis's single-large-element nodes.
    fn single(p: Payload<'_>, plain: bool) -> Pack {
        let mut pack = Pack::default();
        pack.insert(HDR, p);
        pack.set_header(1, plain);
        pack
    }

    fn header(&self) -> u32 {
        match self.buf.get(..HDR) {
            Some(h) => u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            None => 0,
        }
    }

    fn set_header(&mut self, count: usize, plain: bool) {
        let count = u32::try_from(count).unwrap_or(u32::MAX) & !PLAIN_BIT;
        let h = count | if plain { PLAIN_BIT } else { 0 };
        if let Some(dst) = self.buf.get_mut(..HDR) {
            dst.copy_from_slice(&h.to_le_bytes());
        }
    }

    fn count(&self) -> usize {
        (self.header() & !PLAIN_BIT) as usize
    }

    fn is_plain(&self) -> bool {
        self.header() & PLAIN_BIT != 0
    }

    fn set_count(&mut self, count: usize) {
        self.set_header(count, self.is_plain());
    }

    /// Redis's `lpBytes` for the same elements.
    fn lp_bytes(&self) -> usize {
        self.buf.len().saturating_sub(HDR) + LP_OVERHEAD
    }

    /// Heap bytes held.
    fn heap(&self) -> usize {
        alloc_size(self.buf.capacity())
    }

    fn first(&self) -> Option<usize> {
        (self.buf.len() > HDR).then_some(HDR)
    }

    fn last(&self) -> Option<usize> {
        (self.buf.len() > HDR).then(|| prev_start(&self.buf, self.buf.len()))
    }

    fn next(&self, pos: usize) -> Option<usize> {
        let n = pos + entry_len_at(&self.buf, pos);
        (n < self.buf.len()).then_some(n)
    }

    fn prev(&self, pos: usize) -> Option<usize> {
        (pos > HDR).then(|| prev_start(&self.buf, pos))
    }

    fn get(&self, pos: usize) -> Elem<'_> {
        elem_at(&self.buf, pos)
    }

    /// Position of element `index` (`lpSeek`: walks from the nearer end).
    fn seek(&self, index: usize) -> Option<usize> {
        let n = self.count();
        if index >= n {
            return None;
        }
        let mut pos;
        if index <= n / 2 {
            pos = HDR;
            for _ in 0..index {
                pos += entry_len_at(&self.buf, pos);
            }
        } else {
            pos = self.buf.len();
            for _ in index..n {
                pos = prev_start(&self.buf, pos);
            }
        }
        Some(pos)
    }

    /// Grows the capacity to the allocation class holding `len` bytes.
    fn reserve_to(&mut self, len: usize) {
        if len > self.buf.capacity() {
            let want = alloc_size(len);
            self.buf.reserve_exact(want - self.buf.len());
        }
    }

    /// Gives back capacity beyond the allocation class of the current length.
    fn fit(&mut self) {
        let want = alloc_size(self.buf.len());
        if self.buf.capacity() > want {
            self.buf.shrink_to(want);
        }
    }

    fn ensure_header(&mut self) {
        if self.buf.len() < HDR {
            self.reserve_to(HDR);
            self.buf.resize(HDR, 0);
        }
    }

    /// Inserts an entry at byte position `pos` (an entry start or the end).
    fn insert(&mut self, pos: usize, p: Payload<'_>) {
        self.ensure_header();
        let pos = pos.clamp(HDR, self.buf.len());
        let total = p.total();
        let old = self.buf.len();
        self.reserve_to(old + total);
        self.buf.resize(old + total, 0);
        self.buf.copy_within(pos..old, pos + total);
        p.write(&mut self.buf[pos..pos + total]);
        self.set_count(self.count() + 1);
    }

    fn push(&mut self, end: End, p: Payload<'_>) {
        let pos = match end {
            End::Head => HDR,
            End::Tail => self.buf.len().max(HDR),
        };
        self.insert(pos, p);
    }

    /// Removes the bytes `from..to`, which hold `n` whole entries.
    fn delete_span(&mut self, from: usize, to: usize, n: usize) {
        self.buf.drain(from..to);
        self.set_count(self.count().saturating_sub(n));
        self.fit();
    }

    fn delete(&mut self, pos: usize) {
        let to = pos + entry_len_at(&self.buf, pos);
        self.delete_span(pos, to, 1);
    }

    /// Deletes `n` elements starting at element `index` (clamped to the pack).
    fn delete_range(&mut self, index: usize, n: usize) {
        let Some(from) = self.seek(index) else { return };
        let (mut to, mut deleted) = (from, 0);
        while deleted < n && to < self.buf.len() {
            to += entry_len_at(&self.buf, to);
            deleted += 1;
        }
        self.delete_span(from, to, deleted);
    }

    /// Calls `f` with the element at `end`, then removes it.
    fn pop_with<R>(&mut self, end: End, f: impl FnOnce(Elem<'_>) -> R) -> Option<R> {
        let pos = match end {
            End::Head => self.first()?,
            End::Tail => self.last()?,
        };
        let r = f(self.get(pos));
        self.delete(pos);
        Some(r)
    }

    /// Replaces the entry at `pos` (`lpReplace`).
    fn replace(&mut self, pos: usize, p: Payload<'_>) {
        let old_total = entry_len_at(&self.buf, pos);
        let new_total = p.total();
        let len = self.buf.len();
        if new_total > old_total {
            let grow = new_total - old_total;
            self.reserve_to(len + grow);
            self.buf.resize(len + grow, 0);
            self.buf.copy_within(pos + old_total..len, pos + new_total);
        } else if new_total < old_total {
            self.buf.copy_within(pos + old_total..len, pos + new_total);
            self.buf.truncate(len - (old_total - new_total));
        }
        p.write(&mut self.buf[pos..pos + new_total]);
        self.fit();
    }

    /// Appends every entry of `other` (`lpMerge`).
    fn append(&mut self, other: &Pack) {
        let Some(entries) = other.buf.get(HDR..) else { return };
        self.ensure_header();
        self.reserve_to(self.buf.len() + entries.len());
        self.buf.extend_from_slice(entries);
        self.set_count(self.count() + other.count());
    }

    /// Splits off the elements from `index` on into a new pack.
    fn split_off(&mut self, index: usize) -> Pack {
        let Some(pos) = self.seek(index) else { return Pack::default() };
        let moved = self.count() - index;
        let mut tail = Pack::default();
        tail.reserve_to(HDR + self.buf.len() - pos);
        tail.buf.resize(HDR, 0);
        tail.buf.extend_from_slice(&self.buf[pos..]);
        tail.set_header(moved, false);
        self.buf.truncate(pos);
        self.set_count(index);
        self.fit();
        tail
    }

    /// Removes up to `max` elements equal to `needle`: the first ones, or the last ones when
    /// `from_tail`. Returns how many were removed.
    fn remove_matching(&mut self, needle: &Needle<'_>, max: usize, from_tail: bool) -> usize {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut pos = self.first();
        while let Some(p) = pos {
            if !from_tail && spans.len() == max {
                break;
            }
            if self.get(p).matches(needle) {
                spans.push((p, entry_len_at(&self.buf, p)));
            }
            pos = self.next(p);
        }
        if from_tail && spans.len() > max {
            spans.drain(..spans.len() - max);
        }
        self.cut_spans(&spans);
        spans.len()
    }

    /// Removes the given (start, length) entry spans, sorted by start, in one pass.
    fn cut_spans(&mut self, spans: &[(usize, usize)]) {
        let Some(&(mut write, _)) = spans.first() else { return };
        for (k, &(start, len)) in spans.iter().enumerate() {
            let from = start + len;
            let to = spans.get(k + 1).map_or(self.buf.len(), |s| s.0);
            self.buf.copy_within(from..to, write);
            write += to - from;
        }
        self.buf.truncate(write);
        self.set_count(self.count() - spans.len());
        self.fit();
    }

    /// Position of the first element equal to `needle`, with its index.
    fn find(&self, needle: &Needle<'_>) -> Option<(usize, usize)> {
        let mut pos = self.first();
        let mut index = 0;
        while let Some(p) = pos {
            if self.get(p).matches(needle) {
                return Some((index, p));
            }
            index += 1;
            pos = self.next(p);
        }
        None
    }
}

// ------------------------------------------------------------------------------------------
// Quick: a deque of packs
// ------------------------------------------------------------------------------------------

/// Redis's quicklist: packs in order, none empty. `heap` is the sum of the packs' allocations.
#[derive(Debug)]
struct Quick {
    nodes: VecDeque<Pack>,
    count: usize,
    /// `list-max-listpack-size` when the list was converted, clamped as `quicklistSetFill`.
    fill: i64,
    heap: usize,
}

impl Clone for Quick {
    fn clone(&self) -> Self {
        let nodes = self.nodes.clone();
        let heap = nodes.iter().map(Pack::heap).sum();
        Quick { nodes, count: self.count, fill: self.fill, heap }
    }
}

impl Quick {
    fn new(fill: i64) -> Quick {
        Quick { nodes: VecDeque::new(), count: 0, fill: fill.clamp(-5, 32767), heap: 0 }
    }

    fn insert_node(&mut self, at: usize, node: Pack) {
        self.heap += node.heap();
        self.nodes.insert(at.min(self.nodes.len()), node);
    }

    fn remove_node(&mut self, at: usize) -> Option<Pack> {
        let node = self.nodes.remove(at)?;
        self.heap = self.heap.saturating_sub(node.heap());
        if self.nodes.capacity() > 16 && self.nodes.len() < self.nodes.capacity() / 4 {
            self.nodes.shrink_to(self.nodes.len() * 2);
        }
        Some(node)
    }

    /// Runs `f` on node `i`, keeping `heap` in step.
    fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Pack) -> R) -> Option<R> {
        let node = self.nodes.get_mut(i)?;
        let before = node.heap();
        let r = f(node);
        let after = node.heap();
        self.heap = (self.heap + after).saturating_sub(before);
        Some(r)
    }

    /// Removes node `i` if it has no elements left.
    fn drop_if_empty(&mut self, i: usize) {
        if self.nodes.get(i).is_some_and(|n| n.count() == 0) {
            self.remove_node(i);
        }
    }

    /// `_quicklistNodeAllowInsert`: whether an element of `len` bytes may join node `i`.
    fn allow_insert(&self, i: Option<usize>, len: usize) -> bool {
        let Some(node) = i.and_then(|i| self.nodes.get(i)) else { return false };
        if node.is_plain() || is_large(len) {
            return false;
        }
        let bytes = node.lp_bytes() + len + SIZE_ESTIMATE_OVERHEAD;
        !exceeds_limit(self.fill, bytes, node.count() as u64 + 1)
    }

    /// `_quicklistNodeAllowMerge` for nodes `a` and `a + 1`.
    fn allow_merge(&self, a: usize) -> bool {
        let (Some(x), Some(y)) = (self.nodes.get(a), self.nodes.get(a + 1)) else { return false };
        if x.is_plain() || y.is_plain() {
            return false;
        }
        let bytes = x.lp_bytes() + y.lp_bytes() - LP_OVERHEAD;
        !exceeds_limit(self.fill, bytes, (x.count() + y.count()) as u64)
    }

    /// Merges node `a + 1` into node `a`.
    fn merge(&mut self, a: usize) {
        if let Some(b) = self.remove_node(a + 1) {
            self.with_node(a, |n| n.append(&b));
        }
    }

    fn push(&mut self, end: End, v: &[u8]) {
        let p = Payload::of(v);
        let (edge, new_at) = match end {
            End::Head => (Some(0), 0),
            End::Tail => (self.nodes.len().checked_sub(1), self.nodes.len()),
        };
        self.count += 1;
        if is_large(v.len()) {
            self.insert_node(new_at, Pack::single(p, true));
        } else if self.allow_insert(edge, v.len()) {
            self.with_node(edge.unwrap_or(0), |n| n.push(end, p));
        } else {
            self.insert_node(new_at, Pack::single(p, false));
        }
    }

    fn pop_with<R>(&mut self, end: End, f: impl FnOnce(Elem<'_>) -> R) -> Option<R> {
        let i = match end {
            End::Head => 0,
            End::Tail => self.nodes.len().checked_sub(1)?,
        };
        let r = self.with_node(i, |n| n.pop_with(end, f))??;
        self.count -= 1;
        self.drop_if_empty(i);
        Some(r)
    }

    /// Node and offset of element `index`, walking node counts from the nearer end.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.count {
            return None;
        }
        let mut acc = 0;
        if index <= (self.count - 1) / 2 {
            for (i, n) in self.nodes.iter().enumerate() {
                if acc + n.count() > index {
                    return Some((i, index - acc));
                }
                acc += n.count();
            }
        } else {
            let back = self.count - 1 - index;
            for (i, n) in self.nodes.iter().enumerate().rev() {
                if acc + n.count() > back {
                    return Some((i, n.count() - 1 - (back - acc)));
                }
                acc += n.count();
            }
        }
        None
    }

    /// Replaces element `index` (`quicklistReplaceEntry`).
    fn set(&mut self, index: usize, v: &[u8]) -> bool {
        let Some((i, off)) = self.locate(index) else { return false };
        let plain = self.nodes[i].is_plain();
        match (plain, is_large(v.len())) {
            (false, false) => {
                self.with_node(i, |n| n.seek(off).map(|pos| n.replace(pos, Payload::of(v))));
            }
            (true, true) => {
                self.remove_node(i);
                self.insert_node(i, Pack::single(Payload::of(v), true));
            }
            (true, false) => {
                self.insert_at(i, off, v, true);
                self.remove_node(i);
                self.count -= 1;
            }
            (false, true) => {
                // The new element lands right after the old one, which ends node `i`.
                self.insert_at(i, off, v, true);
                self.with_node(i, |n| n.pop_with(End::Tail, |_| ()));
                self.count -= 1;
                self.drop_if_empty(i);
            }
        }
        true
    }

    /// The node and offset of the first element equal to `needle`.
    fn find(&self, needle: &Needle<'_>) -> Option<(usize, usize)> {
        self.nodes.iter().enumerate().find_map(|(i, n)| n.find(needle).map(|(off, _)| (i, off)))
    }

    /// Inserts `v` before or after element `off` of node `i` (`_quicklistInsert`).
    fn insert_at(&mut self, i: usize, off: usize, v: &[u8], after: bool) {
        let Some(node) = self.nodes.get(i) else { return };
        let (cnt, plain) = (node.count(), node.is_plain());
        let full = !self.allow_insert(Some(i), v.len());
        let at_tail = after && off + 1 >= cnt;
        let at_head = !after && off == 0;
        let avail_next = at_tail && self.allow_insert(Some(i + 1), v.len());
        let avail_prev = at_head && i > 0 && self.allow_insert(Some(i - 1), v.len());
        let p = Payload::of(v);
        self.count += 1;
        if is_large(v.len()) {
            self.insert_large(i, off, p, after, plain || at_tail || at_head);
        } else if !full {
            self.with_node(i, |n| insert_next_to(n, off, p, after));
        } else if avail_next {
            self.with_node(i + 1, |n| n.push(End::Head, p));
        } else if avail_prev {
            self.with_node(i - 1, |n| n.push(End::Tail, p));
        } else if at_tail || at_head {
            self.insert_node(if after { i + 1 } else { i }, Pack::single(p, false));
        } else {
            self.split_insert(i, off, p, after);
        }
    }

    /// A full node: split it at the insertion point, add `p` to the split-off part, then
    /// merge neighbours that fit together (`_quicklistSplitNode` + `_quicklistMergeNodes`).
    fn split_insert(&mut self, i: usize, off: usize, p: Payload<'_>, after: bool) {
        let cut = if after { off + 1 } else { off };
        let Some(mut tail) = self.with_node(i, |n| n.split_off(cut)) else { return };
        if after {
            tail.push(End::Head, p);
            self.insert_node(i + 1, tail);
            self.merge_around(i);
        } else {
            // The split-off head part takes the new element and goes before the node.
            let mut head = self.with_node(i, |n| std::mem::replace(n, tail)).unwrap_or_default();
            head.push(End::Tail, p);
            self.insert_node(i, head);
            self.merge_around(i + 1);
        }
    }

    /// Inserts a plain node for a large element: next to node `i` when the element goes at
    /// one of its ends, otherwise between its two halves (no merging, as Redis).
    fn insert_large(&mut self, i: usize, off: usize, p: Payload<'_>, after: bool, adjacent: bool) {
        let plain = Pack::single(p, true);
        if adjacent {
            self.insert_node(if after { i + 1 } else { i }, plain);
            return;
        }
        let cut = if after { off + 1 } else { off };
        let tail = self.with_node(i, |n| n.split_off(cut)).unwrap_or_default();
        self.insert_node(i + 1, plain);
        self.insert_node(i + 2, tail);
    }

    /// `_quicklistMergeNodes` around node `c`.
    fn merge_around(&mut self, mut c: usize) {
        if c >= 2 && self.allow_merge(c - 2) {
            self.merge(c - 2);
            c -= 1;
        }
        if self.allow_merge(c + 1) {
            self.merge(c + 1);
        }
        let target = if c >= 1 && self.allow_merge(c - 1) {
            self.merge(c - 1);
            c - 1
        } else {
            c
        };
        if self.allow_merge(target) {
            self.merge(target);
        }
    }

    /// Deletes `n` elements from element `start` on (`quicklistDelRange`).
    fn delete_range(&mut self, start: usize, n: usize) {
        let Some((mut i, mut off)) = self.locate(start) else { return };
        let mut left = n;
        while left > 0 {
            let Some(cnt) = self.nodes.get(i).map(Pack::count) else { break };
            let del = (cnt - off).min(left);
            if off == 0 && del == cnt {
                self.remove_node(i);
            } else {
                self.with_node(i, |p| p.delete_range(off, del));
                i += 1;
            }
            self.count -= del;
            left -= del;
            off = 0;
        }
    }

    /// LREM: removes up to `max` elements equal to `needle` from one end.
    fn remove_matching(&mut self, needle: &Needle<'_>, max: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let mut k = 0;
        while k < self.nodes.len() && removed < max {
            let i = if from_tail { self.nodes.len() - 1 - k } else { k };
            let r = self.with_node(i, |n| n.remove_matching(needle, max - removed, from_tail)).unwrap_or(0);
            removed += r;
            self.count -= r;
            // A removed node shifts the next one to visit into the same `k`, in both directions.
            let emptied = self.nodes.get(i).is_some_and(|n| n.count() == 0);
            self.drop_if_empty(i);
            if !emptied {
                k += 1;
            }
        }
        removed
    }
}

/// Inserts `p` before or after element `off` of a pack.
fn insert_next_to(n: &mut Pack, off: usize, p: Payload<'_>, after: bool) {
    let Some(pos) = n.seek(off) else { return };
    let at = if after { pos + entry_len_at(&n.buf, pos) } else { pos };
    n.insert(at, p);
}

// ------------------------------------------------------------------------------------------
// List
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Repr {
    Pack(Pack),
    Quick(Box<Quick>),
}

/// A Redis list. See the module docs for the layout and the encoding rules.
///
/// Callers follow Redis's conversion points: [`List::prepare_add`] before adding elements,
/// [`List::after_remove`] after removing some (when the list is not empty).
#[derive(Clone, Debug)]
pub struct List {
    repr: Repr,
}

impl Default for List {
    fn default() -> Self {
        List { repr: Repr::Pack(Pack::default()) }
    }
}

impl PartialEq for List {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl List {
    /// An empty list (listpack encoding, nothing allocated).
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.count(),
            Repr::Quick(q) => q.count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (allocation classes included), for memory accounting.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.heap(),
            Repr::Quick(q) => {
                let nodes = q.nodes.capacity() * std::mem::size_of::<Pack>();
                alloc_size(std::mem::size_of::<Quick>()) + alloc_size(nodes) + q.heap
            }
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Quick(_) => "quicklist",
        }
    }

    /// Before adding `count` elements of `bytes` total length: converts a listpack that would
    /// outgrow `fill` (`list-max-listpack-size`) into a quicklist (`listTypeTryConvertListpack`).
    pub fn prepare_add(&mut self, fill: i64, bytes: usize, count: usize) {
        let Repr::Pack(p) = &mut self.repr else { return };
        let new_bytes = p.lp_bytes().saturating_add(bytes);
        if !exceeds_limit(fill, new_bytes, (p.count() as u64).saturating_add(count as u64)) {
            return;
        }
        let pack = std::mem::take(p);
        let mut q = Quick::new(fill);
        if pack.count() > 0 {
            q.count = pack.count();
            q.insert_node(0, pack);
        }
        self.repr = Repr::Quick(Box::new(q));
    }

    /// After removing elements: converts a quicklist of one node within half of `fill`'s
    /// limits back into a listpack (`listTypeTryConvertQuicklist`, shrinking).
    pub fn after_remove(&mut self, fill: i64) {
        let Repr::Quick(q) = &mut self.repr else { return };
        if q.nodes.len() != 1 || q.nodes[0].is_plain() {
            return;
        }
        let (size, count) = node_limit(fill);
        if q.nodes[0].lp_bytes() > size / 2 || q.count as u64 > count / 2 {
            return;
        }
        if let Some(pack) = q.nodes.pop_front() {
            self.repr = Repr::Pack(pack);
        }
    }

    /// Adds an element at one end.
    pub fn push(&mut self, end: End, v: &[u8]) {
        match &mut self.repr {
            Repr::Pack(p) => p.push(end, Payload::of(v)),
            Repr::Quick(q) => q.push(end, v),
        }
    }

    /// Calls `f` with the element at `end`, then removes it. `None` if the list is empty.
    pub fn pop_with<R>(&mut self, end: End, f: impl FnOnce(Elem<'_>) -> R) -> Option<R> {
        match &mut self.repr {
            Repr::Pack(p) => p.pop_with(end, f),
            Repr::Quick(q) => q.pop_with(end, f),
        }
    }

    /// Removes and returns the element at `end`.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        self.pop_with(end, |e| e.to_vec())
    }

    /// `index` (negative counts from the tail) as a position, if in range.
    fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.len();
        let i = if index < 0 { (len as i64).checked_add(index)? } else { index };
        usize::try_from(i).ok().filter(|&i| i < len)
    }

    /// The element at `index` (negative counts from the tail).
    pub fn get(&self, index: i64) -> Option<Elem<'_>> {
        let index = self.resolve(index)?;
        let (i, off) = self.locate(index)?;
        let node = self.node(i)?;
        node.seek(off).map(|pos| node.get(pos))
    }

    /// Replaces the element at `index` (negative counts from the tail); false if out of range.
    pub fn set(&mut self, index: i64, v: &[u8]) -> bool {
        let Some(index) = self.resolve(index) else { return false };
        match &mut self.repr {
            Repr::Pack(p) => match p.seek(index) {
                Some(pos) => {
                    p.replace(pos, Payload::of(v));
                    true
                }
                None => false,
            },
            Repr::Quick(q) => q.set(index, v),
        }
    }

    /// Inserts `v` before or after the first element equal to `pivot`; false if none is.
    pub fn insert(&mut self, pivot: &[u8], v: &[u8], after: bool) -> bool {
        let needle = Needle::new(pivot);
        match &mut self.repr {
            Repr::Pack(p) => {
                let Some((off, _)) = p.find(&needle) else { return false };
                insert_next_to(p, off, Payload::of(v), after);
            }
            Repr::Quick(q) => {
                let Some((i, off)) = q.find(&needle) else { return false };
                q.insert_at(i, off, v, after);
            }
        }
        true
    }

    /// LREM: removes elements equal to `v`, the first `count` (> 0), the last `-count` (< 0)
    /// or all (0). Returns how many were removed.
    pub fn remove(&mut self, v: &[u8], count: i64) -> usize {
        let needle = Needle::new(v);
        let max = match count {
            0 => usize::MAX,
            c => usize::try_from(c.unsigned_abs()).unwrap_or(usize::MAX),
        };
        match &mut self.repr {
            Repr::Pack(p) => p.remove_matching(&needle, max, count < 0),
            Repr::Quick(q) => q.remove_matching(&needle, max, count < 0),
        }
    }

    /// Deletes `n` elements from position `start` on (clamped to the list).
    pub fn delete_range(&mut self, start: usize, n: usize) {
        if start >= self.len() || n == 0 {
            return;
        }
        match &mut self.repr {
            Repr::Pack(p) => p.delete_range(start, n),
            Repr::Quick(q) => q.delete_range(start, n),
        }
    }

    /// The elements from position `start` towards the tail, or towards the head if `reverse`.
    pub fn iter_from(&self, start: usize, reverse: bool) -> Iter<'_> {
        let found = self.locate(start).and_then(|(i, off)| Some((i, self.node(i)?.seek(off)?)));
        match found {
            Some((node, pos)) => Iter { list: self, node, pos: Some(pos), reverse },
            None => Iter { list: self, node: 0, pos: None, reverse },
        }
    }

    /// The elements from head to tail.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// Pack `i` (a listpack is the only node of its list).
    fn node(&self, i: usize) -> Option<&Pack> {
        match &self.repr {
            Repr::Pack(p) => (i == 0 && p.count() > 0).then_some(p),
            Repr::Quick(q) => q.nodes.get(i),
        }
    }

    /// Node and offset of position `index`.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        match &self.repr {
            Repr::Pack(p) => (index < p.count()).then_some((0, index)),
            Repr::Quick(q) => q.locate(index),
        }
    }
}

/// An iterator over a list's elements in either direction.
#[derive(Debug)]
pub struct Iter<'a> {
    list: &'a List,
    node: usize,
    pos: Option<usize>,
    reverse: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        let list: &'a List = self.list;
        let node = list.node(self.node)?;
        let pos = self.pos?;
        let e = node.get(pos);
        self.pos = if self.reverse { node.prev(pos) } else { node.next(pos) };
        if self.pos.is_none() {
            self.enter_next_node();
        }
        Some(e)
    }
}

impl Iter<'_> {
    fn enter_next_node(&mut self) {
        loop {
            let next = if self.reverse { self.node.checked_sub(1) } else { self.node.checked_add(1) };
            let Some(i) = next else { return };
            self.node = i;
            let Some(n) = self.list.node(i) else { return };
            self.pos = if self.reverse { n.last() } else { n.first() };
            if self.pos.is_some() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic xorshift64* generator for the randomized tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn contents(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(Elem::to_vec).collect()
    }

    fn check_pack(p: &Pack) {
        let (mut n, mut pos) = (0, p.first());
        while let Some(x) = pos {
            n += 1;
            pos = p.next(x);
        }
        assert_eq!(n, p.count(), "forward walk");
        let (mut n, mut pos) = (0, p.last());
        while let Some(x) = pos {
            n += 1;
            pos = p.prev(x);
        }
        assert_eq!(n, p.count(), "backward walk");
        assert_eq!(alloc_size(p.buf.capacity()), alloc_size(p.buf.len()), "capacity beyond its class");
    }

    /// Structural invariants: counts, no empty nodes, plain nodes hold one element, heap total.
    fn check(l: &List) {
        match &l.repr {
            Repr::Pack(p) => check_pack(p),
            Repr::Quick(q) => {
                q.nodes.iter().for_each(check_pack);
                assert_eq!(q.count, q.nodes.iter().map(Pack::count).sum::<usize>());
                assert!(q.nodes.iter().all(|n| n.count() > 0), "empty node");
                assert!(q.nodes.iter().filter(|n| n.is_plain()).all(|n| n.count() == 1));
                assert_eq!(q.heap, q.nodes.iter().map(Pack::heap).sum::<usize>(), "heap total");
            }
        }
    }

    fn node_counts(l: &List) -> Vec<usize> {
        match &l.repr {
            Repr::Pack(p) => vec![p.count()],
            Repr::Quick(q) => q.nodes.iter().map(Pack::count).collect(),
        }
    }

    fn push_all(l: &mut List, fill: i64, end: End, values: &[&[u8]]) {
        l.prepare_add(fill, values.iter().map(|v| v.len()).sum(), values.len());
        for v in values {
            l.push(end, v);
        }
    }

    #[test]
    fn alloc_classes_follow_jemalloc() {
        let cases = [(0, 0), (1, 8), (8, 8), (9, 16), (17, 32), (33, 48), (128, 128), (129, 160), (257, 320)];
        for (n, class) in cases {
            assert_eq!(alloc_size(n), class, "{n}");
        }
        assert_eq!(alloc_size(8192), 8192);
        assert_eq!(alloc_size(8193), 10240);
        assert_eq!(alloc_size(16385), 20480);
    }

    #[test]
    fn integers_parse_like_listpack() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        for bad in [&b""[..], b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"-", b"1e3"] {
            assert_eq!(parse_int(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn sizes_match_redis_listpack() {
        // lpBytes figures from Redis 7.2 (MEMORY USAGE / DEBUG LISTPACK of the same pushes).
        let mut l = List::new();
        let fill = -2;
        let mut expect = LP_OVERHEAD;
        for (v, entry) in [
            (&b"a"[..], 3),
            (b"1", 2),
            (b"127", 2),
            (b"128", 3),
            (b"-4096", 3),
            (b"4096", 4),
            (b"-32769", 5),
            (b"8388608", 6),
            (b"2147483648", 10),
            (b"-0", 4),
            (&[b'x'; 63][..], 65),
            (&[b'x'; 64][..], 67),
            (&[b'x'; 126][..], 130),
            (&[b'x'; 4095][..], 4097 + 2),
        ] {
            push_all(&mut l, fill, End::Tail, &[v]);
            expect += entry;
            let Repr::Pack(p) = &l.repr else { panic!("still a listpack") };
            assert_eq!(p.lp_bytes(), expect, "after {}", v.len());
        }
        check(&l);
    }

    #[test]
    fn values_round_trip() {
        let mut values: Vec<Vec<u8>> = Vec::new();
        for v in [0i64, 1, 127, 128, -1, -4096, -4097, 4095, 4096, 32767, -32768, 32768, 8_388_607, -8_388_608] {
            values.push(v.to_string().into_bytes());
        }
        for v in [i32::MAX as i64, i32::MIN as i64, i64::MAX, i64::MIN, 1 << 40] {
            values.push(v.to_string().into_bytes());
        }
        for len in [0, 1, 63, 64, 200, 4095, 4096, 20_000] {
            values.push((0..len).map(|i| (i % 251) as u8).collect());
        }
        values.push(b"007".to_vec());
        values.push(b"-0".to_vec());
        let mut l = List::new();
        for v in &values {
            let mut p = Pack::default();
            p.push(End::Tail, Payload::of(v));
            assert_eq!(p.get(HDR).to_vec(), *v);
            l.push(End::Tail, v);
        }
        assert_eq!(contents(&l), values);
        let back: Vec<Vec<u8>> = l.iter_from(values.len() - 1, true).map(Elem::to_vec).collect();
        assert_eq!(back, values.iter().rev().cloned().collect::<Vec<_>>());
        check(&l);
    }

    #[test]
    fn listpack_converts_at_the_byte_limit() {
        // 10-byte strings take 12 bytes: a listpack of n holds 7 + 12n bytes.
        let mut l = List::new();
        let v = b"value:0000";
        for n in 0..700usize {
            push_all(&mut l, -2, End::Tail, &[v]);
            let expect = if 7 + 12 * n + 10 > 8192 { "quicklist" } else { "listpack" };
            if l.encoding() != expect {
                panic!("after {} pushes: {} (expected {expect})", n + 1, l.encoding());
            }
            if l.encoding() == "quicklist" {
                break;
            }
        }
        assert_eq!(l.encoding(), "quicklist");
        // The pushed element went to a second node; a quicklist of two nodes stays one.
        assert_eq!(node_counts(&l), vec![682, 1]);
        l.pop(End::Head);
        l.after_remove(-2);
        assert_eq!(l.encoding(), "quicklist");
        // Back to a listpack only with one node within half the limit (4096 bytes).
        while l.len() > 1 {
            l.pop(End::Tail);
            l.after_remove(-2);
            let bytes = 7 + 12 * l.len();
            let want = if bytes <= 4096 { "listpack" } else { "quicklist" };
            assert_eq!(l.encoding(), want, "at {} elements", l.len());
            if want == "listpack" {
                break;
            }
        }
        assert_eq!(l.len(), 340);
        check(&l);
    }

    #[test]
    fn count_fill_limits_entries_per_node() {
        let mut l = List::new();
        let values: Vec<Vec<u8>> = (0..20).map(|i| format!("e{i}").into_bytes()).collect();
        for v in &values {
            push_all(&mut l, 4, End::Tail, &[v]);
        }
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(node_counts(&l), vec![4, 4, 4, 4, 4]);
        l.delete_range(0, 18);
        l.after_remove(4);
        assert_eq!(l.encoding(), "listpack", "2 elements is half of 4");
        assert_eq!(contents(&l), values[18..].to_vec());
        check(&l);
    }

    #[test]
    fn insert_splits_full_nodes_and_merges() {
        let mut l = List::new();
        let values: Vec<Vec<u8>> = (0..12).map(|i| format!("v{i}").into_bytes()).collect();
        for v in &values {
            push_all(&mut l, 4, End::Tail, &[v]);
        }
        assert_eq!(node_counts(&l), vec![4, 4, 4]);
        // After v5 (middle of the full second node): split, then neighbours merge if they fit.
        assert!(l.insert(b"v5", b"new", true));
        let mut model = values.clone();
        model.insert(6, b"new".to_vec());
        assert_eq!(contents(&l), model);
        assert_eq!(node_counts(&l), vec![4, 2, 3, 4]);
        // Before the head of a full node whose previous node has room: appended there.
        assert!(l.insert(b"v8", b"x", false));
        model.insert(model.iter().position(|v| v == b"v8").unwrap_or(0), b"x".to_vec());
        assert_eq!(contents(&l), model);
        assert_eq!(node_counts(&l), vec![4, 2, 4, 4]);
        assert!(!l.insert(b"missing", b"y", true));
        check(&l);
        // Before v10 (inside the full last node): the part before the pivot splits off,
        // takes the element, and merges with its neighbour if they fit.
        let before = node_counts(&l);
        assert!(l.insert(b"v10", b"z", false));
        model.insert(model.iter().position(|v| v == b"v10").unwrap_or(0), b"z".to_vec());
        assert_eq!(contents(&l), model);
        assert_eq!((before, node_counts(&l)), (vec![4, 2, 4, 4], vec![4, 2, 4, 3, 2]));
        check(&l);
    }

    #[test]
    fn plain_nodes_hold_large_elements() {
        let big = vec![b'B'; PACKED_THRESHOLD];
        let mut l = List::new();
        push_all(&mut l, -2, End::Tail, &[b"a", b"b", b"c"]);
        l.prepare_add(-2, 20_000, 1);
        l.push(End::Tail, &big);
        push_all(&mut l, -2, End::Tail, &[&big, b"d"]);
        assert_eq!(node_counts(&l), vec![3, 1, 1, 1]);
        assert!(l.set(1, &big), "large into a packed node splits it");
        assert!(l.set(3, b"small"), "small into a plain node");
        assert!(l.insert(b"a", &big, true));
        let c = contents(&l);
        assert_eq!(c.len(), 7);
        assert_eq!((c[0].as_slice(), c[1].len(), c[2].len()), (&b"a"[..], big.len(), big.len()));
        assert_eq!((c[3].as_slice(), c[4].as_slice()), (&b"c"[..], &b"small"[..]));
        check(&l);
        l.delete_range(0, 5);
        l.after_remove(-2);
        assert_eq!(contents(&l), vec![big.clone(), b"d".to_vec()]);
        check(&l);
    }

    #[test]
    fn heap_size_counts_allocations() {
        let mut l = List::new();
        assert_eq!(l.heap_size(), 0);
        push_all(&mut l, -2, End::Tail, &[b"hello"]);
        assert_eq!(l.heap_size(), 16, "4-byte count + 7-byte entry");
        for i in 0..5000 {
            push_all(&mut l, -2, End::Head, &[format!("{i:08}x").as_bytes()]);
        }
        let Repr::Quick(q) = &l.repr else { panic!("quicklist expected") };
        let packs: usize = q.nodes.iter().map(|n| alloc_size(n.buf.capacity())).sum();
        assert!(l.heap_size() >= packs && l.heap_size() < packs + 4096);
        // Nodes of ~8 KiB use their whole allocation class.
        assert!(q.nodes.iter().skip(1).all(|n| n.lp_bytes() > 8000 && n.heap() == 8192));
        check(&l);
    }

    #[test]
    fn a_list_is_three_words() {
        assert_eq!(std::mem::size_of::<List>(), 24, "Vec's capacity niche tags the two encodings");
        assert_eq!(std::mem::size_of::<Pack>(), 24);
    }

    #[test]
    fn copies_are_equal_and_independent() {
        let mut l = List::new();
        for i in 0..2000 {
            push_all(&mut l, -1, End::Tail, &[format!("{i}").as_bytes()]);
        }
        let mut c = l.clone();
        assert_eq!(c, l);
        assert!(c.heap_size() <= l.heap_size(), "a copy's node deque is exactly sized");
        c.pop(End::Head);
        assert_ne!(c, l);
        check(&c);
    }

    /// One random operation on both the list and a VecDeque model.
    fn random_op(rng: &mut Rng, l: &mut List, model: &mut VecDeque<Vec<u8>>, fill: i64, pool: &[Vec<u8>]) {
        let pick = |rng: &mut Rng| pool[rng.below(pool.len())].clone();
        let any_index = |rng: &mut Rng, len: usize| rng.below(2 * len + 3) as i64 - len as i64 - 1;
        match rng.below(12) {
            0..=2 => {
                let end = if rng.below(2) == 0 { End::Head } else { End::Tail };
                let vals: Vec<Vec<u8>> = (0..1 + rng.below(4)).map(|_| pick(rng)).collect();
                let refs: Vec<&[u8]> = vals.iter().map(Vec::as_slice).collect();
                push_all(l, fill, end, &refs);
                for v in vals {
                    match end {
                        End::Head => model.push_front(v),
                        End::Tail => model.push_back(v),
                    }
                }
            }
            3 | 4 => {
                let end = if rng.below(2) == 0 { End::Head } else { End::Tail };
                let got = l.pop(end);
                let want = if end == End::Head { model.pop_front() } else { model.pop_back() };
                assert_eq!(got, want);
                l.after_remove(fill);
            }
            5 => {
                let (i, v) = (any_index(rng, model.len()), pick(rng));
                l.prepare_add(fill, v.len(), 1);
                let slot = if i < 0 { model.len() as i64 + i } else { i };
                let in_range = slot >= 0 && (slot as usize) < model.len();
                assert_eq!(l.set(i, &v), in_range);
                if in_range {
                    model[slot as usize] = v;
                    l.after_remove(fill);
                }
            }
            6 => {
                let (pivot, v, after) = (pick(rng), pick(rng), rng.below(2) == 0);
                l.prepare_add(fill, v.len(), 1);
                let at = model.iter().position(|x| *x == pivot);
                assert_eq!(l.insert(&pivot, &v, after), at.is_some());
                if let Some(at) = at {
                    model.insert(if after { at + 1 } else { at }, v);
                }
            }
            7 => {
                let (v, count) = (pick(rng), rng.below(7) as i64 - 3);
                let removed = l.remove(&v, count);
                let mut positions: Vec<usize> = (0..model.len()).filter(|&i| model[i] == v).collect();
                if count < 0 {
                    positions.reverse();
                }
                if count != 0 {
                    positions.truncate(count.unsigned_abs() as usize);
                }
                positions.sort_unstable();
                for &p in positions.iter().rev() {
                    model.remove(p);
                }
                assert_eq!(removed, positions.len());
                l.after_remove(fill);
            }
            8 => {
                let (start, n) = (rng.below(model.len() + 2), rng.below(model.len() / 2 + 3));
                l.delete_range(start, n);
                let end = (start + n).min(model.len());
                if start < model.len() {
                    model.drain(start..end);
                }
                l.after_remove(fill);
            }
            9 => {
                let i = any_index(rng, model.len());
                let slot = if i < 0 { model.len() as i64 + i } else { i };
                let want = usize::try_from(slot).ok().and_then(|s| model.get(s)).cloned();
                assert_eq!(l.get(i).map(Elem::to_vec), want);
            }
            _ => {
                let (start, reverse) = (rng.below(model.len() + 1), rng.below(2) == 0);
                let n = rng.below(50);
                let got: Vec<Vec<u8>> = l.iter_from(start, reverse).take(n).map(Elem::to_vec).collect();
                let want: Vec<Vec<u8>> = if start >= model.len() {
                    Vec::new()
                } else if reverse {
                    model.iter().take(start + 1).rev().take(n).cloned().collect()
                } else {
                    model.iter().skip(start).take(n).cloned().collect()
                };
                assert_eq!(got, want);
            }
        }
    }

    fn value_pool(rng: &mut Rng) -> Vec<Vec<u8>> {
        let mut pool: Vec<Vec<u8>> = Vec::new();
        for s in ["0", "1", "-1", "127", "128", "-4097", "70000", "-0", "01", "", "a", "b", "9223372036854775807"] {
            pool.push(s.as_bytes().to_vec());
        }
        for _ in 0..12 {
            let len = [3, 20, 70, 150][rng.below(4)];
            pool.push((0..len).map(|_| b'a' + rng.below(3) as u8).collect());
        }
        pool.push(vec![b'P'; PACKED_THRESHOLD + 5]);
        pool
    }

    #[test]
    fn random_operations_match_a_vecdeque_model() {
        for (seed, fill) in [(1u64, -2i64), (2, -1), (3, 1), (4, 2), (5, 3), (6, 7), (7, 0), (8, -5), (9, 16)] {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let pool = value_pool(&mut rng);
            let mut l = List::new();
            let mut model = VecDeque::new();
            for step in 0..4000 {
                random_op(&mut rng, &mut l, &mut model, fill, &pool);
                check(&l);
                assert_eq!(l.len(), model.len(), "seed {seed} step {step}");
                if step % 50 == 0 {
                    assert_eq!(contents(&l), model.iter().cloned().collect::<Vec<_>>(), "seed {seed} step {step}");
                }
            }
        }
    }
}
