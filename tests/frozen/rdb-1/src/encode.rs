//! Encoding a [`Value`] as an object body, choosing the object type as Redis 7.2 would.
//!
//! Type choice (limits from [`WriteOptions`], Redis's defaults):
//! * string: 0;
//! * list: 18, listpack nodes filled up to `list_max_listpack_size`; an element too big for
//!   a node gets a plain node of its own;
//! * set: 11 (intset) if every member is a canonical integer and there are at most
//!   `set_max_intset_entries`; else 20 (listpack) if small enough and the target is RDB 11;
//!   else 2;
//! * hash: 16 (listpack) if small enough, else 4;
//! * sorted set: 17 (listpack, sorted by score then member as Redis requires) if small
//!   enough, else 5;
//! * stream: 21, or 19 when the target is RDB 10.
//!
//! Only RDB 10 and 11 can be targeted: older versions lack listpacks and quicklist 2, so a
//! lower `max_version` is treated as 10. The encoder trusts the value's invariants
//! (unique members, non-NaN scores, ascending stream ids); violating them produces bytes
//! that the decoder, like Redis, rejects.

use std::cmp::Ordering;

use crate::consts::*;
use crate::encoding::{write_binary_double, write_len, write_string};
use crate::intset::IntsetBuilder;
use crate::listpack::ListpackBuilder;
use crate::num::{double_to_i64, format_double, parse_canonical_i64};
use crate::stream::write_stream;
use crate::value::Value;

/// Node size limits (bytes) for negative `list-max-listpack-size` values -1..=-5.
const LIST_NODE_BYTES: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// Byte limit of a list node when `list-max-listpack-size` is a positive entry count.
const LIST_NODE_SAFETY_BYTES: usize = 8192;

/// Encoding thresholds and output choices; `Default` gives Redis 7.2's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// LZF-compress strings longer than 20 bytes when it saves space (`rdbcompression`).
    pub compress: bool,
    /// `list-max-listpack-size`: negative = node byte limit class (-1 = 4 KiB ... -5 =
    /// 64 KiB), positive = entries per node.
    pub list_max_listpack_size: i64,
    /// `set-max-intset-entries`.
    pub set_max_intset_entries: usize,
    /// `set-max-listpack-entries`.
    pub set_max_listpack_entries: usize,
    /// `set-max-listpack-value`.
    pub set_max_listpack_value: usize,
    /// `hash-max-listpack-entries`.
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value`.
    pub hash_max_listpack_value: usize,
    /// `zset-max-listpack-entries`.
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value`.
    pub zset_max_listpack_value: usize,
    /// `stream-node-max-entries` (0 = no limit).
    pub stream_node_max_entries: usize,
    /// `stream-node-max-bytes` (0 = no limit).
    pub stream_node_max_bytes: usize,
    /// Newest RDB version the output may need: 11 (Redis 7.2) or 10 (Redis 7.0 can read it).
    pub max_version: u16,
    /// DUMP payloads only: stamp version 10 instead of 11 when the value needs nothing
    /// newer, so Redis 7.0 accepts the payload. Redis 7.2 always stamps 11.
    pub lowest_dump_version: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compress: true,
            list_max_listpack_size: -2,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            stream_node_max_entries: 100,
            stream_node_max_bytes: 4096,
            max_version: RDB_VERSION,
            lowest_dump_version: false,
        }
    }
}

/// Appends the body of `v` to `out` and returns its object type byte. The output needs at
/// most RDB version `opts.max_version`.
pub fn write_value(out: &mut Vec<u8>, v: &Value, opts: &WriteOptions) -> u8 {
    let rdb11 = opts.max_version >= RDB_VERSION;
    match v {
        Value::String(s) => {
            write_string(out, s, opts.compress);
            TYPE_STRING
        }
        Value::List(items) => write_list(out, items, opts),
        Value::Set(members) => write_set(out, members, opts, rdb11),
        Value::Hash(pairs) => write_hash(out, pairs, opts),
        Value::ZSet(pairs) => write_zset(out, pairs, opts),
        Value::Stream(s) => {
            let t = if rdb11 { TYPE_STREAM_LISTPACKS_3 } else { TYPE_STREAM_LISTPACKS_2 };
            write_stream(out, s, t, opts.stream_node_max_entries, opts.stream_node_max_bytes, opts.compress);
            t
        }
    }
}

