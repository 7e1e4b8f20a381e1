//! The bit commands' argument parsers and algorithms: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD and BITFIELD_RO. Pure functions over the string value's bytes; the handlers do the
//! key lookups, type checks, storing and notifications.
//!
//! Bit numbering is Redis's: bit 0 is the most significant bit of byte 0.
//!
//! Order of checks, as Redis 7.0/7.2 do them (the handler must follow it to return the same
//! error when several things are wrong):
//! * SETBIT: [`parse_bit_offset`], [`parse_bit_value`], then the key (WRONGTYPE).
//! * GETBIT: [`parse_bit_offset`], then the key (missing -> `:0`, WRONGTYPE).
//! * BITCOUNT: the key first (missing -> `:0` whatever the arguments, WRONGTYPE), then
//!   [`BitCountArgs::parse`].
//! * BITPOS: [`parse_bitpos_bit`], then the key (missing -> [`bitpos`] with `None`, whatever
//!   the other arguments; WRONGTYPE), then [`BitPosArgs::parse`].
//! * BITOP: [`BitOp::parse`], then the source keys in order (WRONGTYPE), see [`bitop`].
//! * BITFIELD / BITFIELD_RO: [`BitfieldOps::parse`] (including the BITFIELD_RO write error),
//!   then the key, see [`BitfieldOps`].

use resp::ReplyBuf;

use crate::error::{CmdError, CmdResult, BIT_OFFSET, BIT_VALUE, NOT_INTEGER, SYNTAX};
use crate::numfmt::parse_i64;

/// Redis's default `proto-max-bulk-len` (512MB): bit offsets must stay below 8 times this.
pub const DEFAULT_PROTO_MAX_BULK_LEN: i64 = 512 * 1024 * 1024;

/// BITPOS with a bit other than 0 or 1.
pub const BITPOS_BIT: CmdError = CmdError::fixed("ERR The bit argument must be 1 or 0.");
/// BITOP NOT with more or fewer than one source key.
pub const BITOP_NOT_ONE_KEY: CmdError = CmdError::fixed("ERR BITOP NOT must be called with a single source key.");
/// BITFIELD with a bad type.
pub const BITFIELD_TYPE: CmdError =
    CmdError::fixed("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
/// BITFIELD OVERFLOW with something other than WRAP, SAT or FAIL.
pub const BITFIELD_OVERFLOW: CmdError = CmdError::fixed("ERR Invalid OVERFLOW type specified");
/// BITFIELD_RO with SET or INCRBY.
pub const BITFIELD_RO_WRITE: CmdError = CmdError::fixed("ERR BITFIELD_RO only supports the GET subcommand");

// ------------------------------------------------------------------------------------------
// Offsets, SETBIT, GETBIT
// ------------------------------------------------------------------------------------------

/// A bit offset (`getBitOffsetFromArgument`), with `#N` meaning `N * bits` when `hash_bits` is
/// given (BITFIELD). The `#` product wraps around like Redis's C arithmetic.
fn offset_from_arg(arg: &[u8], hash_bits: Option<u32>, proto_max_bulk_len: i64) -> CmdResult<u64> {
    let (hash, digits) = match (arg.split_first(), hash_bits) {
        (Some((b'#', rest)), Some(bits)) => (Some(bits), rest),
        _ => (None, arg),
    };
    let mut v = parse_i64(digits).ok_or(BIT_OFFSET)?;
    if let Some(bits) = hash {
        v = v.wrapping_mul(i64::from(bits));
    }
    if v < 0 || (v >> 3) >= proto_max_bulk_len {
        return Err(BIT_OFFSET);
    }
    Ok(v as u64)
}

/// SETBIT/GETBIT's offset with the default `proto-max-bulk-len`: an integer in
/// `0..=4294967295` (strict [`parse_i64`] syntax), else
/// `ERR bit offset is not an integer or out of range`.
pub fn parse_bit_offset(arg: &[u8]) -> CmdResult<u64> {
    parse_bit_offset_with_limit(arg, DEFAULT_PROTO_MAX_BULK_LEN)
}

/// [`parse_bit_offset`] for a configured `proto-max-bulk-len`: the offset must satisfy
/// `offset / 8 < proto_max_bulk_len`. (Redis skips this limit for the master link and AOF
/// loading; a handler replaying those can pass `i64::MAX`.)
pub fn parse_bit_offset_with_limit(arg: &[u8], proto_max_bulk_len: i64) -> CmdResult<u64> {
    offset_from_arg(arg, None, proto_max_bulk_len)
}

/// SETBIT's value: exactly `0` or `1` (strict integer syntax), else
/// `ERR bit is not an integer or out of range`.
pub fn parse_bit_value(arg: &[u8]) -> CmdResult<bool> {
    match parse_i64(arg) {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(BIT_VALUE),
    }
}

/// GETBIT: the bit at `offset` (0 past the end of the string).
pub fn getbit(value: &[u8], offset: u64) -> u8 {
    let Ok(byte) = usize::try_from(offset >> 3) else {
        return 0;
    };
    value.get(byte).map_or(0, |&b| (b >> (7 - (offset & 7))) & 1)
}

/// The string length SETBIT at `offset` needs (the value grows to at least this, with zero
/// bytes).
pub fn setbit_len(offset: u64) -> u64 {
    (offset >> 3) + 1
}

/// SETBIT: sets the bit at `offset`, growing `value` with zero bytes as needed, and returns
/// the previous bit (the reply). Redis 7.2 treats the key as modified (signal, `setbit` event,
/// dirty) only when the string grew or the bit changed.
pub fn setbit(value: &mut Vec<u8>, offset: u64, on: bool) -> u8 {
    let Ok(byte) = usize::try_from(offset >> 3) else {
        return 0;
    };
    if value.len() <= byte {
        value.resize(byte + 1, 0);
    }
    let mask = 0x80u8 >> (offset & 7);
    let old = u8::from(value[byte] & mask != 0);
    if on {
        value[byte] |= mask;
    } else {
        value[byte] &= !mask;
    }
    old
}

// ------------------------------------------------------------------------------------------
// BITCOUNT, BITPOS
// ------------------------------------------------------------------------------------------

/// Whether a range counts bytes (the default) or bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitUnit {
    Byte,
    Bit,
}

