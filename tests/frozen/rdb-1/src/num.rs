//! Number <-> text conversions with Redis's rules.
//!
//! * A string counts as an integer only in its canonical form (what Redis's `string2ll`
//!   accepts): optional `-`, no leading zeros, no `+`, no `-0`, fits in i64. Encoders rely on
//!   this so that "007" is never turned into 7 and back into "7".
//! * Scores that are not integers are written in the shortest form that parses back to the
//!   same double, in `%g` style (exponent outside [-5, 17) uses `e` notation).

/// Returns the value of `s` if it is the canonical decimal form of an i64.
pub fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!negative).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulate as a negative number so that i64::MIN is reachable.
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(v)
    } else {
        v.checked_neg()
    }
}

/// Decimal text of an integer.
pub fn format_i64(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The integer a double converts to without loss, using Redis's `double2ll` range
/// (|d| <= i64::MAX / 2), or `None`.
pub fn double_to_i64(d: f64) -> Option<i64> {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if !(-LIMIT..=LIMIT).contains(&d) {
        return None; // also rejects NaN
    }
    let v = d as i64;
    (v as f64 == d).then_some(v)
}

/// Text of a double as Redis's `d2string` would write it: `nan`, `inf`, `-inf`, `0`, `-0`,
/// integers without a fraction, otherwise the shortest round-trip digits.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    if let Some(v) = double_to_i64(d) {
        return v.to_string();
    }
    shortest_g(d)
}

/// Shortest round-trip digits of a finite non-zero double, laid out like `%g`.
fn shortest_g(d: f64) -> String {
    // `{:e}` gives the shortest digits that parse back exactly, as "-d.ddde<exp>".
    let sci = format!("{d:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut s = String::from(sign);
    if (-5..17).contains(&exp) {
        if exp < 0 {
            s.push_str("0.");
            for _ in 0..(-exp - 1) {
                s.push('0');
            }
            s.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                s.push_str(&digits);
                for _ in digits.len()..int_len {
                    s.push('0');
                }
            } else {
                s.push_str(&digits[..int_len]);
                s.push('.');
                s.push_str(&digits[int_len..]);
            }
        }
    } else {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if exp < 0 { '-' } else { '+' });
        s.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    s
}

/// Parses a score written as text (`strtod` style: decimal, exponent, `inf`, `nan`).
pub fn parse_double(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty() || text.len() > 512 {
        return None;
    }
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers() {
        for (s, v) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("123", Some(123)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("-0", None),
            ("007", None),
            ("+1", None),
            ("", None),
            ("-", None),
            (" 1", None),
            ("1a", None),
            ("00", None),
        ] {
            assert_eq!(parse_canonical_i64(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn doubles_format_and_roundtrip() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(0.1), "0.1");
        assert_eq!(format_double(1e-7), "1e-07");
        assert_eq!(format_double(1.25e300), "1.25e+300");
        assert_eq!(format_double(0.000123), "0.000123");
        let mut x: u64 = 88172645463325252;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = f64::from_bits(x);
            if d.is_nan() {
                continue;
            }
            let s = format_double(d);
            assert_eq!(parse_double(s.as_bytes()), Some(d), "{s}");
        }
        assert_eq!(double_to_i64(4.0), Some(4));
        assert_eq!(double_to_i64(4.5), None);
        assert_eq!(double_to_i64(1e300), None);
        assert_eq!(double_to_i64(f64::NAN), None);
    }
}
