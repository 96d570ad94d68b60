//! The sign-in as the row sees it: what is stored in `oauth_metadata`
//! (public) between calls, and the start of a flow — discovery, the choice
//! of client (pre-registered > Client ID Metadata Document > dynamic
//! registration, bound to its issuer), scope, PKCE and the authorization URL.

use crate::change::Change;
use crate::discovery::{self, AuthServer, Discovered, DiscoveryError};
use crate::mcp;
use crate::net::HttpClient;
use crate::oauth::{self, ClientAuthMethod, ClientProfile, ClientRegistration, ClientSource, OAuthError, Pkce, TokenSet};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use url::Url;

/// Steps up honoured per row before a call stops asking for more scope.
pub const MAX_STEP_UPS: u32 = 3;

/// The public OAuth state of a row (`oauth_metadata`). Secrets (tokens,
/// verifier, client secret) live in their own columns, sealed.
///
/// A sign-in in progress keeps everything its discovery found in `flow`,
/// apart from what the stored tokens were issued under (`issuer`,
/// `resource`; the full [`Grant`] is sealed with the tokens): an abandoned
/// sign-in never changes where the stored tokens are used or refreshed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthRecord {
    /// The resource the stored tokens were issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The issuer of the stored tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// 0.1.0 rows: the latest discovery, kept at the top level. Read only
    /// to refresh tokens stored before grants were sealed with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<AuthServer>,
    /// The client registration to reuse, bound to its issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientRegistration>,
    /// Scope a server asked for with 403 insufficient_scope (step-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up_scope: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub step_up_attempts: u32,
    /// The sign-in in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// A workload identity row: the fingerprint of the workload token the
    /// authorization server refused last (not tried again until the token
    /// file holds another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_workload_token: Option<String>,
}

/// Keys of `oauth_metadata` that only 0.1.0 wrote and a sign-in replaces.
pub const LEGACY_KEYS: &[&str] = &["authorization_server", "resource_metadata_url", "scope"];

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A sign-in in progress and what its discovery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Hex flow id; the state token carries the same.
    pub id: String,
    pub started_at: i64,
    pub redirect_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// 0.1.0 flows have none: their discovery is at the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_metadata_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<AuthServer>,
    /// The client the authorization request was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientRegistration>,
    /// The tokens are to be bound to a DPoP key (both the resource and its
    /// authorization server take proofs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop: bool,
}

impl Flow {
    /// The flow's authorization server, resource and client, falling back
    /// to a 0.1.0 row's top-level discovery.
    pub fn discovery<'a>(&'a self, record: &'a OAuthRecord) -> Option<(&'a AuthServer, &'a str, &'a ClientRegistration)> {
        match (&self.authorization_server, &self.resource, &self.client) {
            (Some(server), Some(resource), Some(client)) => Some((server, resource, client)),
            (None, None, None) => Some((record.authorization_server.as_ref()?, record.resource.as_deref()?, record.client.as_ref()?)),
            _ => None,
        }
    }
}

/// Where stored tokens came from, sealed with them: the issuer, its token
/// (and revocation) endpoint, the client and its secret, the resource. A
/// refresh uses exactly this, whatever a later discovery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub issuer: String,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    pub client_id: String,
    pub auth_method: ClientAuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// A `private_key_jwt` client's algorithm and key id (the key is the
    /// `client_secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<oauth::KeySpec>,
    pub resource: String,
}

impl Grant {
    /// The grant of a completed sign-in.
    pub fn new(server: &AuthServer, client: &ClientRegistration, client_secret: Option<&Secret>, resource: &str) -> Self {
        Self {
            issuer: server.issuer.clone(),
            token_endpoint: server.token_endpoint.clone(),
            revocation_endpoint: server.revocation_endpoint.clone(),
            client_id: client.client_id.clone(),
            auth_method: client.auth_method,
            client_secret: client_secret.cloned(),
            key: client.key.clone(),
            resource: resource.to_owned(),
        }
    }

