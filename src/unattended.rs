//! Tokens of `client_credentials` and `workload_identity` rows: obtained on
//! first use and again shortly before they expire or after a 401, under the
//! same rules as a user's refresh (one backend at a time per row, the token
//! request sent only once a background worker holds the row, the new token
//! committed by that worker whatever the caller's transaction does).
//!
//! A refusal (bad client credentials, an expired or foreign workload token)
//! marks the row `reauth_required` and is not tried again until the owner
//! sets new credentials, or, for workload identity, until the token file
//! holds another token.

use crate::discoveries;
use crate::durable::{self, Reserved};
use crate::error::Error;
use crate::gucs;
use crate::runtime;
use crate::state::now;
use crate::store::{self, AuthType, Change, Condition, RowUpdate, ServerRow};
use mcp_oauth_core::discovery::Discovered;
use mcp_oauth_core::net::HttpClient;
use mcp_oauth_core::oauth::{ClientAuthMethod, ClientCredentials, ClientRegistration, ClientSource, OAuthError, TokenSet};
use mcp_oauth_core::secret::Secret;
use mcp_oauth_core::signin::{self, Credentials, Grant};
use mcp_oauth_core::unattended::{self, Proof};
use std::time::Duration;
use url::Url;

/// Attempts to reserve the row when it keeps changing.
const ATTEMPTS: usize = 3;

/// Metadata key of the fingerprint of the workload token last refused.
const REFUSED_TOKEN_KEY: &str = "refused_workload_token";

/// The row's access token: the stored one while it is fresh, else a new one.
pub fn access_token(http: &HttpClient, row: &mut ServerRow) -> Result<Secret, Error> {
    if let Some(credentials) = row.credentials.as_ref().filter(|c| !c.tokens.refresh_due(now()) && !row.reauth_required) {
        return Ok(credentials.tokens.access_token.clone());
    }
    let stale = row.credentials.as_ref().map(|c| c.tokens.access_token.clone());
    obtain(http, row, stale.as_ref())
}

/// Obtains a new token for the row, once for all backends: a backend that
/// waited its turn and finds a token other than `stale` (and fresh) uses it.
pub fn obtain(http: &HttpClient, row: &mut ServerRow, stale: Option<&Secret>) -> Result<Secret, Error> {
    let _turn = store::RefreshLock::acquire(row.id);
    for _ in 0..ATTEMPTS {
        let latest = store::load(row.id, &row.user_id)?;
        *row = latest;
        if !row.reauth_required {
            if let Some(c) = row.credentials.as_ref().filter(|c| Some(&c.tokens.access_token) != stale && !c.tokens.refresh_due(now())) {
                return Ok(c.tokens.access_token.clone());
            }
        }
        let workload_token = match row.auth_type {
            AuthType::WorkloadIdentity => Some(read_workload_token()?),
            _ => None,
        };
        if row.reauth_required {
            let retry = workload_token.as_ref().is_some_and(|t| refused_fingerprint(row).as_deref() != Some(&unattended::fingerprint(t)));
            if !retry {
                return Err(refused_before(row));
            }
        }
        let client = row.record.client.clone();
        let proof = match (&workload_token, &client) {
            (Some(token), client) => Proof::WorkloadToken { token, client: client.as_ref().map(|c| credentials_of(c, row)) },
            (None, Some(client)) if row.client_secret.is_some() => Proof::Client(credentials_of(client, row)),
            (None, _) => return Err(Error::NoClientCredentials(row.id)),
        };
        let found = discovery(http, row)?;
        if let Some(bound) = client.as_ref().and_then(|c| c.issuer.as_deref()).filter(|b| *b != found.auth_server.issuer) {
            discoveries::forget(&row.url);
            return Err(Error::SignIn(signin::SignInError::ForeignClient {
                registered: bound.to_owned(),
                discovered: found.auth_server.issuer.clone(),
            }));
        }
        crate::secrets::check_sealable()?;
        let reservation = match durable::reserve(row, Condition::Generation(row.generation), None)? {
            Reserved::Held(reservation) => reservation,
            Reserved::Refused => continue,
        };
        reservation.hold_for(http.config().request_timeout + runtime::CANCEL_GRACE + Duration::from_secs(5));
        let obtained = runtime::block_on_to_completion(unattended::obtain(http, &found, &proof, now()))?;
        // A discovery that served is kept; after a failure the next token
        // is looked for from a new one (the server may have moved).
        match &obtained {
            Ok(_) => discoveries::keep(&row.url, &found),
            Err(_) => discoveries::forget(&row.url),
        }
        return match obtained {
            Ok(tokens) => {
                // The client is bound to the first issuer it obtains a token
                // from (as a sign-in binds it): never presented to another.
                let (registration, extra) = match client {
                    Some(client) => {
                        let bound = ClientRegistration { issuer: Some(found.auth_server.issuer.clone()), ..client };
                        (bound.clone(), RowUpdate::default().set_metadata("client", &bound))
                    }
                    None => (anonymous_client(&found.auth_server.issuer), RowUpdate::default()),
                };
                let access_token = tokens.access_token.clone();
                store_tokens(reservation, row, &found, &registration, tokens, extra)?;
                crate::stats::record_refresh(row.id);
                if runtime::cancel_requested() {
                    return Err(Error::Cancelled);
                }
                pgrx::debug1!("mcp_oauth: obtained a token for server {} at {}", row.id, found.auth_server.issuer);
                Ok(access_token)
            }
            Err(OAuthError::Rejected { code, description, .. }) => {
                let why = refusal(row.auth_type, &code, description.as_deref());
                let mut update = RowUpdate::failure(&format!("reauth_required: {why}"), true);
                if let Some(token) = &workload_token {
                    update = update.set_metadata(REFUSED_TOKEN_KEY, unattended::fingerprint(token));
                }
                reservation.apply(&update)?;
                pgrx::log!("mcp_oauth: server {} of user {}: {why}", row.id, row.user_id);
                Err(Error::CredentialsRefused(why))
            }
            Err(e) => Err(e.into()),
        };
    }
    Err(Error::Internal("the server row kept changing while a token was obtained; try again".into()))
}

