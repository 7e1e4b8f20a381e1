//! LZF compression as used for RDB strings (encoding `0xC3`).
//!
//! Format (a sequence of runs, each introduced by a control byte `c`):
//! * `c < 32`: a literal run of `c + 1` bytes follows.
//! * otherwise a back reference: `len = c >> 5` (if 7, add the next byte), then
//!   `offset = ((c & 0x1f) << 8) + next byte + 1`; copy `len + 2` bytes starting `offset`
//!   bytes before the current end of the output (the copy may overlap what it writes).
//!
//! The compressor is a greedy single-probe hash matcher; it only promises output that any
//! LZF decompressor (Redis's `lzf_decompress` included) accepts, not Redis's exact bytes.
//! The decompressor checks every reference and length, and grows its output only as runs
//! are decoded, so a bogus declared length cannot cause a large allocation.

use crate::error::{Error, Result};

/// Longest literal run one control byte can describe.
const MAX_LITERAL: usize = 32;
/// Farthest back a reference can point.
const MAX_OFFSET: usize = 8192;
/// Shortest match worth a reference (a reference costs 2 or 3 bytes).
const MIN_MATCH: usize = 3;
/// Longest match one reference can describe: 7 + 255 + 2.
const MAX_MATCH: usize = 264;
/// Largest hash table (log2 of entries); small inputs use a smaller table.
const MAX_HASH_LOG: u32 = 14;
/// Cap on a capacity reserved up front from a declared (untrusted) length.
const MAX_PREALLOC: usize = 64 * 1024;

/// Compresses `input`; the result is never empty unless `input` is.
pub fn compress(input: &[u8]) -> Vec<u8> {
    compress_limited(input, usize::MAX).unwrap_or_default()
}

/// Compresses `input`, giving up (returning `None`) as soon as the output would exceed
/// `max_out` bytes. This is how callers ask for "only if it saves space".
pub fn compress_limited(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    let hash_log = table_log(n);
    // Each slot holds a position + 1 (0 = empty) of the last 3-byte sequence with that hash.
    let mut table = vec![0u32; 1 << hash_log];
    let mut out = Vec::with_capacity(n.min(max_out).saturating_add(n / MAX_LITERAL + 1));
    let mut lit_start = 0;
    let mut i = 0;
    while i + MIN_MATCH <= n {
        let h = hash3(input, i, hash_log);
        let candidate = table[h] as usize;
        table[h] = pos_slot(i);
        if let Some(len) = match_len(input, candidate, i) {
            emit_literals(&mut out, &input[lit_start..i]);
            emit_reference(&mut out, i - (candidate - 1), len);
            if out.len() > max_out {
                return None;
            }
            // Index the positions inside the match so later data can refer to them.
            for j in i + 1..i + len {
                if j + MIN_MATCH <= n {
                    table[hash3(input, j, hash_log)] = pos_slot(j);
                }
            }
            i += len;
            lit_start = i;
        } else {
            i += 1;
        }
        // Pending literals are committed, so they alone already bound the final size.
        if out.len() + (i - lit_start) > max_out {
            return None;
        }
    }
    emit_literals(&mut out, &input[lit_start..]);
    (out.len() <= max_out).then_some(out)
}

/// Table size for an input of `n` bytes: about one slot per byte, within [2^8, 2^14].
fn table_log(n: usize) -> u32 {
    let bits = usize::BITS - n.leading_zeros();
    bits.clamp(8, MAX_HASH_LOG)
}

/// Table slot value for position `i`; inputs past u32 range simply stop matching far back.
fn pos_slot(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(0)
}

fn hash3(input: &[u8], i: usize, hash_log: u32) -> usize {
    let v = (u32::from(input[i]) << 16) | (u32::from(input[i + 1]) << 8) | u32::from(input[i + 2]);
    (v.wrapping_mul(2_654_435_761) >> (32 - hash_log)) as usize
}

/// Length of the match between the slot `candidate` (position + 1) and position `i`, if it
/// is a usable reference (in range and at least [`MIN_MATCH`] long).
fn match_len(input: &[u8], candidate: usize, i: usize) -> Option<usize> {
    let c = candidate.checked_sub(1)?;
    let offset = i.checked_sub(c)?;
    if offset == 0 || offset > MAX_OFFSET {
        return None;
    }
    let max = MAX_MATCH.min(input.len() - i);
    let mut len = 0;
    while len < max && input[c + len] == input[i + len] {
        len += 1;
    }
    (len >= MIN_MATCH).then_some(len)
}

fn emit_literals(out: &mut Vec<u8>, mut lits: &[u8]) {
    while !lits.is_empty() {
        let take = lits.len().min(MAX_LITERAL);
        out.push((take - 1) as u8);
        out.extend_from_slice(&lits[..take]);
        lits = &lits[take..];
    }
}

