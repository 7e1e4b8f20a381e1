//! `redoubt-server`: parses redis-server-style arguments (an optional config file, then
//! `--name value` options), starts the server, and stops it cleanly on SIGTERM/SIGINT or
//! SHUTDOWN. With no arguments it runs with embedded defaults on 127.0.0.1:6379.

use std::process::ExitCode;

use server::config::Config;
use server::{log, log_notice, log_warning};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "Usage: redoubt-server [/path/to/redoubt.conf] [options] [-]
       redoubt-server - (read config from stdin)
       redoubt-server -v or --version
       redoubt-server -h or --help
       redoubt-server check-rdb <file>   (checks a snapshot or a Redis dump.rdb without loading it)
       redoubt-server check-aof [--fix] <dir|manifest|file>
                                         (checks an append-only log; --fix cuts a damaged
                                          incremental file after its last whole command)

Options are configuration directives written as --name value, for example:
       redoubt-server --port 7777
       redoubt-server --port 7777 --replicaof 127.0.0.1 8888
       redoubt-server /etc/redoubt/6379.conf --loglevel verbose
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-v") | Some("--version") => {
            println!(
                "Redoubt server v={} (Redis-compatible {}) bits={} malloc=jemalloc",
                server::VERSION,
                server::REDIS_COMPAT_VERSION,
                usize::BITS
            );
            return ExitCode::SUCCESS;
        }
        Some("-h") | Some("--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("check-rdb") => return check_rdb(&args[1..]),
        Some("check-aof") => return check_aof(&args[1..]),
        _ => {}
    }
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("\n{e}");
            return ExitCode::from(1);
        }
    };
    let settings = server::config::Settings::from_config(&config);
    if let Err(e) = log::init(config.get("logfile"), settings.loglevel) {
        eprintln!("Can't open the log file '{}': {e}", config.get("logfile"));
        return ExitCode::from(1);
    }
    if config.get("daemonize") == "yes" {
        log_warning!("daemonize is not supported: run redoubt-server under a supervisor (systemd, a container runtime) instead; continuing in the foreground");
    }
    let dir = config.get("dir").to_string();
    if !dir.is_empty() {
        if let Err(e) = std::env::set_current_dir(&dir) {
            eprintln!("Can't chdir to '{dir}': {e}");
            return ExitCode::from(1);
        }
    }
    log_notice!(
        "Redoubt {} starting (Redis-compatible {}), pid={}",
        server::VERSION,
        server::REDIS_COMPAT_VERSION,
        std::process::id()
    );
    match config.file.as_ref() {
        Some(path) => log_notice!("Configuration loaded from {}", path.display()),
        None => log_notice!("No config file specified, using the default config. In order to specify a config file use redoubt-server /path/to/redoubt.conf"),
    }
    // Install the signal handlers before accepting connections, so a SIGTERM that arrives
    // right after startup is a clean shutdown rather than the default fatal action.
    let signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
    {
        Ok(s) => Some(s),
        Err(e) => {
            log_warning!("Could not install signal handlers ({e}); stop the server with SHUTDOWN");
            None
        }
    };
    let running = match server::start(config) {
        Ok(r) => r,
        Err(e) => {
            log_warning!("{e}");
            return ExitCode::from(1);
        }
    };
    for addr in running.addrs() {
        log_notice!("Ready to accept connections tcp {addr}");
    }
    if let Some(signals) = signals {
        spawn_signal_watcher(signals, running.shared.clone());
    }
    running.wait();
    log_notice!("Redoubt is now ready to exit, bye bye...");
    ExitCode::SUCCESS
}

/// `check-rdb FILE`: reads the whole file as loading would (every record, every value, the
/// checksum) and reports what it holds, or where and why it is damaged. Exit 0 if sound.
fn check_rdb(args: &[String]) -> ExitCode {
    let [file] = args else {
        eprintln!("Usage: redoubt-server check-rdb <file>");
        return ExitCode::from(2);
    };
    let now = server::unix_ms();
    let (report, failure) = persist::load::check(&persist::disk::OsDisk, std::path::Path::new(file), now);
    println!("{file}: RDB version {}", report.version);
    for (k, v) in &report.aux {
        println!("  aux {k} = {v}");
    }
    for (db, n) in &report.keys {
        println!("  db {db}: {n} keys");
    }
    let types: Vec<String> = report.types.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!("  types: {}", if types.is_empty() { "none".into() } else { types.join(", ") });
    println!("  already expired: {}; FUNCTION libraries: {}", report.expired, report.functions);
    match failure {
        None => {
            println!("OK: {} bytes read; the checksum (when the file has one) matches", report.bytes);
            ExitCode::SUCCESS
        }
        Some(e) => {
            println!("DAMAGED: {e}. The keys above were read before the damage; a server will not start on this file. Restore a good copy.");
            ExitCode::from(1)
        }
    }
}

/// `check-aof [--fix] PATH`: reads an append-only log as loading would.
fn check_aof(args: &[String]) -> ExitCode {
    let fix = args.iter().any(|a| a == "--fix");
    let paths: Vec<&String> = args.iter().filter(|a| *a != "--fix").collect();
    let [path] = paths.as_slice() else {
        eprintln!("Usage: redoubt-server check-aof [--fix] <appendonlydir | manifest | file>");
        return ExitCode::from(2);
    };
    let (report, ok) = server::aof::check_command(std::path::Path::new(path), fix);
    print!("{report}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Turns SIGTERM/SIGINT into a clean shutdown.
fn spawn_signal_watcher(mut signals: signal_hook::iterator::Signals, shared: std::sync::Arc<server::Shared>) {
    use signal_hook::consts::SIGINT;
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        // A failed final save keeps the server running (as Redis does): the data would
        // otherwise be lost. The next signal tries again.
        for sig in signals.forever() {
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            log_warning!("Received {name} scheduling shutdown...");
            if server::persistence::save_before_shutdown(&shared, false, false).is_ok() {
                shared.request_shutdown();
                break;
            }
        }
    });
}
