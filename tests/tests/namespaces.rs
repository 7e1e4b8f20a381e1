//! Namespaces: key patterns with their own memory reserve, limit and eviction policy. The
//! main test replays postmortem 000 (a queue backlog that took the memory sessions needed,
//! logging users out) and checks that it cannot happen: sessions keep working while a queue
//! with no consumer floods up to its limit and a cache churns.

use std::time::Duration;

use redoubt_tests::util::{cmd, info, info_u64, pipeline, poll_until, TempDir};
use redoubt_tests::{Conn, Server};

/// The fields of one namespace's INFO line.
fn ns_fields(c: &mut Conn, name: &str) -> std::collections::BTreeMap<String, String> {
    let line = info(c, "namespaces").get(&format!("ns_{name}")).cloned().unwrap_or_default();
    line.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const MB: u64 = 1 << 20;

#[test]
fn postmortem_000_queue_flood_cannot_starve_sessions() {
    let dir = TempDir::new("ns-000");
    let conf = dir.write(
        "redoubt.conf",
        "maxmemory 256mb\n\
         maxmemory-policy allkeys-lru\n\
         namespace sessions match \"sess:*\" reserve 64mb evict none\n\
         namespace queues match \"bull:*\" match \"rq:*\" limit 40% evict none\n\
         namespace cache default evict allkeys-lru\n",
    );
    let server = Server::redoubt_with_config(Some(&conf), &[]);
    let mut sessions = server.conn();
    let mut queue = server.conn();
    let mut cache = server.conn();
    let value = "s".repeat(1000);
    let job = "j".repeat(1000);
    let (mut session_keys, mut queue_refusals, mut cache_keys) = (0usize, 0usize, 0usize);
    let mut queue_full = false;
    // Rounds interleave the three workloads: sessions write 100 keys, the producer pushes
    // 500 jobs, the cache writes 300 keys. 600 rounds write 60 MB of sessions and try to
    // push 300 MB of jobs and 180 MB of cache entries into 256 MB.
    for round in 0..600 {
        let batch: Vec<Vec<String>> = (0..100)
            .map(|i| {
                let k = format!("sess:{}", round * 100 + i);
                vec!["SET".into(), k, value.clone(), "EX".into(), "3600".into()]
            })
            .collect();
        for r in pipeline(&mut sessions, &batch) {
            assert_eq!(r, "+OK\r\n", "a session write failed in round {round}");
        }
        session_keys += 100;
        let pushes: Vec<Vec<String>> = (0..5)
            .map(|_| {
                let mut a = vec!["RPUSH".to_string(), "bull:mail:wait".to_string()];
                a.extend((0..100).map(|_| job.clone()));
                a
            })
            .collect();
        for r in pipeline(&mut queue, &pushes) {
            if r.starts_with('-') {
                assert!(
                    r.starts_with("-OOM command not allowed: namespace 'queues' is at its limit"),
                    "unexpected refusal: {r}"
                );
                queue_refusals += 1;
                queue_full = true;
            } else {
                assert!(!queue_full || r.starts_with(':'), "{r}");
            }
        }
        let writes: Vec<Vec<String>> =
            (0..300).map(|i| vec!["SET".into(), format!("page:{}", round * 300 + i), value.clone()]).collect();
        for r in pipeline(&mut cache, &writes) {
            assert_eq!(r, "+OK\r\n", "a cache write failed in round {round}");
        }
        cache_keys += 300;
    }
    assert!(queue_refusals > 0, "the queue never reached its limit");
    // Every session is still there; none was evicted.
    let probe: Vec<Vec<String>> =
        (0..session_keys).step_by(97).map(|i| vec!["EXISTS".into(), format!("sess:{i}")]).collect();
    assert!(pipeline(&mut sessions, &probe).iter().all(|r| r == ":1\r\n"), "a session key is gone");
    let s = ns_fields(&mut sessions, "sessions");
    assert_eq!(s["keys"], session_keys.to_string());
    assert_eq!(s["evicted_keys"], "0");
    assert_eq!(s["rejected_writes"], "0");
    let q = ns_fields(&mut sessions, "queues");
    assert_eq!(q["rejected_writes"], queue_refusals.to_string());
    let queue_bytes: u64 = q["memory"].parse().unwrap();
    assert!(queue_bytes <= 256 * MB * 41 / 100, "queues hold {queue_bytes} bytes, over 40% of maxmemory");
    // The cache made room for everyone by evicting its own keys.
    let c = ns_fields(&mut sessions, "cache");
    let evicted: u64 = c["evicted_keys"].parse().unwrap();
    assert!(evicted > 0 && evicted < cache_keys as u64);
    let used = info_u64(&mut sessions, "memory", "used_memory");
    assert!(used <= 256 * MB, "used_memory {used} over maxmemory");
    let rss = info_u64(&mut sessions, "memory", "used_memory_rss");
    println!("sessions {s:?}\nqueues {q:?}\ncache {c:?}\nused_memory {used} rss {rss} queue refusals {queue_refusals}");
    assert!(rss as f64 <= 1.1 * (256 * MB) as f64, "RSS {rss} over 1.1 x maxmemory");
}

#[test]
fn namespaces_are_managed_at_runtime() {
    let server = Server::redoubt();
    let mut c = server.conn();
    for i in 0..100 {
        cmd(&mut c, &["SET", &format!("a:{i}"), "v"]);
        cmd(&mut c, &["SET", &format!("b:{i}"), "v"]);
    }
    assert_eq!(cmd(&mut c, &["NAMESPACE", "LIST"]), "*0\r\n", "no namespaces configured");
    assert_eq!(cmd(&mut c, &["NAMESPACE", "SET", "alpha", "MATCH", "a:*", "LIMIT", "1mb", "EVICT", "none"]), "+OK\r\n");
    // Existing keys are counted into the new namespace at once.
    assert_eq!(ns_fields(&mut c, "alpha")["keys"], "100");
    assert_eq!(ns_fields(&mut c, "default")["keys"], "100");
    assert_eq!(cmd(&mut c, &["NAMESPACE", "LIST"]), "*2\r\n$7\r\ndefault\r\n$5\r\nalpha\r\n");
    assert!(cmd(&mut c, &["CONFIG", "GET", "namespace"]).contains("alpha match \"a:*\" limit 1048576 evict none"));
    // A tiny limit refuses growth of that namespace only.
    assert_eq!(cmd(&mut c, &["NAMESPACE", "SET", "alpha", "MATCH", "a:*", "LIMIT", "100", "EVICT", "none"]), "+OK\r\n");
    let refused = cmd(&mut c, &["SET", "a:new", "v"]);
    assert!(refused.starts_with("-OOM command not allowed: namespace 'alpha' is at its limit"), "{refused}");
    assert_eq!(cmd(&mut c, &["SET", "b:new", "v"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["GET", "a:1"]), "$1\r\nv\r\n", "reads are never refused");
    assert_eq!(cmd(&mut c, &["DEL", "a:1"]), ":1\r\n", "deletes are never refused");
    // With an eviction policy the namespace makes room from its own keys.
    assert_eq!(
        cmd(&mut c, &["NAMESPACE", "SET", "alpha", "MATCH", "a:*", "LIMIT", "1kb", "EVICT", "allkeys-random"]),
        "+OK\r\n"
    );
    assert_eq!(cmd(&mut c, &["SET", "a:new", "v"]), "+OK\r\n");
    let alpha = ns_fields(&mut c, "alpha");
    assert!(alpha["evicted_keys"].parse::<u64>().unwrap() > 0);
    assert_eq!(ns_fields(&mut c, "default")["keys"], "101", "other namespaces are untouched");
    // Errors name the problem.
    assert!(cmd(&mut c, &["NAMESPACE", "SET", "x"]).starts_with("-ERR namespace 'x' needs at least one"));
    assert!(
        cmd(&mut c, &["NAMESPACE", "SET", "x", "MATCH", "x:*", "LIMIT", "200%"]).starts_with("-ERR invalid percentage")
    );
    assert!(cmd(&mut c, &["NAMESPACE", "DEL", "nope"]).starts_with("-ERR no such namespace"));
    assert!(cmd(&mut c, &["NAMESPACE", "INFO", "nope"]).starts_with("-ERR no such namespace"));
    // Removing the namespace gives its keys back to the default one.
    assert_eq!(cmd(&mut c, &["NAMESPACE", "DEL", "alpha"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["NAMESPACE", "LIST"]), "*0\r\n");
    assert_eq!(cmd(&mut c, &["CONFIG", "SET", "namespace", "beta match b:*; gamma match g:* reserve 1mb"]), "+OK\r\n");
    poll_until(Duration::from_secs(5), "the namespaces to be installed", || {
        (cmd(&mut c, &["NAMESPACE", "LIST"]) == "*3\r\n$7\r\ndefault\r\n$4\r\nbeta\r\n$5\r\ngamma\r\n").then_some(())
    });
    assert_eq!(ns_fields(&mut c, "beta")["keys"], "101");
}

#[test]
fn namespace_config_survives_rewrite() {
    let dir = TempDir::new("ns-rewrite");
    let conf = dir.write("redoubt.conf", "namespace sessions match \"sess:*\" reserve 10% evict none\n");
    let server = Server::redoubt_with_config(Some(&conf), &[]);
    let mut c = server.conn();
    assert_eq!(cmd(&mut c, &["NAMESPACE", "SET", "jobs", "MATCH", "rq:*", "LIMIT", "5mb"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["CONFIG", "REWRITE"]), "+OK\r\n");
    let written = std::fs::read_to_string(&conf).unwrap();
    assert!(written.contains("namespace sessions match \"sess:*\" reserve 10% evict none"), "{written}");
    assert!(written.contains("namespace jobs match \"rq:*\" limit 5242880"), "{written}");
    drop(c);
    drop(server);
    let server = Server::redoubt_with_config(Some(&conf), &[]);
    let mut c = server.conn();
    assert_eq!(cmd(&mut c, &["NAMESPACE", "LIST"]), "*3\r\n$7\r\ndefault\r\n$8\r\nsessions\r\n$4\r\njobs\r\n");
}

/// Memory one namespace reserved and does not use yet is never taken by another's growth:
/// a namespace that cannot evict is refused once only the reserved memory is left, and the
/// reserving namespace can still write.
#[test]
fn reserved_memory_is_not_taken_by_others() {
    let dir = TempDir::new("ns-reserve");
    let conf = dir.write(
        "redoubt.conf",
        "maxmemory 64mb\n\
         maxmemory-policy noeviction\n\
         namespace sessions match \"sess:*\" reserve 50% evict none\n\
         namespace jobs match \"job:*\" evict none\n",
    );
    let server = Server::redoubt_with_config(Some(&conf), &[]);
    let mut c = server.conn();
    let value = "v".repeat(1000);
    let mut refused = None;
    for i in 0..100_000 {
        let r = cmd(&mut c, &["SET", &format!("job:{i}"), &value]);
        if r.starts_with('-') {
            refused = Some((i, r));
            break;
        }
    }
    let (count, error) = refused.expect("the jobs namespace was never refused");
    assert!(error.starts_with("-OOM command not allowed: namespace 'jobs' cannot grow"), "unexpected error {error}");
    let jobs: u64 = ns_fields(&mut c, "jobs")["memory"].parse().unwrap();
    // Jobs stopped at about half of maxmemory (the other half is reserved).
    assert!(jobs < 33 * MB && jobs > 25 * MB, "jobs hold {jobs} bytes after {count} writes");
    // Sessions still have their reserve.
    for i in 0..20_000 {
        assert_eq!(cmd(&mut c, &["SET", &format!("sess:{i}"), &value]), "+OK\r\n", "session write {i} refused");
    }
    assert_eq!(ns_fields(&mut c, "jobs")["rejected_writes"], "1");
}

/// Scripts obey namespace limits as they obey `maxmemory` in Redis: a script whose declared
/// keys are in a namespace at its limit gets the namespace's `-OOM` on its first write (a
/// job-queue library writes through scripts only), reads still work, and a script that has
/// already written finishes.
#[test]
fn scripts_are_refused_at_a_namespace_limit() {
    let server = Server::redoubt_with_args(&["--namespace", "jobs match job:* limit 1mb evict none; cache default"]);
    let mut c = server.conn();
    let value = "v".repeat(10_000);
    let cmds: Vec<Vec<String>> = (0..200).map(|i| vec!["SET".into(), format!("job:{i}"), value.clone()]).collect();
    let replies = pipeline(&mut c, &cmds);
    assert!(replies.iter().any(|r| r.starts_with("-OOM command not allowed: namespace 'jobs' is at its limit")));
    let add = "return redis.call('set', KEYS[1], ARGV[1])";
    let got = cmd(&mut c, &["EVAL", add, "1", "job:new", "x"]);
    assert!(got.starts_with("-OOM command not allowed: namespace 'jobs' is at its limit"), "{got}");
    assert!(got.contains("script: "), "raised as the script's error: {got}");
    assert_eq!(cmd(&mut c, &["EVAL", "return redis.call('get', KEYS[1])", "1", "job:0"]).len(), 10_010);
    // other namespaces are not affected, and a script that wrote first runs to the end
    assert_eq!(cmd(&mut c, &["EVAL", add, "1", "page:1", "x"]), "+OK\r\n");
    let del_then_add = "redis.call('del', KEYS[2]); return redis.call('set', KEYS[1], ARGV[1])";
    assert_eq!(cmd(&mut c, &["EVAL", del_then_add, "2", "job:new", "job:1", "x"]), "+OK\r\n");
    assert_eq!(cmd(&mut c, &["EXISTS", "job:new"]), ":1\r\n");
}
