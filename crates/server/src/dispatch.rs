//! Command dispatch: lookup in the command table, the generic checks every command goes
//! through (unknown command, arity, authentication) in Redis's order, locking the shards the
//! command declares, running it, and the bookkeeping after it (statistics, reply mode, slow
//! log, MONITOR feed).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use commands::table::flags;
use commands::{CmdError, CommandSpec, Ctx, Handler};
use store::View;

use crate::config::Settings;
use crate::session::{ReplyMode, Session};
use crate::stats::WorkerStats;
use crate::worker::Msg;
use crate::{log_warning, multi, server_cmds, unix_us, Shared};

/// A worker's private state used by dispatch.
pub struct WorkerLocal {
    pub stats: WorkerStats,
    /// A blocking command's request to wait, handed from the handler to `execute`.
    pub block: Option<commands::Block>,
    /// Keys that received data for blocked clients during the current command.
    pub ready: Vec<(usize, Vec<u8>)>,
    /// A clock reading that may stand for "now" at the start of the next command of the
    /// current batch; cleared whenever the worker goes back to waiting for events.
    pub clock_us: Option<i64>,
    pub settings: Arc<Settings>,
    settings_gen: u64,
    pub cmd_settings: commands::Settings,
    /// Eviction candidates, kept across commands (see `evict`).
    pub evict_pool: crate::evict::Pool,
    /// Append-only log entries of the running transaction or script (see `aof`).
    pub aof: crate::aof::Batch,
    /// This is the client replaying the append-only log at startup: commands run with the
    /// replay clock, without the gates and bookkeeping a client's commands get.
    pub replaying: bool,
    /// The memory refusal the running script's first write gets: Redis checks memory when
    /// a script starts and refuses its `denyoom` calls until it has written (after that it
    /// must finish). Set for EVAL, EVALSHA and FCALL by the memory gate.
    pub script_oom: Option<ScriptOom>,
}

/// A memory refusal waiting for a script's first write.
#[derive(Clone, Debug)]
pub struct ScriptOom {
    /// What `redis.call` raises, and what a function without `allow-oom` or `no-writes`
    /// gets instead of running (Redis treats such an FCALL as a `denyoom` command).
    pub text: String,
    /// The namespace that refuses (its refused-writes counter moves only on a refusal).
    pub namespace: Option<usize>,
}

impl WorkerLocal {
    pub fn new(shared: &Shared) -> WorkerLocal {
        let mut w = WorkerLocal {
            block: None,
            ready: Vec::new(),
            clock_us: None,
            stats: WorkerStats::default(),
            settings: shared.settings(),
            settings_gen: 0,
            cmd_settings: commands::Settings::default(),
            evict_pool: crate::evict::Pool::default(),
            aof: crate::aof::Batch::default(),
            replaying: false,
            script_oom: None,
        };
        w.refresh(shared);
        w
    }

    /// Picks up configuration changes (one atomic load when nothing changed).
    pub fn refresh(&mut self, shared: &Shared) {
        let gen = shared.settings_gen.load(Ordering::Acquire);
        if gen == self.settings_gen {
            return;
        }
        self.settings = shared.settings();
        self.settings_gen = gen;
        self.cmd_settings = self.settings.command_settings();
    }
}

/// Copies `s` up to its first NUL byte and at most `max` bytes (C's `%.*s`).
fn c_str(s: &[u8], max: usize) -> &[u8] {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    &s[..end.min(max)]
}

/// `ERR unknown command '<name>', with args beginning with: '<a>' '<b>' `
fn unknown_command(argv: &[&[u8]]) -> Vec<u8> {
    let mut args: Vec<u8> = Vec::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(c_str(a, room));
        args.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(c_str(argv[0], 128));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&args);
    text
}

fn unknown_subcommand(argv: &[&[u8]]) -> Vec<u8> {
    let mut text = b"ERR unknown subcommand '".to_vec();
    text.extend_from_slice(c_str(argv[1], 128));
    text.extend_from_slice(b"'. Try ");
    text.extend_from_slice(&c_str(argv[0], usize::MAX).to_ascii_uppercase());
    text.extend_from_slice(b" HELP.");
    text
}

