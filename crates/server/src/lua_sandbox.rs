//! The scripts' sandbox: read-only globals, libraries and string metatable.
//!
//! Redis 7 patches Lua with a read-only flag on tables. Stock Lua 5.1 gets the same effect
//! with views: scripts run in an environment table that reads the real globals and refuses
//! writes; the library tables (`string`, `table`, `math`, `redis`, `cjson`, `bit`,
//! `cmsgpack`, `struct`) and the string metatable are replaced by read-only views of themselves. The
//! functions that could get past a view are replaced by C functions that behave as Lua's own
//! but know the views: `rawset` and `setmetatable` refuse them, `rawget`, `next` and `pairs`
//! look through them to the table they show, `getmetatable` shows what Redis shows.
//! `loadstring` and `load` refuse bytecode (as Redis's parser does: a chunk starting with ESC
//! is a syntax error, whether given as a string or by a reader function), `loadstring`
//! compiles into the same environment; `setfenv`/`getfenv` are gone. `unpack` counts its
//! results without the signed overflow of Lua 5.1's (`unpack({}, -2^31, 2^31 - 1)`).
//! (`load` and `unpack` as Redis fixed them: CVE-2015-4335, CVE-2025-46817.)
//!
//! The C functions follow `lbaselib.c`'s argument checks, so errors read as Redis's do; a
//! write to a protected table fails with the position-less text Redis's patched core raises.

use std::ffi::{c_char, c_int};

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table};

/// The chunk name of the sandbox's own Lua code; errors raised inside it are reported at the
/// script line that called it.
pub const SANDBOX_CHUNK: &str = "=redoubt_sandbox";

/// Makes the globals read-only and returns the environment scripts run in.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let (env, protected, shown_mt): (Table, Table, Table) = lua
        .load(
            r#"
        local real_G, raw_set, raw_get, set_mt, set_env, loadstring =
          _G, rawset, rawget, setmetatable, setfenv, loadstring
        -- protected[view] = the table the view shows (true for the real globals);
        -- shown_mt[view] = what getmetatable(view) returns (nothing for the libraries).
        local protected = set_mt({}, {__mode = "k"})
        local shown_mt = set_mt({}, {__mode = "k"})
        local function deny() error("Attempt to modify a readonly table", 2) end
        local function protect(t)
          local view = set_mt({}, {__index = t, __newindex = deny, __metatable = false})
          protected[view] = t
          return view
        end
        for _, name in ipairs({"string", "table", "math", "redis", "cjson", "bit", "cmsgpack", "struct"}) do
          raw_set(real_G, name, protect(raw_get(real_G, name)))
        end
        local smt = getmetatable("")
        smt.__index = raw_get(real_G, "string")
        smt.__metatable = protect(smt)
        local function missing(_, k)
          error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
        end
        set_mt(real_G, {__index = missing, __newindex = deny, __metatable = false})
        local env = set_mt({}, {__index = real_G, __newindex = deny, __metatable = false})
        protected[env] = real_G
        protected[real_G] = true
        shown_mt[env] = protect({__index = missing})
        raw_set(real_G, "_G", env)
        -- The syntax error Redis's parser gives a chunk called `name` that starts with ESC:
        -- Lua words it for another control character.
        local function bytecode_error(name)
          local _, e = loadstring("\1", name)
          return (e:gsub("'char%(1%)'$", "'char(27)'"))
        end
        raw_set(real_G, "loadstring", function(s, name)
          if type(s) == "string" and s:byte(1) == 27 then
            return nil, bytecode_error(name or s)
          end
          local f, e = loadstring(s, name)
          if f then set_env(f, env) end
          return f, e
        end)
        raw_set(real_G, "setfenv", nil)
        raw_set(real_G, "getfenv", nil)
        return env, protected, shown_mt
        "#,
        )
        .set_name(SANDBOX_CHUNK)
        .eval()?;
    // SAFETY: pushes the two tables and creates C closures over them on the state exec_raw
    // hands it; the closures only run as Lua functions with that state.
    unsafe {
        lua.exec_raw::<()>((protected, shown_mt), |l| {
            // Stack: 1 = protected, 2 = shown_mt.
            let functions: [(&std::ffi::CStr, ffi::lua_CFunction); 5] = [
                (c"rawset", rawset_entry),
                (c"rawget", rawget_entry),
                (c"next", next_entry),
                (c"setmetatable", setmetatable_entry),
                (c"getmetatable", getmetatable_entry),
            ];
            for (name, f) in functions {
                ffi::lua_pushvalue(l, 1);
                ffi::lua_pushvalue(l, 2);
                ffi::lua_pushcclosure(l, f, 2);
                ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, name.as_ptr());
            }
            ffi::lua_pushcfunction(l, unpack_entry);
            ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"unpack".as_ptr());
            ffi::lua_pushcfunction(l, load_entry);
            ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"load".as_ptr());
            // pairs returns the sandbox's next.
            ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"next".as_ptr());
            ffi::lua_pushcclosure(l, pairs_entry, 1);
            ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"pairs".as_ptr());
            ffi::lua_settop(l, 0);
        })?;
    }
    Ok(env)
}

