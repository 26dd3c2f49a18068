//! WeChat's message push (消息推送) as the official docs specify it: the SHA-1 signatures and
//! 安全模式's AES-256-CBC. Our push endpoint checks and decrypts with it; the simulator signs
//! and encrypts what it delivers with it.
//!
//! - `signature` = hex SHA-1 of token, timestamp and nonce sorted and joined; in 安全模式
//!   `msg_signature` adds the `Encrypt` field to the sort.
//! - The 43-character EncodingAESKey plus `=` is the base64 of the 32-byte AES key; the IV
//!   is the key's first 16 bytes. The plaintext is 16 random bytes, the message's length as
//!   4 bytes big-endian, the message, and the app id, padded PKCS#7-style to a multiple of
//!   32 bytes (not AES's 16).

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use rand::RngCore;
use sha1::{Digest, Sha1};

/// WeChat pads to this block size (a multiple of AES's 16).
const PAD_BLOCK: usize = 32;

/// The key is random text: its last character may carry bits past the 32 bytes, which the
/// official SDKs' decoders ignore, and so do we.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Hex SHA-1 of `parts` sorted and joined: `signature` (token, timestamp, nonce) and
/// `msg_signature` (the same and `Encrypt`).
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    hex::encode(Sha1::digest(sorted.concat().as_bytes()))
}

/// Compares a signature WeChat sent with the one we compute, in constant time.
pub fn signature_matches(given: &str, parts: &[&str]) -> bool {
    let expected = signature(parts);
    let given = given.to_ascii_lowercase();
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Why an `Encrypt` field could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushCryptoError {
    #[error("Encrypt is not base64")]
    Base64,
    #[error("Encrypt is not whole AES blocks")]
    Blocks,
    #[error("Encrypt has bad padding or length")]
    Layout,
    #[error("the message is not UTF-8")]
    Utf8,
}

/// The 安全模式 key (EncodingAESKey).
#[derive(Clone)]
pub struct PushKey([u8; 32]);

impl std::fmt::Debug for PushKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushKey(<redacted>)")
    }
}

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

impl PushKey {
    /// The 43-character EncodingAESKey from the mini-program's admin console.
    pub fn parse(encoding_aes_key: &str) -> Result<PushKey, String> {
        if encoding_aes_key.len() != 43
            || !encoding_aes_key.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err("the EncodingAESKey is 43 letters and digits".into());
        }
        let bytes = KEY_BASE64
            .decode(format!("{encoding_aes_key}="))
            .map_err(|e| format!("the EncodingAESKey is not base64: {e}"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the EncodingAESKey does not give 32 bytes".to_owned())?;
        Ok(PushKey(key))
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }

    /// The `Encrypt` field for `message` from the app `appid`.
    pub fn encrypt(&self, message: &str, appid: &str) -> String {
        let mut plain = vec![0u8; 16];
        rand::rng().fill_bytes(&mut plain);
        plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
        plain.extend_from_slice(message.as_bytes());
        plain.extend_from_slice(appid.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let sealed = Encryptor::new(&self.0.into(), &self.iv().into())
            .encrypt_padded_vec_mut::<NoPadding>(&plain);
        BASE64.encode(sealed)
    }

    /// The message and the app id inside an `Encrypt` field.
    pub fn decrypt(&self, encrypted: &str) -> Result<(String, String), PushCryptoError> {
        let sealed = BASE64
            .decode(encrypted.trim())
            .map_err(|_| PushCryptoError::Base64)?;
        if sealed.is_empty() || sealed.len() % 16 != 0 {
            return Err(PushCryptoError::Blocks);
        }
        let plain = Decryptor::new(&self.0.into(), &self.iv().into())
            .decrypt_padded_vec_mut::<NoPadding>(&sealed)
            .map_err(|_| PushCryptoError::Blocks)?;
        let pad = usize::from(*plain.last().ok_or(PushCryptoError::Layout)?);
        if !(1..=PAD_BLOCK).contains(&pad) || pad > plain.len() {
            return Err(PushCryptoError::Layout);
        }
        let body = &plain[..plain.len() - pad];
        if body.len() < 20 {
            return Err(PushCryptoError::Layout);
        }
        let length = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
        let rest = &body[20..];
        if length > rest.len() {
            return Err(PushCryptoError::Layout);
        }
        let (message, appid) = rest.split_at(length);
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| PushCryptoError::Utf8);
        Ok((text(message)?, text(appid)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_sha1_of_the_sorted_parts() {
        // sorted: "1409659813", "263014780", "AAAAA" → SHA-1 of their concatenation.
        let expected = hex::encode(Sha1::digest(b"1409659813263014780AAAAA"));
        assert_eq!(signature(&["AAAAA", "1409659813", "263014780"]), expected);
        assert!(signature_matches(
            &expected.to_uppercase(),
            &["263014780", "AAAAA", "1409659813"]
        ));
        assert!(!signature_matches(
            "00",
            &["AAAAA", "1409659813", "263014780"]
        ));
    }

    #[test]
    fn a_key_with_trailing_bits_is_read_as_the_official_sdks_read_it() {
        // 'Z' as the last character carries bits past the 32nd byte.
        let key = PushKey::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFZ").unwrap();
        assert_eq!(&key.0[..3], &[0x69, 0xb7, 0x1d]);
        assert!(PushKey::parse("short").is_err());
        assert!(PushKey::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDE+G").is_err());
    }

    #[test]
    fn encrypt_then_decrypt_gives_the_message_and_app_id() {
        let key = PushKey::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        for message in ["", "x", &"消息".repeat(40)] {
            let sealed = key.encrypt(message, "wx0123456789abcdef");
            let raw = BASE64.decode(&sealed).unwrap();
            assert_eq!(raw.len() % PAD_BLOCK, 0, "padded to 32-byte blocks");
            assert_eq!(
                key.decrypt(&sealed).unwrap(),
                (message.to_owned(), "wx0123456789abcdef".to_owned())
            );
        }
        let other = PushKey::parse("0123456789abcdefghijklmnopqrstuvwxyzABCDEFG").unwrap();
        assert!(other.decrypt(&key.encrypt("hello", "wx1")).is_err());
        assert_eq!(key.decrypt("not base64!"), Err(PushCryptoError::Base64));
    }
}
