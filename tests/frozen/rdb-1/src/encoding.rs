//! RDB primitives: lengths, strings, doubles, times and raw stream ids.
//!
//! Lengths (big-endian where multi-byte):
//! * `00xxxxxx` 6-bit, `01xxxxxx yyyyyyyy` 14-bit, `0x80` + u32, `0x81` + u64;
//! * `11xxxxxx` is not a length but a special string encoding: `0xC0` i8, `0xC1` i16,
//!   `0xC2` i32 (little-endian), `0xC3` LZF (compressed length, plain length, data).
//!
//! Writers produce exactly what Redis produces for the same input, except that LZF output
//! may differ byte for byte (see [`crate::lzf`]). Readers accept every form above.

use crate::error::{Error, Result};
use crate::lzf;
use crate::num::{format_i64, parse_canonical_i64, parse_double};
use crate::source::Source;
use crate::value::StreamId;

const LEN_6BIT: u8 = 0;
const LEN_14BIT: u8 = 1;
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Strings up to this length are tried as integers (Redis: "-2147483648" is 11 bytes).
const MAX_INT_STRING_LEN: usize = 11;
/// LZF is not attempted on strings this short or shorter.
const MIN_LZF_LEN: usize = 20;
/// Compression is kept only if it saves at least this many bytes.
const MIN_LZF_SAVING: usize = 4;

