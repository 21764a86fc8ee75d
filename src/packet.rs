//! ICMP echo packets as the prober sends and receives them. Pure functions over bytes.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;

use std::fmt;
use std::net::IpAddr;

/// Which IP version a probe travels over: ICMP and ICMPv6 differ in types, checksums and the
/// header an error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// What a socket hands over: raw IPv4 sockets prepend the IPv4 header, datagram IPv4 sockets
/// do not, and ICMPv6 sockets of both kinds deliver the ICMPv6 message alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    WithIpHeader,
    IcmpOnly,
    Icmpv6,
}

/// Why received bytes are not a usable ICMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    Truncated(&'static str),
    NotIpv4(u8),
    NotIpv6(u8),
    BadHeaderLength(usize),
    BadTotalLength { total: usize, received: usize },
    NotIcmp(u8),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Truncated(part) => write!(f, "truncated {part}"),
            PacketError::NotIpv4(version) => write!(f, "IP version {version}, expected 4"),
            PacketError::NotIpv6(version) => write!(f, "IP version {version}, expected 6"),
            PacketError::BadHeaderLength(len) => write!(f, "IPv4 header length {len} below 20"),
            PacketError::BadTotalLength { total, received } => {
                write!(f, "IPv4 total length {total} does not fit the {received} bytes received")
            }
            PacketError::NotIcmp(protocol) => write!(f, "IP protocol {protocol}, expected ICMP"),
        }
    }
}

/// Parses what a socket received into an ICMP or ICMPv6 message.
pub fn parse(data: &[u8], framing: Framing) -> Result<icmp::Message<'_>, PacketError> {
    match framing {
        Framing::IcmpOnly => icmp::parse(data),
        Framing::Icmpv6 => icmpv6::parse(data),
        Framing::WithIpHeader => {
            let header = ipv4::parse(data, false)?;
            if header.protocol != ipv4::PROTOCOL_ICMP {
                return Err(PacketError::NotIcmp(header.protocol));
            }
            icmp::parse(&data[header.length..header.total_length])
        }
    }
}

impl Family {
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The ICMP of this family, as a user reads it.
    pub fn protocol(self) -> &'static str {
        match self {
            Family::V4 => "ICMP",
            Family::V6 => "ICMPv6",
        }
    }
}

/// Bytes of echo payload, as iputils `ping` sends by default.
pub const PAYLOAD_LEN: usize = 56;

/// A per-run secret at the start of every payload, so that replies to other programs' probes,
/// or forged ones, are never taken for ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token(pub [u8; 8]);

/// The payload of probe number `counter`: token, counter, then a fixed pattern. The full
/// 64-bit counter survives the 16-bit sequence number wrapping around.
pub fn payload(token: Token, counter: u64) -> [u8; PAYLOAD_LEN] {
    let mut out = [0u8; PAYLOAD_LEN];
    out[..8].copy_from_slice(&token.0);
    out[8..16].copy_from_slice(&counter.to_be_bytes());
    for (i, byte) in out[16..].iter_mut().enumerate() {
        *byte = 0x10 + i as u8;
    }
    out
}

