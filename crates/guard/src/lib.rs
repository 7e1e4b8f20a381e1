//! Guardrails: the server's own history of itself, forecasts from it and alerts on it.
//!
//! The server takes a [`Sample`] every few seconds (memory, keys, hits, misses, evictions,
//! refused writes, RSS, operations, globally and per namespace) and hands it to
//! [`Guard::observe`], which files it into [`series::Series`] (fixed memory, a month at
//! decreasing resolution), forecasts when each budget will be full ([`forecast`]) and
//! evaluates the alert rules, returning the alerts that opened or resolved ([`alerts`]).
//! Nothing here reads a clock or does I/O: time comes in with the sample, so tests (and
//! replays of past outages) can make days pass in milliseconds.

pub mod alerts;
pub mod forecast;
pub mod json;
pub mod minisim;
pub mod mrc;
pub mod patterns;
pub mod series;
pub mod time;

use alerts::{Alerts, Check, Event, Severity, State};
use forecast::Forecast;
use json::Json;
use series::{Kind, Series};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// Namespaces tracked at most (each costs about 100 KiB of history).
pub const MAX_TRACKED: usize = 64;

/// Alert thresholds (the `alert-*` configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Percentages of a budget (`maxmemory`, a namespace's limit) that open an alert each.
    pub memory_levels: Vec<f64>,
    /// Warn when a budget is forecast to be full within this long.
    pub leeway_ms: i64,
    /// A hit ratio this much lower (relative) than its own level of the last hours alerts.
    pub hit_ratio_drop: f64,
    /// Lookups the last five minutes need before their hit ratio is judged.
    pub min_lookups: f64,
    /// Evictions per minute at least this many times the previous hour's rate, and at
    /// least `eviction_storm_min` per minute, are a storm.
    pub eviction_storm_factor: f64,
    pub eviction_storm_min: f64,
    /// RSS above the dataset by more than this ratio and more than `rss_min_excess` bytes
    /// (beyond what the server used when it started) is a leak or fragmentation.
    pub rss_ratio: f64,
    pub rss_min_excess: f64,
    /// An fsync this slow, or durability stalled this long, is a slow disk.
    pub slow_fsync_ms: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            memory_levels: vec![20.0, 50.0, 90.0],
            leeway_ms: 48 * HOUR,
            hit_ratio_drop: 0.25,
            min_lookups: 100.0,
            eviction_storm_factor: 5.0,
            eviction_storm_min: 1000.0,
            rss_ratio: 1.5,
            rss_min_excess: 64.0 * 1024.0 * 1024.0,
            slow_fsync_ms: 1000.0,
        }
    }
}

/// One namespace's figures at a sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NsSample {
    pub name: String,
    pub bytes: u64,
    pub keys: u64,
    /// Its limit in bytes, if it has one.
    pub limit: Option<u64>,
    /// Whether it evicts at its limit (then filling up is not an outage).
    pub evicts: bool,
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
    pub rejected: u64,
    /// Hit ratios at [`mrc::FACTORS`] × `bytes` (empty when not measured).
    pub curve: Vec<f64>,
    /// The eviction policy the curve models (`lru`, `lfu`, `auto`, `random`).
    pub curve_policy: &'static str,
}

/// The server's figures at one instant. Counters are totals since start; the guard takes
/// the differences.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub at_ms: i64,
    pub used: u64,
    pub rss: u64,
    pub dataset: u64,
    pub keys: u64,
    pub maxmemory: u64,
    /// Whether reaching `maxmemory` evicts (the policy, or a namespace's) instead of
    /// refusing writes.
    pub evicts: bool,
    /// The machine's memory: the capacity forecast against when `maxmemory` is 0.
    pub system_memory: u64,
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
    /// Writes refused for memory (the OOM error count).
    pub rejected: u64,
    pub commands: u64,
    pub clients: u64,
    /// Hit ratios at [`mrc::FACTORS`] × `dataset` (empty when not measured).
    pub curve: Vec<f64>,
    /// The eviction policy the curve models.
    pub curve_policy: &'static str,
    /// Persistence parts (`rdb`, `aof`) and their current error, if any.
    pub persistence: Vec<(&'static str, Option<String>)>,
    /// The last fsync's duration, and how long durability has been stalled with data
    /// waiting (0 when not), in milliseconds; `None` without an append-only log.
    pub fsync_ms: Option<(f64, f64)>,
    pub namespaces: Vec<NsSample>,
}

