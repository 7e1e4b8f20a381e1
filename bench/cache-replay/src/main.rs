//! cache-replay: the eviction benchmark's client and the eviction-policy simulator.
//!
//! ```text
//! cache-replay replay   --addr 127.0.0.1:PORT --trace zipf-1.0 [trace options] [--value-size 100]
//!                       [--pipeline 64] [--warmup 0.2]
//! cache-replay load     --addr 127.0.0.1:PORT --keys N [--value-size 100]
//! cache-replay --simulate [--traces LIST] [trace options] [--capacity C | --capacity-frac 0.1]
//!                       [--factors 1,1.7] [--policies LIST] [--rate 150000] [--threads 1]
//! cache-replay traces   [trace options]        (prints the exact trace definitions)
//! cache-replay mrc      [--traces LIST] [trace options] [--max-keys 4096] [--max-rate 0.02]
//!                       [--cache-frac 0.1] [--policy lru|lfu|auto|random] [--rate 150000]
//!                       [--samples 5]
//!                       (the online miss-ratio curve against the exact offline one)
//! ```
//! Trace options: `--keys N` (100000), `--requests R` (20 * N), `--seed S` (1), `--scan-len`
//! (N/10), `--scan-fraction` (0.2), `--shift-every` (N), `--shift-by` (N/50).
//! See bench/README.md ("Eviction") and bench/EVICTION-STUDY.md.

mod replay;
mod resp;
mod sim;
mod trace;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    mode: String,
    opts: HashMap<String, String>,
}

const MODES: &[&str] = &["replay", "load", "simulate", "traces", "mrc", "help"];

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1).peekable();
    let mut mode = None;
    let mut opts = HashMap::new();
    while let Some(a) = it.next() {
        if a == "--simulate" {
            mode = Some("simulate".to_string());
        } else if a == "-h" || a == "--help" {
            mode = Some("help".to_string());
        } else if let Some(name) = a.strip_prefix("--") {
            let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            opts.insert(name.to_string(), v);
        } else if MODES.contains(&a.as_str()) && mode.is_none() {
            mode = Some(a);
        } else {
            return Err(format!("unexpected argument '{a}'"));
        }
    }
    Ok(Args { mode: mode.unwrap_or_else(|| "help".to_string()), opts })
}

impl Args {
    fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.opts.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("bad value for --{name}: '{v}'")),
        }
    }
    fn str(&self, name: &str) -> Option<&str> {
        self.opts.get(name).map(|s| s.as_str())
    }
    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        for k in self.opts.keys() {
            if !known.contains(&k.as_str()) {
                return Err(format!("unknown option --{k} for '{}'", self.mode));
            }
        }
        Ok(())
    }

    fn trace_params(&self, kind: trace::Kind) -> Result<trace::Params, String> {
        let keys: usize = self.get("keys", 100_000)?;
        if keys == 0 || keys > 100_000_000 {
            return Err("--keys must be 1..100000000".into());
        }
        let requests: usize = self.get("requests", 20 * keys)?;
        let mut p = trace::Params::new(kind, keys, requests, self.get("seed", 1)?);
        p.scan_len = self.get("scan-len", 0)?;
        p.scan_fraction = self.get("scan-fraction", 0.2)?;
        if !(p.scan_fraction > 0.0 && p.scan_fraction < 1.0) {
            return Err("--scan-fraction must be in (0, 1)".into());
        }
        p.shift_every = self.get("shift-every", 0)?;
        p.shift_by = self.get("shift-by", 0)?;
        Ok(p.resolve())
    }

    fn warmup(&self, requests: usize) -> Result<usize, String> {
        let w: f64 = self.get("warmup", 0.2)?;
        if !(0.0..1.0).contains(&w) {
            return Err("--warmup must be in [0, 1)".into());
        }
        Ok((requests as f64 * w) as usize)
    }
}

const TRACE_OPTS: &[&str] = &["keys", "requests", "seed", "scan-len", "scan-fraction", "shift-every", "shift-by"];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    TRACE_OPTS.iter().chain(extra).copied().collect()
}

fn cmd_traces(a: &Args) -> Result<(), String> {
    a.check_known(&with(&["traces"]))?;
    for t in a.str("traces").unwrap_or(trace::DEFAULT_TRACES).split(',') {
        println!("{}", a.trace_params(trace::Kind::parse(t)?)?.describe());
    }
    Ok(())
}

