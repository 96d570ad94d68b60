//! Row ids between PostgreSQL's `uuid` (`pgrx::Uuid`) and the `uuid` crate
//! the rest of the code uses: the one place that converts them.

/// A `uuid` argument as the `uuid` crate's type.
pub fn from_sql(id: pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*id.as_bytes())
}

/// A row id as a `uuid` value for PostgreSQL.
pub fn to_sql(id: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*id.as_bytes())
}