/// A counter filed as its increase per sample.
#[derive(Clone, Debug)]
pub struct Counter {
    pub series: Series,
    prev: Option<u64>,
}

impl Counter {
    fn new() -> Counter {
        Counter { series: Series::new(Kind::Delta), prev: None }
    }

    fn add(&mut self, at_ms: i64, total: u64) {
        let d = match self.prev {
            Some(p) if total >= p => total - p,
            Some(_) => total, // reset (CONFIG RESETSTAT)
            None => 0,
        };
        self.prev = Some(total);
        self.series.add(at_ms, d as f64);
    }

    fn since(&self, now_ms: i64, ms: i64) -> f64 {
        self.series.sum_since(now_ms, ms)
    }
}

/// The history of one scope: the whole server (`global`) or a namespace.
#[derive(Clone, Debug)]
pub struct Track {
    pub name: String,
    pub memory: Series,
    pub keys: Series,
    pub hits: Counter,
    pub misses: Counter,
    pub evicted: Counter,
    pub rejected: Counter,
    /// The budget memory is measured against (bytes), if any.
    pub capacity: Option<f64>,
    /// Whether alerts on the budget apply (a namespace without a limit has none of its own).
    pub budgeted: bool,
    /// Whether the scope evicts when full: a cache at its budget is working as intended, so
    /// the memory-level and forecast alerts do not apply (the eviction-storm and hit-ratio
    /// ones do).
    pub evicts: bool,
    /// The server-wide forecast does not apply because the namespaces that grow reach their
    /// own limits first (set on `global` only).
    pub capped: bool,
    pub forecast: Option<Forecast>,
    /// The miss-ratio curve at the last sample: (size in bytes, hit ratio) at each of
    /// [`mrc::FACTORS`] × the memory the scope used then.
    pub curve: Vec<(f64, f64)>,
    /// The eviction policy the curve models.
    pub curve_policy: &'static str,
    /// The hit ratio and eviction rate an open alert compares with (frozen while open).
    hit_baseline: Option<f64>,
    evict_baseline: Option<f64>,
}

impl Track {
    fn new(name: &str) -> Track {
        Track {
            name: name.to_string(),
            memory: Series::new(Kind::Gauge),
            keys: Series::new(Kind::Gauge),
            hits: Counter::new(),
            misses: Counter::new(),
            evicted: Counter::new(),
            rejected: Counter::new(),
            capacity: None,
            budgeted: false,
            evicts: false,
            capped: false,
            forecast: None,
            curve: Vec::new(),
            curve_policy: "lru",
            hit_baseline: None,
            evict_baseline: None,
        }
    }

    fn scope(&self) -> String {
        if self.name == "global" {
            "the server".to_string()
        } else {
            format!("namespace '{}'", self.name)
        }
    }

    /// The hit ratio over the `ms` before `now` and the number of lookups it counts.
    pub fn hit_ratio(&self, now_ms: i64, ms: i64) -> (f64, f64) {
        let (h, m) = (self.hits.since(now_ms, ms), self.misses.since(now_ms, ms));
        let n = h + m;
        (if n > 0.0 { h / n } else { f64::NAN }, n)
    }
}

/// Server-wide series beyond those of a [`Track`].
#[derive(Clone, Debug)]
pub struct Extra {
    pub rss: Series,
    pub dataset: Series,
    pub used: Series,
    pub ops: Counter,
    pub clients: Series,
}

/// The guardrail state of one server.
#[derive(Debug)]
pub struct Guard {
    pub config: Config,
    pub global: Track,
    pub extra: Extra,
    pub namespaces: Vec<Track>,
    pub alerts: Alerts,
    /// RSS not explained by the dataset at the first sample (the empty server's own).
    rss_baseline: Option<f64>,
    pub last_ms: Option<i64>,
    pub samples: u64,
}

