//! Network waits inside a backend: one current-thread tokio runtime and one
//! HTTP client per backend, reused; PostgreSQL's interrupts are polled while
//! a future runs, and a cancel is raised only after the runtime has let go.
//!
//! Only the backend's own thread ever touches PostgreSQL. Threads tokio
//! starts (the blocking pool, used for DNS) block every signal, so
//! PostgreSQL's signal handlers always run on the backend's thread.

use crate::error::Error;
use crate::gucs;
use mcp_oauth_core::net::{HttpClient, NetConfig, NetPolicy};
use mcp_oauth_core::settings;
use pgrx::pg_sys;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

thread_local! {
    static RUNTIME: RefCell<Option<Rc<tokio::runtime::Runtime>>> = const { RefCell::new(None) };
    static CLIENT: RefCell<Option<(NetConfig, Rc<HttpClient>)>> = const { RefCell::new(None) };
}

/// How often interrupts are checked while waiting.
const POLL: Duration = Duration::from_millis(10);

fn block_all_signals() {
    // SAFETY: plain libc calls on this (new) thread's own signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn runtime() -> Rc<tokio::runtime::Runtime> {
    RUNTIME.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                Rc::new(
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .on_thread_start(block_all_signals)
                        .build()
                        .expect("a tokio runtime"),
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
        let client = Rc::new(HttpClient::new(config.clone())?);
        *slot = Some((config, client.clone()));
        Ok(client)
    })
}

fn cancel_requested() -> bool {
    // SAFETY: reads of PostgreSQL's volatile interrupt flags on its own thread.
    unsafe {
        pg_sys::InterruptPending != 0 && (pg_sys::QueryCancelPending != 0 || pg_sys::ProcDiePending != 0)
    }
}

/// Runs `future` to completion on the backend's runtime. If the query is
/// cancelled (statement_timeout, pg_cancel_backend, termination) the future
/// is dropped, the runtime returns, and then PostgreSQL raises the cancel.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, Error> {
    let rt = runtime();
    let outcome = rt.block_on(async {
        tokio::pin!(future);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                output = &mut future => return Some(output),
                _ = tick.tick() => {
                    if cancel_requested() {
                        return None;
                    }
                }
            }
        }
    });
    match outcome {
        Some(output) => Ok(output),
        None => {
            drop(rt);
            // SAFETY: back on the backend's thread, outside the runtime.
            unsafe { pg_sys::ProcessInterrupts() };
            // Interrupts were held off: still report the cancel.
            Err(Error::Cancelled)
        }
    }
}
