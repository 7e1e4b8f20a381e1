//! Configuration: every directive Redoubt accepts, its type, default and whether it can be
//! changed at runtime, declared once as data ([`PARAMS`]).
//!
//! The same table serves the config file (redis.conf syntax), `--name value` flags, CONFIG
//! GET/SET/REWRITE and the typed [`Settings`] the server reads on its hot paths. Values are
//! kept in the canonical text form CONFIG GET shows (memory sizes in bytes, booleans as
//! yes/no), and `Settings` is rebuilt from them after every change.

use std::collections::BTreeMap;
use std::fmt;

/// What values a parameter takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// Bytes, accepting the 1k/1kb/1m/1mb/1g/1gb suffixes.
    Memory,
    Enum(&'static [&'static str]),
    Text,
    /// `save <seconds> <changes> ...` pairs, or "".
    Save,
    /// `client-output-buffer-limit <class> <hard> <soft> <seconds> ...`.
    ClientOutputBufferLimit,
    /// `notify-keyspace-events` flag letters.
    NotifyFlags,
    /// Namespace definitions separated by `;` (one `namespace` line each in a file).
    Namespaces,
}

/// One configuration parameter.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    /// Can CONFIG SET change it?
    pub mutable: bool,
}

const fn p(name: &'static str, kind: Kind, default: &'static str, mutable: bool) -> Param {
    Param { name, alias: None, kind, default, mutable }
}

const fn pa(name: &'static str, alias: &'static str, kind: Kind, default: &'static str, mutable: bool) -> Param {
    Param { name, alias: Some(alias), kind, default, mutable }
}

