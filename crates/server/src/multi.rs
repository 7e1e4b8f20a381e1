//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! While a client is in MULTI, every command that passes the generic checks is queued and
//! answered `+QUEUED`; one that fails them (unknown command, wrong arity, ...) is answered
//! with its error and dooms the transaction (EXEC then replies `-EXECABORT`). EXEC locks the
//! union of the shards its queued commands declare (every shard if one of them needs the
//! whole keyspace) and runs them back to back under that one lock, so no other client can
//! observe or interleave with the transaction. Errors inside EXEC do not roll back.
//!
//! WATCH registers the key in [`Watches`]; any command that modifies a watched key (it made
//! a change, see `dispatch::run`) flags every client watching it, while still holding the
//! key's shard lock, so EXEC (which checks the flag under its own locks) cannot miss a write.
//! A watched key that expires before EXEC also aborts it, as in Redis 7.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use commands::table::flags;
use commands::{CmdError, CmdResult, CommandSpec, Handler};
use parking_lot::Mutex;

use crate::dispatch::{self, WorkerLocal};
use crate::session::Session;
use crate::Shared;

/// A command waiting in a MULTI queue.
pub struct Queued {
    pub cmd: &'static CommandSpec,
    pub sub: Option<&'static CommandSpec>,
    pub args: Vec<Vec<u8>>,
}

impl Queued {
    pub(crate) fn spec(&self) -> &'static CommandSpec {
        self.sub.unwrap_or(self.cmd)
    }
}

/// A client's open transaction.
#[derive(Default)]
pub struct MultiState {
    pub queued: Vec<Queued>,
    /// A command failed while queuing: EXEC must refuse the whole transaction.
    pub doomed: bool,
}

/// One WATCHed key of a client.
pub struct Watched {
    pub db: usize,
    pub key: Vec<u8>,
    /// Whether the key existed (was live) when WATCH ran: if it later disappears without a
    /// write touching it, it expired, which also aborts EXEC.
    pub existed: bool,
}

/// The flags of the clients watching one key, by (database, key).
type WatchMap = HashMap<(usize, Vec<u8>), Vec<Arc<AtomicBool>>>;

/// Every watched key, and the flags of the clients watching it.
#[derive(Default)]
pub struct Watches {
    /// Number of (key, client) registrations: lets writes skip the lock when nobody watches.
    count: AtomicUsize,
    map: Mutex<WatchMap>,
}

