//! Keyspace notification classes (`notify-keyspace-events`): parsing and formatting of the
//! flag letters, as Redis does.

pub const GENERIC: u32 = 1 << 0;
pub const STRING: u32 = 1 << 1;
pub const LIST: u32 = 1 << 2;
pub const SET: u32 = 1 << 3;
pub const HASH: u32 = 1 << 4;
pub const ZSET: u32 = 1 << 5;
pub const EXPIRED: u32 = 1 << 6;
pub const EVICTED: u32 = 1 << 7;
pub const STREAM: u32 = 1 << 8;
pub const MODULE: u32 = 1 << 9;
pub const NEW: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const KEYSPACE: u32 = 1 << 12;
pub const KEYEVENT: u32 = 1 << 13;
/// `A`: every class except key-miss and new-key.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses flag letters; `None` if a letter is unknown.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            't' => STREAM,
            'd' => MODULE,
            'n' => NEW,
            'm' => KEY_MISS,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            _ => return None,
        };
    }
    Some(flags)
}

/// Formats flags the way CONFIG GET shows them.
pub fn format_flags(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}
