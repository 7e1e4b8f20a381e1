//! Round trips of random values through object bodies, DUMP payloads and RDB files, plus
//! the error paths of payload and file checking.

mod common;

use common::{as_rdb10, normalize, random_stream, random_value, Rng};
use rdb::*;

fn body_roundtrip(v: &Value, opts: &WriteOptions) -> (u8, Value) {
    let mut body = Vec::new();
    let t = write_value(&mut body, v, opts);
    let mut src = SliceSource::new(&body);
    let back = read_value(t, &mut src).unwrap_or_else(|e| panic!("type {t}: {e} for {v:?}"));
    assert!(src.remaining().is_empty(), "type {t} left bytes");
    // The same bytes through a reader source decode identically.
    let mut rsrc = ReadSource::new(&body[..]);
    assert_eq!(read_value(t, &mut rsrc).unwrap(), back);
    assert_eq!(rsrc.bytes_read(), body.len() as u64);
    assert_eq!(rsrc.crc(), crc64(&body));
    (t, back)
}

#[test]
fn random_values_roundtrip_through_bodies() {
    let rng = Rng::new(0x5eed_0001);
    let defaults = WriteOptions::default();
    let uncompressed = WriteOptions { compress: false, ..WriteOptions::default() };
    let mut types_seen = std::collections::BTreeSet::new();
    for i in 0..400 {
        let v = random_value(&rng, i % 4 == 0);
        let opts = if i % 3 == 0 { &uncompressed } else { &defaults };
        let (t, back) = body_roundtrip(&v, opts);
        types_seen.insert(t);
        assert_eq!(normalize(&back), normalize(&v), "type {t}");
        let mut body10 = Vec::new();
        let t10 = write_value_for_version(&mut body10, &v, opts, 10);
        assert!(t10 != TYPE_SET_LISTPACK && t10 != TYPE_STREAM_LISTPACKS_3);
        let back10 = read_value(t10, &mut SliceSource::new(&body10)).unwrap();
        assert_eq!(normalize(&back10), normalize(&as_rdb10(&v)));
    }
    for t in [
        TYPE_STRING,
        TYPE_SET,
        TYPE_HASH,
        TYPE_ZSET_2,
        TYPE_SET_INTSET,
        TYPE_HASH_LISTPACK,
        TYPE_ZSET_LISTPACK,
        TYPE_LIST_QUICKLIST_2,
        TYPE_SET_LISTPACK,
        TYPE_STREAM_LISTPACKS_3,
    ] {
        assert!(types_seen.contains(&t), "type {t} never produced");
    }
}

#[test]
fn boundary_strings_and_lists() {
    let mut items: Vec<Vec<u8>> = common::BOUNDARY_INTS.iter().map(|i| i.to_string().into_bytes()).collect();
    for s in ["", "007", "-0", "+1", "1.5", "\u{0}\u{ff}"] {
        items.push(s.as_bytes().to_vec());
    }
    items.push(vec![b'z'; 8192]); // exactly the node limit: still a packed node
    items.push(vec![b'y'; 8193]); // plain node
    items.push(vec![0u8; 100_000]); // plain node, compressible
    for s in &items {
        let v = Value::String(s.clone());
        assert_eq!(body_roundtrip(&v, &WriteOptions::default()).1, v);
    }
    let list = Value::List(items.iter().cycle().take(5000).cloned().collect());
    for fill in [-5, -2, -1, 0, 1, 7, 128] {
        let opts = WriteOptions { list_max_listpack_size: fill, ..WriteOptions::default() };
        assert_eq!(body_roundtrip(&list, &opts).1, list, "fill {fill}");
    }
}

