//! Sign-in: mcp_oauth_start, mcp_oauth_finish, mcp_oauth_callback,
//! mcp_oauth_reset, mcp_oauth_set_client.

use crate::api::identity::current_user_id;
use crate::error::{or_raise, required, Error};
use crate::gucs;
use crate::runtime;
use crate::state::{self, now};
use crate::store::{self, ServerRow};
use mcp_oauth_core::oauth::{self, ClientAuthMethod, ClientCredentials, ClientProfile, ClientRegistration, ClientSource};
use mcp_oauth_core::signin::{self, OAuthRecord, StartRequest};
use pgrx::prelude::*;
use url::Url;

fn to_uuid(id: pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*id.as_bytes())
}

/// The caller's OAuth row, or why it cannot be used.
fn oauth_row(id: uuid::Uuid, user_id: &str) -> Result<ServerRow, Error> {
    let row = store::load(id, user_id)?;
    if row.auth_type != "oauth" {
        return Err(Error::NotOAuth(id));
    }
    Ok(row)
}

fn redirect_uri() -> Result<String, Error> {
    gucs::string(&gucs::REDIRECT_URI).ok_or(Error::SettingMissing {
        setting: "mcp_oauth.redirect_uri",
        hint: "A superuser must set mcp_oauth.redirect_uri to the application's OAuth callback URL, e.g. ALTER SYSTEM SET mcp_oauth.redirect_uri = 'https://app.example.com/oauth/callback'.",
    })
}

fn start(server_id: uuid::Uuid) -> Result<String, Error> {
    let user_id = current_user_id()?;
    let row = oauth_row(server_id, &user_id)?;
    if !row.enabled {
        return Err(Error::Disabled(server_id));
    }
    if row.record.step_up_attempts >= signin::MAX_STEP_UPS {
        return Err(Error::ReauthRequired(format!(
            "the server asked for more scope {} times after sign-ins; no further sign-in is started. \
             Call mcp_oauth_reset() to start over",
            row.record.step_up_attempts
        )));
    }
    let redirect_uri = redirect_uri()?;
    let (state_token, claims) = state::issue(&user_id, server_id)?;
    let server_url = Url::parse(&row.url).map_err(|_| Error::InvalidArgument("the server URL is not valid".into()))?;
    let profile = ClientProfile {
        client_name: gucs::string(&gucs::CLIENT_NAME).unwrap_or_else(|| "mcp_oauth".into()),
        client_uri: gucs::string(&gucs::CLIENT_URI),
        redirect_uri,
    };
    let client_metadata_url = gucs::string(&gucs::CLIENT_METADATA_URL);
    let http = runtime::http_client()?;
    let request = StartRequest {
        server_url: &server_url,
        profile,
        client_metadata_url: client_metadata_url.as_deref(),
        state: &state_token,
        flow_id: &claims.flow_id.to_hex(),
        now: claims.issued_at,
    };
    let started = runtime::block_on(signin::start(&http, row.record.clone(), request))??;
    store::save_flow(&row, &started.record, &started.verifier, started.client_secret)?;
    Ok(started.authorize_url)
}

