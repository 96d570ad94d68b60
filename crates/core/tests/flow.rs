//! The OAuth client and MCP client against the in-process fixture server.

use mcp_oauth_core::discovery::DiscoveryError;
use mcp_oauth_core::mcp::{self, Call, Era, InputRound, McpError, McpSession, Target, MODERN_PROTOCOL};
use mcp_oauth_core::net::{HttpClient, HttpRequest, NetConfig, NetError, NetPolicy};
use mcp_oauth_core::oauth::{self, ClientAuthMethod, ClientCredentials, ClientProfile, OAuthError, Pkce};
use mcp_oauth_core::secret::Secret;
use mcp_oauth_core::signin;
use mcp_oauth_fixture::{spawn, Behaviour};
use rmcp::model::ClientCapabilities;
use std::time::Duration;
use url::Url;

fn client() -> HttpClient {
    HttpClient::new(NetConfig {
        policy: NetPolicy { allow_http_loopback: true, allow_private_networks: false, allowed_hosts: vec![] },
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_response_bytes: 1024 * 1024,
    })
    .unwrap()
}

const REDIRECT: &str = "http://127.0.0.1:1/callback";

fn profile() -> ClientProfile {
    ClientProfile { client_name: "test".into(), client_uri: None, redirect_uri: REDIRECT.into() }
}

