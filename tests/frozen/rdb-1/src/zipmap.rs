//! Zipmap blobs (read only; hashes in RDB files from Redis 2.x).
//!
//! Layout: a count byte (254 or more means "unknown"), then per pair: key length, key, value
//! length, a "free" byte, value, then that many unused bytes; finally `0xFF`. Lengths are one
//! byte when below 254, else `0xFE` followed by a u32 LE. The decoder checks every length
//! against the blob, that the end marker is the last byte, and the count when known.

use crate::error::{Error, Result};

const BIG_LEN: u8 = 254;
const END: u8 = 255;

/// Decodes a zipmap blob into its field/value pairs.
pub fn decode_zipmap(zm: &[u8]) -> Result<Vec<(&[u8], &[u8])>> {
    let (&declared, _) = zm.split_first().ok_or(Error::BadFormat("empty zipmap"))?;
    let mut pairs = Vec::new();
    let mut pos = 1;
    while let Some(key_len) = read_len(zm, &mut pos)? {
        let key = take(zm, &mut pos, key_len)?;
        let value_len = read_len(zm, &mut pos)?.ok_or(Error::BadFormat("zipmap key without value"))?;
        let free = usize::from(take(zm, &mut pos, 1)?[0]);
        let value = take(zm, &mut pos, value_len)?;
        take(zm, &mut pos, free)?;
        pairs.push((key, value));
    }
    if pos != zm.len() {
        return Err(Error::BadFormat("zipmap end marker is not its last byte"));
    }
    if declared < BIG_LEN && usize::from(declared) != pairs.len() {
        return Err(Error::BadFormat("zipmap count does not match its entries"));
    }
    Ok(pairs)
}

/// Reads a zipmap length at `pos`; `None` at the end marker.
fn read_len(zm: &[u8], pos: &mut usize) -> Result<Option<usize>> {
    let first = take(zm, pos, 1)?[0];
    match first {
        END => Ok(None),
        BIG_LEN => {
            let b = take(zm, pos, 4)?;
            Ok(Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize))
        }
        n => Ok(Some(usize::from(n))),
    }
}

fn take<'a>(zm: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8]> {
    let end = pos.checked_add(n).ok_or(Error::BadFormat("zipmap entry past end"))?;
    let s = zm.get(*pos..end).ok_or(Error::BadFormat("zipmap entry past end"))?;
    *pos = end;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        let mut zm = vec![
            2, // two pairs
            3, b'f', b'o', b'o', // key "foo"
            3, 2, b'b', b'a', b'r', 0, 0, // value "bar" with 2 free bytes
            1, b'k', // key "k"
        ];
        // Value of 300 bytes: big length form, no free bytes.
        zm.push(BIG_LEN);
        zm.extend_from_slice(&300u32.to_le_bytes());
        zm.push(0);
        zm.extend_from_slice(&[b'v'; 300]);
        zm.push(END);
        let pairs = decode_zipmap(&zm).unwrap();
        assert_eq!(pairs, vec![(&b"foo"[..], &b"bar"[..]), (&b"k"[..], &[b'v'; 300][..])]);
        // Unknown count.
        zm[0] = 254;
        assert_eq!(decode_zipmap(&zm).unwrap().len(), 2);
        assert_eq!(decode_zipmap(&[0, END]).unwrap(), vec![]);
    }

    #[test]
    fn rejects_corruption() {
        let good = [1, 1, b'a', 1, 0, b'b', END];
        assert!(decode_zipmap(&good).is_ok());
        assert!(decode_zipmap(&[2, 1, b'a', 1, 0, b'b', END]).is_err()); // count
        assert!(decode_zipmap(&[1, 1, b'a', END]).is_err()); // key without value
        assert!(decode_zipmap(&[1, 1, b'a', 1, 5, b'b', END]).is_err()); // free past end
        assert!(decode_zipmap(&[1, 1, b'a', 1, 0, b'b', END, 0]).is_err()); // trailing
        for cut in 0..good.len() {
            assert!(decode_zipmap(&good[..cut]).is_err());
        }
    }
}
