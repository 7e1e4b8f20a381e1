//! Listpack blobs: decoder and builder.
//!
//! Layout: total bytes (u32 LE), element count (u16 LE, 65535 = unknown), entries, `0xFF`.
//! Each entry is an encoding byte (plus data) followed by its "back length", the size of
//! encoding + data written in 1..=5 bytes so the list can be walked backwards.
//!
//! | first byte  | meaning                                   |
//! |-------------|-------------------------------------------|
//! | `0xxxxxxx`  | 7-bit unsigned integer                    |
//! | `10xxxxxx`  | string, 6-bit length                      |
//! | `110xxxxx`  | 13-bit signed integer (one more byte)     |
//! | `1110xxxx`  | string, 12-bit length (one more byte)     |
//! | `0xF0`      | string, 32-bit LE length                  |
//! | `0xF1..F4`  | 16/24/32/64-bit signed LE integer         |
//! | `0xFF`      | end of listpack                           |
//!
//! The decoder checks every length against the blob, the header's total and count, each
//! back length, and that the end marker is the last byte. The builder stores strings that
//! are canonical integers as integers, as Redis's `lpAppend` does.

use crate::error::{Error, Result};
use crate::num::{format_i64, parse_canonical_i64};

const HEADER_SIZE: usize = 6;
const END: u8 = 0xFF;
const COUNT_UNKNOWN: u16 = u16::MAX;

/// One element of a listpack or ziplist: either bytes or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A string element.
    Str(&'a [u8]),
    /// An integer element.
    Int(i64),
}

impl Entry<'_> {
    /// The element as bytes (integers as decimal text).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Entry::Str(s) => s.to_vec(),
            Entry::Int(v) => format_i64(*v),
        }
    }

    /// The element as an integer: integer entries, or strings in canonical integer form.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Entry::Str(s) => parse_canonical_i64(s),
            Entry::Int(v) => Some(*v),
        }
    }
}

/// Decodes every element of a listpack blob.
pub fn decode_listpack(lp: &[u8]) -> Result<Vec<Entry<'_>>> {
    let header = lp.get(..HEADER_SIZE).ok_or(Error::BadFormat("listpack shorter than its header"))?;
    let total = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let count = u16::from_le_bytes([header[4], header[5]]);
    if total != lp.len() {
        return Err(Error::BadFormat("listpack total size does not match its length"));
    }
    // Each entry takes at least 2 bytes, which bounds the reservation by the blob size.
    let mut entries = Vec::with_capacity(usize::from(count).min(lp.len() / 2));
    let mut pos = HEADER_SIZE;
    loop {
        let first = *lp.get(pos).ok_or(Error::BadFormat("listpack without end marker"))?;
        if first == END {
            break;
        }
        let (entry, next) = decode_entry(lp, pos)?;
        entries.push(entry);
        pos = next;
    }
    if pos + 1 != lp.len() {
        return Err(Error::BadFormat("listpack end marker is not its last byte"));
    }
    if count != COUNT_UNKNOWN && usize::from(count) != entries.len() {
        return Err(Error::BadFormat("listpack element count does not match its header"));
    }
    Ok(entries)
}