/// The server's online miss-ratio curve against the exact offline one of each whole trace,
/// at 0.25x..4x of a cache of `cache-frac` of the bytes the trace touches. Key sizes are
/// 50..1050 bytes, drawn per key from the seed, so the curves are byte-weighted as the
/// server's are.
///
/// `--policy lru` (the default) measures SHARDS's stack distances against the exact LRU
/// curve. `lfu`, `auto` and `random` measure the miniature simulations (the server's own
/// clock rules, on the sampled keys at the sample's scale) against full-size simulations
/// of the same rules on every request; `--rate` requests a second set the clock LFU decays by.
fn cmd_mrc(a: &Args) -> Result<(), String> {
    a.check_known(&with(&["traces", "max-keys", "max-rate", "cache-frac", "policy", "rate", "samples"]))?;
    let max_keys: usize = a.get("max-keys", 4096)?;
    let max_rate: f64 = a.get("max-rate", 0.02)?;
    let frac: f64 = a.get("cache-frac", 0.1)?;
    let per_sec: f64 = a.get("rate", 150_000.0)?;
    let samples: usize = a.get("samples", 5)?;
    let model = match a.str("policy").unwrap_or("lru") {
        "lru" => store::mrc::Model::Lru,
        "lfu" => store::mrc::Model::Lfu { log_factor: 10, decay_minutes: 1, samples, volatile: false },
        "auto" => store::mrc::Model::Auto { samples: samples.max(8) },
        "random" => store::mrc::Model::Random { volatile: false },
        other => return Err(format!("unknown policy '{other}' (lru, lfu, auto or random)")),
    };
    let mut worst: f64 = 0.0;
    for t in a.str("traces").unwrap_or(trace::DEFAULT_TRACES).split(',') {
        let p = a.trace_params(trace::Kind::parse(t)?)?;
        let (tr, ids) = p.generate();
        let size = |k: u64| 50.0 + (trace::mix64(k ^ p.seed.rotate_left(17)) % 1001) as f64;
        let keys: Vec<u64> = tr.iter().map(|&k| k as u64).collect();
        let ms = |i: usize| (i as f64 * 1000.0 / per_sec) as i64;
        let mut seen = vec![false; ids];
        let touched: f64 =
            tr.iter().filter(|&&k| !std::mem::replace(&mut seen[k as usize], true)).map(|&k| size(k as u64)).sum();
        let base = touched * frac;
        let cache: Vec<f64> = guard::mrc::FACTORS.iter().map(|f| f * base).collect();
        let started = Instant::now();
        let exact = match model.policy() {
            None => guard::mrc::exact_curve(&keys, size, &cache),
            Some(rules) => {
                let mut full = guard::minisim::MiniSim::new(rules, &guard::mrc::FACTORS);
                full.set_scale(base, 1.0);
                for (i, &k) in keys.iter().enumerate() {
                    full.access(guard::mrc::remix(k), size(k), false, 1.0, ms(i));
                }
                full.hit_ratios(0.0)
            }
        };
        let exact_secs = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut s = guard::mrc::Shards::with_rate(max_keys, max_rate);
        s.set_policy(model.policy());
        s.set_base(base);
        for (i, &k) in keys.iter().enumerate() {
            s.set_now(ms(i));
            s.access(guard::mrc::remix(k), Some(size(k)));
            s.count_all(1.0);
        }
        let online_ns = started.elapsed().as_nanos() as f64 / keys.len() as f64;
        let got = s.curve();
        let mae = exact.iter().zip(&got).map(|(x, y)| (x - y).abs()).sum::<f64>() / exact.len() as f64;
        let max = exact.iter().zip(&got).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        worst = worst.max(mae);
        let pts: Vec<String> = exact.iter().zip(&got).map(|(x, y)| format!("{x:.3}/{y:.3}")).collect();
        println!(
            "RESULT trace={t} policy={model:?} requests={} mae={mae:.4} max_error={max:.4} rate={:.4} online_ns_per_access={online_ns:.0} exact_secs={exact_secs:.1} exact/online@0.25..4x={}",
            keys.len(),
            s.rate(),
            pts.join(",")
        );
    }
    println!("WORST mae={worst:.4} (target <= 0.02)");
    Ok(())
}