/// Like [`write_value`] with `max_rdb_version` overriding `opts.max_version`.
pub fn write_value_for_version(out: &mut Vec<u8>, v: &Value, opts: &WriteOptions, max_rdb_version: u16) -> u8 {
    let opts = WriteOptions { max_version: max_rdb_version, ..opts.clone() };
    write_value(out, v, &opts)
}

/// The RDB version a value of object type `type_byte` needs at least, given that this
/// crate only writes types readable from RDB 10 on.
pub(crate) fn version_needed(type_byte: u8) -> u16 {
    match type_byte {
        TYPE_SET_LISTPACK | TYPE_STREAM_LISTPACKS_3 => RDB_VERSION,
        _ => RDB_VERSION_7_0,
    }
}

/// (max entries per node, max bytes per node) for a `list-max-listpack-size` value.
fn list_node_limits(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        // A fill of 0 still has to place one element per node.
        (usize::try_from(fill).unwrap_or(usize::MAX).max(1), LIST_NODE_SAFETY_BYTES)
    } else {
        let class = usize::try_from(fill.unsigned_abs()).unwrap_or(usize::MAX).min(LIST_NODE_BYTES.len());
        (usize::MAX, LIST_NODE_BYTES[class - 1])
    }
}

fn write_list(out: &mut Vec<u8>, items: &[Vec<u8>], opts: &WriteOptions) -> u8 {
    let (max_count, max_bytes) = list_node_limits(opts.list_max_listpack_size);
    // (container, blob) per node, collected first because the node count leads the body.
    let mut nodes: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut lp = ListpackBuilder::new();
    for item in items {
        if item.len() > max_bytes {
            if !lp.is_empty() {
                nodes.push((QUICKLIST_NODE_PACKED, std::mem::take(&mut lp).finish()));
            }
            nodes.push((QUICKLIST_NODE_PLAIN, item.clone()));
            continue;
        }
        let grown = lp.byte_size() + ListpackBuilder::str_entry_size(item);
        if !lp.is_empty() && (lp.len() >= max_count || grown > max_bytes) {
            nodes.push((QUICKLIST_NODE_PACKED, std::mem::take(&mut lp).finish()));
        }
        lp.push_str(item);
    }
    if !lp.is_empty() {
        nodes.push((QUICKLIST_NODE_PACKED, lp.finish()));
    }
    write_len(out, nodes.len() as u64);
    for (container, blob) in &nodes {
        write_len(out, *container);
        write_string(out, blob, opts.compress);
    }
    TYPE_LIST_QUICKLIST_2
}

fn write_set(out: &mut Vec<u8>, members: &[Vec<u8>], opts: &WriteOptions, rdb11: bool) -> u8 {
    if members.len() <= opts.set_max_intset_entries {
        let ints: Option<Vec<i64>> = members.iter().map(|m| parse_canonical_i64(m)).collect();
        if let Some(ints) = ints {
            let mut b = IntsetBuilder::new();
            ints.into_iter().for_each(|v| b.push(v));
            write_string(out, &b.finish(), opts.compress);
            return TYPE_SET_INTSET;
        }
    }
    let small = members.len() <= opts.set_max_listpack_entries
        && members.iter().all(|m| m.len() <= opts.set_max_listpack_value);
    if rdb11 && small {
        let mut lp = ListpackBuilder::new();
        members.iter().for_each(|m| lp.push_str(m));
        write_string(out, &lp.finish(), opts.compress);
        return TYPE_SET_LISTPACK;
    }
    write_len(out, members.len() as u64);
    for m in members {
        write_string(out, m, opts.compress);
    }
    TYPE_SET
}

fn write_hash(out: &mut Vec<u8>, pairs: &[(Vec<u8>, Vec<u8>)], opts: &WriteOptions) -> u8 {
    let limit = opts.hash_max_listpack_value;
    let small = pairs.len() <= opts.hash_max_listpack_entries
        && pairs.iter().all(|(f, v)| f.len() <= limit && v.len() <= limit);
    if small {
        let mut lp = ListpackBuilder::new();
        for (f, v) in pairs {
            lp.push_str(f);
            lp.push_str(v);
        }
        write_string(out, &lp.finish(), opts.compress);
        return TYPE_HASH_LISTPACK;
    }
    write_len(out, pairs.len() as u64);
    for (f, v) in pairs {
        write_string(out, f, opts.compress);
        write_string(out, v, opts.compress);
    }
    TYPE_HASH
}

