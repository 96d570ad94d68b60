//! Where the counters of `mcp_oauth_stats` live: in shared memory for the
//! whole cluster when the library is preloaded (`shared_preload_libraries`),
//! else per backend (each backend counts what it did, and a pooler spreads a
//! user's calls over many). Each update holds an LWLock for well under a
//! microsecond; nothing is written to a table.

use crate::error::{Error, Report};
use crate::ids;
use mcp_oauth_core::stats::{CallOutcome, StatsTable};
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, JsonB, PGRXSharedMemory, PgLwLock};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Default)]
#[repr(transparent)]
pub struct SharedStats(StatsTable);

// SAFETY: the table is plain integers and byte arrays (no pointers), so it
// means the same in every process that maps it.
unsafe impl PGRXSharedMemory for SharedStats {}

// SAFETY: the name is ours alone.
static SHARED: PgLwLock<SharedStats> = unsafe { PgLwLock::new(c"mcp_oauth_stats") };

/// Set in the postmaster while preloading; every backend inherits it.
static IN_SHARED_MEMORY: AtomicBool = AtomicBool::new(false);

thread_local! {
    static LOCAL: RefCell<Option<Box<StatsTable>>> = const { RefCell::new(None) };
}

/// Asks for the shared table; only while preloading.
pub fn init_shared_memory() {
    pg_shmem_init!(SHARED);
    IN_SHARED_MEMORY.store(true, Ordering::Relaxed);
}

fn with_table<R>(f: impl FnOnce(&mut StatsTable) -> R) -> R {
    if IN_SHARED_MEMORY.load(Ordering::Relaxed) {
        f(&mut SHARED.exclusive().0)
    } else {
        LOCAL.with(|local| f(local.borrow_mut().get_or_insert_with(Box::default)))
    }
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// One MCP request of server `id` ended, after `elapsed`.
pub fn record_call(id: uuid::Uuid, elapsed: Duration, failure: Option<&Report>) {
    let outcome = match failure {
        Some(report) => CallOutcome::Failure { sqlstate: report.sqlstate },
        None => CallOutcome::Success,
    };
    let latency = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    with_table(|t| t.record_call(*id.as_bytes(), now_us(), latency, outcome));
}

pub fn record_refresh(id: uuid::Uuid) {
    with_table(|t| t.record_refresh(*id.as_bytes(), now_us()));
}

pub fn record_sign_in(id: uuid::Uuid) {
    with_table(|t| t.record_sign_in(*id.as_bytes(), now_us()));
}

type StatsRow = (pgrx::Uuid, i64, i64, JsonB, i64, i64, Option<f64>, Option<f64>, Option<f64>, Option<f64>, String);

fn rows() -> Result<Vec<StatsRow>, Error> {
    let kept_in = if IN_SHARED_MEMORY.load(Ordering::Relaxed) { "cluster" } else { "backend" };
    let seconds = |us: i64| (us != 0).then(|| us as f64 / 1e6);
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok(with_table(|t| {
        t.servers()
            .map(|s| {
                let errors: serde_json::Map<String, serde_json::Value> =
                    s.errors_by_sqlstate().into_iter().map(|(code, n)| (code, n.into())).collect();
                (
                    ids::to_sql(uuid::Uuid::from_bytes(s.id)),
                    count(s.calls),
                    count(s.errors),
                    JsonB(serde_json::Value::Object(errors)),
                    count(s.refreshes),
                    count(s.sign_ins),
                    seconds(s.last_success_us),
                    seconds(s.last_failure_us),
                    s.mean_latency_us().map(|us| us / 1000.0),
                    s.p95_latency_us().map(|us| us / 1000.0),
                    kept_in.to_owned(),
                )
            })
            .collect()
    }))
}

/// The counters behind the view mcp_oauth_stats.
#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn mcp_oauth_server_stats() -> TableIterator<
    'static,
    (
        name!(server_id, pgrx::Uuid),
        name!(calls, i64),
        name!(errors, i64),
        name!(errors_by_sqlstate, JsonB),
        name!(refreshes, i64),
        name!(sign_ins, i64),
        name!(last_success_epoch, Option<f64>),
        name!(last_failure_epoch, Option<f64>),
        name!(mean_latency_ms, Option<f64>),
        name!(p95_latency_ms, Option<f64>),
        name!(kept_in, String),
    ),
> {
    TableIterator::new(crate::error::or_raise(rows()))
}
