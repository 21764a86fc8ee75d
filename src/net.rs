//! The ICMP socket behind a small trait, so the prober can run against the kernel or a script.
//! All `unsafe` for sockets lives in `linux.rs`.

pub mod linux;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::packet::{Family, Framing};

/// Which kind of ICMP socket the kernel granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_RAW`: needs CAP_NET_RAW, sees every ICMP packet on the host with its IP header.
    Raw,
    /// `SOCK_DGRAM` "ping socket": allowed by `net.ipv4.ping_group_range`; the kernel picks
    /// the identifier and delivers only replies to it, without IP header.
    Datagram,
}

impl SocketKind {
    /// How a socket of this kind and `family` hands over what it received.
    pub fn framing(self, family: Family) -> Framing {
        match (self, family) {
            (SocketKind::Raw, Family::V4) => Framing::WithIpHeader,
            (SocketKind::Datagram, Family::V4) => Framing::IcmpOnly,
            // ICMPv6 sockets of both kinds deliver the message without its IPv6 header.
            (_, Family::V6) => Framing::Icmpv6,
        }
    }
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketKind::Raw => "raw",
            SocketKind::Datagram => "datagram",
        })
    }
}

/// One received packet: its length in the caller's buffer, sender, arrival time, and the
/// kind of socket it came on (its family is the sender's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub len: usize,
    pub source: IpAddr,
    pub at: Instant,
    pub kind: SocketKind,
}

/// An ICMP error about one of our requests, read from the socket's error queue. Datagram
/// sockets learn of errors only this way (`IP_RECVERR`); raw sockets receive them as packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedError {
    /// Length of the returned request in the caller's buffer, from its ICMP header on.
    pub len: usize,
    pub icmp_type: u8,
    pub code: u8,
    /// The four bytes after the error's checksum (`ee_info`): the MTU of an ICMPv6 packet
    /// too big.
    pub info: u32,
    /// Where the request was sent.
    pub destination: IpAddr,
    /// Who sent the error: the target, or a router on the way.
    pub reporter: IpAddr,
}

/// What one `recv` produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Packet(Arrival),
    QueuedError(QueuedError),
}

/// Interrupts a `recv` in progress from another thread.
pub trait Wake: Send + Sync {
    fn wake(&self);
}

/// The daemon's ICMP sockets, at most one per address family, as one thing to send on,
/// read from and wait on.
pub trait IcmpSocket: Send {
    /// The kind of socket open for `family`, if one is.
    fn kind(&self, family: Family) -> Option<SocketKind>;
    /// Sends `packet` to `target` (`scope_id`: the interface of a link-local IPv6 address, else
    /// 0); returns the monotonic time taken just before the send.
    fn send_to(&mut self, packet: &[u8], target: IpAddr, scope_id: u32) -> Result<Instant, NetError>;
    /// The next packet or queued error already waiting on any socket, if any. Never waits,
    /// and never consumes a wake-up: only `wait` does.
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, NetError>;
    /// Sleeps until a packet or queued error may be waiting, a `Wake` arrives, or `timeout`
    /// passes, whichever is first; consumes the wake-ups that arrived before it returns.
    fn wait(&mut self, timeout: Duration) -> Result<(), NetError>;
    fn waker(&self) -> Arc<dyn Wake>;
}

/// A socket operation that failed, with what to do about it.
#[derive(Debug)]
pub enum NetError {
    /// Neither socket kind could be opened. `range` is `net.ipv4.ping_group_range` as read
    /// then, if it could be.
    Open {
        family: Family,
        raw: Errno,
        datagram: Errno,
        gid: u32,
        range: Option<PingGroupRange>,
    },
    Setup {
        operation: &'static str,
        errno: Errno,
    },
    SendTo {
        target: IpAddr,
        errno: Errno,
    },
    /// No socket of this family could be opened at start.
    NoSocket {
        family: Family,
    },
    Recv(Errno),
    Wait(Errno),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Open { family, raw, datagram, gid, range } => {
                write!(
                    f,
                    "cannot open an {} socket (raw: {}; datagram: {}): run with CAP_NET_RAW \
                     (AmbientCapabilities=CAP_NET_RAW in the unit, or setcap cap_net_raw+p on the \
                     binary), or ",
                    family.protocol(),
                    raw.desc(),
                    datagram.desc()
                )?;
                match range {
                    Some(range) if range.widened_to(*gid) == *range => write!(
                        f,
                        "find what else refused the ping socket: group {gid} is already in \
                         net.ipv4.ping_group_range ('{range}')"
                    ),
                    Some(range) => write!(
                        f,
                        "let group {gid} use ping sockets too: \
                         sysctl -w net.ipv4.ping_group_range='{}' (now '{range}')",
                        range.widened_to(*gid)
                    ),
                    None => write!(
                        f,
                        "let group {gid} use ping sockets: widen net.ipv4.ping_group_range to \
                         include {gid} (its value could not be read)"
                    ),
                }
            }
            NetError::Setup { operation, errno } => write!(f, "{operation}: {}", errno.desc()),
            NetError::SendTo { target, errno } => write!(f, "sendto {target}: {}", errno.desc()),
            NetError::NoSocket { family } => write!(
                f,
                "no {} socket: none could be opened at start (see the log then); restart the daemon once it can be",
                family.protocol()
            ),
            NetError::Recv(errno) => write!(f, "recvmsg: {}", errno.desc()),
            NetError::Wait(errno) => write!(f, "ppoll on the ICMP sockets: {}", errno.desc()),
        }
    }
}

