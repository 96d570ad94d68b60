//! What every MCP function shares: the row read and its credentials, a
//! per-backend MCP session per row, refresh once after a 401, step-up after
//! a 403 insufficient_scope, failures recorded on the row, and what was
//! learned about the server shared with every other backend.
//!
//! A call is an [`Attempt`] in steps: `prepare` (PostgreSQL: the row, a
//! refresh when due, the session) gives a [`Request`] that owns all it
//! needs; its `send` is a future that touches no PostgreSQL; `settle`
//! (PostgreSQL again) says whether the call is done or goes again. One call
//! runs the steps in turn (`with_session`); many run their requests at once
//! on the backend's runtime, the other steps between polls
//! (`run_concurrently`, and the queue workers).

use crate::durable;
use crate::error::Error;
use crate::gucs;
use crate::identity::current_user_id;
use crate::runtime;
use crate::stats;
use crate::store::{self, AuthType, Change, Condition, RowUpdate, ServerRow};
use crate::tokens;
use mcp_oauth_core::mcp::{Call, ClientCapabilities, Era, InputRound, Listing, McpError, McpSession, Target};
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

/// A backend's MCP session with a row's server.
struct Kept {
    /// The credentials it was made with (`fingerprint`).
    fingerprint: u64,
    /// The session id the row held when this one was taken from it (or last
    /// matched it), whatever credentials it was made with: a different one
    /// there means another backend replaced it, and what this backend
    /// learned is written only if the row still holds it.
    origin: Option<String>,
    session: McpSession,
    /// The resource server's latest DPoP nonce (RFC 9449 §9).
    dpop_nonce: Option<String>,
}

thread_local! {
    /// One MCP session per server row, kept for the backend's life and
    /// replaced when the row's URL, headers, token or generation change, or
    /// another backend replaced the session the row shares.
    static SESSIONS: RefCell<HashMap<uuid::Uuid, Kept>> = RefCell::new(HashMap::new());
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
fn fingerprint(row: &ServerRow, headers: &[(String, Secret)], token: Option<&Secret>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&row.url, headers, token, row.generation).hash(&mut h);
    h.finish()
}

/// The session the row shares, if it was made with the row's current
/// credentials (a session is tagged with the row's generation, which every
/// change of URL, headers or tokens bumps).
fn shared_session(row: &ServerRow) -> Option<&str> {
    match &row.protocol.era {
        Some(Era::Legacy { session_id, credentials: Some(made_with), .. }) if *made_with == row.generation => session_id.as_deref(),
        _ => None,
    }
}

/// This backend's session with the row's server; or, when it was made with
/// other credentials or another backend has since replaced the session the
/// row shares, one that starts from what the row holds.
fn take_session(row: &ServerRow, fp: u64) -> Kept {
    let held = row.protocol.session_id();
    let kept = SESSIONS.with(|s| s.borrow_mut().remove(&row.id));
    match kept {
        Some(mut kept)
            if kept.fingerprint == fp && (held == kept.origin.as_deref() || shared_session(row) == kept.session.learned().session_id()) =>
        {
            kept.origin = held.map(str::to_owned);
            kept
        }
        _ => Kept {
            fingerprint: fp,
            origin: held.map(str::to_owned),
            session: McpSession::from_learned(row.protocol.clone(), row.generation),
            dpop_nonce: None,
        },
    }
}

/// Shares what this call learned about the server with other backends, if
/// the row still shares the session this backend started from.
fn share_learned(row: &ServerRow, kept: &Kept) -> Result<(), Error> {
    if *kept.session.learned() == row.protocol {
        return Ok(());
    }
    durable::remember(
        row,
        Condition::Session { generation: row.generation, session_id: kept.origin.clone() },
        learned_update(&kept.session),
    )
}

fn learned_update(session: &McpSession) -> RowUpdate {
    let learned = serde_json::to_value(session.learned()).expect("learned state serialises");
    RowUpdate { protocol: Change::Set(learned), ..Default::default() }
}

fn keep_session(id: uuid::Uuid, kept: Kept) {
    SESSIONS.with(|s| s.borrow_mut().insert(id, kept));
}

