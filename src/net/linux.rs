//! ICMP sockets on Linux through nix/libc, one per address family, and the eventfd that wakes
//! a wait on them. The only socket code with `unsafe` in the crate.
#![allow(unsafe_code)]

use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, RecvMsg, SockFlag, SockProtocol, SockType, SockaddrIn,
    SockaddrIn6, SockaddrStorage, recvmsg, sendto, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeSpec;

use super::{Arrival, IcmpSocket, NetError, QueuedError, Received, SocketKind, Wake, arrival_time};
use crate::packet::{Family, icmp, icmpv6};

/// `<linux/icmp.h>`: a raw-socket option holding a bitmask of ICMP types to drop.
const SOL_RAW: libc::c_int = 255;
const ICMP_FILTER: libc::c_int = 1;
/// `<netinet/icmp6.h>`: the same for ICMPv6, 256 bits, a set bit blocks its type.
const ICMP6_FILTER: libc::c_int = 1;

/// One open ICMP socket.
struct Socket {
    fd: OwnedFd,
    kind: SocketKind,
    family: Family,
}

/// The ICMP sockets of the daemon, at most one per family, and what wakes a wait on them.
pub struct LinuxSocket {
    sockets: Vec<Socket>,
    /// Which socket `try_recv` reads first, taking turns so one family's flood cannot starve
    /// the other's replies.
    first: usize,
    wake: Arc<EventWake>,
}

/// What opening each family's socket gave: its kind, or why there is none.
pub type Opened = Vec<(Family, Result<SocketKind, NetError>)>;

struct EventWake(EventFd);

impl Wake for EventWake {
    fn wake(&self) {
        // A full counter (EAGAIN) already means "woken".
        let _ = self.0.write(1);
    }
}

impl LinuxSocket {
    /// Opens a socket for each family that allows one: raw, or the datagram kind when raw
    /// sockets are not permitted. Each family's result comes back, the error for a family
    /// that could not be opened: whether that matters depends on the targets.
    pub fn open(families: &[Family]) -> Result<(Self, Opened), NetError> {
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|errno| NetError::Setup { operation: "eventfd", errno })?;
        let mut sockets = Vec::new();
        let mut outcomes = Vec::new();
        for &family in families {
            match Socket::open(family) {
                Ok(socket) => {
                    outcomes.push((family, Ok(socket.kind)));
                    sockets.push(socket);
                }
                Err(err) => outcomes.push((family, Err(err))),
            }
        }
        Ok((LinuxSocket { sockets, first: 0, wake: Arc::new(EventWake(wake)) }, outcomes))
    }

    fn socket(&self, family: Family) -> Option<&Socket> {
        self.sockets.iter().find(|socket| socket.family == family)
    }
}

impl Socket {
    fn open(family: Family) -> Result<Self, NetError> {
        let (fd, kind) = match open_fd(family, SocketKind::Raw) {
            Ok(fd) => (fd, SocketKind::Raw),
            Err(raw @ (Errno::EPERM | Errno::EACCES)) => match open_fd(family, SocketKind::Datagram) {
                Ok(fd) => (fd, SocketKind::Datagram),
                Err(datagram) => {
                    let gid = nix::unistd::getegid().as_raw();
                    return Err(NetError::Open { family, raw, datagram, gid, range: ping_group_range() });
                }
            },
            Err(errno) => {
                let operation = match family {
                    Family::V4 => "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)",
                    Family::V6 => "socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)",
                };
                return Err(NetError::Setup { operation, errno });
            }
        };
        // Ping sockets hear of ICMP errors only through their error queue.
        let recverr = match (kind, family) {
            (SocketKind::Raw, Family::V4) => install_icmp_filter(&fd),
            (SocketKind::Raw, Family::V6) => install_icmp6_filter(&fd),
            (SocketKind::Datagram, Family::V4) => setsockopt(&fd, sockopt::Ipv4RecvErr, &true)
                .map_err(|errno| NetError::Setup { operation: "setsockopt IP_RECVERR", errno }),
            (SocketKind::Datagram, Family::V6) => setsockopt(&fd, sockopt::Ipv6RecvErr, &true)
                .map_err(|errno| NetError::Setup { operation: "setsockopt IPV6_RECVERR", errno }),
        };
        recverr?;
        setsockopt(&fd, sockopt::ReceiveTimestampns, &true)
            .map_err(|errno| NetError::Setup { operation: "setsockopt SO_TIMESTAMPNS", errno })?;
        Ok(Socket { fd, kind, family })
    }

