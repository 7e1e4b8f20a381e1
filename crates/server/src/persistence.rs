//! Snapshots as the server runs them: SAVE, BGSAVE, the `save` schedule, the save at
//! shutdown, loading at startup, the MISCONF gate, and INFO persistence's figures.
//!
//! A snapshot runs on its own thread ("snapshot") and never blocks clients (see
//! `persist::snapshot`); at most one runs at a time (`in_progress`). SAVE runs the same
//! snapshot and answers when it is on disk (its worker waits; the others keep serving). A failed snapshot is
//! logged with what failed and retried by the schedule after [`RETRY_DELAY_MS`], as Redis
//! does; while the last one failed, writes get MISCONF if `stop-writes-on-bgsave-error` is
//! on and `save` points are set. Reads, PING and INFO keep answering.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use commands::{CmdError, CmdResult};
use parking_lot::{Condvar, Mutex};
use persist::disk::Disk;
use persist::snapshot::{AccessData, Job, Progress, SaveError};

use crate::config::Settings;
use crate::session::Session;
use crate::{log_notice, log_warning, unix_ms, Shared};

/// After a failed snapshot, the schedule waits this long before trying again (Redis's
/// `CONFIG_BGSAVE_RETRY_DELAY`).
pub const RETRY_DELAY_MS: i64 = 5_000;

/// Redis's text for writes refused after a failed snapshot.
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Snapshot state shared by every thread.
pub struct Persistence {
    pub disk: Arc<dyn Disk>,
    /// The same disk, to adjust `fsync-delay-ms`.
    delayed: Arc<persist::disk::DelayedDisk>,
    in_progress: AtomicBool,
    /// A BGSAVE inside a transaction asked for a snapshot; the cron starts it.
    scheduled: AtomicBool,
    pub progress: Progress,
    /// Keys in the keyspace when the running snapshot started (its expected total).
    total_keys: AtomicU64,
    last_ok: AtomicBool,
    /// Unix ms of the last attempt's start (for the retry delay).
    last_attempt_ms: AtomicI64,
    /// Seconds the last snapshot took (-1 before the first).
    last_secs: AtomicI64,
    /// Unix ms when the running snapshot started (0 when none runs).
    started_ms: AtomicI64,
    saves: AtomicU64,
    /// The dirty counter when the last successful snapshot started.
    dirty_at_save: AtomicU64,
    /// Number of finished snapshots, with a condition variable SAVE-like waiters use.
    finished: Mutex<u64>,
    done: Condvar,
    /// What the last load found (INFO's `rdb_last_load_keys_*`).
    pub loaded_keys: AtomicU64,
    pub loaded_expired: AtomicU64,
    /// Startup loading: whether it runs (commands without the `loading` flag get -LOADING),
    /// when it started (unix seconds), the file's size and the bytes read so far.
    loading: AtomicBool,
    loading_since: AtomicI64,
    loading_total: AtomicU64,
    loading_read: AtomicU64,
}

impl Persistence {
    pub fn new(disk: Arc<persist::disk::DelayedDisk>) -> Persistence {
        Persistence {
            disk: disk.clone(),
            delayed: disk,
            in_progress: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            progress: Progress::default(),
            total_keys: AtomicU64::new(0),
            last_ok: AtomicBool::new(true),
            last_attempt_ms: AtomicI64::new(0),
            last_secs: AtomicI64::new(-1),
            started_ms: AtomicI64::new(0),
            saves: AtomicU64::new(0),
            dirty_at_save: AtomicU64::new(0),
            finished: Mutex::new(0),
            done: Condvar::new(),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
            loading: AtomicBool::new(false),
            loading_since: AtomicI64::new(0),
            loading_total: AtomicU64::new(0),
            loading_read: AtomicU64::new(0),
        }
    }

    /// `fsync-delay-ms`: every fsync first waits this long (testing slow disks).
    pub fn set_fsync_delay_ms(&self, ms: u64) {
        self.delayed.set_delay_ms(ms);
    }

