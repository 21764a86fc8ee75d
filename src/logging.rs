//! Log lines on stderr: one event a line. Under systemd each line starts with its syslog
//! priority (`<4>`), so `journalctl -p warning` works; in a terminal, with local time and level.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use log::Level;

use crate::clock;

/// The `<N>` prefix journald reads as the priority of a line (sd-daemon(3)).
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// True when stderr is the stream systemd connected to the journal (`$JOURNAL_STREAM` names
/// its device and inode), not merely inherited by a child the service started.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream.to_string_lossy() == format!("{}:{}", stderr.dev(), stderr.ino())
}

/// Installs the logger; `RUST_LOG` sets the level, `info` by default.
pub fn init() {
    let journal = stderr_is_journal();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |out, record| {
            if journal {
                writeln!(out, "<{}>{}", syslog_priority(record.level()), record.args())
            } else {
                let t = clock::local(SystemTime::now());
                writeln!(
                    out,
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {:<5} {}",
                    t.year,
                    t.month,
                    t.day,
                    t.hour,
                    t.minute,
                    t.second,
                    record.level(),
                    record.args()
                )
            }
        })
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_syslog() {
        let cases =
            [(Level::Error, 3), (Level::Warn, 4), (Level::Info, 6), (Level::Debug, 7), (Level::Trace, 7)];
        for (level, priority) in cases {
            assert_eq!(syslog_priority(level), priority);
        }
    }
}
