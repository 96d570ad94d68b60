//! The row store: every statement that reads or writes a server row for the
//! extension. Rows are always addressed by (id, user_id), the user id having
//! been resolved as the caller before anything else, and statements that
//! touch secret columns run with the extension owner's rights (see
//! `as_owner`), which application roles do not have.

use crate::error::Error;
use crate::durable;
use crate::secrets;
use mcp_oauth_core::oauth::TokenSet;
use mcp_oauth_core::signin::OAuthRecord;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};

/// A server row as the extension sees it, secrets opened.
pub struct ServerRow {
    pub id: uuid::Uuid,
    pub user_id: String,
    pub url: String,
    pub auth_type: String,
    pub enabled: bool,
    /// Header names and values (headers mode).
    pub headers: Vec<(String, String)>,
    pub record: OAuthRecord,
    pub tokens: Option<TokenSet>,
    /// Tokens are stored but cannot be read (a new sign-in fixes it).
    pub tokens_unreadable: bool,
    pub verifier: Option<String>,
    pub client_secret: Option<String>,
    pub reauth_required: bool,
}

/// The table, schema-qualified and quoted, wherever the extension lives.
pub fn table() -> String {
    let schema: String = Spi::get_one(
        "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e \
         JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'mcp_oauth'",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| "public".into());
    format!("{schema}.user_mcp_servers")
}

fn owner() -> pg_sys::Oid {
    Spi::get_one::<pg_sys::Oid>("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'mcp_oauth'")
        .ok()
        .flatten()
        .expect("the extension is installed")
}

/// Runs `f` as the extension's owner, then restores the caller's identity
/// (also when `f` unwinds; PostgreSQL restores it on an aborted transaction).
fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores exactly what GetUserIdAndSecContext returned.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) }
        }
    }
    let owner = owner();
    let (mut uid, mut ctx) = (pg_sys::Oid::INVALID, 0i32);
    // SAFETY: plain reads and a local user-id switch, the same pattern as
    // PostgreSQL's own SECURITY DEFINER handling.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut uid, &mut ctx);
        pg_sys::SetUserIdAndSecContext(owner, ctx | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
    }
    let _restore = Restore(uid, ctx);
    f()
}

fn args<'a>(id: uuid::Uuid, user_id: &'a str) -> [DatumWithOid<'a>; 2] {
    [Uuid::from_bytes(*id.as_bytes()).into(), user_id.into()]
}

/// Loads a row of `user_id`.
pub fn load(id: uuid::Uuid, user_id: &str) -> Result<ServerRow, Error> {
    let sql = format!(
        "SELECT pg_catalog.jsonb_build_object(
            'user_id', user_id, 'url', url, 'auth_type', auth_type, 'enabled', enabled,
            'headers', headers, 'record', coalesce(oauth_metadata, '{{}}'::jsonb),
            'tokens', pg_catalog.encode(oauth_tokens, 'base64'), 'verifier', oauth_code_verifier,
            'client_secret', oauth_client_secret, 'reauth_required', reauth_required)
         FROM {} WHERE id = $1 AND user_id = $2",
        table()
    );
    let found = as_owner(|| {
        Spi::connect(|client| {
            let rows = client.select(sql.as_str(), Some(1), &args(id, user_id))?;
            if rows.is_empty() { Ok(None) } else { rows.first().get_one::<JsonB>() }
        })
    });
    let row = found
        .map_err(|e| Error::InvalidArgument(format!("reading the server row failed: {e}")))?
        .ok_or(Error::ServerNotFound(id))?
        .0;
    let text = |k: &str| row.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let row_id = id.to_string();
    let headers = row
        .get("headers")
        .and_then(|h| h.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?)))
                .map(|(k, v)| Ok((k.clone(), secrets::open_text(&row_id, &secrets::header_column(k), v)?)))
                .collect::<Result<Vec<_>, Error>>()
        })
        .transpose()?
        .unwrap_or_default();
    let tokens = text("tokens").map(|b64| {
        use base64::Engine as _;
        let clean: String = b64.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .ok()
            .and_then(|bytes| secrets::open_tokens(&row_id, &bytes))
    });
    Ok(ServerRow {
        id,
        user_id: text("user_id").unwrap_or_default(),
        url: text("url").unwrap_or_default(),
        auth_type: text("auth_type").unwrap_or_default(),
        enabled: row.get("enabled").and_then(|v| v.as_bool()).unwrap_or(false),
        headers,
        record: serde_json::from_value(row.get("record").cloned().unwrap_or_default()).unwrap_or_default(),
        tokens_unreadable: matches!(tokens, Some(None)),
        tokens: tokens.flatten(),
        verifier: text("verifier").map(|v| secrets::open_text(&row_id, "oauth_code_verifier", &v)).transpose()?,
        client_secret: text("client_secret").map(|v| secrets::open_text(&row_id, "oauth_client_secret", &v)).transpose()?,
        reauth_required: row.get("reauth_required").and_then(|v| v.as_bool()).unwrap_or(false),
    })
}

fn record_json(record: &OAuthRecord) -> JsonB {
    JsonB(serde_json::to_value(record).expect("record serialises"))
}