const INT: Kind = Kind::Int { min: i32::MIN as i64, max: i32::MAX as i64 };
/// Redis's most common integer type: 0 to INT_MAX.
const UINT: Kind = Kind::Int { min: 0, max: i32::MAX as i64 };
/// 0 to LONG_MAX (counts that may be large).
const ULONG: Kind = Kind::Int { min: 0, max: i64::MAX };
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Every parameter, sorted by name. Defaults are Redis 7's unless noted in docs/config.md.
pub static PARAMS: &[Param] = &[
    p("active-expire-effort", int(1, 10), "1", true),
    p("activedefrag", Kind::Bool, "no", true),
    p("activerehashing", Kind::Bool, "yes", true),
    p("admin-bind", Kind::Text, "127.0.0.1", false),
    p("admin-enabled", Kind::Bool, "yes", false),
    p("admin-port", int(0, 65535), "9379", false),
    p("alert-eviction-storm", int(1, i32::MAX as i64), "1000", true),
    p("alert-hit-ratio-drop", int(1, 100), "25", true),
    p("alert-leeway", int(0, 10 * 365 * 86_400), "172800", true),
    p("alert-memory-levels", Kind::Text, "20 50 90", true),
    p("alert-min-lookups", UINT, "100", true),
    p("alert-rss-min-excess", Kind::Memory, "67108864", true),
    p("alert-rss-ratio", Kind::Text, "1.5", true),
    p("alert-slow-fsync-ms", int(1, 3_600_000), "1000", true),
    p("alert-webhook", Kind::Text, "", true),
    p("alert-webhook-ca-file", Kind::Text, "", true),
    p("alert-webhook-retries", int(0, 10), "3", true),
    p("alert-webhook-timeout-ms", int(100, 60_000), "3000", true),
    p("always-show-logo", Kind::Bool, "no", false),
    p("aof-load-truncated", Kind::Bool, "yes", true),
    p("aof-rewrite-incremental-fsync", Kind::Bool, "yes", true),
    p("aof-timestamp-enabled", Kind::Bool, "no", true),
    p("aof-use-rdb-preamble", Kind::Bool, "yes", true),
    p("appenddirname", Kind::Text, "appendonlydir", false),
    p("appendfilename", Kind::Text, "appendonly.aof", false),
    p("appendfsync", Kind::Enum(&["always", "everysec", "no"]), "everysec", true),
    p("appendonly", Kind::Bool, "no", true),
    p("auto-aof-rewrite-min-size", Kind::Memory, "67108864", true),
    p("auto-aof-rewrite-percentage", UINT, "100", true),
    p("bind", Kind::Text, "127.0.0.1 -::1", false),
    p("busy-poll-us", int(0, 10_000), "50", true),
    pa("busy-reply-threshold", "lua-time-limit", UINT, "5000", true),
    p(
        "client-output-buffer-limit",
        Kind::ClientOutputBufferLimit,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        true,
    ),
    p("client-query-buffer-limit", Kind::Memory, "1073741824", true),
    p("cluster-enabled", Kind::Bool, "no", false),
    p("daemonize", Kind::Bool, "no", false),
    p("databases", int(1, i32::MAX as i64), "16", false),
    p("dbfilename", Kind::Text, "dump.rdb", true),
    p("dir", Kind::Text, "", true),
    p("dynamic-hz", Kind::Bool, "yes", true),
    p("enable-debug-command", Kind::Enum(&["no", "yes", "local"]), "no", false),
    p("enable-protected-configs", Kind::Enum(&["no", "yes", "local"]), "no", false),
    p("fsync-delay-ms", int(0, 60_000), "0", true),
    p("guard-interval", int(0, 3600), "5", true),
    p("guard-mrc", Kind::Bool, "yes", true),
    p("guard-mrc-sample-percent", int(1, 100), "2", false),
    pa("hash-max-listpack-entries", "hash-max-ziplist-entries", ULONG, "512", true),
    pa("hash-max-listpack-value", "hash-max-ziplist-value", ULONG, "64", true),
    p("hz", UINT, "10", true),
    p("io-threads", int(1, 128), "1", false),
    p("key-load-delay", int(0, i32::MAX as i64), "0", true),
    p("latency-monitor-threshold", UINT, "0", true),
    p("latency-tracking", Kind::Bool, "yes", true),
    p("latency-tracking-info-percentiles", Kind::Text, "50 99 99.9", true),
    p("lazyfree-lazy-eviction", Kind::Bool, "no", true),
    p("lazyfree-lazy-expire", Kind::Bool, "no", true),
    p("lazyfree-lazy-server-del", Kind::Bool, "no", true),
    p("lazyfree-lazy-user-del", Kind::Bool, "no", true),
    p("lazyfree-lazy-user-flush", Kind::Bool, "no", true),
    p("lfu-decay-time", UINT, "1", true),
    p("lfu-log-factor", UINT, "10", true),
    p("list-compress-depth", UINT, "0", true),
    pa("list-max-listpack-size", "list-max-ziplist-size", INT, "-2", true),
    p("logfile", Kind::Text, "", false),
    p("loglevel", Kind::Enum(&["debug", "verbose", "notice", "warning"]), "notice", true),
    p("maxclients", int(1, i32::MAX as i64), "10000", true),
    p("maxmemory", Kind::Memory, "0", true),
    p("maxmemory-clients", Kind::Memory, "0", true),
    p("maxmemory-eviction-tenacity", int(0, 100), "10", true),
    p("maxmemory-policy", Kind::Enum(POLICIES), "noeviction", true),
    p("maxmemory-samples", int(1, i32::MAX as i64), "5", true),
    p("min-replicas-max-lag", UINT, "10", true),
    p("min-replicas-to-write", UINT, "0", true),
    p("namespace", Kind::Namespaces, "", true),
    p("no-appendfsync-on-rewrite", Kind::Bool, "no", true),
    p("notify-keyspace-events", Kind::NotifyFlags, "", true),
    p("pidfile", Kind::Text, "", false),
    p("port", int(0, 65535), "6379", false),
    p("protected-mode", Kind::Bool, "yes", true),
    p("proto-max-bulk-len", Kind::Memory, "536870912", true),
    p("rdb-version", int(10, 11), "11", true),
    p("rdbchecksum", Kind::Bool, "yes", false),
    p("rdbcompression", Kind::Bool, "yes", true),
    p("repl-backlog-size", Kind::Memory, "1048576", true),
    p("repl-timeout", int(1, i32::MAX as i64), "60", true),
    p("replica-read-only", Kind::Bool, "yes", true),
    p("replica-serve-stale-data", Kind::Bool, "yes", true),
    p("requirepass", Kind::Text, "", true),
    p("save", Kind::Save, "3600 1 300 100 60 10000", true),
    p("set-max-intset-entries", UINT, "512", true),
    p("set-max-listpack-entries", UINT, "128", true),
    p("set-max-listpack-value", UINT, "64", true),
    p("slowlog-log-slower-than", int(-1, i64::MAX), "10000", true),
    p("slowlog-max-len", ULONG, "128", true),
    p("stop-writes-on-aof-error", Kind::Bool, "yes", true),
    p("stop-writes-on-bgsave-error", Kind::Bool, "yes", true),
    p("stream-node-max-bytes", Kind::Memory, "4096", true),
    p("stream-node-max-entries", UINT, "100", true),
    p("supervised", Kind::Enum(&["upstart", "systemd", "auto", "no"]), "no", false),
    p("tcp-backlog", UINT, "511", false),
    p("tcp-keepalive", UINT, "300", true),
    p("timeout", UINT, "0", true),
    p("tracking-table-max-keys", ULONG, "1000000", true),
    p("unixsocket", Kind::Text, "", false),
    pa("zset-max-listpack-entries", "zset-max-ziplist-entries", ULONG, "128", true),
    pa("zset-max-listpack-value", "zset-max-ziplist-value", ULONG, "64", true),
];

