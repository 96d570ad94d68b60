//! `WWW-Authenticate` (RFC 9110 §11.6.1) as far as OAuth needs it: the
//! Bearer challenge's `resource_metadata` (RFC 9728 §5.1), `scope` and
//! `error` (RFC 6750 §3).

/// Longest header value looked at; a longer one is ignored.
const MAX_HEADER_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The server offered the DPoP scheme (RFC 9449 §7.1), with or without
    /// Bearer: it takes DPoP-bound tokens.
    pub dpop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// token68 also allows '/' and trailing '='.
    fn token68(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(|b| is_tchar(b) || b == b'/') {
            self.i += 1;
        }
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.peek()?);
                    self.i += 1;
                }
                b => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }
    /// True when an auth-param (`token BWS "="`, not a token68's "==") starts here.
    fn at_param(&self) -> bool {
        let mut j = self.i;
        while self.s.get(j).copied().is_some_and(is_tchar) {
            j += 1;
        }
        if j == self.i {
            return false;
        }
        while matches!(self.s.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        self.s.get(j) == Some(&b'=') && self.s.get(j + 1) != Some(&b'=')
    }
}

fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut sc = Scanner { s: header.as_bytes(), i: 0 };
    let mut out = Vec::new();
    loop {
        sc.skip_ws_and_commas();
        let Some(scheme) = sc.token() else { break };
        let mut challenge = Challenge { scheme, params: Vec::new() };
        sc.skip_ws();
        if !sc.at_param() {
            // A token68 (or nothing) follows the scheme.
            let _ = sc.token68();
        }
        loop {
            sc.skip_ws();
            if !sc.at_param() {
                break;
            }
            let name = sc.token().unwrap_or_default().to_ascii_lowercase();
            sc.skip_ws();
            sc.i += 1; // '='
            sc.skip_ws();
            let value = sc.quoted().or_else(|| sc.token68()).unwrap_or_default();
            challenge.params.push((name, value));
            sc.skip_ws();
            if sc.peek() == Some(b',') {
                sc.i += 1;
                sc.skip_ws_and_commas();
                if !sc.at_param() {
                    break; // the next challenge
                }
            } else {
                break;
            }
        }
        out.push(challenge);
        // Anything unparseable: stop rather than guess.
        if sc.peek().is_some_and(|b| !matches!(b, b',' | b' ' | b'\t') && !is_tchar(b)) {
            break;
        }
    }
    out
}

/// The Bearer challenge among `headers` (all `WWW-Authenticate` values), if
/// any; else a DPoP one (RFC 9449 §7.1), whose parameters mean the same.
pub fn bearer<'a>(headers: impl IntoIterator<Item = &'a str> + Clone) -> Option<BearerChallenge> {
    let dpop = challenge_of(headers.clone(), "dpop");
    match challenge_of(headers, "bearer") {
        Some(bearer) => Some(BearerChallenge { dpop: dpop.is_some(), ..bearer }),
        None => dpop.map(|c| BearerChallenge { dpop: true, ..c }),
    }
}

/// The description a server gave when it refused a request's DPoP proof
/// (`error="invalid_dpop_proof"`, RFC 9449 §7.1) in a challenge of any
/// scheme: `Some(None)` when it gave none, `None` when it did not refuse
/// the proof. Read apart from [`bearer`], since a server may send a Bearer
/// challenge beside the DPoP one that carries the error (§7.2).
pub fn dpop_proof_refusal<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Option<String>> {
    headers.into_iter().filter(|h| h.len() <= MAX_HEADER_LEN).flat_map(parse_challenges).find_map(|challenge| {
        let get = |name: &str| challenge.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        (get("error").as_deref() == Some("invalid_dpop_proof")).then(|| get("error_description").filter(|d| !d.is_empty()))
    })
}

