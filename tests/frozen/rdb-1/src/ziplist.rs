//! Ziplist blobs (read only; Redis stopped writing them in 7.0).
//!
//! Layout: total bytes (u32 LE), offset of the last entry (u32 LE), entry count (u16 LE,
//! 65535 = unknown), entries, `0xFF`. Each entry is:
//! * previous entry's size: 1 byte if < 254, else `0xFE` + u32 LE;
//! * encoding: `00xxxxxx` string with 6-bit length, `01xxxxxx yyyyyyyy` 14-bit length
//!   (big-endian), `10xxxxxx` + u32 BE length, `0xC0` i16, `0xD0` i32, `0xE0` i64, `0xF0`
//!   i24, `0xFE` i8 (all little-endian), `0xF1..=0xFD` immediate value 0..=12;
//! * the string bytes or integer bytes.
//!
//! The decoder checks every length against the blob, each entry's "previous size" against
//! the entry actually before it, the header's total, tail offset and count, and that the
//! end marker is the last byte.

use crate::error::{Error, Result};
use crate::listpack::Entry;

const HEADER_SIZE: usize = 10;
const END: u8 = 0xFF;
const BIG_PREVLEN: u8 = 0xFE;
const COUNT_UNKNOWN: u16 = u16::MAX;

/// Decodes every element of a ziplist blob.
pub fn decode_ziplist(zl: &[u8]) -> Result<Vec<Entry<'_>>> {
    let header = zl.get(..HEADER_SIZE).ok_or(Error::BadFormat("ziplist shorter than its header"))?;
    let total = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let tail = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let count = u16::from_le_bytes([header[8], header[9]]);
    if total != zl.len() {
        return Err(Error::BadFormat("ziplist total size does not match its length"));
    }
    // Each entry takes at least 2 bytes, which bounds the reservation by the blob size.
    let mut entries = Vec::with_capacity(usize::from(count).min(zl.len() / 2));
    let mut pos = HEADER_SIZE;
    let mut prev_size = 0;
    let mut last_start = HEADER_SIZE;
    loop {
        let first = *zl.get(pos).ok_or(Error::BadFormat("ziplist without end marker"))?;
        if first == END {
            break;
        }
        let (entry, next, prevlen) = decode_entry(zl, pos)?;
        if prevlen != prev_size {
            return Err(Error::BadFormat("ziplist entry previous length is wrong"));
        }
        entries.push(entry);
        last_start = pos;
        prev_size = next - pos;
        pos = next;
    }
    if pos + 1 != zl.len() {
        return Err(Error::BadFormat("ziplist end marker is not its last byte"));
    }
    if tail != last_start {
        return Err(Error::BadFormat("ziplist tail offset is wrong"));
    }
    if count != COUNT_UNKNOWN && usize::from(count) != entries.len() {
        return Err(Error::BadFormat("ziplist element count does not match its header"));
    }
    Ok(entries)
}

