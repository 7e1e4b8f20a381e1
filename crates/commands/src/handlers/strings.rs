//! String commands: GET, SET and its wrappers, counters, ranges, multi-key forms, LCS.
//!
//! SET, SETNX, SETEX, PSETEX and GETSET are thin wrappers over [`set_generic`] with
//! [`SetOptions`], as in Redis. Every reply and error text is Redis 7's.

use store::{Db, View};

use crate::args::{self, is};
use crate::error::{CmdError, CmdResult, NOT_INTEGER, OVERFLOW, STRING_TOO_LONG, SYNTAX};
use crate::handlers::{edit_string, read_string, store_string, store_string_as, write_lookup_string};
use crate::{lcs as lcs_algo, notify, numfmt, Ctx};

/// When a SET/GETEX expiry was given and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireArg {
    /// EX/PX (relative) or EXAT/PXAT (absolute), already converted to unix milliseconds.
    At(i64),
    Keep,
    Persist,
}

/// Parsed SET options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    pub expire: Option<ExpireArg>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// Which command is parsing: SET accepts NX/XX/GET/KEEPTTL, GETEX accepts PERSIST.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parser {
    Set,
    GetEx,
}

/// Parses SET/GETEX options (`args` are the arguments after the value, or after the key for
/// GETEX). Mirrors Redis: an option is accepted only if it does not conflict with one given
/// before it; anything else is a syntax error. The expire value is validated after all
/// options were read.
fn parse_options(ctx: &Ctx<'_>, args: &[&[u8]], parser: Parser) -> CmdResult<SetOptions> {
    let (mut o, raw) = parse_option_words(args, parser)?;
    if let Some((v, unit, absolute)) = raw {
        o.expire = Some(ExpireArg::At(expire_ms(ctx, v, unit, absolute)?));
    }
    Ok(o)
}

/// The expire value of an EX/PX/EXAT/PXAT option, not yet validated.
type RawExpire<'a> = (&'a [u8], Unit, bool);

