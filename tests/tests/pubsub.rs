//! Pub/Sub across connections: message formats in RESP2 and RESP3 compared with
//! redis-server, ordering and no loss under subscribe/unsubscribe churn, and a slow
//! subscriber cut off at its output-buffer limit while other clients keep being served.

use std::io::Read;
use std::time::{Duration, Instant};

use redoubt_tests::util::text;
use redoubt_tests::Server;

/// Subscribes in the given protocol and records what a publisher's messages look like.
fn deliveries(server: &Server, proto: &str) -> Vec<String> {
    let mut sub = server.conn();
    let mut publisher = server.conn();
    sub.cmd(&["HELLO", proto]).unwrap();
    let mut seen = vec![text(sub.cmd(&["SUBSCRIBE", "news"]).unwrap())];
    seen.push(text(sub.cmd(&["PSUBSCRIBE", "n*"]).unwrap()));
    seen.push(text(sub.cmd(&["SSUBSCRIBE", "shard"]).unwrap()));
    seen.push(text(publisher.cmd(&["PUBLISH", "news", "hello"]).unwrap()));
    seen.push(text(sub.read_reply_raw().unwrap()));
    seen.push(text(sub.read_reply_raw().unwrap()));
    seen.push(text(publisher.cmd(&["SPUBLISH", "shard", "s-msg"]).unwrap()));
    seen.push(text(sub.read_reply_raw().unwrap()));
    seen.push(text(publisher.cmd(&["PUBSUB", "NUMSUB", "news", "other"]).unwrap()));
    seen.push(text(publisher.cmd(&["PUBSUB", "NUMPAT"]).unwrap()));
    seen.push(text(publisher.cmd(&["PUBSUB", "CHANNELS"]).unwrap()));
    seen
}

#[test]
fn message_formats_match_redis() {
    for proto in ["2", "3"] {
        let want = deliveries(&Server::redis(), proto);
        let got = deliveries(&Server::redoubt(), proto);
        assert_eq!(want, got, "RESP{proto}");
    }
}

/// 5,000 messages from one publisher reach a subscriber complete and in order while
/// another client subscribes and unsubscribes to other channels as fast as it can.
#[test]
fn no_loss_or_reordering_under_churn() {
    let server = Server::redoubt();
    let mut sub = server.conn();
    sub.cmd(&["SUBSCRIBE", "stream"]).unwrap();
    let mut churn = server.conn();
    let mut publisher = server.conn();
    const N: usize = 5000;
    for i in 0..N {
        publisher.send(&["PUBLISH", "stream", &i.to_string()]).unwrap();
        if i % 10 == 0 {
            churn.send(&["SUBSCRIBE", &format!("other{i}")]).unwrap();
            churn.send(&["UNSUBSCRIBE", &format!("other{i}")]).unwrap();
        }
    }
    for _ in 0..N {
        assert_eq!(publisher.read_reply_raw().unwrap(), b":1\r\n");
    }
    for i in 0..N {
        let expect = format!("*3\r\n$7\r\nmessage\r\n$6\r\nstream\r\n${}\r\n{i}\r\n", i.to_string().len());
        assert_eq!(text(sub.read_reply_raw().unwrap()), expect, "message {i}");
    }
}

/// A subscriber that stops reading is disconnected at the pub/sub hard limit; the server
/// stays responsive for everyone else.
#[test]
fn slow_subscriber_is_cut_off() {
    let server = Server::redoubt();
    let mut admin = server.conn();
    admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 0 0"]).unwrap();
    let mut slow = server.conn();
    slow.cmd(&["SUBSCRIBE", "firehose"]).unwrap();
    let payload = "x".repeat(16 * 1024);
    let mut publisher = server.conn();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut receivers = 1;
    // Publish until the server drops the subscriber (PUBLISH then reports 0 receivers).
    while receivers > 0 {
        assert!(Instant::now() < deadline, "the slow subscriber was never disconnected");
        receivers = match text(publisher.cmd(&["PUBLISH", "firehose", &payload]).unwrap()).as_str() {
            ":1\r\n" => 1,
            ":0\r\n" => 0,
            other => panic!("unexpected PUBLISH reply {other:?}"),
        };
    }
    let started = Instant::now();
    assert_eq!(admin.cmd(&["PING"]).unwrap(), b"+PONG\r\n");
    assert!(started.elapsed() < Duration::from_secs(1), "PING was slow after the cut-off");
    // The subscriber's socket is closed once what was buffered has been read.
    let mut stream = slow.try_clone_stream().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

/// Every message PUBLISH counted for a subscriber arrives before its UNSUBSCRIBE reply, none
/// after (Redis writes a message to the subscriber's buffer within PUBLISH): a publisher
/// streams 20,000 messages while the subscriber unsubscribes in the middle of them.
#[test]
fn nothing_arrives_after_unsubscribe() {
    let server = Server::redoubt();
    let mut sub = server.conn();
    assert_eq!(text(sub.cmd(&["SUBSCRIBE", "ch"]).unwrap()), "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let mut publisher = server.conn();
    const N: usize = 20_000;
    let publishing = std::thread::spawn(move || {
        for i in 0..N {
            publisher.send(&["PUBLISH", "ch", &format!("m{i}")]).unwrap();
        }
        (0..N).map(|_| redoubt_tests::resp::integer(&publisher.read_reply_raw().unwrap()).unwrap()).sum::<i64>()
    });
    let message = |i: usize| {
        let m = format!("m{i}");
        format!("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n${}\r\n{m}\r\n", m.len())
    };
    for i in 0..200 {
        assert_eq!(text(sub.read_reply_raw().unwrap()), message(i));
    }
    sub.send(&["UNSUBSCRIBE", "ch"]).unwrap();
    let mut received = 200;
    loop {
        let frame = text(sub.read_reply_raw().unwrap());
        if frame == "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n" {
            break;
        }
        assert_eq!(frame, message(received), "before the unsubscribe reply");
        received += 1;
    }
    let counted = publishing.join().unwrap();
    assert_eq!(received as i64, counted, "messages received vs PUBLISH replies counting this subscriber");
    sub.send(&["PING"]).unwrap();
    assert_eq!(text(sub.read_reply_raw().unwrap()), "+PONG\r\n", "after the unsubscribe reply");
}
