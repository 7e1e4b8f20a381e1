//! Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD/EXISTS/FLUSH/KILL/HELP.
//!
//! Each worker thread has its own Lua 5.1 interpreter (mlua, vendored), created on first use
//! with Redis's sandbox: only the base, table, string and math libraries (without `loadfile`,
//! `dofile`, `print` and module loading), a read-only global table (reading an undefined
//! global or creating one is an error, as in Redis 7), and the `redis` table. Scripts are
//! cached by SHA1 for the whole server (SCRIPT LOAD, EVAL) and compiled once per worker.
//!
//! A script runs with every shard locked, so it is atomic and may touch keys it did not
//! declare, as in standalone Redis. `redis.call` runs keyspace commands through the same
//! handlers as clients (replies converted between RESP and Lua exactly as Redis does);
//! their events, WATCH invalidations and wake-ups of blocked clients happen as for clients.
//! Errors carry Redis 7's `script: <sha>, on @user_script:<line>.` suffix.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use std::ffi::c_int;

use commands::table::flags;
use commands::{CmdError, CmdResult, CommandSpec, Handler};
use mlua::{ffi, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use resp::ReplyBuf;
use store::View;

use crate::dispatch::WorkerLocal;
use crate::session::Session;
use crate::Shared;

/// The server-wide script cache: SHA1 (lowercase hex) → body, and the state of the script
/// running now (scripts hold every shard lock, so at most one runs at a time).
#[derive(Default)]
pub struct Scripts {
    bodies: parking_lot::Mutex<HashMap<String, std::sync::Arc<Vec<u8>>>>,
    /// SCRIPT FLUSHes so far: a worker that has seen fewer drops its compiled scripts.
    flushes: AtomicU64,
}

/// The reply to commands refused while a script runs past `busy-reply-threshold`.
pub const BUSY: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// The error a script stopped by SCRIPT KILL ends with.
const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

// The running script's state. One server runs per process, and scripts hold every shard
// lock, so at most one runs at a time.
/// Unix ms when the running script started (0: none).
static RUNNING_SINCE: AtomicI64 = AtomicI64::new(0);
/// The running script has written to the keyspace (it can no longer be killed).
static WROTE: AtomicBool = AtomicBool::new(false);
/// SCRIPT KILL (or SHUTDOWN NOSAVE) asked the running script to stop.
static KILL: AtomicBool = AtomicBool::new(false);

/// What happens to a command while a script runs.
pub enum Busy {
    /// No script has been running longer than `busy-reply-threshold`.
    No,
    /// The command must be refused with `-BUSY`.
    Refuse,
}

impl Scripts {
    fn get(&self, sha: &str) -> Option<std::sync::Arc<Vec<u8>>> {
        self.bodies.lock().get(sha).cloned()
    }

    fn add(&self, body: &[u8]) -> String {
        let sha = sha1_hex(body);
        self.bodies.lock().entry(sha.clone()).or_insert_with(|| std::sync::Arc::new(body.to_vec()));
        sha
    }

    pub fn len(&self) -> usize {
        self.bodies.lock().len()
    }

    /// Whether a command arriving now must get `-BUSY` (a script has run for longer than
    /// `threshold_ms`; commands flagged `allow-busy`, SCRIPT KILL and SHUTDOWN NOSAVE pass).
    pub fn busy(&self, spec: &CommandSpec, argv: &[&[u8]], threshold_ms: u64) -> Busy {
        let since = RUNNING_SINCE.load(Ordering::Acquire);
        if since == 0 || crate::unix_ms() - since <= threshold_ms as i64 {
            return Busy::No;
        }
        let allowed = spec.has(flags::ALLOW_BUSY)
            || (spec.name == "kill" && argv.first().is_some_and(|c| commands::args::is(c, "script")));
        if allowed {
            Busy::No
        } else {
            Busy::Refuse
        }
    }

    /// Whether a script has been running for longer than `threshold_ms`.
    pub fn over_threshold(threshold_ms: u64) -> bool {
        let since = RUNNING_SINCE.load(Ordering::Acquire);
        since != 0 && crate::unix_ms() - since > threshold_ms as i64
    }

    /// Whether a script is running.
    pub fn running() -> bool {
        RUNNING_SINCE.load(Ordering::Acquire) != 0
    }

    /// Asks the running script to stop (SHUTDOWN NOSAVE); true if one was running.
    pub fn stop_running(&self) -> bool {
        let running = RUNNING_SINCE.load(Ordering::Acquire) != 0;
        if running {
            KILL.store(true, Ordering::Release);
        }
        running
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

struct Vm {
    lua: Lua,
    /// Compiled scripts by SHA1.
    compiled: HashMap<String, mlua::Function>,
    /// Lua's `xpcall` and the error handler scripts run under.
    xpcall: mlua::Function,
    handler: mlua::Function,
    /// `Scripts::flushes` when `compiled` was last emptied.
    flushes: u64,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
    /// The running script's `RefCell<Call>` (null when none runs on this thread).
    static CURRENT_CALL: std::cell::Cell<*const ()> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// The sandboxed interpreter (see the module docs).
pub(crate) fn new_vm() -> mlua::Result<Lua> {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default())?;
    // Scripts leave a little garbage each (KEYS/ARGV tables, reply strings): collect when the
    // heap has grown 4× rather than 2× (Lua's default), halving the collector's share of a
    // short script's time for a small, bounded amount of memory.
    lua.gc_set_pause(400);
    // A script that allocates without bound (`string.rep` of a large string, `s = s .. s`)
    // gets Lua's "not enough memory" error instead of the process aborting.
    lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
    let g = lua.globals();
    for name in ["loadfile", "dofile", "print", "require", "module", "newproxy"] {
        g.raw_set(name, Value::Nil)?;
    }
    let redis = lua.create_table()?;
    redis.set("sha1hex", lua.create_function(|_, s: mlua::String| Ok(sha1_hex(&s.as_bytes())))?)?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, s: mlua::String| {
            let t = lua.create_table()?;
            t.set("err", s)?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, s: mlua::String| {
            let t = lua.create_table()?;
            t.set("ok", s)?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "log",
        lua.create_function(|_, args: MultiValue| {
            let text: Vec<String> = args.iter().skip(1).map(|v| v.to_string().unwrap_or_default()).collect();
            crate::log_notice!("Lua: {}", text.join(" "));
            Ok(())
        })?,
    )?;
    // C functions on the raw stack: a call may carry as many arguments as Lua's C stack holds
    // (`unpack` of ~8,000 values), which mlua's argument conversion cannot take.
    for (name, f) in [("call", call_entry as ffi::lua_CFunction), ("pcall", pcall_entry)] {
        // SAFETY: pushes a C function on the state exec_raw hands it.
        let f: mlua::Function = unsafe { lua.exec_raw((), |l| ffi::lua_pushcfunction(l, f)) }?;
        redis.set(name, f)?;
    }
    // SAFETY: pushes a C function on the state exec_raw hands it.
    let setresp: mlua::Function = unsafe { lua.exec_raw((), |l| ffi::lua_pushcfunction(l, setresp_entry)) }?;
    redis.set("setresp", setresp)?;
    redis.set("set_repl", lua.create_function(|_, _v: i64| Ok(()))?)?;
    redis.set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    for (name, v) in [("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)] {
        redis.set(name, v)?;
    }
    for (name, v) in [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3)] {
        redis.set(name, v)?;
    }
    g.raw_set("redis", redis)?;
    arm_stop_hook(&lua)?;
    register_push_owned(&lua)?;
    crate::lua_cjson::register(&lua)?;
    crate::lua_cmsgpack::register(&lua)?;
    crate::lua_bit::register(&lua)?;
    crate::lua_struct::register(&lua)?;
    let env = crate::lua_sandbox::install(&lua)?;
    lua.set_named_registry_value(SCRIPT_ENV, env)?;
    Ok(lua)
}

/// How many instructions a script runs between two checks of whether it must stop.
const STOP_CHECK_EVERY: c_int = 100_000;

thread_local! {
    /// Checks (see `stop_hook`) a detached run may still make before it is stopped.
    static BUDGET: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
    /// `stop_hook` tightened a hook on this thread: the next script re-arms its interpreter's.
    static TIGHTENED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The registry key (a light userdata) of the interpreter's main thread.
static MAIN_THREAD_KEY: u8 = 0;

/// Installs `stop_hook` on the interpreter's main thread (coroutines inherit it) at its normal
/// rate, undoing the tightening of a previous stop, and records the main thread.
fn arm_stop_hook(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: exec_raw runs the closure on the main thread's state (nothing else is running);
    // the key is a static address, the values pushed are balanced by the rawset.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            ffi::lua_pushlightuserdata(l, &MAIN_THREAD_KEY as *const u8 as *mut std::ffi::c_void);
            ffi::lua_pushthread(l);
            ffi::lua_rawset(l, ffi::LUA_REGISTRYINDEX);
            ffi::lua_sethook(l, Some(stop_hook), ffi::LUA_MASKCOUNT, STOP_CHECK_EVERY);
        })
    }
}

/// The count hook of every script thread: stops the script once SCRIPT KILL (or a shutdown)
/// asked for it, or a detached run used up its budget. From then on the hook fires on every
/// instruction of the thread and of the main thread, so neither `pcall` nor a coroutine can
/// swallow the error and carry on (Redis tightens its hook the same way).
unsafe extern "C-unwind" fn stop_hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    let exhausted = BUDGET.with(|b| {
        let left = b.get().saturating_sub(1);
        b.set(left);
        left == 0
    });
    if !KILL.load(Ordering::Acquire) && !exhausted {
        return;
    }
    TIGHTENED.with(|t| t.set(true));
    // SAFETY: called by Lua with a valid state and stack room (LUA_MINSTACK) for a hook;
    // no Rust value with a destructor is alive across lua_error.
    unsafe {
        ffi::lua_sethook(l, Some(stop_hook), ffi::LUA_MASKCOUNT, 1);
        ffi::lua_pushlightuserdata(l, &MAIN_THREAD_KEY as *const u8 as *mut std::ffi::c_void);
        ffi::lua_rawget(l, ffi::LUA_REGISTRYINDEX);
        let main = ffi::lua_tothread(l, -1);
        if !main.is_null() {
            ffi::lua_sethook(main, Some(stop_hook), ffi::LUA_MASKCOUNT, 1);
        }
        ffi::lua_settop(l, -2);
        ffi::lua_pushlstring(l, KILLED.as_ptr().cast(), KILLED.len());
        ffi::lua_error(l);
    }
}

/// The registry slot (an integer key luaL_ref never hands out) of `push_owned`'s helper.
const PUSH_OWNED_SLOT: c_int = -0x7075_7368;

thread_local! {
    /// The bytes `push_owned` is pushing, for its helper.
    static PUSHING: std::cell::Cell<*const Vec<u8>> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Registers `push_owned`'s helper in the registry of `lua`.
fn register_push_owned(lua: &Lua) -> mlua::Result<()> {
    /// Pushes the bytes `push_owned` set, under `lua_pcall`.
    unsafe extern "C-unwind" fn helper(l: *mut ffi::lua_State) -> c_int {
        let bytes = PUSHING.with(std::cell::Cell::get);
        // SAFETY: push_owned points PUSHING at a live Vec around the lua_pcall of this
        // function; a C function has LUA_MINSTACK free slots.
        unsafe {
            if bytes.is_null() {
                ffi::lua_pushnil(l);
            } else {
                ffi::lua_pushlstring_(l, (*bytes).as_ptr().cast(), (*bytes).len());
            }
        }
        1
    }
    // SAFETY: runs on the main thread's state; the push is balanced by the rawseti.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            ffi::lua_pushcfunction(l, helper);
            ffi::lua_rawseti_(l, ffi::LUA_REGISTRYINDEX, PUSH_OWNED_SLOT);
        })
    }
}

