//! An MCP client over Streamable HTTP, dual-era: it speaks the current
//! revision (2026-07-28: no handshake, protocol version and capabilities in
//! every request's `_meta`, mirrored into `MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` headers; input-required
//! results) and falls back to the session-based revisions (2025-11-25,
//! 2025-06-18, 2025-03-26: `initialize`, `Mcp-Session-Id`, requests from
//! the server in the middle of ours) for servers that do not.
//!
//! What is sent is built from rmcp's model (`rmcp::model`: request
//! parameters, `_meta`, protocol versions, error codes); results pass
//! through as the server wrote them. The transport is ours (`stream`), on
//! the policy-checked HTTP client: rmcp's transports bring their own HTTP
//! stack, which would bypass the network policy.
//!
//! An `McpSession` remembers what it learned about one server (its era, a
//! legacy session, which tool parameters travel as headers) and is meant to
//! be kept and reused, so that a warm call is one HTTP round trip.

pub mod batch;
pub mod call;
pub mod headers;
pub mod names;
pub mod output;
pub mod skills;
pub mod sse;
mod stream;
pub mod tasks;

pub use call::{Call, InputRound, Listing};
pub use headers::{header_params, header_value, HeaderParam};
pub use rmcp::model::ClientCapabilities;
pub use sse::data_of as sse_data;

use crate::net::{display_host, HttpClient, HttpRequest, HttpResponse, NetError};
use crate::oauth::dpop::DpopKey;
use crate::secret::Secret;
use crate::www_authenticate::BearerChallenge;
use reqwest::header::{HeaderMap, HeaderName};
use rmcp::model::{ErrorCode, ErrorData, InitializeRequestParams, ProtocolVersion};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use stream::{Exchange, Outcome};
use url::Url;

/// The current, session-less revision.
pub const MODERN_PROTOCOL: &str = "2026-07-28";
/// Every revision this client speaks, newest first: the session-less one,
/// then the session-based ones of Streamable HTTP (2024-11-05 had another
/// transport).
pub fn supported_protocols() -> [ProtocolVersion; 4] {
    [ProtocolVersion::V_2026_07_28, ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_03_26]
}
/// Most pages of a list read before giving up on a server that never ends.
const MAX_PAGES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{host} answered 401 Unauthorized")]
    /// 401; `dpop_nonce` when the server asked for a DPoP proof with its
    /// nonce (RFC 9449 §9), which is answered by sending again with it.
    Unauthorized { host: String, challenge: Option<Box<BearerChallenge>>, dpop_nonce: Option<String> },
    /// The server refused the request's DPoP proof, not its token
    /// (`invalid_dpop_proof`, RFC 9449 §7.1): neither a refresh nor a new
    /// sign-in helps.
    #[error("{host} refused the DPoP proof (invalid_dpop_proof){}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    ProofRefused { host: String, description: Option<String> },
    #[error("{host} answered 403 Forbidden")]
    Forbidden { host: String, challenge: Option<Box<BearerChallenge>> },
    #[error("{host} answered HTTP {status}")]
    Http {
        host: String,
        status: u16,
        /// The seconds its Retry-After header asked for (429, 503).
        retry_after: Option<u64>,
    },
    #[error("{host}: {why}")]
    Protocol { host: String, why: String },
    #[error("{host} returned JSON-RPC error {code}: {message}")]
    Rpc { host: String, code: i64, message: String },
    /// The server ended the session the request was sent in (or needs one
    /// for it). The session is forgotten: the next request starts a new one.
    /// `mid_request`: it ended while the request's answer was streaming, so
    /// the server may have carried the request out.
    #[error("{host} ended the MCP session{}", if *.mid_request { " while the request was in progress, so whether it was carried out is unknown; it was not repeated" } else { "" })]
    SessionEnded { host: String, mid_request: bool },
    /// The tool's result does not fit its `outputSchema`.
    #[error("{host}: the result of {} does not match its outputSchema at {:?}: {}", .mismatch.tool, .mismatch.path, .mismatch.why)]
    OutputMismatch { host: String, mismatch: Box<output::OutputMismatch> },
}

/// How to reach one server: its URL, what to send with every request, and
/// what the application declares it can do.
pub struct Target<'a> {
    pub url: &'a Url,
    /// Custom headers (headers mode); all treated as secrets.
    pub headers: &'a [(String, Secret)],
    pub bearer: Option<&'a Secret>,
    /// The key the bearer token is bound to (RFC 9449), and the resource
    /// server's latest nonce: the token is sent as `DPoP` with a proof.
    pub dpop: Option<(&'a DpopKey, Option<&'a str>)>,
    pub capabilities: &'a ClientCapabilities,
    /// Secrets the request does not carry but the caller holds (a refresh
    /// token, a client secret...): removed from what the server says all
    /// the same.
    pub withheld: &'a [&'a Secret],
}

