//! The growth finder: which key patterns hold the memory and which grow.
//!
//! Keys are folded into patterns by their structure: the parts between `:`, `/`, `|` and `.`
//! that are ids (numbers, hex, UUIDs, long random tokens) become `*`, and so do runs of two
//! or more digits inside a part (`bull:emails:123:logs` → `bull:emails:*:logs`,
//! `celery-task-meta-<uuid>` → `celery-task-meta-*`).
//!
//! A census walks the keyspace a bounded step at a time (the server drives it). Each key is
//! counted when it falls in a spatial sample (a hash of the key below the pass's rate, so a
//! key is in or out for the whole pass and a pattern's count is an unbiased estimate), or
//! always when it is large (a big collection is exactly the kind of key that grows, and a
//! sample would miss a single one). A finished pass is kept in a short history; growth per
//! hour is the Theil–Sen slope of a pattern's bytes and keys over the passes of the last day.
//! Collections that list the ids of a growing pattern's keys (a queue's `completed` set
//! naming its job hashes) are linked to it: trimming the list is where the fix goes.

use std::collections::{HashMap, VecDeque};

/// Keys a pass samples at most (the rate is set so the keyspace gives about this many).
pub const SAMPLE_KEYS: f64 = 50_000.0;
/// A key this large (bytes or elements) is always counted, whatever the sample says.
pub const LARGE_BYTES: u64 = 64 * 1024;
pub const LARGE_ELEMENTS: u64 = 1000;
/// Distinct patterns a pass keeps (the rest are summed as `(other)`).
pub const MAX_PATTERNS: usize = 256;
/// Largest keys kept per pattern.
pub const LARGEST: usize = 3;
/// Passes kept: at least 30 minutes apart, over a day.
const KEEP_GAP_MS: i64 = 30 * 60_000;
const WINDOW_MS: i64 = 24 * 3_600_000;

fn is_hex(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_hexdigit)
}

fn is_uuid_at(s: &[u8]) -> bool {
    s.len() >= 36
        && [8, 13, 18, 23].iter().all(|&i| s[i] == b'-')
        && s[..36].iter().enumerate().all(|(i, c)| [8, 13, 18, 23].contains(&i) || c.is_ascii_hexdigit())
}

/// Whether a whole part is an id: digits, 8+ hex digits, or a 16+ character token mixing
/// letters and digits.
fn is_id(p: &[u8]) -> bool {
    if p.is_empty() {
        return false;
    }
    if p.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let has_digit = p.iter().any(u8::is_ascii_digit);
    if p.len() >= 8 && is_hex(p) && has_digit {
        return true;
    }
    p.len() >= 16
        && has_digit
        && p.iter().any(u8::is_ascii_alphabetic)
        && p.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-' || *c == b'=')
}

fn is_sep(c: &u8) -> bool {
    matches!(c, b':' | b'/' | b'|' | b'.')
}

/// Appends the folded form of one part (the text between separators).
fn fold_part(part: &[u8], out: &mut Vec<u8>) {
    let has_uuid = (0..part.len()).any(|j| is_uuid_at(&part[j..]));
    if !has_uuid && is_id(part) {
        out.push(b'*');
        return;
    }
    let mut j = 0;
    while j < part.len() {
        if is_uuid_at(&part[j..]) {
            out.push(b'*');
            j += 36;
        } else if part[j].is_ascii_digit() {
            let run = part[j..].iter().take_while(|c| c.is_ascii_digit()).count();
            if run >= 2 {
                out.push(b'*');
            } else {
                out.push(part[j]);
            }
            j += run;
        } else {
            out.push(part[j]);
            j += 1;
        }
    }
}

/// The pattern of a key.
pub fn fold(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len().min(128));
    let mut start = 0;
    loop {
        let end = key[start..].iter().position(is_sep).map_or(key.len(), |p| start + p);
        fold_part(&key[start..end], &mut out);
        if end == key.len() {
            break;
        }
        out.push(key[end]);
        start = end + 1;
    }
    if out.len() > 200 {
        out.truncate(200);
        out.push(b'*');
    }
    out.dedup_by(|a, b| *a == b'*' && *b == b'*');
    out
}

