//! `Error` → what the user sees: SQLSTATE, message, DETAIL and HINT. No
//! PostgreSQL here, so every mapping is covered by plain unit tests.

use super::Error;
use mcp_oauth_core::discovery::DiscoveryError;
use mcp_oauth_core::identity::{IdentityError, IdentitySource};
use mcp_oauth_core::mcp::McpError;
use mcp_oauth_core::net::NetError;
use mcp_oauth_core::oauth::OAuthError;
use mcp_oauth_core::signin::SignInError;
use mcp_oauth_core::state::StateError;
use mcp_oauth_core::text::{escape, sentence};

/// Our SQLSTATEs (class MC), SPEC §4.
pub mod sqlstate {
    pub const REAUTH_REQUIRED: &str = "MC001";
    pub const INVALID_STATE: &str = "MC002";
    pub const DISCOVERY_FAILED: &str = "MC003";
    pub const AUTHORIZATION_SERVER_ERROR: &str = "MC004";
    pub const MCP_ERROR: &str = "MC005";
    pub const NETWORK_POLICY: &str = "MC006";
    pub const NETWORK_TIMEOUT: &str = "MC007";
    pub const CONFIGURATION_MISSING: &str = "MC008";
    /// PostgreSQL's own: a bad argument value.
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    /// PostgreSQL's own: a required argument is NULL.
    pub const NULL_VALUE_NOT_ALLOWED: &str = "22004";
    /// PostgreSQL's own: no usable identity for the current user.
    pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
    /// PostgreSQL's own: no such object (a server id that is not the caller's).
    pub const UNDEFINED_OBJECT: &str = "42704";
    /// PostgreSQL's own: the row is not in a state that allows this.
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    /// PostgreSQL's own: a row breaks a rule of the table.
    pub const CHECK_VIOLATION: &str = "23514";
    /// PostgreSQL's own: the query was cancelled.
    pub const QUERY_CANCELED: &str = "57014";
    /// PostgreSQL's own: no background worker slot (or worker) available.
    pub const INSUFFICIENT_RESOURCES: &str = "53000";
    /// PostgreSQL's own: a lock was not granted in time.
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    /// PostgreSQL's own: a write on a read-only server (a standby).
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    /// PostgreSQL's own: a concurrent change; the statement can be retried.
    pub const SERIALIZATION_FAILURE: &str = "40001";
    /// PostgreSQL's own: a failure inside the extension.
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// What the user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub sqlstate: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Report {
    /// One line for `last_error`.
    pub fn message_with_detail(&self) -> String {
        match &self.detail {
            Some(d) => format!("{}: {}", self.message, d),
            None => self.message.clone(),
        }
    }

    pub(super) fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        Self { sqlstate, message: message.into(), detail: None, hint: None }
    }
    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

const STATE_SECRET_HINT: &str = "A superuser must set mcp_oauth.state_secret to a random value of at least 32 bytes, e.g. \
     ALTER SYSTEM SET mcp_oauth.state_secret = '<output of: openssl rand -hex 32>'; SELECT pg_reload_conf();";

