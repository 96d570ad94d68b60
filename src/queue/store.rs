//! The statements on `mcp_tool_calls`, prepared once per process, run as
//! the table's owner through a fresh snapshot (see `spi`).

use crate::error::Error;
use crate::spi::{self, arg, Statement};
use pgrx::pg_sys;
use pgrx::JsonB;
use serde_json::{Map, Value};

/// A call as a worker takes it.
pub struct Claimed {
    pub id: i64,
    pub user_id: String,
    pub server_id: uuid::Uuid,
    pub name: String,
    pub arguments: Map<String, Value>,
    pub attempts: u32,
    pub repeatable: Option<bool>,
    /// The server's task, when it runs the call as one.
    pub task_id: Option<String>,
}

const ENQUEUE: Statement = Statement {
    name: "queue_enqueue",
    sql: "INSERT INTO {schema}.mcp_tool_calls (user_id, server_id, name, arguments)
          SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT FROM {table} s WHERE s.id = $2 AND s.user_id = $1)
          RETURNING id",
    args: &[pg_sys::TEXTOID, pg_sys::UUIDOID, pg_sys::TEXTOID, pg_sys::JSONBOID],
};

/// Enqueues a call in the caller's transaction; None when the server row
/// is not the user's.
pub fn enqueue(user_id: &str, server_id: uuid::Uuid, name: &str, arguments: Map<String, Value>) -> Result<Option<i64>, Error> {
    let mut id = None;
    spi::run(
        &ENQUEUE,
        &[arg(user_id), arg(pgrx::Uuid::from_bytes(*server_id.as_bytes())), arg(name), arg(JsonB(Value::Object(arguments)))],
        |row| id = row.get::<i64>(1),
    )?;
    Ok(id)
}

/// A call as its owner sees it.
pub struct CallState {
    pub status: String,
    pub result: Option<String>,
    pub error_sqlstate: Option<String>,
    pub error_message: Option<String>,
}

const STATE: Statement = Statement {
    name: "queue_state",
    sql: "SELECT status, result::text, error_sqlstate, error_message FROM {schema}.mcp_tool_calls WHERE id = $1 AND user_id = $2",
    args: &[pg_sys::INT8OID, pg_sys::TEXTOID],
};

pub fn state(id: i64, user_id: &str) -> Result<Option<CallState>, Error> {
    let mut state = None;
    spi::run(&STATE, &[arg(id), arg(user_id)], |row| {
        state = Some(CallState {
            status: row.get(1).unwrap_or_default(),
            result: row.get(2),
            error_sqlstate: row.get(3),
            error_message: row.get(4),
        })
    })?;
    Ok(state)
}

const CANCEL_QUEUED: Statement = Statement {
    name: "queue_cancel_queued",
    sql: "UPDATE {schema}.mcp_tool_calls
             SET status = 'cancelled', finished_at = pg_catalog.clock_timestamp(),
                 error_sqlstate = '57014', error_message = 'cancelled by mcp_cancel_call before it ran'
           WHERE id = $1 AND user_id = $2 AND status = 'queued'
          RETURNING pg_catalog.pg_notify('mcp_oauth_call_done', id::text)",
    args: &[pg_sys::INT8OID, pg_sys::TEXTOID],
};

const CANCEL_RUNNING: Statement = Statement {
    name: "queue_cancel_running",
    sql: "UPDATE {schema}.mcp_tool_calls SET cancel_requested = true
           WHERE id = $1 AND user_id = $2 AND status = 'running' RETURNING id",
    args: &[pg_sys::INT8OID, pg_sys::TEXTOID],
};

/// What a cancel did.
pub enum Cancelled {
    /// It was queued: it will not run.
    Queued,
    /// It is running: its worker is asked to stop it.
    Running,
    /// It had finished already.
    Finished,
    NotFound,
}

pub fn cancel(id: i64, user_id: &str) -> Result<Cancelled, Error> {
    if spi::run(&CANCEL_QUEUED, &[arg(id), arg(user_id)], |_| {})? > 0 {
        return Ok(Cancelled::Queued);
    }
    if spi::run(&CANCEL_RUNNING, &[arg(id), arg(user_id)], |_| {})? > 0 {
        return Ok(Cancelled::Running);
    }
    Ok(if state(id, user_id)?.is_some() { Cancelled::Finished } else { Cancelled::NotFound })
}