/// Pushes `bytes` as a Lua string, for the libraries written in Rust: should Lua be out of
/// memory (see `LUA_MEMORY_LIMIT`), `bytes` is freed before the error is raised instead of
/// being leaked by Lua's unwinding, which skips Rust destructors.
///
/// # Safety
/// `l` is the state of a C function running under Lua with a free stack slot, and no other
/// Rust value that owns memory is alive in the calling frames.
pub(crate) unsafe fn push_owned(l: *mut ffi::lua_State, bytes: Vec<u8>) {
    // SAFETY: the caller's guarantees; nothing owned is alive when lua_error unwinds.
    unsafe {
        // The protected call needs a second slot; at Lua's stack limit, or in an interpreter
        // without the helper (the libraries' own tests), the string is pushed directly.
        let protected = ffi::lua_checkstack(l, 2) != 0 && {
            ffi::lua_rawgeti_(l, ffi::LUA_REGISTRYINDEX, PUSH_OWNED_SLOT);
            ffi::lua_type(l, -1) == ffi::LUA_TFUNCTION || {
                ffi::lua_settop(l, -2);
                false
            }
        };
        if !protected {
            ffi::lua_pushlstring_(l, bytes.as_ptr().cast(), bytes.len());
            return;
        }
        PUSHING.with(|p| p.set(&bytes));
        let status = ffi::lua_pcall(l, 0, 1, 0);
        PUSHING.with(|p| p.set(std::ptr::null()));
        drop(bytes);
        if status != 0 {
            // The error (out of memory) is in the string's place.
            ffi::lua_error(l);
        }
    }
}

/// The registry name of the environment scripts run in (see `new_vm`).
const SCRIPT_ENV: &str = "redoubt.script_env";

/// The most memory one worker's Lua heap may use. Lua 5.1 does not collect before failing an
/// allocation, so after a script the heap is collected when it holds more than half of this.
const LUA_MEMORY_LIMIT: usize = 1 << 30;

