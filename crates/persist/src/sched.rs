//! The snapshot writer's CPU priority: idle while it keeps up, normal while it lags.
//!
//! The writer only writes (the workers copy and encode the entries, holding the shard locks
//! only to copy), so it runs as `SCHED_IDLE`: on a shared core it takes only time the workers
//! leave, and a waking worker preempts it at once, which keeps request latency flat during a
//! snapshot. When the
//! queue of copied entries passes its limit (a saturated core starves the writer), the thread
//! that notices switches the writer to normal scheduling until it has caught up, so a snapshot
//! always finishes and its memory stays bounded. Normal scheduling is at nice 19, the lowest
//! normal priority, so even then it takes a small share of a busy core in short slices. A
//! process that could not raise it back from idle (not root, RLIMIT_NICE below 20) leaves it
//! at nice 19. Linux only; elsewhere these do nothing.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// A thread whose scheduling can be lowered and raised from any thread.
#[derive(Debug, Default)]
pub struct Priority {
    tid: AtomicI32,
    raised: AtomicBool,
}

impl Priority {
    /// Gives the calling thread nice 19 and, when the process may raise it back later (root,
    /// or an RLIMIT_NICE that allows it), idle priority; remembers it and returns whether it
    /// went idle. Without that right it stays at nice 19: an idle thread that cannot be raised
    /// could starve on a saturated core while the entries clients change pile up for it.
    pub fn lower_self(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: gettid has no arguments and cannot fail.
            let tid = unsafe { libc::gettid() };
            self.tid.store(tid, Ordering::Relaxed);
            // Normal scheduling (when raised, or when it cannot be idle) is at the lowest
            // priority, nice 19: next to a busy worker the scheduler gives it a small share in
            // short slices, enough to catch up without holding the core for long. Any process
            // may lower its own threads' priority. SCHED_IDLE ignores the nice value.
            // SAFETY: setpriority only changes this thread's nice value.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) };
            if !can_raise() {
                return false;
            }
            set(tid, libc::SCHED_IDLE);
            true
        }
        #[cfg(not(target_os = "linux"))]
        false
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

/// Whether this process may move a thread from SCHED_IDLE back to normal scheduling.
#[cfg(target_os = "linux")]
fn can_raise() -> bool {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: geteuid cannot fail; getrlimit writes only into `lim`.
    unsafe { libc::geteuid() == 0 || (libc::getrlimit(libc::RLIMIT_NICE, &mut lim) == 0 && lim.rlim_cur >= 20) }
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
