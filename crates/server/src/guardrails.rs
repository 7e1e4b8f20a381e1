//! The server's side of the guardrails (`guard` crate): taking samples, the guardrail clock,
//! logging and posting alert events, and the INFO `# Alerts` and `# Forecast` sections.
//!
//! The cron thread takes a sample every `guard-interval` seconds. The guardrail clock is the
//! wall clock plus an offset that only `DEBUG GUARD-TICK` moves, so a test (or a replay of a
//! past outage) can make days pass: with `guard-interval 0` samples are taken only by that
//! command, and the run is deterministic.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;

use crate::{unix_ms, Shared};

/// Guardrail state shared by every thread.
pub struct Guardrails {
    pub guard: Mutex<guard::Guard>,
    /// Added to the wall clock to get guardrail time.
    offset_ms: AtomicI64,
    /// Wall-clock ms of the last automatic sample.
    last_auto_ms: AtomicI64,
    /// The durable offset of the append-only log at the last sample and since when (guardrail
    /// ms) it has not moved while appends waited.
    durable: Mutex<(u64, i64)>,
    pub webhooks: crate::webhook::Webhooks,
    /// Memory `DEBUG LEAK-MEMORY` allocated on purpose and never frees (leak-alert tests).
    leaked: Mutex<Vec<Box<[u8]>>>,
    /// The growth finder's census. Locked only briefly and never while a shard is locked
    /// (INFO inside EXEC reads it while holding every shard).
    pub census: Mutex<guard::patterns::Census>,
    /// Where the census walk stands (only the sampling path takes it).
    walk: Mutex<Walk>,
}

/// The growth finder's position in the keyspace: database, shard and table cursor.
#[derive(Default)]
struct Walk {
    db: usize,
    shard: usize,
    cursor: u64,
}

/// Keys the census visits per sample at most, and per shard lock hold.
const VISITS_PER_SAMPLE: usize = 50_000;
const VISITS_PER_LOCK: usize = 1_000;
/// Least guardrail time between the starts of two census passes.
const PASS_GAP_MS: i64 = 60_000;

impl Guardrails {
    pub fn new(config: guard::Config) -> Guardrails {
        Guardrails {
            guard: Mutex::new(guard::Guard::new(config)),
            offset_ms: AtomicI64::new(0),
            last_auto_ms: AtomicI64::new(0),
            durable: Mutex::new((0, 0)),
            webhooks: crate::webhook::Webhooks::default(),
            leaked: Mutex::new(Vec::new()),
            census: Mutex::new(guard::patterns::Census::default()),
            walk: Mutex::new(Walk::default()),
        }
    }

    /// Guardrail time, in Unix milliseconds.
    pub fn now(&self) -> i64 {
        unix_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Bytes of history the guard holds.
    pub fn footprint(&self) -> usize {
        let g = self.guard.lock();
        (g.namespaces.len() * 6 + 11) * guard::series::Series::footprint()
    }
}

/// Called by cron: feeds the reads sampled since the last tick to the miss-ratio curves, and
/// takes a sample when `guard-interval` seconds have passed.
pub fn cron(shared: &Shared, settings: &crate::config::Settings) {
    if settings.guard_mrc {
        drain_curves(settings);
    }
    if settings.guard_interval_s == 0 {
        return;
    }
    let now = unix_ms();
    let last = shared.guardrails.last_auto_ms.load(Ordering::Relaxed);
    if now - last >= settings.guard_interval_s as i64 * 1000 {
        shared.guardrails.last_auto_ms.store(now, Ordering::Relaxed);
        take(shared, shared.guardrails.now());
    }
}

/// Runs the sampled reads buffered by every curve through it.
fn drain_curves(settings: &crate::config::Settings) {
    let now = unix_ms();
    // the keyspace's size needs every shard: its curve keeps the one of the last sample
    store::mrc::GLOBAL.drain(now, global_model(settings), None);
    let _read = store::namespace::GUARD.read_recursive();
    store::namespace::with_table(|t| {
        for (i, (spec, c)) in t.specs.iter().zip(&t.counters).enumerate().take(64) {
            c.mrc.drain(now, namespace_model(settings, spec), Some(t.bytes(i) as f64));
        }
    });
}

/// The policy the keyspace's curve models.
fn global_model(settings: &crate::config::Settings) -> store::mrc::Model {
    crate::evict::curve_model(settings, Some(&settings.maxmemory_policy))
}

/// The policy a namespace's curve models.
fn namespace_model(settings: &crate::config::Settings, spec: &store::namespace::Spec) -> store::mrc::Model {
    let policy = crate::namespaces::policy_of(spec, &settings.maxmemory_policy);
    crate::evict::curve_model(settings, policy.as_deref())
}

/// `DEBUG GUARD-TICK <ms> [count]`: moves the guardrail clock forward by `ms` and takes a
/// sample, `count` times.
pub fn tick(shared: &Shared, ms: i64, count: u64) {
    // the clock may run at most a century ahead (the series' arithmetic stays far from overflow)
    const MAX_OFFSET_MS: i64 = 100 * 366 * 86_400_000;
    for _ in 0..count {
        let g = &shared.guardrails;
        let _ = g.offset_ms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| Some((o + ms).min(MAX_OFFSET_MS)));
        take(shared, shared.guardrails.now());
    }
}

