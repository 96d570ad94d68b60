//! One batch of a key rotation (`mcp_oauth_rotate_key()`): the next rows,
//! in id order, every secret re-sealed under the current key (the first of
//! mcp_oauth.encryption_key); values under older keys listed after it, and
//! plaintext values, are opened and sealed again. A batch runs in a
//! transaction of its own (a background worker's), so a row is held only
//! while its batch runs.
//!
//! Each row is read and written back with a compare-and-swap on the values
//! read: a refresh, sign-in or header change committed in between makes the
//! write miss, and the row is read again, so nothing written meanwhile is
//! lost.

use crate::error::Error;
use crate::ids;
use crate::secrets;
use crate::spi::{self, arg, Statement};
use mcp_oauth_core::crypto::Keyring;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde::{Deserialize, Serialize};

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

/// Where a key rotation is: the last row re-sealed (rows go in id order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub after: Option<uuid::Uuid>,
}

/// What one batch did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Batch {
    /// Rows whose secrets changed.
    pub changed: i64,
    /// Where the next batch starts.
    pub next: Cursor,
    /// No row is left after this batch.
    pub done: bool,
}

/// Re-seals the next `limit` rows after `cursor` under the current key,
/// which must be the one whose id is `key_id` (the caller's); None when it
/// is not (a worker that sees another key, as when the caller set one for
/// its session only, does nothing rather than seal under it).
pub fn batch(cursor: Cursor, limit: u32, key_id: &str) -> Result<Option<Batch>, Error> {
    let ring = secrets::rotation_keyring()?;
    if ring.current_key_id() != key_id {
        return Ok(None);
    }
    let mut ids: Vec<pgrx::Uuid> = Vec::new();
    spi::run(&NEXT_IDS, &[arg(cursor.after.map(ids::to_sql)), arg(i64::from(limit))], |row| ids.extend(row.get::<pgrx::Uuid>(1)))?;
    let mut outcome = Batch { done: ids.len() < limit as usize, next: cursor, ..Default::default() };
    for id in ids {
        if rotate_row(&ring, id)? {
            outcome.changed += 1;
        }
        outcome.next.after = Some(ids::from_sql(id));
    }
    Ok(Some(outcome))
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

const NEXT_IDS: Statement = Statement {
    name: "rotate_ids",
    sql: "SELECT id FROM {table} WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
    args: &[pg_sys::UUIDOID, pg_sys::INT8OID],
};

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
