//! Property tests of the parsers that read untrusted input: WWW-Authenticate,
//! metadata documents, token responses, state tokens, callback URLs, SSE.
//! Brief in the test command (PROPTEST_CASES, 256 by default); for a long
//! run: PROPTEST_CASES=200000 cargo test -p mcp_oauth_core --test fuzz

use mcp_oauth_core::discovery::auth_server_from_json;
use mcp_oauth_core::mcp::{header_value, sse_data};
use mcp_oauth_core::oauth::{parse_callback, parse_token_response, Callback};
use mcp_oauth_core::state::{self, StateClaims, StateSecret};
use mcp_oauth_core::www_authenticate::bearer;
use proptest::prelude::*;

const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789";

proptest! {
    #[test]
    fn www_authenticate_never_panics(header in ".{0,300}") {
        let _ = bearer([header.as_str()]);
    }

    #[test]
    fn www_authenticate_reads_what_it_is_given(scope in "[a-z:]{1,20}( [a-z:]{1,20}){0,3}", url in "https://[a-z]{1,10}\\.example/[a-z/]{0,20}") {
        let header = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{url}\"");
        let c = bearer([header.as_str()]).unwrap();
        prop_assert_eq!(c.scope.as_deref(), Some(scope.as_str()));
        prop_assert_eq!(c.resource_metadata.as_deref(), Some(url.as_str()));
    }

    #[test]
    fn metadata_documents_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = auth_server_from_json(&body, "https://as.example");
    }

    #[test]
    fn metadata_with_any_issuer_but_ours_is_refused(issuer in "https?://[a-z.]{1,20}(/[a-z]{0,8})?") {
        prop_assume!(issuer != "https://as.example");
        let doc = serde_json::json!({
            "issuer": issuer, "authorization_endpoint": "https://as.example/a", "token_endpoint": "https://as.example/t",
            "code_challenge_methods_supported": ["S256"]
        });
        prop_assert!(auth_server_from_json(doc.to_string().as_bytes(), "https://as.example").is_err());
    }

    #[test]
    fn token_responses_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400), now in any::<i64>()) {
        let _ = parse_token_response("h", &body, "iss", now);
    }

    #[test]
    fn state_tokens_never_panic_and_forgeries_fail(token in ".{0,600}") {
        let secret = StateSecret::new(Some(SECRET)).unwrap();
        prop_assert!(state::verify(&secret, &token, 1_800_000_000).is_err());
    }

    #[test]
    fn state_tokens_round_trip_and_any_change_is_refused(user in "[a-zA-Z0-9@._-]{1,64}", at in 0usize..200, ch in "[A-Za-z0-9_-]") {
        let secret = StateSecret::new(Some(SECRET)).unwrap();
        let claims = StateClaims::new(&user, uuid::Uuid::from_u128(7), 1_800_000_000, 300);
        let token = state::sign(&secret, &claims).unwrap();
        prop_assert_eq!(state::verify(&secret, &token, 1_800_000_001).unwrap(), claims);
        let at = at % token.len();
        let mut changed = token.clone();
        changed.replace_range(at..at + 1, &ch);
        prop_assume!(changed != token);
        prop_assert!(state::verify(&secret, &changed, 1_800_000_001).is_err());
    }

    #[test]
    fn callback_urls_never_panic(url in ".{0,300}") {
        let _ = parse_callback(&url);
    }

    #[test]
    fn callback_urls_are_read_exactly(code in "[A-Za-z0-9._~-]{1,40}", state in "[A-Za-z0-9._-]{1,60}") {
        let url = format!("https://app.example/cb?code={code}&state={state}&iss=https%3A%2F%2Fas.example");
        prop_assert_eq!(parse_callback(&url).unwrap(), Callback::Code { code, state, iss: Some("https://as.example".into()) });
    }

    #[test]
    fn sse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = sse_data(&body);
    }

    #[test]
    fn header_values_are_always_safe(value in ".{0,80}") {
        let encoded = header_value(&value);
        prop_assert!(encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        prop_assert!(reqwest::header::HeaderValue::from_str(&encoded).is_ok());
    }
}