#[test]
fn special_scores_roundtrip() {
    let scores = [f64::INFINITY, f64::NEG_INFINITY, 0.0, 1.5, -2.0, 1e300, 5e-324, 4.611686018427388e18, 1e17];
    let pairs: Vec<(Vec<u8>, f64)> = scores.iter().enumerate().map(|(i, s)| (vec![b'a' + i as u8], *s)).collect();
    let v = Value::ZSet(pairs.clone());
    let (t, back) = body_roundtrip(&v, &WriteOptions::default());
    assert_eq!(t, TYPE_ZSET_LISTPACK);
    assert_eq!(normalize(&back), normalize(&v));
    // The listpack form is sorted by score.
    if let Value::ZSet(p) = &back {
        assert!(p.windows(2).all(|w| w[0].1 <= w[1].1));
    }
    let opts = WriteOptions { zset_max_listpack_entries: 0, ..WriteOptions::default() };
    let (t, back) = body_roundtrip(&v, &opts);
    assert_eq!(t, TYPE_ZSET_2);
    assert_eq!(back, v);
}

#[test]
fn streams_roundtrip_with_small_nodes() {
    let rng = Rng::new(77);
    for _ in 0..30 {
        let s = Value::Stream(Box::new(random_stream(&rng, 400)));
        for (entries, bytes) in [(1, 0), (3, 100), (100, 4096), (0, 0)] {
            let opts =
                WriteOptions { stream_node_max_entries: entries, stream_node_max_bytes: bytes, ..Default::default() };
            assert_eq!(body_roundtrip(&s, &opts).1, s);
        }
    }
}

#[test]
fn dump_payloads() {
    let rng = Rng::new(0xd0_0d);
    for i in 0..200 {
        let v = random_value(&rng, i % 5 == 0);
        let p = dump_payload(&v, &WriteOptions::default());
        assert_eq!(dump_payload_version(&p), Some(11));
        assert_eq!(normalize(&parse_dump_payload(&p, 11).unwrap()), normalize(&v));
        assert!(matches!(parse_dump_payload(&p, 10), Err(Error::Version(11))));

        let lowest = WriteOptions { lowest_dump_version: true, ..WriteOptions::default() };
        let p = dump_payload(&v, &lowest);
        let expect = if matches!(p[0], TYPE_SET_LISTPACK | TYPE_STREAM_LISTPACKS_3) { 11 } else { 10 };
        assert_eq!(dump_payload_version(&p), Some(expect));

        let v10 = WriteOptions { max_version: 10, ..WriteOptions::default() };
        let p = dump_payload(&v, &v10);
        assert_eq!(dump_payload_version(&p), Some(10));
        assert_eq!(normalize(&parse_dump_payload(&p, 10).unwrap()), normalize(&as_rdb10(&v)));
    }
}

