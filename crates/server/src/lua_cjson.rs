//! The `cjson` Lua library of Redis scripts (lua-cjson 2.1 as Redis 7 bundles it), written
//! from its observed behaviour.
//!
//! `cjson.encode`, `cjson.decode`, `cjson.null`, `cjson.new` and the configuration functions
//! (`encode_sparse_array`, `encode_max_depth`, `decode_max_depth`, `encode_number_precision`,
//! `encode_keep_buffer`, `encode_invalid_numbers`, `decode_invalid_numbers`), with Redis's
//! defaults, results and error texts:
//!
//! - encode: a table whose keys are all integers >= 1 is an array (holes become `null`) unless
//!   it is excessively sparse (max index > 2 × count and > 10: an error); any other table is
//!   an object (keys numbers or strings), an empty table is `{}`; numbers use `%.14g` (NaN and
//!   Inf are errors); strings escape `"`, `\`, `/`, control characters and DEL; nesting is
//!   limited to 1000 tables.
//! - decode: lua-cjson's tokenizer, so its leniencies too (numbers are read with C's `strtod`:
//!   `+5`, `0x10`, `01`, `NaN`, `Infinity` are accepted; a NUL byte ends the input), `null` is
//!   `cjson.null` (the NULL light userdata), `\uXXXX` escapes (surrogate pairs included) become
//!   UTF-8, error texts name the token found and its 1-based position.
//!
//! The functions are C functions working on the Lua stack directly (not mlua callbacks): their
//! errors must be plain Lua strings with the caller's position (`user_script:1: ...`), as
//! `luaL_error` raises them, so that `pcall(cjson.decode, s)` returns the text, and numbers
//! must keep their sign (`-0`), which mlua's conversions drop. Errors are raised only from the
//! outermost frame, once every Rust value is dropped; a memory error inside the Lua API while
//! a buffer is alive would leak that buffer.
//!
//! Differences from Redis:
//! - The global `cjson` is a read-only proxy (writes fail with Redis's "Attempt to modify a
//!   readonly table"), so `pairs(cjson)` and `rawget(cjson, k)` see nothing.
//! - The configuration is per worker thread (each has its own interpreter), not per server.
//! - Object keys are written in Lua's table order, as lua-cjson does; the vendored Lua 5.1
//!   matches Redis's for tables built the same way, but that is not guaranteed.

use std::ffi::{c_char, c_int, CStr};
use std::ptr;

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table};

/// One `cjson` instance's settings (lua-cjson's defaults).
#[derive(Clone, Copy)]
#[repr(C)]
struct Config {
    sparse_convert: c_int,
    sparse_ratio: c_int,
    sparse_safe: c_int,
    encode_max_depth: c_int,
    decode_max_depth: c_int,
    /// 0: error, 1: `nan`/`inf`, 2: `null`.
    encode_invalid_numbers: c_int,
    decode_invalid_numbers: c_int,
    encode_keep_buffer: c_int,
    precision: c_int,
}

const DEFAULTS: Config = Config {
    sparse_convert: 0,
    sparse_ratio: 2,
    sparse_safe: 10,
    encode_max_depth: 1000,
    decode_max_depth: 1000,
    encode_invalid_numbers: 0,
    decode_invalid_numbers: 1,
    encode_keep_buffer: 1,
    precision: 14,
};

/// Installs the global `cjson` (the sandbox then makes it read-only).
pub fn register(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: `push_module` only pushes a table (and allocates) on the state exec_raw hands it,
    // inside a protected call.
    let module: Table = unsafe { lua.exec_raw((), |l| push_module(l)) }?;
    lua.globals().raw_set("cjson", module)
}

