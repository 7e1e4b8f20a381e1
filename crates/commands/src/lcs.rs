//! LCS: the longest common subsequence of two strings, as Redis 7.2 computes and reports it.
//!
//! `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`. The handler, in Redis's
//! order: looks both keys up (a missing key is an empty string; a key of another type gives
//! [`KEYS_NOT_STRINGS`], not WRONGTYPE, and is checked before the options), then
//! [`LcsArgs::parse`] on the arguments after the two keys, then [`lcs`], then
//! [`LcsResult::write`].
//!
//! Replies:
//! * default: the common subsequence as a bulk string;
//! * `LEN`: its length as an integer;
//! * `IDX`: RESP3 map `{"matches": [...], "len": N}`, in RESP2 the flat array
//!   `["matches", [...], "len", N]`. Each match is `[[a_start, a_end], [b_start, b_end]]`
//!   (inclusive byte ranges in the first and second string), plus the match length as a third
//!   element with `WITHMATCHLEN`. Matches come from the end of the strings towards the start,
//!   and matches shorter than `MINMATCHLEN` are left out (`len` still counts them).

use resp::ReplyBuf;

use crate::error::{CmdError, CmdResult, NOT_INTEGER, SYNTAX};
use crate::numfmt::parse_i64;

/// A key holding something other than a string.
pub const KEYS_NOT_STRINGS: CmdError = CmdError::fixed("ERR The specified keys must contain string values");
/// Both LEN and IDX given.
pub const LEN_AND_IDX: CmdError = CmdError::fixed("ERR If you want both the length and indexes, please just use IDX.");
/// A string of 2^32 - 2 bytes or more.
pub const STRING_TOO_LONG_FOR_LCS: CmdError = CmdError::fixed("ERR String too long for LCS");
/// The DP table (4 bytes per cell) would be larger than `proto-max-bulk-len`.
pub const LCS_EXCEEDS_PROTO_MAX_BULK_LEN: CmdError =
    CmdError::fixed("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
/// The DP table's size overflows the address space.
pub const LCS_ALLOC_FAILED: CmdError =
    CmdError::fixed("ERR Insufficient memory, failed allocating transient memory for LCS");

/// Redis's default `proto-max-bulk-len` (512MB).
pub const DEFAULT_PROTO_MAX_BULK_LEN: i64 = 512 * 1024 * 1024;

/// What LCS replies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcsMode {
    /// The subsequence itself (no option).
    String,
    /// `LEN`: its length.
    Len,
    /// `IDX`: the matching ranges.
    Idx,
}

/// LCS's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcsArgs {
    pub mode: LcsMode,
    /// `MINMATCHLEN` (negative values count as 0; 0 keeps every match).
    pub min_match_len: u64,
    /// `WITHMATCHLEN` (only changes IDX replies).
    pub with_match_len: bool,
    /// The `proto-max-bulk-len` the DP table is checked against: (len1+1) * (len2+1) * 4
    /// bytes must not exceed it. [`DEFAULT_PROTO_MAX_BULK_LEN`] unless set with
    /// [`LcsArgs::with_proto_max_bulk_len`].
    pub proto_max_bulk_len: i64,
}

impl LcsArgs {
    /// Parses the arguments after the two keys: `LEN`, `IDX`, `WITHMATCHLEN` and
    /// `MINMATCHLEN n`, case-insensitive, in any order, repeats allowed.
    ///
    /// Errors, left to right: an unknown option or `MINMATCHLEN` without a value -> syntax
    /// error; a non-integer `MINMATCHLEN` -> `ERR value is not an integer or out of range`;
    /// then both LEN and IDX -> [`LEN_AND_IDX`].
    pub fn parse(args: &[&[u8]]) -> CmdResult<LcsArgs> {
        let (mut idx, mut len) = (false, false);
        let mut parsed = LcsArgs {
            mode: LcsMode::String,
            min_match_len: 0,
            with_match_len: false,
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
        };
        let mut j = 0;
        while j < args.len() {
            let opt = args[j];
            if opt.eq_ignore_ascii_case(b"idx") {
                idx = true;
            } else if opt.eq_ignore_ascii_case(b"len") {
                len = true;
            } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
                parsed.with_match_len = true;
            } else if opt.eq_ignore_ascii_case(b"minmatchlen") && j + 1 < args.len() {
                let n = parse_i64(args[j + 1]).ok_or(NOT_INTEGER)?;
                parsed.min_match_len = n.max(0) as u64;
                j += 1;
            } else {
                return Err(SYNTAX);
            }
            j += 1;
        }
        if idx && len {
            return Err(LEN_AND_IDX);
        }
        parsed.mode = if idx {
            LcsMode::Idx
        } else if len {
            LcsMode::Len
        } else {
            LcsMode::String
        };
        Ok(parsed)
    }

    /// The same options checked against another `proto-max-bulk-len`.
    pub fn with_proto_max_bulk_len(self, proto_max_bulk_len: i64) -> LcsArgs {
        LcsArgs { proto_max_bulk_len, ..self }
    }
}

