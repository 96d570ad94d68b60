//! `mcp_current_user_id()`: whose rows the caller may see.

use crate::error::or_raise;
use crate::identity::current_user_id;
use pgrx::prelude::*;

/// Used by the table's DEFAULT and row-level security policies.
#[pg_extern(stable, parallel_safe)]
fn mcp_current_user_id() -> String {
    or_raise(current_user_id())
}
