//! Soak: churn at a fixed key count and bounded value sizes (every type, values of changing
//! sizes, TTLs) must not
//! grow memory: RSS stays flat after warm-up, and FLUSHALL brings the counted memory back to
//! within 5% (or 64 KB) of the empty server's. The default run lasts `SOAK_SECS` seconds (20 when
//! unset: CI-sized); `SOAK_SECS=600 cargo test -p redoubt-tests --test soak -- --nocapture`
//! is the long form.

use std::time::{Duration, Instant};

use redoubt_tests::util::info_u64;
use redoubt_tests::{Conn, Server};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const KEYS: u64 = 2_000;

/// One batch of 200 random commands over the fixed key set.
fn batch(c: &mut Conn, rng: &mut Rng) {
    let mut cmds: Vec<Vec<String>> = Vec::with_capacity(200);
    for _ in 0..200 {
        let k = rng.below(KEYS);
        let size = 1 + rng.below(400) as usize;
        let v = "x".repeat(size);
        let cmd: Vec<String> = match rng.below(12) {
            0..=2 => vec!["SET".into(), format!("s:{k}"), v],
            3 => vec!["SET".into(), format!("s:{k}"), v, "PX".into(), (1 + rng.below(2000)).to_string()],
            4 => vec!["DEL".into(), format!("s:{k}"), format!("l:{k}"), format!("h:{k}"), format!("z:{k}")],
            5 | 6 => {
                // Bounded lists: push, then keep at most 8 elements.
                cmds.push(vec!["RPUSH".into(), format!("l:{k}"), v.clone(), v]);
                vec!["LTRIM".into(), format!("l:{k}"), "-8".into(), "-1".into()]
            }
            7 => vec!["HSET".into(), format!("h:{k}"), format!("f{}", rng.below(12)), v],
            8 => vec!["HDEL".into(), format!("h:{k}"), format!("f{}", rng.below(12))],
            9 => vec!["ZADD".into(), format!("z:{k}"), rng.below(1000).to_string(), format!("m{}", rng.below(12))],
            10 => vec!["ZREM".into(), format!("z:{k}"), format!("m{}", rng.below(12))],
            // Bounded strings: APPEND until 2 KB, then start over.
            _ => vec!["SET".into(), format!("s:{k}"), "y".repeat(1 + rng.below(2048) as usize)],
        };
        cmds.push(cmd);
    }
    for c2 in &cmds {
        c.send(c2).unwrap();
    }
    for _ in &cmds {
        c.read_reply_raw().unwrap();
    }
}

#[test]
fn churn_keeps_memory_flat_and_flushall_returns_it() {
    let secs: u64 = std::env::var("SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let server = Server::redoubt();
    let mut c = server.conn();
    // Slow-log entries keep copies of arguments: on a busy test machine some commands are
    // slow, and that bounded history is not what this test is about.
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]).unwrap();
    let mut rng = Rng(0x5eed);
    // The empty baseline: after one batch of the same commands (so per-command statistics
    // and the connection's buffers exist) and a FLUSHALL.
    batch(&mut c, &mut rng);
    c.cmd(&["FLUSHALL", "SYNC"]).unwrap();
    let baseline = info_u64(&mut c, "memory", "used_memory");
    // Warm-up: 120,000 commands, which populate the key set to its steady state.
    for _ in 0..600 {
        batch(&mut c, &mut rng);
    }
    let started = Instant::now();
    let (warm_rss, warm_used) =
        (info_u64(&mut c, "memory", "used_memory_rss"), info_u64(&mut c, "memory", "used_memory"));
    let mut peak_rss = warm_rss;
    while started.elapsed() < Duration::from_secs(secs) {
        for _ in 0..50 {
            batch(&mut c, &mut rng);
        }
        peak_rss = peak_rss.max(info_u64(&mut c, "memory", "used_memory_rss"));
    }
    let (end_rss, end_used) =
        (info_u64(&mut c, "memory", "used_memory_rss"), info_u64(&mut c, "memory", "used_memory"));
    println!(
        "soak {secs}s: used_memory {warm_used} -> {end_used}, RSS {warm_rss} -> {end_rss} (peak {peak_rss}), baseline {baseline}"
    );
    assert!(end_used as f64 <= warm_used as f64 * 1.15, "used_memory grew from {warm_used} to {end_used}");
    assert!(peak_rss as f64 <= warm_rss as f64 * 1.25, "RSS grew from {warm_rss} to {peak_rss}");
    c.cmd(&["FLUSHALL"]).unwrap();
    // 5% of the baseline, or 64 KB for the bounded per-command statistics (latency
    // histograms, error counters) a busy run may add, whichever is larger: an empty Redoubt
    // counts only ~300 KB, so 5% of it is smaller than one histogram set.
    let limit = baseline + (baseline / 20).max(64 * 1024);
    let mut after = 0;
    let returned = (0..100).any(|_| {
        after = info_u64(&mut c, "memory", "used_memory");
        after <= limit || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(returned, "used_memory {after} after FLUSHALL, baseline {baseline}");
    println!("after FLUSHALL: used_memory {after} (baseline {baseline})");
}
