//! The server: listeners, worker threads, connections, command dispatch, configuration,
//! introspection (INFO, CLIENT, CONFIG, COMMAND, SLOWLOG, MONITOR) and shutdown.
//!
//! Threads (see docs/architecture.md): one worker per core, each running its own event loop
//! over its own `SO_REUSEPORT` listener and the connections the kernel hands it; a cron thread
//! (active expiry, statistics); the main thread, which waits for signals. Workers share only
//! the keyspace (sharded locks) and the [`Shared`] state below.

pub mod admin;
pub mod aof;
pub mod blocking;
pub mod clients;
pub mod config;
mod cron;
mod dispatch;
pub mod evict;
pub mod guardrails;
mod info;
pub mod log;
pub mod lua;
mod lua_bit;
mod lua_cjson;
mod lua_cmsgpack;
mod lua_functions;
mod lua_sandbox;
mod lua_struct;
mod memory_cmds;
mod multi;
pub mod namespaces;
pub mod notify;
pub mod persistence;
pub mod pubsub;
mod server_cmds;
mod session;
mod slowlog;
mod stats;
pub mod webhook;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use store::Keyspace;

use crate::clients::Registry;
use crate::config::{Config, Settings};
use crate::slowlog::Slowlog;
use crate::stats::GlobalStats;
use crate::worker::WorkerHandle;

/// The Redis version we report (`redis_version`, HELLO): clients gate features on it.
pub const REDIS_COMPAT_VERSION: &str = "7.2.4";
/// Redoubt's own version (`redoubt_version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// State shared by every thread.
pub struct Shared {
    pub keyspace: Keyspace,
    pub config: Mutex<Config>,
    settings: RwLock<Arc<Settings>>,
    /// Bumped whenever `settings` changes, so workers can refresh their cached copy cheaply.
    pub settings_gen: AtomicU64,
    pub clients: Registry,
    pub stats: GlobalStats,
    pub slowlog: Mutex<Slowlog>,
    pub workers: RwLock<Vec<WorkerHandle>>,
    pub started: Instant,
    pub started_unix: i64,
    pub run_id: String,
    pub shutdown: AtomicBool,
    /// Writes since the last save (the `dirty` counter).
    pub dirty: AtomicU64,
    pub lastsave: AtomicI64,
    /// Address the workers listen on (the real port when configured with port 0).
    pub listen_addrs: RwLock<Vec<SocketAddr>>,
    pub active_expire: AtomicBool,
    /// CLIENT PAUSE: unix ms when the pause ends (0 = no pause), and whether it holds every
    /// command (ALL) or only writes (WRITE).
    pub pause_end_ms: AtomicI64,
    pub pause_all: AtomicBool,
    /// Clients whose next command waits for a pause to end (counted as blocked in INFO).
    pub paused_clients: std::sync::atomic::AtomicUsize,
    /// Keys under WATCH by some client.
    pub watches: multi::Watches,
    /// Pub/Sub subscriptions.
    pub pubsub: pubsub::Registry,
    /// Clients blocked in BLPOP and friends.
    pub blocking: blocking::Registry,
    /// The namespace configuration changed and must be installed after the current command.
    pub namespaces_pending: AtomicBool,
    /// Lua scripts by SHA1.
    pub scripts: lua::Scripts,
    /// FUNCTION libraries.
    pub functions: lua_functions::Functions,
    /// Snapshots: the disk, the running one, the last outcome.
    pub persistence: persistence::Persistence,
    /// The append-only log.
    pub aof: aof::Aof,
    /// Time series, forecasts, alerts and their webhooks.
    pub guardrails: guardrails::Guardrails,
    /// Where the admin HTTP listener listens, once it does.
    pub admin_addr: RwLock<Option<SocketAddr>>,
    /// This state's own handle, for work a command hands to a new thread (BGSAVE).
    me: std::sync::OnceLock<std::sync::Weak<Shared>>,
}

impl Shared {
    fn new(config: Config) -> Shared {
        let settings = Settings::from_config(&config);
        let fsync = settings.appendfsync;
        let fsync_delay_ms = settings.fsync_delay_ms;
        let guard_config = settings.guard.clone();
        let now = unix_ms();
        Shared {
            keyspace: Keyspace::new(settings.databases),
            config: Mutex::new(config),
            settings: RwLock::new(Arc::new(settings)),
            settings_gen: AtomicU64::new(1),
            clients: Registry::default(),
            stats: GlobalStats::default(),
            slowlog: Mutex::new(Slowlog::default()),
            workers: RwLock::new(Vec::new()),
            started: Instant::now(),
            started_unix: now / 1000,
            run_id: run_id(),
            shutdown: AtomicBool::new(false),
            dirty: AtomicU64::new(0),
            lastsave: AtomicI64::new(now / 1000),
            listen_addrs: RwLock::new(Vec::new()),
            active_expire: AtomicBool::new(true),
            pause_end_ms: AtomicI64::new(0),
            pause_all: AtomicBool::new(false),
            paused_clients: std::sync::atomic::AtomicUsize::new(0),
            watches: multi::Watches::default(),
            pubsub: pubsub::Registry::default(),
            blocking: blocking::Registry::default(),
            namespaces_pending: AtomicBool::new(false),
            scripts: lua::Scripts::default(),
            functions: lua_functions::Functions::default(),
            persistence: persistence::Persistence::new(Arc::new(persist::disk::DelayedDisk::new(fsync_delay_ms))),
            aof: aof::Aof::new(fsync),
            guardrails: guardrails::Guardrails::new(guard_config),
            admin_addr: RwLock::new(None),
            me: std::sync::OnceLock::new(),
        }
    }

