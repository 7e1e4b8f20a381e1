//! Writing a snapshot: the whole keyspace at one instant, as an RDB file, without fork and
//! without stopping clients.
//!
//! The keyspace's copy-before-write walk ([`store::snapshot`]) decides what goes in; this
//! module turns entries into RDB records and writes them.
//!
//! * **Who does what.** Workers advance the walk between events ([`Progress::step`], a few
//!   buckets copied under one shard lock, then encoded outside it), and encode the entries
//!   their clients are about to change ([`Walk`] as the keyspace's `Preserver`). Both go down
//!   one channel to the snapshot thread, which only writes, holding no shard lock, at idle
//!   priority ([`crate::sched`]): on a busy core it takes the time the workers leave, and no
//!   client ever waits for it. When the workers are idle it steps the walk itself.
//! * **Memory.** Records waiting to be written are bounded by [`Job::queue_limit`]: above it,
//!   workers stop stepping and the writer gets normal priority until it has caught up.
//!   Nothing is copied in bulk.
//! * **Files.** Records go to `temp-<pid>-<n>.rdb`, which is synced and then renamed over the
//!   target (and the directory synced), so a crash or a disk error at any point leaves the
//!   previous snapshot untouched and no temporary file behind.
//! * **Order.** Records of different databases interleave (each run starts with SELECTDB); a
//!   key appears once, with its value at the snapshot's start.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use store::keyspace::SHARDS;
use store::snapshot::Preserver;
use store::{Entry, Keyspace};

use crate::disk::{Disk, DiskFile};

/// SCAN steps the walker takes per lock: a few microseconds of copying, so a worker rarely
/// finds a shard held by the walker (and never for long).
const BUCKETS_PER_STEP: usize = 8;

/// When the writer has received nothing for this long and no worker has stepped the walk in
/// the meantime, the workers are idle: it steps the walk itself for up to [`IDLE_BURST`].
const IDLE_STEP: std::time::Duration = std::time::Duration::from_micros(200);
const IDLE_BURST: std::time::Duration = std::time::Duration::from_micros(500);

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
    /// Bytes of copied entries the writer may lag behind: above it workers stop stepping the
    /// walk and the writer leaves idle priority until it has caught up (entries clients are
    /// about to change are always taken: a write cannot wait). This bounds a snapshot's extra
    /// memory; the server sets it to a small share of the dataset.
    pub queue_limit: usize,
}

/// The running snapshot as other threads see it: its progress (INFO) and its walk, which
/// workers advance between events ([`Progress::step`]).
#[derive(Default)]
pub struct Progress {
    pub keys: AtomicU64,
    pub bytes: AtomicU64,
    /// Whether `walk` is set (checked first: one relaxed load when no snapshot runs).
    walking: AtomicBool,
    walk: parking_lot::RwLock<Option<Arc<Walk>>>,
}

impl Progress {
    /// Advances the running snapshot's walk by one step, if one runs and needs it. Call it
    /// holding no shard lock. Returns whether a step was taken.
    pub fn step(&self, ks: &Keyspace) -> bool {
        if !self.walking.load(Ordering::Relaxed) {
            return false;
        }
        let walk = self.walk.read().clone();
        walk.is_some_and(|w| w.step(ks))
    }

    fn publish(&self, walk: Option<Arc<Walk>>) {
        self.walking.store(walk.is_some(), Ordering::Relaxed);
        *self.walk.write() = walk;
    }
}

/// A finished snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub keys: u64,
    /// Bytes written before the 9-byte trailer (EOF opcode and checksum).
    pub bytes: u64,
    pub millis: u64,
    /// The most memory (roughly) that copied entries waiting to be written held at once.
    pub peak_queued: u64,
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

/// One key copied out of the keyspace, not yet encoded (the walker copies under the shard
/// lock and encodes after releasing it, so the lock is held as briefly as possible).
struct Copied {
    db: usize,
    key: Vec<u8>,
    value: rdb::Value,
    expire_ms: Option<i64>,
    clock: u32,
}

fn copy(db: usize, e: &Entry) -> Copied {
    Copied {
        db,
        key: e.key().to_vec(),
        value: commands::serial::entry_value(e),
        expire_ms: e.expire_at(),
        clock: e.clock(),
    }
}

