//! The append-only log as the server runs it: what each command logs, replay at startup,
//! rewrites (BGREWRITEAOF and automatic compaction), `appendfsync always` acknowledgements,
//! the write gate and INFO's `aof_*` fields. The files and the writer thread are
//! `persist::aof`'s.
//!
//! * **What is logged.** A keyspace command that changed something is logged while it still
//!   holds its shard locks, so commands on one key are logged in the order they ran. It is
//!   logged as its effect where the command itself would not repeat it: relative or missing
//!   times become absolute (`EXPIRE` → `PEXPIREAT`, `SET ... EX` → `SET ... PXAT`, `XADD *`
//!   → the ID it got), random picks become explicit (`SPOP` → `SREM`), float increments
//!   become their result, stream deliveries become `XCLAIM`s with their times. Keys removed
//!   by expiry or eviction are logged as `DEL`. A transaction's or a script's effects are
//!   logged together, wrapped in MULTI/EXEC, under the locks they ran under.
//! * **Replay** runs the logged commands through the normal dispatcher on a client of its
//!   own, with the clock at [`commands::REPLAY_NOW`]: nothing expires during the replay.
//! * **Rewrite** is a snapshot (fork-free, point-in-time, see `persist::snapshot`) written as
//!   the new base; at its instant, with every shard locked, appends switch to a new
//!   incremental file, which the manifest already names. Until the manifest is replaced, the
//!   old base and incremental files still describe everything, so a failed or interrupted
//!   rewrite loses nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use commands::{CmdError, CmdResult, CommandSpec};
use parking_lot::Mutex;
use persist::aof::{encode_command, Commands, Fsync, Layout, Log, Manifest, Part, ReadError};
use store::View;

use crate::config::Settings;
use crate::dispatch::WorkerLocal;
use crate::session::Session;
use crate::{log_notice, log_warning, unix_ms, Shared};

/// The start of Redis's error for writes refused while the log cannot be written.
pub const MISCONF_PREFIX: &str = "MISCONF Errors writing to the AOF file: ";

/// After a failed rewrite, the next automatic one waits this long.
const REWRITE_RETRY_MS: i64 = 5_000;

/// The log's state shared by every thread.
pub struct Aof {
    pub log: Arc<Log>,
    /// Commands are being logged.
    active: AtomicBool,
    /// `appendonly yes` is wanted but logging could not start yet (its first rewrite failed):
    /// the cron retries.
    pending_enable: AtomicBool,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    manifest: Mutex<Manifest>,
    rewriting: AtomicBool,
    scheduled: AtomicBool,
    last_rewrite_ok: AtomicBool,
    consecutive_failures: AtomicU64,
    last_rewrite_secs: AtomicI64,
    rewrite_started_ms: AtomicI64,
    last_attempt_ms: AtomicI64,
    rewrites: AtomicU64,
    /// Bytes of the base file and of the incremental files before the current one.
    base_bytes: AtomicU64,
    older_incr_bytes: AtomicU64,
    /// The log's size right after the last rewrite (for `auto-aof-rewrite-percentage`).
    size_at_rewrite: AtomicU64,
    /// The error last reported in the server log (to log changes once).
    reported: Mutex<Option<String>>,
}

impl Aof {
    pub fn new(policy: Fsync) -> Aof {
        Aof {
            log: Log::new(policy, 0),
            active: AtomicBool::new(false),
            pending_enable: AtomicBool::new(false),
            writer: Mutex::new(None),
            manifest: Mutex::new(Manifest::default()),
            rewriting: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            last_rewrite_ok: AtomicBool::new(true),
            consecutive_failures: AtomicU64::new(0),
            last_rewrite_secs: AtomicI64::new(-1),
            rewrite_started_ms: AtomicI64::new(0),
            last_attempt_ms: AtomicI64::new(0),
            rewrites: AtomicU64::new(0),
            base_bytes: AtomicU64::new(0),
            older_incr_bytes: AtomicU64::new(0),
            size_at_rewrite: AtomicU64::new(0),
            reported: Mutex::new(None),
        }
    }

    /// Whether commands are being logged (one relaxed load on every write).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Whether a rewrite runs.
    pub fn rewriting(&self) -> bool {
        self.rewriting.load(Ordering::Acquire)
    }

    /// The log's total size: base, older incremental files and the current one.
    pub fn current_size(&self) -> u64 {
        self.base_bytes.load(Ordering::Relaxed) + self.older_incr_bytes.load(Ordering::Relaxed) + self.log.file_bytes()
    }

    /// The error that stops writes, if the log cannot be written.
    pub fn error(&self) -> Option<String> {
        if !self.active() || !self.log.troubled() {
            return None;
        }
        let st = self.log.status();
        st.error.or_else(|| st.sync_failed.then(|| "fsync failed".to_string()))
    }
}