/// Refuses bytecode as Redis's parser does (a body starting with ESC is a syntax error):
/// Lua 5.1 runs and even loads crafted bytecode unchecked.
fn refuse_bytecode(body: &[u8]) -> mlua::Result<()> {
    if body.first() == Some(&0x1b) {
        return Err(mlua::Error::SyntaxError {
            message: "user_script:1: unexpected symbol near 'char(27)'".into(),
            incomplete_input: false,
        });
    }
    Ok(())
}

/// Compiles a script body in the scripts' environment; bytecode is refused as Redis does.
fn compile(lua: &Lua, body: &[u8]) -> mlua::Result<mlua::Function> {
    refuse_bytecode(body)?;
    let env: Table = lua.named_registry_value(SCRIPT_ENV)?;
    lua.load(body).set_name("@user_script").set_environment(env).into_function()
}

/// What a running script's `redis.call` needs.
struct Call<'a, 'v> {
    shared: &'a Shared,
    local: &'a mut WorkerLocal,
    view: &'a mut View<'v>,
    db: usize,
    now: i64,
    resp3: bool,
    read_only: bool,
    /// The error text `redis.call` raised last (a string, as Redis raises it), so the error
    /// handler can tell it from the script's own errors.
    call_error: Option<Vec<u8>>,
    /// An error the script raised with a table (`{err = ...}`): (text, script line).
    table_error: Option<(String, i64)>,
    /// Where the error that ended the script was raised: `source:line` (see `error_origin`).
    origin: Option<String>,
}

/// A number argument of `redis.call` as Redis 7.0 passes it to the command: C's `%.17g`
/// (every digit a double holds, so no precision is lost; glibc's `-nan`, `inf`, `-0`).
fn lua_number_text(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    // %g picks the style from the exponent after rounding to 17 significant digits.
    let sci = format!("{n:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let x: i32 = exp.parse().expect("exponent digits");
    if !(-4..17).contains(&x) {
        let sign = if x < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mantissa), x.abs())
    } else {
        strip(&format!("{n:.*}", (16 - x) as usize))
    }
}

/// Runs one `redis.call`/`redis.pcall` command; returns the raw RESP reply or an error text.
fn run_command(call: &mut Call<'_, '_>, argv: Vec<Vec<u8>>) -> Result<Vec<u8>, String> {
    if argv.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call".into());
    }
    let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let Some(cmd) = commands::lookup(refs[0]) else {
        return Err("ERR Unknown Redis command called from script".into());
    };
    let spec: &'static CommandSpec = match (cmd.subcommands.is_empty(), refs.get(1)) {
        (false, Some(sub)) => commands::lookup_sub(cmd, sub).unwrap_or(cmd),
        _ => cmd,
    };
    if !spec.arity_ok(refs.len()) {
        return Err("ERR Wrong number of args calling Redis command from script".into());
    }
    if cmd.has(flags::NOSCRIPT) {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    if call.read_only && spec.has(flags::WRITE) {
        return Err("ERR Write commands are not allowed from read-only scripts.".into());
    }
    if spec.has(flags::WRITE) {
        if let Some(e) = crate::persistence::misconf(call.shared, &call.local.settings) {
            return Err(e.text().to_string());
        }
    }
    if spec.has(flags::DENYOOM) && !WROTE.load(Ordering::Acquire) {
        if let Some(oom) = &call.local.script_oom {
            if let Some(i) = oom.namespace {
                crate::namespaces::count_refusal(i, true);
            }
            return Err(oom.text.clone());
        }
    }
    let mut out = ReplyBuf::new(if call.resp3 { resp::Protocol::Resp3 } else { resp::Protocol::Resp2 });
    match spec.handler {
        Handler::Keyspace(f) => {
            let r = crate::dispatch::run_handler(
                call.shared,
                call.local,
                &mut out,
                call.db,
                spec,
                f,
                &refs,
                call.now,
                call.view,
                crate::dispatch::Blocking::Script,
            );
            call.local.block = None;
            if spec.has(flags::WRITE) {
                WROTE.store(true, Ordering::Release);
            }
            if let Err(e) = r {
                return Err(e.text().to_string());
            }
        }
        Handler::Server => match spec.name {
            "ping" => match refs.get(1) {
                Some(m) => out.bulk(m),
                None => out.simple("PONG"),
            },
            "echo" => out.bulk(refs[1]),
            "time" => {
                let us = crate::unix_us();
                out.array(2);
                out.bulk_i64(us / 1_000_000);
                out.bulk_i64(us % 1_000_000);
            }
            _ => return Err("ERR This Redis command is not allowed from script".into()),
        },
    }
    Ok(out.buf)
}

/// Converts a RESP reply into Lua values as Redis does: integers to numbers, bulk strings to
/// strings, nulls to `false`, arrays to tables, status replies to `{ok=...}`, errors to
/// Pushes a command's RESP reply as Redis converts it to Lua (`redisProtocolToLuaType`):
/// integers as numbers, nulls as false, arrays and sets as tables, maps as `{map = ...}`,
/// status and error replies as `{ok = ...}` / `{err = ...}`, doubles as `{double = ...}`.
///
/// # Safety
/// `l` is a valid state with room for a few values; may raise a Lua memory error.
unsafe fn push_reply(l: *mut ffi::lua_State, buf: &[u8], pos: &mut usize) {
    let line_end = |p: usize| buf[p..].windows(2).position(|w| w == b"\r\n").map(|i| p + i);
    // SAFETY: the caller's contract; every branch pushes exactly one value.
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            ffi::lua_pushboolean(l, 0);
            return;
        }
        let Some(end) = line_end(*pos) else {
            ffi::lua_pushboolean(l, 0);
            return;
        };
        let kind = buf[*pos];
        let line = &buf[*pos + 1..end];
        *pos = end + 2;
        let num = || std::str::from_utf8(line).ok().and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
        let push_bytes = |b: &[u8]| ffi::lua_pushlstring(l, b.as_ptr() as *const std::ffi::c_char, b.len());
        let table_with = |field: &std::ffi::CStr, value: &[u8]| {
            ffi::lua_createtable(l, 0, 1);
            push_bytes(value);
            ffi::lua_setfield(l, -2, field.as_ptr());
        };
        match kind {
            b':' => ffi::lua_pushnumber(l, num() as f64),
            b'$' if num() < 0 => ffi::lua_pushboolean(l, 0),
            b'$' => {
                let n = num() as usize;
                push_bytes(&buf[*pos..*pos + n]);
                *pos += n + 2;
            }
            b'*' | b'>' if num() < 0 => ffi::lua_pushboolean(l, 0),
            b'~' => {
                // {set = {member = true, ...}}
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_createtable(l, 0, num().clamp(0, 1 << 20) as c_int);
                for _ in 0..num() {
                    push_reply(l, buf, pos);
                    ffi::lua_pushboolean(l, 1);
                    ffi::lua_rawset(l, -3);
                }
                ffi::lua_setfield(l, -2, c"set".as_ptr());
            }
            b'(' => table_with(c"big_number", line),
            b'=' => {
                // {verbatim_string = {format = "txt", string = ...}}
                let n = num() as usize;
                let body = &buf[*pos..*pos + n];
                *pos += n + 2;
                let (format, text) = body.split_at(body.len().min(4));
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_createtable(l, 0, 2);
                push_bytes(&format[..format.len().saturating_sub(1)]);
                ffi::lua_setfield(l, -2, c"format".as_ptr());
                push_bytes(text);
                ffi::lua_setfield(l, -2, c"string".as_ptr());
                ffi::lua_setfield(l, -2, c"verbatim_string".as_ptr());
            }
            b'|' => {
                // Attributes are dropped: skip them and convert the reply they annotate.
                for _ in 0..2 * num() {
                    push_reply(l, buf, pos);
                    ffi::lua_settop(l, -2);
                }
                push_reply(l, buf, pos);
            }
            b'*' | b'>' => {
                let n = num();
                ffi::lua_createtable(l, n.min(1 << 20) as c_int, 0);
                for i in 1..=n {
                    push_reply(l, buf, pos);
                    ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
                }
            }
            b'%' => {
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_createtable(l, 0, num().min(1 << 20) as c_int);
                for _ in 0..num() {
                    push_reply(l, buf, pos);
                    push_reply(l, buf, pos);
                    ffi::lua_rawset(l, -3);
                }
                ffi::lua_setfield(l, -2, c"map".as_ptr());
            }
            b'+' => table_with(c"ok", line),
            b'-' => table_with(c"err", line),
            // RESP3's null is nil; RESP2's null bulk and array are false.
            b'_' => ffi::lua_pushnil(l),
            b'#' => ffi::lua_pushboolean(l, c_int::from(line == b"t")),
            b',' => {
                ffi::lua_createtable(l, 0, 1);
                let d = std::str::from_utf8(line).ok().and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
                ffi::lua_pushnumber(l, d);
                ffi::lua_setfield(l, -2, c"double".as_ptr());
            }
            _ => ffi::lua_pushboolean(l, 0),
        }
    }
}

