//! The authorization URL and the token endpoint, built by `oauth2` and sent
//! through our [`HttpClient`], so that the network policy, DNS pinning, the
//! body cap, the no-redirect rule and the timeouts apply to every request.

use super::assertion::{client_assertion, KeySpec, JWT_BEARER_ASSERTION_TYPE};
use super::dpop::{demanded_nonce, DpopKey};
use super::tokens::{parse_bound_token_response, TokenResponse};
use super::{ClientAuthMethod, OAuthError, TokenSet};
use crate::discovery::AuthServer;
use crate::net::{display_host, HttpClient, HttpRequest, Method, NetError};
use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse};
use oauth2::http::{header::AUTHORIZATION, StatusCode};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken, TokenUrl,
};
use std::sync::atomic::{AtomicU16, Ordering};
use url::Url;

/// A PKCE pair (RFC 7636): the verifier stays with us, the S256 challenge goes
/// in the authorization URL.
#[derive(Debug)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: PkceCodeChallenge,
}

impl Pkce {
    /// A fresh pair: 32 random bytes of verifier (43 characters).
    pub fn new() -> Self {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        Self { verifier: Secret::new(verifier.into_secret()), challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// The authorization request URL (OAuth 2.1 §4.1.1 with PKCE and RFC 8707).
pub fn authorization_url(
    auth_server: &AuthServer,
    client_id: &str,
    redirect_uri: &str,
    pkce: &Pkce,
    state: &str,
    scope: Option<&str>,
    resource: &str,
) -> Result<String, OAuthError> {
    let endpoint = AuthUrl::new(auth_server.authorization_endpoint.clone())
        .map_err(|_| OAuthError::Unsupported("the authorization endpoint is not a URL".into()))?;
    let client = BasicClient::new(ClientId::new(client_id.to_owned())).set_auth_uri(endpoint).set_redirect_uri(redirect_url(redirect_uri)?);
    let scopes = scope.into_iter().flat_map(str::split_ascii_whitespace).map(|s| Scope::new(s.to_owned()));
    let (url, _) = client
        .authorize_url(|| CsrfToken::new(state.to_owned()))
        .set_pkce_challenge(pkce.challenge.clone())
        .add_scopes(scopes)
        .add_extra_param("resource", resource)
        .url();
    Ok(url.to_string())
}

fn redirect_url(redirect_uri: &str) -> Result<RedirectUrl, OAuthError> {
    RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| OAuthError::Unsupported("the redirect URI is not a URL".into()))
}

/// The client's credentials for the token endpoint.
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    /// The client secret; a `private_key_jwt` client's private key (PEM).
    pub secret: Option<&'a Secret>,
    pub method: ClientAuthMethod,
    /// A `private_key_jwt` client's algorithm and key id.
    pub key: Option<&'a KeySpec>,
}

impl ClientCredentials<'_> {
    /// The secret, when this client authenticates with one (never the
    /// private key of a `private_key_jwt` client, which is not sent).
    pub(super) fn secret(&self) -> Option<&Secret> {
        self.secret.filter(|_| matches!(self.method, ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost))
    }

    /// The body parameters of a `private_key_jwt` client's authentication
    /// (RFC 7523 §2.2): a fresh assertion for `audience`, the issuer.
    pub(super) fn assertion_params(&self, audience: &str, now: i64) -> Result<Vec<(&'static str, String)>, OAuthError> {
        if self.method != ClientAuthMethod::PrivateKeyJwt {
            return Ok(Vec::new());
        }
        let (Some(pem), Some(spec)) = (self.secret, self.key) else {
            return Err(OAuthError::Unsupported("the client authenticates with a private key, but none is set".into()));
        };
        let assertion = client_assertion(self.client_id, audience, pem, spec, now)?;
        Ok(vec![("client_assertion_type", JWT_BEARER_ASSERTION_TYPE.to_owned()), ("client_assertion", assertion.expose().to_owned())])
    }

    /// The HTTP Basic credential built from this client's id and secret,
    /// each form-encoded first (RFC 6749 §2.3.1).
    fn basic_of(&self, secret: &Secret) -> String {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        STANDARD.encode(format!("{}:{}", encode(self.client_id), encode(secret.expose())))
    }

    /// The Basic credential of a client_secret_basic client.
    pub(super) fn basic_credential(&self) -> Option<String> {
        let secret = self.secret().filter(|_| self.method == ClientAuthMethod::ClientSecretBasic)?;
        Some(self.basic_of(secret))
    }

