//! The SQL surface, one file per concern.

pub mod catalog;
pub mod identity;
pub mod oauth;
pub mod parallel;
pub mod prompts;
pub mod queue;
pub mod resources;
pub mod rows;
pub mod skills;
pub mod tools;
