//! Worker threads: each runs one event loop (mio/epoll, edge-triggered) over its own
//! `SO_REUSEPORT` listeners and the connections the kernel balances onto them.
//!
//! Per readable event a connection drains its socket, decodes and runs every complete
//! command in its buffer, and writes all the replies with one `write` (pipelining batches
//! writes for free). Other threads reach a worker through its inbox plus a waker: to close a
//! client (CLIENT KILL), to deliver bytes (MONITOR), or to stop.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;
use resp::{parse_command, Limits, Parsed};

use crate::clients::ClientInfo;
use crate::config::Settings;
use crate::dispatch::{self, WorkerLocal};
use crate::session::Session;
use crate::{log_verbose, log_warning, unix_ms, Shared};

const WAKER: Token = Token(0);
const FIRST_LISTENER: usize = 1;
const FIRST_CONN: usize = 1024;
/// Bytes read per `read` call; also the minimum free space kept in an input buffer.
const READ_CHUNK: usize = 16 * 1024;
/// Input buffers larger than this are shrunk when they empty.
const KEEP_INPUT: usize = 64 * 1024;
/// Before authentication a client may not buffer more than this (as Redis).
const PREAUTH_QUERY_LIMIT: usize = 1024 * 1024;

/// A message from another thread.
pub enum Msg {
    /// Close this client (CLIENT KILL).
    Kill(u64),
    /// Append these bytes to this client's output (MONITOR feed).
    Deliver(u64, Vec<u8>),
    /// A published message for this subscriber.
    /// (The messages wait in the subscriber's `pubsub::Inbox`.)
    Pubsub(u64),
    /// The reply of a blocked client's command (it was served, unblocked or timed out): send
    /// it and resume reading the client's commands.
    Unblock(u64, Vec<u8>),
    /// Keys (database, key) that changed outside any worker (active expiry): serve the
    /// clients blocked on them.
    Ready(Vec<(usize, Vec<u8>)>),
}

/// How other threads reach a worker.
pub struct WorkerHandle {
    waker: Arc<Waker>,
    inbox: Arc<Mutex<Vec<Msg>>>,
    /// The append-only log offset this worker's held replies wait for (`u64::MAX`: none).
    durable_wait: Arc<AtomicU64>,
}

impl WorkerHandle {
    /// The log is durable up to `offset`: wakes the worker if replies wait for it.
    pub fn durable_reached(&self, offset: u64) {
        if self.durable_wait.load(Ordering::SeqCst) <= offset {
            self.durable_wait.store(u64::MAX, Ordering::SeqCst);
            self.wake();
        }
    }

    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Queues a message; wakes the worker only if its inbox was empty (a wake-up is already
    /// pending otherwise), so a burst of messages costs one wake-up.
    pub fn send(&self, msg: Msg) {
        let mut inbox = self.inbox.lock();
        let was_empty = inbox.is_empty();
        inbox.push(msg);
        drop(inbox);
        if was_empty {
            self.wake();
        }
    }
}

/// Listeners bound for every worker.
pub struct Listeners {
    pub addrs: Vec<SocketAddr>,
    pub per_worker: Vec<Vec<std::net::TcpListener>>,
}

fn parse_bind(addr: &str) -> Option<(IpAddr, bool)> {
    let (optional, addr) = match addr.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, addr),
    };
    let ip = match addr {
        "*" => IpAddr::from([0, 0, 0, 0]),
        "::*" => IpAddr::from([0u16; 8]),
        other => other.parse().ok()?,
    };
    Some((ip, optional))
}

fn bind_one(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Fails if any socket is bound to `addr`. SO_REUSEPORT would let the workers' listeners
/// join another server's on the same port (the kernel would then split clients between the
/// two), so the address is first bound once without it, as a test, and released.
fn check_free(addr: SocketAddr) -> io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())
}

