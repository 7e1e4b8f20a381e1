//! End-to-end tests of server behaviour, Redoubt compared with a real
//! redis-server wherever Redis defines the behaviour.
//!
//! Covers: limits on unauthenticated clients and AUTH/HELLO with
//! `--requirepass`; configuration (file errors, `--port`, CONFIG GET/SET,
//! CONFIG REWRITE across a restart); clean exits on SIGTERM and SHUTDOWN;
//! CLIENT LIST/INFO format, SETNAME/GETNAME, KILL and REPLY; the MONITOR line
//! format; and the SCAN guarantee that keys present for the whole iteration
//! are returned while other keys come and go.
//!
//! Tests that run the same scenario on both servers do it first on
//! redis-server: if that fails, the test itself is wrong, and it says so.

use std::collections::HashSet;
use std::fs;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redoubt_tests::casefile::split_args;
use redoubt_tests::conn::{encode_command, is_disconnect};
use redoubt_tests::server::{free_port, redis_binary, redoubt_binary_or_panic, Kind};
use redoubt_tests::util::{info, poll_until, run_bounded, TempDir};
use redoubt_tests::value::{must_decode, Value};
use redoubt_tests::{Conn, Server};

const PASSWORD: &str = "e2e-secret";

/// Upper bound for a server to close a connection it must close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Upper bound for a server process to exit after SIGTERM or SHUTDOWN.
const EXIT_WAIT: Duration = Duration::from_secs(10);

fn show(bytes: &[u8]) -> String {
    const MAX: usize = 400;
    let shown: String = bytes.iter().take(MAX).flat_map(|b| b.escape_ascii()).map(char::from).collect();
    if bytes.len() > MAX {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}

fn cmd(conn: &mut Conn, args: &[&str], who: &str) -> Vec<u8> {
    conn.cmd(args).unwrap_or_else(|e| panic!("{who}: {} failed: {e}", args.join(" ")))
}

fn text_of(reply: &[u8], what: &str) -> String {
    match must_decode(reply) {
        Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Simple(s) => s,
        other => panic!("{what}: expected a string reply, got {other:?}"),
    }
}

fn int_of(reply: &[u8], what: &str) -> i64 {
    must_decode(reply).as_int().unwrap_or_else(|| panic!("{what}: expected an integer, got {}", show(reply)))
}

/// Runs `scenario` on redis-server and on Redoubt (started with the same
/// extra arguments) and returns the two transcripts, redis first.
fn on_both<T>(extra: &[&str], mut scenario: impl FnMut(&Server) -> T) -> (T, T) {
    let redis = Server::redis_with_args(extra);
    let want = scenario(&redis);
    drop(redis);
    let redoubt = Server::redoubt_with_args(extra);
    let got = scenario(&redoubt);
    (want, got)
}

/// Compares per-step transcripts and panics listing every differing step.
fn assert_same_transcript(what: &str, want: &[(String, Vec<u8>)], got: &[(String, Vec<u8>)]) {
    let mut diffs = Vec::new();
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if w != g {
            diffs.push(format!("step {i} `{}`:\n    redis:   {}\n    redoubt: {}", w.0, show(&w.1), show(&g.1)));
        }
    }
    if want.len() != got.len() {
        diffs.push(format!("redis ran {} steps, redoubt {}", want.len(), got.len()));
    }
    assert!(diffs.is_empty(), "{what}: {} differences from redis-server:\n{}", diffs.len(), diffs.join("\n"));
}

/// Writes `bytes` (a write failing because the server hung up is fine) and
/// returns what the server sent before closing, and whether it closed.
fn send_expect_close(server: &Server, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut conn = server.conn();
    for chunk in bytes.chunks(64 * 1024) {
        if let Err(e) = conn.send_raw(chunk) {
            assert!(is_disconnect(&e), "writing failed: {e}");
            break;
        }
    }
    let drained = conn.read_until_closed(CLOSE_WAIT).expect("read");
    (drained.bytes, drained.closed)
}

// ---------------------------------------------------------------------------
// Unauthenticated clients, AUTH and HELLO
// ---------------------------------------------------------------------------

/// Before AUTH, a multibulk of more than 10 arguments or a bulk over 16 KB
/// is a protocol error that closes the connection, with Redis's texts.
#[test]
fn unauthenticated_size_limits_match_redis() {
    let mut over_bulk = b"*2\r\n$4\r\nAUTH\r\n$16385\r\n".to_vec();
    over_bulk.extend(vec![b'p'; 16385]);
    over_bulk.extend_from_slice(b"\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("multibulk of 11", b"*11\r\n".to_vec()),
        ("multibulk of 1000000", b"*1000000\r\n".to_vec()),
        ("bulk of 16385 bytes", over_bulk),
        ("bulk header of 1 MB", b"*1\r\n$1048576\r\n".to_vec()),
    ];
    let (want, got) = on_both(&["--requirepass", PASSWORD], |server| {
        cases
            .iter()
            .map(|(name, bytes)| {
                let (reply, closed) = send_expect_close(server, bytes);
                (format!("{name} (closed: {closed})"), reply)
            })
            .collect::<Vec<_>>()
    });
    for (step, reply) in &want {
        assert!(
            step.ends_with("(closed: true)") && reply.starts_with(b"-ERR Protocol error: "),
            "the test is wrong: redis-server answered `{step}` with {}",
            show(reply)
        );
    }
    assert_same_transcript("unauthenticated size limits", &want, &got);
}

