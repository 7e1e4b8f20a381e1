//! Randomized differential tests: seeded random command sequences on each data type, sent to
//! Redoubt and to redis-server, every reply compared byte for byte. The reference server is
//! the model; the seeds are fixed, so a failure always reproduces.

use redoubt_tests::{Conn, Server};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// A signed index in -span..span.
    fn index(&mut self, span: i64) -> String {
        (self.below(2 * span as u64) as i64 - span).to_string()
    }
}

const KEYS: &[&str] = &["k1", "k2", "k3"];

/// Values: short strings, integers (stored compactly), and one long value that forces the
/// large encodings when it lands.
fn value(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=4 => format!("v{}", rng.below(20)),
        5..=7 => (rng.below(2000) as i64 - 1000).to_string(),
        8 => String::new(),
        _ => "x".repeat(70 + rng.below(40) as usize),
    }
}

fn list_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let op = rng.pick(&[
        "LPUSH", "RPUSH", "LPOP", "RPOP", "LINDEX", "LRANGE", "LSET", "LREM", "LTRIM", "LINSERT", "LLEN", "LPOS",
        "LMOVE", "RPUSHX",
    ]);
    let mut c = vec![op.to_string(), key];
    match op {
        "LPUSH" | "RPUSH" | "RPUSHX" => (0..1 + rng.below(4)).for_each(|_| c.push(value(rng))),
        "LPOP" | "RPOP" if rng.below(2) == 0 => c.push(rng.below(4).to_string()),
        "LINDEX" => c.push(rng.index(12)),
        "LRANGE" | "LTRIM" => {
            c.push(rng.index(12));
            c.push(rng.index(12));
        }
        "LSET" => {
            c.push(rng.index(8));
            c.push(value(rng));
        }
        "LREM" => {
            c.push(rng.index(3));
            c.push(value(rng));
        }
        "LINSERT" => {
            c.push(rng.pick(&["BEFORE", "AFTER"]).to_string());
            c.push(value(rng));
            c.push(value(rng));
        }
        "LPOS" => {
            c.push(value(rng));
            if rng.below(2) == 0 {
                c.extend(["RANK".to_string(), (rng.below(3) as i64 + 1).to_string()]);
            }
        }
        "LMOVE" => {
            c.push(rng.pick(KEYS).to_string());
            c.push(rng.pick(&["LEFT", "RIGHT"]).to_string());
            c.push(rng.pick(&["LEFT", "RIGHT"]).to_string());
        }
        _ => {}
    }
    c
}

fn hash_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let op = rng.pick(&["HSET", "HSETNX", "HGET", "HDEL", "HEXISTS", "HLEN", "HINCRBY", "HSTRLEN", "HMGET"]);
    let mut c = vec![op.to_string(), key];
    let f = |rng: &mut Rng| format!("f{}", rng.below(12));
    match op {
        "HSET" => (0..1 + rng.below(3)).for_each(|_| {
            c.push(f(rng));
            c.push(value(rng));
        }),
        "HSETNX" => {
            c.push(f(rng));
            c.push(value(rng));
        }
        "HINCRBY" => {
            c.push(f(rng));
            c.push(rng.index(100));
        }
        "HDEL" | "HMGET" => (0..1 + rng.below(3)).for_each(|_| c.push(f(rng))),
        "HGET" | "HEXISTS" | "HSTRLEN" => c.push(f(rng)),
        _ => {}
    }
    c
}

fn set_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let op = rng.pick(&[
        "SADD",
        "SREM",
        "SISMEMBER",
        "SCARD",
        "SMISMEMBER",
        "SMOVE",
        "SINTERCARD",
        "SINTERSTORE",
        "SUNIONSTORE",
        "SDIFFSTORE",
    ]);
    let m = |rng: &mut Rng| match rng.below(3) {
        0 => rng.below(30).to_string(),
        1 => format!("m{}", rng.below(30)),
        _ => (rng.below(1_000_000) as i64 - 500_000).to_string(),
    };
    let mut c = vec![op.to_string(), key];
    match op {
        "SADD" | "SREM" | "SMISMEMBER" => (0..1 + rng.below(4)).for_each(|_| c.push(m(rng))),
        "SISMEMBER" => c.push(m(rng)),
        "SMOVE" => {
            c.push(rng.pick(KEYS).to_string());
            c.push(m(rng));
        }
        "SINTERCARD" => {
            c.truncate(1);
            c.extend(["2".to_string(), rng.pick(KEYS).to_string(), rng.pick(KEYS).to_string()]);
        }
        "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" => {
            c.push(rng.pick(KEYS).to_string());
            c.push(rng.pick(KEYS).to_string());
        }
        _ => {}
    }
    c
}

