//! The `bit` Lua library of Redis scripts (LuaBitOp 1.0 as Redis bundles it): 32-bit
//! operations on Lua numbers. `bit.tobit`, `tohex`, `bnot`, `band`, `bor`, `bxor`,
//! `lshift`, `rshift`, `arshift`, `rol`, `ror` and `bswap`.
//!
//! Numbers become 32-bit integers as LuaBitOp does it: adding 2^52 + 2^51 to the double and
//! keeping the low 32 bits of its mantissa, which wraps modulo 2^32 and rounds halves to
//! even. Results are signed 32-bit values (`bit.tobit(0xffffffff)` is -1). Shift counts use
//! their low 5 bits. The global `bit` is a read-only proxy, as `cjson` is.

use mlua::{Lua, MultiValue, Value, Variadic};

/// LuaBitOp's number normalisation.
fn tobit(x: f64) -> i32 {
    let biased = x + 6_755_399_441_055_744.0; // 2^52 + 2^51
    biased.to_bits() as u32 as i32
}

/// The numeric value of an argument (numbers, and strings that convert, as Lua's
/// `luaL_checknumber`).
fn num(v: &Value, pos: usize, name: &str) -> mlua::Result<f64> {
    match v {
        Value::Integer(i) => Ok(*i as f64),
        Value::Number(n) => Ok(*n),
        Value::String(s) => s.to_str().ok().and_then(|t| t.trim().parse::<f64>().ok()).ok_or_else(|| {
            mlua::Error::RuntimeError(format!("bad argument #{pos} to '{name}' (number expected, got string)"))
        }),
        other => Err(mlua::Error::RuntimeError(format!(
            "bad argument #{pos} to '{name}' (number expected, got {})",
            if matches!(other, Value::Nil) { "no value" } else { other.type_name() }
        ))),
    }
}

fn arg(args: &MultiValue, i: usize, name: &str) -> mlua::Result<i32> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    num(&v, i + 1, name).map(tobit)
}

/// `bit.tohex(x [, n])`: the low |n| hex digits (8 by default), upper case when n < 0.
fn tohex(x: i32, n: i32) -> String {
    let upper = n < 0;
    let digits = n.unsigned_abs().clamp(1, 8) as usize;
    let text = if upper { format!("{:08X}", x as u32) } else { format!("{:08x}", x as u32) };
    text[8 - digits..].to_string()
}

pub fn register(lua: &Lua) -> mlua::Result<()> {
    let bit = lua.create_table()?;
    bit.set("tobit", lua.create_function(|_, args: MultiValue| arg(&args, 0, "tobit").map(|x| x as f64))?)?;
    bit.set(
        "tohex",
        lua.create_function(|_, args: MultiValue| {
            let x = arg(&args, 0, "tohex")?;
            let n = match args.get(1) {
                None | Some(Value::Nil) => 8,
                Some(_) => arg(&args, 1, "tohex")?,
            };
            Ok(tohex(x, n))
        })?,
    )?;
    bit.set("bnot", lua.create_function(|_, args: MultiValue| Ok(!arg(&args, 0, "bnot")? as f64))?)?;
    for (name, op) in [("band", 0u8), ("bor", 1), ("bxor", 2)] {
        let f = lua.create_function(move |_, args: Variadic<Value>| {
            let args: MultiValue = args.into_iter().collect();
            let mut acc = arg(&args, 0, name)?;
            for i in 1..args.len() {
                let x = arg(&args, i, name)?;
                acc = match op {
                    0 => acc & x,
                    1 => acc | x,
                    _ => acc ^ x,
                };
            }
            Ok(acc as f64)
        })?;
        bit.set(name, f)?;
    }
    type Shift = fn(i32, u32) -> i32;
    let shifts: [(&str, Shift); 5] = [
        ("lshift", |x, n| ((x as u32) << n) as i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ];
    for (name, op) in shifts {
        let f = lua.create_function(move |_, args: MultiValue| {
            let x = arg(&args, 0, name)?;
            let n = arg(&args, 1, name)? as u32 & 31;
            Ok(op(x, n) as f64)
        })?;
        bit.set(name, f)?;
    }
    bit.set("bswap", lua.create_function(|_, args: MultiValue| Ok(arg(&args, 0, "bswap")?.swap_bytes() as f64))?)?;
    // The sandbox makes it read-only.
    lua.globals().raw_set("bit", bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_like_luabitop() {
        assert_eq!(tobit(0xffff_ffffu32 as f64), -1);
        assert_eq!(tobit(2f64.powi(32) + 5.0), 5);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2.5), 2, "halves round to even");
        assert_eq!(tobit(3.5), 4);
        assert_eq!(tohex(255, 8), "000000ff");
        assert_eq!(tohex(-1, -4), "FFFF");
        assert_eq!(tohex(0x1234_5678, 2), "78");
    }
}
