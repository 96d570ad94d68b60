//! Every `mcp_oauth.*` setting, registered once in `init()`.
//!
//! Secrets are `SUSET` and `SUPERUSER_ONLY` (hidden from `SHOW`, `SHOW ALL`
//! and `pg_settings` for other roles). The syntax of the other settings is
//! checked by check hooks, so `SET` and `ALTER SYSTEM` report a mistake at
//! once. The timeouts are `USERSET`, but a role that is not a
//! superuser may only lower them (see `lower_only`).

use mcp_oauth_core::{identity::IdentitySource, settings};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::{pg_guard, pg_sys};
use std::ffi::{c_char, c_void, CStr, CString};

pub static STATE_SECRET: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ENCRYPTION_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ENCRYPTION_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static IDP_TOKEN_ENDPOINT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static IDP_CLIENT_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static IDP_CLIENT_SECRET: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static WORKLOAD_TOKEN_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REDIRECT_URI: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static CLIENT_NAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"mcp_oauth"));
pub static CLIENT_URI: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static CLIENT_METADATA_URL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static STATE_TTL: GucSetting<i32> = GucSetting::<i32>::new(300);
pub static IDENTITY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"role"));
pub static ALLOWED_HOSTS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ALLOW_PRIVATE_NETWORKS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static ALLOW_HTTP_LOOPBACK: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static ALLOW_PLAINTEXT_SECRETS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static FINISH_REQUIRES_IDENTITY: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static MAX_RESPONSE_BYTES: GucSetting<i32> = GucSetting::<i32>::new(10 * 1024 * 1024);
pub static CONNECT_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(5_000);
pub static REQUEST_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(60_000);
pub static CLIENT_CAPABILITIES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static DURABLE_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(2);
/// The most `durable_workers` there can be.
pub const MAX_DURABLE_WORKERS: usize = 16;
pub static CALL_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(1);
/// The most `call_workers` there can be.
pub const MAX_CALL_WORKERS: usize = 8;
pub static QUEUE_DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"postgres"));
pub static MAX_CALLS_IN_FLIGHT: GucSetting<i32> = GucSetting::<i32>::new(100);
pub static MAX_CALLS_PER_SERVER: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static CALL_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(7 * 86_400);

/// A string setting's value, `None` when unset or empty.
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting.get().map(|c| c.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
}

