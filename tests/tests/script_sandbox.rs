//! The scripting sandbox against the escapes that have been CVE classes in Redis: changing
//! metatables and protected tables (CVE-2022-24735, CVE-2025-46818), huge `unpack` ranges
//! (CVE-2025-46817), bytecode through `loadstring`, `load`, EVAL and SCRIPT LOAD
//! (CVE-2015-4335), hostile input to cjson and cmsgpack (CVE-2018-11218, CVE-2021-32626,
//! CVE-2022-24834), struct with huge sizes (CVE-2018-11219, CVE-2020-14147), unbounded
//! allocation, runaway recursion, and loops that try to outlive SCRIPT KILL.
//!
//! Each scenario runs on redis-server and Redoubt and the raw replies must be identical; each
//! case also asserts what the reply is (an error with a given text, or a given value). Cases
//! Redis does not survive (it aborts when Lua runs out of memory) run on Redoubt only. After
//! each scenario both servers must still answer and the libraries later scripts see must be
//! intact.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use redoubt_tests::server::{redoubt_binary_or_panic, Kind};
use redoubt_tests::util::{poll_until, TempDir};
use redoubt_tests::{Conn, Server};

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// `s` as a RESP bulk string.
fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// What a script sees of the libraries and globals that attempts above tried to change.
const INTACT: &str = "return {string.rep('ab', 2), type(redis.call), cjson.encode({1, 'x'}), tostring(12), \
     math.floor(2.5), table.concat({'a', 'b'}, '-'), bit.band(7, 12), cmsgpack.unpack(cmsgpack.pack('m')), \
     ('s'):upper(), struct.unpack('>i2', '\\0\\7'), type(getmetatable('').__index), type(loadstring), \
     type(load), type(unpack), redis.sha1hex(''), select('#', unpack({1, 2, 3}))}";

/// INTACT's reply.
const INTACT_REPLY: &str = "*16\r\n$4\r\nabab\r\n$8\r\nfunction\r\n$7\r\n[1,\"x\"]\r\n$2\r\n12\r\n:2\r\n\
     $3\r\na-b\r\n:4\r\n$1\r\nm\r\n$1\r\nS\r\n:7\r\n$5\r\ntable\r\n$8\r\nfunction\r\n$8\r\nfunction\r\n\
     $8\r\nfunction\r\n$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n:3\r\n";

/// `EVAL body 0 args...` on `conn`: the raw reply.
fn eval(conn: &mut Conn, body: &[u8], args: &[&[u8]]) -> Vec<u8> {
    let mut argv: Vec<&[u8]> = vec![b"EVAL", body, b"0"];
    argv.extend_from_slice(args);
    conn.cmd(&argv).unwrap_or_else(|e| panic!("EVAL {}: {e}", body.escape_ascii()))
}

/// redis-server and Redoubt, each with a connection.
struct Both {
    redis: Server,
    redoubt: Server,
    r: Conn,
    d: Conn,
}

impl Both {
    fn start() -> Both {
        let redis = Server::redis();
        let redoubt = Server::redoubt();
        let r = redis.conn();
        let d = redoubt.conn();
        Both { redis, redoubt, r, d }
    }

    /// Runs `EVAL body 0 args...` on both servers; the replies must be byte-identical.
    fn eval_bytes(&mut self, body: &[u8], args: &[&[u8]]) -> String {
        let want = eval(&mut self.r, body, args);
        let got = eval(&mut self.d, body, args);
        assert_eq!(text(&got), text(&want), "EVAL {}: redoubt (left) differs from redis", body.escape_ascii());
        text(&got)
    }

    fn eval(&mut self, body: &str) -> String {
        self.eval_bytes(body.as_bytes(), &[])
    }

    /// The same error on both servers, and it mentions `wanted`.
    fn refused(&mut self, body: &str, wanted: &str) {
        let reply = self.eval(body);
        assert!(
            reply.starts_with("-ERR") && reply.contains(wanted),
            "{body}: wanted an error with {wanted:?}, got {reply:?}"
        );
    }

    /// The same reply on both servers, and it is `wanted` (RESP2).
    fn answers(&mut self, body: &str, wanted: &str) {
        assert_eq!(self.eval(body), wanted, "{body}");
    }