impl<'a> Target<'a> {
    /// Every credential a request to this target carries, and the ones it
    /// withholds.
    pub fn secrets(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        let headers = self.headers;
        let withheld = self.withheld;
        headers.iter().map(|(_, v)| v.expose()).chain(self.bearer.map(Secret::expose)).chain(withheld.iter().map(|s| s.expose()))
    }
}

/// `request` with the target's credentials.
fn with_credentials(mut request: HttpRequest, target: &Target<'_>) -> HttpRequest {
    for (name, value) in target.headers {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            request = request.header(name, value.expose(), true);
        }
    }
    match (target.bearer, target.dpop) {
        (Some(token), Some((key, nonce))) => {
            let method = match request.method {
                crate::net::Method::Get => "GET",
                crate::net::Method::Post => "POST",
                crate::net::Method::Delete => "DELETE",
            };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
            let proof = key.proof(method, &request.url, Some(token), nonce, now);
            let request = request.header(HeaderName::from_static("authorization"), &format!("DPoP {}", token.expose()), true);
            match proof {
                Some(proof) => request.header(HeaderName::from_static("dpop"), &proof, false),
                None => request,
            }
        }
        (Some(token), None) => request.bearer(token.expose()),
        (None, _) => request,
    }
}

/// Probes the server without a token and returns its Bearer challenge, if
/// it answers 401 with one. The probe is a 2026-07-28 `tools/list` (a
/// server of that revision refuses a session-based `initialize` with 400
/// before looking at credentials; servers of every revision check
/// credentials before answering a method).
pub async fn probe(http: &HttpClient, server_url: &Url) -> Result<Option<BearerChallenge>, NetError> {
    let meta = call::request_meta(MODERN_PROTOCOL, &ClientCapabilities::default());
    let body = Call::list(Listing::Tools, None).body(0, Some(&meta));
    let request = HttpRequest::post(server_url.clone(), "application/json", body.into_bytes())
        .accept("application/json, text/event-stream")
        .header(HeaderName::from_static("mcp-protocol-version"), MODERN_PROTOCOL, false)
        .header(HeaderName::from_static("mcp-method"), "tools/list", false);
    // Only the status and headers matter: a server that needs no token may
    // answer with an event stream it keeps open.
    match tokio::time::timeout(http.config().request_timeout, http.open(request)).await {
        Ok(open) => Ok(open?.bearer_challenge()),
        Err(_) => Err(NetError::Timeout { host: display_host(server_url) }),
    }
}

/// What one attempt of a request leaves to do.
enum Step {
    Done(Box<RawValue>),
    Again,
}

/// The second chances a request has had: each is taken once.
#[derive(Default)]
struct Retries {
    /// The remembered era or session was found stale and renewed.
    renewed: bool,
    /// A -32022 was answered by negotiating a revision.
    negotiated: bool,
}

/// A session-based revision's session, as remembered.
#[derive(Clone, Copy)]
struct LegacySession<'a> {
    version: &'a str,
    session_id: Option<&'a str>,
    /// None: no session yet at this version (initialize first).
    capabilities: Option<&'a Value>,
}

/// What is known about the server's protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// Per-request metadata at this version.
    Modern(String),
    /// A session-based connection at this version: its session, the client
    /// capabilities it was initialized with (a session keeps them for its
    /// life; none when there is no session yet, and the next request
    /// initializes one) and the credentials it was made with.
    Legacy {
        version: String,
        session_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capabilities: Option<Value>,
        /// The caller's tag for the credentials the session was initialized
        /// with (see [`McpSession::from_learned`]): a server may bind a
        /// session to them, so it is never used with others.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials: Option<i64>,
    },
}

impl Era {
    /// A session-based revision without a session: the next request
    /// initializes one.
    fn uninitialized(version: String) -> Era {
        Era::Legacy { version, session_id: None, capabilities: None, credentials: None }
    }
}

/// What a client learned about one server that any other client of it can
/// use: the revision it speaks (and, for a session-based server, its
/// session, which the Streamable HTTP transport lets several connections
/// share), and which tool parameters travel as headers. Worth keeping
/// outside one process, so that a new one starts where the last left off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub era: Option<Era>,
    /// Per tool that has any: its `x-mcp-header` parameters, as of the last
    /// complete tool list.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header_params: BTreeMap<String, Vec<HeaderParam>>,
    /// Whether `header_params` comes from a complete tool list (else a
    /// call lists the tools first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tools_listed: bool,
    /// Per tool that declares one: its `outputSchema`, as of the last
    /// complete tool list; results are checked against it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_schemas: BTreeMap<String, Value>,
    /// The output schemas were too large to share: each session lists the
    /// tools once to learn them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub output_schemas_unshared: bool,
    /// A session-based server's `initialize` declared task-augmented
    /// `tools/call` (2025-11-25 `capabilities.tasks.requests.tools.call`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tool_tasks: bool,
    /// The tools whose `execution.taskSupport` is `required`, as of the last
    /// complete tool list: on such a server they are called as tasks.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub task_required_tools: BTreeSet<String>,
}

