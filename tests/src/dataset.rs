//! A dataset of every type and encoding, and comparing two servers' data key by key (for
//! the persistence tests: snapshots, the append-only log, files moved between Redis and
//! Redoubt).

use std::collections::BTreeMap;

use crate::resp::is_error;
use crate::value::{must_decode, Value};
use crate::Conn;

/// Sends one command and returns its raw reply; panics (naming the command) if the
/// connection fails.
pub fn cmd(c: &mut Conn, args: &[&[u8]]) -> Vec<u8> {
    c.cmd(args)
        .unwrap_or_else(|e| panic!("{:?}: {e}", args.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>()))
}

/// Sends a command given as one line of space-separated words; panics on an error reply.
pub fn run(c: &mut Conn, line: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    let reply = cmd(c, &args);
    assert!(!is_error(&reply), "{line}: {}", String::from_utf8_lossy(&reply));
    reply
}

/// Fills `c` with keys of every type and encoding a Redis 7 file can hold: integer, short,
/// compressible and binary strings; small and multi-node lists, one with a huge element;
/// intsets, small and large sets; small and large hashes; sorted sets with special scores;
/// streams with deletions, consumer groups, pending entries and an empty stream; TTLs;
/// keys in another database.
pub fn populate(c: &mut Conn) {
    for line in [
        "SET s:int 12345",
        "SET s:neg -42",
        "SET s:big 1099511627776",
        "SET s:small hello",
        "RPUSH l:small a b c 1 2 -3",
        "SADD st:ints 1 2 3 -5 100000",
        "SADD st:small a b c",
        "HSET h:small f1 v1 f2 2",
        "ZADD z:small 1 a 2.5 b -inf c +inf d 0 e",
        "XADD x:s 1-1 f v",
        "XADD x:s 1-2 f v2 g w",
        "XADD x:s 2-0 a b",
        "XDEL x:s 1-2",
        "XGROUP CREATE x:s g1 0",
        "XGROUP CREATE x:s g2 $",
        "XREADGROUP GROUP g1 alice COUNT 1 STREAMS x:s >",
        "XREADGROUP GROUP g1 bob COUNT 5 STREAMS x:s >",
        "XGROUP CREATECONSUMER x:s g2 carol",
        "XGROUP CREATE x:empty g 0 MKSTREAM",
        "SET e:ttl v PX 100000000",
        "HSET e:hash f v",
        "PEXPIRE e:hash 200000000",
        "SELECT 3",
        "SET db3:key in-three",
        "SELECT 0",
    ] {
        run(c, line);
    }
    let long = "compressible-".repeat(100);
    cmd(c, &[b"SET", b"s:long", long.as_bytes()]);
    cmd(c, &[b"SET", b"s:bin", b"\x00\xff\r\n\x01binary"]);
    for i in 0..1000 {
        let v = format!("element-{i}");
        cmd(c, &[b"RPUSH", b"l:big", v.as_bytes()]);
        cmd(c, &[b"SADD", b"st:big", v.as_bytes()]);
        cmd(c, &[b"HSET", b"h:big", format!("field-{i}").as_bytes(), v.as_bytes()]);
        cmd(c, &[b"ZADD", b"z:big", format!("{}.25", i as f64 - 500.0).as_bytes(), v.as_bytes()]);
        cmd(c, &[b"XADD", b"x:big", b"*", b"n", i.to_string().as_bytes()]);
    }
    for i in 0..600 {
        cmd(c, &[b"SADD", b"st:bigints", (i * 7).to_string().as_bytes()]);
    }
    cmd(c, &[b"RPUSH", b"l:huge", b"x", "y".repeat(20_000).as_bytes(), b"z"]);
    cmd(c, &[b"HSET", b"h:longval", b"f", "v".repeat(100).as_bytes()]);
}

/// Every key of database `db` (sorted).
pub fn keys(c: &mut Conn, db: usize) -> Vec<Vec<u8>> {
    run(c, &format!("SELECT {db}"));
    let Value::Array(items) = must_decode(&run(c, "KEYS *")) else { panic!("KEYS") };
    let mut out: Vec<Vec<u8>> = items.iter().map(|v| v.as_bytes().expect("key").to_vec()).collect();
    out.sort();
    out
}

