//! Namespaces at the server level: their configuration syntax, installing a configuration
//! (and recounting the keyspace into it), the write gate that applies reserves and limits
//! before a command runs, the INFO section and the NAMESPACE command.
//!
//! Syntax (config file line, CONFIG SET value, NAMESPACE SET arguments):
//!
//! ```text
//! namespace <name> [match <pattern>]... [default] [reserve <bytes>|<n>%] [limit <bytes>|<n>%]
//!                  [evict none|inherit|<policy>]
//! ```
//!
//! Several namespaces are separated by `;` in one CONFIG SET value, or given on several
//! `namespace` lines of the config file. Percentages are of `maxmemory`. `evict inherit` (the
//! default) follows `maxmemory-policy`; `evict none` refuses writes at the limit; a policy
//! name evicts only the namespace's own keys. See `store::namespace` for the key mapping.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use commands::{CmdError, CmdResult};
use store::namespace::{self, Amount, Evict, Pattern, Spec, Table};

use crate::info::human_bytes;
use crate::session::Session;
use crate::Shared;

fn bad(msg: String) -> String {
    msg
}

/// Parses an amount: `128mb`, `1gb`, `1048576`, `40%`.
fn parse_amount(s: &str) -> Result<Amount, String> {
    if let Some(p) = s.strip_suffix('%') {
        return match p.parse::<f64>() {
            Ok(v) if (0.0..=100.0).contains(&v) => Ok(Amount::Percent(v)),
            _ => Err(bad(format!("invalid percentage '{s}' (0% to 100%)"))),
        };
    }
    crate::config::parse_memory(s).map(Amount::Bytes).ok_or_else(|| bad(format!("invalid memory amount '{s}'")))
}

fn format_amount(a: Amount) -> String {
    match a {
        Amount::Bytes(b) => b.to_string(),
        Amount::Percent(p) => format!("{p}%"),
    }
}

const POLICIES: &[&str] = &[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-auto",
    "auto",
];

/// Parses one namespace definition from its words (the name first).
pub fn parse_spec(words: &[String]) -> Result<Spec, String> {
    let Some((name, opts)) = words.split_first() else { return Err("a namespace needs a name".into()) };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("invalid namespace name '{name}' (letters, digits, '-' and '_')"));
    }
    let mut spec = Spec {
        name: name.clone(),
        patterns: Vec::new(),
        reserve: None,
        limit: None,
        evict: Evict::Inherit,
        default: false,
        persist: true,
    };
    let mut i = 0;
    while i < opts.len() {
        let opt = opts[i].to_ascii_lowercase();
        let value = opts.get(i + 1);
        match (opt.as_str(), value) {
            ("default", _) => {
                spec.default = true;
                i += 1;
                continue;
            }
            ("match", Some(p)) if p.contains(';') => return Err(format!("a pattern cannot contain ';': '{p}'")),
            ("match", Some(p)) if !p.is_empty() => spec.patterns.push(Pattern::new(p.as_bytes())),
            ("reserve", Some(v)) => spec.reserve = Some(parse_amount(v)?),
            ("limit", Some(v)) => spec.limit = Some(parse_amount(v)?),
            ("persist", Some(v)) => {
                spec.persist = match v.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(format!("persist takes yes or no, not '{v}'")),
                }
            }
            ("evict", Some(v)) => {
                spec.evict = match v.to_ascii_lowercase().as_str() {
                    "none" => Evict::None,
                    "inherit" => Evict::Inherit,
                    p if POLICIES.contains(&p) => Evict::Policy(p.to_string()),
                    _ => return Err(format!("unknown eviction policy '{v}' (none, inherit, {})", POLICIES.join(", "))),
                }
            }
            _ => return Err(format!("unexpected '{}' in the definition of namespace '{name}'", opts[i])),
        }
        i += 2;
    }
    if spec.patterns.is_empty() && !spec.default {
        return Err(format!("namespace '{name}' needs at least one 'match <pattern>' (or 'default')"));
    }
    Ok(spec)
}

/// The canonical text of a definition (what CONFIG GET shows and CONFIG REWRITE writes).
pub fn format_spec(s: &Spec) -> String {
    let mut out = s.name.clone();
    for p in &s.patterns {
        let _ = write!(out, " match {}", crate::config::quote(&String::from_utf8_lossy(&p.text())));
    }
    if s.default {
        out.push_str(" default");
    }
    if let Some(r) = s.reserve {
        let _ = write!(out, " reserve {}", format_amount(r));
    }
    if let Some(l) = s.limit {
        let _ = write!(out, " limit {}", format_amount(l));
    }
    if !s.persist {
        out.push_str(" persist no");
    }
    match &s.evict {
        Evict::Inherit => {}
        Evict::None => out.push_str(" evict none"),
        Evict::Policy(p) => {
            let _ = write!(out, " evict {p}");
        }
    }
    out
}

