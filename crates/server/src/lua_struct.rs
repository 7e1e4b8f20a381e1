//! The `struct` Lua library of Redis scripts (Roberto Ierusalimschy's struct library as Redis 7
//! bundles it), written from its documented and observed behaviour: `struct.pack`,
//! `struct.unpack` and `struct.size`, with Redis's results and error texts.
//!
//! A format is read one option at a time (up to its first NUL byte, as a C string is):
//!
//! - `>` big endian, `<` little endian (the default, the machine's), `![n]` the largest
//!   alignment (8 without `n`; it must be a power of 2), spaces are ignored;
//! - `b`/`B` signed/unsigned char, `h`/`H` short (2 bytes), `l`/`L` long and `T` size_t
//!   (8 bytes), `i[n]`/`I[n]` an integer of `n` bytes (4 by default, at most 32);
//! - `f` float, `d` double (in the chosen byte order);
//! - `x` one zero byte of padding;
//! - `c[n]` `n` chars (1 by default): when packing, `c0` takes the whole string; when
//!   unpacking, `c0` takes as many chars as the number just unpacked (which it replaces);
//! - `s` a zero-terminated string.
//!
//! With an alignment set, an integer, float or double of size `s` starts at a multiple of
//! `min(s, alignment)` (zero bytes are inserted before it); `c`, `s` and `x` are never
//! aligned. `struct.unpack(fmt, data [, init])` starts at byte `init` (1 by default) and
//! returns the values and then the position after them. `struct.size(fmt)` is the packed size
//! of a format without `s` or `c0`; it ignores letters and digits that are not options.
//!
//! Numbers are converted as the C original's casts are on x86-64: integers wrap to their
//! size, fractions truncate toward zero, values out of the 64-bit range (and NaN) give the
//! bytes of the machine's "integer indefinite" conversions; integers wider than 8 bytes hold
//! the 64-bit value zero-extended, and unpacking them keeps their low 8 bytes.
//!
//! Errors, as Redis's: `integral size overflow` (a count past 2^31 - 1), `integral size N is
//! larger than limit of 32`, `alignment N is not a power of 2`, `format 'c0' needs a
//! previous size`, `unfinished string in data` and `stack overflow (too many results)` carry
//! the caller's position; `invalid format option 'X'`, `string too short` (numbered one past
//! the short argument, as Redis's is), `data string too short`, `offset must be 1 or
//! greater` and `option 's'/'c0' has no fixed size` are argument errors naming the function.
//! Counts are checked against the data before anything is copied, so a huge count is an
//! error, never an allocation.
//!
//! The functions are C functions working on the Lua stack directly, as `cmsgpack`'s are;
//! errors are raised only once every Rust value is dropped. The global `struct` is a
//! read-only view (see the sandbox).

use std::ffi::{c_char, c_int, CStr};

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table};

/// The widest `i`/`I` integer, in bytes.
const MAX_INT_SIZE: usize = 32;
/// The alignment `!` sets without a number (the alignment of a double).
const MAX_ALIGN: usize = 8;
/// The sizes of C's int, short, long, size_t, float and double on the servers Redis runs on.
const INT_SIZE: usize = 4;

/// Installs the global `struct` (the sandbox then makes it read-only).
pub fn register(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: `push_module` only pushes a table (and allocates) on the state exec_raw hands
    // it, inside a protected call.
    let module: Table = unsafe { lua.exec_raw((), |l| push_module(l)) }?;
    lua.globals().raw_set("struct", module)
}

