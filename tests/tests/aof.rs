//! The append-only log, end to end:
//!
//! * every command whose effect depends on the clock or on chance is logged as its effect,
//!   so a restart after `kill -9` holds exactly the data the server had (stream deliveries
//!   with their delivery counts and times included);
//! * redis-server loads a log Redoubt wrote, and Redoubt loads a log redis-server wrote;
//! * a torn tail is cut at startup (saying how many bytes), damage elsewhere stops startup
//!   with the offset, and `check-aof --fix` repairs it;
//! * hundreds of `kill -9` at random moments under write load with `appendfsync always`:
//!   no acknowledged write is ever missing and startup never fails;
//! * rewrites (BGREWRITEAOF and the automatic one) under load lose nothing and leave one
//!   base and one incremental file;
//! * a full disk turns writes into MISCONF while reads answer, and the node recovers by
//!   itself when space returns, with every acknowledged write kept;
//! * CONFIG SET appendonly yes starts a log from the current data.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redoubt_tests::dataset::{assert_same_data, assert_same_pictures, cmd, pictures, populate, run};
use redoubt_tests::resp::is_error;
use redoubt_tests::server::{free_port, redoubt_binary_or_panic};
use redoubt_tests::util::{info, poll_until, run_bounded, TempDir, Tmpfs};
use redoubt_tests::value::{must_decode, Value};
use redoubt_tests::{Conn, Server};

fn int(reply: &[u8]) -> i64 {
    must_decode(reply).as_int().unwrap_or_else(|| panic!("expected an integer: {}", String::from_utf8_lossy(reply)))
}

/// A Redoubt server logging to `dir` with `appendfsync always` (no snapshots).
fn logged(dir: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""];
    args.extend_from_slice(extra);
    Server::redoubt_with_args(&args)
}

/// The incremental file the manifest in `dir/appendonlydir` names last.
fn last_incr(dir: &std::path::Path) -> std::path::PathBuf {
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).expect("manifest");
    let name = manifest
        .lines()
        .filter(|l| l.ends_with("type i"))
        .filter_map(|l| l.split(' ').nth(1))
        .next_back()
        .expect("an incremental file")
        .to_string();
    dir.join("appendonlydir").join(name)
}

