//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, RENAME, RENAMENX, COPY, MOVE, TOUCH,
//! KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB and OBJECT.

use store::entry::{lru_clock, lru_idle_secs};
use store::glob::glob_match;
use store::keyspace::SHARDS;
use store::{Db, Entry, Kind, NewValue, ValueRef, View};

use crate::args::{self, is};
use crate::error::{CmdError, CmdResult, DB_INDEX, NO_SUCH_KEY, SYNTAX};
use crate::handlers::{clock, string_bytes};
use crate::{notify, Ctx};

const SAME_OBJECT: CmdError = CmdError::fixed("ERR source and destination objects are the same");

/// DEL key [key ...] (and UNLINK) → number of keys removed.
pub fn del(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let mut n = 0;
    for key in &ctx.argv[1..] {
        let db = view.db(ctx.db, key);
        if db.contains(key, ctx.now) {
            db.remove(key);
            n += 1;
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.dirty += n as u64;
    ctx.out.int(n);
    Ok(())
}

/// EXISTS key [key ...] → how many of the named keys exist (repeats count again).
pub fn exists(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let n = ctx.argv[1..].iter().filter(|k| view.db(ctx.db, k).lookup_read(k, ctx.now).is_some()).count();
    ctx.out.int(n as i64);
    Ok(())
}

/// TOUCH key [key ...] → how many exist; refreshes their access clock.
pub fn touch(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let mut n = 0;
    for key in &ctx.argv[1..] {
        if let Some(e) = view.db(ctx.db, key).lookup_read(key, ctx.now) {
            crate::handlers::touch(ctx, e);
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// TYPE key → string, list, set, zset, hash, stream or none.
pub fn type_(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let name = view.db(ctx.db, key).lookup_read(key, ctx.now).map_or("none", |e| e.kind().name());
    ctx.out.simple(name);
    Ok(())
}

/// A copy of `e` under another key (deep-copies objects), with the given expiry.
fn copy_entry(e: &Entry, key: &[u8], expire_at: Option<i64>, clock: u32) -> Entry {
    let mut copy = match e.value() {
        ValueRef::Inline(v) => Entry::new(key, NewValue::Inline(v), expire_at, clock),
        ValueRef::Object(o) => Entry::new(key, NewValue::Object(Box::new(o.clone())), expire_at, clock),
    };
    copy.set_plain(e.is_plain());
    copy
}

fn rename_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, nx: bool) -> CmdResult {
    let (src, dst) = (ctx.argv[1], ctx.argv[2]);
    if !view.db(ctx.db, src).contains(src, ctx.now) {
        return Err(NO_SUCH_KEY);
    }
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    if view.db(ctx.db, dst).contains(dst, ctx.now) {
        if nx {
            ctx.out.int(0);
            return Ok(());
        }
        view.db(ctx.db, dst).remove(dst);
    }
    let old = view.db(ctx.db, src).remove(src).expect("checked above");
    let moved = copy_entry(&old, dst, old.expire_at(), old.clock());
    view.db(ctx.db, dst).insert(moved);
    ctx.dirty += 1;
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// RENAME key newkey
pub fn rename(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    rename_generic(ctx, view, false)
}

/// RENAMENX key newkey → 1 if renamed, 0 if newkey existed.
pub fn renamenx(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    rename_generic(ctx, view, true)
}

/// Parses a database index argument (MOVE, COPY ... DB).
fn db_index(view: &View<'_>, arg: &[u8]) -> CmdResult<usize> {
    let id = args::c_int(arg, None)?;
    if id < 0 || id as usize >= view.databases() {
        return Err(DB_INDEX);
    }
    Ok(id as usize)
}

/// COPY source destination [DB destination-db] [REPLACE] → 1 if copied, else 0.
pub fn copy(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (src, dst) = (ctx.argv[1], ctx.argv[2]);
    let mut dst_db = ctx.db;
    let mut replace = false;
    let mut i = 3;
    while i < ctx.argv.len() {
        if is(ctx.argv[i], "replace") {
            replace = true;
        } else if is(ctx.argv[i], "db") && i + 1 < ctx.argv.len() {
            dst_db = db_index(view, ctx.argv[i + 1])?;
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    if dst_db == ctx.db && src == dst {
        return Err(SAME_OBJECT);
    }
    let now = ctx.now;
    let Some(e) = view.db(ctx.db, src).lookup_read(src, now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let copied = copy_entry(e, dst, e.expire_at(), clock(ctx));
    let target = view.db(dst_db, dst);
    if target.contains(dst, now) && !replace {
        ctx.out.int(0);
        return Ok(());
    }
    target.insert(copied);
    ctx.dirty += 1;
    ctx.notify_in(dst_db, notify::GENERIC, "copy_to", dst);
    ctx.out.int(1);
    Ok(())
}

/// MOVE key db → 1 if moved, 0 if missing here or present there.
pub fn move_(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let to = db_index(view, ctx.argv[2])?;
    if to == ctx.db {
        return Err(SAME_OBJECT);
    }
    let now = ctx.now;
    if !view.db(ctx.db, key).contains(key, now) || view.db(to, key).contains(key, now) {
        ctx.out.int(0);
        return Ok(());
    }
    let e = view.db(ctx.db, key).remove(key).expect("checked above");
    view.db(to, key).insert(e);
    ctx.dirty += 1;
    ctx.notify(notify::GENERIC, "move_from", key);
    ctx.notify_in(to, notify::GENERIC, "move_to", key);
    ctx.out.int(1);
    Ok(())
}

/// KEYS pattern → every live key matching the glob pattern.
pub fn keys(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let pattern = ctx.argv[1];
    let all = pattern == b"*";
    let mut found: Vec<Vec<u8>> = Vec::new();
    for shard in view.shards_mut() {
        let db = &shard.dbs[ctx.db];
        found.extend(
            db.iter()
                .filter(|e| e.expire_at().is_none_or(|at| at > ctx.now))
                .filter(|e| all || glob_match(pattern, e.key(), false))
                .map(|e| e.key().to_vec()),
        );
    }
    ctx.out.array(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

struct ScanFilter<'a> {
    pattern: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
    count: usize,
}

fn parse_scan_options<'a>(args: &[&'a [u8]]) -> CmdResult<ScanFilter<'a>> {
    let mut f = ScanFilter { pattern: None, kind: None, count: 10 };
    let mut i = 0;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if is(args[i], "count") && has_value {
            let count = args::int(args[i + 1])?;
            if count < 1 {
                return Err(SYNTAX);
            }
            f.count = count.min(1 << 20) as usize;
        } else if is(args[i], "match") && has_value {
            f.pattern = if args[i + 1] == b"*" { None } else { Some(args[i + 1]) };
        } else if is(args[i], "type") && has_value {
            f.kind = Some(args[i + 1]);
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    Ok(f)
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
///
/// The cursor's low 6 bits name a shard and the rest is that shard's table cursor, so the
/// walk covers shard after shard with Redis's guarantee in each (see `store::table`).
pub fn scan(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let cursor = args::scan_cursor(ctx.argv[1])?;
    let f = parse_scan_options(&ctx.argv[2..])?;
    let shard_bits = SHARDS.trailing_zeros();
    let mut shard = (cursor & (SHARDS as u64 - 1)) as usize;
    let mut table_cursor = cursor >> shard_bits;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut budget = f.count.saturating_mul(10);
    // SCAN is declared ALL_SHARDS, so shard i is at position i.
    let mut shards: Vec<&mut store::Shard> = view.shards_mut().collect();
    let next = loop {
        let db: &Db = &shards[shard].dbs[ctx.db];
        table_cursor = db.scan_step(table_cursor, |e| found.push(e.key().to_vec()));
        budget = budget.saturating_sub(1);
        if table_cursor == 0 {
            shard += 1;
            if shard == SHARDS {
                break 0;
            }
        }
        if budget == 0 || found.len() >= f.count {
            break (table_cursor << shard_bits) | shard as u64;
        }
    };
    let now = ctx.now;
    let mut keep = Vec::with_capacity(found.len());
    for k in found {
        if f.pattern.is_some_and(|p| !glob_match(p, &k, false)) {
            continue;
        }
        let shard = store::keyspace::shard_of(&k);
        let Some(e) = shards[shard].dbs[ctx.db].lookup(&k, now) else {
            continue;
        };
        if f.kind.is_some_and(|t| !t.eq_ignore_ascii_case(e.kind().name().as_bytes())) {
            continue;
        }
        keep.push(k);
    }
    ctx.out.array(2);
    ctx.out.bulk_i64(next as i64);
    ctx.out.array(keep.len());
    for k in &keep {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// RANDOMKEY → a random live key, or nil when the database is empty.
pub fn randomkey(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let now = ctx.now;
    let mut shards: Vec<&mut store::Shard> = view.shards_mut().collect();
    for _ in 0..100 {
        let total: usize = shards.iter().map(|s| s.dbs[ctx.db].len()).sum();
        if total == 0 {
            break;
        }
        let mut pick = (store::random_u64() % total as u64) as usize;
        let shard = shards.iter_mut().find(|s| {
            let len = s.dbs[ctx.db].len();
            if pick < len {
                true
            } else {
                pick -= len;
                false
            }
        });
        let db = &mut shard.expect("pick < total").dbs[ctx.db];
        let Some(e) = db.random_entry() else { continue };
        let key = e.key().to_vec();
        if db.lookup(&key, now).is_some() {
            ctx.out.bulk(&key);
            return Ok(());
        }
    }
    ctx.out.null();
    Ok(())
}

/// DBSIZE → keys in the selected database.
pub fn dbsize(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    ctx.out.int(view.db_len(ctx.db) as i64);
    Ok(())
}

/// Parses FLUSHDB/FLUSHALL's optional ASYNC|SYNC; returns whether to free in the background.
fn flush_mode(ctx: &Ctx<'_>) -> CmdResult<bool> {
    match ctx.argv.len() {
        1 => Ok(false),
        2 if is(ctx.argv[1], "async") => Ok(true),
        2 if is(ctx.argv[1], "sync") => Ok(false),
        _ => Err(SYNTAX),
    }
}

/// Frees the removed tables, on a background thread when asked to (FLUSH... ASYNC).
fn free_tables(tables: Vec<store::table::Table>, background: bool) {
    let big = tables.iter().map(store::table::Table::len).sum::<usize>() > 10_000;
    if background || big {
        store::memory::spawn_counted("lazyfree", move || drop(tables)).map(drop).unwrap_or(());
    }
}

/// FLUSHDB [ASYNC | SYNC]
pub fn flushdb(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let background = flush_mode(ctx)?;
    let mut removed = 0;
    let tables: Vec<_> = view
        .shards_mut()
        .map(|s| {
            removed += s.dbs[ctx.db].len();
            s.dbs[ctx.db].clear()
        })
        .collect();
    free_tables(tables, background);
    ctx.dirty += removed as u64;
    ctx.out.ok();
    Ok(())
}

/// FLUSHALL [ASYNC | SYNC]
pub fn flushall(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let background = flush_mode(ctx)?;
    let mut removed = 0;
    let mut tables = Vec::new();
    for s in view.shards_mut() {
        for db in &mut s.dbs {
            removed += db.len();
            tables.push(db.clear());
        }
    }
    free_tables(tables, background);
    ctx.dirty += removed as u64 + 1;
    ctx.out.ok();
    Ok(())
}

/// SWAPDB index1 index2
pub fn swapdb(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let a = args::c_int(ctx.argv[1], Some("ERR invalid first DB index"))?;
    let b = args::c_int(ctx.argv[2], Some("ERR invalid second DB index"))?;
    let n = view.databases() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(DB_INDEX);
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        for s in view.shards_mut() {
            let (lo, hi) = (a.min(b), a.max(b));
            let (left, right) = s.dbs.split_at_mut(hi);
            left[lo].swap_contents(&mut right[0]);
        }
    }
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

/// The encoding name OBJECT ENCODING reports for a string value.
pub fn string_encoding(e: &Entry) -> &'static str {
    match e.value() {
        ValueRef::Object(_) => "raw",
        ValueRef::Inline(v) if !e.is_plain() && v.len() <= 20 && resp::decode::parse_i64(v).is_some() => "int",
        ValueRef::Inline(v) if v.len() <= 44 => "embstr",
        ValueRef::Inline(_) => "raw",
    }
}

fn object_lookup<'v>(ctx: &Ctx<'_>, view: &'v mut View<'_>) -> Option<&'v mut Entry> {
    let key = ctx.argv[2];
    view.db(ctx.db, key).lookup_read_silent(key, ctx.now)
}

/// OBJECT ENCODING key
pub fn object_encoding(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    match object_lookup(ctx, view) {
        None => ctx.out.null(),
        Some(e) => match e.value() {
            ValueRef::Object(o) if e.kind() != Kind::String => ctx.out.bulk(o.encoding().as_bytes()),
            _ => ctx.out.bulk(string_encoding(e).as_bytes()),
        },
    }
    Ok(())
}

/// OBJECT FREQ key (only under an LFU policy)
pub fn object_freq(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let lfu = ctx.settings.lfu;
    let Some(e) = object_lookup(ctx, view) else {
        ctx.out.null();
        return Ok(());
    };
    if !lfu {
        return Err(CmdError::fixed("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    let counter = match ctx.settings.access {
        store::access::Mode::Lfu { decay_minutes, .. } => store::access::lfu_counter(e.clock(), ctx.now, decay_minutes),
        store::access::Mode::Auto => store::access::auto_state(e.clock(), store::access::current_tick()).0,
        store::access::Mode::Lru => store::access::lfu_counter(e.clock(), ctx.now, 0),
    };
    ctx.out.int(counter as i64);
    Ok(())
}

/// OBJECT IDLETIME key (not under an LFU policy)
pub fn object_idletime(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (lfu, now) = (ctx.settings.lfu, ctx.now);
    let Some(e) = object_lookup(ctx, view) else {
        ctx.out.null();
        return Ok(());
    };
    if lfu {
        return Err(CmdError::fixed("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    let idle = lru_idle_secs(lru_clock(now), e.clock());
    ctx.out.int(idle as i64);
    Ok(())
}

/// OBJECT REFCOUNT key (shared small integers report INT_MAX, as in Redis)
pub fn object_refcount(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let shared_ints = !ctx.settings.evicts_by_access;
    let Some(e) = object_lookup(ctx, view) else {
        ctx.out.null();
        return Ok(());
    };
    let shared = shared_ints
        && matches!(e.value(), ValueRef::Inline(_))
        && string_bytes(e).and_then(resp::decode::parse_i64).is_some_and(|v| (0..10_000).contains(&v));
    ctx.out.int(if shared { i32::MAX as i64 } else { 1 });
    Ok(())
}

/// OBJECT HELP
pub fn object_help(ctx: &mut Ctx<'_>, _view: &mut View<'_>) -> CmdResult {
    const LINES: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l);
    }
    Ok(())
}

/// MEMORY USAGE key [SAMPLES count] → the bytes the key and its value take: the entry's
/// allocation (key, TTL, metadata, inline string), the value's allocations, and the 8-byte
/// slot the key takes in its table. Exact for every type, so SAMPLES is accepted and
/// checked but not needed.
pub fn memory_usage(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (argv, key) = (ctx.argv, ctx.argv[2]);
    let mut j = 3;
    while j < argv.len() {
        if args::is(argv[j], "samples") && j + 1 < argv.len() {
            if args::int(argv[j + 1])? < 0 {
                return Err(SYNTAX);
            }
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    const SLOT: usize = 8;
    match view.db(ctx.db, key).lookup(key, ctx.now) {
        None => ctx.out.null(),
        Some(e) => {
            let value = match e.value() {
                ValueRef::Object(o) => o.heap_size(),
                ValueRef::Inline(_) => 0,
            };
            ctx.out.int((e.alloc_bytes() + value + SLOT) as i64);
        }
    }
    Ok(())
}