/// Decodes the entry at `pos` (not the end marker); returns it and the next entry's offset.
fn decode_entry(lp: &[u8], pos: usize) -> Result<(Entry<'_>, usize)> {
    let bytes = |from: usize, n: usize| lp.get(from..from + n).ok_or(Error::BadFormat("listpack entry past end"));
    let first = lp[pos];
    let (entry, encoded_len) = if first & 0x80 == 0 {
        (Entry::Int(i64::from(first)), 1)
    } else if first & 0xC0 == 0x80 {
        let len = usize::from(first & 0x3f);
        (Entry::Str(bytes(pos + 1, len)?), 1 + len)
    } else if first & 0xE0 == 0xC0 {
        let b = bytes(pos + 1, 1)?;
        let raw = (i64::from(first & 0x1f) << 8) | i64::from(b[0]);
        // Sign-extend the 13-bit two's complement value.
        let v = if raw >= 1 << 12 { raw - (1 << 13) } else { raw };
        (Entry::Int(v), 2)
    } else if first & 0xF0 == 0xE0 {
        let b = bytes(pos + 1, 1)?;
        let len = (usize::from(first & 0x0f) << 8) | usize::from(b[0]);
        (Entry::Str(bytes(pos + 2, len)?), 2 + len)
    } else {
        match first {
            0xF0 => {
                let b = bytes(pos + 1, 4)?;
                let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                (Entry::Str(bytes(pos + 5, len)?), 5 + len)
            }
            0xF1 => {
                let b = bytes(pos + 1, 2)?;
                (Entry::Int(i64::from(i16::from_le_bytes([b[0], b[1]]))), 3)
            }
            0xF2 => {
                let b = bytes(pos + 1, 3)?;
                // Place the 3 bytes in the top of an i32 and shift back to sign-extend.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                (Entry::Int(i64::from(v)), 4)
            }
            0xF3 => {
                let b = bytes(pos + 1, 4)?;
                (Entry::Int(i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))), 5)
            }
            0xF4 => {
                let b = bytes(pos + 1, 8)?;
                (Entry::Int(i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])), 9)
            }
            _ => return Err(Error::BadFormat("invalid listpack entry encoding")),
        }
    };
    let mut expected = [0u8; 5];
    let backlen = encode_backlen(encoded_len, &mut expected);
    let stored = bytes(pos + encoded_len, backlen.len())?;
    if stored != backlen {
        return Err(Error::BadFormat("listpack entry back length is wrong"));
    }
    Ok((entry, pos + encoded_len + backlen.len()))
}

/// Encodes the back length of an entry whose encoding + data take `len` bytes. The last
/// byte holds the low 7 bits; every byte but the first has bit 7 set, meaning "more bytes
/// to the left", so a reader walking backwards knows where the number starts.
fn encode_backlen(len: usize, buf: &mut [u8; 5]) -> &[u8] {
    let n = if len <= 127 {
        1
    } else if len < 16383 {
        2
    } else if len < 2_097_151 {
        3
    } else if len < 268_435_455 {
        4
    } else {
        5
    };
    for (i, slot) in buf[..n].iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        let bits = ((len >> shift) & 0x7f) as u8;
        *slot = if i == 0 { bits } else { bits | 0x80 };
    }
    &buf[..n]
}

/// Builds a listpack by appending elements.
#[derive(Debug, Clone, Default)]
pub struct ListpackBuilder {
    /// Encoded entries, without header or end marker.
    body: Vec<u8>,
    count: usize,
}

impl ListpackBuilder {
    /// An empty listpack.
    pub fn new() -> Self {
        ListpackBuilder::default()
    }

    /// Appends a string; canonical integers (as Redis's `string2ll` accepts them) are stored
    /// as integers, like Redis's `lpAppend` does.
    pub fn push_str(&mut self, s: &[u8]) {
        if let Some(v) = parse_canonical_i64(s) {
            self.push_int(v);
            return;
        }
        let start = self.body.len();
        let len = s.len();
        if len < 64 {
            self.body.push(0x80 | len as u8);
        } else if len < 4096 {
            self.body.push(0xE0 | (len >> 8) as u8);
            self.body.push((len & 0xff) as u8);
        } else {
            self.body.push(0xF0);
            // Listpacks cannot hold strings of 4 GiB or more; callers split long before that.
            self.body.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
        }
        self.body.extend_from_slice(s);
        self.finish_entry(start);
    }

