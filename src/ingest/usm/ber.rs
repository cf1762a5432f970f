//! The BER pieces noctua's engine writes (reading is snmp2's `AsnReader`); benches build
//! traps with them too.

/// A BER tag-length-value.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A BER INTEGER: two's complement, shortest form.
pub fn integer(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    tlv(0x02, &bytes[start..])
}

/// The content of an unsigned (Counter32) value.
pub fn unsigned(n: u32) -> Vec<u8> {
    let bytes = u64::from(n).to_be_bytes();
    let mut start = 0;
    while start < 7 && bytes[start] == 0 && bytes[start + 1] & 0x80 == 0 {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// The content of an OBJECT IDENTIFIER.
pub fn oid_body(arcs: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        _ => return out,
    };
    for &arc in std::iter::once(&first).chain(rest) {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        out.extend(chunk.iter().rev());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ber_pieces_encode_as_the_standard_says() {
        assert_eq!(integer(0), [2, 1, 0]);
        assert_eq!(integer(127), [2, 1, 127]);
        assert_eq!(integer(128), [2, 2, 0, 128]);
        assert_eq!(integer(-1), [2, 1, 0xff]);
        assert_eq!(integer(65_507), [2, 3, 0, 0xff, 0xe3]);
        assert_eq!(unsigned(200), [0, 200]);
        assert_eq!(
            oid_body(&[1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0]),
            [43, 6, 1, 6, 3, 15, 1, 1, 4, 0]
        );
        assert_eq!(
            oid_body(&[1, 3, 6, 1, 4, 1, 32473]),
            [43, 6, 1, 4, 1, 0x81, 0xfd, 0x59]
        );
        let long = tlv(4, &[7; 300]);
        assert_eq!(&long[..4], [4, 0x82, 1, 44]);
    }
}
