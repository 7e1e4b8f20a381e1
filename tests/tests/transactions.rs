//! Transactions across connections: WATCH invalidation by another client's write, by
//! FLUSHALL and by expiry, compared with redis-server; and EXEC's atomicity under a
//! concurrent reader (bounded iterations, no sleeps).

use std::time::Duration;

use redoubt_tests::util::{poll_until, text};
use redoubt_tests::{Conn, Server};

/// Runs `MULTI; SET key tx; EXEC` on `c` and returns EXEC's reply.
fn exec_set(c: &mut Conn, key: &str) -> String {
    assert_eq!(text(c.cmd(&["MULTI"]).unwrap()), "+OK\r\n");
    assert_eq!(text(c.cmd(&["SET", key, "tx"]).unwrap()), "+QUEUED\r\n");
    text(c.cmd(&["EXEC"]).unwrap())
}

fn scenario(server: &Server) -> Vec<(String, String)> {
    let mut a = server.conn();
    let mut b = server.conn();
    let mut out = Vec::new();
    a.cmd(&["WATCH", "w1"]).unwrap();
    b.cmd(&["SET", "w1", "other"]).unwrap();
    out.push(("write by another client aborts".into(), exec_set(&mut a, "w1")));
    a.cmd(&["WATCH", "w2"]).unwrap();
    b.cmd(&["SET", "unrelated", "x"]).unwrap();
    out.push(("unrelated write does not abort".into(), exec_set(&mut a, "w2")));
    a.cmd(&["WATCH", "w3"]).unwrap();
    b.cmd(&["FLUSHALL"]).unwrap();
    out.push(("FLUSHALL of a missing watched key".into(), exec_set(&mut a, "w3")));
    a.cmd(&["SET", "w4", "v"]).unwrap();
    a.cmd(&["WATCH", "w4"]).unwrap();
    b.cmd(&["FLUSHALL"]).unwrap();
    out.push(("FLUSHALL of an existing watched key aborts".into(), exec_set(&mut a, "w4")));
    a.cmd(&["SET", "w5", "v", "PX", "30"]).unwrap();
    a.cmd(&["WATCH", "w5"]).unwrap();
    poll_until(Duration::from_secs(5), "w5 to expire", || {
        (text(b.cmd(&["EXISTS", "w5"]).unwrap()) == ":0\r\n").then_some(())
    });
    out.push(("expiry of a watched key aborts".into(), exec_set(&mut a, "w5")));
    a.cmd(&["SET", "w6", "v"]).unwrap();
    a.cmd(&["WATCH", "w6"]).unwrap();
    b.cmd(&["SETNX", "w6", "x"]).unwrap();
    out.push(("a write that changes nothing does not abort".into(), exec_set(&mut a, "w6")));
    a.cmd(&["WATCH", "w7"]).unwrap();
    b.cmd(&["SET", "w7", "x"]).unwrap();
    a.cmd(&["UNWATCH"]).unwrap();
    out.push(("UNWATCH forgets the write".into(), exec_set(&mut a, "w7")));
    // Commands that read some keys and write others only invalidate what they write.
    b.cmd(&["ZADD", "zsrc", "1", "a"]).unwrap();
    b.cmd(&["SADD", "ssrc", "a"]).unwrap();
    b.cmd(&["SET", "bsrc", "x"]).unwrap();
    a.cmd(&["WATCH", "zsrc", "ssrc", "bsrc"]).unwrap();
    for c in [
        &["ZUNIONSTORE", "zdst", "2", "zsrc", "ssrc"][..],
        &["ZINTERSTORE", "zdst2", "1", "zsrc"],
        &["ZDIFFSTORE", "zdst3", "1", "zsrc"],
        &["ZRANGESTORE", "zdst4", "zsrc", "0", "-1"],
        &["SUNIONSTORE", "sdst", "ssrc"],
        &["BITOP", "NOT", "bdst", "bsrc"],
        &["COPY", "bsrc", "bcopy"],
    ] {
        b.cmd(c).unwrap();
    }
    out.push(("reading a watched key does not abort".into(), exec_set(&mut a, "zsrc")));
    a.cmd(&["WATCH", "zdst"]).unwrap();
    b.cmd(&["ZUNIONSTORE", "zdst", "1", "ssrc"]).unwrap();
    out.push(("a STORE destination aborts".into(), exec_set(&mut a, "zdst")));
    a.cmd(&["WATCH", "zsrc"]).unwrap();
    b.cmd(&["ZINCRBY", "zsrc", "1", "a"]).unwrap();
    out.push(("a sorted-set write aborts".into(), exec_set(&mut a, "zsrc")));
    out
}

#[test]
fn watch_matches_redis() {
    let want = scenario(&Server::redis());
    let got = scenario(&Server::redoubt());
    assert!(want[0].1.starts_with("*-1"), "the test is wrong: {want:?}");
    assert_eq!(want, got);
}

/// A reader must never see half of a transaction.
#[test]
fn exec_is_atomic_for_other_clients() {
    let server = Server::redoubt();
    let mut writer = server.conn();
    let mut reader = server.conn();
    writer.cmd(&["MSET", "ta", "0", "tb", "0"]).unwrap();
    for _ in 0..2000 {
        writer.send(&["MULTI"]).unwrap();
        writer.send(&["INCR", "ta"]).unwrap();
        writer.send(&["INCR", "tb"]).unwrap();
        writer.send(&["EXEC"]).unwrap();
        let seen = text(reader.cmd(&["MGET", "ta", "tb"]).unwrap());
        let values: Vec<&str> = seen.split("\r\n").filter(|l| !l.starts_with(['*', '$'])).collect();
        assert_eq!(values[0], values[1], "a reader saw half a transaction: {seen:?}");
        for _ in 0..4 {
            writer.read_reply_raw().unwrap();
        }
    }
}
