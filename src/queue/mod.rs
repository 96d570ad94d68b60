//! The durable call queue: `mcp_call_tool_async` inserts a row into
//! `mcp_tool_calls` in the caller's transaction; after it commits, the
//! queue workers (`mcp_oauth.call_workers`, registered at start) claim
//! queued calls with `FOR UPDATE SKIP LOCKED` and run many at once, each
//! through the same steps as `mcp_call_tool` (`calls::Attempt`).
//!
//! **Waking.** A transaction that enqueued (or cancelled) sets every queue
//! worker's latch when it commits (a transaction callback), so a worker
//! sleeps while there is nothing to do and wakes on the commit, not on a
//! timer. A worker with calls in flight also looks again every
//! [`worker::LOOK_AGAIN`], and an idle one every [`worker::IDLE_LOOK`] (for
//! calls due after a backoff).
//!
//! **At most once.** A call is marked running (committed) before its request
//! is sent, so a crash leaves it running, never queued: the worker that
//! starts again decides from the call's row whether it may be made again
//! (`mcp_oauth_core::queue`).

mod store;
mod worker;

pub use store::Cancelled;
pub use worker::mcp_oauth_queue_main;

use crate::error::Error;
use crate::gucs;
use pgrx::bgworkers::{BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::{pg_guard, pg_shmem_init, pg_sys, PGRXSharedMemory, PgLwLock};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

const MAX_WORKERS: usize = gucs::MAX_CALL_WORKERS;

#[derive(Default)]
#[repr(C)]
pub struct Workers {
    /// Each worker's latch (in its PGPROC), 0 while it does not run.
    latches: [AtomicU64; MAX_WORKERS],
    pids: [AtomicI32; MAX_WORKERS],
    /// Bumped by each commit that enqueued or cancelled: a worker that sees
    /// it change looks at the queue.
    commits: AtomicU64,
    /// Bumped by each commit that cancelled: a worker that sees it change
    /// looks for its running calls' cancels.
    cancels: AtomicU64,
}

// SAFETY: plain atomics, no pointers: the same in every process.
unsafe impl PGRXSharedMemory for Workers {}

// SAFETY: the name is ours alone; only ever taken shared (atomics).
static WORKERS: PgLwLock<Workers> = unsafe { PgLwLock::new(c"mcp_oauth_queue_workers") };

/// How many queue workers were registered at start (in every process).
static REGISTERED: AtomicI32 = AtomicI32::new(0);
static SHMEM: AtomicBool = AtomicBool::new(false);

/// Asks for the workers' shared memory and registers `count` of them; only
/// while preloading.
pub fn init(count: usize) {
    pg_shmem_init!(WORKERS);
    SHMEM.store(true, Ordering::Relaxed);
    let count = count.min(MAX_WORKERS);
    REGISTERED.store(count as i32, Ordering::Relaxed);
    for index in 0..count {
        BackgroundWorkerBuilder::new(&format!("mcp_oauth queue worker {index}"))
            .set_type("mcp_oauth queue worker")
            .set_library("mcp_oauth")
            .set_function("mcp_oauth_queue_main")
            .set_argument(Some(pg_sys::Datum::from(index)))
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(Duration::from_secs(1)))
            .load();
    }
}

pub(crate) fn registered() -> i32 {
    REGISTERED.load(Ordering::Relaxed)
}

fn with_workers<R>(f: impl FnOnce(&Workers) -> R) -> Option<R> {
    SHMEM.load(Ordering::Relaxed).then(|| f(&WORKERS.share()))
}

/// The queue can run calls enqueued in this database.
pub fn ready() -> Result<(), Error> {
    let hint = "Add mcp_oauth to shared_preload_libraries and set mcp_oauth.call_workers to 1 or more, then restart the server.";
    if registered() == 0 {
        return Err(Error::QueueUnavailable { why: "no queue worker runs".into(), hint });
    }
    let wanted = gucs::string(&gucs::QUEUE_DATABASE).unwrap_or_default();
    // SAFETY: MyDatabaseId is set in every connected backend; the name is palloc'd.
    let here = unsafe {
        let name = pg_sys::get_database_name(pg_sys::MyDatabaseId);
        if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    };
    if here != wanted {
        return Err(Error::QueueUnavailable {
            why: format!("the queue workers serve the database {wanted:?}, not {here:?}"),
            hint: "Set mcp_oauth.queue_database to this database and restart the server.",
        });
    }
    Ok(())
}

thread_local! {
    /// This transaction enqueued or cancelled (and whether it cancelled):
    /// wake the workers at commit.
    static WAKE_AT_COMMIT: Cell<Option<bool>> = const { Cell::new(None) };
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// Calls this transaction enqueued (mcp_call_result cannot wait for them).
    static ENQUEUED: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn at_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT => {
            ENQUEUED.with(|e| e.borrow_mut().clear());
            if let Some(cancelled) = WAKE_AT_COMMIT.with(|w| w.replace(None)) {
                wake_workers(cancelled);
            }
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            ENQUEUED.with(|e| e.borrow_mut().clear());
            WAKE_AT_COMMIT.with(|w| w.set(None));
        }
        _ => {}
    }
}

/// Wakes every queue worker when this transaction commits (and for
/// nothing if it rolls back); `cancelled`: it cancelled a call.
pub fn wake_at_commit(cancelled: bool) {
    if !CALLBACK.with(Cell::get) {
        // SAFETY: registers a callback of the right signature, once per process.
        unsafe { pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut()) };
        CALLBACK.with(|c| c.set(true));
    }
    WAKE_AT_COMMIT.with(|w| w.set(Some(w.get().unwrap_or(false) || cancelled)));
}

pub(crate) fn enqueued_here(id: i64) {
    ENQUEUED.with(|e| e.borrow_mut().push(id));
}

pub(crate) fn enqueued_by_this_transaction(id: i64) -> bool {
    ENQUEUED.with(|e| e.borrow().contains(&id))
}

fn wake_workers(cancelled: bool) {
    with_workers(|w| {
        w.commits.fetch_add(1, Ordering::AcqRel);
        if cancelled {
            w.cancels.fetch_add(1, Ordering::AcqRel);
        }
        for latch in &w.latches {
            let latch = latch.load(Ordering::Acquire);
            if latch != 0 {
                // SAFETY: a worker's PGPROC latch, in shared memory.
                unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
            }
        }
    });
}

/// The commits counter, for a worker to notice new work.
fn commits() -> u64 {
    with_workers(|w| w.commits.load(Ordering::Acquire)).unwrap_or(0)
}

/// The cancels counter, for a worker to notice cancels.
fn cancels() -> u64 {
    with_workers(|w| w.cancels.load(Ordering::Acquire)).unwrap_or(0)
}

/// Enqueues a call of `user_id` in the caller's transaction.
pub fn enqueue(
    user_id: &str,
    server_id: uuid::Uuid,
    name: &str,
    arguments: serde_json::Map<String, serde_json::Value>,
) -> Result<i64, Error> {
    ready()?;
    let id = store::enqueue(user_id, server_id, name, arguments)?.ok_or(Error::ServerNotFound(server_id))?;
    enqueued_here(id);
    wake_at_commit(false);
    Ok(id)
}

pub use store::{cancel, state, CallState};
