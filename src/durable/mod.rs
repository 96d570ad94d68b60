//! Writes that must outlive the caller's transaction, made by a short-lived
//! background worker in a transaction of its own.
//!
//! A call that fails still records what it learned (`reauth_required`,
//! `last_error`, a step-up scope) although it raises an ERROR and the
//! caller's transaction rolls back; a rotated token pair and a redeemed
//! code must never be lost to that rollback. Two ways:
//!
//! - [`write`], after the fact (failure state): the worker locks the row,
//!   checks the write's condition and commits. When no worker can do it (no
//!   `max_worker_processes` slot free within [`SLOT_WAIT`], the row held by
//!   the caller's own transaction, a lock not granted in time) the write is
//!   made in the caller's transaction instead, with a WARNING: it then
//!   survives only if the caller commits.
//! - [`reserve`], before a token request: the worker connects, locks the
//!   row and checks the condition *first*; only then is the request sent,
//!   and its result is committed by the worker, which already holds all it
//!   needs. When no worker can be reserved the request is not sent (an
//!   error the caller can retry), so a rotation can never be lost.
//!
//! Neither side waits without bound. The caller waits at most
//! [`SLOT_WAIT`] for a worker slot to come free (under load all are busy
//! at times, for milliseconds or for one token request; `remember` does
//! not wait). The worker waits at most [`LOCK_TIMEOUT_MS`] for a lock
//! (`lock_timeout`), so an `ALTER TABLE`
//! queued behind the caller, or a row lock of the caller's own transaction,
//! cannot make an undetectable deadlock (the caller waits on a latch, which
//! the deadlock detector does not see). The caller waits at most
//! [`START_TIMEOUT`] for the worker to be ready and [`COMMIT_TIMEOUT`] for a
//! commit; a held worker gives up when the caller is gone or its deadline
//! has passed.
//!
//! The two processes share a dynamic shared memory segment: a [`Header`] of
//! atomics, then the job (JSON), then room for the update the caller sends.

mod stations;
mod worker;

use crate::error::Error;
use crate::store::{self, Condition, RowUpdate};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::atomic::Ordering;
use std::time::Duration;
use worker::{command, now_ms, phase, Job, ResealJob, WaitEnd, Worker};

pub use stations::{init as init_stations, mcp_oauth_station_main};
pub use worker::mcp_oauth_durable_write_main;

/// The longest the worker waits for a lock.
pub const LOCK_TIMEOUT_MS: u32 = 3000;
/// The longest the caller waits for a worker to connect and lock the row.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the caller waits for a held worker to commit.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the caller waits for a free worker slot.
pub const SLOT_WAIT: Duration = Duration::from_secs(5);
/// How often it looks for one meanwhile.
pub(crate) const SLOT_POLL_MS: std::ffi::c_long = 10;
/// Room for the update sent to a held worker (sealed tokens and metadata).
pub(crate) const UPDATE_ROOM: usize = 256 * 1024;

/// A hot standby: nothing can be written, by this backend or a worker.
pub fn on_standby() -> bool {
    // SAFETY: a plain read of shared recovery state.
    unsafe { pg_sys::RecoveryInProgress() }
}

/// The workers connect as the extension's owner: one that may not log in
/// makes every worker end before it starts, which would read as a shortage
/// of workers. Checked in the role cache, whatever the caller may read.
fn owner_can_log_in(owner: pg_sys::Oid) -> Result<(), Error> {
    // SAFETY: a syscache look-up of a role by oid, released before return;
    // the struct is read while the tuple is pinned.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::AUTHOID as i32, pg_sys::Datum::from(owner));
        if tuple.is_null() {
            return Err(Error::Internal("the extension's owner is not a role".into()));
        }
        let role = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_authid>(tuple);
        let (can, name) = (role.rolcanlogin, std::ffi::CStr::from_ptr(role.rolname.data.as_ptr()).to_string_lossy().into_owned());
        pg_sys::ReleaseSysCache(tuple);
        if can {
            Ok(())
        } else {
            Err(Error::OwnerCannotLogIn(name))
        }
    }
}

fn job(row: &store::ServerRow, condition: Condition, update: Option<RowUpdate>, abandon: Option<RowUpdate>) -> Result<Job, Error> {
    let catalog = crate::spi::catalog()?;
    owner_can_log_in(catalog.owner)?;
    Ok(Job {
        // SAFETY: MyDatabaseId is set in every connected backend.
        database: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        owner: catalog.owner.to_u32(),
        id: row.id,
        user_id: row.user_id.clone(),
        condition,
        update,
        abandon,
        detached: false,
        reseal: None,
    })
}