fn parse_unit(arg: &[u8]) -> CmdResult<BitUnit> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(BitUnit::Bit)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(BitUnit::Byte)
    } else {
        Err(SYNTAX)
    }
}

fn parse_int(arg: &[u8]) -> CmdResult<i64> {
    parse_i64(arg).ok_or(NOT_INTEGER)
}

/// `start`/`end` (negative from the end) over `total` units, clamped as Redis does; `None`
/// for an empty range.
fn clamp_range(start: i64, end: i64, total: i64) -> Option<(u64, u64)> {
    let start = if start < 0 { (total + start).max(0) } else { start };
    let end = if end < 0 { (total + end).max(0) } else { end };
    let end = end.min(total - 1);
    if start > end {
        return None;
    }
    Some((start as u64, end as u64))
}

/// `value.len()` in `unit`s.
fn total_units(value: &[u8], unit: BitUnit) -> i64 {
    let len = i64::try_from(value.len()).unwrap_or(i64::MAX);
    match unit {
        BitUnit::Byte => len,
        BitUnit::Bit => len.saturating_mul(8),
    }
}

/// `[first, last]` bit range of a clamped range in `unit`s.
fn bit_bounds(start: u64, end: u64, unit: BitUnit) -> (u64, u64) {
    match unit {
        BitUnit::Byte => (start * 8, end * 8 + 7),
        BitUnit::Bit => (start, end),
    }
}

/// BITCOUNT's arguments after the key: `[start end [BYTE|BIT]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitCountArgs {
    /// No range: the whole string.
    Whole,
    /// A range in bytes or bits, negative indexes counting from the end.
    Range { start: i64, end: i64, unit: BitUnit },
    /// Both indexes negative with start > end: Redis 7.0/7.2 reply 0 right away, before even
    /// looking at the BYTE/BIT argument (so `BITCOUNT k -1 -2 FOO` is 0, not a syntax error).
    Empty,
}

impl BitCountArgs {
    /// Parses `[start end [BYTE|BIT]]`. Errors: a single index or more than three arguments
    /// -> syntax error; non-integer start or end -> `ERR value is not an integer or out of
    /// range` (start checked first); bad unit -> syntax error.
    pub fn parse(args: &[&[u8]]) -> CmdResult<BitCountArgs> {
        match args {
            [] => Ok(BitCountArgs::Whole),
            [start, end, rest @ ..] if rest.len() <= 1 => {
                let start = parse_int(start)?;
                let end = parse_int(end)?;
                if start < 0 && end < 0 && start > end {
                    return Ok(BitCountArgs::Empty);
                }
                let unit = rest.first().map_or(Ok(BitUnit::Byte), |u| parse_unit(u))?;
                Ok(BitCountArgs::Range { start, end, unit })
            }
            _ => Err(SYNTAX),
        }
    }
}

/// BITCOUNT: the number of set bits of `value` in the range (the integer reply).
pub fn bitcount(value: &[u8], args: &BitCountArgs) -> i64 {
    let (start, end, unit) = match *args {
        BitCountArgs::Whole => return popcount(value),
        BitCountArgs::Empty => return 0,
        BitCountArgs::Range { start, end, unit } => (start, end, unit),
    };
    let Some((s, e)) = clamp_range(start, end, total_units(value, unit)) else {
        return 0;
    };
    let (first, last) = bit_bounds(s, e, unit);
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let head_mask = 0xffu8 >> (first & 7);
    let tail_mask = 0xffu8 << (7 - (last & 7));
    if fb == lb {
        return i64::from((value[fb] & head_mask & tail_mask).count_ones());
    }
    let edges = (value[fb] & head_mask).count_ones() + (value[lb] & tail_mask).count_ones();
    popcount(&value[fb + 1..lb]) + i64::from(edges)
}

fn popcount(bytes: &[u8]) -> i64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        n += u64::from(u64::from_ne_bytes(w).count_ones());
    }
    n += chunks.remainder().iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
    n as i64
}

/// BITPOS's bit argument: an integer (else `ERR value is not an integer or out of range`)
/// that is 0 or 1 (else `ERR The bit argument must be 1 or 0.`).
pub fn parse_bitpos_bit(arg: &[u8]) -> CmdResult<bool> {
    match parse_int(arg)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(BITPOS_BIT),
    }
}

/// BITPOS's arguments after the bit: `[start [end [BYTE|BIT]]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitPosArgs {
    /// `None` when no range was given (the whole string).
    pub start: Option<i64>,
    /// `None` when no end was given: then, searching for 0, a string of all ones gives the
    /// first bit past the end instead of -1.
    pub end: Option<i64>,
    pub unit: BitUnit,
}

impl BitPosArgs {
    /// Parses `[start [end [BYTE|BIT]]]`. Errors in Redis's order: start not an integer;
    /// bad unit (syntax error, checked before end); end not an integer; more than three
    /// arguments -> syntax error.
    pub fn parse(args: &[&[u8]]) -> CmdResult<BitPosArgs> {
        if args.len() > 3 {
            return Err(SYNTAX);
        }
        let mut parsed = BitPosArgs { start: None, end: None, unit: BitUnit::Byte };
        if let Some(start) = args.first() {
            parsed.start = Some(parse_int(start)?);
        }
        if let Some(unit) = args.get(2) {
            parsed.unit = parse_unit(unit)?;
        }
        if let Some(end) = args.get(1) {
            parsed.end = Some(parse_int(end)?);
        }
        Ok(parsed)
    }
}

