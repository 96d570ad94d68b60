//! `mcp_oauth_rotate_key()`: every secret of every row re-sealed under the
//! current key, in batches of [`BATCH_ROWS`] rows, each committed by a
//! background worker in a transaction of its own: no row stays locked for
//! the whole rotation (users' refreshes and changes go on meanwhile). With
//! no worker to be had, or none that sees the caller's key (one set for its
//! session only), the rest is done in the caller's transaction, which then
//! holds what it re-sealed until it ends (a WARNING says so).

use crate::durable;
use crate::error::{or_raise, Error};
use crate::reseal::{self, Cursor};
use crate::secrets;
use pgrx::prelude::*;

/// Rows per batch: a row is held while its batch runs (milliseconds).
const BATCH_ROWS: u32 = 100;

/// Returns the rows changed.
fn rotate() -> Result<i64, Error> {
    let key_id = secrets::rotation_keyring()?.current_key_id();
    let mut cursor = Cursor::default();
    let mut changed = 0;
    loop {
        let batch = match durable::reseal(cursor, BATCH_ROWS, &key_id)? {
            Some(batch) => batch,
            None => {
                warning!(
                    "mcp_oauth: the background workers cannot re-seal the rows (none is free, or they see another key than this session's); the rest is re-sealed in this transaction, which holds them until it ends"
                );
                reseal::batch(cursor, u32::MAX, &key_id)?
                    .ok_or_else(|| Error::Internal("the current key changed during the rotation; run it again".into()))?
            }
        };
        changed += batch.changed;
        cursor = batch.next;
        if batch.done {
            return Ok(changed);
        }
    }
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_oauth_rotate_key() -> i64 {
    or_raise(rotate())
}
