//! Dynamic client registration (RFC 7591). Written here because `oauth2`
//! has no registration client.

use super::{ClientAuthMethod, ClientProfile, ClientRegistration, ClientSource, OAuthError};
use crate::discovery::AuthServer;
use crate::net::{display_host, HttpClient, HttpRequest};
use crate::secret::Secret;
use serde::Deserialize;
use url::Url;

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: Option<String>,
    client_secret: Option<String>,
    token_endpoint_auth_method: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

/// Registers this client at `auth_server`. Returns the registration and the
/// client secret, if one was issued.
pub async fn register(
    http: &HttpClient,
    auth_server: &AuthServer,
    profile: &ClientProfile,
) -> Result<(ClientRegistration, Option<Secret>), OAuthError> {
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
        let error = serde_json::from_slice::<ErrorResponse>(&response.body).ok();
        let (code, description) = error.map(|e| (e.error, e.error_description)).unwrap_or_default();
        return Err(OAuthError::rejected_or_invalid(&host, response.status, code, description));
    }
    let invalid = |why: String| OAuthError::InvalidResponse { host: host.clone(), why };
    let parsed: RegistrationResponse =
        serde_json::from_slice(&response.body).map_err(|_| invalid("the registration response is not JSON".into()))?;
    let client_id = parsed
        .client_id
        .filter(|id| !id.is_empty() && id.len() <= 1024)
        .ok_or_else(|| invalid("the registration response has no client_id".into()))?;
    let secret = parsed.client_secret.filter(|s| !s.is_empty()).map(Secret::from);
    if secret.as_ref().is_some_and(|s| s.expose().chars().count() < crate::text::MIN_SECRET_LEN) {
        return Err(invalid(format!("the registration issued a client_secret shorter than {} characters", crate::text::MIN_SECRET_LEN)));
    }
    let auth_method = match parsed.token_endpoint_auth_method.as_deref() {
        Some(m) => ClientAuthMethod::parse(m).ok_or_else(|| {
            invalid(format!("the registration uses token_endpoint_auth_method {m:?}, which this client does not support"))
        })?,
        None => requested,
    };
    if auth_method != ClientAuthMethod::None && secret.is_none() {
        return Err(invalid(format!("the registration requires {} but issued no client_secret", auth_method.as_str())));
    }
    let registration =
        ClientRegistration { client_id, source: ClientSource::Dynamic, issuer: Some(auth_server.issuer.clone()), auth_method, key: None };
    Ok((registration, if auth_method == ClientAuthMethod::None { None } else { secret }))
}