/// BITPOS: the position of the first `bit` in the range, or -1 (the integer reply).
///
/// `value` is `None` for a missing key, which reads as endless zeros: 0 when looking for a
/// 0, -1 for a 1 (whatever the range). On an existing string: an empty range gives -1; not
/// found gives -1, except when looking for 0 without an explicit end, which gives the first
/// bit past the range (`BITPOS k 0` on `"\xff"` is 8; on `""` it is -1).
pub fn bitpos(value: Option<&[u8]>, bit: bool, args: &BitPosArgs) -> i64 {
    let Some(value) = value else {
        return if bit { -1 } else { 0 };
    };
    let unit = args.unit;
    let total = total_units(value, unit);
    let start = args.start.unwrap_or(0);
    let end = args.end.unwrap_or(total - 1);
    let Some((s, e)) = clamp_range(start, end, total) else {
        return -1;
    };
    let (first, last) = bit_bounds(s, e, unit);
    match find_bit(value, first, last, bit) {
        Some(pos) => pos as i64,
        None if !bit && args.end.is_none() => (last + 1) as i64,
        None => -1,
    }
}

/// The first bit equal to `bit` in `[first, last]` (both within `value`).
fn find_bit(value: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let miss = if bit { 0x00u8 } else { 0xff };
    let hit_bits = |i: usize| {
        let mut b = value[i] ^ miss;
        if i == fb {
            b &= 0xff >> (first & 7);
        }
        if i == lb {
            b &= 0xff << (7 - (last & 7));
        }
        b
    };
    let mut i = fb;
    while i <= lb {
        let b = hit_bits(i);
        if b != 0 {
            return Some(i as u64 * 8 + u64::from(b.leading_zeros()));
        }
        i += 1;
        if i < lb {
            i += skip_bytes(&value[i..lb], miss);
        }
    }
    None
}

/// How many leading bytes of `bytes` equal `miss` (8 at a time).
fn skip_bytes(bytes: &[u8], miss: u8) -> usize {
    let word = u64::from_ne_bytes([miss; 8]);
    let mut n = 0;
    for c in bytes.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if u64::from_ne_bytes(w) != word {
            break;
        }
        n += 8;
    }
    n + bytes[n..].iter().take_while(|&&b| b == miss).count()
}

// ------------------------------------------------------------------------------------------
// BITOP
// ------------------------------------------------------------------------------------------

/// A BITOP operation (Redis 7.2 has these four; DIFF, DIFF1, ANDOR and ONE came in 8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

impl BitOp {
    /// BITOP's operation name (case-insensitive, else syntax error) checked against the number
    /// of source keys (NOT takes exactly one, else [`BITOP_NOT_ONE_KEY`]).
    ///
    /// `BITOP op destkey srckey...`: argument 2 is the destination, arguments 3.. the sources
    /// (the command table's key range is 2..). The arity (at least 3 arguments) is the table's.
    pub fn parse(name: &[u8], sources: usize) -> CmdResult<BitOp> {
        let op = if name.eq_ignore_ascii_case(b"and") {
            BitOp::And
        } else if name.eq_ignore_ascii_case(b"or") {
            BitOp::Or
        } else if name.eq_ignore_ascii_case(b"xor") {
            BitOp::Xor
        } else if name.eq_ignore_ascii_case(b"not") {
            BitOp::Not
        } else {
            return Err(SYNTAX);
        };
        if op == BitOp::Not && sources != 1 {
            return Err(BITOP_NOT_ONE_KEY);
        }
        Ok(op)
    }
}

/// BITOP: combines the sources (`None` for missing keys, which count as empty strings),
/// shorter ones padded with zero bytes; the result is as long as the longest source.
///
/// The handler looks the sources up in order (the first non-string gives WRONGTYPE, before
/// anything is written), then stores the result in the destination (replacing any value of
/// any type and dropping its TTL; `set` event), or, when the result is empty, deletes the
/// destination (`del` event if it existed). The reply is the result's length.
pub fn bitop(op: BitOp, sources: &[Option<&[u8]>]) -> Vec<u8> {
    let len = sources.iter().map(|s| s.map_or(0, <[u8]>::len)).max().unwrap_or(0);
    let mut out = vec![0u8; len];
    let first = sources.first().copied().flatten().unwrap_or(&[]);
    out[..first.len()].copy_from_slice(first);
    if op == BitOp::Not {
        out.iter_mut().for_each(|b| *b = !*b);
        return out;
    }
    for src in sources.iter().skip(1) {
        let src = src.unwrap_or(&[]);
        let (head, tail) = out.split_at_mut(src.len());
        match op {
            BitOp::And => {
                head.iter_mut().zip(src).for_each(|(o, s)| *o &= s);
                tail.fill(0);
            }
            BitOp::Or => head.iter_mut().zip(src).for_each(|(o, s)| *o |= s),
            BitOp::Xor => head.iter_mut().zip(src).for_each(|(o, s)| *o ^= s),
            BitOp::Not => {}
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// BITFIELD
// ------------------------------------------------------------------------------------------

/// BITFIELD's overflow behaviour for SET and INCRBY (`OVERFLOW WRAP|SAT|FAIL`, WRAP by
/// default; applies to the operations after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// A field type: `i1`..`i64` or `u1`..`u63`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitfieldType {
    pub signed: bool,
    pub bits: u32,
}

impl BitfieldType {
    /// Parses `i<bits>` / `u<bits>` (lower-case letter; the number in strict integer syntax,
    /// read up to the first NUL byte as Redis's `strlen` does), else [`BITFIELD_TYPE`].
    pub fn parse(arg: &[u8]) -> CmdResult<BitfieldType> {
        let (signed, rest) = match arg.split_first() {
            Some((b'i', rest)) => (true, rest),
            Some((b'u', rest)) => (false, rest),
            _ => return Err(BITFIELD_TYPE),
        };
        let rest = &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())];
        let max = if signed { 64 } else { 63 };
        match parse_i64(rest) {
            Some(bits @ 1..) if bits <= max => Ok(BitfieldType { signed, bits: bits as u32 }),
            _ => Err(BITFIELD_TYPE),
        }
    }

    fn max(self) -> i128 {
        if self.signed {
            (1i128 << (self.bits - 1)) - 1
        } else {
            (1i128 << self.bits) - 1
        }
    }

    fn min(self) -> i128 {
        if self.signed {
            -(1i128 << (self.bits - 1))
        } else {
            0
        }
    }

    /// `v` reduced modulo 2^bits into the type's range.
    fn wrap(self, v: i128) -> i128 {
        let modulus = 1i128 << self.bits;
        let r = v.rem_euclid(modulus);
        if self.signed && r > self.max() {
            r - modulus
        } else {
            r
        }
    }
}

