//! A tool's `structuredContent` checked against its `outputSchema` (MCP
//! 2025-06-18 and later: servers MUST conform, clients SHOULD validate),
//! with the `jsonschema` crate (JSON Schema 2020-12 unless the schema's
//! `$schema` names another draft; no remote `$ref` is fetched). The
//! application relies on the shape; a result that breaks it is an error
//! naming where, not data passed on.

use jsonschema::Validator;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Longest part of a validator's message shown.
const MAX_WHY_CHARS: usize = 300;

/// Why a result does not fit its tool's declared output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputMismatch {
    pub tool: String,
    /// JSON Pointer into `structuredContent` ("" for the whole of it).
    pub path: String,
    pub why: String,
}

/// The output schemas of a server's tools, as of its last complete tool
/// list, compiled once.
#[derive(Default, Clone)]
pub struct OutputSchemas {
    /// Whether a complete tool list was seen.
    pub listed: bool,
    by_tool: HashMap<String, Result<Arc<Validator>, String>>,
}

impl std::fmt::Debug for OutputSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSchemas").field("listed", &self.listed).field("tools", &self.by_tool.keys().collect::<Vec<_>>()).finish()
    }
}

impl OutputSchemas {
    /// Learns the output schemas of a complete tool list (replacing what
    /// was known). A schema that does not compile is kept as its error.
    pub fn learn(&mut self, tools: &[Value]) {
        self.by_tool.clear();
        for tool in tools {
            let (Some(name), Some(schema)) = (tool.get("name").and_then(Value::as_str), tool.get("outputSchema")) else { continue };
            let compiled = jsonschema::validator_for(schema).map(Arc::new).map_err(|e| cut(&e.masked().to_string()));
            self.by_tool.insert(name.to_owned(), compiled);
        }
        self.listed = true;
    }

    /// Checks a `tools/call` result of `tool`. Tool errors (`isError`), and
    /// results that are not a tool's final output (input required, a task),
    /// are not checked.
    pub fn check(&self, tool: &str, result: &RawValue) -> Result<(), OutputMismatch> {
        let Some(validator) = self.by_tool.get(tool) else { return Ok(()) };
        let mismatch = |path: &str, why: String| OutputMismatch { tool: tool.to_owned(), path: path.to_owned(), why };
        let validator =
            validator.as_ref().map_err(|why| mismatch("", format!("the tool's outputSchema is not a valid JSON Schema: {why}")))?;
        let result: Value = serde_json::from_str(result.get()).map_err(|_| mismatch("", "the result is not JSON".into()))?;
        let final_output = result.get("resultType").and_then(Value::as_str).is_none_or(|t| t == "complete");
        if !final_output || result.get("isError").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        let Some(structured) = result.get("structuredContent") else {
            return Err(mismatch("", "the tool declares an outputSchema but the result has no structuredContent".into()));
        };
        let first = validator
            .iter_errors(structured)
            .next()
            .map(|error| (error.instance_path().as_str().to_owned(), cut(&error.masked().to_string())));
        match first {
            None => Ok(()),
            Some((path, why)) => Err(mismatch(&path, why)),
        }
    }
}

fn cut(text: &str) -> String {
    crate::text::sanitise(text).chars().take(MAX_WHY_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    fn schemas() -> OutputSchemas {
        let mut s = OutputSchemas::default();
        s.learn(&[
            json!({"name": "weather", "outputSchema": {
                "type": "object",
                "properties": {"temperature": {"type": "number"}, "conditions": {"type": "string"},
                               "hourly": {"type": "array", "items": {"type": "number"}}},
                "required": ["temperature"]}}),
            json!({"name": "plain"}),
            json!({"name": "broken", "outputSchema": {"type": 12}}),
        ]);
        s
    }

    #[test]
    fn conforming_results_pass_and_a_mismatch_names_where() {
        let s = schemas();
        assert!(s.listed);
        let ok = raw(json!({"content": [], "structuredContent": {"temperature": 21.5, "conditions": "sunny"}}));
        assert_eq!(s.check("weather", &ok), Ok(()));
        let wrong = raw(json!({"content": [], "structuredContent": {"temperature": 21, "hourly": [1, "two"]}}));
        let m = s.check("weather", &wrong).unwrap_err();
        assert_eq!(m.path, "/hourly/1");
        assert!(m.why.contains("number"), "{}", m.why);
        assert!(!m.why.contains("two"), "the value itself is not repeated: {}", m.why);
        let missing = raw(json!({"content": [], "structuredContent": {"conditions": "rain"}}));
        let m = s.check("weather", &missing).unwrap_err();
        assert_eq!(m.path, "");
        assert!(m.why.contains("temperature"), "{}", m.why);
    }

    #[test]
    fn what_is_not_checked_and_what_is_refused() {
        let s = schemas();
        // No schema: anything goes.
        assert_eq!(s.check("plain", &raw(json!({"content": []}))), Ok(()));
        assert_eq!(s.check("unknown", &raw(json!({"structuredContent": 1}))), Ok(()));
        // A tool error, an input-required result: not the tool's output.
        assert_eq!(s.check("weather", &raw(json!({"isError": true, "content": []}))), Ok(()));
        assert_eq!(s.check("weather", &raw(json!({"resultType": "input_required", "inputRequests": {}}))), Ok(()));
        // A schema but no structured content; a schema that is not one.
        assert!(s.check("weather", &raw(json!({"content": []}))).unwrap_err().why.contains("no structuredContent"));
        assert!(s.check("broken", &raw(json!({"structuredContent": {}}))).unwrap_err().why.contains("not a valid JSON Schema"));
    }

    #[test]
    fn json_schema_2020_12_is_the_default_draft() {
        let mut s = OutputSchemas::default();
        s.learn(&[json!({"name": "t", "outputSchema": {
            "type": "object",
            "properties": {"items": {"type": "array", "prefixItems": [{"type": "string"}], "items": false}},
            "$defs": {"n": {"type": "number"}}}})]);
        assert_eq!(s.check("t", &raw(json!({"structuredContent": {"items": ["a"]}}))), Ok(()));
        // 2020-12's prefixItems + items: false: a second item is refused.
        assert_eq!(s.check("t", &raw(json!({"structuredContent": {"items": ["a", "b"]}}))).unwrap_err().path, "/items/1");
    }
}