impl Watches {
    pub fn watch(&self, db: usize, key: &[u8], flag: &Arc<AtomicBool>) {
        let mut map = self.map.lock();
        let list = map.entry((db, key.to_vec())).or_default();
        if !list.iter().any(|f| Arc::ptr_eq(f, flag)) {
            list.push(flag.clone());
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn unwatch(&self, db: usize, key: &[u8], flag: &Arc<AtomicBool>) {
        let mut map = self.map.lock();
        let k = (db, key.to_vec());
        if let Some(list) = map.get_mut(&k) {
            let before = list.len();
            list.retain(|f| !Arc::ptr_eq(f, flag));
            self.count.fetch_sub(before - list.len(), Ordering::Relaxed);
            if list.is_empty() {
                map.remove(&k);
            }
        }
    }

    /// Whether any client watches any key.
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Number of distinct clients watching at least one key.
    pub fn watching_clients(&self) -> usize {
        let map = self.map.lock();
        let mut flags: Vec<*const AtomicBool> = map.values().flatten().map(Arc::as_ptr).collect();
        flags.sort_unstable();
        flags.dedup();
        flags.len()
    }

    /// Number of watched (key, client) pairs.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flags the clients watching `key` in `db`.
    pub fn touch(&self, db: usize, key: &[u8]) {
        if !self.any() {
            return;
        }
        if let Some(list) = self.map.lock().get(&(db, key.to_vec())) {
            list.iter().for_each(|f| f.store(true, Ordering::Relaxed));
        }
    }

    /// Every watched (db, key).
    pub fn keys(&self) -> Vec<(usize, Vec<u8>)> {
        self.map.lock().keys().cloned().collect()
    }
}

/// Drops every WATCH of a client (EXEC, DISCARD, UNWATCH, RESET, disconnect).
pub fn unwatch_all(shared: &Shared, s: &mut Session) {
    for w in s.watched.drain(..) {
        shared.watches.unwatch(w.db, &w.key, &s.watch_flag);
    }
    s.watch_flag.store(false, Ordering::Relaxed);
}

/// Whether a command is handled immediately even inside MULTI.
pub fn runs_inside_multi(cmd: &CommandSpec) -> bool {
    matches!(cmd.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Queues a command of a client in MULTI (the generic checks already passed).
pub fn queue(
    s: &mut Session,
    cmd: &'static CommandSpec,
    sub: Option<&'static CommandSpec>,
    argv: &[&[u8]],
) -> CmdResult {
    let spec = sub.unwrap_or(cmd);
    let Some(multi) = s.multi.as_mut() else { return Ok(()) };
    if spec.has(flags::NO_MULTI) {
        multi.doomed = true;
        return Err(CmdError::fixed("ERR Command not allowed inside a transaction"));
    }
    multi.queued.push(Queued { cmd, sub, args: argv.iter().map(|a| a.to_vec()).collect() });
    s.out.simple("QUEUED");
    Ok(())
}

/// MULTI
pub fn multi(s: &mut Session) -> CmdResult {
    if s.multi.is_some() {
        return Err(CmdError::fixed("ERR MULTI calls can not be nested"));
    }
    s.multi = Some(MultiState::default());
    s.info.multi.store(0, Ordering::Relaxed);
    s.out.ok();
    Ok(())
}

/// DISCARD
pub fn discard(shared: &Shared, s: &mut Session) -> CmdResult {
    if s.multi.take().is_none() {
        return Err(CmdError::fixed("ERR DISCARD without MULTI"));
    }
    s.info.multi.store(-1, Ordering::Relaxed);
    unwatch_all(shared, s);
    s.out.ok();
    Ok(())
}

/// WATCH key [key ...]
pub fn watch(shared: &Shared, s: &mut Session, argv: &[&[u8]], now: i64) -> CmdResult {
    if s.multi.is_some() {
        return Err(CmdError::fixed("ERR WATCH inside MULTI is not allowed"));
    }
    for key in &argv[1..] {
        if s.watched.iter().any(|w| w.db == s.db && w.key == *key) {
            continue;
        }
        let existed = {
            let mut view = shared.keyspace.lock_key(key);
            view.db(s.db, key).contains(key, now)
        };
        shared.watches.watch(s.db, key, &s.watch_flag);
        s.watched.push(Watched { db: s.db, key: key.to_vec(), existed });
    }
    s.out.ok();
    Ok(())
}

/// UNWATCH
pub fn unwatch(shared: &Shared, s: &mut Session) -> CmdResult {
    unwatch_all(shared, s);
    s.out.ok();
    Ok(())
}

/// Whether a queued command needs every shard locked for EXEC.
fn needs_all_shards(q: &Queued) -> bool {
    let spec = q.spec();
    match spec.handler {
        Handler::Keyspace(_) => spec.has(flags::ALL_SHARDS),
        // Server commands that read the keyspace (INFO, DEBUG) get it through EXEC's lock.
        // Scripts may touch any key, so EXEC locks everything for them too.
        Handler::Server => matches!(
            q.cmd.name,
            "info" | "debug" | "eval" | "eval_ro" | "evalsha" | "evalsha_ro" | "fcall" | "fcall_ro"
        ),
    }
}

/// EXEC: runs the queued commands atomically, or refuses (EXECABORT) or aborts (a watched
/// key changed: null reply).
pub fn exec(shared: &Shared, local: &mut WorkerLocal, s: &mut Session, now: i64) -> CmdResult {
    let Some(multi) = s.multi.take() else {
        return Err(CmdError::fixed("ERR EXEC without MULTI"));
    };
    s.info.multi.store(-1, Ordering::Relaxed);
    if multi.doomed {
        unwatch_all(shared, s);
        return Err(CmdError::fixed("EXECABORT Transaction discarded because of previous errors."));
    }
    let mut view = if multi.queued.iter().any(needs_all_shards) {
        shared.keyspace.lock_all()
    } else {
        let keys = multi.queued.iter().flat_map(|q| {
            let argv: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
            q.spec().keys_of(&argv).into_iter().map(move |i| q.args[i].as_slice())
        });
        let watched = s.watched.iter().map(|w| w.key.as_slice());
        shared.keyspace.lock_keys(keys.chain(watched).collect::<Vec<_>>())
    };
    if watch_broken(s, &mut view, now) {
        drop(view);
        unwatch_all(shared, s);
        s.out.null_array();
        return Ok(());
    }
    unwatch_all(shared, s);
    s.out.array(multi.queued.len());
    // The transaction's effects go to the append-only log together, under its locks.
    crate::aof::begin(local);
    for q in &multi.queued {
        let argv: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
        dispatch::run_queued(shared, local, s, q.cmd, q.sub, &argv, &mut view);
    }
    crate::aof::end(shared, local);
    Ok(())
}

/// Whether a watched key was written or has expired since WATCH.
fn watch_broken(s: &Session, view: &mut store::View<'_>, now: i64) -> bool {
    if s.watch_flag.load(Ordering::Relaxed) {
        return true;
    }
    s.watched.iter().any(|w| w.existed && !view.db(w.db, &w.key).contains(&w.key, now))
}