/// Sorted-set commands. Scores are small integers, halves and infinities, which Redis 7.0
/// (the reference here) and 7.2 print alike. Lexicographic commands use their own key whose
/// scores are all 0 (Redis leaves lex ranges over mixed scores undefined).
fn zset_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let member = |rng: &mut Rng| match rng.below(12) {
        0 => "w".repeat(65 + rng.below(5) as usize),
        1 => String::new(),
        _ => format!("m{}", rng.below(40)),
    };
    let score = |rng: &mut Rng| match rng.below(20) {
        0 => "inf".to_string(),
        1 => "-inf".to_string(),
        2..=6 => format!("{}.5", rng.below(20) as i64 - 10),
        _ => (rng.below(30) as i64 - 15).to_string(),
    };
    let bound = |rng: &mut Rng| {
        let s = score(rng);
        if rng.below(3) == 0 {
            format!("({s}")
        } else {
            s
        }
    };
    let lex = |rng: &mut Rng| match rng.below(8) {
        0 => "-".to_string(),
        1 => "+".to_string(),
        n => format!("{}m{}", if n % 2 == 0 { "[" } else { "(" }, rng.below(40)),
    };
    let op = rng.pick(&[
        "ZADD",
        "ZADD",
        "ZADD",
        "ZINCRBY",
        "ZREM",
        "ZSCORE",
        "ZMSCORE",
        "ZCARD",
        "ZCOUNT",
        "ZRANK",
        "ZREVRANK",
        "ZRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGEBYSCORE",
        "ZREMRANGEBYSCORE",
        "ZREMRANGEBYRANK",
        "ZPOPMIN",
        "ZPOPMAX",
        "ZRANGESTORE",
        "ZUNIONSTORE",
        "ZINTERSTORE",
        "ZDIFFSTORE",
        "ZINTERCARD",
        "ZMPOP",
        "LEX",
        "LEX",
    ]);
    let mut c = vec![op.to_string(), key.clone()];
    match op {
        "ZADD" => {
            c.truncate(2);
            for flag in ["NX", "XX", "GT", "LT", "CH"] {
                if rng.below(8) == 0 {
                    c.push(flag.to_string());
                }
            }
            if rng.below(10) == 0 {
                c.extend(["INCR".to_string(), score(rng), member(rng)]);
            } else {
                (0..1 + rng.below(4)).for_each(|_| {
                    c.push(score(rng));
                    c.push(member(rng));
                });
            }
        }
        "ZINCRBY" => {
            c.push(score(rng));
            c.push(member(rng));
        }
        "ZREM" | "ZMSCORE" => (0..1 + rng.below(3)).for_each(|_| c.push(member(rng))),
        "ZSCORE" | "ZRANK" | "ZREVRANK" => c.push(member(rng)),
        "ZCOUNT" | "ZREMRANGEBYSCORE" => {
            c.push(bound(rng));
            c.push(bound(rng));
        }
        "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" => {
            c.push(bound(rng));
            c.push(bound(rng));
            if rng.below(2) == 0 {
                c.push("WITHSCORES".to_string());
            }
            if rng.below(3) == 0 {
                c.extend(["LIMIT".to_string(), rng.index(4), rng.index(6)]);
            }
        }
        "ZRANGE" => match rng.below(3) {
            0 => {
                c.push(rng.index(12));
                c.push(rng.index(12));
                if rng.below(2) == 0 {
                    c.push("REV".to_string());
                }
                c.push("WITHSCORES".to_string());
            }
            _ => {
                c.push(bound(rng));
                c.push(bound(rng));
                c.push("BYSCORE".to_string());
                if rng.below(2) == 0 {
                    c.push("REV".to_string());
                }
                if rng.below(2) == 0 {
                    c.extend(["LIMIT".to_string(), rng.index(3), rng.index(5)]);
                }
                c.push("WITHSCORES".to_string());
            }
        },
        "ZREMRANGEBYRANK" => {
            c.push(rng.index(12));
            c.push(rng.index(12));
        }
        "ZPOPMIN" | "ZPOPMAX" if rng.below(2) == 0 => c.push(rng.below(4).to_string()),
        "ZRANGESTORE" => {
            c.push(rng.pick(KEYS).to_string());
            c.push(rng.index(12));
            c.push(rng.index(12));
        }
        "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE" => {
            c.extend(["2".to_string(), rng.pick(KEYS).to_string(), rng.pick(KEYS).to_string()]);
            if op != "ZDIFFSTORE" && rng.below(2) == 0 {
                c.extend(["WEIGHTS".to_string(), rng.pick(&["1", "2", "-1", "0.5", "0"]).to_string(), "3".to_string()]);
            }
            if op != "ZDIFFSTORE" && rng.below(2) == 0 {
                c.extend(["AGGREGATE".to_string(), rng.pick(&["SUM", "MIN", "MAX"]).to_string()]);
            }
        }
        "ZINTERCARD" => {
            c.truncate(1);
            c.extend(["2".to_string(), key, rng.pick(KEYS).to_string()]);
        }
        "ZMPOP" => {
            c.truncate(1);
            c.extend(["2".to_string(), key, rng.pick(KEYS).to_string(), rng.pick(&["MIN", "MAX"]).to_string()]);
            c.extend(["COUNT".to_string(), (1 + rng.below(3)).to_string()]);
        }
        "LEX" => {
            let op = rng.pick(&["ZADD", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX", "ZRANGE"]);
            c = vec![op.to_string(), "lex".to_string()];
            match op {
                "ZADD" => (0..1 + rng.below(4)).for_each(|_| {
                    c.push("0".to_string());
                    c.push(format!("m{}", rng.below(40)));
                }),
                "ZRANGE" => {
                    c.extend([lex(rng), lex(rng), "BYLEX".to_string()]);
                    if rng.below(2) == 0 {
                        c.push("REV".to_string());
                    }
                    c.extend(["LIMIT".to_string(), rng.index(3), rng.index(5)]);
                }
                "ZRANGEBYLEX" | "ZREVRANGEBYLEX" => {
                    c.extend([lex(rng), lex(rng)]);
                    if rng.below(2) == 0 {
                        c.extend(["LIMIT".to_string(), rng.index(3), rng.index(5)]);
                    }
                }
                _ => c.extend([lex(rng), lex(rng)]),
            }
        }
        _ => {}
    }
    c
}

/// Sends `steps` random commands from `gen` to both servers and compares every reply. After
/// the run, each key's whole content and encoding are compared too.
/// A stream ID near the others (small ms and seq, so commands hit existing entries often).
fn stream_id(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => "-".to_string(),
        1 => "+".to_string(),
        2 => format!("({}-{}", rng.below(60), rng.below(3)),
        3 => rng.below(60).to_string(),
        _ => format!("{}-{}", rng.below(60), rng.below(3)),
    }
}

