//! Redis's number parsing and formatting, reproduced byte for byte.
//!
//! * Integers: [`parse_i64`] is Redis's strict `string2ll`; [`format_i64`], [`append_i64`] and
//!   [`format_i64_into`] print them.
//! * Doubles read by ZADD, ZINCRBY, GEOADD...: [`parse_f64`] (`string2d`, i.e. glibc `strtod`
//!   with Redis's extra checks). Range bounds (ZRANGEBYSCORE min/max after the `(`):
//!   [`parse_range_f64`].
//! * INCRBYFLOAT and HINCRBYFLOAT compute in C `long double` (x87 80-bit extended precision, a
//!   64-bit significand) and print with `%.17Lf` minus trailing zeros. An `f64` cannot reproduce
//!   that (`INCRBYFLOAT k 12345.678` stores `12345.67799999999999994`, `0.1 + 0.2` gives `0.3`),
//!   so [`LongDouble`] is a software implementation of exactly that format: correctly rounded
//!   parsing ([`parse_long_double`]), addition (`+`) and exact `%.17Lf`
//!   printing ([`LongDouble::format_human`]). [`incrbyfloat`] and [`hincrbyfloat`] wrap the whole
//!   commands' arithmetic and errors.
//! * Doubles in replies: [`format_double_reply`] is Redis 7.2's `d2string` (integers printed as
//!   integers, otherwise the Grisu2 shortest form of `fpconv_dtoa`); [`format_double_g17`] is
//!   `%.17g`, what Redis 7.0 replied and what 7.2 still uses for ZSCAN on skiplist sorted sets.

use std::cmp::Ordering;

use crate::error::{CmdError, CmdResult, NOT_FLOAT};

/// `ERR increment would produce NaN or Infinity` (INCRBYFLOAT, HINCRBYFLOAT).
pub const INCR_NAN_OR_INF: CmdError = CmdError::fixed("ERR increment would produce NaN or Infinity");
/// `ERR value is NaN or Infinity` (HINCRBYFLOAT with an infinite increment).
pub const VALUE_NAN_OR_INF: CmdError = CmdError::fixed("ERR value is NaN or Infinity");
/// `ERR hash value is not a float` (HINCRBYFLOAT on a field that is not a number).
pub const HASH_VALUE_NOT_FLOAT: CmdError = CmdError::fixed("ERR hash value is not a float");

/// Redis's `MAX_LONG_DOUBLE_CHARS`: `string2ld` refuses inputs of this length or more.
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

// ------------------------------------------------------------------------------------------
// Integers
// ------------------------------------------------------------------------------------------

/// The longest decimal `i64` (`-9223372036854775808`).
pub const I64_MAX_CHARS: usize = 20;

/// Parses a signed 64-bit integer the way Redis's `string2ll` does.
///
/// Strict: optional `-` then digits, nothing else. Rejected: empty input, `+`, spaces, leading
/// zeros (`"01"`, but `"0"` itself is fine), `"-0"`, values outside `i64`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some(_) => (false, s),
        None => return None,
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if !neg {
        return i64::try_from(v).ok();
    }
    if v == 1 << 63 {
        return Some(i64::MIN);
    }
    i64::try_from(v).ok().map(|x| -x)
}

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `v` in decimal at the end of `buf` and returns the used tail (no allocation).
pub fn format_i64_into(v: i64, buf: &mut [u8; I64_MAX_CHARS]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut pos = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + n as u8;
    }
    if v < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Appends `v` in decimal to `out`.
pub fn append_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; I64_MAX_CHARS];
    out.extend_from_slice(format_i64_into(v, &mut buf));
}

/// `v` in decimal, as Redis's `ll2string` prints it.
pub fn format_i64(v: i64) -> Vec<u8> {
    let mut buf = [0u8; I64_MAX_CHARS];
    format_i64_into(v, &mut buf).to_vec()
}

// ------------------------------------------------------------------------------------------
// strtod syntax
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Radix {
    Dec,
    Hex,
}

/// What glibc's `strtod` recognises at the start of a string.
#[derive(Debug, Clone, Copy)]
enum Body<'a> {
    Inf,
    Nan,
    /// Mantissa digits before and after the point, and the exponent (decimal for `Dec`,
    /// binary for `Hex`), saturated to +-`EXP_LIMIT`.
    Num {
        radix: Radix,
        int: &'a [u8],
        frac: &'a [u8],
        exp: i64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Scanned<'a> {
    neg: bool,
    body: Body<'a>,
    /// Bytes consumed, as `endptr - s`.
    end: usize,
}

/// Exponents are clamped here; anything this large over- or underflows every format anyway.
const EXP_LIMIT: i64 = 1_000_000_000;

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn is_digit(c: u8, radix: Radix) -> bool {
    match radix {
        Radix::Dec => c.is_ascii_digit(),
        Radix::Hex => c.is_ascii_hexdigit(),
    }
}

/// `digits [. digits]` with at least one digit: (integer digits, fraction digits, length).
fn scan_mantissa(s: &[u8], radix: Radix) -> Option<(&[u8], &[u8], usize)> {
    let int_len = s.iter().take_while(|&&c| is_digit(c, radix)).count();
    let int = &s[..int_len];
    let mut len = int_len;
    let mut frac: &[u8] = &[];
    if s.get(len) == Some(&b'.') {
        let rest = &s[len + 1..];
        let frac_len = rest.iter().take_while(|&&c| is_digit(c, radix)).count();
        frac = &rest[..frac_len];
        len += 1 + frac_len;
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    Some((int, frac, len))
}

/// An exponent `marker [+-] digits`: (value, length), or (0, 0) when there is none.
fn scan_exponent(s: &[u8], marker: u8) -> (i64, usize) {
    if s.first().map(|c| c | 0x20) != Some(marker) {
        return (0, 0);
    }
    let (neg, sign_len) = match s.get(1) {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let digits = &s[1 + sign_len..];
    let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return (0, 0);
    }
    let mut v: i64 = 0;
    for &c in &digits[..n] {
        v = (v * 10 + i64::from(c - b'0')).min(EXP_LIMIT);
    }
    (if neg { -v } else { v }, 1 + sign_len + n)
}

/// The number `strtod` would read at the start of `s` (after any whitespace, which the
/// caller handles), or `None` when it would convert nothing.
fn scan_number(s: &[u8]) -> Option<Scanned<'_>> {
    let (neg, sign_len) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let rest = &s[sign_len..];
    if starts_with_ignore_case(rest, b"inf") {
        let n = if starts_with_ignore_case(rest, b"infinity") { 8 } else { 3 };
        return Some(Scanned { neg, body: Body::Inf, end: sign_len + n });
    }
    if starts_with_ignore_case(rest, b"nan") {
        return Some(Scanned { neg, body: Body::Nan, end: sign_len + nan_len(rest) });
    }
    if rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((int, frac, len)) = scan_mantissa(&rest[2..], Radix::Hex) {
            let (exp, exp_len) = scan_exponent(&rest[2 + len..], b'p');
            let body = Body::Num { radix: Radix::Hex, int, frac, exp };
            return Some(Scanned { neg, body, end: sign_len + 2 + len + exp_len });
        }
    }
    let (int, frac, len) = scan_mantissa(rest, Radix::Dec)?;
    let (exp, exp_len) = scan_exponent(&rest[len..], b'e');
    let body = Body::Num { radix: Radix::Dec, int, frac, exp };
    Some(Scanned { neg, body, end: sign_len + len + exp_len })
}

