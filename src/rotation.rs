//! `mcp_oauth_rotate_key()`: every secret of every row re-sealed under the
//! current key (the first of mcp_oauth.encryption_key); values under older
//! keys listed after it, and plaintext values, are opened and sealed again.
//!
//! Each row is read and written back with a compare-and-swap on the values
//! read: a refresh, sign-in or header change committed in between makes the
//! write miss, and the row is read again, so nothing written meanwhile is
//! lost. Rows re-sealed stay locked until the caller's transaction ends.

use crate::error::{or_raise, Error};
use crate::ids;
use crate::secrets;
use crate::spi::{self, arg, Statement};
use mcp_oauth_core::crypto::Keyring;
use pgrx::prelude::*;
use pgrx::JsonB;

/// Attempts per row; each miss means another write landed just now.
const ATTEMPTS: usize = 10;

/// The secret columns of one row, as stored.
#[derive(PartialEq)]
struct StoredSecrets {
    tokens: Option<Vec<u8>>,
    verifier: Option<String>,
    client_secret: Option<String>,
    headers: Option<serde_json::Value>,
}

impl StoredSecrets {
    fn read(id: pgrx::Uuid) -> Result<Option<Self>, Error> {
        let mut read = None;
        spi::run(&READ_SECRETS, &[arg(id)], |row| {
            read = Some(Self {
                tokens: row.get::<Vec<u8>>(1),
                verifier: row.get::<String>(2),
                client_secret: row.get::<String>(3),
                headers: row.get::<JsonB>(4).map(|h| h.0),
            });
        })?;
        Ok(read)
    }

    /// The same values, each sealed under the current key for its row and
    /// column.
    fn resealed(&self, ring: &Keyring, row_id: &str) -> Result<Self, Error> {
        let text =
            |column: &str, value: &Option<String>| value.as_deref().map(|v| secrets::reseal_text(ring, row_id, column, v)).transpose();
        Ok(Self {
            tokens: self.tokens.as_deref().map(|t| secrets::reseal(ring, row_id, "oauth_tokens", t)).transpose()?,
            verifier: text("oauth_code_verifier", &self.verifier)?,
            client_secret: text("oauth_client_secret", &self.client_secret)?,
            headers: self.headers.as_ref().map(|h| secrets::reseal_headers(ring, row_id, h)).transpose()?,
        })
    }

    /// Writes `new` over row `id` if it still holds these values; whether
    /// it did.
    fn swap(&self, id: pgrx::Uuid, new: Self) -> Result<bool, Error> {
        let mut swapped = false;
        spi::run(
            &SWAP_SECRETS,
            &[
                arg(id),
                arg(self.tokens.clone()),
                arg(self.verifier.clone()),
                arg(self.client_secret.clone()),
                arg(self.headers.clone().map(JsonB)),
                arg(new.tokens),
                arg(new.verifier),
                arg(new.client_secret),
                arg(new.headers.map(JsonB)),
            ],
            |_| swapped = true,
        )?;
        Ok(swapped)
    }
}

/// Returns the rows changed.
fn rotate() -> Result<i64, Error> {
    let ring = secrets::rotation_keyring()?;
    let mut ids: Vec<pgrx::Uuid> = Vec::new();
    spi::run(&ALL_IDS, &[], |row| ids.extend(row.get::<pgrx::Uuid>(1)))?;
    let mut changed = 0i64;
    for id in ids {
        if rotate_row(&ring, id)? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// Re-seals row `id`; whether anything in it changed.
fn rotate_row(ring: &Keyring, id: pgrx::Uuid) -> Result<bool, Error> {
    let row_id = ids::from_sql(id).to_string();
    for _ in 0..ATTEMPTS {
        let Some(stored) = StoredSecrets::read(id)? else { return Ok(false) };
        let resealed = stored.resealed(ring, &row_id)?;
        if resealed == stored {
            return Ok(false);
        }
        if stored.swap(id, resealed)? {
            return Ok(true);
        }
    }
    Err(Error::Internal(format!("row {row_id} kept changing during the key rotation; run it again")))
}

const ALL_IDS: Statement = Statement { name: "rotate_ids", sql: "SELECT id FROM {table}", args: &[] };

const READ_SECRETS: Statement = Statement {
    name: "rotate_read",
    sql: "SELECT oauth_tokens, oauth_code_verifier, oauth_client_secret, headers FROM {table} WHERE id = $1",
    args: &[pg_sys::UUIDOID],
};

const SWAP_SECRETS: Statement = Statement {
    name: "rotate_swap",
    sql: "UPDATE {table} SET oauth_tokens = $6, oauth_code_verifier = $7, oauth_client_secret = $8, headers = $9
           WHERE id = $1 AND oauth_tokens IS NOT DISTINCT FROM $2 AND oauth_code_verifier IS NOT DISTINCT FROM $3
             AND oauth_client_secret IS NOT DISTINCT FROM $4 AND headers = $5
          RETURNING 1",
    args: &[
        pg_sys::UUIDOID,
        pg_sys::BYTEAOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::JSONBOID,
        pg_sys::BYTEAOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::JSONBOID,
    ],
};

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_rotate_key() -> i64 {
    or_raise(rotate())
}