/// Pushes a new `cjson` table with its own configuration.
unsafe fn push_module(l: *mut lua_State) {
    let closures: [(&CStr, ffi::lua_CFunction); 9] = [
        (c"encode", encode_entry),
        (c"decode", decode_entry),
        (c"encode_sparse_array", cfg_encode_sparse_array),
        (c"encode_max_depth", cfg_encode_max_depth),
        (c"decode_max_depth", cfg_decode_max_depth),
        (c"encode_number_precision", cfg_encode_number_precision),
        (c"encode_keep_buffer", cfg_encode_keep_buffer),
        (c"encode_invalid_numbers", cfg_encode_invalid_numbers),
        (c"decode_invalid_numbers", cfg_decode_invalid_numbers),
    ];
    // SAFETY: plain stack operations on a valid state; the userdata is sized for a Config
    // and Lua aligns userdata for any C type.
    unsafe {
        ffi::lua_createtable(l, 0, 14);
        let cfg = ffi::lua_newuserdata(l, std::mem::size_of::<Config>()) as *mut Config;
        cfg.write(DEFAULTS);
        for (name, f) in closures {
            ffi::lua_pushvalue(l, -1);
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, -3, name.as_ptr());
        }
        ffi::lua_settop(l, -2);
        ffi::lua_pushcclosure(l, new_entry, 0);
        ffi::lua_setfield(l, -2, c"new".as_ptr());
        ffi::lua_pushlightuserdata(l, ptr::null_mut());
        ffi::lua_setfield(l, -2, c"null".as_ptr());
        ffi::lua_pushstring_(l, c"cjson".as_ptr());
        ffi::lua_setfield(l, -2, c"_NAME".as_ptr());
        ffi::lua_pushstring_(l, c"2.1.0".as_ptr());
        ffi::lua_setfield(l, -2, c"_VERSION".as_ptr());
    }
}

unsafe extern "C-unwind" fn new_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state.
    unsafe { push_module(l) };
    1
}

/// The configuration in upvalue 1 of the running closure.
unsafe fn config<'a>(l: *mut lua_State) -> &'a mut Config {
    // SAFETY: every closure that calls this was created by push_module with the Config
    // userdata as upvalue 1, which lives as long as the closure.
    unsafe { &mut *(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut Config) }
}

unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    // SAFETY: `b` is valid for its length.
    unsafe { ffi::lua_pushlstring_(l, b.as_ptr() as *const c_char, b.len()) }
}

/// Raises `msg` with the caller's position, as `luaL_error` does.
unsafe fn raise(l: *mut lua_State, msg: String) -> ! {
    // SAFETY: the message is copied into Lua before it is dropped; nothing owned by Rust is
    // alive when lua_error unwinds.
    unsafe {
        ffi::lua_settop(l, 0);
        ffi::luaL_where(l, 1);
        push_bytes(l, msg.as_bytes());
        drop(msg);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
}

// --- Encoding ---

unsafe extern "C-unwind" fn encode_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; errors are raised with no Rust value alive
    // (`raise` drops its message first).
    unsafe {
        if ffi::lua_gettop(l) != 1 {
            ffi::luaL_argerror(l, 1, c"expected 1 argument".as_ptr());
        }
        let cfg = *config(l);
        let mut out = Vec::new();
        match encode_value(l, &cfg, 0, &mut out) {
            Ok(()) => {
                crate::lua::push_owned(l, out);
                1
            }
            Err(msg) => {
                drop(out);
                if crate::lua::is_library_stop(&msg) {
                    // Out of memory or killed: the text alone, as Lua's own errors of that kind.
                    push_bytes(l, msg.as_bytes());
                    drop(msg);
                    ffi::lua_error(l)
                }
                raise(l, msg)
            }
        }
    }
}

fn type_name(t: c_int) -> &'static str {
    match t {
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TLIGHTUSERDATA | ffi::LUA_TUSERDATA => "userdata",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        _ => "no value",
    }
}

