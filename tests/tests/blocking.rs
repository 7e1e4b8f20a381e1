//! Blocking list commands across connections, compared with redis-server where the outcome
//! is deterministic: wake-up by a push, FIFO order of blocked clients, timeouts (including
//! fractional ones), BLMOVE/BRPOPLPUSH, CLIENT UNBLOCK, MULTI's non-blocking behaviour; and a
//! producer–consumer run that must deliver every item exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use redoubt_tests::util::poll_until;
use redoubt_tests::{Conn, Server};

fn text(reply: Vec<u8>) -> String {
    String::from_utf8_lossy(&reply).into_owned()
}

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

#[test]
fn blocking_matches_redis() {
    let want = scenario(&Server::redis());
    let got = scenario(&Server::redoubt());
    assert_eq!(want, got);
}

/// 10 blocked consumers and a producer pushing 20,000 items: every item is delivered
/// exactly once.
#[test]
fn producer_consumer_delivers_each_item_once() {
    let server = Server::redoubt();
    const ITEMS: usize = 20_000;
    const CONSUMERS: usize = 10;
    let port = server.port();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port).unwrap();
                let mut got = Vec::new();
                loop {
                    let reply = text(c.cmd(&["BLPOP", "jobs", "2"]).unwrap());
                    if reply.starts_with("*-1") {
                        return got;
                    }
                    let item = reply.rsplit("\r\n").nth(1).unwrap().to_string();
                    got.push(item);
                }
            })
        })
        .collect();
    let mut producer = server.conn();
    for chunk in (0..ITEMS).collect::<Vec<_>>().chunks(100) {
        let mut args = vec!["RPUSH".to_string(), "jobs".to_string()];
        args.extend(chunk.iter().map(|i| i.to_string()));
        producer.cmd(&args).unwrap();
    }
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.join().unwrap());
    }
    assert_eq!(all.len(), ITEMS, "items delivered");
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), ITEMS, "an item was delivered twice");
}
