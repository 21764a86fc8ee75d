//! systemd's notification protocol (sd_notify): datagrams like `READY=1` sent to the socket
//! named by `$NOTIFY_SOCKET`. Written here in a few lines rather than pulling in libsystemd.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use log::debug;

pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
}

impl Notifier {
    /// The notifier systemd asked for, if any. `@name` is an abstract socket.
    pub fn from_env() -> io::Result<Option<Notifier>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let address = match path.as_encoded_bytes().strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(&path)?,
        };
        let socket = UnixDatagram::unbound()?;
        // A full queue at PID 1 must not stall the prober, which reports every line.
        socket.set_nonblocking(true)?;
        Ok(Some(Notifier { socket, address }))
    }

    /// Sends one state change; systemd is told, the daemon does not depend on it (a message
    /// that would block is dropped).
    pub fn send(&self, state: &str) {
        if let Err(err) = self.socket.send_to_addr(state.as_bytes(), &self.address) {
            debug!("sd_notify {state:?}: {err}");
        }
    }
}

/// The shortest watchdog ping interval honoured: shorter would spin the watchdog thread.
pub const MIN_WATCHDOG_INTERVAL: Duration = Duration::from_millis(10);

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is meant for this
/// process (`WATCHDOG_PID` absent or ours).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if pid.is_some_and(|pid| pid.parse() != Ok(own_pid)) {
        return None;
    }
    let usec: u64 = usec?.parse().ok().filter(|&usec| usec > 0)?;
    Some(Duration::from_micros(usec / 2).max(MIN_WATCHDOG_INTERVAL))
}

/// Decides, at each watchdog tick, whether the watched loop turned since the last tick.
#[derive(Default)]
pub struct Liveness {
    last: Option<u64>,
}

impl Liveness {
    /// `beats` is the loop's counter now, or `None` when there is no loop to watch.
    pub fn turned(&mut self, beats: Option<u64>) -> bool {
        let Some(beats) = beats else { return true };
        let turned = self.last != Some(beats);
        self.last = Some(beats);
        turned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_needs_the_counter_to_move_between_ticks() {
        let mut liveness = Liveness::default();
        assert!(liveness.turned(Some(5)), "the first tick sees a fresh counter");
        assert!(!liveness.turned(Some(5)), "a stalled loop withholds the ping");
        assert!(liveness.turned(Some(9)));
        assert!(liveness.turned(None), "nothing to watch: always alive");
    }

    #[test]
    fn watchdog_pings_at_half_the_timeout_for_this_process_only() {
        let cases = [
            (Some("30000000"), None, Some(Duration::from_secs(15))),
            (Some("30000000"), Some("42"), Some(Duration::from_secs(15))),
            (Some("30000000"), Some("43"), None),
            (Some("0"), None, None),
            (Some("1"), None, Some(MIN_WATCHDOG_INTERVAL)),
            (Some("soon"), None, None),
            (None, None, None),
        ];
        for (usec, pid, expected) in cases {
            assert_eq!(watchdog_interval(usec, pid, 42), expected, "{usec:?} {pid:?}");
        }
    }

    #[test]
    fn sends_to_a_listening_socket() {
        let dir = std::env::temp_dir().join(format!("latency-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            address: SocketAddr::from_pathname(&path).unwrap(),
        };
        notifier.send("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