/// Appends the value on top of the stack.
unsafe fn encode_value(l: *mut lua_State, cfg: &Config, depth: c_int, out: &mut Vec<u8>) -> Result<(), String> {
    crate::lua::library_may_grow(out.len())?;
    // SAFETY: raw accesses to the value on top of a valid stack; every push is balanced.
    unsafe {
        match ffi::lua_type(l, -1) {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(l, -1, &mut len) as *const u8;
                encode_string(std::slice::from_raw_parts(p, len), out)?;
            }
            ffi::LUA_TNUMBER => encode_number(ffi::lua_tonumber(l, -1), cfg, out)?,
            ffi::LUA_TBOOLEAN => out.extend_from_slice(if ffi::lua_toboolean(l, -1) != 0 { b"true" } else { b"false" }),
            ffi::LUA_TNIL => out.extend_from_slice(b"null"),
            ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, -1).is_null() => out.extend_from_slice(b"null"),
            ffi::LUA_TTABLE => {
                let depth = depth + 1;
                if depth > cfg.encode_max_depth || ffi::lua_checkstack(l, 3) == 0 {
                    return Err(format!("Cannot serialise, excessive nesting ({depth})"));
                }
                let len = array_length(l, cfg)?;
                if len > 0 {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        ffi::lua_rawgeti_(l, -1, i);
                        encode_value(l, cfg, depth, out)?;
                        ffi::lua_settop(l, -2);
                    }
                    out.push(b']');
                } else {
                    out.push(b'{');
                    let mut first = true;
                    ffi::lua_pushnil(l);
                    while ffi::lua_next(l, -2) != 0 {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match ffi::lua_type(l, -2) {
                            ffi::LUA_TNUMBER => {
                                out.push(b'"');
                                encode_number(ffi::lua_tonumber(l, -2), cfg, out)?;
                                out.extend_from_slice(b"\":");
                            }
                            ffi::LUA_TSTRING => {
                                let mut len = 0;
                                let p = ffi::lua_tolstring(l, -2, &mut len) as *const u8;
                                encode_string(std::slice::from_raw_parts(p, len), out)?;
                                out.push(b':');
                            }
                            t => {
                                return Err(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    type_name(t)
                                ))
                            }
                        }
                        encode_value(l, cfg, depth, out)?;
                        ffi::lua_settop(l, -2);
                    }
                    out.push(b'}');
                }
            }
            t => return Err(format!("Cannot serialise {}: type not supported", type_name(t))),
        }
    }
    Ok(())
}

/// lua-cjson's array test for the table on top of the stack: its largest index when every
/// key is an integer >= 1 (0 for an empty table), -1 for an object; an error for an
/// excessively sparse array. Mirrors C's `(int)` conversion of indexes past `INT_MAX`.
unsafe fn array_length(l: *mut lua_State, cfg: &Config) -> Result<c_int, String> {
    let mut max: c_int = 0;
    let mut items: c_int = 0;
    // SAFETY: a raw traversal of the table on top of a valid stack, balanced.
    unsafe {
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, -2) != 0 {
            if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER {
                let k = ffi::lua_tonumber(l, -2);
                if k != 0.0 && k.floor() == k && k >= 1.0 {
                    if k > max as f64 {
                        max = if k >= 2147483648.0 { c_int::MIN } else { k as c_int };
                    }
                    items = items.wrapping_add(1);
                    ffi::lua_settop(l, -2);
                    continue;
                }
            }
            ffi::lua_settop(l, -3);
            return Ok(-1);
        }
    }
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if cfg.sparse_convert == 0 {
            return Err("Cannot serialise table: excessively sparse array".into());
        }
        return Ok(-1);
    }
    Ok(max)
}

/// Appends `s` as a JSON string, escaped as Redis's cjson does. Runs of bytes that need no
/// escaping are copied whole; the growing result is checked against the memory limit every
/// 64 KiB of input, as an escaped string can be six times its input.
fn encode_string(s: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in s.chunks(64 << 10) {
        // The most the chunk can become: six bytes (\u00XX) per input byte, and the quote.
        crate::lua::library_reserve(out, 6 * chunk.len() + 1)?;
        let mut plain = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let escaped: &[u8] = match c {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'/' => b"\\/",
                b'\x08' => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                b'\x0c' => b"\\f",
                b'\r' => b"\\r",
                0..=0x1f | 0x7f => &[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]],
                _ => continue,
            };
            out.extend_from_slice(&chunk[plain..i]);
            out.extend_from_slice(escaped);
            plain = i + 1;
        }
        out.extend_from_slice(&chunk[plain..]);
    }
    out.push(b'"');
    Ok(())
}