/// Length of `nan` or `nan(chars)` at the start of `s` (which starts with `nan`).
fn nan_len(s: &[u8]) -> usize {
    if s.get(3) != Some(&b'(') {
        return 3;
    }
    let inner = s[4..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
    if s.get(4 + inner) == Some(&b')') {
        5 + inner
    } else {
        3
    }
}

/// C `isspace` in the "C" locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

// ------------------------------------------------------------------------------------------
// A minimal unsigned big integer, for exact conversions of extreme inputs
// ------------------------------------------------------------------------------------------

/// Little-endian base 2^32 digits, no trailing zero limbs.
#[derive(Debug, Clone, Default)]
struct Big {
    limbs: Vec<u32>,
}

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big { limbs: vec![v as u32, (v >> 32) as u32] };
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    fn bit_len(&self) -> i64 {
        match self.limbs.last() {
            None => 0,
            Some(&top) => self.limbs.len() as i64 * 32 - i64::from(top.leading_zeros()),
        }
    }

    /// `self = self * m + add`.
    fn mul_add_small(&mut self, m: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in &mut self.limbs {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
        self.trim();
    }

    fn mul_pow10(&mut self, mut k: u64) {
        while k >= 9 {
            self.mul_add_small(1_000_000_000, 0);
            k -= 9;
        }
        if k > 0 {
            self.mul_add_small(10u32.pow(k as u32), 0);
        }
    }

    fn shl(&mut self, bits: u64) {
        if self.is_zero() || bits == 0 {
            return;
        }
        let words = (bits / 32) as usize;
        let rem = (bits % 32) as u32;
        let mut limbs = vec![0u32; words];
        let mut carry = 0u32;
        for &l in &self.limbs {
            if rem == 0 {
                limbs.push(l);
            } else {
                limbs.push((l << rem) | carry);
                carry = l >> (32 - rem);
            }
        }
        if carry != 0 {
            limbs.push(carry);
        }
        self.limbs = limbs;
    }

    fn shr1(&mut self) {
        let mut carry = 0u32;
        for limb in self.limbs.iter_mut().rev() {
            let next = *limb & 1;
            *limb = (*limb >> 1) | (carry << 31);
            carry = next;
        }
        self.trim();
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.limbs.len().cmp(&other.limbs.len()).then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }

    /// `self -= other`; requires `self >= other`.
    fn sub_assign(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let o = i64::from(other.limbs.get(i).copied().unwrap_or(0));
            let mut v = i64::from(*limb) - o - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            *limb = v as u32;
        }
        self.trim();
    }

    /// `self /= d`, returning the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    /// Divides `self` by `den` when the quotient is known to be below 2^120; `self` keeps
    /// the remainder.
    fn div_small_quotient(&mut self, den: &Big) -> u128 {
        let shift = self.bit_len() - den.bit_len();
        if shift < 0 {
            return 0;
        }
        let mut d = den.clone();
        d.shl(shift as u64);
        let mut q = 0u128;
        for _ in 0..=shift {
            q <<= 1;
            if self.cmp(&d) != Ordering::Less {
                self.sub_assign(&d);
                q |= 1;
            }
            d.shr1();
        }
        q
    }

    /// The top (at most) 128 bits as `(m, shift, sticky)`: `self ~= m * 2^shift`, `sticky`
    /// telling whether nonzero bits were cut off.
    fn top128(&self) -> (u128, i64, bool) {
        let shift = (self.bit_len() - 128).max(0);
        let word = (shift / 32) as usize;
        let bit = (shift % 32) as u32;
        let mut m = 0u128;
        for (i, &l) in self.limbs.iter().enumerate().skip(word) {
            let pos = (i - word) as i64 * 32 - i64::from(bit);
            if pos >= 0 {
                m |= u128::from(l) << pos;
            } else {
                m |= u128::from(l >> bit);
            }
        }
        let sticky = self.limbs[..word.min(self.limbs.len())].iter().any(|&l| l != 0)
            || self.limbs.get(word).is_some_and(|&l| bit > 0 && l & ((1 << bit) - 1) != 0);
        (m, shift, sticky)
    }

    /// Decimal digits, most significant first ("0" for zero).
    fn to_decimal(&self) -> Vec<u8> {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut out = Vec::with_capacity(chunks.len() * 9 + 1);
        match chunks.pop() {
            None => out.push(b'0'),
            Some(top) => out.extend_from_slice(top.to_string().as_bytes()),
        }
        for c in chunks.iter().rev() {
            out.extend_from_slice(format!("{c:09}").as_bytes());
        }
        out
    }
}

// ------------------------------------------------------------------------------------------
// Correct rounding of an exact binary value to a floating-point format
// ------------------------------------------------------------------------------------------

/// A binary floating-point format: values are `mant * 2^exp` with `mant < 2^prec`,
/// `exp >= min_exp` (subnormals use `min_exp`), `exp <= max_exp` for normalized `mant`.
#[derive(Debug, Clone, Copy)]
struct BinFormat {
    prec: u32,
    min_exp: i64,
    max_exp: i64,
    /// Any value below `10^min_dec` rounds to zero; any value at or above `10^max_dec`
    /// overflows. Used to skip huge exact computations.
    min_dec: i64,
    max_dec: i64,
}

/// x87 80-bit extended precision (C `long double` on x86-64 Linux).
const EXTENDED: BinFormat = BinFormat { prec: 64, min_exp: -16445, max_exp: 16320, min_dec: -4952, max_dec: 4933 };
/// IEEE 754 binary64.
const DOUBLE: BinFormat = BinFormat { prec: 53, min_exp: -1074, max_exp: 971, min_dec: -325, max_dec: 309 };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounded {
    Zero,
    Finite { mant: u64, exp: i64 },
    Inf,
}

/// Rounds `(m + (sticky ? tiny : 0)) * 2^e` to nearest, ties to even, in `fmt`. When `sticky`
/// may be set, `m` must have at least `fmt.prec + 2` significant bits.
fn round_binary(m: u128, e: i64, sticky: bool, fmt: &BinFormat) -> Rounded {
    if m == 0 {
        return Rounded::Zero;
    }
    let bit_len = i64::from(128 - m.leading_zeros());
    let mut shift = bit_len - i64::from(fmt.prec);
    let mut exp = e.saturating_add(shift);
    if exp < fmt.min_exp {
        shift = shift.saturating_add(fmt.min_exp - exp);
        exp = fmt.min_exp;
    }
    let mut mant = if shift <= 0 { m << (-shift) as u32 } else { shift_round(m, shift, sticky) };
    if mant >> fmt.prec != 0 {
        mant >>= 1;
        exp += 1;
    }
    if mant == 0 {
        Rounded::Zero
    } else if exp > fmt.max_exp {
        Rounded::Inf
    } else {
        Rounded::Finite { mant: mant as u64, exp }
    }
}

/// `m >> shift` (shift > 0) rounded to nearest, ties to even.
fn shift_round(m: u128, shift: i64, sticky: bool) -> u128 {
    if shift > 128 {
        return 0;
    }
    if shift == 128 {
        let half = 1u128 << 127;
        return u128::from(m > half || (m == half && sticky));
    }
    let s = shift as u32;
    let q = m >> s;
    let rem = m & ((1u128 << s) - 1);
    let half = 1u128 << (s - 1);
    let up = rem > half || (rem == half && (sticky || q & 1 == 1));
    q + u128::from(up)
}

/// The significant decimal digits of `int` and `frac` (no leading or trailing zeros) and the
/// power of ten to scale them by.
fn significant_digits<'a>(int: &'a [u8], frac: &'a [u8], exp: i64) -> (Vec<&'a u8>, i64) {
    let mut digits: Vec<&u8> = int.iter().chain(frac).skip_while(|&&c| c == b'0').collect();
    let mut dexp = exp - frac.len() as i64;
    while digits.last() == Some(&&b'0') {
        digits.pop();
        dexp += 1;
    }
    (digits, dexp)
}

/// Exactly rounds the decimal `int.frac * 10^exp` to `fmt`.
fn decimal_to_binary(int: &[u8], frac: &[u8], exp: i64, fmt: &BinFormat) -> Rounded {
    let (digits, dexp) = significant_digits(int, frac, exp);
    if digits.is_empty() {
        return Rounded::Zero;
    }
    let top = digits.len() as i64 + dexp;
    if top < fmt.min_dec {
        return Rounded::Zero;
    }
    if top > fmt.max_dec {
        return Rounded::Inf;
    }
    if digits.len() <= 38 {
        let d = digits.iter().fold(0u128, |acc, &&c| acc * 10 + u128::from(c - b'0'));
        if let Some(r) = small_decimal_to_binary(d, dexp, fmt) {
            return r;
        }
    }
    let mut num = Big::default();
    for chunk in digits.chunks(9) {
        let v = chunk.iter().fold(0u32, |acc, &&c| acc * 10 + u32::from(c - b'0'));
        num.mul_add_small(10u32.pow(chunk.len() as u32), v);
    }
    if dexp >= 0 {
        num.mul_pow10(dexp as u64);
        let (m, shift, sticky) = num.top128();
        return round_binary(m, shift, sticky, fmt);
    }
    let mut den = Big::from_u64(1);
    den.mul_pow10(dexp.unsigned_abs());
    let t = num.bit_len() - den.bit_len() - 66;
    if t >= 0 {
        den.shl(t as u64);
    } else {
        num.shl(t.unsigned_abs());
    }
    let q = num.div_small_quotient(&den);
    round_binary(q, t, !num.is_zero(), fmt)
}

