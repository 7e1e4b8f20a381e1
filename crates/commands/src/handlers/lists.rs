//! List commands (to be written by the data-type work).

use crate::table::CommandSpec;

/// The list commands' table entries.
pub static COMMANDS: &[CommandSpec] = &[];
