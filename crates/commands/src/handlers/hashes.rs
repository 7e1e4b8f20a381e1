//! Hash commands (to be written by the data-type work).

use crate::table::CommandSpec;

/// The hash commands' table entries.
pub static COMMANDS: &[CommandSpec] = &[];
