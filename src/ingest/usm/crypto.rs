//! USM's cryptography: HMAC signatures (MD5, SHA-1, SHA-2; RFC 3414, 7860), password-to-key
//! localisation (RFC 3414 A.2) with net-snmp's key extension for AES-192/256, and privacy
//! (DES-CBC, RFC 3414 8; AES-CFB, RFC 3826).

use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::digest::Digest;
use hmac::digest::core_api::BlockSizeUser;
use hmac::{Mac, SimpleHmac};

use super::Header;
use crate::config::{AuthProtocol, PrivProtocol};

/// Which way [`crypt`] goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crypt {
    /// Seal.
    Encrypt,
    /// Open.
    Decrypt,
}

/// How many bytes of privacy key a protocol uses (DES: key and pre-IV).
pub(crate) fn privacy_key_length(p: PrivProtocol) -> usize {
    match p {
        PrivProtocol::Des | PrivProtocol::Aes128 => 16,
        PrivProtocol::Aes192 => 24,
        PrivProtocol::Aes256 => 32,
    }
}

/// RFC 3414 8 (DES-CBC) and RFC 3826 (AES-CFB; 192 and 256 bits as net-snmp does them) with the
/// key localised to our engine, for a message with `header`'s boots and time and `salt`;
/// `None` for bad input.
pub(crate) fn crypt(
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
pub(crate) fn cfb<C>(key: &[u8], iv: &[u8; 16], way: Crypt, buf: &mut [u8]) -> Option<()>
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

/// How many bytes of the HMAC a message carries (RFC 3414, RFC 7860).
pub(crate) fn mac_length(p: AuthProtocol) -> usize {
    match p {
        AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
        AuthProtocol::Sha224 => 16,
        AuthProtocol::Sha256 => 24,
        AuthProtocol::Sha384 => 32,
        AuthProtocol::Sha512 => 48,
    }
}

/// Work that runs with the hash function of an authentication protocol.
pub(crate) trait WithDigest {
    fn run<D: Digest + BlockSizeUser>(self) -> Vec<u8>;
}

/// Runs `work` with `p`'s hash function: the one place protocols map to hashes.
pub(crate) fn with_digest(p: AuthProtocol, work: impl WithDigest) -> Vec<u8> {
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
pub(crate) struct Localise<'a>(&'a [u8], &'a [u8]);

impl WithDigest for Localise<'_> {
    fn run<D: Digest + BlockSizeUser>(self) -> Vec<u8> {
        localized::<D>(self.0, self.1)
    }
}

/// Key extension as [`WithDigest`] work: (key, length wanted).
pub(crate) struct Extend(pub(crate) Vec<u8>, pub(crate) usize);

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
pub(crate) struct Sign<'a>(&'a [u8], &'a [u8]);

impl WithDigest for Sign<'_> {
    fn run<D: Digest + BlockSizeUser>(self) -> Vec<u8> {
        hmac::<D>(self.0, self.1)
    }
}

/// `password`'s key for `p`, localised to `engine` (RFC 3414 A.2).
pub fn localized_key(p: AuthProtocol, password: &[u8], engine: &[u8]) -> Vec<u8> {
    with_digest(p, Localise(password, engine))
}

/// RFC 3414 A.2: the password stretched over a megabyte, then localised to `engine`.
pub(crate) fn localized<D: Digest>(password: &[u8], engine: &[u8]) -> Vec<u8> {
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

/// The HMAC of `message` under `key` with `p`'s hash (untruncated).
pub fn mac(p: AuthProtocol, key: &[u8], message: &[u8]) -> Vec<u8> {
    with_digest(p, Sign(key, message))
}

pub(crate) fn hmac<D: Digest + BlockSizeUser>(key: &[u8], message: &[u8]) -> Vec<u8> {
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
    use crate::ingest::usm::{AUTH, PRIV};

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
