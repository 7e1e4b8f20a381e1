//! Test harness for Redoubt's end-to-end and differential tests.
//!
//! This crate owns everything the tests in `tests/tests/` share:
//! - [`server`]: spawning `redis-server` or `redoubt-server` on a free loopback
//!   port and killing it on drop;
//! - [`conn`]: a blocking raw-TCP client that sends RESP commands and returns
//!   each reply as its exact bytes;
//! - [`resp`]: a small RESP2/RESP3 reply reader and helpers to inspect raw replies;
//! - [`casefile`]: the parser for the differential case files in `tests/diff/*.txt`;
//! - [`runner`]: runs the case files against two servers and reports every difference;
//! - [`dataset`]: a dataset of every type and encoding, and key-by-key comparison;
//! - [`value`]: decoding a raw reply into a value, for tests that look inside it;
//! - [`util`]: helpers for the end-to-end tests (scratch directories, `INFO`
//!   fields, polling with a deadline, bounded child processes, fd limits).

pub mod casefile;
pub mod conn;
pub mod dataset;
pub mod resp;
pub mod runner;
pub mod server;
pub mod util;
pub mod value;

pub use conn::Conn;
pub use runner::{run_case_files, Peer};
pub use server::Server;
