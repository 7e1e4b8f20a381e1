//! RDB files: a streaming reader and a writer.
//!
//! Layout: `REDIS` + 4 ASCII digits of version, then records, each introduced by an opcode
//! or an object type byte: AUX (key, value strings), SELECTDB (length), RESIZEDB (two
//! lengths), FUNCTION2 (library code string), EXPIRETIME_MS (i64 LE) / EXPIRETIME (i32 LE
//! seconds), IDLE (length) and FREQ (one byte) prefixing a key, and keys as type byte + key
//! string + object body. EOF ends the file, followed from version 5 on by the CRC-64 (u64
//! LE) of every byte before it; a stored 0 means the writer disabled checksums.
//!
//! The reader never buffers more than the record it is decoding and reports the bytes
//! consumed for progress. Like Redis, it skips keys holding empty collections. The writer
//! keeps a running CRC of everything it writes.

use std::io::{self, BufReader, Read, Write};

use crate::consts::*;
use crate::crc64::Crc64;
use crate::decode::read_value;
use crate::encode::{write_value_for_version, WriteOptions};
use crate::encoding::{read_len, read_millis, read_string, write_len, write_millis, write_string};
use crate::error::{Error, Result};
use crate::source::{ReadSource, Source};
use crate::value::Value;

const MAGIC: &[u8; 5] = b"REDIS";
/// First version whose files end with a CRC-64.
const FIRST_CHECKSUMMED_VERSION: u16 = 5;

/// One record of an RDB file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Auxiliary field (`redis-ver`, `ctime`, `repl-id`, ...).
    Aux {
        /// Field name.
        key: Vec<u8>,
        /// Field value.
        value: Vec<u8>,
    },
    /// The following keys belong to this database.
    SelectDb(u64),
    /// Size hints for the current database.
    ResizeDb {
        /// Number of keys.
        keys: u64,
        /// Number of keys with an expire.
        expires: u64,
    },
    /// A key and its value.
    Key {
        /// Key name.
        key: Vec<u8>,
        /// Decoded value (never an empty collection).
        value: Value,
        /// Absolute expire time, Unix milliseconds.
        expire_ms: Option<i64>,
        /// LRU idle time in seconds.
        idle_secs: Option<u64>,
        /// LFU logarithmic access counter.
        freq: Option<u8>,
    },
    /// A function library's source code.
    Function(Vec<u8>),
}

/// Reads an RDB file record by record.
#[derive(Debug)]
pub struct FileReader<R: Read> {
    src: ReadSource<BufReader<R>>,
    version: u16,
    done: bool,
}

impl<R: Read> FileReader<R> {
    /// Reads and checks the header (`REDIS` + version 0001..=0011).
    pub fn new(r: R) -> Result<Self> {
        let mut src = ReadSource::new(BufReader::new(r));
        let mut header = [0u8; 9];
        src.read_exact(&mut header)?;
        if &header[..5] != MAGIC {
            return Err(Error::BadFormat("not an RDB file (wrong magic)"));
        }
        let digits = &header[5..];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(Error::BadFormat("RDB version is not 4 digits"));
        }
        let version = digits.iter().fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
        if !(MIN_RDB_VERSION..=RDB_VERSION).contains(&version) {
            return Err(Error::Version(version));
        }
        Ok(FileReader { src, version, done: false })
    }

    /// The file's RDB version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Bytes consumed so far, header included.
    pub fn bytes_read(&self) -> u64 {
        self.src.bytes_read()
    }

    /// The next record, or `None` once the EOF opcode was read and the checksum verified.
    // Not `Iterator`: `Ok(None)` (clean, verified end) must stay distinct from errors.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record>> {
        if self.done {
            return Ok(None);
        }
        let mut expire_ms = None;
        let mut idle_secs = None;
        let mut freq = None;
        loop {
            let op = self.src.read_u8()?;
            match op {
                OPCODE_EXPIRETIME_MS => expire_ms = Some(read_millis(&mut self.src)?),
                OPCODE_EXPIRETIME => {
                    let mut b = [0u8; 4];
                    self.src.read_exact(&mut b)?;
                    expire_ms = Some(i64::from(i32::from_le_bytes(b)) * 1000);
                }
                OPCODE_IDLE => idle_secs = Some(read_len(&mut self.src)?),
                OPCODE_FREQ => freq = Some(self.src.read_u8()?),
                OPCODE_SELECTDB => return Ok(Some(Record::SelectDb(read_len(&mut self.src)?))),
                OPCODE_RESIZEDB => {
                    let keys = read_len(&mut self.src)?;
                    let expires = read_len(&mut self.src)?;
                    return Ok(Some(Record::ResizeDb { keys, expires }));
                }
                OPCODE_AUX => {
                    let key = read_string(&mut self.src)?;
                    let value = read_string(&mut self.src)?;
                    return Ok(Some(Record::Aux { key, value }));
                }
                OPCODE_FUNCTION2 => return Ok(Some(Record::Function(read_string(&mut self.src)?))),
                OPCODE_FUNCTION_PRE_GA => {
                    return Err(Error::Unsupported(
                        "function data from Redis 7.0 release candidates is not supported".into(),
                    ))
                }
                OPCODE_MODULE_AUX => return Err(Error::Unsupported("module auxiliary data is not supported".into())),
                OPCODE_EOF => {
                    self.verify_checksum()?;
                    self.done = true;
                    return Ok(None);
                }
                type_byte => {
                    let key = read_string(&mut self.src)?;
                    let value = read_value(type_byte, &mut self.src)?;
                    if value.is_empty_collection() {
                        // Redis drops such keys when loading; so do we, with their metadata.
                        expire_ms = None;
                        idle_secs = None;
                        freq = None;
                        continue;
                    }
                    return Ok(Some(Record::Key { key, value, expire_ms, idle_secs, freq }));
                }
            }
        }
    }

    fn verify_checksum(&mut self) -> Result<()> {
        if self.version < FIRST_CHECKSUMMED_VERSION {
            return Ok(());
        }
        let expected = self.src.crc();
        let mut b = [0u8; 8];
        self.src.read_exact(&mut b)?;
        let stored = u64::from_le_bytes(b);
        if stored != 0 && stored != expected {
            return Err(Error::Checksum);
        }
        Ok(())
    }
}