#[test]
fn dump_payload_errors() {
    let v = Value::String(b"hello".to_vec());
    let p = dump_payload(&v, &WriteOptions::default());
    // type 0, raw string, version 11, crc
    assert_eq!(&p[..8], &[0, 5, b'h', b'e', b'l', b'l', b'o', 11]);
    assert_eq!(p[8], 0);
    let mut bad_crc = p.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    assert!(matches!(parse_dump_payload(&bad_crc, 11), Err(Error::Checksum)));
    let mut zero_crc = p.clone();
    let n = zero_crc.len();
    zero_crc[n - 8..].fill(0);
    assert!(matches!(parse_dump_payload(&zero_crc, 11), Err(Error::Checksum)), "zero CRC is still checked");
    let mut bad_data = p.clone();
    bad_data[2] = b'j';
    assert!(matches!(parse_dump_payload(&bad_data, 11), Err(Error::Checksum)));
    assert!(matches!(parse_dump_payload(&p[..9], 11), Err(Error::BadFormat(_))));
    assert!(parse_dump_payload(&[], 11).is_err());

    // A valid footer around a body with trailing garbage, or an empty list, is refused.
    let with_footer = |body: &[u8], version: u16| {
        let mut out = body.to_vec();
        out.extend_from_slice(&version.to_le_bytes());
        let crc = crc64(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    };
    assert!(matches!(parse_dump_payload(&with_footer(&[0, 1, b'a', 0], 11), 11), Err(Error::BadFormat(_))));
    assert!(matches!(parse_dump_payload(&with_footer(&[TYPE_LIST, 0], 11), 11), Err(Error::BadFormat(_))));
    assert!(matches!(parse_dump_payload(&with_footer(&[0, 1, b'a'], 12), 11), Err(Error::Version(12))));
    assert_eq!(parse_dump_payload(&with_footer(&[0, 1, b'a'], 6), 11).unwrap(), Value::String(b"a".to_vec()));
    assert!(matches!(parse_dump_payload(&with_footer(&[7, 1, b'a'], 11), 11), Err(Error::Unsupported(_))));
}

fn sample_values(rng: &Rng, n: usize) -> Vec<Value> {
    (0..n).map(|i| random_value(rng, i % 7 == 0)).collect()
}

#[test]
fn files_roundtrip() {
    let rng = Rng::new(0xf11e);
    let opts = WriteOptions::default();
    let db0 = sample_values(&rng, 40);
    let db3 = sample_values(&rng, 25);
    let mut w = FileWriter::new(Vec::new(), 11).unwrap();
    w.aux(b"redis-ver", b"7.2.4").unwrap();
    w.aux(b"redis-bits", b"64").unwrap();
    w.function(b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)").unwrap();
    w.select_db(0).unwrap();
    w.resize_db(db0.len() as u64, 2).unwrap();
    let mut expected = vec![
        Record::Aux { key: b"redis-ver".to_vec(), value: b"7.2.4".to_vec() },
        Record::Aux { key: b"redis-bits".to_vec(), value: b"64".to_vec() },
        Record::Function(b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)".to_vec()),
        Record::SelectDb(0),
        Record::ResizeDb { keys: db0.len() as u64, expires: 2 },
    ];
    for (i, v) in db0.iter().enumerate() {
        let key = format!("k{i}").into_bytes();
        let expire_ms = (i % 3 == 0).then_some(1_900_000_000_000 + i as i64);
        w.key_value(&key, v, expire_ms, &opts).unwrap();
        expected.push(Record::Key { key, value: v.clone(), expire_ms, idle_secs: None, freq: None });
    }
    w.select_db(3).unwrap();
    expected.push(Record::SelectDb(3));
    for (i, v) in db3.iter().enumerate() {
        let key = format!("db3:{i}").into_bytes();
        let mut body = Vec::new();
        let t = write_value(&mut body, v, &opts);
        let idle_secs = (i % 2 == 0).then_some(i as u64 * 1000);
        let freq = (i % 2 == 1).then_some(i as u8);
        let expire_ms = (i % 4 == 0).then_some(-5);
        w.key_raw(&key, t, &body, expire_ms, idle_secs, freq).unwrap();
        expected.push(Record::Key { key, value: v.clone(), expire_ms, idle_secs, freq });
    }
    // An empty collection is skipped by the reader, with its metadata.
    w.key_raw(b"empty", TYPE_LIST_QUICKLIST_2, &[0], Some(1), Some(2), Some(3)).unwrap();
    w.key_value(b"last", &Value::String(b"x".to_vec()), None, &opts).unwrap();
    expected.push(Record::Key {
        key: b"last".to_vec(),
        value: Value::String(b"x".to_vec()),
        expire_ms: None,
        idle_secs: None,
        freq: None,
    });
    let written = w.bytes_written();
    let file = w.finish().unwrap();
    assert_eq!(file.len() as u64, written + 1 + 8);
    assert_eq!(&file[..9], b"REDIS0011");
    assert_eq!(crc64(&file[..file.len() - 8]).to_le_bytes(), file[file.len() - 8..]);

    let got = read_all(&file).unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        match (g, e) {
            (Record::Key { value: gv, .. }, Record::Key { value: ev, .. }) => {
                assert_eq!(normalize(gv), normalize(ev));
                let strip = |r: &Record| match r {
                    Record::Key { key, expire_ms, idle_secs, freq, .. } => (key.clone(), *expire_ms, *idle_secs, *freq),
                    _ => unreachable!(),
                };
                assert_eq!(strip(g), strip(e));
            }
            _ => assert_eq!(g, e),
        }
    }
    let mut r = FileReader::new(&file[..]).unwrap();
    while r.next().unwrap().is_some() {}
    assert_eq!(r.bytes_read(), file.len() as u64);
    assert!(r.next().unwrap().is_none(), "stays at the end");

    // A stored zero checksum means "disabled" and is accepted; any other mismatch is not.
    let mut zero = file.clone();
    let n = zero.len();
    zero[n - 8..].fill(0);
    assert_eq!(read_all(&zero).unwrap().len(), expected.len());
    let mut bad = file.clone();
    bad[n - 1] ^= 0x40;
    assert!(matches!(read_all(&bad), Err(Error::Checksum)));
    assert!(matches!(read_all(&file[..n - 3]), Err(Error::Truncated)));
}