/// Binds every configured address once per worker (SO_REUSEPORT), resolving port 0 to one
/// real port shared by all; an address another process listens on is an error, as in Redis.
pub fn bind_listeners(settings: &Settings, workers: usize) -> Result<Listeners, String> {
    let mut port = settings.port;
    let mut addrs = Vec::new();
    let mut per_worker: Vec<Vec<std::net::TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    for spec in &settings.bind {
        let (ip, optional) = parse_bind(spec).ok_or_else(|| format!("Invalid bind address '{spec}'"))?;
        let mut bound = Vec::new();
        for _ in 0..workers {
            let free = if port == 0 || !bound.is_empty() { Ok(()) } else { check_free(SocketAddr::new(ip, port)) };
            match free.and_then(|()| bind_one(SocketAddr::new(ip, port), 511)) {
                Ok(l) => {
                    if port == 0 {
                        port = l.local_addr().map_err(|e| e.to_string())?.port();
                    }
                    bound.push(l);
                }
                Err(e) if optional => {
                    log_verbose!("Skipping optional bind address {spec}: {e}");
                    bound.clear();
                    break;
                }
                Err(e) => {
                    return Err(format!("Could not create server TCP listening socket {spec}:{port}: {e}. Is another server using this port? Pick another with --port."));
                }
            }
        }
        if !bound.is_empty() {
            addrs.push(SocketAddr::new(ip, port));
            for (w, l) in bound.into_iter().enumerate() {
                per_worker[w].push(l);
            }
        }
    }
    if addrs.is_empty() {
        return Err("Failed listening on any configured address; check the bind setting.".into());
    }
    Ok(Listeners { addrs, per_worker })
}

/// Input bytes of one connection: `buf[start..end]` are received and not yet consumed.
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Do not try to decode again until `end - start` reaches this.
    need: usize,
}

impl Input {
    fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Makes room for at least READ_CHUNK more bytes, moving data to the front or growing
    /// geometrically, never by a length a client merely announced.
    fn reserve(&mut self) {
        if self.buf.len() - self.end >= READ_CHUNK {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            let new_len = (self.buf.len() * 2).max(self.end + READ_CHUNK);
            self.buf.resize(new_len, 0);
        }
    }

    fn consumed_all(&mut self) {
        self.start = 0;
        self.end = 0;
        if self.buf.len() > KEEP_INPUT {
            self.buf = vec![0; READ_CHUNK];
        }
    }
}

struct Conn {
    stream: TcpStream,
    input: Input,
    session: Session,
    /// Bytes of `session.out` already written.
    out_pos: usize,
}

struct Worker {
    id: usize,
    shared: Arc<Shared>,
    poll: Poll,
    listeners: Vec<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    by_id: std::collections::HashMap<u64, usize>,
    inbox: Arc<Mutex<Vec<Msg>>>,
    local: WorkerLocal,
    ranges: Vec<std::ops::Range<usize>>,
    /// Connections waiting for a CLIENT PAUSE to end.
    paused: Vec<usize>,
    /// Connections blocked in BLPOP and friends.
    blocked: Vec<usize>,
    /// When idle clients were last looked for (unix ms).
    last_idle_check: i64,
    /// The last blocking wait returned events (so a short busy-poll is worth it).
    recently_busy: bool,
    /// When this worker last merged its statistics into the shared totals.
    last_merge: std::time::Instant,
    /// When this worker last advanced a running snapshot's walk.
    last_snapshot_step: std::time::Instant,
    /// Connections whose replies wait for the append-only log to be durable
    /// (`appendfsync always`), and the offset the first of them waits for.
    held: Vec<usize>,
    durable_wait: Arc<AtomicU64>,
    /// The log offset this worker last handed to the writer (see `wait`).
    kicked: u64,
}

/// Starts worker `id` on its listeners.
/// A worker that is set up (its poll, waker, inbox and listeners exist) but not running yet.
/// Every handle is published before any worker starts, so no thread can ever look up a worker
/// (to kill a client or deliver a message) before its handle is known.
pub struct Prepared(Box<Worker>);

