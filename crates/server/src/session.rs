//! Per-connection protocol state owned by the connection's worker: selected database,
//! protocol version, authentication, reply mode, and the output buffer.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use resp::{Protocol, ReplyBuf};

use crate::clients::ClientInfo;

/// CLIENT REPLY modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    /// The current command's reply is being skipped (SKIP was issued before it).
    Skipping,
}

/// The state of one client connection, as commands see it.
pub struct Session {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub authenticated: bool,
    pub out: ReplyBuf,
    pub reply_mode: ReplyMode,
    /// Close the connection once pending output is written (QUIT, protocol errors, KILL of self).
    pub close_after_reply: bool,
    pub monitor: bool,
    /// The next command waits for a CLIENT PAUSE to end.
    pub paused: bool,
    /// An open MULTI transaction.
    pub multi: Option<crate::multi::MultiState>,
    /// Keys under WATCH, and the flag writers raise when one of them changes.
    pub watched: Vec<crate::multi::Watched>,
    pub watch_flag: Arc<AtomicBool>,
    /// Pub/Sub subscriptions.
    pub subs: crate::pubsub::ClientSubs,
    /// Since when (unix ms) unsent output has been above the pub/sub soft limit.
    pub soft_limit_since: Option<i64>,
    /// Blocked in BLPOP and friends, until this deadline (inner `None` = forever).
    pub blocked: Option<Option<i64>>,
    /// Replies are held until the append-only log is durable up to this offset (0: not
    /// held), for `appendfsync always`.
    pub hold_until: u64,
}

impl Session {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Session {
        Session {
            info,
            db: 0,
            authenticated,
            out: ReplyBuf::new(Protocol::Resp2),
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            monitor: false,
            paused: false,
            multi: None,
            watched: Vec::new(),
            watch_flag: Arc::new(AtomicBool::new(false)),
            subs: Default::default(),
            soft_limit_since: None,
            blocked: None,
            hold_until: 0,
        }
    }

    pub fn set_proto(&mut self, proto: Protocol) {
        self.out.proto = proto;
        let v = if proto == Protocol::Resp3 { 3 } else { 2 };
        self.info.resp.store(v, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.info.db.store(db, std::sync::atomic::Ordering::Relaxed);
    }
}