/// Pushes the `struct` table.
unsafe fn push_module(l: *mut lua_State) {
    let functions: [(&CStr, ffi::lua_CFunction); 3] =
        [(c"pack", pack_entry), (c"unpack", unpack_entry), (c"size", size_entry)];
    // SAFETY: plain stack operations on a valid state.
    unsafe {
        ffi::lua_createtable(l, 0, 3);
        for (name, f) in functions {
            ffi::lua_pushcclosure(l, f, 0);
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
    Positioned(Vec<u8>),
    /// `luaL_argerror` for an argument: "bad argument #n to 'f' (text)".
    Arg(c_int, Vec<u8>),
    /// The argument is not a number: `luaL_checknumber`'s error.
    Number(c_int),
    /// The argument is not a string: `luaL_checklstring`'s error.
    Str(c_int),
}

fn positioned(msg: impl Into<Vec<u8>>) -> Failure {
    Failure::Positioned(msg.into())
}

/// Raises `failure`, as the C original's `luaL_error`/`luaL_argerror`/`luaL_check*` do.
unsafe fn raise(l: *mut lua_State, failure: Failure) -> ! {
    // SAFETY: messages are copied into Lua before they are dropped; nothing owned by Rust is
    // alive when the error unwinds. The argument checks find the arguments where they were.
    unsafe {
        match failure {
            Failure::Positioned(msg) => {
                ffi::luaL_where(l, 1);
                push_bytes(l, &msg);
                drop(msg);
                ffi::lua_concat(l, 2);
            }
            Failure::Arg(narg, msg) => {
                push_bytes(l, &msg);
                drop(msg);
                // Lua strings are NUL-terminated, and this one stays on the stack.
                let text = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
                ffi::luaL_argerror(l, narg, text);
            }
            Failure::Number(narg) => {
                ffi::luaL_checknumber(l, narg);
            }
            Failure::Str(narg) => {
                ffi::luaL_checklstring(l, narg, std::ptr::null_mut());
            }
        }
        // The checks above always raise; keep the function diverging regardless.
        ffi::lua_error(l)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Endian {
    Little,
    Big,
}

/// The options in force: byte order and largest alignment.
struct Header {
    endian: Endian,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header { endian: Endian::Little, align: 1 }
    }
}

/// A format being read.
struct Format<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Format<'a> {
    /// The format as C sees it: the bytes before the first NUL.
    fn new(all: &'a [u8]) -> Self {
        let end = all.iter().position(|&b| b == 0).unwrap_or(all.len());
        Format { bytes: &all[..end], at: 0 }
    }

    fn next_option(&mut self) -> Option<u8> {
        let opt = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(opt)
    }

    /// The decimal number at the cursor (consumed), or `default` when there is none; a C
    /// int, so past 2^31 - 1 it is an error.
    fn number(&mut self, default: usize) -> Result<usize, Failure> {
        let mut a: i32 = 0;
        let mut any = false;
        while let Some(&c) = self.bytes.get(self.at).filter(|c| c.is_ascii_digit()) {
            let digit = (c - b'0') as i32;
            if a > i32::MAX / 10 || a * 10 > i32::MAX - digit {
                return Err(positioned("integral size overflow"));
            }
            a = a * 10 + digit;
            self.at += 1;
            any = true;
        }
        Ok(if any { a as usize } else { default })
    }
}

/// The size of option `opt`, reading its count; 0 for the options that take no room.
fn option_size(opt: u8, fmt: &mut Format) -> Result<usize, Failure> {
    Ok(match opt {
        b'b' | b'B' | b'x' => 1,
        b'h' | b'H' => 2,
        b'l' | b'L' | b'T' | b'd' => 8,
        b'f' => 4,
        b'c' => fmt.number(1)?,
        b'i' | b'I' => {
            let size = fmt.number(INT_SIZE)?;
            if size > MAX_INT_SIZE {
                return Err(positioned(format!("integral size {size} is larger than limit of {MAX_INT_SIZE}")));
            }
            size
        }
        _ => 0,
    })
}

/// The zero bytes that align an option of `size` bytes at offset `len`. Sizes that are not
/// powers of 2 (`i3`) use the same mask arithmetic as the original.
fn padding(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & (size - 1)) & (size - 1)
}

/// Applies a control option (or fails on an invalid one).
fn control_option(opt: u8, fmt: &mut Format, h: &mut Header) -> Result<(), Failure> {
    match opt {
        b' ' => {}
        b'>' => h.endian = Endian::Big,
        b'<' => h.endian = Endian::Little,
        b'!' => {
            let a = fmt.number(MAX_ALIGN)?;
            if !a.is_power_of_two() {
                return Err(positioned(format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        _ => {
            let mut msg = b"invalid format option '".to_vec();
            msg.push(opt);
            msg.push(b'\'');
            return Err(Failure::Arg(1, msg));
        }
    }
    Ok(())
}

/// x86-64's `cvttsd2si`: truncation, and `i64::MIN` (the "integer indefinite") for NaN and
/// values out of range.
fn cvttsd2si(n: f64) -> i64 {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// C's conversion of a double to an unsigned 64-bit integer as compiled for x86-64: values
/// from 2^63 on are converted less 2^63 with the top bit flipped back (so 2^64 and more,
/// and +inf, give 0); everything else (NaN and negatives included) goes through
/// `cvttsd2si`.
fn to_u64(n: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n >= TWO_63 {
        cvttsd2si(n - TWO_63) as u64 ^ (1 << 63)
    } else {
        cvttsd2si(n) as u64
    }
}

/// Appends `n` as an integer of `size` bytes.
fn put_integer(out: &mut Vec<u8>, n: f64, endian: Endian, size: usize) {
    let mut value = if n < 0.0 { cvttsd2si(n) as u64 } else { to_u64(n) };
    let mut buf = [0u8; MAX_INT_SIZE];
    let bytes = &mut buf[..size];
    let mut put = |b: &mut u8| {
        *b = value as u8;
        value >>= 8;
    };
    match endian {
        Endian::Little => bytes.iter_mut().for_each(&mut put),
        Endian::Big => bytes.iter_mut().rev().for_each(&mut put),
    }
    out.extend_from_slice(bytes);
}

/// Reads an integer of `bytes.len()` bytes. Wider than 8 bytes, the last 8 read (the low
/// ones) are kept, and the sign mask is shifted as x86-64 shifts (by the count modulo 64).
fn get_integer(bytes: &[u8], endian: Endian, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let mut take = |&b: &u8| l = l << 8 | b as u64;
    match endian {
        Endian::Big => bytes.iter().for_each(&mut take),
        Endian::Little => bytes.iter().rev().for_each(&mut take),
    }
    if !signed {
        return l as f64;
    }
    let shift = ((bytes.len() as i32).wrapping_mul(8).wrapping_sub(1) as u32) & 63;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// The format at index 1 (the stack keeps it alive for the call).
unsafe fn format_arg<'a>(l: *mut lua_State) -> Format<'a> {
    // SAFETY: raises a Lua error (with nothing Rust-owned alive) if it is not a string; the
    // string then stays at index 1 until the function returns.
    unsafe {
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 1, &mut len) as *const u8;
        Format::new(std::slice::from_raw_parts(p, len))
    }
}

// --- pack ---

unsafe extern "C-unwind" fn pack_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; errors are raised with no Rust value alive.
    unsafe {
        let fmt = format_arg(l);
        // Like the original, a nil separates the arguments from what follows: a missing
        // argument is reported as nil.
        ffi::lua_pushnil(l);
        let mut out = Vec::new();
        if let Err(failure) = pack(l, fmt, &mut out) {
            drop(out);
            raise(l, failure);
        }
        crate::lua::push_owned(l, out);
        1
    }
}

/// The number at argument `arg`, converted as `luaL_checknumber` does.
unsafe fn number_arg(l: *mut lua_State, arg: c_int) -> Result<f64, Failure> {
    // SAFETY: a valid state; the index may be past the top (then it is not a number).
    unsafe {
        if ffi::lua_isnumber(l, arg) != 0 {
            Ok(ffi::lua_tonumber(l, arg))
        } else {
            Err(Failure::Number(arg))
        }
    }
}

/// The string at argument `arg` (numbers are converted in place, as `luaL_checklstring`
/// does); it stays on the stack for the rest of the call.
unsafe fn string_arg<'a>(l: *mut lua_State, arg: c_int) -> Result<&'a [u8], Failure> {
    // SAFETY: a valid state; the string lives in its stack slot until the call returns.
    unsafe {
        if ffi::lua_isstring(l, arg) == 0 {
            return Err(Failure::Str(arg));
        }
        let mut len = 0;
        let p = ffi::lua_tolstring(l, arg, &mut len) as *const u8;
        Ok(std::slice::from_raw_parts(p, len))
    }
}

unsafe fn pack(l: *mut lua_State, mut fmt: Format, out: &mut Vec<u8>) -> Result<(), Failure> {
    let mut h = Header::default();
    let mut arg: c_int = 2;
    while let Some(opt) = fmt.next_option() {
        let size = option_size(opt, &mut fmt)?;
        let pad = padding(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        // SAFETY: argument reads on a valid state.
        unsafe {
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let n = number_arg(l, arg)?;
                    arg += 1;
                    put_integer(out, n, h.endian, size);
                }
                b'x' => out.push(0),
                b'f' => {
                    let f = number_arg(l, arg)? as f32;
                    arg += 1;
                    out.extend_from_slice(&match h.endian {
                        Endian::Little => f.to_le_bytes(),
                        Endian::Big => f.to_be_bytes(),
                    });
                }
                b'd' => {
                    let d = number_arg(l, arg)?;
                    arg += 1;
                    out.extend_from_slice(&match h.endian {
                        Endian::Little => d.to_le_bytes(),
                        Endian::Big => d.to_be_bytes(),
                    });
                }
                b'c' | b's' => {
                    let s = string_arg(l, arg)?;
                    arg += 1;
                    let size = if size == 0 { s.len() } else { size };
                    if s.len() < size {
                        // The original reports the argument after the short one.
                        return Err(Failure::Arg(arg, b"string too short".to_vec()));
                    }
                    out.extend_from_slice(&s[..size]);
                    if opt == b's' {
                        out.push(0);
                    }
                }
                _ => control_option(opt, &mut fmt, &mut h)?,
            }
        }
    }
    Ok(())
}

// --- unpack ---

unsafe extern "C-unwind" fn unpack_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; argument errors unwind with no Rust value
    // alive, the others are raised after every Rust value is dropped.
    unsafe {
        let fmt = format_arg(l);
        let mut len = 0;
        let p = ffi::luaL_checklstring(l, 2, &mut len) as *const u8;
        let data = std::slice::from_raw_parts(p, len);
        // An unsigned offset: only 0 is refused here, negative ones are too far.
        let init = ffi::luaL_optinteger(l, 3, 1) as usize;
        if init == 0 {
            ffi::luaL_argerror(l, 3, c"offset must be 1 or greater".as_ptr());
        }
        let top = ffi::lua_gettop(l);
        match unpack(l, fmt, data, init - 1) {
            Ok((count, pos)) => {
                ffi::lua_pushinteger(l, pos.wrapping_add(1) as ffi::lua_Integer);
                count + 1
            }
            Err(failure) => {
                ffi::lua_settop(l, top);
                raise(l, failure)
            }
        }
    }
}

fn data_too_short() -> Failure {
    Failure::Arg(2, b"data string too short".to_vec())
}

/// Whether `size` bytes from `pos` are inside `len` bytes.
fn fits(pos: usize, size: usize, len: usize) -> bool {
    size <= len && pos <= len - size
}

/// Pushes the values of `data` from `pos`; returns how many and the position after them.
unsafe fn unpack(l: *mut lua_State, mut fmt: Format, data: &[u8], mut pos: usize) -> Result<(c_int, usize), Failure> {
    let mut h = Header::default();
    let mut count: c_int = 0;
    while let Some(opt) = fmt.next_option() {
        let mut size = option_size(opt, &mut fmt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if !fits(pos, size, data.len()) {
            return Err(data_too_short());
        }
        // SAFETY: pushes on a valid state, each covered by the check just below.
        unsafe {
            if ffi::lua_checkstack(l, 2) == 0 {
                return Err(positioned("stack overflow (too many results)"));
            }
            match opt {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let signed = opt.is_ascii_lowercase();
                    ffi::lua_pushnumber(l, get_integer(&data[pos..pos + size], h.endian, signed));
                    count += 1;
                }
                b'x' => {}
                b'f' => {
                    let b: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or_default();
                    let f = match h.endian {
                        Endian::Little => f32::from_le_bytes(b),
                        Endian::Big => f32::from_be_bytes(b),
                    };
                    ffi::lua_pushnumber(l, f as f64);
                    count += 1;
                }
                b'd' => {
                    let b: [u8; 8] = data[pos..pos + 8].try_into().unwrap_or_default();
                    let d = match h.endian {
                        Endian::Little => f64::from_le_bytes(b),
                        Endian::Big => f64::from_be_bytes(b),
                    };
                    ffi::lua_pushnumber(l, d);
                    count += 1;
                }
                b'c' => {
                    if size == 0 {
                        // The length is the value just unpacked, which it replaces.
                        if count == 0 || ffi::lua_isnumber(l, -1) == 0 {
                            return Err(positioned("format 'c0' needs a previous size"));
                        }
                        size = to_u64(ffi::lua_tonumber(l, -1)) as usize;
                        ffi::lua_settop(l, -2);
                        count -= 1;
                        if !fits(pos, size, data.len()) {
                            return Err(data_too_short());
                        }
                    }
                    push_bytes(l, &data[pos..pos + size]);
                    count += 1;
                }
                b's' => {
                    let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                        return Err(positioned("unfinished string in data"));
                    };
                    push_bytes(l, &data[pos..pos + end]);
                    size = end + 1;
                    count += 1;
                }
                _ => control_option(opt, &mut fmt, &mut h)?,
            }
        }
        pos = pos.wrapping_add(size);
    }
    Ok((count, pos))
}

// --- size ---

unsafe extern "C-unwind" fn size_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; errors are raised with no Rust value alive.
    unsafe {
        let fmt = format_arg(l);
        match size(fmt) {
            Ok(n) => {
                ffi::lua_pushinteger(l, n as ffi::lua_Integer);
                1
            }
            Err(failure) => raise(l, failure),
        }
    }
}

fn size(mut fmt: Format) -> Result<usize, Failure> {
    let mut h = Header::default();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next_option() {
        let size = option_size(opt, &mut fmt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if opt == b's' {
            return Err(Failure::Arg(1, b"option 's' has no fixed size".to_vec()));
        }
        if opt == b'c' && size == 0 {
            return Err(Failure::Arg(1, b"option 'c0' has no fixed size".to_vec()));
        }
        // Letters and digits that are not options take no room and are not errors here.
        if !opt.is_ascii_alphanumeric() {
            control_option(opt, &mut fmt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_the_c_casts() {
        assert_eq!(to_u64(2f64.powi(63)), 1 << 63);
        assert_eq!(to_u64(2f64.powi(64)), 0);
        assert_eq!(to_u64(f64::INFINITY), 0);
        assert_eq!(to_u64(f64::NAN), 1 << 63);
        assert_eq!(to_u64(-1.0), u64::MAX);
        assert_eq!(to_u64(2.9), 2);
        let mut v = Vec::new();
        put_integer(&mut v, -1.0, Endian::Big, 9);
        assert_eq!(v, [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(get_integer(&[0xff; 9], Endian::Little, true), -1.0);
        assert_eq!(get_integer(&[1, 2, 3, 4, 5, 6, 7, 8, 0xff], Endian::Big, true), -1.0);
        assert_eq!(get_integer(&[0x80, 0], Endian::Little, true), 128.0);
        assert_eq!(get_integer(&[0, 0x80], Endian::Little, true), -32768.0);
        assert_eq!(get_integer(&[], Endian::Little, true), 0.0);
    }

    #[test]
    fn alignment_and_sizes() {
        let h = Header { endian: Endian::Little, align: 8 };
        assert_eq!(padding(1, &h, b'i', 4), 3);
        assert_eq!(padding(1, &h, b'i', 3), 2);
        assert_eq!(padding(2, &h, b'i', 3), 0);
        assert_eq!(padding(1, &h, b'c', 5), 0);
        let sz = |f: &str| size(Format::new(f.as_bytes())).ok();
        assert_eq!(sz("!bhilTfdxc5"), Some(46));
        assert_eq!(sz("bhilTfdxc5"), Some(41));
        assert_eq!(sz("zz"), Some(0));
        assert_eq!(sz("s"), None);
    }

    #[test]
    fn pack_and_unpack_through_lua() {
        let lua = Lua::new();
        register(&lua).unwrap();
        let eval = |code: &str| lua.load(code).eval::<mlua::String>().unwrap().as_bytes().to_vec();
        assert_eq!(eval("return struct.pack('>hs', 258, 'ab')"), b"\x01\x02ab\x00");
        assert_eq!(eval("return table.concat({struct.unpack('<hbc0', '\\2\\0\\3xyzw')}, ',')"), b"2,xyz,7");
        assert_eq!(eval("return select(2, pcall(struct.unpack, 'c0', 'x'))"), b"format 'c0' needs a previous size");
        assert_eq!(
            eval("return select(2, pcall(struct.unpack, 'c999999999', 'x'))"),
            b"bad argument #2 to '?' (data string too short)"
        );
    }
}
