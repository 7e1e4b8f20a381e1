//! The cron thread: runs `hz` times a second to expire keys actively, sample throughput for
//! INFO, track peak memory, and, with `maxmemory` set, correct the memory figure and evict
//! in the background. It never holds more than one shard lock at a time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::expire::ExpireCycle;

use crate::{unix_ms, Shared};

/// Starts the cron thread; it exits when the server shuts down.
pub fn spawn(shared: Arc<Shared>) -> Result<std::thread::JoinHandle<()>, String> {
    shared.stats.startup_memory.store(store::memory::used(), Ordering::Relaxed);
    std::thread::Builder::new().name("cron".into()).spawn(move || run(shared)).map_err(|e| e.to_string())
}

/// Publishes `expired` events for keys the active cycle removed (when enabled), and hands
/// them to a worker to unblock the XREADGROUP clients waiting on them.
fn publish_expired(shared: &Shared, taken: Vec<commands::notify::Event>) {
    if taken.is_empty() && (!store::db::recording_expired() || !store::db::expired_pending()) {
        return;
    }
    let wanted = commands::notify::wanted(shared.settings().notify_flags, commands::notify::EXPIRED);
    let mut ready = Vec::new();
    let mut deliver = |events: Vec<commands::notify::Event>| {
        if wanted {
            crate::dispatch::publish_events(shared, &events);
        }
        if shared.blocking.has_group_readers() {
            ready.extend(events.into_iter().map(|e| (e.db, e.key)));
        }
    };
    deliver(taken);
    for i in 0..store::keyspace::SHARDS {
        if !store::db::expired_pending() {
            break;
        }
        let mut view = shared.keyspace.lock_shard(i);
        let events = crate::dispatch::expired_events(&mut view);
        log_deletes(shared, &events);
        drop(view);
        deliver(events);
    }
    if !ready.is_empty() {
        if let Some(w) = shared.workers.read().first() {
            w.send(crate::worker::Msg::Ready(ready));
        }
    }
}

/// Logs keys removed by expiry as DEL (the caller holds their shard's lock).
fn log_deletes(shared: &Shared, events: &[commands::notify::Event]) {
    for e in events {
        crate::aof::log_delete(shared, e.db, &e.key);
    }
}

fn run(shared: Arc<Shared>) {
    store::memory::register_thread();
    let mut pool = crate::evict::Pool::default();
    let mut cycle = ExpireCycle::default();
    let mut last_sample = Instant::now() - Duration::from_secs(1);
    let mut cpu_ms = 0u64;
    while !shared.shutdown.load(Ordering::SeqCst) {
        let hz = shared.settings().hz.clamp(1, 500);
        let period = Duration::from_millis(1000 / hz as u64);
        let started = Instant::now();
        if shared.active_expire.load(Ordering::Relaxed) {
            // Like Redis's slow cycle: at most 25% of one core per period.
            // Expired keys go to the append-only log as DEL under their shard's lock.
            let mut taken = Vec::new();
            let report = cycle.run_with(&shared.keyspace, unix_ms(), period / 4, &mut |view| {
                if shared.aof.active() && store::db::expired_pending() {
                    let events = crate::dispatch::expired_events(view);
                    log_deletes(&shared, &events);
                    taken.extend(events);
                }
            });
            if report.expired > 0 {
                publish_expired(&shared, taken);
            }
            if report.examined > 0 {
                let stale = report.expired as u64 * 10_000 / report.examined as u64;
                shared.stats.expired_stale_perc.store(stale, Ordering::Relaxed);
            }
            cpu_ms += started.elapsed().as_millis() as u64;
            shared.stats.expire_cycle_cpu_ms.store(cpu_ms, Ordering::Relaxed);
        }
        if last_sample.elapsed() >= Duration::from_millis(100) {
            shared.stats.sample(unix_ms());
            last_sample = Instant::now();
        }
        // With a memory limit, eviction continues in the background when the commands' own
        // time budgets were not enough.
        let settings = shared.settings();
        crate::persistence::cron(&shared, &settings);
        crate::aof::cron(&shared, &settings);
        crate::guardrails::cron(&shared, &settings);
        if settings.maxmemory > 0 {
            crate::evict::perform(&shared, &settings, &mut pool, Some(period / 4));
        }
        store::memory::publish();
        shared.stats.peak_memory.fetch_max(store::memory::used(), Ordering::Relaxed);
        let spent = started.elapsed();
        std::thread::sleep(period.saturating_sub(spent));
    }
}
