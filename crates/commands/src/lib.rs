//! The command layer: the command table (name, arity, flags, key positions), each command's
//! argument parser, and the handlers that run parsed commands against the keyspace.
//!
//! A keyspace handler gets a [`Ctx`] (arguments, selected database, the command's frozen
//! clock, the reply buffer) and a [`store::View`] holding the shards of the keys the table
//! declares. It either writes one complete reply and returns `Ok`, or writes nothing and
//! returns the error to send.

pub mod args;
pub mod bits;
pub mod error;
pub mod handlers;
pub mod lcs;
pub mod notify;
pub mod numfmt;
pub mod serial;
pub mod table;

use resp::ReplyBuf;
use store::View;

pub use error::{CmdError, CmdResult};
pub use table::{lookup, lookup_sub, CommandSpec};

/// Settings a handler may need; copied from the server configuration for each command.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// `proto-max-bulk-len`: the largest string a command may create.
    pub proto_max_bulk_len: i64,
    /// `maxmemory-policy` is an LFU policy (OBJECT FREQ is allowed, IDLETIME is not).
    pub lfu: bool,
    /// How access clocks are kept (LRU, or LFU with `lfu-log-factor` / `lfu-decay-time`).
    pub access: store::access::Mode,
    /// `maxmemory-policy` is LRU or LFU (small integers are then not shared objects).
    pub evicts_by_access: bool,
    /// `list-max-listpack-size`: positive = entries per node, negative = node size class
    /// (-1 = 4 KiB ... -5 = 64 KiB).
    pub list_max_listpack_size: i64,
    /// `hash-max-listpack-entries` / `hash-max-listpack-value`.
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    /// `set-max-intset-entries`, `set-max-listpack-entries` / `set-max-listpack-value`.
    pub set_max_intset_entries: usize,
    pub set_max_listpack_entries: usize,
    pub set_max_listpack_value: usize,
    /// `zset-max-listpack-entries` / `zset-max-listpack-value`.
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// `stream-node-max-bytes` / `stream-node-max-entries` (0 = no limit).
    pub stream_node_max_bytes: usize,
    pub stream_node_max_entries: u64,
    /// `notify-keyspace-events` as flags (see [`notify`]).
    pub notify_flags: u32,
    /// `rdb-version`: the RDB version DUMP payloads and snapshots are written for (11 is
    /// Redis 7.2's; 10 writes only what Redis 7.0 reads).
    pub rdb_version: u16,
    /// `rdbcompression`: LZF for long strings in snapshots and DUMP payloads.
    pub rdb_compression: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            proto_max_bulk_len: 512 * 1024 * 1024,
            lfu: false,
            access: store::access::Mode::Lru,
            evicts_by_access: false,
            list_max_listpack_size: -2,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
            notify_flags: 0,
            rdb_version: 11,
            rdb_compression: true,
        }
    }
}

/// Everything a keyspace handler sees besides the keyspace.
pub struct Ctx<'a> {
    /// The arguments, starting with the command name.
    pub argv: &'a [&'a [u8]],
    /// The selected database.
    pub db: usize,
    /// The command's clock in unix milliseconds: fixed for one command (and a whole
    /// transaction), so every key it touches expires consistently.
    pub now: i64,
    pub out: &'a mut ReplyBuf,
    pub settings: &'a Settings,
    /// Keyspace changes made by this command (the server's dirty counter).
    pub dirty: u64,
    /// Keyspace events to publish after the command (only collected when enabled).
    pub events: Vec<notify::Event>,
    /// Whether a blocking command may block (false inside MULTI/EXEC, where it behaves as
    /// its non-blocking form with a null reply).
    pub may_block: bool,
    /// Whether the command runs from a script (`redis.call`).
    pub in_script: bool,
    /// Set by a blocking command that found nothing to pop: the client waits for these keys.
    pub block: Option<Block>,
    /// Keys that received elements a blocked client may be waiting for (list pushes).
    pub ready: Vec<Vec<u8>>,
    /// Whether this run serves a client that blocked earlier (a key it waits on changed).
    pub rerun: bool,
    /// What the append-only log (and a replica) should run to repeat this command's effect,
    /// when that is not the command itself (a random pick made explicit); `None` means the
    /// command as sent, or as the server's log layer rewrites it.
    pub log_as: Option<Vec<Vec<Vec<u8>>>>,
}

/// A blocking command's request to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Absolute deadline in unix ms, or `None` to wait forever.
    pub deadline: Option<i64>,
    /// The keys whose arrival of data may serve the command.
    pub keys: Vec<Vec<u8>>,
    /// The command to rerun when a key is ready, if not the one the client sent (XREAD's
    /// `$` resolved to the IDs it meant when it blocked).
    pub rerun: Option<Vec<Vec<u8>>>,
}

/// The command clock of a replay of the append-only log: time stands still before every
/// recorded instant, so nothing expires while the log is replayed (keys expire normally once
/// loading is over) and commands whose effect depends on the clock are logged with absolute
/// times.
pub const REPLAY_NOW: i64 = 0;

impl Ctx<'_> {
    /// Whether this command is replayed from the append-only log (see [`REPLAY_NOW`]).
    pub fn replaying(&self) -> bool {
        self.now == REPLAY_NOW
    }

    /// Records the commands that repeat this command's effect (see [`Ctx::log_as`]).
    pub fn log_as(&mut self, cmds: Vec<Vec<Vec<u8>>>) {
        self.log_as = Some(cmds);
    }

    /// Argument `i` (0 is the command name).
    pub fn arg(&self, i: usize) -> &[u8] {
        self.argv[i]
    }

    /// Reports a keyspace event on `key` in the selected database (Redis's
    /// `notifyKeyspaceEvent`); a no-op unless `notify-keyspace-events` enables `class`.
    pub fn notify(&mut self, class: u32, name: &'static str, key: &[u8]) {
        self.notify_in(self.db, class, name, key);
    }

    /// Like [`Ctx::notify`] for another database (MOVE, COPY ... DB).
    pub fn notify_in(&mut self, db: usize, class: u32, name: &'static str, key: &[u8]) {
        self.take_journal();
        if notify::wanted(self.settings.notify_flags, class) {
            self.events.push(notify::Event { db, name, key: key.to_vec() });
        }
    }

    /// Moves the `new` and `keymiss` events the keyspace recorded so far into
    /// [`Ctx::events`], keeping Redis's order (they happen before the command's own events).
    pub fn take_journal(&mut self) {
        for (db, name, key) in store::journal::drain() {
            self.events.push(notify::Event { db, name, key });
        }
    }

    /// Notes that `key` received data a blocked client may be waiting for.
    pub fn signal_ready(&mut self, key: &[u8]) {
        self.ready.push(key.to_vec());
    }

    /// The command name as the client wrote it, lower-cased (for error texts).
    pub fn name(&self) -> String {
        String::from_utf8_lossy(self.argv[0]).to_ascii_lowercase()
    }
}

/// A keyspace command's code.
pub type KeyspaceFn = fn(&mut Ctx<'_>, &mut View<'_>) -> CmdResult;

/// Which code runs a command.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Runs against the shards of its declared keys (all shards with `ALL_SHARDS`).
    Keyspace(KeyspaceFn),
    /// Runs in the server: connection state, configuration, introspection.
    Server,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handler::Keyspace(_) => f.write_str("Keyspace"),
            Handler::Server => f.write_str("Server"),
        }
    }
}
