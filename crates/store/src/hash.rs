//! The hash value type, plus the compact building blocks it shares with the set type.
//!
//! A hash has Redis 7.2's two encodings, converting one way exactly when Redis does:
//!
//! * `listpack` ([`Pack`]): fields and values alternate in one exact-size byte buffer. Each
//!   item is encoded like a Redis listpack entry (canonical integers as 1-9 byte integers,
//!   strings with a 1, 2 or 5 byte length) minus the back-length byte, which only serves
//!   reverse walks. Lookups are linear, as in Redis; small hashes never hold more than
//!   `hash-max-listpack-entries` pairs of `hash-max-listpack-value` bytes.
//! * `hashtable` ([`Table`]): an open-addressing table (linear probing, 7/8 maximum load,
//!   backward-shift deletion, no tombstones) of one 8-byte word per slot: a thin pointer to
//!   the element with a 7-bit hash tag in its unused top bits, so a probe reads tag and
//!   pointer in one access. Each pointer owns one exact-size allocation holding the field and
//!   value with varint lengths ([`Blob`]). That is one allocation per element and 8-16 bytes
//!   of table per element, against Redis's three allocations (dictEntry and two sds strings)
//!   plus 8-16 bytes of buckets; a lookup touches the slot and the element (Redis: bucket,
//!   dictEntry, key).
//!
//! The table keeps Redis's SCAN guarantee: an element present from the first call to the last
//! is returned at least once. A cursor names a home slot (`hash & mask`) and one step returns
//! exactly the elements whose home slot it is (linear probing keeps them in the run of full
//! slots starting there), so the reverse-binary cursor of Redis's `dictScan` works unchanged
//! across growth and shrinking.
//!
//! Invariants: a pack's header counts its items (or says 65,535+); every non-zero table slot
//! owns its blob, and its tag is the top 7 bits of the hash of the blob's first part; no empty
//! slot lies between an element's home slot and its slot; `Table::blob_bytes` is the sum of
//! the allocator sizes of the blobs.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::marker::PhantomData;
use std::ptr::NonNull;

// ---------------------------------------------------------------------------------------------
// Small shared helpers

/// The allocator's size for a request of `n` bytes (jemalloc's size classes: 8, then steps of
/// 16 up to 128, then four classes per power of two).
pub fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => (n + 15) & !15,
        _ => {
            let lg = usize::BITS - 1 - (n - 1).leading_zeros();
            let spacing = 1usize << (lg - 2);
            (n + spacing - 1) & !(spacing - 1)
        }
    }
}