/// `DEBUG LEAK-MEMORY <bytes>`: allocates and touches memory that is never freed.
pub fn leak(shared: &Shared, bytes: usize) {
    let mut block = vec![0u8; bytes].into_boxed_slice();
    for i in (0..block.len()).step_by(4096) {
        block[i] = 1;
    }
    shared.guardrails.leaked.lock().push(block);
}

/// The server's figures now.
fn sample(shared: &Shared, at_ms: i64, decay: f64) -> guard::Sample {
    let settings = shared.settings();
    let ks = crate::info::keyspace_totals(shared, None);
    let mem = crate::info::memory_figures();
    let (rejected, commands) = {
        let t = shared.stats.totals.lock();
        (t.errors.get("OOM").copied().unwrap_or(0), t.total_commands)
    };
    let mut persistence = Vec::new();
    if !shared.persistence.last_ok() {
        persistence.push(("rdb", Some("the last background save failed (the log says why)".to_string())));
    } else {
        persistence.push(("rdb", None));
    }
    let mut fsync_ms = None;
    if shared.aof.active() {
        persistence.push(("aof", shared.aof.error()));
        let st = shared.aof.log.status();
        let (appended, durable) = (shared.aof.log.appended(), shared.aof.log.durable());
        let mut d = shared.guardrails.durable.lock();
        if durable != d.0 || appended <= durable {
            *d = (durable, at_ms);
        }
        let stalled = if appended > durable { (at_ms - d.1) as f64 } else { 0.0 };
        fsync_ms = Some((st.last_sync_us as f64 / 1000.0, stalled));
    }
    // The table may only be read under its guard (or a shard lock): a reconfiguration frees it.
    let read_guard = store::namespace::GUARD.read_recursive();
    let namespaces: Vec<guard::NsSample> = store::namespace::with_table(|t| {
        (0..t.specs.len())
            .map(|i| {
                let c = &t.counters[i];
                let reads = c.hits.load(Ordering::Relaxed) + c.misses.load(Ordering::Relaxed);
                let model = namespace_model(&settings, &t.specs[i]);
                guard::NsSample {
                    curve: if settings.guard_mrc {
                        c.mrc.settle(reads, decay, t.bytes(i) as f64, model, unix_ms())
                    } else {
                        c.mrc.note_reads(reads);
                        Vec::new()
                    },
                    curve_policy: model.name(),
                    name: t.specs[i].name.clone(),
                    bytes: t.bytes(i),
                    keys: c.keys.load(Ordering::Relaxed).max(0) as u64,
                    limit: crate::namespaces::bounds(&t.specs[i], settings.maxmemory).0,
                    evicts: crate::namespaces::policy_of(&t.specs[i], &settings.maxmemory_policy).is_some(),
                    hits: c.hits.load(Ordering::Relaxed),
                    misses: c.misses.load(Ordering::Relaxed),
                    evicted: c.evicted.load(Ordering::Relaxed),
                    rejected: c.rejected.load(Ordering::Relaxed),
                }
            })
            .collect()
    })
    .unwrap_or_default();
    drop(read_guard);
    let model = global_model(&settings);
    let curve = if settings.guard_mrc {
        store::mrc::GLOBAL.settle(ks.hits + ks.misses, decay, ks.dataset_bytes as f64, model, unix_ms())
    } else {
        store::mrc::GLOBAL.note_reads(ks.hits + ks.misses);
        Vec::new()
    };
    guard::Sample {
        at_ms,
        curve,
        curve_policy: model.name(),
        used: store::memory::used(),
        rss: mem.rss,
        dataset: ks.dataset_bytes as u64,
        keys: ks.dbs.iter().map(|d| d.0 as u64).sum(),
        maxmemory: settings.maxmemory,
        evicts: settings.maxmemory_policy != "noeviction" || namespaces.iter().any(|n| n.evicts),
        system_memory: crate::info::total_system_memory(),
        hits: ks.hits,
        misses: ks.misses,
        evicted: shared.stats.evicted_keys.load(Ordering::Relaxed),
        rejected,
        commands,
        clients: shared.clients.len() as u64,
        persistence,
        fsync_ms,
        namespaces,
    }
}

