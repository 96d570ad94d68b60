//! MCP calls: mcp_list_tools, mcp_call_tool, mcp_test_server.

use crate::api::identity::current_user_id;
use crate::state::now;
use crate::error::{or_raise, required, Error};
use crate::runtime;
use crate::store::{self, ServerRow};
use mcp_oauth_core::mcp::{McpError, McpSession, Target};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use mcp_oauth_core::net::HttpClient;
use mcp_oauth_core::oauth::{self, ClientCredentials, OAuthError, TokenSet};
use mcp_oauth_core::signin::MAX_STEP_UPS;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;
use url::Url;

/// Refresh this long before the access token expires.
const REFRESH_MARGIN_SECS: i64 = 60;

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

/// Identifies the credentials a session was made with (in memory only).
fn fingerprint(url: &str, headers: &[(String, String)], token: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (url, headers, token).hash(&mut h);
    h.finish()
}

fn take_session(id: uuid::Uuid, fp: u64) -> McpSession {
    SESSIONS.with(|s| match s.borrow_mut().remove(&id) {
        Some((cached, session)) if cached == fp => session,
        _ => McpSession::new(),
    })
}

fn keep_session(id: uuid::Uuid, fp: u64, session: McpSession) {
    SESSIONS.with(|s| s.borrow_mut().insert(id, (fp, session)));
}

fn expiring(tokens: &TokenSet) -> bool {
    tokens.expires_at.is_some_and(|at| at - REFRESH_MARGIN_SECS <= now())
}

/// Refreshes the row's tokens once for all backends: the refresh holds a
/// transaction-level advisory lock on the row, and whoever gets it second
/// finds the tokens already refreshed (rotation makes a second refresh with
/// the same refresh token fail). The new pair is committed durably before
/// it is used. `invalid_grant` (or any refresh that cannot succeed) marks
/// the row for a new sign-in.
fn refresh(http: &HttpClient, row: &mut ServerRow, stale_access_token: &str) -> Result<(), Error> {
    store::lock_for_refresh(row)?;
    let latest = store::load(row.id, &row.user_id)?;
    let already = latest.tokens.as_ref().is_some_and(|t| t.access_token != stale_access_token && !expiring(t));
    *row = latest;
    if already {
        return Ok(());
    }
    if row.reauth_required {
        return Err(Error::ReauthRequired("the server needs a new sign-in".into()));
    }
    let (Some(tokens), Some(auth_server), Some(client), Some(resource)) = (
        row.tokens.clone(),
        row.record.authorization_server.clone(),
        row.record.client.clone(),
        row.record.resource.clone(),
    ) else {
        return reauth(row, "the access token expired and cannot be refreshed");
    };
    if tokens.refresh_token.is_none() {
        return reauth(row, "the access token expired and no refresh token was issued");
    }
    let credentials = ClientCredentials { client_id: &client.client_id, secret: row.client_secret.as_deref(), method: client.auth_method };
    match runtime::block_on(oauth::refresh(http, &auth_server, &credentials, &tokens, &resource, now()))? {
        Ok(fresh) => {
            store::save_tokens(row, &row.record, &fresh)?;
            row.tokens = Some(fresh);
            Ok(())
        }
        Err(OAuthError::Rejected { code, .. }) if code == "invalid_grant" || code == "invalid_client" => {
            reauth(row, &format!("the refresh was refused ({code}); sign in again"))
        }
        Err(e) => Err(e.into()),
    }
}

fn reauth(row: &ServerRow, why: &str) -> Result<(), Error> {
    store::record_failure(row, &format!("reauth_required: {why}"), true, None)?;
    Err(Error::ReauthRequired(why.to_owned()))
}

fn access_token(http: &HttpClient, row: &mut ServerRow) -> Result<Option<String>, Error> {
    if row.auth_type != "oauth" {
        return Ok(None);
    }
    if row.reauth_required {
        return Err(Error::ReauthRequired("the server needs a new sign-in".into()));
    }
    if row.tokens_unreadable {
        return Err(Error::ReauthRequired("the stored tokens cannot be read".into()));
    }
    let Some(tokens) = row.tokens.clone() else {
        return Err(Error::ReauthRequired("the user has not signed in to this server yet".into()));
    };
    if expiring(&tokens) {
        refresh(http, row, &tokens.access_token)?;
    }
    Ok(row.tokens.as_ref().map(|t| t.access_token.clone()))
}

/// What a call does once it has a session.
enum Operation {
    ListTools,
    CallTool { name: String, args: Value },
}

async fn perform(session: &mut McpSession, http: &HttpClient, target: &Target<'_>, op: &Operation) -> Result<Value, McpError> {
    match op {
        Operation::ListTools => session.list_tools(http, target).await.map(Value::Array),
        Operation::CallTool { name, args } => session.call_tool(http, target, name, args.clone()).await,
    }
}

