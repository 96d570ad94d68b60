//! The one place where secret column values are produced and read back:
//! tokens (`oauth_tokens`), the PKCE verifier (`oauth_code_verifier`), the
//! client secret (`oauth_client_secret`) and header values (`headers`).
//! Every write of a secret goes through `seal_*`, every read through
//! `open_*`: AES-256-GCM under the key of `mcp_oauth.encryption_key` (or the
//! file named by `mcp_oauth.encryption_key_file`), bound to the row and the
//! column. Without a key, secrets are refused (MC008) unless
//! `mcp_oauth.allow_plaintext_secrets` is on (development only).

use crate::error::Error;
use crate::gucs;
use mcp_oauth_core::crypto::{self, Context, CryptoError, Keyring};
use mcp_oauth_core::oauth::TokenSet;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::cell::RefCell;
use std::rc::Rc;

thread_local! {
    /// The parsed keyring and what it was parsed from.
    static KEYRING: RefCell<Option<(String, Rc<Keyring>)>> = const { RefCell::new(None) };
}

const KEY_HINT: &str = "A superuser sets mcp_oauth.encryption_key_file to a file (readable only by the server) holding \
    64 hexadecimal characters, e.g. from: openssl rand -hex 32; or mcp_oauth.encryption_key. \
    For development only, mcp_oauth.allow_plaintext_secrets = on stores secrets unencrypted.";

fn key_text() -> Result<Option<String>, Error> {
    if let Some(key) = gucs::string(&gucs::ENCRYPTION_KEY) {
        return Ok(Some(key));
    }
    let Some(path) = gucs::string(&gucs::ENCRYPTION_KEY_FILE) else { return Ok(None) };
    let unreadable = |e: std::io::Error| {
        Error::KeyUnusable(format!("the file named by mcp_oauth.encryption_key_file cannot be read ({})", e.kind()))
    };
    // A key others can read is not a secret: refuse it, as ssh does.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).map_err(unreadable)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::KeyUnusable(format!(
            "the file named by mcp_oauth.encryption_key_file can be read by other users (mode {:o}); chmod 600 it",
            mode & 0o777
        )));
    }
    std::fs::read_to_string(&path).map(Some).map_err(unreadable)
}

/// The configured keyring, or None when no key is configured.
fn keyring() -> Result<Option<Rc<Keyring>>, Error> {
    let Some(text) = key_text()? else { return Ok(None) };
    KEYRING.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((source, ring)) = slot.as_ref() {
            if *source == text {
                return Ok(Some(ring.clone()));
            }
        }
        let ring = Rc::new(Keyring::parse(&text).map_err(|e| Error::KeyUnusable(e.to_string()))?);
        *slot = Some((text, ring.clone()));
        Ok(Some(ring))
    })
}

/// The keyring to seal with; None means "store plaintext" (allowed only by
/// the development setting).
fn sealing_keyring() -> Result<Option<Rc<Keyring>>, Error> {
    match keyring()? {
        Some(ring) => Ok(Some(ring)),
        None if gucs::ALLOW_PLAINTEXT_SECRETS.get() => Ok(None),
        None => Err(Error::SettingMissing { setting: "mcp_oauth.encryption_key", hint: KEY_HINT }),
    }
}

fn opened(e: CryptoError) -> Error {
    Error::KeyUnusable(e.to_string())
}

pub fn seal_tokens(row_id: &str, tokens: &TokenSet) -> Result<Vec<u8>, Error> {
    let plain = serde_json::to_vec(tokens).expect("tokens serialise");
    Ok(match sealing_keyring()? {
        Some(ring) => ring.seal(&plain, &Context { row_id, column: "oauth_tokens" }),
        None => plain,
    })
}

/// None when the stored tokens cannot be opened (a new sign-in fixes it).
pub fn open_tokens(row_id: &str, stored: &[u8]) -> Option<TokenSet> {
    let plain = if crypto::is_sealed(stored) {
        keyring().ok()??.open(stored, &Context { row_id, column: "oauth_tokens" }).ok()?
    } else {
        stored.to_vec()
    };
    serde_json::from_slice(&plain).ok()
}

pub fn seal_text(row_id: &str, column: &str, plain: &str) -> Result<String, Error> {
    Ok(match sealing_keyring()? {
        Some(ring) => ring.seal_text(plain, &Context { row_id, column }),
        None => plain.to_owned(),
    })
}

pub fn open_text(row_id: &str, column: &str, stored: &str) -> Result<String, Error> {
    if !crypto::is_sealed_text(stored) {
        return Ok(stored.to_owned());
    }
    let ring = keyring()?.ok_or(Error::SettingMissing { setting: "mcp_oauth.encryption_key", hint: KEY_HINT })?;
    ring.open_text(stored, &Context { row_id, column }).map_err(opened)
}

/// The column name under which a header value is sealed: bound to the
/// header's name, so values cannot be swapped between headers.
pub fn header_column(name: &str) -> String {
    format!("headers:{}", name.to_ascii_lowercase())
}

