//! noctua's own SNMP engine: the authoritative side of SNMPv3 informs (RFC 3414).
//!
//! A v3 trap is signed with keys localised to the sender's engine, but an inform is addressed
//! to the receiver's: the sender first learns our engine id (an unauthenticated probe, answered
//! with a `usmStatsUnknownEngineIDs` report), then our boots and time (an authenticated probe
//! outside the time window, answered with a signed `usmStatsNotInTimeWindows` report), then sends
//! the inform signed (and encrypted) with its user's keys localised to our engine id; the answer
//! is a Response signed and encrypted the same way, carrying the inform's message id.
//!
//! USM is done here rather than by snmp2, whose v3 code is a client's: it checks times as a
//! client would, gives a message the request id as its message id, and puts its own engine id
//! in the context, where a Response must carry the inform's. Signatures (HMAC-MD5/SHA-1/SHA-2)
//! and privacy (DES-CBC, AES-CFB) follow RFC 3414, 3826 and 7860; AES-192/256 keys too short
//! for the cipher are extended as net-snmp does by default (draft-blumenthal-aes-usm; Cisco's
//! "Reeder" variant is not supported). snmp2 still reads the PDU itself.
//!
//! The engine id is made once and kept in the store (senders remember it and the keys
//! localised to it); `snmpEngineBoots` is the store's count of daemon starts; `snmpEngineTime`
//! is seconds since this start.

use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use snmp2::{AsnReader, MessageType, Pdu};

use crate::config::{AuthProtocol, Credential, PrivProtocol};
use crate::ingest::usm::ber::{integer, oid_body, tlv, unsigned};
use crate::ingest::usm::crypto::{
    Crypt, Extend, crypt, localized_key, mac, mac_length, privacy_key_length, with_digest,
};
use crate::ingest::usm::{AUTH, Header, PRIV, REPORTABLE, Scoped, plain_request_id, signed_by};
use crate::telemetry::{EngineReport, TrapDrop};

/// `usmStatsNotInTimeWindows.0` and `usmStatsUnknownEngineIDs.0`.
const NOT_IN_TIME_WINDOWS: [u32; 11] = [1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0];
const UNKNOWN_ENGINE_IDS: [u32; 11] = [1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0];

/// RFC 3414 3.2.7: a message more than this many seconds from our clock is refused.
const TIME_WINDOW: i64 = 150;

/// Our engine: its id, boots and start.
#[derive(Debug)]
pub struct Engine {
    id: Vec<u8>,
    boots: i64,
    started: Instant,
    unknown_engine_ids: u32,
    not_in_time_windows: u32,
    /// The last privacy salt used.
    salt: u64,
}

/// A v3 user's keys for messages to our engine: as configured, and without privacy (for the
/// authenticated probes senders make without it), localised to our engine id.
#[derive(Clone)]
pub struct UserKeys {
    /// The authentication protocol and key, localised to our engine.
    signing: Option<(AuthProtocol, Vec<u8>)>,
    /// The privacy protocol and key (16 bytes), localised to our engine.
    privacy: Option<(PrivProtocol, Vec<u8>)>,
    user: Vec<u8>,
}

impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach logs.
        f.debug_struct("UserKeys").finish_non_exhaustive()
    }
}

/// What a message to our engine led to.
#[derive(Debug)]
pub enum Served {
    /// A trap or inform that passed every check: its PDU's meaning, and for an inform the
    /// signed Response to send.
    Notification(super::Meaning, Option<Vec<u8>>),
    /// A step of discovery: which report and the message to send back.
    Report(EngineReport, Vec<u8>),
}

impl Engine {
    /// The engine with `id`, started for the `boots`-th time.
    pub fn new(id: Vec<u8>, boots: u64) -> Self {
        Self {
            id,
            boots: i64::try_from(boots).unwrap_or(i64::MAX).min(2_147_483_647),
            started: Instant::now(),
            unknown_engine_ids: 0,
            not_in_time_windows: 0,
            salt: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
        }
    }

    /// A fresh engine id for a store that has none: RFC 3411 format 5 (octets, administratively
    /// assigned) under enterprise 0, with twelve random octets.
    pub fn new_id() -> Vec<u8> {
        let mut id = vec![0x80, 0, 0, 0, 5];
        for _ in 0..3 {
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            id.extend_from_slice(&random.to_be_bytes()[..4]);
        }
        id
    }

