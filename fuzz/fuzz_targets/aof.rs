//! Fuzzes the append-only log's readers: a manifest and an incremental file of any bytes
//! must parse or end in an error (a torn tail or damage at an offset), never a panic, a hang
//! or an unbounded allocation. A file that reads cleanly must read the same when re-encoded,
//! and every prefix of it must read as whole commands plus at most a torn tail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use persist::aof::{check_incr, encode_command, Commands, Manifest, ReadError};

fn read_all(data: &[u8]) -> (Vec<Vec<Vec<u8>>>, Option<ReadError>) {
    let mut r = Commands::new(data);
    let mut out = Vec::new();
    loop {
        match r.next_unit() {
            Ok(Some(u)) => out.extend(u.commands),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some((&mode, rest)) = data.split_first() {
        if mode & 1 == 0 {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(m) = Manifest::parse(text) {
                    assert_eq!(Manifest::parse(&m.render()).expect("a rendered manifest parses"), m);
                }
            }
            return;
        }
        let (cmds, err) = read_all(rest);
        let check = check_incr(rest, rest.len() as u64);
        assert!(check.valid <= rest.len() as u64);
        if err.is_none() {
            assert!(check.problem.is_none());
            let mut again = Vec::new();
            for c in &cmds {
                let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                encode_command(&mut again, &refs);
            }
            let (back, e2) = read_all(&again);
            assert!(e2.is_none());
            assert_eq!(back, cmds);
            // Every cut of a clean file is whole commands and at most a torn tail.
            let cut = (mode as usize >> 1) % (rest.len() + 1);
            match read_all(&rest[..cut]).1 {
                None | Some(ReadError::Torn { .. }) => {}
                Some(e) => panic!("a prefix of a clean file is damaged: {e}"),
            }
        }
    }
});