impl std::error::Error for NetError {}

/// The groups `net.ipv4.ping_group_range` lets open datagram ICMP sockets, both ends
/// included. A low end above the high one (the kernel's default `1 0`) lets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingGroupRange {
    pub low: u32,
    pub high: u32,
}

impl PingGroupRange {
    /// Reads the sysctl's text: two group ids separated by whitespace.
    pub fn parse(text: &str) -> Option<PingGroupRange> {
        let mut ids = text.split_whitespace().map(|id| id.parse::<u32>().ok());
        match (ids.next(), ids.next(), ids.next()) {
            (Some(Some(low)), Some(Some(high)), None) => Some(PingGroupRange { low, high }),
            _ => None,
        }
    }

    /// The range that also lets `gid` in. Stretched, not replaced: the groups it let in
    /// (other users' `ping`, say) keep their access.
    pub fn widened_to(self, gid: u32) -> PingGroupRange {
        if self.low > self.high {
            return PingGroupRange { low: gid, high: gid };
        }
        PingGroupRange { low: self.low.min(gid), high: self.high.max(gid) }
    }
}

impl fmt::Display for PingGroupRange {
    /// As the sysctl is written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.low, self.high)
    }
}

/// When a packet really arrived, on the monotonic clock. The kernel stamps arrival with the
/// wall clock (`SO_TIMESTAMPNS`); the time it then spent queued is measured against the wall
/// clock read right after `recvmsg`, and taken off the monotonic reading made at that moment.
/// A stamp in the future or more than a second old means the wall clock stepped: fall back
/// to the user-space reading rather than report a wrong round trip.
pub fn arrival_time(
    kernel_wall: Option<Duration>,
    after_wall: Duration,
    after_monotonic: Instant,
) -> Instant {
    let queued = kernel_wall.and_then(|stamp| after_wall.checked_sub(stamp));
    match queued {
        Some(queued) if queued < Duration::from_secs(1) => {
            after_monotonic.checked_sub(queued).unwrap_or(after_monotonic)
        }
        _ => after_monotonic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_subtracts_queueing_measured_on_the_wall_clock() {
        let mono = Instant::now();
        let wall = Duration::from_secs(1_700_000_000);
        let cases = [
            (Some(wall - Duration::from_micros(40)), mono - Duration::from_micros(40)),
            (Some(wall), mono),
            (None, mono),
            (Some(wall + Duration::from_millis(5)), mono),
            (Some(wall - Duration::from_secs(3)), mono),
        ];
        for (kernel, expected) in cases {
            assert_eq!(arrival_time(kernel, wall, mono), expected, "{kernel:?}");
        }
    }

    fn range(low: u32, high: u32) -> PingGroupRange {
        PingGroupRange { low, high }
    }

    #[test]
    fn ping_group_range_is_read_as_the_kernel_writes_it() {
        let cases = [
            ("1\t0\n", Some(range(1, 0))),
            ("0\t2147483647\n", Some(range(0, 2147483647))),
            ("100 200", Some(range(100, 200))),
            ("", None),
            ("1", None),
            ("1 2 3", None),
            ("-1 0", None),
            ("a b", None),
            ("0 4294967296", None),
        ];
        for (text, expected) in cases {
            assert_eq!(PingGroupRange::parse(text), expected, "{text:?}");
        }
    }

    #[test]
    fn ping_group_range_widens_to_the_group_and_keeps_the_others() {
        let cases = [
            // Disabled (the kernel's default, or any low above high): the group alone.
            (range(1, 0), 1000, range(1000, 1000)),
            (range(1, 0), 0, range(0, 0)),
            (range(500, 100), 300, range(300, 300)),
            // Below, above, inside, at either end.
            (range(100, 200), 50, range(50, 200)),
            (range(100, 200), 65534, range(100, 65534)),
            (range(100, 200), 150, range(100, 200)),
            (range(100, 200), 100, range(100, 200)),
            (range(100, 200), 200, range(100, 200)),
            (range(7, 7), 8, range(7, 8)),
            (range(0, 2147483647), 4294967294, range(0, 4294967294)),
        ];
        for (current, gid, expected) in cases {
            assert_eq!(current.widened_to(gid), expected, "{current} with {gid}");
        }
    }

    #[test]
    fn open_error_names_the_capability_and_the_sysctl() {
        let open = |range| NetError::Open {
            family: Family::V4,
            raw: Errno::EPERM,
            datagram: Errno::EACCES,
            gid: 1000,
            range,
        };
        let cases = [
            (Some(range(1, 0)), "ping_group_range='1000 1000' (now '1 0')"),
            (Some(range(0, 999)), "ping_group_range='0 1000' (now '0 999')"),
            (Some(range(2000, 3000)), "ping_group_range='1000 3000' (now '2000 3000')"),
            (Some(range(0, 2000)), "group 1000 is already in net.ipv4.ping_group_range ('0 2000')"),
            (None, "widen net.ipv4.ping_group_range to include 1000 (its value could not be read)"),
        ];
        for (current, hint) in cases {
            let text = open(current).to_string();
            assert!(text.contains("CAP_NET_RAW"), "{text}");
            assert!(text.contains(hint), "{current:?}: {text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }
}
