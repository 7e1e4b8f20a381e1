//! Keyspace command handlers, one module per group, plus the value helpers they share.

pub mod bitmaps;
pub mod dump;
pub mod expire;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod sets;
pub mod streams;
pub mod strings;
pub mod zsets;

use store::{Db, Entry, NewValue, Object, ValueRef};

use crate::error::{CmdResult, WRONGTYPE};
use crate::Ctx;

/// The bytes of a string value, or `None` if the entry holds another type.
pub fn string_bytes(e: &Entry) -> Option<&[u8]> {
    match e.value() {
        ValueRef::Inline(v) => Some(v),
        ValueRef::Object(Object::Str(v)) => Some(v),
        ValueRef::Object(_) => None,
    }
}

/// The access clock of an entry created now (LRU seconds, or a fresh LFU counter).
pub fn clock(ctx: &Ctx<'_>) -> u32 {
    store::access::fresh(ctx.settings.access, ctx.now)
}

/// Records an access to `e` in its clock (Redis's `updateLFU` or LRU refresh).
pub fn touch(ctx: &Ctx<'_>, e: &mut Entry) {
    let coin = match ctx.settings.access {
        store::access::Mode::Lru | store::access::Mode::Auto => 0.0,
        store::access::Mode::Lfu { .. } => (store::random_u64() >> 11) as f64 / (1u64 << 53) as f64,
    };
    e.set_clock(store::access::touched(ctx.settings.access, e.clock(), ctx.now, coin));
}

/// Reads a string key for a read command: `Ok(None)` if missing, WRONGTYPE for other types.
/// Counts a keyspace hit or miss and refreshes the key's access clock.
pub fn read_string<'d>(ctx: &Ctx<'_>, db: &'d mut Db, key: &[u8]) -> CmdResult<Option<&'d [u8]>> {
    match db.lookup_read(key, ctx.now) {
        None => Ok(None),
        Some(e) => {
            touch(ctx, e);
            let e: &'d Entry = e;
            string_bytes(e).map(Some).ok_or(WRONGTYPE)
        }
    }
}

/// Like [`read_string`] but for commands that write (no hit/miss counting).
pub fn write_lookup_string<'d>(ctx: &Ctx<'_>, db: &'d mut Db, key: &[u8]) -> CmdResult<Option<&'d [u8]>> {
    match db.lookup(key, ctx.now) {
        None => Ok(None),
        Some(e) => {
            let e: &'d Entry = e;
            string_bytes(e).map(Some).ok_or(WRONGTYPE)
        }
    }
}

/// Stores a string value inline, replacing whatever the key held.
pub fn store_string(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], value: &[u8], expire_at: Option<i64>) {
    store_string_as(ctx, db, key, value, expire_at, false);
}

/// Like [`store_string`]; `plain` strings never report the `int` encoding.
pub fn store_string_as(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], value: &[u8], expire_at: Option<i64>, plain: bool) {
    let clock = clock(ctx);
    let mut e = Entry::new(key, NewValue::Inline(value), expire_at, clock);
    e.set_plain(plain);
    db.upsert(e, ctx.now);
    ctx.dirty += 1;
}

/// Edits a string in place (APPEND, SETRANGE, SETBIT...): the value becomes a growable
/// object (Redis's `raw` encoding) so repeated edits are amortised. Creates the key (empty
/// string) if missing. Returns the closure's result. The caller checked the type.
pub fn edit_string<R>(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], edit: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let clock = clock(ctx);
    let now = ctx.now;
    ctx.dirty += 1;
    // Promote an inline string (or a missing key, as "") to a growable object.
    let promote = match db.lookup(key, now) {
        Some(e) if matches!(e.value(), ValueRef::Object(_)) => None,
        Some(e) => Some((string_bytes(e).unwrap_or_default().to_vec(), e.expire_at())),
        None => Some((Vec::new(), None)),
    };
    if let Some((bytes, expire)) = promote {
        db.insert(Entry::new(key, NewValue::Object(Box::new(Object::Str(bytes))), expire, clock));
    }
    let e = db.lookup(key, now).expect("just stored");
    let before = e.alloc_bytes() + obj_size(e);
    touch(ctx, e);
    let Some(Object::Str(v)) = e.object_mut() else { unreachable!("string object stored above") };
    let r = edit(v);
    let after = e.alloc_bytes() + obj_size(e);
    db.account_edit(key, before, after);
    r
}

fn obj_size(e: &Entry) -> usize {
    match e.value() {
        ValueRef::Object(o) => o.heap_size(),
        ValueRef::Inline(_) => 0,
    }
}

/// Looks up `key` for a command on a collection of `kind`: `Ok(None)` if missing, WRONGTYPE
/// if it holds another type. Read commands pass `read = true` to count keyspace hits/misses.
pub fn lookup_kind<'d>(
    ctx: &Ctx<'_>,
    db: &'d mut Db,
    key: &[u8],
    kind: store::Kind,
    read: bool,
) -> CmdResult<Option<&'d mut Entry>> {
    let found = if read { db.lookup_read(key, ctx.now) } else { db.lookup(key, ctx.now) };
    match found {
        None => Ok(None),
        Some(e) if e.kind() == kind => Ok(Some(e)),
        Some(_) => Err(WRONGTYPE),
    }
}

/// Stores a new collection (or replaces the key's value with it), with no TTL.
pub fn store_object(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], obj: Object) {
    let clock = clock(ctx);
    db.insert(Entry::new(key, NewValue::Object(Box::new(obj)), None, clock));
    ctx.dirty += 1;
}

/// Runs `edit` on the object stored at `key` (the caller checked it exists and has the right
/// type), keeps the memory count right, and deletes the key if a collection became empty
/// (Redis never keeps empty collections). Returns `edit`'s result.
pub fn edit_object<R>(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], edit: impl FnOnce(&mut Object) -> R) -> R {
    let e = db.lookup(key, ctx.now).expect("edit_object: the caller checked the key exists");
    let before = e.alloc_bytes() + obj_size(e);
    touch(ctx, e);
    let obj = e.object_mut().expect("edit_object: the key holds an object");
    let r = edit(obj);
    let empty = obj.is_empty_collection();
    let after = e.alloc_bytes() + obj_size(e);
    db.account_edit(key, before, after);
    if empty {
        db.remove(key);
    }
    r
}