    /// The engine id.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    fn time(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_secs()).unwrap_or(i64::MAX)
    }

    /// `c`'s keys for messages to this engine (RFC 3414 A.2: stretched, then localised).
    pub fn keys(&self, c: &Credential) -> UserKeys {
        let localise = |p: AuthProtocol, secret: &Option<crate::config::Secret>| {
            let password = secret.as_ref().map_or("", |s| s.expose()).as_bytes();
            localized_key(p, password, &self.id)
        };
        let signing = c.auth_protocol.map(|p| (p, localise(p, &c.auth_key)));
        // A key shorter than the cipher needs (MD5 or SHA-1 with AES-192/256) is extended as
        // net-snmp does by default (draft-blumenthal-aes-usm): append the hash of the key so far.
        let privacy = c.auth_protocol.zip(c.priv_protocol).map(|(a, p)| {
            let key = localise(a, &c.priv_key);
            (p, with_digest(a, Extend(key, privacy_key_length(p))))
        });
        UserKeys {
            signing,
            privacy,
            user: c.user.clone().unwrap_or_default().into_bytes(),
        }
    }

    /// Handles a v3 message whose header names our engine, or no engine (discovery).
    pub fn serve(
        &mut self,
        datagram: &[u8],
        header: &Header<'_>,
        keys: &UserKeys,
    ) -> Result<Served, TrapDrop> {
        if header.engine_id.is_empty() {
            if header.flags & REPORTABLE == 0 {
                return Err(TrapDrop::Unsupported);
            }
            self.unknown_engine_ids = self.unknown_engine_ids.wrapping_add(1);
            let request_id = plain_request_id(header);
            let report = self.report(
                header.msg_id,
                request_id,
                &UNKNOWN_ENGINE_IDS,
                self.unknown_engine_ids,
                None,
            );
            return Ok(Served::Report(EngineReport::UnknownEngineId, report));
        }
        let now = self.time();
        let authenticated = header.flags & AUTH != 0;
        // A user with keys sends signed messages, or none are taken from it.
        if keys.signing.is_some() && !authenticated {
            return Err(TrapDrop::Authentication);
        }
        // RFC 3414 3.2.6 and 3.2.7: authenticate, then check the time window; a sender that
        // does not know our boots and time yet (its probe carries zeros) learns them from a
        // signed report.
        if authenticated {
            let signing = keys.signing.as_ref().ok_or(TrapDrop::Authentication)?;
            if !signed_by(datagram, header, signing) {
                return Err(TrapDrop::Authentication);
            }
            if header.boots != self.boots || (header.time - now).abs() > TIME_WINDOW {
                self.not_in_time_windows = self.not_in_time_windows.wrapping_add(1);
                let report = self.report(
                    header.msg_id,
                    plain_request_id(header),
                    &NOT_IN_TIME_WINDOWS,
                    self.not_in_time_windows,
                    Some(keys),
                );
                return Ok(Served::Report(EngineReport::NotInTimeWindow, report));
            }
        }
        let private = header.flags & PRIV != 0;
        let scoped = if private {
            let (protocol, key) = keys.privacy.as_ref().ok_or(TrapDrop::Authentication)?;
            let encrypted = AsnReader::from_bytes(header.data)
                .read_asn_octetstring()
                .map_err(|_| TrapDrop::Malformed)?;
            crypt(
                *protocol,
                key,
                Crypt::Decrypt,
                header,
                header.salt,
                encrypted,
            )
            .ok_or(TrapDrop::Unsupported)?
        } else {
            header.data.to_vec()
        };
        // Signed correctly but unreadable once decrypted: the privacy key is wrong.
        let unreadable = if private {
            TrapDrop::Authentication
        } else {
            TrapDrop::Malformed
        };
        let scoped = Scoped::read(&scoped).ok_or(unreadable)?;
        let v2c = scoped.as_v2c();
        let pdu = Pdu::from_bytes(&v2c).map_err(|_| unreadable)?;
        let pdu_tag = pdu.message_type;
        let meaning = super::meaning(&pdu).ok_or(unreadable)?;
        // A notification only at the user's own level: an authPriv user's come encrypted.
        if keys.privacy.is_some() && !private {
            return Err(TrapDrop::Authentication);
        }
        match pdu_tag {
            MessageType::Trap => Ok(Served::Notification(meaning, None)),
            MessageType::InformRequest => {
                let response = scoped.response();
                let (salt, data) = if private {
                    let (protocol, key) = keys.privacy.as_ref().ok_or(TrapDrop::Authentication)?;
                    self.salt = self.salt.wrapping_add(1);
                    let salt = self.salt_for(*protocol);
                    let ours = Header {
                        boots: self.boots,
                        time: now,
                        ..header.clone()
                    };
                    let encrypted = crypt(*protocol, key, Crypt::Encrypt, &ours, &salt, &response)
                        .ok_or(TrapDrop::Unsupported)?;
                    (salt, tlv(0x04, &encrypted))
                } else {
                    (Vec::new(), response)
                };
                let flags = header.flags & (AUTH | PRIV);
                let signing = keys.signing.as_ref().filter(|_| authenticated);
                let reply = self.envelope(&Outgoing {
                    msg_id: header.msg_id,
                    flags,
                    user: &keys.user,
                    time: now,
                    salt: &salt,
                    data: &data,
                    signing,
                });
                Ok(Served::Notification(meaning, Some(reply)))
            }
            _ => Err(TrapDrop::Unsupported),
        }
    }

    /// The next salt: for AES a 64-bit counter; for DES our boots and a 32-bit counter.
    fn salt_for(&self, protocol: PrivProtocol) -> Vec<u8> {
        match protocol {
            PrivProtocol::Des => [
                (self.boots as u32).to_be_bytes(),
                (self.salt as u32).to_be_bytes(),
            ]
            .concat(),
            _ => self.salt.to_be_bytes().to_vec(),
        }
    }

    /// A Report PDU with one counter, signed (authNoPriv) if `keys` are given.
    fn report(
        &self,
        msg_id: i64,
        request_id: i64,
        oid: &[u32],
        count: u32,
        keys: Option<&UserKeys>,
    ) -> Vec<u8> {
        let varbind = tlv(
            0x30,
            &[tlv(0x06, &oid_body(oid)), tlv(0x41, &unsigned(count))].concat(),
        );
        let pdu = tlv(
            0xa8,
            &[
                integer(request_id),
                integer(0),
                integer(0),
                tlv(0x30, &varbind),
            ]
            .concat(),
        );
        let scoped = tlv(0x30, &[tlv(0x04, &self.id), tlv(0x04, b""), pdu].concat());
        let signing = keys.and_then(|k| k.signing.as_ref());
        let flags = if signing.is_some() { AUTH } else { 0 };
        let user = keys.map_or(&[][..], |k| &k.user);
        self.envelope(&Outgoing {
            msg_id,
            flags,
            user,
            time: self.time(),
            salt: b"",
            data: &scoped,
            signing,
        })
    }

    /// A whole v3 message around `m.data`, signed with `m.signing` when given.
    fn envelope(&self, m: &Outgoing<'_>) -> Vec<u8> {
        let Outgoing {
            msg_id,
            flags,
            user,
            time,
            salt: priv_params,
            data,
            signing,
        } = *m;
        let mac_len = signing.map_or(0, |(p, _)| mac_length(*p));
        let head = [integer(self.boots), integer(time), tlv(0x04, user)].concat();
        let head = [tlv(0x04, &self.id), head].concat();
        let usm_body = [
            head.clone(),
            tlv(0x04, &vec![0; mac_len]),
            tlv(0x04, priv_params),
        ]
        .concat();
        let usm = tlv(0x30, &usm_body);
        let global = tlv(
            0x30,
            &[
                integer(msg_id),
                integer(65_507),
                tlv(0x04, &[flags]),
                integer(3),
            ]
            .concat(),
        );
        let sec = tlv(0x04, &usm);
        let body = [integer(3), global.clone(), sec.clone(), data.to_vec()].concat();
        let mut message = tlv(0x30, &body);
        if let Some((protocol, key)) = signing {
            // Where the zeroed signature sits: after the outer header, version, global data,
            // the two headers around the USM parameters, their first fields and the
            // signature's own tag and length.
            let outer = message.len() - body.len();
            let sec_head = sec.len() - usm.len();
            let usm_head = usm.len() - usm_body.len();
            let mac_head = tlv(0x04, &vec![0; mac_len]).len() - mac_len;
            let at = outer
                + integer(3).len()
                + global.len()
                + sec_head
                + usm_head
                + head.len()
                + mac_head;
            let mac = mac(*protocol, key, &message);
            message[at..at + mac_len].copy_from_slice(&mac[..mac_len]);
        }
        message
    }
}

