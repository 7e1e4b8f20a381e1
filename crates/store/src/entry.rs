//! A key, its value and its metadata packed into one heap allocation.
//!
//! Layout (all multi-byte fields unaligned, little-endian):
//!
//! ```text
//! [meta: u32] [expire_at_ms: i64, only if HAS_EXPIRE] [key len: varint] [key bytes]
//! string:   [value len: varint] [value bytes]
//! object:   [*mut Object: 8 bytes]
//! ```
//!
//! `meta` holds the 24-bit access clock (LRU seconds or LFU counter and time), the value kind,
//! and flags. A 10-byte value under an 11-byte key takes 27 bytes (a 32-byte allocator class);
//! that is what keeps a small key under Redis's ~88 bytes.
//!
//! Invariants: the allocation size is always recomputable from the bytes (so no size is stored);
//! an object pointer comes from `Box::into_raw` and is owned by exactly one entry.

use std::alloc::{alloc, dealloc, Layout};
use std::ptr::NonNull;

use crate::object::Object;

const HAS_EXPIRE: u32 = 1 << 28;
const IS_OBJECT: u32 = 1 << 29;
/// A string that must not report the `int` encoding (e.g. an INCRBYFLOAT result).
const PLAIN: u32 = 1 << 30;
/// The snapshot mark (see [`crate::snapshot`]): compared with its database's current mark.
const SNAP_MARK: u32 = 1 << 31;
const CLOCK_MASK: u32 = (1 << 24) - 1;
const KIND_SHIFT: u32 = 24;

/// The 24-bit LRU clock (seconds) for a unix time in milliseconds.
pub fn lru_clock(now_ms: i64) -> u32 {
    ((now_ms / 1000) as u32) & CLOCK_MASK
}

/// Seconds elapsed between two 24-bit LRU clocks (handling one wrap-around).
pub fn lru_idle_secs(now: u32, then: u32) -> u64 {
    if now >= then {
        (now - then) as u64
    } else {
        (now + (CLOCK_MASK + 1 - then)) as u64
    }
}

/// The value's Redis type, as TYPE reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    String = 0,
    List = 1,
    Hash = 2,
    Set = 3,
    ZSet = 4,
    Stream = 5,
}

impl Kind {
    fn from_bits(b: u32) -> Kind {
        match b & 0xf {
            0 => Kind::String,
            1 => Kind::List,
            2 => Kind::Hash,
            3 => Kind::Set,
            4 => Kind::ZSet,
            _ => Kind::Stream,
        }
    }

    /// The name TYPE replies with.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }
}

/// A borrowed view of an entry's value.
#[derive(Debug)]
pub enum ValueRef<'a> {
    /// A string stored inline in the entry.
    Inline(&'a [u8]),
    /// A value stored in its own allocation (collections, and strings that are edited in place).
    Object(&'a Object),
}

/// What a new entry holds.
#[derive(Debug)]
pub enum NewValue<'a> {
    Inline(&'a [u8]),
    Object(Box<Object>),
}

/// An owned, packed key/value entry. See the module docs for the layout.
pub struct Entry {
    ptr: NonNull<u8>,
}

// SAFETY: an Entry exclusively owns its allocation (and the object it points to, which is Send).
unsafe impl Send for Entry {}
// SAFETY: shared access only reads the allocation; mutation needs `&mut Entry`.
unsafe impl Sync for Entry {}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Writes `v` as a varint at `dst`, returning the bytes written.
///
/// # Safety
/// `dst` must be valid for `varint_len(v)` bytes of writes.
unsafe fn write_varint(dst: *mut u8, mut v: usize) -> usize {
    let mut i = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let more = if v != 0 { 0x80 } else { 0 };
        // SAFETY: the caller sized the buffer with varint_len(v).
        unsafe { dst.add(i).write(byte | more) };
        i += 1;
        if v == 0 {
            return i;
        }
    }
}

/// Reads a varint at `src`, returning (value, bytes read).
///
/// # Safety
/// `src` must point at a varint written by `write_varint`.
unsafe fn read_varint(src: *const u8) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    let mut i = 0;
    loop {
        // SAFETY: the varint was written whole, so every byte up to the last one is in bounds.
        let byte = unsafe { src.add(i).read() };
        v |= ((byte & 0x7f) as usize) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            return (v, i);
        }
        shift += 7;
    }
}

