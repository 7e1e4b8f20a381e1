//! The differential runner: plays every case file against redis-server and a
//! peer (Redoubt, or a second redis-server) and reports every difference.
//!
//! One pair of servers serves the whole run. Each file runs once per protocol
//! pass (RESP2 then RESP3 unless the file says `@only ...`); every pass opens
//! fresh connections and sends `HELLO <proto>`, `SELECT 0` and `FLUSHALL` to
//! both servers first. Mismatches are collected, not fatal, so one run shows
//! all of them; the run panics at the end if there was any.
//!
//! Environment:
//! - `DIFF_FILTER=substring`: only run case files whose name contains it;
//! - `DIFF_PEER=redis`: compare redis-server against a second redis-server
//!   (validates the case files themselves); default `redoubt`;
//! - `DIFF_VERBOSE=1`: print every command with both replies to stderr.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::casefile::{self, Action, CaseFile, Check, Proto, Step};
use crate::conn::Conn;
use crate::resp;
use crate::server::Server;

/// The server compared against redis-server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The Redoubt binary (the normal case).
    Redoubt,
    /// A second redis-server, to check that case files are deterministic.
    Redis,
}

impl Peer {
    /// Reads `DIFF_PEER` (`redoubt`, the default, or `redis`).
    pub fn from_env() -> Peer {
        match std::env::var("DIFF_PEER").as_deref() {
            Err(_) | Ok("") | Ok("redoubt") => Peer::Redoubt,
            Ok("redis") => Peer::Redis,
            Ok(other) => panic!("DIFF_PEER={other}: expected `redoubt` or `redis`"),
        }
    }

    fn start(self) -> Server {
        match self {
            Peer::Redoubt => Server::redoubt(),
            Peer::Redis => Server::redis(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Peer::Redoubt => "redoubt",
            Peer::Redis => "redis-2",
        }
    }
}

/// The directory holding the case files (`tests/diff`).
pub fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("diff")
}