    /// Both servers still serve, on the old connection and a new one, and later scripts see
    /// the libraries as they were.
    fn intact(&mut self) {
        for (server, conn) in [(&self.redis, &mut self.r), (&self.redoubt, &mut self.d)] {
            assert_eq!(text(&conn.cmd(&["PING"]).unwrap()), "+PONG\r\n", "{:?}", server.kind());
            let mut fresh = server.conn();
            assert_eq!(text(&eval(&mut fresh, INTACT.as_bytes(), &[])), INTACT_REPLY, "{:?}", server.kind());
        }
    }
}

#[test]
fn protected_tables_and_metatables_cannot_be_changed() {
    let mut both = Both::start();
    const READONLY: &str = "Attempt to modify a readonly table";
    // The global table and its metatable.
    for body in [
        "setmetatable(_G, {})",
        "setmetatable(_G, nil)",
        "getmetatable(_G).__index = function() return 1 end",
        "getmetatable(_G).__newindex = nil",
        "rawset(getmetatable(_G), '__newindex', nil)",
        "rawset(_G, 'x', 1)",
        "x = 1",
        "_G.redis = {}",
        "_G = nil",
        "KEYS = {}",
        "tostring = function() return 'pwned' end",
        "_G.tostring = nil",
        "rawset(_G, 'unpack', nil)",
        "pcall = nil",
    ] {
        both.refused(body, READONLY);
    }
    // Every library table: its metatable, raw writes, and replacing a function for later
    // scripts.
    for (lib, function) in [
        ("string", "rep"),
        ("table", "concat"),
        ("math", "floor"),
        ("redis", "call"),
        ("cjson", "encode"),
        ("cmsgpack", "pack"),
        ("bit", "band"),
        ("struct", "pack"),
    ] {
        both.refused(&format!("setmetatable({lib}, {{}})"), READONLY);
        both.refused(&format!("setmetatable({lib}, nil)"), READONLY);
        both.refused(&format!("rawset({lib}, '{function}', nil)"), READONLY);
        both.refused(&format!("{lib}.{function} = function() return 'pwned' end"), READONLY);
        both.refused(&format!("{lib}.injected = 1"), READONLY);
        both.answers(&format!("return type(getmetatable({lib}))"), "$3\r\nnil\r\n");
    }
    // The string metatable, shared by every string of every script.
    for body in [
        "getmetatable('').__index = {}",
        "getmetatable('').__index.upper = nil",
        "getmetatable('').__add = function() return 1 end",
        "rawset(getmetatable(''), '__index', {})",
        "setmetatable(getmetatable(''), {})",
        "local mt = getmetatable('x') mt.__index = function() return 'pwned' end",
    ] {
        both.refused(body, READONLY);
    }
    both.answers("return type(getmetatable(getmetatable('')))", "$3\r\nnil\r\n");
    // Other basic types have no metatable to change, and nothing reaches one.
    both.answers(
        "return {type(getmetatable(1)), type(getmetatable(nil)), type(getmetatable(true)), type(getmetatable(type))}",
        "*4\r\n$3\r\nnil\r\n$3\r\nnil\r\n$3\r\nnil\r\n$3\r\nnil\r\n",
    );
    both.refused("setmetatable(1, {})", "bad argument #1 to 'setmetatable' (table expected, got number)");
    both.refused("setmetatable(type, {})", "bad argument #1 to 'setmetatable' (table expected, got function)");
    for global in
        ["debug", "newproxy", "setfenv", "getfenv", "require", "module", "dofile", "loadfile", "print", "os", "io"]
    {
        both.refused(
            &format!("return {global}"),
            &format!("Script attempted to access nonexistent global variable '{global}'"),
        );
    }
    // A script's own protected metatable stays protected.
    both.refused("setmetatable(setmetatable({}, {__metatable = 1}), {})", "cannot change a protected metatable");
    // Nothing above leaked into the scripts that follow.
    both.refused("return x", "Script attempted to access nonexistent global variable 'x'");
    both.answers(
        "return {('abc'):rep(2), type(rawget(_G, 'string')), #KEYS}",
        "*3\r\n$6\r\nabcabc\r\n$5\r\ntable\r\n:0\r\n",
    );
    both.intact();
}