/// Parameters CONFIG SET may change only when `enable-protected-configs` allows it (Redis 7's
/// protected configs: they decide where the server writes files).
pub const PROTECTED: &[&str] = &["dbfilename", "dir"];

/// Finds a parameter by name or alias (case-insensitive).
pub fn find(name: &str) -> Option<&'static Param> {
    let lower = name.to_ascii_lowercase();
    PARAMS.iter().find(|p| p.name == lower || p.alias == Some(lower.as_str()))
}

/// Parses a memory size with Redis's suffixes (k=1000, kb=1024, m, mb, g, gb).
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (digits, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, mul)| lower.strip_suffix(suffix).map(|d| (d, *mul)))
    .unwrap_or((lower.as_str(), 1));
    let n: u64 = digits.parse().ok()?;
    if digits.starts_with('+') {
        return None;
    }
    n.checked_mul(mul)
}

/// Why a value was refused (the text after `- ` in Redis's CONFIG SET error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue(pub String);

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates `args` for `param` and returns the canonical text CONFIG GET will show.
pub fn canonical(param: &Param, args: &[String]) -> Result<String, BadValue> {
    if param.name == "dir" {
        return canonical_dir(args);
    }
    if let Some(check) = guard_check(param.name) {
        let v = args.join(" ");
        check(&v).map_err(BadValue)?;
    }
    if param.name == "dbfilename" && args.iter().any(|a| a.contains('/')) {
        return Err(BadValue("dbfilename can't be a path, just a filename".into()));
    }
    if param.name == "appendfilename" && args.iter().any(|a| a.contains('/')) {
        return Err(BadValue("appendfilename can't be a path, just a filename".into()));
    }
    if param.name == "appenddirname" && args.iter().any(|a| a.contains('/')) {
        return Err(BadValue("appenddirname can't be a path, just a dirname".into()));
    }
    let one = || -> Result<&str, BadValue> {
        match args {
            [v] => Ok(v.as_str()),
            _ => Err(BadValue("wrong number of arguments".into())),
        }
    };
    match param.kind {
        Kind::Bool => match one()?.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err(BadValue("argument must be 'yes' or 'no'".into())),
        },
        Kind::Int { min, max } => {
            let v: i64 = one()?.parse().map_err(|_| BadValue("argument couldn't be parsed into an integer".into()))?;
            if v < min || v > max {
                return Err(BadValue(format!("argument must be between {min} and {max} inclusive")));
            }
            Ok(v.to_string())
        }
        Kind::Memory => {
            let v = one()?;
            let n = parse_memory(v).ok_or_else(|| BadValue("argument must be a memory value".into()))?;
            if n > i64::MAX as u64 {
                return Err(BadValue("argument must be a memory value".into()));
            }
            Ok(n.to_string())
        }
        Kind::Enum(names) => {
            let v = one()?.to_ascii_lowercase();
            // Redoubt's own policy is accepted but left out of the list of valid values, so
            // the error for a wrong value stays Redis's text.
            let extra = param.name == "maxmemory-policy" && v == "allkeys-auto";
            if names.contains(&v.as_str()) || extra {
                Ok(v)
            } else {
                Err(BadValue(format!("argument(s) must be one of the following: {}", names.join(", "))))
            }
        }
        Kind::Text => Ok(args.join(" ")),
        Kind::Save => canonical_save(args),
        Kind::ClientOutputBufferLimit => canonical_cobl(args),
        Kind::Namespaces => {
            let text = args.join(" ");
            crate::namespaces::parse_all(&text).map(|specs| crate::namespaces::format_all(&specs)).map_err(BadValue)
        }
        Kind::NotifyFlags => {
            let v = one()?;
            crate::notify::parse_flags(v)
                .map(crate::notify::canonical_flags)
                .ok_or_else(|| BadValue("Invalid event class character. Use 'Ag$lshzxeKEtmd'.".into()))
        }
    }
}