impl Entry {
    /// Packs a new entry. `clock` is the initial 24-bit access clock.
    pub fn new(key: &[u8], value: NewValue<'_>, expire_at: Option<i64>, clock: u32) -> Entry {
        let (kind, value_size) = match &value {
            NewValue::Inline(v) => (Kind::String, varint_len(v.len()) + v.len()),
            NewValue::Object(o) => (o.kind(), 8),
        };
        let expire_size = if expire_at.is_some() { 8 } else { 0 };
        let size = 4 + expire_size + varint_len(key.len()) + key.len() + value_size;
        let layout = Layout::from_size_align(size, 1).expect("entry size overflows");
        // SAFETY: size >= 5, so the layout is non-zero.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else { std::alloc::handle_alloc_error(layout) };
        let mut meta = (clock & CLOCK_MASK) | ((kind as u32) << KIND_SHIFT);
        if expire_at.is_some() {
            meta |= HAS_EXPIRE;
        }
        if matches!(value, NewValue::Object(_)) {
            meta |= IS_OBJECT;
        }
        // SAFETY: every write below stays inside the `size` bytes computed above.
        unsafe {
            let p = ptr.as_ptr();
            (p as *mut u32).write_unaligned(meta.to_le());
            let mut off = 4;
            if let Some(at) = expire_at {
                (p.add(off) as *mut i64).write_unaligned(at.to_le());
                off += 8;
            }
            off += write_varint(p.add(off), key.len());
            std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(off), key.len());
            off += key.len();
            match value {
                NewValue::Inline(v) => {
                    off += write_varint(p.add(off), v.len());
                    std::ptr::copy_nonoverlapping(v.as_ptr(), p.add(off), v.len());
                }
                NewValue::Object(o) => {
                    (p.add(off) as *mut *mut Object).write_unaligned(Box::into_raw(o));
                }
            }
        }
        Entry { ptr }
    }

    fn meta(&self) -> u32 {
        // SAFETY: every entry starts with a 4-byte meta field.
        u32::from_le(unsafe { (self.ptr.as_ptr() as *const u32).read_unaligned() })
    }

    fn set_meta(&mut self, meta: u32) {
        // SAFETY: as in meta(); `&mut self` gives exclusive access.
        unsafe { (self.ptr.as_ptr() as *mut u32).write_unaligned(meta.to_le()) }
    }

    fn key_offset(&self) -> usize {
        if self.meta() & HAS_EXPIRE != 0 {
            12
        } else {
            4
        }
    }

    /// (offset of key bytes, key length)
    fn key_span(&self) -> (usize, usize) {
        let off = self.key_offset();
        // SAFETY: a varint key length follows the header.
        let (len, n) = unsafe { read_varint(self.ptr.as_ptr().add(off)) };
        (off + n, len)
    }

    /// The key's bytes.
    pub fn key(&self) -> &[u8] {
        let (off, len) = self.key_span();
        // SAFETY: the key bytes were written at this span when the entry was built.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) }
    }

    /// The value's type.
    pub fn kind(&self) -> Kind {
        Kind::from_bits(self.meta() >> KIND_SHIFT)
    }

    fn value_offset(&self) -> usize {
        let (off, len) = self.key_span();
        off + len
    }

    fn object_ptr(&self) -> Option<*mut Object> {
        if self.meta() & IS_OBJECT == 0 {
            return None;
        }
        // SAFETY: object entries store a pointer right after the key.
        Some(unsafe { (self.ptr.as_ptr().add(self.value_offset()) as *const *mut Object).read_unaligned() })
    }

    /// The value.
    pub fn value(&self) -> ValueRef<'_> {
        match self.object_ptr() {
            // SAFETY: the pointer came from Box::into_raw and lives as long as the entry.
            Some(obj) => ValueRef::Object(unsafe { &*obj }),
            None => {
                let off = self.value_offset();
                // SAFETY: inline strings store a varint length and the bytes after the key.
                unsafe {
                    let p = self.ptr.as_ptr().add(off);
                    let (len, n) = read_varint(p);
                    ValueRef::Inline(std::slice::from_raw_parts(p.add(n), len))
                }
            }
        }
    }

    /// The value's object, for in-place edits, or `None` for an inline string.
    pub fn object_mut(&mut self) -> Option<&mut Object> {
        // SAFETY: exclusive access to the entry gives exclusive access to its object.
        self.object_ptr().map(|p| unsafe { &mut *p })
    }

    /// The expiry time in unix milliseconds, if the key has a TTL.
    pub fn expire_at(&self) -> Option<i64> {
        if self.meta() & HAS_EXPIRE == 0 {
            return None;
        }
        // SAFETY: entries with HAS_EXPIRE store the time right after meta.
        Some(i64::from_le(unsafe { (self.ptr.as_ptr().add(4) as *const i64).read_unaligned() }))
    }

    /// Whether this inline string is exempt from the `int` encoding (Redis creates such
    /// strings without trying to encode them as integers).
    pub fn is_plain(&self) -> bool {
        self.meta() & PLAIN != 0
    }

    /// Marks the string as exempt from the `int` encoding.
    pub fn set_plain(&mut self, plain: bool) {
        let meta = if plain { self.meta() | PLAIN } else { self.meta() & !PLAIN };
        self.set_meta(meta);
    }

    /// The snapshot mark: the entry is part of the running snapshot's output (or outside it)
    /// when this equals its database's mark.
    pub fn snap_mark(&self) -> bool {
        self.meta() & SNAP_MARK != 0
    }

    /// Sets the snapshot mark.
    pub fn set_snap_mark(&mut self, mark: bool) {
        let meta = if mark { self.meta() | SNAP_MARK } else { self.meta() & !SNAP_MARK };
        self.set_meta(meta);
    }

    /// The 24-bit access clock (LRU or LFU data).
    pub fn clock(&self) -> u32 {
        self.meta() & CLOCK_MASK
    }

    pub fn set_clock(&mut self, clock: u32) {
        let meta = (self.meta() & !CLOCK_MASK) | (clock & CLOCK_MASK);
        self.set_meta(meta);
    }

    /// Bytes of the packed allocation (not counting an object's own memory).
    /// Bytes the allocator holds for the entry itself (its size class).
    pub fn alloc_bytes(&self) -> usize {
        crate::hash::alloc_size(self.packed_size())
    }

    /// Bytes of the packed entry (before the allocator rounds it up).
    pub fn packed_size(&self) -> usize {
        let off = self.value_offset();
        if self.meta() & IS_OBJECT != 0 {
            return off + 8;
        }
        // SAFETY: inline strings store a varint length after the key.
        let (len, n) = unsafe { read_varint(self.ptr.as_ptr().add(off)) };
        off + n + len
    }

    /// Rebuilds this entry with another expiry time, keeping key, value and clock.
    pub fn with_expire(self, expire_at: Option<i64>) -> Entry {
        if self.expire_at() == expire_at {
            return self;
        }
        if let (Some(_), Some(at)) = (self.expire_at(), expire_at) {
            let same = self;
            // SAFETY: the entry already has room for the expiry field.
            unsafe { (same.ptr.as_ptr().add(4) as *mut i64).write_unaligned(at.to_le()) };
            return same;
        }
        let clock = self.clock();
        let plain = self.is_plain();
        let mut this = std::mem::ManuallyDrop::new(self);
        let new = match this.object_ptr() {
            // SAFETY: ownership of the object moves to the new entry; `this` is then freed
            // without dropping the object (ManuallyDrop + dealloc_only).
            Some(obj) => Entry::new(this.key(), NewValue::Object(unsafe { Box::from_raw(obj) }), expire_at, clock),
            None => match this.value() {
                ValueRef::Inline(v) => Entry::new(this.key(), NewValue::Inline(v), expire_at, clock),
                ValueRef::Object(_) => unreachable!("object_ptr returned None"),
            },
        };
        this.dealloc_only();
        let mut new = new;
        new.set_plain(plain);
        new
    }

    /// Frees the packed allocation without dropping the object it points to.
    fn dealloc_only(&mut self) {
        let size = self.packed_size();
        let layout = Layout::from_size_align(size, 1).expect("entry layout");
        // SAFETY: the allocation was made with exactly this size and alignment.
        unsafe { dealloc(self.ptr.as_ptr(), layout) };
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(obj) = self.object_ptr() {
            // SAFETY: the entry owns the object; it is dropped exactly once, here.
            drop(unsafe { Box::from_raw(obj) });
        }
        self.dealloc_only();
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key().escape_ascii().to_string())
            .field("kind", &self.kind())
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_roundtrip_and_size() {
        let e = Entry::new(b"key:0000001", NewValue::Inline(b"0123456789"), None, 77);
        assert_eq!(e.key(), b"key:0000001");
        assert!(matches!(e.value(), ValueRef::Inline(b"0123456789")));
        assert_eq!(e.packed_size(), 27);
        assert_eq!(e.clock(), 77);
        assert_eq!(e.kind(), Kind::String);
        let e = e.with_expire(Some(1_700_000_000_000));
        assert_eq!(e.expire_at(), Some(1_700_000_000_000));
        assert_eq!(e.key(), b"key:0000001");
        assert_eq!(e.packed_size(), 35);
        let e = e.with_expire(Some(5));
        assert_eq!(e.expire_at(), Some(5));
        let e = e.with_expire(None);
        assert_eq!(e.expire_at(), None);
        assert!(matches!(e.value(), ValueRef::Inline(b"0123456789")));
    }

    #[test]
    fn long_keys_and_values() {
        let key = vec![b'k'; 300];
        let val = vec![7u8; 100_000];
        let e = Entry::new(&key, NewValue::Inline(&val), Some(-1), 0);
        assert_eq!(e.key(), &key[..]);
        match e.value() {
            ValueRef::Inline(v) => assert_eq!(v, &val[..]),
            _ => panic!(),
        }
    }

    #[test]
    fn object_entries_own_their_object() {
        let e = Entry::new(b"k", NewValue::Object(Box::new(Object::Str(b"abc".to_vec()))), None, 0);
        assert_eq!(e.kind(), Kind::String);
        let mut e = e.with_expire(Some(10));
        if let Some(Object::Str(s)) = e.object_mut() {
            s.push(b'd');
        }
        match e.value() {
            ValueRef::Object(Object::Str(s)) => assert_eq!(s, b"abcd"),
            _ => panic!(),
        }
    }
}