/// The server ended the session `kept` was using: no backend may use it
/// again. If another backend already put a new session on the row, this one
/// takes it; otherwise the ended one is taken off the row (compare-and-swap
/// on its id, durably, before anything else is sent) and the next request
/// initializes a new one.
fn session_ended(row: &mut ServerRow, kept: &mut Kept) -> Result<(), Error> {
    let ended = kept.session.take_ended();
    *row = store::load(row.id, &row.user_id)?;
    let replaced = shared_session(row).is_some_and(|shared| !ended.iter().any(|e| e.as_deref() == Some(shared)));
    if replaced {
        kept.origin = row.protocol.session_id().map(str::to_owned);
        kept.session = McpSession::from_learned(row.protocol.clone(), row.generation);
        return Ok(());
    }
    for dead in ended {
        let condition = Condition::Session { generation: row.generation, session_id: dead };
        durable::write(row, condition, learned_update(&kept.session))?;
    }
    row.protocol = kept.session.learned().clone();
    kept.origin = None;
    Ok(())
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

/// Every secret the row holds that a request to its MCP server does not
/// carry: removed from what the server says all the same.
fn withheld_secrets(row: &ServerRow) -> Vec<&Secret> {
    let credentials = row.credentials.as_ref();
    let tokens = credentials.map(|c| &c.tokens);
    [
        tokens.and_then(|t| t.refresh_token.as_ref()),
        credentials.and_then(|c| c.grant.as_ref()).and_then(|g| g.client_secret.as_ref()),
        row.client_secret.as_ref(),
        row.verifier.as_ref(),
    ]
    .into_iter()
    .flatten()
    .chain(if row.auth_type.uses_tokens() { row.headers.iter().map(|(_, v)| v).collect::<Vec<_>>() } else { vec![] })
    .collect()
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
/// [`Attempt`]), counted in mcp_oauth_stats.
pub fn with_session(server_id: uuid::Uuid, op: Operation) -> Result<Outcome, Error> {
    let started = std::time::Instant::now();
    let result = current_user_id().and_then(|user_id| run_one(server_id, &user_id, op));
    record(server_id, started, &result);
    result
}

pub(crate) fn record(server_id: uuid::Uuid, started: std::time::Instant, result: &Result<Outcome, Error>) {
    match result {
        Ok(_) => stats::record_call(server_id, started.elapsed(), None),
        // A row the caller cannot see is not a server of theirs to count.
        Err(Error::ServerNotFound(_)) => {}
        Err(e) => stats::record_call(server_id, started.elapsed(), Some(&e.report())),
    }
}

fn run_one(server_id: uuid::Uuid, user_id: &str, mut op: Operation) -> Result<Outcome, Error> {
    let mut attempt = Attempt::new(server_id, user_id)?;
    loop {
        let request = attempt.prepare(op)?;
        let (request, outcome) = runtime::block_on(request.send())?;
        match attempt.settle(request, outcome) {
            Settled::Done(result) => return result,
            Settled::Again(next) => op = next,
        }
    }
}

/// Runs every call at once on the backend's runtime, each through its own
/// refresh and session steps (which touch PostgreSQL, so they run here,
/// between polls), and returns their results in order. Only a cancel ends
/// them all.
pub fn run_concurrently(user_id: &str, calls: Vec<(uuid::Uuid, Operation)>) -> Result<Vec<Result<Outcome, Error>>, Error> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let started = std::time::Instant::now();
    let mut results: Vec<Option<Result<Outcome, Error>>> = calls.iter().map(|_| None).collect();
    let mut attempts: Vec<Option<Attempt>> = calls.iter().map(|_| None).collect();
    let mut in_flight = FuturesUnordered::new();
    let tagged = |index: usize, request: Request| async move { (index, request.send().await) };
    for (index, (server_id, op)) in calls.into_iter().enumerate() {
        let prepared = Attempt::new(server_id, user_id).and_then(|mut a| a.prepare(op).map(|request| (a, request)));
        match prepared {
            Ok((attempt, request)) => {
                attempts[index] = Some(attempt);
                in_flight.push(tagged(index, request));
            }
            Err(e) => {
                let result = Err(e);
                record(server_id, started, &result);
                results[index] = Some(result);
            }
        }
    }
    while let Some((index, (request, outcome))) = runtime::block_on(in_flight.next())? {
        let attempt = attempts[index].as_mut().expect("an attempt per request in flight");
        match attempt.settle(request, outcome) {
            Settled::Done(result) => {
                record(attempt.server_id, started, &result);
                results[index] = Some(result);
            }
            Settled::Again(op) => match attempt.prepare(op) {
                Ok(request) => in_flight.push(tagged(index, request)),
                Err(e) => {
                    let result = Err(e);
                    record(attempt.server_id, started, &result);
                    results[index] = Some(result);
                }
            },
        }
    }
    Ok(results.into_iter().map(|r| r.expect("every call settled")).collect())
}

/// One call's way through a refresh after a 401, a new session after the
/// server ended one, and a step-up after a 403 insufficient_scope: the row
/// as last read, and what was tried already.
pub struct Attempt {
    server_id: uuid::Uuid,
    row: ServerRow,
    http: Rc<HttpClient>,
    capabilities: Rc<ClientCapabilities>,
    refreshed: bool,
    renewed: bool,
    /// A DPoP nonce the server asked for was sent.
    nonce_sent: bool,
}

/// One request, owning all it needs, so that many can be in flight at once.
pub struct Request {
    kept: Kept,
    op: Operation,
    url: Url,
    headers: Vec<(String, Secret)>,
    bearer: Option<Secret>,
    /// The key the bearer token is bound to, and the nonce to prove with.
    dpop: Option<(mcp_oauth_core::oauth::dpop::DpopKey, Option<String>)>,
    withheld: Vec<Secret>,
    http: Rc<HttpClient>,
    capabilities: Rc<ClientCapabilities>,
}

impl Request {
    pub async fn send(mut self) -> (Self, Result<Outcome, McpError>) {
        let withheld: Vec<&Secret> = self.withheld.iter().collect();
        let target = Target {
            url: &self.url,
            headers: &self.headers,
            bearer: self.bearer.as_ref(),
            dpop: self.dpop.as_ref().map(|(key, nonce)| (key, nonce.as_deref())),
            capabilities: &self.capabilities,
            withheld: &withheld,
        };
        let outcome = perform(&mut self.kept.session, &self.http, &target, &mut self.op).await;
        drop(withheld);
        (self, outcome)
    }
}

/// What a request's outcome leads to.
pub enum Settled {
    Done(Result<Outcome, Error>),
    /// Send the operation again (after a refresh, or in a new session).
    Again(Operation),
}

impl Attempt {
    pub fn new(server_id: uuid::Uuid, user_id: &str) -> Result<Self, Error> {
        let row = store::load(server_id, user_id)?;
        if !row.enabled {
            return Err(Error::Disabled(server_id));
        }
        Ok(Attempt {
            server_id,
            row,
            http: runtime::http_client()?,
            capabilities: client_capabilities()?,
            refreshed: false,
            renewed: false,
            nonce_sent: false,
        })
    }

    /// Declares the tasks extension (a queue worker, which can wait for a
    /// task): the server may then answer a tool call with a task handle.
    pub fn declaring_tasks(mut self) -> Self {
        let mut capabilities = (*self.capabilities).clone();
        let extensions = capabilities.extensions.get_or_insert_with(Default::default);
        extensions.insert(mcp_oauth_core::mcp::tasks::TASKS_EXTENSION_ID.to_owned(), Default::default());
        self.capabilities = Rc::new(capabilities);
        self
    }

    /// `text` (what a server said) without any secret the row holds.
    pub fn redact(&self, text: &str) -> String {
        let row = &self.row;
        let access = row.credentials.as_ref().map(|c| &c.tokens.access_token);
        let secrets = withheld_secrets(row).into_iter().chain(access).chain(row.headers.iter().map(|(_, v)| v));
        mcp_oauth_core::text::redact(text, secrets.map(Secret::expose))
    }

    /// The row's credentials (refreshed first when due) and session.
    pub fn prepare(&mut self, op: Operation) -> Result<Request, Error> {
        let row = &mut self.row;
        let token = tokens::access_token(&self.http, row)?;
        // The URL from the same read as the token: a refresh reads the row
        // again, and its URL may have changed meanwhile (with a sign-in at
        // the new server, whose token must never go to the old one).
        let url = parsed_url(row)?;
        let headers = if row.auth_type == AuthType::Headers { row.headers.clone() } else { vec![] };
        let kept = take_session(row, fingerprint(row, &headers, token.as_ref()));
        let withheld = withheld_secrets(row).into_iter().cloned().collect();
        let dpop = row.credentials.as_ref().and_then(|c| c.tokens.dpop_key.clone()).map(|key| (key, kept.dpop_nonce.clone()));
        Ok(Request {
            kept,
            op,
            url,
            headers,
            bearer: token,
            dpop,
            withheld,
            http: self.http.clone(),
            capabilities: self.capabilities.clone(),
        })
    }

    /// Refreshes once after a 401, and records a step-up after a 403
    /// insufficient_scope.
    pub fn settle(&mut self, request: Request, outcome: Result<Outcome, McpError>) -> Settled {
        match self.settle_or_fail(request, outcome) {
            Ok(Ok(value)) => Settled::Done(Ok(value)),
            Ok(Err(op)) => Settled::Again(op),
            Err(e) => Settled::Done(Err(e)),
        }
    }

    fn settle_or_fail(&mut self, request: Request, outcome: Result<Outcome, McpError>) -> Result<Result<Outcome, Operation>, Error> {
        let Request { mut kept, op, bearer, .. } = request;
        let row = &mut self.row;
        let oauth = row.auth_type.uses_tokens();
        let signs_in = row.auth_type == AuthType::OAuth;
        match outcome.map_err(Error::from) {
            // The server wants its nonce in the proof: sent again with it, once.
            Err(Error::Mcp(McpError::Unauthorized { dpop_nonce: Some(nonce), .. })) if bearer.is_some() && !self.nonce_sent => {
                self.nonce_sent = true;
                kept.dpop_nonce = Some(nonce);
                keep_session(self.server_id, kept);
                Ok(Err(op))
            }
            Ok(value) => {
                share_learned(row, &kept)?;
                keep_session(self.server_id, kept);
                if row.record.step_up_attempts > 0 {
                    let update = RowUpdate::default().remove_metadata(&["step_up_attempts", "step_up_scope"]);
                    durable::write(row, Condition::Generation(row.generation), update)?;
                }
                Ok(Ok(value))
            }
            Err(Error::Mcp(McpError::Unauthorized { .. })) if oauth && !self.refreshed => {
                self.refreshed = true;
                tokens::refresh(&self.http, row, &bearer.unwrap_or_default())?;
                Ok(Err(op))
            }
            Err(Error::Mcp(McpError::Unauthorized { .. })) if signs_in => Err(tokens::reauth(row, "the server refused the access token")),
            // A token just obtained with the row's own credentials, refused:
            // no sign-in helps; the credentials (or what they grant) do not
            // suit this server.
            Err(Error::Mcp(McpError::Unauthorized { .. })) if oauth => Err(failed(
                row,
                Error::CredentialsRefused(
                    "the MCP server refused the token just obtained with the credentials of this row (check what the client is granted)"
                        .into(),
                ),
                false,
            )),
            Err(Error::Mcp(McpError::Forbidden { challenge: Some(c), .. }))
                if signs_in && c.error.as_deref() == Some("insufficient_scope") =>
            {
                Err(step_up(row, c.scope.as_deref()))
            }
            Err(Error::Mcp(e @ (McpError::Unauthorized { .. } | McpError::Forbidden { .. }))) if !oauth => {
                let status = if matches!(e, McpError::Unauthorized { .. }) { 401 } else { 403 };
                Err(failed(row, Error::HeadersRefused { status }, false))
            }
            Err(Error::Mcp(e @ McpError::SessionEnded { mid_request, .. })) => {
                session_ended(row, &mut kept)?;
                // Made again once, in a new session; but not a tool call
                // the server may already have carried out.
                if self.renewed || (mid_request && matches!(op, Operation::CallTool(_))) {
                    return Err(failed(row, Error::Mcp(e), false));
                }
                self.renewed = true;
                keep_session(self.server_id, kept);
                Ok(Err(op))
            }
            Err(e) => {
                // A tool-level JSON-RPC error keeps the session; anything else drops it.
                if matches!(e, Error::Mcp(McpError::Rpc { .. })) {
                    share_learned(row, &kept)?;
                    keep_session(self.server_id, kept);
                }
                Err(failed(row, e, false))
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

/// Every item of `listing`, as user `user_id` (a queue worker acts for
/// the call's owner).
pub fn list_for(server_id: uuid::Uuid, user_id: &str, listing: Listing) -> Result<Vec<Value>, Error> {
    match run_one(server_id, user_id, Operation::List(listing))? {
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
