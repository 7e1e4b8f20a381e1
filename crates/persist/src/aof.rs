//! The append-only log: Redis 7's multi-part layout and the thread that writes it.
//!
//! A log is a directory (`appenddirname`) holding a manifest (`<name>.manifest`), at most one
//! base file (`<name>.<seq>.base.rdb`, a snapshot in RDB format) and incremental files
//! (`<name>.<seq>.incr.aof`, commands in RESP, as a client sends them). Loading reads the
//! base, then replays the incremental files in manifest order. Redis 7 reads the same
//! layout, so a log written here can be loaded by redis-server and the other way round.
//!
//! Every byte appended gets a position in one growing sequence (the log *offset*), across
//! files and rewrites: the writer reports how far the log is written and how far it is
//! durable, so a client's reply can wait for its write to be on disk (`appendfsync always`),
//! and a replica can later ask for the command stream from an offset.
//!
//! The writer thread ([`Log::start`]) is the only one touching the file: appenders copy
//! bytes into a buffer under a short lock and never wait for the disk. A failed write is
//! retried (from the first byte not written) every second until it succeeds; a failed fsync
//! freezes the durable offset until a rewrite has put the whole dataset in a new base
//! ([`Log::recovered`]), because after a failed fsync the kernel may have dropped the pages.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::disk::{Disk, DiskFile};

/// One file named in the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub seq: u64,
}

/// The manifest: which base and incremental files make up the log, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<Part>,
    pub incrs: Vec<Part>,
}

impl Manifest {
    /// Parses Redis 7's manifest: one `file <name> seq <n> type <b|h|i>` line per file,
    /// `#` comments. History files (`type h`) are no longer part of the log and are skipped.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
            if !words.len().is_multiple_of(2) {
                return Err(bad("expected key-value pairs"));
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                match pair[0] {
                    "file" => name = Some(pair[1]),
                    "seq" => seq = Some(pair[1].parse::<u64>().map_err(|_| bad("the seq is not a number"))?),
                    "type" => kind = Some(pair[1]),
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(bad("a file line needs file, seq and type"));
            };
            if name.contains('/') || name.starts_with('.') {
                return Err(bad("a file name must be a plain name inside the directory"));
            }
            let part = Part { name: name.to_string(), seq };
            match kind {
                "b" if m.base.is_some() => return Err(bad("more than one base file")),
                "b" => m.base = Some(part),
                "i" => {
                    if m.incrs.last().is_some_and(|p| p.seq >= seq) {
                        return Err(bad("incremental files must be listed in ascending seq order"));
                    }
                    m.incrs.push(part);
                }
                "h" => {}
                _ => return Err(bad("unknown file type")),
            }
        }
        Ok(m)
    }

    /// The manifest's text, as Redis writes it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(b) = &self.base {
            s.push_str(&format!("file {} seq {} type b\n", b.name, b.seq));
        }
        for i in &self.incrs {
            s.push_str(&format!("file {} seq {} type i\n", i.name, i.seq));
        }
        s
    }
}

/// Where a log's files live: the directory and the files' common name (`appendfilename`).
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub name: String,
}

