//! Redis 7's functions: FUNCTION LOAD/LIST/DELETE/FLUSH/STATS/KILL/DUMP/RESTORE/HELP and
//! FCALL/FCALL_RO.
//!
//! A library is Lua code that starts with a `#!lua name=<library>` line and, when run,
//! registers functions with `redis.register_function`. The registry of libraries is shared by
//! the workers; FUNCTION LOAD runs the code once in a fresh sandboxed interpreter to validate
//! it and learn its functions. Each worker's interpreter loads the libraries itself the first
//! time it runs FCALL after the registry changed (a generation number says when).
//!
//! While a library loads, its code sees only `redis.register_function`, `redis.log` and the
//! `redis.LOG_*` constants (as in Redis, where even `string` is out of reach then); afterwards
//! its functions see the same globals as scripts. A function is called with two tables, the
//! keys and the arguments, and its errors name it (`script: <function>, on @user_function:N.`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use commands::args::is;
use commands::{CmdError, CmdResult};
use mlua::{Lua, MultiValue, Table, Value};
use parking_lot::RwLock;
use store::View;

use crate::dispatch::WorkerLocal;
use crate::session::Session;
use crate::Shared;

/// Function flags, in the order FUNCTION LIST shows them.
const FLAG_NAMES: [&str; 5] = ["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];
const NO_WRITES: u8 = 1;
const ALLOW_OOM: u8 = 2;

/// The chunk name library code runs under (Redis's).
const CHUNK: &str = "@user_function";
/// The instructions a library's loading may run before it is stopped (Redis stops it after
/// 500 ms; an instruction budget keeps validation deterministic).
const LOAD_BUDGET: u32 = 200_000_000;

/// One registered function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionMeta {
    pub description: Option<Vec<u8>>,
    pub flags: u8,
}

/// A loaded library.
#[derive(Clone, Debug)]
pub struct Library {
    pub code: Vec<u8>,
    pub functions: BTreeMap<String, FunctionMeta>,
}

#[derive(Default)]
struct Registry {
    /// Bumped on every change, so workers know to reload.
    gen: u64,
    libraries: BTreeMap<String, Library>,
    /// Function name → its library.
    owners: HashMap<String, String>,
}

impl Registry {
    fn insert(&mut self, name: String, lib: Library) {
        for f in lib.functions.keys() {
            self.owners.insert(f.clone(), name.clone());
        }
        self.libraries.insert(name, lib);
        self.gen += 1;
    }

    fn remove(&mut self, name: &str) -> Option<Library> {
        let lib = self.libraries.remove(name)?;
        for f in lib.functions.keys() {
            self.owners.remove(f);
        }
        self.gen += 1;
        Some(lib)
    }

    fn function(&self, name: &str) -> Option<&FunctionMeta> {
        self.libraries.get(self.owners.get(name)?)?.functions.get(name)
    }
}

/// The server's libraries.
#[derive(Default)]
pub struct Functions {
    registry: RwLock<Registry>,
}

impl Functions {
    /// Compiles and installs a library (FUNCTION LOAD, or a snapshot's library); returns its
    /// name. Without `replace`, a library of that name must not exist.
    pub fn install(&self, code: &[u8], replace: bool) -> CmdResult<String> {
        let (name, at) = parse_shebang(code)?;
        let exists = CmdError::new(format!("ERR Library '{name}' already exists"));
        if !replace && self.registry.read().libraries.contains_key(&name) {
            return Err(exists);
        }
        let lib = validate(code, at)?;
        let mut reg = self.registry.write();
        if reg.libraries.contains_key(&name) && !replace {
            return Err(exists);
        }
        for f in lib.functions.keys() {
            if reg.owners.get(f).is_some_and(|owner| *owner != name) {
                return Err(CmdError::new(format!("ERR Function {f} already exists")));
            }
        }
        reg.remove(&name);
        reg.insert(name.clone(), lib);
        Ok(name)
    }

