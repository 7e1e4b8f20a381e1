//! Argument parsing helpers shared by command parsers, with Redis's error texts.

use crate::error::{CmdError, CmdResult, NOT_INTEGER};
use resp::decode::parse_i64;

/// Parses an i64 with Redis's strict rules, or `ERR value is not an integer or out of range`.
pub fn int(arg: &[u8]) -> CmdResult<i64> {
    parse_i64(arg).ok_or(NOT_INTEGER)
}

/// Parses an i64 with a custom error text.
pub fn int_or(arg: &[u8], err: CmdError) -> CmdResult<i64> {
    parse_i64(arg).ok_or(err)
}

/// Whether `arg` equals `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// An argument as text for error messages (lossy UTF-8).
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Parses an integer within `[min, max]` (Redis's `getRangeLongFromObjectOrReply`): a
/// non-integer gets the usual error; an out-of-range one gets `msg` or Redis's range text.
pub fn int_in(arg: &[u8], min: i64, max: i64, msg: Option<&'static str>) -> CmdResult<i64> {
    let v = match (parse_i64(arg), msg) {
        (Some(v), _) => v,
        (None, Some(m)) => return Err(CmdError::fixed(m)),
        (None, None) => return Err(NOT_INTEGER),
    };
    if v < min || v > max {
        return Err(match msg {
            Some(m) => CmdError::fixed(m),
            None => CmdError::new(format!("ERR value is out of range, value must between {min} and {max}")),
        });
    }
    Ok(v)
}

/// Parses a C `int` argument (Redis's `getIntFromObjectOrReply`).
pub fn c_int(arg: &[u8], msg: Option<&'static str>) -> CmdResult<i64> {
    int_in(arg, i32::MIN as i64, i32::MAX as i64, msg)
}

/// Parses a SCAN cursor as C's `strtoull` does for Redis: optional sign, decimal digits,
/// no leading space, no trailing bytes, no overflow (a '-' wraps, as in C).
pub fn scan_cursor(arg: &[u8]) -> CmdResult<u64> {
    let invalid = CmdError::fixed("ERR invalid cursor");
    if arg.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid);
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v.checked_mul(10).and_then(|v| v.checked_add((d - b'0') as u64)).ok_or(invalid.clone())?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}