impl Layout {
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(format!("{}.manifest", self.name))
    }

    pub fn base_name(&self, seq: u64) -> String {
        format!("{}.{seq}.base.rdb", self.name)
    }

    pub fn incr_name(&self, seq: u64) -> String {
        format!("{}.{seq}.incr.aof", self.name)
    }

    pub fn path(&self, part: &Part) -> PathBuf {
        self.dir.join(&part.name)
    }

    /// The manifest, `None` if there is none (no log yet).
    pub fn read_manifest(&self, disk: &dyn Disk) -> Result<Option<Manifest>, String> {
        let path = self.manifest_path();
        let mut text = String::new();
        match disk.open(&path) {
            Ok(mut f) => f.read_to_string(&mut text).map_err(|e| format!("reading {}: {e}", path.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("opening {}: {e}", path.display())),
        };
        Manifest::parse(&text).map(Some).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Replaces the manifest atomically: a synced temporary file renamed over it, then the
    /// directory synced.
    pub fn write_manifest(&self, disk: &dyn Disk, m: &Manifest) -> io::Result<()> {
        let tmp = self.dir.join(format!("temp-{}.manifest", self.name));
        let mut f = disk.create(&tmp)?;
        let written = io::Write::write_all(&mut f, m.render().as_bytes()).and_then(|_| f.sync());
        drop(f);
        if let Err(e) = written.and_then(|_| disk.rename(&tmp, &self.manifest_path())) {
            let _ = disk.remove(&tmp);
            return Err(e);
        }
        disk.sync_dir(&self.dir)
    }

    /// Creates the directory if needed.
    pub fn ensure_dir(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)
    }

    /// Files in the directory that look like this log's but the manifest does not name
    /// (left by a rewrite that was interrupted); the caller may remove them.
    pub fn strays(&self, m: &Manifest) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let named: Vec<&str> = m.base.iter().chain(&m.incrs).map(|p| p.name.as_str()).collect();
        let prefix = format!("{}.", self.name);
        entries
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let ours = n.starts_with(&prefix) && (n.ends_with(".base.rdb") || n.ends_with(".incr.aof"));
                let temp = n.starts_with("temp-") && n.ends_with(".rdb");
                ((ours && !named.contains(&n.as_str())) || temp).then(|| e.path())
            })
            .collect()
    }
}

/// RESP encoding of one command, as a client sends it (an array of bulk strings).
pub fn encode_command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    let mut b = resp::ReplyBuf { buf: std::mem::take(out), proto: resp::Protocol::Resp2 };
    b.array(argv.len());
    for a in argv {
        b.bulk(a);
    }
    *out = b.buf;
}

/// Why reading an incremental file stopped early.
#[derive(Debug)]
pub enum ReadError {
    /// The file ends in the middle of a command (or of a MULTI block without its EXEC): the
    /// tail of a write that was cut short. `valid` bytes hold whole commands.
    Torn {
        valid: u64,
    },
    /// Bytes that are not a command, at offset `at`.
    Corrupt {
        at: u64,
        reason: String,
    },
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Torn { valid } => write!(f, "the file ends inside a command after byte {valid}"),
            ReadError::Corrupt { at, reason } => write!(f, "bad data at byte {at}: {reason}"),
            ReadError::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

/// One command's arguments, the name first.
pub type Argv = Vec<Vec<u8>>;

/// A unit of replay: one command, or a whole MULTI ... EXEC block (MULTI and EXEC included),
/// with the byte offsets it spans.
#[derive(Debug, Default)]
pub struct Unit {
    pub start: u64,
    pub end: u64,
    pub commands: Vec<Vec<Vec<u8>>>,
}

/// Reads commands from an incremental file, one [`Unit`] at a time, in bounded memory (the
/// largest command plus a read buffer). `#` annotation lines (Redis's timestamps) are skipped.
pub struct Commands<R> {
    src: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    ranges: Vec<std::ops::Range<usize>>,
}

impl<R: Read> Commands<R> {
    pub fn new(src: R) -> Commands<R> {
        Commands { src, buf: vec![0; 64 * 1024], start: 0, end: 0, offset: 0, eof: false, ranges: Vec::new() }
    }

    /// Bytes consumed so far (the end of the last whole command).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads more input so that at least `need` bytes are buffered (or the file ended).
    fn fill(&mut self, need: usize) -> Result<(), ReadError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < need {
            self.buf.resize(need.next_power_of_two(), 0);
        }
        while self.end < need && !self.eof {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        Ok(())
    }