    /// How this grant's client authenticates at its token endpoint.
    pub fn client(&self) -> oauth::ClientCredentials<'_> {
        oauth::ClientCredentials {
            client_id: &self.client_id,
            secret: self.client_secret.as_ref(),
            method: self.auth_method,
            key: self.key.as_ref(),
        }
    }

    /// For tokens stored by 0.1.0 (no grant sealed with them): the row's
    /// top-level discovery and client, if they still belong to the issuer
    /// of the tokens.
    pub fn legacy(record: &OAuthRecord, client_secret: Option<&Secret>, tokens: &TokenSet) -> Option<Self> {
        let server = record.authorization_server.as_ref()?;
        let client = record.client.as_ref()?;
        // A client without an issuer: 0.1.0's dynamic registrations kept
        // none (the row's discovery, checked here too, says where they were
        // made); one set with mcp_oauth_set_client belongs to no known
        // authorization server, and tokens are never refreshed with a guess.
        let client_of_issuer = match client.issuer.as_deref() {
            Some(issuer) => issuer == tokens.issuer,
            None => client.source == ClientSource::Dynamic,
        };
        let same_issuer = server.issuer == tokens.issuer && record.issuer.as_deref() == Some(tokens.issuer.as_str()) && client_of_issuer;
        let resource = record.resource.as_deref()?;
        same_issuer.then(|| Self::new(server, client, client_secret, resource))
    }
}

/// What `oauth_tokens` holds, sealed: the tokens and their grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(flatten)]
    pub tokens: TokenSet,
    /// None for tokens stored by 0.1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
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
    pub verifier: Secret,
    /// What becomes of the stored client secret: a new client brings its
    /// own (or none), a reused one keeps it.
    pub client_secret: Change<Secret>,
    /// What discovery found (or was given), for reuse.
    pub discovered: Discovered,
}

/// Discovery for a sign-in: an unauthenticated probe for the server's
/// Bearer challenge, then the metadata it points to.
pub async fn discover(http: &HttpClient, server_url: &Url) -> Result<Discovered, DiscoveryError> {
    let challenge = mcp::probe(http, server_url).await?;
    discovery::discover(http, server_url, challenge).await
}

/// The client a sign-in uses.
#[derive(Debug, PartialEq, Eq)]
enum ClientChoice {
    /// This one, and what becomes of the stored client secret.
    Use(ClientRegistration, Change<Secret>),
    /// A new dynamic registration (RFC 7591).
    Register,
}

/// Which client a sign-in at `server` uses, in this order: a pre-registered
/// one (bound to the first issuer it is used with, refused for another),
/// the Client ID Metadata Document when the server supports it and one is
/// configured, the dynamic registration kept for this same issuer, else a
/// new registration. Credentials are bound to their issuer: never reused
/// for another.
fn choose_client(
    kept: Option<ClientRegistration>,
    server: &AuthServer,
    client_metadata_url: Option<&str>,
) -> Result<ClientChoice, SignInError> {
    let issuer = &server.issuer;
    Ok(match kept {
        Some(mut pre) if pre.source == ClientSource::Preregistered => {
            match &pre.issuer {
                Some(registered) if registered != issuer => {
                    return Err(SignInError::ForeignClient { registered: registered.clone(), discovered: issuer.clone() });
                }
                _ => pre.issuer = Some(issuer.clone()),
            }
            // A client with a secret authenticates the way this server prefers.
            if matches!(pre.auth_method, ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost) {
                pre.auth_method = ClientAuthMethod::for_secret(server.token_endpoint_auth_methods_supported.as_deref());
            }
            ClientChoice::Use(pre, Change::Keep)
        }
        _ if server.client_id_metadata_document_supported && client_metadata_url.is_some() => ClientChoice::Use(
            ClientRegistration {
                client_id: client_metadata_url.unwrap_or_default().to_owned(),
                source: ClientSource::MetadataDocument,
                issuer: Some(issuer.clone()),
                auth_method: ClientAuthMethod::None,
                key: None,
            },
            Change::Clear,
        ),
        Some(dynamic) if dynamic.source == ClientSource::Dynamic && dynamic.issuer.as_deref() == Some(issuer.as_str()) => {
            ClientChoice::Use(dynamic, Change::Keep)
        }
        _ => ClientChoice::Register,
    })
}