/// `d * 10^dexp` with 128-bit arithmetic when the exponent is small; `None` otherwise.
fn small_decimal_to_binary(d: u128, dexp: i64, fmt: &BinFormat) -> Option<Rounded> {
    if (0..=27).contains(&dexp) {
        let (m, e, sticky) = mul_u128_u64(d, 5u64.pow(dexp as u32));
        return Some(round_binary(m, e + dexp, sticky, fmt));
    }
    if (-25..0).contains(&dexp) {
        // d / 10^k = d / 5^k * 2^-k, with at least 66 quotient bits (5^25 < 2^59).
        let k = dexp.unsigned_abs() as u32;
        let five = 5u64.pow(k);
        let target = (64 - five.leading_zeros()) + 67;
        let bits = 128 - d.leading_zeros();
        let (num, e, lost) = if bits <= target {
            let s = target - bits;
            (d << s, -i64::from(s), false)
        } else {
            let r = bits - target;
            (d >> r, i64::from(r), d & ((1u128 << r) - 1) != 0)
        };
        let (q, rem) = (num / u128::from(five), num % u128::from(five));
        return Some(round_binary(q, e - i64::from(k), lost || rem != 0, fmt));
    }
    None
}

/// `a * m` as its top 128 bits `x`, a binary exponent `e` and a sticky flag:
/// `a * m = x * 2^e + (nonzero bits below when sticky)`.
fn mul_u128_u64(a: u128, m: u64) -> (u128, i64, bool) {
    const LOW: u128 = u64::MAX as u128;
    let lo = (a & LOW) * u128::from(m);
    let hi = (a >> 64) * u128::from(m);
    let mid = (lo >> 64) + (hi & LOW);
    let low128 = (mid << 64) | (lo & LOW);
    let top = (hi >> 64) + (mid >> 64);
    if top == 0 {
        return (low128, 0, false);
    }
    let r = 128 - top.leading_zeros();
    let x = (top << (128 - r)) | (low128 >> r);
    (x, i64::from(r), low128 & ((1u128 << r) - 1) != 0)
}

/// Exactly rounds the hexadecimal `int.frac * 2^exp` to `fmt`.
fn hex_to_binary(int: &[u8], frac: &[u8], exp: i64, fmt: &BinFormat) -> Rounded {
    let bexp = exp - 4 * frac.len() as i64;
    let digits: Vec<u8> = int.iter().chain(frac).skip_while(|&&c| c == b'0').copied().collect();
    let value = |c: u8| u128::from((c as char).to_digit(16).unwrap_or(0));
    let head = digits.len().min(32);
    let m = digits[..head].iter().fold(0u128, |acc, &c| (acc << 4) | value(c));
    let sticky = digits[head..].iter().any(|&c| c != b'0');
    let e = bexp.saturating_add(4 * (digits.len() - head) as i64);
    round_binary(m, e, sticky, fmt)
}

/// `strtod`/`strtold` of a scanned number (no `errno`): the rounded magnitude.
fn convert(body: Body<'_>, fmt: &BinFormat) -> Option<Rounded> {
    match body {
        Body::Inf => Some(Rounded::Inf),
        Body::Nan => None,
        Body::Num { radix: Radix::Dec, int, frac, exp } => Some(decimal_to_binary(int, frac, exp, fmt)),
        Body::Num { radix: Radix::Hex, int, frac, exp } => Some(hex_to_binary(int, frac, exp, fmt)),
    }
}

/// Whether a scanned number has a nonzero digit (so a zero result means underflow).
fn has_nonzero_digit(body: Body<'_>) -> bool {
    match body {
        Body::Num { int, frac, .. } => int.iter().chain(frac).any(|&c| c != b'0'),
        _ => false,
    }
}

/// Redis's `strtod` checks: `None` for NaN, overflow (ERANGE with +-HUGE_VAL) and underflow to
/// zero (ERANGE with a zero result). Subnormal results are accepted.
fn convert_checked(body: Body<'_>, fmt: &BinFormat) -> Option<Rounded> {
    let r = convert(body, fmt)?;
    match r {
        Rounded::Inf if !matches!(body, Body::Inf) => None,
        Rounded::Zero if has_nonzero_digit(body) => None,
        _ => Some(r),
    }
}

// ------------------------------------------------------------------------------------------
// f64 parsing
// ------------------------------------------------------------------------------------------

fn rounded_to_f64(neg: bool, r: Rounded) -> f64 {
    let magnitude = match r {
        Rounded::Zero => 0.0,
        Rounded::Inf => f64::INFINITY,
        Rounded::Finite { mant, exp } => f64_from_parts(mant, exp),
    };
    if neg {
        -magnitude
    } else {
        magnitude
    }
}

/// `mant * 2^exp` for a value already rounded to [`DOUBLE`].
fn f64_from_parts(mant: u64, exp: i64) -> f64 {
    if mant < 1 << 52 {
        return f64::from_bits(mant);
    }
    let biased = (exp + 1075) as u64;
    f64::from_bits((biased << 52) | (mant & ((1 << 52) - 1)))
}

/// What `strtod` returns for a scanned number whose text (sign included) is `text`, before
/// any `errno` check: +-inf on overflow, 0 on underflow; `None` for NaN.
fn strtod_value(text: &[u8], scan: &Scanned<'_>) -> Option<f64> {
    match scan.body {
        Body::Nan => None,
        Body::Num { radix: Radix::Dec, .. } => std::str::from_utf8(text).ok()?.parse().ok(),
        body => Some(rounded_to_f64(scan.neg, convert(body, &DOUBLE)?)),
    }
}

/// Parses a double as Redis's `string2d` / `getDoubleFromObject` (ZADD and ZINCRBY scores,
/// GEOADD coordinates, and the other `double` arguments).
///
/// Rules (glibc `strtod`, then Redis's checks), all verified against redis-server:
/// * The whole input must be consumed; empty input, leading or trailing spaces and embedded
///   NUL bytes are rejected.
/// * Accepted: optional `+`/`-`; decimal `1`, `1.`, `.5`, `1e3`, `1E+3`; hexadecimal floats
///   `0x10`, `0x1.8p3`, `0X.8P-1`; `inf`, `infinity` in any case (giving +-infinity).
/// * Rejected: any `nan`, a finite number that overflows (`1e400`), a nonzero number that
///   underflows to zero (`1e-400`). Subnormal results (`1e-320`) are accepted. `-0` gives -0.0.
/// * Rounding is correct (nearest, ties to even), as glibc's.
/// * No length limit (unlike [`parse_long_double`]).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let scan = scan_number(s)?;
    if scan.end != s.len() {
        return None;
    }
    let v = strtod_value(s, &scan)?;
    let overflow = v.is_infinite() && !matches!(scan.body, Body::Inf);
    let underflow = v == 0.0 && has_nonzero_digit(scan.body);
    if overflow || underflow {
        return None;
    }
    Some(v)
}

/// Parses a sorted-set range bound the way Redis 7.0/7.2's `zslParseRange` does after the
/// optional `(` (ZRANGEBYSCORE, ZCOUNT, ZREMRANGEBYSCORE... min/max).
///
/// That is bare `strtod` with only two checks (the text after the number must be the end or
/// a NUL byte, and the value must not be NaN), so unlike [`parse_f64`]: leading whitespace is
/// skipped (`" 1"` is 1), an empty string (or one starting with NUL) is 0, anything after a
/// NUL byte is ignored, overflow gives +-inf (`1e400`) and underflow gives 0 (`1e-400`).
/// Trailing spaces and `nan` are still rejected. (Redis 8 made this stricter.)
pub fn parse_range_f64(s: &[u8]) -> Option<f64> {
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    let skip = s.iter().take_while(|&&c| is_c_space(c)).count();
    let text = &s[skip..];
    let Some(scan) = scan_number(text) else {
        return if s.is_empty() { Some(0.0) } else { None };
    };
    if scan.end != text.len() {
        return None;
    }
    strtod_value(text, &scan)
}

