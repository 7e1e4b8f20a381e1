//! Bitmap commands: GETBIT, SETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.
//!
//! This module is the glue between the keyspace and the bit algorithms in [`crate::bits`]:
//! it does the lookups in the order Redis does them (some commands check the key's type
//! before their arguments, some after) and stores results.

use store::{Db, View};

use crate::bits::{self, BitCountArgs, BitOp, BitPosArgs, BitfieldOps};
use crate::error::CmdResult;
use crate::handlers::{edit_string, read_string, store_string, write_lookup_string};
use crate::{notify, Ctx};

/// Fails with WRONGTYPE if `key` exists and is not a string (for commands that write bits).
fn check_string_target(ctx: &Ctx<'_>, db: &mut Db, key: &[u8]) -> CmdResult {
    write_lookup_string(ctx, db, key).map(|_| ())
}

/// GETBIT key offset
pub fn getbit(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let offset = bits::parse_bit_offset_with_limit(ctx.argv[2], ctx.settings.proto_max_bulk_len)?;
    let key = ctx.argv[1];
    let bit = read_string(ctx, view.db(ctx.db, key), key)?.map_or(0, |v| bits::getbit(v, offset));
    ctx.out.int(bit as i64);
    Ok(())
}

/// SETBIT key offset value → the previous bit.
pub fn setbit(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let offset = bits::parse_bit_offset_with_limit(ctx.argv[2], ctx.settings.proto_max_bulk_len)?;
    let on = bits::parse_bit_value(ctx.argv[3])?;
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    check_string_target(ctx, db, key)?;
    let old = edit_string(ctx, db, key, |v| bits::setbit(v, offset, on));
    ctx.notify(notify::STRING, "setbit", key);
    ctx.out.int(old as i64);
    Ok(())
}

/// BITCOUNT key [start end [BYTE | BIT]] (the key is looked up before the range is parsed).
pub fn bitcount(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let Some(value) = read_string(ctx, view.db(ctx.db, key), key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let args = BitCountArgs::parse(&ctx.argv[2..])?;
    let n = bits::bitcount(value, &args);
    ctx.out.int(n);
    Ok(())
}

/// BITPOS key bit [start [end [BYTE | BIT]]]
pub fn bitpos(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let bit = bits::parse_bitpos_bit(ctx.argv[2])?;
    let key = ctx.argv[1];
    let value = read_string(ctx, view.db(ctx.db, key), key)?;
    let Some(value) = value else {
        ctx.out.int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let args = BitPosArgs::parse(&ctx.argv[3..])?;
    let pos = bits::bitpos(Some(value), bit, &args);
    ctx.out.int(pos);
    Ok(())
}

/// BITOP AND | OR | XOR | NOT destkey key [key ...] → the length of the result.
pub fn bitop(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let op = BitOp::parse(ctx.argv[1], ctx.argv.len() - 3)?;
    let mut sources: Vec<Option<Vec<u8>>> = Vec::with_capacity(ctx.argv.len() - 3);
    for key in &ctx.argv[3..] {
        let value = read_string(ctx, view.db(ctx.db, key), key)?;
        sources.push(value.map(<[u8]>::to_vec));
    }
    let refs: Vec<Option<&[u8]>> = sources.iter().map(Option::as_deref).collect();
    let result = bits::bitop(op, &refs);
    let dest = ctx.argv[2];
    let db = view.db(ctx.db, dest);
    if result.is_empty() {
        if db.remove(dest).is_some() {
            ctx.dirty += 1;
            ctx.notify(notify::GENERIC, "del", dest);
        }
    } else {
        store_string(ctx, db, dest, &result, None);
        ctx.notify(notify::STRING, "set", dest);
    }
    ctx.out.int(result.len() as i64);
    Ok(())
}

fn bitfield_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, read_only: bool) -> CmdResult {
    let ops = BitfieldOps::parse_with_limit(&ctx.argv[2..], read_only, ctx.settings.proto_max_bulk_len)?;
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    if !ops.writes() {
        let value = read_string(ctx, db, key)?.unwrap_or_default();
        let replies = bits::bitfield_get(value, &ops);
        bits::write_bitfield_replies(ctx.out, &replies);
        return Ok(());
    }
    check_string_target(ctx, db, key)?;
    let outcome = edit_string(ctx, db, key, |v| bits::bitfield_run(v, &ops));
    if outcome.changes > 0 {
        ctx.notify(notify::STRING, "setbit", key);
    }
    outcome.write(ctx.out);
    Ok(())
}

/// BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment |
/// OVERFLOW WRAP|SAT|FAIL] ...
pub fn bitfield(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    bitfield_generic(ctx, view, false)
}

/// BITFIELD_RO key [GET type offset] ...
pub fn bitfield_ro(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    bitfield_generic(ctx, view, true)
}