impl Learned {
    /// The session of a session-based server, if one is kept.
    pub fn session_id(&self) -> Option<&str> {
        match &self.era {
            Some(Era::Legacy { session_id, .. }) => session_id.as_deref(),
            _ => None,
        }
    }
}

/// One server's connection state; keep it and reuse it.
#[derive(Debug, Clone, Default)]
pub struct McpSession {
    learned: Learned,
    /// The tag of the credentials requests are made with.
    credentials: i64,
    /// The sessions the server ended since the last [`McpSession::take_ended`].
    ended: Vec<Option<String>>,
    next_id: i64,
    /// The serialised `_meta` of 2026-07-28 requests, for this version and
    /// these capabilities (built once, not per request).
    meta: Option<(String, ClientCapabilities, String)>,
    /// The tools' output schemas, as this session last listed them.
    outputs: output::OutputSchemas,
}

fn protocol(host: &str, why: impl Into<String>) -> McpError {
    McpError::Protocol { host: host.to_owned(), why: why.into() }
}

fn status_error(host: &str, response: &HttpResponse) -> McpError {
    let challenges = || response.headers.get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok());
    if let (400 | 401, Some(description)) = (response.status, crate::www_authenticate::dpop_proof_refusal(challenges())) {
        return McpError::ProofRefused { host: host.to_owned(), description };
    }
    match response.status {
        401 => McpError::Unauthorized {
            host: host.to_owned(),
            challenge: response.bearer_challenge().map(Box::new),
            dpop_nonce: crate::oauth::dpop::demanded_nonce(&response.headers, &challenges().collect::<Vec<_>>().join(", ")),
        },
        403 => McpError::Forbidden { host: host.to_owned(), challenge: response.bearer_challenge().map(Box::new) },
        status => McpError::Http {
            host: host.to_owned(),
            status,
            retry_after: response.header("retry-after").and_then(|v| crate::net::retry_after(v, std::time::SystemTime::now())),
        },
    }
}

fn rpc_error(host: &str, error: &ErrorData) -> McpError {
    // Kept whole enough to redact (see `McpError::redacted`), cut after.
    let message: String = error.message.chars().take(64 * 1024).collect();
    McpError::Rpc { host: host.to_owned(), code: i64::from(error.code.0), message }
}

impl McpError {
    /// This error with every credential of `target` removed from what the
    /// server said, and the server's text cut to its displayed length.
    pub fn redacted(self, target: &Target<'_>) -> Self {
        self.without(target.secrets())
    }

    /// This error with each of `secrets` removed from what the server said
    /// (in every form it may echo them), and the server's text cut to its
    /// displayed length.
    pub fn without<'s>(self, secrets: impl IntoIterator<Item = &'s str> + Clone) -> Self {
        let clean =
            |text: &str| -> String { crate::text::redact(text, secrets.clone()).chars().take(crate::text::REMOTE_TEXT_CHARS).collect() };
        match self {
            McpError::Rpc { host, code, message } => McpError::Rpc { host, code, message: clean(&message) },
            McpError::Protocol { host, why } => McpError::Protocol { host, why: clean(&why) },
            McpError::ProofRefused { host, description } => McpError::ProofRefused { host, description: description.map(|d| clean(&d)) },
            McpError::OutputMismatch { host, mismatch } => McpError::OutputMismatch {
                host,
                mismatch: Box::new(output::OutputMismatch { path: clean(&mismatch.path), why: clean(&mismatch.why), tool: mismatch.tool }),
            },
            other => other,
        }
    }
}

/// How long a task made of a tool call is kept by the server (2025-11-25
/// `task.ttl`), from its creation: long enough for any synchronous call.
const TASK_TTL_MS: u64 = 10 * 60 * 1000;

