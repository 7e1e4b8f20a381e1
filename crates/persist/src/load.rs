//! Loading an RDB file (our snapshots, or a `dump.rdb` written by Redis 6.2 to 7.2) into an
//! empty keyspace at startup.
//!
//! Every record is checked as it is read (lengths against the bytes present, the CRC-64 at
//! the end, values through the same builders RESTORE uses), so a damaged file stops the load
//! with a message that says where and why, instead of loading part of it silently. Keys whose
//! TTL has already passed are skipped, as a Redis primary does.

use std::io::{self, BufReader, Read};
use std::path::Path;

use store::Keyspace;

use crate::disk::Disk;

/// What a load found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub keys: u64,
    /// Keys skipped because their TTL had passed.
    pub expired: u64,
    /// FUNCTION libraries' code, for the server to install.
    pub functions: Vec<Vec<u8>>,
    /// Auxiliary fields (`redis-ver`, `ctime`, ...).
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub bytes: u64,
}

/// Why a load failed.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(io::Error),
    /// The file is damaged or not an RDB file: the byte offset reached and the reason.
    Corrupt { offset: u64, reason: String },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "cannot read the file: {e}"),
            LoadError::Corrupt { offset, reason } => write!(f, "the file is damaged near byte {offset}: {reason}"),
        }
    }
}

/// An RDB file being read: its records, with errors that say where the damage is.
struct Records {
    reader: rdb::FileReader<BufReader<Box<dyn Read + Send>>>,
}

impl Records {
    /// Opens `path` and reads its header; `Ok(None)` when there is no such file.
    fn open(disk: &dyn Disk, path: &Path) -> Result<Option<Records>, LoadError> {
        let file = match disk.open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LoadError::Io(e)),
        };
        let reader = rdb::FileReader::new(BufReader::with_capacity(1 << 16, file))
            .map_err(|e| LoadError::Corrupt { offset: 0, reason: e.to_string() })?;
        Ok(Some(Records { reader }))
    }

    /// The next record; `Ok(None)` after the end, with the checksum verified.
    fn next(&mut self) -> Result<Option<rdb::Record>, LoadError> {
        self.reader.next().map_err(|e| self.corrupt(e.to_string()))
    }

    /// Bytes read so far.
    fn offset(&self) -> u64 {
        self.reader.bytes_read()
    }

    /// A damage report at the current position.
    fn corrupt(&self, reason: String) -> LoadError {
        LoadError::Corrupt { offset: self.offset(), reason }
    }
}

/// A key's name for messages.
fn shown(key: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(key))
}

/// Loads `path` into `ks`, which should be empty. Returns `Ok(None)` when there is no file.
/// `progress(bytes read, keys loaded)` is called after every key.
pub fn load(
    disk: &dyn Disk,
    path: &Path,
    ks: &Keyspace,
    settings: &commands::Settings,
    now: i64,
    progress: impl FnMut(u64, u64),
) -> Result<Option<Loaded>, LoadError> {
    load_with(disk, path, ks, settings, now, false, progress)
}

