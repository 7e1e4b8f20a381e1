//! Cache-aside replay against a live server: for each request `GET key`; on a miss
//! `SET key <value>`.
//!
//! Pipelining (window of `pipeline` requests, one round trip per window):
//! - batch k carries, in this order: the `SET`s for the misses of window k-1 (trace order),
//!   then the repeated `GET`s of window k-1 (see below), then the `GET`s of window k;
//! - a key requested more than once inside one window gets one `GET` at its first occurrence in
//!   the window; its later occurrences are re-sent as `GET`s in the next batch, after the
//!   window's `SET`s, so that a repeat of a missed key reads the value just stored (a hit, as in
//!   a sequential run) and touches it (LRU clock / LFU counter) after it was stored;
//! - a repeated `GET` that misses anyway (the key was evicted in between) is counted as a miss
//!   and gets its `SET` one batch later.
//!
//! So the server sees every request's `GET` and every miss's `SET`, and the only difference from
//! a strictly sequential client is the order *between different keys* inside one window: all of
//! a window's first `GET`s run before any of its `SET`s. With windows far smaller than the
//! cache, that reordering cannot change which keys are resident in any measurable way.

use crate::resp::{Conn, Reply};
use crate::trace::{key_name, KEY_LEN};
use std::io;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Tag {
    /// First GET of a key in its window: trace position.
    Get(usize),
    /// GET of a repeated key, sent after the window's SETs.
    Repeat(usize),
    Set,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub requests: usize,
    pub counted: usize,
    pub hits: usize,
    pub misses: usize,
    pub sets: usize,
    pub set_errors: usize,
    pub get_errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

pub struct Options {
    pub pipeline: usize,
    pub value_size: usize,
    pub warmup: usize,
    pub timeout: Duration,
}

fn push_get(buf: &mut Vec<u8>, key: u32) {
    buf.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$14\r\n");
    key_name(key, buf);
    buf.extend_from_slice(b"\r\n");
}

fn push_set(buf: &mut Vec<u8>, key: u32, value_hdr: &[u8], value: &[u8]) {
    buf.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$14\r\n");
    key_name(key, buf);
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(value_hdr);
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

fn value_bytes(size: usize) -> (Vec<u8>, Vec<u8>) {
    let hdr = format!("${size}\r\n").into_bytes();
    let value: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    (hdr, value)
}

pub fn replay(addr: &str, trace: &[u32], ids: usize, opt: &Options) -> io::Result<Stats> {
    const _: () = assert!(KEY_LEN == 14);
    let mut conn = Conn::connect(addr, opt.timeout)?;
    let (vhdr, value) = value_bytes(opt.value_size);
    let w = opt.pipeline.max(1);
    // window_of[key] = 1 + index of the last window that sent a first GET for the key.
    let mut window_of = vec![0u32; ids];
    let mut st = Stats { requests: trace.len(), ..Stats::default() };
    let mut expected: Vec<Tag> = Vec::with_capacity(4 * w);
    let mut next_tags: Vec<Tag> = Vec::with_capacity(4 * w);
    let mut next_buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut repeats: Vec<usize> = Vec::with_capacity(w);
    let mut pos = 0;
    let mut window_no: u32 = 0;
    let t0 = Instant::now();
    let count = |st: &mut Stats, p: usize, hit: bool| {
        if p >= opt.warmup {
            st.counted += 1;
            if hit {
                st.hits += 1;
            } else {
                st.misses += 1;
            }
        }
    };
    loop {
        // The carried commands (SETs and repeats of the previous window) go first.
        conn.wbuf.extend_from_slice(&next_buf);
        next_buf.clear();
        expected.clear();
        expected.append(&mut next_tags);
        repeats.clear();
        if pos < trace.len() {
            window_no += 1;
            let end = (pos + w).min(trace.len());
            for (p, &k) in trace.iter().enumerate().take(end).skip(pos) {
                if window_of[k as usize] == window_no {
                    repeats.push(p);
                } else {
                    window_of[k as usize] = window_no;
                    push_get(&mut conn.wbuf, k);
                    expected.push(Tag::Get(p));
                }
            }
            pos = end;
        }
        if expected.is_empty() {
            break;
        }
        conn.flush()?;
        for &tag in &expected {
            let r = conn.read(false)?;
            match tag {
                Tag::Get(p) | Tag::Repeat(p) => match r {
                    Reply::Bulk(Some(_)) => count(&mut st, p, true),
                    Reply::Bulk(None) => {
                        count(&mut st, p, false);
                        push_set(&mut next_buf, trace[p], &vhdr, &value);
                        next_tags.push(Tag::Set);
                    }
                    other => {
                        st.get_errors += 1;
                        count(&mut st, p, false);
                        st.first_error.get_or_insert(format!("GET: {other:?}"));
                    }
                },
                Tag::Set => {
                    st.sets += 1;
                    if !matches!(r, Reply::Status(ref s) if s == "OK") {
                        st.set_errors += 1;
                        st.first_error.get_or_insert(format!("SET: {r:?}"));
                    }
                }
            }
        }
        for &p in &repeats {
            push_get(&mut next_buf, trace[p]);
            next_tags.push(Tag::Repeat(p));
        }
    }
    st.elapsed = t0.elapsed();
    Ok(st)
}

/// Loads keys `0..keys` (SET, pipelined) with the replay's value size.
pub fn load(addr: &str, keys: usize, value_size: usize, timeout: Duration) -> io::Result<usize> {
    let mut conn = Conn::connect(addr, timeout)?;
    let (vhdr, value) = value_bytes(value_size);
    let mut errors = 0;
    let mut k = 0usize;
    while k < keys {
        let end = (k + 1000).min(keys);
        for id in k..end {
            push_set(&mut conn.wbuf, id as u32, &vhdr, &value);
        }
        conn.flush()?;
        for _ in k..end {
            if !matches!(conn.read(false)?, Reply::Status(ref s) if s == "OK") {
                errors += 1;
            }
        }
        k = end;
    }
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// A toy single-connection server: GET/SET on an unbounded map.
    fn toy_server() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut map: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut line = String::new();
            let mut out = Vec::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let n: usize = line.trim()[1..].parse().unwrap();
                let mut args = Vec::new();
                for _ in 0..n {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    let len: usize = line.trim()[1..].parse().unwrap();
                    let mut b = vec![0; len + 2];
                    r.read_exact(&mut b).unwrap();
                    b.truncate(len);
                    args.push(b);
                }
                match args[0].as_slice() {
                    b"GET" => match map.get(&args[1]) {
                        Some(v) => out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes()),
                        None => out.extend_from_slice(b"$-1\r\n"),
                    },
                    _ => {
                        map.insert(args[1].clone(), args[2].clone());
                        out.extend_from_slice(b"+OK\r\n");
                    }
                }
                if let (b"GET", Some(v)) = (args[0].as_slice(), map.get(&args[1])) {
                    out.extend_from_slice(v);
                    out.extend_from_slice(b"\r\n");
                }
                if r.buffer().is_empty() {
                    w.write_all(&out).unwrap();
                    out.clear();
                }
            }
        });
        addr
    }

    #[test]
    fn pipelined_replay_is_sequential_cache_aside() {
        // Repeats inside a window (0, 1, 0, 0) must be hits after the first miss.
        let trace: Vec<u32> = [0, 1, 0, 0, 2, 1, 3, 3, 0, 4, 4, 4, 5, 0, 1, 2]
            .iter()
            .cycle()
            .take(1000)
            .enumerate()
            .map(|(i, &k)| k + (i as u32 / 100) * 10)
            .collect();
        let mut seen = std::collections::HashSet::new();
        let expected_misses = trace.iter().filter(|&&k| seen.insert(k)).count();
        for pipeline in [1, 3, 16, 64, 1000] {
            let addr = toy_server();
            let opt = Options { pipeline, value_size: 10, warmup: 0, timeout: Duration::from_secs(5) };
            let st = replay(&addr, &trace, 200, &opt).unwrap();
            assert_eq!(st.misses, expected_misses, "pipeline {pipeline}");
            assert_eq!(st.hits + st.misses, trace.len());
            assert_eq!(st.sets, expected_misses);
            assert_eq!(st.set_errors + st.get_errors, 0);
        }
    }

    #[test]
    fn load_sets_every_key() {
        let addr = toy_server();
        assert_eq!(load(&addr, 2500, 100, Duration::from_secs(5)).unwrap(), 0);
    }
}
