//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER,
//! SMOVE, SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE and SSCAN,
//! as Redis 7.2's `t_set.c`.
//!
//! The set algebra reproduces Redis's algorithms, not just their results: the smallest set
//! drives an intersection, SDIFF picks between Redis's two algorithms by the same estimate,
//! and results are built by adding members one by one into a set that starts as an intset.
//! That is what makes the order of small results (intsets ascending, listpacks in insertion
//! order) and the encodings of stored results the same as Redis's.
//!
//! Multi-key commands read their sets through [`read_sets`], which looks every key up in
//! order (counting hits and misses, refreshing access clocks, reporting WRONGTYPE) and then
//! hands out shared references for the computation; stores happen after the reads end.

use store::hash::Item;
use store::set::{Set, SetLimits};
use store::{Db, Entry, Kind, Object, ValueRef, View};

use crate::args::{self, is};
use crate::error::{CmdError, CmdResult, SYNTAX, WRONGTYPE};
use crate::handlers::edit_object;
use crate::handlers::hashes::{bulk_item, check_reply_size, empty_scan, insert_object, parse_scan_opts, touch_kind};
use crate::table::spec;
use crate::table::{flags::*, CommandSpec, KEY1, KEYS_1_2, KEYS_ALL, NUMKEYS_AT_1};
use crate::{notify, Ctx, Handler::Keyspace as K};

const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";

