//! Protocol core of `mcp_oauth`: everything that can be written and tested
//! without PostgreSQL. The extension crate (`src/`) is thin glue around it,
//! and the only one that needs `unsafe` (PostgreSQL's C interface).

#![forbid(unsafe_code)]

pub mod change;
pub mod crypto;
pub mod discovery;
pub mod identity;
pub mod mcp;
pub mod net;
pub mod oauth;
pub mod page;
pub mod queue;
pub mod secret;
pub mod settings;
pub mod signin;
pub mod state;
pub mod stats;
pub mod text;
pub mod unattended;
pub mod validate;
pub mod www_authenticate;
