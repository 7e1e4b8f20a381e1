//! Pub/Sub: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBE forms, PUBLISH,
//! SPUBLISH and PUBSUB.
//!
//! The registry ([`Registry`]) maps channels and patterns to subscribers (client id and the
//! client's [`Inbox`]). PUBLISH looks the subscribers up under a read lock and, still under
//! it, appends the message to each one's inbox, waking the worker that owns the connection
//! when an inbox turns non-empty; that worker formats the messages in the subscriber's
//! protocol (RESP2 array or RESP3 push) and appends them to the connection's output. One
//! publisher's messages reach each subscriber in the order they were published, because one
//! inbox carries them. An UNSUBSCRIBE removes the subscription under the write lock, so every
//! message PUBLISH counted for it is in the inbox by then: it moves them to the output before
//! its own reply, so nothing arrives after the unsubscribe (as in Redis, where PUBLISH writes
//! to the subscriber's buffer at once). A subscriber whose unsent output passes the `pubsub`
//! class of `client-output-buffer-limit` is disconnected (see `worker::deliver`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use resp::ReplyBuf;

use crate::session::Session;
use crate::worker::Msg;
use crate::Shared;

/// Which kind of subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn subscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    fn unsubscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

/// A message on its way to one subscriber.
#[derive(Debug)]
pub struct Delivery {
    /// The pattern that matched (pmessage), if any.
    pub pattern: Option<Arc<[u8]>>,
    pub shard: bool,
    pub channel: Arc<[u8]>,
    pub payload: Arc<[u8]>,
}

impl Delivery {
    /// Encodes the message in the subscriber's protocol.
    pub fn encode(&self, out: &mut ReplyBuf) {
        match &self.pattern {
            Some(p) => {
                out.push(4);
                out.bulk(b"pmessage");
                out.bulk(p);
            }
            None => {
                out.push(3);
                out.bulk(if self.shard { b"smessage" } else { b"message" });
            }
        }
        out.bulk(&self.channel);
        out.bulk(&self.payload);
    }
}

/// A subscriber's messages not yet written to its connection.
#[derive(Debug)]
pub struct Inbox {
    /// The worker that owns the connection.
    worker: usize,
    queue: Mutex<Vec<Delivery>>,
}

impl Inbox {
    /// Takes every message waiting, oldest first.
    pub fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.queue.lock())
    }
}

type Subscribers = HashMap<u64, Arc<Inbox>>;

/// Every subscription on the server.
#[derive(Default)]
pub struct Registry {
    channels: RwLock<BTreeMap<Vec<u8>, Subscribers>>,
    patterns: RwLock<BTreeMap<Vec<u8>, Subscribers>>,
    shard_channels: RwLock<BTreeMap<Vec<u8>, Subscribers>>,
}

impl Registry {
    fn map(&self, kind: Kind) -> &RwLock<BTreeMap<Vec<u8>, Subscribers>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    fn add(&self, kind: Kind, name: &[u8], client: u64, inbox: &Arc<Inbox>) {
        self.map(kind).write().entry(name.to_vec()).or_default().insert(client, inbox.clone());
    }

    fn remove(&self, kind: Kind, name: &[u8], client: u64) {
        let mut map = self.map(kind).write();
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&client);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Number of channels (or patterns, or shard channels) with at least one subscriber.
    pub fn count(&self, kind: Kind) -> usize {
        self.map(kind).read().len()
    }

    /// Sends `payload` to the subscribers of `channel` (and of matching patterns unless it is
    /// a shard channel); returns how many received it.
    pub fn publish(&self, shared: &Shared, channel: &[u8], payload: &[u8], shard: bool) -> usize {
        let channel: Arc<[u8]> = channel.into();
        let payload: Arc<[u8]> = payload.into();
        let workers = shared.workers.read();
        let mut sent = 0;
        let send = |id: u64, inbox: &Inbox, pattern: Option<Arc<[u8]>>| {
            let d = Delivery { pattern, shard, channel: channel.clone(), payload: payload.clone() };
            let mut queue = inbox.queue.lock();
            queue.push(d);
            let wake = queue.len() == 1;
            drop(queue);
            if wake {
                if let Some(w) = workers.get(inbox.worker) {
                    w.send(Msg::Pubsub(id));
                }
            }
        };
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        if let Some(subs) = self.map(kind).read().get(&*channel) {
            for (&id, inbox) in subs {
                send(id, inbox, None);
                sent += 1;
            }
        }
        if !shard {
            for (pattern, subs) in self.patterns.read().iter() {
                if store::glob::glob_match(pattern, &channel, false) {
                    let p: Arc<[u8]> = pattern.as_slice().into();
                    for (&id, inbox) in subs {
                        send(id, inbox, Some(p.clone()));
                        sent += 1;
                    }
                }
            }
        }
        sent
    }
}