/// The set commands' table entries, sorted by name. SINTERCARD's keys follow a numkeys
/// argument, which (first, last, step) cannot express: it is `movablekeys`, and the dispatcher
/// finds (and locks) its keys through `NUMKEYS_AT_1`.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec!("sadd", -3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@set", "@fast"], "set", "1.0.0", K(sadd), "Adds one or more members to a set. Creates the key if it doesn't exist.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    spec!("scard", 2, READONLY | FAST, KEY1, ["@read", "@set", "@fast"], "set", "1.0.0", K(scard), "Returns the number of members in a set.", "O(1)"),
    spec!("sdiff", -2, READONLY, KEYS_ALL, ["@read", "@set", "@slow"], "set", "1.0.0", K(sdiff), "Returns the difference of multiple sets.", "O(N) where N is the total number of elements in all given sets."),
    spec!("sdiffstore", -3, WRITE | DENYOOM, KEYS_ALL, ["@write", "@set", "@slow"], "set", "1.0.0", K(sdiffstore), "Stores the difference of multiple sets in a key.", "O(N) where N is the total number of elements in all given sets."),
    spec!("sinter", -2, READONLY, KEYS_ALL, ["@read", "@set", "@slow"], "set", "1.0.0", K(sinter), "Returns the intersect of multiple sets.", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    spec!("sintercard", -3, READONLY | MOVABLEKEYS, NUMKEYS_AT_1, ["@read", "@set", "@slow"], "set", "7.0.0", K(sintercard), "Returns the number of members of the intersect of multiple sets.", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    spec!("sinterstore", -3, WRITE | DENYOOM, KEYS_ALL, ["@write", "@set", "@slow"], "set", "1.0.0", K(sinterstore), "Stores the intersect of multiple sets in a key.", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    spec!("sismember", 3, READONLY | FAST, KEY1, ["@read", "@set", "@fast"], "set", "1.0.0", K(sismember), "Determines whether a member belongs to a set.", "O(1)"),
    spec!("smembers", 2, READONLY, KEY1, ["@read", "@set", "@slow"], "set", "1.0.0", K(smembers), "Returns all members of a set.", "O(N) where N is the set cardinality."),
    spec!("smismember", -3, READONLY | FAST, KEY1, ["@read", "@set", "@fast"], "set", "6.2.0", K(smismember), "Determines whether multiple members belong to a set.", "O(N) where N is the number of elements being checked for membership"),
    spec!("smove", 4, WRITE | FAST, KEYS_1_2, ["@write", "@set", "@fast"], "set", "1.0.0", K(smove), "Moves a member from one set to another.", "O(1)"),
    spec!("spop", -2, WRITE | FAST, KEY1, ["@write", "@set", "@fast"], "set", "1.0.0", K(spop), "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", "Without the count argument O(1), otherwise O(N) where N is the value of the passed count."),
    spec!("srandmember", -2, READONLY, KEY1, ["@read", "@set", "@slow"], "set", "1.0.0", K(srandmember), "Get one or multiple random members from a set", "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count."),
    spec!("srem", -3, WRITE | FAST, KEY1, ["@write", "@set", "@fast"], "set", "1.0.0", K(srem), "Removes one or more members from a set. Deletes the set if the last member was removed.", "O(N) where N is the number of members to be removed."),
    spec!("sscan", -3, READONLY, KEY1, ["@read", "@set", "@slow"], "set", "2.8.0", K(sscan), "Iterates over members of a set.", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."),
    spec!("sunion", -2, READONLY, KEYS_ALL, ["@read", "@set", "@slow"], "set", "1.0.0", K(sunion), "Returns the union of multiple sets.", "O(N) where N is the total number of elements in all given sets."),
    spec!("sunionstore", -3, WRITE | DENYOOM, KEYS_ALL, ["@write", "@set", "@slow"], "set", "1.0.0", K(sunionstore), "Stores the union of multiple sets in a key.", "O(N) where N is the total number of elements in all given sets."),
];

// ---------------------------------------------------------------------------------------------
// Helpers

/// The set encoding thresholds in force.
fn limits(ctx: &Ctx<'_>) -> SetLimits {
    SetLimits {
        max_intset_entries: ctx.settings.set_max_intset_entries,
        max_listpack_entries: ctx.settings.set_max_listpack_entries,
        max_listpack_value: ctx.settings.set_max_listpack_value,
    }
}

/// The set stored in an entry (`None` if it holds anything else).
fn set_of(e: &Entry) -> Option<&Set> {
    match e.value() {
        ValueRef::Object(Object::Set(s)) => Some(s),
        _ => None,
    }
}

/// The set at `key`: `Ok(None)` if missing, WRONGTYPE for other types. `read` counts a
/// keyspace hit or miss (read commands).
fn read_set<'d>(ctx: &Ctx<'_>, db: &'d mut Db, key: &[u8], read: bool) -> CmdResult<Option<&'d Set>> {
    match touch_kind(ctx, db, key, Kind::Set, read)? {
        None => Ok(None),
        Some(e) => {
            let e: &'d Entry = e;
            set_of(e).map(Some).ok_or(WRONGTYPE)
        }
    }
}

/// Runs `edit` on the set at `key` (which the caller found), deleting it if it empties.
fn edit_set<R>(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], edit: impl FnOnce(&mut Set) -> R) -> CmdResult<R> {
    edit_object(ctx, db, key, |o| match o {
        Object::Set(s) => Some(edit(s)),
        _ => None,
    })
    .ok_or(WRONGTYPE)
}

/// Looks up every key in order, as Redis's multi-set commands do (missing keys are `None`;
/// the first key of another type fails the command), then returns shared references to the
/// sets, valid while the view stays borrowed.
fn read_sets<'v>(ctx: &Ctx<'_>, view: &'v mut View<'_>, keys: &[&[u8]]) -> CmdResult<Vec<Option<&'v Set>>> {
    let mut found: Vec<Option<*const Set>> = Vec::with_capacity(keys.len());
    for key in keys {
        let set = read_set(ctx, view.db(ctx.db, key), key, true)?;
        found.push(set.map(|s| s as *const Set));
    }
    // SAFETY: each pointer was taken from a live entry's boxed object. Later lookups in the
    // loop only touch other entries (removing expired ones, which these are not, since they
    // were found live at the same `now`) or refresh access clocks in entry headers; neither
    // moves, mutates or frees a boxed object. The references live as long as the exclusive
    // borrow of the view, so nothing can modify the keyspace while they are in use.
    Ok(found.into_iter().map(|p| p.map(|p| unsafe { &*p })).collect())
}

/// Whether two optional set references point at the same set (the same key).
fn same(a: Option<&Set>, b: Option<&Set>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if std::ptr::eq(a, b))
}

/// Writes a set reply (`~` in RESP3) of the members of `s`.
fn reply_members(ctx: &mut Ctx<'_>, s: &Set) {
    ctx.out.set(s.len());
    for m in s.iter() {
        bulk_item(ctx.out, m);
    }
}

