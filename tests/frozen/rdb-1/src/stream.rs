//! Streams (object types 15, 19 and 21): decoding and encoding.
//!
//! Body layout: a count of nodes, each a 16-byte big-endian master id (as a string) and a
//! listpack (as a string); then length, last id, and from type 19 on first id, max deleted
//! id and entries added (all as lengths); then consumer groups: name, last id, (19+) entries
//! read, the group PEL (raw 16-byte id, delivery time ms as 8 LE bytes, delivery count), and
//! consumers: name, seen time ms, (21) active time ms, and their owned raw ids.
//!
//! Node listpack layout (Redis's `t_stream.c`), all numbers listpack integers:
//! * master entry: live count, deleted count, number of master fields, the master field
//!   names, a 0 terminator;
//! * each entry: flags, ms delta, seq delta (relative to the master id), then either the
//!   values only (flag SAMEFIELDS: same fields as the master entry) or a field count and
//!   field/value pairs, then "lp-count", the number of listpack elements of this entry
//!   excluding itself, so iterators can walk backwards.
//!
//! Decoding checks all of this, that ids are strictly ascending across the stream (deleted
//! entries included), that the live entry count matches `length`, and the group invariants
//! listed in [`crate::value`].

use std::collections::HashSet;

use crate::consts::*;
use crate::decode::check_unique;
use crate::encoding::*;
use crate::error::{Error, Result};
use crate::listpack::{decode_listpack, Entry, ListpackBuilder};
use crate::source::{capacity_hint, Source};
use crate::value::{PendingEntry, Stream, StreamConsumer, StreamFields as Fields, StreamGroup, StreamId};

/// Redis's upper bound on a stream node listpack (used when the configured limit is 0).
const NODE_MAX_BYTES_CAP: usize = 1 << 30;

/// Decodes a stream body of type 15, 19 or 21.
pub(crate) fn read_stream<S: Source + ?Sized>(type_byte: u8, src: &mut S) -> Result<Stream> {
    let nodes = read_len(src)?;
    src.check_count(nodes.saturating_mul(2))?;
    let mut entries = Vec::new();
    let mut last_seen: Option<StreamId> = None;
    let mut prev_master: Option<StreamId> = None;
    for _ in 0..nodes {
        let key = read_string(src)?;
        let key: [u8; 16] = key.try_into().map_err(|_| Error::BadFormat("stream node key is not 16 bytes"))?;
        let master = StreamId::from_be_bytes(key);
        if prev_master.is_some_and(|p| p >= master) {
            return Err(Error::BadFormat("stream node keys are not ascending"));
        }
        prev_master = Some(master);
        let lp = read_string(src)?;
        decode_node(&lp, master, &mut entries, &mut last_seen)?;
    }
    let length = read_len(src)?;
    if length != entries.len() as u64 {
        return Err(Error::BadFormat("stream length does not match its entries"));
    }
    let last_id = read_stream_id_lens(src)?;
    let (first_id, max_deleted_id, entries_added) = if type_byte >= TYPE_STREAM_LISTPACKS_2 {
        (read_stream_id_lens(src)?, read_stream_id_lens(src)?, read_len(src)?)
    } else {
        // Older streams do not store these; derive them as Redis does on load.
        (entries.first().map(|(id, _)| *id).unwrap_or_default(), StreamId::default(), length)
    };
    let group_count = read_len(src)?;
    src.check_count(group_count)?;
    let mut groups = Vec::with_capacity(capacity_hint(group_count));
    for _ in 0..group_count {
        groups.push(read_group(type_byte, src)?);
    }
    check_unique(groups.iter().map(|g| g.name.as_slice()), "duplicate stream consumer group")?;
    Ok(Stream { entries, length, last_id, first_id, max_deleted_id, entries_added, groups })
}

