//! Token revocation (RFC 7009), written here because `oauth2` refuses every
//! revocation endpoint that is not https, even on loopback where our network
//! policy (`mcp_oauth.allow_http_loopback`) allows plain http as for every
//! other endpoint. The request goes through the policy-checked client like
//! all others.

use super::client::ClientCredentials;
use super::{ClientAuthMethod, OAuthError, TokenSet};
use crate::net::{display_host, HttpClient, HttpRequest};
use crate::secret::Secret;
use serde::Deserialize;
use url::Url;

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

/// Revokes `tokens` at `endpoint`: the refresh token first (which ends the
/// grant at most servers), then the access token.
pub async fn revoke(http: &HttpClient, endpoint: &str, client: &ClientCredentials<'_>, tokens: &TokenSet) -> Result<(), OAuthError> {
    let url = Url::parse(endpoint).map_err(|_| OAuthError::Unsupported("the revocation endpoint is not a URL".into()))?;
    if let Some(refresh_token) = &tokens.refresh_token {
        revoke_one(http, &url, client, refresh_token, "refresh_token").await?;
    }
    revoke_one(http, &url, client, &tokens.access_token, "access_token").await
}

async fn revoke_one(http: &HttpClient, url: &Url, client: &ClientCredentials<'_>, token: &Secret, hint: &str) -> Result<(), OAuthError> {
    let mut params = vec![("token", token.expose()), ("token_type_hint", hint)];
    let basic = client.basic_credential();
    match (client.method, client.secret()) {
        (ClientAuthMethod::ClientSecretPost, Some(secret)) => {
            params.extend([("client_id", client.client_id), ("client_secret", secret.expose())]);
        }
        (ClientAuthMethod::ClientSecretBasic, Some(_)) => {}
        _ => params.push(("client_id", client.client_id)),
    }
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish().into_bytes();
    let mut request = HttpRequest::post(url.clone(), "application/x-www-form-urlencoded", body).accept("application/json");
    if let Some(credential) = &basic {
        request = request.header(reqwest::header::AUTHORIZATION, &format!("Basic {credential}"), true);
    }
    let response = http.send(request).await?;
    // RFC 7009 §2.2: 200 whether or not the token was still valid.
    if response.status == 200 {
        return Ok(());
    }
    let error = serde_json::from_slice::<ErrorResponse>(&response.body).ok();
    let (code, description) = error.map(|e| (e.error, e.error_description)).unwrap_or_default();
    let mut sent = client.echoable();
    sent.push(token.expose().to_owned());
    Err(OAuthError::rejected_or_invalid(&display_host(url), response.status, code, description).redacted(sent.iter().map(String::as_str)))
}
