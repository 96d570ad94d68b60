//! The one place where errors become PostgreSQL errors.
//!
//! Every component has its own error enum (`StateError`, `IdentityError`, …
//! in the core); `Error` gathers them, and `Error::report` is the only mapping
//! to SQLSTATE, message, DETAIL and HINT. Messages are built from our own
//! words and from values the user supplied — never from a secret — and are
//! sanitised once more on the way out.

use mcp_oauth_core::identity::IdentityError;
use mcp_oauth_core::state::StateError;
use pgrx::pg_sys;
use std::ffi::{c_char, c_int, CString};

/// Our SQLSTATEs (class MC), SPEC §4.
pub mod sqlstate {
    pub const REAUTH_REQUIRED: &str = "MC001";
    pub const INVALID_STATE: &str = "MC002";
    pub const DISCOVERY_FAILED: &str = "MC003";
    pub const AUTHORIZATION_SERVER_ERROR: &str = "MC004";
    pub const MCP_ERROR: &str = "MC005";
    pub const NETWORK_POLICY: &str = "MC006";
    pub const NETWORK_TIMEOUT: &str = "MC007";
    pub const CONFIGURATION_MISSING: &str = "MC008";
    /// PostgreSQL's own: a bad argument value.
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    /// PostgreSQL's own: no usable identity for the current user.
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{setting} is not set")]
    SettingMissing { setting: &'static str, hint: &'static str },
}

/// What the user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub sqlstate: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Report {
    fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        Self { sqlstate, message: message.into(), detail: None, hint: None }
    }
    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

const STATE_SECRET_HINT: &str =
    "A superuser must set mcp_oauth.state_secret to a random value of at least 32 bytes, e.g. \
     ALTER SYSTEM SET mcp_oauth.state_secret = '<output of: openssl rand -hex 32>'; SELECT pg_reload_conf();";

impl Error {
    pub fn report(&self) -> Report {
        use sqlstate::*;
        match self {
            Error::State(e @ (StateError::SecretMissing | StateError::SecretTooShort { .. })) => {
                Report::new(CONFIGURATION_MISSING, "mcp_oauth.state_secret is not usable")
                    .detail(sentence(&e.to_string()))
                    .hint(STATE_SECRET_HINT)
            }
            Error::State(StateError::UserIdLength) => {
                Report::new(INVALID_PARAMETER_VALUE, "the user id cannot be carried in a sign-in state")
                    .detail(sentence(&StateError::UserIdLength.to_string()))
            }
            Error::State(e) => Report::new(INVALID_STATE, "invalid OAuth state")
                .detail(sentence(&e.to_string()))
                .hint("Start the sign-in again with mcp_oauth_start(); a state is valid once, for mcp_oauth.state_ttl, for the user who started it."),
            Error::Identity(IdentityError::InvalidSource(_)) => {
                Report::new(CONFIGURATION_MISSING, "mcp_oauth.identity is not valid")
                    .detail(sentence(&self.to_string()))
                    .hint("Set it to role, setting:<name> or jwt_claim:<claim>.")
            }
            Error::Identity(IdentityError::Missing(why)) => {
                Report::new(INVALID_AUTHORIZATION_SPECIFICATION, "no user identity for mcp_oauth")
                    .detail(sentence(why))
                    .hint(identity_hint())
            }
            Error::Identity(IdentityError::Invalid(source, why)) => {
                Report::new(INVALID_AUTHORIZATION_SPECIFICATION, "the user identity for mcp_oauth is not usable")
                    .detail(sentence(&format!("{source} {why}")))
                    .hint(identity_hint())
            }
            Error::SettingMissing { setting, hint } => {
                Report::new(CONFIGURATION_MISSING, format!("{setting} is not set")).hint(*hint)
            }
        }
    }
}

fn identity_hint() -> String {
    match crate::gucs::string(&crate::gucs::IDENTITY).as_deref().unwrap_or("role") {
        s if s.starts_with("setting:") => format!(
            "mcp_oauth.identity is {s}: the application must run SET LOCAL {} = '<user id>' in each transaction.",
            &s["setting:".len()..]
        ),
        s if s.starts_with("jwt_claim:") => format!(
            "mcp_oauth.identity is {s}: request.jwt.claims must hold a JSON object with that claim, as PostgREST sets it."
        ),
        _ => "mcp_oauth.identity is role: the current role's name is the user id.".to_owned(),
    }
}

/// `text` as a sentence: capital first letter, final period.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            let mut out: String = first.to_uppercase().collect();
            out.push_str(chars.as_str());
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}

/// Returns the value, or raises the error as a PostgreSQL ERROR.
pub fn or_raise<T>(result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            let report = error.report();
            drop(error);
            raise(report)
        }
    }
}

/// Keeps text printable and bounded: control characters are escaped, and
/// anything longer than 1000 characters is cut.
pub fn sanitise(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(1000));
    for c in text.chars() {
        if out.len() >= 1000 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_string(text: &str) -> *mut c_char {
    let c = CString::new(sanitise(text)).expect("sanitise removes NUL");
    // SAFETY: pstrdup copies into the current memory context, which
    // PostgreSQL frees after the error; the Rust CString is dropped here.
    unsafe { pg_sys::pstrdup(c.as_ptr()) }
}

/// PostgreSQL's MAKE_SQLSTATE: five characters, six bits each.
fn make_sqlstate(code: &[u8]) -> c_int {
    code.iter().take(5).enumerate().map(|(i, c)| ((c.wrapping_sub(b'0') & 0x3F) as c_int) << (6 * i)).sum()
}

// pgrx's ErrorReport only carries PostgreSQL's built-in SQLSTATEs, so the
// class-MC codes are raised with PostgreSQL's own ereport primitives.
unsafe extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errdetail(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
}

/// Raises `report` as an ERROR. Never returns.
///
/// Callers hold no Rust value with a destructor when they call this (`or_raise`
/// drops the error first, and every string here is palloc'd), so the longjmp
/// back to PostgreSQL skips only frames with nothing left to drop, exactly as
/// pgrx's own boundary does when it re-raises an error.
pub fn raise(report: Report) -> ! {
    let code = make_sqlstate(report.sqlstate.as_bytes());
    let message = pg_string(&report.message);
    let detail = report.detail.as_deref().map(pg_string);
    let hint = report.hint.as_deref().map(pg_string);
    drop(report);
    // SAFETY: called on the backend's thread; the strings are palloc'd and
    // copied by errmsg/errdetail/errhint; ERROR makes errfinish longjmp.
    unsafe {
        if errstart(pg_sys::PGERROR as c_int, std::ptr::null()) {
            errcode(code);
            errmsg(c"%s".as_ptr(), message);
            if let Some(detail) = detail {
                errdetail(c"%s".as_ptr(), detail);
            }
            if let Some(hint) = hint {
                errhint(c"%s".as_ptr(), hint);
            }
            errfinish(c"mcp_oauth".as_ptr(), 0, std::ptr::null());
        }
    }
    unreachable!("errfinish returned from an ERROR")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_encode_like_postgres() {
        // MAKE_SQLSTATE('2','2','0','2','3') == ERRCODE_INVALID_PARAMETER_VALUE
        assert_eq!(
            make_sqlstate(b"22023"),
            pg_sys::errcodes::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE as c_int
        );
    }

    #[test]
    fn sanitise_escapes_and_bounds() {
        assert_eq!(sanitise("a\nb\u{0}"), "a\\nb\\u{0}");
        assert!(sanitise(&"x".repeat(5000)).chars().count() <= 1001);
    }
}