    /// Whether the snapshot is still loading at startup.
    pub fn loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    /// Startup loading begins (before the workers accept connections): records when, and the
    /// size of the file about to be loaded.
    pub fn begin_loading(&self, settings: &Settings) {
        let size = std::fs::metadata(settings.dir.join(&settings.dbfilename)).map_or(0, |m| m.len());
        self.loading_total.store(size, Ordering::Relaxed);
        self.loading_read.store(0, Ordering::Relaxed);
        self.loading_since.store(unix_ms() / 1000, Ordering::Relaxed);
        self.loading.store(true, Ordering::Release);
    }

    /// How far the load has come: `read` of `total` bytes (INFO's `loading_*` fields).
    pub fn loading_progress(&self, read: u64, total: u64) {
        self.loading_total.store(total, Ordering::Relaxed);
        self.loading_read.store(read, Ordering::Relaxed);
    }

    /// Startup loading is over (done, failed, or there was nothing to load).
    pub fn end_loading(&self) {
        self.loading.store(false, Ordering::Release);
    }

    /// Whether a snapshot is running.
    pub fn in_progress(&self) -> bool {
        self.in_progress.load(Ordering::Acquire)
    }

    /// Whether the last snapshot succeeded.
    pub fn last_ok(&self) -> bool {
        self.last_ok.load(Ordering::Relaxed)
    }
}

/// Redis's reply to commands that cannot run while the dataset loads.
pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";

/// The writes gate: MISCONF while the last snapshot failed, if so configured.
pub fn misconf(shared: &Shared, settings: &Settings) -> Option<CmdError> {
    let refuse =
        settings.stop_writes_on_bgsave_error && !settings.save_points.is_empty() && !shared.persistence.last_ok();
    if refuse {
        return Some(CmdError::fixed(MISCONF));
    }
    crate::aof::misconf(shared, settings)
}

fn dirty(shared: &Shared) -> u64 {
    shared.stats.totals.lock().dirty
}

/// The snapshot job for the current settings and libraries.
pub(crate) fn job(shared: &Shared, settings: &Settings) -> Job {
    let cmd = settings.command_settings();
    let policy = settings.maxmemory_policy.as_str();
    let access = match settings.access {
        store::access::Mode::Lfu { decay_minutes, .. } if policy.ends_with("lfu") => AccessData::Freq { decay_minutes },
        _ if policy.ends_with("lru") => AccessData::Idle,
        _ => AccessData::None,
    };
    let now = unix_ms();
    let aux = vec![
        ("redis-ver".to_string(), crate::REDIS_COMPAT_VERSION.to_string()),
        ("redis-bits".to_string(), "64".to_string()),
        ("ctime".to_string(), (now / 1000).to_string()),
        ("used-mem".to_string(), store::memory::used().to_string()),
        ("aof-base".to_string(), "0".to_string()),
        ("redoubt-ver".to_string(), crate::VERSION.to_string()),
    ];
    // A snapshot's copies may use up to 2% of the dataset's memory before it takes CPU time
    // from clients to catch up (persist::snapshot::Job::queue_limit).
    let queue_limit = (store::memory::used() / 50) as usize;
    Job { settings: cmd, aux, functions: shared.functions.codes(), access, databases: settings.databases, queue_limit }
}

/// Claims the keyspace walk (a snapshot or a log rewrite); false if it is taken.
pub(crate) fn claim(shared: &Shared) -> bool {
    let p = &shared.persistence;
    if p.in_progress.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return false;
    }
    let now = unix_ms();
    p.started_ms.store(now, Ordering::Relaxed);
    p.last_attempt_ms.store(now, Ordering::Relaxed);
    p.progress.keys.store(0, Ordering::Relaxed);
    p.progress.bytes.store(0, Ordering::Relaxed);
    p.total_keys.store(0, Ordering::Relaxed);
    true
}