/// Parses a whole configuration value: definitions separated by `;`.
pub fn parse_all(value: &str) -> Result<Vec<Spec>, String> {
    let mut specs: Vec<Spec> = Vec::new();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let words = resp::split_args(part.as_bytes()).map_err(|_| format!("unbalanced quotes in '{part}'"))?;
        let words: Vec<String> = words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect();
        let spec = parse_spec(&words)?;
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(format!("namespace '{}' is defined twice", spec.name));
        }
        if spec.default && specs.iter().any(|s| s.default) {
            return Err("only one namespace can be the default".into());
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The canonical configuration value of a list of definitions.
pub fn format_all(specs: &[Spec]) -> String {
    specs.iter().map(format_spec).collect::<Vec<_>>().join("; ")
}

/// Installs the configured namespaces if a configuration change left them pending (called
/// by the dispatcher after each command, when it holds no shard lock).
pub fn apply_pending(shared: &Shared) {
    if shared.namespaces_pending.swap(false, Ordering::AcqRel) {
        apply(shared, &shared.settings().namespaces);
    }
}

/// Installs `specs` if they differ from what is installed: every shard is locked, the new
/// table replaces the old one and the keyspace is recounted into it (history counters are
/// carried over by name). With no definitions, namespaces are switched off.
pub fn apply(shared: &Shared, specs: &[Spec]) {
    let current = namespace::with_table(|t| t.specs.clone());
    let wanted = (!specs.is_empty()).then(|| Table::new(specs.to_vec()));
    if current.as_ref() == wanted.as_ref().map(|t| &t.specs) {
        return;
    }
    let _write = namespace::GUARD.write();
    let mut view = shared.keyspace.lock_all();
    let old = namespace::install(wanted.map(Box::new));
    namespace::with_table(|t| {
        if let Some(old) = &old {
            for (i, s) in old.specs.iter().enumerate() {
                if let Some(j) = t.find(&s.name) {
                    let (from, to) = (&old.counters[i], &t.counters[j]);
                    to.mrc.take_from(&from.mrc);
                    for (a, b) in [
                        (&from.hits, &to.hits),
                        (&from.misses, &to.misses),
                        (&from.evicted, &to.evicted),
                        (&from.rejected, &to.rejected),
                    ] {
                        b.store(a.load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                }
            }
        }
    });
    if namespace::enabled() {
        for shard in view.shards_mut() {
            for db in shard.dbs.iter() {
                for e in db.iter() {
                    namespace::charge(e.key(), store::db::entry_bytes(e) as i64, 1);
                }
            }
        }
    }
    drop(view);
    crate::log_notice!("Namespaces: {}", if specs.is_empty() { "none".to_string() } else { format_all(specs) });
}

/// What a namespace may use now: (limit in bytes, reserve in bytes).
pub(crate) fn bounds(s: &Spec, maxmemory: u64) -> (Option<u64>, u64) {
    (s.limit.and_then(|l| l.bytes(maxmemory)), s.reserve.and_then(|r| r.bytes(maxmemory)).unwrap_or(0))
}

/// The eviction policy namespace `s` uses, `None` if it never evicts.
pub fn policy_of(s: &Spec, global: &str) -> Option<String> {
    let p = match &s.evict {
        Evict::None => return None,
        Evict::Inherit => global.to_string(),
        Evict::Policy(p) => p.clone(),
    };
    (p != "noeviction").then_some(p)
}

/// The namespace write gate, run before a `denyoom` command: for each key it may write,
/// the key's namespace must be under its limit, and must not need memory reserved for
/// other namespaces. Namespaces with an eviction policy make room by evicting their own
/// keys (within the command's time budget); otherwise the write is refused with an `-OOM`
/// error naming the namespace.
pub fn gate(
    shared: &Shared,
    settings: &crate::config::Settings,
    pool: &mut crate::evict::Pool,
    keys: &[&[u8]],
) -> Option<CmdError> {
    let (e, i) = gate_quiet(shared, settings, pool, keys)?;
    count_refusal(i, false);
    Some(e)
}

/// Counts a write refused by namespace `i`. A caller that holds shard locks (a script)
/// must say so: the table is then safe to read, and taking the guard could deadlock with
/// a reconfiguration waiting for those shards.
pub fn count_refusal(i: usize, holding_shards: bool) {
    let _read = (!holding_shards).then(|| namespace::GUARD.read_recursive());
    namespace::with_table(|t| t.counters.get(i).map(|c| c.rejected.fetch_add(1, Ordering::Relaxed)));
}

/// [`gate`] without counting the refusal: the error and the refusing namespace, for a
/// script that is refused only if it then tries to write.
pub fn gate_quiet(
    shared: &Shared,
    settings: &crate::config::Settings,
    pool: &mut crate::evict::Pool,
    keys: &[&[u8]],
) -> Option<(CmdError, usize)> {
    let _read = namespace::GUARD.read_recursive();
    let m = settings.maxmemory;
    let budget = crate::evict::time_limit(settings.eviction_tenacity);
    // Namespaces touched by this command (each checked once).
    let mut seen: Vec<usize> = Vec::new();
    for key in keys {
        let i = namespace::with_table(|t| t.index_of(key))?;
        if seen.contains(&i) {
            continue;
        }
        seen.push(i);
        let (spec, used) = namespace::with_table(|t| (t.specs[i].clone(), t.bytes(i)))?;
        let (limit, _) = bounds(&spec, m);
        if let Some(limit) = limit.filter(|&l| used >= l) {
            let freed = policy_of(&spec, &settings.maxmemory_policy)
                .map(|p| crate::evict::perform_namespace(shared, settings, pool, i, &p, limit, budget));
            if freed != Some(crate::evict::Outcome::Ok) && freed != Some(crate::evict::Outcome::Running) {
                return Some((
                    CmdError::new(format!(
                        "OOM command not allowed: namespace '{}' is at its limit ({} of {})",
                        spec.name,
                        human_bytes(used),
                        human_bytes(limit)
                    )),
                    i,
                ));
            }
        }
        if m == 0 {
            continue;
        }
        // Memory reserved for the other namespaces and not used by them is off limits.
        let held_back: u64 = namespace::with_table(|t| {
            (0..t.specs.len()).filter(|&j| j != i).map(|j| bounds(&t.specs[j], m).1.saturating_sub(t.bytes(j))).sum()
        })
        .unwrap_or(0);
        let ceiling = m.saturating_sub(held_back);
        if store::memory::used() < ceiling {
            continue;
        }
        let outcome = crate::evict::perform_shared(shared, settings, pool, ceiling, budget);
        if outcome == crate::evict::Outcome::Fail {
            return Some((CmdError::new(format!(
                "OOM command not allowed: namespace '{}' cannot grow: used memory is {} and the {} left under maxmemory {} is reserved for other namespaces",
                spec.name,
                human_bytes(store::memory::used()),
                human_bytes(held_back),
                human_bytes(m)
            )), i));
        }
    }
    None
}

/// One namespace's figures, as INFO and NAMESPACE INFO show them.
fn describe(t: &Table, i: usize, maxmemory: u64, global_policy: &str) -> Vec<(&'static str, String)> {
    let (s, c) = (&t.specs[i], &t.counters[i]);
    let (limit, reserve) = bounds(s, maxmemory);
    let patterns: Vec<String> = s.patterns.iter().map(|p| String::from_utf8_lossy(&p.text()).into_owned()).collect();
    vec![
        ("keys", c.keys.load(Ordering::Relaxed).max(0).to_string()),
        ("memory", t.bytes(i).to_string()),
        ("memory_human", human_bytes(t.bytes(i))),
        ("limit", limit.unwrap_or(0).to_string()),
        ("reserve", reserve.to_string()),
        ("evict", policy_of(s, global_policy).unwrap_or_else(|| "none".into())),
        ("match", if s.default { "(default)".into() } else { patterns.join(" ") }),
        ("persist", if s.persist { "yes" } else { "no" }.into()),
        ("hits", c.hits.load(Ordering::Relaxed).to_string()),
        ("misses", c.misses.load(Ordering::Relaxed).to_string()),
        ("evicted_keys", c.evicted.load(Ordering::Relaxed).to_string()),
        ("rejected_writes", c.rejected.load(Ordering::Relaxed).to_string()),
    ]
}

/// INFO's `# Namespaces` section: one line per namespace.
pub fn info_section(shared: &Shared, out: &mut String, holding_shards: bool) {
    let settings = shared.settings();
    out.push_str("# Namespaces\r\n");
    // Inside EXEC the caller holds every shard, which already keeps the table in place;
    // taking the guard there would wait for a reconfiguration that waits for those shards.
    let _read = (!holding_shards).then(|| namespace::GUARD.read_recursive());
    namespace::with_table(|t| {
        for i in 0..t.specs.len() {
            let fields = describe(t, i, settings.maxmemory, &settings.maxmemory_policy);
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", v.replace([',', ' '], "_"))).collect();
            let _ = write!(out, "ns_{}:{}\r\n", t.specs[i].name, body.join(","));
        }
    });
}

/// NAMESPACE LIST | INFO [name] | SET name ... | DEL name | HELP
pub fn command(shared: &Shared, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let arg = |i: usize| String::from_utf8_lossy(argv[i]).into_owned();
    let sub = arg(1).to_ascii_lowercase();
    let settings = shared.settings();
    match (sub.as_str(), argv.len()) {
        ("list", 2) => {
            let _read = namespace::GUARD.read_recursive();
            let names = namespace::with_table(|t| t.specs.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default();
            s.out.array(names.len());
            names.iter().for_each(|n| s.out.bulk(n.as_bytes()));
        }
        ("info", 2 | 3) => {
            let _read = namespace::GUARD.read_recursive();
            let all = namespace::with_table(|t| {
                (0..t.specs.len())
                    .filter(|&i| argv.len() == 2 || t.specs[i].name.as_bytes() == argv[2])
                    .map(|i| (t.specs[i].name.clone(), describe(t, i, settings.maxmemory, &settings.maxmemory_policy)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
            if all.is_empty() && argv.len() == 3 {
                return Err(CmdError::new(format!("ERR no such namespace '{}'", arg(2))));
            }
            s.out.map(all.len());
            for (name, fields) in all {
                s.out.bulk(name.as_bytes());
                s.out.map(fields.len());
                for (k, v) in fields {
                    s.out.bulk(k.as_bytes());
                    s.out.bulk(v.as_bytes());
                }
            }
        }
        ("set", n) if n >= 3 => {
            let words: Vec<String> = (2..argv.len()).map(arg).collect();
            let spec = parse_spec(&words).map_err(|e| CmdError::new(format!("ERR {e}")))?;
            let mut specs = parse_all(shared.config.lock().get("namespace")).unwrap_or_default();
            if spec.default {
                specs.iter_mut().for_each(|s| s.default = false);
            }
            match specs.iter_mut().find(|s| s.name == spec.name) {
                Some(old) => *old = spec,
                None => specs.push(spec),
            }
            store_config(shared, &specs)?;
            s.out.ok();
        }
        ("del", 3) => {
            let name = arg(2);
            let mut specs = parse_all(shared.config.lock().get("namespace")).unwrap_or_default();
            let before = specs.len();
            specs.retain(|s| s.name != name);
            if specs.len() == before {
                return Err(CmdError::new(format!("ERR no such namespace '{name}'")));
            }
            store_config(shared, &specs)?;
            s.out.ok();
        }
        ("help", 2) => {
            const LINES: &[&str] = &[
                "NAMESPACE <subcommand> [<arg> ...]. Subcommands are:",
                "LIST",
                "    Return the names of the namespaces (the default one first).",
                "INFO [<name>]",
                "    Return the keys, memory, limit, reserve, eviction policy, hits, misses,",
                "    evictions and refused writes of every namespace (or one).",
                "SET <name> [MATCH <pattern>]... [DEFAULT] [RESERVE <bytes>|<n>%] [LIMIT <bytes>|<n>%]",
                "    [EVICT none|inherit|<policy>]",
                "    Create or replace a namespace (CONFIG REWRITE persists it).",
                "DEL <name>",
                "    Remove a namespace; its keys fall to the default one.",
                "HELP",
                "    Print this help.",
            ];
            s.out.array(LINES.len());
            LINES.iter().for_each(|l| s.out.simple(l));
        }
        _ => {
            return Err(CmdError::new(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try NAMESPACE HELP.",
                arg(1)
            )))
        }
    }
    Ok(())
}

/// Stores definitions as the `namespace` parameter and applies them.
fn store_config(shared: &Shared, specs: &[Spec]) -> CmdResult {
    let param = crate::config::find("namespace").ok_or(CmdError::fixed("ERR namespaces are not configurable"))?;
    shared.config.lock().set(param, &[format_all(specs)]).map_err(|e| CmdError::new(format!("ERR {}", e.0)))?;
    shared.reload_settings();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn definitions_parse_and_print_back() {
        let s = parse_spec(&words("sessions match sess:* reserve 128mb evict none")).unwrap();
        assert_eq!(s.reserve, Some(Amount::Bytes(128 << 20)));
        assert_eq!(s.evict, Evict::None);
        assert_eq!(format_spec(&s), "sessions match \"sess:*\" reserve 134217728 evict none");
        let q = parse_spec(&words("queues match bull:* match rq:* limit 40% evict none")).unwrap();
        assert_eq!(q.limit, Some(Amount::Percent(40.0)));
        let c = parse_spec(&words("cache default evict auto")).unwrap();
        assert!(c.default);
        let all = parse_all("sessions match sess:* reserve 1mb; cache default evict allkeys-lru").unwrap();
        assert_eq!(parse_all(&format_all(&all)).unwrap(), all);
        assert!(parse_spec(&words("x")).is_err(), "needs a pattern");
        assert!(parse_spec(&words("x match a:* limit 150%")).is_err());
        assert!(parse_spec(&words("x match a:* evict sometimes")).is_err());
        assert!(parse_spec(&words("bad/name match a")).is_err());
        assert!(parse_all("a match x; a match y").is_err());
    }
}
