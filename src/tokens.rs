//! The token lifecycle of an OAuth row: the access token to send, refreshed
//! shortly before it expires (and once after a 401), exactly once for all
//! backends, always at the authorization server that issued it, and stored
//! so that no rollback, cancel or missing worker can lose a rotation.

use crate::durable::{self, Reserved};
use crate::error::Error;
use crate::runtime;
use crate::state::now;
use crate::store::{self, AuthType, Change, Condition, RowUpdate, ServerRow};
use mcp_oauth_core::net::HttpClient;
use mcp_oauth_core::oauth::{self, OAuthError, TokenEndpoint};
use mcp_oauth_core::secret::Secret;
use mcp_oauth_core::signin::Credentials;
use std::time::Duration;

/// Attempts to reserve the row for a refresh when it keeps changing.
const REFRESH_ATTEMPTS: usize = 3;

/// The access token to send to `row`'s server (None in headers mode),
/// refreshed first when it is about to expire.
pub fn access_token(http: &HttpClient, row: &mut ServerRow) -> Result<Option<Secret>, Error> {
    if row.auth_type.unattended() {
        return crate::unattended::access_token(http, row).map(Some);
    }
    if row.auth_type != AuthType::OAuth {
        return Ok(None);
    }
    if row.reauth_required {
        return Err(Error::ReauthRequired("the server needs a new sign-in".into()));
    }
    if row.tokens_unreadable {
        return Err(Error::ReauthRequired("the stored tokens cannot be read".into()));
    }
    let Some(credentials) = row.credentials.as_ref() else {
        return Err(Error::ReauthRequired("the user has not signed in to this server yet".into()));
    };
    if credentials.tokens.refresh_due(now()) {
        let stale = credentials.tokens.access_token.clone();
        refresh(http, row, &stale)?;
    }
    Ok(row.credentials.as_ref().map(|c| c.tokens.access_token.clone()))
}

/// Records that the user must sign in again (durably: it survives the
/// ERROR returned next) and returns that error.
pub fn reauth(row: &ServerRow, why: &str) -> Error {
    match durable::write(row, Condition::Generation(row.generation), RowUpdate::failure(&format!("reauth_required: {why}"), true)) {
        Ok(_) => {
            pgrx::log!("mcp_oauth: server {} of user {} needs a new sign-in: {why}", row.id, row.user_id);
            Error::ReauthRequired(why.to_owned())
        }
        Err(e) => e,
    }
}

/// Refreshes the row's tokens once for all backends.
///
/// Backends take turns on a lock of the row's own (`RefreshLock`) and read
/// the row afresh once they have it (whatever their isolation level): whoever
/// comes second finds the tokens refreshed already. The refresh request is
/// sent only after a background worker holds the row for it
/// (`durable::reserve`), and the worker commits the new pair, so neither the
/// caller's rollback nor a cancel loses it; the grant sealed with the tokens
/// names the only authorization server the refresh token is sent to.
/// `invalid_grant` (or any refresh that cannot succeed) marks the row for a
/// new sign-in.
pub fn refresh(http: &HttpClient, row: &mut ServerRow, stale_access_token: &Secret) -> Result<(), Error> {
    if row.auth_type.unattended() {
        // No refresh token to use: the grant itself is run again.
        return crate::unattended::obtain(http, row, Some(stale_access_token)).map(drop);
    }
    let _turn = store::RefreshLock::acquire(row.id);
    for _ in 0..REFRESH_ATTEMPTS {
        let latest = store::load(row.id, &row.user_id)?;
        let done =
            latest.credentials.as_ref().is_some_and(|c| c.tokens.access_token != *stale_access_token && !c.tokens.refresh_due(now()));
        *row = latest;
        if done {
            return Ok(());
        }
        if row.reauth_required {
            return Err(Error::ReauthRequired("the server needs a new sign-in".into()));
        }
        if row.tokens_unreadable {
            return Err(Error::ReauthRequired("the stored tokens cannot be read".into()));
        }
        let Some(credentials) = row.credentials.clone() else {
            return Err(reauth(row, "the access token expired and cannot be refreshed"));
        };
        if credentials.tokens.refresh_token.is_none() {
            return Err(reauth(row, "the access token expired and no refresh token was issued"));
        }
        let Some(grant) = row.grant() else {
            return Err(reauth(row, "the authorization server of the stored tokens is no longer known"));
        };
        if grant.issuer != credentials.tokens.issuer {
            return Err(reauth(
                row,
                "the stored tokens were issued by another authorization server than the one they would be refreshed at",
            ));
        }
        crate::secrets::check_sealable()?;
        let reservation = match durable::reserve(row, Condition::Generation(row.generation), None)? {
            Reserved::Held(reservation) => reservation,
            // Changed since it was read (a refresh, a reset...): read again.
            Reserved::Refused => continue,
        };
        reservation.hold_for(http.config().request_timeout + runtime::CANCEL_GRACE + Duration::from_secs(5));
        let client = grant.client();
        let endpoint = TokenEndpoint { url: &grant.token_endpoint, issuer: &grant.issuer };
        let refreshed =
            runtime::block_on_to_completion(oauth::refresh(http, endpoint, &client, &credentials.tokens, &grant.resource, now()))?;
        return match refreshed {
            Ok(tokens) => {
                let issuer = grant.issuer.clone();
                let credentials = Credentials { tokens, grant: Some(grant) };
                let update = RowUpdate { tokens: Change::Set(store::seal(row.id, &credentials)?), ..Default::default() };
                row.generation = reservation.apply(&update)?;
                row.credentials = Some(credentials);
                crate::stats::record_refresh(row.id);
                // Stored: now the cancel, if one came meanwhile. (No message
                // before this point: emitting one, even DEBUG1, serves a
                // pending cancel and would lose the new pair.)
                if runtime::cancel_requested() {
                    return Err(Error::Cancelled);
                }
                pgrx::debug1!("mcp_oauth: refreshed the tokens of server {} at {issuer}", row.id);
                Ok(())
            }
            Err(OAuthError::Rejected { code, .. }) if code == "invalid_grant" || code == "invalid_client" => {
                let why = format!("the refresh was refused ({code}); sign in again");
                reservation.apply(&RowUpdate::failure(&format!("reauth_required: {why}"), true))?;
                pgrx::log!("mcp_oauth: server {} of user {} needs a new sign-in: {why}", row.id, row.user_id);
                Err(Error::ReauthRequired(why))
            }
            Err(e) => Err(e.into()),
        };
    }
    Err(Error::Internal("the server row kept changing during a token refresh; try again".into()))
}
