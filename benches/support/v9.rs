//! Synthetic NetFlow v9 exports shared by the benchmarks: the 20-field template most routers
//! use, 21 records per datagram.

/// Export time of the synthetic datagrams (a multiple of 10 s).
pub const T: u32 = 1_795_946_400;

/// A 20-field v9 template (the usual router export) and one datagram of 21 records.
pub fn twenty_field_datagram(
    domain: u32,
    template_id: u16,
    with_template: bool,
    seed: u32,
) -> Vec<u8> {
    let fields: [(u16, u16); 20] = [
        (8, 4),   // src addr
        (12, 4),  // dst addr
        (15, 4),  // next hop
        (10, 4),  // input
        (14, 4),  // output
        (2, 4),   // packets
        (1, 4),   // octets
        (22, 4),  // first switched
        (21, 4),  // last switched
        (7, 2),   // src port
        (11, 2),  // dst port
        (6, 1),   // tcp flags
        (4, 1),   // protocol
        (5, 1),   // tos
        (16, 4),  // src as
        (17, 4),  // dst as
        (9, 1),   // src mask
        (13, 1),  // dst mask
        (61, 1),  // direction
        (136, 1), // flow end reason
    ];
    let record_len: usize = fields.iter().map(|f| usize::from(f.1)).sum();
    let mut sets = Vec::new();
    if with_template {
        let mut t = Vec::new();
        t.extend_from_slice(&0u16.to_be_bytes());
        t.extend_from_slice(&((4 + 4 + fields.len() * 4) as u16).to_be_bytes());
        t.extend_from_slice(&template_id.to_be_bytes());
        t.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for (ie, len) in fields {
            t.extend_from_slice(&ie.to_be_bytes());
            t.extend_from_slice(&len.to_be_bytes());
        }
        sets.push(t);
    }
    let mut d = Vec::new();
    d.extend_from_slice(&template_id.to_be_bytes());
    d.extend_from_slice(&((4 + 21 * record_len) as u16).to_be_bytes());
    for i in 0..21u32 {
        let x = seed.wrapping_mul(2_654_435_761).wrapping_add(i * 40_503);
        for (ie, len) in fields {
            let v: u32 = match ie {
                8 => 0x0a02_0000 | (x & 0xffff),
                12 => 0x0a09_0000 | ((x >> 16) & 0xff),
                10 => 1 + (x % 4),
                14 => 5 + (x % 4),
                2 => 1 + (x % 40),
                1 => 64 + (x % 60_000),
                22 => 50_000 - (x % 9_000),
                21 => 50_000,
                4 => 6,
                6 => 0x18,
                _ => x,
            };
            d.extend_from_slice(&v.to_be_bytes()[4 - usize::from(len)..]);
        }
    }
    sets.push(d);
    let mut p = Vec::new();
    p.extend_from_slice(&9u16.to_be_bytes());
    p.extend_from_slice(&(21u16 + u16::from(with_template)).to_be_bytes());
    p.extend_from_slice(&50_000u32.to_be_bytes());
    p.extend_from_slice(&T.to_be_bytes());
    p.extend_from_slice(&seed.to_be_bytes());
    p.extend_from_slice(&domain.to_be_bytes());
    for s in sets {
        p.extend_from_slice(&s);
    }
    p
}