// ------------------------------------------------------------------------------------------
// long double
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LdKind {
    Zero,
    /// `mant * 2^exp`, rounded to [`EXTENDED`].
    Finite {
        mant: u64,
        exp: i32,
    },
    Inf,
    Nan,
}

/// A C `long double` as on x86-64 Linux (x87 80-bit extended precision: 64-bit significand,
/// exponent range of about 1e-4951 ..= 1.19e4932), implemented in software so that
/// INCRBYFLOAT and HINCRBYFLOAT give Redis's exact digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongDouble {
    neg: bool,
    kind: LdKind,
}

impl LongDouble {
    /// +0.
    pub const ZERO: LongDouble = LongDouble { neg: false, kind: LdKind::Zero };
    const NAN: LongDouble = LongDouble { neg: false, kind: LdKind::Nan };

    fn from_rounded(neg: bool, r: Rounded) -> LongDouble {
        let kind = match r {
            Rounded::Zero => LdKind::Zero,
            Rounded::Inf => LdKind::Inf,
            Rounded::Finite { mant, exp } => LdKind::Finite { mant, exp: exp as i32 },
        };
        LongDouble { neg, kind }
    }

    /// The exact value of `v` (every double is a long double).
    pub fn from_f64(v: f64) -> LongDouble {
        let neg = v.is_sign_negative();
        if v.is_nan() {
            return LongDouble::NAN;
        }
        if v.is_infinite() {
            return LongDouble { neg, kind: LdKind::Inf };
        }
        if v == 0.0 {
            return LongDouble { neg, kind: LdKind::Zero };
        }
        let bits = v.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1 << 52) - 1);
        let (m, e) = if biased == 0 { (frac, -1074) } else { (frac | 1 << 52, biased - 1075) };
        LongDouble::from_rounded(neg, round_binary(u128::from(m), e, false, &EXTENDED))
    }

    /// The exact value of `v`.
    pub fn from_i64(v: i64) -> LongDouble {
        let r = round_binary(u128::from(v.unsigned_abs()), 0, false, &EXTENDED);
        LongDouble::from_rounded(v < 0, r)
    }

    /// `v` rounded to the nearest double (ties to even).
    pub fn to_f64(self) -> f64 {
        match self.kind {
            LdKind::Nan => f64::NAN,
            LdKind::Inf => rounded_to_f64(self.neg, Rounded::Inf),
            LdKind::Zero => rounded_to_f64(self.neg, Rounded::Zero),
            LdKind::Finite { mant, exp } => {
                let r = round_binary(u128::from(mant), i64::from(exp), false, &DOUBLE);
                rounded_to_f64(self.neg, r)
            }
        }
    }

    /// Neither infinite nor NaN.
    pub fn is_finite(self) -> bool {
        matches!(self.kind, LdKind::Zero | LdKind::Finite { .. })
    }

    /// Whether this is NaN.
    pub fn is_nan(self) -> bool {
        self.kind == LdKind::Nan
    }

    /// Whether this is +-infinity.
    pub fn is_infinite(self) -> bool {
        self.kind == LdKind::Inf
    }

    /// What Redis's `ld2string(..., LD_STR_HUMAN)` prints: `%.17Lf` with trailing zeros (and
    /// a trailing `.`) removed, `-0` shown as `0`; `inf`, `-inf`, `nan` for the specials. This
    /// is the text INCRBYFLOAT and HINCRBYFLOAT store and reply. Large values print all their
    /// integer digits exactly (`1e20` -> `100000000000000000000`, no exponent).
    pub fn format_human(self) -> Vec<u8> {
        match self.kind {
            LdKind::Nan => b"nan".to_vec(),
            LdKind::Inf if self.neg => b"-inf".to_vec(),
            LdKind::Inf => b"inf".to_vec(),
            LdKind::Zero => b"0".to_vec(),
            LdKind::Finite { mant, exp } => format_fixed17(self.neg, mant, exp),
        }
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// `self + rhs`, rounded to nearest (ties to even) as the x87 FPU does; IEEE rules for
    /// zeros, infinities and NaN (`inf + -inf` is NaN, `x + -x` is +0).
    fn add(self, rhs: LongDouble) -> LongDouble {
        use LdKind::{Finite, Inf, Nan, Zero};
        match (self.kind, rhs.kind) {
            (Nan, _) | (_, Nan) => LongDouble::NAN,
            (Inf, Inf) if self.neg != rhs.neg => LongDouble::NAN,
            (Inf, _) => self,
            (_, Inf) => rhs,
            (Zero, Zero) => LongDouble { neg: self.neg && rhs.neg, kind: Zero },
            (Zero, _) => rhs,
            (_, Zero) => self,
            (Finite { mant: am, exp: ae }, Finite { mant: bm, exp: be }) => {
                let a = (self.neg, am, i64::from(ae));
                let b = (rhs.neg, bm, i64::from(be));
                add_finite(if ae >= be { (a, b) } else { (b, a) })
            }
        }
    }
}

impl From<f64> for LongDouble {
    fn from(v: f64) -> LongDouble {
        LongDouble::from_f64(v)
    }
}

impl From<i64> for LongDouble {
    fn from(v: i64) -> LongDouble {
        LongDouble::from_i64(v)
    }
}

/// Sum of two finite nonzero values, the first with the larger (or equal) exponent.
fn add_finite(((an, am, ae), (bn, bm, be)): ((bool, u64, i64), (bool, u64, i64))) -> LongDouble {
    // 62 guard bits below both significands, and a sticky bit for whatever of `b` falls off.
    let a = u128::from(am) << 62;
    let b_full = u128::from(bm) << 62;
    let d = ae - be;
    let b = if d == 0 {
        b_full
    } else if d >= 127 {
        1
    } else {
        let lost = b_full & ((1u128 << d) - 1) != 0;
        (b_full >> d) | u128::from(lost)
    };
    let base = ae - 62;
    let (neg, m) = if an == bn {
        (an, a + b)
    } else {
        match a.cmp(&b) {
            Ordering::Equal => return LongDouble::ZERO,
            Ordering::Greater => (an, a - b),
            Ordering::Less => (bn, b - a),
        }
    };
    LongDouble::from_rounded(neg, round_binary(m, base, false, &EXTENDED))
}

/// `%.17Lf` of `mant * 2^exp`, trimmed as in Redis's human-friendly mode.
fn format_fixed17(neg: bool, mant: u64, exp: i32) -> Vec<u8> {
    const SCALE: u128 = 100_000_000_000_000_000; // 10^17
    let (int_digits, frac): (Vec<u8>, u128) = if exp >= 0 {
        (shifted_decimal(mant, exp as u32), 0)
    } else if exp < -127 {
        // Below 2^-64: rounds to 0 at 17 decimals.
        (b"0".to_vec(), 0)
    } else {
        let k = exp.unsigned_abs();
        let int = if k < 64 { mant >> k } else { 0 };
        let f = if k < 64 { u128::from(mant & ((1u64 << k) - 1)) } else { u128::from(mant) };
        let scaled = f * SCALE; // < 2^121
        let mut q = scaled >> k;
        let rem = scaled & ((1u128 << k) - 1);
        let half = 1u128 << (k - 1);
        if rem > half || (rem == half && q & 1 == 1) {
            q += 1;
        }
        if q == SCALE {
            (format_u128(u128::from(int) + 1), 0)
        } else {
            (format_u128(u128::from(int)), q)
        }
    };
    let mut out = Vec::with_capacity(int_digits.len() + 20);
    if int_digits == b"0" && frac == 0 {
        out.push(b'0');
        return out;
    }
    if neg {
        out.push(b'-');
    }
    out.extend_from_slice(&int_digits);
    if frac != 0 {
        let digits = format!("{frac:017}");
        out.push(b'.');
        out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
    }
    out
}

fn format_u128(v: u128) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Decimal digits of `mant << shift`.
fn shifted_decimal(mant: u64, shift: u32) -> Vec<u8> {
    if shift < 64 {
        return format_u128(u128::from(mant) << shift);
    }
    let mut big = Big::from_u64(mant);
    big.shl(u64::from(shift));
    big.to_decimal()
}

