//! The command layer's error type, mapped to Redis's error prefixes and exact texts.
//!
//! Every failure a command can report is a [`CmdError`]; its [`CmdError::text`] is what goes on
//! the wire after `-`. Texts are Redis 7's, byte for byte.

use std::borrow::Cow;

/// An error reply. The text starts with its Redis error code (`ERR`, `WRONGTYPE`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, str>);

impl CmdError {
    /// An error with a fixed text (which must include its code, e.g. `"ERR syntax error"`).
    pub const fn fixed(text: &'static str) -> Self {
        CmdError(Cow::Borrowed(text))
    }

    /// An error with a formatted text (which must include its code).
    pub fn new(text: String) -> Self {
        CmdError(Cow::Owned(text))
    }

    /// The reply text, without the leading `-`.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The error code: the first word of the text (used for errorstats).
    pub fn code(&self) -> &str {
        self.0.split(' ').next().unwrap_or("ERR")
    }
}

/// Shorthand results for command code.
pub type CmdResult<T = ()> = Result<T, CmdError>;

pub const SYNTAX: CmdError = CmdError::fixed("ERR syntax error");
pub const WRONGTYPE: CmdError = CmdError::fixed("WRONGTYPE Operation against a key holding the wrong kind of value");
pub const NOT_INTEGER: CmdError = CmdError::fixed("ERR value is not an integer or out of range");
pub const NOT_FLOAT: CmdError = CmdError::fixed("ERR value is not a valid float");
pub const OVERFLOW: CmdError = CmdError::fixed("ERR increment or decrement would overflow");
pub const NO_SUCH_KEY: CmdError = CmdError::fixed("ERR no such key");
pub const DB_INDEX: CmdError = CmdError::fixed("ERR DB index is out of range");
pub const BIT_OFFSET: CmdError = CmdError::fixed("ERR bit offset is not an integer or out of range");
pub const BIT_VALUE: CmdError = CmdError::fixed("ERR bit is not an integer or out of range");
pub const STRING_TOO_LONG: CmdError = CmdError::fixed("ERR string exceeds maximum allowed size (proto-max-bulk-len)");

/// `ERR wrong number of arguments for '<name>' command` (name as the user typed it, lowercased).
pub fn wrong_arity(name: &str) -> CmdError {
    CmdError::new(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()))
}