/// `dir` must be an existing directory (Redis changes into it); CONFIG GET then shows its
/// absolute path, as Redis's does.
/// Checks a value beyond its kind's rules.
type Check = fn(&str) -> Result<(), String>;

/// The extra validation of the guardrail parameters whose values are text.
fn guard_check(name: &str) -> Option<Check> {
    match name {
        "alert-memory-levels" => Some(|v| parse_levels(v).map(|_| ())),
        "alert-rss-ratio" => Some(|v| match v.trim().parse::<f64>() {
            Ok(r) if (1.0..=1000.0).contains(&r) => Ok(()),
            _ => Err(format!("alert-rss-ratio must be a number from 1 to 1000, not '{v}'")),
        }),
        "alert-webhook" => Some(|v| v.split_whitespace().try_for_each(|u| crate::webhook::Url::parse(u).map(|_| ()))),
        "alert-webhook-ca-file" => Some(|v| crate::webhook::tls_roots(v).map(|_| ())),
        _ => None,
    }
}

/// `alert-memory-levels`: percentages separated by spaces ("" for none).
pub fn parse_levels(v: &str) -> Result<Vec<f64>, String> {
    v.split_whitespace()
        .map(|w| match w.trim_end_matches('%').parse::<f64>() {
            Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
            _ => Err(format!("alert-memory-levels takes percentages above 0 and up to 100, not '{w}'")),
        })
        .collect()
}

fn canonical_dir(args: &[String]) -> Result<String, BadValue> {
    let [dir] = args else { return Err(BadValue("wrong number of arguments".into())) };
    if dir.is_empty() {
        return Ok(String::new());
    }
    let os_text = |e: std::io::Error| {
        let text = e.to_string();
        BadValue(text.split(" (os error").next().unwrap_or(&text).to_string())
    };
    let path = std::fs::canonicalize(dir).map_err(os_text)?;
    if !path.is_dir() {
        return Err(os_text(std::io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    Ok(path.display().to_string())
}

fn canonical_save(args: &[String]) -> Result<String, BadValue> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    if words.is_empty() {
        return Ok(String::new());
    }
    if !words.len().is_multiple_of(2) {
        return Err(BadValue("Invalid save parameters".into()));
    }
    let mut out = Vec::new();
    for w in &words {
        let n: u64 = w.parse().map_err(|_| BadValue("Invalid save parameters".into()))?;
        out.push(n.to_string());
    }
    Ok(out.join(" "))
}

fn canonical_cobl(args: &[String]) -> Result<String, BadValue> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err(BadValue("Wrong number of arguments in buffer limit configuration.".into()));
    }
    let mut classes: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for chunk in words.chunks(4) {
        let class = match chunk[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => return Err(BadValue("Invalid client class specified in buffer limit configuration.".into())),
        };
        let hard = parse_memory(chunk[1]);
        let soft = parse_memory(chunk[2]);
        let secs = chunk[3].parse::<u64>().ok();
        match (hard, soft, secs) {
            (Some(h), Some(s), Some(t)) => {
                classes.insert(class, [h, s, t]);
            }
            _ => {
                return Err(BadValue(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
                ))
            }
        }
    }
    let defaults = Config::default();
    let mut current = parse_cobl(defaults.get("client-output-buffer-limit"));
    for (class, v) in classes {
        current.insert(class.to_string(), v);
    }
    Ok(["normal", "slave", "pubsub"]
        .iter()
        .map(|c| {
            let v = current[*c];
            format!("{c} {} {} {}", v[0], v[1], v[2])
        })
        .collect::<Vec<_>>()
        .join(" "))
}

fn parse_cobl(s: &str) -> BTreeMap<String, [u64; 3]> {
    let w: Vec<&str> = s.split_whitespace().collect();
    w.chunks(4)
        .filter(|c| c.len() == 4)
        .map(|c| (c[0].to_string(), [c[1].parse().unwrap_or(0), c[2].parse().unwrap_or(0), c[3].parse().unwrap_or(0)]))
        .collect()
}

/// The configuration: each parameter's canonical value, plus where it was loaded from.
#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// The config file given on the command line, if any (for CONFIG REWRITE).
    pub file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let values = PARAMS.iter().map(|p| (p.name, p.default.to_string())).collect();
        let mut c = Config { values, file: None };
        if let Ok(dir) = std::env::current_dir() {
            c.values.insert("dir", dir.display().to_string());
        }
        c
    }
}