fn cmd_replay(a: &Args) -> Result<(), String> {
    a.check_known(&with(&["addr", "trace", "value-size", "pipeline", "warmup", "timeout"]))?;
    let addr = a.str("addr").ok_or("--addr host:port is required")?;
    let kind = trace::Kind::parse(a.str("trace").ok_or("--trace is required")?)?;
    let p = a.trace_params(kind)?;
    let (tr, ids) = p.generate();
    let opt = replay::Options {
        pipeline: a.get("pipeline", 64)?,
        value_size: a.get("value-size", 100)?,
        warmup: a.warmup(tr.len())?,
        timeout: Duration::from_secs(a.get("timeout", 60)?),
    };
    eprintln!("replay: {}", p.describe());
    let st = replay::replay(addr, &tr, ids, &opt).map_err(|e| format!("replay against {addr}: {e}"))?;
    let secs = st.elapsed.as_secs_f64();
    let counted = st.counted.max(1) as f64;
    println!(
        "RESULT trace={} keys={} requests={} counted={} hits={} misses={} hit_ratio={:.5} \
         miss_ratio={:.5} sets={} set_errors={} get_errors={} elapsed_s={:.3} req_per_s={:.0}",
        p.kind,
        p.keys,
        st.requests,
        st.counted,
        st.hits,
        st.misses,
        st.hits as f64 / counted,
        st.misses as f64 / counted,
        st.sets,
        st.set_errors,
        st.get_errors,
        secs,
        st.requests as f64 / secs
    );
    if let Some(e) = st.first_error {
        return Err(format!("{} errors, first: {e}", st.set_errors + st.get_errors));
    }
    Ok(())
}

fn cmd_load(a: &Args) -> Result<(), String> {
    a.check_known(&["addr", "keys", "value-size", "timeout"])?;
    let addr = a.str("addr").ok_or("--addr host:port is required")?;
    let keys: usize = a.get("keys", 100_000)?;
    let errors = replay::load(addr, keys, a.get("value-size", 100)?, Duration::from_secs(a.get("timeout", 60)?))
        .map_err(|e| format!("load into {addr}: {e}"))?;
    println!("LOADED keys={keys} errors={errors}");
    if errors > 0 {
        return Err(format!("{errors} SETs failed"));
    }
    Ok(())
}

/// The study's default policy list: Redis's two, then the candidates.
const DEFAULT_POLICIES: &str = "redis-lru,redis-lfu,lru-exact,lru-ms,lfu-aged,lfu-aged-ghost,lru2,lru2-ghost,\
hyperbolic,s3fifo/k16,tinylfu,tinylfu/k16";

