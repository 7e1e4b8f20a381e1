//! The log writer under injected faults, at every position of each kind: a failed write, a
//! short write (then a full disk), a failed fsync. Whatever happens, the file holds a prefix
//! of the appended commands (a crash between any two writes leaves whole commands and at
//! most a torn tail), and it holds every command the log reported durable (what
//! `appendfsync always` acknowledged). A failed write is retried until it succeeds; after a
//! failed fsync nothing more counts as durable until a rewrite says so.

use std::time::{Duration, Instant};

use persist::aof::{encode_command, Commands, Fsync, Log, ReadError};
use persist::disk::{Disk, Fault, FaultyDisk};

const COMMANDS: usize = 40;

fn command(i: usize) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command(&mut out, &[b"SET", format!("key:{i}").as_bytes(), format!("value:{i}").as_bytes()]);
    out
}

/// The indices of the whole SET commands in the file, in order (SELECTs skipped), and
/// whether anything after them was torn.
fn logged(path: &std::path::Path) -> (Vec<usize>, bool) {
    let bytes = std::fs::read(path).expect("read the log");
    let mut r = Commands::new(&bytes[..]);
    let mut out = Vec::new();
    loop {
        match r.next_command() {
            Ok(Some((_, argv))) if argv[0] == b"SELECT" => {}
            Ok(Some((_, argv))) => {
                let key = String::from_utf8(argv[1].clone()).expect("key");
                out.push(key.trim_start_matches("key:").parse().expect("index"));
            }
            Ok(None) => return (out, false),
            Err(ReadError::Torn { .. }) => return (out, true),
            Err(e) => panic!("the log is damaged: {e}"),
        }
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn every_fault_position_keeps_a_prefix_and_every_durable_command() {
    let dir = std::env::temp_dir().join(format!("persist-log-faults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut cases = 0;
    for fault in [Fault::FailWrite, Fault::ShortWrite, Fault::FailSync] {
        for at in 0.. {
            let disk = FaultyDisk::new(fault, at);
            let path = dir.join(format!("{fault:?}-{at}.aof"));
            let log = Log::new(Fsync::Always, 0);
            log.set_retry_delay(Duration::from_millis(2));
            let writer = log.start(disk.create(&path).expect("create"), 0).expect("writer");
            let mut ends = Vec::new();
            for i in 0..COMMANDS {
                ends.push(log.append(&[(0, &command(i))]));
                log.kick();
                if i % 4 == 0 {
                    // Let the writer take some appends alone, so faults hit different batches.
                    let end = ends[i];
                    wait_for("the writer", || log.written() >= end || log.status().error.is_some());
                }
            }
            let appended = log.appended();
            wait_for("the writer to settle", || {
                let st = log.status();
                log.durable() == appended || st.sync_failed || (fault == Fault::ShortWrite && st.error.is_some())
            });
            let durable = log.durable();
            let (found, _torn) = logged(&path);
            assert_eq!(found, (0..found.len()).collect::<Vec<_>>(), "{fault:?} at {at}: a prefix, in order");
            let acknowledged = ends.iter().filter(|&&e| e <= durable).count();
            assert!(
                found.len() >= acknowledged,
                "{fault:?} at {at}: {acknowledged} commands were durable, the file holds {}",
                found.len()
            );
            let st = log.status();
            match fault {
                Fault::FailWrite => {
                    assert_eq!(durable, appended, "{fault:?} at {at}: the failed write was retried");
                    assert_eq!(found.len(), COMMANDS);
                    if disk.seen() > at {
                        assert_eq!(st.write_errors, 1, "{fault:?} at {at}");
                    }
                }
                Fault::ShortWrite if disk.seen() > at => {
                    assert!(st.error.as_deref().is_some_and(|e| e.contains("No space left")), "{st:?}");
                    assert!(durable < appended, "nothing after the full disk counts as durable");
                }
                Fault::FailSync if disk.seen() > at => {
                    assert!(st.sync_failed, "{fault:?} at {at}");
                    assert!(durable < appended, "a failed fsync freezes the durable offset");
                    // Writing goes on; a rewrite that put everything in a new base releases it.
                    wait_for("the writes", || log.written() == appended);
                    log.recovered(appended);
                    assert_eq!(log.durable(), appended);
                    assert!(!log.status().sync_failed);
                }
                _ => assert_eq!(durable, appended, "{fault:?} at {at}: no fault, all durable"),
            }
            log.stop();
            writer.join().expect("the writer exits");
            cases += 1;
            let _ = std::fs::remove_file(&path);
            if disk.seen() <= at {
                break; // the fault position was never reached: every position is covered
            }
        }
    }
    assert!(cases > 10, "{cases} cases");
    let _ = std::fs::remove_dir_all(&dir);
}
