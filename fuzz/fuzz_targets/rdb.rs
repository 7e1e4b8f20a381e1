//! Fuzzes RESTORE payloads and RDB files: decoding any bytes must end in a value or an error,
//! never a panic, a hang or an unbounded allocation; a value that decodes must build into a
//! key the way RESTORE and loading build it (or be refused as bad data), and a key that builds
//! must dump and decode back to the same value.
//!
//! The first byte picks the mode: payloads as given (the footer check stops most inputs), or
//! with a valid footer stamped on (so the object decoders see every input), or RDB files with
//! the checksum switched off (a stored 0), so records are decoded whatever their content.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The value with unordered collections sorted (a rebuilt hashtable may iterate differently).
fn normal(v: rdb::Value) -> rdb::Value {
    match v {
        rdb::Value::Set(mut m) => {
            m.sort();
            rdb::Value::Set(m)
        }
        rdb::Value::Hash(mut p) => {
            p.sort();
            rdb::Value::Hash(p)
        }
        other => other,
    }
}

fn build(key: &[u8], value: rdb::Value) {
    let settings = commands::Settings::default();
    let Ok(entry) = commands::serial::value_entry(key, value, None, 0, &settings) else { return };
    let back = commands::serial::entry_value(&entry);
    let payload = rdb::dump_payload(&back, &commands::serial::write_options(&settings, 11));
    let again = rdb::parse_dump_payload(&payload, 11).expect("a dumped key decodes");
    let rebuilt = commands::serial::value_entry(key, again, None, 0, &settings).expect("a dumped key rebuilds");
    assert_eq!(normal(commands::serial::entry_value(&rebuilt)), normal(back));
}

fn stamped(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&11u16.to_le_bytes());
    let crc = rdb::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            if let Ok(v) = rdb::parse_dump_payload(rest, 11) {
                build(b"k", v);
            }
        }
        1 => {
            if let Ok(v) = rdb::parse_dump_payload(&stamped(rest), 11) {
                build(b"k", v);
            }
        }
        _ => {
            let mut file = b"REDIS0011".to_vec();
            file.extend_from_slice(rest);
            let Ok(mut reader) = rdb::FileReader::new(&file[..]) else { return };
            while let Ok(Some(record)) = reader.next() {
                if let rdb::Record::Key { key, value, .. } = record {
                    build(&key, value);
                }
            }
        }
    }
});
