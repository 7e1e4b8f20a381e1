//! Scenario tests of the rules: samples with a made-up clock, as the server would take them.

use super::*;

const SECOND: i64 = 1000;
const MB: u64 = 1 << 20;

fn ns(name: &str, bytes: u64, limit: Option<u64>) -> NsSample {
    NsSample { name: name.into(), bytes, keys: bytes / 1000, limit, ..NsSample::default() }
}

fn base(at_ms: i64) -> Sample {
    Sample {
        at_ms,
        used: 50 * MB,
        rss: 60 * MB,
        dataset: 40 * MB,
        maxmemory: 1000 * MB,
        system_memory: 24_000 * MB,
        ..Sample::default()
    }
}

fn opened(events: &[Event]) -> Vec<String> {
    events.iter().filter(|e| e.what == "open").map(|e| e.alert.id.clone()).collect()
}

fn resolved(events: &[Event]) -> Vec<String> {
    events.iter().filter(|e| e.what == "resolve").map(|e| e.alert.id.clone()).collect()
}

#[test]
fn memory_levels_open_in_turn_and_resolve_below_their_margin() {
    let mut g = Guard::new(Config::default());
    let mut seen = Vec::new();
    // a namespace with a 100 MB limit fills to 95 MB, then drains to 10 MB
    let levels: Vec<u64> = (0..=95).chain((10..95).rev()).collect();
    for (i, mb) in levels.iter().enumerate() {
        let mut s = base(i as i64 * 10 * SECOND);
        s.namespaces = vec![ns("queues", mb * MB, Some(100 * MB))];
        for e in g.observe(&s) {
            if e.alert.kind == "memory" {
                seen.push(format!("{} {} at {mb}", e.what, e.alert.id));
            }
        }
    }
    assert_eq!(
        seen,
        [
            "open memory:queues:20 at 20",
            "open memory:queues:50 at 50",
            "open memory:queues:90 at 90",
            "resolve memory:queues:90 at 84",
            "resolve memory:queues:50 at 44",
            "resolve memory:queues:20 at 14",
        ]
    );
    // the server-wide budget (1000 MB) was never near a level
    assert!(g.alerts.events().all(|e| e.alert.subject == "queues"));
}

#[test]
fn steady_growth_warns_with_more_than_the_leeway_left() {
    // postmortem 001: completed jobs pile up at 1 MB an hour in a 200 MB namespace
    let mut g = Guard::new(Config::default());
    let step = 5 * 60 * SECOND;
    let mut t = 0;
    let fired = loop {
        let used = 20.0 + t as f64 / HOUR as f64; // MB
        assert!(used < 200.0, "never warned");
        let mut s = base(t);
        s.namespaces = vec![ns("queues", (used * MB as f64) as u64, Some(200 * MB))];
        if opened(&g.observe(&s)).contains(&"forecast:queues".to_string()) {
            break (t, used);
        }
        t += step;
    };
    let hours_left = 200.0 - fired.1;
    assert!(hours_left >= 48.0, "warned with {hours_left} h left");
    assert!(hours_left <= 61.0, "warned too early: {hours_left} h left");
    let a = g.alerts.open().into_iter().find(|a| a.kind == "forecast").unwrap().clone();
    assert!(a.message.contains("namespace 'queues' grows 1.0 MiB/h"), "{}", a.message);
    // the jobs are cleaned up: memory falls, the forecast has no end, the alert resolves
    let mut resolved_at = None;
    for k in 1..200 {
        let mut s = base(fired.0 + k * step);
        s.namespaces = vec![ns("queues", 10 * MB, Some(200 * MB))];
        if resolved(&g.observe(&s)).contains(&"forecast:queues".to_string()) {
            resolved_at = Some(k);
            break;
        }
    }
    assert!(resolved_at.is_some());
}

#[test]
fn a_hit_ratio_drop_against_its_own_level_alerts_and_recovers() {
    let mut g = Guard::new(Config::default());
    let (mut hits, mut misses) = (0u64, 0u64);
    let mut t = 0;
    let mut run = |g: &mut Guard, minutes: i64, ratio: f64| {
        let mut events = Vec::new();
        for _ in 0..minutes * 6 {
            t += 10 * SECOND;
            hits += (1000.0 * ratio) as u64;
            misses += (1000.0 * (1.0 - ratio)) as u64;
            let mut s = base(t);
            s.namespaces = vec![NsSample { name: "cache".into(), hits, misses, ..NsSample::default() }];
            events.extend(g.observe(&s));
        }
        events
    };
    assert!(opened(&run(&mut g, 60, 0.9)).is_empty(), "a steady 90% raises nothing");
    // the policy change: 45%
    let e = run(&mut g, 10, 0.45);
    assert_eq!(opened(&e), ["hit_ratio:cache"]);
    let a = g.alerts.open().into_iter().find(|a| a.kind == "hit_ratio").unwrap().clone();
    assert!(a.message.contains("down from its usual 90."), "{}", a.message);
    // it stays open while the ratio stays low (the baseline is frozen), however long
    assert!(resolved(&run(&mut g, 8 * 60, 0.45)).is_empty());
    let e = run(&mut g, 10, 0.9);
    assert_eq!(resolved(&e), ["hit_ratio:cache"]);
}

