//! Stream commands, as Redis 7's `t_stream.c`: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM,
//! XSETID, XREAD and XREADGROUP (with BLOCK), XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM and
//! XINFO.
//!
//! Arguments are checked in Redis's order, key lookups happen where Redis does them (XTRIM
//! looks the key up before parsing its options, XADD after), and error texts are Redis's. The
//! storage is `store::stream`.

use resp::ReplyBuf;
use store::list::Elem;
use store::stream::{Fields, Group, Stream, StreamId, Trim};
use store::{Db, Entry, Kind, Object, ValueRef, View};

use crate::args::{self, is};
use crate::error::{wrong_arity, CmdError, CmdResult, NO_SUCH_KEY, SYNTAX, WRONGTYPE};
use crate::handlers::hashes::touch_kind;
use crate::handlers::{store_object, touch};
use crate::table::{container, spec};
use crate::table::{
    flags::*, CommandSpec, KEY1, KEY2 as KEY2_STREAM, NO_KEYS, STREAMS_KEYS_FROM_1, STREAMS_KEYS_FROM_4,
};
use crate::{notify, Ctx, Handler, Handler::Keyspace as K};

const INVALID_ID: CmdError = CmdError::fixed("ERR Invalid stream ID specified as stream command argument");
const ID_TOO_SMALL: CmdError =
    CmdError::fixed("ERR The ID specified in XADD is equal or smaller than the target stream top item");
/// Entries a blocked XREAD/XREADGROUP without COUNT gets when served (`XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_DEFAULT_COUNT: i64 = 1000;

// ---------------------------------------------------------------------------------------------
// IDs and replies

