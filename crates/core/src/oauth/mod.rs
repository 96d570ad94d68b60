//! The OAuth 2.1 client: PKCE, scope selection, client registration (RFC
//! 7591) and Client ID Metadata Documents, the authorization URL, and the
//! token endpoint (code exchange and refresh, with RFC 8707 `resource`).

use crate::discovery::AuthServer;
use crate::net::{display_host, HttpClient, HttpRequest, HttpResponse, NetError};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
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

/// A PKCE pair (RFC 7636): the verifier stays with us, the S256 challenge goes
/// in the authorization URL.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = s256(&verifier);
        Self { verifier, challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkce {{ verifier: <redacted>, challenge: {} }}", self.challenge)
    }
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
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
}

impl ClientAuthMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
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
}

/// The metadata this client registers with (RFC 7591 §2).
#[derive(Debug, Clone)]
pub struct ClientProfile {
    pub client_name: String,
    pub client_uri: Option<String>,
    pub redirect_uri: String,
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: Option<String>,
    client_secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes()
}

fn rejected_or_invalid(host: &str, response: &HttpResponse) -> OAuthError {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: Option<String>,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(&response.body) {
        Ok(ErrorBody { error: Some(code), error_description }) if is_error_code(&code) => OAuthError::Rejected {
            host: host.to_owned(),
            code,
            description: error_description.map(|d| d.chars().take(4 * MAX_TOKEN_LEN).collect()),
            status: response.status,
        },
        _ => OAuthError::InvalidResponse { host: host.to_owned(), why: format!("HTTP {}", response.status) },
    }
}

/// RFC 6749 §5.2: error codes are printable ASCII without '"' and '\'.
pub fn is_error_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 100 && code.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

