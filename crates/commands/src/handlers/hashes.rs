//! Hash commands: HSET, HSETNX, HMSET, HGET, HMGET, HGETALL, HKEYS, HVALS, HDEL, HLEN,
//! HEXISTS, HSTRLEN, HINCRBY, HINCRBYFLOAT, HRANDFIELD and HSCAN, as Redis 7.2's `t_hash.c`.
//!
//! Writes go through [`with_hash`] (Redis's `hashTypeLookupWriteOrCreate`: a missing key is an
//! empty hash, stored only if the command leaves it non-empty); reads through [`read_hash`].
//! The encodings and their conversions live in `store::hash`; the thresholds come from
//! [`crate::Settings`] on every command, so CONFIG SET applies immediately.

use resp::ReplyBuf;
use store::hash::{Hash, HashLimits, Item};
use store::{Db, Entry, Kind, NewValue, Object, ValueRef, View};

use crate::args::{self, is};
use crate::error::{wrong_arity, CmdError, CmdResult, OVERFLOW, SYNTAX, WRONGTYPE};
use crate::handlers::{clock, edit_object, lookup_kind};
use crate::table::spec;
use crate::table::{flags::*, CommandSpec, KEY1};
use crate::{notify, numfmt, Ctx, Handler::Keyspace as K};

const NOT_INTEGER_VALUE: CmdError = CmdError::fixed("ERR hash value is not an integer");
const OUT_OF_RANGE: CmdError = CmdError::fixed("ERR value is out of range");
/// The most elements a random-with-repetition reply may hold (Redis has no limit and would
/// exhaust memory instead; see [`check_reply_size`]).
pub const MAX_RANDOM_REPLY: u64 = 1 << 26;

/// The hash commands' table entries, sorted by name.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec!("hdel", -3, WRITE | FAST, KEY1, ["@write", "@hash", "@fast"], "hash", "2.0.0", K(hdel), "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", "O(N) where N is the number of fields to be removed."),
    spec!("hexists", 3, READONLY | FAST, KEY1, ["@read", "@hash", "@fast"], "hash", "2.0.0", K(hexists), "Determines whether a field exists in a hash.", "O(1)"),
    spec!("hget", 3, READONLY | FAST, KEY1, ["@read", "@hash", "@fast"], "hash", "2.0.0", K(hget), "Returns the value of a field in a hash.", "O(1)"),
    spec!("hgetall", 2, READONLY, KEY1, ["@read", "@hash", "@slow"], "hash", "2.0.0", K(hgetall), "Returns all fields and values in a hash.", "O(N) where N is the size of the hash."),
    spec!("hincrby", 4, WRITE | DENYOOM | FAST, KEY1, ["@write", "@hash", "@fast"], "hash", "2.0.0", K(hincrby), "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", "O(1)"),
    spec!("hincrbyfloat", 4, WRITE | DENYOOM | FAST, KEY1, ["@write", "@hash", "@fast"], "hash", "2.6.0", K(hincrbyfloat), "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", "O(1)"),
    spec!("hkeys", 2, READONLY, KEY1, ["@read", "@hash", "@slow"], "hash", "2.0.0", K(hkeys), "Returns all fields in a hash.", "O(N) where N is the size of the hash."),
    spec!("hlen", 2, READONLY | FAST, KEY1, ["@read", "@hash", "@fast"], "hash", "2.0.0", K(hlen), "Returns the number of fields in a hash.", "O(1)"),
    spec!("hmget", -3, READONLY | FAST, KEY1, ["@read", "@hash", "@fast"], "hash", "2.0.0", K(hmget), "Returns the values of all fields in a hash.", "O(N) where N is the number of fields being requested."),
    spec!("hmset", -4, WRITE | DENYOOM | FAST, KEY1, ["@write", "@hash", "@fast"], "hash", "2.0.0", K(hmset), "Sets the values of multiple fields.", "O(N) where N is the number of fields being set."),
    spec!("hrandfield", -2, READONLY, KEY1, ["@read", "@hash", "@slow"], "hash", "6.2.0", K(hrandfield), "Returns one or more random fields from a hash.", "O(N) where N is the number of fields returned"),
    spec!("hscan", -3, READONLY, KEY1, ["@read", "@hash", "@slow"], "hash", "2.8.0", K(hscan), "Iterates over fields and values of a hash.", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."),
    spec!("hset", -4, WRITE | DENYOOM | FAST, KEY1, ["@write", "@hash", "@fast"], "hash", "2.0.0", K(hset), "Creates or modifies the value of a field in a hash.", "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs."),
    spec!("hsetnx", 4, WRITE | DENYOOM | FAST, KEY1, ["@write", "@hash", "@fast"], "hash", "2.0.0", K(hsetnx), "Sets the value of a field in a hash only when the field doesn't exist.", "O(1)"),
    spec!("hstrlen", 3, READONLY | FAST, KEY1, ["@read", "@hash", "@fast"], "hash", "3.2.0", K(hstrlen), "Returns the length of the value of a field.", "O(1)"),
    spec!("hvals", 2, READONLY, KEY1, ["@read", "@hash", "@slow"], "hash", "2.0.0", K(hvals), "Returns all values in a hash.", "O(N) where N is the size of the hash."),
];

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by the set commands)