/// A startup configuration error: where it happened and why.
#[derive(Debug)]
pub struct ConfigError {
    pub source: String,
    pub line: usize,
    pub text: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "*** FATAL CONFIG FILE ERROR (Redoubt {}) ***", env!("CARGO_PKG_VERSION"))?;
        writeln!(f, "Reading the configuration file {}, at line {}", self.source, self.line)?;
        writeln!(f, ">>> '{}'", self.text)?;
        write!(f, "{}", self.reason)
    }
}

impl Config {
    /// The canonical value of a parameter (by canonical name).
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    /// A parameter's value as CONFIG GET shows it.
    pub fn shown(&self, name: &str) -> String {
        let v = self.get(name);
        match find(name) {
            Some(p) if matches!(p.kind, Kind::NotifyFlags) => {
                crate::notify::parse_flags(v).map(crate::notify::format_flags).unwrap_or_default()
            }
            _ => v.to_string(),
        }
    }

    /// Sets a parameter from its arguments; returns the canonical value stored.
    pub fn set(&mut self, param: &'static Param, args: &[String]) -> Result<String, BadValue> {
        let v = canonical(param, args)?;
        self.values.insert(param.name, v.clone());
        Ok(v)
    }

    /// All (name, value) pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Applies config-file text (redis.conf syntax). `source` names it in errors. Directives
    /// are `name arg...` lines; `#` starts a comment line. Repeated `save` lines accumulate.
    pub fn apply_text(&mut self, text: &str, source: &str) -> Result<(), ConfigError> {
        let mut saves: Option<Vec<String>> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| ConfigError {
                source: source.to_string(),
                line: i + 1,
                text: line.to_string(),
                reason: reason.to_string(),
            };
            let words =
                resp::split_args(line.as_bytes()).map_err(|_| err("Unbalanced quotes in configuration line"))?;
            let words: Vec<String> = words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect();
            let Some((name, args)) = words.split_first() else {
                continue;
            };
            let Some(param) = find(name) else {
                return Err(err("Bad directive or wrong number of arguments"));
            };
            if param.kind == Kind::Namespaces {
                // Each `namespace` line adds one definition.
                let line_value = args.join(" ");
                let joined = match self.get(param.name) {
                    "" => line_value,
                    prev => format!("{prev}; {line_value}"),
                };
                self.set(param, &[joined]).map_err(|e| err(&e.0))?;
                continue;
            }
            if param.kind == Kind::Save {
                let acc = saves.get_or_insert_with(Vec::new);
                if args.iter().all(|a| a.is_empty()) {
                    acc.clear();
                } else {
                    acc.extend(args.iter().cloned());
                }
                let joined = acc.join(" ");
                self.set(param, &[joined]).map_err(|e| err(&e.0))?;
                continue;
            }
            self.set(param, args).map_err(|e| err(&e.0))?;
        }
        Ok(())
    }

    /// Builds the configuration from command-line arguments (after the program name):
    /// an optional config file path first, then `--name value...` options.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut rest = args;
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                let text = if first == "-" {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
                } else {
                    std::fs::read_to_string(first)
                }
                .map_err(|e| ConfigError {
                    source: first.clone(),
                    line: 0,
                    text: String::new(),
                    reason: format!("Fatal error, can't open config file '{first}': {e}"),
                })?;
                config.apply_text(&text, first)?;
                config.file = Some(std::path::PathBuf::from(first));
                rest = &args[1..];
            }
        }
        let mut text = String::new();
        for a in rest {
            if let Some(name) = a.strip_prefix("--") {
                text.push('\n');
                text.push_str(name);
            } else {
                text.push(' ');
                text.push_str(&quote(a));
            }
        }
        config.apply_text(&text, "(command line)")?;
        Ok(config)
    }
}

