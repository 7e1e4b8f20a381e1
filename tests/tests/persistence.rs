//! Snapshots, RDB files and DUMP/RESTORE, checked against a real redis-server:
//!
//! * a `dump.rdb` written by redis-server loads into Redoubt with every key, type, value and
//!   TTL identical (compared key by key through both servers);
//! * DUMP payloads move both ways (Redis → Redoubt, and Redoubt → Redis with `rdb-version 10`,
//!   since the reference server is Redis 7.0), and RESTORE's errors are Redis's byte for byte;
//! * a Redoubt snapshot reloads into Redoubt and loads into redis-server;
//! * BGSAVE under a stream of transactions is point-in-time (every transaction is in the
//!   snapshot whole or not at all);
//! * a snapshot that cannot be written turns writes into MISCONF while reads and PING keep
//!   answering, and the node recovers by itself when the disk works again.

use std::collections::BTreeSet;
use std::time::Duration;

use redoubt_tests::dataset::{assert_same_data, cmd, flat, keys, populate, run};
use redoubt_tests::util::{info, poll_until, TempDir, Tmpfs};
use redoubt_tests::value::{must_decode, Value};
use redoubt_tests::{Conn, Server};

fn bulk(reply: &[u8]) -> Vec<u8> {
    match must_decode(reply) {
        Value::Bulk(b) => b,
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

#[test]
fn a_redis_dump_rdb_loads_with_every_key_type_value_and_ttl() {
    let redis = Server::redis();
    let mut r = redis.conn();
    populate(&mut r);
    let library = "#!lua name=lib\nredis.register_function('f', function() return 1 end)";
    cmd(&mut r, &[b"FUNCTION", b"LOAD", library.as_bytes()]);
    run(&mut r, "SAVE");
    let dir = redis.dir().display().to_string();
    let ours = Server::redoubt_with_args(&["--dir", &dir, "--dbfilename", "dump.rdb"]);
    let mut o = ours.conn();
    assert_same_data(&mut r, &mut o);
    assert_eq!(run(&mut o, "FCALL f 0"), b":1\r\n", "the file's function library loads too");
    let expected = keys(&mut r, 0).len() + keys(&mut r, 3).len();
    assert_eq!(info(&mut o, "persistence")["rdb_last_load_keys_loaded"], expected.to_string());
}

/// Copies every key of databases 0 and 3 from `from` to `to` with DUMP, PTTL and RESTORE.
fn copy_by_dump(from: &mut Conn, to: &mut Conn) {
    for db in [0, 3] {
        for key in keys(from, db) {
            let payload = bulk(&cmd(from, &[b"DUMP", &key]));
            let pttl = must_decode(&cmd(from, &[b"PTTL", &key])).as_int().expect("PTTL").max(0);
            run(to, &format!("SELECT {db}"));
            let reply = cmd(to, &[b"RESTORE", &key, pttl.to_string().as_bytes(), &payload]);
            assert_eq!(reply, b"+OK\r\n", "RESTORE {}", String::from_utf8_lossy(&key));
        }
    }
}

#[test]
fn dump_payloads_move_both_ways_between_redis_and_redoubt() {
    let redis = Server::redis();
    let ours = Server::redoubt_with_args(&["--rdb-version", "10"]);
    let (mut r, mut o) = (redis.conn(), ours.conn());
    populate(&mut r);
    copy_by_dump(&mut r, &mut o);
    assert_same_data(&mut r, &mut o);
    // Redoubt → Redis, into a fresh Redis.
    let redis2 = Server::redis();
    let mut r2 = redis2.conn();
    copy_by_dump(&mut o, &mut r2);
    assert_same_data(&mut r2, &mut o);
}

/// Runs `args` on both servers and asserts the raw replies are identical.
fn same(r: &mut Conn, o: &mut Conn, args: &[&[u8]]) -> Vec<u8> {
    let (a, b) = (cmd(r, args), cmd(o, args));
    let shown: Vec<_> = args.iter().map(|a| String::from_utf8_lossy(a).chars().take(40).collect::<String>()).collect();
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b), "{shown:?}");
    a
}

