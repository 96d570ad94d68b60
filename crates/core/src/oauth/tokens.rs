//! What a token endpoint returns: the token response `oauth2` hands back,
//! lenient on purpose, and the checks this client applies on top of it
//! before anything is stored (Bearer only, token syntax and length, a
//! plausible `expires_in`).

use super::OAuthError;
use crate::secret::Secret;
use crate::text::MIN_SECRET_LEN;
use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// Tokens as stored (encrypted) on the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// Unix seconds; `None` when the server gave no lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The issuer that issued them.
    pub issuer: String,
    /// Unix seconds when they were received (tokens stored before this was
    /// kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    /// The key the access token is bound to (RFC 9449, token_type DPoP):
    /// every request with it carries a proof signed by this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<super::dpop::DpopKey>,
}

/// The most time before expiry at which a token is refreshed.
pub const MAX_REFRESH_MARGIN_SECS: i64 = 60;

impl TokenSet {
    /// How long before expiry this token is refreshed: a tenth of its
    /// lifetime, at most [`MAX_REFRESH_MARGIN_SECS`], so a server issuing
    /// short-lived tokens does not get a refresh on every call.
    pub fn refresh_margin(&self) -> i64 {
        match (self.issued_at, self.expires_at) {
            (Some(issued), Some(expires)) => ((expires - issued) / 10).clamp(0, MAX_REFRESH_MARGIN_SECS),
            _ => MAX_REFRESH_MARGIN_SECS,
        }
    }

    /// Whether the access token should be refreshed before it is used.
    pub fn refresh_due(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at - self.refresh_margin() <= now)
    }
}

/// Longest token lifetime taken at face value: ten years.
const MAX_EXPIRES_IN: i64 = 10 * 365 * 24 * 3600;
/// Longest token accepted. Tokens travel in an HTTP header on every call;
/// servers commonly refuse headers much longer than this.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Longest scope accepted with tokens (the tokens, their scope and grant
/// are stored together, in a bounded space).
pub const MAX_SCOPE_LEN: usize = 8 * 1024;

/// RFC 6749 Appendix A: `refresh_token = 1*VSCHAR` (%x20-7E); and at least
/// [`MIN_SECRET_LEN`] characters: a shorter token could not be kept out of
/// what servers say back (no authorization server issues one).
pub fn is_refresh_token(token: &str) -> bool {
    token.len() >= MIN_SECRET_LEN && token.len() <= MAX_TOKEN_LEN && token.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// `access_token = 1*VSCHAR` (RFC 6749 Appendix A), without the space,
/// since the token is sent as `Authorization: Bearer <token>` (RFC 6750
/// §2.1), where a space would end it.
pub fn is_access_token(token: &str) -> bool {
    is_refresh_token(token) && !token.contains(' ')
}

/// The token response as `oauth2` deserialises it: any JSON object, so that
/// a server writing `expires_in` as a string (as some do) or omitting a field
/// reaches [`TokenResponse::validate`], which says precisely what is wrong,
/// instead of failing inside the deserialiser. The accessors `oauth2`
/// requires read the same object; nothing else uses them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct TokenResponse {
    fields: Map<String, Value>,
    access_token: AccessToken,
    token_type: BasicTokenType,
    refresh_token: Option<RefreshToken>,
}

impl From<Map<String, Value>> for TokenResponse {
    fn from(fields: Map<String, Value>) -> Self {
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
        Self {
            access_token: AccessToken::new(text("access_token").unwrap_or_default()),
            token_type: match text("token_type") {
                Some(t) if t.eq_ignore_ascii_case("bearer") => BasicTokenType::Bearer,
                other => BasicTokenType::Extension(other.unwrap_or_default()),
            },
            refresh_token: text("refresh_token").map(RefreshToken::new),
            fields,
        }
    }
}

impl From<TokenResponse> for Map<String, Value> {
    fn from(response: TokenResponse) -> Self {
        response.fields
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&String> = self.fields.keys().collect();
        write!(f, "TokenResponse {{ fields: {names:?} }}")
    }
}

impl oauth2::TokenResponse for TokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        expires_in(self.fields.get("expires_in")).ok().flatten().map(|secs| Duration::from_secs(secs as u64))
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

/// `expires_in` in seconds: an integer, or a string holding one; `None` when
/// absent, and when 0: a token that would be expired as it arrives says no
/// more about its lifetime than an absent one (it is used until refused),
/// where taken at face value it would be refreshed on every call.
fn expires_in(value: Option<&Value>) -> Result<Option<i64>, &'static str> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let secs = value.as_i64().or_else(|| value.as_str().and_then(|s| s.parse::<i64>().ok())).ok_or("expires_in is not an integer")?;
    if !(0..=MAX_EXPIRES_IN).contains(&secs) {
        return Err("expires_in is negative or implausibly large");
    }
    Ok((secs > 0).then_some(secs))
}

