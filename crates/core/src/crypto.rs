//! Encryption of secrets at rest: AES-256-GCM with a random 96-bit nonce per
//! value, and associated data that binds each ciphertext to its row and
//! column, so a ciphertext copied to another row or column does not open.
//!
//! Sealed bytes: `[1] [key id: 4] [nonce: 12] [ciphertext + tag]`, where the
//! key id is the first four bytes of SHA-256 of the key. Text columns carry
//! `enc1:` followed by the sealed bytes in base64.
//!
//! A keyring holds the current key (which seals) and older keys (which only
//! open), so that keys can be rotated without downtime.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt;

const VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + 12;
const TEXT_PREFIX: &str = "enc1:";
const AAD_DOMAIN: &[u8] = b"mcp_oauth secret v1\0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("{0}")]
    BadKey(String),
    #[error("the value was sealed with a key that is not configured (key id {0})")]
    UnknownKey(String),
    #[error("the value does not open under its row and column (altered, or copied from elsewhere)")]
    Tampered,
    #[error("the value is not a sealed secret")]
    NotSealed,
}

struct Key {
    id: [u8; 4],
    cipher: Aes256Gcm,
}

/// The configured keys. `Debug` never shows them.
pub struct Keyring {
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| hex(&k.id)).collect();
        write!(f, "Keyring(<{} keys redacted>, ids {:?})", self.keys.len(), ids)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a sealed value lives: its row and column (and, for a header, the
/// header's name as part of the column).
pub struct Context<'a> {
    pub row_id: &'a str,
    pub column: &'a str,
}

impl Context<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = AAD_DOMAIN.to_vec();
        aad.extend_from_slice(self.row_id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.column.as_bytes());
        aad
    }
}

impl Keyring {
    /// Keys as configured: 64 hexadecimal characters each, separated by
    /// commas or whitespace; the first seals, all open.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let mut keys = Vec::new();
        for part in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|p| !p.is_empty()) {
            let bytes = crate::settings::encryption_key(part).map_err(CryptoError::BadKey)?;
            let digest = Sha256::digest(bytes);
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadKey("bad key length".into()))?;
            keys.push(Key { id: [digest[0], digest[1], digest[2], digest[3]], cipher });
        }
        if keys.is_empty() {
            return Err(CryptoError::BadKey("no key is configured".into()));
        }
        Ok(Self { keys })
    }

    pub fn current_key_id(&self) -> String {
        hex(&self.keys[0].id)
    }

    pub fn seal(&self, plaintext: &[u8], context: &Context<'_>) -> Vec<u8> {
        let key = &self.keys[0];
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        let aad = context.aad();
        let ciphertext = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("AES-GCM encryption does not fail for in-memory buffers");
        let mut out = Vec::with_capacity(HEADER + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &Context<'_>) -> Result<Vec<u8>, CryptoError> {
        if !is_sealed(sealed) {
            return Err(CryptoError::NotSealed);
        }
        let id = &sealed[1..5];
        let key = self.keys.iter().find(|k| k.id == id).ok_or_else(|| CryptoError::UnknownKey(hex(id)))?;
        let aad = context.aad();
        key.cipher
            .decrypt(Nonce::from_slice(&sealed[5..HEADER]), Payload { msg: &sealed[HEADER..], aad: &aad })
            .map_err(|_| CryptoError::Tampered)
    }

    /// Whether `sealed` was sealed with the current key.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        is_sealed(sealed) && sealed[1..5] == self.keys[0].id
    }

    pub fn seal_text(&self, plaintext: &str, context: &Context<'_>) -> String {
        format!("{TEXT_PREFIX}{}", STANDARD.encode(self.seal(plaintext.as_bytes(), context)))
    }

    pub fn open_text(&self, stored: &str, context: &Context<'_>) -> Result<String, CryptoError> {
        let sealed = text_bytes(stored).ok_or(CryptoError::NotSealed)?;
        let plain = self.open(&sealed, context)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Tampered)
    }

    pub fn is_current_text(&self, stored: &str) -> bool {
        text_bytes(stored).is_some_and(|b| self.is_current(&b))
    }
}

/// Sealed bytes start with the version and are long enough for a header and tag.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER + 16 && bytes[0] == VERSION
}

pub fn is_sealed_text(stored: &str) -> bool {
    stored.starts_with(TEXT_PREFIX)
}

