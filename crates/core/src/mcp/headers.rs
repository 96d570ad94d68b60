//! The headers a 2026-07-28 request carries beside its body (SEP-2243):
//! values encoded so that any string survives, and the tool parameters a
//! server asked to see as `Mcp-Param-*` headers (`x-mcp-header`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

/// A header value as 2026-07-28 carries it: plain when it is safe visible
/// ASCII, else `=?base64?…?=` (also for plain values that look like one).
pub fn header_value(value: &str) -> String {
    let looks_encoded = value.starts_with("=?base64?") && value.ends_with("?=");
    let plain = !value.is_empty()
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !looks_encoded;
    if plain {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", STANDARD.encode(value.as_bytes()))
    }
}

/// RFC 9110 token characters.
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn count_annotations(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| usize::from(k == "x-mcp-header") + count_annotations(v)).sum(),
        Value::Array(items) => items.iter().map(count_annotations).sum(),
        _ => 0,
    }
}

/// A parameter sent as a header: where it is in the arguments, and the
/// header's name (after `Mcp-Param-`).
pub type HeaderParam = (Vec<String>, String);

/// The `x-mcp-header` parameters of a tool's input schema, or why the tool
/// definition is invalid (it is then left out of the tool list): a name that
/// is empty or not a header token, one used twice (ignoring case), or a
/// parameter that is not a primitive (string, number, integer, boolean).
pub fn header_params(input_schema: &Value) -> Result<Vec<HeaderParam>, String> {
    fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<HeaderParam>) -> Result<(), String> {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Ok(()) };
        for (key, prop) in props {
            path.push(key.clone());
            if let Some(name) = prop.get("x-mcp-header") {
                let name = name.as_str().filter(|n| is_token(n)).ok_or("an x-mcp-header is not a header token")?;
                let ty = prop.get("type").and_then(Value::as_str).unwrap_or("");
                if !matches!(ty, "string" | "number" | "integer" | "boolean") {
                    return Err(format!("x-mcp-header {name} is on a parameter of type {ty:?}"));
                }
                if out.iter().any(|(_, n)| n.eq_ignore_ascii_case(name)) {
                    return Err(format!("x-mcp-header {name} appears twice"));
                }
                out.push((path.clone(), name.to_owned()));
            }
            walk(prop, path, out)?;
            path.pop();
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(input_schema, &mut Vec::new(), &mut out)?;
    if out.len() != count_annotations(input_schema) {
        return Err("an x-mcp-header is not reachable through properties alone".into());
    }
    Ok(out)
}

/// The header text of the argument at `path`; None when it is absent or
/// null (the header is then left out).
pub fn param_value(args: &serde_json::Map<String, Value>, path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let mut v = args.get(first)?;
    for key in rest {
        v = v.get(key)?;
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values_follow_the_2026_encoding() {
        assert_eq!(header_value("us-west1"), "us-west1");
        assert_eq!(header_value("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(header_value("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
        assert_eq!(header_value(""), "=?base64??=");
    }

    fn args(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn x_mcp_header_annotations() {
        let ok = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "ratio": {"type": "number", "x-mcp-header": "Ratio"},
            "opts": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}}}});
        let mut params = header_params(&ok).unwrap();
        params.sort();
        assert_eq!(params.len(), 3);
        assert_eq!(param_value(&args(json!({"opts": {"n": 7}})), &["opts".into(), "n".into()]).as_deref(), Some("7"));
        assert_eq!(param_value(&args(json!({"ratio": 2.5e-3})), &["ratio".into()]).as_deref(), Some("0.0025"));
        assert_eq!(param_value(&args(json!({"region": null})), &["region".into()]), None);
        assert_eq!(param_value(&args(json!({})), &["region".into()]), None);
        for bad in [
            json!({"properties": {"x": {"type": "object", "x-mcp-header": "X"}}}),
            json!({"properties": {"x": {"type": "null", "x-mcp-header": "X"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "X Y"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "X:Y"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "Réglage"}}}),
            json!({"properties": {"x": {"type": "string", "x-mcp-header": "A"}, "y": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"x": {"type": "array", "items": {"type": "string", "x-mcp-header": "X"}}}}),
            json!({"oneOf": [{"properties": {"x": {"type": "string", "x-mcp-header": "X"}}}]}),
        ] {
            assert!(header_params(&bad).is_err(), "{bad}");
        }
    }
}