impl Guard {
    pub fn new(config: Config) -> Guard {
        Guard {
            config,
            global: Track::new("global"),
            extra: Extra {
                rss: Series::new(Kind::Gauge),
                dataset: Series::new(Kind::Gauge),
                used: Series::new(Kind::Gauge),
                ops: Counter::new(),
                clients: Series::new(Kind::Gauge),
            },
            namespaces: Vec::new(),
            alerts: Alerts::default(),
            rss_baseline: None,
            last_ms: None,
            samples: 0,
        }
    }

    /// Files a sample and evaluates the alert rules; returns the alerts opened or resolved.
    pub fn observe(&mut self, s: &Sample) -> Vec<Event> {
        let t = s.at_ms;
        if self.last_ms.is_some_and(|last| t <= last) {
            return Vec::new();
        }
        self.last_ms = Some(t);
        self.samples += 1;
        let g = &mut self.global;
        g.memory.add(t, s.used as f64);
        g.keys.add(t, s.keys as f64);
        g.hits.add(t, s.hits);
        g.misses.add(t, s.misses);
        g.evicted.add(t, s.evicted);
        g.rejected.add(t, s.rejected);
        g.budgeted = s.maxmemory > 0;
        g.evicts = s.maxmemory > 0 && s.evicts;
        g.curve = curve_points(&s.curve, s.dataset);
        g.curve_policy = s.curve_policy;
        g.capacity = match (s.maxmemory, s.system_memory) {
            (0, 0) => None,
            (0, m) | (m, _) => Some(m as f64),
        };
        let x = &mut self.extra;
        x.rss.add(t, s.rss as f64);
        x.dataset.add(t, s.dataset as f64);
        x.used.add(t, s.used as f64);
        x.ops.add(t, s.commands);
        x.clients.add(t, s.clients as f64);
        for n in s.namespaces.iter().take(MAX_TRACKED) {
            let i = match self.namespaces.iter().position(|tr| tr.name == n.name) {
                Some(i) => i,
                None => {
                    self.namespaces.push(Track::new(&n.name));
                    self.namespaces.len() - 1
                }
            };
            let tr = &mut self.namespaces[i];
            tr.memory.add(t, n.bytes as f64);
            tr.keys.add(t, n.keys as f64);
            tr.hits.add(t, n.hits);
            tr.misses.add(t, n.misses);
            tr.evicted.add(t, n.evicted);
            tr.rejected.add(t, n.rejected);
            tr.budgeted = n.limit.is_some();
            tr.evicts = n.evicts;
            tr.curve = curve_points(&n.curve, n.bytes);
            tr.curve_policy = n.curve_policy;
            tr.capacity = n.limit.map(|l| l as f64).or((s.maxmemory > 0).then_some(s.maxmemory as f64));
        }
        let live: Vec<&str> = s.namespaces.iter().take(MAX_TRACKED).map(|n| n.name.as_str()).collect();
        self.namespaces.retain(|tr| live.contains(&tr.name.as_str()));

        let mut checks = Vec::new();
        let cfg = &self.config;
        for tr in std::iter::once(&mut self.global).chain(self.namespaces.iter_mut()) {
            tr.forecast = forecast::forecast(&tr.memory, t, tr.capacity);
        }
        self.global.capped = capped(&self.global, &self.namespaces);
        for tr in std::iter::once(&mut self.global).chain(self.namespaces.iter_mut()) {
            let level = tr.memory.last().unwrap_or(0.0);
            memory_checks(cfg, tr, level, &mut checks);
            forecast_check(cfg, tr, t, &mut checks);
            hit_ratio_check(cfg, &self.alerts, tr, t, &mut checks);
            eviction_check(cfg, &self.alerts, tr, t, &mut checks);
            rejected_check(tr, t, &mut checks);
        }
        persistence_checks(cfg, s, &mut checks);
        self.rss_check(s, &mut checks);
        // An open alert no rule speaks for any more (its namespace was removed, its budget or
        // level unset, the log turned off) is resolved rather than left open forever.
        let ids: std::collections::HashSet<String> = checks.iter().map(|c| c.id.clone()).collect();
        let mut events = self.alerts.update(t, checks);
        events.extend(self.alerts.resolve_where(t, |a| ids.contains(&a.id)));
        events
    }

