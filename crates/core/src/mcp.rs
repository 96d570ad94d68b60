//! An MCP client over Streamable HTTP, dual-era: it speaks the current
//! revision (2026-07-28: no handshake, protocol version and capabilities in
//! every request's `_meta`, mirrored into `MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` headers) and falls back to the
//! session-based revisions (2025-11-25, 2025-06-18, 2025-03-26: `initialize`,
//! `Mcp-Session-Id`) for servers that do not. JSON and SSE responses both.
//!
//! An `McpSession` remembers what it learned about one server (its era, a
//! legacy session, which tool parameters travel as headers) and is meant to
//! be kept and reused, so that a warm call is one HTTP round trip.

use crate::discovery::challenge_of;
use crate::net::{display_host, HttpClient, HttpRequest, HttpResponse, NetError};
use crate::www_authenticate::BearerChallenge;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::HeaderName;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use url::Url;

/// The current, session-less revision.
pub const MODERN_PROTOCOL: &str = "2026-07-28";
/// The newest session-based revision.
pub const LATEST_SESSION_PROTOCOL: &str = "2025-11-25";
/// Session-based revisions accepted from a server's initialize result.
pub const SESSION_PROTOCOLS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// Most pages of tools read before giving up on a server that never ends.
const MAX_PAGES: usize = 100;
/// JSON-RPC codes by which a 2026-07-28 server identifies itself.
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
const HEADER_MISMATCH: i64 = -32020;
const MISSING_CLIENT_CAPABILITY: i64 = -32021;
const METHOD_NOT_FOUND: i64 = -32601;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{host} answered 401 Unauthorized")]
    Unauthorized { host: String, challenge: Option<BearerChallenge> },
    #[error("{host} answered 403 Forbidden")]
    Forbidden { host: String, challenge: Option<BearerChallenge> },
    #[error("{host} answered HTTP {status}")]
    Http { host: String, status: u16 },
    #[error("{host}: {why}")]
    Protocol { host: String, why: String },
    #[error("{host} returned JSON-RPC error {code}: {message}")]
    Rpc { host: String, code: i64, message: String },
}

/// How to reach one server: its URL and what to send with every request.
pub struct Target<'a> {
    pub url: &'a Url,
    /// Custom headers (headers mode); all treated as secrets.
    pub headers: &'a [(String, String)],
    pub bearer: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// Every credential a request to this target carries.
    pub fn secrets(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        let headers = self.headers;
        headers.iter().map(|(_, v)| v.as_str()).chain(self.bearer)
    }
}

/// What is known about the server's protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// Per-request metadata at this version.
    Modern(String),
    /// An initialized session-based connection.
    Legacy { version: String, session_id: Option<String> },
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
    /// Per tool: (property path, header name) of `x-mcp-header` parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header_params: BTreeMap<String, Vec<(Vec<String>, String)>>,
}

/// One server's connection state; keep it and reuse it.
#[derive(Debug, Clone, Default)]
pub struct McpSession {
    learned: Learned,
    next_id: i64,
}

fn protocol(host: &str, why: impl Into<String>) -> McpError {
    McpError::Protocol { host: host.to_owned(), why: why.into() }
}

fn status_error(host: &str, response: &HttpResponse) -> McpError {
    match response.status {
        401 => McpError::Unauthorized { host: host.to_owned(), challenge: challenge_of(response) },
        403 => McpError::Forbidden { host: host.to_owned(), challenge: challenge_of(response) },
        status => McpError::Http { host: host.to_owned(), status },
    }
}

/// The JSON-RPC messages of a response: a JSON body (object or batch) or the
/// `data` of each SSE event.
fn messages(response: &HttpResponse) -> Vec<Value> {
    if response.content_type() == "text/event-stream" {
        sse_data(&response.body).into_iter().filter_map(|d| serde_json::from_str(&d).ok()).collect()
    } else {
        match serde_json::from_slice::<Value>(&response.body) {
            Ok(Value::Array(items)) => items,
            Ok(other) => vec![other],
            Err(_) => vec![],
        }
    }
}

