//! End-to-end protocol tests: raw bytes on a socket, Redoubt compared with a
//! real redis-server wherever Redis defines the behaviour.
//!
//! Covers malformed requests (bad headers, negative and huge lengths,
//! unbalanced inline quotes, binary garbage) that must be answered with
//! Redis's exact `-ERR Protocol error: ...` text and a closed connection;
//! input Redis tolerates (empty lines, inline commands, null/negative
//! multibulks); a command written one byte at a time; a 10,000-command
//! pipeline in one write; and memory safety against clients that announce
//! huge bulks or multibulks and then send nothing more.
//!
//! Nothing here sleeps to synchronise: waits are bounded polls on something
//! observable (a reply, a closed socket, an `INFO` counter).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redoubt_tests::conn::{encode_command, is_disconnect, Drained};
use redoubt_tests::server::Kind;
use redoubt_tests::util::{info_u64, poll_until, process_rss, raise_fd_limit};
use redoubt_tests::{Conn, Server};

/// Upper bound for a server to answer a bad request by closing the socket.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The reply that ends every tolerated-input case (see [`replies_until_sentinel`]).
const SENTINEL: &[u8] = b"__end-of-case__";

/// Opens a connection, writes `bytes`, and collects everything the server
/// sends until it closes the connection (or [`CLOSE_WAIT`] passes).
///
/// A write that fails because the server already closed is not an error:
/// the server may legitimately hang up before reading everything.
fn send_and_drain(server: &Server, bytes: &[u8]) -> Drained {
    let mut conn = server.conn();
    if let Err(e) = conn.send_raw(bytes) {
        assert!(is_disconnect(&e), "{}: writing the request failed: {e}", server.kind().name());
    }
    conn.read_until_closed(CLOSE_WAIT).unwrap_or_else(|e| panic!("{}: reading failed: {e}", server.kind().name()))
}