impl TokenResponse {
    /// The checks of OAuth 2.1 §3.2.3 and RFC 6749 Appendix A, and ours:
    /// the tokens to store, issued by `issuer` at `now`.
    pub fn validate(&self, host: &str, issuer: &str, now: i64) -> Result<TokenSet, OAuthError> {
        self.validate_bound(host, issuer, now, None)
    }

    /// [`validate`](Self::validate) of an answer to a request that carried a
    /// DPoP proof of `dpop`: a `DPoP` token is bound to that key (a `Bearer`
    /// one, from a server that ignored the proof, is not).
    pub fn validate_bound(&self, host: &str, issuer: &str, now: i64, dpop: Option<&super::dpop::DpopKey>) -> Result<TokenSet, OAuthError> {
        let invalid = |why: String| OAuthError::InvalidResponse { host: host.to_owned(), why };
        let access_token = match self.fields.get("access_token") {
            Some(Value::String(t)) if is_access_token(t) => Secret::new(t.as_str()),
            Some(Value::String(t)) if !t.is_empty() => {
                return Err(invalid(format!(
                    "the access_token is not {MIN_SECRET_LEN} to {MAX_TOKEN_LEN} visible ASCII characters (RFC 6749 Appendix A) without spaces; it has {} bytes",
                    t.len()
                )))
            }
            _ => return Err(invalid("the token response has no usable access_token".into())),
        };
        let dpop_key = match self.fields.get("token_type") {
            Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => None,
            Some(Value::String(t)) if t.eq_ignore_ascii_case("dpop") && dpop.is_some() => dpop.cloned(),
            Some(Value::String(_)) if dpop.is_some() => return Err(invalid("the token_type is neither Bearer nor DPoP".into())),
            Some(Value::String(_)) => return Err(invalid("the token_type is not Bearer".into())),
            _ => return Err(invalid("the token response has no token_type".into())),
        };
        let expires_at = expires_in(self.fields.get("expires_in")).map_err(|why| invalid(why.into()))?.map(|secs| now.saturating_add(secs));
        let refresh_token = match self.fields.get("refresh_token") {
            Some(Value::String(t)) if is_refresh_token(t) => Some(Secret::new(t.as_str())),
            Some(Value::String(t)) => {
                return Err(invalid(format!(
                    "the refresh_token is not {MIN_SECRET_LEN} to {MAX_TOKEN_LEN} visible ASCII characters (RFC 6749 Appendix A); it has {} bytes",
                    t.len()
                )))
            }
            None | Some(Value::Null) => None,
            _ => return Err(invalid("the refresh_token is not a string".into())),
        };
        let scope = self.fields.get("scope").and_then(Value::as_str).map(str::to_owned);
        if scope.as_ref().is_some_and(|s| s.len() > MAX_SCOPE_LEN) {
            return Err(invalid(format!("the scope is longer than {MAX_SCOPE_LEN} bytes")));
        }
        Ok(TokenSet { access_token, refresh_token, expires_at, scope, issuer: issuer.to_owned(), issued_at: Some(now), dpop_key })
    }
}

/// Validates a token endpoint response body (OAuth 2.1 §3.2.3).
pub fn parse_token_response(host: &str, body: &[u8], issuer: &str, now: i64) -> Result<TokenSet, OAuthError> {
    parse_bound_token_response(host, body, issuer, now, None)
}

