//! MCP prompts: mcp_list_prompts, mcp_get_prompt.

use crate::calls::{self, Operation};
use crate::error::{or_raise, required, Error};
use crate::ids;
use crate::jsonb::{json_field, text_field, RawJsonb};
use mcp_oauth_core::mcp::{Call, InputRound, Listing};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn mcp_list_prompts(
    server_id: Option<pgrx::Uuid>,
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(title, Option<String>),
        name!(description, Option<String>),
        name!(arguments, Option<JsonB>),
        name!(prompt, JsonB),
    ),
> {
    let items = or_raise(required(server_id, "server_id").and_then(|id| calls::list(ids::from_sql(id), Listing::Prompts)));
    TableIterator::new(items.into_iter().map(move |p| {
        (
            text_field(&p, "name").unwrap_or_default(),
            text_field(&p, "title"),
            text_field(&p, "description"),
            json_field(&p, "arguments"),
            JsonB(p),
        )
    }))
}

fn get_prompt(server_id: Option<pgrx::Uuid>, name: Option<&str>, args: Option<JsonB>, input: InputRound) -> Result<RawJsonb, Error> {
    let id = required(server_id, "server_id")?;
    let name = required(name, "name")?;
    if name.is_empty() || name.len() > 256 {
        return Err(Error::InvalidArgument("the prompt name must be 1 to 256 characters".into()));
    }
    // Prompt arguments are strings (the MCP schema's `{[key]: string}`).
    let args = match required(args, "args")?.0 {
        Value::Object(map) if map.values().all(Value::is_string) => map,
        _ => return Err(Error::InvalidArgument("args must be a JSON object of strings, e.g. {\"who\": \"Ada\"}".into())),
    };
    calls::raw(ids::from_sql(id), Operation::Request(Call::get_prompt(name, args, input)))
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_get_prompt(server_id: Option<pgrx::Uuid>, name: Option<&str>, args: default!(Option<JsonB>, "'{}'")) -> RawJsonb {
    or_raise(get_prompt(server_id, name, args, InputRound::default()))
}

/// The request again, with the application's answers to an input-required result.
#[pg_extern(volatile, parallel_unsafe, name = "mcp_get_prompt")]
fn mcp_get_prompt_answering(
    server_id: Option<pgrx::Uuid>,
    name: Option<&str>,
    args: Option<JsonB>,
    input_responses: Option<JsonB>,
    request_state: default!(Option<&str>, "NULL"),
) -> RawJsonb {
    or_raise(calls::input_round(input_responses, request_state).and_then(|input| get_prompt(server_id, name, args, input)))
}
