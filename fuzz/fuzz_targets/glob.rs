//! Fuzzes the glob matcher used by KEYS/SCAN MATCH: no panic, and bounded work for any
//! pattern (the matcher is O(pattern × string), so this also catches accidental exponential
//! backtracking as a timeout).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cut = data[0] as usize % data.len();
    let (pattern, s) = data[1..].split_at(cut.min(data.len() - 1));
    let a = store::glob::glob_match(pattern, s, false);
    let b = store::glob::glob_match(pattern, s, true);
    // Without character classes, folding case can only add matches. (Classes are exempt:
    // Redis folds the range bounds and the byte separately, so `[`--]` matches 'C' but not
    // without case.)
    if a && !pattern.contains(&b'[') {
        assert!(b, "a case-sensitive match must also match without case");
    }
});