/// Writes an error reply given as bytes (CR/LF become spaces) and counts it.
fn reply_error_bytes(s: &mut Session, local: &mut WorkerLocal, text: &[u8]) {
    s.out.buf.push(b'-');
    s.out.buf.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    s.out.buf.extend_from_slice(b"\r\n");
    let code = text.split(|&b| b == b' ').next().unwrap_or(b"ERR");
    local.stats.error(&String::from_utf8_lossy(code));
}

/// Finds the command (and subcommand) `argv` names, or writes the error Redis would.
fn resolve(
    argv: &[&[u8]],
    s: &mut Session,
    local: &mut WorkerLocal,
) -> Option<(&'static CommandSpec, Option<&'static CommandSpec>)> {
    let Some(cmd) = commands::lookup(argv[0]) else {
        reply_error_bytes(s, local, &unknown_command(argv));
        return None;
    };
    if cmd.subcommands.is_empty() || argv.len() < 2 {
        return Some((cmd, None));
    }
    match commands::lookup_sub(cmd, argv[1]) {
        Some(sub) => Some((cmd, Some(sub))),
        None => {
            reply_error_bytes(s, local, &unknown_subcommand(argv));
            None
        }
    }
}

/// Whether a CLIENT PAUSE holds this command back (all commands under ALL; commands that may
/// write under WRITE), as Redis decides it before running anything.
pub fn postponed(shared: &Shared, argv: &[&[u8]]) -> bool {
    if shared.pause_end_ms.load(Ordering::Relaxed) == 0 || !shared.pause_active(crate::unix_ms()) {
        return false;
    }
    if shared.pause_all.load(Ordering::Relaxed) {
        return true;
    }
    let Some(cmd) = commands::lookup(argv[0]) else { return false };
    let spec = match argv.get(1) {
        Some(sub) if !cmd.subcommands.is_empty() => commands::lookup_sub(cmd, sub).unwrap_or(cmd),
        _ => cmd,
    };
    spec.has(flags::WRITE | flags::MAY_REPLICATE)
}