fn read_all(file: &[u8]) -> Result<Vec<Record>> {
    let mut r = FileReader::new(file)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next()? {
        out.push(rec);
    }
    Ok(out)
}

#[test]
fn file_versions_and_opcodes() {
    // Version 10 writer: values readable by Redis 7.0.
    let rng = Rng::new(10);
    let mut w = FileWriter::new(Vec::new(), 10).unwrap();
    let values = sample_values(&rng, 30);
    for (i, v) in values.iter().enumerate() {
        w.key_value(format!("{i}").as_bytes(), v, None, &WriteOptions::default()).unwrap();
    }
    let file = w.finish().unwrap();
    assert_eq!(&file[..9], b"REDIS0010");
    let recs = read_all(&file).unwrap();
    for (rec, v) in recs.iter().zip(&values) {
        let Record::Key { value, .. } = rec else { panic!("{rec:?}") };
        assert_eq!(normalize(value), normalize(&as_rdb10(v)));
    }

    // Version 4 has no trailing checksum.
    let mut w = FileWriter::new(Vec::new(), 4).unwrap();
    w.select_db(0).unwrap();
    let file = w.finish().unwrap();
    assert_eq!(file, b"REDIS0004\xfe\x00\xff");
    assert_eq!(read_all(&file).unwrap(), vec![Record::SelectDb(0)]);

    // Hand-made file: seconds expire (converted to ms), then an int-encoded key and value.
    let mut f = b"REDIS0003".to_vec();
    f.push(OPCODE_EXPIRETIME);
    f.extend_from_slice(&1_700_000_000i32.to_le_bytes());
    f.extend_from_slice(&[TYPE_STRING, 0xC0, 7, 1, b'v', OPCODE_EOF]);
    assert_eq!(
        read_all(&f).unwrap(),
        vec![Record::Key {
            key: b"7".to_vec(),
            value: Value::String(b"v".to_vec()),
            expire_ms: Some(1_700_000_000_000),
            idle_secs: None,
            freq: None
        }]
    );

    let header_err = |h: &[u8]| FileReader::new(h).err();
    assert!(matches!(header_err(b"REDIS0012"), Some(Error::Version(12))));
    assert!(matches!(header_err(b"REDIS0000"), Some(Error::Version(0))));
    assert!(matches!(header_err(b"REDIX0011"), Some(Error::BadFormat(_))));
    assert!(matches!(header_err(b"REDIS00a1"), Some(Error::BadFormat(_))));
    assert!(matches!(header_err(b"REDIS"), Some(Error::Truncated)));

    for (op, text) in [(OPCODE_MODULE_AUX, "module"), (OPCODE_FUNCTION_PRE_GA, "release candidates")] {
        let mut f = b"REDIS0011".to_vec();
        f.push(op);
        match read_all(&f) {
            Err(Error::Unsupported(m)) => assert!(m.contains(text), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    let mut f = b"REDIS0011".to_vec();
    f.extend_from_slice(&[TYPE_MODULE_2, 1, b'k']);
    assert!(matches!(read_all(&f), Err(Error::Unsupported(_))));
    assert!(FileWriter::new(Vec::new(), 12).is_err());
}
