//! Spawning `redis-server` or `redoubt-server` on a free loopback port.
//!
//! A [`Server`] owns its child process and a scratch directory (the process's
//! working directory, which also holds its log). Dropping the `Server` kills
//! the process and removes the directory. Startup picks a free port by binding
//! `127.0.0.1:0`, then polls (bounded to [`READY_TIMEOUT`]) until the server
//! answers `PING`; if the process exits first (say the port was taken in the
//! meantime) it retries on another port.

use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::conn::Conn;

/// How long a server may take to answer its first `PING`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between readiness probes while a server starts.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How many ports to try before giving up on starting a server.
const START_ATTEMPTS: usize = 5;

/// Which server a [`Server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The reference: Debian's `redis-server`.
    Redis,
    /// The server under test.
    Redoubt,
}

impl Kind {
    /// A short name for reports: `redis` or `redoubt`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Redoubt => "redoubt",
        }
    }
}

/// A running server process; killed when dropped.
pub struct Server {
    kind: Kind,
    binary: PathBuf,
    port: u16,
    child: Child,
    dir: PathBuf,
    /// The `--requirepass` given on the command line, used by the readiness probe.
    password: Option<String>,
}

impl Server {
    /// Starts `redis-server` with persistence off on a free loopback port.
    ///
    /// Panics if `redis-server` is not on `PATH`: the suite never passes
    /// silently without its reference.
    pub fn redis() -> Server {
        Self::redis_with_args(&[])
    }

    /// Like [`Server::redis`], with extra command-line arguments appended.
    pub fn redis_with_args(extra: &[&str]) -> Server {
        Self::redis_with_config(None, extra)
    }

    /// Like [`Server::redis_with_args`], reading `config` (a redis.conf-style
    /// file, passed as the first argument) before the command-line options.
    pub fn redis_with_config(config: Option<&Path>, extra: &[&str]) -> Server {
        let binary = redis_binary();
        let mut args: Vec<String> = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start_with_config(Kind::Redis, binary, config, &args)
    }

    /// Starts the Redoubt binary (see [`redoubt_binary`]) on a free loopback port.
    ///
    /// Panics with instructions if the binary has not been built.
    pub fn redoubt() -> Server {
        Self::redoubt_with_args(&[])
    }

    /// Like [`Server::redoubt`], with extra command-line arguments appended.
    pub fn redoubt_with_args(extra: &[&str]) -> Server {
        Self::redoubt_with_config(None, extra)
    }

    /// Like [`Server::redoubt_with_args`], reading `config` (a redis.conf-style
    /// file, passed as the first argument) before the command-line options.
    pub fn redoubt_with_config(config: Option<&Path>, extra: &[&str]) -> Server {
        let binary = redoubt_binary_or_panic();
        // The same persistence flags as the reference server, so CONFIG GET agrees.
        let mut args: Vec<String> = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--admin-port", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start_with_config(Kind::Redoubt, binary, config, &args)
    }

    /// Starts a server of `kind` (found as [`Server::redis`] and
    /// [`Server::redoubt`] do) with `config` and `extra` options.
    pub fn of_kind(kind: Kind, config: Option<&Path>, extra: &[&str]) -> Server {
        match kind {
            Kind::Redis => Self::redis_with_config(config, extra),
            Kind::Redoubt => Self::redoubt_with_config(config, extra),
        }
    }

    /// Starts `binary --port P <args>` on a free port and waits until it
    /// answers `PING`. Panics, with the server's log, if it never does.
    pub fn start(kind: Kind, binary: PathBuf, args: &[String]) -> Server {
        Self::start_with_config(kind, binary, None, args)
    }