const CANDIDATES: Statement = Statement {
    name: "queue_candidates",
    sql: "SELECT id, server_id FROM {schema}.mcp_tool_calls
           WHERE status = 'queued' AND run_after <= pg_catalog.clock_timestamp()
           ORDER BY run_after, id LIMIT $1 FOR UPDATE SKIP LOCKED",
    args: &[pg_sys::INT4OID],
};

/// Queued calls that are due, oldest first, locked to this transaction
/// (other workers skip them).
pub fn candidates(limit: i32) -> Result<Vec<(i64, uuid::Uuid)>, Error> {
    let mut found = Vec::new();
    spi::run(&CANDIDATES, &[arg(limit)], |row| {
        if let (Some(id), Some(server)) = (row.get::<i64>(1), row.get::<pgrx::Uuid>(2)) {
            found.push((id, uuid::Uuid::from_bytes(*server.as_bytes())));
        }
    })?;
    Ok(found)
}

const CLAIM: Statement = Statement {
    name: "queue_claim",
    sql: "UPDATE {schema}.mcp_tool_calls
             SET status = 'running', attempts = attempts + 1, worker = $2, started_at = pg_catalog.clock_timestamp()
           WHERE id = ANY ($1)
          RETURNING id, user_id, server_id, name, arguments, attempts, repeatable, task_id",
    args: &[pg_sys::INT8ARRAYOID, pg_sys::INT4OID],
};

/// A call from a row of `id, user_id, server_id, name, arguments, attempts,
/// repeatable, task_id`.
fn claimed_from(row: &spi::Row) -> Option<Claimed> {
    let arguments = match row.get::<JsonB>(5) {
        Some(JsonB(Value::Object(map))) => map,
        _ => Map::new(),
    };
    Some(Claimed {
        id: row.get::<i64>(1)?,
        user_id: row.get::<String>(2)?,
        server_id: uuid::Uuid::from_bytes(*row.get::<pgrx::Uuid>(3)?.as_bytes()),
        name: row.get::<String>(4)?,
        arguments,
        attempts: row.get::<i32>(6).unwrap_or(1).max(1) as u32,
        repeatable: row.get::<bool>(7),
        task_id: row.get::<String>(8),
    })
}

/// Marks `ids` (locked by `candidates`) running in worker `worker`.
pub fn claim(ids: Vec<i64>, worker: i32) -> Result<Vec<Claimed>, Error> {
    let mut claimed = Vec::new();
    spi::run(&CLAIM, &[arg(ids), arg(worker)], |row| claimed.extend(claimed_from(row)))?;
    Ok(claimed)
}

const SUCCEEDED: Statement = Statement {
    name: "queue_succeeded",
    sql: "UPDATE {schema}.mcp_tool_calls
             SET status = 'succeeded', result = $2::jsonb, finished_at = pg_catalog.clock_timestamp(), worker = NULL
           WHERE id = $1 AND status = 'running'
          RETURNING pg_catalog.pg_notify('mcp_oauth_call_done', id::text)",
    args: &[pg_sys::INT8OID, pg_sys::TEXTOID],
};

pub fn succeeded(id: i64, result: &str) -> Result<(), Error> {
    spi::run(&SUCCEEDED, &[arg(id), arg(result)], |_| {}).map(drop)
}

const FAILED: Statement = Statement {
    name: "queue_failed",
    sql: "UPDATE {schema}.mcp_tool_calls
             SET status = $2, error_sqlstate = $3, error_message = $4, repeatable = COALESCE($5, repeatable),
                 finished_at = pg_catalog.clock_timestamp(), worker = NULL
           WHERE id = $1 AND status IN ('running', 'queued')
          RETURNING pg_catalog.pg_notify('mcp_oauth_call_done', id::text)",
    args: &[pg_sys::INT8OID, pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::BOOLOID],
};