    /// What a server might echo of this client's authentication: the secret
    /// and the Basic credential built from it.
    pub(super) fn echoable(&self) -> Vec<String> {
        let Some(secret) = self.secret() else { return Vec::new() };
        vec![secret.expose().to_owned(), self.basic_of(secret)]
    }
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

/// An `oauth2` client with our token response, and a token endpoint once
/// one is set.
type TokenClient<HasTokenUrl = EndpointSet> = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
>;

/// An `oauth2` client for `endpoint`, authenticating as `client`.
fn token_client(endpoint: TokenEndpoint<'_>, client: &ClientCredentials<'_>) -> Result<TokenClient, OAuthError> {
    let url = TokenUrl::new(endpoint.url.to_owned()).map_err(|_| OAuthError::Unsupported("the token endpoint is not a URL".into()))?;
    let auth_type = match client.method {
        ClientAuthMethod::ClientSecretPost | ClientAuthMethod::PrivateKeyJwt => AuthType::RequestBody,
        ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::None => AuthType::BasicAuth,
    };
    let oauth = TokenClient::<EndpointNotSet>::new(ClientId::new(client.client_id.to_owned())).set_token_uri(url).set_auth_type(auth_type);
    Ok(match client.secret() {
        Some(secret) => oauth.set_client_secret(ClientSecret::new(secret.expose().to_owned())),
        // Without a secret oauth2 sends the client_id in the body.
        None => oauth,
    })
}

/// `oauth2`'s HTTP client. It keeps the status of the response, which
/// `oauth2`'s errors leave out, and adds a DPoP proof to each request when
/// the tokens are to be bound to a key.
struct Transport<'a> {
    http: &'a HttpClient,
    status: AtomicU16,
    dpop: Option<&'a DpopKey>,
}

impl<'a> Transport<'a> {
    fn new(http: &'a HttpClient, dpop: Option<&'a DpopKey>) -> Self {
        Self { http, status: AtomicU16::new(0), dpop }
    }