/// The row's server's discovery: this backend's recent one, or a new one.
fn discovery(http: &HttpClient, row: &ServerRow) -> Result<Discovered, Error> {
    if let Some(found) = discoveries::recent(&row.url) {
        return Ok(found);
    }
    let server_url = Url::parse(&row.url).map_err(|_| Error::InvalidArgument("the server URL is not valid".into()))?;
    Ok(runtime::block_on(signin::discover(http, &server_url))??)
}

/// Stores `tokens` with their grant through the worker holding the row,
/// clearing any mark and error, with `extra` written in the same update.
fn store_tokens(
    reservation: durable::Reservation,
    row: &mut ServerRow,
    found: &Discovered,
    client: &ClientRegistration,
    tokens: TokenSet,
    extra: RowUpdate,
) -> Result<(), Error> {
    let grant = Grant::new(&found.auth_server, client, row.client_secret.as_ref(), &found.resource);
    let credentials = Credentials { tokens, grant: Some(grant) };
    let update = RowUpdate {
        tokens: Change::Set(store::seal(row.id, &credentials)?),
        reauth_required: Some(false),
        last_error: Change::Clear,
        ..extra
    }
    .set_metadata("issuer", &found.auth_server.issuer)
    .set_metadata("resource", &found.resource)
    .remove_metadata(&[REFUSED_TOKEN_KEY, "step_up_attempts", "step_up_scope"]);
    row.generation = reservation.apply(&update)?;
    row.credentials = Some(credentials);
    row.reauth_required = false;
    Ok(())
}

