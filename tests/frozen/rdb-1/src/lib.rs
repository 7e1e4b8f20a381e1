//! Frozen copy (see tests/frozen/README.md): do not edit.
//! Redis RDB format: values, DUMP payloads and RDB files, encoded and decoded.
//!
//! No I/O beyond `std::io::Read`/`Write` and no server types: the crate turns bytes into a
//! plain [`Value`] model and back, for Redis 6.2 to 7.2 (RDB versions 1..=11).
//!
//! * [`read_value`] decodes one object body from any [`Source`] ([`SliceSource`] for
//!   in-memory data, [`ReadSource`] for readers with a running CRC).
//! * [`write_value`] encodes a [`Value`] choosing object types like Redis 7.2; the
//!   [`encoding`] primitives let callers encode bodies straight from their own structures.
//! * [`dump_payload`] / [`parse_dump_payload`] handle DUMP / RESTORE payloads.
//! * [`FileReader`] / [`FileWriter`] stream whole RDB files.
//! * [`listpack`], [`ziplist`], [`intset`], [`zipmap`], [`lzf`] and [`mod@crc64`] are the
//!   building blocks, usable on their own.
//!
//! Safety invariants: decoding never panics, and never allocates much more than the input
//! actually present (declared lengths are checked against what remains, or buffers grow
//! only as bytes arrive).

mod consts;
pub mod crc64;
mod decode;
mod dump;
mod encode;
pub mod encoding;
mod error;
mod file;
pub mod intset;
pub mod listpack;
pub mod lzf;
mod num;
pub mod source;
mod stream;
mod value;
pub mod ziplist;
pub mod zipmap;

pub use consts::*;
pub use crc64::{crc64, Crc64};
pub use decode::read_value;
pub use dump::{dump_payload, dump_payload_version, parse_dump_payload};
pub use encode::{write_value, write_value_for_version, WriteOptions};
pub use encoding::{
    read_binary_double, read_len, read_millis, read_stream_id_lens, read_stream_id_raw, read_string,
    read_string_double, write_binary_double, write_len, write_millis, write_raw_string, write_stream_id_lens,
    write_stream_id_raw, write_string,
};
pub use error::{Error, Result};
pub use file::{FileReader, FileWriter, Record};
pub use intset::{decode_intset, IntsetBuilder};
pub use listpack::{decode_listpack, Entry, ListpackBuilder};
pub use num::{double_to_i64, format_double, parse_canonical_i64};
pub use source::{ReadSource, SliceSource, Source};
pub use value::{PendingEntry, Stream, StreamConsumer, StreamFields, StreamGroup, StreamId, Value};
pub use ziplist::decode_ziplist;
pub use zipmap::decode_zipmap;
