//! MEMORY STATS, DOCTOR, MALLOC-STATS, PURGE and HELP (MEMORY USAGE is a keyspace command,
//! in `commands::handlers::keys`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use commands::{CmdError, CmdResult};

use crate::info::{human_bytes, keyspace_totals, memory_figures};
use crate::session::Session;
use crate::Shared;

/// Below this much memory MEMORY DOCTOR has nothing meaningful to say (as Redis).
const DOCTOR_MIN_BYTES: u64 = 5 << 20;

pub fn run(
    shared: &Shared,
    s: &mut Session,
    sub: &str,
    argv: &[&[u8]],
    held: Option<&mut store::View<'_>>,
) -> CmdResult {
    match sub {
        "patterns" => patterns(shared, s, argv)?,
        "mrc" => mrc(shared, s, argv)?,
        "stats" => stats(shared, s, held),
        "doctor" => {
            let report = doctor(shared, held);
            s.out.verbatim("txt", report.as_bytes());
        }
        "malloc-stats" => s.out.verbatim("txt", malloc_stats().as_bytes()),
        "purge" => {
            purge();
            s.out.ok();
        }
        "help" => help(s),
        _ => return Err(CmdError::fixed("ERR unknown subcommand")),
    }
    Ok(())
}

/// MEMORY HELP: Redis's text exactly (clients and tests compare it); Redoubt's MRC and
/// PATTERNS are in the README and COMMAND DOCS.
fn help(s: &mut Session) {
    const LINES: &[&str] = &[
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ];
    s.out.array(LINES.len());
    for l in LINES {
        s.out.simple(l);
    }
}

/// MEMORY PATTERNS [COUNT n]: the growth finder's report, fastest-growing first (a
/// collection that lists a growing pattern's ids comes first, that pattern right after it).
fn patterns(shared: &Shared, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let mut count = 10usize;
    match argv.len() {
        2 => {}
        4 if argv[2].eq_ignore_ascii_case(b"count") => {
            count = commands::args::int(argv[3])
                .ok()
                .filter(|&n| n > 0)
                .ok_or(CmdError::fixed("ERR COUNT must be a positive integer"))? as usize;
        }
        _ => return Err(CmdError::fixed("ERR syntax error")),
    }
    let census = shared.guardrails.census.lock();
    let report = &census.report;
    let n = report.len().min(count);
    s.out.array(n);
    for r in &report[..n] {
        s.out.map(11);
        s.out.bulk(b"pattern");
        s.out.bulk(r.pattern.as_bytes());
        s.out.bulk(b"type");
        s.out.bulk(r.kind.as_bytes());
        s.out.bulk(b"keys");
        s.out.int(r.keys.round() as i64);
        s.out.bulk(b"bytes");
        s.out.int(r.bytes.round() as i64);
        s.out.bulk(b"keys-per-hour");
        s.out.int(r.keys_per_hour.round() as i64);
        s.out.bulk(b"bytes-per-hour");
        s.out.int(r.bytes_per_hour.round() as i64);
        s.out.bulk(b"ttl-share");
        double(s, (r.ttl_share * 1000.0).round() / 1000.0);
        s.out.bulk(b"indexes");
        match &r.indexes {
            Some(p) => s.out.bulk(p.as_bytes()),
            None => s.out.null(),
        }
        s.out.bulk(b"indexed-by");
        match &r.indexed_by {
            Some(p) => s.out.bulk(p.as_bytes()),
            None => s.out.null(),
        }
        s.out.bulk(b"largest");
        s.out.array(r.largest.len());
        for (key, bytes, elements, per_hour) in &r.largest {
            s.out.map(4);
            s.out.bulk(b"key");
            s.out.bulk(key.as_bytes());
            s.out.bulk(b"bytes");
            s.out.int(*bytes as i64);
            s.out.bulk(b"elements");
            s.out.int(*elements as i64);
            s.out.bulk(b"elements-per-hour");
            s.out.int(per_hour.round() as i64);
        }
        s.out.bulk(b"samples-rate");
        double(s, census.history.back().map_or(0.0, |p| p.rate));
    }
    Ok(())
}

