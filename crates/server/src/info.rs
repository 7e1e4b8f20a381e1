//! INFO: renders the server's state in Redis's `# Section` / `field:value` format, and
//! CONFIG REWRITE.
//!
//! Field names and their order follow Redis 7.2 so tools that parse INFO (client libraries,
//! exporters, `redis-cli --stat`) work unchanged; Redoubt's own fields are prefixed
//! `redoubt_`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::config::{self, Config};
use crate::Shared;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "namespaces",
    "alerts",
    "forecast",
];
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "namespaces",
    "alerts",
    "forecast",
];

/// Totals gathered from the keyspace shards.
#[derive(Default)]
pub struct KeyspaceTotals {
    /// Per database: (keys, keys with TTL, estimated average TTL in ms).
    pub dbs: Vec<(usize, usize, i64)>,
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub dataset_bytes: usize,
    /// Per database: bytes of its tables' buckets.
    pub table_bytes: Vec<usize>,
}

/// Sums the per-shard counters, locking one shard at a time.
pub fn keyspace_totals(shared: &Shared, held: Option<&mut store::View<'_>>) -> KeyspaceTotals {
    let ks = &shared.keyspace;
    let mut acc = Totals::new(ks.databases());
    match held {
        // Inside EXEC, which already holds every shard it needs (all of them for INFO).
        Some(view) => view.shards_mut().for_each(|shard| acc.add(shard)),
        None => {
            for i in 0..store::keyspace::SHARDS {
                ks.lock_shard(i).shards_mut().for_each(|shard| acc.add(shard));
            }
        }
    }
    acc.finish()
}

/// Accumulates shard counters for [`keyspace_totals`].
struct Totals {
    t: KeyspaceTotals,
    /// Per database: (sum of avg_ttl × volatile keys, volatile keys).
    ttl_weight: Vec<(i128, i128)>,
}

impl Totals {
    fn new(databases: usize) -> Totals {
        Totals {
            t: KeyspaceTotals {
                dbs: vec![(0, 0, 0); databases],
                table_bytes: vec![0; databases],
                ..Default::default()
            },
            ttl_weight: vec![(0, 0); databases],
        }
    }

    fn add(&mut self, shard: &mut store::Shard) {
        for (n, db) in shard.dbs.iter().enumerate() {
            self.t.dbs[n].0 += db.len();
            self.t.dbs[n].1 += db.expires();
            self.ttl_weight[n].0 += db.avg_ttl as i128 * db.expires() as i128;
            self.ttl_weight[n].1 += db.expires() as i128;
            self.t.hits += db.hits;
            self.t.misses += db.misses;
            self.t.expired += db.expired;
            self.t.dataset_bytes += db.used_bytes();
            self.t.table_bytes[n] += db.table_bytes();
        }
    }

    fn finish(mut self) -> KeyspaceTotals {
        for (n, (sum, count)) in self.ttl_weight.into_iter().enumerate() {
            if count > 0 {
                self.t.dbs[n].2 = (sum / count) as i64;
            }
        }
        self.t
    }
}

/// Memory figures from the allocator and the kernel.
pub struct MemoryFigures {
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub rss: u64,
}

/// Reads jemalloc's statistics (after refreshing them) and the process RSS.
pub fn memory_figures() -> MemoryFigures {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|pages| pages * page_size())
        .unwrap_or(0);
    MemoryFigures {
        allocated: stats::allocated::read().unwrap_or(0) as u64,
        active: stats::active::read().unwrap_or(0) as u64,
        resident: stats::resident::read().unwrap_or(0) as u64,
        rss,
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// Redis's human-readable byte sizes (`1.50M`).
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    let units = [
        ("B", 1.0),
        ("K", 1024.0),
        ("M", 1024.0 * 1024.0),
        ("G", 1024.0f64.powi(3)),
        ("T", 1024.0f64.powi(4)),
        ("P", 1024.0f64.powi(5)),
    ];
    for w in units.windows(2) {
        if n < w[1].1 {
            return if w[0].0 == "B" { format!("{}B", n as u64) } else { format!("{:.2}{}", n / w[0].1, w[0].0) };
        }
    }
    format!("{:.2}P", n / units[5].1)
}

fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_stime), t(ru.ru_utime))
}