fn challenge_of<'a>(headers: impl IntoIterator<Item = &'a str>, scheme: &str) -> Option<BearerChallenge> {
    for header in headers {
        if header.len() > MAX_HEADER_LEN {
            continue;
        }
        for challenge in parse_challenges(header) {
            if !challenge.scheme.eq_ignore_ascii_case(scheme) {
                continue;
            }
            let get = |name: &str| challenge.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
            return Some(BearerChallenge {
                resource_metadata: get("resource_metadata"),
                scope: get("scope"),
                error: get("error"),
                error_description: get("error_description"),
                dpop: false,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_mcp_challenge() {
        let c = bearer([r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="files:read files:write""#]).unwrap();
        assert_eq!(c.resource_metadata.as_deref(), Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp"));
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
        assert_eq!(c.error, None);
    }

    #[test]
    fn parses_insufficient_scope() {
        let c = bearer([r#"Bearer error="insufficient_scope", scope="mcp:admin", resource_metadata="http://x/r", error_description="Scope \"upgrade\" will never succeed""#]).unwrap();
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(c.scope.as_deref(), Some("mcp:admin"));
        assert_eq!(c.error_description.as_deref(), Some("Scope \"upgrade\" will never succeed"));
    }

    #[test]
    fn a_dpop_challenge_serves_when_there_is_no_bearer_one() {
        let c = bearer([r#"DPoP error="use_dpop_nonce", resource_metadata="http://x/r""#]).unwrap();
        assert_eq!((c.error.as_deref(), c.resource_metadata.as_deref()), (Some("use_dpop_nonce"), Some("http://x/r")));
        assert!(c.dpop);
        let both = bearer([r#"DPoP algs="ES256", Bearer scope="a""#]).unwrap();
        assert_eq!(both.scope.as_deref(), Some("a"));
        assert!(both.dpop, "the server offers DPoP too");
        assert!(!bearer([r#"Bearer scope="a""#]).unwrap().dpop);
    }

    #[test]
    fn a_refused_proof_is_found_in_any_scheme() {
        // RFC 9449 §7.1's form, and express-oauth2-jwt-bearer's beside a Bearer challenge.
        let rfc = r#"DPoP error="invalid_dpop_proof", error_description="iat too old", algs="ES256""#;
        assert_eq!(dpop_proof_refusal([rfc]), Some(Some("iat too old".to_owned())));
        let beside = r#"Bearer realm="api", DPoP error="invalid_dpop_proof", algs="ES256 PS256""#;
        assert_eq!(dpop_proof_refusal([beside]), Some(None));
        assert_eq!(bearer([beside]).unwrap().error, None, "the Bearer challenge carries no error");
        assert_eq!(dpop_proof_refusal(["Basic realm=\"x\"", r#"Bearer error="invalid_dpop_proof""#]), Some(None));
        assert_eq!(dpop_proof_refusal([r#"DPoP error="invalid_token", algs="ES256""#]), None);
        assert_eq!(dpop_proof_refusal([r#"DPoP error="use_dpop_nonce""#]), None);
        assert_eq!(dpop_proof_refusal([""]), None);
    }

    #[test]
    fn finds_bearer_among_several_challenges_and_headers() {
        let c = bearer([r#"Basic realm="x", Bearer realm="api", error=invalid_token, Newauth abc"#]).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        let c = bearer(["Basic realm=\"x\"", "bEaReR scope=\"a\""]).unwrap();
        assert_eq!(c.scope.as_deref(), Some("a"));
        let c = bearer(["Negotiate abc==, Bearer scope=\"s\""]).unwrap();
        assert_eq!(c.scope.as_deref(), Some("s"));
    }

    #[test]
    fn tolerates_odd_input() {
        assert_eq!(bearer(["Bearer"]), Some(BearerChallenge::default()));
        assert_eq!(bearer(["Basic realm=\"x\""]), None);
        assert_eq!(bearer([""]), None);
        assert_eq!(bearer(["Bearer scope=\"unterminated"]), Some(BearerChallenge::default()));
        assert_eq!(bearer(["\u{1}\u{2}, ,,, ==="]), None);
        let long = format!("Bearer scope=\"{}\"", "a".repeat(10_000));
        assert_eq!(bearer([long.as_str()]), None);
        assert_eq!(bearer(["Bearer  SCOPE = \"x y\" ,  Resource_Metadata=\"u\""]).unwrap().resource_metadata.as_deref(), Some("u"));
    }
}