/// Runs one command from a client and writes its reply into the session's output.
pub fn execute(shared: &Shared, local: &mut WorkerLocal, s: &mut Session, argv: &[&[u8]]) {
    // The previous command's end time serves as this one's start within a batch, saving a
    // clock read per command.
    let start_us = local.clock_us.take().unwrap_or_else(unix_us);
    s.info.last_interaction_ms.store(start_us / 1000, Ordering::Relaxed);
    if s.reply_mode == ReplyMode::SkipNext {
        s.reply_mode = ReplyMode::Skipping;
    }
    let reply_start = s.out.buf.len();
    let Some((cmd, sub)) = resolve(argv, s, local) else {
        doom_transaction(s);
        finish_reply(s, reply_start);
        return;
    };
    let spec = sub.unwrap_or(cmd);
    s.info.set_last_cmd(cmd, sub);
    local.stats.total_commands += 1;
    crate::worker::bump(&s.info.tot_cmds, 1);
    // The log's replay keeps arity (a damaged command is an error, not a panic) and skips
    // the gates: the commands ran and were acknowledged once already.
    let replaying = local.replaying;
    let checked = generic_checks(spec, cmd, sub, argv, s).or_else(|| {
        if replaying {
            return None;
        }
        busy_check(shared, local, spec, argv)
            .or_else(|| oom_check(shared, local, s, spec, argv))
            .or_else(|| misconf_check(shared, local, s, spec))
            .or_else(|| {
                let refuse = shared.persistence.loading() && !spec.has(flags::LOADING);
                refuse.then(|| CmdError::fixed(crate::persistence::LOADING))
            })
    });
    if let Some(err) = checked {
        local.stats.command(cmd.name, sub.map(|c| c.name)).rejected += 1;
        let err = if cmd.name == "exec" {
            // A rejected EXEC discards the transaction, as Redis's execCommandAbort does.
            s.multi = None;
            multi::unwatch_all(shared, s);
            let reason = err.text().strip_prefix("ERR ").unwrap_or(err.text()).to_string();
            CmdError::new(format!("EXECABORT Transaction discarded because of: {reason}"))
        } else {
            err
        };
        reply_error_bytes(s, local, err.text().as_bytes());
        doom_transaction(s);
        finish_reply(s, reply_start);
        return;
    }
    if s.subs.active() && !s.out.is_resp3() && !allowed_when_subscribed(cmd) {
        let name = sub.map_or_else(|| cmd.name.to_string(), |sc| format!("{}|{}", cmd.name, sc.name));
        let err = format!("ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
        local.stats.command(cmd.name, sub.map(|c| c.name)).rejected += 1;
        reply_error_bytes(s, local, err.as_bytes());
        doom_transaction(s);
        finish_reply(s, reply_start);
        return;
    }
    if s.multi.is_some() && !multi::runs_inside_multi(cmd) {
        if let Err(e) = multi::queue(s, cmd, sub, argv) {
            reply_error_bytes(s, local, e.text().as_bytes());
        }
        finish_reply(s, reply_start);
        return;
    }
    run_accounted(shared, local, s, cmd, sub, argv, start_us, None);
    if let Some(b) = local.block.take() {
        let waiter = crate::blocking::Waiter {
            id: s.info.id,
            worker: s.info.worker,
            db: s.db,
            resp3: s.out.is_resp3(),
            cmd: sub.unwrap_or(cmd),
            argv: b.rerun.unwrap_or_else(|| argv.iter().map(|a| a.to_vec()).collect()),
            keys: b.keys,
            deadline: b.deadline,
        };
        s.blocked = Some(b.deadline);
        shared.blocking.add(waiter, false);
    }
    serve_blocked(shared, local);
    crate::namespaces::apply_pending(shared);
    finish_reply(s, reply_start);
}

/// Serves clients blocked on the keys that just received data, oldest first (see
/// `blocking`). Runs after the pushing command released its locks.
pub fn serve_blocked(shared: &Shared, local: &mut WorkerLocal) {
    if local.ready.is_empty() {
        return;
    }
    if shared.blocking.is_empty() {
        local.ready.clear();
        return;
    }
    let mut queue: std::collections::VecDeque<(usize, Vec<u8>)> = local.ready.drain(..).collect();
    while let Some((db, key)) = queue.pop_front() {
        // Only clients waiting for the type the key now holds are served (as Redis 7.2: a
        // BZPOPMIN stays blocked when its key becomes a list), and XREADGROUP clients whose
        // stream is gone (their rerun replies with an error).
        let kind = key_kind(shared, db, &key);
        let wants = |w: &crate::blocking::Waiter| match kind {
            Some(k) if waits_for(w.cmd) == k => true,
            _ => w.cmd.name == "xreadgroup",
        };
        while let Some(w) = shared.blocking.claim_first(db, &key, wants) {
            match serve_one(shared, local, &w) {
                Some(reply) => {
                    queue.extend(local.ready.drain(..));
                    if let Some(worker) = shared.workers.read().get(w.worker) {
                        worker.send(Msg::Unblock(w.id, reply));
                    }
                }
                None => {
                    // Nothing for it after all: it keeps its place at the head of its queues.
                    shared.blocking.add(w, true);
                    break;
                }
            }
        }
    }
}

/// The type of the value at `key`, if any.
fn key_kind(shared: &Shared, db: usize, key: &[u8]) -> Option<store::Kind> {
    let mut view = shared.keyspace.lock_key(key);
    view.db(db, key).lookup(key, crate::unix_ms()).map(|e| e.kind())
}

/// The type of value a blocking command waits for.
fn waits_for(cmd: &CommandSpec) -> store::Kind {
    match cmd.group {
        "sorted_set" => store::Kind::ZSet,
        "stream" => store::Kind::Stream,
        _ => store::Kind::List,
    }
}

/// Reruns a blocked client's command; `None` if it would still block.
fn serve_one(shared: &Shared, local: &mut WorkerLocal, w: &crate::blocking::Waiter) -> Option<Vec<u8>> {
    let Handler::Keyspace(f) = w.cmd.handler else { return None };
    let argv: Vec<&[u8]> = w.argv.iter().map(Vec::as_slice).collect();
    let proto = if w.resp3 { resp::Protocol::Resp3 } else { resp::Protocol::Resp2 };
    let mut out = resp::ReplyBuf::new(proto);
    let mut view = lock_for(shared, w.cmd, &argv);
    let mut ctx = Ctx {
        argv: &argv,
        db: w.db,
        now: crate::unix_ms(),
        out: &mut out,
        settings: &local.cmd_settings,
        dirty: 0,
        events: Vec::new(),
        may_block: true,
        in_script: false,
        block: None,
        ready: Vec::new(),
        rerun: true,
        log_as: None,
    };
    let r = f(&mut ctx, &mut view);
    ctx.take_journal();
    if ctx.block.is_some() {
        return None;
    }
    local.stats.dirty += ctx.dirty;
    publish_events(shared, &ctx.events);
    let (dirty, log_as) = (ctx.dirty, ctx.log_as.take());
    local.ready.extend(ctx.ready.drain(..).map(|k| (w.db, k)));
    if dirty > 0 {
        touch_watched(shared, w.cmd, &argv, w.db);
        if shared.aof.active() {
            let expired = if store::db::expired_pending() { expired_events(&mut view) } else { Vec::new() };
            crate::aof::note_expired(shared, local, &expired);
            crate::aof::note_command(shared, local, &mut view, w.db, w.cmd, &argv, log_as);
        }
    }
    drop(view);
    if let Err(e) = r {
        out.error(e.text());
    }
    Some(out.buf)
}

/// Runs one command queued by MULTI, inside EXEC, under EXEC's shard locks.
pub fn run_queued(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    cmd: &'static CommandSpec,
    sub: Option<&'static CommandSpec>,
    argv: &[&[u8]],
    view: &mut View<'_>,
) {
    run_accounted(shared, local, s, cmd, sub, argv, unix_us(), Some(view));
}

/// The commands a RESP2 client may send while it has subscriptions.
fn allowed_when_subscribed(cmd: &CommandSpec) -> bool {
    matches!(
        cmd.name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// A rejected command dooms an open transaction (EXEC will answer EXECABORT).
fn doom_transaction(s: &mut Session) {
    if let Some(m) = s.multi.as_mut() {
        m.doomed = true;
    }
}

/// Runs an admitted command with a panic guard, then does its bookkeeping (statistics,
/// error reply, slow log, MONITOR). `held` is the view of an enclosing EXEC.
fn run_accounted(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    cmd: &'static CommandSpec,
    sub: Option<&'static CommandSpec>,
    argv: &[&[u8]],
    start_us: i64,
    held: Option<&mut View<'_>>,
) {
    let spec = sub.unwrap_or(cmd);
    let reply_start = s.out.buf.len();
    let now = if local.replaying { commands::REPLAY_NOW } else { start_us / 1000 };
    // A server command that changes what a log rewrite writes besides keys (FUNCTION LOAD,
    // DELETE, FLUSH, RESTORE) runs and is logged under every shard lock, so it falls wholly
    // before or after a rewrite's instant.
    let logged_server_write = matches!(spec.handler, Handler::Server) && spec.has(flags::WRITE);
    let _all = (logged_server_write && held.is_none() && shared.aof.active()).then(|| shared.keyspace.lock_all());
    let result = catch_unwind(AssertUnwindSafe(|| run(shared, local, s, spec, cmd, sub, argv, now, held)));
    let result = result.unwrap_or_else(|_| {
        log_warning!("Internal error while running '{}': the command was aborted; please report this with the command that caused it", spec.name);
        s.out.buf.truncate(reply_start);
        Err(CmdError::fixed("ERR internal error while running the command (see the server log)"))
    });
    let end_us = unix_us();
    local.clock_us = Some(end_us);
    let duration = (end_us - start_us).max(0) as u64;
    if local.settings.latency_tracking {
        local.stats.latency(cmd.name, sub.map(|c| c.name)).record(duration);
    }
    let stat = local.stats.command(cmd.name, sub.map(|c| c.name));
    stat.calls += 1;
    stat.usec += duration;
    match result {
        Err(e) => {
            stat.failed += 1;
            reply_error_bytes(s, local, e.text().as_bytes());
        }
        Ok(()) if logged_server_write => crate::aof::note_server_command(shared, s.db, argv),
        Ok(()) => {}
    }
    if !local.replaying {
        after_command(shared, local, s, spec, argv, start_us, duration);
    }
}

/// Arity and authentication, in Redis's order. `None` means the command may run.
fn generic_checks(
    spec: &CommandSpec,
    cmd: &CommandSpec,
    sub: Option<&CommandSpec>,
    argv: &[&[u8]],
    s: &Session,
) -> Option<CmdError> {
    if !spec.arity_ok(argv.len()) {
        let name = match sub {
            Some(sub) => format!("{}|{}", cmd.name, sub.name),
            None => cmd.name.to_string(),
        };
        return Some(commands::error::wrong_arity(&name));
    }
    if !s.authenticated && !spec.has(flags::NO_AUTH) {
        return Some(CmdError::fixed("NOAUTH Authentication required."));
    }
    None
}

/// Redis's maxmemory gate: evicts (within the time budget) when over `maxmemory`, and
/// refuses a `denyoom` command (or an EXEC of a transaction holding one) when nothing could
/// be evicted.
/// A script that has run longer than `busy-reply-threshold` makes other commands fail with
/// `-BUSY` (except SCRIPT KILL, SHUTDOWN and the other `allow-busy` commands), as in Redis.
fn busy_check(shared: &Shared, local: &WorkerLocal, spec: &CommandSpec, argv: &[&[u8]]) -> Option<CmdError> {
    match shared.scripts.busy(spec, argv, local.settings.busy_reply_threshold_ms) {
        crate::lua::Busy::No => None,
        crate::lua::Busy::Refuse => Some(CmdError::fixed(crate::lua::BUSY)),
    }
}

fn oom_check(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &Session,
    spec: &CommandSpec,
    argv: &[&[u8]],
) -> Option<CmdError> {
    let namespaces = store::namespace::enabled();
    local.script_oom = None;
    if local.settings.maxmemory == 0 && !namespaces {
        return None;
    }
    let is_script = |name: &str| matches!(name, "eval" | "evalsha" | "fcall");
    if s.multi.is_none() && is_script(spec.name) {
        local.script_oom = script_oom(shared, local, &script_keys(argv));
        return None;
    }
    // Scripts queued in a transaction meet the memory state EXEC starts in, as in Redis.
    if let Some(m) = s.multi.as_ref().filter(|_| spec.name == "exec") {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut any = false;
        for q in m.queued.iter().filter(|q| is_script(q.spec().name)) {
            any = true;
            let args: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
            keys.extend(script_keys(&args).into_iter().map(<[u8]>::to_vec));
        }
        if any {
            let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            local.script_oom = script_oom(shared, local, &keys);
        }
    }
    // Inside MULTI every command but EXEC, DISCARD, QUIT and RESET is refused (queuing would
    // grow memory without limit), as in Redis.
    let denyoom = match &s.multi {
        Some(m) if spec.name == "exec" => m.queued.iter().any(|q| q.spec().has(flags::DENYOOM)),
        Some(_) => !matches!(spec.name, "discard" | "quit" | "reset"),
        None => spec.has(flags::DENYOOM),
    };
    if local.settings.maxmemory > 0 {
        let budget = crate::evict::time_limit(local.settings.eviction_tenacity);
        let outcome = crate::evict::perform(shared, &local.settings, &mut local.evict_pool, budget);
        if outcome == crate::evict::Outcome::Fail && denyoom {
            return Some(CmdError::fixed("OOM command not allowed when used memory > 'maxmemory'."));
        }
    }
    if !namespaces || !denyoom {
        return None;
    }
    // The keys this command (or the transaction it executes) may grow.
    let mut keys: Vec<Vec<u8>> = match &s.multi {
        Some(m) => m
            .queued
            .iter()
            .filter(|q| q.spec().has(flags::DENYOOM))
            .flat_map(|q| {
                let args: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
                q.spec().written_keys(&args).into_iter().map(|i| q.args[i].clone()).collect::<Vec<_>>()
            })
            .collect(),
        None => spec.written_keys(argv).into_iter().map(|i| argv[i].to_vec()).collect(),
    };
    keys.dedup();
    let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    crate::namespaces::gate(shared, &local.settings, &mut local.evict_pool, &keys)
}

/// The memory state a script starts in: Redis's maxmemory refusal when nothing can be
/// evicted, or a namespace refusal for one of its declared keys.
/// The keys a script call declares (EVAL/EVALSHA/FCALL `numkeys key...`).
fn script_keys<'a>(argv: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let n = argv.get(2).and_then(|n| std::str::from_utf8(n).ok()).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    argv.iter().skip(3).take(n).copied().collect()
}

fn script_oom(shared: &Shared, local: &mut WorkerLocal, keys: &[&[u8]]) -> Option<ScriptOom> {
    if local.settings.maxmemory > 0 {
        let budget = crate::evict::time_limit(local.settings.eviction_tenacity);
        if crate::evict::perform(shared, &local.settings, &mut local.evict_pool, budget) == crate::evict::Outcome::Fail
        {
            return Some(ScriptOom {
                text: "OOM command not allowed when used memory > 'maxmemory'.".to_string(),
                namespace: None,
            });
        }
    }
    if !store::namespace::enabled() || keys.is_empty() {
        return None;
    }
    let (e, i) = crate::namespaces::gate_quiet(shared, &local.settings, &mut local.evict_pool, keys)?;
    Some(ScriptOom { text: e.text().to_string(), namespace: Some(i) })
}

/// Redis's disk-error gate: while the last snapshot failed (and `stop-writes-on-bgsave-error`
/// is on with `save` points set), write commands and EXECs of transactions that write get
/// MISCONF. Reads, PING and INFO keep answering.
fn misconf_check(shared: &Shared, local: &WorkerLocal, s: &Session, spec: &CommandSpec) -> Option<CmdError> {
    let writes = match &s.multi {
        Some(m) if spec.name == "exec" => m.queued.iter().any(|q| q.spec().has(flags::WRITE)),
        _ => spec.has(flags::WRITE),
    };
    if !writes {
        return None;
    }
    crate::persistence::misconf(shared, &local.settings)
}

/// Runs an admitted command, against `held` (EXEC's locks) or the shards it locks itself.
fn run(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    spec: &'static CommandSpec,
    cmd: &'static CommandSpec,
    sub: Option<&'static CommandSpec>,
    argv: &[&[u8]],
    now: i64,
    held: Option<&mut View<'_>>,
) -> commands::CmdResult {
    match spec.handler {
        Handler::Server => server_cmds::run(shared, local, s, cmd, sub, argv, now, held),
        Handler::Keyspace(f) => match held {
            Some(view) => run_keyspace(shared, local, s, spec, f, argv, now, view, true),
            None => {
                let Some(mut view) = lock_for_client(shared, local, spec, argv) else {
                    return Err(CmdError::fixed(crate::lua::BUSY));
                };
                run_keyspace(shared, local, s, spec, f, argv, now, &mut view, false)
            }
        },
    }
}

/// Runs a keyspace handler against `view` and flags WATCHers of what it modified.
fn run_keyspace(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    spec: &CommandSpec,
    f: commands::KeyspaceFn,
    argv: &[&[u8]],
    now: i64,
    view: &mut View<'_>,
    in_exec: bool,
) -> commands::CmdResult {
    let blocking =
        if s.multi.is_none() && !in_exec && !local.replaying { Blocking::Allowed } else { Blocking::Transaction };
    run_handler(shared, local, &mut s.out, s.db, spec, f, argv, now, view, blocking)
}

/// Whether a command may block: from a client it may; inside MULTI/EXEC and from a script it
/// runs as its non-blocking form (and XREAD/XREADGROUP refuse BLOCK in scripts, as Redis).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Blocking {
    Allowed,
    Transaction,
    Script,
}

/// Runs a keyspace handler writing its reply to `out` (a client's buffer, or a script's),
/// then publishes its events, flags WATCHers of what it modified and notes keys that
/// received data for blocked clients.
pub(crate) fn run_handler(
    shared: &Shared,
    local: &mut WorkerLocal,
    out: &mut resp::ReplyBuf,
    db: usize,
    spec: &CommandSpec,
    f: commands::KeyspaceFn,
    argv: &[&[u8]],
    now: i64,
    view: &mut View<'_>,
    blocking: Blocking,
) -> commands::CmdResult {
    // FLUSHDB/FLUSHALL/SWAPDB invalidate only the watched keys that exist (as in Redis), so
    // find those before the command empties the database.
    let whole = matches!(spec.name, "flushdb" | "flushall" | "swapdb") && shared.watches.any();
    let existing = if whole { existing_watched(shared, view, spec, argv, db, now) } else { Vec::new() };
    let mut ctx = Ctx {
        argv,
        db,
        now,
        out,
        settings: &local.cmd_settings,
        dirty: 0,
        events: Vec::new(),
        may_block: blocking == Blocking::Allowed,
        in_script: blocking == Blocking::Script,
        block: None,
        ready: Vec::new(),
        rerun: false,
        log_as: None,
    };
    let r = f(&mut ctx, view);
    ctx.take_journal();
    local.block = ctx.block.take();
    local.ready.extend(ctx.ready.drain(..).map(|k| (db, k)));
    local.stats.dirty += ctx.dirty;
    // Published (and logged) while the shard locks are held, so events on one key keep
    // their order, and the log records commands on a key in the order they ran.
    let mut events = std::mem::take(&mut ctx.events);
    let (dirty, log_as) = (ctx.dirty, ctx.log_as.take());
    let expired =
        if store::db::recording_expired() && store::db::expired_pending() { expired_events(view) } else { Vec::new() };
    if shared.aof.active() {
        crate::aof::note_expired(shared, local, &expired);
        if dirty > 0 {
            crate::aof::note_command(shared, local, view, db, spec, argv, log_as);
        }
    }
    if !expired.is_empty() {
        if shared.blocking.has_group_readers() {
            // An expired stream unblocks its XREADGROUP clients, as a deleted one.
            local.ready.extend(expired.iter().map(|e| (e.db, e.key.clone())));
        }
        if commands::notify::wanted(local.cmd_settings.notify_flags, commands::notify::EXPIRED) {
            events.splice(0..0, expired);
        }
    }
    publish_events(shared, &events);
    if dirty > 0 && !shared.blocking.is_empty() {
        // A key deleted or overwritten unblocks the XREADGROUP clients waiting on it (with
        // an error, as Redis): offer every key the command may have written.
        if matches!(spec.name, "flushdb" | "flushall" | "swapdb") {
            local.ready.extend(shared.blocking.waiting_keys());
        } else {
            local.ready.extend(spec.written_keys(argv).into_iter().map(|i| (db, argv[i].to_vec())));
        }
    }
    if dirty > 0 {
        // Still under the shard locks, so an EXEC checking its WATCH flag cannot miss it.
        if whole {
            existing.iter().for_each(|(db, key)| shared.watches.touch(*db, key));
        } else {
            touch_watched(shared, spec, argv, db);
        }
    }
    r
}

/// The watched keys a keyspace-wide write (FLUSHDB, FLUSHALL, SWAPDB) is about to affect.
fn existing_watched(
    shared: &Shared,
    view: &mut View<'_>,
    spec: &CommandSpec,
    argv: &[&[u8]],
    db: usize,
    now: i64,
) -> Vec<(usize, Vec<u8>)> {
    let swapped: Vec<usize> = if spec.name == "swapdb" {
        argv[1..].iter().filter_map(|a| resp::decode::parse_i64(a)).map(|v| v as usize).collect()
    } else {
        Vec::new()
    };
    let affects = |d: usize| match spec.name {
        "flushdb" => d == db,
        "swapdb" => swapped.contains(&d),
        _ => true,
    };
    let databases = view.databases();
    shared
        .watches
        .keys()
        .into_iter()
        .filter(|(d, _)| affects(*d))
        .filter(|(d, key)| {
            // After SWAPDB a key also changes if it exists in the other swapped database.
            let mut dbs = vec![*d];
            dbs.extend(swapped.iter().copied().filter(|o| o != d && *o < databases));
            dbs.iter().any(|&x| view.db(x, key).contains(key, now))
        })
        .collect()
}

/// `expired` events for the keys lazy expiry removed in the shards of `view`.
pub fn expired_events(view: &mut View<'_>) -> Vec<commands::notify::Event> {
    let mut out = Vec::new();
    for shard in view.shards_mut() {
        for (db, d) in shard.dbs.iter_mut().enumerate() {
            out.extend(d.take_expired_keys().into_iter().map(|key| commands::notify::Event {
                db,
                name: "expired",
                key,
            }));
        }
    }
    out
}

/// Publishes keyspace events on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`,
/// as `notify-keyspace-events` asks.
pub fn publish_events(shared: &Shared, events: &[commands::notify::Event]) {
    if events.is_empty() {
        return;
    }
    let flags = shared.settings().notify_flags;
    for e in events {
        if flags & commands::notify::KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{}__:", e.db).into_bytes();
            channel.extend_from_slice(&e.key);
            shared.pubsub.publish(shared, &channel, e.name.as_bytes(), false);
        }
        if flags & commands::notify::KEYEVENT != 0 {
            let channel = format!("__keyevent@{}__:{}", e.db, e.name);
            shared.pubsub.publish(shared, channel.as_bytes(), &e.key, false);
        }
    }
}

