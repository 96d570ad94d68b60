//! Network waits inside a backend: one current-thread tokio runtime and one
//! HTTP client per backend, reused; PostgreSQL's interrupts are polled while
//! a future runs.
//!
//! Only the backend's own thread ever touches PostgreSQL. The one thread the
//! HTTP client starts (name resolution) is started with every signal
//! blocked from its first instruction, so PostgreSQL's signal handlers only
//! ever run on the backend's thread; the runtime itself starts no thread.

use crate::error::Error;
use crate::gucs;
use mcp_oauth_core::net::{HttpClient, NetConfig, NetPolicy};
use mcp_oauth_core::settings;
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

thread_local! {
    static RUNTIME: RefCell<Option<Rc<tokio::runtime::Runtime>>> = const { RefCell::new(None) };
    static CLIENT: RefCell<Option<(NetConfig, Rc<HttpClient>)>> = const { RefCell::new(None) };
    /// When the runtime last stopped running (its connections unpolled since).
    static LAST_RUN: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The interrupt-poll timer, kept from call to call: registering a new
    /// timer on every call would wake the runtime's driver each time.
    static TICK: RefCell<Option<tokio::time::Interval>> = const { RefCell::new(None) };
}

/// After this long unpolled, pooled connections are checked before use.
const IDLE_CHECK_AFTER: Duration = Duration::from_millis(50);

/// How often interrupts are checked while waiting.
const POLL: Duration = Duration::from_millis(10);
/// After a cancel, how much longer a token request may take to finish, so
/// that a rotation the server already made is stored rather than lost.
pub const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Starts a thread with every signal blocked from its first instruction:
/// the mask is set on the backend's thread around the spawn, and a new
/// thread inherits it. A signal arriving meanwhile stays pending and is
/// delivered to the backend's thread when its mask is restored.
pub fn spawn_without_signals(work: Box<dyn FnOnce() + Send + 'static>) -> std::io::Result<()> {
    // SAFETY: plain libc calls on this thread's own signal mask, restored
    // before returning.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        let spawned = std::thread::Builder::new().name("mcp_oauth dns".into()).spawn(work);
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        spawned.map(drop)
    }
}

fn runtime() -> Rc<tokio::runtime::Runtime> {
    RUNTIME.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                // No blocking pool is ever used (names are resolved on our
                // own thread); should one start anyway, it would be made with
                // the backend's signal mask, so it is capped at one thread.
                Rc::new(
                    tokio::runtime::Builder::new_current_thread().enable_all().max_blocking_threads(1).build().expect("a tokio runtime"),
                )
            })
            .clone()
    })
}

/// The network settings in force now.
pub fn net_config() -> NetConfig {
    let allowed = gucs::string(&gucs::ALLOWED_HOSTS).unwrap_or_default();
    NetConfig {
        policy: NetPolicy {
            allow_http_loopback: gucs::ALLOW_HTTP_LOOPBACK.get(),
            allow_private_networks: gucs::ALLOW_PRIVATE_NETWORKS.get(),
            // The check hook accepted it, so it parses.
            allowed_hosts: settings::allowed_hosts(&allowed).unwrap_or_default(),
        },
        connect_timeout: Duration::from_millis(gucs::CONNECT_TIMEOUT.get().max(1) as u64),
        request_timeout: Duration::from_millis(gucs::REQUEST_TIMEOUT.get().max(1) as u64),
        max_response_bytes: gucs::MAX_RESPONSE_BYTES.get().max(0) as usize,
    }
}

/// The backend's HTTP client, rebuilt only when the settings change.
pub fn http_client() -> Result<Rc<HttpClient>, Error> {
    let config = net_config();
    CLIENT.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((cached, client)) = slot.as_ref() {
            if *cached == config {
                return Ok(client.clone());
            }
        }
        let client = Rc::new(HttpClient::with_spawner(config.clone(), spawn_without_signals)?);
        *slot = Some((config, client.clone()));
        Ok(client)
    })
}

/// Sleeps on this backend's latch for at most `ms` milliseconds (woken
/// early by a signal or a latch set), shown as an `Extension` wait.
pub fn nap(ms: std::ffi::c_long) {
    // SAFETY: waits on this backend's own latch, bounded, then resets it.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            ms,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
}