/// A v3 message to send, before its envelope.
#[derive(Clone, Copy)]
struct Outgoing<'a> {
    msg_id: i64,
    flags: u8,
    user: &'a [u8],
    /// Our engine time to state (and that an encrypted `data` was made with).
    time: i64,
    /// msgPrivacyParameters.
    salt: &'a [u8],
    /// A scoped PDU, or an encrypted one as an OCTET STRING.
    data: &'a [u8],
    signing: Option<&'a (AuthProtocol, Vec<u8>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::usm::header;

    /// What snmp2 verifies, this engine signed: a Response built and signed here passes
    /// snmp2's check with the user's keys localised to our engine, and a flipped byte fails it.
    #[test]
    fn a_signed_report_verifies_with_snmp2_and_a_flipped_byte_does_not() {
        let credential: Credential = toml::from_str(
            "version = \"v3\"\nuser = \"noctua\"\nauth-protocol = \"sha256\"\nauth-key = \"authpass123\"\n",
        )
        .unwrap();
        let engine = Engine::new(vec![0x80, 0, 0, 0, 5, 1, 2, 3, 4], 3);
        let keys = engine.keys(&credential);
        let report = engine.report(77, 5, &NOT_IN_TIME_WINDOWS, 1, Some(&keys));
        let h = header(&report).unwrap();
        assert_eq!(
            (h.msg_id, h.flags, h.engine_id, h.boots),
            (77, AUTH, engine.id(), 3)
        );
        let check = |bytes: &[u8]| {
            let copy = bytes.to_vec();
            let h = header(bytes).unwrap();
            let mut s = crate::ingest::usm::usm_security(&credential)
                .with_engine_id(engine.id())
                .unwrap()
                .with_engine_boots_and_time(h.boots, h.time);
            Pdu::from_bytes_with_security(&copy, Some(&mut s)).map(|p| (p.message_type, p.req_id))
        };
        let (kind, request) = check(&report).unwrap();
        assert_eq!((kind, request), (MessageType::Report, 5));
        let mut forged = report.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(check(&forged).is_err());
        let signing = keys.signing.as_ref().unwrap();
        assert!(signed_by(&report, &h, signing));
        assert!(!signed_by(&forged, &header(&forged).unwrap(), signing));
    }

    /// A signed message with stale boots gets a signed notInTimeWindow report; one with a bad
    /// signature gets nothing; a probe without an engine id gets the unknownEngineID report.
    #[test]
    fn discovery_and_time_window_are_answered_with_reports() {
        let credential: Credential = toml::from_str(
            "version = \"v3\"\nuser = \"noctua\"\nauth-protocol = \"sha1\"\nauth-key = \"authpass123\"\n",
        )
        .unwrap();
        let id = vec![0x80, 0, 0, 0, 5, 9, 9];
        let mut ours = Engine::new(id.clone(), 7);
        let keys = ours.keys(&credential);
        // A sender that thinks we are at boots 0 (the message names our engine id).
        let stale = Engine::new(id, 0).report(41, 12, &UNKNOWN_ENGINE_IDS, 1, Some(&keys));
        let h = header(&stale).unwrap();
        let report_of = |served: Result<Served, TrapDrop>| match served {
            Ok(Served::Report(_, r)) => r,
            other => panic!("expected a report, got {other:?}"),
        };
        let report = report_of(ours.serve(&stale, &h, &keys));
        let rh = header(&report).unwrap();
        assert_eq!((rh.msg_id, rh.flags, rh.boots), (41, AUTH, 7));
        assert!(signed_by(&report, &rh, keys.signing.as_ref().unwrap()));
        assert!(
            report
                .windows(10)
                .any(|w| w == oid_body(&NOT_IN_TIME_WINDOWS))
        );
        let mut forged = stale.clone();
        forged[h.signature.start] ^= 1;
        assert_eq!(
            ours.serve(&forged, &h, &keys).err(),
            Some(TrapDrop::Authentication)
        );
        // Discovery: no engine id, reportable, unauthenticated.
        let scoped = tlv(
            0x30,
            &[
                tlv(4, b""),
                tlv(4, b""),
                tlv(
                    0xa0,
                    &[integer(77), integer(0), integer(0), tlv(0x30, b"")].concat(),
                ),
            ]
            .concat(),
        );
        let probe = Engine::new(Vec::new(), 0).envelope(&Outgoing {
            msg_id: 5,
            flags: REPORTABLE,
            user: b"",
            time: 0,
            salt: b"",
            data: &scoped,
            signing: None,
        });
        let ph = header(&probe).unwrap();
        let discovered = report_of(ours.serve(&probe, &ph, &keys));
        let dh = header(&discovered).unwrap();
        assert_eq!((dh.msg_id, dh.flags, dh.engine_id), (5, 0, ours.id()));
        assert!(
            discovered
                .windows(10)
                .any(|w| w == oid_body(&UNKNOWN_ENGINE_IDS))
        );
        assert_eq!(plain_request_id(&header(&discovered).unwrap()), 77);
    }

    /// A v3 authPriv (SHA-1, AES-128) inform to engine `id` at boots 7, from a sender whose own
    /// engine id is `0x8000000501`, as net-snmp would send it; with the user's keys.
    fn inform(id: &[u8]) -> (UserKeys, Vec<u8>) {
        let credential: Credential = toml::from_str(
            "version = \"v3\"\nuser = \"noctua\"\nauth-protocol = \"sha1\"\nauth-key = \"authpass123\"\npriv-protocol = \"aes128\"\npriv-key = \"privpass123\"\n",
        )
        .unwrap();
        let sender = Engine::new(id.to_vec(), 7);
        let keys = sender.keys(&credential);
        let trap_oid = [43, 6, 1, 6, 3, 1, 1, 4, 1, 0];
        let link_down = oid_body(&[1, 3, 6, 1, 6, 3, 1, 1, 5, 3]);
        let varbinds = tlv(
            0x30,
            &tlv(0x30, &[tlv(6, &trap_oid), tlv(6, &link_down)].concat()),
        );
        let pdu = tlv(
            0xa6,
            &[integer(4242), integer(0), integer(0), varbinds].concat(),
        );
        let scoped = tlv(
            0x30,
            &[tlv(4, &[0x80, 0, 0, 0, 5, 1]), tlv(4, b""), pdu].concat(),
        );
        let (protocol, key) = keys.privacy.clone().unwrap();
        let salt = [0, 0, 0, 0, 0, 0, 0, 9];
        let at = Header {
            msg_id: 0,
            flags: 0,
            engine_id: b"",
            boots: 7,
            time: 0,
            signature: 0..0,
            salt: b"",
            data: b"",
        };
        let encrypted = crypt(protocol, &key, Crypt::Encrypt, &at, &salt, &scoped).unwrap();
        let message = sender.envelope(&Outgoing {
            msg_id: 99,
            flags: AUTH | PRIV | REPORTABLE,
            user: b"noctua",
            time: 0,
            salt: &salt,
            data: &tlv(4, &encrypted),
            signing: keys.signing.as_ref(),
        });
        (keys, message)
    }

    /// The inform is taken and answered: the Response carries its message id, is signed and
    /// encrypted, and inside has the inform's request id and context, and no error.
    #[test]
    fn an_inform_gets_a_signed_encrypted_response_with_its_ids() {
        let id = [0x80, 0, 0, 0, 5, 7, 7];
        let (keys, message) = inform(&id);
        let mut ours = Engine::new(id.to_vec(), 7);
        let h = header(&message).unwrap();
        let Ok(Served::Notification(meaning, Some(reply))) = ours.serve(&message, &h, &keys) else {
            panic!("the inform was not answered");
        };
        assert_eq!(meaning.label, "link_down");
        let rh = header(&reply).unwrap();
        assert_eq!(
            (rh.msg_id, rh.flags, rh.engine_id),
            (99, AUTH | PRIV, &id[..])
        );
        assert!(signed_by(&reply, &rh, keys.signing.as_ref().unwrap()));
        let (protocol, key) = keys.privacy.clone().unwrap();
        let sealed = AsnReader::from_bytes(rh.data)
            .read_asn_octetstring()
            .unwrap();
        let plain = crypt(protocol, &key, Crypt::Decrypt, &rh, rh.salt, sealed).unwrap();
        let scoped = Scoped::read(&plain).unwrap();
        assert_eq!(scoped.context_engine, [0x80, 0, 0, 0, 5, 1]);
        assert_eq!(scoped.tag, 0xa2);
        let mut r = AsnReader::from_bytes(scoped.pdu);
        assert_eq!(
            [
                r.read_asn_integer(),
                r.read_asn_integer(),
                r.read_asn_integer()
            ]
            .map(Result::unwrap),
            [4242, 0, 0]
        );
    }

    proptest::proptest! {
        /// A damaged or arbitrary message to our engine is refused or answered, never a panic.
        #[test]
        fn damaged_messages_never_panic(
            at in 0usize..200,
            byte in proptest::prelude::any::<u8>(),
            keep in 1usize..200,
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            static FIXTURE: std::sync::OnceLock<(UserKeys, Vec<u8>)> = std::sync::OnceLock::new();
            let id = [0x80, 0, 0, 0, 5, 7, 7];
            let (keys, message) = FIXTURE.get_or_init(|| inform(&id));
            let mut ours = Engine::new(id.to_vec(), 7);
            let mut damaged = message.clone();
            if let Some(b) = damaged.get_mut(at) {
                *b = byte;
            }
            damaged.truncate(keep.max(damaged.len() / 2));
            for bytes in [&damaged, &random] {
                if let Some(h) = header(bytes) {
                    let _ = ours.serve(bytes, &h, keys);
                }
            }
        }
    }
}