/// What one BITFIELD operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitfieldAction {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One BITFIELD operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitfieldOp {
    pub action: BitfieldAction,
    pub ty: BitfieldType,
    /// Bit offset (`#N` already multiplied by the width).
    pub offset: u64,
    pub overflow: Overflow,
}

/// A parsed BITFIELD / BITFIELD_RO command.
///
/// Handler steps, as Redis: [`BitfieldOps::parse`]; then, if [`BitfieldOps::writes`] is
/// false, a read lookup (missing key: run on an empty string and do not create it;
/// WRONGTYPE) and [`bitfield_get`]; else a write lookup (WRONGTYPE), then [`bitfield_run`]
/// on the value (an empty `Vec` for a missing key) and store it back unconditionally (Redis
/// creates or grows the key even when every write FAILs), then, when the outcome's `changes`
/// is nonzero, signal the key as modified, fire the `setbit` keyspace event and add
/// `changes` to dirty. The reply is an array with one entry per operation (OVERFLOW is not
/// one): integers, or nulls for FAILed writes; [`BitfieldOutcome::write`] encodes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BitfieldOps {
    pub ops: Vec<BitfieldOp>,
}

impl BitfieldOps {
    /// Parses the arguments after the key with the default `proto-max-bulk-len`; `read_only`
    /// for BITFIELD_RO.
    ///
    /// Errors, first one wins, left to right: an unknown subcommand or missing arguments ->
    /// syntax error; `OVERFLOW` with a bad name -> [`BITFIELD_OVERFLOW`]; bad type ->
    /// [`BITFIELD_TYPE`]; bad offset -> `ERR bit offset is not an integer or out of range`;
    /// SET/INCRBY value not an integer -> `ERR value is not an integer or out of range`.
    /// After all of that, BITFIELD_RO with a SET or INCRBY -> [`BITFIELD_RO_WRITE`].
    pub fn parse(args: &[&[u8]], read_only: bool) -> CmdResult<BitfieldOps> {
        Self::parse_with_limit(args, read_only, DEFAULT_PROTO_MAX_BULK_LEN)
    }

    /// [`BitfieldOps::parse`] with a configured `proto-max-bulk-len` (offsets must satisfy
    /// `offset / 8 < proto_max_bulk_len`).
    pub fn parse_with_limit(args: &[&[u8]], read_only: bool, proto_max_bulk_len: i64) -> CmdResult<BitfieldOps> {
        let mut ops = Vec::new();
        let mut overflow = Overflow::Wrap;
        let mut j = 0;
        while j < args.len() {
            let sub = args[j];
            let remaining = args.len() - j - 1;
            let needs = if sub.eq_ignore_ascii_case(b"get") {
                2
            } else if sub.eq_ignore_ascii_case(b"set") || sub.eq_ignore_ascii_case(b"incrby") {
                3
            } else if sub.eq_ignore_ascii_case(b"overflow") && remaining >= 1 {
                overflow = parse_overflow(args[j + 1])?;
                j += 2;
                continue;
            } else {
                return Err(SYNTAX);
            };
            if remaining < needs {
                return Err(SYNTAX);
            }
            let ty = BitfieldType::parse(args[j + 1])?;
            let offset = offset_from_arg(args[j + 2], Some(ty.bits), proto_max_bulk_len)?;
            let action = if needs == 2 {
                BitfieldAction::Get
            } else if sub.eq_ignore_ascii_case(b"set") {
                BitfieldAction::Set(parse_int(args[j + 3])?)
            } else {
                BitfieldAction::IncrBy(parse_int(args[j + 3])?)
            };
            ops.push(BitfieldOp { action, ty, offset, overflow });
            j += 1 + needs;
        }
        let parsed = BitfieldOps { ops };
        if read_only && parsed.writes() {
            return Err(BITFIELD_RO_WRITE);
        }
        Ok(parsed)
    }

    /// Whether any operation is a SET or INCRBY (the key is then looked up for writing, and
    /// created if missing).
    pub fn writes(&self) -> bool {
        self.ops.iter().any(|op| op.action != BitfieldAction::Get)
    }

    /// The length in bytes the string is grown to before running (the last byte any SET or
    /// INCRBY touches); `None` when nothing writes.
    pub fn required_len(&self) -> Option<u64> {
        self.ops
            .iter()
            .filter(|op| op.action != BitfieldAction::Get)
            .map(|op| ((op.offset + u64::from(op.ty.bits) - 1) >> 3) + 1)
            .max()
    }
}

