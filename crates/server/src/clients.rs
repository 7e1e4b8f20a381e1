//! The client registry: what CLIENT LIST, CLIENT KILL and INFO see of every connection.
//!
//! Each connection owns a [`ClientInfo`] shared with the registry. Only the owning worker
//! writes it (with relaxed atomics or a short lock for rare fields such as the name); other
//! threads read it for introspection, or set `kill` and wake the owner to close it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use commands::CommandSpec;
use parking_lot::Mutex;

/// Introspection data for one connection.
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub fd: i32,
    /// Index of the worker that owns the connection.
    pub worker: usize,
    pub created_ms: i64,
    pub last_interaction_ms: AtomicI64,
    pub db: AtomicUsize,
    pub resp: AtomicUsize,
    /// The last command run (and its subcommand), for `cmd=` in CLIENT LIST.
    pub last_cmd: AtomicPtr<CommandSpec>,
    pub last_sub: AtomicPtr<CommandSpec>,
    pub qbuf: AtomicUsize,
    pub qbuf_cap: AtomicUsize,
    pub omem: AtomicUsize,
    pub tot_net_in: AtomicU64,
    pub tot_net_out: AtomicU64,
    pub tot_cmds: AtomicU64,
    pub monitor: AtomicBool,
    pub subs: AtomicUsize,
    pub psubs: AtomicUsize,
    pub ssubs: AtomicUsize,
    pub multi: AtomicI64,
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    /// Set by CLIENT KILL (or shutdown): the owner closes the connection.
    pub kill: AtomicBool,
    pub name: Mutex<Option<Vec<u8>>>,
    pub lib_name: Mutex<Option<Vec<u8>>>,
    pub lib_ver: Mutex<Option<Vec<u8>>>,
}

impl ClientInfo {
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, fd: i32, worker: usize, now_ms: i64) -> Self {
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            worker,
            created_ms: now_ms,
            last_interaction_ms: AtomicI64::new(now_ms),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            last_cmd: AtomicPtr::new(std::ptr::null_mut()),
            last_sub: AtomicPtr::new(std::ptr::null_mut()),
            qbuf: AtomicUsize::new(0),
            qbuf_cap: AtomicUsize::new(0),
            omem: AtomicUsize::new(0),
            tot_net_in: AtomicU64::new(0),
            tot_net_out: AtomicU64::new(0),
            tot_cmds: AtomicU64::new(0),
            monitor: AtomicBool::new(false),
            subs: AtomicUsize::new(0),
            psubs: AtomicUsize::new(0),
            ssubs: AtomicUsize::new(0),
            multi: AtomicI64::new(-1),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            kill: AtomicBool::new(false),
            name: Mutex::new(None),
            lib_name: Mutex::new(None),
            lib_ver: Mutex::new(None),
        }
    }

    /// Records the command being run (for `cmd=`).
    pub fn set_last_cmd(&self, cmd: &'static CommandSpec, sub: Option<&'static CommandSpec>) {
        self.last_cmd.store(cmd as *const _ as *mut _, Ordering::Relaxed);
        let sub = sub.map_or(std::ptr::null_mut(), |s| s as *const _ as *mut _);
        self.last_sub.store(sub, Ordering::Relaxed);
    }

    /// `cmd=` as Redis shows it: `get`, `client|list`, or `NULL` before the first command.
    pub fn last_cmd_name(&self) -> String {
        let cmd = self.last_cmd.load(Ordering::Relaxed);
        let sub = self.last_sub.load(Ordering::Relaxed);
        // SAFETY: the pointers are null or point into the static command table.
        let (cmd, sub) = unsafe { (cmd.as_ref(), sub.as_ref()) };
        match (cmd, sub) {
            (None, _) => "NULL".to_string(),
            (Some(c), None) => c.name.to_string(),
            (Some(c), Some(s)) => format!("{}|{}", c.name, s.name),
        }
    }

    /// One line of CLIENT LIST / CLIENT INFO, in Redis 7.2's field order.
    pub fn describe(&self, now_ms: i64) -> String {
        let name = self.name.lock().as_deref().map(lossy).unwrap_or_default();
        let lib_name = self.lib_name.lock().as_deref().map(lossy).unwrap_or_default();
        let lib_ver = self.lib_ver.lock().as_deref().map(lossy).unwrap_or_default();
        let mut flags = String::new();
        if self.monitor.load(Ordering::Relaxed) {
            flags.push('O');
        }
        let (sub, psub, ssub) =
            (self.subs.load(Ordering::Relaxed), self.psubs.load(Ordering::Relaxed), self.ssubs.load(Ordering::Relaxed));
        if sub + psub + ssub > 0 {
            flags.push('P');
        }
        if self.multi.load(Ordering::Relaxed) >= 0 {
            flags.push('x');
        }
        if self.no_evict.load(Ordering::Relaxed) {
            flags.push('e');
        }
        if self.no_touch.load(Ordering::Relaxed) {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let qbuf = self.qbuf.load(Ordering::Relaxed);
        let qcap = self.qbuf_cap.load(Ordering::Relaxed);
        let omem = self.omem.load(Ordering::Relaxed);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp={} obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            (now_ms - self.created_ms).max(0) / 1000,
            (now_ms - self.last_interaction_ms.load(Ordering::Relaxed)).max(0) / 1000,
            flags,
            self.db.load(Ordering::Relaxed),
            sub,
            psub,
            ssub,
            self.multi.load(Ordering::Relaxed),
            qbuf,
            qcap.saturating_sub(qbuf),
            qcap,
            qcap,
            omem,
            qcap + omem + std::mem::size_of::<ClientInfo>(),
            self.last_cmd_name(),
            self.resp.load(Ordering::Relaxed),
            lib_name,
            lib_ver,
        )
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every connected client, by id.
#[derive(Default)]
pub struct Registry {
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    next_id: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Number of MONITOR clients (checked after every command, so it is an atomic).
    pub monitors: AtomicUsize,
    monitor_set: Mutex<Vec<(u64, usize)>>,
}

impl Registry {
    /// A new client id (ids start at 1 and are never reused).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn add(&self, info: Arc<ClientInfo>) {
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        self.clients.lock().insert(info.id, info);
    }

    pub fn remove(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every client, in id order.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.clients.lock().values().cloned().collect()
    }

    /// Adds (`Some(worker)`) or removes (`None`) a MONITOR client.
    pub fn set_monitor(&self, id: u64, worker: Option<usize>) {
        let mut set = self.monitor_set.lock();
        set.retain(|(m, _)| *m != id);
        if let Some(w) = worker {
            set.push((id, w));
        }
        self.monitors.store(set.len(), Ordering::Relaxed);
    }

    /// (client id, worker) of every MONITOR client.
    pub fn monitor_list(&self) -> Vec<(u64, usize)> {
        self.monitor_set.lock().clone()
    }

    /// Bytes held by every client's buffers (input and output), for MEMORY STATS and INFO.
    pub fn output_bytes(&self) -> u64 {
        self.all().iter().map(|c| (c.qbuf_cap.load(Ordering::Relaxed) + c.omem.load(Ordering::Relaxed)) as u64).sum()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.clients.lock().get(&id).cloned()
    }
}