/// Ends a call as `failed` or `cancelled`, with why.
pub fn failed(id: i64, status: &str, sqlstate: &str, message: &str, repeatable: Option<bool>) -> Result<(), Error> {
    spi::run(&FAILED, &[arg(id), arg(status), arg(sqlstate), arg(message), arg(repeatable)], |_| {}).map(drop)
}

const REQUEUE: Statement = Statement {
    name: "queue_requeue",
    sql: "UPDATE {schema}.mcp_tool_calls
             SET status = 'queued', worker = NULL, repeatable = COALESCE($3, repeatable),
                 run_after = pg_catalog.clock_timestamp() + $2 * interval '1 millisecond',
                 error_sqlstate = $4, error_message = $5
           WHERE id = $1 AND status = 'running'",
    args: &[pg_sys::INT8OID, pg_sys::INT8OID, pg_sys::BOOLOID, pg_sys::TEXTOID, pg_sys::TEXTOID],
};

/// Puts a call back in the queue, due in `after_ms`; the last failure stays
/// visible meanwhile.
pub fn requeue(id: i64, after_ms: i64, repeatable: Option<bool>, sqlstate: &str, message: &str) -> Result<(), Error> {
    spi::run(&REQUEUE, &[arg(id), arg(after_ms), arg(repeatable), arg(sqlstate), arg(message)], |_| {}).map(drop)
}

const ORPHANS: Statement = Statement {
    name: "queue_orphans",
    sql: "SELECT id, user_id, server_id, name, arguments, attempts, repeatable, task_id FROM {schema}.mcp_tool_calls
           WHERE status = 'running' AND (worker = $1 OR ($2 AND (worker IS NULL OR worker >= $3)))
           FOR UPDATE SKIP LOCKED",
    args: &[pg_sys::INT4OID, pg_sys::BOOLOID, pg_sys::INT4OID],
};

/// Calls left running by a worker that died: this worker's own (it is the
/// same worker, started again) and, for worker 0, those of workers that no
/// longer exist.
pub fn orphans(worker: i32, workers: i32) -> Result<Vec<Claimed>, Error> {
    let mut found = Vec::new();
    spi::run(&ORPHANS, &[arg(worker), arg(worker == 0), arg(workers)], |row| found.extend(claimed_from(row)))?;
    Ok(found)
}

const TASK: Statement = Statement {
    name: "queue_task",
    sql: "UPDATE {schema}.mcp_tool_calls SET task_id = $2 WHERE id = $1 AND status = 'running'",
    args: &[pg_sys::INT8OID, pg_sys::TEXTOID],
};

/// Records that the server runs the call as task `task_id`.
pub fn task(id: i64, task_id: &str) -> Result<(), Error> {
    spi::run(&TASK, &[arg(id), arg(task_id)], |_| {}).map(drop)
}

const CANCELS: Statement = Statement {
    name: "queue_cancels",
    sql: "SELECT id FROM {schema}.mcp_tool_calls WHERE status = 'running' AND worker = $1 AND cancel_requested",
    args: &[pg_sys::INT4OID],
};

/// This worker's running calls whose owner asked to cancel them.
pub fn cancels(worker: i32) -> Result<Vec<i64>, Error> {
    let mut ids = Vec::new();
    spi::run(&CANCELS, &[arg(worker)], |row| ids.extend(row.get::<i64>(1)))?;
    Ok(ids)
}

const EXPIRE: Statement = Statement {
    name: "queue_expire",
    sql: "DELETE FROM {schema}.mcp_tool_calls WHERE id IN (
              SELECT id FROM {schema}.mcp_tool_calls
               WHERE finished_at < pg_catalog.clock_timestamp() - $1 * interval '1 second'
               LIMIT $2 FOR UPDATE SKIP LOCKED)",
    args: &[pg_sys::INT4OID, pg_sys::INT4OID],
};

/// Deletes up to `batch` calls finished more than `retention_s` ago.
pub fn expire(retention_s: i32, batch: i32) -> Result<u64, Error> {
    spi::run(&EXPIRE, &[arg(retention_s), arg(batch)], |_| {})
}
