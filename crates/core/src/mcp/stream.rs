//! One exchange with a server: the POST of a request and everything until
//! its response. A JSON body is read whole; an event stream is read event
//! by event and left as soon as the response arrives (a server may keep it
//! open for other messages), skipping notifications and answering the
//! server's own requests on the way; a stream that ends before the response
//! is resumed with `GET` and `Last-Event-ID` after the server's `retry`
//! delay (SEP-1699). The caller bounds the whole exchange in time; the bytes
//! read over all its streams are held to the response-size cap.

use super::sse;
use super::{McpError, Target};
use crate::net::{display_host, HttpClient, HttpRequest, HttpResponse, NetError, OpenResponse};
use reqwest::header::{HeaderMap, HeaderName};
use rmcp::model::{ErrorCode, ErrorData, InputResponses};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::time::Duration;

/// Most times one exchange resumes its stream.
const MAX_RESUMES: usize = 5;
/// The wait before resuming when the server named none.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// The longest wait a server may ask for (the exchange's deadline bounds it too).
const MAX_RETRY: Duration = Duration::from_secs(30);
/// A standalone stream refused with 409 is asked for again this many
/// times, after this pause, doubled each time (about 0.8 s in all).
const STANDALONE_CONFLICT_RETRIES: u32 = 5;
const STANDALONE_CONFLICT_PAUSE: Duration = Duration::from_millis(25);

/// How an exchange ended.
pub(super) enum Outcome {
    /// The request's result, as the server wrote it.
    Result(Box<RawValue>),
    /// A JSON-RPC error and the HTTP status it came with; `answer` when it
    /// names our request's id (an answer to it, not a refusal of the HTTP
    /// request as a whole, which names none).
    Error { status: u16, error: ErrorData, answer: bool },
    /// A status other than 200 without a JSON-RPC error.
    Refused(HttpResponse),
    /// A session-based server asked, mid-request, a question only the
    /// application can answer: an input-required result for it to answer
    /// on a repeated request.
    InputRequired(Box<RawValue>),
}

impl Outcome {
    /// Whether this says the request's session is over, or that the request
    /// needs one (Streamable HTTP, "Session Management"): a 404 to a request
    /// that carried a session id, whatever its body (the TypeScript SDK's
    /// transport answers with JSON-RPC error -32001, the Python SDK's with
    /// -32600, Go's and rmcp's with plain text); or a 400 that speaks of a
    /// session (servers written as the TypeScript SDK's 1.x README shows
    /// answer an unknown session so, and every SDK a request without one)
    /// or of a server not initialized (the TypeScript SDK's transport, when
    /// it was started anew: it says so before looking at the session id).
    /// A 404 error naming our request's id answers the request itself (a
    /// method not found): the session was found.
    pub fn ends_session(&self, sent_session: bool) -> bool {
        let (status, text, answer) = match self {
            Outcome::Result(_) | Outcome::InputRequired(_) => return false,
            Outcome::Error { status, error, answer } => (*status, error.message.to_string(), *answer),
            Outcome::Refused(response) => (response.status, String::from_utf8_lossy(&response.body).into_owned(), false),
        };
        match status {
            404 => sent_session && !answer,
            400 => {
                let text = text.to_ascii_lowercase();
                text.contains("session") || text.contains("not initialized")
            }
            _ => false,
        }
    }
}

/// A JSON-RPC message, its result left as the server wrote it.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ErrorData>,
}