#[test]
fn restore_options_and_errors_match_redis() {
    let redis = Server::redis();
    let ours = Server::redoubt();
    let (mut r, mut o) = (redis.conn(), ours.conn());
    run(&mut r, "RPUSH src a b c");
    let payload = bulk(&cmd(&mut r, &[b"DUMP", b"src"]));
    let mut bad_crc = payload.clone();
    *bad_crc.last_mut().expect("payload") ^= 1;
    let mut newer = payload.clone();
    let at = newer.len() - 10;
    newer[at] = 12;
    for c in [&mut r, &mut o] {
        run(c, "SET taken x");
    }
    let p = payload.as_slice();
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"DUMP", b"missing"],
        vec![b"RESTORE", b"k1", b"0", p],
        vec![b"LRANGE", b"k1", b"0", b"-1"],
        vec![b"RESTORE", b"k1", b"0", p],
        vec![b"RESTORE", b"taken", b"0", p],
        vec![b"RESTORE", b"taken", b"0", p, b"REPLACE"],
        vec![b"TYPE", b"taken"],
        vec![b"RESTORE", b"k2", b"-1", p],
        vec![b"RESTORE", b"k2", b"x", p],
        vec![b"RESTORE", b"k2", b"0", b"short"],
        vec![b"RESTORE", b"k2", b"0", &bad_crc],
        vec![b"RESTORE", b"k2", b"0", &newer],
        vec![b"RESTORE", b"k2", b"0", p, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"k2", b"0", p, b"IDLETIME", b"x"],
        vec![b"RESTORE", b"k2", b"0", p, b"FREQ", b"256"],
        vec![b"RESTORE", b"k2", b"0", p, b"IDLETIME", b"1", b"FREQ", b"1"],
        vec![b"RESTORE", b"k2", b"0", p, b"IDLETIME"],
        vec![b"RESTORE", b"k2", b"0", p, b"BOGUS"],
        vec![b"RESTORE", b"k2", b"0", p, b"IDLETIME", b"1000"],
        vec![b"OBJECT", b"IDLETIME", b"k2"],
        // An absolute TTL in the past: nothing is created, and REPLACE deletes the old key.
        vec![b"RESTORE", b"k3", b"1", p, b"ABSTTL"],
        vec![b"EXISTS", b"k3"],
        vec![b"RESTORE", b"k1", b"1", p, b"ABSTTL", b"REPLACE"],
        vec![b"EXISTS", b"k1"],
        vec![b"RESTORE", b"k4", b"4102444800000", p, b"ABSTTL"],
        vec![b"PEXPIRETIME", b"k4"],
        vec![b"RESTORE"],
        vec![b"DUMP"],
    ];
    for args in &cases {
        same(&mut r, &mut o, args);
    }
}

#[test]
fn a_snapshot_reloads_here_and_loads_into_redis() {
    let ours = Server::redoubt_with_args(&["--rdb-version", "10"]);
    let mut o = ours.conn();
    populate(&mut o);
    run(&mut o, "SAVE");
    let dir = ours.dir().display().to_string();
    let again = Server::redoubt_with_args(&["--dir", &dir]);
    let mut a = again.conn();
    assert_same_data(&mut o, &mut a);
    let redis = Server::redis_with_args(&["--dir", &dir]);
    let mut r = redis.conn();
    assert_same_data(&mut o, &mut r);
}

#[test]
fn bgsave_is_point_in_time_under_concurrent_transactions() {
    let ours = Server::redoubt();
    let mut o = ours.conn();
    for i in 0..20_000 {
        cmd(&mut o, &[b"SET", format!("filler:{i}").as_bytes(), b"some value to write"]);
    }
    run(&mut o, "MSET a 0 b 0");
    let port = ours.port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut w = Conn::connect(port).expect("writer connects");
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for line in ["MULTI", "INCR a", "INCR b", "DEL filler:1", "EXEC"] {
                    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
                    w.cmd(&args).expect("transaction");
                }
                n += 1;
            }
            n
        })
    };
    for _ in 0..3 {
        run(&mut o, "BGSAVE");
        poll_until(Duration::from_secs(30), "BGSAVE to finish", || {
            (info(&mut o, "persistence")["rdb_bgsave_in_progress"] == "0").then_some(())
        });
        assert_eq!(info(&mut o, "persistence")["rdb_last_bgsave_status"], "ok");
        let dir = ours.dir().display().to_string();
        let copy = Server::redoubt_with_args(&["--dir", &dir]);
        let mut c = copy.conn();
        let (a, b) = (bulk(&run(&mut c, "GET a")), bulk(&run(&mut c, "GET b")));
        assert_eq!(a, b, "the snapshot holds both INCRs of every transaction or neither");
        let n: usize = match must_decode(&run(&mut c, "DBSIZE")) {
            Value::Int(n) => n as usize,
            other => panic!("DBSIZE {other:?}"),
        };
        assert!(n >= 20_000, "the snapshot holds the keyspace ({n} keys)");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let transactions = writer.join().expect("writer");
    assert!(transactions > 0);
}

