//! The durable call queue from SQL: mcp_call_tool_async,
//! mcp_call_user_tool_async, mcp_call_result, mcp_cancel_call.

use crate::error::{or_raise, required, Error};
use crate::identity::current_user_id;
use crate::ids;
use crate::jsonb::RawJsonb;
use crate::queue::{self, Cancelled};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// How often mcp_call_result looks at the call while it waits.
const POLL_MS: std::ffi::c_long = 20;

fn arguments(args: Option<JsonB>) -> Result<Map<String, Value>, Error> {
    match required(args, "args")?.0 {
        Value::Object(map) => Ok(map),
        _ => Err(Error::InvalidArgument("args must be a JSON object".into())),
    }
}

fn tool_name(name: Option<&str>) -> Result<&str, Error> {
    let name = required(name, "name")?;
    if name.is_empty() || name.len() > 256 {
        return Err(Error::InvalidArgument("the tool name must be 1 to 256 characters".into()));
    }
    Ok(name)
}

/// Enqueues a tool call, made after this transaction commits; returns its id.
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_call_tool_async(server_id: Option<pgrx::Uuid>, name: Option<&str>, args: default!(Option<JsonB>, "'{}'")) -> i64 {
    or_raise((|| {
        let server_id = ids::from_sql(required(server_id, "server_id")?);
        let name = tool_name(name)?;
        let args = arguments(args)?;
        queue::enqueue(&current_user_id()?, server_id, name, args)
    })())
}

/// Enqueues a call of a tool by its qualified name from mcp_user_tools.
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_call_user_tool_async(qualified_name: Option<&str>, args: default!(Option<JsonB>, "'{}'")) -> i64 {
    or_raise((|| {
        let qualified = required(qualified_name, "qualified_name")?;
        let args = arguments(args)?;
        queue::ready()?;
        let (server_id, name) = super::catalog::resolve(qualified)?;
        queue::enqueue(&current_user_id()?, server_id, &name, args)
    })())
}

fn wait_for(id: i64, timeout: Duration) -> Result<Option<RawJsonb>, Error> {
    let user_id = current_user_id()?;
    let started = Instant::now();
    loop {
        let state = queue::state(id, &user_id)?.ok_or(Error::CallNotFound(id))?;
        match state.status.as_str() {
            "succeeded" => return Ok(Some(RawJsonb(state.result.unwrap_or_else(|| "null".into())))),
            "failed" => {
                return Err(Error::CallFailed {
                    id,
                    sqlstate: state.error_sqlstate.unwrap_or_default(),
                    message: state.error_message.unwrap_or_default(),
                })
            }
            "cancelled" => return Err(Error::CallCancelled(id)),
            _ if queue::enqueued_by_this_transaction(id) => return Err(Error::CallPending(id)),
            _ => {}
        }
        if started.elapsed() >= timeout {
            return Ok(None);
        }
        crate::runtime::nap(POLL_MS);
        if crate::runtime::cancel_requested() {
            return Err(Error::Cancelled);
        }
    }
}

fn timeout_of(timeout: Option<pgrx::datum::Interval>) -> Result<Duration, Error> {
    let Some(timeout) = timeout else { return Ok(Duration::ZERO) };
    if timeout.months() != 0 {
        return Err(Error::InvalidArgument("timeout must be given in days, hours, minutes or seconds, not months".into()));
    }
    let micros = i64::from(timeout.days()) * 86_400_000_000 + timeout.micros();
    if micros < 0 {
        return Err(Error::InvalidArgument("timeout must not be negative".into()));
    }
    Ok(Duration::from_micros(micros as u64))
}

/// The result of a queued call, waiting up to `timeout` for it to finish;
/// its error raised with the call's SQLSTATE; NULL if it is still queued or
/// running when the timeout passes.
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_call_result(id: Option<i64>, timeout: default!(Option<pgrx::datum::Interval>, "'30 seconds'")) -> Option<RawJsonb> {
    or_raise(required(id, "id").and_then(|id| wait_for(id, timeout_of(timeout)?)))
}

/// Cancels a queued or running call of the caller's; false when it had
/// finished already.
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_cancel_call(id: Option<i64>) -> bool {
    or_raise((|| {
        let id = required(id, "id")?;
        match queue::cancel(id, &current_user_id()?)? {
            Cancelled::Queued | Cancelled::Running => {
                queue::wake_at_commit(true);
                Ok(true)
            }
            Cancelled::Finished => Ok(false),
            Cancelled::NotFound => Err(Error::CallNotFound(id)),
        }
    })())
}
