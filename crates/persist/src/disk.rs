//! The storage seam: every file persistence reads or writes goes through [`Disk`], so the same
//! code runs over the real filesystem ([`OsDisk`]) and, in tests, over [`FaultyDisk`], which
//! fails, short-writes or refuses to sync at a chosen operation, or [`DelayedDisk`], whose
//! fsyncs take as long as asked (the server runs on it, with no delay unless
//! `fsync-delay-ms` says so).
//!
//! Contract: a file is durable only after [`DiskFile::sync`] returned Ok, and a rename is
//! durable only after [`Disk::sync_dir`] of its directory returned Ok. Writers never rename a
//! file into place before syncing it, so a crash leaves either the old file or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file being written.
pub trait DiskFile: Write + Send {
    /// Makes everything written so far durable (fsync).
    fn sync(&mut self) -> io::Result<()>;
}

/// The filesystem operations persistence uses.
pub trait Disk: Send + Sync {
    /// Creates (or truncates) `path` for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Opens `path` for appending (creating it if missing).
    fn append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Cuts `path` to its first `len` bytes and makes that durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Opens `path` for reading.
    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (renames, creations) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Debug, Default)]
pub struct OsDisk;

impl DiskFile for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl Disk for OsDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(OpenOptions::new().write(true).create(true).truncate(true).open(path)?))
    }

    fn append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(OpenOptions::new().append(true).create(true).open(path)?))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// What [`FaultyDisk`] does at its chosen operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The write fails with EIO (nothing written).
    FailWrite,
    /// The write stores only half its bytes, then the next write fails with ENOSPC.
    ShortWrite,
    /// The fsync fails with EIO.
    FailSync,
    /// The rename fails with EIO.
    FailRename,
}

/// A disk over the real filesystem that injects one [`Fault`] at the `at`-th operation of its
/// kind (counting from 0), for tests of every error path.
#[derive(Debug)]
pub struct FaultyDisk {
    fault: Fault,
    at: u64,
    counts: std::sync::Arc<[AtomicU64; 4]>,
}

impl FaultyDisk {
    /// A disk that injects `fault` at operation number `at` of that kind.
    pub fn new(fault: Fault, at: u64) -> FaultyDisk {
        FaultyDisk { fault, at, counts: std::sync::Arc::new(Default::default()) }
    }

    /// Operations of the fault's kind seen so far (to size a sweep over every position).
    pub fn seen(&self) -> u64 {
        self.counts[self.fault as usize].load(Ordering::Relaxed)
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

/// Counts operations of `kind` and says whether this one is the faulty one.
fn strikes(counts: &[AtomicU64; 4], kind: Fault, fault: Fault, at: u64) -> bool {
    let n = counts[kind as usize].fetch_add(1, Ordering::Relaxed);
    kind == fault && n == at
}

struct FaultyFile {
    inner: File,
    fault: Fault,
    at: u64,
    counts: std::sync::Arc<[AtomicU64; 4]>,
    /// After a short write, the disk is "full".
    full: bool,
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.full {
            return Err(io::Error::from_raw_os_error(28));
        }
        let counts = &self.counts;
        if strikes(counts, Fault::FailWrite, self.fault, self.at) {
            return Err(eio());
        }
        if self.fault == Fault::ShortWrite
            && counts[Fault::ShortWrite as usize].fetch_add(1, Ordering::Relaxed) == self.at
        {
            self.full = true;
            let half = buf.len() / 2;
            return self.inner.write(&buf[..half.max(1).min(buf.len())]);
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl DiskFile for FaultyFile {
    fn sync(&mut self) -> io::Result<()> {
        if strikes(&self.counts, Fault::FailSync, self.fault, self.at) {
            return Err(eio());
        }
        self.inner.sync_data()
    }
}

impl Disk for FaultyDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let inner = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        Ok(Box::new(FaultyFile { inner, fault: self.fault, at: self.at, counts: self.counts.clone(), full: false }))
    }

    fn append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let inner = OpenOptions::new().append(true).create(true).open(path)?;
        Ok(Box::new(FaultyFile { inner, fault: self.fault, at: self.at, counts: self.counts.clone(), full: false }))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        OsDisk.truncate(path, len)
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        OsDisk.open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if strikes(&self.counts, Fault::FailRename, self.fault, self.at) {
            return Err(eio());
        }
        OsDisk.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        OsDisk.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDisk.sync_dir(dir)
    }
}

/// The real filesystem with every fsync (of a file or a directory) taking an extra, adjustable
/// delay first: a slow disk on demand, for testing that a slow disk never stalls serving
/// (the server's `fsync-delay-ms`; 0, the default, adds nothing but one atomic load).
#[derive(Debug, Default)]
pub struct DelayedDisk {
    delay_ms: std::sync::Arc<AtomicU64>,
}

impl DelayedDisk {
    pub fn new(delay_ms: u64) -> DelayedDisk {
        DelayedDisk { delay_ms: std::sync::Arc::new(AtomicU64::new(delay_ms)) }
    }

    /// Changes the delay of every fsync from now on (files already open included).
    pub fn set_delay_ms(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    fn wrap(&self, inner: Box<dyn DiskFile>) -> Box<dyn DiskFile> {
        Box::new(DelayedFile { inner, delay_ms: self.delay_ms.clone() })
    }
}

fn pause(delay_ms: &AtomicU64) {
    let ms = delay_ms.load(Ordering::Relaxed);
    if ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

struct DelayedFile {
    inner: Box<dyn DiskFile>,
    delay_ms: std::sync::Arc<AtomicU64>,
}

impl Write for DelayedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl DiskFile for DelayedFile {
    fn sync(&mut self) -> io::Result<()> {
        pause(&self.delay_ms);
        self.inner.sync()
    }
}

impl Disk for DelayedDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(self.wrap(OsDisk.create(path)?))
    }

    fn append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(self.wrap(OsDisk.append(path)?))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        OsDisk.truncate(path, len)
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        OsDisk.open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsDisk.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        OsDisk.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        pause(&self.delay_ms);
        OsDisk.sync_dir(dir)
    }
}
