//! RESP2/RESP3 wire format, without any I/O.
//!
//! * [`decode`] turns bytes a client sent into command arguments. It is incremental (it tells
//!   "need more bytes" apart from "bad input"), enforces every limit before allocating, and
//!   reports errors with Redis's exact protocol error texts.
//! * [`encode`] writes replies in either protocol version into a byte buffer.
//! * [`split_args`] is Redis's quoting rules for inline commands and config files.

pub mod decode;
pub mod encode;
mod split;

pub use decode::{parse_command, Limits, Parsed, ProtocolError};
pub use encode::{Protocol, ReplyBuf};
pub use split::{split_args, SplitError};