    fn rss_check(&mut self, s: &Sample, checks: &mut Vec<Check>) {
        let overhead = s.rss as f64 - s.dataset as f64;
        let baseline = *self.rss_baseline.get_or_insert(overhead.max(0.0));
        // the median of the last five minutes, so one transient peak does not count
        let mut recent: Vec<f64> = self.extra.rss.points(0, s.at_ms - 5 * MINUTE).iter().map(|p| p.1).collect();
        recent.sort_by(|a, b| a.total_cmp(b));
        let rss = recent.get(recent.len() / 2).copied().unwrap_or(s.rss as f64);
        let excess = rss - s.dataset as f64 - baseline;
        let threshold = self.config.rss_min_excess.max(s.dataset as f64 * (self.config.rss_ratio - 1.0));
        let state = rising(excess, threshold, threshold * 0.8);
        checks.push(Check {
            id: "rss:global".into(),
            kind: "rss",
            subject: "global".into(),
            severity: Severity::Warning,
            state,
            value: excess,
            threshold,
            message: format!(
                "RSS {} is {} above the dataset {} plus the {} the server used at start: memory that holds no data (a leak or fragmentation); see MEMORY STATS and MEMORY DOCTOR",
                time::bytes(rss),
                time::bytes(excess),
                time::bytes(s.dataset as f64),
                time::bytes(baseline)
            ),
        });
    }

    /// Every open alert and the recent events, then the forecasts and series from
    /// `now - range_ms` on, as members of the enclosing JSON object.
    pub fn write_json(&self, j: &mut Json, now_ms: i64, range_ms: i64) {
        j.field("alerts").begin_array();
        for a in self.alerts.open() {
            alert_json(j, a);
        }
        j.end_array();
        j.field("events").begin_array();
        for e in self.alerts.events() {
            j.begin_object().kv_str("event", e.what).kv_int("at_ms", e.at_ms).field("alert");
            alert_json(j, &e.alert);
            j.end_object();
        }
        j.end_array();
        j.field("scopes").begin_array();
        for tr in std::iter::once(&self.global).chain(self.namespaces.iter()) {
            track_json(j, tr, now_ms, range_ms);
        }
        j.end_array();
        j.field("server_series").begin_object();
        let since = now_ms - range_ms;
        for (name, s) in [("rss", &self.extra.rss), ("dataset", &self.extra.dataset), ("clients", &self.extra.clients)]
        {
            j.field(name);
            points_json(j, &s.window(now_ms, since).1);
        }
        let (tier, ops) = self.extra.ops.series.window(now_ms, since);
        let step = series::TIERS[tier].step_ms as f64 / 1000.0;
        j.field("ops_per_sec");
        points_json(j, &ops.iter().map(|&(t, v)| (t, v / step)).collect::<Vec<_>>());
        j.end_object();
    }
}

fn curve_points(ratios: &[f64], bytes: u64) -> Vec<(f64, f64)> {
    ratios.iter().zip(mrc::FACTORS).map(|(&r, f)| (f * bytes as f64, r)).collect()
}

/// Writes an alert as a JSON object.
pub fn alert_json(j: &mut Json, a: &alerts::Alert) {
    j.begin_object()
        .kv_str("id", &a.id)
        .kv_str("kind", a.kind)
        .kv_str("subject", &a.subject)
        .kv_str("severity", a.severity.name())
        .kv_num("value", a.value)
        .kv_num("threshold", a.threshold)
        .kv_str("message", &a.message)
        .kv_int("opened_ms", a.opened_ms)
        .kv_str("opened_at", &time::iso8601(a.opened_ms));
    match a.resolved_ms {
        Some(ms) => j.kv_int("resolved_ms", ms).kv_str("resolved_at", &time::iso8601(ms)),
        None => j.field("resolved_ms").null().field("resolved_at").null(),
    };
    j.end_object();
}

