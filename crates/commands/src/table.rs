//! The command table: every command Redoubt knows, declared once, as data.
//!
//! Each [`CommandSpec`] says how many arguments the command takes, what it does to the
//! keyspace (flags), where its keys are, and which code runs it. The dispatcher's generic
//! checks (arity, authentication, memory, ...) and the `COMMAND` command's replies are both
//! derived from this table, so they cannot drift apart.

use crate::handlers;
use crate::Handler;

/// Command flags (a subset of Redis's, with the same names in `COMMAND INFO`).
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 16;
    pub const SENTINEL: u32 = 1 << 17;
    pub const MOVABLEKEYS: u32 = 1 << 18;
    /// Not a Redis flag: the command reads or writes the whole keyspace (KEYS, FLUSHALL...),
    /// so it must lock every shard.
    pub const ALL_SHARDS: u32 = 1 << 30;

    /// Flag names as `COMMAND INFO` lists them, in Redis's order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (SENTINEL, "sentinel"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

use flags::*;

/// Where a command's keys are: Redis's (first, last, step) triple; `last` < 0 counts from the
/// end (-1 is the last argument). `first == 0` means no keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPos {
    pub first: i32,
    pub last: i32,
    pub step: i32,
    /// For commands whose keys are counted by an argument (`LMPOP numkeys key ...`): the index
    /// of that count; the keys follow it. 0 when the positions above say it all.
    pub numkeys: i32,
}

/// The keys of XREAD (`numkeys` -1) and XREADGROUP (-4): the first half of the arguments after
/// the STREAMS keyword, searched from that index.
pub const STREAMS_KEYS_FROM_1: KeyPos = KeyPos { first: 0, last: 0, step: 0, numkeys: -1 };
pub const STREAMS_KEYS_FROM_4: KeyPos = KeyPos { first: 0, last: 0, step: 0, numkeys: -4 };

/// Indexes of the keys after `STREAMS` (searched from `from`): the first half of what follows.
fn streams_keys(argv: &[&[u8]], from: usize) -> Vec<usize> {
    let Some(at) = (from..argv.len()).find(|&i| argv[i].eq_ignore_ascii_case(b"streams")) else {
        return Vec::new();
    };
    let n = (argv.len() - at - 1) / 2;
    (at + 1..=at + n).collect()
}

pub const NO_KEYS: KeyPos = KeyPos { first: 0, last: 0, step: 0, numkeys: 0 };
pub const KEY1: KeyPos = KeyPos { first: 1, last: 1, step: 1, numkeys: 0 };
pub const KEYS_ALL: KeyPos = KeyPos { first: 1, last: -1, step: 1, numkeys: 0 };
pub const KEYS_1_2: KeyPos = KeyPos { first: 1, last: 2, step: 1, numkeys: 0 };
pub const KEYS_PAIRS: KeyPos = KeyPos { first: 1, last: -1, step: 2, numkeys: 0 };
/// Every argument but the last (BLPOP key [key ...] timeout).
pub const KEYS_BUT_LAST: KeyPos = KeyPos { first: 1, last: -2, step: 1, numkeys: 0 };
/// `timeout numkeys key [key ...]` (BLMPOP, BZMPOP).
pub const NUMKEYS_AT_2: KeyPos = KeyPos { first: 0, last: 0, step: 0, numkeys: 2 };
/// `numkeys key [key ...]` right after the command name (LMPOP, SINTERCARD, ...).
pub const NUMKEYS_AT_1: KeyPos = KeyPos { first: 0, last: 0, step: 0, numkeys: 1 };
/// `destination numkeys key [key ...]` (ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE).
pub const KEY1_NUMKEYS_AT_2: KeyPos = KeyPos { first: 1, last: 1, step: 1, numkeys: 2 };
/// The key right after a subcommand name (MEMORY USAGE key).
pub const KEY2: KeyPos = KeyPos { first: 2, last: 2, step: 1, numkeys: 0 };
pub const KEYS_FROM_2: KeyPos = KeyPos { first: 2, last: -1, step: 1, numkeys: 0 };

/// One command (or one subcommand of a container command such as CLIENT).
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name (`get`, or `list` for `client|list`).
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments including the name; -N means at least N.
    pub arity: i32,
    pub flags: u32,
    pub keys: KeyPos,
    /// ACL categories as `COMMAND INFO` lists them.
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Whether `argc` (including the name) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = self.arity as i64;
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Indexes of the key arguments of this invocation (`argv` includes the command name),
    /// including keys counted by a `numkeys` argument. An invalid count yields no keys (the
    /// handler reports the error).
    pub fn keys_of(&self, argv: &[&[u8]]) -> Vec<usize> {
        let k = self.keys;
        let mut keys: Vec<usize> = self.key_indexes(argv.len()).collect();
        if k.numkeys < 0 {
            return streams_keys(argv, -k.numkeys as usize);
        }
        if k.numkeys == 0 {
            return keys;
        }
        let at = k.numkeys as usize;
        let count = argv.get(at).and_then(|a| resp::decode::parse_i64(a)).unwrap_or(0);
        if count <= 0 || count as usize > argv.len().saturating_sub(at + 1) {
            return keys;
        }
        keys.extend(at + 1..=at + count as usize);
        keys
    }

    /// Indexes of the keys this invocation may modify, for WATCH: the declared keys, except
    /// for commands that only read some of theirs (the sources of the STORE commands and of
    /// BITOP, COPY's source), whose reads must not abort other clients' transactions.
    pub fn written_keys(&self, argv: &[&[u8]]) -> Vec<usize> {
        let mut keys = self.keys_of(argv);
        match self.name {
            "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore" | "zdiffstore"
            | "zrangestore" | "bitop" => keys.truncate(1),
            "copy" => {
                keys.drain(..keys.len().min(1));
            }
            _ => {}
        }
        keys
    }

    /// Indexes of the key arguments in `argv` (which includes the command name).
    pub fn key_indexes(&self, argc: usize) -> impl Iterator<Item = usize> {
        let k = self.keys;
        let (first, step) = (k.first.max(0) as usize, k.step.max(1) as usize);
        let last = if k.last < 0 { argc as i64 + k.last as i64 } else { k.last as i64 };
        let last = if k.first == 0 { -1 } else { last.min(argc as i64 - 1) };
        (first..=last.max(0) as usize).step_by(step).filter(move |&i| i as i64 <= last && first > 0)
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, [$($acl:literal),*], $group:literal,
     $since:literal, $handler:expr, $summary:literal, $complexity:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            acl: &[$($acl),*],
            group: $group,
            since: $since,
            summary: $summary,
            complexity: $complexity,
            handler: $handler,
            subcommands: &[],
        }
    };
}