/// Parses a `long double` as Redis's `string2ld` (INCRBYFLOAT's value and increment,
/// HINCRBYFLOAT's field value and increment).
///
/// Same syntax and checks as [`parse_f64`] (glibc `strtold`: decimal, hex floats, `inf`,
/// `infinity`; no spaces, no NUL, no NaN, no overflow, no underflow to zero), but with
/// `long double` range and precision, and inputs of [`MAX_LONG_DOUBLE_CHARS`] (5120) bytes or
/// more are rejected. So `1e400` is accepted here but not by [`parse_f64`], and `1e-4951` is
/// rejected (underflow) while `3e-4951` (subnormal) is accepted.
pub fn parse_long_double(s: &[u8]) -> Option<LongDouble> {
    if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS {
        return None;
    }
    let scan = scan_number(s)?;
    if scan.end != s.len() {
        return None;
    }
    let r = convert_checked(scan.body, &EXTENDED)?;
    Some(LongDouble::from_rounded(scan.neg, r))
}

/// What INCRBYFLOAT stores and replies for a result: [`LongDouble::format_human`] (`%.17Lf`
/// of the exact value, trailing zeros removed). Takes a [`LongDouble`] (or an `f64`, printed
/// exactly). [`incrbyfloat`] does the whole computation.
pub fn format_incrbyfloat(v: impl Into<LongDouble>) -> Vec<u8> {
    v.into().format_human()
}

/// INCRBYFLOAT's arithmetic, after the key's type was checked: `current` is the key's string
/// value (`None` when the key does not exist). Returns the new value, which is both what to
/// store and the bulk reply.
///
/// Errors, in Redis's order: `current` not a float -> [`NOT_FLOAT`]; `incr` not a float ->
/// [`NOT_FLOAT`]; infinite or NaN sum (also `inf` given as increment) -> [`INCR_NAN_OR_INF`].
pub fn incrbyfloat(current: Option<&[u8]>, incr: &[u8]) -> CmdResult<Vec<u8>> {
    let value = match current {
        Some(v) => parse_long_double(v).ok_or(NOT_FLOAT)?,
        None => LongDouble::ZERO,
    };
    let incr = parse_long_double(incr).ok_or(NOT_FLOAT)?;
    let sum = value + incr;
    if !sum.is_finite() {
        return Err(INCR_NAN_OR_INF);
    }
    Ok(sum.format_human())
}

/// HINCRBYFLOAT's increment check, done before the key is even looked up: not a float ->
/// [`NOT_FLOAT`], infinite -> [`VALUE_NAN_OR_INF`].
pub fn parse_hincrbyfloat_incr(incr: &[u8]) -> CmdResult<LongDouble> {
    let v = parse_long_double(incr).ok_or(NOT_FLOAT)?;
    if !v.is_finite() {
        return Err(VALUE_NAN_OR_INF);
    }
    Ok(v)
}

/// HINCRBYFLOAT's arithmetic: `current` is the field's value (`None` when the field or the key
/// does not exist), `incr` from [`parse_hincrbyfloat_incr`]. Returns the new field value
/// (also the bulk reply). Errors: [`HASH_VALUE_NOT_FLOAT`], then [`INCR_NAN_OR_INF`].
pub fn hincrbyfloat(current: Option<&[u8]>, incr: LongDouble) -> CmdResult<Vec<u8>> {
    let value = match current {
        Some(v) => parse_long_double(v).ok_or(HASH_VALUE_NOT_FLOAT)?,
        None => LongDouble::ZERO,
    };
    let sum = value + incr;
    if !sum.is_finite() {
        return Err(INCR_NAN_OR_INF);
    }
    Ok(sum.format_human())
}

// ------------------------------------------------------------------------------------------
// Doubles in replies
// ------------------------------------------------------------------------------------------

/// The longest text [`format_double_reply`] produces (`-1.2345678901234567e-308`).
pub const DOUBLE_REPLY_MAX_CHARS: usize = 24;

/// How Redis 7.2 prints a double in a reply (`addReplyDouble`, i.e. `d2string`): the same
/// text for the RESP2 bulk string and the RESP3 `,` double. Used by ZSCORE, ZINCRBY, ZMSCORE,
/// WITHSCORES replies, GEO distances...
///
/// * `nan`, `inf`, `-inf`, `0`, `-0`;
/// * integral values within +-2^62 as integers: `3`, `-17`, `4611686018427387904`;
/// * everything else with Grisu2 (`fpconv_dtoa`): the shortest digits that round-trip (in
///   rare cases one more digit than the true shortest, exactly as Redis), plain notation
///   when the decimal exponent is small (`0.1`, `1.5`, `0.000001`, `123456789012345680000`)
///   and scientific with a bare exponent otherwise (`1e+21`, `1e-7`, `1.2345e-4`).
///
/// Redis 7.0 (the reference binary here) instead printed `%.17g` ([`format_double_g17`]):
/// `0.10000000000000001`, `1.4999999999999999e-07`, `4.6116860184273879e+18`; integers below
/// 1e17 and values like `1e+20` look the same in both.
pub fn format_double_reply(v: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOUBLE_REPLY_MAX_CHARS);
    append_double_reply(&mut out, v);
    out
}

/// [`format_double_reply`] appending to `out`.
pub fn append_double_reply(out: &mut Vec<u8>, v: f64) {
    const LIMIT: f64 = 4_611_686_018_427_387_904.0; // (double)(LLONG_MAX / 2) = 2^62
    if v.is_nan() {
        out.extend_from_slice(b"nan");
    } else if v.is_infinite() {
        out.extend_from_slice(if v < 0.0 { b"-inf" } else { b"inf" });
    } else if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
    } else if (-LIMIT..=LIMIT).contains(&v) && v.trunc() == v {
        append_i64(out, v as i64);
    } else {
        append_grisu(out, v);
    }
}

/// Normalized powers of ten 10^-348, 10^-340, ..., 10^340 as (64-bit significand, binary
/// exponent), significands rounded to nearest. Computed from their exact values.
const CACHED_POWERS: [(u64, i32); 87] = [
    (0xfa8fd5a0081c0288, -1220),
    (0xbaaee17fa23ebf76, -1193),
    (0x8b16fb203055ac76, -1166),
    (0xcf42894a5dce35ea, -1140),
    (0x9a6bb0aa55653b2d, -1113),
    (0xe61acf033d1a45df, -1087),
    (0xab70fe17c79ac6ca, -1060),
    (0xff77b1fcbebcdc4f, -1034),
    (0xbe5691ef416bd60c, -1007),
    (0x8dd01fad907ffc3c, -980),
    (0xd3515c2831559a83, -954),
    (0x9d71ac8fada6c9b5, -927),
    (0xea9c227723ee8bcb, -901),
    (0xaecc49914078536d, -874),
    (0x823c12795db6ce57, -847),
    (0xc21094364dfb5637, -821),
    (0x9096ea6f3848984f, -794),
    (0xd77485cb25823ac7, -768),
    (0xa086cfcd97bf97f4, -741),
    (0xef340a98172aace5, -715),
    (0xb23867fb2a35b28e, -688),
    (0x84c8d4dfd2c63f3b, -661),
    (0xc5dd44271ad3cdba, -635),
    (0x936b9fcebb25c996, -608),
    (0xdbac6c247d62a584, -582),
    (0xa3ab66580d5fdaf6, -555),
    (0xf3e2f893dec3f126, -529),
    (0xb5b5ada8aaff80b8, -502),
    (0x87625f056c7c4a8b, -475),
    (0xc9bcff6034c13053, -449),
    (0x964e858c91ba2655, -422),
    (0xdff9772470297ebd, -396),
    (0xa6dfbd9fb8e5b88f, -369),
    (0xf8a95fcf88747d94, -343),
    (0xb94470938fa89bcf, -316),
    (0x8a08f0f8bf0f156b, -289),
    (0xcdb02555653131b6, -263),
    (0x993fe2c6d07b7fac, -236),
    (0xe45c10c42a2b3b06, -210),
    (0xaa242499697392d3, -183),
    (0xfd87b5f28300ca0e, -157),
    (0xbce5086492111aeb, -130),
    (0x8cbccc096f5088cc, -103),
    (0xd1b71758e219652c, -77),
    (0x9c40000000000000, -50),
    (0xe8d4a51000000000, -24),
    (0xad78ebc5ac620000, 3),
    (0x813f3978f8940984, 30),
    (0xc097ce7bc90715b3, 56),
    (0x8f7e32ce7bea5c70, 83),
    (0xd5d238a4abe98068, 109),
    (0x9f4f2726179a2245, 136),
    (0xed63a231d4c4fb27, 162),
    (0xb0de65388cc8ada8, 189),
    (0x83c7088e1aab65db, 216),
    (0xc45d1df942711d9a, 242),
    (0x924d692ca61be758, 269),
    (0xda01ee641a708dea, 295),
    (0xa26da3999aef774a, 322),
    (0xf209787bb47d6b85, 348),
    (0xb454e4a179dd1877, 375),
    (0x865b86925b9bc5c2, 402),
    (0xc83553c5c8965d3d, 428),
    (0x952ab45cfa97a0b3, 455),
    (0xde469fbd99a05fe3, 481),
    (0xa59bc234db398c25, 508),
    (0xf6c69a72a3989f5c, 534),
    (0xb7dcbf5354e9bece, 561),
    (0x88fcf317f22241e2, 588),
    (0xcc20ce9bd35c78a5, 614),
    (0x98165af37b2153df, 641),
    (0xe2a0b5dc971f303a, 667),
    (0xa8d9d1535ce3b396, 694),
    (0xfb9b7cd9a4a7443c, 720),
    (0xbb764c4ca7a44410, 747),
    (0x8bab8eefb6409c1a, 774),
    (0xd01fef10a657842c, 800),
    (0x9b10a4e5e9913129, 827),
    (0xe7109bfba19c0c9d, 853),
    (0xac2820d9623bf429, 880),
    (0x80444b5e7aa7cf85, 907),
    (0xbf21e44003acdd2d, 933),
    (0x8e679c2f5e44ff8f, 960),
    (0xd433179d9c8cb841, 986),
    (0x9e19db92b4e31ba9, 1013),
    (0xeb96bf6ebadf77d9, 1039),
    (0xaf87023b9bf0ee6b, 1066),
];

