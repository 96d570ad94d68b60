//! JWT client assertions (RFC 7523 §2.2, OpenID Connect's
//! `private_key_jwt`): a short-lived JWT signed with the client's private
//! key stands in for a client secret at the token endpoint. Signed by the
//! `jsonwebtoken` crate; `oauth2` has no client assertions.

use super::OAuthError;
use crate::secret::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: long enough for one token request
/// (RFC 7523 §3 asks for a short lifetime).
const ASSERTION_LIFETIME_SECS: i64 = 120;

/// Longest private key accepted (an RSA 8192-bit PEM is about 6.5 kB).
pub const MAX_KEY_PEM_LEN: usize = 16 * 1024;

/// The public half of a client key registration: the signing algorithm and
/// the key id the authorization server knows the key by. Stored in the
/// row's public metadata; the PEM itself is sealed like every secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySpec {
    pub alg: SigningAlg,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// The JWS algorithms a client key may sign with (RFC 7518): asymmetric
/// only, since the authorization server verifies with the public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    ES256,
    ES384,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 9] = [
        SigningAlg::ES256,
        SigningAlg::ES384,
        SigningAlg::RS256,
        SigningAlg::RS384,
        SigningAlg::RS512,
        SigningAlg::PS256,
        SigningAlg::PS384,
        SigningAlg::PS512,
        SigningAlg::EdDSA,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::EdDSA => "EdDSA",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::PS256 => Algorithm::PS256,
            Self::PS384 => Algorithm::PS384,
            Self::PS512 => Algorithm::PS512,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }

    fn encoding_key(self, pem: &[u8]) -> Result<EncodingKey, jsonwebtoken::errors::Error> {
        match self {
            Self::ES256 | Self::ES384 => EncodingKey::from_ec_pem(pem),
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => EncodingKey::from_rsa_pem(pem),
            Self::EdDSA => EncodingKey::from_ed_pem(pem),
        }
    }
}

/// The claims of a client assertion (RFC 7523 §3).
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Signs `claims` with the PEM key as `spec` says.
fn sign(pem: &Secret, spec: &KeySpec, claims: &impl Serialize) -> Result<Secret, String> {
    let key = spec.alg.encoding_key(pem.expose().as_bytes()).map_err(|_| key_problem(spec.alg))?;
    let mut header = Header::new(spec.alg.jwt());
    header.kid = spec.kid.clone();
    jsonwebtoken::encode(&header, claims, &key).map(Secret::new).map_err(|_| key_problem(spec.alg))
}

fn key_problem(alg: SigningAlg) -> String {
    let kind = match alg {
        SigningAlg::ES256 => "a P-256 EC private key",
        SigningAlg::ES384 => "a P-384 EC private key",
        SigningAlg::EdDSA => "an Ed25519 private key",
        _ => "an RSA private key of at least 2048 bits",
    };
    format!("the key is not {kind} in PEM (PKCS#8 \"BEGIN PRIVATE KEY\"{})", if kind.contains("RSA") { " or PKCS#1" } else { "" })
}

/// Checks that `pem` is a private key `alg` can sign with, by signing.
pub fn check_key(pem: &Secret, spec: &KeySpec) -> Result<(), String> {
    if pem.expose().len() > MAX_KEY_PEM_LEN {
        return Err(format!("the key is longer than {MAX_KEY_PEM_LEN} bytes"));
    }
    let probe = AssertionClaims { iss: "probe", sub: "probe", aud: "probe", iat: 0, exp: 0, jti: String::new() };
    sign(pem, spec, &probe).map(drop)
}

/// A fresh client assertion of `client_id` for the authorization server
/// `audience` (its issuer identifier, which RFC 7523 §3 and the MCP client
/// credentials extension name as the audience).
pub fn client_assertion(client_id: &str, audience: &str, pem: &Secret, spec: &KeySpec, now: i64) -> Result<Secret, OAuthError> {
    let claims =
        AssertionClaims { iss: client_id, sub: client_id, aud: audience, iat: now, exp: now + ASSERTION_LIFETIME_SECS, jti: random_id() };
    sign(pem, spec, &claims).map_err(|why| OAuthError::Unsupported(format!("the client key cannot sign: {why}")))
}

/// 128 random bits, hex: a JWT id never used twice.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    /// A P-256 key made for the test (no key is kept in the repository).
    pub(crate) fn test_ec_key() -> Secret {
        use base64::engine::general_purpose::STANDARD;
        let rng = ring::rand::SystemRandom::new();
        let der = ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        Secret::new(format!(
            "-----BEGIN PRIVATE KEY-----
{}
-----END PRIVATE KEY-----
",
            lines.join(
                "
"
            )
        ))
    }

    fn spec(alg: SigningAlg) -> KeySpec {
        KeySpec { alg, kid: Some("k1".into()) }
    }

    #[test]
    fn an_assertion_names_the_client_and_the_authorization_server() {
        let pem = test_ec_key();
        let jwt = client_assertion("client-1", "https://as.example", &pem, &spec(SigningAlg::ES256), 1000).unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |part: &str| serde_json::from_slice::<serde_json::Value>(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "k1");
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["aud"], "https://as.example");
        assert_eq!(claims["iat"], 1000);
        assert_eq!(claims["exp"], 1000 + ASSERTION_LIFETIME_SECS);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
        let again = client_assertion("client-1", "https://as.example", &pem, &spec(SigningAlg::ES256), 1000).unwrap();
        assert_ne!(decode(again.expose().split('.').nth(1).unwrap())["jti"], claims["jti"], "a fresh jti each time");
    }

    #[test]
    fn keys_are_checked_against_their_algorithm() {
        let pem = test_ec_key();
        assert!(check_key(&pem, &spec(SigningAlg::ES256)).is_ok());
        let wrong = check_key(&pem, &spec(SigningAlg::RS256)).unwrap_err();
        assert!(wrong.contains("RSA"), "{wrong}");
        assert!(check_key(&pem, &spec(SigningAlg::ES384)).is_err(), "a P-256 key does not sign ES384");
        assert!(check_key(&Secret::new("not a key"), &spec(SigningAlg::ES256)).is_err());
        let message = check_key(&Secret::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"), &spec(SigningAlg::EdDSA));
        assert!(!message.unwrap_err().contains("AAAA"), "never repeats the key");
        assert_eq!(SigningAlg::parse("PS384"), Some(SigningAlg::PS384));
        assert_eq!(SigningAlg::parse("HS256"), None, "no shared-secret algorithms");
        assert_eq!(SigningAlg::parse("none"), None);
    }
}
