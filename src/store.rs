//! The row store: every statement that reads or writes a server row for the
//! extension. Rows are always addressed by (id, user_id), the user id having
//! been resolved as the caller before anything else; statements run with the
//! table owner's rights (application roles cannot read secret columns) and
//! through a fresh snapshot (see `spi`).
//!
//! Every write is one `RowUpdate`, applied by one prepared statement, either
//! here in the caller's transaction or by the durable writer (`durable`) in
//! a transaction of its own, and always conditional on what it was computed
//! from (`Condition`): a write never undoes a newer change.

use crate::error::Error;
use crate::ids;
use crate::secrets;
use crate::spi::{self, arg, Statement};
pub use mcp_oauth_core::change::Change;
use mcp_oauth_core::mcp::Learned;
use mcp_oauth_core::secret::Secret;
use mcp_oauth_core::signin::{Credentials, Grant, OAuthRecord};
use pgrx::pg_sys;
use pgrx::JsonB;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

/// How a row authenticates to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// The row's headers, as they are.
    Headers,
    /// An OAuth 2.1 sign-in by the user (authorization code with PKCE).
    OAuth,
    /// The client's own token (OAuth client credentials grant), obtained
    /// with the row's client secret or private key; no user signs in.
    ClientCredentials,
    /// The database's workload identity token (mcp_oauth.workload_token_file)
    /// exchanged for an access token (RFC 7523 JWT bearer grant).
    WorkloadIdentity,
}

impl AuthType {
    pub fn parse(text: &str) -> Self {
        match text {
            "oauth" => Self::OAuth,
            "client_credentials" => Self::ClientCredentials,
            "workload_identity" => Self::WorkloadIdentity,
            _ => Self::Headers,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Headers => "headers",
            Self::OAuth => "oauth",
            Self::ClientCredentials => "client_credentials",
            Self::WorkloadIdentity => "workload_identity",
        }
    }

    /// Whether calls carry an access token from `oauth_tokens`.
    pub fn uses_tokens(self) -> bool {
        self != Self::Headers
    }

    /// Whether the token is obtained with no user present (and obtained
    /// again, rather than signed in for, when it expires or is refused).
    pub fn unattended(self) -> bool {
        matches!(self, Self::ClientCredentials | Self::WorkloadIdentity)
    }
}

/// A server row as the extension sees it, secrets opened. No `Debug`: it
/// holds opened secrets.
#[derive(Clone)]
pub struct ServerRow {
    pub id: uuid::Uuid,
    pub user_id: String,
    pub url: String,
    pub auth_type: AuthType,
    pub enabled: bool,
    /// Header names and values (headers mode).
    pub headers: Vec<(String, Secret)>,
    pub record: OAuthRecord,
    pub credentials: Option<Credentials>,
    /// Tokens are stored but cannot be read (a new sign-in fixes it).
    pub tokens_unreadable: bool,
    pub verifier: Option<Secret>,
    pub client_secret: Option<Secret>,
    pub reauth_required: bool,
    pub last_error: Option<String>,
    /// What was learned about the server (protocol revision, session,
    /// header parameters), by any backend.
    pub protocol: Learned,
    /// Bumped by every change of the row's endpoint or credentials; writes
    /// computed from this read are conditional on it.
    pub generation: i64,
    /// This transaction inserted, changed or locked the row: a write in
    /// another transaction would wait for this one.
    pub held_by_caller: bool,
}

impl ServerRow {
    /// The grant of the stored tokens: sealed with them, or for tokens
    /// stored by 0.1.0 the row's discovery if it still belongs to their
    /// issuer.
    pub fn grant(&self) -> Option<Grant> {
        let credentials = self.credentials.as_ref()?;
        match &credentials.grant {
            Some(grant) => Some(grant.clone()),
            None => Grant::legacy(&self.record, self.client_secret.as_ref(), &credentials.tokens),
        }
    }
}

fn uuid_arg(id: uuid::Uuid) -> spi::Arg {
    arg(ids::to_sql(id))
}

thread_local! {
    /// Decoded rows (secrets opened, JSON parsed), by row id, with the
    /// version of the row they were decoded from: a warm call reads the row
    /// but decodes it only when it changed.
    static DECODED: RefCell<HashMap<uuid::Uuid, (spi::RowVersion, ServerRow)>> = RefCell::new(HashMap::new());
}