fn cmd_simulate(a: &Args) -> Result<(), String> {
    a.check_known(&with(&[
        "traces",
        "policies",
        "capacity",
        "capacity-frac",
        "factors",
        "rate",
        "threads",
        "warmup",
        "csv",
    ]))?;
    let kinds: Vec<trace::Kind> = a
        .str("traces")
        .unwrap_or(trace::DEFAULT_TRACES)
        .split(',')
        .map(trace::Kind::parse)
        .collect::<Result<_, _>>()?;
    let policies: Vec<sim::Policy> =
        a.str("policies").unwrap_or(DEFAULT_POLICIES).split(',').map(sim::Policy::parse).collect::<Result<_, _>>()?;
    let factors: Vec<f64> = a
        .str("factors")
        .unwrap_or("1,1.7")
        .split(',')
        .map(|f| f.parse::<f64>().map_err(|_| format!("bad factor '{f}'")))
        .collect::<Result<_, _>>()?;
    let rate: f64 = a.get("rate", 150_000.0)?;
    let threads: usize = a.get("threads", 1)?;
    let clock = sim::Clock { rate };
    let mut csv = String::from("trace,keys,requests,capacity,factor,policy,hits,misses,miss_ratio\n");
    for kind in kinds {
        let p = a.trace_params(kind)?;
        let base_cap: usize = match a.str("capacity") {
            Some(_) => a.get("capacity", 0)?,
            None => (p.keys as f64 * a.get("capacity-frac", 0.1)?).round() as usize,
        };
        if base_cap == 0 {
            return Err("capacity must be at least 1".into());
        }
        let (tr, ids) = p.generate();
        let warmup = a.warmup(tr.len())?;
        println!(
            "\n### {}\n\n{}; capacity {} objects (x{}), warm-up {} requests, clock rate {} req/s\n",
            p.kind,
            p.describe(),
            base_cap,
            factors.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", x"),
            warmup,
            rate
        );
        // Jobs: (policy index, factor index).
        let jobs: Vec<(usize, usize)> =
            (0..policies.len()).flat_map(|i| (0..factors.len()).map(move |j| (i, j))).collect();
        let results = std::sync::Mutex::new(HashMap::<(usize, usize), (usize, usize, usize, f64)>::new());
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| loop {
                    let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(pi, fi)) = jobs.get(j) else { break };
                    let cap = ((base_cap as f64) * factors[fi]).round() as usize;
                    let t0 = Instant::now();
                    let mut c = policies[pi].build(ids, cap, clock, p.seed ^ 0xC0FFEE);
                    let (h, m) = sim::run(c.as_mut(), &tr, warmup);
                    let el = t0.elapsed().as_secs_f64();
                    results.lock().unwrap_or_else(|e| e.into_inner()).insert((pi, fi), (cap, h, m, el));
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        let mr = |pi: usize, fi: usize| {
            let (_, h, m, _) = results[&(pi, fi)];
            m as f64 / (h + m).max(1) as f64
        };
        let find = |n: &str| policies.iter().position(|p| p.name == n);
        let (lru, lfu) = (find("redis-lru"), find("redis-lfu"));
        let f1 = factors.iter().position(|&f| f == 1.0);
        let mut hdr = String::from("| policy |");
        let mut sep = String::from("| --- |");
        for f in &factors {
            hdr += &format!(" miss x{f} |");
            sep += " ---: |";
            if f1.is_some() && (lru.is_some() || lfu.is_some()) {
                hdr += &format!(" vs LRU x{f} | vs LFU x{f} |");
                sep += " ---: | ---: |";
            }
        }
        println!("{hdr}\n{sep}");
        for (pi, pol) in policies.iter().enumerate() {
            let mut row = format!("| {} |", pol.name);
            for fi in 0..factors.len() {
                let m = mr(pi, fi);
                row += &format!(" {:.4} |", m);
                if let Some(f1) = f1 {
                    let rel = |b: Option<usize>| match b {
                        Some(b) => format!(" {:+.1}% |", (m / mr(b, f1) - 1.0) * 100.0),
                        None => " - |".to_string(),
                    };
                    if lru.is_some() || lfu.is_some() {
                        row += &rel(lru);
                        row += &rel(lfu);
                    }
                }
                let (cap, h, m_, _) = results[&(pi, fi)];
                csv += &format!(
                    "{},{},{},{},{},{},{},{},{:.6}\n",
                    p.kind,
                    p.keys,
                    p.requests,
                    cap,
                    factors[fi],
                    pol.name,
                    h,
                    m_,
                    mr(pi, fi)
                );
            }
            println!("{row}");
        }
        let total: f64 = results.values().map(|r| r.3).sum();
        eprintln!("({}: {} runs, {:.1}s of simulation)", p.kind, results.len(), total);
    }
    println!("\n(vs LRU / vs LFU: change of the miss ratio relative to redis-lru / redis-lfu at x1; negative = fewer misses)");
    if let Some(path) = a.str("csv") {
        std::fs::write(path, csv).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(())
}

fn usage() {
    let doc = include_str!("main.rs");
    for line in doc.lines().take_while(|l| l.starts_with("//!")) {
        println!("{}", line.trim_start_matches("//!").strip_prefix(' ').unwrap_or(""));
    }
    println!(
        "\nPolicies: {}\n  (suffix /kN: N samples per eviction, /pN: pool size; defaults k5 p16)",
        sim::BASES.join(", ")
    );
}

fn main() -> ExitCode {
    let r = parse_args().and_then(|a| match a.mode.as_str() {
        "replay" => cmd_replay(&a),
        "load" => cmd_load(&a),
        "simulate" => cmd_simulate(&a),
        "traces" => cmd_traces(&a),
        "mrc" => cmd_mrc(&a),
        _ => {
            usage();
            Ok(())
        }
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cache-replay: {e}");
            ExitCode::FAILURE
        }
    }
}
