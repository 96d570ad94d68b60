//! The one place where errors become PostgreSQL errors, in three parts:
//! this enum, which gathers the error enums of every component (`StateError`,
//! `IdentityError`, … in the core); `report`, the only mapping to SQLSTATE,
//! message, DETAIL and HINT (plain Rust, unit-tested); and `raise`, the only
//! code that hands an error to PostgreSQL. Messages are built from our own
//! words and from values the user supplied — never from a secret — and are
//! sanitised once more on the way out.

mod raise;
mod report;

pub use raise::{or_raise, raise};
pub use report::{sqlstate, Report};

use mcp_oauth_core::discovery::DiscoveryError;
use mcp_oauth_core::identity::{IdentityError, IdentitySource};
use mcp_oauth_core::mcp::McpError;
use mcp_oauth_core::net::NetError;
use mcp_oauth_core::oauth::OAuthError;
use mcp_oauth_core::signin::SignInError;
use mcp_oauth_core::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] StateError),
    /// `mcp_oauth.identity` itself is not valid.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// No usable user id where `mcp_oauth.identity` says to find it.
    #[error("no usable user identity ({identity}): {error}")]
    Unidentified { identity: IdentitySource, error: IdentityError },
    #[error("{setting} is not set")]
    SettingMissing { setting: &'static str, hint: &'static str },
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error(transparent)]
    Mcp(#[from] McpError),
    #[error("no MCP server {0} for this user")]
    ServerNotFound(uuid::Uuid),
    #[error("MCP server {0} does not use OAuth")]
    NotOAuth(uuid::Uuid),
    #[error("MCP server {0} is disabled")]
    Disabled(uuid::Uuid),
    #[error("sign-in required: {0}")]
    ReauthRequired(String),
    /// The authorization server refused an unattended row's credentials
    /// (client secret or key, workload identity token).
    #[error("credentials refused: {0}")]
    CredentialsRefused(String),
    /// An unattended row without the credentials its grant needs.
    #[error("MCP server {0} has no client credentials")]
    NoClientCredentials(uuid::Uuid),
    /// A skill file that is not listed, or does not match its listing.
    #[error(transparent)]
    Skill(#[from] mcp_oauth_core::mcp::skills::SkillError),
    /// The workload identity token file cannot be used.
    #[error("{0}")]
    WorkloadToken(String),
    #[error("the authorization server returned {code}")]
    AuthorizationDenied { code: String, description: Option<String> },
    #[error("{0}")]
    InvalidCallback(String),
    #[error("the issuer in the callback does not match")]
    IssuerMismatch { expected: String, got: Option<String> },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0} must not be null")]
    NullArgument(&'static str),
    #[error("canceled")]
    Cancelled,
    #[error("{0}")]
    KeyUnusable(String),
    #[error("the sealed value of the {0} header does not belong to this row")]
    SealedValueForeign(String),
    #[error("the server refused the row's headers")]
    HeadersRefused { status: u16 },
    #[error("{0}")]
    Internal(String),
    #[error("no background worker slot is free")]
    NoWorkerSlot,
    /// The extension's owner, as whom the background workers connect, may
    /// not log in.
    #[error("the extension's owner {0} cannot log in")]
    OwnerCannotLogIn(String),
    #[error("{0}")]
    DurabilityUnavailable(String),
    #[error("the server row {id} stayed locked")]
    RowBusy { id: uuid::Uuid, waited_ms: u32 },
    #[error("this transaction holds the server row {0}")]
    RowHeldByCaller(uuid::Uuid),
    #[error("the refreshed tokens could not be stored")]
    DurableWriteFailed,
    #[error("the server row {0} changed meanwhile")]
    RowChanged(uuid::Uuid),
    #[error("this server is a read-only standby")]
    ReadOnly,
    /// The call queue cannot serve this database.
    #[error("the call queue is not available: {why}")]
    QueueUnavailable { why: String, hint: &'static str },
    #[error("no queued call {0} for this user")]
    CallNotFound(i64),
    /// A queued call failed: its stored SQLSTATE and message.
    #[error("queued call {id} failed")]
    CallFailed { id: i64, sqlstate: String, message: String },
    /// The server's task for a queued call ended without a result.
    #[error("the server's task ended without a result: {0}")]
    TaskEnded(String),
    #[error("queued call {0} was cancelled")]
    CallCancelled(i64),
    /// Enqueued by the caller's own transaction, which has not committed.
    #[error("queued call {0} runs only after this transaction commits")]
    CallPending(i64),
    #[error("mcp_oauth.finish_requires_identity is on and the caller has no identity")]
    FinishNeedsIdentity { identity: IdentitySource, error: IdentityError },
}

/// A required argument: NULL is an error (22004), not a silent NULL result.
pub fn required<T>(value: Option<T>, name: &'static str) -> Result<T, Error> {
    value.ok_or(Error::NullArgument(name))
}
