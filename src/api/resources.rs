//! MCP resources: mcp_list_resources, mcp_list_resource_templates,
//! mcp_read_resource.

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
fn mcp_list_resources(
    server_id: Option<pgrx::Uuid>,
) -> TableIterator<
    'static,
    (
        name!(uri, String),
        name!(name, Option<String>),
        name!(title, Option<String>),
        name!(description, Option<String>),
        name!(mime_type, Option<String>),
        name!(size, Option<i64>),
        name!(annotations, Option<JsonB>),
        name!(resource, JsonB),
    ),
> {
    let items = or_raise(required(server_id, "server_id").and_then(|id| calls::list(ids::from_sql(id), Listing::Resources)));
    TableIterator::new(items.into_iter().map(|r| {
        (
            text_field(&r, "uri").unwrap_or_default(),
            text_field(&r, "name"),
            text_field(&r, "title"),
            text_field(&r, "description"),
            text_field(&r, "mimeType"),
            r.get("size").and_then(Value::as_i64),
            json_field(&r, "annotations"),
            JsonB(r),
        )
    }))
}

#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn mcp_list_resource_templates(
    server_id: Option<pgrx::Uuid>,
) -> TableIterator<
    'static,
    (
        name!(uri_template, String),
        name!(name, Option<String>),
        name!(title, Option<String>),
        name!(description, Option<String>),
        name!(mime_type, Option<String>),
        name!(annotations, Option<JsonB>),
        name!(template, JsonB),
    ),
> {
    let items = or_raise(required(server_id, "server_id").and_then(|id| calls::list(ids::from_sql(id), Listing::ResourceTemplates)));
    TableIterator::new(items.into_iter().map(|t| {
        (
            text_field(&t, "uriTemplate").unwrap_or_default(),
            text_field(&t, "name"),
            text_field(&t, "title"),
            text_field(&t, "description"),
            text_field(&t, "mimeType"),
            json_field(&t, "annotations"),
            JsonB(t),
        )
    }))
}

fn read_resource(server_id: Option<pgrx::Uuid>, uri: Option<&str>, input: InputRound) -> Result<RawJsonb, Error> {
    let id = required(server_id, "server_id")?;
    let uri = required(uri, "uri")?;
    if uri.is_empty() || uri.len() > 8192 || uri.chars().any(char::is_control) {
        return Err(Error::InvalidArgument("the resource URI must be 1 to 8192 characters without control characters".into()));
    }
    calls::raw(ids::from_sql(id), Operation::Request(Call::read_resource(uri, input)))
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_read_resource(server_id: Option<pgrx::Uuid>, uri: Option<&str>) -> RawJsonb {
    or_raise(read_resource(server_id, uri, InputRound::default()))
}

/// The read again, with the application's answers to an input-required result.
#[pg_extern(volatile, parallel_unsafe, name = "mcp_read_resource")]
fn mcp_read_resource_answering(
    server_id: Option<pgrx::Uuid>,
    uri: Option<&str>,
    input_responses: Option<JsonB>,
    request_state: default!(Option<&str>, "NULL"),
) -> RawJsonb {
    or_raise(calls::input_round(input_responses, request_state).and_then(|input| read_resource(server_id, uri, input)))
}