/// Runs a claimed snapshot on this thread and records its outcome.
fn run(shared: &Shared, settings: &Settings, why: &str) -> Result<(), SaveError> {
    let p = &shared.persistence;
    let dirty_before = dirty(shared);
    let job = job(shared, settings);
    let keys: usize = crate::info::keyspace_totals(shared, None).dbs.iter().map(|d| d.0).sum();
    p.total_keys.store(keys as u64, Ordering::Relaxed);
    let dir = settings.dir.clone();
    log_notice!("Snapshot started ({why}): writing {}", dir.join(&settings.dbfilename).display());
    let result = persist::snapshot::write(
        &*p.disk,
        &shared.keyspace,
        &dir,
        &settings.dbfilename,
        &job,
        &p.progress,
        unix_ms(),
        &mut || {},
    );
    let secs = (unix_ms() - p.started_ms.load(Ordering::Relaxed)) / 1000;
    match &result {
        Ok(w) => {
            log_notice!(
                "Snapshot done: {} keys, {} bytes in {} ms (copies waiting to be written peaked at {} bytes)",
                w.keys,
                w.bytes,
                w.millis,
                w.peak_queued
            );
            p.dirty_at_save.store(dirty_before, Ordering::Relaxed);
            shared.lastsave.store(unix_ms() / 1000, Ordering::Relaxed);
            if !p.last_ok.swap(true, Ordering::Relaxed) {
                log_notice!("Snapshots work again: writes are accepted");
            }
            p.saves.fetch_add(1, Ordering::Relaxed);
        }
        Err(SaveError::Abandoned) => {
            log_notice!(
                "Snapshot discarded: a database was flushed or swapped while it ran; the next one will be whole"
            );
        }
        Err(e) => {
            log_warning!(
                "Snapshot failed: {e}. The previous snapshot file is unchanged; retrying in {} s. Check the disk (space, permissions, `dir`).",
                RETRY_DELAY_MS / 1000
            );
            p.last_ok.store(false, Ordering::Relaxed);
        }
    }
    p.last_secs.store(secs, Ordering::Relaxed);
    release(shared);
    result.map(|_| ())
}

/// Gives the keyspace walk back (see [`claim`]) and wakes whoever waits for it.
pub(crate) fn release(shared: &Shared) {
    let p = &shared.persistence;
    p.started_ms.store(0, Ordering::Relaxed);
    p.in_progress.store(false, Ordering::Release);
    *p.finished.lock() += 1;
    p.done.notify_all();
}

/// Waits (up to 100 ms) for the keyspace walk to be released.
pub(crate) fn wait_for_walk(shared: &Shared) {
    let p = &shared.persistence;
    let mut n = p.finished.lock();
    if p.in_progress() {
        p.done.wait_for(&mut n, std::time::Duration::from_millis(100));
    }
}

/// Starts a snapshot on its own thread. False if one is already running.
pub fn start_background(shared: &Arc<Shared>, why: &'static str) -> Result<bool, String> {
    if !claim(shared) {
        return Ok(false);
    }
    let settings = shared.settings();
    let sh = shared.clone();
    let spawned = store::memory::spawn_counted("snapshot", move || {
        let _ = run(&sh, &settings, why);
    });
    if let Err(e) = spawned {
        let p = &shared.persistence;
        p.in_progress.store(false, Ordering::Release);
        p.last_ok.store(false, Ordering::Relaxed);
        return Err(format!("cannot start the snapshot thread: {e}"));
    }
    Ok(true)
}

/// Saves and waits for the result (SAVE, shutdown), after a running background snapshot ends.
pub fn save_now(shared: &Shared, why: &str) -> Result<(), String> {
    let settings = shared.settings();
    loop {
        if claim(shared) {
            // On its own (lower-priority) thread like BGSAVE; this thread only waits.
            return std::thread::scope(|scope| {
                let worker = std::thread::Builder::new().name("snapshot".into()).spawn_scoped(scope, || {
                    store::memory::register_thread();
                    let result = run(shared, &settings, why).map_err(|e| e.to_string());
                    store::memory::retire_thread();
                    result
                });
                match worker {
                    Ok(handle) => handle.join().unwrap_or_else(|_| Err("the snapshot thread panicked".into())),
                    Err(e) => {
                        let p = &shared.persistence;
                        p.in_progress.store(false, Ordering::Release);
                        Err(format!("cannot start the snapshot thread: {e}"))
                    }
                }
            });
        }
        wait_for_walk(shared);
    }
}

/// SAVE
pub fn save_command(shared: &Shared, s: &mut Session) -> CmdResult {
    if shared.persistence.in_progress() && !shared.aof.rewriting() {
        return Err(CmdError::fixed("ERR Background save already in progress"));
    }
    match save_now(shared, "SAVE") {
        Ok(()) => s.out.ok(),
        Err(_) => return Err(CmdError::fixed("ERR")),
    }
    Ok(())
}

