//! Redis's glob matching (`stringmatchlen`) for KEYS, SCAN MATCH, PUBSUB patterns and CONFIG GET.
//!
//! Supports `*`, `?`, `[abc]`, `[^abc]`, `[a-z]` and `\x` escapes with Redis's semantics
//! (an unterminated `[` matches to the end of the pattern; a trailing `\` matches itself).
//! Unlike a naive recursive matcher this one backtracks only to the most recent `*`, so its
//! cost is O(pattern × string) even for patterns such as `*a*a*a*a*b`.

/// Whether `s` matches `pattern`; `nocase` folds ASCII case.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    // Redis's matcher never matches an empty string unless the pattern is empty too (callers
    // special-case a lone `*` to mean "everything").
    if s.is_empty() {
        return pattern.is_empty();
    }
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut i) = (0usize, 0usize);
    // Where to resume after the last '*': (pattern index after the star, string index).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, i));
                    continue;
                }
                b'?' if i < s.len() => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' if i < s.len() => {
                    let (matched, next) = match_class(pattern, p, s[i], nocase);
                    if matched {
                        p = next;
                        i += 1;
                        continue;
                    }
                }
                b'\\' if i < s.len() && p + 1 < pattern.len() && eq(pattern[p + 1], s[i]) => {
                    p += 2;
                    i += 1;
                    continue;
                }
                b'\\' if i < s.len() && p + 1 < pattern.len() => {}
                c if i < s.len() && !matches!(c, b'?' | b'[') && eq(c, s[i]) => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        } else if i == s.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more byte, or fail.
        match star {
            Some((sp, si)) if si < s.len() => {
                star = Some((sp, si + 1));
                p = sp;
                i = si + 1;
            }
            _ => return false,
        }
    }
}

/// Matches byte `c` against the class starting at `pattern[p] == '['`. Returns whether it
/// matched and the pattern index after the class.
fn match_class(pattern: &[u8], mut p: usize, c: u8, nocase: bool) -> (bool, usize) {
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let raw = c;
    let c = fold(c);
    p += 1;
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        if p >= pattern.len() {
            // Unterminated class: Redis treats the end of the pattern as its end.
            break;
        }
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            p += 1;
            // Escaped class members compare exactly, even with nocase (as in Redis).
            if pattern[p] == raw {
                matched = true;
            }
        } else if pattern[p] == b']' {
            break;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' {
            let (mut lo, mut hi) = (pattern[p], pattern[p + 2]);
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            let (lo, hi) = (fold(lo), fold(hi));
            if c >= lo && c <= hi {
                matched = true;
            }
            p += 2;
        } else if fold(pattern[p]) == c {
            matched = true;
        }
        p += 1;
    }
    // Past the closing ']' (or the end of the pattern).
    let next = (p + 1).min(pattern.len());
    (matched != negate, next)
}

#[cfg(test)]
mod tests {
    fn m(p: &[u8], s: &[u8]) -> bool {
        super::glob_match(p, s, false)
    }

    #[test]
    fn basics() {
        assert!(!m(b"*", b""));
        assert!(m(b"", b""));
        assert!(m(b"*", b"anything"));
        assert!(m(b"h?llo", b"hello"));
        assert!(!m(b"h?llo", b"hllo"));
        assert!(m(b"h*llo", b"heeeello"));
        assert!(m(b"h[ae]llo", b"hallo"));
        assert!(!m(b"h[ae]llo", b"hillo"));
        assert!(m(b"h[^e]llo", b"hallo"));
        assert!(!m(b"h[^e]llo", b"hello"));
        assert!(m(b"h[a-b]llo", b"hbllo"));
        assert!(m(b"h[b-a]llo", b"hbllo"));
        assert!(m(b"\\*", b"*"));
        assert!(!m(b"\\*", b"a"));
        assert!(m(b"a\\", b"a\\"));
        assert!(m(b"user:*:name", b"user:42:name"));
        assert!(!m(b"user:*:name", b"user:42:names"));
        assert!(m(b"*a*b", b"xxaxxb"));
        assert!(!m(b"*a*b", b"xxaxxc"));
        assert!(m(b"[abc", b"b"));
        assert!(!m(b"HELLO", b"hello"));
        assert!(crate::glob::glob_match(b"HE*O", b"hello", true));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let s = vec![b'a'; 10_000];
        let mut pat = Vec::new();
        for _ in 0..50 {
            pat.extend_from_slice(b"*a");
        }
        pat.push(b'b');
        assert!(!m(&pat, &s));
    }
}