/// Runs the authorization step as a browser would, without following the
/// redirect back, and returns the callback URL.
async fn authorize(http: &HttpClient, url: &str) -> Url {
    let response = http.send(HttpRequest::get(Url::parse(url).unwrap())).await.unwrap();
    assert_eq!(response.status, 303, "authorize answered {}", response.status);
    Url::parse(response.header("location").unwrap()).unwrap()
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn whole_flow_discovery_registration_code_refresh_and_tools() {
    let fixture = spawn().await;
    let http = client();
    let server = Url::parse(&fixture.mcp_url()).unwrap();

    let found = signin::discover(&http, &server).await.unwrap();
    assert_eq!(found.resource, fixture.mcp_url());
    assert_eq!(found.auth_server.issuer, fixture.base_url);
    assert!(found.resource_metadata_url.unwrap().ends_with("/.well-known/oauth-protected-resource/mcp"));

    let (registration, secret) = oauth::register(&http, &found.auth_server, &profile()).await.unwrap();
    assert_eq!(registration.auth_method, ClientAuthMethod::None);
    assert_eq!(secret, None);

    let pkce = Pkce::new();
    let scope = oauth::choose_scope(None, None, None, found.auth_server.scopes_supported.as_deref());
    assert_eq!(scope.as_deref(), Some("offline_access"));
    let url =
        oauth::authorization_url(&found.auth_server, &registration.client_id, REDIRECT, &pkce, "st", scope.as_deref(), &found.resource)
            .unwrap();
    let callback = authorize(&http, &url).await;
    assert_eq!(param(&callback, "state").as_deref(), Some("st"));
    assert_eq!(fixture.stats().last_resource.as_deref(), Some(found.resource.as_str()));
    let code = param(&callback, "code").unwrap();

    let creds = ClientCredentials { client_id: &registration.client_id, secret: None, method: registration.auth_method, key: None };
    let tokens =
        oauth::exchange_code(&http, (&found.auth_server).into(), &creds, &code, &pkce.verifier, REDIRECT, &found.resource, None, 1000)
            .await
            .unwrap();
    assert_eq!(tokens.expires_at, Some(4600));
    assert_eq!(fixture.stats().last_resource.as_deref(), Some(found.resource.as_str()));

    // The code is single use.
    let again =
        oauth::exchange_code(&http, (&found.auth_server).into(), &creds, &code, &pkce.verifier, REDIRECT, &found.resource, None, 1000)
            .await;
    assert!(matches!(again, Err(OAuthError::Rejected { ref code, .. }) if code == "invalid_grant"), "{again:?}");

    // MCP with the token.
    let target = Target {
        url: &server,
        headers: &[],
        bearer: Some(&tokens.access_token),
        dpop: None,
        capabilities: &ClientCapabilities::default(),
        withheld: &[],
    };
    let mut session = McpSession::new();
    let tools = session.list_tools(&http, &target).await.unwrap();
    assert_eq!(tools.len(), 9);
    assert_eq!(session.era(), Some(&Era::Modern(MODERN_PROTOCOL.into())));
    let result: serde_json::Value = serde_json::from_str(
        session
            .call_tool(&http, &target, &mut Call::call_tool("add", args(serde_json::json!({"a": 2, "b": 3})), InputRound::default()))
            .await
            .unwrap()
            .get(),
    )
    .unwrap();
    assert_eq!(result["structuredContent"]["sum"], 5.0);

    // Refresh with rotation: the old refresh token is dead afterwards.
    let fresh = oauth::refresh(&http, (&found.auth_server).into(), &creds, &tokens, &found.resource, 2000).await.unwrap();
    assert_ne!(fresh.access_token, tokens.access_token);
    assert_ne!(fresh.refresh_token, tokens.refresh_token);
    let replay = oauth::refresh(&http, (&found.auth_server).into(), &creds, &tokens, &found.resource, 2000).await;
    assert!(matches!(replay, Err(OAuthError::Rejected { ref code, .. }) if code == "invalid_grant"));
    assert_eq!(fixture.stats().refreshes, 2);

    // Without a token: 401 with the challenge.
    let anonymous =
        Target { url: &server, headers: &[], bearer: None, dpop: None, capabilities: &ClientCapabilities::default(), withheld: &[] };
    match McpSession::new().list_tools(&http, &anonymous).await {
        Err(McpError::Unauthorized { challenge: Some(c), .. }) => assert!(c.resource_metadata.is_some()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tools_come_from_every_page() {
    let fixture = spawn().await;
    fixture.set(Behaviour { page_size: Some(2), ..Default::default() });
    let http = client();
    let server = Url::parse(&fixture.mcp_url()).unwrap();
    let found = signin::discover(&http, &server).await.unwrap();
    let (reg, _) = oauth::register(&http, &found.auth_server, &profile()).await.unwrap();
    let pkce = Pkce::new();
    let url = oauth::authorization_url(&found.auth_server, &reg.client_id, REDIRECT, &pkce, "s", None, &found.resource).unwrap();
    let code = param(&authorize(&http, &url).await, "code").unwrap();
    let creds = ClientCredentials { client_id: &reg.client_id, secret: None, method: reg.auth_method, key: None };
    let tokens =
        oauth::exchange_code(&http, (&found.auth_server).into(), &creds, &code, &pkce.verifier, REDIRECT, &found.resource, None, 0)
            .await
            .unwrap();
    let target = Target {
        url: &server,
        headers: &[],
        bearer: Some(&tokens.access_token),
        dpop: None,
        capabilities: &ClientCapabilities::default(),
        withheld: &[],
    };
    let names: Vec<String> =
        McpSession::new().list_tools(&http, &target).await.unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["echo", "add", "fail", "big", "region_echo", "confirm", "extra_1", "extra_2", "extra_3"]);
}

/// No capabilities declared.
static NO_CAPABILITIES: std::sync::LazyLock<ClientCapabilities> = std::sync::LazyLock::new(ClientCapabilities::default);

fn bearer_target<'a>(server: &'a Url, token: &'a Secret, capabilities: &'a ClientCapabilities) -> Target<'a> {
    Target { url: server, headers: &[], bearer: Some(token), dpop: None, capabilities, withheld: &[] }
}

/// A fixture, a client signed in to it, its token and MCP endpoint.
async fn signed_in_fixture() -> (mcp_oauth_fixture::Fixture, HttpClient, Secret, Url) {
    let fixture = spawn().await;
    let http = client();
    let token = signed_in(&fixture, &http).await;
    let server = Url::parse(&fixture.mcp_url()).unwrap();
    (fixture, http, token, server)
}

/// Signs in against the fixture and returns a target's bearer token.
async fn signed_in(fixture: &mcp_oauth_fixture::Fixture, http: &HttpClient) -> Secret {
    let server = Url::parse(&fixture.mcp_url()).unwrap();
    let found = signin::discover(http, &server).await.unwrap();
    let (reg, _) = oauth::register(http, &found.auth_server, &profile()).await.unwrap();
    let pkce = Pkce::new();
    let url = oauth::authorization_url(&found.auth_server, &reg.client_id, REDIRECT, &pkce, "s", None, &found.resource).unwrap();
    let code = param(&authorize(http, &url).await, "code").unwrap();
    let creds = ClientCredentials { client_id: &reg.client_id, secret: None, method: reg.auth_method, key: None };
    oauth::exchange_code(http, (&found.auth_server).into(), &creds, &code, &pkce.verifier, REDIRECT, &found.resource, None, 0)
        .await
        .unwrap()
        .access_token
}

#[tokio::test]
async fn modern_first_with_mirrored_headers_then_one_request_per_call() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    // Mcp-Param-Region is required by the server; the client learns it from
    // the tool list it reads before its first call.
    let before = fixture.stats().mcp_requests;
    let result: serde_json::Value = serde_json::from_str(
        session
            .call_tool(
                &http,
                &target,
                &mut Call::call_tool("region_echo", args(serde_json::json!({"region": "eu-west"})), InputRound::default()),
            )
            .await
            .unwrap()
            .get(),
    )
    .unwrap();
    assert_eq!(result["content"][0]["text"], "eu-west");
    assert_eq!(fixture.stats().mcp_requests - before, 2, "list, call");
    // Warm: one round trip per call, no handshake ever.
    let before = fixture.stats().mcp_requests;
    session
        .call_tool(
            &http,
            &target,
            &mut Call::call_tool("region_echo", args(serde_json::json!({"region": "Zürich"})), InputRound::default()),
        )
        .await
        .unwrap();
    session
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "hi"})), InputRound::default()))
        .await
        .unwrap();
    assert_eq!(fixture.stats().mcp_requests - before, 2);
    assert_eq!(fixture.stats().initializes, 0);
    // What a client knew is out of date (the tool's annotation changed
    // since it listed them): the server's -32020 has the tools listed
    // again, and the call made once more.
    fixture.set(Behaviour { region_header: Some("Zone".into()), ..Default::default() });
    let before = fixture.stats().mcp_requests;
    let result = session
        .call_tool(&http, &target, &mut Call::call_tool("region_echo", args(serde_json::json!({"region": "ap"})), InputRound::default()))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "ap");
    assert_eq!(fixture.stats().mcp_requests - before, 3, "call, list, call");
}

