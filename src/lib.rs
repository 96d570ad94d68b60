//! `mcp_oauth`: connect application users to remote MCP servers with OAuth
//! 2.1, inside PostgreSQL. This crate is the pgrx glue: SQL functions,
//! settings, errors and the row store. Protocol logic lives in
//! `crates/core` (`mcp_oauth_core`), which knows nothing of PostgreSQL.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

pub mod api;
pub mod calls;
pub mod discoveries;
pub mod durable;
pub mod error;
pub mod gucs;
pub mod identity;
pub mod ids;
pub mod jsonb;
pub mod queue;
pub mod reseal;
pub mod rotation;
pub mod runtime;
pub mod secrets;
pub mod spi;
pub mod state;
pub mod stats;
pub mod store;
pub mod tokens;
pub mod unattended;

// The table, policies, triggers, view, role and grants, written by hand.
// `finalize` places it after every function pgrx generates.
pgrx::extension_sql_file!("../sql/schema.sql", name = "schema", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    // Preloaded, this runs in the postmaster: what is built here is
    // inherited by every backend it forks, so none of them pays for it.
    // SAFETY: a plain read of a flag PostgreSQL sets while preloading.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        mcp_oauth_core::net::tls_config();
        stats::init_shared_memory();
        durable::init_stations(gucs::DURABLE_WORKERS.get().max(0) as usize);
        queue::init(gucs::CALL_WORKERS.get().max(0) as usize);
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    // #[pg_schema] needs an inline module; the tests live in their own file.
    include!("tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'mcp_oauth'"]
    }
}