/// BGSAVE [SCHEDULE]. Inside a transaction (`in_exec`) the snapshot is scheduled for the
/// cron, as Redis does. SCHEDULE only matters while another kind of background job runs, and
/// snapshots are the only kind so far.
pub fn bgsave_command(shared: &Shared, s: &mut Session, argv: &[&[u8]], in_exec: bool) -> CmdResult {
    match argv.len() {
        1 => {}
        2 if commands::args::is(argv[1], "schedule") => {}
        _ => return Err(commands::error::SYNTAX),
    }
    if shared.persistence.in_progress() && shared.aof.rewriting() {
        if argv.len() == 2 {
            shared.persistence.scheduled.store(true, Ordering::Relaxed);
            s.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::fixed("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."));
    }
    if shared.persistence.in_progress() {
        return Err(CmdError::fixed("ERR Background save already in progress"));
    }
    if in_exec {
        shared.persistence.scheduled.store(true, Ordering::Relaxed);
        s.out.simple("Background saving scheduled");
        return Ok(());
    }
    let Some(shared) = shared.handle() else { return Err(CmdError::fixed("ERR")) };
    match start_background(&shared, "BGSAVE") {
        Ok(true) => s.out.simple("Background saving started"),
        Ok(false) => return Err(CmdError::fixed("ERR Background save already in progress")),
        Err(e) => {
            log_warning!("BGSAVE failed: {e}");
            return Err(CmdError::fixed("ERR"));
        }
    }
    Ok(())
}

/// The cron's check: starts a snapshot when a `save` point is reached (or one was scheduled),
/// honouring the retry delay after a failure.
pub fn cron(shared: &Arc<Shared>, settings: &Settings) {
    let p = &shared.persistence;
    if p.in_progress() {
        return;
    }
    let now = unix_ms();
    let since_save = now / 1000 - shared.lastsave.load(Ordering::Relaxed);
    let changes = dirty(shared).saturating_sub(p.dirty_at_save.load(Ordering::Relaxed));
    let retry_ok = p.last_ok() || now - p.last_attempt_ms.load(Ordering::Relaxed) >= RETRY_DELAY_MS;
    let due = settings.save_points.iter().any(|&(secs, n)| changes >= n && since_save >= secs as i64);
    if (due && retry_ok) || p.scheduled.swap(false, Ordering::Relaxed) {
        if let Err(e) = start_background(shared, "save point reached") {
            log_warning!("{e}");
        }
    }
}

/// The save before the server stops: with `save` points set (or SHUTDOWN SAVE) and not
/// NOSAVE, a final snapshot, synchronously. An error means the server should keep running.
pub fn save_before_shutdown(shared: &Shared, save: bool, nosave: bool) -> Result<(), String> {
    let saved = final_save(shared, save, nosave);
    if saved.is_ok() && shared.aof.active() {
        log_notice!("Writing and syncing the append-only log before exiting.");
        crate::aof::stop(shared);
    }
    saved
}

fn final_save(shared: &Shared, save: bool, nosave: bool) -> Result<(), String> {
    let settings = shared.settings();
    let wanted = save || !settings.save_points.is_empty();
    if nosave || !wanted {
        return Ok(());
    }
    log_notice!("Saving the final snapshot before exiting.");
    save_now(shared, "shutdown").map_err(|e| {
        log_warning!("Error trying to save the DB, can't exit: {e}");
        e
    })?;
    log_notice!("DB saved on disk");
    Ok(())
}

