//! Reply encoder for RESP2 and RESP3.
//!
//! [`ReplyBuf`] appends replies to a byte buffer in the client's protocol version. Types RESP2
//! lacks are written the way Redis writes them there: maps as flat arrays, sets as arrays,
//! doubles as bulk strings, booleans as integers, nulls as `$-1`/`*-1`, pushes as arrays.

use std::io::Write;

/// The protocol version a client negotiated with `HELLO` (2 unless it asked for 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// An output buffer that knows its client's protocol version.
#[derive(Debug, Default)]
pub struct ReplyBuf {
    pub buf: Vec<u8>,
    pub proto: Protocol,
}

impl ReplyBuf {
    pub fn new(proto: Protocol) -> Self {
        ReplyBuf { buf: Vec::new(), proto }
    }

    pub fn is_resp3(&self) -> bool {
        self.proto == Protocol::Resp3
    }

    fn header(&mut self, sigil: u8, n: i64) {
        self.buf.push(sigil);
        let mut tmp = itoa_buf();
        self.buf.extend_from_slice(fmt_i64(&mut tmp, n));
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+text`. The text must not contain CR or LF.
    pub fn simple(&mut self, text: &str) {
        self.simple_bytes(text.as_bytes());
    }

    /// `+text` from bytes; CR and LF are replaced by spaces to keep the reply well-formed.
    pub fn simple_bytes(&mut self, text: &[u8]) {
        self.buf.push(b'+');
        self.push_line(text);
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// `-text`; `text` starts with the error code (`ERR`, `WRONGTYPE`, ...). CR and LF become
    /// spaces, as in Redis.
    pub fn error(&mut self, text: &str) {
        self.buf.push(b'-');
        self.push_line(text.as_bytes());
    }

    fn push_line(&mut self, text: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(text);
        for b in &mut self.buf[start..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_i64(&mut self, n: i64) {
        let mut tmp = itoa_buf();
        let s = fmt_i64(&mut tmp, n);
        let len = s.len();
        let mut hdr = itoa_buf();
        self.buf.push(b'$');
        self.buf.extend_from_slice(fmt_i64(&mut hdr, len as i64));
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The null bulk string (`$-1` or `_`).
    pub fn null(&mut self) {
        self.buf.extend_from_slice(if self.is_resp3() { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// The null array (`*-1` or `_`).
    pub fn null_array(&mut self) {
        self.buf.extend_from_slice(if self.is_resp3() { b"_\r\n" } else { b"*-1\r\n" });
    }

    pub fn array(&mut self, len: usize) {
        self.header(b'*', len as i64);
    }

    /// A map of `pairs` entries (a flat array of 2×pairs in RESP2).
    pub fn map(&mut self, pairs: usize) {
        if self.is_resp3() {
            self.header(b'%', pairs as i64);
        } else {
            self.header(b'*', 2 * pairs as i64);
        }
    }

    /// A set (an array in RESP2).
    pub fn set(&mut self, len: usize) {
        let sigil = if self.is_resp3() { b'~' } else { b'*' };
        self.header(sigil, len as i64);
    }

    /// An out-of-band push (an array in RESP2).
    pub fn push(&mut self, len: usize) {
        let sigil = if self.is_resp3() { b'>' } else { b'*' };
        self.header(sigil, len as i64);
    }

    /// A double already formatted the way the command wants it (a bulk string in RESP2).
    pub fn double_text(&mut self, text: &[u8]) {
        if self.is_resp3() {
            self.buf.push(b',');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// A boolean (`#t`/`#f`, or `:1`/`:0` in RESP2).
    pub fn boolean(&mut self, v: bool) {
        if self.is_resp3() {
            self.buf.extend_from_slice(if v { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(v as i64);
        }
    }

    /// A verbatim string with a three-letter format (`txt`), a bulk string in RESP2.
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        if self.is_resp3() {
            self.header(b'=', (text.len() + 4) as i64);
            self.buf.extend_from_slice(format.as_bytes());
            self.buf.push(b':');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Appends bytes that are already a complete encoded reply.
    pub fn raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }

    /// Writes formatted text as a bulk string.
    pub fn bulk_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        let mut tmp = Vec::new();
        let _ = tmp.write_fmt(args);
        self.bulk(&tmp);
    }
}

type ItoaBuf = [u8; 20];

fn itoa_buf() -> ItoaBuf {
    [0u8; 20]
}

/// Formats `n` in decimal into `buf`, returning the digits.
fn fmt_i64(buf: &mut ItoaBuf, n: i64) -> &[u8] {
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        // 20 bytes hold i64::MIN's 19 digits plus the sign.
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_protocols() {
        let mut r2 = ReplyBuf::new(Protocol::Resp2);
        let mut r3 = ReplyBuf::new(Protocol::Resp3);
        for r in [&mut r2, &mut r3] {
            r.map(1);
            r.bulk(b"k");
            r.null();
            r.boolean(true);
            r.double_text(b"1.5");
            r.int(i64::MIN);
            r.error("ERR bad\r\nthing");
        }
        assert_eq!(r2.buf, b"*2\r\n$1\r\nk\r\n$-1\r\n:1\r\n$3\r\n1.5\r\n:-9223372036854775808\r\n-ERR bad  thing\r\n");
        assert_eq!(r3.buf, b"%1\r\n$1\r\nk\r\n_\r\n#t\r\n,1.5\r\n:-9223372036854775808\r\n-ERR bad  thing\r\n");
    }

    #[test]
    fn bulk_of_integer() {
        let mut r = ReplyBuf::new(Protocol::Resp2);
        r.bulk_i64(-120);
        assert_eq!(r.buf, b"$4\r\n-120\r\n");
    }
}