/// Quotes a value so `split_args` gives it back unchanged.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Typed settings the server reads on hot paths, rebuilt whenever the config changes.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Guardrails: alert thresholds, the sampling interval in seconds (0: only when a test
    /// advances the guardrail clock), the admin HTTP listener and alert webhooks.
    pub guard: guard::Config,
    pub guard_interval_s: u64,
    /// `guard-mrc`: record reads for the miss-ratio curves.
    pub guard_mrc: bool,
    /// `guard-mrc-sample-percent`: the share of keys each curve samples at most.
    pub guard_mrc_sample_percent: u32,
    pub admin_enabled: bool,
    pub admin_bind: String,
    pub admin_port: u16,
    pub webhooks: Vec<String>,
    pub webhook_timeout_ms: u64,
    /// `alert-webhook-ca-file`: a PEM bundle trusted for `https://` webhooks besides the Mozilla roots.
    pub webhook_ca_file: String,
    pub webhook_retries: u32,
    pub port: u16,
    pub bind: Vec<String>,
    pub requirepass: Option<Vec<u8>>,
    pub protected_mode: bool,
    pub databases: usize,
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    /// `maxmemory-samples`: keys sampled per eviction round.
    pub maxmemory_samples: usize,
    /// `maxmemory-eviction-tenacity` (0..100): how long one command may spend evicting.
    pub eviction_tenacity: u32,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
    /// `busy-reply-threshold` (`lua-time-limit`): after this many ms of a running script,
    /// other commands get `-BUSY`.
    pub busy_reply_threshold_ms: u64,
    /// Namespace definitions (empty: no namespaces).
    pub namespaces: Vec<store::namespace::Spec>,
    /// How keys' access clocks are kept: `allkeys-auto` (or a namespace evicting with
    /// `auto`) needs Auto ticks, an LFU policy LFU counters, everything else LRU times.
    pub access: store::access::Mode,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: usize,
    pub timeout_secs: u64,
    pub hz: u32,
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: usize,
    pub loglevel: crate::log::Level,
    pub maxclients: usize,
    pub tcp_keepalive: u64,
    pub notify_flags: u32,
    pub debug_command: String,
    /// `enable-protected-configs`: no, yes or local.
    pub enable_protected_configs: String,
    pub latency_tracking: bool,
    /// Collection encoding thresholds, in this order: list-max-listpack-size,
    /// hash-max-listpack-entries/value, set-max-intset-entries, set-max-listpack-entries/value,
    /// zset-max-listpack-entries/value, stream-node-max-bytes/entries.
    pub encodings: [i64; 10],
    /// Microseconds a busy worker polls without sleeping before it blocks (0 = never).
    pub busy_poll_us: u64,
    /// Percentiles INFO latencystats reports.
    pub latency_percentiles: Vec<f64>,
    /// (hard, soft, soft seconds) output limits for pub/sub clients.
    pub pubsub_output_limit: [u64; 3],
    /// `dir` and `dbfilename`: where snapshots are written and loaded from.
    pub dir: std::path::PathBuf,
    pub dbfilename: String,
    /// `save`: (seconds, changes) points; a snapshot starts when any is reached.
    pub save_points: Vec<(u64, u64)>,
    pub rdbcompression: bool,
    /// `stop-writes-on-bgsave-error`: refuse writes with MISCONF while the last snapshot
    /// failed (and `save` points are set).
    pub stop_writes_on_bgsave_error: bool,
    /// The append-only log: `appendonly`, `appendfsync` (always, everysec, no), where its
    /// files live (`dir`/`appenddirname`, named after `appendfilename`), when it is
    /// compacted (`auto-aof-rewrite-percentage` of growth over the last rewrite, once at
    /// least `auto-aof-rewrite-min-size`), whether a torn tail is cut at startup
    /// (`aof-load-truncated`), and whether writes are refused while it cannot be written
    /// (`stop-writes-on-aof-error`).
    pub appendonly: bool,
    /// `fsync-delay-ms`: every fsync of a snapshot or the log first waits this long. A test
    /// knob (like `key-load-delay`) that turns the disk into a slow one; 0 in production.
    pub fsync_delay_ms: u64,
    pub appendfsync: persist::aof::Fsync,
    pub appenddirname: String,
    pub appendfilename: String,
    pub auto_aof_rewrite_percentage: u64,
    pub auto_aof_rewrite_min_size: u64,
    pub aof_load_truncated: bool,
    pub stop_writes_on_aof_error: bool,
    /// `rdb-version`: 11 (Redis 7.2's format) or 10 (what Redis 7.0 reads).
    pub rdb_version: u16,
    /// `key-load-delay`: microseconds to pause per loaded key (for testing the loading
    /// state, as Redis's own test suite does; 0 in production).
    pub key_load_delay_us: u64,
}

