//! The sign-in as the row sees it: what is stored in `oauth_metadata`
//! (public) between calls, and the start of a flow — discovery, the choice
//! of client (pre-registered > Client ID Metadata Document > dynamic
//! registration, bound to its issuer), scope, PKCE and the authorization URL.

use crate::discovery::{self, AuthServer, DiscoveryError};
use crate::net::HttpClient;
use crate::oauth::{self, ClientAuthMethod, ClientProfile, ClientRegistration, ClientSource, OAuthError, Pkce};
use serde::{Deserialize, Serialize};
use url::Url;

/// Steps up honoured per row before a call stops asking for more scope.
pub const MAX_STEP_UPS: u32 = 3;

/// The public OAuth state of a row (`oauth_metadata`). Secrets (tokens,
/// verifier, client secret) live in their own columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_metadata_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<AuthServer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientRegistration>,
    /// The scope granted by the last sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Scope a server asked for with 403 insufficient_scope (step-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up_scope: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step_up_attempts: u32,
    /// The sign-in in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Hex flow id; the state token carries the same.
    pub id: String,
    pub started_at: i64,
    pub redirect_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// A pre-registered client belongs to another authorization server.
    #[error("the pre-registered client belongs to {registered}, but the server now uses {discovered}")]
    ForeignClient { registered: String, discovered: String },
}

/// What `start` needs besides the row.
pub struct StartRequest<'a> {
    pub server_url: &'a Url,
    pub profile: ClientProfile,
    pub client_metadata_url: Option<&'a str>,
    pub state: &'a str,
    pub flow_id: &'a str,
    pub now: i64,
}

/// What `start` produces: the URL for the user, and what to store.
pub struct Started {
    pub authorize_url: String,
    pub record: OAuthRecord,
    pub verifier: String,
    /// `Some(x)`: store `x` as the client secret (None clears it).
    pub client_secret: Option<Option<String>>,
}

/// Starts a sign-in: discovery, client, scope, PKCE, authorization URL.
pub async fn start(
    http: &HttpClient,
    mut record: OAuthRecord,
    request: StartRequest<'_>,
) -> Result<Started, SignInError> {
    let found = discovery::discover(http, request.server_url, None).await?;
    let issuer = found.auth_server.issuer.clone();
    let supported = found.auth_server.token_endpoint_auth_methods_supported.clone();

    let mut client_secret = None;
    let client = match record.client.take() {
        Some(mut pre) if pre.source == ClientSource::Preregistered => {
            match &pre.issuer {
                Some(registered) if *registered != issuer => {
                    return Err(SignInError::ForeignClient { registered: registered.clone(), discovered: issuer });
                }
                _ => pre.issuer = Some(issuer.clone()),
            }
            // A client with a secret authenticates the way this server prefers.
            if pre.auth_method != ClientAuthMethod::None {
                pre.auth_method = ClientAuthMethod::for_secret(supported.as_deref());
            }
            pre
        }
        _ if found.auth_server.client_id_metadata_document_supported && request.client_metadata_url.is_some() => {
            client_secret = Some(None);
            ClientRegistration {
                client_id: request.client_metadata_url.unwrap_or_default().to_owned(),
                source: ClientSource::MetadataDocument,
                issuer: Some(issuer.clone()),
                auth_method: ClientAuthMethod::None,
            }
        }
        // Credentials are bound to their issuer: reuse only for the same one.
        Some(dynamic) if dynamic.source == ClientSource::Dynamic && dynamic.issuer.as_deref() == Some(issuer.as_str()) => dynamic,
        _ => {
            let (registration, secret) = oauth::register(http, &found.auth_server, &request.profile).await?;
            client_secret = Some(secret);
            registration
        }
    };

    let scope = oauth::choose_scope(
        found.challenge_scope.as_deref(),
        found.resource_scopes.as_deref(),
        record.step_up_scope.as_deref(),
        found.auth_server.scopes_supported.as_deref(),
    );
    let pkce = Pkce::new();
    let authorize_url = oauth::authorization_url(
        &found.auth_server,
        &client.client_id,
        &request.profile.redirect_uri,
        &pkce.challenge,
        request.state,
        scope.as_deref(),
        &found.resource,
    )?;
    if record.issuer.as_deref() != Some(issuer.as_str()) {
        // A new authorization server: nothing granted by the old one applies.
        record.scope = None;
    }
    record.resource = Some(found.resource);
    record.resource_metadata_url = found.resource_metadata_url;
    record.issuer = Some(issuer);
    record.authorization_server = Some(found.auth_server);
    record.client = Some(client);
    record.flow = Some(Flow {
        id: request.flow_id.to_owned(),
        started_at: request.now,
        redirect_uri: request.profile.redirect_uri.clone(),
        scope,
    });
    Ok(Started { authorize_url, record, verifier: pkce.verifier, client_secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_stays_small() {
        let empty = OAuthRecord::default();
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
        let parsed: OAuthRecord = serde_json::from_str(r#"{"issuer":"https://as","unknown":1}"#).unwrap();
        assert_eq!(parsed.issuer.as_deref(), Some("https://as"));
    }
}