    /// Starts `binary [config] --port P <args>` (the config file must come
    /// first, as redis-server requires) on a free port and waits until it
    /// answers `PING`. Panics, with the server's log, if it never does.
    pub fn start_with_config(kind: Kind, binary: PathBuf, config: Option<&Path>, args: &[String]) -> Server {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = match free_port() {
                Ok(port) => port,
                Err(e) => panic!("cannot find a free loopback port: {e}"),
            };
            let dir = scratch_dir(kind);
            let log_path = dir.join("server.log");
            let log = File::create(&log_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
            let log_err = log.try_clone().unwrap_or_else(|e| panic!("cannot clone log handle: {e}"));
            let spawned = Command::new(&binary)
                .args(config)
                .arg("--port")
                .arg(port.to_string())
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn();
            let child = match spawned {
                Ok(child) => child,
                Err(e) => {
                    let _ = fs::remove_dir_all(&dir);
                    panic!("cannot run {}: {e}", binary.display());
                }
            };
            let password = args.iter().position(|a| a == "--requirepass").and_then(|i| args.get(i + 1)).cloned();
            let mut server = Server { kind, binary: binary.clone(), port, child, dir, password };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(why) => {
                    let log = server.log_tail();
                    failures.push(format!("port {port}: {why}\n--- server log ---\n{log}"));
                    // Dropping `server` kills the process and removes its directory.
                    if why.starts_with("did not answer") {
                        break;
                    }
                }
            }
        }
        panic!("{} ({}) failed to start:\n{}", kind.name(), binary.display(), failures.join("\n"));
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("exited during startup with {status}"));
            }
            let last_problem = match self.probe() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!("did not answer PING within {READY_TIMEOUT:?} (last: {last_problem})"));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// One readiness probe: connect, AUTH if the server was started with
    /// `--requirepass`, PING, and make sure the process that
    /// answers is ours (a server that reports `process_id` must report our pid).
    fn probe(&mut self) -> Result<(), String> {
        let mut conn = Conn::connect_addr((Ipv4Addr::LOCALHOST, self.port).into(), Duration::from_millis(500))
            .map_err(|e| format!("connect: {e}"))?;
        if let Some(password) = &self.password {
            let ok = conn.cmd(&["AUTH", password.as_str()]).map_err(|e| format!("AUTH: {e}"))?;
            if ok != b"+OK\r\n" {
                return Err(format!("AUTH replied {}", ok.escape_ascii()));
            }
        }
        let pong = conn.cmd(&["PING"]).map_err(|e| format!("PING: {e}"))?;
        if pong != b"+PONG\r\n" {
            return Err(format!("PING replied {}", pong.escape_ascii()));
        }
        if let Ok(info) = conn.cmd(&["INFO", "server"]) {
            let info = String::from_utf8_lossy(&info);
            if let Some(pid) =
                info.lines().find_map(|l| l.strip_prefix("process_id:")).and_then(|p| p.trim().parse::<u32>().ok())
            {
                if pid != self.child.id() {
                    return Err(format!("port {} is answered by another process (pid {pid})", self.port));
                }
            }
        }
        Ok(())
    }

    /// Which server this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The binary that was started.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password given with `--requirepass` on the command line, if any.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection to the server; panics if it cannot connect.
    pub fn conn(&self) -> Conn {
        self.try_conn().unwrap_or_else(|e| panic!("cannot connect to {} on port {}: {e}", self.kind.name(), self.port))
    }

    /// A new connection to the server.
    pub fn try_conn(&self) -> io::Result<Conn> {
        Conn::connect(self.port)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The server's scratch directory (its working directory; removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sends `SIGTERM` to the server process (with the `kill` command).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -TERM {} failed: {status}", self.pid());
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still
    /// running then (polls, so it returns as soon as the process is gone).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The last few kilobytes of the server's stdout/stderr.
    pub fn log_tail(&self) -> String {
        const TAIL: usize = 4096;
        match fs::read(self.dir.join("server.log")) {
            Ok(bytes) => {
                let from = bytes.len().saturating_sub(TAIL);
                String::from_utf8_lossy(&bytes[from..]).into_owned()
            }
            Err(e) => format!("(no log: {e})"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A port that was free a moment ago (bound on 127.0.0.1:0, then released).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn scratch_dir(kind: Kind) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("redoubt-tests-{}-{}-{n}", kind.name(), std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The `redis-server` on `PATH`; panics with the install command if missing.
pub fn redis_binary() -> PathBuf {
    find_in_path("redis-server").unwrap_or_else(|| {
        panic!(
            "redis-server not found: install the Debian package redis-server \
             (apt-get install -y redis-server redis-tools)"
        )
    })
}

/// The Redoubt binary (see [`redoubt_binary`]); panics with instructions if
/// it has not been built.
pub fn redoubt_binary_or_panic() -> PathBuf {
    redoubt_binary().unwrap_or_else(|| {
        panic!(
            "redoubt-server binary not found (looked at $REDOUBT_BIN, then \
             target/debug/redoubt-server and target/release/redoubt-server in {}): \
             run `cargo build -p redoubt-server` first",
            workspace_root().display()
        )
    })
}

/// The first file called `name` in a directory of `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where the Redoubt binary is: `$REDOUBT_BIN` if set (it must exist), else the
/// newest of `target/debug/redoubt-server` and `target/release/redoubt-server`
/// under the workspace root.
pub fn redoubt_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("REDOUBT_BIN") {
        let bin = PathBuf::from(bin);
        if bin.is_file() {
            return Some(bin);
        }
        panic!("REDOUBT_BIN={} does not exist", bin.display());
    }
    let root = workspace_root();
    ["debug", "release"]
        .iter()
        .map(|profile| root.join("target").join(profile).join("redoubt-server"))
        .filter_map(|p| {
            let modified = fs::metadata(&p).ok()?.modified().ok()?;
            Some((modified, p))
        })
        .max_by_key(|(modified, _): &(SystemTime, PathBuf)| *modified)
        .map(|(_, p)| p)
}