#[tokio::test]
async fn output_schemas_are_shared_with_new_sessions_unless_too_large() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let add = || Call::call_tool("add", args(serde_json::json!({"a": 1, "b": 2})), InputRound::default());
    for (padding, lists_in_new_session) in [(None, 0), (Some(70_000), 1)] {
        fixture.set(Behaviour { output_schema_padding: padding, ..Default::default() });
        let mut first = McpSession::new();
        first.call_tool(&http, &target, &mut add()).await.unwrap();
        let learned = first.learned().clone();
        assert_eq!(learned.output_schemas_unshared, padding.is_some());
        assert_eq!(learned.output_schemas.contains_key("add"), padding.is_none());
        // A new backend starts from what the row shares; its results are
        // checked all the same (here, a result breaking the schema).
        fixture.set(Behaviour {
            output_schema_padding: padding,
            structured_override: Some(serde_json::json!({"sum": "three"})),
            ..Default::default()
        });
        let lists = fixture.stats().tools_lists;
        let mut next = McpSession::from_learned(learned, 0);
        let refused = next.call_tool(&http, &target, &mut add()).await.unwrap_err();
        assert!(matches!(&refused, McpError::OutputMismatch { mismatch, .. } if mismatch.path == "/sum"), "{refused:?}");
        assert_eq!(fixture.stats().tools_lists - lists, lists_in_new_session);
    }
}

#[tokio::test]
async fn capabilities_declared_anew_reach_the_server_with_the_next_request() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let mut session = McpSession::new();
    session.list_tools(&http, &bearer_target(&server, &token, &NO_CAPABILITIES)).await.unwrap();
    assert_eq!(fixture.stats().last_capabilities, Some(serde_json::json!({})));
    let asking: ClientCapabilities = serde_json::from_value(serde_json::json!({"elicitation": {"form": {}}})).unwrap();
    session.list_tools(&http, &bearer_target(&server, &token, &asking)).await.unwrap();
    assert_eq!(fixture.stats().last_capabilities, Some(serde_json::json!({"elicitation": {"form": {}}})));
}

