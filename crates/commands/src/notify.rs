//! Keyspace notification classes and the events handlers report.
//!
//! A handler that modifies a key calls [`crate::Ctx::notify`] with the event's class and
//! Redis's event name (`set`, `del`, `expire`, `incrby`, ...). Events are collected only when
//! `notify-keyspace-events` enables that class, so the call costs a branch otherwise; the
//! server publishes them on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>` after
//! the command, while it still holds the key's shard.

pub const GENERIC: u32 = 1 << 0;
pub const STRING: u32 = 1 << 1;
pub const LIST: u32 = 1 << 2;
pub const SET: u32 = 1 << 3;
pub const HASH: u32 = 1 << 4;
pub const ZSET: u32 = 1 << 5;
pub const EXPIRED: u32 = 1 << 6;
pub const EVICTED: u32 = 1 << 7;
pub const STREAM: u32 = 1 << 8;
pub const MODULE: u32 = 1 << 9;
pub const NEW: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const KEYSPACE: u32 = 1 << 12;
pub const KEYEVENT: u32 = 1 << 13;
/// `A`: every class except key-miss and new-key.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// One keyspace event: (database, event name, key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub db: usize,
    pub name: &'static str,
    pub key: Vec<u8>,
}

/// Whether `flags` (from `notify-keyspace-events`) want events of `class` published.
pub fn wanted(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}