/// The capability a server's request needs from the client.
fn capability_of(method: &str) -> Option<&'static str> {
    match method {
        "elicitation/create" => Some("elicitation"),
        "sampling/createMessage" => Some("sampling"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// An accepted elicitation's content with the requested schema's defaults
/// filled in for fields the answer leaves out (SEP-1034).
fn with_defaults(answer: &Value, params: Option<&Value>) -> Value {
    let mut answer = answer.clone();
    if answer.get("action").and_then(Value::as_str) != Some("accept") {
        return answer;
    }
    let Some(properties) = params.and_then(|p| p.pointer("/requestedSchema/properties")).and_then(Value::as_object) else {
        return answer;
    };
    if !answer.get("content").is_some_and(Value::is_object) {
        answer["content"] = json!({});
    }
    let content = answer["content"].as_object_mut().expect("made an object above");
    for (field, schema) in properties {
        if let Some(default) = schema.get("default") {
            content.entry(field.clone()).or_insert_with(|| default.clone());
        }
    }
    answer
}

pub(super) struct Exchange<'a> {
    pub http: &'a HttpClient,
    pub target: &'a Target<'a>,
    /// The request's JSON-RPC id.
    pub id: i64,
    /// Sent with resumptions and answers.
    pub version: &'a str,
    pub session_id: Option<&'a str>,
    /// The application's answers to mid-request questions, by method.
    pub answers: Option<&'a InputResponses>,
    /// Also listen on the session's standalone stream (`GET`), where a
    /// session-based server may send its questions instead.
    pub listen: bool,
    /// Return the first response's headers (a new session's id is there).
    pub keep_headers: bool,
}

impl Exchange<'_> {
    fn host(&self) -> String {
        display_host(self.target.url)
    }

    fn protocol(&self, why: impl Into<String>) -> McpError {
        McpError::Protocol { host: self.host(), why: why.into() }
    }

    /// A request to the server's endpoint with the target's credentials and
    /// the protocol headers of this exchange.
    fn follow_up(&self, request: HttpRequest) -> HttpRequest {
        let mut request =
            super::with_credentials(request, self.target).header(HeaderName::from_static("mcp-protocol-version"), self.version, false);
        if let Some(id) = self.session_id {
            request = request.header(HeaderName::from_static("mcp-session-id"), id, false);
        }
        request
    }

    /// Sends `request` and reads until its outcome; also returns the
    /// headers of the first response (a new session's id is there).
    pub async fn run(&self, request: HttpRequest) -> Result<(Outcome, HeaderMap), McpError> {
        // The standalone stream is opened first, so that no question the
        // server sends while it works on our request is lost.
        let side = if self.listen { self.open_standalone().await } else { None };
        let exchange = async {
            let open = self.http.open(request).await?;
            let headers = if self.keep_headers { open.headers.clone() } else { HeaderMap::new() };
            Ok((self.read(open).await?, headers))
        };
        tokio::select! {
            done = exchange => done,
            asked = self.listen_standalone(side) => asked.map(|outcome| (outcome, HeaderMap::new())),
        }
    }

    /// The session's standalone event stream, if the server offers one.
    ///
    /// A server may allow one per session and refuse another with 409
    /// until it notices the last one closed; that one is most often our
    /// own, left a moment ago by the previous exchange (a listing before a
    /// call), so a 409 is retried a few times, briefly.
    async fn open_standalone(&self) -> Option<OpenResponse> {
        let mut pause = STANDALONE_CONFLICT_PAUSE;
        for attempt in 0..=STANDALONE_CONFLICT_RETRIES {
            let request = self.follow_up(HttpRequest::get(self.target.url.clone()).accept("text/event-stream").follow_same_origin());
            let open = self.http.open(request).await.ok()?;
            if open.status == 409 && attempt < STANDALONE_CONFLICT_RETRIES {
                tokio::time::sleep(pause).await;
                pause *= 2;
                continue;
            }
            return (open.status == 200 && open.content_type() == "text/event-stream").then_some(open);
        }
        None
    }

    /// Answers the questions that arrive on the standalone stream; ends only
    /// with an outcome for the exchange (the application must answer, or
    /// the response itself came this way).
    async fn listen_standalone(&self, side: Option<OpenResponse>) -> Result<Outcome, McpError> {
        if let Some(mut side) = side {
            let mut reader = sse::Reader::new();
            let mut budget = self.http.config().max_response_bytes;
            while let Ok(Some(bytes)) = side.chunk().await {
                let Some(left) = budget.checked_sub(bytes.len()) else { break };
                budget = left;
                for event in reader.feed(&bytes) {
                    if let Some(outcome) = self.on_event(&event.data).await? {
                        return Ok(outcome);
                    }
                }
            }
        }
        std::future::pending().await
    }

    async fn read(&self, mut open: OpenResponse) -> Result<Outcome, McpError> {
        let limit = self.http.config().max_response_bytes;
        let mut budget = limit;
        let mut last_event_id: Option<String> = None;
        let mut retry: Option<Duration> = None;
        for resumes in 0..=MAX_RESUMES {
            if open.status != 200 {
                let response = open.collect().await?;
                return Ok(refusal(self.id, response));
            }
            if open.content_type() != "text/event-stream" {
                let response = open.collect().await?;
                return self.json_reply(&response);
            }
            let mut reader = sse::Reader::new();
            reader.last_event_id = last_event_id.take();
            if let Some(outcome) = self.read_stream(&mut open, &mut reader, &mut budget, limit).await? {
                return Ok(outcome);
            }
            retry = reader.retry_ms.map(Duration::from_millis).or(retry);
            let Some(event_id) = reader.last_event_id.clone() else {
                return Err(self.protocol("the event stream ended before the response arrived, and cannot be resumed (no event id)"));
            };
            if resumes == MAX_RESUMES {
                break;
            }
            tokio::time::sleep(retry.unwrap_or(DEFAULT_RETRY).min(MAX_RETRY)).await;
            let resume = self.follow_up(HttpRequest::get(self.target.url.clone()).accept("text/event-stream").follow_same_origin()).header(
                HeaderName::from_static("last-event-id"),
                &event_id,
                false,
            );
            open = self.http.open(resume).await?;
            if open.status == 404 && self.session_id.is_some() {
                // The server ended the session while our request was in it.
                return Err(McpError::SessionEnded { host: self.host(), mid_request: true });
            }
            if open.status != 200 || open.content_type() != "text/event-stream" {
                let status = open.status;
                return Err(self
                    .protocol(format!("the event stream ended before the response arrived, and resuming it was refused (HTTP {status})")));
            }
            last_event_id = Some(event_id);
        }
        Err(self.protocol(format!("the response did not arrive in {MAX_RESUMES} resumptions of the event stream")))
    }

    /// Reads events until the response (Some) or the stream's end (None).
    async fn read_stream(
        &self,
        open: &mut OpenResponse,
        reader: &mut sse::Reader,
        budget: &mut usize,
        limit: usize,
    ) -> Result<Option<Outcome>, McpError> {
        loop {
            let events = match open.chunk().await? {
                Some(bytes) => {
                    *budget =
                        budget.checked_sub(bytes.len()).ok_or_else(|| McpError::Net(NetError::TooLarge { host: self.host(), limit }))?;
                    reader.feed(&bytes)
                }
                None => {
                    let last: Vec<sse::Event> = reader.finish().into_iter().collect();
                    for event in last {
                        if let Some(outcome) = self.on_event(&event.data).await? {
                            return Ok(Some(outcome));
                        }
                    }
                    return Ok(None);
                }
            };
            for event in events {
                if let Some(outcome) = self.on_event(&event.data).await? {
                    return Ok(Some(outcome));
                }
            }
        }
    }

    /// One event's message: our response ends the exchange; a request from
    /// the server is answered; anything else (notifications, priming events,
    /// other responses) is skipped.
    async fn on_event(&self, data: &str) -> Result<Option<Outcome>, McpError> {
        if data.trim().is_empty() {
            return Ok(None);
        }
        let Ok(message) = serde_json::from_str::<Message<'_>>(data) else { return Ok(None) };
        if let (Some(method), Some(id)) = (&message.method, &message.id) {
            return self.answer(method, id, message.params.as_ref()).await;
        }
        if message.method.is_some() || message.id.as_ref().and_then(Value::as_i64) != Some(self.id) {
            return Ok(None);
        }
        Ok(self.outcome(200, message))
    }

    fn outcome(&self, status: u16, message: Message<'_>) -> Option<Outcome> {
        match (message.error, message.result) {
            (Some(error), _) => Some(Outcome::Error { status, error, answer: true }),
            (None, Some(result)) => Some(Outcome::Result(result.to_owned())),
            (None, None) => None,
        }
    }

    fn json_reply(&self, response: &HttpResponse) -> Result<Outcome, McpError> {
        let ours = |m: &Message<'_>| m.method.is_none() && m.id.as_ref().and_then(Value::as_i64) == Some(self.id);
        let found = if let Ok(message) = serde_json::from_slice::<Message<'_>>(&response.body) {
            ours(&message).then(|| self.outcome(200, message)).flatten()
        } else {
            serde_json::from_slice::<Vec<Message<'_>>>(&response.body)
                .ok()
                .and_then(|batch| batch.into_iter().filter(ours).find_map(|m| self.outcome(200, m)))
        };
        found.ok_or_else(|| self.protocol("no JSON-RPC response to the request was received"))
    }

    /// Answers a request the server sent in the middle of ours (session-based
    /// revisions; 2026-07-28 servers ask through input-required results).
    async fn answer(&self, method: &str, id: &Value, params: Option<&Value>) -> Result<Option<Outcome>, McpError> {
        let mut ask_application = false;
        let reply = match (method, capability_of(method)) {
            ("ping", _) => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
            (_, Some(capability)) => {
                let caps = &self.target.capabilities;
                let declared = match capability {
                    "elicitation" => caps.elicitation.is_some(),
                    "sampling" => caps.sampling.is_some(),
                    _ => caps.roots.is_some(),
                };
                match self.answers.and_then(|a| a.get(method)) {
                    _ if !declared => json!({"jsonrpc": "2.0", "id": id, "error": {
                        "code": ErrorCode::METHOD_NOT_FOUND.0,
                        "message": format!("the client did not declare the {capability} capability")}}),
                    Some(answer) => {
                        let result = if capability == "elicitation" { with_defaults(answer, params) } else { answer.clone() };
                        json!({"jsonrpc": "2.0", "id": id, "result": result})
                    }
                    None => {
                        // The question goes to the application, which asks
                        // again with its answer; this round is called off.
                        ask_application = true;
                        if capability == "elicitation" {
                            json!({"jsonrpc": "2.0", "id": id, "result": {"action": "cancel"}})
                        } else {
                            json!({"jsonrpc": "2.0", "id": id, "error": {
                                "code": ErrorCode::INTERNAL_ERROR.0,
                                "message": "the application answers on a repeated request"}})
                        }
                    }
                }
            }
            _ => json!({"jsonrpc": "2.0", "id": id, "error": {"code": ErrorCode::METHOD_NOT_FOUND.0, "message": "Method not found"}}),
        };
        let request = self.follow_up(
            HttpRequest::post(self.target.url.clone(), "application/json", reply.to_string().into_bytes())
                .accept("application/json, text/event-stream")
                .follow_same_origin(),
        );
        // What the server makes of the answer shows in the response we wait for.
        let _ = self.http.send(request).await?;
        if !ask_application {
            return Ok(None);
        }
        let mut question = json!({"method": method});
        if let Some(params) = params {
            question["params"] = params.clone();
        }
        let result = json!({"resultType": "input_required", "inputRequests": {method: question}});
        let raw = RawValue::from_string(result.to_string()).expect("serialised JSON is JSON");
        Ok(Some(Outcome::InputRequired(raw)))
    }
}