/// A 64-bit "do-it-yourself" float: `f * 2^e`.
#[derive(Debug, Clone, Copy)]
struct DiyFp {
    f: u64,
    e: i32,
}

impl DiyFp {
    /// Shifts left until bit 63 is set.
    fn normalized(self) -> DiyFp {
        let lz = self.f.leading_zeros();
        DiyFp { f: self.f << lz, e: self.e - lz as i32 }
    }

    /// The product's upper 64 bits, rounded half up.
    fn mul(self, o: DiyFp) -> DiyFp {
        let p = u128::from(self.f) * u128::from(o.f) + (1u128 << 63);
        DiyFp { f: (p >> 64) as u64, e: self.e + o.e + 64 }
    }
}

/// The cached power whose product with a number of binary exponent `e` lands in
/// [-60, -32], searched from the same starting guess as fpconv; returns it and its decimal
/// exponent.
fn cached_power(e: i32) -> (DiyFp, i32) {
    let approx = (f64::from(-(e + 87)) * 0.301_029_995_663_981_14) as i32;
    let mut idx = ((approx + 348) / 8).clamp(0, 86) as usize;
    for _ in 0..CACHED_POWERS.len() {
        let (f, pe) = CACHED_POWERS[idx];
        let current = e + pe + 64;
        if current < -60 && idx < 86 {
            idx += 1;
        } else if current > -32 && idx > 0 {
            idx -= 1;
        } else {
            return (DiyFp { f, e: pe }, -348 + 8 * idx as i32);
        }
    }
    let (f, pe) = CACHED_POWERS[idx];
    (DiyFp { f, e: pe }, -348 + 8 * idx as i32)
}

/// Grisu2 digits of a finite positive double (given by its bits): writes the digits and
/// returns (count, K) with value ~ digits * 10^K.
fn grisu2(bits: u64, digits: &mut [u8; 18]) -> (usize, i32) {
    const HIDDEN: u64 = 1 << 52;
    let frac = bits & (HIDDEN - 1);
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let w = if biased != 0 { DiyFp { f: frac + HIDDEN, e: biased - 1075 } } else { DiyFp { f: frac, e: -1074 } };
    let upper = DiyFp { f: (w.f << 1) + 1, e: w.e - 1 }.normalized();
    let l_shift = if w.f == HIDDEN { 2 } else { 1 };
    let lower_e = w.e - l_shift;
    let lower = DiyFp { f: ((w.f << l_shift) - 1) << (lower_e - upper.e), e: upper.e };
    let (cp, k) = cached_power(upper.e);
    let w = w.normalized().mul(cp);
    let mut upper = upper.mul(cp);
    let mut lower = lower.mul(cp);
    lower.f = lower.f.wrapping_add(1);
    upper.f = upper.f.wrapping_sub(1);
    let mut kk = -k;
    let n = generate_digits(w, upper, lower, digits, &mut kk);
    (n, kk)
}

/// Grisu2's digit generation with fpconv's rounding ("weeding") step.
fn generate_digits(w: DiyFp, upper: DiyFp, lower: DiyFp, digits: &mut [u8; 18], k: &mut i32) -> usize {
    const TENS: [u64; 20] = {
        let mut t = [1u64; 20];
        let mut i = 18;
        loop {
            t[i] = t[i + 1] * 10;
            if i == 0 {
                break;
            }
            i -= 1;
        }
        t
    };
    let wfrac = upper.f.wrapping_sub(w.f);
    let mut delta = upper.f.wrapping_sub(lower.f);
    let shift = (-upper.e) as u32;
    let one = 1u64 << shift;
    let mut part1 = upper.f >> shift;
    let mut part2 = upper.f & (one - 1);
    let mut idx = 0usize;
    let mut kappa = 10i32;
    for &div in &TENS[10..20] {
        let digit = part1 / div;
        if (digit != 0 || idx != 0) && idx < digits.len() {
            digits[idx] = b'0' + digit as u8;
            idx += 1;
        }
        part1 -= digit * div;
        kappa -= 1;
        let tmp = (part1 << shift).wrapping_add(part2);
        if tmp <= delta {
            *k += kappa;
            round_digit(&mut digits[..idx], delta, tmp, div << shift, wfrac);
            return idx;
        }
    }
    let mut unit = 18usize;
    loop {
        part2 = part2.wrapping_mul(10);
        delta = delta.wrapping_mul(10);
        kappa -= 1;
        let digit = part2 >> shift;
        if (digit != 0 || idx != 0) && idx < digits.len() {
            digits[idx] = b'0' + digit as u8;
            idx += 1;
        }
        part2 &= one - 1;
        if part2 < delta || unit == 0 {
            *k += kappa;
            round_digit(&mut digits[..idx], delta, part2, one, wfrac.wrapping_mul(TENS[unit]));
            return idx;
        }
        unit -= 1;
    }
}

/// Moves the last digit down while that brings the result closer to the exact value.
fn round_digit(digits: &mut [u8], delta: u64, mut rem: u64, kappa: u64, frac: u64) {
    let Some(last) = digits.last_mut() else {
        return;
    };
    while rem < frac
        && delta.wrapping_sub(rem) >= kappa
        && (rem.wrapping_add(kappa) < frac || frac.wrapping_sub(rem) > rem.wrapping_add(kappa).wrapping_sub(frac))
        && *last > b'0'
    {
        *last -= 1;
        rem = rem.wrapping_add(kappa);
    }
}

/// `fpconv_dtoa` of a finite nonzero double.
fn append_grisu(out: &mut Vec<u8>, v: f64) {
    let neg = v.is_sign_negative();
    if neg {
        out.push(b'-');
    }
    let mut digits = [0u8; 18];
    let (n, k) = grisu2(v.to_bits() & !(1 << 63), &mut digits);
    emit_digits(out, &digits[..n], k, neg);
}

/// fpconv's layout of `digits * 10^k`.
fn emit_digits(out: &mut Vec<u8>, digits: &[u8], k: i32, neg: bool) {
    if digits.is_empty() {
        // Grisu2 always yields a digit for a nonzero double; never print nothing.
        out.push(b'0');
        return;
    }
    let n = digits.len() as i32;
    let exp = (k + n - 1).abs();
    if k >= 0 && exp < n + 7 {
        out.extend_from_slice(digits);
        out.resize(out.len() + k as usize, b'0');
        return;
    }
    if k < 0 && (k > -7 || exp < 4) {
        let offset = n - k.abs();
        if offset <= 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + offset.unsigned_abs() as usize, b'0');
            out.extend_from_slice(digits);
        } else {
            let (int, frac) = digits.split_at(offset as usize);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        }
        return;
    }
    let shown = &digits[..digits.len().min(18 - usize::from(neg))];
    out.push(shown[0]);
    if shown.len() > 1 {
        out.push(b'.');
        out.extend_from_slice(&shown[1..]);
    }
    out.push(b'e');
    out.push(if k + shown.len() as i32 - 1 < 0 { b'-' } else { b'+' });
    let mut rest = exp;
    let hundreds = rest / 100;
    if exp > 99 {
        out.push(b'0' + hundreds as u8);
        rest -= hundreds * 100;
    }
    if rest > 9 {
        out.push(b'0' + (rest / 10) as u8);
        rest %= 10;
    } else if exp > 99 {
        out.push(b'0');
    }
    out.push(b'0' + rest as u8);
}