fn parse_overflow(arg: &[u8]) -> CmdResult<Overflow> {
    if arg.eq_ignore_ascii_case(b"wrap") {
        Ok(Overflow::Wrap)
    } else if arg.eq_ignore_ascii_case(b"sat") {
        Ok(Overflow::Sat)
    } else if arg.eq_ignore_ascii_case(b"fail") {
        Ok(Overflow::Fail)
    } else {
        Err(BITFIELD_OVERFLOW)
    }
}

/// The result of [`bitfield_run`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BitfieldOutcome {
    /// One entry per operation: the value (GET, the new value for INCRBY, the old value for
    /// SET), or `None` for a write refused by `OVERFLOW FAIL`.
    pub replies: Vec<Option<i64>>,
    /// Redis's change count: writes that changed the field, or any successful write when the
    /// string was created or grown.
    pub changes: u64,
}

impl BitfieldOutcome {
    /// Encodes the reply: an array of integers and nulls.
    pub fn write(&self, out: &mut ReplyBuf) {
        write_bitfield_replies(out, &self.replies);
    }
}

/// Encodes BITFIELD's reply array (integers, nulls for FAILed writes).
pub fn write_bitfield_replies(out: &mut ReplyBuf, replies: &[Option<i64>]) {
    out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => out.int(*v),
            None => out.null(),
        }
    }
}

/// 72 bits starting at byte `byte` (zero beyond the end), big-endian in the low bits.
fn read_window(value: &[u8], byte: usize) -> u128 {
    (0..9).fold(0u128, |acc, i| {
        let b = byte.checked_add(i).and_then(|at| value.get(at)).copied().unwrap_or(0);
        (acc << 8) | u128::from(b)
    })
}

/// The raw (unsigned) bits of a field.
fn read_field(value: &[u8], offset: u64, bits: u32) -> u64 {
    let Ok(byte) = usize::try_from(offset >> 3) else {
        return 0;
    };
    let shift = 72 - (offset & 7) as u32 - bits;
    let mask = (1u128 << bits) - 1;
    ((read_window(value, byte) >> shift) & mask) as u64
}

/// Writes the low `bits` of `v` at `offset`; the bytes must exist.
fn write_field(value: &mut [u8], offset: u64, bits: u32, v: u64) {
    let Ok(byte) = usize::try_from(offset >> 3) else {
        return;
    };
    let shift = 72 - (offset & 7) as u32 - bits;
    let mask = ((1u128 << bits) - 1) << shift;
    let w = (read_window(value, byte) & !mask) | ((u128::from(v) << shift) & mask);
    for i in 0..9 {
        if let Some(slot) = byte.checked_add(i).and_then(|at| value.get_mut(at)) {
            *slot = (w >> (8 * (8 - i))) as u8;
        }
    }
}

/// A field's value as the type reads it.
fn get_typed(value: &[u8], offset: u64, ty: BitfieldType) -> i128 {
    let raw = read_field(value, offset, ty.bits);
    if ty.signed && ty.bits < 64 && (raw >> (ty.bits - 1)) & 1 == 1 {
        i128::from(raw) - (1i128 << ty.bits)
    } else if ty.signed {
        i128::from(raw as i64)
    } else {
        i128::from(raw)
    }
}

/// The value to store for a SET or INCRBY, or `None` when OVERFLOW FAIL refuses it.
fn new_field_value(op: &BitfieldOp, old: i128) -> Option<i128> {
    let ty = op.ty;
    let target = match op.action {
        BitfieldAction::IncrBy(incr) => old + i128::from(incr),
        // Redis checks an unsigned SET on the value cast to u64, so negative values count as
        // too large (OVERFLOW SAT stores the maximum).
        BitfieldAction::Set(v) if !ty.signed => i128::from(v as u64),
        BitfieldAction::Set(v) => i128::from(v),
        BitfieldAction::Get => old,
    };
    if (ty.min()..=ty.max()).contains(&target) {
        return Some(target);
    }
    match op.overflow {
        Overflow::Wrap => Some(ty.wrap(target)),
        Overflow::Sat if target > ty.max() || signed_set_reads_as_high(op) => Some(ty.max()),
        Overflow::Sat => Some(ty.min()),
        Overflow::Fail => None,
    }
}

/// Redis tests a signed SET's value with `incr (0) > (int64)((uint64)max - value)`; for
/// values so negative that `max - value` wraps past `i64::MAX` this reports an overflow
/// upwards, so OVERFLOW SAT stores the maximum (`SET i8 0 -9223372036854775807` gives 127).
fn signed_set_reads_as_high(op: &BitfieldOp) -> bool {
    match op.action {
        BitfieldAction::Set(v) if op.ty.signed => {
            let max = ty_max_i64(op.ty);
            ((max as u64).wrapping_sub(v as u64) as i64) < 0
        }
        _ => false,
    }
}

fn ty_max_i64(ty: BitfieldType) -> i64 {
    i64::try_from(ty.max()).unwrap_or(i64::MAX)
}

/// Runs read-only BITFIELD operations (all GETs, [`BitfieldOps::writes`] false) against
/// `value` (an empty slice for a missing key).
pub fn bitfield_get(value: &[u8], ops: &BitfieldOps) -> Vec<Option<i64>> {
    ops.ops.iter().map(|op| Some(get_typed(value, op.offset, op.ty) as i64)).collect()
}

