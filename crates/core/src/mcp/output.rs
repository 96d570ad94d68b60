//! A tool's `structuredContent` checked against its `outputSchema` (MCP
//! 2025-06-18 and later: servers MUST conform, clients SHOULD validate),
//! with the `jsonschema` crate (JSON Schema 2020-12 unless the schema's
//! `$schema` names another draft; no remote `$ref` is fetched). The
//! application relies on the shape; a result that breaks it is an error
//! naming where, not data passed on.

use jsonschema::Validator;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
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

/// Most bytes of output schemas shared through the row (`Learned`); a
/// server declaring more has each session list its tools once instead.
const MAX_SHARED_SCHEMA_BYTES: usize = 64 * 1024;

/// The output schemas a complete tool list declares, by tool.
pub fn declared(tools: &[Value]) -> BTreeMap<String, Value> {
    tools.iter().filter_map(|tool| Some((tool.get("name")?.as_str()?.to_owned(), tool.get("outputSchema")?.clone()))).collect()
}

/// Whether `schemas` are too large to keep on the row for every backend.
pub fn too_large_to_share(schemas: &BTreeMap<String, Value>) -> bool {
    schemas.values().map(|s| s.to_string().len()).sum::<usize>() > MAX_SHARED_SCHEMA_BYTES
}

/// A session's compiled output schemas (compiling is the costly part), and
/// the schemas its own last tool list declared.
#[derive(Default, Clone)]
pub struct OutputSchemas {
    /// What this session's last complete tool list declared, if it listed.
    pub listed: Option<BTreeMap<String, Value>>,
    compiled: HashMap<String, (Value, Result<Arc<Validator>, String>)>,
}

impl std::fmt::Debug for OutputSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSchemas").field("compiled", &self.compiled.keys().collect::<Vec<_>>()).finish()
    }
}

impl OutputSchemas {
    /// The validator of `schema`, compiled once per tool and schema. A
    /// schema that does not compile is kept as its error.
    fn validator(&mut self, tool: &str, schema: &Value) -> &Result<Arc<Validator>, String> {
        let fresh = self.compiled.get(tool).is_none_or(|(known, _)| known != schema);
        if fresh {
            if self.compiled.len() >= 1024 {
                self.compiled.clear();
            }
            let compiled = jsonschema::validator_for(schema).map(Arc::new).map_err(|e| cut(&e.masked().to_string()));
            self.compiled.insert(tool.to_owned(), (schema.clone(), compiled));
        }
        &self.compiled[tool].1
    }

    /// Checks a `tools/call` result of `tool` against its `schema`, if it
    /// declares one. Tool errors (`isError`), and results that are not a
    /// tool's final output (input required, a task), are not checked.
    pub fn check(&mut self, tool: &str, schema: Option<&Value>, result: &RawValue) -> Result<(), OutputMismatch> {
        let Some(schema) = schema else { return Ok(()) };
        let mismatch = |path: &str, why: String| OutputMismatch { tool: tool.to_owned(), path: path.to_owned(), why };
        let validator = match self.validator(tool, schema) {
            Ok(validator) => validator.clone(),
            Err(why) => return Err(mismatch("", format!("the tool's outputSchema is not a valid JSON Schema: {why}"))),
        };
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

    /// A session's checker and the schemas of a tool list.
    fn schemas() -> (OutputSchemas, BTreeMap<String, Value>) {
        let declared = declared(&[
            json!({"name": "weather", "outputSchema": {
                "type": "object",
                "properties": {"temperature": {"type": "number"}, "conditions": {"type": "string"},
                               "hourly": {"type": "array", "items": {"type": "number"}}},
                "required": ["temperature"]}}),
            json!({"name": "plain"}),
            json!({"name": "broken", "outputSchema": {"type": 12}}),
        ]);
        (OutputSchemas::default(), declared)
    }

    #[test]
    fn conforming_results_pass_and_a_mismatch_names_where() {
        let (mut s, declared) = schemas();
        let weather = declared.get("weather");
        let ok = raw(json!({"content": [], "structuredContent": {"temperature": 21.5, "conditions": "sunny"}}));
        assert_eq!(s.check("weather", weather, &ok), Ok(()));
        let wrong = raw(json!({"content": [], "structuredContent": {"temperature": 21, "hourly": [1, "two"]}}));
        let m = s.check("weather", weather, &wrong).unwrap_err();
        assert_eq!(m.path, "/hourly/1");
        assert!(m.why.contains("number"), "{}", m.why);
        assert!(!m.why.contains("two"), "the value itself is not repeated: {}", m.why);
        let missing = raw(json!({"content": [], "structuredContent": {"conditions": "rain"}}));
        let m = s.check("weather", weather, &missing).unwrap_err();
        assert_eq!(m.path, "");
        assert!(m.why.contains("temperature"), "{}", m.why);
        // A changed schema is compiled anew.
        let looser = json!({"type": "object"});
        assert_eq!(s.check("weather", Some(&looser), &missing), Ok(()));
    }

    #[test]
    fn what_is_not_checked_and_what_is_refused() {
        let (mut s, declared) = schemas();
        assert!(!declared.contains_key("plain"));
        // No schema: anything goes.
        assert_eq!(s.check("plain", declared.get("plain"), &raw(json!({"content": []}))), Ok(()));
        let weather = declared.get("weather");
        // A tool error, an input-required result: not the tool's output.
        assert_eq!(s.check("weather", weather, &raw(json!({"isError": true, "content": []}))), Ok(()));
        assert_eq!(s.check("weather", weather, &raw(json!({"resultType": "input_required", "inputRequests": {}}))), Ok(()));
        // A schema but no structured content; a schema that is not one.
        assert!(s.check("weather", weather, &raw(json!({"content": []}))).unwrap_err().why.contains("no structuredContent"));
        let broken = s.check("broken", declared.get("broken"), &raw(json!({"structuredContent": {}})));
        assert!(broken.unwrap_err().why.contains("not a valid JSON Schema"));
    }

    #[test]
    fn large_schemas_are_not_shared() {
        let (_, small) = schemas();
        assert!(!too_large_to_share(&small));
        let big = json!({"type": "object", "description": "x".repeat(MAX_SHARED_SCHEMA_BYTES)});
        assert!(too_large_to_share(&declared(&[json!({"name": "t", "outputSchema": big})])));
    }

    #[test]
    fn json_schema_2020_12_is_the_default_draft() {
        let mut s = OutputSchemas::default();
        let schema = json!({
            "type": "object",
            "properties": {"items": {"type": "array", "prefixItems": [{"type": "string"}], "items": false}},
            "$defs": {"n": {"type": "number"}}});
        assert_eq!(s.check("t", Some(&schema), &raw(json!({"structuredContent": {"items": ["a"]}}))), Ok(()));
        // 2020-12's prefixItems + items: false: a second item is refused.
        assert_eq!(s.check("t", Some(&schema), &raw(json!({"structuredContent": {"items": ["a", "b"]}}))).unwrap_err().path, "/items/1");
    }
}
