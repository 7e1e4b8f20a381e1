//! Mutation fuzzing: random flips, truncations, insertions and deletions applied to valid
//! DUMP payloads, object bodies and RDB files must decode to `Ok` or `Err`, never panic,
//! hang or allocate without bound.

mod common;

use common::{random_value, Rng};
use rdb::*;

const ITERATIONS: usize = 20_000;

/// Applies one to four random mutations.
fn mutate(rng: &Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.range(1, 4) {
        if v.is_empty() {
            v.push(rng.next_u64() as u8);
            continue;
        }
        let at = rng.below(v.len() as u64) as usize;
        match rng.below(7) {
            0 => v[at] ^= 1 << rng.below(8),
            1 => v[at] = rng.next_u64() as u8,
            2 => v[at] = *rng.pick(&[0x00, 0x3f, 0x40, 0x7f, 0x80, 0x81, 0xC0, 0xC3, 0xF0, 0xFE, 0xFF]),
            3 => v.truncate(at),
            4 => v.insert(at, rng.next_u64() as u8),
            5 => {
                v.remove(at);
            }
            _ => {
                // Overwrite with a big 32-bit length marker to exercise allocation limits.
                let tail = [0x80, 0xff, 0xff, 0xff, 0xf0];
                for (k, b) in tail.iter().enumerate() {
                    if let Some(slot) = v.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
        }
    }
    v
}

/// Re-stamps a DUMP payload's CRC so the decoder runs past the checksum check.
fn fix_crc(p: &mut [u8]) {
    if p.len() >= 10 {
        let n = p.len();
        let crc = crc64(&p[..n - 8]);
        p[n - 8..].copy_from_slice(&crc.to_le_bytes());
    }
}

fn exercise_payload(p: &[u8]) {
    let _ = parse_dump_payload(p, 11);
    let mut fixed = p.to_vec();
    fix_crc(&mut fixed);
    let _ = parse_dump_payload(&fixed, 11);
    if let Some((&t, body)) = p.split_first() {
        let _ = read_value(t, &mut SliceSource::new(body));
        let _ = read_value(t, &mut ReadSource::new(body));
    }
}

fn exercise_file(f: &[u8]) {
    let Ok(mut r) = FileReader::new(f) else { return };
    // Every record consumes at least one byte, so this loop ends; the cap is a safety net.
    for _ in 0..100_000 {
        match r.next() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    assert!(r.bytes_read() <= f.len() as u64);
}

fn corpus(rng: &Rng) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let opts = WriteOptions::default();
    let small = WriteOptions { stream_node_max_entries: 3, list_max_listpack_size: 4, ..WriteOptions::default() };
    let mut payloads = Vec::new();
    for i in 0..60 {
        let v = random_value(rng, false);
        payloads.push(dump_payload(&v, if i % 2 == 0 { &opts } else { &small }));
    }
    // Hand-made bodies of the read-only encodings, wrapped as payloads.
    let zl = [13, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0xF2, 0xFF]; // ziplist [1]
    let zl2 = [16, 0, 0, 0, 12, 0, 0, 0, 2, 0, 0, 0xF2, 2, 0x01, b'a', 0xFF]; // ziplist [1, "a"]
    let zl3 = [16, 0, 0, 0, 13, 0, 0, 0, 2, 0, 0, 0x01, b'a', 3, 0xF2, 0xFF]; // ziplist ["a", 1]
    let zm = [1, 1, b'f', 1, 0, b'v', 0xFF];
    let is = [2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 7, 0];
    for (t, blob) in [
        (TYPE_LIST_ZIPLIST, &zl[..]),
        (TYPE_HASH_ZIPLIST, &zl2[..]),
        (TYPE_ZSET_ZIPLIST, &zl3[..]),
        (TYPE_HASH_ZIPMAP, &zm[..]),
        (TYPE_SET_INTSET, &is[..]),
    ] {
        let mut p = vec![t];
        write_raw_string(&mut p, blob);
        p.extend_from_slice(&11u16.to_le_bytes());
        p.extend_from_slice(&[0; 8]);
        fix_crc(&mut p);
        payloads.push(p);
    }
    let mut ql = vec![TYPE_LIST_QUICKLIST, 1];
    write_raw_string(&mut ql, &zl);
    ql.extend_from_slice(&11u16.to_le_bytes());
    ql.extend_from_slice(&[0; 8]);
    fix_crc(&mut ql);
    payloads.push(ql);

    let mut files = Vec::new();
    for version in [11, 10, 4] {
        let mut w = FileWriter::new(Vec::new(), version).unwrap();
        w.aux(b"redis-ver", b"7.2.0").unwrap();
        w.function(b"#!lua name=lib\n").unwrap();
        w.select_db(0).unwrap();
        w.resize_db(8, 1).unwrap();
        for i in 0..8 {
            let v = random_value(rng, false);
            let mut body = Vec::new();
            let t = write_value(&mut body, &v, &small);
            w.key_raw(format!("k{i}").as_bytes(), t, &body, Some(i), Some(i as u64), Some(i as u8)).unwrap();
        }
        files.push(w.finish().unwrap());
    }
    (payloads, files)
}

#[test]
fn mutated_inputs_never_panic() {
    let rng = Rng::new(0xf422);
    let (payloads, files) = corpus(&rng);
    for (i, p) in payloads.iter().enumerate() {
        assert!(parse_dump_payload(p, 11).is_ok(), "corpus payload {i} must be valid");
    }
    for i in 0..ITERATIONS {
        if i % 5 == 0 {
            let f = rng.pick(&files);
            exercise_file(&mutate(&rng, f));
        } else {
            let p = rng.pick(&payloads);
            exercise_payload(&mutate(&rng, p));
        }
    }
}

#[test]
fn every_truncation_fails_cleanly() {
    let rng = Rng::new(31);
    let (payloads, files) = corpus(&rng);
    for p in payloads.iter().take(20) {
        for cut in 0..p.len() {
            assert!(parse_dump_payload(&p[..cut], 11).is_err());
            let body = &p[1..cut.max(1)];
            let _ = read_value(p[0], &mut SliceSource::new(body));
        }
    }
    let f = &files[0];
    for cut in 0..f.len() {
        let mut ok = true;
        if let Ok(mut r) = FileReader::new(&f[..cut]) {
            loop {
                match r.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
        } else {
            ok = false;
        }
        assert!(!ok, "a file cut at {cut} of {} must not read as complete", f.len());
    }
}

#[test]
fn huge_declared_sizes_do_not_allocate() {
    // A string claiming 2^64-1 bytes and a list claiming 2^64-1 elements, over a reader.
    let mut s = vec![0x81];
    s.extend_from_slice(&[0xff; 8]);
    s.extend_from_slice(b"abc");
    assert!(matches!(read_value(TYPE_STRING, &mut ReadSource::new(&s[..])), Err(Error::Truncated)));
    assert!(matches!(read_value(TYPE_LIST, &mut ReadSource::new(&s[..])), Err(Error::Truncated)));
    assert!(matches!(read_value(TYPE_LIST, &mut SliceSource::new(&s)), Err(Error::Truncated)));
    // LZF claiming a 1 TiB result from a few bytes.
    let mut lzf = vec![0xC3, 2, 0x81];
    lzf.extend_from_slice(&(1u64 << 40).to_be_bytes());
    lzf.extend_from_slice(&[0, b'a']);
    assert!(read_value(TYPE_STRING, &mut SliceSource::new(&lzf)).is_err());
    let mut f = b"REDIS0011".to_vec();
    f.push(OPCODE_AUX);
    f.extend_from_slice(&s);
    assert!(matches!(FileReader::new(&f[..]).unwrap().next(), Err(Error::Truncated)));
}