/// Applies `update` to `row` if `condition` holds, some time soon, in a
/// background worker nobody waits for: for what is worth keeping but not
/// worth a wait (what a backend learned about a server). Lost, silently, if
/// no worker slot is free or the row changed.
pub fn remember(row: &store::ServerRow, condition: Condition, update: RowUpdate) -> Result<(), Error> {
    if row.held_by_caller || on_standby() {
        return Ok(());
    }
    // Best effort: a worker that cannot connect records nothing, and says
    // nothing here (the writes that matter do).
    let Ok(job) = job(row, condition, Some(update), None) else { return Ok(()) };
    let job = Job { detached: true, ..job };
    Worker::start_detached(&job);
    Ok(())
}

/// The longest a batch of a key rotation may take (rows another
/// transaction holds are waited for, each up to the worker's lock timeout).
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Has a worker re-seal the next `limit` rows after `cursor` under the key
/// whose id is `key_id`, in a transaction of its own; None when no worker
/// could (none was free, or it sees another key).
pub fn reseal(cursor: crate::reseal::Cursor, limit: u32, key_id: &str) -> Result<Option<crate::reseal::Batch>, Error> {
    if on_standby() {
        return Err(Error::ReadOnly);
    }
    let catalog = crate::spi::catalog()?;
    owner_can_log_in(catalog.owner)?;
    let job = Job {
        // SAFETY: MyDatabaseId is set in every connected backend.
        database: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        owner: catalog.owner.to_u32(),
        id: uuid::Uuid::nil(),
        user_id: String::new(),
        condition: Condition::Always,
        update: None,
        abandon: None,
        detached: false,
        reseal: Some(ResealJob { cursor, limit, key_id: key_id.to_owned() }),
    };
    let Some(worker) = Worker::start(&job) else {
        return if crate::runtime::cancel_requested() { Err(Error::Cancelled) } else { Ok(None) };
    };
    match worker.wait(&[phase::COMMITTED, phase::REFUSED], BATCH_TIMEOUT, true) {
        WaitEnd::Reached(_) => {
            let answer = worker.answer().unwrap_or_default();
            match (answer.get("batch"), answer.get("error").and_then(serde_json::Value::as_str)) {
                (Some(batch), _) => Ok(serde_json::from_value(batch.clone()).ok()),
                (None, Some(why)) => Err(Error::Internal(why.to_owned())),
                (None, None) => Ok(None),
            }
        }
        WaitEnd::Cancelled => Err(Error::Cancelled),
        WaitEnd::Stopped(_) => Ok(None),
        WaitEnd::TimedOut => Err(Error::Internal("a batch of the key rotation did not finish in time; run it again".into())),
    }
}

/// How a write after the fact ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Committed; the row's new generation.
    Durably(i64),
    /// In the caller's transaction (no worker could do it).
    InCallerTransaction(i64),
    /// The row changed since it was read (or is gone): nothing written.
    Skipped,
}

/// Applies `update` to `row` if `condition` holds, so that it survives the
/// caller's rollback when a worker can make it; otherwise in the caller's
/// transaction, with a WARNING.
pub fn write(row: &store::ServerRow, condition: Condition, update: RowUpdate) -> Result<Written, Error> {
    if on_standby() {
        // Nothing can be written on a hot standby; the caller's own error
        // is what the user needs to see.
        return Ok(Written::Skipped);
    }
    if !row.held_by_caller {
        if let Some(worker) = Worker::start(&job(row, condition.clone(), Some(update.clone()), None)?) {
            match worker.wait(&[phase::COMMITTED, phase::REFUSED], START_TIMEOUT + COMMIT_TIMEOUT, false) {
                WaitEnd::Reached(phase::COMMITTED) => return Ok(Written::Durably(worker.header().generation.load(Ordering::Acquire))),
                WaitEnd::Reached(_) => return Ok(Written::Skipped),
                // No connection, a lock not granted in time: do it here.
                _ => {}
            }
        }
    }
    let generation = store::apply(row.id, &row.user_id, condition, &update)?;
    match generation {
        Some(g) => {
            warning!(
                "mcp_oauth: the failure state of server {} was recorded in the current transaction only; it is lost if the transaction rolls back (no background worker could record it: see max_worker_processes)",
                row.id
            );
            Ok(Written::InCallerTransaction(g))
        }
        None => Ok(Written::Skipped),
    }
}

/// A worker holding `row` locked, its condition checked: what is sent next
/// is applied by it, durably.
pub struct Reservation {
    worker: Worker,
    /// The reservation's job, to store the update by other means should the
    /// worker be gone before it commits.
    job: Box<Job>,
    done: bool,
}