/// Rows kept decoded per backend; past this the cache starts over (a
/// backend serving many users through a pooler stays bounded).
const DECODED_ROWS: usize = 1024;

/// Loads a row of `user_id`, as committed now (plus this transaction's own
/// changes), whatever the caller's isolation level.
pub fn load(id: uuid::Uuid, user_id: &str) -> Result<ServerRow, Error> {
    let catalog = spi::catalog()?;
    let cols = &catalog.columns;
    spi::read(&catalog, ids::to_sql(id), |tuple| {
        let tuple = tuple.ok_or(Error::ServerNotFound(id))?;
        let version = tuple.version();
        let held = tuple.held_by_current_transaction();
        let cached =
            DECODED.with(|d| d.borrow().get(&id).filter(|(v, row)| *v == version && row.user_id == user_id).map(|(_, row)| row.clone()));
        if let Some(mut row) = cached {
            row.held_by_caller = held;
            return Ok(row);
        }
        let owner: String = tuple.get(cols.user_id).unwrap_or_default();
        if owner != user_id {
            return Err(Error::ServerNotFound(id));
        }
        let row = decode(id, owner, tuple, cols, held)?;
        DECODED.with(|d| {
            let mut d = d.borrow_mut();
            if d.len() >= DECODED_ROWS {
                d.clear();
            }
            d.insert(id, (version, row.clone()));
        });
        Ok(row)
    })
}

fn decode(id: uuid::Uuid, user_id: String, tuple: &spi::Tuple, cols: &spi::Columns, held: bool) -> Result<ServerRow, Error> {
    let row_id = id.to_string();
    let json = |attnum: i16| tuple.get::<JsonB>(attnum).map(|j| j.0);
    let headers = match json(cols.headers) {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?)))
            .map(|(k, v)| Ok((k.clone(), Secret::new(secrets::open_text(&row_id, &secrets::header_column(k), v)?))))
            .collect::<Result<Vec<_>, Error>>()?,
        _ => vec![],
    };
    let credentials = tuple.get::<Vec<u8>>(cols.oauth_tokens).map(|bytes| secrets::open_credentials(&row_id, &bytes)).transpose()?;
    let open = |attnum: i16, column: &str| -> Result<Option<Secret>, Error> {
        tuple.get::<String>(attnum).map(|v| secrets::open_text(&row_id, column, &v).map(Secret::new)).transpose()
    };
    Ok(ServerRow {
        id,
        user_id,
        url: tuple.get(cols.url).unwrap_or_default(),
        auth_type: AuthType::parse(tuple.get::<String>(cols.auth_type).as_deref().unwrap_or_default()),
        enabled: tuple.get(cols.enabled).unwrap_or(false),
        headers,
        record: json(cols.oauth_metadata).and_then(|m| serde_json::from_value(m).ok()).unwrap_or_default(),
        tokens_unreadable: matches!(credentials, Some(None)),
        credentials: credentials.flatten(),
        verifier: open(cols.oauth_code_verifier, "oauth_code_verifier")?,
        client_secret: open(cols.oauth_client_secret, "oauth_client_secret")?,
        reauth_required: tuple.get(cols.reauth_required).unwrap_or(false),
        last_error: tuple.get(cols.last_error),
        protocol: json(cols.mcp_protocol).and_then(|p| serde_json::from_value(p).ok()).unwrap_or_default(),
        generation: tuple.get(cols.generation).unwrap_or(0),
        held_by_caller: held,
    })
}

/// The two statement arguments of a column's [`Change`]: whether to write
/// it, and the new value.
trait ChangeArgs {
    fn args(&self) -> [spi::Arg; 2];
}

impl<T: Clone + IntoDatumOwned> ChangeArgs for Change<T> {
    fn args(&self) -> [spi::Arg; 2] {
        match self {
            Change::Keep => [arg(false), None],
            Change::Clear => [arg(true), None],
            Change::Set(v) => [arg(true), v.clone().datum()],
        }
    }
}

