//! MCP calls: mcp_list_tools, mcp_call_tool, mcp_test_server.

use crate::api::identity::current_user_id;
use crate::durable;
use crate::error::{or_raise, required, Error};
use crate::runtime;
use crate::store::{self, AuthType, Change, Condition, RowUpdate, ServerRow};
use crate::tokens;
use mcp_oauth_core::mcp::{McpError, McpSession, Target};
use mcp_oauth_core::net::HttpClient;
use mcp_oauth_core::signin::MAX_STEP_UPS;
use pgrx::prelude::*;
use crate::jsonb::RawJsonb;
use pgrx::JsonB;
use serde_json::value::RawValue;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use url::Url;

fn usable_row(server_id: uuid::Uuid) -> Result<ServerRow, Error> {
    let user_id = current_user_id()?;
    let row = store::load(server_id, &user_id)?;
    if !row.enabled {
        return Err(Error::Disabled(server_id));
    }
    Ok(row)
}

thread_local! {
    /// One MCP session per server row, kept for the backend's life and
    /// replaced when the row's URL, headers or token change.
    static SESSIONS: RefCell<HashMap<uuid::Uuid, (u64, McpSession)>> = RefCell::new(HashMap::new());
}

thread_local! {
    /// Each row's URL, parsed, by row id (URL parsing is not free).
    static URLS: RefCell<HashMap<uuid::Uuid, (String, Url)>> = RefCell::new(HashMap::new());
}

fn parsed_url(row: &ServerRow) -> Result<Url, Error> {
    if let Some(url) = URLS.with(|u| u.borrow().get(&row.id).filter(|(text, _)| *text == row.url).map(|(_, url)| url.clone())) {
        return Ok(url);
    }
    let url = Url::parse(&row.url).map_err(|_| Error::InvalidArgument("the server URL is not valid".into()))?;
    URLS.with(|u| {
        let mut urls = u.borrow_mut();
        if urls.len() >= 1024 {
            urls.clear();
        }
        urls.insert(row.id, (row.url.clone(), url.clone()));
    });
    Ok(url)
}

/// Identifies the credentials a session was made with (in memory only).
fn fingerprint(url: &str, headers: &[(String, String)], token: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (url, headers, token).hash(&mut h);
    h.finish()
}

/// This backend's session with the row's server, or a new one that starts
/// from what any backend learned about the server.
fn take_session(row: &ServerRow, fp: u64) -> McpSession {
    SESSIONS.with(|s| match s.borrow_mut().remove(&row.id) {
        Some((cached, session)) if cached == fp => session,
        _ => McpSession::from_learned(row.protocol.clone()),
    })
}

/// Shares what this call learned about the server with other backends.
fn share_learned(row: &ServerRow, session: &McpSession) -> Result<(), Error> {
    if *session.learned() == row.protocol {
        return Ok(());
    }
    let learned = serde_json::to_value(session.learned()).expect("learned state serialises");
    let update = RowUpdate { protocol: Change::Set(learned), ..Default::default() };
    durable::remember(row, Condition::Generation(row.generation), update)
}

fn keep_session(id: uuid::Uuid, fp: u64, session: McpSession) {
    SESSIONS.with(|s| s.borrow_mut().insert(id, (fp, session)));
}

/// Records a failure of a call on `row` (durably; skipped if the row changed
/// since it was read) and returns the error to raise.
fn failed(row: &ServerRow, error: Error, reauth: bool) -> Error {
    let update = RowUpdate::failure(&error.report().message_with_detail(), reauth);
    match durable::write(row, Condition::Generation(row.generation), update) {
        Ok(_) => error,
        Err(e) => e,
    }
}

/// What a call does once it has a session.
enum Operation {
    ListTools,
    CallTool { name: String, args: Value },
}

/// What it returns: tools (parsed: their schemas are read), or a result as
/// the server wrote it (passed through to SQL untouched).
enum Outcome {
    Tools(Vec<Value>),
    Raw(Box<RawValue>),
}

