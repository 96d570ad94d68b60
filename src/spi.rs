//! The extension's own statements: prepared once per backend, run as the
//! table's owner, through a snapshot taken when they run.
//!
//! **Catalog cache.** Statements name `user_mcp_servers` by its schema, which
//! is wherever the extension was installed. The table's OID, qualified name
//! and owner are looked up once per backend and forgotten when PostgreSQL
//! invalidates the table's relcache entry (DROP/CREATE EXTENSION, ALTER
//! EXTENSION ... SET SCHEMA, ALTER TABLE, an owner change) or all of them.
//! The prepared plans go with that entry; after an ALTER TABLE PostgreSQL
//! re-plans a kept plan by itself.
//!
//! **Snapshots.** Every statement runs with `GetLatestSnapshot()`, not the
//! caller's transaction snapshot. Under REPEATABLE READ or SERIALIZABLE the
//! transaction snapshot can predate a token refresh another backend
//! committed; the extension must read (and update) the row as it is now,
//! whatever the caller's isolation level, or it would present a refresh
//! token that was already rotated away. Rows the caller's own transaction
//! wrote stay visible (a snapshot sees its own transaction's changes).

use crate::error::Error;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CString;
use std::rc::Rc;

/// A row version: its block, its line pointer and the transaction that
/// wrote it.
pub type RowVersion = (u32, u16, u32);

/// Where the table is and who owns it.
pub struct Catalog {
    pub table_oid: pg_sys::Oid,
    /// `schema.user_mcp_servers`, quoted as needed.
    pub table: String,
    /// The extension's schema, quoted as needed.
    pub schema: String,
    pub owner: pg_sys::Oid,
    /// The primary key's index.
    pub pkey: pg_sys::Oid,
    /// Attribute numbers of the columns a row read takes.
    pub columns: Columns,
}

/// Attribute numbers, by column name, looked up with the catalog entry (a
/// column added or dropped by ALTER TABLE invalidates them with it).
pub struct Columns {
    pub id: i16,
    pub user_id: i16,
    pub url: i16,
    pub auth_type: i16,
    pub enabled: i16,
    pub headers: i16,
    pub oauth_metadata: i16,
    pub oauth_tokens: i16,
    pub oauth_code_verifier: i16,
    pub oauth_client_secret: i16,
    pub reauth_required: i16,
    pub last_error: i16,
    pub generation: i16,
    pub mcp_protocol: i16,
}

thread_local! {
    static CATALOG: RefCell<Option<Rc<Catalog>>> = const { RefCell::new(None) };
    /// The cached table's OID, readable from the invalidation callback
    /// without borrowing `CATALOG` (the callback can run while it is borrowed).
    static CACHED_OID: Cell<u32> = const { Cell::new(0) };
    static STALE: Cell<bool> = const { Cell::new(false) };
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// Kept plans, by statement.
    static PLANS: RefCell<HashMap<&'static str, usize>> = RefCell::new(HashMap::new());
}

#[pg_guard]
unsafe extern "C-unwind" fn relcache_invalidated(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let cached = CACHED_OID.with(Cell::get);
    if relid == pg_sys::InvalidOid || relid.to_u32() == cached {
        STALE.with(|s| s.set(true));
    }
}

fn forget_plans() {
    PLANS.with(|plans| {
        for (_, plan) in plans.borrow_mut().drain() {
            // SAFETY: each was returned by SPI_prepare and kept; freed once.
            unsafe { pg_sys::SPI_freeplan(plan as pg_sys::SPIPlanPtr) };
        }
    });
}

/// The table's catalog entry, looked up at most once per invalidation.
pub fn catalog() -> Result<Rc<Catalog>, Error> {
    if !CALLBACK.with(Cell::get) {
        // SAFETY: registers a callback of the right signature, once per backend.
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(relcache_invalidated), pg_sys::Datum::from(0)) };
        CALLBACK.with(|c| c.set(true));
    }
    if STALE.with(|s| s.replace(false)) {
        CATALOG.with(|c| c.borrow_mut().take());
        forget_plans();
    }
    if let Some(found) = CATALOG.with(|c| c.borrow().clone()) {
        return Ok(found);
    }
    // SAFETY: catalog reads on the backend's thread, inside a transaction.
    let found = unsafe { lookup() }.ok_or_else(|| Error::Internal("the extension mcp_oauth is not installed in this database".into()))?;
    let found = Rc::new(found);
    CACHED_OID.with(|c| c.set(found.table_oid.to_u32()));
    forget_plans();
    CATALOG.with(|c| *c.borrow_mut() = Some(found.clone()));
    Ok(found)
}

