//! Signed OAuth state, with the secret and TTL from the settings. The
//! sign-in functions issue and check states through here.

use crate::error::Error;
use crate::gucs;
use mcp_oauth_core::state::{self, StateClaims, StateSecret};

fn secret() -> Result<StateSecret, Error> {
    Ok(StateSecret::new(gucs::string(&gucs::STATE_SECRET).as_deref())?)
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A new state for `user_id` starting a flow for `server_id`, valid for
/// `mcp_oauth.state_ttl`.
pub fn issue(user_id: &str, server_id: uuid::Uuid) -> Result<(String, StateClaims), Error> {
    let secret = secret()?;
    let claims = StateClaims::new(user_id, server_id, now(), i64::from(gucs::STATE_TTL.get()));
    let token = state::sign(&secret, &claims)?;
    Ok((token, claims))
}

/// The claims of a state that is ours, untampered and unexpired. Single use
/// and ownership are the row store's to check.
pub fn verify(token: &str) -> Result<StateClaims, Error> {
    Ok(state::verify(&secret()?, token, now())?)
}
