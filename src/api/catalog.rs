//! All of a user's tools in one query, for an application's chat turn:
//! mcp_user_tools and mcp_call_user_tool (names in `mcp::names`).

use crate::calls::{self, Operation};
use crate::error::{or_raise, required, sqlstate, Error};
use crate::identity::current_user_id;
use crate::ids;
use crate::jsonb::{json_field, text_field, RawJsonb};
use crate::store;
use mcp_oauth_core::mcp::names::{qualified_tool_name, route};
use mcp_oauth_core::mcp::{Call, InputRound, Listing};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

/// One row of mcp_user_tools: a tool, or a server that offers none now.
type ToolRow = (pgrx::Uuid, String, String, Option<String>, Option<String>, Option<String>, Option<JsonB>, Option<JsonB>, Option<String>);

fn user_tools() -> Result<Vec<ToolRow>, Error> {
    let user_id = current_user_id()?;
    let mut rows = Vec::new();
    for (id, slug) in store::enabled_servers(&user_id)? {
        match calls::list(id, Listing::Tools) {
            Ok(tools) => rows.extend(tools.iter().map(|tool| tool_row(id, &slug, tool))),
            // The caller's own cancel ends the whole query.
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            // A server that fails is a row with its status, not an error.
            Err(e) => {
                let report = e.report();
                let status = if report.sqlstate == sqlstate::REAUTH_REQUIRED { "needs_sign_in" } else { "error" };
                let error = format!("{} ({})", report.message_with_detail(), report.sqlstate);
                rows.push((ids::to_sql(id), slug.clone(), status.to_owned(), None, None, None, None, None, Some(error)));
            }
        }
    }
    Ok(rows)
}

fn tool_row(id: uuid::Uuid, slug: &str, tool: &Value) -> ToolRow {
    let text = |k: &str| text_field(tool, k);
    let json = |k: &str| json_field(tool, k);
    let name = text("name").unwrap_or_default();
    let qualified = qualified_tool_name(slug, &name);
    (
        ids::to_sql(id),
        slug.to_owned(),
        "ok".to_owned(),
        Some(name),
        Some(qualified),
        text("description"),
        json("inputSchema"),
        json("outputSchema"),
        None,
    )
}

/// Every tool the current user can use now, across their enabled servers.
#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn mcp_user_tools() -> TableIterator<
    'static,
    (
        name!(server_id, pgrx::Uuid),
        name!(slug, String),
        name!(status, String),
        name!(name, Option<String>),
        name!(qualified_name, Option<String>),
        name!(description, Option<String>),
        name!(input_schema, Option<JsonB>),
        name!(output_schema, Option<JsonB>),
        name!(error, Option<String>),
    ),
> {
    TableIterator::new(or_raise(user_tools()))
}

/// The server and tool a qualified name stands for.
pub(crate) fn resolve(qualified: &str) -> Result<(uuid::Uuid, String), Error> {
    let user_id = current_user_id()?;
    let servers = store::enabled_servers(&user_id)?;
    let unknown = || Error::InvalidArgument(format!("no enabled server of yours offers a tool named {qualified:?}"));
    let (slug, rest) = route(qualified, servers.iter().map(|(_, slug)| slug.as_str())).ok_or_else(unknown)?;
    let id = servers.iter().find(|(_, s)| s == slug).map(|(id, _)| *id).ok_or_else(unknown)?;
    if qualified_tool_name(slug, rest) == qualified {
        return Ok((id, rest.to_owned()));
    }
    // A name that had to be rewritten: find the tool it was made from.
    let tools = calls::list(id, Listing::Tools)?;
    let name = tools
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .find(|name| qualified_tool_name(slug, name) == qualified)
        .ok_or_else(unknown)?;
    Ok((id, name.to_owned()))
}

fn call_user_tool(qualified: &str, args: JsonB) -> Result<RawJsonb, Error> {
    let Value::Object(args) = args.0 else {
        return Err(Error::InvalidArgument("args must be a JSON object".into()));
    };
    let (id, name) = resolve(qualified)?;
    calls::raw(id, Operation::CallTool(Call::call_tool(&name, args, InputRound::default())))
}

/// Calls a tool by its qualified name from mcp_user_tools.
#[pg_extern(volatile, parallel_unsafe)]
fn mcp_call_user_tool(qualified_name: Option<&str>, args: default!(Option<JsonB>, "'{}'")) -> RawJsonb {
    or_raise(required(qualified_name, "qualified_name").and_then(|q| call_user_tool(q, required(args, "args")?)))
}