pub fn init() {
    let secret = GucFlags::SUPERUSER_ONLY;
    let plain = GucFlags::default();
    // SAFETY: every hook below is a #[pg_guard] function of the signature
    // PostgreSQL expects, and never panics across the boundary.
    unsafe {
        // No check hooks on secrets: PostgreSQL's "invalid value" error would
        // repeat the value, and log the statement that carried it. They are
        // checked where they are used (MC008, naming only the length).
        GucRegistry::define_string_guc(
            c"mcp_oauth.state_secret",
            c"Key that signs OAuth state tokens (at least 32 bytes).",
            c"Required for sign-in. Superuser only; hidden from other roles.",
            &STATE_SECRET,
            GucContext::Suset,
            secret,
        );
        GucRegistry::define_string_guc(
            c"mcp_oauth.encryption_key",
            c"Key that encrypts tokens and other secrets at rest: 64 hexadecimal characters.",
            c"Superuser only; hidden from other roles. Prefer mcp_oauth.encryption_key_file.",
            &ENCRYPTION_KEY,
            GucContext::Suset,
            secret,
        );
        GucRegistry::define_string_guc(
            c"mcp_oauth.encryption_key_file",
            c"Path of a file holding the encryption key (64 hexadecimal characters).",
            c"The file should be readable only by the server's operating-system user.",
            &ENCRYPTION_KEY_FILE,
            GucContext::Suset,
            secret,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mcp_oauth.idp_token_endpoint",
            c"Token endpoint of the users' enterprise identity provider, for mcp_oauth_enterprise_sign_in (RFC 8693 token exchange).",
            c"Superuser only.",
            &IDP_TOKEN_ENDPOINT,
            GucContext::Suset,
            plain,
            Some(check_web_url),
            None,
            None,
        );
        GucRegistry::define_string_guc(
            c"mcp_oauth.idp_client_id",
            c"This application's client id at the enterprise identity provider.",
            c"Superuser only.",
            &IDP_CLIENT_ID,
            GucContext::Suset,
            plain,
        );
        GucRegistry::define_string_guc(
            c"mcp_oauth.idp_client_secret",
            c"This application's client secret at the enterprise identity provider (client_secret_basic), if it has one.",
            c"Superuser only; hidden from other roles.",
            &IDP_CLIENT_SECRET,
            GucContext::Suset,
            secret,
        );
        GucRegistry::define_string_guc(
            c"mcp_oauth.workload_token_file",
            c"Path of the file holding the database's workload identity token (a JWT), for workload_identity servers.",
            c"Superuser only. Read each time a token is obtained, so a token the platform rotates in place is followed.",
            &WORKLOAD_TOKEN_FILE,
            GucContext::Suset,
            secret,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mcp_oauth.redirect_uri",
            c"The application's OAuth redirect URI (absolute http(s) URL).",
            c"Where the authorization server sends the user back; required for OAuth.",
            &REDIRECT_URI,
            GucContext::Suset,
            plain,
            Some(check_web_url),
            None,
            None,
        );
        GucRegistry::define_string_guc(
            c"mcp_oauth.client_name",
            c"client_name sent in dynamic client registration.",
            c"",
            &CLIENT_NAME,
            GucContext::Suset,
            plain,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mcp_oauth.client_uri",
            c"client_uri sent in dynamic client registration (absolute http(s) URL).",
            c"",
            &CLIENT_URI,
            GucContext::Suset,
            plain,
            Some(check_web_url),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mcp_oauth.client_metadata_url",
            c"https URL of this application's OAuth Client ID Metadata Document.",
            c"Used as client_id where the authorization server supports it.",
            &CLIENT_METADATA_URL,
            GucContext::Suset,
            plain,
            Some(check_client_metadata_url),
            None,
            None,
        );
        // Defined only while preloading: a setting fixed at server start
        // cannot be created later (PostgreSQL ends the session that tries).
        if pg_sys::process_shared_preload_libraries_in_progress {
            GucRegistry::define_int_guc(
                c"mcp_oauth.durable_workers",
                c"Background workers started with the server to store tokens and failure state durably.",
                c"Only with mcp_oauth in shared_preload_libraries; each takes a max_worker_processes slot. \
                  When all are busy, dynamic background workers are used.",
                &DURABLE_WORKERS,
                0,
                MAX_DURABLE_WORKERS as i32,
                GucContext::Postmaster,
                plain,
            );
            GucRegistry::define_int_guc(
                c"mcp_oauth.call_workers",
                c"Background workers started with the server to make queued tool calls (mcp_call_tool_async).",
                c"Only with mcp_oauth in shared_preload_libraries; each takes a max_worker_processes slot and runs \
                  many calls at once. 0 turns the queue off.",
                &CALL_WORKERS,
                0,
                MAX_CALL_WORKERS as i32,
                GucContext::Postmaster,
                plain,
            );
            GucRegistry::define_string_guc(
                c"mcp_oauth.queue_database",
                c"The database whose call queue the queue workers serve.",
                c"mcp_call_tool_async refuses to enqueue in any other database.",
                &QUEUE_DATABASE,
                GucContext::Postmaster,
                plain,
            );
        }
        GucRegistry::define_int_guc(
            c"mcp_oauth.max_calls_in_flight",
            c"The most queued calls in flight at once, across the queue workers.",
            c"Each worker runs its share (this divided by mcp_oauth.call_workers, at least 1).",
            &MAX_CALLS_IN_FLIGHT,
            1,
            10_000,
            GucContext::Sighup,
            plain,
        );
        GucRegistry::define_int_guc(
            c"mcp_oauth.max_calls_per_server",
            c"The most queued calls in flight at once for one server row, in each queue worker.",
            c"",
            &MAX_CALLS_PER_SERVER,
            1,
            10_000,
            GucContext::Sighup,
            plain,
        );
        GucRegistry::define_int_guc(
            c"mcp_oauth.call_retention",
            c"How long a finished queued call is kept before the queue workers delete it.",
            c"",
            &CALL_RETENTION,
            0,
            i32::MAX,
            GucContext::Sighup,
            GucFlags::UNIT_S,
        );
        GucRegistry::define_int_guc(
            c"mcp_oauth.state_ttl",
            c"How long a sign-in may take, from mcp_oauth_start to the callback.",
            c"",
            &STATE_TTL,
            10,
            86_400,
            GucContext::Suset,
            GucFlags::UNIT_S,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mcp_oauth.identity",
            c"Where mcp_current_user_id() finds the user: role, setting:<name> or jwt_claim:<claim>.",
            c"role: the current database role. setting:<name>: a setting the trusted backend sets \
              per request (SET LOCAL). jwt_claim:<claim>: a claim of request.jwt.claims (PostgREST, Supabase).",
            &IDENTITY,
            GucContext::Suset,
            plain,
            Some(check_identity),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mcp_oauth.allowed_hosts",
            c"Comma-separated hosts (or host:port) the extension may connect to; empty allows any public host.",
            c"",
            &ALLOWED_HOSTS,
            GucContext::Suset,
            plain,
            Some(check_allowed_hosts),
            None,
            None,
        );
        GucRegistry::define_bool_guc(
            c"mcp_oauth.allow_private_networks",
            c"Allows connections to private, loopback and link-local addresses.",
            c"An escape hatch for servers on an internal network; off protects against SSRF.",
            &ALLOW_PRIVATE_NETWORKS,
            GucContext::Suset,
            plain,
        );
        GucRegistry::define_bool_guc(
            c"mcp_oauth.allow_http_loopback",
            c"Allows plain http to loopback addresses (tests and demos).",
            c"",
            &ALLOW_HTTP_LOOPBACK,
            GucContext::Suset,
            plain,
        );
        GucRegistry::define_bool_guc(
            c"mcp_oauth.allow_plaintext_secrets",
            c"Stores secrets unencrypted when no encryption key is configured (development only).",
            c"Off: without mcp_oauth.encryption_key or mcp_oauth.encryption_key_file, secrets are refused.",
            &ALLOW_PLAINTEXT_SECRETS,
            GucContext::Suset,
            plain,
        );
        GucRegistry::define_bool_guc(
            c"mcp_oauth.finish_requires_identity",
            c"mcp_oauth_finish and mcp_oauth_callback refuse a caller without a user identity.",
            c"Off: an unauthenticated callback handler may finish a sign-in, the signed state proving who started it.",
            &FINISH_REQUIRES_IDENTITY,
            GucContext::Suset,
            plain,
        );
        GucRegistry::define_int_guc(
            c"mcp_oauth.max_response_bytes",
            c"Largest response body the extension reads, after decompression.",
            c"",
            &MAX_RESPONSE_BYTES,
            1024,
            i32::MAX,
            GucContext::Suset,
            GucFlags::UNIT_BYTE,
        );
        GucRegistry::define_int_guc_with_hooks(
            c"mcp_oauth.connect_timeout",
            c"Time allowed to establish a connection.",
            c"A role that is not a superuser may lower it for its session, never raise it.",
            &CONNECT_TIMEOUT,
            100,
            600_000,
            GucContext::Userset,
            GucFlags::UNIT_MS,
            Some(check_connect_timeout),
            None,
            None,
        );
        GucRegistry::define_int_guc_with_hooks(
            c"mcp_oauth.request_timeout",
            c"Time allowed for a whole request, response body included.",
            c"A role that is not a superuser may lower it for its session, never raise it.",
            &REQUEST_TIMEOUT,
            100,
            3_600_000,
            GucContext::Userset,
            GucFlags::UNIT_MS,
            Some(check_request_timeout),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mcp_oauth.client_capabilities",
            c"MCP client capabilities declared to servers, as JSON (e.g. {\"elicitation\": {\"form\": {}}}); empty declares none.",
            c"Declare only what the application answers: the questions servers ask (elicitation, sampling, roots) \
              come back to it as input-required results.",
            &CLIENT_CAPABILITIES,
            GucContext::Userset,
            plain,
            Some(check_client_capabilities),
            None,
            None,
        );
        pg_sys::MarkGUCPrefixReserved(c"mcp_oauth".as_ptr());
    }
}