fn text_bytes(stored: &str) -> Option<Vec<u8>> {
    STANDARD.decode(stored.strip_prefix(TEXT_PREFIX)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const K2: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn ctx<'a>(row: &'a str, column: &'a str) -> Context<'a> {
        Context { row_id: row, column }
    }

    #[test]
    fn seals_and_opens_bound_to_row_and_column() {
        let ring = Keyring::parse(K1).unwrap();
        let sealed = ring.seal(b"refresh-token", &ctx("row-1", "oauth_tokens"));
        assert!(!sealed.windows(7).any(|w| w == b"refresh"));
        assert_eq!(ring.open(&sealed, &ctx("row-1", "oauth_tokens")).unwrap(), b"refresh-token");
        assert_eq!(ring.open(&sealed, &ctx("row-2", "oauth_tokens")), Err(CryptoError::Tampered));
        assert_eq!(ring.open(&sealed, &ctx("row-1", "oauth_code_verifier")), Err(CryptoError::Tampered));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(ring.open(&flipped, &ctx("row-1", "oauth_tokens")), Err(CryptoError::Tampered));
        assert_eq!(ring.open(b"{\"plain\":1}", &ctx("row-1", "oauth_tokens")), Err(CryptoError::NotSealed));
        // Random nonces: the same plaintext seals differently.
        assert_ne!(sealed, ring.seal(b"refresh-token", &ctx("row-1", "oauth_tokens")));
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Keyring::parse(K1).unwrap();
        let sealed = old.seal(b"v", &ctx("r", "c"));
        let rotating = Keyring::parse(&format!("{K2},{K1}")).unwrap();
        assert_eq!(rotating.open(&sealed, &ctx("r", "c")).unwrap(), b"v");
        assert!(!rotating.is_current(&sealed));
        let resealed = rotating.seal(b"v", &ctx("r", "c"));
        assert!(rotating.is_current(&resealed));
        let new_only = Keyring::parse(K2).unwrap();
        assert!(matches!(new_only.open(&sealed, &ctx("r", "c")), Err(CryptoError::UnknownKey(_))));
        assert_eq!(new_only.open(&resealed, &ctx("r", "c")).unwrap(), b"v");
    }

    #[test]
    fn text_form_and_key_parsing() {
        let ring = Keyring::parse(&format!(" {K1}\n")).unwrap();
        let stored = ring.seal_text("sk-live", &ctx("r", "headers:X-Api-Key"));
        assert!(stored.starts_with("enc1:") && !stored.contains("sk-live"));
        assert_eq!(ring.open_text(&stored, &ctx("r", "headers:X-Api-Key")).unwrap(), "sk-live");
        assert_eq!(ring.open_text(&stored, &ctx("r", "headers:Authorization")), Err(CryptoError::Tampered));
        assert!(Keyring::parse("").is_err());
        let err = Keyring::parse("secret-but-wrong").unwrap_err().to_string();
        assert!(!err.contains("secret-but-wrong"));
        assert!(!format!("{ring:?}").contains(K1));
    }

    #[test]
    fn key_ids_name_keys_without_showing_them() {
        // The first four bytes of the key's SHA-256, computed independently.
        let ring = Keyring::parse(&format!("{K1},{K2}")).unwrap();
        assert_eq!(ring.current_key_id(), "4773d12e");
        let shown = format!("{ring:?}");
        assert!(shown.starts_with("Keyring(<2 keys redacted>, ids [\"4773d12e\", "), "{shown}");
        assert!(!shown.contains(K1) && !shown.contains(K2));
    }

    #[test]
    fn what_counts_as_sealed() {
        let ring = Keyring::parse(K1).unwrap();
        let sealed = ring.seal(b"", &ctx("r", "c"));
        assert_eq!(sealed.len(), HEADER + 16);
        assert!(is_sealed(&sealed));
        assert!(!is_sealed(&sealed[..HEADER + 15]), "too short for a tag");
        let mut other_version = sealed.clone();
        other_version[0] = 2;
        assert!(!is_sealed(&other_version));
        assert!(!is_sealed(&[VERSION]));
        let text = ring.seal_text("v", &ctx("r", "c"));
        assert!(is_sealed_text(&text) && !is_sealed_text("v") && !is_sealed_text("enc2:x"));
        assert!(ring.is_current_text(&text));
        let rotated = Keyring::parse(&format!("{K2},{K1}")).unwrap();
        assert!(!rotated.is_current_text(&text));
        assert!(rotated.is_current_text(&rotated.seal_text("v", &ctx("r", "c"))));
        assert!(!ring.is_current_text("plain") && !ring.is_current_text("enc1:not base64!"));
    }
}
