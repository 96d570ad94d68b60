//! A jsonb result made straight from JSON text: a remote result is handed to
//! PostgreSQL's `jsonb_in` as the server wrote it, instead of being parsed
//! into a tree and written out again first (which `pgrx::JsonB` does).

use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin};
use pgrx::{IntoDatum, JsonB};
use serde_json::Value;

/// A string member of a listed item (a tool, resource, prompt), for a text column.
pub fn text_field(item: &Value, key: &str) -> Option<String> {
    item.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A member of a listed item for a jsonb column; JSON null is SQL NULL.
pub fn json_field(item: &Value, key: &str) -> Option<JsonB> {
    item.get(key).filter(|v| !v.is_null()).cloned().map(JsonB)
}

/// JSON text, valid (it comes from a JSON parser), returned as `jsonb`.
pub struct RawJsonb(pub String);

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // JSON text has no NUL byte outside a string, where it is escaped.
        let text = std::ffi::CString::new(self.0).expect("JSON text contains no NUL byte");
        // SAFETY: jsonb_in takes a C string and palloc's its result.
        unsafe { pgrx::fcinfo::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(text.as_ptr()))]) }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

unsafe impl SqlTranslatable for RawJsonb {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(RawJsonb);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}

// SAFETY: returns the datum into_datum made, as pgrx does for its own types.
unsafe impl pgrx::callconv::BoxRet for RawJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}
