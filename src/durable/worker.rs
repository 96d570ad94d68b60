//! One job of the durable writer, from both sides: the segment shared by
//! the caller and the worker (a [`Header`] of atomics, then the job as JSON,
//! then room for the update the caller sends), the caller's handle on the
//! worker running it ([`Worker`]), and the worker's side ([`run_job`]),
//! run by a worker registered at start (`stations`) or by a dynamic one
//! started for the job alone.

use super::stations::{self, Claim};
use super::{LOCK_TIMEOUT_MS, SLOT_POLL_MS, SLOT_WAIT, START_TIMEOUT, UPDATE_ROOM};
use crate::error::Error;
use crate::reseal;
use crate::store::{self, Condition, RowUpdate};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, DynamicBackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The worker's progress, set by the worker.
pub(super) mod phase {
    pub const STARTING: u32 = 0;
    pub const LOCKING: u32 = 1;
    /// The row is locked and the condition holds; waiting for a command.
    pub const HELD: u32 = 2;
    pub const APPLYING: u32 = 3;
    pub const COMMITTED: u32 = 4;
    /// The row is gone or the condition does not hold; nothing written.
    pub const REFUSED: u32 = 5;
    /// Released: nothing written.
    pub const RELEASED: u32 = 6;
    /// The caller was gone or out of time: the abandon update committed,
    /// not the caller's.
    pub const ABANDONED: u32 = 7;
}

/// What the caller tells a held worker.
pub(super) mod command {
    pub const NONE: u32 = 0;
    pub const APPLY: u32 = 1;
    pub const RELEASE: u32 = 2;
}

#[repr(C)]
pub(super) struct Header {
    pub(super) phase: AtomicU32,
    command: AtomicU32,
    caller_pid: i32,
    caller_latch: u64,
    worker_latch: AtomicU64,
    /// Unix milliseconds after which a held worker stops waiting.
    pub(super) deadline_ms: AtomicI64,
    /// The row's generation after the commit.
    pub(super) generation: AtomicI64,
    job_len: u32,
    update_len: AtomicU32,
}

pub(super) const HEADER: usize = std::mem::size_of::<Header>();

/// What a worker is asked to do. No `Debug`: updates carry sealed secrets.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Job {
    pub(super) database: u32,
    pub(super) owner: u32,
    pub(super) id: uuid::Uuid,
    pub(super) user_id: String,
    pub(super) condition: Condition,
    /// Applied at once (`write`), or...
    pub(super) update: Option<RowUpdate>,
    /// ...when a held worker is given up on (`reserve`).
    pub(super) abandon: Option<RowUpdate>,
    /// Nobody waits for this worker (`remember`): it does not report back,
    /// and it unpins the segment the caller left pinned for it.
    pub(super) detached: bool,
    /// Instead of a row's write: a batch of a key rotation; the batch's
    /// outcome is written back where the caller's update would go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reseal: Option<ResealJob>,
}

/// A batch of a key rotation, to run in a transaction of its own.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct ResealJob {
    pub(super) cursor: reseal::Cursor,
    pub(super) limit: u32,
    pub(super) key_id: String,
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(super) enum WaitEnd {
    Reached(u32),
    /// The worker ended in this phase without reaching one waited for.
    Stopped(u32),
    Cancelled,
    TimedOut,
}

/// A worker started for one row, and the segment shared with it.
pub(super) struct Worker {
    segment: *mut pg_sys::dsm_segment,
    header: *const Header,
    base: *mut u8,
    process: Process,
}

/// The process that runs the job.
enum Process {
    /// A worker registered at start (see `stations`), by its station.
    Station(Claim),
    /// A dynamic background worker started for the job alone.
    Dynamic(DynamicBackgroundWorker),
}

impl Worker {
    /// Gives `job` to a worker registered at start, or else starts a
    /// dynamic one, waiting up to [`SLOT_WAIT`] for either to come free
    /// (they are busy for milliseconds, or for one token request); None when
    /// none did, or a cancel is pending.
    pub(super) fn start(job: &Job) -> Option<Worker> {
        Self::launch(job, false, SLOT_WAIT)
    }

