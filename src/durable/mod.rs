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

use crate::error::Error;
use crate::store::{self, Condition, RowUpdate};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, DynamicBackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest the worker waits for a lock.
pub const LOCK_TIMEOUT_MS: u32 = 3000;
/// The longest the caller waits for a worker to connect and lock the row.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the caller waits for a held worker to commit.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the caller waits for a free worker slot.
pub const SLOT_WAIT: Duration = Duration::from_secs(5);
/// How often it looks for one meanwhile.
const SLOT_POLL_MS: std::ffi::c_long = 10;
/// Room for the update sent to a held worker (sealed tokens and metadata).
const UPDATE_ROOM: usize = 256 * 1024;

/// The worker's progress, set by the worker.
mod phase {
    pub const STARTING: u32 = 0;
    pub const LOCKING: u32 = 1;
    /// The row is locked and the condition holds; waiting for a command.
    pub const HELD: u32 = 2;
    pub const APPLYING: u32 = 3;
    pub const COMMITTED: u32 = 4;
    /// The row is gone or the condition does not hold; nothing written.
    pub const REFUSED: u32 = 5;
    /// Released, or given up waiting; nothing written but the abandon update.
    pub const RELEASED: u32 = 6;
}

/// What the caller tells a held worker.
mod command {
    pub const NONE: u32 = 0;
    pub const APPLY: u32 = 1;
    pub const RELEASE: u32 = 2;
}

#[repr(C)]
struct Header {
    phase: AtomicU32,
    command: AtomicU32,
    caller_pid: i32,
    caller_latch: u64,
    worker_latch: AtomicU64,
    /// Unix milliseconds after which a held worker stops waiting.
    deadline_ms: AtomicI64,
    /// The row's generation after the commit.
    generation: AtomicI64,
    job_len: u32,
    update_len: AtomicU32,
}

const HEADER: usize = std::mem::size_of::<Header>();

/// What a worker is asked to do. No `Debug`: updates carry sealed secrets.
#[derive(Serialize, Deserialize)]
struct Job {
    database: u32,
    owner: u32,
    id: uuid::Uuid,
    user_id: String,
    condition: Condition,
    /// Applied at once (`write`), or...
    update: Option<RowUpdate>,
    /// ...when a held worker is given up on (`reserve`).
    abandon: Option<RowUpdate>,
    /// Nobody waits for this worker (`remember`): it does not report back,
    /// and it unpins the segment the caller left pinned for it.
    detached: bool,
}