/// The access-clock mode the configuration needs (see [`Settings::access`]).
fn access_mode(c: &Config) -> store::access::Mode {
    let policy = c.get("maxmemory-policy");
    let namespaces = crate::namespaces::parse_all(c.get("namespace")).unwrap_or_default();
    let asks =
        |p: &str| namespaces.iter().any(|s| matches!(&s.evict, store::namespace::Evict::Policy(x) if x.ends_with(p)));
    if policy.ends_with("auto") || asks("auto") {
        store::access::Mode::Auto
    } else if policy.ends_with("lfu") || asks("lfu") {
        store::access::Mode::Lfu {
            log_factor: c.get("lfu-log-factor").parse().unwrap_or(10),
            decay_minutes: c.get("lfu-decay-time").parse().unwrap_or(1),
        }
    } else {
        store::access::Mode::Lru
    }
}

impl Settings {
    /// Derives typed settings from canonical values (which were validated when set).
    pub fn from_config(c: &Config) -> Settings {
        let num = |n: &str| c.get(n).parse::<i64>().unwrap_or(0);
        let cobl = parse_cobl(c.get("client-output-buffer-limit"));
        let pass = c.get("requirepass");
        Settings {
            guard: guard::Config {
                memory_levels: parse_levels(c.get("alert-memory-levels")).unwrap_or_default(),
                leeway_ms: num("alert-leeway") * 1000,
                hit_ratio_drop: num("alert-hit-ratio-drop") as f64 / 100.0,
                min_lookups: num("alert-min-lookups") as f64,
                eviction_storm_factor: 5.0,
                eviction_storm_min: num("alert-eviction-storm") as f64,
                rss_ratio: c.get("alert-rss-ratio").trim().parse().unwrap_or(1.5),
                rss_min_excess: num("alert-rss-min-excess") as f64,
                slow_fsync_ms: num("alert-slow-fsync-ms") as f64,
            },
            guard_interval_s: num("guard-interval").max(0) as u64,
            guard_mrc: c.get("guard-mrc") == "yes",
            guard_mrc_sample_percent: num("guard-mrc-sample-percent") as u32,
            admin_enabled: c.get("admin-enabled") == "yes",
            admin_bind: c.get("admin-bind").to_string(),
            admin_port: num("admin-port") as u16,
            webhooks: c.get("alert-webhook").split_whitespace().map(str::to_string).collect(),
            webhook_timeout_ms: num("alert-webhook-timeout-ms") as u64,
            webhook_ca_file: c.get("alert-webhook-ca-file").to_string(),
            webhook_retries: num("alert-webhook-retries") as u32,
            port: num("port") as u16,
            bind: c.get("bind").split_whitespace().map(str::to_string).collect(),
            requirepass: (!pass.is_empty()).then(|| pass.as_bytes().to_vec()),
            protected_mode: c.get("protected-mode") == "yes",
            databases: num("databases") as usize,
            maxmemory: num("maxmemory") as u64,
            maxmemory_policy: c.get("maxmemory-policy").to_string(),
            maxmemory_samples: num("maxmemory-samples").max(1) as usize,
            eviction_tenacity: num("maxmemory-eviction-tenacity").clamp(0, 100) as u32,
            lfu_log_factor: num("lfu-log-factor") as u32,
            lfu_decay_time: num("lfu-decay-time") as u32,
            namespaces: crate::namespaces::parse_all(c.get("namespace")).unwrap_or_default(),
            access: access_mode(c),
            busy_reply_threshold_ms: num("busy-reply-threshold").max(0) as u64,
            proto_max_bulk_len: num("proto-max-bulk-len"),
            client_query_buffer_limit: num("client-query-buffer-limit") as usize,
            timeout_secs: num("timeout") as u64,
            hz: num("hz") as u32,
            slowlog_log_slower_than: num("slowlog-log-slower-than"),
            slowlog_max_len: num("slowlog-max-len") as usize,
            loglevel: crate::log::Level::from_name(c.get("loglevel")),
            maxclients: num("maxclients") as usize,
            tcp_keepalive: num("tcp-keepalive") as u64,
            notify_flags: crate::notify::parse_flags(c.get("notify-keyspace-events")).unwrap_or(0),
            debug_command: c.get("enable-debug-command").to_string(),
            enable_protected_configs: c.get("enable-protected-configs").to_string(),
            latency_tracking: c.get("latency-tracking") == "yes",
            busy_poll_us: num("busy-poll-us") as u64,
            encodings: [
                num("list-max-listpack-size"),
                num("hash-max-listpack-entries"),
                num("hash-max-listpack-value"),
                num("set-max-intset-entries"),
                num("set-max-listpack-entries"),
                num("set-max-listpack-value"),
                num("zset-max-listpack-entries"),
                num("zset-max-listpack-value"),
                num("stream-node-max-bytes"),
                num("stream-node-max-entries"),
            ],
            latency_percentiles: c
                .get("latency-tracking-info-percentiles")
                .split_whitespace()
                .filter_map(|p| p.parse::<f64>().ok())
                .filter(|p| (0.0..=100.0).contains(p))
                .collect(),
            pubsub_output_limit: cobl.get("pubsub").copied().unwrap_or([0, 0, 0]),
            dir: std::path::PathBuf::from(c.get("dir")),
            dbfilename: c.get("dbfilename").to_string(),
            save_points: {
                let n: Vec<u64> = c.get("save").split_whitespace().filter_map(|w| w.parse().ok()).collect();
                n.chunks_exact(2).map(|p| (p[0], p[1])).collect()
            },
            rdbcompression: c.get("rdbcompression") == "yes",
            stop_writes_on_bgsave_error: c.get("stop-writes-on-bgsave-error") == "yes",
            appendonly: c.get("appendonly") == "yes",
            fsync_delay_ms: num("fsync-delay-ms").max(0) as u64,
            appendfsync: match c.get("appendfsync") {
                "always" => persist::aof::Fsync::Always,
                "no" => persist::aof::Fsync::No,
                _ => persist::aof::Fsync::EverySec,
            },
            appenddirname: c.get("appenddirname").to_string(),
            appendfilename: c.get("appendfilename").to_string(),
            auto_aof_rewrite_percentage: num("auto-aof-rewrite-percentage").max(0) as u64,
            auto_aof_rewrite_min_size: num("auto-aof-rewrite-min-size").max(0) as u64,
            aof_load_truncated: c.get("aof-load-truncated") == "yes",
            stop_writes_on_aof_error: c.get("stop-writes-on-aof-error") == "yes",
            rdb_version: num("rdb-version") as u16,
            key_load_delay_us: num("key-load-delay").max(0) as u64,
        }
    }