/// A JSON-RPC response, its result left as the server wrote it.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<Value>,
}

/// The result of request `id` as the server wrote it (results pass
/// through untouched, and are not rebuilt as a tree only to be written out
/// again), or its JSON-RPC error.
fn find_response(host: &str, response: &HttpResponse, id: i64) -> Result<Box<RawValue>, McpError> {
    let answer = |reply: Reply<'_>| -> Option<Result<Box<RawValue>, McpError>> {
        if reply.id.as_ref().and_then(Value::as_i64) != Some(id) {
            return None;
        }
        match (reply.error, reply.result) {
            (Some(error), _) => Some(Err(rpc_error(host, &error))),
            (None, Some(result)) => Some(Ok(result.to_owned())),
            (None, None) => None,
        }
    };
    let found = if response.content_type() == "text/event-stream" {
        sse_data(&response.body).iter().find_map(|data| serde_json::from_str::<Reply<'_>>(data).ok().and_then(answer))
    } else if let Ok(reply) = serde_json::from_slice::<Reply<'_>>(&response.body) {
        answer(reply)
    } else {
        serde_json::from_slice::<Vec<Reply<'_>>>(&response.body).ok().and_then(|batch| batch.into_iter().find_map(answer))
    };
    found.unwrap_or_else(|| Err(protocol(host, "no JSON-RPC response to the request was received")))
}

fn rpc_error(host: &str, error: &Value) -> McpError {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
    // Kept whole enough to redact (see `McpError::redacted`), cut after.
    let message: String = error.get("message").and_then(Value::as_str).unwrap_or("").chars().take(64 * 1024).collect();
    McpError::Rpc { host: host.to_owned(), code, message }
}

impl McpError {
    /// This error with every credential of `target` removed from what the
    /// server said, and the server's text cut to its displayed length.
    pub fn redacted(self, target: &Target<'_>) -> Self {
        let clean = |text: &str| -> String {
            crate::text::redact(text, target.secrets()).chars().take(crate::text::REMOTE_TEXT_CHARS).collect()
        };
        match self {
            McpError::Rpc { host, code, message } => McpError::Rpc { host, code, message: clean(&message) },
            McpError::Protocol { host, why } => McpError::Protocol { host, why: clean(&why) },
            other => other,
        }
    }
}

/// A JSON-RPC error by which a 2026-07-28 server identifies itself.
fn modern_error(response: &HttpResponse) -> Option<Value> {
    messages(response).into_iter().find_map(|m| {
        let error = m.get("error")?.clone();
        let code = error.get("code")?.as_i64()?;
        let recognised = matches!(code, UNSUPPORTED_PROTOCOL_VERSION | HEADER_MISMATCH | MISSING_CLIENT_CAPABILITY)
            || (code == METHOD_NOT_FOUND && response.status == 404);
        recognised.then_some(error)
    })
}

/// The `data` of each event in an SSE stream (WHATWG HTML §9.2).
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            if let Some(d) = data.take() {
                events.push(d);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("data") {
            let value = rest.strip_prefix(':').map(|v| v.strip_prefix(' ').unwrap_or(v));
            if let Some(value) = value.or(if rest.is_empty() { Some("") } else { None }) {
                match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                }
            }
        }
    }
    if let Some(d) = data {
        events.push(d);
    }
    events
}