#[test]
fn memory_that_holds_no_data_alerts() {
    // postmortem 003: RSS climbs 20 MB a minute while the dataset stays at 40 MB
    let mut g = Guard::new(Config::default());
    let mut first = None;
    for m in 0..60 {
        let mut s = base(m * MINUTE);
        s.rss = (60 + 20 * m as u64) * MB;
        if opened(&g.observe(&s)).contains(&"rss:global".to_string()) {
            first = Some(m);
            break;
        }
    }
    // the threshold is 64 MB beyond the 20 MB of the first sample; the 5-minute median lags
    let m = first.expect("no rss alert");
    assert!((5..=8).contains(&m), "opened after {m} minutes");
    // a restart of the leaky code: RSS back to normal, alert resolved
    let mut s = base(61 * MINUTE);
    s.rss = 60 * MB;
    let mut events = Vec::new();
    for k in 0..10 {
        s.at_ms += MINUTE * k;
        events.extend(g.observe(&s));
    }
    assert_eq!(resolved(&events), ["rss:global"]);
}

#[test]
fn evictions_refusals_and_disk_trouble() {
    let mut g = Guard::new(Config::default());
    let mut evicted = 0;
    let mut events = Vec::new();
    for k in 0..360 {
        // a cache that evicts 100 keys a minute, then 20,000 a minute for two minutes
        evicted += if (300..312).contains(&k) { 20_000 / 6 } else { 100 / 6 };
        let mut s = base(k * 10 * SECOND);
        s.evicted = evicted;
        s.rejected = if k >= 350 { 5 } else { 0 };
        s.persistence = vec![("aof", (k == 200).then(|| "No space left on device".to_string()))];
        s.fsync_ms = Some(if k == 100 { (1500.0, 0.0) } else { (2.0, 0.0) });
        events.extend(g.observe(&s).into_iter().map(|e| format!("{} {} at {k}", e.what, e.alert.id)));
    }
    assert_eq!(
        events,
        [
            "open slow_disk:aof at 100",
            "resolve slow_disk:aof at 101",
            "open persistence:aof at 200",
            "resolve persistence:aof at 201",
            "open evictions:global at 300",
            "resolve evictions:global at 318",
            "open rejected_writes:global at 350",
        ]
    );
}

#[test]
fn history_is_bounded_and_removed_namespaces_are_forgotten() {
    let mut g = Guard::new(Config::default());
    let mut s = base(0);
    s.namespaces = (0..100).map(|i| ns(&format!("n{i}"), MB, Some(2 * MB))).collect();
    g.observe(&s);
    assert_eq!(g.namespaces.len(), MAX_TRACKED);
    assert!(g.alerts.open().iter().any(|a| a.subject == "n3"), "50% of the limit");
    s.at_ms += 10 * SECOND;
    s.namespaces.truncate(1);
    let events = g.observe(&s);
    assert_eq!(g.namespaces.len(), 1);
    assert!(resolved(&events).contains(&"memory:n3:50".to_string()));
    // a month of samples every 5 s keeps the same memory
    let per_track = 6 * Series::footprint();
    assert!(per_track * (MAX_TRACKED + 2) < 8 << 20, "{per_track} bytes per namespace");
}

#[test]
fn the_json_document_holds_alerts_forecasts_and_series() {
    let mut g = Guard::new(Config::default());
    for k in 0..200 {
        let mut s = base(k * 10 * SECOND);
        s.used = (50 + k as u64) * MB;
        s.namespaces = vec![ns("queues", (95 + k as u64 / 100) * MB, Some(100 * MB))];
        g.observe(&s);
    }
    let mut j = Json::new();
    j.begin_object();
    g.write_json(&mut j, 199 * 10 * SECOND, HOUR);
    j.end_object();
    let text = j.finish();
    assert!(text.starts_with(r#"{"alerts":[{"id":"memory:queues:90","kind":"memory""#), "{text}");
    assert!(text.contains(r#""name":"queues","capacity":104857600"#), "{text}");
    assert!(text.contains(r#""forecast":{"method":"theil-sen""#), "{text}");
    assert!(text.contains(r#""ops_per_sec":[[0,0],"#), "{text}");
}

#[test]
fn alerts_whose_rule_no_longer_applies_resolve() {
    let mut g = Guard::new(Config::default());
    let mut s = base(0);
    s.used = 950 * MB;
    assert!(opened(&g.observe(&s)).contains(&"memory:global:90".to_string()));
    // maxmemory is switched off: no budget, so no level can hold the alert open
    s.at_ms += 10 * SECOND;
    s.maxmemory = 0;
    let events = g.observe(&s);
    assert!(resolved(&events).contains(&"memory:global:90".to_string()), "{events:?}");
    assert!(g.alerts.open().iter().all(|a| a.kind != "memory"));
}

#[test]
fn an_open_hit_ratio_alert_holds_while_there_are_too_few_reads() {
    let mut g = Guard::new(Config::default());
    let (mut hits, mut misses, mut t) = (0u64, 0u64, 0i64);
    let mut step = |g: &mut Guard, reads: u64, ratio: f64| {
        t += 10 * SECOND;
        hits += (reads as f64 * ratio) as u64;
        misses += reads - (reads as f64 * ratio) as u64;
        let mut s = base(t);
        s.namespaces = vec![NsSample { name: "cache".into(), hits, misses, ..NsSample::default() }];
        g.observe(&s)
    };
    for _ in 0..360 {
        step(&mut g, 1000, 0.9);
    }
    let mut events = Vec::new();
    for _ in 0..60 {
        events.extend(step(&mut g, 1000, 0.4));
    }
    assert_eq!(opened(&events), ["hit_ratio:cache"]);
    // traffic stops: nothing to judge, the alert stays open with its last message
    for _ in 0..60 {
        assert!(step(&mut g, 0, 0.0).is_empty());
    }
    assert!(g.alerts.is_open("hit_ratio:cache"));
}
