//! Helpers shared by the end-to-end tests in `tests/tests/`: scratch
//! directories, `INFO` parsing, polling with a deadline, running a process
//! with a bounded wait, and raising the open-files limit.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::value::{must_decode, Value};

/// A directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory whose name contains `label`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("redoubt-e2e-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let file = self.path.join(name);
        fs::write(&file, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        file
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A raw reply as text (lossily), to compare with the RESP a test expects.
pub fn text(reply: Vec<u8>) -> String {
    String::from_utf8_lossy(&reply).into_owned()
}

/// Sends one command and returns its raw reply as text.
pub fn cmd(conn: &mut Conn, args: &[&str]) -> String {
    text(conn.cmd(args).unwrap_or_else(|e| panic!("{args:?}: {e}")))
}

/// Sends `cmds` pipelined and returns each reply as text.
pub fn pipeline(conn: &mut Conn, cmds: &[Vec<String>]) -> Vec<String> {
    for a in cmds {
        conn.send(a).unwrap_or_else(|e| panic!("send {a:?}: {e}"));
    }
    cmds.iter()
        .map(|a| String::from_utf8_lossy(&conn.read_reply_raw().unwrap_or_else(|e| panic!("{a:?}: {e}"))).into_owned())
        .collect()
}

/// Sends `INFO <section>` and returns its `field:value` lines as a map.
pub fn info(conn: &mut Conn, section: &str) -> BTreeMap<String, String> {
    let reply = conn.cmd(&["INFO", section]).unwrap_or_else(|e| panic!("INFO {section}: {e}"));
    let text = match must_decode(&reply) {
        Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("INFO {section} replied {other:?}"),
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// One numeric `INFO` field; panics if it is missing or not a number.
pub fn info_u64(conn: &mut Conn, section: &str, field: &str) -> u64 {
    let map = info(conn, section);
    let raw = map.get(field).unwrap_or_else(|| panic!("INFO {section} has no field {field}"));
    raw.parse().unwrap_or_else(|e| panic!("INFO {section} {field}:{raw} is not a number: {e}"))
}

/// Calls `check` every few milliseconds until it returns `Some`, or panics
/// with `what` once `timeout` has passed.
pub fn poll_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a process run by [`run_bounded`] did.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status, or `None` if it was killed for running past the limit.
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Finished {
    /// stdout and stderr together, for searching a message in either.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` with stdin closed, kills it if it is still running after
/// `timeout`, and returns its status and output.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Finished {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    Finished {
        status,
        stdout: text(out_reader.join().unwrap_or_default()),
        stderr: text(err_reader.join().unwrap_or_default()),
    }
}

/// The resident set size of process `pid` in bytes, from `/proc/<pid>/status`
/// (exact at the moment of reading, unlike `INFO`'s `used_memory_rss`, which a
/// server may refresh only on its periodic timer).
pub fn process_rss(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no VmRSS line in {path}"))
}

#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}

/// `RLIMIT_NOFILE` on Linux.
const RLIMIT_NOFILE: i32 = 7;

extern "C" {
    fn getrlimit(resource: i32, rlim: *mut RLimit) -> i32;
    fn setrlimit(resource: i32, rlim: *const RLimit) -> i32;
}

/// Raises this process's soft open-files limit towards `wanted` (capped by
/// the hard limit) and returns the soft limit now in force. Servers started
/// afterwards inherit it. Tests that open thousands of sockets call this so
/// they also pass where the default soft limit is 1024.
pub fn raise_fd_limit(wanted: u64) -> io::Result<u64> {
    let mut lim = RLimit { cur: 0, max: 0 };
    // SAFETY: `lim` is a valid, writable `struct rlimit` (two 64-bit fields
    // on 64-bit Linux) for the duration of the call.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.cur >= wanted {
        return Ok(lim.cur);
    }
    let new = RLimit { cur: wanted.min(lim.max), max: lim.max };
    // SAFETY: `new` is a valid `struct rlimit` that outlives the call.
    if unsafe { setrlimit(RLIMIT_NOFILE, &new) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(new.cur)
}

/// A tmpfs mounted for one test, unmounted (lazily) when dropped.
pub struct Tmpfs {
    pub path: std::path::PathBuf,
}

impl Tmpfs {
    /// Mounts a `size` tmpfs at `path`. Needs root; without it the test fails, naming the
    /// requirement, unless `REDOUBT_SKIP_ROOT_TESTS` is set.
    pub fn mount(path: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs { path: path.to_path_buf() }),
            other => {
                let why = format!("cannot mount a tmpfs at {} ({other:?}): this test needs root", path.display());
                if std::env::var_os("REDOUBT_SKIP_ROOT_TESTS").is_some() {
                    eprintln!("skipped (REDOUBT_SKIP_ROOT_TESTS): {why}");
                    return None;
                }
                panic!("{why}; run as root, or set REDOUBT_SKIP_ROOT_TESTS=1 to skip it");
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_limit_never_goes_down() {
        let before = raise_fd_limit(0).unwrap();
        assert_eq!(raise_fd_limit(before).unwrap(), before);
    }

    #[test]
    fn bounded_run_collects_output() {
        let done =
            run_bounded(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(10));
        assert_eq!(done.status.and_then(|s| s.code()), Some(3));
        assert_eq!(done.stdout, "out\n");
        assert_eq!(done.stderr, "err\n");
    }
}