    /// The settings the command handlers read.
    pub fn command_settings(&self) -> commands::Settings {
        let policy = &self.maxmemory_policy;
        let e = self.encodings;
        commands::Settings {
            proto_max_bulk_len: self.proto_max_bulk_len,
            lfu: !matches!(self.access, store::access::Mode::Lru),
            access: self.access,
            evicts_by_access: policy.ends_with("lfu") || policy.ends_with("lru"),
            list_max_listpack_size: e[0],
            hash_max_listpack_entries: e[1] as usize,
            hash_max_listpack_value: e[2] as usize,
            set_max_intset_entries: e[3] as usize,
            set_max_listpack_entries: e[4] as usize,
            set_max_listpack_value: e[5] as usize,
            zset_max_listpack_entries: e[6] as usize,
            zset_max_listpack_value: e[7] as usize,
            stream_node_max_bytes: e[8] as usize,
            stream_node_max_entries: e[9] as u64,
            notify_flags: self.notify_flags,
            rdb_version: self.rdb_version,
            rdb_compression: self.rdbcompression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_sorted_and_defaults_valid() {
        for w in PARAMS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        for p in PARAMS {
            let args: Vec<String> =
                if p.default.is_empty() { vec![String::new()] } else { vec![p.default.to_string()] };
            assert!(canonical(p, &args).is_ok(), "default of {} invalid", p.name);
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("1G"), Some(1_000_000_000));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("12kb"), Some(12 * 1024));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("-1"), None);
    }

    #[test]
    fn file_and_flags() {
        let c = Config::from_args(&[
            "--port".into(),
            "7000".into(),
            "--save".into(),
            "".into(),
            "--maxmemory".into(),
            "1mb".into(),
        ])
        .unwrap();
        assert_eq!(c.get("port"), "7000");
        assert_eq!(c.get("save"), "");
        assert_eq!(c.get("maxmemory"), "1048576");
        let err = Config::from_args(&["--nosuch".into(), "1".into()]).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("Bad directive"));
        let mut c = Config::default();
        c.apply_text("save 900 1\nsave 300 10\n", "t").unwrap();
        assert_eq!(c.get("save"), "900 1 300 10");
        let e = c.apply_text("port abc", "t.conf").unwrap_err();
        assert_eq!((e.source.as_str(), e.line), ("t.conf", 1));
    }

    #[test]
    fn output_buffer_limits_merge() {
        let p = find("client-output-buffer-limit").unwrap();
        let v = canonical(p, &["pubsub 1mb 0 0".into()]).unwrap();
        assert_eq!(v, "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0");
    }
}