fn encode_number(n: f64, cfg: &Config, out: &mut Vec<u8>) -> Result<(), String> {
    if !n.is_finite() {
        match cfg.encode_invalid_numbers {
            0 => return Err("Cannot serialise number: must not be NaN or Inf".into()),
            1 if n.is_nan() => {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
            1 => {}
            _ => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
        }
    }
    out.extend_from_slice(format_g(n, cfg.precision.clamp(1, 14) as usize).as_bytes());
    Ok(())
}

/// C's `%.<precision>g`.
fn format_g(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.*e}", precision - 1, n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= precision as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        trim(&format!("{:.*}", (precision as i32 - 1 - exp) as usize, n))
    }
}

// --- Decoding ---

unsafe extern "C-unwind" fn decode_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; the input string stays at index 1 while it is
    // borrowed; errors are raised with no Rust value alive.
    unsafe {
        if ffi::lua_gettop(l) != 1 {
            ffi::luaL_argerror(l, 1, c"expected 1 argument".as_ptr());
        }
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 1, &mut len) as *const u8;
        let cfg = *config(l);
        let data = std::slice::from_raw_parts(p, len);
        let result = if len >= 2 && (data[0] == 0 || data[1] == 0) {
            Err("JSON parser does not support UTF-16 or UTF-32".to_string())
        } else {
            let mut parser = Parser { l, cfg, data, pos: 0, depth: 0 };
            parser.document()
        };
        match result {
            Ok(()) => 1,
            Err(msg) => raise(l, msg),
        }
    }
}

enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Token {
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Bool(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(what) => what,
        }
    }
}

struct Parser<'a> {
    l: *mut lua_State,
    cfg: Config,
    data: &'a [u8],
    pos: usize,
    depth: c_int,
}

