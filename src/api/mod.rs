//! The SQL surface, one file per concern.

pub mod identity;
pub mod rows;
