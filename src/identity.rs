//! Who the caller is: the user id `mcp_oauth.identity` says to take, read
//! from PostgreSQL (the rules are the core's `identity`).

use crate::error::Error;
use crate::gucs;
use mcp_oauth_core::identity::{self, IdentityError, IdentitySource, JWT_CLAIMS_SETTING};
use pgrx::pg_sys;
use std::ffi::{CStr, CString};

/// The current user's id, as `mcp_oauth.identity` says to find it.
pub fn current_user_id() -> Result<String, Error> {
    let source: IdentitySource = gucs::string(&gucs::IDENTITY).as_deref().unwrap_or("role").parse()?;
    user_id_from(&source).map_err(|error| Error::Unidentified { identity: source, error })
}

fn user_id_from(source: &IdentitySource) -> Result<String, IdentityError> {
    match source {
        IdentitySource::Role => {
            // SAFETY: GetUserId is always valid in a backend; the name is palloc'd.
            let name = unsafe { CStr::from_ptr(pg_sys::GetUserNameFromId(pg_sys::GetUserId(), false)) };
            identity::validate_user_id("the current role name", Some(&name.to_string_lossy()))
        }
        IdentitySource::Setting(name) => identity::validate_user_id(&format!("the setting {name}"), setting(name).as_deref()),
        IdentitySource::JwtClaim(claim) => identity::user_id_from_jwt_claims(setting(JWT_CLAIMS_SETTING).as_deref(), claim),
    }
}

/// A setting's current value; `None` when it does not exist. Settings only
/// superusers may read stay unreadable (restrict_privileged).
fn setting(name: &str) -> Option<String> {
    let name = CString::new(name).ok()?;
    // SAFETY: a valid C string; missing_ok = true returns NULL instead of erroring.
    let value = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, true) };
    (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) }.to_string_lossy().into_owned())
}
