//! Fuzzes the request decoder: any byte string, fed whole and in random-sized pieces, must
//! decode without panicking, must never report more bytes consumed than it was given, and
//! must agree with itself however the input is split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resp::{parse_command, Limits, Parsed};

/// Decodes commands from `input` delivered in chunks of the given sizes, the way a
/// connection does; returns the argument lists decoded and whether an error stopped it.
fn run(input: &[u8], chunks: &[usize], authenticated: bool) -> (Vec<Vec<Vec<u8>>>, bool) {
    let limits = Limits { max_bulk_len: 1 << 20, authenticated };
    let mut buf: Vec<u8> = Vec::new();
    let mut ranges = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut chunk_iter = chunks.iter().cycle();
    while fed < input.len() {
        let n = (*chunk_iter.next().unwrap_or(&1)).clamp(1, input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        loop {
            if buf.is_empty() {
                break;
            }
            match parse_command(&buf, &limits, &mut ranges) {
                Ok(Parsed::Incomplete { need }) => {
                    assert!(need > buf.len(), "need {need} must exceed buffered {}", buf.len());
                    break;
                }
                Ok(Parsed::Multibulk { consumed }) => {
                    assert!(consumed <= buf.len() && consumed > 0);
                    out.push(ranges.iter().map(|r| buf[r.clone()].to_vec()).collect());
                    buf.drain(..consumed);
                }
                Ok(Parsed::Inline { consumed, args }) => {
                    assert!(consumed <= buf.len() && consumed > 0);
                    out.push(args);
                    buf.drain(..consumed);
                }
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = (data[0] as usize % 7) + 1;
    let input = &data[1..];
    let whole = run(input, &[usize::MAX], true);
    let pieces = run(input, &[split, 1, 3], true);
    assert_eq!(whole, pieces, "decoding depends on how the input is split");
    let _ = run(input, &[split], false);
});
