//! DUMP / RESTORE payloads.
//!
//! Layout: object type byte, object body, RDB version (u16 LE), CRC-64 (u64 LE) of every
//! byte before the CRC. Like Redis's `verifyDumpPayload`, parsing rejects payloads shorter
//! than the 10-byte footer, a version newer than the reader's, and any CRC mismatch (Redis
//! skips the CRC only under a debug setting, never because of a stored zero). Beyond Redis,
//! the object must use exactly the bytes before the footer.

use crate::consts::{RDB_VERSION, RDB_VERSION_7_0};
use crate::crc64::crc64;
use crate::decode::read_value;
use crate::encode::{version_needed, write_value, WriteOptions};
use crate::error::{Error, Result};
use crate::source::{SliceSource, Source};
use crate::value::Value;

/// Bytes after the object: version (2) and CRC (8).
const FOOTER_SIZE: usize = 10;

/// Serializes `v` as a DUMP payload.
///
/// The stamped version is 11 like Redis 7.2, or 10 when `opts.max_version` is 10, or
/// when `opts.lowest_dump_version` is set and the chosen encoding needs nothing newer.
pub fn dump_payload(v: &Value, opts: &WriteOptions) -> Vec<u8> {
    let mut out = vec![0u8];
    let type_byte = write_value(&mut out, v, opts);
    out[0] = type_byte;
    let version = if opts.max_version < RDB_VERSION {
        RDB_VERSION_7_0
    } else if opts.lowest_dump_version {
        version_needed(type_byte)
    } else {
        RDB_VERSION
    };
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The RDB version stamped in a DUMP payload's footer, if it is long enough to have one.
pub fn dump_payload_version(p: &[u8]) -> Option<u16> {
    let at = p.len().checked_sub(FOOTER_SIZE)?;
    Some(u16::from_le_bytes([p[at], p[at + 1]]))
}

/// Checks a DUMP payload's footer and decodes its object.
///
/// Errors: [`Error::BadFormat`] if shorter than the footer or if the object does not end
/// exactly at the footer (or is an empty collection, which RESTORE refuses),
/// [`Error::Version`] if the stamped version exceeds `max_version`, [`Error::Checksum`] on
/// a CRC mismatch, and any decoding error of the object.
pub fn parse_dump_payload(p: &[u8], max_version: u16) -> Result<Value> {
    let body_len = p.len().checked_sub(FOOTER_SIZE).ok_or(Error::BadFormat("DUMP payload too short"))?;
    let version = u16::from_le_bytes([p[body_len], p[body_len + 1]]);
    if version > max_version {
        return Err(Error::Version(version));
    }
    let crc_at = body_len + 2;
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&p[crc_at..]);
    if crc64(&p[..crc_at]) != u64::from_le_bytes(stored) {
        return Err(Error::Checksum);
    }
    let mut src = SliceSource::new(&p[..body_len]);
    let type_byte = src.read_u8()?;
    let value = read_value(type_byte, &mut src)?;
    if !src.remaining().is_empty() {
        return Err(Error::BadFormat("DUMP payload has bytes after the object"));
    }
    if value.is_empty_collection() {
        return Err(Error::BadFormat("DUMP payload holds an empty collection"));
    }
    Ok(value)
}
