//! List commands: LPUSH/RPUSH(X), LPOP/RPOP, LLEN, LINDEX, LSET, LRANGE, LTRIM, LINSERT, LREM,
//! LPOS, LMOVE/RPOPLPUSH and LMPOP, with Redis 7.2's replies, error texts and checks in
//! Redis's order (which arguments are parsed before the key is looked up matters for which
//! error wins).
//!
//! Encoding changes follow Redis's conversion points: [`List::prepare_add`] before adding
//! (even when the add then fails, as LSET out of range or LINSERT without the pivot do),
//! [`List::after_remove`] after removing. The dirty counter grows as Redis's does: by the
//! number of elements pushed, popped, removed or trimmed.
//!
//! LMPOP's keys are counted by its `numkeys` argument, which a [`crate::table::KeyPos`] cannot
//! express, so it is declared `ALL_SHARDS` (it locks every shard) with no fixed key positions.
//! The blocking variants (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) need the server's blocking
//! machinery and are not here.

use resp::ReplyBuf;
use store::list::{Elem, End, List, Needle};
use store::{Db, Entry, Kind, NewValue, Object, ValueRef, View};

use crate::args::{self, is};
use crate::error::{wrong_arity, CmdError, CmdResult, NO_SUCH_KEY, SYNTAX};
use crate::handlers::{clock, lookup_kind, touch};
use crate::table::flags::*;
use crate::table::{spec, CommandSpec, KEY1, KEYS_1_2, KEYS_BUT_LAST, NUMKEYS_AT_1, NUMKEYS_AT_2};
use crate::{notify, Ctx, Handler};

const INDEX_OUT_OF_RANGE: CmdError = CmdError::fixed("ERR index out of range");
const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
const RANK_ZERO: CmdError = CmdError::fixed(
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
);

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

/// Replies with one element as a bulk string.
fn reply_elem(out: &mut ReplyBuf, e: Elem<'_>) {
    match e {
        Elem::Str(s) => out.bulk(s),
        Elem::Int(i) => out.bulk_i64(i),
    }
}

fn list_of(e: &Entry) -> Option<&List> {
    match e.value() {
        ValueRef::Object(Object::List(l)) => Some(l),
        _ => None,
    }
}

/// The list at `key` for a read command (counts a hit or miss, refreshes the access clock).
fn read_list<'d>(ctx: &Ctx<'_>, db: &'d mut Db, key: &[u8]) -> CmdResult<Option<&'d List>> {
    let Some(e) = lookup_kind(ctx, db, key, Kind::List, true)? else { return Ok(None) };
    touch(ctx, e);
    let e: &'d Entry = e;
    Ok(list_of(e))
}

/// Whether `key` holds a list, for a write command: `Ok(false)` if missing, WRONGTYPE if it
/// holds something else.
fn list_exists(ctx: &Ctx<'_>, db: &mut Db, key: &[u8]) -> CmdResult<bool> {
    Ok(lookup_kind(ctx, db, key, Kind::List, false)?.is_some())
}

fn entry_bytes(e: &Entry) -> usize {
    let obj = match e.value() {
        ValueRef::Object(o) => o.heap_size(),
        ValueRef::Inline(_) => 0,
    };
    e.alloc_bytes() + obj
}

/// Runs `f` on the list at `key` with the reply buffer and `list-max-listpack-size`, keeps the
/// memory count, refreshes the access clock and deletes the key if the list became empty.
/// `None` if `key` holds no list (callers check first, under the same lock).
fn edit_list<R>(
    ctx: &mut Ctx<'_>,
    db: &mut Db,
    key: &[u8],
    f: impl FnOnce(&mut List, &mut ReplyBuf, i64) -> R,
) -> Option<R> {
    let fill = ctx.settings.list_max_listpack_size;
    let e = db.lookup(key, ctx.now)?;
    let before = entry_bytes(e);
    touch(ctx, e);
    let Some(Object::List(list)) = e.object_mut() else { return None };
    let r = f(list, ctx.out, fill);
    let empty = list.is_empty();
    let after = entry_bytes(e);
    db.account_edit(key, before, after);
    if empty {
        db.remove(key);
    }
    Some(r)
}

