//! Fuzzes the scripting engine: any script body, with any KEYS and ARGV, run in a fresh
//! sandboxed interpreter as EVAL would (without a keyspace: `redis.call` fails as it does
//! outside a script), must end with a reply or an error, never a panic or an abort.
//!
//! Input: the script body, then optionally `\xff\x00` and one key, then `\xff\x00`-separated
//! arguments. Each run is bounded (about 300,000 Lua instructions, a 64 MiB heap) and runs
//! on a thread with a worker's stack size, so deep recursion overflows where it would in
//! the server.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The separator between the body, the key and the arguments.
const SEP: &[u8] = b"\xff\x00";

/// A worker thread's stack: Rust's default for spawned threads.
const WORKER_STACK: usize = 2 << 20;

fn split(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while let Some(i) = data.windows(SEP.len()).position(|w| w == SEP) {
        parts.push(&data[..i]);
        data = &data[i + SEP.len()..];
    }
    parts.push(data);
    parts
}

fuzz_target!(|data: &[u8]| {
    server::log::set_level(server::log::Level::Warning);
    let data = data.to_vec();
    let run = std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let parts = split(&data);
            let body = parts[0];
            let keys: Vec<&[u8]> = parts.get(1).copied().into_iter().collect();
            let args: Vec<&[u8]> = parts.iter().skip(2).copied().collect();
            if let Ok(reply) = server::lua::run_detached(body, &keys, &args, 300_000) {
                assert!(!reply.is_empty(), "a script's reply is never empty");
            }
        })
        .expect("spawn the script thread");
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
});