impl Error {
    pub fn report(&self) -> Report {
        use sqlstate::*;
        match self {
            Error::State(e @ (StateError::SecretMissing | StateError::SecretTooShort { .. })) => {
                Report::new(CONFIGURATION_MISSING, "mcp_oauth.state_secret is not usable")
                    .detail(sentence(&e.to_string()))
                    .hint(STATE_SECRET_HINT)
            }
            Error::State(StateError::UserIdLength) => {
                Report::new(INVALID_PARAMETER_VALUE, "the user id cannot be carried in a sign-in state")
                    .detail(sentence(&StateError::UserIdLength.to_string()))
                    .hint("Only user ids of at most 256 bytes can sign in: shorten the id the application sets as the identity.")
            }
            Error::State(e) => Report::new(INVALID_STATE, "invalid OAuth state")
                .detail(sentence(&e.to_string()))
                .hint("Start the sign-in again with mcp_oauth_start(); a state is valid once, for mcp_oauth.state_ttl, for the user who started it."),
            Error::Identity(e) | Error::Unidentified { error: e @ IdentityError::InvalidSource(_), .. } => {
                Report::new(CONFIGURATION_MISSING, "mcp_oauth.identity is not valid")
                    .detail(sentence(&e.to_string()))
                    .hint("Set it to role, setting:<name> or jwt_claim:<claim>.")
            }
            Error::Unidentified { identity, error: IdentityError::Missing(why) } => {
                Report::new(INVALID_AUTHORIZATION_SPECIFICATION, "no user identity for mcp_oauth")
                    .detail(sentence(why))
                    .hint(identity_hint(identity))
            }
            Error::Unidentified { identity, error: IdentityError::Invalid(source, why) } => {
                Report::new(INVALID_AUTHORIZATION_SPECIFICATION, "the user identity for mcp_oauth is not usable")
                    .detail(sentence(&format!("{source} {why}")))
                    .hint(identity_hint(identity))
            }
            Error::SettingMissing { setting, hint } => {
                Report::new(CONFIGURATION_MISSING, format!("{setting} is not set")).hint(*hint)
            }
            Error::Net(e) => net_report(e, DISCOVERY_FAILED, "the request failed"),
            Error::Discovery(DiscoveryError::Net(e)) => net_report(e, DISCOVERY_FAILED, "OAuth discovery failed"),
            Error::Discovery(DiscoveryError::Invalid(why)) => Report::new(DISCOVERY_FAILED, "OAuth discovery failed")
                .detail(sentence(why))
                .hint("Check the server URL; the server's OAuth metadata must match it and support PKCE (S256)."),
            Error::SignIn(SignInError::Discovery(e)) => Error::Discovery(e.clone()).report(),
            Error::SignIn(SignInError::OAuth(e)) => Error::OAuth(e.clone()).report(),
            Error::SignIn(e @ SignInError::ForeignClient { .. }) => {
                Report::new(DISCOVERY_FAILED, "the server moved to another authorization server")
                    .detail(sentence(&e.to_string()))
                    .hint("Credentials are bound to their issuer: register a client for the new one with mcp_oauth_set_client(), or call mcp_oauth_reset().")
            }
            Error::OAuth(OAuthError::Net(e)) => net_report(e, AUTHORIZATION_SERVER_ERROR, "the authorization server could not be reached"),
            Error::OAuth(OAuthError::Rejected { host, code, description, .. }) => {
                let detail = match description {
                    Some(d) => format!("The authorization server at {host} answered {code}: {}.", escape(d)),
                    None => format!("The authorization server at {host} answered {code}."),
                };
                let hint = match code.as_str() {
                    "invalid_client" => "The client registration was dropped; call mcp_oauth_start() to register again and sign in.",
                    "invalid_grant" => "The code or token is no longer valid; call mcp_oauth_start() to sign in again.",
                    "invalid_dpop_proof" => "It refused the DPoP proof, not the grant: each proof carries the database server's time, so check the clock (NTP); a new sign-in does not help.",
                    _ => "Call mcp_oauth_start() to sign in again.",
                };
                Report::new(AUTHORIZATION_SERVER_ERROR, "the authorization server rejected the request").detail(detail).hint(hint)
            }
            Error::OAuth(e @ OAuthError::InvalidResponse { .. }) => {
                Report::new(AUTHORIZATION_SERVER_ERROR, "the authorization server sent an invalid response")
                    .detail(sentence(&e.to_string()))
                    .hint("Retry; if it persists, the authorization server is misbehaving: tell its operator what the DETAIL says.")
            }
            Error::OAuth(OAuthError::Unsupported(why)) => Report::new(DISCOVERY_FAILED, "the authorization server cannot be used")
                .detail(sentence(why))
                .hint("Register a client for it with mcp_oauth_set_client(), or check the server's OAuth metadata."),
            Error::Mcp(McpError::Net(e)) => net_report(e, MCP_ERROR, "the MCP server could not be reached"),
            Error::Mcp(e @ (McpError::Unauthorized { .. } | McpError::Forbidden { .. })) => {
                Report::new(REAUTH_REQUIRED, "sign-in required").detail(sentence(&e.to_string())).hint(SIGN_IN_HINT)
            }
            Error::Mcp(e @ McpError::ProofRefused { .. }) => Report::new(MCP_ERROR, "the MCP server refused the DPoP proof")
                .detail(sentence(&escape(&e.to_string())))
                .hint("Each proof carries the database server's time, and servers refuse one more than a few minutes off: check the clock (NTP). The token is not at fault: no new sign-in is needed."),
            Error::Mcp(e @ McpError::SessionEnded { mid_request, .. }) => {
                let hint = if *mid_request {
                    "The next call starts a new session. Check whether the tool's effect happened before calling it again."
                } else {
                    "The next call starts a new session; retry."
                };
                Report::new(MCP_ERROR, "the MCP server ended the session").detail(sentence(&escape(&e.to_string()))).hint(hint)
            }
            Error::Mcp(McpError::OutputMismatch { mismatch, .. }) => {
                let at = if mismatch.path.is_empty() { "the structuredContent".to_owned() } else { format!("structuredContent{}", escape(&mismatch.path)) };
                Report::new(MCP_ERROR, format!("the result of tool {} does not match its outputSchema", escape(&mismatch.tool)))
                    .detail(format!("At {at}: {}", sentence(&escape(&mismatch.why))))
                    .hint("The server broke the shape it declares for this tool (mcp_list_tools() shows the output_schema); its maintainers should fix it. The tool was called: do not assume it had no effect.")
            }
            Error::Mcp(e) => Report::new(MCP_ERROR, "MCP request failed")
                .detail(sentence(&escape(&e.to_string())))
                .hint("Check the tool or resource name and the arguments (mcp_list_tools() shows the schemas), then retry; the DETAIL has the server's own words."),
            Error::ServerNotFound(id) => Report::new(UNDEFINED_OBJECT, format!("MCP server {id} not found"))
                .detail("There is no such server, or it belongs to another user.")
                .hint("List your servers with SELECT id, slug FROM mcp_servers;"),
            Error::NotOAuth(id) => Report::new(INVALID_PARAMETER_VALUE, format!("MCP server {id} does not use OAuth"))
                .hint("Set auth_type = 'oauth' on the row first."),
            Error::Disabled(id) => Report::new(OBJECT_NOT_IN_PREREQUISITE_STATE, format!("MCP server {id} is disabled"))
                .hint("Set enabled = true on the row to use it."),
            Error::ReauthRequired(why) => Report::new(REAUTH_REQUIRED, "sign-in required").detail(sentence(why)).hint(SIGN_IN_HINT),
            Error::CredentialsRefused(why) => Report::new(REAUTH_REQUIRED, "the server's credentials were refused")
                .detail(sentence(&escape(why)))
                .hint("Set working credentials with mcp_oauth_set_client() or mcp_oauth_set_client_key() (workload identity: once the token file holds a new token, the next call tries it)."),
            Error::NoClientCredentials(id) => Report::new(OBJECT_NOT_IN_PREREQUISITE_STATE, format!("MCP server {id} has no client credentials"))
                .detail("A client_credentials server obtains its token with the client's secret or private key, and none is set.")
                .hint("Set them with mcp_oauth_set_client(server_id, client_id, client_secret) or mcp_oauth_set_client_key(server_id, client_id, private_key_pem)."),
            Error::Skill(e) => Report::new(MCP_ERROR, "the skill file cannot be used")
                .detail(sentence(&escape(&e.to_string())))
                .hint("Only files a skill lists (mcp_list_skills(), column files) are read, and each must match its listed size and digest, a SKILL.md also its front matter; a mismatch means the server's files changed or were tampered with: list the skills again."),
            Error::WorkloadToken(why) => Report::new(CONFIGURATION_MISSING, "the workload identity token cannot be used")
                .detail(sentence(why))
                .hint("The platform mounts the token; check the path in mcp_oauth.workload_token_file and that the server's operating-system user can read it."),
            Error::AuthorizationDenied { code, description } => {
                let detail = match description {
                    Some(d) => format!("The authorization server answered {}: {}.", escape(code), escape(d)),
                    None => format!("The authorization server answered {}.", escape(code)),
                };
                Report::new(AUTHORIZATION_SERVER_ERROR, "the sign-in was not completed")
                    .detail(detail)
                    .hint("The user may have declined; call mcp_oauth_start() to try again.")
            }
            Error::InvalidCallback(why) => Report::new(INVALID_STATE, "invalid OAuth callback")
                .detail(sentence(why))
                .hint("Start the sign-in again with mcp_oauth_start(); each callback URL works once."),
            Error::IssuerMismatch { expected, got } => Report::new(DISCOVERY_FAILED, "the callback comes from another issuer")
                .detail(format!(
                    "The authorization response names issuer {}, but the sign-in was started with {} (RFC 9207).",
                    got.as_deref().map(|g| format!("{:?}", escape(g))).unwrap_or_else(|| "none".into()),
                    escape(expected)
                ))
                .hint("Possibly a mix-up attack; the sign-in in progress is kept, so the genuine callback still works."),
            Error::InvalidArgument(why) => Report::new(INVALID_PARAMETER_VALUE, why.clone())
                .hint("Correct the argument; \\df+ and the function's COMMENT describe what each one takes."),
            Error::NullArgument(name) => Report::new(NULL_VALUE_NOT_ALLOWED, format!("{name} must not be null"))
                .hint(format!("Pass a value for {name}.")),
            Error::Cancelled => Report::new(QUERY_CANCELED, "canceling statement due to user request"),
            Error::SealedValueForeign(name) => Report::new(CHECK_VIOLATION, "invalid MCP server headers")
                .detail(format!("The value of the {name} header looks sealed (enc1:...) but was not sealed for this row and header, or under a configured key."))
                .hint("Write header values as plaintext; they are encrypted before they are stored."),
            Error::KeyUnusable(why) => Report::new(CONFIGURATION_MISSING, "the encryption key is not usable")
                .detail(sentence(why))
                .hint("mcp_oauth.encryption_key (or the file of mcp_oauth.encryption_key_file) holds 64 hexadecimal characters per key, the current key first; keep older keys listed after it until mcp_oauth_rotate_key() has run."),
            Error::HeadersRefused { status } => Report::new(MCP_ERROR, "the MCP server refused the configured headers")
                .detail(format!("It answered HTTP {status}."))
                .hint("Check the credentials in the row's headers (UPDATE user_mcp_servers SET headers = ...)."),
            Error::Internal(why) => Report::new(INTERNAL_ERROR, "internal error in mcp_oauth")
                .detail(sentence(why))
                .hint("Retry; if it recurs, report it with the server log's lines around it."),
            Error::OwnerCannotLogIn(role) => Report::new(CONFIGURATION_MISSING, format!("the owner of the extension mcp_oauth, {role}, cannot log in"))
                .detail("Sign-ins, refreshes and failure state are stored by background workers that connect as the extension's owner; nothing was sent.")
                .hint(format!("A superuser runs ALTER ROLE {} LOGIN (the role may keep no password).", escape(role))),
            Error::NoWorkerSlot => Report::new(INSUFFICIENT_RESOURCES, "no background worker is free to store new tokens durably")
                .detail("The token request was not sent, so nothing was lost; the stored tokens are unchanged.")
                .hint(WORKER_HINT),
            Error::DurabilityUnavailable(why) => Report::new(INSUFFICIENT_RESOURCES, "new tokens cannot be stored durably now")
                .detail(format!("{} The token request was not sent, so nothing was lost.", sentence(why)))
                .hint(WORKER_HINT),
            Error::RowBusy { id, waited_ms } => Report::new(LOCK_NOT_AVAILABLE, format!("MCP server {id} is locked by another transaction"))
                .detail(format!("The row stayed locked for {waited_ms} ms; the token request was not sent."))
                .hint("Retry when the transaction holding the row has ended."),
            Error::RowHeldByCaller(id) => Report::new(OBJECT_NOT_IN_PREREQUISITE_STATE, format!("this transaction has changed or locked MCP server {id}"))
                .detail("New tokens are stored by a background worker in a transaction of its own, which would wait for this one; the token request was not sent.")
                .hint("Commit the change to the row first, then call again."),
            Error::ReadOnly => Report::new(READ_ONLY_SQL_TRANSACTION, "mcp_oauth cannot store this on a standby")
                .detail("A sign-in, a token refresh and a change of client store their result, and this server is in recovery (a read replica); nothing was sent.")
                .hint("Run sign-ins, resets and calls whose token is due for a refresh on the primary."),
            Error::RowChanged(id) => Report::new(SERIALIZATION_FAILURE, format!("MCP server {id} changed while the sign-in was starting"))
                .detail("Its URL or credentials changed after discovery; what discovery found was not stored.")
                .hint("Call mcp_oauth_start() again."),
            Error::DurableWriteFailed => Report::new(INTERNAL_ERROR, "the new tokens could not be stored")
                .detail("The authorization server issued new tokens, but the background worker holding the row could not commit them.")
                .hint("See the server log; if calls now fail with MC001, sign in again with mcp_oauth_start()."),
            Error::QueueUnavailable { why, hint } => {
                Report::new(OBJECT_NOT_IN_PREREQUISITE_STATE, "the call queue is not available").detail(sentence(why)).hint(*hint)
            }
            Error::CallNotFound(id) => Report::new(UNDEFINED_OBJECT, format!("queued call {id} not found"))
                .detail("There is no such call, it belongs to another user, or it finished longer ago than mcp_oauth.call_retention.")
                .hint("Your calls are listed in mcp_calls."),
            Error::CallFailed { id, sqlstate, message } => Report::new(known_sqlstate(sqlstate), format!("queued call {id} failed"))
                .detail(sentence(message))
                .hint("mcp_calls shows the call and its attempts; enqueue it again once the cause is fixed."),
            Error::TaskEnded(why) => Report::new(MCP_ERROR, "the MCP server's task for this call ended without a result")
                .detail(sentence(&escape(why)))
                .hint("The server ran the call as a task (the MCP tasks extension); the DETAIL has what it said."),
            Error::CallCancelled(id) => Report::new(QUERY_CANCELED, format!("queued call {id} was cancelled"))
                .detail("mcp_cancel_call() cancelled it.")
                .hint("Enqueue it again if it is still wanted."),
            Error::CallPending(id) => Report::new(OBJECT_NOT_IN_PREREQUISITE_STATE, format!("queued call {id} runs only after this transaction commits"))
                .detail("It was enqueued by this transaction, so no worker can see it yet; waiting here would wait forever.")
                .hint("Commit first, then call mcp_call_result() in a later transaction."),
            Error::FinishNeedsIdentity { identity, error } => {
                let why = Error::Unidentified { identity: identity.clone(), error: error.clone() }.report().detail.unwrap_or_default();
                Report::new(INVALID_AUTHORIZATION_SPECIFICATION, "a sign-in can only be finished by its user")
                    .detail(format!("mcp_oauth.finish_requires_identity is on, and {}", why.to_lowercase()))
                    .hint(identity_hint(identity))
            }
        }
    }
}