/// The id of the task a 2025-11-25 `CreateTaskResult` announces, if the
/// result is one (a server may run the call directly instead).
fn created_task(result: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Created {
        task: Option<CreatedTask>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct CreatedTask {
        task_id: String,
    }
    serde_json::from_str::<Created>(result.get()).ok()?.task.map(|t| t.task_id).filter(|id| !id.is_empty())
}

/// The JSON-RPC errors by which a 2026-07-28 server identifies itself.
fn is_modern_error(status: u16, error: &ErrorData) -> bool {
    matches!(
        error.code,
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION | ErrorCode::HEADER_MISMATCH | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
    ) || (error.code == ErrorCode::METHOD_NOT_FOUND && status == 404)
        || status == 200
}

/// The newest revision both sides speak, from a -32022 error's
/// `data.supported`.
fn common_version(error: &ErrorData) -> Option<ProtocolVersion> {
    let theirs: Vec<&str> = error
        .data
        .as_ref()
        .and_then(|d| d.get("supported"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    supported_protocols().into_iter().find(|v| theirs.contains(&v.as_str()))
}

fn capabilities_value(capabilities: &ClientCapabilities) -> Value {
    serde_json::to_value(capabilities).expect("capabilities serialise")
}

impl McpSession {
    pub fn new() -> Self {
        Self::from_learned(Learned::default(), 0)
    }

    /// A session that starts from what was learned before, possibly by
    /// another process, for requests made with the credentials tagged
    /// `credentials` (any value that changes whenever they do): a kept
    /// session made with other credentials is not used, a new one is
    /// initialized. Request ids start at a random offset, so that processes
    /// sharing a server's session do not reuse each other's ids.
    pub fn from_learned(mut learned: Learned, credentials: i64) -> Self {
        if let Some(Era::Legacy { version, credentials: made_with, .. }) = &learned.era {
            if *made_with != Some(credentials) {
                learned.era = Some(Era::uninitialized(version.clone()));
            }
        }
        let mut offset = [0u8; 4];
        let _ = getrandom::fill(&mut offset);
        Self {
            learned,
            credentials,
            ended: Vec::new(),
            next_id: i64::from(u32::from_le_bytes(offset) >> 1) << 16,
            meta: None,
            outputs: output::OutputSchemas::default(),
        }
    }

    /// The sessions the server ended since the last call (each id, or None
    /// for a server that issued none): whoever shares them must stop.
    pub fn take_ended(&mut self) -> Vec<Option<String>> {
        std::mem::take(&mut self.ended)
    }

    /// Forgets the session the server ended; the next request initializes
    /// a new one at the same version.
    fn end_session(&mut self) {
        if let Some(Era::Legacy { version, session_id, .. }) = self.learned.era.take() {
            self.ended.push(session_id);
            self.learned.era = Some(Era::uninitialized(version));
        }
    }

    pub fn learned(&self) -> &Learned {
        &self.learned
    }

    pub fn era(&self) -> Option<&Era> {
        self.learned.era.as_ref()
    }

    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn post(target: &Target<'_>, body: String) -> HttpRequest {
        let request = HttpRequest::post(target.url.clone(), "application/json", body.into_bytes())
            .accept("application/json, text/event-stream")
            .follow_same_origin();
        with_credentials(request, target)
    }

    /// A 2026-07-28 request: the body with its `_meta`, and the headers
    /// that mirror it (SEP-2243).
    fn modern_request(&mut self, target: &Target<'_>, version: &str, call: &mut Call) -> (i64, HttpRequest) {
        let id = self.id();
        let current = self.meta.as_ref().is_some_and(|(v, caps, _)| v == version && caps == target.capabilities);
        if !current {
            self.meta = Some((version.to_owned(), target.capabilities.clone(), call::request_meta(version, target.capabilities)));
        }
        let meta = self.meta.as_ref().map(|(_, _, json)| json.as_str());
        let body = call.body(id, meta);
        let mut request = Self::post(target, body).header(HeaderName::from_static("mcp-protocol-version"), version, false).header(
            HeaderName::from_static("mcp-method"),
            call.method(),
            false,
        );
        if let Some(name) = call.name() {
            request = request.header(HeaderName::from_static("mcp-name"), &header_value(name), false);
        }
        if let (Some(name), Some(args)) = (call.name(), call.tool_arguments()) {
            for (path, header) in self.learned.header_params.get(name).map(Vec::as_slice).unwrap_or_default() {
                if let (Some(value), Ok(h)) =
                    (headers::param_value(args, path), HeaderName::from_bytes(format!("mcp-param-{header}").as_bytes()))
                {
                    request = request.header(h, &header_value(&value), false);
                }
            }
        }
        (id, request)
    }

    fn legacy_request(target: &Target<'_>, version: &str, session_id: Option<&str>, body: String) -> HttpRequest {
        let mut request = Self::post(target, body).header(HeaderName::from_static("mcp-protocol-version"), version, false);
        if let Some(id) = session_id {
            request = request.header(HeaderName::from_static("mcp-session-id"), id, false);
        }
        request
    }

    /// Runs one exchange within the request deadline.
    async fn exchange(&self, exchange: Exchange<'_>, request: HttpRequest) -> Result<(Outcome, HeaderMap), McpError> {
        let deadline = exchange.http.config().request_timeout;
        // Boxed: the exchange's future is large, and moved into the timeout.
        match tokio::time::timeout(deadline, Box::pin(exchange.run(request))).await {
            Ok(outcome) => outcome,
            Err(_) => Err(McpError::Net(NetError::Timeout { host: display_host(exchange.target.url) })),
        }
    }

    /// `initialize` at `version` + `notifications/initialized`.
    async fn initialize(&mut self, http: &HttpClient, target: &Target<'_>, version: &ProtocolVersion) -> Result<(), McpError> {
        let host = display_host(target.url);
        let id = self.id();
        let mut params = InitializeRequestParams::new(target.capabilities.clone(), call::client_info());
        params.protocol_version = version.clone();
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": params}).to_string();
        let exchange =
            Exchange { http, target, id, version: version.as_str(), session_id: None, answers: None, listen: false, keep_headers: true };
        let (outcome, headers) = self.exchange(exchange, Self::post(target, body)).await?;
        let result = match outcome {
            Outcome::Result(raw) => raw,
            Outcome::Error { error, .. } => return Err(rpc_error(&host, &error)),
            Outcome::Refused(response) => return Err(status_error(&host, &response)),
            Outcome::InputRequired(_) => return Err(protocol(&host, "the initialize request got no result")),
        };
        let result: Value = serde_json::from_str(result.get()).map_err(|_| protocol(&host, "the initialize result is not JSON"))?;
        let agreed = result.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
        if !supported_protocols()[1..].iter().any(|v| v.as_str() == agreed) {
            return Err(protocol(
                &host,
                format!("the server speaks protocol version {:?}, which this client does not", agreed.chars().take(40).collect::<String>()),
            ));
        }
        let session_id = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let notice = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
        let response = http.send(Self::legacy_request(target, agreed, session_id.as_deref(), notice)).await?;
        if !(200..300).contains(&response.status) {
            return Err(status_error(&host, &response));
        }
        self.learned.tool_tasks = result.pointer("/capabilities/tasks/requests/tools/call").is_some_and(Value::is_object);
        self.learned.era = Some(Era::Legacy {
            version: agreed.to_owned(),
            session_id,
            capabilities: Some(capabilities_value(target.capabilities)),
            credentials: Some(self.credentials),
        });
        Ok(())
    }

    /// One request, in whichever era the server speaks, its result as the
    /// server wrote it. The first request to a server tries 2026-07-28: a
    /// -32022 error picks the newest revision both speak and tries again
    /// once; a 4xx without a 2026-07-28 error falls back to a session. A
    /// session the server ended is forgotten and reported
    /// ([`McpError::SessionEnded`]): the caller may make the request again,
    /// in a new session.
    pub async fn request(&mut self, http: &HttpClient, target: &Target<'_>, call: &mut Call) -> Result<Box<RawValue>, McpError> {
        self.request_any_era(http, target, call).await.map_err(|e| e.redacted(target))
    }

    async fn request_any_era(&mut self, http: &HttpClient, target: &Target<'_>, call: &mut Call) -> Result<Box<RawValue>, McpError> {
        let mut retries = Retries::default();
        loop {
            let step = match self.learned.era.clone() {
                None | Some(Era::Modern(_)) => self.modern_attempt(http, target, call, &mut retries).await?,
                Some(Era::Legacy { version, session_id, capabilities, .. }) => {
                    let session =
                        LegacySession { version: &version, session_id: session_id.as_deref(), capabilities: capabilities.as_ref() };
                    self.legacy_attempt(http, target, call, session, &mut retries).await?
                }
            };
            if let Step::Done(raw) = step {
                return Ok(raw);
            }
        }
    }

    /// One 2026-07-28 request (the remembered modern revision, or the newest
    /// when nothing is known yet), and what its answer says to do next.
    async fn modern_attempt(
        &mut self,
        http: &HttpClient,
        target: &Target<'_>,
        call: &mut Call,
        retries: &mut Retries,
    ) -> Result<Step, McpError> {
        let cached = self.learned.era.is_some();
        let version = match &self.learned.era {
            Some(Era::Modern(v)) => v.clone(),
            _ => MODERN_PROTOCOL.to_owned(),
        };
        let (id, request) = self.modern_request(target, &version, call);
        let exchange =
            Exchange { http, target, id, version: &version, session_id: None, answers: None, listen: false, keep_headers: false };
        let outcome = self.exchange(exchange, request).await?.0;
        let host = display_host(target.url);
        match outcome {
            Outcome::Result(raw) | Outcome::InputRequired(raw) => {
                self.learned.era = Some(Era::Modern(version));
                Ok(Step::Done(raw))
            }
            Outcome::Error { error, .. } if error.code == ErrorCode::UNSUPPORTED_PROTOCOL_VERSION && !retries.negotiated => {
                // Once, even to the version just refused: a server may
                // refuse a first request to see the client retry.
                retries.negotiated = true;
                self.negotiate(http, target, &error, &host).await?;
                Ok(Step::Again)
            }
            Outcome::Error { status, error, .. } if is_modern_error(status, &error) => {
                self.learned.era = Some(Era::Modern(version));
                Err(rpc_error(&host, &error))
            }
            Outcome::Refused(response) if matches!(response.status, 401 | 403) => Err(status_error(&host, &response)),
            // A server error or a refusal to take the request now (429,
            // 5xx) says nothing about the era, and the request may have
            // been carried out: it is not sent again.
            Outcome::Refused(response) if response.status == 429 || response.status >= 500 => Err(status_error(&host, &response)),
            Outcome::Error { .. } | Outcome::Refused(_) if cached && !retries.renewed => {
                // The remembered era no longer holds: probe again.
                retries.renewed = true;
                self.learned.era = None;
                Ok(Step::Again)
            }
            Outcome::Refused(response) if !matches!(response.status, 400 | 404 | 405) => Err(status_error(&host, &response)),
            // Not a 2026-07-28 server: a session-based one, from initialize.
            Outcome::Error { .. } | Outcome::Refused(_) => {
                self.initialize(http, target, &ProtocolVersion::LATEST_WITH_INITIALIZE).await?;
                Ok(Step::Again)
            }
        }
    }

    /// After -32022: the newest revision both sides speak, remembered (a
    /// session-based one by initializing).
    async fn negotiate(&mut self, http: &HttpClient, target: &Target<'_>, error: &ErrorData, host: &str) -> Result<(), McpError> {
        match common_version(error) {
            Some(v) if !v.has_initialize() => {
                self.learned.era = Some(Era::Modern(v.as_str().to_owned()));
                Ok(())
            }
            Some(v) => self.initialize(http, target, &v).await,
            None => {
                let theirs = error.data.as_ref().and_then(|d| d.get("supported")).map(Value::to_string).unwrap_or_default();
                Err(protocol(
                    host,
                    format!(
                        "the server and this client have no protocol version in common (the server supports {})",
                        theirs.chars().take(200).collect::<String>()
                    ),
                ))
            }
        }
    }

    /// One request in a session-based revision's session.
    async fn legacy_attempt(
        &mut self,
        http: &HttpClient,
        target: &Target<'_>,
        call: &mut Call,
        session: LegacySession<'_>,
        retries: &mut Retries,
    ) -> Result<Step, McpError> {
        let declared = capabilities_value(target.capabilities);
        let renew = match session.capabilities {
            None => true,
            // Capabilities are fixed for a session's life.
            Some(kept) => kept != &declared && !retries.renewed,
        };
        if renew {
            retries.renewed = true;
            // At the version agreed before (the server may speak no newer one).
            let version = supported_protocols()
                .into_iter()
                .find(|v| v.as_str() == session.version && v.has_initialize())
                .unwrap_or(ProtocolVersion::LATEST_WITH_INITIALIZE);
            self.initialize(http, target, &version).await?;
            return Ok(Step::Again);
        }
        let id = self.id();
        let request = Self::legacy_request(target, session.version, session.session_id, call.body(id, None));
        // Questions need a declared capability; only then can a server send
        // any on the standalone stream.
        let caps = target.capabilities;
        let listen = session.session_id.is_some() && (caps.elicitation.is_some() || caps.sampling.is_some() || caps.roots.is_some());
        let exchange = Exchange {
            http,
            target,
            id,
            version: session.version,
            session_id: session.session_id,
            answers: call.input_responses(),
            listen,
            keep_headers: false,
        };
        let host = display_host(target.url);
        let outcome = match self.exchange(exchange, request).await {
            Ok((outcome, _)) => outcome,
            Err(e @ McpError::SessionEnded { .. }) => {
                self.end_session();
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if outcome.ends_session(session.session_id.is_some()) {
            self.end_session();
            return Err(McpError::SessionEnded { host, mid_request: false });
        }
        match outcome {
            Outcome::Result(raw) | Outcome::InputRequired(raw) => Ok(Step::Done(raw)),
            Outcome::Error { error, .. } => Err(rpc_error(&host, &error)),
            Outcome::Refused(response) => Err(status_error(&host, &response)),
        }
    }

    /// Every item of a list, across all pages. Tools whose `x-mcp-header`
    /// annotations are invalid are left out (2026-07-28 requires it), and
    /// what the tools' annotations say replaces what was known.
    pub async fn list(&mut self, http: &HttpClient, target: &Target<'_>, listing: Listing) -> Result<Vec<Value>, McpError> {
        let host = display_host(target.url);
        let mut items = Vec::new();
        let mut annotated = BTreeMap::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let raw = self.request(http, target, &mut Call::list(listing, cursor.take())).await?;
            let mut page: Value = serde_json::from_str(raw.get()).map_err(|_| protocol(&host, "the result is not JSON"))?;
            let Some(Value::Array(found)) = page.get_mut(listing.field()).map(Value::take) else {
                return Err(protocol(&host, format!("{} returned no {} array", listing.method(), listing.field())));
            };
            for item in found {
                if listing == Listing::Tools {
                    let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
                    match header_params(item.get("inputSchema").unwrap_or(&Value::Null)) {
                        Ok(params) if params.is_empty() => {}
                        Ok(params) => {
                            annotated.insert(name.to_owned(), params);
                        }
                        Err(_) => continue,
                    }
                }
                items.push(item);
            }
            cursor = page.get("nextCursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned);
            if cursor.is_none() {
                if listing == Listing::Tools {
                    self.learned.header_params = annotated;
                    self.learned.tools_listed = true;
                    let schemas = output::declared(&items);
                    self.learned.output_schemas_unshared = output::too_large_to_share(&schemas);
                    self.learned.output_schemas = if self.learned.output_schemas_unshared { BTreeMap::new() } else { schemas.clone() };
                    self.learned.task_required_tools = items
                        .iter()
                        .filter(|tool| tool.pointer("/execution/taskSupport").and_then(Value::as_str) == Some("required"))
                        .filter_map(|tool| tool.get("name")?.as_str().map(str::to_owned))
                        .collect();
                    self.outputs.listed = Some(schemas);
                }
                return Ok(items);
            }
        }
        Err(protocol(&host, format!("{} did not end after {MAX_PAGES} pages", listing.method())))
    }

    pub async fn list_tools(&mut self, http: &HttpClient, target: &Target<'_>) -> Result<Vec<Value>, McpError> {
        self.list(http, target, Listing::Tools).await
    }

    /// `tools/call`; a tool error (`isError`) is a result, not an error, and
    /// so is an input-required result. A 2026-07-28 call needs the tool's
    /// `x-mcp-header` annotations to mirror its parameters: when no tool
    /// list was ever seen for the server, the tools are listed first. On a
    /// header mismatch (-32020) they are listed again (the annotations may
    /// have changed) and the call is made once more.
    ///
    /// The result is checked against the tool's `outputSchema`, learned
    /// from a tool list and shared with every backend (`Learned`): the tools
    /// of a server never listed are listed before the first call, so that
    /// a listing failure never follows a call the server carried out.
    ///
    /// A tool a session-based server requires to run as a task (2025-11-25
    /// `execution.taskSupport: "required"`) is called as one, and its result
    /// fetched with `tasks/result`, which waits for the task to end.
    pub async fn call_tool(&mut self, http: &HttpClient, target: &Target<'_>, call: &mut Call) -> Result<Box<RawValue>, McpError> {
        if !self.learned.tools_listed || (self.learned.output_schemas_unshared && self.outputs.listed.is_none()) {
            self.list_tools(http, target).await?;
        }
        let tool = call.name().unwrap_or_default().to_owned();
        let as_task = matches!(self.learned.era, Some(Era::Legacy { .. }))
            && self.learned.tool_tasks
            && self.learned.task_required_tools.contains(&tool);
        if as_task {
            call.as_task(TASK_TTL_MS);
        }
        let mut result = match self.request(http, target, call).await {
            Err(McpError::Rpc { code, .. }) if code == i64::from(ErrorCode::HEADER_MISMATCH.0) => {
                self.list_tools(http, target).await?;
                self.request(http, target, call).await
            }
            other => other,
        }?;
        if as_task {
            if let Some(task_id) = created_task(&result) {
                // The server took the call: whatever happens to the fetch,
                // the tool may have run, so it is never made again.
                result = match self.request(http, target, &mut call.task_result(&task_id)).await {
                    Err(McpError::SessionEnded { host, .. }) => return Err(McpError::SessionEnded { host, mid_request: true }),
                    other => other?,
                };
            }
        }
        let tool = tool.as_str();
        let schema = match &self.outputs.listed {
            Some(here) if self.learned.output_schemas_unshared => here.get(tool),
            _ => self.learned.output_schemas.get(tool),
        }
        .cloned();
        self.outputs.check(tool, schema.as_ref(), &result).map_err(|mismatch| {
            McpError::OutputMismatch { host: display_host(target.url), mismatch: Box::new(mismatch) }.redacted(target)
        })?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_server_says_back_is_cleaned_of_the_credentials_sent() {
        let url = Url::parse("https://mcp.example/mcp").unwrap();
        let headers = vec![("X-Api-Key".to_owned(), Secret::new("key-0123456789"))];
        let capabilities = ClientCapabilities::default();
        let token = Secret::new("at-abcdefghijklmnop");
        let target = Target { url: &url, headers: &headers, bearer: Some(&token), dpop: None, capabilities: &capabilities, withheld: &[] };
        let error: ErrorData = serde_json::from_value(json!({"code": -32603, "message": format!(
            "bad credentials: Bearer at-abcdefghijklmnop, key key-0123456789 {}", "y".repeat(1000))}))
        .unwrap();
        match rpc_error("mcp.example", &error).redacted(&target) {
            McpError::Rpc { message, .. } => {
                assert!(message.starts_with("bad credentials: Bearer [redacted], key [redacted] y"), "{message}");
                assert_eq!(message.chars().count(), crate::text::REMOTE_TEXT_CHARS);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_echoed_many_times_is_redacted_in_every_copy() {
        // The copies before the last shown ones shrink to "[redacted]",
        // bringing later ones into the shown part: each must be redacted,
        // a copy cut short by a length limit too.
        let url = Url::parse("https://mcp.example/mcp").unwrap();
        let capabilities = ClientCapabilities::default();
        let token = Secret::new(format!("at-{}", "t".repeat(97)));
        let target = Target { url: &url, headers: &[], bearer: Some(&token), dpop: None, capabilities: &capabilities, withheld: &[] };
        let echoed = vec![token.expose(); 30].join(" ");
        let error: ErrorData = serde_json::from_value(json!({"code": -32603, "message": echoed})).unwrap();
        match rpc_error("mcp.example", &error).redacted(&target) {
            McpError::Rpc { message, .. } => assert!(!message.contains("tttttttttt"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_kept_session_is_used_only_with_the_credentials_it_was_made_with() {
        let learned = |credentials| Learned {
            era: Some(Era::Legacy {
                version: "2025-11-25".into(),
                session_id: Some("s-1".into()),
                capabilities: Some(json!({})),
                credentials,
            }),
            ..Default::default()
        };
        assert_eq!(McpSession::from_learned(learned(Some(5)), 5).learned().session_id(), Some("s-1"));
        for (made_with, now) in [(Some(5), 6), (None, 5)] {
            let session = McpSession::from_learned(learned(made_with), now);
            assert_eq!(session.era(), Some(&Era::uninitialized("2025-11-25".into())), "{made_with:?} {now}");
        }
        let modern = Learned { era: Some(Era::Modern(MODERN_PROTOCOL.into())), ..Default::default() };
        assert_eq!(McpSession::from_learned(modern.clone(), 9).learned(), &modern);
    }

    #[test]
    fn request_ids_of_two_processes_start_far_apart() {
        // Processes sharing a session must not reuse each other's ids.
        let (mut first, mut second) = (McpSession::new(), McpSession::new());
        let (a, b) = (first.id(), second.id());
        assert!(a > 0 && b > 0 && a < 1 << 53 && b < 1 << 53, "{a} {b}");
        assert!((a - b).abs() >= 1 << 16, "{a} {b}");
        // And within one process, each request has an id of its own.
        assert_eq!((first.id(), first.id()), (a + 1, a + 2));
    }

    #[test]
    fn a_created_task_is_told_from_a_result() {
        let raw = |v: Value| RawValue::from_string(v.to_string()).unwrap();
        let created = json!({"task": {"taskId": "t-1", "status": "working", "createdAt": "2025-11-25T10:30:00Z", "ttl": 60000}});
        assert_eq!(created_task(&raw(created)).as_deref(), Some("t-1"));
        // A server that runs the call directly answers with its result.
        assert_eq!(created_task(&raw(json!({"content": [{"type": "text", "text": "done"}]}))), None);
        assert_eq!(created_task(&raw(json!({"task": {"taskId": ""}}))), None);
        assert_eq!(created_task(&raw(json!({"task": "t-1"}))), None);
    }

    #[test]
    fn which_errors_identify_a_2026_07_28_server() {
        let error = |code: i32| -> ErrorData { serde_json::from_value(json!({"code": code, "message": "m"})).unwrap() };
        for (status, code) in [(400, -32022), (400, -32020), (400, -32021), (404, -32601), (200, -32600), (200, -32000)] {
            assert!(is_modern_error(status, &error(code)), "{status} {code}");
        }
        // A session-based server's refusals of a request it cannot place:
        // the client falls back to initialize.
        for (status, code) in [(400, -32000), (400, -32600), (400, -32601), (404, -32001), (405, -32000)] {
            assert!(!is_modern_error(status, &error(code)), "{status} {code}");
        }
    }

    #[test]
    fn the_newest_common_version_is_chosen() {
        let error = |supported: Value| -> ErrorData {
            serde_json::from_value(json!({"code": -32022, "message": "Unsupported protocol version", "data": {"supported": supported}}))
                .unwrap()
        };
        let pick = |supported: Value| common_version(&error(supported)).map(|v| v.as_str().to_owned());
        assert_eq!(pick(json!(["2025-06-18", "2025-11-25"])).as_deref(), Some("2025-11-25"));
        assert_eq!(pick(json!(["2027-01-01", "2026-07-28"])).as_deref(), Some("2026-07-28"));
        assert_eq!(pick(json!(["2025-03-26"])).as_deref(), Some("2025-03-26"));
        assert_eq!(pick(json!(["2024-11-05", "2027-01-01"])), None);
        assert_eq!(pick(json!("2025-11-25")), None);
    }
}