/// The body of a 2026-07-28 request: `params` with the per-request `_meta`
/// (protocol version, client capabilities, client info) added. Written
/// directly, not through a JSON tree: it is built on every call.
pub fn modern_body(id: i64, version: &str, method: &str, params: &Value) -> String {
    let client_meta = |out: &mut String| {
        out.push_str("\"io.modelcontextprotocol/protocolVersion\":");
        out.push_str(&Value::from(version).to_string());
        out.push_str(concat!(
            ",\"io.modelcontextprotocol/clientCapabilities\":{}",
            ",\"io.modelcontextprotocol/clientInfo\":{\"name\":\"mcp_oauth\",\"version\":\"",
            env!("CARGO_PKG_VERSION"),
            "\"}"
        ));
    };
    let fields = params.as_object();
    let mut out = String::with_capacity(256);
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    out.push_str(&id.to_string());
    out.push_str(",\"method\":");
    out.push_str(&Value::from(method).to_string());
    out.push_str(",\"params\":{");
    for (key, value) in fields.into_iter().flatten().filter(|(k, _)| *k != "_meta") {
        out.push_str(&Value::from(key.as_str()).to_string());
        out.push(':');
        out.push_str(&value.to_string());
        out.push(',');
    }
    out.push_str("\"_meta\":{");
    // The caller's own _meta entries come first; ours win over them.
    if let Some(Value::Object(theirs)) = fields.and_then(|f| f.get("_meta")) {
        for (key, value) in theirs.iter().filter(|(k, _)| !k.starts_with("io.modelcontextprotocol/")) {
            out.push_str(&Value::from(key.as_str()).to_string());
            out.push(':');
            out.push_str(&value.to_string());
            out.push(',');
        }
    }
    client_meta(&mut out);
    out.push_str("}}}");
    out
}

/// A header value as 2026-07-28 carries it: plain when it is safe visible
/// ASCII, else `=?base64?…?=` (also for plain values that look like one).
pub fn header_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", STANDARD.encode(value.as_bytes()))
    }
}

fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn count_annotations(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| usize::from(k == "x-mcp-header") + count_annotations(v)).sum(),
        Value::Array(items) => items.iter().map(count_annotations).sum(),
        _ => 0,
    }
}

