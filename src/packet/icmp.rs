//! ICMP echo request/reply and the error messages that quote an echo request; the types here
//! serve ICMPv6 too (`icmpv6.rs` parses those messages).

use std::fmt;
use std::net::IpAddr;

use super::{Family, PacketError, checksum, icmpv6, ipv4};

pub const ECHO_REPLY: u8 = 0;
pub const DESTINATION_UNREACHABLE: u8 = 3;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;
pub const PARAMETER_PROBLEM: u8 = 12;
/// Type, code, checksum, identifier, sequence.
pub const HEADER_LEN: usize = 8;

/// An echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo<'a> {
    pub identifier: u16,
    pub sequence: u16,
    pub payload: &'a [u8],
}

impl<'a> Echo<'a> {
    /// Appends the echo request of `family` to `out`. An ICMP checksum is filled in; an ICMPv6
    /// one is left zero, for the kernel fills it on raw and datagram ICMPv6 sockets alike (it
    /// covers the source address, which the kernel picks).
    pub fn encode_request(&self, family: Family, out: &mut Vec<u8>) {
        let start = out.len();
        let kind = match family {
            Family::V4 => ECHO_REQUEST,
            Family::V6 => icmpv6::ECHO_REQUEST,
        };
        out.extend_from_slice(&[kind, 0, 0, 0]);
        out.extend_from_slice(&self.identifier.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(self.payload);
        if family == Family::V4 {
            let sum = checksum::internet(&out[start..]);
            out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
        }
    }

    /// The echo in `message`, an echo request or reply at least `HEADER_LEN` long.
    pub(super) fn from_message(message: &'a [u8]) -> Echo<'a> {
        let word = |at: usize| u16::from_be_bytes([message[at], message[at + 1]]);
        Echo { identifier: word(4), sequence: word(6), payload: &message[HEADER_LEN..] }
    }
}

/// Why a router or the target refused the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// ICMP destination unreachable, by code.
    Unreachable(u8),
    TimeExceeded,
    /// ICMP or ICMPv6: the same words serve both.
    ParameterProblem,
    /// ICMPv6 destination unreachable, by code: its codes are not ICMP's.
    Unreachable6(u8),
    /// ICMPv6 packet too big, with the MTU of the link the probe did not fit.
    PacketTooBig(u32),
    /// ICMPv6 time exceeded.
    HopLimitExceeded,
}

impl ErrorKind {
    /// The error an ICMP type and code report; `None` for types that are not errors about a
    /// packet we sent.
    pub fn from_type(kind: u8, code: u8) -> Option<ErrorKind> {
        match kind {
            DESTINATION_UNREACHABLE => Some(ErrorKind::Unreachable(code)),
            TIME_EXCEEDED => Some(ErrorKind::TimeExceeded),
            PARAMETER_PROBLEM => Some(ErrorKind::ParameterProblem),
            _ => None,
        }
    }
}

impl ErrorKind {
    /// A short, stable name for counting errors by kind (statistics, JSON), where the
    /// `Display` text is for people and carries codes and MTUs.
    pub fn label(&self) -> &'static str {
        match self {
            ErrorKind::Unreachable(0) => "network-unreachable",
            ErrorKind::Unreachable(1) => "host-unreachable",
            ErrorKind::Unreachable(2) => "protocol-unreachable",
            ErrorKind::Unreachable(3) | ErrorKind::Unreachable6(4) => "port-unreachable",
            ErrorKind::Unreachable(4) | ErrorKind::PacketTooBig(_) => "packet-too-big",
            ErrorKind::Unreachable(9 | 10 | 13) | ErrorKind::Unreachable6(1 | 5 | 6) => "admin-prohibited",
            ErrorKind::Unreachable6(0) => "no-route",
            ErrorKind::Unreachable6(3) => "address-unreachable",
            ErrorKind::Unreachable(_) | ErrorKind::Unreachable6(_) => "unreachable",
            ErrorKind::TimeExceeded | ErrorKind::HopLimitExceeded => "time-exceeded",
            ErrorKind::ParameterProblem => "parameter-problem",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorKind::Unreachable(0) => "network unreachable",
            ErrorKind::Unreachable(1) => "host unreachable",
            ErrorKind::Unreachable(2) => "protocol unreachable",
            ErrorKind::Unreachable(3) => "port unreachable",
            ErrorKind::Unreachable(4) => "fragmentation needed",
            ErrorKind::Unreachable(9 | 10 | 13) => "administratively prohibited",
            ErrorKind::Unreachable(code) => return write!(f, "destination unreachable (code {code})"),
            ErrorKind::TimeExceeded => "time to live exceeded",
            ErrorKind::ParameterProblem => "parameter problem",
            ErrorKind::Unreachable6(0) => "no route to destination",
            // 5 (source address failed policy) and 6 (reject route) are refusals by policy
            // too; the kernel reports all three as EACCES.
            ErrorKind::Unreachable6(1 | 5 | 6) => "administratively prohibited",
            ErrorKind::Unreachable6(3) => "address unreachable",
            ErrorKind::Unreachable6(4) => "port unreachable",
            ErrorKind::Unreachable6(code) => return write!(f, "destination unreachable (code {code})"),
            ErrorKind::PacketTooBig(mtu) => return write!(f, "packet too big (MTU {mtu})"),
            ErrorKind::HopLimitExceeded => "hop limit exceeded",
        };
        f.write_str(text)
    }
}

