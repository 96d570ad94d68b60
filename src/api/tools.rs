//! MCP calls: mcp_list_tools, mcp_call_tool, mcp_test_server.

use crate::api::identity::current_user_id;
use crate::state::now;
use crate::error::{or_raise, required, Error};
use crate::runtime;
use crate::store::{self, ServerRow};
use mcp_oauth_core::mcp::{self, McpError, Target};
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

/// Refreshes the row's tokens and stores them; an `invalid_grant` (or any
/// refresh that cannot succeed) marks the row for a new sign-in.
fn refresh(http: &HttpClient, row: &mut ServerRow) -> Result<(), Error> {
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
            reauth(row, &format!("the refresh was refused ({code})"))
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
    let Some(tokens) = &row.tokens else {
        return Err(Error::ReauthRequired("the user has not signed in to this server yet".into()));
    };
    if tokens.expires_at.is_some_and(|at| at - REFRESH_MARGIN_SECS <= now()) {
        refresh(http, row)?;
    }
    Ok(row.tokens.as_ref().map(|t: &TokenSet| t.access_token.clone()))
}

/// Runs `op` in a fresh session with the row's credentials: refreshes once
/// after a 401, and records a step-up after a 403 insufficient_scope.
fn with_session<T>(
    server_id: uuid::Uuid,
    op: impl Fn(&HttpClient, &Target<'_>, &mcp::Session) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut row = usable_row(server_id)?;
    let http = runtime::http_client()?;
    let url = Url::parse(&row.url).map_err(|_| Error::InvalidArgument("the server URL is not valid".into()))?;
    let mut refreshed = false;
    loop {
        let token = access_token(&http, &mut row)?;
        let headers = if row.auth_type == "headers" { row.headers.clone() } else { vec![] };
        let target = Target { url: &url, headers: &headers, bearer: token.as_deref() };
        let outcome = runtime::block_on(mcp::initialize(&http, &target))?
            .map_err(Error::from)
            .and_then(|session| op(&http, &target, &session));
        match outcome {
            Err(Error::Mcp(McpError::Unauthorized { .. })) if row.auth_type == "oauth" && !refreshed => {
                refreshed = true;
                refresh(&http, &mut row)?;
            }
            Err(Error::Mcp(McpError::Unauthorized { .. })) if row.auth_type == "oauth" => {
                return reauth(&row, "the server refused the access token").map(|_| unreachable!());
            }
            Err(Error::Mcp(McpError::Forbidden { challenge: Some(c), .. }))
                if row.auth_type == "oauth" && c.error.as_deref() == Some("insufficient_scope") =>
            {
                return step_up(&row, c.scope.as_deref()).map(|_| unreachable!());
            }
            Err(e) => {
                let report = e.report();
                store::record_failure(&row, &report.message_with_detail(), false, None)?;
                return Err(e);
            }
            Ok(value) => {
                if row.record.step_up_attempts > 0 {
                    let mut record = row.record.clone();
                    record.step_up_attempts = 0;
                    record.step_up_scope = None;
                    store::save_record(&row, &record)?;
                }
                return Ok(value);
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
    with_session(server_id, |http, target, session| Ok(runtime::block_on(mcp::list_tools(http, target, session))??))
}

fn call_tool(server_id: uuid::Uuid, name: &str, args: Value) -> Result<Value, Error> {
    if name.is_empty() || name.len() > 256 {
        return Err(Error::InvalidArgument("the tool name must be 1 to 256 characters".into()));
    }
    if !args.is_object() {
        return Err(Error::InvalidArgument("args must be a JSON object".into()));
    }
    with_session(server_id, |http, target, session| {
        Ok(runtime::block_on(mcp::call_tool(http, target, session, name, args.clone()))??)
    })
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