    fn try_recv(&self, buf: &mut [u8]) -> Result<Option<Received>, NetError> {
        if let Some(error) = self.try_recv_queued_error(buf)? {
            return Ok(Some(Received::QueuedError(error)));
        }
        match self.try_recv_packet(buf) {
            Ok(arrival) => Ok(arrival.map(Received::Packet)),
            // With IP_RECVERR, an error queued since the queue was read also fails this
            // recvmsg with its errno; the details wait in the queue.
            Err(err) => {
                self.try_recv_queued_error(buf)?.map(|error| Some(Received::QueuedError(error))).ok_or(err)
            }
        }
    }

    /// The next ICMP error in the error queue. Raw sockets receive errors as packets instead.
    fn try_recv_queued_error(&self, buf: &mut [u8]) -> Result<Option<QueuedError>, NetError> {
        if self.kind != SocketKind::Datagram {
            return Ok(None);
        }
        let buf_len = buf.len();
        loop {
            let mut iov = [IoSliceMut::new(buf)];
            let mut control = nix::cmsg_space!(TimeSpec, libc::sock_extended_err, libc::sockaddr_in6);
            let Some(message) = self.recv_now(&mut iov, &mut control, MsgFlags::MSG_ERRQUEUE)? else {
                return Ok(None);
            };
            let icmp = message.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|cmsg| match cmsg {
                    ControlMessageOwned::Ipv4RecvErr(error, offender)
                        if error.ee_origin == libc::SO_EE_ORIGIN_ICMP =>
                    {
                        let reporter =
                            offender.map(|a| IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))));
                        Some((error, reporter))
                    }
                    ControlMessageOwned::Ipv6RecvErr(error, offender)
                        if error.ee_origin == libc::SO_EE_ORIGIN_ICMP6 =>
                    {
                        let reporter = offender.map(|a| IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)));
                        Some((error, reporter))
                    }
                    _ => None,
                })
            });
            // Errors raised on this host were already returned by the send that caused them.
            let Some((error, reporter)) = icmp else { continue };
            let unspecified = unspecified(self.family);
            return Ok(Some(QueuedError {
                len: message.bytes.min(buf_len),
                icmp_type: error.ee_type,
                code: error.ee_code,
                info: error.ee_info,
                destination: message.address.and_then(|a| ip_of(&a)).unwrap_or(unspecified),
                reporter: reporter.unwrap_or(unspecified),
            }));
        }
    }

    /// One `recvmsg` that does not wait: `None` when nothing is queued.
    fn recv_now<'a, 'outer, 'inner>(
        &self,
        iov: &'outer mut [IoSliceMut<'inner>],
        control: &'a mut [u8],
        flags: MsgFlags,
    ) -> Result<Option<RecvMsg<'a, 'outer, SockaddrStorage>>, NetError> {
        match recvmsg(self.fd.as_raw_fd(), iov, Some(control), flags | MsgFlags::MSG_DONTWAIT) {
            Ok(message) => Ok(Some(message)),
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(None),
            Err(errno) => Err(NetError::Recv(errno)),
        }
    }

    fn try_recv_packet(&self, buf: &mut [u8]) -> Result<Option<Arrival>, NetError> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut control = nix::cmsg_space!(TimeSpec);
        let Some(message) = self.recv_now(&mut iov, &mut control, MsgFlags::MSG_TRUNC)? else {
            return Ok(None);
        };
        let after_monotonic = Instant::now();
        let after_wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let kernel_wall = message.cmsgs().ok().and_then(|mut cmsgs| {
            cmsgs.find_map(|cmsg| match cmsg {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    let secs = u64::try_from(ts.tv_sec()).ok()?;
                    let nanos = u32::try_from(ts.tv_nsec()).ok()?;
                    Some(Duration::new(secs, nanos))
                }
                _ => None,
            })
        });
        let source = message.address.and_then(|a| ip_of(&a)).unwrap_or(unspecified(self.family));
        // MSG_TRUNC reports the full length; a packet larger than the buffer is cut to it.
        let len = message.bytes.min(buf.len());
        let at = arrival_time(kernel_wall, after_wall, after_monotonic);
        Ok(Some(Arrival { len, source, at, kind: self.kind }))
    }
}

/// An ICMP socket of `family` and `kind`, with nothing set on it yet.
fn open_fd(family: Family, kind: SocketKind) -> Result<OwnedFd, Errno> {
    let (domain, protocol) = match family {
        Family::V4 => (AddressFamily::Inet, SockProtocol::Icmp),
        Family::V6 => (AddressFamily::Inet6, SockProtocol::IcmpV6),
    };
    let kind = match kind {
        SocketKind::Raw => SockType::Raw,
        SocketKind::Datagram => SockType::Datagram,
    };
    socket(domain, kind, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, protocol)
}