/// The log's files for these settings.
pub fn layout(settings: &Settings) -> Layout {
    Layout { dir: settings.dir.join(&settings.appenddirname), name: settings.appendfilename.clone() }
}

// ---------------------------------------------------------------------------------------------
// What commands log

/// A worker's log entries not yet appended: a transaction's or a script's are collected
/// and appended together when it ends.
#[derive(Default)]
pub struct Batch {
    depth: u32,
    cmds: Vec<(usize, Vec<u8>)>,
    /// The log offset after this worker's last append (a client of `appendfsync always`
    /// waits until it is durable).
    pub last_end: u64,
}

/// A transaction or script starts: its effects are collected until [`end`].
pub fn begin(local: &mut WorkerLocal) {
    local.aof.depth += 1;
}

/// A transaction or script ends (still under its locks): its effects are appended, wrapped
/// in MULTI/EXEC when there are several.
pub fn end(shared: &Shared, local: &mut WorkerLocal) {
    local.aof.depth = local.aof.depth.saturating_sub(1);
    if local.aof.depth == 0 {
        flush(shared, local);
    }
}

/// Logs one command: straight into the log outside a transaction or script (encoded under
/// the log's lock, no copy), into the worker's batch inside one.
fn push(shared: &Shared, local: &mut WorkerLocal, db: usize, argv: &[&[u8]]) {
    if local.aof.depth == 0 {
        local.aof.last_end = shared.aof.log.append_command(db, argv);
        return;
    }
    let mut bytes = Vec::with_capacity(16 + argv.iter().map(|a| a.len() + 16).sum::<usize>());
    encode_command(&mut bytes, argv);
    local.aof.cmds.push((db, bytes));
}

fn flush(shared: &Shared, local: &mut WorkerLocal) {
    let cmds = &mut local.aof.cmds;
    if cmds.is_empty() {
        return;
    }
    if !shared.aof.active() {
        cmds.clear();
        return;
    }
    let end = if cmds.len() == 1 {
        shared.aof.log.append(&[(cmds[0].0, &cmds[0].1)])
    } else {
        let (mut multi, mut exec) = (Vec::new(), Vec::new());
        encode_command(&mut multi, &[b"MULTI"]);
        encode_command(&mut exec, &[b"EXEC"]);
        let first = cmds[0].0;
        let last = cmds[cmds.len() - 1].0;
        let mut parts: Vec<(usize, &[u8])> = Vec::with_capacity(cmds.len() + 2);
        parts.push((first, &multi));
        parts.extend(cmds.iter().map(|(db, b)| (*db, b.as_slice())));
        parts.push((last, &exec));
        shared.aof.log.append(&parts)
    };
    cmds.clear();
    local.aof.last_end = end;
}

/// Logs keys that expired (lazily, in the shards a command holds) as DEL, before the
/// command's own effect.
pub fn note_expired(shared: &Shared, local: &mut WorkerLocal, expired: &[commands::notify::Event]) {
    for e in expired.iter().filter(|e| store::namespace::persisted(&e.key)) {
        push(shared, local, e.db, &[b"DEL", &e.key]);
    }
}

/// Whether every key of the command is in a `persist no` namespace (kept out of snapshots,
/// so out of the log too: a replay must not rebuild part of a key the base does not hold).
fn unpersisted(spec: &CommandSpec, argv: &[&[u8]]) -> bool {
    if !store::namespace::enabled() {
        return false;
    }
    let keys = spec.keys_of(argv);
    !keys.is_empty() && keys.iter().all(|&i| !store::namespace::persisted(argv[i]))
}

/// Logs a keyspace command that changed something (`dirty > 0`), as its effect.
pub fn note_command(
    shared: &Shared,
    local: &mut WorkerLocal,
    view: &mut View<'_>,
    db: usize,
    spec: &CommandSpec,
    argv: &[&[u8]],
    log_as: Option<Vec<Vec<Vec<u8>>>>,
) {
    if unpersisted(spec, argv) {
        return;
    }
    match log_as {
        Some(cmds) => {
            for c in cmds {
                let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                push(shared, local, db, &refs);
            }
        }
        None => match effect(spec, argv, view, db) {
            Some(c) => {
                let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                push(shared, local, db, &refs);
            }
            None => push(shared, local, db, argv),
        },
    }
}

/// Logs a key removed by eviction or the active expiry cycle as DEL (the caller holds its
/// shard's lock).
pub fn log_delete(shared: &Shared, db: usize, key: &[u8]) {
    if shared.aof.active() && store::namespace::persisted(key) {
        log_now(shared, db, &[b"DEL", key]);
    }
}

/// Appends one command at once (FUNCTION changes, deletions by the server itself).
pub fn log_now(shared: &Shared, db: usize, argv: &[&[u8]]) {
    if shared.aof.active() {
        shared.aof.log.append_command(db, argv);
    }
}

