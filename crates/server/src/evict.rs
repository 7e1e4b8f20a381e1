//! `maxmemory`: keeping the allocator's figure under the limit by evicting keys with one of
//! Redis's policies, paced so that a sudden cut of the limit never stalls clients.
//!
//! Before every command (when `maxmemory` is set) the worker compares [`memory::used`] with
//! the limit. Over it, it evicts for at most the time `maxmemory-eviction-tenacity` allows
//! (500 µs at the default 10, as Redis), then lets the command run; the cron thread keeps
//! evicting between commands until memory is under the limit. A command flagged `denyoom`
//! is refused with Redis's `-OOM` error only when nothing can be evicted (`noeviction`, or a
//! `volatile-*` policy with no key that has a TTL), exactly as Redis decides.
//!
//! Choosing a victim follows Redis's `evict.c`: each round samples `maxmemory-samples` keys
//! of one randomly chosen shard, scores them (idle time for LRU, 255 − access counter for
//! LFU, nearness of the expiry for volatile-ttl) into a pool of the 16 best candidates kept
//! across rounds, and evicts the best candidate that still exists. The random policies evict
//! a random key directly. No shard lock is held while another is taken: eviction runs before
//! the command takes its own locks.

use std::time::{Duration, Instant};

use store::{Entry, View};

use store::memory;

use crate::Shared;

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    /// Redoubt's own (see `store::access`).
    AllKeysAuto,
}

impl Policy {
    pub fn parse(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "allkeys-auto" | "auto" => Policy::AllKeysAuto,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    /// Only keys with a TTL may be evicted.
    fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    fn random(self) -> bool {
        matches!(self, Policy::AllKeysRandom | Policy::VolatileRandom)
    }
}

/// What an eviction pass achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Memory is under the limit (or there is no limit).
    Ok,
    /// Still over the limit after the time budget; eviction continues in the background.
    Running,
    /// Over the limit and nothing can be evicted: `denyoom` commands must be refused.
    Fail,
}

