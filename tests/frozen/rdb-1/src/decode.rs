//! Decoding one object body given its type byte: every object type of RDB versions 1..=11.
//!
//! Invariants of what comes out (see [`crate::value`]): set members, hash fields and sorted
//! set members are unique (duplicates are an error, as Redis reports them), scores are not
//! NaN, and integers stored in compact encodings come back as their decimal text. Empty
//! collections are returned as they are; callers decide whether to keep them (Redis skips
//! them when loading and rejects them in RESTORE).

use std::collections::HashSet;
use std::hash::Hash;

use crate::consts::*;
use crate::encoding::{read_binary_double, read_len, read_string, read_string_double};
use crate::error::{Error, Result};
use crate::intset::decode_intset;
use crate::listpack::{decode_listpack, Entry};
use crate::num::{format_i64, parse_double};
use crate::source::{capacity_hint, Source};
use crate::stream::read_stream;
use crate::value::Value;
use crate::ziplist::decode_ziplist;
use crate::zipmap::decode_zipmap;

/// Decodes the body of an object whose type byte is `type_byte`.
pub fn read_value<S: Source + ?Sized>(type_byte: u8, src: &mut S) -> Result<Value> {
    match type_byte {
        TYPE_STRING => Ok(Value::String(read_string(src)?)),
        TYPE_LIST => Ok(Value::List(read_string_seq(src, 1)?)),
        TYPE_SET => {
            let members = read_string_seq(src, 1)?;
            check_unique(members.iter().map(|m| m.as_slice()), "duplicate set member")?;
            Ok(Value::Set(members))
        }
        TYPE_ZSET | TYPE_ZSET_2 => read_plain_zset(type_byte, src),
        TYPE_HASH => read_plain_hash(src),
        TYPE_MODULE_PRE_GA | TYPE_MODULE_2 => Err(Error::Unsupported("module values are not supported".into())),
        TYPE_HASH_ZIPMAP => {
            let blob = read_string(src)?;
            let pairs = decode_zipmap(&blob)?.into_iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            hash_value(pairs)
        }
        TYPE_LIST_ZIPLIST => {
            let blob = read_string(src)?;
            Ok(Value::List(entries_to_bytes(&decode_ziplist(&blob)?)))
        }
        TYPE_SET_INTSET => {
            let blob = read_string(src)?;
            Ok(Value::Set(decode_intset(&blob)?.into_iter().map(format_i64).collect()))
        }
        TYPE_ZSET_ZIPLIST => {
            let blob = read_string(src)?;
            packed_zset(&decode_ziplist(&blob)?)
        }
        TYPE_HASH_ZIPLIST => {
            let blob = read_string(src)?;
            packed_hash(&decode_ziplist(&blob)?)
        }
        TYPE_LIST_QUICKLIST => read_quicklist(src),
        TYPE_LIST_QUICKLIST_2 => read_quicklist_2(src),
        TYPE_HASH_LISTPACK => {
            let blob = read_string(src)?;
            packed_hash(&decode_listpack(&blob)?)
        }
        TYPE_ZSET_LISTPACK => {
            let blob = read_string(src)?;
            packed_zset(&decode_listpack(&blob)?)
        }
        TYPE_SET_LISTPACK => {
            let blob = read_string(src)?;
            let members = entries_to_bytes(&decode_listpack(&blob)?);
            check_unique(members.iter().map(|m| m.as_slice()), "duplicate set member")?;
            Ok(Value::Set(members))
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            Ok(Value::Stream(Box::new(read_stream(type_byte, src)?)))
        }
        other => Err(Error::Unsupported(format!("unknown RDB object type {other}"))),
    }
}

/// Reads a count then that many strings. `per_item` is how many strings make one counted
/// item (the count is checked against the remaining input before anything is reserved).
fn read_string_seq<S: Source + ?Sized>(src: &mut S, per_item: u64) -> Result<Vec<Vec<u8>>> {
    let count = read_len(src)?;
    let total = count.checked_mul(per_item).ok_or(Error::BadFormat("element count overflows"))?;
    src.check_count(total)?;
    let mut out = Vec::with_capacity(capacity_hint(total));
    for _ in 0..total {
        out.push(read_string(src)?);
    }
    Ok(out)
}

