//! Sorted-set commands, as Redis 7.2's `t_zset.c`: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE,
//! ZCARD, ZCOUNT, ZLEXCOUNT, ZRANK, ZREVRANK, the ZRANGE family (and ZRANGESTORE), the
//! ZREMRANGEBY* commands, ZPOPMIN/ZPOPMAX/ZMPOP and their blocking forms, ZRANDMEMBER,
//! ZUNION/ZINTER/ZDIFF (and STORE forms), ZINTERCARD and ZSCAN.
//!
//! Arguments are checked in Redis's order (options, then ranges, then the key's type), since
//! which error a client sees for a doubly wrong command is part of the behaviour. The
//! encodings and their conversions live in `store::zset`; the thresholds come from
//! [`crate::Settings`] on every command, so CONFIG SET applies immediately.

use resp::ReplyBuf;
use store::zset::{LexBound, LexRange, ScoreRange, ZSet, ZSetLimits};
use store::{Db, Entry, Kind, Object, ValueRef, View};

use crate::args::{self, is};
use crate::error::{wrong_arity, CmdError, CmdResult, NOT_FLOAT, SYNTAX, WRONGTYPE};
use crate::handlers::hashes::{check_reply_size, empty_scan, insert_object, parse_scan_opts, touch_kind};
use crate::handlers::lists::{block_or, parse_timeout};
use crate::handlers::{edit_object, store_object};
use crate::table::spec;
use crate::table::{
    flags::*, CommandSpec, KEY1, KEY1_NUMKEYS_AT_2, KEYS_1_2, KEYS_BUT_LAST, NUMKEYS_AT_1, NUMKEYS_AT_2,
};
use crate::{notify, numfmt, Ctx, Handler::Keyspace as K};

const NOT_FLOAT_RANGE: CmdError = CmdError::fixed("ERR min or max is not a float");
const NOT_LEX_RANGE: CmdError = CmdError::fixed("ERR min or max not valid string range item");
const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
const NAN_RESULT: CmdError = CmdError::fixed("ERR resulting score is not a number (NaN)");

// ---------------------------------------------------------------------------------------------
// Helpers

/// The sorted-set encoding thresholds in force.
fn limits(ctx: &Ctx<'_>) -> ZSetLimits {
    ZSetLimits {
        max_listpack_entries: ctx.settings.zset_max_listpack_entries,
        max_listpack_value: ctx.settings.zset_max_listpack_value,
    }
}

fn zset_of(e: &Entry) -> Option<&ZSet> {
    match e.value() {
        ValueRef::Object(Object::ZSet(z)) => Some(z),
        _ => None,
    }
}

/// The sorted set at `key`: `Ok(None)` if missing, WRONGTYPE for other types. `read` counts a
/// keyspace hit or miss.
fn read_zset<'d>(ctx: &Ctx<'_>, db: &'d mut Db, key: &[u8], read: bool) -> CmdResult<Option<&'d ZSet>> {
    match touch_kind(ctx, db, key, Kind::ZSet, read)? {
        None => Ok(None),
        Some(e) => {
            let e: &'d Entry = e;
            zset_of(e).map(Some).ok_or(WRONGTYPE)
        }
    }
}

/// Runs `edit` on the sorted set at `key` (which the caller found), deleting it if it empties.
fn edit_zset<R>(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], edit: impl FnOnce(&mut ZSet) -> R) -> CmdResult<R> {
    edit_object(ctx, db, key, |o| match o {
        Object::ZSet(z) => Some(edit(z)),
        _ => None,
    })
    .ok_or(WRONGTYPE)
}

/// Writes a score as Redis's `addReplyDouble` does (a `,` double in RESP3).
fn reply_score(out: &mut ReplyBuf, s: f64) {
    let mut text = Vec::with_capacity(numfmt::DOUBLE_REPLY_MAX_CHARS);
    numfmt::append_double_reply(&mut text, s);
    out.double_text(&text);
}

/// Reports `event` on `key`, then `del` if the operation emptied (and so deleted) the set.
fn notify_removal(ctx: &mut Ctx<'_>, db: &mut Db, event: &'static str, key: &[u8]) {
    ctx.notify(notify::ZSET, event, key);
    if !db.contains(key, ctx.now) {
        ctx.notify(notify::GENERIC, "del", key);
    }
}

/// Stores a computed sorted set at `dst` (replacing any value of any type, clearing its TTL)
/// and reports `event`, or deletes `dst` when the result is empty. Replies with the size.
fn store_result(ctx: &mut Ctx<'_>, view: &mut View<'_>, dst: &[u8], result: ZSet, event: &'static str) {
    let db = view.db(ctx.db, dst);
    let n = result.len();
    if n > 0 {
        store_object(ctx, db, dst, Object::ZSet(result));
        ctx.notify(notify::ZSET, event, dst);
        ctx.signal_ready(dst);
    } else if db.contains(dst, ctx.now) {
        db.remove(dst);
        ctx.dirty += 1;
        ctx.notify(notify::GENERIC, "del", dst);
    }
    ctx.out.int(n as i64);
}

/// Parses a score (ZADD, ZINCRBY): Redis's `getDoubleFromObject`.
fn parse_score(arg: &[u8]) -> CmdResult<f64> {
    numfmt::parse_f64(arg).ok_or(NOT_FLOAT)
}

/// One end of a score range: `(` makes it exclusive.
fn parse_score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.strip_prefix(b"(") {
        Some(rest) => numfmt::parse_range_f64(rest).map(|v| (v, true)),
        None => numfmt::parse_range_f64(arg).map(|v| (v, false)),
    }
}

/// Redis's `zslParseRange`.
fn parse_score_range(min: &[u8], max: &[u8]) -> CmdResult<ScoreRange> {
    let (min, minex) = parse_score_bound(min).ok_or(NOT_FLOAT_RANGE)?;
    let (max, maxex) = parse_score_bound(max).ok_or(NOT_FLOAT_RANGE)?;
    Ok(ScoreRange { min, max, minex, maxex })
}

/// One end of a lex range (Redis's `zslParseLexRangeItem`: the check after `+`/`-` is on a C
/// string, so a NUL byte ends it).
fn parse_lex_bound(arg: &[u8]) -> Option<LexBound<'_>> {
    let alone = arg.len() == 1 || arg.get(1) == Some(&0);
    match arg.first() {
        Some(b'+') if alone => Some(LexBound::PosInf),
        Some(b'-') if alone => Some(LexBound::NegInf),
        Some(b'(') => Some(LexBound::Excl(&arg[1..])),
        Some(b'[') => Some(LexBound::Incl(&arg[1..])),
        _ => None,
    }
}

