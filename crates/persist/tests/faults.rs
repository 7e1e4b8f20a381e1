//! Snapshots over a fault-injecting disk: a write, short write, fsync or rename that fails at
//! any position must fail the snapshot cleanly: the previous snapshot file stays byte for byte
//! what it was, no temporary file is left behind, and the next snapshot (on a working disk) is
//! exactly the keyspace, loaded back and compared key by key.

use std::collections::BTreeMap;
use std::path::Path;

use persist::disk::{Disk, Fault, FaultyDisk, OsDisk};
use persist::snapshot::{self, AccessData, Job, Progress, SaveError};
use store::keyspace::SHARDS;
use store::Keyspace;

const NOW: i64 = 1_700_000_000_000;

fn job() -> Job {
    Job {
        settings: commands::Settings::default(),
        aux: vec![("redis-ver".into(), "7.2.4".into())],
        functions: Vec::new(),
        access: AccessData::None,
        databases: 2,
        queue_limit: 0,
    }
}

/// Strings, lists and hashes in two databases, some with a TTL.
fn filled(seed: u32) -> Keyspace {
    let ks = Keyspace::new(2);
    let s = commands::Settings::default();
    for i in 0..400u32 {
        let key = format!("k{i}");
        let value = match i % 3 {
            0 => rdb::Value::String(format!("v{i}-{seed}").into_bytes()),
            1 => rdb::Value::List((0..(i % 50 + 1)).map(|j| format!("e{j}").into_bytes()).collect()),
            _ => rdb::Value::Hash(
                (0..(i % 9 + 1)).map(|j| (format!("f{j}").into_bytes(), vec![b'x'; j as usize])).collect(),
            ),
        };
        let expire = (i % 7 == 0).then_some(NOW + 1_000_000);
        let e = commands::serial::value_entry(key.as_bytes(), value, expire, 0, &s).expect("valid value");
        ks.lock_key(key.as_bytes()).db((i % 2) as usize, key.as_bytes()).insert(e);
    }
    ks
}

type Picture = BTreeMap<(usize, Vec<u8>), (rdb::Value, Option<i64>)>;

fn picture(ks: &Keyspace) -> Picture {
    let mut out = Picture::new();
    for shard in 0..SHARDS {
        let mut view = ks.lock_shard(shard);
        for s in view.shards_mut() {
            for (db, d) in s.dbs.iter().enumerate() {
                for e in d.iter() {
                    out.insert((db, e.key().to_vec()), (commands::serial::entry_value(e), e.expire_at()));
                }
            }
        }
    }
    out
}

fn save(disk: &dyn Disk, ks: &Keyspace, dir: &Path) -> Result<snapshot::Written, SaveError> {
    snapshot::write(disk, ks, dir, "dump.rdb", &job(), &Progress::default(), NOW, &mut || {})
}

fn loaded(dir: &Path) -> Picture {
    let ks = Keyspace::new(2);
    let found =
        persist::load::load(&OsDisk, &dir.join("dump.rdb"), &ks, &commands::Settings::default(), NOW, |_, _| {})
            .expect("the snapshot loads");
    assert!(found.is_some(), "a snapshot file exists");
    picture(&ks)
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_injected_fault_fails_the_snapshot_cleanly_and_the_next_one_is_whole() {
    let dir = std::env::temp_dir().join(format!("persist-faults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    save(&OsDisk, &filled(0), &dir).expect("the first snapshot");
    let good = std::fs::read(dir.join("dump.rdb")).expect("read");
    let ks = filled(1);
    let want = picture(&ks);
    for fault in [Fault::FailWrite, Fault::ShortWrite, Fault::FailSync, Fault::FailRename] {
        // A dry run counts this fault kind's operations, then each one fails in turn.
        let counter = FaultyDisk::new(fault, u64::MAX);
        save(&counter, &ks, &dir).expect("no fault injected");
        std::fs::write(dir.join("dump.rdb"), &good).expect("restore the old file");
        let ops = counter.seen();
        assert!(ops > 0, "{fault:?}: the snapshot performs such operations");
        for at in 0..ops {
            let err = save(&FaultyDisk::new(fault, at), &ks, &dir).expect_err("the fault fails the snapshot");
            assert!(matches!(err, SaveError::Io(..)), "{fault:?} at {at}: {err}");
            assert_eq!(std::fs::read(dir.join("dump.rdb")).expect("read"), good, "{fault:?} at {at}: old file changed");
            assert_eq!(files(&dir), ["dump.rdb"], "{fault:?} at {at}: temporary file left");
        }
        save(&OsDisk, &ks, &dir).expect("a snapshot on a working disk");
        assert_eq!(loaded(&dir), want, "{fault:?}: the snapshot after the faults is the keyspace");
        std::fs::write(dir.join("dump.rdb"), &good).expect("restore the old file");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
