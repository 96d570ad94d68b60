//! A queue worker: claims due calls under the in-flight caps, runs them all
//! at once on its runtime, and records each outcome, in short transactions
//! of its own on the process's one thread (the requests run between them).

use super::store::{self, Claimed};
use super::{cancels, commits, MAX_WORKERS, WORKERS};
use crate::calls::{self, Attempt, Operation, Outcome, Request, Settled};
use crate::error::Error;
use crate::gucs;
use crate::runtime;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::{FuturesUnordered, StreamExt};
use mcp_oauth_core::mcp::tasks::{self, TaskState};
use mcp_oauth_core::mcp::{Call, InputRound, Listing, McpError};
use mcp_oauth_core::queue::{self, Caps, Decision, Reach, RetryPolicy};
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{pg_sys, PgTryBuilder};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// With calls in flight, how often the queue is looked at again anyway.
pub const LOOK_AGAIN: Duration = Duration::from_millis(200);
/// Idle, how often the queue is looked at (calls due after a backoff, a
/// commit whose wake-up came before this worker ran).
pub const IDLE_LOOK: Duration = Duration::from_secs(5);
/// How often finished calls past their retention are deleted, and how many
/// in one transaction.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
const RETENTION_BATCH: i32 = 500;
/// The longest learning a tool's annotations may take.
const ANNOTATIONS_TIMEOUT_MS: &std::ffi::CStr = c"5000";
/// Before the extension is installed in the queue's database.
const NOT_INSTALLED_LOOK: Duration = Duration::from_secs(10);

type Done = (i64, Result<(Request, Result<Outcome, McpError>), futures_util::future::Aborted>);

/// A call in flight.
struct Running {
    claimed: Claimed,
    attempt: Attempt,
    abort: AbortHandle,
    started: Instant,
    /// Its request is a poll of the server's task (`claimed.task_id`).
    polling: bool,
    /// Polls that failed in a row.
    poll_failures: u32,
}

/// Polls of a task that may fail in a row before the call fails.
const MAX_POLL_FAILURES: u32 = 5;
/// Requests whose answer nobody waits for (a task's cancellation).
const UNWATCHED: i64 = -1;

struct Worker {
    index: i32,
    policy: RetryPolicy,
    in_flight: FuturesUnordered<Pin<Box<dyn Future<Output = Done>>>>,
    running: HashMap<i64, Running>,
    per_server: HashMap<uuid::Uuid, usize>,
    /// Servers that asked for a pause (429/503 with Retry-After), until when.
    paused: HashMap<uuid::Uuid, Instant>,
    seen_commits: u64,
    seen_cancels: u64,
    last_look: Instant,
    /// The last look left due calls in the queue (for want of room): look
    /// again as soon as a call ends.
    more_queued: bool,
    next_due: Option<Instant>,
    next_retention: Instant,
}

#[pg_guard]
unsafe extern "C-unwind" fn leave(_code: i32, arg: pg_sys::Datum) {
    let index: usize = arg.value();
    let workers = WORKERS.share();
    workers.latches[index].store(0, Ordering::Release);
    workers.pids[index].store(0, Ordering::Release);
}

/// A queue worker's life: connect to the queue's database, settle the calls
/// a previous life left running, then serve the queue until told to stop.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn mcp_oauth_queue_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM | SignalWakeFlags::SIGHUP);
    let index: usize = arg.value();
    if index >= MAX_WORKERS {
        return;
    }
    // SAFETY: MyProc is this process's PGPROC; the callback has the
    // signature PostgreSQL expects.
    unsafe {
        pg_sys::before_shmem_exit(Some(leave), pg_sys::Datum::from(index));
        let workers = WORKERS.share();
        workers.latches[index].store(std::ptr::addr_of_mut!((*pg_sys::MyProc).procLatch) as u64, Ordering::Release);
        workers.pids[index].store(pg_sys::MyProcPid, Ordering::Release);
    }
    let database = gucs::string(&gucs::QUEUE_DATABASE).unwrap_or_else(|| "postgres".into());
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    for (name, value) in [(c"default_transaction_isolation", c"read committed"), (c"statement_timeout", c"0"), (c"lock_timeout", c"10s")] {
        // SAFETY: valid C strings; a session-level override for this worker.
        unsafe { pg_sys::SetConfigOption(name.as_ptr(), value.as_ptr(), pg_sys::GucContext::PGC_SUSET, pg_sys::GucSource::PGC_S_OVERRIDE) };
    }
    let mut worker = Worker {
        index: index as i32,
        policy: RetryPolicy::default(),
        in_flight: FuturesUnordered::new(),
        running: HashMap::new(),
        per_server: HashMap::new(),
        paused: HashMap::new(),
        seen_commits: commits(),
        seen_cancels: cancels(),
        more_queued: false,
        last_look: Instant::now() - IDLE_LOOK,
        next_due: None,
        next_retention: Instant::now(),
    };
    while !installed() {
        if !BackgroundWorker::wait_latch(Some(NOT_INSTALLED_LOOK)) {
            // SAFETY: as below.
            unsafe { pg_sys::proc_exit(1) };
        }
    }
    worker.recover();
    worker.serve();
    // Told to stop: exit code 1 so that the postmaster starts this worker
    // again (one that exits with 0 is unregistered); at shutdown it starts
    // nothing. Calls still in flight stay running; the next life settles
    // them (`recover`).
    // SAFETY: the standard way out of a background worker.
    unsafe { pg_sys::proc_exit(1) };
}