impl Prepared {
    /// Starts the worker's thread.
    pub fn start(self) -> Result<std::thread::JoinHandle<()>, String> {
        let mut worker = self.0;
        let id = worker.id;
        std::thread::Builder::new().name(format!("worker-{id}")).spawn(move || worker.run()).map_err(|e| e.to_string())
    }
}

/// Sets up worker `id` on its listeners without starting it.
pub fn prepare(
    id: usize,
    shared: Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
) -> Result<(WorkerHandle, Prepared), String> {
    let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| format!("waker: {e}"))?);
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let mut mio_listeners = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let mut l = TcpListener::from_std(l);
        poll.registry().register(&mut l, Token(FIRST_LISTENER + i), Interest::READABLE).map_err(|e| e.to_string())?;
        mio_listeners.push(l);
    }
    let local = WorkerLocal::new(&shared);
    let durable_wait = Arc::new(AtomicU64::new(u64::MAX));
    let worker = Worker {
        id,
        shared,
        poll,
        listeners: mio_listeners,
        conns: Vec::new(),
        free: Vec::new(),
        by_id: Default::default(),
        inbox: inbox.clone(),
        local,
        ranges: Vec::new(),
        paused: Vec::new(),
        blocked: Vec::new(),
        last_idle_check: 0,
        recently_busy: false,
        last_merge: std::time::Instant::now(),
        last_snapshot_step: std::time::Instant::now(),
        held: Vec::new(),
        durable_wait: durable_wait.clone(),
        kicked: 0,
    };
    let handle = WorkerHandle { waker, inbox, durable_wait };
    Ok((handle, Prepared(Box::new(worker))))
}