/// [`parse_token_response`] of an answer to a request with a DPoP proof.
pub fn parse_bound_token_response(
    host: &str,
    body: &[u8],
    issuer: &str,
    now: i64,
    dpop: Option<&super::dpop::DpopKey>,
) -> Result<TokenSet, OAuthError> {
    let invalid = |why: &str| OAuthError::InvalidResponse { host: host.to_owned(), why: why.to_owned() };
    let value: Value = serde_json::from_slice(body).map_err(|_| invalid("the token response is not JSON"))?;
    let Value::Object(fields) = value else { return Err(invalid("the token response is not a JSON object")) };
    TokenResponse::from(fields).validate_bound(host, issuer, now, dpop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_are_validated() {
        let ok = parse_token_response(
            "h",
            br#"{"access_token":"at-00001","token_type":"bearer","expires_in":3600,"refresh_token":"rt-00001","scope":"a"}"#,
            "iss",
            100,
        )
        .unwrap();
        assert_eq!(ok.expires_at, Some(3700));
        assert_eq!(ok.refresh_token.as_ref().map(Secret::expose), Some("rt-00001"));
        assert!(!format!("{ok:?}").contains("at-00001") && !format!("{ok:?}").contains("rt-00001"));
        let no_expiry = parse_token_response("h", br#"{"access_token":"at-00001","token_type":"Bearer"}"#, "iss", 0).unwrap();
        assert_eq!(no_expiry.expires_at, None);
        for zero in [
            &br#"{"access_token":"at-00001","token_type":"Bearer","expires_in":0}"#[..],
            br#"{"access_token":"at-00001","token_type":"Bearer","expires_in":"0"}"#,
        ] {
            let zero = parse_token_response("h", zero, "iss", 100).unwrap();
            assert_eq!(zero.expires_at, None);
            assert!(!zero.refresh_due(100));
        }
        let string_expiry = parse_token_response("h", br#"{"access_token":"at-00001","token_type":"Bearer","expires_in":"60"}"#, "iss", 0);
        assert_eq!(string_expiry.unwrap().expires_at, Some(60));
        for bad in [
            &br#"{"token_type":"Bearer"}"#[..],
            br#"{"access_token":"","token_type":"Bearer"}"#,
            br#"{"access_token":"at"}"#,
            br#"{"access_token":"at","token_type":"DPoP"}"#,
            br#"{"access_token":"at-00001","token_type":"Bearer","expires_in":-5}"#,
            br#"{"access_token":"at-00001","token_type":"Bearer","expires_in":1e300}"#,
            br#"{"access_token":"at-00001","token_type":"Bearer","expires_in":999999999999}"#,
            br#"{"access_token":"at-00001","token_type":"Bearer","refresh_token":7}"#,
            br#"[]"#,
            b"not json",
        ] {
            let err = parse_token_response("h", bad, "iss", 0).unwrap_err();
            assert!(matches!(err, OAuthError::InvalidResponse { .. }), "{}", String::from_utf8_lossy(bad));
        }
        for short in [
            r#"{"access_token":"at-0001","token_type":"Bearer"}"#,
            r#"{"access_token":"at-00001","token_type":"Bearer","refresh_token":"rt-0001"}"#,
        ] {
            assert!(parse_token_response("h", short.as_bytes(), "iss", 0).is_err(), "{short}");
        }
        // The limits, as numbers.
        let sized = |access: usize, scope: usize| {
            format!(r#"{{"access_token":"{}","token_type":"Bearer","scope":"{}"}}"#, "a".repeat(access), "s".repeat(scope))
        };
        assert!(parse_token_response("h", sized(16384, 8192).as_bytes(), "iss", 0).is_ok());
        assert!(parse_token_response("h", sized(16385, 8).as_bytes(), "iss", 0).is_err());
        assert!(parse_token_response("h", sized(8, 8193).as_bytes(), "iss", 0).is_err());
        let years = |n: i64| format!(r#"{{"access_token":"at-00001","token_type":"Bearer","expires_in":{}}}"#, n * 365 * 24 * 3600);
        assert!(parse_token_response("h", years(9).as_bytes(), "iss", 0).is_ok());
        assert!(parse_token_response("h", years(11).as_bytes(), "iss", 0).is_err());
        let big_scope = format!(r#"{{"access_token":"at-00001","token_type":"Bearer","scope":"{}"}}"#, "s".repeat(MAX_SCOPE_LEN + 1));
        assert!(parse_token_response("h", big_scope.as_bytes(), "iss", 0).is_err());
    }

    #[test]
    fn token_syntax_is_rfc_6749_appendix_a() {
        let body = |access: &str, refresh: &str| {
            serde_json::json!({"access_token": access, "refresh_token": refresh, "token_type": "Bearer"}).to_string()
        };
        assert!(parse_token_response("h", body("eyJ.a-b_c~d+e/f=", "r!#$%&'()*+,-./:;<=>?@[]^_`{|}~ x").as_bytes(), "iss", 0).is_ok());
        let (ok_access, ok_refresh) = ("at-00001", "rt-00001");
        for (access, refresh) in [
            ("has space 1", ok_refresh),
            ("tab\there-1", ok_refresh),
            ("ctl\u{1}-00001", ok_refresh),
            ("caf\u{e9}-00001", ok_refresh),
            (ok_access, "caf\u{e9}-00001"),
            (ok_access, "nl-00001\n"),
            (ok_access, ""),
            ("at-0001", ok_refresh),
            (ok_access, "rt-0001"),
        ] {
            let err = parse_token_response("h", body(access, refresh).as_bytes(), "iss", 0).unwrap_err();
            assert!(matches!(err, OAuthError::InvalidResponse { .. }), "{access:?} {refresh:?}");
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(parse_token_response("h", body(&long, ok_refresh).as_bytes(), "iss", 0).is_err());
        assert!(parse_token_response("h", body(&long[1..], ok_refresh).as_bytes(), "iss", 0).is_ok());
    }

    #[test]
    fn the_response_oauth2_sees_never_prints_a_token() {
        let fields = serde_json::json!({"access_token": "at-secret", "refresh_token": "rt-secret", "token_type": "Bearer"});
        let Value::Object(fields) = fields else { unreachable!() };
        let response = TokenResponse::from(fields);
        let shown = format!("{response:?}");
        assert!(!shown.contains("at-secret") && !shown.contains("rt-secret"), "{shown}");
        assert_eq!(shown, r#"TokenResponse { fields: ["access_token", "refresh_token", "token_type"] }"#);
        assert_eq!(oauth2::TokenResponse::access_token(&response).secret(), "at-secret");
    }

    #[test]
    fn each_refusal_says_what_is_wrong() {
        for (body, why) in [
            (r#"{"token_type":"Bearer"}"#, "no usable access_token"),
            (r#"{"access_token":"","token_type":"Bearer"}"#, "no usable access_token"),
            (r#"{"access_token":7,"token_type":"Bearer"}"#, "no usable access_token"),
            (r#"{"access_token":"has a space","token_type":"Bearer"}"#, "access_token is not 8 to 16384 visible ASCII characters"),
            (r#"{"access_token":"at-00001","token_type":"mac"}"#, "token_type is not Bearer"),
            (r#"{"access_token":"at-00001","token_type":7}"#, "no token_type"),
            (r#"{"access_token":"at-00001"}"#, "no token_type"),
            (r#"{"access_token":"at-00001","token_type":"Bearer","refresh_token":"caf\u00e9-00001"}"#, "refresh_token is not 8 to 16384"),
            (r#"{"access_token":"at-00001","token_type":"Bearer","refresh_token":7}"#, "refresh_token is not a string"),
        ] {
            match parse_token_response("h", body.as_bytes(), "iss", 0) {
                Err(OAuthError::InvalidResponse { why: said, .. }) => assert!(said.contains(why), "{body}: {said}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let accepted = parse_token_response("h", br#"{"access_token":"at-00001","token_type":"BEARER","refresh_token":null}"#, "iss", 0);
        assert!(accepted.is_ok_and(|t| t.refresh_token.is_none()));
    }

    #[test]
    fn what_oauth2_reads_of_a_token_response() {
        use oauth2::TokenResponse as _;
        let fields =
            serde_json::json!({"access_token": "at-secret", "refresh_token": "rt-secret", "token_type": "bEaReR", "expires_in": "60"});
        let response: TokenResponse = serde_json::from_value(fields.clone()).unwrap();
        assert_eq!(*response.token_type(), BasicTokenType::Bearer);
        assert_eq!(response.expires_in(), Some(Duration::from_secs(60)));
        assert_eq!(response.refresh_token().map(|t| t.secret().as_str()), Some("rt-secret"));
        assert!(response.scopes().is_none());
        assert_eq!(serde_json::to_value(&response).unwrap(), fields);
        let other: TokenResponse = serde_json::from_value(serde_json::json!({"access_token": "at-secret", "token_type": "mac"})).unwrap();
        assert_eq!(*other.token_type(), BasicTokenType::Extension("mac".into()));
        assert_eq!(other.expires_in(), None);
    }

    #[test]
    fn refresh_margin_fits_the_lifetime() {
        let tokens = |issued: Option<i64>, expires: Option<i64>| TokenSet {
            access_token: Secret::new("a"),
            refresh_token: None,
            expires_at: expires,
            scope: None,
            issuer: "i".into(),
            issued_at: issued,
            dpop_key: None,
        };
        // A 30-second token: refreshed in its last 3 seconds, not on every call.
        let short = tokens(Some(1000), Some(1030));
        assert_eq!(short.refresh_margin(), 3);
        assert!(!short.refresh_due(1026) && short.refresh_due(1027));
        // An hour: the last minute.
        let hour = tokens(Some(0), Some(3600));
        assert_eq!(hour.refresh_margin(), 60);
        assert!(!hour.refresh_due(3539) && hour.refresh_due(3540));
        // Unknown issue time (0.1.0 tokens): a minute; no expiry: never.
        assert_eq!(tokens(None, Some(100)).refresh_margin(), 60);
        assert!(!tokens(Some(0), None).refresh_due(i64::MAX / 2));
    }
}