/// The table's OID, qualified name and owner, read from the catalogs
/// directly (an index scan of pg_extension, then the relation caches): a new
/// backend parses and plans no statement for it.
unsafe fn lookup() -> Option<Catalog> {
    // SAFETY (whole function): the standard catalog access sequence, as
    // PostgreSQL's own get_extension_oid() does it; every scan and cache
    // entry is released before returning.
    unsafe {
        let catalog = pg_sys::table_open(pg_sys::ExtensionRelationId, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut key,
            pg_sys::Anum_pg_extension_extname as pg_sys::AttrNumber,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_NAMEEQ),
            pg_sys::Datum::from(c"mcp_oauth".as_ptr()),
        );
        let scan =
            pg_sys::systable_beginscan(catalog, pg_sys::Oid::from(pg_sys::ExtensionNameIndexId), true, std::ptr::null_mut(), 1, &mut key);
        let tuple = pg_sys::systable_getnext(scan);
        let namespace = (!tuple.is_null()).then(|| (*(pg_sys::GETSTRUCT(tuple) as *const pg_sys::FormData_pg_extension)).extnamespace);
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(catalog, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let namespace = namespace?;
        let table_oid = pg_sys::get_relname_relid(c"user_mcp_servers".as_ptr(), namespace);
        if table_oid == pg_sys::InvalidOid {
            return None;
        }
        let class = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::RELOID as i32, pg_sys::Datum::from(table_oid));
        if class.is_null() {
            return None;
        }
        let owner = (*(pg_sys::GETSTRUCT(class) as *const pg_sys::FormData_pg_class)).relowner;
        pg_sys::ReleaseSysCache(class);
        let schema = pg_sys::get_namespace_name(namespace);
        if schema.is_null() {
            return None;
        }
        let quoted = std::ffi::CStr::from_ptr(pg_sys::quote_identifier(schema)).to_string_lossy();
        let pkey = pg_sys::get_relname_relid(c"user_mcp_servers_pkey".as_ptr(), namespace);
        let attnum = |name: &std::ffi::CStr| pg_sys::get_attnum(table_oid, name.as_ptr());
        let columns = Columns {
            id: attnum(c"id"),
            user_id: attnum(c"user_id"),
            url: attnum(c"url"),
            auth_type: attnum(c"auth_type"),
            enabled: attnum(c"enabled"),
            headers: attnum(c"headers"),
            oauth_metadata: attnum(c"oauth_metadata"),
            oauth_tokens: attnum(c"oauth_tokens"),
            oauth_code_verifier: attnum(c"oauth_code_verifier"),
            oauth_client_secret: attnum(c"oauth_client_secret"),
            reauth_required: attnum(c"reauth_required"),
            last_error: attnum(c"last_error"),
            generation: attnum(c"generation"),
            mcp_protocol: attnum(c"mcp_protocol"),
        };
        if pkey == pg_sys::InvalidOid || columns.id <= 0 || columns.mcp_protocol <= 0 {
            return None;
        }
        Some(Catalog { table_oid, table: format!("{quoted}.user_mcp_servers"), schema: quoted.into_owned(), owner, pkey, columns })
    }
}

/// One version of a row, readable while `read` runs.
pub struct Tuple {
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
}

impl Tuple {
    /// Column `attnum`, copied out of PostgreSQL's memory.
    pub fn get<T: FromDatum>(&self, attnum: i16) -> Option<T> {
        let mut is_null = false;
        // SAFETY: the tuple is pinned by the scan while `read` runs; attnum
        // comes from the catalog entry of this relation.
        unsafe {
            let datum = pg_sys::heap_getattr(self.tuple, i32::from(attnum), self.desc, &mut is_null);
            T::from_datum(datum, is_null)
        }
    }