fn read_plain_hash<S: Source + ?Sized>(src: &mut S) -> Result<Value> {
    let flat = read_string_seq(src, 2)?;
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        pairs.push((f, v));
    }
    hash_value(pairs)
}

fn read_plain_zset<S: Source + ?Sized>(type_byte: u8, src: &mut S) -> Result<Value> {
    let count = read_len(src)?;
    src.check_count(count.saturating_mul(2))?;
    let mut pairs = Vec::with_capacity(capacity_hint(count));
    for _ in 0..count {
        let member = read_string(src)?;
        let score = if type_byte == TYPE_ZSET_2 { read_binary_double(src)? } else { read_string_double(src)? };
        pairs.push((member, score));
    }
    zset_value(pairs)
}

/// Type 14: a count of nodes, each a ziplist blob. Empty nodes are skipped, as Redis does.
fn read_quicklist<S: Source + ?Sized>(src: &mut S) -> Result<Value> {
    let nodes = read_len(src)?;
    src.check_count(nodes)?;
    let mut items = Vec::new();
    for _ in 0..nodes {
        let blob = read_string(src)?;
        items.extend(entries_to_bytes(&decode_ziplist(&blob)?));
    }
    Ok(Value::List(items))
}

/// Type 18: a count of nodes, each a container kind (plain or packed) then a blob: the
/// element itself for plain nodes, a listpack for packed ones.
fn read_quicklist_2<S: Source + ?Sized>(src: &mut S) -> Result<Value> {
    let nodes = read_len(src)?;
    src.check_count(nodes.saturating_mul(2))?;
    let mut items = Vec::new();
    for _ in 0..nodes {
        let container = read_len(src)?;
        let blob = read_string(src)?;
        match container {
            QUICKLIST_NODE_PLAIN => items.push(blob),
            QUICKLIST_NODE_PACKED => items.extend(entries_to_bytes(&decode_listpack(&blob)?)),
            _ => return Err(Error::BadFormat("invalid quicklist node container")),
        }
    }
    Ok(Value::List(items))
}

