//! The `cmsgpack` Lua library of Redis scripts (lua-cmsgpack 0.4.0 as Redis 7 bundles it),
//! written from its observed behaviour and the MessagePack specification.
//!
//! `cmsgpack.pack`, `cmsgpack.unpack`, `cmsgpack.unpack_one`, `cmsgpack.unpack_limit` and the
//! `_NAME`, `_VERSION`, `_COPYRIGHT`, `_DESCRIPTION` fields, with Redis's results and error
//! texts:
//!
//! - pack: the concatenated encodings of its arguments. Strings are MessagePack str (fixstr,
//!   str8/16/32); a number that is an integer in the int64 range (`-0` included) is the
//!   smallest positive or negative int, any other number a float32 when the conversion is
//!   exact (infinities too), else a float64; booleans; nil and every other type is nil. A
//!   table whose keys are exactly `1..n` (the empty table included) is an array, any other a
//!   map (its keys and values encoded in Lua's traversal order); tables nested 16 deep are
//!   encoded as nil.
//! - unpack: every object of the string, returned as multiple values; str becomes a string,
//!   ints and floats numbers (uint64 is read as signed: 2^64 - 1 is -1), arrays tables
//!   indexed from 1 (a nil element leaves a hole), maps tables (a nil or NaN key is Lua's
//!   "table index is nil/NaN" error); bin and ext types and 0xc1 are "Bad data format in
//!   input.", truncated input (or a declared length past the end, which is never allocated
//!   for) "Missing bytes in input.".
//! - unpack_one(s [, offset]) and unpack_limit(s, limit [, offset]) decode at most one /
//!   `limit` objects from `offset` and return the offset after them (-1 at the end of the
//!   input) before the values; `limit` and `offset` both 0 decode everything and return no
//!   offset. Negative values and offsets past the end are errors whose texts print the low 32
//!   bits of the offset and of the input length (not the limit), as Redis's do.
//! - The Lua stack is limited as in Redis (8000 slots for the values of one call), with the
//!   same "stack overflow (...)" errors for too many values or too deep nesting.
//!
//! The functions are C functions working on the Lua stack directly (not mlua callbacks), for
//! the same reasons as `cjson`'s: errors are plain Lua strings with the caller's position
//! (`user_script:1: ...`, or none under `pcall`), argument errors name the function, and
//! numbers keep their sign. Errors are raised only from the outermost frame, once every Rust
//! value is dropped; the decoder is iterative, so deep input cannot exhaust the native stack.
//!
//! Differences from Redis: the global `cmsgpack` is a read-only proxy (writes fail with
//! Redis's "Attempt to modify a readonly table"), so `pairs(cmsgpack)` sees nothing and
//! `rawset(cmsgpack, k, v)` writes to the proxy instead of failing; map keys are written in
//! Lua's table order, which matches Redis's for tables built the same way.

use std::ffi::{c_char, c_int, CStr};

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table};

/// Tables nested this deep are encoded as nil (LUACMSGPACK_MAX_NESTING).
const MAX_NESTING: usize = 16;

/// Installs the global `cmsgpack` (the sandbox then makes it read-only).
pub fn register(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: `push_module` only pushes a table (and allocates) on the state exec_raw hands
    // it, inside a protected call.
    let module: Table = unsafe { lua.exec_raw((), |l| push_module(l)) }?;
    lua.globals().raw_set("cmsgpack", module)
}

