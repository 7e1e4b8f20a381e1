//! Keyspace values to and from RDB values: what DUMP, RESTORE, snapshots and RDB import share.
//!
//! Reading a value out copies it into an [`rdb::Value`]; the RDB writer then picks Redis's
//! encodings from the settings' size limits. Building a value back goes through the same
//! calls the write commands use (so encodings convert exactly where RPUSH, HSET, SADD, ZADD
//! and XADD would convert them) and refuses what Redis refuses: empty collections, repeated
//! members or fields, NaN scores, and streams whose parts disagree.

use std::collections::BTreeSet;
use std::sync::Arc;

use rdb::{StreamId as RId, Value};
use store::hash::HashLimits;
use store::list::{End, List};
use store::set::{Set, SetLimits};
use store::stream::{Consumer, Group, Pending, Stream, StreamId};
use store::zset::{ZSet, ZSetLimits};
use store::{Entry, NewValue, Object, ValueRef};

use crate::Settings;

/// Why a value cannot become a key (RESTORE replies "Bad data format"; a load names it).
pub type BadData = &'static str;

/// The RDB writer's encoding limits, from the server's settings.
pub fn write_options(s: &Settings, max_version: u16) -> rdb::WriteOptions {
    rdb::WriteOptions {
        list_max_listpack_size: s.list_max_listpack_size,
        set_max_intset_entries: s.set_max_intset_entries,
        set_max_listpack_entries: s.set_max_listpack_entries,
        set_max_listpack_value: s.set_max_listpack_value,
        hash_max_listpack_entries: s.hash_max_listpack_entries,
        hash_max_listpack_value: s.hash_max_listpack_value,
        zset_max_listpack_entries: s.zset_max_listpack_entries,
        zset_max_listpack_value: s.zset_max_listpack_value,
        stream_node_max_entries: s.stream_node_max_entries as usize,
        stream_node_max_bytes: s.stream_node_max_bytes,
        compress: s.rdb_compression,
        max_version,
        ..rdb::WriteOptions::default()
    }
}

/// The value of an entry, copied out.
pub fn entry_value(e: &Entry) -> Value {
    match e.value() {
        ValueRef::Inline(v) => Value::String(v.to_vec()),
        ValueRef::Object(o) => object_value(o),
    }
}

fn object_value(o: &Object) -> Value {
    match o {
        Object::Str(v) => Value::String(v.clone()),
        Object::List(l) => Value::List(l.iter().map(|e| e.to_vec()).collect()),
        Object::Hash(h) => Value::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()),
        Object::Set(s) => Value::Set(s.iter().map(|m| m.to_vec()).collect()),
        Object::ZSet(z) => {
            let mut out = Vec::with_capacity(z.len());
            z.for_range(0, z.len(), false, |m, s| out.push((m.to_vec(), s)));
            Value::ZSet(out)
        }
        Object::Stream(s) => Value::Stream(Box::new(stream_value(s))),
    }
}

fn rid(id: StreamId) -> RId {
    RId { ms: id.ms, seq: id.seq }
}

fn sid(id: RId) -> StreamId {
    StreamId::new(id.ms, id.seq)
}

fn stream_value(s: &Stream) -> rdb::Stream {
    let mut entries = Vec::with_capacity(s.len() as usize);
    s.range(StreamId::ZERO, StreamId::MAX, false, |id, fields| {
        entries.push((rid(id), fields.into_iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()));
        true
    });
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| rdb::StreamGroup {
            name: name.clone(),
            last_id: rid(g.last_id),
            entries_read: g.entries_read,
            pel: g
                .pel
                .iter()
                .map(|(id, p)| rdb::PendingEntry {
                    id: rid(*id),
                    delivery_time: p.delivery_time,
                    delivery_count: p.delivery_count,
                })
                .collect(),
            consumers: g
                .consumers
                .iter()
                .map(|(name, c)| rdb::StreamConsumer {
                    name: name.to_vec(),
                    seen_time: c.seen_time,
                    active_time: Some(c.active_time),
                    pending: c.pending.iter().map(|id| rid(*id)).collect(),
                })
                .collect(),
        })
        .collect();
    rdb::Stream {
        entries,
        length: s.len(),
        last_id: rid(s.last_id),
        first_id: rid(s.first_id),
        max_deleted_id: rid(s.max_deleted_id),
        entries_added: s.entries_added,
        groups,
    }
}

/// Builds the entry for `key` from a loaded value.
pub fn value_entry(
    key: &[u8],
    value: Value,
    expire_at: Option<i64>,
    clock: u32,
    s: &Settings,
) -> Result<Entry, BadData> {
    let object = match value {
        Value::String(v) => return Ok(Entry::new(key, NewValue::Inline(&v), expire_at, clock)),
        Value::List(items) => Object::List(build_list(items, s)?),
        Value::Set(members) => Object::Set(build_set(members, s)?),
        Value::Hash(pairs) => Object::Hash(build_hash(pairs, s)?),
        Value::ZSet(pairs) => Object::ZSet(build_zset(pairs, s)?),
        Value::Stream(st) => Object::Stream(Box::new(build_stream(*st, s)?)),
    };
    Ok(Entry::new(key, NewValue::Object(Box::new(object)), expire_at, clock))
}