/// C's `strtoull` after Redis's `string2ll` (`string2ull`): what Redis accepts as an ID part.
fn string2ull(s: &[u8]) -> Option<u64> {
    // The C string ends at the first NUL.
    let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
    if let Some(v) = resp::decode::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut i = s.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')).count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Redis's `streamGenericParseIDOrReply`: `ms[-seq]` (a missing seq is `missing_seq`), `-`/`+`
/// unless `strict`, and `ms-*` where `auto_seq` allows it (returned as seq_given = false).
fn parse_id_full(arg: &[u8], missing_seq: u64, strict: bool, auto_seq: bool) -> CmdResult<(StreamId, bool)> {
    if arg.len() > 127 {
        return Err(INVALID_ID);
    }
    let text = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    match text {
        b"-" | b"+" if strict => return Err(INVALID_ID),
        b"-" => return Ok((StreamId::ZERO, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms_part, seq_part) = match text.iter().position(|&b| b == b'-') {
        Some(d) => (&text[..d], Some(&text[d + 1..])),
        None => (text, None),
    };
    let ms = string2ull(ms_part).ok_or(INVALID_ID)?;
    match seq_part {
        Some(b"*") if auto_seq => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((StreamId::new(ms, string2ull(seq).ok_or(INVALID_ID)?), true)),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

/// A strict ID (no `-`/`+`), a missing sequence being 0.
fn parse_strict_id(arg: &[u8]) -> CmdResult<StreamId> {
    parse_id_full(arg, 0, true, false).map(|(id, _)| id)
}

/// A range bound: `-`, `+`, an ID, or `(`ID (exclusive; returned as `true`).
fn parse_interval_id(arg: &[u8], missing_seq: u64) -> CmdResult<(StreamId, bool)> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_id_full(&arg[1..], missing_seq, true, false)?.0, true))
    } else {
        Ok((parse_id_full(arg, missing_seq, false, false)?.0, false))
    }
}

/// The start and end of XRANGE-style bounds, exclusive ones stepped inward.
fn parse_bounds(start: &[u8], end: &[u8]) -> CmdResult<(StreamId, StreamId)> {
    let (mut s, s_ex) = parse_interval_id(start, 0)?;
    if s_ex {
        s = s.next().ok_or(CmdError::fixed("ERR invalid start ID for the interval"))?;
    }
    let (mut e, e_ex) = parse_interval_id(end, u64::MAX)?;
    if e_ex {
        e = e.prev().ok_or(CmdError::fixed("ERR invalid end ID for the interval"))?;
    }
    Ok((s, e))
}

fn emit_id(out: &mut ReplyBuf, id: StreamId) {
    out.bulk_fmt(format_args!("{}-{}", id.ms, id.seq));
}

fn emit_elem(out: &mut ReplyBuf, e: Elem<'_>) {
    match e {
        Elem::Str(s) => out.bulk(s),
        Elem::Int(i) => out.bulk_i64(i),
    }
}

/// One entry: `[id, [field, value, ...]]`.
fn emit_entry(out: &mut ReplyBuf, id: StreamId, fields: &Fields<'_>) {
    out.array(2);
    emit_id(out, id);
    out.array(fields.len() * 2);
    for &(f, v) in fields {
        emit_elem(out, f);
        emit_elem(out, v);
    }
}

/// Emits the entries from `start` to `end` (at most `count`, 0 = all) as an array; returns their
/// IDs.
fn emit_range(
    out: &mut ReplyBuf,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    rev: bool,
    count: usize,
) -> Vec<StreamId> {
    let mut ids = Vec::new();
    let mut body = ReplyBuf::new(if out.is_resp3() { resp::Protocol::Resp3 } else { resp::Protocol::Resp2 });
    s.range(start, end, rev, |id, fields| {
        emit_entry(&mut body, id, &fields);
        ids.push(id);
        count == 0 || ids.len() < count
    });
    out.array(ids.len());
    out.raw(&body.buf);
    ids
}

// ---------------------------------------------------------------------------------------------
// Lookups

fn stream_of(e: &Entry) -> Option<&Stream> {
    match e.value() {
        ValueRef::Object(Object::Stream(s)) => Some(s),
        _ => None,
    }
}

/// The stream at `key`: `Ok(None)` if missing, WRONGTYPE for other types. `read` counts a
/// keyspace hit or miss.
fn read_stream<'d>(ctx: &Ctx<'_>, db: &'d mut Db, key: &[u8], read: bool) -> CmdResult<Option<&'d Stream>> {
    match touch_kind(ctx, db, key, Kind::Stream, read)? {
        None => Ok(None),
        Some(e) => {
            let e: &'d Entry = e;
            stream_of(e).map(Some).ok_or(WRONGTYPE)
        }
    }
}

/// Runs `f` on the stream at `key` (the caller checked it exists) with the reply buffer,
/// keeping the memory count right.
fn edit_stream<R>(ctx: &mut Ctx<'_>, db: &mut Db, key: &[u8], f: impl FnOnce(&mut Stream, &mut ReplyBuf) -> R) -> R {
    let mut out = std::mem::replace(ctx.out, ReplyBuf::new(resp::Protocol::Resp2));
    let r = edit_stream_into(ctx, db, key, &mut out, f);
    *ctx.out = out;
    r
}

/// [`edit_stream`] writing to `out`. The stream's heap is counted by measuring what the edit
/// allocates (its groups are B-trees whose size the code cannot see), minus what `out` grew by.
fn edit_stream_into<R>(
    ctx: &Ctx<'_>,
    db: &mut Db,
    key: &[u8],
    out: &mut ReplyBuf,
    f: impl FnOnce(&mut Stream, &mut ReplyBuf) -> R,
) -> R {
    let e = db.lookup(key, ctx.now).expect("edit_stream: the caller checked the key exists");
    let size = |e: &Entry| e.alloc_bytes() + stream_of(e).map_or(0, |s| s.heap_size());
    let before = size(e);
    touch(ctx, e);
    let Some(Object::Stream(s)) = e.object_mut() else { unreachable!("edit_stream: the key holds a stream") };
    let out_before = store::list::alloc_size(out.buf.capacity()) as i64;
    let net_before = store::memory::thread_net();
    let r = f(s, out);
    match (net_before, store::memory::thread_net()) {
        (Some(a), Some(b)) => {
            let out_growth = store::list::alloc_size(out.buf.capacity()) as i64 - out_before;
            s.account(b - a - out_growth);
        }
        _ => s.estimate_heap(),
    }
    let after = size(e);
    db.account_edit(key, before, after);
    r
}

/// The group `name` of the stream at `key`, or Redis's NOGROUP error (`what` ends its text).
fn nogroup(key: &[u8], group: &[u8], what: &str) -> CmdError {
    CmdError::new(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{what}",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

// ---------------------------------------------------------------------------------------------
// XADD / XTRIM

/// The options XADD and XTRIM share (`streamParseAddOrTrimArgsOrReply`).
#[derive(Default)]
struct AddTrim {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// The ID argument of XADD: (id, whether its sequence was given).
    id: Option<(StreamId, bool)>,
}

/// Parses from `argv[2]`; returns the options and, for XADD, the index of the ID argument.
fn parse_add_trim(ctx: &Ctx<'_>, xadd: bool) -> CmdResult<(AddTrim, usize)> {
    let argv = ctx.argv;
    let mut a = AddTrim::default();
    let mut limit: Option<i64> = None;
    let mut i = 2;
    const BOTH: CmdError =
        CmdError::fixed("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = argv[i];
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if a.trim.is_some() {
                return Err(BOTH);
            }
            a.approx = false;
            let next = argv[i + 1];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if is(opt, "maxlen") {
                let n = args::int(argv[i + 1])?;
                if n < 0 {
                    return Err(CmdError::fixed("ERR The MAXLEN argument must be >= 0."));
                }
                a.trim = Some(Trim::MaxLen(n as u64));
            } else {
                a.trim = Some(Trim::MinId(parse_strict_id(argv[i + 1])?));
            }
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let n = args::int(argv[i + 1])?;
            if n < 0 {
                return Err(CmdError::fixed("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            a.id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    if limit.is_some_and(|l| l != 0) && a.trim.is_none() {
        return Err(CmdError::fixed("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && a.trim.is_none() {
        return Err(CmdError::fixed("ERR syntax error, XTRIM must be called with a trimming strategy"));
    }
    a.limit = match (limit, a.approx) {
        (Some(_), false) => {
            return Err(CmdError::fixed("ERR syntax error, LIMIT cannot be used without the special ~ option"))
        }
        (Some(l), true) => l as u64,
        (None, true) => match 100 * ctx.settings.stream_node_max_entries {
            l if l == 0 || l > 10_000 => 10_000,
            l => l,
        },
        (None, false) => 0,
    };
    Ok((a, i))
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
pub fn xadd(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let key = argv[1];
    let (a, idpos) = parse_add_trim(ctx, true)?;
    let fields = argv.get(idpos + 1..).unwrap_or(&[]);
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(wrong_arity(&ctx.name()));
    }
    if a.id == Some((StreamId::ZERO, true)) {
        return Err(CmdError::fixed("ERR The ID specified in XADD must be greater than 0-0"));
    }
    let db = view.db(ctx.db, key);
    if read_stream(ctx, db, key, false)?.is_none() {
        if a.nomkstream {
            ctx.out.null();
            return Ok(());
        }
        store_object(ctx, db, key, Object::Stream(Box::default()));
        ctx.dirty -= 1;
    }
    let (now, max_bytes, max_entries) =
        (ctx.now, ctx.settings.stream_node_max_bytes, ctx.settings.stream_node_max_entries);
    let added = edit_stream(ctx, db, key, |s, out| {
        let last = s.last_id;
        if last == StreamId::MAX {
            return Err(CmdError::fixed("ERR The stream has exhausted the last possible ID, unable to add more items"));
        }
        let id = match a.id {
            Some((id, true)) => id,
            Some((id, false)) if id.ms == last.ms => StreamId::new(id.ms, last.seq.checked_add(1).ok_or(ID_TOO_SMALL)?),
            Some((id, false)) => id,
            None if now.max(0) as u64 > last.ms => StreamId::new(now as u64, 0),
            None => last.next().ok_or(ID_TOO_SMALL)?,
        };
        if id <= last {
            return Err(ID_TOO_SMALL);
        }
        if fields.iter().map(|f| f.len()).sum::<usize>() > store::stream::MAX_NODE_BYTES {
            return Err(CmdError::fixed("ERR Elements are too large to be stored"));
        }
        s.append(id, fields, max_bytes, max_entries);
        emit_id(out, id);
        let trimmed = a.trim.map_or(0, |t| s.trim(t, a.approx, a.limit));
        Ok((trimmed, id, s.len()))
    })?;
    let (added, id, len) = added;
    // Logged with the ID it got and any trim as the exact length it left, so a replay (or a
    // replica) ends with the same entries whatever the clock or the node layout.
    let mut logged = vec![b"XADD".to_vec(), key.to_vec()];
    if a.nomkstream {
        logged.push(b"NOMKSTREAM".to_vec());
    }
    if a.trim.is_some() {
        logged.extend([b"MAXLEN".to_vec(), b"=".to_vec(), len.to_string().into_bytes()]);
    }
    logged.push(id.to_string().into_bytes());
    logged.extend(fields.iter().map(|f| f.to_vec()));
    ctx.log_as(vec![logged]);
    ctx.dirty += 1;
    ctx.notify(notify::STREAM, "xadd", key);
    if added > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
    }
    ctx.signal_ready(key);
    Ok(())
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    if read_stream(ctx, db, key, false)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let (a, _) = parse_add_trim(ctx, false)?;
    let rule = a.trim.expect("XTRIM has a strategy");
    let (removed, len) = edit_stream(ctx, db, key, |s, _| (s.trim(rule, a.approx, a.limit), s.len()));
    ctx.log_as(vec![vec![
        b"XTRIM".to_vec(),
        key.to_vec(),
        b"MAXLEN".to_vec(),
        b"=".to_vec(),
        len.to_string().into_bytes(),
    ]]);
    if removed > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
        ctx.dirty += removed;
    }
    ctx.out.int(removed as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XLEN, XRANGE, XREVRANGE, XDEL, XSETID

/// XLEN key
pub fn xlen(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let n = read_stream(ctx, view.db(ctx.db, key), key, true)?.map_or(0, Stream::len);
    ctx.out.int(n as i64);
    Ok(())
}

fn range_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, rev: bool) -> CmdResult {
    let argv = ctx.argv;
    let key = argv[1];
    let (lo, hi) = if rev { (argv[3], argv[2]) } else { (argv[2], argv[3]) };
    let (start, end) = parse_bounds(lo, hi)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < argv.len() {
        if is(argv[j], "count") && j + 1 < argv.len() {
            count = args::int(argv[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    let Some(s) = read_stream(ctx, view.db(ctx.db, key), key, true)? else {
        ctx.out.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.null_array();
    } else {
        emit_range(ctx.out, s, start, end, rev, count.max(0) as usize);
    }
    Ok(())
}

/// XRANGE key start end [COUNT count]
pub fn xrange(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    range_generic(ctx, view, false)
}

/// XREVRANGE key end start [COUNT count]
pub fn xrevrange(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    range_generic(ctx, view, true)
}

/// XDEL key id [id ...]
pub fn xdel(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let key = argv[1];
    let ids = argv[2..].iter().map(|a| parse_strict_id(a)).collect::<CmdResult<Vec<_>>>()?;
    let db = view.db(ctx.db, key);
    if read_stream(ctx, db, key, false)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let deleted = edit_stream(ctx, db, key, |s, _| ids.iter().filter(|&&id| s.delete(id)).count());
    if deleted > 0 {
        ctx.notify(notify::STREAM, "xdel", key);
        ctx.dirty += deleted as u64;
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let key = argv[1];
    let id = parse_strict_id(argv[2])?;
    let (mut entries_added, mut max_deleted) = (None, StreamId::ZERO);
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if is(argv[i], "entriesadded") && more > 0 {
            let n = args::int(argv[i + 1])?;
            if n < 0 {
                return Err(CmdError::fixed("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if is(argv[i], "maxdeletedid") && more > 0 {
            max_deleted = parse_strict_id(argv[i + 1])?;
            if id < max_deleted {
                return Err(CmdError::fixed(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    let db = view.db(ctx.db, key);
    if read_stream(ctx, db, key, false)?.is_none() {
        return Err(NO_SUCH_KEY);
    }
    edit_stream(ctx, db, key, |s, _| {
        if id < s.max_deleted_id {
            return Err(CmdError::fixed("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"));
        }
        if !s.is_empty() {
            if id < s.edge(true).unwrap_or(StreamId::ZERO) {
                return Err(CmdError::fixed(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added.is_some_and(|n| s.len() > n) {
                return Err(CmdError::fixed(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        s.last_id = id;
        if let Some(n) = entries_added {
            s.entries_added = n;
        }
        if !max_deleted.is_zero() {
            s.max_deleted_id = max_deleted;
        }
        Ok(())
    })?;
    ctx.out.ok();
    ctx.dirty += 1;
    ctx.notify(notify::STREAM, "xsetid", key);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XREAD / XREADGROUP

/// The ID a stream is read after: an ID, XREAD's `$`/`+`, or XREADGROUP's `>`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Id(StreamId),
    /// `>`: what the group has not delivered yet.
    New,
    /// `+`: the last entry.
    Last,
}

/// XREAD [COUNT count] [BLOCK ms] STREAMS key ... id ...; XREADGROUP GROUP group consumer
/// [COUNT count] [BLOCK ms] [NOACK] STREAMS key ... id ...
fn xread_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, group_read: bool) -> CmdResult {
    let argv = ctx.argv;
    let mut timeout: Option<i64> = None;
    let mut block_arg: &[u8] = b"";
    let mut count: i64 = 0;
    let mut streams_at = 0;
    let mut group: Option<(&[u8], &[u8])> = None;
    let mut noack = false;
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let o = argv[i];
        if is(o, "block") && more > 0 {
            if ctx.in_script {
                return Err(CmdError::new(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(argv[0])
                )));
            }
            i += 1;
            let ms = args::int_or(argv[i], CmdError::fixed("ERR timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(CmdError::fixed("ERR timeout is negative"));
            }
            if ms > i64::MAX - ctx.now {
                return Err(CmdError::fixed("ERR timeout is out of range"));
            }
            block_arg = argv[i];
            timeout = Some(ms);
        } else if is(o, "count") && more > 0 {
            i += 1;
            count = args::int(argv[i])?.max(0);
        } else if is(o, "streams") && more > 0 {
            streams_at = i + 1;
            if !(argv.len() - streams_at).is_multiple_of(2) {
                let symbol = if group_read { '>' } else { '$' };
                return Err(CmdError::new(format!(
                    "ERR Unbalanced {} list of streams: for each stream key an ID or '{symbol}' must be specified.",
                    String::from_utf8_lossy(argv[0])
                )));
            }
            break;
        } else if is(o, "group") && more >= 2 {
            if !group_read {
                return Err(CmdError::fixed(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some((argv[i + 1], argv[i + 2]));
            i += 2;
        } else if is(o, "noack") {
            if !group_read {
                return Err(CmdError::fixed(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    if streams_at == 0 {
        return Err(SYNTAX);
    }
    if group_read && group.is_none() {
        return Err(CmdError::fixed("ERR Missing GROUP option for XREADGROUP"));
    }
    let n = (argv.len() - streams_at) / 2;
    let keys = &argv[streams_at..streams_at + n];
    let id_args = &argv[streams_at + n..];
    // Resolve the IDs (and check types and groups) before serving anything.
    let mut afters = Vec::with_capacity(n);
    for (key, arg) in keys.iter().zip(id_args) {
        if let (true, Some((g, _))) = (ctx.rerun, group) {
            // Served after blocking: the stream or the group went away meanwhile.
            let db = view.db(ctx.db, key);
            let stream = db.lookup(key, ctx.now).and_then(|e| stream_of(e).map(|s| s.groups.contains_key(g)));
            match stream {
                None => return Err(CmdError::fixed("UNBLOCKED the stream key no longer exists")),
                Some(false) => {
                    return Err(CmdError::fixed(
                        "NOGROUP the consumer group this client was blocked on no longer exists",
                    ))
                }
                Some(true) => {}
            }
        }
        let s = read_stream(ctx, view.db(ctx.db, key), key, false)?;
        if let Some((g, _)) = group {
            if !s.is_some_and(|s| s.groups.contains_key(g)) {
                return Err(nogroup(key, g, " in XREADGROUP with GROUP option"));
            }
        }
        let after = match *arg {
            b"$" if group_read => {
                return Err(CmdError::fixed("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            b"$" => After::Id(s.map_or(StreamId::ZERO, |s| s.last_id)),
            b">" if !group_read => {
                return Err(CmdError::fixed(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            b">" => After::New,
            b"+" if !group_read => match s.and_then(|s| s.edge(true)) {
                Some(_) => After::Last,
                None => After::Id(s.map_or(StreamId::ZERO, |s| s.last_id)),
            },
            a => After::Id(parse_strict_id(a)?),
        };
        afters.push(after);
    }
    // Serve what can be served now.
    let mut served = 0;
    let mut body = ReplyBuf::new(if ctx.out.is_resp3() { resp::Protocol::Resp3 } else { resp::Protocol::Resp2 });
    let mut effects = Vec::new();
    for (key, &after) in keys.iter().zip(&afters) {
        let db = view.db(ctx.db, key);
        if read_stream(ctx, db, key, true)?.is_none() {
            continue;
        }
        let resp3 = ctx.out.is_resp3();
        let now = ctx.now;
        let did = match group {
            None => {
                let s = read_stream(ctx, db, key, false)?.expect("checked above");
                let (start, limit) = match after {
                    After::Last => (s.edge(true).unwrap_or(StreamId::MAX), 1),
                    After::Id(gt) if s.edge(true).is_some_and(|last| last > gt) => {
                        (gt.next().unwrap_or(StreamId::MAX), count as usize)
                    }
                    _ => continue,
                };
                if !resp3 {
                    body.array(2);
                }
                body.bulk(key);
                emit_range(&mut body, s, start, StreamId::MAX, false, limit);
                true
            }
            Some((g, consumer)) => {
                let (did, created) = edit_stream_into(ctx, db, key, &mut body, |s, body| {
                    let before = effects_heap(&effects);
                    let r = serve_group(s, body, key, g, consumer, after, count as usize, noack, now, &mut effects);
                    s.account(before - effects_heap(&effects));
                    r
                });
                if created {
                    ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
                    ctx.dirty += 1;
                }
                if did {
                    ctx.dirty += 1;
                }
                did
            }
        };
        if did {
            served += 1;
        }
    }
    if group.is_some() {
        ctx.log_as(effects);
    }
    if served > 0 {
        if ctx.out.is_resp3() {
            ctx.out.map(served);
        } else {
            ctx.out.array(served);
        }
        ctx.out.raw(&body.buf);
        return Ok(());
    }
    match timeout {
        Some(ms) if ctx.may_block => {
            // Rerun later with the IDs resolved now and the count a blocked read gets.
            let mut rerun: Vec<Vec<u8>> = vec![argv[0].to_vec()];
            if let Some((g, c)) = group {
                rerun.extend([b"GROUP".to_vec(), g.to_vec(), c.to_vec()]);
            }
            let count = if count > 0 { count } else { BLOCKED_DEFAULT_COUNT };
            rerun.extend([b"COUNT".to_vec(), count.to_string().into_bytes(), b"BLOCK".to_vec(), block_arg.to_vec()]);
            if noack {
                rerun.push(b"NOACK".to_vec());
            }
            rerun.push(b"STREAMS".to_vec());
            rerun.extend(keys.iter().map(|k| k.to_vec()));
            rerun.extend(afters.iter().map(|a| match a {
                After::Id(id) => id.to_string().into_bytes(),
                After::New => b">".to_vec(),
                After::Last => b"$".to_vec(),
            }));
            let deadline = if ms == 0 { None } else { Some(ctx.now + ms) };
            ctx.block =
                Some(crate::Block { deadline, keys: keys.iter().map(|k| k.to_vec()).collect(), rerun: Some(rerun) });
        }
        _ => ctx.out.null_array(),
    }
    Ok(())
}

/// The command that repeats one delivery of a pending entry (how Redis propagates
/// XREADGROUP and XCLAIM): the entry pending for `consumer`, delivered at `time`, `count`
/// times, and the group's last ID at least `last`.
fn claim_effect(
    key: &[u8],
    g: &[u8],
    consumer: &[u8],
    id: StreamId,
    time: i64,
    count: u64,
    last: StreamId,
) -> Vec<Vec<u8>> {
    let mut c = vec![b"XCLAIM".to_vec(), key.to_vec(), g.to_vec(), consumer.to_vec(), b"0".to_vec()];
    c.push(id.to_string().into_bytes());
    c.extend([b"TIME".to_vec(), time.to_string().into_bytes(), b"RETRYCOUNT".to_vec(), count.to_string().into_bytes()]);
    c.extend([b"FORCE".to_vec(), b"JUSTID".to_vec(), b"LASTID".to_vec(), last.to_string().into_bytes()]);
    c
}

/// `XGROUP SETID key group last [ENTRIESREAD n]`: a group's position, as the log repeats it.
fn setid_effect(key: &[u8], g: &[u8], last: StreamId, entries_read: Option<u64>) -> Vec<Vec<u8>> {
    let mut c = vec![b"XGROUP".to_vec(), b"SETID".to_vec(), key.to_vec(), g.to_vec(), last.to_string().into_bytes()];
    if let Some(read) = entries_read {
        c.extend([b"ENTRIESREAD".to_vec(), read.to_string().into_bytes()]);
    }
    c
}

/// Heap bytes of collected log effects: scratch an edit allocates that the stream does not
/// keep, so it is taken out of the edit's measured growth (see [`edit_stream_into`]).
fn effects_heap(v: &Vec<Vec<Vec<u8>>>) -> i64 {
    let cmds: usize = v
        .iter()
        .map(|c| {
            store::list::alloc_size(c.capacity() * std::mem::size_of::<Vec<u8>>())
                + c.iter().map(|a| store::list::alloc_size(a.capacity())).sum::<usize>()
        })
        .sum();
    (store::list::alloc_size(v.capacity() * std::mem::size_of::<Vec<Vec<u8>>>()) + cmds) as i64
}

/// Serves one stream of an XREADGROUP into `body`: (whether it was served, whether the consumer
/// was created). Appends the commands that repeat its deliveries to `log`.
#[allow(clippy::too_many_arguments)]
fn serve_group(
    s: &mut Stream,
    body: &mut ReplyBuf,
    key: &[u8],
    g: &[u8],
    consumer: &[u8],
    after: After,
    count: usize,
    noack: bool,
    now: i64,
    log: &mut Vec<Vec<Vec<u8>>>,
) -> (bool, bool) {
    let last_valid = s.edge(true);
    let group_last = s.groups[g].last_id;
    let (start, history) = match after {
        After::Id(gt) => (gt.next(), true),
        _ if last_valid.is_some_and(|m| m > group_last) => (group_last.next(), false),
        _ => return (false, false),
    };
    // The consumer exists (and is seen) once it is served, as in Redis.
    let (c, created) = s.groups.get_mut(g).expect("checked above").consumer(consumer, now);
    c.seen_time = now;
    if created {
        log.push(vec![b"XGROUP".to_vec(), b"CREATECONSUMER".to_vec(), key.to_vec(), g.to_vec(), consumer.to_vec()]);
    }
    let group = &s.groups[g];
    if !body.is_resp3() {
        body.array(2);
    }
    body.bulk(key);
    let Some(start) = start else {
        body.array(0);
        return (true, created);
    };
    if history {
        // The consumer's own pending entries from `start`.
        let ids: Vec<StreamId> = group.consumers[consumer]
            .pending
            .range(start..)
            .take(if count == 0 { usize::MAX } else { count })
            .copied()
            .collect();
        body.array(ids.len());
        let mut delivered = Vec::new();
        for id in ids {
            match s.get(id) {
                Some(fields) => {
                    emit_entry(body, id, &fields);
                    delivered.push(id);
                }
                None => {
                    body.array(2);
                    emit_id(body, id);
                    body.null_array();
                }
            }
        }
        let group = s.groups.get_mut(g).expect("checked above");
        let last = group.last_id;
        for id in delivered {
            if let Some(p) = group.pel.get_mut(&id) {
                p.delivery_time = now;
                p.delivery_count += 1;
                log.push(claim_effect(key, g, consumer, id, now, p.delivery_count, last));
            }
        }
        return (true, created);
    }
    let ids = emit_range(body, s, start, StreamId::MAX, false, count);
    for &id in &ids {
        s.advance_group(g, id);
        let group = s.groups.get_mut(g).expect("checked above");
        if !noack {
            group.deliver(id, consumer, now, 1);
            log.push(claim_effect(key, g, consumer, id, now, 1, id));
        }
    }
    if let Some(&last) = ids.last() {
        log.push(setid_effect(key, g, last, s.groups[g].entries_read));
    }
    if !ids.is_empty() {
        if let Some(c) = s.groups.get_mut(g).and_then(|g| g.consumers.get_mut(consumer)) {
            c.active_time = now;
        }
    }
    (true, created)
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
pub fn xread(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    xread_generic(ctx, view, false)
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key ... id ...
pub fn xreadgroup(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    xread_generic(ctx, view, true)
}

// ---------------------------------------------------------------------------------------------
// XGROUP

fn subcommand_syntax(ctx: &Ctx<'_>) -> CmdError {
    CmdError::new(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&ctx.argv[1][..ctx.argv[1].len().min(128)]),
        String::from_utf8_lossy(ctx.argv[0]).to_ascii_uppercase()
    ))
}

/// Checks what every XGROUP subcommand but HELP checks (`xgroupCommand`'s preamble): options,
/// the key's type and existence, the group where one is needed. Returns MKSTREAM and
/// ENTRIESREAD.
fn xgroup_preamble(
    ctx: &mut Ctx<'_>,
    view: &mut View<'_>,
    create: bool,
    setid: bool,
) -> CmdResult<(bool, Option<u64>)> {
    let argv = ctx.argv;
    let (mut mkstream, mut entries_read) = (false, None);
    if create || setid {
        let mut i = 5;
        while i < argv.len() {
            if create && is(argv[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if is(argv[i], "entriesread") && i + 1 < argv.len() {
                let n = args::int(argv[i + 1])?;
                if n < -1 {
                    return Err(CmdError::fixed("ERR value for ENTRIESREAD must be positive or -1"));
                }
                entries_read = u64::try_from(n).ok();
                i += 2;
            } else {
                return Err(subcommand_syntax(ctx));
            }
        }
    }
    let (key, name) = (argv[2], argv[3]);
    let s = read_stream(ctx, view.db(ctx.db, key), key, false)?;
    if s.is_none() && !mkstream {
        return Err(CmdError::fixed("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
    }
    let needs_group = !create && !is(argv[1], "destroy");
    if needs_group && !s.is_some_and(|s| s.groups.contains_key(name)) {
        return Err(CmdError::new(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(key)
        )));
    }
    Ok((mkstream, entries_read))
}

/// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n]
pub fn xgroup_create(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (mkstream, entries_read) = xgroup_preamble(ctx, view, true, false)?;
    let argv = ctx.argv;
    if argv.len() > 8 {
        return Err(subcommand_syntax(ctx));
    }
    let (key, name) = (argv[2], argv[3]);
    let db = view.db(ctx.db, key);
    let id = match argv[4] {
        b"$" => read_stream(ctx, db, key, false)?.map_or(StreamId::ZERO, |s| s.last_id),
        a => parse_strict_id(a)?,
    };
    if mkstream && read_stream(ctx, db, key, false)?.is_none() {
        store_object(ctx, db, key, Object::Stream(Box::default()));
        ctx.dirty -= 1;
    }
    let created = edit_stream(ctx, db, key, |s, _| {
        if s.groups.contains_key(name) {
            return false;
        }
        s.groups.insert(name.to_vec(), Group::new(id, entries_read));
        true
    });
    if !created {
        return Err(CmdError::fixed("BUSYGROUP Consumer Group name already exists"));
    }
    ctx.out.ok();
    ctx.dirty += 1;
    ctx.notify(notify::STREAM, "xgroup-create", key);
    Ok(())
}

/// XGROUP SETID key group id|$ [ENTRIESREAD n]
pub fn xgroup_setid(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (_, entries_read) = xgroup_preamble(ctx, view, false, true)?;
    let argv = ctx.argv;
    if argv.len() != 5 && argv.len() != 7 {
        return Err(subcommand_syntax(ctx));
    }
    let (key, name) = (argv[2], argv[3]);
    let db = view.db(ctx.db, key);
    let id = match argv[4] {
        b"$" => read_stream(ctx, db, key, false)?.map_or(StreamId::ZERO, |s| s.last_id),
        a => parse_id_full(a, 0, false, false)?.0,
    };
    edit_stream(ctx, db, key, |s, _| {
        if let Some(g) = s.groups.get_mut(name) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
    });
    ctx.out.ok();
    ctx.dirty += 1;
    ctx.notify(notify::STREAM, "xgroup-setid", key);
    Ok(())
}

/// XGROUP DESTROY key group
pub fn xgroup_destroy(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    xgroup_preamble(ctx, view, false, false)?;
    let (key, name) = (ctx.argv[2], ctx.argv[3]);
    let db = view.db(ctx.db, key);
    let removed = edit_stream(ctx, db, key, |s, _| s.groups.remove(name).is_some());
    ctx.out.int(i64::from(removed));
    if removed {
        ctx.dirty += 1;
        ctx.notify(notify::STREAM, "xgroup-destroy", key);
        ctx.signal_ready(key);
    }
    Ok(())
}

/// XGROUP CREATECONSUMER key group consumer
pub fn xgroup_createconsumer(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    xgroup_preamble(ctx, view, false, false)?;
    let (key, name, consumer, now) = (ctx.argv[2], ctx.argv[3], ctx.argv[4], ctx.now);
    let db = view.db(ctx.db, key);
    let created = edit_stream(ctx, db, key, |s, _| s.groups.get_mut(name).is_some_and(|g| g.consumer(consumer, now).1));
    ctx.out.int(i64::from(created));
    if created {
        ctx.dirty += 1;
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

/// XGROUP DELCONSUMER key group consumer → the pending entries it had.
pub fn xgroup_delconsumer(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    xgroup_preamble(ctx, view, false, false)?;
    let (key, name, consumer) = (ctx.argv[2], ctx.argv[3], ctx.argv[4]);
    let db = view.db(ctx.db, key);
    let pending = edit_stream(ctx, db, key, |s, _| {
        let g = s.groups.get_mut(name)?;
        let c = g.consumers.remove(consumer)?;
        for id in &c.pending {
            g.pel.remove(id);
        }
        Some(c.pending.len())
    });
    ctx.out.int(pending.unwrap_or(0) as i64);
    if pending.is_some() {
        ctx.dirty += 1;
        ctx.notify(notify::STREAM, "xgroup-delconsumer", key);
    }
    Ok(())
}

/// XGROUP HELP
pub fn xgroup_help(ctx: &mut Ctx<'_>, _view: &mut View<'_>) -> CmdResult {
    help(
        ctx.out,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

/// A HELP reply in Redis's shape (`addReplyHelp`).
fn help(out: &mut ReplyBuf, name: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

// ---------------------------------------------------------------------------------------------
// XACK, XPENDING, XCLAIM, XAUTOCLAIM

/// XACK key group id [id ...]
pub fn xack(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let (key, name) = (argv[1], argv[2]);
    let db = view.db(ctx.db, key);
    let has_group = read_stream(ctx, db, key, false)?.is_some_and(|s| s.groups.contains_key(name));
    if !has_group {
        ctx.out.int(0);
        return Ok(());
    }
    let ids = argv[3..].iter().map(|a| parse_strict_id(a)).collect::<CmdResult<Vec<_>>>()?;
    let acked = edit_stream(ctx, db, key, |s, _| {
        let g = s.groups.get_mut(name).expect("checked above");
        ids.iter().filter(|&&id| g.ack(id)).count()
    });
    ctx.dirty += acked as u64;
    ctx.out.int(acked as i64);
    Ok(())
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let (key, name) = (argv[1], argv[2]);
    if argv.len() != 3 && !(6..=9).contains(&argv.len()) {
        return Err(SYNTAX);
    }
    let mut range = None;
    if argv.len() >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if is(argv[3], "idle") {
            min_idle = args::int(argv[4])?;
            if argv.len() < 8 {
                return Err(SYNTAX);
            }
            at += 2;
        }
        let count = args::int(argv.get(at + 2).ok_or(SYNTAX)?)?.max(0);
        let (start, end) = parse_bounds(argv[at], argv[at + 1])?;
        range = Some((min_idle, start, end, count as usize, argv.get(at + 3).copied()));
    }
    let Some(s) = read_stream(ctx, view.db(ctx.db, key), key, true)? else {
        return Err(nogroup(key, name, ""));
    };
    let Some(g) = s.groups.get(name) else { return Err(nogroup(key, name, "")) };
    let out = &mut *ctx.out;
    let Some((min_idle, start, end, count, consumer)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        match (g.pel.keys().next(), g.pel.keys().next_back()) {
            (Some(&first), Some(&last)) => {
                emit_id(out, first);
                emit_id(out, last);
                let holders: Vec<_> = g.consumers.iter().filter(|(_, c)| !c.pending.is_empty()).collect();
                out.array(holders.len());
                for (n, c) in holders {
                    out.array(2);
                    out.bulk(n);
                    out.bulk_i64(c.pending.len() as i64);
                }
            }
            _ => {
                out.null();
                out.null();
                out.null_array();
            }
        }
        return Ok(());
    };
    let ids: Vec<StreamId> = match consumer {
        Some(c) => match g.consumers.get(c) {
            Some(c) => c.pending.range(start..).copied().collect(),
            None => {
                out.array(0);
                return Ok(());
            }
        },
        None => g.pel.range(start..).map(|(id, _)| *id).collect(),
    };
    let now = ctx.now;
    let mut rows = Vec::new();
    for id in ids {
        if rows.len() >= count || id > end {
            break;
        }
        let p = &g.pel[&id];
        if min_idle > 0 && now - p.delivery_time < min_idle {
            continue;
        }
        rows.push((id, p));
    }
    out.array(rows.len());
    for (id, p) in rows {
        out.array(4);
        emit_id(out, id);
        out.bulk(&p.consumer);
        out.int((now - p.delivery_time).max(0));
        out.int(p.delivery_count as i64);
    }
    Ok(())
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let (key, name, consumer) = (argv[1], argv[2], argv[3]);
    let db = view.db(ctx.db, key);
    let has_group = read_stream(ctx, db, key, false)?.is_some_and(|s| s.groups.contains_key(name));
    if !has_group {
        return Err(nogroup(key, name, ""));
    }
    let min_idle = args::int_or(argv[4], CmdError::fixed("ERR Invalid min-idle-time argument for XCLAIM"))?.max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < argv.len() {
        match parse_strict_id(argv[j]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now;
    let (mut force, mut justid, mut retry, mut time, mut last_id) = (false, false, None, None, StreamId::ZERO);
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let opt = argv[j];
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            j += 1;
            let idle = args::int_or(argv[j], CmdError::fixed("ERR Invalid IDLE option argument for XCLAIM"))?;
            time = Some(now - idle);
        } else if is(opt, "time") && more > 0 {
            j += 1;
            time = Some(args::int_or(argv[j], CmdError::fixed("ERR Invalid TIME option argument for XCLAIM"))?);
        } else if is(opt, "retrycount") && more > 0 {
            j += 1;
            retry = Some(args::int_or(argv[j], CmdError::fixed("ERR Invalid RETRYCOUNT option argument for XCLAIM"))?);
        } else if is(opt, "lastid") && more > 0 {
            j += 1;
            last_id = parse_strict_id(argv[j])?;
        } else {
            return Err(CmdError::new(format!("ERR Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt))));
        }
        j += 1;
    }
    // A replay (the append-only log) repeats deliveries at the times they happened.
    let replaying = ctx.replaying();
    let delivery = match time {
        Some(t) if t >= 0 && (t <= now || replaying) => t,
        _ => now,
    };
    let stamp = if replaying { delivery } else { now };
    let mut effects = Vec::new();
    let changed = edit_stream(ctx, db, key, |s, out| {
        let mut changed = 0u64;
        let g = s.groups.get_mut(name).expect("checked above");
        if last_id > g.last_id {
            g.last_id = last_id;
            changed += 1;
            effects.push(setid_effect(key, name, last_id, g.entries_read));
        }
        let mut body = ReplyBuf::new(if out.is_resp3() { resp::Protocol::Resp3 } else { resp::Protocol::Resp2 });
        let mut n = 0;
        for id in ids {
            let exists = s.get(id).is_some();
            let g = s.groups.get_mut(name).expect("checked above");
            if !exists {
                if g.ack(id) {
                    changed += 1;
                    effects.push(vec![b"XACK".to_vec(), key.to_vec(), name.to_vec(), id.to_string().into_bytes()]);
                }
                continue;
            }
            let pending = g.pel.get(&id).cloned();
            let count = match (&pending, force) {
                (Some(p), _) => {
                    if min_idle > 0 && now - p.delivery_time < min_idle {
                        continue;
                    }
                    p.delivery_count
                }
                // A pending entry FORCE creates starts as delivered once.
                (None, true) => 1,
                (None, false) => continue,
            };
            let count = match retry {
                Some(r) if r >= 0 => r as u64,
                _ if !justid => count + 1,
                _ => count,
            };
            g.consumer(consumer, stamp).0.seen_time = stamp;
            g.deliver(id, consumer, delivery, count);
            if let Some(c) = g.consumers.get_mut(consumer) {
                c.active_time = stamp;
            }
            effects.push(claim_effect(key, name, consumer, id, delivery, count, g.last_id));
            if justid {
                emit_id(&mut body, id);
            } else {
                let fields = s.get(id).expect("exists");
                emit_entry(&mut body, id, &fields);
            }
            n += 1;
            changed += 1;
        }
        out.array(n);
        out.raw(&body.buf);
        s.account(-effects_heap(&effects));
        changed
    });
    ctx.log_as(effects);
    ctx.dirty += changed;
    Ok(())
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let (key, name, consumer) = (argv[1], argv[2], argv[3]);
    let min_idle = args::int_or(argv[4], CmdError::fixed("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?.max(0);
    let (mut start, ex) = parse_interval_id(argv[5], 0)?;
    if ex {
        start = start.next().ok_or(CmdError::fixed("ERR invalid start ID for the interval"))?;
    }
    let (mut count, mut justid) = (100i64, false);
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if is(argv[j], "count") && more > 0 {
            count = args::int_in(argv[j + 1], 1, i64::MAX / 16, Some("ERR COUNT must be > 0"))?;
            j += 1;
        } else if is(argv[j], "justid") {
            justid = true;
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    let db = view.db(ctx.db, key);
    let has_group = read_stream(ctx, db, key, false)?.is_some_and(|s| s.groups.contains_key(name));
    if !has_group {
        return Err(nogroup(key, name, ""));
    }
    let now = ctx.now;
    let mut effects = Vec::new();
    let changed = edit_stream(ctx, db, key, |s, out| {
        let mut changed = 0u64;
        let mut attempts = count * 10;
        let mut left = count;
        let mut claimed = ReplyBuf::new(if out.is_resp3() { resp::Protocol::Resp3 } else { resp::Protocol::Resp2 });
        let (mut n, mut deleted) = (0, Vec::new());
        let mut cursor = Some(start);
        let mut next_cursor = StreamId::ZERO;
        while let Some(from) = cursor {
            let candidate =
                s.groups[name].pel.range(from..).next().map(|(id, p)| (*id, p.delivery_time, p.delivery_count));
            let Some((id, delivered_at, deliveries)) = candidate else { break };
            if attempts == 0 || left == 0 {
                next_cursor = id;
                break;
            }
            attempts -= 1;
            cursor = id.next();
            let exists = s.get(id).is_some();
            let g = s.groups.get_mut(name).expect("checked above");
            if !exists {
                g.ack(id);
                effects.push(vec![b"XACK".to_vec(), key.to_vec(), name.to_vec(), id.to_string().into_bytes()]);
                deleted.push(id);
                left -= 1;
                changed += 1;
                continue;
            }
            if min_idle > 0 && now - delivered_at < min_idle {
                continue;
            }
            g.consumer(consumer, now).0.seen_time = now;
            let count = if justid { deliveries } else { deliveries + 1 };
            g.deliver(id, consumer, now, count);
            if let Some(c) = g.consumers.get_mut(consumer) {
                c.active_time = now;
            }
            effects.push(claim_effect(key, name, consumer, id, now, count, g.last_id));
            if justid {
                emit_id(&mut claimed, id);
            } else {
                let fields = s.get(id).expect("exists");
                emit_entry(&mut claimed, id, &fields);
            }
            n += 1;
            left -= 1;
            changed += 1;
        }
        out.array(3);
        emit_id(out, next_cursor);
        out.array(n);
        out.raw(&claimed.buf);
        out.array(deleted.len());
        for id in deleted {
            emit_id(out, id);
        }
        s.account(-effects_heap(&effects));
        changed
    });
    ctx.log_as(effects);
    ctx.dirty += changed;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XINFO

/// Writes a map header (a flat array of pairs in RESP2).
fn map(out: &mut ReplyBuf, pairs: usize) {
    if out.is_resp3() {
        out.map(pairs);
    } else {
        out.array(pairs * 2);
    }
}

fn emit_optional_entry(out: &mut ReplyBuf, s: &Stream, id: Option<StreamId>) {
    match id.and_then(|id| s.get(id).map(|f| (id, f))) {
        Some((id, fields)) => emit_entry(out, id, &fields),
        None => out.null(),
    }
}

fn emit_lag(out: &mut ReplyBuf, s: &Stream, g: &Group) {
    out.bulk(b"entries-read");
    match g.entries_read {
        Some(n) => out.int(n as i64),
        None => out.null(),
    }
    out.bulk(b"lag");
    match s.lag(g) {
        Some(n) => out.int(n as i64),
        None => out.null(),
    }
}

/// The stream's common XINFO STREAM fields (the first seven).
fn emit_stream_head(out: &mut ReplyBuf, s: &Stream) {
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.node_count() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(s.radix_tree_nodes() as i64);
    out.bulk(b"last-generated-id");
    emit_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    emit_id(out, s.max_deleted_id);
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    emit_id(out, s.first_id);
}

fn xinfo_stream_key<'d>(ctx: &Ctx<'_>, view: &'d mut View<'_>) -> CmdResult<&'d Stream> {
    let key = ctx.argv[2];
    read_stream(ctx, view.db(ctx.db, key), key, true)?.ok_or(NO_SUCH_KEY)
}

/// XINFO STREAM key [FULL [COUNT count]]
pub fn xinfo_stream(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let argv = ctx.argv;
    let mut full = false;
    let mut count: i64 = 10;
    if argv.len() > 3 {
        if !is(argv[3], "full") {
            return Err(subcommand_syntax(ctx));
        }
        full = true;
        match argv.len() {
            4 => {}
            6 if is(argv[4], "count") => {
                count = args::int(argv[5])?;
                if count < 0 {
                    count = 10;
                }
            }
            _ => return Err(subcommand_syntax(ctx)),
        }
    }
    let s = xinfo_stream_key(ctx, view)?;
    let out = &mut *ctx.out;
    let now = ctx.now;
    if !full {
        map(out, 10);
        emit_stream_head(out, s);
        out.bulk(b"groups");
        out.int(s.groups.len() as i64);
        out.bulk(b"first-entry");
        emit_optional_entry(out, s, s.edge(false));
        out.bulk(b"last-entry");
        emit_optional_entry(out, s, s.edge(true));
        return Ok(());
    }
    let _ = now;
    map(out, 9);
    emit_stream_head(out, s);
    out.bulk(b"entries");
    emit_range(out, s, StreamId::ZERO, StreamId::MAX, false, count as usize);
    out.bulk(b"groups");
    out.array(s.groups.len());
    let limit = if count == 0 { usize::MAX } else { count as usize };
    for (name, g) in &s.groups {
        map(out, 7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        emit_id(out, g.last_id);
        emit_lag(out, s, g);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let shown = g.pel.len().min(limit);
        out.array(shown);
        for (id, p) in g.pel.iter().take(shown) {
            out.array(4);
            emit_id(out, *id);
            out.bulk(&p.consumer);
            out.int(p.delivery_time);
            out.int(p.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            // Redis 7.2's fields: seen-time is the last attempt, active-time the last
            // successful read or claim (-1 if none).
            map(out, 5);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time);
            out.bulk(b"active-time");
            out.int(c.active_time);
            out.bulk(b"pel-count");
            out.int(c.pending.len() as i64);
            out.bulk(b"pending");
            let shown = c.pending.len().min(limit);
            out.array(shown);
            for id in c.pending.iter().take(shown) {
                let p = &g.pel[id];
                out.array(3);
                emit_id(out, *id);
                out.int(p.delivery_time);
                out.int(p.delivery_count as i64);
            }
        }
    }
    Ok(())
}

/// XINFO GROUPS key
pub fn xinfo_groups(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let s = xinfo_stream_key(ctx, view)?;
    let out = &mut *ctx.out;
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        map(out, 6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.int(g.consumers.len() as i64);
        out.bulk(b"pending");
        out.int(g.pel.len() as i64);
        out.bulk(b"last-delivered-id");
        emit_id(out, g.last_id);
        emit_lag(out, s, g);
    }
    Ok(())
}

/// XINFO CONSUMERS key group
pub fn xinfo_consumers(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, name, now) = (ctx.argv[2], ctx.argv[3], ctx.now);
    let s = xinfo_stream_key(ctx, view)?;
    let Some(g) = s.groups.get(name) else {
        return Err(CmdError::new(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(key)
        )));
    };
    let out = &mut *ctx.out;
    out.array(g.consumers.len());
    for (cname, c) in &g.consumers {
        // Redis 7.2's fields: idle since the last attempted interaction, inactive since the
        // last successful one (-1 if none).
        map(out, 4);
        out.bulk(b"name");
        out.bulk(cname);
        out.bulk(b"pending");
        out.int(c.pending.len() as i64);
        out.bulk(b"idle");
        out.int((now - c.seen_time).max(0));
        out.bulk(b"inactive");
        out.int(if c.active_time < 0 { -1 } else { (now - c.active_time).max(0) });
    }
    Ok(())
}

/// XINFO HELP
pub fn xinfo_help(ctx: &mut Ctx<'_>, _view: &mut View<'_>) -> CmdResult {
    help(
        ctx.out,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The command table

pub static XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "create",
        -5,
        WRITE | DENYOOM,
        KEY2_STREAM,
        ["@write", "@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xgroup_create),
        "Creates a consumer group.",
        "O(1)"
    ),
    spec!(
        "createconsumer",
        5,
        WRITE | DENYOOM,
        KEY2_STREAM,
        ["@write", "@stream", "@slow"],
        "stream",
        "6.2.0",
        K(xgroup_createconsumer),
        "Creates a consumer in a consumer group.",
        "O(1)"
    ),
    spec!(
        "delconsumer",
        5,
        WRITE,
        KEY2_STREAM,
        ["@write", "@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xgroup_delconsumer),
        "Deletes a consumer from a consumer group.",
        "O(1)"
    ),
    spec!(
        "destroy",
        4,
        WRITE,
        KEY2_STREAM,
        ["@write", "@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xgroup_destroy),
        "Destroys a consumer group.",
        "O(N) where N is the number of entries in the group's pending entries list (PEL)."
    ),
    spec!(
        "help",
        2,
        LOADING | STALE,
        NO_KEYS,
        ["@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xgroup_help),
        "Returns helpful text about the different subcommands.",
        "O(1)"
    ),
    spec!(
        "setid",
        -5,
        WRITE,
        KEY2_STREAM,
        ["@write", "@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xgroup_setid),
        "Sets the last-delivered ID of a consumer group.",
        "O(1)"
    ),
];

pub static XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "consumers",
        4,
        READONLY,
        KEY2_STREAM,
        ["@read", "@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xinfo_consumers),
        "Returns a list of the consumers in a consumer group.",
        "O(1)"
    ),
    spec!(
        "groups",
        3,
        READONLY,
        KEY2_STREAM,
        ["@read", "@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xinfo_groups),
        "Returns a list of the consumer groups of a stream.",
        "O(1)"
    ),
    spec!(
        "help",
        2,
        LOADING | STALE,
        NO_KEYS,
        ["@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xinfo_help),
        "Returns helpful text about the different subcommands.",
        "O(1)"
    ),
    spec!(
        "stream",
        -3,
        READONLY,
        KEY2_STREAM,
        ["@read", "@stream", "@slow"],
        "stream",
        "5.0.0",
        K(xinfo_stream),
        "Returns information about a stream.",
        "O(1)"
    ),
];

pub static COMMANDS: &[CommandSpec] = &[
    spec!("xack", -4, WRITE | FAST, KEY1, ["@write", "@stream", "@fast"], "stream", "5.0.0", K(xack), "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", "O(1) for each message ID processed."),
    spec!("xadd", -5, WRITE | DENYOOM | FAST, KEY1, ["@write", "@stream", "@fast"], "stream", "5.0.0", K(xadd), "Appends a new message to a stream. Creates the key if it doesn't exist.", "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted."),
    spec!("xautoclaim", -6, WRITE | FAST, KEY1, ["@write", "@stream", "@fast"], "stream", "6.2.0", K(xautoclaim), "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", "O(1) if COUNT is small."),
    spec!("xclaim", -6, WRITE | FAST, KEY1, ["@write", "@stream", "@fast"], "stream", "5.0.0", K(xclaim), "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", "O(log N) with N being the number of messages in the PEL of the consumer group."),
    spec!("xdel", -3, WRITE | FAST, KEY1, ["@write", "@stream", "@fast"], "stream", "5.0.0", K(xdel), "Returns the number of messages after removing them from a stream.", "O(1) for each single item to delete in the stream, regardless of the stream size."),
    container!("xgroup", ["@slow"], "stream", "5.0.0", "A container for consumer groups commands.", XGROUP_SUBCOMMANDS),
    container!("xinfo", ["@slow"], "stream", "5.0.0", "A container for stream introspection commands.", XINFO_SUBCOMMANDS),
    spec!("xlen", 2, READONLY | FAST, KEY1, ["@read", "@stream", "@fast"], "stream", "5.0.0", K(xlen), "Return the number of messages in a stream.", "O(1)"),
    spec!("xpending", -3, READONLY, KEY1, ["@read", "@stream", "@slow"], "stream", "5.0.0", K(xpending), "Returns the information and entries from a stream consumer group's pending entries list.", "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer."),
    spec!("xrange", -4, READONLY, KEY1, ["@read", "@stream", "@slow"], "stream", "5.0.0", K(xrange), "Returns the messages from a stream within a range of IDs.", "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1)."),
    spec!("xread", -4, READONLY | BLOCKING | MOVABLEKEYS, STREAMS_KEYS_FROM_1, ["@read", "@stream", "@slow", "@blocking"], "stream", "5.0.0", K(xread), "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", "O(1)"),
    spec!("xreadgroup", -7, WRITE | BLOCKING | MOVABLEKEYS, STREAMS_KEYS_FROM_4, ["@write", "@stream", "@slow", "@blocking"], "stream", "5.0.0", K(xreadgroup), "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data."),
    spec!("xrevrange", -4, READONLY, KEY1, ["@read", "@stream", "@slow"], "stream", "5.0.0", K(xrevrange), "Returns the messages from a stream within a range of IDs in reverse order.", "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1)."),
    spec!("xsetid", -3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@stream", "@fast"], "stream", "5.0.0", K(xsetid), "An internal command for replicating stream values.", "O(1)"),
    spec!("xtrim", -4, WRITE, KEY1, ["@write", "@stream", "@slow"], "stream", "5.0.0", K(xtrim), "Deletes messages from the beginning of a stream.", "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation."),
];