/// Redis's `evictionTimeLimitUs`: 0..500 µs linearly up to tenacity 10, then 15% more per
/// step (about 2 minutes at 99), unlimited at 100.
pub fn time_limit(tenacity: u32) -> Option<Duration> {
    match tenacity {
        0..=10 => Some(Duration::from_micros(50 * tenacity as u64)),
        11..=99 => Some(Duration::from_micros((500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64)),
        _ => None,
    }
}

const POOL_SIZE: usize = 16;

/// An eviction candidate: higher `score` is evicted first.
#[derive(Clone, Debug)]
struct Candidate {
    score: u64,
    db: usize,
    key: Vec<u8>,
}

/// The best candidates seen so far, ascending by score (Redis's `EvictionPoolLRU`).
#[derive(Default)]
pub struct Pool {
    candidates: Vec<Candidate>,
}

impl Pool {
    /// Whether a candidate scoring `score` would enter the pool (checked before copying its
    /// key).
    fn would_take(&self, score: u64) -> bool {
        self.candidates.len() < POOL_SIZE || self.candidates[0].score < score
    }

    fn offer(&mut self, c: Candidate) {
        if self.candidates.iter().any(|o| o.db == c.db && o.key == c.key) {
            return;
        }
        if self.candidates.len() == POOL_SIZE {
            if self.candidates[0].score >= c.score {
                return;
            }
            self.candidates.remove(0);
        }
        let at = self.candidates.partition_point(|o| o.score < c.score);
        self.candidates.insert(at, c);
    }

    fn take_best(&mut self) -> Option<Candidate> {
        self.candidates.pop()
    }
}

/// How eager a key is to be evicted under `policy` (higher first). `tick` is the key's
/// database's Auto tick.
fn score(policy: Policy, e: &Entry, now: i64, decay_minutes: u32, tick: u32) -> u64 {
    match policy {
        Policy::AllKeysAuto => u64::MAX - (store::access::auto_score(e.clock(), tick) * 1e12) as u64,
        Policy::AllKeysLfu | Policy::VolatileLfu => {
            255 - store::access::lfu_counter(e.clock(), now, decay_minutes) as u64
        }
        Policy::VolatileTtl => u64::MAX - e.expire_at().unwrap_or(i64::MAX).max(0) as u64,
        _ => store::access::idle_ms(e.clock(), now),
    }
}

/// What one eviction needs to know.
struct Plan {
    policy: Policy,
    samples: usize,
    decay_minutes: u32,
    databases: usize,
    /// Only keys of this namespace may go (namespace eviction).
    namespace: Option<usize>,
}

impl Plan {
    fn allows(&self, key: &[u8]) -> bool {
        match self.namespace {
            None => true,
            Some(i) => store::namespace::with_table(|t| t.index_of(key) == i).unwrap_or(true),
        }
    }
}

/// Fills the pool from one random shard; false if that shard had nothing evictable.
fn populate(shared: &Shared, plan: &Plan, pool: &mut Pool, now: i64) -> bool {
    let shard = store::random_u64() as usize % store::keyspace::SHARDS;
    let mut view = shared.keyspace.lock_shard(shard);
    let mut found = false;
    for db in 0..plan.databases {
        let Some(d) = db_of(&mut view, shard, db) else { continue };
        if d.is_empty() || (plan.policy.volatile() && d.expires() == 0) {
            continue;
        }
        let tick = d.auto_tick();
        for e in sample(d, plan.samples, plan.policy.volatile()) {
            if !plan.allows(e.key()) {
                continue;
            }
            found = true;
            let score = score(plan.policy, e, now, plan.decay_minutes, tick);
            if pool.would_take(score) {
                pool.offer(Candidate { score, db, key: e.key().to_vec() });
            }
        }
    }
    found
}

/// The database `db` of the one shard a view holds.
fn db_of<'v>(view: &'v mut View<'_>, shard: usize, db: usize) -> Option<&'v mut store::Db> {
    view.indexed_shards_mut().find(|(i, _)| *i == shard).and_then(|(_, s)| s.dbs.get_mut(db))
}

/// Up to `n` random entries of `d` (only entries with a TTL when `volatile`).
fn sample(d: &store::Db, n: usize, volatile: bool) -> Vec<&Entry> {
    let mut out = Vec::with_capacity(n);
    let mut tries = n * if volatile { 16 } else { 1 };
    while out.len() < n && tries > 0 {
        tries -= 1;
        if let Some(e) = d.random_entry() {
            if !volatile || e.expire_at().is_some() {
                out.push(e);
            }
        }
    }
    out
}

/// Evicts one key: the best pool candidate that still exists, or a random key for the
/// random policies. Returns false when nothing could be found to evict.
fn evict_one(shared: &Shared, plan: &Plan, pool: &mut Pool, now: i64) -> bool {
    if plan.policy.random() {
        for _ in 0..store::keyspace::SHARDS {
            let shard = store::random_u64() as usize % store::keyspace::SHARDS;
            let mut view = shared.keyspace.lock_shard(shard);
            for db in 0..plan.databases {
                let Some(d) = db_of(&mut view, shard, db) else { continue };
                let victim = sample(d, 4, plan.policy.volatile())
                    .into_iter()
                    .find(|e| plan.allows(e.key()))
                    .map(|e| e.key().to_vec());
                if let Some(key) = victim {
                    remove(shared, &mut view, db, &key);
                    return true;
                }
            }
        }
        return false;
    }
    // A few rounds of sampling; every shard may be empty (or have no volatile key).
    let mut sampled_any = false;
    for _ in 0..store::keyspace::SHARDS {
        sampled_any |= populate(shared, plan, pool, now);
        if sampled_any && !pool.candidates.is_empty() {
            break;
        }
    }
    while let Some(c) = pool.take_best() {
        let mut view = shared.keyspace.lock_key(&c.key);
        let d = view.db(c.db, &c.key);
        let live = d.lookup(&c.key, now).is_some_and(|e| !plan.policy.volatile() || e.expire_at().is_some());
        if live {
            remove(shared, &mut view, c.db, &c.key);
            return true;
        }
    }
    false
}

/// Deletes an evicted key and tells whoever cares: the `evicted` event, WATCHers, INFO.
fn remove(shared: &Shared, view: &mut View<'_>, db: usize, key: &[u8]) {
    if view.db(db, key).evict(key).is_none() {
        return;
    }
    crate::aof::log_delete(shared, db, key);
    shared.stats.evicted_keys.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    store::namespace::with_table(|t| {
        t.counters[t.index_of(key)].evicted.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    });
    shared.watches.touch(db, key);
    let flags = shared.settings().notify_flags;
    if commands::notify::wanted(flags, commands::notify::EVICTED) {
        let event = commands::notify::Event { db, name: "evicted", key: key.to_vec() };
        crate::dispatch::publish_events(shared, &[event]);
    }
}

/// Evicts until memory is under `maxmemory` or `budget` runs out (Redis's
/// `performEvictions`). `pool` persists across calls, as Redis's does. With namespaces,
/// global pressure is handled by [`perform_shared`] instead.
pub fn perform(
    shared: &Shared,
    settings: &crate::config::Settings,
    pool: &mut Pool,
    budget: Option<Duration>,
) -> Outcome {
    let limit = settings.maxmemory;
    if limit == 0 || memory::used() <= limit {
        return Outcome::Ok;
    }
    if store::namespace::enabled() {
        return perform_shared(shared, settings, pool, limit, budget);
    }
    let policy = Policy::parse(&settings.maxmemory_policy);
    if policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    let plan = plan(settings, policy, None);
    run(shared, &plan, pool, budget, || memory::used() <= limit)
}

fn plan(settings: &crate::config::Settings, policy: Policy, namespace: Option<usize>) -> Plan {
    // The clock every key carries decides how keys can be ranked: a namespace asking for
    // LRU or LFU while the clocks are Auto ticks (or the reverse) ranks with what is kept.
    let policy = match (policy, settings.access) {
        (Policy::AllKeysLru | Policy::AllKeysLfu | Policy::AllKeysAuto, store::access::Mode::Auto) => {
            Policy::AllKeysAuto
        }
        (Policy::AllKeysAuto | Policy::AllKeysLru, store::access::Mode::Lfu { .. }) => Policy::AllKeysLfu,
        (Policy::AllKeysAuto, store::access::Mode::Lru) => Policy::AllKeysLru,
        (p, _) => p,
    };
    // Auto compares 8 fresh samples with the pool (the study: 16 gain half a point of
    // miss ratio for twice the sampling work).
    let samples =
        if policy == Policy::AllKeysAuto { settings.maxmemory_samples.max(8) } else { settings.maxmemory_samples };
    Plan { policy, samples, decay_minutes: settings.lfu_decay_time, databases: settings.databases, namespace }
}

/// Evicts with `plan` until `done` or the budget runs out.
fn run(shared: &Shared, plan: &Plan, pool: &mut Pool, budget: Option<Duration>, done: impl Fn() -> bool) -> Outcome {
    let started = Instant::now();
    let mut evicted = 0u64;
    loop {
        let found = evict_one(shared, plan, pool, crate::unix_ms());
        // Other threads must see the memory this one freed at once, or they would evict it
        // a second time.
        memory::publish();
        if !found {
            return Outcome::Fail;
        }
        evicted += 1;
        if done() {
            return Outcome::Ok;
        }
        // Check the clock every 16 keys, as Redis does.
        if evicted.is_multiple_of(16) && budget.is_some_and(|b| started.elapsed() >= b) {
            return Outcome::Running;
        }
    }
}

/// The policy a miss-ratio curve models for a scope evicting with `policy` (a policy name;
/// `None` for a scope that does not evict, whose curve shows what LRU would do).
pub fn curve_model(settings: &crate::config::Settings, policy: Option<&str>) -> store::mrc::Model {
    use store::mrc::Model;
    let Some(name) = policy else { return Model::Lru };
    let plan = plan(settings, Policy::parse(name), None);
    match plan.policy {
        Policy::AllKeysLfu | Policy::VolatileLfu => Model::Lfu {
            log_factor: settings.lfu_log_factor,
            decay_minutes: settings.lfu_decay_time,
            samples: plan.samples,
            volatile: plan.policy == Policy::VolatileLfu,
        },
        Policy::VolatileLru => Model::VolatileLru { samples: plan.samples },
        Policy::AllKeysAuto => Model::Auto { samples: plan.samples },
        Policy::AllKeysRandom | Policy::VolatileRandom => {
            Model::Random { volatile: plan.policy == Policy::VolatileRandom }
        }
        _ => Model::Lru,
    }
}

/// A namespace's own policy.
fn namespace_policy(name: &str) -> Policy {
    Policy::parse(name)
}

/// Evicts keys of namespace `ns` with `policy` until it uses less than `limit` bytes.
pub fn perform_namespace(
    shared: &Shared,
    settings: &crate::config::Settings,
    pool: &mut Pool,
    ns: usize,
    policy: &str,
    limit: u64,
    budget: Option<Duration>,
) -> Outcome {
    let _read = store::namespace::GUARD.read_recursive();
    let policy = namespace_policy(policy);
    if policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    let bytes = || store::namespace::with_table(|t| t.bytes(ns)).unwrap_or(0);
    if bytes() < limit {
        return Outcome::Ok;
    }
    // The shared pool may hold other namespaces' keys: this eviction uses its own.
    let _ = pool;
    let mut own = Pool::default();
    run(shared, &plan(settings, policy, Some(ns)), &mut own, budget, || bytes() < limit)
}

/// With namespaces: evicts until memory is under `ceiling`, taking keys only from
/// namespaces that may evict and hold more than their reserve, the one furthest above its
/// reserve first.
pub fn perform_shared(
    shared: &Shared,
    settings: &crate::config::Settings,
    pool: &mut Pool,
    ceiling: u64,
    budget: Option<Duration>,
) -> Outcome {
    let _ = pool;
    let _read = store::namespace::GUARD.read_recursive();
    let started = Instant::now();
    while memory::used() >= ceiling {
        let m = settings.maxmemory;
        let pick = store::namespace::with_table(|t| {
            (0..t.specs.len())
                .filter_map(|i| {
                    let policy = crate::namespaces::policy_of(&t.specs[i], &settings.maxmemory_policy)?;
                    let reserve = t.specs[i].reserve.and_then(|r| r.bytes(m)).unwrap_or(0);
                    let excess = t.bytes(i).saturating_sub(reserve);
                    (excess > 0).then_some((excess, i, policy, reserve))
                })
                .max_by_key(|(excess, ..)| *excess)
        })
        .flatten();
        let Some((_, ns, policy, reserve)) = pick else { return Outcome::Fail };
        let policy = namespace_policy(&policy);
        if policy == Policy::NoEviction {
            return Outcome::Fail;
        }
        let left = budget.map(|b| b.saturating_sub(started.elapsed()));
        let bytes = || store::namespace::with_table(|t| t.bytes(ns)).unwrap_or(0);
        let done = || memory::used() < ceiling || bytes() <= reserve;
        if run(shared, &plan(settings, policy, Some(ns)), &mut Pool::default(), left, done) == Outcome::Fail {
            // Nothing evictable left there (a volatile policy and no TTLs, say).
            return Outcome::Fail;
        }
        if memory::used() < ceiling {
            return Outcome::Ok;
        }
        if budget.is_some_and(|b| started.elapsed() >= b) {
            return Outcome::Running;
        }
    }
    Outcome::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_follow_redis() {
        assert_eq!(time_limit(0), Some(Duration::ZERO));
        assert_eq!(time_limit(10), Some(Duration::from_micros(500)));
        assert_eq!(time_limit(11), Some(Duration::from_micros(575)));
        assert!(time_limit(99).is_some_and(|d| d > Duration::from_secs(60)));
        assert_eq!(time_limit(100), None);
    }

    #[test]
    fn pool_keeps_the_best_sixteen() {
        let mut p = Pool::default();
        for i in 0..40u64 {
            p.offer(Candidate { score: (i * 7) % 40, db: 0, key: format!("k{i}").into_bytes() });
        }
        p.offer(Candidate { score: 39, db: 0, key: b"k1".to_vec() });
        assert_eq!(p.candidates.len(), POOL_SIZE);
        let best = p.take_best().unwrap();
        assert_eq!(best.score, 39);
        assert!(p.candidates.windows(2).all(|w| w[0].score <= w[1].score));
        // k1 (first offered at 7) came back at 39 and pushed out the weakest, 24.
        assert_eq!(p.candidates[0].score, 25);
    }
}