/// C's `printf("%.17g", v)`: Redis 7.0's double replies, and what Redis 7.2 still uses for
/// ZSCAN scores of skiplist-encoded sorted sets (`%.17Lg` of the widened double is the same
/// text). `inf`/`-inf`/`nan` for the specials (Redis special-cases them the same way).
pub fn format_double_g17(v: f64) -> Vec<u8> {
    if v.is_nan() {
        return b"nan".to_vec();
    }
    if v.is_infinite() {
        return if v < 0.0 { b"-inf".to_vec() } else { b"inf".to_vec() };
    }
    // 17 significant digits, exactly rounded (ties to even), as d.dddddddddddddddde<x>.
    let sci = format!("{v:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if !(-4..17).contains(&exp) {
        let rest = digits[1..].trim_end_matches('0');
        out.push_str(&digits[..1]);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push_str(&format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs()));
    } else if exp >= 0 {
        let (int, frac) = digits.split_at(exp as usize + 1);
        out.push_str(int);
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    } else {
        out.push_str("0.");
        out.push_str(&"0".repeat(exp.unsigned_abs() as usize - 1));
        out.push_str(digits.trim_end_matches('0'));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    //! Expected values were produced by redis-server 7.0.15 (INCRBYFLOAT, HINCRBYFLOAT, ZADD,
    //! ZRANGEBYSCORE, 7.0's ZSCORE for `%.17g`) and redis-server 8.2.3 (ZSCORE, whose
    //! `d2string` is unchanged since 7.2).
    use super::*;

    fn incr(cur: Option<&str>, by: &str) -> Result<String, String> {
        incrbyfloat(cur.map(str::as_bytes), by.as_bytes())
            .map(|v| String::from_utf8(v).unwrap())
            .map_err(|e| e.text().to_string())
    }

    const NOT_FLOAT_TEXT: &str = "ERR value is not a valid float";
    const NAN_INF_TEXT: &str = "ERR increment would produce NaN or Infinity";

    #[test]
    fn parse_i64_is_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"123"), Some(123));
        assert_eq!(parse_i64(b"-123"), Some(-123));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in ["", "-", "-0", "01", "+1", " 1", "1 ", "1a", "9223372036854775808"] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
        assert_eq!(parse_i64(b"99999999999999999999999"), None);
    }

    #[test]
    fn format_i64_matches_display() {
        for v in [0, 5, -5, 9, 10, 99, 100, -100, 12345, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(format_i64(v), v.to_string().into_bytes());
            let mut out = b"x".to_vec();
            append_i64(&mut out, v);
            assert_eq!(out, format!("x{v}").into_bytes());
        }
    }

    #[test]
    fn incrbyfloat_uses_long_double_precision() {
        assert_eq!(incr(Some("10.5"), "0.1").unwrap(), "10.6");
        assert_eq!(incr(Some("0.1"), "0.2").unwrap(), "0.3");
        assert_eq!(incr(None, "12345.678").unwrap(), "12345.67799999999999994");
        assert_eq!(incr(None, "5.0e3").unwrap(), "5000");
        assert_eq!(incr(Some("5000"), "1e20").unwrap(), "100000000000000005000");
        assert_eq!(incr(None, "+1.5").unwrap(), "1.5");
        assert_eq!(incr(Some("1.5"), ".5").unwrap(), "2");
        assert_eq!(incr(Some("2"), "5.").unwrap(), "7");
        assert_eq!(incr(Some("7"), "0x1p-2").unwrap(), "7.25");
        assert_eq!(incr(Some("7.25"), "0x.8").unwrap(), "7.75");
        assert_eq!(incr(Some("7.75"), "0X1P+3").unwrap(), "15.75");
        assert_eq!(incr(Some("15.75"), "1E2").unwrap(), "115.75");
        assert_eq!(incr(None, "0x10").unwrap(), "16");
        assert_eq!(incr(Some("16"), "-0").unwrap(), "16");
    }

    #[test]
    fn incrbyfloat_rounds_17_decimals_half_even() {
        assert_eq!(incr(Some("0.000003814697265625"), "0").unwrap(), "0.00000381469726562");
        assert_eq!(incr(None, "0.000011444091796875").unwrap(), "0.00001144409179688");
        assert_eq!(incr(None, "0.000000000000000015").unwrap(), "0.00000000000000002");
        let s = "0.000000000000000025000000000000000001";
        assert_eq!(incr(None, s).unwrap(), "0.00000000000000003");
        assert_eq!(incr(None, "0.000000000000000005").unwrap(), "0");
        assert_eq!(incr(None, "-0.00000000000000000499").unwrap(), "0");
        assert_eq!(incr(None, "-1e-30").unwrap(), "0");
        assert_eq!(incr(Some("-0"), "-0").unwrap(), "0");
        assert_eq!(incr(None, "-0").unwrap(), "0");
    }

    #[test]
    fn incrbyfloat_prints_huge_values_in_full() {
        let e400 = "10000000000000000000281880683947586514586453433629052038625910693539685534\
            008629862039363994848324160522094053927317616200295822777259255734023828976593340661\
            017797447434546173917862448116674971723778943824391593338047470675026246684401359237\
            513603830343735485505244955964979021825038280091068414947402456898653040951017512658\
            092615827588920183472511643316591362664138176309734806343732497430221946880";
        assert_eq!(incr(None, "1e400").unwrap(), e400);
        let max = "179769313486231569995921046774104434048386446944329178485314420765176628523\
            124396354701868608387085564428793419425520689308708363451136055357897278026477617073\
            498977686288394835618163294045594434929537447290627480669417384648879122776218333598\
            953852832103282504751611691208117720159985926376802466863339536384";
        assert_eq!(incr(None, "1.7976931348623157e308").unwrap(), max);
        let top = incr(None, "1.18973149535723176502e+4932").unwrap();
        assert_eq!(top.len(), 4933);
        assert!(top.starts_with("118973149535723176502126385303097020516906332229462420044032"));
        assert!(top.ends_with(
            "8837777258648564145934262121086647588489260031762345960769508849149662444156604419552086811989770240"
        ));
        assert_eq!(incr(Some(&top), "0").unwrap(), top);
        let e4932 = incr(None, "1e4932").unwrap();
        assert!(e4932.starts_with("1000000000000000000006018949387963891323837774254533114773785041"));
        assert_eq!(incr(Some(&e4932), "1e4932").unwrap_err(), NAN_INF_TEXT);
    }

    #[test]
    fn incrbyfloat_range_limits() {
        assert_eq!(incr(None, "1e4933").unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(None, "1.18973149535723176508e+4932").unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(None, "1e-4940").unwrap(), "0");
        assert_eq!(incr(None, "3e-4951").unwrap(), "0");
        assert_eq!(incr(None, "0x1p-16445").unwrap(), "0");
        assert_eq!(incr(None, "0x1.8p-16446").unwrap(), "0");
        assert_eq!(incr(None, "0x1p-16446").unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(None, "1e-4951").unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(None, "1e-5000").unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(None, "1e99999999999999999999999").unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(None, "0e99999999999999999999999").unwrap(), "0");
        assert_eq!(incr(None, "1e-99999999999999999999999").unwrap_err(), NOT_FLOAT_TEXT);
        let long_ok = format!("1.{}1", "0".repeat(5116));
        assert_eq!(incr(None, &long_ok).unwrap(), "1");
        let too_long = format!("1.{}1", "0".repeat(5117));
        assert_eq!(incr(None, &too_long).unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(Some(&too_long), "1").unwrap_err(), NOT_FLOAT_TEXT);
    }

    #[test]
    fn incrbyfloat_syntax_errors() {
        for bad in [" 1", "1 ", "\t1", "nan", "NaN", "-nan", "nan(123)", "", ".", "1e", "1e+", "-"] {
            assert_eq!(incr(None, bad).unwrap_err(), NOT_FLOAT_TEXT, "{bad:?}");
        }
        for bad in ["\u{0}", "5\u{0}x", "1\u{0}", "0x", "0x1p", "infinit", "1..2", "--1", "abc"] {
            assert_eq!(incr(None, bad).unwrap_err(), NOT_FLOAT_TEXT, "{bad:?}");
        }
        assert_eq!(incr(Some("abc"), "1").unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(Some("\u{0}"), "1").unwrap_err(), NOT_FLOAT_TEXT);
        assert_eq!(incr(Some("1e4933"), "1").unwrap_err(), NOT_FLOAT_TEXT);
        for inf in ["inf", "-inf", "infinity", "-Infinity", "INF"] {
            assert_eq!(incr(None, inf).unwrap_err(), NAN_INF_TEXT, "{inf:?}");
        }
    }

    #[test]
    fn hincrbyfloat_errors() {
        assert_eq!(parse_hincrbyfloat_incr(b"inf").unwrap_err(), VALUE_NAN_OR_INF);
        assert_eq!(parse_hincrbyfloat_incr(b"abc").unwrap_err(), NOT_FLOAT);
        let one = parse_hincrbyfloat_incr(b"1").unwrap();
        assert_eq!(hincrbyfloat(Some(b"abc"), one).unwrap_err(), HASH_VALUE_NOT_FLOAT);
        assert_eq!(hincrbyfloat(None, one).unwrap(), b"1");
        let neg_zero = parse_hincrbyfloat_incr(b"-0").unwrap();
        assert_eq!(hincrbyfloat(Some(b"-0"), neg_zero).unwrap(), b"0");
        let big = parse_hincrbyfloat_incr(b"1e4932").unwrap();
        let stored = hincrbyfloat(None, big).unwrap();
        assert_eq!(hincrbyfloat(Some(&stored), big).unwrap_err(), INCR_NAN_OR_INF);
        assert_eq!(hincrbyfloat(Some(b"inf"), one).unwrap_err(), INCR_NAN_OR_INF);
    }

    #[test]
    fn long_double_arithmetic() {
        let p = |s: &str| parse_long_double(s.as_bytes()).unwrap();
        assert_eq!((p("1") + p("-1")).format_human(), b"0");
        assert!((p("inf") + p("-inf")).is_nan());
        assert!((p("inf") + p("1")).is_infinite());
        assert_eq!(p("0.1").to_f64(), 0.1);
        assert_eq!(LongDouble::from(0.1f64).format_human(), b"0.10000000000000001");
        assert_eq!(format_incrbyfloat(0.1f64), b"0.10000000000000001");
        assert_eq!(format_incrbyfloat(p("0.1")), b"0.1");
        assert_eq!(LongDouble::from_i64(i64::MIN).format_human(), b"-9223372036854775808");
        assert_eq!(LongDouble::from(-2.5f64).format_human(), b"-2.5");
        // 2^64 + 1 needs 65 bits: rounds to even.
        assert_eq!(p("18446744073709551617").format_human(), b"18446744073709551616");
        assert_eq!(p("18446744073709551615").format_human(), b"18446744073709551615");
    }

    #[test]
    fn parse_f64_follows_string2d() {
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"1e-320"), Some(1e-320));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-INFINITY"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"5."), Some(5.0));
        assert_eq!(parse_f64(b"-1E+3"), Some(-1000.0));
        assert!(parse_f64(b"-0").unwrap().is_sign_negative());
        assert_eq!(parse_f64(b"0e99999999999999999999999"), Some(0.0));
        assert_eq!(parse_f64(b"0x0p99999999999999999999"), Some(0.0));
        assert_eq!(parse_f64(b"0x1.fffffffffffff7ffp1023"), Some(f64::MAX));
        assert_eq!(parse_f64(b"0x1p-1074"), Some(f64::from_bits(1)));
        assert_eq!(parse_f64(b"0x1.8p-1075"), Some(f64::from_bits(1)));
        assert_eq!(parse_f64(b"0x1.00000000000008p0"), Some(1.0));
        assert_eq!(parse_f64(b"0x1.00000000000018p0"), Some(1.0 + 2.0 * f64::EPSILON));
        assert_eq!(parse_f64(format!("1.{}1", "0".repeat(6000)).as_bytes()), Some(1.0));
        for bad in ["1e400", "1e-400", " 1", "1 ", "nan", "1\u{0}", "", "1e99999999999999999999999"] {
            assert_eq!(parse_f64(bad.as_bytes()), None, "{bad:?}");
        }
        for bad in ["0x1p99999999999999999999", "0x1.fffffffffffff8p1023", "0x1p-1075", "0x", "e1"] {
            assert_eq!(parse_f64(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn parse_range_f64_is_bare_strtod() {
        assert_eq!(parse_range_f64(b""), Some(0.0));
        assert_eq!(parse_range_f64(b" 1"), Some(1.0));
        assert_eq!(parse_range_f64(b"\t1"), Some(1.0));
        assert_eq!(parse_range_f64(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_range_f64(b"-1e400"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_range_f64(b"1e-400"), Some(0.0));
        assert_eq!(parse_range_f64(b"0x1"), Some(1.0));
        assert_eq!(parse_range_f64(b"1\0abc"), Some(1.0));
        assert_eq!(parse_range_f64(b"infinity"), Some(f64::INFINITY));
        for bad in ["1 ", " ", "nan", "-", ".", "1e", "0x", "abc"] {
            assert_eq!(parse_range_f64(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn double_reply_is_redis_7_2_d2string() {
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (0.30000000000000004, "0.30000000000000004"),
            (1.5e-7, "1.5e-7"),
            (123456789.123, "123456789.123"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (1e300, "1e+300"),
            (1e-300, "1e-300"),
            (12345678901234567890.0, "12345678901234567000"),
            (123456789012345680000.0, "123456789012345680000"),
            (4611686018427387904.0, "4611686018427387904"),
            (-4611686018427387904.0, "-4611686018427387904"),
            (1.373428634809579e18, "1373428634809579008"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (0.00012345, "1.2345e-4"),
            (7.036870839547745e177, "7.0368708395477454e+177"),
            (-2.5, "-2.5"),
            (3.0, "3"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::from_bits(1), "5e-324"),
        ];
        for &(v, want) in cases {
            assert_eq!(String::from_utf8(format_double_reply(v)).unwrap(), want, "{v:e}");
        }
    }

    #[test]
    fn double_g17_is_redis_7_0_format() {
        let cases: &[(f64, &str)] = &[
            (0.1, "0.10000000000000001"),
            (1e300, "1.0000000000000001e+300"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
            (4611686018427387904.0, "4.6116860184273879e+18"),
            (0.000001, "9.9999999999999995e-07"),
            (1e-7, "9.9999999999999995e-08"),
            (0.00012345, "0.00012344999999999999"),
            (1.5e-7, "1.4999999999999999e-07"),
            (123456789.123, "123456789.123"),
            (1e20, "1e+20"),
            (2f64.powi(-25), "2.9802322387695312e-08"),
            (3.0, "3"),
            (-0.0, "-0"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(String::from_utf8(format_double_g17(v)).unwrap(), want, "{v:e}");
        }
    }

    #[test]
    fn no_panics_on_odd_inputs() {
        let inputs: &[&[u8]] = &[
            b"0x",
            b"0x.",
            b"0x.p1",
            b"0xp1",
            b"1e-",
            b"+",
            b"-.",
            b"nan(",
            b"nan()",
            b"nan(a_1)",
            b"\xff\xfe",
            b"0x1p-99999999999999999999999999",
            b"9e-99999999999",
            b".e1",
        ];
        for s in inputs {
            let _ = parse_f64(s);
            let _ = parse_range_f64(s);
            let _ = parse_long_double(s);
        }
        for bits in [0, 1, u64::MAX >> 1, 0x7fef_ffff_ffff_ffff, 0x0010_0000_0000_0000, 0x8000_0000_0000_0001] {
            let v = f64::from_bits(bits);
            let _ = format_double_reply(v);
            let _ = format_double_g17(v);
            let _ = format_incrbyfloat(v);
        }
    }
}