    async fn send(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, NetError> {
        let (parts, body) = request.into_parts();
        let url = Url::parse(&parts.uri.to_string())
            .map_err(|_| NetError::Transport { host: String::new(), detail: "the token request has no usable URL".into() })?;
        let mut headers = parts.headers;
        if let Some(credential) = headers.get_mut(AUTHORIZATION) {
            credential.set_sensitive(true);
        }
        let method = if parts.method == oauth2::http::Method::GET { Method::Get } else { Method::Post };
        let request = HttpRequest { method, url, headers, body: Some(body), follow_same_origin: false };
        let response = send_with_proof(self.http, request, self.dpop).await?;
        self.status.store(response.status, Ordering::Relaxed);
        let mut out = oauth2::HttpResponse::new(response.body);
        *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
        *out.headers_mut() = response.headers;
        Ok(out)
    }

    /// What the token endpoint's answer means: tokens that passed our
    /// checks, or the error with nothing of `sent` (the code, verifier,
    /// refresh token, client credentials) in what the server said.
    fn outcome(
        &self,
        answer: Result<TokenResponse, RequestTokenError<NetError, BasicErrorResponse>>,
        endpoint: TokenEndpoint<'_>,
        sent: &[String],
        now: i64,
    ) -> Result<TokenSet, OAuthError> {
        let host = Url::parse(endpoint.url).map(|u| display_host(&u)).unwrap_or_default();
        let status = self.status.load(Ordering::Relaxed);
        let invalid = |why: &str| OAuthError::InvalidResponse { host: host.clone(), why: why.to_owned() };
        match answer {
            Ok(response) => response.validate_bound(&host, endpoint.issuer, now, self.dpop),
            Err(RequestTokenError::Request(e)) => Err(OAuthError::Net(e)),
            Err(RequestTokenError::ServerResponse(e)) => {
                Err(OAuthError::rejected_or_invalid(&host, status, Some(e.error().as_ref().to_owned()), e.error_description().cloned())
                    .redacted(sent.iter().map(String::as_str)))
            }
            Err(RequestTokenError::Parse(..) | RequestTokenError::Other(_)) if status != 200 => {
                Err(OAuthError::rejected_or_invalid(&host, status, None, None))
            }
            Err(RequestTokenError::Parse(..)) => Err(invalid("the token response is not a JSON object")),
            Err(RequestTokenError::Other(_)) => Err(invalid("the token response is empty or not application/json")),
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// Sends a token request, with a fresh DPoP proof of `dpop` when there is
/// a key, and once more with the server's nonce when it demands one
/// (RFC 9449 §8: 400 `use_dpop_nonce` and a `DPoP-Nonce` header).
async fn send_with_proof(http: &HttpClient, request: HttpRequest, dpop: Option<&DpopKey>) -> Result<crate::net::HttpResponse, NetError> {
    let Some(key) = dpop else { return http.send(request).await };
    let prove = |mut request: HttpRequest, nonce: Option<&str>| {
        if let Some(proof) = key.proof("POST", &request.url, None, nonce, unix_now()) {
            if let Ok(value) = oauth2::http::HeaderValue::from_str(&proof) {
                request.headers.insert("dpop", value);
            }
        }
        request
    };
    let again = request.clone();
    let response = http.send(prove(request, None)).await?;
    if response.status != 400 {
        return Ok(response);
    }
    match demanded_nonce(&response.headers, &String::from_utf8_lossy(&response.body)) {
        Some(nonce) => http.send(prove(again, Some(&nonce))).await,
        None => Ok(response),
    }
}

/// A token request with the client assertion parameters (or none) added:
/// `oauth2`'s request types share no trait for extra parameters.
macro_rules! with_params {
    ($request:expr, $params:expr) => {
        $params.iter().fold($request, |request, (name, value)| request.add_extra_param(*name, value.clone()))
    };
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens,
/// bound to `dpop` when the server takes proofs.
#[allow(clippy::too_many_arguments)]
pub async fn exchange_code(
    http: &HttpClient,
    endpoint: TokenEndpoint<'_>,
    client: &ClientCredentials<'_>,
    code: &str,
    verifier: &Secret,
    redirect_uri: &str,
    resource: &str,
    dpop: Option<&DpopKey>,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    let oauth = token_client(endpoint, client)?.set_redirect_uri(redirect_url(redirect_uri)?);
    let transport = Transport::new(http, dpop);
    let assertion = client.assertion_params(endpoint.issuer, now)?;
    let request = with_params!(
        oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()))
            .add_extra_param("resource", resource),
        assertion
    );
    let answer = request.request_async(&|request| transport.send(request)).await;
    let mut sent = client.echoable();
    sent.extend([code.to_owned(), verifier.expose().to_owned()]);
    sent.extend(assertion.into_iter().map(|(_, v)| v));
    transport.outcome(answer, endpoint, &sent, now)
}

/// Refreshes tokens; keeps the old refresh token (and scope) when the server
/// sends none.
pub async fn refresh(
    http: &HttpClient,
    endpoint: TokenEndpoint<'_>,
    client: &ClientCredentials<'_>,
    tokens: &TokenSet,
    resource: &str,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    let refresh_token = tokens.refresh_token.as_ref().ok_or_else(|| OAuthError::Unsupported("no refresh token was issued".into()))?;
    let oauth = token_client(endpoint, client)?;
    // A refresh is proved with the key the tokens are bound to (RFC 9449 §5).
    let transport = Transport::new(http, tokens.dpop_key.as_ref());
    let assertion = client.assertion_params(endpoint.issuer, now)?;
    let refresh_token_value = RefreshToken::new(refresh_token.expose().to_owned());
    let request = with_params!(oauth.exchange_refresh_token(&refresh_token_value).add_extra_param("resource", resource), assertion);
    let answer = request.request_async(&|request| transport.send(request)).await;
    let mut sent = client.echoable();
    sent.push(refresh_token.expose().to_owned());
    sent.extend(assertion.into_iter().map(|(_, v)| v));
    let mut fresh = transport.outcome(answer, endpoint, &sent, now)?;
    if fresh.refresh_token.is_none() {
        fresh.refresh_token = tokens.refresh_token.clone();
    }
    if fresh.scope.is_none() {
        fresh.scope = tokens.scope.clone();
    }
    Ok(fresh)
}

/// The client credentials grant (OAuth 2.1 §4.2): a token for the client
/// itself, no user involved.
pub async fn client_credentials(
    http: &HttpClient,
    endpoint: TokenEndpoint<'_>,
    client: &ClientCredentials<'_>,
    scope: Option<&str>,
    resource: &str,
    dpop: Option<&DpopKey>,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    let oauth = token_client(endpoint, client)?;
    let transport = Transport::new(http, dpop);
    let assertion = client.assertion_params(endpoint.issuer, now)?;
    let scopes = scope.into_iter().flat_map(str::split_ascii_whitespace).map(|s| Scope::new(s.to_owned()));
    let request = with_params!(oauth.exchange_client_credentials().add_scopes(scopes).add_extra_param("resource", resource), assertion);
    let answer = request.request_async(&|request| transport.send(request)).await;
    let mut sent = client.echoable();
    sent.extend(assertion.into_iter().map(|(_, v)| v));
    let mut tokens = transport.outcome(answer, endpoint, &sent, now)?;
    tokens.scope = tokens.scope.or_else(|| scope.map(str::to_owned));
    Ok(tokens)
}

/// `grant_type` of the JWT bearer grant (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The JWT bearer grant (RFC 7523 §2.1): `assertion`, a JWT another party
/// issued (a workload identity token, an identity assertion grant), for an
/// access token. Written here because `oauth2` has no extension grants;
/// the request is built as `oauth2` builds its own (form body, client
/// authentication, `Accept: application/json`) and sent through the same
/// policy-checked client.
#[allow(clippy::too_many_arguments)]
pub async fn jwt_bearer(
    http: &HttpClient,
    endpoint: TokenEndpoint<'_>,
    client: Option<&ClientCredentials<'_>>,
    assertion: &Secret,
    scope: Option<&str>,
    resource: &str,
    dpop: Option<&DpopKey>,
    now: i64,
) -> Result<TokenSet, OAuthError> {
    let mut form: Vec<(&str, String)> = vec![("grant_type", JWT_BEARER_GRANT.to_owned()), ("assertion", assertion.expose().to_owned())];
    if let Some(scope) = scope.filter(|s| !s.trim().is_empty()) {
        form.push(("scope", scope.split_ascii_whitespace().collect::<Vec<_>>().join(" ")));
    }
    form.push(("resource", resource.to_owned()));
    let mut sent = vec![assertion.expose().to_owned()];
    let mut headers = oauth2::http::HeaderMap::new();
    if let Some(client) = client {
        match (client.method, client.basic_credential()) {
            (ClientAuthMethod::ClientSecretBasic, Some(basic)) => {
                headers.insert(AUTHORIZATION, basic_authorization(&basic)?);
            }
            (ClientAuthMethod::ClientSecretPost, _) => {
                form.push(("client_id", client.client_id.to_owned()));
                if let Some(secret) = client.secret() {
                    form.push(("client_secret", secret.expose().to_owned()));
                }
            }
            _ => form.push(("client_id", client.client_id.to_owned())),
        }
        let assertion_params = client.assertion_params(endpoint.issuer, now)?;
        sent.extend(client.echoable());
        sent.extend(assertion_params.iter().map(|(_, v)| v.clone()));
        form.extend(assertion_params);
    }
    let (host, body) = send_form(http, endpoint, headers, &form, &sent, dpop).await?;
    parse_bound_token_response(&host, &body, endpoint.issuer, now, dpop)
}

/// RFC 8693 token types of the identity assertion authorization grant.
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ID_JAG_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token exchange (RFC 8693) of enterprise-managed authorization
/// (SEP-990): the user's ID token, at their identity provider, for an
/// identity assertion JWT authorization grant (ID-JAG) addressed to
/// `audience` (the MCP server's authorization server) for `resource`.
/// Written here because `oauth2` has no token exchange.
pub async fn exchange_id_token(
    http: &HttpClient,
    idp: TokenEndpoint<'_>,
    idp_client: &ClientCredentials<'_>,
    id_token: &Secret,
    audience: &str,
    resource: &str,
    scope: Option<&str>,
) -> Result<Secret, OAuthError> {
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", TOKEN_EXCHANGE_GRANT.to_owned()),
        ("requested_token_type", ID_JAG_TOKEN_TYPE.to_owned()),
        ("subject_token", id_token.expose().to_owned()),
        ("subject_token_type", ID_TOKEN_TYPE.to_owned()),
        ("audience", audience.to_owned()),
        ("resource", resource.to_owned()),
    ];
    if let Some(scope) = scope.filter(|s| !s.trim().is_empty()) {
        form.push(("scope", scope.to_owned()));
    }
    let mut headers = oauth2::http::HeaderMap::new();
    match idp_client.basic_credential() {
        Some(basic) => {
            headers.insert(AUTHORIZATION, basic_authorization(&basic)?);
        }
        None => form.push(("client_id", idp_client.client_id.to_owned())),
    }
    let mut sent = vec![id_token.expose().to_owned()];
    sent.extend(idp_client.echoable());
    let (host, body) = send_form(http, idp, headers, &form, &sent, None).await?;
    let invalid = |why: &str| OAuthError::InvalidResponse { host: host.clone(), why: why.to_owned() };
    let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|_| invalid("the token exchange response is not JSON"))?;
    if answer.get("issued_token_type").and_then(serde_json::Value::as_str) != Some(ID_JAG_TOKEN_TYPE) {
        return Err(invalid("the token exchange did not issue an identity assertion grant (issued_token_type is not id-jag)"));
    }
    match answer.get("access_token").and_then(serde_json::Value::as_str) {
        Some(grant) if super::is_access_token(grant) && grant.split('.').count() == 3 => Ok(Secret::new(grant)),
        _ => Err(invalid("the identity assertion grant is not a JWT")),
    }
}

/// `Authorization: Basic` with `basic` (RFC 6749 §2.3.1), marked sensitive.
fn basic_authorization(basic: &str) -> Result<oauth2::http::HeaderValue, OAuthError> {
    let mut value = oauth2::http::HeaderValue::from_str(&format!("Basic {basic}"))
        .map_err(|_| OAuthError::Unsupported("the client credentials cannot be sent in a header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// POSTs a token request built by hand as `oauth2` builds its own: the
/// endpoint's host and a 200 answer's body, or the OAuth error with
/// nothing of `sent` in it.
async fn send_form(
    http: &HttpClient,
    endpoint: TokenEndpoint<'_>,
    mut headers: oauth2::http::HeaderMap,
    form: &[(&str, String)],
    sent: &[String],
    dpop: Option<&DpopKey>,
) -> Result<(String, Vec<u8>), OAuthError> {
    let url = Url::parse(endpoint.url).map_err(|_| OAuthError::Unsupported("the token endpoint is not a URL".into()))?;
    let host = display_host(&url);
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str()))).finish();
    headers.insert(oauth2::http::header::CONTENT_TYPE, oauth2::http::HeaderValue::from_static("application/x-www-form-urlencoded"));
    headers.insert(oauth2::http::header::ACCEPT, oauth2::http::HeaderValue::from_static("application/json"));
    let request = HttpRequest { method: Method::Post, url, headers, body: Some(body.into_bytes()), follow_same_origin: false };
    let response = send_with_proof(http, request, dpop).await?;
    if response.status == 200 {
        return Ok((host, response.body));
    }
    let error: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let text = |name: &str| error.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
    Err(OAuthError::rejected_or_invalid(&host, response.status, text("error"), text("error_description"))
        .redacted(sent.iter().map(String::as_str)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_is_s256_of_a_43_character_verifier() {
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.expose().len(), 43);
        assert_eq!(pkce.challenge.method().as_str(), "S256");
        let expected = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(pkce.verifier.expose().to_owned()));
        assert_eq!(pkce.challenge.as_str(), expected.as_str());
        assert!(!format!("{pkce:?}").contains(pkce.verifier.expose()));
        // RFC 7636 Appendix B.
        let b = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into()));
        assert_eq!(b.as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn authorization_url_carries_everything() {
        let server =
            AuthServer { authorization_endpoint: "https://as.example/authorize?tenant=1".into(), ..AuthServer::at("https://as.example") };
        let pkce = Pkce::new();
        let url = authorization_url(&server, "cid", "https://app/cb", &pkce, "st", Some("a  b"), "https://mcp/x").unwrap();
        let parsed = Url::parse(&url).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["state"], "st");
        assert_eq!(q["code_challenge"], pkce.challenge.as_str());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "a b");
        assert_eq!(q["resource"], "https://mcp/x");
        assert_eq!(q["redirect_uri"], "https://app/cb");
        let unscoped = authorization_url(&server, "cid", "https://app/cb", &pkce, "st", None, "https://mcp/x").unwrap();
        assert!(!Url::parse(&unscoped).unwrap().query_pairs().any(|(k, _)| k == "scope"));
    }
}