/// Whether a key is counted whatever the sample says.
pub fn is_large(bytes: u64, elements: u64) -> bool {
    bytes >= LARGE_BYTES || elements >= LARGE_ELEMENTS
}

/// A 64-bit hash of a key for the spatial sample (FNV-1a, then a finalizer).
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// One key as the census sees it.
#[derive(Clone, Debug)]
pub struct KeyInfo<'a> {
    pub key: &'a [u8],
    pub bytes: u64,
    pub ttl: bool,
    pub kind: &'static str,
    /// Elements of a collection (1 for a string).
    pub elements: u64,
}

/// A big key of a pattern: (key, bytes, elements).
pub type Big = (Vec<u8>, u64, u64);

/// Totals of one pattern in one pass (estimates: sampled keys count 1/rate).
#[derive(Clone, Debug, Default)]
pub struct Stat {
    pub keys: f64,
    pub bytes: f64,
    pub ttl_keys: f64,
    pub kind: &'static str,
    pub largest: Vec<Big>,
}

/// A finished pass.
#[derive(Clone, Debug, Default)]
pub struct Pass {
    pub at_ms: i64,
    pub rate: f64,
    pub visited: u64,
    pub patterns: HashMap<Vec<u8>, Stat>,
    /// Some patterns went to `(other)`: one missing from this pass may still have had keys.
    pub overflow: bool,
}

/// One pattern in the report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub pattern: String,
    pub kind: &'static str,
    pub keys: f64,
    pub bytes: f64,
    pub ttl_share: f64,
    pub keys_per_hour: f64,
    pub bytes_per_hour: f64,
    /// (key, bytes, elements, elements per hour)
    pub largest: Vec<(String, u64, u64, f64)>,
    /// This collection lists the ids of that pattern's keys.
    pub indexes: Option<String>,
    /// The collection that lists this pattern's keys.
    pub indexed_by: Option<String>,
}

/// The census state: the pass being walked and the finished ones.
#[derive(Debug, Default)]
pub struct Census {
    pub current: Option<Pass>,
    pub history: VecDeque<Pass>,
    pub report: Vec<Report>,
    pub passes: u64,
    pub last_pass_ms: Option<i64>,
}

impl Census {
    /// Starts a pass over a keyspace of `total_keys`.
    pub fn begin(&mut self, at_ms: i64, total_keys: u64) {
        let rate = (SAMPLE_KEYS / total_keys.max(1) as f64).min(1.0);
        self.current = Some(Pass { at_ms, rate, ..Pass::default() });
    }

    /// Counts keys of the running pass that the caller found outside the sample (and not
    /// large) without handing them over.
    pub fn skipped(&mut self, n: u64) {
        if let Some(pass) = self.current.as_mut() {
            pass.visited += n;
        }
    }

    /// Counts one key of the running pass.
    pub fn visit(&mut self, k: &KeyInfo<'_>) {
        let Some(pass) = self.current.as_mut() else { return };
        pass.visited += 1;
        let large = is_large(k.bytes, k.elements);
        let weight = if large {
            1.0
        } else if pass.rate >= 1.0 || (key_hash(k.key) as f64) < pass.rate * u64::MAX as f64 {
            1.0 / pass.rate
        } else {
            return;
        };
        let mut pattern = fold(k.key);
        if !pass.patterns.contains_key(&pattern) && pass.patterns.len() >= MAX_PATTERNS {
            pattern = b"(other)".to_vec();
            pass.overflow = true;
        }
        let st = pass.patterns.entry(pattern).or_default();
        st.keys += weight;
        st.bytes += weight * k.bytes as f64;
        if k.ttl {
            st.ttl_keys += weight;
        }
        if st.kind.is_empty() {
            st.kind = k.kind;
        } else if st.kind != k.kind {
            st.kind = "mixed";
        }
        if st.largest.len() < LARGEST || st.largest.last().is_some_and(|b| b.1 < k.bytes) {
            st.largest.push((k.key.to_vec(), k.bytes, k.elements));
            st.largest.sort_by_key(|b| std::cmp::Reverse(b.1));
            st.largest.truncate(LARGEST);
        }
    }

