//! Decoding raw RESP2/RESP3 replies into values, for tests that look inside a
//! reply (a SCAN cursor, a CLIENT LIST text, a HELLO map) instead of comparing
//! bytes.
//!
//! The decoder is strict: it returns `None` unless the input is exactly one
//! well-formed reply, so a server that writes trailing garbage fails the test.

/// One decoded reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+text`
    Simple(String),
    /// `-text` or a blob error `!len`
    Error(String),
    /// `:n`
    Int(i64),
    /// `$len` (and the RESP3 verbatim string `=len`, with its format prefix kept)
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or the RESP3 null `_`
    Nil,
    /// `*n`
    Array(Vec<Value>),
    /// `~n`
    Set(Vec<Value>),
    /// `>n`
    Push(Vec<Value>),
    /// `%n`, in the server's order
    Map(Vec<(Value, Value)>),
    /// `,` (kept as text: `inf`, `nan` and exponents stay exact)
    Double(String),
    /// `#t` / `#f`
    Bool(bool),
    /// `(digits`
    BigNumber(String),
}

impl Value {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// A bulk or simple string as UTF-8 text (lossy).
    pub fn as_text(&self) -> Option<String> {
        self.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// The value of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of an array, set or push reply.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }

    /// Key/value pairs of a RESP3 map, or of a RESP2 flat array of pairs.
    pub fn as_pairs(&self) -> Option<Vec<(&Value, &Value)>> {
        match self {
            Value::Map(pairs) => Some(pairs.iter().map(|(k, v)| (k, v)).collect()),
            Value::Array(items) if items.len() % 2 == 0 => Some(items.chunks(2).map(|c| (&c[0], &c[1])).collect()),
            _ => None,
        }
    }

    /// The value stored under the string key `key` in a map (see [`Value::as_pairs`]).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_pairs()?.into_iter().find(|(k, _)| k.as_bytes() == Some(key.as_bytes())).map(|(_, v)| v)
    }

    /// True for a simple or blob error.
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}

/// Decodes `reply`, which must hold exactly one complete reply.
pub fn decode(reply: &[u8]) -> Option<Value> {
    let (value, used) = decode_prefix(reply, 0)?;
    (used == reply.len()).then_some(value)
}

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[..end], end + 2))
}

fn text(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

fn number(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Decodes the first reply in `buf`; returns it and how many bytes it used.
pub fn decode_prefix(buf: &[u8], depth: usize) -> Option<(Value, usize)> {
    if depth > 64 {
        return None;
    }
    let kind = *buf.first()?;
    let (body, header) = line(&buf[1..])?;
    let header = header + 1;
    let blob = |len: i64| -> Option<(Vec<u8>, usize)> {
        let len = usize::try_from(len).ok()?;
        let data = buf.get(header..header + len)?;
        (buf.get(header + len..header + len + 2)? == b"\r\n").then(|| (data.to_vec(), header + len + 2))
    };
    let aggregate = |count: i64, per: usize| -> Option<(Vec<Value>, usize)> {
        let count = usize::try_from(count).ok()? * per;
        let mut at = header;
        let mut items = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let (v, used) = decode_prefix(&buf[at..], depth + 1)?;
            items.push(v);
            at += used;
        }
        Some((items, at))
    };
    Some(match kind {
        b'+' => (Value::Simple(text(body)?), header),
        b'-' => (Value::Error(text(body)?), header),
        b':' => (Value::Int(number(body)?), header),
        b'_' if body.is_empty() => (Value::Nil, header),
        b',' => (Value::Double(text(body)?), header),
        b'(' => (Value::BigNumber(text(body)?), header),
        b'#' => match body {
            b"t" => (Value::Bool(true), header),
            b"f" => (Value::Bool(false), header),
            _ => return None,
        },
        b'$' | b'=' | b'!' => {
            let len = number(body)?;
            if len == -1 && kind == b'$' {
                return Some((Value::Nil, header));
            }
            let (data, used) = blob(len)?;
            if kind == b'!' {
                (Value::Error(text(&data)?), used)
            } else {
                (Value::Bulk(data), used)
            }
        }
        b'*' | b'~' | b'>' => {
            let len = number(body)?;
            if len == -1 && kind == b'*' {
                return Some((Value::Nil, header));
            }
            let (items, used) = aggregate(len, 1)?;
            let v = match kind {
                b'*' => Value::Array(items),
                b'~' => Value::Set(items),
                _ => Value::Push(items),
            };
            (v, used)
        }
        b'%' => {
            let (items, used) = aggregate(number(body)?, 2)?;
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            (Value::Map(pairs), used)
        }
        b'|' => {
            // An attribute: skip it and return the reply it annotates.
            let (_, used) = aggregate(number(body)?, 2)?;
            let (v, more) = decode_prefix(&buf[used..], depth + 1)?;
            (v, used + more)
        }
        _ => return None,
    })
}

/// Decodes a raw reply or panics with the bytes (for tests).
pub fn must_decode(reply: &[u8]) -> Value {
    decode(reply).unwrap_or_else(|| panic!("not exactly one well-formed RESP reply: {}", reply.escape_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_nested_replies() {
        let v = decode(b"*3\r\n$1\r\na\r\n:5\r\n*-1\r\n").unwrap();
        assert_eq!(v, Value::Array(vec![Value::Bulk(b"a".to_vec()), Value::Int(5), Value::Nil]));
        let m = decode(b"%1\r\n+proto\r\n:3\r\n").unwrap();
        assert_eq!(m.get("proto"), Some(&Value::Int(3)));
        let flat = decode(b"*2\r\n$4\r\nport\r\n$4\r\n6379\r\n").unwrap();
        assert_eq!(flat.get("port").and_then(Value::as_text).unwrap(), "6379");
        assert_eq!(decode(b"!3\r\nERR\r\n"), Some(Value::Error("ERR".into())));
        assert_eq!(decode(b"|1\r\n+a\r\n+b\r\n:1\r\n"), Some(Value::Int(1)));
        assert_eq!(decode(b"+OK\r\n+OK\r\n"), None);
        assert_eq!(decode(b"$3\r\nab\r\n"), None);
    }
}