/// A SQLSTATE stored with a failed queued call, as one of ours (the stored
/// text comes from this extension, but the table is not trusted blindly).
fn known_sqlstate(code: &str) -> &'static str {
    use sqlstate::*;
    [
        REAUTH_REQUIRED,
        INVALID_STATE,
        DISCOVERY_FAILED,
        AUTHORIZATION_SERVER_ERROR,
        MCP_ERROR,
        NETWORK_POLICY,
        NETWORK_TIMEOUT,
        CONFIGURATION_MISSING,
        INVALID_PARAMETER_VALUE,
        NULL_VALUE_NOT_ALLOWED,
        INVALID_AUTHORIZATION_SPECIFICATION,
        UNDEFINED_OBJECT,
        OBJECT_NOT_IN_PREREQUISITE_STATE,
        CHECK_VIOLATION,
        QUERY_CANCELED,
        INSUFFICIENT_RESOURCES,
        LOCK_NOT_AVAILABLE,
        READ_ONLY_SQL_TRANSACTION,
        SERIALIZATION_FAILURE,
    ]
    .into_iter()
    .find(|known| *known == code)
    .unwrap_or(INTERNAL_ERROR)
}

const WORKER_HINT: &str = "Each token refresh and sign-in needs a free background worker slot for a moment: raise max_worker_processes (a restart is needed) if this recurs, and retry.";

