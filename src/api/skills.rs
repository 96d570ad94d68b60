//! The skills extension (SEP-2640): mcp_list_skills, mcp_read_skill. A
//! listing reads no skill file; a read is verified (size, digest, and for a
//! SKILL.md its front matter) against the listing before it is returned.

use crate::calls::{self, Operation};
use crate::error::{or_raise, required, Error};
use crate::ids;
use crate::jsonb::json_field;
use mcp_oauth_core::mcp::skills::{self, SkillEntry};
use mcp_oauth_core::mcp::{Call, InputRound, Listing};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::type_complexity)]
fn mcp_list_skills(
    server_id: Option<pgrx::Uuid>,
) -> TableIterator<
    'static,
    (
        name!(name, Option<String>),
        name!(description, Option<String>),
        name!(uri, String),
        name!(frontmatter, Option<JsonB>),
        name!(files, Option<JsonB>),
        name!(skill, JsonB),
    ),
> {
    let items = or_raise(required(server_id, "server_id").and_then(|id| calls::list(ids::from_sql(id), Listing::Skills)));
    TableIterator::new(items.into_iter().filter(|s| s.get("uri").and_then(Value::as_str).is_some()).map(|s| {
        let front = |field: &str| s.get("frontmatter").and_then(|f| f.get(field)).and_then(Value::as_str).map(str::to_owned);
        (
            front("name"),
            front("description"),
            s.get("uri").and_then(Value::as_str).unwrap_or_default().to_owned(),
            json_field(&s, "frontmatter"),
            json_field(&s, "resources"),
            JsonB(s),
        )
    }))
}

/// Reads one file of a listed skill and verifies it against the listing.
fn read_skill(server_id: Option<pgrx::Uuid>, uri: Option<&str>) -> Result<Value, Error> {
    let id = ids::from_sql(required(server_id, "server_id")?);
    let uri = required(uri, "uri")?;
    if uri.is_empty() || uri.len() > 8192 || uri.chars().any(char::is_control) {
        return Err(Error::InvalidArgument("the skill file URI must be 1 to 8192 characters without control characters".into()));
    }
    // The listing read now: what the file must match comes from the server's
    // own skills/list, never from the caller.
    let listed: Vec<SkillEntry> = skills::entries(&calls::list(id, Listing::Skills)?);
    let (entry, file) = skills::find(&listed, uri)?;
    let read = calls::raw(id, Operation::Request(Call::read_resource(uri, InputRound::default())))?;
    let result: Value = serde_json::from_str(&read.0).map_err(|_| Error::Internal("a resources/read result is not JSON".into()))?;
    let bytes = skills::content_bytes(&result, uri)?;
    skills::verify(file, &bytes)?;
    let content = result
        .get("contents")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|i| i.get("uri").and_then(Value::as_str) == Some(uri)).or_else(|| c.first()));
    let mut out = json!({
        "uri": uri,
        "skill": entry.uri,
        "mime_type": content.and_then(|c| c.get("mimeType")).cloned().unwrap_or(Value::Null),
        "size": file.size,
        "digest": file.digest,
    });
    if uri == entry.uri {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| skills::SkillError::Invalid { uri: uri.to_owned(), why: "a SKILL.md must be UTF-8 text".into() })?;
        skills::verify_frontmatter(entry, text)?;
        out["frontmatter"] = Value::Object(entry.frontmatter.clone());
    }
    match content.and_then(|c| c.get("text")) {
        Some(text) => out["text"] = text.clone(),
        None => out["blob"] = content.and_then(|c| c.get("blob")).cloned().unwrap_or(Value::Null),
    }
    Ok(out)
}

#[pg_extern(volatile, parallel_unsafe)]
fn mcp_read_skill(server_id: Option<pgrx::Uuid>, uri: Option<&str>) -> JsonB {
    JsonB(or_raise(read_skill(server_id, uri)))
}