/// Decodes one node listpack, appending its live entries.
fn decode_node(
    lp: &[u8],
    master: StreamId,
    entries: &mut Vec<(StreamId, Fields)>,
    last_seen: &mut Option<StreamId>,
) -> Result<()> {
    let items = decode_listpack(lp)?;
    if items.is_empty() {
        return Err(Error::BadFormat("empty listpack in stream"));
    }
    let mut it = items.iter();
    let live = next_count(&mut it)?;
    let deleted = next_count(&mut it)?;
    let master_field_count = next_count(&mut it)?;
    let mut master_fields = Vec::with_capacity(capacity_hint(master_field_count).min(items.len()));
    for _ in 0..master_field_count {
        master_fields.push(next_item(&mut it)?.to_bytes());
    }
    if next_int(&mut it)? != 0 {
        return Err(Error::BadFormat("stream master entry is not terminated"));
    }
    let (mut seen_live, mut seen_deleted) = (0u64, 0u64);
    let mut budget = CloneBudget::for_node(lp.len());
    for _ in 0..live.checked_add(deleted).ok_or(Error::BadFormat("stream node counts overflow"))? {
        let flags = next_int(&mut it)?;
        let ms_delta = next_int(&mut it)?;
        let seq_delta = next_int(&mut it)?;
        // Deltas are two's complement differences; wrapping addition undoes them exactly.
        let id =
            StreamId { ms: master.ms.wrapping_add(ms_delta as u64), seq: master.seq.wrapping_add(seq_delta as u64) };
        if last_seen.is_some_and(|prev| prev >= id) {
            return Err(Error::BadFormat("stream entry ids are not ascending"));
        }
        *last_seen = Some(id);
        let same_fields = flags & STREAM_ITEM_FLAG_SAMEFIELDS != 0;
        let deleted_entry = flags & STREAM_ITEM_FLAG_DELETED != 0;
        let field_count = if same_fields { master_field_count } else { next_count(&mut it)? };
        // Tombstones are walked (to validate them) but not materialized.
        let mut fields =
            if deleted_entry { Vec::new() } else { Vec::with_capacity(capacity_hint(field_count).min(items.len())) };
        for i in 0..field_count {
            let own_field = if same_fields { None } else { Some(next_item(&mut it)?) };
            let value = next_item(&mut it)?;
            if deleted_entry {
                continue;
            }
            let field = match own_field {
                Some(f) => f.to_bytes(),
                None => {
                    let f = master_fields.get(i as usize).ok_or(Error::BadFormat("stream master field missing"))?;
                    budget.spend(f.len())?;
                    f.clone()
                }
            };
            fields.push((field, value.to_bytes()));
        }
        let expected_lp_count = if same_fields { field_count + 3 } else { 2 * field_count + 4 };
        if u64::try_from(next_int(&mut it)?).ok() != Some(expected_lp_count) {
            return Err(Error::BadFormat("stream entry lp-count is wrong"));
        }
        if deleted_entry {
            seen_deleted += 1;
        } else {
            seen_live += 1;
            entries.push((id, fields));
        }
    }
    if it.next().is_some() {
        return Err(Error::BadFormat("unexpected data after stream node entries"));
    }
    if seen_live != live || seen_deleted != deleted {
        return Err(Error::BadFormat("stream node entry counts do not match its master entry"));
    }
    Ok(())
}

/// Bytes a node may copy out of its master field names. SAMEFIELDS entries store only
/// values, so decoding repeats the master names once per entry; this caps that expansion
/// at 1024 times the node's size (plus 1 MiB), far above what Redis's node limits produce
/// (about 150x with default settings) but low enough that a small crafted node cannot
/// demand gigabytes.
struct CloneBudget {
    left: usize,
}

impl CloneBudget {
    fn for_node(node_len: usize) -> Self {
        CloneBudget { left: node_len.saturating_mul(1024).saturating_add(1 << 20) }
    }

    fn spend(&mut self, n: usize) -> Result<()> {
        self.left =
            self.left.checked_sub(n).ok_or(Error::BadFormat("stream node expands beyond the decoding limit"))?;
        Ok(())
    }
}

fn next_item<'a, 'b>(it: &mut std::slice::Iter<'b, Entry<'a>>) -> Result<&'b Entry<'a>> {
    it.next().ok_or(Error::BadFormat("stream node ends early"))
}