/// Seals every header value that is not already sealed for this row and
/// header (the table's trigger calls this before a row is written, so
/// plaintext never reaches the table).
#[pg_extern(volatile, parallel_unsafe, strict)]
fn mcp_oauth_seal_headers(id: pgrx::Uuid, headers: JsonB) -> JsonB {
    let row_id = uuid::Uuid::from_bytes(*id.as_bytes()).to_string();
    let sealed = (|| -> Result<serde_json::Value, Error> {
        let serde_json::Value::Object(map) = headers.0 else { return Ok(headers.0) };
        let ring = if map.is_empty() { None } else { sealing_keyring()? };
        let mut out = serde_json::Map::new();
        for (name, value) in map {
            let column = header_column(&name);
            let value = match (&ring, value) {
                (Some(ring), serde_json::Value::String(s)) => {
                    let context = Context { row_id: &row_id, column: &column };
                    if crypto::is_sealed_text(&s) {
                        // Kept from before: it must be this row's, for this header.
                        ring.open_text(&s, &context).map_err(|_| Error::SealedValueForeign(name.clone()))?;
                        serde_json::Value::String(s)
                    } else {
                        serde_json::Value::String(ring.seal_text(&s, &context))
                    }
                }
                (_, other) => other,
            };
            out.insert(name, value);
        }
        Ok(serde_json::Value::Object(out))
    })();
    JsonB(crate::error::or_raise(sealed))
}

/// Re-seals every secret of every row under the current key (the first of
/// mcp_oauth.encryption_key); values under older keys listed after it, and
/// plaintext values, are opened and sealed again. Returns the rows changed.
fn rotate() -> Result<i64, Error> {
    let ring = keyring()?.ok_or(Error::SettingMissing { setting: "mcp_oauth.encryption_key", hint: KEY_HINT })?;
    let table = crate::store::table();
    let rows: Vec<(pgrx::Uuid, Option<Vec<u8>>, Option<String>, Option<String>, JsonB)> = Spi::connect(|client| {
        let mut out = Vec::new();
        for row in client.select(
            &format!("SELECT id, oauth_tokens, oauth_code_verifier, oauth_client_secret, headers FROM {table}"),
            None,
            &[],
        )? {
            out.push((
                row.get::<pgrx::Uuid>(1)?.expect("id is not null"),
                row.get::<Vec<u8>>(2)?,
                row.get::<String>(3)?,
                row.get::<String>(4)?,
                row.get::<JsonB>(5)?.expect("headers is not null"),
            ));
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })
    .map_err(|e| Error::InvalidArgument(format!("reading rows failed: {e}")))?;
    let mut changed = 0i64;
    for (id, tokens, verifier, secret, headers) in rows {
        let row_id = uuid::Uuid::from_bytes(*id.as_bytes()).to_string();
        let reseal_text = |column: &str, stored: Option<String>| -> Result<(bool, Option<String>), Error> {
            match stored {
                Some(s) if !ring.is_current_text(&s) => {
                    let plain = open_text(&row_id, column, &s)?;
                    Ok((true, Some(ring.seal_text(&plain, &Context { row_id: &row_id, column }))))
                }
                other => Ok((false, other)),
            }
        };
        let (v_changed, verifier) = reseal_text("oauth_code_verifier", verifier)?;
        let (s_changed, secret) = reseal_text("oauth_client_secret", secret)?;
        let (t_changed, tokens) = match tokens {
            Some(t) if !ring.is_current(&t) => {
                let plain = if crypto::is_sealed(&t) {
                    ring.open(&t, &Context { row_id: &row_id, column: "oauth_tokens" }).map_err(opened)?
                } else {
                    t
                };
                (true, Some(ring.seal(&plain, &Context { row_id: &row_id, column: "oauth_tokens" })))
            }
            other => (false, other),
        };
        let mut h_changed = false;
        let mut new_headers = serde_json::Map::new();
        if let serde_json::Value::Object(map) = headers.0 {
            for (name, value) in map {
                let value = match value {
                    serde_json::Value::String(s) if !ring.is_current_text(&s) => {
                        h_changed = true;
                        let column = header_column(&name);
                        let plain = open_text(&row_id, &column, &s)?;
                        serde_json::Value::String(ring.seal_text(&plain, &Context { row_id: &row_id, column: &column }))
                    }
                    other => other,
                };
                new_headers.insert(name, value);
            }
        }
        if v_changed || s_changed || t_changed || h_changed {
            Spi::run_with_args(
                &format!(
                    "UPDATE {table} SET oauth_tokens = $2, oauth_code_verifier = $3, oauth_client_secret = $4, headers = $5
                     WHERE id = $1"
                ),
                &[id.into(), tokens.into(), verifier.into(), secret.into(), JsonB(serde_json::Value::Object(new_headers)).into()],
            )
            .map_err(|e| Error::InvalidArgument(format!("writing a row failed: {e}")))?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn mcp_oauth_rotate_key() -> i64 {
    crate::error::or_raise(rotate())
}