    /// Gives `job` to a worker and lets it go: the segment is pinned so
    /// that it outlives this backend's attachment, until the worker unpins
    /// it. False, at once, when no worker is free: what it writes is not
    /// worth a wait.
    pub(super) fn start_detached(job: &Job) -> bool {
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
                let loaded = stations::claim(job.database, job.owner, segment_handle).map(Process::Station).or_else(|| {
                    BackgroundWorkerBuilder::new("mcp_oauth durable write")
                        .set_type("mcp_oauth")
                        .set_library("mcp_oauth")
                        .set_function("mcp_oauth_durable_write_main")
                        .set_argument(Some(pg_sys::Datum::from(segment_handle)))
                        .enable_spi_access()
                        .set_restart_time(None)
                        .set_notify_pid(pg_sys::MyProcPid)
                        .load_dynamic()
                        .ok()
                        .map(Process::Dynamic)
                });
                if loaded.is_some() || asked.elapsed() >= slot_wait || crate::runtime::cancel_requested() {
                    break loaded;
                }
                // No slot: nothing signals when one frees, so look again soon.
                crate::runtime::nap(SLOT_POLL_MS);
            };
            match loaded {
                Some(process) => {
                    if let Process::Station(claim) = &process {
                        claim.wake();
                    }
                    // The worker's start deadline counts from now, not from
                    // before the wait for its slot.
                    (*(base as *const Header)).deadline_ms.store(now_ms() + START_TIMEOUT.as_millis() as i64, Ordering::Release);
                    Some(Worker { segment, header: base as *const Header, base, process })
                }
                None => {
                    if detached {
                        pg_sys::dsm_unpin_segment(segment_handle);
                    }
                    pg_sys::dsm_detach(segment);
                    None
                }
            }
        }
    }

    /// What the worker wrote back (a batch's outcome), once it is done.
    pub(super) fn answer(&self) -> Option<serde_json::Value> {
        let len = self.header().update_len.load(Ordering::Acquire) as usize;
        // SAFETY: the worker wrote `len` bytes there before it said it was done.
        let bytes = unsafe { std::slice::from_raw_parts(self.base.add(HEADER + self.header().job_len as usize), len) };
        serde_json::from_slice(bytes).ok()
    }

    pub(super) fn header(&self) -> &Header {
        // SAFETY: the segment stays mapped while self lives.
        unsafe { &*self.header }
    }

    /// The process is gone, or (a station) done with this job.
    fn stopped(&self) -> bool {
        match &self.process {
            Process::Station(claim) => claim.released(),
            Process::Dynamic(handle) => {
                matches!(handle.pid(), Err(BackgroundWorkerStatus::Stopped | BackgroundWorkerStatus::PostmasterDied))
            }
        }
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
    pub(super) fn wait(&self, until: &[u32], timeout: Duration, cancellable: bool) -> WaitEnd {
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
            // The latch is set by the worker, and by the postmaster when
            // the worker starts or stops.
            crate::runtime::nap(10);
        }
    }

    pub(super) fn send(&self, command: u32, update: Option<&RowUpdate>) -> Result<(), Error> {
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

/// A dynamic worker: one job, then exit.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn mcp_oauth_durable_write_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    run_job(arg.value() as pg_sys::dsm_handle);
}

thread_local! {
    /// The database and role this worker process is connected as.
    static CONNECTED: std::cell::Cell<Option<(u32, u32)>> = const { std::cell::Cell::new(None) };
}

/// Connects this worker process to the job's database as the extension's
/// owner, once (a process connects once for its life), with the settings
/// every job runs under: read committed (the row is read after its lock is
/// granted), bounded lock waits, no statement timeout. False when it is
/// connected elsewhere already.
fn connect(database: u32, owner: u32) -> bool {
    if let Some(connected) = CONNECTED.with(std::cell::Cell::get) {
        return connected == (database, owner);
    }
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(database)), Some(pg_sys::Oid::from(owner)));
    for (name, value) in [
        (c"default_transaction_isolation", c"read committed".to_owned()),
        (c"lock_timeout", std::ffi::CString::new(LOCK_TIMEOUT_MS.to_string()).expect("digits")),
        (c"statement_timeout", c"0".to_owned()),
    ] {
        // SAFETY: valid C strings; a superuser-level override for this session.
        unsafe { pg_sys::SetConfigOption(name.as_ptr(), value.as_ptr(), pg_sys::GucContext::PGC_SUSET, pg_sys::GucSource::PGC_S_OVERRIDE) };
    }
    CONNECTED.with(|c| c.set(Some((database, owner))));
    true
}