/// Stream commands with explicit IDs (auto IDs depend on the clock), small nodes so trimming
/// and deletion cross node boundaries, and one consumer group per key.
fn stream_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let op = rng.pick(&[
        "XADD",
        "XADD",
        "XADD",
        "XADD",
        "XDEL",
        "XTRIM",
        "XRANGE",
        "XREVRANGE",
        "XLEN",
        "XREAD",
        "XGROUP",
        "XREADGROUP",
        "XACK",
        "XPENDING",
        "XCLAIM",
        "XAUTOCLAIM",
        "XINFO",
    ]);
    let mut cmd = vec![op.to_string(), key.clone()];
    let id = |rng: &mut Rng| format!("{}-{}", rng.below(60), rng.below(3));
    match op {
        "XADD" => {
            cmd.truncate(1);
            cmd.push(key);
            match rng.below(6) {
                0 => cmd.extend(["MAXLEN".into(), "~".into(), rng.below(20).to_string()]),
                1 => cmd.extend(["MAXLEN".into(), rng.below(20).to_string()]),
                2 => cmd.extend(["MINID".into(), "~".into(), id(rng)]),
                _ => {}
            }
            cmd.push(if rng.below(4) == 0 { format!("{}-*", rng.below(60)) } else { id(rng) });
            for _ in 0..1 + rng.below(3) {
                cmd.push(rng.pick(&["f", "g", "h"]).to_string());
                cmd.push(value(rng));
            }
        }
        "XDEL" => (0..1 + rng.below(3)).for_each(|_| cmd.push(id(rng))),
        "XTRIM" => {
            if rng.below(2) == 0 {
                cmd.extend(["MAXLEN".into(), rng.pick(&["~", "="]).into(), rng.below(20).to_string()]);
            } else {
                cmd.extend(["MINID".into(), rng.pick(&["~", "="]).into(), id(rng)]);
            }
        }
        "XRANGE" | "XREVRANGE" => {
            cmd.push(stream_id(rng));
            cmd.push(stream_id(rng));
            if rng.below(2) == 0 {
                cmd.extend(["COUNT".into(), rng.below(5).to_string()]);
            }
        }
        "XREAD" => {
            cmd = vec!["XREAD".into(), "COUNT".into(), (1 + rng.below(4)).to_string(), "STREAMS".into(), key, id(rng)];
        }
        "XGROUP" => {
            cmd = match rng.below(4) {
                0 => vec!["XGROUP".into(), "CREATE".into(), key, "g".into(), id(rng), "MKSTREAM".into()],
                1 => vec!["XGROUP".into(), "SETID".into(), key, "g".into(), id(rng)],
                2 => vec!["XGROUP".into(), "DELCONSUMER".into(), key, "g".into(), rng.pick(&["a", "b"]).into()],
                _ => vec!["XGROUP".into(), "DESTROY".into(), key, "g".into()],
            };
        }
        "XREADGROUP" => {
            let from = if rng.below(3) == 0 { id(rng) } else { ">".to_string() };
            cmd = vec!["XREADGROUP".into(), "GROUP".into(), "g".into(), rng.pick(&["a", "b"]).into()];
            cmd.extend(["COUNT".into(), (1 + rng.below(4)).to_string()]);
            if rng.below(4) == 0 {
                cmd.push("NOACK".into());
            }
            cmd.extend(["STREAMS".into(), key, from]);
        }
        "XACK" => {
            cmd.push("g".into());
            (0..1 + rng.below(3)).for_each(|_| cmd.push(id(rng)));
        }
        "XPENDING" => {
            cmd.push("g".into());
            if rng.below(2) == 0 {
                // The idle column depends on the clock: IDLE 0 keeps every row, the check below
                // compares the reply without it.
                cmd.extend(["-".into(), "+".into(), "10".into()]);
            }
        }
        "XCLAIM" => {
            cmd.extend(["g".into(), rng.pick(&["a", "b"]).into(), "0".into(), id(rng), "JUSTID".into()]);
        }
        "XAUTOCLAIM" => {
            cmd.extend([
                "g".into(),
                rng.pick(&["a", "b"]).into(),
                "0".into(),
                id(rng),
                "COUNT".into(),
                "3".into(),
                "JUSTID".into(),
            ]);
        }
        _ => cmd = vec!["XINFO".into(), "GROUPS".into(), key],
    }
    // Extended XPENDING replies carry idle times: compare them through a script that drops
    // that column.
    if cmd[0] == "XPENDING" && cmd.len() > 3 {
        let script = "local r = redis.call('XPENDING', KEYS[1], unpack(ARGV)) for _, e in ipairs(r) do table.remove(e, 3) end return r";
        let mut eval = vec!["EVAL".to_string(), script.to_string(), "1".to_string(), cmd[1].clone()];
        eval.extend(cmd[2..].iter().cloned());
        return eval;
    }
    cmd
}

