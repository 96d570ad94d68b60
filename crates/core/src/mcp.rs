//! An MCP client over Streamable HTTP: JSON and SSE responses,
//! `Mcp-Session-Id`, protocol version negotiation, tool listing (all pages)
//! and tool calls.

use crate::discovery::challenge_of;
use crate::net::{display_host, HttpClient, HttpRequest, HttpResponse, NetError};
use crate::www_authenticate::BearerChallenge;
use reqwest::header::HeaderName;
use serde_json::{json, Value};
use url::Url;

/// The newest session-based revision this client speaks.
pub const LATEST_SESSION_PROTOCOL: &str = "2025-11-25";
/// Revisions accepted from a server's initialize result.
pub const SUPPORTED_PROTOCOLS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// Most pages of tools read before giving up on a server that never ends.
const MAX_PAGES: usize = 100;

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

/// An initialized session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub session_id: Option<String>,
    pub protocol_version: String,
}

fn build(target: &Target<'_>, session: Option<&Session>, body: &Value) -> HttpRequest {
    let mut request = HttpRequest::post(target.url.clone(), "application/json", body.to_string().into_bytes())
        .accept("application/json, text/event-stream");
    for (name, value) in target.headers {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            request = request.header(name, value, true);
        }
    }
    if let Some(token) = target.bearer {
        request = request.bearer(token);
    }
    if let Some(session) = session {
        request = request.header(HeaderName::from_static("mcp-protocol-version"), &session.protocol_version, false);
        if let Some(id) = &session.session_id {
            request = request.header(HeaderName::from_static("mcp-session-id"), id, false);
        }
    }
    request
}

fn status_error(host: &str, response: &HttpResponse) -> McpError {
    match response.status {
        401 => McpError::Unauthorized { host: host.to_owned(), challenge: challenge_of(response) },
        403 => McpError::Forbidden { host: host.to_owned(), challenge: challenge_of(response) },
        status => McpError::Http { host: host.to_owned(), status },
    }
}

/// The JSON-RPC response with `id` in a JSON body or an SSE stream.
fn find_response(host: &str, response: &HttpResponse, id: i64) -> Result<Value, McpError> {
    let protocol = |why: &str| McpError::Protocol { host: host.to_owned(), why: why.to_owned() };
    let candidates: Vec<Value> = if response.content_type() == "text/event-stream" {
        sse_data(&response.body).into_iter().filter_map(|d| serde_json::from_str(&d).ok()).collect()
    } else {
        let value: Value = serde_json::from_slice(&response.body).map_err(|_| protocol("the response is not JSON"))?;
        match value {
            Value::Array(items) => items,
            other => vec![other],
        }
    };
    let message = candidates
        .into_iter()
        .find(|m| m.get("id").and_then(Value::as_i64) == Some(id) && (m.get("result").is_some() || m.get("error").is_some()))
        .ok_or_else(|| protocol("no JSON-RPC response to the request was received"))?;
    if let Some(error) = message.get("error") {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let text: String = error.get("message").and_then(Value::as_str).unwrap_or("").chars().take(300).collect();
        return Err(McpError::Rpc { host: host.to_owned(), code, message: text });
    }
    Ok(message.get("result").cloned().unwrap_or(Value::Null))
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

/// `initialize` + `notifications/initialized`.
pub async fn initialize(http: &HttpClient, target: &Target<'_>) -> Result<Session, McpError> {
    let host = display_host(target.url);
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": LATEST_SESSION_PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "mcp_oauth", "version": env!("CARGO_PKG_VERSION")}
        }
    });
    let response = http.send(build(target, None, &body)).await?;
    if response.status != 200 {
        return Err(status_error(&host, &response));
    }
    let result = find_response(&host, &response, 1)?;
    let version = result.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
    if !SUPPORTED_PROTOCOLS.contains(&version) {
        return Err(McpError::Protocol {
            host,
            why: format!("the server speaks protocol version {:?}, which this client does not", version.chars().take(40).collect::<String>()),
        });
    }
    let session = Session {
        session_id: response.header("mcp-session-id").map(str::to_owned),
        protocol_version: version.to_owned(),
    };
    let notice = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = http.send(build(target, Some(&session), &notice)).await?;
    if !(200..300).contains(&response.status) {
        return Err(status_error(&host, &response));
    }
    Ok(session)
}

/// One request in `session`; `id` must be unique within the session.
pub async fn request(
    http: &HttpClient,
    target: &Target<'_>,
    session: &Session,
    id: i64,
    method: &str,
    params: Value,
) -> Result<Value, McpError> {
    let host = display_host(target.url);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let response = http.send(build(target, Some(session), &body)).await?;
    if response.status != 200 {
        return Err(status_error(&host, &response));
    }
    find_response(&host, &response, id)
}

/// Every tool, across all pages.
pub async fn list_tools(http: &HttpClient, target: &Target<'_>, session: &Session) -> Result<Vec<Value>, McpError> {
    let host = display_host(target.url);
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let result = request(http, target, session, 10 + page as i64, "tools/list", params).await?;
        let items = result.get("tools").and_then(Value::as_array).ok_or_else(|| McpError::Protocol {
            host: host.clone(),
            why: "tools/list returned no tools array".into(),
        })?;
        tools.extend(items.iter().cloned());
        cursor = result.get("nextCursor").and_then(Value::as_str).filter(|c| !c.is_empty()).map(str::to_owned);
        if cursor.is_none() {
            return Ok(tools);
        }
    }
    Err(McpError::Protocol { host, why: format!("tools/list did not end after {MAX_PAGES} pages") })
}

/// `tools/call`; a tool error (`isError`) is a result, not an error.
pub async fn call_tool(
    http: &HttpClient,
    target: &Target<'_>,
    session: &Session,
    name: &str,
    arguments: Value,
) -> Result<Value, McpError> {
    request(http, target, session, 2, "tools/call", json!({"name": name, "arguments": arguments})).await
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
}