/// Whether the value at `idx` is a protected table (upvalue 1 maps the protected tables).
unsafe fn is_protected(l: *mut lua_State, idx: c_int) -> bool {
    // SAFETY: a valid state inside one of the sandbox's closures.
    unsafe {
        ffi::lua_pushvalue(l, idx);
        ffi::lua_rawget(l, ffi::lua_upvalueindex(1));
        let protected = ffi::lua_type(l, -1) != ffi::LUA_TNIL;
        ffi::lua_settop(l, -2);
        protected
    }
}

/// Replaces the view at `idx` by the table it shows (other tables stay).
unsafe fn look_through(l: *mut lua_State, idx: c_int) {
    // SAFETY: a valid state inside one of the sandbox's closures.
    unsafe {
        ffi::lua_pushvalue(l, idx);
        ffi::lua_rawget(l, ffi::lua_upvalueindex(1));
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            ffi::lua_replace(l, idx);
        } else {
            ffi::lua_settop(l, -2);
        }
    }
}

/// The error Redis's patched core raises on a write to a read-only table (no position).
unsafe fn readonly_error(l: *mut lua_State) -> c_int {
    // SAFETY: a valid state; nothing owned by Rust is alive across lua_error.
    unsafe {
        ffi::lua_pushstring(l, c"Attempt to modify a readonly table".as_ptr());
        ffi::lua_error(l)
    }
}

/// `rawset(t, k, v)`.
unsafe extern "C-unwind" fn rawset_entry(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; the checks raise Lua errors (no Rust values
    // with destructors are alive).
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::luaL_checkany(l, 2);
        ffi::luaL_checkany(l, 3);
        if is_protected(l, 1) {
            return readonly_error(l);
        }
        ffi::lua_settop(l, 3);
        ffi::lua_rawset(l, 1);
        1
    }
}

/// `rawget(t, k)`, through views.
unsafe extern "C-unwind" fn rawget_entry(l: *mut lua_State) -> c_int {
    // SAFETY: as rawset_entry.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::luaL_checkany(l, 2);
        look_through(l, 1);
        ffi::lua_settop(l, 2);
        ffi::lua_rawget(l, 1);
        1
    }
}

/// `next(t [, k])`, through views.
unsafe extern "C-unwind" fn next_entry(l: *mut lua_State) -> c_int {
    // SAFETY: as rawset_entry.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        look_through(l, 1);
        ffi::lua_settop(l, 2);
        if ffi::lua_next(l, 1) != 0 {
            2
        } else {
            ffi::lua_pushnil(l);
            1
        }
    }
}

/// `pairs(t)`: the sandbox's `next` (upvalue 1), `t`, nil.
unsafe extern "C-unwind" fn pairs_entry(l: *mut lua_State) -> c_int {
    // SAFETY: as rawset_entry.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushnil(l);
        3
    }
}

/// C's `(int)` of a `lua_Integer` (Lua 5.1's `luaL_checkint`): the low 32 bits.
fn c_int_of(v: ffi::lua_Integer) -> c_int {
    v as c_int
}

/// `unpack(t [, i [, j]])` as Lua 5.1's, but counting `j - i + 1` in 64 bits: in C that
/// subtraction overflows for ranges such as `unpack({}, -2^31, 2^31 - 1)`, and an optimising
/// compiler drops the check meant to catch it, pushing past the end of the stack.
unsafe extern "C-unwind" fn unpack_entry(l: *mut lua_State) -> c_int {
    // SAFETY: as rawset_entry.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        let i = c_int_of(ffi::luaL_optinteger(l, 2, 1));
        let e = if ffi::lua_isnoneornil(l, 3) != 0 {
            ffi::lua_objlen(l, 1) as c_int
        } else {
            c_int_of(ffi::luaL_checkinteger(l, 3))
        };
        if i > e {
            return 0;
        }
        let n = i64::from(e) - i64::from(i) + 1;
        if n >= i64::from(c_int::MAX) || ffi::lua_checkstack(l, n as c_int) == 0 {
            return ffi::luaL_error(l, c"too many results to unpack".as_ptr());
        }
        for k in i..=e {
            ffi::lua_rawgeti(l, 1, k.into());
        }
        n as c_int
    }
}