#[test]
fn huge_unpack_ranges_are_an_error() {
    let mut both = Both::start();
    const TOO_MANY: &str = "too many results to unpack";
    for body in [
        "return unpack({}, 1, 1e8)",
        "return unpack({}, 1, 1e6)",
        "return select('#', unpack({1, 2, 3}, 1, 8000))",
        "local t = {} for i = 1, 1e6 do t[i] = i end return select('#', unpack(t))",
        "local t = {} t[1e8] = 1 return select('#', unpack(t, 1, 1e8))",
        // j - i + 1 overflows a C int: Lua 5.1's check was compiled away (CVE-2025-46817).
        "return unpack({}, -2^31, 2^31 - 1)",
        "return unpack({}, -2, 2^31 - 1)",
        "return unpack({}, -2^31, -2)",
        "return unpack({}, 0, 2^31 - 1)",
    ] {
        both.refused(body, TOO_MANY);
    }
    // Large ranges that fit, and ranges converted as C converts them.
    both.answers("return select('#', unpack({1, 2, 3}, 1, 7000))", ":7000\r\n");
    both.answers("return {unpack({1, 2, 3}, 2)}", "*2\r\n:2\r\n:3\r\n");
    both.answers("return select('#', unpack({}, 2^31 - 2, 2^31 - 1))", ":2\r\n");
    both.answers("return select('#', unpack({1, 2, 3}, 1e10, 1e11))", ":0\r\n");
    both.refused("return unpack({1, 2, 3}, 'x')", "bad argument #2 to 'unpack' (number expected, got string)");
    // A huge reply from redis.call converts without overflowing the Lua stack
    // (CVE-2021-32626), and unpacking it is the same error.
    both.answers(
        "for i = 1, 100000 do redis.call('rpush', 'big', i) end return #redis.call('lrange', 'big', 0, -1)",
        ":100000\r\n",
    );
    both.refused("return select('#', unpack(redis.call('lrange', 'big', 0, -1)))", TOO_MANY);
    both.answers("return select('#', unpack(redis.call('lrange', 'big', 0, 6999)))", ":7000\r\n");
    both.intact();
}

/// A Lua 5.1 bytecode chunk (`string.dump` of `function() return 'bytecode ran' end`'s
/// shape, written by hand): the header, then one function returning a constant.
fn bytecode_returning_a_string() -> Vec<u8> {
    let mut b = b"\x1bLua\x51\x00\x01\x04\x08\x04\x08\x00".to_vec();
    b.extend_from_slice(&0u64.to_le_bytes()); // source: none
    b.extend_from_slice(&0i32.to_le_bytes()); // linedefined
    b.extend_from_slice(&0i32.to_le_bytes()); // lastlinedefined
    b.extend_from_slice(&[0, 0, 2, 2]); // upvalues, parameters, vararg, max stack
    b.extend_from_slice(&2i32.to_le_bytes()); // two instructions:
    b.extend_from_slice(&0x0000_0001u32.to_le_bytes()); // LOADK 0 0
    b.extend_from_slice(&0x0100_001eu32.to_le_bytes()); // RETURN 0 2
    b.extend_from_slice(&1i32.to_le_bytes()); // one constant, a string
    b.push(4);
    let s = b"bytecode ran\0";
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s);
    b.extend_from_slice(&0i32.to_le_bytes()); // no nested functions
    b.extend_from_slice(&[0; 12]); // no line info, locals or upvalue names
    b
}

/// A bytecode chunk declaring 2^31 - 1 constants: loading it asks for 32 GiB.
fn bytecode_with_a_huge_count() -> Vec<u8> {
    let mut b = b"\x1bLua\x51\x00\x01\x04\x08\x04\x08\x00".to_vec();
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&[0, 0, 2, 2]);
    b.extend_from_slice(&1i32.to_le_bytes());
    b.extend_from_slice(&0x0080_001eu32.to_le_bytes()); // RETURN 0 1
    b.extend_from_slice(&i32::MAX.to_le_bytes());
    b
}