fn parse_lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> CmdResult<LexRange<'a>> {
    let min = parse_lex_bound(min).ok_or(NOT_LEX_RANGE)?;
    let max = parse_lex_bound(max).ok_or(NOT_LEX_RANGE)?;
    Ok(LexRange { min, max })
}

/// Redis's rank sanitising (ZRANGE, ZREMRANGEBYRANK): the inclusive `start..=end` with
/// negative indexes from the end, as ascending ranks `lo..hi`; `None` if empty.
fn rank_window(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize + 1))
}

/// Applies LIMIT offset count to the ranks `lo..hi` walked forward (or backward with `rev`):
/// a negative offset gives nothing, a negative count means all (as Redis's loops do).
fn limit_window(lo: usize, hi: usize, rev: bool, offset: i64, limit: i64) -> (usize, usize) {
    let n = hi - lo;
    let Ok(off) = usize::try_from(offset) else { return (0, 0) };
    if off >= n {
        return (0, 0);
    }
    let take = usize::try_from(limit).map_or(n - off, |l| l.min(n - off));
    if rev {
        (hi - off - take, hi - off)
    } else {
        (lo + off, lo + off + take)
    }
}

/// Writes the elements of ranks `lo..hi` (descending with `rev`): an array of members, with
/// scores interleaved (RESP2) or as [member, score] pairs (RESP3) when `withscores`.
fn reply_range(out: &mut ReplyBuf, z: &ZSet, (lo, hi): (usize, usize), rev: bool, withscores: bool) {
    let n = hi.saturating_sub(lo);
    let pairs = withscores && out.is_resp3();
    out.array(if withscores && !pairs { n * 2 } else { n });
    z.for_range(lo, hi, rev, |m, s| {
        if pairs {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            reply_score(out, s);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// ZADD / ZINCRBY

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one element's add did.
enum Added {
    New,
    Updated,
    Unchanged,
    /// NX/XX/GT/LT refused it.
    Skipped,
}

/// Redis's `zsetAdd` for one element; `Err` when an increment gives NaN. `score` becomes the
/// element's final score.
fn zset_add(z: &mut ZSet, member: &[u8], score: &mut f64, f: AddFlags, lim: ZSetLimits) -> CmdResult<Added> {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok(Added::Skipped);
            }
            if f.incr {
                *score += cur;
                if score.is_nan() {
                    return Err(NAN_RESULT);
                }
            }
            if (f.lt && *score >= cur) || (f.gt && *score <= cur) {
                return Ok(Added::Skipped);
            }
            if *score == cur {
                return Ok(Added::Unchanged);
            }
            z.set_score(member, cur, *score);
            Ok(Added::Updated)
        }
        None if f.xx => Ok(Added::Skipped),
        None => {
            z.insert_new(member, *score, lim);
            Ok(Added::New)
        }
    }
}

/// ZADD and ZINCRBY (which is ZADD with INCR): Redis's `zaddGenericCommand`.
fn zadd_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, mut f: AddFlags) -> CmdResult {
    let (argv, key, lim) = (ctx.argv, ctx.argv[1], limits(ctx));
    let mut at = 2;
    while at < argv.len() {
        let a = argv[at];
        match () {
            _ if is(a, "nx") => f.nx = true,
            _ if is(a, "xx") => f.xx = true,
            _ if is(a, "ch") => f.ch = true,
            _ if is(a, "incr") => f.incr = true,
            _ if is(a, "gt") => f.gt = true,
            _ if is(a, "lt") => f.lt = true,
            _ => break,
        }
        at += 1;
    }
    let rest = &argv[at..];
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(SYNTAX);
    }
    if f.nx && f.xx {
        return Err(CmdError::fixed("ERR XX and NX options at the same time are not compatible"));
    }
    if [f.gt, f.lt, f.nx].iter().filter(|&&x| x).count() > 1 {
        return Err(CmdError::fixed("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if f.incr && rest.len() > 2 {
        return Err(CmdError::fixed("ERR INCR option supports a single increment-element pair"));
    }
    for pair in rest.chunks_exact(2) {
        parse_score(pair[0])?;
    }
    let db = view.db(ctx.db, key);
    let exists = touch_kind(ctx, db, key, Kind::ZSet, false)?.is_some();
    let (mut added, mut updated, mut last) = (0u64, 0u64, None);
    let mut run = |z: &mut ZSet| -> CmdResult {
        for pair in rest.chunks_exact(2) {
            let mut score = parse_score(pair[0])?;
            match zset_add(z, pair[1], &mut score, f, lim)? {
                Added::New => added += 1,
                Added::Updated => updated += 1,
                Added::Unchanged => {}
                Added::Skipped => continue,
            }
            last = Some(score);
        }
        Ok(())
    };
    if exists {
        edit_zset(ctx, db, key, |z| {
            z.maybe_convert(rest.len() / 2, lim);
            run(z)
        })??;
    } else if !f.xx {
        let longest = rest.chunks_exact(2).map(|p| p[1].len()).max().unwrap_or(0);
        let mut z = ZSet::new_for(rest.len() / 2, longest, lim);
        run(&mut z)?;
        if !z.is_empty() {
            insert_object(ctx, db, key, Object::ZSet(z));
            ctx.signal_ready(key);
        }
    }
    ctx.dirty += added + updated;
    if added + updated > 0 {
        ctx.notify(notify::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    if f.incr {
        match last {
            Some(s) => reply_score(ctx.out, s),
            None => ctx.out.null(),
        }
    } else {
        ctx.out.int((added + if f.ch { updated } else { 0 }) as i64);
    }
    Ok(())
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zadd_generic(ctx, view, AddFlags::default())
}

/// ZINCRBY key increment member
pub fn zincrby(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zadd_generic(ctx, view, AddFlags { incr: true, ..AddFlags::default() })
}

// ---------------------------------------------------------------------------------------------
// ZREM and the ZREMRANGEBY* commands

/// ZREM key member [member ...] → the number of members removed.
pub fn zrem(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let db = view.db(ctx.db, key);
    if touch_kind(ctx, db, key, Kind::ZSet, false)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let removed = edit_zset(ctx, db, key, |z| {
        let mut n = 0;
        for m in &argv[2..] {
            n += z.remove(m).is_some() as usize;
            if z.is_empty() {
                break;
            }
        }
        n
    })?;
    ctx.dirty += removed as u64;
    if removed > 0 {
        notify_removal(ctx, db, "zrem", key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

/// How a ZREMRANGEBY* command names its range.
enum RemRange<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

fn zremrange_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, range: RemRange<'_>, event: &'static str) -> CmdResult {
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    let Some(z) = read_zset(ctx, db, key, false)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let window = match range {
        RemRange::Rank(start, end) => rank_window(start, end, z.len()),
        RemRange::Score(r) => Some(z.score_range(&r)),
        RemRange::Lex(r) => Some(z.lex_range(&r, false)),
    };
    let Some((lo, hi)) = window.filter(|(lo, hi)| lo < hi) else {
        ctx.out.int(0);
        return Ok(());
    };
    let removed = edit_zset(ctx, db, key, |z| z.remove_ranks(lo, hi))?;
    ctx.dirty += removed as u64;
    notify_removal(ctx, db, event, key);
    ctx.out.int(removed as i64);
    Ok(())
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (start, end) = (args::int(ctx.argv[2])?, args::int(ctx.argv[3])?);
    zremrange_generic(ctx, view, RemRange::Rank(start, end), "zremrangebyrank")
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let range = parse_score_range(ctx.argv[2], ctx.argv[3])?;
    zremrange_generic(ctx, view, RemRange::Score(range), "zremrangebyscore")
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let range = parse_lex_range(argv[2], argv[3])?;
    zremrange_generic(ctx, view, RemRange::Lex(range), "zremrangebylex")
}

// ---------------------------------------------------------------------------------------------
// Point reads

/// ZSCORE key member → the score, or null.
pub fn zscore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, member) = (ctx.argv[1], ctx.argv[2]);
    match read_zset(ctx, view.db(ctx.db, key), key, true)?.and_then(|z| z.score(member)) {
        Some(s) => reply_score(ctx.out, s),
        None => ctx.out.null(),
    }
    Ok(())
}

/// ZMSCORE key member [member ...] → a score or null for each member.
pub fn zmscore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let z = read_zset(ctx, view.db(ctx.db, key), key, true)?;
    ctx.out.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => reply_score(ctx.out, s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// ZCARD key
pub fn zcard(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let n = read_zset(ctx, view.db(ctx.db, key), key, true)?.map_or(0, ZSet::len);
    ctx.out.int(n as i64);
    Ok(())
}

/// ZCOUNT key min max
pub fn zcount(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let range = parse_score_range(ctx.argv[2], ctx.argv[3])?;
    let n = read_zset(ctx, view.db(ctx.db, key), key, true)?.map_or(0, |z| {
        let (lo, hi) = z.score_range(&range);
        hi - lo
    });
    ctx.out.int(n as i64);
    Ok(())
}

/// ZLEXCOUNT key min max
pub fn zlexcount(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let range = parse_lex_range(argv[2], argv[3])?;
    let n = read_zset(ctx, view.db(ctx.db, key), key, true)?.map_or(0, |z| {
        let (lo, hi) = z.lex_range(&range, false);
        hi - lo
    });
    ctx.out.int(n as i64);
    Ok(())
}

/// ZRANK / ZREVRANK key member [WITHSCORE]
fn zrank_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, rev: bool) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    if argv.len() > 4 {
        return Err(wrong_arity(&ctx.name()));
    }
    let withscore = match argv.get(3) {
        None => false,
        Some(a) if is(a, "withscore") => true,
        Some(_) => return Err(SYNTAX),
    };
    let z = read_zset(ctx, view.db(ctx.db, key), key, true)?;
    let found = z.and_then(|z| z.rank(argv[2]).map(|(r, s)| (if rev { z.len() - 1 - r } else { r }, s)));
    match (found, withscore) {
        (Some((r, _)), false) => ctx.out.int(r as i64),
        (Some((r, s)), true) => {
            ctx.out.array(2);
            ctx.out.int(r as i64);
            reply_score(ctx.out, s);
        }
        (None, false) => ctx.out.null(),
        (None, true) => ctx.out.null_array(),
    }
    Ok(())
}

/// ZRANK key member [WITHSCORE]
pub fn zrank(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrank_generic(ctx, view, false)
}

/// ZREVRANK key member [WITHSCORE]
pub fn zrevrank(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrank_generic(ctx, view, true)
}

// ---------------------------------------------------------------------------------------------
// The ZRANGE family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeBy {
    Rank,
    Score,
    Lex,
}

/// The parsed options of a ZRANGE-family command.
struct RangeArgs {
    by: RangeBy,
    rev: bool,
    withscores: bool,
    offset: i64,
    limit: i64,
}

/// Parses the options after `key min max` (Redis's `zrangeGenericCommand`, step 1). The
/// legacy commands (ZREVRANGE, ZRANGEBYSCORE...) preset the range type and direction, which
/// then cannot be given again.
fn parse_range_args(opts: &[&[u8]], preset: Option<(RangeBy, bool)>, store: bool) -> CmdResult<RangeArgs> {
    let (mut by, mut rev) = (preset.map(|p| p.0), preset.map(|p| p.1));
    let (mut withscores, mut offset, mut limit) = (false, 0, -1);
    let mut j = 0;
    while j < opts.len() {
        let (a, left) = (opts[j], opts.len() - j - 1);
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = args::int(opts[j + 1])?;
            limit = args::int(opts[j + 2])?;
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if by.is_none() && is(a, "bylex") {
            by = Some(RangeBy::Lex);
        } else if by.is_none() && is(a, "byscore") {
            by = Some(RangeBy::Score);
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    let by = by.unwrap_or(RangeBy::Rank);
    if limit != -1 && by == RangeBy::Rank {
        return Err(CmdError::fixed(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == RangeBy::Lex {
        return Err(CmdError::fixed("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    Ok(RangeArgs { by, rev: rev.unwrap_or(false), withscores, offset, limit })
}

/// A parsed range.
enum Bounds<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// The ranks a range selects (ascending `lo..hi`; walked backward when `rev`).
fn select(z: &ZSet, bounds: &Bounds<'_>, a: &RangeArgs) -> (usize, usize) {
    match bounds {
        Bounds::Rank(start, end) => match rank_window(*start, *end, z.len()) {
            // A reversed rank range counts from the top.
            Some((lo, hi)) if a.rev => (z.len() - hi, z.len() - lo),
            Some(w) => w,
            None => (0, 0),
        },
        Bounds::Score(r) => {
            let (lo, hi) = z.score_range(r);
            limit_window(lo, hi, a.rev, a.offset, a.limit)
        }
        Bounds::Lex(r) => {
            let (lo, hi) = z.lex_range(r, a.rev);
            limit_window(lo, hi, a.rev, a.offset, a.limit)
        }
    }
}

/// ZRANGE and its relatives (Redis's `zrangeGenericCommand`). `store`: ZRANGESTORE's
/// `dst src ...` form.
fn zrange_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, preset: Option<(RangeBy, bool)>, store: bool) -> CmdResult {
    let argv = ctx.argv;
    let first = if store { 2 } else { 1 };
    let key = argv[first];
    let a = parse_range_args(&argv[first + 3..], preset, store)?;
    let (mut min, mut max) = (argv[first + 1], argv[first + 2]);
    if a.rev && a.by != RangeBy::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let bounds = match a.by {
        RangeBy::Rank => Bounds::Rank(args::int(min)?, args::int(max)?),
        RangeBy::Score => Bounds::Score(parse_score_range(min, max)?),
        RangeBy::Lex => Bounds::Lex(parse_lex_range(min, max)?),
    };
    let z = read_zset(ctx, view.db(ctx.db, key), key, true)?;
    if !store {
        match z {
            Some(z) => {
                let w = select(z, &bounds, &a);
                reply_range(ctx.out, z, w, a.rev, a.withscores);
            }
            None => ctx.out.array(0),
        }
        return Ok(());
    }
    let lim = limits(ctx);
    let mut result = ZSet::default();
    if let Some(z) = z {
        let (lo, hi) = select(z, &bounds, &a);
        let mut picked: Vec<(Vec<u8>, f64)> = Vec::with_capacity(hi.saturating_sub(lo));
        z.for_range(lo, hi, a.rev, |m, s| picked.push((m.to_vec(), s)));
        let hint = if a.by == RangeBy::Rank { picked.len() } else { 0 };
        result = ZSet::new_for(hint, 0, lim);
        for (m, s) in picked {
            result.insert_new(&m, s, lim);
        }
    }
    store_result(ctx, view, argv[1], result, "zrangestore");
    Ok(())
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrange_generic(ctx, view, None, false)
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrange_generic(ctx, view, None, true)
}

/// ZREVRANGE key start stop [WITHSCORES]
pub fn zrevrange(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrange_generic(ctx, view, Some((RangeBy::Rank, true)), false)
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
pub fn zrangebyscore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrange_generic(ctx, view, Some((RangeBy::Score, false)), false)
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrange_generic(ctx, view, Some((RangeBy::Score, true)), false)
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn zrangebylex(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrange_generic(ctx, view, Some((RangeBy::Lex, false)), false)
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn zrevrangebylex(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zrange_generic(ctx, view, Some((RangeBy::Lex, true)), false)
}

// ---------------------------------------------------------------------------------------------
// Pops

/// The reply shapes of Redis's `genericZpopCommand`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PopShape {
    /// ZPOPMIN/ZPOPMAX (RESP2, or without COUNT): member, score, member, score...
    Flat,
    /// ZPOPMIN/ZPOPMAX with COUNT in RESP3: [member, score] pairs.
    Pairs,
    /// BZPOPMIN/BZPOPMAX: key, member, score.
    Keyed,
    /// ZMPOP/BZMPOP: [key, [[member, score] ...]].
    KeyedPairs,
}

/// The first of `keys` holding a sorted set (Redis checks each existing key's type in order
/// and fails on the first of another type).
fn first_zset<'k>(ctx: &Ctx<'_>, view: &mut View<'_>, keys: &[&'k [u8]]) -> CmdResult<Option<&'k [u8]>> {
    for &key in keys {
        if read_zset(ctx, view.db(ctx.db, key), key, false)?.is_some() {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// Pops up to `count` elements from the sorted set at `key` (which exists) and replies.
fn pop_from(ctx: &mut Ctx<'_>, view: &mut View<'_>, key: &[u8], max: bool, count: usize, shape: PopShape) -> CmdResult {
    let db = view.db(ctx.db, key);
    let popped = edit_zset(ctx, db, key, |z| {
        let n = count.min(z.len());
        (0..n).filter_map(|_| z.pop(max)).collect::<Vec<_>>()
    })?;
    let out = &mut *ctx.out;
    let n = popped.len();
    match shape {
        PopShape::Flat => out.array(n * 2),
        PopShape::Pairs => out.array(n),
        PopShape::Keyed => {
            out.array(n * 2 + 1);
            out.bulk(key);
        }
        PopShape::KeyedPairs => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
    }
    for (m, s) in &popped {
        if matches!(shape, PopShape::Pairs | PopShape::KeyedPairs) {
            out.array(2);
        }
        out.bulk(m);
        reply_score(out, *s);
    }
    ctx.dirty += n as u64;
    notify_removal(ctx, db, if max { "zpopmax" } else { "zpopmin" }, key);
    Ok(())
}

/// ZPOPMIN / ZPOPMAX key [count]
fn zpop_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, max: bool) -> CmdResult {
    let argv = ctx.argv;
    if argv.len() > 3 {
        return Err(SYNTAX);
    }
    let count = match argv.get(2) {
        Some(c) => Some(args::int_in(c, 0, i64::MAX, Some(MUST_BE_POSITIVE))? as usize),
        None => None,
    };
    // Redis checks the type before it looks at a zero count.
    let found = first_zset(ctx, view, &argv[1..2])?;
    let Some(key) = found.filter(|_| count != Some(0)) else {
        ctx.out.array(0);
        return Ok(());
    };
    let shape = if count.is_some() && ctx.out.is_resp3() { PopShape::Pairs } else { PopShape::Flat };
    pop_from(ctx, view, key, max, count.unwrap_or(1), shape)
}

/// ZPOPMIN key [count]
pub fn zpopmin(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zpop_generic(ctx, view, false)
}

/// ZPOPMAX key [count]
pub fn zpopmax(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    zpop_generic(ctx, view, true)
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout → [key, member, score].
fn bzpop_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, max: bool) -> CmdResult {
    let argv = ctx.argv;
    let deadline = parse_timeout(ctx, argv[argv.len() - 1])?;
    let keys = &argv[1..argv.len() - 1];
    match first_zset(ctx, view, keys)? {
        Some(key) => pop_from(ctx, view, key, max, 1, PopShape::Keyed),
        None => block_or(ctx, deadline, keys, ReplyBuf::null_array),
    }
}

/// BZPOPMIN key [key ...] timeout
pub fn bzpopmin(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    bzpop_generic(ctx, view, false)
}

/// BZPOPMAX key [key ...] timeout
pub fn bzpopmax(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    bzpop_generic(ctx, view, true)
}

/// Parses `numkeys key [key ...] MIN|MAX [COUNT count]` from `argv[at]` (Redis's
/// `zmpopGenericCommand`): (keys, max, count).
fn parse_zmpop<'a>(argv: &[&'a [u8]], at: usize) -> CmdResult<(Vec<&'a [u8]>, bool, usize)> {
    let numkeys = args::int_in(argv[at], 1, i64::MAX, Some("ERR numkeys should be greater than 0"))?;
    let where_at =
        usize::try_from(numkeys).ok().and_then(|n| n.checked_add(at + 1)).filter(|&w| w < argv.len()).ok_or(SYNTAX)?;
    let max = match argv[where_at] {
        w if is(w, "min") => false,
        w if is(w, "max") => true,
        _ => return Err(SYNTAX),
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < argv.len() {
        if count.is_none() && is(argv[j], "count") && j + 1 < argv.len() {
            count = Some(args::int_in(argv[j + 1], 1, i64::MAX, Some("ERR count should be greater than 0"))? as usize);
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    Ok((argv[at + 1..where_at].to_vec(), max, count.unwrap_or(1)))
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (keys, max, count) = parse_zmpop(ctx.argv, 1)?;
    match first_zset(ctx, view, &keys)? {
        Some(key) => pop_from(ctx, view, key, max, count, PopShape::KeyedPairs),
        None => {
            ctx.out.null_array();
            Ok(())
        }
    }
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn bzmpop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (keys, max, count) = parse_zmpop(ctx.argv, 2)?;
    let deadline = parse_timeout(ctx, ctx.argv[1])?;
    match first_zset(ctx, view, &keys)? {
        Some(key) => pop_from(ctx, view, key, max, count, PopShape::KeyedPairs),
        None => block_or(ctx, deadline, &keys, ReplyBuf::null_array),
    }
}

// ---------------------------------------------------------------------------------------------
// ZRANDMEMBER

/// Writes one ZRANDMEMBER element: the member, or a (member, score) pair (nested in RESP3).
fn emit_random(out: &mut ReplyBuf, m: &[u8], s: f64, withscores: bool) {
    if withscores && out.is_resp3() {
        out.array(2);
    }
    out.bulk(m);
    if withscores {
        reply_score(out, s);
    }
}

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    if argv.len() < 3 {
        match read_zset(ctx, view.db(ctx.db, key), key, true)?.and_then(ZSet::random) {
            Some((m, _)) => ctx.out.bulk(m),
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let l = args::int_in(argv[2], -i64::MAX, i64::MAX, None)?;
    if argv.len() > 4 || (argv.len() == 4 && !is(argv[3], "withscores")) {
        return Err(SYNTAX);
    }
    let withscores = argv.len() == 4;
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::fixed("ERR value is out of range"));
    }
    let Some(z) = read_zset(ctx, view.db(ctx.db, key), key, true)? else {
        ctx.out.array(0);
        return Ok(());
    };
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    let out = &mut *ctx.out;
    let header = |out: &mut ReplyBuf, n: usize| out.array(if withscores && !out.is_resp3() { n * 2 } else { n });
    if count == 0 {
        out.array(0);
        return Ok(());
    }
    if !uniq || count == 1 {
        check_reply_size(count)?;
        header(out, count as usize);
        for _ in 0..count {
            if let Some((m, s)) = z.random() {
                emit_random(out, m, s, withscores);
            }
        }
        return Ok(());
    }
    if count >= z.len() as u64 {
        header(out, z.len());
        z.for_range(0, z.len(), false, |m, s| emit_random(out, m, s, withscores));
        return Ok(());
    }
    let ranks = z.sample_ranks(count as usize);
    header(out, ranks.len());
    for r in ranks {
        if let Some((m, s)) = z.get(r) {
            emit_random(out, m, s, withscores);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ZSCAN

/// ZSCAN key cursor [MATCH pattern] [COUNT count]
pub fn zscan(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let cursor = args::scan_cursor(ctx.argv[2])?;
    let (argv, key) = (ctx.argv, ctx.argv[1]);
    let Some(z) = read_zset(ctx, view.db(ctx.db, key), key, true)? else {
        empty_scan(ctx.out);
        return Ok(());
    };
    let o = parse_scan_opts(&argv[3..])?;
    let mut found: Vec<(&[u8], f64)> = Vec::new();
    let mut next = cursor;
    let mut budget = o.count.saturating_mul(10);
    loop {
        next = z.scan(next, |m, s| found.push((m, s)));
        budget -= 1;
        if next == 0 || budget < 0 || (found.len() * 2) as i64 >= o.count {
            break;
        }
    }
    if let Some(p) = o.pattern {
        found.retain(|(m, _)| store::glob::glob_match(p, m, false));
    }
    // Redis 7.2 prints listpack scores as stored (its reply format) and skiplist scores with
    // `%.17g`.
    let format = if z.is_listpack() { numfmt::format_double_reply } else { numfmt::format_double_g17 };
    ctx.out.array(2);
    ctx.out.bulk_i64(next as i64);
    ctx.out.array(found.len() * 2);
    for (m, s) in found {
        ctx.out.bulk(m);
        ctx.out.bulk(&format(s));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`: +inf plus -inf sums to 0.
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => *target = if val < *target { val } else { *target },
        Aggregate::Max => *target = if val > *target { val } else { *target },
    }
}

/// One input of the set algebra: a sorted set, a plain set (every member scores 1), or a
/// missing key (empty).
#[derive(Clone, Copy)]
enum Source<'a> {
    Missing,
    Z(&'a ZSet),
    S(&'a store::set::Set),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::Z(z) => z.score(m),
            Source::S(s) => s.contains(m).then_some(1.0),
        }
    }

    /// Every (member, score).
    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Source::Missing => {}
            Source::Z(z) => z.for_range(0, z.len(), false, f),
            Source::S(s) => s.iter().for_each(|m| m.with_bytes(|b| f(b, 1.0))),
        }
    }

    fn same(&self, other: &Source<'_>) -> bool {
        match (self, other) {
            (Source::Z(a), Source::Z(b)) => std::ptr::eq(*a, *b),
            (Source::S(a), Source::S(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

/// Looks up every input key in order (WRONGTYPE for anything but sets and sorted sets), then
/// hands out shared references valid while the view stays borrowed.
fn read_sources<'v>(ctx: &Ctx<'_>, view: &'v mut View<'_>, keys: &[&[u8]]) -> CmdResult<Vec<Source<'v>>> {
    let mut found: Vec<Source<'_>> = Vec::with_capacity(keys.len());
    for key in keys {
        let db = view.db(ctx.db, key);
        let src = match db.lookup_read(key, ctx.now) {
            None => Source::Missing,
            Some(e) => {
                crate::handlers::touch(ctx, e);
                match e.value() {
                    ValueRef::Object(Object::ZSet(z)) => Source::Z(unsafe_extend(z)),
                    ValueRef::Object(Object::Set(s)) => Source::S(unsafe_extend(s)),
                    _ => return Err(WRONGTYPE),
                }
            }
        };
        found.push(src);
    }
    Ok(found)
}

/// Extends a borrow of a boxed collection to the view's borrow.
fn unsafe_extend<'v, T>(r: &T) -> &'v T {
    // SAFETY: `r` points into a live entry's boxed object. The caller's later lookups only
    // touch other entries (removing expired ones, which these are not, having been found live
    // at the same `now`) or refresh access clocks in entry headers; neither moves, mutates nor
    // frees a boxed object. The result lives as long as the exclusive borrow of the view, so
    // nothing can modify the keyspace while it is in use.
    unsafe { &*(r as *const T) }
}

/// The options of a ZUNION/ZINTER/ZDIFF-family command.
struct AlgebraArgs {
    weights: Vec<f64>,
    agg: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Parses `numkeys key [key ...]` at `argv[at]`: the input keys.
fn parse_algebra_keys<'a>(argv: &[&'a [u8]], at: usize, name: &str) -> CmdResult<Vec<&'a [u8]>> {
    let setnum = args::int(argv[at])?;
    if setnum < 1 {
        return Err(CmdError::new(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    if setnum as u64 > (argv.len() - at - 1) as u64 {
        return Err(SYNTAX);
    }
    Ok(argv[at + 1..at + 1 + setnum as usize].to_vec())
}

/// Parses the options after `n` keys that end before `argv[from]`. Redis looks the keys up
/// (reporting WRONGTYPE) before it parses these.
fn parse_algebra_opts(
    argv: &[&[u8]],
    from: usize,
    n: usize,
    op: SetOp,
    store: bool,
    card: bool,
) -> CmdResult<AlgebraArgs> {
    let mut a = AlgebraArgs { weights: vec![1.0; n], agg: Aggregate::Sum, withscores: false, limit: 0 };
    let mut j = from;
    while j < argv.len() {
        let remaining = argv.len() - j;
        let opt = argv[j];
        if op != SetOp::Diff && !card && remaining > n && is(opt, "weights") {
            for i in 0..n {
                a.weights[i] =
                    numfmt::parse_f64(argv[j + 1 + i]).ok_or(CmdError::fixed("ERR weight value is not a float"))?;
            }
            j += 1 + n;
        } else if op != SetOp::Diff && !card && remaining >= 2 && is(opt, "aggregate") {
            a.agg = match argv[j + 1] {
                x if is(x, "sum") => Aggregate::Sum,
                x if is(x, "min") => Aggregate::Min,
                x if is(x, "max") => Aggregate::Max,
                _ => return Err(SYNTAX),
            };
            j += 2;
        } else if !store && !card && is(opt, "withscores") {
            a.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(opt, "limit") {
            a.limit = args::int_in(argv[j + 1], 0, i64::MAX, Some("ERR LIMIT can't be negative"))? as usize;
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    Ok(a)
}

/// What the set algebra produces: (member, score) in no particular order, or a count.
enum Algebra {
    Elements(Vec<(Vec<u8>, f64)>),
    Count(usize),
}

/// Redis's `zunionInterDiffGenericCommand` computation over the inputs.
fn compute(op: SetOp, srcs: &[Source<'_>], a: &AlgebraArgs, card: bool) -> Algebra {
    // Union and intersection walk the inputs from the smallest (a stable order for ties).
    let mut order: Vec<usize> = (0..srcs.len()).collect();
    if op != SetOp::Diff {
        order.sort_by_key(|&i| srcs[i].len());
    }
    let src = |k: usize| srcs[order[k]];
    let weight = |k: usize| a.weights[order[k]];
    let mut out: Vec<(Vec<u8>, f64)> = Vec::new();
    match op {
        SetOp::Inter => {
            let mut count = 0usize;
            if src(0).len() > 0 {
                let mut done = false;
                src(0).for_each(|m, s0| {
                    if done {
                        return;
                    }
                    let mut score = weight(0) * s0;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for k in 1..srcs.len() {
                        let value = if src(k).same(&src(0)) { Some(s0) } else { src(k).score(m) };
                        match value {
                            Some(v) => aggregate(&mut score, v * weight(k), a.agg),
                            None => return,
                        }
                    }
                    if card {
                        count += 1;
                        done = a.limit > 0 && count >= a.limit;
                    } else {
                        out.push((m.to_vec(), score));
                    }
                });
            }
            if card {
                return Algebra::Count(count);
            }
        }
        SetOp::Union => {
            let mut index: std::collections::HashMap<Vec<u8>, usize> = std::collections::HashMap::new();
            for k in 0..srcs.len() {
                src(k).for_each(|m, s| {
                    let mut score = weight(k) * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match index.get(m) {
                        Some(&i) => aggregate(&mut out[i].1, score, a.agg),
                        None => {
                            index.insert(m.to_vec(), out.len());
                            out.push((m.to_vec(), score));
                        }
                    }
                });
            }
        }
        SetOp::Diff => {
            let first = srcs[0];
            if !srcs[1..].iter().any(|s| s.same(&first)) {
                first.for_each(|m, s| {
                    if srcs[1..].iter().all(|o| o.score(m).is_none()) {
                        out.push((m.to_vec(), s));
                    }
                });
            }
        }
    }
    Algebra::Elements(out)
}

/// ZUNION / ZINTER / ZDIFF (reply), their STORE forms (`store`), ZINTERCARD (`card`).
fn algebra_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, op: SetOp, store: bool, card: bool) -> CmdResult {
    let (argv, at) = (ctx.argv, if store { 2 } else { 1 });
    let keys = parse_algebra_keys(argv, at, &ctx.name())?;
    let elements = {
        let srcs = read_sources(ctx, view, &keys)?;
        let a = parse_algebra_opts(argv, at + 1 + keys.len(), keys.len(), op, store, card)?;
        match compute(op, &srcs, &a, card) {
            Algebra::Count(n) => {
                ctx.out.int(n as i64);
                return Ok(());
            }
            Algebra::Elements(v) => (v, a.withscores),
        }
    };
    let (elements, withscores) = elements;
    let lim = limits(ctx);
    let mut result = ZSet::new_tree(elements.len());
    for (m, s) in &elements {
        result.insert_new(m, *s, lim);
    }
    if store {
        result.shrink_to_pack_if_fits(lim);
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        store_result(ctx, view, ctx.argv[1], result, event);
    } else {
        reply_range(ctx.out, &result, (0, result.len()), false, withscores);
    }
    Ok(())
}

/// ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zunion(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    algebra_generic(ctx, view, SetOp::Union, false, false)
}

/// ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zinter(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    algebra_generic(ctx, view, SetOp::Inter, false, false)
}

/// ZDIFF numkeys key [key ...] [WITHSCORES]
pub fn zdiff(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    algebra_generic(ctx, view, SetOp::Diff, false, false)
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]
pub fn zunionstore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    algebra_generic(ctx, view, SetOp::Union, true, false)
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]
pub fn zinterstore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    algebra_generic(ctx, view, SetOp::Inter, true, false)
}

/// ZDIFFSTORE destination numkeys key [key ...]
pub fn zdiffstore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    algebra_generic(ctx, view, SetOp::Diff, true, false)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    algebra_generic(ctx, view, SetOp::Inter, false, true)
}

// ---------------------------------------------------------------------------------------------
// Command table

/// The sorted-set commands, sorted by name. Flags, key positions, ACL categories and docs as
/// Redis 7.2's COMMAND INFO / COMMAND DOCS report them. The numkeys commands are
/// `movablekeys`; the dispatcher finds (and locks) their keys through the numkeys argument.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec!("bzmpop", -5, WRITE | BLOCKING | MOVABLEKEYS, NUMKEYS_AT_2, ["@write", "@sortedset", "@slow", "@blocking"], "sorted_set", "7.0.0", K(bzmpop), "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped."),
    spec!("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, KEYS_BUT_LAST, ["@write", "@sortedset", "@fast", "@blocking"], "sorted_set", "5.0.0", K(bzpopmax), "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", "O(log(N)) with N being the number of elements in the sorted set."),
    spec!("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, KEYS_BUT_LAST, ["@write", "@sortedset", "@fast", "@blocking"], "sorted_set", "5.0.0", K(bzpopmin), "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", "O(log(N)) with N being the number of elements in the sorted set."),
    spec!("zadd", -4, WRITE | DENYOOM | FAST, KEY1, ["@write", "@sortedset", "@fast"], "sorted_set", "1.2.0", K(zadd), "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", "O(log(N)) for each item added, where N is the number of elements in the sorted set."),
    spec!("zcard", 2, READONLY | FAST, KEY1, ["@read", "@sortedset", "@fast"], "sorted_set", "1.2.0", K(zcard), "Returns the number of members in a sorted set.", "O(1)"),
    spec!("zcount", 4, READONLY | FAST, KEY1, ["@read", "@sortedset", "@fast"], "sorted_set", "2.0.0", K(zcount), "Returns the count of members in a sorted set that have scores within a range.", "O(log(N)) with N being the number of elements in the sorted set."),
    spec!("zdiff", -3, READONLY | MOVABLEKEYS, NUMKEYS_AT_1, ["@read", "@sortedset", "@slow"], "sorted_set", "6.2.0", K(zdiff), "Returns the difference between multiple sorted sets.", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set."),
    spec!("zdiffstore", -4, WRITE | DENYOOM | MOVABLEKEYS, KEY1_NUMKEYS_AT_2, ["@write", "@sortedset", "@slow"], "sorted_set", "6.2.0", K(zdiffstore), "Stores the difference of multiple sorted sets in a key.", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set."),
    spec!("zincrby", 4, WRITE | DENYOOM | FAST, KEY1, ["@write", "@sortedset", "@fast"], "sorted_set", "1.2.0", K(zincrby), "Increments the score of a member in a sorted set.", "O(log(N)) where N is the number of elements in the sorted set."),
    spec!("zinter", -3, READONLY | MOVABLEKEYS, NUMKEYS_AT_1, ["@read", "@sortedset", "@slow"], "sorted_set", "6.2.0", K(zinter), "Returns the intersect of multiple sorted sets.", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set."),
    spec!("zintercard", -3, READONLY | MOVABLEKEYS, NUMKEYS_AT_1, ["@read", "@sortedset", "@slow"], "sorted_set", "7.0.0", K(zintercard), "Returns the number of members of the intersect of multiple sorted sets.", "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets."),
    spec!("zinterstore", -4, WRITE | DENYOOM | MOVABLEKEYS, KEY1_NUMKEYS_AT_2, ["@write", "@sortedset", "@slow"], "sorted_set", "2.0.0", K(zinterstore), "Stores the intersect of multiple sorted sets in a key.", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set."),
    spec!("zlexcount", 4, READONLY | FAST, KEY1, ["@read", "@sortedset", "@fast"], "sorted_set", "2.8.9", K(zlexcount), "Returns the number of members in a sorted set within a lexicographical range.", "O(log(N)) with N being the number of elements in the sorted set."),
    spec!("zmpop", -4, WRITE | MOVABLEKEYS, NUMKEYS_AT_1, ["@write", "@sortedset", "@slow"], "sorted_set", "7.0.0", K(zmpop), "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped."),
    spec!("zmscore", -3, READONLY | FAST, KEY1, ["@read", "@sortedset", "@fast"], "sorted_set", "6.2.0", K(zmscore), "Returns the score of one or more members in a sorted set.", "O(N) where N is the number of members being requested."),
    spec!("zpopmax", -2, WRITE | FAST, KEY1, ["@write", "@sortedset", "@fast"], "sorted_set", "5.0.0", K(zpopmax), "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped."),
    spec!("zpopmin", -2, WRITE | FAST, KEY1, ["@write", "@sortedset", "@fast"], "sorted_set", "5.0.0", K(zpopmin), "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped."),
    spec!("zrandmember", -2, READONLY, KEY1, ["@read", "@sortedset", "@slow"], "sorted_set", "6.2.0", K(zrandmember), "Returns one or more random members from a sorted set.", "O(N) where N is the number of members returned"),
    spec!("zrange", -4, READONLY, KEY1, ["@read", "@sortedset", "@slow"], "sorted_set", "1.2.0", K(zrange), "Returns members in a sorted set within a range of indexes.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned."),
    spec!("zrangebylex", -4, READONLY, KEY1, ["@read", "@sortedset", "@slow"], "sorted_set", "2.8.9", K(zrangebylex), "Returns members in a sorted set within a lexicographical range.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N))."),
    spec!("zrangebyscore", -4, READONLY, KEY1, ["@read", "@sortedset", "@slow"], "sorted_set", "1.0.5", K(zrangebyscore), "Returns members in a sorted set within a range of scores.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N))."),
    spec!("zrangestore", -5, WRITE | DENYOOM, KEYS_1_2, ["@write", "@sortedset", "@slow"], "sorted_set", "6.2.0", K(zrangestore), "Stores a range of members from sorted set in a key.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key."),
    spec!("zrank", -3, READONLY | FAST, KEY1, ["@read", "@sortedset", "@fast"], "sorted_set", "2.0.0", K(zrank), "Returns the index of a member in a sorted set ordered by ascending scores.", "O(log(N))"),
    spec!("zrem", -3, WRITE | FAST, KEY1, ["@write", "@sortedset", "@fast"], "sorted_set", "1.2.0", K(zrem), "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed."),
    spec!("zremrangebylex", 4, WRITE, KEY1, ["@write", "@sortedset", "@slow"], "sorted_set", "2.8.9", K(zremrangebylex), "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation."),
    spec!("zremrangebyrank", 4, WRITE, KEY1, ["@write", "@sortedset", "@slow"], "sorted_set", "2.0.0", K(zremrangebyrank), "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation."),
    spec!("zremrangebyscore", 4, WRITE, KEY1, ["@write", "@sortedset", "@slow"], "sorted_set", "1.2.0", K(zremrangebyscore), "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation."),
    spec!("zrevrange", -4, READONLY, KEY1, ["@read", "@sortedset", "@slow"], "sorted_set", "1.2.0", K(zrevrange), "Returns members in a sorted set within a range of indexes in reverse order.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned."),
    spec!("zrevrangebylex", -4, READONLY, KEY1, ["@read", "@sortedset", "@slow"], "sorted_set", "2.8.9", K(zrevrangebylex), "Returns members in a sorted set within a lexicographical range in reverse order.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N))."),
    spec!("zrevrangebyscore", -4, READONLY, KEY1, ["@read", "@sortedset", "@slow"], "sorted_set", "2.2.0", K(zrevrangebyscore), "Returns members in a sorted set within a range of scores in reverse order.", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N))."),
    spec!("zrevrank", -3, READONLY | FAST, KEY1, ["@read", "@sortedset", "@fast"], "sorted_set", "2.0.0", K(zrevrank), "Returns the index of a member in a sorted set ordered by descending scores.", "O(log(N))"),
    spec!("zscan", -3, READONLY, KEY1, ["@read", "@sortedset", "@slow"], "sorted_set", "2.8.0", K(zscan), "Iterates over members and scores of a sorted set.", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."),
    spec!("zscore", 3, READONLY | FAST, KEY1, ["@read", "@sortedset", "@fast"], "sorted_set", "1.2.0", K(zscore), "Returns the score of a member in a sorted set.", "O(1)"),
    spec!("zunion", -3, READONLY | MOVABLEKEYS, NUMKEYS_AT_1, ["@read", "@sortedset", "@slow"], "sorted_set", "6.2.0", K(zunion), "Returns the union of multiple sorted sets.", "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set."),
    spec!("zunionstore", -4, WRITE | DENYOOM | MOVABLEKEYS, KEY1_NUMKEYS_AT_2, ["@write", "@sortedset", "@slow"], "sorted_set", "2.0.0", K(zunionstore), "Stores the union of multiple sorted sets in a key.", "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_in_its_group() {
        for w in COMMANDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        assert!(COMMANDS.iter().all(|c| c.group == "sorted_set" && c.acl.contains(&"@sortedset")));
    }

    #[test]
    fn rank_windows_clamp_like_redis() {
        assert_eq!(rank_window(0, -1, 5), Some((0, 5)));
        assert_eq!(rank_window(-100, 100, 5), Some((0, 5)));
        assert_eq!(rank_window(2, 1, 5), None);
        assert_eq!(rank_window(5, 10, 5), None);
        assert_eq!(rank_window(-2, -1, 5), Some((3, 5)));
        assert_eq!(rank_window(i64::MIN, i64::MAX, 5), Some((0, 5)));
        assert_eq!(rank_window(0, 0, 0), None);
    }

    #[test]
    fn limit_windows_follow_redis_loops() {
        assert_eq!(limit_window(2, 10, false, 0, -1), (2, 10));
        assert_eq!(limit_window(2, 10, false, 3, 2), (5, 7));
        assert_eq!(limit_window(2, 10, true, 3, 2), (5, 7));
        assert_eq!(limit_window(2, 10, true, 1, -5), (2, 9));
        assert_eq!(limit_window(2, 10, false, -1, 5), (0, 0));
        assert_eq!(limit_window(2, 10, false, 8, 5), (0, 0));
        assert_eq!(limit_window(2, 10, false, 0, 0), (2, 2));
    }

    #[test]
    fn bounds_parse_like_redis() {
        assert_eq!(parse_score_bound(b"(1.5"), Some((1.5, true)));
        assert_eq!(parse_score_bound(b"-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(parse_score_bound(b"(nan"), None);
        assert_eq!(parse_score_bound(b"x"), None);
        assert_eq!(parse_lex_bound(b"-"), Some(LexBound::NegInf));
        assert_eq!(parse_lex_bound(b"+"), Some(LexBound::PosInf));
        assert_eq!(parse_lex_bound(b"+a"), None);
        assert_eq!(parse_lex_bound(b"[a"), Some(LexBound::Incl(b"a")));
        assert_eq!(parse_lex_bound(b"("), Some(LexBound::Excl(b"")));
        assert_eq!(parse_lex_bound(b"a"), None);
        assert_eq!(parse_lex_bound(b""), None);
    }
}