/// A status other than 200: its JSON-RPC error when the body carries one
/// (for this request or for none in particular), else the response.
fn refusal(id: i64, response: HttpResponse) -> Outcome {
    let messages: Vec<Message<'_>> = if response.content_type() == "text/event-stream" {
        vec![]
    } else if let Ok(message) = serde_json::from_slice::<Message<'_>>(&response.body) {
        vec![message]
    } else {
        serde_json::from_slice(&response.body).unwrap_or_default()
    };
    let error = messages.into_iter().find_map(|m| {
        let answer = m.id.as_ref().and_then(Value::as_i64) == Some(id);
        let for_us = answer || m.id.as_ref().is_none_or(Value::is_null);
        m.error.filter(|_| for_us).map(|error| (error, answer))
    });
    match error {
        Some((error, answer)) => Outcome::Error { status: response.status, error, answer },
        None => Outcome::Refused(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, content_type: &str, body: &str) -> HttpResponse {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        HttpResponse { status, headers, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn every_sdk_s_way_of_saying_a_session_is_over_is_understood() {
        let json = "application/json";
        let text = "text/plain; charset=utf-8";
        // As the official SDKs' servers answer an unknown session id (read in
        // their sources), and a request without one.
        let ended = [
            // TypeScript SDK transport, and its documented stateful pattern.
            (404, json, r#"{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}"#, true),
            // Python SDK session manager.
            (404, json, r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Session not found"}}"#, true),
            // Python SDK transport, Go SDK, rmcp.
            (404, text, "Not Found: Invalid or expired session ID", true),
            (404, text, "session not found\n", true),
            (404, text, "Not Found: Session not found", true),
            // A proxy's page, or nothing at all.
            (404, "text/html", "<html><body>Not Found</body></html>", true),
            (404, "", "", true),
            // The TypeScript SDK 1.x README's unknown-session answer.
            (
                400,
                json,
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#,
                true,
            ),
            // A request without a session, to each SDK.
            (
                400,
                json,
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Mcp-Session-Id header is required"},"id":null}"#,
                false,
            ),
            (400, text, "Bad Request: Missing session ID", false),
            (400, text, "Bad Request: Session ID is required", false),
            // The same, naming the request (as some servers do).
            (
                400,
                json,
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"Bad Request: Mcp-Session-Id header is required"}}"#,
                false,
            ),
            // The TypeScript SDK's transport, started anew after a restart.
            (400, json, r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Server not initialized"},"id":null}"#, true),
        ];
        for (status, content_type, body, sent) in ended {
            let outcome = refusal(7, response(status, content_type, body));
            assert!(outcome.ends_session(sent), "{status} {body}");
        }
        let not_ended = [
            // Our request's own answer, even with a 404: the session was found.
            (404, json, r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"Method not found"}}"#, true),
            // A 404 without a session is no session's end.
            (404, text, "Not Found", false),
            // Other 400s.
            (400, json, r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params"},"id":null}"#, true),
            (400, text, "Accept must contain both 'application/json' and 'text/event-stream'", true),
            (401, json, r#"{"error":"invalid_token","error_description":"Session not found"}"#, true),
            (500, text, "session store unavailable", true),
        ];
        for (status, content_type, body, sent) in not_ended {
            let outcome = refusal(7, response(status, content_type, body));
            assert!(!outcome.ends_session(sent), "{status} {body}");
        }
    }

    #[test]
    fn the_server_s_questions_need_their_capability() {
        assert_eq!(capability_of("elicitation/create"), Some("elicitation"));
        assert_eq!(capability_of("sampling/createMessage"), Some("sampling"));
        assert_eq!(capability_of("roots/list"), Some("roots"));
        assert_eq!(capability_of("tools/call"), None);
    }

    #[test]
    fn protocol_errors_name_the_server() {
        let http = crate::net::HttpClient::new(crate::net::NetConfig {
            policy: crate::net::NetPolicy { allow_http_loopback: false, allow_private_networks: false, allowed_hosts: vec![] },
            connect_timeout: std::time::Duration::from_secs(1),
            request_timeout: std::time::Duration::from_secs(1),
            max_response_bytes: 1024,
        })
        .unwrap();
        let url = url::Url::parse("https://mcp.example:8443/mcp").unwrap();
        let capabilities = rmcp::model::ClientCapabilities::default();
        let target = Target { url: &url, headers: &[], bearer: None, dpop: None, capabilities: &capabilities, withheld: &[] };
        let exchange = Exchange {
            http: &http,
            target: &target,
            id: 1,
            version: "2025-11-25",
            session_id: None,
            answers: None,
            listen: false,
            keep_headers: false,
        };
        assert_eq!(exchange.protocol("why"), McpError::Protocol { host: "mcp.example:8443".into(), why: "why".into() });
    }

    #[test]
    fn accepted_elicitations_get_the_schema_defaults() {
        let params = json!({"requestedSchema": {"type": "object", "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "nick": {"type": "string"}}}});
        assert_eq!(
            with_defaults(&json!({"action": "accept", "content": {"name": "Ann"}}), Some(&params)),
            json!({"action": "accept", "content": {"name": "Ann", "age": 30}})
        );
        assert_eq!(
            with_defaults(&json!({"action": "accept"}), Some(&params)),
            json!({"action": "accept", "content": {"name": "John Doe", "age": 30}})
        );
        assert_eq!(with_defaults(&json!({"action": "decline"}), Some(&params)), json!({"action": "decline"}));
    }
}