#[test]
fn bytecode_is_refused_everywhere() {
    let mut both = Both::start();
    const NEAR_ESC: &str = "unexpected symbol near 'char(27)'";
    let chunks = [bytecode_returning_a_string(), bytecode_with_a_huge_count(), b"\x1bLuaQ".to_vec()];
    for chunk in &chunks {
        // As a script body, through EVAL and SCRIPT LOAD.
        let reply = both.eval_bytes(chunk, &[]);
        assert_eq!(reply, format!("-ERR Error compiling script (new function): user_script:1: {NEAR_ESC}\r\n"));
        let loads: Vec<String> = [&mut both.r, &mut both.d]
            .into_iter()
            .map(|c| text(&c.cmd(&[b"SCRIPT".as_slice(), b"LOAD", chunk]).unwrap()))
            .collect();
        assert_eq!(loads[1], loads[0], "SCRIPT LOAD of bytecode");
        assert_eq!(loads[0], format!("-ERR Error compiling script (new function): user_script:1: {NEAR_ESC}\r\n"));
        // Through loadstring, under its default and a given name.
        let reply = both.eval_bytes(b"local f, e = loadstring(ARGV[1]) return {type(f), e}", &[chunk]);
        assert!(reply.starts_with("*2\r\n$3\r\nnil\r\n") && reply.contains(NEAR_ESC), "{reply:?}");
        let reply = both.eval_bytes(b"local f, e = loadstring(ARGV[1], '=chunk') return e", &[chunk]);
        assert!(reply.contains(&format!("chunk:1: {NEAR_ESC}")), "{reply:?}");
        // Through load, whole or one byte at a time.
        let reply = both.eval_bytes(
            b"local s = ARGV[1] local f, e = load(function() local p = s s = nil return p end) return {type(f), e}",
            &[chunk],
        );
        assert_eq!(reply, format!("*2\r\n$3\r\nnil\r\n{}", bulk(&format!("(load):1: {NEAR_ESC}"))));
        let reply = both.eval_bytes(
            b"local s, i = ARGV[1], 0 local f, e = load(function() i = i + 1 return s:sub(i, i) end, 'bytes') \
              return {type(f), e}",
            &[chunk],
        );
        assert!(
            reply.starts_with("*2\r\n$3\r\nnil\r\n") && reply.contains(&format!("[string \"bytes\"]:1: {NEAR_ESC}"))
        );
    }
    // What string.dump makes is refused the same ways.
    both.answers(
        "local d = string.dump(function() return 'bytecode ran' end) local f, e = loadstring(d, 'dumped') return e",
        &bulk(&format!("[string \"dumped\"]:1: {NEAR_ESC}")),
    );
    both.answers(
        "local d = string.dump(function() return 'bytecode ran' end) \
         local f, e = load(function() local p = d d = nil return p end) if f then return f() end return e",
        &bulk(&format!("(load):1: {NEAR_ESC}")),
    );
    // Source still loads, by both.
    both.answers("return loadstring('return 6 * 7')()", ":42\r\n");
    both.answers(
        "local i = 0 return load(function() i = i + 1 if i == 1 then return 'return 4' elseif i == 2 then return '2' end end)()",
        ":42\r\n",
    );
    both.intact();
}

