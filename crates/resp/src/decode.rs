//! Incremental request decoder.
//!
//! Contract: [`parse_command`] looks at the bytes at the start of a client's query buffer and
//! either returns one complete command (and how many bytes it used), says how many bytes the
//! buffer must hold before trying again, or returns the protocol error Redis would send before
//! closing the connection. It never reads a socket and never allocates according to a length
//! prefix: the argument list grows only with arguments whose bytes have arrived.
//!
//! The rules follow Redis's `processMultibulkBuffer`/`processInlineBuffer`: header lines are
//! searched up to the first NUL byte (Redis uses `strchr`), the two bytes after a line or a bulk
//! are skipped without being checked, and unauthenticated clients get tighter limits.

use std::ops::Range;

use crate::split::split_args;

/// Longest inline command, and longest multibulk header line, Redis accepts (64 KiB).
pub const INLINE_MAX: usize = 64 * 1024;
/// Most arguments an unauthenticated client may send in one command.
pub const PREAUTH_MAX_ARGS: i64 = 10;
/// Largest bulk argument an unauthenticated client may send.
pub const PREAUTH_MAX_BULK: i64 = 16 * 1024;

/// Limits that depend on configuration and on the client's state.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest bulk argument accepted.
    pub max_bulk_len: i64,
    /// Whether the client may send full-size commands (it authenticated, or no password is set).
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, authenticated: true }
    }
}

/// What [`parse_command`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete RESP multibulk command of `consumed` bytes; its arguments were written to the
    /// caller's range list as ranges of the buffer. No arguments means "nothing to run".
    Multibulk { consumed: usize },
    /// A complete inline command of `consumed` bytes, with its unquoted arguments.
    Inline { consumed: usize, args: Vec<Vec<u8>> },
    /// The command is not complete: call again once the buffer holds at least `need` bytes.
    Incomplete { need: usize },
}

/// A malformed request. The connection gets `-ERR <message>` and is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    TooBigInline,
    UnbalancedQuotes,
    TooBigMultibulkCount,
    InvalidMultibulkLength,
    UnauthenticatedMultibulkLength,
    TooBigBulkCount,
    ExpectedDollar(u8),
    InvalidBulkLength,
    UnauthenticatedBulkLength,
}