/// Values a `Change` can carry into a statement.
pub trait IntoDatumOwned {
    fn datum(self) -> spi::Arg;
}
impl IntoDatumOwned for String {
    fn datum(self) -> spi::Arg {
        arg(self)
    }
}
impl IntoDatumOwned for serde_json::Value {
    fn datum(self) -> spi::Arg {
        arg(JsonB(self))
    }
}
impl IntoDatumOwned for Vec<u8> {
    fn datum(self) -> spi::Arg {
        arg(self)
    }
}

/// What a write expects of the row: it is skipped if the row has changed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// The row's endpoint and credentials are as read (its generation).
    Generation(i64),
    /// As `Generation`, and the MCP session the row shares is still this
    /// one (compare-and-swap on the session id): what one backend learned
    /// never replaces a session another backend put there meanwhile.
    Session { generation: i64, session_id: Option<String> },
    /// This sign-in (its hex flow id) is still the one in progress.
    Flow(String),
    /// Nothing: an explicit action of the user (start, set_client, reset).
    Always,
}

impl Condition {
    /// The generation, the flow id, whether to compare the session, and the session.
    fn args(&self) -> [spi::Arg; 4] {
        match self {
            Condition::Generation(g) => [arg(*g), None, arg(false), None],
            Condition::Session { generation, session_id } => [arg(*generation), None, arg(true), arg(session_id.clone())],
            Condition::Flow(id) => [None, arg(id.as_str()), arg(false), None],
            Condition::Always => [None, None, arg(false), None],
        }
    }

    /// Whether a row in this state meets the condition.
    pub fn holds(&self, row: &Locked) -> bool {
        match self {
            Condition::Generation(g) => *g == row.generation,
            Condition::Session { generation, session_id } => *generation == row.generation && *session_id == row.session_id,
            Condition::Flow(id) => row.flow.as_deref() == Some(id.as_str()),
            Condition::Always => true,
        }
    }
}

/// What a write's condition is checked against, read under the row's lock.
pub struct Locked {
    pub generation: i64,
    /// The sign-in in progress.
    pub flow: Option<String>,
    /// The MCP session the row shares.
    pub session_id: Option<String>,
}

/// One write to a row. Secret values are sealed before they get here. No
/// `Debug`: it may carry sealed tokens (or plaintext under
/// allow_plaintext_secrets).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct RowUpdate {
    pub last_error: Change<String>,
    pub reauth_required: Option<bool>,
    /// Keys of `oauth_metadata` to set (merged into what is there)...
    pub metadata_set: serde_json::Map<String, serde_json::Value>,
    /// ...and to remove; a write touches no other key.
    pub metadata_remove: Vec<String>,
    /// Forget all of `oauth_metadata`.
    pub metadata_clear: bool,
    pub tokens: Change<Vec<u8>>,
    pub verifier: Change<String>,
    pub client_secret: Change<String>,
    pub protocol: Change<serde_json::Value>,
    /// Count this write as a change of credentials even if no credential
    /// column changes (a reset), so that writes computed before it skip.
    pub bump_generation: bool,
    /// A sign-in completed: NOTIFY mcp_oauth_signed_in when this write
    /// commits (in whichever transaction applies it).
    pub signed_in: bool,
}

impl RowUpdate {
    /// A failure to record: `last_error` (sanitised and bounded), and
    /// `reauth_required` when the user must sign in again.
    pub fn failure(message: &str, reauth: bool) -> Self {
        RowUpdate {
            last_error: Change::Set(mcp_oauth_core::text::sanitise(message).chars().take(1000).collect()),
            reauth_required: reauth.then_some(true),
            ..Default::default()
        }
    }

    pub fn set_metadata(mut self, key: &str, value: impl Serialize) -> Self {
        self.metadata_set.insert(key.to_owned(), serde_json::to_value(value).expect("metadata serialises"));
        self
    }

    pub fn verifier_cleared(mut self) -> Self {
        self.verifier = Change::Clear;
        self
    }

    pub fn remove_metadata(mut self, keys: &[&str]) -> Self {
        self.metadata_remove.extend(keys.iter().map(|k| (*k).to_owned()));
        self
    }
}