async fn perform(session: &mut McpSession, http: &HttpClient, target: &Target<'_>, op: &Operation) -> Result<Outcome, McpError> {
    match op {
        Operation::ListTools => session.list_tools(http, target).await.map(Outcome::Tools),
        Operation::CallTool { name, args } => session.call_tool(http, target, name, args.clone()).await.map(Outcome::Raw),
    }
}

/// Runs `op` with the row's credentials and its cached session: refreshes
/// once after a 401, and records a step-up after a 403 insufficient_scope.
fn with_session(server_id: uuid::Uuid, op: Operation) -> Result<Outcome, Error> {
    let mut row = usable_row(server_id)?;
    let http = runtime::http_client()?;
    let url = parsed_url(&row)?;
    let mut refreshed = false;
    loop {
        let token = tokens::access_token(&http, &mut row)?;
        let headers = if row.auth_type == AuthType::Headers { row.headers.clone() } else { vec![] };
        let fp = fingerprint(&row.url, &headers, token.as_deref());
        let mut session = take_session(&row, fp);
        let target = Target { url: &url, headers: &headers, bearer: token.as_deref() };
        let outcome = runtime::block_on(perform(&mut session, &http, &target, &op))?.map_err(Error::from);
        let oauth = row.auth_type == AuthType::OAuth;
        match outcome {
            Ok(value) => {
                share_learned(&row, &session)?;
                keep_session(server_id, fp, session);
                if row.record.step_up_attempts > 0 {
                    let update = RowUpdate::default().remove_metadata(&["step_up_attempts", "step_up_scope"]);
                    durable::write(&row, Condition::Generation(row.generation), update)?;
                }
                return Ok(value);
            }
            Err(Error::Mcp(McpError::Unauthorized { .. })) if oauth && !refreshed => {
                refreshed = true;
                tokens::refresh(&http, &mut row, token.as_deref().unwrap_or(""))?;
            }
            Err(Error::Mcp(McpError::Unauthorized { .. })) if oauth => {
                return Err(tokens::reauth(&row, "the server refused the access token"));
            }
            Err(Error::Mcp(McpError::Forbidden { challenge: Some(c), .. }))
                if oauth && c.error.as_deref() == Some("insufficient_scope") =>
            {
                return Err(step_up(&row, c.scope.as_deref()));
            }
            Err(Error::Mcp(e @ (McpError::Unauthorized { .. } | McpError::Forbidden { .. }))) if !oauth => {
                let status = if matches!(e, McpError::Unauthorized { .. }) { 401 } else { 403 };
                return Err(failed(&row, Error::HeadersRefused { status }, false));
            }
            Err(e) => {
                // A tool-level JSON-RPC error keeps the session; anything else drops it.
                if matches!(e, Error::Mcp(McpError::Rpc { .. })) {
                    share_learned(&row, &session)?;
                    keep_session(server_id, fp, session);
                }
                return Err(failed(&row, e, false));
            }
        }
    }
}

/// 403 insufficient_scope: remember the scope so the next sign-in asks for
/// the union, and require that sign-in.
fn step_up(row: &ServerRow, needed: Option<&str>) -> Error {
    let attempts = row.record.step_up_attempts + 1;
    let granted = row.credentials.as_ref().and_then(|c| c.tokens.scope.as_deref());
    let mut scopes: Vec<String> = Vec::new();
    for s in [granted, row.record.step_up_scope.as_deref(), needed].into_iter().flatten() {
        for part in s.split_ascii_whitespace() {
            if !scopes.iter().any(|x| x == part) {
                scopes.push(part.to_owned());
            }
        }
    }
    let why = if attempts >= MAX_STEP_UPS {
        format!(
            "the server still refuses with insufficient_scope after {attempts} sign-ins; stopping. Call mcp_oauth_reset() to start over"
        )
    } else {
        format!("the server requires more scope ({})", needed.unwrap_or("unspecified"))
    };
    let mut update = RowUpdate::failure(&format!("reauth_required: {why}"), true).set_metadata("step_up_attempts", attempts);
    if !scopes.is_empty() {
        update = update.set_metadata("step_up_scope", scopes.join(" "));
    }
    match durable::write(row, Condition::Generation(row.generation), update) {
        Ok(_) => Error::ReauthRequired(why),
        Err(e) => e,
    }
}