/// Runs the clock- and chance-dependent commands whose logged form must be their effect.
fn effects(c: &mut Conn, blocker_port: u16) {
    for line in [
        "SET t:ex v EX 1000",
        "SETEX t:setex 1000 v",
        "PSETEX t:psetex 1000000 v",
        "SET t:keep v",
        "EXPIRE t:keep 500",
        "SET t:keep v2 KEEPTTL",
        "SET t:getex v",
        "GETEX t:getex EX 700",
        "SET t:persist v EX 100",
        "GETEX t:persist PERSIST",
        "SET t:past v",
        "EXPIREAT t:past 1",
        "SET t:rel v",
        "PEXPIRE t:rel 123456",
        "INCRBYFLOAT t:float 0.1",
        "INCRBYFLOAT t:float 0.2",
        "HINCRBYFLOAT t:hf f 1.1",
        "SADD t:spop a b c d e f g h",
        "SPOP t:spop",
        "SPOP t:spop 2",
        "SADD t:spopall a b",
        "SPOP t:spopall 5",
        "MULTI",
        "INCR t:multi",
        "SPOP t:spop",
        "EXEC",
        "RPUSH t:list a b c",
    ] {
        run(c, line);
    }
    for _ in 0..6 {
        run(c, "XADD t:x * field value");
    }
    run(c, "XADD t:x MAXLEN ~ 2 * field last");
    run(c, "XTRIM t:x MAXLEN ~ 1");
    run(c, "XGROUP CREATE t:x g 0");
    run(c, "XREADGROUP GROUP g c1 COUNT 2 STREAMS t:x >");
    run(c, "XREADGROUP GROUP g c1 STREAMS t:x 0");
    let Value::Array(pending) = must_decode(&run(c, "XPENDING t:x g - + 10")) else { panic!("XPENDING") };
    let first = pending[0].as_list().expect("entry")[0].as_bytes().expect("id").to_vec();
    cmd(c, &[b"XCLAIM", b"t:x", b"g", b"c2", b"0", &first]);
    run(c, "XAUTOCLAIM t:x g c3 0 0 COUNT 1");
    run(c, "XADD t:x2 * a 1");
    run(c, "XGROUP CREATE t:x2 g $");
    cmd(
        c,
        &[
            b"EVAL",
            b"redis.call('SET', KEYS[1], 'from-script'); redis.call('SPOP', KEYS[2]); return redis.call('INCRBYFLOAT', KEYS[3], '1.5')",
            b"3",
            b"t:script",
            b"t:spop",
            b"t:float",
        ],
    );
    let lib = b"#!lua name=aoflib\nredis.register_function('setit', function(keys, args) return redis.call('SET', keys[1], args[1]) end)";
    cmd(c, &[b"FUNCTION", b"LOAD", lib]);
    run(c, "FCALL setit 1 t:fcall fval");
    let payload = must_decode(&run(c, "DUMP t:list")).as_bytes().expect("payload").to_vec();
    cmd(c, &[b"RESTORE", b"t:restored", b"900000", &payload]);
    // Blocked clients served later: a list pop and a stream group read.
    let waiter = std::thread::spawn(move || {
        let mut b = Conn::connect(blocker_port).expect("blocked client");
        let popped = b.cmd(&["BLPOP", "t:bl", "0"]).expect("BLPOP");
        let read =
            b.cmd(&["XREADGROUP", "GROUP", "g", "c9", "BLOCK", "0", "STREAMS", "t:x2", ">"]).expect("XREADGROUP");
        (popped, read)
    });
    poll_until(Duration::from_secs(10), "the client to block", || {
        (info(c, "clients")["blocked_clients"] == "1").then_some(())
    });
    run(c, "RPUSH t:bl one two");
    poll_until(Duration::from_secs(10), "the client to block on the stream", || {
        (info(c, "clients")["blocked_clients"] == "1").then_some(())
    });
    run(c, "XADD t:x2 * b 2");
    let (popped, read) = waiter.join().expect("blocked client");
    assert!(!is_error(&popped) && !is_error(&read));
    run(c, "SELECT 2");
    run(c, "SET t:db2 two EX 3000");
    run(c, "SELECT 0");
}

/// XPENDING's entries without idle times: (id, consumer, delivery count), and whether each
/// idle time is recent (the delivery time survived, rather than starting from 1970).
fn pending_detail(c: &mut Conn, key: &str) -> Vec<(Vec<u8>, Vec<u8>, i64, bool)> {
    let Value::Array(items) = must_decode(&cmd(c, &[b"XPENDING", key.as_bytes(), b"g", b"-", b"+", b"100"])) else {
        panic!("XPENDING")
    };
    items
        .iter()
        .map(|e| {
            let f = e.as_list().expect("pending entry");
            let idle = f[2].as_int().expect("idle");
            (
                f[0].as_bytes().unwrap().to_vec(),
                f[1].as_bytes().unwrap().to_vec(),
                f[3].as_int().unwrap(),
                idle < 600_000,
            )
        })
        .collect()
}

#[test]
fn every_effect_replays_identically_after_kill_9() {
    let data = TempDir::new("aof-effects");
    let dir = data.path().display().to_string();
    let server = logged(&dir, &[]);
    let mut c = server.conn();
    populate(&mut c);
    effects(&mut c, server.port());
    assert_eq!(must_decode(&run(&mut c, "EXISTS t:past")).as_int(), Some(0));
    let before = pictures(&mut c, 4);
    let pending = (pending_detail(&mut c, "t:x"), pending_detail(&mut c, "t:x2"));
    assert!(pending.0.len() >= 2 && pending.1.len() == 1, "{pending:?}");
    drop(server); // SIGKILL: nothing is flushed at exit
    let again = logged(&dir, &[]);
    let mut a = again.conn();
    let after = pictures(&mut a, 4);
    assert_same_pictures(&before, &after, 2_000);
    assert_eq!((pending_detail(&mut a, "t:x"), pending_detail(&mut a, "t:x2")), pending);
    assert!(pending.0.iter().all(|p| p.3), "delivery times are kept: {pending:?}");
    assert_eq!(bulk_text(&run(&mut a, "FCALL setit 1 t:fcall2 v")), "OK", "the FUNCTION library came back");
    assert!(again.log_tail().contains("commands replayed"), "{}", again.log_tail());
}

