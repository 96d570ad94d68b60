//! The calls of `mcp_call_tools`: an array in the shape an LLM's parallel
//! tool calls come in, each naming its tool by server id and name or by a
//! qualified name from `mcp_user_tools`.
//!
//! The array as a whole must be well formed (an array, not too long); an
//! item that is not is that item's error, and the others still run.

use serde_json::{Map, Value};

/// At most this many calls in one statement: each holds a connection and a
/// request in flight in the calling backend.
pub const MAX_BATCH: usize = 100;

/// Which tool an item names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolRef {
    /// `{"server_id": "...", "name": "..."}`
    Server { server_id: uuid::Uuid, name: String },
    /// `{"name": "<qualified name>"}` as `mcp_user_tools` lists it.
    Qualified(String),
}

/// One well-formed item.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCall {
    pub tool: ToolRef,
    pub arguments: Map<String, Value>,
}

/// Why the array as a whole is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("calls must be a JSON array of {{server_id, name, arguments}} objects")]
    NotAnArray,
    #[error("calls has {0} items; at most {MAX_BATCH} run in one statement")]
    TooMany(usize),
}

/// Each item of `calls`, or why that item is not a call (an
/// `InvalidArgument` message). An item's `id` (an LLM's tool-call id) is
/// read by the caller, which echoes it.
pub fn parse(calls: &Value) -> Result<Vec<Result<BatchCall, String>>, BatchError> {
    let items = calls.as_array().ok_or(BatchError::NotAnArray)?;
    if items.len() > MAX_BATCH {
        return Err(BatchError::TooMany(items.len()));
    }
    Ok(items.iter().enumerate().map(|(index, item)| parse_item(item).map_err(|why| format!("call {index}: {why}"))).collect())
}

fn parse_item(item: &Value) -> Result<BatchCall, String> {
    let item = item.as_object().ok_or("not a JSON object")?;
    let name = match item.get("name") {
        Some(Value::String(name)) if !name.is_empty() && name.len() <= 256 => name.clone(),
        Some(Value::String(_)) => return Err("the tool name must be 1 to 256 characters".into()),
        _ => return Err("name (the tool's name) is missing or not a string".into()),
    };
    let arguments = match item.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments.clone(),
        // An LLM's tool call may carry its arguments as a JSON string.
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Object(arguments)) => arguments,
            _ => return Err("arguments is a string that is not a JSON object".into()),
        },
        Some(_) => return Err("arguments must be a JSON object".into()),
    };
    let tool = match item.get("server_id") {
        None | Some(Value::Null) => ToolRef::Qualified(name),
        Some(Value::String(id)) => {
            let server_id = uuid::Uuid::parse_str(id).map_err(|_| "server_id is not a uuid".to_owned())?;
            ToolRef::Server { server_id, name }
        }
        Some(_) => return Err("server_id must be a uuid string".into()),
    };
    Ok(BatchCall { tool, arguments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "5f0c6b2e-8a43-4a57-9b0e-2d7f1c3a9e11";

    #[test]
    fn items_by_server_or_qualified_name() {
        let parsed = parse(&json!([
            {"server_id": ID, "name": "echo", "arguments": {"text": "a"}},
            {"name": "github__search", "arguments": "{\"q\": \"x\"}"},
            {"name": "noargs"}
        ]))
        .unwrap();
        let calls: Vec<BatchCall> = parsed.into_iter().map(Result::unwrap).collect();
        assert_eq!(calls[0].tool, ToolRef::Server { server_id: ID.parse().unwrap(), name: "echo".into() });
        assert_eq!(calls[0].arguments["text"], "a");
        assert_eq!(calls[1].tool, ToolRef::Qualified("github__search".into()));
        assert_eq!(calls[1].arguments["q"], "x");
        assert!(calls[2].arguments.is_empty());
    }

    #[test]
    fn a_bad_item_is_its_own_error() {
        let parsed = parse(&json!([
            1,
            {"arguments": {}},
            {"name": ""},
            {"name": "x", "arguments": [1]},
            {"name": "x", "arguments": "[1]"},
            {"name": "x", "server_id": "nope"},
            {"name": "x", "server_id": 7},
            {"name": "ok"}
        ]))
        .unwrap();
        let errors: Vec<String> = parsed.iter().filter_map(|r| r.clone().err()).collect();
        assert_eq!(errors.len(), 7);
        assert!(errors[0].starts_with("call 0: not a JSON object"));
        assert!(errors[1].contains("name"));
        assert!(errors[2].contains("1 to 256"));
        assert!(errors[3].contains("must be a JSON object"));
        assert!(errors[4].contains("string that is not"));
        assert!(errors[5].contains("not a uuid"));
        assert!(errors[6].contains("uuid string"));
        assert!(parsed[7].is_ok());
    }

    #[test]
    fn the_array_as_a_whole() {
        assert_eq!(parse(&json!({"name": "x"})), Err(BatchError::NotAnArray));
        assert_eq!(parse(&json!([])).unwrap().len(), 0);
        let many = Value::Array(vec![json!({"name": "x"}); MAX_BATCH]);
        assert_eq!(parse(&many).unwrap().len(), MAX_BATCH);
        let too_many = Value::Array(vec![json!({"name": "x"}); MAX_BATCH + 1]);
        assert_eq!(parse(&too_many), Err(BatchError::TooMany(MAX_BATCH + 1)));
    }
}
