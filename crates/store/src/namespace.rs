//! Namespaces: sets of key patterns with their own memory rules (reserve, limit, eviction).
//!
//! This module holds what the keyspace needs: the table mapping each key to exactly one
//! namespace, and each namespace's live counters (bytes, keys, hits, misses, evictions,
//! refused writes). Every change of the keyspace's byte count goes through [`charge`], so a
//! namespace's figure is the sum of its keys' counted sizes (the same counting as
//! `used_memory_dataset`, within 1% of the allocator). The rules themselves (when to refuse
//! a write or evict) are applied by the server before a command runs.
//!
//! Mapping: namespaces are tried in the order they were defined; a key belongs to the first
//! whose pattern matches (a pattern ending in `*` with no other wildcard is a prefix test,
//! anything else Redis's glob); keys matching none belong to the default namespace, which
//! always exists (index 0).
//!
//! Concurrency: charges happen under a shard lock. The installed table is swapped only by
//! [`install`], whose caller holds [`GUARD`] for writing and then every shard lock (and
//! recounts the keyspace), so a reader holding any shard lock, or `GUARD` for reading, sees
//! a stable table through a plain pointer load.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, Ordering};

/// A memory amount: absolute, or a share of `maxmemory`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    Bytes(u64),
    Percent(f64),
}

impl Amount {
    /// The amount in bytes given `maxmemory` (a percentage of no limit is no amount).
    pub fn bytes(self, maxmemory: u64) -> Option<u64> {
        match self {
            Amount::Bytes(b) => Some(b),
            Amount::Percent(_) if maxmemory == 0 => None,
            Amount::Percent(p) => Some((maxmemory as f64 * p / 100.0) as u64),
        }
    }
}

/// How a namespace makes room at its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evict {
    /// Refuse writes that would grow it.
    None,
    /// Follow the global `maxmemory-policy`.
    Inherit,
    /// Evict its own keys with this policy name (`allkeys-lru`, `volatile-ttl`, `auto`...).
    Policy(String),
}

/// A key pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    Prefix(Vec<u8>),
    Glob(Vec<u8>),
}

impl Pattern {
    pub fn new(p: &[u8]) -> Pattern {
        match p.split_last() {
            Some((b'*', rest)) if !rest.iter().any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\')) => {
                Pattern::Prefix(rest.to_vec())
            }
            _ => Pattern::Glob(p.to_vec()),
        }
    }

    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            Pattern::Prefix(p) => key.starts_with(p),
            Pattern::Glob(g) => crate::glob::glob_match(g, key, false),
        }
    }

    pub fn text(&self) -> Vec<u8> {
        match self {
            Pattern::Prefix(p) => [p.as_slice(), b"*"].concat(),
            Pattern::Glob(g) => g.clone(),
        }
    }
}

/// One namespace's definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub name: String,
    pub patterns: Vec<Pattern>,
    pub reserve: Option<Amount>,
    pub limit: Option<Amount>,
    pub evict: Evict,
    /// Catches the keys no other namespace matches.
    pub default: bool,
    /// Whether snapshots include its keys (`persist no`: a pure cache, rebuilt after a
    /// restart, costs no disk and no snapshot time).
    pub persist: bool,
}

impl Spec {
    /// The default namespace as it is when not configured.
    pub fn default_namespace() -> Spec {
        Spec {
            name: "default".into(),
            patterns: Vec::new(),
            reserve: None,
            limit: None,
            evict: Evict::Inherit,
            default: true,
            persist: true,
        }
    }
}

/// Live counters of one namespace.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes: AtomicI64,
    pub keys: AtomicI64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evicted: AtomicU64,
    pub rejected: AtomicU64,
    /// The namespace's miss-ratio curve.
    pub mrc: crate::mrc::Mrc,
}

/// Every namespace, default first, with their counters.
#[derive(Debug)]
pub struct Table {
    pub specs: Vec<Spec>,
    pub counters: Vec<Counters>,
}

impl Table {
    /// A table of `specs` (the default namespace is added first if missing).
    pub fn new(mut specs: Vec<Spec>) -> Table {
        match specs.iter().position(|s| s.default) {
            Some(0) => {}
            Some(i) => {
                let d = specs.remove(i);
                specs.insert(0, d);
            }
            None => specs.insert(0, Spec::default_namespace()),
        }
        let counters = specs.iter().map(|_| Counters::default()).collect();
        Table { specs, counters }
    }

    /// The index of the namespace `key` belongs to.
    pub fn index_of(&self, key: &[u8]) -> usize {
        self.specs
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, s)| s.patterns.iter().any(|p| p.matches(key)))
            .map_or(0, |(i, _)| i)
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    pub fn bytes(&self, i: usize) -> u64 {
        self.counters[i].bytes.load(Ordering::Relaxed).max(0) as u64
    }
}

