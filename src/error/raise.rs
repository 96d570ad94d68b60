//! Raising a [`Report`] as a PostgreSQL ERROR: the only code that hands an
//! error to PostgreSQL.

use super::{Error, Report};
use mcp_oauth_core::text::sanitise;
use pgrx::pg_sys;
use std::ffi::{c_char, c_int, CString};

/// Returns the value, or raises the error as a PostgreSQL ERROR.
pub fn or_raise<T>(result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            let cancelled = matches!(error, Error::Cancelled);
            let report = error.report();
            if report.sqlstate == super::sqlstate::NETWORK_POLICY {
                // For the administrator: what was refused, never a credential.
                pgrx::log!("mcp_oauth: {}", sanitise(&report.message_with_detail()));
            }
            drop(error);
            if cancelled {
                // PostgreSQL's own cancel or termination, with its own
                // message ("... due to statement timeout", "... due to user
                // request"), raised outside any Rust frame with a destructor.
                // SAFETY: on the backend's thread; it raises or returns.
                unsafe { ProcessInterrupts() };
            }
            raise(report)
        }
    }
}

fn pg_string(text: &str) -> *mut c_char {
    let c = CString::new(sanitise(text)).expect("sanitise removes NUL");
    // SAFETY: pstrdup copies into the current memory context, which
    // PostgreSQL frees after the error; the Rust CString is dropped here.
    unsafe { pg_sys::pstrdup(c.as_ptr()) }
}

/// PostgreSQL's MAKE_SQLSTATE: five characters, six bits each.
fn make_sqlstate(code: &[u8]) -> c_int {
    code.iter().take(5).enumerate().map(|(i, c)| ((c.wrapping_sub(b'0') & 0x3F) as c_int) << (6 * i)).sum()
}

// pgrx's ErrorReport only carries PostgreSQL's built-in SQLSTATEs, so the
// class-MC codes are raised with PostgreSQL's own ereport primitives.
unsafe extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errdetail(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
    fn ProcessInterrupts();
}

/// Raises `report` as an ERROR. Never returns.
///
/// Callers hold no Rust value with a destructor when they call this (`or_raise`
/// drops the error first, and every string here is palloc'd), so the longjmp
/// back to PostgreSQL skips only frames with nothing left to drop, exactly as
/// pgrx's own boundary does when it re-raises an error.
pub fn raise(report: Report) -> ! {
    let code = make_sqlstate(report.sqlstate.as_bytes());
    let message = pg_string(&report.message);
    let detail = report.detail.as_deref().map(pg_string);
    let hint = report.hint.as_deref().map(pg_string);
    drop(report);
    // SAFETY: called on the backend's thread; the strings are palloc'd and
    // copied by errmsg/errdetail/errhint; ERROR makes errfinish longjmp.
    unsafe {
        if errstart(pg_sys::PGERROR as c_int, std::ptr::null()) {
            errcode(code);
            errmsg(c"%s".as_ptr(), message);
            if let Some(detail) = detail {
                errdetail(c"%s".as_ptr(), detail);
            }
            if let Some(hint) = hint {
                errhint(c"%s".as_ptr(), hint);
            }
            errfinish(c"mcp_oauth".as_ptr(), 0, std::ptr::null());
        }
    }
    unreachable!("errfinish returned from an ERROR")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_encode_like_postgres() {
        // MAKE_SQLSTATE('2','2','0','2','3') == ERRCODE_INVALID_PARAMETER_VALUE
        assert_eq!(make_sqlstate(b"22023"), pg_sys::errcodes::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE as c_int);
    }
}
