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

use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::digest::Digest;
use hmac::digest::core_api::BlockSizeUser;
use hmac::{Mac, SimpleHmac};
use snmp2::{AsnReader, MessageType, Pdu};

use crate::config::{AuthProtocol, Credential, PrivProtocol};
use crate::telemetry::{EngineReport, TrapDrop};

/// msgFlags bits.
const AUTH: u8 = 0x01;
const PRIV: u8 = 0x02;
const REPORTABLE: u8 = 0x04;

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

/// The parts of a v3 message header that decide how it is handled.
#[derive(Debug, Clone, PartialEq)]
pub struct Header<'a> {
    /// msgID, echoed in the answer.
    pub msg_id: i64,
    /// msgFlags.
    pub flags: u8,
    /// msgAuthoritativeEngineID.
    pub engine_id: &'a [u8],
    /// msgAuthoritativeEngineBoots.
    pub boots: i64,
    /// msgAuthoritativeEngineTime.
    pub time: i64,
    /// Where msgAuthenticationParameters (the signature) is in the datagram.
    signature: std::ops::Range<usize>,
    /// msgPrivacyParameters (the salt).
    salt: &'a [u8],
    /// msgData: a scoped PDU, or (encrypted) an OCTET STRING.
    data: &'a [u8],
}

/// Reads a v3 message's header; `None` if it is not one.
pub fn header(datagram: &[u8]) -> Option<Header<'_>> {
    let message = AsnReader::from_bytes(datagram).read_raw(0x30).ok()?;
    let mut r = AsnReader::from_bytes(message);
    if r.read_asn_integer().ok()? != 3 {
        return None;
    }
    let mut global = AsnReader::from_bytes(r.read_raw(0x30).ok()?);
    let msg_id = global.read_asn_integer().ok()?;
    let _max_size = global.read_asn_integer().ok()?;
    let flags = *global.read_asn_octetstring().ok()?.first()?;
    let usm = r.read_asn_octetstring().ok()?;
    let data = &message[message.len() - r.bytes_left()..];
    let mut usm = AsnReader::from_bytes(AsnReader::from_bytes(usm).read_raw(0x30).ok()?);
    let engine_id = usm.read_asn_octetstring().ok()?;
    let boots = usm.read_asn_integer().ok()?;
    let time = usm.read_asn_integer().ok()?;
    let _user = usm.read_asn_octetstring().ok()?;
    let signature = usm.read_asn_octetstring().ok()?;
    let salt = usm.read_asn_octetstring().ok()?;
    // The field is a slice of `datagram`, so its place is the difference of the addresses.
    let start = signature.as_ptr() as usize - datagram.as_ptr() as usize;
    Some(Header {
        msg_id,
        flags,
        engine_id,
        boots,
        time,
        signature: start..start + signature.len(),
        salt,
        data,
    })
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
        let scoped = Scoped::read(&scoped).ok_or(TrapDrop::Malformed)?;
        let v2c = scoped.as_v2c();
        let pdu = Pdu::from_bytes(&v2c).map_err(|_| TrapDrop::Malformed)?;
        let pdu_tag = pdu.message_type;
        let meaning = super::meaning(&pdu).ok_or(TrapDrop::Malformed)?;
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

/// Whether `datagram`'s signature is the HMAC of the datagram (signature zeroed) under the key.
fn signed_by(
    datagram: &[u8],
    header: &Header<'_>,
    (protocol, key): &(AuthProtocol, Vec<u8>),
) -> bool {
    let n = mac_length(*protocol);
    let Some(given) = datagram.get(header.signature.clone()) else {
        return false;
    };
    if given.len() != n {
        return false;
    }
    let mut zeroed = datagram.to_vec();
    zeroed[header.signature.clone()].fill(0);
    let expected = mac(*protocol, key, &zeroed);
    // Compared without an early exit, so timing says nothing about where a forgery differs.
    expected.len() >= n
        && given
            .iter()
            .zip(&expected)
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
}

/// Which way [`crypt`] goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Crypt {
    Encrypt,
    Decrypt,
}