fn run(seed: u64, steps: usize, gen: fn(&mut Rng) -> Vec<String>, dump: &[&str]) {
    run_with(seed, steps, gen, dump, &[]);
}

/// [`run`] after sending `setup` (CONFIG SET ...) to both servers.
fn run_with(seed: u64, steps: usize, gen: fn(&mut Rng) -> Vec<String>, dump: &[&str], setup: &[&[&str]]) {
    let (redis, redoubt) = (Server::redis(), Server::redoubt());
    let (mut a, mut b) = (redis.conn(), redoubt.conn());
    for cmd in setup {
        a.cmd(cmd).unwrap();
        b.cmd(cmd).unwrap();
    }
    let mut rng = Rng(seed);
    let send = |cmd: &[String], a: &mut Conn, b: &mut Conn| {
        let (want, got) = (a.cmd(cmd).unwrap(), b.cmd(cmd).unwrap());
        assert_eq!(
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got),
            "seed {seed}: {cmd:?} replied differently"
        );
    };
    for _ in 0..steps {
        let cmd = gen(&mut rng);
        send(&cmd, &mut a, &mut b);
    }
    for key in KEYS.iter().chain(&["lex"]) {
        for d in dump {
            let cmd: Vec<String> =
                d.split(' ').map(|w| if w == "K" { key.to_string() } else { w.to_string() }).collect();
            send(&cmd, &mut a, &mut b);
        }
    }
}