#[test]
fn cjson_and_cmsgpack_refuse_hostile_input() {
    let mut both = Both::start();
    // Deep nesting, decoding and encoding.
    both.refused(
        "return cjson.decode(string.rep('[', 100000) .. string.rep(']', 100000))",
        "Found too many nested data structures (1001) at character 1001",
    );
    both.refused(
        "return cjson.decode(string.rep('{\"a\":', 100000) .. '1' .. string.rep('}', 100000))",
        "Found too many nested data structures (1001) at character 5001",
    );
    both.refused("return cjson.decode(string.rep('[', 1e6))", "Found too many nested data structures (1001)");
    both.refused(
        "local t = {} local c = t for i = 1, 10000 do c[1] = {} c = c[1] end return cjson.encode(t)",
        "Cannot serialise, excessive nesting (1001)",
    );
    both.refused("local t = {} t.a = t return cjson.encode(t)", "Cannot serialise, excessive nesting (1001)");
    // Large strings whose escaped form is several times longer (CVE-2022-24834's overflow).
    both.answers("return #cjson.encode(string.rep('\\1\"\\\\', 2^20))", ":10485762\r\n");
    both.answers("return #cjson.encode({string.rep('\\0', 2^21), string.rep('\\127', 2^20)})", ":18874375\r\n");
    both.answers("return cjson.decode('\"' .. string.rep('\\\\u0000', 2^18) .. '\"'):len()", ":262144\r\n");
    both.answers("return #cjson.decode('[' .. string.rep('1,', 1e5) .. '1]')", ":100001\r\n");
    // cmsgpack: deep nesting, many values, and lengths the input does not have (CVE-2018-11218).
    both.refused(
        "return cmsgpack.unpack(string.rep('\\145', 100000) .. '\\192')",
        "stack overflow (in function mp_decode_to_lua_array)",
    );
    both.answers(
        "local v = cmsgpack.unpack(string.rep('\\145', 1000) .. '\\1') for i = 1, 1000 do v = v[1] end return v",
        ":1\r\n",
    );
    both.refused("return cmsgpack.unpack(string.rep('\\1', 100000))", "too many return values at once");
    both.answers("return select('#', cmsgpack.unpack(string.rep('\\1', 7000)))", ":7000\r\n");
    for header in [
        "\\219\\255\\255\\255\\255abc",
        "\\221\\255\\255\\255\\255\\1\\2\\3",
        "\\223\\255\\255\\255\\255",
        "\\218\\255\\255",
        "\\220\\255\\255",
        "\\222\\255\\255",
    ] {
        both.answers(
            &format!("local ok, e = pcall(cmsgpack.unpack, '{header}') return {{tostring(ok), e}}"),
            &format!("*2\r\n$5\r\nfalse\r\n{}", bulk("Missing bytes in input.")),
        );
    }
    both.answers(
        "local ok, e = pcall(cmsgpack.unpack, '\\198\\255\\255\\255\\255xyz') return {tostring(ok), e}",
        &format!("*2\r\n$5\r\nfalse\r\n{}", bulk("Bad data format in input.")),
    );
    both.answers(
        "local t = {} local c = t for i = 1, 100 do c[1] = {} c = c[1] end return #cmsgpack.pack(t)",
        ":17\r\n",
    );
    both.answers("local t = {} t[1] = t return #cmsgpack.pack(t)", ":17\r\n");
    both.refused(
        "local t = {} for i = 1, 7000 do t[i] = i end return cmsgpack.pack(unpack(t))",
        "Too many arguments for MessagePack pack.",
    );
    both.answers(
        "local ok, e = pcall(cmsgpack.unpack_one, '\\1', 2^31) return e",
        &bulk("Start offset -2147483648 greater than input length 1."),
    );
    both.answers(
        "local ok, e = pcall(cmsgpack.unpack_limit, '\\1\\2', 1e20, 1e20) return e",
        &bulk("Invalid request to unpack with offset of 0 and limit of 2."),
    );
    both.answers("return {cmsgpack.unpack_limit('\\1\\2', 2^31 - 1, 0)}", "*3\r\n:-1\r\n:1\r\n:2\r\n");
    both.intact();
}

#[test]
fn struct_refuses_huge_sizes_and_counts() {
    let mut both = Both::start();
    let pcall_error = |message: &str| format!("*2\r\n$5\r\nfalse\r\n{}", bulk(message));
    for (call, message) in [
        ("struct.pack, 'i2147483648', 1", "integral size overflow"),
        ("struct.pack, 'i' .. string.rep('9', 100), 1", "integral size overflow"),
        ("struct.pack, 'c99999999999', 'x'", "integral size overflow"),
        ("struct.unpack, 'c99999999999999999', 'x'", "integral size overflow"),
        ("struct.pack, '!2147483648i', 1", "integral size overflow"),
        ("struct.unpack, 'i40', string.rep('x', 40)", "integral size 40 is larger than limit of 32"),
        ("struct.pack, '!3i', 1", "alignment 3 is not a power of 2"),
        ("struct.unpack, 'c0', 'x'", "format 'c0' needs a previous size"),
        ("struct.unpack, 'c2147483647', 'x'", "bad argument #2 to '?' (data string too short)"),
        ("struct.unpack, 'i4c0', '\\255\\255\\255\\127abc'", "bad argument #2 to '?' (data string too short)"),
        ("struct.unpack, 'b', 'x', 2^31", "bad argument #2 to '?' (data string too short)"),
        ("struct.unpack, 'bbbb', 'x', 2^31 - 1", "bad argument #2 to '?' (data string too short)"),
        ("struct.pack, 'c2147483647', 'x'", "bad argument #3 to '?' (string too short)"),
        ("struct.unpack, string.rep('b', 10000), string.rep('x', 10000)", "stack overflow (too many results)"),
        ("struct.unpack, 's', 'abc'", "unfinished string in data"),
    ] {
        both.answers(&format!("local ok, e = pcall({call}) return {{tostring(ok), e}}"), &pcall_error(message));
    }
    // Sizes only add up; large counts that fit still work.
    both.answers("return struct.size(string.rep('c2147483647', 4))", ":8589934588\r\n");
    both.answers("return select('#', struct.unpack(string.rep('b', 7000), string.rep('x', 7000)))", ":7001\r\n");
    both.intact();
}