/// How many bytes of privacy key a protocol uses (DES: key and pre-IV).
fn privacy_key_length(p: PrivProtocol) -> usize {
    match p {
        PrivProtocol::Des | PrivProtocol::Aes128 => 16,
        PrivProtocol::Aes192 => 24,
        PrivProtocol::Aes256 => 32,
    }
}

/// RFC 3414 8 (DES-CBC) and RFC 3826 (AES-CFB; 192 and 256 bits as net-snmp does them) with the
/// key localised to our engine, for a message with `header`'s boots and time and `salt`;
/// `None` for bad input.
fn crypt(
    protocol: PrivProtocol,
    key: &[u8],
    way: Crypt,
    header: &Header<'_>,
    salt: &[u8],
    input: &[u8],
) -> Option<Vec<u8>> {
    let salt: [u8; 8] = salt.try_into().ok()?;
    let mut buf = input.to_vec();
    let key = key.get(..privacy_key_length(protocol))?;
    if protocol == PrivProtocol::Des {
        let des_key: [u8; 8] = key.get(..8)?.try_into().ok()?;
        let pre_iv = key.get(8..16)?;
        let iv: [u8; 8] = std::array::from_fn(|i| pre_iv[i] ^ salt[i]);
        match way {
            Crypt::Encrypt => {
                // Padded to whole blocks; the receiver reads the BER length, not the padding.
                buf.resize(buf.len().div_ceil(8) * 8, 0);
                let n = buf.len();
                cbc::Encryptor::<des::Des>::new(&des_key.into(), &iv.into())
                    .encrypt_padded_mut::<NoPadding>(&mut buf, n)
                    .ok()?;
            }
            Crypt::Decrypt => {
                cbc::Decryptor::<des::Des>::new(&des_key.into(), &iv.into())
                    .decrypt_padded_mut::<NoPadding>(&mut buf)
                    .ok()?;
            }
        }
        return Some(buf);
    }
    let iv = [
        (header.boots as u32).to_be_bytes(),
        (header.time as u32).to_be_bytes(),
    ]
    .concat();
    let iv: [u8; 16] = [iv.as_slice(), &salt].concat().try_into().ok()?;
    match protocol {
        PrivProtocol::Aes192 => cfb::<aes::Aes192>(key, &iv, way, &mut buf)?,
        PrivProtocol::Aes256 => cfb::<aes::Aes256>(key, &iv, way, &mut buf)?,
        _ => cfb::<aes::Aes128>(key, &iv, way, &mut buf)?,
    }
    Some(buf)
}

/// AES-CFB128 one way or the other over `buf`.
fn cfb<C>(key: &[u8], iv: &[u8; 16], way: Crypt, buf: &mut [u8]) -> Option<()>
where
    C: cbc::cipher::BlockEncryptMut
        + cbc::cipher::BlockCipher
        + cbc::cipher::KeyInit
        + cbc::cipher::BlockSizeUser<BlockSize = cbc::cipher::consts::U16>,
{
    match way {
        Crypt::Encrypt => cfb_mode::Encryptor::<C>::new_from_slices(key, iv)
            .ok()?
            .encrypt(buf),
        Crypt::Decrypt => cfb_mode::Decryptor::<C>::new_from_slices(key, iv)
            .ok()?
            .decrypt(buf),
    }
    Some(())
}

/// A plaintext scoped PDU: the context it names and its PDU.
struct Scoped<'a> {
    context_engine: &'a [u8],
    context_name: &'a [u8],
    /// The PDU's tag and content.
    tag: u8,
    pdu: &'a [u8],
}

impl<'a> Scoped<'a> {
    /// Reads a scoped PDU (decrypted text may carry padding after it).
    fn read(bytes: &'a [u8]) -> Option<Self> {
        let mut r = AsnReader::from_bytes(AsnReader::from_bytes(bytes).read_raw(0x30).ok()?);
        let context_engine = r.read_asn_octetstring().ok()?;
        let context_name = r.read_asn_octetstring().ok()?;
        let tag = r.peek_byte().ok()?;
        let pdu = r.read_raw(tag).ok()?;
        Some(Self {
            context_engine,
            context_name,
            tag,
            pdu,
        })
    }