/// Writes a script's return value as Redis converts it (`luaReplyToRedisReply`). `resp3` is
/// the protocol the script chose with `redis.setresp`: it decides how booleans are returned.
fn lua_to_resp(v: &Value, out: &mut ReplyBuf, depth: usize, resp3: bool) {
    let field = |t: &Table, name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    let text = |s: &mlua::String| String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
    match v {
        Value::Nil => out.null(),
        Value::Boolean(b) if resp3 => out.boolean(*b),
        Value::Boolean(true) => out.int(1),
        Value::Boolean(false) => out.null(),
        Value::Integer(i) => out.int(*i),
        // C's (long long) conversion on x86-64: out-of-range values become i64::MIN.
        Value::Number(n) if !(-(2f64.powi(63))..2f64.powi(63)).contains(n) => out.int(i64::MIN),
        Value::Number(n) => out.int(*n as i64),
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Table(t) if depth < 64 => {
            if let Value::String(e) = field(t, "err") {
                out.error(&text(&e));
            } else if let Value::String(ok) = field(t, "ok") {
                out.simple(&text(&ok));
            } else if let Some(d) = match field(t, "double") {
                Value::Number(d) => Some(d),
                Value::Integer(i) => Some(i as f64),
                _ => None,
            } {
                out.double_text(lua_number_text(d).as_bytes());
            } else if let Value::String(n) = field(t, "big_number") {
                let n = text(&n);
                if out.is_resp3() {
                    out.raw(format!("({n}\r\n").as_bytes());
                } else {
                    out.bulk(n.as_bytes());
                }
            } else if let Some((format, s)) = match field(t, "verbatim_string") {
                Value::Table(v) => match (field(&v, "format"), field(&v, "string")) {
                    (Value::String(f), Value::String(s)) => Some((f, s)),
                    _ => None,
                },
                _ => None,
            } {
                let format = String::from_utf8_lossy(&format.as_bytes())
                    .chars()
                    .chain("   ".chars())
                    .take(3)
                    .collect::<String>();
                out.verbatim(&format, &s.as_bytes());
            } else if let Value::Table(m) = field(t, "map") {
                let n = m.clone().pairs::<Value, Value>().count();
                out.map(n);
                for pair in m.pairs::<Value, Value>().flatten() {
                    lua_to_resp(&pair.0, out, depth + 1, resp3);
                    lua_to_resp(&pair.1, out, depth + 1, resp3);
                }
            } else if let Value::Table(set) = field(t, "set") {
                let n = set.clone().pairs::<Value, Value>().count();
                out.set(n);
                for (k, _) in set.pairs::<Value, Value>().flatten() {
                    lua_to_resp(&k, out, depth + 1, resp3);
                }
            } else {
                // Two passes, holding one element at a time: every value held from Rust takes a
                // slot of Lua's stack, of which there are about 8,000.
                let present = |i: usize| t.raw_get::<Value>(i).is_ok_and(|v| !v.is_nil());
                let n = (1..).take_while(|&i| present(i)).count();
                out.array(n);
                for i in 1..=n {
                    let v = t.raw_get::<Value>(i).unwrap_or(Value::Nil);
                    lua_to_resp(&v, out, depth + 1, resp3);
                }
            }
        }
        _ => out.null(),
    }
}

/// The line a Lua error message names (`user_script:3: ...`).
fn error_line(msg: &str) -> i64 {
    msg.strip_prefix("user_script:").and_then(|r| r.split(':').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Lua 5.1's `tostring` of a number (`%.14g`): how a number becomes a string inside Lua.
pub(crate) fn lua_tostring_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    let sci = format!("{n:.13e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..14).contains(&x) {
        format!("{}e{}{:02}", strip(mantissa), if x < 0 { '-' } else { '+' }, x.abs())
    } else {
        strip(&format!("{n:.*}", (13 - x) as usize))
    }
}

/// [`error_message`] for the other scripting modules.
pub(crate) fn error_text(e: &mlua::Error) -> String {
    error_message(e)
}

/// Runs `f` (no arguments) stopping it after about `max_instructions` instructions.
pub(crate) fn run_bounded(lua: &Lua, f: &mlua::Function, max_instructions: u32) -> mlua::Result<()> {
    arm_stop_hook(lua)?;
    BUDGET.with(|b| b.set(u64::from(max_instructions) / STOP_CHECK_EVERY as u64 + 1));
    let r = f.call::<()>(());
    BUDGET.with(|b| b.set(u64::MAX));
    arm_stop_hook(lua)?;
    r
}

/// The innermost message of an mlua error (without the traceback mlua appends).
fn error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => {
            m.split("\nstack traceback:").next().unwrap_or(m).to_string()
        }
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        other => other.to_string(),
    }
}