/// [`load`], keeping keys whose TTL has passed when `keep_expired` (the base of an
/// append-only log: commands after it may still touch them, as they did before they
/// expired; they expire normally once loading is over).
pub fn load_with(
    disk: &dyn Disk,
    path: &Path,
    ks: &Keyspace,
    settings: &commands::Settings,
    now: i64,
    keep_expired: bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<Option<Loaded>, LoadError> {
    let Some(mut records) = Records::open(disk, path)? else { return Ok(None) };
    let mut out = Loaded::default();
    let mut db = 0usize;
    while let Some(record) = records.next()? {
        match record {
            rdb::Record::Aux { key, value } => out.aux.push((key, value)),
            rdb::Record::SelectDb(n) => {
                db = usize::try_from(n).ok().filter(|&n| n < ks.databases()).ok_or_else(|| {
                    records.corrupt(format!(
                        "the file has database {n}, but this server has {} (raise `databases`)",
                        ks.databases()
                    ))
                })?;
            }
            rdb::Record::ResizeDb { .. } => {}
            rdb::Record::Function(code) => out.functions.push(code),
            rdb::Record::Key { key, value, expire_ms, idle_secs, freq } => {
                if !keep_expired && expire_ms.is_some_and(|at| at <= now) {
                    out.expired += 1;
                    continue;
                }
                let clock = store::access::restored(settings.access, now, idle_secs, freq);
                let entry = commands::serial::value_entry(&key, value, expire_ms, clock, settings)
                    .map_err(|why| records.corrupt(format!("key {}: {why}", shown(&key))))?;
                let mut view = ks.lock_key(&key);
                if view.db(db, &key).insert(entry).is_some() {
                    return Err(records.corrupt(format!("key {} appears twice in database {db}", shown(&key))));
                }
                out.keys += 1;
                progress(records.offset(), out.keys);
            }
        }
    }
    out.bytes = records.offset();
    Ok(Some(out))
}

/// What [`check`] found in a file: enough for an operator to judge it.
#[derive(Debug, Default)]
pub struct Report {
    /// The RDB version in the header (0 if the header itself is bad).
    pub version: u16,
    /// Keys per database.
    pub keys: std::collections::BTreeMap<u64, u64>,
    /// Keys per type (`string`, `list`, ...).
    pub types: std::collections::BTreeMap<&'static str, u64>,
    /// Keys whose TTL had passed at `now`.
    pub expired: u64,
    pub functions: u64,
    pub aux: Vec<(String, String)>,
    /// Bytes read (the whole file when it is sound).
    pub bytes: u64,
}

fn type_name(v: &rdb::Value) -> &'static str {
    match v {
        rdb::Value::String(_) => "string",
        rdb::Value::List(_) => "list",
        rdb::Value::Set(_) => "set",
        rdb::Value::Hash(_) => "hash",
        rdb::Value::ZSet(_) => "zset",
        rdb::Value::Stream(_) => "stream",
    }
}

/// Reads a whole RDB file without loading it (`redoubt-server check-rdb`): every record is
/// decoded and every value built as loading would build it, the checksum verified, and keys
/// that appear twice in a database found (by a 64-bit hash of each, so a file of any size is
/// checked in a few bytes per key). Returns what was read, and the error that stopped the
/// reading if the file is damaged.
pub fn check(disk: &dyn Disk, path: &Path, now: i64) -> (Report, Option<LoadError>) {
    let mut report = Report::default();
    let mut records = match Records::open(disk, path) {
        Ok(Some(r)) => r,
        Ok(None) => return (report, Some(LoadError::Io(io::ErrorKind::NotFound.into()))),
        Err(e) => return (report, Some(e)),
    };
    report.version = records.reader.version();
    let settings = commands::Settings::default();
    let hasher = std::collections::hash_map::RandomState::new();
    let mut seen = std::collections::HashSet::new();
    let mut db = 0u64;
    loop {
        let record = match records.next() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return (report, Some(e)),
        };
        match record {
            rdb::Record::Aux { key, value } => report
                .aux
                .push((String::from_utf8_lossy(&key).into_owned(), String::from_utf8_lossy(&value).into_owned())),
            rdb::Record::SelectDb(n) => db = n,
            rdb::Record::ResizeDb { .. } => {}
            rdb::Record::Function(_) => report.functions += 1,
            rdb::Record::Key { key, value, expire_ms, .. } => {
                let kind = type_name(&value);
                if let Err(why) = commands::serial::value_entry(&key, value, None, 0, &settings) {
                    let error = records.corrupt(format!("key {}: {why}", shown(&key)));
                    return (report, Some(error));
                }
                if !seen.insert(std::hash::BuildHasher::hash_one(&hasher, (db, &key))) {
                    let error = records.corrupt(format!("key {} appears twice in database {db}", shown(&key)));
                    return (report, Some(error));
                }
                *report.keys.entry(db).or_default() += 1;
                *report.types.entry(kind).or_default() += 1;
                report.expired += u64::from(expire_ms.is_some_and(|at| at <= now));
            }
        }
    }
    report.bytes = records.offset();
    (report, None)
}
