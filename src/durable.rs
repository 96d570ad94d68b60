//! Writes that must outlive the caller's transaction.
//!
//! When a call fails, what it learned (`reauth_required`, `last_error`, a
//! step-up scope, a rotated token pair) must stay on the row although the
//! call raises an ERROR and the caller's transaction rolls back. Such a
//! write is handed to a short-lived dynamic background worker that runs it
//! in a transaction of its own and commits before the caller goes on.
//!
//! The payload travels in a dynamic shared memory segment: `[status: u32]
//! [rows: u32][length: u32][JSON]`. The worker never waits for a lock (`SKIP
//! LOCKED`): if the caller's own transaction holds the row, waiting would
//! deadlock. When the worker updates no row (locked, or a condition not met)
//! the caller runs the same statement in its own transaction, which waits
//! for the lock and gives the authoritative answer.

use crate::error::Error;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde::{Deserialize, Serialize};

const PENDING: u32 = 0;
const COMMITTED: u32 = 1;
const HEADER: usize = 12;

/// One row update. `None` leaves a column as it is. No `Debug`: it may
/// carry tokens (sealed, or plaintext under allow_plaintext_secrets).
#[derive(Default, Serialize, Deserialize)]
pub struct RowUpdate {
    pub id: String,
    pub user_id: String,
    pub last_error: Option<String>,
    pub clear_error: bool,
    pub reauth_required: bool,
    pub clear_reauth: bool,
    pub record: Option<serde_json::Value>,
    /// Sealed tokens, base64.
    pub tokens: Option<String>,
    /// Update only while this flow is the one in progress...
    pub require_flow: Option<String>,
    /// ...and end it (verifier and flow removed).
    pub end_flow: bool,
    /// Where and as whom the worker connects; filled in by `write`.
    #[serde(default)]
    pub database: u32,
    #[serde(default)]
    pub owner: u32,
}

/// The statement both the worker and the fallback run.
fn statement(table: &str, skip_locked: bool) -> String {
    format!(
        "UPDATE {table} s SET
             last_error = CASE WHEN $4 THEN NULL ELSE COALESCE($3, s.last_error) END,
             reauth_required = (s.reauth_required AND NOT $6) OR $5,
             oauth_metadata = CASE WHEN $9 THEN COALESCE($7, s.oauth_metadata) - 'flow'
                                   ELSE COALESCE($7, s.oauth_metadata) END,
             oauth_code_verifier = CASE WHEN $9 THEN NULL ELSE s.oauth_code_verifier END,
             oauth_tokens = COALESCE(pg_catalog.decode($8, 'base64'), s.oauth_tokens)
         WHERE s.id = $1::uuid AND s.user_id = $2
           AND ($10::text IS NULL OR s.oauth_metadata -> 'flow' ->> 'id' = $10)
           -- The conditions stand on s itself too: after waiting for a
           -- concurrent update, PostgreSQL re-checks them on the newest
           -- version of the row (a condition only inside the sub-select
           -- would not be re-checked, and a flow could be ended twice).
           AND s.id IN (SELECT id FROM {table} WHERE id = $1::uuid {})
         RETURNING 1",
        if skip_locked { "FOR UPDATE SKIP LOCKED" } else { "" }
    )
}

fn args(u: &RowUpdate) -> Vec<pgrx::datum::DatumWithOid<'_>> {
    vec![
        u.id.as_str().into(),
        u.user_id.as_str().into(),
        u.last_error.clone().into(),
        u.clear_error.into(),
        u.reauth_required.into(),
        u.clear_reauth.into(),
        u.record.clone().map(JsonB).into(),
        u.tokens.clone().into(),
        u.end_flow.into(),
        u.require_flow.clone().into(),
    ]
}