fn bulk_text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).trim().trim_start_matches('+').to_string()
}

#[test]
fn redis_loads_our_log_and_we_load_redis_log() {
    // Redis writes, Redoubt loads: compared with redis-server loading the same log (Redis's
    // own log does not carry everything, e.g. a group's entries-read after XREADGROUP).
    let redis = Server::redis_with_args(&["--appendonly", "yes", "--appendfsync", "always", "--save", ""]);
    let mut r = redis.conn();
    populate(&mut r);
    run(&mut r, "SET r:ex v EX 5000");
    run(&mut r, "PEXPIRE s:small 9000000");
    let (theirs, reference) = (TempDir::new("aof-from-redis"), TempDir::new("aof-from-redis-ref"));
    copy_dir(&redis.dir().join("appendonlydir"), &theirs.path().join("appendonlydir"));
    copy_dir(&redis.dir().join("appendonlydir"), &reference.path().join("appendonlydir"));
    let ours = Server::redoubt_with_args(&["--dir", &theirs.path().display().to_string(), "--appendonly", "yes"]);
    let mut o = ours.conn();
    let again = Server::redis_with_args(&["--dir", &reference.path().display().to_string(), "--appendonly", "yes"]);
    let mut r2 = again.conn();
    assert_same_data(&mut r2, &mut o);

    // Redoubt writes (a base from a rewrite, then more commands), Redis loads.
    let mine = TempDir::new("aof-to-redis");
    let dir = mine.path().display().to_string();
    let ours = logged(&dir, &["--rdb-version", "10"]);
    let mut o = ours.conn();
    populate(&mut o);
    run(&mut o, "BGREWRITEAOF");
    poll_until(Duration::from_secs(30), "the rewrite to finish", || {
        let i = info(&mut o, "persistence");
        (i["aof_rewrite_in_progress"] == "0" && i["aof_rewrites"] == "2").then_some(())
    });
    effects_redis_can_replay(&mut o);
    let copy = TempDir::new("aof-to-redis-copy");
    copy_dir(&mine.path().join("appendonlydir"), &copy.path().join("appendonlydir"));
    let redis = Server::redis_with_args(&["--dir", &copy.path().display().to_string(), "--appendonly", "yes"]);
    let mut r = redis.conn();
    assert_same_data(&mut o, &mut r);
}