fn points_json(j: &mut Json, pts: &[(i64, f64)]) {
    j.begin_array();
    for &(t, v) in pts {
        j.begin_array().int(t).num(v).end_array();
    }
    j.end_array();
}

fn track_json(j: &mut Json, tr: &Track, now_ms: i64, range_ms: i64) {
    let since = now_ms - range_ms;
    j.begin_object().kv_str("name", &tr.name).kv_opt("capacity", tr.capacity).field("budgeted").bool(tr.budgeted);
    j.kv_opt("memory", tr.memory.last()).kv_opt("keys", tr.keys.last());
    let (ratio, lookups) = tr.hit_ratio(now_ms, 5 * MINUTE);
    j.kv_opt("hit_ratio_5m", (lookups > 0.0).then_some(ratio));
    match &tr.forecast {
        Some(f) => {
            j.field("forecast")
                .begin_object()
                .kv_str("method", f.method.name())
                .kv_num("level", f.level)
                .kv_num("growth_per_hour", f.per_hour)
                .kv_opt("full_in_seconds", f.full_in_ms.map(|ms| (ms / 1000) as f64))
                .end_object();
        }
        None => {
            j.field("forecast").null();
        }
    }
    j.kv_str("mrc_policy", tr.curve_policy);
    j.field("mrc").begin_array();
    for (&(bytes, ratio), factor) in tr.curve.iter().zip(mrc::FACTORS) {
        j.begin_object()
            .kv_num("factor", factor)
            .kv_num("bytes", bytes.round())
            .kv_num("hit_ratio", ratio)
            .end_object();
    }
    j.end_array();
    let (tier, memory) = tr.memory.window(now_ms, since);
    j.kv_int("step_ms", series::TIERS[tier].step_ms);
    j.field("memory_series");
    points_json(j, &memory);
    let (_, hits) = tr.hits.series.window(now_ms, since);
    let (_, misses) = tr.misses.series.window(now_ms, since);
    let ratio: Vec<(i64, f64)> = hits
        .iter()
        .zip(misses.iter())
        .filter(|(h, m)| h.0 == m.0 && h.1 + m.1 > 0.0)
        .map(|(h, m)| (h.0, h.1 / (h.1 + m.1)))
        .collect();
    j.field("hit_ratio_series");
    points_json(j, &ratio);
    j.end_object();
}

/// Where `value` stands when higher is worse: past `open` fires, below `clear` clears.
fn rising(value: f64, open: f64, clear: f64) -> State {
    if value >= open {
        State::Fire
    } else if value < clear {
        State::Clear
    } else {
        State::Hold
    }
}

fn check(tr: &Track, kind: &'static str, detail: Option<String>, severity: Severity) -> Check {
    let id = match detail {
        Some(d) => format!("{kind}:{}:{d}", tr.name),
        None => format!("{kind}:{}", tr.name),
    };
    Check {
        id,
        kind,
        subject: tr.name.clone(),
        severity,
        state: State::Hold,
        value: 0.0,
        threshold: 0.0,
        message: String::new(),
    }
}

/// Whether every namespace that grows has a limit it will reach before the server as a
/// whole fills up (then the server-wide forecast is not a danger).
fn capped(global: &Track, namespaces: &[Track]) -> bool {
    let (Some(cap), Some(g)) = (global.capacity, global.forecast.as_ref()) else { return false };
    let growing: Vec<&Track> =
        namespaces.iter().filter(|n| n.forecast.as_ref().is_some_and(|f| f.per_hour > 0.0)).collect();
    if growing.is_empty() || growing.iter().any(|n| !n.budgeted) {
        return false;
    }
    let room: f64 = growing.iter().map(|n| n.capacity.unwrap_or(0.0) - n.forecast.map_or(0.0, |f| f.level)).sum();
    room.max(0.0) < cap - g.level
}

