//! The snapshot writer's CPU priority: idle while it keeps up, normal while it lags.
//!
//! The writer only encodes and writes (the workers copy entries under the shard locks), so it
//! runs as `SCHED_IDLE`: on a shared core it takes only time the workers leave, and a waking
//! worker preempts it at once, which keeps request latency flat during a snapshot. When the
//! queue of copied entries passes its limit (a saturated core starves the writer), the thread
//! that notices switches the writer to normal scheduling until it has caught up, so a snapshot
//! always finishes and its memory stays bounded. Linux only; elsewhere these do nothing.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// A thread whose scheduling can be lowered and raised from any thread.
#[derive(Debug, Default)]
pub struct Priority {
    tid: AtomicI32,
    raised: AtomicBool,
}

impl Priority {
    /// Makes the calling thread idle-priority and remembers it.
    pub fn lower_self(&self) {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: gettid has no arguments and cannot fail.
            let tid = unsafe { libc::gettid() };
            self.tid.store(tid, Ordering::Relaxed);
            set(tid, libc::SCHED_IDLE);
        }
    }

    /// Gives the thread normal scheduling (from any thread), once until [`Priority::relax`].
    pub fn raise(&self) {
        if !self.raised.swap(true, Ordering::Relaxed) {
            #[cfg(target_os = "linux")]
            set(self.tid.load(Ordering::Relaxed), libc::SCHED_OTHER);
        }
    }

    /// Back to idle priority after a [`Priority::raise`].
    pub fn relax(&self) {
        if self.raised.swap(false, Ordering::Relaxed) {
            #[cfg(target_os = "linux")]
            set(self.tid.load(Ordering::Relaxed), libc::SCHED_IDLE);
        }
    }
}

#[cfg(target_os = "linux")]
fn set(tid: i32, policy: i32) {
    if tid == 0 {
        return;
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the call's duration; a failure (no
    // permission to leave SCHED_IDLE) only leaves the priority as it was.
    unsafe { libc::sched_setscheduler(tid, policy, &param) };
}