fn encode(c: Copied, opts: &rdb::WriteOptions, access: AccessData, now: i64) -> Record {
    let mut body = Vec::new();
    let kind = rdb::write_value(&mut body, &c.value, opts);
    let (idle, freq) = match access {
        AccessData::None => (None, None),
        AccessData::Idle => (Some(store::access::idle_ms(c.clock, now) / 1000), None),
        AccessData::Freq { decay_minutes } => {
            (None, Some(store::access::lfu_counter(c.clock, now, decay_minutes).min(255) as u8))
        }
    };
    Record { db: c.db, key: c.key, kind, body, expire_ms: c.expire_ms, idle, freq }
}

/// The running snapshot's walk, shared by every thread that can advance it.
///
/// Workers call [`Walk::step`] between events: they hold no shard locks there, and a step
/// copies a few buckets' entries under one shard lock (microseconds), so no client ever waits
/// on a thread that the scheduler has put aside while holding a lock. The snapshot thread
/// only encodes and writes what arrives on the channel, holding no shard lock, so it can run
/// at a low priority; it steps itself only when no worker has (an idle server).
/// Entries clients are about to change come through the same channel ([`Preserver`]).
pub struct Walk {
    pos: Mutex<Pos>,
    databases: usize,
    tx: mpsc::Sender<Record>,
    /// How records are encoded.
    opts: rdb::WriteOptions,
    access: AccessData,
    now: i64,
    /// Bytes copied and not yet written: workers stop stepping above `queue_limit`.
    queued: AtomicUsize,
    /// See [`Job::queue_limit`].
    queue_limit: usize,
    /// The most `queued` reached (reported with the outcome).
    peak_queued: AtomicUsize,
    /// Every database's walk has ended: nothing more will be sent.
    finished: AtomicBool,
    abandoned: AtomicBool,
    /// Steps taken (for the snapshot thread to notice idle workers).
    steps: AtomicU64,
    /// The writer thread's priority: raised while the queue is over its limit.
    writer: crate::sched::Priority,
}

/// Where the walk is.
#[derive(Default)]
struct Pos {
    shard: usize,
    db: usize,
    cursor: u64,
}

/// The smallest queue limit (see [`Job::queue_limit`]).
pub const MIN_QUEUE_LIMIT: usize = 1 << 20;

/// A record's memory while queued: its bytes plus the record, the channel slot and two
/// allocations' headers (roughly).
fn record_size(r: &Record) -> usize {
    r.key.len() + r.body.len() + 128
}