/// Pushes the `cmsgpack` table.
unsafe fn push_module(l: *mut lua_State) {
    let functions: [(&CStr, ffi::lua_CFunction); 4] = [
        (c"pack", pack_entry),
        (c"unpack", unpack_entry),
        (c"unpack_one", unpack_one_entry),
        (c"unpack_limit", unpack_limit_entry),
    ];
    let fields: [(&CStr, &CStr); 4] = [
        (c"_NAME", c"cmsgpack"),
        (c"_VERSION", c"lua-cmsgpack 0.4.0"),
        (c"_COPYRIGHT", c"Copyright (C) 2012, Salvatore Sanfilippo"),
        (c"_DESCRIPTION", c"MessagePack C implementation for Lua"),
    ];
    // SAFETY: plain stack operations on a valid state.
    unsafe {
        ffi::lua_createtable(l, 0, 8);
        for (name, f) in functions {
            ffi::lua_pushcclosure(l, f, 0);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        for (name, value) in fields {
            ffi::lua_pushstring_(l, value.as_ptr());
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
}

unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    // SAFETY: `b` is valid for its length.
    unsafe { ffi::lua_pushlstring_(l, b.as_ptr() as *const c_char, b.len()) }
}

/// An error to raise once the Rust values are dropped.
enum Failure {
    /// `luaL_error`: the caller's position, then the text.
    Positioned(String),
    /// A Lua runtime error raised inside a C function: the text alone.
    Plain(&'static str),
}

/// `luaL_checkstack`'s error for `what`.
fn stack_overflow(what: &str) -> Failure {
    Failure::Positioned(format!("stack overflow ({what})"))
}

/// Raises `failure`, as `luaL_error` (or the Lua core) does.
unsafe fn raise(l: *mut lua_State, failure: Failure) -> ! {
    // SAFETY: the message is copied into Lua before it is dropped; nothing owned by Rust is
    // alive when lua_error unwinds.
    unsafe {
        ffi::lua_settop(l, 0);
        match failure {
            Failure::Positioned(msg) => {
                ffi::luaL_where(l, 1);
                push_bytes(l, msg.as_bytes());
                drop(msg);
                ffi::lua_concat(l, 2);
            }
            Failure::Plain(msg) => push_bytes(l, msg.as_bytes()),
        }
        ffi::lua_error(l)
    }
}

/// Reserves `n` more stack slots, or fails as `luaL_checkstack(l, n, what)` does.
unsafe fn reserve(l: *mut lua_State, n: c_int, what: &str) -> Result<(), Failure> {
    // SAFETY: a valid state.
    if unsafe { ffi::lua_checkstack(l, n) } != 0 {
        Ok(())
    } else {
        Err(stack_overflow(what))
    }
}

// --- Encoding ---

unsafe extern "C-unwind" fn pack_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; errors are raised with no Rust value alive.
    unsafe {
        let nargs = ffi::lua_gettop(l);
        if nargs == 0 {
            ffi::luaL_argerror(l, 0, c"MessagePack pack needs input.".as_ptr());
        }
        if ffi::lua_checkstack(l, nargs) == 0 {
            ffi::luaL_argerror(l, 0, c"Too many arguments for MessagePack pack.".as_ptr());
        }
        let mut buf = Vec::new();
        for i in 1..=nargs {
            let step = reserve(l, 1, "in function mp_check").and_then(|()| {
                ffi::lua_pushvalue(l, i);
                encode_value(l, 0, &mut buf)
            });
            if let Err(failure) = step {
                drop(buf);
                raise(l, failure);
            }
            crate::lua::push_owned(l, std::mem::take(&mut buf));
        }
        ffi::lua_concat(l, nargs);
        1
    }
}

/// Appends the value on top of the stack and pops it.
unsafe fn encode_value(l: *mut lua_State, level: usize, out: &mut Vec<u8>) -> Result<(), Failure> {
    crate::lua::library_may_grow(out.len()).map_err(Failure::Plain)?;
    // SAFETY: raw accesses to the value on top of a valid stack; every push is balanced.
    unsafe {
        let mut t = ffi::lua_type(l, -1);
        if t == ffi::LUA_TTABLE && level == MAX_NESTING {
            t = ffi::LUA_TNIL;
        }
        match t {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(l, -1, &mut len) as *const u8;
                crate::lua::library_reserve(out, len + 5).map_err(Failure::Plain)?;
                encode_str(std::slice::from_raw_parts(p, len), out);
            }
            ffi::LUA_TBOOLEAN => out.push(if ffi::lua_toboolean(l, -1) != 0 { 0xc3 } else { 0xc2 }),
            ffi::LUA_TNUMBER => encode_number(ffi::lua_tonumber(l, -1), out),
            ffi::LUA_TTABLE => encode_table(l, level, out)?,
            _ => out.push(0xc0),
        }
        ffi::lua_settop(l, -2);
    }
    Ok(())
}

fn encode_str(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    // An integer C's (int64_t) conversion gives back exactly: -0 is 0, 2^63 is not.
    if n.is_finite() && n.trunc() == n && (i64::MIN as f64..-(i64::MIN as f64)).contains(&n) {
        encode_int(n as i64, out);
    } else if (n as f32) as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 0x7f {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_header(len: usize, fix: u8, wide16: u8, out: &mut Vec<u8>) {
    if len <= 15 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(wide16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(wide16 + 1);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends the table on top of the stack (left there).
unsafe fn encode_table(l: *mut lua_State, level: usize, out: &mut Vec<u8>) -> Result<(), Failure> {
    // SAFETY: raw traversals of the table on top of a valid stack, balanced.
    unsafe {
        if is_array(l)? {
            let len = ffi::lua_objlen(l, -1);
            encode_header(len, 0x90, 0xdc, out);
            reserve(l, 1, "in function mp_encode_lua_table_as_array")?;
            for i in 1..=len {
                ffi::lua_rawgeti_(l, -1, i as _);
                encode_value(l, level + 1, out)?;
            }
        } else {
            reserve(l, 3, "in function mp_encode_lua_table_as_map")?;
            let mut len = 0usize;
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                ffi::lua_settop(l, -2);
                len += 1;
            }
            encode_header(len, 0x80, 0xde, out);
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                ffi::lua_pushvalue(l, -2);
                encode_value(l, level + 1, out)?;
                encode_value(l, level + 1, out)?;
            }
        }
    }
    Ok(())
}

/// lua-cmsgpack's array test for the table on top of the stack: every key a number that is
/// a positive C int, and as many keys as the largest one (the empty table included).
unsafe fn is_array(l: *mut lua_State) -> Result<bool, Failure> {
    let mut max: i64 = 0;
    let mut count: i64 = 0;
    // SAFETY: a raw traversal of the table on top of a valid stack, balanced.
    unsafe {
        reserve(l, 2, "in function table_is_an_array")?;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, -2) != 0 {
            ffi::lua_settop(l, -2);
            let k = if ffi::lua_type(l, -1) == ffi::LUA_TNUMBER { ffi::lua_tonumber(l, -1) } else { 0.0 };
            if !(k > 0.0 && k.trunc() == k && k < 2147483648.0) {
                ffi::lua_settop(l, -2);
                return Ok(false);
            }
            max = max.max(k as i64);
            count += 1;
        }
    }
    Ok(max == count)
}

// --- Decoding ---

unsafe extern "C-unwind" fn unpack_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state.
    unsafe { unpack_full(l, 0, 0) }
}

unsafe extern "C-unwind" fn unpack_one_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; argument errors unwind with no Rust value
    // alive.
    unsafe {
        let offset = ffi::luaL_optinteger(l, 2, 0) as i64;
        keep_first_argument(l);
        unpack_full(l, 1, offset)
    }
}