/// Parses a canonical decimal `i64` as Redis's `string2ll` (no sign but `-`, no leading zeros,
/// no `-0`, no spaces): exactly the strings Redis stores as integers.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ if digits.len() > 19 => return None,
        _ => {}
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if neg {
        (v <= i64::MAX as u64 + 1).then(|| (v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// `v` in decimal, written at the end of `buf`; returns the used tail.
pub fn format_int(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Length of `v` in decimal, sign included (Redis's `sdigits10`).
pub fn int_len(v: i64) -> usize {
    format_int(v, &mut [0; 20]).len()
}

/// One element as stored: a string, or an integer kept in binary (compact encodings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Item<'_> {
    /// The element's bytes (integers in decimal).
    pub fn to_vec(&self) -> Vec<u8> {
        match *self {
            Item::Str(s) => s.to_vec(),
            Item::Int(v) => format_int(v, &mut [0; 20]).to_vec(),
        }
    }

    /// Length of the element's bytes.
    pub fn len(&self) -> usize {
        match *self {
            Item::Str(s) => s.len(),
            Item::Int(v) => int_len(v),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` on the element's bytes without allocating.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Item::Str(s) => f(s),
            Item::Int(v) => f(format_int(v, &mut [0; 20])),
        }
    }

    /// The element as an integer, if its bytes are a canonical integer.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Item::Str(s) => parse_int(s),
            Item::Int(v) => Some(v),
        }
    }
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut [u8], mut v: usize) -> usize {
    let mut i = 0;
    loop {
        let more = v >= 0x80;
        out[i] = (v as u8 & 0x7f) | if more { 0x80 } else { 0 };
        i += 1;
        v >>= 7;
        if !more {
            return i;
        }
    }
}

/// A random index below `n` (0 when `n` is 0), from [`crate::random_u64`].
pub(crate) fn random_below(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (crate::random_u64() % n as u64) as usize
}

// ---------------------------------------------------------------------------------------------
// Pack: the listpack-like encoding

/// Largest string a pack holds (its 5-byte length form).
const PACK_MAX_STR: usize = u32::MAX as usize;
/// Redis's `LISTPACK_MAX_SAFETY_SIZE`: a pack never grows beyond 1 GiB.
pub const PACK_SAFETY_SIZE: usize = 1 << 30;

/// The encoded length of an integer item.
fn int_entry_len(v: i64) -> usize {
    match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        _ if i32::try_from(v).is_ok() => 5,
        _ => 9,
    }
}

/// The encoded length of a string item.
fn str_entry_len(len: usize) -> usize {
    match len {
        0..=63 => 1 + len,
        64..=4095 => 2 + len,
        _ => 5 + len,
    }
}

fn encode_int(out: &mut Vec<u8>, v: i64) {
    match int_entry_len(v) {
        1 => out.push(v as u8),
        2 => out.extend_from_slice(&[0xC0 | ((v >> 8) as u8 & 0x1F), v as u8]),
        3 => {
            out.push(0xF1);
            out.extend_from_slice(&(v as i16).to_le_bytes());
        }
        4 => {
            out.push(0xF2);
            out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        5 => {
            out.push(0xF3);
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
        _ => {
            out.push(0xF4);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    match s.len() {
        0..=63 => out.push(0x80 | s.len() as u8),
        64..=4095 => out.extend_from_slice(&[0xE0 | (s.len() >> 8) as u8, s.len() as u8]),
        n => {
            out.push(0xF0);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    }
    out.extend_from_slice(s);
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Decodes the item at `off`: the item and the offset of the next one. `None` past the end
/// (or on bytes this module never writes).
fn decode(buf: &[u8], off: usize) -> Option<(Item<'_>, usize)> {
    let b = *buf.get(off)?;
    let le = |n: usize| -> Option<u64> {
        let bytes = buf.get(off + 1..off + 1 + n)?;
        Some(bytes.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    };
    let string = |start: usize, len: usize| Some((Item::Str(buf.get(start..start + len)?), start + len));
    match b {
        0x00..=0x7F => Some((Item::Int(b as i64), off + 1)),
        0x80..=0xBF => string(off + 1, (b & 0x3F) as usize),
        0xC0..=0xDF => {
            let v = (((b & 0x1F) as u64) << 8) | *buf.get(off + 1)? as u64;
            Some((Item::Int(sign_extend(v, 13)), off + 2))
        }
        0xE0..=0xEF => string(off + 2, (((b & 0x0F) as usize) << 8) | *buf.get(off + 1)? as usize),
        0xF0 => string(off + 5, le(4)? as usize),
        0xF1 => Some((Item::Int(sign_extend(le(2)?, 16)), off + 3)),
        0xF2 => Some((Item::Int(sign_extend(le(3)?, 24)), off + 4)),
        0xF3 => Some((Item::Int(sign_extend(le(4)?, 32)), off + 5)),
        0xF4 => Some((Item::Int(le(8)? as i64), off + 9)),
        _ => None,
    }
}

/// What a pack search compares against: canonical integers are stored as integers.
#[derive(Clone, Copy)]
enum Needle<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl<'a> Needle<'a> {
    fn of(s: &'a [u8]) -> Self {
        match parse_int(s) {
            Some(v) => Needle::Int(v),
            None => Needle::Str(s),
        }
    }

    fn matches(self, item: Item<'_>) -> bool {
        match (self, item) {
            (Needle::Int(a), Item::Int(b)) => a == b,
            (Needle::Str(a), Item::Str(b)) => a == b,
            _ => false,
        }
    }
}

/// Iterator over a pack's items with their offsets.
pub struct PackIter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = (usize, Item<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (item, next) = decode(self.buf, self.off)?;
        let at = self.off;
        self.off = next;
        Some((at, item))
    }
}

/// Bytes of the item-count header that starts a non-empty pack.
const HDR: usize = 2;
/// Header value meaning "65,535 items or more: count them" (as Redis's listpack header).
const MANY: u16 = u16::MAX;

/// A packed list of items in one exact-size allocation: `[count: u16 LE][items...]`, or no
/// allocation at all when empty. See the module docs. Every change reallocates to the exact
/// new size, as Redis does with listpacks (the allocator resizes in place within a size class).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pack {
    buf: Box<[u8]>,
}

impl Pack {
    fn header(&self) -> u16 {
        match *self.buf {
            [a, b, ..] => u16::from_le_bytes([a, b]),
            _ => 0,
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match self.header() {
            MANY => self.iter().count(),
            n => n as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() <= HDR
    }

    /// Encoded bytes.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        alloc_size(self.buf.len())
    }

    /// Whether `add` more bytes keep the pack under Redis's safety limit (`lpSafeToAdd`).
    pub fn safe_to_add(&self, add: usize) -> bool {
        self.buf.len().saturating_add(add) <= PACK_SAFETY_SIZE
    }

    /// Items with their offsets, in order.
    pub fn iter(&self) -> PackIter<'_> {
        PackIter { buf: &self.buf, off: HDR.min(self.buf.len()) }
    }

    /// The item at `off` (an offset from [`Pack::iter`]) and the next offset.
    pub fn at(&self, off: usize) -> Option<(Item<'_>, usize)> {
        decode(&self.buf, off)
    }

    /// Applies `edit` to the bytes (header included; created when the pack was empty, with
    /// room for `reserve` more bytes), then stores the count, `delta` items more than before.
    fn edit(&mut self, delta: isize, reserve: usize, edit: impl FnOnce(&mut Vec<u8>)) {
        let n = self.len().saturating_add_signed(delta);
        let mut v = std::mem::take(&mut self.buf).into_vec();
        if v.is_empty() {
            v.reserve_exact(HDR + reserve);
            v.extend_from_slice(&[0; HDR]);
        } else {
            v.reserve_exact(reserve);
        }
        edit(&mut v);
        if n == 0 || v.len() <= HDR {
            return;
        }
        let h = u16::try_from(n).unwrap_or(MANY);
        v[..HDR].copy_from_slice(&h.to_le_bytes());
        self.buf = v.into_boxed_slice();
    }

    /// Appends a string item (stored as an integer when it is a canonical one).
    pub fn push(&mut self, s: &[u8]) {
        match parse_int(s) {
            Some(v) => self.push_int(v),
            None => self.edit(1, str_entry_len(s.len()), |v| encode_str(v, s)),
        }
    }

    /// Appends an integer item.
    pub fn push_int(&mut self, v: i64) {
        self.edit(1, int_entry_len(v), |buf| encode_int(buf, v));
    }

    /// Appends an item as it was read from another pack.
    pub fn push_item(&mut self, item: Item<'_>) {
        match item {
            Item::Int(v) => self.push_int(v),
            Item::Str(s) => self.push(s),
        }
    }

    /// Offset of the first item equal to `s` among items `0, step, 2*step...` (a hash's
    /// fields use step 2).
    pub fn find(&self, s: &[u8], step: usize) -> Option<usize> {
        let needle = Needle::of(s);
        self.iter().step_by(step.max(1)).find(|&(_, item)| needle.matches(item)).map(|(off, _)| off)
    }

    /// Removes `items` consecutive items starting at `off`.
    pub fn remove_at(&mut self, off: usize, items: usize) {
        let mut end = off;
        for _ in 0..items {
            match decode(&self.buf, end) {
                Some((_, next)) => end = next,
                None => return,
            }
        }
        self.edit(-(items as isize), 0, |v| {
            v.drain(off..end);
        });
    }

    /// Removes the items at the given offsets (ascending), in one pass.
    pub fn remove_many(&mut self, offsets: &[usize]) {
        let mut out = Vec::with_capacity(self.buf.len());
        out.extend_from_slice(&[0; HDR]);
        let mut doomed = offsets.iter().peekable();
        let mut kept = 0usize;
        for (off, item) in self.iter() {
            if doomed.peek() == Some(&&off) {
                doomed.next();
                continue;
            }
            kept += 1;
            match item {
                Item::Int(v) => encode_int(&mut out, v),
                Item::Str(s) => encode_str(&mut out, s),
            }
        }
        self.buf = Box::default();
        if kept > 0 {
            out[..HDR].copy_from_slice(&u16::try_from(kept).unwrap_or(MANY).to_le_bytes());
            self.buf = out.into_boxed_slice();
        }
    }

    /// Replaces the item at `off` with `s`.
    pub fn replace_at(&mut self, off: usize, s: &[u8]) {
        let Some((_, end)) = decode(&self.buf, off) else { return };
        let mut enc = Vec::with_capacity(str_entry_len(s.len()));
        match parse_int(s) {
            Some(v) => encode_int(&mut enc, v),
            None => encode_str(&mut enc, s),
        }
        let grow = enc.len().saturating_sub(end - off);
        self.edit(0, grow, |v| {
            v.splice(off..end, enc);
        });
    }

    /// Picks `count` distinct item indexes among `0..n` in ascending order (selection
    /// sampling, Knuth's algorithm S): a random subset in its stored order, as Redis's
    /// `lpRandomPairsUnique` / `lpNextRandom` give.
    pub fn sample_indexes(n: usize, count: usize) -> Vec<usize> {
        let mut picked = Vec::with_capacity(count.min(n));
        let mut needed = count.min(n);
        for i in 0..n {
            if needed == 0 {
                break;
            }
            if random_below(n - i) < needed {
                picked.push(i);
                needed -= 1;
            }
        }
        picked
    }
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|(_, i)| i)).finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Blob: one table element in one allocation

/// An owned thin pointer to `N` length-prefixed byte strings in one exact-size allocation:
/// `[varint len][bytes]` × N. Sets use one part (the member), hashes two (field, value).
pub struct Blob<const N: usize> {
    ptr: NonNull<u8>,
}

// SAFETY: a Blob exclusively owns its allocation, which holds plain bytes.
unsafe impl<const N: usize> Send for Blob<N> {}
// SAFETY: shared access only reads the bytes.
unsafe impl<const N: usize> Sync for Blob<N> {}

/// A borrowed view of a [`Blob`] (also of one a [`Table`] holds as a tagged pointer).
#[derive(Clone, Copy)]
pub struct BlobRef<'a, const N: usize> {
    ptr: NonNull<u8>,
    _borrow: PhantomData<&'a [u8]>,
}

fn blob_layout(size: usize) -> Layout {
    Layout::from_size_align(size, 1).unwrap_or_else(|_| handle_alloc_error(Layout::new::<u8>()))
}

impl<const N: usize> Blob<N> {
    /// Packs the parts into a new allocation.
    pub fn new(parts: [&[u8]; N]) -> Self {
        let size: usize = parts.iter().map(|p| varint_len(p.len()) + p.len()).sum();
        let layout = blob_layout(size);
        // SAFETY: N >= 1 and each part takes at least one byte, so the layout is non-zero.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else { handle_alloc_error(layout) };
        // SAFETY: the allocation is `size` bytes, and nothing else refers to it yet.
        let out = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), size) };
        let mut off = 0;
        for p in parts {
            off += put_varint(&mut out[off..], p.len());
            out[off..off + p.len()].copy_from_slice(p);
            off += p.len();
        }
        Blob { ptr }
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> BlobRef<'_, N> {
        BlobRef { ptr: self.ptr, _borrow: PhantomData }
    }

    /// Bytes of the allocation.
    pub fn size(&self) -> usize {
        self.as_ref().size()
    }

    /// Part `i` (0-based; `i < N`, else empty).
    pub fn part(&self, i: usize) -> &[u8] {
        self.as_ref().part(i)
    }

    /// The first part: the member or field, which the table hashes.
    pub fn key(&self) -> &[u8] {
        self.part(0)
    }

    /// Gives up ownership: the address, to be turned back with [`Blob::from_addr`].
    fn into_addr(self) -> usize {
        let addr = self.ptr.as_ptr().expose_provenance();
        debug_assert!(addr <= ADDR_MASK, "a heap address above 2^57");
        std::mem::forget(self);
        addr
    }

    /// Takes back ownership of a blob given up with [`Blob::into_addr`].
    ///
    /// # Safety
    /// `addr` must come from `into_addr` and be taken back at most once.
    unsafe fn from_addr(addr: usize) -> Self {
        let ptr = std::ptr::with_exposed_provenance_mut::<u8>(addr);
        // SAFETY: per the contract, `addr` is a live blob allocation, so non-null.
        Blob { ptr: unsafe { NonNull::new_unchecked(ptr) } }
    }
}

impl<'a, const N: usize> BlobRef<'a, N> {
    /// Reads the varint at byte `off` of the allocation: (value, bytes it takes).
    ///
    /// # Safety
    /// `off` must be the offset of one of the length varints written by [`Blob::new`].
    unsafe fn varint_at(self, off: usize) -> (usize, usize) {
        let (mut v, mut i) = (0usize, 0);
        loop {
            // SAFETY: the caller gives the offset of a complete varint inside the allocation.
            let b = unsafe { self.ptr.as_ptr().add(off + i).read() };
            v |= ((b & 0x7f) as usize) << (7 * i);
            i += 1;
            if b & 0x80 == 0 {
                return (v, i);
            }
        }
    }

    /// (offset, length) of part `i` (`i <= N`; `i == N` gives the end of the allocation).
    fn span(self, i: usize) -> (usize, usize) {
        let mut off = 0;
        for _ in 0..i.min(N) {
            // SAFETY: `off` walks the length varints of the parts written by `new`, in order.
            let (len, n) = unsafe { self.varint_at(off) };
            off += n + len;
        }
        if i >= N {
            return (off, 0);
        }
        // SAFETY: as above, `off` is the start of part `i`'s length varint.
        let (len, n) = unsafe { self.varint_at(off) };
        (off + n, len)
    }

    /// Bytes of the allocation.
    pub fn size(self) -> usize {
        self.span(N).0
    }

    /// Part `i` (0-based; `i < N`, else empty).
    pub fn part(self, i: usize) -> &'a [u8] {
        if i >= N {
            return &[];
        }
        let (off, len) = self.span(i);
        // SAFETY: the part's bytes lie inside the allocation and were initialised by `new`;
        // the allocation outlives 'a (it is borrowed from its owner for 'a).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) }
    }

    /// The first part: the member or field, which the table hashes.
    pub fn key(self) -> &'a [u8] {
        self.part(0)
    }

    /// The blob's address (stable for the blob's life: tables move words, never blobs).
    pub(crate) fn addr(self) -> NonNull<u8> {
        self.ptr
    }

    /// A view of the blob at `ptr`.
    ///
    /// # Safety
    /// `ptr` must be the address of a live `Blob<N>` that stays alive and unmodified for 'a.
    pub(crate) unsafe fn from_addr(ptr: NonNull<u8>) -> Self {
        BlobRef { ptr, _borrow: PhantomData }
    }
}

impl<const N: usize> Drop for Blob<N> {
    fn drop(&mut self) {
        let layout = blob_layout(self.size());
        // SAFETY: allocated in `new` with exactly this layout; dropped once.
        unsafe { dealloc(self.ptr.as_ptr(), layout) };
    }
}

impl<const N: usize> Clone for Blob<N> {
    fn clone(&self) -> Self {
        self.as_ref().to_blob()
    }
}

impl<const N: usize> BlobRef<'_, N> {
    /// An owned copy.
    pub fn to_blob(self) -> Blob<N> {
        let mut parts: [&[u8]; N] = [&[]; N];
        for (i, p) in parts.iter_mut().enumerate() {
            *p = self.part(i);
        }
        Blob::new(parts)
    }
}

impl<const N: usize> std::fmt::Debug for BlobRef<'_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        for i in 0..N {
            l.entry(&self.part(i).escape_ascii().to_string());
        }
        l.finish()
    }
}

impl<const N: usize> std::fmt::Debug for Blob<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_ref().fmt(f)
    }
}

// ---------------------------------------------------------------------------------------------
// Table: the hashtable encoding

/// Tags live in the top 7 bits of a slot word: user-space addresses stay below 2^57 on every
/// 64-bit platform Linux supports (even with 5-level paging, user space ends at 2^56).
const TAG_SHIFT: u32 = 57;
const ADDR_MASK: usize = (1 << TAG_SHIFT) - 1;
const _: () = assert!(usize::BITS == 64, "table slots pack a tag above a 57-bit address");
const MIN_CAP: usize = 8;

fn tag_of(hash: u64) -> usize {
    (hash >> TAG_SHIFT) as usize
}

/// Advances a reverse-binary cursor over `mask + 1` slots (Redis's `dictScan` order).
fn next_cursor(cursor: u64, mask: u64) -> u64 {
    let v = cursor | !mask;
    v.reverse_bits().wrapping_add(1).reverse_bits()
}

/// Whether `x` lies in the cyclic interval `(lo, hi]`.
fn in_cyclic(x: usize, lo: usize, hi: usize) -> bool {
    if lo <= hi {
        lo < x && x <= hi
    } else {
        lo < x || x <= hi
    }
}

/// An open-addressing hash table of [`Blob`]s keyed by their first part. See the module docs.
///
/// Each slot is one word: 0 when empty, else an owned blob's address with a 7-bit hash tag in
/// the top bits, so a probe reads the tag and the pointer with one memory access.
pub struct Table<const N: usize> {
    slots: Box<[usize]>,
    len: usize,
    blob_bytes: usize,
}

impl<const N: usize> Table<N> {
    /// A table sized for `n` elements without growing.
    pub fn with_capacity(n: usize) -> Self {
        Table { slots: vec![0; Self::cap_for(n)].into_boxed_slice(), len: 0, blob_bytes: 0 }
    }

    /// The smallest power-of-two capacity holding `n` elements at the maximum load (7/8).
    fn cap_for(n: usize) -> usize {
        let mut cap = MIN_CAP;
        while n.saturating_mul(8) > cap * 7 {
            cap *= 2;
        }
        cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Heap bytes held: the table itself (boxed), its slots and the blobs.
    pub fn heap_size(&self) -> usize {
        alloc_size(std::mem::size_of::<Self>()) + alloc_size(self.slots.len() * 8) + self.blob_bytes
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The blob a slot word points to (borrowed for as long as the caller borrows the table).
    fn view<'a>(word: usize) -> Option<BlobRef<'a, N>> {
        let ptr = NonNull::new(std::ptr::with_exposed_provenance_mut::<u8>(word & ADDR_MASK))?;
        Some(BlobRef { ptr, _borrow: PhantomData })
    }

    /// The element at slot `i`, if any.
    pub fn slot(&self, i: usize) -> Option<BlobRef<'_, N>> {
        self.slots.get(i).and_then(|&w| Self::view(w))
    }

    fn home(&self, key: &[u8]) -> usize {
        crate::hash_key(key) as usize & self.mask()
    }

    /// The slot holding `key`, if present.
    fn find(&self, key: &[u8]) -> Option<usize> {
        let hash = crate::hash_key(key);
        let (tag, mask) = (tag_of(hash), self.mask());
        let mut i = hash as usize & mask;
        loop {
            let w = self.slots[i];
            if w == 0 {
                return None;
            }
            if w >> TAG_SHIFT == tag && Self::view(w).is_some_and(|b| b.key() == key) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The element whose key is `key`.
    pub fn get(&self, key: &[u8]) -> Option<BlobRef<'_, N>> {
        self.find(key).and_then(|i| self.slot(i))
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.find(key).is_some()
    }

    /// Inserts `blob`, replacing an element with the same key. Returns true if it was new.
    pub fn insert(&mut self, blob: Blob<N>) -> bool {
        let Some(i) = self.find(blob.key()) else {
            self.insert_new(blob);
            return true;
        };
        self.blob_bytes += alloc_size(blob.size());
        let tag = self.slots[i] & !ADDR_MASK;
        let old = std::mem::replace(&mut self.slots[i], tag | blob.into_addr());
        // SAFETY: `old` was an occupied slot, owned by this table, and is now forgotten by it.
        let old = unsafe { Blob::<N>::from_addr(old & ADDR_MASK) };
        self.blob_bytes -= alloc_size(old.size());
        false
    }

    /// Inserts a blob whose key is absent (the caller checked).
    pub fn insert_new(&mut self, blob: Blob<N>) {
        if (self.len + 1) * 8 > self.capacity() * 7 {
            self.resize(self.capacity() * 2);
        }
        self.blob_bytes += alloc_size(blob.size());
        let hash = crate::hash_key(blob.key());
        self.place(hash, (tag_of(hash) << TAG_SHIFT) | blob.into_addr());
        self.len += 1;
    }

    /// Puts a slot word in the first empty slot from its home.
    fn place(&mut self, hash: u64, word: usize) {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = word;
    }

    /// Rehashes every element into `cap` slots.
    fn resize(&mut self, cap: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; cap].into_boxed_slice());
        for w in old.iter().copied().filter(|&w| w != 0) {
            let hash = Self::view(w).map_or(0, |b| crate::hash_key(b.key()));
            self.place(hash, w);
        }
    }

    /// Overwrites part `i` of the element whose key is `key` with `bytes`, which must be as
    /// long as the part (so the blob keeps its size and address). False if the key is absent
    /// or the lengths differ.
    pub fn overwrite_part(&mut self, key: &[u8], i: usize, bytes: &[u8]) -> bool {
        let Some(blob) = self.find(key).and_then(|s| Self::view(self.slots[s])) else { return false };
        if i >= N || i == 0 {
            return false;
        }
        let (off, len) = blob.span(i);
        if len != bytes.len() {
            return false;
        }
        // SAFETY: the table owns the blob and is borrowed mutably, so no view of it is alive;
        // the part lies inside the allocation; the lengths match, so the layout is unchanged.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), blob.ptr.as_ptr().add(off), len) };
        true
    }

    /// Removes and returns the element whose key is `key`.
    pub fn remove(&mut self, key: &[u8]) -> Option<Blob<N>> {
        let i = self.find(key)?;
        self.remove_slot(i)
    }

    /// Removes and returns the element at slot `i`.
    pub fn remove_slot(&mut self, i: usize) -> Option<Blob<N>> {
        let blob = self.take_at(i);
        self.maybe_shrink();
        blob
    }

    /// Empties slot `i` and shifts the rest of its run back (no tombstones).
    fn take_at(&mut self, mut i: usize) -> Option<Blob<N>> {
        let w = std::mem::take(self.slots.get_mut(i)?);
        if w == 0 {
            return None;
        }
        // SAFETY: the slot was occupied, and the table no longer refers to the blob.
        let blob = unsafe { Blob::<N>::from_addr(w & ADDR_MASK) };
        self.len -= 1;
        self.blob_bytes -= alloc_size(blob.size());
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let Some(moving) = Self::view(self.slots[j]) else { break };
            if in_cyclic(self.home(moving.key()), i, j) {
                continue;
            }
            self.slots[i] = std::mem::take(&mut self.slots[j]);
            i = j;
        }
        Some(blob)
    }

    /// Shrinks below 1/8 load (Redis shrinks its dicts below 10%).
    fn maybe_shrink(&mut self) {
        if self.capacity() > MIN_CAP && self.len * 8 < self.capacity() {
            self.resize(Self::cap_for(self.len * 2));
        }
    }

    /// Every element, in slot order.
    pub fn iter(&self) -> TableIter<'_, N> {
        TableIter { slots: self.slots.iter(), _n: PhantomData }
    }

    /// Indexes of the occupied slots.
    pub fn occupied(&self) -> Vec<usize> {
        (0..self.capacity()).filter(|&i| self.slots[i] != 0).collect()
    }

    /// A uniformly random occupied slot (`None` when empty).
    pub fn random_slot(&self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        for _ in 0..64 {
            let i = random_below(self.capacity());
            if self.slots[i] != 0 {
                return Some(i);
            }
        }
        let start = random_below(self.capacity());
        (0..self.capacity()).map(|k| (start + k) & self.mask()).find(|&i| self.slots[i] != 0)
    }

    /// A uniformly random element.
    pub fn random(&self) -> Option<BlobRef<'_, N>> {
        self.random_slot().and_then(|i| self.slot(i))
    }

    /// One SCAN step: visits every element whose home slot is `cursor & mask` and returns the
    /// next cursor (0 when the walk is complete).
    pub fn scan_step<'a>(&'a self, cursor: u64, mut visit: impl FnMut(BlobRef<'a, N>)) -> u64 {
        let mask = self.mask();
        let home = cursor as usize & mask;
        let mut i = home;
        while let Some(blob) = self.slot(i) {
            if self.home(blob.key()) == home {
                visit(blob);
            }
            i = (i + 1) & mask;
            if i == home {
                break;
            }
        }
        next_cursor(cursor, mask as u64)
    }
}

/// Iterator over a table's elements, in slot order.
pub struct TableIter<'a, const N: usize> {
    slots: std::slice::Iter<'a, usize>,
    _n: PhantomData<[u8; N]>,
}

impl<'a, const N: usize> Iterator for TableIter<'a, N> {
    type Item = BlobRef<'a, N>;

    fn next(&mut self) -> Option<BlobRef<'a, N>> {
        self.slots.find_map(|&w| Table::<N>::view(w))
    }
}

impl<const N: usize> Drop for Table<N> {
    fn drop(&mut self) {
        for w in self.slots.iter_mut().map(std::mem::take).filter(|&w| w != 0) {
            // SAFETY: every occupied slot owns its blob; the slot is cleared before the drop.
            drop(unsafe { Blob::<N>::from_addr(w & ADDR_MASK) });
        }
    }
}

impl<const N: usize> Clone for Table<N> {
    fn clone(&self) -> Self {
        let slots = self
            .slots
            .iter()
            .map(|&w| Self::view(w).map_or(0, |b| (w & !ADDR_MASK) | b.to_blob().into_addr()))
            .collect();
        Table { slots, len: self.len, blob_bytes: self.blob_bytes }
    }
}

impl<const N: usize> PartialEq for Table<N> {
    /// Same elements (all parts equal), whatever the layout.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self.iter().all(|b| other.get(b.key()).is_some_and(|o| (0..N).all(|i| o.part(i) == b.part(i))))
    }
}

impl<const N: usize> std::fmt::Debug for Table<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Hash

/// The listpack thresholds (`hash-max-listpack-entries`, `hash-max-listpack-value`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits { max_entries: 128, max_value: 64 }
    }
}

impl HashLimits {
    fn fits(&self, len: usize) -> bool {
        len <= self.max_value && len < PACK_MAX_STR
    }
}

#[derive(Clone, Debug, PartialEq)]
enum HashRepr {
    Pack(Pack),
    Table(Box<Table<2>>),
}

/// A Redis hash. See the module docs for its encodings.
#[derive(Clone, Debug, PartialEq)]
pub struct Hash {
    repr: HashRepr,
}

impl Default for Hash {
    fn default() -> Self {
        Hash { repr: HashRepr::Pack(Pack::default()) }
    }
}

/// Iterator over a hash's (field, value) pairs.
pub enum HashIter<'a> {
    Pack(PackIter<'a>),
    Table(TableIter<'a, 2>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (Item<'a>, Item<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Pack(it) => Some((it.next()?.1, it.next()?.1)),
            HashIter::Table(it) => it.next().map(|b| (Item::Str(b.part(0)), Item::Str(b.part(1)))),
        }
    }
}

impl Hash {
    /// An empty hash (listpack).
    pub fn new() -> Self {
        Hash::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.repr {
            HashRepr::Pack(p) => p.len() / 2,
            HashRepr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            HashRepr::Pack(p) => p.heap_size(),
            HashRepr::Table(t) => t.heap_size(),
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            HashRepr::Pack(_) => "listpack",
            HashRepr::Table(_) => "hashtable",
        }
    }

    /// Whether the hash uses the listpack encoding.
    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, HashRepr::Pack(_))
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<Item<'_>> {
        match &self.repr {
            HashRepr::Pack(p) => {
                p.find(field, 2).and_then(|off| p.at(off)).and_then(|(_, next)| p.at(next)).map(|v| v.0)
            }
            HashRepr::Table(t) => t.get(field).map(|b| Item::Str(b.part(1))),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        match &self.repr {
            HashRepr::Pack(p) => p.find(field, 2).is_some(),
            HashRepr::Table(t) => t.contains(field),
        }
    }

    /// Converts to the hashtable encoding, sized for `cap` fields (no-op if already one).
    pub fn convert_to_table(&mut self, cap: usize) {
        let HashRepr::Pack(p) = &self.repr else { return };
        let mut t = Table::with_capacity(cap.max(p.len() / 2));
        let mut it = p.iter().map(|(_, i)| i);
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            f.with_bytes(|f| v.with_bytes(|v| t.insert(Blob::new([f, v]))));
        }
        self.repr = HashRepr::Table(Box::new(t));
    }

    /// Redis's `hashTypeTryConversion` before HSET/HMSET/HSETNX writes `pairs` pairs whose
    /// argument lengths are `lens`: converts a listpack when more pairs than it may hold are
    /// coming, when an argument is too long for it, or when it would pass the safety size.
    pub fn prepare(&mut self, pairs: usize, lens: impl Iterator<Item = usize>, lim: HashLimits) {
        let HashRepr::Pack(p) = &self.repr else { return };
        if pairs > lim.max_entries {
            return self.convert_to_table(pairs);
        }
        let mut sum = 0usize;
        for len in lens {
            if !lim.fits(len) {
                return self.convert_to_table(0);
            }
            sum = sum.saturating_add(len);
        }
        if !p.safe_to_add(sum) {
            self.convert_to_table(0);
        }
    }

    /// Sets `field` to `value` (Redis's `hashTypeSet`); returns true if the field is new.
    /// Converts to a hashtable when either is too long for a listpack, or when the listpack
    /// would pass `max_entries` fields.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: HashLimits) -> bool {
        if self.is_listpack() && !(lim.fits(field.len()) && lim.fits(value.len())) {
            self.convert_to_table(self.len() + 1);
        }
        match &mut self.repr {
            HashRepr::Pack(p) => {
                if let Some(off) = p.find(field, 2) {
                    if let Some((_, voff)) = p.at(off) {
                        p.replace_at(voff, value);
                    }
                    return false;
                }
                p.push(field);
                p.push(value);
                if p.len() / 2 > lim.max_entries {
                    self.convert_to_table(0);
                }
                true
            }
            HashRepr::Table(t) => t.insert(Blob::new([field, value])),
        }
    }

    /// Removes `field`; returns whether it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            HashRepr::Pack(p) => match p.find(field, 2) {
                Some(off) => {
                    p.remove_at(off, 2);
                    true
                }
                None => false,
            },
            HashRepr::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Every (field, value) pair: listpack order, or table order.
    pub fn iter(&self) -> HashIter<'_> {
        match &self.repr {
            HashRepr::Pack(p) => HashIter::Pack(p.iter()),
            HashRepr::Table(t) => HashIter::Table(t.iter()),
        }
    }

    /// One HSCAN step. A listpack returns every pair and cursor 0, as Redis does.
    pub fn scan<'a>(&'a self, cursor: u64, mut visit: impl FnMut(Item<'a>, Item<'a>)) -> u64 {
        match &self.repr {
            HashRepr::Pack(_) => {
                self.iter().for_each(|(f, v)| visit(f, v));
                0
            }
            HashRepr::Table(t) => t.scan_step(cursor, |b| visit(Item::Str(b.part(0)), Item::Str(b.part(1)))),
        }
    }

    /// A uniformly random pair.
    pub fn random_pair(&self) -> Option<(Item<'_>, Item<'_>)> {
        match &self.repr {
            HashRepr::Pack(_) => self.iter().nth(random_below(self.len())),
            HashRepr::Table(t) => t.random().map(|b| (Item::Str(b.part(0)), Item::Str(b.part(1)))),
        }
    }

    /// Calls `f` on `count` random pairs, with repetition.
    pub fn random_pairs(&self, count: usize, mut f: impl FnMut(Item<'_>, Item<'_>)) {
        match &self.repr {
            HashRepr::Pack(_) => {
                let pairs: Vec<_> = self.iter().collect();
                if pairs.is_empty() {
                    return;
                }
                for _ in 0..count {
                    let (k, v) = pairs[random_below(pairs.len())];
                    f(k, v);
                }
            }
            HashRepr::Table(t) => {
                for _ in 0..count {
                    if let Some(b) = t.random() {
                        f(Item::Str(b.part(0)), Item::Str(b.part(1)));
                    }
                }
            }
        }
    }

    /// Calls `f` on `count` distinct random pairs (`count < len`): a listpack gives them in its
    /// order (as Redis's `lpRandomPairsUnique`), a table in random order.
    pub fn sample_unique(&self, count: usize, mut f: impl FnMut(Item<'_>, Item<'_>)) {
        match &self.repr {
            HashRepr::Pack(_) => {
                let pick = Pack::sample_indexes(self.len(), count);
                let mut next = pick.iter().peekable();
                for (i, (k, v)) in self.iter().enumerate() {
                    if next.peek() == Some(&&i) {
                        next.next();
                        f(k, v);
                    }
                }
            }
            HashRepr::Table(t) => {
                for i in sample_slots(t, count) {
                    if let Some(b) = t.slot(i) {
                        f(Item::Str(b.part(0)), Item::Str(b.part(1)));
                    }
                }
            }
        }
    }
}

/// `count` distinct occupied slots of `t` in random order: a partial shuffle when most of the
/// table is wanted, rejection sampling otherwise (Redis's SRANDMEMBER/HRANDFIELD cases 3, 4).
pub fn sample_slots<const N: usize>(t: &Table<N>, count: usize) -> Vec<usize> {
    let count = count.min(t.len());
    if count * 3 > t.len() {
        let mut all = t.occupied();
        for i in 0..count {
            let j = i + random_below(all.len() - i);
            all.swap(i, j);
        }
        all.truncate(count);
        return all;
    }
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        match t.random_slot() {
            Some(i) if seen.insert(i) => out.push(i),
            Some(_) => {}
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Deterministic xorshift for the property tests.
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

        fn bytes(&mut self) -> Vec<u8> {
            match self.below(6) {
                0 => (self.below(300) as i64 - 150).to_string().into_bytes(),
                1 => (self.next() as i64).to_string().into_bytes(),
                2 => vec![b'x'; self.below(100) as usize],
                3 => Vec::new(),
                _ => format!("f{}", self.below(400)).into_bytes(),
            }
        }
    }

    fn limits() -> HashLimits {
        HashLimits::default()
    }

    #[test]
    fn alloc_sizes_follow_jemalloc_classes() {
        let cases = [(0, 0), (1, 8), (8, 8), (9, 16), (24, 32), (128, 128), (129, 160), (257, 320), (4097, 5120)];
        for (n, want) in cases {
            assert_eq!(alloc_size(n), want, "{n}");
        }
    }

    #[test]
    fn parse_int_is_string2ll() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1a", b"00"] {
            assert_eq!(parse_int(bad), None, "{:?}", bad);
        }
        let mut buf = [0; 20];
        assert_eq!(format_int(i64::MIN, &mut buf), b"-9223372036854775808");
        assert_eq!(int_len(-10), 3);
    }

    #[test]
    fn pack_roundtrips_every_encoding() {
        let ints = [
            0,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            8_388_607,
            -8_388_608,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ];
        let mut p = Pack::default();
        for v in ints {
            p.push(v.to_string().as_bytes());
        }
        let long = vec![b'z'; 5000];
        let strs: [&[u8]; 5] = [b"", b"abc", &[b'q'; 63], &[b'r'; 64], &long];
        for s in strs {
            p.push(s);
        }
        let items: Vec<Item> = p.iter().map(|(_, i)| i).collect();
        assert_eq!(items.len(), ints.len() + strs.len());
        for (i, v) in ints.iter().enumerate() {
            assert_eq!(items[i], Item::Int(*v));
        }
        for (i, s) in strs.iter().enumerate() {
            assert_eq!(items[ints.len() + i], Item::Str(s));
        }
        assert_eq!(p.len(), items.len());
        assert!(p.find(b"4096", 1).is_some());
        assert!(p.find(b"04096", 1).is_none());
        assert!(p.find(&long, 1).is_some());
    }

    #[test]
    fn pack_replace_and_remove_keep_order() {
        let mut p = Pack::default();
        for s in [&b"a"[..], b"1", b"b", b"2", b"c", b"3"] {
            p.push(s);
        }
        let off = p.find(b"1", 1).unwrap();
        p.replace_at(off, &[b'x'; 100]);
        let off = p.find(b"b", 1).unwrap();
        p.remove_at(off, 2);
        let got: Vec<Vec<u8>> = p.iter().map(|(_, i)| i.to_vec()).collect();
        assert_eq!(got, vec![b"a".to_vec(), vec![b'x'; 100], b"c".to_vec(), b"3".to_vec()]);
        let offs: Vec<usize> = p.iter().map(|(o, _)| o).collect();
        p.remove_many(&[offs[0], offs[2]]);
        let got: Vec<Vec<u8>> = p.iter().map(|(_, i)| i.to_vec()).collect();
        assert_eq!(got, vec![vec![b'x'; 100], b"3".to_vec()]);
    }

    #[test]
    fn pack_counts_past_the_header_limit() {
        let mut p = Pack::default();
        assert!(p.is_empty() && p.heap_size() == 0);
        for i in 0..65_600 {
            p.push_int(i);
        }
        assert_eq!(p.len(), 65_600);
        for _ in 0..100 {
            let off = p.iter().next().map(|(o, _)| o).unwrap();
            p.remove_at(off, 1);
        }
        assert_eq!(p.len(), 65_500);
        assert_eq!(p.header(), 65_500);
        assert_eq!(p.iter().next().map(|(_, i)| i), Some(Item::Int(100)));
        let offs: Vec<usize> = p.iter().map(|(o, _)| o).collect();
        p.remove_many(&offs);
        assert!(p.is_empty() && p.heap_size() == 0);
    }

    #[test]
    fn blob_parts() {
        let long = vec![7u8; 300];
        let b = Blob::<2>::new([b"field", &long]);
        assert_eq!(b.key(), b"field");
        assert_eq!(b.part(1), &long[..]);
        assert_eq!(b.size(), 1 + 5 + 2 + 300);
        let c = b.clone();
        assert_eq!(c.part(1), &long[..]);
        let e = Blob::<1>::new([b""]);
        assert_eq!(e.key(), b"");
        assert_eq!(e.part(3), b"");
    }

    #[test]
    fn table_clones_are_deep_and_equal() {
        let mut t = Table::<2>::with_capacity(0);
        for i in 0..100 {
            t.insert(Blob::new([format!("k{i}").as_bytes(), b"v"]));
        }
        let mut c = t.clone();
        assert_eq!(c, t);
        c.insert(Blob::new([b"k1", b"changed"]));
        assert_ne!(c, t);
        assert_eq!(t.get(b"k1").map(|b| b.part(1)), Some(&b"v"[..]));
        assert_eq!(c.get(b"k1").map(|b| b.part(1)), Some(&b"changed"[..]));
        assert_eq!(c.heap_size(), t.heap_size() + alloc_size(11) - alloc_size(5));
    }

    #[test]
    fn table_matches_a_model() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut t = Table::<2>::with_capacity(0);
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for step in 0..20_000 {
            let k = format!("k{}", rng.below(3000)).into_bytes();
            match rng.below(3) {
                0 | 1 => {
                    let v = rng.bytes();
                    assert_eq!(t.insert(Blob::new([&k, &v])), model.insert(k, v).is_none());
                }
                _ => assert_eq!(t.remove(&k).is_some(), model.remove(&k).is_some()),
            }
            if step % 997 == 0 {
                check_table(&t, &model);
            }
        }
        check_table(&t, &model);
        for k in model.keys().cloned().collect::<Vec<_>>() {
            t.remove(&k);
        }
        assert!(t.is_empty());
        assert_eq!(t.capacity(), MIN_CAP);
        assert_eq!(t.blob_bytes, 0);
    }

    fn check_table(t: &Table<2>, model: &HashMap<Vec<u8>, Vec<u8>>) {
        assert_eq!(t.len(), model.len());
        for (k, v) in model {
            assert_eq!(t.get(k).map(|b| b.part(1)), Some(&v[..]));
        }
        let bytes: usize = t.iter().map(|b| alloc_size(b.size())).sum();
        assert_eq!(bytes, t.blob_bytes);
        assert!(t.len() * 8 <= t.capacity() * 7);
    }

    #[test]
    fn table_scan_returns_every_stable_element_across_resizes() {
        let mut rng = Rng(42);
        let mut t = Table::<1>::with_capacity(0);
        for i in 0..500 {
            t.insert(Blob::new([format!("stable{i}").as_bytes()]));
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = t.scan_step(cursor, |b| {
                seen.insert(b.key().to_vec());
            });
            round += 1;
            // Grow and shrink the table while the scan runs.
            if round % 7 == 0 {
                for j in 0..300 {
                    t.insert(Blob::new([format!("tmp{}-{j}", rng.next()).as_bytes()]));
                }
            }
            if round % 11 == 0 {
                let tmp: Vec<Vec<u8>> = t.iter().map(|b| b.key().to_vec()).filter(|k| k.starts_with(b"tmp")).collect();
                for k in tmp {
                    t.remove(&k);
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(seen.contains(format!("stable{i}").as_bytes()), "stable{i} missed");
        }
    }

    #[test]
    fn hash_matches_a_model_with_conversions() {
        let mut rng = Rng(7);
        let lim = HashLimits { max_entries: 16, max_value: 20 };
        for round in 0..40 {
            let mut h = Hash::new();
            let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut was_table = false;
            for _ in 0..400 {
                let f = if round % 2 == 0 { format!("f{}", rng.below(24)).into_bytes() } else { rng.bytes() };
                match rng.below(4) {
                    0..=1 => {
                        let v = rng.bytes();
                        assert_eq!(h.set(&f, &v, lim), model.insert(f.clone(), v.clone()).is_none());
                    }
                    2 => assert_eq!(h.remove(&f), model.remove(&f).is_some()),
                    _ => assert_eq!(h.get(&f).map(|i| i.to_vec()), model.get(&f).cloned()),
                }
                // Conversion is one way and happens exactly at the thresholds.
                if was_table {
                    assert_eq!(h.encoding(), "hashtable");
                }
                was_table = !h.is_listpack();
                if h.is_listpack() {
                    assert!(h.len() <= lim.max_entries);
                    assert!(h.iter().all(|(f, v)| f.len() <= lim.max_value && v.len() <= lim.max_value));
                }
                assert_eq!(h.len(), model.len());
            }
            let got: HashMap<Vec<u8>, Vec<u8>> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            assert_eq!(got, model);
        }
    }

    #[test]
    fn hash_converts_at_redis_thresholds() {
        let lim = limits();
        let mut h = Hash::new();
        for i in 0..128 {
            h.set(format!("f{i}").as_bytes(), b"v", lim);
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f0", b"again", lim);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f128", b"v", lim);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::new();
        h.set(b"a", &[b'v'; 64], lim);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"a", &[b'v'; 65], lim);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a").map(|i| i.len()), Some(65));
        let mut h = Hash::new();
        h.prepare(129, [1usize, 1].into_iter(), lim);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::new();
        h.prepare(1, [65usize, 1].into_iter(), lim);
        assert_eq!(h.encoding(), "hashtable");
    }

    #[test]
    fn hash_listpack_keeps_insertion_order() {
        let lim = limits();
        let mut h = Hash::new();
        for (f, v) in [("b", "1"), ("a", "2"), ("c", "x")] {
            h.set(f.as_bytes(), v.as_bytes(), lim);
        }
        h.set(b"a", b"updated", lim);
        h.remove(b"b");
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(pairs, vec![(b"a".to_vec(), b"updated".to_vec()), (b"c".to_vec(), b"x".to_vec())]);
    }

    #[test]
    fn heap_size_tracks_contents() {
        let lim = limits();
        let mut h = Hash::new();
        assert_eq!(h.heap_size(), 0);
        for i in 0..1000 {
            h.set(format!("field:{i}").as_bytes(), format!("value:{i}").as_bytes(), lim);
        }
        let per = h.heap_size() as f64 / 1000.0;
        assert!(per > 32.0 && per < 60.0, "{per} bytes per field");
        for i in 0..1000 {
            h.remove(format!("field:{i}").as_bytes());
        }
        assert!(h.heap_size() < 400);
    }

    #[test]
    fn sampling() {
        let lim = limits();
        let mut h = Hash::new();
        for i in 0..10 {
            h.set(format!("f{i}").as_bytes(), b"v", lim);
        }
        let mut got = Vec::new();
        h.sample_unique(4, |f, _| got.push(f.to_vec()));
        assert_eq!(got.len(), 4);
        let mut sorted = got.clone();
        sorted.sort_by_key(|f| f[1..].iter().fold(0, |a, d| a * 10 + (d - b'0') as u32));
        assert_eq!(got, sorted, "listpack samples keep listpack order");
        h.convert_to_table(0);
        let mut got = std::collections::HashSet::new();
        h.sample_unique(9, |f, _| {
            got.insert(f.to_vec());
        });
        assert_eq!(got.len(), 9);
        let mut n = 0;
        h.random_pairs(25, |_, _| n += 1);
        assert_eq!(n, 25);
    }
}