/// Held for reading by code that reads the table without a shard lock (the server's write
/// gate, INFO); held for writing, before the shard locks, by whoever installs a table.
pub static GUARD: parking_lot::RwLock<()> = parking_lot::RwLock::new(());

static ENABLED: AtomicBool = AtomicBool::new(false);
static TABLE: AtomicPtr<Table> = AtomicPtr::new(std::ptr::null_mut());

/// Installs a new table (or none). The caller must hold [`GUARD`] for writing and every
/// shard lock, and then recount
/// the keyspace into the new table with [`charge`]; the previous table is returned (its
/// counters carry the history the caller may want to keep).
pub fn install(table: Option<Box<Table>>) -> Option<Box<Table>> {
    let ptr = table.map_or(std::ptr::null_mut(), Box::into_raw);
    ENABLED.store(!ptr.is_null(), Ordering::Release);
    let old = TABLE.swap(ptr, Ordering::AcqRel);
    // SAFETY: `old` came from `Box::into_raw` in an earlier `install`; every reader holds a
    // shard lock, which the caller holds too, so none is reading it now.
    (!old.is_null()).then(|| unsafe { Box::from_raw(old) })
}

/// Whether namespaces are configured (one relaxed load: the hot paths' first check).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs `f` on the installed table. The caller must hold at least one shard lock (or
/// otherwise exclude [`install`]).
#[inline]
pub fn with_table<R>(f: impl FnOnce(&Table) -> R) -> Option<R> {
    let ptr = TABLE.load(Ordering::Acquire);
    // SAFETY: see the module docs: the table is only replaced while every shard lock is held.
    (!ptr.is_null()).then(|| f(unsafe { &*ptr }))
}

/// Whether snapshots include `key` (its namespace does not say `persist no`). The caller holds
/// the key's shard lock.
pub fn persisted(key: &[u8]) -> bool {
    !enabled() || with_table(|t| t.specs[t.index_of(key)].persist).unwrap_or(true)
}

/// Adds `bytes` and `keys` to the namespace of `key`.
#[inline]
pub fn charge(key: &[u8], bytes: i64, keys: i64) {
    if !enabled() || (bytes == 0 && keys == 0) {
        return;
    }
    with_table(|t| {
        let c = &t.counters[t.index_of(key)];
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        if keys != 0 {
            c.keys.fetch_add(keys, Ordering::Relaxed);
        }
    });
}

/// Counts a read of `key` (table hash `hash`) on its namespace: a hit when `found` holds
/// the entry's bytes, and a point of the namespace's miss-ratio curve.
/// Counts a read of `key` in its namespace; `sample` is the key's sampling hash, and whether
/// it has a TTL, when the miss-ratio curves may sample it ([`crate::mrc::sample_of`]).
#[inline]
pub fn count_read(key: &[u8], found: Option<usize>, sample: Option<(u64, bool)>) {
    if !enabled() {
        return;
    }
    with_table(|t| {
        let i = t.index_of(key);
        let c = &t.counters[i];
        if found.is_some() { &c.hits } else { &c.misses }.fetch_add(1, Ordering::Relaxed);
        // curves for the first 64 namespaces, as the guardrails track at most that many
        if let Some((h, ttl)) = sample.filter(|_| i < 64) {
            c.mrc.record(h, found, ttl);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, patterns: &[&str]) -> Spec {
        Spec {
            name: name.into(),
            patterns: patterns.iter().map(|p| Pattern::new(p.as_bytes())).collect(),
            reserve: None,
            limit: None,
            evict: Evict::None,
            default: false,
            persist: true,
        }
    }

    #[test]
    fn keys_map_to_the_first_matching_namespace() {
        let t =
            Table::new(vec![spec("sessions", &["sess:*"]), spec("queues", &["bull:*", "rq:*"]), spec("odd", &["x?z"])]);
        assert_eq!(t.specs[0].name, "default");
        assert_eq!(t.index_of(b"sess:123"), 1);
        assert_eq!(t.index_of(b"bull:q:wait"), 2);
        assert_eq!(t.index_of(b"rq:job:1"), 2);
        assert_eq!(t.index_of(b"xyz"), 3);
        assert_eq!(t.index_of(b"cache:1"), 0);
        assert_eq!(t.index_of(b"sess"), 0);
        assert_eq!(Pattern::new(b"a*b*"), Pattern::Glob(b"a*b*".to_vec()));
        assert_eq!(Pattern::new(b"sess:*").text(), b"sess:*");
    }

    #[test]
    fn amounts() {
        assert_eq!(Amount::Percent(40.0).bytes(1000), Some(400));
        assert_eq!(Amount::Percent(40.0).bytes(0), None);
        assert_eq!(Amount::Bytes(5).bytes(0), Some(5));
    }
}