/// The hash listpack thresholds in force.
fn limits(ctx: &Ctx<'_>) -> HashLimits {
    HashLimits { max_entries: ctx.settings.hash_max_listpack_entries, max_value: ctx.settings.hash_max_listpack_value }
}

/// Writes an element as a bulk string.
pub fn bulk_item(out: &mut ReplyBuf, item: Item<'_>) {
    match item {
        Item::Str(s) => out.bulk(s),
        Item::Int(v) => out.bulk_i64(v),
    }
}

/// Stores a freshly built collection under `key` (which is missing), without counting a
/// change: the command counts its own changes, as Redis's `dbAdd` does not.
pub fn insert_object(ctx: &Ctx<'_>, db: &mut Db, key: &[u8], obj: Object) {
    db.insert(Entry::new(key, NewValue::Object(Box::new(obj)), None, clock(ctx)));
}

/// Looks up `key` for a collection command and refreshes its access clock (Redis's
/// `lookupKey` touches the LRU on every access): `Ok(None)` if missing, WRONGTYPE if it holds
/// another type. `read` counts a keyspace hit or miss.
pub fn touch_kind<'d>(
    ctx: &Ctx<'_>,
    db: &'d mut Db,
    key: &[u8],
    kind: Kind,
    read: bool,
) -> CmdResult<Option<&'d mut Entry>> {
    let mut found = lookup_kind(ctx, db, key, kind, read)?;
    if let Some(e) = found.as_deref_mut() {
        crate::handlers::touch(ctx, e);
    }
    Ok(found)
}

/// The hash stored in an entry (`None` if it holds anything else).
fn hash_of(e: &Entry) -> Option<&Hash> {
    match e.value() {
        ValueRef::Object(Object::Hash(h)) => Some(h),
        _ => None,
    }
}

/// The hash at `key` for a read command: `Ok(None)` if missing, WRONGTYPE for other types.
fn read_hash<'d>(ctx: &Ctx<'_>, db: &'d mut Db, key: &[u8]) -> CmdResult<Option<&'d Hash>> {
    match touch_kind(ctx, db, key, Kind::Hash, true)? {
        None => Ok(None),
        Some(e) => {
            let e: &'d Entry = e;
            hash_of(e).map(Some).ok_or(WRONGTYPE)
        }
    }
}

/// Runs `edit` on the hash at `key`, treating a missing key as an empty hash that is stored
/// only if `edit` leaves it non-empty; a hash that `edit` empties is deleted. WRONGTYPE if the
/// key holds another type.
fn with_hash<R>(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], edit: impl FnOnce(&mut Hash) -> R) -> CmdResult<R> {
    if touch_kind(ctx, db, key, Kind::Hash, false)?.is_none() {
        let mut h = Hash::new();
        let r = edit(&mut h);
        if !h.is_empty() {
            insert_object(ctx, db, key, Object::Hash(h));
        }
        return Ok(r);
    }
    edit_object(ctx, db, key, |o| match o {
        Object::Hash(h) => Some(edit(h)),
        _ => None,
    })
    .ok_or(WRONGTYPE)
}

