//! A slow disk (an fsync that takes seconds) must not stall the keyspace: the snapshot's file
//! work happens on its own thread, holding no shard lock, so reads and writes keep their
//! latency while it waits on the disk (p99 of a write and a read under 100 ms; it is
//! microseconds in practice). The same holds for appends to the append-only log, whose
//! writer thread is the only one that waits on the file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use persist::disk::{DelayedDisk, Disk};
use persist::snapshot::{self, AccessData, Job, Progress};
use store::{Entry, Keyspace, NewValue};

const SYNC_TAKES: Duration = Duration::from_secs(2);

/// The real filesystem, with every fsync taking [`SYNC_TAKES`].
fn slow_disk() -> DelayedDisk {
    DelayedDisk::new(SYNC_TAKES.as_millis() as u64)
}

fn set(ks: &Keyspace, key: &[u8]) {
    ks.lock_key(key).db(0, key).insert(Entry::new(key, NewValue::Inline(b"some value"), None, 0));
}

#[test]
fn a_slow_fsync_does_not_stall_the_keyspace() {
    let dir = std::env::temp_dir().join(format!("persist-slow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let ks = Arc::new(Keyspace::new(1));
    for i in 0..100_000 {
        set(&ks, format!("k{i}").as_bytes());
    }
    let done = Arc::new(AtomicBool::new(false));
    let snapshot = {
        let (ks, done, dir) = (ks.clone(), done.clone(), dir.clone());
        std::thread::spawn(move || {
            let job = Job {
                settings: commands::Settings::default(),
                aux: Vec::new(),
                functions: Vec::new(),
                access: AccessData::None,
                databases: 1,
                queue_limit: 0,
            };
            let started = Instant::now();
            let r = snapshot::write(&slow_disk(), &ks, &dir, "dump.rdb", &job, &Progress::default(), 0, &mut || {});
            done.store(true, Ordering::Release);
            (r, started.elapsed())
        })
    };
    // Latency of a write and a read, sampled every 16th pair (nanoseconds).
    let (mut samples, mut ops) = (Vec::new(), 0u64);
    while !done.load(Ordering::Acquire) {
        let key = format!("k{}", ops % 150_000);
        let t = Instant::now();
        set(&ks, key.as_bytes());
        ks.lock_key(key.as_bytes()).db(0, key.as_bytes()).lookup(key.as_bytes(), 0);
        if ops % 16 == 0 {
            samples.push(t.elapsed().as_nanos() as u64);
        }
        ops += 1;
    }
    samples.sort_unstable();
    let p99 = Duration::from_nanos(samples[samples.len() * 99 / 100]);
    let worst = Duration::from_nanos(*samples.last().expect("samples"));
    let (result, took) = snapshot.join().expect("snapshot thread");
    result.expect("the snapshot succeeds, slowly");
    assert!(took >= 2 * SYNC_TAKES, "the file and the directory were synced ({took:?})");
    assert!(p99 < Duration::from_millis(100), "keyspace p99 {p99:?} during the snapshot (worst {worst:?})");
    eprintln!("{ops} write+read pairs during a {took:?} snapshot: p99 {p99:?}, slowest sampled {worst:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_slow_fsync_does_not_stall_appends_to_the_log() {
    use persist::aof::{Fsync, Log};
    let dir = std::env::temp_dir().join(format!("persist-slow-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for policy in [Fsync::Always, Fsync::EverySec] {
        let path = dir.join(format!("{policy:?}.aof"));
        let log = Log::new(policy, 0);
        let writer = log.start(slow_disk().create(&path).expect("create"), 0).expect("writer");
        let mut cmd = Vec::new();
        persist::aof::encode_command(&mut cmd, &[b"SET", b"key", b"some value"]);
        let started = Instant::now();
        let mut lat = Vec::new();
        while started.elapsed() < SYNC_TAKES * 2 + Duration::from_millis(500) {
            let t = Instant::now();
            log.append(&[(0, &cmd)]);
            log.kick();
            lat.push(t.elapsed());
            std::thread::sleep(Duration::from_micros(200));
        }
        lat.sort();
        let p99 = lat[lat.len() * 99 / 100];
        let max = *lat.last().expect("samples");
        eprintln!("{policy:?}: {} appends, p99 {p99:?}, slowest {max:?}", lat.len());
        assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
        assert!(max < Duration::from_millis(100), "slowest {max:?}");
        if policy == Fsync::Always {
            // Group commit: thousands of appends, a handful of (two-second) fsyncs.
            assert!(log.durable() > 0, "each fsync makes everything before it durable");
        }
        log.stop();
        writer.join().expect("writer exits");
        assert_eq!(log.durable(), log.appended(), "stopping writes and syncs everything");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), log.appended());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
