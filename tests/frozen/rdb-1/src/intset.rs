//! Intset blobs: decoder and builder.
//!
//! Layout: element width in bytes (u32 LE: 2, 4 or 8), element count (u32 LE), then the
//! elements as little-endian signed integers of that width, strictly ascending. The decoder
//! checks the width, that the size is exactly header + count * width, and the ordering.

use crate::error::{Error, Result};

const HEADER_SIZE: usize = 8;

/// Decodes an intset blob into its (ascending, unique) integers.
pub fn decode_intset(blob: &[u8]) -> Result<Vec<i64>> {
    let header = blob.get(..HEADER_SIZE).ok_or(Error::BadFormat("intset shorter than its header"))?;
    let width = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let count = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(Error::BadFormat("invalid intset encoding"));
    }
    let body = &blob[HEADER_SIZE..];
    if count.checked_mul(width) != Some(body.len()) {
        return Err(Error::BadFormat("intset size does not match its count"));
    }
    let mut out: Vec<i64> = Vec::with_capacity(count);
    for chunk in body.chunks_exact(width) {
        let v = match width {
            2 => i64::from(i16::from_le_bytes([chunk[0], chunk[1]])),
            4 => i64::from(i32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])),
            _ => i64::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]),
        };
        if out.last().is_some_and(|prev| *prev >= v) {
            return Err(Error::BadFormat("intset elements are not strictly ascending"));
        }
        out.push(v);
    }
    Ok(out)
}

/// Builds an intset. Values may be pushed in any order; [`finish`](Self::finish) sorts and
/// removes duplicates, then picks the smallest width (2, 4 or 8 bytes) that holds them all.
#[derive(Debug, Clone, Default)]
pub struct IntsetBuilder {
    values: Vec<i64>,
}

impl IntsetBuilder {
    /// An empty intset.
    pub fn new() -> Self {
        IntsetBuilder::default()
    }

    /// Adds a value.
    pub fn push(&mut self, v: i64) {
        self.values.push(v);
    }

    /// Number of values pushed (duplicates included).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The finished intset blob.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.values.windows(2).all(|w| w[0] < w[1]) {
            self.values.sort_unstable();
            self.values.dedup();
        }
        let fits = |lo: i64, hi: i64| self.values.iter().all(|v| (lo..=hi).contains(v));
        let width: usize = if fits(i16::MIN.into(), i16::MAX.into()) {
            2
        } else if fits(i32::MIN.into(), i32::MAX.into()) {
            4
        } else {
            8
        };
        let mut out = Vec::with_capacity(HEADER_SIZE + width * self.values.len());
        out.extend_from_slice(&(width as u32).to_le_bytes());
        out.extend_from_slice(&u32::try_from(self.values.len()).unwrap_or(u32::MAX).to_le_bytes());
        for v in &self.values {
            out.extend_from_slice(&v.to_le_bytes()[..width]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_width() {
        // width 2, count 3: -2, 1, 300
        let b = [2, 0, 0, 0, 3, 0, 0, 0, 0xFE, 0xFF, 0x01, 0x00, 0x2C, 0x01];
        assert_eq!(decode_intset(&b).unwrap(), vec![-2, 1, 300]);
        // width 4, count 2: -70000, 70000
        let mut b = vec![4, 0, 0, 0, 2, 0, 0, 0];
        b.extend_from_slice(&(-70000i32).to_le_bytes());
        b.extend_from_slice(&70000i32.to_le_bytes());
        assert_eq!(decode_intset(&b).unwrap(), vec![-70000, 70000]);
        // width 8, count 1: i64::MIN
        let mut b = vec![8, 0, 0, 0, 1, 0, 0, 0];
        b.extend_from_slice(&i64::MIN.to_le_bytes());
        assert_eq!(decode_intset(&b).unwrap(), vec![i64::MIN]);
    }

    #[test]
    fn rejects_corruption() {
        assert!(decode_intset(&[3, 0, 0, 0, 0, 0, 0, 0]).is_err()); // width
        assert!(decode_intset(&[2, 0, 0, 0, 2, 0, 0, 0, 1, 0]).is_err()); // count vs size
        assert!(decode_intset(&[2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 1, 0]).is_err()); // duplicate
        assert!(decode_intset(&[2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 1, 0]).is_err()); // order
        assert!(decode_intset(&[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err()); // huge count
        assert!(decode_intset(&[2, 0, 0]).is_err());
    }

    #[test]
    fn builder_picks_smallest_width() {
        for (vals, width) in [
            (vec![1, -5, 3, 3], 2u8),
            (vec![i64::from(i16::MAX) + 1], 4),
            (vec![i64::from(i32::MIN) - 1, 0], 8),
            (vec![], 2),
        ] {
            let mut b = IntsetBuilder::new();
            for v in &vals {
                b.push(*v);
            }
            let blob = b.finish();
            assert_eq!(blob[0], width);
            let mut expect = vals.clone();
            expect.sort_unstable();
            expect.dedup();
            assert_eq!(decode_intset(&blob).unwrap(), expect);
        }
    }
}