/// Refuses replies that could not be built in memory (a count Redis would try to serve until
/// the machine runs out of memory).
pub fn check_reply_size(count: u64) -> CmdResult {
    if count > MAX_RANDOM_REPLY {
        return Err(OUT_OF_RANGE);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writes

fn hset_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult<usize> {
    if ctx.argv.len() % 2 == 1 {
        return Err(wrong_arity(&ctx.name()));
    }
    let (argv, key, lim) = (ctx.argv, ctx.argv[1], limits(ctx));
    let pairs = (argv.len() - 2) / 2;
    let created = with_hash(ctx, view.db(ctx.db, key), key, |h| {
        h.prepare(pairs, argv[2..].iter().map(|a| a.len()), lim);
        argv[2..].chunks_exact(2).filter(|p| h.set(p[0], p[1], lim)).count()
    })?;
    ctx.dirty += pairs as u64;
    ctx.notify(notify::HASH, "hset", key);
    Ok(created)
}

/// HSET key field value [field value ...] → the number of fields created.
pub fn hset(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let created = hset_generic(ctx, view)?;
    ctx.out.int(created as i64);
    Ok(())
}

/// HMSET key field value [field value ...] → OK.
pub fn hmset(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    hset_generic(ctx, view)?;
    ctx.out.ok();
    Ok(())
}

/// HSETNX key field value → 1 if the field was set, 0 if it existed.
pub fn hsetnx(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, field, value, lim) = (ctx.argv[1], ctx.argv[2], ctx.argv[3], limits(ctx));
    let set = with_hash(ctx, view.db(ctx.db, key), key, |h| {
        if h.contains(field) {
            return false;
        }
        h.prepare(1, [field.len(), value.len()].into_iter(), lim);
        h.set(field, value, lim);
        true
    })?;
    ctx.dirty += set as u64;
    if set {
        ctx.notify(notify::HASH, "hset", key);
    }
    ctx.out.int(set as i64);
    Ok(())
}

/// HDEL key field [field ...] → the number of fields removed.
pub fn hdel(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let db = view.db(ctx.db, key);
    if touch_kind(ctx, db, key, Kind::Hash, false)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let deleted = with_hash(ctx, db, key, |h| {
        let mut n = 0;
        for f in &argv[2..] {
            n += h.remove(f) as usize;
            if h.is_empty() {
                break;
            }
        }
        n
    })?;
    ctx.dirty += deleted as u64;
    if deleted > 0 {
        ctx.notify(notify::HASH, "hdel", key);
        if !db.contains(key, ctx.now) {
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

/// The new value of an HINCRBY: `current` + `incr`, with Redis's errors.
fn add_checked(current: Option<Item<'_>>, incr: i64) -> CmdResult<i64> {
    let old = match current {
        None => 0,
        Some(Item::Int(v)) => v,
        Some(Item::Str(s)) => numfmt::parse_i64(s).ok_or(NOT_INTEGER_VALUE)?,
    };
    old.checked_add(incr).ok_or(OVERFLOW)
}

/// HINCRBY key field increment → the new value.
pub fn hincrby(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let incr = args::int(ctx.argv[3])?;
    let (key, field, lim) = (ctx.argv[1], ctx.argv[2], limits(ctx));
    let value = with_hash(ctx, view.db(ctx.db, key), key, |h| {
        let new = add_checked(h.get(field), incr)?;
        h.set(field, &numfmt::format_i64(new), lim);
        Ok::<i64, CmdError>(new)
    })??;
    ctx.dirty += 1;
    ctx.notify(notify::HASH, "hincrby", key);
    ctx.out.int(value);
    Ok(())
}

/// HINCRBYFLOAT key field increment → the new value (x87 `long double` arithmetic and
/// formatting, as Redis).
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let incr = numfmt::parse_hincrbyfloat_incr(ctx.argv[3])?;
    let (key, field, lim) = (ctx.argv[1], ctx.argv[2], limits(ctx));
    let value = with_hash(ctx, view.db(ctx.db, key), key, |h| {
        let current = h.get(field).map(|i| i.to_vec());
        let new = numfmt::hincrbyfloat(current.as_deref(), incr)?;
        h.set(field, &new, lim);
        Ok::<Vec<u8>, CmdError>(new)
    })??;
    ctx.dirty += 1;
    ctx.notify(notify::HASH, "hincrbyfloat", key);
    ctx.out.bulk(&value);
    ctx.log_as(vec![vec![b"HSET".to_vec(), key.to_vec(), field.to_vec(), value]]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reads

/// HGET key field → the value, or nil.
pub fn hget(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, field) = (ctx.argv[1], ctx.argv[2]);
    match read_hash(ctx, view.db(ctx.db, key), key)?.and_then(|h| h.get(field)) {
        Some(v) => bulk_item(ctx.out, v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// HMGET key field [field ...] → the values, nil for missing fields.
pub fn hmget(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let h = read_hash(ctx, view.db(ctx.db, key), key)?;
    ctx.out.array(argv.len() - 2);
    for f in &argv[2..] {
        match h.and_then(|h| h.get(f)) {
            Some(v) => bulk_item(ctx.out, v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// What HGETALL, HKEYS and HVALS return.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Fields,
    Values,
    Both,
}

fn getall_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, part: Part) -> CmdResult {
    let key = ctx.argv[1];
    let h = read_hash(ctx, view.db(ctx.db, key), key)?;
    let len = h.map_or(0, Hash::len);
    if part == Part::Both {
        ctx.out.map(len);
    } else {
        ctx.out.array(len);
    }
    for (f, v) in h.into_iter().flat_map(Hash::iter) {
        if part != Part::Values {
            bulk_item(ctx.out, f);
        }
        if part != Part::Fields {
            bulk_item(ctx.out, v);
        }
    }
    Ok(())
}

/// HGETALL key → every field and value (a map in RESP3).
pub fn hgetall(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    getall_generic(ctx, view, Part::Both)
}

/// HKEYS key → every field.
pub fn hkeys(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    getall_generic(ctx, view, Part::Fields)
}

/// HVALS key → every value.
pub fn hvals(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    getall_generic(ctx, view, Part::Values)
}

/// HLEN key → the number of fields.
pub fn hlen(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let n = read_hash(ctx, view.db(ctx.db, key), key)?.map_or(0, Hash::len);
    ctx.out.int(n as i64);
    Ok(())
}

/// HEXISTS key field → 1 or 0.
pub fn hexists(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, field) = (ctx.argv[1], ctx.argv[2]);
    let found = read_hash(ctx, view.db(ctx.db, key), key)?.is_some_and(|h| h.contains(field));
    ctx.out.int(found as i64);
    Ok(())
}

/// HSTRLEN key field → the length of the value (0 if missing).
pub fn hstrlen(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, field) = (ctx.argv[1], ctx.argv[2]);
    let len = read_hash(ctx, view.db(ctx.db, key), key)?.and_then(|h| h.get(field)).map_or(0, |v| v.len());
    ctx.out.int(len as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HRANDFIELD

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    if argv.len() >= 3 {
        let count = args::int_in(argv[2], -i64::MAX, i64::MAX, None)?;
        if argv.len() > 4 || (argv.len() == 4 && !is(argv[3], "withvalues")) {
            return Err(SYNTAX);
        }
        let withvalues = argv.len() == 4;
        if withvalues && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
            return Err(OUT_OF_RANGE);
        }
        return hrandfield_count(ctx, view, count, withvalues);
    }
    match read_hash(ctx, view.db(ctx.db, key), key)?.and_then(Hash::random_pair) {
        Some((f, _)) => bulk_item(ctx.out, f),
        None => ctx.out.null(),
    }
    Ok(())
}

/// Writes one HRANDFIELD element: the field, or a (field, value) pair (nested in RESP3).
fn emit_pair(out: &mut ReplyBuf, f: Item<'_>, v: Item<'_>, withvalues: bool) {
    if withvalues && out.is_resp3() {
        out.array(2);
    }
    bulk_item(out, f);
    if withvalues {
        bulk_item(out, v);
    }
}

/// The reply header for `n` HRANDFIELD elements (flat pairs in RESP2).
fn pairs_header(out: &mut ReplyBuf, n: usize, withvalues: bool) {
    let flat = withvalues && !out.is_resp3();
    out.array(if flat { n * 2 } else { n });
}

/// HRANDFIELD key count [WITHVALUES]: distinct fields for a positive count, fields with
/// repetition for a negative one (Redis's four cases, with the same orders where Redis's
/// order is deterministic).
fn hrandfield_count(ctx: &mut Ctx<'_>, view: &mut View<'_>, l: i64, withvalues: bool) -> CmdResult {
    let key = ctx.argv[1];
    let Some(h) = read_hash(ctx, view.db(ctx.db, key), key)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    let out = &mut *ctx.out;
    if count == 0 {
        out.array(0);
        return Ok(());
    }
    if !uniq || count == 1 {
        check_reply_size(count)?;
        pairs_header(out, count as usize, withvalues);
        h.random_pairs(count as usize, |f, v| emit_pair(out, f, v, withvalues));
        return Ok(());
    }
    if count >= h.len() as u64 {
        pairs_header(out, h.len(), withvalues);
        h.iter().for_each(|(f, v)| emit_pair(out, f, v, withvalues));
        return Ok(());
    }
    pairs_header(out, count as usize, withvalues);
    h.sample_unique(count as usize, |f, v| emit_pair(out, f, v, withvalues));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HSCAN

/// Options of the collection SCANs (HSCAN, SSCAN): COUNT and MATCH.
pub struct ScanOpts<'a> {
    pub count: i64,
    pub pattern: Option<&'a [u8]>,
}

/// Parses `[MATCH pattern] [COUNT count]` as Redis's `scanGenericCommand` (any order, repeats
/// allowed, the last one wins).
pub fn parse_scan_opts<'a>(args: &[&'a [u8]]) -> CmdResult<ScanOpts<'a>> {
    let mut o = ScanOpts { count: 10, pattern: None };
    let mut i = 0;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if is(args[i], "count") && has_value {
            o.count = args::int(args[i + 1])?;
            if o.count < 1 {
                return Err(SYNTAX);
            }
        } else if is(args[i], "match") && has_value {
            o.pattern = (args[i + 1] != b"*").then_some(args[i + 1]);
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

/// The reply for a missing key: cursor 0 and no elements.
pub fn empty_scan(out: &mut ReplyBuf) {
    out.array(2);
    out.bulk(b"0");
    out.array(0);
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]
pub fn hscan(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let cursor = args::scan_cursor(ctx.argv[2])?;
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let Some(h) = read_hash(ctx, view.db(ctx.db, key), key)? else {
        empty_scan(ctx.out);
        return Ok(());
    };
    let o = parse_scan_opts(&argv[3..])?;
    let mut found: Vec<(Item<'_>, Item<'_>)> = Vec::new();
    let mut next = cursor;
    let mut budget = o.count.saturating_mul(10);
    loop {
        next = h.scan(next, |f, v| found.push((f, v)));
        budget -= 1;
        if next == 0 || budget < 0 || (found.len() * 2) as i64 >= o.count {
            break;
        }
    }
    if let Some(p) = o.pattern {
        found.retain(|(f, _)| f.with_bytes(|f| store::glob::glob_match(p, f, false)));
    }
    ctx.out.array(2);
    ctx.out.bulk_i64(next as i64);
    ctx.out.array(found.len() * 2);
    for (f, v) in found {
        bulk_item(ctx.out, f);
        bulk_item(ctx.out, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::COMMANDS;

    #[test]
    fn table_is_sorted_and_in_its_group() {
        for w in COMMANDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        assert!(COMMANDS.iter().all(|c| c.group == "hash" && c.acl.contains(&"@hash")));
    }
}
