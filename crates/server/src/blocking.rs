//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP):
//! clients waiting for keys.
//!
//! A blocking command that finds nothing registers its client here, in the FIFO of every key
//! it waits for, and the client's worker stops reading its commands. When a command pushes to
//! a key (`Ctx::signal_ready`), the dispatcher, after releasing that command's locks, serves
//! the key's waiters oldest first: it claims a waiter (removes it from the registry), reruns
//! its command under the locks of the waiter's keys, and sends the reply to the waiter's
//! worker, which resumes the client. If the command still finds nothing (another client took
//! the element first), the waiter goes back to the front of its queues. Whoever removes a
//! waiter from the registry (the server serving it, its timeout, CLIENT UNBLOCK, disconnect)
//! owns it, so a waiter is answered exactly once and never loses an element.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use commands::CommandSpec;
use parking_lot::Mutex;

/// A blocked client.
#[derive(Clone)]
pub struct Waiter {
    pub id: u64,
    pub worker: usize,
    pub db: usize,
    pub resp3: bool,
    pub cmd: &'static CommandSpec,
    pub argv: Vec<Vec<u8>>,
    /// The keys it waits on.
    pub keys: Vec<Vec<u8>>,
    pub deadline: Option<i64>,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<(usize, Vec<u8>), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
}

/// Every blocked client.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    count: AtomicUsize,
    /// Blocked XREADGROUP clients: while there are any, the keyspace records expired keys,
    /// since an expired stream unblocks them (with an error, as a deleted one).
    group_readers: AtomicUsize,
}

impl Registry {
    /// Number of blocked clients.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any client is blocked in XREADGROUP.
    pub fn has_group_readers(&self) -> bool {
        self.group_readers.load(Ordering::Relaxed) > 0
    }

    /// Counts a blocked XREADGROUP client in (`delta` 1) or out (-1); called under `inner`.
    fn count_group_reader(&self, w: &Waiter, delta: isize) {
        if w.cmd.name == "xreadgroup" {
            let now = self.group_readers.load(Ordering::Relaxed).saturating_add_signed(delta);
            self.group_readers.store(now, Ordering::Relaxed);
            store::db::record_expired_for_readers(now > 0);
        }
    }

    /// Blocks a client: appends it to the queue of each of its keys (or, with `front`, puts
    /// it back at the head, keeping its turn).
    pub fn add(&self, w: Waiter, front: bool) {
        let mut inner = self.inner.lock();
        for key in &w.keys {
            let q = inner.by_key.entry((w.db, key.clone())).or_default();
            if !q.contains(&w.id) {
                if front {
                    q.push_front(w.id);
                } else {
                    q.push_back(w.id);
                }
            }
        }
        self.count_group_reader(&w, 1);
        if let Some(old) = inner.waiters.insert(w.id, w) {
            self.count_group_reader(&old, -1);
        } else {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes (claims) a blocked client; `None` if it is not blocked (any more).
    pub fn remove(&self, id: u64) -> Option<Waiter> {
        let mut inner = self.inner.lock();
        self.remove_locked(&mut inner, id)
    }

    fn remove_locked(&self, inner: &mut Inner, id: u64) -> Option<Waiter> {
        let w = inner.waiters.remove(&id)?;
        self.count.fetch_sub(1, Ordering::Relaxed);
        self.count_group_reader(&w, -1);
        for key in &w.keys {
            let k = (w.db, key.clone());
            if let Some(q) = inner.by_key.get_mut(&k) {
                q.retain(|x| *x != id);
                if q.is_empty() {
                    inner.by_key.remove(&k);
                }
            }
        }
        Some(w)
    }

    /// Every (database, key) some client waits on.
    pub fn waiting_keys(&self) -> Vec<(usize, Vec<u8>)> {
        self.inner.lock().by_key.keys().cloned().collect()
    }

    /// Claims the oldest client waiting on `key` whose command `wants`, if any.
    pub fn claim_first(&self, db: usize, key: &[u8], wants: impl Fn(&Waiter) -> bool) -> Option<Waiter> {
        let mut inner = self.inner.lock();
        let q = inner.by_key.get(&(db, key.to_vec()))?;
        let id = *q.iter().find(|id| inner.waiters.get(id).is_some_and(&wants))?;
        self.remove_locked(&mut inner, id)
    }
}