fn build_list(items: Vec<Vec<u8>>, s: &Settings) -> Result<List, BadData> {
    if items.is_empty() {
        return Err("empty list");
    }
    let mut list = List::new();
    let bytes = items.iter().map(Vec::len).sum();
    list.prepare_add(s.list_max_listpack_size, bytes, items.len());
    items.iter().for_each(|v| list.push(End::Tail, v));
    Ok(list)
}

fn build_set(members: Vec<Vec<u8>>, s: &Settings) -> Result<Set, BadData> {
    let lim = SetLimits {
        max_intset_entries: s.set_max_intset_entries,
        max_listpack_entries: s.set_max_listpack_entries,
        max_listpack_value: s.set_max_listpack_value,
    };
    let first = members.first().ok_or("empty set")?;
    let mut set = Set::new_for(first, members.len(), lim);
    set.maybe_convert(members.len(), lim);
    for m in &members {
        if !set.add(m, lim) {
            return Err("duplicate set member");
        }
    }
    Ok(set)
}

fn build_hash(pairs: Vec<(Vec<u8>, Vec<u8>)>, s: &Settings) -> Result<store::hash::Hash, BadData> {
    if pairs.is_empty() {
        return Err("empty hash");
    }
    let lim = HashLimits { max_entries: s.hash_max_listpack_entries, max_value: s.hash_max_listpack_value };
    let mut hash = store::hash::Hash::new();
    for (f, v) in &pairs {
        if !hash.set(f, v, lim) {
            return Err("duplicate hash field");
        }
    }
    Ok(hash)
}

fn build_zset(pairs: Vec<(Vec<u8>, f64)>, s: &Settings) -> Result<ZSet, BadData> {
    if pairs.is_empty() {
        return Err("empty sorted set");
    }
    let lim =
        ZSetLimits { max_listpack_entries: s.zset_max_listpack_entries, max_listpack_value: s.zset_max_listpack_value };
    let longest = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut z = ZSet::new_for(pairs.len(), longest, lim);
    for (m, score) in &pairs {
        if score.is_nan() {
            return Err("NaN score in sorted set");
        }
        if z.score(m).is_some() {
            return Err("duplicate sorted set member");
        }
        z.insert_new(m, *score, lim);
    }
    Ok(z)
}

fn build_stream(st: rdb::Stream, s: &Settings) -> Result<Stream, BadData> {
    let mut out = Stream::new();
    let mut prev: Option<StreamId> = None;
    for (id, fields) in &st.entries {
        let id = sid(*id);
        if prev.is_some_and(|p| p >= id) || fields.is_empty() {
            return Err("stream entries out of order or empty");
        }
        prev = Some(id);
        let pairs: Vec<&[u8]> = fields.iter().flat_map(|(f, v)| [f.as_slice(), v.as_slice()]).collect();
        out.append(id, &pairs, s.stream_node_max_bytes, s.stream_node_max_entries);
    }
    if out.len() != st.length || prev.is_some_and(|p| p > sid(st.last_id)) {
        return Err("stream length or last ID disagrees with its entries");
    }
    out.last_id = sid(st.last_id);
    out.first_id = sid(st.first_id);
    out.max_deleted_id = sid(st.max_deleted_id);
    out.entries_added = st.entries_added;
    for g in st.groups {
        if out.groups.contains_key(&g.name) {
            return Err("duplicate consumer group");
        }
        let name = g.name.clone();
        out.groups.insert(name, build_group(g)?);
    }
    out.estimate_heap();
    Ok(out)
}

fn build_group(g: rdb::StreamGroup) -> Result<Group, BadData> {
    let mut group = Group::new(sid(g.last_id), g.entries_read);
    let mut owners: std::collections::BTreeMap<StreamId, (i64, u64)> = Default::default();
    for p in &g.pel {
        if owners.insert(sid(p.id), (p.delivery_time, p.delivery_count)).is_some() {
            return Err("duplicate pending entry");
        }
    }
    for c in g.consumers {
        let name: Arc<[u8]> = Arc::from(c.name.as_slice());
        if group.consumers.contains_key(&name) {
            return Err("duplicate consumer");
        }
        let mut pending = BTreeSet::new();
        for id in c.pending {
            let id = sid(id);
            let Some((delivery_time, delivery_count)) = owners.remove(&id) else {
                return Err("consumer holds an ID that is not pending in its group");
            };
            group.pel.insert(id, Pending { consumer: name.clone(), delivery_time, delivery_count });
            pending.insert(id);
        }
        let active_time = c.active_time.unwrap_or(c.seen_time);
        group.consumers.insert(name, Consumer { seen_time: c.seen_time, active_time, pending });
    }
    if !owners.is_empty() {
        return Err("pending entry without a consumer");
    }
    Ok(group)
}