/// Takes a sample at guardrail time `at_ms`, and logs and posts the alert events.
fn take(shared: &Shared, at_ms: i64) {
    // the curves' history halves every hour of guardrail time
    let last = shared.guardrails.guard.lock().last_ms;
    let decay = last.map_or(1.0, |l| 0.5f64.powf((at_ms - l).max(0) as f64 / 3_600_000.0));
    let s = sample(shared, at_ms, decay);
    let settings = shared.settings();
    let events = {
        let mut g = shared.guardrails.guard.lock();
        if g.config != settings.guard {
            g.config = settings.guard.clone();
        }
        g.observe(&s)
    };
    census_step(shared, at_ms, s.keys);
    for e in events {
        let a = &e.alert;
        match e.what {
            "open" => crate::log_warning!("ALERT {} [{}]: {}", a.id, a.severity.name(), a.message),
            _ => crate::log_notice!("Alert resolved after {}: {}", guard::time::duration(e.at_ms - a.opened_ms), a.id),
        }
        if !settings.webhooks.is_empty() {
            shared.guardrails.webhooks.push(shared, event_json(shared, &e));
        }
    }
}

/// Elements of a value (1 for a string).
fn elements(e: &store::entry::Entry) -> u64 {
    use store::object::Object;
    match e.value() {
        store::entry::ValueRef::Object(o) => match o {
            Object::Str(_) => 1,
            Object::List(l) => l.len() as u64,
            Object::Hash(h) => h.len() as u64,
            Object::Set(s) => s.len() as u64,
            Object::ZSet(z) => z.len() as u64,
            Object::Stream(s) => s.len(),
        },
        store::entry::ValueRef::Inline(_) => 1,
    }
}

/// Up to `n` members of a collection, as the growth finder checks them against key patterns.
fn members(e: &store::entry::Entry, n: usize) -> Vec<Vec<u8>> {
    use store::object::Object;
    let store::entry::ValueRef::Object(o) = e.value() else { return Vec::new() };
    let mut out = Vec::new();
    match o {
        Object::ZSet(z) => (0..n).filter_map(|_| z.random()).for_each(|(m, _)| out.push(m.to_vec())),
        Object::Set(s) => (0..n).filter_map(|_| s.random()).for_each(|m| out.push(m.to_vec())),
        Object::Hash(h) => (0..n).filter_map(|_| h.random_pair()).for_each(|(k, _)| out.push(k.to_vec())),
        Object::List(l) => l.iter().take(n).for_each(|m| {
            out.push(match m {
                store::list::Elem::Str(s) => s.to_vec(),
                store::list::Elem::Int(v) => v.to_string().into_bytes(),
            })
        }),
        _ => {}
    }
    out
}