fn memory_checks(cfg: &Config, tr: &Track, level: f64, checks: &mut Vec<Check>) {
    let Some(cap) = tr.capacity.filter(|&c| tr.budgeted && c > 0.0) else { return };
    let pct = level / cap * 100.0;
    if tr.evicts {
        for &l in &cfg.memory_levels {
            let mut c = check(tr, "memory", Some(format!("{l}")), Severity::Info);
            c.state = State::Clear;
            c.message = format!("{} evicts at its budget", tr.scope());
            checks.push(c);
        }
        return;
    }
    for &l in &cfg.memory_levels {
        let severity = match l {
            l if l >= 90.0 => Severity::Critical,
            l if l >= 50.0 => Severity::Warning,
            _ => Severity::Info,
        };
        let mut c = check(tr, "memory", Some(format!("{l}")), severity);
        // resolves 5 points (a quarter of the level for low ones) below
        let clear = l - 5f64.min(l / 4.0);
        c.state = rising(pct, l, clear);
        c.value = pct;
        c.threshold = l;
        c.message = format!(
            "{} uses {:.1}% of {} ({} of {}); alert level {l}%",
            tr.scope(),
            pct,
            if tr.name == "global" { "maxmemory" } else { "its limit" },
            time::bytes(level),
            time::bytes(cap)
        );
        checks.push(c);
    }
}

fn forecast_check(cfg: &Config, tr: &Track, now_ms: i64, checks: &mut Vec<Check>) {
    // A namespace without a limit of its own is covered by the server-wide forecast.
    if tr.name != "global" && !tr.budgeted {
        return;
    }
    let mut c = check(tr, "forecast", None, Severity::Warning);
    let leeway = cfg.leeway_ms as f64;
    // Warn a quarter early, so a forecast that is up to 20% optimistic still leaves the
    // whole leeway; resolve once the forecast is well past it (or growth stopped).
    let (open_at, clear_at) = (leeway * 1.25, leeway * 1.5);
    c.threshold = leeway / 1000.0;
    let applies = !tr.evicts && !tr.capped;
    match tr.forecast.as_ref().filter(|_| applies).and_then(|f| f.full_in_ms.map(|ms| (f, ms))) {
        Some((f, ms)) => {
            c.value = ms as f64 / 1000.0;
            c.state = if (ms as f64) <= open_at {
                State::Fire
            } else if ms as f64 > clear_at {
                State::Clear
            } else {
                State::Hold
            };
            if ms <= cfg.leeway_ms / 4 {
                c.severity = Severity::Critical;
            }
            c.message = format!(
                "{} grows {}/h ({}) and will be full in {} (around {}): less than the {} leeway plus a quarter; find what grows with MEMORY PATTERNS",
                tr.scope(),
                time::bytes(f.per_hour),
                f.method.name(),
                time::duration(ms),
                time::iso8601(now_ms + ms),
                time::duration(cfg.leeway_ms)
            );
        }
        None => {
            c.state = if tr.forecast.is_some() || !applies { State::Clear } else { State::Hold };
            c.value = f64::INFINITY;
            c.message = match (tr.evicts, tr.capped) {
                (true, _) => format!("{} evicts when full", tr.scope()),
                (_, true) => "the namespaces that grow reach their own limits first".to_string(),
                _ => format!("{} is not forecast to fill its budget", tr.scope()),
            };
        }
    }
    checks.push(c);
}