/// Reports a list event, then `del` if the operation emptied (and so deleted) the list, in
/// Redis's order.
fn notify_removal(ctx: &mut Ctx<'_>, view: &mut View<'_>, event: &'static str, key: &[u8]) {
    ctx.notify(notify::LIST, event, key);
    if !view.db(ctx.db, key).contains(key, ctx.now) {
        ctx.notify(notify::GENERIC, "del", key);
    }
}

fn pop_event(end: End) -> &'static str {
    if end == End::Head {
        "lpop"
    } else {
        "rpop"
    }
}

fn push_event(end: End) -> &'static str {
    if end == End::Head {
        "lpush"
    } else {
        "rpush"
    }
}

/// Stores a new empty list at `key` (filled by the caller right away).
fn create_list(ctx: &Ctx<'_>, db: &mut Db, key: &[u8]) {
    let obj = Box::new(Object::List(List::new()));
    db.insert(Entry::new(key, NewValue::Object(obj), None, clock(ctx)));
}

/// LEFT / RIGHT (`getListPositionFromObjectOrReply`).
fn parse_end(arg: &[u8]) -> CmdResult<End> {
    if is(arg, "left") {
        Ok(End::Head)
    } else if is(arg, "right") {
        Ok(End::Tail)
    } else {
        Err(SYNTAX)
    }
}

fn to_usize(v: i64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// The inclusive range `start..=end` (negative indexes count from the tail) clamped to a list
/// of `len`, as (first position, count); `None` if empty.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((start as usize, (end - start + 1) as usize))
}

/// Replies with `n` elements from position `from`, walking towards the tail or the head.
fn reply_elems(out: &mut ReplyBuf, list: &List, from: usize, n: usize, reverse: bool) {
    out.array(n);
    for e in list.iter_from(from, reverse).take(n) {
        reply_elem(out, e);
    }
}

/// Pops up to `count` elements from `end`, replying with them as an array; returns how many.
fn pop_range(list: &mut List, out: &mut ReplyBuf, end: End, count: usize, fill: i64) -> usize {
    let len = list.len();
    let n = count.min(len);
    match end {
        End::Head => reply_elems(out, list, 0, n, false),
        End::Tail => reply_elems(out, list, len.saturating_sub(1), n, true),
    }
    let start = if end == End::Head { 0 } else { len - n };
    list.delete_range(start, n);
    list.after_remove(fill);
    n
}

// ------------------------------------------------------------------------------------------
// Pushes and pops
// ------------------------------------------------------------------------------------------

/// LPUSH / RPUSH / LPUSHX / RPUSHX key element [element ...]. `only_existing` for the X forms.
fn push_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, end: End, only_existing: bool) -> CmdResult {
    let argv = ctx.argv;
    let key = argv[1];
    let db = view.db(ctx.db, key);
    if !list_exists(ctx, db, key)? {
        if only_existing {
            ctx.out.int(0);
            return Ok(());
        }
        create_list(ctx, db, key);
    }
    let values = &argv[2..];
    let bytes = values.iter().fold(0usize, |acc, v| acc.saturating_add(v.len()));
    let len = edit_list(ctx, db, key, |list, _, fill| {
        list.prepare_add(fill, bytes, values.len());
        values.iter().for_each(|v| list.push(end, v));
        list.len()
    });
    ctx.dirty += values.len() as u64;
    ctx.notify(notify::LIST, push_event(end), key);
    ctx.signal_ready(key);
    ctx.out.int(len.unwrap_or(0) as i64);
    Ok(())
}

/// LPUSH key element [element ...]
pub fn lpush(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    push_generic(ctx, view, End::Head, false)
}

/// RPUSH key element [element ...]
pub fn rpush(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    push_generic(ctx, view, End::Tail, false)
}

/// LPUSHX key element [element ...]
pub fn lpushx(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    push_generic(ctx, view, End::Head, true)
}