unsafe extern "C-unwind" fn unpack_limit_entry(l: *mut lua_State) -> c_int {
    // SAFETY: as above.
    unsafe {
        let limit = ffi::luaL_checkinteger(l, 2) as i64;
        let offset = ffi::luaL_optinteger(l, 3, 0) as i64;
        keep_first_argument(l);
        unpack_full(l, limit, offset)
    }
}

/// Drops the arguments after the first; with none, the string check then finds no value.
unsafe fn keep_first_argument(l: *mut lua_State) {
    // SAFETY: a valid state.
    unsafe {
        if ffi::lua_gettop(l) > 1 {
            ffi::lua_settop(l, 1);
        }
    }
}

/// Decodes up to `limit` objects (all of them when `limit` and `offset` are 0) of the string
/// at index 1 from `offset`, pushing them (after the next offset unless decoding all).
unsafe fn unpack_full(l: *mut lua_State, limit: i64, offset: i64) -> c_int {
    // SAFETY: the input string stays at index 1 while it is borrowed; errors are raised with
    // no Rust value alive.
    unsafe {
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 1, &mut len) as *const u8;
        // `%d` of the C original prints the low 32 bits of these 64-bit values.
        if offset < 0 || limit < 0 {
            raise(
                l,
                Failure::Positioned(format!(
                    "Invalid request to unpack with offset of {} and limit of {}.",
                    offset as i32, len as i32
                )),
            );
        }
        if offset as u64 > len as u64 {
            raise(
                l,
                Failure::Positioned(format!(
                    "Start offset {} greater than input length {}.",
                    offset as i32, len as i32
                )),
            );
        }
        let decode_all = limit == 0 && offset == 0;
        let limit = if decode_all { i64::MAX } else { limit };
        let input = std::slice::from_raw_parts(p, len);
        let mut decoder = Decoder { l, input, pos: offset as usize, frames: Vec::new() };
        let mut count: c_int = 0;
        while decoder.pos < input.len() && (count as i64) < limit {
            if let Err(failure) = decoder.value() {
                drop(decoder);
                raise(l, failure);
            }
            count += 1;
        }
        let pos = decoder.pos;
        drop(decoder);
        if !decode_all {
            let next = if pos == len { -1 } else { pos as ffi::lua_Integer };
            ffi::lua_pushinteger(l, next);
            ffi::lua_insert(l, 2);
            count += 1;
        }
        count
    }
}

