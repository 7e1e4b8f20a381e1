//! Commands the server runs itself (the table marks them `Handler::Server`): connection
//! commands (PING, ECHO, SELECT, AUTH, HELLO, QUIT, RESET, CLIENT), configuration (CONFIG),
//! introspection (COMMAND, INFO, SLOWLOG, MONITOR, TIME, LASTSAVE), SHUTDOWN and DEBUG.

use std::sync::atomic::Ordering;

use commands::args::{self, is};
use commands::error::{wrong_arity, SYNTAX};
use commands::table::{self, flags};
use commands::{CmdError, CmdResult, CommandSpec};
use resp::Protocol;

use crate::config::{self, find as find_param};
use crate::dispatch::WorkerLocal;
use crate::session::{ReplyMode, Session};
use crate::worker::Msg;
use crate::{info, log_notice, log_warning, multi, pubsub, Shared};

/// Runs a server command. `cmd` is the top-level command, `sub` its subcommand.
pub fn run(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    cmd: &'static CommandSpec,
    sub: Option<&'static CommandSpec>,
    argv: &[&[u8]],
    now: i64,
    held: Option<&mut store::View<'_>>,
) -> CmdResult {
    match (cmd.name, sub.map(|c| c.name)) {
        ("ping", _) => ping(s, argv),
        ("subscribe", _) => subscribe(shared, s, pubsub::Kind::Channel, &argv[1..]),
        ("psubscribe", _) => subscribe(shared, s, pubsub::Kind::Pattern, &argv[1..]),
        ("ssubscribe", _) => subscribe(shared, s, pubsub::Kind::Shard, &argv[1..]),
        ("unsubscribe", _) => unsubscribe(shared, s, pubsub::Kind::Channel, &argv[1..]),
        ("punsubscribe", _) => unsubscribe(shared, s, pubsub::Kind::Pattern, &argv[1..]),
        ("sunsubscribe", _) => unsubscribe(shared, s, pubsub::Kind::Shard, &argv[1..]),
        ("publish", _) => {
            let n = shared.pubsub.publish(shared, argv[1], argv[2], false);
            s.out.int(n as i64);
            Ok(())
        }
        ("spublish", _) => {
            let n = shared.pubsub.publish(shared, argv[1], argv[2], true);
            s.out.int(n as i64);
            Ok(())
        }
        ("pubsub", Some(name)) => pubsub_cmd(shared, s, name, argv),
        ("multi", _) => multi::multi(s),
        ("exec", _) => multi::exec(shared, local, s, now),
        ("discard", _) => multi::discard(shared, s),
        ("watch", _) => multi::watch(shared, s, argv, now),
        ("unwatch", _) => multi::unwatch(shared, s),
        ("echo", _) => {
            s.out.bulk(argv[1]);
            Ok(())
        }
        ("select", _) => select(shared, s, argv),
        ("auth", _) => auth(local, s, argv),
        ("hello", _) => hello(local, s, argv),
        ("quit", _) => {
            s.out.ok();
            s.close_after_reply = true;
            Ok(())
        }
        ("reset", _) => reset(shared, local, s),
        ("client", Some(name)) => client(shared, s, name, argv, now),
        ("config", Some(name)) => config_cmd(shared, local, s, name, argv),
        ("memory", Some(name)) => crate::memory_cmds::run(shared, s, name, argv, held),
        ("namespace", _) => crate::namespaces::command(shared, s, argv),
        ("eval", _) => crate::lua::eval(shared, local, s, argv, false, held, now),
        ("eval_ro", _) => crate::lua::eval(shared, local, s, argv, true, held, now),
        ("evalsha", _) => crate::lua::evalsha(shared, local, s, argv, false, held, now),
        ("evalsha_ro", _) => crate::lua::evalsha(shared, local, s, argv, true, held, now),
        ("script", Some(name)) => crate::lua::script(shared, s, name, argv),
        ("fcall", _) => crate::lua_functions::fcall(shared, local, s, argv, false, held, now),
        ("fcall_ro", _) => crate::lua_functions::fcall(shared, local, s, argv, true, held, now),
        ("function", Some(name)) => crate::lua_functions::function(shared, s, name, argv),
        ("command", Some(name)) => command_sub(s, name, argv),
        ("command", None) => {
            command_info_all(s);
            Ok(())
        }
        ("info", _) => {
            shared.stats.merge(&mut local.stats);
            let text = info::render(shared, &argv[1..], held);
            s.out.verbatim("txt", text.as_bytes());
            Ok(())
        }
        ("time", _) => {
            let us = crate::unix_us();
            s.out.array(2);
            s.out.bulk_i64(us / 1_000_000);
            s.out.bulk_i64(us % 1_000_000);
            Ok(())
        }
        ("save", _) => crate::persistence::save_command(shared, s),
        ("bgsave", _) => crate::persistence::bgsave_command(shared, s, argv, held.is_some()),
        ("bgrewriteaof", _) => crate::aof::bgrewriteaof_command(shared, s, held.is_some()),
        ("lastsave", _) => {
            s.out.int(shared.lastsave.load(Ordering::Relaxed));
            Ok(())
        }
        ("monitor", _) => {
            s.monitor = true;
            s.info.monitor.store(true, Ordering::Relaxed);
            shared.clients.set_monitor(s.info.id, Some(s.info.worker));
            s.out.ok();
            Ok(())
        }
        ("slowlog", Some(name)) => slowlog(shared, s, name, argv),
        ("shutdown", _) => shutdown(shared, argv),
        ("debug", _) => debug(shared, local, s, argv, held),
        _ => Err(CmdError::new(format!("ERR unknown command '{}'", cmd.name))),
    }
}

/// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE.
fn subscribe(shared: &Shared, s: &mut Session, kind: pubsub::Kind, names: &[&[u8]]) -> CmdResult {
    pubsub::subscribe(shared, s, kind, names);
    Ok(())
}

fn unsubscribe(shared: &Shared, s: &mut Session, kind: pubsub::Kind, names: &[&[u8]]) -> CmdResult {
    pubsub::unsubscribe(shared, s, kind, names);
    Ok(())
}

/// PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP
fn pubsub_cmd(shared: &Shared, s: &mut Session, sub: &str, argv: &[&[u8]]) -> CmdResult {
    use pubsub::Kind;
    match sub {
        "channels" | "shardchannels" => {
            if argv.len() > 3 {
                return Err(CmdError::new(format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                    args::text(argv[1])
                )));
            }
            let kind = if sub == "channels" { Kind::Channel } else { Kind::Shard };
            pubsub::channels(shared, &mut s.out, kind, argv.get(2).copied());
        }
        "numsub" => pubsub::numsub(shared, &mut s.out, Kind::Channel, &argv[2..]),
        "shardnumsub" => pubsub::numsub(shared, &mut s.out, Kind::Shard, &argv[2..]),
        "numpat" => s.out.int(shared.pubsub.count(Kind::Pattern) as i64),
        "help" => help(s, PUBSUB_HELP),
        _ => return Err(CmdError::new(format!("ERR unknown subcommand '{sub}'. Try PUBSUB HELP."))),
    }
    Ok(())
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

fn ping(s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    if argv.len() <= 2 && s.subs.active() && !s.out.is_resp3() {
        // In RESP2 subscribed mode PING answers in the push format: ["pong", message].
        s.out.array(2);
        s.out.bulk(b"pong");
        s.out.bulk(argv.get(1).copied().unwrap_or(b""));
        return Ok(());
    }
    match argv.len() {
        1 => s.out.simple("PONG"),
        2 => s.out.bulk(argv[1]),
        _ => return Err(wrong_arity("ping")),
    }
    Ok(())
}

fn select(shared: &Shared, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let id = args::c_int(argv[1], None)?;
    if id < 0 || id as usize >= shared.keyspace.databases() {
        return Err(CmdError::fixed("ERR DB index is out of range"));
    }
    s.select(id as usize);
    s.out.ok();
    Ok(())
}

/// Checks a username/password pair against the default user.
fn check_password(local: &WorkerLocal, user: &[u8], pass: &[u8]) -> CmdResult {
    let ok = user == b"default"
        && match &local.settings.requirepass {
            None => true,
            Some(p) => p.as_slice() == pass,
        };
    if ok {
        Ok(())
    } else {
        Err(CmdError::fixed("WRONGPASS invalid username-password pair or user is disabled."))
    }
}