/// Enterprise-managed authorization (mcp_oauth_enterprise_sign_in): the
/// user's ID token from the enterprise identity provider (used once, never
/// stored) is exchanged there for an identity assertion grant, which the
/// row's client redeems at the server's authorization server. The tokens
/// are stored as a sign-in's are; when they cannot be refreshed, the
/// application signs in again with a new ID token.
pub fn enterprise_sign_in(server_id: uuid::Uuid, id_token: &str) -> Result<uuid::Uuid, Error> {
    let user_id = crate::identity::current_user_id()?;
    if durable::on_standby() {
        return Err(Error::ReadOnly);
    }
    let id_token = unattended::compact_jwt(id_token).map_err(|why| Error::InvalidArgument(format!("id_token is not usable: {why}")))?;
    let idp_endpoint = gucs::string(&gucs::IDP_TOKEN_ENDPOINT).ok_or(Error::SettingMissing {
        setting: "mcp_oauth.idp_token_endpoint",
        hint: "A superuser must set mcp_oauth.idp_token_endpoint (and mcp_oauth.idp_client_id) to the enterprise identity provider's token endpoint and this application's client there.",
    })?;
    let idp_client_id = gucs::string(&gucs::IDP_CLIENT_ID).ok_or(Error::SettingMissing {
        setting: "mcp_oauth.idp_client_id",
        hint: "A superuser must set mcp_oauth.idp_client_id to this application's client id at the enterprise identity provider.",
    })?;
    let idp_secret = gucs::string(&gucs::IDP_CLIENT_SECRET).map(Secret::new);
    let http = runtime::http_client()?;
    let mut row = store::load(server_id, &user_id)?;
    if row.auth_type != AuthType::OAuth {
        return Err(Error::NotOAuth(server_id));
    }
    if !row.enabled {
        return Err(Error::Disabled(server_id));
    }
    let Some(client) = row.record.client.clone().filter(|c| c.source == ClientSource::Preregistered) else {
        return Err(Error::InvalidArgument(format!(
            "MCP server {server_id} has no client: set the one its authorization server issued with mcp_oauth_set_client() first"
        )));
    };
    let found = discovery(&http, &row)?;
    if let Some(bound) = client.issuer.as_deref().filter(|b| *b != found.auth_server.issuer) {
        discoveries::forget(&row.url);
        return Err(Error::SignIn(signin::SignInError::ForeignClient {
            registered: bound.to_owned(),
            discovered: found.auth_server.issuer.clone(),
        }));
    }
    crate::secrets::check_sealable()?;
    let _turn = store::RefreshLock::acquire(row.id);
    row = store::load(server_id, &user_id)?;
    let reservation = match durable::reserve(&row, Condition::Generation(row.generation), None)? {
        Reserved::Held(reservation) => reservation,
        Reserved::Refused => return Err(Error::RowChanged(server_id)),
    };
    reservation.hold_for(2 * http.config().request_timeout + runtime::CANCEL_GRACE + Duration::from_secs(5));
    let idp = unattended::IdentityProvider {
        token_endpoint: &idp_endpoint,
        client: ClientCredentials {
            client_id: &idp_client_id,
            secret: idp_secret.as_ref(),
            method: if idp_secret.is_some() { ClientAuthMethod::ClientSecretBasic } else { ClientAuthMethod::None },
            key: None,
        },
    };
    let signed_in = runtime::block_on_to_completion(unattended::enterprise_sign_in(
        &http,
        &found,
        &idp,
        &id_token,
        &credentials_of(&client, &row),
        now(),
    ))?;
    match &signed_in {
        Ok(_) => discoveries::keep(&row.url, &found),
        Err(_) => discoveries::forget(&row.url),
    }
    match signed_in {
        Ok(tokens) => {
            let bound = ClientRegistration { issuer: Some(found.auth_server.issuer.clone()), ..client };
            let extra = RowUpdate { signed_in: true, verifier: Change::Clear, ..Default::default() }
                .set_metadata("client", &bound)
                .remove_metadata(&["flow"]);
            store_tokens(reservation, &mut row, &found, &bound, tokens, extra)?;
            crate::stats::record_sign_in(row.id);
            if runtime::cancel_requested() {
                return Err(Error::Cancelled);
            }
            pgrx::log!(
                "mcp_oauth: user {} signed in to server {} through their identity provider (issuer {})",
                row.user_id,
                row.id,
                found.auth_server.issuer
            );
            Ok(row.id)
        }
        Err(e) => {
            reservation.apply(&RowUpdate::failure(&Error::from(e.clone()).report().message_with_detail(), false))?;
            Err(e.into())
        }
    }
}

fn credentials_of<'a>(client: &'a ClientRegistration, row: &'a ServerRow) -> ClientCredentials<'a> {
    ClientCredentials {
        client_id: &client.client_id,
        secret: row.client_secret.as_ref(),
        method: client.auth_method,
        key: client.key.as_ref(),
    }
}

/// The grant's client when a workload token is presented without a client id.
fn anonymous_client(issuer: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: String::new(),
        source: ClientSource::Preregistered,
        issuer: Some(issuer.to_owned()),
        auth_method: ClientAuthMethod::None,
        key: None,
    }
}

/// What a refusal means, in the owner's terms.
fn refusal(auth_type: AuthType, code: &str, description: Option<&str>) -> String {
    let said = description.map(|d| format!(": {d}")).unwrap_or_default();
    match auth_type {
        AuthType::WorkloadIdentity => format!("the authorization server refused the workload identity token ({code}{said})"),
        _ => format!("the authorization server refused the client credentials ({code}{said})"),
    }
}

/// The error of a row whose credentials were refused and not changed since.
fn refused_before(row: &ServerRow) -> Error {
    let why = row.last_error.as_deref().and_then(|e| e.strip_prefix("reauth_required: ")).unwrap_or("the credentials were refused");
    Error::CredentialsRefused(why.to_owned())
}

fn refused_fingerprint(row: &ServerRow) -> Option<String> {
    row.record.refused_workload_token.clone()
}

/// The database's workload identity token, read from its file now (the
/// platform may have rotated it since the last read).
fn read_workload_token() -> Result<Secret, Error> {
    let path = gucs::string(&gucs::WORKLOAD_TOKEN_FILE).ok_or(Error::SettingMissing {
        setting: "mcp_oauth.workload_token_file",
        hint: "A superuser must set mcp_oauth.workload_token_file to the path of the workload identity token the platform mounts, e.g. ALTER SYSTEM SET mcp_oauth.workload_token_file = '/var/run/secrets/tokens/mcp-token'.",
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::WorkloadToken(format!("the file {path} named by mcp_oauth.workload_token_file cannot be read ({})", e.kind()))
    })?;
    unattended::compact_jwt(&text)
        .map_err(|why| Error::WorkloadToken(format!("the file {path} named by mcp_oauth.workload_token_file is not usable: {why}")))
}
