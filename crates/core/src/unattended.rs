//! Tokens obtained with no user present: the OAuth client credentials grant
//! (the MCP client credentials extension, SEP-1046) and the JWT bearer
//! grant with the database's workload identity token (SEP-1933, RFC 7523).
//! Discovery is the sign-in's; the token is obtained again, never
//! refreshed, when it expires or is refused, since these grants need
//! nothing a person holds.

use crate::discovery::Discovered;
use crate::net::HttpClient;
use crate::oauth::dpop::{self, DpopKey};
use crate::oauth::{self, ClientCredentials, OAuthError, TokenEndpoint, TokenSet, MAX_TOKEN_LEN};
use crate::secret::Secret;
use sha2::{Digest, Sha256};

/// What proves the client's right to a token.
pub enum Proof<'a> {
    /// The client's own credentials (client_secret_basic, client_secret_post
    /// or private_key_jwt).
    Client(ClientCredentials<'a>),
    /// A workload identity token the platform issued, as the JWT bearer
    /// grant's assertion, with the client id when one is set.
    WorkloadToken { token: &'a Secret, client: Option<ClientCredentials<'a>> },
}

/// The scope to ask for: the server's challenge, else every scope its
/// protected resource metadata lists, else none (no `offline_access`: these
/// grants are run again instead of refreshed).
pub fn scope(found: &Discovered) -> Option<String> {
    oauth::choose_scope(found.challenge_scope.as_deref(), found.resource_scopes.as_deref(), None, None)
}

/// Obtains a token for `found`'s resource at its authorization server.
pub async fn obtain(http: &HttpClient, found: &Discovered, proof: &Proof<'_>, now: i64) -> Result<TokenSet, OAuthError> {
    let endpoint = TokenEndpoint::from(&found.auth_server);
    let scope = scope(found);
    let dpop = new_dpop_key(found);
    match proof {
        Proof::Client(client) => {
            oauth::client_credentials(http, endpoint, client, scope.as_deref(), &found.resource, dpop.as_ref(), now).await
        }
        Proof::WorkloadToken { token, client } => {
            oauth::jwt_bearer(http, endpoint, client.as_ref(), token, scope.as_deref(), &found.resource, dpop.as_ref(), now).await
        }
    }
}

/// A new key for tokens of `found`'s authorization server, when it takes
/// DPoP proofs: each grant binds its tokens to a key of its own.
pub fn new_dpop_key(found: &Discovered) -> Option<DpopKey> {
    dpop::binds(found).then(DpopKey::generate)
}

/// The user's identity provider in enterprise-managed authorization: its
/// token endpoint and this application's client there.
pub struct IdentityProvider<'a> {
    pub token_endpoint: &'a str,
    pub client: ClientCredentials<'a>,
}

/// Enterprise-managed authorization (SEP-990): the user's ID token is
/// exchanged at their identity provider for an identity assertion grant
/// (RFC 8693) addressed to `found`'s authorization server, which `client`
/// then redeems there with the JWT bearer grant (RFC 7523). No browser.
pub async fn enterprise_sign_in(
    http: &HttpClient,
    found: &Discovered,
    idp: &IdentityProvider<'_>,
    id_token: &Secret,
    client: &ClientCredentials<'_>,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    let scope = scope(found);
    let idp_endpoint = TokenEndpoint { url: idp.token_endpoint, issuer: idp.token_endpoint };
    let grant =
        oauth::exchange_id_token(http, idp_endpoint, &idp.client, id_token, &found.auth_server.issuer, &found.resource, scope.as_deref())
            .await?;
    let endpoint = TokenEndpoint::from(&found.auth_server);
    oauth::jwt_bearer(http, endpoint, Some(client), &grant, scope.as_deref(), &found.resource, new_dpop_key(found).as_ref(), now).await
}

/// A JWT given as text (a workload token file, an ID token): one compact
/// JWS (three base64url parts), surrounding whitespace ignored. The error
/// never repeats the text.
pub fn compact_jwt(text: &str) -> Result<Secret, String> {
    let token = text.trim();
    if token.is_empty() {
        return Err("it is empty".into());
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(format!("it is longer than {MAX_TOKEN_LEN} bytes"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let base64url = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if parts.len() != 3 || !parts.iter().all(|p| base64url(p)) {
        return Err("it is not a JWT (three base64url parts separated by dots)".into());
    }
    Ok(Secret::new(token))
}

/// A fingerprint of a token, kept in public metadata to recognise a token
/// that was refused already: SHA-256, hex, of which the first 16 bytes.
pub fn fingerprint(token: &Secret) -> String {
    Sha256::digest(token.expose().as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::AuthServer;

    #[test]
    fn a_jwt_is_three_parts_and_never_repeated_in_errors() {
        assert_eq!(compact_jwt("  aGVhZA.Ym9keQ.c2ln \n").unwrap().expose(), "aGVhZA.Ym9keQ.c2ln");
        for bad in ["", "   ", "only-one-part", "a.b", "a.b.c.d", "a..c", "a.b.c d", "a.b+.c"] {
            let why = compact_jwt(bad).unwrap_err();
            assert!(bad.trim().is_empty() || !why.contains(bad.trim()), "{why}");
        }
        assert!(compact_jwt(&format!("a.{}.c", "b".repeat(MAX_TOKEN_LEN))).is_err());
    }

    #[test]
    fn fingerprints_tell_tokens_apart_without_showing_them() {
        let a = fingerprint(&Secret::new("aaa.bbb.ccc"));
        assert_eq!(a.len(), 32);
        assert_eq!(a, fingerprint(&Secret::new("aaa.bbb.ccc")));
        assert_ne!(a, fingerprint(&Secret::new("aaa.bbb.ccd")));
        assert!(!a.contains("aaa"));
    }

    #[test]
    fn the_scope_is_the_challenge_s_else_the_resource_s_and_never_offline_access() {
        let mut server = AuthServer::at("https://as");
        server.scopes_supported = Some(vec!["a".into(), "offline_access".into()]);
        let mut found = Discovered {
            resource: "https://mcp".into(),
            resource_metadata_url: None,
            challenge_scope: None,
            resource_scopes: Some(vec!["r1".into(), "r2".into()]),
            auth_server: server,
            resource_dpop: false,
        };
        assert_eq!(scope(&found).as_deref(), Some("r1 r2"));
        found.challenge_scope = Some("c".into());
        assert_eq!(scope(&found).as_deref(), Some("c"));
        found.challenge_scope = None;
        found.resource_scopes = None;
        assert_eq!(scope(&found), None);
    }
}
