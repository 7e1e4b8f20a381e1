//! The keyspace: packed entries in cache-line hash tables, grouped into databases, split into
//! independently locked shards so that commands on different keys run in parallel.
//!
//! Where things live:
//! * [`entry`]: one key + value + TTL + access clock in one allocation;
//! * [`table`]: the hash table and its SCAN cursor;
//! * [`db`]: one logical database (SELECT n) within a shard, with lazy expiry;
//! * [`keyspace`]: the shards, their locks and the lock-ordering rule;
//! * [`expire`]: the active expiry cycle;
//! * [`snapshot`]: point-in-time snapshots without fork (copy-before-write of entries);
//! * [`glob`]: Redis's glob matcher.

pub mod access;
pub mod db;
pub mod entry;
pub mod expire;
pub mod glob;
pub mod hash;
pub mod journal;
pub mod keyspace;
pub mod list;
pub mod memory;
pub mod mrc;
pub mod namespace;
pub mod object;
pub mod set;
pub mod snapshot;
pub mod stream;
pub mod table;
pub mod zset;

use std::cell::Cell;
use std::sync::OnceLock;

pub use db::Db;
pub use entry::{Entry, Kind, NewValue, ValueRef};
pub use keyspace::{Keyspace, Shard, View};
pub use object::Object;

static HASHER: OnceLock<ahash::RandomState> = OnceLock::new();

/// The 64-bit hash of a key (seeded randomly per process, so clients cannot force collisions).
/// The top bits pick the shard, the low bits the bucket, bits 48..56 the bucket tag.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    HASHER.get_or_init(ahash::RandomState::new).hash_one(key)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(hash_key(b"rng-seed") | 1);
}

/// A fast per-thread pseudo-random number (xorshift64*); not for cryptography.
pub fn random_u64() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}
