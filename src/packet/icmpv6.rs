//! ICMPv6 (RFC 4443) echo replies and the errors that quote an echo request, as ICMPv6 sockets
//! deliver them: the message alone, without the IPv6 header in front. The types they parse into
//! are ICMP's (`icmp.rs`), so the prober handles both families alike.

use super::icmp::{self, Echo, ErrorKind, HEADER_LEN, Message};
use super::{PacketError, ipv6};

pub const DESTINATION_UNREACHABLE: u8 = 1;
pub const PACKET_TOO_BIG: u8 = 2;
pub const TIME_EXCEEDED: u8 = 3;
pub const PARAMETER_PROBLEM: u8 = 4;
pub const ECHO_REQUEST: u8 = 128;
pub const ECHO_REPLY: u8 = 129;

/// The error an ICMPv6 type and code report, `info` being the four bytes after the checksum
/// (the MTU of a packet too big); `None` for types that are not errors about a packet we sent.
pub fn error_kind(kind: u8, code: u8, info: u32) -> Option<ErrorKind> {
    match kind {
        DESTINATION_UNREACHABLE => Some(ErrorKind::Unreachable6(code)),
        PACKET_TOO_BIG => Some(ErrorKind::PacketTooBig(info)),
        TIME_EXCEEDED => Some(ErrorKind::HopLimitExceeded),
        PARAMETER_PROBLEM => Some(ErrorKind::ParameterProblem),
        _ => None,
    }
}

