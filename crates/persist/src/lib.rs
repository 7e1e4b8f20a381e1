//! Persistence: point-in-time snapshots written without fork, and loading RDB files (our own
//! snapshots or a Redis `dump.rdb`), all through the [`disk::Disk`] storage trait so tests can
//! inject faults.
//!
//! Where things live:
//! * [`aof`]: the append-only log's files, reader and writer thread;
//! * [`disk`]: the storage trait, the real filesystem and the fault-injecting backend;
//! * [`snapshot`]: writing a snapshot while clients keep writing;
//! * [`load`]: reading an RDB file into the keyspace at startup;
//! * [`sched`]: the snapshot writer's CPU priority.
//!
//! The file format is Redis's RDB (version 11, or 10 with `rdb-version 10`), so a snapshot
//! loads into Redis and a Redis `dump.rdb` loads here; `docs/persistence-format.md` describes
//! it and the auxiliary fields Redoubt adds.

pub mod aof;
pub mod disk;
pub mod load;
pub mod sched;
pub mod snapshot;