impl Parser<'_> {
    /// The byte at `i`; the end of the input reads as NUL, as in the C string.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn document(&mut self) -> Result<(), String> {
        let (tok, at) = self.next_token();
        self.value(tok, at)?;
        let (tok, at) = self.next_token();
        if !matches!(tok, Token::End) {
            return Err(expected("the end", &tok, at));
        }
        Ok(())
    }

    /// The next token and where it starts (or where its error is).
    fn next_token(&mut self) -> (Token, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\r' | b'\n') {
            self.pos += 1;
        }
        let start = self.pos;
        let c = self.at(start);
        let single = match c {
            0 => return (Token::End, start),
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b':' => Some(Token::Colon),
            b',' => Some(Token::Comma),
            b'"' | b'+' | b'-' | b'0'..=b'9' | b'f' | b'i' | b'I' | b'n' | b'N' | b't' => None,
            _ => return (Token::Error("invalid token"), start),
        };
        if let Some(tok) = single {
            self.pos += 1;
            return (tok, start);
        }
        if c == b'"' {
            return self.string();
        }
        let rest = &self.data[start..];
        if c == b'-' || c.is_ascii_digit() {
            if self.cfg.decode_invalid_numbers == 0 && invalid_number(rest) {
                return (Token::Error("invalid number"), start);
            }
            return self.number();
        }
        for (word, tok) in [(&b"true"[..], Token::Bool(true)), (b"false", Token::Bool(false)), (b"null", Token::Null)] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return (tok, start);
            }
        }
        if self.cfg.decode_invalid_numbers != 0 && invalid_number(rest) {
            return self.number();
        }
        (Token::Error("invalid token"), start)
    }

    fn number(&mut self) -> (Token, usize) {
        let start = self.pos;
        match strtod(&self.data[start..]) {
            Some((n, used)) => {
                self.pos += used;
                (Token::Number(n), start)
            }
            None => (Token::Error("invalid number"), start),
        }
    }

    fn string(&mut self) -> (Token, usize) {
        let start = self.pos;
        self.pos += 1;
        let mut s = Vec::new();
        loop {
            let c = self.at(self.pos);
            match c {
                b'"' => break,
                0 => return (Token::Error("unexpected end of string"), self.pos),
                b'\\' => {
                    let e = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 12,
                        b'r' => b'\r',
                        b'u' => match self.unicode_escape() {
                            Some((cp, used)) => {
                                let mut buf = [0; 4];
                                s.extend_from_slice(
                                    char::from_u32(cp).unwrap_or('\u{fffd}').encode_utf8(&mut buf).as_bytes(),
                                );
                                self.pos += used;
                                continue;
                            }
                            None => return (Token::Error("invalid unicode escape code"), self.pos),
                        },
                        _ => return (Token::Error("invalid escape code"), self.pos),
                    };
                    s.push(e);
                    self.pos += 2;
                }
                _ => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        (Token::Str(s), start)
    }

    /// The code point of the `\uXXXX` escape (or surrogate pair) at `pos`, and its length.
    fn unicode_escape(&self) -> Option<(u32, usize)> {
        let hex4 = |at: usize| -> Option<u32> {
            (0..4).try_fold(0u32, |acc, i| Some(acc * 16 + (self.at(at + i) as char).to_digit(16)?))
        };
        let high = hex4(self.pos + 2)?;
        if high & 0xF800 != 0xD800 {
            return Some((high, 6));
        }
        if high & 0x400 != 0 || self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
            return None;
        }
        let low = hex4(self.pos + 8)?;
        if low & 0xFC00 != 0xDC00 {
            return None;
        }
        Some(((((high & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000, 12))
    }

    fn descend(&mut self, slots: c_int) -> Result<(), String> {
        self.depth += 1;
        // SAFETY: a valid state.
        if self.depth <= self.cfg.decode_max_depth && unsafe { ffi::lua_checkstack(self.l, slots) } != 0 {
            return Ok(());
        }
        Err(format!("Found too many nested data structures ({}) at character {}", self.depth, self.pos))
    }

    /// Pushes the value starting with `tok`.
    fn value(&mut self, tok: Token, at: usize) -> Result<(), String> {
        let l = self.l;
        // SAFETY: pushes onto a valid stack; descend() has reserved the slots for tables.
        unsafe {
            match tok {
                Token::Str(s) => crate::lua::push_owned(l, s),
                Token::Number(n) => ffi::lua_pushnumber(l, n),
                Token::Bool(b) => ffi::lua_pushboolean(l, b as c_int),
                Token::Null => ffi::lua_pushlightuserdata(l, ptr::null_mut()),
                Token::ObjBegin => {
                    self.descend(3)?;
                    ffi::lua_createtable(l, 0, 0);
                    let (mut tok, mut at) = self.next_token();
                    if matches!(tok, Token::ObjEnd) {
                        self.depth -= 1;
                        return Ok(());
                    }
                    loop {
                        let Token::Str(key) = tok else {
                            return Err(expected("object key string", &tok, at));
                        };
                        crate::lua::push_owned(l, key);
                        let (colon, cat) = self.next_token();
                        if !matches!(colon, Token::Colon) {
                            return Err(expected("colon", &colon, cat));
                        }
                        let (v, vat) = self.next_token();
                        self.value(v, vat)?;
                        ffi::lua_rawset(l, -3);
                        let (sep, sat) = self.next_token();
                        match sep {
                            Token::ObjEnd => {
                                self.depth -= 1;
                                return Ok(());
                            }
                            Token::Comma => {}
                            other => return Err(expected("comma or object end", &other, sat)),
                        }
                        (tok, at) = self.next_token();
                    }
                }
                Token::ArrBegin => {
                    self.descend(2)?;
                    ffi::lua_createtable(l, 0, 0);
                    let (mut tok, mut at) = self.next_token();
                    if matches!(tok, Token::ArrEnd) {
                        self.depth -= 1;
                        return Ok(());
                    }
                    let mut i: c_int = 1;
                    loop {
                        self.value(tok, at)?;
                        ffi::lua_rawseti_(l, -2, i);
                        i = i.wrapping_add(1);
                        let (sep, sat) = self.next_token();
                        match sep {
                            Token::ArrEnd => {
                                self.depth -= 1;
                                return Ok(());
                            }
                            Token::Comma => {}
                            other => return Err(expected("comma or array end", &other, sat)),
                        }
                        (tok, at) = self.next_token();
                    }
                }
                other => return Err(expected("value", &other, at)),
            }
        }
        Ok(())
    }
}

fn expected(what: &str, found: &Token, at: usize) -> String {
    format!("Expected {what} but found {} at character {}", found.name(), at + 1)
}

/// lua-cjson's test for numbers JSON does not allow (`+1`, hex, leading zeros, Inf, NaN).
fn invalid_number(s: &[u8]) -> bool {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    if at(0) == b'+' {
        return true;
    }
    let p = usize::from(at(0) == b'-');
    if at(p) == b'0' {
        let c = at(p + 1);
        return c | 0x20 == b'x' || c.is_ascii_digit();
    }
    if at(p) <= b'9' {
        return false;
    }
    let word = |w: &[u8]| s.len() >= p + 3 && s[p..p + 3].eq_ignore_ascii_case(w);
    word(b"inf") || word(b"nan")
}

/// C's `strtod` (C locale) on the start of `s`: the value and the bytes it used, or None.
fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = 0;
    let negative = at(0) == b'-';
    if matches!(at(0), b'+' | b'-') {
        i += 1;
    }
    let sign = if negative { -1.0 } else { 1.0 };
    let rest = &s[i.min(s.len())..];
    let starts = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    if starts(b"inf") {
        let used = if starts(b"infinity") { 8 } else { 3 };
        return Some((sign * f64::INFINITY, i + used));
    }
    if starts(b"nan") {
        let mut used = 3;
        if at(i + 3) == b'(' {
            let mut j = i + 4;
            while at(j).is_ascii_alphanumeric() || at(j) == b'_' {
                j += 1;
            }
            if at(j) == b')' {
                used = j + 1 - i;
            }
        }
        return Some((sign * f64::NAN, i + used));
    }
    let hex_digit = |c: u8| (c as char).to_digit(16);
    if at(i) == b'0'
        && at(i + 1) | 0x20 == b'x'
        && (hex_digit(at(i + 2)).is_some() || (at(i + 2) == b'.' && hex_digit(at(i + 3)).is_some()))
    {
        let mut j = i + 2;
        let mut mantissa: u64 = 0;
        let mut exp: i64 = 0;
        let mut seen_point = false;
        loop {
            let c = at(j);
            if c == b'.' && !seen_point {
                seen_point = true;
            } else if let Some(d) = hex_digit(c) {
                if mantissa < (1 << 56) {
                    mantissa = mantissa * 16 + d as u64;
                    if seen_point {
                        exp -= 4;
                    }
                } else if !seen_point {
                    exp += 4;
                }
            } else {
                break;
            }
            j += 1;
        }
        if at(j) | 0x20 == b'p' {
            let mut k = j + 1;
            let eneg = at(k) == b'-';
            if matches!(at(k), b'+' | b'-') {
                k += 1;
            }
            if at(k).is_ascii_digit() {
                let mut e: i64 = 0;
                while at(k).is_ascii_digit() {
                    e = (e * 10 + (at(k) - b'0') as i64).min(100_000);
                    k += 1;
                }
                exp += if eneg { -e } else { e };
                j = k;
            }
        }
        let v = mantissa as f64 * 2f64.powi(exp.clamp(-5000, 5000) as i32);
        return Some((sign * v, j));
    }
    let mut j = i;
    let mut digits = 0;
    while at(j).is_ascii_digit() {
        j += 1;
        digits += 1;
    }
    if at(j) == b'.' {
        j += 1;
        while at(j).is_ascii_digit() {
            j += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if at(j) | 0x20 == b'e' {
        let mut k = j + 1;
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        if at(k).is_ascii_digit() {
            while at(k).is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[i..j]).ok()?;
    let v: f64 = text.parse().ok()?;
    Some((sign * v, j))
}

// --- Configuration ---

/// Checks there are at most `n` arguments and pads them with nils.
unsafe fn arg_init(l: *mut lua_State, n: c_int) {
    // SAFETY: a valid state; luaL_argerror unwinds with no Rust value alive.
    unsafe {
        if ffi::lua_gettop(l) > n {
            ffi::luaL_argerror(l, n + 1, c"found too many arguments".as_ptr());
        }
        while ffi::lua_gettop(l) < n {
            ffi::lua_pushnil(l);
        }
    }
}

/// Sets `*setting` from argument `idx` (an integer in `min..=max`) unless it is nil; pushes
/// the setting.
unsafe fn integer_option(l: *mut lua_State, idx: c_int, setting: *mut c_int, max_is_14: bool, min: c_int) {
    // SAFETY: a valid state and a setting inside the closure's Config; errors unwind with no
    // Rust value alive.
    unsafe {
        if ffi::lua_isnil(l, idx) == 0 {
            let v = ffi::luaL_checkinteger(l, idx) as c_int;
            let max = if max_is_14 { 14 } else { c_int::MAX };
            if !(min..=max).contains(&v) {
                let msg = match (min, max_is_14) {
                    (_, true) => c"expected integer between 1 and 14",
                    (0, false) => c"expected integer between 0 and 2147483647",
                    _ => c"expected integer between 1 and 2147483647",
                };
                ffi::luaL_argerror(l, 1, msg.as_ptr());
            }
            *setting = v;
        }
        ffi::lua_pushinteger(l, *setting as ffi::lua_Integer);
    }
}

/// Sets `*setting` from argument `idx` (a boolean, "off", "on" or, with `with_null`, "null")
/// unless it is nil; pushes the setting (a boolean, or "null").
unsafe fn enum_option(l: *mut lua_State, idx: c_int, setting: *mut c_int, with_null: bool) {
    let options: [*const c_char; 4] =
        [c"off".as_ptr(), c"on".as_ptr(), if with_null { c"null".as_ptr() } else { ptr::null() }, ptr::null()];
    // SAFETY: a valid state, a NULL-terminated option list that outlives the call, and a
    // setting inside the closure's Config; errors unwind with no Rust value alive.
    unsafe {
        if ffi::lua_isnil(l, idx) == 0 {
            if ffi::lua_type(l, idx) == ffi::LUA_TBOOLEAN {
                *setting = ffi::lua_toboolean(l, idx);
            } else {
                *setting = ffi::luaL_checkoption(l, idx, ptr::null(), options.as_ptr());
            }
        }
        match *setting {
            0 | 1 => ffi::lua_pushboolean(l, *setting),
            s => ffi::lua_pushstring_(l, options[s as usize]),
        }
    }
}

unsafe extern "C-unwind" fn cfg_encode_sparse_array(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state, as a closure made by push_module.
    unsafe {
        arg_init(l, 3);
        let cfg: *mut Config = config(l);
        enum_option(l, 1, &raw mut (*cfg).sparse_convert, false);
        integer_option(l, 2, &raw mut (*cfg).sparse_ratio, false, 0);
        integer_option(l, 3, &raw mut (*cfg).sparse_safe, false, 0);
    }
    3
}

unsafe extern "C-unwind" fn cfg_encode_max_depth(l: *mut lua_State) -> c_int {
    // SAFETY: as above.
    unsafe {
        arg_init(l, 1);
        let cfg: *mut Config = config(l);
        integer_option(l, 1, &raw mut (*cfg).encode_max_depth, false, 1);
    }
    1
}

unsafe extern "C-unwind" fn cfg_decode_max_depth(l: *mut lua_State) -> c_int {
    // SAFETY: as above.
    unsafe {
        arg_init(l, 1);
        let cfg: *mut Config = config(l);
        integer_option(l, 1, &raw mut (*cfg).decode_max_depth, false, 1);
    }
    1
}

unsafe extern "C-unwind" fn cfg_encode_number_precision(l: *mut lua_State) -> c_int {
    // SAFETY: as above.
    unsafe {
        arg_init(l, 1);
        let cfg: *mut Config = config(l);
        integer_option(l, 1, &raw mut (*cfg).precision, true, 1);
    }
    1
}

unsafe extern "C-unwind" fn cfg_encode_keep_buffer(l: *mut lua_State) -> c_int {
    // SAFETY: as above.
    unsafe {
        arg_init(l, 1);
        let cfg: *mut Config = config(l);
        enum_option(l, 1, &raw mut (*cfg).encode_keep_buffer, false);
    }
    1
}

unsafe extern "C-unwind" fn cfg_encode_invalid_numbers(l: *mut lua_State) -> c_int {
    // SAFETY: as above.
    unsafe {
        arg_init(l, 1);
        let cfg: *mut Config = config(l);
        enum_option(l, 1, &raw mut (*cfg).encode_invalid_numbers, true);
    }
    1
}

unsafe extern "C-unwind" fn cfg_decode_invalid_numbers(l: *mut lua_State) -> c_int {
    // SAFETY: as above.
    unsafe {
        arg_init(l, 1);
        let cfg: *mut Config = config(l);
        enum_option(l, 1, &raw mut (*cfg).decode_invalid_numbers, false);
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_like_printf_g() {
        for (n, s) in [
            (0.1 + 0.2, "0.3"),
            (2f64.powi(53), "9.007199254741e+15"),
            (-0.0, "-0"),
            (1.0, "1"),
            (1e15, "1e+15"),
            (1e14, "1e+14"),
            (123456789012345.0, "1.2345678901234e+14"),
            (-1.5e-7, "-1.5e-07"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123.456, "123.456"),
            (1e300, "1e+300"),
        ] {
            assert_eq!(format_g(n, 14), s);
        }
    }

    #[test]
    fn strtod_takes_the_longest_number() {
        assert_eq!(strtod(b"1e"), Some((1.0, 1)));
        assert_eq!(strtod(b"0x10"), Some((16.0, 4)));
        assert_eq!(strtod(b"0x"), Some((0.0, 1)));
        assert_eq!(strtod(b"0x1p4"), Some((16.0, 5)));
        assert_eq!(strtod(b"-Infinity"), Some((f64::NEG_INFINITY, 9)));
        assert_eq!(strtod(b"-"), None);
        assert_eq!(strtod(b"1.5e+3x"), Some((1500.0, 6)));
    }

    #[test]
    fn encode_and_decode_through_lua() {
        let lua = Lua::new();
        register(&lua).unwrap();
        let eval = |code: &str| lua.load(code).eval::<String>().unwrap();
        assert_eq!(eval("return cjson.encode({1, 2, nil, 4})"), "[1,2,null,4]");
        assert_eq!(
            eval("return cjson.encode(cjson.decode('{\"a\":[1,\"\\\\u00e9\",null]}'))"),
            "{\"a\":[1,\"é\",null]}"
        );
        assert_eq!(
            eval("return select(2, pcall(cjson.decode, '[1,]'))"),
            "Expected value but found T_ARR_END at character 4"
        );
        assert_eq!(eval("return tostring(cjson.decode('null') == cjson.null)"), "true");
    }
}