fn write_zset(out: &mut Vec<u8>, pairs: &[(Vec<u8>, f64)], opts: &WriteOptions) -> u8 {
    let small = opts.zset_max_listpack_entries > 0
        && pairs.len() <= opts.zset_max_listpack_entries
        && pairs.iter().all(|(m, _)| m.len() <= opts.zset_max_listpack_value);
    if small {
        // Redis's listpack sorted sets must be in (score, member) order; sort a copy of the
        // references unless the caller's order already is that.
        let mut sorted: Vec<&(Vec<u8>, f64)> = pairs.iter().collect();
        if !sorted.windows(2).all(|w| zset_order(w[0], w[1]) != Ordering::Greater) {
            sorted.sort_by(|a, b| zset_order(a, b));
        }
        let mut lp = ListpackBuilder::new();
        for (member, score) in sorted {
            lp.push_str(member);
            match double_to_i64(*score) {
                Some(i) => lp.push_int(i),
                None => lp.push_str(format_double(*score).as_bytes()),
            }
        }
        write_string(out, &lp.finish(), opts.compress);
        return TYPE_ZSET_LISTPACK;
    }
    write_len(out, pairs.len() as u64);
    for (member, score) in pairs {
        write_string(out, member, opts.compress);
        write_binary_double(out, *score);
    }
    TYPE_ZSET_2
}

/// Redis's sorted set order: by score, then by member bytes. `-0.0` counts as `0.0`; the
/// total order on doubles keeps sorting well-defined even for (invalid) NaN scores.
fn zset_order(a: &(Vec<u8>, f64), b: &(Vec<u8>, f64)) -> Ordering {
    let norm = |d: f64| if d == 0.0 { 0.0 } else { d };
    norm(a.1).total_cmp(&norm(b.1)).then_with(|| a.0.cmp(&b.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_node_limits_follow_fill() {
        assert_eq!(list_node_limits(-2), (usize::MAX, 8192));
        assert_eq!(list_node_limits(-1), (usize::MAX, 4096));
        assert_eq!(list_node_limits(-9), (usize::MAX, 65536));
        assert_eq!(list_node_limits(0), (1, 8192));
        assert_eq!(list_node_limits(128), (128, 8192));
    }

    #[test]
    fn type_choice() {
        let o = WriteOptions::default();
        let mut out = Vec::new();
        let ints = Value::Set((0..512).map(|i| i.to_string().into_bytes()).collect());
        assert_eq!(write_value(&mut out, &ints, &o), TYPE_SET_INTSET);
        let many_ints = Value::Set((0..513).map(|i| i.to_string().into_bytes()).collect());
        assert_eq!(write_value(&mut out, &many_ints, &o), TYPE_SET);
        let small = Value::Set(vec![b"a".to_vec(), b"1".to_vec()]);
        assert_eq!(write_value(&mut out, &small, &o), TYPE_SET_LISTPACK);
        assert_eq!(write_value_for_version(&mut out, &small, &o, 10), TYPE_SET);
        let long_member = Value::Set(vec![vec![b'x'; 65]]);
        assert_eq!(write_value(&mut out, &long_member, &o), TYPE_SET);
        let hash = Value::Hash(vec![(b"f".to_vec(), vec![b'v'; 64])]);
        assert_eq!(write_value(&mut out, &hash, &o), TYPE_HASH_LISTPACK);
        let big_hash = Value::Hash(vec![(b"f".to_vec(), vec![b'v'; 65])]);
        assert_eq!(write_value(&mut out, &big_hash, &o), TYPE_HASH);
        let zset = Value::ZSet(vec![(b"m".to_vec(), 1.5)]);
        assert_eq!(write_value(&mut out, &zset, &o), TYPE_ZSET_LISTPACK);
        let big_zset = Value::ZSet((0..129).map(|i| (i.to_string().into_bytes(), f64::from(i))).collect());
        assert_eq!(write_value(&mut out, &big_zset, &o), TYPE_ZSET_2);
        assert_eq!(write_value(&mut out, &Value::List(vec![]), &o), TYPE_LIST_QUICKLIST_2);
        let stream = Value::Stream(Box::default());
        assert_eq!(write_value(&mut out, &stream, &o), TYPE_STREAM_LISTPACKS_3);
        assert_eq!(write_value_for_version(&mut out, &stream, &o, 10), TYPE_STREAM_LISTPACKS_2);
    }
}