/// Stores a computed set at `dst` (replacing any value of any type, clearing its TTL) and
/// reports `event`, or deletes `dst` when the result is empty. Replies with the result's size.
fn store_result(ctx: &mut Ctx<'_>, view: &mut View<'_>, dst: &[u8], result: Set, event: &'static str) {
    let db = view.db(ctx.db, dst);
    let n = result.len();
    if n > 0 {
        crate::handlers::store_object(ctx, db, dst, Object::Set(result));
        ctx.notify(notify::SET, event, dst);
    } else if db.contains(dst, ctx.now) {
        db.remove(dst);
        ctx.dirty += 1;
        ctx.notify(notify::GENERIC, "del", dst);
    }
    ctx.out.int(n as i64);
}

/// Reports `event` on `key`, then `del` if the operation emptied (and so deleted) the set.
fn notify_removal(ctx: &mut Ctx<'_>, db: &mut Db, event: &'static str, key: &[u8]) {
    ctx.notify(notify::SET, event, key);
    if !db.contains(key, ctx.now) {
        ctx.notify(notify::GENERIC, "del", key);
    }
}

// ---------------------------------------------------------------------------------------------
// Single-key writes

/// SADD key member [member ...] → the number of members added.
pub fn sadd(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key, lim) = (ctx.argv, ctx.argv[1], limits(ctx));
    let members = &argv[2..];
    let db = view.db(ctx.db, key);
    let add_all = |s: &mut Set| members.iter().filter(|m| s.add(m, lim)).count();
    let added = if touch_kind(ctx, db, key, Kind::Set, false)?.is_some() {
        edit_set(ctx, db, key, |s| {
            s.maybe_convert(members.len(), lim);
            add_all(s)
        })?
    } else {
        let mut s = Set::new_for(members[0], members.len(), lim);
        let n = add_all(&mut s);
        insert_object(ctx, db, key, Object::Set(s));
        n
    };
    ctx.dirty += added as u64;
    if added > 0 {
        ctx.notify(notify::SET, "sadd", key);
    }
    ctx.out.int(added as i64);
    Ok(())
}