/// One step of the growth finder's walk: visits up to [`VISITS_PER_SAMPLE`] keys, a shard
/// lock at a time for at most [`VISITS_PER_LOCK`]; at the end of a pass, links growing
/// collections to the growing patterns whose ids they hold.
fn census_step(shared: &Shared, at_ms: i64, total_keys: u64) {
    let g = &shared.guardrails;
    let mut w = g.walk.lock();
    let rate = {
        let mut census = g.census.lock();
        if census.current.is_none() {
            if census.last_pass_ms.is_some_and(|t| at_ms - t < PASS_GAP_MS) {
                return;
            }
            census.begin(at_ms, total_keys);
            *w = Walk::default();
        }
        census.current.as_ref().map_or(1.0, |p| p.rate)
    };
    // only sampled and large keys are copied out of the lock; the rest are only counted
    let cut = if rate >= 1.0 { u64::MAX } else { (rate * u64::MAX as f64) as u64 };
    let databases = shared.keyspace.databases();
    let mut visited = 0;
    let mut seen: Vec<(Vec<u8>, u64, bool, &'static str, u64)> = Vec::with_capacity(VISITS_PER_LOCK);
    while visited < VISITS_PER_SAMPLE && w.db < databases {
        seen.clear();
        let mut skipped = 0u64;
        {
            let mut view = shared.keyspace.lock_shard(w.shard);
            let Some((_, shard)) = view.indexed_shards_mut().next() else { break };
            let db = &shard.dbs[w.db];
            let mut cursor = w.cursor;
            loop {
                cursor = db.scan_step(cursor, |e| {
                    let bytes = store::db::entry_bytes(e) as u64;
                    let n = elements(e);
                    if !guard::patterns::is_large(bytes, n) && guard::patterns::key_hash(e.key()) >= cut {
                        skipped += 1;
                        return;
                    }
                    seen.push((e.key().to_vec(), bytes, e.expire_at().is_some(), e.kind().name(), n))
                });
                if cursor == 0 || seen.len() as u64 + skipped >= VISITS_PER_LOCK as u64 {
                    break;
                }
            }
            w.cursor = cursor;
        }
        visited += (seen.len() + skipped as usize).max(1);
        let mut census = g.census.lock();
        census.skipped(skipped);
        for (key, bytes, ttl, kind, elements) in &seen {
            census.visit(&guard::patterns::KeyInfo { key, bytes: *bytes, ttl: *ttl, kind, elements: *elements });
        }
        drop(census);
        if w.cursor == 0 {
            w.shard += 1;
            if w.shard == store::keyspace::SHARDS {
                (w.shard, w.db) = (0, w.db + 1);
            }
        }
    }
    if w.db < databases {
        return;
    }
    let (collections, patterns) = {
        let mut census = g.census.lock();
        census.finish(at_ms);
        census.link_candidates()
    };
    let mut links = Vec::new();
    for key in collections {
        let mut view = shared.keyspace.lock_shard(store::keyspace::shard_of(key.as_bytes()));
        let Some((_, shard)) = view.indexed_shards_mut().next() else { continue };
        let Some(db) = shard.dbs.iter().position(|d| d.peek(key.as_bytes()).is_some()) else { continue };
        let sample = shard.dbs[db].peek(key.as_bytes()).map(|e| members(e, 5)).unwrap_or_default();
        drop(view);
        for p in &patterns {
            let found = sample
                .iter()
                .filter(|m| {
                    let candidate = p.replacen('*', &String::from_utf8_lossy(m), 1);
                    let mut v = shared.keyspace.lock_shard(store::keyspace::shard_of(candidate.as_bytes()));
                    let exists = v
                        .indexed_shards_mut()
                        .next()
                        .is_some_and(|(_, s)| s.dbs[db].peek(candidate.as_bytes()).is_some());
                    exists
                })
                .count();
            if !sample.is_empty() && found * 2 > sample.len() {
                links.push((key.clone(), p.clone()));
                break;
            }
        }
    }
    let mut census = g.census.lock();
    for (key, pattern) in links {
        census.link(&key, &pattern);
    }
}

/// The JSON a webhook receives for one event.
pub fn event_json(shared: &Shared, e: &guard::alerts::Event) -> String {
    let mut j = guard::json::Json::new();
    j.begin_object().kv_str("event", e.what).kv_int("at_ms", e.at_ms).kv_str("at", &guard::time::iso8601(e.at_ms));
    j.field("alert");
    guard::alert_json(&mut j, &e.alert);
    server_json(shared, &mut j);
    j.end_object();
    j.finish()
}

/// `"server": {...}`: which server this is.
pub fn server_json(shared: &Shared, j: &mut guard::json::Json) {
    let addr = shared.listen_addrs.read().first().map(|a| a.to_string()).unwrap_or_default();
    let host = hostname();
    j.field("server")
        .begin_object()
        .kv_str("host", &host)
        .kv_str("address", &addr)
        .kv_str("run_id", &shared.run_id)
        .kv_str("version", crate::VERSION)
        .end_object();
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer we pass.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// INFO values may not hold `,` or `=` (clients split on them) or line breaks.
fn info_text(s: &str) -> String {
    s.replace(',', ";").replace('=', ":").replace(['\r', '\n'], " ")
}

/// INFO's `# Alerts` section.
pub fn info_alerts(shared: &Shared, out: &mut String) {
    let g = shared.guardrails.guard.lock();
    let open = g.alerts.open();
    let hooks = &shared.guardrails.webhooks;
    let _ = write!(
        out,
        "# Alerts\r\nalerts_open:{}\r\nalerts_opened_total:{}\r\nalert_webhooks:{}\r\nalert_webhook_sent:{}\r\nalert_webhook_failed:{}\r\nalert_webhook_dropped:{}\r\nalert_webhook_pending:{}\r\n",
        open.len(),
        g.alerts.opened_total,
        shared.settings().webhooks.len(),
        hooks.sent.load(Ordering::Relaxed),
        hooks.failed.load(Ordering::Relaxed),
        hooks.dropped.load(Ordering::Relaxed),
        hooks.pending(),
    );
    for (i, a) in open.iter().enumerate() {
        let _ = write!(
            out,
            "alert{i}:id={},kind={},subject={},severity={},since={},value={},threshold={}\r\nalert{i}_message:{}\r\n",
            info_text(&a.id),
            a.kind,
            info_text(&a.subject),
            a.severity.name(),
            a.opened_ms / 1000,
            number(a.value),
            number(a.threshold),
            info_text(&a.message)
        );
    }
}

fn number(v: f64) -> String {
    if !v.is_finite() {
        "-1".into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

/// INFO's `# Forecast` section: growth and time to full, server-wide and per namespace.
pub fn info_forecast(shared: &Shared, out: &mut String, holding_shards: bool) {
    let mrc_memory = store::mrc::footprint(holding_shards);
    let g = shared.guardrails.guard.lock();
    let now = shared.guardrails.now();
    let history = g.global.memory.first_ms().map_or(0, |f| (now - f).max(0) / 1000);
    let _ = write!(
        out,
        "# Forecast\r\nguard_samples:{}\r\nguard_history_seconds:{history}\r\nguard_memory:{}\r\nguard_mrc_memory:{}\r\nguard_clock_offset_ms:{}\r\n",
        g.samples,
        (g.namespaces.len() * 6 + 11) * guard::series::Series::footprint(),
        mrc_memory,
        shared.guardrails.offset_ms.load(Ordering::Relaxed),
    );
    {
        let census = shared.guardrails.census.lock();
        let top = census.report.first();
        let _ = write!(
            out,
            "census_passes:{}\r\ncensus_last_pass:{}\r\ncensus_top_pattern:{}\r\ncensus_top_growth_per_hour:{}\r\n",
            census.passes,
            census.last_pass_ms.map_or(-1, |t| t / 1000),
            top.map_or(String::new(), |r| info_text(&r.pattern)),
            top.map_or(0, |r| r.bytes_per_hour.round() as i64),
        );
    }
    for tr in std::iter::once(&g.global).chain(g.namespaces.iter()) {
        if tr.curve.iter().any(|p| p.1.is_finite()) {
            let points: Vec<String> = tr
                .curve
                .iter()
                .zip(guard::mrc::FACTORS)
                .map(|(p, f)| format!("x{f}={:.4}", if p.1.is_finite() { p.1 } else { 0.0 }))
                .collect();
            let scope = if tr.name == "global" { "global".to_string() } else { format!("ns_{}", tr.name) };
            let _ = write!(out, "mrc_{scope}:policy={},{}\r\n", tr.curve_policy, points.join(","));
        }
        let key = if tr.name == "global" { "forecast_global".to_string() } else { format!("forecast_ns_{}", tr.name) };
        let _ = match &tr.forecast {
            Some(f) => write!(
                out,
                "{key}:method={},level={},growth_per_hour={},capacity={},full_in_seconds={}\r\n",
                f.method.name(),
                number(f.level.round()),
                number(f.per_hour.round()),
                number(tr.capacity.unwrap_or(0.0)),
                f.full_in_ms.map_or(-1, |ms| ms / 1000)
            ),
            None => write!(
                out,
                "{key}:method=none,level={},growth_per_hour=0,capacity={},full_in_seconds=-1\r\n",
                number(tr.memory.last().unwrap_or(0.0).round()),
                number(tr.capacity.unwrap_or(0.0))
            ),
        };
    }
}