#[test]
fn a_failing_disk_refuses_writes_with_misconf_and_recovers_by_itself() {
    let scratch = TempDir::new("misconf");
    let missing = scratch.path().join("not-there");
    let ours = Server::redoubt_with_args(&["--save", "1 1", "--enable-protected-configs", "yes"]);
    let mut o = ours.conn();
    run(&mut o, "SET k v");
    // As Redis, `dir` must exist when set; it then disappears.
    let refused = cmd(&mut o, &[b"CONFIG", b"SET", b"dir", missing.display().to_string().as_bytes()]);
    assert_eq!(refused, b"-ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory\r\n");
    std::fs::create_dir_all(&missing).expect("create dir");
    assert_eq!(cmd(&mut o, &[b"CONFIG", b"SET", b"dir", missing.display().to_string().as_bytes()]), b"+OK\r\n");
    std::fs::remove_dir(&missing).expect("remove dir");
    // SAVE fails: the directory does not exist.
    assert_eq!(cmd(&mut o, &[b"SAVE"]), b"-ERR\r\n");
    assert_eq!(info(&mut o, "persistence")["rdb_last_bgsave_status"], "err");
    let refused = cmd(&mut o, &[b"SET", b"k", b"w"]);
    assert!(refused.starts_with(b"-MISCONF "), "{}", String::from_utf8_lossy(&refused));
    assert_eq!(run(&mut o, "GET k"), b"$1\r\nv\r\n", "reads keep working");
    assert_eq!(run(&mut o, "PING"), b"+PONG\r\n");
    assert!(!info(&mut o, "persistence").is_empty());
    let script = cmd(&mut o, &[b"EVAL", b"return redis.call('SET', 'k', 'x')", b"0"]);
    assert!(
        script.starts_with(b"-MISCONF "),
        "writes inside scripts are refused too: {}",
        String::from_utf8_lossy(&script)
    );
    assert_eq!(cmd(&mut o, &[b"EVAL", b"return redis.call('GET', 'k')", b"0"]), b"$1\r\nv\r\n");
    // The disk comes back: the schedule retries on its own and writes are accepted again.
    std::fs::create_dir_all(&missing).expect("create dir");
    poll_until(Duration::from_secs(30), "the schedule's retry to succeed", || {
        (info(&mut o, "persistence")["rdb_last_bgsave_status"] == "ok").then_some(())
    });
    assert_eq!(run(&mut o, "SET k w"), b"+OK\r\n");
    assert!(missing.join("dump.rdb").exists());
    let log = ours.log_tail();
    assert!(log.contains("Snapshot failed"), "the failure is logged: {log}");
}

#[test]
fn shutdown_saves_and_a_restart_loads() {
    let mut ours = Server::redoubt_with_args(&["--save", "3600 1"]);
    let mut o = ours.conn();
    populate(&mut o);
    let before: BTreeSet<Vec<u8>> = keys(&mut o, 0).into_iter().collect();
    run(&mut o, "SELECT 0");
    let _ = o.cmd(&["SHUTDOWN"]);
    ours.wait_exit(Duration::from_secs(30)).expect("the server exits after saving");
    assert!(ours.dir().join("dump.rdb").exists());
    let dir = ours.dir().display().to_string();
    let again = Server::redoubt_with_args(&["--dir", &dir]);
    let mut a = again.conn();
    let after: BTreeSet<Vec<u8>> = keys(&mut a, 0).into_iter().collect();
    assert_eq!(before, after);
}

