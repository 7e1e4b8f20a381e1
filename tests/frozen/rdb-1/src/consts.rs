//! Numbers of the RDB format: versions, object type bytes, opcodes and stream flags.
//!
//! Every value here is fixed by the format (Redis's `rdb.h` and `stream.h`) and must never
//! change; the object types and opcodes share one byte space (types are < 245).

/// The RDB version written by Redis 7.2 and the newest this crate reads.
pub const RDB_VERSION: u16 = 11;
/// The RDB version written by Redis 7.0 (no set listpacks, no consumer active time).
pub const RDB_VERSION_7_0: u16 = 10;
/// The oldest RDB version this crate reads.
pub const MIN_RDB_VERSION: u16 = 1;

/// Plain string (possibly integer- or LZF-encoded).
pub const TYPE_STRING: u8 = 0;
/// List as a count followed by strings.
pub const TYPE_LIST: u8 = 1;
/// Set as a count followed by strings.
pub const TYPE_SET: u8 = 2;
/// Sorted set with scores written as length-prefixed ASCII.
pub const TYPE_ZSET: u8 = 3;
/// Hash as a count followed by field/value strings.
pub const TYPE_HASH: u8 = 4;
/// Sorted set with scores written as binary little-endian doubles.
pub const TYPE_ZSET_2: u8 = 5;
/// Module value from the Redis 4.0 release candidates.
pub const TYPE_MODULE_PRE_GA: u8 = 6;
/// Module value.
pub const TYPE_MODULE_2: u8 = 7;
/// Hash stored as a zipmap blob.
pub const TYPE_HASH_ZIPMAP: u8 = 9;
/// List stored as one ziplist blob.
pub const TYPE_LIST_ZIPLIST: u8 = 10;
/// Set of integers stored as an intset blob.
pub const TYPE_SET_INTSET: u8 = 11;
/// Sorted set stored as a ziplist blob of member/score pairs.
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
/// Hash stored as a ziplist blob of field/value pairs.
pub const TYPE_HASH_ZIPLIST: u8 = 13;
/// List stored as a quicklist whose nodes are ziplists.
pub const TYPE_LIST_QUICKLIST: u8 = 14;
/// Stream, first layout (Redis 5 and 6).
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
/// Hash stored as a listpack blob of field/value pairs.
pub const TYPE_HASH_LISTPACK: u8 = 16;
/// Sorted set stored as a listpack blob of member/score pairs.
pub const TYPE_ZSET_LISTPACK: u8 = 17;
/// List stored as a quicklist whose nodes are plain strings or listpacks.
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// Stream with first id, max deleted id, entries added and group entries read (Redis 7.0).
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// Set stored as a listpack blob of members (Redis 7.2).
pub const TYPE_SET_LISTPACK: u8 = 20;
/// Stream with consumer active time (Redis 7.2).
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

/// Function library code (Redis 7.0 GA and later).
pub const OPCODE_FUNCTION2: u8 = 245;
/// Function data from the Redis 7.0 release candidates.
pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// Module auxiliary data.
pub const OPCODE_MODULE_AUX: u8 = 247;
/// LRU idle time in seconds of the next key.
pub const OPCODE_IDLE: u8 = 248;
/// LFU frequency of the next key.
pub const OPCODE_FREQ: u8 = 249;
/// Auxiliary field (key/value strings).
pub const OPCODE_AUX: u8 = 250;
/// Hash table size hints for the current database.
pub const OPCODE_RESIZEDB: u8 = 251;
/// Expire time of the next key in milliseconds (8 bytes little-endian).
pub const OPCODE_EXPIRETIME_MS: u8 = 252;
/// Expire time of the next key in seconds (4 bytes little-endian).
pub const OPCODE_EXPIRETIME: u8 = 253;
/// Database number of the following keys.
pub const OPCODE_SELECTDB: u8 = 254;
/// End of the file; a CRC64 follows from version 5 on.
pub const OPCODE_EOF: u8 = 255;

/// Quicklist (type 18) node container holding one element as a plain string.
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
/// Quicklist (type 18) node container holding a listpack of elements.
pub const QUICKLIST_NODE_PACKED: u64 = 2;

/// Stream entry flag: the entry was deleted and is only kept as a tombstone.
pub const STREAM_ITEM_FLAG_DELETED: i64 = 1;
/// Stream entry flag: the entry has exactly the master entry's fields, so only values are stored.
pub const STREAM_ITEM_FLAG_SAMEFIELDS: i64 = 2;

/// Consumer group `entries_read` value meaning "unknown" on disk (`-1` written as a u64).
pub const STREAM_ENTRIES_READ_UNKNOWN: u64 = u64::MAX;