/// Flags the clients watching keys this (modifying) command may have written.
fn touch_watched(shared: &Shared, spec: &CommandSpec, argv: &[&[u8]], db: usize) {
    let w = &shared.watches;
    if !w.any() {
        return;
    }
    for i in spec.written_keys(argv) {
        w.touch(db, argv[i]);
    }
}

/// [`lock_for`] for a client's command: while a script runs, the wait for its locks gives
/// up (`None`: the client gets `-BUSY`) once the script passes `busy-reply-threshold`, so a
/// long script cannot wedge every worker.
fn lock_for_client<'a>(
    shared: &'a Shared,
    local: &WorkerLocal,
    spec: &CommandSpec,
    argv: &[&[u8]],
) -> Option<View<'a>> {
    if !crate::lua::Scripts::running() {
        return Some(lock_for(shared, spec, argv));
    }
    let threshold = local.settings.busy_reply_threshold_ms;
    let give_up = || crate::lua::Scripts::over_threshold(threshold);
    if spec.has(flags::ALL_SHARDS) {
        return shared.keyspace.lock_patiently(None, &give_up);
    }
    let mut keys = spec.keys_of(argv).into_iter().map(|i| argv[i]);
    shared.keyspace.lock_patiently(Some(&mut keys), &give_up)
}