/// Writes an RDB file, keeping a running CRC of everything written.
#[derive(Debug)]
pub struct FileWriter<W: Write> {
    w: W,
    crc: Crc64,
    version: u16,
    written: u64,
    buf: Vec<u8>,
}

impl<W: Write> FileWriter<W> {
    /// Writes the header for `version` (1..=11). Values written with
    /// [`key_value`](Self::key_value) use encodings readable by that version, but never
    /// older than RDB 10's.
    pub fn new(w: W, version: u16) -> io::Result<Self> {
        if !(MIN_RDB_VERSION..=RDB_VERSION).contains(&version) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "RDB version out of range"));
        }
        let mut fw = FileWriter { w, crc: Crc64::new(), version, written: 0, buf: Vec::new() };
        fw.buf.extend_from_slice(MAGIC);
        fw.buf.extend_from_slice(format!("{version:04}").as_bytes());
        fw.flush_buf()?;
        Ok(fw)
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Writes an auxiliary field.
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.buf.push(OPCODE_AUX);
        write_string(&mut self.buf, key, false);
        write_string(&mut self.buf, value, false);
        self.flush_buf()
    }

    /// Starts database `db`.
    pub fn select_db(&mut self, db: u64) -> io::Result<()> {
        self.buf.push(OPCODE_SELECTDB);
        write_len(&mut self.buf, db);
        self.flush_buf()
    }

    /// Writes size hints for the current database.
    pub fn resize_db(&mut self, keys: u64, expires: u64) -> io::Result<()> {
        self.buf.push(OPCODE_RESIZEDB);
        write_len(&mut self.buf, keys);
        write_len(&mut self.buf, expires);
        self.flush_buf()
    }

    /// Writes a key whose value the caller already encoded as `type_byte` + `body`.
    pub fn key_raw(
        &mut self,
        key: &[u8],
        type_byte: u8,
        body: &[u8],
        expire_ms: Option<i64>,
        idle_secs: Option<u64>,
        freq: Option<u8>,
    ) -> io::Result<()> {
        self.key_prefix(key, type_byte, expire_ms, idle_secs, freq);
        self.flush_buf()?;
        self.write_through(body)
    }

    /// Encodes and writes a key and its value.
    pub fn key_value(
        &mut self,
        key: &[u8],
        value: &Value,
        expire_ms: Option<i64>,
        opts: &WriteOptions,
    ) -> io::Result<()> {
        let mut body = Vec::new();
        let version = opts.max_version.min(self.version);
        let type_byte = write_value_for_version(&mut body, value, opts, version);
        self.key_raw(key, type_byte, &body, expire_ms, None, None)
    }

    fn key_prefix(&mut self, key: &[u8], type_byte: u8, expire_ms: Option<i64>, idle: Option<u64>, freq: Option<u8>) {
        if let Some(ms) = expire_ms {
            self.buf.push(OPCODE_EXPIRETIME_MS);
            write_millis(&mut self.buf, ms);
        }
        if let Some(idle) = idle {
            self.buf.push(OPCODE_IDLE);
            write_len(&mut self.buf, idle);
        }
        if let Some(freq) = freq {
            self.buf.push(OPCODE_FREQ);
            self.buf.push(freq);
        }
        self.buf.push(type_byte);
        write_string(&mut self.buf, key, false);
    }

    /// Writes a function library's source code.
    pub fn function(&mut self, code: &[u8]) -> io::Result<()> {
        self.buf.push(OPCODE_FUNCTION2);
        write_string(&mut self.buf, code, false);
        self.flush_buf()
    }

    /// Writes EOF and (from version 5 on) the CRC-64, flushes, and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.buf.push(OPCODE_EOF);
        self.flush_buf()?;
        if self.version >= FIRST_CHECKSUMMED_VERSION {
            let crc = self.crc.finish().to_le_bytes();
            self.write_through(&crc)?;
        }
        self.w.flush()?;
        Ok(self.w)
    }

    /// Writes out the staging buffer. It is moved out while writing (so `write_through`
    /// can borrow `self`) and put back empty to reuse its allocation.
    fn flush_buf(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let r = self.write_through(&buf);
        self.buf = buf;
        self.buf.clear();
        r
    }

    fn write_through(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)?;
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }
}