#[tokio::test]
async fn a_server_that_agrees_to_a_revision_this_client_does_not_speak_is_refused() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    fixture.set(Behaviour { legacy_only: true, versions: Some(vec!["2024-11-05".into()]), ..Default::default() });
    match McpSession::new().list_tools(&http, &bearer_target(&server, &token, &NO_CAPABILITIES)).await {
        Err(McpError::Protocol { why, .. }) => assert!(why.contains("\"2024-11-05\", which this client does not"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_question_on_the_standalone_stream_is_heard_after_a_409_for_the_last_one() {
    // A session-based server that asks on the session's standalone stream and
    // allows one at a time (as the TypeScript SDK): a listing leaves one the
    // server still counts when the call asks for its own.
    let (fixture, http, token, server) = signed_in_fixture().await;
    fixture.set(Behaviour { legacy_only: true, ask_on_standalone: true, ..Default::default() });
    let asking: ClientCapabilities = serde_json::from_value(serde_json::json!({"elicitation": {"form": {}}})).unwrap();
    let target = bearer_target(&server, &token, &asking);
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    let answers: rmcp::model::InputResponses =
        [("elicitation/create".to_owned(), serde_json::json!({"action": "accept", "content": {"confirmed": true}}))].into_iter().collect();
    let done = session
        .call_tool(
            &http,
            &target,
            &mut Call::call_tool("confirm", args(serde_json::json!({})), InputRound { responses: Some(answers), request_state: None }),
        )
        .await
        .unwrap();
    assert_eq!(text_of(&done), r#"confirmed: {"confirmed":true,"note":"none"}"#);
    let stats = fixture.stats();
    assert!(stats.standalone_conflicts >= 1, "the call's stream was refused once at least: {}", stats.standalone_conflicts);
    assert_eq!(stats.standalone_streams, 2);
}

#[tokio::test]
async fn a_session_based_server_that_refuses_2026_07_28_with_a_json_rpc_error_gets_initialize() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    fixture.set(Behaviour { legacy_only: true, legacy_refusal_json: true, ..Default::default() });
    let mut session = McpSession::new();
    assert_eq!(session.list_tools(&http, &bearer_target(&server, &token, &NO_CAPABILITIES)).await.unwrap().len(), 9);
    assert!(matches!(session.era(), Some(Era::Legacy { session_id: Some(_), .. })));
    assert_eq!(fixture.stats().initializes, 1);
}

#[tokio::test]
async fn a_session_dropped_while_a_call_streams_is_reported_as_such() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    fixture.set(Behaviour { legacy_only: true, ..Default::default() });
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    let dead = session.learned().session_id().map(str::to_owned);
    fixture.set(Behaviour {
        legacy_only: true,
        sse_resume: true,
        sse_retry_ms: Some(20),
        drop_session_mid_stream: true,
        ..Default::default()
    });
    match session
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "x"})), InputRound::default()))
        .await
    {
        Err(McpError::SessionEnded { mid_request: true, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(session.take_ended(), vec![dead]);
    assert_eq!(fixture.stats().tool_calls, 1);
    // Without a session, a refused resumption is no session's end.
    fixture.set(Behaviour { sse_resume: true, sse_retry_ms: Some(20), ..Default::default() });
    let mut modern = McpSession::new();
    modern.list_tools(&http, &target).await.unwrap();
    fixture.set(Behaviour { sse_resume: true, sse_retry_ms: Some(20), drop_parked: true, ..Default::default() });
    match modern
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "x"})), InputRound::default()))
        .await
    {
        Err(McpError::Protocol { why, .. }) => assert!(why.contains("resuming it was refused (HTTP 404)"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_refuses_a_first_request_to_see_a_retry_gets_it_in_2026_07_28() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    fixture.set(Behaviour { refuse_version_once: true, ..Default::default() });
    let mut session = McpSession::new();
    assert_eq!(session.list_tools(&http, &bearer_target(&server, &token, &NO_CAPABILITIES)).await.unwrap().len(), 9);
    assert_eq!(session.era(), Some(&Era::Modern(MODERN_PROTOCOL.into())));
    assert_eq!(fixture.stats().initializes, 0);
}

#[tokio::test]
async fn server_errors_are_never_sent_again_and_refusals_not_guessed_at() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    // A server this session knows fails once: a server error says nothing
    // of the protocol, and the request may have been carried out, so it is
    // not sent again.
    fixture.set(Behaviour { mcp_failures: 1, ..Default::default() });
    let before = fixture.stats().mcp_requests;
    match session.list_tools(&http, &target).await {
        Err(McpError::Http { status: 500, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(fixture.stats().mcp_requests - before, 1);
    assert_eq!(session.list_tools(&http, &target).await.unwrap().len(), 9);
    // A server it does not know yet that fails: one request, no initialize.
    fixture.set(Behaviour { mcp_failures: 5, ..Default::default() });
    let before = fixture.stats().mcp_requests;
    match McpSession::new().list_tools(&http, &target).await {
        Err(McpError::Http { status: 500, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(fixture.stats().mcp_requests - before, 1);
    // A token refused: one request, not a second guess at the protocol.
    fixture.set(Behaviour::default());
    let wrong = Secret::new("at-not-issued-0001");
    let before = fixture.stats().mcp_requests;
    match session.list_tools(&http, &bearer_target(&server, &wrong, &NO_CAPABILITIES)).await {
        Err(McpError::Unauthorized { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(fixture.stats().mcp_requests - before, 1);
}

#[tokio::test]
async fn a_new_session_is_initialized_at_the_version_agreed_before() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    fixture.set(Behaviour { legacy_only: true, versions: Some(vec!["2025-06-18".into()]), ..Default::default() });
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    fixture.set(Behaviour { legacy_only: true, versions: Some(vec!["2025-06-18".into()]), expire_sessions: true, ..Default::default() });
    assert!(matches!(session.list_tools(&http, &target).await, Err(McpError::SessionEnded { .. })));
    session.list_tools(&http, &target).await.unwrap();
    assert_eq!(fixture.stats().last_initialize_version.as_deref(), Some("2025-06-18"));
}

/// A session-based server asks `method` in the middle of a tool call; the
/// client declares `capabilities` and answers with `answers`.
async fn asked(
    method: &str,
    capabilities: serde_json::Value,
    answers: serde_json::Value,
    b: Behaviour,
) -> (String, Vec<serde_json::Value>) {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let capabilities: ClientCapabilities = serde_json::from_value(capabilities).unwrap();
    let target = bearer_target(&server, &token, &capabilities);
    fixture.set(Behaviour { legacy_only: true, ask_always: true, ask_method: Some(method.into()), ..b });
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    let answers: rmcp::model::InputResponses = serde_json::from_value(answers).unwrap();
    let round = InputRound { responses: Some(answers), request_state: None };
    let done = session.call_tool(&http, &target, &mut Call::call_tool("confirm", args(serde_json::json!({})), round)).await.unwrap();
    (text_of(&done), fixture.stats().answers)
}

#[tokio::test]
async fn a_server_s_ping_is_answered_and_sampling_and_roots_go_to_the_application() {
    let (text, _) = asked("ping", serde_json::json!({}), serde_json::json!({}), Behaviour::default()).await;
    assert_eq!(text, "answered: {}");
    let sampled = serde_json::json!({"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"});
    let (text, answers) = asked(
        "sampling/createMessage",
        serde_json::json!({"sampling": {}}),
        serde_json::json!({"sampling/createMessage": sampled}),
        Behaviour::default(),
    )
    .await;
    assert!(text.starts_with("answered: "), "{text}");
    assert_eq!(answers, vec![sampled]);
    // On the session's standalone stream, with only roots declared.
    let roots = serde_json::json!({"roots": [{"uri": "file:///work"}]});
    let (text, answers) = asked(
        "roots/list",
        serde_json::json!({"roots": {}}),
        serde_json::json!({"roots/list": roots}),
        Behaviour { ask_on_standalone: true, ..Default::default() },
    )
    .await;
    assert!(text.starts_with("answered: "), "{text}");
    assert_eq!(answers, vec![roots]);
}

#[tokio::test]
async fn a_response_to_another_request_is_not_taken_for_the_call_s() {
    let (text, _) =
        asked("ping", serde_json::json!({}), serde_json::json!({}), Behaviour { foreign_first: true, ..Default::default() }).await;
    assert_eq!(text, "answered: {}");
    // In a JSON batch, too.
    let (fixture, http, token, server) = signed_in_fixture().await;
    fixture.set(Behaviour { foreign_first: true, ..Default::default() });
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let done = McpSession::new()
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "mine"})), InputRound::default()))
        .await
        .unwrap();
    assert_eq!(text_of(&done), "mine");
}

#[tokio::test]
async fn a_resumption_answered_with_json_is_refused() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    fixture.set(Behaviour { sse_resume: true, sse_retry_ms: Some(20), resume_json: true, ..Default::default() });
    match session
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "x"})), InputRound::default()))
        .await
    {
        Err(McpError::Protocol { why, .. }) => assert!(why.contains("resuming it was refused (HTTP 200)"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_tool_error_is_not_retried_and_only_annotated_tools_keep_header_params() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    let annotated: Vec<&String> = session.learned().header_params.keys().collect();
    assert_eq!(annotated, vec!["region_echo"]);
    let (lists, calls) = (fixture.stats().tools_lists, fixture.stats().tool_calls);
    match session.call_tool(&http, &target, &mut Call::call_tool("nope", args(serde_json::json!({})), InputRound::default())).await {
        Err(McpError::Rpc { code: -32602, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!((fixture.stats().tools_lists - lists, fixture.stats().tool_calls - calls), (0, 1));
}

#[tokio::test]
async fn legacy_servers_get_a_session_and_a_new_one_when_it_expires() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    fixture.set(Behaviour { legacy_only: true, sse: true, ..Default::default() });
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    assert_eq!(session.list_tools(&http, &target).await.unwrap().len(), 9);
    assert!(matches!(session.era(), Some(Era::Legacy { session_id: Some(_), .. })));
    assert_eq!(fixture.stats().initializes, 1);
    // Warm: one round trip.
    let before = fixture.stats().mcp_requests;
    session
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "sse"})), InputRound::default()))
        .await
        .unwrap();
    assert_eq!(fixture.stats().mcp_requests - before, 1);
    // The server forgets the session: 404, reported and forgotten...
    let dead = session.learned().session_id().map(str::to_owned);
    fixture.set(Behaviour { legacy_only: true, expire_sessions: true, ..Default::default() });
    match session
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "x"})), InputRound::default()))
        .await
    {
        Err(McpError::SessionEnded { mid_request: false, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(session.take_ended(), vec![dead]);
    assert_eq!(session.learned().session_id(), None);
    // ...and the call made again goes through, in a new session.
    let result: serde_json::Value = serde_json::from_str(
        session
            .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "again"})), InputRound::default()))
            .await
            .unwrap()
            .get(),
    )
    .unwrap();
    assert_eq!(result["content"][0]["text"], "again");
    assert_eq!(fixture.stats().initializes, 2);
}