    /// The next command and the offset it starts at; `None` at a clean end of file.
    pub fn next_command(&mut self) -> Result<Option<(u64, Argv)>, ReadError> {
        let limits = resp::decode::Limits::default();
        loop {
            if self.end == self.start {
                self.fill(1)?;
                if self.end == self.start {
                    return Ok(None);
                }
            }
            let data = &self.buf[self.start..self.end];
            if data[0] == b'#' {
                match data.iter().position(|&b| b == b'\n') {
                    Some(nl) => {
                        self.start += nl + 1;
                        self.offset += nl as u64 + 1;
                        continue;
                    }
                    None if self.eof => return Err(ReadError::Torn { valid: self.offset }),
                    None => {
                        let want = self.end - self.start + 4096;
                        self.fill(want)?;
                        continue;
                    }
                }
            }
            if data[0] != b'*' {
                return Err(ReadError::Corrupt {
                    at: self.offset,
                    reason: "expected '*' (the start of a command)".into(),
                });
            }
            match resp::decode::parse_command(data, &limits, &mut self.ranges) {
                Ok(resp::decode::Parsed::Multibulk { consumed }) => {
                    let argv: Vec<Vec<u8>> = self.ranges.iter().map(|r| data[r.clone()].to_vec()).collect();
                    let at = self.offset;
                    self.start += consumed;
                    self.offset += consumed as u64;
                    if argv.is_empty() {
                        continue;
                    }
                    return Ok(Some((at, argv)));
                }
                Ok(resp::decode::Parsed::Incomplete { need }) => {
                    if self.eof {
                        return Err(ReadError::Torn { valid: self.offset });
                    }
                    let want = need.max(self.end - self.start + 1);
                    self.fill(want)?;
                }
                Ok(resp::decode::Parsed::Inline { .. }) => unreachable!("the data starts with '*'"),
                Err(e) => return Err(ReadError::Corrupt { at: self.offset, reason: e.message().to_string() }),
            }
        }
    }

    /// The next unit: a command, or a whole transaction. A MULTI whose EXEC is missing at the
    /// end of the file counts as a torn tail starting at the MULTI.
    pub fn next_unit(&mut self) -> Result<Option<Unit>, ReadError> {
        let Some((start, first)) = self.next_command()? else { return Ok(None) };
        let mut unit = Unit { start, end: self.offset, commands: vec![first] };
        if !unit.commands[0][0].eq_ignore_ascii_case(b"multi") {
            return Ok(Some(unit));
        }
        loop {
            match self.next_command() {
                Ok(Some((_, argv))) => {
                    let exec = argv[0].eq_ignore_ascii_case(b"exec");
                    unit.commands.push(argv);
                    if exec {
                        unit.end = self.offset;
                        return Ok(Some(unit));
                    }
                }
                Ok(None) | Err(ReadError::Torn { .. }) => return Err(ReadError::Torn { valid: start }),
                Err(e) => return Err(e),
            }
        }
    }
}

/// What [`check_incr`] found.
#[derive(Debug)]
pub struct Check {
    pub commands: u64,
    /// Bytes holding whole commands (and whole transactions) from the start.
    pub valid: u64,
    pub total: u64,
    pub problem: Option<ReadError>,
}

/// Reads an incremental file to its end, as loading would, without running anything.
pub fn check_incr(src: impl Read, total: u64) -> Check {
    let mut cmds = Commands::new(src);
    let mut n = 0u64;
    loop {
        match cmds.next_unit() {
            Ok(Some(u)) => n += u.commands.len() as u64,
            Ok(None) => return Check { commands: n, valid: cmds.offset(), total, problem: None },
            Err(ReadError::Torn { valid }) => {
                return Check { commands: n, valid, total, problem: Some(ReadError::Torn { valid }) }
            }
            Err(e) => {
                let valid = cmds.offset();
                return Check { commands: n, valid, total, problem: Some(e) };
            }
        }
    }
}

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// A write is acknowledged only once it is on disk.
    Always = 0,
    /// fsync once a second.
    EverySec = 1,
    /// Leave it to the kernel.
    No = 2,
}

impl Fsync {
    fn from_u8(v: u8) -> Fsync {
        match v {
            0 => Fsync::Always,
            1 => Fsync::EverySec,
            _ => Fsync::No,
        }
    }
}