/// Limits that are not reached: 10 arguments and 16 KB bulks are accepted
/// before AUTH (the command then fails with NOAUTH, the connection stays).
#[test]
fn unauthenticated_requests_at_the_limits_are_served() {
    let mut request = encode_command(&["ECHO", "a", "b", "c", "d", "e", "f", "g", "h", "i"]);
    request.extend(encode_command(&["ECHO".to_string(), "q".repeat(16 * 1024)]));
    request.extend(encode_command(&["AUTH", PASSWORD]));
    request.extend(encode_command(&["ECHO", "done"]));
    let (want, got) = on_both(&["--requirepass", PASSWORD], |server| {
        let mut conn = server.conn();
        conn.send_raw(&request).expect("write");
        (0..4)
            .map(|i| {
                let reply =
                    conn.read_reply_raw().unwrap_or_else(|e| panic!("{}: reply {i}: {e}", server.kind().name()));
                (format!("reply {i}"), reply)
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(want[3].1, b"$4\r\ndone\r\n", "the test is wrong");
    assert_same_transcript("requests at the unauthenticated limits", &want, &got);
}

/// An unauthenticated client that sends over 1 MB without ever completing a
/// command is disconnected (Redis stops it at 64 KB of inline request).
#[test]
fn unauthenticated_megabyte_without_a_command_is_disconnected() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("1.1 MB inline without newline", vec![b'z'; 1_100_000]),
        ("1.1 MB after a space, no newline", {
            let mut v = b"GET ".to_vec();
            v.extend(vec![b' '; 1_100_000]);
            v
        }),
    ];
    let (want, got) = on_both(&["--requirepass", PASSWORD], |server| {
        cases
            .iter()
            .map(|(name, bytes)| {
                let (reply, closed) = send_expect_close(server, bytes);
                (format!("{name} (closed: {closed})"), reply)
            })
            .collect::<Vec<_>>()
    });
    for (step, _) in &got {
        assert!(step.ends_with("(closed: true)"), "redoubt kept an unauthenticated client that sent `{step}`");
    }
    assert_same_transcript("unauthenticated oversized input", &want, &got);
}

/// NOAUTH before AUTH (for commands Redis knows), WRONGPASS for a bad
/// password, then everything works after AUTH; replies as Redis's.
#[test]
fn noauth_and_auth_match_redis() {
    let steps: &[&[&str]] = &[
        &["PING"],
        &["GET", "k"],
        &["SET", "k", "v"],
        &["SELECT", "1"],
        &["CLIENT", "LIST"],
        &["CONFIG", "GET", "port"],
        &["INFO", "server"],
        &["NOSUCHCOMMAND", "x"],
        &["GET"],
        &["AUTH", "wrong"],
        &["AUTH", "default", "wrong"],
        &["AUTH", "nosuchuser", PASSWORD],
        &["AUTH", "a", "b", "c"],
        &["PING"],
        &["AUTH", PASSWORD],
        &["PING"],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["AUTH", "default", PASSWORD],
        &["AUTH", "wrong"],
        &["GET", "k"],
    ];
    let (want, got) = on_both(&["--requirepass", PASSWORD], |server| {
        let mut conn = server.conn();
        steps.iter().map(|args| (args.join(" "), cmd(&mut conn, args, server.kind().name()))).collect::<Vec<_>>()
    });
    assert!(want[0].1.starts_with(b"-NOAUTH") && want[15].1 == b"+PONG\r\n", "the test is wrong: {want:?}");
    assert_same_transcript("AUTH sequence", &want, &got);
}

/// `HELLO 3 AUTH default <pass>` authenticates and switches to RESP3 in one
/// step; without AUTH, HELLO is refused with NOAUTH; a wrong password is
/// WRONGPASS.
#[test]
fn hello_with_auth_matches_redis() {
    // Text that differs between Redis 7.0 (the reference here) and 7.2 (what
    // Redoubt reports): only the start of the NOAUTH message is compared.
    const HELLO_NOAUTH: &[u8] = b"-NOAUTH HELLO must be called with the client already authenticated";
    let (want, got) = on_both(&["--requirepass", PASSWORD], |server| {
        let who = server.kind().name();
        let mut conn = server.conn();
        let refused = cmd(&mut conn, &["HELLO", "3"], who);
        assert!(refused.starts_with(HELLO_NOAUTH), "{who}: HELLO 3 before AUTH replied {}", show(&refused));
        let wrong = cmd(&mut conn, &["HELLO", "3", "AUTH", "default", "nope"], who);
        let still_resp2 = cmd(&mut conn, &["GET", "k"], who);
        let hello = cmd(&mut conn, &["HELLO", "3", "AUTH", "default", PASSWORD], who);
        let map = must_decode(&hello);
        assert!(matches!(map, Value::Map(_)), "{who}: HELLO 3 AUTH must reply with a RESP3 map, got {}", show(&hello));
        let keys: Vec<String> = map.as_pairs().unwrap().iter().map(|(k, _)| k.as_text().unwrap_or_default()).collect();
        let fields = ["server", "proto", "mode", "role", "modules"]
            .iter()
            .map(|f| format!("{f}={:?}", map.get(f)))
            .collect::<Vec<_>>()
            .join(" ");
        let after = [
            cmd(&mut conn, &["SET", "k", "v"], who),
            cmd(&mut conn, &["GET", "nosuch"], who),
            cmd(&mut conn, &["CONFIG", "GET", "requirepass"], who),
        ];
        vec![
            ("HELLO 3 AUTH default nope".to_string(), wrong),
            ("GET k (still unauthenticated, RESP2)".into(), still_resp2),
            ("HELLO keys".into(), keys.join(",").into_bytes()),
            ("HELLO fields".into(), fields.into_bytes()),
            ("SET k v".into(), after[0].clone()),
            ("GET nosuch (RESP3 null)".into(), after[1].clone()),
            ("CONFIG GET requirepass (RESP3 map)".into(), after[2].clone()),
        ]
    });
    assert_eq!(want[5].1, b"_\r\n", "the test is wrong");
    assert_same_transcript("HELLO 3 AUTH", &want, &got);
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// A bad config file: `redoubt-server <file>` exits with status 1 and says
/// which file, which line, and why (the reason is Redis's text).
#[test]
fn config_file_errors_exit_1_with_file_line_and_reason() {
    let dir = TempDir::new("bad-config");
    let cases: &[(&str, &str, usize)] = &[
        ("unknown", "timeout 0\nno-such-directive yes\n", 2),
        ("memory", "# a comment\n\nmaxmemory lots\n", 3),
        ("bool", "appendonly maybe\n", 1),
        ("range", "timeout 0\nport 0\ndatabases 0\n", 3),
        ("enum", "maxmemory-policy sometimes\n", 1),
        ("quotes", "timeout 0\nrequirepass \"abc\n", 2),
        ("arity", "maxmemory 1 2\n", 1),
    ];
    let mut failures = Vec::new();
    for (name, contents, line) in cases {
        let file = dir.write(&format!("{name}.conf"), contents);
        let port = free_port().expect("free port").to_string();
        // The options after the file keep a wrongly accepted file from
        // listening anywhere but a free loopback port; the bounded run kills it.
        let args = [file.to_str().unwrap(), "--port", &port, "--bind", "127.0.0.1"];
        let redis =
            run_bounded(Command::new(redis_binary()).args(args).current_dir(dir.path()), Duration::from_secs(10));
        let reason = redis.output().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        assert!(
            redis.status.and_then(|s| s.code()) == Some(1) && redis.output().contains(&format!("at line {line}")),
            "the test case `{name}` is wrong: redis-server said {:?}: {}",
            redis.status,
            redis.output()
        );
        let redoubt = run_bounded(
            Command::new(redoubt_binary_or_panic()).args(args).current_dir(dir.path()),
            Duration::from_secs(10),
        );
        let out = redoubt.output();
        let code = redoubt.status.and_then(|s| s.code());
        let mut problems = Vec::new();
        if code != Some(1) {
            problems.push(format!("exit status {:?}, expected 1", redoubt.status));
        }
        if !out.contains(&format!("{name}.conf")) {
            problems.push("the file name is not mentioned".to_string());
        }
        if !out.contains(&format!("line {line}")) {
            problems.push(format!("`line {line}` is not mentioned"));
        }
        if !out.contains(&reason) {
            problems.push(format!("Redis's reason `{reason}` is not printed"));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}.conf ({contents:?}): {}\n    output: {out:?}", problems.join("; ")));
        }
    }
    let missing = dir.path().join("does-not-exist.conf");
    let run = run_bounded(Command::new(redoubt_binary_or_panic()).arg(&missing), Duration::from_secs(10));
    if run.status.and_then(|s| s.code()) != Some(1) || !run.output().contains("does-not-exist.conf") {
        failures.push(format!("missing config file: status {:?}, output {:?}", run.status, run.output()));
    }
    assert!(failures.is_empty(), "{} config error cases wrong:\n{}", failures.len(), failures.join("\n"));
}

/// A port another server listens on (Redoubt or Redis) is an error at startup, as in Redis:
/// the workers' SO_REUSEPORT listeners must not join the other server's.
#[test]
fn a_port_in_use_is_an_error() {
    for other in [Server::redoubt(), Server::redis()] {
        let port = other.port().to_string();
        let run = run_bounded(
            Command::new(redoubt_binary_or_panic()).args(["--port", &port, "--bind", "127.0.0.1"]),
            Duration::from_secs(10),
        );
        assert_eq!(run.status.and_then(|s| s.code()), Some(1), "{}", run.output());
        assert!(run.output().contains("Address already in use"), "{}", run.output());
        assert_eq!(other.conn().cmd(&["PING"]).unwrap(), b"+PONG\r\n");
    }
}

/// A server process started by hand; killed (and reaped) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `redoubt-server <args>` in `dir` and connects to `port` once it
/// answers PING (bounded); panics with its output if it exits or never does.
fn spawn_redoubt(args: &[&str], dir: &TempDir, port: u16) -> (Process, Conn) {
    let log = dir.path().join(format!("server-{port}.log"));
    let out = fs::File::create(&log).expect("create log");
    let child = Command::new(redoubt_binary_or_panic())
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone log"))
        .stderr(out)
        .spawn()
        .expect("spawn redoubt-server");
    let mut process = Process(child);
    let conn = poll_until(
        Duration::from_secs(10),
        &format!("redoubt-server {} to answer on port {port}", args.join(" ")),
        || {
            if let Ok(Some(status)) = process.0.try_wait() {
                panic!(
                    "redoubt-server {} exited with {status}: {}",
                    args.join(" "),
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let mut conn = Conn::connect(port).ok()?;
            (conn.cmd(&["PING"]).ok()? == b"+PONG\r\n").then_some(conn)
        },
    );
    (process, conn)
}

/// `--port` on the command line, `port` in a config file, and a flag
/// overriding the file all decide where the server listens.
#[test]
fn port_from_flag_and_from_config_file() {
    let dir = TempDir::new("ports");
    let expect_port = |conn: &mut Conn, port: u16, how: &str| {
        let reply = cmd(conn, &["CONFIG", "GET", "port"], how);
        let port_text = port.to_string();
        assert_eq!(
            must_decode(&reply).get("port").and_then(Value::as_text),
            Some(port_text.clone()),
            "{how}: CONFIG GET port"
        );
        assert_eq!(info(conn, "server").get("tcp_port"), Some(&port_text), "{how}: INFO server tcp_port");
    };

    let port = free_port().unwrap();
    let p = port.to_string();
    let (_server, mut conn) = spawn_redoubt(&["--port", &p, "--bind", "127.0.0.1"], &dir, port);
    expect_port(&mut conn, port, "--port flag");

    let file_port = free_port().unwrap();
    let file = dir.write("port.conf", &format!("# listen where the file says\nport {file_port}\nbind 127.0.0.1\n"));
    let (_server, mut conn) = spawn_redoubt(&[file.to_str().unwrap()], &dir, file_port);
    expect_port(&mut conn, file_port, "port in config file");
    let reply = cmd(&mut conn, &["CONFIG", "GET", "bind"], "bind in config file");
    assert_eq!(
        must_decode(&reply).get("bind").and_then(Value::as_text).as_deref(),
        Some("127.0.0.1"),
        "CONFIG GET bind after `bind 127.0.0.1` in the file"
    );

    let flag_port = free_port().unwrap();
    let fp = flag_port.to_string();
    let (_server, mut conn) = spawn_redoubt(&[file.to_str().unwrap(), "--port", &fp], &dir, flag_port);
    expect_port(&mut conn, flag_port, "--port after a config file");
}

/// CONFIG SET then CONFIG GET gives Redis's canonical values and errors, in
/// RESP2 and RESP3.
#[test]
fn config_set_get_round_trip_matches_redis() {
    let steps: &[&[&str]] = &[
        &["CONFIG", "SET", "maxmemory", "10mb"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory", "2GB"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory", "12345"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory", "100k"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LRU"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "SET", "timeout", "300", "hz", "20"],
        &["CONFIG", "GET", "timeout"],
        &["CONFIG", "GET", "hz"],
        &["CONFIG", "SET", "maxmemory", "lots"],
        &["CONFIG", "SET", "maxmemory-policy", "sometimes"],
        &["CONFIG", "SET", "hz", "abc"],
        &["CONFIG", "SET", "no-such-parameter", "1"],
        &["CONFIG", "SET", "maxmemory"],
        &["CONFIG", "GET", "no-such-parameter"],
        &["CONFIG", "GET", "maxmemory"],
        &["HELLO", "3"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["CONFIG", "GET", "maxmemory"],
    ];
    let (want, got) = on_both(&[], |server| {
        let mut conn = server.conn();
        steps
            .iter()
            .map(|args| {
                let reply = cmd(&mut conn, args, server.kind().name());
                // The HELLO reply names the server version: keep only its type.
                let reply = if args[0] == "HELLO" { reply[..1].to_vec() } else { reply };
                (args.join(" "), reply)
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(want[1].1, b"*2\r\n$9\r\nmaxmemory\r\n$8\r\n10485760\r\n", "the test is wrong");
    assert_same_transcript("CONFIG SET/GET", &want, &got);

    // A glob returns the same parameters (order is not defined).
    let (want, got) = on_both(&[], |server| {
        let mut conn = server.conn();
        let reply = cmd(&mut conn, &["CONFIG", "GET", "maxmemory*"], server.kind().name());
        let mut pairs: Vec<(String, String)> = must_decode(&reply)
            .as_pairs()
            .expect("CONFIG GET pairs")
            .into_iter()
            .map(|(k, v)| (k.as_text().unwrap(), v.as_text().unwrap()))
            .collect();
        pairs.sort();
        pairs
    });
    assert_eq!(got, want, "CONFIG GET maxmemory*");
}

/// CONFIG REWRITE writes the running values into the config file, keeping
/// its comments, and a restarted server reads them back.
fn config_rewrite_round_trip(kind: Kind) {
    let who = kind.name();
    let dir = TempDir::new("rewrite");
    let file = dir.write("server.conf", "# e2e: this comment must survive CONFIG REWRITE\nmaxmemory 1mb\ntimeout 0\n");
    // An explicit `dir` that outlives both servers (the default is each
    // server's own scratch directory, which CONFIG REWRITE would record).
    let dir_arg = dir.path().to_str().expect("utf-8 temp dir").to_string();
    let extra = ["--dir", dir_arg.as_str()];
    let server = Server::of_kind(kind, Some(&file), &extra);
    let mut conn = server.conn();
    for args in [
        &["CONFIG", "SET", "maxmemory", "10mb"][..],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        &["CONFIG", "SET", "timeout", "123"],
        &["CONFIG", "REWRITE"],
    ] {
        let reply = cmd(&mut conn, args, who);
        assert_eq!(reply, b"+OK\r\n", "{who}: {} replied {}", args.join(" "), show(&reply));
    }
    let text = fs::read_to_string(&file).expect("read rewritten config");
    assert!(
        text.contains("# e2e: this comment must survive CONFIG REWRITE"),
        "{who}: CONFIG REWRITE dropped the file's comment:\n{text}"
    );
    // A directive's arguments, unquoted with the config file's own rules.
    let line_value = |name: &str| {
        text.lines()
            .filter_map(|l| split_args(l).ok())
            .find(|words| words.first().map(Vec::as_slice) == Some(name.as_bytes()))
            .map(|words| {
                let args: Vec<String> = words[1..].iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
                args.join(" ")
            })
            .unwrap_or_else(|| panic!("{who}: no `{name}` line after CONFIG REWRITE:\n{text}"))
    };
    let maxmemory = line_value("maxmemory");
    assert!(["10mb", "10485760"].contains(&maxmemory.as_str()), "{who}: rewritten `maxmemory {maxmemory}`");
    assert_eq!(line_value("maxmemory-policy"), "allkeys-lru", "{who}");
    assert_eq!(line_value("timeout"), "123", "{who}");
    drop(conn);
    drop(server);

    let restarted = Server::of_kind(kind, Some(&file), &extra);
    let mut conn = restarted.conn();
    for (name, value) in [("maxmemory", "10485760"), ("maxmemory-policy", "allkeys-lru"), ("timeout", "123")] {
        let reply = cmd(&mut conn, &["CONFIG", "GET", name], who);
        assert_eq!(
            must_decode(&reply).get(name).and_then(Value::as_text).as_deref(),
            Some(value),
            "{who}: after a restart from the rewritten file, CONFIG GET {name} replied {}",
            show(&reply)
        );
    }
}

#[test]
fn config_rewrite_survives_restart_on_redis() {
    config_rewrite_round_trip(Kind::Redis);
}

#[test]
fn config_rewrite_survives_restart() {
    config_rewrite_round_trip(Kind::Redoubt);
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

fn assert_clean_exit(server: &mut Server, how: &str) {
    let who = server.kind().name();
    let began = Instant::now();
    let status = server
        .wait_exit(EXIT_WAIT)
        .unwrap_or_else(|| panic!("{who}: still running {EXIT_WAIT:?} after {how}; log:\n{}", server.log_tail()));
    assert_eq!(status.code(), Some(0), "{who}: exit status after {how} was {status}; log:\n{}", server.log_tail());
    assert!(began.elapsed() < Duration::from_secs(5), "{who}: took {:?} to exit after {how}", began.elapsed());
}

fn sigterm_scenario(kind: Kind) {
    let mut server = Server::of_kind(kind, None, &[]);
    let mut busy = server.conn();
    cmd(&mut busy, &["SET", "k", "v"], kind.name());
    server.terminate();
    assert_clean_exit(&mut server, "SIGTERM");
    let drained = busy.read_until_closed(CLOSE_WAIT).expect("read");
    assert!(drained.closed, "{}: client not disconnected", kind.name());
}

#[test]
fn sigterm_exits_zero_on_redis() {
    sigterm_scenario(Kind::Redis);
}

#[test]
fn sigterm_exits_zero() {
    sigterm_scenario(Kind::Redoubt);
}

/// SHUTDOWN closes the caller's connection without a reply (as Redis) and the
/// process exits with status 0.
fn shutdown_command_exits_zero(kind: Kind) -> Vec<u8> {
    let mut server = Server::of_kind(kind, None, &[]);
    let mut other = server.conn();
    let mut conn = server.conn();
    conn.send(&["SHUTDOWN"]).expect("send SHUTDOWN");
    let drained = conn.read_until_closed(CLOSE_WAIT).expect("read");
    assert!(drained.closed, "{}: SHUTDOWN left the connection open ({})", kind.name(), show(&drained.bytes));
    assert_clean_exit(&mut server, "SHUTDOWN");
    assert!(
        other.read_until_closed(CLOSE_WAIT).expect("read").closed,
        "{}: other client not disconnected",
        kind.name()
    );
    drained.bytes
}

#[test]
fn shutdown_command_exits_zero_like_redis() {
    let want = shutdown_command_exits_zero(Kind::Redis);
    let got = shutdown_command_exits_zero(Kind::Redoubt);
    assert_eq!(show(&got), show(&want), "bytes sent to the client that ran SHUTDOWN");
}

// ---------------------------------------------------------------------------
// CLIENT
// ---------------------------------------------------------------------------

/// The `key=value` fields of one CLIENT LIST line, in order.
type Fields = Vec<(String, String)>;

/// Parses one CLIENT LIST / CLIENT INFO line into its `key=value` fields, in
/// order; panics if a token is not `key=value`.
fn client_fields(line: &str, who: &str) -> Vec<(String, String)> {
    line.split(' ')
        .map(|tok| {
            let (k, v) = tok
                .split_once('=')
                .unwrap_or_else(|| panic!("{who}: CLIENT LIST token `{tok}` is not key=value in `{line}`"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str, who: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{who}: CLIENT LIST line has no `{name}` field: {fields:?}"))
}

const NUMERIC_FIELDS: &[&str] = &[
    "id",
    "fd",
    "age",
    "idle",
    "db",
    "sub",
    "psub",
    "multi",
    "qbuf",
    "qbuf-free",
    "argv-mem",
    "multi-mem",
    "obl",
    "oll",
    "omem",
    "tot-mem",
    "redir",
    "resp",
];

/// The fields of the lister's own line and of a second (RESP3, unnamed) client.
fn client_list_lines(server: &Server) -> (Fields, Fields, String) {
    let who = server.kind().name();
    let mut lister = server.conn();
    let mut other = server.conn();
    cmd(&mut other, &["HELLO", "3"], who);
    let other_id = int_of(&cmd(&mut other, &["CLIENT", "ID"], who), "CLIENT ID");
    let my_id = int_of(&cmd(&mut lister, &["CLIENT", "ID"], who), "CLIENT ID");
    assert_eq!(cmd(&mut lister, &["CLIENT", "SETNAME", "e2e-lister"], who), b"+OK\r\n");
    cmd(&mut lister, &["SELECT", "2"], who);
    let listing = text_of(&cmd(&mut lister, &["CLIENT", "LIST"], who), "CLIENT LIST");
    assert!(listing.ends_with('\n'), "{who}: CLIENT LIST must end with a newline");
    let lines: Vec<Vec<(String, String)>> = listing.lines().map(|l| client_fields(l, who)).collect();
    let find = |id: i64| {
        lines
            .iter()
            .find(|f| field(f, "id", who) == id.to_string())
            .unwrap_or_else(|| panic!("{who}: client {id} missing from CLIENT LIST:\n{listing}"))
            .clone()
    };
    let mine = find(my_id);
    let theirs = find(other_id);
    for f in [&mine, &theirs] {
        for name in NUMERIC_FIELDS {
            let v = field(f, name, who);
            assert!(v.parse::<i64>().is_ok(), "{who}: `{name}={v}` is not a number");
        }
    }
    let addr = lister.local_addr().unwrap().to_string();
    let laddr = lister.peer_addr().unwrap().to_string();
    let expect = [
        ("addr", addr.as_str()),
        ("laddr", laddr.as_str()),
        ("name", "e2e-lister"),
        ("db", "2"),
        ("flags", "N"),
        ("cmd", "client|list"),
        ("resp", "2"),
        ("user", "default"),
        ("multi", "-1"),
    ];
    for (name, value) in expect {
        assert_eq!(field(&mine, name, who), value, "{who}: the lister's `{name}`");
    }
    assert_eq!(field(&theirs, "name", who), "", "{who}: unnamed client");
    assert_eq!(field(&theirs, "resp", who), "3", "{who}: HELLO 3 client");
    assert_eq!(field(&theirs, "cmd", who), "client|id", "{who}: last command");

    let info_line = text_of(&cmd(&mut lister, &["CLIENT", "INFO"], who), "CLIENT INFO");
    assert_eq!(info_line.lines().count(), 1, "{who}: CLIENT INFO is one line");
    let info_fields = client_fields(info_line.trim_end(), who);
    assert_eq!(field(&info_fields, "id", who), my_id.to_string());
    assert_eq!(field(&info_fields, "cmd", who), "client|info");
    let keys = |f: &[(String, String)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&info_fields), keys(&mine), "{who}: CLIENT INFO fields");

    let by_id = text_of(&cmd(&mut lister, &["CLIENT", "LIST", "ID", &other_id.to_string()], who), "CLIENT LIST ID");
    assert_eq!(by_id.lines().count(), 1, "{who}: CLIENT LIST ID <one id>:\n{by_id}");
    (mine, theirs, listing)
}

/// CLIENT LIST: every line is space-separated key=value; the fields Redis
/// prints are there in Redis's order, plus Redis 7.2's lib-name and lib-ver;
/// values describe the connections (ids, addresses, name, db, cmd, resp).
#[test]
fn client_list_format() {
    let redis = Server::redis();
    let (redis_fields, _, _) = client_list_lines(&redis);
    drop(redis);
    let redoubt = Server::redoubt();
    let (fields, _, listing) = client_list_lines(&redoubt);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    for required in ["lib-name", "lib-ver"] {
        assert!(names.contains(&required), "redoubt: no `{required}` in {listing}");
    }
    let redis_names: Vec<&str> = redis_fields.iter().map(|(k, _)| k.as_str()).collect();
    let mut at = 0;
    for name in &redis_names {
        match names[at..].iter().position(|n| n == name) {
            Some(p) => at += p + 1,
            None => panic!(
                "redoubt's CLIENT LIST lacks `{name}` or has it out of Redis's order\n    \
                 redis:   {redis_names:?}\n    redoubt: {names:?}"
            ),
        }
    }
}

/// CLIENT SETNAME / GETNAME replies, errors and RESP3 null as Redis.
#[test]
fn client_setname_getname_match_redis() {
    let steps: &[&[&str]] = &[
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "worker-1"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", "has space"],
        &["CLIENT", "SETNAME", "new\nline"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", ""],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME"],
        &["CLIENT", "SETNAME", "a", "b"],
        &["CLIENT", "GETNAME", "extra"],
        &["HELLO", "3", "SETNAME", "via-hello"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", ""],
        &["CLIENT", "GETNAME"],
    ];
    let (want, got) = on_both(&[], |server| {
        let mut conn = server.conn();
        steps
            .iter()
            .map(|args| {
                let reply = cmd(&mut conn, args, server.kind().name());
                let reply = if args[0] == "HELLO" { reply[..1].to_vec() } else { reply };
                (args.join(" "), reply)
            })
            .collect::<Vec<_>>()
    });
    assert_same_transcript("CLIENT SETNAME/GETNAME", &want, &got);
}

/// CLIENT KILL ID closes that other connection; the old `ip:port` form and
/// the replies for unknown clients are as Redis's.
#[test]
fn client_kill_closes_the_other_connection() {
    let (want, got) = on_both(&[], |server| {
        let who = server.kind().name();
        let mut victim = server.conn();
        let mut victim2 = server.conn();
        let mut killer = server.conn();
        let id = int_of(&cmd(&mut victim, &["CLIENT", "ID"], who), "CLIENT ID").to_string();
        let own = int_of(&cmd(&mut killer, &["CLIENT", "ID"], who), "CLIENT ID").to_string();
        let mut t =
            vec![("CLIENT KILL ID <victim>".to_string(), cmd(&mut killer, &["CLIENT", "KILL", "ID", &id], who))];
        let drained = victim.read_until_closed(CLOSE_WAIT).expect("read");
        t.push((
            "victim connection closed".into(),
            format!("closed={} bytes={}", drained.closed, show(&drained.bytes)).into_bytes(),
        ));
        t.push(("CLIENT KILL ID <victim> again".into(), cmd(&mut killer, &["CLIENT", "KILL", "ID", &id], who)));
        t.push((
            "CLIENT KILL ID <own> (SKIPME yes by default)".into(),
            cmd(&mut killer, &["CLIENT", "KILL", "ID", &own], who),
        ));
        t.push(("CLIENT KILL ID abc".into(), cmd(&mut killer, &["CLIENT", "KILL", "ID", "abc"], who)));
        t.push(("CLIENT KILL ID 999999999".into(), cmd(&mut killer, &["CLIENT", "KILL", "ID", "999999999"], who)));
        // A reply proves the server has accepted the connection: a completed
        // TCP handshake alone does not.
        cmd(&mut victim2, &["PING"], who);
        let addr = victim2.local_addr().unwrap().to_string();
        t.push(("CLIENT KILL <ip:port>".into(), cmd(&mut killer, &["CLIENT", "KILL", &addr], who)));
        let drained = victim2.read_until_closed(CLOSE_WAIT).expect("read");
        t.push(("ip:port victim closed".into(), format!("closed={}", drained.closed).into_bytes()));
        t.push(("CLIENT KILL 127.0.0.1:1".into(), cmd(&mut killer, &["CLIENT", "KILL", "127.0.0.1:1"], who)));
        t.push(("killer still served".into(), cmd(&mut killer, &["PING"], who)));
        t
    });
    assert_eq!(want[0].1, b":1\r\n", "the test is wrong: {want:?}");
    assert_same_transcript("CLIENT KILL", &want, &got);
}

/// CLIENT REPLY OFF / SKIP / ON: which replies are suppressed, pipelined in
/// one write and read up to a final ECHO, byte for byte as Redis.
#[test]
fn client_reply_modes_match_redis() {
    let commands: &[&[&str]] = &[
        &["SET", "r", "1"],
        &["CLIENT", "REPLY", "OFF"],
        &["INCR", "r"],
        &["NOSUCHCOMMAND"],
        &["GET"],
        &["CLIENT", "REPLY", "SKIP"],
        &["INCR", "r"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "r"],
        &["CLIENT", "REPLY", "SKIP"],
        &["INCR", "r"],
        &["GET", "r"],
        &["CLIENT", "REPLY", "SKIP"],
        &["CLIENT", "REPLY", "SKIP"],
        &["INCR", "r"],
        &["GET", "r"],
        &["CLIENT", "REPLY", "SKIP"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "r"],
        &["CLIENT", "REPLY", "BAD"],
        &["CLIENT", "REPLY"],
        &["CLIENT", "REPLY", "ON"],
        &["ECHO", "end-of-replies"],
    ];
    let mut request = Vec::new();
    for args in commands {
        request.extend(encode_command(args));
    }
    let (want, got) = on_both(&[], |server| {
        let mut conn = server.conn();
        conn.send_raw(&request).expect("write");
        let mut replies = Vec::new();
        loop {
            let reply = conn.read_reply_raw().unwrap_or_else(|e| {
                panic!("{}: waiting for the final ECHO after {:?}: {e}", server.kind().name(), replies)
            });
            let done = reply == b"$14\r\nend-of-replies\r\n";
            replies.push((format!("reply {}", replies.len()), reply));
            if done {
                break replies;
            }
        }
    });
    assert_same_transcript("CLIENT REPLY", &want, &got);
}

// ---------------------------------------------------------------------------
// MONITOR
// ---------------------------------------------------------------------------

/// Splits a MONITOR line `+<secs>.<usecs> [<db> <addr>] <args>\r\n` into
/// its time, db, address and quoted-arguments part; panics if malformed.
fn parse_monitor_line(line: &[u8], who: &str) -> (f64, String, String, String) {
    let text = std::str::from_utf8(line).unwrap_or_else(|_| panic!("{who}: MONITOR line is not UTF-8: {}", show(line)));
    let body = text
        .strip_prefix('+')
        .and_then(|t| t.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("{who}: MONITOR line is not a simple string: {text:?}"));
    let (time, rest) = body.split_once(' ').expect("time");
    let (secs, usecs) = time.split_once('.').expect("secs.usecs");
    assert!(
        secs.chars().all(|c| c.is_ascii_digit()) && usecs.len() == 6 && usecs.chars().all(|c| c.is_ascii_digit()),
        "{who}: MONITOR time `{time}` is not <seconds>.<6 digits>"
    );
    let rest = rest.strip_prefix('[').expect("[");
    let (client, args) = rest.split_once("] ").expect("] ");
    let (db, addr) = client.split_once(' ').expect("db addr");
    (time.parse().expect("time"), db.to_string(), addr.to_string(), args.to_string())
}

/// A MONITOR connection receives `+<time> [<db> 127.0.0.1:<port>] "set" "k" "v"`
/// for commands of other clients, with Redis's quoting of arguments.
#[test]
fn monitor_shows_other_clients_commands_like_redis() {
    let commands: &[&[&[u8]]] = &[
        &[b"set", b"k", b"v"],
        &[b"GET", b"k"],
        &[b"SET", b"quoted", b"a \"b\" \\ \n\r\t\x00\x07\xff\xe9"],
        &[b"SELECT", b"3"],
        &[b"set", b"in-db-3", b""],
    ];
    let (want, got) = on_both(&[], |server| {
        let who = server.kind().name();
        let mut monitor = server.conn();
        assert_eq!(cmd(&mut monitor, &["MONITOR"], who), b"+OK\r\n", "{who}: MONITOR");
        let mut client = server.conn();
        let addr = client.local_addr().unwrap().to_string();
        for args in commands {
            client.cmd(args).expect("command");
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        let mut lines = Vec::new();
        for (i, args) in commands.iter().enumerate() {
            let line = monitor.read_reply_raw().unwrap_or_else(|e| panic!("{who}: MONITOR line for command {i}: {e}"));
            let (time, db, from, quoted) = parse_monitor_line(&line, who);
            assert!((now - time).abs() < 60.0, "{who}: MONITOR time {time} is far from now ({now})");
            assert_eq!(from, addr, "{who}: MONITOR address of the client");
            let label = String::from_utf8_lossy(&args.join(&b' ')).into_owned();
            lines.push((format!("{label} (db)"), db.into_bytes()));
            lines.push((label, quoted.into_bytes()));
        }
        lines
    });
    assert_eq!(want[0].1, b"0", "the test is wrong: {want:?}");
    assert_eq!(want[1].1, b"\"set\" \"k\" \"v\"", "the test is wrong: {want:?}");
    assert_same_transcript("MONITOR lines (after the client address)", &want, &got);
}

// ---------------------------------------------------------------------------
// SCAN
// ---------------------------------------------------------------------------

/// Runs a full SCAN over 10,000 stable keys while a second client keeps
/// creating and deleting other keys (growing the keyspace well past its size
/// at the start), and a third adds keys between every SCAN call. Every
/// stable key must be returned at least once; nothing unknown may appear.
fn scan_finds_every_stable_key(kind: Kind) {
    const STABLE: usize = 10_000;
    let who = kind.name();
    let server = Server::of_kind(kind, None, &[]);
    let mut setup = server.conn();
    for chunk in (0..STABLE).collect::<Vec<_>>().chunks(500) {
        let mut args = vec!["MSET".to_string()];
        for i in chunk {
            args.push(format!("stable:{i}"));
            args.push(i.to_string());
        }
        assert_eq!(setup.cmd(&args).expect("MSET"), b"+OK\r\n");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicU64::new(0));
    let mut churn_conn = server.conn();
    let churn = {
        let stop = stop.clone();
        let churned = churned.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && n < 400_000 {
                let mut batch = Vec::new();
                for _ in 0..50 {
                    batch.extend(encode_command(&["SET", &format!("churn:{n}"), "x"]));
                    if n % 2 == 1 {
                        batch.extend(encode_command(&["DEL", &format!("churn:{}", n - 1)]));
                    }
                    n += 1;
                }
                let replies = 50 + 25;
                if churn_conn.send_raw(&batch).is_err() {
                    return;
                }
                for _ in 0..replies {
                    if churn_conn.read_reply_raw().is_err() {
                        return;
                    }
                }
                churned.store(n, Ordering::Relaxed);
            }
        })
    };

    let mut scanner = server.conn();
    let mut adder = server.conn();
    let mut seen: HashSet<String> = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0u64;
    let mut added = 0u64;
    loop {
        let reply = cmd(&mut scanner, &["SCAN", &cursor, "COUNT", "10"], who);
        let value = must_decode(&reply);
        let parts = value.as_list().unwrap_or_else(|| panic!("{who}: SCAN replied {}", show(&reply)));
        assert_eq!(parts.len(), 2, "{who}: SCAN reply shape {}", show(&reply));
        cursor = parts[0].as_text().expect("cursor");
        for key in parts[1].as_list().expect("keys") {
            let key = key.as_text().expect("key");
            assert!(
                key.starts_with("stable:") || key.starts_with("churn:") || key.starts_with("added:"),
                "{who}: SCAN returned a key nobody wrote: {key}"
            );
            seen.insert(key);
        }
        calls += 1;
        // Deterministic interleaving on top of the concurrent churn: the
        // keyspace roughly doubles while the iteration runs.
        let mut batch = vec!["MSET".to_string()];
        for _ in 0..10 {
            batch.push(format!("added:{added}"));
            batch.push("1".into());
            added += 1;
        }
        assert_eq!(adder.cmd(&batch).expect("MSET"), b"+OK\r\n");
        if cursor == "0" {
            break;
        }
        assert!(calls < 1_000_000, "{who}: SCAN did not finish after {calls} calls");
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().expect("churn thread");
    let missing: Vec<String> = (0..STABLE).map(|i| format!("stable:{i}")).filter(|k| !seen.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "{who}: a full SCAN ({calls} calls, {added} keys added and {} churned meanwhile) \
         missed {} of {STABLE} stable keys, e.g. {:?}",
        churned.load(Ordering::Relaxed),
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

#[test]
fn scan_returns_every_stable_key_under_concurrent_writes_on_redis() {
    scan_finds_every_stable_key(Kind::Redis);
}

#[test]
fn scan_returns_every_stable_key_under_concurrent_writes() {
    scan_finds_every_stable_key(Kind::Redoubt);
}
