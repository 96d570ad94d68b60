//! The SQL surface, one file per concern.

pub mod identity;
pub mod oauth;
pub mod tools;
pub mod rows;