    /// The PDU wrapped as a v2c message (the same PDU format), for snmp2 to read.
    fn as_v2c(&self) -> Vec<u8> {
        tlv(
            0x30,
            &[integer(1), tlv(0x04, b""), tlv(self.tag, self.pdu)].concat(),
        )
    }

    /// The PDU's request id.
    fn request_id(&self) -> Option<i64> {
        AsnReader::from_bytes(self.pdu).read_asn_integer().ok()
    }

    /// The Response to this (inform) PDU: same context, request id and varbinds, no error.
    fn response(&self) -> Vec<u8> {
        let mut r = AsnReader::from_bytes(self.pdu);
        let request_id = r.read_asn_integer().unwrap_or(0);
        let _ = r.read_asn_integer();
        let _ = r.read_asn_integer();
        let varbinds = &self.pdu[self.pdu.len() - r.bytes_left()..];
        let pdu = tlv(
            0xa2,
            &[
                integer(request_id),
                integer(0),
                integer(0),
                varbinds.to_vec(),
            ]
            .concat(),
        );
        tlv(
            0x30,
            &[
                tlv(0x04, self.context_engine),
                tlv(0x04, self.context_name),
                pdu,
            ]
            .concat(),
        )
    }
}

/// The request id a report echoes: the PDU's if the message is plaintext (RFC 3412 7.1.3), else
/// 0 (a report answers before decryption).
fn plain_request_id(header: &Header<'_>) -> i64 {
    if header.flags & PRIV != 0 {
        return 0;
    }
    Scoped::read(header.data)
        .and_then(|s| s.request_id())
        .unwrap_or(0)
}

