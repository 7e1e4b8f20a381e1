//! The differential test: every case file in `tests/diff/` played against
//! Redoubt and redis-server, replies compared byte for byte.
//!
//! `DIFF_PEER=redis` swaps Redoubt for a second redis-server; `DIFF_FILTER`
//! selects case files by name; see `tests/diff/README.md`.

use redoubt_tests::{run_case_files, Peer};

/// Redoubt (or the peer named by `DIFF_PEER`) against redis-server.
#[test]
fn case_files_match_redis() {
    run_case_files(Peer::from_env());
}

/// redis-server against redis-server: catches case files whose replies are
/// not deterministic (time, randomness, server identity) without `@skip-reply`.
/// Run with `cargo test -p redoubt-tests -- --ignored`.
#[test]
#[ignore = "validates the case files themselves; needs only redis-server"]
fn case_files_are_deterministic_on_redis() {
    run_case_files(Peer::Redis);
}