/// Writes a length in the shortest form.
pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push((LEN_6BIT << 6) | n as u8);
    } else if n < 1 << 14 {
        out.push((LEN_14BIT << 6) | (n >> 8) as u8);
        out.push((n & 0xff) as u8);
    } else if let Ok(n32) = u32::try_from(n) {
        out.push(LEN_32BIT);
        out.extend_from_slice(&n32.to_be_bytes());
    } else {
        out.push(LEN_64BIT);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A length, or the special string encoding number found in its place.
enum LenOrEncoding {
    Len(u64),
    Encoding(u8),
}

fn read_len_or_encoding<S: Source + ?Sized>(src: &mut S) -> Result<LenOrEncoding> {
    let first = src.read_u8()?;
    match first >> 6 {
        0 => Ok(LenOrEncoding::Len(u64::from(first & 0x3f))),
        1 => {
            let second = src.read_u8()?;
            Ok(LenOrEncoding::Len((u64::from(first & 0x3f) << 8) | u64::from(second)))
        }
        3 => Ok(LenOrEncoding::Encoding(first & 0x3f)),
        _ => match first {
            LEN_32BIT => {
                let mut b = [0u8; 4];
                src.read_exact(&mut b)?;
                Ok(LenOrEncoding::Len(u64::from(u32::from_be_bytes(b))))
            }
            LEN_64BIT => {
                let mut b = [0u8; 8];
                src.read_exact(&mut b)?;
                Ok(LenOrEncoding::Len(u64::from_be_bytes(b)))
            }
            _ => Err(Error::BadFormat("unknown length encoding")),
        },
    }
}

/// Reads a length (a count, an id part, ...); a special string encoding here is an error.
pub fn read_len<S: Source + ?Sized>(src: &mut S) -> Result<u64> {
    match read_len_or_encoding(src)? {
        LenOrEncoding::Len(n) => Ok(n),
        LenOrEncoding::Encoding(_) => Err(Error::BadFormat("encoded value where a length was expected")),
    }
}

/// Writes a string the way Redis does: as an int8/16/32 when the bytes are the canonical
/// text of such an integer, else LZF-compressed when `compress` is set, the string is longer
/// than 20 bytes and compression saves at least 4 bytes, else as length + bytes.
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8], compress: bool) {
    if bytes.len() <= MAX_INT_STRING_LEN {
        if let Some(v) = parse_canonical_i64(bytes) {
            if write_int_encoded(out, v) {
                return;
            }
        }
    }
    if compress && bytes.len() > MIN_LZF_LEN {
        if let Some(packed) = lzf::compress_limited(bytes, bytes.len() - MIN_LZF_SAVING) {
            out.push(0xC0 | ENC_LZF);
            write_len(out, packed.len() as u64);
            write_len(out, bytes.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    write_raw_string(out, bytes);
}

/// Writes a string as length + bytes, with no integer or LZF encoding.
pub fn write_raw_string(out: &mut Vec<u8>, bytes: &[u8]) {
    write_len(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes `v` in the smallest integer string encoding, if one fits (i8, i16 or i32).
fn write_int_encoded(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(v8) = i8::try_from(v) {
        out.push(0xC0 | ENC_INT8);
        out.extend_from_slice(&v8.to_le_bytes());
    } else if let Ok(v16) = i16::try_from(v) {
        out.push(0xC0 | ENC_INT16);
        out.extend_from_slice(&v16.to_le_bytes());
    } else if let Ok(v32) = i32::try_from(v) {
        out.push(0xC0 | ENC_INT32);
        out.extend_from_slice(&v32.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Reads a string in any of its encodings; integers come back as their decimal text.
pub fn read_string<S: Source + ?Sized>(src: &mut S) -> Result<Vec<u8>> {
    match read_len_or_encoding(src)? {
        LenOrEncoding::Len(n) => src.read_vec(n),
        LenOrEncoding::Encoding(ENC_INT8) => {
            let mut b = [0u8; 1];
            src.read_exact(&mut b)?;
            Ok(format_i64(i64::from(i8::from_le_bytes(b))))
        }
        LenOrEncoding::Encoding(ENC_INT16) => {
            let mut b = [0u8; 2];
            src.read_exact(&mut b)?;
            Ok(format_i64(i64::from(i16::from_le_bytes(b))))
        }
        LenOrEncoding::Encoding(ENC_INT32) => {
            let mut b = [0u8; 4];
            src.read_exact(&mut b)?;
            Ok(format_i64(i64::from(i32::from_le_bytes(b))))
        }
        LenOrEncoding::Encoding(ENC_LZF) => {
            let compressed_len = read_len(src)?;
            let plain_len = read_len(src)?;
            let compressed = src.read_vec(compressed_len)?;
            lzf::decompress(&compressed, plain_len)
        }
        LenOrEncoding::Encoding(_) => Err(Error::BadFormat("unknown string encoding")),
    }
}

/// Writes a double as 8 little-endian bytes (sorted set type 5).
pub fn write_binary_double(out: &mut Vec<u8>, d: f64) {
    out.extend_from_slice(&d.to_le_bytes());
}

/// Reads a double stored as 8 little-endian bytes.
pub fn read_binary_double<S: Source + ?Sized>(src: &mut S) -> Result<f64> {
    let mut b = [0u8; 8];
    src.read_exact(&mut b)?;
    Ok(f64::from_le_bytes(b))
}

/// Reads a double stored as text (sorted set type 3): a length byte, where 253 means NaN,
/// 254 +inf and 255 -inf, else that many ASCII bytes.
pub fn read_string_double<S: Source + ?Sized>(src: &mut S) -> Result<f64> {
    let len = src.read_u8()?;
    match len {
        253 => Ok(f64::NAN),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        _ => {
            let mut buf = [0u8; 252];
            let text = &mut buf[..usize::from(len)];
            src.read_exact(text)?;
            parse_double(text).ok_or(Error::BadFormat("invalid double value"))
        }
    }
}

/// Writes a time in milliseconds as 8 little-endian bytes.
pub fn write_millis(out: &mut Vec<u8>, ms: i64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

/// Reads a time in milliseconds stored as 8 little-endian bytes.
pub fn read_millis<S: Source + ?Sized>(src: &mut S) -> Result<i64> {
    let mut b = [0u8; 8];
    src.read_exact(&mut b)?;
    Ok(i64::from_le_bytes(b))
}

/// Writes a stream id as 16 raw big-endian bytes (as in PEL entries).
pub fn write_stream_id_raw(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.to_be_bytes());
}

/// Reads a stream id stored as 16 raw big-endian bytes.
pub fn read_stream_id_raw<S: Source + ?Sized>(src: &mut S) -> Result<StreamId> {
    let mut b = [0u8; 16];
    src.read_exact(&mut b)?;
    Ok(StreamId::from_be_bytes(b))
}

/// Writes a stream id as two lengths (milliseconds, sequence).
pub fn write_stream_id_lens(out: &mut Vec<u8>, id: StreamId) {
    write_len(out, id.ms);
    write_len(out, id.seq);
}

/// Reads a stream id stored as two lengths (milliseconds, sequence).
pub fn read_stream_id_lens<S: Source + ?Sized>(src: &mut S) -> Result<StreamId> {
    let ms = read_len(src)?;
    let seq = read_len(src)?;
    Ok(StreamId { ms, seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SliceSource;

    fn len_bytes(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_len(&mut out, n);
        out
    }

    #[test]
    fn lengths() {
        assert_eq!(len_bytes(0), [0x00]);
        assert_eq!(len_bytes(63), [0x3f]);
        assert_eq!(len_bytes(64), [0x40, 0x40]);
        assert_eq!(len_bytes(16383), [0x7f, 0xff]);
        assert_eq!(len_bytes(16384), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(len_bytes(u64::from(u32::MAX)), [0x80, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(len_bytes(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
        for n in [0, 1, 63, 64, 300, 16383, 16384, 1 << 31, 1 << 32, u64::MAX] {
            let b = len_bytes(n);
            let mut src = SliceSource::new(&b);
            assert_eq!(read_len(&mut src).unwrap(), n);
            assert!(src.remaining().is_empty());
        }
        assert!(matches!(read_len(&mut SliceSource::new(&[0x82])), Err(Error::BadFormat(_))));
        assert!(matches!(read_len(&mut SliceSource::new(&[0xC0, 1])), Err(Error::BadFormat(_))));
        assert!(matches!(read_len(&mut SliceSource::new(&[0x80, 0, 0])), Err(Error::Truncated)));
        assert!(matches!(read_len(&mut SliceSource::new(&[0x40])), Err(Error::Truncated)));
    }

    fn string_bytes(s: &[u8], compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, s, compress);
        out
    }

    fn read_back(b: &[u8]) -> Vec<u8> {
        let mut src = SliceSource::new(b);
        let s = read_string(&mut src).unwrap();
        assert!(src.remaining().is_empty());
        s
    }

    #[test]
    fn string_special_encodings() {
        assert_eq!(string_bytes(b"0", true), [0xC0, 0]);
        assert_eq!(string_bytes(b"-128", true), [0xC0, 0x80]);
        assert_eq!(string_bytes(b"127", true), [0xC0, 0x7f]);
        assert_eq!(string_bytes(b"128", true), [0xC1, 0x80, 0x00]);
        assert_eq!(string_bytes(b"-32768", true), [0xC1, 0x00, 0x80]);
        assert_eq!(string_bytes(b"32768", true), [0xC2, 0x00, 0x80, 0, 0]);
        assert_eq!(string_bytes(b"-2147483648", true), [0xC2, 0, 0, 0, 0x80]);
        // Out of i32 range, or not canonical: stored as plain text.
        assert_eq!(string_bytes(b"2147483648", true), [10, b'2', b'1', b'4', b'7', b'4', b'8', b'3', b'6', b'4', b'8']);
        assert_eq!(string_bytes(b"007", true), [3, b'0', b'0', b'7']);
        assert_eq!(string_bytes(b"-0", true), [2, b'-', b'0']);
        assert_eq!(string_bytes(b"+1", true), [2, b'+', b'1']);
        for s in ["0", "-128", "127", "128", "-32768", "32767", "32768", "2147483647", "-2147483648", "007"] {
            assert_eq!(read_back(&string_bytes(s.as_bytes(), true)), s.as_bytes());
        }
        // LZF only above 20 bytes and only when it pays.
        let twenty = [b'a'; 20];
        assert_eq!(string_bytes(&twenty, true)[0], 20);
        let long = [b'a'; 100];
        let enc = string_bytes(&long, true);
        assert_eq!(enc[0], 0xC3);
        assert!(enc.len() < 20);
        assert_eq!(read_back(&enc), long);
        assert_eq!(string_bytes(&long, false)[..2], [0x40, 100]);
        // Hand-made LZF string: clen 4, len 5, literal "ab" then a 3-byte overlapping copy.
        assert_eq!(read_back(&[0xC3, 5, 5, 1, b'a', b'b', 0x20, 0x01]), b"ababa");
        // Hand-made integer encodings read back as decimal text.
        assert_eq!(read_back(&[0xC0, 0xff]), b"-1");
        assert_eq!(read_back(&[0xC1, 0x34, 0x12]), b"4660");
        assert_eq!(read_back(&[0xC2, 0xff, 0xff, 0xff, 0x7f]), b"2147483647");
        assert!(read_string(&mut SliceSource::new(&[0xC4])).is_err());
        assert!(matches!(read_string(&mut SliceSource::new(&[5, b'a'])), Err(Error::Truncated)));
        // A 4 GiB declared length over a tiny slice fails without allocating it.
        assert!(matches!(
            read_string(&mut SliceSource::new(&[0x80, 0xff, 0xff, 0xff, 0xff, 1])),
            Err(Error::Truncated)
        ));
    }

    #[test]
    fn doubles_and_times() {
        let mut src = SliceSource::new(&[253, 254, 255, 3, b'1', b'.', b'5', 4, b'-', b'i', b'n', b'f', 1, b'x']);
        assert!(read_string_double(&mut src).unwrap().is_nan());
        assert_eq!(read_string_double(&mut src).unwrap(), f64::INFINITY);
        assert_eq!(read_string_double(&mut src).unwrap(), f64::NEG_INFINITY);
        assert_eq!(read_string_double(&mut src).unwrap(), 1.5);
        assert_eq!(read_string_double(&mut src).unwrap(), f64::NEG_INFINITY);
        assert!(read_string_double(&mut src).is_err());

        let mut out = Vec::new();
        write_binary_double(&mut out, -2.5);
        write_millis(&mut out, 1_700_000_000_123);
        write_stream_id_raw(&mut out, StreamId { ms: 1, seq: 2 });
        assert_eq!(out[16..], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        let mut src = SliceSource::new(&out);
        assert_eq!(read_binary_double(&mut src).unwrap(), -2.5);
        assert_eq!(read_millis(&mut src).unwrap(), 1_700_000_000_123);
        assert_eq!(read_stream_id_raw(&mut src).unwrap(), StreamId { ms: 1, seq: 2 });
    }
}
