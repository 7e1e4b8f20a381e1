//! SLOWLOG: the most recent commands that took longer than `slowlog-log-slower-than`.
//!
//! Entries keep at most 32 arguments and 128 bytes of each, like Redis, so a slow command with
//! a huge argument cannot make the log itself large.

use std::collections::VecDeque;

const MAX_ARGS: usize = 32;
const MAX_ARG_LEN: usize = 128;

/// One slow command.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    pub time_unix: i64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    pub client_addr: String,
    pub client_name: Vec<u8>,
}

/// The slow log ring.
#[derive(Default)]
pub struct Slowlog {
    pub entries: VecDeque<Entry>,
    next_id: u64,
}

impl Slowlog {
    /// Records a command, keeping at most `max_len` entries (newest first).
    pub fn push(
        &mut self,
        argv: &[&[u8]],
        duration_us: u64,
        now_unix: i64,
        addr: String,
        name: Vec<u8>,
        max_len: usize,
    ) {
        let mut args: Vec<Vec<u8>> = Vec::new();
        let shown = argv.len().min(MAX_ARGS);
        for (i, a) in argv.iter().take(shown).enumerate() {
            if i == MAX_ARGS - 1 && argv.len() > MAX_ARGS {
                args.push(format!("... ({} more arguments)", argv.len() - MAX_ARGS + 1).into_bytes());
                break;
            }
            if a.len() > MAX_ARG_LEN {
                let mut v = a[..MAX_ARG_LEN].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
                args.push(v);
            } else {
                args.push(a.to_vec());
            }
        }
        self.entries.push_front(Entry {
            id: self.next_id,
            time_unix: now_unix,
            duration_us,
            args,
            client_addr: addr,
            client_name: name,
        });
        self.next_id += 1;
        self.entries.truncate(max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }
}