/// Whether this process may open an ICMP socket of `family` and `kind` (for `latency doctor`,
/// which tries each kind where the daemon stops at the first that opens).
pub fn can_open(family: Family, kind: SocketKind) -> Result<(), Errno> {
    open_fd(family, kind).map(drop)
}

fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn ip_of(address: &SockaddrStorage) -> Option<IpAddr> {
    address
        .as_sockaddr_in()
        .map(|a| IpAddr::V4(*SocketAddrV4::from(*a).ip()))
        .or_else(|| address.as_sockaddr_in6().map(|a| IpAddr::V6(*SocketAddrV6::from(*a).ip())))
}

/// `net.ipv4.ping_group_range` in this network namespace (it governs ICMPv6 ping sockets
/// too), for the hint when no socket opens.
pub fn ping_group_range() -> Option<super::PingGroupRange> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").ok()?;
    super::PingGroupRange::parse(&text)
}

/// Lets through only what the prober reads: echo replies and the errors that quote a request.
fn install_icmp_filter(fd: &OwnedFd) -> Result<(), NetError> {
    let wanted =
        [icmp::ECHO_REPLY, icmp::DESTINATION_UNREACHABLE, icmp::TIME_EXCEEDED, icmp::PARAMETER_PROBLEM];
    let blocked: u32 = !wanted.iter().fold(0u32, |mask, kind| mask | 1 << kind);
    set_raw_option(fd, SOL_RAW, ICMP_FILTER, &blocked, "setsockopt ICMP_FILTER")
}

/// The same for ICMPv6, where the neighbour discovery traffic every host sees is also kept out.
fn install_icmp6_filter(fd: &OwnedFd) -> Result<(), NetError> {
    let wanted = [
        icmpv6::ECHO_REPLY,
        icmpv6::DESTINATION_UNREACHABLE,
        icmpv6::PACKET_TOO_BIG,
        icmpv6::TIME_EXCEEDED,
        icmpv6::PARAMETER_PROBLEM,
    ];
    let mut blocked = [u32::MAX; 8];
    for kind in wanted {
        blocked[usize::from(kind >> 5)] &= !(1 << (kind & 31));
    }
    set_raw_option(fd, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &blocked, "setsockopt ICMP6_FILTER")
}

fn set_raw_option<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    operation: &'static str,
) -> Result<(), NetError> {
    // SAFETY: `value` outlives the call and its size is passed; the kernel copies it.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    Errno::result(result).map(drop).map_err(|errno| NetError::Setup { operation, errno })
}

impl IcmpSocket for LinuxSocket {
    fn kind(&self, family: Family) -> Option<SocketKind> {
        self.socket(family).map(|socket| socket.kind)
    }

    fn send_to(&mut self, packet: &[u8], target: IpAddr, scope_id: u32) -> Result<Instant, NetError> {
        let family = Family::of(target);
        let socket = self.socket(family).ok_or(NetError::NoSocket { family })?;
        let fd = socket.fd.as_raw_fd();
        let sent = Instant::now();
        match target {
            IpAddr::V4(v4) => {
                sendto(fd, packet, &SockaddrIn::from(SocketAddrV4::new(v4, 0)), MsgFlags::empty())
            }
            IpAddr::V6(v6) => sendto(
                fd,
                packet,
                &SockaddrIn6::from(SocketAddrV6::new(v6, 0, 0, scope_id)),
                MsgFlags::empty(),
            ),
        }
        .map(|_| sent)
        .map_err(|errno| NetError::SendTo { target, errno })
    }

    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, NetError> {
        let count = self.sockets.len();
        for turn in 0..count {
            let index = (self.first + turn) % count;
            if let Some(received) = self.sockets[index].try_recv(buf)? {
                self.first = (index + 1) % count;
                return Ok(Some(received));
            }
        }
        Ok(None)
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), NetError> {
        let mut fds: Vec<PollFd> =
            self.sockets.iter().map(|s| PollFd::new(s.fd.as_fd(), PollFlags::POLLIN)).collect();
        fds.push(PollFd::new(self.wake.0.as_fd(), PollFlags::POLLIN));
        match ppoll(&mut fds, Some(TimeSpec::from_duration(timeout)), None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(NetError::Wait(errno)),
        }
        if fds.last().and_then(|fd| fd.any()).unwrap_or(false) {
            // Reset the counter so the next wait blocks again. The caller looks at everything
            // a wake-up announces after this returns (see `Prober::run`).
            let _ = self.wake.0.read();
        }
        Ok(())
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.wake.clone()
    }
}