/// Which sections the arguments ask for.
fn selected(args: &[&[u8]]) -> Vec<&'static str> {
    if args.is_empty() {
        return DEFAULT_SECTIONS.to_vec();
    }
    let mut out: Vec<&'static str> = Vec::new();
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        let add: &[&'static str] = match a.as_str() {
            "default" => DEFAULT_SECTIONS,
            "all" | "everything" => ALL_SECTIONS,
            other => match ALL_SECTIONS.iter().find(|s| **s == other) {
                Some(s) => std::slice::from_ref(s),
                None => &[],
            },
        };
        for s in add {
            if !out.contains(s) {
                out.push(s);
            }
        }
    }
    ALL_SECTIONS.iter().filter(|s| out.contains(s)).copied().collect()
}

/// Renders INFO for the given section arguments.
pub fn render(shared: &Shared, args: &[&[u8]], held: Option<&mut store::View<'_>>) -> String {
    let mut sections = selected(args);
    // Namespaces have a section only when some are configured.
    if !store::namespace::enabled() {
        sections.retain(|s| *s != "namespaces");
    }
    let holding_shards = held.is_some();
    let ks = keyspace_totals(shared, held);
    let mut out = String::new();
    for (i, section) in sections.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        match *section {
            "server" => server(shared, &mut out),
            "clients" => clients(shared, &mut out),
            "memory" => memory(shared, &ks, &mut out),
            "persistence" => persistence(shared, &mut out),
            "stats" => stats(shared, &ks, &mut out),
            "replication" => replication(shared, &mut out),
            "cpu" => {
                let (sys, user) = cpu_times();
                let _ = write!(out, "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{sys:.6}\r\nused_cpu_user_main_thread:{user:.6}\r\n");
            }
            "modules" => out.push_str("# Modules\r\n"),
            "commandstats" => commandstats(shared, &mut out),
            "errorstats" => errorstats(shared, &mut out),
            "latencystats" => latencystats(shared, &mut out),
            "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
            "namespaces" => crate::namespaces::info_section(shared, &mut out, holding_shards),
            "alerts" => crate::guardrails::info_alerts(shared, &mut out),
            "forecast" => crate::guardrails::info_forecast(shared, &mut out, holding_shards),
            _ => keyspace(&ks, &mut out),
        }
    }
    out
}

fn server(shared: &Shared, out: &mut String) {
    let settings = shared.settings();
    let uptime = shared.started.elapsed().as_secs();
    let cfg = shared.config.lock();
    let config_file = cfg.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    drop(cfg);
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let port = shared.listen_addrs.read().first().map_or(settings.port, |a| a.port());
    let _ = write!(
        out,
        "# Server\r\nredis_version:{}\r\nredoubt_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:{}\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nredoubt_worker_threads:{}\r\nadmin_port:{}\r\n",
        crate::REDIS_COMPAT_VERSION,
        crate::VERSION,
        os_name(),
        usize::BITS,
        std::process::id(),
        shared.run_id,
        port,
        crate::unix_us(),
        uptime,
        uptime / 86_400,
        settings.hz,
        settings.hz,
        store::entry::lru_clock(crate::unix_ms()),
        exe,
        config_file,
        shared.workers.read().len(),
        shared.admin_addr.read().map_or(0, |a| a.port()),
    );
}

fn os_name() -> String {
    // SAFETY: uname fills the zeroed struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "Linux".into();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {}", field(&u.sysname), field(&u.release), field(&u.machine))
}

fn clients(shared: &Shared, out: &mut String) {
    let all = shared.clients.all();
    let max_in = all.iter().map(|c| c.qbuf_cap.load(Ordering::Relaxed)).max().unwrap_or(0);
    let max_out = all.iter().map(|c| c.omem.load(Ordering::Relaxed)).max().unwrap_or(0);
    let _ = write!(
        out,
        "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\nclient_recent_max_output_buffer:{}\r\nblocked_clients:{}\r\ntracking_clients:0\r\npubsub_clients:{}\r\nwatching_clients:{}\r\nclients_in_timeout_table:0\r\ntotal_watched_keys:{}\r\ntotal_blocking_keys:0\r\ntotal_blocking_keys_on_nokey:0\r\n",
        all.len(),
        shared.settings().maxclients,
        max_in,
        max_out,
        shared.paused_clients.load(Ordering::Relaxed) + shared.blocking.len(),
        all.iter()
            .filter(|c| c.subs.load(Ordering::Relaxed) + c.psubs.load(Ordering::Relaxed) + c.ssubs.load(Ordering::Relaxed) > 0)
            .count(),
        shared.watches.watching_clients(),
        shared.watches.len(),
    );
}