/// How long the writer waits before retrying a failed write.
pub const RETRY_WRITE: Duration = Duration::from_secs(1);

/// Appended bytes not yet taken by the writer.
struct Pending {
    data: Vec<u8>,
    /// The database the last appended command ran in (`None`: the next one writes SELECT).
    db: Option<usize>,
    /// Switch to this file at this position of `data` (a rewrite's new incremental file).
    switch: Option<(usize, Box<dyn DiskFile>)>,
    /// The file prepared for the next switch.
    next_file: Option<Box<dyn DiskFile>>,
    stop: bool,
}

impl Pending {
    /// Writes `SELECT db` first when the last command ran in another database.
    fn select(&mut self, db: usize) {
        if self.db != Some(db) {
            let n = db.to_string();
            encode_command(&mut self.data, &[b"SELECT", n.as_bytes()]);
            self.db = Some(db);
        }
    }
}

/// The log's status, for INFO and the write gate.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// The last write or fsync error, while it lasts.
    pub error: Option<String>,
    /// An fsync failed: durability is unknown until a rewrite succeeds.
    pub sync_failed: bool,
    /// Writes that failed (and were retried) since start.
    pub write_errors: u64,
    /// Slowest fsync so far, in microseconds, and the last one.
    pub max_sync_us: u64,
    pub last_sync_us: u64,
    /// fsyncs done since start.
    pub syncs: u64,
}

/// The log writer's shared state.
pub struct Log {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Offset after the last appended byte.
    appended: AtomicU64,
    /// Offset after the last byte written to the file.
    written: AtomicU64,
    /// Offset after the last byte known durable.
    durable: AtomicU64,
    /// Bytes in the current incremental file.
    file_bytes: AtomicU64,
    policy: AtomicU8,
    /// The writer is asleep and wants a notification on append.
    writer_idle: AtomicBool,
    /// A write is waiting to be retried (the writer should not be woken for every append).
    failing: AtomicBool,
    status: Mutex<Status>,
    on_durable: OnceLock<Box<dyn Fn(u64) + Send + Sync>>,
    /// How long a failed write waits before it is retried, in milliseconds.
    retry_ms: AtomicU64,
    /// Mirrors "the status holds an error or a failed fsync", so the write gate checks it
    /// with one load instead of the status lock.
    troubled: AtomicBool,
    /// The file is not part of a loadable log yet (the first rewrite of a log being turned
    /// on has not written its manifest): nothing counts as durable until [`Log::recovered`].
    unanchored: AtomicBool,
}

impl Log {
    /// A log whose offsets start at `offset` (the log's size so far).
    pub fn new(policy: Fsync, offset: u64) -> Arc<Log> {
        Arc::new(Log {
            pending: Mutex::new(Pending { data: Vec::new(), db: None, switch: None, next_file: None, stop: false }),
            wake: Condvar::new(),
            appended: AtomicU64::new(offset),
            written: AtomicU64::new(offset),
            durable: AtomicU64::new(offset),
            file_bytes: AtomicU64::new(0),
            policy: AtomicU8::new(policy as u8),
            writer_idle: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            status: Mutex::new(Status::default()),
            on_durable: OnceLock::new(),
            retry_ms: AtomicU64::new(RETRY_WRITE.as_millis() as u64),
            unanchored: AtomicBool::new(false),
            troubled: AtomicBool::new(false),
        })
    }

    /// Called by the writer with the new durable offset each time it advances.
    pub fn set_on_durable(&self, f: Box<dyn Fn(u64) + Send + Sync>) {
        let _ = self.on_durable.set(f);
    }