/// RPUSHX key element [element ...]
pub fn rpushx(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    push_generic(ctx, view, End::Tail, true)
}

/// LPOP / RPOP key [count]: a bulk string without count, an array with it.
fn pop_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, end: End) -> CmdResult {
    if ctx.argv.len() > 3 {
        return Err(wrong_arity(&ctx.name()));
    }
    let count = match ctx.argv.get(2) {
        Some(a) => Some(args::int_in(a, 0, i64::MAX, Some(MUST_BE_POSITIVE))?),
        None => None,
    };
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    if !list_exists(ctx, db, key)? {
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let popped = match count {
        Some(0) => {
            ctx.out.array(0);
            0
        }
        Some(n) => edit_list(ctx, db, key, |l, out, fill| pop_range(l, out, end, to_usize(n), fill)).unwrap_or(0),
        None => edit_list(ctx, db, key, |l, out, fill| {
            l.pop_with(end, |e| reply_elem(out, e));
            l.after_remove(fill);
            1
        })
        .unwrap_or(0),
    };
    ctx.dirty += popped as u64;
    if popped > 0 {
        notify_removal(ctx, view, pop_event(end), key);
    }
    Ok(())
}

/// LPOP key [count]
pub fn lpop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    pop_generic(ctx, view, End::Head)
}

/// RPOP key [count]
pub fn rpop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    pop_generic(ctx, view, End::Tail)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] → [key, [elements]] from the first
/// non-empty list, or a null array.
pub fn lmpop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let numkeys = args::int_in(argv[1], 1, i64::MAX, Some("ERR numkeys should be greater than 0"))?;
    let where_idx =
        usize::try_from(numkeys).ok().and_then(|n| n.checked_add(2)).filter(|&w| w < argv.len()).ok_or(SYNTAX)?;
    let end = parse_end(argv[where_idx])?;
    let count = parse_lmpop_count(&argv[where_idx + 1..])?;
    for &key in &argv[2..where_idx] {
        let db = view.db(ctx.db, key);
        if !list_exists(ctx, db, key)? {
            continue;
        }
        ctx.out.array(2);
        ctx.out.bulk(key);
        let popped = edit_list(ctx, db, key, |l, out, fill| pop_range(l, out, end, count, fill));
        ctx.dirty += popped.unwrap_or(0) as u64;
        notify_removal(ctx, view, pop_event(end), key);
        return Ok(());
    }
    ctx.out.null_array();
    Ok(())
}

/// LMPOP's options after LEFT|RIGHT: at most one `COUNT n` (n >= 1); 1 by default.
fn parse_lmpop_count(opts: &[&[u8]]) -> CmdResult<usize> {
    match opts {
        [] => Ok(1),
        [word, n] if is(word, "count") => {
            Ok(to_usize(args::int_in(n, 1, i64::MAX, Some("ERR count should be greater than 0"))?))
        }
        [word, n, ..] if is(word, "count") => {
            args::int_in(n, 1, i64::MAX, Some("ERR count should be greater than 0"))?;
            Err(SYNTAX)
        }
        _ => Err(SYNTAX),
    }
}

// ------------------------------------------------------------------------------------------
// Reads
// ------------------------------------------------------------------------------------------

/// LLEN key
pub fn llen(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let len = read_list(ctx, view.db(ctx.db, key), key)?.map_or(0, List::len);
    ctx.out.int(len as i64);
    Ok(())
}

/// LINDEX key index (the key is looked up before the index is parsed, as in Redis)
pub fn lindex(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let Some(list) = read_list(ctx, view.db(ctx.db, key), key)? else {
        ctx.out.null();
        return Ok(());
    };
    let index = args::int(ctx.argv[2])?;
    match list.get(index) {
        Some(e) => reply_elem(ctx.out, e),
        None => ctx.out.null(),
    }
    Ok(())
}