/// Runs `op` with the row's credentials and its cached session: refreshes
/// once after a 401, and records a step-up after a 403 insufficient_scope.
fn with_session(server_id: uuid::Uuid, op: Operation) -> Result<Value, Error> {
    let mut row = usable_row(server_id)?;
    let http = runtime::http_client()?;
    let url = Url::parse(&row.url).map_err(|_| Error::InvalidArgument("the server URL is not valid".into()))?;
    let mut refreshed = false;
    loop {
        let token = access_token(&http, &mut row)?;
        let headers = if row.auth_type == "headers" { row.headers.clone() } else { vec![] };
        let fp = fingerprint(&row.url, &headers, token.as_deref());
        let mut session = take_session(server_id, fp);
        let target = Target { url: &url, headers: &headers, bearer: token.as_deref() };
        let outcome = runtime::block_on(perform(&mut session, &http, &target, &op))?.map_err(Error::from);
        match outcome {
            Ok(value) => {
                keep_session(server_id, fp, session);
                if row.record.step_up_attempts > 0 {
                    let mut record = row.record.clone();
                    record.step_up_attempts = 0;
                    record.step_up_scope = None;
                    store::save_record(&row, &record)?;
                }
                return Ok(value);
            }
            Err(Error::Mcp(McpError::Unauthorized { .. })) if row.auth_type == "oauth" && !refreshed => {
                refreshed = true;
                refresh(&http, &mut row, token.as_deref().unwrap_or(""))?;
            }
            Err(Error::Mcp(McpError::Unauthorized { .. })) if row.auth_type == "oauth" => {
                return reauth(&row, "the server refused the access token").map(|_| unreachable!());
            }
            Err(Error::Mcp(McpError::Forbidden { challenge: Some(c), .. }))
                if row.auth_type == "oauth" && c.error.as_deref() == Some("insufficient_scope") =>
            {
                return step_up(&row, c.scope.as_deref()).map(|_| unreachable!());
            }
            Err(Error::Mcp(e @ (McpError::Unauthorized { .. } | McpError::Forbidden { .. }))) if row.auth_type == "headers" => {
                let status = if matches!(e, McpError::Unauthorized { .. }) { 401 } else { 403 };
                let e = Error::HeadersRefused { status };
                store::record_failure(&row, &e.report().message_with_detail(), false, None)?;
                return Err(e);
            }
            Err(e) => {
                // A tool-level JSON-RPC error keeps the session; anything else drops it.
                if matches!(e, Error::Mcp(McpError::Rpc { .. })) {
                    keep_session(server_id, fp, session);
                }
                let report = e.report();
                store::record_failure(&row, &report.message_with_detail(), false, None)?;
                return Err(e);
            }
        }
    }
}

/// 403 insufficient_scope: remember the scope so the next sign-in asks for
/// the union, and require that sign-in.
fn step_up(row: &ServerRow, needed: Option<&str>) -> Result<(), Error> {
    let mut record = row.record.clone();
    record.step_up_attempts += 1;
    let mut scopes: Vec<String> = Vec::new();
    for s in [record.scope.as_deref(), record.step_up_scope.as_deref(), needed].into_iter().flatten() {
        for part in s.split_ascii_whitespace() {
            if !scopes.iter().any(|x| x == part) {
                scopes.push(part.to_owned());
            }
        }
    }
    record.step_up_scope = (!scopes.is_empty()).then(|| scopes.join(" "));
    let why = if record.step_up_attempts >= MAX_STEP_UPS {
        format!(
            "the server still refuses with insufficient_scope after {} sign-ins; stopping. Call mcp_oauth_reset() to start over",
            record.step_up_attempts
        )
    } else {
        format!("the server requires more scope ({})", needed.unwrap_or("unspecified"))
    };
    store::record_failure(row, &format!("reauth_required: {why}"), true, Some(&record))?;
    Err(Error::ReauthRequired(why))
}

fn list_tools(server_id: uuid::Uuid) -> Result<Vec<Value>, Error> {
    match with_session(server_id, Operation::ListTools)? {
        Value::Array(tools) => Ok(tools),
        _ => Ok(vec![]),
    }
}

fn call_tool(server_id: uuid::Uuid, name: &str, args: Value) -> Result<Value, Error> {
    if name.is_empty() || name.len() > 256 {
        return Err(Error::InvalidArgument("the tool name must be 1 to 256 characters".into()));
    }
    if !args.is_object() {
        return Err(Error::InvalidArgument("args must be a JSON object".into()));
    }
    with_session(server_id, Operation::CallTool { name: name.to_owned(), args })
}

fn uuid_of(id: pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*id.as_bytes())
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
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
#[search_path(pg_catalog, pg_temp)]
fn mcp_call_tool(server_id: Option<pgrx::Uuid>, name: Option<&str>, args: default!(Option<JsonB>, "'{}'")) -> JsonB {
    JsonB(or_raise((|| {
        let id = required(server_id, "server_id")?;
        call_tool(uuid_of(id), required(name, "name")?, required(args, "args")?.0)
    })()))
}

fn test_server(server_id: uuid::Uuid) -> Result<Value, Error> {
    match list_tools(server_id) {
        Ok(tools) => {
            let user_id = current_user_id()?;
            let row = store::load(server_id, &user_id)?;
            store::clear_failure(&row)?;
            let listed: Vec<Value> = tools
                .iter()
                .map(|t| serde_json::json!({"name": t.get("name"), "description": t.get("description")}))
                .collect();
            Ok(serde_json::json!({"ok": true, "tool_count": listed.len(), "tools": listed}))
        }
        // Identity and "no such row" are the caller's mistakes: raise them.
        Err(e @ (Error::Identity(_) | Error::ServerNotFound(_))) => Err(e),
        Err(e) => {
            let report = e.report();
            let message = report.message_with_detail();
            if let Ok(row) = current_user_id().and_then(|u| store::load(server_id, &u)) {
                store::record_failure(&row, &message, false, None)?;
            }
            Ok(serde_json::json!({"ok": false, "error": message, "sqlstate": report.sqlstate}))
        }
    }
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_test_server(server_id: Option<pgrx::Uuid>) -> JsonB {
    JsonB(or_raise(required(server_id, "server_id").and_then(|id| test_server(uuid_of(id)))))
}
