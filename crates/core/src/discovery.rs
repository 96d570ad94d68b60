//! Finding a server's authorization server: protected resource metadata
//! (RFC 9728), authorization server metadata (RFC 8414 / OpenID Connect
//! Discovery), and the 2025-03-26 fallback for servers without either.

use crate::net::{display_host, HttpClient, HttpRequest, HttpResponse, NetError};
use crate::www_authenticate::BearerChallenge;
use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Net(#[from] NetError),
    /// Metadata missing, malformed or not matching what it must match.
    #[error("{0}")]
    Invalid(String),
}

/// What the client needs of an authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServer {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// RFC 7009, where a disconnect revokes the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9449 §5.1: the proof algorithms the server takes; tokens are
    /// bound to a DPoP key when it lists ES256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// False for the 2025-03-26 default endpoints (no metadata document).
    #[serde(default = "yes")]
    pub from_metadata: bool,
}

#[cfg(test)]
impl AuthServer {
    /// An authorization server at `issuer` with its endpoints under it and
    /// nothing optional, for tests.
    pub(crate) fn at(issuer: &str) -> Self {
        Self {
            issuer: issuer.into(),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint: format!("{issuer}/token"),
            registration_endpoint: None,
            revocation_endpoint: None,
            scopes_supported: None,
            token_endpoint_auth_methods_supported: None,
            dpop_signing_alg_values_supported: None,
            client_id_metadata_document_supported: false,
            authorization_response_iss_parameter_supported: false,
            from_metadata: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// The outcome of discovery for one MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The `resource` parameter (RFC 8707): the protected resource
    /// metadata's `resource`, verbatim, or the server URL without it.
    pub resource: String,
    pub resource_metadata_url: Option<String>,
    /// `scope` of the server's 401 challenge.
    pub challenge_scope: Option<String>,
    /// `scopes_supported` of the protected resource metadata.
    pub resource_scopes: Option<Vec<String>>,
    pub auth_server: AuthServer,
    /// The resource takes DPoP-bound tokens (RFC 9449 §7.1: its challenge
    /// uses the DPoP scheme; RFC 9728 §2: its metadata lists proof
    /// algorithms or requires bound tokens). See `oauth::dpop::binds`.
    pub resource_dpop: bool,
}

#[derive(Deserialize)]
struct ResourceMetadataDoc {
    resource: Option<serde_json::Value>,
    authorization_servers: Option<Vec<serde_json::Value>>,
    scopes_supported: Option<Vec<serde_json::Value>>,
    dpop_signing_alg_values_supported: Option<Vec<serde_json::Value>>,
    dpop_bound_access_tokens_required: Option<bool>,
}

#[derive(Deserialize)]
struct AuthServerDoc {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    registration_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    scopes_supported: Option<Vec<String>>,
    response_types_supported: Option<Vec<String>>,
    code_challenge_methods_supported: Option<Vec<String>>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    dpop_signing_alg_values_supported: Option<Vec<String>>,
    client_id_metadata_document_supported: Option<bool>,
    authorization_response_iss_parameter_supported: Option<bool>,
}

/// Where RFC 9728 metadata for `server_url` may be: the path-specific
/// well-known URL first, then the root one.
pub fn resource_metadata_candidates(server_url: &Url) -> Vec<Url> {
    let origin = origin_of(server_url);
    let path = server_url.path().trim_end_matches('/');
    let mut out = Vec::new();
    if !path.is_empty() {
        if let Ok(u) = Url::parse(&format!("{origin}/.well-known/oauth-protected-resource{path}")) {
            out.push(u);
        }
    }
    if let Ok(u) = Url::parse(&format!("{origin}/.well-known/oauth-protected-resource")) {
        out.push(u);
    }
    out
}

/// Where RFC 8414 / OIDC metadata for `issuer` may be, in the order the MCP
/// specification (2025-11-25) gives.
pub fn auth_server_metadata_candidates(issuer: &Url) -> Vec<Url> {
    let origin = origin_of(issuer);
    let path = issuer.path().trim_end_matches('/');
    let urls = if path.is_empty() {
        vec![format!("{origin}/.well-known/oauth-authorization-server"), format!("{origin}/.well-known/openid-configuration")]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    };
    urls.iter().filter_map(|u| Url::parse(u).ok()).collect()
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn invalid(message: impl Into<String>) -> DiscoveryError {
    DiscoveryError::Invalid(message.into())
}

fn parse_json<T: for<'de> Deserialize<'de>>(response: &HttpResponse) -> Option<T> {
    serde_json::from_slice(&response.body).ok()
}

/// Same resource identifier: compared as URLs (scheme and host case, default
/// port), otherwise character for character.
fn same_resource(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

async fn fetch_resource_metadata(
    http: &HttpClient,
    server_url: &Url,
    challenge: Option<&BearerChallenge>,
) -> Result<Option<(Url, ResourceMetadataDoc, bool)>, DiscoveryError> {
    // (url, must the resource equal the server URL rather than its origin)
    let candidates: Vec<(Url, bool)> = match challenge.and_then(|c| c.resource_metadata.as_deref()) {
        Some(raw) => {
            let url = Url::parse(raw).map_err(|_| invalid("the server's resource_metadata is not an absolute URL"))?;
            vec![(url, true)]
        }
        None => {
            let list = resource_metadata_candidates(server_url);
            let last = list.len().saturating_sub(1);
            list.into_iter().enumerate().map(|(i, u)| (u, i != last)).collect()
        }
    };
    let from_challenge = challenge.is_some_and(|c| c.resource_metadata.is_some());
    for (url, exact) in candidates {
        let response = http.send(HttpRequest::get(url.clone()).accept("application/json")).await?;
        if response.status != 200 {
            if from_challenge {
                return Err(invalid(format!(
                    "the protected resource metadata at {} answered HTTP {}",
                    display_host(&url),
                    response.status
                )));
            }
            continue;
        }
        let Some(doc) = parse_json::<ResourceMetadataDoc>(&response) else {
            return Err(invalid(format!("the protected resource metadata at {} is not a JSON object", display_host(&url))));
        };
        return Ok(Some((url, doc, exact)));
    }
    Ok(None)
}

/// Authorization server metadata from a response body, checked against the
/// issuer it was fetched for (RFC 8414 §3.3).
pub fn auth_server_from_json(body: &[u8], issuer: &str) -> Result<AuthServer, DiscoveryError> {
    let doc: AuthServerDoc =
        serde_json::from_slice(body).map_err(|_| invalid("the authorization server metadata is not valid JSON metadata"))?;
    validate_auth_server(doc, issuer, IssuerRule::Identical)
}

async fn fetch_auth_server(http: &HttpClient, issuer: &str) -> Result<AuthServer, DiscoveryError> {
    let issuer_url = Url::parse(issuer).map_err(|_| invalid("the authorization server is not an absolute URL"))?;
    if !matches!(issuer_url.scheme(), "https" | "http") || issuer_url.host_str().is_none() {
        return Err(invalid("the authorization server identifier is not an http(s) URL"));
    }
    if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
        return Err(invalid("the authorization server identifier has a query or fragment"));
    }
    for url in auth_server_metadata_candidates(&issuer_url) {
        let response = http.send(HttpRequest::get(url.clone()).accept("application/json")).await?;
        if response.status != 200 {
            continue;
        }
        let doc = parse_json::<AuthServerDoc>(&response)
            .ok_or_else(|| invalid(format!("the authorization server metadata at {} is not valid JSON metadata", display_host(&url))))?;
        return validate_auth_server(doc, issuer, IssuerRule::Identical);
    }
    Err(invalid(format!("no authorization server metadata found for {}", display_host(&issuer_url))))
}

/// How the metadata's `issuer` must relate to the URL it was fetched for.
#[derive(Clone, Copy)]
enum IssuerRule {
    /// RFC 8414 §3.3: identical to the issuer the well-known URL was built from.
    Identical,
    /// 2025-03-26 fallback: no issuer was given, the metadata came from the
    /// MCP server's origin; accept an issuer on that same origin (the same
    /// party controls both), never another origin.
    SameOrigin,
}

/// RFC 8414 §3.3 wants the issuer identical to the one the metadata was
/// fetched for; they are compared as URLs (RFC 3986 §6.2.3 scheme-based
/// normalization: `https://as.example` and `https://as.example/` are one
/// issuer). Protected-resource metadata written by the Python SDK names its
/// authorization server with the slash that pydantic adds, while the
/// server's own metadata has none.
fn same_issuer(issuer: &str, expected: &str) -> bool {
    issuer == expected
        || match (Url::parse(issuer), Url::parse(expected)) {
            (Ok(a), Ok(b)) => a == b && a.query().is_none() && a.fragment().is_none(),
            _ => false,
        }
}

fn validate_auth_server(doc: AuthServerDoc, expected_issuer: &str, rule: IssuerRule) -> Result<AuthServer, DiscoveryError> {
    let issuer = doc.issuer.ok_or_else(|| invalid("the authorization server metadata has no issuer"))?;
    let matches = match rule {
        IssuerRule::Identical => same_issuer(&issuer, expected_issuer),
        IssuerRule::SameOrigin => match (Url::parse(&issuer), Url::parse(expected_issuer)) {
            (Ok(a), Ok(b)) => a.origin() == b.origin() && a.query().is_none() && a.fragment().is_none(),
            _ => false,
        },
    };
    if !matches {
        return Err(invalid(format!(
            "the authorization server metadata names issuer {issuer:?}, but it was fetched for {expected_issuer:?}"
        )));
    }
    let endpoint = |value: Option<String>, name: &str| -> Result<String, DiscoveryError> {
        let value = value.ok_or_else(|| invalid(format!("the authorization server metadata has no {name}")))?;
        let url = Url::parse(&value).map_err(|_| invalid(format!("the {name} is not an absolute URL")))?;
        if !matches!(url.scheme(), "https" | "http") || url.fragment().is_some() {
            return Err(invalid(format!("the {name} must be an http(s) URL without a fragment")));
        }
        Ok(value)
    };
    let authorization_endpoint = endpoint(doc.authorization_endpoint, "authorization_endpoint")?;
    let token_endpoint = endpoint(doc.token_endpoint, "token_endpoint")?;
    let registration_endpoint = doc.registration_endpoint.map(|r| endpoint(Some(r), "registration_endpoint")).transpose()?;
    // Only a disconnect uses it: one that is not usable means no revocation,
    // not a failed sign-in.
    let revocation_endpoint = doc.revocation_endpoint.and_then(|r| endpoint(Some(r), "revocation_endpoint").ok());
    // OAuth 2.1 and MCP: PKCE with S256 is required; a server that does not
    // say it supports S256 may silently ignore the challenge.
    let s256 = doc.code_challenge_methods_supported.as_ref().is_some_and(|m| m.iter().any(|m| m == "S256"));
    if !s256 {
        return Err(invalid("the authorization server does not advertise PKCE with S256 (code_challenge_methods_supported)"));
    }
    if doc.response_types_supported.as_ref().is_some_and(|r| !r.iter().any(|t| t == "code")) {
        return Err(invalid("the authorization server does not support response_type code"));
    }
    Ok(AuthServer {
        issuer,
        authorization_endpoint,
        token_endpoint,
        registration_endpoint,
        revocation_endpoint,
        scopes_supported: doc.scopes_supported,
        token_endpoint_auth_methods_supported: doc.token_endpoint_auth_methods_supported,
        dpop_signing_alg_values_supported: doc.dpop_signing_alg_values_supported,
        client_id_metadata_document_supported: doc.client_id_metadata_document_supported.unwrap_or(false),
        authorization_response_iss_parameter_supported: doc.authorization_response_iss_parameter_supported.unwrap_or(false),
        from_metadata: true,
    })
}

/// 2025-03-26: the authorization server is the MCP server's origin; its
/// metadata is at the origin's well-known URL, else default endpoints.
async fn legacy_auth_server(http: &HttpClient, server_url: &Url) -> Result<AuthServer, DiscoveryError> {
    let origin = origin_of(server_url);
    let url = Url::parse(&format!("{origin}/.well-known/oauth-authorization-server")).map_err(|_| invalid("bad origin"))?;
    let response = http.send(HttpRequest::get(url.clone()).accept("application/json")).await?;
    if response.status == 200 {
        let doc = parse_json::<AuthServerDoc>(&response)
            .ok_or_else(|| invalid(format!("the authorization server metadata at {} is not valid JSON metadata", display_host(&url))))?;
        return validate_auth_server(doc, &origin, IssuerRule::SameOrigin);
    }
    Ok(AuthServer {
        issuer: origin.clone(),
        authorization_endpoint: format!("{origin}/authorize"),
        token_endpoint: format!("{origin}/token"),
        registration_endpoint: Some(format!("{origin}/register")),
        revocation_endpoint: None,
        scopes_supported: None,
        token_endpoint_auth_methods_supported: None,
        dpop_signing_alg_values_supported: None,
        client_id_metadata_document_supported: false,
        authorization_response_iss_parameter_supported: false,
        from_metadata: false,
    })
}

/// Runs discovery for `server_url` from the Bearer challenge the server
/// answered an unauthenticated request with (`mcp::probe`), if any.
pub async fn discover(http: &HttpClient, server_url: &Url, challenge: Option<BearerChallenge>) -> Result<Discovered, DiscoveryError> {
    let Some((metadata_url, doc, exact)) = fetch_resource_metadata(http, server_url, challenge.as_ref()).await? else {
        let auth_server = legacy_auth_server(http, server_url).await?;
        return Ok(Discovered {
            resource: server_url.to_string(),
            resource_metadata_url: None,
            resource_dpop: challenge.as_ref().is_some_and(|c| c.dpop),
            challenge_scope: challenge.and_then(|c| c.scope),
            resource_scopes: None,
            auth_server,
        });
    };
    let resource = match doc.resource {
        Some(serde_json::Value::String(r)) if !r.is_empty() => r,
        _ => return Err(invalid("the protected resource metadata has no resource")),
    };
    // RFC 9728 §3.3: the resource must be the identifier the metadata URL was
    // derived from — the server URL, or its origin for the root location.
    let origin = origin_of(server_url);
    let resource_ok = same_resource(&resource, server_url.as_str()) || (!exact && (resource == origin || resource == format!("{origin}/")));
    if !resource_ok {
        return Err(invalid(format!("the protected resource metadata is for {resource:?}, not for this server ({})", server_url.as_str())));
    }
    let servers: Vec<String> =
        doc.authorization_servers.unwrap_or_default().into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let issuer = servers.first().ok_or_else(|| invalid("the protected resource metadata lists no authorization_servers"))?;
    let auth_server = fetch_auth_server(http, issuer).await?;
    let resource_scopes = doc.scopes_supported.map(|s| s.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
    let resource_dpop = challenge.as_ref().is_some_and(|c| c.dpop)
        || doc.dpop_bound_access_tokens_required == Some(true)
        || doc.dpop_signing_alg_values_supported.is_some_and(|algs| !algs.is_empty());
    Ok(Discovered {
        resource,
        resource_metadata_url: Some(metadata_url.to_string()),
        resource_dpop,
        challenge_scope: challenge.and_then(|c| c.scope),
        resource_scopes,
        auth_server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_metadata_locations() {
        let u = Url::parse("https://mcp.example.com/api/mcp").unwrap();
        let c: Vec<String> = resource_metadata_candidates(&u).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            c,
            [
                "https://mcp.example.com/.well-known/oauth-protected-resource/api/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ]
        );
        let root = Url::parse("https://mcp.example.com/").unwrap();
        assert_eq!(resource_metadata_candidates(&root).len(), 1);
    }

    #[test]
    fn auth_server_metadata_locations() {
        let with_path = Url::parse("https://auth.example.com/tenant1").unwrap();
        let c: Vec<String> = auth_server_metadata_candidates(&with_path).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            c,
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
        let bare = Url::parse("https://auth.example.com").unwrap();
        let c: Vec<String> = auth_server_metadata_candidates(&bare).iter().map(|u| u.to_string()).collect();
        assert_eq!(
            c,
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ]
        );
    }

    fn doc(issuer: &str, methods: Option<Vec<&str>>) -> AuthServerDoc {
        AuthServerDoc {
            issuer: Some(issuer.into()),
            authorization_endpoint: Some("https://as.example/authorize".into()),
            token_endpoint: Some("https://as.example/token".into()),
            registration_endpoint: None,
            revocation_endpoint: None,
            scopes_supported: None,
            response_types_supported: Some(vec!["code".into()]),
            code_challenge_methods_supported: methods.map(|m| m.into_iter().map(String::from).collect()),
            token_endpoint_auth_methods_supported: None,
            dpop_signing_alg_values_supported: None,
            client_id_metadata_document_supported: None,
            authorization_response_iss_parameter_supported: None,
        }
    }

    #[test]
    fn auth_server_metadata_is_checked() {
        assert!(validate_auth_server(doc("https://as.example", Some(vec!["S256"])), "https://as.example", IssuerRule::Identical).is_ok());
        let wrong = validate_auth_server(doc("https://evil.example", Some(vec!["S256"])), "https://as.example", IssuerRule::Identical);
        assert!(matches!(wrong, Err(DiscoveryError::Invalid(m)) if m.contains("issuer")));
        let plain = validate_auth_server(doc("https://as.example", Some(vec!["plain"])), "https://as.example", IssuerRule::Identical);
        assert!(matches!(plain, Err(DiscoveryError::Invalid(m)) if m.contains("S256")));
        let none = validate_auth_server(doc("https://as.example", None), "https://as.example", IssuerRule::Identical);
        assert!(matches!(none, Err(DiscoveryError::Invalid(m)) if m.contains("S256")));
        let mut bad = doc("https://as.example", Some(vec!["S256"]));
        bad.token_endpoint = Some("javascript:alert(1)".into());
        assert!(validate_auth_server(bad, "https://as.example", IssuerRule::Identical).is_err());
        // Compared as URLs: the slash that the Python SDK's metadata adds to a
        // bare origin names the same issuer; any other difference does not.
        assert!(validate_auth_server(doc("https://as.example", Some(vec!["S256"])), "https://as.example/", IssuerRule::Identical).is_ok());
        for other in ["https://as.example/tenant/", "http://as.example/", "https://as.example.evil/", "https://as.example/?x"] {
            let wrong = validate_auth_server(doc("https://as.example/tenant", Some(vec!["S256"])), other, IssuerRule::Identical);
            assert!(wrong.is_err(), "{other}");
        }
        // The 2025-03-26 fallback takes a same-origin issuer, never another origin.
        let path = doc("https://as.example/oauth", Some(vec!["S256"]));
        assert!(validate_auth_server(path, "https://as.example", IssuerRule::SameOrigin).is_ok());
        let path = doc("https://as.example/oauth", Some(vec!["S256"]));
        assert!(validate_auth_server(path, "https://as.example", IssuerRule::Identical).is_err());
        let other = doc("https://evil.example", Some(vec!["S256"]));
        assert!(validate_auth_server(other, "https://as.example", IssuerRule::SameOrigin).is_err());
    }

    #[test]
    fn resources_compare_as_urls() {
        assert!(same_resource("https://MCP.example.com:443/mcp", "https://mcp.example.com/mcp"));
        assert!(!same_resource("https://mcp.example.com/mcp/", "https://mcp.example.com/mcp"));
        assert!(!same_resource("https://evil.example/mcp", "https://mcp.example.com/mcp"));
    }
}