    /// A counted handle to this state (it lives in an `Arc` from [`start`] on).
    pub fn handle(&self) -> Option<Arc<Shared>> {
        self.me.get().and_then(std::sync::Weak::upgrade)
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().clone()
    }

    /// Rebuilds the settings after a configuration change.
    pub fn reload_settings(&self) {
        let s = Settings::from_config(&self.config.lock());
        log::set_level(s.loglevel);
        record_events(s.notify_flags);
        record_access(&s);
        self.persistence.set_fsync_delay_ms(s.fsync_delay_ms);
        let old = std::mem::replace(&mut *self.settings.write(), Arc::new(s));
        aof::settings_changed(self, &old, &self.settings());
        self.settings_gen.fetch_add(1, Ordering::Release);
        // Installing namespaces locks every shard, so it waits until the running command
        // (which may hold some, inside EXEC) has finished.
        self.namespaces_pending.store(true, Ordering::Release);
    }

    /// Wakes every worker (after a change they must react to, such as the end of a pause).
    pub fn wake_workers(&self) {
        for w in self.workers.read().iter() {
            w.wake();
        }
    }

    /// Whether a CLIENT PAUSE is in effect at `now_ms`.
    pub fn pause_active(&self, now_ms: i64) -> bool {
        let end = self.pause_end_ms.load(Ordering::Relaxed);
        end != 0 && now_ms < end
    }

    /// Asks every worker to stop, then returns.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // A running script would keep its worker (and every shard) busy forever.
        self.scripts.stop_running();
        for w in self.workers.read().iter() {
            w.wake();
        }
    }
}

/// Milliseconds since the unix epoch.
pub fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Microseconds since the unix epoch.
pub fn unix_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

fn run_id() -> String {
    (0..40).map(|_| char::from_digit((store::random_u64() % 16) as u32, 16).unwrap_or('0')).collect()
}

/// A running server: its listening addresses and a way to stop it.
pub struct Running {
    pub shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The addresses the server accepts connections on.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.shared.listen_addrs.read().clone()
    }

    /// Blocks until the server has stopped (SHUTDOWN, a signal, or [`Shared::request_shutdown`]).
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Tells the keyspace which events it must record for `notify-keyspace-events`.
/// Tells the keyspace which access bookkeeping the eviction policy needs.
fn record_access(settings: &Settings) {
    store::access::set_auto(settings.access == store::access::Mode::Auto);
    store::mrc::set_enabled(settings.guard_mrc);
}

fn record_events(flags: u32) {
    use commands::notify::{wanted, EXPIRED, KEY_MISS, NEW};
    store::db::record_expired(wanted(flags, EXPIRED));
    store::journal::set_recording(wanted(flags, NEW), wanted(flags, KEY_MISS));
}

/// Starts the server's threads and returns once it accepts connections.
pub fn start(config: Config) -> Result<Running, String> {
    let shared = Arc::new(Shared::new(config));
    let _ = shared.me.set(Arc::downgrade(&shared));
    let settings = shared.settings();
    record_events(settings.notify_flags);
    record_access(&settings);
    store::mrc::set_max_rate(f64::from(settings.guard_mrc_sample_percent) / 100.0);
    // The starting thread's allocations (configuration, the keyspace's tables) count too.
    store::memory::register_thread();
    if settings.guard_mrc {
        store::mrc::GLOBAL.prepare();
    }
    namespaces::apply(&shared, &settings.namespaces);
    // Clients may connect while the snapshot loads: they get -LOADING (INFO shows progress).
    shared.persistence.begin_loading(&settings);
    let threads_wanted = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let listeners = worker::bind_listeners(&settings, threads_wanted)?;
    *shared.listen_addrs.write() = listeners.addrs.clone();
    let mut threads = Vec::new();
    let mut prepared = Vec::new();
    for (i, listener_set) in listeners.per_worker.into_iter().enumerate() {
        let (handle, worker) = worker::prepare(i, shared.clone(), listener_set)?;
        shared.workers.write().push(handle);
        prepared.push(worker);
    }
    for worker in prepared {
        threads.push(worker.start()?);
    }
    aof::install_waker(&shared);
    // The admin listener answers while the dataset loads: /healthz says the server is alive
    // (a long load must not look like a hang), /readyz that it is not ready yet.
    if let Some(t) = admin::start(&shared, &settings) {
        threads.push(t);
    }
    let loaded = aof::load_at_startup(&shared, &settings);
    shared.persistence.end_loading();
    if let Err(e) = loaded {
        shared.request_shutdown();
        return Err(e);
    }
    threads.push(cron::spawn(shared.clone())?);
    store::memory::publish();
    Ok(Running { shared, threads })
}
