//! TTL commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX, XX, GT, LT), TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME, PERSIST.

use store::View;

use crate::args::{self, is};
use crate::error::{CmdError, CmdResult};
use crate::{notify, Ctx};

#[derive(Clone, Copy, Default)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_conditions(args: &[&[u8]]) -> CmdResult<Conditions> {
    let mut c = Conditions::default();
    for a in args {
        if is(a, "nx") {
            c.nx = true;
        } else if is(a, "xx") {
            c.xx = true;
        } else if is(a, "gt") {
            c.gt = true;
        } else if is(a, "lt") {
            c.lt = true;
        } else {
            return Err(CmdError::new(format!("ERR Unsupported option {}", args::text(a))));
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(CmdError::fixed("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if c.gt && c.lt {
        return Err(CmdError::fixed("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(c)
}

/// The shared implementation of the four EXPIRE commands. `base` is the time the argument
/// is relative to (now, or 0 for the *AT forms); `seconds` says the unit.
fn expire_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, base: i64, seconds: bool) -> CmdResult {
    let cond = parse_conditions(&ctx.argv[3..])?;
    let when = args::int(ctx.argv[2])?;
    let invalid = || CmdError::new(format!("ERR invalid expire time in '{}' command", ctx.name()));
    let when = if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(invalid());
        }
        when * 1000
    } else {
        when
    };
    let when = when.checked_add(base).ok_or_else(invalid)?;
    let key = ctx.argv[1];
    let db = view.db(ctx.db, key);
    let Some(entry) = db.lookup(key, ctx.now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let current = entry.expire_at();
    let refused = (cond.nx && current.is_some())
        || (cond.xx && current.is_none())
        || (cond.gt && current.is_none_or(|cur| when <= cur))
        || (cond.lt && current.is_some_and(|cur| when >= cur));
    if refused {
        ctx.out.int(0);
        return Ok(());
    }
    if when <= ctx.now {
        db.remove(key);
        ctx.notify(notify::GENERIC, "del", key);
    } else {
        db.set_expire(key, Some(when));
        ctx.notify(notify::GENERIC, "expire", key);
    }
    ctx.dirty += 1;
    ctx.out.int(1);
    Ok(())
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub fn expire(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    expire_generic(ctx, view, ctx.now, true)
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub fn pexpire(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    expire_generic(ctx, view, ctx.now, false)
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
pub fn expireat(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    expire_generic(ctx, view, 0, true)
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
pub fn pexpireat(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    expire_generic(ctx, view, 0, false)
}

/// Looks up the key's expiry: Err(-2) if missing, Ok(None) if persistent.
fn expiry_of(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> Result<Option<i64>, i64> {
    let key = ctx.argv[1];
    match view.db(ctx.db, key).lookup_read(key, ctx.now) {
        None => Err(-2),
        Some(e) => Ok(e.expire_at()),
    }
}

fn ttl_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, seconds: bool) -> CmdResult {
    let reply = match expiry_of(ctx, view) {
        Err(code) => code,
        Ok(None) => -1,
        Ok(Some(at)) => {
            let ms = (at - ctx.now).max(0);
            if seconds {
                (ms + 500) / 1000
            } else {
                ms
            }
        }
    };
    ctx.out.int(reply);
    Ok(())
}

/// TTL key → seconds left (rounded), -1 without TTL, -2 if missing.
pub fn ttl(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    ttl_generic(ctx, view, true)
}

/// PTTL key → milliseconds left, -1 without TTL, -2 if missing.
pub fn pttl(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    ttl_generic(ctx, view, false)
}

fn expiretime_generic(ctx: &mut Ctx<'_>, view: &mut View<'_>, seconds: bool) -> CmdResult {
    let reply = match expiry_of(ctx, view) {
        Err(code) => code,
        Ok(None) => -1,
        Ok(Some(at)) if seconds => at.wrapping_add(500) / 1000,
        Ok(Some(at)) => at,
    };
    ctx.out.int(reply);
    Ok(())
}

/// EXPIRETIME key → absolute unix seconds, -1 without TTL, -2 if missing.
pub fn expiretime(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    expiretime_generic(ctx, view, true)
}

/// PEXPIRETIME key → absolute unix milliseconds, -1 without TTL, -2 if missing.
pub fn pexpiretime(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    expiretime_generic(ctx, view, false)
}

/// PERSIST key → 1 if a TTL was removed, else 0.
pub fn persist(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let removed = matches!(expiry_of(ctx, view), Ok(Some(_)));
    if removed {
        let key = ctx.argv[1];
        view.db(ctx.db, key).set_expire(key, None);
        ctx.dirty += 1;
        ctx.notify(notify::GENERIC, "persist", key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}