/// A worker advances a running snapshot at most this often: one step copies a few buckets
/// (a few microseconds), so the walk takes a bounded share of a busy worker's time.
const SNAPSHOT_STEP_EVERY: std::time::Duration = std::time::Duration::from_micros(100);

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        store::memory::register_thread();
        loop {
            if let Err(e) = self.wait(&mut events) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log_warning!("Worker {} poll failed: {e}", self.id);
                }
                continue;
            }
            self.local.refresh(&self.shared);
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.drain_inbox(),
                    Token(t) if (FIRST_LISTENER..FIRST_CONN).contains(&t) => self.accept(t - FIRST_LISTENER),
                    Token(t) => {
                        self.on_conn_event(t - FIRST_CONN, ev.is_readable() || ev.is_read_closed(), ev.is_writable())
                    }
                }
            }
            self.release_held();
            self.resume_paused();
            self.expire_blocked();
            self.close_idle();
            let now = std::time::Instant::now();
            // A running snapshot advances a few buckets at a time on the workers, between
            // events (see persist::snapshot::Walk), spaced so it costs a bounded share of time.
            if now.duration_since(self.last_snapshot_step) >= SNAPSHOT_STEP_EVERY
                && self.shared.persistence.progress.step(&self.shared.keyspace)
            {
                self.last_snapshot_step = now;
            }
            store::memory::publish();
            // Publish statistics at most every millisecond (INFO merges its own worker's
            // counters first, so they are never stale for the caller).
            if now.duration_since(self.last_merge) >= std::time::Duration::from_millis(1) {
                self.shared.stats.merge(&mut self.local.stats);
                self.last_merge = now;
            }
            if self.shared.shutdown.load(Ordering::SeqCst) {
                self.close_all();
                return;
            }
        }
    }

    /// Waits for events. After a busy iteration the worker first polls without sleeping for
    /// up to `busy-poll-us` microseconds: under load the next request usually arrives within
    /// that window, and picking it up without a sleep/wake-up cycle cuts per-request latency
    /// (a wake-up from idle costs tens of microseconds on virtual machines). An idle server
    /// sleeps at once.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        // What this iteration appended to the log goes to the writer now, as one batch (a
        // wake-up per append would let the writer fsync a part of the batch).
        if self.local.aof.last_end != self.kicked {
            self.kicked = self.local.aof.last_end;
            self.shared.aof.log.kick();
        }
        let spin = self.local.settings.busy_poll_us;
        // Replies waiting for an fsync: leave the core to the log writer instead of spinning.
        if spin > 0 && self.recently_busy && self.held.is_empty() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_micros(spin);
            loop {
                self.poll.poll(events, Some(std::time::Duration::ZERO))?;
                if !events.is_empty() {
                    return Ok(());
                }
                if std::time::Instant::now() >= deadline {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        // About to sleep: publish this worker's statistics so other threads see them.
        self.shared.stats.merge(&mut self.local.stats);
        self.poll.poll(events, self.pause_timeout())?;
        self.recently_busy = !events.is_empty();
        Ok(())
    }

    /// How long the event loop may sleep: until a CLIENT PAUSE ends (UNPAUSE wakes us), and at
    /// most a second while idle clients must be timed out.
    fn pause_timeout(&self) -> Option<std::time::Duration> {
        let mut wait: Option<i64> = None;
        if !self.paused.is_empty() {
            let left = self.shared.pause_end_ms.load(Ordering::Relaxed) - unix_ms();
            wait = Some(left.clamp(1, 1000));
        }
        if self.local.settings.timeout_secs > 0 {
            wait = Some(wait.unwrap_or(1000).min(1000));
        }
        let now = unix_ms();
        for &slot in &self.blocked {
            if let Some(Some(Some(deadline))) =
                self.conns.get(slot).map(|c| c.as_ref().map(|c| c.session.blocked.flatten()))
            {
                let left = (deadline - now).clamp(0, 1000);
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        wait.map(|ms| std::time::Duration::from_millis(ms as u64))
    }

    /// Closes clients idle for longer than `timeout` seconds (not MONITOR or paused clients),
    /// checking at most once a second.
    fn close_idle(&mut self) {
        let limit = self.local.settings.timeout_secs;
        let now = unix_ms();
        if limit == 0 || now - self.last_idle_check < 1000 {
            return;
        }
        self.last_idle_check = now;
        let limit_ms = (limit as i64).saturating_mul(1000);
        let idle: Vec<usize> = (0..self.conns.len())
            .filter(|&slot| {
                self.conns[slot].as_ref().is_some_and(|c| {
                    !c.session.monitor
                        && !c.session.paused
                        && now - c.session.info.last_interaction_ms.load(Ordering::Relaxed) > limit_ms
                })
            })
            .collect();
        for slot in idle {
            log_verbose!("Closing idle client (idle longer than timeout {limit} s)");
            self.close(slot);
        }
    }

    /// Runs the held-back commands of paused clients once the pause is over.
    fn resume_paused(&mut self) {
        if self.paused.is_empty() || self.shared.pause_active(unix_ms()) {
            return;
        }
        for slot in std::mem::take(&mut self.paused) {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { continue };
            if !conn.session.paused {
                continue;
            }
            conn.session.paused = false;
            self.shared.paused_clients.fetch_sub(1, Ordering::Relaxed);
            let mut open = run_commands(conn, &self.shared, &mut self.local, &mut self.ranges);
            open = open && flush(conn, &mut self.local);
            self.note_paused(slot);
            if !open {
                self.close(slot);
            }
        }
    }

    /// Remembers a connection whose input stopped at a paused command.
    fn note_paused(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return };
        if conn.session.paused && !self.paused.contains(&slot) {
            self.paused.push(slot);
            self.shared.paused_clients.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn accept(&mut self, idx: usize) {
        loop {
            let (stream, addr) = match self.listeners[idx].accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_warning!("Accepting client connection: {e}");
                    return;
                }
            };
            self.add_conn(stream, addr);
        }
    }

    fn refuse(&mut self, mut stream: TcpStream, text: &str) {
        let _ = stream.write_all(text.as_bytes());
        self.local.stats.rejected_connections += 1;
    }

    fn add_conn(&mut self, stream: TcpStream, addr: SocketAddr) {
        let settings = self.local.settings.clone();
        if self.shared.clients.len() >= settings.maxclients {
            self.refuse(stream, "-ERR max number of clients reached\r\n");
            return;
        }
        if settings.protected_mode && settings.requirepass.is_none() && !addr.ip().is_loopback() {
            log_warning!("Refused connection from {addr}: protected mode is on and no password is set");
            self.refuse(stream, PROTECTED_MODE_ERROR);
            return;
        }
        let _ = stream.set_nodelay(true);
        if settings.tcp_keepalive > 0 {
            let sock = socket2::SockRef::from(&stream);
            let ka = socket2::TcpKeepalive::new().with_time(std::time::Duration::from_secs(settings.tcp_keepalive));
            let _ = sock.set_tcp_keepalive(&ka);
        }
        let laddr = stream.local_addr().unwrap_or(addr);
        let id = self.shared.clients.next_id();
        let info = Arc::new(ClientInfo::new(id, addr, laddr, stream.as_raw_fd(), self.id, unix_ms()));
        self.shared.clients.add(info.clone());
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let mut conn = Conn {
            stream,
            input: Input { buf: vec![0; READ_CHUNK], start: 0, end: 0, need: 0 },
            session: Session::new(info, settings.requirepass.is_none()),
            out_pos: 0,
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut conn.stream, Token(FIRST_CONN + slot), interest) {
            log_warning!("Registering client {addr}: {e}");
            self.shared.clients.remove(id);
            self.free.push(slot);
            return;
        }
        self.by_id.insert(id, slot);
        self.conns[slot] = Some(conn);
    }

    fn on_conn_event(&mut self, slot: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut open = true;
        if readable {
            // Defence in depth: a bug that panics while decoding or running this client's
            // input must cost this connection, not the worker and every client on it.
            let (shared, local, ranges) = (&self.shared, &mut self.local, &mut self.ranges);
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_and_run(conn, shared, local, ranges)));
            open = run.unwrap_or_else(|_| {
                log_warning!("Internal error while serving client id={}; closing that connection. Please report this with the server log.", conn.session.info.id);
                false
            });
        }
        if open && (writable || readable) {
            open = flush(conn, &mut self.local);
        }
        if !open || conn.session.info.kill.load(Ordering::Relaxed) {
            self.close(slot);
            return;
        }
        self.note_held(slot);
        self.note_waiting(slot);
    }

    /// Remembers a connection whose replies wait for the log (see `release_held`).
    fn note_held(&mut self, slot: usize) {
        let held = self.conns.get(slot).and_then(Option::as_ref).is_some_and(|c| c.session.hold_until > 0);
        if held && !self.held.contains(&slot) {
            self.held.push(slot);
        }
    }

    /// Sends the replies that waited for the append-only log to be durable, and asks to be
    /// woken for the rest.
    fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        loop {
            let durable = self.shared.aof.log.durable();
            let mut first_wait = u64::MAX;
            let mut i = 0;
            while i < self.held.len() {
                let slot = self.held[i];
                let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                    self.held.swap_remove(i);
                    continue;
                };
                if conn.session.hold_until > durable {
                    first_wait = first_wait.min(conn.session.hold_until);
                    i += 1;
                    continue;
                }
                conn.session.hold_until = 0;
                self.held.swap_remove(i);
                let open = flush(conn, &mut self.local);
                if !open || conn.session.info.kill.load(Ordering::Relaxed) {
                    self.close(slot);
                }
            }
            // Published before looking at the durable offset again, so the log writer
            // either sees it or this loop sees the writer's progress.
            self.durable_wait.store(first_wait, Ordering::SeqCst);
            if first_wait == u64::MAX || self.shared.aof.log.durable() < first_wait {
                return;
            }
        }
    }

    fn close(&mut self, slot: usize) {
        let Some(mut conn) = self.conns[slot].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let id = conn.session.info.id;
        crate::multi::unwatch_all(&self.shared, &mut conn.session);
        crate::pubsub::drop_all(&self.shared, &mut conn.session);
        if conn.session.blocked.is_some() {
            self.shared.blocking.remove(id);
            self.blocked.retain(|s| *s != slot);
        }
        if conn.session.paused {
            self.paused.retain(|s| *s != slot);
            self.shared.paused_clients.fetch_sub(1, Ordering::Relaxed);
        }
        self.shared.clients.remove(id);
        if conn.session.monitor {
            self.shared.clients.set_monitor(id, None);
        }
        self.by_id.remove(&id);
        self.free.push(slot);
    }

    fn drain_inbox(&mut self) {
        let msgs = std::mem::take(&mut *self.inbox.lock());
        for msg in msgs {
            match msg {
                Msg::Kill(id) => {
                    if let Some(&slot) = self.by_id.get(&id) {
                        self.close(slot);
                    }
                }
                Msg::Deliver(id, bytes) => self.deliver(id, |s| s.out.raw(&bytes)),
                Msg::Pubsub(id) => self.deliver(id, crate::pubsub::flush_inbox),
                Msg::Unblock(id, reply) => self.unblock(id, &reply),
                Msg::Ready(keys) => {
                    self.local.ready.extend(keys);
                    dispatch::serve_blocked(&self.shared, &mut self.local);
                }
            }
        }
    }

    /// Appends a message to a client's output and writes it; a client whose unsent output
    /// passes the pub/sub output-buffer limit is disconnected, as Redis does for slow
    /// subscribers.
    fn deliver(&mut self, id: u64, write: impl FnOnce(&mut Session)) {
        let Some(&slot) = self.by_id.get(&id) else { return };
        let Some(conn) = self.conns[slot].as_mut() else { return };
        write(&mut conn.session);
        let mut open = flush(conn, &mut self.local);
        let pending = (conn.session.out.buf.len() - conn.out_pos) as u64;
        let [hard, soft, soft_secs] =
            if conn.session.subs.active() { self.local.settings.pubsub_output_limit } else { [0, 0, 0] };
        let now = unix_ms();
        if soft > 0 && pending > soft {
            let since = *conn.session.soft_limit_since.get_or_insert(now);
            if now - since > soft_secs as i64 * 1000 {
                open = false;
            }
        } else {
            conn.session.soft_limit_since = None;
        }
        if hard > 0 && pending > hard {
            open = false;
        }
        if !open {
            if pending > 0 {
                log_warning!(
                    "Client id={} addr={} closed for overcoming of output buffer limits ({} bytes pending; see client-output-buffer-limit pubsub).",
                    id,
                    conn.session.info.addr,
                    pending
                );
            }
            self.close(slot);
        }
    }

    /// Answers a blocked client and resumes its pipeline.
    fn unblock(&mut self, id: u64, reply: &[u8]) {
        let Some(&slot) = self.by_id.get(&id) else { return };
        let Some(conn) = self.conns[slot].as_mut() else { return };
        conn.session.blocked = None;
        conn.session.out.raw(reply);
        self.blocked.retain(|s| *s != slot);
        // The pop that served it was logged by the worker that ran it: under `appendfsync
        // always` its reply waits for everything logged so far.
        if self.local.settings.appendfsync == persist::aof::Fsync::Always && self.shared.aof.active() {
            conn.session.hold_until = self.shared.aof.log.appended();
        }
        let mut open = run_commands(conn, &self.shared, &mut self.local, &mut self.ranges);
        open = open && flush(conn, &mut self.local);
        dispatch::serve_blocked(&self.shared, &mut self.local);
        if !open {
            self.close(slot);
            return;
        }
        self.note_held(slot);
        self.note_waiting(slot);
    }

    /// Times out blocked clients whose deadline passed (unless the server just claimed them
    /// to serve them, in which case their reply is on its way).
    fn expire_blocked(&mut self) {
        if self.blocked.is_empty() {
            return;
        }
        let now = unix_ms();
        let due: Vec<(usize, u64, bool)> = self
            .blocked
            .iter()
            .filter_map(|&slot| {
                let conn = self.conns.get(slot)?.as_ref()?;
                match conn.session.blocked {
                    Some(Some(deadline)) if deadline <= now => {
                        Some((slot, conn.session.info.id, conn.session.out.is_resp3()))
                    }
                    _ => None,
                }
            })
            .collect();
        for (_, id, resp3) in due {
            if self.shared.blocking.remove(id).is_some() {
                let null: &[u8] = if resp3 { b"_\r\n" } else { b"*-1\r\n" };
                self.unblock(id, null);
            }
        }
    }

    /// Remembers a connection that is blocked or waiting for a pause to end.
    fn note_waiting(&mut self, slot: usize) {
        self.note_paused(slot);
        let Some(conn) = self.conns.get(slot).and_then(Option::as_ref) else { return };
        if conn.session.blocked.is_some() && !self.blocked.contains(&slot) {
            self.blocked.push(slot);
        }
    }

    fn close_all(&mut self) {
        for slot in 0..self.conns.len() {
            if let Some(conn) = self.conns[slot].as_mut() {
                let _ = flush(conn, &mut self.local);
            }
            self.close(slot);
        }
    }
}