/// Locks the shards a keyspace command needs: its declared keys, or all of them.
pub fn lock_for<'a>(shared: &'a Shared, spec: &CommandSpec, argv: &[&[u8]]) -> View<'a> {
    let ks = &shared.keyspace;
    if spec.has(flags::ALL_SHARDS) {
        return ks.lock_all();
    }
    let k = spec.keys;
    if k.first == 1 && k.last == 1 && k.numkeys == 0 && argv.len() > 1 {
        return ks.lock_key(argv[1]);
    }
    ks.lock_keys(spec.keys_of(argv).into_iter().map(|i| argv[i]))
}

/// Applies CLIENT REPLY OFF/SKIP to the reply just written.
fn finish_reply(s: &mut Session, reply_start: usize) {
    match s.reply_mode {
        ReplyMode::Off => s.out.buf.truncate(reply_start),
        ReplyMode::Skipping => {
            s.out.buf.truncate(reply_start);
            s.reply_mode = ReplyMode::On;
        }
        _ => {}
    }
}

/// Slow log and MONITOR feed.
fn after_command(
    shared: &Shared,
    local: &WorkerLocal,
    s: &Session,
    spec: &CommandSpec,
    argv: &[&[u8]],
    start_us: i64,
    duration: u64,
) {
    let threshold = local.settings.slowlog_log_slower_than;
    if threshold >= 0 && duration >= threshold as u64 && !spec.has(flags::SKIP_SLOWLOG) {
        let name = s.info.name.lock().clone().unwrap_or_default();
        shared.slowlog.lock().push(
            argv,
            duration,
            start_us / 1_000_000,
            s.info.addr.to_string(),
            name,
            local.settings.slowlog_max_len,
        );
    }
    if shared.clients.monitors.load(Ordering::Relaxed) > 0
        && !spec.has(flags::SKIP_MONITOR | flags::ADMIN | flags::NO_AUTH)
    {
        feed_monitors(shared, s, argv, start_us);
    }
}

