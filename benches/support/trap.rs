//! SNMPv2c traps encoded by hand (BER), so a bench can send thousands a second from any
//! loopback address without a process per trap.

/// A linkDown trap of `if_index`, community `public`, as net-snmp's `snmptrap -v 2c` sends it.
pub fn link_down(request_id: i32, if_index: u32) -> Vec<u8> {
    let if_index_oid: Vec<u32> = [1, 3, 6, 1, 2, 1, 2, 2, 1, 1, if_index].to_vec();
    let varbinds = [
        varbind(&[1, 3, 6, 1, 2, 1, 1, 3, 0], &tlv(0x43, &uint(1234))),
        varbind(
            &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0],
            &oid(&[1, 3, 6, 1, 6, 3, 1, 1, 5, 3]),
        ),
        varbind(&if_index_oid, &integer(i64::from(if_index))),
    ]
    .concat();
    let pdu = [
        integer(i64::from(request_id)),
        integer(0),
        integer(0),
        tlv(0x30, &varbinds),
    ]
    .concat();
    let message = [integer(1), tlv(0x04, b"public"), tlv(0xA7, &pdu)].concat();
    tlv(0x30, &message)
}

fn varbind(name: &[u32], value: &[u8]) -> Vec<u8> {
    tlv(0x30, &[oid(name), value.to_vec()].concat())
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n <= 0xFF => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

fn integer(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    // Minimal two's complement: drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xFF && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    tlv(0x02, &bytes[start..])
}

fn uint(v: u32) -> Vec<u8> {
    let mut body = integer(i64::from(v));
    body.drain(..2);
    body
}

fn oid(arcs: &[u32]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut chunk = vec![(arc & 0x7F) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(0x80 | (rest & 0x7F) as u8);
            rest >>= 7;
        }
        body.extend(chunk.iter().rev());
    }
    tlv(0x06, &body)
}
