//! The stream value type, stored the way Redis 7 stores it.
//!
//! A stream is an ordered map from the ID of each node's first entry (its *master ID*) to the
//! node, and each node is one listpack in Redis's stream layout (`t_stream.c`), element for
//! element, so memory per entry is Redis's and the node boundaries (which decide what
//! `MAXLEN ~` trims) fall where Redis's do:
//!
//! ```text
//! master entry:  count | deleted | n-fields | field_1 ... field_n | 0
//! each entry:    flags | ms-delta | seq-delta | (n | f1 v1 ... fn vn  or, with SAMEFIELDS,
//!                v1 ... vn of the master fields) | lp-count
//! ```
//!
//! The live and deleted counts are kept beside the bytes rather than in them (they change on
//! every append and delete); [`Node::lp_bytes`] still adds their encoded size, plus the
//! listpack header and terminator, because the node size limit compares Redis's `lpBytes`.
//! A new node starts when the last one has `stream-node-max-entries` entries (live or
//! deleted) or appending would reach `stream-node-max-bytes`. Deleting marks the entry's flags;
//! a node whose entries are all deleted is dropped.
//!
//! Consumer groups ([`Group`]) keep their pending entries list in ID order, with each consumer's
//! own list of the IDs it holds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::list::{alloc_size, elem_at, entry_len_at, lp_append, lp_append_int, lp_int_len, lp_len, prev_start, Elem};

/// Entry flags (`STREAM_ITEM_FLAG_*`).
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// Redis's cap on one node's bytes whatever `stream-node-max-bytes` says (1 GiB).
pub const MAX_NODE_BYTES: usize = 1 << 30;

/// A stream entry ID: milliseconds and a sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The smallest ID greater than this one (`streamIncrID`), or `None` after the last.
    pub fn next(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (_, s) if s < u64::MAX => Some(StreamId::new(self.ms, s + 1)),
            (m, _) if m < u64::MAX => Some(StreamId::new(m + 1, 0)),
            _ => None,
        }
    }

    /// The greatest ID smaller than this one (`streamDecrID`), or `None` before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (_, s) if s > 0 => Some(StreamId::new(self.ms, s - 1)),
            (m, _) if m > 0 => Some(StreamId::new(m - 1, u64::MAX)),
            _ => None,
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::ZERO
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry's field-value pairs, as stored.
pub type Fields<'a> = Vec<(Elem<'a>, Elem<'a>)>;

fn int_at(buf: &[u8], pos: usize) -> i64 {
    match elem_at(buf, pos) {
        Elem::Int(i) => i,
        Elem::Str(_) => 0,
    }
}

fn skip(buf: &[u8], pos: usize) -> usize {
    pos + entry_len_at(buf, pos)
}

fn elem_eq(e: Elem<'_>, bytes: &[u8]) -> bool {
    match e {
        Elem::Str(s) => s == bytes,
        Elem::Int(i) => i.to_string().as_bytes() == bytes,
    }
}

/// Where one entry sits in its node.
#[derive(Clone, Copy, Debug)]
struct Slot {
    id: StreamId,
    flags: i64,
    flags_pos: usize,
    /// First field (or value, with SAMEFIELDS) of the entry.
    body: usize,
    /// Elements from `body`: pairs (2n) or the values of the master fields (n).
    count: usize,
    /// The next entry's position.
    next: usize,
}

/// One node: Redis's stream listpack, without the counts at its head (kept as numbers).
#[derive(Clone, Debug, PartialEq, Default)]
struct Node {
    live: u32,
    deleted: u32,
    /// `n-fields | field... | 0 | entries...`
    buf: Vec<u8>,
}

impl Node {
    fn new(fields: &[&[u8]]) -> Node {
        let mut n = Node::default();
        let master = lp_int_len(fields.len() as i64) + fields.iter().map(|f| lp_len(f)).sum::<usize>() + 1;
        n.reserve(master);
        lp_append_int(&mut n.buf, fields.len() as i64);
        for f in fields {
            lp_append(&mut n.buf, f);
        }
        lp_append_int(&mut n.buf, 0);
        n
    }

    /// Redis's `lpBytes` of this node: header and terminator, the two counts, the rest.
    fn lp_bytes(&self) -> usize {
        7 + lp_int_len(self.live as i64) + lp_int_len(self.deleted as i64) + self.buf.len()
    }