/// A BER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
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
fn integer(n: i64) -> Vec<u8> {
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
fn unsigned(n: u32) -> Vec<u8> {
    let bytes = u64::from(n).to_be_bytes();
    let mut start = 0;
    while start < 7 && bytes[start] == 0 && bytes[start + 1] & 0x80 == 0 {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// The content of an OBJECT IDENTIFIER.
fn oid_body(arcs: &[u32]) -> Vec<u8> {
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

/// How many bytes of the HMAC a message carries (RFC 3414, RFC 7860).
fn mac_length(p: AuthProtocol) -> usize {
    match p {
        AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
        AuthProtocol::Sha224 => 16,
        AuthProtocol::Sha256 => 24,
        AuthProtocol::Sha384 => 32,
        AuthProtocol::Sha512 => 48,
    }
}

/// Work that runs with the hash function of an authentication protocol.
trait WithDigest {
    fn run<D: Digest + BlockSizeUser>(self) -> Vec<u8>;
}

/// Runs `work` with `p`'s hash function: the one place protocols map to hashes.
fn with_digest(p: AuthProtocol, work: impl WithDigest) -> Vec<u8> {
    match p {
        AuthProtocol::Md5 => work.run::<md5::Md5>(),
        AuthProtocol::Sha1 => work.run::<sha1::Sha1>(),
        AuthProtocol::Sha224 => work.run::<sha2::Sha224>(),
        AuthProtocol::Sha256 => work.run::<sha2::Sha256>(),
        AuthProtocol::Sha384 => work.run::<sha2::Sha384>(),
        AuthProtocol::Sha512 => work.run::<sha2::Sha512>(),
    }
}

/// [`localized`] as [`WithDigest`] work: (password, engine id).
struct Localise<'a>(&'a [u8], &'a [u8]);

impl WithDigest for Localise<'_> {
    fn run<D: Digest + BlockSizeUser>(self) -> Vec<u8> {
        localized::<D>(self.0, self.1)
    }
}

/// Key extension as [`WithDigest`] work: (key, length wanted).
struct Extend(Vec<u8>, usize);

impl WithDigest for Extend {
    fn run<D: Digest + BlockSizeUser>(self) -> Vec<u8> {
        let Extend(mut key, wanted) = self;
        while key.len() < wanted {
            let more = D::digest(&key);
            key.extend_from_slice(&more);
        }
        key
    }
}

/// [`hmac`] as [`WithDigest`] work: (key, message).
struct Sign<'a>(&'a [u8], &'a [u8]);

impl WithDigest for Sign<'_> {
    fn run<D: Digest + BlockSizeUser>(self) -> Vec<u8> {
        hmac::<D>(self.0, self.1)
    }
}

fn localized_key(p: AuthProtocol, password: &[u8], engine: &[u8]) -> Vec<u8> {
    with_digest(p, Localise(password, engine))
}

/// RFC 3414 A.2: the password stretched over a megabyte, then localised to `engine`.
fn localized<D: Digest>(password: &[u8], engine: &[u8]) -> Vec<u8> {
    let mut h = D::new();
    if !password.is_empty() {
        let mut block = [0u8; 64];
        let mut at = 0;
        for _ in 0..(1_048_576 / block.len()) {
            for b in &mut block {
                *b = password[at % password.len()];
                at += 1;
            }
            h.update(block);
        }
    }
    let ku = h.finalize();
    let mut h = D::new();
    h.update(&ku);
    h.update(engine);
    h.update(&ku);
    h.finalize().to_vec()
}

fn mac(p: AuthProtocol, key: &[u8], message: &[u8]) -> Vec<u8> {
    with_digest(p, Sign(key, message))
}

fn hmac<D: Digest + BlockSizeUser>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // Any key length is valid for HMAC, so this cannot fail.
    let Ok(mut m) = SimpleHmac::<D>::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(message);
    m.finalize().into_bytes().to_vec()
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

    #[test]
    fn localised_keys_match_rfc_3414_a_3() {
        // RFC 3414 A.3.1 (MD5) and A.3.2 (SHA-1): "maplesyrup", engine 000000000000000000000002.
        let engine = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let hex = |v: Vec<u8>| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(localized_key(AuthProtocol::Md5, b"maplesyrup", &engine)),
            "526f5eed9fcce26f8964c2930787d82b"
        );
        assert_eq!(
            hex(localized_key(AuthProtocol::Sha1, b"maplesyrup", &engine)),
            "6695febc9288e36282235fc7151f128497b38f3f"
        );
    }

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
            let mut s = crate::ingest::snmp::usm_security(&credential)
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

    /// Encryption and decryption undo each other for both ciphers, and depend on the salt.
    #[test]
    fn privacy_round_trips() {
        let plain = b"0\x0f\x04\x00\x04\x00\xa2\x09\x02\x01\x07\x02\x01\x00\x02\x01\x00".to_vec();
        let h = Header {
            msg_id: 1,
            flags: AUTH | PRIV,
            engine_id: b"e",
            boots: 4,
            time: 99,
            signature: 0..0,
            salt: b"",
            data: b"",
        };
        let key = localized_key(AuthProtocol::Sha256, b"privpass123", b"e");
        for protocol in [
            PrivProtocol::Aes128,
            PrivProtocol::Des,
            PrivProtocol::Aes192,
            PrivProtocol::Aes256,
        ] {
            let key = with_digest(
                AuthProtocol::Sha256,
                Extend(key.clone(), privacy_key_length(protocol)),
            );
            let salt = [1, 2, 3, 4, 5, 6, 7, 8];
            let sealed = crypt(protocol, &key, Crypt::Encrypt, &h, &salt, &plain).unwrap();
            assert_ne!(sealed[..plain.len()], plain[..]);
            let opened = crypt(protocol, &key, Crypt::Decrypt, &h, &salt, &sealed).unwrap();
            assert_eq!(opened[..plain.len()], plain[..], "{protocol:?}");
            let other = crypt(protocol, &key, Crypt::Decrypt, &h, &[9; 8], &sealed).unwrap();
            assert_ne!(other[..plain.len()], plain[..]);
        }
        // A key too short for the cipher is refused, not padded with zeros.
        let short = &key[..16];
        assert!(
            crypt(
                PrivProtocol::Aes256,
                short,
                Crypt::Encrypt,
                &h,
                &[0; 8],
                &plain
            )
            .is_none()
        );
    }
}