fn next_int(it: &mut std::slice::Iter<'_, Entry<'_>>) -> Result<i64> {
    next_item(it)?.as_int().ok_or(Error::BadFormat("stream node integer expected"))
}

/// A non-negative integer (count) from the node listpack. Counts above 2^31 cannot be
/// satisfied by a listpack anyway; capping keeps field-count arithmetic overflow-free.
fn next_count(it: &mut std::slice::Iter<'_, Entry<'_>>) -> Result<u64> {
    let v = next_int(it)?;
    u64::try_from(v).ok().filter(|v| *v <= 1 << 31).ok_or(Error::BadFormat("stream node count is out of range"))
}

fn read_group<S: Source + ?Sized>(type_byte: u8, src: &mut S) -> Result<StreamGroup> {
    let name = read_string(src)?;
    let last_id = read_stream_id_lens(src)?;
    let entries_read = if type_byte >= TYPE_STREAM_LISTPACKS_2 {
        Some(read_len(src)?).filter(|v| *v != STREAM_ENTRIES_READ_UNKNOWN)
    } else {
        None
    };
    let pel_count = read_len(src)?;
    src.check_count(pel_count.saturating_mul(16))?;
    let mut pel = Vec::with_capacity(capacity_hint(pel_count));
    for _ in 0..pel_count {
        let id = read_stream_id_raw(src)?;
        let delivery_time = read_millis(src)?;
        let delivery_count = read_len(src)?;
        pel.push(PendingEntry { id, delivery_time, delivery_count });
    }
    let pel_ids: HashSet<StreamId> = pel.iter().map(|p| p.id).collect();
    if pel_ids.len() != pel.len() {
        return Err(Error::BadFormat("duplicate stream PEL entry"));
    }
    let consumer_count = read_len(src)?;
    src.check_count(consumer_count)?;
    let mut consumers = Vec::with_capacity(capacity_hint(consumer_count));
    let mut owned: HashSet<StreamId> = HashSet::new();
    for _ in 0..consumer_count {
        let name = read_string(src)?;
        let seen_time = read_millis(src)?;
        let active_time = if type_byte >= TYPE_STREAM_LISTPACKS_3 { Some(read_millis(src)?) } else { None };
        let pending_count = read_len(src)?;
        src.check_count(pending_count.saturating_mul(16))?;
        let mut pending = Vec::with_capacity(capacity_hint(pending_count));
        for _ in 0..pending_count {
            let id = read_stream_id_raw(src)?;
            if !pel_ids.contains(&id) {
                return Err(Error::BadFormat("consumer pending entry not in the group PEL"));
            }
            if !owned.insert(id) {
                return Err(Error::BadFormat("stream PEL entry owned twice"));
            }
            pending.push(id);
        }
        consumers.push(StreamConsumer { name, seen_time, active_time, pending });
    }
    check_unique(consumers.iter().map(|c| c.name.as_slice()), "duplicate stream consumer")?;
    Ok(StreamGroup { name, last_id, entries_read, pel, consumers })
}