/// Commands after the rewrite, in the incremental file: effects Redis must replay the same.
fn effects_redis_can_replay(c: &mut Conn) {
    for line in [
        "SET after:ex v EX 5000",
        "SADD after:set a b c d",
        "SPOP after:set",
        "INCRBYFLOAT after:f 2.5",
        "XADD x:s * late entry",
        "XREADGROUP GROUP g1 dave COUNT 1 STREAMS x:s >",
        "XTRIM x:big MAXLEN ~ 500",
        "MULTI",
        "RPUSH l:small tail",
        "HSET h:small f3 v3",
        "EXEC",
        "SELECT 3",
        "SET db3:after v",
        "SELECT 0",
    ] {
        run(c, line);
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("ls") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// Starts redoubt-server on `dir` with the log on and returns how it exited (it is expected
/// not to start).
fn failed_start(dir: &str, extra: &[&str]) -> (Option<i32>, String) {
    let port = free_port().expect("port").to_string();
    let mut command = std::process::Command::new(redoubt_binary_or_panic());
    command.args(["--port", &port, "--dir", dir, "--appendonly", "yes", "--save", ""]).args(extra);
    let done = run_bounded(&mut command, Duration::from_secs(20));
    (done.status.and_then(|s| s.code()), done.output())
}

fn check_aof(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(redoubt_binary_or_panic())
        .arg("check-aof")
        .args(args)
        .output()
        .expect("run redoubt-server check-aof");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn append(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(path).expect("open").write_all(bytes).expect("append");
}

#[test]
fn a_torn_tail_is_cut_at_startup_and_damage_elsewhere_stops_it_until_check_aof_fixes_it() {
    let data = TempDir::new("aof-torn");
    let dir = data.path().display().to_string();
    let server = logged(&dir, &[]);
    let mut c = server.conn();
    run(&mut c, "SET a 1");
    run(&mut c, "SET b 2");
    drop(server);
    let incr = last_incr(data.path());
    let whole = std::fs::metadata(&incr).expect("stat").len();
    let torn = b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhal";
    append(&incr, torn);

    // aof-load-truncated no: startup stops and says what to do.
    let (code, out) = failed_start(&dir, &["--aof-load-truncated", "no"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ends in the middle of a command") && out.contains("check-aof --fix"), "{out}");
    let (code, report) = check_aof(&[&format!("{dir}/appendonlydir")]);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("DAMAGED") && report.contains(&format!("after byte {whole}")), "{report}");

    // The default cuts the torn tail, says how many bytes, and keeps every whole command.
    let server = logged(&dir, &[]);
    let mut c = server.conn();
    assert_eq!(bulk_text(&run(&mut c, "GET b")), "$1\r\n2");
    assert_eq!(int(&run(&mut c, "EXISTS c")), 0);
    assert!(
        server.log_tail().contains(&format!("{} bytes after byte {whole} were removed", torn.len())),
        "{}",
        server.log_tail()
    );
    run(&mut c, "SET d 4");
    drop(server);

    // Garbage between whole commands is damage, not a torn tail: startup stops with the
    // offset; check-aof --fix cuts the file there.
    let incr = last_incr(data.path());
    let good = std::fs::metadata(&incr).expect("stat").len();
    append(&incr, b"garbage\r\n*3\r\n$3\r\nSET\r\n$1\r\ne\r\n$1\r\n5\r\n");
    let (code, out) = failed_start(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("bad data at byte {good}")), "{out}");
    let (code, report) = check_aof(&["--fix", &format!("{dir}/appendonlydir")]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("FIXED"), "{report}");
    assert_eq!(std::fs::metadata(&incr).expect("stat").len(), good);
    let (code, report) = check_aof(&[&format!("{dir}/appendonlydir")]);
    assert_eq!(code, Some(0), "{report}");
    let server = logged(&dir, &[]);
    let mut c = server.conn();
    assert_eq!(int(&run(&mut c, "EXISTS a b d e")), 3);
}

#[test]
fn kill_9_under_write_load_with_always_never_loses_an_acknowledged_write() {
    let rounds: u64 = std::env::var("REDOUBT_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let data = TempDir::new("aof-kill");
    let dir = data.path().display().to_string();
    let writers = 4;
    let mut acked_total = vec![0u64; writers];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rewrites_started = 0;
    for round in 0..rounds {
        let server = logged(&dir, &["--auto-aof-rewrite-percentage", "0"]);
        let mut c = server.conn();
        // Every write acknowledged before the kill is there (and nothing never sent).
        for (w, total) in acked_total.iter_mut().enumerate() {
            let acked = *total;
            let n = must_decode(&cmd(&mut c, &[b"GET", format!("ctr:{w}").as_bytes()]));
            let n: u64 = n.as_bytes().map_or(0, |b| String::from_utf8_lossy(b).parse().expect("counter"));
            assert!(n >= acked, "round {round}: writer {w} had {acked} acknowledged, the log kept {n}");
            let len = int(&cmd(&mut c, &[b"LLEN", format!("seq:{w}").as_bytes()])) as u64;
            assert_eq!(len, n, "round {round}: the list and the counter moved together (MULTI)");
            *total = n;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for w in 0..writers {
            let progress = Arc::new(AtomicU64::new(0));
            let (port, stop) = (server.port(), stop.clone());
            let p = progress.clone();
            handles.push((
                progress,
                std::thread::spawn(move || {
                    let Ok(mut conn) = Conn::connect(port) else { return };
                    let (ctr, seq) = (format!("ctr:{w}"), format!("seq:{w}"));
                    while !stop.load(Ordering::Relaxed) {
                        let ok = conn.cmd(&["MULTI"]).is_ok()
                            && conn.cmd(&["INCR", &ctr]).is_ok()
                            && conn.cmd(&["RPUSH", &seq, "x"]).is_ok()
                            && conn.cmd(&["EXEC"]).is_ok_and(|r| r.starts_with(b"*2"));
                        if !ok {
                            return;
                        }
                        p.fetch_add(1, Ordering::SeqCst);
                    }
                }),
            ));
        }
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        if round % 40 == 39 {
            // Some rounds are killed during a rewrite.
            run(&mut c, "BGREWRITEAOF");
            rewrites_started += 1;
        }
        std::thread::sleep(Duration::from_millis(5 + (seed >> 33) % 40));
        drop(server); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for (w, (p, h)) in handles.into_iter().enumerate() {
            h.join().expect("writer");
            // A transaction the server logged but never acknowledged may be there too, so
            // counters are checked against the acknowledged count from below.
            acked_total[w] += p.load(Ordering::SeqCst);
        }
    }
    let server = logged(&dir, &[]);
    let mut c = server.conn();
    for (w, acked) in acked_total.iter().enumerate() {
        let n = must_decode(&cmd(&mut c, &[b"GET", format!("ctr:{w}").as_bytes()]));
        let n: u64 = n.as_bytes().map_or(0, |b| String::from_utf8_lossy(b).parse().expect("counter"));
        assert!(n >= *acked, "final: writer {w} had {acked} acknowledged, the log kept {n}");
    }
    eprintln!(
        "{rounds} kills, {rewrites_started} during rewrites; acknowledged transactions per writer: {acked_total:?}"
    );
    assert!(acked_total.iter().all(|&n| n > 0), "the writers made progress");
}

#[test]
fn rewrites_under_load_lose_nothing_and_leave_one_base_and_one_incremental_file() {
    let data = TempDir::new("aof-rewrite");
    let dir = data.path().display().to_string();
    let server = logged(
        &dir,
        &["--appendfsync", "everysec", "--auto-aof-rewrite-min-size", "200kb", "--auto-aof-rewrite-percentage", "50"],
    );
    let mut c = server.conn();
    run(&mut c, "MSET a 0 b 0");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (port, stop) = (server.port(), stop.clone());
        std::thread::spawn(move || {
            let mut w = Conn::connect(port).expect("writer");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for line in ["MULTI", "INCR a", "INCR b", "EXEC"] {
                    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
                    w.cmd(&args).expect("transaction");
                }
                w.cmd(&["SET", &format!("k:{}", n % 5000), &"v".repeat(100)]).expect("SET");
                n += 1;
            }
            n
        })
    };
    for _ in 0..3 {
        poll_until(Duration::from_secs(30), "BGREWRITEAOF to start", || {
            let r = cmd(&mut c, &[b"BGREWRITEAOF"]);
            r.starts_with(b"+Background append only file rewriting started").then_some(())
        });
        poll_until(Duration::from_secs(30), "the rewrite to finish", || {
            (info(&mut c, "persistence")["aof_rewrite_in_progress"] == "0").then_some(())
        });
    }
    // The log keeps growing: the automatic rewrite compacts it.
    poll_until(Duration::from_secs(60), "an automatic rewrite", || {
        (info(&mut c, "persistence")["aof_rewrites"].parse::<u64>().unwrap_or(0) >= 5).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let transactions = writer.join().expect("writer");
    // No new automatic rewrite from here on, so the files can be counted.
    run(&mut c, "CONFIG SET auto-aof-rewrite-percentage 0");
    poll_until(Duration::from_secs(30), "the last rewrite (and any scheduled one) to finish", || {
        let i = info(&mut c, "persistence");
        (i["aof_rewrite_in_progress"] == "0" && i["aof_rewrite_scheduled"] == "0").then_some(())
    });
    let persistence = info(&mut c, "persistence");
    assert_eq!(persistence["aof_last_bgrewrite_status"], "ok");
    assert_eq!(persistence["aof_last_write_status"], "ok");
    let before = pictures(&mut c, 1);
    let mut files: Vec<String> = std::fs::read_dir(data.path().join("appendonlydir"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files[0].ends_with(".base.rdb") && files[1].ends_with(".incr.aof") && files[2].ends_with(".manifest"),
        "{files:?}"
    );
    // Everything acknowledged is on disk once a second has passed (everysec), and SIGTERM
    // writes and syncs the rest anyway.
    server.terminate();
    drop(server);
    let again = logged(&dir, &[]);
    let mut a = again.conn();
    assert_same_pictures(&before, &pictures(&mut a, 1), 0);
    let (x, y) = (run(&mut a, "GET a"), run(&mut a, "GET b"));
    assert_eq!(x, y, "each transaction is in the log whole");
    eprintln!("{transactions} transactions during 5+ rewrites");
}

#[test]
fn a_full_disk_refuses_writes_with_misconf_and_the_log_recovers_when_space_returns() {
    let scratch = TempDir::new("aof-disk-full");
    let Some(disk) = Tmpfs::mount(&scratch.path().join("mnt"), "2m") else { return };
    let dir = disk.path.display().to_string();
    let server = Server::redoubt_with_args(&[
        "--dir",
        &dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--auto-aof-rewrite-percentage",
        "0",
    ]);
    let mut c = server.conn();
    let filler = disk.path.join("filler");
    std::fs::write(&filler, vec![7u8; 1536 * 1024]).expect("fill the tmpfs");
    let value = vec![b'x'; 1000];
    let mut acked = 0u64;
    let refused = loop {
        let reply = cmd(&mut c, &[b"SET", format!("key:{acked}").as_bytes(), &value]);
        if reply.starts_with(b"-") {
            break reply;
        }
        acked += 1;
        assert!(acked < 5_000, "the disk never filled");
    };
    assert_eq!(
        String::from_utf8_lossy(&refused),
        "-MISCONF Errors writing to the AOF file: No space left on device\r\n"
    );
    assert_eq!(info(&mut c, "persistence")["aof_last_write_status"], "err");
    assert_eq!(run(&mut c, "PING"), b"+PONG\r\n");
    assert_eq!(must_decode(&run(&mut c, "GET key:0")).as_bytes().map(<[u8]>::len), Some(1000), "reads keep working");
    std::fs::remove_file(&filler).expect("free the space");
    poll_until(Duration::from_secs(30), "writes to be accepted again", || {
        (!is_error(&cmd(&mut c, &[b"SET", b"after", b"space"]))).then_some(())
    });
    assert_eq!(info(&mut c, "persistence")["aof_last_write_status"], "ok");
    assert!(server.log_tail().contains("No space left on device"), "{}", server.log_tail());
    poll_until(Duration::from_secs(10), "the recovery to be logged", || {
        server.log_tail().contains("writing works again").then_some(())
    });
    server.terminate();
    drop(server);
    let again = Server::redoubt_with_args(&["--dir", &dir, "--appendonly", "yes", "--save", ""]);
    let mut a = again.conn();
    assert_eq!(int(&run(&mut a, "DBSIZE")) as u64, acked + 1, "every acknowledged write survived the full disk");
}

#[test]
fn config_set_appendonly_starts_a_log_from_the_current_data() {
    let data = TempDir::new("aof-enable");
    let dir = data.path().display().to_string();
    let server = Server::redoubt_with_args(&["--dir", &dir, "--save", ""]);
    let mut c = server.conn();
    populate(&mut c);
    assert_eq!(info(&mut c, "persistence")["aof_enabled"], "0");
    run(&mut c, "CONFIG SET appendonly yes");
    poll_until(Duration::from_secs(30), "the log's first rewrite", || {
        let i = info(&mut c, "persistence");
        (i["aof_enabled"] == "1" && i["aof_rewrites"] == "1" && i["aof_rewrite_in_progress"] == "0").then_some(())
    });
    run(&mut c, "SET after:enable 1");
    run(&mut c, "CONFIG SET appendfsync always");
    run(&mut c, "SET after:always 2");
    let before = pictures(&mut c, 4);
    drop(server);
    let again = logged(&dir, &[]);
    let mut a = again.conn();
    assert_same_pictures(&before, &pictures(&mut a, 4), 2_000);
}

#[test]
fn a_slow_disk_never_raises_ping_p99_above_100_ms() {
    let data = TempDir::new("aof-slow-disk");
    let dir = data.path().display().to_string();
    let server = logged(&dir, &[]);
    let mut c = server.conn();
    // Every fsync now takes 1.5 s: writers under `always` wait for it; nobody else does.
    run(&mut c, "CONFIG SET fsync-delay-ms 1500");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (port, stop, acked) = (server.port(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::connect(port).expect("writer");
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let reply = conn.cmd(&["SET", &format!("w{w}:{i}"), "v"]).expect("SET");
                    assert_eq!(reply, b"+OK\r\n");
                    acked.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let mut pings = Vec::new();
    let mut reads = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let t = std::time::Instant::now();
        assert_eq!(run(&mut c, "PING"), b"+PONG\r\n");
        pings.push(t.elapsed());
        let t = std::time::Instant::now();
        run(&mut c, "GET w0:0");
        reads.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let p99 = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() * 99 / 100]
    };
    let (ping, read) = (p99(&mut pings), p99(&mut reads));
    let fsync_us: u64 = info(&mut c, "persistence")["aof_max_fsync_usec"].parse().expect("aof_max_fsync_usec");
    run(&mut c, "CONFIG SET fsync-delay-ms 0");
    writers.into_iter().for_each(|w| w.join().expect("writer"));
    let writes = acked.load(Ordering::Relaxed);
    eprintln!(
        "{} PINGs, p99 {ping:?}; GET p99 {read:?}; slowest fsync {} ms; {writes} writes acknowledged",
        pings.len(),
        fsync_us / 1000
    );
    assert!(fsync_us >= 1_500_000, "the disk was slow: {fsync_us} µs");
    assert!(writes > 0, "writes are acknowledged once durable");
    assert!(ping < Duration::from_millis(100), "PING p99 {ping:?}");
    assert!(read < Duration::from_millis(100), "GET p99 {read:?}");
}

#[test]
fn replayed_errors_are_counted_and_unknown_commands_stop_startup() {
    let data = TempDir::new("aof-replay-errors");
    let dir = data.path().display().to_string();
    let server = logged(&dir, &[]);
    run(&mut server.conn(), "SET a 1");
    drop(server);
    let incr = last_incr(data.path());
    // A SET with too few arguments and an INCR of a string: errors when run, as they
    // would have been for a client; the replay goes on and says how many there were.
    append(&incr, b"*2\r\n$3\r\nSET\r\n$1\r\nk\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\nx\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n");
    let server = logged(&dir, &[]);
    let mut c = server.conn();
    assert_eq!(int(&run(&mut c, "EXISTS a b k")), 2);
    assert!(server.log_tail().contains("2 replayed commands answered with an error"), "{}", server.log_tail());
    drop(server);
    append(&last_incr(data.path()), b"*1\r\n$9\r\nNOSUCHCMD\r\n");
    let (code, out) = failed_start(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unknown command 'NOSUCHCMD' in the log"), "{out}");
}

#[test]
fn bgsave_and_bgrewriteaof_while_the_other_runs_answer_as_redis() {
    let data = TempDir::new("aof-exclusive");
    let dir = data.path().display().to_string();
    // Every fsync takes 300 ms, so each background job is still running when asked again.
    let server = logged(&dir, &["--fsync-delay-ms", "300", "--appendfsync", "no"]);
    let mut c = server.conn();
    run(&mut c, "SET k v");
    assert_eq!(cmd(&mut c, &[b"BGREWRITEAOF"]), b"+Background append only file rewriting started\r\n");
    assert_eq!(cmd(&mut c, &[b"BGREWRITEAOF"]), b"-ERR Background append only file rewriting already in progress\r\n");
    assert_eq!(
        String::from_utf8_lossy(&cmd(&mut c, &[b"BGSAVE"])),
        "-ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.\r\n"
    );
    assert_eq!(cmd(&mut c, &[b"BGSAVE", b"SCHEDULE"]), b"+Background saving scheduled\r\n");
    // The scheduled snapshot runs once the rewrite is done; meanwhile a rewrite is scheduled.
    poll_until(Duration::from_secs(30), "the scheduled snapshot to start", || {
        (info(&mut c, "persistence")["rdb_bgsave_in_progress"] == "1").then_some(())
    });
    assert_eq!(cmd(&mut c, &[b"BGREWRITEAOF"]), b"+Background append only file rewriting scheduled\r\n");
    poll_until(Duration::from_secs(30), "both jobs to finish", || {
        let i = info(&mut c, "persistence");
        let done = i["rdb_bgsave_in_progress"] == "0" && i["aof_rewrite_in_progress"] == "0";
        (done && i["aof_rewrite_scheduled"] == "0" && i["aof_rewrites"] == "3").then_some(())
    });
    assert_eq!(info(&mut c, "persistence")["rdb_last_bgsave_status"], "ok");
}
