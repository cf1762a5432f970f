//! noctua's authoritative SNMPv3 engine (informs, RFC 3414) on arbitrary bytes: header reading,
//! discovery reports, signature and time-window checks, decryption and the scoped PDU never
//! panic. Random bytes seldom carry a valid HMAC, so when the first byte is odd the target
//! signs the message itself with the user's key (localised to the engine) before serving it:
//! that takes the fuzzer past authentication into the time window, the cipher and the PDU.
#![no_main]

use std::cell::RefCell;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use noctua::config::AuthProtocol;
use noctua::ingest::trap::engine::{Engine, UserKeys};
use noctua::ingest::usm::crypto::{localized_key, mac};
use noctua::ingest::usm::header;

const ENGINE_ID: &[u8] = b"\x80\x00\x00\x00\x05noctua-fuzz";

const CONFIG: &str = "[snmp.credentials.v3]\nversion = \"v3\"\nuser = \"noctua\"\n\
    auth-protocol = \"sha256\"\nauth-key = \"authpass123\"\npriv-protocol = \"aes128\"\n\
    priv-key = \"privpass123\"\n";

struct Target {
    engine: Engine,
    keys: UserKeys,
    /// The authentication key localised to the engine, to sign inputs with.
    signing: Vec<u8>,
}

thread_local! {
    static TARGET: RefCell<Target> = RefCell::new({
        let config = noctua::config::parse("fuzz.toml", CONFIG, Path::new(".")).unwrap();
        let engine = Engine::new(ENGINE_ID.to_vec(), 1);
        let keys = engine.keys(&config.snmp.credentials["v3"]);
        let signing = localized_key(AuthProtocol::Sha256, b"authpass123", ENGINE_ID);
        Target { engine, keys, signing }
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, datagram)) = data.split_first() else {
        return;
    };
    let mut datagram = datagram.to_vec();
    TARGET.with_borrow_mut(|t| {
        if mode & 1 == 1
            && let Some(h) = header(&datagram)
        {
            let at = h.signature.clone();
            datagram[at.clone()].fill(0);
            let signature = mac(AuthProtocol::Sha256, &t.signing, &datagram);
            let n = at.len().min(signature.len());
            datagram[at.start..at.start + n].copy_from_slice(&signature[..n]);
        }
        if let Some(h) = header(&datagram) {
            let _ = t.engine.serve(&datagram, &h, &t.keys);
        }
    });
});