impl ProtocolError {
    /// The error text Redis sends (without the `-ERR ` prefix).
    pub fn message(&self) -> String {
        match self {
            ProtocolError::TooBigInline => "Protocol error: too big inline request".into(),
            ProtocolError::UnbalancedQuotes => "Protocol error: unbalanced quotes in request".into(),
            ProtocolError::TooBigMultibulkCount => "Protocol error: too big mbulk count string".into(),
            ProtocolError::InvalidMultibulkLength => "Protocol error: invalid multibulk length".into(),
            ProtocolError::UnauthenticatedMultibulkLength => "Protocol error: unauthenticated multibulk length".into(),
            ProtocolError::TooBigBulkCount => "Protocol error: too big bulk count string".into(),
            ProtocolError::ExpectedDollar(got) => {
                // Redis replaces CR and LF in error texts with spaces to keep the reply valid.
                let shown = if *got == b'\r' || *got == b'\n' { b' ' } else { *got };
                let mut text = b"Protocol error: expected '$', got '".to_vec();
                text.push(shown);
                text.push(b'\'');
                String::from_utf8_lossy(&text).into_owned()
            }
            ProtocolError::InvalidBulkLength => "Protocol error: invalid bulk length".into(),
            ProtocolError::UnauthenticatedBulkLength => "Protocol error: unauthenticated bulk length".into(),
        }
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ProtocolError {}

/// Decodes one command from the start of `buf`.
///
/// For a multibulk command, `ranges` is cleared and receives one range of `buf` per argument.
/// Callers must not pass an empty buffer.
pub fn parse_command(buf: &[u8], limits: &Limits, ranges: &mut Vec<Range<usize>>) -> Result<Parsed, ProtocolError> {
    ranges.clear();
    if buf.first() == Some(&b'*') {
        parse_multibulk(buf, limits, ranges)
    } else {
        parse_inline(buf)
    }
}

/// Position of `needle` in `buf`, searching only up to the first NUL byte (C `strchr`).
fn c_strchr(buf: &[u8], needle: u8) -> Option<usize> {
    for (i, &b) in buf.iter().enumerate() {
        if b == needle {
            return Some(i);
        }
        if b == 0 {
            return None;
        }
    }
    None
}

/// Parses a header line `<sigil><integer>\r\n` starting at `pos`. Returns the integer (if it
/// is a valid one) and the position after the line, or `None` when the line is incomplete.
fn header_line(buf: &[u8], pos: usize) -> Option<(Option<i64>, usize)> {
    // Fast path for the usual `<sigil><small positive number>\r\n`: parse while scanning.
    let mut v: i64 = 0;
    let mut i = pos + 1;
    while i < buf.len() && i - pos <= 18 {
        let b = buf[i];
        if b.is_ascii_digit() {
            v = v * 10 + (b - b'0') as i64;
            i += 1;
            continue;
        }
        if b == b'\r' && i > pos + 1 && !(buf[pos + 1] == b'0' && i > pos + 2) {
            if i + 1 >= buf.len() {
                return None;
            }
            return Some((Some(v), i + 2));
        }
        break;
    }
    header_line_slow(buf, pos)
}

/// The general case of [`header_line`] (signs, leading zeros, garbage, NUL bytes).
fn header_line_slow(buf: &[u8], pos: usize) -> Option<(Option<i64>, usize)> {
    let cr = pos + c_strchr(&buf[pos..], b'\r')?;
    // The byte after '\r' must have arrived; like Redis we skip it without checking it.
    if cr + 1 >= buf.len() {
        return None;
    }
    // An empty line (CR right at `pos`) has no number; the caller reports the bad sigil.
    let number = if cr > pos { parse_i64(&buf[pos + 1..cr]) } else { None };
    Some((number, cr + 2))
}

fn parse_multibulk(buf: &[u8], limits: &Limits, ranges: &mut Vec<Range<usize>>) -> Result<Parsed, ProtocolError> {
    let Some((count, mut pos)) = header_line(buf, 0) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigMultibulkCount);
        }
        return Ok(Parsed::Incomplete { need: buf.len() + 1 });
    };
    let count = match count {
        Some(n) if n <= i32::MAX as i64 => n,
        _ => return Err(ProtocolError::InvalidMultibulkLength),
    };
    if count > PREAUTH_MAX_ARGS && !limits.authenticated {
        return Err(ProtocolError::UnauthenticatedMultibulkLength);
    }
    for _ in 0..count.max(0) {
        if pos >= buf.len() {
            return Ok(Parsed::Incomplete { need: pos + 1 });
        }
        let Some((len, data)) = header_line(buf, pos) else {
            if buf.len() - pos > INLINE_MAX {
                return Err(ProtocolError::TooBigBulkCount);
            }
            return Ok(Parsed::Incomplete { need: buf.len() + 1 });
        };
        if buf[pos] != b'$' {
            return Err(ProtocolError::ExpectedDollar(buf[pos]));
        }
        let len = match len {
            Some(n) if n >= 0 && n <= limits.max_bulk_len => n,
            _ => return Err(ProtocolError::InvalidBulkLength),
        };
        if len > PREAUTH_MAX_BULK && !limits.authenticated {
            return Err(ProtocolError::UnauthenticatedBulkLength);
        }
        let len = len as usize;
        let end = data + len + 2;
        if buf.len() < end {
            return Ok(Parsed::Incomplete { need: end });
        }
        ranges.push(data..data + len);
        pos = end;
    }
    Ok(Parsed::Multibulk { consumed: pos })
}

fn parse_inline(buf: &[u8]) -> Result<Parsed, ProtocolError> {
    let Some(nl) = c_strchr(buf, b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(Parsed::Incomplete { need: buf.len() + 1 });
    };
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let args = split_args(&buf[..line_end]).map_err(|_| ProtocolError::UnbalancedQuotes)?;
    Ok(Parsed::Inline { consumed: nl + 1, args })
}