const SIGN_IN_HINT: &str = "Call mcp_oauth_start() for this server and send the user to the URL it returns.";

fn net_report(e: &NetError, otherwise: &'static str, message: &str) -> Report {
    use sqlstate::*;
    match e {
        NetError::Blocked { host, reason } => Report::new(NETWORK_POLICY, "blocked by the network policy")
            .detail(format!("{}: {}.", host, reason))
            .hint("An administrator can allow it with mcp_oauth.allowed_hosts, mcp_oauth.allow_private_networks or mcp_oauth.allow_http_loopback."),
        NetError::Timeout { host } => Report::new(NETWORK_TIMEOUT, "network timeout")
            .detail(format!("{host} did not answer in time."))
            .hint("mcp_oauth.connect_timeout and mcp_oauth.request_timeout set the limits."),
        other => Report::new(otherwise, message.to_owned())
            .detail(sentence(&other.to_string()))
            .hint("Check that the server is up and reachable from the database server, then retry."),
    }
}

fn identity_hint(identity: &IdentitySource) -> String {
    match identity {
        IdentitySource::Setting(name) => {
            format!("mcp_oauth.identity is {identity}: the application must run SET LOCAL {name} = '<user id>' in each transaction.")
        }
        IdentitySource::JwtClaim(_) => {
            format!("mcp_oauth.identity is {identity}: request.jwt.claims must hold a JSON object with that claim, as PostgREST sets it.")
        }
        IdentitySource::Role => "mcp_oauth.identity is role: the current role's name is the user id.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::sqlstate::*;
    use super::*;

    fn state(e: Error) -> &'static str {
        e.report().sqlstate
    }

    #[test]
    fn each_kind_of_failure_has_its_sqlstate() {
        let id = uuid::Uuid::nil();
        let net = |e: NetError| e;
        assert_eq!(state(Error::ReauthRequired("x".into())), REAUTH_REQUIRED);
        assert_eq!(state(Error::State(StateError::Expired)), INVALID_STATE);
        assert_eq!(state(Error::Discovery(DiscoveryError::Invalid("x".into()))), DISCOVERY_FAILED);
        assert_eq!(state(Error::OAuth(OAuthError::InvalidResponse { host: "h".into(), why: "w".into() })), AUTHORIZATION_SERVER_ERROR);
        assert_eq!(state(Error::Mcp(McpError::Http { host: "h".into(), status: 500, retry_after: None })), MCP_ERROR);
        assert_eq!(state(Error::Mcp(McpError::Unauthorized { host: "h".into(), challenge: None, dpop_nonce: None })), REAUTH_REQUIRED);
        assert_eq!(state(Error::Mcp(McpError::ProofRefused { host: "h".into(), description: None })), MCP_ERROR, "not a sign-in");
        let blocked = net(NetError::Blocked { host: "h".into(), reason: "private".into() });
        assert_eq!(state(Error::OAuth(OAuthError::Net(blocked.clone()))), NETWORK_POLICY);
        assert_eq!(state(Error::Mcp(McpError::Net(blocked))), NETWORK_POLICY);
        assert_eq!(state(Error::Net(NetError::Timeout { host: "h".into() })), NETWORK_TIMEOUT);
        assert_eq!(state(Error::SettingMissing { setting: "mcp_oauth.redirect_uri", hint: "set it" }), CONFIGURATION_MISSING);
        assert_eq!(state(Error::ServerNotFound(id)), UNDEFINED_OBJECT);
        assert_eq!(state(Error::NullArgument("server_id")), NULL_VALUE_NOT_ALLOWED);
        assert_eq!(state(Error::Internal("SPI failed".into())), INTERNAL_ERROR);
        assert_eq!(state(Error::DurableWriteFailed), INTERNAL_ERROR);
        assert_eq!(state(Error::ReadOnly), READ_ONLY_SQL_TRANSACTION);
        assert_eq!(state(Error::NoWorkerSlot), INSUFFICIENT_RESOURCES);
        assert_eq!(state(Error::RowChanged(id)), SERIALIZATION_FAILURE);
        assert_eq!(state(Error::Cancelled), QUERY_CANCELED);
    }

    #[test]
    fn the_identity_hint_names_the_configured_source() {
        let missing = |identity| Error::Unidentified { identity, error: IdentityError::Missing("app.user_id is not set".into()) };
        let report = missing(IdentitySource::Setting("app.user_id".into())).report();
        assert_eq!(report.sqlstate, INVALID_AUTHORIZATION_SPECIFICATION);
        assert!(report.hint.unwrap().contains("SET LOCAL app.user_id = '<user id>'"));
        let report = missing(IdentitySource::JwtClaim("sub".into())).report();
        assert!(report.hint.unwrap().starts_with("mcp_oauth.identity is jwt_claim:sub: request.jwt.claims"));
        let finish = Error::FinishNeedsIdentity { identity: IdentitySource::Role, error: IdentityError::Missing("no role".into()) };
        let report = finish.report();
        assert_eq!(report.detail.as_deref(), Some("mcp_oauth.finish_requires_identity is on, and no role."));
        assert!(report.hint.unwrap().contains("identity is role"));
        assert_eq!(Error::Identity(IdentityError::InvalidSource("x".into())).report().sqlstate, CONFIGURATION_MISSING);
    }

    #[test]
    fn remote_text_is_escaped_and_hints_say_what_to_do() {
        let rejected = Error::OAuth(OAuthError::Rejected {
            host: "as.example".into(),
            code: "invalid_grant".into(),
            description: Some("bad\ncode \u{1b}[31m".into()),
            status: 400,
        });
        let report = rejected.report();
        let detail = report.detail.unwrap();
        assert!(!detail.contains('\n') && !detail.contains('\u{1b}'), "{detail}");
        assert!(report.hint.unwrap().contains("mcp_oauth_start()"));
        let proof = Error::OAuth(OAuthError::Rejected {
            host: "as.example".into(),
            code: "invalid_dpop_proof".into(),
            description: None,
            status: 400,
        });
        assert!(proof.report().hint.unwrap().contains("clock"), "a refused proof is not a sign-in matter");
        let busy = Error::RowBusy { id: uuid::Uuid::nil(), waited_ms: 3000 }.report();
        assert_eq!(busy.sqlstate, LOCK_NOT_AVAILABLE);
        assert_eq!(busy.detail.as_deref(), Some("The row stayed locked for 3000 ms; the token request was not sent."));
    }

    #[test]
    fn every_error_says_what_to_do_next() {
        let id = uuid::Uuid::nil();
        let host = || "h".to_owned();
        let errors = vec![
            Error::State(StateError::Expired),
            Error::State(StateError::UserIdLength),
            Error::State(StateError::SecretMissing),
            Error::Identity(IdentityError::InvalidSource("x".into())),
            Error::Unidentified { identity: IdentitySource::Role, error: IdentityError::Missing("x".into()) },
            Error::Unidentified { identity: IdentitySource::Role, error: IdentityError::Invalid("x".into(), "y") },
            Error::SettingMissing { setting: "s", hint: "A superuser sets it." },
            Error::Net(NetError::Timeout { host: host() }),
            Error::Net(NetError::Blocked { host: host(), reason: "r".into() }),
            Error::Net(NetError::TooLarge { host: host(), limit: 1 }),
            Error::Discovery(DiscoveryError::Invalid("x".into())),
            Error::Discovery(DiscoveryError::Net(NetError::TooLarge { host: host(), limit: 1 })),
            Error::OAuth(OAuthError::Rejected { host: host(), code: "invalid_grant".into(), description: None, status: 400 }),
            Error::OAuth(OAuthError::InvalidResponse { host: host(), why: "w".into() }),
            Error::OAuth(OAuthError::Unsupported("u".into())),
            Error::SignIn(SignInError::ForeignClient { registered: "a".into(), discovered: "b".into() }),
            Error::Mcp(McpError::Http { host: host(), status: 500, retry_after: None }),
            Error::Mcp(McpError::SessionEnded { host: host(), mid_request: true }),
            Error::Mcp(McpError::Unauthorized { host: host(), challenge: None, dpop_nonce: None }),
            Error::Mcp(McpError::ProofRefused { host: host(), description: Some("iat".into()) }),
            Error::ServerNotFound(id),
            Error::NotOAuth(id),
            Error::Disabled(id),
            Error::ReauthRequired("x".into()),
            Error::AuthorizationDenied { code: "access_denied".into(), description: None },
            Error::InvalidCallback("x".into()),
            Error::IssuerMismatch { expected: "a".into(), got: None },
            Error::InvalidArgument("x".into()),
            Error::NullArgument("server_id"),
            Error::KeyUnusable("x".into()),
            Error::SealedValueForeign("X-Key".into()),
            Error::HeadersRefused { status: 401 },
            Error::Internal("x".into()),
            Error::NoWorkerSlot,
            Error::DurabilityUnavailable("x".into()),
            Error::OwnerCannotLogIn("owner".into()),
            Error::RowBusy { id, waited_ms: 3000 },
            Error::RowHeldByCaller(id),
            Error::DurableWriteFailed,
            Error::RowChanged(id),
            Error::ReadOnly,
            Error::FinishNeedsIdentity { identity: IdentitySource::Role, error: IdentityError::Missing("x".into()) },
        ];
        for error in errors {
            let report = error.report();
            assert!(report.hint.as_deref().is_some_and(|h| h.len() > 10), "no hint for {error:?}: {report:?}");
        }
    }
}