/// MEMORY MRC [namespace]: the curve at the last guardrail sample, and the eviction policy it
/// models.
fn mrc(shared: &Shared, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::fixed("ERR syntax error"));
    }
    let g = shared.guardrails.guard.lock();
    let (curve, policy) = match argv.get(2) {
        None => (g.global.curve.clone(), g.global.curve_policy),
        Some(name) => match g.namespaces.iter().find(|t| t.name.as_bytes() == *name) {
            Some(t) => (t.curve.clone(), t.curve_policy),
            None => return Err(CmdError::new(format!("ERR no such namespace '{}'", String::from_utf8_lossy(name)))),
        },
    };
    drop(g);
    let points: Vec<(f64, f64, f64)> =
        curve.iter().zip(guard::mrc::FACTORS).filter(|(p, _)| p.1.is_finite()).map(|(p, f)| (f, p.0, p.1)).collect();
    s.out.array(points.len());
    for (factor, bytes, ratio) in points {
        s.out.map(4);
        s.out.bulk(b"factor");
        double(s, factor);
        s.out.bulk(b"bytes");
        s.out.int(bytes.round() as i64);
        s.out.bulk(b"hit-ratio");
        double(s, (ratio * 10_000.0).round() / 10_000.0);
        s.out.bulk(b"policy");
        s.out.bulk(policy.as_bytes());
    }
    Ok(())
}

