//! The OAuth 2.1 client. The `oauth2` crate builds the authorization URL
//! (PKCE S256, state, RFC 8707 `resource`) and the token requests (code
//! exchange and refresh, client authentication), sent through our
//! policy-checked [`HttpClient`](crate::net::HttpClient) (`client`). Written
//! here, because `oauth2` does not do them: scope selection, dynamic client
//! registration (`registration`), the callback, the checks on what a token
//! endpoint returns (`tokens`), and revocation on loopback (`revocation`).

mod assertion;
mod client;
pub mod dpop;
mod registration;
mod revocation;
mod tokens;

pub use assertion::{check_key, client_assertion, KeySpec, SigningAlg, JWT_BEARER_ASSERTION_TYPE, MAX_KEY_PEM_LEN};
pub use client::{
    authorization_url, client_credentials, exchange_code, exchange_id_token, jwt_bearer, refresh, ClientCredentials, Pkce, TokenEndpoint,
    JWT_BEARER_GRANT,
};
pub use registration::register;
pub use revocation::revoke;
pub use tokens::{is_access_token, is_refresh_token, parse_token_response, TokenSet, MAX_REFRESH_MARGIN_SECS, MAX_TOKEN_LEN};

use crate::net::NetError;
use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error(transparent)]
    Net(#[from] NetError),
    /// The authorization server answered with an OAuth error response.
    #[error("the authorization server at {host} answered {code}")]
    Rejected { host: String, code: String, description: Option<String>, status: u16 },
    /// The authorization server answered something that is not a valid response.
    #[error("the authorization server at {host} sent an invalid response: {why}")]
    InvalidResponse { host: String, why: String },
    /// Nothing the client can do with what it has (no registration endpoint, …).
    #[error("{0}")]
    Unsupported(String),
}

impl OAuthError {
    /// This error with every secret of `secrets` removed from what the
    /// server said, and the server's text cut to its displayed length.
    pub fn redacted<'a>(self, secrets: impl IntoIterator<Item = &'a str> + Clone) -> Self {
        match self {
            OAuthError::Rejected { host, code, description, status } => OAuthError::Rejected {
                host,
                code: crate::text::redact(&code, secrets.clone()),
                description: description.map(|d| crate::text::redact(&d, secrets).chars().take(crate::text::REMOTE_TEXT_CHARS).collect()),
                status,
            },
            other => other,
        }
    }

    /// An OAuth error response (RFC 6749 §5.2) when `code` is one, else an
    /// invalid response naming the HTTP status.
    fn rejected_or_invalid(host: &str, status: u16, code: Option<String>, description: Option<String>) -> Self {
        match code {
            Some(code) if is_error_code(&code) => OAuthError::Rejected {
                host: host.to_owned(),
                code,
                description: description.map(|d| d.chars().take(4 * MAX_TOKEN_LEN).collect()),
                status,
            },
            _ => OAuthError::InvalidResponse { host: host.to_owned(), why: format!("HTTP {status}") },
        }
    }
}

/// RFC 6749 §5.2: error codes are printable ASCII without '"' and '\'.
pub fn is_error_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 100 && code.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

/// The scope to ask for (MCP 2025-11-25 scope selection): the challenge's
/// `scope`, else every `scopes_supported` of the protected resource, else
/// none; plus scopes a step-up asked for; plus `offline_access` when the
/// authorization server lists it (so a refresh token is issued).
pub fn choose_scope(
    challenge_scope: Option<&str>,
    resource_scopes: Option<&[String]>,
    step_up_scope: Option<&str>,
    auth_server_scopes: Option<&[String]>,
) -> Option<String> {
    let mut scopes: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        for part in s.split_ascii_whitespace() {
            if !scopes.iter().any(|x| x == part) {
                scopes.push(part.to_owned());
            }
        }
    };
    match (challenge_scope, resource_scopes) {
        (Some(c), _) if !c.trim().is_empty() => add(c),
        (_, Some(list)) => list.iter().for_each(|s| add(s)),
        _ => {}
    }
    if let Some(extra) = step_up_scope {
        add(extra);
    }
    if auth_server_scopes.is_some_and(|l| l.iter().any(|s| s == "offline_access")) {
        add("offline_access");
    }
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            _ => None,
        }
    }

    /// For a client with a secret: basic unless the server supports only post
    /// (RFC 8414: an absent list means client_secret_basic).
    pub fn for_secret(supported: Option<&[String]>) -> Self {
        match supported {
            Some(list) if !list.iter().any(|m| m == "client_secret_basic") && list.iter().any(|m| m == "client_secret_post") => {
                Self::ClientSecretPost
            }
            _ => Self::ClientSecretBasic,
        }
    }

    /// What to ask for in dynamic registration: a public client where the
    /// server allows one, else a secret the way the server prefers.
    pub fn for_registration(supported: Option<&[String]>) -> Self {
        match supported {
            None => Self::None,
            Some(list) if list.iter().any(|m| m == "none") => Self::None,
            Some(list) => Self::for_secret(Some(list)),
        }
    }
}

