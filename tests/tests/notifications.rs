//! Keyspace notifications compared with redis-server: the same commands, with
//! `notify-keyspace-events KEA`, must publish the same events in the same order.

use std::time::Duration;

use redoubt_tests::util::{poll_until, text};
use redoubt_tests::Server;

const COMMANDS: &[&[&str]] = &[
    &["SET", "k", "v"],
    &["SET", "k", "v2", "EX", "100"],
    &["SETNX", "k", "x"],
    &["SETEX", "k2", "100", "v"],
    &["GETSET", "k2", "v"],
    &["MSET", "a", "1", "b", "2"],
    &["INCR", "a"],
    &["DECRBY", "a", "5"],
    &["INCRBYFLOAT", "a", "1.5"],
    &["APPEND", "b", "x"],
    &["SETRANGE", "b", "0", "y"],
    &["SETBIT", "bits", "3", "1"],
    &["BITOP", "NOT", "bits2", "bits"],
    &["EXPIRE", "a", "100"],
    &["PERSIST", "a"],
    &["EXPIRE", "a", "-1"],
    &["RENAME", "b", "c"],
    &["COPY", "c", "d"],
    &["MOVE", "d", "1"],
    &["DEL", "c", "nope"],
    &["GETDEL", "k"],
    &["GETEX", "k2", "PX", "100000"],
    &["RPUSH", "l", "a", "b", "c", "d"],
    &["LPUSH", "l", "z"],
    &["LPOP", "l"],
    &["RPOP", "l", "2"],
    &["LINSERT", "l", "BEFORE", "b", "x"],
    &["LSET", "l", "0", "y"],
    &["LREM", "l", "0", "x"],
    &["LMOVE", "l", "l2", "LEFT", "RIGHT"],
    &["LTRIM", "l", "5", "10"],
    &["RPOPLPUSH", "l2", "l3"],
    &["LMPOP", "1", "l3", "LEFT"],
    &["HSET", "h", "f1", "1", "f2", "2"],
    &["HSETNX", "h", "f3", "3"],
    &["HINCRBY", "h", "f1", "5"],
    &["HINCRBYFLOAT", "h", "f2", "0.5"],
    &["HDEL", "h", "f1", "f2", "f3"],
    &["SADD", "s", "a", "b", "c"],
    &["SREM", "s", "a"],
    &["SMOVE", "s", "s2", "b"],
    &["SPOP", "s"],
    &["SADD", "s3", "x"],
    &["SINTERSTORE", "dst", "s2", "s3"],
    &["SUNIONSTORE", "dst", "s2", "s3"],
    &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
    &["ZADD", "z", "XX", "1", "nope"],
    &["ZINCRBY", "z", "5", "a"],
    &["ZADD", "z", "INCR", "1", "b"],
    &["ZREM", "z", "b", "nope"],
    &["ZPOPMIN", "z"],
    &["ZPOPMAX", "z", "1"],
    &["ZADD", "z2", "1", "x", "2", "y", "3", "w"],
    &["ZREMRANGEBYRANK", "z2", "0", "0"],
    &["ZREMRANGEBYSCORE", "z2", "2", "2"],
    &["ZREMRANGEBYLEX", "z2", "-", "+"],
    &["ZADD", "z3", "1", "p", "2", "q"],
    &["ZRANGESTORE", "zr", "z3", "0", "-1"],
    &["ZRANGESTORE", "zr", "z3", "5", "6"],
    &["ZUNIONSTORE", "zu", "2", "z3", "z"],
    &["ZINTERSTORE", "zu", "2", "z3", "z"],
    &["ZDIFFSTORE", "zd", "1", "z3"],
    &["ZMPOP", "1", "z3", "MAX", "COUNT", "5"],
    &["ZPOPMIN", "z"],
    &["XADD", "x", "1-0", "f", "v"],
    &["XADD", "x", "MAXLEN", "1", "2-0", "f", "v"],
    &["XADD", "x", "NOMKSTREAM", "3-0", "f", "v"],
    &["XADD", "nox", "NOMKSTREAM", "1-0", "f", "v"],
    &["XDEL", "x", "3-0", "9-9"],
    &["XTRIM", "x", "MAXLEN", "0"],
    &["XTRIM", "x", "MAXLEN", "0"],
    &["XSETID", "x", "10-0"],
    &["XGROUP", "CREATE", "x", "g", "$"],
    &["XGROUP", "CREATE", "x2", "g", "0", "MKSTREAM"],
    &["XGROUP", "CREATECONSUMER", "x", "g", "c1"],
    &["XADD", "x", "11-0", "f", "v"],
    &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "x", ">"],
    &["XCLAIM", "x", "g", "c1", "0", "11-0"],
    &["XACK", "x", "g", "11-0"],
    &["XGROUP", "SETID", "x", "g", "0"],
    &["XGROUP", "DELCONSUMER", "x", "g", "c1"],
    &["XGROUP", "DESTROY", "x", "g"],
    &["SET", "short", "v", "PX", "1"],
];