/// Formats a command the way MONITOR shows it and sends it to every monitor.
fn feed_monitors(shared: &Shared, s: &Session, argv: &[&[u8]], start_us: i64) {
    let mut line =
        format!("+{}.{:06} [{} {}]", start_us / 1_000_000, start_us % 1_000_000, s.db, s.info.addr).into_bytes();
    for a in argv {
        line.push(b' ');
        repr(&mut line, a);
    }
    line.extend_from_slice(b"\r\n");
    let monitors = shared.clients.monitor_list();
    let workers = shared.workers.read();
    for (id, worker) in monitors {
        if let Some(w) = workers.get(worker) {
            w.send(Msg::Deliver(id, line.clone()));
        }
    }
}

/// Redis's `sdscatrepr`: a quoted, escaped rendering of bytes.
pub fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_text() {
        let text = unknown_command(&[b"foo", b"a", b"b\x00c"]);
        assert_eq!(text, b"ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
        let long = vec![b'x'; 300];
        let text = unknown_command(&[b"foo", &long, b"next"]);
        let s = String::from_utf8(text).unwrap();
        assert!(s.ends_with("' "), "{s}");
        assert!(!s.contains("next"));
    }

    #[test]
    fn repr_escapes() {
        let mut v = Vec::new();
        repr(&mut v, b"a\"b\n\x01");
        assert_eq!(v, b"\"a\\\"b\\n\\x01\"");
    }
}
