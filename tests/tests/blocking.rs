//! Blocking list and sorted-set commands across connections, compared with redis-server where
//! the outcome is deterministic: wake-up by a push, FIFO order of blocked clients, timeouts
//! (including fractional ones), BLMOVE/BRPOPLPUSH, BZPOPMIN/BZPOPMAX/BZMPOP, CLIENT UNBLOCK,
//! MULTI's non-blocking behaviour, wake-ups only after a transaction completes; and
//! producer–consumer runs that must deliver every item exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use redoubt_tests::util::{poll_until, text};
use redoubt_tests::{Conn, Server};

/// Waits until the server reports `n` blocked clients.
fn wait_blocked(admin: &mut Conn, n: usize) {
    poll_until(Duration::from_secs(5), "clients to block", || {
        let info = text(admin.cmd(&["INFO", "clients"]).unwrap());
        info.contains(&format!("blocked_clients:{n}\r")).then_some(())
    });
}

fn scenario(server: &Server) -> Vec<(String, String)> {
    let mut admin = server.conn();
    let mut out = Vec::new();
    let mut note = |what: &str, v: String| out.push((what.to_string(), v));
    // Wake-up by a push, oldest blocked client first.
    let mut c1 = server.conn();
    let mut c2 = server.conn();
    c1.send(&["BLPOP", "q1", "q2", "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    c2.send(&["BRPOP", "q2", "0"]).unwrap();
    wait_blocked(&mut admin, 2);
    note("push wakes", text(admin.cmd(&["RPUSH", "q2", "a", "b"]).unwrap()));
    note("first blocked client", text(c1.read_reply_raw().unwrap()));
    note("second blocked client", text(c2.read_reply_raw().unwrap()));
    note("list after", text(admin.cmd(&["LLEN", "q2"]).unwrap()));
    // Timeouts.
    let started = Instant::now();
    note("fractional timeout", text(c1.cmd(&["BLPOP", "empty", "0.05"]).unwrap()));
    assert!(started.elapsed() < Duration::from_secs(3), "0.05 s timeout took {:?}", started.elapsed());
    note("bad timeout", text(c1.cmd(&["BLPOP", "empty", "abc"]).unwrap()));
    note("negative timeout", text(c1.cmd(&["BLPOP", "empty", "-1"]).unwrap()));
    // Data already there: no blocking.
    admin.cmd(&["RPUSH", "ready", "x"]).unwrap();
    note("immediate", text(c1.cmd(&["BLPOP", "missing", "ready", "1"]).unwrap()));
    // Wrong type.
    admin.cmd(&["SET", "str", "v"]).unwrap();
    note("wrong type", text(c1.cmd(&["BLPOP", "str", "1"]).unwrap()));
    // BLMOVE wakes and moves.
    c1.send(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    admin.cmd(&["LPUSH", "src", "m"]).unwrap();
    note("blmove", text(c1.read_reply_raw().unwrap()));
    note("dst", text(admin.cmd(&["LRANGE", "dst", "0", "-1"]).unwrap()));
    // CLIENT UNBLOCK.
    let id = text(c2.cmd(&["CLIENT", "ID"]).unwrap()).trim_start_matches(':').trim().to_string();
    c2.send(&["BRPOPLPUSH", "none", "x", "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    note("unblock", text(admin.cmd(&["CLIENT", "UNBLOCK", &id]).unwrap()));
    note("unblocked reply", text(c2.read_reply_raw().unwrap()));
    c2.send(&["BLPOP", "none", "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    note("unblock error", text(admin.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]).unwrap()));
    note("unblocked error reply", text(c2.read_reply_raw().unwrap()));
    note("unblock not blocked", text(admin.cmd(&["CLIENT", "UNBLOCK", &id]).unwrap()));
    // Inside MULTI a blocking command does not block.
    c1.cmd(&["MULTI"]).unwrap();
    c1.cmd(&["BLPOP", "none", "0"]).unwrap();
    note("blpop in multi", text(c1.cmd(&["EXEC"]).unwrap()));
    // Commands pipelined after a blocked one wait for it.
    c1.send(&["BLPOP", "later", "0"]).unwrap();
    c1.send(&["PING"]).unwrap();
    wait_blocked(&mut admin, 1);
    admin.cmd(&["RPUSH", "later", "v"]).unwrap();
    note("blocked then", text(c1.read_reply_raw().unwrap()));
    note("pipelined after", text(c1.read_reply_raw().unwrap()));
    out
}

/// The sorted-set blocking commands.
fn zset_scenario(server: &Server) -> Vec<(String, String)> {
    let mut admin = server.conn();
    let mut out = Vec::new();
    let mut note = |what: &str, v: String| out.push((what.to_string(), v));
    let mut c1 = server.conn();
    let mut c2 = server.conn();
    let mut c3 = server.conn();
    // Three clients block on overlapping keys; one ZADD of three members serves them in the
    // order they blocked, lowest (or highest) score first.
    c1.send(&["BZPOPMIN", "z1", "z2", "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    c2.send(&["BZPOPMAX", "z2", "0"]).unwrap();
    wait_blocked(&mut admin, 2);
    c3.send(&["BZMPOP", "0", "2", "z3", "z2", "MIN", "COUNT", "5"]).unwrap();
    wait_blocked(&mut admin, 3);
    note("zadd wakes", text(admin.cmd(&["ZADD", "z2", "1", "a", "2", "b", "3", "c", "4", "d"]).unwrap()));
    note("bzpopmin", text(c1.read_reply_raw().unwrap()));
    note("bzpopmax", text(c2.read_reply_raw().unwrap()));
    note("bzmpop", text(c3.read_reply_raw().unwrap()));
    note("left", text(admin.cmd(&["ZRANGE", "z2", "0", "-1", "WITHSCORES"]).unwrap()));
    // A transaction that adds then removes: the blocked client sees only the end state.
    c1.send(&["BZPOPMIN", "t", "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    admin.cmd(&["MULTI"]).unwrap();
    admin.cmd(&["ZADD", "t", "1", "x"]).unwrap();
    admin.cmd(&["ZADD", "t", "2", "y"]).unwrap();
    admin.cmd(&["ZREM", "t", "x"]).unwrap();
    note("exec", text(admin.cmd(&["EXEC"]).unwrap()));
    note("after exec", text(c1.read_reply_raw().unwrap()));
    // Timeouts, errors, the non-blocking form inside MULTI, an existing set.
    note("timeout", text(c1.cmd(&["BZPOPMIN", "none", "0.01"]).unwrap()));
    note("bzmpop timeout", text(c1.cmd(&["BZMPOP", "0.01", "1", "none", "MAX"]).unwrap()));
    note("bad timeout", text(c1.cmd(&["BZPOPMAX", "none", "x"]).unwrap()));
    note("bzmpop bad count", text(c1.cmd(&["BZMPOP", "0", "1", "none", "MAX", "COUNT", "0"]).unwrap()));
    admin.cmd(&["SET", "str", "v"]).unwrap();
    note("wrong type", text(c1.cmd(&["BZPOPMIN", "none", "str", "0"]).unwrap()));
    admin.cmd(&["ZADD", "ready", "5", "r"]).unwrap();
    note("immediate", text(c1.cmd(&["BZPOPMAX", "none", "ready", "0"]).unwrap()));
    c1.cmd(&["MULTI"]).unwrap();
    c1.cmd(&["BZPOPMIN", "none", "0"]).unwrap();
    c1.cmd(&["BZMPOP", "0", "1", "none", "MIN"]).unwrap();
    note("in multi", text(c1.cmd(&["EXEC"]).unwrap()));
    // A key of another type arriving does not serve a BZPOPMIN; the client stays blocked.
    c2.send(&["BZPOPMIN", "later", "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    admin.cmd(&["RPUSH", "later", "v"]).unwrap();
    admin.cmd(&["DEL", "later"]).unwrap();
    admin.cmd(&["ZADD", "later", "7", "z"]).unwrap();
    note("after wrong type", text(c2.read_reply_raw().unwrap()));
    out
}

/// XREAD and XREADGROUP with BLOCK.
fn stream_scenario(server: &Server) -> Vec<(String, String)> {
    let mut admin = server.conn();
    let mut out = Vec::new();
    let mut note = |what: &str, v: String| out.push((what.to_string(), v));
    let (mut c1, mut c2, mut c3) = (server.conn(), server.conn(), server.conn());
    // `$` means entries added after the call: an entry added while blocked is delivered, the
    // ones before are not. Two readers of the same stream both get it.
    admin.cmd(&["XADD", "s", "1-0", "f", "old"]).unwrap();
    c1.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).unwrap();
    wait_blocked(&mut admin, 1);
    c2.send(&["XREAD", "COUNT", "5", "BLOCK", "0", "STREAMS", "other", "s", "0", "$"]).unwrap();
    wait_blocked(&mut admin, 2);
    note("xadd", text(admin.cmd(&["XADD", "s", "2-0", "f", "new"]).unwrap()));
    note("reader 1", text(c1.read_reply_raw().unwrap()));
    note("reader 2", text(c2.read_reply_raw().unwrap()));
    // A group reader blocks on `>` and gets the next entry; the entry becomes pending.
    admin.cmd(&["XGROUP", "CREATE", "s", "g", "$"]).unwrap();
    c3.send(&["XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "s", ">"]).unwrap();
    wait_blocked(&mut admin, 1);
    admin.cmd(&["XADD", "s", "3-0", "f", "job"]).unwrap();
    note("group reader", text(c3.read_reply_raw().unwrap()));
    note("pending", text(admin.cmd(&["XPENDING", "s", "g"]).unwrap()));
    // Two group readers, one entry: the first blocked gets it, the second keeps waiting.
    c1.send(&["XREADGROUP", "GROUP", "g", "bob", "BLOCK", "0", "STREAMS", "s", ">"]).unwrap();
    wait_blocked(&mut admin, 1);
    c2.send(&["XREADGROUP", "GROUP", "g", "carol", "BLOCK", "0", "STREAMS", "s", ">"]).unwrap();
    wait_blocked(&mut admin, 2);
    admin.cmd(&["XADD", "s", "4-0", "f", "one"]).unwrap();
    note("first group reader", text(c1.read_reply_raw().unwrap()));
    wait_blocked(&mut admin, 1);
    admin.cmd(&["XADD", "s", "5-0", "f", "two"]).unwrap();
    note("second group reader", text(c2.read_reply_raw().unwrap()));
    // Timeouts, the form inside MULTI, a stream that already has entries.
    note("timeout", text(c1.cmd(&["XREAD", "BLOCK", "10", "STREAMS", "s", "$"]).unwrap()));
    note(
        "group timeout",
        text(c1.cmd(&["XREADGROUP", "GROUP", "g", "x", "BLOCK", "10", "STREAMS", "s", ">"]).unwrap()),
    );
    note("immediate", text(c1.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "3-0"]).unwrap()));
    c1.cmd(&["MULTI"]).unwrap();
    c1.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).unwrap();
    note("in multi", text(c1.cmd(&["EXEC"]).unwrap()));
    // A list arriving at the key does not serve a stream reader; a stream does.
    c2.send(&["XREAD", "BLOCK", "0", "STREAMS", "later", "0"]).unwrap();
    wait_blocked(&mut admin, 1);
    admin.cmd(&["RPUSH", "later", "v"]).unwrap();
    admin.cmd(&["DEL", "later"]).unwrap();
    admin.cmd(&["XADD", "later", "1-1", "f", "v"]).unwrap();
    note("after wrong type", text(c2.read_reply_raw().unwrap()));
    // A group reader whose group is destroyed, or whose stream is deleted, overwritten or
    // flushed, is unblocked with an error; a plain XREAD keeps waiting through a DEL.
    let mut gone = |what: &str, cmd: &[&str]| {
        admin.cmd(&["DEL", "gs"]).unwrap();
        admin.cmd(&["XGROUP", "CREATE", "gs", "g", "$", "MKSTREAM"]).unwrap();
        c1.send(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "gs", ">"]).unwrap();
        wait_blocked(&mut admin, 1);
        admin.cmd(cmd).unwrap();
        note(what, text(c1.read_reply_raw().unwrap()));
    };
    gone("group destroyed", &["XGROUP", "DESTROY", "gs", "g"]);
    gone("stream deleted", &["DEL", "gs"]);
    gone("stream overwritten", &["SET", "gs", "x"]);
    gone("flushed", &["FLUSHALL"]);
    admin.cmd(&["XADD", "plain", "1-0", "f", "v"]).unwrap();
    c2.send(&["XREAD", "BLOCK", "0", "STREAMS", "plain", "$"]).unwrap();
    wait_blocked(&mut admin, 1);
    admin.cmd(&["DEL", "plain"]).unwrap();
    admin.cmd(&["XADD", "plain", "2-0", "f", "v"]).unwrap();
    note("xread through del", text(c2.read_reply_raw().unwrap()));
    out
}

/// A stream that expires unblocks its XREADGROUP clients with an error, as a deleted one;
/// an XREAD client stays blocked until its timeout. Once by active expiry (nothing touches
/// the key), once by lazy expiry (a command reads the key after it expired, with active
/// expiry too slow to get there first: `hz 1`).
fn stream_expiry_scenario(server: &Server) -> Vec<(String, String)> {
    let mut admin = server.conn();
    let mut out = Vec::new();
    let (mut group_reader, mut reader) = (server.conn(), server.conn());
    for (key, hz) in [("active", "10"), ("lazy", "1")] {
        admin.cmd(&["CONFIG", "SET", "hz", hz]).unwrap();
        admin.cmd(&["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"]).unwrap();
        group_reader.send(&["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", key, ">"]).unwrap();
        reader.send(&["XREAD", "BLOCK", "400", "STREAMS", key, "$"]).unwrap();
        wait_blocked(&mut admin, 2);
        admin.cmd(&["PEXPIRE", key, "100"]).unwrap();
        if key == "lazy" {
            // Reads the key until it has expired (lazy expiry deletes it on that access).
            poll_until(Duration::from_secs(5), "the key to expire", || {
                (admin.cmd(&["EXISTS", key]).unwrap() == b":0\r\n").then_some(())
            });
        }
        out.push((format!("{key}: group reader"), text(group_reader.read_reply_raw().unwrap())));
        out.push((format!("{key}: reader"), text(reader.read_reply_raw().unwrap())));
    }
    out
}

#[test]
fn an_expired_stream_unblocks_group_readers_as_redis() {
    let want = stream_expiry_scenario(&Server::redis());
    assert_eq!(want[0].1, "-UNBLOCKED the stream key no longer exists\r\n", "the reference");
    let got = stream_expiry_scenario(&Server::redoubt());
    assert_eq!(want, got);
}

#[test]
fn stream_blocking_matches_redis() {
    let want = stream_scenario(&Server::redis());
    let got = stream_scenario(&Server::redoubt());
    assert_eq!(want, got);
}

#[test]
fn blocking_matches_redis() {
    let want = scenario(&Server::redis());
    let got = scenario(&Server::redoubt());
    assert_eq!(want, got);
}

#[test]
fn zset_blocking_matches_redis() {
    let want = zset_scenario(&Server::redis());
    let got = zset_scenario(&Server::redoubt());
    assert_eq!(want, got);
}

/// 10 consumers blocked on `pop` and a producer sending 100,000 items with `push` (100 per
/// command), then one `stop` item per consumer: every item is delivered exactly once.
/// `pop` replies [key, item] (BLPOP) or [key, item, score] (BZPOPMIN); `push` builds the
/// command adding a chunk of items.
fn producer_consumer(pop: &'static [&'static str], push: fn(&[usize]) -> Vec<String>) {
    const ITEMS: usize = 100_000;
    const CONSUMERS: usize = 10;
    let server = Server::redoubt();
    let port = server.port();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port).unwrap();
                let mut got = Vec::new();
                loop {
                    let reply = text(c.cmd(pop).unwrap());
                    assert!(reply.starts_with('*'), "unexpected reply {reply:?} after {} items", got.len());
                    // The item is the second bulk string: `*N`, `$len`, key, `$len`, item.
                    let item = reply.split("\r\n").nth(4).unwrap().to_string();
                    if item == "stop" {
                        return got;
                    }
                    got.push(item);
                }
            })
        })
        .collect();
    let mut producer = server.conn();
    let ids: Vec<usize> = (0..ITEMS).collect();
    for chunk in ids.chunks(100) {
        producer.cmd(&push(chunk)).unwrap();
    }
    // The stop items sort after every item (their score or position is last).
    for _ in 0..CONSUMERS {
        let mut stop = push(&[usize::MAX]);
        let last = stop.len() - 1;
        stop[last] = "stop".to_string();
        producer.cmd(&stop).unwrap();
        // One stop item at a time, so each consumer takes exactly one.
        poll_until(Duration::from_secs(30), "a consumer to take the stop item", || {
            let left = text(producer.cmd(&["EXISTS", "jobs"]).unwrap());
            (left == ":0\r\n").then_some(())
        });
    }
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.join().unwrap());
    }
    assert_eq!(all.len(), ITEMS, "items delivered");
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), ITEMS, "an item was delivered twice");
}

#[test]
fn list_producer_consumer_delivers_each_item_once() {
    producer_consumer(&["BLPOP", "jobs", "30"], |chunk| {
        let mut args = vec!["RPUSH".to_string(), "jobs".to_string()];
        args.extend(chunk.iter().map(|i| i.to_string()));
        args
    });
}

#[test]
fn zset_producer_consumer_delivers_each_item_once() {
    producer_consumer(&["BZPOPMIN", "jobs", "30"], |chunk| {
        let mut args = vec!["ZADD".to_string(), "jobs".to_string()];
        for &i in chunk {
            args.push(if i == usize::MAX { "1e9".to_string() } else { i.to_string() });
            args.push(i.to_string());
        }
        args
    });
}