/// SREM key member [member ...] → the number of members removed.
pub fn srem(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let db = view.db(ctx.db, key);
    if touch_kind(ctx, db, key, Kind::Set, false)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let removed = edit_set(ctx, db, key, |s| {
        let mut n = 0;
        for m in &argv[2..] {
            n += s.remove(m) as usize;
            if s.is_empty() {
                break;
            }
        }
        n
    })?;
    ctx.dirty += removed as u64;
    if removed > 0 {
        notify_removal(ctx, db, "srem", key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// SMOVE source destination member → 1 if moved, 0 if not a member of source.
pub fn smove(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (src, dst, m, lim) = (ctx.argv[1], ctx.argv[2], ctx.argv[3], limits(ctx));
    let now = ctx.now;
    let src_kind = view.db(ctx.db, src).lookup(src, now).map(|e| e.kind());
    let dst_kind = view.db(ctx.db, dst).lookup(dst, now).map(|e| e.kind());
    let Some(src_kind) = src_kind else {
        ctx.out.int(0);
        return Ok(());
    };
    if src_kind != Kind::Set || dst_kind.is_some_and(|k| k != Kind::Set) {
        return Err(WRONGTYPE);
    }
    if src == dst {
        let member = read_set(ctx, view.db(ctx.db, src), src, false)?.is_some_and(|s| s.contains(m));
        ctx.out.int(member as i64);
        return Ok(());
    }
    touch_kind(ctx, view.db(ctx.db, dst), dst, Kind::Set, false)?;
    touch_kind(ctx, view.db(ctx.db, src), src, Kind::Set, false)?;
    if !edit_set(ctx, view.db(ctx.db, src), src, |s| s.remove(m))? {
        ctx.out.int(0);
        return Ok(());
    }
    notify_removal(ctx, view.db(ctx.db, src), "srem", src);
    ctx.dirty += 1;
    let db = view.db(ctx.db, dst);
    let added = if dst_kind.is_some() {
        edit_set(ctx, db, dst, |s| s.add(m, lim))?
    } else {
        let mut s = Set::new_for(m, 1, lim);
        s.add(m, lim);
        insert_object(ctx, db, dst, Object::Set(s));
        true
    };
    ctx.dirty += added as u64;
    if added {
        ctx.notify(notify::SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

/// SPOP key [count]
pub fn spop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    match ctx.argv.len() {
        3 => return spop_count(ctx, view),
        n if n > 3 => return Err(SYNTAX),
        _ => {}
    }
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    if touch_kind(ctx, db, key, Kind::Set, false)?.is_none() {
        ctx.out.null();
        return Ok(());
    }
    let popped = edit_set(ctx, db, key, Set::pop_random)?;
    match popped {
        Some(m) => {
            ctx.out.bulk(&m);
            ctx.log_as(vec![vec![b"SREM".to_vec(), key.to_vec(), m]]);
        }
        None => ctx.out.null(),
    }
    notify_removal(ctx, db, "spop", key);
    ctx.dirty += 1;
    Ok(())
}

/// SPOP key count → a set of up to `count` distinct members, removed. Follows Redis's three
/// cases: the whole set (replied in the order SUNION would give), random pops, or keeping a
/// random remainder in a new set (which may change the encoding, as in Redis).
fn spop_count(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let count = args::int_in(ctx.argv[2], 0, i64::MAX, Some(MUST_BE_POSITIVE))? as u64;
    let (key, lim) = (ctx.argv[1], limits(ctx));
    let db = view.db(ctx.db, key);
    let Some(size) = read_set(ctx, db, key, false)?.map(|s| s.len() as u64) else {
        ctx.out.set(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    ctx.dirty += count.min(size);
    ctx.notify(notify::SET, "spop", key);
    if count >= size {
        let all = read_set(ctx, db, key, false)?.map(|s| union(&[Some(s)], lim)).unwrap_or_default();
        reply_members(ctx, &all);
        db.remove(key);
        ctx.notify(notify::GENERIC, "del", key);
        ctx.log_as(vec![vec![b"DEL".to_vec(), key.to_vec()]]);
        return Ok(());
    }
    let (count, remaining) = (count as usize, (size - count) as usize);
    let popped = edit_set(ctx, db, key, |s| {
        if remaining.saturating_mul(5) > count {
            return s.pop_many(count);
        }
        let kept = s.split_random(remaining, lim);
        let popped = s.iter().map(|m| m.to_vec()).collect();
        *s = kept;
        popped
    })?;
    ctx.out.set(popped.len());
    popped.iter().for_each(|m| ctx.out.bulk(m));
    let mut srem = vec![b"SREM".to_vec(), key.to_vec()];
    srem.extend(popped);
    ctx.log_as(vec![srem]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Single-key reads

/// SMEMBERS key → every member (a set in RESP3).
pub fn smembers(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    match read_set(ctx, view.db(ctx.db, key), key, true)? {
        Some(s) => reply_members(ctx, s),
        None => ctx.out.set(0),
    }
    Ok(())
}

/// SISMEMBER key member → 1 or 0.
pub fn sismember(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, m) = (ctx.argv[1], ctx.argv[2]);
    let found = read_set(ctx, view.db(ctx.db, key), key, true)?.is_some_and(|s| s.contains(m));
    ctx.out.int(found as i64);
    Ok(())
}

/// SMISMEMBER key member [member ...] → 1 or 0 for each member.
pub fn smismember(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let s = read_set(ctx, view.db(ctx.db, key), key, true)?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        ctx.out.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
    Ok(())
}

/// SCARD key → the number of members.
pub fn scard(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let n = read_set(ctx, view.db(ctx.db, key), key, true)?.map_or(0, Set::len);
    ctx.out.int(n as i64);
    Ok(())
}

/// SRANDMEMBER key [count]
pub fn srandmember(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    match ctx.argv.len() {
        3 => return srandmember_count(ctx, view),
        n if n > 3 => return Err(SYNTAX),
        _ => {}
    }
    let key = ctx.argv[1];
    match read_set(ctx, view.db(ctx.db, key), key, true)?.and_then(Set::random) {
        Some(m) => bulk_item(ctx.out, m),
        None => ctx.out.null(),
    }
    Ok(())
}

/// SRANDMEMBER key count: distinct members for a positive count, with repetition for a
/// negative one.
fn srandmember_count(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let l = args::int_in(ctx.argv[2], -i64::MAX, i64::MAX, None)?;
    let key = ctx.argv[1];
    let Some(s) = read_set(ctx, view.db(ctx.db, key), key, true)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    let out = &mut *ctx.out;
    if count == 0 {
        out.array(0);
    } else if !uniq || count == 1 {
        check_reply_size(count)?;
        out.array(count as usize);
        s.random_members(count as usize, |m| bulk_item(out, m));
    } else if count >= s.len() as u64 {
        out.array(s.len());
        s.iter().for_each(|m| bulk_item(out, m));
    } else {
        out.array(count as usize);
        s.sample_unique(count as usize, |m| bulk_item(out, m));
    }
    Ok(())
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let cursor = args::scan_cursor(ctx.argv[2])?;
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let Some(s) = read_set(ctx, view.db(ctx.db, key), key, true)? else {
        empty_scan(ctx.out);
        return Ok(());
    };
    let o = parse_scan_opts(&argv[3..])?;
    let mut found: Vec<Item<'_>> = Vec::new();
    let mut next = cursor;
    let mut budget = o.count.saturating_mul(10);
    loop {
        next = s.scan(next, |m| found.push(m));
        budget -= 1;
        if next == 0 || budget < 0 || found.len() as i64 >= o.count {
            break;
        }
    }
    if let Some(p) = o.pattern {
        found.retain(|m| m.with_bytes(|m| store::glob::glob_match(p, m, false)));
    }
    ctx.out.array(2);
    ctx.out.bulk_i64(next as i64);
    ctx.out.array(found.len());
    found.into_iter().for_each(|m| bulk_item(ctx.out, m));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Intersection

/// What an intersection produces.
#[derive(Clone, Copy)]
enum InterMode {
    /// SINTER: reply with the members.
    Reply,
    /// SINTERSTORE: build a set to store.
    Store,
    /// SINTERCARD: count, stopping at the limit (0 = none).
    Count(u64),
}

/// The result of an intersection (before replying or storing).
enum InterResult<'a> {
    Members(Vec<Item<'a>>),
    Stored(Set),
    Count(u64),
}

/// Redis's `sinterGenericCommand` on sets that all exist: iterates the smallest set and
/// keeps the members every other set holds.
fn intersect<'a>(mut sets: Vec<&'a Set>, mode: InterMode, lim: SetLimits) -> InterResult<'a> {
    sets.sort_by_key(|s| s.len());
    let first = sets[0];
    let common = first.iter().filter(|&m| sets[1..].iter().all(|s| std::ptr::eq(*s, first) || s.contains_item(m)));
    match mode {
        InterMode::Reply => InterResult::Members(common.collect()),
        InterMode::Count(limit) => {
            let n = common.take(if limit == 0 { usize::MAX } else { limit as usize }).count();
            InterResult::Count(n as u64)
        }
        InterMode::Store => {
            let mut dst = if first.is_intset() { Set::new() } else { Set::new_listpack() };
            let mut only_ints = true;
            for m in common {
                only_ints &= m.as_int().is_some();
                dst.add_item(m, lim);
            }
            if only_ints {
                dst.to_intset_if_possible(lim);
            }
            InterResult::Stored(dst)
        }
    }
}

fn sinter_generic(
    ctx: &mut Ctx<'_>,
    view: &mut View<'_>,
    keys: &[&[u8]],
    dst: Option<&[u8]>,
    mode: InterMode,
) -> CmdResult {
    let lim = limits(ctx);
    let found = read_sets(ctx, view, keys)?;
    let result = match found.iter().copied().collect::<Option<Vec<&Set>>>() {
        Some(sets) => intersect(sets, mode, lim),
        None => match mode {
            InterMode::Reply => InterResult::Members(Vec::new()),
            InterMode::Store => InterResult::Stored(Set::new()),
            InterMode::Count(_) => InterResult::Count(0),
        },
    };
    match result {
        InterResult::Members(members) => {
            ctx.out.set(members.len());
            members.into_iter().for_each(|m| bulk_item(ctx.out, m));
        }
        InterResult::Count(n) => ctx.out.int(n as i64),
        InterResult::Stored(set) => {
            if let Some(dst) = dst {
                store_result(ctx, view, dst, set, "sinterstore");
            }
        }
    }
    Ok(())
}

/// SINTER key [key ...] → the members common to every set.
pub fn sinter(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let keys = &ctx.argv[1..];
    sinter_generic(ctx, view, keys, None, InterMode::Reply)
}

/// SINTERSTORE destination key [key ...] → the size of the stored intersection.
pub fn sinterstore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (dst, keys) = (ctx.argv[1], &ctx.argv[2..]);
    sinter_generic(ctx, view, keys, Some(dst), InterMode::Store)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit] → the intersection's size, up to `limit`.
pub fn sintercard(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let numkeys = args::int_in(argv[1], 1, i64::MAX, Some("ERR numkeys should be greater than 0"))?;
    if numkeys > (argv.len() - 2) as i64 {
        return Err(CmdError::fixed("ERR Number of keys can't be greater than number of args"));
    }
    let end = 2 + numkeys as usize;
    let mut limit = 0;
    let mut j = end;
    while j < argv.len() {
        if is(argv[j], "limit") && j + 1 < argv.len() {
            j += 1;
            limit = args::int_in(argv[j], 0, i64::MAX, Some("ERR LIMIT can't be negative"))? as u64;
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    sinter_generic(ctx, view, &argv[2..end], None, InterMode::Count(limit))
}

// ---------------------------------------------------------------------------------------------
// Union and difference

/// The union of the existing sets, built as Redis builds it (an intset first, converting as
/// members arrive), so its order and encoding match.
fn union(sets: &[Option<&Set>], lim: SetLimits) -> Set {
    let mut dst = Set::new();
    for m in sets.iter().flatten().flat_map(|s| s.iter()) {
        dst.add_item(m, lim);
    }
    dst
}

/// Redis's SDIFF: algorithm 1 (test each member of the first set against the others, the
/// others sorted by decreasing size) when it looks cheaper, else algorithm 2 (add the first
/// set, remove the others, stop once empty).
fn difference(mut sets: Vec<Option<&Set>>, lim: SetLimits) -> Set {
    let mut dst = Set::new();
    let Some(first) = sets[0] else { return dst };
    if sets[1..].iter().any(|s| same(Some(first), *s)) {
        return dst;
    }
    let present = sets.iter().flatten().count();
    let algo_one = (first.len() * present) / 2;
    let algo_two: usize = sets.iter().flatten().map(|s| s.len()).sum();
    if algo_one <= algo_two {
        sets[1..].sort_by_key(|s| std::cmp::Reverse(s.map_or(0, Set::len)));
        for m in first.iter() {
            if !sets[1..].iter().flatten().any(|s| s.contains_item(m)) {
                dst.add_item(m, lim);
            }
        }
        return dst;
    }
    for (j, s) in sets.iter().enumerate() {
        let Some(s) = s else { continue };
        for m in s.iter() {
            if j == 0 {
                dst.add_item(m, lim);
            } else {
                dst.remove_item(m);
            }
        }
        if dst.is_empty() {
            break;
        }
    }
    dst
}

fn sunion_diff(ctx: &mut Ctx<'_>, view: &mut View<'_>, keys: &[&[u8]], dst: Option<&[u8]>, diff: bool) -> CmdResult {
    let lim = limits(ctx);
    let sets = read_sets(ctx, view, keys)?;
    let result = if diff { difference(sets, lim) } else { union(&sets, lim) };
    match dst {
        Some(dst) => store_result(ctx, view, dst, result, if diff { "sdiffstore" } else { "sunionstore" }),
        None => reply_members(ctx, &result),
    }
    Ok(())
}

/// SUNION key [key ...] → every member of any set.
pub fn sunion(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let keys = &ctx.argv[1..];
    sunion_diff(ctx, view, keys, None, false)
}

/// SUNIONSTORE destination key [key ...] → the size of the stored union.
pub fn sunionstore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (dst, keys) = (ctx.argv[1], &ctx.argv[2..]);
    sunion_diff(ctx, view, keys, Some(dst), false)
}

/// SDIFF key [key ...] → the members of the first set that no other set holds.
pub fn sdiff(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let keys = &ctx.argv[1..];
    sunion_diff(ctx, view, keys, None, true)
}

/// SDIFFSTORE destination key [key ...] → the size of the stored difference.
pub fn sdiffstore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (dst, keys) = (ctx.argv[1], &ctx.argv[2..]);
    sunion_diff(ctx, view, keys, Some(dst), true)
}

#[cfg(test)]
mod tests {
    use super::COMMANDS;

    #[test]
    fn table_is_sorted_and_in_its_group() {
        for w in COMMANDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        assert!(COMMANDS.iter().all(|c| c.group == "set" && c.acl.contains(&"@set")));
    }
}