    /// Finishes the running pass: files it and recomputes the report. `links` are
    /// (collection key, pattern whose keys it lists), found by the server.
    pub fn finish(&mut self, at_ms: i64) {
        let Some(pass) = self.current.take() else { return };
        self.passes += 1;
        self.last_pass_ms = Some(at_ms);
        let pass = Pass { at_ms, ..pass };
        // the latest pass always replaces a newest one kept less than the gap ago
        if self.history.back().is_some_and(|b| at_ms - b.at_ms < KEEP_GAP_MS) && self.history.len() > 1 {
            let before = self.history.len() - 2;
            if at_ms - self.history[before].at_ms < KEEP_GAP_MS {
                self.history.pop_back();
            }
        }
        self.history.push_back(pass);
        while self.history.front().is_some_and(|p| at_ms - p.at_ms > WINDOW_MS) && self.history.len() > 2 {
            self.history.pop_front();
        }
        self.report = self.build_report();
    }

    fn build_report(&self) -> Vec<Report> {
        let Some(last) = self.history.back() else { return Vec::new() };
        // a pattern missing from a pass counts as 0 only if that pass kept every pattern
        let slope = |f: &dyn Fn(&Pass) -> Option<f64>| -> f64 {
            let pts: Vec<(i64, f64)> = self.history.iter().filter_map(|p| f(p).map(|v| (p.at_ms, v))).collect();
            if pts.len() < 2 {
                return 0.0;
            }
            crate::forecast::theil_sen(&pts).unwrap_or(0.0) * 3_600_000.0
        };
        let mut out: Vec<Report> = last
            .patterns
            .iter()
            .map(|(pat, st)| {
                let get = |p: &Pass| match p.patterns.get(pat) {
                    Some(st) => Some(st.clone()),
                    None if p.overflow => None,
                    None => Some(Stat::default()),
                };
                let largest = st
                    .largest
                    .iter()
                    .map(|(key, bytes, elements)| {
                        let el = |p: &Pass| {
                            get(p).map(|st| st.largest.iter().find(|b| &b.0 == key).map_or(0.0, |b| b.2 as f64))
                        };
                        (String::from_utf8_lossy(key).into_owned(), *bytes, *elements, slope(&el))
                    })
                    .collect();
                Report {
                    pattern: String::from_utf8_lossy(pat).into_owned(),
                    kind: st.kind,
                    keys: st.keys,
                    bytes: st.bytes,
                    ttl_share: if st.keys > 0.0 { st.ttl_keys / st.keys } else { 0.0 },
                    keys_per_hour: slope(&|p| get(p).map(|st| st.keys)),
                    bytes_per_hour: slope(&|p| get(p).map(|st| st.bytes)),
                    largest,
                    indexes: None,
                    indexed_by: None,
                }
            })
            .collect();
        out.sort_by(|a, b| b.bytes_per_hour.total_cmp(&a.bytes_per_hour).then(b.bytes.total_cmp(&a.bytes)));
        out
    }

    /// Growing collections of the report with one of their keys, and the growing patterns
    /// that have exactly one `*` (candidates for [`Census::link`]).
    pub fn link_candidates(&self) -> (Vec<String>, Vec<String>) {
        let grows = |r: &&Report| r.bytes_per_hour > 0.0;
        let collections = self
            .report
            .iter()
            .filter(grows)
            .filter(|r| matches!(r.kind, "zset" | "set" | "list" | "hash"))
            .filter_map(|r| r.largest.first().map(|l| (r, l)))
            .filter(|(r, l)| !r.pattern.contains('*') || l.2 >= LARGE_ELEMENTS)
            .map(|(_, l)| l.0.clone())
            .take(8)
            .collect();
        let patterns = self
            .report
            .iter()
            .filter(grows)
            .filter(|r| r.pattern.matches('*').count() == 1 && r.keys_per_hour > 0.0)
            .map(|r| r.pattern.clone())
            .take(16)
            .collect();
        (collections, patterns)
    }