/// The echo request quoted inside an ICMP error: enough to tell whether it was ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub destination: IpAddr,
    pub identifier: u16,
    pub sequence: u16,
}

/// An ICMP message as received.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    EchoReply {
        echo: Echo<'a>,
        checksum_valid: bool,
    },
    Error {
        kind: ErrorKind,
        quoted: Quoted,
        checksum_valid: bool,
    },
    /// Any other type, or an error quoting something other than an echo request.
    Other {
        kind: u8,
    },
}

/// Parses an ICMP message (no IP header in front).
pub fn parse(data: &[u8]) -> Result<Message<'_>, PacketError> {
    if data.len() < HEADER_LEN {
        return Err(PacketError::Truncated("ICMP header"));
    }
    let checksum_valid = checksum::is_valid(data);
    let (kind, code) = (data[0], data[1]);
    if kind == ECHO_REPLY {
        return Ok(Message::EchoReply { echo: Echo::from_message(data), checksum_valid });
    }
    let Some(error_kind) = ErrorKind::from_type(kind, code) else {
        return Ok(Message::Other { kind });
    };
    let original = &data[HEADER_LEN..];
    let header = ipv4::parse(original, true)?;
    if header.protocol != ipv4::PROTOCOL_ICMP {
        return Ok(Message::Other { kind });
    }
    Ok(match quote(&original[header.length..], ECHO_REQUEST, header.destination.into()) {
        Some(quoted) => Message::Error { kind: error_kind, quoted, checksum_valid },
        None => Message::Other { kind },
    })
}

/// An ICMP or ICMPv6 error that the kernel queued on a datagram socket (`IP_RECVERR`,
/// `IPV6_RECVERR`), given its type, code and the four bytes after its checksum (`ee_info`: the
/// MTU of an ICMPv6 packet too big), the request as the kernel hands it back (from its ICMP
/// header on) and where that request went; the family of `destination` says which protocol's
/// types these are. The kernel checked the error's checksum before queueing it.
pub fn queued_error(
    kind: u8,
    code: u8,
    info: u32,
    request: &[u8],
    destination: IpAddr,
) -> Option<(ErrorKind, Quoted)> {
    match destination {
        IpAddr::V4(_) => {
            Some((ErrorKind::from_type(kind, code)?, quote(request, ECHO_REQUEST, destination)?))
        }
        IpAddr::V6(_) => {
            Some((icmpv6::error_kind(kind, code, info)?, quote(request, icmpv6::ECHO_REQUEST, destination)?))
        }
    }
}

