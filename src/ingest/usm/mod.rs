//! SNMPv3 user-based security (USM, RFC 3414), shared by the poller (through snmp2's client
//! sessions, [`usm_security`]) and the trap receiver (noctua's own authoritative engine, for
//! informs): the message header, scoped PDUs and signature checks here; hashes, keys and
//! ciphers in [`crypto`]; the few BER pieces the engine writes in [`ber`].

pub mod ber;
pub mod crypto;

use snmp2::AsnReader;

use crate::config::{AuthProtocol, Credential, PrivProtocol};
use ber::{integer, tlv};
use crypto::{mac, mac_length};

/// The USM security of a v3 credential (engine id and keys are learned from the agent, or
/// from a trap's sender).
pub fn usm_security(c: &Credential) -> snmp2::v3::Security {
    let user = c.user.as_deref().unwrap_or("");
    let auth_key = c.auth_key.as_ref().map_or("", |s| s.expose());
    let security = snmp2::v3::Security::new(user.as_bytes(), auth_key.as_bytes());
    match c.auth_protocol {
        None => security.with_auth(snmp2::v3::Auth::NoAuthNoPriv),
        Some(p) => {
            let protocol = match p {
                AuthProtocol::Md5 => snmp2::v3::AuthProtocol::Md5,
                AuthProtocol::Sha1 => snmp2::v3::AuthProtocol::Sha1,
                AuthProtocol::Sha224 => snmp2::v3::AuthProtocol::Sha224,
                AuthProtocol::Sha256 => snmp2::v3::AuthProtocol::Sha256,
                AuthProtocol::Sha384 => snmp2::v3::AuthProtocol::Sha384,
                AuthProtocol::Sha512 => snmp2::v3::AuthProtocol::Sha512,
            };
            let auth = match c.priv_protocol {
                None => snmp2::v3::Auth::AuthNoPriv,
                Some(p) => snmp2::v3::Auth::AuthPriv {
                    cipher: match p {
                        PrivProtocol::Des => snmp2::v3::Cipher::Des,
                        PrivProtocol::Aes128 => snmp2::v3::Cipher::Aes128,
                        PrivProtocol::Aes192 => snmp2::v3::Cipher::Aes192,
                        PrivProtocol::Aes256 => snmp2::v3::Cipher::Aes256,
                    },
                    privacy_password: c
                        .priv_key
                        .as_ref()
                        .map_or(&b""[..], |s| s.expose().as_bytes())
                        .to_vec(),
                },
            };
            security.with_auth_protocol(protocol).with_auth(auth)
        }
    }
}

/// msgFlags bits.
pub(crate) const AUTH: u8 = 0x01;
pub(crate) const PRIV: u8 = 0x02;
pub(crate) const REPORTABLE: u8 = 0x04;

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
    pub signature: std::ops::Range<usize>,
    /// msgPrivacyParameters (the salt).
    pub(crate) salt: &'a [u8],
    /// msgData: a scoped PDU, or (encrypted) an OCTET STRING.
    pub(crate) data: &'a [u8],
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

/// A plaintext scoped PDU: the context it names and its PDU.
pub(crate) struct Scoped<'a> {
    pub(crate) context_engine: &'a [u8],
    pub(crate) context_name: &'a [u8],
    /// The PDU's tag and content.
    pub(crate) tag: u8,
    pub(crate) pdu: &'a [u8],
}

impl<'a> Scoped<'a> {
    /// Reads a scoped PDU (decrypted text may carry padding after it).
    pub(crate) fn read(bytes: &'a [u8]) -> Option<Self> {
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
    pub(crate) fn as_v2c(&self) -> Vec<u8> {
        tlv(
            0x30,
            &[integer(1), tlv(0x04, b""), tlv(self.tag, self.pdu)].concat(),
        )
    }

    /// The PDU's request id.
    pub(crate) fn request_id(&self) -> Option<i64> {
        AsnReader::from_bytes(self.pdu).read_asn_integer().ok()
    }

    /// The Response to this (inform) PDU: same context, request id and varbinds, no error.
    pub(crate) fn response(&self) -> Vec<u8> {
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
pub(crate) fn plain_request_id(header: &Header<'_>) -> i64 {
    if header.flags & PRIV != 0 {
        return 0;
    }
    Scoped::read(header.data)
        .and_then(|s| s.request_id())
        .unwrap_or(0)
}

/// Whether `datagram`'s signature is the HMAC of the datagram (signature zeroed) under the key.
pub(crate) fn signed_by(
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
