//! Sign-in: mcp_oauth_start, mcp_oauth_finish, mcp_oauth_callback,
//! mcp_oauth_reset, mcp_oauth_set_client.

use crate::discoveries;
use crate::durable::{self, Reserved};
use crate::error::{or_raise, required, Error};
use crate::gucs;
use crate::identity::current_user_id;
use crate::ids;
use crate::runtime;
use crate::secrets;
use crate::state::{self, now};
use crate::store::{self, AuthType, Change, Condition, RowUpdate, ServerRow};
use mcp_oauth_core::discovery::AuthServer;
use mcp_oauth_core::net::HttpClient;
use mcp_oauth_core::oauth::{
    self, ClientAuthMethod, ClientCredentials, ClientProfile, ClientRegistration, ClientSource, OAuthError, TokenEndpoint, TokenSet,
};
use mcp_oauth_core::page::{self, PageOutcome, TargetOrigin};
use mcp_oauth_core::secret::Secret;
use mcp_oauth_core::signin::{self, Credentials, Flow, Grant, StartRequest, LEGACY_KEYS};
use pgrx::prelude::*;
use std::time::Duration;
use url::Url;

/// The caller's row that uses OAuth tokens (signed in for, or obtained
/// unattended), or why it cannot be used.
fn oauth_row(id: uuid::Uuid, user_id: &str) -> Result<ServerRow, Error> {
    let row = store::load(id, user_id)?;
    if !row.auth_type.uses_tokens() {
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

/// Attempts at storing a started flow when the row keeps changing.
const START_ATTEMPTS: usize = 3;

fn start(server_id: uuid::Uuid) -> Result<String, Error> {
    let user_id = current_user_id()?;
    // Discovery and registration would be wasted: the flow cannot be stored.
    if durable::on_standby() {
        return Err(Error::ReadOnly);
    }
    let mut row = oauth_row(server_id, &user_id)?;
    if row.auth_type != AuthType::OAuth {
        return Err(Error::InvalidArgument(format!(
            "MCP server {server_id} obtains its token without a sign-in (auth_type {}); call its tools directly",
            row.auth_type.as_str()
        )));
    }
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
    let started = match runtime::block_on(signin::start(&http, row.record.clone(), request, discoveries::recent(&row.url)))? {
        Ok(started) => started,
        Err(e) => {
            discoveries::forget(&row.url);
            return Err(e.into());
        }
    };
    discoveries::keep(&row.url, &started.discovered);
    let row_id = row.id.to_string();
    let mut update = RowUpdate {
        verifier: Change::Set(secrets::seal_text(&row_id, "oauth_code_verifier", started.verifier.expose())?),
        client_secret: match &started.client_secret {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(secret) => Change::Set(secrets::seal_text(&row_id, "oauth_client_secret", secret.expose())?),
        },
        ..Default::default()
    }
    .set_metadata("flow", &started.record.flow)
    .set_metadata("client", &started.record.client);
    if started.record.client.is_none() {
        update = update.remove_metadata(&["client"]);
    }
    // Stored only while the row is as this start read it. A concurrent
    // refresh (new tokens, nothing else) bumps the generation meanwhile: then
    // read again and retry. Anything else (a reset, a URL change, a new
    // sign-in) wins over this start.
    for _ in 0..START_ATTEMPTS {
        if store::apply(row.id, &row.user_id, Condition::Generation(row.generation), &update)?.is_some() {
            return Ok(started.authorize_url);
        }
        let latest = oauth_row(server_id, &user_id)?;
        let only_refreshed = latest.url == row.url
            && latest.record == row.record
            && latest.credentials.is_some()
            && row.credentials.is_some()
            && !latest.reauth_required;
        if !only_refreshed {
            break;
        }
        row = latest;
    }
    Err(Error::RowChanged(server_id))
}

/// How long a held worker may wait for a token request's answer.
fn hold_time(http: &HttpClient) -> Duration {
    http.config().request_timeout + runtime::CANCEL_GRACE + Duration::from_secs(5)
}

/// A callback that passed every check, before anything is consumed.
struct PendingSignIn {
    row: ServerRow,
    flow_id: String,
    flow: Flow,
    auth_server: AuthServer,
    resource: String,
    client: ClientRegistration,
    verifier: Secret,
    client_secret: Option<Secret>,
}

fn finish(state_token: &str, code: &str, iss: Option<&str>) -> Result<uuid::Uuid, Error> {
    let pending = check_callback(state_token, code, iss)?;
    redeem(pending, code)
}

/// Everything a callback must satisfy before its code is redeemed: the
/// state, the caller, the code's size, the flow still in progress, the
/// issuer (RFC 9207). Nothing is consumed here.
fn check_callback(state_token: &str, code: &str, iss: Option<&str>) -> Result<PendingSignIn, Error> {
    let claims = state::verify(state_token)?;
    // From an unauthenticated callback handler the state alone says who
    // (unless mcp_oauth.finish_requires_identity); when the caller does have
    // an identity, it must be the state's user.
    match current_user_id() {
        Ok(caller) if caller != claims.user_id => return Err(Error::InvalidCallback("the state belongs to another user".into())),
        Ok(_) => {}
        Err(Error::Unidentified { identity, error }) if gucs::FINISH_REQUIRES_IDENTITY.get() => {
            return Err(Error::FinishNeedsIdentity { identity, error })
        }
        Err(e @ Error::Identity(_)) if gucs::FINISH_REQUIRES_IDENTITY.get() => return Err(e),
        Err(_) => {}
    }
    if code.is_empty() || code.len() > 4096 {
        return Err(Error::InvalidCallback("the authorization code is empty or too long".into()));
    }
    let row = store::load(claims.server_id, &claims.user_id).map_err(|e| match e {
        Error::ServerNotFound(_) => Error::InvalidCallback("the server of this state no longer exists".into()),
        other => other,
    })?;
    let flow_id = claims.flow_id.to_hex();
    let record = &row.record;
    let flow =
        record.flow.clone().filter(|f| f.id == flow_id).ok_or_else(|| {
            Error::InvalidCallback("this sign-in was already completed, or superseded by a newer mcp_oauth_start()".into())
        })?;
    let (auth_server, resource, client) = flow
        .discovery(record)
        .map(|(a, r, c)| (a.clone(), r.to_owned(), c.clone()))
        .ok_or_else(|| Error::InvalidCallback("the sign-in in progress is incomplete; start again".into()))?;
    match iss {
        Some(given) if given != auth_server.issuer => {
            return Err(Error::IssuerMismatch { expected: auth_server.issuer.clone(), got: Some(given.to_owned()) })
        }
        None if auth_server.authorization_response_iss_parameter_supported => {
            return Err(Error::IssuerMismatch { expected: auth_server.issuer.clone(), got: None })
        }
        _ => {}
    }
    let verifier = row.verifier.clone().ok_or_else(|| Error::InvalidCallback("this sign-in was already completed".into()))?;
    // The client secret on the row is the reusable registration's: the
    // flow's client, unless a later start or set_client replaced it (which
    // would also have replaced the flow).
    let client_secret = record.client.as_ref().filter(|c| c.client_id == client.client_id).and(row.client_secret.clone());
    Ok(PendingSignIn { row, flow_id, flow, auth_server, resource, client, verifier, client_secret })
}

/// Redeems the code once: the flow ends whatever happens, and the outcome
/// is stored by a worker holding the row (or, without one, in the caller's
/// transaction).
fn redeem(p: PendingSignIn, code: &str) -> Result<uuid::Uuid, Error> {
    let end_flow = RowUpdate { verifier: Change::Clear, ..Default::default() }.remove_metadata(&["flow"]);
    let http = runtime::http_client()?;
    crate::secrets::check_sealable()?;
    let reservation = hold_flow(&p, &end_flow, &http)?;
    let credentials = ClientCredentials {
        client_id: &p.client.client_id,
        secret: p.client_secret.as_ref(),
        method: p.client.auth_method,
        key: p.client.key.as_ref(),
    };
    let exchanged = runtime::block_on_to_completion(oauth::exchange_code(
        &http,
        TokenEndpoint::from(&p.auth_server),
        &credentials,
        code,
        &p.verifier,
        &p.flow.redirect_uri,
        &p.resource,
        // Each sign-in binds its tokens to a new key, when the servers take proofs.
        p.flow.dpop.then(oauth::dpop::DpopKey::generate).as_ref(),
        now(),
    ))?;
    let (update, outcome) = match exchanged {
        Ok(tokens) => (signed_in(&p, tokens, end_flow)?, Ok(p.row.id)),
        Err(e) => (refused(&p, &e, end_flow), Err(Error::from(e))),
    };
    match reservation {
        Some(reservation) => reservation.apply(&update).map(drop)?,
        None => store::apply(p.row.id, &p.row.user_id, Condition::Always, &update).map(drop)?,
    }
    if outcome.is_ok() {
        crate::stats::record_sign_in(p.row.id);
    }
    // Stored: now a cancel, if one came meanwhile. (Messages only after
    // this: emitting one serves a pending cancel.)
    if runtime::cancel_requested() {
        return Err(Error::Cancelled);
    }
    if outcome.is_ok() {
        log!("mcp_oauth: user {} signed in to server {} (issuer {})", p.row.user_id, p.row.id, p.auth_server.issuer);
    }
    outcome
}

/// Takes the flow: a worker holds the row for the exchange, or without one
/// the flow ends in the caller's transaction. Either way a second callback
/// with the same state finds it gone.
fn hold_flow(p: &PendingSignIn, end_flow: &RowUpdate, http: &HttpClient) -> Result<Option<durable::Reservation>, Error> {
    let condition = Condition::Flow(p.flow_id.clone());
    match durable::reserve(&p.row, condition.clone(), Some(end_flow.clone())) {
        Ok(Reserved::Held(reservation)) => {
            reservation.hold_for(hold_time(http));
            Ok(Some(reservation))
        }
        Ok(Reserved::Refused) => Err(Error::InvalidCallback("this sign-in was already completed".into())),
        Err(Error::NoWorkerSlot | Error::DurabilityUnavailable(_) | Error::RowHeldByCaller(_)) => {
            if store::apply(p.row.id, &p.row.user_id, condition, end_flow)?.is_none() {
                return Err(Error::InvalidCallback("this sign-in was already completed".into()));
            }
            warning!(
                "mcp_oauth: the sign-in to server {} is stored in the current transaction only; it is lost if the transaction rolls back (no background worker could store it: see max_worker_processes)",
                p.row.id
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The write of a completed sign-in: the tokens sealed with their grant.
fn signed_in(p: &PendingSignIn, mut tokens: TokenSet, end_flow: RowUpdate) -> Result<RowUpdate, Error> {
    tokens.scope = tokens.scope.or(p.flow.scope.clone());
    let grant = Grant::new(&p.auth_server, &p.client, p.client_secret.as_ref(), &p.resource);
    let credentials = Credentials { tokens, grant: Some(grant) };
    let update = RowUpdate {
        tokens: Change::Set(store::seal(p.row.id, &credentials)?),
        reauth_required: Some(false),
        last_error: Change::Clear,
        signed_in: true,
        ..end_flow
    }
    .set_metadata("issuer", &p.auth_server.issuer)
    .set_metadata("resource", &p.resource);
    // step_up_attempts stays: only a call that succeeds clears it, so a
    // server that never grants enough scope cannot loop the user.
    Ok(update.remove_metadata(LEGACY_KEYS))
}

/// The write of a refused exchange: the flow ends; a dynamic registration
/// the server no longer knows is forgotten, so the next start registers
/// again (once).
fn refused(p: &PendingSignIn, error: &OAuthError, end_flow: RowUpdate) -> RowUpdate {
    let dropped_client =
        matches!(error, OAuthError::Rejected { code, .. } if code == "invalid_client") && p.client.source == ClientSource::Dynamic;
    if !dropped_client {
        return end_flow;
    }
    RowUpdate {
        client_secret: Change::Clear,
        ..RowUpdate::failure("the authorization server no longer knows the client (invalid_client)", false)
    }
    .remove_metadata(&["flow", "client"])
    .verifier_cleared()
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
    discoveries::forget(&row.url);
    store::apply(row.id, &row.user_id, Condition::Always, &forgotten())?;
    Ok(())
}

/// The write that forgets a row's tokens, sign-in in progress, client
/// registration and last error; later writes computed before it skip.
fn forgotten() -> RowUpdate {
    RowUpdate {
        last_error: Change::Clear,
        reauth_required: Some(false),
        metadata_clear: true,
        tokens: Change::Clear,
        verifier: Change::Clear,
        client_secret: Change::Clear,
        bump_generation: true,
        ..Default::default()
    }
}

/// What became of the tokens at the authorization server on a disconnect.
enum Revocation {
    Revoked,
    NoTokens,
    NotOffered,
    Failed(String),
}

/// Reads of the row a disconnect makes when it keeps changing under it.
const DISCONNECT_ATTEMPTS: usize = 3;

/// Revokes the row's tokens where they were issued (RFC 7009), when that
/// server offers revocation, then forgets them whatever it answered.
///
/// Refreshes of a row take turns on its refresh lock: taking it lets a
/// refresh in flight store its new pair first (which is then the pair
/// revoked), and starts none until the disconnect is done. A worker holds
/// the row while the tokens are revoked and commits the forgetting in a
/// transaction of its own, so nothing is stored in between, a rollback of
/// the caller cannot bring revoked tokens back, and the caller's isolation
/// level does not matter. Without a worker, the row is forgotten in the
/// caller's transaction, as mcp_oauth_reset does.
fn disconnect(server_id: uuid::Uuid) -> Result<serde_json::Value, Error> {
    let user_id = current_user_id()?;
    let _turn = store::RefreshLock::acquire(server_id);
    let http = runtime::http_client()?;
    for _ in 0..DISCONNECT_ATTEMPTS {
        let row = store::load(server_id, &user_id)?;
        let reservation = match durable::reserve(&row, Condition::Generation(row.generation), None) {
            Ok(Reserved::Held(reservation)) => {
                // Two requests (refresh and access token).
                reservation.hold_for(2 * http.config().request_timeout + runtime::CANCEL_GRACE + Duration::from_secs(5));
                Some(reservation)
            }
            // Changed since it was read (a sign-in...): read again.
            Ok(Reserved::Refused) => continue,
            Err(Error::NoWorkerSlot | Error::DurabilityUnavailable(_) | Error::RowHeldByCaller(_)) => None,
            Err(e) => return Err(e),
        };
        let revocation = revoke(&http, &row)?;
        match reservation {
            Some(reservation) => reservation.apply(&forgotten()).map(drop)?,
            None => store::apply(row.id, &row.user_id, Condition::Always, &forgotten()).map(drop)?,
        }
        discoveries::forget(&row.url);
        // Stored: now a cancel, and messages (which serve one).
        if runtime::cancel_requested() {
            return Err(Error::Cancelled);
        }
        let (status, detail) = match revocation {
            Revocation::Revoked => ("revoked", None),
            Revocation::NoTokens => ("no_tokens", None),
            Revocation::NotOffered => ("not_offered", None),
            Revocation::Failed(why) => {
                warning!("mcp_oauth: the tokens of server {} could not be revoked ({why}); they are deleted here all the same", row.id);
                ("failed", Some(why))
            }
        };
        return Ok(serde_json::json!({"server_id": row.id, "revocation": status, "detail": detail}));
    }
    Err(Error::Internal("the server row kept changing during a disconnect; try again".into()))
}

/// Revokes the row's tokens at the revocation endpoint of the server that
/// issued them (sealed in their grant), if it has one.
fn revoke(http: &HttpClient, row: &ServerRow) -> Result<Revocation, Error> {
    let (Some(credentials), Some(grant)) = (&row.credentials, row.grant()) else {
        return Ok(if row.credentials.is_none() { Revocation::NoTokens } else { Revocation::NotOffered });
    };
    let Some(endpoint) = &grant.revocation_endpoint else { return Ok(Revocation::NotOffered) };
    if grant.client_id.is_empty() {
        // A workload token presented without a client: nothing identifies
        // the client to revoke as.
        return Ok(Revocation::NotOffered);
    }
    let client = grant.client();
    Ok(match runtime::block_on_to_completion(oauth::revoke(http, endpoint, &client, &credentials.tokens))? {
        Ok(()) => Revocation::Revoked,
        Err(e) => Revocation::Failed(Error::from(e).report().message_with_detail()),
    })
}

fn set_client(server_id: uuid::Uuid, client_id: &str, client_secret: Option<&str>) -> Result<(), Error> {
    let min = mcp_oauth_core::text::MIN_SECRET_LEN;
    if client_secret.is_some_and(|s| s.chars().count() < min || s.len() > 4096 || s.chars().any(char::is_control)) {
        return Err(Error::InvalidArgument(format!(
            "client_secret must be {min} to 4096 printable characters, or NULL (a shorter one cannot be kept out of what servers say back)"
        )));
    }
    let method = if client_secret.is_some() { ClientAuthMethod::ClientSecretBasic } else { ClientAuthMethod::None };
    store_client(server_id, client_id, method, None, client_secret)
}

/// Sets a `private_key_jwt` client: its key (PEM) is checked by signing
/// with it, then sealed where a client secret would be.
fn set_client_key(server_id: uuid::Uuid, client_id: &str, private_key: &str, algorithm: &str, key_id: Option<&str>) -> Result<(), Error> {
    let alg = oauth::SigningAlg::parse(algorithm).ok_or_else(|| {
        let names: Vec<&str> = oauth::SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
        Error::InvalidArgument(format!("algorithm must be one of {}", names.join(", ")))
    })?;
    if key_id.is_some_and(|k| k.is_empty() || k.len() > 256 || k.chars().any(char::is_control)) {
        return Err(Error::InvalidArgument("key_id must be 1 to 256 printable characters, or NULL".into()));
    }
    let spec = oauth::KeySpec { alg, kid: key_id.map(str::to_owned) };
    oauth::check_key(&Secret::new(private_key), &spec)
        .map_err(|why| Error::InvalidArgument(format!("private_key is not usable: {why}")))?;
    store_client(server_id, client_id, ClientAuthMethod::PrivateKeyJwt, Some(spec), Some(private_key))
}

/// Stores a pre-registered client. New credentials end what the old ones
/// led to: a sign-in in progress, and on an unattended row the token and a
/// refusal (the next call obtains a token with the new ones).
fn store_client(
    server_id: uuid::Uuid,
    client_id: &str,
    auth_method: ClientAuthMethod,
    key: Option<oauth::KeySpec>,
    secret: Option<&str>,
) -> Result<(), Error> {
    let user_id = current_user_id()?;
    if client_id.trim().is_empty() || client_id.len() > 1024 || client_id.chars().any(char::is_control) {
        return Err(Error::InvalidArgument("client_id must be 1 to 1024 printable characters".into()));
    }
    let row = oauth_row(server_id, &user_id)?;
    let client =
        ClientRegistration { client_id: client_id.to_owned(), source: ClientSource::Preregistered, issuer: None, auth_method, key };
    let row_id = row.id.to_string();
    let mut update = RowUpdate {
        client_secret: match secret {
            Some(secret) => Change::Set(secrets::seal_text(&row_id, "oauth_client_secret", secret)?),
            None => Change::Clear,
        },
        verifier: Change::Clear,
        ..Default::default()
    }
    .set_metadata("client", &client)
    .remove_metadata(&["flow"]);
    if row.auth_type.unattended() {
        update = RowUpdate { tokens: Change::Clear, reauth_required: Some(false), last_error: Change::Clear, ..update }
            .remove_metadata(&["refused_workload_token"]);
    }
    store::apply(row.id, &row.user_id, Condition::Always, &update)?;
    Ok(())
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_start(server_id: Option<pgrx::Uuid>) -> String {
    or_raise(required(server_id, "server_id").and_then(|id| start(ids::from_sql(id))))
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_finish(state: Option<&str>, code: Option<&str>, iss: default!(Option<&str>, "NULL")) -> pgrx::Uuid {
    let id = or_raise(required(state, "state").and_then(|state| finish(state, required(code, "code")?, iss)));
    ids::to_sql(id)
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_callback(callback_url: Option<&str>) -> pgrx::Uuid {
    let id = or_raise(required(callback_url, "callback_url").and_then(callback));
    ids::to_sql(id)
}

/// What an application's callback route returns to the sign-in popup: the
/// callback run, and a page posting `{type: "mcp_oauth_done", success,
/// server_id, error}` to the opener at exactly `target_origin`.
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_callback_page(callback_url: Option<&str>, target_origin: Option<&str>) -> String {
    or_raise(callback_page(callback_url, target_origin))
}

fn callback_page(callback_url: Option<&str>, target_origin: Option<&str>) -> Result<String, Error> {
    let target = TargetOrigin::parse(required(target_origin, "target_origin")?).map_err(Error::InvalidArgument)?;
    let callback_url = required(callback_url, "callback_url")?;
    let outcome = match callback(callback_url) {
        Ok(id) => PageOutcome::SignedIn { server_id: id.to_string() },
        Err(Error::Cancelled) => return Err(Error::Cancelled),
        Err(e) => {
            let report = e.report();
            PageOutcome::Failed {
                server_id: server_of(callback_url),
                error: format!("{} ({})", report.message_with_detail(), report.sqlstate),
            }
        }
    };
    Ok(page::callback_page(&outcome, &target))
}

/// The server a callback's state names, when the state is genuine.
fn server_of(callback_url: &str) -> Option<String> {
    match oauth::parse_callback(callback_url).ok()? {
        oauth::Callback::Code { state, .. } => state::verify(&state).ok().map(|claims| claims.server_id.to_string()),
        oauth::Callback::Error { .. } => None,
    }
}

/// Disconnects a server: its tokens are revoked at the authorization server
/// when it offers revocation (RFC 7009), then forgotten as by
/// mcp_oauth_reset, even when the revocation failed.
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_disconnect(server_id: Option<pgrx::Uuid>) -> pgrx::JsonB {
    pgrx::JsonB(or_raise(required(server_id, "server_id").and_then(|id| disconnect(ids::from_sql(id)))))
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_reset(server_id: Option<pgrx::Uuid>) {
    or_raise(required(server_id, "server_id").and_then(|id| reset(ids::from_sql(id))))
}

/// Signs in without a browser: the user's enterprise ID token, exchanged at
/// the identity provider for an identity assertion grant, redeemed at the
/// server's authorization server (enterprise-managed authorization).
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_enterprise_sign_in(server_id: Option<pgrx::Uuid>, id_token: Option<&str>) -> pgrx::Uuid {
    let id = or_raise(
        required(server_id, "server_id")
            .and_then(|id| crate::unattended::enterprise_sign_in(ids::from_sql(id), required(id_token, "id_token")?)),
    );
    ids::to_sql(id)
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_set_client_key(
    server_id: Option<pgrx::Uuid>,
    client_id: Option<&str>,
    private_key: Option<&str>,
    algorithm: default!(Option<&str>, "'ES256'"),
    key_id: default!(Option<&str>, "NULL"),
) {
    or_raise(required(server_id, "server_id").and_then(|id| {
        set_client_key(
            ids::from_sql(id),
            required(client_id, "client_id")?,
            required(private_key, "private_key")?,
            required(algorithm, "algorithm")?,
            key_id,
        )
    }))
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_set_client(server_id: Option<pgrx::Uuid>, client_id: Option<&str>, client_secret: default!(Option<&str>, "NULL")) {
    or_raise(
        required(server_id, "server_id").and_then(|id| set_client(ids::from_sql(id), required(client_id, "client_id")?, client_secret)),
    )
}