#[tokio::test]
async fn hostile_metadata_is_refused() {
    let http = client();
    for (behaviour, expected) in [
        (Behaviour { wrong_issuer: true, ..Default::default() }, "issuer"),
        (Behaviour { no_s256: true, ..Default::default() }, "S256"),
        (Behaviour { wrong_resource: true, ..Default::default() }, "not for this server"),
    ] {
        let fixture = spawn().await;
        fixture.set(behaviour);
        let server = Url::parse(&fixture.mcp_url()).unwrap();
        match signin::discover(&http, &server).await {
            Err(DiscoveryError::Invalid(message)) => assert!(message.contains(expected), "{message}"),
            other => panic!("expected {expected}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn token_endpoint_errors_and_client_auth() {
    let fixture = spawn().await;
    let http = client();
    let server = Url::parse(&fixture.mcp_url()).unwrap();
    let mut found = signin::discover(&http, &server).await.unwrap();
    // A server that only takes client_secret_basic: register for it and use it.
    found.auth_server.token_endpoint_auth_methods_supported = Some(vec!["client_secret_basic".into()]);
    let (reg, secret) = oauth::register(&http, &found.auth_server, &profile()).await.unwrap();
    assert_eq!(reg.auth_method, ClientAuthMethod::ClientSecretBasic);
    let secret = secret.expect("a secret for a confidential client");
    let pkce = Pkce::new();
    let url = oauth::authorization_url(&found.auth_server, &reg.client_id, REDIRECT, &pkce, "s", None, &found.resource).unwrap();
    let code = param(&authorize(&http, &url).await, "code").unwrap();

    let wrong_secret = Secret::new("wrong");
    let wrong = ClientCredentials {
        client_id: &reg.client_id,
        secret: Some(&wrong_secret),
        method: ClientAuthMethod::ClientSecretBasic,
        key: None,
    };
    let err = oauth::exchange_code(&http, (&found.auth_server).into(), &wrong, &code, &pkce.verifier, REDIRECT, &found.resource, None, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::Rejected { ref code, status: 401, .. } if code == "invalid_client"), "{err:?}");

    let right =
        ClientCredentials { client_id: &reg.client_id, secret: Some(&secret), method: ClientAuthMethod::ClientSecretBasic, key: None };
    oauth::exchange_code(&http, (&found.auth_server).into(), &right, &code, &pkce.verifier, REDIRECT, &found.resource, None, 0)
        .await
        .unwrap();
    assert_eq!(fixture.stats().last_client_auth.as_deref(), Some("client_secret_basic"));

    // A wrong verifier is refused by the server (PKCE really is checked).
    let pkce2 = Pkce::new();
    let url = oauth::authorization_url(&found.auth_server, &reg.client_id, REDIRECT, &pkce2, "s", None, &found.resource).unwrap();
    let code = param(&authorize(&http, &url).await, "code").unwrap();
    let err =
        oauth::exchange_code(&http, (&found.auth_server).into(), &right, &code, &Pkce::new().verifier, REDIRECT, &found.resource, None, 0)
            .await
            .unwrap_err();
    assert!(matches!(err, OAuthError::Rejected { ref code, .. } if code == "invalid_grant"));
}

#[tokio::test]
async fn slow_servers_time_out_and_big_bodies_are_cut() {
    let fixture = spawn().await;
    fixture.set(Behaviour { mcp_delay_ms: 3000, ..Default::default() });
    let http = HttpClient::new(NetConfig {
        policy: NetPolicy { allow_http_loopback: true, allow_private_networks: false, allowed_hosts: vec![] },
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(300),
        max_response_bytes: 1024,
    })
    .unwrap();
    let server = Url::parse(&fixture.mcp_url()).unwrap();
    let started = std::time::Instant::now();
    let err = mcp::probe(&http, &server).await.unwrap_err();
    assert!(matches!(err, NetError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    fixture.set(Behaviour::default());
    let metadata = Url::parse(&format!("{}/.well-known/oauth-authorization-server", fixture.base_url)).unwrap();
    let tiny = HttpClient::new(NetConfig { max_response_bytes: 64, ..http.config().clone() }).unwrap();
    let err = tiny.send(HttpRequest::get(metadata)).await.unwrap_err();
    assert!(matches!(err, NetError::TooLarge { limit: 64, .. }), "{err:?}");
}

#[tokio::test]
async fn policy_applies_to_every_request() {
    let fixture = spawn().await;
    let strict = HttpClient::new(NetConfig::default()).unwrap();
    let server = Url::parse(&fixture.mcp_url()).unwrap();
    let err = signin::discover(&strict, &server).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Net(NetError::Blocked { .. })), "{err:?}");
}

#[tokio::test]
async fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
    let fixture = spawn().await;
    let http = client();
    let server = Url::parse(&fixture.mcp_url()).unwrap();
    let found = signin::discover(&http, &server).await.unwrap();
    let (reg, _) = oauth::register(&http, &found.auth_server, &profile()).await.unwrap();
    let pkce = Pkce::new();
    let url =
        oauth::authorization_url(&found.auth_server, &reg.client_id, REDIRECT, &pkce, "s", Some("tools:read"), &found.resource).unwrap();
    let code = param(&authorize(&http, &url).await, "code").unwrap();
    let creds = ClientCredentials { client_id: &reg.client_id, secret: None, method: reg.auth_method, key: None };
    let tokens =
        oauth::exchange_code(&http, (&found.auth_server).into(), &creds, &code, &pkce.verifier, REDIRECT, &found.resource, None, 0)
            .await
            .unwrap();
    fixture.set(Behaviour { no_rotation: true, ..Default::default() });
    let fresh = oauth::refresh(&http, (&found.auth_server).into(), &creds, &tokens, &found.resource, 10).await.unwrap();
    assert_ne!(fresh.access_token, tokens.access_token);
    assert_eq!(fresh.refresh_token, tokens.refresh_token, "the old refresh token is kept");
    assert_eq!(fresh.scope.as_deref(), Some("tools:read"));
    // ... and still works.
    oauth::refresh(&http, (&found.auth_server).into(), &creds, &fresh, &found.resource, 20).await.unwrap();
    assert_eq!(fixture.stats().last_resource.as_deref(), Some(found.resource.as_str()));
}

fn args(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().cloned().expect("an object")
}

fn text_of(raw: &serde_json::value::RawValue) -> String {
    let result: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
    result["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

fn eliciting() -> ClientCapabilities {
    serde_json::from_value(serde_json::json!({"elicitation": {"form": {}}})).unwrap()
}

#[tokio::test]
async fn a_version_refused_with_32022_is_negotiated_once_and_remembered() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    // A server that knows 2026-07-28 exists but speaks only 2025-06-18, and
    // says so with HTTP 200.
    fixture.set(Behaviour { versions: Some(vec!["2025-06-18".into()]), version_error_ok: true, ..Default::default() });
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    let result = session
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "agreed"})), InputRound::default()))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "agreed");
    assert!(matches!(session.era(), Some(Era::Legacy { version, .. }) if version == "2025-06-18"), "{:?}", session.era());
    let stats = fixture.stats();
    assert_eq!((stats.modern_requests, stats.initializes), (1, 1));
    assert_eq!(stats.last_initialize_version.as_deref(), Some("2025-06-18"));
    // Another client starting from what was learned asks no question again.
    let mut other = McpSession::from_learned(session.learned().clone(), 0);
    other
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "again"})), InputRound::default()))
        .await
        .unwrap();
    assert_eq!(fixture.stats().modern_requests, 1);

    // Nothing in common: a clear error, no initialize attempted.
    fixture.set(Behaviour { versions: Some(vec!["2024-11-05".into()]), ..Default::default() });
    let before = fixture.stats().initializes;
    match McpSession::new().list_tools(&http, &target).await {
        Err(McpError::Protocol { why, .. }) => assert!(why.contains("no protocol version in common"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fixture.stats().initializes, before);
}

#[tokio::test]
async fn an_event_stream_closed_before_the_answer_is_resumed_with_last_event_id() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    fixture.set(Behaviour { sse_resume: true, sse_retry_ms: Some(200), ..Default::default() });
    let started = std::time::Instant::now();
    let result = session
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "resumed"})), InputRound::default()))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "resumed");
    assert!(started.elapsed() >= Duration::from_millis(200), "the retry delay was not waited");
    let stats = fixture.stats();
    assert_eq!(stats.resumptions, 1);
    assert!(stats.last_event_ids[0].ends_with("-0"), "{:?}", stats.last_event_ids);
}