impl Walk {
    /// Takes one step of the walk if nobody else is stepping and the writer keeps up.
    /// Returns whether it did. Call it holding no shard lock.
    pub fn step(&self, ks: &Keyspace) -> bool {
        if self.finished.load(Ordering::Acquire) || self.queued.load(Ordering::Relaxed) > self.queue_limit {
            return false;
        }
        let Some(mut pos) = self.pos.try_lock() else { return false };
        if self.finished.load(Ordering::Acquire) {
            return false;
        }
        let (shard, db) = (pos.shard, pos.db);
        let writing = !self.abandoned.load(Ordering::Relaxed);
        let mut copied = Vec::new();
        pos.cursor = ks.snapshot_step(shard, db, pos.cursor, BUCKETS_PER_STEP, |e| {
            if writing && store::namespace::persisted(e.key()) {
                copied.push(copy(db, e));
            }
        });
        for c in copied {
            self.send(c);
        }
        if pos.cursor == 0 {
            ks.end_snapshot_db(shard, db);
            pos.db += 1;
            if pos.db == self.databases {
                pos.db = 0;
                pos.shard += 1;
            }
            if pos.shard == SHARDS {
                self.finished.store(true, Ordering::Release);
            }
        }
        self.steps.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Whether the walk has ended.
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Encodes `c` (on the calling thread: a worker, in its measured step) and queues it.
    fn send(&self, c: Copied) {
        let r = encode(c, &self.opts, self.access, self.now);
        let size = record_size(&r);
        let queued = self.queued.fetch_add(size, Ordering::Relaxed) + size;
        self.peak_queued.fetch_max(queued, Ordering::Relaxed);
        if queued > self.queue_limit {
            self.writer.raise();
        }
        // The receiver lives until the walk has finished and the channel is drained.
        let _ = self.tx.send(r);
    }
}

impl Preserver for Walk {
    fn preserve(&self, db: usize, entry: &Entry) {
        if !self.abandoned.load(Ordering::Relaxed) && store::namespace::persisted(entry.key()) {
            self.send(copy(db, entry));
        }
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
/// `at_start` runs at the snapshot's instant, with every shard locked (a rewrite of the
/// append-only log switches to its new incremental file there).
#[allow(clippy::too_many_arguments)]
pub fn write(
    disk: &dyn Disk,
    ks: &Keyspace,
    dir: &Path,
    file: &str,
    job: &Job,
    progress: &Progress,
    now: i64,
    at_start: &mut dyn FnMut(),
) -> Result<Written, SaveError> {
    let started = Instant::now();
    let tmp = temp_path(dir);
    let result = write_to(disk, ks, &tmp, job, progress, now, at_start);
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
    let (bytes, peak_queued) = bytes;
    Ok(Written {
        keys: progress.keys.load(Ordering::Relaxed),
        bytes,
        millis: started.elapsed().as_millis() as u64,
        peak_queued,
    })
}

/// Removes the temporary files of snapshots whose process is gone (a crash or `kill -9` in
/// the middle of a snapshot leaves one); returns their names. Files of a live process (another
/// server sharing `dir`) are left alone.
pub fn remove_stale_temp_files(disk: &dyn Disk, dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_prefix("temp-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if name.ends_with(".rdb") && !process_alive(pid) && disk.remove(&entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists (and may be signalled).
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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
    at_start: &mut dyn FnMut(),
) -> Result<(u64, u64), SaveError> {
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
    let (tx, rx) = mpsc::channel();
    let walk = Arc::new(Walk {
        pos: Mutex::new(Pos::default()),
        databases: job.databases,
        tx,
        opts: opts.clone(),
        access: job.access,
        now,
        queued: AtomicUsize::new(0),
        queue_limit: job.queue_limit.max(MIN_QUEUE_LIMIT),
        peak_queued: AtomicUsize::new(0),
        finished: AtomicBool::new(false),
        abandoned: AtomicBool::new(false),
        steps: AtomicU64::new(0),
        writer: crate::sched::Priority::default(),
    });
    ks.begin_snapshot_with(walk.clone(), at_start);
    progress.publish(Some(walk.clone()));
    // Only after taking every lock at normal priority (an idle-priority thread holding some of
    // them could be kept off the CPU by the very workers waiting for them). Without the right
    // to raise it back it keeps normal priority (crate::sched).
    let _ = walk.writer.lower_self();
    let written = write_records(ks, &walk, &rx, &mut out, progress);
    progress.publish(None);
    walk.writer.relax();
    if walk.abandoned.load(Ordering::Relaxed) {
        return Err(SaveError::Abandoned);
    }
    written.map_err(io("writing"))?;
    let buffered = out.w.finish().map_err(io("writing"))?;
    let out_bytes = progress.bytes.load(Ordering::Relaxed);
    let mut file = buffered.into_inner().map_err(|e| io("writing")(e.into_error()))?;
    file.sync().map_err(io("syncing"))?;
    Ok((out_bytes, walk.peak_queued.load(Ordering::Relaxed) as u64))
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

/// Writes what the walk and the clients hand over until the walk has finished and the
/// channel is empty. Steps the walk itself when no worker has for [`IDLE_STEP`] (the workers
/// are idle). After an I/O error or an abandon it keeps consuming without writing, so the walk
/// ends and every entry is settled (the keyspace's invariant between snapshots).
fn write_records(
    ks: &Keyspace,
    walk: &Walk,
    rx: &mpsc::Receiver<Record>,
    out: &mut Out,
    progress: &Progress,
) -> io::Result<()> {
    let mut failed: Option<io::Error> = None;
    let mut seen_steps = u64::MAX;
    loop {
        let finished = walk.finished();
        match rx.recv_timeout(IDLE_STEP) {
            Ok(r) => {
                if walk.queued.fetch_sub(record_size(&r), Ordering::Relaxed) < walk.queue_limit / 4 {
                    walk.writer.relax();
                }
                if failed.is_none() && !walk.abandoned.load(Ordering::Relaxed) {
                    if let Err(e) = write_one(out, &r, progress) {
                        failed = Some(e);
                    }
                }
            }
            // Finished before this wait, and nothing arrived: everything sent was written.
            Err(_) if finished => break,
            Err(_) => {
                if walk.steps.load(Ordering::Relaxed) == seen_steps {
                    let burst = Instant::now();
                    while burst.elapsed() < IDLE_BURST && walk.step(ks) {}
                }
                seen_steps = walk.steps.load(Ordering::Relaxed);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Writes one record and publishes the progress.
fn write_one(out: &mut Out, r: &Record, progress: &Progress) -> io::Result<()> {
    out.put(r)?;
    progress.keys.store(out.keys, Ordering::Relaxed);
    progress.bytes.store(out.w.bytes_written(), Ordering::Relaxed);
    Ok(())
}