/// LRANGE key start stop
pub fn lrange(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (start, stop) = (args::int(ctx.argv[2])?, args::int(ctx.argv[3])?);
    let key = ctx.argv[1];
    let Some(list) = read_list(ctx, view.db(ctx.db, key), key)? else {
        ctx.out.array(0);
        return Ok(());
    };
    match clamp_range(start, stop, list.len()) {
        Some((from, n)) => reply_elems(ctx.out, list, from, n, false),
        None => ctx.out.array(0),
    }
    Ok(())
}

/// LPOS's options.
struct LposOptions {
    /// 1-based match rank; negative searches from the tail.
    rank: i64,
    /// `None`: reply with one index; `Some(0)`: all matches; `Some(n)`: up to n.
    count: Option<usize>,
    /// Elements to examine (0: all).
    maxlen: usize,
}

fn parse_lpos(opts: &[&[u8]]) -> CmdResult<LposOptions> {
    let mut o = LposOptions { rank: 1, count: None, maxlen: 0 };
    let mut i = 0;
    while i < opts.len() {
        let Some(&value) = opts.get(i + 1) else { return Err(SYNTAX) };
        let word = opts[i];
        if is(word, "rank") {
            o.rank = args::int_in(value, -i64::MAX, i64::MAX, None)?;
            if o.rank == 0 {
                return Err(RANK_ZERO);
            }
        } else if is(word, "count") {
            o.count = Some(to_usize(args::int_in(value, 0, i64::MAX, Some("ERR COUNT can't be negative"))?));
        } else if is(word, "maxlen") {
            o.maxlen = to_usize(args::int_in(value, 0, i64::MAX, Some("ERR MAXLEN can't be negative"))?);
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    Ok(o)
}

/// Indexes of the matches LPOS reports, scanning as `lposCommand` does.
fn lpos_matches(list: &List, needle: &Needle<'_>, o: &LposOptions) -> Vec<usize> {
    let len = list.len();
    let reverse = o.rank < 0;
    let rank = o.rank.unsigned_abs();
    let wanted = match o.count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => n,
    };
    let start = if reverse { len.saturating_sub(1) } else { 0 };
    let limit = if o.maxlen == 0 { len } else { o.maxlen.min(len) };
    let mut found = Vec::new();
    let mut seen = 0u64;
    for (scanned, e) in list.iter_from(start, reverse).take(limit).enumerate() {
        if !e.matches(needle) {
            continue;
        }
        seen += 1;
        if seen >= rank {
            found.push(if reverse { len - scanned - 1 } else { scanned });
            if found.len() >= wanted {
                break;
            }
        }
    }
    found
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let o = parse_lpos(&ctx.argv[3..])?;
    let (key, element) = (ctx.argv[1], ctx.argv[2]);
    let Some(list) = read_list(ctx, view.db(ctx.db, key), key)? else {
        match o.count {
            Some(_) => ctx.out.array(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let found = lpos_matches(list, &Needle::new(element), &o);
    match (o.count, found.first()) {
        (Some(_), _) => {
            ctx.out.array(found.len());
            found.iter().for_each(|&i| ctx.out.int(i as i64));
        }
        (None, Some(&i)) => ctx.out.int(i as i64),
        (None, None) => ctx.out.null(),
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Edits
// ------------------------------------------------------------------------------------------

/// LSET key index element ("no such key" before the index is parsed, as in Redis)
pub fn lset(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, value) = (ctx.argv[1], ctx.argv[3]);
    let db = view.db(ctx.db, key);
    if !list_exists(ctx, db, key)? {
        return Err(NO_SUCH_KEY);
    }
    let index = args::int(ctx.argv[2])?;
    let replaced = edit_list(ctx, db, key, |list, _, fill| {
        list.prepare_add(fill, value.len(), 1);
        let ok = list.set(index, value);
        if ok {
            list.after_remove(fill);
        }
        ok
    });
    if replaced != Some(true) {
        return Err(INDEX_OUT_OF_RANGE);
    }
    ctx.dirty += 1;
    ctx.notify(notify::LIST, "lset", key);
    ctx.out.ok();
    Ok(())
}

/// LINSERT key BEFORE|AFTER pivot element → the new length, -1 without the pivot, 0 if
/// the key is missing.
pub fn linsert(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let after = match ctx.argv[2] {
        w if is(w, "after") => true,
        w if is(w, "before") => false,
        _ => return Err(SYNTAX),
    };
    let (key, pivot, value) = (ctx.argv[1], ctx.argv[3], ctx.argv[4]);
    let db = view.db(ctx.db, key);
    if !list_exists(ctx, db, key)? {
        ctx.out.int(0);
        return Ok(());
    }
    let len = edit_list(ctx, db, key, |list, _, fill| {
        list.prepare_add(fill, value.len(), 1);
        list.insert(pivot, value, after).then(|| list.len())
    });
    match len.flatten() {
        Some(n) => {
            ctx.dirty += 1;
            ctx.notify(notify::LIST, "linsert", key);
            ctx.out.int(n as i64);
        }
        None => ctx.out.int(-1),
    }
    Ok(())
}

/// LREM key count element → how many were removed.
pub fn lrem(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let count = args::int(ctx.argv[2])?;
    let (key, value) = (ctx.argv[1], ctx.argv[3]);
    let db = view.db(ctx.db, key);
    if !list_exists(ctx, db, key)? {
        ctx.out.int(0);
        return Ok(());
    }
    let removed = edit_list(ctx, db, key, |list, _, fill| {
        let n = list.remove(value, count);
        if n > 0 {
            list.after_remove(fill);
        }
        n
    })
    .unwrap_or(0);
    ctx.dirty += removed as u64;
    if removed > 0 {
        notify_removal(ctx, view, "lrem", key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (start, stop) = (args::int(ctx.argv[2])?, args::int(ctx.argv[3])?);
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    if list_exists(ctx, db, key)? {
        let trimmed = edit_list(ctx, db, key, |list, _, fill| {
            let len = list.len();
            let (ltrim, rtrim) = match clamp_range(start, stop, len) {
                Some((from, n)) => (from, len - from - n),
                None => (len, 0),
            };
            list.delete_range(0, ltrim);
            list.delete_range(len - ltrim - rtrim, rtrim);
            list.after_remove(fill);
            ltrim + rtrim
        });
        ctx.dirty += trimmed.unwrap_or(0) as u64;
        notify_removal(ctx, view, "ltrim", key);
    }
    ctx.out.ok();
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Moves
// ------------------------------------------------------------------------------------------

/// Bytes Redis counts for a moved element when deciding the destination's encoding: an
/// integer popped from a quicklist becomes an integer object, whose length it does not count.
fn moved_bytes(value: &[u8], was_int_in_quicklist: bool) -> usize {
    if was_int_in_quicklist {
        0
    } else {
        value.len()
    }
}

/// Pops from `from` of `list`: the element, and whether it was an integer in a quicklist.
fn pop_for_move(list: &mut List, from: End) -> Option<(Vec<u8>, bool)> {
    let quick = list.encoding() == "quicklist";
    list.pop_with(from, |e| (e.to_vec(), quick && e.is_int()))
}

/// LMOVE / RPOPLPUSH: pops from `src`'s `from` end, pushes onto `dst`'s `to` end, replies
/// with the element (nil if `src` is missing).
fn move_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, from: End, to: End) -> CmdResult {
    let (src, dst) = (ctx.argv[1], ctx.argv[2]);
    if !list_exists(ctx, view.db(ctx.db, src), src)? {
        ctx.out.null();
        return Ok(());
    }
    let dst_exists = list_exists(ctx, view.db(ctx.db, dst), dst)?;
    if src == dst {
        let db = view.db(ctx.db, src);
        edit_list(ctx, db, src, |list, out, fill| {
            let Some((v, int)) = pop_for_move(list, from) else { return };
            list.prepare_add(fill, moved_bytes(&v, int), 1);
            list.push(to, &v);
            list.after_remove(fill);
            out.bulk(&v);
        });
    } else {
        let popped = edit_list(ctx, view.db(ctx.db, src), src, |list, _, fill| {
            let r = pop_for_move(list, from);
            list.after_remove(fill);
            r
        });
        let Some((v, int)) = popped.flatten() else {
            ctx.out.null();
            return Ok(());
        };
        let db = view.db(ctx.db, dst);
        if !dst_exists {
            create_list(ctx, db, dst);
        }
        edit_list(ctx, db, dst, |list, out, fill| {
            list.prepare_add(fill, moved_bytes(&v, int), 1);
            list.push(to, &v);
            out.bulk(&v);
        });
    }
    ctx.dirty += 1;
    // Redis reports the push on the destination before the pop on the source.
    ctx.notify(notify::LIST, push_event(to), dst);
    notify_removal(ctx, view, pop_event(from), src);
    ctx.signal_ready(dst);
    Ok(())
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let from = parse_end(ctx.argv[3])?;
    let to = parse_end(ctx.argv[4])?;
    move_generic(ctx, view, from, to)
}

/// RPOPLPUSH source destination
pub fn rpoplpush(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    move_generic(ctx, view, End::Tail, End::Head)
}

// ------------------------------------------------------------------------------------------
// Blocking forms
// ------------------------------------------------------------------------------------------

/// A blocking command's timeout in seconds (fractions allowed; 0 waits forever), as an
/// absolute deadline in unix ms.
pub(crate) fn parse_timeout(ctx: &Ctx<'_>, arg: &[u8]) -> CmdResult<Option<i64>> {
    let text = std::str::from_utf8(arg).ok().filter(|t| !t.is_empty() && !t.starts_with(char::is_whitespace));
    let secs: f64 = text
        .and_then(|t| t.parse().ok())
        .filter(|v: &f64| v.is_finite())
        .ok_or(CmdError::fixed("ERR timeout is not a float or out of range"))?;
    if secs < 0.0 {
        return Err(CmdError::fixed("ERR timeout is negative"));
    }
    let ms = secs * 1000.0;
    if ms > (i64::MAX / 2) as f64 {
        return Err(CmdError::fixed("ERR timeout is out of range"));
    }
    let ms = ms as i64;
    // A timeout that rounds to 0 ms but was not 0 still times out (after 1 ms), as in Redis.
    Ok(match (ms, secs > 0.0) {
        (0, false) => None,
        (0, true) => Some(ctx.now + 1),
        (ms, _) => Some(ctx.now + ms),
    })
}

/// Nothing to pop: block (or, where blocking is not allowed, reply with `null`).
pub(crate) fn block_or(ctx: &mut Ctx<'_>, deadline: Option<i64>, keys: &[&[u8]], null: fn(&mut ReplyBuf)) -> CmdResult {
    if ctx.may_block {
        ctx.block = Some(crate::Block { deadline, keys: keys.iter().map(|k| k.to_vec()).collect(), rerun: None });
    } else {
        null(ctx.out);
    }
    Ok(())
}

/// BLPOP / BRPOP key [key ...] timeout → [key, element] from the first non-empty list.
fn bpop_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, end: End) -> CmdResult {
    let argv = ctx.argv;
    let deadline = parse_timeout(ctx, argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    for &key in keys {
        let db = view.db(ctx.db, key);
        if !list_exists(ctx, db, key)? {
            continue;
        }
        ctx.out.array(2);
        ctx.out.bulk(key);
        edit_list(ctx, db, key, |l, out, fill| {
            l.pop_with(end, |e| reply_elem(out, e));
            l.after_remove(fill);
        });
        ctx.dirty += 1;
        notify_removal(ctx, view, pop_event(end), key);
        return Ok(());
    }
    block_or(ctx, deadline, keys, ReplyBuf::null_array)
}

/// BLPOP key [key ...] timeout
pub fn blpop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    bpop_generic(ctx, view, End::Head)
}

/// BRPOP key [key ...] timeout
pub fn brpop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    bpop_generic(ctx, view, End::Tail)
}

/// BLMOVE / BRPOPLPUSH: LMOVE that waits for the source to have an element.
fn bmove_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, from: End, to: End, timeout: &[u8]) -> CmdResult {
    let deadline = parse_timeout(ctx, timeout)?;
    let src = ctx.argv[1];
    if list_exists(ctx, view.db(ctx.db, src), src)? {
        return move_generic(ctx, view, from, to);
    }
    // Redis checks the destination's type before blocking too.
    let dst = ctx.argv[2];
    list_exists(ctx, view.db(ctx.db, dst), dst)?;
    block_or(ctx, deadline, &[src], ReplyBuf::null)
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn blmove(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let from = parse_end(ctx.argv[3])?;
    let to = parse_end(ctx.argv[4])?;
    bmove_generic(ctx, view, from, to, ctx.argv[5])
}

/// BRPOPLPUSH source destination timeout
pub fn brpoplpush(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    bmove_generic(ctx, view, End::Tail, End::Head, ctx.argv[3])
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn blmpop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let numkeys = args::int_in(argv[2], 1, i64::MAX, Some("ERR numkeys should be greater than 0"))?;
    let where_idx =
        usize::try_from(numkeys).ok().and_then(|n| n.checked_add(3)).filter(|&w| w < argv.len()).ok_or(SYNTAX)?;
    let end = parse_end(argv[where_idx])?;
    let count = parse_lmpop_count(&argv[where_idx + 1..])?;
    // Redis parses the timeout last.
    let deadline = parse_timeout(ctx, argv[1])?;
    let keys = &argv[3..where_idx];
    for &key in keys {
        let db = view.db(ctx.db, key);
        if !list_exists(ctx, db, key)? {
            continue;
        }
        ctx.out.array(2);
        ctx.out.bulk(key);
        let n = edit_list(ctx, db, key, |l, out, fill| pop_range(l, out, end, count, fill)).unwrap_or(0);
        ctx.dirty += n as u64;
        notify_removal(ctx, view, pop_event(end), key);
        return Ok(());
    }
    block_or(ctx, deadline, keys, ReplyBuf::null_array)
}

// ------------------------------------------------------------------------------------------
// Command table
// ------------------------------------------------------------------------------------------

use Handler::Keyspace as K;

/// The list commands, sorted by name. Flags, key positions, ACL categories and docs as Redis
/// 7.2's COMMAND INFO / COMMAND DOCS report them.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec!("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, KEYS_1_2, ["@write", "@list", "@slow", "@blocking"], "list", "6.2.0", K(blmove), "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", "O(1)"),
    spec!("blmpop", -5, WRITE | BLOCKING | MOVABLEKEYS, NUMKEYS_AT_2, ["@write", "@list", "@slow", "@blocking"], "list", "7.0.0", K(blmpop), "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "O(N+M) where N is the number of provided keys and M is the number of elements returned."),
    spec!("blpop", -3, WRITE | NOSCRIPT | BLOCKING, KEYS_BUT_LAST, ["@write", "@list", "@slow", "@blocking"], "list", "2.0.0", K(blpop), "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", "O(N) where N is the number of provided keys."),
    spec!("brpop", -3, WRITE | NOSCRIPT | BLOCKING, KEYS_BUT_LAST, ["@write", "@list", "@slow", "@blocking"], "list", "2.0.0", K(brpop), "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was removed.", "O(N) where N is the number of provided keys."),
    spec!("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, KEYS_1_2, ["@write", "@list", "@slow", "@blocking"], "list", "2.2.0", K(brpoplpush), "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", "O(1)"),
    spec!("lindex", 3, READONLY, KEY1, ["@read", "@list", "@slow"], "list", "1.0.0", K(lindex), "Returns an element from a list by its index.", "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1)."),
    spec!("linsert", 5, WRITE | DENYOOM, KEY1, ["@write", "@list", "@slow"], "list", "2.2.0", K(linsert), "Inserts an element before or after another element in a list.", "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N)."),
    spec!("llen", 2, READONLY | FAST, KEY1, ["@read", "@list", "@fast"], "list", "1.0.0", K(llen), "Returns the length of a list.", "O(1)"),
    spec!("lmove", 5, WRITE | DENYOOM, KEYS_1_2, ["@write", "@list", "@slow"], "list", "6.2.0", K(lmove), "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", "O(1)"),
    spec!("lmpop", -4, WRITE | MOVABLEKEYS, NUMKEYS_AT_1, ["@write", "@list", "@slow"], "list", "7.0.0", K(lmpop), "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", "O(N+M) where N is the number of provided keys and M is the number of elements returned."),
    spec!("lpop", -2, WRITE | FAST, KEY1, ["@write", "@list", "@fast"], "list", "1.0.0", K(lpop), "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", "O(N) where N is the number of elements returned"),
    spec!("lpos", -3, READONLY, KEY1, ["@read", "@list", "@slow"], "list", "6.0.6", K(lpos), "Returns the index of matching elements in a list.", "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time."),
    spec!("lpush", -3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@list", "@fast"], "list", "1.0.0", K(lpush), "Prepends one or more elements to a list. Creates the key if it doesn't exist.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    spec!("lpushx", -3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@list", "@fast"], "list", "2.2.0", K(lpushx), "Prepends one or more elements to a list only when the list exists.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    spec!("lrange", 4, READONLY, KEY1, ["@read", "@list", "@slow"], "list", "1.0.0", K(lrange), "Returns a range of elements from a list.", "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range."),
    spec!("lrem", 4, WRITE, KEY1, ["@write", "@list", "@slow"], "list", "1.0.0", K(lrem), "Removes elements from a list. Deletes the list if the last element was removed.", "O(N+M) where N is the length of the list and M is the number of elements removed."),
    spec!("lset", 4, WRITE | DENYOOM, KEY1, ["@write", "@list", "@slow"], "list", "1.0.0", K(lset), "Sets the value of an element in a list by its index.", "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1)."),
    spec!("ltrim", 4, WRITE, KEY1, ["@write", "@list", "@slow"], "list", "1.0.0", K(ltrim), "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", "O(N) where N is the number of elements to be removed by the operation."),
    spec!("rpop", -2, WRITE | FAST, KEY1, ["@write", "@list", "@fast"], "list", "1.0.0", K(rpop), "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", "O(N) where N is the number of elements returned"),
    spec!("rpoplpush", 3, WRITE | DENYOOM, KEYS_1_2, ["@write", "@list", "@slow"], "list", "1.2.0", K(rpoplpush), "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", "O(1)"),
    spec!("rpush", -3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@list", "@fast"], "list", "1.0.0", K(rpush), "Appends one or more elements to a list. Creates the key if it doesn't exist.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    spec!("rpushx", -3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@list", "@fast"], "list", "2.2.0", K(rpushx), "Appends an element to a list only when the list exists.", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_in_the_list_group() {
        for w in COMMANDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        assert!(COMMANDS.iter().all(|c| c.group == "list"));
    }

    #[test]
    fn ranges_clamp_like_redis() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 5)));
        assert_eq!(clamp_range(-100, 100, 5), Some((0, 5)));
        assert_eq!(clamp_range(2, 1, 5), None);
        assert_eq!(clamp_range(5, 10, 5), None);
        assert_eq!(clamp_range(-2, -1, 5), Some((3, 2)));
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 5), Some((0, 5)));
        assert_eq!(clamp_range(i64::MAX, i64::MIN, 5), None);
        assert_eq!(clamp_range(0, -6, 5), None);
    }

    #[test]
    fn lmpop_count_option() {
        assert_eq!(parse_lmpop_count(&[]), Ok(1));
        assert_eq!(parse_lmpop_count(&[b"COUNT", b"3"]), Ok(3));
        assert_eq!(
            parse_lmpop_count(&[b"count", b"0"]).map_err(|e| e.0),
            Err("ERR count should be greater than 0".into())
        );
        assert_eq!(parse_lmpop_count(&[b"count", b"1", b"count", b"2"]), Err(SYNTAX));
        assert_eq!(parse_lmpop_count(&[b"count"]), Err(SYNTAX));
        assert_eq!(parse_lmpop_count(&[b"x", b"1"]), Err(SYNTAX));
    }
}
