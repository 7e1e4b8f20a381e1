//! Bitmap commands (glue between the keyspace and the bit algorithms in `crate::bits`).
use store::View;

use crate::error::{CmdError, CmdResult};
use crate::Ctx;

fn pending() -> CmdResult {
    Err(CmdError::fixed("ERR not available yet"))
}
pub fn getbit(_: &mut Ctx<'_>, _: &mut View<'_>) -> CmdResult {
    pending()
}
pub fn setbit(_: &mut Ctx<'_>, _: &mut View<'_>) -> CmdResult {
    pending()
}
pub fn bitcount(_: &mut Ctx<'_>, _: &mut View<'_>) -> CmdResult {
    pending()
}
pub fn bitpos(_: &mut Ctx<'_>, _: &mut View<'_>) -> CmdResult {
    pending()
}
pub fn bitop(_: &mut Ctx<'_>, _: &mut View<'_>) -> CmdResult {
    pending()
}
pub fn bitfield(_: &mut Ctx<'_>, _: &mut View<'_>) -> CmdResult {
    pending()
}
pub fn bitfield_ro(_: &mut Ctx<'_>, _: &mut View<'_>) -> CmdResult {
    pending()
}