fn hit_ratio_check(cfg: &Config, alerts: &Alerts, tr: &mut Track, now_ms: i64, checks: &mut Vec<Check>) {
    let mut c = check(tr, "hit_ratio", None, Severity::Warning);
    let (short, n) = tr.hit_ratio(now_ms, 5 * MINUTE);
    if !alerts.is_open(&c.id) {
        // its own level: the six hours before the last five minutes
        let h = tr.hits.since(now_ms, 6 * HOUR) - tr.hits.since(now_ms, 5 * MINUTE);
        let m = tr.misses.since(now_ms, 6 * HOUR) - tr.misses.since(now_ms, 5 * MINUTE);
        tr.hit_baseline = (h + m >= cfg.min_lookups * 3.0).then(|| h / (h + m));
    }
    let Some(base) = tr.hit_baseline else { return };
    if n < cfg.min_lookups || short.is_nan() {
        // too few reads to judge: an open alert stays as it is
        if alerts.is_open(&c.id) {
            checks.push(c);
        }
        return;
    }
    let floor = base * (1.0 - cfg.hit_ratio_drop);
    c.state = if short < floor {
        State::Fire
    } else if short >= base * (1.0 - cfg.hit_ratio_drop / 2.0) {
        State::Clear
    } else {
        State::Hold
    };
    c.value = short;
    c.threshold = floor;
    c.message = format!(
        "hit ratio of {} is {:.1}% over the last 5 minutes, down from its usual {:.1}% ({} fewer): check eviction (maxmemory, policy) and the miss-ratio curve",
        tr.scope(),
        short * 100.0,
        base * 100.0,
        format_args!("{:.0}%", (1.0 - short / base.max(f64::MIN_POSITIVE)) * 100.0)
    );
    checks.push(c);
}

fn eviction_check(cfg: &Config, alerts: &Alerts, tr: &mut Track, now_ms: i64, checks: &mut Vec<Check>) {
    let mut c = check(tr, "evictions", None, Severity::Warning);
    let last = tr.evicted.since(now_ms, MINUTE);
    if !alerts.is_open(&c.id) {
        let hour = tr.evicted.since(now_ms, HOUR) - last;
        tr.evict_baseline = Some(hour / 59.0);
    }
    let base = tr.evict_baseline.unwrap_or(0.0);
    let threshold = (base * cfg.eviction_storm_factor).max(cfg.eviction_storm_min);
    c.state = rising(last, threshold, (base * 2.0).max(cfg.eviction_storm_min / 2.0));
    c.value = last;
    c.threshold = threshold;
    c.message = format!(
        "{} evicted {:.0} keys in the last minute ({:.0} per minute over the hour before): an eviction storm; the hit ratio will fall",
        tr.scope(),
        last,
        base
    );
    checks.push(c);
}

fn rejected_check(tr: &Track, now_ms: i64, checks: &mut Vec<Check>) {
    let mut c = check(tr, "rejected_writes", None, Severity::Critical);
    let (minute, five) = (tr.rejected.since(now_ms, MINUTE), tr.rejected.since(now_ms, 5 * MINUTE));
    c.state = if minute > 0.0 {
        State::Fire
    } else if five == 0.0 {
        State::Clear
    } else {
        State::Hold
    };
    c.value = minute;
    c.threshold = 1.0;
    c.message = format!(
        "{} refused {:.0} writes for memory in the last minute ({:.0} in five): clients are getting OOM errors",
        tr.scope(),
        minute,
        five
    );
    checks.push(c);
}

fn persistence_checks(cfg: &Config, s: &Sample, checks: &mut Vec<Check>) {
    for (part, error) in &s.persistence {
        checks.push(Check {
            id: format!("persistence:{part}"),
            kind: "persistence",
            subject: (*part).to_string(),
            severity: Severity::Critical,
            state: if error.is_some() { State::Fire } else { State::Clear },
            value: error.is_some() as u8 as f64,
            threshold: 1.0,
            message: match error {
                Some(e) => format!(
                    "{} cannot be written: {e}",
                    if *part == "aof" { "the append-only log" } else { "the snapshot" }
                ),
                None => format!("{part} writes succeed again"),
            },
        });
    }
    if let Some((last, stalled)) = s.fsync_ms {
        let worst = last.max(stalled);
        checks.push(Check {
            id: "slow_disk:aof".into(),
            kind: "slow_disk",
            subject: "aof".into(),
            severity: Severity::Warning,
            state: rising(worst, cfg.slow_fsync_ms, cfg.slow_fsync_ms / 2.0),
            value: worst,
            threshold: cfg.slow_fsync_ms,
            message: format!(
                "the append-only log's disk is slow: last fsync took {last:.0} ms, durability stalled for {stalled:.0} ms (alert at {:.0} ms); clients of appendfsync always wait that long",
                cfg.slow_fsync_ms
            ),
        });
    }
}

#[cfg(test)]
mod tests;