/// What an error tells of the echo request (of type `request_type`) it quotes; `None` if it
/// quotes something else.
pub(super) fn quote(icmp: &[u8], request_type: u8, destination: IpAddr) -> Option<Quoted> {
    if icmp.len() < HEADER_LEN || icmp[0] != request_type {
        return None;
    }
    let echo = Echo::from_message(icmp);
    Some(Quoted { destination, identifier: echo.identifier, sequence: echo.sequence })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packet::ipv4::tests::wrap;
    use std::net::Ipv4Addr;

    const US: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const TARGET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

    /// The reply a well-behaved target sends to `request`.
    pub fn reply_to(request: &[u8]) -> Vec<u8> {
        let mut reply = request.to_vec();
        reply[0] = ECHO_REPLY;
        reply[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum::internet(&reply);
        reply[2..4].copy_from_slice(&sum.to_be_bytes());
        reply
    }

    fn request(identifier: u16, sequence: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Echo { identifier, sequence, payload }.encode_request(Family::V4, &mut out);
        out
    }

    #[test]
    fn encodes_a_request_the_kernel_accepts() {
        // 0x0800 + 0x1234 + 0x0001 + 0x6161 + 0x6161 = 0xdcf7, whose complement is 0x2308.
        let packet = request(0x1234, 1, b"aaaa");
        assert_eq!(packet, [8, 0, 0x23, 0x08, 0x12, 0x34, 0, 1, b'a', b'a', b'a', b'a']);
        assert!(checksum::is_valid(&packet));
    }

    #[test]
    fn parses_a_reply_and_flags_a_bad_checksum() {
        let mut reply = reply_to(&request(7, 9, b"token"));
        let echo = Echo { identifier: 7, sequence: 9, payload: b"token" };
        assert_eq!(parse(&reply), Ok(Message::EchoReply { echo, checksum_valid: true }));
        reply[8] ^= 1;
        assert!(matches!(parse(&reply), Ok(Message::EchoReply { checksum_valid: false, .. })));
    }

    #[test]
    fn parses_errors_quoting_our_request_with_any_header_length() {
        for options in [0, 8] {
            let original = wrap(US, TARGET, options, &request(7, 9, b"token"));
            let mut error = vec![DESTINATION_UNREACHABLE, 1, 0, 0, 0, 0, 0, 0];
            error.extend_from_slice(&original[..20 + options + 8]);
            let sum = checksum::internet(&error);
            error[2..4].copy_from_slice(&sum.to_be_bytes());
            let quoted = Quoted { destination: TARGET.into(), identifier: 7, sequence: 9 };
            assert_eq!(
                parse(&error),
                Ok(Message::Error { kind: ErrorKind::Unreachable(1), quoted, checksum_valid: true })
            );
        }
    }

    #[test]
    fn foreign_types_and_foreign_quotes_are_other() {
        assert_eq!(parse(&request(1, 1, b"")), Ok(Message::Other { kind: ECHO_REQUEST }));
        let udp = {
            let mut original = wrap(US, TARGET, 0, &[0; 8]);
            original[9] = 17;
            original
        };
        let mut error = vec![TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        error.extend_from_slice(&udp);
        assert_eq!(parse(&error), Ok(Message::Other { kind: TIME_EXCEEDED }));
    }

    #[test]
    fn queued_errors_name_the_request_they_return() {
        let target = IpAddr::V4(TARGET);
        let quoted = Quoted { destination: target, identifier: 7, sequence: 9 };
        let returned = request(7, 9, b"token");
        assert_eq!(
            queued_error(TIME_EXCEEDED, 0, 0, &returned, target),
            Some((ErrorKind::TimeExceeded, quoted))
        );
        assert_eq!(queued_error(ECHO_REPLY, 0, 0, &returned, target), None, "not an error type");
        assert_eq!(queued_error(DESTINATION_UNREACHABLE, 1, 0, &returned[..7], target), None);
        assert_eq!(queued_error(DESTINATION_UNREACHABLE, 1, 0, &reply_to(&returned), target), None);
    }

    #[test]
    fn truncated_messages_are_errors() {
        assert_eq!(parse(&[0, 0, 0]), Err(PacketError::Truncated("ICMP header")));
        let error = [DESTINATION_UNREACHABLE, 0, 0, 0, 0, 0, 0, 0, 0x45, 0];
        assert_eq!(parse(&error), Err(PacketError::Truncated("IPv4 header")));
    }

    #[test]
    fn error_kinds_read_as_words() {
        assert_eq!(ErrorKind::Unreachable(1).to_string(), "host unreachable");
        assert_eq!(ErrorKind::Unreachable(15).to_string(), "destination unreachable (code 15)");
        assert_eq!(ErrorKind::TimeExceeded.to_string(), "time to live exceeded");
    }
}