const UPDATE: Statement = Statement {
    name: "update",
    sql: "UPDATE {table} s SET
              last_error          = CASE WHEN $3 THEN $4 ELSE s.last_error END,
              reauth_required     = COALESCE($5, s.reauth_required),
              oauth_metadata      = CASE WHEN $6 THEN NULL
                                         WHEN $7::jsonb IS NULL AND $8::text[] IS NULL THEN s.oauth_metadata
                                         ELSE (COALESCE(s.oauth_metadata, '{}') - COALESCE($8::text[], '{}'))
                                              || COALESCE($7::jsonb, '{}') END,
              oauth_tokens        = CASE WHEN $9 THEN $10 ELSE s.oauth_tokens END,
              oauth_code_verifier = CASE WHEN $11 THEN $12 ELSE s.oauth_code_verifier END,
              oauth_client_secret = CASE WHEN $13 THEN $14 ELSE s.oauth_client_secret END,
              generation          = s.generation + CASE WHEN $15 THEN 1 ELSE 0 END,
              mcp_protocol        = CASE WHEN $18 THEN $19 ELSE s.mcp_protocol END
           WHERE s.id = $1 AND s.user_id = $2
             AND ($16::bigint IS NULL OR s.generation = $16)
             AND ($17::text IS NULL OR s.oauth_metadata -> 'flow' ->> 'id' = $17)
             AND (NOT $20 OR s.mcp_protocol #>> '{era,legacy,session_id}' IS NOT DISTINCT FROM $21)
          RETURNING s.generation",
    args: &[
        pg_sys::UUIDOID,
        pg_sys::TEXTOID,
        pg_sys::BOOLOID,
        pg_sys::TEXTOID,
        pg_sys::BOOLOID,
        pg_sys::BOOLOID,
        pg_sys::JSONBOID,
        pg_sys::TEXTARRAYOID,
        pg_sys::BOOLOID,
        pg_sys::BYTEAOID,
        pg_sys::BOOLOID,
        pg_sys::TEXTOID,
        pg_sys::BOOLOID,
        pg_sys::TEXTOID,
        pg_sys::BOOLOID,
        pg_sys::INT8OID,
        pg_sys::TEXTOID,
        pg_sys::BOOLOID,
        pg_sys::JSONBOID,
        pg_sys::BOOLOID,
        pg_sys::TEXTOID,
    ],
};

/// Applies `update` to row (id, user_id) if `condition` holds, in the
/// current transaction. Returns the row's new generation, or None when the
/// row is gone or the condition does not hold.
pub fn apply(id: uuid::Uuid, user_id: &str, condition: Condition, update: &RowUpdate) -> Result<Option<i64>, Error> {
    let [error_set, error] = update.last_error.args();
    let [tokens_set, tokens] = update.tokens.args();
    let [verifier_set, verifier] = update.verifier.args();
    let [secret_set, secret] = update.client_secret.args();
    let [generation, flow, session_set, session] = condition.args();
    let [protocol_set, protocol] = update.protocol.args();
    let metadata_set = (!update.metadata_set.is_empty()).then(|| JsonB(serde_json::Value::Object(update.metadata_set.clone())));
    let metadata_remove = (!update.metadata_remove.is_empty()).then(|| update.metadata_remove.clone());
    let mut new_generation = None;
    spi::run(
        &UPDATE,
        &[
            uuid_arg(id),
            arg(user_id),
            error_set,
            error,
            arg(update.reauth_required),
            arg(update.metadata_clear),
            arg(metadata_set),
            arg(metadata_remove),
            tokens_set,
            tokens,
            verifier_set,
            verifier,
            secret_set,
            secret,
            arg(update.bump_generation),
            generation,
            flow,
            protocol_set,
            protocol,
            session_set,
            session,
        ],
        |row| new_generation = row.get::<i64>(1),
    )?;
    if update.signed_in && new_generation.is_some() {
        spi::run(&NOTIFY_SIGNED_IN, &[uuid_arg(id), arg(user_id)], |_| {})?;
    }
    Ok(new_generation)
}

/// Tells listeners a sign-in completed; delivered when the write commits.
const NOTIFY_SIGNED_IN: Statement = Statement {
    name: "notify_signed_in",
    sql: "SELECT pg_notify('mcp_oauth_signed_in', json_build_object('server_id', $1, 'user_id', $2)::text)",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTOID],
};

const LOCK: Statement = Statement {
    name: "lock",
    sql: "SELECT generation, oauth_metadata -> 'flow' ->> 'id', mcp_protocol #>> '{era,legacy,session_id}' FROM {table}
           WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTOID],
};