fn auth(local: &mut WorkerLocal, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let (user, pass): (&[u8], &[u8]) = match argv.len() {
        2 => (b"default", argv[1]),
        3 => (argv[1], argv[2]),
        _ => return Err(SYNTAX),
    };
    if argv.len() == 2 && local.settings.requirepass.is_none() {
        return Err(CmdError::fixed("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
    }
    check_password(local, user, pass)?;
    s.authenticated = true;
    s.out.ok();
    Ok(())
}

fn valid_client_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::fixed("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

fn hello(local: &mut WorkerLocal, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let mut proto = None;
    if argv.len() >= 2 {
        let v = args::int_or(argv[1], CmdError::fixed("ERR Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::fixed("NOPROTO unsupported protocol version"));
        }
        proto = Some(v);
    }
    let mut creds = None;
    let mut name = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if is(argv[i], "auth") && more >= 2 {
            creds = Some((argv[i + 1], argv[i + 2]));
            i += 3;
        } else if is(argv[i], "setname") && more >= 1 {
            valid_client_name(argv[i + 1])?;
            name = Some(argv[i + 1]);
            i += 2;
        } else {
            return Err(CmdError::new(format!("ERR Syntax error in HELLO option '{}'", args::text(argv[i]))));
        }
    }
    if let Some((user, pass)) = creds {
        check_password(local, user, pass)?;
        s.authenticated = true;
    }
    if !s.authenticated {
        return Err(CmdError::fixed("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(n) = name {
        *s.info.name.lock() = Some(n.to_vec());
    }
    if let Some(v) = proto {
        s.set_proto(if v == 3 { Protocol::Resp3 } else { Protocol::Resp2 });
    }
    s.out.map(7);
    s.out.bulk(b"server");
    s.out.bulk(b"redis");
    s.out.bulk(b"version");
    s.out.bulk(crate::REDIS_COMPAT_VERSION.as_bytes());
    s.out.bulk(b"proto");
    s.out.int(if s.out.proto == Protocol::Resp3 { 3 } else { 2 });
    s.out.bulk(b"id");
    s.out.int(s.info.id as i64);
    s.out.bulk(b"mode");
    s.out.bulk(b"standalone");
    s.out.bulk(b"role");
    s.out.bulk(b"master");
    s.out.bulk(b"modules");
    s.out.array(0);
    Ok(())
}

fn reset(shared: &Shared, local: &mut WorkerLocal, s: &mut Session) -> CmdResult {
    s.multi = None;
    s.info.multi.store(-1, Ordering::Relaxed);
    multi::unwatch_all(shared, s);
    pubsub::drop_all(shared, s);
    s.select(0);
    s.set_proto(Protocol::Resp2);
    s.reply_mode = ReplyMode::On;
    *s.info.name.lock() = None;
    s.info.no_evict.store(false, Ordering::Relaxed);
    s.info.no_touch.store(false, Ordering::Relaxed);
    if s.monitor {
        s.monitor = false;
        s.info.monitor.store(false, Ordering::Relaxed);
        shared.clients.set_monitor(s.info.id, None);
    }
    s.authenticated = local.settings.requirepass.is_none();
    s.out.simple("RESET");
    Ok(())
}

fn on_off(arg: &[u8]) -> CmdResult<bool> {
    if is(arg, "on") {
        Ok(true)
    } else if is(arg, "off") {
        Ok(false)
    } else {
        Err(SYNTAX)
    }
}

fn client(shared: &Shared, s: &mut Session, sub: &str, argv: &[&[u8]], now: i64) -> CmdResult {
    match sub {
        "id" => s.out.int(s.info.id as i64),
        "getname" => match s.info.name.lock().as_deref() {
            Some(n) if !n.is_empty() => s.out.bulk(n),
            _ => s.out.null(),
        },
        "setname" => {
            valid_client_name(argv[2])?;
            *s.info.name.lock() = (!argv[2].is_empty()).then(|| argv[2].to_vec());
            s.out.ok();
        }
        "setinfo" => client_setinfo(s, argv)?,
        "info" => {
            let line = s.info.describe(now) + "\n";
            s.out.verbatim("txt", line.as_bytes());
        }
        "list" => client_list(shared, s, argv, now)?,
        "kill" => client_kill(shared, s, argv, now)?,
        "reply" => {
            let mode = if is(argv[2], "on") {
                ReplyMode::On
            } else if is(argv[2], "off") {
                ReplyMode::Off
            } else if is(argv[2], "skip") {
                ReplyMode::SkipNext
            } else {
                return Err(SYNTAX);
            };
            // OFF and SKIP suppress their own reply too; ON replies OK.
            s.reply_mode = mode;
            if mode == ReplyMode::On {
                s.out.ok();
            } else if mode == ReplyMode::SkipNext {
                // This command's own reply is not sent either.
                s.reply_mode = ReplyMode::SkipNext;
            }
        }
        "no-evict" => {
            s.info.no_evict.store(on_off(argv[2])?, Ordering::Relaxed);
            s.out.ok();
        }
        "no-touch" => {
            s.info.no_touch.store(on_off(argv[2])?, Ordering::Relaxed);
            s.out.ok();
        }
        "unblock" => client_unblock(shared, s, argv)?,
        "pause" => {
            client_pause(shared, argv, now)?;
            s.out.ok();
        }
        "unpause" => {
            shared.pause_end_ms.store(0, Ordering::Relaxed);
            shared.pause_all.store(false, Ordering::Relaxed);
            shared.wake_workers();
            s.out.ok();
        }
        "help" => help(s, CLIENT_HELP),
        _ => return Err(CmdError::new(format!("ERR unknown subcommand '{sub}'. Try CLIENT HELP."))),
    }
    Ok(())
}

/// CLIENT PAUSE timeout [WRITE | ALL]: holds back every command (ALL, the default) or those
/// that may write (WRITE) until the timeout. A second pause can only extend the end time or
/// widen WRITE to ALL, as in Redis.
fn client_pause(shared: &Shared, argv: &[&[u8]], now: i64) -> CmdResult {
    let timeout = args::int_or(argv[2], CmdError::fixed("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::fixed("ERR timeout is negative"));
    }
    let all = match argv.get(3) {
        None => true,
        Some(m) if is(m, "all") => true,
        Some(m) if is(m, "write") => false,
        Some(_) => return Err(CmdError::fixed("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    if argv.len() > 4 {
        return Err(SYNTAX);
    }
    let active = shared.pause_active(now);
    let end = now.saturating_add(timeout);
    let current = if active { shared.pause_end_ms.load(Ordering::Relaxed) } else { 0 };
    shared.pause_all.store(all || (active && shared.pause_all.load(Ordering::Relaxed)), Ordering::Relaxed);
    shared.pause_end_ms.store(end.max(current).max(1), Ordering::Relaxed);
    Ok(())
}

/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]: answers a blocked client as if its timeout
/// expired (null) or with an UNBLOCKED error. Replies 1 if it was blocked, else 0.
fn client_unblock(shared: &Shared, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let id = args::int(argv[2])?;
    let error = match argv.get(3) {
        None => false,
        Some(m) if is(m, "timeout") => false,
        Some(m) if is(m, "error") => true,
        Some(_) => return Err(CmdError::fixed("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    if argv.len() > 4 {
        return Err(SYNTAX);
    }
    let Some(w) = u64::try_from(id).ok().and_then(|id| shared.blocking.remove(id)) else {
        s.out.int(0);
        return Ok(());
    };
    let reply: &[u8] = match (error, w.resp3) {
        (true, _) => b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
        (false, true) => b"_\r\n",
        (false, false) => b"*-1\r\n",
    };
    if let Some(worker) = shared.workers.read().get(w.worker) {
        worker.send(Msg::Unblock(w.id, reply.to_vec()));
    }
    s.out.int(1);
    Ok(())
}

fn client_setinfo(s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let value = argv[3];
    if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::new(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            args::text(argv[2])
        )));
    }
    let slot = if is(argv[2], "lib-name") {
        &s.info.lib_name
    } else if is(argv[2], "lib-ver") {
        &s.info.lib_ver
    } else {
        return Err(CmdError::new(format!("ERR Unrecognized option '{}'", args::text(argv[2]))));
    };
    *slot.lock() = (!value.is_empty()).then(|| value.to_vec());
    s.out.ok();
    Ok(())
}

fn client_list(shared: &Shared, s: &mut Session, argv: &[&[u8]], now: i64) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < argv.len() {
        if is(argv[i], "type") && i + 1 < argv.len() {
            let t = argv[i + 1];
            if !["normal", "master", "replica", "slave", "pubsub"].iter().any(|n| is(t, n)) {
                return Err(CmdError::new(format!("ERR Unknown client type '{}'", args::text(t))));
            }
            if !is(t, "normal") {
                ids = Some(Vec::new());
            }
            i += 2;
        } else if is(argv[i], "id") && i + 1 < argv.len() {
            let mut list = Vec::new();
            for a in &argv[i + 1..] {
                let id = args::int(a).ok().filter(|v| *v > 0).ok_or(CmdError::fixed("ERR Invalid client ID"))?;
                list.push(id as u64);
            }
            ids = Some(list);
            i = argv.len();
        } else {
            return Err(SYNTAX);
        }
    }
    let mut text = String::new();
    for c in shared.clients.all() {
        if ids.as_ref().is_some_and(|l| !l.contains(&c.id)) {
            continue;
        }
        text.push_str(&c.describe(now));
        text.push('\n');
    }
    s.out.verbatim("txt", text.as_bytes());
    Ok(())
}

/// One CLIENT KILL filter (all given filters must match).
type ClientFilter = Box<dyn Fn(&crate::clients::ClientInfo) -> bool>;

fn client_kill(shared: &Shared, s: &mut Session, argv: &[&[u8]], now: i64) -> CmdResult {
    let all = shared.clients.all();
    if argv.len() == 3 {
        // Old form: CLIENT KILL addr:port
        let addr = args::text(argv[2]);
        let Some(c) = all.iter().find(|c| c.addr.to_string() == addr) else {
            return Err(CmdError::fixed("ERR No such client"));
        };
        kill(shared, s, c);
        s.out.ok();
        return Ok(());
    }
    if !argv.len().is_multiple_of(2) {
        return Err(SYNTAX);
    }
    let mut skipme = true;
    let mut filters: Vec<ClientFilter> = Vec::new();
    for pair in argv[2..].chunks(2) {
        let (k, v) = (pair[0], pair[1]);
        if is(k, "id") {
            let id =
                args::int(v).ok().filter(|v| *v > 0).ok_or(CmdError::fixed("ERR client-id should be greater than 0"))?
                    as u64;
            filters.push(Box::new(move |c| c.id == id));
        } else if is(k, "addr") {
            let a = args::text(v);
            filters.push(Box::new(move |c| c.addr.to_string() == a));
        } else if is(k, "laddr") {
            let a = args::text(v);
            filters.push(Box::new(move |c| c.laddr.to_string() == a));
        } else if is(k, "type") {
            let t = args::text(v).to_ascii_lowercase();
            if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                return Err(CmdError::new(format!("ERR Unknown client type '{}'", args::text(v))));
            }
            filters.push(Box::new(move |_| t == "normal"));
        } else if is(k, "user") {
            let u = v.to_vec();
            filters.push(Box::new(move |_| u == b"default"));
        } else if is(k, "skipme") {
            skipme = if is(v, "yes") {
                true
            } else if is(v, "no") {
                false
            } else {
                return Err(SYNTAX);
            };
        } else if is(k, "maxage") {
            let age = args::int(v)?;
            filters.push(Box::new(move |c| (now - c.created_ms) / 1000 >= age));
        } else {
            return Err(SYNTAX);
        }
    }
    let mut killed = 0;
    for c in &all {
        if filters.iter().all(|f| f(c)) && !(skipme && c.id == s.info.id) {
            kill(shared, s, c);
            killed += 1;
        }
    }
    s.out.int(killed);
    Ok(())
}

fn kill(shared: &Shared, s: &mut Session, c: &crate::clients::ClientInfo) {
    if c.id == s.info.id {
        s.close_after_reply = true;
        return;
    }
    c.kill.store(true, Ordering::Relaxed);
    if let Some(w) = shared.workers.read().get(c.worker) {
        w.send(Msg::Kill(c.id));
    }
}

fn help(s: &mut Session, lines: &[&str]) {
    s.out.array(lines.len());
    for l in lines {
        s.out.simple(l);
    }
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "    * MAXAGE <maxage>",
    "      Kill connections older than the specified age.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Prints this help.",
];

fn config_cmd(shared: &Shared, local: &mut WorkerLocal, s: &mut Session, sub: &str, argv: &[&[u8]]) -> CmdResult {
    match sub {
        "get" => config_get(shared, s, &argv[2..]),
        "set" => config_set(shared, local, s, argv)?,
        "resetstat" => {
            shared.stats.merge(&mut local.stats);
            shared.stats.reset();
            s.out.ok();
        }
        "rewrite" => {
            let cfg = shared.config.lock().clone();
            crate::info::rewrite_config(&cfg).map_err(CmdError::new)?;
            log_notice!("CONFIG REWRITE executed with success.");
            s.out.ok();
        }
        "help" => help(s, CONFIG_HELP),
        _ => return Err(CmdError::new(format!("ERR unknown subcommand '{sub}'. Try CONFIG HELP."))),
    }
    Ok(())
}

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

fn config_get(shared: &Shared, s: &mut Session, patterns: &[&[u8]]) {
    let cfg = shared.config.lock();
    let mut out: Vec<(String, String)> = Vec::new();
    for pat in patterns {
        if !pat.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            // An exact name (or alias) is echoed back as the client wrote it, as Redis does.
            let name = String::from_utf8_lossy(pat).into_owned();
            if let Some(p) = find_param(&name) {
                if !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                    out.push((name, cfg.shown(p.name)));
                }
            }
            continue;
        }
        for p in config::PARAMS {
            // Aliases match patterns too, and show the value of the parameter they name.
            for name in std::iter::once(p.name).chain(p.alias) {
                if store::glob::glob_match(pat, name.as_bytes(), true) && !out.iter().any(|(n, _)| n == name) {
                    out.push((name.to_string(), cfg.shown(p.name)));
                }
            }
        }
    }
    s.out.map(out.len());
    for (name, value) in out {
        s.out.bulk(name.as_bytes());
        s.out.bulk(value.as_bytes());
    }
}

/// Whether `enable-protected-configs` lets this client change a protected parameter.
fn protected_allowed(local: &WorkerLocal, s: &Session) -> bool {
    match local.settings.enable_protected_configs.as_str() {
        "yes" => true,
        "local" => s.info.addr.ip().is_loopback(),
        _ => false,
    }
}

fn config_set(shared: &Shared, local: &mut WorkerLocal, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    if !argv.len().is_multiple_of(2) {
        return Err(SYNTAX);
    }
    let mut cfg = shared.config.lock().clone();
    let mut seen = Vec::new();
    for pair in argv[2..].chunks(2) {
        let name = args::text(pair[0]);
        let Some(param) = find_param(&name) else {
            return Err(CmdError::new(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")));
        };
        let fail =
            |why: &str| CmdError::new(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"));
        if seen.contains(&param.name) {
            return Err(fail("duplicate parameter"));
        }
        seen.push(param.name);
        if !param.mutable {
            return Err(fail("can't set immutable config"));
        }
        if config::PROTECTED.contains(&param.name) && !protected_allowed(local, s) {
            return Err(fail("can't set protected config"));
        }
        cfg.set(param, &[args::text(pair[1])]).map_err(|e| fail(&e.0))?;
    }
    *shared.config.lock() = cfg;
    shared.reload_settings();
    local.refresh(shared);
    s.out.ok();
    Ok(())
}

fn command_sub(s: &mut Session, sub: &str, argv: &[&[u8]]) -> CmdResult {
    match sub {
        "count" => s.out.int(table::all().count() as i64),
        "info" => {
            let names = &argv[2..];
            if names.is_empty() {
                command_info_all(s);
            } else {
                s.out.array(names.len());
                for n in names {
                    match commands::lookup(n) {
                        Some(c) => command_info(s, c, None),
                        None => s.out.null(),
                    }
                }
            }
        }
        "docs" => command_docs(s, &argv[2..]),
        "list" => command_list(s, &argv[2..])?,
        "getkeys" => command_getkeys(s, &argv[2..])?,
        "help" => help(s, COMMAND_HELP),
        _ => return Err(CmdError::new(format!("ERR unknown subcommand '{sub}'. Try COMMAND HELP."))),
    }
    Ok(())
}

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

fn command_info_all(s: &mut Session) {
    s.out.array(table::all().count());
    for c in table::all() {
        command_info(s, c, None);
    }
}

/// One command's COMMAND INFO entry.
fn command_info(s: &mut Session, c: &CommandSpec, parent: Option<&CommandSpec>) {
    let name = match parent {
        Some(p) => format!("{}|{}", p.name, c.name),
        None => c.name.to_string(),
    };
    s.out.array(10);
    s.out.bulk(name.as_bytes());
    s.out.int(c.arity as i64);
    let flag_names: Vec<&str> = flags::NAMES.iter().filter(|(f, _)| c.flags & f != 0).map(|(_, n)| *n).collect();
    s.out.set(flag_names.len());
    for f in flag_names {
        s.out.simple(f);
    }
    s.out.int(c.keys.first as i64);
    s.out.int(c.keys.last as i64);
    s.out.int(c.keys.step as i64);
    s.out.set(c.acl.len());
    for a in c.acl {
        s.out.simple(a);
    }
    s.out.set(0);
    key_specs(s, c);
    s.out.set(c.subcommands.len());
    for sc in c.subcommands {
        command_info(s, sc, Some(c));
    }
}

/// The key specs of a command, derived from its (first, last, step) positions.
fn key_specs(s: &mut Session, c: &CommandSpec) {
    if c.keys.first == 0 {
        s.out.set(0);
        return;
    }
    s.out.set(1);
    s.out.map(3);
    s.out.bulk(b"flags");
    let access: &[&str] = if c.has(flags::WRITE) { &["RW", "update"] } else { &["RO", "access"] };
    s.out.set(access.len());
    for f in access {
        s.out.simple(f);
    }
    s.out.bulk(b"begin_search");
    s.out.map(2);
    s.out.bulk(b"type");
    s.out.bulk(b"index");
    s.out.bulk(b"spec");
    s.out.map(1);
    s.out.bulk(b"index");
    s.out.int(c.keys.first as i64);
    s.out.bulk(b"find_keys");
    s.out.map(2);
    s.out.bulk(b"type");
    s.out.bulk(b"range");
    s.out.bulk(b"spec");
    s.out.map(3);
    s.out.bulk(b"lastkey");
    s.out.int(if c.keys.last < 0 { c.keys.last as i64 } else { (c.keys.last - c.keys.first) as i64 });
    s.out.bulk(b"keystep");
    s.out.int(c.keys.step as i64);
    s.out.bulk(b"limit");
    s.out.int(0);
}

fn command_docs(s: &mut Session, names: &[&[u8]]) {
    let selected: Vec<&CommandSpec> = if names.is_empty() {
        table::all().collect()
    } else {
        names.iter().filter_map(|n| commands::lookup(n)).collect()
    };
    s.out.map(selected.len());
    for c in selected {
        s.out.bulk(c.name.as_bytes());
        doc_entry(s, c);
    }
}

fn doc_entry(s: &mut Session, c: &CommandSpec) {
    let has_subs = !c.subcommands.is_empty();
    s.out.map(4 + has_subs as usize);
    s.out.bulk(b"summary");
    s.out.bulk(c.summary.as_bytes());
    s.out.bulk(b"since");
    s.out.bulk(c.since.as_bytes());
    s.out.bulk(b"group");
    s.out.bulk(c.group.as_bytes());
    s.out.bulk(b"complexity");
    s.out.bulk(c.complexity.as_bytes());
    if has_subs {
        s.out.bulk(b"subcommands");
        s.out.map(c.subcommands.len());
        for sc in c.subcommands {
            s.out.bulk(format!("{}|{}", c.name, sc.name).as_bytes());
            doc_entry(s, sc);
        }
    }
}

fn command_list(s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let mut names: Vec<String> = Vec::new();
    for c in table::all() {
        names.push(c.name.to_string());
        names.extend(c.subcommands.iter().map(|sc| format!("{}|{}", c.name, sc.name)));
    }
    match argv {
        [] => {}
        [f, kind, value] if is(f, "filterby") => {
            if is(kind, "pattern") {
                names.retain(|n| store::glob::glob_match(value, n.as_bytes(), true));
            } else if is(kind, "aclcat") {
                let cat = format!("@{}", args::text(value).to_ascii_lowercase());
                names.retain(|n| spec_by_full_name(n).is_some_and(|c| c.acl.contains(&cat.as_str())));
            } else if is(kind, "module") {
                names.clear();
            } else {
                return Err(SYNTAX);
            }
        }
        _ => return Err(SYNTAX),
    }
    s.out.array(names.len());
    for n in names {
        s.out.bulk(n.as_bytes());
    }
    Ok(())
}

fn spec_by_full_name(name: &str) -> Option<&'static CommandSpec> {
    let mut parts = name.splitn(2, '|');
    let top = commands::lookup(parts.next()?.as_bytes())?;
    match parts.next() {
        Some(sub) => commands::lookup_sub(top, sub.as_bytes()),
        None => Some(top),
    }
}

fn command_getkeys(s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let Some(top) = commands::lookup(argv[0]) else {
        return Err(CmdError::fixed("ERR Invalid command specified"));
    };
    let spec = if !top.subcommands.is_empty() && argv.len() >= 2 {
        commands::lookup_sub(top, argv[1]).unwrap_or(top)
    } else {
        top
    };
    if !spec.arity_ok(argv.len()) {
        return Err(CmdError::fixed("ERR Invalid number of arguments specified for command"));
    }
    let keys: Vec<usize> = spec.keys_of(argv);
    if keys.is_empty() {
        return Err(CmdError::fixed("ERR The command has no key arguments"));
    }
    s.out.array(keys.len());
    for i in keys {
        s.out.bulk(argv[i]);
    }
    Ok(())
}

fn slowlog(shared: &Shared, s: &mut Session, sub: &str, argv: &[&[u8]]) -> CmdResult {
    match sub {
        "len" => s.out.int(shared.slowlog.lock().entries.len() as i64),
        "reset" => {
            shared.slowlog.lock().reset();
            s.out.ok();
        }
        "get" => {
            let count = match argv.get(2) {
                None => 10,
                Some(a) => {
                    let n = args::int_or(a, CmdError::fixed("ERR count should be greater than or equal to -1"))?;
                    if n < -1 {
                        return Err(CmdError::fixed("ERR count should be greater than or equal to -1"));
                    }
                    if n == -1 {
                        usize::MAX
                    } else {
                        n as usize
                    }
                }
            };
            let log = shared.slowlog.lock();
            let entries: Vec<_> = log.entries.iter().take(count).cloned().collect();
            drop(log);
            s.out.array(entries.len());
            for e in entries {
                s.out.array(6);
                s.out.int(e.id as i64);
                s.out.int(e.time_unix);
                s.out.int(e.duration_us as i64);
                s.out.array(e.args.len());
                for a in &e.args {
                    s.out.bulk(a);
                }
                s.out.bulk(e.client_addr.as_bytes());
                s.out.bulk(&e.client_name);
            }
        }
        "help" => help(s, SLOWLOG_HELP),
        _ => return Err(CmdError::new(format!("ERR unknown subcommand '{sub}'. Try SLOWLOG HELP."))),
    }
    Ok(())
}

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

fn shutdown(shared: &Shared, argv: &[&[u8]]) -> CmdResult {
    for a in &argv[1..] {
        if !["nosave", "save", "now", "force", "abort"].iter().any(|w| is(a, w)) {
            return Err(SYNTAX);
        }
    }
    if argv[1..].iter().any(|a| is(a, "abort")) {
        return Err(CmdError::fixed("ERR No shutdown in progress."));
    }
    log_warning!("User requested shutdown...");
    let has = |w: &str| argv[1..].iter().any(|a| is(a, w));
    let saved = crate::persistence::save_before_shutdown(shared, has("save"), has("nosave"));
    if saved.is_err() && !has("force") {
        return Err(CmdError::fixed("ERR Errors trying to SHUTDOWN. Check logs."));
    }
    shared.request_shutdown();
    // Like Redis, a successful SHUTDOWN closes the connection without a reply.
    Ok(())
}

/// DEBUG OBJECT's line for `key`.
fn debug_object(view: &mut store::View<'_>, db: usize, key: &[u8]) -> CmdResult<String> {
    let now = crate::unix_ms();
    let Some(e) = view.db(db, key).lookup(key, now) else {
        return Err(CmdError::fixed("ERR no such key"));
    };
    let enc = match e.value() {
        store::ValueRef::Object(o) if e.kind() != store::Kind::String => o.encoding(),
        _ => commands::handlers::keys::string_encoding(e),
    };
    Ok(format!(
        "Value at:0x0 refcount:1 encoding:{enc} serializedlength:{} lru:{} lru_seconds_idle:0",
        e.packed_size(),
        e.clock()
    ))
}

fn debug(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    argv: &[&[u8]],
    held: Option<&mut store::View<'_>>,
) -> CmdResult {
    if local.settings.debug_command == "no"
        || (local.settings.debug_command == "local" && !s.info.addr.ip().is_loopback())
    {
        return Err(CmdError::fixed("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."));
    }
    let sub = args::text(argv[1]).to_ascii_lowercase();
    match (sub.as_str(), argv.len()) {
        ("sleep", 3) => {
            let secs: f64 =
                args::text(argv[2]).parse().map_err(|_| CmdError::fixed("ERR value is not a valid float"))?;
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
            s.out.ok();
        }
        ("set-active-expire", 3) => {
            let on = args::int(argv[2])? != 0;
            shared.active_expire.store(on, Ordering::Relaxed);
            s.out.ok();
        }
        ("object", 3) => {
            let key = argv[2];
            let line = match held {
                Some(view) => debug_object(view, s.db, key)?,
                None => debug_object(&mut shared.keyspace.lock_key(key), s.db, key)?,
            };
            s.out.simple(&line);
        }
        ("guard-tick", 3 | 4) => {
            // a sample locks shards one at a time: not while a transaction holds them all
            if held.is_some() {
                return Err(CmdError::fixed("ERR DEBUG GUARD-TICK cannot run inside MULTI"));
            }
            let ms = args::int(argv[2])?;
            let count = if argv.len() == 4 { args::int(argv[3])? } else { 1 };
            if !(1..=366 * 86_400_000).contains(&ms) || !(1..=1_000_000).contains(&count) {
                return Err(CmdError::fixed("ERR GUARD-TICK takes 1 ms to a year, 1 to 1000000 times"));
            }
            crate::guardrails::tick(shared, ms, count as u64);
            s.out.ok();
        }
        ("leak-memory", 3) => {
            let bytes = args::int(argv[2])?;
            if !(1..=1 << 32).contains(&bytes) {
                return Err(CmdError::fixed("ERR LEAK-MEMORY takes 1 byte to 4 GiB"));
            }
            crate::guardrails::leak(shared, bytes as usize);
            s.out.ok();
        }
        ("help", _) => help(
            s,
            &[
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GUARD-TICK <milliseconds> [<count>]",
                "    Move the guardrail clock forward and take a sample (count times).",
                "LEAK-MEMORY <bytes>",
                "    Allocate memory that is never freed (to test the RSS alert).",
                "OBJECT <key>",
                "SET-ACTIVE-EXPIRE <0|1>",
                "SLEEP <seconds>",
                "HELP",
            ],
        ),
        _ => {
            return Err(CmdError::new(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
                args::text(argv[1])
            )))
        }
    }
    Ok(())
}