/// `redis.call`: runs a command for the running script; an error reply is raised.
unsafe extern "C-unwind" fn call_entry(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state.
    unsafe { redis_call(l, false) }
}

/// `redis.pcall`: as `redis.call`, but an error reply is returned as `{err = ...}`.
unsafe extern "C-unwind" fn pcall_entry(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state.
    unsafe { redis_call(l, true) }
}

/// Raises `text` as the string error Redis's library functions raise, noting it so the error
/// handler reports it with its own text (no "ERR" added) and the script's line.
///
/// # Safety
/// `l` is a valid state inside a Lua call; the caller holds no Rust value with a destructor.
unsafe fn raise_library_error(l: *mut ffi::lua_State, text: Vec<u8>) -> c_int {
    // SAFETY: the caller's contract. The text is copied into Lua, then handed to the call
    // state, so nothing this frame owns is skipped by the unwind.
    unsafe {
        ffi::lua_pushlstring(l, text.as_ptr() as *const std::ffi::c_char, text.len());
        with_call(move |call| call.borrow_mut().call_error = Some(text));
        ffi::lua_error(l)
    }
}

/// `redis.setresp(2|3)`: the protocol `redis.call` replies in, and how the script's booleans
/// are returned (see `lua_to_resp`).
unsafe extern "C-unwind" fn setresp_entry(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; no Rust value is alive when the error unwinds.
    unsafe {
        if ffi::lua_gettop(l) != 1 {
            return raise_library_error(l, b"ERR redis.setresp() requires one argument.".to_vec());
        }
        let v = ffi::lua_tonumber(l, 1);
        if v != 2.0 && v != 3.0 {
            return raise_library_error(l, b"ERR RESP version must be 2 or 3.".to_vec());
        }
        with_call(|call| call.borrow_mut().resp3 = v == 3.0);
        0
    }
}

/// Runs the command in the arguments for the running script (see `CURRENT_CALL`) and pushes
/// its reply. Errors are `{err = text}` tables, raised (`redis.call`, and argument errors)
/// or returned (`redis.pcall`), as Redis 7 does.
///
/// # Safety
/// `l` is a valid state, inside a Lua call. Every Rust value is dropped before a Lua error
/// can unwind.
unsafe fn redis_call(l: *mut ffi::lua_State, protected: bool) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        let reply: Result<Vec<u8>, String> = {
            let n = ffi::lua_gettop(l);
            let mut argv: Vec<Vec<u8>> = Vec::with_capacity(n.max(0) as usize);
            let mut bad = false;
            for i in 1..=n {
                match ffi::lua_type(l, i) {
                    ffi::LUA_TSTRING => {
                        let mut len = 0usize;
                        let p = ffi::lua_tolstring(l, i, &mut len);
                        argv.push(std::slice::from_raw_parts(p as *const u8, len).to_vec());
                    }
                    ffi::LUA_TNUMBER => argv.push(lua_number_text(ffi::lua_tonumber(l, i)).into_bytes()),
                    _ => {
                        bad = true;
                        break;
                    }
                }
            }
            ffi::lua_settop(l, 0);
            if bad {
                Err("ERR Lua redis lib command arguments must be strings or integers".into())
            } else {
                with_call(|call| run_command(&mut call.borrow_mut(), argv))
                    .unwrap_or_else(|| Err("ERR redis.call is only available while a script runs".into()))
            }
        };
        // An error reply is returned as `{err = text}` by redis.pcall and raised as the plain
        // text by redis.call.
        let error: Option<Vec<u8>> = match reply {
            Ok(bytes) if bytes.first() == Some(&b'-') && !protected => {
                let end = bytes.len().saturating_sub(2).max(1);
                Some(bytes[1..end].to_vec())
            }
            Ok(bytes) => {
                push_reply(l, &bytes, &mut 0);
                None
            }
            Err(text) if protected => {
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_pushlstring(l, text.as_ptr() as *const std::ffi::c_char, text.len());
                ffi::lua_setfield(l, -2, c"err".as_ptr());
                None
            }
            Err(text) => Some(text.into_bytes()),
        };
        match error {
            Some(text) => raise_library_error(l, text),
            None => 1,
        }
    }
}

/// The script's error handler (under `xpcall`): notes where the error was raised, and an
/// error raised with a table (`{err = ...}`) keeps its text.
fn error_handler(lua: &Lua, e: Value) -> mlua::Result<Value> {
    let origin = error_origin(lua);
    let raised_by_call = |s: &mlua::String| {
        with_call(|call| call.borrow().call_error.as_deref() == Some(&s.as_bytes()[..])).unwrap_or(false)
    };
    let noted = match &e {
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(text)) => Some(String::from_utf8_lossy(&text.as_bytes()).into_owned()),
            _ => None,
        },
        // redis.call's errors keep their text (no "ERR" is added) and the script's line.
        Value::String(s) if raised_by_call(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        _ => None,
    };
    with_call(|call| {
        let mut call = call.borrow_mut();
        if let Some(text) = noted {
            let line = origin.as_ref().map_or(0, |o| o.1);
            call.table_error = Some((text, line));
        }
        call.origin = origin.map(|(source, line)| format!("{source}:{line}"));
    });
    Ok(e)
}

/// Where an error was raised, as Redis's error handler reports it: the source and current line
/// of the function that raised it, or of its caller when that is a C function (`error`,
/// `redis.call`). The sandbox's own Lua wrappers do not count: in Redis those checks are C.
fn error_origin(lua: &Lua) -> Option<(String, i64)> {
    let mut frames = (1..64)
        .map_while(|level| lua.inspect_stack(level))
        .filter(|d| d.source().source.as_deref() != Some(crate::lua_sandbox::SANDBOX_CHUNK));
    let first = frames.next()?;
    let frame = if first.source().what == "C" { frames.next()? } else { first };
    let source = frame.source().source?.into_owned();
    Some((source, frame.curr_line() as i64))
}