    /// Identifies this version of the row: where it is and who wrote it.
    /// Any change of the row makes a new version with another identity.
    pub fn version(&self) -> RowVersion {
        // SAFETY: a valid heap tuple from the scan.
        unsafe {
            let t = &*self.tuple;
            let block = (u32::from(t.t_self.ip_blkid.bi_hi) << 16) | u32::from(t.t_self.ip_blkid.bi_lo);
            (block, t.t_self.ip_posid, (*t.t_data).t_choice.t_heap.t_xmin.into_inner())
        }
    }

    /// This transaction (or one of its subtransactions) wrote this version
    /// or holds it locked: a write from another transaction would wait.
    pub fn held_by_current_transaction(&self) -> bool {
        // SAFETY: header fields of a valid heap tuple; plain look-ups in this
        // backend's transaction state.
        unsafe {
            let header = &*(*self.tuple).t_data;
            let xmin = header.t_choice.t_heap.t_xmin;
            let xmax = header.t_choice.t_heap.t_xmax;
            let mask = u32::from(header.t_infomask);
            // A FOR KEY SHARE lock (a foreign key of the application's, checked
            // when it inserted a row referencing this one) does not conflict
            // with the worker's lock (FOR NO KEY UPDATE) nor its update, which
            // changes no key.
            let key_share_only = mask & pg_sys::HEAP_XMAX_LOCK_ONLY != 0 && mask & pg_sys::HEAP_LOCK_MASK == pg_sys::HEAP_XMAX_KEYSHR_LOCK;
            pg_sys::TransactionIdIsCurrentTransactionId(xmin)
                || (mask & (pg_sys::HEAP_XMAX_INVALID | pg_sys::HEAP_XMAX_IS_MULTI) == 0
                    && !key_share_only
                    && pg_sys::TransactionIdIsCurrentTransactionId(xmax))
        }
    }
}

/// Reads row `id` through a fresh snapshot with a scan of the primary key,
/// as PostgreSQL reads its own catalogs: no executor, no plan. `read` gets
/// the row's newest committed version (or this transaction's own), or None.
/// The table keeps its AccessShareLock to the end of the transaction, as a
/// statement's would.
pub fn read<R>(catalog: &Catalog, id: pgrx::Uuid, read: impl FnOnce(Option<&Tuple>) -> R) -> R {
    // SAFETY: the standard index scan sequence (as systable_beginscan's
    // callers do it), with a registered snapshot unregistered afterwards;
    // the key datum is palloc'd and outlives the scan.
    unsafe {
        let relation = pg_sys::table_open(catalog.table_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut key,
            catalog.columns.id,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_UUID_EQ),
            id.into_datum().expect("a uuid datum"),
        );
        let scan = pg_sys::systable_beginscan(relation, catalog.pkey, true, snapshot, 1, &mut key);
        let found = pg_sys::systable_getnext(scan);
        let tuple = (!found.is_null()).then(|| Tuple { tuple: found, desc: (*relation).rd_att });
        let result = read(tuple.as_ref());
        pg_sys::systable_endscan(scan);
        pg_sys::UnregisterSnapshot(snapshot);
        pg_sys::table_close(relation, pg_sys::NoLock as pg_sys::LOCKMODE);
        result
    }
}

/// Runs `f` as the table's owner, then restores the caller's identity (also
/// when `f` unwinds; PostgreSQL restores it on an aborted transaction).
pub fn as_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores exactly what GetUserIdAndSecContext returned.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) }
        }
    }
    let (mut uid, mut ctx) = (pg_sys::Oid::INVALID, 0i32);
    // SAFETY: plain reads and a local user-id switch, the same pattern as
    // PostgreSQL's own SECURITY DEFINER handling.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut uid, &mut ctx);
        pg_sys::SetUserIdAndSecContext(owner, ctx | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
    }
    let _restore = Restore(uid, ctx);
    f()
}

/// A statement of the extension. `sql` names the table as `{table}`, and
/// the extension's schema as `{schema}`.
pub struct Statement {
    pub name: &'static str,
    pub sql: &'static str,
    pub args: &'static [pg_sys::Oid],
}

/// An argument: a value already converted for PostgreSQL (`None` is NULL).
pub type Arg = Option<pg_sys::Datum>;

pub fn arg<T: IntoDatum>(value: T) -> Arg {
    value.into_datum()
}

/// One result row, readable while the statement's results are alive.
pub struct Row {
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
}

