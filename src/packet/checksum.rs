//! The Internet checksum (RFC 1071): ones' complement of the ones' complement sum of 16-bit words.

/// Checksum of `data`; an odd trailing byte is padded with zero.
pub fn internet(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when `data`, checksum field included, sums to zero as received.
pub fn is_valid(data: &[u8]) -> bool {
    internet(data) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2, so the checksum is 220d.
        assert_eq!(internet(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet(&[0x01]), !0x0100);
        assert_eq!(internet(&[0x01, 0x00]), internet(&[0x01]));
    }

    #[test]
    fn a_packet_with_its_checksum_validates_and_a_flipped_bit_does_not() {
        let mut packet = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i', b'!'];
        let sum = internet(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        assert!(is_valid(&packet));
        packet[9] ^= 0x10;
        assert!(!is_valid(&packet));
    }
}