/// Dynamic client registration (RFC 7591). Returns the registration and the
/// client secret, if one was issued.
pub async fn register(
    http: &HttpClient,
    auth_server: &AuthServer,
    profile: &ClientProfile,
) -> Result<(ClientRegistration, Option<String>), OAuthError> {
    let endpoint = auth_server.registration_endpoint.as_deref().ok_or_else(|| {
        OAuthError::Unsupported(
            "the authorization server offers no dynamic client registration; register a client with mcp_oauth_set_client()".into(),
        )
    })?;
    let url = Url::parse(endpoint).map_err(|_| OAuthError::Unsupported("the registration endpoint is not a URL".into()))?;
    let host = display_host(&url);
    let requested = ClientAuthMethod::for_registration(auth_server.token_endpoint_auth_methods_supported.as_deref());
    let mut body = serde_json::json!({
        "client_name": profile.client_name,
        "redirect_uris": [profile.redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": requested.as_str(),
        "application_type": "web",
    });
    if let Some(uri) = &profile.client_uri {
        body["client_uri"] = serde_json::Value::String(uri.clone());
    }
    let request = HttpRequest::post(url, "application/json", body.to_string().into_bytes()).accept("application/json");
    let response = http.send(request).await?;
    if response.status != 201 && response.status != 200 {
        return Err(rejected_or_invalid(&host, &response));
    }
    let parsed: RegistrationResponse = serde_json::from_slice(&response.body)
        .map_err(|_| OAuthError::InvalidResponse { host: host.clone(), why: "the registration response is not JSON".into() })?;
    let client_id = parsed
        .client_id
        .filter(|id| !id.is_empty() && id.len() <= 1024)
        .ok_or_else(|| OAuthError::InvalidResponse { host: host.clone(), why: "the registration response has no client_id".into() })?;
    let secret = parsed.client_secret.filter(|s| !s.is_empty());
    let auth_method = match parsed.token_endpoint_auth_method.as_deref() {
        Some(m) => ClientAuthMethod::parse(m).ok_or_else(|| OAuthError::InvalidResponse {
            host: host.clone(),
            why: format!("the registration uses token_endpoint_auth_method {m:?}, which this client does not support"),
        })?,
        None => requested,
    };
    if auth_method != ClientAuthMethod::None && secret.is_none() {
        return Err(OAuthError::InvalidResponse {
            host,
            why: format!("the registration requires {} but issued no client_secret", auth_method.as_str()),
        });
    }
    let registration =
        ClientRegistration { client_id, source: ClientSource::Dynamic, issuer: Some(auth_server.issuer.clone()), auth_method };
    Ok((registration, if auth_method == ClientAuthMethod::None { None } else { secret }))
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

/// The authorization request URL (OAuth 2.1 §4.1.1 with PKCE and RFC 8707).
pub fn authorization_url(
    auth_server: &AuthServer,
    client_id: &str,
    redirect_uri: &str,
    code_challenge: &str,
    state: &str,
    scope: Option<&str>,
    resource: &str,
) -> Result<String, OAuthError> {
    let mut url = Url::parse(&auth_server.authorization_endpoint)
        .map_err(|_| OAuthError::Unsupported("the authorization endpoint is not a URL".into()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", client_id);
        q.append_pair("redirect_uri", redirect_uri);
        q.append_pair("code_challenge", code_challenge);
        q.append_pair("code_challenge_method", "S256");
        q.append_pair("state", state);
        if let Some(scope) = scope {
            q.append_pair("scope", scope);
        }
        q.append_pair("resource", resource);
    }
    Ok(url.to_string())
}

/// Tokens as stored (encrypted) on the row.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds; `None` when the server gave no lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The issuer that issued them.
    pub issuer: String,
    /// Unix seconds when they were received (tokens stored before this was
    /// kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
}

/// The most time before expiry at which a token is refreshed.
pub const MAX_REFRESH_MARGIN_SECS: i64 = 60;

impl TokenSet {
    /// How long before expiry this token is refreshed: a tenth of its
    /// lifetime, at most [`MAX_REFRESH_MARGIN_SECS`], so a server issuing
    /// short-lived tokens does not get a refresh on every call.
    pub fn refresh_margin(&self) -> i64 {
        match (self.issued_at, self.expires_at) {
            (Some(issued), Some(expires)) => ((expires - issued) / 10).clamp(0, MAX_REFRESH_MARGIN_SECS),
            _ => MAX_REFRESH_MARGIN_SECS,
        }
    }

    /// Whether the access token should be refreshed before it is used.
    pub fn refresh_due(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at - self.refresh_margin() <= now)
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("issuer", &self.issuer)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// Longest token lifetime taken at face value: ten years.
const MAX_EXPIRES_IN: i64 = 10 * 365 * 24 * 3600;
/// Longest token accepted. Tokens travel in an HTTP header on every call;
/// servers commonly refuse headers much longer than this.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// RFC 6749 Appendix A: `refresh_token = 1*VSCHAR` (%x20-7E).
pub fn is_refresh_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_LEN && token.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// `access_token = 1*VSCHAR` (RFC 6749 Appendix A), without the space,
/// since the token is sent as `Authorization: Bearer <token>` (RFC 6750
/// §2.1), where a space would end it.
pub fn is_access_token(token: &str) -> bool {
    is_refresh_token(token) && !token.contains(' ')
}

/// Validates a token endpoint response (OAuth 2.1 §3.2.3).
pub fn parse_token_response(host: &str, body: &[u8], issuer: &str, now: i64) -> Result<TokenSet, OAuthError> {
    let invalid = |why: &str| OAuthError::InvalidResponse { host: host.to_owned(), why: why.to_owned() };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| invalid("the token response is not JSON"))?;
    let obj = value.as_object().ok_or_else(|| invalid("the token response is not a JSON object"))?;
    let access_token = match obj.get("access_token") {
        Some(serde_json::Value::String(t)) if is_access_token(t) => t.clone(),
        Some(serde_json::Value::String(t)) if !t.is_empty() => {
            return Err(invalid(&format!(
            "the access_token is not 1 to {MAX_TOKEN_LEN} visible ASCII characters (RFC 6749 Appendix A) without spaces; it has {} bytes",
            t.len()
        )))
        }
        _ => return Err(invalid("the token response has no usable access_token")),
    };
    match obj.get("token_type") {
        Some(serde_json::Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(serde_json::Value::String(_)) => return Err(invalid("the token_type is not Bearer")),
        _ => return Err(invalid("the token response has no token_type")),
    }
    let expires_at = match obj.get("expires_in") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => {
            let secs = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse::<i64>().ok()))
                .ok_or_else(|| invalid("expires_in is not an integer"))?;
            if !(0..=MAX_EXPIRES_IN).contains(&secs) {
                return Err(invalid("expires_in is negative or implausibly large"));
            }
            Some(now.saturating_add(secs))
        }
    };
    let refresh_token = match obj.get("refresh_token") {
        Some(serde_json::Value::String(t)) if is_refresh_token(t) => Some(t.clone()),
        Some(serde_json::Value::String(t)) => {
            return Err(invalid(&format!(
                "the refresh_token is not 1 to {MAX_TOKEN_LEN} visible ASCII characters (RFC 6749 Appendix A); it has {} bytes",
                t.len()
            )))
        }
        None | Some(serde_json::Value::Null) => None,
        _ => return Err(invalid("the refresh_token is not a string")),
    };
    let scope = obj.get("scope").and_then(|s| s.as_str()).map(str::to_owned);
    Ok(TokenSet { access_token, refresh_token, expires_at, scope, issuer: issuer.to_owned(), issued_at: Some(now) })
}

