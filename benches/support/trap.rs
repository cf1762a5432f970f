//! SNMPv2c traps built with noctua's own BER pieces, so a bench can send thousands a second
//! from any loopback address without a process per trap.

use noctua::ingest::usm::ber::{integer, oid_body, tlv, unsigned};

/// A linkDown trap of `if_index`, community `public`, as net-snmp's `snmptrap -v 2c` sends it.
pub fn link_down(request_id: i32, if_index: u32) -> Vec<u8> {
    let oid = |arcs: &[u32]| tlv(0x06, &oid_body(arcs));
    let varbind = |name: &[u32], value: Vec<u8>| tlv(0x30, &[oid(name), value].concat());
    let varbinds = [
        varbind(&[1, 3, 6, 1, 2, 1, 1, 3, 0], tlv(0x43, &unsigned(1234))),
        varbind(
            &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0],
            oid(&[1, 3, 6, 1, 6, 3, 1, 1, 5, 3]),
        ),
        varbind(
            &[1, 3, 6, 1, 2, 1, 2, 2, 1, 1, if_index],
            integer(i64::from(if_index)),
        ),
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