/// Runs `check` on a string setting's new value; on failure hands PostgreSQL
/// the reason as the error DETAIL.
unsafe fn check_string(newval: *mut *mut c_char, check: impl FnOnce(&str) -> Result<(), String>) -> bool {
    let value = unsafe { *newval };
    if value.is_null() {
        return true;
    }
    let text = unsafe { CStr::from_ptr(value) }.to_string_lossy();
    if text.is_empty() {
        return true;
    }
    match check(&text) {
        Ok(()) => true,
        Err(reason) => {
            let reason = CString::new(mcp_oauth_core::text::sentence(&reason).replace('\0', "")).unwrap_or_default();
            unsafe { pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(reason.as_ptr()) };
            false
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_web_url(newval: *mut *mut c_char, _extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    unsafe { check_string(newval, settings::web_url) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_client_metadata_url(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    unsafe { check_string(newval, settings::client_metadata_url) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_allowed_hosts(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    unsafe { check_string(newval, |v| settings::allowed_hosts(v).map(drop)) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_client_capabilities(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    unsafe { check_string(newval, |v| settings::client_capabilities(v).map(drop)) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_identity(newval: *mut *mut c_char, _extra: *mut *mut c_void, _source: pg_sys::GucSource::Type) -> bool {
    unsafe {
        check_string(newval, |v| {
            v.parse::<IdentitySource>().map(drop).map_err(|_| {
                "Use role, setting:<name> (e.g. setting:app.user_id) or jwt_claim:<claim> (e.g. jwt_claim:sub); \
                 no mcp_oauth.* setting can hold the identity."
                    .to_owned()
            })
        })
    }
}

/// Timeouts are capped by what a superuser configured: a role that is not a
/// superuser may set a value up to the one in force when its session started
/// (postgresql.conf, ALTER SYSTEM, ALTER DATABASE/ROLE SET), never above.
/// Values stored by ALTER DATABASE/ROLE SET were checked when they were
/// stored (source PGC_S_TEST), so they are trusted when a session starts.
unsafe fn lower_only(name: &CStr, newval: *mut i32, source: pg_sys::GucSource::Type) -> bool {
    use pg_sys::GucSource::*;
    let checked_source = matches!(source, PGC_S_CLIENT | PGC_S_TEST | PGC_S_INTERACTIVE | PGC_S_SESSION);
    if !checked_source || unsafe { pg_sys::superuser() } {
        return true;
    }
    let cap = unsafe {
        let reset = pg_sys::GetConfigOptionResetString(name.as_ptr());
        if reset.is_null() {
            None
        } else {
            CStr::from_ptr(reset).to_str().ok().and_then(|s| s.parse::<i32>().ok())
        }
    };
    let requested = unsafe { *newval };
    match cap {
        Some(cap) if requested > cap => {
            let reason = CString::new(format!("Only a superuser may raise this setting; the limit for this session is {cap} ms."))
                .unwrap_or_default();
            unsafe { pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(reason.as_ptr()) };
            false
        }
        _ => true,
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_connect_timeout(newval: *mut i32, _extra: *mut *mut c_void, source: pg_sys::GucSource::Type) -> bool {
    unsafe { lower_only(c"mcp_oauth.connect_timeout", newval, source) }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_request_timeout(newval: *mut i32, _extra: *mut *mut c_void, source: pg_sys::GucSource::Type) -> bool {
    unsafe { lower_only(c"mcp_oauth.request_timeout", newval, source) }
}
