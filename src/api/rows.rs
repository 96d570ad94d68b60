//! Helpers the table's triggers and generated columns call. They are pure,
//! take no secrets out of the row, and return the problem (or NULL) so the
//! trigger can raise a precise error.

use mcp_oauth_core::text::sentence;
use mcp_oauth_core::validate;
use pgrx::prelude::*;
use pgrx::JsonB;

/// Why `url` is not a valid MCP server URL, or NULL.
#[pg_extern(immutable, parallel_safe, strict)]
fn mcp_oauth_url_problem(url: &str) -> Option<String> {
    validate::server_url(url).err().map(sentence)
}

/// Why `headers` is not a valid headers object, or NULL. Never names a
/// value. `stored`: values may be sealed (as they are in the table).
#[pg_extern(immutable, parallel_safe, strict)]
fn mcp_oauth_headers_problem(headers: JsonB, stored: default!(bool, false)) -> Option<String> {
    let checked = if stored { validate::headers_stored(&headers.0) } else { validate::headers(&headers.0) };
    checked.err().map(|why| sentence(&why))
}

/// The header names, sorted (the `header_keys` column).
#[pg_extern(immutable, parallel_safe, strict)]
fn mcp_oauth_header_keys(headers: JsonB) -> Vec<String> {
    validate::header_keys(&headers.0)
}

/// A slug derived from a display name.
#[pg_extern(immutable, parallel_safe, strict)]
fn mcp_oauth_slug(name: &str) -> String {
    validate::slug_from_name(name)
}