thread_local! {
    static STOPPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// This worker was told to stop (SIGTERM); sticky, unlike pgrx's flag,
/// which reading clears.
fn stopping() -> bool {
    if BackgroundWorker::sigterm_received() {
        STOPPING.with(|s| s.set(true));
    }
    STOPPING.with(std::cell::Cell::get)
}

/// The extension is installed in this database.
fn installed() -> bool {
    in_transaction(|| crate::spi::catalog().map(drop)).is_ok()
}

/// Runs `f` in a transaction of its own and commits, also when `f`
/// returns an error (what it wrote stands); a PostgreSQL ERROR inside rolls
/// it back and is returned as an error, and the worker goes on.
fn in_transaction<R>(f: impl FnOnce() -> Result<R, Error>) -> Result<R, Error> {
    // SAFETY: the standard sequence of a background worker's transaction.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let outcome = PgTryBuilder::new(AssertUnwindSafe(|| Ok(f())))
        .catch_others(|e| Err(format!("{e:?}")))
        .catch_rust_panic(|e| Err(format!("{e:?}")))
        .execute();
    match outcome {
        Ok(result) => {
            // SAFETY: pairs with the push and start above.
            unsafe {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            result
        }
        Err(why) => {
            // SAFETY: after a caught ERROR the transaction is aborted; this
            // cleans it up (snapshots included) so the next one can start.
            unsafe { pg_sys::AbortCurrentTransaction() };
            let why: String = why.chars().take(300).collect();
            pgrx::warning!("mcp_oauth queue worker: a transaction failed and was rolled back: {why}");
            Err(Error::Internal("a statement of the queue worker failed".into()))
        }
    }
}

/// A little randomness for backoff jitter.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn call_operation(claimed: &Claimed) -> Operation {
    Operation::CallTool(Call::call_tool(&claimed.name, claimed.arguments.clone(), InputRound::default()))
}

/// How far a failed call went.
fn reach_of(error: &Error) -> Reach {
    match error {
        Error::Mcp(e) => queue::reach(e),
        // Nothing was sent: the refresh before it could not be made or stored.
        Error::NoWorkerSlot | Error::DurabilityUnavailable(_) | Error::RowBusy { .. } => Reach::NotReached { retry_after: None },
        // The worker was told to stop while the request was in flight.
        Error::Cancelled => Reach::Unknown,
        _ => Reach::Final,
    }
}

impl Worker {
    fn caps(&self) -> Caps {
        let workers = super::registered().max(1) as usize;
        Caps {
            total: (gucs::MAX_CALLS_IN_FLIGHT.get().max(1) as usize).div_ceil(workers),
            per_server: gucs::MAX_CALLS_PER_SERVER.get().max(1) as usize,
        }
    }

    /// Calls a previous life of this worker (or, for worker 0, a worker that
    /// no longer exists) left running: whether their requests went out is
    /// unknown, so they are made again only when the tool is repeatable.
    fn recover(&mut self) {
        let orphans = in_transaction(|| store::orphans(self.index, super::registered()));
        for orphan in orphans.unwrap_or_default() {
            if orphan.task_id.is_some() {
                // The server holds the work: follow it, do not call again.
                *self.per_server.entry(orphan.server_id).or_insert(0) += 1;
                self.poll(orphan, Instant::now(), Duration::ZERO, 0);
                continue;
            }
            let repeatable = orphan.repeatable.unwrap_or_else(|| repeatable(&orphan));
            let result = in_transaction(|| {
                match self.policy.after_interruption(repeatable, orphan.attempts) {
                Decision::Retry { after } => store::requeue(
                    orphan.id,
                    after.as_millis() as i64,
                    Some(repeatable),
                    crate::error::sqlstate::MCP_ERROR,
                    "interrupted: the queue worker stopped while the call was in flight; made again, the tool being idempotent",
                ),
                Decision::Fail => store::failed(
                    orphan.id,
                    "failed",
                    crate::error::sqlstate::MCP_ERROR,
                    "interrupted: the queue worker stopped while the call was in flight (a crash or a restart); whether the server carried it out is unknown, so it was not made again",
                    Some(repeatable),
                ),
            }
            });
            if result.is_err() {
                pgrx::warning!("mcp_oauth queue worker: call {} left running could not be settled", orphan.id);
            }
        }
    }

    fn serve(&mut self) {
        loop {
            if stopping() {
                return;
            }
            if BackgroundWorker::sighup_received() {
                // SAFETY: the standard reload, between transactions.
                unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
                // A new retention applies now.
                self.next_retention = Instant::now();
            }
            let now = Instant::now();
            let woken = commits() != self.seen_commits;
            self.seen_commits = commits();
            if cancels() != self.seen_cancels {
                self.seen_cancels = cancels();
                if !self.running.is_empty() {
                    self.cancel_requested();
                }
            }
            let due = self.next_due.is_some_and(|at| at <= now);
            let room = self.running.len() < self.caps().total;
            if woken
                || due
                || (self.more_queued && room)
                || now.duration_since(self.last_look) >= if self.running.is_empty() { IDLE_LOOK } else { LOOK_AGAIN }
            {
                self.look();
            }
            if now >= self.next_retention {
                self.expire();
            }
            // Idle only when nothing is in flight: a task's cancellation
            // (watched by nobody) still has to be sent.
            if self.in_flight.is_empty() {
                let wait = self.next_due.map_or(IDLE_LOOK, |at| at.saturating_duration_since(Instant::now())).min(IDLE_LOOK);
                if !BackgroundWorker::wait_latch(Some(wait.max(Duration::from_millis(1)))) {
                    return;
                }
                continue;
            }
            let started = Instant::now();
            let seen = self.seen_commits;
            let next = runtime::run_until(self.in_flight.next(), || stopping() || commits() != seen || started.elapsed() >= LOOK_AGAIN);
            if let Some(Some((id, done))) = next {
                self.settle(id, done);
            }
        }
    }

    /// Claims what may start now and starts it.
    fn look(&mut self) {
        self.last_look = Instant::now();
        // A retry due now is looked for now; one due later keeps its wake-up.
        if self.next_due.is_some_and(|at| at <= self.last_look) {
            self.next_due = None;
        }
        let caps = self.caps();
        let room = caps.total.saturating_sub(self.running.len());
        if room == 0 {
            return;
        }
        let now = Instant::now();
        self.paused.retain(|_, until| *until > now);
        let mut more_queued = false;
        let claimed = in_transaction(|| {
            let candidates = store::candidates(queue::claim_window(room) as i32)?;
            let servers: Vec<uuid::Uuid> = candidates.iter().map(|(_, server)| *server).collect();
            let admitted = queue::admit(&servers, &self.per_server, &|s| self.paused.contains_key(s), caps);
            more_queued = admitted.len() < candidates.len();
            store::claim(admitted.into_iter().map(|i| candidates[i].0).collect(), self.index)
        });
        self.more_queued = more_queued;
        for claimed in claimed.unwrap_or_default() {
            self.start(claimed);
        }
    }

    fn start(&mut self, claimed: Claimed) {
        *self.per_server.entry(claimed.server_id).or_insert(0) += 1;
        let started = Instant::now();
        let prepared = in_transaction(|| {
            let mut attempt = Attempt::new(claimed.server_id, &claimed.user_id)?.declaring_tasks();
            let request = attempt.prepare(call_operation(&claimed))?;
            Ok((attempt, request))
        });
        match prepared {
            Ok((attempt, request)) => {
                let abort = self.send(claimed.id, request, Duration::ZERO);
                self.running.insert(claimed.id, Running { claimed, attempt, abort, started, polling: false, poll_failures: 0 });
            }
            Err(e) => self.finish(claimed, started, Err(e)),
        }
    }

    /// Polls the server's task for `claimed` after `after` (`tasks/get`,
    /// with a new attempt each time: a task may run for hours).
    fn poll(&mut self, claimed: Claimed, started: Instant, after: Duration, poll_failures: u32) {
        let Some(task_id) = claimed.task_id.clone() else {
            return self.finish(claimed, started, Err(Error::TaskEnded("no task id".into())));
        };
        let prepared = in_transaction(|| {
            let mut attempt = Attempt::new(claimed.server_id, &claimed.user_id)?.declaring_tasks();
            let request = attempt.prepare(Operation::Request(Call::get_task(&task_id)))?;
            Ok((attempt, request))
        });
        match prepared {
            Ok((attempt, request)) => {
                let abort = self.send(claimed.id, request, after);
                self.running.insert(claimed.id, Running { claimed, attempt, abort, started, polling: true, poll_failures });
            }
            Err(e) => self.finish(claimed, started, Err(e)),
        }
    }

    /// Asks the server to cancel task `task_id` of `claimed`, and does not
    /// wait for its answer (cancellation is cooperative).
    fn cancel_task(&mut self, claimed: &Claimed, task_id: &str) {
        let prepared = in_transaction(|| {
            let mut attempt = Attempt::new(claimed.server_id, &claimed.user_id)?.declaring_tasks();
            attempt.prepare(Operation::Request(Call::cancel_task(task_id)))
        });
        if let Ok(request) = prepared {
            self.send(UNWATCHED, request, Duration::ZERO);
        }
    }

    fn send(&mut self, id: i64, request: Request, after: Duration) -> AbortHandle {
        let (abort, registration) = AbortHandle::new_pair();
        let request = Abortable::new(
            async move {
                if !after.is_zero() {
                    tokio::time::sleep(after).await;
                }
                request.send().await
            },
            registration,
        );
        self.in_flight.push(Box::pin(async move { (id, request.await) }));
        abort
    }

    fn settle(&mut self, id: i64, done: Result<(Request, Result<Outcome, McpError>), futures_util::future::Aborted>) {
        // An aborted request belongs to a call cancelled meanwhile.
        let (Ok((request, outcome)), Some(mut running)) = (done, self.running.remove(&id)) else { return };
        let next = in_transaction(|| {
            Ok(match running.attempt.settle(request, outcome) {
                Settled::Again(op) => running.attempt.prepare(op).map_err(Err),
                Settled::Done(result) => Err(result),
            })
        });
        match next {
            Ok(Ok(request)) => {
                running.abort = self.send(id, request, Duration::ZERO);
                self.running.insert(id, running);
            }
            Ok(Err(result)) => self.conclude(running, result),
            Err(e) => self.conclude(running, Err(e)),
        }
    }

    /// What a call's answer leads to: its end, or (the server runs it as a
    /// task) a poll of the task.
    fn conclude(&mut self, running: Running, result: Result<Outcome, Error>) {
        let Running { mut claimed, started, polling, poll_failures, attempt, .. } = running;
        let raw = match result {
            Ok(Outcome::Raw(raw)) => raw,
            Err(e) if polling && reach_of(&e) != Reach::Final && poll_failures + 1 < MAX_POLL_FAILURES => {
                let after = self.policy.backoff(poll_failures + 1, jitter());
                return self.poll(claimed, started, after, poll_failures + 1);
            }
            other => return self.finish(claimed, started, other),
        };
        // What the server said of its task may echo a credential.
        let ended = |why: String| Err(Error::TaskEnded(attempt.redact(&why)));
        match tasks::task_state(&raw, polling) {
            Ok(TaskState::NotATask) => self.finish(claimed, started, Ok(Outcome::Raw(raw))),
            Ok(TaskState::Working { task_id, poll }) => {
                if claimed.task_id.as_deref() != Some(task_id.as_str()) {
                    if in_transaction(|| store::task(claimed.id, &task_id)).is_err() {
                        return self.finish(claimed, started, ended("its task id could not be recorded".into()));
                    }
                    claimed.task_id = Some(task_id);
                }
                self.poll(claimed, started, poll, 0);
            }
            Ok(TaskState::Completed { result, .. }) => match RawValue::from_string(result) {
                Ok(result) => self.finish(claimed, started, Ok(Outcome::Raw(result))),
                Err(_) => self.finish(claimed, started, ended("the task's result is not JSON".into())),
            },
            Ok(TaskState::Failed { code, message, .. }) => {
                self.finish(claimed, started, ended(format!("it failed with JSON-RPC error {code}: {message}")))
            }
            Ok(TaskState::Cancelled { .. }) => self.finish(claimed, started, ended("the server cancelled it".into())),
            Ok(TaskState::InputRequired { task_id }) => {
                self.cancel_task(&claimed, &task_id);
                self.finish(claimed, started, ended("it asks for input, which a queued call cannot give; it was cancelled".into()))
            }
            Err(why) => self.finish(claimed, started, ended(why)),
        }
    }

    /// Records how a call ended (or puts it back in the queue).
    fn finish(&mut self, claimed: Claimed, started: Instant, result: Result<Outcome, Error>) {
        if let Some(count) = self.per_server.get_mut(&claimed.server_id) {
            *count = count.saturating_sub(1);
        }
        calls::record(claimed.server_id, started, &result);
        // Whether the tool is repeatable is learned (in a transaction of its
        // own) only when it decides something.
        let (reach, repeatable) = match &result {
            Ok(_) => (Reach::Final, claimed.repeatable),
            Err(e) => {
                let reach = reach_of(e);
                let repeatable = match (reach, claimed.repeatable) {
                    (_, Some(known)) => Some(known),
                    (Reach::Unknown, None) => Some(repeatable(&claimed)),
                    _ => None,
                };
                (reach, repeatable)
            }
        };
        let outcome = in_transaction(|| match &result {
            Ok(Outcome::Raw(raw)) => store::succeeded(claimed.id, raw.get()),
            Ok(Outcome::Items(items)) => store::succeeded(claimed.id, &serde_json::Value::Array(items.clone()).to_string()),
            Err(e) => {
                let report = e.report();
                let message = report.message_with_detail();
                match self.policy.decide(reach, repeatable.unwrap_or(false), claimed.attempts, jitter()) {
                    Decision::Retry { after } => {
                        if let Reach::NotReached { retry_after: Some(pause) } = reach {
                            self.paused.insert(claimed.server_id, Instant::now() + pause);
                        }
                        let due = Instant::now() + after;
                        self.next_due = Some(self.next_due.map_or(due, |at| at.min(due)));
                        store::requeue(claimed.id, after.as_millis() as i64, repeatable, report.sqlstate, &message)
                    }
                    Decision::Fail => store::failed(claimed.id, "failed", report.sqlstate, &message, repeatable),
                }
            }
        });
        if outcome.is_err() {
            pgrx::warning!(
                "mcp_oauth queue worker: the outcome of call {} could not be recorded; it stays running until the worker restarts",
                claimed.id
            );
        }
    }

    /// Stops the running calls whose owners cancelled them.
    fn cancel_requested(&mut self) {
        let Ok(ids) = in_transaction(|| store::cancels(self.index)) else { return };
        for id in ids {
            let Some(running) = self.running.remove(&id) else { continue };
            running.abort.abort();
            if let Some(task_id) = &running.claimed.task_id {
                self.cancel_task(&running.claimed, task_id);
            }
            if let Some(count) = self.per_server.get_mut(&running.claimed.server_id) {
                *count = count.saturating_sub(1);
            }
            let _ = in_transaction(|| {
                store::failed(
                    id,
                    "cancelled",
                    crate::error::sqlstate::QUERY_CANCELED,
                    "cancelled by mcp_cancel_call while it ran; the server may have carried it out",
                    None,
                )
            });
        }
    }

    fn expire(&mut self) {
        self.next_retention = Instant::now() + RETENTION_EVERY;
        let retention = gucs::CALL_RETENTION.get().max(0);
        for _ in 0..20 {
            match in_transaction(|| store::expire(retention, RETENTION_BATCH)) {
                Ok(n) if n as i32 == RETENTION_BATCH => continue,
                _ => break,
            }
        }
    }
}

/// Whether the tool may be called again harmlessly, from its annotations
/// (listed now, as the call's owner); false when that cannot be learned.
fn repeatable(claimed: &Claimed) -> bool {
    let listed = in_transaction(|| {
        // Bounded: the server may be the one that just failed, and the
        // worker's other calls wait meanwhile.
        // SAFETY: valid C strings; the setting reverts at the end of this
        // transaction (GUC_ACTION_LOCAL).
        unsafe {
            pg_sys::set_config_option(
                c"mcp_oauth.request_timeout".as_ptr(),
                ANNOTATIONS_TIMEOUT_MS.as_ptr(),
                pg_sys::GucContext::PGC_SUSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_LOCAL,
                true,
                0,
                false,
            )
        };
        calls::list_for(claimed.server_id, &claimed.user_id, Listing::Tools)
    });
    listed
        .ok()
        .and_then(|tools| tools.into_iter().find(|t| t.get("name").and_then(|n| n.as_str()) == Some(claimed.name.as_str())))
        .is_some_and(|tool| queue::repeatable(tool.get("annotations")))
}