#[test]
fn a_full_disk_refuses_writes_with_misconf_and_recovers_when_space_returns() {
    let scratch = TempDir::new("disk-full");
    let Some(disk) = Tmpfs::mount(&scratch.path().join("mnt"), "1m") else { return };
    // Leave about 100 KB free, less than the snapshot needs.
    let filler = disk.path.join("filler");
    std::fs::write(&filler, vec![7u8; 900 * 1024]).expect("fill the tmpfs");
    let dir = disk.path.display().to_string();
    // The schedule is set only once the data is in, so no background save can be running
    // when SAVE is sent (on a slow machine the loop takes over a second).
    let ours = Server::redoubt_with_args(&["--dir", &dir, "--save", "", "--rdbcompression", "no"]);
    let mut o = ours.conn();
    for i in 0..2000 {
        cmd(&mut o, &[b"SET", format!("key:{i}").as_bytes(), &[b'x'; 200]]);
    }
    assert_eq!(cmd(&mut o, &[b"SAVE"]), b"-ERR\r\n", "the snapshot does not fit");
    assert_eq!(cmd(&mut o, &[b"CONFIG", b"SET", b"save", b"1 1"]), b"+OK\r\n");
    assert_eq!(info(&mut o, "persistence")["rdb_last_bgsave_status"], "err");
    let refused = cmd(&mut o, &[b"SET", b"key:0", b"new"]);
    assert!(refused.starts_with(b"-MISCONF "), "{}", String::from_utf8_lossy(&refused));
    assert_eq!(run(&mut o, "PING"), b"+PONG\r\n");
    assert_eq!(bulk(&run(&mut o, "GET key:1")), vec![b'x'; 200], "reads keep working");
    let leftovers: Vec<_> = std::fs::read_dir(&disk.path).expect("ls").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("filler")], "no partial file is left on the full disk");
    // Space comes back: the schedule's retry succeeds and writes are accepted again.
    std::fs::remove_file(&filler).expect("free the space");
    poll_until(Duration::from_secs(30), "the retried snapshot to succeed", || {
        (info(&mut o, "persistence")["rdb_last_bgsave_status"] == "ok").then_some(())
    });
    assert_eq!(run(&mut o, "SET key:0 new"), b"+OK\r\n");
    assert!(ours.log_tail().contains("No space left on device"), "the log says why: {}", ours.log_tail());
}

#[test]
fn a_namespace_can_stay_out_of_snapshots() {
    let config = "cache match cache:* persist no; sessions match sess:*";
    let ours = Server::redoubt_with_args(&["--namespace", config]);
    let mut o = ours.conn();
    assert!(
        String::from_utf8_lossy(&run(&mut o, "CONFIG GET namespace")).contains("persist no"),
        "CONFIG GET shows the option"
    );
    run(&mut o, "MSET cache:1 a cache:2 b sess:1 c other d");
    assert!(String::from_utf8_lossy(&bulk(&run(&mut o, "INFO namespaces"))).contains("persist=no"));
    run(&mut o, "SAVE");
    let dir = ours.dir().display().to_string();
    let again = Server::redoubt_with_args(&["--dir", &dir]);
    let mut a = again.conn();
    let mut left: Vec<Vec<u8>> = flat(&run(&mut a, "KEYS *"));
    left.sort();
    assert_eq!(left, [b"other".to_vec(), b"sess:1".to_vec()]);
}

/// A child process killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn clients_get_loading_while_the_snapshot_loads() {
    let source = Server::redoubt();
    let mut s = source.conn();
    for i in 0..2000 {
        cmd(&mut s, &[b"SET", format!("k{i}").as_bytes(), b"v"]);
    }
    run(&mut s, "SAVE");
    // One millisecond per key: the load takes about two seconds.
    let port = redoubt_tests::server::free_port().expect("port");
    let dir = source.dir().display().to_string();
    let _child = Killed(
        std::process::Command::new(redoubt_tests::server::redoubt_binary_or_panic())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--dir", &dir])
            .args(["--key-load-delay", "1000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redoubt-server"),
    );
    let mut c = poll_until(Duration::from_secs(10), "the port to accept", || Conn::connect(port).ok());
    let first = cmd(&mut c, &[b"GET", b"k1"]);
    let pong_or_loading = cmd(&mut c, &[b"PING"]);
    let during = info(&mut c, "persistence");
    let loading = during["loading"] == "1";
    if loading {
        assert_eq!(first, b"-LOADING Redis is loading the dataset in memory\r\n");
        assert_eq!(pong_or_loading, b"-LOADING Redis is loading the dataset in memory\r\n");
        assert!(during["loading_total_bytes"].parse::<u64>().expect("total") > 0);
        assert!(during.contains_key("loading_loaded_perc"), "{during:?}");
    }
    poll_until(Duration::from_secs(30), "the load to finish", || {
        (cmd(&mut c, &[b"PING"]) == b"+PONG\r\n").then_some(())
    });
    assert_eq!(run(&mut c, "DBSIZE"), b":2000\r\n");
    assert_eq!(info(&mut c, "persistence")["loading"], "0");
    assert!(loading, "the first commands arrived while loading (2,000 keys at 1 ms each)");
}

