//! ICMP echo packets as the prober sends and receives them. Pure functions over bytes.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;

use std::fmt;
use std::net::IpAddr;

/// What a socket hands over: raw sockets prepend the IPv4 header, datagram sockets do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    WithIpHeader,
    IcmpOnly,
}

/// Why received bytes are not a usable ICMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    Truncated(&'static str),
    NotIpv4(u8),
    BadHeaderLength(usize),
    BadTotalLength { total: usize, received: usize },
    NotIcmp(u8),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Truncated(part) => write!(f, "truncated {part}"),
            PacketError::NotIpv4(version) => write!(f, "IP version {version}, expected 4"),
            PacketError::BadHeaderLength(len) => write!(f, "IPv4 header length {len} below 20"),
            PacketError::BadTotalLength { total, received } => {
                write!(f, "IPv4 total length {total} does not fit the {received} bytes received")
            }
            PacketError::NotIcmp(protocol) => write!(f, "IP protocol {protocol}, expected ICMP"),
        }
    }
}

/// Parses what a socket received into an ICMP message.
pub fn parse(data: &[u8], framing: Framing) -> Result<icmp::Message<'_>, PacketError> {
    match framing {
        Framing::IcmpOnly => icmp::parse(data),
        Framing::WithIpHeader => {
            let header = ipv4::parse(data, false)?;
            if header.protocol != ipv4::PROTOCOL_ICMP {
                return Err(PacketError::NotIcmp(header.protocol));
            }
            icmp::parse(&data[header.length..header.total_length])
        }
    }
}

/// An address family, where IPv4 and IPv6 differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
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
    use crate::packet::icmp::{Echo, Message};
    use crate::packet::ipv4::tests::wrap;
    use std::net::Ipv4Addr;

    const TOKEN: Token = Token(*b"l4t3ncy!");
    const TARGET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const US: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    fn probe(counter: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let payload = payload(TOKEN, counter);
        Echo { identifier: 0xbeef, sequence: counter as u16, payload: &payload }.encode_request(&mut out);
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
            for framing in [Framing::WithIpHeader, Framing::IcmpOnly] {
                let _ = parse(&bytes, framing);
            }
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