#[test]
fn runaway_recursion_is_an_error() {
    let mut both = Both::start();
    both.refused("local function f() return f() + 1 end return f()", "user_script:1: stack overflow");
    both.answers(
        "local function f() return 1 + f() end local ok, e = pcall(f) return e",
        &bulk("user_script:1: stack overflow"),
    );
    both.refused(
        "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x",
        "C stack overflow",
    );
    both.refused("local function f(s) return (s:gsub('.', f)) end return f('x')", "C stack overflow");
    both.refused("local function f() table.sort({2, 1}, f) end f()", "C stack overflow");
    both.answers("local function f() pcall(f) end f() return 'survived'", &bulk("survived"));
    // Coroutines inside coroutines: each level re-raises the error with its position, and
    // the C stack limit is reached one level apart (Redoubt calls the script from one C
    // level deeper), so only the error is compared.
    let body = b"local function f() coroutine.wrap(f)() end f()";
    for conn in [&mut both.r, &mut both.d] {
        let reply = text(&eval(conn, body, &[]));
        assert!(reply.starts_with("-ERR user_script:1: ") && reply.contains("C stack overflow"), "{reply:.200}");
    }
    both.intact();
}

/// Starts Redoubt with its address space capped: should the scripts' memory limit ever go
/// missing, the allocation tests below make this server fail instead of the machine.
fn capped_redoubt(dir: &TempDir) -> Server {
    let binary = redoubt_binary_or_panic();
    let wrapper =
        dir.write("capped-redoubt", &format!("#!/bin/sh\nulimit -v 8388608\nexec '{}' \"$@\"\n", binary.display()));
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args: Vec<String> =
        ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].iter().map(|s| s.to_string()).collect();
    Server::start(Kind::Redoubt, wrapper, &args)
}

/// Redoubt only: Redis aborts when Lua cannot allocate, Redoubt fails the script.
#[test]
fn unbounded_allocation_is_an_error_on_redoubt() {
    let dir = TempDir::new("script-sandbox");
    let server = capped_redoubt(&dir);
    let mut conn = server.conn();
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    for body in [
        // string.rep of a large string with a huge count, and one truncated by C's (int).
        "return #string.rep(string.rep('x', 2^20), 2^31 - 1)",
        "return #string.rep('x', 1e10)",
        // Doubling a string: a terabyte after 40 rounds.
        "local s = 'x' for i = 1, 40 do s = s .. s end return #s",
        // A table of large strings, then one string of all of them.
        "local t = {} for i = 1, 4096 do t[i] = string.rep(tostring(i), 2^18) end return #table.concat(t)",
        // cjson escaping a large string to six times its size.
        "return #cjson.encode(string.rep('\\1', 2^28))",
    ] {
        let reply = text(&eval(&mut conn, body.as_bytes(), &[]));
        assert!(reply.starts_with("-ERR not enough memory"), "{body}: {reply:.200}");
        // The memory was given back: the next script can allocate a large string.
        assert_eq!(text(&eval(&mut conn, b"return #string.rep('y', 2^27)", &[])), ":134217728\r\n", "after {body}");
    }
    // A script may catch the error and carry on.
    assert_eq!(
        text(&eval(
            &mut conn,
            b"local ok, e = pcall(string.rep, string.rep('x', 2^20), 2^31 - 1) return {tostring(ok), e}",
            &[]
        )),
        "*2\r\n$5\r\nfalse\r\n$17\r\nnot enough memory\r\n"
    );
    assert_eq!(text(&conn.cmd(&["PING"]).unwrap()), "+PONG\r\n");
    let mut fresh = server.conn();
    assert_eq!(text(&eval(&mut fresh, INTACT.as_bytes(), &[])), INTACT_REPLY);
}