fn show(bytes: &[u8]) -> String {
    const MAX: usize = 300;
    let shown: String = bytes.iter().take(MAX).flat_map(|b| b.escape_ascii()).map(char::from).collect();
    if bytes.len() > MAX {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}

fn describe(d: &Drained) -> String {
    format!("{} [{}]", show(&d.bytes), if d.closed { "closed" } else { "still open" })
}

fn ping(conn: &mut Conn, who: &str) {
    let reply = conn.cmd(&["PING"]).unwrap_or_else(|e| panic!("{who}: PING failed: {e}"));
    assert_eq!(reply, b"+PONG\r\n", "{who}: PING replied {}", show(&reply));
}

/// Requests Redis answers with `-ERR Protocol error: ...` and a close.
///
/// No case puts a NUL byte in a header line or an inline command: Redis looks
/// for the line end with C string functions, so it never sees a line past a
/// NUL and just waits. That is an accident of its implementation, not a
/// behaviour to copy, so it is not compared.
fn protocol_error_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut cases: Vec<(&'static str, Vec<u8>)> = vec![
        ("multibulk length not a number", b"*x\r\n".to_vec()),
        ("multibulk length empty", b"*\r\n".to_vec()),
        ("multibulk length with trailing junk", b"*1x\r\n".to_vec()),
        ("multibulk length binary", b"*\xff\xfe\r\n".to_vec()),
        ("multibulk length above INT_MAX", b"*2147483648\r\n".to_vec()),
        ("multibulk length overflowing i64", b"*99999999999999999999\r\n".to_vec()),
        ("multibulk length hugely negative (overflow)", b"*-99999999999999999999\r\n".to_vec()),
        ("bulk length not a number", b"*1\r\n$abc\r\n".to_vec()),
        ("bulk length empty", b"*1\r\n$\r\n".to_vec()),
        ("bulk length with leading space", b"*1\r\n$ 4\r\nPING\r\n".to_vec()),
        ("bulk length binary", b"*1\r\n$\xfe\x01\r\n".to_vec()),
        ("bulk length -1 (null bulk as argument)", b"*1\r\n$-1\r\n".to_vec()),
        ("bulk length negative", b"*1\r\n$-5\r\n".to_vec()),
        ("bulk length above proto-max-bulk-len", b"*1\r\n$536870913\r\n".to_vec()),
        ("bulk length overflowing i64", b"*1\r\n$99999999999999999999\r\n".to_vec()),
        ("simple string where $ expected", b"*1\r\n+PING\r\n".to_vec()),
        ("integer where $ expected (second argument)", b"*2\r\n$4\r\nECHO\r\n:12\r\n".to_vec()),
        ("nested array as an argument", b"*2\r\n$4\r\nECHO\r\n*1\r\n$1\r\na\r\n".to_vec()),
        ("inline: unbalanced double quote", b"SET \"a b\r\n".to_vec()),
        ("inline: unbalanced single quote", b"SET 'a b\r\n".to_vec()),
        ("inline: closing quote followed by a letter", b"ECHO \"a\"b\r\n".to_vec()),
        ("inline: lone quote", b"ECHO \"\r\n".to_vec()),
        ("valid commands, then a bad header in the same write", b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n".to_vec()),
    ];
    let mut inline = vec![b'x'; 70_000];
    inline.splice(0..0, b"ECHO ".iter().copied());
    cases.push(("inline request over 64 KB without newline", inline));
    let mut count = b"*".to_vec();
    count.extend(std::iter::repeat_n(b'1', 70_000));
    cases.push(("multibulk count over 64 KB without CRLF", count));
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend(std::iter::repeat_n(b'1', 70_000));
    cases.push(("bulk count over 64 KB without CRLF", bulk));
    cases
}

/// Every malformed request gets Redis's exact error bytes and a closed
/// connection, and the server keeps serving a client that was connected
/// all along as well as new ones.
#[test]
fn protocol_errors_match_redis_and_close_the_connection() {
    let redis = Server::redis();
    let redoubt = Server::redoubt();
    let mut bystanders = [(redis.conn(), "redis bystander"), (redoubt.conn(), "redoubt bystander")];
    let mut failures = Vec::new();
    for (name, bytes) in protocol_error_cases() {
        let want = send_and_drain(&redis, &bytes);
        assert!(
            want.closed
                && want.bytes.ends_with(b"\r\n")
                && want.bytes.windows(21).any(|w| w == b"-ERR Protocol error: "),
            "the test case `{name}` is wrong: redis-server answered {}",
            describe(&want)
        );
        let got = send_and_drain(&redoubt, &bytes);
        if got != want {
            failures.push(format!(
                "{name}: sent {}\n    redis:   {}\n    redoubt: {}",
                show(&bytes),
                describe(&want),
                describe(&got)
            ));
        }
        for (conn, who) in &mut bystanders {
            ping(conn, &format!("{who} after `{name}`"));
        }
    }
    ping(&mut redoubt.conn(), "a new redoubt connection");
    assert!(
        failures.is_empty(),
        "{} of {} protocol error cases differ from redis-server:\n{}",
        failures.len(),
        protocol_error_cases().len(),
        failures.join("\n")
    );
}

/// Sends `bytes` followed by `ECHO <sentinel>` and returns every reply up to
/// and including the sentinel's, concatenated.
fn replies_until_sentinel(server: &Server, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut conn = server.conn();
    let mut request = bytes.to_vec();
    request.extend(encode_command(&[b"ECHO".as_slice(), SENTINEL]));
    conn.send_raw(&request).map_err(|e| format!("write: {e}"))?;
    let mut sentinel = format!("${}\r\n", SENTINEL.len()).into_bytes();
    sentinel.extend_from_slice(SENTINEL);
    sentinel.extend_from_slice(b"\r\n");
    let mut all = Vec::new();
    for _ in 0..1000 {
        let reply = conn.read_reply_raw().map_err(|e| format!("after {} (no sentinel yet): {e}", show(&all)))?;
        all.extend_from_slice(&reply);
        if reply == sentinel {
            return Ok(all);
        }
    }
    Err(format!("no sentinel after 1000 replies: {}", show(&all)))
}

/// Input Redis accepts without closing: inline commands, empty lines,
/// null and negative multibulk counts, binary bytes. Replies must match
/// byte for byte and the connection must stay usable.
#[test]
fn tolerated_input_matches_redis() {
    let mut all_bytes = b"SET bin \"".to_vec();
    for b in 0..=255u8 {
        all_bytes.extend_from_slice(format!("\\x{b:02x}").as_bytes());
    }
    all_bytes.extend_from_slice(b"\"\r\nGET bin\r\nSTRLEN bin\r\n");
    let mut binary_multibulk =
        encode_command(&[b"SET".to_vec(), b"bin2".to_vec(), (0..=255u8).rev().collect::<Vec<u8>>()]);
    binary_multibulk.extend(encode_command(&["GET", "bin2"]));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty lines", b"\r\n\r\n\n\n\r\nPING\r\n\r\n".to_vec()),
        ("inline commands", b"SET k v\r\nGET k\r\nDEL k\r\nGET k\r\n".to_vec()),
        ("inline with LF only", b"PING\nECHO lf\n".to_vec()),
        ("inline with extra whitespace and tabs", b"   ECHO   \t  spaced   \r\n".to_vec()),
        ("inline with double-quoted escapes", b"SET q \"a\\x41\\n\\t b\\\"\"\r\nGET q\r\nSTRLEN q\r\n".to_vec()),
        ("inline with single quotes", b"ECHO 'it\\'s'\r\nECHO ''\r\n".to_vec()),
        ("inline escapes for every byte", all_bytes),
        ("multibulk with every byte value", binary_multibulk),
        ("null multibulk", b"*-1\r\nPING\r\n".to_vec()),
        ("negative multibulk", b"*-5\r\nPING\r\n".to_vec()),
        ("zero multibulk", b"*0\r\n*1\r\n$4\r\nPING\r\n".to_vec()),
        ("binary garbage as inline command", b"\x01\x02\x03\r\n".to_vec()),
        ("high bytes as inline command", b"\xff\xfegarbage\r\n".to_vec()),
        ("unknown command with arguments", b"NOSUCHCMD a 'b c' d\r\n".to_vec()),
        ("empty bulk argument", b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n".to_vec()),
    ];
    let redis = Server::redis();
    let redoubt = Server::redoubt();
    let mut failures = Vec::new();
    for (name, bytes) in &cases {
        let want = replies_until_sentinel(&redis, bytes)
            .unwrap_or_else(|e| panic!("the test case `{name}` is wrong: redis-server: {e}"));
        match replies_until_sentinel(&redoubt, bytes) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{name}: sent {}\n    redis:   {}\n    redoubt: {}",
                show(bytes),
                show(&want),
                show(&got)
            )),
            Err(e) => {
                failures.push(format!("{name}: sent {}\n    redis:   {}\n    redoubt: {e}", show(bytes), show(&want)))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from redis-server:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A pipeline of commands written one byte per write (TCP_NODELAY, so each
/// byte is its own segment) parses exactly as if written at once.
#[test]
fn command_written_one_byte_at_a_time() {
    let value: Vec<u8> = b"v\r\n\x00*1\r\n$3\r\n".to_vec();
    let mut request = encode_command(&[b"SET".as_slice(), b"split", &value]);
    request.extend_from_slice(b"GET split\r\n");
    request.extend(encode_command(&["APPEND", "split", "\r\n"]));
    request.extend_from_slice(b"ECHO \"quoted \\x41\"\r\n");
    let mut expected = b"+OK\r\n".to_vec();
    expected.extend(format!("${}\r\n", value.len()).as_bytes());
    expected.extend_from_slice(&value);
    expected.extend_from_slice(b"\r\n");
    expected.extend(format!(":{}\r\n", value.len() + 2).as_bytes());
    expected.extend_from_slice(b"$8\r\nquoted A\r\n");
    for server in [Server::redis(), Server::redoubt()] {
        let who = server.kind().name();
        let mut conn = server.conn();
        for byte in &request {
            conn.send_raw(std::slice::from_ref(byte)).unwrap_or_else(|e| panic!("{who}: write failed: {e}"));
        }
        let mut got = Vec::new();
        for i in 0..4 {
            let reply =
                conn.read_reply_raw().unwrap_or_else(|e| panic!("{who}: reply {i}: {e} (so far {})", show(&got)));
            got.extend(reply);
        }
        assert_eq!(show(&got), show(&expected), "{who}: replies to a byte-by-byte pipeline");
    }
}

/// 10,000 commands in a single write: every reply arrives, in order, with
/// the same bytes as redis-server's.
#[test]
fn pipeline_of_ten_thousand_commands_in_one_write() {
    const N: usize = 10_000;
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..N {
        match i % 4 {
            0 => {
                request.extend(encode_command(&["INCR", "pipeline:counter"]));
                expected.extend(format!(":{}\r\n", i / 4 + 1).into_bytes());
            }
            1 => {
                let key = format!("pipeline:{i}");
                let val = format!("value-{i}");
                request.extend(encode_command(&["SET", &key, &val]));
                expected.extend_from_slice(b"+OK\r\n");
            }
            2 => {
                let key = format!("pipeline:{}", i - 1);
                let val = format!("value-{}", i - 1);
                request.extend(encode_command(&["GET", &key]));
                expected.extend(format!("${}\r\n{val}\r\n", val.len()).into_bytes());
            }
            _ => {
                request.extend(format!("ECHO inline-{i}\r\n").into_bytes());
                let val = format!("inline-{i}");
                expected.extend(format!("${}\r\n{val}\r\n", val.len()).into_bytes());
            }
        }
    }
    let mut outputs = Vec::new();
    for server in [Server::redis(), Server::redoubt()] {
        let who = server.kind().name();
        let mut conn = server.conn();
        let mut writer: TcpStream = conn.try_clone_stream().expect("clone socket");
        let bytes = request.clone();
        // Written from another thread so that a server which answers while
        // still reading cannot deadlock against a test that is not reading.
        let write = std::thread::spawn(move || writer.write_all(&bytes));
        let mut got = Vec::with_capacity(expected.len());
        for i in 0..N {
            match conn.read_reply_raw() {
                Ok(reply) => got.extend(reply),
                Err(e) => panic!("{who}: reply {i} of {N} did not arrive: {e}"),
            }
        }
        write.join().expect("writer thread").unwrap_or_else(|e| panic!("{who}: writing the pipeline failed: {e}"));
        if got != expected {
            let at = got.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(got.len().min(expected.len()));
            let from = at.saturating_sub(40);
            panic!(
                "{who}: pipeline replies differ at byte {at}:\n    expected ...{}\n    got      ...{}",
                show(&expected[from..(at + 80).min(expected.len())]),
                show(&got[from..(at + 80).min(got.len())])
            );
        }
        let mut check = server.conn();
        ping(&mut check, who);
        outputs.push(got);
    }
    assert_eq!(outputs[0], outputs[1], "redis and redoubt replies differ");
}

/// Polls `INFO stats` until the server has read at least `target` bytes
/// from clients in total.
fn wait_input_bytes(observer: &mut Conn, target: u64, who: &str) {
    poll_until(Duration::from_secs(20), &format!("{who} to read {target} input bytes"), || {
        (info_u64(observer, "stats", "total_net_input_bytes") >= target).then_some(())
    });
}

/// One connection announces a ~512 MB bulk (`*1\r\n$536870000\r\n`), sends
/// 2 MB of it and stops. The server must buffer what it got, not reserve (and
/// touch) the announced size.
fn huge_bulk_announcement(kind: Kind) {
    const ANNOUNCED: u64 = 536_870_000;
    const LIMIT: u64 = 128 << 20;
    let server = Server::of_kind(kind, None, &[]);
    let who = kind.name();
    let mut observer = server.conn();
    let rss_before = process_rss(server.pid());
    let mut greedy = server.conn();
    let header = b"*1\r\n$536870000\r\n".to_vec();
    let chunk = vec![b'a'; 1 << 20];
    let start = info_u64(&mut observer, "stats", "total_net_input_bytes");
    greedy.send_raw(&header).expect("send header");
    greedy.send_raw(&chunk).expect("send first MB");
    wait_input_bytes(&mut observer, start + (header.len() + chunk.len()) as u64, who);
    // A second chunk read after the first proves the header was parsed.
    greedy.send_raw(&chunk).expect("send second MB");
    wait_input_bytes(&mut observer, start + (header.len() + 2 * chunk.len()) as u64, who);
    let rss = process_rss(server.pid());
    let info_rss = info_u64(&mut observer, "memory", "used_memory_rss");
    eprintln!("{who}: RSS before {rss_before}, after {rss} (/proc), INFO used_memory_rss {info_rss}");
    ping(&mut observer, who);
    assert!(
        rss < LIMIT && info_rss < LIMIT,
        "{who}: after a client announced a {ANNOUNCED}-byte bulk and sent 2 MB of it, \
         RSS is {rss} bytes (/proc) / {info_rss} (INFO used_memory_rss), limit {LIMIT}; \
         before: {rss_before}"
    );
    // The connection is still waiting for the rest, not closed.
    assert!(
        !greedy.read_until_closed(Duration::from_millis(1)).expect("read").closed,
        "{who}: the server closed a connection that announced a legal bulk length"
    );
}

#[test]
fn huge_bulk_announcement_does_not_allocate_it_on_redis() {
    huge_bulk_announcement(Kind::Redis);
}

#[test]
fn huge_bulk_announcement_does_not_allocate_it() {
    huge_bulk_announcement(Kind::Redoubt);
}

/// 2,000 connections each announce a multibulk of 2^31-1 arguments and a
/// ~512 MB first argument, then go silent. Another client must still get
/// prompt answers and the server's memory must stay bounded.
fn many_huge_multibulk_announcements(kind: Kind) {
    const CLIENTS: usize = 2_000;
    const LIMIT: u64 = 256 << 20;
    let fds = raise_fd_limit(8_192).expect("getrlimit/setrlimit");
    assert!(
        fds >= (CLIENTS + 200) as u64,
        "this test needs {} open files but the hard limit allows only {fds}: raise `ulimit -Hn`",
        CLIENTS + 200
    );
    let server = Server::of_kind(kind, None, &[]);
    let who = kind.name();
    let mut observer = server.conn();
    let rss_before = process_rss(server.pid());
    let start = info_u64(&mut observer, "stats", "total_net_input_bytes");
    let announce = b"*2147483647\r\n$536870000\r\n";
    let mut idle = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let mut conn = server.try_conn().unwrap_or_else(|e| panic!("{who}: connection {i} of {CLIENTS} failed: {e}"));
        conn.send_raw(announce).unwrap_or_else(|e| panic!("{who}: write on connection {i}: {e}"));
        idle.push(conn);
    }
    poll_until(Duration::from_secs(30), &format!("{who} to accept {CLIENTS} clients"), || {
        (info_u64(&mut observer, "clients", "connected_clients") > CLIENTS as u64).then_some(())
    });
    wait_input_bytes(&mut observer, start + (CLIENTS * announce.len()) as u64, who);
    let began = Instant::now();
    let mut fresh = server.conn();
    ping(&mut fresh, who);
    let reply = fresh.cmd(&["SET", "still", "alive"]).expect("SET");
    assert_eq!(reply, b"+OK\r\n", "{who}: SET replied {}", show(&reply));
    let elapsed = began.elapsed();
    let rss = process_rss(server.pid());
    let info_rss = info_u64(&mut observer, "memory", "used_memory_rss");
    eprintln!("{who}: RSS before {rss_before}, after {rss} (/proc), INFO used_memory_rss {info_rss}");
    assert!(
        elapsed < Duration::from_secs(2),
        "{who}: a new client waited {elapsed:?} for PING + SET with {CLIENTS} stalled clients"
    );
    assert!(
        rss.saturating_sub(rss_before) < LIMIT && info_rss < rss_before + LIMIT,
        "{who}: with {CLIENTS} clients announcing huge multibulks RSS grew from {rss_before} \
         to {rss} bytes (/proc; INFO used_memory_rss {info_rss}); allowed growth {LIMIT}"
    );
    // None of them was disconnected: the announcements are legal.
    let mut closed = 0;
    for conn in idle.iter_mut().take(20) {
        if conn.read_until_closed(Duration::from_millis(1)).map_or(true, |d| d.closed) {
            closed += 1;
        }
    }
    assert_eq!(closed, 0, "{who}: the server closed stalled but legal clients");
    drop(idle);
    poll_until(Duration::from_secs(10), &format!("{who} to drop the clients"), || {
        (info_u64(&mut observer, "clients", "connected_clients") <= 2).then_some(())
    });
    ping(&mut observer, who);
}

#[test]
fn thousands_of_huge_multibulk_announcements_on_redis() {
    many_huge_multibulk_announcements(Kind::Redis);
}

#[test]
fn thousands_of_huge_multibulk_announcements() {
    many_huge_multibulk_announcements(Kind::Redoubt);
}
