//! Writing a snapshot: the whole keyspace at one instant, as an RDB file, without fork and
//! without stopping clients.
//!
//! The keyspace's copy-before-write walk ([`store::snapshot`]) decides what goes in; this
//! module turns entries into RDB records and writes them. Entries the walker visits are
//! encoded under their shard's lock, a few buckets at a time; entries a client is about to
//! change are encoded by that client's thread ([`Sink::preserve`]) and queued. The writer
//! drains both to `temp-<pid>-<n>.rdb`, syncs it and renames it over the target, so a crash
//! or a disk error at any point leaves the previous snapshot untouched.
//!
//! Memory: one walker chunk plus the queue of preserved records, each bounded by what
//! clients change during the snapshot; nothing is copied in bulk.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use store::keyspace::SHARDS;
use store::snapshot::Preserver;
use store::{Entry, Keyspace};

use crate::disk::{Disk, DiskFile};

/// SCAN steps the walker takes per lock: short enough to keep lock holds in the tens of
/// microseconds.
const BUCKETS_PER_STEP: usize = 32;

/// Which access data a snapshot keeps with each key (Redis saves it under LRU and LFU
/// policies only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessData {
    None,
    /// Idle seconds (an LRU policy).
    Idle,
    /// The LFU counter, decayed with this many minutes per step.
    Freq {
        decay_minutes: u32,
    },
}

/// What to write besides the keys.
#[derive(Clone, Debug)]
pub struct Job {
    /// Encoding limits and the RDB version to write.
    pub settings: commands::Settings,
    /// Auxiliary fields written after the header (`redis-ver`, `ctime`, ...).
    pub aux: Vec<(String, String)>,
    /// FUNCTION libraries' code.
    pub functions: Vec<Vec<u8>>,
    pub access: AccessData,
    /// Number of databases (`databases`).
    pub databases: usize,
}

/// Progress of the running snapshot, readable from other threads (INFO).
#[derive(Debug, Default)]
pub struct Progress {
    pub keys: AtomicU64,
    pub bytes: AtomicU64,
}

/// A finished snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub keys: u64,
    pub bytes: u64,
    pub millis: u64,
}

/// Why a snapshot failed.
#[derive(Debug)]
pub enum SaveError {
    /// A file operation failed: what was being done, and the error.
    Io(String, io::Error),
    /// A database was flushed or swapped while the snapshot ran, so it could not stay
    /// point-in-time; the next snapshot will be whole.
    Abandoned,
}

impl std::fmt::Display for SaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaveError::Io(what, e) => write!(f, "{what}: {e}"),
            SaveError::Abandoned => f.write_str("a database was flushed or swapped during the snapshot"),
        }
    }
}

/// One key as an RDB record, encoded but not yet written.
struct Record {
    db: usize,
    key: Vec<u8>,
    kind: u8,
    body: Vec<u8>,
    expire_ms: Option<i64>,
    idle: Option<u64>,
    freq: Option<u8>,
}

fn encode(db: usize, e: &Entry, opts: &rdb::WriteOptions, access: AccessData, now: i64) -> Record {
    let value = commands::serial::entry_value(e);
    let mut body = Vec::new();
    let kind = rdb::write_value(&mut body, &value, opts);
    let (idle, freq) = match access {
        AccessData::None => (None, None),
        AccessData::Idle => (Some(store::access::idle_ms(e.clock(), now) / 1000), None),
        AccessData::Freq { decay_minutes } => {
            (None, Some(store::access::lfu_counter(e.clock(), now, decay_minutes).min(255) as u8))
        }
    };
    Record { db, key: e.key().to_vec(), kind, body, expire_ms: e.expire_at(), idle, freq }
}

/// Receives the entries clients are about to change.
struct Sink {
    opts: rdb::WriteOptions,
    access: AccessData,
    now: i64,
    queue: Mutex<Vec<Record>>,
    abandoned: AtomicBool,
}

impl Preserver for Sink {
    fn preserve(&self, db: usize, entry: &Entry) {
        if self.abandoned.load(Ordering::Relaxed) {
            return;
        }
        let record = encode(db, entry, &self.opts, self.access, self.now);
        self.queue.lock().push(record);
    }

    fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

/// The RDB writer over a disk file, remembering the database it is in.
struct Out {
    w: rdb::FileWriter<BufWriter<Box<dyn DiskFile>>>,
    db: Option<usize>,
    keys: u64,
}

impl Out {
    fn put(&mut self, r: &Record) -> io::Result<()> {
        if self.db != Some(r.db) {
            self.w.select_db(r.db as u64)?;
            self.db = Some(r.db);
        }
        self.w.key_raw(&r.key, r.kind, &r.body, r.expire_ms, r.idle, r.freq)?;
        self.keys += 1;
        Ok(())
    }
}

/// Writes a snapshot of `ks` to `dir/file`. The keyspace stays fully usable meanwhile.
pub fn write(
    disk: &dyn Disk,
    ks: &Keyspace,
    dir: &Path,
    file: &str,
    job: &Job,
    progress: &Progress,
    now: i64,
) -> Result<Written, SaveError> {
    let started = Instant::now();
    let tmp = temp_path(dir);
    let result = write_to(disk, ks, &tmp, job, progress, now);
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = disk.remove(&tmp);
            return Err(e);
        }
    };
    let target = dir.join(file);
    let io = |what: &str, e| SaveError::Io(format!("{what} {}", target.display()), e);
    if let Err(e) = disk.rename(&tmp, &target) {
        let _ = disk.remove(&tmp);
        return Err(io("renaming the temporary file to", e));
    }
    disk.sync_dir(dir).map_err(|e| io("syncing the directory of", e))?;
    Ok(Written { keys: progress.keys.load(Ordering::Relaxed), bytes, millis: started.elapsed().as_millis() as u64 })
}

/// A fresh temporary file name in `dir` (unique per process and snapshot).
fn temp_path(dir: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    dir.join(format!("temp-{}-{}.rdb", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)))
}

fn write_to(
    disk: &dyn Disk,
    ks: &Keyspace,
    tmp: &Path,
    job: &Job,
    progress: &Progress,
    now: i64,
) -> Result<u64, SaveError> {
    let io = |what: &str| {
        let name = tmp.display().to_string();
        let what = what.to_string();
        move |e| SaveError::Io(format!("{what} {name}"), e)
    };
    let file = disk.create(tmp).map_err(io("creating"))?;
    let opts = commands::serial::write_options(&job.settings, job.settings.rdb_version);
    let w = rdb::FileWriter::new(BufWriter::with_capacity(1 << 16, file), job.settings.rdb_version)
        .map_err(io("writing"))?;
    let mut out = Out { w, db: None, keys: 0 };
    header(&mut out, job).map_err(io("writing"))?;
    let sink = Arc::new(Sink {
        opts: opts.clone(),
        access: job.access,
        now,
        queue: Mutex::new(Vec::new()),
        abandoned: AtomicBool::new(false),
    });
    ks.begin_snapshot(sink.clone());
    let walked = walk(ks, &mut out, &sink, job, progress, now, &opts);
    if sink.abandoned.load(Ordering::Relaxed) {
        return Err(SaveError::Abandoned);
    }
    walked.map_err(io("writing"))?;
    let buffered = out.w.finish().map_err(io("writing"))?;
    let mut file = buffered.into_inner().map_err(|e| io("writing")(e.into_error()))?;
    file.sync().map_err(io("syncing"))?;
    Ok(progress.bytes.load(Ordering::Relaxed))
}

fn header(out: &mut Out, job: &Job) -> io::Result<()> {
    for (k, v) in &job.aux {
        out.w.aux(k.as_bytes(), v.as_bytes())?;
    }
    for code in &job.functions {
        out.w.function(code)?;
    }
    Ok(())
}

/// Walks every database of every shard, writing what the walker and the clients hand over.
/// After an I/O error or an abandon, keeps walking without writing, so every entry ends
/// settled (the keyspace's invariant between snapshots).
fn walk(
    ks: &Keyspace,
    out: &mut Out,
    sink: &Sink,
    job: &Job,
    progress: &Progress,
    now: i64,
    opts: &rdb::WriteOptions,
) -> io::Result<()> {
    let mut failed: Option<io::Error> = None;
    let mut chunk = Vec::new();
    for shard in 0..SHARDS {
        for db in 0..job.databases {
            let mut cursor = 0;
            loop {
                let writing = failed.is_none() && !sink.abandoned.load(Ordering::Relaxed);
                cursor = ks.snapshot_step(shard, db, cursor, BUCKETS_PER_STEP, |e| {
                    if writing {
                        chunk.push(encode(db, e, opts, job.access, now));
                    }
                });
                let preserved = std::mem::take(&mut *sink.queue.lock());
                if failed.is_none() {
                    if let Err(e) = drain(out, chunk.drain(..).chain(preserved), progress) {
                        failed = Some(e);
                    }
                }
                chunk.clear();
                if cursor == 0 {
                    break;
                }
            }
            ks.end_snapshot_db(shard, db);
        }
    }
    // Entries preserved after their database's walk ended cannot exist (its hook is gone),
    // but a client may have queued one while the last walk step ran.
    let rest = std::mem::take(&mut *sink.queue.lock());
    if failed.is_none() {
        drain(out, rest.into_iter(), progress)?;
    }
    failed.map_or(Ok(()), Err)
}

fn drain(out: &mut Out, records: impl Iterator<Item = Record>, progress: &Progress) -> io::Result<()> {
    for r in records {
        out.put(&r)?;
        progress.keys.store(out.keys, Ordering::Relaxed);
        progress.bytes.fetch_add((r.key.len() + r.body.len() + 2) as u64, Ordering::Relaxed);
    }
    Ok(())
}