fn run(sql: &str, args: &[DatumWithOid<'_>]) -> Result<u64, Error> {
    as_owner(|| {
        Spi::connect_mut(|client| client.update(sql, None, args).map(|t| t.len() as u64))
    })
    .map_err(|e| Error::InvalidArgument(format!("writing the server row failed: {e}")))
}

/// Stores a started flow: the record, the verifier, and (when `Some`) a new
/// client secret.
pub fn save_flow(row: &ServerRow, record: &OAuthRecord, verifier: &str, client_secret: Option<Option<String>>) -> Result<(), Error> {
    let [id, user] = args(row.id, &row.user_id);
    let row_id = row.id.to_string();
    let verifier = secrets::seal_text(&row_id, "oauth_code_verifier", verifier)?;
    let (replace_secret, secret) = match client_secret {
        Some(s) => (true, s.map(|s| secrets::seal_text(&row_id, "oauth_client_secret", &s)).transpose()?),
        None => (false, None),
    };
    run(
        &format!(
            "UPDATE {} SET oauth_metadata = $3, oauth_code_verifier = $4,
                 oauth_client_secret = CASE WHEN $5 THEN $6 ELSE oauth_client_secret END
             WHERE id = $1 AND user_id = $2",
            table()
        ),
        &[id, user, record_json(record).into(), verifier.into(), replace_secret.into(), secret.into()],
    )?;
    Ok(())
}

/// Stores new tokens durably (they are the result of a one-time code or a
/// rotation that cannot be repeated); the sign-in is complete.
pub fn save_tokens(row: &ServerRow, record: &OAuthRecord, tokens: &TokenSet) -> Result<(), Error> {
    use base64::Engine as _;
    let update = durable::RowUpdate {
        id: row.id.to_string(),
        user_id: row.user_id.clone(),
        clear_error: true,
        clear_reauth: true,
        record: Some(serde_json::to_value(record).expect("record serialises")),
        tokens: Some(base64::engine::general_purpose::STANDARD.encode(secrets::seal_tokens(&row.id.to_string(), tokens)?)),
        ..Default::default()
    };
    durable::write(update, &table(), owner(), |sql, args| run(sql, args))?;
    Ok(())
}

/// Replaces the public record only.
pub fn save_record(row: &ServerRow, record: &OAuthRecord) -> Result<(), Error> {
    let [id, user] = args(row.id, &row.user_id);
    run(
        &format!("UPDATE {} SET oauth_metadata = $3 WHERE id = $1 AND user_id = $2", table()),
        &[id, user, record_json(record).into()],
    )?;
    Ok(())
}

/// Records a failure durably (it survives the ERROR the caller raises next);
/// `reauth` also marks the row as needing a sign-in. `record`, when given,
/// replaces the public OAuth record in the same write.
pub fn record_failure(row: &ServerRow, message: &str, reauth: bool, record: Option<&OAuthRecord>) -> Result<(), Error> {
    let message: String = crate::error::sanitise(message).chars().take(1000).collect();
    let update = durable::RowUpdate {
        id: row.id.to_string(),
        user_id: row.user_id.clone(),
        last_error: Some(message),
        reauth_required: reauth,
        record: record.map(|r| serde_json::to_value(r).expect("record serialises")),
        ..Default::default()
    };
    durable::write(update, &table(), owner(), |sql, args| run(sql, args))?;
    Ok(())
}

/// Ends flow `flow_id` durably: the verifier and the flow are removed, so the
/// same state can never be used again. False if it is no longer in progress.
pub fn end_flow(row: &ServerRow, flow_id: &str) -> Result<bool, Error> {
    let update = durable::RowUpdate {
        id: row.id.to_string(),
        user_id: row.user_id.clone(),
        require_flow: Some(flow_id.to_owned()),
        end_flow: true,
        ..Default::default()
    };
    Ok(durable::write(update, &table(), owner(), |sql, args| run(sql, args))? > 0)
}

/// Serialises token refreshes of one row across backends until the end of
/// the caller's transaction (a lock wait PostgreSQL can cancel).
pub fn lock_for_refresh(row: &ServerRow) -> Result<(), Error> {
    // Key: a fixed class for this extension, and 32 bits of the row id.
    const CLASS: i32 = 0x6d63_6f61; // "mcoa"
    let bytes = row.id.as_bytes();
    let object = i32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    Spi::run_with_args("SELECT pg_catalog.pg_advisory_xact_lock($1, $2)", &[CLASS.into(), object.into()])
        .map_err(|e| Error::InvalidArgument(format!("locking the server row for a refresh failed: {e}")))
}

/// Clears last_error after a call that worked.
pub fn clear_failure(row: &ServerRow) -> Result<(), Error> {
    let [id, user] = args(row.id, &row.user_id);
    run(
        &format!("UPDATE {} SET last_error = NULL WHERE id = $1 AND user_id = $2 AND last_error IS NOT NULL", table()),
        &[id, user],
    )?;
    Ok(())
}

/// Clears tokens, verifier, registration and last error.
pub fn reset(row: &ServerRow) -> Result<(), Error> {
    let [id, user] = args(row.id, &row.user_id);
    run(
        &format!(
            "UPDATE {} SET oauth_tokens = NULL, oauth_code_verifier = NULL, oauth_client_secret = NULL,
                 oauth_metadata = NULL, last_error = NULL, reauth_required = false
             WHERE id = $1 AND user_id = $2",
            table()
        ),
        &[id, user],
    )?;
    Ok(())
}

/// Stores a pre-registered client (and its secret, or none).
pub fn set_client(row: &ServerRow, record: &OAuthRecord, secret: Option<&str>) -> Result<(), Error> {
    let [id, user] = args(row.id, &row.user_id);
    let row_id = row.id.to_string();
    let secret = secret.map(|s| secrets::seal_text(&row_id, "oauth_client_secret", s)).transpose()?;
    run(
        &format!(
            "UPDATE {} SET oauth_metadata = $3, oauth_client_secret = $4, oauth_code_verifier = NULL
             WHERE id = $1 AND user_id = $2",
            table()
        ),
        &[id, user, record_json(record).into(), secret.into()],
    )?;
    Ok(())
}