/// Sends `args` on fresh connections until one answers within 300 ms (Redoubt serves a
/// connection on the worker that runs the script only after it): the reply.
fn ask(server: &Server, args: &[&str]) -> String {
    let what = format!("{:?} to answer {args:?} on a connection not stuck behind the script", server.kind());
    poll_until(Duration::from_secs(20), &what, || {
        let mut c = Conn::connect(server.port()).ok()?;
        c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
        c.cmd(args).ok().map(|r| text(&r))
    })
}

/// Runs `body` (which never ends by itself) and kills it: the script's reply.
fn kill(server: &Server, body: &str) -> String {
    let mut runner = server.conn();
    runner.send(&["EVAL", body, "0"]).unwrap();
    // NOTBUSY until the script runs; then OK. A SCRIPT KILL sent on a connection that the
    // script's own worker serves waits until the script has ended: those connections are
    // kept and their replies read below, so that no late SCRIPT KILL reaches a later script.
    let mut waiting = Vec::new();
    poll_until(Duration::from_secs(20), "SCRIPT KILL to be taken", || {
        let mut c = Conn::connect(server.port()).ok()?;
        c.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
        match c.cmd(&["SCRIPT", "KILL"]) {
            Ok(r) => (text(&r) == "+OK\r\n").then_some(()),
            Err(_) => {
                waiting.push(c);
                None
            }
        }
    });
    runner.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let reply = text(&runner.read_reply_raw().unwrap());
    for mut c in waiting {
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let late = text(&c.read_reply_raw().unwrap());
        assert!(late == "+OK\r\n" || late.starts_with("-NOTBUSY"), "a late SCRIPT KILL: {late}");
    }
    assert_eq!(ask(server, &["PING"]), "+PONG\r\n", "{:?} after killing {body}", server.kind());
    reply
}

#[test]
fn script_kill_stops_loops_that_catch_errors_or_run_in_coroutines() {
    let redis = Server::redis();
    let redoubt = Server::redoubt();
    for server in [&redis, &redoubt] {
        assert_eq!(ask(server, &["CONFIG", "SET", "busy-reply-threshold", "100"]), "+OK\r\n");
    }
    for body in [
        "coroutine.wrap(function() while true do end end)()",
        "while true do pcall(function() while true do end end) end",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        "local co = coroutine.wrap(function() while true do pcall(coroutine.yield) end end) while true do pcall(co) end",
    ] {
        let want = kill(&redis, body);
        let got = kill(&redoubt, body);
        assert_eq!(got, want, "{body}: redoubt (left) differs from redis");
        assert!(got.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "), "{body}: {got}");
    }
    // Redoubt also stops the main thread of a script whose coroutine was killed (Redis lets
    // such a script return, with the kill error as a value).
    let got = kill(&redoubt, "return coroutine.resume(coroutine.create(function() while true do end end))");
    assert!(got.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "), "{got}");
    // Encoding a table that holds another eight times, sixty levels deep, runs in C for
    // ages (Redis cannot stop it): Redoubt's encoders stop when SCRIPT KILL asks.
    for lib in ["cjson.encode", "cmsgpack.pack"] {
        let body = format!("local t = {{1}} for i = 1, 60 do t = {{t, t, t, t, t, t, t, t}} end return #{lib}(t)");
        let got = kill(&redoubt, &body);
        assert!(got.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "), "{lib}: {got}");
    }
    // The next script runs at full speed and to its end.
    let mut conn = redoubt.conn();
    assert_eq!(text(&eval(&mut conn, b"local n = 0 for i = 1, 3e6 do n = n + 1 end return n", &[])), ":3000000\r\n");
}