/// Loads the snapshot file at startup, if there is one. An unreadable or damaged file stops
/// the server: starting empty would lose the data at the next snapshot.
pub fn load_at_startup(shared: &Shared, settings: &Settings) -> Result<(), String> {
    let path: PathBuf = settings.dir.join(&settings.dbfilename);
    let started = std::time::Instant::now();
    for stale in persist::snapshot::remove_stale_temp_files(&*shared.persistence.disk, &settings.dir) {
        log_notice!(
            "Removed {}: the temporary file of a snapshot whose server stopped before finishing it",
            stale.display()
        );
    }
    let cmd = settings.command_settings();
    let p = &shared.persistence;
    p.loading_progress(0, std::fs::metadata(&path).map_or(0, |m| m.len()));
    let progress = load_progress(p, &path, settings);
    let loaded = persist::load::load(&*p.disk, &path, &shared.keyspace, &cmd, unix_ms(), progress)
        .map_err(|e| load_error(&path, e))?;
    let Some(loaded) = loaded else { return Ok(()) };
    for code in &loaded.functions {
        shared
            .functions
            .install(code, false)
            .map_err(|e| format!("{}: a FUNCTION library in the file failed to load: {}", path.display(), e.text()))?;
    }
    p.loaded_keys.store(loaded.keys, Ordering::Relaxed);
    p.loaded_expired.store(loaded.expired, Ordering::Relaxed);
    log_notice!(
        "Loaded {}: {} keys ({} already expired, skipped), {} libraries, {} bytes in {} ms",
        path.display(),
        loaded.keys,
        loaded.expired,
        loaded.functions.len(),
        loaded.bytes,
        started.elapsed().as_millis()
    );
    Ok(())
}

/// The progress callback of a file load: INFO's `loading_*` fields, a log line every 2 s, and
/// the `key-load-delay` pause per key.
pub(crate) fn load_progress<'a>(p: &'a Persistence, path: &'a Path, settings: &Settings) -> impl FnMut(u64, u64) + 'a {
    let delay = std::time::Duration::from_micros(settings.key_load_delay_us);
    let mut last_log = std::time::Instant::now();
    move |bytes: u64, keys: u64| {
        p.loading_read.store(bytes, Ordering::Relaxed);
        if last_log.elapsed() >= std::time::Duration::from_secs(2) {
            last_log = std::time::Instant::now();
            let total = p.loading_total.load(Ordering::Relaxed).max(1);
            log_notice!(
                "Loading {}: {keys} keys, {:.1}% of {total} bytes",
                path.display(),
                bytes as f64 * 100.0 / total as f64
            );
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }
}

fn load_error(path: &Path, e: persist::load::LoadError) -> String {
    format!("cannot load {}: {e}. Move the file away to start empty, or restore a good copy.", path.display())
}

/// INFO persistence's snapshot fields, in Redis's order (after `async_loading`).
pub fn info_fields(shared: &Shared, out: &mut String) {
    use std::fmt::Write;
    let p = &shared.persistence;
    let running = p.in_progress() && !shared.aof.rewriting();
    let started = p.started_ms.load(Ordering::Relaxed);
    let current_secs = if running && started > 0 { (unix_ms() - started) / 1000 } else { -1 };
    let (processed, total) =
        if running { (p.progress.keys.load(Ordering::Relaxed), p.total_keys.load(Ordering::Relaxed)) } else { (0, 0) };
    let changes = dirty(shared).saturating_sub(p.dirty_at_save.load(Ordering::Relaxed));
    let _ = write!(
        out,
        "current_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:{processed}\r\ncurrent_save_keys_total:{total}\r\nrdb_changes_since_last_save:{changes}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current_secs}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\n",
        running as u8,
        shared.lastsave.load(Ordering::Relaxed),
        if p.last_ok() { "ok" } else { "err" },
        p.last_secs.load(Ordering::Relaxed),
        p.saves.load(Ordering::Relaxed),
        p.loaded_expired.load(Ordering::Relaxed),
        p.loaded_keys.load(Ordering::Relaxed),
    );
}

/// INFO persistence's loading fields, shown at the end of the section while loading.
pub fn info_loading(shared: &Shared, out: &mut String) {
    use std::fmt::Write;
    let p = &shared.persistence;
    if !p.loading() {
        return;
    }
    let since = p.loading_since.load(Ordering::Relaxed);
    let (total, read) = (p.loading_total.load(Ordering::Relaxed), p.loading_read.load(Ordering::Relaxed));
    let perc = if total > 0 { read as f64 * 100.0 / total as f64 } else { 0.0 };
    let elapsed = (unix_ms() / 1000 - since).max(0);
    let eta = if read > 0 { (elapsed as f64 * (total.saturating_sub(read)) as f64 / read as f64) as i64 } else { 1 };
    let _ = write!(
        out,
        "loading_start_time:{since}\r\nloading_total_bytes:{total}\r\nloading_rdb_used_mem:0\r\nloading_loaded_bytes:{read}\r\nloading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\n"
    );
}