/// One match of an IDX reply: inclusive byte ranges in both strings and their length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcsMatch {
    pub a: (u64, u64),
    pub b: (u64, u64),
    pub len: u64,
}

/// The answer to an LCS command, ready to encode with [`LcsResult::write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LcsResult {
    /// Default mode: the subsequence.
    String(Vec<u8>),
    /// `LEN`.
    Len(u64),
    /// `IDX`: the matches in reply order, the subsequence's length, and whether each match
    /// carries its length (`WITHMATCHLEN`).
    Idx { matches: Vec<LcsMatch>, len: u64, with_match_len: bool },
}

impl LcsResult {
    /// Encodes the reply in the buffer's protocol (see the module doc for the shapes).
    pub fn write(&self, out: &mut ReplyBuf) {
        match self {
            LcsResult::String(s) => out.bulk(s),
            LcsResult::Len(n) => out.int(*n as i64),
            LcsResult::Idx { matches, len, with_match_len } => {
                out.map(2);
                out.bulk(b"matches");
                out.array(matches.len());
                for m in matches {
                    out.array(if *with_match_len { 3 } else { 2 });
                    for (start, end) in [m.a, m.b] {
                        out.array(2);
                        out.int(start as i64);
                        out.int(end as i64);
                    }
                    if *with_match_len {
                        out.int(m.len as i64);
                    }
                }
                out.bulk(b"len");
                out.int(*len as i64);
            }
        }
    }
}

/// Redis's memory checks for the (len1+1) x (len2+1) table of 4-byte cells.
fn check_table_size(alen: usize, blen: usize, proto_max_bulk_len: i64) -> CmdResult<()> {
    const LIMIT: u64 = u32::MAX as u64 - 1;
    if alen as u64 >= LIMIT || blen as u64 >= LIMIT {
        return Err(STRING_TOO_LONG_FOR_LCS);
    }
    let bytes = (alen as u128 + 1) * (blen as u128 + 1) * 4;
    if bytes >= u128::from(u64::MAX) {
        return Err(LCS_ALLOC_FAILED);
    }
    if bytes > proto_max_bulk_len.max(0) as u128 {
        return Err(LCS_EXCEEDS_PROTO_MAX_BULK_LEN);
    }
    Ok(())
}

/// Computes LCS of `a` and `b` (the two keys' values, empty when missing) as Redis does,
/// including which of several equally long subsequences it picks and how it splits it into
/// matches.
///
/// Memory: Redis allocates the whole table of lengths; this keeps two rows plus one bit per
/// cell (the backtracking direction), and only the two rows for `LEN`. The same size limit
/// as Redis is enforced first, so the errors match: [`STRING_TOO_LONG_FOR_LCS`],
/// [`LCS_EXCEEDS_PROTO_MAX_BULK_LEN`], [`LCS_ALLOC_FAILED`]. Time is `a.len() * b.len()`.
pub fn lcs(a: &[u8], b: &[u8], args: &LcsArgs) -> CmdResult<LcsResult> {
    check_table_size(a.len(), b.len(), args.proto_max_bulk_len)?;
    if args.mode == LcsMode::Len {
        return Ok(LcsResult::Len(lcs_len(a, b)));
    }
    let table = DirTable::build(a, b);
    let (seq, matches) = table.backtrack(a, b, args.min_match_len);
    Ok(match args.mode {
        LcsMode::Idx => LcsResult::Idx { matches, len: table.len, with_match_len: args.with_match_len },
        _ => LcsResult::String(seq),
    })
}

