//! `maxmemory` and eviction. Where Redis's outcome does not depend on how much memory each
//! server uses (a limit below what an empty server needs), replies and counts are compared
//! with redis-server for every policy. Where it does (a partial eviction), the same
//! property is asserted on both servers, so the test itself is checked against Redis.

use std::time::Duration;

use redoubt_tests::util::{info_u64, poll_until};
use redoubt_tests::{Conn, Server};

fn text(reply: Vec<u8>) -> String {
    String::from_utf8_lossy(&reply).into_owned()
}

fn cmd(c: &mut Conn, args: &[&str]) -> String {
    text(c.cmd(args).unwrap())
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
];

/// Fills 40 keys without TTL and 30 with one, of several types; returns nothing.
fn fill(c: &mut Conn) {
    for i in 0..10 {
        for (kind, ttl) in [("p", false), ("v", true)] {
            let k = format!("{kind}:s{i}");
            c.cmd(&["SET", &k, "value"]).unwrap();
            let l = format!("{kind}:l{i}");
            c.cmd(&["RPUSH", &l, "a", "b", "c"]).unwrap();
            let h = format!("{kind}:h{i}");
            c.cmd(&["HSET", &h, "f", "v"]).unwrap();
            if ttl {
                for key in [&k, &l, &h] {
                    c.cmd(&["EXPIRE", key, "1000"]).unwrap();
                }
            }
        }
        let z = format!("p:z{i}");
        c.cmd(&["ZADD", &z, "1", "m"]).unwrap();
    }
}