/// Redis's `string2ll`: an optional '-', no leading zeros (except "0"), no '+', no spaces,
/// within i64. Returns `None` for anything else.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> (Result<Parsed, ProtocolError>, Vec<Vec<u8>>) {
        let mut ranges = Vec::new();
        let r = parse_command(buf, &Limits::default(), &mut ranges);
        let args = ranges.iter().map(|r| buf[r.clone()].to_vec()).collect();
        (r, args)
    }

    #[test]
    fn complete_multibulk() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nextra";
        let (r, args) = parse(buf);
        assert_eq!(r, Ok(Parsed::Multibulk { consumed: buf.len() - 5 }));
        assert_eq!(args, vec![b"GET".to_vec(), b"k".to_vec()]);
    }

    #[test]
    fn every_prefix_is_incomplete_with_growing_need() {
        let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        for cut in 1..buf.len() {
            match parse(&buf[..cut]).0 {
                Ok(Parsed::Incomplete { need }) => assert!(need > cut, "cut {cut} need {need}"),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        assert_eq!(parse(buf).0, Ok(Parsed::Multibulk { consumed: buf.len() }));
    }

    #[test]
    fn huge_claimed_bulk_does_not_allocate() {
        let (r, _) = parse(b"*1\r\n$536870912\r\nab");
        assert_eq!(r, Ok(Parsed::Incomplete { need: 4 + 12 + 536870912 + 2 }));
        let (r, _) = parse(b"*1\r\n$536870913\r\n");
        assert_eq!(r, Err(ProtocolError::InvalidBulkLength));
    }

    #[test]
    fn bad_headers() {
        assert_eq!(parse(b"*x\r\n").0, Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*2147483648\r\n").0, Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*1\r\n+3\r\n").0, Err(ProtocolError::ExpectedDollar(b'+')));
        assert_eq!(parse(b"*1\r\n$-1\r\n").0, Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse(b"*1\r\n$01\r\n").0, Err(ProtocolError::InvalidBulkLength));
        assert_eq!(ProtocolError::ExpectedDollar(b'\r').message(), "Protocol error: expected '$', got ' '");
    }

    #[test]
    fn header_fast_path_agrees_with_the_rules() {
        for line in [
            &b"$0\r\n"[..],
            b"$7\r\n",
            b"$123456789012345678\r\n",
            b"$01\r\n",
            b"$-1\r\n",
            b"$1a\r\n",
            b"$\r\n",
            b"$00\r\n",
        ] {
            assert_eq!(header_line(line, 0), header_line_slow(line, 0), "{}", line.escape_ascii());
        }
        assert_eq!(header_line(b"$12\r", 0), None);
    }

    #[test]
    fn empty_header_lines() {
        assert_eq!(parse(b"*1\r\n\r\n").0, Err(ProtocolError::ExpectedDollar(b'\r')));
        assert_eq!(parse(b"*\r\n").0, Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*1\r\n$\r\n").0, Err(ProtocolError::InvalidBulkLength));
    }

    #[test]
    fn empty_and_negative_counts_are_no_command() {
        assert_eq!(parse(b"*0\r\n").0, Ok(Parsed::Multibulk { consumed: 4 }));
        assert_eq!(parse(b"*-1\r\n").0, Ok(Parsed::Multibulk { consumed: 5 }));
    }

    #[test]
    fn preauth_limits() {
        let limits = Limits { authenticated: false, ..Limits::default() };
        let mut ranges = Vec::new();
        assert_eq!(parse_command(b"*11\r\n", &limits, &mut ranges), Err(ProtocolError::UnauthenticatedMultibulkLength));
        assert_eq!(
            parse_command(b"*1\r\n$16385\r\n", &limits, &mut ranges),
            Err(ProtocolError::UnauthenticatedBulkLength)
        );
        assert!(matches!(parse_command(b"*1\r\n$16384\r\n", &limits, &mut ranges), Ok(Parsed::Incomplete { .. })));
    }

    #[test]
    fn long_header_lines() {
        let mut buf = b"*".to_vec();
        buf.extend(std::iter::repeat_n(b'1', INLINE_MAX + 1));
        assert_eq!(parse(&buf).0, Err(ProtocolError::TooBigMultibulkCount));
        let mut buf = b"*1\r\n$".to_vec();
        buf.extend(std::iter::repeat_n(b'1', INLINE_MAX + 1));
        assert_eq!(parse(&buf).0, Err(ProtocolError::TooBigBulkCount));
        let buf = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(parse(&buf).0, Err(ProtocolError::TooBigInline));
    }

    #[test]
    fn inline_commands() {
        let (r, _) = parse(b"set k \"a b\"\r\nget k\n");
        assert_eq!(r, Ok(Parsed::Inline { consumed: 13, args: vec![b"set".to_vec(), b"k".to_vec(), b"a b".to_vec()] }));
        assert_eq!(parse(b"\r\n").0, Ok(Parsed::Inline { consumed: 2, args: vec![] }));
        assert_eq!(parse(b"get \"k\n").0, Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(parse(b"get k").0, Ok(Parsed::Incomplete { need: 6 }));
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"007"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"-"), None);
    }
}
