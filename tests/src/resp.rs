//! RESP2/RESP3 reply reading and inspection on raw bytes.
//!
//! Replies are never decoded into values for comparison: the differential tests
//! compare exact bytes. This module only knows enough of the grammar to find
//! where one complete reply ends (when reading from a socket, or inside a byte
//! slice) and to pick a reply apart into its top-level elements.

use std::io::{self, BufRead};

/// Deepest nesting of aggregates accepted before the reply is called malformed.
const MAX_DEPTH: usize = 128;

/// Largest bulk payload accepted (Redis's own `proto-max-bulk-len` default is 512 MB).
const MAX_BULK: usize = 1 << 30;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads exactly one complete reply from `r`, appending its raw bytes to `out`.
///
/// Handles the simple types `+ - : _ , # (`, the blob types `$ = !` (including
/// the null bulk `$-1`), the aggregates `* ~ >` (including the null array
/// `*-1`), the maps `%` and attributes `|` (an attribute is read together with
/// the reply that follows it).
pub fn read_reply<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> io::Result<()> {
    read_value(r, out, 0)
}

fn read_line<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> io::Result<usize> {
    let start = out.len();
    let n = r.read_until(b'\n', out)?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the server"));
    }
    if !out.ends_with(b"\r\n") || out.len() - start < 3 {
        return Err(invalid(format!("reply line not terminated by CRLF: {}", out[start..].escape_ascii())));
    }
    Ok(start)
}

fn parse_len(line: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| invalid(format!("bad length in reply: {}", line.escape_ascii())))
}

fn read_value<R: BufRead>(r: &mut R, out: &mut Vec<u8>, depth: usize) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(invalid("reply nested too deeply"));
    }
    let start = read_line(r, out)?;
    let kind = out[start];
    let body_end = out.len() - 2;
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(()),
        b'$' | b'=' | b'!' => {
            let len = parse_len(&out[start + 1..body_end])?;
            if len == -1 && kind == b'$' {
                return Ok(());
            }
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_BULK)
                .ok_or_else(|| invalid(format!("bad bulk length {len}")))?;
            let at = out.len();
            out.resize(at + len + 2, 0);
            r.read_exact(&mut out[at..])?;
            if !out.ends_with(b"\r\n") {
                return Err(invalid("bulk payload not followed by CRLF"));
            }
            Ok(())
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let len = parse_len(&out[start + 1..body_end])?;
            if len == -1 && kind == b'*' {
                return Ok(());
            }
            let len = u64::try_from(len).map_err(|_| invalid(format!("bad aggregate length {len}")))?;
            let count = if matches!(kind, b'%' | b'|') { len * 2 } else { len };
            for _ in 0..count {
                read_value(r, out, depth + 1)?;
            }
            if kind == b'|' {
                // An attribute annotates the reply that follows it.
                read_value(r, out, depth + 1)?;
            }
            Ok(())
        }
        other => Err(invalid(format!(
            "unknown RESP type byte {:?} in reply line {}",
            other as char,
            out[start..].escape_ascii()
        ))),
    }
}

/// Returns the length of the first complete reply in `buf`, or `None` if
/// `buf` does not start with a complete, well-formed reply.
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    let mut cursor = io::Cursor::new(buf);
    let mut scratch = Vec::new();
    read_reply(&mut cursor, &mut scratch).ok()?;
    Some(scratch.len())
}

/// The type byte of a reply (`b'+'`, `b'$'`, ...), or 0 for an empty slice.
pub fn reply_type(reply: &[u8]) -> u8 {
    reply.first().copied().unwrap_or(0)
}

/// True if the reply is a simple error or a blob error.
pub fn is_error(reply: &[u8]) -> bool {
    matches!(reply_type(reply), b'-' | b'!')
}

/// The value of an integer reply (`:N\r\n`), if `reply` is one.
pub fn integer(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(body).ok()?.parse().ok()
}

/// Splits an aggregate reply into its header line and its top-level elements.
///
/// For maps (`%`) and attributes each element is one key/value pair. Returns
/// `None` for non-aggregates, null arrays and malformed input.
pub fn split_aggregate(reply: &[u8]) -> Option<(&[u8], Vec<&[u8]>)> {
    let kind = reply_type(reply);
    if !matches!(kind, b'*' | b'~' | b'>' | b'%') {
        return None;
    }
    let header_len = reply.windows(2).position(|w| w == b"\r\n")? + 2;
    let len: i64 = std::str::from_utf8(&reply[1..header_len - 2]).ok()?.parse().ok()?;
    let len = usize::try_from(len).ok()?;
    let per_element = if kind == b'%' { 2 } else { 1 };
    let mut elements = Vec::with_capacity(len);
    let mut at = header_len;
    for _ in 0..len {
        let start = at;
        for _ in 0..per_element {
            at += reply_len(&reply[at..])?;
        }
        elements.push(&reply[start..at]);
    }
    (at == reply.len()).then_some((&reply[..header_len], elements))
}

/// Returns the reply with its top-level elements (or map entries) sorted
/// bytewise; any other reply is returned unchanged.
pub fn sorted_reply(reply: &[u8]) -> Vec<u8> {
    match split_aggregate(reply) {
        Some((header, mut elements)) => {
            elements.sort_unstable();
            let mut out = header.to_vec();
            for e in elements {
                out.extend_from_slice(e);
            }
            out
        }
        None => reply.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        read_reply(&mut input, &mut out)?;
        Ok(out)
    }

    #[test]
    fn reads_every_type() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":-12\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"$4\r\na\r\nb\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"_\r\n",
            b",1.5\r\n",
            b"#t\r\n",
            b"(123456789012345678901234567890\r\n",
            b"=8\r\ntxt:abcd\r\n",
            b"!3\r\nERR\r\n",
            b"%1\r\n+k\r\n*1\r\n:1\r\n",
            b"~2\r\n:1\r\n:2\r\n",
            b">2\r\n+message\r\n+x\r\n",
            b"|1\r\n+key\r\n+val\r\n:5\r\n",
        ];
        for case in cases {
            let mut input = case.to_vec();
            input.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(read_all(&input).unwrap(), *case, "{}", case.escape_ascii());
            assert_eq!(reply_len(&input), Some(case.len()));
        }
    }

    #[test]
    fn rejects_truncated_and_malformed() {
        for bad in [&b"$3\r\nab"[..], b"*2\r\n:1\r\n", b"+OK\n", b"?x\r\n", b""] {
            assert!(read_all(bad).is_err(), "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn sorts_top_level_elements() {
        let reply = b"*3\r\n$1\r\nc\r\n$1\r\na\r\n*1\r\n:1\r\n";
        assert_eq!(sorted_reply(reply), b"*3\r\n$1\r\na\r\n$1\r\nc\r\n*1\r\n:1\r\n");
        let map = b"%2\r\n+b\r\n:1\r\n+a\r\n:2\r\n";
        assert_eq!(sorted_reply(map), b"%2\r\n+a\r\n:2\r\n+b\r\n:1\r\n");
        assert_eq!(sorted_reply(b":1\r\n"), b":1\r\n");
        assert_eq!(integer(b":-5\r\n"), Some(-5));
        assert_eq!(integer(b"+5\r\n"), None);
    }
}