/// The LCS length with two rows.
fn lcs_len(a: &[u8], b: &[u8]) -> u64 {
    let mut prev = vec![0u32; b.len() + 1];
    let mut cur = vec![0u32; b.len() + 1];
    for &ca in a {
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = if ca == cb { prev[j] + 1 } else { prev[j + 1].max(cur[j]) };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    u64::from(prev[b.len()])
}

/// For each cell (i, j), 1 <= i <= len(a), 1 <= j <= len(b), one bit: whether
/// LCS(i-1, j) > LCS(i, j-1), i.e. whether Redis's backtracking steps up (i - 1) rather
/// than left (j - 1) at a mismatch.
struct DirTable {
    up: Vec<u64>,
    cols: usize,
    /// LCS(len(a), len(b)).
    len: u64,
}

impl DirTable {
    fn build(a: &[u8], b: &[u8]) -> DirTable {
        let cols = b.len();
        let mut up = vec![0u64; (a.len() * cols).div_ceil(64)];
        let mut prev = vec![0u32; cols + 1];
        let mut cur = vec![0u32; cols + 1];
        for (i, &ca) in a.iter().enumerate() {
            let row = i * cols;
            for (j, &cb) in b.iter().enumerate() {
                if ca == cb {
                    cur[j + 1] = prev[j] + 1;
                } else {
                    let (lcs1, lcs2) = (prev[j + 1], cur[j]);
                    cur[j + 1] = lcs1.max(lcs2);
                    if lcs1 > lcs2 {
                        let bit = row + j;
                        up[bit / 64] |= 1 << (bit % 64);
                    }
                }
            }
            std::mem::swap(&mut prev, &mut cur);
        }
        DirTable { up, cols, len: u64::from(prev[cols]) }
    }

    fn steps_up(&self, i: usize, j: usize) -> bool {
        let bit = (i - 1) * self.cols + (j - 1);
        (self.up[bit / 64] >> (bit % 64)) & 1 == 1
    }

    /// Redis's walk from (len(a), len(b)) back to an edge: the subsequence, and the runs of
    /// consecutive matches (each closed by a mismatch step or by reaching the start of
    /// either string) at least `min_len` long.
    fn backtrack(&self, a: &[u8], b: &[u8], min_len: u64) -> (Vec<u8>, Vec<LcsMatch>) {
        let mut seq = Vec::with_capacity(self.len as usize);
        let mut matches = Vec::new();
        // The run being extended backwards: (a_start, a_end, b_start, b_end).
        let mut run: Option<(usize, usize, usize, usize)> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let emit = if a[i - 1] == b[j - 1] {
                seq.push(a[i - 1]);
                let r = match run {
                    Some((as_, ae, bs, be)) if as_ == i && bs == j => (i - 1, ae, j - 1, be),
                    _ => (i - 1, i - 1, j - 1, j - 1),
                };
                run = Some(r);
                i -= 1;
                j -= 1;
                r.0 == 0 || r.2 == 0
            } else {
                if self.steps_up(i, j) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                run.is_some()
            };
            if emit {
                if let Some((as_, ae, bs, be)) = run.take() {
                    let len = (ae - as_ + 1) as u64;
                    if min_len == 0 || len >= min_len {
                        let m = (as_ as u64, ae as u64);
                        matches.push(LcsMatch { a: m, b: (bs as u64, be as u64), len });
                    }
                }
            }
        }
        seq.reverse();
        (seq, matches)
    }
}

#[cfg(test)]
mod tests {
    //! Expected values were produced by redis-server 7.0.15.
    use super::*;

    fn run(a: &str, b: &str, opts: &str) -> CmdResult<LcsResult> {
        let opts: Vec<&[u8]> = opts.split_whitespace().map(str::as_bytes).collect();
        lcs(a.as_bytes(), b.as_bytes(), &LcsArgs::parse(&opts)?)
    }

    fn m(a: (u64, u64), b: (u64, u64), len: u64) -> LcsMatch {
        LcsMatch { a, b, len }
    }