/// A hot standby: nothing can be written, by this backend or a worker.
pub fn on_standby() -> bool {
    // SAFETY: a plain read of shared recovery state.
    unsafe { pg_sys::RecoveryInProgress() }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

enum WaitEnd {
    Reached(u32),
    /// The worker ended in this phase without reaching one waited for.
    Stopped(u32),
    Cancelled,
    TimedOut,
}

/// A worker started for one row, and the segment shared with it.
struct Worker {
    segment: *mut pg_sys::dsm_segment,
    header: *const Header,
    base: *mut u8,
    handle: DynamicBackgroundWorker,
}

impl Worker {
    /// Starts a worker for `job`, waiting up to [`SLOT_WAIT`] for a free
    /// worker slot (they are busy for milliseconds, or for one token
    /// request); None when none came free, or a cancel is pending.
    fn start(job: &Job) -> Option<Worker> {
        Self::launch(job, false, SLOT_WAIT)
    }

    /// Starts a worker for `job` and lets it go: the segment is pinned so
    /// that it outlives this backend's attachment, until the worker unpins
    /// it. False, at once, when no worker slot is free: what it writes is
    /// not worth a wait.
    fn start_detached(job: &Job) -> bool {
        Self::launch(job, true, Duration::ZERO).is_some()
    }

    fn launch(job: &Job, detached: bool, slot_wait: Duration) -> Option<Worker> {
        let payload = serde_json::to_vec(job).ok()?;
        // SAFETY: a fresh segment of the size we write. It is detached when
        // the Worker is dropped (and by the resource owner at the end of the
        // transaction in any case); the worker keeps its own attachment.
        unsafe {
            let size = HEADER + payload.len() + UPDATE_ROOM;
            let segment = pg_sys::dsm_create(size, 0);
            if segment.is_null() {
                return None;
            }
            let base = pg_sys::dsm_segment_address(segment) as *mut u8;
            std::ptr::write(
                base as *mut Header,
                Header {
                    phase: AtomicU32::new(phase::STARTING),
                    command: AtomicU32::new(command::NONE),
                    caller_pid: pg_sys::MyProcPid,
                    caller_latch: std::ptr::addr_of_mut!((*pg_sys::MyProc).procLatch) as u64,
                    worker_latch: AtomicU64::new(0),
                    deadline_ms: AtomicI64::new(now_ms() + START_TIMEOUT.as_millis() as i64),
                    generation: AtomicI64::new(0),
                    job_len: payload.len() as u32,
                    update_len: AtomicU32::new(0),
                },
            );
            std::ptr::copy_nonoverlapping(payload.as_ptr(), base.add(HEADER), payload.len());
            if detached {
                pg_sys::dsm_pin_segment(segment);
            }
            let segment_handle = pg_sys::dsm_segment_handle(segment);
            let asked = Instant::now();
            let loaded = loop {
                let loaded = BackgroundWorkerBuilder::new("mcp_oauth durable write")
                    .set_type("mcp_oauth")
                    .set_library("mcp_oauth")
                    .set_function("mcp_oauth_durable_write_main")
                    .set_argument(Some(pg_sys::Datum::from(segment_handle)))
                    .enable_spi_access()
                    .set_restart_time(None)
                    .set_notify_pid(pg_sys::MyProcPid)
                    .load_dynamic();
                if loaded.is_ok() || asked.elapsed() >= slot_wait || crate::runtime::cancel_requested() {
                    break loaded;
                }
                // No slot: nothing signals when one frees, so look again soon.
                pg_sys::WaitLatch(
                    pg_sys::MyLatch,
                    (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                    SLOT_POLL_MS,
                    pg_sys::PG_WAIT_EXTENSION,
                );
                pg_sys::ResetLatch(pg_sys::MyLatch);
            };
            match loaded {
                Ok(handle) => {
                    // The worker's start deadline counts from now, not from
                    // before the wait for its slot.
                    (*(base as *const Header)).deadline_ms.store(now_ms() + START_TIMEOUT.as_millis() as i64, Ordering::Release);
                    Some(Worker { segment, header: base as *const Header, base, handle })
                }
                Err(_) => {
                    if detached {
                        pg_sys::dsm_unpin_segment(segment_handle);
                    }
                    pg_sys::dsm_detach(segment);
                    None
                }
            }
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: the segment stays mapped while self lives.
        unsafe { &*self.header }
    }

    fn stopped(&self) -> bool {
        matches!(self.handle.pid(), Err(BackgroundWorkerStatus::Stopped | BackgroundWorkerStatus::PostmasterDied))
    }

    fn wake_worker(&self) {
        let latch = self.header().worker_latch.load(Ordering::Acquire);
        if latch != 0 {
            // SAFETY: the worker's PGPROC latch, in shared memory.
            unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
        }
    }

    /// Waits until the worker reaches one of the phases `until`, stops,
    /// or `timeout` passes; with `cancellable`, also until a cancel is
    /// pending.
    fn wait(&self, until: &[u32], timeout: Duration, cancellable: bool) -> WaitEnd {
        let started = Instant::now();
        loop {
            let phase = self.header().phase.load(Ordering::Acquire);
            if until.contains(&phase) {
                return WaitEnd::Reached(phase);
            }
            if self.stopped() {
                // It may have reached the phase just before it ended.
                let phase = self.header().phase.load(Ordering::Acquire);
                return if until.contains(&phase) { WaitEnd::Reached(phase) } else { WaitEnd::Stopped(phase) };
            }
            if cancellable && crate::runtime::cancel_requested() {
                return WaitEnd::Cancelled;
            }
            if started.elapsed() > timeout {
                return WaitEnd::TimedOut;
            }
            // SAFETY: waits on this backend's own latch (set by the worker,
            // and by the postmaster when the worker starts or stops).
            unsafe {
                pg_sys::WaitLatch(
                    pg_sys::MyLatch,
                    (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                    10,
                    pg_sys::PG_WAIT_EXTENSION,
                );
                pg_sys::ResetLatch(pg_sys::MyLatch);
            }
        }
    }

    fn send(&self, command: u32, update: Option<&RowUpdate>) -> Result<(), Error> {
        if let Some(update) = update {
            let bytes = serde_json::to_vec(update).expect("updates serialise");
            if bytes.len() > UPDATE_ROOM {
                return Err(Error::Internal("the update is too large for the durable writer".into()));
            }
            let header = self.header();
            // SAFETY: the update area follows the job and has UPDATE_ROOM bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(HEADER + header.job_len as usize), bytes.len());
            }
            header.update_len.store(bytes.len() as u32, Ordering::Release);
        }
        self.header().command.store(command, Ordering::Release);
        self.wake_worker();
        Ok(())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: attached in start(); the worker holds its own attachment.
        unsafe { pg_sys::dsm_detach(self.segment) };
    }
}

fn job(row: &store::ServerRow, condition: Condition, update: Option<RowUpdate>, abandon: Option<RowUpdate>) -> Result<Job, Error> {
    let catalog = crate::spi::catalog()?;
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
    let job = Job { detached: true, ..job(row, condition, Some(update), None)? };
    Worker::start_detached(&job);
    Ok(())
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
    let worker = Worker::start(&job(row, condition, None, abandon)?).ok_or_else(|| {
        if crate::runtime::cancel_requested() {
            Error::Cancelled
        } else {
            Error::NoWorkerSlot
        }
    })?;
    let end = worker.wait(&[phase::HELD, phase::REFUSED], START_TIMEOUT, true);
    if !matches!(end, WaitEnd::Reached(_)) {
        let _ = worker.send(command::RELEASE, None);
    }
    match end {
        WaitEnd::Reached(phase::HELD) => Ok(Reserved::Held(Reservation { worker, done: false })),
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

    /// Applies `update` and commits; the row's new generation.
    pub fn apply(mut self, update: &RowUpdate) -> Result<i64, Error> {
        self.done = true;
        self.worker.send(command::APPLY, Some(update))?;
        match self.worker.wait(&[phase::COMMITTED], COMMIT_TIMEOUT, false) {
            WaitEnd::Reached(_) => Ok(self.worker.header().generation.load(Ordering::Acquire)),
            _ => Err(Error::DurableWriteFailed),
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

/// The worker: attach the segment, connect as the extension owner, lock the
/// row within `lock_timeout`, check the condition, then apply the update
/// (now, or when the caller sends it) and commit. An ERROR here (a lock not
/// granted in time, say) ends the worker; the caller reads from the phase
/// it reached what went wrong.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn mcp_oauth_durable_write_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let handle = arg.value() as pg_sys::dsm_handle;
    // SAFETY: the segment was made by the backend that started us; our own
    // attachment keeps it alive until we exit.
    let (header, base, job) = unsafe {
        let segment = pg_sys::dsm_attach(handle);
        if segment.is_null() {
            return;
        }
        let base = pg_sys::dsm_segment_address(segment) as *mut u8;
        let header = &*(base as *const Header);
        let bytes = std::slice::from_raw_parts(base.add(HEADER), header.job_len as usize);
        let Ok(job) = serde_json::from_slice::<Job>(bytes) else { return };
        if job.detached {
            // Ours now: the segment goes when we detach (at exit).
            pg_sys::dsm_unpin_segment(handle);
        }
        header.worker_latch.store(std::ptr::addr_of_mut!((*pg_sys::MyProc).procLatch) as u64, Ordering::Release);
        (header, base, job)
    };
    let tell_caller = |phase: u32| {
        header.phase.store(phase, Ordering::Release);
        if !job.detached {
            // SAFETY: the caller's PGPROC latch, in shared memory.
            unsafe { pg_sys::SetLatch(header.caller_latch as *mut pg_sys::Latch) };
        }
    };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(job.database)), Some(pg_sys::Oid::from(job.owner)));
    // Whatever the database's defaults: read committed (the row is read
    // after its lock is granted), bounded lock waits, no statement timeout.
    for (name, value) in [
        (c"default_transaction_isolation", c"read committed".to_owned()),
        (c"lock_timeout", std::ffi::CString::new(LOCK_TIMEOUT_MS.to_string()).expect("digits")),
        (c"statement_timeout", c"0".to_owned()),
    ] {
        // SAFETY: valid C strings; a superuser-level override for this session.
        unsafe { pg_sys::SetConfigOption(name.as_ptr(), value.as_ptr(), pg_sys::GucContext::PGC_SUSET, pg_sys::GucSource::PGC_S_OVERRIDE) };
    }
    let outcome = BackgroundWorker::transaction(|| {
        header.phase.store(phase::LOCKING, Ordering::Release);
        let locked = store::lock(job.id, &job.user_id).ok().flatten();
        let holds = locked.as_ref().is_some_and(|locked| job.condition.holds(locked));
        if !holds {
            return phase::REFUSED;
        }
        let update = match &job.update {
            Some(update) => Some(update.clone()),
            None => {
                tell_caller(phase::HELD);
                wait_for_command(header, base, &job)
            }
        };
        match update {
            Some(update) => {
                header.phase.store(phase::APPLYING, Ordering::Release);
                match store::apply(job.id, &job.user_id, Condition::Always, &update) {
                    Ok(Some(generation)) => {
                        header.generation.store(generation, Ordering::Release);
                        phase::COMMITTED
                    }
                    _ => phase::REFUSED,
                }
            }
            None => phase::RELEASED,
        }
    });
    tell_caller(outcome);
}

/// A held worker waits for the caller's command: the update to apply, or
/// none (released: nothing is written). When the caller is gone, the deadline has passed or the
/// worker is told to stop, the job's abandon update is applied instead.
fn wait_for_command(header: &Header, base: *mut u8, job: &Job) -> Option<RowUpdate> {
    loop {
        match header.command.load(Ordering::Acquire) {
            command::APPLY => {
                let len = header.update_len.load(Ordering::Acquire) as usize;
                // SAFETY: the caller wrote `len` bytes there before APPLY.
                let bytes = unsafe { std::slice::from_raw_parts(base.add(HEADER + header.job_len as usize), len) };
                return serde_json::from_slice(bytes).ok();
            }
            command::RELEASE => return None,
            _ => {}
        }
        // SAFETY: a plain lookup in the process array.
        let caller_gone = unsafe { pg_sys::BackendPidGetProc(header.caller_pid) }.is_null();
        if caller_gone
            || now_ms() > header.deadline_ms.load(Ordering::Acquire)
            || !BackgroundWorker::wait_latch(Some(Duration::from_millis(100)))
        {
            return job.abandon.clone();
        }
    }
}