fn entries_to_bytes(entries: &[Entry<'_>]) -> Vec<Vec<u8>> {
    entries.iter().map(Entry::to_bytes).collect()
}

/// Field/value pairs from a ziplist or listpack (alternating entries).
fn packed_hash(entries: &[Entry<'_>]) -> Result<Value> {
    if entries.len() & 1 != 0 {
        return Err(Error::BadFormat("hash blob has an odd number of entries"));
    }
    let pairs = entries.chunks_exact(2).map(|p| (p[0].to_bytes(), p[1].to_bytes())).collect();
    hash_value(pairs)
}

/// Member/score pairs from a ziplist or listpack (alternating entries).
fn packed_zset(entries: &[Entry<'_>]) -> Result<Value> {
    if entries.len() & 1 != 0 {
        return Err(Error::BadFormat("sorted set blob has an odd number of entries"));
    }
    let mut pairs = Vec::with_capacity(entries.len() / 2);
    for p in entries.chunks_exact(2) {
        let score = match p[1] {
            Entry::Int(v) => v as f64,
            Entry::Str(s) => parse_double(s).ok_or(Error::BadFormat("invalid sorted set score"))?,
        };
        pairs.push((p[0].to_bytes(), score));
    }
    zset_value(pairs)
}

fn hash_value(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Value> {
    check_unique(pairs.iter().map(|(f, _)| f.as_slice()), "duplicate hash field")?;
    Ok(Value::Hash(pairs))
}

fn zset_value(pairs: Vec<(Vec<u8>, f64)>) -> Result<Value> {
    if pairs.iter().any(|(_, s)| s.is_nan()) {
        return Err(Error::BadFormat("sorted set score is NaN"));
    }
    check_unique(pairs.iter().map(|(m, _)| m.as_slice()), "duplicate sorted set member")?;
    Ok(Value::ZSet(pairs))
}

/// Fails with `what` if any item repeats.
pub(crate) fn check_unique<T: Eq + Hash>(items: impl ExactSizeIterator<Item = T>, what: &'static str) -> Result<()> {
    let mut seen = HashSet::with_capacity(items.len());
    for item in items {
        if !seen.insert(item) {
            return Err(Error::BadFormat(what));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{write_len, write_raw_string};
    use crate::listpack::ListpackBuilder;
    use crate::source::SliceSource;

    fn decode(type_byte: u8, body: &[u8]) -> Result<Value> {
        let mut src = SliceSource::new(body);
        let v = read_value(type_byte, &mut src)?;
        assert!(src.remaining().is_empty(), "type {type_byte} left bytes");
        Ok(v)
    }

    fn strs(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        items.iter().map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec())).collect()
    }

    /// A ziplist of short strings (6-bit lengths, 1-byte previous lengths), by hand.
    fn ziplist(items: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0u8;
        let mut last = 0;
        for it in items {
            last = body.len();
            let start = body.len();
            body.push(prev);
            body.push(it.len() as u8);
            body.extend_from_slice(it);
            prev = (body.len() - start) as u8;
        }
        let mut zl = ((10 + body.len() + 1) as u32).to_le_bytes().to_vec();
        zl.extend_from_slice(&((10 + last) as u32).to_le_bytes());
        zl.extend_from_slice(&(items.len() as u16).to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(0xFF);
        zl
    }

    fn as_string(blob: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_raw_string(&mut out, blob);
        out
    }

    #[test]
    fn plain_types() {
        // List: 2 items, "a" then int8-encoded 5.
        assert_eq!(decode(TYPE_LIST, &[2, 1, b'a', 0xC0, 5]).unwrap(), Value::List(strs(&["a", "5"])));
        assert_eq!(decode(TYPE_SET, &[2, 1, b'a', 1, b'b']).unwrap(), Value::Set(strs(&["a", "b"])));
        assert!(decode(TYPE_SET, &[2, 1, b'a', 1, b'a']).is_err());
        assert_eq!(decode(TYPE_HASH, &[1, 1, b'f', 1, b'v']).unwrap(), Value::Hash(pairs(&[("f", "v")])));
        assert!(decode(TYPE_HASH, &[2, 1, b'f', 1, b'v', 1, b'f', 1, b'w']).is_err());
        // Sorted set with text scores: "a" 1.5, "b" +inf (254).
        assert_eq!(
            decode(TYPE_ZSET, &[2, 1, b'a', 3, b'1', b'.', b'5', 1, b'b', 254]).unwrap(),
            Value::ZSet(vec![(b"a".to_vec(), 1.5), (b"b".to_vec(), f64::INFINITY)])
        );
        assert!(decode(TYPE_ZSET, &[1, 1, b'a', 253]).is_err()); // NaN score
        let mut z2 = vec![1, 1, b'a'];
        z2.extend_from_slice(&(-2.25f64).to_le_bytes());
        assert_eq!(decode(TYPE_ZSET_2, &z2).unwrap(), Value::ZSet(vec![(b"a".to_vec(), -2.25)]));
        let mut nan = vec![1, 1, b'a'];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        assert!(decode(TYPE_ZSET_2, &nan).is_err());
        // Counts larger than the input fail before reserving anything.
        assert!(matches!(decode(TYPE_LIST, &[0x80, 0xff, 0xff, 0xff, 0xff]), Err(Error::Truncated)));
        assert!(matches!(
            decode(TYPE_HASH, &[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::BadFormat(_))
        ));
    }

    #[test]
    fn unsupported_types() {
        for t in [TYPE_MODULE_PRE_GA, TYPE_MODULE_2] {
            match decode(t, &[]) {
                Err(Error::Unsupported(m)) => assert_eq!(m, "module values are not supported"),
                other => panic!("{other:?}"),
            }
        }
        for t in [8, 22, 100, 244] {
            assert!(matches!(decode(t, &[]), Err(Error::Unsupported(_))));
        }
    }

    #[test]
    fn ziplist_and_zipmap_types() {
        let zm = [1, 1, b'f', 1, 0, b'v', 0xFF];
        assert_eq!(decode(TYPE_HASH_ZIPMAP, &as_string(&zm)).unwrap(), Value::Hash(pairs(&[("f", "v")])));
        let zl = ziplist(&[b"x", b"y"]);
        assert_eq!(decode(TYPE_LIST_ZIPLIST, &as_string(&zl)).unwrap(), Value::List(strs(&["x", "y"])));
        assert_eq!(decode(TYPE_HASH_ZIPLIST, &as_string(&zl)).unwrap(), Value::Hash(pairs(&[("x", "y")])));
        assert!(decode(TYPE_HASH_ZIPLIST, &as_string(&ziplist(&[b"x"]))).is_err());
        let zset = ziplist(&[b"m", b"2.5", b"n", b"inf"]);
        assert_eq!(
            decode(TYPE_ZSET_ZIPLIST, &as_string(&zset)).unwrap(),
            Value::ZSet(vec![(b"m".to_vec(), 2.5), (b"n".to_vec(), f64::INFINITY)])
        );
        assert!(decode(TYPE_ZSET_ZIPLIST, &as_string(&ziplist(&[b"m", b"abc"]))).is_err());
        // Quicklist of two ziplist nodes, the second one empty (skipped).
        let mut ql = vec![2];
        ql.extend(as_string(&ziplist(&[b"a", b"b"])));
        ql.extend(as_string(&ziplist(&[])));
        assert_eq!(decode(TYPE_LIST_QUICKLIST, &ql).unwrap(), Value::List(strs(&["a", "b"])));
        // Intset of width 2: 3, 7.
        let is = [2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 7, 0];
        assert_eq!(decode(TYPE_SET_INTSET, &as_string(&is)).unwrap(), Value::Set(strs(&["3", "7"])));
    }

    #[test]
    fn listpack_types() {
        let mut lp = ListpackBuilder::new();
        for s in ["f1", "v1", "f2", "12"] {
            lp.push_str(s.as_bytes());
        }
        let lp = lp.finish();
        assert_eq!(
            decode(TYPE_HASH_LISTPACK, &as_string(&lp)).unwrap(),
            Value::Hash(pairs(&[("f1", "v1"), ("f2", "12")]))
        );
        assert_eq!(decode(TYPE_SET_LISTPACK, &as_string(&lp)).unwrap(), Value::Set(strs(&["f1", "v1", "f2", "12"])));
        let z = decode(TYPE_ZSET_LISTPACK, &as_string(&lp));
        assert!(z.is_err(), "v1 is not a score");
        let mut zl = ListpackBuilder::new();
        zl.push_str(b"a");
        zl.push_int(-3);
        zl.push_str(b"b");
        zl.push_str(b"0.5");
        assert_eq!(
            decode(TYPE_ZSET_LISTPACK, &as_string(&zl.finish())).unwrap(),
            Value::ZSet(vec![(b"a".to_vec(), -3.0), (b"b".to_vec(), 0.5)])
        );
        // Quicklist 2: a packed node ["x", "1"] then a plain node "big".
        let mut node = ListpackBuilder::new();
        node.push_str(b"x");
        node.push_str(b"1");
        let mut ql = vec![2];
        write_len(&mut ql, QUICKLIST_NODE_PACKED);
        ql.extend(as_string(&node.finish()));
        write_len(&mut ql, QUICKLIST_NODE_PLAIN);
        ql.extend(as_string(b"big"));
        assert_eq!(decode(TYPE_LIST_QUICKLIST_2, &ql).unwrap(), Value::List(strs(&["x", "1", "big"])));
        let bad = [1, 3, 1, b'a'];
        assert!(matches!(decode(TYPE_LIST_QUICKLIST_2, &bad), Err(Error::BadFormat(_))));
    }
}