/// The client's credentials for the token endpoint.
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub secret: Option<&'a str>,
    pub method: ClientAuthMethod,
}

/// A token endpoint and the issuer whose endpoint it is.
#[derive(Debug, Clone, Copy)]
pub struct TokenEndpoint<'a> {
    pub url: &'a str,
    pub issuer: &'a str,
}

impl<'a> From<&'a AuthServer> for TokenEndpoint<'a> {
    fn from(server: &'a AuthServer) -> Self {
        Self { url: &server.token_endpoint, issuer: &server.issuer }
    }
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
}

async fn token_request(
    http: &HttpClient,
    endpoint: TokenEndpoint<'_>,
    client: &ClientCredentials<'_>,
    mut params: Vec<(&str, &str)>,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    let url = Url::parse(endpoint.url).map_err(|_| OAuthError::Unsupported("the token endpoint is not a URL".into()))?;
    let host = display_host(&url);
    // Whatever the server says back is cleaned of what this request carried.
    let mut secrets: Vec<String> = params
        .iter()
        .filter(|(name, _)| matches!(*name, "code" | "code_verifier" | "refresh_token"))
        .map(|(_, value)| (*value).to_owned())
        .collect();
    secrets.extend(client.secret.map(str::to_owned));
    let mut basic = None;
    match (client.method, client.secret) {
        (ClientAuthMethod::ClientSecretBasic, Some(secret)) => {
            // RFC 6749 §2.3.1: each part form-encoded before base64.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let value = STANDARD.encode(format!("{}:{}", enc(client.client_id), enc(secret)));
            secrets.push(value.clone());
            basic = Some(format!("Basic {value}"));
        }
        (ClientAuthMethod::ClientSecretPost, Some(secret)) => {
            params.push(("client_id", client.client_id));
            params.push(("client_secret", secret));
        }
        _ => params.push(("client_id", client.client_id)),
    }
    let mut request = HttpRequest::post(url, "application/x-www-form-urlencoded", form(&params)).accept("application/json");
    if let Some(value) = basic {
        request = request.header(reqwest::header::AUTHORIZATION, &value, true);
    }
    let response = http.send(request).await?;
    if response.status != 200 {
        return Err(rejected_or_invalid(&host, &response).redacted(secrets.iter().map(String::as_str)));
    }
    parse_token_response(&host, &response.body, endpoint.issuer, now)
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
#[allow(clippy::too_many_arguments)]
pub async fn exchange_code(
    http: &HttpClient,
    endpoint: TokenEndpoint<'_>,
    client: &ClientCredentials<'_>,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
    resource: &str,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    let params = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", verifier),
        ("redirect_uri", redirect_uri),
        ("resource", resource),
    ];
    token_request(http, endpoint, client, params, now).await
}

