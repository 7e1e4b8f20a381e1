//! Memory accounting: what the keyspace counts for its data (INFO `used_memory_dataset`,
//! MEMORY USAGE) must track what the allocator really handed out (`used_memory`, the sum
//! of jemalloc's per-thread counters) for every value type and encoding, and return to the
//! baseline when the data goes.

use std::time::Duration;

use redoubt_tests::util::{info_u64, poll_until};
use redoubt_tests::{Conn, Server};

/// How far the counted figure may be from the allocator's, as a fraction of the growth.
const TOLERANCE: f64 = 0.02;

/// Builds one kind of data: `(name, commands for key number i)`.
type Builder = (&'static str, fn(usize) -> Vec<Vec<String>>);

fn strs(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

const BUILDERS: &[Builder] = &[
    ("short strings", |i| vec![strs(&["SET", &format!("key:{i:07}"), "0123456789"])]),
    ("integers", |i| vec![strs(&["SET", &format!("n:{i}"), &i.to_string()])]),
    ("strings with TTL", |i| vec![strs(&["SET", &format!("t:{i}"), "value", "EX", "10000"])]),
    ("1 KB strings", |i| vec![strs(&["SET", &format!("big:{i}"), &"v".repeat(1024)])]),
    ("appended strings", |i| {
        vec![strs(&["APPEND", &format!("a:{i}"), "abc"]), strs(&["APPEND", &format!("a:{i}"), "def"])]
    }),
    ("small lists", |i| vec![strs(&["RPUSH", &format!("l:{i}"), "a", "bb", "ccc", "1", "2"])]),
    ("large lists", |i| {
        let mut c = strs(&["RPUSH", &format!("L:{}", i / 100)]);
        c.extend((0..50).map(|j| format!("element-{j}")));
        vec![c]
    }),
    ("small hashes", |i| vec![strs(&["HSET", &format!("h:{i}"), "f1", "v1", "f2", "22", "f3", "v3"])]),
    ("large hashes", |i| vec![strs(&["HSET", &format!("H:{}", i / 500), &format!("field:{i}"), &"x".repeat(80)])]),
    ("intsets", |i| vec![strs(&["SADD", &format!("i:{i}"), "1", "2", "3", "400000"])]),
    ("small sets", |i| vec![strs(&["SADD", &format!("s:{i}"), "apple", "pear", "plum"])]),
    ("large sets", |i| vec![strs(&["SADD", &format!("S:{}", i / 500), &format!("member:{i}")])]),
    ("small sorted sets", |i| vec![strs(&["ZADD", &format!("z:{i}"), "1", "a", "2.5", "b", "3", "c"])]),
    ("large sorted sets", |i| vec![strs(&["ZADD", &format!("Z:{}", i / 500), &i.to_string(), &format!("member:{i}")])]),
    ("small streams", |i| vec![strs(&["XADD", &format!("x:{i}"), "1-1", "event", "added", "id", &i.to_string()])]),
    ("large streams", |i| {
        vec![strs(&["XADD", &format!("X:{}", i / 5000), "*", "event", "completed", "jobId", &i.to_string()])]
    }),
    ("stream groups", |i| {
        let key = format!("G:{}", i / 1000);
        let mut cmds = vec![strs(&["XADD", &key, "*", "job", &i.to_string()])];
        if i % 1000 == 0 {
            cmds.push(strs(&["XGROUP", "CREATE", &key, "g", "0"]));
        }
        cmds.push(strs(&["XREADGROUP", "GROUP", "g", &format!("c{}", i % 7), "COUNT", "1", "STREAMS", &key, ">"]));
        cmds
    }),
];

fn measure(c: &mut Conn) -> (u64, u64) {
    (info_u64(c, "memory", "used_memory"), info_u64(c, "memory", "used_memory_dataset"))
}

#[test]
fn counted_memory_tracks_the_allocator_for_every_type() {
    let server = Server::redoubt();
    let mut c = server.conn();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (name, build) in BUILDERS {
        c.cmd(&["FLUSHALL"]).unwrap();
        let (used0, data0) = measure(&mut c);
        for i in 0..20_000 {
            for cmd in build(i) {
                c.cmd(&cmd).unwrap();
            }
        }
        let (used1, data1) = measure(&mut c);
        let real = used1 as f64 - used0 as f64;
        let counted = data1 as f64 - data0 as f64;
        let error = (counted - real) / real;
        report
            .push(format!("{name:>20}: allocator +{real:>10.0} B, counted +{counted:>10.0} B, {:+.1}%", error * 100.0));
        if error.abs() > TOLERANCE {
            failures.push(name);
        }
        // Everything goes back when the data goes (big flushes free on a background thread).
        c.cmd(&["FLUSHALL"]).unwrap();
        let back = used0 as f64 + real * 0.05 + 65536.0;
        let (used2, data2) = poll_until(Duration::from_secs(10), "memory to be freed", || {
            let (u, d) = measure(&mut c);
            ((u as f64) < back).then_some((u, d))
        });
        assert!(data2 <= data0 + 1024, "{name}: dataset {data2} after FLUSHALL (was {data0}, used {used2})");
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "counted memory off by more than {TOLERANCE}: {failures:?}\n{}", report.join("\n"));
}
