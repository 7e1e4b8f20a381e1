//! Rollback safety: a snapshot written by the current code must be readable by the previous
//! release's reader. `rdb-frozen-1` is a frozen copy of that reader (tests/frozen/README.md);
//! this test writes a snapshot of every type and encoding, in both RDB versions Redoubt
//! writes, and checks that the frozen reader decodes exactly what the current one does.

use std::path::Path;

use persist::disk::OsDisk;
use persist::snapshot::{self, AccessData, Job, Progress};
use store::Keyspace;

const NOW: i64 = 1_700_000_000_000;

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// One key of every type, in both small and large encodings, two with TTLs, in two databases.
fn values() -> Vec<(usize, Vec<u8>, rdb::Value, Option<i64>)> {
    use rdb::Value::*;
    let big = |n: usize, p: &str| (0..n).map(|i| format!("{p}{i}").into_bytes()).collect::<Vec<_>>();
    let stream = rdb::Stream {
        entries: (1..=150u64)
            .map(|i| (rdb::StreamId { ms: i, seq: 0 }, vec![(bytes("f"), i.to_string().into_bytes())]))
            .collect(),
        length: 150,
        last_id: rdb::StreamId { ms: 150, seq: 0 },
        first_id: rdb::StreamId { ms: 1, seq: 0 },
        max_deleted_id: rdb::StreamId::default(),
        entries_added: 150,
        groups: vec![rdb::StreamGroup {
            name: bytes("g"),
            last_id: rdb::StreamId { ms: 2, seq: 0 },
            entries_read: Some(2),
            pel: vec![rdb::PendingEntry { id: rdb::StreamId { ms: 2, seq: 0 }, delivery_time: NOW, delivery_count: 1 }],
            consumers: vec![rdb::StreamConsumer {
                name: bytes("c"),
                seen_time: NOW,
                active_time: Some(NOW),
                pending: vec![rdb::StreamId { ms: 2, seq: 0 }],
            }],
        }],
    };
    vec![
        (0, bytes("str"), String(bytes("hello")), None),
        (0, bytes("int"), String(bytes("-123456")), Some(NOW + 60_000)),
        (0, bytes("long"), String("compressible ".repeat(50).into_bytes()), None),
        (0, bytes("list"), List(big(5, "e")), None),
        (0, bytes("biglist"), List(big(3000, "element-")), None),
        (0, bytes("intset"), Set(big(5, "")), None),
        (0, bytes("set"), Set(big(5, "m")), None),
        (0, bytes("bigset"), Set(big(1000, "member-")), None),
        (1, bytes("hash"), Hash(vec![(bytes("f"), bytes("v")), (bytes("n"), bytes("1"))]), Some(NOW + 1)),
        (1, bytes("bighash"), Hash((0..1000).map(|i| (format!("f{i}").into_bytes(), bytes("v"))).collect()), None),
        (1, bytes("zset"), ZSet(vec![(bytes("a"), 1.0), (bytes("b"), 2.5), (bytes("c"), f64::INFINITY)]), None),
        (1, bytes("bigzset"), ZSet((0..1000).map(|i| (format!("m{i}").into_bytes(), i as f64 / 3.0)).collect()), None),
        (1, bytes("stream"), Stream(Box::new(stream)), None),
    ]
}

fn write(dir: &Path, version: u16) {
    let ks = Keyspace::new(2);
    let settings = commands::Settings { rdb_version: version, ..Default::default() };
    for (db, key, value, ttl) in values() {
        let e = commands::serial::value_entry(&key, value, ttl, 0, &settings).expect("valid");
        ks.lock_key(&key).db(db, &key).insert(e);
    }
    let job = Job {
        settings,
        aux: vec![("redis-ver".into(), "7.2.4".into())],
        functions: vec![bytes("#!lua name=lib\nredis.register_function('f', function() return 1 end)")],
        access: AccessData::None,
        databases: 2,
        queue_limit: 0,
    };
    snapshot::write(&OsDisk, &ks, dir, "dump.rdb", &job, &Progress::default(), NOW, &mut || {}).expect("snapshot");
}

/// Every record, as text (both readers' types print alike).
fn current(file: &[u8]) -> Vec<String> {
    let mut r = rdb::FileReader::new(file).expect("header");
    std::iter::from_fn(|| r.next().expect("current reader").map(|rec| format!("{rec:?}"))).collect()
}

fn frozen(file: &[u8]) -> Vec<String> {
    let mut r = rdb_frozen_1::FileReader::new(file).expect("header");
    std::iter::from_fn(|| r.next().expect("frozen reader").map(|rec| format!("{rec:?}"))).collect()
}

#[test]
fn the_previous_release_reads_what_this_one_writes() {
    for version in [11, 10] {
        let dir = std::env::temp_dir().join(format!("persist-rollback-{}-{version}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        write(&dir, version);
        let file = std::fs::read(dir.join("dump.rdb")).expect("read");
        let (now, then) = (current(&file), frozen(&file));
        assert_eq!(now.iter().filter(|r| r.starts_with("Key")).count(), values().len(), "RDB {version}");
        assert_eq!(now, then, "RDB {version}: the frozen reader decodes differently");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