/// The probe counter a reply's payload names, if the payload is exactly one we sent.
pub fn payload_counter(token: Token, received: &[u8]) -> Option<u64> {
    let counter = u64::from_be_bytes(received.get(8..16)?.try_into().ok()?);
    (received == payload(token, counter)).then_some(counter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::icmp::tests::reply_to;
    use crate::packet::icmp::{Echo, ErrorKind, Message, Quoted};
    use crate::packet::icmpv6::tests as v6;
    use crate::packet::ipv4::tests::wrap;
    use crate::packet::ipv6::tests::wrap as wrap6;
    use std::net::Ipv4Addr;

    const TOKEN: Token = Token(*b"l4t3ncy!");
    const TARGET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const US: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    fn probe(counter: u64) -> Vec<u8> {
        probe_of(Family::V4, counter)
    }

    fn probe_of(family: Family, counter: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let payload = payload(TOKEN, counter);
        Echo { identifier: 0xbeef, sequence: counter as u16, payload: &payload }
            .encode_request(family, &mut out);
        out
    }

    #[test]
    fn payload_names_its_counter_and_nothing_else_does() {
        let sent = payload(TOKEN, 70_000);
        assert_eq!(payload_counter(TOKEN, &sent), Some(70_000));
        assert_eq!(payload_counter(Token(*b"someone!"), &sent), None);
        let mut changed = sent;
        changed[40] ^= 0xff;
        assert_eq!(payload_counter(TOKEN, &changed), None);
        assert_eq!(payload_counter(TOKEN, &sent[..PAYLOAD_LEN - 1]), None);
        assert_eq!(payload_counter(TOKEN, &sent[..4]), None);
    }

    #[test]
    fn raw_replies_parse_through_the_ip_header_and_its_options() {
        let reply = reply_to(&probe(3));
        for options in [0, 12] {
            let packet = wrap(TARGET, US, options, &reply);
            let Ok(Message::EchoReply { echo, checksum_valid: true }) = parse(&packet, Framing::WithIpHeader)
            else {
                panic!("options {options}: not a valid reply");
            };
            assert_eq!((echo.identifier, echo.sequence), (0xbeef, 3));
            assert_eq!(payload_counter(TOKEN, echo.payload), Some(3));
        }
        assert!(matches!(parse(&reply, Framing::IcmpOnly), Ok(Message::EchoReply { .. })));
    }

    #[test]
    fn bytes_past_the_ip_total_length_are_not_payload() {
        let mut packet = wrap(TARGET, US, 0, &reply_to(&probe(3)));
        packet.extend_from_slice(b"padding");
        let Ok(Message::EchoReply { echo, .. }) = parse(&packet, Framing::WithIpHeader) else {
            panic!("not a reply");
        };
        assert_eq!(payload_counter(TOKEN, echo.payload), Some(3));
    }

    #[test]
    fn icmpv6_replies_parse_without_an_ip_header_and_name_their_probe() {
        let mut reply = probe_of(Family::V6, 3);
        reply[0] = icmpv6::ECHO_REPLY;
        let Ok(Message::EchoReply { echo, checksum_valid: true }) = parse(&reply, Framing::Icmpv6) else {
            panic!("not a valid reply");
        };
        assert_eq!((echo.identifier, echo.sequence), (0xbeef, 3));
        assert_eq!(payload_counter(TOKEN, echo.payload), Some(3));
        let kernel = v6::hex(v6::KERNEL_REPLY);
        assert!(matches!(parse(&kernel, Framing::Icmpv6), Ok(Message::EchoReply { .. })));
        assert!(
            matches!(parse(&kernel, Framing::IcmpOnly), Ok(Message::Other { kind: icmpv6::ECHO_REPLY })),
            "an ICMPv6 reply is no ICMP reply"
        );
        assert!(parse(&reply_to(&probe(3)), Framing::Icmpv6).is_ok_and(|m| m == Message::Other { kind: 0 }));
    }

    /// Whether flipping `bit` of byte `at` of an IPv6 header and echo request, as an ICMPv6 error
    /// quotes them, leaves the probe it names unchanged: fields that do not tell which probe it
    /// was, or that routers on the way may rewrite.
    fn ignored_in_quote(at: usize, bit: u8) -> bool {
        match at {
            // Traffic class (the low nibble of byte 0 and the high one of byte 1) and flow label;
            // the version is the high nibble of byte 0.
            0 => bit < 4,
            1..=3 => true,
            // Payload length: the quote may be cut short, so it is not checked.
            4 | 5 => true,
            // Hop limit: a router decrements it.
            7 => true,
            // Source address: the socket layer decides what is ours, not the quote.
            8..=23 => true,
            // The echo request's code and checksum.
            41..=43 => true,
            // Version, next header, destination, echo type, identifier, sequence.
            _ => false,
        }
    }

    #[test]
    fn every_bit_of_a_quoted_icmpv6_request_is_checked_or_deliberately_ignored() {
        let quote = wrap6(v6::US, v6::TARGET, &probe_of(Family::V6, 3));
        let error = v6::error(icmpv6::TIME_EXCEEDED, 0, 0, &quote);
        let original = Quoted { destination: v6::TARGET.into(), identifier: 0xbeef, sequence: 3 };
        let expected =
            Ok(Message::Error { kind: ErrorKind::HopLimitExceeded, quoted: original, checksum_valid: true });
        assert_eq!(parse(&error, Framing::Icmpv6), expected);
        for at in 0..ipv6::HEADER_LEN + icmp::HEADER_LEN {
            for bit in 0..8 {
                let mut corrupted = error.clone();
                corrupted[icmp::HEADER_LEN + at] ^= 1 << bit;
                let parsed = parse(&corrupted, Framing::Icmpv6);
                let unchanged = parsed == expected;
                assert_eq!(unchanged, ignored_in_quote(at, bit), "bit {bit} of quoted byte {at}: {parsed:?}");
            }
        }
    }

    /// A small deterministic generator, so a failure reproduces.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn arbitrary_bytes_from_the_wire_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            let len = (xorshift(&mut state) % 120) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
            if let Some(first) = bytes.first_mut() {
                // Half the packets claim IPv4 with a plausible header length.
                *first = if xorshift(&mut state).is_multiple_of(2) { 0x45 + (*first % 11) } else { *first };
            }
            for framing in [Framing::WithIpHeader, Framing::IcmpOnly, Framing::Icmpv6] {
                let _ = parse(&bytes, framing);
            }
        }
    }

    #[test]
    fn arbitrary_icmpv6_errors_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1d;
        for _ in 0..200_000 {
            let len = (xorshift(&mut state) % 120) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
            // Most claim to be an error quoting an IPv6 packet, so the quote gets parsed.
            let shape = xorshift(&mut state);
            if !shape.is_multiple_of(8) {
                for (at, value) in [
                    (0, (shape % 5) as u8),
                    (8, 0x60),
                    (14, ipv6::NEXT_HEADER_ICMPV6),
                    (48, icmpv6::ECHO_REQUEST),
                ] {
                    if let Some(byte) = bytes.get_mut(at) {
                        *byte = value;
                    }
                }
            }
            let _ = parse(&bytes, Framing::Icmpv6);
        }
    }

    #[test]
    fn any_single_corrupted_byte_of_a_reply_is_caught() {
        let original = wrap(TARGET, US, 0, &reply_to(&probe(3)));
        let mut state = 7;
        for at in 20..original.len() {
            let mut packet = original.clone();
            packet[at] ^= (xorshift(&mut state) % 255 + 1) as u8;
            let accepted = match parse(&packet, Framing::WithIpHeader) {
                Ok(Message::EchoReply { echo, checksum_valid: true }) => {
                    payload_counter(TOKEN, echo.payload) == Some(3) && echo.sequence == 3
                }
                _ => false,
            };
            assert!(!accepted, "a flipped byte at {at} went unnoticed");
        }
    }

    #[test]
    fn rejects_non_icmp_and_truncated_packets() {
        let mut udp = wrap(TARGET, US, 0, &[0; 8]);
        udp[9] = 17;
        assert_eq!(parse(&udp, Framing::WithIpHeader), Err(PacketError::NotIcmp(17)));
        let packet = wrap(TARGET, US, 0, &reply_to(&probe(1)));
        assert!(parse(&packet[..24], Framing::WithIpHeader).is_err());
        assert_eq!(
            parse(&packet[..22], Framing::WithIpHeader).unwrap_err().to_string(),
            "IPv4 total length 84 does not fit the 22 bytes received"
        );
    }
}