/// The case files (`*.txt` in [`case_dir`]) whose names contain `filter`, sorted.
pub fn case_files(filter: Option<&str>) -> Vec<PathBuf> {
    let dir = case_dir();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read case directory {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .filter(|p| filter.is_none_or(|f| p.file_name().is_some_and(|n| n.to_string_lossy().contains(f))))
        .collect();
    files.sort();
    files
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Summary {
    /// Case files run.
    pub files: usize,
    /// Commands whose replies were checked (over all passes).
    pub checked: usize,
    /// One formatted entry per mismatch or failure.
    pub problems: Vec<String>,
}

/// Runs the case files selected by `DIFF_FILTER` against redis-server and
/// `peer`, and panics with a full report if anything differs.
pub fn run_case_files(peer: Peer) {
    let filter = std::env::var("DIFF_FILTER").ok().filter(|f| !f.is_empty());
    let verbose = std::env::var("DIFF_VERBOSE").is_ok_and(|v| !v.is_empty() && v != "0");
    let summary = run(peer, filter.as_deref(), verbose);
    let headline = format!(
        "{} case files, {} replies checked, {} problems ({} vs redis)",
        summary.files,
        summary.checked,
        summary.problems.len(),
        peer.label()
    );
    eprintln!("diff: {headline}");
    if !summary.problems.is_empty() {
        panic!("differential test failed: {headline}\n\n{}", summary.problems.join("\n"));
    }
}

/// Runs the selected case files and returns what happened; panics only if
/// no case file matches, a case file does not parse, or a server cannot start.
pub fn run(peer: Peer, filter: Option<&str>, verbose: bool) -> Summary {
    let paths = case_files(filter);
    if paths.is_empty() {
        panic!("no case files in {} match DIFF_FILTER={:?}", case_dir().display(), filter.unwrap_or(""));
    }
    let mut files = Vec::new();
    let mut parse_errors = Vec::new();
    for path in &paths {
        match casefile::load(path) {
            Ok(file) => files.push(file),
            Err(e) => parse_errors.push(e),
        }
    }
    if !parse_errors.is_empty() {
        panic!("case files do not parse:\n{}", parse_errors.join("\n"));
    }

    let reference = Server::redis();
    let subject = peer.start();
    let mut runner = Runner {
        sides: [
            Side { label: "redis", server: reference, conn: None },
            Side { label: peer.label(), server: subject, conn: None },
        ],
        verbose,
        summary: Summary::default(),
    };
    for (i, file) in files.iter().enumerate() {
        let before = runner.summary.problems.len();
        let mut fatal = None;
        for proto in file.passes() {
            if let Err(Abort::Fatal(why)) = runner.run_pass(file, proto) {
                fatal = Some(why);
                break;
            }
        }
        runner.summary.files += 1;
        eprintln!(
            "diff: {:<28} {:>4} steps x {} passes, {} problems",
            file.name,
            file.checked_steps(),
            file.passes().len(),
            runner.summary.problems.len() - before
        );
        if let Some(why) = fatal {
            let skipped: Vec<&str> = files[i + 1..].iter().map(|f| f.name.as_str()).collect();
            runner.summary.problems.push(format!(
                "run stopped: {why}\n  files not run: {}",
                if skipped.is_empty() { "none".to_string() } else { skipped.join(", ") }
            ));
            break;
        }
    }
    runner.summary
}

struct Side {
    label: &'static str,
    server: Server,
    conn: Option<Conn>,
}

struct Runner {
    sides: [Side; 2],
    verbose: bool,
    summary: Summary,
}

/// Why a pass stopped early.
enum Abort {
    /// This pass cannot go on (I/O error, failed setup); the problem is recorded.
    Pass,
    /// A server is gone: the whole run must stop.
    Fatal(String),
}

/// Escaped, length-limited rendering of a reply for reports.
pub fn show(bytes: &[u8]) -> String {
    const LIMIT: usize = 1500;
    if bytes.len() <= LIMIT {
        bytes.escape_ascii().to_string()
    } else {
        format!("{}... ({} bytes in all)", bytes[..LIMIT].escape_ascii(), bytes.len())
    }
}

/// Checks two replies; `None` if they agree, else why not.
fn verdict(check: &Check, expected: &[u8], actual: &[u8]) -> Option<String> {
    match check {
        Check::Exact => (expected != actual).then(String::new),
        Check::Sorted => (resp::sorted_reply(expected) != resp::sorted_reply(actual))
            .then(|| "compared with top-level elements sorted".to_string()),
        Check::SkipReply(_) | Check::Differs(_) => None,
        Check::TypeOnly => {
            (resp::reply_type(expected) != resp::reply_type(actual)).then(|| "compared by reply type only".to_string())
        }
        Check::IntBetween(lo, hi) => {
            let ok = |r: &[u8]| resp::integer(r).is_some_and(|n| (*lo..=*hi).contains(&n));
            match (ok(expected), ok(actual)) {
                (true, true) => None,
                (false, _) => Some(format!("redis's own reply is not an integer in {lo}..={hi}: the case is wrong")),
                (true, false) => Some(format!("expected an integer in {lo}..={hi}")),
            }
        }
    }
}

impl Runner {
    fn where_(&self, file: &CaseFile, step: &Step, proto: Proto) -> String {
        format!("{}:{} [{proto} pass] {}", file.name, step.line, step.text)
    }

    /// A server-side failure: fatal if a process has exited, else pass-level.
    fn failure(&mut self, context: String, side: usize, error: String) -> Abort {
        let mut report = format!("{context}\n    {} failed: {error}", self.sides[side].label);
        let mut exited = Vec::new();
        for s in &mut self.sides {
            if !s.server.is_running() {
                let _ = write!(report, "\n    {} has exited; its log ends with:\n{}", s.label, s.server.log_tail());
                exited.push(s.label);
            }
        }
        let fatal = (!exited.is_empty()).then(|| format!("{} exited", exited.join(" and ")));
        report.push_str("\n    (rest of this pass skipped)");
        self.summary.problems.push(report);
        for s in &mut self.sides {
            s.conn = None;
        }
        match fatal {
            Some(why) => Abort::Fatal(why),
            None => Abort::Pass,
        }
    }

    /// Sends the same bytes to both servers, then reads one reply from each.
    fn exchange(&mut self, bytes: &[u8], context: &dyn Fn() -> String) -> Result<[Vec<u8>; 2], Abort> {
        for i in 0..2 {
            let sent = match self.sides[i].conn.as_mut() {
                Some(conn) => conn.send_raw(bytes).map_err(|e| e.to_string()),
                None => Err("not connected".to_string()),
            };
            if let Err(e) = sent {
                return Err(self.failure(context(), i, format!("sending: {e}")));
            }
        }
        let mut replies: [Vec<u8>; 2] = Default::default();
        for (i, reply) in replies.iter_mut().enumerate() {
            let read = match self.sides[i].conn.as_mut() {
                Some(conn) => conn.read_reply_raw().map_err(|e| e.to_string()),
                None => Err("not connected".to_string()),
            };
            match read {
                Ok(r) => *reply = r,
                Err(e) => return Err(self.failure(context(), i, format!("reading reply: {e}"))),
            }
        }
        Ok(replies)
    }

    /// Sends a bookkeeping command to both servers; each reply must satisfy `ok`.
    fn setup(&mut self, args: &[&str], ok: fn(&[u8]) -> bool, context: &dyn Fn() -> String) -> Result<(), Abort> {
        let replies = self.exchange(&crate::conn::encode_command(args), context)?;
        for (i, reply) in replies.iter().enumerate() {
            if !ok(reply) {
                self.summary.problems.push(format!(
                    "{}\n    setup command `{}` failed on {}: {}\n    (rest of this pass skipped)",
                    context(),
                    args.join(" "),
                    self.sides[i].label,
                    show(reply)
                ));
                return Err(Abort::Pass);
            }
        }
        Ok(())
    }

    /// Opens fresh connections to both servers and puts them in `proto`, DB 0.
    fn connect(&mut self, proto: Proto, context: &dyn Fn() -> String) -> Result<(), Abort> {
        for i in 0..2 {
            match self.sides[i].server.try_conn() {
                Ok(conn) => self.sides[i].conn = Some(conn),
                Err(e) => return Err(self.failure(context(), i, format!("connecting: {e}"))),
            }
        }
        self.setup(&["HELLO", proto.hello_arg()], |r| !resp::is_error(r), context)?;
        self.setup(&["SELECT", "0"], |r| r == b"+OK\r\n", context)
    }

    fn run_pass(&mut self, file: &CaseFile, proto: Proto) -> Result<(), Abort> {
        let start = || format!("{} [{proto} pass] (setup before the first line)", file.name);
        let result = self.run_pass_inner(file, proto, &start);
        for s in &mut self.sides {
            s.conn = None;
        }
        match result {
            Err(Abort::Fatal(why)) => Err(Abort::Fatal(why)),
            _ => Ok(()),
        }
    }

    fn run_pass_inner(&mut self, file: &CaseFile, proto: Proto, start: &dyn Fn() -> String) -> Result<(), Abort> {
        self.connect(proto, start)?;
        self.setup(&["FLUSHALL"], |r| r == b"+OK\r\n", start)?;
        let mut current = proto;
        for step in &file.steps {
            let context_text = self.where_(file, step, proto);
            let context = || context_text.clone();
            let (bytes, check) = match &step.action {
                Action::Command { args, check } => (crate::conn::encode_command(args), check),
                Action::Raw { bytes, check } => (bytes.clone(), check),
                Action::Hello(p) => {
                    self.setup(&["HELLO", p.hello_arg()], |r| !resp::is_error(r), &context)?;
                    current = *p;
                    continue;
                }
                Action::FlushAll => {
                    self.setup(&["FLUSHALL"], |r| r == b"+OK\r\n", &context)?;
                    continue;
                }
                Action::Reconnect => {
                    self.connect(current, &context)?;
                    continue;
                }
            };
            let [expected, actual] = self.exchange(&bytes, &context)?;
            self.summary.checked += 1;
            if self.verbose {
                eprintln!(
                    "{}\n    {}: {}\n    {}: {}",
                    context(),
                    self.sides[0].label,
                    show(&expected),
                    self.sides[1].label,
                    show(&actual)
                );
            }
            if let Some(note) = verdict(check, &expected, &actual) {
                let mut report = format!(
                    "{}\n    {:<8} {}\n    {:<8} {}",
                    context(),
                    format!("{}:", self.sides[0].label),
                    show(&expected),
                    format!("{}:", self.sides[1].label),
                    show(&actual)
                );
                if !note.is_empty() {
                    let _ = write!(report, "\n    ({note})");
                }
                self.summary.problems.push(report);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert!(verdict(&Check::Exact, b"+OK\r\n", b"+OK\r\n").is_none());
        assert!(verdict(&Check::Exact, b"+OK\r\n", b"-ERR\r\n").is_some());
        assert!(verdict(&Check::Sorted, b"*2\r\n:1\r\n:2\r\n", b"*2\r\n:2\r\n:1\r\n").is_none());
        assert!(verdict(&Check::TypeOnly, b":1\r\n", b":2\r\n").is_none());
        assert!(verdict(&Check::TypeOnly, b":1\r\n", b"$1\r\n1\r\n").is_some());
        let between = Check::IntBetween(0, 10);
        assert!(verdict(&between, b":3\r\n", b":10\r\n").is_none());
        assert!(verdict(&between, b":3\r\n", b":11\r\n").is_some());
        assert!(verdict(&Check::Differs("x".into()), b":3\r\n", b"+x\r\n").is_none());
    }
}
