//! Set commands (to be written by the data-type work).

use crate::table::CommandSpec;

/// The set commands' table entries.
pub static COMMANDS: &[CommandSpec] = &[];
