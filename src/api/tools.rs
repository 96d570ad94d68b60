//! MCP tools: mcp_list_tools, mcp_call_tool, mcp_test_server.

use crate::calls::{self, Operation};
use crate::durable;
use crate::error::{or_raise, required, Error};
use crate::identity::current_user_id;
use crate::ids;
use crate::jsonb::{json_field, text_field, RawJsonb};
use crate::store::{self, Change, Condition, RowUpdate};
use mcp_oauth_core::mcp::{Call, InputRound, Listing};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

fn list_tools(server_id: uuid::Uuid) -> Result<Vec<Value>, Error> {
    calls::list(server_id, Listing::Tools)
}

fn call_tool(server_id: Option<pgrx::Uuid>, name: Option<&str>, args: Option<JsonB>, input: InputRound) -> Result<RawJsonb, Error> {
    let id = required(server_id, "server_id")?;
    let name = required(name, "name")?;
    if name.is_empty() || name.len() > 256 {
        return Err(Error::InvalidArgument("the tool name must be 1 to 256 characters".into()));
    }
    let Value::Object(args) = required(args, "args")?.0 else {
        return Err(Error::InvalidArgument("args must be a JSON object".into()));
    };
    calls::raw(ids::from_sql(id), Operation::CallTool(Call::call_tool(name, args, input)))
}

#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn mcp_list_tools(
    server_id: Option<pgrx::Uuid>,
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(title, Option<String>),
        name!(description, Option<String>),
        name!(input_schema, Option<JsonB>),
        name!(output_schema, Option<JsonB>),
        name!(annotations, Option<JsonB>),
    ),
> {
    let tools = or_raise(required(server_id, "server_id").and_then(|id| list_tools(ids::from_sql(id))));
    TableIterator::new(tools.into_iter().map(move |t| {
        (
            text_field(&t, "name").unwrap_or_default(),
            text_field(&t, "title"),
            text_field(&t, "description"),
            json_field(&t, "inputSchema"),
            json_field(&t, "outputSchema"),
            json_field(&t, "annotations"),
        )
    }))
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_call_tool(server_id: Option<pgrx::Uuid>, name: Option<&str>, args: default!(Option<JsonB>, "'{}'")) -> RawJsonb {
    or_raise(call_tool(server_id, name, args, InputRound::default()))
}

/// The call again, with the application's answers to an input-required
/// result (SEP-2322) and its echoed requestState.
#[pg_extern(volatile, parallel_unsafe, name = "mcp_call_tool")]
fn mcp_call_tool_answering(
    server_id: Option<pgrx::Uuid>,
    name: Option<&str>,
    args: Option<JsonB>,
    input_responses: Option<JsonB>,
    request_state: default!(Option<&str>, "NULL"),
) -> RawJsonb {
    or_raise(calls::input_round(input_responses, request_state).and_then(|input| call_tool(server_id, name, args, input)))
}

fn test_server(server_id: uuid::Uuid) -> Result<Value, Error> {
    match list_tools(server_id) {
        Ok(tools) => {
            let row = store::load(server_id, &current_user_id()?)?;
            if row.last_error.is_some() {
                let update = RowUpdate { last_error: Change::Clear, ..Default::default() };
                durable::write(&row, Condition::Generation(row.generation), update)?;
            }
            let listed: Vec<Value> =
                tools.iter().map(|t| serde_json::json!({"name": t.get("name"), "description": t.get("description")})).collect();
            Ok(serde_json::json!({"ok": true, "tool_count": listed.len(), "tools": listed}))
        }
        // Identity and "no such row" are the caller's mistakes: raise them.
        Err(e @ (Error::Identity(_) | Error::Unidentified { .. } | Error::ServerNotFound(_) | Error::Cancelled)) => Err(e),
        Err(e) => {
            let report = e.report();
            let message = report.message_with_detail();
            // Also failures found before any request (no sign-in yet, ...).
            if let Ok(row) = current_user_id().and_then(|u| store::load(server_id, &u)) {
                if row.last_error.as_deref() != Some(message.as_str()) {
                    durable::write(&row, Condition::Generation(row.generation), RowUpdate::failure(&message, false))?;
                }
            }
            Ok(serde_json::json!({"ok": false, "error": message, "sqlstate": report.sqlstate}))
        }
    }
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_test_server(server_id: Option<pgrx::Uuid>) -> JsonB {
    JsonB(or_raise(required(server_id, "server_id").and_then(|id| test_server(ids::from_sql(id)))))
}