    /// (number of master fields, position of the first, position of the first entry).
    fn master(&self) -> (usize, usize, usize) {
        let n = int_at(&self.buf, 0) as usize;
        let start = skip(&self.buf, 0);
        let mut p = start;
        for _ in 0..n {
            p = skip(&self.buf, p);
        }
        (n, start, skip(&self.buf, p))
    }

    fn slot(&self, master_id: StreamId, n_master: usize, pos: usize) -> Slot {
        let b = &self.buf;
        let flags = int_at(b, pos);
        let p = skip(b, pos);
        let ms = int_at(b, p) as u64;
        let p = skip(b, p);
        let seq = int_at(b, p) as u64;
        let p = skip(b, p);
        let (body, count) =
            if flags & FLAG_SAMEFIELDS != 0 { (p, n_master) } else { (skip(b, p), 2 * int_at(b, p) as usize) };
        let mut next = body;
        for _ in 0..count {
            next = skip(b, next);
        }
        let id = StreamId::new(master_id.ms.wrapping_add(ms), master_id.seq.wrapping_add(seq));
        Slot { id, flags, flags_pos: pos, body, count, next: skip(b, next) }
    }

    /// Every entry of the node (deleted ones included), in order.
    fn slots(&self, master_id: StreamId) -> impl Iterator<Item = Slot> + '_ {
        let (n, _, first) = self.master();
        let mut pos = first;
        std::iter::from_fn(move || {
            (pos < self.buf.len()).then(|| {
                let s = self.slot(master_id, n, pos);
                pos = s.next;
                s
            })
        })
    }

    fn fields(&self, s: &Slot) -> Fields<'_> {
        let b = &self.buf;
        let mut out = Vec::with_capacity(s.count / 2 + 1);
        let mut p = s.body;
        if s.flags & FLAG_SAMEFIELDS != 0 {
            let (_, mut f, _) = self.master();
            for _ in 0..s.count {
                out.push((elem_at(b, f), elem_at(b, p)));
                f = skip(b, f);
                p = skip(b, p);
            }
        } else {
            for _ in 0..s.count / 2 {
                let q = skip(b, p);
                out.push((elem_at(b, p), elem_at(b, q)));
                p = skip(b, q);
            }
        }
        out
    }

    /// Whether `pairs`' fields are the master fields, in order.
    fn same_fields(&self, pairs: &[&[u8]]) -> bool {
        let (n, mut p, _) = self.master();
        if n * 2 != pairs.len() {
            return false;
        }
        for f in pairs.iter().step_by(2) {
            if !elem_eq(elem_at(&self.buf, p), f) {
                return false;
            }
            p = skip(&self.buf, p);
        }
        true
    }

    fn reserve(&mut self, more: usize) {
        let want = self.buf.len() + more;
        if want > self.buf.capacity() {
            self.buf.reserve_exact(alloc_size(want) - self.buf.len());
        }
    }

    fn push(&mut self, master_id: StreamId, id: StreamId, pairs: &[&[u8]]) {
        let same = self.same_fields(pairs);
        let n = pairs.len() / 2;
        let (ms, seq) = (id.ms.wrapping_sub(master_id.ms) as i64, id.seq.wrapping_sub(master_id.seq) as i64);
        let stored: usize = if same {
            pairs.iter().skip(1).step_by(2).map(|v| lp_len(v)).sum::<usize>() + lp_int_len(n as i64 + 3)
        } else {
            pairs.iter().map(|v| lp_len(v)).sum::<usize>() + lp_int_len(n as i64) + lp_int_len(2 * n as i64 + 4)
        };
        self.reserve(1 + lp_int_len(ms) + lp_int_len(seq) + stored);
        let b = &mut self.buf;
        lp_append_int(b, if same { FLAG_SAMEFIELDS } else { 0 });
        lp_append_int(b, ms);
        lp_append_int(b, seq);
        if same {
            for v in pairs.iter().skip(1).step_by(2) {
                lp_append(b, v);
            }
            lp_append_int(b, n as i64 + 3);
        } else {
            lp_append_int(b, n as i64);
            for x in pairs {
                lp_append(b, x);
            }
            lp_append_int(b, 2 * n as i64 + 4);
        }
        self.live += 1;
    }

    /// The last live entry's ID, found by walking back from the node's end: each entry ends
    /// with its element count (Redis's `lp-count`), so this costs one step per entry passed,
    /// not a scan of the node.
    fn last_live(&self, master_id: StreamId) -> Option<StreamId> {
        let (n, _, first) = self.master();
        let mut end = self.buf.len();
        while end > first {
            let mut p = prev_start(&self.buf, end);
            for _ in 0..int_at(&self.buf, p) {
                p = prev_start(&self.buf, p);
            }
            let s = self.slot(master_id, n, p);
            if s.flags & FLAG_DELETED == 0 {
                return Some(s.id);
            }
            end = p;
        }
        None
    }

    /// Marks the entry at `s` deleted (flags 0/2 become 1/3: still one byte).
    fn mark_deleted(&mut self, s: &Slot) {
        self.buf[s.flags_pos] = (s.flags | FLAG_DELETED) as u8;
        self.live -= 1;
        self.deleted += 1;
    }

    fn heap(&self) -> usize {
        alloc_size(self.buf.capacity())
    }
}

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A pending entry: delivered to a consumer, not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The consumer's name, shared with the group's consumer map (no copy per entry).
    pub consumer: Arc<[u8]>,
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Unix ms of the last interaction (any read or claim attempt).
    pub seen_time: i64,
    /// Unix ms of the last successful read or claim, -1 if none.
    pub active_time: i64,
    /// The IDs this consumer holds in the group's pending list.
    pub pending: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Group {
    pub last_id: StreamId,
    /// The logical count of entries read (`entries_read`), `None` when unknown.
    pub entries_read: Option<u64>,
    pub pel: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Arc<[u8]>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Group {
        Group { last_id, entries_read, ..Group::default() }
    }

    /// The consumer `name`, created (seen now, never active) if missing; whether it was created.
    pub fn consumer(&mut self, name: &[u8], now: i64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self.consumers.entry(Arc::from(name)).or_insert_with(|| Consumer {
            seen_time: now,
            active_time: -1,
            pending: BTreeSet::new(),
        });
        (c, created)
    }

    /// Removes `id` from the pending list (and its consumer's); whether it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(p) => {
                if let Some(c) = self.consumers.get_mut(&p.consumer) {
                    c.pending.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Records a delivery of `id` to `consumer` (which must exist): a new pending entry, or an
    /// existing one handed over (`count` deliveries).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: i64, count: u64) {
        if let Some(old) = self.pel.get(&id) {
            if *old.consumer != *consumer {
                if let Some(c) = self.consumers.get_mut(&old.consumer) {
                    c.pending.remove(&id);
                }
            }
        }
        let name = self.consumers.get_key_value(consumer).map_or_else(|| Arc::from(consumer), |(k, _)| k.clone());
        self.pel.insert(id, Pending { consumer: name, delivery_time: now, delivery_count: count });
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    fn heap(&self) -> usize {
        // Per pending entry: its B-tree slot (the consumer's name is shared); per consumer:
        // its slot, its name (with the shared counts) and the IDs it holds.
        let pel = self.pel.len() * 56;
        let consumers: usize =
            self.consumers.iter().map(|(n, c)| 96 + alloc_size(16 + n.len()) + 24 * c.pending.len()).sum();
        96 + pel + consumers
    }
}

/// A stream value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stream {
    /// The nodes by master ID, in order.
    nodes: VecDeque<(StreamId, Node)>,
    length: u64,
    pub last_id: StreamId,
    /// The first live entry's ID (0-0 when empty).
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    /// Entries ever added (XADD), for consumer-group lag.
    pub entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Vec<u8>, Group>,
    /// Heap bytes this stream holds beyond its own allocation, as counted (see
    /// [`Stream::heap_size`]).
    heap: usize,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of nodes (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Nodes of the radix tree Redis would keep for these node keys (XINFO's
    /// `radix-tree-nodes`): the canonical compressed trie of the 16-byte big-endian master IDs,
    /// with a compressed node per shared run of bytes, a branch node per fork and a leaf per key.
    pub fn radix_tree_nodes(&self) -> usize {
        fn count(keys: &[[u8; 16]], depth: usize) -> usize {
            match keys {
                [] => 0,
                [_] if depth == 16 => 1,
                [_] => 2,
                _ => {
                    let (first, last) = (&keys[0], &keys[keys.len() - 1]);
                    let mut d = depth;
                    while first[d] == last[d] {
                        d += 1;
                    }
                    let mut total = usize::from(d > depth) + 1;
                    let mut rest = keys;
                    while let Some(head) = rest.first() {
                        let n = rest.iter().take_while(|k| k[d] == head[d]).count();
                        total += count(&rest[..n], d + 1);
                        rest = &rest[n..];
                    }
                    total
                }
            }
        }
        let keys: Vec<[u8; 16]> = self
            .nodes
            .iter()
            .map(|(id, _)| {
                let mut k = [0u8; 16];
                k[..8].copy_from_slice(&id.ms.to_be_bytes());
                k[8..].copy_from_slice(&id.seq.to_be_bytes());
                k
            })
            .collect();
        if keys.is_empty() {
            1
        } else {
            count(&keys, 0)
        }
    }

    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Appends an entry (`pairs` = field, value, ...). The caller checked `id > last_id`.
    /// `max_bytes`/`max_entries` are `stream-node-max-bytes`/`-entries` (0 = no limit).
    pub fn append(&mut self, id: StreamId, pairs: &[&[u8]], max_bytes: usize, max_entries: u64) {
        let max_bytes = if max_bytes == 0 || max_bytes > MAX_NODE_BYTES { MAX_NODE_BYTES } else { max_bytes };
        let added: usize = pairs.iter().map(|x| x.len()).sum();
        let fits = self.nodes.back().is_some_and(|(_, n)| {
            n.lp_bytes() + added < max_bytes && (max_entries == 0 || u64::from(n.live + n.deleted) < max_entries)
        });
        if !fits {
            let fields: Vec<&[u8]> = pairs.iter().step_by(2).copied().collect();
            if self.nodes.len() == self.nodes.capacity() {
                // One slot for a stream's first node, then doubling.
                self.nodes.reserve_exact(self.nodes.len().max(1));
            }
            self.nodes.push_back((id, Node::new(&fields)));
        }
        let (master, node) = self.nodes.back_mut().expect("a node was just ensured");
        node.push(*master, id, pairs);
        self.length += 1;
        if self.length == 1 {
            self.first_id = id;
        }
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Calls `f` with the live entries from `start` to `end` (inclusive), in ID order or in
    /// reverse, until it returns false.
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool, mut f: impl FnMut(StreamId, Fields<'_>) -> bool) {
        if start > end {
            return;
        }
        if rev {
            let upto = self.nodes.partition_point(|(k, _)| *k <= end);
            for (master, node) in self.nodes.range(..upto).rev() {
                let master = *master;
                let slots: Vec<Slot> = node.slots(master).collect();
                for s in slots.iter().rev() {
                    if s.id > end || s.flags & FLAG_DELETED != 0 {
                        continue;
                    }
                    if s.id < start || !f(s.id, node.fields(s)) {
                        return;
                    }
                }
            }
        } else {
            let from = self.nodes.partition_point(|(k, _)| *k <= start).saturating_sub(1);
            for (master, node) in self.nodes.range(from..) {
                let master = *master;
                if master > end {
                    return;
                }
                for s in node.slots(master) {
                    if s.id < start || s.flags & FLAG_DELETED != 0 {
                        continue;
                    }
                    if s.id > end || !f(s.id, node.fields(&s)) {
                        return;
                    }
                }
            }
        }
    }

    /// The live entry `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<Fields<'_>> {
        let at = self.node_at(id)?;
        let (master, node) = &self.nodes[at];
        let master = *master;
        node.slots(master).find(|s| s.id == id && s.flags & FLAG_DELETED == 0).map(|s| node.fields(&s))
    }

    /// The first or last live entry's ID.
    pub fn edge(&self, last: bool) -> Option<StreamId> {
        if last {
            return self.nodes.iter().rev().filter(|(_, n)| n.live > 0).find_map(|(m, n)| n.last_live(*m));
        }
        let mut found = None;
        self.range(StreamId::ZERO, StreamId::MAX, last, |id, _| {
            found = Some(id);
            false
        });
        found
    }

    fn refresh_first(&mut self) {
        self.first_id = if self.length == 0 { StreamId::ZERO } else { self.edge(false).unwrap_or(StreamId::ZERO) };
    }

    /// XDEL of one ID: whether a live entry was deleted.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some(at) = self.node_at(id) else { return false };
        let (master, node) = &mut self.nodes[at];
        let master = *master;
        let Some(slot) = node.slots(master).find(|s| s.id == id && s.flags & FLAG_DELETED == 0) else {
            return false;
        };
        node.mark_deleted(&slot);
        if node.live == 0 {
            self.nodes.remove(at);
        }
        self.length -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if self.length == 0 || id == self.first_id {
            self.refresh_first();
        }
        true
    }

    /// Trims as Redis's `streamTrim`: whole nodes from the oldest while the rule allows, then
    /// (unless `approx`) entries of the next node. `limit` caps the entries removed (0: none).
    /// Returns the number of entries removed.
    pub fn trim(&mut self, rule: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        while let Some((master, node)) = self.nodes.front() {
            let master = *master;
            if let Trim::MaxLen(max) = rule {
                if self.length <= max {
                    break;
                }
            }
            let entries = u64::from(node.live);
            if limit > 0 && removed + entries > limit {
                break;
            }
            let whole = match rule {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.slots(master).last().is_some_and(|s| s.id < min),
            };
            if whole {
                self.nodes.pop_front();
                self.length -= entries;
                removed += entries;
                continue;
            }
            if approx {
                break;
            }
            let node = &mut self.nodes[0].1;
            let slots: Vec<Slot> = node.slots(master).collect();
            for s in &slots {
                let stop = match rule {
                    Trim::MaxLen(max) => self.length <= max,
                    Trim::MinId(min) => s.id >= min,
                };
                if stop {
                    break;
                }
                if s.flags & FLAG_DELETED == 0 {
                    node.mark_deleted(s);
                    self.length -= 1;
                    removed += 1;
                }
            }
            // A node trimmed empty stays until it is trimmed whole (as in Redis).
            break;
        }
        self.refresh_first();
        removed
    }

    /// Whether an entry was deleted (XDEL) between `start` and `end` (`streamRangeHasTombstones`).
    pub fn has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() || self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// The logical position of `id` counted from the first entry ever added, when it can be
    /// known (`streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_before(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return Some(self.entries_added - self.length),
                std::cmp::Ordering::Equal => return Some(self.entries_added - self.length + 1),
                std::cmp::Ordering::Greater => {}
            }
        }
        None
    }

    /// A group's lag (`streamReplyWithCGLag`): entries not yet read, when it can be known.
    pub fn lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.has_tombstones(g.last_id, StreamId::MAX) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.entries_before(g.last_id).map(|read| self.entries_added.saturating_sub(read))
    }

    /// Advances `group` past `id`, delivered to it now (XREADGROUP with `>`).
    pub fn advance_group(&mut self, name: &[u8], id: StreamId) {
        let tomb = self.has_tombstones(id, StreamId::MAX);
        let estimate = self.entries_before(id);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(name) else { return };
        if id > g.last_id {
            match g.entries_read {
                Some(n) if !tomb => g.entries_read = Some(n + 1),
                _ if added > 0 => g.entries_read = estimate,
                _ => {}
            }
            g.last_id = id;
        }
    }

    /// The index of the node that holds `id`, if any node could.
    fn node_at(&self, id: StreamId) -> Option<usize> {
        self.nodes.partition_point(|(k, _)| *k <= id).checked_sub(1)
    }

    /// Heap bytes beyond the value's own allocation, as counted: the allocator's own figure
    /// when the caller measures its edits ([`Stream::account`]), else [`Stream::estimate_heap`].
    pub fn heap_size(&self) -> usize {
        self.heap
    }

    /// Adds the measured change of the heap bytes this stream holds (an edit's net allocation).
    pub fn account(&mut self, delta: i64) {
        self.heap = (self.heap as i64 + delta).max(0) as usize;
    }

    /// Re-estimates the heap bytes from the structures' sizes (where edits are not measured).
    pub fn estimate_heap(&mut self) {
        let nodes: usize = self.nodes.iter().map(|(_, n)| n.heap()).sum();
        let slots = alloc_size(self.nodes.capacity() * std::mem::size_of::<(StreamId, Node)>());
        let groups: usize = self.groups.iter().map(|(n, g)| alloc_size(n.len()) + g.heap()).sum();
        self.heap = nodes + slots + groups;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &Stream, rev: bool) -> Vec<StreamId> {
        let mut v = Vec::new();
        s.range(StreamId::ZERO, StreamId::MAX, rev, |id, _| {
            v.push(id);
            true
        });
        v
    }

    fn filled(n: u64) -> Stream {
        let mut s = Stream::new();
        for i in 1..=n {
            s.append(StreamId::new(i, 0), &[b"f", i.to_string().as_bytes()], 4096, 100);
        }
        s
    }

    #[test]
    fn last_live_entry_is_found_walking_back() {
        // Mixed entry shapes (master fields and others), then deletions from the end.
        let mut s = Stream::new();
        for i in 1..=250u64 {
            let v = i.to_string();
            let pairs: Vec<&[u8]> =
                if i % 3 == 0 { vec![b"other", v.as_bytes(), b"x", b""] } else { vec![b"f", v.as_bytes()] };
            s.append(StreamId::new(i, i % 5), &pairs, 4096, 100);
        }
        let mut i = 250;
        while !s.is_empty() {
            assert_eq!(s.edge(true), ids(&s, true).first().copied(), "after deleting down to {i}");
            // Delete the last entry, and every seventh entry below it, to leave holes.
            s.delete(StreamId::new(i, i % 5));
            if i > 7 {
                s.delete(StreamId::new(i - 7, (i - 7) % 5));
            }
            i -= 1;
        }
        assert_eq!(s.edge(true), None);
    }

    #[test]
    fn appends_split_nodes_at_the_entry_limit_and_read_back() {
        let s = filled(250);
        assert_eq!(s.len(), 250);
        assert_eq!(s.node_count(), 3);
        assert_eq!(ids(&s, false).len(), 250);
        let rev = ids(&s, true);
        assert_eq!(rev[0], StreamId::new(250, 0));
        assert_eq!(rev[249], StreamId::new(1, 0));
        let f = s.get(StreamId::new(7, 0)).unwrap();
        assert_eq!(f[0].0.to_vec(), b"f");
        assert_eq!(f[0].1.to_vec(), b"7");
    }

    #[test]
    fn different_fields_and_negative_sequence_deltas() {
        let mut s = Stream::new();
        s.append(StreamId::new(5, 10), &[b"a", b"1", b"b", b"2"], 4096, 100);
        s.append(StreamId::new(6, 0), &[b"x", b"y"], 4096, 100);
        s.append(StreamId::new(6, 1), &[b"a", b"3", b"b", b"4"], 4096, 100);
        let mut seen = Vec::new();
        s.range(StreamId::ZERO, StreamId::MAX, false, |id, f| {
            seen.push((id, f.iter().map(|(a, b)| (a.to_vec(), b.to_vec())).collect::<Vec<_>>()));
            true
        });
        assert_eq!(seen[1].0, StreamId::new(6, 0));
        assert_eq!(seen[1].1, vec![(b"x".to_vec(), b"y".to_vec())]);
        assert_eq!(seen[2].1[1], (b"b".to_vec(), b"4".to_vec()));
    }

    #[test]
    fn byte_limit_splits_nodes() {
        let mut s = Stream::new();
        let big = vec![b'v'; 1000];
        for i in 1..=10 {
            s.append(StreamId::new(i, 0), &[b"f", &big], 4096, 100);
        }
        // 18 bytes of node header, 1012 per entry: the fifth would pass 4096.
        assert_eq!(s.node_count(), 3);
    }

    #[test]
    fn delete_marks_and_drops_empty_nodes() {
        let mut s = filled(150);
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(!s.delete(StreamId::new(1, 0)));
        assert_eq!(s.first_id, StreamId::new(2, 0));
        assert_eq!(s.max_deleted_id, StreamId::new(1, 0));
        for i in 2..=100 {
            assert!(s.delete(StreamId::new(i, 0)));
        }
        assert_eq!(s.node_count(), 1);
        assert_eq!(s.len(), 50);
        assert_eq!(s.first_id, StreamId::new(101, 0));
    }

    #[test]
    fn trimming_exact_and_approximate() {
        let mut s = filled(250);
        assert_eq!(s.trim(Trim::MaxLen(120), true, 0), 100);
        assert_eq!(s.len(), 150);
        assert_eq!(s.trim(Trim::MaxLen(120), false, 0), 30);
        assert_eq!(s.len(), 120);
        assert_eq!(s.first_id, StreamId::new(131, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(200, 0)), false, 0), 69);
        assert_eq!(s.first_id, StreamId::new(200, 0));
        let mut t = filled(250);
        assert_eq!(t.trim(Trim::MaxLen(0), true, 100), 100, "LIMIT stops after whole nodes");
    }

    #[test]
    fn ids_step_and_print() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::ZERO.prev(), None);
        assert_eq!(StreamId::new(3, 4).to_string(), "3-4");
    }
}
