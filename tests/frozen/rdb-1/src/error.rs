//! The crate's error type.
//!
//! Invariant: every decoder reports malformed input through [`Error`] and never panics.
//! [`Error::Truncated`] means the input ended before a declared length, count or field was
//! complete; [`Error::BadFormat`] means the bytes present contradict the format.

use std::fmt;
use std::io;

/// Why decoding or reading RDB data failed.
#[derive(Debug)]
pub enum Error {
    /// The input ended before a declared length, count or field was complete.
    Truncated,
    /// The bytes do not follow the format; the text names what is wrong.
    BadFormat(&'static str),
    /// A stored CRC64 does not match the data it covers.
    Checksum,
    /// The data declares an RDB version this reader does not accept.
    Version(u16),
    /// Well-formed data this crate does not handle (module values, unknown types, ...).
    Unsupported(String),
    /// The underlying reader failed with something other than end of input.
    Io(io::Error),
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("unexpected end of RDB data"),
            Error::BadFormat(what) => write!(f, "bad RDB data: {what}"),
            Error::Checksum => f.write_str("RDB checksum mismatch"),
            Error::Version(v) => write!(f, "unsupported RDB version {v}"),
            Error::Unsupported(what) => f.write_str(what),
            Error::Io(e) => write!(f, "I/O error while reading RDB data: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    /// End of input becomes [`Error::Truncated`]; anything else stays an I/O error.
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::Truncated
        } else {
            Error::Io(e)
        }
    }
}
