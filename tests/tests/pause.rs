//! CLIENT PAUSE / UNPAUSE and the idle-client `timeout`, on Redoubt and on redis-server.
//!
//! A paused command must not run (its reply must not arrive) until the pause ends, while
//! commands the pause does not cover are answered at once. The check for "not answered
//! yet" is a short read timeout on a reply that must not exist; the check for "answered
//! after UNPAUSE" waits for the reply with a generous deadline. No sleeps synchronise.

use std::time::Duration;

use redoubt_tests::util::info;
use redoubt_tests::{Conn, Server};

/// How long a paused client must stay without a reply for the test to call it paused.
const SILENCE: Duration = Duration::from_millis(300);

/// Sends `args` and reports whether a reply came back within `SILENCE`.
fn replies_quickly(conn: &mut Conn, args: &[&str]) -> bool {
    conn.send(args).expect("send");
    conn.set_read_timeout(Some(SILENCE)).expect("timeout");
    let got = conn.read_reply_raw().is_ok();
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    got
}

fn scenario(server: &Server) -> Vec<(String, String)> {
    let mut admin = server.conn();
    let mut worker = server.conn();
    let mut seen = Vec::new();
    let mut note = |what: &str, value: String| seen.push((what.to_string(), value));
    note("pause write", String::from_utf8_lossy(&admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]).unwrap()).into());
    note("GET during WRITE pause answered", replies_quickly(&mut worker, &["GET", "k"]).to_string());
    note("SET during WRITE pause answered", replies_quickly(&mut worker, &["SET", "k", "v"]).to_string());
    let blocked = info(&mut admin, "clients").get("blocked_clients").cloned().unwrap_or_default();
    note("blocked_clients while paused", blocked);
    note("unpause", String::from_utf8_lossy(&admin.cmd(&["CLIENT", "UNPAUSE"]).unwrap()).into());
    note("held SET reply after unpause", String::from_utf8_lossy(&worker.read_reply_raw().unwrap()).into());
    note("GET after unpause", String::from_utf8_lossy(&worker.cmd(&["GET", "k"]).unwrap()).into());
    let mut third = server.conn();
    note("pause all", String::from_utf8_lossy(&admin.cmd(&["CLIENT", "PAUSE", "1500", "ALL"]).unwrap()).into());
    note("PING during ALL pause answered", replies_quickly(&mut worker, &["PING"]).to_string());
    let answered = replies_quickly(&mut third, &["CLIENT", "UNPAUSE"]);
    note("UNPAUSE during ALL pause answered", answered.to_string());
    // Whatever was held is answered once the pause ends (by UNPAUSE or its timeout).
    note("held PING reply", String::from_utf8_lossy(&worker.read_reply_raw().unwrap()).into());
    if !answered {
        note("held UNPAUSE reply", String::from_utf8_lossy(&third.read_reply_raw().unwrap()).into());
    }
    note("negative timeout", String::from_utf8_lossy(&admin.cmd(&["CLIENT", "PAUSE", "-1"]).unwrap()).into());
    note("bad mode", String::from_utf8_lossy(&admin.cmd(&["CLIENT", "PAUSE", "10", "SOME"]).unwrap()).into());
    note("bad timeout", String::from_utf8_lossy(&admin.cmd(&["CLIENT", "PAUSE", "x"]).unwrap()).into());
    seen
}

#[test]
fn client_pause_matches_redis() {
    let want = scenario(&Server::redis());
    let got = scenario(&Server::redoubt());
    assert_eq!(want[1].1, "true", "the test is wrong: a read must pass a WRITE pause on redis-server: {want:?}");
    assert_eq!(want[2].1, "false", "the test is wrong: a write must wait on redis-server: {want:?}");
    assert_eq!(want, got);
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let server = Server::redoubt_with_args(&["--timeout", "1"]);
    let mut idle = server.conn();
    assert_eq!(idle.cmd(&["PING"]).unwrap(), b"+PONG\r\n");
    let drained = idle.read_until_closed(Duration::from_secs(5)).expect("read");
    assert!(drained.closed, "an idle client must be closed within a few seconds of timeout=1");
}