impl Row {
    /// Column `n` (from 1), copied out of PostgreSQL's memory.
    pub fn get<T: FromDatum>(&self, n: i32) -> Option<T> {
        let mut is_null = false;
        // SAFETY: tuple and desc come from SPI_tuptable of the statement
        // just run, which lives until SPI_finish (after the caller's closure).
        unsafe {
            let datum = pg_sys::SPI_getbinval(self.tuple, self.desc, n, &mut is_null);
            T::from_datum(datum, is_null)
        }
    }
}

fn plan_for(statement: &Statement, catalog: &Catalog) -> pg_sys::SPIPlanPtr {
    if let Some(plan) = PLANS.with(|p| p.borrow().get(statement.name).copied()) {
        return plan as pg_sys::SPIPlanPtr;
    }
    let sql = statement.sql.replace("{table}", &catalog.table).replace("{schema}", &catalog.schema);
    let sql = CString::new(sql).expect("statements have no NUL");
    // SAFETY: called inside an SPI connection; the argument type array
    // outlives the call; SPI_prepare raises on failure (never NULL here).
    let plan = unsafe {
        let plan = pg_sys::SPI_prepare(sql.as_ptr(), statement.args.len() as i32, statement.args.as_ptr() as *mut pg_sys::Oid);
        pg_sys::SPI_keepplan(plan);
        plan
    };
    PLANS.with(|p| p.borrow_mut().insert(statement.name, plan as usize));
    plan
}

/// `search_path = pg_catalog` while the extension's own statements are
/// prepared and run, whatever the caller's: no function or operator of the
/// caller's schemas can be picked up by them (they run with the owner's
/// rights). An override, not a setting: cheaper than `SET search_path` on
/// every call, and the prepared plans, made under it, stay valid.
struct CatalogSearchPath;

impl CatalogSearchPath {
    fn push() -> Self {
        // SAFETY: PostgreSQL copies what it needs from the struct.
        unsafe {
            let mut path: pg_sys::OverrideSearchPath = std::mem::zeroed();
            path.addCatalog = true;
            pg_sys::PushOverrideSearchPath(&mut path);
        }
        CatalogSearchPath
    }
}

impl Drop for CatalogSearchPath {
    fn drop(&mut self) {
        // SAFETY: pops exactly what push() pushed (also when unwinding).
        unsafe { pg_sys::PopOverrideSearchPath() }
    }
}

/// Runs `statement` with `args` as the table's owner through a fresh
/// snapshot, calling `each` for every result row. Returns the number of
/// rows processed.
pub fn run(statement: &Statement, args: &[Arg], mut each: impl FnMut(&Row)) -> Result<u64, Error> {
    assert_eq!(args.len(), statement.args.len(), "{}: argument count", statement.name);
    let catalog = catalog()?;
    let mut values: Vec<pg_sys::Datum> = args.iter().map(|a| a.unwrap_or(pg_sys::Datum::from(0))).collect();
    let nulls: Vec<std::ffi::c_char> = args.iter().map(|a| if a.is_some() { b' ' } else { b'n' } as std::ffi::c_char).collect();
    let _path = CatalogSearchPath::push();
    let status = as_owner(catalog.owner, || {
        Spi::connect_mut(|_client| {
            let plan = plan_for(statement, &catalog);
            // SAFETY: the plan is kept; values and nulls have one entry per
            // argument; the snapshot is copied by SPI before use.
            let status = unsafe {
                pg_sys::SPI_execute_snapshot(
                    plan,
                    values.as_mut_ptr(),
                    nulls.as_ptr(),
                    pg_sys::GetLatestSnapshot(),
                    std::ptr::null_mut(),
                    false,
                    true,
                    0,
                )
            };
            if status < 0 {
                return Err(status);
            }
            // SAFETY: SPI_tuptable and SPI_processed describe the statement just run.
            unsafe {
                let processed = pg_sys::SPI_processed;
                let table = pg_sys::SPI_tuptable;
                if !table.is_null() {
                    for i in 0..processed as usize {
                        each(&Row { tuple: *(*table).vals.add(i), desc: (*table).tupdesc });
                    }
                }
                Ok(processed)
            }
        })
    });
    status.map_err(|code| Error::Internal(format!("{} failed (SPI code {code})", statement.name)))
}
