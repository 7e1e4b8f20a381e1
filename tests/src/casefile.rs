//! Parser for the differential case files (`tests/diff/*.txt`).
//!
//! The format is documented in `tests/diff/README.md`. In short: one command
//! per line, split with Redis's inline quoting rules (as `redis-cli` and
//! inline commands do); `#` starts a comment line; lines starting with `@` are
//! directives, either standalone actions (`@resp3`, `@flushall`, ...) or
//! modifiers (`@sort`, `@skip-reply why`, ...) that apply to the next command.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// A protocol version a pass runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// RESP2 (`HELLO 2`).
    Resp2,
    /// RESP3 (`HELLO 3`).
    Resp3,
}

impl Proto {
    /// The argument to `HELLO`.
    pub fn hello_arg(self) -> &'static str {
        match self {
            Proto::Resp2 => "2",
            Proto::Resp3 => "3",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Resp2 => "RESP2",
            Proto::Resp3 => "RESP3",
        })
    }
}

/// How the two replies to one command are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Byte-for-byte equality (the default).
    Exact,
    /// Equality after sorting the top-level elements (`@sort`).
    Sorted,
    /// Both must reply; the replies are not compared (`@skip-reply why`).
    SkipReply(String),
    /// A known, intended difference: both must reply (`@differs why`).
    Differs(String),
    /// Only the RESP type bytes must match (`@type`).
    TypeOnly,
    /// Both replies must be integers in `lo..=hi` (`@int-between lo hi`).
    IntBetween(i64, i64),
}

/// What one step of a case file does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a command to both servers and check the replies.
    Command {
        /// The command's arguments.
        args: Vec<Vec<u8>>,
        /// How to check the replies.
        check: Check,
    },
    /// Send raw bytes to both servers, read one reply each and check them (`@raw`).
    Raw {
        /// The bytes to send.
        bytes: Vec<u8>,
        /// How to check the replies.
        check: Check,
    },
    /// Switch both connections to a protocol (`@resp2`, `@resp3`); not compared.
    Hello(Proto),
    /// `FLUSHALL` on both servers; not compared (`@flushall`).
    FlushAll,
    /// Open fresh connections to both servers (`@reconnect`), then restore
    /// the protocol of the current pass and `SELECT 0`.
    Reconnect,
}

/// One step of a case file, with the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line number in the file.
    pub line: usize,
    /// The line as written (trimmed), for reports.
    pub text: String,
    /// What to do.
    pub action: Action,
}

/// A parsed case file.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its file name, for reports.
    pub name: String,
    /// Set by `@only resp2` / `@only resp3`.
    pub only: Option<Proto>,
    /// The steps in order.
    pub steps: Vec<Step>,
}

impl CaseFile {
    /// The protocols the file runs in, in order.
    pub fn passes(&self) -> Vec<Proto> {
        match self.only {
            Some(p) => vec![p],
            None => vec![Proto::Resp2, Proto::Resp3],
        }
    }

    /// Number of steps that send something and check the replies.
    pub fn checked_steps(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s.action, Action::Command { .. } | Action::Raw { .. })).count()
    }
}

/// Reads and parses a case file.
pub fn load(path: &Path) -> Result<CaseFile, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    parse(&name, &text).map(|(only, steps)| CaseFile { path: path.to_path_buf(), name, only, steps })
}

type Parsed = (Option<Proto>, Vec<Step>);

