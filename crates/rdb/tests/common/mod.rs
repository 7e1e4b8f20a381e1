//! Shared test helpers: a seeded xorshift PRNG and generators of random valid values.
//!
//! Generated values satisfy the value model's invariants (unique members and fields,
//! non-NaN scores, ascending stream ids, consistent groups) and are never empty
//! collections, so every one of them must survive encode -> decode unchanged (up to the
//! orders [`normalize`] erases).

#![allow(dead_code)]

use std::cell::Cell;
use std::collections::HashSet;

use rdb::{PendingEntry, Stream, StreamConsumer, StreamGroup, StreamId, Value};

/// xorshift64* generator; deterministic for a given seed. Interior mutability lets
/// generator calls nest in argument lists.
pub struct Rng(Cell<u64>);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(Cell::new(seed.max(1)))
    }

    pub fn next_u64(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn range(&self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    pub fn chance(&self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Integers at every encoding boundary (string int8/16/32, listpack 7/13/16/24/32/64 bits).
pub const BOUNDARY_INTS: &[i64] = &[
    0,
    1,
    -1,
    12,
    13,
    127,
    128,
    -128,
    -129,
    255,
    4095,
    4096,
    -4096,
    -4097,
    32767,
    32768,
    -32768,
    -32769,
    8_388_607,
    8_388_608,
    -8_388_608,
    -8_388_609,
    2_147_483_647,
    2_147_483_648,
    -2_147_483_648,
    -2_147_483_649,
    i64::MAX,
    i64::MIN,
];

/// Random bytes in one of several styles: binary, text, integers (canonical and not),
/// repetitive (compressible), long.
pub fn random_bytes(rng: &Rng, max_len: usize) -> Vec<u8> {
    match rng.below(8) {
        0 => (0..rng.range(0, max_len)).map(|_| rng.next_u64() as u8).collect(),
        1 => (0..rng.range(0, max_len)).map(|_| b'a' + rng.below(26) as u8).collect(),
        2 => rng.pick(BOUNDARY_INTS).to_string().into_bytes(),
        3 => (rng.next_u64() as i64 >> rng.below(64)).to_string().into_bytes(),
        4 => rng.pick(&["007", "-0", "+5", " 1", "1e3", "", "00", "9223372036854775808"]).as_bytes().to_vec(),
        5 => {
            let unit: Vec<u8> = (0..rng.range(1, 5)).map(|_| rng.next_u64() as u8).collect();
            unit.iter().cycle().take(rng.range(0, max_len)).copied().collect()
        }
        6 => rng.below(1000).to_string().into_bytes(),
        _ => format!("key:{}", rng.below(1_000_000)).into_bytes(),
    }
}

fn unique_bytes(rng: &Rng, n: usize, max_len: usize) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut attempts = 0;
    while out.len() < n && attempts < n * 20 {
        attempts += 1;
        let b = random_bytes(rng, max_len);
        if seen.insert(b.clone()) {
            out.push(b);
        }
    }
    if out.is_empty() && n > 0 {
        out.push(b"fallback".to_vec());
    }
    out
}

pub fn random_score(rng: &Rng) -> f64 {
    match rng.below(8) {
        0 => *rng.pick(&[f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 1e300, -1e-300, 0.1]),
        1 => *rng.pick(BOUNDARY_INTS) as f64,
        2 => (rng.below(2000) as f64 - 1000.0) / 4.0,
        3 | 4 => loop {
            let d = f64::from_bits(rng.next_u64());
            if !d.is_nan() {
                break d;
            }
        },
        _ => rng.below(100) as f64,
    }
}

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId { ms, seq }
}

pub fn random_stream(rng: &Rng, max_entries: usize) -> Stream {
    let n = rng.range(0, max_entries);
    let master_fields: Vec<Vec<u8>> = unique_bytes(rng, rng.range(0, 4), 10);
    let mut entries = Vec::with_capacity(n);
    let mut cur = id(rng.below(1 << 45), rng.below(3));
    for _ in 0..n {
        let fields: Vec<(Vec<u8>, Vec<u8>)> = if rng.chance(60) {
            master_fields.iter().map(|f| (f.clone(), random_bytes(rng, 40))).collect()
        } else {
            let names = unique_bytes(rng, rng.range(1, 5), 12);
            names.into_iter().map(|f| (f, random_bytes(rng, if rng.chance(5) { 3000 } else { 30 }))).collect()
        };
        entries.push((cur, fields));
        cur = if rng.chance(50) { id(cur.ms + rng.below(5) + 1, rng.below(4)) } else { id(cur.ms, cur.seq + 1) };
    }
    let ids: Vec<StreamId> = entries.iter().map(|(i, _)| *i).collect();
    let last_id = ids.last().copied().unwrap_or(id(rng.below(100), 0));
    let first_id = ids.first().copied().unwrap_or_default();
    let mut groups = Vec::new();
    for name in unique_bytes(rng, rng.range(0, 3), 12) {
        let mut pel_ids: Vec<StreamId> = ids.iter().filter(|_| rng.chance(30)).copied().collect();
        pel_ids.sort();
        let pel: Vec<PendingEntry> = pel_ids
            .iter()
            .map(|i| PendingEntry {
                id: *i,
                delivery_time: 1_700_000_000_000 + rng.below(1 << 30) as i64,
                delivery_count: rng.below(if rng.chance(10) { 1 << 40 } else { 5 }),
            })
            .collect();
        let consumer_names = unique_bytes(rng, rng.range(0, 3), 10);
        let mut consumers: Vec<StreamConsumer> = consumer_names
            .into_iter()
            .map(|name| StreamConsumer {
                name,
                seen_time: rng.below(1 << 42) as i64,
                active_time: if rng.chance(20) { Some(-1) } else { Some(rng.below(1 << 42) as i64) },
                pending: Vec::new(),
            })
            .collect();
        if !consumers.is_empty() {
            // Hand every pending id to one consumer, keeping ids sorted per consumer.
            for p in &pel {
                let c = rng.below(consumers.len() as u64) as usize;
                consumers[c].pending.push(p.id);
            }
        }
        let pel = if consumers.is_empty() { Vec::new() } else { pel };
        groups.push(StreamGroup {
            name,
            last_id: ids.get(rng.below(ids.len() as u64 + 1) as usize).copied().unwrap_or_default(),
            entries_read: if rng.chance(30) { None } else { Some(rng.below(1000)) },
            pel,
            consumers,
        });
    }
    Stream {
        length: entries.len() as u64,
        entries,
        last_id,
        first_id,
        max_deleted_id: if rng.chance(50) { StreamId::default() } else { id(rng.below(50), rng.below(3)) },
        entries_added: n as u64 + rng.below(10),
        groups,
    }
}

/// A random non-empty value; `big` allows collections past every listpack/intset limit.
pub fn random_value(rng: &Rng, big: bool) -> Value {
    let scale = if big { 700 } else { 40 };
    match rng.below(6) {
        0 => Value::String(if big && rng.chance(20) { random_bytes(rng, 30_000) } else { random_bytes(rng, 200) }),
        1 => {
            let n = rng.range(1, scale * 3);
            let items = (0..n)
                .map(|_| if big && rng.chance(1) { vec![b'L'; rng.range(8000, 20_000)] } else { random_bytes(rng, 60) })
                .collect();
            Value::List(items)
        }
        2 => {
            let members = if rng.chance(40) {
                let mut ints: Vec<i64> = (0..rng.range(1, scale))
                    .map(|_| if rng.chance(30) { *rng.pick(BOUNDARY_INTS) } else { rng.below(5000) as i64 - 2500 })
                    .collect();
                ints.sort_unstable();
                ints.dedup();
                ints.into_iter().map(|i| i.to_string().into_bytes()).collect()
            } else {
                unique_bytes(rng, rng.range(1, scale), if rng.chance(20) { 100 } else { 30 })
            };
            Value::Set(members)
        }
        3 => {
            let fields = unique_bytes(rng, rng.range(1, scale), 40);
            let max_value = if rng.chance(20) { 200 } else { 50 };
            Value::Hash(fields.into_iter().map(|f| (f, random_bytes(rng, max_value))).collect())
        }
        4 => {
            let members = unique_bytes(rng, rng.range(1, scale), if rng.chance(10) { 100 } else { 30 });
            Value::ZSet(members.into_iter().map(|m| (m, random_score(rng))).collect())
        }
        _ => Value::Stream(Box::new(random_stream(rng, if big { 300 } else { 20 }))),
    }
}

/// Erases the orders encodings may change: set members and sorted set pairs are sorted
/// (intsets come back numerically sorted, listpack sorted sets by score).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Set(m) => {
            let mut m = m.clone();
            m.sort();
            Value::Set(m)
        }
        Value::ZSet(p) => {
            let mut p = p.clone();
            p.sort_by(|a, b| a.0.cmp(&b.0));
            Value::ZSet(p)
        }
        other => other.clone(),
    }
}

/// What a value looks like after a round trip through RDB 10 (no consumer active time).
pub fn as_rdb10(v: &Value) -> Value {
    match v {
        Value::Stream(s) => {
            let mut s = s.clone();
            for g in &mut s.groups {
                for c in &mut g.consumers {
                    c.active_time = None;
                }
            }
            Value::Stream(s)
        }
        other => other.clone(),
    }
}