/// Runs BITFIELD operations in order against `value` (an empty `Vec` for a missing key),
/// first growing it with zero bytes to [`BitfieldOps::required_len`].
pub fn bitfield_run(value: &mut Vec<u8>, ops: &BitfieldOps) -> BitfieldOutcome {
    let mut grown = false;
    if let Some(len) = ops.required_len().and_then(|l| usize::try_from(l).ok()) {
        if value.len() < len {
            value.resize(len, 0);
            grown = true;
        }
    }
    let mut outcome = BitfieldOutcome { replies: Vec::with_capacity(ops.ops.len()), changes: 0 };
    for op in &ops.ops {
        let old = get_typed(value, op.offset, op.ty);
        if op.action == BitfieldAction::Get {
            outcome.replies.push(Some(old as i64));
            continue;
        }
        let Some(new) = new_field_value(op, old) else {
            outcome.replies.push(None);
            continue;
        };
        let reply = if matches!(op.action, BitfieldAction::Set(_)) { old } else { new };
        outcome.replies.push(Some(reply as i64));
        write_field(value, op.offset, op.ty.bits, new as u64);
        if grown || old != new {
            outcome.changes += 1;
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    //! Expected values were produced by redis-server 7.0.15.
    use super::*;

    fn args(s: &str) -> Vec<&[u8]> {
        s.split_whitespace().map(str::as_bytes).collect()
    }

    #[test]
    fn offsets_and_bit_values() {
        assert_eq!(parse_bit_offset(b"0"), Ok(0));
        assert_eq!(parse_bit_offset(b"4294967295"), Ok(4294967295));
        for bad in ["4294967296", "-1", "#5", " 1", "05", "+5", "x", ""] {
            assert_eq!(parse_bit_offset(bad.as_bytes()), Err(BIT_OFFSET), "{bad:?}");
        }
        assert_eq!(parse_bit_offset_with_limit(b"8388607", 1024 * 1024), Ok(8388607));
        assert_eq!(parse_bit_offset_with_limit(b"8388608", 1024 * 1024), Err(BIT_OFFSET));
        assert_eq!(parse_bit_value(b"1"), Ok(true));
        assert_eq!(parse_bit_value(b"0"), Ok(false));
        for bad in ["01", "-0", "2", "-1", " 1", "x", ""] {
            assert_eq!(parse_bit_value(bad.as_bytes()), Err(BIT_VALUE), "{bad:?}");
        }
    }

    #[test]
    fn setbit_and_getbit() {
        let mut v = Vec::new();
        assert_eq!(setbit(&mut v, 7, true), 0);
        assert_eq!(v, b"\x01");
        assert_eq!(setbit(&mut v, 7, true), 1);
        assert_eq!(setbit(&mut v, 7, false), 1);
        assert_eq!(v, b"\x00");
        let mut v = b"\x01".to_vec();
        assert_eq!(setbit(&mut v, 15, false), 0);
        assert_eq!(v, b"\x01\x00");
        let mut v = b"12345".to_vec();
        assert_eq!(setbit(&mut v, 100, true), 0);
        assert_eq!(v, b"12345\x00\x00\x00\x00\x00\x00\x00\x08");
        assert_eq!(getbit(&v, 100), 1);
        assert_eq!(getbit(&v, 99), 0);
        assert_eq!(getbit(b"\x80", 0), 1);
        assert_eq!(getbit(b"\x80", 4294967295), 0);
        assert_eq!(setbit_len(4294967295), 536870912);
    }

    #[test]
    fn bitcount_ranges() {
        let count = |a: &str| BitCountArgs::parse(&args(a)).map(|p| bitcount(b"foobar", &p));
        assert_eq!(count(""), Ok(26));
        assert_eq!(count("0 0"), Ok(4));
        assert_eq!(count("1 1"), Ok(6));
        assert_eq!(count("1 2"), Ok(12));
        assert_eq!(count("1 2 bit"), Ok(2));
        assert_eq!(count("5 30 BIT"), Ok(17));
        assert_eq!(count("-2 -1 BIT"), Ok(1));
        assert_eq!(count("-9223372036854775808 -1"), Ok(26));
        assert_eq!(count("0 9223372036854775807 bit"), Ok(26));
        assert_eq!(count("-1 -2 FOO"), Ok(0));
        assert_eq!(count("1"), Err(SYNTAX));
        assert_eq!(count("1 2 3 4"), Err(SYNTAX));
        assert_eq!(count("1 2 FOO"), Err(SYNTAX));
        assert_eq!(count("x 2 FOO"), Err(NOT_INTEGER));
        assert_eq!(count("1 x FOO"), Err(NOT_INTEGER));
        assert_eq!(bitcount(b"", &BitCountArgs::Whole), 0);
    }

    #[test]
    fn bitpos_ranges() {
        let pos = |v: &[u8], a: &str| {
            let a = args(a);
            let bit = parse_bitpos_bit(a[0])?;
            BitPosArgs::parse(&a[1..]).map(|p| bitpos(Some(v), bit, &p))
        };
        let ones = b"\xff\xff\xff";
        assert_eq!(pos(ones, "0"), Ok(24));
        assert_eq!(pos(ones, "0 1"), Ok(24));
        assert_eq!(pos(ones, "0 -1"), Ok(24));
        assert_eq!(pos(ones, "0 -100"), Ok(24));
        assert_eq!(pos(ones, "0 1 -1"), Ok(-1));
        assert_eq!(pos(ones, "0 8 23 bit"), Ok(-1));
        assert_eq!(pos(ones, "0 5"), Ok(-1));
        assert_eq!(pos(ones, "1 5"), Ok(-1));
        assert_eq!(pos(ones, "0 3 2"), Ok(-1));
        assert_eq!(pos(ones, "0 1 1 byte"), Ok(-1));
        let k = b"\x00\xff\x00";
        assert_eq!(pos(k, "1 7 15 bit"), Ok(8));
        assert_eq!(pos(k, "1 17 23 bit"), Ok(-1));
        assert_eq!(pos(k, "0 8 15 bit"), Ok(-1));
        assert_eq!(pos(k, "0 8 16 bit"), Ok(16));
        assert_eq!(pos(k, "0 9 14 bit"), Ok(-1));
        assert_eq!(pos(k, "1 9 14 bit"), Ok(9));
        assert_eq!(pos(k, "1 -7 -1 bit"), Ok(-1));
        assert_eq!(pos(b"foobar", "1 0 -1 bit"), Ok(1));
        assert_eq!(pos(b"foobar", "0 3 10 bit"), Ok(3));
        assert_eq!(pos(b"foobar", "1 -1 -100"), Ok(-1));
        assert_eq!(pos(b"", "0"), Ok(-1));
        assert_eq!(pos(b"", "1"), Ok(-1));
        let mut long = vec![0u8; 100];
        long[77] = 0x10;
        assert_eq!(pos(&long, "1"), Ok(77 * 8 + 3));
        assert_eq!(pos(&long, "1 0 -1 bit"), Ok(77 * 8 + 3));
        let whole = BitPosArgs { start: None, end: None, unit: BitUnit::Byte };
        assert_eq!(bitpos(None, false, &whole), 0);
        assert_eq!(bitpos(None, true, &whole), -1);
    }

    #[test]
    fn bitpos_errors() {
        assert_eq!(parse_bitpos_bit(b"2"), Err(BITPOS_BIT));
        assert_eq!(parse_bitpos_bit(b"x"), Err(NOT_INTEGER));
        assert_eq!(BitPosArgs::parse(&args("x")), Err(NOT_INTEGER));
        assert_eq!(BitPosArgs::parse(&args("0 x")), Err(NOT_INTEGER));
        assert_eq!(BitPosArgs::parse(&args("0 x foo")), Err(SYNTAX));
        assert_eq!(BitPosArgs::parse(&args("0 2 foo")), Err(SYNTAX));
        assert_eq!(BitPosArgs::parse(&args("0 2 bit x")), Err(SYNTAX));
    }

    #[test]
    fn bitop_results() {
        let run =
            |name: &str, srcs: &[Option<&[u8]>]| BitOp::parse(name.as_bytes(), srcs.len()).map(|op| bitop(op, srcs));
        assert_eq!(run("AND", &[Some(b"foobar"), Some(b"abc")]).unwrap(), b"`bc\x00\x00\x00");
        assert_eq!(run("or", &[Some(b"foobar"), Some(b"abc")]).unwrap(), b"goobar");
        assert_eq!(run("Xor", &[Some(b"foobar"), Some(b"abc"), None]).unwrap(), b"\x07\r\x0cbar");
        assert_eq!(run("NOT", &[Some(b"foobar")]).unwrap(), b"\x99\x90\x90\x9d\x9e\x8d");
        assert_eq!(run("AND", &[None, Some(b"abc")]).unwrap(), b"\x00\x00\x00");
        assert_eq!(run("OR", &[None, None]).unwrap(), b"");
        assert_eq!(run("NOT", &[Some(b"a"), Some(b"b")]), Err(BITOP_NOT_ONE_KEY));
        assert_eq!(run("foo", &[Some(b"a")]), Err(SYNTAX));
        assert_eq!(run("diff", &[Some(b"a"), Some(b"b")]), Err(SYNTAX));
    }

    /// Replies, the stored value, the change count.
    type Run = (CmdResult<Vec<Option<i64>>>, Option<Vec<u8>>, u64);

    fn bitfield(init: Option<&[u8]>, a: &str) -> Run {
        let ops = match BitfieldOps::parse(&args(a), false) {
            Ok(ops) => ops,
            Err(e) => return (Err(e), init.map(<[u8]>::to_vec), 0),
        };
        if !ops.writes() {
            return (Ok(bitfield_get(init.unwrap_or(&[]), &ops)), init.map(<[u8]>::to_vec), 0);
        }
        let mut v = init.map(<[u8]>::to_vec).unwrap_or_default();
        let out = bitfield_run(&mut v, &ops);
        (Ok(out.replies), Some(v), out.changes)
    }

    #[test]
    fn bitfield_reads_and_writes() {
        let (r, v, _) = bitfield(Some(b"ab"), "get u8 0 get i4 4 get u16 8 get i64 0 get u63 1");
        assert_eq!(r.unwrap(), [97, 1, 25088, 7017171169396654080, 7017171169396654080].map(Some));
        assert_eq!(v.unwrap(), b"ab");
        let cmd = "set i8 0 300 get u8 0 set u8 0 -1 get u8 0 overflow sat set i8 0 300 get i8 0 \
                   set u8 0 -5 get u8 0 overflow fail set u8 0 256 incrby u8 0 1 get u8 0";
        let (r, _, _) = bitfield(Some(b"ab"), cmd);
        let want = [Some(97), Some(44), Some(44), Some(255), Some(-1), Some(127), Some(127), Some(255)];
        assert_eq!(r.unwrap(), [&want[..], &[None, None, Some(255)]].concat());
        let cmd = "incrby i64 0 9223372036854775807 incrby i64 0 9223372036854775807 overflow sat \
                   incrby i64 0 9223372036854775807 incrby i64 0 -9223372036854775808 \
                   incrby i64 0 -9223372036854775808 incrby i64 0 -9223372036854775808";
        let (r, v, changes) = bitfield(Some(b"ab"), cmd);
        let want = [-2206200867458121729, 7017171169396654078, i64::MAX, -1, i64::MIN, i64::MIN];
        assert_eq!(r.unwrap(), want.map(Some));
        assert_eq!(v.unwrap(), b"\x80\0\0\0\0\0\0\0");
        assert_eq!(changes, 6);
        let cmd = "overflow wrap incrby u63 0 9223372036854775807 incrby u63 0 9223372036854775807 \
                   overflow sat incrby u63 0 -9223372036854775808 incrby u63 0 9223372036854775807 \
                   incrby u63 0 9223372036854775807";
        let (r, v, changes) = bitfield(Some(b"ab"), cmd);
        let want = [3508585584698327039, 3508585584698327038, 0, i64::MAX, i64::MAX];
        assert_eq!(r.unwrap(), want.map(Some));
        assert_eq!(v.unwrap(), b"\xff\xff\xff\xff\xff\xff\xff\xfe");
        assert_eq!(changes, 5);
    }

    #[test]
    fn bitfield_overflow_quirks() {
        let cmd = "overflow sat set i8 0 -9223372036854775807 get i8 0 set i8 0 -200 get i8 0 \
                   set i8 0 -9223372036854775681 get i8 0 set i8 0 -9223372036854775680 get i8 0";
        let (r, v, changes) = bitfield(None, cmd);
        assert_eq!(r.unwrap(), [0, 127, 127, -128, -128, 127, 127, -128].map(Some));
        assert_eq!(v.unwrap(), b"\x80");
        assert_eq!(changes, 4);
        let cmd = "overflow wrap set i5 3 -9223372036854775807 get i5 3 set u5 3 -1 get u5 3 \
                   incrby u5 3 -33 incrby i5 3 100";
        let (r, v, changes) = bitfield(None, cmd);
        assert_eq!(r.unwrap(), [0, 1, 1, 31, 30, 2].map(Some));
        assert_eq!(v.unwrap(), b"\x02");
        assert_eq!(changes, 4);
    }

    #[test]
    fn bitfield_growth_and_changes() {
        assert_eq!(bitfield(None, "set u8 0 0"), (Ok(vec![Some(0)]), Some(b"\0".to_vec()), 1));
        assert_eq!(bitfield(Some(b"a"), "set u8 0 97"), (Ok(vec![Some(97)]), Some(b"a".to_vec()), 0));
        let (r, v, c) = bitfield(Some(b"a"), "set u8 0 98 incrby u8 0 0");
        assert_eq!((r.unwrap(), v.unwrap(), c), (vec![Some(97), Some(98)], b"b".to_vec(), 1));
        let (r, v, c) = bitfield(Some(b"a"), "set u8 8 0 set u8 0 97 get u8 0");
        assert_eq!((r.unwrap(), v.unwrap(), c), (vec![Some(0), Some(97), Some(97)], b"a\0".to_vec(), 2));
        // A refused write still creates and grows the key, without counting a change.
        let (r, v, c) = bitfield(None, "overflow fail incrby u2 100 10");
        assert_eq!((r.unwrap(), v.unwrap().len(), c), (vec![None], 13, 0));
        let (r, v, _) = bitfield(None, "get u8 0");
        assert_eq!((r.unwrap(), v), (vec![Some(0)], None));
        let ops = BitfieldOps::parse(&args("set i64 4294967295 1"), false).unwrap();
        assert_eq!(ops.required_len(), Some(536870920));
        assert_eq!(BitfieldOps::parse(&args(""), false).unwrap().required_len(), None);
    }

    #[test]
    fn bitfield_offsets_and_types() {
        let ok = |a: &str| BitfieldOps::parse(&args(a), false).map(|o| o.ops[0].offset);
        assert_eq!(ok("get u8 #2305843009213693952"), Ok(0));
        assert_eq!(ok("get u8 #536870911"), Ok(4294967288));
        assert_eq!(ok("get i5 #536870912"), Ok(2684354560));
        assert_eq!(ok("get u8 4294967295"), Ok(4294967295));
        for bad in ["#536870912", "4294967296", "-1", "#-1", "#", "x", "#1\0"] {
            let a = [&b"get"[..], b"u8", bad.as_bytes()];
            assert_eq!(BitfieldOps::parse(&a, false), Err(BIT_OFFSET), "{bad:?}");
        }
        let nul_type = [&b"get"[..], b"i8\0zz", b"0"];
        assert_eq!(BitfieldOps::parse(&nul_type, false).unwrap().ops[0].ty.bits, 8);
        for bad in ["u64", "i65", "I8", "i0", "i08", "x8", "i", "u-1", "\0"] {
            let a = [&b"get"[..], bad.as_bytes(), b"0"];
            assert_eq!(BitfieldOps::parse(&a, false), Err(BITFIELD_TYPE), "{bad:?}");
        }
        assert!(BitfieldOps::parse(&args("get u63 0 GET i64 0 Get i1 0"), false).is_ok());
    }

    #[test]
    fn bitfield_parse_errors() {
        let p = |a: &str, ro: bool| BitfieldOps::parse(&args(a), ro).map(|o| o.ops.len());
        for bad in ["get", "get u8", "foo", "overflow", "set u8 0", "incrby u8 0", "get u8 0 x"] {
            assert_eq!(p(bad, false), Err(SYNTAX), "{bad:?}");
        }
        assert_eq!(p("overflow foo get u8 0", false), Err(BITFIELD_OVERFLOW));
        assert_eq!(p("set u8 0 x", false), Err(NOT_INTEGER));
        assert_eq!(p("set u8 0 1", true), Err(BITFIELD_RO_WRITE));
        assert_eq!(p("get u8 0 set u8 0 1 get x 0", true), Err(BITFIELD_TYPE));
        assert_eq!(p("overflow sat get u8 0", true), Ok(1));
        assert_eq!(p("", true), Ok(0));
        assert_eq!(p("OVERFLOW FAIL", false), Ok(0));
    }

    #[test]
    fn bitfield_reply_encoding() {
        let mut out = ReplyBuf::new(resp::Protocol::Resp2);
        BitfieldOutcome { replies: vec![Some(1), None, Some(-2)], changes: 1 }.write(&mut out);
        assert_eq!(out.buf, b"*3\r\n:1\r\n$-1\r\n:-2\r\n");
        let mut out = ReplyBuf::new(resp::Protocol::Resp3);
        write_bitfield_replies(&mut out, &[None]);
        assert_eq!(out.buf, b"*1\r\n_\r\n");
    }
}