/// A client's subscriptions.
#[derive(Default, Debug)]
pub struct ClientSubs {
    pub channels: Vec<Vec<u8>>,
    pub patterns: Vec<Vec<u8>>,
    pub shard_channels: Vec<Vec<u8>>,
    /// Where PUBLISH leaves this client's messages; made at its first subscription.
    pub inbox: Option<Arc<Inbox>>,
}

impl ClientSubs {
    fn list(&mut self, kind: Kind) -> &mut Vec<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Channels + patterns: the count in (p)subscribe replies.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether the client is in subscribed mode (RESP2 restricts its commands then).
    pub fn active(&self) -> bool {
        self.count() + self.shard_channels.len() > 0
    }
}

/// The count reported in replies of this kind (shard subscriptions count separately).
fn count_for(s: &Session, kind: Kind) -> usize {
    match kind {
        Kind::Shard => s.subs.shard_channels.len(),
        _ => s.subs.count(),
    }
}

fn publish_counts(s: &Session) {
    use std::sync::atomic::Ordering;
    s.info.subs.store(s.subs.channels.len(), Ordering::Relaxed);
    s.info.psubs.store(s.subs.patterns.len(), Ordering::Relaxed);
    s.info.ssubs.store(s.subs.shard_channels.len(), Ordering::Relaxed);
}

/// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE name [name ...]
pub fn subscribe(shared: &Shared, s: &mut Session, kind: Kind, names: &[&[u8]]) {
    let worker = s.info.worker;
    let inbox = s.subs.inbox.get_or_insert_with(|| Arc::new(Inbox { worker, queue: Mutex::new(Vec::new()) })).clone();
    for name in names {
        if !s.subs.list(kind).iter().any(|n| n == name) {
            s.subs.list(kind).push(name.to_vec());
            shared.pubsub.add(kind, name, s.info.id, &inbox);
        }
        let count = count_for(s, kind);
        s.out.push(3);
        s.out.bulk(kind.subscribe_word());
        s.out.bulk(name);
        s.out.int(count as i64);
    }
    publish_counts(s);
}

/// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE [name ...]: no names means all of that kind.
pub fn unsubscribe(shared: &Shared, s: &mut Session, kind: Kind, names: &[&[u8]]) {
    let targets: Vec<Vec<u8>> =
        if names.is_empty() { s.subs.list(kind).clone() } else { names.iter().map(|n| n.to_vec()).collect() };
    if targets.is_empty() {
        s.out.push(3);
        s.out.bulk(kind.unsubscribe_word());
        s.out.null();
        s.out.int(count_for(s, kind) as i64);
    }
    for name in targets {
        let list = s.subs.list(kind);
        if let Some(i) = list.iter().position(|n| *n == name) {
            list.remove(i);
            shared.pubsub.remove(kind, &name, s.info.id);
            // Messages published before the removal go out before its reply.
            flush_inbox(s);
        }
        let count = count_for(s, kind);
        s.out.push(3);
        s.out.bulk(kind.unsubscribe_word());
        s.out.bulk(&name);
        s.out.int(count as i64);
    }
    publish_counts(s);
}

/// Drops every subscription of a client without replying (disconnect, RESET); messages
/// published before go to the output first, ahead of RESET's reply.
pub fn drop_all(shared: &Shared, s: &mut Session) {
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in std::mem::take(s.subs.list(kind)) {
            shared.pubsub.remove(kind, &name, s.info.id);
        }
    }
    flush_inbox(s);
    publish_counts(s);
}

/// Moves the messages waiting in the client's inbox to its output.
pub fn flush_inbox(s: &mut Session) {
    if let Some(inbox) = &s.subs.inbox {
        for d in inbox.take() {
            d.encode(&mut s.out);
        }
    }
}

/// PUBSUB CHANNELS [pattern] / SHARDCHANNELS [pattern]
pub fn channels(shared: &Shared, out: &mut ReplyBuf, kind: Kind, pattern: Option<&[u8]>) {
    let map = shared.pubsub.map(kind).read();
    let names: Vec<&Vec<u8>> =
        map.keys().filter(|n| pattern.is_none_or(|p| store::glob::glob_match(p, n, false))).collect();
    out.array(names.len());
    for n in names {
        out.bulk(n);
    }
}

/// PUBSUB NUMSUB [channel ...] / SHARDNUMSUB [channel ...]
pub fn numsub(shared: &Shared, out: &mut ReplyBuf, kind: Kind, names: &[&[u8]]) {
    let map = shared.pubsub.map(kind).read();
    // A flat array of (channel, count) pairs in both protocols, as Redis replies.
    out.array(names.len() * 2);
    for n in names {
        out.bulk(n);
        out.int(map.get(*n).map_or(0, |s| s.len()) as i64);
    }
}
