//! The trap receiver on arbitrary bytes: whatever reaches the trap port from a configured
//! device (v1/v2c with a community, v3 authPriv, v3 without auth) is read into a meaning and an
//! answer, or dropped with a reason, and never panics. The first byte picks the sender; the
//! receiver's state (each v3 sender's localised keys, the engine's counters) carries over
//! between inputs as in a long-running daemon.
#![no_main]

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use noctua::ingest::trap::Receiver;
use noctua::ingest::trap::engine::Engine;

const CONFIG: &str = "[snmp.credentials.v2]\nversion = \"v2c\"\ncommunity = \"public\"\n\
    [snmp.credentials.v3]\nversion = \"v3\"\nuser = \"noctua\"\nauth-protocol = \"sha256\"\n\
    auth-key = \"authpass123\"\npriv-protocol = \"aes128\"\npriv-key = \"privpass123\"\n\
    [snmp.credentials.plain]\nversion = \"v3\"\nuser = \"plain\"\n\
    [traps]\nenabled = true\n\
    [[device]]\nname = \"r-v2c\"\naddress = \"10.0.0.1\"\nrole = \"router\"\ncredentials = \"v2\"\n\
    [[device]]\nname = \"r-v3\"\naddress = \"10.0.0.2\"\nrole = \"router\"\ncredentials = \"v3\"\n\
    [[device]]\nname = \"r-plain\"\naddress = \"10.0.0.3\"\nrole = \"router\"\ncredentials = \"plain\"\n";

thread_local! {
    static RECEIVER: RefCell<Receiver> = RefCell::new({
        let config = noctua::config::parse("fuzz.toml", CONFIG, Path::new(".")).unwrap();
        Receiver::new(&config, Engine::new(b"\x80\x00\x00\x00\x05noctua-fuzz".to_vec(), 1))
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&who, datagram)) = data.split_first() else {
        return;
    };
    // 10.0.0.0 is no device: the unknown-source drop is exercised too.
    let from = IpAddr::V4(Ipv4Addr::new(10, 0, 0, who % 4));
    RECEIVER.with_borrow_mut(|r| {
        if let Ok((received, _)) = r.read(from, datagram)
            && let Some(m) = received.meaning
        {
            let _ = m.text(&Vec::new());
        }
    });
});