#[test]
fn random_list_commands_match_redis() {
    for seed in [1, 2, 3] {
        run(seed * 7919, 3000, list_command, &["LRANGE K 0 -1", "LLEN K"]);
    }
}

#[test]
fn random_hash_commands_match_redis() {
    for seed in [4, 5, 6] {
        run(seed * 7919, 3000, hash_command, &["HLEN K", "HMGET K f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 f10 f11"]);
    }
}

#[test]
fn random_set_commands_match_redis() {
    for seed in [7, 8, 9] {
        run(seed * 7919, 3000, set_command, &["SCARD K", "SINTERCARD 1 K"]);
    }
}

#[test]
fn random_zset_commands_match_redis() {
    let dump = ["ZRANGE K 0 -1 WITHSCORES", "ZCARD K", "OBJECT ENCODING K"];
    for seed in [10, 11] {
        run(seed * 7919, 3000, zset_command, &dump);
    }
    // Small limits: sets cross between listpack and skiplist all the time.
    for seed in [12, 13] {
        let setup: &[&[&str]] = &[&["CONFIG", "SET", "zset-max-listpack-entries", "6"]];
        run_with(seed * 7919, 3000, zset_command, &dump, setup);
    }
}

#[test]
fn random_stream_commands_match_redis() {
    let dump = ["XRANGE K - +", "XLEN K", "XINFO STREAM K"];
    let setup: &[&[&str]] = &[&["CONFIG", "SET", "stream-node-max-entries", "4"]];
    for seed in [14, 15, 16, 17] {
        run_with(seed * 7919, 3000, stream_command, &dump, setup);
    }
    run(18 * 7919, 3000, stream_command, &dump);
}

/// A random command generator.
type Generator = fn(&mut Rng) -> Vec<String>;

/// The same random sequences against Redoubt with the append-only log on: after `kill -9`
/// and a restart on the log, the data is what it was, key by key (the log records every
/// command's effect, random picks and clock readings included).
#[test]
fn random_commands_replay_identically_from_the_log() {
    use redoubt_tests::dataset::{assert_same_pictures, pictures};
    let gens: [(u64, Generator); 5] =
        [(21, list_command), (22, hash_command), (23, set_command), (24, zset_command), (25, stream_command)];
    for (seed, gen) in gens {
        let data = redoubt_tests::util::TempDir::new("random-log");
        let dir = data.path().display().to_string();
        let args = ["--dir", &dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""];
        let server = Server::redoubt_with_args(&args);
        let mut c = server.conn();
        c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "4"]).unwrap();
        c.cmd(&["CONFIG", "SET", "zset-max-listpack-entries", "6"]).unwrap();
        let mut rng = Rng(seed * 7919);
        for _ in 0..3000 {
            c.cmd(&gen(&mut rng)).unwrap();
        }
        let before = pictures(&mut c, 1);
        drop(server); // SIGKILL
        let again = Server::redoubt_with_args(&args);
        let mut a = again.conn();
        assert_same_pictures(&before, &pictures(&mut a, 1), 2_000);
        assert_deliveries_recent(&mut a, seed);
    }
}

/// Every pending stream entry was delivered during the test (its delivery time came back
/// from the log, not from the replay's clock).
fn assert_deliveries_recent(c: &mut Conn, seed: u64) {
    use redoubt_tests::value::{must_decode, Value};
    for key in KEYS.iter().chain(&["lex"]) {
        if c.cmd(&["TYPE", key]).unwrap() != b"+stream\r\n" {
            continue;
        }
        let Value::Array(groups) = must_decode(&c.cmd(&["XINFO", "GROUPS", key]).unwrap()) else { continue };
        for g in &groups {
            let name = g.get("name").and_then(Value::as_text).expect("group name");
            let reply = c.cmd(&["XPENDING", key, &name, "-", "+", "1000"]).unwrap();
            for e in must_decode(&reply).as_list().unwrap_or(&[]) {
                let idle = e.as_list().expect("pending entry")[2].as_int().expect("idle");
                assert!(idle < 60_000, "seed {seed}: {key} group {name}: a pending entry is idle {idle} ms");
            }
        }
    }
}