fn finish(state_token: &str, code: &str, iss: Option<&str>) -> Result<uuid::Uuid, Error> {
    let claims = state::verify(state_token)?;
    // From an unauthenticated callback handler the state alone says who; when
    // the caller does have an identity, it must be the state's user.
    if let Ok(caller) = current_user_id() {
        if caller != claims.user_id {
            return Err(Error::InvalidCallback("the state belongs to another user".into()));
        }
    }
    if code.is_empty() || code.len() > 4096 {
        return Err(Error::InvalidCallback("the authorization code is empty or too long".into()));
    }
    let server_id = claims.server_id;
    let row = store::load(server_id, &claims.user_id).map_err(|e| match e {
        Error::ServerNotFound(_) => Error::InvalidCallback("the server of this state no longer exists".into()),
        other => other,
    })?;
    let flow_id = claims.flow_id.to_hex();
    let record = row.record.clone();
    let flow = record.flow.clone().filter(|f| f.id == flow_id).ok_or_else(|| {
        Error::InvalidCallback("this sign-in was already completed, or superseded by a newer mcp_oauth_start()".into())
    })?;
    let (Some(auth_server), Some(client), Some(issuer), Some(resource)) = (
        record.authorization_server.clone(),
        record.client.clone(),
        record.issuer.clone(),
        record.resource.clone(),
    ) else {
        return Err(Error::InvalidCallback("the sign-in in progress is incomplete; start again".into()));
    };
    // RFC 9207, checked before anything is consumed.
    match iss {
        Some(given) if given != issuer => {
            return Err(Error::IssuerMismatch { expected: issuer, got: Some(given.to_owned()) })
        }
        None if auth_server.authorization_response_iss_parameter_supported => {
            return Err(Error::IssuerMismatch { expected: issuer, got: None })
        }
        _ => {}
    }
    let redirect_uri = flow.redirect_uri.clone();
    let verifier = row.verifier.clone().ok_or_else(|| Error::InvalidCallback("this sign-in was already completed".into()))?;
    // Single use: whoever ends the flow first may redeem the code.
    if !store::end_flow(&row, &flow_id)? {
        return Err(Error::InvalidCallback("this sign-in was already completed".into()));
    }
    let credentials = ClientCredentials {
        client_id: &client.client_id,
        secret: row.client_secret.as_deref(),
        method: client.auth_method,
    };
    let http = runtime::http_client()?;
    let exchanged = runtime::block_on(oauth::exchange_code(
        &http, &auth_server, &credentials, code, &verifier, &redirect_uri, &resource, now(),
    ))?;
    let tokens = match exchanged {
        Ok(tokens) => tokens,
        Err(e) => {
            if matches!(&e, oauth::OAuthError::Rejected { code, .. } if code == "invalid_client")
                && client.source == ClientSource::Dynamic
            {
                // The registration is gone at the server: forget it, so the
                // next start registers again (once).
                let mut cleared = record.clone();
                cleared.client = None;
                cleared.flow = None;
                store::record_failure(&row, "the authorization server no longer knows the client (invalid_client)", false, Some(&cleared))?;
            }
            return Err(e.into());
        }
    };
    let mut record = record;
    record.flow = None;
    record.scope = tokens.scope.clone().or(flow.scope);
    // step_up_attempts stays: only a call that succeeds clears it, so a
    // server that never grants enough scope cannot loop the user forever.
    store::save_tokens(&row, &record, &tokens)?;
    Ok(server_id)
}

fn callback(callback_url: &str) -> Result<uuid::Uuid, Error> {
    match oauth::parse_callback(callback_url).map_err(|why| Error::InvalidCallback(why.into()))? {
        oauth::Callback::Error { error, description } => Err(Error::AuthorizationDenied { code: error, description }),
        oauth::Callback::Code { code, state, iss } => finish(&state, &code, iss.as_deref()),
    }
}

fn reset(server_id: uuid::Uuid) -> Result<(), Error> {
    let user_id = current_user_id()?;
    let row = store::load(server_id, &user_id)?;
    store::reset(&row)
}

fn set_client(server_id: uuid::Uuid, client_id: &str, client_secret: Option<&str>) -> Result<(), Error> {
    let user_id = current_user_id()?;
    if client_id.trim().is_empty() || client_id.len() > 1024 || client_id.chars().any(char::is_control) {
        return Err(Error::InvalidArgument("client_id must be 1 to 1024 printable characters".into()));
    }
    if client_secret.is_some_and(|s| s.is_empty() || s.len() > 4096 || s.chars().any(char::is_control)) {
        return Err(Error::InvalidArgument("client_secret must be 1 to 4096 printable characters, or NULL".into()));
    }
    let row = oauth_row(server_id, &user_id)?;
    let mut record: OAuthRecord = row.record.clone();
    record.client = Some(ClientRegistration {
        client_id: client_id.to_owned(),
        source: ClientSource::Preregistered,
        issuer: None,
        auth_method: if client_secret.is_some() { ClientAuthMethod::ClientSecretBasic } else { ClientAuthMethod::None },
    });
    record.flow = None;
    store::set_client(&row, &record, client_secret)
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_start(server_id: Option<pgrx::Uuid>) -> String {
    or_raise(required(server_id, "server_id").and_then(|id| start(to_uuid(id))))
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_finish(state: Option<&str>, code: Option<&str>, iss: default!(Option<&str>, "NULL")) -> pgrx::Uuid {
    let id = or_raise(
        required(state, "state").and_then(|state| finish(state, required(code, "code")?, iss)),
    );
    pgrx::Uuid::from_bytes(*id.as_bytes())
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_callback(callback_url: Option<&str>) -> pgrx::Uuid {
    let id = or_raise(required(callback_url, "callback_url").and_then(callback));
    pgrx::Uuid::from_bytes(*id.as_bytes())
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_reset(server_id: Option<pgrx::Uuid>) {
    or_raise(required(server_id, "server_id").and_then(|id| reset(to_uuid(id))))
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_set_client(
    server_id: Option<pgrx::Uuid>,
    client_id: Option<&str>,
    client_secret: default!(Option<&str>, "NULL"),
) {
    or_raise(
        required(server_id, "server_id")
            .and_then(|id| set_client(to_uuid(id), required(client_id, "client_id")?, client_secret)),
    )
}