/// A query cancel or termination is pending (statement_timeout,
/// pg_cancel_backend, pg_terminate_backend).
pub fn cancel_requested() -> bool {
    // SAFETY: reads of PostgreSQL's volatile interrupt flags on its own thread.
    unsafe { pg_sys::InterruptPending != 0 && (pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0) }
}

/// Runs `future` on the backend's runtime. When the runtime has not run for
/// a while, it first lets the HTTP client's idle connections notice that a
/// server closed them meanwhile (the runtime only runs during a call, so
/// nothing read their end-of-stream): two turns of the scheduler, one to
/// poll for readiness and one to run the connections' tasks, so no request
/// goes out on a connection that is already dead. Back-to-back calls skip it.
fn drive<F: Future>(future: F, mut stop: impl FnMut() -> bool) -> Option<F::Output> {
    // Boxed: an MCP call's future is many kilobytes, and would otherwise be
    // copied each time it moves into the runtime's wrappers.
    let mut future = Box::pin(future);
    let idle = LAST_RUN.with(Cell::get).is_none_or(|at| at.elapsed() > IDLE_CHECK_AFTER);
    let _mark = MarkLastRun;
    let _waiting = ExtensionWait::start();
    runtime().block_on(async {
        if idle {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
        }
        let mut tick = TICK.with(|t| t.borrow_mut().take()).unwrap_or_else(|| {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick
        });
        let output = loop {
            tokio::select! {
                biased;
                output = &mut future => break Some(output),
                _ = tick.tick() => {
                    if stop() {
                        break None;
                    }
                }
            }
        };
        TICK.with(|t| *t.borrow_mut() = Some(tick));
        output
    })
}

/// While a request is in flight, pg_stat_activity shows the backend waiting
/// on the `Extension` wait event (as pgstat_report_wait_start does, which is
/// an inline function); cleared when the wait ends, also on unwinding.
struct ExtensionWait;

impl ExtensionWait {
    fn start() -> Self {
        // SAFETY: my_wait_event_info always points at a valid uint32 in a
        // backend (its PGPROC's, or a local dummy before that).
        unsafe { *pg_sys::my_wait_event_info = pg_sys::PG_WAIT_EXTENSION };
        ExtensionWait
    }
}

impl Drop for ExtensionWait {
    fn drop(&mut self) {
        // SAFETY: as in start.
        unsafe { *pg_sys::my_wait_event_info = 0 };
    }
}

/// Records when the runtime stopped, also when the caller unwinds.
struct MarkLastRun;

impl Drop for MarkLastRun {
    fn drop(&mut self) {
        LAST_RUN.with(|at| at.set(Some(Instant::now())));
    }
}

/// Runs `future` on the process's runtime until it completes (Some) or
/// `stop` says so (None; checked every few milliseconds). The future is
/// dropped either way: pass `&mut` to something that outlives the call (a
/// queue worker's requests in flight) to keep it.
pub fn run_until<F: Future>(future: F, stop: impl FnMut() -> bool) -> Option<F::Output> {
    drive(future, stop)
}

/// Runs `future` to completion on the backend's runtime. If the query is
/// cancelled (statement_timeout, pg_cancel_backend, termination) the future
/// is dropped at once and `Error::Cancelled` returned; the cancel itself is
/// raised when the error reaches PostgreSQL.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, Error> {
    drive(future, cancel_requested).ok_or(Error::Cancelled)
}

/// Like `block_on`, for a request whose effect at the server cannot be
/// undone (a token request: the server may already have rotated the refresh
/// token): after a cancel it may still finish within [`CANCEL_GRACE`], so
/// that its result can be stored. The caller stores it, then honours the
/// cancel (`cancel_requested()` stays true).
pub fn block_on_to_completion<F: Future>(future: F) -> Result<F::Output, Error> {
    let mut cancelled_at: Option<Instant> = None;
    drive(future, || {
        if cancel_requested() {
            return cancelled_at.get_or_insert_with(Instant::now).elapsed() > CANCEL_GRACE;
        }
        false
    })
    .ok_or(Error::Cancelled)
}