    #[test]
    fn string_and_len() {
        assert_eq!(run("ohmytext", "mynewtext", ""), Ok(LcsResult::String(b"mytext".to_vec())));
        assert_eq!(run("ohmytext", "mynewtext", "LEN"), Ok(LcsResult::Len(6)));
        assert_eq!(run("abc", "", ""), Ok(LcsResult::String(Vec::new())));
        assert_eq!(run("", "", "len"), Ok(LcsResult::Len(0)));
    }

    #[test]
    fn idx_matches() {
        let r = run("ohmytext", "mynewtext", "IDX").unwrap();
        let matches = vec![m((4, 7), (5, 8), 4), m((2, 3), (0, 1), 2)];
        assert_eq!(r, LcsResult::Idx { matches, len: 6, with_match_len: false });
        let r = run("ohmytext", "mynewtext", "IDX MINMATCHLEN 4 WITHMATCHLEN").unwrap();
        assert_eq!(r, LcsResult::Idx { matches: vec![m((4, 7), (5, 8), 4)], len: 6, with_match_len: true });
        let r = run("", "abc", "IDX").unwrap();
        assert_eq!(r, LcsResult::Idx { matches: vec![], len: 0, with_match_len: false });
        let r = run("aaa", "aa", "idx withmatchlen").unwrap();
        assert_eq!(r, LcsResult::Idx { matches: vec![m((1, 2), (0, 1), 2)], len: 2, with_match_len: true });
        let r = run("abcabc", "cbacba", "IDX WITHMATCHLEN").unwrap();
        let matches = vec![m((5, 5), (3, 3), 1), m((4, 4), (1, 1), 1), m((2, 2), (0, 0), 1)];
        assert_eq!(r, LcsResult::Idx { matches, len: 3, with_match_len: true });
    }

    #[test]
    fn option_errors() {
        assert_eq!(run("a", "b", "foo"), Err(SYNTAX));
        assert_eq!(run("a", "b", "minmatchlen"), Err(SYNTAX));
        assert_eq!(run("a", "b", "minmatchlen x"), Err(NOT_INTEGER));
        assert_eq!(run("a", "b", "len idx"), Err(LEN_AND_IDX));
        assert_eq!(run("a", "b", "minmatchlen x len idx"), Err(NOT_INTEGER));
        assert_eq!(run("xxx", "xxx", "minmatchlen -5 len"), Ok(LcsResult::Len(3)));
        let args = LcsArgs::parse(&[&b"MinMatchLen"[..], b"-5"]).unwrap();
        assert_eq!(args.min_match_len, 0);
    }

    #[test]
    fn table_size_limit() {
        let a = vec![b'x'; 600];
        let args = LcsArgs::parse(&[&b"len"[..]]).unwrap().with_proto_max_bulk_len(1024 * 1024);
        assert_eq!(lcs(&a, &a, &args), Err(LCS_EXCEEDS_PROTO_MAX_BULK_LEN));
        // 512 * 512 * 4 bytes is exactly 1MB: allowed.
        assert_eq!(lcs(&a[..511], &a[..511], &args), Ok(LcsResult::Len(511)));
        assert_eq!(lcs(&a, &a, &LcsArgs::parse(&[]).unwrap()), Ok(LcsResult::String(a.clone())));
    }

    #[test]
    fn reply_shapes() {
        let r = run("ohmytext", "mynewtext", "IDX WITHMATCHLEN MINMATCHLEN 3").unwrap();
        let mut out = ReplyBuf::new(resp::Protocol::Resp2);
        r.write(&mut out);
        let want2 = "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n";
        assert_eq!(String::from_utf8(out.buf).unwrap(), want2);
        let mut out = ReplyBuf::new(resp::Protocol::Resp3);
        r.write(&mut out);
        assert_eq!(String::from_utf8(out.buf).unwrap(), want2.replacen("*4", "%2", 1));
        let mut out = ReplyBuf::new(resp::Protocol::Resp2);
        LcsResult::Len(6).write(&mut out);
        LcsResult::String(b"ab".to_vec()).write(&mut out);
        assert_eq!(out.buf, b":6\r\n$2\r\nab\r\n");
    }
}