/// Runs `redoubt-server check-rdb FILE`: (exit code, stdout).
fn check_rdb(file: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(redoubt_tests::server::redoubt_binary_or_panic())
        .arg("check-rdb")
        .arg(file)
        .output()
        .expect("run redoubt-server check-rdb");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_damaged_snapshot_stops_startup_with_the_offset_and_the_reason() {
    let source = Server::redoubt();
    let mut s = source.conn();
    populate(&mut s);
    run(&mut s, "SAVE");
    let good = std::fs::read(source.dir().join("dump.rdb")).expect("snapshot");
    let scratch = TempDir::new("damaged");
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    for (name, bytes) in [("truncated", &good[..good.len() - 100]), ("flipped", &flipped[..])] {
        std::fs::write(scratch.path().join("dump.rdb"), bytes).expect("write");
        let out = std::process::Command::new(redoubt_tests::server::redoubt_binary_or_panic())
            .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(scratch.path())
            .output()
            .expect("run redoubt-server");
        let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {log}");
        assert!(log.contains("cannot load") && log.contains("near byte"), "{name}: {log}");
        let check = check_rdb(&scratch.path().join("dump.rdb"));
        assert_eq!(check.0, Some(1), "check-rdb on the {name} file: {}", check.1);
        assert!(check.1.contains("DAMAGED: the file is damaged near byte"), "{}", check.1);
    }
    let check = check_rdb(&source.dir().join("dump.rdb"));
    assert_eq!(check.0, Some(0), "check-rdb on the good file: {}", check.1);
    assert!(check.1.contains("db 3: 1 keys") && check.1.contains("OK: "), "{}", check.1);
}

#[test]
fn kill_9_at_any_moment_of_a_snapshot_leaves_a_whole_snapshot_that_loads() {
    let data = TempDir::new("kill-9");
    let dir = data.path().display().to_string();
    // Each round adds 20,000 keys, starts BGSAVE and kills the server after a pseudo-random
    // delay (fixed seed): before, during or after the snapshot. The next start must succeed
    // and load the last whole snapshot: the keys before the round, or all of them.
    let mut seed = 0x2545_f491_u64;
    let mut whole = 0i64;
    let mut completed = 0;
    for round in 0..12 {
        let server = Server::redoubt_with_args(&["--dir", &dir]);
        let mut c = server.conn();
        let loaded = must_decode(&run(&mut c, "DBSIZE")).as_int().expect("DBSIZE");
        let before = whole - 20_000;
        assert!(
            loaded == whole || (round > 0 && loaded == before),
            "round {round}: loaded {loaded} keys; a whole snapshot has {before} or {whole}"
        );
        completed += usize::from(round > 0 && loaded == whole);
        for i in 0..20_000 {
            c.send(&[b"SET".as_slice(), format!("r{round}:{i}").as_bytes(), &[b'v'; 100]]).expect("send");
        }
        for _ in 0..20_000 {
            c.read_reply_raw().expect("reply");
        }
        whole = loaded + 20_000;
        assert_eq!(run(&mut c, "BGSAVE"), b"+Background saving started\r\n");
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis((seed >> 33) % 120));
        drop(server); // SIGKILL
    }
    let server = Server::redoubt_with_args(&["--dir", &dir]);
    let loaded = must_decode(&run(&mut server.conn(), "DBSIZE")).as_int().expect("DBSIZE");
    assert!(loaded == whole || loaded == whole - 20_000, "final start loaded {loaded}");
    let leftovers: Vec<String> = std::fs::read_dir(data.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("temp-"))
        .collect();
    eprintln!("{completed} of 11 killed snapshots had completed");
    assert_eq!(leftovers, Vec::<String>::new(), "startup removes the temporary files of killed snapshots");
}

#[test]
fn dir_and_dbfilename_are_protected_and_checked_as_in_redis() {
    let scratch = TempDir::new("protected");
    let here = scratch.path().display().to_string();
    for protected in ["no", "yes"] {
        let redis = Server::redis_with_args(&["--enable-protected-configs", protected]);
        let ours = Server::redoubt_with_args(&["--enable-protected-configs", protected]);
        let (mut r, mut o) = (redis.conn(), ours.conn());
        for args in [
            vec!["CONFIG", "SET", "dir", "/nonexistent/dir"],
            vec!["CONFIG", "SET", "dir", "/etc/hostname"],
            vec!["CONFIG", "SET", "dbfilename", "a/b.rdb"],
            vec!["CONFIG", "SET", "dbfilename", "other.rdb"],
            vec!["CONFIG", "GET", "dbfilename"],
            vec!["CONFIG", "SET", "dir", &here],
        ] {
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            same(&mut r, &mut o, &args);
        }
        // Each server's own directory unless the SET above was allowed.
        if protected == "yes" {
            same(&mut r, &mut o, &[b"CONFIG", b"GET", b"dir"]);
        }
    }
}