/// Reads everything available and runs every complete command. Returns false if the
/// connection must be closed now.
fn read_and_run(
    conn: &mut Conn,
    shared: &Shared,
    local: &mut WorkerLocal,
    ranges: &mut Vec<std::ops::Range<usize>>,
) -> bool {
    loop {
        conn.input.reserve();
        let end = conn.input.end;
        let room = conn.input.buf.len() - end;
        match conn.stream.read(&mut conn.input.buf[end..]) {
            Ok(0) => return false,
            Ok(n) => {
                conn.input.end += n;
                local.stats.net_in += n as u64;
                bump(&conn.session.info.tot_net_in, n as u64);
                if !run_commands(conn, shared, local, ranges) {
                    return false;
                }
                // A short read drained the socket: with edge-triggered polling the next
                // arrival raises a new event, so skip the read that would only say EAGAIN.
                if conn.session.close_after_reply || n < room {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Decodes and runs the complete commands in the input buffer. Returns false to close.
fn run_commands(
    conn: &mut Conn,
    shared: &Shared,
    local: &mut WorkerLocal,
    ranges: &mut Vec<std::ops::Range<usize>>,
) -> bool {
    // Commands decoded from one read run back to back: each starts when the previous ended.
    local.clock_us = None;
    while conn.input.pending() > 0 && !conn.session.close_after_reply && conn.session.blocked.is_none() {
        // Rebuilt per command: an AUTH earlier in the same pipeline lifts the pre-auth limits.
        let limits =
            Limits { max_bulk_len: local.settings.proto_max_bulk_len, authenticated: conn.session.authenticated };
        if conn.input.pending() < conn.input.need {
            break;
        }
        let input = &conn.input;
        let data = &input.buf[input.start..input.end];
        match parse_command(data, &limits, ranges) {
            Ok(Parsed::Incomplete { need }) => {
                conn.input.need = need;
                return query_buffer_ok(conn, local);
            }
            Ok(Parsed::Multibulk { consumed }) => {
                if !ranges.is_empty() {
                    let argv: smallvec::SmallVec<[&[u8]; 8]> = ranges.iter().map(|r| &data[r.clone()]).collect();
                    if dispatch::postponed(shared, &argv) {
                        conn.session.paused = true;
                        break;
                    }
                    let logged = local.aof.last_end;
                    dispatch::execute(shared, local, &mut conn.session, &argv);
                    hold_for_log(&mut conn.session, local, logged);
                }
                conn.input.start += consumed;
                conn.input.need = 0;
            }
            Ok(Parsed::Inline { consumed, args }) => {
                if !args.is_empty() {
                    let argv: smallvec::SmallVec<[&[u8]; 8]> = args.iter().map(Vec::as_slice).collect();
                    if dispatch::postponed(shared, &argv) {
                        conn.session.paused = true;
                        break;
                    }
                    let logged = local.aof.last_end;
                    dispatch::execute(shared, local, &mut conn.session, &argv);
                    hold_for_log(&mut conn.session, local, logged);
                }
                conn.input.start += consumed;
                conn.input.need = 0;
            }
            Err(e) => {
                log_verbose!(
                    "Protocol error ({}) from client: id={} addr={}",
                    e,
                    conn.session.info.id,
                    conn.session.info.addr
                );
                conn.session.out.error(&format!("ERR {}", e.message()));
                local.stats.error("ERR");
                conn.session.close_after_reply = true;
                break;
            }
        }
    }
    if conn.input.pending() == 0 {
        conn.input.consumed_all();
    }
    conn.session.info.qbuf.store(conn.input.pending(), Ordering::Relaxed);
    conn.session.info.qbuf_cap.store(conn.input.buf.len(), Ordering::Relaxed);
    true
}

/// Under `appendfsync always`, a command that appended to the log (the worker's last
/// append moved past `before`) holds the client's replies until that append is durable.
fn hold_for_log(session: &mut Session, local: &WorkerLocal, before: u64) {
    if local.aof.last_end != before && local.settings.appendfsync == persist::aof::Fsync::Always {
        session.hold_until = local.aof.last_end;
    }
}

/// Adds to a counter that only this thread writes (a plain load and store, no locked
/// instruction; readers on other threads see a recent value).
pub fn bump(counter: &std::sync::atomic::AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// Closes clients whose unfinished command exceeds the query buffer limit.
fn query_buffer_ok(conn: &Conn, local: &WorkerLocal) -> bool {
    let limit = if conn.session.authenticated { local.settings.client_query_buffer_limit } else { PREAUTH_QUERY_LIMIT };
    if conn.input.pending() > limit {
        log_warning!(
            "Closing client that reached max query buffer length: id={} addr={} qbuf={} (limit {limit} bytes; raise client-query-buffer-limit if this client is legitimate)",
            conn.session.info.id,
            conn.session.info.addr,
            conn.input.pending()
        );
        return false;
    }
    true
}

/// Writes pending output. Returns false if the connection must be closed.
fn flush(conn: &mut Conn, local: &mut WorkerLocal) -> bool {
    if conn.session.hold_until > 0 {
        // Replies wait for the append-only log (`appendfsync always`, see release_held).
        return true;
    }
    let out = &mut conn.session.out.buf;
    while conn.out_pos < out.len() {
        match conn.stream.write(&out[conn.out_pos..]) {
            Ok(0) => return false,
            Ok(n) => {
                conn.out_pos += n;
                local.stats.net_out += n as u64;
                bump(&conn.session.info.tot_net_out, n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    if conn.out_pos == out.len() {
        out.clear();
        conn.out_pos = 0;
        if out.capacity() > KEEP_INPUT {
            out.shrink_to(READ_CHUNK);
        }
        if conn.session.close_after_reply {
            return false;
        }
    }
    conn.session.info.omem.store(out.len() - conn.out_pos, Ordering::Relaxed);
    true
}

const PROTECTED_MODE_ERROR: &str = "-DENIED Redoubt is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers, you may adopt one of the following solutions: 1) Set a password for the default user with 'requirepass' (recommended). 2) Disable protected mode by sending the command 'CONFIG SET protected-mode no' from the loopback interface, making sure the server is not publicly accessible from the internet. 3) Restart the server with the '--protected-mode no' option. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";