fn list_tools(server_id: uuid::Uuid) -> Result<Vec<Value>, Error> {
    match with_session(server_id, Operation::ListTools)? {
        Outcome::Tools(tools) => Ok(tools),
        Outcome::Raw(_) => Ok(vec![]),
    }
}

fn call_tool(server_id: uuid::Uuid, name: &str, args: Value) -> Result<RawJsonb, Error> {
    if name.is_empty() || name.len() > 256 {
        return Err(Error::InvalidArgument("the tool name must be 1 to 256 characters".into()));
    }
    if !args.is_object() {
        return Err(Error::InvalidArgument("args must be a JSON object".into()));
    }
    match with_session(server_id, Operation::CallTool { name: name.to_owned(), args })? {
        Outcome::Raw(result) => Ok(RawJsonb(String::from(Box::<str>::from(result)))),
        Outcome::Tools(_) => Err(Error::Internal("tools/call returned a tool list".into())),
    }
}

fn uuid_of(id: pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*id.as_bytes())
}

#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn mcp_list_tools(
    server_id: Option<pgrx::Uuid>,
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(title, Option<String>),
        name!(description, Option<String>),
        name!(input_schema, Option<JsonB>),
        name!(output_schema, Option<JsonB>),
        name!(annotations, Option<JsonB>),
    ),
> {
    let tools = or_raise(required(server_id, "server_id").and_then(|id| list_tools(uuid_of(id))));
    let text = |t: &Value, k: &str| t.get(k).and_then(Value::as_str).map(str::to_owned);
    let json = |t: &Value, k: &str| t.get(k).filter(|v| !v.is_null()).cloned().map(JsonB);
    TableIterator::new(tools.into_iter().map(move |t| {
        (
            text(&t, "name").unwrap_or_default(),
            text(&t, "title"),
            text(&t, "description"),
            json(&t, "inputSchema"),
            json(&t, "outputSchema"),
            json(&t, "annotations"),
        )
    }))
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_call_tool(server_id: Option<pgrx::Uuid>, name: Option<&str>, args: default!(Option<JsonB>, "'{}'")) -> RawJsonb {
    or_raise((|| {
        let id = required(server_id, "server_id")?;
        call_tool(uuid_of(id), required(name, "name")?, required(args, "args")?.0)
    })())
}

fn test_server(server_id: uuid::Uuid) -> Result<Value, Error> {
    match list_tools(server_id) {
        Ok(tools) => {
            let row = store::load(server_id, &current_user_id()?)?;
            if row.last_error.is_some() {
                let update = RowUpdate { last_error: Change::Clear, ..Default::default() };
                durable::write(&row, Condition::Generation(row.generation), update)?;
            }
            let listed: Vec<Value> = tools
                .iter()
                .map(|t| serde_json::json!({"name": t.get("name"), "description": t.get("description")}))
                .collect();
            Ok(serde_json::json!({"ok": true, "tool_count": listed.len(), "tools": listed}))
        }
        // Identity and "no such row" are the caller's mistakes: raise them.
        Err(e @ (Error::Identity(_) | Error::ServerNotFound(_) | Error::Cancelled)) => Err(e),
        Err(e) => {
            let report = e.report();
            let message = report.message_with_detail();
            // Also failures found before any request (no sign-in yet, ...).
            if let Ok(row) = current_user_id().and_then(|u| store::load(server_id, &u)) {
                if row.last_error.as_deref() != Some(message.as_str()) {
                    durable::write(&row, Condition::Generation(row.generation), RowUpdate::failure(&message, false))?;
                }
            }
            Ok(serde_json::json!({"ok": false, "error": message, "sqlstate": report.sqlstate}))
        }
    }
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_test_server(server_id: Option<pgrx::Uuid>) -> JsonB {
    JsonB(or_raise(required(server_id, "server_id").and_then(|id| test_server(uuid_of(id)))))
}