/// What `load_entry`'s reader has seen.
struct Reading {
    /// No piece with bytes has been read yet.
    first: bool,
    /// The first piece was bytecode: the parser was given a stand-in character instead.
    bytecode: bool,
}

/// `load`'s reader (`generic_reader` in `lbaselib.c`): calls the function at index 1 for the
/// next piece. A first piece starting with ESC is replaced by a stand-in control character
/// and the end of the chunk, so the text parser rejects it as Redis's parser does bytecode.
unsafe extern "C-unwind" fn read_piece(
    l: *mut lua_State,
    ud: *mut std::ffi::c_void,
    size: *mut usize,
) -> *const c_char {
    // SAFETY: called by lua_load with the state and the `Reading` load_entry passed; errors
    // are raised with no Rust value alive.
    unsafe {
        let reading = &mut *(ud as *mut Reading);
        if reading.bytecode {
            *size = 0;
            return std::ptr::null();
        }
        ffi::luaL_checkstack(l, 2, c"too many nested functions".as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_call(l, 0, 1);
        if ffi::lua_isnil(l, -1) != 0 {
            *size = 0;
            return std::ptr::null();
        }
        if ffi::lua_isstring(l, -1) == 0 {
            ffi::luaL_error(l, c"reader function must return a string".as_ptr());
        }
        ffi::lua_replace(l, 3);
        let piece = ffi::lua_tolstring(l, 3, size);
        if reading.first && *size > 0 {
            reading.first = false;
            if *piece as u8 == 0x1b {
                reading.bytecode = true;
                *size = 1;
                return c"\x01".as_ptr();
            }
        }
        piece
    }
}

/// `load(reader [, name])` as Lua 5.1's, but refusing bytecode with the syntax error Redis's
/// parser gives it (`(load):1: unexpected symbol near 'char(27)'`).
unsafe extern "C-unwind" fn load_entry(l: *mut lua_State) -> c_int {
    // SAFETY: as rawset_entry; `reading` has no destructor.
    unsafe {
        let name = ffi::luaL_optlstring(l, 2, c"=(load)".as_ptr(), std::ptr::null_mut());
        ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
        ffi::lua_settop(l, 3);
        let mut reading = Reading { first: true, bytecode: false };
        if ffi::lua_load(l, read_piece, &mut reading as *mut Reading as *mut std::ffi::c_void, name) == 0 {
            return 1;
        }
        if reading.bytecode {
            // The parser's message ends with the stand-in: name the character it replaced.
            let mut len = 0;
            let msg = ffi::lua_tolstring(l, -1, &mut len) as *const u8;
            let stand_in = b"'char(1)'";
            let msg = std::slice::from_raw_parts(msg, len);
            if msg.ends_with(stand_in) {
                ffi::lua_pushlstring_(l, msg.as_ptr() as *const c_char, len - stand_in.len());
                ffi::lua_pushstring_(l, c"'char(27)'".as_ptr());
                ffi::lua_concat(l, 2);
                ffi::lua_replace(l, -2);
            }
        }
        ffi::lua_pushnil(l);
        ffi::lua_insert(l, -2);
        2
    }
}

/// `setmetatable(t, mt)`.
unsafe extern "C-unwind" fn setmetatable_entry(l: *mut lua_State) -> c_int {
    // SAFETY: as rawset_entry.
    unsafe {
        let t = ffi::lua_type(l, 2);
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        if t != ffi::LUA_TNIL && t != ffi::LUA_TTABLE {
            return ffi::luaL_argerror(l, 2, c"nil or table expected".as_ptr());
        }
        if is_protected(l, 1) {
            return readonly_error(l);
        }
        if ffi::luaL_getmetafield(l, 1, c"__metatable".as_ptr()) != 0 {
            return ffi::luaL_error(l, c"cannot change a protected metatable".as_ptr());
        }
        ffi::lua_settop(l, 2);
        ffi::lua_setmetatable(l, 1);
        1
    }
}

/// `getmetatable(v)`: for a view, what Redis shows (upvalue 2); otherwise as Lua.
unsafe extern "C-unwind" fn getmetatable_entry(l: *mut lua_State) -> c_int {
    // SAFETY: as rawset_entry.
    unsafe {
        ffi::luaL_checkany(l, 1);
        if is_protected(l, 1) {
            ffi::lua_pushvalue(l, 1);
            ffi::lua_rawget(l, ffi::lua_upvalueindex(2));
            return 1;
        }
        if ffi::lua_getmetatable(l, 1) == 0 {
            ffi::lua_pushnil(l);
            return 1;
        }
        ffi::luaL_getmetafield(l, 1, c"__metatable".as_ptr());
        1
    }
}