/// The syntax part of [`parse_options`]: every option word, leaving the expire value
/// unchecked (GETEX checks it only after the key's lookup, as Redis does).
fn parse_option_words<'a>(args: &[&'a [u8]], parser: Parser) -> CmdResult<(SetOptions, Option<RawExpire<'a>>)> {
    let mut o = SetOptions::default();
    let mut expire: Option<(&[u8], Unit, bool)> = None; // (value, unit, absolute)
    let (mut keepttl, mut persist) = (false, false);
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        let has_next = i + 1 < args.len();
        if is(a, "nx") && !o.xx && parser == Parser::Set {
            o.nx = true;
        } else if is(a, "xx") && !o.nx && parser == Parser::Set {
            o.xx = true;
        } else if is(a, "get") && parser == Parser::Set {
            o.get = true;
        } else if is(a, "keepttl") && !persist && expire.is_none() && parser == Parser::Set {
            keepttl = true;
        } else if is(a, "persist") && expire.is_none() && !keepttl && parser == Parser::GetEx {
            persist = true;
        } else if let Some((unit, absolute)) = expire_word(a) {
            // Redis lets the same option repeat (the last one wins) but not mix with others.
            let conflicting = expire.is_some_and(|(_, u, abs)| (u, abs) != (unit, absolute));
            if keepttl || persist || conflicting || !has_next {
                return Err(SYNTAX);
            }
            expire = Some((args[i + 1], unit, absolute));
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    o.expire = match (expire, keepttl, persist) {
        (Some(_), _, _) => None,
        (None, true, _) => Some(ExpireArg::Keep),
        (None, _, true) => Some(ExpireArg::Persist),
        _ => None,
    };
    Ok((o, expire))
}

fn expire_word(a: &[u8]) -> Option<(Unit, bool)> {
    if is(a, "ex") {
        Some((Unit::Seconds, false))
    } else if is(a, "px") {
        Some((Unit::Millis, false))
    } else if is(a, "exat") {
        Some((Unit::Seconds, true))
    } else if is(a, "pxat") {
        Some((Unit::Millis, true))
    } else {
        None
    }
}

fn invalid_expire(ctx: &Ctx<'_>) -> CmdError {
    CmdError::new(format!("ERR invalid expire time in '{}' command", ctx.name()))
}

/// Converts an EX/PX/EXAT/PXAT value to absolute unix ms, with Redis's checks.
fn expire_ms(ctx: &Ctx<'_>, v: &[u8], unit: Unit, absolute: bool) -> CmdResult<i64> {
    let mut ms = args::int(v)?;
    if ms <= 0 || (unit == Unit::Seconds && ms > i64::MAX / 1000) {
        return Err(invalid_expire(ctx));
    }
    if unit == Unit::Seconds {
        ms *= 1000;
    }
    if !absolute {
        if ms > i64::MAX - ctx.now {
            return Err(invalid_expire(ctx));
        }
        ms += ctx.now;
    }
    Ok(ms)
}

/// The shared implementation of SET and its wrappers. Replies as SET does unless
/// `ok`/`abort` override the success and NX/XX-failure replies (SETNX replies 1/0).
fn set_generic(
    ctx: &mut Ctx<'_>,
    db: &mut Db,
    key: &[u8],
    value: &[u8],
    o: SetOptions,
    replies: Option<(i64, i64)>,
) -> CmdResult {
    if o.get {
        let old = write_lookup_string(ctx, db, key)?;
        match old {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
    // Only NX/XX need to know whether the key exists; otherwise the store below replaces it
    // in one table probe (and still counts an expired previous value).
    let found = (o.nx || o.xx) && db.contains(key, ctx.now);
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            match replies {
                Some((_, abort)) => ctx.out.int(abort),
                None => ctx.out.null(),
            }
        }
        return Ok(());
    }
    let expire_at = match o.expire {
        Some(ExpireArg::At(at)) => Some(at),
        Some(ExpireArg::Keep) => db.lookup(key, ctx.now).and_then(|e| e.expire_at()),
        _ => None,
    };
    store_string(ctx, db, key, value, expire_at);
    ctx.notify(notify::STRING, "set", key);
    if matches!(o.expire, Some(ExpireArg::At(_))) {
        ctx.notify(notify::GENERIC, "expire", key);
    }
    if !o.get {
        match replies {
            Some((ok, _)) => ctx.out.int(ok),
            None => ctx.out.ok(),
        }
    }
    Ok(())
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ts-ms | KEEPTTL]
pub fn set(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let o = parse_options(ctx, &ctx.argv[3..], Parser::Set)?;
    let (key, value) = (ctx.argv[1], ctx.argv[2]);
    set_generic(ctx, view.db(ctx.db, key), key, value, o, None)
}

/// SETNX key value → 1 if set, 0 if the key existed.
pub fn setnx(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, value) = (ctx.argv[1], ctx.argv[2]);
    let o = SetOptions { nx: true, ..Default::default() };
    set_generic(ctx, view.db(ctx.db, key), key, value, o, Some((1, 0)))
}

fn setex_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, unit: Unit) -> CmdResult {
    let (key, value) = (ctx.argv[1], ctx.argv[3]);
    let at = expire_ms(ctx, ctx.argv[2], unit, false)?;
    let o = SetOptions { expire: Some(ExpireArg::At(at)), ..Default::default() };
    set_generic(ctx, view.db(ctx.db, key), key, value, o, None)
}

/// SETEX key seconds value
pub fn setex(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    setex_generic(ctx, view, Unit::Seconds)
}

/// PSETEX key milliseconds value
pub fn psetex(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    setex_generic(ctx, view, Unit::Millis)
}

/// GETSET key value → the old value (nil if none), then sets (clearing the TTL).
pub fn getset(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, value) = (ctx.argv[1], ctx.argv[2]);
    let o = SetOptions { get: true, ..Default::default() };
    set_generic(ctx, view.db(ctx.db, key), key, value, o, None)
}

