//! What a raw IPv4 ICMP socket (IP header in front) or a datagram one (ICMP alone) hands over,
//! parsed as the prober parses it: never a panic, and a reply's payload always lies inside
//! what was received (inside the IP total length, for a raw socket). Then the round trip: an
//! echo request as the prober encodes it, answered as a target answers it, parses back to the
//! same identifier, sequence and payload with a valid checksum, behind any IPv4 header length.
#![no_main]

use latency::packet::icmp::{self, Echo, Message};
use latency::packet::{self, Family, Framing, Token, checksum, ipv4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for framing in [Framing::WithIpHeader, Framing::IcmpOnly] {
        if let Ok(Message::EchoReply { echo, .. }) = packet::parse(data, framing) {
            assert!(echo.payload.len() + icmp::HEADER_LEN <= data.len());
            if framing == Framing::WithIpHeader {
                let header = ipv4::parse(data, false).expect("a reply came through its header");
                assert_eq!(echo.payload.len(), header.total_length - header.length - icmp::HEADER_LEN);
            }
        }
    }

    // The round trip, on the same bytes read as fields: identifier, sequence, options length,
    // then the payload.
    let Some((fields, payload)) = data.split_first_chunk::<5>() else { return };
    let echo = Echo {
        identifier: u16::from_be_bytes([fields[0], fields[1]]),
        sequence: u16::from_be_bytes([fields[2], fields[3]]),
        payload,
    };
    let mut request = Vec::new();
    echo.encode_request(Family::V4, &mut request);
    assert!(checksum::is_valid(&request));
    assert_eq!(icmp::parse(&request), Ok(Message::Other { kind: icmp::ECHO_REQUEST }));
    let mut reply = request.clone();
    reply[0] = icmp::ECHO_REPLY;
    reply[2..4].fill(0);
    let sum = checksum::internet(&reply);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    let parsed = || Message::EchoReply { echo, checksum_valid: true };
    assert_eq!(packet::parse(&reply, Framing::IcmpOnly), Ok(parsed()));
    let options = usize::from(fields[4] % 11) * 4;
    let total = 20 + options + reply.len();
    if total <= usize::from(u16::MAX) {
        let mut datagram = vec![0u8; 20 + options];
        datagram[0] = 0x40 | (5 + options / 4) as u8;
        datagram[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        datagram[9] = ipv4::PROTOCOL_ICMP;
        datagram.extend_from_slice(&reply);
        assert_eq!(packet::parse(&datagram, Framing::WithIpHeader), Ok(parsed()));
    }

    // A probe's payload names its counter, and no other token reads it.
    let token = Token(*b"l4t3ncy!");
    let counter = u64::from(echo.identifier) << 16 | u64::from(echo.sequence);
    assert_eq!(packet::payload_counter(token, &packet::payload(token, counter)), Some(counter));
    if let Some(read) = packet::payload_counter(token, payload) {
        assert_eq!(payload, packet::payload(token, read));
    }
});
