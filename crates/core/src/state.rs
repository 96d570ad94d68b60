//! Signed OAuth `state` tokens.
//!
//! A state token proves, on the way back from the authorization server, which
//! user started which flow for which server, and until when it is good. It is
//! `base64url(payload) "." base64url(HMAC-SHA256(secret, DOMAIN || payload))`,
//! both parts unpadded. The payload is a small fixed binary layout, so there
//! is no parser to confuse:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version (1) |
//! | 8 | issued at, unix seconds, big endian |
//! | 8 | expires at, unix seconds, big endian |
//! | 16 | server id (uuid) |
//! | 16 | flow id (random; single use is enforced by the row store) |
//! | rest | user id, UTF-8, 1..=256 bytes |
//!
//! The signature is checked (in constant time) before any field is read.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted secret, in bytes (the HMAC-SHA256 key length).
pub const MIN_SECRET_LEN: usize = 32;
/// Longest user id a state can carry, in bytes.
pub const MAX_USER_ID_LEN: usize = 256;
/// Longest token `verify` will look at; anything longer is rejected before it
/// is decoded. A real token is at most 43 + 1 + 408 characters.
pub const MAX_TOKEN_LEN: usize = 512;
/// How far in the future `issued_at` may lie (clock skew between backends of
/// one server is nil, but between replicas it is not).
pub const CLOCK_SKEW_SECS: i64 = 60;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 8 + 16 + 16;
const MAC_LEN: usize = 32;
const DOMAIN: &[u8] = b"mcp_oauth state v1\0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state secret is not set")]
    SecretMissing,
    #[error("the state secret is {len} bytes long; at least {MIN_SECRET_LEN} are required")]
    SecretTooShort { len: usize },
    #[error("the user id is empty or longer than {MAX_USER_ID_LEN} bytes")]
    UserIdLength,
    #[error("the state is malformed")]
    Malformed,
    #[error("the state signature does not match")]
    BadSignature,
    #[error("the state has expired")]
    Expired,
    #[error("the state was issued in the future")]
    NotYetValid,
}

/// The HMAC key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct StateSecret(Vec<u8>);

impl StateSecret {
    /// Accepts the secret as configured: its UTF-8 bytes are the key.
    pub fn new(secret: Option<&str>) -> Result<Self, StateError> {
        let secret = secret.ok_or(StateError::SecretMissing)?;
        if secret.is_empty() {
            return Err(StateError::SecretMissing);
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(StateError::SecretTooShort { len: secret.len() });
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    fn mac(&self) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(DOMAIN);
        mac
    }
}

impl fmt::Debug for StateSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateSecret(<redacted>)")
    }
}

/// A random identifier of one sign-in attempt.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowId(pub [u8; 16]);

impl FlowId {
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self(bytes)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 32 || !hex.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Debug for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlowId({})", self.to_hex())
    }
}

/// What a state token asserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateClaims {
    pub user_id: String,
    pub server_id: Uuid,
    pub flow_id: FlowId,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl StateClaims {
    /// Claims for a new flow started at `now` that stays valid for `ttl_secs`.
    pub fn new(user_id: &str, server_id: Uuid, now: i64, ttl_secs: i64) -> Self {
        Self { user_id: user_id.to_owned(), server_id, flow_id: FlowId::random(), issued_at: now, expires_at: now.saturating_add(ttl_secs) }
    }
}

/// Signs `claims` into a URL-safe token.
pub fn sign(secret: &StateSecret, claims: &StateClaims) -> Result<String, StateError> {
    let user = claims.user_id.as_bytes();
    if user.is_empty() || user.len() > MAX_USER_ID_LEN {
        return Err(StateError::UserIdLength);
    }
    let mut payload = Vec::with_capacity(HEADER_LEN + user.len());
    payload.push(VERSION);
    payload.extend_from_slice(&claims.issued_at.to_be_bytes());
    payload.extend_from_slice(&claims.expires_at.to_be_bytes());
    payload.extend_from_slice(claims.server_id.as_bytes());
    payload.extend_from_slice(&claims.flow_id.0);
    payload.extend_from_slice(user);

    let mut mac = secret.mac();
    mac.update(&payload);
    let tag = mac.finalize().into_bytes();
    Ok(format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag)))
}