/// Parses the text of a case file named `name` (used in error messages).
pub fn parse(name: &str, text: &str) -> Result<Parsed, String> {
    let mut only = None;
    let mut steps = Vec::new();
    let mut pending: Option<(usize, Check)> = None;
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim();
        let err = |msg: String| format!("{name}:{line_no}: {msg}");
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let step = |action| Step { line: line_no, text: line.to_string(), action };
        if let Some(directive) = line.strip_prefix('@') {
            let (word, rest) = match directive.split_once(char::is_whitespace) {
                Some((w, r)) => (w, r.trim()),
                None => (directive, ""),
            };
            let modifier = match word {
                "sort" => Some(Check::Sorted),
                "type" => Some(Check::TypeOnly),
                "skip-reply" | "differs" => {
                    if rest.is_empty() {
                        return Err(err(format!("@{word} needs a reason")));
                    }
                    Some(if word == "skip-reply" {
                        Check::SkipReply(rest.to_string())
                    } else {
                        Check::Differs(rest.to_string())
                    })
                }
                "int-between" => {
                    let bounds: Vec<i64> = rest
                        .split_whitespace()
                        .map(|s| s.parse::<i64>())
                        .collect::<Result<_, _>>()
                        .map_err(|e| err(format!("@int-between: {e}")))?;
                    match bounds[..] {
                        [lo, hi] if lo <= hi => Some(Check::IntBetween(lo, hi)),
                        _ => return Err(err("@int-between needs two bounds LO <= HI".into())),
                    }
                }
                _ => None,
            };
            if let Some(check) = modifier {
                if !matches!(word, "skip-reply" | "differs" | "int-between") && !rest.is_empty() {
                    return Err(err(format!("@{word} takes no argument")));
                }
                if let Some((at, _)) = pending {
                    return Err(err(format!("a second modifier before one command (the first is on line {at})")));
                }
                pending = Some((line_no, check));
                continue;
            }
            let no_args = |action: Action| {
                if rest.is_empty() {
                    Ok(action)
                } else {
                    Err(err(format!("@{word} takes no argument")))
                }
            };
            let action = match word {
                "resp2" => no_args(Action::Hello(Proto::Resp2))?,
                "resp3" => no_args(Action::Hello(Proto::Resp3))?,
                "flushall" => no_args(Action::FlushAll)?,
                "reconnect" => no_args(Action::Reconnect)?,
                "only" => {
                    if !steps.is_empty() || pending.is_some() || only.is_some() {
                        return Err(err("@only must come once, before any step".into()));
                    }
                    only = Some(match rest {
                        "resp2" => Proto::Resp2,
                        "resp3" => Proto::Resp3,
                        _ => return Err(err("@only takes resp2 or resp3".into())),
                    });
                    continue;
                }
                "raw" => {
                    let parts = split_args(rest).map_err(&err)?;
                    if parts.is_empty() {
                        return Err(err("@raw needs the bytes to send".into()));
                    }
                    let check = pending.take().map_or(Check::Exact, |(_, c)| c);
                    steps.push(step(Action::Raw { bytes: parts.concat(), check }));
                    continue;
                }
                other => return Err(err(format!("unknown directive @{other}"))),
            };
            if let Some((at, _)) = pending {
                return Err(err(format!("the modifier on line {at} must be followed by a command, not a directive")));
            }
            steps.push(step(action));
            continue;
        }
        let args = split_args(line).map_err(&err)?;
        if args.is_empty() {
            continue;
        }
        let check = pending.take().map_or(Check::Exact, |(_, c)| c);
        steps.push(step(Action::Command { args, check }));
    }
    if let Some((at, _)) = pending {
        return Err(format!("{name}:{at}: modifier at the end of the file applies to nothing"));
    }
    Ok((only, steps))
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits a line into arguments with Redis's inline quoting rules:
/// whitespace separates arguments; inside `"..."` the escapes `\n \r \t \b \a`,
/// `\xHH` and `\<any>` (that character itself) apply; inside `'...'` only `\'`
/// is an escape; a closing quote must be followed by whitespace or the end.
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let Some(&c) = bytes.get(i) else {
                if in_double || in_single {
                    return Err("unbalanced quotes".into());
                }
                break;
            };
            if in_double {
                if c == b'\\' && i + 3 < bytes.len() && bytes[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex_digit(bytes[i + 2]), hex_digit(bytes[i + 3])) {
                        current.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < bytes.len() {
                    current.push(match bytes[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    if bytes.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                }
                current.push(c);
                i += 1;
            } else if in_single {
                if c == b'\\' && bytes.get(i + 1) == Some(&b'\'') {
                    current.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if bytes.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                }
                current.push(c);
                i += 1;
            } else {
                match c {
                    c if c.is_ascii_whitespace() => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => current.push(c),
                }
                i += 1;
            }
        }
        args.push(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<Vec<u8>> {
        split_args(s).unwrap()
    }

    #[test]
    fn splits_like_redis() {
        assert_eq!(split("  SET  k v "), vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]);
        assert_eq!(split(r#"SET "a b" ''"#), vec![b"SET".to_vec(), b"a b".to_vec(), vec![]]);
        assert_eq!(split(r#""\x00\r\n\t\xZZ\"\\""#), vec![b"\x00\r\n\txZZ\"\\".to_vec()]);
        assert_eq!(split(r"'it\'s' '\n'"), vec![b"it's".to_vec(), b"\\n".to_vec()]);
        assert_eq!(split(r#"ab"c d""#), vec![b"abc d".to_vec()]);
        assert!(split_args(r#""abc"d"#).is_err());
        assert!(split_args(r#""abc"#).is_err());
        assert!(split_args("'abc").is_err());
    }

    #[test]
    fn parses_directives() {
        let text = "# c\n@only resp3\nPING\n@sort\nKEYS *\n@skip-reply random\nRANDOMKEY\n\
                    @raw \"PING\\r\\n\"\n@resp2\n@int-between 1 5\nPTTL k\n";
        let (only, steps) = parse("t", text).unwrap();
        assert_eq!(only, Some(Proto::Resp3));
        let checks: Vec<_> = steps
            .iter()
            .map(|s| match &s.action {
                Action::Command { check, .. } | Action::Raw { check, .. } => Some(check.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            checks,
            vec![
                Some(Check::Exact),
                Some(Check::Sorted),
                Some(Check::SkipReply("random".into())),
                Some(Check::Exact),
                None,
                Some(Check::IntBetween(1, 5)),
            ]
        );
        assert_eq!(steps[3].line, 8);
        assert!(parse("t", "@sort\n@sort\nKEYS *\n").is_err());
        assert!(parse("t", "@skip-reply\nTIME\n").is_err());
        assert!(parse("t", "@sort\n").is_err());
        assert!(parse("t", "PING\n@only resp2\n").is_err());
        assert!(parse("t", "@bogus\n").is_err());
        assert!(parse("t", "@sort\n@flushall\nPING\n").is_err());
    }
}