/// Where a client id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    Preregistered,
    MetadataDocument,
    Dynamic,
}

/// The public part of a client registration, bound to its issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub client_id: String,
    pub source: ClientSource,
    /// The authorization server this client belongs to; `None` for a
    /// pre-registered client not used yet.
    pub issuer: Option<String>,
    pub auth_method: ClientAuthMethod,
    /// A `private_key_jwt` client's algorithm and key id (its key is
    /// sealed in the row's client secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeySpec>,
}

/// The metadata this client registers with (RFC 7591 §2).
#[derive(Debug, Clone)]
pub struct ClientProfile {
    pub client_name: String,
    pub client_uri: Option<String>,
    pub redirect_uri: String,
}

/// What an authorization response (the redirect back) carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    Code { code: String, state: String, iss: Option<String> },
    Error { error: String, description: Option<String> },
}

/// Longest callback URL looked at.
pub const MAX_CALLBACK_LEN: usize = 16 * 1024;

/// Reads the redirect URL the authorization server sent the browser to.
pub fn parse_callback(callback_url: &str) -> Result<Callback, &'static str> {
    if callback_url.len() > MAX_CALLBACK_LEN {
        return Err("the callback URL is too long");
    }
    let url = Url::parse(callback_url).map_err(|_| "the callback URL is not an absolute URL")?;
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    if let Some(error) = param("error") {
        return Ok(Callback::Error { error, description: param("error_description") });
    }
    let state = param("state").ok_or("the callback URL has no state")?;
    let code = param("code").ok_or("the callback URL has no code")?;
    Ok(Callback::Code { code, state, iss: param("iss") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_selection() {
        let list = vec!["a".to_owned(), "b".to_owned()];
        let off = vec!["x".to_owned(), "offline_access".to_owned()];
        assert_eq!(choose_scope(Some("c d"), Some(&list), None, None).as_deref(), Some("c d"));
        assert_eq!(choose_scope(None, Some(&list), None, None).as_deref(), Some("a b"));
        assert_eq!(choose_scope(Some(" "), Some(&list), None, None).as_deref(), Some("a b"));
        assert_eq!(choose_scope(None, None, None, None), None);
        assert_eq!(choose_scope(Some("a"), None, Some("a b"), None).as_deref(), Some("a b"));
        assert_eq!(choose_scope(None, None, None, Some(&off)).as_deref(), Some("offline_access"));
        assert_eq!(choose_scope(Some("a"), None, None, Some(&list)).as_deref(), Some("a"));
    }

    #[test]
    fn auth_method_choice() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(ClientAuthMethod::for_registration(None), ClientAuthMethod::None);
        assert_eq!(ClientAuthMethod::for_registration(Some(&l(&["client_secret_basic", "none"]))), ClientAuthMethod::None);
        assert_eq!(ClientAuthMethod::for_registration(Some(&l(&["client_secret_basic"]))), ClientAuthMethod::ClientSecretBasic);
        assert_eq!(ClientAuthMethod::for_registration(Some(&l(&["client_secret_post"]))), ClientAuthMethod::ClientSecretPost);
        assert_eq!(ClientAuthMethod::for_secret(None), ClientAuthMethod::ClientSecretBasic);
    }

    #[test]
    fn rejected_token_requests_never_repeat_what_was_sent() {
        let rejected = OAuthError::Rejected {
            host: "as".into(),
            code: "invalid_grant".into(),
            description: Some(format!("refresh token rt-0123456789abcdef is unknown; {}", "x".repeat(400))),
            status: 400,
        };
        match rejected.redacted(["rt-0123456789abcdef"]) {
            OAuthError::Rejected { description: Some(d), .. } => {
                assert!(d.starts_with("refresh token [redacted] is unknown"), "{d}");
                assert_eq!(d.chars().count(), crate::text::REMOTE_TEXT_CHARS);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_codes_are_checked() {
        assert!(is_error_code("invalid_grant"));
        assert!(!is_error_code("bad\"code"));
        assert!(!is_error_code(""));
        assert!(!is_error_code("x\ny"));
        assert!(matches!(
            OAuthError::rejected_or_invalid("h", 400, Some("x\ny".into()), None),
            OAuthError::InvalidResponse { why, .. } if why == "HTTP 400"
        ));
    }
}
