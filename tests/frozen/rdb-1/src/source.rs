//! Byte sources that object decoders read from.
//!
//! [`Source`] abstracts over an in-memory slice ([`SliceSource`], for DUMP payloads and
//! nested blobs) and a streaming reader ([`ReadSource`], for RDB files, with a running CRC).
//!
//! Allocation invariant: no source reserves memory for a declared length beyond what can
//! actually be present. A slice source rejects lengths and counts larger than what remains
//! before allocating; a reader source reserves at most [`MAX_PREALLOC`] bytes up front and
//! otherwise grows its buffers only as bytes arrive, so a huge declared length ends in
//! [`Error::Truncated`] rather than an out-of-memory abort.

use std::io::Read;

use crate::crc64::Crc64;
use crate::error::{Error, Result};

/// Largest capacity reserved up front on the strength of a declared length or count.
pub const MAX_PREALLOC: usize = 64 * 1024;

/// Capacity to reserve for `count` declared items: the count itself, capped.
pub(crate) fn capacity_hint(count: u64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX).min(MAX_PREALLOC)
}

/// Something the RDB decoders can pull bytes from.
pub trait Source {
    /// Reads one byte.
    fn read_u8(&mut self) -> Result<u8>;

    /// Fills `buf` completely or fails with [`Error::Truncated`].
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()>;

    /// Reads exactly `n` bytes into a new vector.
    fn read_vec(&mut self, n: u64) -> Result<Vec<u8>>;

    /// Fails when `count` items of at least one byte each cannot fit in the input that is
    /// left. Sources that do not know their remaining size accept any count.
    fn check_count(&self, count: u64) -> Result<()>;
}

/// A [`Source`] over a byte slice.
#[derive(Debug, Clone)]
pub struct SliceSource<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    /// Starts reading at the beginning of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        SliceSource { data, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    /// Consumes and returns the next `n` bytes without copying.
    pub fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let rest = self.remaining();
        let n = usize::try_from(n).map_err(|_| Error::Truncated)?;
        let bytes = rest.get(..n).ok_or(Error::Truncated)?;
        self.pos += n;
        Ok(bytes)
    }
}

impl Source for SliceSource<'_> {
    fn read_u8(&mut self) -> Result<u8> {
        let b = *self.data.get(self.pos).ok_or(Error::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        let bytes = self.take(buf.len() as u64)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn read_vec(&mut self, n: u64) -> Result<Vec<u8>> {
        Ok(self.take(n)?.to_vec())
    }

    fn check_count(&self, count: u64) -> Result<()> {
        if count > self.remaining().len() as u64 {
            return Err(Error::Truncated);
        }
        Ok(())
    }
}

/// A [`Source`] over any [`Read`], keeping a CRC-64 of and a count of every byte consumed.
///
/// Reads are done in small pieces, so wrap unbuffered readers (files, sockets) in a
/// `BufReader` first.
#[derive(Debug)]
pub struct ReadSource<R: Read> {
    inner: R,
    crc: Crc64,
    consumed: u64,
}

impl<R: Read> ReadSource<R> {
    /// Wraps `inner`; the CRC and byte count start from zero.
    pub fn new(inner: R) -> Self {
        ReadSource { inner, crc: Crc64::new(), consumed: 0 }
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.consumed
    }

    /// CRC-64 of every byte consumed so far.
    pub fn crc(&self) -> u64 {
        self.crc.finish()
    }

    /// Gives the reader back.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn account(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.consumed += bytes.len() as u64;
    }
}

impl<R: Read> Source for ReadSource<R> {
    fn read_u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.inner.read_exact(buf)?;
        self.account(buf);
        Ok(())
    }

    fn read_vec(&mut self, n: u64) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(capacity_hint(n));
        // `read_to_end` grows the buffer as data arrives, never to the declared size at once.
        (&mut self.inner).take(n).read_to_end(&mut v)?;
        self.account(&v);
        if v.len() as u64 != n {
            return Err(Error::Truncated);
        }
        Ok(v)
    }

    fn check_count(&self, _count: u64) -> Result<()> {
        Ok(())
    }
}