/// Refreshes tokens; keeps the old refresh token when the server sends none.
pub async fn refresh(
    http: &HttpClient,
    endpoint: TokenEndpoint<'_>,
    client: &ClientCredentials<'_>,
    tokens: &TokenSet,
    resource: &str,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    let refresh_token = tokens.refresh_token.as_deref().ok_or_else(|| OAuthError::Unsupported("no refresh token was issued".into()))?;
    let params = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("resource", resource)];
    let mut fresh = token_request(http, endpoint, client, params, now).await?;
    if fresh.refresh_token.is_none() {
        fresh.refresh_token = tokens.refresh_token.clone();
    }
    if fresh.scope.is_none() {
        fresh.scope = tokens.scope.clone();
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let p = Pkce::new();
        assert_eq!(p.verifier.len(), 43);
        assert_eq!(p.challenge, s256(&p.verifier));
        assert!(!format!("{p:?}").contains(&p.verifier));
    }

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
    fn token_responses_are_validated() {
        let ok = parse_token_response(
            "h",
            br#"{"access_token":"at","token_type":"bearer","expires_in":3600,"refresh_token":"rt","scope":"a"}"#,
            "iss",
            100,
        )
        .unwrap();
        assert_eq!(ok.expires_at, Some(3700));
        assert_eq!(ok.refresh_token.as_deref(), Some("rt"));
        assert!(!format!("{ok:?}").contains("\"at\"") && !format!("{ok:?}").contains("rt\""));
        let no_expiry = parse_token_response("h", br#"{"access_token":"at","token_type":"Bearer"}"#, "iss", 0).unwrap();
        assert_eq!(no_expiry.expires_at, None);
        for bad in [
            &br#"{"token_type":"Bearer"}"#[..],
            br#"{"access_token":"","token_type":"Bearer"}"#,
            br#"{"access_token":"at"}"#,
            br#"{"access_token":"at","token_type":"DPoP"}"#,
            br#"{"access_token":"at","token_type":"Bearer","expires_in":-5}"#,
            br#"{"access_token":"at","token_type":"Bearer","expires_in":1e300}"#,
            br#"{"access_token":"at","token_type":"Bearer","expires_in":999999999999}"#,
            br#"{"access_token":"at","token_type":"Bearer","refresh_token":7}"#,
            br#"[]"#,
            b"not json",
        ] {
            let err = parse_token_response("h", bad, "iss", 0).unwrap_err();
            assert!(matches!(err, OAuthError::InvalidResponse { .. }), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn token_syntax_is_rfc_6749_appendix_a() {
        let body = |access: &str, refresh: &str| {
            serde_json::json!({"access_token": access, "refresh_token": refresh, "token_type": "Bearer"}).to_string()
        };
        assert!(parse_token_response("h", body("eyJ.a-b_c~d+e/f=", "r!#$%&'()*+,-./:;<=>?@[]^_`{|}~ x").as_bytes(), "iss", 0).is_ok());
        for (access, refresh) in
            [("has space", "r"), ("tab\there", "r"), ("ctl\u{1}", "r"), ("caf\u{e9}", "r"), ("a", "caf\u{e9}"), ("a", "nl\n"), ("a", "")]
        {
            let err = parse_token_response("h", body(access, refresh).as_bytes(), "iss", 0).unwrap_err();
            assert!(matches!(err, OAuthError::InvalidResponse { .. }), "{access:?} {refresh:?}");
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(parse_token_response("h", body(&long, "r").as_bytes(), "iss", 0).is_err());
        assert!(parse_token_response("h", body(&long[1..], "r").as_bytes(), "iss", 0).is_ok());
    }

    #[test]
    fn refresh_margin_fits_the_lifetime() {
        let tokens = |issued: Option<i64>, expires: Option<i64>| TokenSet {
            access_token: "a".into(),
            refresh_token: None,
            expires_at: expires,
            scope: None,
            issuer: "i".into(),
            issued_at: issued,
        };
        // A 30-second token: refreshed in its last 3 seconds, not on every call.
        let short = tokens(Some(1000), Some(1030));
        assert_eq!(short.refresh_margin(), 3);
        assert!(!short.refresh_due(1026) && short.refresh_due(1027));
        // An hour: the last minute.
        let hour = tokens(Some(0), Some(3600));
        assert_eq!(hour.refresh_margin(), 60);
        assert!(!hour.refresh_due(3539) && hour.refresh_due(3540));
        // Unknown issue time (0.1.0 tokens): a minute; no expiry: never.
        assert_eq!(tokens(None, Some(100)).refresh_margin(), 60);
        assert!(!tokens(Some(0), None).refresh_due(i64::MAX / 2));
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
    fn authorization_url_carries_everything() {
        let server = AuthServer {
            issuer: "https://as.example".into(),
            authorization_endpoint: "https://as.example/authorize?tenant=1".into(),
            token_endpoint: "https://as.example/token".into(),
            registration_endpoint: None,
            scopes_supported: None,
            token_endpoint_auth_methods_supported: None,
            client_id_metadata_document_supported: false,
            authorization_response_iss_parameter_supported: false,
            from_metadata: true,
        };
        let url = authorization_url(&server, "cid", "https://app/cb", "chal", "st", Some("a b"), "https://mcp/x").unwrap();
        let parsed = Url::parse(&url).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "a b");
        assert_eq!(q["resource"], "https://mcp/x");
        assert_eq!(q["redirect_uri"], "https://app/cb");
    }

    #[test]
    fn error_codes_are_checked() {
        assert!(is_error_code("invalid_grant"));
        assert!(!is_error_code("bad\"code"));
        assert!(!is_error_code(""));
        assert!(!is_error_code("x\ny"));
    }
}
