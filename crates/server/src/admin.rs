//! The admin HTTP listener (`admin-enabled`, `admin-bind`, `admin-port`): Prometheus
//! metrics, liveness and readiness probes and the JSON status document.
//!
//! It runs on threads of its own (an accept loop and one short-lived thread per request, at
//! most [`MAX_ACTIVE`] at once), so a slow scraper never touches the workers. Requests are
//! HTTP/1.1 GETs answered with `Connection: close`; headers are limited to 16 KiB and 3
//! seconds. When `requirepass` is set every path asks for it, as HTTP Basic authentication
//! (any user name) or `Authorization: Bearer <password>`.
//!
//! - `/metrics`: Prometheus text format, built from INFO so the two always agree, with the
//!   common Redis exporter's names (`redis_*`) and ours (`redoubt_*`).
//! - `/healthz`: 200 when a PING over the server's own port is answered (a `-LOADING` reply
//!   counts: a server loading a large snapshot is alive and must not be restarted).
//! - `/readyz`: 200 when the server can take traffic: not loading, no persistence error
//!   that refuses writes; otherwise 503 with the reasons. The body names the role (always
//!   `master` until replication exists).
//! - `/api/status[?range=1h|6h|24h|7d|30d]`: everything the dashboard shows, as JSON.
//! - `/`: the dashboard (`dashboard.html`, embedded: it loads nothing from elsewhere).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::Shared;

/// The dashboard: one page, its script and style inline, drawing from `/api/status`.
const DASHBOARD: &str = include_str!("dashboard.html");