/// GET key
pub fn get(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    match read_string(ctx, view.db(ctx.db, key), key)? {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

/// GETDEL key
pub fn getdel(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    match read_string(ctx, db, key)? {
        Some(v) => ctx.out.bulk(v),
        None => {
            ctx.out.null();
            return Ok(());
        }
    }
    db.remove(key);
    ctx.dirty += 1;
    ctx.notify(notify::GENERIC, "del", key);
    Ok(())
}

/// GETEX key [EX s | PX ms | EXAT ts | PXAT ts-ms | PERSIST]
pub fn getex(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (mut o, raw) = parse_option_words(&ctx.argv[2..], Parser::GetEx)?;
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    if read_string(ctx, db, key)?.is_none() {
        ctx.out.null();
        return Ok(());
    }
    if let Some((v, unit, absolute)) = raw {
        o.expire = Some(ExpireArg::At(expire_ms(ctx, v, unit, absolute)?));
    }
    // Looked up again without counting a second keyspace hit.
    let value = write_lookup_string(ctx, db, key)?.unwrap_or_default();
    ctx.out.bulk(value);
    match o.expire {
        Some(ExpireArg::At(at)) if at <= ctx.now => {
            db.remove(key);
            ctx.dirty += 1;
            ctx.notify(notify::GENERIC, "del", key);
        }
        Some(ExpireArg::At(at)) => {
            db.set_expire(key, Some(at));
            ctx.dirty += 1;
            ctx.notify(notify::GENERIC, "expire", key);
        }
        Some(ExpireArg::Persist) if db.lookup(key, ctx.now).is_some_and(|e| e.expire_at().is_some()) => {
            db.set_expire(key, None);
            ctx.dirty += 1;
            ctx.notify(notify::GENERIC, "persist", key);
        }
        _ => {}
    }
    Ok(())
}

/// MGET key [key ...] → values, nil for missing keys and non-strings.
pub fn mget(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let n = ctx.argv.len() - 1;
    ctx.out.array(n);
    for i in 1..=n {
        let key = ctx.argv[i];
        match read_string(ctx, view.db(ctx.db, key), key) {
            Ok(Some(v)) => ctx.out.bulk(v),
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

fn check_pairs(ctx: &Ctx<'_>) -> CmdResult {
    if ctx.argv.len().is_multiple_of(2) {
        return Err(crate::error::wrong_arity(&ctx.name()));
    }
    Ok(())
}

/// MSET key value [key value ...]
pub fn mset(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    check_pairs(ctx)?;
    for i in (1..ctx.argv.len()).step_by(2) {
        let (key, value) = (ctx.argv[i], ctx.argv[i + 1]);
        store_string(ctx, view.db(ctx.db, key), key, value, None);
        ctx.notify(notify::STRING, "set", key);
    }
    ctx.out.ok();
    Ok(())
}

/// MSETNX key value [key value ...] → 1 if all were set, 0 if any key existed (none set).
pub fn msetnx(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    check_pairs(ctx)?;
    let any_exists =
        (1..ctx.argv.len()).step_by(2).any(|i| view.db(ctx.db, ctx.argv[i]).contains(ctx.argv[i], ctx.now));
    if any_exists {
        ctx.out.int(0);
        return Ok(());
    }
    for i in (1..ctx.argv.len()).step_by(2) {
        let (key, value) = (ctx.argv[i], ctx.argv[i + 1]);
        store_string(ctx, view.db(ctx.db, key), key, value, None);
        ctx.notify(notify::STRING, "set", key);
    }
    ctx.out.int(1);
    Ok(())
}

/// STRLEN key
pub fn strlen(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let len = read_string(ctx, view.db(ctx.db, key), key)?.map_or(0, <[u8]>::len);
    ctx.out.int(len as i64);
    Ok(())
}

/// APPEND key value → the new length.
pub fn append(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, value) = (ctx.argv[1], ctx.argv[2]);
    let db = view.db(ctx.db, key);
    let current = write_lookup_string(ctx, db, key)?.map(<[u8]>::len);
    let Some(len) = current else {
        store_string(ctx, db, key, value, None);
        ctx.notify(notify::STRING, "append", key);
        ctx.out.int(value.len() as i64);
        return Ok(());
    };
    check_length(ctx, len as i64 + value.len() as i64)?;
    let new_len = edit_string(ctx, db, key, |s| {
        s.extend_from_slice(value);
        s.len()
    });
    ctx.notify(notify::STRING, "append", key);
    ctx.out.int(new_len as i64);
    Ok(())
}

fn check_length(ctx: &Ctx<'_>, len: i64) -> CmdResult {
    if len > ctx.settings.proto_max_bulk_len {
        return Err(STRING_TOO_LONG);
    }
    Ok(())
}

/// GETRANGE key start end (also SUBSTR)
pub fn getrange(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (start, end) = (args::int(ctx.argv[2])?, args::int(ctx.argv[3])?);
    let key = ctx.argv[1];
    let Some(s) = read_string(ctx, view.db(ctx.db, key), key)? else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    match clamp_range(start, end, s.len()) {
        Some((a, b)) => ctx.out.bulk(&s[a..=b]),
        None => ctx.out.bulk(b""),
    }
    Ok(())
}

/// Redis's GETRANGE index rules: negative indexes count from the end, the range is clamped
/// to the string, and an empty range is `None`.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end.min(len - 1) };
    if start > end {
        return None;
    }
    Some((start as usize, end as usize))
}

/// SETRANGE key offset value → the new length.
pub fn setrange(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let offset = args::int(ctx.argv[2])?;
    if offset < 0 {
        return Err(CmdError::fixed("ERR offset is out of range"));
    }
    let (key, value) = (ctx.argv[1], ctx.argv[3]);
    let db = view.db(ctx.db, key);
    let current = write_lookup_string(ctx, db, key)?.map(<[u8]>::len);
    if value.is_empty() {
        ctx.out.int(current.unwrap_or(0) as i64);
        return Ok(());
    }
    check_length(ctx, offset.saturating_add(value.len() as i64))?;
    let offset = offset as usize;
    let new_len = edit_string(ctx, db, key, |s| {
        let end = offset + value.len();
        if s.len() < end {
            s.resize(end, 0);
        }
        s[offset..end].copy_from_slice(value);
        s.len()
    });
    ctx.notify(notify::STRING, "setrange", key);
    ctx.out.int(new_len as i64);
    Ok(())
}

/// The shared implementation of INCR, DECR, INCRBY and DECRBY.
fn incr_by(ctx: &mut Ctx<'_>, view: &mut View<'_>, delta: i64) -> CmdResult {
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    let current = match write_lookup_string(ctx, db, key)? {
        Some(v) => numfmt::parse_i64(v).ok_or(NOT_INTEGER)?,
        None => 0,
    };
    let new = current.checked_add(delta).ok_or(OVERFLOW)?;
    let mut buf = itoa::Buffer::new();
    let text = buf.format(new).as_bytes();
    let expire = db.lookup(key, ctx.now).and_then(|e| e.expire_at());
    store_string(ctx, db, key, text, expire);
    ctx.notify(notify::STRING, "incrby", key);
    ctx.out.int(new);
    Ok(())
}

/// INCR key
pub fn incr(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    incr_by(ctx, view, 1)
}

/// DECR key
pub fn decr(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    incr_by(ctx, view, -1)
}

/// INCRBY key increment
pub fn incrby(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let delta = args::int(ctx.argv[2])?;
    incr_by(ctx, view, delta)
}

/// DECRBY key decrement
pub fn decrby(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let delta = args::int(ctx.argv[2])?;
    let delta = delta.checked_neg().ok_or(CmdError::fixed("ERR decrement would overflow"))?;
    incr_by(ctx, view, delta)
}

/// INCRBYFLOAT key increment → the new value as a bulk string (computed with x87
/// extended precision and formatted exactly as Redis does; see `numfmt`).
pub fn incrbyfloat(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    let current = write_lookup_string(ctx, db, key)?.map(<[u8]>::to_vec);
    let text = numfmt::incrbyfloat(current.as_deref(), ctx.argv[2])?;
    let expire = db.lookup(key, ctx.now).and_then(|e| e.expire_at());
    store_string_as(ctx, db, key, &text, expire, true);
    ctx.notify(notify::STRING, "incrbyfloat", key);
    ctx.out.bulk(&text);
    // Logged as its result, so a replay cannot round differently.
    ctx.log_as(vec![vec![b"SET".to_vec(), key.to_vec(), text.to_vec(), b"KEEPTTL".to_vec()]]);
    Ok(())
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
///
/// Both keys are type-checked before the options are parsed, as in Redis.
pub fn lcs(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (k1, k2) = (ctx.argv[1], ctx.argv[2]);
    let a = read_string(ctx, view.db(ctx.db, k1), k1).map_err(|_| lcs_algo::KEYS_NOT_STRINGS)?.map(<[u8]>::to_vec);
    let b = read_string(ctx, view.db(ctx.db, k2), k2).map_err(|_| lcs_algo::KEYS_NOT_STRINGS)?.map(<[u8]>::to_vec);
    let opts = lcs_algo::LcsArgs::parse(&ctx.argv[3..])?.with_proto_max_bulk_len(ctx.settings.proto_max_bulk_len);
    let result = lcs_algo::lcs(a.as_deref().unwrap_or_default(), b.as_deref().unwrap_or_default(), &opts)?;
    result.write(ctx.out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::clamp_range;

    #[test]
    fn getrange_rules() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(clamp_range(-1, -3, 5), None);
        assert_eq!(clamp_range(3, 100, 5), Some((3, 4)));
        assert_eq!(clamp_range(10, 100, 5), None);
        assert_eq!(clamp_range(-100, 0, 5), Some((0, 0)));
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 5), Some((0, 4)));
    }
}