/// The `x-mcp-header` parameters of a tool's input schema, or why the tool
/// definition is invalid (it is then left out of the tool list).
pub fn header_params(input_schema: &Value) -> Result<Vec<(Vec<String>, String)>, String> {
    fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) -> Result<(), String> {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
        for (key, prop) in props {
            path.push(key.clone());
            if let Some(name) = prop.get("x-mcp-header") {
                let name = name.as_str().filter(|n| is_token(n)).ok_or("an x-mcp-header is not a header token")?;
                let ty = prop.get("type").and_then(Value::as_str).unwrap_or("");
                if !matches!(ty, "string" | "integer" | "boolean") {
                    return Err(format!("x-mcp-header {name} is on a parameter of type {ty:?}"));
                }
                if out.iter().any(|(_, n)| n.eq_ignore_ascii_case(name)) {
                    return Err(format!("x-mcp-header {name} appears twice"));
                }
                out.push((path.clone(), name.to_owned()));
            }
            walk(prop, path, out)?;
            path.pop();
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(input_schema, &mut Vec::new(), &mut out)?;
    if out.len() != count_annotations(input_schema) {
        return Err("an x-mcp-header is not reachable through properties alone".into());
    }
    Ok(out)
}

fn param_value(args: &Value, path: &[String]) -> Option<String> {
    let mut v = args;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

impl McpSession {
    pub fn new() -> Self {
        Self::from_learned(Learned::default())
    }

    /// A session that starts from what was learned before, possibly by
    /// another process. Request ids start at a random offset, so that
    /// processes sharing a server's session do not reuse each other's ids.
    pub fn from_learned(learned: Learned) -> Self {
        let mut offset = [0u8; 4];
        let _ = getrandom::fill(&mut offset);
        Self { learned, next_id: i64::from(u32::from_le_bytes(offset) >> 1) << 16 }
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

    fn base_request(target: &Target<'_>, body: String) -> HttpRequest {
        let mut request = HttpRequest::post(target.url.clone(), "application/json", body.into_bytes())
            .accept("application/json, text/event-stream")
            .follow_same_origin();
        for (name, value) in target.headers {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                request = request.header(name, value, true);
            }
        }
        if let Some(token) = target.bearer {
            request = request.bearer(token);
        }
        request
    }

    fn modern_request(&mut self, target: &Target<'_>, version: &str, method: &str, params: &Value) -> (i64, HttpRequest) {
        let id = self.id();
        let body = modern_body(id, version, method, params);
        let mut request = Self::base_request(target, body)
            .header(HeaderName::from_static("mcp-protocol-version"), version, false)
            .header(HeaderName::from_static("mcp-method"), method, false);
        let name = match method {
            "tools/call" | "prompts/get" => params.get("name").and_then(Value::as_str),
            "resources/read" => params.get("uri").and_then(Value::as_str),
            _ => None,
        };
        if let Some(name) = name {
            request = request.header(HeaderName::from_static("mcp-name"), &header_value(name), false);
            if method == "tools/call" {
                let args = params.get("arguments").unwrap_or(&Value::Null);
                for (path, header) in self.learned.header_params.get(name).map(Vec::as_slice).unwrap_or_default() {
                    if let (Some(value), Ok(h)) = (param_value(args, path), HeaderName::from_bytes(format!("mcp-param-{header}").as_bytes())) {
                        request = request.header(h, &header_value(&value), false);
                    }
                }
            }
        }
        (id, request)
    }

    fn legacy_request(&mut self, target: &Target<'_>, version: &str, session_id: Option<&str>, body: &Value) -> HttpRequest {
        let mut request = Self::base_request(target, body.to_string())
            .header(HeaderName::from_static("mcp-protocol-version"), version, false);
        if let Some(id) = session_id {
            request = request.header(HeaderName::from_static("mcp-session-id"), id, false);
        }
        request
    }

    /// `initialize` + `notifications/initialized`.
    async fn initialize(&mut self, http: &HttpClient, target: &Target<'_>) -> Result<(), McpError> {
        let host = display_host(target.url);
        let id = self.id();
        let body = json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": {
                "protocolVersion": LATEST_SESSION_PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "mcp_oauth", "version": env!("CARGO_PKG_VERSION")}
            }
        });
        let request = Self::base_request(target, body.to_string());
        let response = http.send(request).await?;
        if response.status != 200 {
            return Err(status_error(&host, &response));
        }
        let result: Value = serde_json::from_str(find_response(&host, &response, id)?.get())
            .map_err(|_| protocol(&host, "the initialize result is not JSON"))?;
        let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
        if !SESSION_PROTOCOLS.contains(&version) {
            return Err(protocol(
                &host,
                format!("the server speaks protocol version {:?}, which this client does not", version.chars().take(40).collect::<String>()),
            ));
        }
        let session_id = response.header("mcp-session-id").map(str::to_owned);
        let notice = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let request = self.legacy_request(target, version, session_id.as_deref(), &notice);
        let response = http.send(request).await?;
        if !(200..300).contains(&response.status) {
            return Err(status_error(&host, &response));
        }
        self.learned.era = Some(Era::Legacy { version: version.to_owned(), session_id });
        Ok(())
    }

    /// One request, in whichever era the server speaks. The first request
    /// to a server tries 2026-07-28 and falls back to a session on a 4xx
    /// that carries no modern JSON-RPC error; an expired legacy session (404)
    /// is replaced once.
    pub async fn request(&mut self, http: &HttpClient, target: &Target<'_>, method: &str, params: Value) -> Result<Value, McpError> {
        let raw = self.request_raw(http, target, method, params).await?;
        serde_json::from_str(raw.get()).map_err(|_| protocol(&display_host(target.url), "the result is not JSON"))
    }

    /// `request`, the result as the server wrote it.
    pub async fn request_raw(&mut self, http: &HttpClient, target: &Target<'_>, method: &str, params: Value) -> Result<Box<RawValue>, McpError> {
        self.request_any_era(http, target, method, params).await.map_err(|e| e.redacted(target))
    }

    async fn request_any_era(&mut self, http: &HttpClient, target: &Target<'_>, method: &str, params: Value) -> Result<Box<RawValue>, McpError> {
        let host = display_host(target.url);
        let mut renewed = false;
        let mut version_retried = false;
        loop {
            match self.learned.era.clone() {
                None | Some(Era::Modern(_)) => {
                    let cached = self.learned.era.is_some();
                    let version = match &self.learned.era {
                        Some(Era::Modern(v)) => v.clone(),
                        _ => MODERN_PROTOCOL.to_owned(),
                    };
                    let (id, request) = self.modern_request(target, &version, method, &params);
                    let response = http.send(request).await?;
                    match response.status {
                        200 => {
                            self.learned.era = Some(Era::Modern(version));
                            return find_response(&host, &response, id);
                        }
                        401 | 403 => return Err(status_error(&host, &response)),
                        400 | 404 | 405 => match modern_error(&response) {
                            Some(error) => {
                                self.learned.era = Some(Era::Modern(version.clone()));
                                let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
                                if code == UNSUPPORTED_PROTOCOL_VERSION && !version_retried {
                                    version_retried = true;
                                    let supported: Vec<String> = error
                                        .pointer("/data/supported")
                                        .and_then(Value::as_array)
                                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                                        .unwrap_or_default();
                                    if supported.iter().any(|v| v == MODERN_PROTOCOL) && version != MODERN_PROTOCOL {
                                        self.learned.era = Some(Era::Modern(MODERN_PROTOCOL.into()));
                                        continue;
                                    }
                                    if supported.iter().any(|v| SESSION_PROTOCOLS.contains(&v.as_str())) {
                                        self.initialize(http, target).await?;
                                        continue;
                                    }
                                }
                                return Err(rpc_error(&host, &error));
                            }
                            None if cached && !renewed => {
                                // The cached era no longer holds: probe again.
                                renewed = true;
                                self.learned.era = None;
                            }
                            None => {
                                self.initialize(http, target).await?;
                            }
                        },
                        _ => return Err(status_error(&host, &response)),
                    }
                }
                Some(Era::Legacy { version, session_id }) => {
                    let id = self.id();
                    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
                    let request = self.legacy_request(target, &version, session_id.as_deref(), &body);
                    let response = http.send(request).await?;
                    match response.status {
                        200 => return find_response(&host, &response, id),
                        404 if session_id.is_some() && !renewed => {
                            // The server ended the session: start a new one.
                            renewed = true;
                            self.initialize(http, target).await?;
                        }
                        _ => return Err(status_error(&host, &response)),
                    }
                }
            }
        }
    }

    /// Every tool, across all pages. Tools whose `x-mcp-header` annotations
    /// are invalid are left out (2026-07-28 requires it).
    pub async fn list_tools(&mut self, http: &HttpClient, target: &Target<'_>) -> Result<Vec<Value>, McpError> {
        let host = display_host(target.url);
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let result = self.request(http, target, "tools/list", params).await?;
            let items = result
                .get("tools")
                .and_then(Value::as_array)
                .ok_or_else(|| protocol(&host, "tools/list returned no tools array"))?;
            for tool in items {
                let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
                match header_params(tool.get("inputSchema").unwrap_or(&Value::Null)) {
                    Ok(params) => {
                        self.learned.header_params.insert(name.to_owned(), params);
                        tools.push(tool.clone());
                    }
                    Err(_) => {
                        self.learned.header_params.remove(name);
                    }
                }
            }
            cursor = result.get("nextCursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned);
            if cursor.is_none() {
                return Ok(tools);
            }
        }
        Err(protocol(&host, format!("tools/list did not end after {MAX_PAGES} pages")))
    }

    /// `tools/call`; a tool error (`isError`) is a result, not an error. On
    /// a header mismatch for a tool whose schema is not known yet, the tools
    /// are listed and the call is retried once with its `Mcp-Param-*` headers.
    /// The `CallToolResult` is returned as the server wrote it.
    pub async fn call_tool(&mut self, http: &HttpClient, target: &Target<'_>, name: &str, arguments: Value) -> Result<Box<RawValue>, McpError> {
        let params = json!({"name": name, "arguments": arguments});
        match self.request_raw(http, target, "tools/call", params.clone()).await {
            Err(McpError::Rpc { code: HEADER_MISMATCH, .. }) if !self.learned.header_params.contains_key(name) => {
                self.list_tools(http, target).await?;
                self.request_raw(http, target, "tools/call", params).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events() {
        let body = b"event: message\ndata: {\"a\":1}\n\n: comment\ndata: {\"b\":\ndata: 2}\r\n\r\nid: 3\ndata:x";
        assert_eq!(sse_data(body), vec!["{\"a\":1}", "{\"b\":\n2}", "x"]);
        assert!(sse_data(b"").is_empty());
    }

    #[test]
    fn what_a_server_says_back_is_cleaned_of_the_credentials_sent() {
        let url = Url::parse("https://mcp.example/mcp").unwrap();
        let headers = vec![("X-Api-Key".to_owned(), "key-0123456789".to_owned())];
        let target = Target { url: &url, headers: &headers, bearer: Some("at-abcdefghijklmnop") };
        let echoed = rpc_error("mcp.example", &json!({"code": -32603, "message": format!(
            "bad credentials: Bearer at-abcdefghijklmnop, key key-0123456789 {}", "y".repeat(1000))}));
        match echoed.redacted(&target) {
            McpError::Rpc { message, .. } => {
                assert!(message.starts_with("bad credentials: Bearer [redacted], key [redacted] y"), "{message}");
                assert_eq!(message.chars().count(), crate::text::REMOTE_TEXT_CHARS);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_written_body_is_the_json_of_the_request() {
        let params = json!({"name": "echo", "arguments": {"text": "a \"quoted\" \u{e9}\n"}, "_meta": {"progressToken": 7}});
        let body: Value = serde_json::from_str(&modern_body(42, "2026-07-28", "tools/call", &params)).unwrap();
        assert_eq!(body, json!({
            "jsonrpc": "2.0", "id": 42, "method": "tools/call",
            "params": {
                "name": "echo", "arguments": {"text": "a \"quoted\" \u{e9}\n"},
                "_meta": {
                    "progressToken": 7,
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {"name": "mcp_oauth", "version": env!("CARGO_PKG_VERSION")}
                }
            }
        }));
        let empty: Value = serde_json::from_str(&modern_body(1, "2026-07-28", "tools/list", &json!({}))).unwrap();
        assert_eq!(empty["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
    }

    #[test]
    fn header_values_follow_the_2026_encoding() {
        assert_eq!(header_value("us-west1"), "us-west1");
        assert_eq!(header_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(header_value("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }

    #[test]
    fn x_mcp_header_annotations() {
        let ok = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}}}});
        let mut params = header_params(&ok).unwrap();
        params.sort();
        assert_eq!(params, vec![(vec!["opts".into(), "n".into()], "N".into()), (vec!["region".into()], "Region".into())]);
        assert_eq!(param_value(&json!({"opts": {"n": 7}}), &["opts".into(), "n".into()]).as_deref(), Some("7"));
        assert_eq!(param_value(&json!({}), &["region".into()]), None);
        for bad in [
            json!({"properties": {"x": {"type": "number", "x-mcp-header": "X"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "X Y"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "A"}, "y": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"x": {"type": "array", "items": {"type": "string", "x-mcp-header": "X"}}}}),
            json!({"oneOf": [{"properties": {"x": {"type": "string", "x-mcp-header": "X"}}}]}),
        ] {
            assert!(header_params(&bad).is_err(), "{bad}");
        }
    }
}