/// The command that repeats a time-relative command's effect, read from the key as it is
/// now (the command still holds its lock); `None` to log the command as sent.
fn effect(spec: &CommandSpec, argv: &[&[u8]], view: &mut View<'_>, db: usize) -> Option<Vec<Vec<u8>>> {
    let key = *argv.get(1)?;
    let expire = |view: &mut View<'_>| view.db(db, key).lookup(key, commands::REPLAY_NOW).map(|e| e.expire_at());
    let ms = |t: i64| t.to_string().into_bytes();
    match spec.name {
        // SET with EX/PX/EXAT/KEEPTTL, SETEX, PSETEX: the value with its absolute expiry.
        "set" if argv.len() > 3 => {
            let mut c = vec![b"SET".to_vec(), key.to_vec(), argv[2].to_vec()];
            if let Some(Some(at)) = expire(view) {
                c.extend([b"PXAT".to_vec(), ms(at)]);
            }
            Some(c)
        }
        "setex" | "psetex" => {
            let mut c = vec![b"SET".to_vec(), key.to_vec(), argv[3].to_vec()];
            if let Some(Some(at)) = expire(view) {
                c.extend([b"PXAT".to_vec(), ms(at)]);
            }
            Some(c)
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" | "getex" => Some(match expire(view) {
            Some(Some(at)) => vec![b"PEXPIREAT".to_vec(), key.to_vec(), ms(at)],
            Some(None) => vec![b"PERSIST".to_vec(), key.to_vec()],
            None => vec![b"DEL".to_vec(), key.to_vec()],
        }),
        // RESTORE with a relative TTL: the absolute one (the payload is kept as sent).
        "restore" => {
            let mut c = vec![b"RESTORE".to_vec(), key.to_vec()];
            let at = expire(view).flatten().unwrap_or(0);
            c.extend([ms(at), argv[3].to_vec(), b"REPLACE".to_vec(), b"ABSTTL".to_vec()]);
            let mut i = 4;
            while i < argv.len() {
                let a = argv[i];
                if (commands::args::is(a, "idletime") || commands::args::is(a, "freq")) && i + 1 < argv.len() {
                    c.extend([a.to_vec(), argv[i + 1].to_vec()]);
                    i += 1;
                }
                i += 1;
            }
            Some(c)
        }
        _ => None,
    }
}

