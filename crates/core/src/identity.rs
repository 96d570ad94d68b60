//! Who the current user is, as `mcp_oauth.identity` says to find out.
//!
//! The extension reads the raw values from PostgreSQL; this module decides
//! what they mean, so the rules are tested without a database.

use std::fmt;
use std::str::FromStr;

/// Longest accepted user id, in bytes (it travels inside the state token).
pub const MAX_USER_ID_LEN: usize = crate::state::MAX_USER_ID_LEN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid identity source \"{0}\"")]
    InvalidSource(String),
    #[error("no user identity: {0}")]
    Missing(String),
    #[error("the user identity is not usable: {0} {1}")]
    Invalid(String, &'static str),
}

/// Where `mcp_current_user_id()` takes the user id from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// The current database role (`current_user`).
    Role,
    /// A setting the trusted backend sets per request, e.g. `SET LOCAL app.user_id = '42'`.
    Setting(String),
    /// A claim of the JWT that PostgREST/Supabase put in `request.jwt.claims`.
    JwtClaim(String),
}

/// The setting PostgREST and Supabase fill with the verified JWT's claims.
pub const JWT_CLAIMS_SETTING: &str = "request.jwt.claims";

impl FromStr for IdentitySource {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || IdentityError::InvalidSource(s.chars().take(80).collect());
        if s == "role" {
            return Ok(Self::Role);
        }
        if let Some(name) = s.strip_prefix("setting:") {
            return if is_setting_name(name) { Ok(Self::Setting(name.to_owned())) } else { Err(invalid()) };
        }
        if let Some(claim) = s.strip_prefix("jwt_claim:") {
            let ok = !claim.is_empty()
                && claim.len() <= 63
                && claim.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'));
            return if ok { Ok(Self::JwtClaim(claim.to_owned())) } else { Err(invalid()) };
        }
        Err(invalid())
    }
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Role => f.write_str("role"),
            Self::Setting(name) => write!(f, "setting:{name}"),
            Self::JwtClaim(claim) => write!(f, "jwt_claim:{claim}"),
        }
    }
}

/// A custom setting name as PostgreSQL accepts it: dotted identifiers, e.g. `app.user_id`.
/// Our own prefix is refused so that a secret setting can never be the identity.
fn is_setting_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2
        && name.len() <= 127
        && !name.to_ascii_lowercase().starts_with("mcp_oauth.")
        && parts.iter().all(|p| {
            let mut chars = p.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

/// Checks a user id from any source: present, not blank, bounded, printable.
pub fn validate_user_id(source: &str, value: Option<&str>) -> Result<String, IdentityError> {
    let value = value.unwrap_or("");
    if value.trim().is_empty() {
        return Err(IdentityError::Missing(format!("{source} is not set or empty")));
    }
    if value.len() > MAX_USER_ID_LEN {
        return Err(IdentityError::Invalid(source.to_owned(), "is longer than 256 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(IdentityError::Invalid(source.to_owned(), "contains control characters"));
    }
    Ok(value.to_owned())
}

/// Takes `claim` from the JSON object in `request.jwt.claims`. Strings are used
/// as they are, integers in decimal; anything else is refused.
pub fn user_id_from_jwt_claims(claims_json: Option<&str>, claim: &str) -> Result<String, IdentityError> {
    let source = format!("the \"{claim}\" claim of {JWT_CLAIMS_SETTING}");
    let Some(json) = claims_json.filter(|j| !j.trim().is_empty()) else {
        return Err(IdentityError::Missing(format!("the setting {JWT_CLAIMS_SETTING} is not set")));
    };
    let parsed: serde_json::Value =
        serde_json::from_str(json).map_err(|_| IdentityError::Invalid(format!("the setting {JWT_CLAIMS_SETTING}"), "is not valid JSON"))?;
    let object = parsed.as_object().ok_or(IdentityError::Invalid(format!("the setting {JWT_CLAIMS_SETTING}"), "is not a JSON object"))?;
    match object.get(claim) {
        None | Some(serde_json::Value::Null) => {
            Err(IdentityError::Missing(format!("the JWT claims in {JWT_CLAIMS_SETTING} have no \"{claim}\" claim")))
        }
        Some(serde_json::Value::String(s)) => validate_user_id(&source, Some(s)),
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => validate_user_id(&source, Some(&n.to_string())),
        Some(_) => Err(IdentityError::Invalid(source, "is not a string or an integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!("role".parse(), Ok(IdentitySource::Role));
        assert_eq!("setting:app.user_id".parse(), Ok(IdentitySource::Setting("app.user_id".into())));
        assert_eq!("jwt_claim:sub".parse(), Ok(IdentitySource::JwtClaim("sub".into())));
        for bad in [
            "",
            "Role",
            "user",
            "setting:",
            "setting:user_id",
            "setting:app.",
            "setting:.x",
            "setting:app.user id",
            "setting:mcp_oauth.state_secret",
            "setting:MCP_OAUTH.x",
            "jwt_claim:",
            "jwt_claim:a b",
            "jwt_claim:'",
            "setting:app.1x",
        ] {
            assert!(bad.parse::<IdentitySource>().is_err(), "{bad:?} accepted");
        }
        for s in ["role", "setting:app.user_id", "jwt_claim:sub"] {
            assert_eq!(s.parse::<IdentitySource>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn validates_user_ids() {
        assert_eq!(validate_user_id("x", Some("alice")), Ok("alice".into()));
        assert!(matches!(validate_user_id("x", None), Err(IdentityError::Missing(_))));
        assert!(matches!(validate_user_id("x", Some("  ")), Err(IdentityError::Missing(_))));
        assert!(matches!(validate_user_id("x", Some("a\nb")), Err(IdentityError::Invalid(..))));
        assert!(matches!(validate_user_id("x", Some(&"a".repeat(257))), Err(IdentityError::Invalid(..))));
        assert!(validate_user_id("x", Some(&"a".repeat(256))).is_ok());
    }

    #[test]
    fn reads_jwt_claims() {
        let claims = r#"{"sub":"u-1","role":"authenticated","n":42,"f":1.5,"o":{},"e":""}"#;
        assert_eq!(user_id_from_jwt_claims(Some(claims), "sub"), Ok("u-1".into()));
        assert_eq!(user_id_from_jwt_claims(Some(claims), "n"), Ok("42".into()));
        assert!(matches!(user_id_from_jwt_claims(Some(claims), "f"), Err(IdentityError::Invalid(..))));
        assert!(matches!(user_id_from_jwt_claims(Some(claims), "o"), Err(IdentityError::Invalid(..))));
        assert!(matches!(user_id_from_jwt_claims(Some(claims), "e"), Err(IdentityError::Missing(_))));
        assert!(matches!(user_id_from_jwt_claims(Some(claims), "nope"), Err(IdentityError::Missing(_))));
        assert!(matches!(user_id_from_jwt_claims(None, "sub"), Err(IdentityError::Missing(_))));
        assert!(matches!(user_id_from_jwt_claims(Some(""), "sub"), Err(IdentityError::Missing(_))));
        assert!(matches!(user_id_from_jwt_claims(Some("[1]"), "sub"), Err(IdentityError::Invalid(..))));
        assert!(matches!(user_id_from_jwt_claims(Some("{"), "sub"), Err(IdentityError::Invalid(..))));
    }
}