/// Locks row (id, user_id) until the end of the transaction (waiting at
/// most `lock_timeout`) and returns what write conditions check; None when
/// there is no such row.
///
/// The table is first locked as the write will need it (ROW EXCLUSIVE, as
/// an UPDATE takes it), so that a write prepared now never waits later: a
/// DBA's `LOCK TABLE … IN SHARE MODE` or `CREATE INDEX` taken while a token
/// request is at the authorization server then waits for the write, instead
/// of the write timing out after the server rotated the tokens.
pub fn lock(id: uuid::Uuid, user_id: &str) -> Result<Option<Locked>, Error> {
    let catalog = spi::catalog()?;
    // SAFETY: a heavyweight lock on the table, held to the end of the
    // transaction; a wait past lock_timeout is an ERROR.
    unsafe { pg_sys::LockRelationOid(catalog.table_oid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE) };
    let mut found = None;
    spi::run(&LOCK, &[uuid_arg(id), arg(user_id)], |row| {
        found = Some(Locked { generation: row.get::<i64>(1).unwrap_or(0), flow: row.get::<String>(2), session_id: row.get::<String>(3) });
    })?;
    Ok(found)
}

/// The sealed form of credentials for `row`.
pub fn seal(row_id: uuid::Uuid, credentials: &Credentials) -> Result<Vec<u8>, Error> {
    secrets::seal_credentials(&row_id.to_string(), credentials)
}

/// Serialises token refreshes of one row across backends: a session-level
/// advisory lock, released when dropped (as soon as the refresh is stored,
/// not at the end of the caller's transaction). A heavyweight lock, so the
/// wait can be cancelled and the deadlock detector sees it.
///
/// No role can take it from SQL, so none can stall or deny another user's
/// refresh (row ids travel in NOTIFY payloads): SQL's advisory locks use
/// the fourth field of the tag for their key space (1 for one bigint, 2 for
/// two integers), and this one uses a value of its own, with 64 bits of the
/// row id in the other two fields.
pub struct RefreshLock(pg_sys::LOCKTAG);

/// The key space of refresh locks ("mc"); SQL's advisory locks use 1 and 2.
const REFRESH_LOCK_SPACE: u16 = 0x6d63;

impl RefreshLock {
    pub fn acquire(id: uuid::Uuid) -> RefreshLock {
        let bytes = id.as_bytes();
        // SAFETY: a plain struct filled as SET_LOCKTAG_ADVISORY does.
        let mut tag: pg_sys::LOCKTAG = unsafe { std::mem::zeroed() };
        tag.locktag_field1 = unsafe { pg_sys::MyDatabaseId }.to_u32();
        tag.locktag_field2 = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        tag.locktag_field3 = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        tag.locktag_field4 = REFRESH_LOCK_SPACE;
        tag.locktag_type = pg_sys::LockTagType::LOCKTAG_ADVISORY as u8;
        tag.locktag_lockmethodid = pg_sys::USER_LOCKMETHOD as u8;
        // SAFETY: a session lock on a valid tag; an ERROR (cancel, deadlock)
        // leaves it not taken.
        unsafe { pg_sys::LockAcquire(&tag, pg_sys::ExclusiveLock as pg_sys::LOCKMODE, true, false) };
        RefreshLock(tag)
    }
}

impl Drop for RefreshLock {
    fn drop(&mut self) {
        // SAFETY: releases the session lock acquire() took.
        unsafe { pg_sys::LockRelease(&self.0, pg_sys::ExclusiveLock as pg_sys::LOCKMODE, true) };
    }
}

const ENABLED: Statement = Statement {
    name: "enabled",
    sql: "SELECT id, slug FROM {table} WHERE user_id = $1 AND enabled ORDER BY slug",
    args: &[pg_sys::TEXTOID],
};

/// The id and slug of every enabled server of `user_id`, by slug.
pub fn enabled_servers(user_id: &str) -> Result<Vec<(uuid::Uuid, String)>, Error> {
    let mut found = Vec::new();
    spi::run(&ENABLED, &[arg(user_id)], |row| {
        if let (Some(id), Some(slug)) = (row.get::<pgrx::Uuid>(1), row.get::<String>(2)) {
            found.push((ids::from_sql(id), slug));
        }
    })?;
    Ok(found)
}