/// Runs `f` with the running script's call state, if a script is running on this thread.
fn with_call<R>(f: impl FnOnce(&RefCell<Call<'_, '_>>) -> R) -> Option<R> {
    let p = CURRENT_CALL.with(std::cell::Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: `execute` stores the address of a `RefCell<Call>` that lives on its stack and
    // clears it before that value goes away; it is only read on this thread, during the
    // script's run, and the reference does not outlive this call.
    let call = unsafe { &*(p as *const RefCell<Call<'_, '_>>) };
    Some(f(call))
}

/// How a script run ended.
struct Outcome {
    /// The script's result; an error raised with a table or by SCRIPT KILL comes back as
    /// `Value::Error` holding `\0line\0text`.
    result: mlua::Result<Value>,
    /// Where the error that ended the script was raised: `source:line`.
    origin: Option<String>,
    /// The protocol the script chose with `redis.setresp` (3: true).
    resp3: bool,
}

/// Runs a compiled script against `view`; `redis.call`/`redis.pcall` reach it through
/// `CURRENT_CALL`. Returns the script's result and where an error that ended it was raised.
#[allow(clippy::too_many_arguments)]
fn execute(
    vm: &Vm,
    func: &mlua::Function,
    shared: &Shared,
    local: &mut WorkerLocal,
    view: &mut View<'_>,
    db: usize,
    now: i64,
    read_only: bool,
) -> Outcome {
    KILL.store(false, Ordering::Release);
    WROTE.store(false, Ordering::Release);
    // The command's own clock reading (unix ms) is when the script starts.
    RUNNING_SINCE.store(now.max(1), Ordering::Release);
    // The hook was armed when the interpreter was made; only a stop tightens it.
    if TIGHTENED.with(|t| t.replace(false)) {
        if let Err(e) = arm_stop_hook(&vm.lua) {
            RUNNING_SINCE.store(0, Ordering::Release);
            return Outcome { result: Err(e), origin: None, resp3: false };
        }
    }
    let call = RefCell::new(Call {
        shared,
        local,
        view,
        db,
        now,
        resp3: false,
        read_only,
        call_error: None,
        table_error: None,
        origin: None,
    });
    CURRENT_CALL.with(|c| c.set(&call as *const RefCell<Call<'_, '_>> as *const ()));
    let outcome = (|| -> mlua::Result<mlua::Result<Value>> {
        let mut results = vm.xpcall.call::<MultiValue>((func.clone(), vm.handler.clone()))?.into_iter();
        let ok = matches!(results.next(), Some(Value::Boolean(true)));
        let value = results.next().unwrap_or(Value::Nil);
        let table_error = call.borrow_mut().table_error.take();
        let result = match (ok, table_error) {
            (true, _) => Ok(value),
            (false, Some((text, line))) => {
                Ok(Value::Error(Box::new(mlua::Error::RuntimeError(format!("\u{0}{line}\u{0}{text}")))))
            }
            // Stopped by SCRIPT KILL (`stop_hook`), maybe re-raised by `coroutine.wrap` with
            // a position in front: the error handler noted where it was raised.
            (false, None) if KILL.load(Ordering::Acquire) => {
                Ok(Value::Error(Box::new(mlua::Error::RuntimeError(format!("\u{0}0\u{0}{KILLED}")))))
            }
            (false, None) => match &value {
                Value::Error(e) => Err(e.as_ref().clone()),
                other => Err(mlua::Error::RuntimeError(other.to_string().unwrap_or_default())),
            },
        };
        Ok(result)
    })();
    CURRENT_CALL.with(|c| c.set(std::ptr::null()));
    let Call { origin, resp3, .. } = call.into_inner();
    RUNNING_SINCE.store(0, Ordering::Release);
    if vm.lua.used_memory() > LUA_MEMORY_LIMIT / 2 {
        let _ = vm.lua.gc_collect();
    }
    Outcome { result: outcome.and_then(|r| r), origin, resp3 }
}

/// A function of no arguments that calls a library function with the keys and the arguments
/// (FCALL's calling convention), for `execute`.
fn bind_call(lua: &Lua, callback: mlua::Function, keys: &[&[u8]], args: &[&[u8]]) -> mlua::Result<mlua::Function> {
    let to_table = |items: &[&[u8]]| -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, a) in items.iter().enumerate() {
            t.raw_set(i + 1, lua.create_string(a)?)?;
        }
        Ok(t)
    };
    let binder: mlua::Function = match lua.named_registry_value::<Option<mlua::Function>>(BINDER).ok().flatten() {
        Some(b) => b,
        None => {
            let b: mlua::Function = lua
                .load("local cb, keys, args = ... return function() return cb(keys, args) end")
                .set_name(crate::lua_sandbox::SANDBOX_CHUNK)
                .into_function()?;
            lua.set_named_registry_value(BINDER, b.clone())?;
            b
        }
    };
    binder.call((callback, to_table(keys)?, to_table(args)?))
}

/// The registry name of `bind_call`'s helper.
const BINDER: &str = "redoubt.fcall_binder";

/// Sets the globals `KEYS` and `ARGV` a script reads.
fn set_keys_and_args(lua: &Lua, keys: &[&[u8]], args: &[&[u8]]) -> mlua::Result<()> {
    // One protected call for both tables (mlua's table and string API protects every step).
    // SAFETY: exec_raw runs the closure in protected mode on the main state; it holds no Rust
    // value that needs dropping, every push is balanced by a rawseti or rawset, and at most
    // three slots are used at a time (exec_raw checks for them).
    unsafe {
        lua.exec_raw::<()>((), |l| {
            for (name, items) in [(c"KEYS", keys), (c"ARGV", args)] {
                ffi::lua_pushstring(l, name.as_ptr());
                ffi::lua_createtable(l, c_int::try_from(items.len()).unwrap_or(c_int::MAX), 0);
                for (i, item) in items.iter().enumerate() {
                    ffi::lua_pushlstring(l, item.as_ptr().cast(), item.len());
                    ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
                }
                ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
            }
        })
    }
}

/// The heap limit of a detached run (see `run_detached`).
const DETACHED_MEMORY_LIMIT: usize = 64 << 20;

thread_local! {
    /// The largest result a library written in Rust may build: the interpreter's memory limit.
    static OUTPUT_LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(LUA_MEMORY_LIMIT) };
}

/// Lua's own text for an allocation that failed, which the Rust libraries raise too.
const OUT_OF_MEMORY: &str = "not enough memory";

/// Whether a library written in Rust (cjson.encode, cmsgpack.pack) may go on building a
/// result that has `len` bytes so far; if not, the error to raise. They build it outside
/// Lua's heap, and a table that holds another many times, which holds another..., encodes
/// to an exponential size: past the memory limit, where the result could not become a Lua
/// string anyway, they fail with "not enough memory". And as the count hook cannot stop C
/// code, they stop here when SCRIPT KILL (or a shutdown) asks.
pub(crate) fn library_may_grow(len: usize) -> Result<(), &'static str> {
    if KILL.load(Ordering::Acquire) {
        return Err(KILLED);
    }
    if len > OUTPUT_LIMIT.with(std::cell::Cell::get) {
        return Err(OUT_OF_MEMORY);
    }
    Ok(())
}

/// Makes room for `more` bytes at the end of a library's result, as `library_may_grow`
/// allows: a result that would pass the memory limit, or an allocation that fails, is the
/// "not enough memory" error rather than an abort of the server.
pub(crate) fn library_reserve(out: &mut Vec<u8>, more: usize) -> Result<(), &'static str> {
    library_may_grow(out.len().saturating_add(more))?;
    out.try_reserve(more).map_err(|_| OUT_OF_MEMORY)
}

/// Whether `msg` is one of `library_may_grow`'s refusals (raised without a position).
pub(crate) fn is_library_stop(msg: &str) -> bool {
    msg == KILLED || msg == OUT_OF_MEMORY
}