/// With a limit no server can meet, every policy's outcome is fixed: what can be evicted is,
/// then `denyoom` commands are refused while others run.
fn oom_scenario(server: &Server, policy: &str) -> Vec<(String, String)> {
    let mut c = server.conn();
    let mut out = Vec::new();
    fill(&mut c);
    cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", policy]);
    cmd(&mut c, &["CONFIG", "SET", "maxmemory", "1"]);
    for args in [
        &["SET", "new", "v"][..],
        &["GET", "p:s1"],
        &["GET", "v:s1"],
        &["LPUSH", "p:l2", "x"],
        &["LPOP", "p:l3"],
        &["DEL", "p:s4"],
        &["EXPIRE", "p:s5", "100"],
        &["INCR", "counter"],
        &["HGET", "p:h1", "f"],
        &["SADD", "set", "m"],
        &["ZADD", "p:z1", "2", "m"],
        &["APPEND", "p:s6", "x"],
        &["MULTI"],
        &["SET", "a", "b"],
        &["EXEC"],
        &["MULTI"],
        &["GET", "p:s7"],
        &["EXEC"],
    ] {
        out.push((args.join(" "), cmd(&mut c, args)));
    }
    cmd(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    out.push(("dbsize".into(), cmd(&mut c, &["DBSIZE"])));
    let kept = |c: &mut Conn, prefix: &str| {
        let keys = cmd(c, &["KEYS", &format!("{prefix}*")]);
        keys.lines().filter(|l| !l.starts_with('*') && !l.starts_with('$')).count()
    };
    out.push(("p kept".into(), kept(&mut c, "p:").to_string()));
    out.push(("v kept".into(), kept(&mut c, "v:").to_string()));
    out.push(("evicted_keys".into(), info_u64(&mut c, "stats", "evicted_keys").to_string()));
    cmd(&mut c, &["FLUSHALL"]);
    cmd(&mut c, &["CONFIG", "RESETSTAT"]);
    out
}

#[test]
fn oom_behaviour_matches_redis_for_every_policy() {
    let (redis, redoubt) = (Server::redis(), Server::redoubt());
    for policy in POLICIES {
        let want = oom_scenario(&redis, policy);
        let got = oom_scenario(&redoubt, policy);
        assert_eq!(want, got, "policy {policy}");
    }
}

/// Loads `n` keys of about 1 KB, returning the memory they added.
fn load(c: &mut Conn, n: usize, ttl: impl Fn(usize) -> Option<u64>) -> u64 {
    let before = info_u64(c, "memory", "used_memory");
    let value = "x".repeat(1000);
    for i in 0..n {
        let k = format!("k:{i:05}");
        match ttl(i) {
            Some(t) => c.cmd(&["SET", &k, &value, "EX", &t.to_string()]).unwrap(),
            None => c.cmd(&["SET", &k, &value]).unwrap(),
        };
    }
    info_u64(c, "memory", "used_memory") - before
}

/// Cuts the limit to `keep` (a fraction) of the loaded data plus what was used before, waits
/// for eviction to finish (PING makes each server run its eviction before it answers), and
/// returns which of the `n` keys survived.
fn cut_to(c: &mut Conn, keep: f64, loaded: u64, policy: &str, n: usize) -> Vec<bool> {
    let used = info_u64(c, "memory", "used_memory");
    let limit = used - loaded + (loaded as f64 * keep) as u64;
    cmd(c, &["CONFIG", "SET", "maxmemory-policy", policy]);
    cmd(c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    poll_until(Duration::from_secs(20), "eviction to bring memory under the limit", || {
        cmd(c, &["PING"]);
        (info_u64(c, "memory", "used_memory") <= limit).then_some(())
    });
    cmd(c, &["CONFIG", "SET", "maxmemory", "0"]);
    (0..n).map(|i| cmd(c, &["EXISTS", &format!("k:{i:05}")]) == ":1\r\n").collect()
}

/// volatile-ttl evicts the keys closest to expiring first; keys without a TTL never go.
fn ttl_property(server: &Server) {
    let mut c = server.conn();
    let n = 2000;
    // Even keys have TTLs 1000..2000 s rising with the index; odd keys have none.
    let loaded = load(&mut c, n, |i| (i % 2 == 0).then_some(1000 + i as u64 / 2));
    let kept = cut_to(&mut c, 0.7, loaded, "volatile-ttl", n);
    assert!((1..n).step_by(2).all(|i| kept[i]), "a key without TTL was evicted on {:?}", server.kind());
    let evicted: Vec<usize> = (0..n).step_by(2).filter(|&i| !kept[i]).collect();
    assert!(!evicted.is_empty());
    // Sampled, so not exact (Redis itself lands around 75-80%): most evicted keys come from
    // the nearest-to-expire half, where evicting at random would give half.
    let near = evicted.iter().filter(|&&i| i < n / 2).count();
    assert!(
        near * 10 >= evicted.len() * 7,
        "{near} of {} evicted keys were near expiry on {:?}",
        evicted.len(),
        server.kind()
    );
}

#[test]
fn volatile_ttl_evicts_nearest_expiry_first() {
    ttl_property(&Server::redis());
    ttl_property(&Server::redoubt());
}

/// allkeys-lfu keeps the keys read often.
fn lfu_property(server: &Server) {
    let mut c = server.conn();
    let n = 2000;
    cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    let loaded = load(&mut c, n, |_| None);
    // The first 10% are read 30 times each.
    for _ in 0..30 {
        for i in 0..n / 10 {
            c.cmd(&["GET", &format!("k:{i:05}")]).unwrap();
        }
    }
    let kept = cut_to(&mut c, 0.5, loaded, "allkeys-lfu", n);
    let hot = (0..n / 10).filter(|&i| kept[i]).count();
    assert!(hot * 100 >= (n / 10) * 95, "only {hot} of {} hot keys kept on {:?}", n / 10, server.kind());
}

#[test]
fn lfu_keeps_frequently_read_keys() {
    lfu_property(&Server::redis());
    lfu_property(&Server::redoubt());
}

/// allkeys-lru keeps the keys read recently. The LRU clock has a one-second resolution (in
/// Redis and here), so the test lets two seconds pass between the loads and the reads.
fn lru_property(server: &Server) {
    let mut c = server.conn();
    let n = 2000;
    let loaded = load(&mut c, n, |_| None);
    std::thread::sleep(Duration::from_millis(2100));
    for i in 0..n / 10 {
        c.cmd(&["GET", &format!("k:{i:05}")]).unwrap();
    }
    let kept = cut_to(&mut c, 0.5, loaded, "allkeys-lru", n);
    let hot = (0..n / 10).filter(|&i| kept[i]).count();
    let all = kept.iter().filter(|k| **k).count();
    assert!(
        hot * 100 >= (n / 10) * 95,
        "only {hot} of {} recent keys kept on {:?} ({all} keys kept)",
        n / 10,
        server.kind()
    );
}

#[test]
fn lru_keeps_recently_read_keys() {
    lru_property(&Server::redis());
    lru_property(&Server::redoubt());
}

/// A sudden cut of the limit is worked off in slices: the command that first sees it gets
/// its answer after a bounded amount of eviction, and the rest happens in the background.
#[test]
fn a_limit_cut_is_evicted_in_the_background() {
    let server = Server::redoubt();
    let mut c = server.conn();
    let n = 60_000;
    let value = "x".repeat(100);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut args = vec!["MSET".to_string()];
        for i in chunk {
            args.push(format!("key:{i}"));
            args.push(value.clone());
        }
        c.cmd(&args).unwrap();
    }
    let used = info_u64(&mut c, "memory", "used_memory");
    cmd(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    cmd(&mut c, &["CONFIG", "SET", "maxmemory", &(used / 4).to_string()]);
    assert_eq!(cmd(&mut c, &["SET", "right-after", "v"]), "+OK\r\n");
    let early = info_u64(&mut c, "stats", "evicted_keys");
    assert!(early < n as u64 / 2, "the first command evicted {early} keys itself");
    poll_until(Duration::from_secs(20), "memory under the new limit", || {
        (info_u64(&mut c, "memory", "used_memory") <= used / 4).then_some(())
    });
    assert!(info_u64(&mut c, "stats", "evicted_keys") > early);
}
