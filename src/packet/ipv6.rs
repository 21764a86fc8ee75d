//! The IPv6 header that an ICMPv6 error quotes. ICMPv6 sockets never hand over the header of
//! the packet they deliver, so this is the only IPv6 header the prober reads.

use std::net::Ipv6Addr;

use super::PacketError;

/// A fixed header: no length field to honour, unlike IPv4's.
pub const HEADER_LEN: usize = 40;
pub const NEXT_HEADER_ICMPV6: u8 = 58;

/// The fields of an IPv6 header the prober needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    pub destination: Ipv6Addr,
    /// What follows the header. Our echo requests carry no extension headers, so anything but
    /// ICMPv6 here is not one of them.
    pub next_header: u8,
}

/// Parses the header at the start of `data`. The payload length is not checked against `data`:
/// an error quotes as much of the packet as fits, not all of it.
pub fn parse(data: &[u8]) -> Result<Header, PacketError> {
    let first = *data.first().ok_or(PacketError::Truncated("IPv6 header"))?;
    if first >> 4 != 6 {
        return Err(PacketError::NotIpv6(first >> 4));
    }
    if data.len() < HEADER_LEN {
        return Err(PacketError::Truncated("IPv6 header"));
    }
    let mut destination = [0u8; 16];
    destination.copy_from_slice(&data[24..HEADER_LEN]);
    Ok(Header { destination: Ipv6Addr::from(destination), next_header: data[6] })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds the IPv6 header a host puts in front of `payload`, hop limit 64, flow label set
    /// as Linux sets one of its own.
    pub fn wrap(source: Ipv6Addr, destination: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x60, 0x09, 0x84, 0xdb];
        packet.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        packet.extend_from_slice(&[NEXT_HEADER_ICMPV6, 64]);
        packet.extend_from_slice(&source.octets());
        packet.extend_from_slice(&destination.octets());
        packet.extend_from_slice(payload);
        packet
    }

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x51, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x51, 0, 0, 0, 0, 2);

    #[test]
    fn reads_the_destination_and_next_header() {
        let packet = wrap(A, B, b"12345678");
        assert_eq!(parse(&packet), Ok(Header { destination: B, next_header: 58 }));
        assert_eq!(
            parse(&packet[..HEADER_LEN]),
            Ok(Header { destination: B, next_header: 58 }),
            "cut after it"
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        let good = wrap(A, B, b"12345678");
        let mut ipv4 = good.clone();
        ipv4[0] = 0x45;
        let cases: [(&[u8], PacketError); 4] = [
            (&[], PacketError::Truncated("IPv6 header")),
            (&good[..1], PacketError::Truncated("IPv6 header")),
            (&good[..HEADER_LEN - 1], PacketError::Truncated("IPv6 header")),
            (&ipv4, PacketError::NotIpv6(4)),
        ];
        for (data, expected) in cases {
            assert_eq!(parse(data), Err(expected), "{data:02x?}");
        }
    }
}