    /// Every library's code, in name order (what a snapshot saves).
    pub fn codes(&self) -> Vec<Vec<u8>> {
        self.registry.read().libraries.values().map(|l| l.code.clone()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and loading

/// Redis's rule for library and function names.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

const BAD_NAME: &str =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// The library name from the `#!lua name=...` line, and where the code after it starts (at
/// the line's newline, so line numbers stay those of the whole text).
fn parse_shebang(code: &[u8]) -> CmdResult<(String, usize)> {
    if !code.starts_with(b"#!") {
        return Err(CmdError::fixed("ERR Missing library metadata"));
    }
    let invalid = CmdError::fixed("ERR Invalid library metadata");
    let end = code.iter().position(|&b| b == b'\n').ok_or(invalid.clone())?;
    let line = &code[2..end];
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let engine = parts.next().ok_or(invalid.clone())?;
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(CmdError::new(format!("ERR Engine '{}' not found", String::from_utf8_lossy(engine))));
    }
    let mut name = None;
    for p in parts {
        match p.strip_prefix(b"name=") {
            Some(n) if name.is_none() => name = Some(n),
            Some(_) => {
                return Err(CmdError::fixed("ERR Invalid metadata value, name argument was given multiple times"))
            }
            None => {
                return Err(CmdError::new(format!("ERR Invalid metadata value given: {}", String::from_utf8_lossy(p))))
            }
        }
    }
    let name = name.ok_or(CmdError::fixed("ERR Library name was not given"))?;
    if !valid_name(name) {
        return Err(CmdError::new(format!("ERR {BAD_NAME}")));
    }
    Ok((String::from_utf8_lossy(name).into_owned(), end))
}

/// A function registration collected while a library loads.
type Registered = (String, mlua::Function, FunctionMeta);

/// Parses `redis.register_function`'s arguments: (name, callback, flags, description).
fn registration(args: MultiValue) -> Result<Registered, String> {
    // Names and descriptions may be numbers, which Lua turns into strings (`lua_tostring`).
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Number(n) => Some(crate::lua::lua_tostring_number(*n).into_bytes()),
        _ => None,
    };
    let args: Vec<Value> = args.into_iter().collect();
    let (name, callback, flags, description) = match args.as_slice() {
        [Value::Table(t)] => {
            let (mut name, mut callback, mut flags, mut description) = (None, None, 0u8, None);
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                let key = match &k {
                    Value::String(s) => s.to_str().map(|s| s.to_string()).unwrap_or_default(),
                    _ => String::new(),
                };
                match (key.as_str(), v) {
                    ("function_name", v) => {
                        name = Some(text(&v).ok_or(
                            "function_name argument given to redis.register_function must be a string",
                        )?)
                    }
                    ("callback", Value::Function(f)) => callback = Some(f),
                    ("callback", _) => {
                        return Err("callback argument given to redis.register_function must be a function".into())
                    }
                    ("description", v) => {
                        description = Some(text(&v).ok_or(
                            "description argument given to redis.register_function must be a string",
                        )?)
                    }
                    ("flags", Value::Table(list)) => {
                        for v in list.sequence_values::<Value>() {
                            let flag = match v {
                                Ok(Value::String(s)) => s.as_bytes().to_vec(),
                                _ => return Err("unknown flag given".into()),
                            };
                            let i = FLAG_NAMES
                                .iter()
                                .position(|f| f.as_bytes() == flag.as_slice())
                                .ok_or("unknown flag given")?;
                            flags |= 1 << i;
                        }
                    }
                    ("flags", _) => {
                        return Err("flags argument to redis.register_function must be a table representing function flags".into())
                    }
                    _ => return Err("unknown argument given to redis.register_function".into()),
                }
            }
            let name = name.ok_or("redis.register_function must get a function name argument")?;
            let callback = callback.ok_or("redis.register_function must get a callback argument")?;
            (name, callback, flags, description)
        }
        [_] => {
            return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into())
        }
        [name, callback] => {
            let name = text(name).ok_or("first argument to redis.register_function must be a string")?;
            let Value::Function(callback) = callback else {
                return Err("second argument to redis.register_function must be a function".into());
            };
            (name, callback.clone(), 0, None)
        }
        _ => return Err("wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    Ok((String::from_utf8_lossy(&name).into_owned(), callback, FunctionMeta { description, flags }))
}

/// Runs a library's code in `lua` and returns the functions it registered. Errors are FUNCTION
/// LOAD's replies.
fn load_into(lua: &Lua, code: &[u8], body_at: usize) -> CmdResult<Vec<Registered>> {
    let failed = |what: &str, e: &mlua::Error| {
        let prefix = if what.starts_with("Error registering") { "ERR " } else { "" };
        CmdError::new(format!("ERR {what}: {prefix}{}", crate::lua::error_text(e)))
    };
    let collected: Rc<RefCell<Vec<Registered>>> = Rc::default();
    let sink = collected.clone();
    let register = lua
        .create_function(move |_, args: MultiValue| {
            let (name, callback, meta) = registration(args).map_err(mlua::Error::RuntimeError)?;
            let mut sink = sink.borrow_mut();
            if sink.iter().any(|(n, _, _)| *n == name) {
                return Err(mlua::Error::RuntimeError("Function already exists in the library".into()));
            }
            sink.push((name, callback, meta));
            Ok(())
        })
        .map_err(|e| failed("Error registering functions", &e))?;
    // The library's environment: while loading, only the loading API; then the full globals.
    let make_env: mlua::Function = lua
        .load(
            r#"
        local register, real_G = ...
        local function missing(_, k)
          error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
        end
        local function deny() error("Attempt to modify a readonly table", 2) end
        local redis = real_G.redis
        local api = {register_function = register, log = redis.log}
        for _, level in ipairs({"LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"}) do
          api[level] = redis[level]
        end
        setmetatable(api, {__index = missing, __newindex = deny, __metatable = false})
        local loading = setmetatable({redis = api}, {__index = missing, __newindex = deny, __metatable = false})
        local meta = {__index = loading, __newindex = deny, __metatable = false}
        return setmetatable({}, meta), function() meta.__index = real_G end
        "#,
        )
        .set_name(crate::lua_sandbox::SANDBOX_CHUNK)
        .into_function()
        .map_err(|e| failed("Error registering functions", &e))?;
    let real_g = lua.globals();
    let (env, finish): (Table, mlua::Function) =
        make_env.call((register, real_g)).map_err(|e| failed("Error registering functions", &e))?;
    let chunk = lua
        .load(&code[body_at..])
        .set_name(CHUNK)
        .set_environment(env)
        .into_function()
        .map_err(|e| failed("Error compiling function", &e))?;
    crate::lua::run_bounded(lua, &chunk, LOAD_BUDGET).map_err(|e| {
        if crate::lua::error_text(&e).starts_with("ERR Script killed") {
            CmdError::fixed("ERR Error registering functions: ERR FUNCTION LOAD timeout")
        } else {
            failed("Error registering functions", &e)
        }
    })?;
    finish.call::<()>(()).map_err(|e| failed("Error registering functions", &e))?;
    let registered = std::mem::take(&mut *collected.borrow_mut());
    if registered.is_empty() {
        return Err(CmdError::fixed("ERR No functions registered"));
    }
    Ok(registered)
}

// ---------------------------------------------------------------------------------------------
// The workers' interpreters

/// The registry name of a worker interpreter's loaded functions (name → callback) and the
/// registry generation they were loaded at.
const LOADED: &str = "redoubt.functions";
const LOADED_GEN: &str = "redoubt.functions_gen";

/// The callback of function `name` in the worker's interpreter `lua`, loading the libraries
/// there first if the registry changed since.
pub(crate) fn callback(shared: &Shared, lua: &Lua, name: &str) -> CmdResult<mlua::Function> {
    let reg = shared.functions.registry.read();
    let current = lua.named_registry_value::<Option<u64>>(LOADED_GEN).ok().flatten();
    if current != Some(reg.gen) {
        let table = lua.create_table().map_err(|e| CmdError::new(format!("ERR {e}")))?;
        for lib in reg.libraries.values() {
            let (_, at) = parse_shebang(&lib.code)?;
            for (fname, cb, _) in load_into(lua, &lib.code, at)? {
                table.raw_set(fname, cb).map_err(|e| CmdError::new(format!("ERR {e}")))?;
            }
        }
        lua.set_named_registry_value(LOADED, table).map_err(|e| CmdError::new(format!("ERR {e}")))?;
        lua.set_named_registry_value(LOADED_GEN, reg.gen).map_err(|e| CmdError::new(format!("ERR {e}")))?;
    }
    let table: Table = lua.named_registry_value(LOADED).map_err(|e| CmdError::new(format!("ERR {e}")))?;
    table.raw_get::<Option<mlua::Function>>(name).ok().flatten().ok_or(CmdError::fixed("ERR Function not found"))
}

// ---------------------------------------------------------------------------------------------
// FCALL

/// FCALL / FCALL_RO function numkeys key... arg...
pub fn fcall(
    shared: &Shared,
    local: &mut WorkerLocal,
    s: &mut Session,
    argv: &[&[u8]],
    ro: bool,
    held: Option<&mut View<'_>>,
    now: i64,
) -> CmdResult {
    let name = String::from_utf8_lossy(argv[1]).into_owned();
    let flags = shared.functions.registry.read().function(&name).map(|f| f.flags);
    let flags = flags.ok_or(CmdError::fixed("ERR Function not found"))?;
    let numkeys = resp::decode::parse_i64(argv[2]).ok_or(CmdError::fixed("ERR Bad number of keys provided"))?;
    if numkeys > argv.len() as i64 - 3 {
        return Err(CmdError::fixed("ERR Number of keys can't be greater than number of args"));
    }
    if numkeys < 0 {
        return Err(CmdError::fixed("ERR Number of keys can't be negative"));
    }
    let (keys, args) = argv[3..].split_at(numkeys as usize);
    if ro && flags & NO_WRITES == 0 {
        return Err(CmdError::fixed("ERR Can not execute a script with write flag using *_ro command."));
    }
    let read_only = ro || flags & NO_WRITES != 0;
    // Functions declare their flags, so as in Redis the memory state is judged before they
    // run: `allow-oom` may write anyway, `no-writes` cannot write, the rest are refused.
    if flags & ALLOW_OOM != 0 {
        local.script_oom = None;
    } else if !read_only {
        if let Some(oom) = local.script_oom.take() {
            if let Some(i) = oom.namespace {
                crate::namespaces::count_refusal(i, held.is_some());
            }
            return Err(CmdError::new(oom.text));
        }
    }
    let target = crate::lua::Target::Function { name: &name };
    crate::lua::run_script(shared, local, s, target, keys, args, read_only, held, now)
}

// ---------------------------------------------------------------------------------------------
// FUNCTION

/// FUNCTION LOAD [REPLACE] code → the library name.
fn load(shared: &Shared, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let mut replace = false;
    let mut i = 2;
    while i < argv.len() - 1 {
        if is(argv[i], "replace") {
            replace = true;
        } else {
            return Err(CmdError::new(format!("ERR Unknown option given: {}", String::from_utf8_lossy(argv[i]))));
        }
        i += 1;
    }
    let name = shared.functions.install(argv[argv.len() - 1], replace)?;
    s.out.bulk(name.as_bytes());
    Ok(())
}

/// Runs the code in a fresh interpreter: its functions, or the error FUNCTION LOAD replies.
fn validate(code: &[u8], at: usize) -> CmdResult<Library> {
    let lua = crate::lua::new_vm().map_err(|e| CmdError::new(format!("ERR Lua interpreter failed to start: {e}")))?;
    let functions = load_into(&lua, code, at)?.into_iter().map(|(name, _, meta)| (name, meta)).collect();
    Ok(Library { code: code.to_vec(), functions })
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
fn list(shared: &Shared, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    let (mut pattern, mut with_code) = (None, false);
    let mut i = 2;
    while i < argv.len() {
        if is(argv[i], "withcode") && !with_code {
            with_code = true;
        } else if is(argv[i], "libraryname") && pattern.is_none() {
            pattern = Some(*argv.get(i + 1).ok_or(CmdError::fixed("ERR library name argument was not given"))?);
            i += 1;
        } else {
            return Err(CmdError::new(format!("ERR Unknown argument {}", String::from_utf8_lossy(argv[i]))));
        }
        i += 1;
    }
    let reg = shared.functions.registry.read();
    let shown: Vec<(&String, &Library)> = reg
        .libraries
        .iter()
        .filter(|(name, _)| pattern.is_none_or(|p| store::glob::glob_match(p, name.as_bytes(), false)))
        .collect();
    let out = &mut s.out;
    out.array(shown.len());
    for (name, lib) in shown {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for (fname, meta) in &lib.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(fname.as_bytes());
            out.bulk(b"description");
            match &meta.description {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let set: Vec<&str> =
                FLAG_NAMES.iter().enumerate().filter(|(i, _)| meta.flags & (1 << i) != 0).map(|(_, f)| *f).collect();
            out.set(set.len());
            set.iter().for_each(|f| out.simple(f));
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
    Ok(())
}

/// Reads an RDB length at `*pos`.
fn read_rdb_len(data: &[u8], pos: &mut usize) -> Option<usize> {
    let mut src = rdb::SliceSource::new(data.get(*pos..)?);
    let n = rdb::read_len(&mut src).ok()?;
    *pos += src.position();
    usize::try_from(n).ok()
}

/// The RDB version DUMP payloads carry (Redis 7.0's).
const RDB_VERSION: u16 = 10;
/// RDB_OPCODE_FUNCTION2: a library's code follows.
const OPCODE_FUNCTION: u8 = rdb::OPCODE_FUNCTION2;

/// FUNCTION DUMP: every library in Redis's payload format.
fn dump(shared: &Shared, s: &mut Session) {
    let reg = shared.functions.registry.read();
    let mut out = Vec::new();
    for lib in reg.libraries.values() {
        out.push(OPCODE_FUNCTION);
        rdb::write_len(&mut out, lib.code.len() as u64);
        out.extend_from_slice(&lib.code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = rdb::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    s.out.bulk(&out);
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
fn restore(shared: &Shared, s: &mut Session, argv: &[&[u8]]) -> CmdResult {
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy = match argv.get(3) {
        None => Policy::Append,
        Some(p) if is(p, "flush") => Policy::Flush,
        Some(p) if is(p, "append") => Policy::Append,
        Some(p) if is(p, "replace") => Policy::Replace,
        Some(_) => {
            return Err(CmdError::fixed(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ))
        }
    };
    if argv.len() > 4 {
        return Err(CmdError::fixed("ERR syntax error"));
    }
    let payload = argv[2];
    let bad = CmdError::fixed("ERR DUMP payload version or checksum are wrong");
    if payload.len() < 10 {
        return Err(bad);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    if version > RDB_VERSION || rdb::crc64(&payload[..payload.len() - 8]) != crc {
        return Err(bad);
    }
    let mut libs = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        if body[pos] != OPCODE_FUNCTION {
            return Err(CmdError::fixed("ERR given type is not a function"));
        }
        pos += 1;
        let failed = CmdError::fixed("ERR Failed loading library payload");
        let n = read_rdb_len(body, &mut pos).ok_or(failed.clone())?;
        let code = body.get(pos..pos.saturating_add(n)).ok_or(failed)?;
        pos += n;
        let (name, at) = parse_shebang(code)?;
        libs.push((name, validate(code, at)?));
    }
    let mut reg = shared.functions.registry.write();
    let mut next = Registry { gen: reg.gen, ..Registry::default() };
    if policy != Policy::Flush {
        for (name, lib) in &reg.libraries {
            next.insert(name.clone(), lib.clone());
        }
    }
    for (name, lib) in libs {
        if next.libraries.contains_key(&name) {
            if policy != Policy::Replace {
                return Err(CmdError::new(format!("ERR Library {name} already exists")));
            }
            next.remove(&name);
        }
        if let Some(f) = lib.functions.keys().find(|f| next.owners.contains_key(*f)) {
            return Err(CmdError::new(format!("ERR Function {f} already exists")));
        }
        next.insert(name, lib);
    }
    next.gen = reg.gen + 1;
    *reg = next;
    s.out.ok();
    Ok(())
}

/// FUNCTION <subcommand> ...
pub fn function(shared: &Shared, s: &mut Session, sub: &str, argv: &[&[u8]]) -> CmdResult {
    match sub {
        "load" => load(shared, s, argv)?,
        "list" => list(shared, s, argv)?,
        "delete" => {
            let name = String::from_utf8_lossy(argv[2]).into_owned();
            shared.functions.registry.write().remove(&name).ok_or(CmdError::fixed("ERR Library not found"))?;
            s.out.ok();
        }
        "flush" => {
            match argv.get(2) {
                None => {}
                Some(m) if is(m, "async") || is(m, "sync") => {}
                Some(_) => return Err(CmdError::fixed("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")),
            }
            let mut reg = shared.functions.registry.write();
            let gen = reg.gen + 1;
            *reg = Registry { gen, ..Registry::default() };
            s.out.ok();
        }
        "stats" => {
            let reg = shared.functions.registry.read();
            let out = &mut s.out;
            out.map(2);
            out.bulk(b"running_script");
            // A running function holds every shard, so a client that gets here sees none.
            out.null();
            out.bulk(b"engines");
            out.map(1);
            out.bulk(b"LUA");
            out.map(2);
            out.bulk(b"libraries_count");
            out.int(reg.libraries.len() as i64);
            out.bulk(b"functions_count");
            out.int(reg.owners.len() as i64);
        }
        "kill" => crate::lua::script(shared, s, "kill", argv)?,
        "dump" => dump(shared, s),
        "restore" => restore(shared, s, argv)?,
        _ => {
            const LINES: &[&str] = &[
                "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "LOAD [REPLACE] <FUNCTION CODE>",
                "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>",
                "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                "    Return general information on all the libraries:",
                "    * Library name",
                "    * The engine used to run the Library",
                "    * Library description",
                "    * Functions list",
                "    * Library code (if WITHCODE is given)",
                "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
                "STATS",
                "    Return information about the current function running:",
                "    * Function name",
                "    * Command used to run the function",
                "    * Duration in MS that the function is running",
                "    If no function is running, return nil",
                "    In addition, returns a list of available engines.",
                "KILL",
                "    Kill the current running function.",
                "FLUSH [ASYNC|SYNC]",
                "    Delete all the libraries.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the libraries.",
                "    * SYNC: Synchronously flush the libraries.",
                "DUMP",
                "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
                "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
                "    control how to handle existing libraries (default APPEND):",
                "    * FLUSH: delete all existing libraries.",
                "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
                "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
                "      libraries with the new libraries (notice that even on this option there is a chance of failure",
                "      in case of functions name collision with another library).",
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
    fn shebangs_parse_as_redis() {
        assert_eq!(parse_shebang(b"#!lua name=lib\ncode").unwrap(), ("lib".to_string(), 14));
        assert_eq!(parse_shebang(b"#!LUA   name=x  \n").unwrap().0, "x");
        assert!(parse_shebang(b"return 1").unwrap_err().text().contains("Missing library metadata"));
        assert!(parse_shebang(b"#!lua name=x").unwrap_err().text().contains("Invalid library metadata"));
        assert!(parse_shebang(b"#!lua name=a-b\n").unwrap_err().text().contains("Library names can only"));
        assert!(parse_shebang(b"#!foo name=x\n").unwrap_err().text().contains("Engine 'foo' not found"));
    }
}
