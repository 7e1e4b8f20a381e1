//! Keyspace notification classes (`notify-keyspace-events`): parsing and formatting of the
//! flag letters, as Redis does.

pub use commands::notify::{
    ALL, EVICTED, EXPIRED, GENERIC, HASH, KEYEVENT, KEYSPACE, KEY_MISS, LIST, MODULE, NEW, SET, STREAM, STRING, ZSET,
};

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

/// The stored form of the flags: [`format_flags`], plus `n` after `A` when both are set
/// (Redis's display drops that `n`, although the class stays enabled).
pub fn canonical_flags(flags: u32) -> String {
    let mut s = format_flags(flags);
    if flags & ALL == ALL && flags & NEW != 0 {
        s.insert(1, 'n');
    }
    s
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