fn memory(shared: &Shared, ks: &KeyspaceTotals, out: &mut String) {
    let m = memory_figures();
    // used_memory is the server's own count (see `store::memory`), as Redis's is; the
    // allocator's figures, which include its caches, are the allocator_* fields.
    let used = store::memory::used();
    let settings = shared.settings();
    let peak = shared.stats.peak_memory.fetch_max(used, Ordering::Relaxed).max(used);
    let dataset = ks.dataset_bytes as u64;
    let overhead = used.saturating_sub(dataset);
    let total_system = total_system_memory();
    let frag = if used > 0 { m.rss as f64 / used as f64 } else { 0.0 };
    let _ = write!(
        out,
        "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{}\r\nused_memory_startup:{}\r\nused_memory_dataset:{}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{}\r\nallocator_active:{}\r\nallocator_resident:{}\r\ntotal_system_memory:{}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:0\r\nused_memory_vm_eval:0\r\nused_memory_lua_human:0B\r\nused_memory_scripts_eval:0\r\nnumber_of_cached_scripts:0\r\nnumber_of_functions:0\r\nnumber_of_libraries:0\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:0\r\nused_memory_vm_total_human:0B\r\nused_memory_functions:0\r\nused_memory_scripts:0\r\nused_memory_scripts_human:0B\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:0\r\nmem_cluster_links:0\r\nmem_aof_buffer:{}\r\nmem_allocator:jemalloc-5.3.0\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
        used,
        human_bytes(used),
        m.rss,
        human_bytes(m.rss),
        peak,
        human_bytes(peak),
        if peak > 0 { used as f64 * 100.0 / peak as f64 } else { 0.0 },
        overhead,
        shared.stats.startup_memory.load(Ordering::Relaxed),
        dataset,
        if used > 0 { dataset as f64 * 100.0 / used as f64 } else { 0.0 },
        m.allocated,
        m.active,
        m.resident,
        total_system,
        human_bytes(total_system),
        settings.maxmemory,
        human_bytes(settings.maxmemory),
        settings.maxmemory_policy,
        ratio(m.active, m.allocated),
        m.active.saturating_sub(m.allocated),
        ratio(m.resident, m.active),
        m.resident.saturating_sub(m.active),
        ratio(m.rss, m.resident),
        m.rss.saturating_sub(m.resident),
        frag,
        m.rss.saturating_sub(used),
        shared.aof.log.buffered(),
    );
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

pub(crate) fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    if pages > 0 {
        pages as u64 * page_size()
    } else {
        0
    }
}

fn persistence(shared: &Shared, out: &mut String) {
    let loading = shared.persistence.loading() as u8;
    let _ = write!(out, "# Persistence\r\nloading:{loading}\r\nasync_loading:0\r\n");
    crate::persistence::info_fields(shared, out);
    crate::aof::info_fields(shared, out);
    crate::persistence::info_loading(shared, out);
}

fn stats(shared: &Shared, ks: &KeyspaceTotals, out: &mut String) {
    let (ops, kin, kout) = shared.stats.instantaneous();
    let t = shared.stats.totals.lock();
    let _ = write!(
        out,
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:{:.2}\r\ninstantaneous_output_kbps:{:.2}\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_stale_perc:{:.2}\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:{}\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:0\r\ntracking_total_items:0\r\ntracking_total_prefixes:0\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
        shared.clients.total_connections.load(Ordering::Relaxed),
        t.total_commands,
        ops,
        t.net_in,
        t.net_out,
        kin,
        kout,
        t.rejected_connections,
        ks.expired,
        shared.stats.expired_stale_perc.load(Ordering::Relaxed) as f64 / 100.0,
        shared.stats.expire_cycle_cpu_ms.load(Ordering::Relaxed),
        shared.stats.evicted_keys.load(Ordering::Relaxed),
        ks.hits,
        ks.misses,
        shared.pubsub.count(crate::pubsub::Kind::Channel),
        shared.pubsub.count(crate::pubsub::Kind::Pattern),
        shared.pubsub.count(crate::pubsub::Kind::Shard),
        t.error_replies,
    );
}

