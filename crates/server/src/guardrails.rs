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
}

impl Guardrails {
    pub fn new(config: guard::Config) -> Guardrails {
        Guardrails {
            guard: Mutex::new(guard::Guard::new(config)),
            offset_ms: AtomicI64::new(0),
            last_auto_ms: AtomicI64::new(0),
            durable: Mutex::new((0, 0)),
            webhooks: crate::webhook::Webhooks::default(),
            leaked: Mutex::new(Vec::new()),
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

/// Called by cron: takes a sample when `guard-interval` seconds have passed.
pub fn cron(shared: &Shared, settings: &crate::config::Settings) {
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

/// `DEBUG GUARD-TICK <ms> [count]`: moves the guardrail clock forward by `ms` and takes a
/// sample, `count` times.
pub fn tick(shared: &Shared, ms: i64, count: u64) {
    for _ in 0..count {
        shared.guardrails.offset_ms.fetch_add(ms, Ordering::Relaxed);
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
fn sample(shared: &Shared, at_ms: i64) -> guard::Sample {
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
    let namespaces: Vec<guard::NsSample> = store::namespace::with_table(|t| {
        (0..t.specs.len())
            .map(|i| {
                let c = &t.counters[i];
                guard::NsSample {
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
    guard::Sample {
        at_ms,
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
    let s = sample(shared, at_ms);
    let settings = shared.settings();
    let events = {
        let mut g = shared.guardrails.guard.lock();
        if g.config != settings.guard {
            g.config = settings.guard.clone();
        }
        g.observe(&s)
    };
    for e in events {
        let a = &e.alert;
        match e.what {
            "open" => crate::log_warning!("ALERT {} [{}]: {}", a.id, a.severity.name(), a.message),
            _ => crate::log_notice!("Alert resolved after {}: {}", guard::time::duration(e.at_ms - a.opened_ms), a.id),
        }
        if !settings.webhooks.is_empty() {
            shared.guardrails.webhooks.push(event_json(shared, &e));
        }
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
pub fn info_forecast(shared: &Shared, out: &mut String) {
    let g = shared.guardrails.guard.lock();
    let now = shared.guardrails.now();
    let history = g.global.memory.first_ms().map_or(0, |f| (now - f).max(0) / 1000);
    let _ = write!(
        out,
        "# Forecast\r\nguard_samples:{}\r\nguard_history_seconds:{history}\r\nguard_memory:{}\r\nguard_clock_offset_ms:{}\r\n",
        g.samples,
        (g.namespaces.len() * 6 + 11) * guard::series::Series::footprint(),
        shared.guardrails.offset_ms.load(Ordering::Relaxed),
    );
    for tr in std::iter::once(&g.global).chain(g.namespaces.iter()) {
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
