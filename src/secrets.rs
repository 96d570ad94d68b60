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
use crate::ids;
use mcp_oauth_core::crypto::{self, Context, CryptoError, Keyring};
use mcp_oauth_core::signin::Credentials;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Where the cached keyring came from.
#[derive(PartialEq, Eq)]
enum Source {
    Setting(String),
    /// The key file, with what identifies its version: inode, length and
    /// modification time.
    File {
        path: String,
        stamp: (u64, u64, i64, i64),
    },
}

struct Cached {
    source: Source,
    /// When the key file was last looked at.
    checked: Instant,
    ring: Rc<Keyring>,
}

thread_local! {
    static KEYRING: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// A key file is looked at again at most this often: a warm call does no
/// file I/O, and a key written to the file is seen within this delay (and at
/// once by `mcp_oauth_rotate_key()`).
const KEY_FILE_RECHECK: Duration = Duration::from_secs(1);

const KEY_HINT: &str = "A superuser sets mcp_oauth.encryption_key_file to a file (readable only by the server) holding \
    64 hexadecimal characters, e.g. from: openssl rand -hex 32; or mcp_oauth.encryption_key. \
    For development only, mcp_oauth.allow_plaintext_secrets = on stores secrets unencrypted.";

fn parse(text: &str) -> Result<Rc<Keyring>, Error> {
    Keyring::parse(text).map(Rc::new).map_err(|e| Error::KeyUnusable(e.to_string()))
}

/// The configured keyring, or None when no key is configured. `fresh`:
/// look at the key file now, whenever it was last looked at.
fn keyring_checked(fresh: bool) -> Result<Option<Rc<Keyring>>, Error> {
    KEYRING.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some(key) = gucs::string(&gucs::ENCRYPTION_KEY) {
            if let Some(cached) = slot.as_ref().filter(|c| c.source == Source::Setting(key.clone())) {
                return Ok(Some(cached.ring.clone()));
            }
            let ring = parse(&key)?;
            *slot = Some(Cached { source: Source::Setting(key), checked: Instant::now(), ring: ring.clone() });
            return Ok(Some(ring));
        }
        let Some(path) = gucs::string(&gucs::ENCRYPTION_KEY_FILE) else {
            *slot = None;
            return Ok(None);
        };
        if let Some(cached) = slot.as_mut() {
            if matches!(&cached.source, Source::File { path: p, .. } if *p == path) && !fresh && cached.checked.elapsed() < KEY_FILE_RECHECK
            {
                return Ok(Some(cached.ring.clone()));
            }
        }
        let unreadable = |e: std::io::Error| {
            Error::KeyUnusable(format!("the file named by mcp_oauth.encryption_key_file cannot be read ({})", e.kind()))
        };
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&path).map_err(unreadable)?;
        // A key others can read is not a secret: refuse it, as ssh does.
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            *slot = None;
            return Err(Error::KeyUnusable(format!(
                "the file named by mcp_oauth.encryption_key_file can be read by other users (mode {:o}); chmod 600 it",
                mode & 0o777
            )));
        }
        let source = Source::File { path: path.clone(), stamp: (meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec()) };
        if let Some(cached) = slot.as_mut().filter(|c| c.source == source) {
            cached.checked = Instant::now();
            return Ok(Some(cached.ring.clone()));
        }
        let ring = parse(&std::fs::read_to_string(&path).map_err(unreadable)?)?;
        *slot = Some(Cached { source, checked: Instant::now(), ring: ring.clone() });
        Ok(Some(ring))
    })
}

fn keyring() -> Result<Option<Rc<Keyring>>, Error> {
    keyring_checked(false)
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

pub fn seal_credentials(row_id: &str, credentials: &Credentials) -> Result<Vec<u8>, Error> {
    let plain = serde_json::to_vec(credentials).expect("credentials serialise");
    Ok(match sealing_keyring()? {
        Some(ring) => ring.seal(&plain, &Context { row_id, column: "oauth_tokens" }),
        None => plain,
    })
}

/// None when the stored tokens cannot be opened under a usable key (a new
/// sign-in fixes it); an error when no key is usable now (an administrator
/// fixes it: a new sign-in would not).
pub fn open_credentials(row_id: &str, stored: &[u8]) -> Result<Option<Credentials>, Error> {
    let plain = if crypto::is_sealed(stored) {
        let ring = keyring()?.ok_or(Error::SettingMissing { setting: "mcp_oauth.encryption_key", hint: KEY_HINT })?;
        match ring.open(stored, &Context { row_id, column: "oauth_tokens" }) {
            Ok(plain) => plain,
            Err(_) => return Ok(None),
        }
    } else {
        stored.to_vec()
    };
    Ok(serde_json::from_slice(&plain).ok())
}

/// Checks, now, that what a token request brings back can be sealed: the
/// request is sent only then (the server may rotate the tokens it answers
/// with, which must not be lost for want of a key).
pub fn check_sealable() -> Result<(), Error> {
    match keyring_checked(true)? {
        Some(_) => Ok(()),
        None if gucs::ALLOW_PLAINTEXT_SECRETS.get() => Ok(()),
        None => Err(Error::SettingMissing { setting: "mcp_oauth.encryption_key", hint: KEY_HINT }),
    }
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
    let row_id = ids::from_sql(id).to_string();
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

/// The keyring a rotation seals under: the key file read now; a rotation
/// without a key is refused.
pub fn rotation_keyring() -> Result<Rc<Keyring>, Error> {
    keyring_checked(true)?.ok_or(Error::SettingMissing { setting: "mcp_oauth.encryption_key", hint: KEY_HINT })
}

/// A sealed (or plaintext) value under the current key: unchanged if it
/// already is.
pub fn reseal(ring: &Keyring, row_id: &str, column: &str, stored: &[u8]) -> Result<Vec<u8>, Error> {
    if ring.is_current(stored) {
        return Ok(stored.to_vec());
    }
    let context = Context { row_id, column };
    let plain = if crypto::is_sealed(stored) { ring.open(stored, &context).map_err(opened)? } else { stored.to_vec() };
    Ok(ring.seal(&plain, &context))
}

pub fn reseal_text(ring: &Keyring, row_id: &str, column: &str, stored: &str) -> Result<String, Error> {
    if ring.is_current_text(stored) {
        return Ok(stored.to_owned());
    }
    let plain = open_text(row_id, column, stored)?;
    Ok(ring.seal_text(&plain, &Context { row_id, column }))
}

pub fn reseal_headers(ring: &Keyring, row_id: &str, headers: &serde_json::Value) -> Result<serde_json::Value, Error> {
    let serde_json::Value::Object(map) = headers else { return Ok(headers.clone()) };
    let mut out = serde_json::Map::new();
    for (name, value) in map {
        let value = match value {
            serde_json::Value::String(s) => serde_json::Value::String(reseal_text(ring, row_id, &header_column(name), s)?),
            other => other.clone(),
        };
        out.insert(name.clone(), value);
    }
    Ok(serde_json::Value::Object(out))
}
