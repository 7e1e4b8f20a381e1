//! XINFO CONSUMERS and XINFO STREAM FULL report Redis 7.2's consumer fields (`inactive`,
//! `active-time`), which the 7.0 reference server does not have: checked against expected
//! values here rather than in the differential suite.

use redoubt_tests::resp::{integer, split_aggregate};
use redoubt_tests::{Conn, Server};

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

fn cmd(c: &mut Conn, args: &[&str]) -> Vec<u8> {
    c.cmd(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The elements of an array reply, each as raw RESP.
fn elements(reply: &[u8]) -> Vec<Vec<u8>> {
    let (_, items) = split_aggregate(reply).unwrap_or_else(|| panic!("not an aggregate: {}", text(reply)));
    items.into_iter().map(<[u8]>::to_vec).collect()
}

/// A flat field/value array (RESP2 map) as (field, raw value) pairs.
fn fields(reply: &[u8]) -> Vec<(String, Vec<u8>)> {
    let items = elements(reply);
    items
        .chunks(2)
        .map(|kv| {
            let name = text(&kv[0]);
            let name = name.rsplit("\r\n").nth(1).unwrap_or_default().to_string();
            (name, kv[1].clone())
        })
        .collect()
}

/// A stream `s` with group `g`: consumer `idle-one` created but never served, consumer
/// `reader` served one entry.
fn scenario(c: &mut Conn) {
    assert_eq!(cmd(c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), b"+OK\r\n");
    cmd(c, &["XADD", "s", "1-0", "f", "v"]);
    assert_eq!(cmd(c, &["XGROUP", "CREATECONSUMER", "s", "g", "idle-one"]), b":1\r\n");
    let read = cmd(c, &["XREADGROUP", "GROUP", "g", "reader", "COUNT", "1", "STREAMS", "s", ">"]);
    assert!(text(&read).contains("$3\r\n1-0\r\n"), "{}", text(&read));
}

#[test]
fn consumers_report_inactive_as_redis_7_2() {
    let server = Server::redoubt();
    let mut c = server.conn();
    scenario(&mut c);
    let consumers = elements(&cmd(&mut c, &["XINFO", "CONSUMERS", "s", "g"]));
    assert_eq!(consumers.len(), 2);
    let never = fields(&consumers[0]);
    let names: Vec<&str> = never.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["name", "pending", "idle", "inactive"]);
    assert_eq!(never[0].1, b"$8\r\nidle-one\r\n");
    assert_eq!(integer(&never[1].1), Some(0));
    assert!(integer(&never[2].1).is_some_and(|idle| idle >= 0));
    assert_eq!(integer(&never[3].1), Some(-1), "a consumer never served is inactive -1");
    let reader = fields(&consumers[1]);
    assert_eq!(reader[0].1, b"$6\r\nreader\r\n");
    assert_eq!(integer(&reader[1].1), Some(1));
    let idle = integer(&reader[2].1).unwrap();
    let inactive = integer(&reader[3].1).unwrap();
    assert!(0 <= idle && idle <= inactive, "idle {idle}, inactive {inactive}");
}

#[test]
fn stream_full_reports_active_time_as_redis_7_2() {
    let server = Server::redoubt();
    let mut c = server.conn();
    let before = integer(&cmd(&mut c, &["EVAL", "return redis.call('TIME')[1] * 1000", "0"])).unwrap();
    scenario(&mut c);
    let info = fields(&cmd(&mut c, &["XINFO", "STREAM", "s", "FULL"]));
    let groups = &info.iter().find(|(n, _)| n == "groups").expect("groups").1;
    let group = fields(&elements(groups)[0]);
    let consumers = &group.iter().find(|(n, _)| n == "consumers").expect("consumers").1;
    let consumers = elements(consumers);
    let never = fields(&consumers[0]);
    let names: Vec<&str> = never.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["name", "seen-time", "active-time", "pel-count", "pending"]);
    assert!(integer(&never[1].1).is_some_and(|t| t >= before), "seen-time {}", text(&never[1].1));
    assert_eq!(integer(&never[2].1), Some(-1), "never served: active-time -1");
    assert_eq!(integer(&never[3].1), Some(0));
    let reader = fields(&consumers[1]);
    let seen = integer(&reader[1].1).unwrap();
    let active = integer(&reader[2].1).unwrap();
    assert!(before <= active && active <= seen, "active-time {active}, seen-time {seen}");
    assert_eq!(integer(&reader[3].1), Some(1));
}