/// Reads that miss, for the `keymiss` class.
const READS: &[&[&str]] = &[
    &["GET", "missing"],
    &["MGET", "k", "missing", "missing2"],
    &["EXISTS", "missing"],
    &["STRLEN", "missing"],
    &["LRANGE", "nolist", "0", "-1"],
    &["HGET", "nohash", "f"],
    &["SMEMBERS", "noset"],
    &["ZSCORE", "nozset", "m"],
    &["ZRANGE", "nozset", "0", "-1"],
    &["TYPE", "missing"],
    &["XRANGE", "nostream", "-", "+"],
    &["XLEN", "nostream"],
    &["TTL", "missing"],
];

fn events(server: &Server) -> Vec<String> {
    events_with(server, "KEA", COMMANDS)
}

fn events_with(server: &Server, flags: &str, commands: &[&[&str]]) -> Vec<String> {
    let mut admin = server.conn();
    admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags]).unwrap();
    let mut sub = server.conn();
    sub.cmd(&["PSUBSCRIBE", "__key*__:*"]).unwrap();
    for c in commands {
        admin.cmd(c).unwrap();
    }
    // Wait for the short-lived key to be gone (lazily or actively expired).
    poll_until(Duration::from_secs(5), "short to expire", || {
        (text(admin.cmd(&["GET", "short"]).unwrap()) == "$-1\r\n").then_some(())
    });
    admin.cmd(&["PUBLISH", "__keyspace@0__:end", "end"]).unwrap();
    let mut seen = Vec::new();
    loop {
        let m = text(sub.read_reply_raw().unwrap());
        if m.contains("__keyspace@0__:end") {
            break;
        }
        seen.push(m);
    }
    seen
}

#[test]
fn keyspace_events_match_redis() {
    let want = events(&Server::redis());
    let got = events(&Server::redoubt());
    assert!(want.iter().any(|e| e.contains("expired")), "the test is wrong: {want:#?}");
    assert_eq!(want, got);
}

/// The `n` (new key) and `m` (key miss) classes, which `A` leaves out.
#[test]
fn new_key_and_miss_events_match_redis() {
    let commands: Vec<&[&str]> = COMMANDS.iter().chain(READS).copied().collect();
    let want = events_with(&Server::redis(), "KEnm", &commands);
    let got = events_with(&Server::redoubt(), "KEnm", &commands);
    assert!(want.iter().any(|e| e.contains("keymiss")) && want.iter().any(|e| e.contains("new")), "{want:#?}");
    assert_eq!(want, got);
}

/// Every class together, so `new` and `keymiss` interleave with the commands' own events.
#[test]
fn all_classes_interleave_like_redis() {
    let commands: Vec<&[&str]> = COMMANDS.iter().chain(READS).copied().collect();
    let want = events_with(&Server::redis(), "KEAnm", &commands);
    let got = events_with(&Server::redoubt(), "KEAnm", &commands);
    assert_eq!(want, got);
}
