//! The memory figure: the bytes the server has allocated and not freed, as Redis's own
//! counter (`used_memory`), known before every command at the cost of a few loads. It is what
//! `maxmemory` is enforced against and what INFO reports as `used_memory`.
//!
//! jemalloc keeps, for each thread, running totals of the bytes it handed out and took back
//! (`thread.allocatedp` / `thread.deallocatedp`: plain counters in thread-local storage,
//! updated on every allocation, in allocator size classes). Every thread of the server
//! registers a slot and publishes its net (allocated − freed) into it: workers after every
//! event-loop iteration and after evicting, the cron thread every tick, short-lived threads
//! (lazy freeing) when they end, folding their net into a retired total. [`used`] adds up the
//! slots, with the calling thread's own net read fresh.
//!
//! Memory allocated by one thread and freed by another shows as a positive net on the first
//! and a negative one on the second; the sum is exact. Allocator metadata and memory cached
//! by jemalloc for reuse are not counted (INFO's `allocator_*` fields show them), as Redis's
//! counter does not count them either.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tikv_jemalloc_ctl::thread::{allocatedp, deallocatedp, ThreadLocal};

/// At most this many threads publish at once (workers are one per core).
const SLOTS: usize = 256;

/// One slot per registered thread, each on its own cache line.
#[repr(align(64))]
struct Slot(AtomicI64);

static NETS: [Slot; SLOTS] = [const { Slot(AtomicI64::new(0)) }; SLOTS];
/// Slots ever handed out (the sum covers `..USED_SLOTS`).
static USED_SLOTS: AtomicUsize = AtomicUsize::new(0);
/// Slots given back by threads that ended.
static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// The nets of threads that ended.
static RETIRED: AtomicI64 = AtomicI64::new(0);

struct Counters {
    slot: usize,
    allocated: ThreadLocal<u64>,
    deallocated: ThreadLocal<u64>,
}

impl Counters {
    fn net(&self) -> i64 {
        self.allocated.get() as i64 - self.deallocated.get() as i64
    }
}

thread_local! {
    static COUNTERS: RefCell<Option<Counters>> = const { RefCell::new(None) };
}

/// Gives the calling thread a slot (idempotent). Everything the thread allocated before,
/// since it started, is counted too.
pub fn register_thread() {
    COUNTERS.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_some() {
            return;
        }
        let (Ok(allocated), Ok(deallocated)) = (allocatedp::read(), deallocatedp::read()) else { return };
        let slot = FREE_SLOTS.lock().pop().unwrap_or_else(|| USED_SLOTS.fetch_add(1, Ordering::Relaxed));
        if slot >= SLOTS {
            return;
        }
        let counters = Counters { slot, allocated, deallocated };
        NETS[slot].0.store(counters.net(), Ordering::Relaxed);
        *c = Some(counters);
    });
}

/// Folds the calling thread's net into the retired total and frees its slot; for threads
/// about to end.
pub fn retire_thread() {
    COUNTERS.with(|c| {
        if let Some(c) = c.borrow_mut().take() {
            RETIRED.fetch_add(c.net(), Ordering::Relaxed);
            NETS[c.slot].0.store(0, Ordering::Relaxed);
            FREE_SLOTS.lock().push(c.slot);
        }
    });
}

/// Runs `f` on a new thread named `name` whose allocations are counted.
pub fn spawn_counted(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(move || {
        register_thread();
        f();
        retire_thread();
    })
}

/// Publishes the calling thread's net allocation into its slot.
pub fn publish() {
    COUNTERS.with(|c| {
        if let Some(c) = &*c.borrow() {
            NETS[c.slot].0.store(c.net(), Ordering::Relaxed);
        }
    });
}

/// The calling thread's net allocation so far (allocated − freed, in allocator size classes),
/// or `None` if the thread is not registered. Two readings bracket an edit to measure exactly
/// what it allocated.
pub fn thread_net() -> Option<i64> {
    COUNTERS.with(|c| c.borrow().as_ref().map(Counters::net))
}

/// The bytes allocated and not freed, as this thread can know it now.
pub fn used() -> u64 {
    let own = COUNTERS.with(|c| c.borrow().as_ref().map(|c| (c.slot, c.net())));
    let n = USED_SLOTS.load(Ordering::Relaxed).min(SLOTS);
    let mut sum: i64 = NETS[..n].iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
    if let Some((slot, net)) = own {
        sum += net - NETS[slot].0.load(Ordering::Relaxed);
    }
    (sum + RETIRED.load(Ordering::Relaxed)).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    // The figures come from jemalloc's counters, so the tests run on jemalloc as the server does.
    #[global_allocator]
    static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    #[test]
    fn own_allocations_show_at_once_and_threads_add_up() {
        register_thread();
        let before = used() as i64;
        let block = vec![1u8; 4 << 20];
        let during = used() as i64;
        assert!((during - before - (4 << 20)).abs() < 64 << 10, "grew by {}", during - before);
        // A counted thread frees it: the total drops back once that thread retires.
        spawn_counted("test-free", move || drop(block)).unwrap().join().unwrap();
        let after = used() as i64;
        assert!((after - before).abs() < 64 << 10, "the freeing thread's net was not folded in: {after} vs {before}");
    }
}