/// A ratio as Redis's MEMORY STATS prints it (a double).
fn double(s: &mut Session, v: f64) {
    let mut text = Vec::new();
    commands::numfmt::append_double_reply(&mut text, v);
    s.out.double_text(&text);
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// MEMORY STATS: Redis's fields, in Redis's order.
fn stats(shared: &Shared, s: &mut Session, held: Option<&mut store::View<'_>>) {
    let m = memory_figures();
    let used = store::memory::used();
    let ks = keyspace_totals(shared, held);
    let peak = shared.stats.peak_memory.fetch_max(used, Ordering::Relaxed).max(used);
    let startup = shared.stats.startup_memory.load(Ordering::Relaxed);
    let dataset = ks.dataset_bytes as u64;
    let overhead = used.saturating_sub(dataset);
    let keys: u64 = ks.dbs.iter().map(|d| d.0 as u64).sum();
    let dbs: Vec<usize> = (0..ks.dbs.len()).filter(|&i| ks.dbs[i].0 > 0).collect();
    s.out.map(27 + dbs.len());
    let int = |s: &mut Session, name: &str, v: u64| {
        s.out.bulk(name.as_bytes());
        s.out.int(v as i64);
    };
    int(s, "peak.allocated", peak);
    int(s, "total.allocated", used);
    int(s, "startup.allocated", startup);
    for name in ["replication.backlog", "clients.slaves"] {
        int(s, name, 0);
    }
    int(s, "clients.normal", shared.clients.output_bytes());
    for name in ["cluster.links", "aof.buffer", "lua.caches", "functions.caches"] {
        int(s, name, 0);
    }
    for db in &dbs {
        s.out.bulk(format!("db.{db}").as_bytes());
        s.out.map(2);
        int(s, "overhead.hashtable.main", ks.table_bytes[*db] as u64);
        // Redoubt keeps no separate expiry table: a TTL lives in the key's entry.
        int(s, "overhead.hashtable.expires", 0);
    }
    int(s, "overhead.total", overhead);
    int(s, "keys.count", keys);
    int(s, "keys.bytes-per-key", used.saturating_sub(startup).checked_div(keys).unwrap_or(0));
    int(s, "dataset.bytes", dataset);
    s.out.bulk(b"dataset.percentage");
    double(s, ratio(dataset * 100, used.saturating_sub(startup)));
    s.out.bulk(b"peak.percentage");
    double(s, ratio(used * 100, peak));
    int(s, "allocator.allocated", m.allocated);
    int(s, "allocator.active", m.active);
    int(s, "allocator.resident", m.resident);
    s.out.bulk(b"allocator-fragmentation.ratio");
    double(s, ratio(m.active, m.allocated));
    int(s, "allocator-fragmentation.bytes", m.active.saturating_sub(m.allocated));
    s.out.bulk(b"allocator-rss.ratio");
    double(s, ratio(m.resident, m.active));
    int(s, "allocator-rss.bytes", m.resident.saturating_sub(m.active));
    s.out.bulk(b"rss-overhead.ratio");
    double(s, ratio(m.rss, m.resident));
    int(s, "rss-overhead.bytes", m.rss.saturating_sub(m.resident));
    s.out.bulk(b"fragmentation");
    double(s, ratio(m.rss, used));
    int(s, "fragmentation.bytes", m.rss.saturating_sub(used));
}

/// MEMORY DOCTOR: the memory situation in plain words, with what to do about each problem.
fn doctor(shared: &Shared, held: Option<&mut store::View<'_>>) -> String {
    let m = memory_figures();
    let used = store::memory::used();
    if used < DOCTOR_MIN_BYTES {
        return format!(
            "This instance uses very little memory ({}), so there is nothing to diagnose yet. \
             Run MEMORY DOCTOR again once it holds data.\n",
            human_bytes(used)
        );
    }
    let settings = shared.settings();
    let ks = keyspace_totals(shared, held);
    let peak = shared.stats.peak_memory.load(Ordering::Relaxed).max(used);
    let evicted = shared.stats.evicted_keys.load(Ordering::Relaxed);
    let clients = shared.clients.output_bytes();
    let keys: u64 = ks.dbs.iter().map(|d| d.0 as u64).sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Memory: {} in use ({} of data in {} keys, {} of overhead), {} resident, peak {}.",
        human_bytes(used),
        human_bytes(ks.dataset_bytes as u64),
        keys,
        human_bytes(used.saturating_sub(ks.dataset_bytes as u64)),
        human_bytes(m.rss),
        human_bytes(peak)
    );
    let mut problems = 0;
    if settings.maxmemory == 0 {
        let _ = writeln!(
            out,
            "* No maxmemory is set: the dataset can grow until the machine runs out of memory. \
             Set maxmemory (and a maxmemory-policy) below the memory you can give this server."
        );
        problems += 1;
    } else {
        let pct = ratio(used * 100, settings.maxmemory);
        let _ = writeln!(
            out,
            "Limit: {:.1}% of maxmemory {} used, policy {}, {} keys evicted so far.",
            pct,
            human_bytes(settings.maxmemory),
            settings.maxmemory_policy,
            evicted
        );
        if pct >= 90.0 && settings.maxmemory_policy == "noeviction" {
            let _ = writeln!(
                out,
                "* Memory is above 90% of maxmemory with noeviction: writes will soon be refused \
                 with -OOM. Raise maxmemory, delete data, or choose an eviction policy if this \
                 data can be recomputed."
            );
            problems += 1;
        }
        if evicted > 0 && settings.maxmemory_policy != "noeviction" {
            let _ = writeln!(
                out,
                "* Keys are being evicted to stay under maxmemory: if the hit ratio \
                 (INFO stats keyspace_hits/keyspace_misses) is falling, the cache is too small \
                 for its working set."
            );
            problems += 1;
        }
    }
    let frag = ratio(m.rss, used);
    if frag > 1.4 && m.rss.saturating_sub(used) > 64 << 20 {
        let _ = writeln!(
            out,
            "* The process holds {:.2}x the memory in use ({} more): memory freed by deleted \
             or evicted keys is kept by the allocator. MEMORY PURGE returns what it can to the \
             system; if the ratio stays high, the data's sizes changed a lot since the peak.",
            frag,
            human_bytes(m.rss.saturating_sub(used))
        );
        problems += 1;
    }
    if peak > used.saturating_mul(3) / 2 {
        let _ = writeln!(
            out,
            "* The peak ({}) was more than 1.5x the memory in use now: plan capacity for the \
             peak, not for today's figure.",
            human_bytes(peak)
        );
        problems += 1;
    }
    if clients > used / 4 {
        let _ = writeln!(
            out,
            "* Client output buffers hold {} (over a quarter of the memory in use): some clients \
             read their replies slowly or subscribe to busy channels. See CLIENT LIST (omem) \
             and client-output-buffer-limit.",
            human_bytes(clients)
        );
        problems += 1;
    }
    if problems == 0 {
        let _ = writeln!(out, "No memory problems found.");
    }
    out
}

/// MEMORY MALLOC-STATS: jemalloc's own statistics report.
fn malloc_stats() -> String {
    unsafe extern "C" fn write(opaque: *mut std::ffi::c_void, text: *const std::ffi::c_char) {
        // SAFETY: jemalloc passes back the `String` handed to it below, and a NUL-terminated
        // message.
        let (out, text) = unsafe { (&mut *(opaque as *mut String), std::ffi::CStr::from_ptr(text)) };
        out.push_str(&text.to_string_lossy());
    }
    let mut out = String::new();
    // SAFETY: the callback only appends to `out`, which outlives the call; a null options
    // string asks for the default report.
    unsafe {
        tikv_jemalloc_sys::malloc_stats_print(Some(write), &mut out as *mut String as *mut _, std::ptr::null());
    }
    out
}

/// MEMORY PURGE: returns dirty pages of every arena to the system.
fn purge() {
    // jemalloc's MALLCTL_ARENAS_ALL.
    let name = c"arena.4096.purge";
    // SAFETY: "arena.<i>.purge" takes no input and gives no output.
    unsafe {
        tikv_jemalloc_sys::mallctl(name.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut(), 0);
    }
}