/// Encodes a stream body as type `type_byte` (19 or 21; 21 adds consumer active times).
/// Limits and compression come from `node_max_entries`, `node_max_bytes` and `compress`.
pub(crate) fn write_stream(
    out: &mut Vec<u8>,
    s: &Stream,
    type_byte: u8,
    node_max_entries: usize,
    node_max_bytes: usize,
    compress: bool,
) {
    let nodes = build_nodes(&s.entries, node_max_entries, node_max_bytes);
    write_len(out, nodes.len() as u64);
    for (master, lp) in &nodes {
        write_string(out, &master.to_be_bytes(), compress);
        write_string(out, lp, compress);
    }
    write_len(out, s.length);
    write_stream_id_lens(out, s.last_id);
    write_stream_id_lens(out, s.first_id);
    write_stream_id_lens(out, s.max_deleted_id);
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for g in &s.groups {
        write_string(out, &g.name, compress);
        write_stream_id_lens(out, g.last_id);
        write_len(out, g.entries_read.unwrap_or(STREAM_ENTRIES_READ_UNKNOWN));
        write_len(out, g.pel.len() as u64);
        for p in &g.pel {
            write_stream_id_raw(out, p.id);
            write_millis(out, p.delivery_time);
            write_len(out, p.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for c in &g.consumers {
            write_string(out, &c.name, compress);
            write_millis(out, c.seen_time);
            if type_byte >= TYPE_STREAM_LISTPACKS_3 {
                // Redis's own estimate when the active time is unknown is the seen time.
                write_millis(out, c.active_time.unwrap_or(c.seen_time));
            }
            write_len(out, c.pending.len() as u64);
            for id in &c.pending {
                write_stream_id_raw(out, *id);
            }
        }
    }
}

/// Node being filled: master id and fields come from its first entry.
struct NodeBuilder<'a> {
    master: StreamId,
    master_fields: Vec<&'a [u8]>,
    /// Size of the master entry with a zero live count (the count grows by at most 8 bytes).
    master_size: usize,
    body: ListpackBuilder,
    count: u64,
}

impl<'a> NodeBuilder<'a> {
    fn new(id: StreamId, fields: &'a Fields) -> Self {
        let master_fields: Vec<&[u8]> = fields.iter().map(|(f, _)| f.as_slice()).collect();
        let master_size = 3 * ListpackBuilder::int_entry_size(0)
            + ListpackBuilder::int_entry_size(master_fields.len() as i64)
            + master_fields.iter().map(|f| ListpackBuilder::str_entry_size(f)).sum::<usize>();
        NodeBuilder { master: id, master_fields, master_size, body: ListpackBuilder::new(), count: 0 }
    }

    /// Current size estimate of the finished node listpack.
    fn byte_size(&self) -> usize {
        self.master_size + self.body.byte_size()
    }

    fn push(&mut self, id: StreamId, fields: &Fields) {
        let same = fields.len() == self.master_fields.len()
            && fields.iter().zip(&self.master_fields).all(|((f, _), m)| f.as_slice() == *m);
        let n = fields.len() as i64;
        self.body.push_int(if same { STREAM_ITEM_FLAG_SAMEFIELDS } else { 0 });
        self.body.push_int(id.ms.wrapping_sub(self.master.ms) as i64);
        self.body.push_int(id.seq.wrapping_sub(self.master.seq) as i64);
        if same {
            for (_, v) in fields {
                self.body.push_str(v);
            }
            self.body.push_int(n + 3);
        } else {
            self.body.push_int(n);
            for (f, v) in fields {
                self.body.push_str(f);
                self.body.push_str(v);
            }
            self.body.push_int(2 * n + 4);
        }
        self.count += 1;
    }

    fn finish(self) -> (StreamId, Vec<u8>) {
        let mut lp = ListpackBuilder::new();
        lp.push_int(self.count as i64);
        lp.push_int(0);
        lp.push_int(self.master_fields.len() as i64);
        for f in &self.master_fields {
            lp.push_str(f);
        }
        lp.push_int(0);
        lp.append(&self.body);
        (self.master, lp.finish())
    }
}

/// Splits entries into node listpacks the way Redis's XADD does: a new node starts when the
/// current one holds `max_entries` entries or adding the entry's fields and values would
/// reach `max_bytes` (0 means no limit for either, with Redis's 1 GiB cap on bytes).
fn build_nodes(entries: &[(StreamId, Fields)], max_entries: usize, max_bytes: usize) -> Vec<(StreamId, Vec<u8>)> {
    let max_bytes = if max_bytes == 0 { NODE_MAX_BYTES_CAP } else { max_bytes.min(NODE_MAX_BYTES_CAP) };
    let mut nodes = Vec::new();
    let mut current: Option<NodeBuilder<'_>> = None;
    for (id, fields) in entries {
        if let Some(node) = &current {
            let added: usize = fields.iter().map(|(f, v)| f.len() + v.len()).sum();
            let full_bytes = node.byte_size() + added >= max_bytes;
            let full_count = max_entries != 0 && node.count >= max_entries as u64;
            if full_bytes || full_count {
                nodes.extend(current.take().map(NodeBuilder::finish));
            }
        }
        current.get_or_insert_with(|| NodeBuilder::new(*id, fields)).push(*id, fields);
    }
    nodes.extend(current.map(NodeBuilder::finish));
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SliceSource;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// One node by hand: master 1000-0 with fields a, b; entries 1000-0 (same fields),
    /// 1000-1 (deleted, same fields), 1001-0 (own field c).
    fn node_listpack(lp_count_of_last: i64) -> Vec<u8> {
        let mut lp = ListpackBuilder::new();
        for v in [2, 1, 2] {
            lp.push_int(v); // live count, deleted count, master field count
        }
        lp.push_str(b"a");
        lp.push_str(b"b");
        lp.push_int(0); // master terminator
        for v in [2, 0, 0] {
            lp.push_int(v); // SAMEFIELDS, ms delta 0, seq delta 0
        }
        lp.push_str(b"1");
        lp.push_str(b"2");
        lp.push_int(5); // 2 values + 3
        for v in [3, 0, 1] {
            lp.push_int(v); // DELETED | SAMEFIELDS, 1000-1
        }
        lp.push_str(b"3");
        lp.push_str(b"4");
        lp.push_int(5);
        for v in [0, 1, 0, 1] {
            lp.push_int(v); // no flags, 1001-0, one field
        }
        lp.push_str(b"c");
        lp.push_str(b"5");
        lp.push_int(lp_count_of_last); // 2 * 1 + 4 = 6 when correct
        lp.finish()
    }

    fn body(type_byte: u8, lp: &[u8]) -> Vec<u8> {
        let mut out = vec![1];
        write_raw_string(&mut out, &id(1000, 0).to_be_bytes());
        write_raw_string(&mut out, lp);
        write_len(&mut out, 2); // length
        write_stream_id_lens(&mut out, id(1001, 0)); // last id
        if type_byte >= TYPE_STREAM_LISTPACKS_2 {
            write_stream_id_lens(&mut out, id(1000, 0)); // first id
            write_stream_id_lens(&mut out, id(1000, 1)); // max deleted id
            write_len(&mut out, 3); // entries added
        }
        write_len(&mut out, 1); // one group
        write_raw_string(&mut out, b"g");
        write_stream_id_lens(&mut out, id(1000, 0));
        if type_byte >= TYPE_STREAM_LISTPACKS_2 {
            write_len(&mut out, u64::MAX); // entries read unknown
        }
        write_len(&mut out, 1); // PEL: 1000-0, delivered at 77, twice
        write_stream_id_raw(&mut out, id(1000, 0));
        write_millis(&mut out, 77);
        write_len(&mut out, 2);
        write_len(&mut out, 1); // one consumer
        write_raw_string(&mut out, b"alice");
        write_millis(&mut out, 88);
        if type_byte >= TYPE_STREAM_LISTPACKS_3 {
            write_millis(&mut out, 99);
        }
        write_len(&mut out, 1);
        write_stream_id_raw(&mut out, id(1000, 0));
        out
    }

    fn decode(type_byte: u8, b: &[u8]) -> Result<Stream> {
        let mut src = SliceSource::new(b);
        let s = read_stream(type_byte, &mut src)?;
        assert!(src.remaining().is_empty());
        Ok(s)
    }

    #[test]
    fn decodes_hand_made_streams() {
        let lp = node_listpack(6);
        let entries = vec![
            (id(1000, 0), vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]),
            (id(1001, 0), vec![(b"c".to_vec(), b"5".to_vec())]),
        ];
        let s15 = decode(TYPE_STREAM_LISTPACKS, &body(TYPE_STREAM_LISTPACKS, &lp)).unwrap();
        assert_eq!(s15.entries, entries);
        assert_eq!((s15.length, s15.last_id, s15.first_id), (2, id(1001, 0), id(1000, 0)));
        assert_eq!((s15.max_deleted_id, s15.entries_added), (id(0, 0), 2));
        let g = &s15.groups[0];
        assert_eq!((g.name.as_slice(), g.entries_read), (&b"g"[..], None));
        assert_eq!(g.pel, vec![PendingEntry { id: id(1000, 0), delivery_time: 77, delivery_count: 2 }]);
        assert_eq!(
            g.consumers,
            vec![StreamConsumer {
                name: b"alice".to_vec(),
                seen_time: 88,
                active_time: None,
                pending: vec![id(1000, 0)]
            }]
        );

        let s19 = decode(TYPE_STREAM_LISTPACKS_2, &body(TYPE_STREAM_LISTPACKS_2, &lp)).unwrap();
        assert_eq!((s19.max_deleted_id, s19.entries_added), (id(1000, 1), 3));
        assert_eq!(s19.groups[0].consumers[0].active_time, None);
        let s21 = decode(TYPE_STREAM_LISTPACKS_3, &body(TYPE_STREAM_LISTPACKS_3, &lp)).unwrap();
        assert_eq!(s21.groups[0].consumers[0].active_time, Some(99));
        assert_eq!(s21.entries, entries);
    }

    #[test]
    fn rejects_inconsistent_streams() {
        // Wrong lp-count.
        assert!(decode(TYPE_STREAM_LISTPACKS_3, &body(TYPE_STREAM_LISTPACKS_3, &node_listpack(7))).is_err());
        // Consumer owning an id missing from the group PEL.
        let mut b = body(TYPE_STREAM_LISTPACKS, &node_listpack(6));
        let n = b.len();
        b[n - 1] = 9; // last raw id byte: 1000-9 is not pending
        assert!(decode(TYPE_STREAM_LISTPACKS, &b).is_err());
        // Node key of the wrong size.
        let mut short_key = vec![1];
        write_raw_string(&mut short_key, &[0; 15]);
        assert!(decode(TYPE_STREAM_LISTPACKS, &short_key).is_err());
        let good = body(TYPE_STREAM_LISTPACKS_3, &node_listpack(6));
        for cut in 0..good.len() {
            assert!(decode(TYPE_STREAM_LISTPACKS_3, &good[..cut]).is_err());
        }
    }

    #[test]
    fn nodes_split_by_entries_and_bytes() {
        let fields: Fields = vec![(b"f".to_vec(), b"v".to_vec())];
        let entries: Vec<(StreamId, Fields)> = (0..250).map(|i| (id(i, 0), fields.clone())).collect();
        assert_eq!(build_nodes(&entries, 100, 4096).len(), 3);
        assert_eq!(build_nodes(&entries, 0, 0).len(), 1);
        let big: Fields = vec![(b"f".to_vec(), vec![b'x'; 1000])];
        let entries: Vec<(StreamId, Fields)> = (0..10).map(|i| (id(i, 0), big.clone())).collect();
        let nodes = build_nodes(&entries, 100, 4096);
        assert!(nodes.len() >= 3, "{} nodes", nodes.len());
        assert!(nodes.iter().all(|(_, lp)| lp.len() < 4096 + 1100));
    }

    #[test]
    fn same_fields_expansion_is_bounded() {
        // One 64 KiB master field and 20000 SAMEFIELDS entries of 6 bytes each would decode
        // to about 1.3 GB of copied field names: refused.
        let mut lp = ListpackBuilder::new();
        let n = 20_000;
        lp.push_int(n);
        lp.push_int(0);
        lp.push_int(1);
        lp.push_str(&vec![b'f'; 64 * 1024]);
        lp.push_int(0);
        for i in 0..n {
            for v in [2, 0, i] {
                lp.push_int(v);
            }
            lp.push_str(b"v");
            lp.push_int(4);
        }
        let lp = lp.finish();
        let mut entries = Vec::new();
        let r = decode_node(&lp, id(0, 0), &mut entries, &mut None);
        assert!(matches!(r, Err(Error::BadFormat(_))), "{r:?}");
    }
}