/// Runs a script body once, as EVAL would, in a fresh sandboxed interpreter with `keys` and
/// `args` but no keyspace (`redis.call` fails as it does outside a script). For fuzzing and
/// testing the sandbox; the server does not use it. The run is bounded: it is stopped as by
/// SCRIPT KILL after about `max_instructions` Lua instructions, and its heap is capped at
/// 64 MiB. Returns the script's RESP2 reply, or the error's text.
pub fn run_detached(body: &[u8], keys: &[&[u8]], args: &[&[u8]], max_instructions: u64) -> Result<Vec<u8>, String> {
    let lua = new_vm().map_err(|e| error_message(&e))?;
    let prepared = (|| -> mlua::Result<(mlua::Function, mlua::Function, mlua::Function)> {
        lua.set_memory_limit(DETACHED_MEMORY_LIMIT)?;
        set_keys_and_args(&lua, keys, args)?;
        let func = compile(&lua, body)?;
        Ok((lua.globals().raw_get("xpcall")?, func, lua.create_function(error_handler)?))
    })();
    let (xpcall, func, handler) = prepared.map_err(|e| error_message(&e))?;
    BUDGET.with(|b| b.set(max_instructions / STOP_CHECK_EVERY as u64 + 1));
    OUTPUT_LIMIT.with(|o| o.set(DETACHED_MEMORY_LIMIT));
    let ran = xpcall.call::<MultiValue>((func, handler));
    OUTPUT_LIMIT.with(|o| o.set(LUA_MEMORY_LIMIT));
    let stopped = BUDGET.with(|b| b.replace(u64::MAX)) == 0;
    let mut results = ran.map_err(|e| error_message(&e))?.into_iter();
    let ok = matches!(results.next(), Some(Value::Boolean(true)));
    let value = results.next().unwrap_or(Value::Nil);
    if !ok {
        return Err(match value {
            _ if stopped => KILLED.to_string(),
            Value::Error(e) => error_message(&e),
            Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
            other => other.to_string().unwrap_or_default(),
        });
    }
    let mut out = ReplyBuf::new(resp::Protocol::Resp2);
    lua_to_resp(&value, &mut out, 0, false);
    Ok(out.buf)
}

/// Compiles (once per worker) and runs the script `sha` with `keys` and `args`, writing the
/// reply to `s.out`.
/// What a script run executes.
pub(crate) enum Target<'b> {
    /// An EVAL body, compiled once per worker and named in errors by its SHA1.
    Script { sha: &'b str, body: &'b [u8] },
    /// A library function (FCALL), called with the keys and the arguments as two tables.
    Function { name: &'b str },
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run_script(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    target: Target<'_>,
    keys: &[&[u8]],
    args: &[&[u8]],
    read_only: bool,
    held: Option<&mut View<'_>>,
    now: i64,
) -> CmdResult {
    VM.with(|vm| {
        let mut vm = vm.borrow_mut();
        if vm.is_none() {
            let started = new_vm().and_then(|lua| {
                let xpcall: mlua::Function = lua.globals().raw_get("xpcall")?;
                let handler = lua.create_function(error_handler)?;
                Ok(Vm { lua, compiled: HashMap::new(), xpcall, handler, flushes: 0 })
            });
            *vm = Some(started.map_err(|e| CmdError::new(format!("ERR Lua interpreter failed to start: {e}")))?);
        }
        let vm = vm.as_mut().expect("created above");
        let flushes = shared.scripts.flushes.load(Ordering::Acquire);
        if vm.flushes != flushes {
            vm.compiled.clear();
            vm.flushes = flushes;
        }
        let (sha, func) = match target {
            Target::Script { sha, body } => {
                let func = match vm.compiled.get(sha) {
                    Some(f) => f.clone(),
                    None => {
                        let f = compile(&vm.lua, body).map_err(|e| {
                            CmdError::new(format!("ERR Error compiling script (new function): {}", error_message(&e)))
                        })?;
                        vm.compiled.insert(sha.to_string(), f.clone());
                        f
                    }
                };
                set_keys_and_args(&vm.lua, keys, args).map_err(|e| CmdError::new(format!("ERR {e}")))?;
                (sha, func)
            }
            Target::Function { name } => {
                let callback = crate::lua_functions::callback(shared, &vm.lua, name)?;
                (name, bind_call(&vm.lua, callback, keys, args).map_err(|e| CmdError::new(format!("ERR {e}")))?)
            }
        };
        // The script's effects go to the append-only log together, under its locks.
        crate::aof::begin(local);
        let Outcome { result, origin, resp3 } = match held {
            Some(view) => {
                let outcome = execute(vm, &func, shared, local, view, s.db, now, read_only);
                crate::aof::end(shared, local);
                outcome
            }
            None => {
                // Another script may be running: wait for it, but not past the busy limit.
                let threshold = local.settings.busy_reply_threshold_ms;
                let give_up = || Scripts::over_threshold(threshold);
                let own = if Scripts::running() {
                    shared.keyspace.lock_patiently(None, &give_up)
                } else {
                    Some(shared.keyspace.lock_all())
                };
                let Some(mut own) = own else {
                    crate::aof::end(shared, local);
                    return Err(CmdError::fixed(BUSY));
                };
                let outcome = execute(vm, &func, shared, local, &mut own, s.db, now, read_only);
                crate::aof::end(shared, local);
                outcome
            }
        };
        match result {
            // An error raised with a table: its text as the error, with the script suffix.
            Ok(Value::Error(e)) => {
                let raw = error_message(&e);
                let mut parts = raw.splitn(3, '\u{0}').skip(1);
                let line = parts.next().unwrap_or("0");
                let text = parts.next().unwrap_or("");
                let place = origin.unwrap_or_else(|| format!("@user_script:{line}"));
                Err(CmdError::new(format!("{text} script: {sha}, on {place}.")))
            }
            Ok(v) => {
                lua_to_resp(&v, &mut s.out, 0, resp3);
                Ok(())
            }
            Err(e) => {
                let msg = error_message(&e);
                let place = origin.unwrap_or_else(|| format!("@user_script:{}", error_line(&msg)));
                let text = format!("ERR {msg} script: {sha}, on {place}.");
                Err(CmdError::new(text))
            }
        }
    })
}

/// Parses `numkeys key... arg...` at `argv[2]`: (keys, args).
type KeysAndArgs<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

pub(crate) fn split_keys<'a>(argv: &[&'a [u8]]) -> CmdResult<KeysAndArgs<'a>> {
    let n = commands::args::int(argv[2])?;
    if n < 0 {
        return Err(CmdError::fixed("ERR Number of keys can't be negative"));
    }
    let n = n as usize;
    if n > argv.len() - 3 {
        return Err(CmdError::fixed("ERR Number of keys can't be greater than number of args"));
    }
    Ok((argv[3..3 + n].to_vec(), argv[3 + n..].to_vec()))
}

