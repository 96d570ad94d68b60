//! What every MCP function shares: the row read and its credentials, a
//! per-backend MCP session per row, refresh once after a 401, step-up after
//! a 403 insufficient_scope, failures recorded on the row, and what was
//! learned about the server shared with every other backend.

use crate::durable;
use crate::error::Error;
use crate::gucs;
use crate::identity::current_user_id;
use crate::runtime;
use crate::stats;
use crate::store::{self, AuthType, Change, Condition, RowUpdate, ServerRow};
use crate::tokens;
use mcp_oauth_core::mcp::{Call, ClientCapabilities, InputRound, Listing, McpError, McpSession, Target};
use mcp_oauth_core::net::HttpClient;
use mcp_oauth_core::secret::Secret;
use mcp_oauth_core::signin::MAX_STEP_UPS;
use serde_json::value::RawValue;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use url::Url;

pub fn usable_row(server_id: uuid::Uuid) -> Result<ServerRow, Error> {
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
fn fingerprint(url: &str, headers: &[(String, Secret)], token: Option<&Secret>) -> u64 {
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
pub fn failed(row: &ServerRow, error: Error, reauth: bool) -> Error {
    let update = RowUpdate::failure(&error.report().message_with_detail(), reauth);
    match durable::write(row, Condition::Generation(row.generation), update) {
        Ok(_) => error,
        Err(e) => e,
    }
}

/// What a call does once it has a session.
pub enum Operation {
    /// Every item of a list.
    List(Listing),
    /// `tools/call` (which may list the tools first to learn their headers).
    CallTool(Call),
    /// Any other request, its result passed through.
    Request(Call),
}

/// What it returns: a list's items (parsed: tools' schemas are read), or a
/// result as the server wrote it (passed through to SQL untouched).
pub enum Outcome {
    Items(Vec<Value>),
    Raw(Box<RawValue>),
}

async fn perform(session: &mut McpSession, http: &HttpClient, target: &Target<'_>, op: &mut Operation) -> Result<Outcome, McpError> {
    match op {
        Operation::List(listing) => session.list(http, target, *listing).await.map(Outcome::Items),
        Operation::CallTool(call) => session.call_tool(http, target, call).await.map(Outcome::Raw),
        Operation::Request(call) => session.request(http, target, call).await.map(Outcome::Raw),
    }
}

thread_local! {
    /// The parsed mcp_oauth.client_capabilities, by its text.
    static CAPABILITIES: RefCell<Option<(String, Rc<ClientCapabilities>)>> = const { RefCell::new(None) };
}

/// What the application declares to servers (mcp_oauth.client_capabilities).
fn client_capabilities() -> Result<Rc<ClientCapabilities>, Error> {
    let text = gucs::string(&gucs::CLIENT_CAPABILITIES).unwrap_or_default();
    CAPABILITIES.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((cached, caps)) = slot.as_ref().filter(|(cached, _)| *cached == text) {
            let _ = cached;
            return Ok(caps.clone());
        }
        // The check hook saw the value first; this is for a value that was
        // set before the extension was loaded.
        let caps = Rc::new(
            mcp_oauth_core::settings::client_capabilities(&text)
                .map_err(|why| Error::InvalidArgument(format!("mcp_oauth.client_capabilities is not valid: {why}")))?,
        );
        *slot = Some((text, caps.clone()));
        Ok(caps)
    })
}

/// Runs `op` with the row's credentials and its cached session (see
/// `run_with_session`), counted in mcp_oauth_stats.
pub fn with_session(server_id: uuid::Uuid, op: Operation) -> Result<Outcome, Error> {
    let started = std::time::Instant::now();
    let result = run_with_session(server_id, op);
    match &result {
        Ok(_) => stats::record_call(server_id, started.elapsed(), None),
        // A row the caller cannot see is not a server of theirs to count.
        Err(Error::ServerNotFound(_)) => {}
        Err(e) => stats::record_call(server_id, started.elapsed(), Some(&e.report())),
    }
    result
}

/// Refreshes once after a 401, and records a step-up after a 403
/// insufficient_scope.
fn run_with_session(server_id: uuid::Uuid, mut op: Operation) -> Result<Outcome, Error> {
    let mut row = usable_row(server_id)?;
    let http = runtime::http_client()?;
    let url = parsed_url(&row)?;
    let capabilities = client_capabilities()?;
    let mut refreshed = false;
    loop {
        let token = tokens::access_token(&http, &mut row)?;
        let headers = if row.auth_type == AuthType::Headers { row.headers.clone() } else { vec![] };
        let fp = fingerprint(&row.url, &headers, token.as_ref());
        let mut session = take_session(&row, fp);
        let target = Target { url: &url, headers: &headers, bearer: token.as_ref(), capabilities: &capabilities };
        let outcome = runtime::block_on(perform(&mut session, &http, &target, &mut op))?.map_err(Error::from);
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
                tokens::refresh(&http, &mut row, &token.unwrap_or_default())?;
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

/// Every item of `listing`.
pub fn list(server_id: uuid::Uuid, listing: Listing) -> Result<Vec<Value>, Error> {
    match with_session(server_id, Operation::List(listing))? {
        Outcome::Items(items) => Ok(items),
        Outcome::Raw(_) => Err(Error::Internal("a list request returned a single result".into())),
    }
}

/// `op`'s result as the server wrote it.
pub fn raw(server_id: uuid::Uuid, op: Operation) -> Result<crate::jsonb::RawJsonb, Error> {
    match with_session(server_id, op)? {
        Outcome::Raw(result) => Ok(crate::jsonb::RawJsonb(String::from(Box::<str>::from(result)))),
        Outcome::Items(_) => Err(Error::Internal("a request returned a list".into())),
    }
}

/// The application's answers to an input-required result: `input_responses`
/// must be a JSON object (keyed as the server keyed its `inputRequests`),
/// `request_state` is echoed as given.
pub fn input_round(input_responses: Option<pgrx::JsonB>, request_state: Option<&str>) -> Result<InputRound, Error> {
    let responses = match crate::error::required(input_responses, "input_responses")?.0 {
        Value::Object(map) => map.into_iter().collect(),
        _ => return Err(Error::InvalidArgument("input_responses must be a JSON object keyed as the server's inputRequests".into())),
    };
    Ok(InputRound { responses: Some(responses), request_state: request_state.map(str::to_owned) })
}
