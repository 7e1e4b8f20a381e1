//! CRC-64 as used by Redis for RDB files and DUMP payloads.
//!
//! The variant is CRC-64/Jones, bit-reflected, initial value 0 and no final xor (Redis's
//! `crc64(0, buf, len)`). It is computed with slicing-by-8 tables built at compile time:
//! `TABLES[k][b]` is the CRC contribution of byte `b` followed by `k` zero bytes, so eight
//! input bytes are folded per step. The tail (fewer than 8 bytes) goes byte by byte.

/// The Jones polynomial 0xad93d23594c935a9, bit-reversed for the reflected algorithm.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

static TABLES: [[u64; 256]; 8] = build_tables();

const fn build_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY_REFLECTED } else { c >> 1 };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Folds `data` into a running CRC value and returns the new value.
fn update_raw(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = crc ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(v & 0xff) as usize]
            ^ TABLES[6][((v >> 8) & 0xff) as usize]
            ^ TABLES[5][((v >> 16) & 0xff) as usize]
            ^ TABLES[4][((v >> 24) & 0xff) as usize]
            ^ TABLES[3][((v >> 32) & 0xff) as usize]
            ^ TABLES[2][((v >> 40) & 0xff) as usize]
            ^ TABLES[1][((v >> 48) & 0xff) as usize]
            ^ TABLES[0][(v >> 56) as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLES[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC-64 of a whole buffer, equal to Redis's `crc64(0, data, len)`.
pub fn crc64(data: &[u8]) -> u64 {
    update_raw(0, data)
}

/// Incremental CRC-64: feeding the data in any split gives the same result as [`crc64`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Crc64 {
    state: u64,
}

impl Crc64 {
    /// A CRC over no data yet.
    pub fn new() -> Self {
        Crc64 { state: 0 }
    }

    /// Adds `data` to the checksummed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.state = update_raw(self.state, data);
    }

    /// The CRC of everything added so far; the value can keep being updated afterwards.
    pub fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(crc64(b""), 0);
    }

    /// Bit-at-a-time reference, to check the sliced tables on every length and alignment.
    fn bitwise(data: &[u8]) -> u64 {
        let mut crc = 0u64;
        for &b in data {
            crc ^= u64::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            }
        }
        crc
    }

    #[test]
    fn matches_bitwise_and_incremental() {
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for len in 0..data.len() {
            let whole = crc64(&data[..len]);
            assert_eq!(whole, bitwise(&data[..len]), "len {len}");
            let split = len / 3;
            let mut c = Crc64::new();
            c.update(&data[..split]);
            c.update(&data[split..len]);
            assert_eq!(c.finish(), whole);
        }
    }
}