/// EVAL / EVAL_RO script numkeys key... arg...
pub fn eval(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    argv: &[&[u8]],
    read_only: bool,
    held: Option<&mut View<'_>>,
    now: i64,
) -> CmdResult {
    let (keys, args) = split_keys(argv)?;
    let sha = shared.scripts.add(argv[1]);
    let target = Target::Script { sha: &sha, body: argv[1] };
    run_script(shared, local, s, target, &keys, &args, read_only, held, now)
}

/// EVALSHA / EVALSHA_RO sha numkeys key... arg...
pub fn evalsha(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    argv: &[&[u8]],
    read_only: bool,
    held: Option<&mut View<'_>>,
    now: i64,
) -> CmdResult {
    let (keys, args) = split_keys(argv)?;
    let sha = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
    let Some(body) = shared.scripts.get(&sha) else {
        return Err(CmdError::fixed("NOSCRIPT No matching script. Please use EVAL."));
    };
    let target = Target::Script { sha: &sha, body: &body };
    run_script(shared, local, s, target, &keys, &args, read_only, held, now)
}

/// SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP
pub fn script(shared: &Shared, s: &mut Session, sub: &str, argv: &[&[u8]]) -> CmdResult {
    match sub {
        "load" => {
            let sha = shared.scripts.add(argv[2]);
            // Compile errors are reported at load time, as Redis does.
            let compiled = refuse_bytecode(argv[2])
                .and_then(|_| Lua::new().load(argv[2]).set_name("@user_script").into_function());
            if let Err(e) = compiled {
                shared.scripts.bodies.lock().remove(&sha);
                return Err(CmdError::new(format!("ERR Error compiling script (new function): {}", error_message(&e))));
            }
            s.out.bulk(sha.as_bytes());
        }
        "exists" => {
            s.out.array(argv.len() - 2);
            for a in &argv[2..] {
                let sha = String::from_utf8_lossy(a).to_ascii_lowercase();
                s.out.int(shared.scripts.get(&sha).is_some() as i64);
            }
        }
        "flush" => {
            match argv.get(2) {
                None => {}
                Some(m) if commands::args::is(m, "async") || commands::args::is(m, "sync") => {}
                Some(_) => return Err(CmdError::fixed("ERR SCRIPT FLUSH only support SYNC|ASYNC option")),
            }
            shared.scripts.bodies.lock().clear();
            shared.scripts.flushes.fetch_add(1, Ordering::AcqRel);
            s.out.ok();
        }
        "kill" => {
            if RUNNING_SINCE.load(Ordering::Acquire) == 0 {
                return Err(CmdError::fixed("NOTBUSY No scripts in execution right now."));
            }
            if WROTE.load(Ordering::Acquire) {
                return Err(CmdError::fixed("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."));
            }
            KILL.store(true, Ordering::Release);
            s.out.ok();
        }
        _ => {
            const LINES: &[&str] = &[
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Prints this help.",
            ];
            s.out.array(LINES.len());
            LINES.iter().for_each(|l| s.out.simple(l));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_passed_as_redis_formats_them() {
        assert_eq!(lua_number_text(3.0), "3");
        assert_eq!(lua_number_text(-12.0), "-12");
        assert_eq!(lua_number_text(0.5), "0.5");
        assert_eq!(lua_number_text(0.1), "0.10000000000000001");
        assert_eq!(lua_number_text(2f64.powi(53)), "9007199254740992");
        assert_eq!(lua_number_text(1e16), "10000000000000000");
        assert_eq!(lua_number_text(1e20), "1e+20");
        assert_eq!(lua_number_text(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(lua_number_text(0.0001), "0.0001");
        assert_eq!(lua_number_text(-0.0), "-0");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn detached_runs_are_sandboxed_and_bounded() {
        let run = |body: &str| run_detached(body.as_bytes(), &[b"k"], &[b"a", b"b"], 1_000_000);
        assert_eq!(run("return {KEYS[1], #ARGV, ARGV[2]}").unwrap(), b"*3\r\n$1\r\nk\r\n:2\r\n$1\r\nb\r\n");
        assert_eq!(run("return redis.status_reply('FINE')").unwrap(), b"+FINE\r\n");
        assert!(run("return redis.call('get', 'k')").unwrap_err().contains("only available while a script runs"));
        assert!(run("return (").unwrap_err().starts_with("user_script:1:"));
        assert!(run_detached(b"\x1bLua", &[], &[], 1000).unwrap_err().contains("char(27)"));
        // Endless loops stop, even when the loop catches the error or runs in a coroutine.
        for body in [
            "while true do end",
            "while true do pcall(function() while true do end end) end",
            "coroutine.wrap(function() while true do end end)()",
            "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        ] {
            assert_eq!(run(body).unwrap_err(), KILLED, "{body}");
        }
        assert!(run("return #string.rep('x', 2^30)").unwrap_err().contains("not enough memory"));
        // A library's result that does not fit is an error too (and the library's buffer is
        // freed: push_owned).
        assert!(run("return #cjson.encode(string.rep('\\1', 2^23))").unwrap_err().contains("not enough memory"));
        assert_eq!(run("return #cjson.encode(string.rep('\\1', 2^20))").unwrap(), b":6291458\r\n");
        // A table that holds another many times, which holds another...: an exponential size.
        for lib in ["cjson.encode", "cmsgpack.pack"] {
            let body = format!(
                "local s = ('x'):rep(2^16) local t = {{s}} for i = 1, 40 do t = {{t, t, s}} end return {lib}(t)"
            );
            assert!(run(&body).err().is_some_and(|e| e.contains("not enough memory")), "{lib}");
        }
        assert!(run("return unpack({}, -2^31, 2^31 - 1)").unwrap_err().contains("too many results to unpack"));
        // The budget does not outlive the run.
        assert_eq!(BUDGET.with(std::cell::Cell::get), u64::MAX);
    }

    #[test]
    fn the_sandbox_has_no_escape_hatches() {
        let lua = new_vm().unwrap();
        let run = |code: &str| compile(&lua, code.as_bytes()).and_then(|f| f.call::<Value>(()));
        for code in [
            "return os",
            "return io",
            "return loadfile",
            "return dofile",
            "return require",
            "x = 1",
            "tostring = nil",
            "_G.tostring = nil",
            "rawset(_G, 'x', 1)",
            "string.format = nil",
            "rawset(string, 'format', nil)",
            "setmetatable(_G, {})",
            "getmetatable('').__index = nil",
            "return setfenv",
            "return loadstring(string.dump(function() end))()",
            "local d = string.dump(function() end) return assert(load(function() local p = d d = nil return p end))()",
        ] {
            assert!(run(code).is_err(), "{code} should fail");
        }
        assert!(compile(&lua, b"\x1bLuaQ").is_err(), "bytecode is refused");
        assert_eq!(run("return ('x'):upper()").unwrap().to_string().unwrap(), "X");
        assert_eq!(
            lua.load("return redis.sha1hex('')").eval::<String>().unwrap(),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
    }
}