/// Applies `update` so that it survives the caller's rollback when it can;
/// otherwise (no worker slot, the row locked, a condition not met) in the
/// caller's transaction. Returns the number of rows updated (0 or 1).
pub fn write(
    mut update: RowUpdate,
    table: &str,
    owner: pg_sys::Oid,
    local: impl FnOnce(&str, &[pgrx::datum::DatumWithOid<'_>]) -> Result<u64, Error>,
) -> Result<u64, Error> {
    // SAFETY: MyDatabaseId is set for every connected backend.
    update.database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    update.owner = owner.to_u32();
    match in_worker(&update) {
        Some(rows) if rows > 0 => Ok(rows),
        _ => local(&statement(table, false), &args(&update)),
    }
}

/// Runs the update in a background worker; the rows it committed, or None
/// when no worker could run it.
fn in_worker(update: &RowUpdate) -> Option<u64> {
    let payload = serde_json::to_vec(update).ok()?;
    // SAFETY: a fresh segment of the size we write; detached below (and by
    // the resource owner at the end of the transaction in any case).
    unsafe {
        let segment = pg_sys::dsm_create(HEADER + payload.len(), 0);
        if segment.is_null() {
            return None;
        }
        let base = pg_sys::dsm_segment_address(segment) as *mut u8;
        (base as *mut u32).write_unaligned(PENDING);
        (base.add(4) as *mut u32).write_unaligned(0);
        (base.add(8) as *mut u32).write_unaligned(payload.len() as u32);
        std::ptr::copy_nonoverlapping(payload.as_ptr(), base.add(HEADER), payload.len());
        let handle = pg_sys::dsm_segment_handle(segment);
        let worker = BackgroundWorkerBuilder::new("mcp_oauth durable write")
            .set_type("mcp_oauth")
            .set_library("mcp_oauth")
            .set_function("mcp_oauth_durable_write_main")
            .set_argument(Some(pg_sys::Datum::from(handle)))
            .enable_spi_access()
            .set_restart_time(None)
            .set_notify_pid(pg_sys::MyProcPid)
            .load_dynamic();
        let status = match worker {
            Ok(worker) => match worker.wait_for_shutdown() {
                Ok(()) if (base as *const u32).read_unaligned() == COMMITTED => {
                    Some(u64::from((base.add(4) as *const u32).read_unaligned()))
                }
                Ok(()) => None,
                Err(_) => None,
            },
            Err(_) => None,
        };
        pg_sys::dsm_detach(segment);
        status
    }
}

/// The worker: attach the segment, connect as the extension owner, run the
/// update in its own transaction, report.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn mcp_oauth_durable_write_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let handle = arg.value() as pg_sys::dsm_handle;
    // SAFETY: the segment was made by the backend that started us and stays
    // attached there until we exit.
    let (segment, base, update) = unsafe {
        let segment = pg_sys::dsm_attach(handle);
        if segment.is_null() {
            return;
        }
        let base = pg_sys::dsm_segment_address(segment) as *mut u8;
        let len = (base.add(8) as *const u32).read_unaligned() as usize;
        let bytes = std::slice::from_raw_parts(base.add(HEADER), len);
        match serde_json::from_slice::<RowUpdate>(bytes) {
            Ok(update) => (segment, base, update),
            Err(_) => {
                pg_sys::dsm_detach(segment);
                return;
            }
        }
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(
        Some(pg_sys::Oid::from(update.database)),
        Some(pg_sys::Oid::from(update.owner)),
    );
    let status = BackgroundWorker::transaction(|| {
        let table = crate::store::table();
        let updated = Spi::connect_mut(|client| {
            client.update(statement(&table, true).as_str(), None, &args(&update)).map(|t| t.len())
        });
        match updated {
            Ok(rows) => (COMMITTED, rows as u32),
            Err(_) => (PENDING, 0),
        }
    });
    // SAFETY: as above.
    unsafe {
        (base.add(4) as *mut u32).write_unaligned(status.1);
        (base as *mut u32).write_unaligned(status.0);
        pg_sys::dsm_detach(segment);
    }
}