#[tokio::test]
async fn resuming_stays_within_the_deadline() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    session.list_tools(&http, &target).await.unwrap();
    // The server asks for a 20 s wait before resuming; the call has 5 s.
    fixture.set(Behaviour { sse_resume: true, sse_retry_ms: Some(20_000), ..Default::default() });
    let started = std::time::Instant::now();
    match session
        .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": "x"})), InputRound::default()))
        .await
    {
        Err(McpError::Net(NetError::Timeout { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(7), "{:?}", started.elapsed());
    assert_eq!(fixture.stats().resumptions, 0);
}

#[tokio::test]
async fn notifications_are_skipped_and_an_open_stream_is_left_at_the_answer() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    // The stream stays open a minute after the answer; the client's 5 s
    // deadline would fail the call if it waited for the end.
    fixture.set(Behaviour { sse_open: true, ..Default::default() });
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    let mut session = McpSession::new();
    for text in ["one", "two"] {
        let result = session
            .call_tool(&http, &target, &mut Call::call_tool("echo", args(serde_json::json!({"text": text})), InputRound::default()))
            .await
            .unwrap();
        assert_eq!(text_of(&result), text);
    }
}

#[tokio::test]
async fn input_required_results_are_answered_by_repeating_the_call() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    let none = ClientCapabilities::default();
    let plain = bearer_target(&server, &token, &none);
    let mut session = McpSession::new();
    // Without the elicitation capability the server does not ask.
    let refused = session
        .call_tool(&http, &plain, &mut Call::call_tool("confirm", args(serde_json::json!({})), InputRound::default()))
        .await
        .unwrap();
    assert!(text_of(&refused).contains("did not declare elicitation"));
    assert_eq!(fixture.stats().last_capabilities, Some(serde_json::json!({})));

    let caps = eliciting();
    let target = bearer_target(&server, &token, &caps);
    let first: serde_json::Value = serde_json::from_str(
        session
            .call_tool(&http, &target, &mut Call::call_tool("confirm", args(serde_json::json!({})), InputRound::default()))
            .await
            .unwrap()
            .get(),
    )
    .unwrap();
    assert_eq!(first["resultType"], "input_required");
    assert_eq!(first["inputRequests"]["confirm"]["method"], "elicitation/create");
    let state = first["requestState"].as_str().unwrap().to_owned();
    let answers: rmcp::model::InputResponses =
        [("confirm".to_owned(), serde_json::json!({"action": "accept", "content": {"confirmed": true}}))].into_iter().collect();
    let round = InputRound { responses: Some(answers), request_state: Some(state) };
    let done =
        session.call_tool(&http, &target, &mut Call::call_tool("confirm", args(serde_json::json!({})), round.clone())).await.unwrap();
    assert_eq!(text_of(&done), r#"confirmed: {"confirmed":true}"#);
    // A requestState is single use at this server: the error comes through.
    match session.call_tool(&http, &target, &mut Call::call_tool("confirm", args(serde_json::json!({})), round)).await {
        Err(McpError::Rpc { code: -32602, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_session_based_servers_question_mid_call_goes_to_the_application() {
    let (fixture, http, token, server) = signed_in_fixture().await;
    fixture.set(Behaviour { legacy_only: true, ..Default::default() });
    let caps = eliciting();
    let target = bearer_target(&server, &token, &caps);
    let mut session = McpSession::new();
    // No answer given: the server's question comes back as an
    // input-required result keyed by its method, and the server is told
    // the question was cancelled.
    let first: serde_json::Value = serde_json::from_str(
        session
            .call_tool(&http, &target, &mut Call::call_tool("confirm", args(serde_json::json!({})), InputRound::default()))
            .await
            .unwrap()
            .get(),
    )
    .unwrap();
    assert_eq!(first["resultType"], "input_required");
    assert_eq!(first["inputRequests"]["elicitation/create"]["params"]["message"], "Please confirm to continue");
    // The answer, given on the repeated call, gets the schema's defaults.
    let answers: rmcp::model::InputResponses =
        [("elicitation/create".to_owned(), serde_json::json!({"action": "accept", "content": {"confirmed": true}}))].into_iter().collect();
    let done = session
        .call_tool(
            &http,
            &target,
            &mut Call::call_tool("confirm", args(serde_json::json!({})), InputRound { responses: Some(answers), request_state: None }),
        )
        .await
        .unwrap();
    assert_eq!(text_of(&done), r#"confirmed: {"confirmed":true,"note":"none"}"#);
    let stats = fixture.stats();
    assert_eq!(stats.answers.len(), 2);
    assert_eq!(stats.answers[0], serde_json::json!({"action": "cancel"}));
    assert_eq!(stats.initializes, 1);

    // Declaring other capabilities starts a new session that carries them;
    // a server that asks for what was not declared gets -32601.
    let none = ClientCapabilities::default();
    let plain = bearer_target(&server, &token, &none);
    fixture.set(Behaviour { legacy_only: true, ask_always: true, ..Default::default() });
    let refused = session
        .call_tool(&http, &plain, &mut Call::call_tool("confirm", args(serde_json::json!({})), InputRound::default()))
        .await
        .unwrap();
    assert!(text_of(&refused).contains("-32601"), "{}", text_of(&refused));
    assert!(text_of(&refused).contains("did not declare the elicitation capability"), "{}", text_of(&refused));
    fixture.set(Behaviour { legacy_only: true, ..Default::default() });

    // The session for no capabilities (begun above) serves the next call.
    let refused = session
        .call_tool(&http, &plain, &mut Call::call_tool("confirm", args(serde_json::json!({})), InputRound::default()))
        .await
        .unwrap();
    assert!(text_of(&refused).contains("did not declare elicitation"));
    assert_eq!(fixture.stats().initializes, 2, "a new session when the capabilities changed, none after");
}

#[tokio::test]
async fn resources_and_prompts_across_pages() {
    use mcp_oauth_core::mcp::Listing;
    let (fixture, http, token, server) = signed_in_fixture().await;
    fixture.set(Behaviour { page_size: Some(1), ..Default::default() });
    let target = bearer_target(&server, &token, &NO_CAPABILITIES);
    for legacy in [false, true] {
        fixture.set(Behaviour { page_size: Some(1), legacy_only: legacy, ..Default::default() });
        let mut session = McpSession::new();
        let uris: Vec<String> =
            session.list(&http, &target, Listing::Resources).await.unwrap().iter().map(|r| r["uri"].as_str().unwrap().to_owned()).collect();
        assert_eq!(uris, ["fixture://greeting", "fixture://logo", "fixture://notes/été"]);
        let templates = session.list(&http, &target, Listing::ResourceTemplates).await.unwrap();
        assert_eq!(templates[0]["uriTemplate"], "fixture://notes/{name}");
        let prompts = session.list(&http, &target, Listing::Prompts).await.unwrap();
        assert_eq!(prompts.len(), 2);
        let read: serde_json::Value = serde_json::from_str(
            session.request(&http, &target, &mut Call::read_resource("fixture://notes/été", InputRound::default())).await.unwrap().get(),
        )
        .unwrap();
        assert_eq!(read["contents"][0]["text"], "note été");
        let prompt: serde_json::Value = serde_json::from_str(
            session
                .request(&http, &target, &mut Call::get_prompt("greet", args(serde_json::json!({"who": "Ada"})), InputRound::default()))
                .await
                .unwrap()
                .get(),
        )
        .unwrap();
        assert_eq!(prompt["messages"][0]["content"]["text"], "Say hello to Ada.");
        match session.request(&http, &target, &mut Call::read_resource("fixture://nothing", InputRound::default())).await {
            Err(McpError::Rpc { code: -32002, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