/// Decodes the entry at `pos`; returns it, the next entry's offset and its stored
/// "previous entry size".
fn decode_entry(zl: &[u8], pos: usize) -> Result<(Entry<'_>, usize, usize)> {
    let bytes = |from: usize, n: usize| zl.get(from..from + n).ok_or(Error::BadFormat("ziplist entry past end"));
    let (prevlen, mut p) = if zl[pos] == BIG_PREVLEN {
        let b = bytes(pos + 1, 4)?;
        (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, pos + 5)
    } else {
        (usize::from(zl[pos]), pos + 1)
    };
    let enc = bytes(p, 1)?[0];
    p += 1;
    let entry = match enc >> 6 {
        0 => {
            let len = usize::from(enc & 0x3f);
            let s = bytes(p, len)?;
            p += len;
            Entry::Str(s)
        }
        1 => {
            let len = (usize::from(enc & 0x3f) << 8) | usize::from(bytes(p, 1)?[0]);
            let s = bytes(p + 1, len)?;
            p += 1 + len;
            Entry::Str(s)
        }
        2 => {
            // Redis masks the low bits of this byte, so any 10xxxxxx means a 32-bit length.
            let b = bytes(p, 4)?;
            let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            let s = bytes(p + 4, len)?;
            p += 4 + len;
            Entry::Str(s)
        }
        _ => {
            let (v, size) = match enc {
                0xC0 => {
                    let b = bytes(p, 2)?;
                    (i64::from(i16::from_le_bytes([b[0], b[1]])), 2)
                }
                0xD0 => {
                    let b = bytes(p, 4)?;
                    (i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])), 4)
                }
                0xE0 => {
                    let b = bytes(p, 8)?;
                    (i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]), 8)
                }
                0xF0 => {
                    let b = bytes(p, 3)?;
                    // Place the 3 bytes in the top of an i32 and shift back to sign-extend.
                    (i64::from(i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8), 3)
                }
                0xFE => (i64::from(bytes(p, 1)?[0] as i8), 1),
                0xF1..=0xFD => (i64::from(enc & 0x0f) - 1, 0),
                _ => return Err(Error::BadFormat("invalid ziplist entry encoding")),
            };
            p += size;
            Entry::Int(v)
        }
    };
    Ok((entry, p, prevlen))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a ziplist from hand-written entries; `last` is the offset of the last entry
    /// inside `entries`.
    fn wrap(count: u16, last: usize, entries: &[u8]) -> Vec<u8> {
        let total = (HEADER_SIZE + entries.len() + 1) as u32;
        let mut zl = total.to_le_bytes().to_vec();
        zl.extend_from_slice(&((HEADER_SIZE + last) as u32).to_le_bytes());
        zl.extend_from_slice(&count.to_le_bytes());
        zl.extend_from_slice(entries);
        zl.push(END);
        zl
    }

    #[test]
    fn decodes_every_encoding() {
        let mut e: Vec<u8> = Vec::new();
        let mut starts = Vec::new();
        let mut push = |e: &mut Vec<u8>, bytes: &[u8]| {
            starts.push(e.len());
            e.extend_from_slice(bytes);
        };
        push(&mut e, &[0, 0x02, b'h', b'i']); // prevlen 0, 6-bit string "hi" (4 bytes)
        push(&mut e, &[4, 0xC0, 0x00, 0x80]); // prevlen 4, i16 -32768 (4 bytes)
        push(&mut e, &[4, 0xD0, 0xff, 0xff, 0xff, 0x7f]); // i32 max (6 bytes)
        let mut i64_entry = vec![6, 0xE0];
        i64_entry.extend_from_slice(&i64::MIN.to_le_bytes());
        push(&mut e, &i64_entry); // i64 min (10 bytes)
        push(&mut e, &[10, 0xF0, 0x00, 0x00, 0x80]); // i24 -8388608 (5 bytes)
        push(&mut e, &[5, 0xFE, 0x80]); // i8 -128 (3 bytes)
        push(&mut e, &[3, 0xF1]); // immediate 0 (2 bytes)
        push(&mut e, &[2, 0xFD]); // immediate 12 (2 bytes)
        let mut s14 = vec![2, 0x40 | 0x01, 0x2C]; // 14-bit length 300 (big-endian 0x012C)
        s14.extend_from_slice(&[b'z'; 300]);
        push(&mut e, &s14); // 303 bytes
                            // Previous entry is 303 bytes, so this one needs the 5-byte prevlen form.
        let mut s32 = vec![0xFE];
        s32.extend_from_slice(&303u32.to_le_bytes());
        s32.push(0x80);
        s32.extend_from_slice(&3u32.to_be_bytes());
        s32.extend_from_slice(b"abc");
        push(&mut e, &s32);
        let last = *starts.last().unwrap();
        let zl = wrap(10, last, &e);
        let got = decode_ziplist(&zl).unwrap();
        assert_eq!(
            got,
            vec![
                Entry::Str(b"hi"),
                Entry::Int(-32768),
                Entry::Int(i64::from(i32::MAX)),
                Entry::Int(i64::MIN),
                Entry::Int(-8388608),
                Entry::Int(-128),
                Entry::Int(0),
                Entry::Int(12),
                Entry::Str(&[b'z'; 300]),
                Entry::Str(b"abc"),
            ]
        );
        assert_eq!(decode_ziplist(&wrap(u16::MAX, last, &e)).unwrap().len(), 10);
        // Empty ziplist: tail points at the end marker's offset (the header size).
        assert_eq!(decode_ziplist(&wrap(0, 0, &[])).unwrap(), vec![]);
    }

    #[test]
    fn rejects_corruption() {
        let entries = [0u8, 0x02, b'h', b'i', 4, 0xF2];
        let good = wrap(2, 4, &entries);
        assert_eq!(decode_ziplist(&good).unwrap(), vec![Entry::Str(b"hi"), Entry::Int(1)]);
        assert!(decode_ziplist(&wrap(3, 4, &entries)).is_err()); // count
        assert!(decode_ziplist(&wrap(2, 0, &entries)).is_err()); // tail
        assert!(decode_ziplist(&wrap(2, 4, &[0, 0x02, b'h', b'i', 3, 0xF2])).is_err()); // prevlen
        assert!(decode_ziplist(&wrap(2, 4, &[0, 0x02, b'h', b'i', 4, 0xC5])).is_err()); // encoding
        assert!(decode_ziplist(&wrap(1, 0, &[0, 0x09, b'h', b'i'])).is_err()); // string length
        for cut in 0..good.len() {
            assert!(decode_ziplist(&good[..cut]).is_err());
        }
    }
}
