//! The server log, in Redis's line format: `pid:role dd Mon yyyy hh:mm:ss.mmm <level> text`.
//!
//! Level characters are Redis's: `.` debug, `-` verbose, `*` notice, `#` warning. Lines go to
//! the `logfile` (or standard output when it is empty); writes are whole lines under a lock, so
//! lines from different threads never interleave.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// Log levels, least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Verbose = 1,
    Notice = 2,
    Warning = 3,
}

impl Level {
    pub fn from_name(name: &str) -> Level {
        match name {
            "debug" => Level::Debug,
            "verbose" => Level::Verbose,
            "warning" => Level::Warning,
            _ => Level::Notice,
        }
    }

    fn mark(self) -> char {
        match self {
            Level::Debug => '.',
            Level::Verbose => '-',
            Level::Notice => '*',
            Level::Warning => '#',
        }
    }
}

static MIN_LEVEL: AtomicU8 = AtomicU8::new(Level::Notice as u8);
static SINK: OnceLock<Mutex<Box<dyn Write + Send>>> = OnceLock::new();

/// Sets where log lines go (`""` for standard output) and the minimum level.
pub fn init(logfile: &str, level: Level) -> std::io::Result<()> {
    set_level(level);
    let sink: Box<dyn Write + Send> = if logfile.is_empty() {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::fs::OpenOptions::new().create(true).append(true).open(logfile)?)
    };
    let _ = SINK.set(Mutex::new(sink));
    Ok(())
}

/// Changes the minimum level (CONFIG SET loglevel).
pub fn set_level(level: Level) {
    MIN_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Writes one log line if `level` is enabled.
pub fn log(level: Level, msg: std::fmt::Arguments<'_>) {
    if (level as u8) < MIN_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let line = format!("{}:M {} {} {}\n", std::process::id(), format_time(now.as_millis() as i64), level.mark(), msg);
    match SINK.get() {
        Some(sink) => {
            let mut w = sink.lock();
            let _ = w.write_all(line.as_bytes());
            let _ = w.flush();
        }
        None => eprint!("{line}"),
    }
}

/// `23 Nov 2026 14:50:06.123` for a unix time in milliseconds (UTC).
pub fn format_time(ms: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = guard::time::civil_from_days(days);
    format!(
        "{d:02} {} {y} {:02}:{:02}:{:02}.{:03}",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[macro_export]
macro_rules! log_notice { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Notice, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_warning { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_verbose { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Verbose, format_args!($($t)*)) } }

#[cfg(test)]
mod tests {
    #[test]
    fn time_format() {
        assert_eq!(super::format_time(0), "01 Jan 1970 00:00:00.000");
        assert_eq!(super::format_time(1_795_445_406_123), "23 Nov 2026 14:50:06.123");
    }
}