/// A comparable picture of one key: its type, value (order-insensitive where the type is)
/// and whether it has a TTL (TTLs are compared within a second by [`assert_same_data`]).
pub fn picture(c: &mut Conn, key: &[u8]) -> (String, Vec<Vec<u8>>, i64) {
    let ty = String::from_utf8_lossy(&cmd(c, &[b"TYPE", key])).trim().trim_start_matches('+').to_string();
    let mut value = match ty.as_str() {
        "string" => vec![cmd(c, &[b"GET", key])],
        "list" => vec![cmd(c, &[b"LRANGE", key, b"0", b"-1"])],
        "zset" => vec![cmd(c, &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"])],
        "set" => flat(&cmd(c, &[b"SMEMBERS", key])),
        "hash" => {
            let items = flat(&cmd(c, &[b"HGETALL", key]));
            items.chunks(2).map(|p| [p[0].clone(), b"=".to_vec(), p[1].clone()].concat()).collect()
        }
        "stream" => stream_picture(c, key),
        other => panic!("unexpected type {other}"),
    };
    if matches!(ty.as_str(), "set" | "hash") {
        value.sort();
    }
    let pttl = match must_decode(&cmd(c, &[b"PTTL", key])) {
        Value::Int(n) => n,
        other => panic!("PTTL {other:?}"),
    };
    (ty, value, pttl)
}

pub fn flat(reply: &[u8]) -> Vec<Vec<u8>> {
    match must_decode(reply) {
        Value::Array(items) => items.iter().map(|v| v.as_bytes().expect("string").to_vec()).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// Entries, the groups' summary fields and each group's pending summary (no idle times,
/// which move with the clock).
pub fn stream_picture(c: &mut Conn, key: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![cmd(c, &[b"XRANGE", key, b"-", b"+"]), cmd(c, &[b"XLEN", key])];
    let info = must_decode(&cmd(c, &[b"XINFO", b"STREAM", key]));
    for field in ["length", "last-generated-id", "max-deleted-entry-id", "entries-added", "groups"] {
        out.push(format!("{field}={:?}", info.get(field)).into_bytes());
    }
    let Value::Array(groups) = must_decode(&cmd(c, &[b"XINFO", b"GROUPS", key])) else { panic!("XINFO GROUPS") };
    for g in &groups {
        let name = g.get("name").and_then(Value::as_bytes).expect("group name").to_vec();
        for field in ["name", "consumers", "pending", "last-delivered-id", "entries-read", "lag"] {
            out.push(format!("{field}={:?}", g.get(field)).into_bytes());
        }
        out.push(cmd(c, &[b"XPENDING", key, &name]));
        let Value::Array(consumers) = must_decode(&cmd(c, &[b"XINFO", b"CONSUMERS", key, &name])) else {
            panic!("XINFO CONSUMERS")
        };
        for cons in &consumers {
            out.push(format!("consumer {:?} pending {:?}", cons.get("name"), cons.get("pending")).into_bytes());
        }
    }
    out
}

/// Asserts that `a` and `b` hold the same keys with the same values in databases 0 and 3,
/// and the same TTLs within a second.
pub fn assert_same_data(a: &mut Conn, b: &mut Conn) {
    for db in [0, 3] {
        let ka = keys(a, db);
        assert!(!ka.is_empty(), "database {db} is empty");
        assert_eq!(ka, keys(b, db), "keys of database {db}");
        for key in &ka {
            let (ta, va, pa) = picture(a, key);
            let (tb, vb, pb) = picture(b, key);
            let name = String::from_utf8_lossy(key);
            assert_eq!(ta, tb, "type of {name}");
            assert_eq!(va, vb, "value of {name}");
            assert_eq!(pa < 0, pb < 0, "TTL presence of {name}: {pa} vs {pb}");
            assert!((pa - pb).abs() < 1000, "TTL of {name}: {pa} vs {pb}");
        }
    }
    run(a, "SELECT 0");
    run(b, "SELECT 0");
}

/// One key's picture (see [`picture`]) for every key of databases 0 to `dbs - 1`.
pub type Pictures = BTreeMap<(usize, Vec<u8>), (String, Vec<Vec<u8>>, i64)>;

/// Every key of databases `0..dbs` with its picture (for comparing one server before and
/// after a restart).
pub fn pictures(c: &mut Conn, dbs: usize) -> Pictures {
    let mut out = BTreeMap::new();
    for db in 0..dbs {
        for key in keys(c, db) {
            let p = picture(c, &key);
            out.insert((db, key), p);
        }
    }
    run(c, "SELECT 0");
    out
}

/// Asserts two sets of pictures are the same data, TTLs within `slack_ms`.
pub fn assert_same_pictures(before: &Pictures, after: &Pictures, slack_ms: i64) {
    let kb: Vec<_> = before.keys().collect();
    let ka: Vec<_> = after.keys().collect();
    assert_eq!(kb, ka, "the same keys");
    for (k, (tb, vb, pb)) in before {
        let (ta, va, pa) = &after[k];
        let name = format!("db {} key {}", k.0, String::from_utf8_lossy(&k.1));
        assert_eq!(tb, ta, "type of {name}");
        assert_eq!(vb, va, "value of {name}");
        assert_eq!(*pb < 0, *pa < 0, "TTL presence of {name}: {pb} vs {pa}");
        assert!((pb - pa).abs() <= slack_ms, "TTL of {name}: {pb} vs {pa}");
    }
}
