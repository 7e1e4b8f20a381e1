//! Key creations and read misses, recorded for the `new` and `keymiss` keyspace events.
//!
//! Redis reports `new` when a key is added (`dbAdd`) and `keymiss` when a read finds nothing,
//! in the middle of a command, before the command's own events. Recording happens on the
//! worker thread that runs the command, only while `notify-keyspace-events` asks for these
//! classes (two relaxed atomic loads otherwise); the command layer drains the journal in
//! order when it reports its own events, and the dispatcher drains the rest after the
//! command. [`crate::View::db`] notes which database the command is working on, so events
//! carry the right database even for MOVE and COPY ... DB.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};

static RECORD_NEW: AtomicBool = AtomicBool::new(false);
static RECORD_MISS: AtomicBool = AtomicBool::new(false);

thread_local! {
    static CURRENT_DB: Cell<usize> = const { Cell::new(0) };
    static JOURNAL: RefCell<Vec<Record>> = const { RefCell::new(Vec::new()) };
}

/// One recorded event: (database, event name, key).
pub type Record = (usize, &'static str, Vec<u8>);

/// Turns recording of key creations (`new`) and read misses (`keymiss`) on or off.
pub fn set_recording(new: bool, miss: bool) {
    RECORD_NEW.store(new, Ordering::Relaxed);
    RECORD_MISS.store(miss, Ordering::Relaxed);
}

/// Whether anything is being recorded.
pub fn active() -> bool {
    RECORD_NEW.load(Ordering::Relaxed) || RECORD_MISS.load(Ordering::Relaxed)
}

/// Notes the database the running command works on.
#[inline]
pub(crate) fn note_db(db: usize) {
    if active() {
        CURRENT_DB.with(|c| c.set(db));
    }
}

fn record(name: &'static str, key: &[u8]) {
    let db = CURRENT_DB.with(Cell::get);
    JOURNAL.with(|j| j.borrow_mut().push((db, name, key.to_vec())));
}

/// Records that `key` was created.
#[inline]
pub(crate) fn key_added(key: &[u8]) {
    if RECORD_NEW.load(Ordering::Relaxed) {
        record("new", key);
    }
}

/// Records that a read did not find `key`.
#[inline]
pub(crate) fn key_missed(key: &[u8]) {
    if RECORD_MISS.load(Ordering::Relaxed) {
        record("keymiss", key);
    }
}

/// Takes everything recorded on this thread, oldest first.
pub fn drain() -> Vec<Record> {
    if !active() {
        return Vec::new();
    }
    JOURNAL.with(|j| std::mem::take(&mut *j.borrow_mut()))
}