/// A table being filled.
enum Frame {
    /// Elements left; the next index; whether an element is being decoded.
    Array { left: u64, index: f64, pending: bool },
    /// Pairs left; what is being decoded.
    Map { left: u64, state: MapState },
}

#[derive(Clone, Copy, PartialEq)]
enum MapState {
    Between,
    Key,
    Value,
}

struct Decoder<'a> {
    l: *mut lua_State,
    input: &'a [u8],
    pos: usize,
    frames: Vec<Frame>,
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";
const TOO_MANY: &str = "too many return values at once; use unpack_one or unpack_limit instead.";

impl Decoder<'_> {
    /// The `n` bytes at the cursor, consumed.
    fn take(&mut self, n: usize) -> Result<&[u8], Failure> {
        if self.input.len() - self.pos < n {
            return Err(Failure::Positioned(MISSING.into()));
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The big-endian unsigned integer of `n` bytes after the type byte, both consumed.
    fn header(&mut self, n: usize) -> Result<u64, Failure> {
        let b = self.take(1 + n)?;
        Ok(b[1..].iter().fold(0u64, |acc, &x| acc << 8 | x as u64))
    }

    /// Pushes one complete object.
    fn value(&mut self) -> Result<(), Failure> {
        let l = self.l;
        loop {
            self.item()?;
            // Store completed values into their tables, and start the next element.
            loop {
                // SAFETY: the tables being filled are on the stack below their pending
                // key and value; pushes are covered by the checks in item().
                unsafe {
                    match self.frames.last_mut() {
                        None => return Ok(()),
                        Some(Frame::Array { left, index, pending }) => {
                            if *pending {
                                ffi::lua_rawset(l, -3);
                                *pending = false;
                            }
                            if *left == 0 {
                                self.frames.pop();
                                continue;
                            }
                            *left -= 1;
                            ffi::lua_pushnumber(l, *index);
                            *index += 1.0;
                            *pending = true;
                            break;
                        }
                        Some(Frame::Map { left, state }) => match *state {
                            MapState::Between => {
                                if *left == 0 {
                                    self.frames.pop();
                                    continue;
                                }
                                *left -= 1;
                                *state = MapState::Key;
                                break;
                            }
                            MapState::Key => {
                                *state = MapState::Value;
                                break;
                            }
                            MapState::Value => {
                                match ffi::lua_type(l, -2) {
                                    ffi::LUA_TNIL => return Err(Failure::Plain("table index is nil")),
                                    ffi::LUA_TNUMBER if ffi::lua_tonumber(l, -2).is_nan() => {
                                        return Err(Failure::Plain("table index is NaN"))
                                    }
                                    _ => {}
                                }
                                ffi::lua_rawset(l, -3);
                                *state = MapState::Between;
                            }
                        },
                    }
                }
            }
        }
    }

    /// Pushes the scalar at the cursor, or a new table (and its frame) for an array or map.
    fn item(&mut self) -> Result<(), Failure> {
        let l = self.l;
        let Some(&tag) = self.input.get(self.pos) else {
            return Err(Failure::Positioned(MISSING.into()));
        };
        // SAFETY: a valid state; one slot is reserved for the value pushed here, one more for
        // an array's index.
        unsafe {
            reserve(l, 1, TOO_MANY)?;
            match tag {
                0x00..=0x7f => {
                    self.pos += 1;
                    ffi::lua_pushnumber(l, tag as f64);
                }
                0xe0..=0xff => {
                    self.pos += 1;
                    ffi::lua_pushnumber(l, tag as i8 as f64);
                }
                0xc0 => {
                    self.pos += 1;
                    ffi::lua_pushnil(l);
                }
                0xc2 | 0xc3 => {
                    self.pos += 1;
                    ffi::lua_pushboolean(l, (tag == 0xc3) as c_int);
                }
                0xcc..=0xce => {
                    let n = self.header(1 << (tag - 0xcc))?;
                    ffi::lua_pushnumber(l, n as f64);
                }
                0xcf => {
                    // Read as a signed integer, as Redis's version does: 2^64 - 1 is -1.
                    let n = self.header(8)?;
                    ffi::lua_pushnumber(l, n as i64 as f64);
                }
                0xd0..=0xd3 => {
                    let bytes = 1usize << (tag - 0xd0);
                    let n = self.header(bytes)?;
                    let shift = 64 - 8 * bytes as u32;
                    ffi::lua_pushnumber(l, ((n << shift) as i64 >> shift) as f64);
                }
                0xca => {
                    let n = self.header(4)?;
                    ffi::lua_pushnumber(l, f32::from_bits(n as u32) as f64);
                }
                0xcb => {
                    let n = self.header(8)?;
                    ffi::lua_pushnumber(l, f64::from_bits(n));
                }
                0xa0..=0xbf | 0xd9..=0xdb => {
                    let n = match tag {
                        0xa0..=0xbf => {
                            self.pos += 1;
                            (tag & 0x1f) as u64
                        }
                        _ => self.header(1 << (tag - 0xd9))?,
                    };
                    let s = self.take(n as usize)?;
                    push_bytes(l, s);
                }
                0x90..=0x9f | 0xdc | 0xdd => {
                    let left = match tag {
                        0xdc => self.header(2)?,
                        0xdd => self.header(4)?,
                        _ => {
                            self.pos += 1;
                            (tag & 0x0f) as u64
                        }
                    };
                    ffi::lua_createtable(l, 0, 0);
                    reserve(l, 1, "in function mp_decode_to_lua_array")?;
                    self.frames.push(Frame::Array { left, index: 1.0, pending: false });
                }
                0x80..=0x8f | 0xde | 0xdf => {
                    let left = match tag {
                        0xde => self.header(2)?,
                        0xdf => self.header(4)?,
                        _ => {
                            self.pos += 1;
                            (tag & 0x0f) as u64
                        }
                    };
                    ffi::lua_createtable(l, 0, 0);
                    self.frames.push(Frame::Map { left, state: MapState::Between });
                }
                _ => return Err(Failure::Positioned(BAD.into())),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_pick_the_smallest_encoding() {
        let enc = |n: f64| {
            let mut v = Vec::new();
            encode_number(n, &mut v);
            v
        };
        assert_eq!(enc(127.0), [0x7f]);
        assert_eq!(enc(128.0), [0xcc, 0x80]);
        assert_eq!(enc(-32.0), [0xe0]);
        assert_eq!(enc(-33.0), [0xd0, 0xdf]);
        assert_eq!(enc(-0.0), [0x00]);
        assert_eq!(enc(0.5), [0xca, 0x3f, 0, 0, 0]);
        assert_eq!(enc(2f64.powi(63)), [0xca, 0x5f, 0, 0, 0]);
        assert_eq!(enc(-(2f64.powi(63))), [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(enc(0.1)[0], 0xcb);
    }

    #[test]
    fn pack_and_unpack_through_lua() {
        let lua = Lua::new();
        register(&lua).unwrap();
        let eval = |code: &str| lua.load(code).eval::<mlua::String>().unwrap().as_bytes().to_vec();
        assert_eq!(eval("return cmsgpack.pack({1, 2, 3}, 'a', nil)"), b"\x93\x01\x02\x03\xa1a\xc0");
        assert_eq!(eval("return cmsgpack.unpack(cmsgpack.pack({a = {'x'}})).a[1]"), b"x");
        assert_eq!(eval("return select(2, pcall(cmsgpack.unpack, '\\217'))"), b"Missing bytes in input.");
        assert_eq!(eval("return table.concat({cmsgpack.unpack_limit('\\1\\2\\3', 2, 0)}, ',')"), b"2,1,2");
    }
}