/// Parses an ICMPv6 message (no IPv6 header in front).
///
/// Every message is reported with `checksum_valid: true`, for the kernel has verified it: an
/// ICMPv6 checksum covers a pseudo-header of both addresses, which the socket does not hand
/// over, and Linux drops a message whose checksum is wrong before any socket of ours sees it.
/// Raw ICMPv6 sockets have checksumming forced on (`rawv6_init_sk` sets offset 2, and
/// `IPV6_CHECKSUM` at the IPv6 level is refused for them), so `rawv6_rcv_skb` drops a bad one
/// rather than queue it; ping sockets are handed replies by `icmpv6_rcv` after its
/// `skb_checksum_validate`, which errors pass too before they are queued.
pub fn parse(data: &[u8]) -> Result<Message<'_>, PacketError> {
    if data.len() < HEADER_LEN {
        return Err(PacketError::Truncated("ICMPv6 header"));
    }
    let (kind, code) = (data[0], data[1]);
    if kind == ECHO_REPLY {
        return Ok(Message::EchoReply { echo: Echo::from_message(data), checksum_valid: true });
    }
    let info = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    let Some(error_kind) = error_kind(kind, code, info) else {
        return Ok(Message::Other { kind });
    };
    let original = &data[HEADER_LEN..];
    let header = ipv6::parse(original)?;
    if header.next_header != ipv6::NEXT_HEADER_ICMPV6 {
        return Ok(Message::Other { kind });
    }
    let request = &original[ipv6::HEADER_LEN..];
    if request.len() < HEADER_LEN {
        return Err(PacketError::Truncated("quoted ICMPv6 echo request"));
    }
    Ok(match icmp::quote(request, ECHO_REQUEST, header.destination.into()) {
        Some(quoted) => Message::Error { kind: error_kind, quoted, checksum_valid: true },
        None => Message::Other { kind },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packet::Family;
    use crate::packet::icmp::Quoted;
    use crate::packet::ipv6::tests::wrap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    pub const US: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x51, 0, 0, 0, 0, 1);
    pub const TARGET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x51, 0, 0, 0, 0, 2);
    const BEYOND: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x52, 0, 0, 0, 0, 9);
    const NOWHERE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x53, 0, 0, 0, 0, 9);

    /// Bytes from hex digits, whitespace ignored.
    pub fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ASCII"), 16).expect("hex"))
            .collect()
    }

    // Captured from Linux 6.18 in two namespaces: `ping -6` from 2001:db8:51::1 to
    // 2001:db8:51::2, which routes on towards 2001:db8:52::/64 and has no route to
    // 2001:db8:53::/64. Each is what a raw ICMPv6 socket in the pinging namespace read.
    /// The kernel's reply to `ping -6 2001:db8:51::2`: identifier 0x061d, sequence 1.
    pub const KERNEL_REPLY: &str = "8100c658061d00016a570f6b000000001662070000000000
        101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
    /// `ping -6 -t 1 2001:db8:52::9`: hop limit exceeded at 2001:db8:51::2, quoting the whole
    /// request (flow label 0x984db, hop limit 1) with identifier 0x061e, sequence 1.
    pub const TIME_EXCEEDED_BY_ROUTER: &str = "0300819200000000
        600984db00403a0120010db800510000000000000000000120010db8005200000000000000000009
        80001043061e00016a570f6b00000000cd6e070000000000
        101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
    /// `ping -6 2001:db8:53::9`: no route at 2001:db8:51::2; identifier 0x04a8, sequence 1.
    const NO_ROUTE_AT_ROUTER: &str = "0100026600000000
        600405ce00403a4020010db800510000000000000000000120010db8005300000000000000000009
        8000346704a800015e570f6b00000000bbbf020000000000
        101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";

    /// An echo request as an ICMPv6 socket sends it, checksum left to the kernel.
    pub fn request(identifier: u16, sequence: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Echo { identifier, sequence, payload }.encode_request(Family::V6, &mut out);
        out
    }

    /// An ICMPv6 error of `kind`, `code` and `info` quoting `original`.
    pub fn error(kind: u8, code: u8, info: u32, original: &[u8]) -> Vec<u8> {
        let mut message = vec![kind, code, 0x5a, 0xa5];
        message.extend_from_slice(&info.to_be_bytes());
        message.extend_from_slice(original);
        message
    }

    fn quoted(destination: Ipv6Addr, identifier: u16, sequence: u16) -> Quoted {
        Quoted { destination: IpAddr::V6(destination), identifier, sequence }
    }

    #[test]
    fn encodes_a_request_and_leaves_the_checksum_to_the_kernel() {
        assert_eq!(request(0x1234, 1, b"aaaa"), [128, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'a', b'a', b'a']);
    }

    #[test]
    fn parses_the_kernels_reply() {
        let reply = hex(KERNEL_REPLY);
        let echo = Echo { identifier: 0x061d, sequence: 1, payload: &reply[8..] };
        assert_eq!(parse(&reply), Ok(Message::EchoReply { echo, checksum_valid: true }));
        assert_eq!(echo.payload.len(), 56);
    }

    #[test]
    fn parses_the_errors_a_router_sends() {
        let mut too_big = wrap(US, BEYOND, &request(0x061f, 1, &[0x10; 1300]));
        too_big.truncate(1280 - 48);
        let cases = [
            (hex(TIME_EXCEEDED_BY_ROUTER), ErrorKind::HopLimitExceeded, quoted(BEYOND, 0x061e, 1)),
            (hex(NO_ROUTE_AT_ROUTER), ErrorKind::Unreachable6(0), quoted(NOWHERE, 0x04a8, 1)),
            (
                error(PACKET_TOO_BIG, 0, 1280, &too_big),
                ErrorKind::PacketTooBig(1280),
                quoted(BEYOND, 0x061f, 1),
            ),
            (
                error(PARAMETER_PROBLEM, 0, 6, &wrap(US, TARGET, &request(9, 65535, b""))),
                ErrorKind::ParameterProblem,
                quoted(TARGET, 9, 65535),
            ),
        ];
        for (message, kind, quoted) in cases {
            assert_eq!(parse(&message), Ok(Message::Error { kind, quoted, checksum_valid: true }), "{kind}");
        }
    }

    #[test]
    fn error_types_are_read_as_icmpv6_defines_them() {
        let cases = [
            ((DESTINATION_UNREACHABLE, 3, 0), Some(ErrorKind::Unreachable6(3))),
            ((DESTINATION_UNREACHABLE, 200, 7), Some(ErrorKind::Unreachable6(200))),
            ((PACKET_TOO_BIG, 0, 1280), Some(ErrorKind::PacketTooBig(1280))),
            ((PACKET_TOO_BIG, 0, 65_536), Some(ErrorKind::PacketTooBig(65_536))),
            ((TIME_EXCEEDED, 0, 0), Some(ErrorKind::HopLimitExceeded)),
            ((TIME_EXCEEDED, 1, 0), Some(ErrorKind::HopLimitExceeded)),
            ((PARAMETER_PROBLEM, 1, 40), Some(ErrorKind::ParameterProblem)),
            ((ECHO_REQUEST, 0, 0), None),
            ((ECHO_REPLY, 0, 0), None),
            // Neighbour discovery, and ICMP's own error types.
            ((135, 0, 0), None),
            ((136, 0, 0), None),
            ((11, 0, 0), None),
            ((12, 0, 0), None),
        ];
        for ((kind, code, info), expected) in cases {
            assert_eq!(error_kind(kind, code, info), expected, "type {kind} code {code}");
        }
    }

    #[test]
    fn error_kinds_read_as_words() {
        let cases = [
            (ErrorKind::Unreachable6(0), "no route to destination"),
            (ErrorKind::Unreachable6(1), "administratively prohibited"),
            (ErrorKind::Unreachable6(2), "destination unreachable (code 2)"),
            (ErrorKind::Unreachable6(3), "address unreachable"),
            (ErrorKind::Unreachable6(4), "port unreachable"),
            (ErrorKind::Unreachable6(5), "administratively prohibited"),
            (ErrorKind::Unreachable6(6), "administratively prohibited"),
            (ErrorKind::Unreachable6(7), "destination unreachable (code 7)"),
            (ErrorKind::PacketTooBig(1280), "packet too big (MTU 1280)"),
            (ErrorKind::HopLimitExceeded, "hop limit exceeded"),
            (ErrorKind::ParameterProblem, "parameter problem"),
        ];
        for (kind, text) in cases {
            assert_eq!(kind.to_string(), text, "{kind:?}");
        }
    }

    #[test]
    fn foreign_types_and_foreign_quotes_are_other() {
        let mut udp = wrap(US, TARGET, &[0; 8]);
        udp[6] = 17;
        let mut with_extension_header = wrap(US, TARGET, &request(7, 9, b""));
        with_extension_header[6] = 0; // hop-by-hop options
        let mut icmpv4_request = request(7, 9, b"");
        icmpv4_request[0] = icmp::ECHO_REQUEST;
        let cases = [
            (request(7, 9, b""), ECHO_REQUEST),
            (vec![135, 0, 0, 0, 0, 0, 0, 0], 135),
            (error(DESTINATION_UNREACHABLE, 4, 0, &udp), DESTINATION_UNREACHABLE),
            (error(TIME_EXCEEDED, 0, 0, &with_extension_header), TIME_EXCEEDED),
            (error(TIME_EXCEEDED, 0, 0, &wrap(US, TARGET, &icmpv4_request)), TIME_EXCEEDED),
            (error(PACKET_TOO_BIG, 0, 1280, &wrap(US, TARGET, &hex(KERNEL_REPLY))), PACKET_TOO_BIG),
        ];
        for (message, kind) in cases {
            assert_eq!(parse(&message), Ok(Message::Other { kind }), "{message:02x?}");
        }
    }

    #[test]
    fn truncated_and_malformed_messages_are_errors() {
        let original = wrap(US, TARGET, &request(7, 9, b"token"));
        let unreachable = |len: usize| error(DESTINATION_UNREACHABLE, 3, 0, &original[..len]);
        let mut ipv4_inside = unreachable(48);
        ipv4_inside[8] = 0x45;
        let cases = [
            (vec![], PacketError::Truncated("ICMPv6 header")),
            (hex(KERNEL_REPLY)[..7].to_vec(), PacketError::Truncated("ICMPv6 header")),
            (unreachable(0), PacketError::Truncated("IPv6 header")),
            (unreachable(39), PacketError::Truncated("IPv6 header")),
            (unreachable(40), PacketError::Truncated("quoted ICMPv6 echo request")),
            (unreachable(47), PacketError::Truncated("quoted ICMPv6 echo request")),
            (ipv4_inside, PacketError::NotIpv6(4)),
        ];
        for (message, expected) in cases {
            assert_eq!(parse(&message), Err(expected), "{message:02x?}");
        }
        assert!(matches!(parse(&unreachable(48)), Ok(Message::Error { .. })), "8 bytes of the echo suffice");
    }

    #[test]
    fn queued_errors_are_read_by_the_family_of_their_destination() {
        let v6 = request(7, 9, b"token");
        let mut v4 = Vec::new();
        Echo { identifier: 7, sequence: 9, payload: b"token" }.encode_request(Family::V4, &mut v4);
        let v4_target = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
        let v6_target = IpAddr::V6(TARGET);
        let about = |destination| Quoted { destination, identifier: 7, sequence: 9 };
        let cases = [
            // Type 3 is time exceeded in ICMPv6 and destination unreachable in ICMP.
            ((3, 1, 0, &v6, v6_target), Some((ErrorKind::HopLimitExceeded, about(v6_target)))),
            ((3, 1, 0, &v4, v4_target), Some((ErrorKind::Unreachable(1), about(v4_target)))),
            ((2, 0, 1400, &v6, v6_target), Some((ErrorKind::PacketTooBig(1400), about(v6_target)))),
            ((1, 3, 0, &v6, v6_target), Some((ErrorKind::Unreachable6(3), about(v6_target)))),
            ((ECHO_REPLY, 0, 0, &v6, v6_target), None),
            ((11, 0, 0, &v6, v6_target), None),
            // A request of the other family is not one we sent there.
            ((1, 3, 0, &v4, v6_target), None),
            ((3, 1, 0, &v6, v4_target), None),
        ];
        for ((kind, code, info, returned, destination), expected) in cases {
            assert_eq!(
                icmp::queued_error(kind, code, info, returned, destination),
                expected,
                "type {kind} to {destination}"
            );
        }
        assert_eq!(icmp::queued_error(1, 3, 0, &v6[..7], v6_target), None, "cut short");
    }
}