/// Logs a server command that changed state outside the keyspace (FUNCTION LOAD, DELETE,
/// FLUSH, RESTORE), as sent.
pub fn note_server_command(shared: &Shared, db: usize, argv: &[&[u8]]) {
    log_now(shared, db, argv);
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping

/// Starts the writer thread on `file` (the current incremental file, `len` bytes long).
fn start_writer(shared: &Shared, file: Box<dyn persist::disk::DiskFile>, len: u64) -> Result<(), String> {
    let handle = shared.aof.log.start(file, len).map_err(|e| format!("cannot start the log writer thread: {e}"))?;
    *shared.aof.writer.lock() = Some(handle);
    Ok(())
}

fn set_active(shared: &Shared, on: bool) {
    shared.aof.active.store(on, Ordering::Release);
    store::db::record_expired_for_log(on);
}

/// Stops logging: everything appended is written and fsynced first.
pub fn stop(shared: &Shared) {
    set_active(shared, false);
    shared.aof.log.stop();
    if let Some(h) = shared.aof.writer.lock().take() {
        let _ = h.join();
    }
}

/// Wakes the workers whose clients wait for the log to be durable up to `offset`.
pub fn install_waker(shared: &Arc<Shared>) {
    let weak = Arc::downgrade(shared);
    shared.aof.log.set_on_durable(Box::new(move |durable| {
        let Some(shared) = weak.upgrade() else { return };
        for w in shared.workers.read().iter() {
            w.durable_reached(durable);
        }
    }));
}

// ---------------------------------------------------------------------------------------------
// Loading at startup

/// Loads the dataset at startup: with `appendonly yes` from the log (base, then the
/// incremental files), or from the snapshot when there is no log yet (and then writes the
/// log's first base); otherwise from the snapshot.
pub fn load_at_startup(shared: &Shared, settings: &Settings) -> Result<(), String> {
    if !settings.appendonly {
        return crate::persistence::load_at_startup(shared, settings);
    }
    let layout = layout(settings);
    let disk = shared.persistence.disk.clone();
    let manifest = layout.read_manifest(&*disk)?;
    let Some(manifest) = manifest else {
        // No log yet: the snapshot (if any) is the dataset, and the log starts from it.
        crate::persistence::load_at_startup(shared, settings)?;
        log_notice!("Creating the append-only log in {}", layout.dir.display());
        return enable_now(shared, "appendonly yes, no log yet");
    };
    for stray in layout.strays(&manifest) {
        if disk.remove(&stray).is_ok() {
            log_notice!("Removed {}: a file of an interrupted log rewrite", stray.display());
        }
    }
    let started = std::time::Instant::now();
    let cmd = settings.command_settings();
    let mut keys = 0;
    if let Some(base) = &manifest.base {
        let path = layout.path(base);
        let p = &shared.persistence;
        p.loading_progress(0, std::fs::metadata(&path).map_or(0, |m| m.len()));
        let progress = crate::persistence::load_progress(p, &path, settings);
        let loaded = persist::load::load_with(&*disk, &path, &shared.keyspace, &cmd, unix_ms(), true, progress)
            .map_err(|e| {
                format!(
                    "cannot load {}: {e}. Check it with `redoubt-server check-aof {}`.",
                    path.display(),
                    path.display()
                )
            })?
            .ok_or_else(|| format!("{}: the manifest names this base file, but it is missing", path.display()))?;
        for code in &loaded.functions {
            shared
                .functions
                .install(code, false)
                .map_err(|e| format!("{}: a FUNCTION library failed to load: {}", path.display(), e.text()))?;
        }
        keys = loaded.keys;
        shared.aof.base_bytes.store(std::fs::metadata(&path).map_or(0, |m| m.len()), Ordering::Relaxed);
    }
    let mut replayed = 0u64;
    let mut older = 0u64;
    let n = manifest.incrs.len();
    let mut last_len = 0;
    for (i, part) in manifest.incrs.iter().enumerate() {
        let path = layout.path(part);
        let (count, len) = replay_file(shared, settings, &path, i + 1 == n)?;
        replayed += count;
        if i + 1 < n {
            older += len;
        } else {
            last_len = len;
        }
    }
    shared.aof.older_incr_bytes.store(older, Ordering::Relaxed);
    let size = shared.aof.base_bytes.load(Ordering::Relaxed) + older + last_len;
    shared.aof.size_at_rewrite.store(size, Ordering::Relaxed);
    log_notice!(
        "Loaded the append-only log {}: {keys} keys from the base, {replayed} commands replayed, in {} ms",
        layout.dir.display(),
        started.elapsed().as_millis()
    );
    // Appends continue in the last incremental file (a new one if the manifest has none).
    let mut manifest = manifest;
    let (file, len) = match manifest.incrs.last() {
        Some(last) => {
            (disk.append(&layout.path(last)).map_err(|e| format!("cannot open {}: {e}", last.name))?, last_len)
        }
        None => {
            let part = Part { name: layout.incr_name(1), seq: 1 };
            let f = disk.create(&layout.path(&part)).map_err(|e| format!("cannot create {}: {e}", part.name))?;
            manifest.incrs.push(part);
            layout.write_manifest(&*disk, &manifest).map_err(|e| format!("cannot write the manifest: {e}"))?;
            (f, 0)
        }
    };
    *shared.aof.manifest.lock() = manifest;
    shared.aof.log.set_policy(settings.appendfsync);
    start_writer(shared, file, len)?;
    set_active(shared, true);
    Ok(())
}

/// Replays one incremental file; returns the commands run and the file's (valid) length.
fn replay_file(shared: &Shared, settings: &Settings, path: &std::path::Path, last: bool) -> Result<(u64, u64), String> {
    let disk = &*shared.persistence.disk;
    let total = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
    let src = disk.open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut reader = Commands::new(std::io::BufReader::with_capacity(1 << 16, src));
    let mut client = Replayer::new(shared);
    let mut count = 0u64;
    let mut last_log = std::time::Instant::now();
    let fix = |p: &std::path::Path| {
        format!("Run `redoubt-server check-aof --fix {}` to cut it there, or restore a good copy.", p.display())
    };
    loop {
        match reader.next_unit() {
            Ok(Some(unit)) => {
                for argv in &unit.commands {
                    client.run(argv).map_err(|e| format!("{}: near byte {}: {e}", path.display(), unit.start))?;
                    count += 1;
                }
                if count.is_multiple_of(1024) {
                    shared.persistence.loading_progress(unit.end, total);
                    if last_log.elapsed() >= std::time::Duration::from_secs(2) {
                        last_log = std::time::Instant::now();
                        let perc = unit.end as f64 * 100.0 / total.max(1) as f64;
                        log_notice!("Replaying {}: {count} commands, {perc:.1}% of {total} bytes", path.display());
                    }
                }
            }
            Ok(None) => break,
            Err(ReadError::Torn { valid }) if last && settings.aof_load_truncated => {
                let cut = persist::aof::truncate_tail(disk, path, valid)
                    .map_err(|e| format!("cannot truncate the torn tail of {}: {e}", path.display()))?;
                log_warning!(
                    "!!! Warning: {} ends in the middle of a command (a write cut short by a crash or a full disk): {cut} bytes after byte {valid} were removed, keeping every whole command",
                    path.display()
                );
                return Ok((count, valid));
            }
            Err(ReadError::Torn { valid }) => {
                return Err(format!(
                    "{} ends in the middle of a command after byte {valid} ({} bytes follow). {}",
                    path.display(),
                    total - valid,
                    if last {
                        "Set aof-load-truncated yes to cut a torn tail at startup, or:".to_string()
                    } else {
                        String::new()
                    }
                ) + " "
                    + &fix(path));
            }
            Err(e) => return Err(format!("{} is damaged: {e}. {}", path.display(), fix(path))),
        }
    }
    if client.errors > 0 {
        log_warning!(
            "{}: {} replayed commands answered with an error (as they did when they ran)",
            path.display(),
            client.errors
        );
    }
    Ok((count, total))
}

/// The client the log is replayed on.
struct Replayer<'a> {
    shared: &'a Shared,
    local: WorkerLocal,
    session: Session,
    errors: u64,
}