/// Writes a reference; `offset` is in 1..=8192 and `len` in 3..=264 (callers guarantee it).
fn emit_reference(out: &mut Vec<u8>, offset: usize, len: usize) {
    let l = len - 2;
    let o = offset - 1;
    let high = (o >> 8) as u8;
    if l < 7 {
        out.push(((l as u8) << 5) | high);
    } else {
        out.push((7 << 5) | high);
        out.push((l - 7) as u8);
    }
    out.push((o & 0xff) as u8);
}

/// Decompresses `input`, which must expand to exactly `expected_len` bytes.
pub fn decompress(input: &[u8], expected_len: u64) -> Result<Vec<u8>> {
    let expected = usize::try_from(expected_len).map_err(|_| Error::BadFormat("LZF length too large"))?;
    let mut out: Vec<u8> = Vec::with_capacity(expected.min(MAX_PREALLOC));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let len = ctrl + 1;
            let lits = input.get(ip..ip + len).ok_or(Error::BadFormat("LZF literal run past end of input"))?;
            if out.len() + len > expected {
                return Err(Error::BadFormat("LZF data expands past its declared length"));
            }
            out.extend_from_slice(lits);
            ip += len;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(ip).ok_or(Error::BadFormat("LZF reference past end of input"))?);
                ip += 1;
            }
            let low = usize::from(*input.get(ip).ok_or(Error::BadFormat("LZF reference past end of input"))?);
            ip += 1;
            let offset = ((ctrl & 0x1f) << 8) + low + 1;
            let len = len + 2;
            let start =
                out.len().checked_sub(offset).ok_or(Error::BadFormat("LZF reference before start of output"))?;
            if out.len() + len > expected {
                return Err(Error::BadFormat("LZF data expands past its declared length"));
            }
            // Byte by byte on purpose: the source may overlap the bytes being written.
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    if out.len() != expected {
        return Err(Error::BadFormat("LZF data shorter than its declared length"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8]) {
        let c = compress(data);
        let d = decompress(&c, data.len() as u64).expect("decompress");
        assert_eq!(d, data);
    }

    #[test]
    fn roundtrips_random_and_repetitive() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut random = Vec::new();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            random.push(x as u8);
        }
        for len in [0, 1, 2, 3, 31, 32, 33, 100, 1000, 20_000] {
            roundtrip(&random[..len]);
        }
        let repetitive: Vec<u8> = b"abcabcabcabcabd".iter().cycle().take(50_000).copied().collect();
        roundtrip(&repetitive);
        let zeros = vec![0u8; 100_000];
        roundtrip(&zeros);
        let c = compress(&zeros);
        assert!(c.len() < 1500, "long runs must compress well, got {}", c.len());
        // Mixed: random blocks repeated at distances around the 8 KiB window limit.
        let mut mixed = random[..9000].to_vec();
        mixed.extend_from_slice(&random[..9000]);
        mixed.extend_from_slice(&random[500..700]);
        roundtrip(&mixed);
    }

    #[test]
    fn limited_gives_up_on_incompressible_data() {
        let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        assert!(compress_limited(&data, data.len() - 4).is_none());
        let text = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let c = compress_limited(text, text.len() - 4).expect("compressible");
        assert_eq!(decompress(&c, text.len() as u64).unwrap(), text);
    }

    #[test]
    fn decompresses_hand_made_blocks() {
        // Literal run of 3 ("abc"): control 2.
        assert_eq!(decompress(&[2, b'a', b'b', b'c'], 3).unwrap(), b"abc");
        // "ab" literal, then a reference: len field 1 (copy 3), offset 2 (stored as 1):
        // control = (1 << 5) | 0, low byte 1 -> copies "aba" overlapping.
        assert_eq!(decompress(&[1, b'a', b'b', 0x20, 0x01], 5).unwrap(), b"ababa");
        // "x" then a long reference: len field 7 plus extra byte 3 -> copy 12 bytes, offset 1.
        assert_eq!(decompress(&[0, b'x', 0xE0, 3, 0], 13).unwrap(), vec![b'x'; 13]);
    }

    #[test]
    fn rejects_malformed_blocks() {
        // Literal run longer than the input.
        assert!(decompress(&[5, b'a'], 6).is_err());
        // Reference before the start of the output.
        assert!(decompress(&[0, b'a', 0x20, 0x05], 4).is_err());
        // Reference missing its offset byte.
        assert!(decompress(&[0, b'a', 0x20], 4).is_err());
        // Long reference missing its length byte.
        assert!(decompress(&[0, b'a', 0xE0], 4).is_err());
        // Output longer or shorter than declared.
        assert!(decompress(&[2, b'a', b'b', b'c'], 2).is_err());
        assert!(decompress(&[2, b'a', b'b', b'c'], 4).is_err());
        // A huge declared length does not allocate it up front.
        assert!(decompress(&[0, b'a'], u64::MAX / 2).is_err());
    }
}