/// The job in segment `handle`: attach it, connect as the extension owner,
/// lock the row within `lock_timeout`, check the condition, then apply the
/// update (now, or when the caller sends it) and commit. An ERROR here (a
/// lock not granted in time, say) ends the worker process; the caller reads
/// from the phase it reached what went wrong.
pub(super) fn run_job(handle: pg_sys::dsm_handle) {
    // SAFETY: the segment was made by the backend that gave us the job; our
    // own attachment keeps it alive until we detach it (or exit).
    let (segment, header, base, job) = unsafe {
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
        (segment, header, base, job)
    };
    let tell_caller = |phase: u32| {
        header.phase.store(phase, Ordering::Release);
        if !job.detached {
            // SAFETY: the caller's PGPROC latch, in shared memory.
            unsafe { pg_sys::SetLatch(header.caller_latch as *mut pg_sys::Latch) };
        }
    };
    if !connect(job.database, job.owner) {
        // Not ours to run (a station serves one database): the caller sees
        // the job end unstarted.
        // SAFETY: attached above.
        unsafe { pg_sys::dsm_detach(segment) };
        return;
    }
    let outcome = BackgroundWorker::transaction(|| {
        if let Some(batch) = &job.reseal {
            header.phase.store(phase::APPLYING, Ordering::Release);
            let (answer, done) = match reseal::batch(batch.cursor, batch.limit, &batch.key_id) {
                Ok(Some(outcome)) => (serde_json::json!({"batch": outcome}), phase::COMMITTED),
                Ok(None) => (serde_json::json!({"other_key": true}), phase::REFUSED),
                Err(e) => (serde_json::json!({"error": e.report().message_with_detail()}), phase::REFUSED),
            };
            let bytes = answer.to_string().into_bytes();
            if bytes.len() <= UPDATE_ROOM {
                // SAFETY: the update area follows the job and has UPDATE_ROOM bytes; the caller reads it only after the phase says done.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(HEADER + header.job_len as usize), bytes.len()) };
                header.update_len.store(bytes.len() as u32, Ordering::Release);
            }
            return done;
        }
        header.phase.store(phase::LOCKING, Ordering::Release);
        let locked = store::lock(job.id, &job.user_id).ok().flatten();
        let holds = locked.as_ref().is_some_and(|locked| job.condition.holds(locked));
        if !holds {
            return phase::REFUSED;
        }
        let (update, done) = match &job.update {
            Some(update) => (Some(update.clone()), phase::COMMITTED),
            None => {
                tell_caller(phase::HELD);
                match wait_for_command(header, base, &job) {
                    Command::Apply(update) => (Some(update), phase::COMMITTED),
                    Command::Abandon(update) => (Some(update), phase::ABANDONED),
                    Command::Release => (None, phase::RELEASED),
                }
            }
        };
        match update {
            Some(update) => {
                header.phase.store(phase::APPLYING, Ordering::Release);
                match store::apply(job.id, &job.user_id, Condition::Always, &update) {
                    Ok(Some(generation)) => {
                        header.generation.store(generation, Ordering::Release);
                        done
                    }
                    _ => phase::REFUSED,
                }
            }
            None => phase::RELEASED,
        }
    });
    tell_caller(outcome);
    // SAFETY: attached above; the caller keeps its own attachment.
    unsafe { pg_sys::dsm_detach(segment) };
}

/// What a held worker is told to do.
enum Command {
    /// The caller's update.
    Apply(RowUpdate),
    /// The job's abandon update: the caller is gone or out of time.
    Abandon(RowUpdate),
    /// Nothing: the caller said so, or this worker is being stopped (its
    /// caller, alive, then stores its update by other means).
    Release,
}

/// A held worker waits for the caller's command. When the caller is gone or
/// its deadline has passed, the job's abandon update is applied instead;
/// when this worker is told to stop, nothing is.
fn wait_for_command(header: &Header, base: *mut u8, job: &Job) -> Command {
    loop {
        match header.command.load(Ordering::Acquire) {
            command::APPLY => {
                let len = header.update_len.load(Ordering::Acquire) as usize;
                // SAFETY: the caller wrote `len` bytes there before APPLY.
                let bytes = unsafe { std::slice::from_raw_parts(base.add(HEADER + header.job_len as usize), len) };
                return serde_json::from_slice(bytes).map(Command::Apply).unwrap_or(Command::Release);
            }
            command::RELEASE => return Command::Release,
            _ => {}
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(100))) {
            return Command::Release;
        }
        // SAFETY: a plain lookup in the process array.
        let caller_gone = unsafe { pg_sys::BackendPidGetProc(header.caller_pid) }.is_null();
        if caller_gone || now_ms() > header.deadline_ms.load(Ordering::Acquire) {
            return job.abandon.clone().map_or(Command::Release, Command::Abandon);
        }
    }
}