/// Requests served at once; more are answered 503 at once. Generous, so a few slow clients
/// cannot starve a liveness probe.
pub const MAX_ACTIVE: usize = 64;
const HEADER_LIMIT: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Binds the listener and starts its thread. A failure to bind is logged and the server runs
/// on without it: the data path matters more than the dashboard.
pub fn start(shared: &Arc<Shared>, settings: &Settings) -> Option<std::thread::JoinHandle<()>> {
    if !settings.admin_enabled {
        return None;
    }
    let host = settings.admin_bind.trim_start_matches('[').trim_end_matches(']');
    let addr = if host.contains(':') {
        format!("[{host}]:{}", settings.admin_port)
    } else {
        format!("{host}:{}", settings.admin_port)
    };
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            crate::log_warning!(
                "Admin HTTP listener cannot listen on {addr}: {e}. Serving continues without /metrics and /api/status; set admin-port to a free port (0 picks one) or admin-enabled no."
            );
            return None;
        }
    };
    let local = listener.local_addr().ok()?;
    if listener.set_nonblocking(true).is_err() {
        return None;
    }
    *shared.admin_addr.write() = Some(local);
    crate::log_notice!("Admin HTTP listener on http://{local}/ (/metrics, /healthz, /readyz, /api/status)");
    let shared = shared.clone();
    std::thread::Builder::new().name("admin".into()).spawn(move || accept_loop(&shared, &listener)).ok()
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, a bounded timeout.
        let ready = unsafe { libc::poll(&mut pfd, 1, 200) };
        if ready <= 0 {
            continue;
        }
        loop {
            let mut conn = match listener.accept() {
                Ok((conn, _)) => conn,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // out of descriptors, say: the listener stays ready, so do not spin
                    crate::log_warning!("Admin HTTP listener cannot accept: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    break;
                }
            };
            let _ = conn.set_nonblocking(false);
            if ACTIVE.fetch_add(1, Ordering::AcqRel) >= MAX_ACTIVE {
                ACTIVE.fetch_sub(1, Ordering::AcqRel);
                let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
                let _ = respond(&mut conn, 503, "text/plain", b"busy: too many admin requests at once\n", &[]);
                continue;
            }
            let shared = shared.clone();
            let spawned = std::thread::Builder::new().name("admin-req".into()).spawn(move || {
                serve(&shared, conn);
                ACTIVE.fetch_sub(1, Ordering::AcqRel);
            });
            if spawned.is_err() {
                ACTIVE.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// A parsed request: method, path, query and the Authorization header.
struct Request {
    method: String,
    path: String,
    query: String,
    authorization: Option<String>,
}

fn read_request(conn: &mut TcpStream) -> Result<Request, (u16, &'static str)> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > HEADER_LIMIT {
            return Err((431, "request headers too large\n"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return Err((408, "request timed out\n"));
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Err((400, "incomplete request\n")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err((408, "request timed out\n")),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err((400, "bad request line\n"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err((505, "HTTP/1.x only\n"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let authorization = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    Ok(Request { method: method.to_string(), path: path.to_string(), query: query.to_string(), authorization })
}

fn respond(conn: &mut TcpStream, code: u16, ctype: &str, body: &[u8], extra: &[(&str, &str)]) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "HTTP Version Not Supported",
    };
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)
}

fn serve(shared: &Shared, mut conn: TcpStream) {
    let _ = conn.set_write_timeout(Some(REQUEST_TIMEOUT));
    let req = match read_request(&mut conn) {
        Ok(r) => r,
        Err((code, why)) => {
            let _ = respond(&mut conn, code, "text/plain", why.as_bytes(), &[]);
            return;
        }
    };
    let settings = shared.settings();
    if let Some(pass) = &settings.requirepass {
        if !authorized(req.authorization.as_deref(), pass) {
            let _ = respond(
                &mut conn,
                401,
                "text/plain",
                b"this server has a password: send it as HTTP Basic authentication or a Bearer token\n",
                &[("WWW-Authenticate", "Basic realm=\"redoubt\"")],
            );
            return;
        }
    }
    if req.method != "GET" && req.method != "HEAD" {
        let _ = respond(&mut conn, 405, "text/plain", b"GET only\n", &[("Allow", "GET, HEAD")]);
        return;
    }
    let (code, ctype, body) = match req.path.as_str() {
        "/metrics" => (200, "text/plain; version=0.0.4; charset=utf-8", metrics(shared)),
        "/healthz" => match health(shared, &settings) {
            Ok(()) => (200, "text/plain", "ok\n".to_string()),
            Err(e) => (503, "text/plain", format!("not answering: {e}\n")),
        },
        "/readyz" => {
            let reasons = not_ready(shared, &settings);
            let mut j = guard::json::Json::new();
            j.begin_object()
                .field("ready")
                .bool(reasons.is_empty())
                .kv_str("role", "master")
                .field("reasons")
                .begin_array();
            reasons.iter().for_each(|r| {
                j.str(r);
            });
            j.end_array().end_object();
            (if reasons.is_empty() { 200 } else { 503 }, "application/json", j.finish())
        }
        "/api/status" => (200, "application/json", status(shared, &req.query)),
        "/" | "/index.html" => (200, "text/html; charset=utf-8", DASHBOARD.to_string()),
        _ => (404, "text/plain", "not found: try /, /metrics, /healthz, /readyz or /api/status\n".to_string()),
    };
    let body = if req.method == "HEAD" { Vec::new() } else { body.into_bytes() };
    // The page loads nothing from elsewhere: its script and style are inline.
    let csp = [(
        "Content-Security-Policy",
        "default-src 'none'; connect-src 'self'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
    )];
    let extra: &[(&str, &str)] = if ctype.starts_with("text/html") { &csp } else { &[] };
    let _ = respond(&mut conn, code, ctype, &body, extra);
}

fn authorized(header: Option<&str>, pass: &[u8]) -> bool {
    let Some(h) = header else { return false };
    if let Some(token) = h.strip_prefix("Bearer ") {
        return token.trim().as_bytes() == pass;
    }
    let Some(b64) = h.strip_prefix("Basic ") else { return false };
    let Some(decoded) = base64_decode(b64.trim()) else { return false };
    match decoded.iter().position(|&b| b == b':') {
        Some(i) => &decoded[i + 1..] == pass,
        None => false,
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let take = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    Some(out)
}

/// Liveness: a PING over the server's own port (with its password) is answered.
fn health(shared: &Shared, settings: &Settings) -> Result<(), String> {
    let mut addr = *shared.listen_addrs.read().first().ok_or("no listener")?;
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(
            if addr.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() },
            addr.port(),
        );
    }
    let timeout = Duration::from_secs(2);
    let mut c = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    c.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    c.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut req = Vec::new();
    if let Some(pass) = &settings.requirepass {
        req.extend_from_slice(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n", pass.len()).as_bytes());
        req.extend_from_slice(pass);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    c.write_all(&req).map_err(|e| format!("send: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let replies = if settings.requirepass.is_some() { 2 } else { 1 };
    while got.iter().filter(|&&b| b == b'\n').count() < replies {
        let n = c.read(&mut buf).map_err(|e| format!("reply: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let last = text.lines().last().unwrap_or("");
    // a server loading its dataset or running a long script is alive
    if last == "+PONG" || last.starts_with("-LOADING") || last.starts_with("-BUSY") {
        Ok(())
    } else {
        Err(format!("PING answered '{last}'"))
    }
}

/// Why the server should not take traffic now (empty when it should).
fn not_ready(shared: &Shared, settings: &Settings) -> Vec<String> {
    let mut why = Vec::new();
    if shared.persistence.loading() {
        why.push("loading the dataset".to_string());
    }
    if let Some(e) = shared.aof.error() {
        if settings.stop_writes_on_aof_error {
            why.push(format!("append-only log cannot be written ({e}); writes are refused"));
        }
    }
    if crate::persistence::misconf(shared, settings).is_some() {
        why.push("the last snapshot failed; writes are refused (stop-writes-on-bgsave-error)".to_string());
    }
    why
}

/// INFO everything, as section → (field → value).
fn info_map(shared: &Shared) -> BTreeMap<String, Vec<(String, String)>> {
    let text = crate::info::render(shared, &[b"everything"], None);
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.split("\r\n") {
        if let Some(name) = line.strip_prefix("# ") {
            section = name.to_ascii_lowercase();
        } else if let Some((k, v)) = line.split_once(':') {
            out.entry(section.clone()).or_default().push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// `k=v,k=v` as pairs.
fn sub_fields(v: &str) -> Vec<(&str, &str)> {
    v.split(',').filter_map(|p| p.split_once('=')).collect()
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Writes Prometheus families: `# HELP`, `# TYPE`, then samples.
struct Prom {
    out: String,
}

impl Prom {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = write!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", label(val));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", prom_number(v));
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, v: Option<f64>) {
        if let Some(v) = v {
            self.family(name, kind, help);
            self.sample(name, &[], v);
        }
    }
}

fn prom_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The `/metrics` document.
pub fn metrics(shared: &Shared) -> String {
    let info = info_map(shared);
    let field = |section: &str, k: &str| -> Option<f64> {
        info.get(section)?.iter().find(|(f, _)| f == k).and_then(|(_, v)| v.trim_end_matches('%').parse().ok())
    };
    let mut p = Prom { out: String::new() };
    p.one("redis_up", "gauge", "Whether the server answers (always 1 here).", Some(1.0));
    for (name, kind, help, section, key) in [
        ("redis_uptime_in_seconds", "gauge", "Seconds since the server started.", "server", "uptime_in_seconds"),
        ("redis_connected_clients", "gauge", "Client connections.", "clients", "connected_clients"),
        ("redis_blocked_clients", "gauge", "Clients waiting in a blocking command.", "clients", "blocked_clients"),
        ("redis_memory_used_bytes", "gauge", "Memory allocated by the server (used_memory).", "memory", "used_memory"),
        ("redis_memory_max_bytes", "gauge", "The maxmemory setting (0: none).", "memory", "maxmemory"),
        ("redis_memory_used_rss_bytes", "gauge", "Resident set size.", "memory", "used_memory_rss"),
        ("redis_memory_fragmentation_ratio", "gauge", "RSS / used_memory.", "memory", "mem_fragmentation_ratio"),
        ("redis_keyspace_hits_total", "counter", "Successful key lookups.", "stats", "keyspace_hits"),
        ("redis_keyspace_misses_total", "counter", "Failed key lookups.", "stats", "keyspace_misses"),
        ("redis_expired_keys_total", "counter", "Keys removed because they expired.", "stats", "expired_keys"),
        ("redis_evicted_keys_total", "counter", "Keys evicted to stay under a memory budget.", "stats", "evicted_keys"),
        ("redis_net_input_bytes_total", "counter", "Bytes read from clients.", "stats", "total_net_input_bytes"),
        ("redis_net_output_bytes_total", "counter", "Bytes written to clients.", "stats", "total_net_output_bytes"),
        (
            "redis_instantaneous_ops_per_sec",
            "gauge",
            "Commands per second, recently.",
            "stats",
            "instantaneous_ops_per_sec",
        ),
        ("redis_connected_slaves", "gauge", "Connected replicas.", "replication", "connected_slaves"),
    ] {
        p.one(name, kind, help, field(section, key));
    }
    let status = |section: &str, k: &str| {
        info.get(section)?.iter().find(|(f, _)| f == k).map(|(_, v)| if v == "ok" { 1.0 } else { 0.0 })
    };
    p.one(
        "redis_rdb_last_bgsave_status",
        "gauge",
        "1 if the last snapshot succeeded.",
        status("persistence", "rdb_last_bgsave_status"),
    );
    p.one(
        "redis_aof_last_write_status",
        "gauge",
        "1 if the last append-only log write succeeded.",
        status("persistence", "aof_last_write_status"),
    );
    p.one("redis_loading_dump_file", "gauge", "1 while the dataset loads.", field("persistence", "loading"));

    let cmds: Vec<(String, Vec<(&str, &str)>)> = info
        .get("commandstats")
        .map(|v| {
            v.iter().filter_map(|(k, v)| k.strip_prefix("cmdstat_").map(|c| (c.to_string(), sub_fields(v)))).collect()
        })
        .unwrap_or_default();
    let num = |fields: &[(&str, &str)], k: &str| fields.iter().find(|f| f.0 == k).and_then(|f| f.1.parse::<f64>().ok());
    p.family("redis_commands_total", "counter", "Calls per command.");
    for (c, f) in &cmds {
        p.sample("redis_commands_total", &[("cmd", c)], num(f, "calls").unwrap_or(0.0));
    }
    p.family("redis_commands_duration_seconds_total", "counter", "Time spent per command.");
    for (c, f) in &cmds {
        p.sample("redis_commands_duration_seconds_total", &[("cmd", c)], num(f, "usec").unwrap_or(0.0) / 1e6);
    }
    let dbs: Vec<(String, Vec<(&str, &str)>)> =
        info.get("keyspace").map(|v| v.iter().map(|(k, v)| (k.clone(), sub_fields(v))).collect()).unwrap_or_default();
    p.family("redis_db_keys", "gauge", "Keys per database.");
    for (db, f) in &dbs {
        p.sample("redis_db_keys", &[("db", db)], num(f, "keys").unwrap_or(0.0));
    }
    p.family("redis_db_keys_expiring", "gauge", "Keys with a time to live per database.");
    for (db, f) in &dbs {
        p.sample("redis_db_keys_expiring", &[("db", db)], num(f, "expires").unwrap_or(0.0));
    }

    let nss: Vec<(String, Vec<(&str, &str)>)> = info
        .get("namespaces")
        .map(|v| v.iter().filter_map(|(k, v)| k.strip_prefix("ns_").map(|n| (n.to_string(), sub_fields(v)))).collect())
        .unwrap_or_default();
    for (name, kind, key, help) in [
        ("redoubt_namespace_memory_bytes", "gauge", "memory", "Memory of the namespace's keys."),
        ("redoubt_namespace_keys", "gauge", "keys", "Keys in the namespace."),
        ("redoubt_namespace_limit_bytes", "gauge", "limit", "The namespace's limit (0: none)."),
        ("redoubt_namespace_reserve_bytes", "gauge", "reserve", "Memory reserved for the namespace."),
        ("redoubt_namespace_hits_total", "counter", "hits", "Successful lookups of the namespace's keys."),
        ("redoubt_namespace_misses_total", "counter", "misses", "Failed lookups of the namespace's keys."),
        ("redoubt_namespace_evicted_keys_total", "counter", "evicted_keys", "Keys evicted from the namespace."),
        (
            "redoubt_namespace_rejected_writes_total",
            "counter",
            "rejected_writes",
            "Writes refused at the namespace's budget.",
        ),
    ] {
        if nss.is_empty() {
            break;
        }
        p.family(name, kind, help);
        for (ns, f) in &nss {
            p.sample(name, &[("namespace", ns)], num(f, key).unwrap_or(0.0));
        }
    }

    let forecasts: Vec<(String, Vec<(&str, &str)>)> = info
        .get("forecast")
        .map(|v| {
            v.iter()
                .filter_map(|(k, v)| {
                    let scope = if k == "forecast_global" { Some("global") } else { k.strip_prefix("forecast_ns_") };
                    scope.map(|s| (s.to_string(), sub_fields(v)))
                })
                .collect()
        })
        .unwrap_or_default();
    p.family("redoubt_memory_growth_bytes_per_hour", "gauge", "Forecast growth rate (scope: global or a namespace).");
    for (scope, f) in &forecasts {
        p.sample("redoubt_memory_growth_bytes_per_hour", &[("scope", scope)], num(f, "growth_per_hour").unwrap_or(0.0));
    }
    p.family(
        "redoubt_forecast_full_seconds",
        "gauge",
        "Seconds until the scope's budget is full at the forecast rate (only while it grows).",
    );
    for (scope, f) in &forecasts {
        if let Some(s) = num(f, "full_in_seconds").filter(|&s| s >= 0.0) {
            p.sample("redoubt_forecast_full_seconds", &[("scope", scope)], s);
        }
    }
    p.family(
        "redoubt_mrc_hit_ratio",
        "gauge",
        "Miss-ratio curve: the hit ratio at factor x the scope's memory now, under the eviction policy named.",
    );
    for (k, v) in info.get("forecast").into_iter().flatten() {
        let Some(scope) = k.strip_prefix("mrc_") else { continue };
        let scope = scope.strip_prefix("ns_").unwrap_or(scope);
        let fields = sub_fields(v);
        let policy = fields.iter().find(|(f, _)| *f == "policy").map_or("lru", |(_, p)| *p);
        for (f, ratio) in &fields {
            if let (Some(factor), Ok(r)) = (f.strip_prefix('x'), ratio.parse::<f64>()) {
                p.sample("redoubt_mrc_hit_ratio", &[("scope", scope), ("policy", policy), ("factor", factor)], r);
            }
        }
    }
    p.one("redoubt_guard_samples_total", "counter", "Guardrail samples taken.", field("forecast", "guard_samples"));

    let alerts = info.get("alerts");
    let afield = |k: &str| alerts.and_then(|v| v.iter().find(|(f, _)| f == k)).and_then(|(_, v)| v.parse::<f64>().ok());
    p.one("redoubt_alerts_open", "gauge", "Alerts open now.", afield("alerts_open"));
    p.one("redoubt_alerts_opened_total", "counter", "Alerts opened since start.", afield("alerts_opened_total"));
    p.family("redoubt_alert", "gauge", "One sample per open alert (value 1).");
    for (k, v) in alerts.into_iter().flatten() {
        if k.starts_with("alert") && !k.contains('_') && k.len() > 5 {
            let f = sub_fields(v);
            let get = |n: &str| f.iter().find(|x| x.0 == n).map_or("", |x| x.1);
            p.sample(
                "redoubt_alert",
                &[("id", get("id")), ("kind", get("kind")), ("subject", get("subject")), ("severity", get("severity"))],
                1.0,
            );
        }
    }
    p.family("redoubt_alert_webhook_deliveries_total", "counter", "Alert webhook deliveries by outcome.");
    for (outcome, key) in
        [("sent", "alert_webhook_sent"), ("failed", "alert_webhook_failed"), ("dropped", "alert_webhook_dropped")]
    {
        p.sample("redoubt_alert_webhook_deliveries_total", &[("outcome", outcome)], afield(key).unwrap_or(0.0));
    }
    p.out
}

/// The `/api/status` document.
pub fn status(shared: &Shared, query: &str) -> String {
    let range_ms: i64 = match query.split('&').find_map(|kv| kv.strip_prefix("range=")).unwrap_or("24h") {
        "1h" => 3_600_000,
        "6h" => 6 * 3_600_000,
        "7d" => 7 * 86_400_000,
        "30d" => 30 * 86_400_000,
        _ => 86_400_000,
    };
    let info = info_map(shared);
    let mut j = guard::json::Json::new();
    j.begin_object();
    crate::guardrails::server_json(shared, &mut j);
    let now = shared.guardrails.now();
    j.kv_int("now_ms", now).kv_int("range_ms", range_ms);
    // The INFO sections the dashboard reads, numbers as numbers.
    j.field("info").begin_object();
    for section in ["server", "clients", "memory", "persistence", "stats", "replication", "keyspace"] {
        j.field(section).begin_object();
        for (k, v) in info.get(section).into_iter().flatten() {
            // numbers as numbers, but not ids such as redis_git_sha1's 00000000
            let leading_zero = v.len() > 1 && v.starts_with('0') && !v.starts_with("0.");
            match v.parse::<f64>() {
                Ok(n) if !v.starts_with('+') && !leading_zero => j.kv_num(k, n),
                _ => j.kv_str(k, v),
            };
        }
        j.end_object();
    }
    j.end_object();
    j.field("namespaces").begin_array();
    for (k, v) in info.get("namespaces").into_iter().flatten() {
        let Some(name) = k.strip_prefix("ns_") else { continue };
        j.begin_object().kv_str("name", name);
        for (fk, fv) in sub_fields(v) {
            match fv.parse::<f64>() {
                Ok(n) => j.kv_num(fk, n),
                _ => j.kv_str(fk, fv),
            };
        }
        j.end_object();
    }
    j.end_array();
    shared.guardrails.guard.lock().write_json(&mut j, now, range_ms);
    patterns_json(shared, &mut j);
    j.end_object();
    j.finish()
}

/// `"patterns"`: the growth finder's top 20.
fn patterns_json(shared: &Shared, j: &mut guard::json::Json) {
    let census = shared.guardrails.census.lock();
    j.field("census")
        .begin_object()
        .kv_int("passes", census.passes as i64)
        .kv_opt("last_pass_ms", census.last_pass_ms.map(|t| t as f64))
        .end_object();
    j.field("patterns").begin_array();
    for r in census.report.iter().take(20) {
        j.begin_object()
            .kv_str("pattern", &r.pattern)
            .kv_str("type", r.kind)
            .kv_num("keys", r.keys.round())
            .kv_num("bytes", r.bytes.round())
            .kv_num("keys_per_hour", r.keys_per_hour.round())
            .kv_num("bytes_per_hour", r.bytes_per_hour.round())
            .kv_num("ttl_share", r.ttl_share);
        match &r.indexes {
            Some(p) => j.kv_str("indexes", p),
            None => j.field("indexes").null(),
        };
        match &r.indexed_by {
            Some(p) => j.kv_str("indexed_by", p),
            None => j.field("indexed_by").null(),
        };
        j.field("largest").begin_array();
        for (key, bytes, elements, per_hour) in &r.largest {
            j.begin_object()
                .kv_str("key", key)
                .kv_num("bytes", *bytes as f64)
                .kv_num("elements", *elements as f64)
                .kv_num("elements_per_hour", per_hour.round())
                .end_object();
        }
        j.end_array().end_object();
    }
    j.end_array();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_authentication() {
        // "default:s3cret" and ":s3cret"
        assert!(authorized(Some("Basic ZGVmYXVsdDpzM2NyZXQ="), b"s3cret"));
        assert!(authorized(Some("Basic OnMzY3JldA=="), b"s3cret"));
        assert!(authorized(Some("Bearer s3cret"), b"s3cret"));
        assert!(!authorized(Some("Basic ZGVmYXVsdDp3cm9uZw=="), b"s3cret"));
        assert!(!authorized(Some("Bearer nope"), b"s3cret"));
        assert!(!authorized(None, b"s3cret"));
        assert!(!authorized(Some("Basic !!!"), b"s3cret"));
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
    }

    #[test]
    fn prometheus_numbers_and_labels() {
        assert_eq!(prom_number(3.0), "3");
        assert_eq!(prom_number(0.25), "0.25");
        assert_eq!(prom_number(f64::NAN), "NaN");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
