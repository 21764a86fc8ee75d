//! ICMP sockets on Linux through nix/libc. The only socket code with `unsafe` in the crate.
#![allow(unsafe_code)]

use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, RecvMsg, SockFlag, SockProtocol, SockType, SockaddrIn,
    recvmsg, sendto, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeSpec;

use super::{Arrival, IcmpSocket, NetError, QueuedError, Received, SocketKind, Wake, arrival_time};
use crate::packet::icmp;

/// `<linux/icmp.h>`: a raw-socket option holding a bitmask of ICMP types to drop.
const SOL_RAW: libc::c_int = 255;
const ICMP_FILTER: libc::c_int = 1;

pub struct LinuxSocket {
    fd: OwnedFd,
    kind: SocketKind,
    wake: Arc<EventWake>,
}

struct EventWake(EventFd);

impl Wake for EventWake {
    fn wake(&self) {
        // A full counter (EAGAIN) already means "woken".
        let _ = self.0.write(1);
    }
}

impl LinuxSocket {
    /// Opens a raw ICMP socket, or the datagram kind when raw sockets are not permitted.
    pub fn open() -> Result<Self, NetError> {
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let (fd, kind) = match socket(AddressFamily::Inet, SockType::Raw, flags, SockProtocol::Icmp) {
            Ok(fd) => (fd, SocketKind::Raw),
            Err(raw @ (Errno::EPERM | Errno::EACCES)) => {
                match socket(AddressFamily::Inet, SockType::Datagram, flags, SockProtocol::Icmp) {
                    Ok(fd) => (fd, SocketKind::Datagram),
                    Err(datagram) => {
                        let gid = nix::unistd::getegid().as_raw();
                        return Err(NetError::Open { raw, datagram, gid, range: ping_group_range() });
                    }
                }
            }
            Err(errno) => return Err(NetError::Setup { operation: "socket(AF_INET, SOCK_RAW)", errno }),
        };
        match kind {
            SocketKind::Raw => install_icmp_filter(&fd)?,
            // Ping sockets hear of ICMP errors only through their error queue.
            SocketKind::Datagram => setsockopt(&fd, sockopt::Ipv4RecvErr, &true)
                .map_err(|errno| NetError::Setup { operation: "setsockopt IP_RECVERR", errno })?,
        }
        setsockopt(&fd, sockopt::ReceiveTimestampns, &true)
            .map_err(|errno| NetError::Setup { operation: "setsockopt SO_TIMESTAMPNS", errno })?;
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|errno| NetError::Setup { operation: "eventfd", errno })?;
        Ok(LinuxSocket { fd, kind, wake: Arc::new(EventWake(wake)) })
    }

    /// The next ICMP error in the error queue. Raw sockets receive errors as packets instead.
    fn try_recv_queued_error(&self, buf: &mut [u8]) -> Result<Option<QueuedError>, NetError> {
        if self.kind != SocketKind::Datagram {
            return Ok(None);
        }
        loop {
            let mut iov = [IoSliceMut::new(buf)];
            let mut control = nix::cmsg_space!(TimeSpec, libc::sock_extended_err, libc::sockaddr_in);
            let Some(message) = self.recv_now(&mut iov, &mut control, MsgFlags::MSG_ERRQUEUE)? else {
                return Ok(None);
            };
            let icmp = message.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|cmsg| match cmsg {
                    ControlMessageOwned::Ipv4RecvErr(error, offender)
                        if error.ee_origin == libc::SO_EE_ORIGIN_ICMP =>
                    {
                        Some((error, offender))
                    }
                    _ => None,
                })
            });
            // Errors raised on this host were already returned by the send that caused them.
            let Some((error, offender)) = icmp else { continue };
            let destination = message.address.map_or(Ipv4Addr::UNSPECIFIED, |a| *SocketAddrV4::from(a).ip());
            let reporter =
                offender.map_or(Ipv4Addr::UNSPECIFIED, |a| Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)));
            return Ok(Some(QueuedError {
                len: message.bytes.min(buf.len()),
                icmp_type: error.ee_type,
                code: error.ee_code,
                info: error.ee_info,
                destination,
                reporter,
            }));
        }
    }

    /// One `recvmsg` that does not wait: `None` when nothing is queued.
    fn recv_now<'a, 'outer, 'inner>(
        &self,
        iov: &'outer mut [IoSliceMut<'inner>],
        control: &'a mut [u8],
        flags: MsgFlags,
    ) -> Result<Option<RecvMsg<'a, 'outer, SockaddrIn>>, NetError> {
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
        let source = message.address.map_or(Ipv4Addr::UNSPECIFIED, |a| *SocketAddrV4::from(a).ip());
        // MSG_TRUNC reports the full length; a packet larger than the buffer is cut to it.
        let len = message.bytes.min(buf.len());
        Ok(Some(Arrival { len, source, at: arrival_time(kernel_wall, after_wall, after_monotonic) }))
    }
}

/// `net.ipv4.ping_group_range` in this network namespace, for the hint when no socket opens.
fn ping_group_range() -> Option<super::PingGroupRange> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").ok()?;
    super::PingGroupRange::parse(&text)
}

/// Lets through only what the prober reads: echo replies and the errors that quote a request.
fn install_icmp_filter(fd: &OwnedFd) -> Result<(), NetError> {
    let wanted =
        [icmp::ECHO_REPLY, icmp::DESTINATION_UNREACHABLE, icmp::TIME_EXCEEDED, icmp::PARAMETER_PROBLEM];
    let blocked: u32 = !wanted.iter().fold(0u32, |mask, kind| mask | 1 << kind);
    // SAFETY: `blocked` outlives the call and its size is passed; the kernel copies it.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_RAW,
            ICMP_FILTER,
            (&blocked as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    Errno::result(result)
        .map(drop)
        .map_err(|errno| NetError::Setup { operation: "setsockopt ICMP_FILTER", errno })
}

impl IcmpSocket for LinuxSocket {
    fn kind(&self) -> SocketKind {
        self.kind
    }

    fn send_to(&mut self, packet: &[u8], target: Ipv4Addr) -> Result<Instant, NetError> {
        let address = SockaddrIn::from(SocketAddrV4::new(target, 0));
        let sent = Instant::now();
        match sendto(self.fd.as_raw_fd(), packet, &address, MsgFlags::empty()) {
            Ok(_) => Ok(sent),
            Err(errno) => Err(NetError::SendTo { target, errno }),
        }
    }

    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<Received>, NetError> {
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

    fn wait(&mut self, timeout: Duration) -> Result<(), NetError> {
        let mut fds = [
            PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.wake.0.as_fd(), PollFlags::POLLIN),
        ];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(timeout)), None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => return Err(NetError::Wait(errno)),
        }
        if fds[1].any().unwrap_or(false) {
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