macro_rules! container {
    ($name:literal, [$($acl:literal),*], $group:literal, $since:literal, $summary:literal, $subs:expr) => {
        CommandSpec {
            name: $name,
            arity: -2,
            flags: 0,
            keys: NO_KEYS,
            acl: &[$($acl),*],
            group: $group,
            since: $since,
            summary: $summary,
            complexity: "Depends on subcommand.",
            handler: Handler::Server,
            subcommands: $subs,
        }
    };
}

#[allow(unused_imports)] // used by the data-type groups' tables
pub(crate) use {container, spec};

use Handler::{Keyspace as K, Server as S};

/// The core commands (connection, server, keys, strings, bitmaps), sorted by name. Each
/// data-type group declares its own table next to its handlers; [`GROUPS`] lists them all.
static CORE: &[CommandSpec] = &[
    spec!("append", 3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@string", "@fast"], "string", "2.0.0", K(handlers::strings::append), "Appends a string to the value of a key. Creates the key if it doesn't exist.", "O(1)."),
    spec!("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY, NO_KEYS, ["@fast", "@connection"], "connection", "1.0.0", S, "Authenticates the connection.", "O(N) where N is the number of passwords defined for the user"),
    spec!("bgrewriteaof", 1, ADMIN | NOSCRIPT, NO_KEYS, ["@admin", "@slow", "@dangerous"], "server", "1.0.0", S, "Asynchronously rewrites the append-only file to disk.", "O(1)"),
    spec!("bgsave", -1, ADMIN | NOSCRIPT, NO_KEYS, ["@admin", "@slow", "@dangerous"], "server", "1.0.0", S, "Asynchronously saves the database(s) to disk.", "O(1)"),
    spec!("bitcount", -2, READONLY, KEY1, ["@read", "@bitmap", "@slow"], "bitmap", "2.6.0", K(handlers::bitmaps::bitcount), "Counts the number of set bits (population counting) in a string.", "O(N)"),
    spec!("bitfield", -2, WRITE | DENYOOM, KEY1, ["@write", "@bitmap", "@slow"], "bitmap", "3.2.0", K(handlers::bitmaps::bitfield), "Performs arbitrary bitfield integer operations on strings.", "O(1) for each subcommand specified"),
    spec!("bitfield_ro", -2, READONLY | FAST, KEY1, ["@read", "@bitmap", "@fast"], "bitmap", "6.0.0", K(handlers::bitmaps::bitfield_ro), "Performs arbitrary read-only bitfield integer operations on strings.", "O(1) for each subcommand specified"),
    spec!("bitop", -4, WRITE | DENYOOM, KEYS_FROM_2, ["@write", "@bitmap", "@slow"], "bitmap", "2.6.0", K(handlers::bitmaps::bitop), "Performs bitwise operations on multiple strings, and stores the result.", "O(N)"),
    spec!("bitpos", -3, READONLY, KEY1, ["@read", "@bitmap", "@slow"], "bitmap", "2.8.7", K(handlers::bitmaps::bitpos), "Finds the first set (1) or clear (0) bit in a string.", "O(N)"),
    container!("client", ["@slow"], "connection", "2.4.0", "A container for client connection commands.", CLIENT_SUBCOMMANDS),
    container!("command", ["@slow", "@connection"], "server", "2.8.13", "Returns detailed information about all commands.", COMMAND_SUBCOMMANDS),
    container!("config", ["@slow"], "server", "2.0.0", "A container for server configuration commands.", CONFIG_SUBCOMMANDS),
    spec!("copy", -3, WRITE | DENYOOM, KEYS_1_2, ["@keyspace", "@write", "@slow"], "generic", "6.2.0", K(handlers::keys::copy), "Copies the value of a key to a new key.", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values."),
    spec!("dbsize", 1, READONLY | FAST | ALL_SHARDS, NO_KEYS, ["@keyspace", "@read", "@fast"], "server", "1.0.0", K(handlers::keys::dbsize), "Returns the number of keys in the database.", "O(1)"),
    spec!("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@admin", "@slow", "@dangerous"], "server", "1.0.0", S, "A container for debugging commands.", "Depends on subcommand."),
    spec!("decr", 2, WRITE | DENYOOM | FAST, KEY1, ["@write", "@string", "@fast"], "string", "1.0.0", K(handlers::strings::decr), "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "O(1)"),
    spec!("decrby", 3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@string", "@fast"], "string", "1.0.0", K(handlers::strings::decrby), "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "O(1)"),
    spec!("del", -2, WRITE, KEYS_ALL, ["@keyspace", "@write", "@slow"], "generic", "1.0.0", K(handlers::keys::del), "Deletes one or more keys.", "O(N) where N is the number of keys that will be removed."),
    spec!("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NO_KEYS, ["@fast", "@transaction"], "transactions", "2.0.0", S, "Discards a transaction.", "O(N), when N is the number of queued commands"),
    spec!("dump", 2, READONLY, KEY1, ["@keyspace", "@read", "@slow"], "generic", "2.6.0", K(handlers::dump::dump), "Returns a serialized representation of the value stored at a key.", "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1)."),
    spec!("echo", 2, FAST, NO_KEYS, ["@fast", "@connection"], "connection", "1.0.0", S, "Returns the given string.", "O(1)"),
    spec!("eval", -3, NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE | MOVABLEKEYS, NUMKEYS_AT_2, ["@slow", "@scripting"], "scripting", "2.6.0", S, "Executes a server-side Lua script.", "Depends on the script that is executed."),
    spec!("eval_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY | MOVABLEKEYS, NUMKEYS_AT_2, ["@read", "@slow", "@scripting"], "scripting", "7.0.0", S, "Executes a read-only server-side Lua script.", "Depends on the script that is executed."),
    spec!("evalsha", -3, NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE | MOVABLEKEYS, NUMKEYS_AT_2, ["@slow", "@scripting"], "scripting", "2.6.0", S, "Executes a server-side Lua script by SHA1 digest.", "Depends on the script that is executed."),
    spec!("evalsha_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY | MOVABLEKEYS, NUMKEYS_AT_2, ["@read", "@slow", "@scripting"], "scripting", "7.0.0", S, "Executes a read-only server-side Lua script by SHA1 digest.", "Depends on the script that is executed."),
    spec!("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG, NO_KEYS, ["@slow", "@transaction"], "transactions", "1.2.0", S, "Executes all commands in a transaction.", "Depends on commands in the transaction"),
    spec!("exists", -2, READONLY | FAST, KEYS_ALL, ["@keyspace", "@read", "@fast"], "generic", "1.0.0", K(handlers::keys::exists), "Determines whether one or more keys exist.", "O(N) where N is the number of keys to check."),
    spec!("expire", -3, WRITE | FAST, KEY1, ["@keyspace", "@write", "@fast"], "generic", "1.0.0", K(handlers::expire::expire), "Sets the expiration time of a key in seconds.", "O(1)"),
    spec!("expireat", -3, WRITE | FAST, KEY1, ["@keyspace", "@write", "@fast"], "generic", "1.2.0", K(handlers::expire::expireat), "Sets the expiration time of a key to a Unix timestamp.", "O(1)"),
    spec!("expiretime", 2, READONLY | FAST, KEY1, ["@keyspace", "@read", "@fast"], "generic", "7.0.0", K(handlers::expire::expiretime), "Returns the expiration time of a key as a Unix timestamp.", "O(1)"),
    spec!("fcall", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | MOVABLEKEYS, NUMKEYS_AT_2, ["@slow", "@scripting"], "scripting", "7.0.0", S, "Invokes a function.", "Depends on the function that is executed."),
    spec!("fcall_ro", -3, NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY | MOVABLEKEYS, NUMKEYS_AT_2, ["@slow", "@scripting"], "scripting", "7.0.0", S, "Invokes a read-only function.", "Depends on the function that is executed."),
    spec!("flushall", -1, WRITE | ALL_SHARDS, NO_KEYS, ["@keyspace", "@write", "@slow", "@dangerous"], "server", "1.0.0", K(handlers::keys::flushall), "Removes all keys from all databases.", "O(N) where N is the total number of keys in all databases"),
    spec!("flushdb", -1, WRITE | ALL_SHARDS, NO_KEYS, ["@keyspace", "@write", "@slow", "@dangerous"], "server", "1.0.0", K(handlers::keys::flushdb), "Remove all keys from the current database.", "O(N) where N is the number of keys in the selected database"),
    container!("function", ["@slow"], "scripting", "7.0.0", "A container for function commands.", FUNCTION_SUBCOMMANDS),
    spec!("get", 2, READONLY | FAST, KEY1, ["@read", "@string", "@fast"], "string", "1.0.0", K(handlers::strings::get), "Returns the string value of a key.", "O(1)"),
    spec!("getbit", 3, READONLY | FAST, KEY1, ["@read", "@bitmap", "@fast"], "bitmap", "2.2.0", K(handlers::bitmaps::getbit), "Returns a bit value by offset.", "O(1)"),
    spec!("getdel", 2, WRITE | FAST, KEY1, ["@write", "@string", "@fast"], "string", "6.2.0", K(handlers::strings::getdel), "Returns the string value of a key after deleting the key.", "O(1)"),
    spec!("getex", -2, WRITE | FAST, KEY1, ["@write", "@string", "@fast"], "string", "6.2.0", K(handlers::strings::getex), "Returns the string value of a key after setting its expiration time.", "O(1)"),
    spec!("getrange", 4, READONLY, KEY1, ["@read", "@string", "@slow"], "string", "2.4.0", K(handlers::strings::getrange), "Returns a substring of the string stored at a key.", "O(N) where N is the length of the returned string."),
    spec!("getset", 3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@string", "@fast"], "string", "1.0.0", K(handlers::strings::getset), "Returns the previous string value of a key after setting it to a new value.", "O(1)"),
    spec!("hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY, NO_KEYS, ["@fast", "@connection"], "connection", "6.0.0", S, "Handshakes with the Redis server.", "O(1)"),
    spec!("incr", 2, WRITE | DENYOOM | FAST, KEY1, ["@write", "@string", "@fast"], "string", "1.0.0", K(handlers::strings::incr), "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "O(1)"),
    spec!("incrby", 3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@string", "@fast"], "string", "1.0.0", K(handlers::strings::incrby), "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "O(1)"),
    spec!("incrbyfloat", 3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@string", "@fast"], "string", "2.6.0", K(handlers::strings::incrbyfloat), "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "O(1)"),
    spec!("info", -1, LOADING | STALE | SENTINEL, NO_KEYS, ["@slow", "@dangerous"], "server", "1.0.0", S, "Returns information and statistics about the server.", "O(1)"),
    spec!("keys", 2, READONLY | ALL_SHARDS, NO_KEYS, ["@keyspace", "@read", "@slow", "@dangerous"], "generic", "1.0.0", K(handlers::keys::keys), "Returns all key names that match a pattern.", "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length."),
    spec!("lastsave", 1, LOADING | STALE | FAST, NO_KEYS, ["@admin", "@fast", "@dangerous"], "server", "1.0.0", S, "Returns the Unix timestamp of the last successful save to disk.", "O(1)"),
    spec!("lcs", -3, READONLY, KEYS_1_2, ["@read", "@string", "@slow"], "string", "7.0.0", K(handlers::strings::lcs), "Finds the longest common substring.", "O(N*M) where N and M are the lengths of s1 and s2, respectively"),
    container!("memory", ["@slow"], "server", "4.0.0", "A container for memory diagnostics commands.", MEMORY_SUBCOMMANDS),
    spec!("mget", -2, READONLY | FAST, KEYS_ALL, ["@read", "@string", "@fast"], "string", "1.0.0", K(handlers::strings::mget), "Atomically returns the string values of one or more keys.", "O(N) where N is the number of keys to retrieve."),
    spec!("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@admin", "@slow", "@dangerous"], "server", "1.0.0", S, "Listens for all requests received by the server in real-time.", ""),
    spec!("move", 3, WRITE | FAST, KEY1, ["@keyspace", "@write", "@fast"], "generic", "1.0.0", K(handlers::keys::move_), "Moves a key to another database.", "O(1)"),
    spec!("mset", -3, WRITE | DENYOOM, KEYS_PAIRS, ["@write", "@string", "@slow"], "string", "1.0.1", K(handlers::strings::mset), "Atomically creates or modifies the string values of one or more keys.", "O(N) where N is the number of keys to set."),
    spec!("msetnx", -3, WRITE | DENYOOM, KEYS_PAIRS, ["@write", "@string", "@slow"], "string", "1.0.1", K(handlers::strings::msetnx), "Atomically modifies the string values of one or more keys only when all keys don't exist.", "O(N) where N is the number of keys to set."),
    spec!("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NO_KEYS, ["@fast", "@transaction"], "transactions", "1.2.0", S, "Starts a transaction.", "O(1)"),
    spec!("namespace", -2, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@admin", "@slow", "@dangerous"], "server", "7.2.4", S, "Lists, inspects, creates, changes and removes namespaces (Redoubt: key patterns with their own memory reserve, limit and eviction policy).", "O(N) where N is the number of namespaces; SET and DEL recount the keyspace."),
    container!("object", ["@slow"], "generic", "2.2.3", "A container for object introspection commands.", OBJECT_SUBCOMMANDS),
    spec!("persist", 2, WRITE | FAST, KEY1, ["@keyspace", "@write", "@fast"], "generic", "2.2.0", K(handlers::expire::persist), "Removes the expiration time of a key.", "O(1)"),
    spec!("pexpire", -3, WRITE | FAST, KEY1, ["@keyspace", "@write", "@fast"], "generic", "2.6.0", K(handlers::expire::pexpire), "Sets the expiration time of a key in milliseconds.", "O(1)"),
    spec!("pexpireat", -3, WRITE | FAST, KEY1, ["@keyspace", "@write", "@fast"], "generic", "2.6.0", K(handlers::expire::pexpireat), "Sets the expiration time of a key to a Unix milliseconds timestamp.", "O(1)"),
    spec!("pexpiretime", 2, READONLY | FAST, KEY1, ["@keyspace", "@read", "@fast"], "generic", "7.0.0", K(handlers::expire::pexpiretime), "Returns the expiration time of a key as a Unix milliseconds timestamp.", "O(1)"),
    spec!("ping", -1, FAST | SENTINEL, NO_KEYS, ["@fast", "@connection"], "connection", "1.0.0", S, "Returns the server's liveliness response.", "O(1)"),
    spec!("psetex", 4, WRITE | DENYOOM, KEY1, ["@write", "@string", "@slow"], "string", "2.6.0", K(handlers::strings::psetex), "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "O(1)"),
    spec!("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "2.0.0", S, "Listens for messages published to channels that match one or more patterns.", "O(N) where N is the number of patterns to subscribe to."),
    spec!("pttl", 2, READONLY | FAST, KEY1, ["@keyspace", "@read", "@fast"], "generic", "2.6.0", K(handlers::expire::pttl), "Returns the expiration time in milliseconds of a key.", "O(1)"),
    spec!("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, NO_KEYS, ["@pubsub", "@fast"], "pubsub", "2.0.0", S, "Posts a message to a channel.", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client)."),
    container!("pubsub", ["@slow"], "pubsub", "2.8.0", "A container for Pub/Sub commands.", PUBSUB_SUBCOMMANDS),
    spec!("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "2.0.0", S, "Stops listening to messages published to channels that match one or more patterns.", "O(N) where N is the number of patterns to unsubscribe."),
    spec!("quit", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NO_KEYS, ["@fast", "@connection"], "connection", "1.0.0", S, "Closes the connection.", "O(1)"),
    spec!("randomkey", 1, READONLY | ALL_SHARDS, NO_KEYS, ["@keyspace", "@read", "@slow"], "generic", "1.0.0", K(handlers::keys::randomkey), "Returns a random key name from the database.", "O(1)"),
    spec!("rename", 3, WRITE, KEYS_1_2, ["@keyspace", "@write", "@slow"], "generic", "1.0.0", K(handlers::keys::rename), "Renames a key and overwrites the destination.", "O(1)"),
    spec!("renamenx", 3, WRITE | FAST, KEYS_1_2, ["@keyspace", "@write", "@fast"], "generic", "1.0.0", K(handlers::keys::renamenx), "Renames a key only when the target key name doesn't exist.", "O(1)"),
    spec!("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY, NO_KEYS, ["@fast", "@connection"], "connection", "6.2.0", S, "Resets the connection.", "O(1)"),
    spec!("restore", -4, WRITE | DENYOOM, KEY1, ["@keyspace", "@write", "@slow", "@dangerous"], "generic", "2.6.0", K(handlers::dump::restore), "Creates a key from the serialized representation of a value.", "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N))."),
    spec!("save", 1, ADMIN | NOSCRIPT | NO_MULTI, NO_KEYS, ["@admin", "@slow", "@dangerous"], "server", "1.0.0", S, "Synchronously saves the database(s) to disk.", "O(N) where N is the total number of keys in all databases"),
    spec!("scan", -2, READONLY | ALL_SHARDS, NO_KEYS, ["@keyspace", "@read", "@slow"], "generic", "2.8.0", K(handlers::keys::scan), "Iterates over the key names in the database.", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."),
    container!("script", ["@slow"], "scripting", "2.6.0", "A container for Lua scripts management commands.", SCRIPT_SUBCOMMANDS),
    spec!("select", 2, LOADING | STALE | FAST, NO_KEYS, ["@fast", "@connection"], "connection", "1.0.0", S, "Changes the selected database.", "O(1)"),
    spec!("set", -3, WRITE | DENYOOM, KEY1, ["@write", "@string", "@slow"], "string", "1.0.0", K(handlers::strings::set), "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "O(1)"),
    spec!("setbit", 4, WRITE | DENYOOM, KEY1, ["@write", "@bitmap", "@slow"], "bitmap", "2.2.0", K(handlers::bitmaps::setbit), "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", "O(1)"),
    spec!("setex", 4, WRITE | DENYOOM, KEY1, ["@write", "@string", "@slow"], "string", "2.0.0", K(handlers::strings::setex), "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "O(1)"),
    spec!("setnx", 3, WRITE | DENYOOM | FAST, KEY1, ["@write", "@string", "@fast"], "string", "1.0.0", K(handlers::strings::setnx), "Set the string value of a key only when the key doesn't exist.", "O(1)"),
    spec!("setrange", 4, WRITE | DENYOOM, KEY1, ["@write", "@string", "@slow"], "string", "2.2.0", K(handlers::strings::setrange), "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument."),
    spec!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SENTINEL | ALLOW_BUSY, NO_KEYS, ["@admin", "@slow", "@dangerous"], "server", "1.0.0", S, "Synchronously saves the database(s) to disk and shuts down the Redis server.", "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)"),
    container!("slowlog", ["@slow"], "server", "2.2.12", "A container for slow log commands.", SLOWLOG_SUBCOMMANDS),
    spec!("spublish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, NO_KEYS, ["@pubsub", "@fast"], "pubsub", "7.0.0", S, "Post a message to a shard channel", "O(N) where N is the number of clients subscribed to the receiving shard channel."),
    spec!("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "7.0.0", S, "Listens for messages published to shard channels.", "O(N) where N is the number of shard channels to subscribe to."),
    spec!("strlen", 2, READONLY | FAST, KEY1, ["@read", "@string", "@fast"], "string", "2.2.0", K(handlers::strings::strlen), "Returns the length of a string value.", "O(1)"),
    spec!("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "2.0.0", S, "Listens for messages published to channels.", "O(N) where N is the number of channels to subscribe to."),
    spec!("substr", 4, READONLY, KEY1, ["@read", "@string", "@slow"], "string", "1.0.0", K(handlers::strings::getrange), "Returns a substring from a string value.", "O(N) where N is the length of the returned string."),
    spec!("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "7.0.0", S, "Stops listening to messages posted to shard channels.", "O(N) where N is the number of shard channels to unsubscribe."),
    spec!("swapdb", 3, WRITE | FAST | ALL_SHARDS, NO_KEYS, ["@keyspace", "@write", "@fast", "@dangerous"], "server", "4.0.0", K(handlers::keys::swapdb), "Swaps two Redis databases.", "O(N) where N is the count of clients watching or blocking on keys from both databases."),
    spec!("time", 1, LOADING | STALE | FAST, NO_KEYS, ["@fast"], "server", "2.6.0", S, "Returns the server time.", "O(1)"),
    spec!("touch", -2, READONLY | FAST, KEYS_ALL, ["@keyspace", "@read", "@fast"], "generic", "3.2.1", K(handlers::keys::touch), "Returns the number of existing keys out of those specified after updating the time they were last accessed.", "O(N) where N is the number of keys that will be touched."),
    spec!("ttl", 2, READONLY | FAST, KEY1, ["@keyspace", "@read", "@fast"], "generic", "1.0.0", K(handlers::expire::ttl), "Returns the expiration time in seconds of a key.", "O(1)"),
    spec!("type", 2, READONLY | FAST, KEY1, ["@keyspace", "@read", "@fast"], "generic", "1.0.0", K(handlers::keys::type_), "Determines the type of value stored at a key.", "O(1)"),
    spec!("unlink", -2, WRITE | FAST, KEYS_ALL, ["@keyspace", "@write", "@fast"], "generic", "4.0.0", K(handlers::keys::del), "Asynchronously deletes one or more keys.", "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of."),
    spec!("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "2.0.0", S, "Stops listening to messages posted to channels.", "O(N) where N is the number of channels to unsubscribe."),
    spec!("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, NO_KEYS, ["@fast", "@transaction"], "transactions", "2.2.0", S, "Forgets about watched keys of a transaction.", "O(1)"),
    spec!("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY, KEYS_ALL, ["@fast", "@transaction"], "transactions", "2.2.0", S, "Monitors changes to keys to determine the execution of a transaction.", "O(1) for every key."),
];

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "getname",
        2,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "connection",
        "2.6.9",
        S,
        "Returns the name of the connection.",
        "O(1)"
    ),
    spec!(
        "help",
        2,
        LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "connection",
        "5.0.0",
        S,
        "Returns helpful text about the different subcommands.",
        "O(1)"
    ),
    spec!(
        "id",
        2,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "connection",
        "5.0.0",
        S,
        "Returns the unique client ID of the connection.",
        "O(1)"
    ),
    spec!(
        "info",
        2,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "connection",
        "6.2.0",
        S,
        "Returns information about the connection.",
        "O(1)"
    ),
    spec!(
        "kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous", "@connection"],
        "connection",
        "2.4.0",
        S,
        "Terminates open connections.",
        "O(N) where N is the number of client connections"
    ),
    spec!(
        "list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous", "@connection"],
        "connection",
        "2.4.0",
        S,
        "Lists open connections.",
        "O(N) where N is the number of client connections"
    ),
    spec!(
        "no-evict",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous", "@connection"],
        "connection",
        "7.0.0",
        S,
        "Sets the client eviction mode of the connection.",
        "O(1)"
    ),
    spec!(
        "no-touch",
        3,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "connection",
        "7.2.0",
        S,
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
        "O(1)"
    ),
    spec!(
        "pause",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous", "@connection"],
        "connection",
        "3.0.0",
        S,
        "Suspends commands processing.",
        "O(1)"
    ),
    spec!(
        "reply",
        3,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "connection",
        "3.2.0",
        S,
        "Instructs the server whether to reply to commands.",
        "O(1)"
    ),
    spec!(
        "setinfo",
        4,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "connection",
        "7.2.0",
        S,
        "Sets information specific to the client or connection.",
        "O(1)"
    ),
    spec!(
        "setname",
        3,
        NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "connection",
        "2.6.9",
        S,
        "Sets the connection name.",
        "O(1)"
    ),
    spec!(
        "unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous", "@connection"],
        "connection",
        "5.0.0",
        S,
        "Unblocks a client blocked by a blocking command from a different connection.",
        "O(log N) where N is the number of client connections"
    ),
    spec!(
        "unpause",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous", "@connection"],
        "connection",
        "6.2.0",
        S,
        "Resumes processing commands from paused clients.",
        "O(N) Where N is the number of paused clients"
    ),
];

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "count",
        2,
        LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "server",
        "2.8.13",
        S,
        "Returns a count of commands.",
        "O(1)"
    ),
    spec!(
        "docs",
        -2,
        LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "server",
        "7.0.0",
        S,
        "Returns documentary information about one, multiple or all commands.",
        "O(N) where N is the number of commands to look up"
    ),
    spec!(
        "getkeys",
        -4,
        LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "server",
        "2.8.13",
        S,
        "Extracts the key names from an arbitrary command.",
        "O(N) where N is the number of arguments to the command"
    ),
    spec!(
        "help",
        2,
        LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "server",
        "5.0.0",
        S,
        "Returns helpful text about the different subcommands.",
        "O(1)"
    ),
    spec!(
        "info",
        -2,
        LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "server",
        "2.8.13",
        S,
        "Returns information about one, multiple or all commands.",
        "O(N) where N is the number of commands to look up"
    ),
    spec!(
        "list",
        -2,
        LOADING | STALE,
        NO_KEYS,
        ["@slow", "@connection"],
        "server",
        "7.0.0",
        S,
        "Returns a list of command names.",
        "O(N) where N is the total number of Redis commands"
    ),
];

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous"],
        "server",
        "2.0.0",
        S,
        "Returns the effective values of configuration parameters.",
        "O(N) when N is the number of configuration parameters provided"
    ),
    spec!(
        "help",
        2,
        LOADING | STALE,
        NO_KEYS,
        ["@slow"],
        "server",
        "5.0.0",
        S,
        "Returns helpful text about the different subcommands.",
        "O(1)"
    ),
    spec!(
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous"],
        "server",
        "2.0.0",
        S,
        "Resets the server's statistics.",
        "O(1)"
    ),
    spec!(
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous"],
        "server",
        "2.8.0",
        S,
        "Persists the effective configuration to file.",
        "O(1)"
    ),
    spec!(
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous"],
        "server",
        "2.0.0",
        S,
        "Sets configuration parameters in-flight.",
        "O(N) when N is the number of configuration parameters provided"
    ),
];

#[rustfmt::skip]
static FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("delete", 3, WRITE | NOSCRIPT, NO_KEYS, ["@write", "@slow", "@scripting"], "scripting", "7.0.0", S, "Deletes a library and its functions.", "O(1)"),
    spec!("dump", 2, NOSCRIPT, NO_KEYS, ["@slow", "@scripting"], "scripting", "7.0.0", S, "Dumps all libraries into a serialized binary payload.", "O(N) where N is the number of functions"),
    spec!("flush", -2, WRITE | NOSCRIPT, NO_KEYS, ["@write", "@slow", "@scripting"], "scripting", "7.0.0", S, "Deletes all libraries and functions.", "O(N) where N is the number of functions deleted"),
    spec!("help", 2, LOADING | STALE, NO_KEYS, ["@slow", "@scripting"], "scripting", "7.0.0", S, "Returns helpful text about the different subcommands.", "O(1)"),
    spec!("kill", 2, NOSCRIPT | ALLOW_BUSY, NO_KEYS, ["@slow", "@scripting"], "scripting", "7.0.0", S, "Terminates a function during execution.", "O(1)"),
    spec!("list", -2, NOSCRIPT, NO_KEYS, ["@slow", "@scripting"], "scripting", "7.0.0", S, "Returns information about all libraries.", "O(N) where N is the number of functions"),
    spec!("load", -3, WRITE | DENYOOM | NOSCRIPT, NO_KEYS, ["@write", "@slow", "@scripting"], "scripting", "7.0.0", S, "Creates a library.", "O(1) (considering compilation time is redundant)"),
    spec!("restore", -3, WRITE | DENYOOM | NOSCRIPT, NO_KEYS, ["@write", "@slow", "@scripting"], "scripting", "7.0.0", S, "Restores all libraries from a payload.", "O(N) where N is the number of functions on the payload"),
    spec!("stats", 2, NOSCRIPT | ALLOW_BUSY, NO_KEYS, ["@slow", "@scripting"], "scripting", "7.0.0", S, "Returns information about a function during execution.", "O(1)"),
];

#[rustfmt::skip]
static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("exists", -3, NOSCRIPT, NO_KEYS, ["@slow", "@scripting"], "scripting", "2.6.0", S, "Determines whether server-side Lua scripts exist in the script cache.", "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation)."),
    spec!("flush", -2, NOSCRIPT, NO_KEYS, ["@slow", "@scripting"], "scripting", "2.6.0", S, "Removes all server-side Lua scripts from the script cache.", "O(N) with N being the number of scripts in cache"),
    spec!("help", 2, LOADING | STALE, NO_KEYS, ["@slow", "@scripting"], "scripting", "5.0.0", S, "Returns helpful text about the different subcommands.", "O(1)"),
    spec!("kill", 2, NOSCRIPT | ALLOW_BUSY, NO_KEYS, ["@slow", "@scripting"], "scripting", "2.6.0", S, "Terminates a server-side Lua script during execution.", "O(1)"),
    spec!("load", 3, NOSCRIPT | STALE, NO_KEYS, ["@slow", "@scripting"], "scripting", "2.6.0", S, "Loads a server-side Lua script to the script cache.", "O(N) with N being the length in bytes of the script body."),
];

#[rustfmt::skip]
static MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("doctor", 2, 0, NO_KEYS, ["@slow"], "server", "4.0.0", S, "Outputs a memory problems report.", "O(1)"),
    spec!("help", 2, LOADING | STALE, NO_KEYS, ["@slow"], "server", "4.0.0", S, "Returns helpful text about the different subcommands.", "O(1)"),
    spec!("malloc-stats", 2, 0, NO_KEYS, ["@slow"], "server", "4.0.0", S, "Returns the allocator statistics.", "Depends on how much memory is allocated, could be slow"),
    spec!("mrc", -2, 0, NO_KEYS, ["@slow"], "server", "7.2.4", S, "Returns the miss-ratio curve (Redoubt: hit ratio at 0.25x to 4x the memory in use).", "O(1)"),
    spec!("patterns", -2, 0, NO_KEYS, ["@slow"], "server", "7.2.4", S, "Returns the key patterns that grow (Redoubt's growth finder).", "O(1)"),
    spec!("purge", 2, 0, NO_KEYS, ["@slow"], "server", "4.0.0", S, "Asks the allocator to release memory.", "Depends on how much memory is allocated, could be slow"),
    spec!("stats", 2, 0, NO_KEYS, ["@slow"], "server", "4.0.0", S, "Returns details about memory usage.", "O(1)"),
    spec!("usage", -3, READONLY, KEY2, ["@read", "@slow"], "server", "4.0.0", K(handlers::keys::memory_usage), "Estimates the memory usage of a key.", "O(N) where N is the number of samples."),
];

static OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "encoding",
        3,
        READONLY,
        KEYS_FROM_2,
        ["@keyspace", "@read", "@slow"],
        "generic",
        "2.2.3",
        K(handlers::keys::object_encoding),
        "Returns the internal encoding of a Redis object.",
        "O(1)"
    ),
    spec!(
        "freq",
        3,
        READONLY,
        KEYS_FROM_2,
        ["@keyspace", "@read", "@slow"],
        "generic",
        "4.0.0",
        K(handlers::keys::object_freq),
        "Returns the logarithmic access frequency counter of a Redis object.",
        "O(1)"
    ),
    spec!(
        "help",
        2,
        LOADING | STALE,
        NO_KEYS,
        ["@keyspace", "@slow"],
        "generic",
        "6.2.0",
        K(handlers::keys::object_help),
        "Returns helpful text about the different subcommands.",
        "O(1)"
    ),
    spec!(
        "idletime",
        3,
        READONLY,
        KEYS_FROM_2,
        ["@keyspace", "@read", "@slow"],
        "generic",
        "2.2.3",
        K(handlers::keys::object_idletime),
        "Returns the time since the last access to a Redis object.",
        "O(1)"
    ),
    spec!(
        "refcount",
        3,
        READONLY,
        KEYS_FROM_2,
        ["@keyspace", "@read", "@slow"],
        "generic",
        "2.2.3",
        K(handlers::keys::object_refcount),
        "Returns the reference count of a value of a key.",
        "O(1)"
    ),
];

static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("channels", -2, PUBSUB | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "2.8.0", S, "Returns the active channels.", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)"),
    spec!("help", 2, LOADING | STALE, NO_KEYS, ["@slow"], "pubsub", "6.2.0", S, "Returns helpful text about the different subcommands.", "O(1)"),
    spec!("numpat", 2, PUBSUB | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "2.8.0", S, "Returns a count of unique pattern subscriptions.", "O(1)"),
    spec!("numsub", -2, PUBSUB | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "2.8.0", S, "Returns a count of subscribers to channels.", "O(N) for the NUMSUB subcommand, where N is the number of requested channels"),
    spec!("shardchannels", -2, PUBSUB | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "7.0.0", S, "Returns the active shard channels.", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels)."),
    spec!("shardnumsub", -2, PUBSUB | LOADING | STALE, NO_KEYS, ["@pubsub", "@slow"], "pubsub", "7.0.0", S, "Returns the count of subscribers of shard channels.", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels"),
];

static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    spec!(
        "get",
        -2,
        ADMIN | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous"],
        "server",
        "2.2.12",
        S,
        "Returns the slow log's entries.",
        "O(N) where N is the number of entries returned"
    ),
    spec!(
        "help",
        2,
        LOADING | STALE,
        NO_KEYS,
        ["@slow"],
        "server",
        "6.2.0",
        S,
        "Show helpful text about the different subcommands",
        "O(1)"
    ),
    spec!(
        "len",
        2,
        ADMIN | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous"],
        "server",
        "2.2.12",
        S,
        "Returns the number of entries in the slow log.",
        "O(1)"
    ),
    spec!(
        "reset",
        2,
        ADMIN | LOADING | STALE,
        NO_KEYS,
        ["@admin", "@slow", "@dangerous"],
        "server",
        "2.2.12",
        S,
        "Clears all entries from the slow log.",
        "O(N) where N is the number of entries in the slowlog"
    ),
];

/// Every command table: the core one and one per data-type group.
pub static GROUPS: &[&[CommandSpec]] = &[
    CORE,
    crate::handlers::lists::COMMANDS,
    crate::handlers::hashes::COMMANDS,
    crate::handlers::sets::COMMANDS,
    crate::handlers::zsets::COMMANDS,
    crate::handlers::streams::COMMANDS,
];

/// Every top-level command.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    GROUPS.iter().flat_map(|g| g.iter())
}

/// Finds a top-level command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<&'static [u8], &'static CommandSpec, NameHash>> =
        std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| all().map(|c| (c.name.as_bytes(), c)).collect());
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    index.get(&*lower).copied()
}

/// FNV-1a for command names: a handful of bytes, hashed in a few instructions (the table is
/// static and not attacker-controlled, so no random seed is needed).
#[derive(Default, Clone, Copy)]
struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type NameHash = std::hash::BuildHasherDefault<NameHasher>;

/// Finds a subcommand of a container command, ignoring ASCII case.
pub fn lookup_sub(parent: &CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    find_in(parent.subcommands, name)
}

fn find_in(table: &'static [CommandSpec], name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table.binary_search_by(|c| c.name.as_bytes().cmp(lower)).ok().map(|i| &table[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for t in
            [CORE, CLIENT_SUBCOMMANDS, COMMAND_SUBCOMMANDS, CONFIG_SUBCOMMANDS, OBJECT_SUBCOMMANDS, SLOWLOG_SUBCOMMANDS]
        {
            for w in t.windows(2) {
                assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
            }
        }
    }

    #[test]
    fn names_are_unique_across_groups() {
        let mut names: Vec<&str> = all().map(|c| c.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a command is declared twice");
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup(b"GeT").unwrap().name, "get");
        assert!(lookup(b"nope").is_none());
        let client = lookup(b"CLIENT").unwrap();
        assert_eq!(lookup_sub(client, b"List").unwrap().name, "list");
    }

    #[test]
    fn key_positions() {
        let argv = 5;
        assert_eq!(lookup(b"mset").unwrap().key_indexes(argv).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(lookup(b"del").unwrap().key_indexes(argv).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(lookup(b"get").unwrap().key_indexes(2).collect::<Vec<_>>(), vec![1]);
        assert_eq!(lookup(b"ping").unwrap().key_indexes(2).count(), 0);
        assert_eq!(lookup(b"bitop").unwrap().key_indexes(5).collect::<Vec<_>>(), vec![2, 3, 4]);
        let lmpop = lookup(b"lmpop").unwrap();
        assert_eq!(lmpop.keys_of(&[b"lmpop", b"2", b"a", b"b", b"LEFT"]), vec![2, 3]);
        assert_eq!(lmpop.keys_of(&[b"lmpop", b"9", b"a", b"LEFT"]), Vec::<usize>::new());
    }
}
