//! The tasks extension (`io.modelcontextprotocol/tasks`, MCP 2026-07-28): a
//! server may answer a `tools/call` with a task handle (`resultType:
//! "task"`) instead of the result; the client polls `tasks/get` until the
//! task is completed, failed or cancelled. What a result says of a task is
//! read here; the queue workers (which declare the extension) act on it.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::time::Duration;

pub use rmcp::model::TASKS_EXTENSION_ID;

/// The shortest and longest pause between two polls of a task, whatever
/// the server suggests, and the pause when it suggests none.
pub const MIN_POLL: Duration = Duration::from_millis(100);
pub const MAX_POLL: Duration = Duration::from_secs(30);
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// What a `tools/call` or `tasks/get` result says.
#[derive(Debug, PartialEq)]
pub enum TaskState {
    /// Not a task: the request's own result.
    NotATask,
    /// Still running: poll again after `poll`.
    Working {
        task_id: String,
        poll: Duration,
    },
    /// The server needs input, which nobody is there to give.
    InputRequired {
        task_id: String,
    },
    /// Done: the result of the request the task stands for (JSON text).
    Completed {
        task_id: String,
        result: String,
    },
    /// It failed with a JSON-RPC error.
    Failed {
        task_id: String,
        code: i64,
        message: String,
    },
    Cancelled {
        task_id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    result_type: Option<String>,
    task_id: Option<String>,
    status: Option<String>,
    poll_interval_ms: Option<u64>,
    result: Option<Box<RawValue>>,
    error: Option<Value>,
}

/// The pause before the next poll, from the server's `pollIntervalMs`.
pub fn poll_interval(suggested_ms: Option<u64>) -> Duration {
    suggested_ms.map_or(DEFAULT_POLL, Duration::from_millis).clamp(MIN_POLL, MAX_POLL)
}

/// What a result says of a task: `tools/call` answers with `resultType:
/// "task"` when it made one (`created`: false), `tasks/get` with the task's
/// state (`created`: true, the task being known). Err: a task result that
/// is not one (the server broke the extension's rules).
pub fn task_state(raw: &RawValue, polled: bool) -> Result<TaskState, String> {
    let wire: Wire = serde_json::from_str(raw.get()).map_err(|e| format!("the result is not an object: {e}"))?;
    if !polled && wire.result_type.as_deref() != Some("task") {
        return Ok(TaskState::NotATask);
    }
    let task_id = wire.task_id.filter(|id| !id.is_empty()).ok_or("a task without a taskId")?;
    let status = wire.status.ok_or("a task without a status")?;
    Ok(match status.as_str() {
        "working" => TaskState::Working { task_id, poll: poll_interval(wire.poll_interval_ms) },
        "input_required" => TaskState::InputRequired { task_id },
        "completed" => {
            let result = wire.result.ok_or("a completed task without its result")?;
            TaskState::Completed { task_id, result: String::from(Box::<str>::from(result)) }
        }
        "failed" => {
            let error = wire.error.unwrap_or(Value::Null);
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            let message = error.get("message").and_then(Value::as_str).unwrap_or("no message").chars().take(1000).collect();
            TaskState::Failed { task_id, code, message }
        }
        "cancelled" => TaskState::Cancelled { task_id },
        other => return Err(format!("a task with the unknown status {:?}", other.chars().take(40).collect::<String>())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn a_plain_result_is_not_a_task() {
        assert_eq!(task_state(&raw(r#"{"content": [], "resultType": "complete"}"#), false), Ok(TaskState::NotATask));
        assert_eq!(task_state(&raw(r#"{"content": []}"#), false), Ok(TaskState::NotATask));
    }

    #[test]
    fn a_task_handle() {
        let created = raw(r#"{"resultType": "task", "taskId": "t-1", "status": "working", "createdAt": "x", "lastUpdatedAt": "x",
                               "ttlMs": null, "pollIntervalMs": 250}"#);
        assert_eq!(task_state(&created, false), Ok(TaskState::Working { task_id: "t-1".into(), poll: Duration::from_millis(250) }));
        assert!(task_state(&raw(r#"{"resultType": "task", "status": "working"}"#), false).unwrap_err().contains("taskId"));
        assert!(task_state(&raw(r#"{"resultType": "task", "taskId": "", "status": "working"}"#), false).is_err());
        assert!(task_state(&raw(r#"{"resultType": "task", "taskId": "t"}"#), false).unwrap_err().contains("status"));
        assert!(task_state(&raw(r#"{"resultType": "task", "taskId": "t", "status": "paused"}"#), false).unwrap_err().contains("paused"));
        assert!(task_state(&raw(r#"[1]"#), false).is_err());
    }

    #[test]
    fn polled_states() {
        let done = task_state(&raw(r#"{"resultType": "complete", "taskId": "t", "status": "completed", "result": {"content": [{"type": "text", "text": "ok"}]}}"#), true).unwrap();
        assert_eq!(done, TaskState::Completed { task_id: "t".into(), result: r#"{"content": [{"type": "text", "text": "ok"}]}"#.into() });
        assert!(task_state(&raw(r#"{"taskId": "t", "status": "completed"}"#), true).unwrap_err().contains("result"));
        assert_eq!(
            task_state(&raw(r#"{"taskId": "t", "status": "failed", "error": {"code": -32603, "message": "boom"}}"#), true),
            Ok(TaskState::Failed { task_id: "t".into(), code: -32603, message: "boom".into() })
        );
        assert_eq!(task_state(&raw(r#"{"taskId": "t", "status": "cancelled"}"#), true), Ok(TaskState::Cancelled { task_id: "t".into() }));
        assert_eq!(
            task_state(&raw(r#"{"taskId": "t", "status": "input_required", "inputRequests": {}}"#), true),
            Ok(TaskState::InputRequired { task_id: "t".into() })
        );
        assert_eq!(
            task_state(&raw(r#"{"taskId": "t", "status": "working"}"#), true),
            Ok(TaskState::Working { task_id: "t".into(), poll: DEFAULT_POLL })
        );
    }

    #[test]
    fn poll_intervals_are_bounded() {
        assert_eq!(poll_interval(None), DEFAULT_POLL);
        assert_eq!(poll_interval(Some(0)), MIN_POLL);
        assert_eq!(poll_interval(Some(500)), Duration::from_millis(500));
        assert_eq!(poll_interval(Some(86_400_000)), MAX_POLL);
    }
}