fn replication(shared: &Shared, out: &mut String) {
    let _ = write!(
        out,
        "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
        shared.run_id
    );
}

fn commandstats(shared: &Shared, out: &mut String) {
    out.push_str("# Commandstats\r\n");
    let t = shared.stats.totals.lock();
    let mut rows: Vec<(String, crate::stats::CmdStat)> = t.commands.iter().map(|(k, s)| (k.full_name(), *s)).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, s) in rows {
        let per = if s.calls > 0 { s.usec as f64 / s.calls as f64 } else { 0.0 };
        let _ = write!(
            out,
            "cmdstat_{name}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
            s.calls, s.usec, s.rejected, s.failed
        );
    }
}

fn latencystats(shared: &Shared, out: &mut String) {
    out.push_str("# Latencystats\r\n");
    let percentiles = shared.settings().latency_percentiles.clone();
    let t = shared.stats.totals.lock();
    let mut rows: Vec<(String, &crate::stats::Hist)> = t.latency.iter().map(|(k, h)| (k.full_name(), h)).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, h) in rows {
        let parts: Vec<String> =
            percentiles.iter().map(|p| format!("p{}={:.3}", format_percentile(*p), h.percentile(*p) as f64)).collect();
        let _ = write!(out, "latency_percentiles_usec_{name}:{}\r\n", parts.join(","));
    }
}

/// `99.9` → `99.9`, `50` → `50` (as Redis prints the configured percentiles).
fn format_percentile(p: f64) -> String {
    let s = format!("{p}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn errorstats(shared: &Shared, out: &mut String) {
    out.push_str("# Errorstats\r\n");
    let t = shared.stats.totals.lock();
    let mut rows: Vec<_> = t.errors.iter().collect();
    rows.sort();
    for (code, n) in rows {
        let _ = write!(out, "errorstat_{code}:count={n}\r\n");
    }
}

fn keyspace(ks: &KeyspaceTotals, out: &mut String) {
    out.push_str("# Keyspace\r\n");
    for (i, (keys, expires, avg_ttl)) in ks.dbs.iter().enumerate() {
        if *keys > 0 {
            let _ = write!(out, "db{i}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n");
        }
    }
}

/// CONFIG REWRITE: rewrites the config file in place, keeping comments and the order of the
/// directives it already has, replacing their values, dropping repeats, and appending every
/// other parameter that differs from its default.
pub fn rewrite_config(cfg: &Config) -> Result<(), String> {
    let Some(path) = &cfg.file else {
        return Err("ERR The server is running without a config file".into());
    };
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let mut written: Vec<&'static str> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for line in old.lines() {
        let words = resp::split_args(line.trim().as_bytes()).unwrap_or_default();
        let param = words
            .first()
            .filter(|_| !line.trim_start().starts_with('#'))
            .and_then(|w| config::find(&String::from_utf8_lossy(w)));
        match param {
            Some(p) if written.contains(&p.name) => {}
            Some(p) => {
                written.push(p.name);
                lines.push(directive(p.name, cfg.get(p.name)));
            }
            None => lines.push(line.to_string()),
        }
    }
    let mut header = false;
    for p in config::PARAMS {
        if written.contains(&p.name) || p.alias.is_some() || cfg.get(p.name) == p.default || p.name == "dir" {
            continue;
        }
        if !header {
            lines.push("# Generated by CONFIG REWRITE".into());
            header = true;
        }
        lines.push(directive(p.name, cfg.get(p.name)));
    }
    let tmp = path.with_extension("rewrite-tmp");
    std::fs::write(&tmp, lines.join("\n") + "\n").map_err(|e| format!("ERR Rewriting config file: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("ERR Rewriting config file: {e}"))
}

fn directive(name: &str, value: &str) -> String {
    if name == "namespace" && !value.is_empty() {
        // One line per namespace (the definitions are already quoted).
        return value.split("; ").map(|spec| format!("namespace {spec}")).collect::<Vec<_>>().join("\n");
    }
    if value.is_empty() {
        format!("{name} \"\"")
    } else if name == "save" || name == "client-output-buffer-limit" || name == "bind" {
        format!("{name} {value}")
    } else {
        format!("{name} {}", config::quote(value))
    }
}
