//! Parallel tool calls in one statement: mcp_call_tools.

use crate::calls::{self, Operation, Outcome};
use crate::error::{or_raise, required, Error};
use crate::identity::current_user_id;
use crate::jsonb::RawJsonb;
use mcp_oauth_core::mcp::batch::{self, BatchCall, ToolRef};
use mcp_oauth_core::mcp::{Call, InputRound};
use mcp_oauth_core::text::sanitise;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};
use std::fmt::Write;

/// The call an item stands for: its server, resolved now, and its request.
fn operation(call: BatchCall) -> Result<(uuid::Uuid, Operation), Error> {
    let (server_id, name) = match call.tool {
        ToolRef::Server { server_id, name } => (server_id, name),
        ToolRef::Qualified(qualified) => super::catalog::resolve(&qualified)?,
    };
    Ok((server_id, Operation::CallTool(Call::call_tool(&name, call.arguments, InputRound::default()))))
}

/// One item of the answer: `{"id"?, "ok": true, "result"}` or
/// `{"id"?, "ok": false, "error": {sqlstate, message, detail, hint}}`.
fn answer(out: &mut String, id: Option<&Value>, result: Result<Outcome, Error>) {
    out.push('{');
    if let Some(id) = id {
        let _ = write!(out, "\"id\":{id},");
    }
    match result {
        Ok(Outcome::Raw(raw)) => {
            let _ = write!(out, "\"ok\":true,\"result\":{}", raw.get());
        }
        Ok(Outcome::Items(items)) => {
            let _ = write!(out, "\"ok\":true,\"result\":{}", Value::Array(items));
        }
        Err(e) => {
            let report = e.report();
            let error = json!({
                "sqlstate": report.sqlstate,
                "message": sanitise(&report.message),
                "detail": report.detail.as_deref().map(sanitise),
                "hint": report.hint.as_deref().map(sanitise),
            });
            let _ = write!(out, "\"ok\":false,\"error\":{error}");
        }
    }
    out.push('}');
}

fn call_tools(calls: JsonB) -> Result<RawJsonb, Error> {
    let parsed = batch::parse(&calls.0).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let user_id = current_user_id()?;
    let mut results: Vec<Option<Result<Outcome, Error>>> = Vec::with_capacity(parsed.len());
    let mut runnable = Vec::new();
    let mut positions = Vec::new();
    for (index, item) in parsed.into_iter().enumerate() {
        match item.map_err(Error::InvalidArgument).and_then(operation) {
            Ok(call) => {
                runnable.push(call);
                positions.push(index);
                results.push(None);
            }
            // The caller's own cancel ends the statement.
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => results.push(Some(Err(e))),
        }
    }
    for (index, result) in positions.into_iter().zip(calls::run_concurrently(&user_id, runnable)?) {
        if matches!(result, Err(Error::Cancelled)) {
            return Err(Error::Cancelled);
        }
        results[index] = Some(result);
    }
    let ids = calls.0.as_array().map(|items| items.iter().map(|item| item.get("id")).collect::<Vec<_>>()).unwrap_or_default();
    let mut out = String::from("[");
    for (index, result) in results.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        answer(&mut out, ids.get(index).copied().flatten(), result.expect("every call has a result"));
    }
    out.push(']');
    Ok(RawJsonb(out))
}

/// Runs an array of tool calls at once and returns their results in order,
/// each with its own error.
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_call_tools(calls: Option<JsonB>) -> RawJsonb {
    or_raise(required(calls, "calls").and_then(call_tools))
}