impl<'a> Replayer<'a> {
    fn new(shared: &'a Shared) -> Replayer<'a> {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        let info = Arc::new(crate::clients::ClientInfo::new(0, addr, addr, -1, 0, unix_ms()));
        let mut local = WorkerLocal::new(shared);
        local.replaying = true;
        Replayer { shared, local, session: Session::new(info, true), errors: 0 }
    }

    fn run(&mut self, argv: &[Vec<u8>]) -> Result<(), String> {
        if commands::lookup(&argv[0]).is_none() {
            return Err(format!("unknown command '{}' in the log", String::from_utf8_lossy(&argv[0])));
        }
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        self.session.out.buf.clear();
        crate::dispatch::execute(self.shared, &mut self.local, &mut self.session, &refs);
        if self.session.out.buf.first() == Some(&b'-') {
            if argv[0].eq_ignore_ascii_case(b"select") {
                // Everything after it would land in the wrong database.
                return Err(format!(
                    "SELECT {} failed: {} (raise `databases` to at least the log's highest database + 1)",
                    String::from_utf8_lossy(argv.get(1).map_or(&[][..], |a| a)),
                    String::from_utf8_lossy(&self.session.out.buf).trim()
                ));
            }
            self.errors += 1;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Rewrites

/// Turns logging on now (startup without a log, CONFIG SET appendonly yes): a rewrite
/// writes the first base, and logging starts at its instant.
fn enable_now(shared: &Shared, why: &str) -> Result<(), String> {
    while !claim(shared) {
        crate::persistence::wait_for_walk(shared);
    }
    let result = rewrite_claimed(shared, why, true);
    crate::persistence::release(shared);
    result
}

/// Starts a rewrite on its own thread. `Ok(false)` if the keyspace walk is busy (a
/// snapshot or another rewrite).
pub fn start_background(shared: &Arc<Shared>, why: &'static str) -> Result<bool, String> {
    if !claim(shared) {
        return Ok(false);
    }
    let sh = shared.clone();
    let enable = !shared.aof.active() && shared.settings().appendonly;
    let spawned = store::memory::spawn_counted("aof-rewrite", move || {
        let _ = rewrite_claimed(&sh, why, enable);
        crate::persistence::release(&sh);
    });
    if let Err(e) = spawned {
        shared.aof.rewriting.store(false, Ordering::Release);
        crate::persistence::release(shared);
        return Err(format!("cannot start the rewrite thread: {e}"));
    }
    Ok(true)
}

/// Claims the keyspace walk for a rewrite, marking it as one at once (so a BGREWRITEAOF in
/// between hears "already in progress", not "scheduled").
fn claim(shared: &Shared) -> bool {
    let claimed = crate::persistence::claim(shared);
    if claimed {
        shared.aof.rewriting.store(true, Ordering::Release);
    }
    claimed
}

/// Runs a rewrite with the keyspace walk claimed. With `enable`, logging starts at the
/// rewrite's instant (and the manifest is written only once the base is complete, so a
/// failure leaves the snapshot as the dataset to load).
fn rewrite_claimed(shared: &Shared, why: &str, enable: bool) -> Result<(), String> {
    let a = &shared.aof;
    let now = unix_ms();
    a.rewrite_started_ms.store(now, Ordering::Relaxed);
    a.last_attempt_ms.store(now, Ordering::Relaxed);
    let result = rewrite_inner(shared, why, enable);
    let secs = (unix_ms() - now) / 1000;
    a.last_rewrite_secs.store(secs, Ordering::Relaxed);
    a.rewrite_started_ms.store(0, Ordering::Relaxed);
    match &result {
        Ok(()) => {
            a.last_rewrite_ok.store(true, Ordering::Relaxed);
            a.consecutive_failures.store(0, Ordering::Relaxed);
            a.rewrites.fetch_add(1, Ordering::Relaxed);
            a.pending_enable.store(false, Ordering::Relaxed);
        }
        Err(e) => {
            log_warning!(
                "Append-only log rewrite failed: {e}. The existing log files are unchanged and still complete; retrying in {} s.",
                REWRITE_RETRY_MS / 1000
            );
            a.last_rewrite_ok.store(false, Ordering::Relaxed);
            a.consecutive_failures.fetch_add(1, Ordering::Relaxed);
            if enable {
                a.pending_enable.store(true, Ordering::Relaxed);
            }
        }
    }
    a.rewriting.store(false, Ordering::Release);
    result
}

fn rewrite_inner(shared: &Shared, why: &str, enable: bool) -> Result<(), String> {
    let settings = shared.settings();
    let layout = layout(&settings);
    let disk = shared.persistence.disk.clone();
    let a = &shared.aof;
    layout.ensure_dir().map_err(|e| format!("cannot create {}: {e}", layout.dir.display()))?;
    let old = a.manifest.lock().clone();
    let base_seq = old.base.as_ref().map_or(1, |b| b.seq + 1);
    let base = Part { name: layout.base_name(base_seq), seq: base_seq };
    let incr_seq = old.incrs.last().map_or(1, |i| i.seq + 1);
    let incr = Part { name: layout.incr_name(incr_seq), seq: incr_seq };
    log_notice!("Append-only log rewrite started ({why}): base {}, then {}", base.name, incr.name);
    let file = disk.create(&layout.path(&incr)).map_err(|e| format!("cannot create {}: {e}", incr.name))?;
    let logging = a.active();
    if enable {
        // Appends are not durable until the manifest names this file (clients of
        // `appendfsync always` wait for the end of this rewrite).
        a.log.set_policy(settings.appendfsync);
        a.log.unanchor();
        start_writer(shared, file, 0)?;
    } else {
        // Until the rewrite is done, the log is the old files plus the new incremental one.
        let mut with_new = old.clone();
        with_new.incrs.push(incr.clone());
        layout.write_manifest(&*disk, &with_new).map_err(|e| format!("cannot write the manifest: {e}"))?;
        *a.manifest.lock() = with_new;
        if logging {
            a.log.prepare_switch(file);
        }
    }
    let mut job = crate::persistence::job(shared, &settings);
    for (k, v) in job.aux.iter_mut() {
        if k == "aof-base" {
            *v = "1".into();
        }
    }
    let mut switched_at = None;
    let mut functions_at_switch = None;
    let written = persist::snapshot::write(
        &*disk,
        &shared.keyspace,
        &layout.dir,
        &base.name,
        &job,
        &shared.persistence.progress,
        unix_ms(),
        &mut || {
            functions_at_switch = Some(shared.functions.codes());
            if enable {
                set_active(shared, true);
                switched_at = Some(a.log.appended());
            } else if logging {
                switched_at = Some(a.log.switch_now());
            }
        },
    );
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            if enable {
                stop(shared);
                let _ = disk.remove(&layout.path(&incr));
            }
            return Err(e.to_string());
        }
    };
    // The base's FUNCTION libraries were read before its instant: if one changed in between,
    // the base would miss it (its FUNCTION command is in the old incremental file).
    let sorted = |mut v: Vec<Vec<u8>>| {
        v.sort();
        v
    };
    if functions_at_switch.map(sorted) != Some(sorted(job.functions.clone())) {
        let _ = disk.remove(&layout.path(&base));
        if enable {
            stop(shared);
            let _ = disk.remove(&layout.path(&incr));
        }
        a.scheduled.store(true, Ordering::Relaxed);
        return Err("a FUNCTION library changed as the rewrite started; it runs again".into());
    }
    let new = Manifest { base: Some(base.clone()), incrs: vec![incr.clone()] };
    if let Err(e) = layout.write_manifest(&*disk, &new) {
        let _ = disk.remove(&layout.path(&base));
        if enable {
            stop(shared);
            let _ = disk.remove(&layout.path(&incr));
        }
        return Err(format!("cannot write the manifest: {e}"));
    }
    *a.manifest.lock() = new;
    for part in old.base.iter().chain(old.incrs.iter()) {
        if part.name != incr.name && part.name != base.name {
            let _ = disk.remove(&layout.path(part));
        }
    }
    let base_bytes = std::fs::metadata(layout.path(&base)).map_or(written.bytes, |m| m.len());
    a.base_bytes.store(base_bytes, Ordering::Relaxed);
    a.older_incr_bytes.store(0, Ordering::Relaxed);
    a.size_at_rewrite.store(base_bytes, Ordering::Relaxed);
    if let Some(at) = switched_at {
        a.log.recovered(at);
    }
    log_notice!(
        "Append-only log rewrite done: {} keys, {base_bytes} bytes of base in {} ms",
        written.keys,
        written.millis
    );
    Ok(())
}

/// BGREWRITEAOF
pub fn bgrewriteaof_command(shared: &Shared, s: &mut Session, in_exec: bool) -> CmdResult {
    if shared.aof.rewriting() {
        return Err(CmdError::fixed("ERR Background append only file rewriting already in progress"));
    }
    if shared.persistence.in_progress() || in_exec {
        shared.aof.scheduled.store(true, Ordering::Relaxed);
        s.out.simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    let Some(shared) = shared.handle() else { return Err(CmdError::fixed("ERR")) };
    match start_background(&shared, "BGREWRITEAOF") {
        Ok(true) => s.out.simple("Background append only file rewriting started"),
        Ok(false) => {
            shared.aof.scheduled.store(true, Ordering::Relaxed);
            s.out.simple("Background append only file rewriting scheduled");
        }
        Err(e) => {
            log_warning!("BGREWRITEAOF failed: {e}");
            return Err(CmdError::fixed(
                "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.",
            ));
        }
    }
    Ok(())
}

/// Reacts to CONFIG SET of `appendonly` / `appendfsync`.
pub fn settings_changed(shared: &Shared, old: &Settings, new: &Settings) {
    if old.appendfsync != new.appendfsync {
        shared.aof.log.set_policy(new.appendfsync);
    }
    if old.appendonly == new.appendonly {
        return;
    }
    if new.appendonly {
        shared.aof.pending_enable.store(true, Ordering::Relaxed);
        shared.aof.scheduled.store(true, Ordering::Relaxed);
    } else {
        shared.aof.pending_enable.store(false, Ordering::Relaxed);
        stop(shared);
        log_notice!("Append-only log turned off (its files are kept)");
    }
}

/// The cron's part: reports write errors and their recovery, starts scheduled and automatic
/// rewrites, and a rewrite after a failed fsync (the only way to know the data is on disk).
pub fn cron(shared: &Arc<Shared>, settings: &Settings) {
    let a = &shared.aof;
    let err = a.error();
    {
        let mut reported = a.reported.lock();
        if *reported != err {
            match &err {
                Some(e) => log_warning!(
                    "Append-only log: {e}. Writes are refused with MISCONF until the log can be written again (reads keep working); retrying every second. Check the disk (space, permissions, health)."
                ),
                None => log_notice!("Append-only log: writing works again; writes are accepted"),
            }
            *reported = err.clone();
        }
    }
    if a.rewriting() || shared.persistence.in_progress() {
        return;
    }
    let now = unix_ms();
    let retry_ok = a.last_rewrite_ok.load(Ordering::Relaxed)
        || now - a.last_attempt_ms.load(Ordering::Relaxed) >= REWRITE_RETRY_MS;
    let enabling = settings.appendonly && a.pending_enable.load(Ordering::Relaxed);
    let scheduled = a.scheduled.swap(false, Ordering::Relaxed);
    let why: Option<&'static str> = if enabling && (retry_ok || scheduled) {
        Some("appendonly turned on")
    } else if scheduled {
        Some("scheduled")
    } else if a.active() && a.log.status().sync_failed && retry_ok {
        Some("an fsync failed; a new base makes the data durable again")
    } else if a.active() && retry_ok && settings.auto_aof_rewrite_percentage > 0 {
        let size = a.current_size();
        let base = a.size_at_rewrite.load(Ordering::Relaxed).max(1);
        let grown = size.saturating_sub(base) * 100 / base;
        (size >= settings.auto_aof_rewrite_min_size && grown >= settings.auto_aof_rewrite_percentage)
            .then_some("the log grew past auto-aof-rewrite-percentage")
    } else {
        None
    };
    if let Some(why) = why {
        if let Err(e) = start_background(shared, why) {
            log_warning!("{e}");
        }
    }
}

/// The write gate: MISCONF while the log cannot be written (unless
/// `stop-writes-on-aof-error no`).
pub fn misconf(shared: &Shared, settings: &Settings) -> Option<CmdError> {
    if !settings.stop_writes_on_aof_error || !shared.aof.active() {
        return None;
    }
    let e = shared.aof.error()?;
    let text = e.split_once(": ").map_or(e.as_str(), |(_, t)| t).to_string();
    Some(CmdError::new(format!("{MISCONF_PREFIX}{text}")))
}

/// INFO persistence's `aof_*` fields, in Redis's order.
pub fn info_fields(shared: &Shared, out: &mut String) {
    use std::fmt::Write;
    let a = &shared.aof;
    let started = a.rewrite_started_ms.load(Ordering::Relaxed);
    let current = if a.rewriting() && started > 0 { (unix_ms() - started) / 1000 } else { -1 };
    let write_ok = a.error().is_none();
    let _ = write!(
        out,
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{current}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        a.active() as u8,
        a.rewriting() as u8,
        a.scheduled.load(Ordering::Relaxed) as u8,
        a.last_rewrite_secs.load(Ordering::Relaxed),
        if a.last_rewrite_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
        a.rewrites.load(Ordering::Relaxed),
        a.consecutive_failures.load(Ordering::Relaxed),
        if write_ok { "ok" } else { "err" },
    );
    if a.active() {
        let st = a.log.status();
        let _ = write!(
            out,
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\naof_offset:{}\r\naof_durable_offset:{}\r\naof_last_fsync_usec:{}\r\naof_max_fsync_usec:{}\r\naof_fsyncs:{}\r\n",
            a.current_size(),
            a.size_at_rewrite.load(Ordering::Relaxed),
            a.scheduled.load(Ordering::Relaxed) as u8,
            a.log.buffered(),
            a.log.appended(),
            a.log.durable(),
            st.last_sync_us,
            st.max_sync_us,
            st.syncs,
        );
    }
}

/// `redoubt-server check-aof [--fix] PATH`: checks a log (its directory or manifest, or
/// one incremental file) as loading would; with `--fix`, cuts a damaged incremental file
/// after its last whole command. Returns the report and whether it is OK.
pub fn check_command(path: &std::path::Path, fix: bool) -> (String, bool) {
    use std::fmt::Write;
    let disk = persist::disk::OsDisk;
    let mut out = String::new();
    let files: Vec<(PathBuf, bool)> = if path.is_dir() || path.extension().is_some_and(|e| e == "manifest") {
        let (dir, name) = if path.is_dir() {
            let Some(m) = std::fs::read_dir(path).ok().and_then(|d| {
                d.flatten().map(|e| e.path()).find(|p| {
                    p.extension().is_some_and(|e| e == "manifest")
                        && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("temp-"))
                })
            }) else {
                return (format!("{}: no manifest in this directory\n", path.display()), false);
            };
            (path.to_path_buf(), m.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
        } else {
            let dir = path.parent().map(PathBuf::from).unwrap_or_default();
            (dir, path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
        };
        let layout = Layout { dir, name };
        let m = match layout.read_manifest(&disk) {
            Ok(Some(m)) => m,
            Ok(None) => return (format!("{}: no manifest\n", layout.manifest_path().display()), false),
            Err(e) => return (format!("manifest: {e}\nDAMAGED\n"), false),
        };
        let _ = writeln!(
            out,
            "manifest {}: {} base, {} incremental",
            layout.manifest_path().display(),
            m.base.iter().count(),
            m.incrs.len()
        );
        m.base.iter().map(|b| (layout.path(b), true)).chain(m.incrs.iter().map(|i| (layout.path(i), false))).collect()
    } else {
        let base = path.to_string_lossy().ends_with(".rdb");
        vec![(path.to_path_buf(), base)]
    };
    let mut ok = true;
    for (file, base) in files {
        if base {
            let (report, err) = persist::load::check(&disk, &file, unix_ms());
            let keys: u64 = report.keys.values().sum();
            let _ = writeln!(out, "base {}: {keys} keys", file.display());
            if let Some(e) = err {
                let _ = writeln!(out, "  DAMAGED: {e} (a base file cannot be repaired; restore a good copy)");
                ok = false;
            }
            continue;
        }
        let total = std::fs::metadata(&file).map_or(0, |m| m.len());
        let Ok(src) = disk.open(&file) else {
            let _ = writeln!(out, "{}: cannot open", file.display());
            ok = false;
            continue;
        };
        use persist::disk::Disk;
        let c = persist::aof::check_incr(std::io::BufReader::new(src), total);
        let _ =
            writeln!(out, "incremental {}: {} commands in {} of {} bytes", file.display(), c.commands, c.valid, total);
        if let Some(p) = c.problem {
            let _ = writeln!(out, "  DAMAGED: {p}");
            if fix {
                match persist::aof::truncate_tail(&disk, &file, c.valid) {
                    Ok(cut) => {
                        let _ = writeln!(
                            out,
                            "  FIXED: cut {cut} bytes after byte {}, keeping every whole command before it",
                            c.valid
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(out, "  cannot fix: {e}");
                        ok = false;
                    }
                }
            } else {
                let _ = writeln!(
                    out,
                    "  run with --fix to cut the file after byte {} ({} bytes would go)",
                    c.valid,
                    total - c.valid
                );
                ok = false;
            }
        }
    }
    out.push_str(if ok { "OK\n" } else { "DAMAGED\n" });
    (out, ok)
}
