//! What an ICMPv6 socket hands over (the message alone), parsed as the prober parses it: never
//! a panic, a reply's payload inside what was received, an error only when it quotes a whole
//! echo request header. Then the round trip: an ICMPv6 echo request as the prober encodes it,
//! answered, parses back to the same identifier, sequence and payload.
#![no_main]

use latency::packet::icmp::{self, Echo, Message};
use latency::packet::{self, Family, Framing, icmpv6, ipv6};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match packet::parse(data, Framing::Icmpv6) {
        Ok(Message::EchoReply { echo, checksum_valid }) => {
            assert!(checksum_valid, "the kernel checked it");
            assert_eq!(echo.payload.len() + icmp::HEADER_LEN, data.len());
        }
        Ok(Message::Error { quoted, .. }) => {
            assert!(data.len() >= icmp::HEADER_LEN + ipv6::HEADER_LEN + icmp::HEADER_LEN);
            assert_eq!(data[icmp::HEADER_LEN + ipv6::HEADER_LEN], icmpv6::ECHO_REQUEST);
            assert!(quoted.destination.is_ipv6());
        }
        Ok(Message::Other { kind }) => assert_eq!(kind, data[0]),
        Err(_) => {}
    }

    let Some((fields, payload)) = data.split_first_chunk::<4>() else { return };
    let echo = Echo {
        identifier: u16::from_be_bytes([fields[0], fields[1]]),
        sequence: u16::from_be_bytes([fields[2], fields[3]]),
        payload,
    };
    let mut request = Vec::new();
    echo.encode_request(Family::V6, &mut request);
    assert_eq!(request[0], icmpv6::ECHO_REQUEST);
    assert_eq!(packet::parse(&request, Framing::Icmpv6), Ok(Message::Other { kind: icmpv6::ECHO_REQUEST }));
    let mut reply = request;
    reply[0] = icmpv6::ECHO_REPLY;
    assert_eq!(packet::parse(&reply, Framing::Icmpv6), Ok(Message::EchoReply { echo, checksum_valid: true }));
});
