//! The IPv4 header in front of what a raw socket receives. Its length comes from the IHL
//! field, never assumed to be 20 bytes: options make it longer.

use std::net::Ipv4Addr;

use super::PacketError;

pub const PROTOCOL_ICMP: u8 = 1;

/// The fields of an IPv4 header the prober needs, and where the payload lies.
#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    pub protocol: u8,
    /// Header length in bytes (IHL × 4).
    pub length: usize,
    /// Header and payload as the header states; checked against the bytes received unless quoted.
    pub total_length: usize,
}

/// Parses the header at the start of `data`. `quoted` marks the copy inside an ICMP error,
/// where routers may have cut the datagram, so the total length is not checked against `data`.
pub fn parse(data: &[u8], quoted: bool) -> Result<Header, PacketError> {
    let first = *data.first().ok_or(PacketError::Truncated("IPv4 header"))?;
    if first >> 4 != 4 {
        return Err(PacketError::NotIpv4(first >> 4));
    }
    let length = usize::from(first & 0x0f) * 4;
    if length < 20 {
        return Err(PacketError::BadHeaderLength(length));
    }
    if data.len() < length {
        return Err(PacketError::Truncated("IPv4 header"));
    }
    let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
    if !quoted && (total < length || total > data.len()) {
        return Err(PacketError::BadTotalLength { total, received: data.len() });
    }
    Ok(Header {
        source: Ipv4Addr::new(data[12], data[13], data[14], data[15]),
        destination: Ipv4Addr::new(data[16], data[17], data[18], data[19]),
        protocol: data[9],
        length,
        total_length: total,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an IPv4 header with `options` bytes of options in front of `payload`.
    pub fn wrap(source: Ipv4Addr, destination: Ipv4Addr, options: usize, payload: &[u8]) -> Vec<u8> {
        assert_eq!(options % 4, 0);
        let length = 20 + options;
        let mut packet = vec![0u8; length];
        packet[0] = 0x40 | (length / 4) as u8;
        packet[2..4].copy_from_slice(&((length + payload.len()) as u16).to_be_bytes());
        packet[8] = 64;
        packet[9] = PROTOCOL_ICMP;
        packet[12..16].copy_from_slice(&source.octets());
        packet[16..20].copy_from_slice(&destination.octets());
        packet.extend_from_slice(payload);
        packet
    }

    const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    #[test]
    fn honours_the_header_length_field() {
        for options in [0, 4, 40] {
            let packet = wrap(A, B, options, b"payload!");
            let header = parse(&packet, false).unwrap();
            let length = 20 + options;
            let expected =
                Header { source: A, destination: B, protocol: 1, length, total_length: length + 8 };
            assert_eq!(header, expected);
        }
    }

    #[test]
    fn rejects_malformed_headers() {
        let good = wrap(A, B, 0, b"12345678");
        let mut short_ihl = good.clone();
        short_ihl[0] = 0x44;
        let mut ipv6 = good.clone();
        ipv6[0] = 0x60;
        let mut long_total = good.clone();
        long_total[3] += 1;
        let cases: [(&[u8], PacketError); 5] = [
            (&[], PacketError::Truncated("IPv4 header")),
            (&good[..19], PacketError::Truncated("IPv4 header")),
            (&short_ihl, PacketError::BadHeaderLength(16)),
            (&ipv6, PacketError::NotIpv4(6)),
            (&long_total, PacketError::BadTotalLength { total: 29, received: 28 }),
        ];
        for (data, expected) in cases {
            assert_eq!(parse(data, false), Err(expected));
        }
        assert!(parse(&long_total, true).is_ok(), "a quoted header may be cut short");
    }
}