    /// Appends an integer in the smallest encoding that holds it.
    pub fn push_int(&mut self, v: i64) {
        let start = self.body.len();
        if (0..=127).contains(&v) {
            self.body.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u16) & 0x1fff;
            self.body.push(0xC0 | (u >> 8) as u8);
            self.body.push((u & 0xff) as u8);
        } else if let Ok(v16) = i16::try_from(v) {
            self.body.push(0xF1);
            self.body.extend_from_slice(&v16.to_le_bytes());
        } else if (-(1 << 23)..1 << 23).contains(&v) {
            self.body.push(0xF2);
            self.body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(v32) = i32::try_from(v) {
            self.body.push(0xF3);
            self.body.extend_from_slice(&v32.to_le_bytes());
        } else {
            self.body.push(0xF4);
            self.body.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    /// Appends every entry of `other` after this builder's entries.
    pub fn append(&mut self, other: &ListpackBuilder) {
        self.body.extend_from_slice(&other.body);
        self.count += other.count;
    }

    fn finish_entry(&mut self, start: usize) {
        let mut buf = [0u8; 5];
        let backlen = encode_backlen(self.body.len() - start, &mut buf);
        self.body.extend_from_slice(backlen);
        self.count += 1;
    }

    /// Number of elements appended.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no element was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size in bytes of the listpack [`finish`](Self::finish) would return now.
    pub fn byte_size(&self) -> usize {
        HEADER_SIZE + self.body.len() + 1
    }

    /// Size in bytes `s` would take as one entry (back length included).
    pub fn str_entry_size(s: &[u8]) -> usize {
        if let Some(v) = parse_canonical_i64(s) {
            return Self::int_entry_size(v);
        }
        let header = match s.len() {
            0..=63 => 1,
            64..=4095 => 2,
            _ => 5,
        };
        let mut buf = [0u8; 5];
        header + s.len() + encode_backlen(header + s.len(), &mut buf).len()
    }

    /// Size in bytes `v` would take as one entry (back length included).
    pub fn int_entry_size(v: i64) -> usize {
        let encoded = if (0..=127).contains(&v) {
            1
        } else if (-4096..=4095).contains(&v) {
            2
        } else if i16::try_from(v).is_ok() {
            3
        } else if (-(1 << 23)..1 << 23).contains(&v) {
            4
        } else if i32::try_from(v).is_ok() {
            5
        } else {
            9
        };
        encoded + 1
    }

    /// The finished listpack blob.
    pub fn finish(self) -> Vec<u8> {
        let total = self.byte_size();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes());
        let count = u16::try_from(self.count).ok().filter(|c| *c != COUNT_UNKNOWN).unwrap_or(COUNT_UNKNOWN);
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(END);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps hand-written entries in a header and end marker.
    fn wrap(count: u16, entries: &[u8]) -> Vec<u8> {
        let total = (HEADER_SIZE + entries.len() + 1) as u32;
        let mut lp = total.to_le_bytes().to_vec();
        lp.extend_from_slice(&count.to_le_bytes());
        lp.extend_from_slice(entries);
        lp.push(END);
        lp
    }

    #[test]
    fn decodes_every_encoding() {
        let mut body = vec![
            0x05,
            0x01, // 7-bit uint 5, back length 1
            0x82,
            b'h',
            b'i',
            0x03, // 6-bit string "hi", back length 3
            0xDF,
            0xFF,
            0x02, // 13-bit int: 0x1FFF = -1
            0xC0 | 0x10,
            0x00,
            0x02, // 13-bit int: 0x1000 = -4096
        ];
        // 12-bit string of 100 bytes: E0|0, 100; back length 102 fits one byte.
        body.extend_from_slice(&[0xE0, 100]);
        body.extend_from_slice(&[b'x'; 100]);
        body.push(102);
        // 32-bit string of 5000 bytes: F0, len LE; back length 5005 = 2 bytes (39, 0x80|13).
        body.push(0xF0);
        body.extend_from_slice(&5000u32.to_le_bytes());
        body.extend_from_slice(&[b'y'; 5000]);
        body.extend_from_slice(&[(5005 >> 7) as u8, 0x80 | (5005 & 0x7f) as u8]);
        body.extend_from_slice(&[0xF1, 0x00, 0x80, 0x03]); // i16 -32768
        body.extend_from_slice(&[0xF2, 0xff, 0xff, 0x7f, 0x04]); // i24 8388607
        body.extend_from_slice(&[0xF2, 0x00, 0x00, 0x80, 0x04]); // i24 -8388608
        body.extend_from_slice(&[0xF3, 0x00, 0x00, 0x00, 0x80, 0x05]); // i32 min
        body.push(0xF4); // i64 max
        body.extend_from_slice(&i64::MAX.to_le_bytes());
        body.push(0x09);
        let lp = wrap(11, &body);
        let e = decode_listpack(&lp).unwrap();
        assert_eq!(
            e,
            vec![
                Entry::Int(5),
                Entry::Str(b"hi"),
                Entry::Int(-1),
                Entry::Int(-4096),
                Entry::Str(&[b'x'; 100]),
                Entry::Str(&[b'y'; 5000]),
                Entry::Int(-32768),
                Entry::Int(8388607),
                Entry::Int(-8388608),
                Entry::Int(i64::from(i32::MIN)),
                Entry::Int(i64::MAX),
            ]
        );
        // Unknown count is accepted.
        assert_eq!(decode_listpack(&wrap(u16::MAX, &body)).unwrap().len(), 11);
        assert_eq!(decode_listpack(&wrap(0, &[])).unwrap(), vec![]);
    }

    #[test]
    fn rejects_corruption() {
        let good = wrap(1, &[0x82, b'h', b'i', 0x03]);
        assert!(decode_listpack(&good).is_ok());
        assert!(decode_listpack(&wrap(2, &[0x82, b'h', b'i', 0x03])).is_err()); // count
        assert!(decode_listpack(&wrap(1, &[0x82, b'h', b'i', 0x04])).is_err()); // back length
        assert!(decode_listpack(&wrap(1, &[0x85, b'h', b'i', 0x03])).is_err()); // string length
        assert!(decode_listpack(&wrap(1, &[0xF5, 0x01])).is_err()); // bad encoding
        let mut bad_total = good.clone();
        bad_total[0] += 1;
        assert!(decode_listpack(&bad_total).is_err());
        let mut no_end = good.clone();
        *no_end.last_mut().unwrap() = 0x01;
        assert!(decode_listpack(&no_end).is_err());
        for cut in 0..good.len() {
            assert!(decode_listpack(&good[..cut]).is_err());
        }
    }

    #[test]
    fn builder_matches_decoder_at_boundaries() {
        let ints = [
            0,
            127,
            128,
            -1,
            4095,
            -4096,
            4096,
            -4097,
            32767,
            -32768,
            32768,
            8388607,
            -8388608,
            8388608,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::from(i32::MAX) + 1,
            i64::MAX,
            i64::MIN,
        ];
        let mut b = ListpackBuilder::new();
        let mut expect_size = 7;
        for v in ints {
            b.push_int(v);
            expect_size += ListpackBuilder::int_entry_size(v);
        }
        let strings: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"007".to_vec(),
            vec![b'a'; 63],
            vec![b'b'; 64],
            vec![b'c'; 4095],
            vec![b'd'; 4096],
            vec![b'e'; 20000],
        ];
        for s in &strings {
            b.push_str(s);
            expect_size += ListpackBuilder::str_entry_size(s);
        }
        b.push_str(b"-42"); // stored as an integer
        expect_size += ListpackBuilder::str_entry_size(b"-42");
        assert_eq!(b.byte_size(), expect_size);
        let lp = b.finish();
        assert_eq!(lp.len(), expect_size);
        let e = decode_listpack(&lp).unwrap();
        for (i, v) in ints.iter().enumerate() {
            assert_eq!(e[i], Entry::Int(*v));
        }
        for (i, s) in strings.iter().enumerate() {
            assert_eq!(e[ints.len() + i], Entry::Str(s));
        }
        assert_eq!(*e.last().unwrap(), Entry::Int(-42));
    }

    #[test]
    fn backlen_layout() {
        let mut buf = [0u8; 5];
        assert_eq!(encode_backlen(127, &mut buf), [127]);
        assert_eq!(encode_backlen(128, &mut buf), [1, 0x80]);
        assert_eq!(encode_backlen(16383, &mut buf), [0, 0xFF, 0xFF]);
        assert_eq!(encode_backlen(300_000_000, &mut buf).len(), 5);
    }
}