/// Checks the signature, then the times, and returns the claims.
pub fn verify(secret: &StateSecret, token: &str, now: i64) -> Result<StateClaims, StateError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(StateError::Malformed);
    }
    let (payload_b64, tag_b64) = token.split_once('.').ok_or(StateError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| StateError::Malformed)?;
    let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| StateError::Malformed)?;
    if tag.len() != MAC_LEN {
        return Err(StateError::Malformed);
    }
    let mut mac = secret.mac();
    mac.update(&payload);
    mac.verify_slice(&tag).map_err(|_| StateError::BadSignature)?;

    // Signed by us: the layout can still be wrong only if a future version
    // signs differently, so these checks are for robustness, not security.
    if payload.len() <= HEADER_LEN || payload[0] != VERSION {
        return Err(StateError::Malformed);
    }
    let i64_at = |at: usize| i64::from_be_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
    let issued_at = i64_at(1);
    let expires_at = i64_at(9);
    let server_id = Uuid::from_slice(&payload[17..33]).map_err(|_| StateError::Malformed)?;
    let flow_id = FlowId(payload[33..49].try_into().expect("16 bytes"));
    let user_id = std::str::from_utf8(&payload[HEADER_LEN..]).map_err(|_| StateError::Malformed)?;
    if user_id.len() > MAX_USER_ID_LEN {
        return Err(StateError::Malformed);
    }
    if issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(StateError::NotYetValid);
    }
    if now >= expires_at {
        return Err(StateError::Expired);
    }
    Ok(StateClaims { user_id: user_id.to_owned(), server_id, flow_id, issued_at, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_790_000_000;

    fn secret() -> StateSecret {
        StateSecret::new(Some(SECRET)).unwrap()
    }

    fn claims() -> StateClaims {
        StateClaims {
            user_id: "alice".into(),
            server_id: Uuid::parse_str("6f1c1d7e-0f7a-4c3e-9b1a-2f6d3c4b5a69").unwrap(),
            flow_id: FlowId([7; 16]),
            issued_at: NOW,
            expires_at: NOW + 300,
        }
    }

    #[test]
    fn fixed_vector() {
        // Computed independently with Python's hmac/base64 from the layout in
        // the module docs; a change of layout or MAC must be a version bump.
        let token = sign(&secret(), &claims()).unwrap();
        assert_eq!(
            token,
            "AQAAAABqsTuAAAAAAGqxPKxvHB1-D3pMPpsaL208S1ppBwcHBwcHBwcHBwcHBwcHB2FsaWNl.\
             BBFg21d5yyVGE9GeHxdnk5TZq9ycB_0CaT-zWNF8FNE"
        );
        assert_eq!(verify(&secret(), &token, NOW).unwrap(), claims());
    }

    #[test]
    fn round_trip_and_times() {
        let token = sign(&secret(), &claims()).unwrap();
        assert_eq!(verify(&secret(), &token, NOW + 299).unwrap(), claims());
        assert_eq!(verify(&secret(), &token, NOW + 300), Err(StateError::Expired));
        assert_eq!(verify(&secret(), &token, NOW - CLOCK_SKEW_SECS).unwrap(), claims());
        assert_eq!(verify(&secret(), &token, NOW - CLOCK_SKEW_SECS - 1), Err(StateError::NotYetValid));
    }

    #[test]
    fn new_claims_use_ttl_and_random_flow() {
        let a = StateClaims::new("bob", Uuid::nil(), NOW, 300);
        let b = StateClaims::new("bob", Uuid::nil(), NOW, 300);
        assert_eq!(a.expires_at, NOW + 300);
        assert_ne!(a.flow_id, b.flow_id);
        assert_eq!(FlowId::from_hex(&a.flow_id.to_hex()), Some(a.flow_id));
        assert_eq!(FlowId::from_hex("zz"), None);
        assert_eq!(FlowId::from_hex(&"g".repeat(32)), None);
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let token = sign(&secret(), &claims()).unwrap();
        for i in 0..token.len() {
            for bit in 0..7 {
                let mut bytes = token.clone().into_bytes();
                bytes[i] ^= 1 << bit;
                let Ok(tampered) = String::from_utf8(bytes) else { continue };
                if tampered == token {
                    continue;
                }
                let result = verify(&secret(), &tampered, NOW);
                assert!(
                    matches!(result, Err(StateError::Malformed | StateError::BadSignature)),
                    "flip of bit {bit} at {i} accepted: {result:?}"
                );
            }
        }
    }

    #[test]
    fn truncation_and_extension_are_rejected() {
        let token = sign(&secret(), &claims()).unwrap();
        for len in 0..token.len() {
            assert!(verify(&secret(), &token[..len], NOW).is_err(), "prefix of {len} accepted");
        }
        assert!(verify(&secret(), &format!("{token}A"), NOW).is_err());
        assert!(verify(&secret(), &format!("{token}."), NOW).is_err());
        assert!(verify(&secret(), &format!("{token}="), NOW).is_err());
    }

    #[test]
    fn swapped_payloads_and_foreign_secrets_are_rejected() {
        let mine = sign(&secret(), &claims()).unwrap();
        let mut other = claims();
        other.user_id = "mallory".into();
        let theirs = sign(&secret(), &other).unwrap();
        let (my_payload, _) = mine.split_once('.').unwrap();
        let (_, their_tag) = theirs.split_once('.').unwrap();
        assert_eq!(verify(&secret(), &format!("{my_payload}.{their_tag}"), NOW), Err(StateError::BadSignature));

        let foreign = StateSecret::new(Some("another secret of at least 32 bytes!")).unwrap();
        let forged = sign(&foreign, &other).unwrap();
        assert_eq!(verify(&secret(), &forged, NOW), Err(StateError::BadSignature));
    }

    #[test]
    fn garbage_is_rejected_without_decoding_huge_input() {
        assert_eq!(verify(&secret(), "", NOW), Err(StateError::Malformed));
        assert_eq!(verify(&secret(), ".", NOW), Err(StateError::Malformed));
        assert_eq!(verify(&secret(), "no-dot-here", NOW), Err(StateError::Malformed));
        assert_eq!(verify(&secret(), "a.b.c", NOW), Err(StateError::Malformed));
        assert_eq!(verify(&secret(), "<script>.x", NOW), Err(StateError::Malformed));
        let huge = "A".repeat(10 * 1024 * 1024);
        assert_eq!(verify(&secret(), &huge, NOW), Err(StateError::Malformed));
        let huge_dotted = format!("{}.{}", "A".repeat(5 * 1024 * 1024), "A".repeat(43));
        assert_eq!(verify(&secret(), &huge_dotted, NOW), Err(StateError::Malformed));
    }

    #[test]
    fn a_validly_signed_but_wrong_layout_is_malformed() {
        // Only reachable with the secret; still must not panic.
        let mut mac = secret().mac();
        mac.update(&[VERSION, 1, 2]);
        let tag = mac.finalize().into_bytes();
        let token = format!("{}.{}", URL_SAFE_NO_PAD.encode([VERSION, 1, 2]), URL_SAFE_NO_PAD.encode(tag));
        assert_eq!(verify(&secret(), &token, NOW), Err(StateError::Malformed));
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        assert_eq!(StateSecret::new(None).unwrap_err(), StateError::SecretMissing);
        assert_eq!(StateSecret::new(Some("")).unwrap_err(), StateError::SecretMissing);
        assert_eq!(StateSecret::new(Some("short")).unwrap_err(), StateError::SecretTooShort { len: 5 });
        assert!(!format!("{:?}", secret()).contains(SECRET));
        assert_eq!(format!("{:?}", secret()), "StateSecret(<redacted>)");
    }

    #[test]
    fn flow_ids_in_hex() {
        let id = FlowId([0xab; 16]);
        assert_eq!(format!("{id:?}"), format!("FlowId({})", "ab".repeat(16)));
        assert_eq!(FlowId::from_hex(&id.to_hex()), Some(id));
        for bad in ["ab".repeat(15), "ab".repeat(17), "zz".repeat(16), format!("a{}a", "é".repeat(15))] {
            assert_eq!(FlowId::from_hex(&bad), None, "{bad}");
        }
    }

    #[test]
    fn user_id_bounds() {
        let mut c = claims();
        c.user_id = String::new();
        assert_eq!(sign(&secret(), &c), Err(StateError::UserIdLength));
        c.user_id = "u".repeat(MAX_USER_ID_LEN + 1);
        assert_eq!(sign(&secret(), &c), Err(StateError::UserIdLength));
        c.user_id = "é".repeat(MAX_USER_ID_LEN / 2);
        let token = sign(&secret(), &c).unwrap();
        assert!(token.len() <= MAX_TOKEN_LEN);
        assert_eq!(verify(&secret(), &token, NOW).unwrap().user_id, c.user_id);
    }
}