    /// Changes how long a failed write waits before it is retried (tests use a short one).
    pub fn set_retry_delay(&self, d: Duration) {
        self.retry_ms.store(d.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn policy(&self) -> Fsync {
        Fsync::from_u8(self.policy.load(Ordering::Relaxed))
    }

    pub fn set_policy(&self, p: Fsync) {
        self.policy.store(p as u8, Ordering::Relaxed);
        self.wake.notify_one();
    }

    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Bytes in the current incremental file (written so far).
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes.load(Ordering::Relaxed)
    }

    /// Appended bytes the writer has not written yet.
    pub fn buffered(&self) -> u64 {
        self.appended().saturating_sub(self.written())
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// Whether the last write or fsync failed (the status says what): one atomic load.
    pub fn troubled(&self) -> bool {
        self.troubled.load(Ordering::Acquire)
    }

    /// Changes the status under its lock and keeps [`Log::troubled`] in step with it.
    fn update_status<R>(&self, f: impl FnOnce(&mut Status) -> R) -> R {
        let mut st = self.status.lock();
        let r = f(&mut st);
        self.troubled.store(st.error.is_some() || st.sync_failed, Ordering::Release);
        r
    }

    /// Appends one command that ran in database `db`, encoding it straight into the buffer.
    /// Returns the offset after it.
    pub fn append_command(&self, db: usize, argv: &[&[u8]]) -> u64 {
        let mut p = self.pending.lock();
        let before = p.data.len();
        p.select(db);
        encode_command(&mut p.data, argv);
        self.appended_by(&p, before)
    }

    /// Appends commands, each with the database it ran in (a SELECT is written first when
    /// the database changes). Returns the offset after them.
    pub fn append(&self, cmds: &[(usize, &[u8])]) -> u64 {
        let mut p = self.pending.lock();
        let before = p.data.len();
        for &(db, encoded) in cmds {
            p.select(db);
            p.data.extend_from_slice(encoded);
        }
        self.appended_by(&p, before)
    }

    /// Counts the bytes an append added to `p.data` (from `before`), wakes the writer if it
    /// sleeps, and returns the new appended offset. The caller holds the buffer's lock.
    fn appended_by(&self, p: &Pending, before: usize) -> u64 {
        let n = (p.data.len() - before) as u64;
        let end = self.appended.fetch_add(n, Ordering::AcqRel) + n;
        // Under `always` the appender's event loop calls [`Log::kick`] once per batch.
        if self.policy() != Fsync::Always && self.writer_idle.load(Ordering::Relaxed) {
            self.wake_writer();
        }
        end
    }

    /// Hands what was appended to the writer now (a worker calls it once per event-loop
    /// iteration under `appendfsync always`, so one fsync covers the whole batch).
    pub fn kick(&self) {
        if self.writer_idle.load(Ordering::Relaxed) {
            let _p = self.pending.lock();
            self.wake_writer();
        }
    }

    fn wake_writer(&self) {
        if !self.failing.load(Ordering::Relaxed) {
            self.writer_idle.store(false, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// Hands the writer the file a coming rewrite switches to ([`Log::switch_now`]).
    pub fn prepare_switch(&self, file: Box<dyn DiskFile>) {
        self.pending.lock().next_file = Some(file);
    }

    /// Everything appended from now on goes to the prepared file. Called with every shard
    /// locked, at the instant a rewrite's snapshot is taken. Returns the offset of the switch.
    pub fn switch_now(&self) -> u64 {
        let mut p = self.pending.lock();
        if let Some(f) = p.next_file.take() {
            let at = p.data.len();
            p.switch = Some((at, f));
            p.db = None;
        }
        self.appended()
    }

    /// Until [`Log::recovered`], nothing written counts as durable: the file is not named by
    /// a manifest yet.
    pub fn unanchor(&self) {
        self.unanchored.store(true, Ordering::Release);
    }

    /// A rewrite made everything up to `offset` durable in a new base (and its manifest
    /// names the file being written): a failed fsync before it no longer matters.
    pub fn recovered(&self, offset: u64) {
        self.unanchored.store(false, Ordering::Release);
        self.update_status(|st| {
            st.sync_failed = false;
            if st.error.as_deref().is_some_and(|e| e.starts_with("fsync")) {
                st.error = None;
            }
        });
        let d = self.durable.fetch_max(offset, Ordering::AcqRel).max(offset);
        if let Some(f) = self.on_durable.get() {
            f(d);
        }
    }

    /// Starts the writer thread on `file` (the current incremental file, `file_len` bytes).
    pub fn start(self: &Arc<Self>, file: Box<dyn DiskFile>, file_len: u64) -> io::Result<std::thread::JoinHandle<()>> {
        {
            let mut p = self.pending.lock();
            p.stop = false;
            p.switch = None;
            p.next_file = None;
            p.db = None;
            // Anything appended while no writer ran (the log was being turned off) belongs
            // to no file: the new file starts clean, and the offsets continue from here.
            p.data.clear();
            let at = self.appended.load(Ordering::Acquire);
            self.written.store(at, Ordering::Release);
            self.durable.fetch_max(at, Ordering::AcqRel);
        }
        self.file_bytes.store(file_len, Ordering::Relaxed);
        let log = self.clone();
        std::thread::Builder::new().name("aof".into()).spawn(move || log.run(file))
    }

    /// Asks the writer to write and fsync everything appended, then exit.
    pub fn stop(&self) {
        self.pending.lock().stop = true;
        self.wake.notify_one();
    }

    fn run(&self, mut file: Box<dyn DiskFile>) {
        let mut carry: Vec<u8> = Vec::new();
        let mut switch: Option<(usize, Box<dyn DiskFile>)> = None;
        let mut last_sync = Instant::now();
        let mut unsynced = false;
        let mut retry_at: Option<Instant> = None;
        let mut quiet_rounds = 0u32;
        // Group commit under `always`: bytes the last fsync covered, when it ended and how
        // long it took (see the wait below).
        let (mut last_batch, mut sync_took) = (0usize, Duration::ZERO);
        loop {
            let stopping;
            {
                let mut p = self.pending.lock();
                if self.policy() == Fsync::Always && carry.is_empty() && !p.stop && switch.is_none() {
                    // Clients whose writes the last fsync covered answer back within about
                    // the time an fsync takes: wait that long (at most 2 ms) for a batch as
                    // big as the last one, so one fsync keeps covering them all instead of
                    // the clients splitting into ever smaller groups. Workers wake the writer
                    // at the end of each event-loop iteration.
                    let window = sync_took.min(Duration::from_millis(2));
                    let waited = last_sync.elapsed();
                    if !p.data.is_empty() && p.data.len() < last_batch && waited < window {
                        self.writer_idle.store(true, Ordering::Relaxed);
                        self.wake.wait_for(&mut p, window - waited);
                        self.writer_idle.store(false, Ordering::Relaxed);
                        if p.data.len() < last_batch && last_sync.elapsed() < window {
                            continue;
                        }
                    }
                }
                let have = !p.data.is_empty() || !carry.is_empty();
                let policy = self.policy();
                let sync_due = unsynced
                    && match policy {
                        Fsync::Always => true,
                        Fsync::EverySec => last_sync.elapsed() >= Duration::from_secs(1),
                        Fsync::No => false,
                    };
                if !have && !p.stop && !sync_due {
                    // Nothing to do: sleep. After a few quiet rounds the writer asks to be
                    // woken by the next append; until then it polls every millisecond, so a
                    // busy server's appends never pay for a wake-up.
                    quiet_rounds += 1;
                    let mut nap = Duration::from_millis(1);
                    if quiet_rounds > 10 || policy == Fsync::Always {
                        self.writer_idle.store(true, Ordering::Relaxed);
                        nap = Duration::from_secs(1);
                    }
                    if unsynced && policy == Fsync::EverySec {
                        nap = nap.min(Duration::from_secs(1).saturating_sub(last_sync.elapsed()));
                    }
                    self.wake.wait_for(&mut p, nap);
                    self.writer_idle.store(false, Ordering::Relaxed);
                    continue;
                }
                quiet_rounds = 0;
                if let Some(at) = retry_at {
                    let now = Instant::now();
                    if now < at && !p.stop {
                        self.wake.wait_for(&mut p, at - now);
                        continue;
                    }
                }
                if switch.is_none() {
                    if let Some((pos, f)) = p.switch.take() {
                        switch = Some((carry.len() + pos, f));
                    }
                    carry.extend_from_slice(&p.data);
                    p.data.clear();
                } else if p.switch.is_none() {
                    carry.extend_from_slice(&p.data);
                    p.data.clear();
                }
                stopping = p.stop;
            }
            // Write what was taken, switching files at the rewrite's position.
            let mut failed = false;
            loop {
                let limit = switch.as_ref().map_or(carry.len(), |(pos, _)| *pos);
                match self.write_some(&mut *file, &carry[..limit]) {
                    Ok(n) => {
                        carry.drain(..n);
                        if let Some((pos, _)) = switch.as_mut() {
                            *pos -= n;
                        }
                        unsynced |= n > 0;
                    }
                    Err(e) => {
                        self.write_failed(&e);
                        failed = true;
                        break;
                    }
                }
                match switch.take() {
                    Some((0, next)) => {
                        // The old file is complete: make it durable before leaving it.
                        if unsynced {
                            self.sync(&mut *file);
                        }
                        file = next;
                        self.file_bytes.store(0, Ordering::Relaxed);
                        unsynced = false;
                    }
                    other => {
                        switch = other;
                        break;
                    }
                }
            }
            if failed {
                retry_at = Some(Instant::now() + Duration::from_millis(self.retry_ms.load(Ordering::Relaxed)));
                self.failing.store(true, Ordering::Relaxed);
                if !stopping {
                    continue;
                }
            } else if retry_at.take().is_some() {
                self.failing.store(false, Ordering::Relaxed);
                self.update_status(|st| {
                    if st.error.as_deref().is_some_and(|e| e.starts_with("write")) {
                        st.error = None;
                    }
                });
            }
            let policy = self.policy();
            let due = match policy {
                Fsync::Always => true,
                Fsync::EverySec => last_sync.elapsed() >= Duration::from_secs(1),
                Fsync::No => false,
            };
            if unsynced && (due || stopping) {
                let started = Instant::now();
                let batch = (self.written() - self.durable()) as usize;
                unsynced = !self.sync(&mut *file);
                last_sync = Instant::now();
                (last_batch, sync_took) = (batch, last_sync - started);
            }
            if stopping && (carry.is_empty() || failed) {
                let p = self.pending.lock();
                if p.data.is_empty() || failed {
                    return;
                }
            }
        }
    }

    /// Writes as much of `buf` as the file takes; an error only if nothing could be written.
    fn write_some(&self, file: &mut dyn DiskFile, buf: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match file.write(&buf[done..]) {
                Ok(0) => break,
                Ok(n) => {
                    done += n;
                    self.written.fetch_add(n as u64, Ordering::AcqRel);
                    self.file_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        if done < buf.len() && done == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "the file accepted no bytes"));
        }
        Ok(done)
    }

    fn write_failed(&self, e: &io::Error) {
        self.update_status(|st| {
            st.error = Some(format!("write: {}", strerror(e)));
            st.write_errors += 1;
        });
    }

    /// fsyncs the file; on success moves the durable offset (unless an earlier fsync failed).
    fn sync(&self, file: &mut dyn DiskFile) -> bool {
        let upto = self.written();
        let started = Instant::now();
        let result = file.sync();
        let us = started.elapsed().as_micros() as u64;
        let frozen = self.update_status(|st| {
            st.last_sync_us = us;
            st.max_sync_us = st.max_sync_us.max(us);
            st.syncs += 1;
            if let Err(e) = &result {
                st.error = Some(format!("fsync: {}", strerror(e)));
                st.sync_failed = true;
            }
            st.sync_failed || self.unanchored.load(Ordering::Acquire)
        });
        if result.is_err() {
            return false;
        }
        if !frozen {
            let d = self.durable.fetch_max(upto, Ordering::AcqRel).max(upto);
            if let Some(f) = self.on_durable.get() {
                f(d);
            }
        }
        true
    }
}

/// An I/O error's text without Rust's " (os error N)" suffix, as C's `strerror` gives it.
pub fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Cuts an incremental file to `len` bytes (a torn tail), returning how many bytes went.
pub fn truncate_tail(disk: &dyn Disk, path: &Path, len: u64) -> io::Result<u64> {
    let total = std::fs::metadata(path)?.len();
    disk.truncate(path, len)?;
    Ok(total.saturating_sub(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_errors() {
        let text = "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.5.incr.aof seq 5 type i\nfile appendonly.aof.6.incr.aof seq 6 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base, Some(Part { name: "appendonly.aof.3.base.rdb".into(), seq: 3 }));
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert!(Manifest::parse("file a seq 1 type b\nfile b seq 2 type b\n").is_err());
        assert!(Manifest::parse("file a seq 2 type i\nfile b seq 1 type i\n").is_err());
        assert!(Manifest::parse("file ../x seq 1 type i\n").is_err());
        assert!(Manifest::parse("file a seq x type i\n").is_err());
        assert!(Manifest::parse("file a seq 1\n").is_err());
        assert!(Manifest::parse("file a seq 1 type z\n").is_err());
    }

    fn encoded(cmds: &[&[&str]]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in cmds {
            let argv: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
            encode_command(&mut out, &argv);
        }
        out
    }

    #[test]
    fn reads_commands_units_and_annotations() {
        let mut data = encoded(&[&["SELECT", "0"], &["SET", "a", "1"]]);
        data.extend_from_slice(b"#TS:1700000000\r\n");
        data.extend(encoded(&[&["MULTI"], &["INCR", "a"], &["EXEC"], &["DEL", "a"]]));
        let mut r = Commands::new(&data[..]);
        let mut units = Vec::new();
        while let Some(u) = r.next_unit().unwrap() {
            units.push(u.commands.len());
        }
        assert_eq!(units, vec![1, 1, 3, 1]);
        assert_eq!(r.offset(), data.len() as u64);
    }

    #[test]
    fn torn_tails_and_open_transactions() {
        let whole = encoded(&[&["SET", "a", "1"], &["SET", "b", "2"]]);
        let first = encoded(&[&["SET", "a", "1"]]).len() as u64;
        for cut in first as usize..whole.len() {
            let c = check_incr(&whole[..cut], cut as u64);
            if cut == first as usize {
                assert!(c.problem.is_none());
            } else {
                assert!(matches!(c.problem, Some(ReadError::Torn { valid }) if valid == first), "cut {cut}");
            }
            assert_eq!(c.valid, first);
        }
        let mut open = encoded(&[&["SET", "a", "1"]]);
        open.extend(encoded(&[&["MULTI"], &["INCR", "a"]]));
        let c = check_incr(&open[..], open.len() as u64);
        assert!(matches!(c.problem, Some(ReadError::Torn { valid }) if valid == first));
        let mut bad = encoded(&[&["SET", "a", "1"]]);
        bad.extend_from_slice(b"garbage\r\n");
        bad.extend(encoded(&[&["SET", "b", "2"]]));
        let c = check_incr(&bad[..], bad.len() as u64);
        assert!(matches!(c.problem, Some(ReadError::Corrupt { at, .. }) if at == first));
    }

    #[test]
    fn large_commands_span_reads() {
        let big = "x".repeat(300_000);
        let data = encoded(&[&["SET", "k", &big], &["SET", "k2", "v"]]);
        let mut r = Commands::new(&data[..]);
        assert_eq!(r.next_command().unwrap().unwrap().1[2].len(), 300_000);
        assert_eq!(r.next_command().unwrap().unwrap().1[1], b"k2");
        assert!(r.next_command().unwrap().is_none());
    }
}