    /// Records that collection `key` lists the ids of `pattern`'s keys: the collection's
    /// pattern moves to the top with both growths counted, the pattern right after it.
    pub fn link(&mut self, key: &str, pattern: &str) {
        let Some(ci) = self.report.iter().position(|r| r.largest.first().is_some_and(|l| l.0 == key)) else { return };
        let Some(pi) = self.report.iter().position(|r| r.pattern == pattern) else { return };
        if ci == pi {
            return;
        }
        self.report[ci].indexes = Some(pattern.to_string());
        self.report[pi].indexed_by = Some(self.report[ci].pattern.clone());
        let combined = |r: &Report, all: &[Report]| -> f64 {
            r.bytes_per_hour
                + r.indexes
                    .as_ref()
                    .and_then(|p| all.iter().find(|x| &x.pattern == p))
                    .map_or(0.0, |x| x.bytes_per_hour)
        };
        let scores: Vec<(String, f64)> =
            self.report.iter().map(|r| (r.pattern.clone(), combined(r, &self.report))).collect();
        let score = |r: &Report| {
            let own = scores.iter().find(|s| s.0 == r.pattern).map_or(0.0, |s| s.1);
            // a listed pattern sorts right after its collection
            match &r.indexed_by {
                Some(c) => scores.iter().find(|s| &s.0 == c).map_or(own, |s| s.1) - 1e-9,
                None => own,
            }
        };
        let mut keyed: Vec<(f64, Report)> = self.report.drain(..).map(|r| (score(&r), r)).collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.bytes.total_cmp(&a.1.bytes)));
        self.report = keyed.into_iter().map(|x| x.1).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(k: &str) -> String {
        String::from_utf8(fold(k.as_bytes())).unwrap()
    }

    #[test]
    fn keys_fold_into_patterns() {
        assert_eq!(f("bull:emails:123:logs"), "bull:emails:*:logs");
        assert_eq!(f("bull:emails:completed"), "bull:emails:completed");
        assert_eq!(f("rq:job:0c7b5d1e-8c2a-4b7e-9f3d-1a2b3c4d5e6f"), "rq:job:*");
        assert_eq!(f("celery-task-meta-0c7b5d1e-8c2a-4b7e-9f3d-1a2b3c4d5e6f"), "celery-task-meta-*");
        assert_eq!(f("sess:Zm9vYmFyYmF6cXV4MTIzNDU2"), "sess:*");
        assert_eq!(f("user:42:profile"), "user:*:profile");
        assert_eq!(f("cache/v2/page10.html"), "cache/v2/page*.html");
        assert_eq!(f("laravel_cache:deadbeef01"), "laravel_cache:*");
        assert_eq!(f("plain"), "plain");
        assert_eq!(f("a:1:2:3"), "a:*:*:*");
        assert_eq!(f(""), "");
    }

    fn key(k: &str, bytes: u64) -> KeyInfo<'_> {
        KeyInfo { key: k.as_bytes(), bytes, ttl: false, kind: "hash", elements: 2 }
    }

    #[test]
    fn passes_estimate_patterns_and_growth() {
        let mut c = Census::default();
        // 6 hourly passes: job hashes grow by 1000 an hour, sessions stay at 500
        for h in 0..6i64 {
            let jobs = 1000 * (h as u64 + 1);
            c.begin(h * 3_600_000, jobs + 500);
            let names: Vec<String> = (0..jobs).map(|i| format!("bull:q:{i}")).collect();
            for n in &names {
                c.visit(&key(n, 600));
            }
            let sess: Vec<String> = (0..500).map(|i| format!("sess:{i}")).collect();
            for n in &sess {
                c.visit(&KeyInfo { ttl: true, kind: "string", elements: 1, ..key(n, 100) });
            }
            c.finish(h * 3_600_000);
        }
        let r = &c.report;
        assert_eq!(r[0].pattern, "bull:q:*");
        assert_eq!(r[0].keys, 6000.0);
        assert!((r[0].keys_per_hour - 1000.0).abs() < 1e-6, "{:?}", r[0]);
        assert!((r[0].bytes_per_hour - 600_000.0).abs() < 1e-3);
        assert_eq!((r[1].pattern.as_str(), r[1].ttl_share, r[1].bytes_per_hour), ("sess:*", 1.0, 0.0));
    }

    #[test]
    fn a_sample_of_a_large_keyspace_is_close_and_big_keys_are_exact() {
        let mut c = Census::default();
        let total = 400_000u64;
        c.begin(0, total + 1);
        let names: Vec<String> = (0..total).map(|i| format!("item:{i}")).collect();
        for n in &names {
            c.visit(&KeyInfo { kind: "string", elements: 1, ..key(n, 80) });
        }
        c.visit(&KeyInfo { kind: "zset", elements: 50_000, ..key("jobs:done", 3_000_000) });
        c.finish(0);
        let items = c.report.iter().find(|r| r.pattern == "item:*").unwrap();
        assert!((items.keys / total as f64 - 1.0).abs() < 0.03, "estimated {} keys", items.keys);
        let done = c.report.iter().find(|r| r.pattern == "jobs:done").unwrap();
        assert_eq!((done.keys, done.bytes), (1.0, 3_000_000.0));
        assert!(c.history[0].visited == total + 1);
    }

    #[test]
    fn a_collection_listing_a_growing_pattern_ranks_first() {
        let mut c = Census::default();
        for h in 0..4i64 {
            let jobs = 2000 * (h as u64 + 1);
            c.begin(h * 3_600_000, jobs + 1);
            let names: Vec<String> = (0..jobs).map(|i| format!("bull:q:{i}")).collect();
            for n in &names {
                c.visit(&key(n, 600));
            }
            c.visit(&KeyInfo { kind: "zset", elements: jobs, ..key("bull:q:completed", jobs * 20) });
            c.finish(h * 3_600_000);
        }
        assert_eq!(c.report[0].pattern, "bull:q:*");
        let (cols, pats) = c.link_candidates();
        assert_eq!((cols, pats), (vec!["bull:q:completed".to_string()], vec!["bull:q:*".to_string()]));
        c.link("bull:q:completed", "bull:q:*");
        assert_eq!(c.report[0].pattern, "bull:q:completed");
        assert_eq!(c.report[0].indexes.as_deref(), Some("bull:q:*"));
        assert_eq!(c.report[1].indexed_by.as_deref(), Some("bull:q:completed"));
        assert!((c.report[0].largest[0].3 - 2000.0).abs() < 1e-6, "elements per hour");
    }

    #[test]
    fn a_pattern_folded_into_other_earlier_does_not_read_as_growth() {
        let mut c = Census::default();
        for h in 0..3i64 {
            c.begin(h * 3_600_000, 1000);
            // the first pass fills the pattern table before "late:*" is seen
            let letters = |i: usize| -> String {
                [i / 676, i / 26 % 26, i % 26].iter().map(|&d| (b'a' + d as u8) as char).collect()
            };
            let fillers: Vec<String> =
                (0..if h == 0 { MAX_PATTERNS } else { 0 }).map(|i| format!("f{}:k", letters(i))).collect();
            for n in &fillers {
                c.visit(&KeyInfo { kind: "string", elements: 1, ..key(n, 10) });
            }
            let late: Vec<String> = (0..100).map(|i| format!("late:{i}")).collect();
            for n in &late {
                c.visit(&KeyInfo { kind: "string", elements: 1, ..key(n, 100) });
            }
            c.finish(h * 3_600_000);
        }
        assert!(c.history[0].overflow);
        let late = c.report.iter().find(|r| r.pattern == "late:*").unwrap();
        assert_eq!((late.keys, late.bytes_per_hour), (100.0, 0.0), "{late:?}");
    }
}