/// Starts a sign-in: discovery (unless `known`, a recent discovery of the
/// same server), client, scope, PKCE, authorization URL.
pub async fn start(
    http: &HttpClient,
    mut record: OAuthRecord,
    request: StartRequest<'_>,
    known: Option<Discovered>,
) -> Result<Started, SignInError> {
    let found = match known {
        Some(found) => found,
        None => discover(http, request.server_url).await?,
    };
    let discovered = found.clone();

    let (client, client_secret) = match choose_client(record.client.take(), &found.auth_server, request.client_metadata_url)? {
        ClientChoice::Use(client, secret) => (client, secret),
        ClientChoice::Register => {
            let (registration, secret) = oauth::register(http, &found.auth_server, &request.profile).await?;
            (registration, Change::to(secret))
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
        &pkce,
        request.state,
        scope.as_deref(),
        &found.resource,
    )?;
    // The reusable registration is kept at the top level; everything else
    // this discovery found stays with the flow until it is finished.
    record.client = Some(client.clone());
    record.flow = Some(Flow {
        id: request.flow_id.to_owned(),
        started_at: request.now,
        redirect_uri: request.profile.redirect_uri.clone(),
        scope,
        dpop: oauth::dpop::binds(&found),
        resource: Some(found.resource),
        resource_metadata_url: found.resource_metadata_url,
        authorization_server: Some(found.auth_server),
        client: Some(client),
    });
    Ok(Started { authorize_url, record, verifier: pkce.verifier, client_secret, discovered })
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

    #[test]
    fn step_up_attempts_are_kept_only_when_there_are_some() {
        let none = OAuthRecord { step_up_attempts: 0, ..Default::default() };
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
        let two = OAuthRecord { step_up_attempts: 2, ..Default::default() };
        assert_eq!(serde_json::to_string(&two).unwrap(), r#"{"step_up_attempts":2}"#);
    }

    fn registration(source: ClientSource, issuer: Option<&str>, auth_method: ClientAuthMethod) -> ClientRegistration {
        ClientRegistration { client_id: format!("{source:?}"), source, issuer: issuer.map(str::to_owned), auth_method, key: None }
    }

    #[test]
    fn the_client_of_a_sign_in_is_chosen_in_order_and_bound_to_its_issuer() {
        let mut server = AuthServer::at("https://as1");
        server.token_endpoint_auth_methods_supported = Some(vec!["client_secret_post".into()]);
        let cimd = "https://app.example/client.json";
        let pre = |issuer| registration(ClientSource::Preregistered, issuer, ClientAuthMethod::ClientSecretBasic);
        let dynamic = |issuer| registration(ClientSource::Dynamic, Some(issuer), ClientAuthMethod::None);
        // A pre-registered client comes first, bound to the first issuer and
        // authenticating as that server prefers...
        let bound = ClientRegistration { issuer: Some("https://as1".into()), auth_method: ClientAuthMethod::ClientSecretPost, ..pre(None) };
        for kept in [pre(None), pre(Some("https://as1"))] {
            assert_eq!(choose_client(Some(kept), &server, Some(cimd)).unwrap(), ClientChoice::Use(bound.clone(), Change::Keep));
        }
        let public = registration(ClientSource::Preregistered, None, ClientAuthMethod::None);
        let chosen = choose_client(Some(public), &server, None).unwrap();
        assert!(matches!(chosen, ClientChoice::Use(c, Change::Keep) if c.auth_method == ClientAuthMethod::None));
        // ...and refused for another one.
        assert!(matches!(
            choose_client(Some(pre(Some("https://as2"))), &server, None),
            Err(SignInError::ForeignClient { registered, discovered }) if registered == "https://as2" && discovered == "https://as1"
        ));
        // The metadata document, where the server supports it and one is set
        // (before a kept registration, whose secret is then forgotten).
        let mut cimd_server = server.clone();
        cimd_server.client_id_metadata_document_supported = true;
        let document = ClientRegistration {
            client_id: cimd.into(),
            source: ClientSource::MetadataDocument,
            issuer: Some("https://as1".into()),
            auth_method: ClientAuthMethod::None,
            key: None,
        };
        for kept in [None, Some(dynamic("https://as1"))] {
            assert_eq!(choose_client(kept, &cimd_server, Some(cimd)).unwrap(), ClientChoice::Use(document.clone(), Change::Clear));
        }
        assert_eq!(choose_client(None, &cimd_server, None).unwrap(), ClientChoice::Register);
        assert_eq!(choose_client(None, &server, Some(cimd)).unwrap(), ClientChoice::Register);
        // A dynamic registration is reused for its own issuer only.
        assert_eq!(
            choose_client(Some(dynamic("https://as1")), &server, None).unwrap(),
            ClientChoice::Use(dynamic("https://as1"), Change::Keep)
        );
        assert_eq!(choose_client(Some(dynamic("https://as2")), &server, None).unwrap(), ClientChoice::Register);
        let unbound = registration(ClientSource::Dynamic, None, ClientAuthMethod::None);
        assert_eq!(choose_client(Some(unbound), &server, None).unwrap(), ClientChoice::Register);
        let document_elsewhere = ClientRegistration { issuer: Some("https://as1".into()), ..document.clone() };
        assert_eq!(choose_client(Some(document_elsewhere), &server, None).unwrap(), ClientChoice::Register);
    }

    #[test]
    fn a_flow_names_its_discovery_or_a_0_1_0_row_s() {
        let client = registration(ClientSource::Dynamic, Some("https://as1"), ClientAuthMethod::None);
        let record = OAuthRecord {
            resource: Some("https://mcp/old".into()),
            authorization_server: Some(AuthServer::at("https://old")),
            client: Some(client.clone()),
            ..Default::default()
        };
        let flow = |server: Option<AuthServer>, resource: Option<&str>, client: Option<ClientRegistration>| Flow {
            id: "f".into(),
            started_at: 0,
            redirect_uri: "https://app/cb".into(),
            scope: None,
            resource: resource.map(str::to_owned),
            resource_metadata_url: None,
            authorization_server: server,
            client,
            dpop: false,
        };
        let own = flow(Some(AuthServer::at("https://as1")), Some("https://mcp/new"), Some(client.clone()));
        let (server, resource, _) = own.discovery(&record).unwrap();
        assert_eq!((server.issuer.as_str(), resource), ("https://as1", "https://mcp/new"));
        let legacy = flow(None, None, None);
        let (server, resource, _) = legacy.discovery(&record).unwrap();
        assert_eq!((server.issuer.as_str(), resource), ("https://old", "https://mcp/old"));
        assert!(flow(Some(AuthServer::at("https://as1")), None, None).discovery(&record).is_none(), "half a discovery");
        assert!(legacy.discovery(&OAuthRecord::default()).is_none());
    }

    fn tokens(issuer: &str) -> TokenSet {
        TokenSet {
            access_token: Secret::new("at"),
            refresh_token: Some(Secret::new("rt")),
            expires_at: None,
            scope: None,
            issuer: issuer.into(),
            issued_at: None,
            dpop_key: None,
        }
    }

    #[test]
    fn credentials_of_0_1_0_read_and_keep_their_issuer() {
        // 0.1.0 sealed a bare token set.
        let old: Credentials = serde_json::from_str(r#"{"access_token":"at","issuer":"https://as1"}"#).unwrap();
        assert!(old.grant.is_none());
        let client = ClientRegistration {
            client_id: "c1".into(),
            source: ClientSource::Dynamic,
            issuer: Some("https://as1".into()),
            auth_method: ClientAuthMethod::None,
            key: None,
        };
        let mut record = OAuthRecord {
            resource: Some("https://mcp/x".into()),
            issuer: Some("https://as1".into()),
            authorization_server: Some(AuthServer::at("https://as1")),
            client: Some(client.clone()),
            ..Default::default()
        };
        let grant = Grant::legacy(&record, None, &tokens("https://as1")).unwrap();
        assert_eq!(grant.token_endpoint, "https://as1/token");
        // 0.1.0 kept no issuer with its dynamic registrations: the row's
        // discovery (checked above) says where it was made.
        record.client = Some(ClientRegistration { issuer: None, ..client.clone() });
        assert!(Grant::legacy(&record, None, &tokens("https://as1")).is_some());
        // A client set with mcp_oauth_set_client names no issuer: whether it
        // belongs to the tokens' authorization server is unknown, so the
        // tokens are not refreshed with it (a new sign-in), never a guess.
        let set = ClientRegistration { client_id: "c2".into(), source: ClientSource::Preregistered, issuer: None, ..client.clone() };
        record.client = Some(set);
        assert!(Grant::legacy(&record, Some(&Secret::new("new-client-secret")), &tokens("https://as1")).is_none());
        record.client = Some(client);
        // A 0.1.0 start that moved the row to another server: no refresh there.
        record.authorization_server = Some(AuthServer::at("https://as2"));
        assert!(Grant::legacy(&record, None, &tokens("https://as1")).is_none());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let grant = Grant {
            client_secret: Some(Secret::new("s3cr3t-value")),
            ..Grant::new(
                &AuthServer::at("https://as"),
                &ClientRegistration {
                    client_id: "c".into(),
                    source: ClientSource::Dynamic,
                    issuer: None,
                    auth_method: ClientAuthMethod::ClientSecretBasic,
                    key: None,
                },
                None,
                "https://mcp",
            )
        };
        let shown = format!("{:?}", Credentials { tokens: tokens("https://as"), grant: Some(grant) });
        assert!(!shown.contains("s3cr3t") && !shown.contains("\"at\""), "{shown}");
    }
}
