//! DUMP and RESTORE: a key's value as a Redis DUMP payload (the RDB object encoding, the RDB
//! version and a CRC-64), so values move between Redis and Redoubt in both directions.
//!
//! Payloads carry RDB version 11 (Redis 7.2) by default; `rdb-version 10` makes DUMP write
//! only what Redis 7.0 reads. RESTORE accepts versions up to 11. Errors, and the order in
//! which arguments are checked, are Redis's.

use rdb::Value;
use store::View;

use crate::args::{self, is};
use crate::error::{CmdError, CmdResult, SYNTAX};
use crate::{notify, serial, Ctx};

const BUSYKEY: CmdError = CmdError::fixed("BUSYKEY Target key name already exists.");
const BAD_TTL: CmdError = CmdError::fixed("ERR Invalid TTL value, must be >= 0");
const BAD_IDLE: CmdError = CmdError::fixed("ERR Invalid IDLETIME value, must be >= 0");
const BAD_FREQ: CmdError = CmdError::fixed("ERR Invalid FREQ value, must be >= 0 and <= 255");
const BAD_PAYLOAD: CmdError = CmdError::fixed("ERR DUMP payload version or checksum are wrong");
const BAD_DATA: CmdError = CmdError::fixed("ERR Bad data format");

/// The newest RDB version RESTORE and loading accept (Redis 7.2's).
pub const MAX_RDB_VERSION: u16 = 11;

/// DUMP key → the serialized value, or nil.
pub fn dump(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let key = ctx.argv[1];
    let Some(e) = view.db(ctx.db, key).lookup_read(key, ctx.now) else {
        ctx.out.null();
        return Ok(());
    };
    let value = serial::entry_value(e);
    let payload = rdb::dump_payload(&value, &serial::write_options(ctx.settings, ctx.settings.rdb_version));
    ctx.out.bulk(&payload);
    Ok(())
}

/// RESTORE's options.
#[derive(Debug, Default, PartialEq)]
struct RestoreOpts {
    replace: bool,
    absttl: bool,
    idle: Option<u64>,
    freq: Option<u8>,
}

fn parse_restore_opts(argv: &[&[u8]]) -> CmdResult<RestoreOpts> {
    let mut o = RestoreOpts::default();
    let mut i = 0;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(argv[i], "replace") {
            o.replace = true;
        } else if is(argv[i], "absttl") {
            o.absttl = true;
        } else if is(argv[i], "idletime") && more && o.freq.is_none() {
            let idle = args::int(argv[i + 1])?;
            o.idle = Some(u64::try_from(idle).map_err(|_| BAD_IDLE)?);
            i += 1;
        } else if is(argv[i], "freq") && more && o.idle.is_none() {
            let freq = args::int(argv[i + 1])?;
            o.freq = Some(u8::try_from(freq).map_err(|_| BAD_FREQ)?);
            i += 1;
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    Ok(o)
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
pub fn restore(ctx: &mut Ctx<'_>, view: &mut View<'_>) -> CmdResult {
    let (key, payload) = (ctx.argv[1], ctx.argv[3]);
    let opts = parse_restore_opts(&ctx.argv[4..])?;
    let now = ctx.now;
    if !opts.replace && view.db(ctx.db, key).contains(key, now) {
        return Err(BUSYKEY);
    }
    let ttl = args::int(ctx.argv[2])?;
    if ttl < 0 {
        return Err(BAD_TTL);
    }
    let value = match rdb::parse_dump_payload(payload, MAX_RDB_VERSION) {
        Ok(v) => v,
        // The footer (version and CRC) is the last 10 bytes: a shorter payload has none.
        Err(_) if payload.len() < 10 => return Err(BAD_PAYLOAD),
        Err(rdb::Error::Checksum | rdb::Error::Version(_)) => return Err(BAD_PAYLOAD),
        Err(_) => return Err(BAD_DATA),
    };
    let is_collection = !matches!(value, Value::String(_));
    let expire_at = match ttl {
        0 => None,
        t if opts.absttl => Some(t),
        t => Some(t.saturating_add(now)),
    };
    let clock = store::access::restored(ctx.settings.access, now, opts.idle, opts.freq);
    let entry = serial::value_entry(key, value, expire_at, clock, ctx.settings).map_err(|_| BAD_DATA)?;
    let deleted = opts.replace && view.db(ctx.db, key).remove(key).is_some();
    if expire_at.is_some_and(|at| at <= now) {
        if deleted {
            ctx.notify(notify::GENERIC, "del", key);
            ctx.dirty += 1;
        }
        ctx.out.ok();
        return Ok(());
    }
    view.db(ctx.db, key).insert(entry);
    if is_collection {
        ctx.signal_ready(key);
    }
    ctx.notify(notify::GENERIC, "restore", key);
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_options_parse_as_redis_does() {
        let p = |a: &[&str]| parse_restore_opts(&a.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
        assert_eq!(
            p(&["REPLACE", "absttl"]).unwrap(),
            RestoreOpts { replace: true, absttl: true, ..Default::default() }
        );
        assert_eq!(p(&["idletime", "5"]).unwrap().idle, Some(5));
        assert_eq!(p(&["freq", "255"]).unwrap().freq, Some(255));
        assert_eq!(p(&["freq", "256"]).unwrap_err(), BAD_FREQ);
        assert_eq!(p(&["idletime", "-1"]).unwrap_err(), BAD_IDLE);
        assert_eq!(p(&["idletime", "x"]).unwrap_err().text(), "ERR value is not an integer or out of range");
        // IDLETIME and FREQ exclude each other, and a missing value is a syntax error.
        assert_eq!(p(&["idletime", "1", "freq", "1"]).unwrap_err(), SYNTAX);
        assert_eq!(p(&["freq"]).unwrap_err(), SYNTAX);
        assert_eq!(p(&["bogus"]).unwrap_err(), SYNTAX);
    }
}
