//! The value model: what one RDB object decodes to, independent of its on-disk encoding.
//!
//! Invariants the decoders guarantee (and the encoders expect):
//! * set members, hash fields and sorted set members are unique within their value;
//! * sorted set scores are never NaN;
//! * stream `entries` hold only live entries, in strictly ascending id order, and
//!   `length == entries.len()`; every id in a consumer's `pending` is in its group's `pel`,
//!   owned by at most one consumer.
//!
//! Order is kept as stored, except where an encoding imposes one: intsets come back sorted
//! numerically, and sorted sets written as listpacks are sorted by (score, member).

use std::fmt;

/// A stream entry id: milliseconds and sequence number. Ordered as (ms, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The id encoded as 16 big-endian bytes (stream node keys, PEL entries).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// The id decoded from 16 big-endian bytes.
    pub fn from_be_bytes(b: [u8; 16]) -> Self {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId { ms: u64::from_be_bytes(ms), seq: u64::from_be_bytes(seq) }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One decoded RDB object.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    String(Vec<u8>),
    /// A list, head first.
    List(Vec<Vec<u8>>),
    /// A set of unique members.
    Set(Vec<Vec<u8>>),
    /// A hash of unique fields to values.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// A sorted set of unique members with their (non-NaN) scores.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// A stream.
    Stream(Box<Stream>),
}

impl Value {
    /// True for a list, set, hash or sorted set with no elements. Redis never stores such a
    /// key: loading skips it and RESTORE rejects it. Strings and streams are never "empty".
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::List(v) | Value::Set(v) => v.is_empty(),
            Value::Hash(v) => v.is_empty(),
            Value::ZSet(v) => v.is_empty(),
            Value::String(_) | Value::Stream(_) => false,
        }
    }
}

/// Field/value pairs of one stream entry, in entry order.
pub type StreamFields = Vec<(Vec<u8>, Vec<u8>)>;

/// A stream's entries, metadata and consumer groups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    /// Live entries in ascending id order, each with its field/value pairs.
    pub entries: Vec<(StreamId, StreamFields)>,
    /// Number of live entries.
    pub length: u64,
    /// Last id ever generated (not necessarily still present).
    pub last_id: StreamId,
    /// Id of the first live entry (0-0 when empty).
    pub first_id: StreamId,
    /// Largest id ever deleted (0-0 if none).
    pub max_deleted_id: StreamId,
    /// Count of entries ever added.
    pub entries_added: u64,
    /// Consumer groups.
    pub groups: Vec<StreamGroup>,
}

/// A consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamGroup {
    /// Group name.
    pub name: Vec<u8>,
    /// Last id delivered to the group.
    pub last_id: StreamId,
    /// Logical read counter; `None` when unknown (older formats, or Redis could not tell).
    pub entries_read: Option<u64>,
    /// Pending entries of the whole group.
    pub pel: Vec<PendingEntry>,
    /// Consumers of the group.
    pub consumers: Vec<StreamConsumer>,
}

/// A pending (delivered, not yet acknowledged) entry of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// Entry id.
    pub id: StreamId,
    /// Last delivery time, Unix milliseconds.
    pub delivery_time: i64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConsumer {
    /// Consumer name.
    pub name: Vec<u8>,
    /// Last time the consumer was seen, Unix milliseconds.
    pub seen_time: i64,
    /// Last successful read or claim, Unix milliseconds; `None` when the format predates it.
    pub active_time: Option<i64>,
    /// Ids this consumer owns in the group's PEL.
    pub pending: Vec<StreamId>,
}
