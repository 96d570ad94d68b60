//! What to do with a stored value: keep it, clear it, or set it. Spelled
//! out instead of `Option<Option<T>>`, whose two `None`s read alike.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    /// `Set(v)` for `Some(v)`, `Clear` for `None`.
    pub fn to(value: Option<T>) -> Self {
        value.map_or(Change::Clear, Change::Set)
    }
}
