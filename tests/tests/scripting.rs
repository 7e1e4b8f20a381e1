//! Long-running scripts, on redis-server and Redoubt alike: after `busy-reply-threshold`
//! other clients get `-BUSY`, SCRIPT KILL stops a script that has not written, refuses one
//! that has (UNKILLABLE), and SHUTDOWN NOSAVE still stops the server.
//!
//! Redoubt runs a script on one worker thread; a client whose connection that same worker
//! serves waits for the script instead of getting `-BUSY` (see the scripting notes in the
//! README). The helper below therefore retries on a fresh connection when a reply does not
//! come within a short timeout.

use std::time::Duration;

use redoubt_tests::util::{poll_until, text};
use redoubt_tests::{Conn, Server};

/// Sends `args` on fresh connections until one answers within 300 ms; returns the reply.
fn ask(server: &Server, args: &[&str]) -> String {
    let what = format!("{:?} to answer {args:?} on a connection not stuck behind the script", server.kind());
    poll_until(Duration::from_secs(10), &what, || {
        let mut c = Conn::connect(server.port()).ok()?;
        c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
        c.cmd(args).ok().map(text)
    })
}

fn scenario(server: &Server) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut admin = server.conn();
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]).unwrap();
    // A read-only endless script: BUSY for others, then killed.
    let mut runner = server.conn();
    runner.send(&["EVAL", "local n = 0 while true do n = n + 1 end", "0"]).unwrap();
    let busy = poll_until(Duration::from_secs(10), "the BUSY reply", || {
        let r = ask(server, &["GET", "k"]);
        r.starts_with("-BUSY").then_some(r)
    });
    out.push(("busy".into(), busy));
    out.push(("kill".into(), ask(server, &["SCRIPT", "KILL"])));
    let killed = text(runner.read_reply_raw().unwrap());
    out.push(("killed script".into(), killed.split(" script: ").next().unwrap_or("").to_string()));
    out.push(("after".into(), ask(server, &["PING"])));
    out.push(("kill again".into(), ask(server, &["SCRIPT", "KILL"])));
    // A script that wrote cannot be killed; SHUTDOWN NOSAVE still works.
    runner.send(&["EVAL", "redis.call('set', 'w', '1') while true do end", "0"]).unwrap();
    poll_until(Duration::from_secs(10), "the BUSY reply", || {
        ask(server, &["GET", "k"]).starts_with("-BUSY").then_some(())
    });
    out.push(("unkillable".into(), ask(server, &["SCRIPT", "KILL"])));
    poll_until(Duration::from_secs(10), "SHUTDOWN NOSAVE to be taken", || {
        // Once the server is gone, connecting fails: it was taken.
        let Ok(mut c) = Conn::connect(server.port()) else { return Some(()) };
        c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
        c.send(&["SHUTDOWN", "NOSAVE"]).ok()?;
        // The server closes the connection without a reply when it shuts down.
        match c.read_reply_raw() {
            Err(e) if redoubt_tests::conn::is_disconnect(&e) => Some(()),
            _ => None,
        }
    });
    out
}

#[test]
fn busy_scripts_match_redis() {
    let want = scenario(&Server::redis());
    let got = scenario(&Server::redoubt());
    assert_eq!(want, got);
    assert!(want[0].1.starts_with("-BUSY"), "the test is wrong: {want:?}");
}