pub enum Reserved {
    Held(Reservation),
    /// The row changed since it was read (or is gone); nothing was done.
    Refused,
}

/// Reserves a worker holding `row` locked, if `condition` holds, before a
/// request whose result must be stored whatever the caller's transaction
/// does. `abandon` is applied if the caller never says what to write (it
/// died, or its deadline passed). Errors mean: do not send the request.
pub fn reserve(row: &store::ServerRow, condition: Condition, abandon: Option<RowUpdate>) -> Result<Reserved, Error> {
    if on_standby() {
        return Err(Error::ReadOnly);
    }
    if row.held_by_caller {
        return Err(Error::RowHeldByCaller(row.id));
    }
    let job = job(row, condition, None, abandon)?;
    let worker =
        Worker::start(&job).ok_or_else(|| if crate::runtime::cancel_requested() { Error::Cancelled } else { Error::NoWorkerSlot })?;
    let end = worker.wait(&[phase::HELD, phase::REFUSED], START_TIMEOUT, true);
    if !matches!(end, WaitEnd::Reached(_)) {
        let _ = worker.send(command::RELEASE, None);
    }
    match end {
        WaitEnd::Reached(phase::HELD) => Ok(Reserved::Held(Reservation { worker, job: Box::new(job), done: false })),
        WaitEnd::Reached(_) => Ok(Reserved::Refused),
        WaitEnd::Stopped(phase::LOCKING) => Err(Error::RowBusy { id: row.id, waited_ms: LOCK_TIMEOUT_MS }),
        WaitEnd::Stopped(_) => {
            Err(Error::DurabilityUnavailable("the background worker could not connect to the database as the extension's owner".into()))
        }
        WaitEnd::Cancelled => Err(Error::Cancelled),
        WaitEnd::TimedOut => Err(Error::DurabilityUnavailable("the background worker did not start in time".into())),
    }
}

impl Reservation {
    /// Tells the worker how long the caller may take before it gives up.
    pub fn hold_for(&self, duration: Duration) {
        self.worker.header().deadline_ms.store(now_ms() + duration.as_millis() as i64, Ordering::Release);
    }

    /// Applies `update` and commits; the row's new generation. An update
    /// too large to hand over is not applied: the row is marked for a new
    /// sign-in instead (what was not stored may have replaced what is, at
    /// the authorization server), and the worker lets the row go at once.
    pub fn apply(mut self, update: &RowUpdate) -> Result<i64, Error> {
        if let Err(e) = self.worker.send(command::APPLY, Some(update)) {
            let failure = RowUpdate::failure("reauth_required: the authorization server's answer was too large to store", true);
            if self.worker.send(command::APPLY, Some(&failure)).is_ok() {
                self.done = true;
                let _ = self.worker.wait(&[phase::COMMITTED], COMMIT_TIMEOUT, false);
            }
            return Err(e);
        }
        self.done = true;
        match self.worker.wait(&[phase::COMMITTED], COMMIT_TIMEOUT, false) {
            WaitEnd::Reached(_) => Ok(self.worker.header().generation.load(Ordering::Acquire)),
            _ => self.store_elsewhere(update),
        }
    }

    /// The worker holding the row ended before it committed (it was
    /// terminated, or its commit failed): the update, which the server's
    /// answer made the only good one, is stored by another worker, under the
    /// reservation's condition, or else in the caller's transaction.
    fn store_elsewhere(&self, update: &RowUpdate) -> Result<i64, Error> {
        let job = Job { update: Some(update.clone()), abandon: None, detached: false, ..(*self.job).clone() };
        if let Some(worker) = Worker::start(&job) {
            match worker.wait(&[phase::COMMITTED, phase::REFUSED], START_TIMEOUT + COMMIT_TIMEOUT, false) {
                WaitEnd::Reached(phase::COMMITTED) => return Ok(worker.header().generation.load(Ordering::Acquire)),
                // The row changed once it was let go: what it holds now wins.
                WaitEnd::Reached(_) => return Err(Error::DurableWriteFailed),
                _ => {}
            }
        }
        match store::apply(job.id, &job.user_id, job.condition.clone(), update)? {
            Some(generation) => {
                warning!(
                    "mcp_oauth: the new tokens of server {} were stored in the current transaction only (the background worker holding the row ended); they are lost if the transaction rolls back",
                    job.id
                );
                Ok(generation)
            }
            None => Err(Error::DurableWriteFailed),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.done {
            // Nothing to write: the worker releases the row (applying the
            // abandon update, if any) and ends.
            let _ = self.worker.send(command::RELEASE, None);
        }
    }
}
