//! DPoP (RFC 9449): tokens bound to a key pair of the row's own, so that a
//! token without a proof signed by that key is worthless. A P-256 key
//! (ES256) is made for each sign-in or grant and sealed with the tokens;
//! every token request and every request to the MCP server carries a fresh
//! proof (`htm`, `htu`, `iat`, `jti`; `ath` with a token; the server's
//! `nonce` once it asks for one). Signed with `ring`, the crate `rustls`
//! already brings; the JWS is three lines of JSON.

use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

/// The only proof algorithm used.
pub const DPOP_ALG: &str = "ES256";

/// A DPoP key pair: its PKCS#8 document, base64url. Sealed with the tokens
/// it is bound to; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DpopKey(Secret);

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DpopKey(<redacted>)")
    }
}

/// Whether an authorization server takes ES256 proofs (RFC 9449 §5.1).
pub fn supported(algs: Option<&[String]>) -> bool {
    algs.is_some_and(|list| list.iter().any(|a| a == DPOP_ALG))
}

/// Whether tokens for `found`'s resource are bound to a key: only when
/// both the resource and its authorization server take proofs, since a
/// resource server that knows only Bearer refuses a bound token.
pub fn binds(found: &crate::discovery::Discovered) -> bool {
    found.resource_dpop && supported(found.auth_server.dpop_signing_alg_values_supported.as_deref())
}

impl DpopKey {
    /// A fresh P-256 key.
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("the system's random source");
        Self(Secret::new(URL_SAFE_NO_PAD.encode(pkcs8.as_ref())))
    }

    fn pair(&self) -> Option<EcdsaKeyPair> {
        let der = URL_SAFE_NO_PAD.decode(self.0.expose()).ok()?;
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new()).ok()
    }

    /// The public key as a JWK (RFC 7517): `kty`, `crv`, `x`, `y`.
    fn jwk(pair: &EcdsaKeyPair) -> serde_json::Value {
        // An uncompressed point: 0x04, x (32 bytes), y (32 bytes).
        let point = pair.public_key().as_ref();
        json!({"crv": "P-256", "kty": "EC", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
    }

    /// The key's JWK SHA-256 thumbprint (RFC 7638), as a server's `cnf.jkt`.
    pub fn thumbprint(&self) -> Option<String> {
        let jwk = Self::jwk(&self.pair()?);
        // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, jwk["x"].as_str()?, jwk["y"].as_str()?);
        Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
    }

    /// A fresh proof for a request of `method` to `url` (RFC 9449 §4.2):
    /// `htu` without query and fragment, `ath` when the request carries
    /// `access_token`, the server's `nonce` when it gave one. None only for
    /// a key that no longer reads (then the request goes without, and the
    /// server's refusal says why).
    pub fn proof(&self, method: &str, url: &Url, access_token: Option<&Secret>, nonce: Option<&str>, now: i64) -> Option<String> {
        let pair = self.pair()?;
        let header = json!({"typ": "dpop+jwt", "alg": DPOP_ALG, "jwk": Self::jwk(&pair)});
        let mut target = url.clone();
        target.set_query(None);
        target.set_fragment(None);
        let mut claims = json!({"jti": crate::oauth::assertion::random_id(), "htm": method, "htu": target.as_str(), "iat": now});
        if let Some(token) = access_token {
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(token.expose().as_bytes())));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = pair.sign(&SystemRandom::new(), signing_input.as_bytes()).ok()?;
        Some(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }
}

/// The nonce a server demands (RFC 9449 §8, §9): its `DPoP-Nonce` header,
/// when it refused with `use_dpop_nonce` (in the body's `error` at a token
/// endpoint, in `WWW-Authenticate` at a resource server).
pub fn demanded_nonce(headers: &oauth2::http::HeaderMap, refusal: &str) -> Option<String> {
    if !refusal.contains("use_dpop_nonce") {
        return None;
    }
    let nonce = headers.get("dpop-nonce")?.to_str().ok()?;
    // RFC 9449 §8.1: nonce = 1*NQCHAR.
    (!nonce.is_empty() && nonce.len() <= 1024 && nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\'))
        .then(|| nonce.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn part(jwt: &str, i: usize) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(i).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn a_proof_is_signed_by_the_key_it_shows_and_names_the_request() {
        let key = DpopKey::generate();
        let url = Url::parse("https://mcp.example/mcp?x=1#f").unwrap();
        let token = Secret::new("at-0123456789");
        let proof = key.proof("POST", &url, Some(&token), Some("n-1"), 1000).unwrap();
        let header = part(&proof, 0);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"].get("d").is_none(), "no private part");
        let claims = part(&proof, 1);
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://mcp.example/mcp");
        assert_eq!(claims["iat"], 1000);
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["ath"], URL_SAFE_NO_PAD.encode(Sha256::digest(b"at-0123456789")));
        // The signature verifies with the public key in the header.
        let x = URL_SAFE_NO_PAD.decode(header["jwk"]["x"].as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(header["jwk"]["y"].as_str().unwrap()).unwrap();
        let point = [&[4u8][..], &x, &y].concat();
        let (input, signature) = proof.rsplit_once('.').unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).unwrap())
            .unwrap();
        // Fresh each time; no ath or nonce unless given.
        let again = key.proof("GET", &url, None, None, 1000).unwrap();
        assert_ne!(part(&again, 1)["jti"], claims["jti"]);
        assert!(part(&again, 1).get("ath").is_none() && part(&again, 1).get("nonce").is_none());
        assert!(!format!("{key:?}").contains(key.0.expose()));
    }

    #[test]
    fn the_thumbprint_is_rfc_7638_s() {
        let key = DpopKey::generate();
        let jwk = part(&key.proof("POST", &Url::parse("https://a/").unwrap(), None, None, 0).unwrap(), 0)["jwk"].clone();
        let canonical =
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap());
        assert_eq!(key.thumbprint().unwrap(), URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())));
        assert_ne!(key.thumbprint(), DpopKey::generate().thumbprint());
    }

    #[test]
    fn a_nonce_is_taken_only_when_demanded() {
        let mut headers = oauth2::http::HeaderMap::new();
        headers.insert("dpop-nonce", "abc-123".parse().unwrap());
        assert_eq!(demanded_nonce(&headers, r#"DPoP error="use_dpop_nonce""#).as_deref(), Some("abc-123"));
        assert_eq!(demanded_nonce(&headers, "invalid_token"), None);
        headers.insert("dpop-nonce", "has space".parse().unwrap());
        assert_eq!(demanded_nonce(&headers, "use_dpop_nonce"), None);
        assert!(supported(Some(&["RS256".into(), "ES256".into()])));
        assert!(!supported(Some(&["RS256".into()])) && !supported(None));
    }
}
